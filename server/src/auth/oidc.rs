//! The identity provider as the deployer's client sees it: discovered on first use (again after
//! a failure), through the `openidconnect` crate. The steps of logging in are `api/login.rs`.
//!
//! Providers rotate their signing keys. The discovery document, and with it the key set (JWKS),
//! is read again when it is older than [`METADATA_MAX_AGE`], and at once when an ID token is
//! signed with a key the cached set does not have — at most once per
//! [`UNKNOWN_KEY_REFRESH_INTERVAL`], so that tokens naming unknown keys cannot make the deployer
//! hammer the provider.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use openidconnect::core::{CoreClient, CoreProviderMetadata};
use openidconnect::{AdditionalClaims, ClientId, ClientSecret, IssuerUrl, RedirectUrl};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::config::auth::{Auth, Oidc as OidcConfig};

/// How long a discovery document (and its key set) is used before it is read again.
pub const METADATA_MAX_AGE: Duration = Duration::from_secs(15 * 60);

/// The least time between two readings forced by ID tokens signed with a key not in the cached
/// key set.
pub const UNKNOWN_KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// The identity provider, discovered on first use (and again after a failure, when old, or when
/// a token's key is not in its key set).
pub struct Oidc {
    pub config: OidcConfig,
    redirect_url: String,
    pub http: openidconnect::reqwest::Client,
    discovered: Mutex<Discovered>,
}

#[derive(Default)]
struct Discovered {
    /// The metadata, and when it was read.
    metadata: Option<(CoreProviderMetadata, Instant)>,
    /// When a reading was last forced by a token's unknown key.
    forced_at: Option<Instant>,
}

/// The metadata a caller used, to ask for a newer one: [`Oidc::metadata_with_new_keys`].
#[derive(Clone, Copy, Debug)]
pub struct Read(Instant);

/// Every claim the userinfo endpoint sends, so that the configured groups claim can be read.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct AnyClaims(pub HashMap<String, serde_json::Value>);
impl AdditionalClaims for AnyClaims {}

impl Oidc {
    pub fn new(config: OidcConfig, auth: &Auth) -> Oidc {
        let base = auth.public_url.clone().unwrap_or_default();
        Oidc {
            redirect_url: format!("{base}/auth/callback"),
            config,
            http: openidconnect::reqwest::ClientBuilder::new()
                // Following redirects from the provider's endpoints would open an SSRF.
                .redirect(openidconnect::reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .expect("an HTTP client with a timeout builds"),
            discovered: Mutex::new(Discovered::default()),
        }
    }

    /// The provider's metadata: the cached one while it is younger than [`METADATA_MAX_AGE`],
    /// else read again (the old one kept, with a warning, if the provider does not answer).
    pub async fn metadata(&self) -> Result<(CoreProviderMetadata, Read), String> {
        let mut discovered = self.discovered.lock().await;
        let stale = match &discovered.metadata {
            Some((metadata, at)) if at.elapsed() < METADATA_MAX_AGE => {
                return Ok((metadata.clone(), Read(*at)));
            }
            Some((metadata, at)) => Some((metadata.clone(), *at)),
            None => None,
        };
        match self.discover().await {
            Ok(metadata) => {
                let now = Instant::now();
                discovered.metadata = Some((metadata.clone(), now));
                Ok((metadata, Read(now)))
            }
            Err(e) => match stale {
                Some((metadata, at)) => {
                    tracing::warn!("login: using the old discovery document: {e}");
                    Ok((metadata, Read(at)))
                }
                None => Err(e),
            },
        }
    }

    /// The metadata again after an ID token was signed with a key not in the key set of the
    /// metadata `used`: newer metadata if another login already read it, else read now — unless
    /// a reading was forced less than [`UNKNOWN_KEY_REFRESH_INTERVAL`] ago (`None`: nothing
    /// newer to try).
    pub async fn metadata_with_new_keys(
        &self,
        used: Read,
    ) -> Result<Option<(CoreProviderMetadata, Read)>, String> {
        let mut discovered = self.discovered.lock().await;
        if let Some((metadata, at)) = &discovered.metadata
            && *at > used.0
        {
            return Ok(Some((metadata.clone(), Read(*at))));
        }
        if discovered
            .forced_at
            .is_some_and(|at| at.elapsed() < UNKNOWN_KEY_REFRESH_INTERVAL)
        {
            return Ok(None);
        }
        discovered.forced_at = Some(Instant::now());
        tracing::info!(
            issuer = self.config.issuer,
            "login: an ID token is signed with a key not in the provider's key set; reading it again"
        );
        let metadata = self.discover().await?;
        let now = Instant::now();
        discovered.metadata = Some((metadata.clone(), now));
        Ok(Some((metadata, Read(now))))
    }

    async fn discover(&self) -> Result<CoreProviderMetadata, String> {
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| format!("the issuer URL is not valid: {e}"))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| {
                format!(
                    "the identity provider {} did not answer its discovery document: {}",
                    self.config.issuer,
                    error_chain(&e)
                )
            })?;
        Ok(metadata)
    }

    fn redirect_url(&self, listen: std::net::SocketAddr) -> String {
        if self.redirect_url.starts_with("http") {
            self.redirect_url.clone()
        } else {
            format!("http://{listen}/auth/callback")
        }
    }
}

pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The client for one exchange, from the discovered metadata.
pub fn client(
    oidc: &Oidc,
    metadata: CoreProviderMetadata,
    listen: std::net::SocketAddr,
) -> openidconnect::core::CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
> {
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(oidc.config.client_id.clone()),
        oidc.config
            .client_secret
            .as_ref()
            .map(|s| ClientSecret::new(s.expose().to_owned())),
    )
    .set_redirect_uri(
        RedirectUrl::new(oidc.redirect_url(listen)).expect("the redirect URL is checked at start"),
    )
}
