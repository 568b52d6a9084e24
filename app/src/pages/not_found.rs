//! Shown for any address the deployer does not know.

use leptos::prelude::*;

use crate::components::notice::Notice;

#[component]
pub fn NotFound() -> impl IntoView {
    crate::set_http_status(404);
    view! {
        <main class="page page-narrow">
            <Notice kind="error" title="Page not found">
                "There is nothing at this address. " <a href="/">"Go to the projects"</a> "."
            </Notice>
        </main>
        <crate::MarkLive/>
    }
}
