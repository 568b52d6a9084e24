//! Ready for people: a started deployer answers `/api/v1/health` at once (it is alive), and
//! `/api/v1/ready` once its first sweep has listed every project's build folders. A load balancer
//! that checks `ready` sends a new replica — every self-deploy starts new ones — no one until
//! then, so no one's first builds page after a deploy waits for a listing (seconds for a project
//! of thousands of builds); the replicas already serving carry the traffic meanwhile.
//!
//! A listing that fails still counts as done (the report names the project): a replica whose
//! bucket is unreachable is no worse than the others, and holding it back forever would only
//! have the load balancer replace it again and again. Nor does a hung listing hold it back past
//! [`WARM_UP_LIMIT`].

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// The longest a replica stays "not ready" for its first sweep (the template's health-check
/// grace period is 120 s; the load balancer needs two good checks 10 s apart on top).
pub const WARM_UP_LIMIT: Duration = Duration::from_secs(60);

pub struct Readiness {
    started: Instant,
    limit: Duration,
    sweep: Mutex<Sweep>,
}

#[derive(Default)]
struct Sweep {
    /// How many projects the first sweep lists (`None`: the sweep has not begun).
    projects: Option<usize>,
    listed: usize,
    failed: Vec<String>,
    /// When the first sweep ended, after the start.
    took: Option<Duration>,
}

/// `GET /api/v1/ready`'s answer (200 when `ready`, else 503).
// The OpenAPI document's schema `Ready` is derived from this type: the two cannot drift.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[schemars(rename = "Ready")]
pub struct ReadyReport {
    pub ready: bool,
    /// `ready`; `warming_up` while the first sweep lists; `ready_without_warm_up` when the sweep
    /// took longer than the limit (the replica serves; pages may wait for a listing).
    pub status: &'static str,
    /// Projects the first sweep lists (0 until it has found them).
    pub projects: usize,
    /// Of them, listed so far (a failed listing counts: it is done).
    pub listed: usize,
    /// Projects whose first listing failed (their pages will list again when asked).
    pub failed: Vec<String>,
    /// How long the first sweep took, once it has ended.
    pub warm_up_ms: Option<u64>,
    /// Since the deployer started.
    pub uptime_ms: u64,
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness::with_limit(WARM_UP_LIMIT)
    }
}

impl Readiness {
    pub fn with_limit(limit: Duration) -> Readiness {
        Readiness {
            started: Instant::now(),
            limit,
            sweep: Mutex::new(Sweep::default()),
        }
    }

    fn sweep(&self) -> std::sync::MutexGuard<'_, Sweep> {
        self.sweep
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The first sweep begins: it will list this many projects.
    pub fn begin(&self, projects: usize) {
        let mut sweep = self.sweep();
        if sweep.took.is_none() {
            sweep.projects = Some(projects);
        }
    }

    /// The first sweep listed a project (`ok: false`: the listing failed).
    pub fn listed(&self, project: &str, ok: bool) {
        let mut sweep = self.sweep();
        if sweep.took.is_some() {
            return;
        }
        sweep.listed += 1;
        if !ok {
            sweep.failed.push(project.to_owned());
        }
    }

    /// The first sweep has ended; later sweeps change nothing here.
    pub fn finish(&self) {
        let mut sweep = self.sweep();
        if sweep.took.is_none() {
            sweep.took = Some(self.started.elapsed());
            tracing::info!(
                projects = sweep.listed,
                failed = sweep.failed.len(),
                took_ms = sweep.took.map_or(0, |t| t.as_millis() as u64),
                "ready: every project's build folders listed"
            );
        }
    }

    pub fn report(&self) -> ReadyReport {
        let sweep = self.sweep();
        let uptime = self.started.elapsed();
        let (ready, status) = match sweep.took {
            Some(_) => (true, "ready"),
            None if uptime >= self.limit => (true, "ready_without_warm_up"),
            None => (false, "warming_up"),
        };
        ReadyReport {
            ready,
            status,
            projects: sweep.projects.unwrap_or(0),
            listed: sweep.listed,
            failed: sweep.failed.clone(),
            warm_up_ms: sweep.took.map(|t| t.as_millis() as u64),
            uptime_ms: uptime.as_millis() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_once_the_first_sweep_has_ended_failures_counted_and_named() {
        let r = Readiness::with_limit(Duration::from_secs(3600));
        let before = r.report();
        assert!(!before.ready);
        assert_eq!(before.status, "warming_up");
        assert_eq!(before.projects, 0);
        r.begin(2);
        r.listed("web", true);
        assert!(!r.report().ready, "one of two listed is not ready");
        r.listed("api", false);
        r.finish();
        let after = r.report();
        assert!(after.ready);
        assert_eq!(after.status, "ready");
        assert_eq!((after.projects, after.listed), (2, 2));
        assert_eq!(after.failed, vec!["api".to_owned()]);
        assert!(after.warm_up_ms.is_some());
        // Later sweeps do not move the report.
        r.begin(5);
        r.listed("other", false);
        r.finish();
        assert_eq!(
            r.report().failed,
            vec!["api".to_owned()],
            "the first sweep's report stays"
        );
        assert_eq!(r.report().projects, 2);
    }

    #[test]
    fn a_sweep_that_outlasts_the_limit_does_not_hold_the_replica_back() {
        let r = Readiness::with_limit(Duration::ZERO);
        r.begin(3);
        let report = r.report();
        assert!(report.ready);
        assert_eq!(report.status, "ready_without_warm_up");
        assert_eq!(report.warm_up_ms, None);
    }
}
