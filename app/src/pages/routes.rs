//! The pages other than the overview, each loaded by the browser when it is first visited: with
//! `cargo leptos build --split` each view is its own wasm file, so the first page load carries
//! the overview and what every page shares, not every page's code. On the server (and in a
//! build without `--split`) they render as any page does.

use leptos::prelude::*;
use leptos_router::{LazyRoute, lazy_route};

use super::{
    audit::AuditPage, deployment::DeploymentPage, project::ProjectPage, promotion::PromotionPage,
    tokens::TokensPage, webhooks::WebhooksPage,
};

/// `/projects/:project/:env`.
pub struct ProjectRoute;

#[lazy_route]
impl LazyRoute for ProjectRoute {
    fn data() -> Self {
        ProjectRoute
    }

    fn view(_this: Self) -> AnyView {
        view! { <ProjectPage/> <crate::MarkLive/> }.into_any()
    }
}

/// `/deployments/:id`.
pub struct DeploymentRoute;

#[lazy_route]
impl LazyRoute for DeploymentRoute {
    fn data() -> Self {
        DeploymentRoute
    }

    fn view(_this: Self) -> AnyView {
        view! { <DeploymentPage/> <crate::MarkLive/> }.into_any()
    }
}

/// `/promotion`.
pub struct PromotionRoute;

#[lazy_route]
impl LazyRoute for PromotionRoute {
    fn data() -> Self {
        PromotionRoute
    }

    fn view(_this: Self) -> AnyView {
        view! { <PromotionPage/> <crate::MarkLive/> }.into_any()
    }
}

/// `/audit`.
pub struct AuditRoute;

#[lazy_route]
impl LazyRoute for AuditRoute {
    fn data() -> Self {
        AuditRoute
    }

    fn view(_this: Self) -> AnyView {
        view! { <AuditPage/> <crate::MarkLive/> }.into_any()
    }
}

/// `/tokens`.
pub struct TokensRoute;

#[lazy_route]
impl LazyRoute for TokensRoute {
    fn data() -> Self {
        TokensRoute
    }

    fn view(_this: Self) -> AnyView {
        view! { <TokensPage/> <crate::MarkLive/> }.into_any()
    }
}

/// `/webhooks`.
pub struct WebhooksRoute;

#[lazy_route]
impl LazyRoute for WebhooksRoute {
    fn data() -> Self {
        WebhooksRoute
    }

    fn view(_this: Self) -> AnyView {
        view! { <WebhooksPage/> <crate::MarkLive/> }.into_any()
    }
}
