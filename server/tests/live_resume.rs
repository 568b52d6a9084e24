//! Resuming `GET /api/v1/events`: a `Last-Event-ID` this deployer cannot vouch for (ahead of it:
//! a clock step, a restored database) gets a snapshot and then every event from then on, and a
//! deployment that ends while the stream opens is seen to end.

mod common;

use std::time::Duration;

use common::{Harness, Sse, SseParser};
use futures::StreamExt;
use serde_json::json;

/// Reads events until `stop` says so, or `limit` passes (then answers what came).
async fn read_for(
    response: reqwest::Response,
    limit: Duration,
    mut stop: impl FnMut(&Sse) -> bool,
) -> Vec<Sse> {
    let mut body = response.bytes_stream();
    let mut parser = SseParser::default();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, body.next()).await {
        for sse in parser.push(&chunk) {
            let done = stop(&sse);
            out.push(sse);
            if done {
                return out;
            }
        }
    }
    out
}

/// Pauses and resumes deploying (two `pause` events for every open stream).
async fn pause_and_resume(h: &Harness) {
    let (status, body) = h.pause(json!({"reason": "release freeze"})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = h.unpause("").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_last_event_id_ahead_of_the_server_gets_a_snapshot_then_every_new_event() {
    let h = Harness::start().await;
    let base = h.serve().await;
    let client = h.http_client();

    // The newest id this deployer has given out.
    let first = h.events(&base).await;
    pause_and_resume(&h).await;
    let heard = read_for(first, Duration::from_secs(10), |e| {
        e.event == "pause" && e.data["paused"] == false
    })
    .await;
    let newest = heard
        .last()
        .and_then(|e| e.id)
        .expect("the events carry ids");

    // A little ahead (a clock stepped back between two processes on SQLite) and far ahead (a
    // restored database, a corrupted header): neither was given out here.
    for ahead in [newest + 3, u64::MAX / 2] {
        let response = client
            .get(format!("{base}/api/v1/events"))
            .header("Last-Event-ID", ahead.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        pause_and_resume(&h).await;
        let mut pauses = 0;
        let events = read_for(response, Duration::from_secs(10), |e| {
            pauses += usize::from(e.event == "pause");
            pauses == 2
        })
        .await;
        let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(
            names,
            ["snapshot", "pause", "pause"],
            "after Last-Event-ID {ahead} (newest given out: {newest}): a snapshot, then the \
             events from then on: {events:?}"
        );
        // The snapshot tells the client where it stands: a reconnect from it resumes here.
        let snapshot = events[0].id.expect("the snapshot carries an id");
        assert!(snapshot < events[1].id.unwrap(), "{events:?}");
    }
}

#[tokio::test]
async fn a_deployment_that_ends_right_after_a_snapshot_is_seen_to_end() {
    let h = Harness::start().await;
    let base = h.serve().await;
    h.put_build_of("web", "web-master-7", common::GATED_TEMPLATE)
        .await;
    let id = h.start_deployment("web-master-7").await;
    let stack = h.stack_appears("DEV", "DEV-WEB").await;
    // The gate's resource is waiting (released too early, moto answers 500).
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A client that cannot resume (an id this server never gave out: on PostgreSQL an old id
    // such as 1 is still in the shared table and resumes) gets a snapshot with the deployment
    // running; the deployment ends right after it connected.
    let response = h
        .http_client()
        .get(format!("{base}/api/v1/events"))
        .header("Last-Event-ID", (u64::MAX / 2).to_string())
        .send()
        .await
        .unwrap();
    common::release_gate(
        &h.moto.endpoint,
        h.moto.account("DEV"),
        stack.stack_id().unwrap(),
    )
    .await;
    let events = read_for(response, Duration::from_secs(30), |e| {
        e.event == "deployment" && e.data["deployment"]["status"] == "succeeded"
    })
    .await;
    assert_eq!(events[0].event, "snapshot", "{events:?}");
    assert_eq!(events[0].data["active"][0]["id"], id.as_str(), "{events:?}");
    let end = events.last().unwrap();
    assert_eq!(
        (end.event.as_str(), &end.data["deployment"]["status"]),
        ("deployment", &json!("succeeded")),
        "the client saw the deployment end: {events:?}"
    );
}
