//! The deployer's server. Requests enter at `api/` (REST and the page's server functions), call
//! one method of `service/`, which looks things up in `catalog` and drives `deploy/` (the
//! engine); AWS is reached only through `aws::cfn` (CloudFormation) and `artifacts` (S3), the
//! database only through `store/`, and events go out through `live`.

pub mod api;
pub mod artifacts;
pub mod auth;
pub mod aws;
pub mod backoff;
pub mod build_id;
pub mod builds_watch;
pub mod cache;
pub mod catalog;
pub mod config;
pub mod deploy;
pub mod error;
pub mod ids;
pub mod jenkins;
pub mod known_exports;
pub mod live;
pub mod live_relay;
pub mod metrics;
pub mod notify;
pub mod person;
pub mod readiness;
pub mod reload;
pub mod secret;
pub mod service;
pub mod stack_events;
pub mod stacks;
pub mod state;
pub mod store;

use std::collections::HashMap;
use std::sync::Arc;

use app::api::ssr::SharedBackend;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos_axum::{AxumRouteListing, LeptosRoutes, generate_route_list};

pub use crate::state::AppState;

/// Where the built site (wasm, js, css) is: `LEPTOS_SITE_ROOT`, else cargo-leptos's default.
pub fn leptos_options(config: &config::Config) -> LeptosOptions {
    let site_root = std::env::var("LEPTOS_SITE_ROOT").unwrap_or_else(|_| "target/site".to_owned());
    LeptosOptions::builder()
        .output_name("deployer")
        .site_root(site_root)
        .site_pkg_dir("pkg")
        .site_addr(config.listen)
        .env(leptos::config::Env::PROD)
        .build()
}

/// The whole HTTP app: REST API, server functions, pages and static files.
pub fn router(state: AppState) -> Router {
    let backend: SharedBackend = Arc::new(api::Pages::new(state.clone()));
    let routes = page_routes();
    let mut app = Router::new();
    if state.catalog().config().metrics_listen.is_none() {
        app = app.merge(metrics_routes());
    }
    let app = app
        .nest("/api/v1", api::routes())
        .merge(api::login::routes())
        .leptos_routes_with_context(
            &state,
            routes,
            move || leptos::prelude::provide_context(backend.clone()),
            {
                let options = state.leptos_options.clone();
                move || app::shell(options.clone())
            },
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(
            app::shell,
        ))
        // Every request, the static files included, passes the guard: known host, known caller,
        // writes from the deployer's own page (`api::guard`).
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::guard,
        ))
        .with_state(state);
    harden(app)
}

/// The pages' routes, from the app's `<Routes>`: worked out once per process. Working them out
/// renders the whole app with resource loading suppressed, and Leptos suppresses it for the whole
/// process (`leptos_server`'s `SuppressResourceLoad`, one global flag): a resource of a page being
/// rendered meanwhile, on another router of the same process, waits forever and so does its page
/// (leptos-rs/leptos#4773; seen as an `/audit` render that never ended, about one run in thirty,
/// while another test built its router). Worked out before the first router exists, nothing
/// renders meanwhile.
pub fn page_routes() -> Vec<AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<AxumRouteListing>> = std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(app::App)).clone()
}

/// `GET /metrics` (Prometheus text), on the main address or on `metrics_listen`.
pub fn metrics_routes() -> Router<AppState> {
    Router::new().route("/metrics", axum::routing::get(api::metrics))
}

/// The layers every request passes: bounded bodies, and panics answered as JSON 500s.
pub fn harden(app: Router) -> Router {
    app
        // Bodies are small JSON or form posts; anything bigger is refused before it is read.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            MAX_BODY_BYTES,
        ))
        .layer(axum::middleware::map_response(error::too_large_as_json))
        // Server functions answer with the status of their error, like the REST API.
        .layer(axum::middleware::map_response(error::server_fn_status))
        // No sniffing, no framing, a content security policy on every answer.
        .layer(axum::middleware::from_fn(api::security_headers))
        // A bug must answer a 500 in the JSON error shape, never a dropped connection.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            error::panic_response,
        ))
        // Outermost: every request's logs carry its id, and so does its answer.
        .layer(axum::middleware::from_fn(api::request_id))
}

/// The largest request body accepted, REST and server functions alike.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Serves until `signal` resolves, then shuts down gracefully: requests in progress finish, and
/// event streams are ended (they never end by themselves; browsers reconnect, to the next
/// deployer). Deployments keep running in AWS; the next start re-attaches to them.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    signal: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let hub = state.services.hub().clone();
    let engine = state.engine().clone();
    if let Some(addr) = state.catalog().config().metrics_listen {
        let metrics = tokio::net::TcpListener::bind(addr).await?;
        tracing::info!("metrics on http://{addr}/metrics");
        let app = metrics_routes().with_state(state.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(metrics, app.into_make_service()).await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
    }
    // `into_make_service`: every connection shares the one router. Handing `axum::serve` the
    // router itself makes it copy the whole router (every route with its layers) for each
    // connection — 100 KB and more per open event stream, measured with heaptrack.
    axum::serve(listener, router(state).into_make_service())
        .with_graceful_shutdown(async move {
            signal.await;
            // The deployments this process drives go to the other replicas (or to this one's
            // successor) at once; the event streams end so that browsers reconnect elsewhere.
            engine.hand_over().await;
            hub.close();
        })
        .await
}

/// Builds the state from a checked config and connected clients: opens the store, starts the
/// engine and re-attaches to deployments that were in flight.
pub async fn state(config: config::Config, aws: aws::AwsClients) -> anyhow::Result<AppState> {
    let cfn = catalog::Clients::from_aws(&config, &aws).cfn;
    state_with_cloudformation(config, aws, cfn).await
}

/// As [`state`], with the CloudFormation of each environment given (tests script a fake).
pub async fn state_with_cloudformation(
    config: config::Config,
    aws: aws::AwsClients,
    cfn: HashMap<String, Arc<dyn aws::cfn::CloudFormation>>,
) -> anyhow::Result<AppState> {
    use anyhow::Context;
    let leptos_options = leptos_options(&config);
    let store = store::Store::connect(&config.store)
        .await
        .with_context(|| format!("cannot open the store {}", config.store))?;
    let settings = deploy::Settings::from_config(&config);
    let sqs = aws
        .env(&config.artifacts.environment)
        .map(|clients| clients.sqs.clone());
    let clients = aws.clone();
    let catalog = Arc::new(catalog::Catalog::new(config, aws, cfn, store.clone())?);
    let auth = Arc::new(auth::Authenticator::new(catalog.clone(), store.clone()));
    let hub = Arc::new(live::Hub::new());
    // Several replicas share one database: their viewers get the same numbered events from it.
    if let config::StoreLocation::Postgres(url) = &catalog.config().store {
        live_relay::spawn(
            hub.clone(),
            store.clone(),
            url,
            catalog.stack_signals.clone(),
        )
        .await
        .context("cannot listen for the replicas' live events")?;
    }
    let shares_events = store.shares_live_events();
    // Webhooks: announced through the store's outbox, sent by this process's sender.
    let notifier = Arc::new(notify::Notifier::new(notify::Routes {
        hooks: catalog.config().webhooks.clone(),
        public_url: catalog.config().auth.public_url.clone(),
    }));
    store.set_announcer(notifier.clone());
    notify::spawn(store.clone(), notifier.clone());
    let engine = deploy::Engine::new(catalog.clone(), store.clone(), hub.clone(), settings);
    // New deploy configs, found by one watcher and (when configured) Jenkins' one poller.
    let watch = builds_watch::BuildsWatch::new(catalog.clone(), hub.clone());
    watch.spawn(catalog.config().artifacts.watch_interval);
    if shares_events {
        watch.spawn_follower();
    }
    if let Some(queue_url) = &catalog.config().artifacts.notifications_queue_url {
        let sqs = sqs.ok_or_else(|| anyhow::anyhow!("no clients for the artifacts environment"))?;
        watch.spawn_notifications(sqs, queue_url.clone());
    }
    // Puts a changed config file in place (`reload`; the binary names the file).
    let reloader = reload::Reloader::new(
        catalog.clone(),
        engine.clone(),
        notifier.clone(),
        hub.clone(),
        clients,
    );
    // Stack events pushed per environment (CloudFormation → SNS → SQS): a deployment hears its
    // stack change as it happens; the listener stops with the engine.
    reloader.start_listeners();
    let panel = jenkins::Panel::new(catalog.config().jenkins.clone());
    jenkins::spawn(panel.clone(), watch, hub);
    let resumed = engine.resume().await?;
    engine.spawn_lease_keeper();
    // After the resume: the change sets of the deployments picked up again are theirs.
    deploy::janitor::spawn(catalog.clone(), engine.store().clone());
    if resumed > 0 {
        tracing::info!(resumed, "re-attached to deployments that were in flight");
    }
    Ok(AppState {
        services: Arc::new(service::Services::new(
            catalog, engine, panel, notifier, reloader,
        )),
        auth,
        leptos_options,
    })
}
