//! The `[auth]` section: single sign-on, roles, and which groups get which role.
//!
//! ```toml
//! [auth]
//! public_url = "https://deployer.example.com"   # redirect URI, allowed Host and Origin
//! session_hours = 12
//! [auth.oidc]
//! issuer = "https://login.example.com"
//! client_id = "deployer"
//! client_secret_env = "DEPLOYER_OIDC_CLIENT_SECRET"  # the secret itself never in the file
//! groups_claim = "groups"
//! [auth.roles]
//! viewer = {}
//! deployer = { deploy = ["DEV", "STG"] }
//! admin = { admin = true }
//! [auth.groups]
//! platform-team = "admin"
//! developers = "deployer"
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::secret::Secret;

/// A checked `[auth]` section.
#[derive(Clone, Debug)]
pub struct Auth {
    /// The deployer's address as browsers reach it, without a trailing slash; `None`: the
    /// listen address over http.
    pub public_url: Option<String>,
    /// Host headers accepted besides the public URL's (loopback ones are always accepted: a
    /// rebinding attacker's page never carries them).
    pub allowed_hosts: Vec<String>,
    pub session_ttl: std::time::Duration,
    pub oidc: Option<Oidc>,
    /// Role name → rights.
    pub roles: BTreeMap<String, Role>,
    /// Identity-provider group → role name.
    pub groups: BTreeMap<String, String>,
    /// The role of a person none of whose groups is mapped; `None`: such a person cannot log in.
    pub default_role: Option<String>,
    /// A fixed local user (an admin) for development, allowed only on a loopback address.
    pub dev_user: Option<String>,
    /// From `DEPLOYER_BOOTSTRAP_TOKEN` at start; never read from the file.
    pub bootstrap_token: Option<Secret>,
}

#[derive(Clone, Debug)]
pub struct Oidc {
    pub issuer: String,
    pub client_id: String,
    /// The name of the environment variable holding the client secret.
    pub client_secret_env: String,
    /// Read from that variable at start.
    pub client_secret: Option<Secret>,
    /// The claim (in the ID token or from the userinfo endpoint) listing the person's groups.
    pub groups_claim: String,
    /// Scopes asked for besides `openid`.
    pub scopes: Vec<String>,
}

/// What a role may do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Role {
    /// Everything: every environment, tokens, resume.
    pub admin: bool,
    /// Environments it may deploy to, cancel in and roll back, in promotion order.
    pub deploy: Vec<String>,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            public_url: None,
            allowed_hosts: Vec::new(),
            session_ttl: std::time::Duration::from_secs(12 * 3600),
            oidc: None,
            roles: default_roles(),
            groups: BTreeMap::new(),
            default_role: None,
            dev_user: None,
            bootstrap_token: None,
        }
    }
}

fn default_roles() -> BTreeMap<String, Role> {
    BTreeMap::from([
        ("viewer".to_owned(), Role::default()),
        (
            "admin".to_owned(),
            Role {
                admin: true,
                deploy: Vec::new(),
            },
        ),
    ])
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    public_url: Option<String>,
    #[serde(default)]
    allowed_hosts: Vec<String>,
    session_hours: Option<u64>,
    oidc: Option<RawOidc>,
    roles: Option<BTreeMap<String, RawRole>>,
    #[serde(default)]
    groups: BTreeMap<String, String>,
    default_role: Option<String>,
    dev_user: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOidc {
    issuer: String,
    client_id: String,
    client_secret_env: Option<String>,
    groups_claim: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    #[serde(default)]
    admin: bool,
    /// Environment names, or `["*"]` for all.
    #[serde(default)]
    deploy: Vec<String>,
}

/// Checks `[auth]` against the environments (in promotion order) and the listen address.
pub fn check(
    raw: RawAuth,
    env_names: &[String],
    listen: std::net::SocketAddr,
) -> Result<Auth, String> {
    let public_url = match raw.public_url {
        None => None,
        Some(url) => {
            let trimmed = url.trim_end_matches('/').to_owned();
            let rest = trimmed
                .strip_prefix("https://")
                .or_else(|| trimmed.strip_prefix("http://"));
            match rest {
                Some(host) if !host.is_empty() && !host.contains('/') => Some(trimmed),
                _ => {
                    return Err(format!(
                        "auth.public_url: {url:?} must be like https://deployer.example.com (scheme and host, no path)"
                    ));
                }
            }
        }
    };
    let hours = raw.session_hours.unwrap_or(12);
    if !(1..=24 * 30).contains(&hours) {
        return Err(format!("auth.session_hours: {hours} is outside 1..=720"));
    }
    let roles = match raw.roles {
        None => default_roles(),
        Some(raw_roles) => {
            let mut roles = BTreeMap::new();
            for (name, role) in raw_roles {
                if !is_role_name(&name) {
                    return Err(format!(
                        "auth.roles: {name:?} must be lower-case letters, digits and dashes"
                    ));
                }
                let deploy = if role.deploy.iter().any(|e| e == "*") {
                    env_names.to_vec()
                } else {
                    for env in &role.deploy {
                        if !env_names.contains(env) {
                            return Err(format!(
                                "auth.roles.{name}.deploy: {env:?} is not one of the environments ({})",
                                env_names.join(", ")
                            ));
                        }
                    }
                    env_names
                        .iter()
                        .filter(|e| role.deploy.contains(e))
                        .cloned()
                        .collect()
                };
                roles.insert(
                    name,
                    Role {
                        admin: role.admin,
                        deploy,
                    },
                );
            }
            roles
        }
    };
    let known = |role: &str| roles.contains_key(role);
    for (group, role) in &raw.groups {
        if !known(role) {
            return Err(format!(
                "auth.groups.{group}: {role:?} is not one of the roles ({})",
                roles.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    if let Some(role) = &raw.default_role
        && !known(role)
    {
        return Err(format!(
            "auth.default_role: {role:?} is not one of the roles"
        ));
    }
    let oidc = match raw.oidc {
        None => None,
        Some(o) => {
            if !(o.issuer.starts_with("https://") || o.issuer.starts_with("http://")) {
                return Err(format!(
                    "auth.oidc.issuer: {:?} must be an http(s) URL",
                    o.issuer
                ));
            }
            if o.client_id.trim().is_empty() {
                return Err("auth.oidc.client_id: must not be empty".into());
            }
            Some(Oidc {
                issuer: o.issuer,
                client_id: o.client_id,
                client_secret_env: o
                    .client_secret_env
                    .unwrap_or_else(|| "DEPLOYER_OIDC_CLIENT_SECRET".to_owned()),
                client_secret: None,
                groups_claim: o.groups_claim.unwrap_or_else(|| "groups".to_owned()),
                scopes: o
                    .scopes
                    .unwrap_or_else(|| vec!["profile".to_owned(), "email".to_owned()]),
            })
        }
    };
    if let Some(user) = &raw.dev_user {
        if user.trim().is_empty() {
            return Err("auth.dev_user: must not be empty".into());
        }
        if !listen.ip().is_loopback() {
            return Err(format!(
                "auth.dev_user: a fixed development user is refused unless the deployer listens on a \
                 loopback address (it listens on {listen}); use single sign-on"
            ));
        }
    }
    Ok(Auth {
        public_url,
        allowed_hosts: raw.allowed_hosts,
        session_ttl: std::time::Duration::from_secs(hours * 3600),
        oidc,
        roles,
        groups: raw.groups,
        default_role: raw.default_role,
        dev_user: raw.dev_user,
        bootstrap_token: None,
    })
}

fn is_role_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}
