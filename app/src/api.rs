//! Server functions used by the pages. Their bodies run on the server against the [`ssr::Backend`]
//! the server provides as context; the browser calls them over HTTP.

use leptos::prelude::*;

use crate::deployment::{Activity, Deployment, DeploymentDetail};
use crate::model::{BuildList, Overview, StackView};
use crate::pause::{AuditEntry, AuditQuery, PauseStatus};

/// What to show a person for a failed server function: the server's own message (already a
/// summary written for people), without the framework's "error running server function" prefix.
pub fn error_message(error: &ServerFnError) -> String {
    match error {
        ServerFnError::ServerError(message) => message.clone(),
        ServerFnError::Request(message) => {
            format!("the deployer could not be reached ({message}); is it running?")
        }
        other => other.to_string(),
    }
}

#[server]
pub async fn get_overview() -> Result<Overview, ServerFnError> {
    Ok(ssr::backend()?.overview())
}

#[server]
pub async fn get_builds(project: String) -> Result<BuildList, ServerFnError> {
    let builds = ssr::backend()?
        .builds(&project, None, None)
        .await
        .map_err(ssr::to_server_error)?;
    Ok(BuildList {
        now: chrono::Utc::now(),
        builds,
    })
}

#[server]
pub async fn get_stack(project: String, environment: String) -> Result<StackView, ServerFnError> {
    let card = ssr::backend()?
        .stack(&project, &environment)
        .await
        .map_err(ssr::to_server_error)?;
    Ok(StackView {
        now: chrono::Utc::now(),
        card,
    })
}

#[server]
pub async fn request_deployment(
    project: String,
    environment: String,
    build: String,
) -> Result<Deployment, ServerFnError> {
    let request = crate::deployment::StartDeployment {
        project,
        environment,
        build,
    };
    ssr::backend()?
        .start_deployment(request)
        .await
        .map_err(ssr::to_server_error)
}

#[server]
pub async fn request_cancel(id: String, confirm_delete: bool) -> Result<Deployment, ServerFnError> {
    ssr::backend()?
        .cancel_deployment(&id, confirm_delete)
        .await
        .map_err(ssr::to_server_error)
}

/// A stack's recent deployments and the newest one in full, for the card and its progress panel.
#[server]
pub async fn get_activity(project: String, environment: String) -> Result<Activity, ServerFnError> {
    let backend = ssr::backend()?;
    let history = backend
        .deployments(Some(&project), Some(&environment), 10)
        .await
        .map_err(ssr::to_server_error)?;
    let latest = match history.first() {
        Some(d) => Some(
            backend
                .deployment(&d.id)
                .await
                .map_err(ssr::to_server_error)?,
        ),
        None => None,
    };
    Ok(Activity { history, latest })
}

#[server]
pub async fn get_deployment(id: String) -> Result<DeploymentDetail, ServerFnError> {
    ssr::backend()?
        .deployment(&id)
        .await
        .map_err(ssr::to_server_error)
}

#[server]
pub async fn get_pause() -> Result<PauseStatus, ServerFnError> {
    ssr::backend()?
        .pause_status()
        .await
        .map_err(ssr::to_server_error)
}

#[server]
pub async fn pause_deployments(
    reason: String,
    environment: Option<String>,
    cancel_in_flight: bool,
) -> Result<PauseStatus, ServerFnError> {
    let request = crate::pause::PauseRequest {
        reason,
        environment,
        cancel_in_flight,
    };
    ssr::backend()?
        .pause(request)
        .await
        .map_err(ssr::to_server_error)
}

#[server]
pub async fn resume_deployments(environment: Option<String>) -> Result<PauseStatus, ServerFnError> {
    ssr::backend()?
        .unpause(environment.as_deref())
        .await
        .map_err(ssr::to_server_error)
}

#[server]
pub async fn get_audit(query: AuditQuery) -> Result<Vec<AuditEntry>, ServerFnError> {
    ssr::backend()?
        .audit(query)
        .await
        .map_err(ssr::to_server_error)
}

#[server]
pub async fn get_active_deployments() -> Result<Vec<Deployment>, ServerFnError> {
    ssr::backend()?
        .active_deployments()
        .await
        .map_err(ssr::to_server_error)
}

#[cfg(feature = "ssr")]
pub mod ssr {
    //! The seam between the pages and the server: the server implements [`Backend`] and provides
    //! it as `Arc<dyn Backend>` context, so the app never links the AWS SDK.

    use std::sync::Arc;

    use leptos::prelude::*;

    use crate::deployment::{Deployment, DeploymentDetail, StartDeployment};
    use crate::model::{Build, ErrorBody, Overview, StackCard};
    use crate::pause::{AuditEntry, AuditQuery, PauseRequest, PauseStatus};

    #[async_trait::async_trait]
    pub trait Backend: Send + Sync + 'static {
        fn overview(&self) -> Overview;
        async fn builds(
            &self,
            project: &str,
            branch: Option<&str>,
            limit: Option<usize>,
        ) -> Result<Vec<Build>, ErrorBody>;
        async fn stack(&self, project: &str, environment: &str) -> Result<StackCard, ErrorBody>;
        async fn start_deployment(&self, request: StartDeployment)
        -> Result<Deployment, ErrorBody>;
        async fn cancel_deployment(
            &self,
            id: &str,
            confirm_delete: bool,
        ) -> Result<Deployment, ErrorBody>;
        async fn deployments(
            &self,
            project: Option<&str>,
            environment: Option<&str>,
            limit: u32,
        ) -> Result<Vec<Deployment>, ErrorBody>;
        async fn deployment(&self, id: &str) -> Result<DeploymentDetail, ErrorBody>;
        async fn pause_status(&self) -> Result<PauseStatus, ErrorBody>;
        async fn pause(&self, request: PauseRequest) -> Result<PauseStatus, ErrorBody>;
        async fn unpause(&self, environment: Option<&str>) -> Result<PauseStatus, ErrorBody>;
        async fn audit(&self, query: AuditQuery) -> Result<Vec<AuditEntry>, ErrorBody>;
        async fn active_deployments(&self) -> Result<Vec<Deployment>, ErrorBody>;
    }

    pub type SharedBackend = Arc<dyn Backend>;

    pub fn backend() -> Result<SharedBackend, ServerFnError> {
        use_context::<SharedBackend>()
            .ok_or_else(|| ServerFnError::new("the deployer backend is not available"))
    }

    /// Error bodies are already summaries written for people; pass the message on.
    pub fn to_server_error(error: ErrorBody) -> ServerFnError {
        ServerFnError::new(error.message)
    }
}
