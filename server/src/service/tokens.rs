//! API tokens for scripts and CI: created by an admin (the secret shown once, kept as a hash),
//! listed without secrets, revoked at once.

use app::auth::{CreatedToken, NewToken, Token};
use app::pause::AuditAction;

use super::{Actor, Services};
use crate::error::AppError;
use crate::secret as auth;
use crate::store::{NewAudit, NewTokenRow};

/// A token's name: what the audit log shows for its calls.
const MAX_TOKEN_NAME: usize = 64;
/// The longest a token may be made to live, in days (ten years).
const MAX_TOKEN_DAYS: u32 = 3650;

impl Services {
    /// The configured role names (what a token can be given).
    pub fn roles(&self) -> Vec<String> {
        self.catalog.config().auth.roles.keys().cloned().collect()
    }

    pub async fn tokens(&self, actor: &Actor) -> Result<Vec<Token>, AppError> {
        actor.require_admin("listing API tokens")?;
        Ok(self.store.tokens().await?)
    }

    pub async fn create_token(
        &self,
        actor: &Actor,
        request: &NewToken,
    ) -> Result<CreatedToken, AppError> {
        actor.require_admin("creating API tokens")?;
        let name = request.name.trim();
        if name.is_empty()
            || name.len() > MAX_TOKEN_NAME
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b' '))
        {
            return Err(AppError::BadRequest(format!(
                "name: a token's name is 1 to {MAX_TOKEN_NAME} letters, digits, spaces, '-', '_' or '.' \
                 (it names the token's calls in the audit log)"
            )));
        }
        if name == auth::BOOTSTRAP_NAME {
            return Err(AppError::BadRequest(format!(
                "name: {:?} is the bootstrap token's name",
                auth::BOOTSTRAP_NAME
            )));
        }
        let roles = &self.catalog.config().auth.roles;
        if !roles.contains_key(&request.role) {
            return Err(AppError::BadRequest(format!(
                "role: {:?} is not one of the roles ({})",
                request.role,
                roles.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        let expires_at = match request.expires_in_days {
            None => None,
            Some(days @ 1..=MAX_TOKEN_DAYS) => {
                Some(chrono::Utc::now() + chrono::Duration::days(i64::from(days)))
            }
            Some(_) => {
                return Err(AppError::BadRequest(format!(
                    "expires_in_days: a token expires in 1 to {MAX_TOKEN_DAYS} days, or never (leave it out)"
                )));
            }
        };
        let secret = auth::new_secret(auth::TOKEN_PREFIX);
        let id = format!("t-{}", auth::random_id());
        // The token acts for the person who makes it (a token made with a token, for that
        // token's maker): its name is a label, never a person.
        let person = actor.person();
        let info = self
            .store
            .create_token(&NewTokenRow {
                id: &id,
                name,
                role: &request.role,
                hash: &auth::hash(&secret),
                created_by: actor.name(),
                person: &person.id,
                person_name: &person.name,
                expires_at,
            })
            .await?;
        let detail = match expires_at {
            Some(at) => format!(
                "token {name:?} with role {}, expires {}",
                request.role,
                at.format("%Y-%m-%d %H:%M UTC")
            ),
            None => format!("token {name:?} with role {}", request.role),
        };
        self.store
            .audit(NewAudit {
                actor: actor.name(),
                action: AuditAction::TokenCreated,
                detail: Some(&detail),
                ..NewAudit::default()
            })
            .await?;
        Ok(CreatedToken {
            info,
            token: secret,
        })
    }

    /// Ends every session of a person (login name or the provider's subject): they must log in
    /// again, and then hold the groups the identity provider gives them now. Admins only.
    pub async fn end_sessions(&self, actor: &Actor, user: &str) -> Result<u64, AppError> {
        actor.require_admin("ending people's sessions")?;
        let user = user.trim();
        if user.is_empty() || user.len() > 256 || user.chars().any(char::is_control) {
            return Err(AppError::BadRequest(
                "user: the person's login name (or the identity provider's subject), \
                 1 to 256 characters"
                    .into(),
            ));
        }
        let ended = self.store.end_sessions_of(user).await?;
        let detail = format!("{ended} session(s) of {user:?}");
        self.store
            .audit(NewAudit {
                actor: actor.name(),
                action: AuditAction::SessionsEnded,
                detail: Some(&detail),
                ..NewAudit::default()
            })
            .await?;
        Ok(ended)
    }

    pub async fn revoke_token(&self, actor: &Actor, id: &str) -> Result<Token, AppError> {
        actor.require_admin("revoking API tokens")?;
        let was_active = self
            .store
            .tokens()
            .await?
            .into_iter()
            .any(|t| t.id == id && t.revoked_at.is_none());
        let token = self
            .store
            .revoke_token(id, actor.name())
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no token {id:?}")))?;
        if was_active {
            let detail = format!("token {:?} with role {}", token.name, token.role);
            self.store
                .audit(NewAudit {
                    actor: actor.name(),
                    action: AuditAction::TokenRevoked,
                    detail: Some(&detail),
                    ..NewAudit::default()
                })
                .await?;
        }
        Ok(token)
    }
}
