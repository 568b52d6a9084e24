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
        url: Some(url.into()),
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

/// One request a receiver got: its path, its `Idempotency-Key` header, its JSON body.
#[derive(Clone, Debug)]
struct Request {
    path: String,
    key: Option<String>,
    body: Value,
}

/// Starts a receiver on `port` that answers the `n`th request (from 0) as `answer(n)` says: a
/// status, after a delay. It keeps every request, on arrival.
async fn receiver_answering(
    port: u16,
    answer: impl Fn(usize) -> (StatusCode, Duration) + Clone + Send + Sync + 'static,
) -> Arc<Mutex<Vec<Request>>> {
    let received: Arc<Mutex<Vec<Request>>> = Arc::default();
    let keep = received.clone();
    let app = axum::Router::new().route(
        "/{*path}",
        axum::routing::post(
            move |axum::extract::Path(path): axum::extract::Path<String>,
                  headers: axum::http::HeaderMap,
                  body: String| {
                let (keep, answer) = (keep.clone(), answer.clone());
                async move {
                    let request = Request {
                        path,
                        key: headers
                            .get("idempotency-key")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned),
                        body: serde_json::from_str(&body).unwrap_or(Value::Null),
                    };
                    let n = {
                        let mut kept = keep.lock().unwrap();
                        kept.push(request);
                        kept.len() - 1
                    };
                    let (status, delay) = answer(n);
                    tokio::time::sleep(delay).await;
                    status
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

/// One webhook, `chat`, in the deployer's JSON, hearing everything.
fn json_hook(port: u16) -> Vec<Webhook> {
    vec![hook(
        "chat",
        format!("http://127.0.0.1:{port}/chat"),
        &[],
        Format::Json,
    )]
}

#[tokio::test]
async fn a_retried_delivery_carries_the_same_idempotency_key() {
    let port = free_port();
    // The first answer comes after the sender stopped waiting (10 s): the receiver got it, the
    // sender sends it again.
    let received = receiver_answering(port, |n| match n {
        0 => (StatusCode::OK, Duration::from_secs(12)),
        _ => (StatusCode::OK, Duration::ZERO),
    })
    .await;
    let h = Harness::start_configured(move |config, _| config.webhooks = json_hook(port)).await;
    let (status, _) = h.pause(json!({"reason": "db migration"})).await;
    assert_eq!(status, StatusCode::OK);
    until("the pause is delivered", async || {
        deliveries(&h)
            .await
            .iter()
            .any(|d| d["status"] == "delivered")
    })
    .await;
    let id = deliveries(&h).await[0]["id"].as_i64().unwrap();
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "sent, then sent again: {got:?}");
    for request in &got {
        assert_eq!(request.path, "chat");
        assert_eq!(request.key, Some(id.to_string()), "{got:?}");
        assert_eq!(request.body["id"], id, "{got:?}");
        assert_eq!(request.body["event"], "paused");
    }
}

#[tokio::test]
async fn a_later_announcement_waits_for_an_earlier_one_that_failed() {
    let port = free_port();
    let received = receiver_answering(port, |n| match n {
        0 => (StatusCode::SERVICE_UNAVAILABLE, Duration::ZERO),
        _ => (StatusCode::OK, Duration::ZERO),
    })
    .await;
    let h = Harness::start_configured(move |config, _| config.webhooks = json_hook(port)).await;
    let (status, _) = h.pause(json!({"reason": "db migration"})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h.unpause("").await;
    assert_eq!(status, StatusCode::OK);
    until("both are delivered", async || {
        let seen = deliveries(&h).await;
        seen.len() == 2 && seen.iter().all(|d| d["status"] == "delivered")
    })
    .await;
    let got = received.lock().unwrap().clone();
    let events: Vec<&str> = got
        .iter()
        .map(|r| r.body["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["paused", "paused", "resumed"], "{got:?}");
}

/// Polls `done` every 100 ms for at most `limit`.
async fn within(limit: Duration, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn pending_announcements_of_a_removed_webhook_are_given_up() {
    let down = free_port();
    let h = Harness::start_configured(move |config, _| config.webhooks = hooks(down)).await;
    let (status, _) = h.pause(json!({"reason": "db migration"})).await;
    assert_eq!(status, StatusCode::OK);
    until("a delivery was tried", async || {
        deliveries(&h)
            .await
            .iter()
            .any(|d| d["attempts"].as_i64() >= Some(1))
    })
    .await;

    // The admin removes `everything` from the file; `prd-chat` stays.
    let mut config = h.config_again();
    config.webhooks = hooks(down)
        .into_iter()
        .filter(|w| w.name == "prd-chat")
        .collect();
    h.state
        .services
        .reloader()
        .apply(config, "test")
        .await
        .unwrap();
    within(
        Duration::from_secs(10),
        "the removed webhook's delivery is given up",
        async || {
            deliveries(&h).await.iter().any(|d| {
                d["webhook"] == "everything"
                    && d["status"] == "failed"
                    && d["last_error"]
                        .as_str()
                        .is_some_and(|e| e.contains("no longer configured"))
            })
        },
    )
    .await;
    let seen = deliveries(&h).await;
    let kept: Vec<&Value> = seen.iter().filter(|d| d["webhook"] == "prd-chat").collect();
    assert_eq!(kept.len(), 1, "{seen:?}");
    assert_eq!(kept[0]["status"], "pending", "still tried: {seen:?}");
}
