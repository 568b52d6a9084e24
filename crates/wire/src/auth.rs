//! Who is logged in and what they may do, as the page and the API show it; API tokens.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How a caller proved who they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// A person, logged in with single sign-on (session cookie).
    Session,
    /// An API token (`Authorization: Bearer …`).
    Token,
    /// The bootstrap token given at start (`DEPLOYER_BOOTSTRAP_TOKEN`).
    Bootstrap,
}

/// `GET /api/v1/me`: the caller, their roles and rights. The page shows the name and role in
/// its header, and disables (with the reason) what the caller may not do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Me {
    /// The name the audit log records: the login name, or the token's name.
    pub name: String,
    /// For people: the display name from the identity provider.
    pub display_name: String,
    /// The person behind the call: the login name of who is logged in, of who made the token,
    /// or `bootstrap`. Four eyes compare people, never a token's name.
    #[serde(default)]
    pub person: String,
    pub via: Via,
    /// Role names, as configured.
    pub roles: Vec<String>,
    /// Every right: see everything, tokens, resume.
    pub admin: bool,
    /// The environments this caller may deploy to, cancel in and roll back (all of them for an
    /// admin), in promotion order.
    pub deploy: Vec<String>,
    /// Pausing is the emergency brake: open to everyone who may deploy somewhere.
    pub can_pause: bool,
    pub can_resume: bool,
}

impl Me {
    pub fn may_deploy(&self, environment: &str) -> bool {
        self.deploy.iter().any(|e| e == environment)
    }

    /// Why this caller may not deploy to `environment`, for a disabled button and its note.
    pub fn why_not_deploy(&self, environment: &str) -> Option<String> {
        (!self.may_deploy(environment)).then(|| {
            let can = if self.deploy.is_empty() {
                "does not deploy".to_owned()
            } else {
                format!("deploys to {} only", self.deploy.join(", "))
            };
            format!(
                "You may not deploy to {environment} — your role ({}) {can}.",
                self.role_label()
            )
        })
    }

    /// The roles as one label, e.g. "deployer" or "viewer".
    pub fn role_label(&self) -> String {
        if self.roles.is_empty() {
            "no role".to_owned()
        } else {
            self.roles.join(", ")
        }
    }
}

/// An API token as listed (never its secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Token {
    pub id: String,
    pub name: String,
    pub role: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// When the token stops working by itself (none: it works until revoked).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// The person the token acts for: who made it (for a token made with a token, that token's
    /// person). Four eyes compare people, never a token's name.
    #[serde(default)]
    pub person: Option<String>,
}

/// `DELETE /api/v1/sessions?user=…`: how many of the person's sessions were ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SessionsEnded {
    pub ended: u64,
}

/// `POST /api/v1/tokens`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NewToken {
    pub name: String,
    pub role: String,
    /// Days until the token stops working by itself (1 to 3650); none: until revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_days: Option<u32>,
}

/// A token just created: the secret is shown this once, never again.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CreatedToken {
    #[serde(flatten)]
    pub info: Token,
    /// The secret: send as `Authorization: Bearer <token>`.
    pub token: String,
}

/// Without the secret: a created token may be logged or printed, its secret never.
impl std::fmt::Debug for CreatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedToken")
            .field("info", &self.info)
            .field("token", &"***")
            .finish()
    }
}

/// The tokens page: every token (revoked ones too) and the roles a new one can have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TokenAdmin {
    pub tokens: Vec<Token>,
    pub roles: Vec<String>,
}
