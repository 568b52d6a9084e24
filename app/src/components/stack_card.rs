//! The card of one project's stack in one environment: status, deployed build, outputs, parameters.

use leptos::prelude::*;

use crate::components::status_badge::StatusBadge;
use crate::model::{Environment, StackView};
use crate::time::{ago, exact};

#[component]
pub fn StackCard(
    /// The stack and the server's clock.
    view: StackView,
    /// The environment the stack lives in.
    environment: Environment,
    /// The deploy row, placed inside the card.
    children: Children,
) -> impl IntoView {
    let StackView { now, card } = view;
    let updated = card.updated_at.map(|t| {
        view! { <time datetime=t.to_rfc3339() title=exact(t)>{ago(now, t)}</time> }
    });
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
    let reason = card
        .status_reason
        .clone()
        .filter(|_| card.tone() != crate::model::StatusTone::Complete);
    let exists = card.exists;
    view! {
        <article class="card stack-card" data-stack=card.name.clone() aria-label=format!("Stack {}", card.name)>
            <header class="card-head">
                <div>
                    <h2 class="stack-name">{card.name.clone()}</h2>
                    <p class="muted small">
                        {format!("{} · account {} · {}", environment.name, environment.account_id, environment.region)}
                        {environment.protected.then(|| view! {
                            <span class="protected-mark" title=if environment.require_another_approver {
                                "Protected: an update waits for another person's approval"
                            } else {
                                "Protected: an update waits for approval"
                            }>" · protected"</span>
                        })}
                    </p>
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
            {(!exists).then(|| view! {
                <p class="muted hint">"This stack does not exist yet: deploying a build creates it."</p>
            })}
            {children()}
            {outputs}
            {parameters}
        </article>
    }
}
