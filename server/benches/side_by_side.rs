//! The deployer side by side with what a team would otherwise use, against moto over real
//! sockets. `scripts/bench` runs it; it reports and asserts nothing (figures on a shared machine
//! are to be read, not to flake). Results and targets: docs/benchmarks.md.
//!
//! The deployer under measurement is the real server binary (`target/release/deployer`), a
//! process of its own with its own store, so that its memory, start-up and AWS calls (read off
//! its own `/metrics`) are its alone. This process plays the viewers, the build server and AWS's
//! other users.
//!
//! 1. Time to truth on a gated create (moto holds the stack in CREATE_IN_PROGRESS until the
//!    bench answers for its custom resource): the deployer with pushed stack events (DEV: SNS →
//!    SQS), the deployer polling only (STG), and `aws cloudformation create-stack` + `aws
//!    cloudformation wait stack-create-complete` (awscli, pinned) — releases spread over each
//!    one's poll period.
//! 2. Viewers: 1, 100 and 1,000 event-stream clients on one active deployment — AWS calls per
//!    minute, delay of an event to the last client, server RSS; 1,000 page loads at once.
//! 3. Discovery: 1,000 then 10,000 builds (and 49 other projects): S3 calls of a full listing
//!    and of a re-list; the builds page cold, warm, and just after the listing went stale.
//! 4. The server: start-up time and idle RSS (the wasm's size is measured by `scripts/bench`).
//! 5. Cost of one deployment of a 20-resource stack: AWS calls by operation (and step).

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{BOOTSTRAP_TOKEN, GATED_TEMPLATE, Harness, TEMPLATE, report};
use futures::StreamExt;
use serde_json::json;
use tokio::sync::mpsc;

const POLL: Duration = Duration::from_secs(2);
const RUNS: usize = 10;
/// The waiter's own delay between DescribeStacks (botocore's waiter model for
/// stack-create-complete).
const WAITER_DELAY: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() {
    let h = Harness::start().await;
    for (env, account) in h.moto.accounts.iter().take(1) {
        common::make_stack_events(&h.moto.endpoint, &h.aws.env(env).unwrap().sqs, account).await;
    }
    println!("deployer side-by-side benchmark (moto {})", h.moto.endpoint);
    println!("poll interval {POLL:?}; DEV has pushed stack events, STG is polled only\n");

    // moto builds an account's CloudFormation on its first call there (1.3 s measured): done
    // here, so that the server's first page measures the server, not the emulator's start.
    for (env, _) in h.moto.accounts.iter() {
        let _ = h.cfn(env).describe_stacks().send().await;
    }
    // The build every section deploys: a create that waits for the bench's word.
    h.put_build_with(
        "web",
        "web-gated-1",
        GATED_TEMPLATE,
        r#"{"Greeting":"bench"}"#,
    )
    .await;
    let (server, started_in) = Server::spawn(&h, "bench").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    section("4. the server");
    println!("    start-up (spawn → /api/v1/health answers)   {started_in:>9.1?}");
    println!(
        "    idle RSS                                     {:>6} MB",
        server.rss_mb()
    );

    if wanted("truth") {
        time_to_truth(&h, &server).await;
    }
    if wanted("page") {
        interactive(&server).await;
    }
    if wanted("viewers") {
        viewers(&h, &server).await;
    }
    if wanted("cost") {
        cost_of_a_deployment(&h, &server).await;
    }
    drop(server);
    if wanted("discovery") {
        discovery(&h).await;
    }
}

/// Whether to run a section: all of them, or those named in `BENCH_ONLY` (comma-separated:
/// truth, page, viewers, cost, discovery; the server's start-up and idle memory always).
fn wanted(section: &str) -> bool {
    std::env::var("BENCH_ONLY")
        .map(|only| only.split(',').any(|s| s.trim() == section))
        .unwrap_or(true)
}

fn ms_count(line: &serde_json::Value) -> usize {
    line["ms"].as_array().map_or(0, Vec::len)
}

fn section(title: &str) {
    println!("\n{title}");
}

/// The release server binary on its own port, store and config, polling every [`POLL`].
struct Server {
    child: std::process::Child,
    base: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn spawn(h: &Harness, name: &str) -> (Server, Duration) {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let push = common::stack_events_config(&h.moto.endpoint, h.moto.account("DEV"));
        let toml = common::config_toml(&h.moto, &dir.path().join(format!("{name}.sqlite")))
            .replace("poll_interval_ms = 50", &format!("poll_interval_ms = {}", POLL.as_millis()))
            .replacen(
                "name = \"DEV\"\n",
                &format!(
                    "name = \"DEV\"\nstack_events_topic_arn = \"{}\"\nstack_events_queue_url = \"{}\"\n",
                    push.topic_arn, push.queue_url
                ),
                1,
            );
        let config = dir.path().join("deployer.toml");
        std::fs::write(&config, toml).unwrap();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let start = Instant::now();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_deployer"))
            .arg("--config")
            .arg(&config)
            .env("DEPLOYER_ADDR", format!("127.0.0.1:{port}"))
            .env("DEPLOYER_BOOTSTRAP_TOKEN", BOOTSTRAP_TOKEN)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("LEPTOS_SITE_ROOT", root.join("target/site"))
            .env(
                "RUST_LOG",
                std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            // BENCH_SERVER_LOG (a RUST_LOG filter) shows the server's own log.
            .stdout(if std::env::var_os("BENCH_SERVER_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start target/release/deployer");
        let base = format!("http://127.0.0.1:{port}");
        let client = common::authorized_client(BOOTSTRAP_TOKEN);
        loop {
            if let Ok(r) = client.get(format!("{base}/api/v1/health")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the server did not start"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let took = start.elapsed();
        (
            Server {
                child,
                base,
                client,
                _dir: dir,
            },
            took,
        )
    }

    fn rss_mb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    }

    /// AWS calls since start by (service, operation), from the server's own `/metrics`.
    async fn aws_calls(&self) -> BTreeMap<(String, String), u64> {
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut calls = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| l.starts_with("deployer_aws_calls_total{"))
        {
            let label = |name: &str| {
                line.split(&format!("{name}=\""))
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or_default()
                    .to_owned()
            };
            let value: f64 = line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
            *calls
                .entry((label("service"), label("operation")))
                .or_default() += value as u64;
        }
        calls
    }

    async fn total_calls(&self) -> u64 {
        self.aws_calls().await.values().sum()
    }

    async fn deploy(&self, project: &str, env: &str, build: &str) -> String {
        let response = self
            .client
            .post(format!("{}/api/v1/deployments", self.base))
            .json(&json!({"project": project, "environment": env, "build": build}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "deploy {build} to {env}");
        let started: serde_json::Value = response.json().await.unwrap();
        started["id"].as_str().unwrap().to_owned()
    }

    async fn deployment(&self, id: &str) -> serde_json::Value {
        self.client
            .get(format!("{}/api/v1/deployments/{id}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits for the deployment to end; its status.
    async fn finish(&self, id: &str) -> String {
        loop {
            let d = self.deployment(id).await;
            let status = d["status"].as_str().unwrap_or_default().to_owned();
            if status != "pending" && status != "running" {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every SSE block as (event, data, arrival), from now on.
    fn subscribe(
        &self,
        tx: mpsc::UnboundedSender<(String, serde_json::Value, Instant)>,
    ) -> tokio::task::JoinHandle<()> {
        let request = self.client.get(format!("{}/api/v1/events", self.base));
        tokio::spawn(async move {
            let Ok(response) = request.send().await else {
                return;
            };
            let _ = tx.send(("connected".into(), serde_json::Value::Null, Instant::now()));
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
}

/// Starts a gated create of `web` in `env` and returns (deployment id, stack id) once the
/// deployer is watching the stack.
async fn gated_create(h: &Harness, server: &Server, env: &str) -> (String, String) {
    let stack = format!("{env}-WEB");
    let cfn = h.cfn(env);
    if cfn
        .describe_stacks()
        .stack_name(&stack)
        .send()
        .await
        .is_ok()
    {
        cfn.delete_stack().stack_name(&stack).send().await.unwrap();
    }
    let id = server.deploy("web", env, "web-gated-1").await;
    loop {
        let d = server.deployment(&id).await;
        if d["step"] == "watch" {
            let stack_id = cfn
                .describe_stacks()
                .stack_name(&stack)
                .send()
                .await
                .unwrap()
                .stacks()[0]
                .stack_id()
                .unwrap()
                .to_owned();
            return (id, stack_id);
        }
        assert!(
            matches!(d["status"].as_str(), Some("pending" | "running")),
            "{d}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn time_to_truth(h: &Harness, server: &Server) {
    section("1. time to truth: gated create released → outcome reported");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let stream = server.subscribe(tx);
    rx.recv().await.expect("connected");

    for (env, account, label) in [
        (
            "DEV",
            h.moto.account("DEV"),
            "deployer, pushed events (SNS → SQS)",
        ),
        ("STG", h.moto.account("STG"), "deployer, polling only"),
    ] {
        let calls_before = server.total_calls().await;
        let mut on_api = Vec::new();
        let mut on_stream = Vec::new();
        for run in 0..RUNS {
            let (id, stack_id) = gated_create(h, server, env).await;
            // Releases spread over the poll period.
            tokio::time::sleep(POLL.mul_f64(run as f64 / RUNS as f64) + Duration::from_millis(50))
                .await;
            while rx.try_recv().is_ok() {}
            let api = {
                let (client, url) = (
                    server.client.clone(),
                    format!("{}/api/v1/deployments/{id}", server.base),
                );
                tokio::spawn(async move {
                    loop {
                        let d: serde_json::Value =
                            client.get(&url).send().await.unwrap().json().await.unwrap();
                        if d["status"] == "succeeded" {
                            return Instant::now();
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                })
            };
            let released = Instant::now();
            common::release_gate(&h.moto.endpoint, account, &stack_id).await;
            let seen = loop {
                let (event, data, at) = rx.recv().await.expect("stream open");
                if event == "deployment"
                    && data["deployment"]["id"] == id.as_str()
                    && data["deployment"]["status"] == "succeeded"
                {
                    break at;
                }
            };
            on_stream.push(seen - released);
            on_api.push(api.await.unwrap() - released);
        }
        let calls = server.total_calls().await - calls_before;
        report(&format!("{label} — event stream"), on_stream);
        report(&format!("{label} — API (polled every 10 ms)"), on_api);
        println!("    AWS calls for the {RUNS} deployments: {calls}");
    }
    stream.abort();
    waiter(h).await;
}

/// `aws cloudformation create-stack` then `aws cloudformation wait stack-create-complete`, ten
/// at once, each released at its own moment over the waiter's 30 s period.
async fn waiter(h: &Harness) {
    let aws = std::env::var("BENCH_AWS_CLI").unwrap_or_else(|_| "aws".to_owned());
    if std::process::Command::new(&aws)
        .arg("--version")
        .output()
        .is_err()
    {
        println!("    aws-cli waiter: not measured (no `aws`; scripts/bench installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("gated.yaml");
    std::fs::write(&template, GATED_TEMPLATE).unwrap();
    let cli = |args: &[&str]| {
        let mut c = tokio::process::Command::new(&aws);
        c.args(args)
            .args(["--endpoint-url", &h.moto.endpoint, "--region", "eu-west-1"])
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    let mut runs = Vec::new();
    for run in 0..RUNS {
        let name = format!("waiter-{run}");
        let out = cli(&[
            "cloudformation",
            "create-stack",
            "--stack-name",
            &name,
            "--template-body",
            &format!("file://{}", template.display()),
            "--parameters",
            "ParameterKey=Greeting,ParameterValue=bench",
            "--capabilities",
            "CAPABILITY_NAMED_IAM",
            "--output",
            "json",
        ])
        .output()
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let stack_id = created["StackId"].as_str().unwrap().to_owned();
        let waiting = cli(&[
            "cloudformation",
            "wait",
            "stack-create-complete",
            "--stack-name",
            &name,
        ])
        .spawn()
        .unwrap();
        runs.push((run, stack_id, waiting, Instant::now()));
    }
    let measured = runs.into_iter().map(|(run, stack_id, waiting, started)| {
        let endpoint = h.moto.endpoint.clone();
        async move {
            let at = started
                + WAITER_DELAY.mul_f64(run as f64 / RUNS as f64)
                + Duration::from_millis(500);
            tokio::time::sleep_until(at.into()).await;
            let released = Instant::now();
            // The CLI acts in moto's default account.
            common::release_gate(&endpoint, "123456789012", &stack_id).await;
            let out = waiting.wait_with_output().await.unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            released.elapsed()
        }
    });
    let times = futures::future::join_all(measured).await;
    report(
        "aws cloudformation create-stack + wait stack-create-complete (awscli)",
        times,
    );
}

async fn viewers(h: &Harness, server: &Server) {
    section("2. viewers: event-stream clients on one active deployment (STG, polled)");
    let (id, stack_id) = gated_create(h, server, "STG").await;
    let mut streams = Vec::new();
    let mut receivers = Vec::new();
    for n in [1usize, 100, 1_000] {
        while streams.len() < n {
            let (tx, rx) = mpsc::unbounded_channel();
            streams.push(server.subscribe(tx));
            receivers.push(rx);
        }
        for rx in receivers.iter_mut() {
            while let Ok((event, ..)) = rx.try_recv() {
                let _ = event;
            }
        }
        // Every client connected (its first block seen or already drained).
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = server.aws_calls().await;
        let window = Duration::from_secs(20);
        tokio::time::sleep(window).await;
        let after = server.aws_calls().await;
        // By operation, so that a difference between levels says where it came from.
        let made: Vec<(String, u64)> = after
            .iter()
            .map(|(key, v)| (key.1.clone(), v - before.get(key).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect();
        let calls: u64 = made.iter().map(|(_, n)| n).sum();
        let per_minute = calls as f64 * 60.0 / window.as_secs_f64();
        let by_operation = made
            .iter()
            .map(|(op, n)| format!("{op} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        for rx in receivers.iter_mut() {
            while rx.try_recv().is_ok() {}
        }
        // An event to all: pause then resume; the delay to the last client of each.
        let mut delays = Vec::new();
        for round in 0..4 {
            let start = Instant::now();
            let request = if round % 2 == 0 {
                server
                    .client
                    .put(format!("{}/api/v1/pause", server.base))
                    .json(&json!({"reason": "benchmark"}))
            } else {
                server
                    .client
                    .delete(format!("{}/api/v1/pause", server.base))
            };
            let status = request.send().await.unwrap().status();
            assert!(status.is_success(), "pause/resume answered {status}");
            let mut last = start;
            for rx in receivers.iter_mut() {
                loop {
                    let (event, _, at) = rx.recv().await.expect("stream open");
                    if event == "pause" {
                        last = last.max(at);
                        break;
                    }
                }
            }
            delays.push(last - start);
        }
        delays.sort();
        println!(
            "    {n:>5} clients: AWS calls {per_minute:>5.0}/min   event → last client p50 {:>7.1?} max {:>7.1?}   server RSS {:>4} MB",
            delays[delays.len() / 2],
            delays[delays.len() - 1],
            server.rss_mb()
        );
        println!(
            "            in the {}s window: {by_operation}",
            window.as_secs()
        );
    }
    streams.iter().for_each(tokio::task::JoinHandle::abort);

    // 1,000 page loads at once: what each page reads (the project's stack cards).
    let before = server.aws_calls().await;
    let start = Instant::now();
    let loads = (0..1_000).map(|_| {
        let request = server
            .client
            .get(format!("{}/api/v1/projects/web/stacks", server.base));
        async move { request.send().await.map(|r| r.status().is_success()) }
    });
    let answered = futures::stream::iter(loads)
        .buffer_unordered(1_000)
        .filter(|r| std::future::ready(matches!(r, Ok(true))))
        .count()
        .await;
    let took = start.elapsed();
    let after = server.aws_calls().await;
    let made: u64 = after
        .iter()
        .map(|(k, v)| v - before.get(k).copied().unwrap_or(0))
        .sum();
    println!(
        "    1,000 project pages loading at once: {answered} answered in {took:.1?}; AWS calls made: {made}"
    );
    common::release_gate(&h.moto.endpoint, h.moto.account("STG"), &stack_id).await;
    server.finish(&id).await;
}

/// A template with 20 resources (queues and topics moto creates at once).
fn twenty_resources(tag: &str) -> String {
    let mut t = String::from(
        "AWSTemplateFormatVersion: \"2010-09-09\"\nParameters:\n  Greeting:\n    Type: String\nResources:\n",
    );
    for i in 0..10 {
        t.push_str(&format!(
            "  Queue{i}:\n    Type: AWS::SQS::Queue\n    Properties:\n      Tags:\n        - Key: greeting\n          Value: !Sub \"${{Greeting}}-{tag}\"\n"
        ));
        t.push_str(&format!("  Topic{i}:\n    Type: AWS::SNS::Topic\n"));
    }
    t
}

async fn cost_of_a_deployment(h: &Harness, server: &Server) {
    section("5. cost of one deployment of a 20-resource stack (AWS calls by operation)");
    h.put_build_with(
        "web-api",
        "web-api-master-1",
        &twenty_resources("a"),
        r#"{"Greeting":"one"}"#,
    )
    .await;
    h.put_build_with(
        "web-api",
        "web-api-master-2",
        &twenty_resources("b"),
        r#"{"Greeting":"two"}"#,
    )
    .await;
    for (build, what) in [
        ("web-api-master-1", "create (CreateStack)"),
        ("web-api-master-2", "update (change set)"),
    ] {
        let before = server.aws_calls().await;
        let id = server.deploy("web-api", "DEV", build).await;
        let status = server.finish(&id).await;
        let after = server.aws_calls().await;
        let mut lines = Vec::new();
        let mut total = 0;
        for ((service, operation), v) in &after {
            let d = v - before
                .get(&(service.clone(), operation.clone()))
                .copied()
                .unwrap_or(0);
            if d > 0 {
                total += d;
                lines.push(format!("{operation} {d}"));
            }
        }
        println!("    {what}, {status}: {total} calls — {}", lines.join(", "));
    }
    println!(
        "    while CloudFormation works: 2 calls per poll (DescribeStackEvents, DescribeStacks) = {} calls/min at a {POLL:?} poll; the poll interval bounds the polled time to truth (≤ 1 poll, ½ on average)",
        120 / POLL.as_secs().max(1)
    );
    let _ = TEMPLATE;
}

async fn discovery(h: &Harness) {
    section("3. discovery at scale: a project with many builds, 49 other projects in the bucket");
    let s3 = h.s3().clone();
    let bucket = h.moto.bucket.as_str();
    let put_builds = |project: &'static str, range: std::ops::Range<usize>| {
        let s3 = s3.clone();
        async move {
            futures::stream::iter(range)
                .map(|n| {
                    let s3 = s3.clone();
                    async move {
                        for file in ["template.yaml", "parameters.json"] {
                            s3.put_object()
                                .bucket(bucket)
                                .key(format!(
                                    "{}{project}/{project}-master-{n}/{file}",
                                    common::PREFIX
                                ))
                                .body(b"{}".to_vec().into())
                                .send()
                                .await
                                .unwrap();
                        }
                    }
                })
                .buffer_unordered(32)
                .collect::<Vec<()>>()
                .await;
        }
    };
    for p in 0..49 {
        let project: &'static str = Box::leak(format!("other{p}").into_boxed_str());
        put_builds(project, 0..5).await;
    }
    let mut have = 0;
    for total in [1_000usize, 10_000] {
        put_builds("web-api", have..total).await;
        have = total;
        // The listing itself, in this process: S3 calls of a full listing and of a re-list.
        let store = deployer::artifacts::ArtifactStore::new(
            s3.clone(),
            h.moto.bucket.clone(),
            common::PREFIX.into(),
            vec!["DEV".into(), "STG".into(), "PRD".into(), "GBL".into()],
            Duration::from_secs(20),
        );
        let start = Instant::now();
        store.relist("web-api", Duration::ZERO).await.unwrap();
        let full = start.elapsed();
        let full_calls = store.counts("web-api").s3_calls;
        put_builds("web-api", total..total + 1).await;
        let start = Instant::now();
        let listed = store.relist("web-api", Duration::ZERO).await.unwrap();
        let relist = start.elapsed();
        let relist_calls = store.counts("web-api").s3_calls - full_calls;
        assert_eq!(listed.len(), total + 1);
        println!(
            "    {total:>6} builds: full listing {full:>8.1?} ({full_calls} S3 calls); re-list with one new build {relist:>8.1?} ({relist_calls} S3 calls)"
        );
        // The builds page of a fresh server: the first (cold), then warm, then across the TTL.
        let (server, _) = Server::spawn(h, "discovery").await;
        let url = format!("{}/api/v1/projects/web-api/builds?limit=50", server.base);
        let get = async || {
            let start = Instant::now();
            let r = server.client.get(&url).send().await.unwrap();
            assert!(r.status().is_success());
            let _ = r.bytes().await.unwrap();
            start.elapsed()
        };
        let cold = get().await;
        let mut warm = Vec::new();
        for _ in 0..50 {
            warm.push(get().await);
        }
        // Past the listing's 20 s: every request keeps being answered from memory while the
        // re-list runs behind.
        let mut stale = Vec::new();
        let until = Instant::now() + Duration::from_secs(24);
        while Instant::now() < until {
            stale.push(get().await);
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // A new replica behind the self-deploy template's load balancer, which checks
        // `/api/v1/ready`: it takes people once its first sweep has listed every project (these
        // 50 and the configured ones); then the first page it serves.
        let (replica, started) = Server::spawn(h, "discovery-ready").await;
        let ready_url = format!("{}/api/v1/ready", replica.base);
        let since_start = Instant::now();
        while !replica
            .client
            .get(&ready_url)
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let ready = started + since_start.elapsed();
        let start = Instant::now();
        let r = replica
            .client
            .get(format!(
                "{}/api/v1/projects/web-api/builds?limit=50",
                replica.base
            ))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let _ = r.bytes().await.unwrap();
        let first_when_ready = start.elapsed();
        drop(replica);
        report(
            &format!("    {total:>6} builds: builds page, first after start"),
            vec![cold],
        );
        report(
            &format!("    {total:>6} builds: a new replica ready (spawn → /api/v1/ready 200)"),
            vec![ready],
        );
        report(
            &format!("    {total:>6} builds: builds page, first once ready"),
            vec![first_when_ready],
        );
        report(&format!("    {total:>6} builds: builds page, warm"), warm);
        report(
            &format!("    {total:>6} builds: builds page every 250 ms across the listing's expiry"),
            stale,
        );
    }
}

/// Navigation to an enabled Deploy button in headless Chromium (end2end/bench/interactive.mjs),
/// a fresh browser context each time: every wasm file fetched (from this machine).
async fn interactive(server: &Server) {
    let calls_before = server.aws_calls().await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../end2end");
    let out = tokio::process::Command::new("node")
        .arg("bench/interactive.mjs")
        .arg(&server.base)
        .arg(BOOTSTRAP_TOKEN)
        .arg("/projects/web/DEV")
        .arg("5")
        .current_dir(&root)
        .output()
        .await;
    match out {
        Ok(out) if out.status.success() => {
            let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let ms: Vec<Duration> = line["ms"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_u64())
                        .map(Duration::from_millis)
                        .collect()
                })
                .unwrap_or_default();
            if !ms.is_empty() {
                report(
                    "    navigation to an interactive Deploy button (a stack's page, cold browser cache)",
                    ms,
                );
            }
            let first = &line["first"];
            if let Some(ms) = first["ms"].as_u64() {
                println!(
                    "      the server's first page after start (its caches cold), not counted above: {ms} ms (document in {} ms, hydrated at {} ms)",
                    first["document"], first["hydrated"]
                );
            }
            let after = server.aws_calls().await;
            println!(
                "      AWS calls for the {} page loads: {}",
                ms_count(&line) + 1,
                after
                    .iter()
                    .map(|(key, v)| (key, v - calls_before.get(key).copied().unwrap_or(0)))
                    .filter(|(_, n)| *n > 0)
                    .map(|((service, op), n)| format!("{service} {op} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            // Where the time went, on the page's clock (mean of the runs).
            let phases = line["phases"].as_array().cloned().unwrap_or_default();
            let mean = |key: &str| {
                let v: Vec<f64> = phases.iter().filter_map(|p| p[key].as_f64()).collect();
                v.iter().sum::<f64>() / v.len().max(1) as f64
            };
            if !phases.is_empty() {
                println!(
                    "      ms from navigation start: first byte {:.0}, document {:.0}, wasm in {:.0} ({:.0} files), load {:.0}, hydrated {:.0}",
                    mean("first_byte"),
                    mean("document"),
                    mean("wasm_in"),
                    mean("wasm_files"),
                    mean("load"),
                    mean("hydrated"),
                );
            }
        }
        Ok(out) => println!(
            "    navigation to an interactive Deploy button: not measured ({})",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .find(|l| l.contains("Error"))
                .unwrap_or_default()
        ),
        Err(e) => {
            println!("    navigation to an interactive Deploy button: not measured (node: {e})")
        }
    }
}
