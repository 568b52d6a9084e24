//! API tokens for scripts and CI: created by an admin (the secret shown once, kept as a hash),
//! listed without secrets, revoked at once.

use app::auth::{CreatedToken, NewToken, Token};
use app::pause::AuditAction;

use super::{Actor, Services};
use crate::error::AppError;
use crate::secret as auth;
use crate::store::NewAudit;

/// A token's name: what the audit log shows for its calls.
const MAX_TOKEN_NAME: usize = 64;

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
        let secret = auth::new_secret(auth::TOKEN_PREFIX);
        let id = format!("t-{}", auth::random_id());
        let info = self
            .store
            .create_token(&id, name, &request.role, &auth::hash(&secret), actor.name())
            .await?;
        let detail = format!("token {name:?} with role {}", request.role);
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
