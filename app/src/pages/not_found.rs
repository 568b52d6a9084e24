//! Shown for any address the deployer does not know.

use leptos::prelude::*;

use crate::components::notice::Notice;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <main class="page page-narrow">
            <Notice kind="error" title="Page not found">
                "There is nothing at this address. " <a href="/">"Go to the projects"</a> "."
            </Notice>
        </main>
    }
}

