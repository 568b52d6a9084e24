//! The audit trail: who did what, when, and how it ended — queried with filters and paging.

use app::pause::{AuditAction, AuditEntry, AuditQuery};

use super::{Actor, Services};
use crate::error::AppError;
use crate::ids::{EnvName, Limit, ProjectName, optional};

/// A query of the audit trail, checked.
#[derive(Clone, Debug)]
pub struct AuditFilter {
    pub environment: Option<EnvName>,
    pub project: Option<ProjectName>,
    pub action: Option<AuditAction>,
    pub actor: Option<String>,
    /// Entries older than this id (the last id of the previous page).
    pub before: Option<i64>,
    pub limit: Limit,
}

/// The longest actor name a query may filter on.
const MAX_ACTOR: usize = 200;

impl AuditFilter {
    /// From the wire. `before` and `limit` arrive as text on the REST API and as numbers from the
    /// page; both are checked here, with the same words.
    pub fn parse(query: &AuditQuery) -> Result<AuditFilter, AppError> {
        let action = match optional(query.action.as_deref(), |a| Ok(a.to_owned()))? {
            None => None,
            Some(a) => Some(AuditAction::parse(&a).ok_or_else(|| {
                let known: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
                AppError::BadRequest(format!("action {a:?} is not one of {}", known.join(", ")))
            })?),
        };
        let actor = optional(query.actor.as_deref(), |a| {
            if a.chars().count() > MAX_ACTOR || a.chars().any(char::is_control) {
                Err(AppError::BadRequest(format!(
                    "actor must be a name of at most {MAX_ACTOR} characters"
                )))
            } else {
                Ok(a.to_owned())
            }
        })?;
        let before = match query.before {
            None => None,
            Some(n) if n >= 1 => Some(n),
            Some(n) => {
                return Err(AppError::BadRequest(format!(
                    "before must be a whole number from 1 to {}, got \"{n}\"",
                    i64::MAX
                )));
            }
        };
        let limit = match query.limit {
            None => Limit::DEFAULT,
            Some(n) => Limit::from_number("limit", u64::from(n))?,
        };
        Ok(AuditFilter {
            environment: optional(query.environment.as_deref(), EnvName::parse)?,
            project: optional(query.project.as_deref(), ProjectName::parse)?,
            action,
            actor,
            before,
            limit,
        })
    }
}

impl Services {
    /// The audit trail, newest first.
    pub async fn audit(
        &self,
        _actor: &Actor,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEntry>, AppError> {
        let search = crate::store::AuditSearch {
            environment: filter.environment.as_deref(),
            project: filter.project.as_deref(),
            action: filter.action,
            actor: filter.actor.as_deref(),
            before: filter.before,
            limit: filter.limit.get(),
        };
        Ok(self.store.audit_list(&search).await?)
    }
}
