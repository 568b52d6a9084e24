//! What the deployer has read of the stacks' and builds' exports and imports, kept by the
//! catalog for as long as it runs and filled in by `deploy::exports` (pre-flight, verdict), so
//! that a check reads again only what changed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use app::model::StackStatus;
use chrono::{DateTime, Utc};

use crate::aws::cfn::StackSummary;

/// What the deployer has read already, so that a check reads only what changed.
#[derive(Default)]
pub struct Known {
    /// Environment → stack id → the stack's imports as read at that state of the stack. Only the
    /// stacks the last listing showed are kept.
    pub(crate) stacks: Mutex<HashMap<String, StacksRead>>,
    /// A build's export names in an environment (`None`: some are computed at deploy time).
    pub(crate) builds: Mutex<HashMap<BuildKey, Option<Vec<String>>>>,
}

/// Stack id → what its template imports, and the state of the stack it was read at.
pub(crate) type StacksRead = HashMap<String, (StackState, Arc<StackImports>)>;

/// What says a stack's template is the one read before: a stack's template changes only with an
/// operation, and every operation changes its status or its last-updated time.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct StackState {
    pub(crate) status: StackStatus,
    pub(crate) created_at: Option<DateTime<Utc>>,
    pub(crate) last_updated_at: Option<DateTime<Utc>>,
}

impl StackState {
    pub(crate) fn of(summary: &StackSummary) -> Self {
        StackState {
            status: summary.status,
            created_at: summary.created_at,
            last_updated_at: summary.last_updated_at,
        }
    }

    /// Whether what was read at this state stays true while the state does: not while an
    /// operation runs, nor for an updated stack whose last-updated time is not given (a
    /// stand-in that does not keep it would hide the next update).
    pub(crate) fn lasts(&self) -> bool {
        !self.status.is_in_progress()
            && (self.last_updated_at.is_some()
                || matches!(
                    self.status,
                    StackStatus::CreateComplete | StackStatus::CreateFailed
                ))
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct BuildKey {
    pub(crate) environment: String,
    pub(crate) stack_name: String,
    pub(crate) template_key: String,
    pub(crate) parameters_key: String,
    pub(crate) override_key: Option<String>,
    pub(crate) written_at: DateTime<Utc>,
}

/// What one stack's template imports.
#[derive(Debug)]
pub struct StackImports {
    pub stack: String,
    /// The export names it imports.
    pub imports: Vec<String>,
    /// Why not every import of it is known (its template unreadable, or names computed at
    /// deploy time); `None` when every one is.
    pub gap: Option<String>,
}
