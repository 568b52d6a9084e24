//! A stack's recent deployments, under its card.

use chrono::{DateTime, Utc};
use leptos::prelude::*;

use crate::components::deployment_badge::DeploymentBadge;
use crate::deployment::Deployment;
use crate::time::{ago, exact};

#[component]
pub fn History(
    /// Newest first.
    deployments: Vec<Deployment>,
    /// The server's clock.
    now: DateTime<Utc>,
) -> impl IntoView {
    if deployments.is_empty() {
        return view! {
            <section class="card-section"><h3>"Recent deployments"</h3>
                <p class="muted">"None yet: this stack has not been deployed by the deployer."</p>
            </section>
        }
        .into_any();
    }
    let rows = deployments
        .into_iter()
        .map(|d| {
            let href = format!("/deployments/{}", d.id);
            let started = d.started_at;
            let message = d.message.clone().unwrap_or_default();
            view! {
                <tr>
                    <td><DeploymentBadge deployment=d.clone()/></td>
                    <td class="mono">{d.build.clone()}</td>
                    <td title=exact(started)>{ago(now, started)}</td>
                    <td>{d.actor.clone()}</td>
                    <td class="muted clip" title=message.clone()>{message.clone()}</td>
                    <td><a href=href>"details"</a></td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="card-section history">
            <h3>"Recent deployments"</h3>
            <table class="kv history-table">
                <thead><tr><th>"Status"</th><th>"Build"</th><th>"Started"</th><th>"By"</th><th>"Outcome"</th><th></th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </section>
    }
    .into_any()
}
