//! The one shared state of the axum app.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;

use crate::deployer::Deployer;

#[derive(Clone)]
pub struct AppState {
    pub deployer: Arc<Deployer>,
    pub leptos_options: LeptosOptions,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
