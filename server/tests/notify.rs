//! Webhooks against a local receiver: announcements go through the store's outbox, so a receiver
//! that is down gets them once it is up — each once, in order — and so does a deployer that
//! restarted meanwhile; admins see each delivery; payloads carry no secret.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{Harness, TEMPLATE};
use deployer::aws::AwsClients;
use deployer::config::webhooks::{EVENTS, Format, Webhook};
use serde_json::{Value, json};

/// What a receiver was sent: (path, JSON body), in arrival order.
type Received = Arc<Mutex<Vec<(String, Value)>>>;

/// A free local port, nobody listening on it (yet).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts a receiver on `port` that answers 200 to every POST and keeps what it got.
async fn receiver(port: u16) -> Received {
    let received: Received = Arc::default();
    let keep = received.clone();
    let app = axum::Router::new().route(
        "/{*path}",
        axum::routing::post(
            move |axum::extract::Path(path): axum::extract::Path<String>, body: String| {
                let keep = keep.clone();
                async move {
                    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    keep.lock().unwrap().push((path, body));
                    StatusCode::OK
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    received
}

fn hook(name: &str, url: String, environments: &[&str], format: Format) -> Webhook {
    Webhook {
        name: name.to_owned(),
        url: Some(url),
        url_env: None,
        projects: Vec::new(),
        environments: environments.iter().map(|e| e.to_string()).collect(),
        events: EVENTS.iter().map(|e| e.to_string()).collect(),
        format,
    }
}

fn hooks(port: u16) -> Vec<Webhook> {
    vec![
        hook(
            "everything",
            format!("http://127.0.0.1:{port}/all/T000/B000/s3cr3tpath"),
            &[],
            Format::Json,
        ),
        hook(
            "prd-chat",
            format!("http://127.0.0.1:{port}/prd"),
            &["PRD"],
            Format::Slack,
        ),
    ]
}

/// A deployment to DEV (started, succeeded), then a pause of everything and its end.
async fn announce_four(h: &Harness) -> String {
    h.put_build_with("web", "web-master-1", TEMPLATE, r#"{"Greeting": "one"}"#)
        .await;
    let done = h.deploy("web", "DEV", "web-master-1").await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let (status, _) = h.pause(json!({"reason": "db migration"})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h.unpause("").await;
    assert_eq!(status, StatusCode::OK);
    done["id"].as_str().unwrap().to_owned()
}

async fn deliveries(h: &Harness) -> Vec<Value> {
    let (status, view) = h.get("/api/v1/webhooks?limit=100").await;
    assert_eq!(status, StatusCode::OK, "{view}");
    view["deliveries"].as_array().unwrap().clone()
}

async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn check_received(received: &Received, id: &str) {
    let got = received.lock().unwrap().clone();
    let all: Vec<&Value> = got
        .iter()
        .filter(|(p, _)| p.starts_with("all/"))
        .map(|(_, b)| b)
        .collect();
    let events: Vec<&str> = all.iter().map(|b| b["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        ["started", "succeeded", "paused", "resumed"],
        "each once, in order: {got:?}"
    );
    assert_eq!(all[0]["deployment_id"], id);
    assert_eq!(all[1]["build"], "web-master-1");
    assert_eq!(all[1]["environment"], "DEV");
    assert_eq!(all[2]["reason"], "db migration");
    assert!(
        all[2]["text"]
            .as_str()
            .unwrap()
            .contains("paused deployments")
    );
    // Slack's shape for the PRD channel: a text only, and only what concerns PRD (a pause of
    // every environment does; a deployment to DEV does not).
    let prd: Vec<&Value> = got
        .iter()
        .filter(|(p, _)| p == "prd")
        .map(|(_, b)| b)
        .collect();
    assert_eq!(prd.len(), 2, "{got:?}");
    assert!(prd.iter().all(|b| b.as_object().unwrap().len() == 1));
    assert!(
        prd[0]["text"]
            .as_str()
            .unwrap()
            .contains("every environment")
    );
    for (_, body) in &got {
        assert!(!body.to_string().contains("s3cr3tpath"), "{body}");
    }
}

#[tokio::test]
async fn a_receiver_that_was_down_gets_every_announcement_once_in_order() {
    let port = free_port();
    let h = Harness::start_configured(move |config, _| config.webhooks = hooks(port)).await;
    let id = announce_four(&h).await;

    // Down: attempts fail and are retried; the admin sees why.
    until("the first delivery was tried twice", async || {
        deliveries(&h)
            .await
            .iter()
            .any(|d| d["attempts"].as_i64() >= Some(2))
    })
    .await;
    let seen = deliveries(&h).await;
    assert_eq!(seen.len(), 6, "4 to everything, 2 to PRD's chat: {seen:?}");
    assert!(seen.iter().all(|d| d["status"] == "pending"), "{seen:?}");
    let first = seen
        .iter()
        .find(|d| d["attempts"].as_i64() >= Some(2))
        .unwrap();
    assert!(
        first["last_error"].as_str().unwrap().contains("connect"),
        "{first}"
    );
    let (_, view) = h.get("/api/v1/webhooks").await;
    assert_eq!(
        view["webhooks"][0]["url"],
        format!("http://127.0.0.1:{port}/…")
    );
    assert!(!view.to_string().contains("s3cr3tpath"), "{view}");
    assert!(!view.to_string().contains(&h.token), "{view}");

    // Up: everything arrives.
    let received = receiver(port).await;
    until("every delivery is delivered", async || {
        deliveries(&h)
            .await
            .iter()
            .all(|d| d["status"] == "delivered")
    })
    .await;
    // Nothing more comes after (no duplicate from a retry).
    tokio::time::sleep(Duration::from_secs(2)).await;
    check_received(&received, &id);

    // Only admins see deliveries.
    let deployer = h.new_token("dev", "deployer").await;
    let (status, _) = h
        .with_token(
            &deployer,
            axum::http::Request::get("/api/v1/webhooks")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn what_one_deployer_could_not_send_the_restarted_one_sends() {
    let down = free_port();
    let h = Harness::start_configured(move |config, _| config.webhooks = hooks(down)).await;
    let id = announce_four(&h).await;
    until("a delivery failed", async || {
        deliveries(&h)
            .await
            .iter()
            .any(|d| d["attempts"].as_i64() >= Some(1))
    })
    .await;

    // The process "dies"; the next one starts with the receiver reachable (same webhooks, by
    // name, at their new address).
    h.state.engine().abort_all();
    let up = free_port();
    let received = receiver(up).await;
    let mut config = h.config_again();
    config.webhooks = hooks(up);
    let aws = AwsClients::connect(&config, Some(common::static_credentials())).await;
    let restarted = deployer::state(config, aws).await.unwrap();
    let store = restarted.engine().store().clone();
    until("the restarted deployer delivered everything", async || {
        let list = store.outbox_list(100).await.unwrap();
        list.len() == 6 && list.iter().all(|d| d.status == "delivered")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    check_received(&received, &id);
}
