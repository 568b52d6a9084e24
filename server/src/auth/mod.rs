//! Who is asking, decided once per request: an API token (`Authorization: Bearer …`), the
//! bootstrap token, or a person's session cookie (after single sign-on, `api/login.rs`). The
//! guard (`api/guard.rs`) runs before every route and server function: it refuses unknown hosts,
//! unauthenticated calls (401) and cross-site writes, and hands the [`Actor`] to the handlers;
//! what each actor may do is checked in `service/`.
//!
//! Secrets are compared and kept as SHA-256 hashes: tokens and session ids are 256 random bits,
//! so a fast hash is the right one (there is nothing to brute-force), and the database never holds
//! anything a caller could send.

pub mod oidc;

pub use crate::secret::{BOOTSTRAP_NAME, TOKEN_PREFIX, hash, new_secret, random_id};

use std::sync::Arc;

use app::auth::Via;
use axum::http::HeaderMap;

use crate::catalog::Catalog;
use crate::config::auth::Auth;
use crate::error::AppError;
use crate::service::{Actor, Person};
use crate::store::Store;

/// The session cookie over plain http: HttpOnly, SameSite=Lax.
pub const SESSION_COOKIE: &str = "deployer_session";
/// The session cookie over https (HttpOnly, SameSite=Lax, Secure): browsers take a `__Host-`
/// cookie only when Secure, for `Path=/` and without `Domain`, so no other site of the domain (a
/// sibling subdomain, a page on plain http) can plant one on a person (session fixation).
pub const HTTPS_SESSION_COOKIE: &str = "__Host-deployer_session";

/// Whether browsers reach the deployer over https (its `public_url` says so): cookies are
/// Secure, the session cookie is [`HTTPS_SESSION_COOKIE`], and answers carry HSTS.
pub fn over_https(auth: &Auth) -> bool {
    auth.public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
}

/// The session cookie's name: the one the deployer sets is the only one it reads.
pub fn session_cookie(auth: &Auth) -> &'static str {
    match over_https(auth) {
        true => HTTPS_SESSION_COOKIE,
        false => SESSION_COOKIE,
    }
}

/// Logins one process starts per [`LOGIN_WINDOW`]. Each writes a row (the login in flight) for
/// anyone who asks, before anyone is known: unbounded, a script could grow the store as fast as it
/// can ask. Rows older than the window are dropped as the next login starts, so a process keeps
/// at most twice this many; past it `/auth/login` answers 503 until the window turns. A rate per
/// process rather than a cap on the table's rows: no count on every login, and nothing the
/// replicas must share. (The price: a flood delays new logins by minutes; sessions and tokens
/// go on working.)
pub const LOGINS_PER_WINDOW: u32 = 1000;
/// As long as the store keeps a login in flight.
pub const LOGIN_WINDOW: std::time::Duration = std::time::Duration::from_secs(600);

/// The logins started in the current window.
struct LoginBudget {
    since: std::time::Instant,
    started: u32,
}

/// The `[auth]` of the running config, held while it is read.
pub struct RunningAuth(Arc<crate::config::Config>);

impl std::ops::Deref for RunningAuth {
    type Target = Auth;
    fn deref(&self) -> &Auth {
        &self.0.auth
    }
}

/// Decides who a request comes from.
pub struct Authenticator {
    catalog: Arc<Catalog>,
    store: Store,
    bootstrap_hash: Option<String>,
    pub oidc: Option<oidc::Oidc>,
    login_budget: std::sync::Mutex<LoginBudget>,
}

impl Authenticator {
    pub fn new(catalog: Arc<Catalog>, store: Store) -> Authenticator {
        let config = catalog.config();
        let auth = &config.auth;
        let bootstrap_hash = auth.bootstrap_token.as_ref().map(|t| hash(t.expose()));
        let oidc = auth
            .oidc
            .clone()
            .map(|config| oidc::Oidc::new(config, auth));
        if let Some(user) = &auth.dev_user {
            tracing::warn!(
                user,
                "DEVELOPMENT MODE: every request without credentials is the admin {user:?}; \
                 allowed only because the deployer listens on a loopback address"
            );
        }
        if bootstrap_hash.is_some() {
            tracing::info!(
                "the bootstrap token (DEPLOYER_BOOTSTRAP_TOKEN) is accepted, as {BOOTSTRAP_NAME:?}"
            );
        }
        Authenticator {
            catalog,
            store,
            bootstrap_hash,
            oidc,
            login_budget: std::sync::Mutex::new(LoginBudget {
                since: std::time::Instant::now(),
                started: 0,
            }),
        }
    }

    /// Whether one more login may start now ([`LOGINS_PER_WINDOW`]); counts it if so.
    pub fn may_start_login(&self) -> bool {
        let mut budget = self
            .login_budget
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = std::time::Instant::now();
        if now.duration_since(budget.since) >= LOGIN_WINDOW {
            *budget = LoginBudget {
                since: now,
                started: 0,
            };
        }
        if budget.started >= LOGINS_PER_WINDOW {
            return false;
        }
        budget.started += 1;
        true
    }

    /// The running config's `[auth]` (roles and groups follow a reload).
    pub fn config(&self) -> RunningAuth {
        RunningAuth(self.catalog.config())
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The actor of a request, `None` when it carries no credentials. A bearer token that is
    /// not valid (revoked, expired, never issued) is a 401, never a fall-back to the cookie.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Actor>, AppError> {
        if let Some(value) = headers.get(axum::http::header::AUTHORIZATION) {
            let value = value.to_str().unwrap_or_default();
            let Some(secret) = value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
            else {
                return Err(AppError::Unauthorized(
                    "the Authorization header must be `Bearer <token>`".into(),
                ));
            };
            return self.token(secret.trim()).await.map(Some);
        }
        if let Some(session_id) = cookie(headers, session_cookie(&self.config()))
            && let Some(session) = self.store.session(&hash(&session_id)).await?
        {
            let roles = self.roles_of_groups(&session.groups);
            let person = match &session.subject {
                Some(subject) => Person::subject(subject, &session.username),
                None => Person::named(&session.username),
            };
            return Ok(Some(self.actor(
                &session.username,
                &session.display_name,
                person,
                Via::Session,
                roles,
            )));
        }
        if let Some(user) = &self.config().dev_user {
            let person = Person {
                id: format!("dev:{user}"),
                name: user.clone(),
            };
            return Ok(Some(self.actor(
                user,
                user,
                person,
                Via::Session,
                vec!["admin".to_owned()],
            )));
        }
        Ok(None)
    }

    async fn token(&self, secret: &str) -> Result<Actor, AppError> {
        let hashed = hash(secret);
        if self
            .bootstrap_hash
            .as_deref()
            .is_some_and(|b| constant_time_eq(b.as_bytes(), hashed.as_bytes()))
        {
            return Ok(Actor::new(
                BOOTSTRAP_NAME,
                "bootstrap token",
                Person {
                    id: BOOTSTRAP_NAME.to_owned(),
                    name: BOOTSTRAP_NAME.to_owned(),
                },
                Via::Bootstrap,
                vec!["admin".to_owned()],
                true,
                self.all_environments(),
            ));
        }
        match self.store.token_by_hash(&hashed).await? {
            // The token acts for the person who made it: its name is only a label.
            Some(active) => {
                let name = active
                    .token
                    .person
                    .clone()
                    .unwrap_or_else(|| active.token.created_by.clone());
                let person = match active.person {
                    Some(id) => Person { id, name },
                    None => Person::named(&name),
                };
                Ok(self.actor(
                    &active.token.name,
                    &active.token.name,
                    person,
                    Via::Token,
                    vec![active.token.role],
                ))
            }
            None => Err(AppError::Unauthorized(
                "this token is not valid: revoked, expired, or never issued".into(),
            )),
        }
    }

    fn all_environments(&self) -> Vec<String> {
        self.catalog
            .config()
            .environments
            .iter()
            .map(|e| e.name.clone())
            .collect()
    }

    /// The roles a person's groups map to (the default role when none does).
    pub fn roles_of_groups(&self, groups: &[String]) -> Vec<String> {
        let auth = self.config();
        let mut roles: Vec<String> = groups
            .iter()
            .filter_map(|g| auth.groups.get(g).cloned())
            .collect();
        roles.sort();
        roles.dedup();
        if roles.is_empty()
            && let Some(default) = &auth.default_role
        {
            roles.push(default.clone());
        }
        roles
    }

    /// An actor with the rights of these roles (the config's rights, so a change of a role
    /// applies to sessions and tokens alike at once).
    pub fn actor(
        &self,
        name: &str,
        display_name: &str,
        person: Person,
        via: Via,
        roles: Vec<String>,
    ) -> Actor {
        let auth = self.config();
        let admin = roles
            .iter()
            .any(|r| auth.roles.get(r).is_some_and(|r| r.admin));
        let deploy = self
            .all_environments()
            .into_iter()
            .filter(|env| {
                admin
                    || roles.iter().any(|r| {
                        auth.roles
                            .get(r)
                            .is_some_and(|role| role.deploy.contains(env))
                    })
            })
            .collect();
        Actor::new(name, display_name, person, via, roles, admin, deploy)
    }
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert("cookie", "a=1; deployer_session=xyz; b=2".parse().unwrap());
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie(&headers, "c"), None);
    }
}
