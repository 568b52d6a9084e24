//! Who may hold `GET /api/v1/events` open, and how many: one person holds at most
//! `STREAMS_PER_PERSON` streams, and a stream ends soon after its credentials do (a revoked or
//! expired token, an ended session).

mod common;

use std::time::Duration;

use common::Harness;
use futures::StreamExt;
use serde_json::json;

#[tokio::test]
async fn one_person_cannot_hold_more_than_their_share_of_event_streams() {
    let h = Harness::start().await;
    let base = h.serve().await;
    let cap = deployer::live::STREAMS_PER_PERSON;
    let mut open = Vec::new();
    for _ in 0..cap {
        let response = h.events(&base).await;
        assert_eq!(response.status(), 200);
        open.push(response);
    }
    let refused = h.events(&base).await;
    assert_eq!(refused.status(), 429, "one more for the same person");
    let body: serde_json::Value = refused.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&cap.to_string()) && message.contains("event streams"),
        "{body}"
    );
    // Another person is not held back by the first one's streams.
    let other = h.token_of("someone", "their-script", "viewer").await;
    let theirs = common::authorized_client(&other)
        .get(format!("{base}/api/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), 200);
    // A stream closed gives its place back.
    drop(open.pop());
    let mut status = 429;
    for _ in 0..400 {
        status = h.events(&base).await.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200, "a closed stream frees its place");
}

/// Reads a stream until it ends; how long that took (`None`: still open after `limit`).
async fn ends_within(response: reqwest::Response, limit: Duration) -> Option<Duration> {
    let started = std::time::Instant::now();
    let mut body = response.bytes_stream();
    tokio::time::timeout(limit, async {
        while let Some(Ok(_)) = body.next().await {}
    })
    .await
    .ok()
    .map(|()| started.elapsed())
}

#[tokio::test]
async fn an_event_stream_ends_soon_after_its_token_is_revoked() {
    let h = Harness::start().await;
    let base = h.serve().await;
    let (status, created) = h
        .post(
            "/api/v1/tokens",
            json!({"name": "dashboard", "role": "viewer"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["token"].as_str().unwrap();
    let stream = common::authorized_client(secret)
        .get(format!("{base}/api/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    // Another stream, whose token stays valid, stays open.
    let other = h.events(&base).await;

    let (status, revoked) = h
        .send_json(
            "DELETE",
            &format!("/api/v1/tokens/{}", created["id"].as_str().unwrap()),
            serde_json::Value::Null,
        )
        .await;
    assert_eq!(status, 200, "{revoked}");
    let ended = ends_within(stream, Duration::from_secs(15)).await;
    assert!(
        ended.is_some(),
        "the revoked token's stream is still open 15 s after the revocation"
    );
    let (status, _) = h.pause(json!({"reason": "still here?"})).await;
    assert_eq!(status, 200);
    let heard = common::read_until(other, |e| e.event == "pause").await;
    assert!(
        heard.iter().any(|e| e.event == "pause"),
        "a valid token's stream goes on: {heard:?}"
    );
}

#[tokio::test]
async fn an_event_stream_ends_soon_after_its_session_ends() {
    let h = Harness::start().await;
    let base = h.serve().await;
    let session = h.login("ann", "ann", &["everyone"]).await;
    let stream = reqwest::Client::new()
        .get(format!("{base}/api/v1/events"))
        .header(
            "cookie",
            format!("{}={session}", deployer::auth::SESSION_COOKIE),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    h.state
        .auth
        .store()
        .end_session(&deployer::auth::hash(&session))
        .await
        .unwrap();
    assert!(
        ends_within(stream, Duration::from_secs(15)).await.is_some(),
        "the ended session's stream is still open 15 s later"
    );
}
