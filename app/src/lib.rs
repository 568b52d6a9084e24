//! The deployer's shared crate: wire types, Leptos pages and components, and server functions.
//! Server-only code sits behind the `ssr` feature so the AWS SDK never reaches the wasm build.
#![recursion_limit = "256"]

pub mod api;
// The wire types, where the page has always found them (`crate::model`, `app::deployment`, …).
pub use wire::{auth, deployment, jenkins, model, pause, time};
pub mod components;
pub mod error;
pub mod live;
pub mod pages;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    Lazy, SsrMode,
    components::{Route, Router, Routes},
    path,
};

use crate::components::header::Header;
use crate::components::pause::PauseBanner;
use crate::pages::{
    home::HomePage,
    not_found::NotFound,
    routes::{
        AuditRoute, DeploymentRoute, ProjectRoute, PromotionRoute, TokensRoute, WebhooksRoute,
    },
};

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    content_security_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href=FAVICON/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The page's content security policy, sent as a header: scripts only from the deployer and the
/// inline hydration scripts carrying this response's nonce, the wasm module, connections (server
/// functions, the event stream) to the deployer only, never framed.
#[cfg(feature = "ssr")]
fn content_security_policy() {
    let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(value) = http::HeaderValue::from_str(&policy) {
        response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}

/// The tab icon: an arrow up (a deploy) on the accent colour, inline so it needs no file.
const FAVICON: &str = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Crect width='16' height='16' rx='3' fill='%232f6fde'/%3E%3Cpath d='M8 3l4 5H9v5H7V8H4z' fill='white'/%3E%3C/svg%3E";

/// The pause as the page knows it (`None` while loading).
pub type PauseSignal = Signal<Option<pause::PauseStatus>>;

/// The environments and projects from the server's config, loaded once per page.
pub type OverviewResource = api::Loaded<Result<model::Overview, error::ErrorBody>>;

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let live = live::Live::new();
    provide_context(live);
    provide_context(components::dialog::Asker::new());
    // Read again when the projects change (pushed as `event: projects`): no reload.
    let overview: OverviewResource = crate::api::load(
        move || live.version(live::PROJECTS),
        |_| api::get_overview(),
    );
    provide_context(overview);
    // The pause: from the page's first load, then as the server pushes it.
    let pause_at_load = crate::api::load(|| (), |()| api::get_pause());
    let pause: PauseSignal = Signal::derive(move || {
        live.pause
            .get()
            .or_else(|| pause_at_load.get().and_then(Result::ok))
    });
    provide_context(pause);
    // Effects run only in the browser: the live updates start once the app has hydrated.
    Effect::new(move |_| live::connect(live));

    view! {
        <Stylesheet id="leptos" href="/pkg/deployer.css"/>
        <Title text="Deployer"/>
        <Router>
            <Header/>
            <PauseBanner/>
            <Routes fallback=NotFound>
                // Async so that the server answers these with a real redirect.
                <Route path=path!("/") view=|| view! { <HomePage/> <MarkLive/> } ssr=SsrMode::Async/>
                <Route path=path!("/projects/:project") view=|| view! { <HomePage/> <MarkLive/> } ssr=SsrMode::Async/>
                // Each loaded when first visited (its own wasm file).
                <Route path=path!("/projects/:project/:env") view={Lazy::<ProjectRoute>::new()}/>
                <Route path=path!("/deployments/:id") view={Lazy::<DeploymentRoute>::new()}/>
                <Route path=path!("/promotion") view={Lazy::<PromotionRoute>::new()}/>
                // Async: its filters' options (environments, projects) come from a resource, and
                // a shared link shows them chosen, even before the page is live.
                <Route path=path!("/audit") view={Lazy::<AuditRoute>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/tokens") view={Lazy::<TokensRoute>::new()}/>
                <Route path=path!("/webhooks") view={Lazy::<WebhooksRoute>::new()}/>
            </Routes>
            <components::dialog::QuestionDialog/>
            // Live updates, announced politely (a deployment's progress, its outcome).
            <div class="sr-only" role="status" aria-live="polite" aria-atomic="true" id="announcer">
                {move || live.announcement.get()}
            </div>
        </Router>
    }
}

/// Marks the page as live (`<body data-hydrated="true">`), for people debugging and for the
/// browser tests, which must not act before hydration. Rendered at the end of every route's view:
/// a lazy route's own code is fetched apart and hydrates after the app around it (and may after
/// the document's `load`), so only the route can say when it is live. Also waits for the whole
/// streamed document (each card's part arrives on its own), so nothing acts on a card still
/// being filled in.
#[component]
pub fn MarkLive() -> impl IntoView {
    Effect::new(move |_| {
        let mark = || {
            if let Some(body) = document().body() {
                let _ = body.set_attribute("data-hydrated", "true");
            }
        };
        if document().ready_state() == "complete" {
            mark();
        } else {
            let handle = window_event_listener(leptos::ev::load, move |_| mark());
            on_cleanup(move || handle.remove());
        }
    });
}

/// Who is looking and what they may do, from the page's overview (`None` while it loads).
pub fn use_me() -> Signal<Option<auth::Me>> {
    let overview = expect_context::<OverviewResource>();
    Signal::derive(move || overview.get().and_then(Result::ok).map(|o| o.me))
}

/// Sets the HTTP status of the server-rendered answer; nothing in the browser.
pub fn set_http_status(code: u16) {
    #[cfg(feature = "ssr")]
    if let (Some(response), Ok(status)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        http::StatusCode::from_u16(code),
    ) {
        response.set_status(status);
    }
    #[cfg(not(feature = "ssr"))]
    let _ = code;
}
