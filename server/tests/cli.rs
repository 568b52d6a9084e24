//! `deployctl` against the real server (on a socket) and moto: the commands a terminal or a CI
//! job runs, their output, and the exit codes scripts branch on.

mod common;

use common::{Harness, TEMPLATE};
use deployctl::{Console, exit};
use deployer::config::Protection;
use serde_json::Value;

/// What one `deployctl …` printed and how it exited.
struct Ran {
    code: u8,
    out: String,
    err: String,
}

async fn deployctl(url: &str, token: &str, args: &[&str]) -> Ran {
    let mut argv = vec!["deployctl", "--url", url, "--token", token];
    argv.extend_from_slice(args);
    let (mut console, out, err) = Console::captured();
    let code = deployctl::run(argv, &mut console).await;
    Ran {
        code,
        out: out.text(),
        err: err.text(),
    }
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.out, self.err
        )
    }
}

fn json(ran: &Ran) -> Value {
    serde_json::from_str(&ran.out).unwrap_or_else(|e| panic!("not JSON ({e}): {ran}"))
}

#[tokio::test]
async fn deploy_with_wait_follows_to_the_end_and_the_reads_agree_with_the_api() {
    let h = Harness::start().await;
    let url = h.serve().await;
    let token = h.token.clone();
    h.put_build_with("web", "web-master-1", TEMPLATE, r#"{"Greeting": "one"}"#)
        .await;

    let projects = deployctl(&url, &token, &["projects"]).await;
    assert_eq!(projects.code, exit::SUCCEEDED, "{projects}");
    assert!(projects.out.contains("web"), "{projects}");
    let builds = deployctl(&url, &token, &["builds", "web"]).await;
    assert!(
        builds.out.contains("web-master-1") && builds.out.contains("deployable"),
        "{builds}"
    );

    let ran = deployctl(
        &url,
        &token,
        &["deploy", "web", "DEV", "web-master-1", "--wait"],
    )
    .await;
    assert_eq!(ran.code, exit::SUCCEEDED, "{ran}");
    assert!(ran.out.contains("succeeded"), "{ran}");
    // Not a terminal: plain lines of progress on stderr (the steps, the stack's events).
    assert!(ran.err.contains("CREATE_COMPLETE"), "{ran}");

    let status = deployctl(&url, &token, &["status", "web", "DEV", "-o", "json"]).await;
    assert_eq!(status.code, exit::SUCCEEDED, "{status}");
    let cards = json(&status);
    assert_eq!(cards.as_array().unwrap().len(), 1, "{status}");
    assert_eq!(cards[0]["build"], "web-master-1");
    assert_eq!(cards[0]["status"], "CREATE_COMPLETE");
    let (_, api) = h.stacks("web").await;
    let api_dev = api
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["environment"] == "DEV")
        .unwrap();
    assert_eq!(&cards[0], api_dev, "the CLI prints what the API answers");

    let list = deployctl(
        &url,
        &token,
        &["deployments", "--project", "web", "-o", "json"],
    )
    .await;
    let list = json(&list);
    assert_eq!(list[0]["status"], "succeeded");
    let id = list[0]["id"].as_str().unwrap().to_owned();
    // `watch` of a deployment that already ended: at once, with its exit code.
    let watched = deployctl(&url, &token, &["watch", &id]).await;
    assert_eq!(watched.code, exit::SUCCEEDED, "{watched}");
    assert!(watched.out.contains(&id), "{watched}");

    let audit = deployctl(&url, &token, &["audit", "--project", "web", "-o", "json"]).await;
    assert!(
        json(&audit)
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "deploy_finished" && e["outcome"] == "succeeded"),
        "{audit}"
    );
}

#[tokio::test]
async fn a_refused_build_exits_3_and_an_unknown_one_too_with_the_servers_message() {
    let h = Harness::start().await;
    let url = h.serve().await;
    let importing = TEMPLATE.replace(
        "      Value: !Ref Greeting",
        "      Value:\n        Fn::ImportValue: !Sub \"${Greeting}-shared-topic\"",
    );
    h.put_build_with("web", "web-master-1", &importing, r#"{"Greeting": "DEV"}"#)
        .await;
    let ran = deployctl(
        &url,
        &h.token,
        &["deploy", "web", "DEV", "web-master-1", "--wait"],
    )
    .await;
    assert_eq!(ran.code, exit::REFUSED, "{ran}");
    assert!(ran.out.contains("refused"), "{ran}");
    assert!(ran.out.contains("DEV-shared-topic"), "{ran}");

    // Refused at the door: no such build (the server's 404, in its words).
    let unknown = deployctl(&url, &h.token, &["deploy", "web", "DEV", "web-master-99"]).await;
    assert_eq!(unknown.code, exit::REFUSED, "{unknown}");
    assert!(unknown.err.contains("web-master-99"), "{unknown}");
    // A token the deployer does not know.
    let stranger = deployctl(&url, "dpl_not-a-token", &["projects"]).await;
    assert_eq!(stranger.code, exit::REFUSED, "{stranger}");
}

#[tokio::test]
async fn a_paused_environment_exits_5_with_the_reason_and_resume_lets_the_deploy_through() {
    let h = Harness::start().await;
    let url = h.serve().await;
    let token = h.token.clone();
    h.put_build_with("web", "web-master-1", TEMPLATE, r#"{"Greeting": "one"}"#)
        .await;
    let paused = deployctl(
        &url,
        &token,
        &["pause", "--reason", "release freeze", "--env", "DEV"],
    )
    .await;
    assert_eq!(paused.code, exit::SUCCEEDED, "{paused}");
    assert!(paused.out.contains("release freeze"), "{paused}");

    let refused = deployctl(
        &url,
        &token,
        &["deploy", "web", "DEV", "web-master-1", "--wait"],
    )
    .await;
    assert_eq!(refused.code, exit::PAUSED, "{refused}");
    assert!(refused.err.contains("release freeze"), "{refused}");

    let resumed = deployctl(&url, &token, &["resume", "--env", "DEV"]).await;
    assert_eq!(resumed.code, exit::SUCCEEDED, "{resumed}");
    let status = deployctl(&url, &token, &["paused", "-o", "json"]).await;
    assert_eq!(json(&status)["paused"], false, "{status}");
    let ran = deployctl(
        &url,
        &token,
        &["deploy", "web", "DEV", "web-master-1", "--wait"],
    )
    .await;
    assert_eq!(ran.code, exit::SUCCEEDED, "{ran}");
}

/// PRD protected: an update waits for approval — an active deployment, so a second deploy is
/// busy (6); another person approves from the CLI and `--wait` follows it to the end; a
/// discarded one ends cancelled (4).
#[tokio::test]
async fn busy_exits_6_and_approve_and_discard_end_as_they_should() {
    let h = Harness::start_configured(|config, _| {
        let prd = config
            .environments
            .iter_mut()
            .find(|e| e.name == "PRD")
            .unwrap();
        prd.protection = Some(Protection { by_another: true });
    })
    .await;
    let url = h.serve().await;
    // Another person (four eyes compare people: a token made by the harness's admin would be
    // the same person).
    let releaser = h.token_of("releaser", "releaser", "admin").await;
    h.put_build_with("web", "web-master-1", TEMPLATE, r#"{"Greeting": "one"}"#)
        .await;
    h.put_build_with(
        "web",
        "web-master-2",
        &common::template_with_a_bucket(),
        r#"{"Greeting": "two"}"#,
    )
    .await;
    h.put_build_with(
        "web",
        "web-master-3",
        &common::template_with_a_bucket(),
        r#"{"Greeting": "three"}"#,
    )
    .await;
    // PRD holds a first create too: another person approves it.
    let created = deployctl(
        &url,
        &h.token,
        &["deploy", "web", "PRD", "web-master-1", "-o", "json"],
    )
    .await;
    assert_eq!(created.code, exit::SUCCEEDED, "{created}");
    let first = json(&created)["id"].as_str().unwrap().to_owned();
    assert_eq!(h.wait(&first).await["status"], "awaiting_approval");
    let approved = deployctl(&url, &releaser, &["approve", &first, "--wait"]).await;
    assert_eq!(approved.code, exit::SUCCEEDED, "{approved}");

    let asked = deployctl(
        &url,
        &h.token,
        &["deploy", "web", "PRD", "web-master-2", "-o", "json"],
    )
    .await;
    assert_eq!(asked.code, exit::SUCCEEDED, "{asked}");
    let id = json(&asked)["id"].as_str().unwrap().to_owned();
    let waiting = h.wait(&id).await;
    assert_eq!(waiting["status"], "awaiting_approval");

    let busy = deployctl(&url, &h.token, &["deploy", "web", "PRD", "web-master-3"]).await;
    assert_eq!(busy.code, exit::BUSY, "{busy}");
    assert!(
        busy.err.contains(&id),
        "names the deployment in the way: {busy}"
    );

    // The one who asked may not approve it here.
    let own = deployctl(&url, &h.token, &["approve", &id]).await;
    assert_eq!(own.code, exit::REFUSED, "{own}");
    let approved = deployctl(&url, &releaser, &["approve", &id, "--wait"]).await;
    assert_eq!(approved.code, exit::SUCCEEDED, "{approved}");
    assert!(approved.out.contains("succeeded"), "{approved}");

    let asked = deployctl(
        &url,
        &h.token,
        &["deploy", "web", "PRD", "web-master-3", "-o", "json"],
    )
    .await;
    let id = json(&asked)["id"].as_str().unwrap().to_owned();
    assert_eq!(h.wait(&id).await["status"], "awaiting_approval");
    let discarded = deployctl(&url, &releaser, &["discard", &id]).await;
    assert_eq!(discarded.code, exit::SUCCEEDED, "{discarded}");
    let watched = deployctl(&url, &h.token, &["watch", &id]).await;
    assert_eq!(watched.code, exit::CANCELLED, "{watched}");
}

#[tokio::test]
async fn usage_and_connection_errors_exit_2_and_say_what_to_do() {
    let (mut console, _, err) = Console::captured();
    let code = deployctl::run(["deployctl", "deploy", "web"], &mut console).await;
    assert_eq!(code, exit::USAGE);
    assert!(err.text().contains("Usage"), "{}", err.text());

    // Nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ran = deployctl(&format!("http://127.0.0.1:{port}"), "t", &["projects"]).await;
    assert_eq!(ran.code, exit::USAGE, "{ran}");
    assert!(ran.err.contains("cannot reach the deployer"), "{ran}");

    let (mut console, out, _) = Console::captured();
    let code = deployctl::run(["deployctl", "--help"], &mut console).await;
    assert_eq!(code, exit::SUCCEEDED);
    assert!(
        out.text().contains("5  paused"),
        "the exit codes are documented"
    );
}

/// `--wait -o json` prints the deployment as it ended — its steps finished, the stack's events,
/// the change set — exactly as the API then answers it, not as first read when it had just
/// started.
#[tokio::test]
async fn deploy_with_wait_and_json_prints_the_finished_deployment_as_the_api_has_it() {
    let h = Harness::start().await;
    let url = h.serve().await;
    h.put_build_with("web", "web-master-1", TEMPLATE, r#"{"Greeting": "one"}"#)
        .await;
    let ran = deployctl(
        &url,
        &h.token,
        &[
            "deploy",
            "web",
            "DEV",
            "web-master-1",
            "--wait",
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(ran.code, exit::SUCCEEDED, "{ran}");
    let printed = json(&ran);
    assert_eq!(printed["status"], "succeeded", "{ran}");
    let steps = printed["steps"].as_array().unwrap();
    assert!(
        !steps.is_empty() && steps.iter().all(|s| s["status"] != "running"),
        "every step finished: {ran}"
    );
    assert!(
        printed["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["status"] == "CREATE_COMPLETE"),
        "the stack's events to the end: {ran}"
    );
    let id = printed["id"].as_str().unwrap();
    let (_, api) = h.get(&format!("/api/v1/deployments/{id}")).await;
    assert_eq!(printed, api, "the CLI prints what the API answers");
}
