//! `/audit`: who did what, when and why — newest first, filtered and paged by the URL.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::OverviewResource;
use crate::api::get_audit;
use crate::components::notice::Notice;
use crate::live::Live;
use crate::pause::{AuditAction, AuditQuery};

const PAGE: u32 = 50;

#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let overview = expect_context::<OverviewResource>();
    let live = expect_context::<Live>();
    let filter = Memo::new(move |_| {
        let q = query.read();
        let text = |k: &str| q.get(k).filter(|v| !v.is_empty());
        AuditQuery {
            environment: text("environment"),
            project: text("project"),
            action: text("action"),
            actor: text("actor"),
            before: text("before").and_then(|b| b.parse().ok()),
            limit: Some(PAGE),
        }
    });
    // New actions (pushed live) refresh the first page.
    let entries = crate::api::load(
        move || {
            (
                filter.get(),
                live.everything.get(),
                live.pause.get().is_some(),
            )
        },
        |(q, _, _)| get_audit(q),
    );
    let selected = move |key: &'static str| move || query.read().get(key).unwrap_or_default();
    view! {
        <Title text="Audit — Deployer"/>
        <main class="page page-wide">
            <div class="page-head"><h1>"Audit"</h1><p class="muted small">"Every deploy, rollback, cancel, pause and resume: who, when and why."</p></div>
            <form class="filters" method="get" action="/audit">
                <label class="field"><span class="field-label">"Environment"</span>
                    <select class="select" name="environment" prop:value=selected("environment")>
                        <option value="">"any"</option>
                        <Suspense fallback=|| ()>{move || Suspend::new(async move {
                            overview.await.ok().map(|o| o.environments.into_iter().map(|e| view! { <option value=e.name.clone()>{e.name.clone()}</option> }).collect_view())
                        })}</Suspense>
                    </select>
                </label>
                <label class="field"><span class="field-label">"Project"</span>
                    <select class="select" name="project" prop:value=selected("project")>
                        <option value="">"any"</option>
                        <Suspense fallback=|| ()>{move || Suspend::new(async move {
                            overview.await.ok().map(|o| o.projects.into_iter().map(|p| view! { <option value=p.name.clone()>{p.title.clone()}</option> }).collect_view())
                        })}</Suspense>
                    </select>
                </label>
                <label class="field"><span class="field-label">"Action"</span>
                    <select class="select" name="action" prop:value=selected("action")>
                        <option value="">"any"</option>
                        {AuditAction::ALL.iter().map(|a| view! { <option value=a.as_str()>{a.as_str().replace('_', " ")}</option> }).collect_view()}
                    </select>
                </label>
                <label class="field"><span class="field-label">"Actor"</span>
                    <input class="select" name="actor" prop:value=selected("actor") placeholder="anyone"/>
                </label>
                <button type="submit" class="btn btn-primary">"Filter"</button>
                <a class="btn btn-secondary" href="/audit">"Clear"</a>
            </form>
            <Transition fallback=|| view! { <p class="loading">"Loading the audit trail…"</p> }>
                {move || Suspend::new(async move {
                    match entries.await {
                        Err(e) => view! { <Notice kind="error" title="Could not read the audit trail">{crate::api::error_message(&e)}</Notice> }.into_any(),
                        Ok(list) if list.is_empty() => view! { <p class="muted">"Nothing recorded matches."</p> }.into_any(),
                        Ok(list) => {
                            let older = (list.len() as u32 == PAGE).then(|| list.last().map(|e| e.id)).flatten().map(|last| {
                                let f = filter.get_untracked();
                                let mut href = format!("/audit?before={last}");
                                for (k, v) in [("environment", f.environment), ("project", f.project), ("action", f.action), ("actor", f.actor)] {
                                    if let Some(v) = v { href.push_str(&format!("&{k}={v}")); }
                                }
                                href
                            });
                            let rows = list.into_iter().map(|e| {
                                let stack = [e.project.clone(), e.environment.clone()].into_iter().flatten().collect::<Vec<_>>().join(" · ");
                                let build = e.build.clone().map(|b| view! { <div class="nowrap">{b}</div> });
                                // Ids are long and alike at a glance: the start, the whole on hover.
                                let link = e.deployment_id.clone().map(|id| {
                                    let short = format!("{}…", id.chars().take(10).collect::<String>());
                                    view! { <a class="mono small nowrap" href=format!("/deployments/{id}") title=id.clone()>{short}</a> }
                                });
                                view! {
                                    <tr data-action=e.action.as_str()>
                                        <td class="mono small nowrap" title=e.at.to_rfc3339()>{e.at.format("%Y-%m-%d").to_string()}<br/>{e.at.format("%H:%M:%S UTC").to_string()}</td>
                                        <td class="nowrap">{e.actor.clone()}</td>
                                        <td>{action_badge(e.action, e.outcome.clone())}</td>
                                        <td class="mono small"><div class="nowrap">{stack}</div>{build}</td>
                                        <td class="small why">{e.detail.clone().unwrap_or_default()}</td>
                                        <td>{link}</td>
                                    </tr>
                                }
                            }).collect_view();
                            view! {
                                <div class="card">
                                    <table class="kv audit-table">
                                        <thead><tr><th>"When"</th><th>"Who"</th><th>"Action"</th><th>"Target"</th><th>"Why / outcome"</th><th>"Deployment"</th></tr></thead>
                                        <tbody>{rows}</tbody>
                                    </table>
                                </div>
                                <p class="pager">
                                    {older.map(|href| view! { <a href=href>"Older →"</a> })}
                                </p>
                            }.into_any()
                        }
                    }
                })}
            </Transition>
        </main>
    }
}

/// An action's badge; a finished deployment's wears its outcome (a failure is not green), in
/// words as well as colour.
fn action_badge(action: crate::pause::AuditAction, outcome: Option<String>) -> impl IntoView {
    let action = action.as_str();
    let (class, text) = match (action, outcome.as_deref()) {
        ("deploy_finished", Some(outcome)) => (
            format!("action action-deploy_finished outcome-{outcome}"),
            format!("deploy finished: {outcome}"),
        ),
        _ => (format!("action action-{action}"), action.replace('_', " ")),
    };
    view! { <span class=class>{text}</span> }
}
