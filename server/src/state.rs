//! The one shared state of the axum app, and the [`Backend`] the pages call through.

use std::sync::Arc;

use app::api::ssr::Backend;
use app::deployment::{Deployment, DeploymentDetail, StartDeployment};
use app::model::{Build, ErrorBody, Overview, StackCard};
use app::pause::{AuditEntry, AuditQuery, PauseRequest, PauseStatus};
use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;

use crate::deploy::Engine;
use crate::deployer::Deployer;
use crate::error::AppError;
use crate::store::Filter;

#[derive(Clone)]
pub struct AppState {
    pub deployer: Arc<Deployer>,
    pub engine: Arc<Engine>,
    pub leptos_options: LeptosOptions,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

impl AppState {
    /// Who is acting. Until login exists this is the configured actor; the request is taken so
    /// that login only has to fill it in.
    pub fn actor(&self, _request: &axum::http::HeaderMap) -> String {
        self.deployer.config.actor.clone()
    }

    pub async fn audit(&self, query: AuditQuery) -> Result<Vec<AuditEntry>, AppError> {
        Ok(self.engine.store().audit_list(&query).await?)
    }

    pub async fn deployment(&self, id: &str) -> Result<DeploymentDetail, AppError> {
        self.engine
            .store()
            .detail(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no deployment {id:?}")))
    }
}

#[async_trait::async_trait]
impl Backend for AppState {
    fn overview(&self) -> Overview {
        Overview {
            environments: self.deployer.environments(),
            projects: self.deployer.projects(),
        }
    }

    async fn builds(
        &self,
        project: &str,
        branch: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<Build>, ErrorBody> {
        crate::error::guarded(async move {
            self.deployer
                .builds(project, branch, limit)
                .await
                .map_err(ErrorBody::from)
        })
        .await
    }

    async fn stack(&self, project: &str, environment: &str) -> Result<StackCard, ErrorBody> {
        crate::error::guarded(async move {
            self.deployer
                .stack(project, environment)
                .await
                .map_err(ErrorBody::from)
        })
        .await
    }

    async fn start_deployment(&self, request: StartDeployment) -> Result<Deployment, ErrorBody> {
        crate::error::guarded(async move {
            let actor = self.actor(&axum::http::HeaderMap::new());
            self.engine
                .start(request, &actor)
                .await
                .map_err(ErrorBody::from)
        })
        .await
    }

    async fn cancel_deployment(
        &self,
        id: &str,
        confirm_delete: bool,
    ) -> Result<Deployment, ErrorBody> {
        crate::error::guarded(async move {
            self.engine
                .cancel(
                    id,
                    confirm_delete,
                    &self.actor(&axum::http::HeaderMap::new()),
                )
                .await
                .map_err(ErrorBody::from)
        })
        .await
    }

    async fn deployments(
        &self,
        project: Option<&str>,
        environment: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Deployment>, ErrorBody> {
        crate::error::guarded(async move {
            let filter = Filter {
                project: project.map(str::to_owned),
                environment: environment.map(str::to_owned),
                limit: Some(limit),
            };
            self.engine.list(&filter).await.map_err(ErrorBody::from)
        })
        .await
    }

    async fn deployment(&self, id: &str) -> Result<DeploymentDetail, ErrorBody> {
        crate::error::guarded(async move {
            AppState::deployment(self, id)
                .await
                .map_err(ErrorBody::from)
        })
        .await
    }

    async fn pause_status(&self) -> Result<PauseStatus, ErrorBody> {
        crate::error::guarded(
            async move { self.engine.pause_status().await.map_err(ErrorBody::from) },
        )
        .await
    }

    async fn pause(&self, request: PauseRequest) -> Result<PauseStatus, ErrorBody> {
        crate::error::guarded(async move {
            let actor = self.actor(&axum::http::HeaderMap::new());
            self.engine
                .pause(request, &actor)
                .await
                .map_err(ErrorBody::from)
        })
        .await
    }

    async fn unpause(&self, environment: Option<&str>) -> Result<PauseStatus, ErrorBody> {
        crate::error::guarded(async move {
            let actor = self.actor(&axum::http::HeaderMap::new());
            self.engine
                .unpause(environment, &actor)
                .await
                .map_err(ErrorBody::from)
        })
        .await
    }

    async fn audit(&self, query: AuditQuery) -> Result<Vec<AuditEntry>, ErrorBody> {
        crate::error::guarded(
            async move { AppState::audit(self, query).await.map_err(ErrorBody::from) },
        )
        .await
    }

    async fn active_deployments(&self) -> Result<Vec<Deployment>, ErrorBody> {
        crate::error::guarded(async move {
            let active = self
                .engine
                .store()
                .active()
                .await
                .map_err(|e| ErrorBody::from(AppError::from(e)))?;
            Ok(active.into_iter().map(|r| r.deployment).collect())
        })
        .await
    }
}
