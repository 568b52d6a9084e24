//! Restarts and lost answers: paused work not started, writes retried with the same token,
//! committed updates executed once, an applied create watched.

use super::*;

#[tokio::test]
async fn a_restarted_deployer_does_not_start_paused_work_and_keeps_a_cancel() {
    let cfn = ScriptedCfn::new(true, update_to_complete());
    let mut h = harness(cfn.clone()).await;
    let gate = cfn.gate.lock().await;
    let paused = start(&h).await;
    wait_for_step(&h, &paused, "validate").await;
    h.send_json(
        "PUT",
        "/api/v1/pause",
        json!({"reason": "freeze for the release"}),
    )
    .await;
    restart(&mut h, cfn.clone()).await;
    drop(gate);
    let detail = h.wait(&paused).await;
    assert_eq!(detail["status"], "cancelled", "{detail}");
    assert!(
        detail["message"]
            .as_str()
            .unwrap()
            .contains("freeze for the release"),
        "{detail}"
    );
    assert!(!cfn.calls().contains(&"ExecuteChangeSet".to_owned()));

    // A cancel asked just before a restart still cancels.
    h.send_json("DELETE", "/api/v1/pause", json!(null)).await;
    let gate = cfn.gate.lock().await;
    let cancelled = start(&h).await;
    wait_for_step(&h, &cancelled, "validate").await;
    let (status, answer) = h
        .post(
            &format!("/api/v1/deployments/{cancelled}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    restart(&mut h, cfn.clone()).await;
    drop(gate);
    let detail = h.wait(&cancelled).await;
    assert_eq!(detail["status"], "cancelled", "{detail}");
    assert!(!cfn.calls().contains(&"ExecuteChangeSet".to_owned()));
}

#[tokio::test]
async fn a_create_that_timed_out_after_reaching_aws_is_retried_with_the_same_token() {
    // AWS: the CreateStack answer is lost after the stack was created; a retry with the same
    // ClientRequestToken is the same request (success), never AlreadyExistsException.
    let cfn = ScriptedCfn::new(
        false,
        vec![
            (
                Some(("DEV-WEB", STACK, "CREATE_IN_PROGRESS", None)),
                StackStatus::CreateInProgress,
            ),
            (
                Some(("DEV-WEB", STACK, "CREATE_COMPLETE", None)),
                StackStatus::CreateComplete,
            ),
        ],
    );
    cfn.state.lock().unwrap().faults = vec![("CreateStack", Fault::TimeoutAfterApplying)];
    let h = harness(cfn.clone()).await;
    let detail = h.deploy("web", "DEV", "web-master-2").await;
    assert_eq!(detail["status"], "succeeded", "{detail}");
    assert_eq!(cfn.calls(), ["CreateStack"], "one stack operation");
    let tokens = cfn.tokens();
    assert_eq!(tokens.len(), 2, "{tokens:?}");
    assert_eq!(tokens[0], tokens[1], "the retry carries the same token");
    assert!(tokens[0].starts_with(detail["id"].as_str().unwrap()));
}

#[tokio::test]
async fn an_execute_that_timed_out_after_reaching_aws_is_not_a_failure() {
    // AWS: ExecuteChangeSet went through but its answer was lost; the retry with the same token
    // succeeds (without a token AWS answers InvalidChangeSetStatus, as this fake does).
    let cfn = ScriptedCfn::new(true, update_to_complete());
    cfn.state.lock().unwrap().faults = vec![("ExecuteChangeSet", Fault::TimeoutAfterApplying)];
    let h = harness(cfn.clone()).await;
    let detail = h.deploy("web", "DEV", "web-master-2").await;
    assert_eq!(detail["status"], "succeeded", "{detail}");
    assert_eq!(cfn.calls(), ["CreateChangeSet", "ExecuteChangeSet"]);
}

#[tokio::test]
async fn an_update_committed_before_a_restart_is_executed_once_and_watched() {
    // A redeploy of the build the stack runs keeps the stack's old deployment tag, so the
    // tag cannot say whether the deployment executed; the store does. AWS: ExecuteChangeSet
    // repeated with the same token after a restart is the same request.
    let cfn = ScriptedCfn::new(true, update_to_complete());
    cfn.state.lock().unwrap().tags = vec![
        ("deployer:build".into(), "web-master-2".into()),
        ("deployer:deployment".into(), "d-earlier".into()),
    ];
    {
        let mut s = cfn.state.lock().unwrap();
        s.idle = Some(StackStatus::UpdateInProgress);
        s.script.truncate(1);
    }
    let mut h = harness(cfn.clone()).await;
    let id = start(&h).await;
    wait_for_step(&h, &id, "watch").await;
    restart(&mut h, cfn.clone()).await;
    {
        let mut s = cfn.state.lock().unwrap();
        s.idle = None;
        s.script = vec![(
            Some(("DEV-WEB", STACK, "UPDATE_COMPLETE", None)),
            StackStatus::UpdateComplete,
        )];
    }
    let detail = h.wait(&id).await;
    assert_eq!(detail["status"], "succeeded", "{detail}");
    assert_eq!(cfn.calls(), ["CreateChangeSet", "ExecuteChangeSet"]);
}

#[tokio::test]
async fn a_create_applied_just_before_a_restart_is_watched_not_repeated() {
    // AWS: CreateStack went through; the deployer died before it heard back. After the restart
    // the stack exists, tagged with this deployment: it is watched, never created again or
    // updated.
    let cfn = ScriptedCfn::new(
        false,
        vec![
            (
                Some(("DEV-WEB", STACK, "CREATE_IN_PROGRESS", None)),
                StackStatus::CreateInProgress,
            ),
            (
                Some(("DEV-WEB", STACK, "CREATE_COMPLETE", None)),
                StackStatus::CreateComplete,
            ),
        ],
    );
    cfn.state.lock().unwrap().faults = vec![("CreateStack", Fault::HangAfterApplying)];
    let mut h = harness(cfn.clone()).await;
    let id = start(&h).await;
    wait_for_step(&h, &id, "execute").await;
    for _ in 0..200 {
        if cfn.calls().contains(&"CreateStack".to_owned()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    restart(&mut h, cfn.clone()).await;
    let detail = h.wait(&id).await;
    assert_eq!(detail["status"], "succeeded", "{detail}");
    assert_eq!(detail["operation"], "create", "{detail}");
    assert_eq!(cfn.calls(), ["CreateStack"], "one create, no change set");
}

/// Owning and driving are one thing: a client that hangs up while its deploy is being started
/// (after the row is written, before the task runs) does not leave a deployment that this
/// process owns, nobody drives, and whose stack stays locked.
#[tokio::test]
async fn a_deploy_whose_client_hung_up_while_it_started_is_still_driven_to_its_end() {
    // AWS: an ordinary update, UPDATE_IN_PROGRESS → UPDATE_COMPLETE.
    // The window between the row written and the answer is short: a request may be answered in
    // the very poll that wrote its row. Then this attempt did not hang up in time, and the
    // experiment starts over on a fresh deployer (at most 10 times).
    let mut attempt = 0;
    let (h, id) = loop {
        attempt += 1;
        let cfn = ScriptedCfn::new(true, update_to_complete());
        let h = harness(cfn.clone()).await;
        let store = h.state.engine().store().clone();
        let mut request = Box::pin(h.post(
            "/api/v1/deployments",
            json!({"project": "web", "environment": "DEV", "build": "web-master-2"}),
        ));
        // Poll the request only until its row is written, then drop it (the client hung up).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let seen = loop {
            if let std::task::Poll::Ready((status, body)) = futures::poll!(request.as_mut()) {
                assert!(
                    attempt < 10,
                    "answered ({status}) before the row could be seen, 10 times: {body}"
                );
                break None;
            }
            if let Some(record) = store.active().await.unwrap().into_iter().next() {
                break Some(record.deployment.id);
            }
            assert!(std::time::Instant::now() < deadline, "no row written");
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        };
        drop(request);
        if let Some(id) = seen {
            break (h, id);
        }
    };
    let done = h.wait(&id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    // The stack is free again.
    let next = h.start_deployment("web-master-2").await;
    assert!(!h.wait(&next).await["status"].is_null());
}

/// What holds the store's deployments locked from outside until dropped: a database that does
/// not answer the lease keeper (SQLite: a writer's lock; PostgreSQL: the table locked).
enum StoreHeld {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

async fn hold_the_store(h: &Harness) -> StoreHeld {
    use sqlx::Connection;
    match &h.store {
        deployer::config::StoreLocation::Sqlite(path) => {
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut conn)
                .await
                .unwrap();
            StoreHeld::Sqlite(conn)
        }
        deployer::config::StoreLocation::Postgres(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
            sqlx::query("LOCK TABLE deployments IN EXCLUSIVE MODE")
                .execute(&mut conn)
                .await
                .unwrap();
            StoreHeld::Postgres(conn)
        }
    }
}

async fn let_go(held: StoreHeld) {
    match held {
        StoreHeld::Sqlite(mut c) => drop(sqlx::query("ROLLBACK").execute(&mut c).await),
        StoreHeld::Postgres(mut c) => drop(sqlx::query("ROLLBACK").execute(&mut c).await),
    }
}

/// A replica whose leases cannot be renewed stops driving before they run out by the
/// database's clock (another replica may take over then: never two drivers); once the store
/// answers again, the deployment it still owns is picked up and driven to its end.
#[tokio::test]
async fn a_replica_that_cannot_renew_its_leases_stops_driving_and_picks_up_again() {
    // AWS: an ordinary update, held at its start by the test's gate.
    let cfn = ScriptedCfn::new(true, update_to_complete());
    let h = harness(cfn.clone()).await;
    if !matches!(h.store, deployer::config::StoreLocation::Postgres(_)) {
        // One SQLite process owns everything: nobody else could take over, so it never stops.
        eprintln!("SQLite store: one process by design; replicas are tested on PostgreSQL");
        return;
    }
    let gate = cfn.gate.lock().await;
    let id = start(&h).await;
    wait_for_step(&h, &id, "validate").await;
    let engine = h.state.engine().clone();
    assert!(engine.driving().contains(&id));

    let held = hold_the_store(&h).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(25);
    while engine.driving().contains(&id) {
        assert!(
            std::time::Instant::now() < deadline,
            "still driving with its lease unrenewed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let_go(held).await;
    drop(gate);
    let done = h.wait(&id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
}
