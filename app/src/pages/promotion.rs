//! `/promotion`: every project across its environments at once — what runs where, how far each
//! environment is behind the one before, and "Promote" in one click. Live: any deployment or
//! freshly read stack refetches it.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{get_promotion, request_promotion};
use crate::components::notice::Notice;
use crate::live::{ANY_STACK, Live};
use crate::model::{PromotionCell, PromotionMatrix, StackStatus};
use crate::time::ago;

#[component]
pub fn PromotionPage() -> impl IntoView {
    let live = expect_context::<Live>();
    let matrix = crate::api::load(move || live.version(ANY_STACK), |_| get_promotion());
    let promote = Action::new(|(p, e): &(String, String)| request_promotion(p.clone(), e.clone()));
    Effect::new(move |_| {
        if let Some(Ok(d)) = promote.value().get() {
            live.saw_deployment(&d.project, &d.environment, &d.stack_name, &d.id);
        }
    });
    let error = move || promote.value().get().and_then(Result::err);
    view! {
        <Title text="Promotion — Deployer"/>
        <main class="page page-wide">
            <div class="page-head">
                <h1>"Promotion"</h1>
                <p class="muted small">"What runs where, in promotion order. Promote deploys the build the environment before runs."</p>
            </div>
            {move || error().map(|e| view! { <crate::components::error_line::ErrorLine error=e/> })}
            <Transition fallback=|| view! { <p class="loading">"Loading the environments…"</p> }>
                // Rendered from the newest answer, read synchronously (see the project page).
                {move || matrix.get().map(|answer| match answer {
                    Err(e) => view! {
                        <Notice kind="error" title="Could not read the stacks">{crate::api::error_message(&e)}</Notice>
                    }.into_any(),
                    Ok(m) => view! { <Matrix matrix=m promote/> }.into_any(),
                })}
            </Transition>
        </main>
    }
}

#[component]
fn Matrix(
    matrix: PromotionMatrix,
    promote: Action<
        (String, String),
        Result<crate::deployment::Deployment, crate::error::ErrorBody>,
    >,
) -> impl IntoView {
    // The columns: every environment some project deploys to, in the order the first project
    // that has it lists it (the config's promotion order).
    let mut columns: Vec<String> = Vec::new();
    for p in &matrix.projects {
        for c in &p.environments {
            if !columns.contains(&c.environment) {
                columns.push(c.environment.clone());
            }
        }
    }
    let head = columns
        .iter()
        .map(|e| view! { <th scope="col">{e.clone()}</th> })
        .collect_view();
    let now = matrix.now;
    let rows = matrix
        .projects
        .into_iter()
        .map(|p| {
            let cells = columns
                .iter()
                .map(|env| {
                    match p
                        .environments
                        .iter()
                        .find(|c| &c.environment == env)
                        .cloned()
                    {
                        None => {
                            view! { <td class="matrix-cell matrix-none muted">"—"</td> }.into_any()
                        }
                        Some(cell) => {
                            view! { <Cell project=p.project.clone() cell now promote/> }.into_any()
                        }
                    }
                })
                .collect_view();
            view! {
                <tr>
                    <th scope="row" class="matrix-project">
                        <a href=format!("/projects/{}", p.project)>{p.title.clone()}</a>
                    </th>
                    {cells}
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="card matrix-card">
            <table class="matrix" aria-label="Builds by project and environment">
                <thead><tr><th scope="col">"Project"</th>{head}</tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}

#[component]
fn Cell(
    project: String,
    cell: PromotionCell,
    now: chrono::DateTime<chrono::Utc>,
    promote: Action<
        (String, String),
        Result<crate::deployment::Deployment, crate::error::ErrorBody>,
    >,
) -> impl IntoView {
    let href = format!("/projects/{project}/{}", cell.environment);
    // The stack could not be read: say so, with why, rather than "not deployed".
    if let Some(reason) = cell.unknown.clone() {
        return view! {
            <td class="matrix-cell matrix-unknown" data-environment=cell.environment.clone()
                data-build="" data-unknown="true">
                <a class="matrix-build mono" href=href>"—"</a>
                <span class="badge tone-none" title=reason.clone()>
                    <span class="badge-dot" aria-hidden="true"></span>"unknown"
                </span>
                <span class="matrix-unknown-reason small muted">{reason}</span>
            </td>
        }
        .into_any();
    }
    let status = cell
        .status
        .map_or_else(|| "not deployed".to_owned(), StackStatus::label);
    let behind = match (cell.behind, &cell.previous) {
        (Some(0), _) | (None, _) | (_, None) => None,
        (Some(1), Some(prev)) => Some(format!("1 build behind {prev}")),
        (Some(n), Some(prev)) => Some(format!("{n} builds behind {prev}")),
    };
    let age = cell.updated_at.map(|t| ago(now, t));
    let may_deploy = crate::use_me()
        .get_untracked()
        .is_none_or(|m| m.may_deploy(&cell.environment));
    let button = cell.promote.clone().filter(|_| may_deploy).map(|build| {
        let (p, e) = (project.clone(), cell.environment.clone());
        let label = format!("Promote {build} to {e}");
        let asker = crate::components::dialog::use_asker();
        let question = format!("Promote {build} to {p} in {e}?");
        let on_click = move |_| {
            let (p, e) = (p.clone(), e.clone());
            asker.ask(crate::components::dialog::Question::new(
                question.clone(),
                "Promote",
                Callback::new(move |()| {
                    promote.dispatch((p.clone(), e.clone()));
                }),
            ));
        };
        view! {
            <button type="button" class="btn btn-secondary btn-small" aria-label=label.clone() title=label
                disabled=move || promote.pending().get() on:click=on_click>
                {format!("Promote {build}")}
            </button>
        }
    });
    view! {
        <td class="matrix-cell" data-environment=cell.environment.clone()
            data-build=cell.build.clone().unwrap_or_default()>
            <a class="matrix-build mono" href=href>{cell.build.clone().unwrap_or_else(|| "—".to_owned())}</a>
            <span class=format!("badge {}", cell.tone.css_class())>
                <span class="badge-dot" aria-hidden="true"></span>{status}
            </span>
            {age.map(|a| view! { <span class="matrix-age small muted">{a}</span> })}
            {behind.map(|b| view! { <span class="matrix-behind small">{b}</span> })}
            {button}
        </td>
    }
    .into_any()
}
