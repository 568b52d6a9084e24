//! The engine: starts deployments (one active per stack, enforced by the store), drives each in
//! its own task through the steps, lets them be cancelled, and records how they end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::deployment::{Deployment, DeploymentUpdate, LiveEvent, Operation, StepName};
use app::pause::AuditAction;
use tokio::sync::watch;

use super::run::Run;
use crate::artifacts::BuildFolder;
use crate::aws::cfn::CloudFormation;
use crate::catalog::Catalog;
use crate::error::AppError;
use crate::ids::{DeploymentId, EnvName, ProjectName};
use crate::live::Hub;
use crate::person::Person;
use crate::store::{CancelAsk, LEASE, NewAudit, Record, Store, StoreError};

#[derive(Clone, Debug)]
pub struct Settings {
    /// Between polls of a running stack operation or change set.
    pub poll_interval: Duration,
    /// The longest wait between retries when AWS throttles.
    pub max_backoff: Duration,
}

impl Settings {
    pub fn from_config(config: &crate::config::Config) -> Settings {
        Settings {
            poll_interval: config.poll_interval,
            // Waiting for AWS backs off up to 15 polls, and never more than 30 s between tries.
            max_backoff: config
                .poll_interval
                .saturating_mul(15)
                .min(Duration::from_secs(30)),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            poll_interval: Duration::from_secs(2),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// A deployment to start, its inputs already checked and looked up by the service layer.
pub struct Plan {
    pub project: ProjectName,
    pub environment: EnvName,
    pub stack_name: String,
    pub folder: BuildFolder,
    pub cfn: Arc<dyn CloudFormation>,
    /// Confirmed: a stack whose first create failed is deleted and created again.
    pub recreate: bool,
}

/// How long this process drives without a lease renewal before it stops: half the lease, so it
/// stops (at the keeper's next look, a third of a lease later at most) before the lease runs
/// out by the database's clock.
const HOLD_WITHOUT_RENEWAL: Duration = Duration::from_millis(LEASE.as_millis() as u64 / 2);

/// A deployment between its row and its task, in [`Engine::starting`] while it lasts.
struct Starting<'a> {
    engine: &'a Engine,
    id: String,
}

impl<'a> Starting<'a> {
    fn new(engine: &'a Engine, id: &str) -> Starting<'a> {
        engine
            .starting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.to_owned());
        Starting {
            engine,
            id: id.to_owned(),
        }
    }
}

impl Drop for Starting<'_> {
    fn drop(&mut self) {
        self.engine
            .starting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.id);
    }
}

pub struct Engine {
    pub(super) catalog: Arc<Catalog>,
    pub(super) store: Store,
    pub(super) hub: Arc<Hub>,
    /// Swapped by a config reload: deployments started after it use the new settings; one
    /// already running keeps those it started with.
    settings: std::sync::RwLock<Settings>,
    running: Mutex<HashMap<String, Running>>,
    /// Deployments being started (their row written, their task not yet spawned): driven, as
    /// far as the lease keeper is concerned — never picked up a second time.
    starting: Mutex<std::collections::HashSet<String>>,
    /// When the last renewal of this process's leases that succeeded was sent: past
    /// [`HOLD_WITHOUT_RENEWAL`] without one, this process stops driving (another may take over).
    renewed: Mutex<std::time::Instant>,
    /// The keeper's look around (cancels, lost and undriven deployments) is under way.
    looking: std::sync::atomic::AtomicBool,
    /// Set when this process "exits" (tests) or hands over (a graceful stop): its lease keeper
    /// stops renewing.
    stopped: std::sync::atomic::AtomicBool,
}

struct Running {
    cancel: watch::Sender<Option<CancelAsk>>,
    task: tokio::task::AbortHandle,
}

impl Engine {
    pub fn new(
        catalog: Arc<Catalog>,
        store: Store,
        hub: Arc<Hub>,
        settings: Settings,
    ) -> Arc<Engine> {
        Arc::new(Engine {
            catalog,
            store,
            hub,
            settings: std::sync::RwLock::new(settings),
            running: Mutex::new(HashMap::new()),
            starting: Mutex::new(std::collections::HashSet::new()),
            renewed: Mutex::new(std::time::Instant::now()),
            looking: std::sync::atomic::AtomicBool::new(false),
            stopped: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// What this process drives: the deployments its tasks run, and those being started.
    pub fn driving(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        ids.extend(
            self.starting
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .cloned(),
        );
        ids
    }

    /// Stops every task of this process (their rows stay its own, and are picked up again once
    /// its leases can be renewed — or by another replica once they run out).
    fn stop_driving(&self) {
        let tasks: Vec<Running> = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain()
            .map(|(_, r)| r)
            .collect();
        for r in &tasks {
            r.task.abort();
        }
    }

    /// Keeps this process's leases (every third of [`LEASE`]): renews them; stops driving a
    /// deployment another replica has taken over; applies a cancel asked through another
    /// replica; and, on PostgreSQL, takes over deployments whose driver died or stopped.
    pub fn spawn_lease_keeper(self: &Arc<Self>) {
        let engine = self.clone();
        tokio::spawn(async move {
            let every = LEASE / 3;
            loop {
                tokio::time::sleep(every).await;
                if engine.stopped.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                engine.keep_leases().await;
            }
        });
    }

    /// Since the last renewal that succeeded was sent.
    fn since_renewed(&self) -> Duration {
        self.renewed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .elapsed()
    }

    async fn keep_leases(self: &Arc<Self>) {
        let driving = self.driving();
        let asked = std::time::Instant::now();
        // Several replicas (PostgreSQL): a replica that cannot renew stops before its leases run
        // out, however its renewals fail (an error, or no answer). One SQLite process owns
        // everything — nobody else could take over, so it never stops for this.
        let replicas = self.store.dialect() == crate::store::Dialect::Postgres;
        let watchdog = |engine: &Engine, driving: &[String]| {
            let since = engine.since_renewed();
            if replicas && since >= HOLD_WITHOUT_RENEWAL && !driving.is_empty() {
                tracing::error!(
                    deployments = driving.len(),
                    "the leases could not be renewed for {}s: stopping every deployment this \
                     process drives; they are picked up again once the store answers",
                    since.as_secs()
                );
                engine.stop_driving();
            }
        };
        watchdog(self, &driving);
        // A renewal that hangs counts as one that failed, and never past the point where this
        // process must have stopped.
        let budget = (LEASE / 3).min(HOLD_WITHOUT_RENEWAL.saturating_sub(self.since_renewed()));
        let renewal = tokio::time::timeout(
            budget.max(Duration::from_millis(100)),
            self.store.renew_leases(&driving),
        )
        .await
        .unwrap_or_else(|_| {
            Err(crate::store::StoreError::Unanswered(
                "the lease renewal took longer than a third of the lease".into(),
            ))
        });
        let held = match renewal {
            Ok(held) => {
                *self
                    .renewed
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = asked;
                held
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not renew the deployments' leases");
                watchdog(self, &driving);
                return;
            }
        };
        // What follows talks to the store (and, picking work up, to S3 and CloudFormation): it
        // runs beside the keeper, one round at a time, so that it never holds a renewal back.
        if self.looking.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let engine = self.clone();
        tokio::spawn(async move {
            engine.look_around(driving, held).await;
            engine
                .looking
                .store(false, std::sync::atomic::Ordering::SeqCst);
        });
    }

    /// After a renewal: cancels asked through another replica, deployments lost to another
    /// replica, and work to pick up (this process's own undriven rows; on PostgreSQL, rows
    /// another replica left).
    async fn look_around(self: &Arc<Self>, driving: Vec<String>, held: Vec<String>) {
        for id in driving {
            if held.contains(&id) {
                // A cancel asked through another replica reaches the task here.
                if let Ok(Some(ask)) = self.store.cancel_request(&id).await {
                    self.signal_cancel(&id, ask.confirm_delete);
                }
                continue;
            }
            // Not renewed: it ended (the task is finishing), or another replica holds it now.
            let taken = matches!(
                self.store.record(&id).await,
                Ok(Some(r)) if r.deployment.status.is_active()
                    && r.owner.as_deref() != Some(self.store.replica())
            );
            if taken {
                tracing::warn!(
                    id,
                    "lease lost: another replica drives this deployment now; stopping here"
                );
                if let Some(r) = self
                    .running
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(&id)
                {
                    r.task.abort();
                }
            }
        }
        // Rows this process owns that nothing drives (a task stopped above, or one that never
        // started): picked up again, as after a restart.
        if self.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        match self.store.owned_undriven(&self.driving()).await {
            Ok(idle) if !idle.is_empty() => match self.take_over(idle, false).await {
                Ok(n) if n > 0 => tracing::warn!(
                    picked_up = n,
                    "picked up deployments this process owned but did not drive"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not pick up undriven deployments"),
            },
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not look for undriven deployments"),
        }
        if self.store.dialect() == crate::store::Dialect::Postgres {
            match self.store.orphaned().await {
                Ok(orphans) if !orphans.is_empty() => match self.take_over(orphans, false).await {
                    Ok(n) if n > 0 => {
                        tracing::info!(taken = n, "took over deployments another replica left")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not take over deployments"),
                },
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not look for deployments to take over"),
            }
        }
    }

    /// A graceful stop (SIGTERM in a rolling update): stops driving and lets go of every lease
    /// at once, so another replica takes the deployments over at its next look rather than when
    /// the leases run out. Nothing about the deployments themselves changes.
    pub async fn hand_over(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.stop_driving();
        match self.store.release_leases().await {
            Ok(n) if n > 0 => tracing::info!(
                released = n,
                "handed deployments over to the other replicas"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not release the leases; they run out by themselves")
            }
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Between looks at a stack that is changing.
    pub fn poll_interval(&self) -> Duration {
        self.settings().poll_interval
    }

    pub fn settings(&self) -> Settings {
        self.settings
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// New settings (a config reload) for the deployments started from now on.
    pub fn set_settings(&self, settings: Settings) {
        *self
            .settings
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = settings;
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Records the deployment (refused with 409 when the stack already has an active one, 423
    /// when a pause covers it) and starts it in the background. `actor` is the name the record
    /// and audit show; `requester` the person behind it (four eyes compare people).
    ///
    /// The start is one unit that outlives the request: a client that hangs up between the row
    /// and its task would otherwise leave a deployment owned by this process that nobody drives,
    /// its stack locked.
    pub async fn start(
        self: &Arc<Self>,
        plan: Plan,
        actor: &str,
        requester: &Person,
    ) -> Result<Deployment, AppError> {
        let engine = self.clone();
        let (actor, requester) = (actor.to_owned(), requester.clone());
        tokio::spawn(async move { engine.start_unit(plan, &actor, requester).await })
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("starting the deployment: {e}")))?
    }

    async fn start_unit(
        self: &Arc<Self>,
        plan: Plan,
        actor: &str,
        requester: Person,
    ) -> Result<Deployment, AppError> {
        let deployment = Deployment::pending(
            DeploymentId::new().into_string(),
            &plan.project,
            &plan.environment,
            &plan.stack_name,
            &plan.folder.build.id,
            actor,
        );
        if self.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(AppError::Unavailable(
                "this deployer is stopping (handing its deployments over): deploy again in a \
                 moment, another replica takes it"
                    .into(),
            ));
        }
        let mut record = Record::new(deployment);
        record.deployment.recreate = plan.recreate;
        record.deployment.requested_by = Some(requester.name.clone());
        record.requester = Some(requester);
        let _starting = Starting::new(self, &record.deployment.id);
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
                StoreError::Conflict(id) => AppError::Busy {
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
        self.spawn(record, plan.cfn, Some(plan.folder));
        Ok(deployment)
    }

    pub(super) async fn audit(
        &self,
        actor: &str,
        action: AuditAction,
        d: &Deployment,
        detail: Option<&str>,
    ) {
        let outcome = (action == AuditAction::DeployFinished).then_some(d.status);
        self.store
            .audit_or_log(NewAudit {
                actor,
                action,
                project: Some(&d.project),
                environment: Some(&d.environment),
                build: Some(&d.build),
                deployment_id: Some(&d.id),
                detail,
                outcome,
            })
            .await;
    }

    /// Drives the deployment in its own task: from its build (`folder`), or re-attached to a
    /// stack operation that may be running (`None`). A panic ends it `failed`, never "running"
    /// with nobody driving it.
    pub(super) fn spawn(
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
        if running.contains_key(&id) {
            // Never two tasks for one deployment in one process.
            tracing::error!(id, "already driven here: not started a second time");
            return;
        }
        // Every line the deployment's task logs carries which deployment it is.
        let span = tracing::info_span!(
            "deployment",
            id = %record.deployment.id,
            project = %record.deployment.project,
            environment = %record.deployment.environment,
            build = %record.deployment.build,
        );
        let task = tokio::spawn({
            let id = id.clone();
            tracing::Instrument::instrument(
                async move {
                    let run = Run::new(
                        record,
                        cfn,
                        cancel_rx,
                        engine.catalog.clone(),
                        engine.store.clone(),
                        engine.hub.clone(),
                        engine.settings(),
                    );
                    let drive = std::panic::AssertUnwindSafe(engine.drive(run, folder));
                    if let Err(panic) = futures::FutureExt::catch_unwind(drive).await {
                        engine
                            .end_after_panic(&id, crate::error::panic_text(&*panic))
                            .await;
                    }
                    engine
                        .running
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .remove(&id);
                },
                span,
            )
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
        self.stopped
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (_, r) in running.drain() {
            r.task.abort();
        }
        self.store.release();
    }

    /// Asks a deployment to stop. Before execution the change set is dropped; during an update
    /// CloudFormation cancels it (rolling back); a stack being created is deleted — which the
    /// caller must confirm.
    pub async fn cancel(
        &self,
        id: &DeploymentId,
        confirm_delete: bool,
        actor: &str,
    ) -> Result<Deployment, AppError> {
        let record = self
            .store
            .record(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no deployment {:?}", id.as_str())))?;
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
        // Driven by another replica: its lease keeper applies the kept request within seconds.
        let elsewhere = record
            .owner
            .as_deref()
            .is_some_and(|o| o != self.store.replica());
        if !self.signal_cancel(id, confirm_delete) && !elsewhere {
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

    /// Tells the deployment's task; false when no task of this process drives it.
    fn signal_cancel(&self, id: &str, confirm_delete: bool) -> bool {
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
    }
}
