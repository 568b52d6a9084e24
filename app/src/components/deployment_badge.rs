//! A deployment's status as colour and words.

use leptos::prelude::*;

use crate::deployment::{Deployment, DeploymentStatus};
use crate::model::StatusTone;

pub fn tone(status: DeploymentStatus) -> StatusTone {
    match status {
        DeploymentStatus::Pending
        | DeploymentStatus::Running
        | DeploymentStatus::Cancelling
        | DeploymentStatus::AwaitingApproval => StatusTone::InProgress,
        DeploymentStatus::Succeeded => StatusTone::Complete,
        DeploymentStatus::Failed | DeploymentStatus::Refused => StatusTone::Failed,
        DeploymentStatus::Cancelled => StatusTone::RolledBack,
    }
}

#[component]
pub fn DeploymentBadge(
    /// The deployment whose status is shown.
    deployment: Deployment,
) -> impl IntoView {
    let status = deployment.status;
    let label = if deployment.waiting_for_aws && status.is_active() {
        "waiting for AWS".to_owned()
    } else {
        status.as_str().replace('_', " ")
    };
    let title = deployment
        .waiting_reason
        .clone()
        .filter(|_| deployment.waiting_for_aws && status.is_active());
    view! {
        <span class=format!("badge {}", tone(status).css_class()) data-status=status.as_str() title=title>
            <span class="badge-dot" aria-hidden="true"></span>
            {label}
        </span>
    }
}
