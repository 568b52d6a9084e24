//! The steps of a deployment, one file each, in the order they run: fetch → parameters →
//! validate → pre-flight → change set → (approval of every operation, create included, in a
//! protected environment) → execute → watch. Each begins and ends itself on the
//! [`Run`] (persisted, pushed live) and hands what it found to the next.

mod approval;
mod change_set;
mod execute;
mod fetch;
mod parameters;
mod preflight;
mod validate;
mod watch;

use app::deployment::Operation;

use super::run::{Done, Run, Stop};
use crate::artifacts::BuildFolder;

pub use change_set::says_no_changes;
pub use validate::MAX_TEMPLATE_BODY;
pub use watch::{CLOCK_SKEW, is_resource_done};

/// A deployment from its build: every step, in order.
pub async fn deploy(run: &mut Run, folder: &BuildFolder) -> Result<Done, Stop> {
    let fetched = fetch::run(run, folder).await?;
    let set = parameters::run(run, &fetched).await?;
    let checked = validate::run(run, &fetched, &set).await?;
    let existing = match preflight::run(run, &checked, &set).await? {
        preflight::Found::Stack(existing) => existing,
        // A create of this very deployment went through before a restart: watch it.
        preflight::Found::OurOwnCreate => {
            let since = run.record.deployment.started_at - CLOCK_SKEW;
            return watch::run(run, Operation::Create, since).await;
        }
    };
    let planned = match change_set::run(run, &checked, &set, existing).await? {
        change_set::Planned::NoChanges => return Ok(Done::no_changes()),
        change_set::Planned::Execute(planned) => planned,
    };
    // In a protected environment every operation waits for a person: an update at its change
    // set, a create (a first deploy, or a failed stack made again) before CreateStack — unless
    // that very plan was approved already (a recreate is approved before its deletion).
    if !approved(run) {
        approval::run(run).await?;
    }
    let since = execute::run(run, &planned).await?;
    watch::run(run, planned.operation, since).await
}

/// Whether the environment holds every operation for a person's approval.
pub(super) fn is_protected(run: &Run) -> bool {
    run.catalog
        .environment(run.environment())
        .ok()
        .is_some_and(|e| e.protection.is_some())
}

/// Whether the plan at hand was approved already.
pub(super) fn approved(run: &Run) -> bool {
    run.record
        .deployment
        .approval
        .as_ref()
        .is_some_and(|a| a.decision == Some(app::deployment::ApprovalDecision::Approved))
}

/// Whether the deployment stopped at a protected environment's approval, nothing executed: it
/// goes on waiting (a restart does not start it over, nor does a pause end it).
pub fn awaits_approval(record: &crate::store::Record) -> bool {
    record.deployment.step == Some(app::deployment::StepName::Approval)
        && record.change_set_name.is_some()
        && !record.execution_committed
        && !record.executed
}

/// A deployment whose stack operation may be running (after a restart). An update committed to
/// execute is executed again with the same token (a no-op if it went through); then the stack is
/// watched to its end. The store, not the stack's tags, says whether the deployment executed — a
/// redeploy of the build a stack runs keeps its old deployment tag.
pub async fn reattach(run: &mut Run) -> Result<Done, Stop> {
    let operation = run.record.deployment.operation.unwrap_or(Operation::Update);
    if awaits_approval(&run.record) {
        // Its change set was made and waits for a person: the wait goes on where it was.
        approval::run(run).await?;
        let since = execute::run_update(run).await?;
        return watch::run(run, operation, since).await;
    }
    let since = run.record.deployment.started_at - CLOCK_SKEW;
    if !run.record.executed {
        execute::execute(run, operation, None, true).await?;
    }
    watch::run(run, operation, since).await
}
