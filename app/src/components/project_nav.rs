//! The project list on the left.

use leptos::prelude::*;

use crate::model::Overview;

#[component]
pub fn ProjectNav(
    /// Environments and projects from the config.
    overview: Overview,
    /// The project shown now.
    #[prop(into)]
    current: Signal<String>,
    /// The environment shown now; kept when switching to a project that deploys there.
    #[prop(into)]
    env: Signal<String>,
) -> impl IntoView {
    // The overview is read again when the server says the projects changed.
    let projects = overview.projects;
    let item = move |p: crate::model::Project| {
        if let Some(problem) = p.problem.clone() {
            // A folder of the bucket that cannot be a project: listed, with the reason.
            let tip = problem.clone();
            return view! {
                <li>
                    <span class="nav-item unusable" title=tip>
                        <span class="nav-title">{p.name.clone()}</span>
                        <span class="nav-name">{problem}</span>
                    </span>
                </li>
            }
            .into_any();
        }
        let name = p.name.clone();
        let href = move || {
            let env = env.get();
            let env = if p.environments.contains(&env) {
                env
            } else {
                p.environments.first().cloned().unwrap_or_default()
            };
            format!("/projects/{}/{}", p.name, env)
        };
        let active = {
            let name = name.clone();
            move || current.get() == name
        };
        view! {
            <li>
                // A plain link, followed by the router without a reload (see the tabs).
                <a href=href
                    class={
                        let active = active.clone();
                        move || if active() { "nav-item active" } else { "nav-item" }
                    }
                    aria-current=move || active().then_some("page")
                >
                    <span class="nav-title">{p.title.clone()}</span>
                    <span class="nav-name">{name}</span>
                </a>
            </li>
        }
        .into_any()
    };
    view! {
        <nav class="sidebar" aria-label="Projects">
            <h2 class="sidebar-heading">"Projects"</h2>
            <ul class="nav-list">
                {projects.into_iter().map(item).collect_view()}
            </ul>
        </nav>
    }
}
