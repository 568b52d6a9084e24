//! `/projects/<name>/<ENV>`: one project, one environment — the stack card and its builds.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::OverviewResource;
use crate::api::{get_builds, get_stack};
use crate::components::{
    build_select::BuildSelect, env_tabs::EnvTabs, notice::Notice, project_nav::ProjectNav,
    stack_card::StackCard,
};

#[component]
pub fn ProjectPage() -> impl IntoView {
    let overview = expect_context::<OverviewResource>();
    let params = use_params_map();
    let project = Memo::new(move |_| params.read().get("project").unwrap_or_default());
    let env = Memo::new(move |_| params.read().get("env").unwrap_or_default());

    view! {
        <Title text=move || format!("{} · {} — Deployer", project.get(), env.get())/>
        <div class="layout">
            <Suspense fallback=|| view! { <nav class="sidebar"><p class="loading">"Loading…"</p></nav> }>
                {move || Suspend::new(async move {
                    overview.await.ok().map(|o| view! { <ProjectNav overview=o current=project env=env/> })
                })}
            </Suspense>
            <main class="page">
                <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match overview.await {
                            Err(e) => view! {
                                <Notice kind="error" title="Could not load the configuration">{e.to_string()}</Notice>
                            }.into_any(),
                            Ok(o) => view! { <ProjectMain overview=o project=project env=env/> }.into_any(),
                        }
                    })}
                </Suspense>
            </main>
        </div>
    }
}

/// The right-hand side: heading, tabs and the stack card, once the config is known.
#[component]
fn ProjectMain(
    overview: crate::model::Overview,
    project: Memo<String>,
    env: Memo<String>,
) -> impl IntoView {
    let builds = Resource::new(move || project.get(), get_builds);
    let stack = Resource::new(move || (project.get(), env.get()), |(p, e)| get_stack(p, e));

    move || {
        let Some(p) = overview.project(&project.get()).cloned() else {
            crate::set_http_status(404);
            return view! {
                <Notice kind="error" title="No such project">
                    {format!("No project is called “{}”.", project.get())}
                </Notice>
            }
            .into_any();
        };
        let env_name = env.get();
        let environment = overview
            .environments
            .iter()
            .find(|e| e.name == env_name)
            .cloned();
        let body = match environment {
            None => view! {
                <Notice kind="error" title="No such environment">
                    {format!("There is no environment called “{env_name}”.")}
                </Notice>
            }
            .into_any(),
            Some(_) if !p.environments.contains(&env_name) => view! {
                <Notice kind="info" title="Not deployed here">
                    {format!("{} does not deploy to {}.", p.title, env_name)}
                </Notice>
            }
            .into_any(),
            Some(environment) => view! {
                <Transition fallback=|| view! { <div class="card card-loading"><p class="loading">"Loading stack…"</p></div> }>
                    {move || {
                        let environment = environment.clone();
                        Suspend::new(async move {
                            let (stack, builds) = (stack.await, builds.await);
                            match stack {
                                Err(e) => view! {
                                    <Notice kind="error" title="Could not read the stack">{e.to_string()}</Notice>
                                }.into_any(),
                                Ok(view) => {
                                    let deployed = view.card.build.clone();
                                    let select = match builds {
                                        Ok(list) => view! { <BuildSelect list deployed/> }.into_any(),
                                        Err(e) => view! {
                                            <Notice kind="error" title="Could not list the builds">{e.to_string()}</Notice>
                                        }.into_any(),
                                    };
                                    view! { <StackCard view environment>{select}</StackCard> }.into_any()
                                }
                            }
                        })
                    }}
                </Transition>
            }
            .into_any(),
        };
        view! {
            <div class="page-head">
                <h1>{p.title.clone()}</h1>
                <p class="muted mono small" title="Where the build server writes this project's deploy configs">
                    {p.artifacts_url.clone()}
                </p>
            </div>
            <EnvTabs environments=overview.environments.clone() project=p current=env/>
            {body}
        }
        .into_any()
    }
}
