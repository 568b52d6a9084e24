//! The big red Pause button (with its dialog), Resume, and the banner every page shows while
//! deployments are paused.

use leptos::prelude::*;

use crate::api::{get_active_deployments, pause_deployments, resume_deployments};
use crate::components::dialog::{Modal, Question};
use crate::live::Live;
use crate::{OverviewResource, PauseSignal};

/// Across the page while anything is paused: who, why, since when, where.
#[component]
pub fn PauseBanner() -> impl IntoView {
    let pause = expect_context::<PauseSignal>();
    let overview = expect_context::<crate::OverviewResource>();
    view! {
        // Admins: a changed config file that was refused (the running config stays).
        <Suspense fallback=|| ()>
            {move || overview.get().and_then(Result::ok).and_then(|o| o.config_refused).map(|reason| view! {
                <div class="config-banner" role="status">
                    <strong>"The config file was changed and refused — the running config stays. "</strong>
                    <span class="config-reason">{reason}</span>
                </div>
            })}
        </Suspense>
        <Suspense fallback=|| ()>
            {move || pause.get().filter(|p| p.paused).map(|p| {
                let scope = if p.all { "all environments".to_owned() } else { p.environments.join(", ") };
                let since = p.since.map(|s| s.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default();
                view! {
                    <div class="pause-banner" role="alert" aria-live="assertive" aria-label="Deployments paused">
                        <strong>{format!("Deployments paused — {scope}")}</strong>
                        <span>{format!(" by {} since {since}: ", p.actor.clone().unwrap_or_default())}</span>
                        <span class="pause-reason">{p.reason.clone().unwrap_or_default()}</span>
                    </div>
                }
            })}
        </Suspense>
    }
}

/// In the header: Pause when nothing is paused, Resume when something is.
#[component]
pub fn PauseControl() -> impl IntoView {
    let pause = expect_context::<PauseSignal>();
    let live = expect_context::<Live>();
    let open = RwSignal::new(false);
    let resume = Action::new(|_: &()| resume_deployments(None));
    Effect::new(move |_| {
        if let Some(Ok(status)) = resume.value().get() {
            live.pause.set(Some(status));
        }
    });
    let asker = crate::components::dialog::use_asker();
    let on_resume = move |_| {
        let scope = pause
            .get_untracked()
            .filter(|p| !p.all)
            .map(|p| p.environments.join(", "))
            .unwrap_or_else(|| "all environments".to_owned());
        asker.ask(
            Question::new(
                "Resume deployments?",
                "Resume deployments",
                Callback::new(move |()| {
                    resume.dispatch(());
                }),
            )
            .detail(format!(
                "Deployments in {scope} start again; anything held back by the pause may be deployed at once."
            )),
        );
    };
    // Pausing is everyone's who may deploy somewhere (the emergency brake); resuming is an
    // admin's. The server checks both; the buttons say so first.
    let me = crate::use_me();
    let can_pause = move || me.get().is_some_and(|m| m.can_pause);
    let can_resume = move || me.get().is_some_and(|m| m.can_resume);
    view! {
        <Suspense fallback=|| ()>
            {move || {
                let paused = pause.get().is_some_and(|p| p.paused);
                if paused {
                    view! {
                        <button type="button" class="btn btn-resume" on:click=on_resume
                            disabled=move || !can_resume()
                            title=move || if can_resume() { "Lift the pause everywhere" } else { "Resuming deployments needs the admin role" }>
                            "Resume deployments"
                        </button>
                    }.into_any()
                } else {
                    view! {
                        <button type="button" class="btn btn-pause" on:click=move |_| open.set(true)
                            disabled=move || !can_pause()
                            title=move || if can_pause() { "Stop every new deployment" } else { "Pausing needs the right to deploy somewhere; viewers only look" }>
                            "Pause"
                        </button>
                    }.into_any()
                }
            }}
        </Suspense>
        <Show when=move || open.get()>
            <PauseDialog open/>
        </Show>
        {move || resume.value().get().and_then(Result::err).map(|e| view! {
            <crate::components::error_line::ErrorLine error=e/>
        })}
    }
}

/// Asks for the reason (required) and the scope, lists what is already executing, and offers
/// to cancel it.
#[component]
fn PauseDialog(open: RwSignal<bool>) -> impl IntoView {
    let live = expect_context::<Live>();
    let overview = expect_context::<OverviewResource>();
    let reason = RwSignal::new(String::new());
    let scope = RwSignal::new(String::new());
    let cancel_in_flight = RwSignal::new(false);
    let in_flight = crate::api::load(|| (), |()| get_active_deployments());
    let submit = Action::new(|(reason, scope, cancel): &(String, String, bool)| {
        let environment = (!scope.is_empty()).then(|| scope.clone());
        pause_deployments(reason.clone(), environment, *cancel)
    });
    Effect::new(move |_| {
        if let Some(Ok(status)) = submit.value().get() {
            live.pause.set(Some(status));
            open.set(false);
        }
    });
    let error = move || submit.value().get().and_then(Result::err);
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if !reason.get_untracked().trim().is_empty() {
            submit.dispatch((
                reason.get_untracked(),
                scope.get_untracked(),
                cancel_in_flight.get_untracked(),
            ));
        }
    };
    view! {
        <Modal labelled_by="pause-title" on_close=Callback::new(move |()| open.set(false))>
            <form on:submit=on_submit>
                <h2 id="pause-title">"Pause deployments"</h2>
                <p class="muted small">"While paused, no new deployment starts in scope — from the page, the API or anything else."</p>
                <label class="field">
                    <span class="field-label">"Reason (required)"</span>
                    <textarea class="textarea" name="reason" required=true rows="3" data-autofocus="true"
                        placeholder="e.g. investigating 5xx on web; wait for #incident-42"
                        on:input=move |ev| reason.set(event_target_value(&ev))></textarea>
                </label>
                <label class="field">
                    <span class="field-label">"Scope"</span>
                    <select class="select" name="scope" on:change=move |ev| scope.set(event_target_value(&ev))>
                        <option value="" selected=true>"All environments"</option>
                        <Suspense fallback=|| ()>
                            {move || Suspend::new(async move {
                                overview.await.ok().map(|o| o.environments.into_iter().map(|e| {
                                    let name = e.name.clone();
                                    view! { <option value=name.clone()>{format!("{name} only")}</option> }
                                }).collect_view())
                            })}
                        </Suspense>
                    </select>
                </label>
                <div class="in-flight">
                    <p class="small"><strong>"Already executing"</strong>" — CloudFormation cannot freeze these:"</p>
                    <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                        {move || Suspend::new(async move {
                            let active = in_flight.await.unwrap_or_default();
                            if active.is_empty() {
                                view! { <p class="muted small">"Nothing is deploying right now."</p> }.into_any()
                            } else {
                                view! {
                                    <ul class="small">
                                        {active.into_iter().map(|d| view! {
                                            <li class="mono">{format!("{} → {} ({})", d.build, d.stack_name, d.status.as_str())}</li>
                                        }).collect_view()}
                                    </ul>
                                    <label class="check">
                                        <input type="checkbox" on:change=move |ev| cancel_in_flight.set(event_target_checked(&ev))/>
                                        " Also cancel in-flight updates (CancelUpdateStack on each)"
                                    </label>
                                }.into_any()
                            }
                        })}
                    </Suspense>
                </div>
                {move || error().map(|e| view! { <crate::components::error_line::ErrorLine error=e/> })}
                <div class="modal-actions">
                    <button type="button" class="btn btn-quiet" on:click=move |_| open.set(false)>"Cancel"</button>
                    <button type="submit" class="btn btn-pause" disabled=move || reason.get().trim().is_empty() || submit.pending().get()>
                        "Pause deployments"
                    </button>
                </div>
            </form>
        </Modal>
    }
}
