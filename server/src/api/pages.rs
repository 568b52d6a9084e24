//! The page's server functions, as a thin adapter like the REST handlers: the same actor
//! ([`extract::actor`]), the same parsing of ids and filters, the same service methods — so the
//! same input gets the same answer, by either way in. A panic becomes an error, not a hung page.

use app::api::ssr::Backend;
use app::deployment::{ApprovalDecision, Deployment, DeploymentDetail, StartDeployment};
use app::error::ErrorBody;
use app::model::{Build, Overview, StackCard};
use app::pause::{AuditEntry, AuditQuery, PauseRequest, PauseStatus};
use axum::http::request::Parts;

use super::extract;
use crate::error::{AppError, guarded};
use crate::ids::{DeploymentId, EnvName, Limit, ProjectName, optional};
use crate::service::{AuditFilter, BuildsFilter, DeploymentsFilter, PauseOrder, StartRequest};
use crate::state::AppState;

/// The [`Backend`] the pages call through.
pub struct Pages {
    state: AppState,
}

impl Pages {
    pub fn new(state: AppState) -> Pages {
        Pages { state }
    }

    /// Runs one call: panics caught, errors in the wire shape.
    async fn call<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, AppError>>,
    ) -> Result<T, ErrorBody> {
        guarded(async move { work.await.map_err(ErrorBody::from) }).await
    }
}

#[async_trait::async_trait]
impl Backend for Pages {
    async fn overview(&self, request: &Parts) -> Result<Overview, ErrorBody> {
        self.call(async {
            let actor = extract::actor(request, &self.state)?;
            Ok(self.state.services.overview(&actor))
        })
        .await
    }

    async fn builds(
        &self,
        request: &Parts,
        project: &str,
        branch: Option<&str>,
        limit: Option<&str>,
    ) -> Result<Vec<Build>, ErrorBody> {
        self.call(async {
            let actor = extract::actor(request, &self.state)?;
            let project = ProjectName::parse(project)?;
            let filter = BuildsFilter::parse(branch, limit)?;
            self.state.services.builds(&actor, &project, &filter).await
        })
        .await
    }

    async fn stack(
        &self,
        request: &Parts,
        project: &str,
        environment: &str,
    ) -> Result<StackCard, ErrorBody> {
        self.call(async {
            let actor = extract::actor(request, &self.state)?;
            let project = ProjectName::parse(project)?;
            let environment = EnvName::parse(environment)?;
            self.state
                .services
                .stack(&actor, &project, &environment)
                .await
        })
        .await
    }

    async fn start_deployment(
        &self,
        request: &Parts,
        start: StartDeployment,
    ) -> Result<Deployment, ErrorBody> {
        self.call(async {
            let actor = extract::actor(request, &self.state)?;
            let start = StartRequest::parse(&start)?;
            self.state.services.start(&actor, &start).await
        })
        .await
    }

    async fn cancel_deployment(
        &self,
        request: &Parts,
        id: &str,
        confirm_delete: bool,
    ) -> Result<Deployment, ErrorBody> {
        self.call(async {
            let actor = extract::actor(request, &self.state)?;
            let id = DeploymentId::parse(id)?;
            self.state
                .services
                .cancel(&actor, &id, confirm_delete)
                .await
        })
        .await
    }

    async fn decide_deployment(
        &self,
        request: &Parts,
        id: &str,
        decision: ApprovalDecision,
    ) -> Result<Deployment, ErrorBody> {
        self.call(async {
            let actor = extract::actor(request, &self.state)?;
            let id = DeploymentId::parse(id)?;
            self.state.services.decide(&actor, &id, decision).await
        })
        .await
    }

    async fn deployments(
        &self,
        request: &Parts,
        project: Option<&str>,
        environment: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<Deployment>, ErrorBody> {
        self.call(async {
            let actor = extract::actor(request, &self.state)?;
            let limit = match limit {
                None => Limit::DEFAULT,
                Some(n) => Limit::from_number("limit", u64::from(n))?,
            };
            let filter = DeploymentsFilter::parse(project, environment, limit)?;
            self.state.services.deployments(&actor, &filter).await
        })
        .await
    }

    async fn deployment(&self, request: &Parts, id: &str) -> Result<DeploymentDetail, ErrorBody> {
        self.call(async {
            let actor = extract::actor(request, &self.state)?;
            let id = DeploymentId::parse(id)?;
            self.state.services.deployment(&actor, &id).await
        })
        .await
    }

    async fn pause_status(&self, request: &Parts) -> Result<PauseStatus, ErrorBody> {
        self.call(async {
            let actor = extract::actor(request, &self.state)?;
            self.state.services.pause_status(&actor).await
        })
        .await
    }

    async fn pause(&self, request: &Parts, pause: PauseRequest) -> Result<PauseStatus, ErrorBody> {
        self.call(async {
            let actor = extract::actor(request, &self.state)?;
            let order = PauseOrder::parse(&pause)?;
            self.state.services.pause(&actor, &order).await
        })
        .await
    }

    async fn unpause(
        &self,
        request: &Parts,
        environment: Option<&str>,
    ) -> Result<PauseStatus, ErrorBody> {
        self.call(async {
            let actor = extract::actor(request, &self.state)?;
            let environment = optional(environment, EnvName::parse)?;
            self.state
                .services
                .unpause(&actor, environment.as_ref())
                .await
        })
        .await
    }

    async fn audit(
        &self,
        request: &Parts,
        query: AuditQuery,
    ) -> Result<Vec<AuditEntry>, ErrorBody> {
        self.call(async {
            let actor = extract::actor(request, &self.state)?;
            let filter = AuditFilter::parse(&query)?;
            self.state.services.audit(&actor, &filter).await
        })
        .await
    }

    async fn active_deployments(&self, request: &Parts) -> Result<Vec<Deployment>, ErrorBody> {
        self.call(async {
            let actor = extract::actor(request, &self.state)?;
            self.state.services.active(&actor).await
        })
        .await
    }

    async fn tokens(&self, request: &Parts) -> Result<app::auth::TokenAdmin, ErrorBody> {
        self.call(async {
            let actor = extract::actor(request, &self.state)?;
            let tokens = self.state.services.tokens(&actor).await?;
            let roles = self.state.services.roles();
            Ok(app::auth::TokenAdmin { tokens, roles })
        })
        .await
    }

    async fn webhooks(&self, request: &Parts) -> Result<app::model::WebhooksView, ErrorBody> {
        self.call(async {
            let actor = extract::actor(request, &self.state)?;
            let limit = crate::ids::Limit::parse("limit", Some("100"))?;
            self.state.services.webhooks(&actor, limit).await
        })
        .await
    }

    async fn create_token(
        &self,
        request: &Parts,
        token: app::auth::NewToken,
    ) -> Result<app::auth::CreatedToken, ErrorBody> {
        self.call(async {
            let actor = extract::actor(request, &self.state)?;
            self.state.services.create_token(&actor, &token).await
        })
        .await
    }

    async fn revoke_token(&self, request: &Parts, id: &str) -> Result<app::auth::Token, ErrorBody> {
        self.call(async {
            let actor = extract::actor(request, &self.state)?;
            self.state.services.revoke_token(&actor, id).await
        })
        .await
    }

    async fn jenkins_builds(
        &self,
        request: &Parts,
    ) -> Result<app::jenkins::JenkinsBuilds, ErrorBody> {
        self.call(async {
            let actor = extract::actor(request, &self.state)?;
            Ok(self.state.services.jenkins_builds(&actor))
        })
        .await
    }

    async fn promotion(&self, request: &Parts) -> Result<Vec<app::model::Promotion>, ErrorBody> {
        self.call(async {
            let actor = extract::actor(request, &self.state)?;
            self.state.services.promotion(&actor).await
        })
        .await
    }

    async fn rollback_verdict(
        &self,
        request: &Parts,
        project: &str,
        environment: &str,
        build: Option<&str>,
    ) -> Result<app::model::RollbackVerdict, ErrorBody> {
        self.call(async {
            let actor = extract::actor(request, &self.state)?;
            let project = ProjectName::parse(project)?;
            let environment = EnvName::parse(environment)?;
            let build = optional(build, crate::ids::BuildName::parse)?;
            self.state
                .services
                .rollback_verdict(&actor, &project, &environment, build.as_ref())
                .await
        })
        .await
    }

    async fn promotion_of(
        &self,
        request: &Parts,
        project: &str,
    ) -> Result<app::model::Promotion, ErrorBody> {
        self.call(async {
            let actor = extract::actor(request, &self.state)?;
            let project = ProjectName::parse(project)?;
            self.state.services.promotion_of(&actor, &project).await
        })
        .await
    }

    async fn preview(
        &self,
        request: &Parts,
        project: &str,
        environment: &str,
        build: &str,
    ) -> Result<Vec<app::model::PreviewChange>, ErrorBody> {
        self.call(async {
            let actor = extract::actor(request, &self.state)?;
            let project = ProjectName::parse(project)?;
            let environment = EnvName::parse(environment)?;
            let build = crate::ids::BuildName::parse(build)?;
            self.state
                .services
                .preview(&actor, &project, &environment, &build)
                .await
        })
        .await
    }

    async fn continue_rollback(
        &self,
        request: &Parts,
        project: &str,
        environment: &str,
        skip: Vec<String>,
    ) -> Result<StackCard, ErrorBody> {
        self.call(async {
            let actor = extract::actor(request, &self.state)?;
            let project = ProjectName::parse(project)?;
            let environment = EnvName::parse(environment)?;
            self.state
                .services
                .continue_rollback(&actor, &project, &environment, &skip)
                .await
        })
        .await
    }

    async fn promote(
        &self,
        request: &Parts,
        project: &str,
        environment: &str,
    ) -> Result<Deployment, ErrorBody> {
        self.call(async {
            let actor = extract::actor(request, &self.state)?;
            let project = ProjectName::parse(project)?;
            let environment = EnvName::parse(environment)?;
            self.state
                .services
                .promote(&actor, &project, &environment)
                .await
        })
        .await
    }
}
