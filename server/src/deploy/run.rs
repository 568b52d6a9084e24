//! One deployment being driven: its record and what it needs ([`Run`]), how a step begins and
//! ends (persisted, then pushed live), and the one retry helper every AWS call goes through.

use std::collections::HashSet;
use std::sync::Arc;

use app::deployment::{DeploymentUpdate, LiveEvent, StackEvent, Step, StepName, StepStatus};
use chrono::Utc;
use tokio::sync::watch;

use super::Settings;
use crate::aws::AwsFailure;
use crate::aws::cfn::CloudFormation;
use crate::catalog::Catalog;
use crate::live::Hub;
use crate::store::{CancelAsk, Record, Store, StoreError};

/// Retries of an AWS call before anything was executed; after that, the deployer waits for as
/// long as AWS takes (only the stack's terminal status ends an executed deployment).
const MAX_AWS_RETRIES: u32 = 8;

/// How a deployment ended early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    Refused(String),
    Failed(String),
    Cancelled(String),
}

/// How a deployment ended well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub message: Option<String>,
}

impl Done {
    pub fn no_changes() -> Done {
        Done {
            message: Some("no changes: the stack already runs this".into()),
        }
    }
}

/// How long to keep retrying a failing AWS call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Patience {
    /// Nothing executed yet: a few retries with backoff, then the deployment fails, stack untouched.
    Bounded,
    /// A write that may have happened (idempotent by its request token): retry what can be
    /// retried for as long as it takes; a refusal ends the deployment.
    WhileRetryable,
    /// The stack is changing: wait for as long as it takes, saying so.
    UntilItAnswers,
}

/// One deployment in flight: its record, its environment's CloudFormation, the cancel signal,
/// and the parts of the deployer a step may use.
pub struct Run {
    pub record: Record,
    pub cfn: Arc<dyn CloudFormation>,
    pub cancel: watch::Receiver<Option<CancelAsk>>,
    pub last_event: Option<String>,
    pub finished_resources: HashSet<String>,
    pub catalog: Arc<Catalog>,
    pub store: Store,
    hub: Arc<Hub>,
    pub settings: Settings,
}

impl Run {
    pub fn new(
        record: Record,
        cfn: Arc<dyn CloudFormation>,
        cancel: watch::Receiver<Option<CancelAsk>>,
        catalog: Arc<Catalog>,
        store: Store,
        hub: Arc<Hub>,
        settings: Settings,
    ) -> Run {
        Run {
            record,
            cfn,
            cancel,
            last_event: None,
            finished_resources: HashSet::new(),
            catalog,
            store,
            hub,
            settings,
        }
    }

    pub fn id(&self) -> &str {
        &self.record.deployment.id
    }

    pub fn stack_name(&self) -> &str {
        &self.record.deployment.stack_name
    }

    pub fn environment(&self) -> &str {
        &self.record.deployment.environment
    }

    pub fn cancel_asked(&self) -> Option<CancelAsk> {
        *self.cancel.borrow()
    }

    /// Writes the record (a failure is logged: the deployment goes on, and the next save
    /// catches up).
    /// False when this process no longer owns the deployment (another replica took it over):
    /// nothing it knows may then be shown or acted on; its lease keeper stops the task.
    pub async fn save(&self) -> bool {
        match self.store.save(&self.record).await {
            Ok(()) => true,
            Err(StoreError::LeaseLost(_)) => {
                tracing::warn!(
                    id = self.id(),
                    "not saved: another replica drives this deployment now"
                );
                false
            }
            Err(e) => {
                tracing::error!(id = self.id(), error = %e, "could not save a deployment");
                true
            }
        }
    }

    /// Saves until the store has it (retrying while it is briefly away): for a state others act
    /// on through the store — a deployment waiting for a person is approved only once the store
    /// says it waits. False when another replica owns it now.
    pub async fn save_kept(&self) -> bool {
        let mut pause = std::time::Duration::from_millis(200);
        loop {
            match self.store.save(&self.record).await {
                Ok(()) => return true,
                Err(StoreError::LeaseLost(_)) => return false,
                Err(e) => {
                    tracing::warn!(id = self.id(), error = %e, "could not save; trying again");
                    tokio::time::sleep(crate::backoff::jitter(pause)).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(5));
                }
            }
        }
    }

    /// Saves, then tells every viewer — only while this process owns the deployment.
    pub async fn publish(&self, new_events: Vec<StackEvent>) {
        if self.save().await {
            self.announce(new_events);
        }
    }

    /// Tells every viewer the deployment as it stands (already saved).
    pub fn announce(&self, new_events: Vec<StackEvent>) {
        self.hub.publish(LiveEvent::Deployment(DeploymentUpdate {
            deployment: self.record.deployment.clone(),
            step: self.record.steps.last().cloned(),
            new_events,
        }));
    }

    /// Starts a step — unless a cancel was asked for, which ends the deployment before anything
    /// is executed.
    pub async fn begin(&mut self, name: StepName) -> Result<(), Stop> {
        if self.cancel_asked().is_some() {
            return Err(self.cancel_before_execution().await);
        }
        self.push_step(name).await;
        Ok(())
    }

    /// Starts a step whatever the cancel signal says (watching is how a cancel takes effect).
    pub async fn push_step(&mut self, name: StepName) {
        self.record.deployment.step = Some(name);
        self.record.steps.push(Step {
            name,
            status: StepStatus::Running,
            started_at: Utc::now(),
            finished_at: None,
            message: None,
        });
        self.publish(Vec::new()).await;
    }

    /// Ends the running step, with what it found.
    pub async fn end(&mut self, message: Option<String>) {
        if let Some(step) = self.record.steps.last_mut() {
            step.status = StepStatus::Done;
            step.finished_at = Some(Utc::now());
            step.message = message;
        }
        self.publish(Vec::new()).await;
    }

    /// A cancel before execution: the change set, if made, is deleted; the stack is untouched.
    pub async fn cancel_before_execution(&mut self) -> Stop {
        if let Some(name) = self.record.change_set_name.clone()
            && let Err(e) = self.cfn.delete_change_set(self.stack_name(), &name).await
        {
            tracing::warn!(error = %e, "could not delete a cancelled deployment's change set");
        }
        if self.record.deployment.recreate && self.record.execution_committed {
            // The failed stack's deletion was under way or done: the stack was touched.
            return Stop::Cancelled(format!(
                "cancelled after the failed {} was deleted (or while it was being deleted); \
                 nothing was created — deploy again to create it",
                self.stack_name()
            ));
        }
        Stop::Cancelled(
            "cancelled before anything was executed; the stack was not touched".to_owned(),
        )
    }

    /// Runs an AWS call, retrying throttling, 5xx and unreachable endpoints with capped backoff,
    /// shown as "waiting for AWS" with the reason. Before execution a few retries are allowed;
    /// once the stack is changing, every failure is waited out ([`Patience::UntilItAnswers`]).
    pub async fn aws<T, F, Fut>(&mut self, mut call: F) -> Result<T, Stop>
    where
        F: FnMut(Arc<dyn CloudFormation>) -> Fut,
        Fut: std::future::Future<Output = Result<T, AwsFailure>>,
    {
        let patience = if self.record.executed {
            Patience::UntilItAnswers
        } else {
            Patience::Bounded
        };
        self.aws_with(patience, |cfn, _| call(cfn)).await
    }

    /// As [`Run::aws`], with the patience given and the attempt number passed to the call (a
    /// write retried after a timeout may find its first attempt already done).
    pub async fn aws_with<T, F, Fut>(&mut self, patience: Patience, mut call: F) -> Result<T, Stop>
    where
        F: FnMut(Arc<dyn CloudFormation>, u32) -> Fut,
        Fut: std::future::Future<Output = Result<T, AwsFailure>>,
    {
        let mut attempt = 0;
        let mut waiting_since = None;
        loop {
            match call(self.cfn.clone(), attempt).await {
                Ok(value) => {
                    if self.record.deployment.waiting_for_aws {
                        self.record.deployment.waiting_for_aws = false;
                        self.record.deployment.waiting_reason = None;
                        self.record.deployment.waiting_since = None;
                        self.publish(Vec::new()).await;
                    }
                    return Ok(value);
                }
                Err(e) if keeps_trying(patience, &e, attempt) => {
                    attempt = attempt.saturating_add(1);
                    let since = *waiting_since.get_or_insert_with(Utc::now);
                    let reason = format!(
                        "{e}; retrying (attempt {}, waiting since {})",
                        attempt + 1,
                        since.format("%H:%M:%S UTC")
                    );
                    self.record.deployment.waiting_for_aws = true;
                    self.record.deployment.waiting_reason = Some(reason);
                    self.record.deployment.waiting_since = Some(since);
                    self.publish(Vec::new()).await;
                    tokio::time::sleep(crate::backoff::exponential(
                        self.settings.poll_interval,
                        attempt,
                        self.settings.max_backoff,
                    ))
                    .await;
                }
                Err(e) => return Err(Stop::Failed(e.to_string())),
            }
        }
    }
}

/// Whether a failed AWS call is tried again.
fn keeps_trying(patience: Patience, e: &AwsFailure, attempt: u32) -> bool {
    match patience {
        Patience::Bounded => e.retryable && attempt < MAX_AWS_RETRIES,
        Patience::WhileRetryable => e.retryable,
        Patience::UntilItAnswers => true,
    }
}

/// The change set of a deployment: one name, known before it is created, so a restart can find
/// and delete it.
pub fn change_set_name(deployment_id: &str) -> String {
    format!("deployer-{deployment_id}")
}

/// The ClientRequestToken of one write of a deployment: CloudFormation treats requests with the
/// same token as one. Deployment ids (`d-<hex>`) fit the token's pattern and length.
pub fn request_token(deployment_id: &str, what: &str) -> String {
    format!("{deployment_id}-{what}")
}

/// A pause in words, for a deployment it held back.
pub fn paused_words(pause: &app::pause::Pause) -> String {
    format!("paused by {}: {}", pause.actor, pause.reason)
}
