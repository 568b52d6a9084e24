//! The top bar on every page: where you are, the audit trail, and the big red Pause button.

use leptos::prelude::*;

use crate::components::pause::PauseControl;

#[component]
pub fn Header() -> impl IntoView {
    view! {
        <header class="topbar">
            <a class="brand" href="/">
                <span class="brand-crumb">"admin tool"</span>
                <span class="brand-sep" aria-hidden="true">"›"</span>
                <span class="brand-name">"Deployer"</span>
            </a>
            <nav class="topbar-actions" aria-label="Tools">
                <a class="topbar-link" href="/audit">"Audit"</a>
                <PauseControl/>
            </nav>
        </header>
    }
}
