//! Server functions used by the pages. Their bodies run on the server against the [`ssr::Backend`]
//! the server provides as context; the browser calls them over HTTP.

use leptos::prelude::*;

use crate::model::{BuildList, Overview, StackView};

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

#[cfg(feature = "ssr")]
pub mod ssr {
    //! The seam between the pages and the server: the server implements [`Backend`] and provides
    //! it as `Arc<dyn Backend>` context, so the app never links the AWS SDK.

    use std::sync::Arc;

    use leptos::prelude::*;

    use crate::model::{Build, ErrorBody, Overview, StackCard};

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
