//! `/` and `/projects/<name>`: send the browser to a concrete view, so every URL names one.

use leptos::prelude::*;
use leptos_router::{components::Redirect, hooks::use_params_map};

use crate::{OverviewResource, components::notice::Notice};

#[component]
pub fn HomePage() -> impl IntoView {
    let overview = expect_context::<OverviewResource>();
    let params = use_params_map();
    view! {
        <Suspense fallback=|| view! { <main class="page"><p class="loading">"Loading projects…"</p></main> }>
            {move || Suspend::new(async move {
                let wanted = params.read().get("project");
                match overview.await {
                    Err(e) => view! {
                        <main class="page page-narrow">
                            <Notice kind="error" title="Could not load the configuration">{crate::api::error_message(&e)}</Notice>
                        </main>
                    }.into_any(),
                    Ok(overview) => {
                        let project = match &wanted {
                            Some(name) => overview.project(name),
                            None => overview.projects.first(),
                        };
                        match project {
                            Some(p) => {
                                let env = p.environments.first().cloned().unwrap_or_default();
                                let to = format!("/projects/{}/{}", p.name, env);
                                crate::set_http_status(302);
                                view! { <Redirect path=to/> }.into_any()
                            }
                            None => {
                                crate::set_http_status(404);
                                view! {
                                <main class="page page-narrow">
                                    <Notice kind="error" title="No such project">
                                        {match wanted {
                                            Some(name) => format!("No project is called “{name}”. Pick one from the configuration."),
                                            None => "No projects are configured. Add a [[projects]] entry to the config file.".to_owned(),
                                        }}
                                    </Notice>
                                </main>
                            }.into_any()
                            }
                        }
                    }
                }
            })}
        </Suspense>
    }
}
