//! `deployctl`: the deployer from a terminal or CI, over its REST API (`/api/v1`).
//!
//! Every command is one or two requests; `--wait` and `watch` follow the server-sent event stream
//! until the deployment ends. The exit code says how it ended ([`exit`]), so a CI job can branch
//! on "refused" or "paused" without reading text. The binary (`main.rs`) only hands the process'
//! arguments and terminal to [`run`]; tests call [`run`] with their own.

mod client;
mod config;
mod follow;
mod show;

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};

pub use client::{Client, Failure};

/// The exit codes, as `deployctl --help` lists them.
pub mod exit {
    /// The command did what it was asked; a followed deployment succeeded.
    pub const SUCCEEDED: u8 = 0;
    /// A followed deployment failed (or was rolled back).
    pub const FAILED: u8 = 1;
    /// Bad usage, no URL or token, the deployer could not be reached or answered an error of its own.
    pub const USAGE: u8 = 2;
    /// The deployer refused: bad input, no right to do it, unknown name, a build it will not
    /// deploy (also a followed deployment ending `refused`), a confirmation needed.
    pub const REFUSED: u8 = 3;
    /// A followed deployment was cancelled (or its change discarded).
    pub const CANCELLED: u8 = 4;
    /// Deployments are paused there (HTTP 423).
    pub const PAUSED: u8 = 5;
    /// Busy or in conflict (HTTP 409): another deployment is active on the stack, the stack is in
    /// an operation, or the state does not allow it (already ended, already decided, nothing to
    /// promote).
    pub const BUSY: u8 = 6;
}

/// Every request `deployctl` sends: method and path under `/api/v1` (`{…}`: a segment). The
/// client checks each request against it (debug builds), and the server's tests check each is in
/// the API's OpenAPI document — so the CLI and the document agree.
pub const ENDPOINTS: &[(&str, &str)] = &[
    ("GET", "/projects"),
    ("GET", "/projects/{project}/builds"),
    ("GET", "/projects/{project}/stacks"),
    ("POST", "/projects/{project}/promote"),
    ("GET", "/projects/{project}/rollback"),
    ("POST", "/projects/{project}/preview"),
    ("GET", "/deployments"),
    ("POST", "/deployments"),
    ("GET", "/deployments/{id}"),
    ("POST", "/deployments/{id}/cancel"),
    ("POST", "/deployments/{id}/approve"),
    ("POST", "/deployments/{id}/discard"),
    ("GET", "/events"),
    ("GET", "/pause"),
    ("PUT", "/pause"),
    ("DELETE", "/pause"),
    ("GET", "/audit"),
];

/// Whether a request (its path without the query) is one of [`ENDPOINTS`].
pub fn is_endpoint(method: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path);
    let parts: Vec<&str> = path.split('/').collect();
    ENDPOINTS.iter().any(|(m, template)| {
        let expected: Vec<&str> = template.split('/').collect();
        *m == method
            && expected.len() == parts.len()
            && expected
                .iter()
                .zip(&parts)
                .all(|(e, p)| e.starts_with('{') || e == p)
    })
}

const EXIT_CODES: &str = "\
Exit codes:
  0  succeeded (a followed deployment succeeded)
  1  a followed deployment failed
  2  usage or connection error (or the deployer's own error)
  3  refused (bad input, no right, unknown name, a build it will not deploy, confirmation needed)
  4  a followed deployment was cancelled
  5  paused (HTTP 423)
  6  busy or in conflict (HTTP 409): another deployment is active there (its id is named),
     the stack is in an operation, or the state does not allow it (already ended or decided)

Configuration: --url / DEPLOYER_URL and --token / DEPLOYER_TOKEN, else `url` and `token` in
$XDG_CONFIG_HOME/deployctl/config.toml (~/.config/deployctl/config.toml).";

#[derive(Debug, Parser)]
#[command(
    name = "deployctl",
    version,
    about = "Deploy CloudFormation stacks with the deployer, from a terminal or CI",
    after_help = EXIT_CODES
)]
struct Cli {
    /// The deployer's address, e.g. https://deployer.example.com
    #[arg(long, env = "DEPLOYER_URL", global = true)]
    url: Option<String>,
    /// An API token (made on the deployer's Tokens page or with POST /api/v1/tokens)
    #[arg(long, env = "DEPLOYER_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// `json` prints the deployer's answer as it is, for scripts
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text, global = true)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The projects and the environments each deploys to
    Projects,
    /// A project's builds (deploy configs), newest first
    Builds {
        project: String,
        /// Only this branch's builds
        #[arg(long)]
        branch: Option<String>,
        /// At most this many (1-1000)
        #[arg(long)]
        limit: Option<u32>,
    },
    /// A project's stack in each environment (or one)
    Status {
        project: String,
        #[arg(value_name = "ENV")]
        environment: Option<String>,
    },
    /// Recent deployments, newest first
    Deployments {
        #[arg(long)]
        project: Option<String>,
        #[arg(long = "env", value_name = "ENV")]
        environment: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Deploy a build to an environment
    Deploy {
        project: String,
        #[arg(value_name = "ENV")]
        environment: String,
        build: String,
        /// Follow the deployment until it ends; the exit code says how
        #[arg(long)]
        wait: bool,
        /// The stack's first create failed: delete it and create it again from this build
        #[arg(long)]
        recreate: bool,
    },
    /// Deploy to ENV the build the environment before it runs
    Promote {
        project: String,
        #[arg(value_name = "ENV")]
        environment: String,
        #[arg(long)]
        wait: bool,
    },
    /// Deploy the build deployed before the current one (or --build), after its verdict
    Rollback {
        project: String,
        #[arg(value_name = "ENV")]
        environment: String,
        /// Roll back to this build instead
        #[arg(long)]
        build: Option<String>,
        /// Deploy even when the verdict has warnings
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        wait: bool,
    },
    /// What deploying a build would change, without deploying
    Preview {
        project: String,
        #[arg(value_name = "ENV")]
        environment: String,
        build: String,
    },
    /// Cancel a deployment
    Cancel {
        id: String,
        /// Cancelling a stack's first create deletes it: say you know
        #[arg(long)]
        confirm_delete: bool,
        #[arg(long)]
        wait: bool,
    },
    /// Approve a deployment waiting in a protected environment
    Approve {
        id: String,
        #[arg(long)]
        wait: bool,
    },
    /// Discard a deployment waiting in a protected environment
    Discard { id: String },
    /// Pause deployments (all environments, or one)
    Pause {
        #[arg(long)]
        reason: String,
        #[arg(long = "env", value_name = "ENV")]
        environment: Option<String>,
        /// Also cancel the deployments in flight there
        #[arg(long)]
        cancel_in_flight: bool,
    },
    /// Lift the pause (all of it, or one environment's)
    Resume {
        #[arg(long = "env", value_name = "ENV")]
        environment: Option<String>,
    },
    /// The pause: whether deployments are paused, where, by whom and why
    Paused,
    /// The audit trail, newest first
    Audit {
        #[arg(long)]
        project: Option<String>,
        #[arg(long = "env", value_name = "ENV")]
        environment: Option<String>,
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Follow a deployment until it ends; the exit code says how
    Watch { id: String },
}

/// Where a run writes: the process' stdout and stderr, or buffers (tests).
pub struct Console {
    out: Box<dyn Write + Send>,
    err: Box<dyn Write + Send>,
    /// Draw progress bars (stderr is a terminal), or write plain lines.
    tty: bool,
}

impl Console {
    pub fn std() -> Console {
        Console {
            out: Box::new(std::io::stdout()),
            err: Box::new(std::io::stderr()),
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// A console writing into buffers: (console, stdout, stderr).
    pub fn captured() -> (Console, Captured, Captured) {
        let out = Captured::default();
        let err = Captured::default();
        let console = Console {
            out: Box::new(out.clone()),
            err: Box::new(err.clone()),
            tty: false,
        };
        (console, out, err)
    }

    fn out(&mut self, text: impl AsRef<str>) {
        let _ = writeln!(self.out, "{}", text.as_ref());
        let _ = self.out.flush();
    }

    fn err(&mut self, text: impl AsRef<str>) {
        let _ = writeln!(self.err, "{}", text.as_ref());
        let _ = self.err.flush();
    }
}

/// A shared buffer a [`Console`] writes into.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs one command line (`args[0]` is the program's name) and returns its exit code.
pub async fn run<I, T>(args: I, console: &mut Console) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let text = e.render().to_string();
            return if e.use_stderr() {
                console.err(text.trim_end());
                exit::USAGE
            } else {
                console.out(text.trim_end());
                exit::SUCCEEDED
            };
        }
    };
    match execute(cli, console).await {
        Ok(code) => code,
        Err(failure) => {
            console.err(format!("deployctl: {}", failure.message));
            failure.exit
        }
    }
}

async fn execute(cli: Cli, console: &mut Console) -> Result<u8, Failure> {
    let settings = config::Settings::resolve(cli.url, cli.token)?;
    let client = Client::new(&settings)?;
    let json = cli.output == Output::Json;
    // Reads print the answer (as JSON, or as text); writes print what they started.
    let print = |console: &mut Console, value: &Value, text: fn(&Value) -> String| {
        if json {
            console.out(serde_json::to_string_pretty(value).unwrap_or_default());
        } else {
            console.out(text(value).trim_end());
        }
    };
    match cli.command {
        Command::Projects => {
            let projects = client.get("/projects", &[]).await?;
            print(console, &projects, show::projects);
        }
        Command::Builds {
            project,
            branch,
            limit,
        } => {
            let query = query(&[("branch", branch), ("limit", limit.map(|l| l.to_string()))]);
            let builds = client
                .get(&format!("/projects/{}/builds", seg(&project)), &query)
                .await?;
            print(console, &builds, show::builds);
        }
        Command::Status {
            project,
            environment,
        } => {
            let mut cards = client
                .get(&format!("/projects/{}/stacks", seg(&project)), &[])
                .await?;
            if let Some(env) = &environment {
                let one = cards
                    .as_array()
                    .and_then(|cards| cards.iter().find(|c| text(c, "environment") == *env))
                    .cloned()
                    .ok_or_else(|| {
                        Failure::refused(format!("{project} does not deploy to {env}"))
                    })?;
                cards = json!([one]);
            }
            print(console, &cards, show::stacks);
        }
        Command::Deployments {
            project,
            environment,
            limit,
        } => {
            let query = query(&[
                ("project", project),
                ("environment", environment),
                ("limit", limit.map(|l| l.to_string())),
            ]);
            let list = client.get("/deployments", &query).await?;
            print(console, &list, show::deployments);
        }
        Command::Deploy {
            project,
            environment,
            build,
            wait,
            recreate,
        } => {
            let mut body = json!({"project": project, "environment": environment, "build": build});
            if recreate {
                body["recreate"] = json!(true);
            }
            let deployment = client.send("POST", "/deployments", Some(&body)).await?;
            return started(&client, console, &deployment, wait, json).await;
        }
        Command::Promote {
            project,
            environment,
            wait,
        } => {
            let deployment = client
                .send(
                    "POST",
                    &format!("/projects/{}/promote", seg(&project)),
                    Some(&json!({"environment": environment})),
                )
                .await?;
            return started(&client, console, &deployment, wait, json).await;
        }
        Command::Rollback {
            project,
            environment,
            build,
            yes,
            wait,
        } => {
            let query = query(&[("environment", Some(environment.clone())), ("build", build)]);
            let verdict = client
                .get(&format!("/projects/{}/rollback", seg(&project)), &query)
                .await?;
            let target = text(&verdict, "build");
            let warnings = verdict["warnings"].as_array().cloned().unwrap_or_default();
            if !json || !warnings.is_empty() {
                console.err(show::verdict(&verdict).trim_end());
            }
            if !warnings.is_empty() && !yes {
                return Err(Failure::refused(format!(
                    "rolling {project} in {environment} back to {target} has {} warning(s); \
                     read them above and pass --yes to deploy it anyway",
                    warnings.len()
                )));
            }
            let body = json!({"project": project, "environment": environment, "build": target});
            let deployment = client.send("POST", "/deployments", Some(&body)).await?;
            return started(&client, console, &deployment, wait, json).await;
        }
        Command::Preview {
            project,
            environment,
            build,
        } => {
            let body = json!({"environment": environment, "build": build});
            let changes = client
                .send(
                    "POST",
                    &format!("/projects/{}/preview", seg(&project)),
                    Some(&body),
                )
                .await?;
            print(console, &changes, show::changes);
        }
        Command::Cancel {
            id,
            confirm_delete,
            wait,
        } => {
            let body = json!({"confirm_delete": confirm_delete});
            let deployment = client
                .send(
                    "POST",
                    &format!("/deployments/{}/cancel", seg(&id)),
                    Some(&body),
                )
                .await?;
            return started(&client, console, &deployment, wait, json).await;
        }
        Command::Approve { id, wait } => {
            let deployment = client
                .send("POST", &format!("/deployments/{}/approve", seg(&id)), None)
                .await?;
            return started(&client, console, &deployment, wait, json).await;
        }
        Command::Discard { id } => {
            let deployment = client
                .send("POST", &format!("/deployments/{}/discard", seg(&id)), None)
                .await?;
            print(console, &deployment, show::deployment_line);
        }
        Command::Pause {
            reason,
            environment,
            cancel_in_flight,
        } => {
            let mut body = json!({"reason": reason, "cancel_in_flight": cancel_in_flight});
            if let Some(env) = environment {
                body["environment"] = json!(env);
            }
            let status = client.send("PUT", "/pause", Some(&body)).await?;
            print(console, &status, show::pause);
        }
        Command::Resume { environment } => {
            let path = match &environment {
                Some(env) => format!("/pause?environment={}", seg(env)),
                None => "/pause".to_owned(),
            };
            let status = client.send("DELETE", &path, None).await?;
            print(console, &status, show::pause);
        }
        Command::Paused => {
            let status = client.get("/pause", &[]).await?;
            print(console, &status, show::pause);
        }
        Command::Audit {
            project,
            environment,
            action,
            actor,
            limit,
        } => {
            let query = query(&[
                ("project", project),
                ("environment", environment),
                ("action", action),
                ("actor", actor),
                ("limit", limit.map(|l| l.to_string())),
            ]);
            let entries = client.get("/audit", &query).await?;
            print(console, &entries, show::audit);
        }
        Command::Watch { id } => {
            let ended = follow::follow(&client, console, &id).await?;
            return Ok(finish(console, &ended, json));
        }
    }
    Ok(exit::SUCCEEDED)
}

/// A deployment was started (or cancelled, or approved): say so, and follow it with `--wait`.
async fn started(
    client: &Client,
    console: &mut Console,
    deployment: &Value,
    wait: bool,
    json: bool,
) -> Result<u8, Failure> {
    if !wait {
        if json {
            console.out(serde_json::to_string_pretty(deployment).unwrap_or_default());
        } else {
            console.out(show::deployment_line(deployment));
        }
        return Ok(exit::SUCCEEDED);
    }
    if !json {
        console.err(show::deployment_line(deployment));
    }
    let ended = follow::follow(client, console, &text(deployment, "id")).await?;
    Ok(finish(console, &ended, json))
}

/// The followed deployment ended: print it, and answer the exit code its status means.
fn finish(console: &mut Console, deployment: &Value, json: bool) -> u8 {
    if json {
        console.out(serde_json::to_string_pretty(deployment).unwrap_or_default());
    } else {
        console.out(show::ended(deployment));
    }
    status_exit(&text(deployment, "status"))
}

/// The exit code of a deployment that ended with this status.
pub fn status_exit(status: &str) -> u8 {
    match status {
        "succeeded" => exit::SUCCEEDED,
        "refused" => exit::REFUSED,
        "cancelled" => exit::CANCELLED,
        _ => exit::FAILED,
    }
}

/// A field of a JSON object as text ("" when missing).
fn text(value: &Value, field: &str) -> String {
    match &value[field] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A path segment, percent-encoded.
fn seg(text: &str) -> String {
    client::encode(text)
}

fn query(pairs: &[(&'static str, Option<String>)]) -> Vec<(&'static str, String)> {
    pairs
        .iter()
        .filter_map(|(k, v)| v.clone().map(|v| (*k, v)))
        .collect()
}
