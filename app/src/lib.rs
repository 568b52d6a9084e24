//! The deployer's shared crate: wire types, Leptos pages and components, and server functions.
//! Server-only code sits behind the `ssr` feature so the AWS SDK never reaches the wasm build.
#![recursion_limit = "256"]

pub mod api;
pub mod components;
pub mod model;
pub mod pages;
pub mod time;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    components::{Route, Router, Routes},
    path,
};

use crate::components::header::Header;
use crate::pages::{home::HomePage, not_found::NotFound, project::ProjectPage};

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The environments and projects from the server's config, loaded once per page.
pub type OverviewResource = Resource<Result<model::Overview, ServerFnError>>;

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let overview: OverviewResource = Resource::new(|| (), |()| api::get_overview());
    provide_context(overview);

    view! {
        <Stylesheet id="leptos" href="/pkg/deployer.css"/>
        <Title text="Deployer"/>
        <Router>
            <Header/>
            <Routes fallback=NotFound>
                <Route path=path!("/") view=HomePage/>
                <Route path=path!("/projects/:project") view=HomePage/>
                <Route path=path!("/projects/:project/:env") view=ProjectPage/>
            </Routes>
        </Router>
    }
}
