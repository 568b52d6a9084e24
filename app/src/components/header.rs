//! The top bar on every page: where you are, the audit trail, the big red Pause button, and who
//! is logged in (name, role, log out).

use leptos::prelude::*;

use crate::components::pause::PauseControl;

#[component]
pub fn Header() -> impl IntoView {
    let me = crate::use_me();
    view! {
        <header class="topbar">
            <a class="brand" href="/">
                <span class="brand-crumb">"admin tool"</span>
                <span class="brand-sep" aria-hidden="true">"›"</span>
                <span class="brand-name">"Deployer"</span>
            </a>
            <nav class="topbar-actions" aria-label="Tools">
                <crate::components::jenkins::JenkinsPanel/>
                <a class="topbar-link" href="/promotion">"Promotion"</a>
                <a class="topbar-link" href="/audit">"Audit"</a>
                <Suspense fallback=|| ()>
                    {move || me.get().filter(|m| m.admin).map(|_| view! {
                        <a class="topbar-link" href="/tokens">"Tokens"</a>
                        <a class="topbar-link" href="/webhooks">"Webhooks"</a>
                    })}
                </Suspense>
                <PauseControl/>
                <Suspense fallback=|| ()>
                    {move || me.get().map(|m| {
                        let role = m.role_label();
                        let title = format!("{} · {}", m.name, role);
                        view! {
                            <span class="user" data-user=m.name.clone() title=title>
                                <span class="user-name">{m.display_name.clone()}</span>
                                <span class="user-role">{role}</span>
                            </span>
                        }
                    })}
                </Suspense>
                // A plain form: logging out works before (and without) the wasm.
                <form method="post" action="/auth/logout" class="logout">
                    <button type="submit" class="topbar-link btn-link">"Log out"</button>
                </form>
            </nav>
        </header>
    }
}
