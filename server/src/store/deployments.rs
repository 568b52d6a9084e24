//! The `deployments` table: one row per deployment, with its steps, change set and the marks
//! that let a restarted deployer pick it up (committed to execute, executed, cancel asked).

use app::deployment::{
    Approval, ApprovalDecision, Deployment, DeploymentDetail, DeploymentStatus, Operation, StepName,
};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::pauses::pause_status;
use super::{
    CancelAsk, Filter, Record, Store, StoreError, get_flag, get_opt_ts, get_ts, parse_ts, to_json,
    ts,
};

impl Store {
    /// Inserts a new deployment — in one statement that also checks the pause, so a deployment
    /// either started before a pause was recorded or is refused. Refuses too when the stack
    /// already has an active deployment. The start time is the store's clock at the insert;
    /// it is written back into `record`.
    pub async fn insert(&self, record: &mut Record) -> Result<(), StoreError> {
        let d = &record.deployment;
        let sql = self.sql(
            "INSERT INTO deployments (id, project, environment, stack_name, build, status, operation, step,
                actor, started_at, finished_at, message, rolled_back, resources_total, resources_done,
                stack_id, change_set_name, change_set, steps, owner, lease_until, recreate,
                requester, requester_name)
             SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, {now}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {lease}, ?, ?, ?
             WHERE NOT EXISTS (SELECT 1 FROM pauses WHERE scope = '*' OR scope = ?)
             RETURNING started_at",
        );
        let result: Result<Option<String>, sqlx::Error> = sqlx::query_scalar(&sql)
            .bind(&d.id)
            .bind(&d.project)
            .bind(&d.environment)
            .bind(&d.stack_name)
            .bind(&d.build)
            .bind(d.status.as_str())
            .bind(d.operation.map(Operation::as_str))
            .bind(d.step.map(StepName::as_str))
            .bind(&d.actor)
            .bind(d.finished_at.map(ts))
            .bind(&d.message)
            .bind(i64::from(d.rolled_back))
            .bind(d.resources_total.map(i64::from))
            .bind(i64::from(d.resources_done))
            .bind(&record.stack_id)
            .bind(&record.change_set_name)
            .bind(record.change_set.as_ref().map(to_json))
            .bind(to_json(&record.steps))
            .bind(self.replica())
            .bind(i64::from(d.recreate))
            .bind(record.requester.as_ref().map(|p| p.id.as_str()))
            .bind(record.requester.as_ref().map(|p| p.name.as_str()))
            .bind(&d.environment)
            .fetch_optional(&self.pool)
            .await;
        match result {
            Ok(Some(started_at)) => {
                record.deployment.started_at = parse_ts(&started_at, "started_at")?;
                record.owner = Some(self.replica().to_owned());
                Ok(())
            }
            Ok(None) => {
                let pauses = self.pauses().await?;
                let status = pause_status(pauses, &[]);
                match status.blocking(&d.environment) {
                    Some(pause) => Err(StoreError::Paused(pause.clone())),
                    // The pause was lifted between the two reads: say so rather than guess.
                    None => Err(StoreError::Corrupt(
                        "the pause changed while starting; try again".into(),
                    )),
                }
            }
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                let active = self.active_on(&d.environment, &d.stack_name).await?;
                Err(StoreError::Conflict(active.unwrap_or_default()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The stack's active deployment, if it has one.
    pub async fn active_on(
        &self,
        environment: &str,
        stack_name: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(&self.sql(
            "SELECT id FROM deployments WHERE environment = ? AND stack_name = ? AND finished_at IS NULL",
        ))
        .bind(environment)
        .bind(stack_name)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Writes the deployment's current state (everything but its events) — only while this
    /// replica owns it: [`StoreError::LeaseLost`] when another replica has taken it over.
    pub async fn save(&self, record: &Record) -> Result<(), StoreError> {
        let d = &record.deployment;
        let done = sqlx::query(&self.sql(
            "UPDATE deployments SET status = ?, operation = ?, step = ?, finished_at = ?, message = ?,
                rolled_back = ?, resources_total = ?, resources_done = ?, stack_id = ?, change_set_name = ?,
                change_set = ?, steps = ?, waiting_reason = ?, waiting_since = ?, approval_by_another = ?
             WHERE id = ? AND (owner IS NULL OR owner = ?)",
        ))
        .bind(d.status.as_str())
        .bind(d.operation.map(Operation::as_str))
        .bind(d.step.map(StepName::as_str))
        .bind(d.finished_at.map(ts))
        .bind(&d.message)
        .bind(i64::from(d.rolled_back))
        .bind(d.resources_total.map(i64::from))
        .bind(i64::from(d.resources_done))
        .bind(&record.stack_id)
        .bind(&record.change_set_name)
        .bind(record.change_set.as_ref().map(to_json))
        .bind(to_json(&record.steps))
        .bind(
            d.waiting_reason
                .as_deref()
                .filter(|_| d.waiting_for_aws && d.finished_at.is_none()),
        )
        .bind(
            d.waiting_since
                .filter(|_| d.waiting_for_aws && d.finished_at.is_none())
                .map(ts),
        )
        .bind(d.approval.as_ref().map(|a| i64::from(a.by_another)))
        .bind(&d.id)
        .bind(self.replica())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            // Another replica took the deployment over: this one's view is stale, and not kept.
            return Err(StoreError::LeaseLost(d.id.clone()));
        }
        Ok(())
    }

    /// Claims an active deployment for this replica: free, already ours, or its lease run out
    /// (`force`: whatever the lease — one SQLite process owns everything). False when another
    /// replica holds it, or it ended.
    /// Leases are written and judged by the database's clock (`{lease}`, `{now}`): a replica
    /// whose own clock runs ahead cannot take over a live deployment.
    pub async fn claim(&self, id: &str, force: bool) -> Result<bool, StoreError> {
        let done = sqlx::query(&self.sql(
            "UPDATE deployments SET owner = ?1, lease_until = {lease}
             WHERE id = ?2 AND finished_at IS NULL
               AND (?3 = 1 OR owner IS NULL OR owner = ?1 OR lease_until IS NULL OR lease_until < {now})",
        ))
        .bind(self.replica())
        .bind(id)
        .bind(i64::from(force))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Extends this replica's leases on the deployments a task of it drives (`driving`);
    /// returns those it still holds. A row it owns but does not drive is not renewed: owning
    /// and driving are one thing ([`Store::owned_undriven`] finds such rows to pick up again).
    pub async fn renew_leases(&self, driving: &[String]) -> Result<Vec<String>, StoreError> {
        if driving.is_empty() {
            return Ok(Vec::new());
        }
        let ids = vec!["?"; driving.len()].join(", ");
        let sql = self.sql(&format!(
            "UPDATE deployments SET lease_until = {{lease}}
             WHERE owner = ? AND finished_at IS NULL AND id IN ({ids}) RETURNING id"
        ));
        let mut query = sqlx::query_scalar(&sql).bind(self.replica());
        for id in driving {
            query = query.bind(id);
        }
        Ok(query.fetch_all(&self.pool).await?)
    }

    /// Active deployments this replica owns that none of its tasks drives (`driving`): a start
    /// whose request went away, a task that stopped when its lease could not be renewed.
    pub async fn owned_undriven(&self, driving: &[String]) -> Result<Vec<Record>, StoreError> {
        let rows = sqlx::query(&self.sql(
            "SELECT * FROM deployments WHERE owner = ? AND finished_at IS NULL ORDER BY {seq}",
        ))
        .bind(self.replica())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(record_from_row)
            .filter(|r| {
                r.as_ref()
                    .map_or(true, |r| !driving.contains(&r.deployment.id))
            })
            .collect()
    }

    /// Lets go of every deployment this replica drives (a graceful stop): another replica takes
    /// them over at its next look, without waiting for the lease to run out.
    pub async fn release_leases(&self) -> Result<u64, StoreError> {
        let done = sqlx::query(&self.sql(
            "UPDATE deployments SET owner = NULL, lease_until = NULL WHERE owner = ? AND finished_at IS NULL",
        ))
        .bind(self.replica())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Active deployments nobody holds: never claimed, released, or whose lease ran out.
    pub async fn orphaned(&self) -> Result<Vec<Record>, StoreError> {
        let rows = sqlx::query(&self.sql(
            "SELECT * FROM deployments
             WHERE finished_at IS NULL AND (owner IS NULL OR lease_until IS NULL OR lease_until < {now})
             ORDER BY {seq}",
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    pub async fn record(&self, id: &str) -> Result<Option<Record>, StoreError> {
        let row = sqlx::query(&self.sql("SELECT * FROM deployments WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| record_from_row(&r)).transpose()
    }

    pub async fn detail(&self, id: &str) -> Result<Option<DeploymentDetail>, StoreError> {
        let Some(record) = self.record(id).await? else {
            return Ok(None);
        };
        let events = self.events(id).await?;
        Ok(Some(DeploymentDetail {
            deployment: record.deployment,
            steps: record.steps,
            change_set: record.change_set,
            events,
        }))
    }

    /// History, newest first.
    pub async fn list(&self, filter: &Filter) -> Result<Vec<Deployment>, StoreError> {
        let rows = sqlx::query(&self.sql(
            "SELECT * FROM deployments
             WHERE (?1 IS NULL OR project = ?1) AND (?2 IS NULL OR environment = ?2)
             ORDER BY started_at DESC, {seq} DESC LIMIT ?3",
        ))
        .bind(&filter.project)
        .bind(&filter.environment)
        .bind(i64::from(filter.limit.unwrap_or(50)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| record_from_row(r).map(|rec| rec.deployment))
            .collect()
    }

    /// The build of the stack's latest successful deployment, if the deployer made one.
    pub async fn last_succeeded_build(
        &self,
        environment: &str,
        stack_name: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(&self.sql(
            "SELECT build FROM deployments WHERE environment = ? AND stack_name = ? AND status = 'succeeded'
             ORDER BY {seq} DESC LIMIT 1",
        ))
        .bind(environment)
        .bind(stack_name)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The stack's latest deployment that executed a change and ended: its id and when it ended.
    pub async fn last_change(
        &self,
        environment: &str,
        stack_name: &str,
    ) -> Result<Option<(String, chrono::DateTime<chrono::Utc>)>, StoreError> {
        let row: Option<(String, String)> = sqlx::query_as(&self.sql(
            "SELECT id, finished_at FROM deployments
             WHERE environment = ? AND stack_name = ? AND executed_at IS NOT NULL AND finished_at IS NOT NULL
             ORDER BY {seq} DESC LIMIT 1",
        ))
        .bind(environment)
        .bind(stack_name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(id, at)| Ok((id, parse_ts(&at, "finished_at")?)))
            .transpose()
    }

    /// Whether the build was ever deployed successfully to the stack (a redeploy of it is a rollback).
    pub async fn was_deployed(
        &self,
        environment: &str,
        stack_name: &str,
        build: &str,
    ) -> Result<bool, StoreError> {
        let count: i64 = sqlx::query_scalar(&self.sql(
            "SELECT COUNT(*) FROM deployments WHERE environment = ? AND stack_name = ? AND build = ? AND status = 'succeeded'",
        ))
        .bind(environment)
        .bind(stack_name)
        .bind(build)
        .fetch_one(&self.pool)
        .await?;
        Ok(count > 0)
    }

    /// Records a person's decision on a deployment awaiting approval: only while it waits and
    /// nobody decided yet (one statement, so two people deciding at once cannot both win).
    /// Approving also needs no pause to cover the environment at that moment. False when the
    /// decision could not be recorded.
    pub async fn decide_approval(
        &self,
        id: &str,
        decision: ApprovalDecision,
        by: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(&self.sql(
            "UPDATE deployments SET approval_decision = ?1, approval_by = ?2, approval_at = {now}
             WHERE id = ?3 AND finished_at IS NULL AND status = 'awaiting_approval'
               AND approval_decision IS NULL
               AND (?1 <> 'approved' OR NOT EXISTS
                    (SELECT 1 FROM pauses WHERE scope = '*' OR scope = deployments.environment))",
        ))
        .bind(decision.as_str())
        .bind(by)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Forgets an approval (and who gave it): the change set it was given to is being made
    /// again. Fenced on ownership.
    pub async fn reset_approval(&self, id: &str) -> Result<(), StoreError> {
        let done = sqlx::query(&self.sql(
            "UPDATE deployments SET approval_by_another = NULL, approval_decision = NULL,
                 approval_by = NULL, approval_at = NULL
             WHERE id = ? AND (owner IS NULL OR owner = ?)",
        ))
        .bind(id)
        .bind(self.replica())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::LeaseLost(id.to_owned()));
        }
        Ok(())
    }

    /// The decision on a deployment awaiting approval, if one was made.
    pub async fn approval_decision(
        &self,
        id: &str,
    ) -> Result<Option<(ApprovalDecision, String, chrono::DateTime<chrono::Utc>)>, StoreError> {
        let row = sqlx::query(&self.sql(
            "SELECT approval_decision, approval_by, approval_at FROM deployments WHERE id = ?",
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let decision: Option<String> = row.try_get("approval_decision")?;
        let Some(decision) = decision else {
            return Ok(None);
        };
        let decision = ApprovalDecision::parse(&decision)
            .ok_or_else(|| StoreError::Corrupt("approval_decision".into()))?;
        let by: Option<String> = row.try_get("approval_by")?;
        let at = get_opt_ts(&row, "approval_at")?.unwrap_or_else(chrono::Utc::now);
        Ok(Some((decision, by.unwrap_or_default(), at)))
    }

    /// Deployments that have not finished (for re-attaching after a restart).
    pub async fn active(&self) -> Result<Vec<Record>, StoreError> {
        let rows = sqlx::query(
            &self.sql("SELECT * FROM deployments WHERE finished_at IS NULL ORDER BY {seq}"),
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record_from_row).collect()
    }
}

pub(super) fn record_from_row(r: &AnyRow) -> Result<Record, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(what.to_owned());
    let status: String = r.try_get("status")?;
    let operation: Option<String> = r.try_get("operation")?;
    let step: Option<String> = r.try_get("step")?;
    let steps: String = r.try_get("steps")?;
    let change_set: Option<String> = r.try_get("change_set")?;
    let started_at = get_ts(r, "started_at")?;
    let count = |column: &str| -> Result<Option<u32>, StoreError> {
        r.try_get::<Option<i64>, _>(column)?
            .map(|n| u32::try_from(n).map_err(|_| corrupt(column)))
            .transpose()
    };
    let waiting_reason: Option<String> = r.try_get("waiting_reason")?;
    let approval = match r.try_get::<Option<i64>, _>("approval_by_another")? {
        None => None,
        Some(by_another) => {
            let decision: Option<String> = r.try_get("approval_decision")?;
            Some(Approval {
                by_another: by_another != 0,
                decision: decision
                    .map(|d| {
                        ApprovalDecision::parse(&d).ok_or_else(|| corrupt("approval_decision"))
                    })
                    .transpose()?,
                decided_by: r.try_get("approval_by")?,
                decided_at: get_opt_ts(r, "approval_at")?,
            })
        }
    };
    let deployment = Deployment {
        id: r.try_get("id")?,
        project: r.try_get("project")?,
        environment: r.try_get("environment")?,
        stack_name: r.try_get("stack_name")?,
        build: r.try_get("build")?,
        status: DeploymentStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        operation: operation
            .map(|o| Operation::parse(&o).ok_or_else(|| corrupt("operation")))
            .transpose()?,
        step: step
            .map(|s| StepName::parse(&s).ok_or_else(|| corrupt("step")))
            .transpose()?,
        actor: r.try_get("actor")?,
        started_at,
        finished_at: get_opt_ts(r, "finished_at")?,
        message: r.try_get("message")?,
        rolled_back: get_flag(r, "rolled_back")?,
        waiting_for_aws: waiting_reason.is_some(),
        waiting_since: get_opt_ts(r, "waiting_since")?.filter(|_| waiting_reason.is_some()),
        waiting_reason,
        resources_total: count("resources_total")?,
        resources_done: count("resources_done")?.unwrap_or_default(),
        approval,
        recreate: get_flag(r, "recreate")?,
        requested_by: r.try_get("requester_name")?,
    };
    Ok(Record {
        deployment,
        steps: serde_json::from_str(&steps).map_err(|_| corrupt("steps"))?,
        change_set: change_set
            .map(|c| serde_json::from_str(&c))
            .transpose()
            .map_err(|_| corrupt("change_set"))?,
        stack_id: r.try_get("stack_id")?,
        change_set_name: r.try_get("change_set_name")?,
        execution_committed: get_opt_ts(r, "execution_committed_at")?.is_some(),
        executed: get_opt_ts(r, "executed_at")?.is_some(),
        cancel: get_opt_ts(r, "cancel_requested_at")?
            .map(|_| -> Result<CancelAsk, StoreError> {
                Ok(CancelAsk {
                    confirm_delete: get_flag(r, "cancel_confirm_delete")?,
                })
            })
            .transpose()?,
        owner: r.try_get("owner")?,
        requester: r
            .try_get::<Option<String>, _>("requester")?
            .map(|id| -> Result<crate::person::Person, StoreError> {
                Ok(crate::person::Person {
                    id,
                    name: r
                        .try_get::<Option<String>, _>("requester_name")?
                        .unwrap_or_default(),
                })
            })
            .transpose()?,
    })
}
