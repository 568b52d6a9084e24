//! The environment tabs (DEV / STG / PRD / GBL), in promotion order.

use leptos::prelude::*;

use crate::model::{Environment, Project};

#[component]
pub fn EnvTabs(
    /// All configured environments, in promotion order.
    environments: Vec<Environment>,
    /// The project whose stacks the tabs select.
    project: Project,
    /// The selected environment.
    #[prop(into)]
    current: Signal<String>,
) -> impl IntoView {
    let tabs = environments
        .into_iter()
        .map(|env| {
            let deploys_here = project.environments.contains(&env.name);
            let name = env.name.clone();
            let selected = {
                let name = name.clone();
                Signal::derive(move || current.get() == name)
            };
            let title = format!("account {} · {}", env.account_id, env.region);
            if deploys_here {
                let href = format!("/projects/{}/{}", project.name, env.name);
                // A plain link: the router follows it without a reload. (The router's `<A>`
                // with `attr:` closures leaves them running after the tabs are gone when views
                // are erased, and they read the tabs' own disposed signals.)
                view! {
                    <a href=href
                        class=move || if selected.get() { "tab active" } else { "tab" }
                        role="tab"
                        aria-selected=move || selected.get().to_string()
                        aria-current=move || selected.get().then_some("page")
                        title=title
                    >{name}</a>
                }
                .into_any()
            } else {
                let title = format!("{} does not deploy to {}", project.title, env.name);
                view! {
                    <span class="tab disabled" role="tab" aria-disabled="true" aria-selected="false" title=title>
                        {name}
                    </span>
                }
                .into_any()
            }
        })
        .collect_view();
    view! { <div class="tabs" role="tablist" aria-label="Environments">{tabs}</div> }
}
