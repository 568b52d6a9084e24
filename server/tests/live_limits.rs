//! How many `GET /api/v1/events` streams one may hold open: one person at most
//! `STREAMS_PER_PERSON`.

mod common;

use std::time::Duration;

use common::Harness;

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
