//! Fault drills against moto with a gated create (a `Custom::` resource holds the stack in
//! CREATE_IN_PROGRESS until the test releases it):
//! - AWS answers Throttling and 503s, and a CreateStack answer is lost after the stack was
//!   created (a fault-injecting proxy between the deployer and moto);
//! - the emulator vanishes for 30 s mid-watch;
//! - the deployer process is SIGKILLed mid-deployment and restarted, 20 times (`DRILL_RUNS`).
//!
//! Each prints its figures (`scripts/drills` runs them alone and shows them; the README keeps
//! them).

mod common;

use std::time::{Duration, Instant};

use common::proxy::Fault;
use common::{GATED_TEMPLATE, Harness};
use serde_json::{Value, json};

/// The id of the stack moto is creating, once it is creating it.
async fn creating_stack_id(cfn: &aws_sdk_cloudformation::Client, name: &str) -> String {
    for _ in 0..1200 {
        if let Ok(out) = cfn.describe_stacks().stack_name(name).send().await
            && let Some(stack) = out.stacks().first()
            && stack.stack_status().map(|s| s.as_str()) == Some("CREATE_IN_PROGRESS")
        {
            return stack.stack_id().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} was never being created");
}

/// How many times CloudFormation started creating the stack (its own CREATE_IN_PROGRESS events).
async fn creates(cfn: &aws_sdk_cloudformation::Client, stack_id: &str) -> usize {
    let out = cfn
        .describe_stack_events()
        .stack_name(stack_id)
        .send()
        .await
        .unwrap();
    out.stack_events()
        .iter()
        .filter(|e| {
            e.resource_type() == Some("AWS::CloudFormation::Stack")
                && e.resource_status().map(|s| s.as_str()) == Some("CREATE_IN_PROGRESS")
        })
        .count()
}

#[tokio::test]
async fn drill_throttling_503s_and_a_lost_create_answer_end_with_the_true_outcome() {
    let h = Harness::start_behind_proxy().await;
    let proxy = h.proxy.as_ref().unwrap();
    // moto's own client, not through the proxy, to look at what really happened.
    let moto_cfn = h.moto_cfn().await;
    h.put_build_of("web", "web-master-1", GATED_TEMPLATE).await;

    // The CreateStack reaches moto, but its answer comes after the SDK stopped waiting.
    proxy.inject("CreateStack", Fault::SlowAnswer(Duration::from_secs(12)), 1);
    let started = Instant::now();
    let id = h.start_deployment("web-master-1").await;
    let stack_id = creating_stack_id(&moto_cfn, "DEV-WEB").await;

    // While it is being created: throttled reads, then 503s.
    proxy.inject("DescribeStacks", Fault::Throttle, 12);
    proxy.inject("DescribeStackEvents", Fault::Unavailable, 8);
    let mut reasons = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (_, d) = h.get(&format!("/api/v1/deployments/{id}")).await;
        assert!(d["status"] == "running" || d["status"] == "pending", "{d}");
        if let Some(reason) = d["waiting_reason"].as_str()
            && reasons.last() != Some(&reason.to_owned())
        {
            reasons.push(reason.to_owned());
        }
        // Every fault served, and the deployment seen waiting and then watching again.
        if proxy.injected() >= 21 && d["step"] == "watch" && d["waiting_for_aws"] == false {
            break;
        }
        assert!(Instant::now() < deadline, "stuck: {d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    common::release_gate(&h.moto.endpoint, h.moto.account("DEV"), &stack_id).await;
    let detail = h.wait(&id).await;
    assert_eq!(detail["status"], "succeeded", "{detail}");
    assert_eq!(
        creates(&moto_cfn, &stack_id).await,
        1,
        "one stack operation, whatever the retries"
    );
    assert!(
        reasons.iter().any(|r| r.contains("Throttling")),
        "the wait said why: {reasons:?}"
    );
    println!(
        "drill 3: {} faults injected, CreateStack reached moto {} times, 1 create; \
         waiting reasons seen: {}; outcome {} after {:.1} s",
        proxy.injected(),
        proxy.forwarded("CreateStack"),
        reasons.len(),
        detail["status"],
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test]
async fn drill_the_emulator_vanishes_for_30_s_mid_watch() {
    let h = Harness::start_behind_proxy().await;
    let proxy = h.proxy.as_ref().unwrap();
    h.put_build_of("web", "web-master-1", GATED_TEMPLATE).await;
    let moto_cfn = h.moto_cfn().await;
    let id = h.start_deployment("web-master-1").await;
    let stack_id = creating_stack_id(&moto_cfn, "DEV-WEB").await;
    loop {
        let (_, d) = h.get(&format!("/api/v1/deployments/{id}")).await;
        if d["step"] == "watch" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    proxy.vanish().await;
    let gone = Instant::now();
    let mut waiting: Option<Value> = None;
    while gone.elapsed() < Duration::from_secs(30) {
        let (_, d) = h.get(&format!("/api/v1/deployments/{id}")).await;
        assert_eq!(d["status"], "running", "kept while AWS is away: {d}");
        if d["waiting_for_aws"] == true {
            waiting = Some(d);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let waiting = waiting.expect("reported as waiting for AWS");
    // Since when, so the page says how long (the first failed call, inside the outage).
    let since: chrono::DateTime<chrono::Utc> = waiting["waiting_since"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("waiting without since when: {waiting}"));
    let outage = chrono::Utc::now() - chrono::Duration::seconds(35);
    assert!(
        since > outage && since < chrono::Utc::now(),
        "{since} in {waiting}"
    );
    proxy.come_back().await;
    common::release_gate(&h.moto.endpoint, h.moto.account("DEV"), &stack_id).await;
    let detail = h.wait(&id).await;
    assert_eq!(detail["status"], "succeeded", "{detail}");
    assert!(detail["waiting_since"].is_null(), "{detail}");
    println!(
        "drill 4: emulator away 30 s; the deployment said: {}; outcome {}",
        waiting["waiting_reason"], detail["status"]
    );
}

/// The real `deployer` binary on a config file, killed with SIGKILL when asked (or dropped).
struct Process {
    child: std::process::Child,
    url: String,
}

impl Process {
    async fn start(config: &std::path::Path) -> Process {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_deployer"))
            .arg("--config")
            .arg(config)
            .env("DEPLOYER_ADDR", format!("127.0.0.1:{port}"))
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "eu-west-1")
            .env("RUST_LOG", "warn")
            .env("DEPLOYER_BOOTSTRAP_TOKEN", common::BOOTSTRAP_TOKEN)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Owned at once: a failed start still kills and reaps it (Drop).
        let process = Process {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..400 {
            if reqwest::get(format!("{}/api/v1/health", process.url))
                .await
                .is_ok()
            {
                return process;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the deployer did not start");
    }

    /// SIGKILL, like a machine that dies (Drop does it).
    fn kill(self) {}

    async fn get(&self, path: &str) -> Value {
        common::authorized_client(common::BOOTSTRAP_TOKEN)
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn drill_sigkill_mid_deployment_twenty_times() {
    let runs: usize = std::env::var("DRILL_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let h = Harness::start().await;
    // The harness's own deployer never runs a deployment here; the binary has its own store.
    let config = h.dir.path().join("process.toml");
    std::fs::write(
        &config,
        common::config_toml(&h.moto, &h.dir.path().join("process.sqlite")),
    )
    .unwrap();
    let cfn = h.cfn("DEV").clone();
    let client = common::authorized_client(common::BOOTSTRAP_TOKEN);
    let mut outcomes: Vec<String> = Vec::new();
    for run in 0..runs {
        let build = format!("web-master-{}", run + 1);
        h.put_build_of("web", &build, GATED_TEMPLATE).await;
        let process = Process::start(&config).await;
        let started: Value = client
            .post(format!("{}/api/v1/deployments", process.url))
            .json(&json!({"project": "web", "environment": "DEV", "build": build}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = started["id"].as_str().expect("accepted").to_owned();
        // Killed at a different moment each run: at once (before anything was executed), or
        // while CloudFormation creates the stack.
        if run % 2 == 1 {
            creating_stack_id(&cfn, "DEV-WEB").await;
        } else {
            tokio::time::sleep(Duration::from_millis(20 * (run as u64 % 5))).await;
        }
        process.kill();
        let process = Process::start(&config).await;
        let stack_id = creating_stack_id(&cfn, "DEV-WEB").await;
        common::release_gate(&h.moto.endpoint, h.moto.account("DEV"), &stack_id).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        let detail = loop {
            let d = process.get(&format!("/api/v1/deployments/{id}")).await;
            if !matches!(
                d["status"].as_str(),
                Some("pending" | "running" | "cancelling")
            ) {
                break d;
            }
            assert!(Instant::now() < deadline, "run {run}: never ended: {d}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(detail["status"], "succeeded", "run {run}: {detail}");
        assert_eq!(creates(&cfn, &stack_id).await, 1, "run {run}: one create");
        outcomes.push(detail["status"].as_str().unwrap().to_owned());
        let all = process.get("/api/v1/deployments?limit=1000").await;
        let all = all.as_array().unwrap();
        assert_eq!(all.len(), run + 1, "none lost, none duplicated");
        assert!(
            all.iter().all(|d| d["status"] == "succeeded"),
            "none left running"
        );
        process.kill();
        cfn.delete_stack()
            .stack_name("DEV-WEB")
            .send()
            .await
            .unwrap();
        // Deleting takes its time on AWS: the next run starts once the stack is gone.
        let deadline = Instant::now() + Duration::from_secs(30);
        while cfn
            .describe_stacks()
            .stack_name("DEV-WEB")
            .send()
            .await
            .is_ok()
        {
            assert!(
                Instant::now() < deadline,
                "run {run}: DEV-WEB never deleted"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    println!(
        "drill 1: {runs} runs, SIGKILL mid-deployment and restart: {} succeeded, 0 lost, \
         0 duplicated, 0 left running",
        outcomes.iter().filter(|o| *o == "succeeded").count()
    );
}
