//! The top bar on every page: where you are, and (on the right) the tool-wide controls.

use leptos::prelude::*;

#[component]
pub fn Header() -> impl IntoView {
    view! {
        <header class="topbar">
            <a class="brand" href="/">
                <span class="brand-crumb">"admin tool"</span>
                <span class="brand-sep" aria-hidden="true">"›"</span>
                <span class="brand-name">"Deployer"</span>
            </a>
            // The pause button and the Jenkins builds panel take this place.
            <div class="topbar-actions" id="topbar-actions"></div>
        </header>
    }
}
