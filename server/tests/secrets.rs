//! Secrets never in `Debug` output or the log: the OIDC client secret, the bootstrap token, the
//! Jenkins token, webhooks' URLs, the database password, a token just made.
//!
//! The secrets come from the environment, as in production. A test cannot set its own process's
//! environment (`unsafe`), so it runs itself, or the deployer, as a child with them set.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BOOTSTRAP: &str = "bootstrap-0123456789-secret";
const CLIENT_SECRET: &str = "oidc-client-secret-4711";
const JENKINS_TOKEN: &str = "jenkins-api-token-0815";
const HOOK_FROM_ENV: &str = "https://hooks.example.com/services/T0/B0/env-hook-secret";
const HOOK_IN_FILE: &str = "https://hooks.example.com/services/T1/B1/file-hook-secret";
const DB_PASSWORD: &str = "db-password-1337";
/// What must appear in no output (a webhook URL's secret is its path).
const SECRETS: [&str; 6] = [
    BOOTSTRAP,
    CLIENT_SECRET,
    JENKINS_TOKEN,
    "env-hook-secret",
    "file-hook-secret",
    DB_PASSWORD,
];

/// The config file: every secret it can name, named by the variable holding it (and one
/// webhook's URL in the file itself).
fn config_toml(store: &str) -> String {
    format!(
        r#"listen = "127.0.0.1:0"
store = {store:?}
[artifacts]
bucket = "artifacts"
environment = "DEV"
[[environments]]
name = "DEV"
account_id = "123456789012"
region = "eu-west-1"
endpoint_url = "http://127.0.0.1:1"
[[projects]]
name = "web"
environments = ["DEV"]
[auth.oidc]
issuer = "http://127.0.0.1:1"
client_id = "deployer"
client_secret_env = "TEST_OIDC_CLIENT_SECRET"
[jenkins]
url = "http://127.0.0.1:1"
user = "deployer"
token_env = "TEST_JENKINS_TOKEN"
[jenkins.jobs]
web = "web"
[[webhooks]]
name = "from-env"
url_env = "TEST_WEBHOOK_URL"
[[webhooks]]
name = "in-file"
url = "{HOOK_IN_FILE}"
"#
    )
}

/// The environment a deployer with [`config_toml`] starts with.
fn with_secrets(command: &mut Command) -> &mut Command {
    command
        .env("DEPLOYER_BOOTSTRAP_TOKEN", BOOTSTRAP)
        .env("TEST_OIDC_CLIENT_SECRET", CLIENT_SECRET)
        .env("TEST_JENKINS_TOKEN", JENKINS_TOKEN)
        .env("TEST_WEBHOOK_URL", HOOK_FROM_ENV)
        .env(
            "DEPLOYER_DATABASE_URL",
            format!("postgres://deployer:{DB_PASSWORD}@127.0.0.1:1/deployer?sslmode=disable"),
        )
}

fn assert_holds_no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} holds {secret:?}:\n{text}");
    }
}

/// Runs the test `name` of this binary again, as a child with the secrets in its environment.
fn run_as_child(name: &str) {
    let out = with_secrets(&mut Command::new(std::env::current_exe().unwrap()))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("SECRETS_TEST_CHILD", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_config_s_debug_holds_none_of_its_secrets() {
    if std::env::var_os("SECRETS_TEST_CHILD").is_none() {
        return run_as_child("a_config_s_debug_holds_none_of_its_secrets");
    }
    let mut config = deployer::config::Config::parse(&config_toml("deployer.sqlite")).unwrap();
    config.secrets_from_env().unwrap();
    // Every secret was read…
    assert!(config.auth.bootstrap_token.is_some());
    assert!(config.auth.oidc.as_ref().unwrap().client_secret.is_some());
    assert!(config.jenkins.as_ref().unwrap().token.is_some());
    assert!(config.webhooks.iter().all(|h| h.url.is_some()));
    assert!(format!("{}", config.store).starts_with("postgres://deployer:"));
    // …and none is in the config's Debug, nor in its parts'.
    assert_holds_no_secret("the config's Debug", &format!("{config:?}"));
    assert_holds_no_secret("the config's pretty Debug", &format!("{config:#?}"));
    assert_holds_no_secret("the auth section", &format!("{:?}", config.auth));
    assert_holds_no_secret("the store's location", &format!("{}", config.store));
}

#[test]
fn a_token_just_made_is_not_in_its_debug() {
    let made = app::auth::CreatedToken {
        info: app::auth::Token {
            id: "t1".into(),
            name: "ci".into(),
            role: "deployer".into(),
            created_by: "alice".into(),
            created_at: chrono::Utc::now(),
            revoked_at: None,
            revoked_by: None,
            last_used_at: None,
            expires_at: None,
            person: None,
        },
        token: "dpl_made-token-secret".into(),
    };
    let shown = format!("{made:?}");
    assert!(!shown.contains("made-token-secret"), "{shown}");
    assert!(shown.contains("ci"), "{shown}");
}

/// A deployer's output (stdout and stderr) until it exits or `until` appears in it (then it
/// is stopped), at most 60 s.
fn deployer_output(config: &std::path::Path, database_url: Option<&str>, until: &str) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_deployer"));
    with_secrets(&mut command)
        .arg("--config")
        .arg(config)
        .env("DEPLOYER_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "debug")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match database_url {
        Some(url) => command.env("DEPLOYER_DATABASE_URL", url),
        None => command.env_remove("DEPLOYER_DATABASE_URL"),
    };
    let mut child = command.spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    for mut pipe in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0
                    || tx
                        .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                        .is_err()
                {
                    break;
                }
            }
        });
    }
    drop(tx);
    let mut output = String::new();
    let started = Instant::now();
    let mut seen_at: Option<Instant> = None;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(text) => output.push_str(&text),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        if seen_at.is_none() && output.contains(until) {
            seen_at = Some(Instant::now());
        }
        // Two seconds more once it is up: the pollers (Jenkins, the bucket) fail and say so.
        let done = seen_at.is_some_and(|at| at.elapsed() > Duration::from_secs(2));
        if done || started.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    output
}

#[test]
fn the_log_holds_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("deployer.toml");
    let store = dir.path().join("deployer.sqlite");
    std::fs::write(&config, config_toml(store.to_str().unwrap())).unwrap();

    // Up on SQLite, logging at debug, Jenkins and the bucket unreachable.
    let output = deployer_output(&config, None, "listening");
    assert!(output.contains("listening"), "{output}");
    assert_holds_no_secret("the log of a running deployer", &output);

    // A database it cannot reach: the error names the database without its password.
    let url = format!("postgres://deployer:{DB_PASSWORD}@127.0.0.1:1/deployer?sslmode=disable");
    let output = deployer_output(&config, Some(&url), "\u{0}");
    assert!(output.contains("127.0.0.1:1"), "{output}");
    assert_holds_no_secret("the log of a deployer without its database", &output);

    // A mistyped scheme: refused, the URL shown without its password.
    let url = format!("postgress://deployer:{DB_PASSWORD}@127.0.0.1:1/deployer");
    let output = deployer_output(&config, Some(&url), "\u{0}");
    assert!(output.contains("postgress://deployer:"), "{output}");
    assert_holds_no_secret("the log of a deployer given a mistyped URL", &output);
}
