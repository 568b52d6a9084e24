//! Webhooks that cannot be turned against their readers: a receiver's redirect is not followed
//! (the URL configured is the only place announcements go), and what people and AWS wrote
//! reaches a chat as text — no `<!channel>`, no link disguised under other words — while the
//! deployer's own links still work.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::Harness;
use deployer::config::webhooks::{EVENTS, Format, Webhook};
use serde_json::{Value, json};

fn hook(name: &str, url: String) -> Webhook {
    Webhook {
        name: name.to_owned(),
        url: Some(url.into()),
        url_env: None,
        projects: Vec::new(),
        environments: Vec::new(),
        events: EVENTS.iter().map(|e| e.to_string()).collect(),
        format: Format::Slack,
    }
}

/// A local receiver: answers every POST with `answer` (and `Location: location`), keeping the
/// paths it was posted to. Answers its base URL and what it got.
async fn receiver(
    answer: StatusCode,
    location: Option<String>,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/{*path}",
        axum::routing::post(
            move |axum::extract::Path(path): axum::extract::Path<String>| {
                let (keep, location) = (keep.clone(), location.clone());
                async move {
                    keep.lock().unwrap().push(path);
                    let mut response = axum::response::IntoResponse::into_response(answer);
                    if let Some(location) = location {
                        response
                            .headers_mut()
                            .insert("location", location.parse().unwrap());
                    }
                    response
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

async fn deliveries(h: &Harness, webhook: &str) -> Vec<Value> {
    let (status, view) = h.get("/api/v1/webhooks?limit=100").await;
    assert_eq!(status, StatusCode::OK, "{view}");
    view["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["webhook"] == webhook)
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_receivers_redirect_is_not_followed_and_is_a_failure() {
    let (elsewhere, landed) = receiver(StatusCode::OK, None).await;
    let (redirecting, asked) = receiver(
        StatusCode::TEMPORARY_REDIRECT,
        Some(format!("{elsewhere}/landed")),
    )
    .await;
    let h = Harness::start_configured(move |config, _| {
        config.webhooks = vec![hook("chat", format!("{redirecting}/hook"))]
    })
    .await;
    let (status, _) = h.pause(json!({"reason": "db migration"})).await;
    assert_eq!(status, StatusCode::OK);

    let deadline = Instant::now() + Duration::from_secs(60);
    let delivery = loop {
        let seen = deliveries(&h, "chat").await;
        if let Some(d) = seen.iter().find(|d| d["status"] != "pending") {
            break d.clone();
        }
        assert!(Instant::now() < deadline, "never tried: {seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(delivery["status"], "failed", "{delivery}");
    let error = delivery["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("redirect"), "{error}");
    assert_eq!(asked.lock().unwrap().as_slice(), ["hook"]);
    assert!(
        landed.lock().unwrap().is_empty(),
        "the redirect was followed: {:?}",
        landed.lock().unwrap()
    );
}

#[tokio::test]
async fn a_chat_gets_peoples_words_as_text_and_the_deployers_links_as_links() {
    let public = "https://deployer.example.com";
    let h = Harness::start_configured(move |config, _| {
        config.auth.public_url = Some(public.to_owned());
        // Nobody listens there: what matters is what would be sent.
        config.webhooks = vec![hook("chat", "http://127.0.0.1:9/hook".to_owned())]
    })
    .await;
    let reason = "<!channel> read <http://evil.example|the runbook> & go";
    let (status, _) = h.pause(json!({"reason": reason})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h.unpause("").await;
    assert_eq!(status, StatusCode::OK);
    h.put_build("web", "web-master-1").await;
    let done = h.deploy("web", "DEV", "web-master-1").await;
    let id = done["id"].as_str().unwrap();

    let texts: Vec<String> = deliveries(&h, "chat")
        .await
        .iter()
        .map(|d| {
            let payload: Value = serde_json::from_str(d["payload"].as_str().unwrap()).unwrap();
            payload["text"].as_str().unwrap().to_owned()
        })
        .collect();
    let paused = texts
        .iter()
        .find(|t| t.contains("paused"))
        .unwrap_or_else(|| panic!("{texts:?}"));
    assert!(
        paused.contains("&lt;!channel&gt; read &lt;http://evil.example|the runbook&gt; &amp; go"),
        "{paused}"
    );
    assert!(
        !paused.contains("<!channel>") && !paused.contains("<http://evil"),
        "{paused}"
    );
    let deployed = texts
        .iter()
        .find(|t| t.contains("is deployed"))
        .unwrap_or_else(|| panic!("{texts:?}"));
    assert!(
        deployed.contains(&format!("<{public}/deployments/{id}|{id}>")),
        "{deployed}"
    );
}
