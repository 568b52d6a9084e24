//! The card of one project's stack in one environment: its frame (always there at once), its head
//! (status, deployed build) and details (outputs, parameters) once AWS has answered — each part
//! with its own loading and error state, so a slow account never holds the page back.

use leptos::prelude::*;

use crate::components::status_badge::StatusBadge;
use crate::model::{Environment, StackView};
use crate::time::{ago, exact};

/// The card's frame, named by its stack before anything is known about it. (It reads no
/// resource itself: one read here would hold the whole card back on the server until AWS
/// answered.)
#[component]
pub fn StackCard(
    /// The stack's name.
    name: String,
    /// The head, the deploy row, progress, history and details, in that order.
    children: Children,
) -> impl IntoView {
    view! {
        <article class="card stack-card" data-stack=name.clone() aria-label=format!("Stack {name}")>
            {children()}
        </article>
    }
}

/// Where the stack lives: environment, account, region, protection.
fn whereabouts(environment: &Environment) -> impl IntoView + use<> {
    view! {
        <p class="muted small">
            {format!("{} · account {} · {}", environment.name, environment.account_id, environment.region)}
            {environment.protected.then(|| view! {
                <span class="protected-mark" title=if environment.require_another_approver {
                    "Protected: every deploy (a create too) waits for another person's approval"
                } else {
                    "Protected: every deploy (a create too) waits for approval"
                }>" · protected"</span>
            })}
        </p>
    }
}

/// The head while AWS has not answered yet: the stack's name and where it is, and that the
/// deployer is asking.
#[component]
pub fn StackHeadLoading(name: String, environment: Environment) -> impl IntoView {
    view! {
        <header class="card-head">
            <div>
                <h2 class="stack-name">{name.clone()}</h2>
                {whereabouts(&environment)}
            </div>
            <span class="badge tone-none"><span class="badge-dot" aria-hidden="true"></span>"reading…"</span>
        </header>
        <p class="loading card-wait" aria-busy="true">{format!("Asking AWS for {name}…")}</p>
    }
}

/// The head when the stack could not be read: the reason, in the card.
#[component]
pub fn StackHeadError(
    name: String,
    environment: Environment,
    error: crate::error::ErrorBody,
) -> impl IntoView {
    view! {
        <header class="card-head">
            <div>
                <h2 class="stack-name">{name}</h2>
                {whereabouts(&environment)}
            </div>
            <span class="badge tone-failed"><span class="badge-dot" aria-hidden="true"></span>"unknown"</span>
        </header>
        <crate::components::notice::Notice kind="error" title="Could not read the stack">
            {crate::api::error_message(&error)}
        </crate::components::notice::Notice>
    }
}

/// Status, reason, deployed build and when it was last updated.
#[component]
pub fn StackHead(
    /// The stack and the server's clock.
    view: StackView,
    /// The environment the stack lives in.
    environment: Environment,
) -> impl IntoView {
    let StackView { now, card } = view;
    let updated = card.updated_at.map(|t| {
        view! { <time datetime=t.to_rfc3339() title=exact(t)>{ago(now, t)}</time> }
    });
    let reason = card
        .status_reason
        .clone()
        .filter(|_| card.tone() != crate::model::StatusTone::Complete);
    view! {
        <header class="card-head">
            <div>
                <h2 class="stack-name">{card.name.clone()}</h2>
                {whereabouts(&environment)}
            </div>
            <StatusBadge card=card.clone()/>
        </header>
        {reason.map(|r| view! { <p class="status-reason">{r}</p> })}
        {card.outside.clone().map(|o| view! { <p class="outside-note" role="status"><strong>"Not the deployer's: "</strong>{o}</p> })}
        <dl class="facts">
            <div>
                <dt>"Deployed build"</dt>
                <dd class="mono deployed-build">{card.build.clone().unwrap_or_else(|| "—".to_owned())}</dd>
            </div>
            <div>
                <dt>"Last updated"</dt>
                <dd>{updated.map_or_else(|| view! { "—" }.into_any(), IntoAny::into_any)}</dd>
            </div>
        </dl>
        {(!card.exists).then(|| view! {
            <p class="muted hint">"This stack does not exist yet: deploying a build creates it."</p>
        })}
    }
}

/// The stack's outputs and parameters.
#[component]
pub fn StackDetails(view: StackView) -> impl IntoView {
    let card = view.card;
    let outputs = (!card.outputs.is_empty()).then(|| {
        let rows = card
            .outputs
            .iter()
            .map(|o| {
                view! {
                    <tr>
                        <th scope="row" title=o.description.clone().unwrap_or_default()>{o.key.clone()}</th>
                        <td class="mono">{o.value.clone()}</td>
                        <td class="mono muted">{o.export_name.clone().unwrap_or_default()}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <section class="card-section">
                <h3>"Outputs"</h3>
                <table class="kv">
                    <thead><tr><th>"Key"</th><th>"Value"</th><th>"Export"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </section>
        }
    });
    let parameters = (!card.parameters.is_empty()).then(|| {
        let rows = card
            .parameters
            .iter()
            .map(|p| {
                let value = match (&p.value, p.no_echo) {
                    (_, true) | (None, _) => {
                        view! { <td class="muted">"hidden (NoEcho)"</td> }.into_any()
                    }
                    (Some(v), false) => view! { <td class="mono">{v.clone()}</td> }.into_any(),
                };
                view! { <tr><th scope="row">{p.key.clone()}</th>{value}</tr> }
            })
            .collect_view();
        view! {
            <section class="card-section">
                <h3>"Parameters"</h3>
                <table class="kv"><tbody>{rows}</tbody></table>
            </section>
        }
    });
    view! {
        {outputs}
        {parameters}
    }
}
