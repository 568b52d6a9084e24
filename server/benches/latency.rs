//! The deployer's latency targets, measured against moto (the local AWS) over real sockets.
//! Run with `scripts/bench` (or `cargo bench -p deployer --bench latency`). It reports; it does
//! not assert — timings on a shared machine are figures to read, not tests to flake.
//!
//! - pause → `event: pause` at every one of 50 SSE subscribers (target: within a second);
//! - a deploy request → `succeeded` seen on the event stream, for creates and updates (moto
//!   completes a stack operation inside the API call, so this is the deployer's own overhead);
//! - the builds list of a project with 2,000 build folders: first listing, then cached.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Harness, TEMPLATE, report};
use futures::StreamExt;
use serde_json::json;
use tokio::sync::mpsc;

const SUBSCRIBERS: usize = 50;
const PAUSE_ROUNDS: usize = 20;
const UPDATES: usize = 10;
const BUILD_FOLDERS: usize = 2_000;

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported, everything runs.
    let h = Harness::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, deployer::router(h.state.clone())).into_future());
    let client = h.http_client();

    println!(
        "deployer latency benchmark (moto {}, {base})",
        h.moto.endpoint
    );
    println!();
    pause_fan_out(&client, &base).await;
    deploys(&h, &client, &base).await;
    builds_listing(&h, &client, &base).await;
}

/// Every SSE block as (event name, data), sent with the time it arrived; first `connected`.
fn subscribe(
    client: &reqwest::Client,
    base: &str,
    tx: mpsc::UnboundedSender<(String, serde_json::Value, Instant)>,
) -> tokio::task::JoinHandle<()> {
    let request = client.get(format!("{base}/api/v1/events"));
    tokio::spawn(async move {
        let response = request.send().await.expect("subscribe to /api/v1/events");
        // A fresh subscriber gets no snapshot, only what happens next: say it is connected.
        if tx
            .send(("connected".into(), serde_json::Value::Null, Instant::now()))
            .is_err()
        {
            return;
        }
        let mut body = response.bytes_stream();
        let mut parser = common::SseParser::default();
        while let Some(Ok(chunk)) = body.next().await {
            let now = Instant::now();
            for sse in parser.push(&chunk) {
                if tx.send((sse.event, sse.data, now)).is_err() {
                    return;
                }
            }
        }
    })
}

async fn pause_fan_out(client: &reqwest::Client, base: &str) {
    let mut streams = Vec::new();
    let mut receivers = Vec::new();
    for _ in 0..SUBSCRIBERS {
        let (tx, rx) = mpsc::unbounded_channel();
        streams.push(subscribe(client, base, tx));
        receivers.push(rx);
    }
    for rx in &mut receivers {
        rx.recv().await.expect("connected");
    }
    let mut latencies = Vec::new();
    for round in 0..PAUSE_ROUNDS {
        let start = Instant::now();
        let request = if round % 2 == 0 {
            client
                .put(format!("{base}/api/v1/pause"))
                .json(&json!({"reason": "benchmark"}))
        } else {
            client.delete(format!("{base}/api/v1/pause"))
        };
        let status = request.send().await.unwrap().status();
        assert!(status.is_success(), "pause/resume answered {status}");
        for rx in &mut receivers {
            loop {
                let (event, _, at) = rx.recv().await.expect("stream open");
                if event == "pause" {
                    latencies.push(at - start);
                    break;
                }
            }
        }
    }
    streams.iter().for_each(tokio::task::JoinHandle::abort);
    report(
        &format!(
            "pause/resume → banner event at each of {SUBSCRIBERS} subscribers ({PAUSE_ROUNDS} rounds, target < 1 s)"
        ),
        latencies,
    );
}

async fn deploys(h: &Harness, client: &reqwest::Client, base: &str) {
    for n in 1..=2 {
        h.put(&format!("web/web-master-{n}/template.yaml"), TEMPLATE)
            .await;
        h.put(
            &format!("web/web-master-{n}/parameters.json"),
            &format!(r#"{{"Greeting": "build {n}"}}"#),
        )
        .await;
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let stream = subscribe(client, base, tx);
    rx.recv().await.expect("connected");

    let mut run = async |env: &str, build: &str| -> Duration {
        let start = Instant::now();
        let response = client
            .post(format!("{base}/api/v1/deployments"))
            .json(&json!({"project": "web", "environment": env, "build": build}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "deploy {build} to {env}");
        let started: serde_json::Value = response.json().await.unwrap();
        loop {
            let (event, data, at) = rx.recv().await.expect("stream open");
            let d = &data["deployment"];
            if event == "deployment" && d["id"] == started["id"] {
                match d["status"].as_str() {
                    Some("succeeded") => return at - start,
                    Some("pending" | "running") => {}
                    other => panic!("deployment ended {other:?}: {data}"),
                }
            }
        }
    };
    let mut creates = Vec::new();
    for env in ["DEV", "STG", "PRD"] {
        creates.push(run(env, "web-master-1").await);
    }
    let mut updates = Vec::new();
    for i in 0..UPDATES {
        let build = if i % 2 == 0 {
            "web-master-2"
        } else {
            "web-master-1"
        };
        updates.push(run("DEV", build).await);
    }
    stream.abort();
    report(
        "deploy request → succeeded on the stream, new stack (CreateStack)",
        creates,
    );
    report(
        "deploy request → succeeded on the stream, update (change set)",
        updates,
    );
}

async fn builds_listing(h: &Harness, client: &reqwest::Client, base: &str) {
    let s3 = h.s3().clone();
    let puts = futures::stream::iter(0..BUILD_FOLDERS)
        .map(|n| {
            let s3 = s3.clone();
            let bucket = h.moto.bucket.clone();
            async move {
                for file in ["template.yaml", "parameters.json"] {
                    s3.put_object()
                        .bucket(&bucket)
                        .key(format!(
                            "{}web-api/web-api-master-{n}/{file}",
                            common::PREFIX
                        ))
                        .body(b"{}".to_vec().into())
                        .send()
                        .await
                        .unwrap();
                }
            }
        })
        .buffer_unordered(16);
    puts.collect::<Vec<()>>().await;

    let url = format!("{base}/api/v1/projects/web-api/builds");
    // The builds watch may have listed the project while the folders were being written: the
    // page is then served that listing while the next is made in the background (it never waits
    // on a re-list). Timed: from the last write to the first answer with every folder.
    let start = Instant::now();
    loop {
        let page: serde_json::Value = client.get(&url).send().await.unwrap().json().await.unwrap();
        if page.as_array().map(Vec::len) == Some(BUILD_FOLDERS) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the listing never showed the {BUILD_FOLDERS} folders"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cold = start.elapsed();
    let mut warm = Vec::new();
    for _ in 0..50 {
        let start = Instant::now();
        let response = client.get(&url).send().await.unwrap();
        let _ = response.bytes().await.unwrap();
        warm.push(start.elapsed());
    }
    report(
        &format!(
            "builds list, {BUILD_FOLDERS} folders ({} objects), last folder written → every folder listed",
            BUILD_FOLDERS * 2
        ),
        vec![cold],
    );
    report("builds list, same project again (cached)", warm);
}
