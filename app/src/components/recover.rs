//! A stack CloudFormation left in `UPDATE_ROLLBACK_FAILED`: the resources it could not roll
//! back, a box per resource to skip it, and "Continue rollback" (ContinueUpdateRollback).

use leptos::prelude::*;

use crate::api::continue_rollback;
use crate::model::FailedResource;

#[component]
pub fn ContinueRollback(
    project: String,
    environment: String,
    stack_name: String,
    failed: Vec<FailedResource>,
) -> impl IntoView {
    let skip = RwSignal::new(Vec::<String>::new());
    let action = Action::new(|(p, e, skip): &(String, String, Vec<String>)| {
        continue_rollback(p.clone(), e.clone(), skip.clone())
    });
    let error = move || action.value().get().and_then(|r| r.err());
    let me = crate::use_me();
    let denied = {
        let environment = environment.clone();
        move || me.get().and_then(|m| m.why_not_deploy(&environment))
    };
    let rows = failed
        .into_iter()
        .map(|r| {
            let id = r.logical_id.clone();
            let toggle = move |ev: leptos::ev::Event| {
                let on = event_target_checked(&ev);
                skip.update(|s| {
                    s.retain(|x| x != &id);
                    if on {
                        s.push(id.clone());
                    }
                });
            };
            view! {
                <tr>
                    <td><label class="skip"><input type="checkbox" aria-label=format!("Skip {}", r.logical_id) on:change=toggle/>" skip"</label></td>
                    <td class="mono">{r.logical_id.clone()}</td>
                    <td class="muted small">{r.resource_type.clone()}</td>
                    <td class="mono small">{r.status.clone()}</td>
                    <td class="small">{r.reason.clone().unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    let asker = crate::components::dialog::use_asker();
    let on_click = move |_| {
        let skipping = skip.get_untracked();
        let question = if skipping.is_empty() {
            "CloudFormation tries again to roll back what it could not.".to_owned()
        } else {
            format!(
                "{} stay as they are: CloudFormation marks skipped resources rolled back without changing them.",
                skipping.join(", ")
            )
        };
        let (p, e) = (project.clone(), environment.clone());
        asker.ask(
            crate::components::dialog::Question::new(
                format!("Continue rolling {stack_name} back?"),
                "Continue rollback",
                Callback::new(move |()| {
                    action.dispatch((p.clone(), e.clone(), skipping.clone()));
                }),
            )
            .detail(question),
        );
    };
    view! {
        <div class="recover" role="group" aria-label="Failed rollback">
            <p><strong>"The rollback failed."</strong>
               " CloudFormation could not roll these back; the stack takes no update until its rollback is continued. \
                 Skip a resource that cannot be restored (e.g. deleted by hand)."</p>
            <table class="kv changes"><tbody>{rows}</tbody></table>
            <button type="button" class="btn btn-primary" on:click=on_click
                title={ let denied = denied.clone(); move || denied().unwrap_or_else(|| "ContinueUpdateRollback".to_owned()) }
                disabled={ let denied = denied.clone(); move || denied().is_some() || action.pending().get() }>
                "Continue rollback"
            </button>
            {move || error().map(|e| view! { <crate::components::error_line::ErrorLine error=e/> })}
        </div>
    }
}
