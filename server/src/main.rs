//! `deployer --config <file>`: reads the config, connects to AWS, serves until SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use deployer::{aws::AwsClients, config::Config};

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,aws_config=warn,aws_smithy_runtime=warn".into());
    // `DEPLOYER_LOG_FORMAT=json`: one JSON object per line (spans included), for log pipelines.
    match std::env::var("DEPLOYER_LOG_FORMAT").as_deref() {
        Ok("json") => tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_env_filter(filter)
            .init(),
        Ok("text") | Err(_) => tracing_subscriber::fmt().with_env_filter(filter).init(),
        Ok(other) => {
            eprintln!("deployer: DEPLOYER_LOG_FORMAT {other:?} is not text or json");
            return ExitCode::from(2);
        }
    }

    // The API's description, without a config or AWS (for client generators and fuzzers).
    if std::env::args().skip(1).any(|a| a == "--openapi") {
        println!(
            "{}",
            serde_json::to_string_pretty(&deployer::api::doc::document()).unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    }
    let Some(path) = config_path() else {
        eprintln!("deployer: no config file; pass --config <file> or set DEPLOYER_CONFIG");
        return ExitCode::from(2);
    };
    let mut config = match Config::load(&path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("deployer: {e}");
            return ExitCode::from(2);
        }
    };
    if let Ok(addr) = std::env::var("DEPLOYER_ADDR") {
        match addr.parse() {
            Ok(addr) => config.listen = addr,
            Err(_) => {
                eprintln!("deployer: DEPLOYER_ADDR {addr:?} is not an address like 127.0.0.1:3000");
                return ExitCode::from(2);
            }
        }
    }

    if let Err(e) = config.secrets_from_env() {
        eprintln!("deployer: {e}");
        return ExitCode::from(2);
    }
    if let Some(user) = &config.auth.dev_user {
        if !config.listen.ip().is_loopback() {
            eprintln!(
                "deployer: auth.dev_user is refused unless the deployer listens on a loopback address (DEPLOYER_ADDR is {})",
                config.listen
            );
            return ExitCode::from(2);
        }
        eprintln!(
            "deployer: DEVELOPMENT MODE — anyone reaching {} is the admin {user:?}. Never use auth.dev_user outside one laptop.",
            config.listen
        );
    }
    let addr = config.listen;
    let aws = AwsClients::connect(&config, None).await;
    let state = match deployer::state(config, aws).await {
        Ok(state) => state,
        Err(e) => {
            eprintln!("deployer: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    // The file is watched from now on, and re-read on SIGHUP: a valid change applies at once.
    let reloader = state.services.reloader().clone();
    reloader.watch_file(path);
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            let _ = reloader.reload("SIGHUP").await;
        }
    });
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("deployer: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!("deployer listening on http://{addr}");
    if let Err(e) = deployer::serve(listener, state, shutdown()).await {
        eprintln!("deployer: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn config_path() -> Option<PathBuf> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("DEPLOYER_CONFIG").map(PathBuf::from)
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down");
}
