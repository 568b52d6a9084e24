//! The "deploy config" select and the Deploy button: the project's builds, newest first, with
//! the deployed one marked and the undeployable ones disabled with their reason.

use leptos::prelude::*;

use crate::components::changes::{ChangeLine, ChangesTable, interrupting};
use crate::components::dialog::Question;
use crate::model::{Build, BuildList};
use crate::time::ago;

/// What the Deploy button dispatches: (project, environment, build, recreate — the stack's
/// first create failed, and the person confirmed it is deleted and created again).
pub type DeployAction = Action<
    (String, String, String, bool),
    Result<crate::deployment::Deployment, crate::error::ErrorBody>,
>;

/// The rollback verdict in words, for the question a person confirms before deploying an older
/// build.
pub fn verdict_words(
    verdict: Result<crate::model::RollbackVerdict, crate::error::ErrorBody>,
) -> String {
    match verdict {
        Ok(v) if v.warnings.is_empty() => "Checked: its imports exist, the exports it drops are not imported elsewhere, its parameters are complete, its images exist.".to_owned(),
        Ok(v) => {
            let lines: Vec<String> = v.warnings.iter().map(|w| format!("• {}", w.message)).collect();
            format!("Warnings:\n{}", lines.join("\n"))
        }
        Err(e) => format!("It could not be checked: {}", crate::api::error_message(&e)),
    }
}

/// What the Preview button asks, and which build it asked about.
pub type PreviewState = (
    Action<
        (String, String, String),
        Result<Vec<crate::model::PreviewChange>, crate::error::ErrorBody>,
    >,
    RwSignal<Option<String>>,
);

/// A fresh [`PreviewState`], for the page to keep.
pub fn preview_state() -> PreviewState {
    (
        Action::new(|(p, e, b): &(String, String, String)| {
            crate::api::get_preview(p.clone(), e.clone(), b.clone())
        }),
        RwSignal::new(None),
    )
}

#[component]
pub fn BuildSelect(
    /// The project's builds, newest first.
    list: BuildList,
    /// The build deployed on the stack shown, if any.
    deployed: Option<String>,
    /// The project and environment a deploy goes to.
    project: String,
    environment: String,
    /// Why deploying is not possible now (a deployment is running), if it is not.
    blocked: Option<String>,
    /// The stack's first create failed (its status, e.g. `ROLLBACK_COMPLETE`): deploying deletes
    /// it and creates it again, after a confirmation.
    stuck: Option<crate::model::StackStatus>,
    /// The Preview button's request and the build it asked about, kept by the page.
    preview: PreviewState,
    /// Starts a deployment.
    deploy: DeployAction,
    /// The build the person picked, kept by the page: the card re-renders on every live update,
    /// and a pick must survive that (until the build is no longer offered).
    choice: RwSignal<Option<String>>,
) -> impl IntoView {
    let now = list.now;
    let first_deployable = list
        .builds
        .iter()
        .find(|b| b.deployable)
        .map(|b| b.id.clone());
    let picked = choice
        .get_untracked()
        .filter(|c| list.builds.iter().any(|b| b.deployable && &b.id == c));
    let initial = picked.or_else(|| first_deployable.clone());
    let selected = RwSignal::new(initial.clone().unwrap_or_default());
    let count = list.builds.len();
    // Earlier builds of the deployed one's branch: deploying one is going back, and the verdict
    // on it comes first, as for the card's rollback.
    let current = deployed
        .as_ref()
        .and_then(|d| list.builds.iter().find(|b| &b.id == d))
        .and_then(|b| Some((b.branch.clone()?, b.number?)));
    let older: Vec<String> = list
        .builds
        .iter()
        .filter(|b| {
            current.as_ref().is_some_and(|(branch, number)| {
                b.branch.as_ref() == Some(branch) && b.number.is_some_and(|n| n < *number)
            })
        })
        .map(|b| b.id.clone())
        .collect();
    let options = list
        .builds
        .into_iter()
        .map(|build: Build| {
            let is_deployed = deployed.as_deref() == Some(build.id.as_str());
            let mut label = format!("{} · {}", build.id, ago(now, build.created_at));
            if is_deployed {
                label.push_str(" · deployed");
            }
            if let Some(problem) = &build.problem {
                label.push_str(&format!(" · not deployable: {problem}"));
            }
            let is_selected = initial.as_deref() == Some(build.id.as_str());
            view! {
                <option
                    value=build.id.clone()
                    disabled=!build.deployable
                    selected=is_selected
                    title=build.problem.clone().unwrap_or_default()
                    data-deployed=is_deployed.to_string()
                >
                    {label}
                </option>
            }
        })
        .collect_view();
    let summary = match count {
        0 => "no builds yet".to_owned(),
        1 => "1 build".to_owned(),
        n => format!("{n} builds"),
    };
    let pending = deploy.pending();
    let has_build = first_deployable.is_some();
    // A pause in scope blocks the button too, live, with its explanation.
    let pause = expect_context::<crate::PauseSignal>();
    let paused = {
        let environment = environment.clone();
        Signal::derive(move || {
            pause
                .get()
                .and_then(|p| p.blocking(&environment).map(crate::pause::Pause::explain))
        })
    };
    // The server refuses a deploy without the right to this environment; the page says so first.
    let me = crate::use_me();
    let denied = {
        let environment = environment.clone();
        Signal::derive(move || me.get().and_then(|m| m.why_not_deploy(&environment)))
    };
    let title = {
        let blocked = blocked.clone();
        move || {
            denied
                .get()
                .or_else(|| paused.get())
                .or_else(|| blocked.clone())
                .unwrap_or_else(|| "Deploy the selected build to this stack".to_owned())
        }
    };
    let is_blocked = blocked.is_some();
    // "What would this build change?": a change set made and deleted, shown under the row (the
    // page keeps the answer: the card re-renders on live updates).
    let (preview, previewed) = preview;
    let on_preview = {
        let (project, environment) = (project.clone(), environment.clone());
        move |_| {
            let build = selected.get_untracked();
            previewed.set(Some(build.clone()));
            preview.dispatch((project.clone(), environment.clone(), build));
        }
    };
    let preview_view = move || {
        let build = previewed.get()?;
        if preview.pending().get() {
            return Some(view! { <p class="muted small preview-box">{format!("Asking CloudFormation what {build} would change…")}</p> }.into_any());
        }
        Some(match preview.value().get()? {
            Err(e) => view! { <crate::components::error_line::ErrorLine error=e/> }.into_any(),
            Ok(changes) => view! { <PreviewBox of=build changes/> }.into_any(),
        })
    };
    let asker = crate::components::dialog::use_asker();
    let on_deploy = move |_| {
        let build = selected.get_untracked();
        if stuck.is_none() && older.contains(&build) {
            let (p, e, d) = (
                project.clone(),
                environment.clone(),
                deployed.clone().unwrap_or_default(),
            );
            ask_to_deploy_older(
                asker,
                deploy,
                (p, e, build.clone()),
                format!("Deploy {build}, older than the deployed {d}?"),
                format!("Deploy {build}"),
            );
            return;
        }
        let (p, e) = (project.clone(), environment.clone());
        match stuck {
            Some(status) => asker.ask(
                Question::new(
                    format!("Delete the stack and create it again from {build}?"),
                    "Delete and create again",
                    Callback::new(move |()| {
                        deploy.dispatch((p.clone(), e.clone(), build.clone(), true));
                    }),
                )
                .detail(format!(
                    "The stack's first create failed ({}): CloudFormation cannot update it.",
                    status.as_aws_str()
                ))
                .dangerous(),
            ),
            None => {
                deploy.dispatch((p, e, build, false));
            }
        }
    };
    let error = move || deploy.value().get().and_then(Result::err);
    view! {
        <div class="deploy-row">
            <label class="field">
                <span class="field-label">"Deploy config " <span class="muted">"(" {summary} ")"</span></span>
                <select name="build" class="select" disabled=count == 0
                    on:change=move |ev| {
                        let value = event_target_value(&ev);
                        choice.set(Some(value.clone()));
                        selected.set(value);
                    }>
                    {options}
                </select>
            </label>
            <button type="button" class="btn btn-secondary btn-preview" title="What deploying the selected build would change, without deploying"
                disabled=move || !has_build || preview.pending().get() on:click=on_preview>"Preview"</button>
            <button type="button" class="btn btn-primary" title=title
                disabled=move || denied.get().is_some() || is_blocked || paused.get().is_some() || !has_build || pending.get()
                on:click=on_deploy>
                {move || if pending.get() { "Starting…" } else if stuck.is_some() { "Delete and create again" } else { "Deploy" }}
            </button>
        </div>
        {move || error().map(|e| view! { <crate::components::error_line::ErrorLine error=e/> })}
        {preview_view}
        {move || denied.get().map(|d| view! { <p class="denied-note small" data-denied="deploy">{d}</p> })}
        {blocked.map(|b| view! { <p class="muted small">{b}</p> })}
        {stuck.map(|status| view! {
            <p class="stuck-note small" role="status">{format!(
                "The stack's first create failed ({}): CloudFormation cannot update it. Deploying deletes it first (a rollback that failed too leaves resources CloudFormation could not remove: the deletion may fail on them), then creates it again.",
                status.as_aws_str()
            )}</p>
        })}
        {move || paused.get().map(|p| view! { <p class="paused-note" role="status">{p}</p> })}
    }
}

/// Going back to an older build (a rollback, or an older build picked): the verdict on it is
/// fetched first, then the question is asked with it; yes deploys the build.
pub fn ask_to_deploy_older(
    asker: crate::components::dialog::Asker,
    deploy: DeployAction,
    (project, environment, build): (String, String, String),
    question: String,
    yes: String,
) {
    leptos::task::spawn_local(async move {
        let verdict = crate::api::get_rollback_verdict(
            project.clone(),
            environment.clone(),
            Some(build.clone()),
        )
        .await;
        asker.ask(
            Question::new(
                question,
                yes,
                Callback::new(move |()| {
                    deploy.dispatch((project.clone(), environment.clone(), build.clone(), false));
                }),
            )
            .detail(verdict_words(verdict)),
        );
    });
}

/// The changes a build would make, each that interrupts users or may lose data flagged.
#[component]
fn PreviewBox(
    /// The build previewed.
    of: String,
    changes: Vec<crate::model::PreviewChange>,
) -> impl IntoView {
    let build = of;
    if changes.is_empty() {
        return view! {
            <p class="small muted preview-box" role="status">{format!("{build} would change nothing CloudFormation lists.")}</p>
        }
        .into_any();
    }
    let lines: Vec<ChangeLine> = changes.into_iter().map(ChangeLine::from).collect();
    let interrupting = interrupting(&lines);
    view! {
        <div class="approval preview-box" role="region" aria-label="Preview">
            <p class="approval-head"><strong>{format!("What {build} would change")}</strong>
                {(interrupting > 0).then(|| view! { <span class="interrupt-count">{format!(" · ⚠ {interrupting} interrupting")}</span> })}
            </p>
            <ChangesTable lines/>
        </div>
    }
    .into_any()
}
