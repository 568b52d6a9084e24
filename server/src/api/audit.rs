//! `/audit`: the audit trail, filtered and paged.

use std::collections::HashMap;

use app::pause::{AuditEntry, AuditQuery};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};

use super::extract::query;
use crate::error::AppError;
use crate::ids::Limit;
use crate::service::{Actor, AuditFilter};
use crate::state::AppState;

pub async fn audit(
    State(state): State<AppState>,
    actor: Actor,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Vec<AuditEntry>>, AppError> {
    let filter = AuditFilter::parse(&audit_query(&query(q)?)?)?;
    Ok(Json(state.services.audit(&actor, &filter).await?))
}

/// The audit query as the page sends it, from a query string's text. Numbers that are not
/// numbers are refused here with the words the service uses for numbers out of range.
pub fn audit_query(q: &HashMap<String, String>) -> Result<AuditQuery, AppError> {
    let text = |k: &str| q.get(k).filter(|v| !v.trim().is_empty()).cloned();
    let before = match text("before") {
        None => None,
        Some(raw) => Some(raw.trim().parse::<i64>().map_err(|_| {
            AppError::BadRequest(format!(
                "before must be a whole number from 1 to {}, got {raw:?}",
                i64::MAX
            ))
        })?),
    };
    let limit = match text("limit") {
        None => None,
        Some(raw) => Some(Limit::parse("limit", Some(&raw))?.get()),
    };
    Ok(AuditQuery {
        environment: text("environment"),
        project: text("project"),
        action: text("action"),
        actor: text("actor"),
        before,
        limit,
    })
}
