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
use crate::store::{Filter, NewAudit, Record, Store};
use app::pause::{AuditAction, PauseRequest, PauseStatus};

/// CloudFormation takes templates up to this size inline; larger ones by TemplateURL.
pub const MAX_TEMPLATE_BODY: usize = 51_200;
const MAX_AWS_RETRIES: u32 = 8;

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
    cancel: watch::Sender<bool>,
    task: tokio::task::AbortHandle,
}

/// One deployment in flight: its record and what it needs.
struct Ctx {
    record: Record,
    cfn: Arc<dyn CloudFormation>,
    cancel: watch::Receiver<bool>,
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
        let deployment = Deployment {
            id: format!("d-{}", uuid::Uuid::new_v4().simple()),
            project: project.name.clone(),
            environment: request.environment.clone(),
            stack_name,
            build: request.build.clone(),
            status: DeploymentStatus::Pending,
            operation: None,
            step: None,
            actor: actor.to_owned(),
            started_at: Utc::now(),
            finished_at: None,
            message: None,
            rolled_back: false,
            waiting_for_aws: false,
            resources_total: None,
            resources_done: 0,
        };
        let mut record = Record {
            deployment,
            steps: Vec::new(),
            change_set: None,
            stack_id: None,
            change_set_name: None,
        };
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
        // A build written since the listing was cached: look once more before saying no.
        self.deployer.artifacts.invalidate(project);
        find(&*self.deployer.build_folders(project).await?)
            .ok_or_else(|| AppError::NotFound(format!("{project} has no build {build:?}")))
    }

    fn spawn(
        self: &Arc<Self>,
        record: Record,
        cfn: Arc<dyn CloudFormation>,
        folder: Option<BuildFolder>,
    ) {
        let (cancel_tx, cancel_rx) = watch::channel(false);
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
                engine.run(ctx, folder).await;
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

    /// Stops every running task without touching the store: what a process exit does. Used by
    /// tests that restart the deployer.
    pub fn abort_all(&self) {
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (_, r) in running.drain() {
            r.task.abort();
        }
    }

    /// After a restart: deployments the store says were in flight are picked up again. Those
    /// that had not executed anything start over; those executing are watched to their end.
    pub async fn resume(self: &Arc<Self>) -> anyhow::Result<usize> {
        let active = self.store.active().await?;
        let count = active.len();
        for mut record in active {
            let cfn = match self.cfn_for(&record.deployment.environment) {
                Ok(cfn) => cfn,
                Err(_) => {
                    self.finish_orphan(&mut record, "its environment is no longer configured")
                        .await;
                    continue;
                }
            };
            let executing = matches!(
                record.deployment.step,
                Some(StepName::Execute | StepName::Watch)
            );
            tracing::info!(
                id = record.deployment.id,
                executing,
                "re-attaching a deployment after restart"
            );
            if executing {
                self.spawn(record, cfn, None);
            } else {
                // Nothing was changed yet: start over from the build.
                if let (Some(name), Some(_)) =
                    (record.change_set_name.take(), record.stack_id.as_ref())
                {
                    let _ = cfn
                        .delete_change_set(&record.deployment.stack_name, &name)
                        .await;
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
        }
        Ok(count)
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
        let signalled = {
            let running = self
                .running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            running.get(id).map(|r| r.cancel.send(true)).is_some()
        };
        if !signalled {
            return Err(AppError::Conflict(format!(
                "deployment {id} is finishing; it cannot be cancelled now"
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
        if *ctx.cancel.borrow() {
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

    /// Runs an AWS call, retrying throttling and 5xx with backoff (shown as "waiting for AWS").
    async fn aws<T, F, Fut>(&self, ctx: &mut Ctx, mut call: F) -> Result<T, Stop>
    where
        F: FnMut(Arc<dyn CloudFormation>) -> Fut,
        Fut: std::future::Future<Output = Result<T, AwsFailure>>,
    {
        let mut attempt = 0;
        loop {
            let result = call(ctx.cfn.clone()).await;
            match result {
                Ok(value) => {
                    if ctx.record.deployment.waiting_for_aws {
                        ctx.record.deployment.waiting_for_aws = false;
                        self.publish(ctx, Vec::new()).await;
                    }
                    return Ok(value);
                }
                Err(e) if e.retryable && attempt < MAX_AWS_RETRIES => {
                    attempt += 1;
                    if !ctx.record.deployment.waiting_for_aws {
                        ctx.record.deployment.waiting_for_aws = true;
                        self.publish(ctx, Vec::new()).await;
                    }
                    let backoff = self
                        .settings
                        .poll_interval
                        .saturating_mul(1 << attempt.min(10));
                    tokio::time::sleep(backoff.min(self.settings.max_backoff)).await;
                }
                Err(e) => return Err(Stop::Failed(readable(&e))),
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

        // 3. Check against the template.
        self.begin(ctx, StepName::Validate).await?;
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
        let doc = imports::parse(&template).map_err(Stop::Refused)?;
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
                let name = format!("deployer-{}", ctx.record.deployment.id);
                ctx.record.change_set_name = Some(name.clone());
                ctx.record.stack_id = existing.as_ref().map(|s| s.stack_id.clone());
                let first = ctx.cfn.create_change_set(&request, &name).await;
                let created = match first {
                    Ok(()) => true,
                    Err(e) if says_no_changes(&e) => false,
                    Err(e) if e.retryable => {
                        let (r, n) = (request.clone(), name.clone());
                        self.aws(ctx, |cfn| {
                            let (r, n) = (r.clone(), n.clone());
                            async move { cfn.create_change_set(&r, &n).await }
                        })
                        .await?;
                        true
                    }
                    Err(e) => return Err(Stop::Failed(readable(&e))),
                };
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
                            if *ctx.cancel.borrow() {
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

        // 6. Execute.
        self.begin(ctx, StepName::Execute).await?;
        let since = Utc::now() - chrono::Duration::seconds(5);
        match operation {
            Operation::Create => {
                let r = request.clone();
                let id = self
                    .aws(ctx, |cfn| {
                        let r = r.clone();
                        async move { cfn.create_stack(&r).await }
                    })
                    .await?;
                ctx.record.stack_id = Some(id);
            }
            Operation::Update => {
                let (s, n) = (
                    stack_name.clone(),
                    ctx.record.change_set_name.clone().unwrap_or_default(),
                );
                self.aws(ctx, |cfn| {
                    let (s, n) = (s.clone(), n.clone());
                    async move { cfn.execute_change_set(&s, &n).await }
                })
                .await?;
            }
        }
        self.end(ctx, None).await;

        // 7. Watch.
        self.watch(ctx, operation, since).await
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

    /// Resumes a deployment whose stack operation may be running (after a restart).
    async fn reattach(&self, ctx: &mut Ctx) -> Result<Done, Stop> {
        let stack = ctx
            .record
            .stack_id
            .clone()
            .unwrap_or_else(|| ctx.record.deployment.stack_name.clone());
        let info = self
            .aws(ctx, |cfn| {
                let s = stack.clone();
                async move { cfn.stack(&s).await }
            })
            .await?;
        let ours = info.as_ref().and_then(|i| i.tag(DEPLOYMENT_TAG))
            == Some(ctx.record.deployment.id.as_str());
        if !ours {
            return Err(Stop::Failed(
                "the deployer restarted before the change was executed; the stack was not changed"
                    .into(),
            ));
        }
        let operation = ctx.record.deployment.operation.unwrap_or(Operation::Update);
        if ctx.record.deployment.step != Some(StepName::Watch) {
            ctx.record.deployment.step = Some(StepName::Watch);
        }
        let since = ctx.record.deployment.started_at - chrono::Duration::seconds(5);
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
        let mut cancel_sent = false;
        loop {
            if *ctx.cancel.borrow() && !cancel_sent {
                cancel_sent = true;
                ctx.record.deployment.status = DeploymentStatus::Cancelling;
                let s = stack.clone();
                match operation {
                    Operation::Update => {
                        self.aws(ctx, |cfn| {
                            let s = s.clone();
                            async move { cfn.cancel_update(&s).await }
                        })
                        .await?
                    }
                    Operation::Create => {
                        self.aws(ctx, |cfn| {
                            let s = s.clone();
                            async move { cfn.delete_stack(&s).await }
                        })
                        .await?
                    }
                }
                self.publish(ctx, Vec::new()).await;
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
            if let Some(outcome) = self
                .outcome(ctx, operation, info.as_ref(), cancel_sent)
                .await
            {
                return outcome;
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

    async fn fetch(&self, key: &str) -> Result<String, Stop> {
        let s3 = self.deployer.artifacts.s3();
        let object = s3
            .get_object()
            .bucket(self.deployer.artifacts.bucket())
            .key(key)
            .send()
            .await
            .map_err(|e| {
                Stop::Failed(
                    AwsFailure::from_sdk(
                        format!("fetching s3://{}/{key}", self.deployer.artifacts.bucket()),
                        e,
                    )
                    .to_string(),
                )
            })?;
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|_| Stop::Failed(format!("the download of {key} broke off")))?
            .into_bytes();
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Stop::Refused(format!("{key} is not UTF-8 text")))
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

/// What a person is told about an AWS failure: what was being done, the code, and AWS's
/// message where it describes the request (validation), not the service.
fn readable(e: &AwsFailure) -> String {
    match (&e.code[..], &e.message) {
        ("ValidationError", Some(m)) => format!("{e}: {m}"),
        _ => e.to_string(),
    }
}
