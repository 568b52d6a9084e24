//! The Jenkins panel with several jobs, against a stand-in Jenkins served here (one job answering
//! Jenkins' JSON, another failing): each job is polled on its own, so one job failing costs only
//! that job's builds, and the panel names it with its reason.

mod common;

use std::time::{Duration, Instant};

use axum::Json;
use axum::http::StatusCode;
use axum::routing::get;
use common::Harness;
use deployer::config::jenkins::{Jenkins, Job};

/// A Jenkins whose `web` job runs build 7 and whose `broken` job answers 500.
async fn stand_in_jenkins() -> String {
    let router = axum::Router::new()
        .route(
            "/job/web/api/json",
            get(|| async {
                let base = "http://jenkins.invalid/job/web/";
                Json(serde_json::json!({
                    "name": "web",
                    "url": base,
                    "inQueue": false,
                    "builds": [{
                        "number": 7,
                        "url": format!("{base}7/"),
                        "building": true,
                        "timestamp": chrono::Utc::now().timestamp_millis(),
                        "estimatedDuration": 600_000,
                        "duration": 0,
                        "result": null,
                    }],
                }))
            }),
        )
        .route(
            "/job/broken/api/json",
            get(|| async {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "java.lang.OutOfMemoryError",
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, router).into_future());
    url
}

fn jenkins(url: String) -> Jenkins {
    Jenkins {
        url,
        user: None,
        token_env: None,
        token: None,
        poll_interval: Duration::from_millis(200),
        jobs: vec![
            Job {
                project: "web-api".into(),
                path: "broken".into(),
                branch: Some("master".into()),
            },
            Job {
                project: "web".into(),
                path: "web".into(),
                branch: Some("master".into()),
            },
        ],
    }
}

#[tokio::test]
async fn a_failing_job_is_named_and_the_other_jobs_builds_are_still_listed() {
    let url = stand_in_jenkins().await;
    let h = Harness::start_configured(|config, _| config.jenkins = Some(jenkins(url))).await;

    // The failing job comes first in the config: it must not hide the one after it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let panel = loop {
        let (status, panel) = h.get("/api/v1/jenkins/builds").await;
        assert_eq!(status, StatusCode::OK, "{panel}");
        if panel["state"] != "starting" {
            break panel;
        }
        assert!(Instant::now() < deadline, "never polled: {panel}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(panel["state"], "ok", "{panel}");
    let running = panel["running"].as_array().unwrap();
    assert_eq!(running.len(), 1, "{panel}");
    assert_eq!(
        (&running[0]["project"], &running[0]["number"]),
        (&serde_json::json!("web"), &serde_json::json!(7))
    );
    let failing = panel["failing"].as_array().expect("the failing jobs");
    assert_eq!(failing.len(), 1, "{panel}");
    assert_eq!(failing[0]["job"], "broken", "{panel}");
    assert_eq!(failing[0]["project"], "web-api", "{panel}");
    assert_eq!(failing[0]["state"], "unreachable", "{panel}");
    let reason = failing[0]["message"].as_str().unwrap();
    assert!(
        reason.contains("500") && reason.contains("broken"),
        "{reason}"
    );
}
