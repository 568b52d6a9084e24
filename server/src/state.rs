//! The one shared state of the axum app: the services every way in calls, who is asking, and the Leptos
//! options the pages are rendered with.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;

use crate::service::Services;

#[derive(Clone)]
pub struct AppState {
    pub services: Arc<Services>,
    /// Who a request comes from (the guard asks it for every request).
    pub auth: Arc<crate::auth::Authenticator>,
    pub leptos_options: LeptosOptions,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

impl AppState {
    /// The engine (tests stop and restart it).
    pub fn engine(&self) -> &Arc<crate::deploy::Engine> {
        self.services.engine()
    }

    /// The catalog (tests forget cached listings and cards).
    pub fn catalog(&self) -> &Arc<crate::catalog::Catalog> {
        self.services.catalog()
    }
}
