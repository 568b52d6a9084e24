//! Server functions used by the pages. Their bodies run on the server against the [`ssr::Backend`]
//! the server provides as context — the same service methods the REST API calls, with the same
//! checks, errors and audit — and the browser calls them over HTTP. Failures arrive as the same
//! [`ErrorBody`] as on the REST API, with the same HTTP status (the server sets it from the
//! error's code: `deployer::error::server_fn_status`). Each is at a stable address,
//! `POST /api/<name>` with the arguments as a JSON object (JSON only: a cross-site HTML form cannot
//! send JSON), so scripts and tests can reach them too.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::deployment::{Activity, Deployment, DeploymentDetail};
use crate::error::ErrorBody;
use crate::model::{BuildList, Overview, StackView};
use crate::pause::{AuditEntry, AuditQuery, PauseStatus};

/// How long the server's render of a page waits for an answer from AWS (or the bucket) before it
/// sends that part as still loading and finishes the page; the browser then asks for it itself
/// ([`ask_in_browser_if_late`]). A healthy account answers well within it.
pub const PAGE_BUDGET: std::time::Duration = std::time::Duration::from_millis(1500);

/// `answer`, unless the server is rendering the page and it takes longer than [`PAGE_BUDGET`]:
/// then `None`, and the page is not held back by a slow account.
pub async fn within_page_budget<T>(answer: impl std::future::Future<Output = T>) -> Option<T> {
    #[cfg(feature = "ssr")]
    {
        tokio::time::timeout(PAGE_BUDGET, answer).await.ok()
    }
    #[cfg(not(feature = "ssr"))]
    {
        Some(answer.await)
    }
}

/// How a resource's data travels in the page: JSON, as the server function that fetches it in
/// the browser answers. Both are read with `serde_json::from_slice`, so the wasm has one decoder
/// per wire type; Leptos's default codec reads the page's copy with `from_str`, a second,
/// separately compiled decoder for every type (measured: the module's largest share after the
/// views themselves).
pub struct Wire;

impl<T: serde::Serialize> leptos::server::codee::Encoder<T> for Wire {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(value: &T) -> Result<String, serde_json::Error> {
        serde_json::to_string(value)
    }
}

impl<T: serde::de::DeserializeOwned> leptos::server::codee::Decoder<T> for Wire {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(page: &str) -> Result<T, serde_json::Error> {
        serde_json::from_slice(page.as_bytes())
    }
}

/// A resource whose data travels as [`Wire`].
pub type Loaded<T> = Resource<T, Wire>;

/// [`Resource::new`] with the [`Wire`] codec: `fetcher` runs on the server for the page, and in
/// the browser whenever `source` changes.
#[track_caller]
pub fn load<T, S, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> Loaded<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
    S: Send + Sync + Clone + PartialEq + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    Resource::new_with_options(source, fetcher, false)
}

/// In the browser: a resource the server's render gave up on (`Some(None)`) is asked for again,
/// now that the page is live.
pub fn ask_in_browser_if_late<T>(resource: Loaded<Option<T>>)
where
    T: Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    // Watched from an owner of its own, outside every <Suspense>: a read inside one registers
    // the resource with it, and asking again would then put that whole Suspense (here the page's
    // main part) back to its fallback. (Nothing to ask again on the server.)
    #[cfg(feature = "hydrate")]
    {
        let here = Owner::current();
        // (`new_root` makes itself the current owner: the component's own is put back.)
        let watcher = Owner::new_root(None);
        if let Some(here) = here {
            here.set();
        }
        watcher.with(|| {
            Effect::new(move |_| {
                if matches!(resource.get(), Some(None)) {
                    resource.refetch();
                }
            })
        });
        on_cleanup(move || drop(watcher));
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = resource;
}

/// What to show a person for a failed server function: the server's own message (already a
/// summary written for people).
pub fn error_message(error: &ErrorBody) -> String {
    error.message.clone()
}

#[server(endpoint = "get_overview", input = Json)]
pub async fn get_overview() -> Result<Overview, ErrorBody> {
    let (backend, request) = ssr::backend()?;
    backend.overview(&request).await
}

#[server(endpoint = "get_builds", input = Json)]
pub async fn get_builds(project: String) -> Result<BuildList, ErrorBody> {
    let (backend, request) = ssr::backend()?;
    let builds = backend.builds(&request, &project, None, None).await?;
    Ok(BuildList {
        now: chrono::Utc::now(),
        builds,
    })
}

#[server(endpoint = "get_stack", input = Json)]
pub async fn get_stack(project: String, environment: String) -> Result<StackView, ErrorBody> {
    let (backend, request) = ssr::backend()?;
    let card = backend.stack(&request, &project, &environment).await?;
    Ok(StackView {
        now: chrono::Utc::now(),
        card,
    })
}

#[server(endpoint = "get_promotion", input = Json)]
pub async fn get_promotion() -> Result<crate::model::PromotionMatrix, ErrorBody> {
    let (backend, request) = ssr::backend()?;
    let projects = backend.promotion(&request).await?;
    Ok(crate::model::PromotionMatrix {
        now: chrono::Utc::now(),
        projects,
    })
}

/// One project's row of the promotion matrix (the stack card's Promote button).
#[server(endpoint = "get_project_promotion", input = Json)]
pub async fn get_project_promotion(project: String) -> Result<crate::model::Promotion, ErrorBody> {
    let (backend, request) = ssr::backend()?;
    backend.promotion_of(&request, &project).await
}

/// What deploying `build` to the stack would run into (the rollback's verdict), before the click.
#[server(endpoint = "get_rollback_verdict", input = Json)]
pub async fn get_rollback_verdict(
    project: String,
    environment: String,
    build: Option<String>,
) -> Result<crate::model::RollbackVerdict, ErrorBody> {
    let (backend, request) = ssr::backend()?;
    backend
        .rollback_verdict(&request, &project, &environment, build.as_deref())
        .await
}

/// What deploying `build` would change, without deploying (a change set made and deleted).
#[server(endpoint = "get_preview", input = Json)]
pub async fn get_preview(
    project: String,
    environment: String,
    build: String,
) -> Result<Vec<crate::model::PreviewChange>, ErrorBody> {
    let (backend, request) = ssr::backend()?;
    backend
        .preview(&request, &project, &environment, &build)
        .await
}

/// Deploys to `environment` the build the environment before it runs.
#[server(endpoint = "request_promotion", input = Json)]
pub async fn request_promotion(
    project: String,
    environment: String,
) -> Result<Deployment, ErrorBody> {
    let (backend, request) = ssr::backend()?;
    backend.promote(&request, &project, &environment).await
}

#[server(endpoint = "request_deployment", input = Json)]
pub async fn request_deployment(
    project: String,
    environment: String,
    build: String,
) -> Result<Deployment, ErrorBody> {
    start(project, environment, build, false).await
}

/// ContinueUpdateRollback for a stack stuck in UPDATE_ROLLBACK_FAILED, skipping `skip`.
#[server(endpoint = "continue_rollback", input = Json)]
pub async fn continue_rollback(
    project: String,
    environment: String,
    skip: Vec<String>,
) -> Result<crate::model::StackCard, ErrorBody> {
    let (backend, request) = ssr::backend()?;
    backend
        .continue_rollback(&request, &project, &environment, skip)
        .await
}

/// A deploy onto a stack whose first create failed: it is deleted and created again (confirmed).
#[server(endpoint = "request_recreate", input = Json)]
pub async fn request_recreate(
    project: String,
    environment: String,
    build: String,
) -> Result<Deployment, ErrorBody> {
    start(project, environment, build, true).await
}

#[cfg(feature = "ssr")]
async fn start(
    project: String,
    environment: String,
    build: String,
    recreate: bool,
) -> Result<Deployment, ErrorBody> {
    let (backend, request) = ssr::backend()?;
    let start = crate::deployment::StartDeployment {
        project,
        environment,
        build,
        recreate,
    };
    backend.start_deployment(&request, start).await
}

#[server(endpoint = "request_cancel", input = Json)]
pub async fn request_cancel(id: String, confirm_delete: bool) -> Result<Deployment, ErrorBody> {
    let (backend, request) = ssr::backend()?;
    backend
        .cancel_deployment(&request, &id, confirm_delete)
        .await
}

/// Approves (or discards) a deployment waiting in a protected environment.
#[server(endpoint = "decide_deployment", input = Json)]
pub async fn decide_deployment(id: String, approve: bool) -> Result<Deployment, ErrorBody> {
    let (backend, request) = ssr::backend()?;
    use crate::deployment::ApprovalDecision;
    let decision = if approve {
        ApprovalDecision::Approved
    } else {
        ApprovalDecision::Discarded
    };
    backend.decide_deployment(&request, &id, decision).await
}

/// A stack's recent deployments and the newest one in full, for the card and its progress panel.
#[server(endpoint = "get_activity", input = Json)]
pub async fn get_activity(project: String, environment: String) -> Result<Activity, ErrorBody> {
    let (backend, request) = ssr::backend()?;
    let history = backend
        .deployments(&request, Some(&project), Some(&environment), Some(10))
        .await?;
    let latest = match history.first() {
        Some(d) => Some(backend.deployment(&request, &d.id).await?),
        None => None,
    };
    Ok(Activity { history, latest })
}

#[server(endpoint = "get_deployment", input = Json)]
pub async fn get_deployment(id: String) -> Result<DeploymentDetail, ErrorBody> {
    let (backend, request) = ssr::backend()?;
    backend.deployment(&request, &id).await
}

#[server(endpoint = "get_pause", input = Json)]
pub async fn get_pause() -> Result<PauseStatus, ErrorBody> {
    let (backend, request) = ssr::backend()?;
    backend.pause_status(&request).await
}

#[server(endpoint = "pause_deployments", input = Json)]
pub async fn pause_deployments(
    reason: String,
    environment: Option<String>,
    cancel_in_flight: bool,
) -> Result<PauseStatus, ErrorBody> {
    let (backend, request) = ssr::backend()?;
    let pause = crate::pause::PauseRequest {
        reason,
        environment,
        cancel_in_flight,
    };
    backend.pause(&request, pause).await
}

#[server(endpoint = "resume_deployments", input = Json)]
pub async fn resume_deployments(environment: Option<String>) -> Result<PauseStatus, ErrorBody> {
    let (backend, request) = ssr::backend()?;
    backend.unpause(&request, environment.as_deref()).await
}

#[server(endpoint = "get_audit", input = Json)]
pub async fn get_audit(query: AuditQuery) -> Result<Vec<AuditEntry>, ErrorBody> {
    let (backend, request) = ssr::backend()?;
    backend.audit(&request, query).await
}

#[server(endpoint = "get_active_deployments", input = Json)]
pub async fn get_active_deployments() -> Result<Vec<Deployment>, ErrorBody> {
    let (backend, request) = ssr::backend()?;
    backend.active_deployments(&request).await
}

/// The Jenkins builds panel as the server's poller last saw it.
#[server(endpoint = "get_jenkins_builds", input = Json)]
pub async fn get_jenkins_builds() -> Result<crate::jenkins::JenkinsBuilds, ErrorBody> {
    let (backend, request) = ssr::backend()?;
    backend.jenkins_builds(&request).await
}

/// The API tokens and the roles one can be given (admins only).
#[server(endpoint = "get_tokens", input = Json)]
pub async fn get_tokens() -> Result<crate::auth::TokenAdmin, ErrorBody> {
    let (backend, request) = ssr::backend()?;
    backend.tokens(&request).await
}

/// The webhooks and their newest deliveries (admins only).
#[server(endpoint = "get_webhooks", input = Json)]
pub async fn get_webhooks() -> Result<crate::model::WebhooksView, ErrorBody> {
    let (backend, request) = ssr::backend()?;
    backend.webhooks(&request).await
}

/// Creates an API token: its secret is in the answer, this once.
#[server(endpoint = "create_token", input = Json)]
pub async fn create_token(
    name: String,
    role: String,
    #[server(default)] expires_in_days: Option<u32>,
) -> Result<crate::auth::CreatedToken, ErrorBody> {
    let (backend, request) = ssr::backend()?;
    backend
        .create_token(
            &request,
            crate::auth::NewToken {
                name,
                role,
                expires_in_days,
            },
        )
        .await
}

#[server(endpoint = "revoke_token", input = Json)]
pub async fn revoke_token(id: String) -> Result<crate::auth::Token, ErrorBody> {
    let (backend, request) = ssr::backend()?;
    backend.revoke_token(&request, &id).await
}

#[cfg(feature = "ssr")]
pub mod ssr {
    //! The seam between the pages and the server: the server implements [`Backend`] over its
    //! service layer and provides it as `Arc<dyn Backend>` context, so the app never links the
    //! AWS SDK. Each method gets the request that asks (who is asking is read from it, by the same
    //! code as on the REST API) and the raw inputs (parsed by the same code as on the REST API).

    use std::sync::Arc;

    use http::request::Parts;
    use leptos::prelude::*;

    use crate::deployment::{ApprovalDecision, Deployment, DeploymentDetail, StartDeployment};
    use crate::error::{ErrorBody, ErrorCode};
    use crate::model::{Build, Overview, StackCard};
    use crate::pause::{AuditEntry, AuditQuery, PauseRequest, PauseStatus};

    #[async_trait::async_trait]
    pub trait Backend: Send + Sync + 'static {
        async fn overview(&self, request: &Parts) -> Result<Overview, ErrorBody>;
        async fn builds(
            &self,
            request: &Parts,
            project: &str,
            branch: Option<&str>,
            limit: Option<&str>,
        ) -> Result<Vec<Build>, ErrorBody>;
        async fn stack(
            &self,
            request: &Parts,
            project: &str,
            environment: &str,
        ) -> Result<StackCard, ErrorBody>;
        async fn start_deployment(
            &self,
            request: &Parts,
            start: StartDeployment,
        ) -> Result<Deployment, ErrorBody>;
        async fn cancel_deployment(
            &self,
            request: &Parts,
            id: &str,
            confirm_delete: bool,
        ) -> Result<Deployment, ErrorBody>;
        async fn decide_deployment(
            &self,
            request: &Parts,
            id: &str,
            decision: ApprovalDecision,
        ) -> Result<Deployment, ErrorBody>;
        async fn deployments(
            &self,
            request: &Parts,
            project: Option<&str>,
            environment: Option<&str>,
            limit: Option<u32>,
        ) -> Result<Vec<Deployment>, ErrorBody>;
        async fn deployment(
            &self,
            request: &Parts,
            id: &str,
        ) -> Result<DeploymentDetail, ErrorBody>;
        async fn pause_status(&self, request: &Parts) -> Result<PauseStatus, ErrorBody>;
        async fn pause(
            &self,
            request: &Parts,
            pause: PauseRequest,
        ) -> Result<PauseStatus, ErrorBody>;
        async fn unpause(
            &self,
            request: &Parts,
            environment: Option<&str>,
        ) -> Result<PauseStatus, ErrorBody>;
        async fn audit(
            &self,
            request: &Parts,
            query: AuditQuery,
        ) -> Result<Vec<AuditEntry>, ErrorBody>;
        async fn active_deployments(&self, request: &Parts) -> Result<Vec<Deployment>, ErrorBody>;
        async fn tokens(&self, request: &Parts) -> Result<crate::auth::TokenAdmin, ErrorBody>;
        async fn webhooks(&self, request: &Parts) -> Result<crate::model::WebhooksView, ErrorBody>;
        async fn jenkins_builds(
            &self,
            request: &Parts,
        ) -> Result<crate::jenkins::JenkinsBuilds, ErrorBody>;
        async fn create_token(
            &self,
            request: &Parts,
            token: crate::auth::NewToken,
        ) -> Result<crate::auth::CreatedToken, ErrorBody>;
        async fn revoke_token(
            &self,
            request: &Parts,
            id: &str,
        ) -> Result<crate::auth::Token, ErrorBody>;
        async fn promotion(
            &self,
            request: &Parts,
        ) -> Result<Vec<crate::model::Promotion>, ErrorBody>;
        async fn rollback_verdict(
            &self,
            request: &Parts,
            project: &str,
            environment: &str,
            build: Option<&str>,
        ) -> Result<crate::model::RollbackVerdict, ErrorBody>;
        async fn promotion_of(
            &self,
            request: &Parts,
            project: &str,
        ) -> Result<crate::model::Promotion, ErrorBody>;
        async fn promote(
            &self,
            request: &Parts,
            project: &str,
            environment: &str,
        ) -> Result<Deployment, ErrorBody>;
        async fn preview(
            &self,
            request: &Parts,
            project: &str,
            environment: &str,
            build: &str,
        ) -> Result<Vec<crate::model::PreviewChange>, ErrorBody>;
        async fn continue_rollback(
            &self,
            request: &Parts,
            project: &str,
            environment: &str,
            skip: Vec<String>,
        ) -> Result<StackCard, ErrorBody>;
    }

    pub type SharedBackend = Arc<dyn Backend>;

    /// The backend, and the request the server function is answering.
    pub fn backend() -> Result<(SharedBackend, Parts), ErrorBody> {
        let unavailable = |what: &str| {
            ErrorBody::new(ErrorCode::Internal, format!("the {what} is not available"))
        };
        let backend = use_context::<SharedBackend>().ok_or_else(|| unavailable("backend"))?;
        let request = use_context::<Parts>().ok_or_else(|| unavailable("request"))?;
        Ok((backend, request))
    }
}
