//! The service layer: one method per operation, taking who asks ([`Actor`]) and typed inputs
//! (ids parsed at the edge). The REST handlers (`api/`) and the page's server functions
//! (`api/pages.rs`) are thin adapters over these methods, so both get the same checks, the same
//! errors and the same audit; a permission check belongs here, once.

mod deployments;
mod pause;
mod projects;
mod trail;

use std::sync::Arc;

use crate::catalog::Catalog;
use crate::deploy::Engine;
use crate::live::Hub;
use crate::store::Store;

pub use deployments::{DeploymentsFilter, StartRequest};
pub use pause::PauseOrder;
pub use projects::BuildsFilter;
pub use trail::AuditFilter;

/// Who is asking: a person or a script. Taken from the request in one place
/// (`api::extract::actor`); until login exists, the configured name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    name: String,
}

impl Actor {
    pub fn new(name: impl Into<String>) -> Actor {
        Actor { name: name.into() }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Every operation of the deployer, over the catalog, the engine, the store and the live hub.
pub struct Services {
    catalog: Arc<Catalog>,
    engine: Arc<Engine>,
    store: Store,
    hub: Arc<Hub>,
}

impl Services {
    pub fn new(catalog: Arc<Catalog>, engine: Arc<Engine>) -> Services {
        Services {
            store: engine.store().clone(),
            hub: engine.hub().clone(),
            catalog,
            engine,
        }
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }
}
