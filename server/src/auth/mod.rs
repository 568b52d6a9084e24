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
use crate::service::Actor;
use crate::store::Store;

/// The session cookie: HttpOnly, SameSite=Lax, Secure over https.
pub const SESSION_COOKIE: &str = "deployer_session";

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
}

impl Authenticator {
    pub fn new(catalog: Arc<Catalog>, store: Store) -> Authenticator {
        let config = catalog.config();
        let auth = &config.auth;
        let bootstrap_hash = auth.bootstrap_token.as_deref().map(hash);
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
        }
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
        if let Some(session_id) = cookie(headers, SESSION_COOKIE)
            && let Some(session) = self.store.session(&hash(&session_id)).await?
        {
            let roles = self.roles_of_groups(&session.groups);
            return Ok(Some(self.actor(
                &session.username,
                &session.display_name,
                Via::Session,
                roles,
            )));
        }
        if let Some(user) = &self.config().dev_user {
            return Ok(Some(self.actor(
                user,
                user,
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
                Via::Bootstrap,
                vec!["admin".to_owned()],
                true,
                self.all_environments(),
            ));
        }
        match self.store.token_by_hash(&hashed).await? {
            Some(token) => Ok(self.actor(&token.name, &token.name, Via::Token, vec![token.role])),
            None => Err(AppError::Unauthorized(
                "this token is not valid: revoked, or never issued".into(),
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
    pub fn actor(&self, name: &str, display_name: &str, via: Via, roles: Vec<String>) -> Actor {
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
        Actor::new(name, display_name, via, roles, admin, deploy)
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

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
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
