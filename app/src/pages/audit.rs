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
    // The form as the URL says, rendered by the server (the options marked `selected`, the
    // actor's `value`): right before the page is live, and hydration leaves what a person changed
    // meanwhile alone. Once live, a link that changes the URL (Clear, Older) sets the controls.
    let form = NodeRef::<leptos::html::Form>::new();
    Effect::new(move |first: Option<()>| {
        let wanted: Vec<(&str, String)> = ["environment", "project", "action", "actor"]
            .into_iter()
            .map(|key| (key, selected(key)()))
            .collect();
        if first.is_some()
            && let Some(form) = form.get_untracked()
        {
            set_controls(&form, &wanted);
        }
    });
    let option = move |key: &'static str, value: String, label: String| {
        let is = value.clone();
        view! { <option value=value selected=move || selected(key)() == is>{label}</option> }
    };
    view! {
        <Title text="Audit — Deployer"/>
        <main class="page page-wide">
            <div class="page-head"><h1>"Audit"</h1><p class="muted small">"Every deploy, rollback, cancel, pause and resume: who, when and why."</p></div>
            <form class="filters" method="get" action="/audit" node_ref=form>
                <label class="field"><span class="field-label">"Environment"</span>
                    <select class="select" name="environment">
                        <option value="">"any"</option>
                        <Suspense fallback=|| ()>{move || Suspend::new(async move {
                            overview.await.ok().map(|o| o.environments.into_iter().map(|e| option("environment", e.name.clone(), e.name)).collect_view())
                        })}</Suspense>
                    </select>
                </label>
                <label class="field"><span class="field-label">"Project"</span>
                    <select class="select" name="project">
                        <option value="">"any"</option>
                        <Suspense fallback=|| ()>{move || Suspend::new(async move {
                            overview.await.ok().map(|o| o.projects.into_iter().map(|p| option("project", p.name, p.title)).collect_view())
                        })}</Suspense>
                    </select>
                </label>
                <label class="field"><span class="field-label">"Action"</span>
                    <select class="select" name="action">
                        <option value="">"any"</option>
                        {AuditAction::ALL.iter().map(|a| option("action", a.as_str().to_owned(), a.as_str().replace('_', " "))).collect_view()}
                    </select>
                </label>
                <label class="field"><span class="field-label">"Actor"</span>
                    <input class="select" name="actor" value=selected("actor") placeholder="anyone"/>
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

/// Sets the filter form's controls to these values (a select to "any" when its value is not
/// among its options).
fn set_controls(form: &web_sys::HtmlFormElement, wanted: &[(&str, String)]) {
    use leptos::wasm_bindgen::JsCast;
    let elements = form.elements();
    for (name, value) in wanted {
        let Some(control) = elements.named_item(name) else {
            continue;
        };
        if let Some(select) = control.dyn_ref::<web_sys::HtmlSelectElement>() {
            select.set_value(value);
            if select.selected_index() < 0 {
                select.set_selected_index(0);
            }
        } else if let Some(input) = control.dyn_ref::<web_sys::HtmlInputElement>() {
            input.set_value(value);
        }
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
