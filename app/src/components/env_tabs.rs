//! The environment tabs (DEV / STG / PRD / GBL), in promotion order.

use leptos::prelude::*;
use leptos_router::components::A;

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
                view! {
                    <A href=href
                        attr:class=move || if selected.get() { "tab active" } else { "tab" }
                        attr:role="tab"
                        attr:aria-selected=move || selected.get().to_string()
                        attr:title=title
                    >{name}</A>
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
