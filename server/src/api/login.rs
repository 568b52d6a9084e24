//! Single sign-on: OpenID Connect's authorization-code flow with PKCE, through the
//! `openidconnect` crate (discovery, token exchange, ID-token signature, issuer, audience, expiry
//! and nonce checks are its own). The login in flight (state, PKCE verifier, nonce) is kept in the
//! store for minutes; the session it ends in is a random id in an HttpOnly cookie whose hash is
//! kept in the store.

use std::collections::HashMap;

use app::auth::Via;
use app::pause::AuditAction;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use openidconnect::core::{CoreAuthenticationFlow, CoreGenderClaim};
use openidconnect::{
    AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    Scope, TokenResponse, UserInfoClaims,
};

use crate::auth::oidc::{AnyClaims, client, error_chain};
use crate::auth::{Authenticator, SESSION_COOKIE, cookie, hash, new_secret};
use crate::state::AppState;
use crate::store::{NewAudit, PendingLogin, Session};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/login", get(login))
        .route("/auth/callback", get(callback))
        .route("/auth/logout", post(logout))
        .route("/auth/logged-out", get(logged_out))
}

/// `GET /auth/login?next=/path`: to the identity provider, and back to `next` after.
async fn login(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(oidc) = state.auth.oidc.as_ref() else {
        return page(
            StatusCode::NOT_FOUND,
            "Single sign-on is not configured",
            "This deployer takes API tokens only (<code>Authorization: Bearer …</code>).",
        );
    };
    let metadata = match oidc.metadata().await {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("login: {e}");
            return page(StatusCode::BAD_GATEWAY, "Cannot log in now", &escape(&e));
        }
    };
    let client = client(oidc, metadata, state.catalog().config().listen);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for scope in &oidc.config.scopes {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    let (url, csrf, nonce) = request.url();
    let pending = PendingLogin {
        pkce_verifier: verifier.secret().clone(),
        nonce: nonce.secret().clone(),
        return_to: safe_return(query.get("next").map(String::as_str)),
    };
    if let Err(e) = state
        .auth
        .store()
        .begin_login(csrf.secret(), &pending)
        .await
    {
        tracing::error!(error = %e, "login: cannot keep the login in flight");
        return page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Cannot log in now",
            "The deployer could not keep the login in flight; see its log.",
        );
    }
    Redirect::to(url.as_str()).into_response()
}

/// Only a path of this site: never `//other.site` or an absolute URL (an open redirect).
fn safe_return(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".to_owned(),
    }
}

/// `GET /auth/callback?code&state`: the provider sends the person back.
async fn callback(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match finish(&state, &query).await {
        Ok((session_id, return_to, ttl, secure)) => {
            let mut response = Redirect::to(&return_to).into_response();
            let cookie = format!(
                "{SESSION_COOKIE}={session_id}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}{}",
                ttl.as_secs(),
                if secure { "; Secure" } else { "" }
            );
            response.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_str(&cookie).expect("a cookie of URL-safe characters"),
            );
            response
        }
        Err((status, message)) => {
            tracing::warn!("login failed: {message}");
            page(
                status,
                "Login failed",
                &format!(
                    "{} <p><a href=\"/auth/login\">Log in again</a></p>",
                    escape(&message)
                ),
            )
        }
    }
}

type Finished = (String, String, std::time::Duration, bool);

async fn finish(
    state: &AppState,
    query: &HashMap<String, String>,
) -> Result<Finished, (StatusCode, String)> {
    let auth: &Authenticator = &state.auth;
    let oidc = auth.oidc.as_ref().ok_or((
        StatusCode::NOT_FOUND,
        "single sign-on is not configured".to_owned(),
    ))?;
    if let Some(error) = query.get("error") {
        let description = query.get("error_description").cloned().unwrap_or_default();
        return Err((
            StatusCode::UNAUTHORIZED,
            format!("the identity provider said {error}: {description}"),
        ));
    }
    let (Some(code), Some(csrf)) = (query.get("code"), query.get("state")) else {
        return Err((
            StatusCode::BAD_REQUEST,
            "the identity provider sent no code and state back".to_owned(),
        ));
    };
    let internal = |e: &dyn std::fmt::Display| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let pending = auth
        .store()
        .finish_login(csrf)
        .await
        .map_err(|e| internal(&e))?
        .ok_or((
            StatusCode::BAD_REQUEST,
            "this login has expired or was already used".to_owned(),
        ))?;
    let metadata = oidc
        .metadata()
        .await
        .map_err(|e| (StatusCode::BAD_GATEWAY, e))?;
    let client = client(oidc, metadata, state.catalog().config().listen);
    let bad_gateway = |what: &str, e: &dyn std::error::Error| {
        (
            StatusCode::BAD_GATEWAY,
            format!("{what}: {}", error_chain(e)),
        )
    };
    let tokens = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .map_err(|e| bad_gateway("the provider has no token endpoint", &e))?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier))
        .request_async(&oidc.http)
        .await
        .map_err(|e| bad_gateway("the code could not be exchanged", &e))?;
    let id_token = tokens.id_token().ok_or((
        StatusCode::BAD_GATEWAY,
        "the provider sent no ID token".to_owned(),
    ))?;
    let claims = id_token
        .claims(&client.id_token_verifier(), &Nonce::new(pending.nonce))
        .map_err(|e| {
            (
                StatusCode::UNAUTHORIZED,
                format!("the ID token is not valid: {e}"),
            )
        })?;
    let username = claims
        .preferred_username()
        .map(|u| u.as_str().to_owned())
        .or_else(|| claims.email().map(|e| e.as_str().to_owned()))
        .unwrap_or_else(|| claims.subject().as_str().to_owned());
    let mut display_name = claims
        .name()
        .and_then(|n| n.get(None))
        .map(|n| n.as_str().to_owned());
    // Groups: from the ID token when the provider puts them there, else from userinfo.
    let mut groups = Vec::new();
    if let Ok(request) = client.user_info(
        tokens.access_token().clone(),
        Some(claims.subject().clone()),
    ) {
        match request
            .request_async::<AnyClaims, _, CoreGenderClaim>(&oidc.http)
            .await
        {
            Ok(info) => {
                let info: UserInfoClaims<AnyClaims, CoreGenderClaim> = info;
                groups = read_groups(info.additional_claims().0.get(&oidc.config.groups_claim));
                if display_name.is_none() {
                    display_name = info
                        .name()
                        .and_then(|n| n.get(None))
                        .map(|n| n.as_str().to_owned());
                }
            }
            Err(e) => tracing::warn!("login: userinfo failed: {}", error_chain(&e)),
        }
    }
    let roles = auth.roles_of_groups(&groups);
    if roles.is_empty() {
        return Err((
            StatusCode::FORBIDDEN,
            format!(
                "{username} has no role in the deployer: none of their groups ({}) is given one. Ask an admin to map a group in auth.groups.",
                if groups.is_empty() {
                    "none".to_owned()
                } else {
                    groups.join(", ")
                }
            ),
        ));
    }
    let config = auth.config();
    let session_id = new_secret("");
    let expires_at = chrono::Utc::now()
        + chrono::Duration::from_std(config.session_ttl).unwrap_or(chrono::Duration::hours(12));
    let display_name = display_name.unwrap_or_else(|| username.clone());
    auth.store()
        .create_session(
            &hash(&session_id),
            &Session {
                username: username.clone(),
                display_name: display_name.clone(),
                groups,
                expires_at,
            },
        )
        .await
        .map_err(|e| internal(&e))?;
    let actor = auth.actor(&username, &display_name, Via::Session, roles);
    let detail = format!("logged in as {}", actor.me().role_label());
    auth.store()
        .audit_or_log(NewAudit {
            actor: actor.name(),
            action: AuditAction::Login,
            detail: Some(&detail),
            ..NewAudit::default()
        })
        .await;
    tracing::info!(user = username, "logged in");
    Ok((
        session_id,
        pending.return_to,
        config.session_ttl,
        oidc.secure_cookie,
    ))
}

/// A groups claim: a list of names (or one name).
fn read_groups(claim: Option<&serde_json::Value>) -> Vec<String> {
    match claim {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|g| g.as_str().map(str::to_owned))
            .collect(),
        Some(serde_json::Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

/// `POST /auth/logout`: ends the session (the cookie and the stored session).
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(session_id) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = state.auth.store().end_session(&hash(&session_id)).await
    {
        tracing::error!(error = %e, "logout: cannot end the session");
    }
    let mut response = Redirect::to("/auth/logged-out").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("deployer_session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0"),
    );
    response
}

async fn logged_out() -> Response {
    page(
        StatusCode::OK,
        "You are logged out",
        "<p><a href=\"/auth/login\">Log in again</a></p>",
    )
}

/// A small page of its own (no scripts) for the steps of logging in and out.
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · Deployer</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1f2328}}\
         h1{{font-size:1.4rem}}a{{color:#0b57d0}}</style></head>\
         <body><main><h1>{title}</h1><p>{body}</p></main></body></html>"
    );
    let mut response = (status, Html(html)).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_site_are_returned_to() {
        assert_eq!(safe_return(Some("/projects/web?x=1")), "/projects/web?x=1");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "",
        ] {
            assert_eq!(safe_return(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_return(None), "/");
    }

    #[test]
    fn groups_are_a_list_or_one_name() {
        assert_eq!(
            read_groups(Some(&serde_json::json!(["a", "b", 3]))),
            ["a", "b"]
        );
        assert_eq!(read_groups(Some(&serde_json::json!("ops"))), ["ops"]);
        assert!(read_groups(None).is_empty());
    }
}
