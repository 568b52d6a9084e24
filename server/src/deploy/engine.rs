//! The engine: starts deployments (one active per stack, enforced by the store), runs each in
//! its own task, lets them be cancelled, and re-attaches to what was in flight after a restart.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::deployment::{
    ChangeSummary, Deployment, DeploymentStatus, DeploymentUpdate, LiveEvent, Operation,
    StackEvent, StartDeployment, Step, StepName, StepStatus,
};
use app::model::StackStatus;
use chrono::Utc;
use tokio::sync::watch;

use super::cfn::{ChangeSetState, CloudFormation, StackInfo, StackRequest, TemplateSource};
use super::{imports, parameters};
use crate::artifacts::BuildFolder;
use crate::aws::AwsFailure;
use crate::deployer::Deployer;
use crate::error::AppError;
use crate::live::Hub;
use crate::stacks::{BUILD_TAG, DEPLOYMENT_TAG};
use crate::store::{CancelAsk, Filter, NewAudit, Record, Store};
use app::pause::{AuditAction, PauseRequest, PauseStatus};

/// A build asked for by name that the cached listing lacks re-lists the bucket only when the
/// listing is at least this old.
const RELIST_AFTER: Duration = Duration::from_secs(2);
/// The longest pause reason, in characters.
pub const MAX_PAUSE_REASON: usize = 500;
/// The largest artifact read: CloudFormation's own limit for a template (by TemplateURL), and
/// far more than any parameters file needs.
pub const MAX_ARTIFACT_BYTES: i64 = 1024 * 1024;
/// How long reading one artifact may take.
const ARTIFACT_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// CloudFormation takes templates up to this size inline; larger ones by TemplateURL.
pub const MAX_TEMPLATE_BODY: usize = 51_200;
/// Retries of an AWS call before anything was executed; after that, the deployer waits for as
/// long as AWS takes (only the stack's terminal status ends an executed deployment).
const MAX_AWS_RETRIES: u32 = 8;
/// How far AWS's clock may be behind ours when deciding which events belong to an operation.
const CLOCK_SKEW: chrono::Duration = chrono::Duration::seconds(2);
/// How long an executed operation may show no sign of itself (no in-progress status, no event)
/// before the deployer concludes CloudFormation never started it.
const NOT_STARTED_GRACE: Duration = Duration::from_secs(120);

/// How long to keep retrying a failing AWS call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Patience {
    /// Nothing executed yet: a few retries with backoff, then the deployment fails, stack untouched.
    Bounded,
    /// A write that may have happened (idempotent by its request token): retry what can be
    /// retried for as long as it takes; a refusal ends the deployment.
    WhileRetryable,
    /// The stack is changing: wait for as long as it takes, saying so.
    UntilItAnswers,
}

#[derive(Clone, Debug)]
pub struct Settings {
    /// Between polls of a running stack operation or change set.
    pub poll_interval: Duration,
    /// The longest wait between retries when AWS throttles.
    pub max_backoff: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            poll_interval: Duration::from_secs(2),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// How a deployment ended early.
#[derive(Debug)]
enum Stop {
    Refused(String),
    Failed(String),
    Cancelled(String),
}

/// How a deployment ended well.
struct Done {
    message: Option<String>,
}

pub struct Engine {
    deployer: Arc<Deployer>,
    cfn: HashMap<String, Arc<dyn CloudFormation>>,
    store: Store,
    hub: Arc<Hub>,
    settings: Settings,
    running: Mutex<HashMap<String, Running>>,
}

struct Running {
    cancel: watch::Sender<Option<CancelAsk>>,
    task: tokio::task::AbortHandle,
}

/// One deployment in flight: its record and what it needs.
struct Ctx {
    record: Record,
    cfn: Arc<dyn CloudFormation>,
    cancel: watch::Receiver<Option<CancelAsk>>,
    last_event: Option<String>,
    finished_resources: HashSet<String>,
}

impl Engine {
    pub fn new(
        deployer: Arc<Deployer>,
        cfn: HashMap<String, Arc<dyn CloudFormation>>,
        store: Store,
        hub: Arc<Hub>,
        settings: Settings,
    ) -> Arc<Engine> {
        Arc::new(Engine {
            deployer,
            cfn,
            store,
            hub,
            settings,
            running: Mutex::new(HashMap::new()),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Checks the request, records the deployment (refused with 409 when the stack already has
    /// an active one) and starts it in the background.
    pub async fn start(
        self: &Arc<Self>,
        request: StartDeployment,
        actor: &str,
    ) -> Result<Deployment, AppError> {
        let project = self.deployer.project(&request.project)?;
        if self
            .deployer
            .config
            .environment(&request.environment)
            .is_none()
        {
            return Err(AppError::NotFound(format!(
                "no environment is called {:?}",
                request.environment
            )));
        }
        let stack_name = project
            .stack_name(&request.environment)
            .ok_or_else(|| {
                AppError::NotFound(format!(
                    "{} does not deploy to {}",
                    project.name, request.environment
                ))
            })?
            .to_owned();
        let cfn = self.cfn_for(&request.environment)?;
        let folder = self.find_build(&project.name, &request.build).await?;
        if let Some(problem) = &folder.build.problem {
            let reason = format!("{} cannot be deployed: {problem}", request.build);
            let entry = NewAudit {
                actor,
                action: AuditAction::DeployRefused,
                project: Some(&project.name),
                environment: Some(&request.environment),
                build: Some(&request.build),
                deployment_id: None,
                detail: Some(&reason),
            };
            if let Err(e) = self.store.audit(entry).await {
                tracing::error!(error = %e, "could not write the audit trail");
            }
            return Err(AppError::Refused(reason));
        }
        let deployment = Deployment::pending(
            format!("d-{}", uuid::Uuid::new_v4().simple()),
            &project.name,
            &request.environment,
            &stack_name,
            &request.build,
            actor,
        );
        let mut record = Record::new(deployment);
        let d = &record.deployment;
        let current = self
            .store
            .last_succeeded_build(&d.environment, &d.stack_name)
            .await?;
        let rollback = current.as_deref().is_some_and(|c| c != d.build)
            && self
                .store
                .was_deployed(&d.environment, &d.stack_name, &d.build)
                .await?;
        if let Err(e) = self.store.insert(&mut record).await {
            let d = &record.deployment;
            let error = match e {
                crate::store::StoreError::Conflict(id) => AppError::Busy {
                    message: format!(
                        "{} in {} already has an active deployment: {id}",
                        d.stack_name, d.environment
                    ),
                    id,
                },
                other => other.into(),
            };
            let reason = error.to_string();
            self.audit(actor, AuditAction::DeployRefused, d, Some(&reason))
                .await;
            return Err(error);
        }
        let action = if rollback {
            AuditAction::RollbackRequested
        } else {
            AuditAction::DeployRequested
        };
        let detail = current.map(|c| format!("replacing {c}"));
        self.audit(actor, action, &record.deployment, detail.as_deref())
            .await;
        let deployment = record.deployment.clone();
        self.hub.publish(LiveEvent::Deployment(DeploymentUpdate {
            deployment: deployment.clone(),
            step: None,
            new_events: Vec::new(),
        }));
        self.spawn(record, cfn, Some(folder));
        Ok(deployment)
    }

    async fn audit(&self, actor: &str, action: AuditAction, d: &Deployment, detail: Option<&str>) {
        let entry = NewAudit {
            actor,
            action,
            project: Some(&d.project),
            environment: Some(&d.environment),
            build: Some(&d.build),
            deployment_id: Some(&d.id),
            detail,
        };
        if let Err(e) = self.store.audit(entry).await {
            tracing::error!(error = %e, "could not write the audit trail");
        }
    }

    pub async fn pause_status(&self) -> Result<PauseStatus, AppError> {
        let envs: Vec<String> = self
            .deployer
            .config
            .environments
            .iter()
            .map(|e| e.name.clone())
            .collect();
        Ok(crate::store::pause_status(
            self.store.pauses().await?,
            &envs,
        ))
    }

    /// Pauses every environment or one; optionally cancels the updates already executing there.
    pub async fn pause(&self, request: PauseRequest, actor: &str) -> Result<PauseStatus, AppError> {
        let reason = request.reason.trim();
        if reason.is_empty() {
            return Err(AppError::BadRequest("a pause needs a reason".into()));
        }
        let length = reason.chars().count();
        if length > MAX_PAUSE_REASON {
            return Err(AppError::BadRequest(format!(
                "a pause reason is at most {MAX_PAUSE_REASON} characters; this one has {length}"
            )));
        }
        if reason.chars().any(char::is_control) {
            return Err(AppError::BadRequest(
                "a pause reason is one line of text, without control characters".into(),
            ));
        }
        let environment = request.environment.as_deref().filter(|e| !e.is_empty());
        if let Some(env) = environment
            && self.deployer.config.environment(env).is_none()
        {
            return Err(AppError::NotFound(format!(
                "no environment is called {env:?}"
            )));
        }
        if self.store.pause(environment, reason, actor).await? {
            let entry = NewAudit {
                actor,
                action: AuditAction::Pause,
                project: None,
                environment,
                build: None,
                deployment_id: None,
                detail: Some(reason),
            };
            self.store.audit(entry).await?;
        }
        if request.cancel_in_flight {
            let active = self.store.active().await?;
            for record in active
                .iter()
                .filter(|r| environment.is_none_or(|e| r.deployment.environment == e))
            {
                // A stack being created is left alone: cancelling deletes it, which needs its own confirmation.
                if record.deployment.operation == Some(Operation::Create)
                    && matches!(
                        record.deployment.step,
                        Some(StepName::Execute | StepName::Watch)
                    )
                {
                    continue;
                }
                if let Err(e) = self.cancel(&record.deployment.id, false, actor).await {
                    tracing::warn!(id = record.deployment.id, error = %e, "could not cancel an in-flight deployment");
                }
            }
        }
        let status = self.pause_status().await?;
        self.hub.publish(LiveEvent::Pause(status.clone()));
        Ok(status)
    }

    /// Lifts the pause of one environment, or every pause.
    pub async fn unpause(
        &self,
        environment: Option<&str>,
        actor: &str,
    ) -> Result<PauseStatus, AppError> {
        let environment = environment.filter(|e| !e.is_empty());
        if let Some(env) = environment
            && self.deployer.config.environment(env).is_none()
        {
            return Err(AppError::NotFound(format!(
                "no environment is called {env:?}"
            )));
        }
        for lifted in self.store.unpause(environment).await? {
            let detail = format!(
                "lifts the pause of {} since {}: {}",
                lifted.actor,
                lifted.since.format("%Y-%m-%d %H:%M UTC"),
                lifted.reason
            );
            let entry = NewAudit {
                actor,
                action: AuditAction::Unpause,
                project: None,
                environment: lifted.environment.as_deref(),
                build: None,
                deployment_id: None,
                detail: Some(&detail),
            };
            self.store.audit(entry).await?;
        }
        let status = self.pause_status().await?;
        self.hub.publish(LiveEvent::Pause(status.clone()));
        Ok(status)
    }

    /// Whether the environment is an emulator (an `endpoint_url` in the config), not AWS.
    fn is_emulated(&self, environment: &str) -> bool {
        self.deployer
            .config
            .environment(environment)
            .is_some_and(|e| e.endpoint_url.is_some())
    }

    fn cfn_for(&self, environment: &str) -> Result<Arc<dyn CloudFormation>, AppError> {
        self.cfn
            .get(environment)
            .cloned()
            .ok_or_else(|| AppError::NotFound(format!("no environment is called {environment:?}")))
    }

    async fn find_build(&self, project: &str, build: &str) -> Result<BuildFolder, AppError> {
        let find =
            |folders: &Vec<BuildFolder>| folders.iter().find(|f| f.build.id == build).cloned();
        if let Some(folder) = find(&*self.deployer.build_folders(project).await?) {
            return Ok(folder);
        }
        // A build written since the listing was cached: look once more before saying no —
        // unless the listing is only seconds old (unknown names must not re-list the bucket).
        let missing = || AppError::NotFound(format!("{project} has no build {build:?}"));
        if !self
            .deployer
            .artifacts
            .invalidate_if_older(project, RELIST_AFTER)
        {
            return Err(missing());
        }
        find(&*self.deployer.build_folders(project).await?).ok_or_else(missing)
    }

    fn spawn(
        self: &Arc<Self>,
        record: Record,
        cfn: Arc<dyn CloudFormation>,
        folder: Option<BuildFolder>,
    ) {
        let (cancel_tx, cancel_rx) = watch::channel(record.cancel);
        let id = record.deployment.id.clone();
        let engine = self.clone();
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let task = tokio::spawn({
            let id = id.clone();
            async move {
                let ctx = Ctx {
                    record,
                    cfn,
                    cancel: cancel_rx,
                    last_event: None,
                    finished_resources: HashSet::new(),
                };
                let run = std::panic::AssertUnwindSafe(engine.run(ctx, folder));
                if let Err(panic) = futures::FutureExt::catch_unwind(run).await {
                    engine
                        .end_after_panic(&id, crate::error::panic_text(&*panic))
                        .await;
                }
                engine
                    .running
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(&id);
            }
        });
        running.insert(
            id,
            Running {
                cancel: cancel_tx,
                task: task.abort_handle(),
            },
        );
    }

    /// Stops every running task without touching the store, and lets another process drive
    /// the store: what a process exit does. Used by tests that restart the deployer.
    pub fn abort_all(&self) {
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (_, r) in running.drain() {
            r.task.abort();
        }
        self.store.release();
    }

    /// A bug (a panic) in a deployment's task: the deployment ends `failed`, saying so, and the
    /// stack's lock is freed — never a deployment left "running" that nobody drives.
    async fn end_after_panic(&self, id: &str, panic: &str) {
        tracing::error!(id, panic, "a deployment's task panicked");
        let Ok(Some(mut record)) = self.store.record(id).await else {
            return;
        };
        if !record.deployment.status.is_active() {
            return;
        }
        let d = &mut record.deployment;
        d.status = DeploymentStatus::Failed;
        d.finished_at = Some(Utc::now());
        d.waiting_for_aws = false;
        d.waiting_reason = None;
        d.message = Some(if record.executed || record.execution_committed {
            "the deployer hit an internal error while watching this deployment (see its log); \
             CloudFormation may still be changing the stack: check it before deploying again"
                .to_owned()
        } else {
            "the deployer hit an internal error before executing anything (see its log); \
             the stack was not touched"
                .to_owned()
        });
        if let Some(step) = record
            .steps
            .last_mut()
            .filter(|s| s.status == StepStatus::Running)
        {
            step.status = StepStatus::Failed;
            step.finished_at = record.deployment.finished_at;
        }
        if let Err(e) = self.store.save(&record).await {
            tracing::error!(error = %e, "could not record a deployment's end");
        }
        let outcome = format!(
            "failed: {}",
            record.deployment.message.as_deref().unwrap_or_default()
        );
        self.audit(
            &record.deployment.actor.clone(),
            AuditAction::DeployFinished,
            &record.deployment,
            Some(&outcome),
        )
        .await;
        self.hub.publish(LiveEvent::Deployment(DeploymentUpdate {
            deployment: record.deployment.clone(),
            step: record.steps.last().cloned(),
            new_events: Vec::new(),
        }));
    }

    /// After a restart: deployments the store says were in flight are picked up again. Those
    /// that executed are watched to their end (an update committed to execute is executed again
    /// with the same request token, which CloudFormation treats as the same request). Those that
    /// executed nothing start over from their build — unless a cancel was asked for or a pause now
    /// covers them: a restarted deployer does not start paused work.
    pub async fn resume(self: &Arc<Self>) -> anyhow::Result<usize> {
        let active = self.store.active().await?;
        let count = active.len();
        let pauses = crate::store::pause_status(self.store.pauses().await?, &[]);
        for mut record in active {
            let cfn = match self.cfn_for(&record.deployment.environment) {
                Ok(cfn) => cfn,
                Err(_) => {
                    self.finish_orphan(&mut record, "its environment is no longer configured")
                        .await;
                    continue;
                }
            };
            let operation = record.deployment.operation;
            let reattach = record.executed
                || (record.execution_committed && operation == Some(Operation::Update));
            tracing::info!(
                id = record.deployment.id,
                executed = record.executed,
                committed = record.execution_committed,
                "re-attaching a deployment after restart"
            );
            if reattach {
                self.spawn(record, cfn, None);
                continue;
            }
            // Nothing was executed (a create committed to execute starts over too: CreateStack
            // carries the same request token, and a stack tagged with this deployment is ours).
            let stack = record.deployment.stack_name.clone();
            let change_set = change_set_name(&record.deployment.id);
            if operation == Some(Operation::Update) || record.change_set_name.is_some() {
                let _ = cfn.delete_change_set(&stack, &change_set).await;
            }
            record.change_set_name = None;
            if !record.execution_committed {
                let why = if record.cancel.is_some() {
                    Some(
                        "cancelled before anything was executed; the stack was not touched"
                            .to_owned(),
                    )
                } else {
                    pauses
                        .blocking(&record.deployment.environment)
                        .map(|p| format!("{}; the stack was not touched", paused_words(p)))
                };
                if let Some(why) = why {
                    self.finish_cancelled(&mut record, &why).await;
                    continue;
                }
            }
            match self
                .find_build(&record.deployment.project, &record.deployment.build)
                .await
            {
                Ok(folder) => {
                    record.steps.clear();
                    record.deployment.step = None;
                    record.deployment.status = DeploymentStatus::Pending;
                    self.spawn(record, cfn, Some(folder));
                }
                Err(_) => self.finish_orphan(&mut record, "its build is gone").await,
            }
        }
        Ok(count)
    }

    async fn finish_cancelled(&self, record: &mut Record, why: &str) {
        record.deployment.status = DeploymentStatus::Cancelled;
        record.deployment.finished_at = Some(Utc::now());
        record.deployment.message = Some(why.to_owned());
        if let Err(e) = self.store.save(record).await {
            tracing::error!(error = %e, "could not record a deployment's end");
        }
        let outcome = format!("cancelled: {why}");
        let d = record.deployment.clone();
        self.audit(&d.actor, AuditAction::DeployFinished, &d, Some(&outcome))
            .await;
        self.hub.publish(LiveEvent::Deployment(DeploymentUpdate {
            deployment: d,
            step: record.steps.last().cloned(),
            new_events: Vec::new(),
        }));
    }

    async fn finish_orphan(&self, record: &mut Record, why: &str) {
        record.deployment.status = DeploymentStatus::Failed;
        record.deployment.finished_at = Some(Utc::now());
        record.deployment.message = Some(format!("could not be resumed after a restart: {why}"));
        if let Err(e) = self.store.save(record).await {
            tracing::error!(error = %e, "could not record a deployment's end");
        }
    }

    /// Asks a deployment to stop. Before execution the change set is dropped; during an update
    /// CloudFormation cancels it (rolling back); a stack being created is deleted — which the
    /// caller must confirm.
    pub async fn cancel(
        &self,
        id: &str,
        confirm_delete: bool,
        actor: &str,
    ) -> Result<Deployment, AppError> {
        let record = self
            .store
            .record(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no deployment {id:?}")))?;
        let d = &record.deployment;
        if !d.status.is_active() {
            return Err(AppError::Conflict(format!(
                "deployment {id} already ended: {}",
                d.status.as_str()
            )));
        }
        let creating = d.operation == Some(Operation::Create)
            && matches!(d.step, Some(StepName::Execute | StepName::Watch));
        if creating && !confirm_delete {
            return Err(AppError::ConfirmationRequired(format!(
                "{} is being created: cancelling deletes the half-created stack. \
                 Confirm with {{\"confirm_delete\": true}}.",
                d.stack_name
            )));
        }
        // Kept first: a restart between this request and its effect still cancels.
        if !self.store.request_cancel(id, confirm_delete).await? {
            return Err(AppError::Conflict(format!("deployment {id} already ended")));
        }
        let signalled = {
            let running = self
                .running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            running
                .get(id)
                .map(|r| {
                    r.cancel.send_modify(|current| {
                        let confirm = confirm_delete || current.is_some_and(|c| c.confirm_delete);
                        *current = Some(CancelAsk {
                            confirm_delete: confirm,
                        });
                    })
                })
                .is_some()
        };
        if !signalled {
            return Err(AppError::Conflict(format!(
                "deployment {id} is not being driven by this deployer right now (it is finishing, \
                 or waits to be re-attached); the cancel is kept and applies if it is picked up again"
            )));
        }
        let detail = if creating {
            "deletes the half-created stack"
        } else {
            "cancel requested"
        };
        self.audit(actor, AuditAction::Cancel, &record.deployment, Some(detail))
            .await;
        Ok(record.deployment)
    }

    pub async fn list(&self, filter: &Filter) -> Result<Vec<Deployment>, AppError> {
        Ok(self.store.list(filter).await?)
    }

    // ---- running a deployment ----

    async fn run(self: &Arc<Self>, mut ctx: Ctx, folder: Option<BuildFolder>) {
        if let Ok(events) = self.store.events(&ctx.record.deployment.id).await {
            ctx.last_event = events.last().map(|e| e.id.clone());
            ctx.finished_resources = events
                .iter()
                .filter(|e| is_resource_done(e))
                .map(|e| e.logical_id.clone())
                .collect();
        }
        ctx.record.deployment.status = DeploymentStatus::Running;
        let result = match folder {
            Some(folder) => self.deploy(&mut ctx, &folder).await,
            None => self.reattach(&mut ctx).await,
        };
        let d = &mut ctx.record.deployment;
        d.finished_at = Some(Utc::now());
        d.waiting_for_aws = false;
        d.waiting_reason = None;
        match result {
            Ok(done) => {
                d.status = DeploymentStatus::Succeeded;
                d.message = done.message;
            }
            Err(Stop::Refused(m)) => {
                d.status = DeploymentStatus::Refused;
                d.message = Some(m);
            }
            Err(Stop::Failed(m)) => {
                d.status = DeploymentStatus::Failed;
                d.message = Some(m);
            }
            Err(Stop::Cancelled(m)) => {
                d.status = DeploymentStatus::Cancelled;
                d.message = Some(m);
            }
        }
        if let Some(step) = ctx
            .record
            .steps
            .last_mut()
            .filter(|s| s.status == StepStatus::Running)
        {
            step.status = if d.status == DeploymentStatus::Succeeded {
                StepStatus::Done
            } else {
                StepStatus::Failed
            };
            step.finished_at = d.finished_at;
        }
        tracing::info!(
            id = d.id,
            status = d.status.as_str(),
            message = d.message,
            "deployment finished"
        );
        let outcome = match &d.message {
            Some(m) => format!("{}: {m}", d.status.as_str()),
            None => d.status.as_str().to_owned(),
        };
        let snapshot = d.clone();
        self.audit(
            &snapshot.actor,
            AuditAction::DeployFinished,
            &snapshot,
            Some(&outcome),
        )
        .await;
        self.publish(&ctx, Vec::new()).await;
        self.deployer.forget_card(
            &ctx.record.deployment.environment,
            &ctx.record.deployment.stack_name,
        );
        match self
            .deployer
            .stack(
                &ctx.record.deployment.project,
                &ctx.record.deployment.environment,
            )
            .await
        {
            Ok(card) => self.hub.publish(LiveEvent::Stack(card)),
            Err(e) => tracing::warn!(error = %e, "could not read the stack after a deployment"),
        }
    }

    async fn save(&self, ctx: &Ctx) {
        if let Err(e) = self.store.save(&ctx.record).await {
            tracing::error!(id = ctx.record.deployment.id, error = %e, "could not save a deployment");
        }
    }

    async fn publish(&self, ctx: &Ctx, new_events: Vec<StackEvent>) {
        self.save(ctx).await;
        self.hub.publish(LiveEvent::Deployment(DeploymentUpdate {
            deployment: ctx.record.deployment.clone(),
            step: ctx.record.steps.last().cloned(),
            new_events,
        }));
    }

    async fn begin(&self, ctx: &mut Ctx, name: StepName) -> Result<(), Stop> {
        if ctx.cancel.borrow().is_some() {
            return Err(self.cancel_before_execution(ctx).await);
        }
        ctx.record.deployment.step = Some(name);
        ctx.record.steps.push(Step {
            name,
            status: StepStatus::Running,
            started_at: Utc::now(),
            finished_at: None,
            message: None,
        });
        self.publish(ctx, Vec::new()).await;
        Ok(())
    }

    async fn end(&self, ctx: &mut Ctx, message: Option<String>) {
        if let Some(step) = ctx.record.steps.last_mut() {
            step.status = StepStatus::Done;
            step.finished_at = Some(Utc::now());
            step.message = message;
        }
        self.publish(ctx, Vec::new()).await;
    }

    async fn cancel_before_execution(&self, ctx: &mut Ctx) -> Stop {
        if let Some(name) = ctx.record.change_set_name.clone()
            && let Err(e) = ctx
                .cfn
                .delete_change_set(&ctx.record.deployment.stack_name, &name)
                .await
        {
            tracing::warn!(error = %e, "could not delete a cancelled deployment's change set");
        }
        Stop::Cancelled(
            "cancelled before anything was executed; the stack was not touched".to_owned(),
        )
    }

    /// Runs an AWS call, retrying throttling, 5xx and unreachable endpoints with capped backoff,
    /// shown as "waiting for AWS" with the reason. Before execution a few retries are allowed;
    /// once the stack is changing, every failure is waited out ([`Patience::UntilItAnswers`]).
    async fn aws<T, F, Fut>(&self, ctx: &mut Ctx, mut call: F) -> Result<T, Stop>
    where
        F: FnMut(Arc<dyn CloudFormation>) -> Fut,
        Fut: std::future::Future<Output = Result<T, AwsFailure>>,
    {
        let patience = if ctx.record.executed {
            Patience::UntilItAnswers
        } else {
            Patience::Bounded
        };
        self.aws_with(ctx, patience, |cfn, _| call(cfn)).await
    }

    /// As [`Engine::aws`], with the patience given and the attempt number passed to the call
    /// (a write retried after a timeout may find its first attempt already done).
    async fn aws_with<T, F, Fut>(
        &self,
        ctx: &mut Ctx,
        patience: Patience,
        mut call: F,
    ) -> Result<T, Stop>
    where
        F: FnMut(Arc<dyn CloudFormation>, u32) -> Fut,
        Fut: std::future::Future<Output = Result<T, AwsFailure>>,
    {
        let mut attempt = 0;
        let mut waiting_since = None;
        loop {
            let result = call(ctx.cfn.clone(), attempt).await;
            match result {
                Ok(value) => {
                    if ctx.record.deployment.waiting_for_aws {
                        ctx.record.deployment.waiting_for_aws = false;
                        ctx.record.deployment.waiting_reason = None;
                        self.publish(ctx, Vec::new()).await;
                    }
                    return Ok(value);
                }
                Err(e)
                    if match patience {
                        Patience::Bounded => e.retryable && attempt < MAX_AWS_RETRIES,
                        Patience::WhileRetryable => e.retryable,
                        Patience::UntilItAnswers => true,
                    } =>
                {
                    attempt = attempt.saturating_add(1);
                    let since = *waiting_since.get_or_insert_with(Utc::now);
                    let reason = format!(
                        "{e}; retrying (attempt {}, waiting since {})",
                        attempt + 1,
                        since.format("%H:%M:%S UTC")
                    );
                    ctx.record.deployment.waiting_for_aws = true;
                    ctx.record.deployment.waiting_reason = Some(reason);
                    self.publish(ctx, Vec::new()).await;
                    let backoff = self
                        .settings
                        .poll_interval
                        .saturating_mul(1 << attempt.min(10));
                    tokio::time::sleep(backoff.min(self.settings.max_backoff)).await;
                }
                Err(e) => return Err(Stop::Failed(e.to_string())),
            }
        }
    }

    async fn deploy(&self, ctx: &mut Ctx, folder: &BuildFolder) -> Result<Done, Stop> {
        let env = ctx.record.deployment.environment.clone();
        let stack_name = ctx.record.deployment.stack_name.clone();

        // 1. Fetch.
        self.begin(ctx, StepName::Fetch).await?;
        let template_key = folder
            .template_key
            .clone()
            .ok_or_else(|| Stop::Refused("the build has no template".into()))?;
        let template = self.fetch(&template_key).await?;
        let params_key = folder
            .parameters_key
            .clone()
            .ok_or_else(|| Stop::Refused("the build has no parameters.json".into()))?;
        let base = self.fetch(&params_key).await?;
        let overrides = match folder.overrides.get(&env) {
            Some(key) => Some(self.fetch(key).await?),
            None => None,
        };
        self.end(
            ctx,
            Some(format!(
                "template {} bytes{}",
                template.len(),
                if overrides.is_some() {
                    format!(", parameters.{env}.json")
                } else {
                    String::new()
                }
            )),
        )
        .await;

        // 2. Parameters.
        self.begin(ctx, StepName::Parameters).await?;
        let mut set = parameters::parse("parameters.json", &base).map_err(Stop::Refused)?;
        if let Some(text) = overrides {
            let over = parameters::parse(&format!("parameters.{env}.json"), &text)
                .map_err(Stop::Refused)?;
            set = parameters::merge(set, over);
        }
        self.end(
            ctx,
            Some(format!(
                "{} parameters, {} tags",
                set.values.len(),
                set.tags.len()
            )),
        )
        .await;

        // 3. Check against the template: first that it is one (a YAML or JSON mapping with
        // Resources), so a broken artifact is refused with the parser's words rather than
        // whatever CloudFormation, or an emulator, makes of it.
        self.begin(ctx, StepName::Validate).await?;
        let doc = imports::parse(&template).map_err(Stop::Refused)?;
        if doc.get("Resources").is_none() {
            return Err(Stop::Refused(
                "the template is not a CloudFormation template: it has no Resources section".into(),
            ));
        }
        // Kept before anything else happens: the build's NoEcho declarations hide those values
        // on the stack's card, whatever the stack's current template says.
        let no_echo = imports::no_echo_parameters(&doc);
        if !no_echo.is_empty()
            && let Err(e) = self
                .store
                .set_no_echo(&ctx.record.deployment.id, &no_echo)
                .await
        {
            return Err(Stop::Failed(format!(
                "could not record the template's NoEcho parameters ({e}); nothing was changed"
            )));
        }
        let source = if template.len() > MAX_TEMPLATE_BODY {
            TemplateSource::Url(self.deployer.template_url(&template_key))
        } else {
            TemplateSource::Body(template.clone())
        };
        let summary = {
            let source = source.clone();
            match ctx.cfn.template_summary(&source).await {
                Ok(s) => s,
                Err(e) if e.code == "ValidationError" => {
                    return Err(Stop::Refused(format!(
                        "CloudFormation cannot read the template: {}",
                        e.message.unwrap_or_default()
                    )));
                }
                // An emulator that breaks on a template (moto answers HTTP 500 with a Python
                // traceback for Transform, Fn::ForEach, …) will not do better on a retry.
                Err(e) if e.code.starts_with("HTTP 5") && self.is_emulated(&env) => {
                    return Err(Stop::Failed(format!(
                        "{e} — the local AWS emulator could not process this template (real \
                         CloudFormation may well accept it: transforms, Fn::ForEach and other \
                         features are beyond the emulator)"
                    )));
                }
                Err(_) => {
                    self.aws(ctx, |cfn| {
                        let source = source.clone();
                        async move { cfn.template_summary(&source).await }
                    })
                    .await?
                }
            }
        };
        parameters::check(&set, &summary.parameters).map_err(Stop::Refused)?;
        self.end(
            ctx,
            Some(format!(
                "{} declared, {} resources",
                summary.parameters.len(),
                summary.resource_count
            )),
        )
        .await;

        // 4. Pre-flight: imports.
        self.begin(ctx, StepName::Preflight).await?;
        let account = self
            .deployer
            .config
            .environment(&env)
            .map(|e| (e.account_id.clone(), e.region.clone()));
        let mut vars: BTreeMap<String, String> = summary
            .parameters
            .iter()
            .filter_map(|d| d.default.clone().map(|v| (d.key.clone(), v)))
            .collect();
        vars.extend(set.values.clone());
        vars.insert("AWS::StackName".into(), stack_name.clone());
        vars.insert("AWS::Partition".into(), "aws".into());
        vars.insert("AWS::URLSuffix".into(), "amazonaws.com".into());
        if let Some((account_id, region)) = account {
            vars.insert("AWS::AccountId".into(), account_id);
            vars.insert("AWS::Region".into(), region);
        }
        let wanted = imports::imported_exports(&doc, &vars);
        if !wanted.is_empty() {
            let exports = self
                .aws(ctx, |cfn| async move { cfn.export_names().await })
                .await?;
            let missing: Vec<&String> = wanted.iter().filter(|w| !exports.contains(w)).collect();
            if !missing.is_empty() {
                let names = missing
                    .iter()
                    .map(|m| format!("{m:?}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(Stop::Refused(format!(
                    "the template imports {names}, which {} not exported in {env}; deploying would fail and roll back",
                    if missing.len() == 1 { "is" } else { "are" }
                )));
            }
        }
        let existing = {
            let s = stack_name.clone();
            self.aws(ctx, |cfn| {
                let s = s.clone();
                async move { cfn.stack(&s).await }
            })
            .await?
        };
        // A create of this very deployment went through before a restart (its answer was lost
        // with the process): the stack is ours and being created — watch it, never update it.
        if ctx.record.execution_committed
            && let Some(info) = &existing
            && info.tag(DEPLOYMENT_TAG) == Some(ctx.record.deployment.id.as_str())
        {
            ctx.record.deployment.operation = Some(Operation::Create);
            ctx.record.stack_id = Some(info.stack_id.clone());
            ctx.record.executed = true;
            if let Err(e) = self.store.mark_executed(&ctx.record.deployment.id).await {
                tracing::error!(error = %e, "could not record the execution");
            }
            self.end(
                ctx,
                Some("the stack this deployment created is there".into()),
            )
            .await;
            let since = ctx.record.deployment.started_at - CLOCK_SKEW;
            return self.watch(ctx, Operation::Create, since).await;
        }
        let exports_note = match &existing {
            Some(info) => self.check_removed_exports(ctx, info, &doc, &vars).await?,
            None => None,
        };
        let imports_note = match wanted.len() {
            0 => "no imports".to_owned(),
            n => format!("{n} imports found in {env}'s exports"),
        };
        self.end(
            ctx,
            Some(match exports_note {
                Some(note) => format!("{imports_note}; {note}"),
                None => imports_note,
            }),
        )
        .await;

        // 5. Change set, or a new stack.
        self.begin(ctx, StepName::ChangeSet).await?;
        let mut tags: Vec<(String, String)> = set.tags.clone().into_iter().collect();
        tags.retain(|(k, _)| k != BUILD_TAG && k != DEPLOYMENT_TAG);
        tags.push((BUILD_TAG.into(), ctx.record.deployment.build.clone()));
        // Redeploying the build a stack already runs keeps its deployment tag, so that an
        // unchanged build is "no changes" rather than a tag update on every resource.
        let same_build = existing.as_ref().and_then(|s| s.tag(BUILD_TAG))
            == Some(ctx.record.deployment.build.as_str());
        let deployment_tag = match existing.as_ref().and_then(|s| s.tag(DEPLOYMENT_TAG)) {
            Some(previous) if same_build => previous.to_owned(),
            _ => ctx.record.deployment.id.clone(),
        };
        tags.push((DEPLOYMENT_TAG.into(), deployment_tag));
        let request = StackRequest {
            stack_name: stack_name.clone(),
            template: source,
            parameters: set.values.clone().into_iter().collect(),
            tags,
        };
        let operation = match &existing {
            None => Operation::Create,
            Some(info) => {
                check_updatable(info)?;
                Operation::Update
            }
        };
        ctx.record.deployment.operation = Some(operation);
        match operation {
            Operation::Create => {
                ctx.record.change_set = Some(ChangeSummary {
                    add: summary.resource_count,
                    ..ChangeSummary::default()
                });
                ctx.record.deployment.resources_total = Some(summary.resource_count);
                self.end(
                    ctx,
                    Some(format!(
                        "new stack: {} resources to add",
                        summary.resource_count
                    )),
                )
                .await;
            }
            Operation::Update => {
                let name = change_set_name(&ctx.record.deployment.id);
                ctx.record.change_set_name = Some(name.clone());
                ctx.record.stack_id = existing.as_ref().map(|s| s.stack_id.clone());
                // Kept before the call: a restart right after it finds and deletes the change set.
                self.save(ctx).await;
                let token = request_token(&ctx.record.deployment.id, "changeset");
                let (r, n) = (request.clone(), name.clone());
                let created = self
                    .aws_with(ctx, Patience::Bounded, |cfn, attempt| {
                        let (r, n, t) = (r.clone(), n.clone(), token.clone());
                        async move {
                            match cfn.create_change_set(&r, &n, &t).await {
                                Ok(()) => Ok(true),
                                Err(e) if says_no_changes(&e) => Ok(false),
                                // Its name carries this deployment's id: a retry after a
                                // timeout that had worked finds its own change set.
                                Err(e) if attempt > 0 && e.code == "AlreadyExistsException" => {
                                    Ok(true)
                                }
                                Err(e) => Err(e),
                            }
                        }
                    })
                    .await?;
                if !created {
                    ctx.record.change_set_name = None;
                    ctx.record.change_set = Some(ChangeSummary::default());
                    self.end(ctx, Some("no changes".into())).await;
                    return Ok(Done {
                        message: Some("no changes: the stack already runs this".into()),
                    });
                }
                let changes = loop {
                    let state = {
                        let (s, n) = (stack_name.clone(), name.clone());
                        self.aws(ctx, |cfn| {
                            let (s, n) = (s.clone(), n.clone());
                            async move { cfn.describe_change_set(&s, &n).await }
                        })
                        .await?
                    };
                    match state {
                        ChangeSetState::Pending => {
                            if ctx.cancel.borrow().is_some() {
                                return Err(self.cancel_before_execution(ctx).await);
                            }
                            tokio::time::sleep(self.settings.poll_interval).await;
                        }
                        ChangeSetState::NoChanges => {
                            let _ = ctx.cfn.delete_change_set(&stack_name, &name).await;
                            ctx.record.change_set_name = None;
                            ctx.record.change_set = Some(ChangeSummary::default());
                            self.end(ctx, Some("no changes".into())).await;
                            return Ok(Done {
                                message: Some("no changes: the stack already runs this".into()),
                            });
                        }
                        ChangeSetState::Failed(reason) => {
                            let _ = ctx.cfn.delete_change_set(&stack_name, &name).await;
                            return Err(Stop::Failed(format!(
                                "CloudFormation refused the change set: {reason}"
                            )));
                        }
                        ChangeSetState::Ready(changes) => break changes,
                    }
                };
                let summary = ChangeSummary::from_changes(changes);
                ctx.record.deployment.resources_total = Some(summary.changes.len() as u32);
                let words = format!(
                    "{} to add, {} to modify ({} replaced), {} to remove",
                    summary.add, summary.modify, summary.replace, summary.remove
                );
                ctx.record.change_set = Some(summary);
                self.end(ctx, Some(words)).await;
            }
        }

        // 6. Execute — only if no pause covers the environment at this very moment.
        self.begin(ctx, StepName::Execute).await?;
        if !ctx.record.execution_committed {
            match self.store.commit_execution(&ctx.record.deployment.id).await {
                Ok(None) => ctx.record.execution_committed = true,
                Ok(Some(pause)) => {
                    if let Some(name) = ctx.record.change_set_name.take() {
                        let _ = ctx.cfn.delete_change_set(&stack_name, &name).await;
                    }
                    return Err(Stop::Cancelled(format!(
                        "{}; the change was not executed and the stack was not touched",
                        paused_words(&pause)
                    )));
                }
                Err(e) => {
                    return Err(Stop::Failed(format!(
                        "could not record the execution in the store ({e}); nothing was executed"
                    )));
                }
            }
        }
        let since = Utc::now() - CLOCK_SKEW;
        self.execute(ctx, operation, Some(&request)).await?;
        self.end(ctx, None).await;

        // 7. Watch.
        self.watch(ctx, operation, since).await
    }

    /// Executes: CreateStack for a new stack, ExecuteChangeSet for an update — each with a request
    /// token derived from the deployment, so a retry (after a timeout, or after a restart) is the
    /// same request to CloudFormation and never a second operation.
    async fn execute(
        &self,
        ctx: &mut Ctx,
        operation: Operation,
        request: Option<&StackRequest>,
    ) -> Result<(), Stop> {
        let id = ctx.record.deployment.id.clone();
        let stack_name = ctx.record.deployment.stack_name.clone();
        match (operation, request) {
            (Operation::Create, Some(request)) => {
                let token = request_token(&id, "create");
                let r = request.clone();
                let stack_id = self
                    .aws_with(ctx, Patience::WhileRetryable, |cfn, attempt| {
                        let (r, t, id) = (r.clone(), token.clone(), id.clone());
                        async move {
                            match cfn.create_stack(&r, &t).await {
                                Ok(stack_id) => Ok(stack_id),
                                // A retry whose first attempt had worked: the stack exists
                                // and is tagged with this deployment — it is ours.
                                Err(e) if e.code == "AlreadyExistsException" => {
                                    match cfn.stack(&r.stack_name).await? {
                                        Some(info)
                                            if info.tag(DEPLOYMENT_TAG) == Some(id.as_str()) =>
                                        {
                                            tracing::info!(
                                                attempt,
                                                "CreateStack retried: the stack is ours"
                                            );
                                            Ok(info.stack_id)
                                        }
                                        _ => Err(e),
                                    }
                                }
                                Err(e) => Err(e),
                            }
                        }
                    })
                    .await?;
                ctx.record.stack_id = Some(stack_id);
            }
            (Operation::Create, None) => {
                return Err(Stop::Failed(
                    "internal error: a create cannot be executed again without its build".into(),
                ));
            }
            (Operation::Update, _) => {
                let name = ctx
                    .record
                    .change_set_name
                    .clone()
                    .unwrap_or_else(|| change_set_name(&id));
                let token = request_token(&id, "execute");
                // A repeat (a retry, or the first call after a restart) may find the change set
                // already executing or gone: the same request already went through.
                let repeat = request.is_none();
                self.aws_with(ctx, Patience::WhileRetryable, |cfn, attempt| {
                    let (s, n, t) = (stack_name.clone(), name.clone(), token.clone());
                    async move {
                        match cfn.execute_change_set(&s, &n, &t).await {
                            Ok(()) => Ok(()),
                            Err(e) if (attempt > 0 || repeat) && says_already_executed(&e) => {
                                tracing::info!(
                                    attempt,
                                    code = e.code,
                                    "ExecuteChangeSet repeated: already executed"
                                );
                                Ok(())
                            }
                            Err(e) => Err(e),
                        }
                    }
                })
                .await?;
            }
        }
        ctx.record.executed = true;
        self.deployer
            .forget_card(&ctx.record.deployment.environment, &stack_name);
        if let Err(e) = self.store.mark_executed(&id).await {
            tracing::error!(id, error = %e, "could not record the execution");
        }
        Ok(())
    }

    /// Pre-flight for an update: an export the stack has now and the build no longer declares must
    /// not be imported by another stack — CloudFormation would fail the update half-way and roll
    /// it back (the classic way a rollback to an older build fails). Returns a note for the step.
    async fn check_removed_exports(
        &self,
        ctx: &Ctx,
        current: &StackInfo,
        template: &serde_yaml::Value,
        vars: &BTreeMap<String, String>,
    ) -> Result<Option<String>, Stop> {
        if current.exports.is_empty() {
            return Ok(None);
        }
        let Some(kept) = imports::exported_names(template, vars) else {
            return Ok(Some(
                "some export names are computed at deploy time; removed exports not checked".into(),
            ));
        };
        let removed: Vec<&String> = current
            .exports
            .iter()
            .filter(|e| !kept.contains(e))
            .collect();
        if removed.is_empty() {
            return Ok(Some(format!("all {} exports kept", current.exports.len())));
        }
        let mut in_use = Vec::new();
        let mut unchecked = Vec::new();
        for export in &removed {
            // One call, not the retry-until-it-works of the other steps: a check that cannot be
            // made is said in the step, and CloudFormation still refuses the update itself.
            match ctx.cfn.importers(export).await {
                Ok(stacks) if stacks.is_empty() => {}
                Ok(stacks) => {
                    in_use.push(format!("{export:?} (imported by {})", stacks.join(", ")))
                }
                Err(e) => {
                    tracing::warn!(export = %export, error = ?e, "cannot list the importers of an export");
                    unchecked.push(format!("{export:?}"));
                }
            }
        }
        if !in_use.is_empty() {
            return Err(Stop::Refused(format!(
                "this build no longer exports {}; CloudFormation would fail the update and roll back. Deploy a build that keeps {}, or move the importing stacks off {} first",
                in_use.join(", "),
                if in_use.len() == 1 { "it" } else { "them" },
                if in_use.len() == 1 { "it" } else { "them" },
            )));
        }
        Ok(Some(if unchecked.is_empty() {
            format!(
                "{} removed export{}, none imported elsewhere",
                removed.len(),
                if removed.len() == 1 { "" } else { "s" }
            )
        } else {
            format!(
                "could not check who imports {} (removed by this build)",
                unchecked.join(", ")
            )
        }))
    }

    /// Resumes a deployment whose stack operation may be running (after a restart). An update
    /// committed to execute is executed again with the same token (a no-op if it went through);
    /// then the stack is watched to its end. The store, not the stack's tags, says whether the
    /// deployment executed — a redeploy of the build a stack runs keeps its old deployment tag.
    async fn reattach(&self, ctx: &mut Ctx) -> Result<Done, Stop> {
        let operation = ctx.record.deployment.operation.unwrap_or(Operation::Update);
        let since = ctx.record.deployment.started_at - CLOCK_SKEW;
        if !ctx.record.executed {
            self.execute(ctx, operation, None).await?;
        }
        self.watch(ctx, operation, since).await
    }

    async fn watch(
        &self,
        ctx: &mut Ctx,
        operation: Operation,
        since: chrono::DateTime<Utc>,
    ) -> Result<Done, Stop> {
        if ctx.record.steps.last().map(|s| s.name) != Some(StepName::Watch) {
            ctx.record.deployment.step = Some(StepName::Watch);
            ctx.record.steps.push(Step {
                name: StepName::Watch,
                status: StepStatus::Running,
                started_at: Utc::now(),
                finished_at: None,
                message: None,
            });
            self.publish(ctx, Vec::new()).await;
        }
        let stack = ctx
            .record
            .stack_id
            .clone()
            .unwrap_or_else(|| ctx.record.deployment.stack_name.clone());
        let id = ctx.record.deployment.id.clone();
        let stack_name = ctx.record.deployment.stack_name.clone();
        let mut cancel_sent = false;
        let mut cancel_refused: Option<String> = None;
        // Just after ExecuteChangeSet, DescribeStacks can still show the previous operation's
        // terminal status: an update's outcome is only read once the update shows itself (an
        // in-progress status, or a stack event of this operation). A new stack's every status
        // is its own.
        let mut started = operation == Operation::Create;
        let watching_since = std::time::Instant::now();
        loop {
            let ask = *ctx.cancel.borrow();
            if let Some(ask) = ask
                && !cancel_sent
            {
                // Decided now, from the operation actually running, not from an older record.
                let call = match operation {
                    Operation::Update => Some((
                        "cancel",
                        ctx.cfn
                            .cancel_update(&stack, &request_token(&id, "cancel"))
                            .await,
                    )),
                    Operation::Create if ask.confirm_delete => Some((
                        "delete",
                        ctx.cfn
                            .delete_stack(&stack, &request_token(&id, "delete"))
                            .await,
                    )),
                    Operation::Create => None,
                };
                match call {
                    Some((_, Ok(()))) => {
                        cancel_sent = true;
                        ctx.record.deployment.status = DeploymentStatus::Cancelling;
                        self.publish(ctx, Vec::new()).await;
                    }
                    // Tried again at the next poll.
                    Some((_, Err(e))) if e.retryable => {}
                    // E.g. CancelUpdateStack refused because the update is already cleaning up:
                    // the stack decides; its real outcome is recorded below.
                    Some((_, Err(e))) => {
                        cancel_sent = true;
                        cancel_refused = Some(e.to_string());
                    }
                    None => {
                        cancel_sent = true;
                        cancel_refused = Some(
                            "cancelling a create deletes the stack, and the request did not confirm that"
                                .into(),
                        );
                    }
                }
            }
            let after = ctx.last_event.clone();
            let events = {
                let s = stack.clone();
                self.aws(ctx, |cfn| {
                    let (s, a) = (s.clone(), after.clone());
                    async move { cfn.events(&s, a.as_deref(), since).await }
                })
                .await?
            };
            let info = {
                let s = stack.clone();
                self.aws(ctx, |cfn| {
                    let s = s.clone();
                    async move { cfn.stack(&s).await }
                })
                .await?
            };
            if events
                .iter()
                .any(|e| e.resource_type == STACK_TYPE && e.logical_id == stack_name)
                || info.as_ref().is_some_and(|i| i.status.is_in_progress())
            {
                started = true;
            }
            if !events.is_empty() {
                ctx.last_event = events.last().map(|e| e.id.clone());
                for e in events.iter().filter(|e| is_resource_done(e)) {
                    ctx.finished_resources.insert(e.logical_id.clone());
                }
                ctx.record.deployment.resources_done = ctx.finished_resources.len() as u32;
                if let Err(e) = self
                    .store
                    .add_events(&ctx.record.deployment.id, &events)
                    .await
                {
                    tracing::error!(error = %e, "could not keep stack events");
                }
                self.publish(ctx, events).await;
            }
            if started || info.is_none() {
                let cancelled = cancel_sent && cancel_refused.is_none();
                if let Some(outcome) = self.outcome(ctx, operation, info.as_ref(), cancelled).await
                {
                    return match (outcome, &cancel_refused) {
                        (Ok(Done { message: None }), Some(refused)) => Ok(Done {
                            message: Some(format!(
                                "the cancel came too late ({refused}); CloudFormation finished the change"
                            )),
                        }),
                        (outcome, _) => outcome,
                    };
                }
            } else if watching_since.elapsed() > NOT_STARTED_GRACE {
                let status = info.as_ref().map_or("gone", |i| i.status.as_aws_str());
                return Err(Stop::Failed(format!(
                    "CloudFormation shows no sign of this deployment's operation after {} s (the stack is still {status}); the change was not applied",
                    NOT_STARTED_GRACE.as_secs()
                )));
            }
            tokio::time::sleep(self.settings.poll_interval).await;
        }
    }

    /// `None` while the stack operation runs; the deployment's outcome once it is terminal.
    async fn outcome(
        &self,
        ctx: &mut Ctx,
        operation: Operation,
        info: Option<&StackInfo>,
        cancelled: bool,
    ) -> Option<Result<Done, Stop>> {
        use StackStatus::*;
        let Some(info) = info else {
            // The stack is gone: only a cancelled create deletes it.
            return Some(if cancelled {
                Err(Stop::Cancelled(
                    "cancelled: the half-created stack was deleted".into(),
                ))
            } else {
                Err(Stop::Failed(
                    "the stack disappeared while it was being deployed".into(),
                ))
            });
        };
        if info.status.is_in_progress() {
            return None;
        }
        let reason = self.failure_reason(ctx, info).await;
        Some(match (operation, info.status) {
            (Operation::Create, CreateComplete) | (Operation::Update, UpdateComplete) => {
                Ok(Done { message: None })
            }
            (_, DeleteComplete) if cancelled => Err(Stop::Cancelled(
                "cancelled: the half-created stack was deleted".into(),
            )),
            (Operation::Update, UpdateRollbackComplete) if cancelled => {
                ctx.record.deployment.rolled_back = true;
                Err(Stop::Cancelled(
                    "cancelled: CloudFormation rolled the stack back to the previous build".into(),
                ))
            }
            (_, UpdateRollbackComplete | RollbackComplete) => {
                ctx.record.deployment.rolled_back = true;
                Err(Stop::Failed(format!("{reason}; the stack was rolled back")))
            }
            (_, UpdateRollbackFailed) => Err(Stop::Failed(format!(
                "{reason}; the rollback failed too, the stack needs attention"
            ))),
            (_, status) => Err(Stop::Failed(format!(
                "{reason} (stack status {})",
                status.as_aws_str()
            ))),
        })
    }

    /// The first failed resource of the operation, as CloudFormation explains it.
    async fn failure_reason(&self, ctx: &Ctx, info: &StackInfo) -> String {
        let events = self
            .store
            .events(&ctx.record.deployment.id)
            .await
            .unwrap_or_default();
        events
            .iter()
            .find(|e| {
                e.status.ends_with("_FAILED")
                    && e.resource_type != "AWS::CloudFormation::Stack"
                    && !e
                        .reason
                        .as_deref()
                        .unwrap_or_default()
                        .contains("cancelled")
            })
            .map(|e| {
                format!(
                    "{} ({}) failed: {}",
                    e.logical_id,
                    e.resource_type,
                    e.reason.clone().unwrap_or_default()
                )
            })
            .or_else(|| info.reason.clone())
            .unwrap_or_else(|| format!("the stack ended in {}", info.status.as_aws_str()))
    }

    /// Reads one artifact: its size is checked before the body is read (≤ 1 MB), and the read
    /// is bounded in time.
    async fn fetch(&self, key: &str) -> Result<String, Stop> {
        let s3 = self.deployer.artifacts.s3();
        let bucket = self.deployer.artifacts.bucket();
        let object = s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                Stop::Failed(
                    AwsFailure::from_sdk(format!("fetching s3://{bucket}/{key}"), e).to_string(),
                )
            })?;
        let name = key.rsplit('/').next().unwrap_or(key);
        match object.content_length() {
            Some(size) if size > MAX_ARTIFACT_BYTES => {
                return Err(Stop::Refused(format!(
                    "{name} is {size} bytes; the deployer reads artifacts up to {MAX_ARTIFACT_BYTES} bytes \
                     (CloudFormation's own limit for a template is 1 MB)"
                )));
            }
            _ => {}
        }
        let bytes = tokio::time::timeout(ARTIFACT_READ_TIMEOUT, object.body.collect())
            .await
            .map_err(|_| {
                Stop::Failed(format!(
                    "reading {key} took longer than {} s",
                    ARTIFACT_READ_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|_| Stop::Failed(format!("the download of {key} broke off")))?
            .into_bytes();
        if bytes.len() as i64 > MAX_ARTIFACT_BYTES {
            return Err(Stop::Refused(format!(
                "{name} is {} bytes; the deployer reads artifacts up to {MAX_ARTIFACT_BYTES} bytes",
                bytes.len()
            )));
        }
        // A byte-order mark is not part of the text (editors on some systems write one).
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Stop::Refused(format!("{name} is not UTF-8 text")))
    }
}

/// CloudFormation's (and moto's) answer when a change set would change nothing.
fn says_no_changes(e: &AwsFailure) -> bool {
    e.code == "ValidationError"
        && e.message.as_deref().is_some_and(|m| {
            m.contains("No updates are to be performed") || m.contains("didn't contain changes")
        })
}

/// A resource (not the stack itself) reached a final state in this operation.
fn is_resource_done(e: &StackEvent) -> bool {
    e.resource_type != "AWS::CloudFormation::Stack"
        && (e.status.ends_with("_COMPLETE") || e.status.ends_with("_FAILED"))
}

fn check_updatable(info: &StackInfo) -> Result<(), Stop> {
    use StackStatus::*;
    match info.status {
        s if s.is_in_progress() => Err(Stop::Refused(format!(
            "the stack is busy ({}): another operation is running on it",
            s.as_aws_str()
        ))),
        RollbackComplete | RollbackFailed | CreateFailed | DeleteFailed => {
            Err(Stop::Refused(format!(
                "the stack is in {}, which cannot be updated; it must be deleted first",
                info.status.as_aws_str()
            )))
        }
        _ => Ok(()),
    }
}

/// The stack itself in its event stream (nested stacks have this type too, under other names).
const STACK_TYPE: &str = "AWS::CloudFormation::Stack";

/// The change set of a deployment: one name, known before it is created, so a restart can find
/// and delete it.
fn change_set_name(deployment_id: &str) -> String {
    format!("deployer-{deployment_id}")
}

/// The ClientRequestToken of one write of a deployment: CloudFormation treats requests with the
/// same token as one. Deployment ids (`d-<hex>`) fit the token's pattern and length.
fn request_token(deployment_id: &str, what: &str) -> String {
    format!("{deployment_id}-{what}")
}

/// What ExecuteChangeSet answers when the same change set was already executed.
fn says_already_executed(e: &AwsFailure) -> bool {
    e.code == "InvalidChangeSetStatus" || e.code == "ChangeSetNotFound"
}

/// A pause in words, for a deployment it held back.
fn paused_words(pause: &app::pause::Pause) -> String {
    format!("paused by {}: {}", pause.actor, pause.reason)
}
