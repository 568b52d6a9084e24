//! The identity provider as the deployer's client sees it: discovered on first use (again after
//! a failure), through the `openidconnect` crate. The steps of logging in are `api/login.rs`.

use std::collections::HashMap;

use openidconnect::core::{CoreClient, CoreProviderMetadata};
use openidconnect::{AdditionalClaims, ClientId, ClientSecret, IssuerUrl, RedirectUrl};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::config::auth::{Auth, Oidc as OidcConfig};

/// The identity provider, discovered on first use (and again after a failure).
pub struct Oidc {
    pub config: OidcConfig,
    redirect_url: String,
    pub http: openidconnect::reqwest::Client,
    metadata: Mutex<Option<CoreProviderMetadata>>,
}

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
            metadata: Mutex::new(None),
        }
    }

    pub async fn metadata(&self) -> Result<CoreProviderMetadata, String> {
        let mut cached = self.metadata.lock().await;
        if let Some(metadata) = cached.as_ref() {
            return Ok(metadata.clone());
        }
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
        *cached = Some(metadata.clone());
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
        oidc.config.client_secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(
        RedirectUrl::new(oidc.redirect_url(listen)).expect("the redirect URL is checked at start"),
    )
}
