//! `/projects/<name>/<ENV>`: one project, one environment — the stack card and its builds.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::OverviewResource;
use crate::api::{
    get_activity, get_builds, get_project_promotion, get_stack, request_deployment,
    request_promotion,
};
use crate::components::{
    build_select::{BuildSelect, DeployAction},
    dialog::Question,
    env_tabs::EnvTabs,
    history::History,
    notice::Notice,
    progress::{ProgressPanel, ticking_clock},
    project_nav::ProjectNav,
    stack_card::{StackCard, StackDetails, StackHead, StackHeadError, StackHeadLoading},
};
use crate::deployment::DeploymentStatus;
use crate::live::{Live, environment_key, project_key};

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
                                <Notice kind="error" title="Could not load the configuration">{crate::api::error_message(&e)}</Notice>
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
    let live = expect_context::<Live>();
    // New deploy configs (pushed as `event: builds`) refetch the list: no reload.
    let builds = crate::api::load(
        move || {
            let p = project.get();
            let version = live.version(&crate::live::builds_key(&p));
            (p, version)
        },
        |(p, _)| crate::api::within_page_budget(get_builds(p)),
    );
    crate::api::ask_in_browser_if_late(builds);
    // Card and history reload whenever the server pushes a change of this project's deployments
    // here, and when it pushes a freshly read stack of this environment (a deployment's last word).
    let changes = move || {
        live.version(&project_key(&project.get(), &env.get()))
            + live.version(&environment_key(&env.get()))
    };
    let stack = crate::api::load(
        move || (project.get(), env.get(), changes()),
        |(p, e, _)| crate::api::within_page_budget(get_stack(p, e)),
    );
    crate::api::ask_in_browser_if_late(stack);
    let activity = crate::api::load(
        move || (project.get(), env.get(), changes()),
        |(p, e, _)| get_activity(p, e),
    );
    // What "Promote" would deploy here (the previous environment's build): refetched whenever any
    // stack changes, as the environment before may be the one that changed.
    let promotion = crate::api::load(
        move || (project.get(), live.version(crate::live::ANY_STACK)),
        |(p, _)| crate::api::within_page_budget(get_project_promotion(p)),
    );
    crate::api::ask_in_browser_if_late(promotion);
    let promote = Action::new(|(p, e): &(String, String)| request_promotion(p.clone(), e.clone()));
    Effect::new(move |_| {
        if let Some(Ok(d)) = promote.value().get() {
            live.saw_deployment(&d.project, &d.environment, &d.stack_name, &d.id);
        }
    });
    let clock = ticking_clock();
    // The build picked in the select, for this project and environment.
    let choice = RwSignal::new(None::<String>);
    let preview = crate::components::build_select::preview_state();
    Effect::new(move |_| {
        project.track();
        env.track();
        choice.set(None);
        preview.1.set(None);
    });
    let deploy: DeployAction =
        Action::new(|(p, e, b, recreate): &(String, String, String, bool)| {
            let (p, e, b, recreate) = (p.clone(), e.clone(), b.clone(), *recreate);
            async move {
                if recreate {
                    crate::api::request_recreate(p, e, b).await
                } else {
                    request_deployment(p, e, b).await
                }
            }
        });
    Effect::new(move |_| {
        if let Some(Ok(d)) = deploy.value().get() {
            live.saw_deployment(&d.project, &d.environment, &d.stack_name, &d.id);
        }
    });

    let asker = crate::components::dialog::use_asker();
    // The deploy row, rollback and promotion. They need the stack (what is deployed, whether it
    // is stuck), the builds and the history; the stack's head says why when the stack is unknown.
    // Rendered from the resources' newest answers, read synchronously: live updates refetch them
    // in quick succession, and an async view per refetch could finish out of order and leave an
    // older row on the page.
    let controls = move |env_name: String| {
        move || {
            let (stack, builds, activity) = (stack.get(), builds.get(), activity.get());
            // `Some(None)`: the server's render did not wait for it; the browser is asking.
            let view = stack??.ok()?;
            let (builds, activity) = (builds??, activity?.unwrap_or_default());
            let project_name = project.get_untracked();
            let deployed = view.card.build.clone();
            let history = activity.history;
            let running = history.first().filter(|d| d.status.is_active());
            let blocked = running.map(|d| {
                if d.status == DeploymentStatus::AwaitingApproval {
                    format!(
                        "{} waits for approval; approve it, discard it or cancel it.",
                        d.build
                    )
                } else {
                    format!(
                        "{} is being deployed ({}); wait for it or cancel it.",
                        d.build,
                        d.status.as_str()
                    )
                }
            });
            // The build deployed before the current one: the one-click rollback.
            let previous = history
                .iter()
                .filter(|d| d.status == DeploymentStatus::Succeeded)
                .map(|d| d.build.clone())
                .find(|b| Some(b) != deployed.as_ref());
            let select = match builds {
                Ok(list) => view! {
                    <BuildSelect list deployed=deployed.clone() project=project_name.clone()
                        environment=env_name.clone() blocked=blocked.clone() deploy choice preview
                        stuck=view.card.status.filter(|s| s.needs_recreate())/>
                }
                .into_any(),
                Err(e) => view! {
                    <Notice kind="error" title="Could not list the builds">{crate::api::error_message(&e)}</Notice>
                }
                .into_any(),
            };
            // Rolling back is deploying: hidden for those who may not deploy here (the select
            // above says why).
            let may_deploy = crate::use_me()
                .get_untracked()
                .is_none_or(|m| m.may_deploy(&env_name));
            let rollback = previous
                .filter(|_| blocked.is_none() && may_deploy)
                .map(|build| {
                    let (p, e, b) = (project_name.clone(), env_name.clone(), build.clone());
                    let stack_name = view.card.name.clone();
                    // The verdict first (what rolling back would run into), then the question.
                    let on_click = move |_| {
                        crate::components::build_select::ask_to_deploy_older(
                            asker,
                            deploy,
                            (p.clone(), e.clone(), b.clone()),
                            format!("Roll {stack_name} back to {b}?"),
                            format!("Roll back to {b}"),
                        );
                    };
                    view! {
                        <button type="button" class="btn btn-rollback" on:click=on_click>
                            {format!("Roll back to {build}")}
                        </button>
                    }
                });
            let promotable = promotion
                .get()
                .flatten()
                .and_then(Result::ok)
                .and_then(|row| {
                    row.environments
                        .into_iter()
                        .find(|c| c.environment == env_name)
                })
                .and_then(|c| Some((c.promote?, c.previous?)))
                .filter(|_| blocked.is_none() && may_deploy);
            let promote_button = promotable.map(|(build, from)| {
                let (p, e) = (project_name.clone(), env_name.clone());
                let question = format!("Promote {build} from {from} to {}?", view.card.name);
                let on_click = move |_| {
                    let (p, e) = (p.clone(), e.clone());
                    asker.ask(Question::new(
                        question.clone(),
                        "Promote",
                        Callback::new(move |()| {
                            promote.dispatch((p.clone(), e.clone()));
                        }),
                    ));
                };
                view! {
                    <button type="button" class="btn btn-secondary btn-promote" on:click=on_click
                        disabled=move || promote.pending().get()>
                        {format!("Promote {build} from {from}")}
                    </button>
                }
            });
            let recover = (view.card.status
                == Some(crate::model::StackStatus::UpdateRollbackFailed))
            .then(|| {
                view! {
                    <crate::components::recover::ContinueRollback project=project_name.clone()
                        environment=env_name.clone() stack_name=view.card.name.clone()
                        failed=view.card.failed_resources.clone()/>
                }
            });
            Some(view! {
                {recover}
                {select}
                {(rollback.is_some() || promote_button.is_some()).then(|| view! {
                    <div class="rollback-row">{promote_button}{rollback}</div>
                })}
                {move || promote.value().get().and_then(Result::err).map(|e| view! {
                    <crate::components::error_line::ErrorLine error=e/>
                })}
            })
        }
    };

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
            Some(environment) => {
                let name = p.stack_name(&env_name);
                let loading = (name.clone(), environment.clone());
                view! {
                    <StackCard name=name.clone()>
                        // Each part fills in as its own data arrives (the server streams each), so a
                        // slow AWS account holds back the stack's head, not the page.
                        <Transition fallback=move || view! { <StackHeadLoading name=loading.0.clone() environment=loading.1.clone()/> }>
                            {
                                let environment = environment.clone();
                                move || stack.get().map(|answer| match answer {
                                    Some(Ok(view)) => view! { <StackHead view environment=environment.clone()/> }.into_any(),
                                    Some(Err(error)) => view! { <StackHeadError name=name.clone() environment=environment.clone() error/> }.into_any(),
                                    // The server did not wait for AWS: the browser asks.
                                    None => view! { <StackHeadLoading name=name.clone() environment=environment.clone()/> }.into_any(),
                                })
                            }
                        </Transition>
                        <Transition fallback=|| ()>{controls(env_name.clone())}</Transition>
                        <Transition fallback=|| view! { <p class="loading small">"Loading the history…"</p> }>
                            {move || activity.get().map(|answer| match answer {
                                Err(e) => view! {
                                    <Notice kind="error" title="Could not read the history">{crate::api::error_message(&e)}</Notice>
                                }.into_any(),
                                Ok(activity) => {
                                    view! {
                                        {activity.latest.map(|detail| view! { <ProgressPanel detail now=clock/> })}
                                        <History deployments=activity.history now=clock.get_untracked()/>
                                    }.into_any()
                                }
                            })}
                        </Transition>
                        <Transition fallback=|| ()>
                            {move || stack.get().flatten().and_then(Result::ok).map(|view| view! { <StackDetails view/> })}
                        </Transition>
                    </StackCard>
                }
                .into_any()
            }
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
