//! The Jenkins builds panel and new builds appearing live, against the stand-in Jenkins
//! (`demo/jenkins/stand_in_jenkins.py`, answering Jenkins' JSON API, uploading a finished build's
//! artifacts into moto) — and Jenkins away, refusing, or not configured.

mod common;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{Harness, read_until};
use deployer::config::jenkins::{Jenkins, Job};

const TOKEN: &str = "jenkins-api-token";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn jenkins(port: u16, token: &str) -> Jenkins {
    Jenkins {
        url: format!("http://127.0.0.1:{port}"),
        user: Some("deployer".into()),
        token_env: Some("DEPLOYER_JENKINS_TOKEN".into()),
        token: Some(token.into()),
        poll_interval: Duration::from_millis(200),
        jobs: vec![Job {
            project: "web".into(),
            path: "web".into(),
            branch: None,
        }],
    }
}

/// The stand-in Jenkins on `port`, with no schedule (the test starts builds), killed on drop.
struct StandIn(std::process::Child);

impl StandIn {
    fn start(h: &Harness, port: u16) -> StandIn {
        let config = h.dir.path().join("stand-in.toml");
        std::fs::write(
            &config,
            common::config_toml(&h.moto, &h.dir.path().join("unused.sqlite")),
        )
        .unwrap();
        let python = common::python();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../demo/jenkins/stand_in_jenkins.py"
        );
        let child = std::process::Command::new(python)
            .arg(script)
            .arg(&config)
            .args(["--port", &port.to_string(), "--no-schedule"])
            .env("JENKINS_TOKEN", TOKEN)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("the stand-in Jenkins starts (python from the moto virtualenv)");
        StandIn(child)
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn panel_until(
    h: &Harness,
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, panel) = h.get("/api/v1/jenkins/builds").await;
        assert_eq!(status, StatusCode::OK, "{panel}");
        if ok(&panel) {
            return panel;
        }
        assert!(Instant::now() < deadline, "{what}: {panel}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_finished_build_becomes_a_deploy_config_pushed_to_every_page() {
    let port = free_port();
    // The watcher alone would take an hour: the new build must come from Jenkins' finish.
    let h = Harness::start_configured(|config, _| {
        config.jenkins = Some(jenkins(port, TOKEN));
        config.artifacts.watch_interval = Duration::from_secs(3600);
    })
    .await;
    h.put_build("web", "web-master-1").await;
    let _jenkins = StandIn::start(&h, port);
    panel_until(&h, "Jenkins answers", |p| p["state"] == "ok").await;
    // The page's list is known before the build lands.
    let (_, before) = h.builds("web", "").await;
    assert_eq!(before.as_array().unwrap().len(), 1);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, deployer::router(h.state.clone())).into_future());
    let stream = h
        .http_client()
        .get(format!("{base}/api/v1/events"))
        .send()
        .await
        .unwrap();

    let started: serde_json::Value = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{port}/stand-in/start?job=web&branch=master&duration_ms=1500&result=SUCCESS"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let build = started["build"].as_str().unwrap().to_owned();
    let number = started["number"].as_u64().unwrap();

    let events = read_until(stream, |e| {
        e.event == "builds"
            && e.data["added"]
                .as_array()
                .is_some_and(|a| a.iter().any(|b| b == build.as_str()))
    })
    .await;
    let running = events
        .iter()
        .find(|e| {
            e.event == "jenkins"
                && e.data["running"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|b| b["number"] == number))
        })
        .expect("event: jenkins with the running build");
    let b = &running.data["running"][0];
    assert_eq!(
        (b["project"].as_str(), b["branch"].as_str()),
        (Some("web"), Some("master"))
    );
    assert!(
        b["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/job/web/job/master/{number}/"))
    );
    assert!(b["started_at"].is_string() && b["estimated_duration_ms"].as_u64().unwrap() > 0);
    assert!(b["progress"].as_f64().unwrap() < 1.0);
    let added = events.last().unwrap();
    assert_eq!(added.data["project"], "web");
    // Newest first. (web-master-1 may be news too: it was written after the watcher started,
    // and whether the watcher's first look came before it depends on timing.)
    assert_eq!(added.data["added"][0], build.as_str(), "{}", added.data);

    // Listed, deployable, and the panel has it as finished with its result.
    let (_, after) = h.builds("web", "").await;
    assert_eq!(after[0]["id"], build.as_str());
    assert_eq!(after[0]["deployable"], true);
    let panel = panel_until(&h, "the build finished", |p| {
        p["finished"].as_array().is_some_and(|f| !f.is_empty())
    })
    .await;
    assert_eq!(panel["finished"][0]["result"], "SUCCESS");
    assert!(panel["running"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn jenkins_away_or_refusing_is_shown_and_recovers_by_itself() {
    let port = free_port();
    let h = Harness::start_configured(|config, _| {
        config.jenkins = Some(jenkins(port, "not-the-token"));
    })
    .await;
    // Nobody listens on the port yet.
    let away = panel_until(&h, "unreachable", |p| p["state"] == "unreachable").await;
    assert!(
        away["message"]
            .as_str()
            .unwrap()
            .contains("could not be reached"),
        "{away}"
    );

    // It answers, but refuses the token: 401, said so.
    let _jenkins = StandIn::start(&h, port);
    let refused = panel_until(&h, "unauthorized", |p| p["state"] == "unauthorized").await;
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains("401") && message.contains("DEPLOYER_JENKINS_TOKEN"),
        "{message}"
    );
    assert!(
        !message.contains("not-the-token"),
        "the token is never shown"
    );
}

#[tokio::test]
async fn without_jenkins_the_panel_says_so_and_new_builds_still_appear() {
    let h = Harness::start_configured(|config, _| {
        config.artifacts.watch_interval = Duration::from_millis(200);
    })
    .await;
    let (status, panel) = h.get("/api/v1/jenkins/builds").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(panel["state"], "not_configured");
    assert_eq!(panel["message"], "Jenkins not configured");

    // The watcher finds a build written straight into S3 (no Jenkins involved).
    h.put_build("web", "web-master-1").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, deployer::router(h.state.clone())).into_future());
    tokio::time::sleep(Duration::from_millis(500)).await; // the baseline listing
    let stream = h
        .http_client()
        .get(format!("{base}/api/v1/events"))
        .send()
        .await
        .unwrap();
    h.s3()
        .put_object()
        .bucket(&h.moto.bucket)
        .key(format!("{}web/web-master-2/template.yaml", common::PREFIX))
        .body(common::TEMPLATE.as_bytes().to_vec().into())
        .send()
        .await
        .unwrap();
    h.s3()
        .put_object()
        .bucket(&h.moto.bucket)
        .key(format!(
            "{}web/web-master-2/parameters.json",
            common::PREFIX
        ))
        .body(br#"{"Greeting":"hi"}"#.to_vec().into())
        .send()
        .await
        .unwrap();
    let events = read_until(stream, |e| {
        e.event == "builds"
            && e.data["added"]
                .as_array()
                .is_some_and(|a| a.iter().any(|b| b == "web-master-2"))
    })
    .await;
    let added = &events.last().expect("event: builds with web-master-2").data;
    assert_eq!(added["added"][0], "web-master-2", "{added}");
}

/// S3 event notifications through SQS, as a real bucket is configured (moto delivers them the
/// same way): a build landing re-lists its own project at once — and no other project.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_bucket_notifications_only_the_changed_project_is_listed_as_its_build_lands() {
    // The sweep alone would take an hour: the new build must come from the notification.
    let h = Harness::start_configured(|config, endpoint| {
        config.artifacts.watch_interval = Duration::from_secs(3600);
        let account = &config.environment("GBL").unwrap().account_id;
        config.artifacts.notifications_queue_url =
            Some(format!("{endpoint}/{account}/artifacts-events"));
    })
    .await;
    let account = h.moto.account("GBL");
    h.put_build("web", "web-master-1").await;
    h.put_build("web-api", "web-api-master-1").await;
    let sqs = &h.aws.env("GBL").unwrap().sqs;
    sqs.create_queue()
        .queue_name("artifacts-events")
        .send()
        .await
        .unwrap();
    h.s3()
        .put_bucket_notification_configuration()
        .bucket(&h.moto.bucket)
        .notification_configuration(
            aws_sdk_s3::types::NotificationConfiguration::builder()
                .queue_configurations(
                    aws_sdk_s3::types::QueueConfiguration::builder()
                        .id("deployer-builds")
                        .queue_arn(format!("arn:aws:sqs:eu-west-1:{account}:artifacts-events"))
                        .events(aws_sdk_s3::types::Event::from("s3:ObjectCreated:*"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    // What the pages list now.
    let (_, before) = h.builds("web", "").await;
    assert_eq!(before.as_array().unwrap().len(), 1);
    let (_, others) = h.builds("web-api", "").await;
    assert_eq!(others.as_array().unwrap().len(), 1);
    let artifacts = &h.state.catalog().artifacts;
    let other_listings = artifacts.listings("web-api");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, deployer::router(h.state.clone())).into_future());
    let stream = h
        .http_client()
        .get(format!("{base}/api/v1/events"))
        .send()
        .await
        .unwrap();
    let web_listings = artifacts.listings("web");

    h.put_build("web", "web-master-2").await;
    let events = read_until(stream, |e| {
        e.event == "builds"
            && e.data["added"]
                .as_array()
                .is_some_and(|a| a.iter().any(|b| b == "web-master-2"))
    })
    .await;
    let changed = &events.last().unwrap().data;
    assert_eq!(changed["project"], "web");
    assert_eq!(changed["count"], 2);
    let (_, after) = h.builds("web", "").await;
    assert_eq!(after[0]["id"], "web-master-2", "{after}");
    assert!(artifacts.listings("web") > web_listings);
    assert_eq!(
        artifacts.listings("web-api"),
        other_listings,
        "a project whose folder did not change is not listed again"
    );
}
