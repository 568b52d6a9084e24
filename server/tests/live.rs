//! `GET /api/v1/events` over a real socket: typed server-sent events with ids, in order, and a
//! reconnect with `Last-Event-ID` that misses nothing.

mod common;

use std::time::Duration;

use common::{Harness, Sse, TEMPLATE, read_until};
use serde_json::json;

#[tokio::test]
async fn a_subscriber_gets_a_deployment_in_order_and_a_reconnect_misses_nothing() {
    let h = Harness::start().await;
    h.put("web/web-master-1/template.yaml", TEMPLATE).await;
    h.put(
        "web/web-master-1/parameters.json",
        r#"{"Greeting": "live"}"#,
    )
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, deployer::router(h.state.clone())).into_future());
    let client = h.http_client();

    let response = client
        .get(format!("{base}/api/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let (status, started) = h
        .post(
            "/api/v1/deployments",
            json!({"project": "web", "environment": "DEV", "build": "web-master-1"}),
        )
        .await;
    assert_eq!(status, 202);
    let id = started["id"].as_str().unwrap().to_owned();

    let mut got_stack = false;
    let events = read_until(response, |e| {
        got_stack |= e.event == "stack";
        got_stack
    })
    .await;
    let deployment: Vec<&Sse> = events.iter().filter(|e| e.event == "deployment").collect();
    assert!(deployment.len() >= 8, "every step is pushed: {events:?}");
    assert!(deployment.iter().all(|e| e.data["deployment"]["id"] == id));
    assert_eq!(
        deployment.first().unwrap().data["deployment"]["status"],
        "pending"
    );
    assert_eq!(
        deployment.last().unwrap().data["deployment"]["status"],
        "succeeded"
    );
    let ids: Vec<u64> = events.iter().map(|e| e.id.unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
    let stack = events.iter().find(|e| e.event == "stack").unwrap();
    assert_eq!(stack.data["name"], "DEV-WEB");
    assert_eq!(stack.data["build"], "web-master-1");

    // Reconnect as if the connection broke after the third event.
    let resume_after = ids[2];
    let response = client
        .get(format!("{base}/api/v1/events"))
        .header("Last-Event-ID", resume_after.to_string())
        .send()
        .await
        .unwrap();
    let last = *ids.last().unwrap();
    let replay = read_until(response, |e| e.id == Some(last)).await;
    let replay_ids: Vec<u64> = replay.iter().filter_map(|e| e.id).collect();
    assert_eq!(
        replay_ids,
        ids[3..].to_vec(),
        "everything after Last-Event-ID, nothing twice"
    );

    // An id this deployer never gave out (from a previous process on SQLite, or a corrupted
    // header) gets a snapshot to reload from; on SQLite so does one from long ago.
    let mut unknown = vec![(u64::MAX / 2).to_string()];
    if matches!(h.store, deployer::config::StoreLocation::Sqlite(_)) {
        unknown.push("1".to_owned());
    }
    for last_event_id in unknown {
        let response = client
            .get(format!("{base}/api/v1/events"))
            .header("Last-Event-ID", &last_event_id)
            .send()
            .await
            .unwrap();
        let first = read_until(response, |_| true).await;
        assert_eq!(first[0].event, "snapshot", "after {last_event_id}");
    }
}

#[tokio::test]
async fn the_stream_carries_pause_and_resume() {
    let h = Harness::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, deployer::router(h.state.clone())).into_future());
    let client = h.http_client();
    let response = client
        .get(format!("{base}/api/v1/events"))
        .send()
        .await
        .unwrap();

    let paused = client
        .put(format!("{base}/api/v1/pause"))
        .json(&json!({"reason": "release freeze"}))
        .send()
        .await
        .unwrap();
    assert_eq!(paused.status(), 200);
    let resumed = client
        .delete(format!("{base}/api/v1/pause"))
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);

    let mut seen = 0;
    let events = read_until(response, |e| {
        seen += usize::from(e.event == "pause");
        seen == 2
    })
    .await;
    let pauses: Vec<&Sse> = events.iter().filter(|e| e.event == "pause").collect();
    assert_eq!(pauses.len(), 2, "{events:?}");
    assert_eq!(pauses[0].data["paused"], true);
    assert_eq!(pauses[0].data["reason"], "release freeze");
    assert_eq!(pauses[1].data["paused"], false);
}

#[tokio::test]
async fn a_shutdown_is_not_held_open_by_event_subscribers() {
    // The deployer deploys itself: on SIGTERM the old process must exit even while browsers
    // hold `/api/v1/events` open (they reconnect to the new one).
    let h = Harness::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(deployer::serve(listener, h.state.clone(), async move {
        let _ = stopped.await;
    }));
    let client = h.http_client();
    let mut subscribers = Vec::new();
    for _ in 0..3 {
        let response = client
            .get(format!("{base}/api/v1/events"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        subscribers.push(response);
    }
    stop.send(()).unwrap();
    let served = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops although subscribers are connected");
    served.unwrap().unwrap();
    for response in subscribers {
        let end = tokio::time::timeout(Duration::from_secs(5), response.bytes()).await;
        assert!(
            matches!(end, Ok(Ok(_))),
            "each stream ends cleanly: {end:?}"
        );
    }
}

/// Push, not only poll: with DEV's stack events pushed (CloudFormation → the SNS topic in the
/// stack's NotificationARNs → an SQS queue subscribed to it — moto publishes and delivers as AWS
/// does), a deployment hears its stack complete as it happens: here the poll interval is 30 s,
/// and the outcome comes within seconds of the gated create's release.
#[tokio::test]
async fn a_pushed_stack_event_ends_the_deployments_wait_at_once() {
    let h = Harness::start_configured(|config, endpoint| {
        config.poll_interval = Duration::from_secs(30);
        let dev = &config.environments[0].account_id;
        config.environments[0].stack_events = Some(common::stack_events_config(endpoint, dev));
    })
    .await;
    let account = h.moto.account("DEV");
    assert_eq!(h.state.catalog().config().environments[0].name, "DEV");
    let topic_arn = common::stack_events_config(&h.moto.endpoint, account).topic_arn;
    common::make_stack_events(&h.moto.endpoint, &h.aws.env("DEV").unwrap().sqs, account).await;

    h.put_build_of("web", "web-master-7", common::GATED_TEMPLATE)
        .await;
    let id = h.start_deployment("web-master-7").await;
    let stack = h.stack_appears("DEV", "DEV-WEB").await;
    assert_eq!(
        stack.notification_arns(),
        std::slice::from_ref(&topic_arn),
        "the stack announces its events to DEV's topic"
    );
    // Past the deployer's first look at the stack: it now waits (30 s) for the next poll.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let released = std::time::Instant::now();
    common::release_gate(&h.moto.endpoint, account, stack.stack_id().unwrap()).await;
    let mut status = String::new();
    while released.elapsed() < Duration::from_secs(25) {
        let (_, d) = h.deployment(&id).await;
        status = d["status"].as_str().unwrap_or_default().to_owned();
        if status != "running" && status != "pending" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        status,
        "succeeded",
        "the outcome came from the pushed event, well before the 30 s poll ({:?} after the release)",
        released.elapsed()
    );
}
