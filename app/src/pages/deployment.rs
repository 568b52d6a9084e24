//! `/deployments/<id>`: everything recorded about one deployment — steps, change set, events.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::get_deployment;
use crate::components::{
    notice::Notice,
    progress::{ProgressPanel, ticking_clock},
};
use crate::live::Live;

#[component]
pub fn DeploymentPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    let live = expect_context::<Live>();
    let detail = crate::api::load(
        move || (id.get(), live.version(&format!("deployment:{}", id.get()))),
        |(id, _)| get_deployment(id),
    );
    let now = ticking_clock();
    view! {
        <Title text=move || format!("Deployment {} — Deployer", id.get())/>
        <main class="page page-wide">
            <Transition fallback=|| view! { <p class="loading">"Loading the deployment…"</p> }>
                // Rendered from the newest answer, read synchronously (see the project page): a
                // deployment's events refetch it in quick succession.
                {move || detail.get().map(|detail| {
                    match detail {
                        Err(e) => view! {
                            <Notice kind="error" title="No such deployment">{crate::api::error_message(&e)}</Notice>
                        }.into_any(),
                        Ok(d) => {
                            let dep = d.deployment.clone();
                            let back = format!("/projects/{}/{}", dep.project, dep.environment);
                            let changes = d.change_set.clone().map(|c| {
                                let rows = c.changes.iter().map(|r| view! {
                                    <tr>
                                        <td>{r.action.clone()}</td>
                                        <td class="mono">{r.logical_id.clone()}</td>
                                        <td class="muted">{r.resource_type.clone()}</td>
                                        <td>{r.replacement.clone().unwrap_or_default()}</td>
                                    </tr>
                                }).collect_view();
                                view! {
                                    <section class="card-section">
                                        <h3>"Change set"</h3>
                                        <p class="small">{format!("{} to add · {} to modify · {} to remove · {} replaced", c.add, c.modify, c.remove, c.replace)}</p>
                                        {(!c.changes.is_empty()).then(|| view! {
                                            <table class="kv"><thead><tr><th>"Action"</th><th>"Resource"</th><th>"Type"</th><th>"Replacement"</th></tr></thead>
                                            <tbody>{rows}</tbody></table>
                                        })}
                                    </section>
                                }
                            });
                            let events = d.events.iter().map(|e| view! {
                                <tr>
                                    <td class="mono small">{e.timestamp.format("%Y-%m-%d %H:%M:%S").to_string()}</td>
                                    <td class="mono">{e.logical_id.clone()}</td>
                                    <td class="muted small">{e.resource_type.clone()}</td>
                                    <td class="mono small">{e.status.clone()}</td>
                                    <td class="small">{e.reason.clone().unwrap_or_default()}</td>
                                </tr>
                            }).collect_view();
                            view! {
                                <p class="small"><a href=back>{format!("← {} in {}", dep.project, dep.environment)}</a></p>
                                <div class="page-head">
                                    <h1>"Deployment"</h1>
                                    <p class="muted mono small">{dep.id.clone()}</p>
                                </div>
                                <div class="card">
                                    <p class="small muted">{format!("by {} · started {}", dep.actor, crate::time::exact(dep.started_at))}</p>
                                    <ProgressPanel detail=d.clone() now/>
                                    {changes}
                                    <section class="card-section">
                                        <h3>{format!("Stack events ({})", d.events.len())}</h3>
                                        <table class="kv events"><tbody>{events}</tbody></table>
                                    </section>
                                </div>
                            }.into_any()
                        }
                    }
                })}
            </Transition>
        </main>
    }
}
