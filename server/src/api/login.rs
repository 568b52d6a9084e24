//! Single sign-on: OpenID Connect's authorization-code flow with PKCE, through the
//! `openidconnect` crate (discovery, token exchange, ID-token signature, issuer, audience, expiry
//! and nonce checks are its own). The login in flight (state, PKCE verifier, nonce) is kept in the
//! store for minutes, bound to the browser that started it (login CSRF: see [`login`]); the
//! session it ends in is a random id in an HttpOnly cookie whose hash is kept in the store.

use std::collections::HashMap;

use app::auth::Via;
use app::pause::AuditAction;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use openidconnect::core::{CoreAuthenticationFlow, CoreGenderClaim};
use openidconnect::url::{Position, Url};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, CsrfToken, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, Scope, SignatureVerificationError, TokenResponse,
    UserInfoClaims,
};

use crate::auth::oidc::{AnyClaims, client, error_chain};
use crate::auth::{
    Authenticator, LOGIN_WINDOW, constant_time_eq, cookie, hash, new_secret, over_https,
    session_cookie,
};
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
///
/// The login is bound to the browser that starts it: the `state` the provider sends back is the
/// hash of a random value only this browser holds, in a short-lived cookie (`__Host-` over https), so a
/// callback URL of someone else's login — an attacker's, opened in a victim's browser to log the
/// victim into the attacker's account — is refused at `/auth/callback`.
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
    if !state.auth.may_start_login() {
        tracing::warn!("login: refused, too many logins started in this window");
        let mut response = page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many logins at once",
            "More logins were started in the last minutes than the deployer keeps in flight. Try again in a few minutes.",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return response;
    }
    let (metadata, _) = match oidc.metadata().await {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("login: {e}");
            return page(StatusCode::BAD_GATEWAY, "Cannot log in now", &escape(&e));
        }
    };
    let client = client(oidc, metadata, state.catalog().config().listen);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let binding = new_secret("");
    let bound_state = hash(&binding);
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            {
                let state = bound_state.clone();
                move || CsrfToken::new(state)
            },
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
        return_to: safe_return(query.get("next").map(String::as_str), &own_origin(&state)),
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
    let https = over_https(&state.auth.config());
    let mut response = Redirect::to(url.as_str()).into_response();
    set_cookie(
        &mut response,
        &format!(
            "{}={binding}; HttpOnly; SameSite=Lax; {}; Max-Age={}",
            login_cookie(&bound_state, https),
            login_cookie_scope(https),
            LOGIN_WINDOW.as_secs()
        ),
    );
    response
}

/// The cookie binding the login with this state to its browser: named after the state, so that
/// logins started in several tabs at once each find theirs.
/// Over https it carries the `__Host-` prefix (`Secure`, `Path=/`, no `Domain`), so that a
/// sibling subdomain cannot plant one and bind a victim's browser to the attacker's login.
fn login_cookie(state: &str, https: bool) -> String {
    let prefix = if https { "__Host-" } else { "" };
    format!("{prefix}deployer_login_{}", &state[..16])
}

/// The login cookie's path and security: over https what `__Host-` requires, else `/auth`.
fn login_cookie_scope(https: bool) -> &'static str {
    if https {
        "Path=/; Secure"
    } else {
        "Path=/auth"
    }
}

/// A state this deployer could have made: the hex SHA-256 of a login's binding.
fn is_state(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Where to go after logging in: only a path of this site, else `/`. `next` is parsed as a
/// browser would, against the deployer's own origin, and refused when it lands on another origin
/// or holds what browsers drop or reinterpret on the way — control characters and whitespace
/// (`/\t/evil.example` is `//evil.example` to a browser) and backslashes (`/\evil.example`).
fn safe_return(next: Option<&str>, own_origin: &str) -> String {
    let home = || "/".to_owned();
    let Some(next) = next else { return home() };
    if !next.starts_with('/')
        || next.starts_with("//")
        || next
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return home();
    }
    let Ok(base) = Url::parse(own_origin) else {
        return home();
    };
    match base.join(next) {
        Ok(url) if url.origin() == base.origin() => {
            // Joining removes dot segments: `/.//evil.example` becomes the path
            // `//evil.example`, which a browser reads as another host. Never return one.
            let path = &url[Position::BeforePath..Position::AfterQuery];
            if path.starts_with("//") || path.starts_with("/\\") {
                home()
            } else {
                path.to_owned()
            }
        }
        _ => home(),
    }
}

/// The deployer's origin as browsers see it: its public URL, else its listen address.
fn own_origin(state: &AppState) -> String {
    state
        .auth
        .config()
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", state.catalog().config().listen))
}

/// Adds a `Set-Cookie` (of URL-safe characters) to an answer.
fn set_cookie(response: &mut Response, cookie: &str) {
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(cookie).expect("a cookie of URL-safe characters"),
    );
}

/// `GET /auth/callback?code&state`: the provider sends the person back.
async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (name, secure) = {
        let auth = state.auth.config();
        let secure = if over_https(&auth) { "; Secure" } else { "" };
        (session_cookie(&auth), secure)
    };
    let finished = match bound_to_this_browser(&headers, &query, !secure.is_empty()) {
        Ok(()) => finish(&state, &query).await,
        Err(refused) => Err(refused),
    };
    let mut response = match finished {
        Ok((session_id, return_to, ttl)) => {
            let mut response = Redirect::to(&return_to).into_response();
            set_cookie(
                &mut response,
                &format!(
                    "{name}={session_id}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}{secure}",
                    ttl.as_secs()
                ),
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
    };
    // The login's cookie has done its work, whatever the outcome.
    if let Some(state) = query.get("state").filter(|s| is_state(s)) {
        let https = !secure.is_empty();
        set_cookie(
            &mut response,
            &format!(
                "{}=; HttpOnly; SameSite=Lax; {}; Max-Age=0",
                login_cookie(state, https),
                login_cookie_scope(https)
            ),
        );
    }
    response
}

/// The callback comes to the browser that started the login: it holds the value whose hash is
/// the state ([`login`]). Checked before the login in flight is taken, so a refused callback
/// does not spend it. A provider's refusal (`error`) logs nobody in, and is shown as it is.
fn bound_to_this_browser(
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    https: bool,
) -> Result<(), (StatusCode, String)> {
    if query.contains_key("error") {
        return Ok(());
    }
    let Some(state) = query.get("state").filter(|s| is_state(s)) else {
        return Err((
            StatusCode::BAD_REQUEST,
            "the identity provider sent back no state of a login this deployer started".to_owned(),
        ));
    };
    match cookie(headers, &login_cookie(state, https)) {
        Some(binding) if constant_time_eq(hash(&binding).as_bytes(), state.as_bytes()) => Ok(()),
        _ => Err((
            StatusCode::BAD_REQUEST,
            "this login was started in another browser (or this browser's login cookie expired or \
             was blocked): a login finishes only in the browser that started it"
                .to_owned(),
        )),
    }
}

type Finished = (String, String, std::time::Duration);

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
    let (metadata, read) = oidc
        .metadata()
        .await
        .map_err(|e| (StatusCode::BAD_GATEWAY, e))?;
    let listen = state.catalog().config().listen;
    let mut client = client(oidc, metadata, listen);
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
    let nonce = Nonce::new(pending.nonce);
    let verified = id_token.claims(&client.id_token_verifier(), &nonce);
    let claims = match verified {
        // Signed with a key the cached key set does not have: the provider rotated its keys.
        Err(ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey,
        )) => match oidc
            .metadata_with_new_keys(read)
            .await
            .map_err(|e| (StatusCode::BAD_GATEWAY, e))?
        {
            Some((metadata, _)) => {
                client = crate::auth::oidc::client(oidc, metadata, listen);
                id_token.claims(&client.id_token_verifier(), &nonce)
            }
            None => Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )),
        },
        verified => verified,
    }
    .map_err(|e| {
        (
            StatusCode::UNAUTHORIZED,
            format!("the ID token is not valid: {}", error_chain(&e)),
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
                subject: Some(claims.subject().as_str().to_owned()),
                display_name: display_name.clone(),
                groups,
                expires_at,
            },
        )
        .await
        .map_err(|e| internal(&e))?;
    let person = crate::service::Person::subject(claims.subject().as_str(), &username);
    let actor = auth.actor(&username, &display_name, person, Via::Session, roles);
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
    Ok((session_id, pending.return_to, config.session_ttl))
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

/// `POST /auth/logout`: ends the session (the cookie and the stored session). Only from the
/// deployer's own page: the guard checks the origin, as for every write with the cookie.
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (name, secure) = {
        let auth = state.auth.config();
        (session_cookie(&auth), over_https(&auth))
    };
    if let Some(session_id) = cookie(&headers, name)
        && let Err(e) = state.auth.store().end_session(&hash(&session_id)).await
    {
        tracing::error!(error = %e, "logout: cannot end the session");
    }
    let mut response = Redirect::to("/auth/logged-out").into_response();
    set_cookie(
        &mut response,
        &format!(
            "{name}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0{}",
            if secure { "; Secure" } else { "" }
        ),
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
        let own = "https://deployer.example.com";
        assert_eq!(
            safe_return(Some("/projects/web?x=1"), own),
            "/projects/web?x=1"
        );
        assert_eq!(safe_return(Some("/a/../b#top"), own), "/b");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "/\t/evil.example/phish",
            "/\n/evil.example",
            "/\r//evil.example",
            "/ /evil.example",
            "/\u{0}/evil.example",
            "/\u{3000}/evil.example",
            "javascript:alert(1)",
            "",
            // Dot segments removed by the join leave a path that begins with two slashes.
            "/.//evil.example",
            "/a/..//evil.example",
            "/%2e//evil.example",
            "/././/evil.example/phish",
        ] {
            assert_eq!(safe_return(Some(bad), own), "/", "{bad:?}");
        }
        assert_eq!(safe_return(None, own), "/");
        assert_eq!(safe_return(Some("/x"), "not a URL"), "/");
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
