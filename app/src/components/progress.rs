//! The progress panel of one deployment: steps, a bar of resources done vs total, elapsed time,
//! CloudFormation's events as they come, and Cancel. Refreshes whenever the server pushes a
//! change of this deployment.

use std::time::Duration;

use chrono::{DateTime, Utc};
use leptos::prelude::*;

use crate::api::{decide_deployment, request_cancel};
use crate::components::changes::{ChangeLine, ChangesTable, interrupting};
use crate::components::deployment_badge::DeploymentBadge;
use crate::components::dialog::{Question, use_asker};
use crate::deployment::{
    DeploymentDetail, DeploymentStatus, Operation, ResourceChange, StepName, StepStatus,
};

/// A clock for elapsed times that ticks once a second in the browser. Create it where it
/// lives as long as the page, not inside something that re-renders.
pub fn ticking_clock() -> RwSignal<DateTime<Utc>> {
    let now = RwSignal::new(Utc::now());
    Effect::new(move |_| {
        if let Ok(handle) =
            set_interval_with_handle(move || now.set(Utc::now()), Duration::from_secs(1))
        {
            on_cleanup(move || handle.clear());
        }
    });
    now
}

fn elapsed(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let secs = (to - from).num_seconds().max(0);
    if secs < 60 {
        format!("{secs}s")
    } else {
        format!("{}m {:02}s", secs / 60, secs % 60)
    }
}

/// A deployment's state in one sentence, for screen readers: status and step, not the counts
/// that change every few seconds.
fn spoken(d: &crate::deployment::Deployment) -> String {
    let now = if d.waiting_for_aws && d.status.is_active() {
        "waiting for AWS".to_owned()
    } else if d.status.is_active() {
        match d.step {
            Some(step) => format!("{}, {}", d.status.as_str().replace('_', " "), step.label()),
            None => d.status.as_str().replace('_', " "),
        }
    } else {
        match &d.message {
            Some(m) => format!("{}: {m}", d.status.as_str()),
            None => d.status.as_str().to_owned(),
        }
    };
    format!("{} to {}: {now}", d.build, d.stack_name)
}

#[component]
pub fn ProgressPanel(
    /// The deployment shown, with its steps and events.
    detail: DeploymentDetail,
    /// The clock elapsed time is measured against.
    now: RwSignal<DateTime<Utc>>,
) -> impl IntoView {
    let d = detail.deployment.clone();
    let active = d.status.is_active();
    let started = d.started_at;
    let finished = d.finished_at;
    let clock = move || elapsed(started, finished.unwrap_or_else(|| now.get().max(started)));
    let (done, total) = (d.resources_done, d.resources_total.unwrap_or(0));
    let percent = if !active && d.status.as_str() == "succeeded" {
        100
    } else {
        (done * 100).checked_div(total).unwrap_or(0).min(100)
    };
    let steps = StepName::ALL
        .iter()
        .map(|name| {
            let step = detail.steps.iter().find(|s| s.name == *name);
            let (class, mark) = match step.map(|s| s.status) {
                Some(StepStatus::Done) => ("step done", "✓"),
                Some(StepStatus::Running) => ("step running", "●"),
                Some(StepStatus::Failed) => ("step failed", "✗"),
                Some(StepStatus::Skipped) | None => ("step todo", "○"),
            };
            let note = step.and_then(|s| s.message.clone()).unwrap_or_default();
            let title = note.clone();
            view! {
                <li class=class title=title>
                    <span class="step-mark" aria-hidden="true">{mark}</span>
                    <span class="step-label">{name.label()}</span>
                    <span class="step-note muted">{note}</span>
                </li>
            }
        })
        .collect_view();
    let events = detail
        .events
        .iter()
        .rev()
        .take(12)
        .map(|e| {
            let tone = if e.status.ends_with("FAILED") {
                "ev-failed"
            } else if e.status.ends_with("COMPLETE") {
                "ev-complete"
            } else {
                "ev-progress"
            };
            view! {
                <tr class=tone>
                    <td class="mono small">{e.timestamp.format("%H:%M:%S").to_string()}</td>
                    <td class="mono">{e.logical_id.clone()}</td>
                    <td class="muted small">{e.resource_type.clone()}</td>
                    <td class="mono small">{e.status.clone()}</td>
                    <td class="small">{e.reason.clone().unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    let has_events = !detail.events.is_empty();
    let change_set = detail.change_set.clone().map(|c| {
        format!(
            "{} to add · {} to modify · {} to remove{}",
            c.add,
            c.modify,
            c.remove,
            if c.replace > 0 {
                format!(" · {} replaced", c.replace)
            } else {
                String::new()
            }
        )
    });

    let cancel = Action::new(|(id, confirm): &(String, bool)| request_cancel(id.clone(), *confirm));
    let cancel_error = move || cancel.value().get().and_then(|r| r.err());
    let creating = d.operation == Some(Operation::Create)
        && matches!(d.step, Some(StepName::Execute | StepName::Watch));
    let stack = d.stack_name.clone();
    let id = d.id.clone();
    let asker = use_asker();
    let build = d.build.clone();
    let on_cancel = move |_| {
        let id = id.clone();
        let yes = Callback::new(move |()| {
            cancel.dispatch((id.clone(), creating));
        });
        let question = Question::new(
            format!("Cancel the deployment of {build} to {stack}?"),
            "Cancel the deployment",
            yes,
        )
        .dangerous();
        asker.ask(if creating {
            question.detail(format!(
                "{stack} is being created: cancelling deletes the half-created stack."
            ))
        } else {
            question.detail(
                "An update already running is rolled back by CloudFormation to the stack as it was.",
            )
        });
    };
    // Said once per change through the page's polite live region (a finished deployment shown
    // when the page loads is not news).
    {
        let live = expect_context::<crate::live::Live>();
        let (id, words, active) = (d.id.clone(), spoken(&d), active);
        Effect::new(move |_| live.announce_deployment(&id, words.clone(), active));
    }
    let href = format!("/deployments/{}", d.id);
    let me = crate::use_me();
    let approval = (d.status == DeploymentStatus::AwaitingApproval).then(|| {
        let changes = detail
            .change_set
            .as_ref()
            .map(|c| c.changes.clone())
            .unwrap_or_default();
        view! { <ApprovalBox detail=detail.clone() changes=changes/> }.into_any()
    });
    let denied = {
        let environment = d.environment.clone();
        move || me.get().and_then(|m| m.why_not_deploy(&environment))
    };
    let cancel_title = {
        let denied = denied.clone();
        move || denied().unwrap_or_else(|| "Cancel this deployment".to_owned())
    };
    view! {
        <section class="progress-panel" role="region" aria-label="Deployment progress" data-deployment=d.id.clone() data-status=d.status.as_str()>
            <header class="progress-head">
                <div>
                    <strong class="mono">{d.build.clone()}</strong>
                    " → "
                    <span class="mono">{d.stack_name.clone()}</span>
                    {d.operation.map(|o| view! { <span class="muted small">" · " {match o { Operation::Create => "create", Operation::Update => "update" }}</span> })}
                </div>
                <div class="progress-meta">
                    <span class="elapsed mono" title="elapsed">{clock}</span>
                    <DeploymentBadge deployment=d.clone()/>
                    {active.then(|| view! {
                        <button type="button" class="btn btn-quiet" on:click=on_cancel title=cancel_title
                            disabled=move || denied().is_some() || cancel.pending().get()>"Cancel"</button>
                    })}
                </div>
            </header>
            <div class="bar" role="progressbar" aria-label=format!("Progress of {} to {}", d.build, d.stack_name)
                aria-valuemin="0" aria-valuemax="100" aria-valuenow=percent>
                <div class=format!("bar-fill {}", crate::components::deployment_badge::tone(d.status).css_class()) style=format!("width: {percent}%")></div>
            </div>
            <p class="small muted">
                {if total > 0 { format!("{done} of {total} resources") } else { "resources: —".to_owned() }}
                {change_set.map(|c| format!(" · change set: {c}"))}
                " · " <a href=href>"details"</a>
            </p>
            {d.waiting_reason.clone().filter(|_| d.waiting_for_aws && d.status.is_active()).map(|reason| {
                // How long, ticking: the deployer is retrying, the page is not frozen.
                let since = d.waiting_since;
                let waited = move || since.map(|s| format!(" for {}", elapsed(s, now.get().max(s))));
                view! {
                    <p class="outcome outcome-waiting">
                        <strong>"Waiting for AWS"<span class="waited mono">{waited}</span></strong>
                        " — " {reason}
                    </p>
                }
            })}
            {d.message.clone().map(|m| view! { <p class=format!("outcome outcome-{}", d.status.as_str())>{m}</p> })}
            {move || cancel_error().map(|e| view! { <crate::components::error_line::ErrorLine error=e/> })}
            {approval}
            <ol class="steps">{steps}</ol>
            {has_events.then(|| view! {
                <table class="kv events"><tbody>{events}</tbody></table>
            })}
        </section>
    }
}

/// A deployment waiting in a protected environment: what its change set would do, each change
/// that interrupts users or may lose data flagged, and Approve / Discard — disabled, with the
/// reason, for those who may not decide.
#[component]
fn ApprovalBox(detail: DeploymentDetail, changes: Vec<ResourceChange>) -> impl IntoView {
    let d = detail.deployment;
    let by_another = d.approval.as_ref().is_some_and(|a| a.by_another);
    let decided = d
        .approval
        .as_ref()
        .and_then(|a| a.decision.zip(a.decided_by.clone()));
    let me = crate::use_me();
    let denied = {
        let (environment, requester) = (d.environment.clone(), d.requester().to_owned());
        move || {
            let me = me.get()?;
            me.why_not_deploy(&environment).or_else(|| {
                (by_another && (me.person == requester || me.name == requester)).then(|| {
                    format!("{environment} needs another person to approve: you asked for this deployment")
                })
            })
        }
    };
    let discard_denied = {
        let environment = d.environment.clone();
        move || me.get().and_then(|m| m.why_not_deploy(&environment))
    };
    let decide =
        Action::new(|(id, approve): &(String, bool)| decide_deployment(id.clone(), *approve));
    let error = move || decide.value().get().and_then(|r| r.err());
    let lines: Vec<ChangeLine> = changes.into_iter().map(ChangeLine::from).collect();
    let interrupting = interrupting(&lines);
    let no_resource_changes = lines.is_empty();
    let (approve_id, discard_id, stack) = (d.id.clone(), d.id.clone(), d.stack_name.clone());
    let asker = use_asker();
    let on_discard = move |_| {
        let id = discard_id.clone();
        asker.ask(
            Question::new(
                format!("Discard this change set of {stack}?"),
                "Discard",
                Callback::new(move |()| {
                    decide.dispatch((id.clone(), false));
                }),
            )
            .detail("Nothing is deployed; the stack is not touched.")
            .dangerous(),
        );
    };
    let approve_title = {
        let denied = denied.clone();
        move || denied().unwrap_or_else(|| "Execute this change set".to_owned())
    };
    let discard_title = {
        let discard_denied = discard_denied.clone();
        move || {
            discard_denied()
                .unwrap_or_else(|| "Delete this change set; nothing is deployed".to_owned())
        }
    };
    view! {
        <div class="approval" role="group" aria-label="Approval">
            <p class="approval-head">
                <strong>"Awaiting approval"</strong>
                {if d.requester() == d.actor {
                    format!(" · {} asked for it", d.actor)
                } else {
                    format!(" · {} asked for it (through {:?})", d.requester(), d.actor)
                }}
                {by_another.then_some(" · another person must approve")}
                {(interrupting > 0).then(|| view! {
                    <span class="interrupt-count">{format!(" · ⚠ {interrupting} interrupting")}</span>
                })}
            </p>
            {if no_resource_changes {
                view! { <p class="small muted no-resource-changes">"CloudFormation lists no resource changes: parameters, tags or outputs only."</p> }.into_any()
            } else {
                view! { <ChangesTable lines/> }.into_any()
            }}
            {decided.map(|(decision, by)| view! { <p class="small muted">{format!("{} by {by}", decision.as_str())}</p> })}
            <div class="approval-actions">
                <button type="button" class="btn btn-primary" title=approve_title
                    disabled={ let denied = denied.clone(); move || denied().is_some() || decide.pending().get() }
                    on:click=move |_| { decide.dispatch((approve_id.clone(), true)); }>"Approve and deploy"</button>
                <button type="button" class="btn btn-quiet" title=discard_title
                    disabled=move || discard_denied().is_some() || decide.pending().get()
                    on:click=on_discard>"Discard"</button>
                {move || denied().map(|why| view! { <span class="small muted denied-reason">{why}</span> })}
            </div>
            {move || error().map(|e| view! { <crate::components::error_line::ErrorLine error=e/> })}
        </div>
    }
}
