//! The service layer: one method per operation, taking who asks ([`Actor`]) and typed inputs
//! (ids parsed at the edge). The REST handlers (`api/`) and the page's server functions
//! (`api/pages.rs`) are thin adapters over these methods, so both get the same checks, the same
//! errors and the same audit; a permission check belongs here, once.

mod audit;
mod deployments;
mod jenkins;
mod limits;
mod pause;
mod projects;
mod promotion;
mod recover;
pub mod running_config;
mod tokens;
mod webhooks;

use std::sync::Arc;

use app::auth::{Me, Via};

use crate::catalog::Catalog;
use crate::deploy::Engine;
use crate::error::AppError;
use crate::live::Hub;
use crate::store::Store;

pub use audit::AuditFilter;
pub use deployments::{DeploymentsFilter, StartRequest};
pub use pause::PauseOrder;
pub use projects::BuildsFilter;

pub use crate::person::Person;

/// Who is asking: a person (session), a script (API token) or the bootstrap token, with the
/// rights of their roles. Made from the request in one place (`auth::authenticate`, read by
/// `api::extract::actor`); every service method checks the right it needs here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    name: String,
    person: Person,
    display_name: String,
    via: Via,
    roles: Vec<String>,
    admin: bool,
    /// Environments this actor may deploy to, in promotion order (all of them for an admin).
    deploy: Vec<String>,
}

impl Actor {
    pub fn new(
        name: impl Into<String>,
        display_name: impl Into<String>,
        person: Person,
        via: Via,
        roles: Vec<String>,
        admin: bool,
        deploy: Vec<String>,
    ) -> Actor {
        Actor {
            name: name.into(),
            person,
            display_name: display_name.into(),
            via,
            roles,
            admin,
            deploy,
        }
    }

    /// The name the audit log records.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The person behind this call (for a token: who made it).
    pub fn person(&self) -> &Person {
        &self.person
    }

    pub fn via(&self) -> Via {
        self.via
    }

    pub fn is_admin(&self) -> bool {
        self.admin
    }

    pub fn may_deploy(&self, environment: &str) -> bool {
        self.admin || self.deploy.iter().any(|e| e == environment)
    }

    /// The caller as the page and `GET /api/v1/me` show it.
    pub fn me(&self) -> Me {
        Me {
            name: self.name.clone(),
            display_name: self.display_name.clone(),
            person: self.person.name.clone(),
            via: self.via,
            roles: self.roles.clone(),
            admin: self.admin,
            deploy: self.deploy.clone(),
            can_pause: self.may_pause(),
            can_resume: self.admin,
        }
    }

    fn who(&self) -> String {
        let roles = if self.roles.is_empty() {
            "no role".to_owned()
        } else {
            self.roles.join(", ")
        };
        format!("{} ({roles})", self.name)
    }

    /// Deploying, cancelling and rolling back in an environment.
    pub fn require_deploy(&self, environment: &str) -> Result<(), AppError> {
        if self.may_deploy(environment) {
            return Ok(());
        }
        let can = if self.deploy.is_empty() {
            "may not deploy anywhere".to_owned()
        } else {
            format!("may deploy to {} only", self.deploy.join(", "))
        };
        Err(AppError::Forbidden(format!(
            "this needs the right to deploy to {environment}; {} {can}",
            self.who()
        )))
    }

    /// Pausing is the emergency brake: anyone who may deploy somewhere may pull it.
    pub fn may_pause(&self) -> bool {
        self.admin || !self.deploy.is_empty()
    }

    pub fn require_pause(&self) -> Result<(), AppError> {
        if self.may_pause() {
            return Ok(());
        }
        Err(AppError::Forbidden(format!(
            "pausing deployments needs the right to deploy somewhere; {} may only look",
            self.who()
        )))
    }

    /// Resuming, and managing API tokens: admins only.
    pub fn require_admin(&self, what: &str) -> Result<(), AppError> {
        if self.admin {
            return Ok(());
        }
        Err(AppError::Forbidden(format!(
            "{what} needs the admin role; {} is not an admin",
            self.who()
        )))
    }
}

/// Every operation of the deployer, over the catalog, the engine, the store and the live hub.
pub struct Services {
    catalog: Arc<Catalog>,
    engine: Arc<Engine>,
    store: Store,
    hub: Arc<Hub>,
    jenkins: Arc<crate::jenkins::Panel>,
    notifier: Arc<crate::notify::Notifier>,
    reloader: Arc<crate::reload::Reloader>,
    /// Previews make change sets in the environment's account: a few per person.
    previews: limits::PerPerson,
}

/// Previews one person may run at once, and within [`PREVIEW_WINDOW`].
const PREVIEWS_AT_ONCE: usize = 2;
const PREVIEWS_PER_WINDOW: usize = 20;
const PREVIEW_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

impl Services {
    pub fn new(
        catalog: Arc<Catalog>,
        engine: Arc<Engine>,
        jenkins: Arc<crate::jenkins::Panel>,
        notifier: Arc<crate::notify::Notifier>,
        reloader: Arc<crate::reload::Reloader>,
    ) -> Services {
        Services {
            jenkins,
            notifier,
            reloader,
            store: engine.store().clone(),
            hub: engine.hub().clone(),
            catalog,
            engine,
            previews: limits::PerPerson::new(
                "previews",
                PREVIEWS_AT_ONCE,
                PREVIEWS_PER_WINDOW,
                PREVIEW_WINDOW,
            ),
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

    /// Puts a changed config file in place.
    pub fn reloader(&self) -> &Arc<crate::reload::Reloader> {
        &self.reloader
    }
}
