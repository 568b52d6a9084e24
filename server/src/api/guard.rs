//! The one door every request passes (except `GET /api/v1/health` and `/api/v1/ready`, for load
//! balancers, `GET /metrics`, for Prometheus, and the API's description
//! `GET /api/v1/openapi.json`): the `Host` must be the deployer's own (DNS rebinding), the caller
//! must be known (401 otherwise; a page is sent to the login instead), a write carrying the
//! session cookie (logging out too) must come from the deployer's own origin, and server functions
//! take JSON only (a cross-site HTML form cannot send JSON). The actor found is put in the request
//! for `api::extract::actor`. An https deployer's answers carry HSTS.

use app::auth::Via;
use app::error::{ErrorBody, ErrorCode};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use app::error::ErrorResponse;

use crate::error::AppError;
use crate::state::AppState;

/// Paths anyone may reach: the load balancer's health check, and the steps of logging in and out.
fn is_open(path: &str) -> bool {
    matches!(
        path,
        "/api/v1/health" | "/auth/login" | "/auth/callback" | "/auth/logout" | "/auth/logged-out"
    )
}

/// How long a browser, having once seen an https deployer, refuses to reach it over plain http.
const HSTS: &str = "max-age=31536000";

pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let https = crate::auth::over_https(&state.auth.config());
    let mut response = admit(state, request, next).await;
    if https {
        response.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    response
}

async fn admit(state: AppState, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    // The load balancer's health check and Prometheus' scrape: open, like the deployer's port.
    if path == "/api/v1/health"
        || path == "/api/v1/ready"
        || path == "/api/v1/openapi.json"
        || path == "/metrics"
    {
        return next.run(request).await;
    }
    let auth = state.auth.config();
    if let Err(refusal) = check_host(request.headers(), &auth, state.catalog().config().listen) {
        return refusal;
    }
    if is_server_function(&path) && request.method() == Method::POST && !is_json(request.headers())
    {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::BadRequest,
            "server functions take JSON only (Content-Type: application/json)",
        );
    }
    // Logging out is open (an expired session logs out too) but a write all the same: another
    // site must not end a person's session.
    if path == "/auth/logout"
        && !is_safe(request.method())
        && let Err(refusal) = check_origin(request.headers(), auth.public_url.as_deref())
    {
        tracing::warn!(path, "refused a cross-site logout: {refusal}");
        return error(StatusCode::FORBIDDEN, ErrorCode::Forbidden, &refusal);
    }
    if is_open(&path) {
        return next.run(request).await;
    }
    let actor = match state.auth.authenticate(request.headers()).await {
        Ok(Some(actor)) => actor,
        Ok(None) => return unauthenticated(&request, state.auth.oidc.is_some()),
        Err(e) => return e.into_response(),
    };
    if actor.via() == Via::Session
        && !is_safe(request.method())
        && let Err(refusal) =
            check_origin(request.headers(), state.auth.config().public_url.as_deref())
    {
        tracing::warn!(
            path,
            actor = actor.name(),
            "refused a cross-site write: {refusal}"
        );
        return error(StatusCode::FORBIDDEN, ErrorCode::Forbidden, &refusal);
    }
    request.extensions_mut().insert(actor);
    next.run(request).await
}

fn is_server_function(path: &str) -> bool {
    path.starts_with("/api/") && !path.starts_with("/api/v1/")
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        })
}

/// No credentials: a person opening a page is sent to log in (back to where they were after);
/// everything else is a 401 in the JSON error shape.
fn unauthenticated(request: &Request, can_log_in: bool) -> Response {
    let wants_page = request.method() == Method::GET
        && !request.uri().path().starts_with("/api/")
        && request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"));
    if wants_page && can_log_in {
        let next = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        return Redirect::to(&format!("/auth/login?next={}", urlencode(&next))).into_response();
    }
    let message = if can_log_in {
        "log in first (single sign-on at /auth/login), or send an API token as `Authorization: Bearer <token>`"
    } else {
        "send an API token as `Authorization: Bearer <token>` (single sign-on is not configured)"
    };
    let mut response = AppError::Unauthorized(message.into()).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"deployer\""),
    );
    response
}

/// Requests must name the deployer's own host: a page on another site whose name an attacker
/// points at the deployer's address (DNS rebinding) names its own.
fn check_host(
    headers: &HeaderMap,
    auth: &crate::config::auth::Auth,
    listen: std::net::SocketAddr,
) -> Result<(), Response> {
    let Some(host) = headers.get(header::HOST) else {
        return Ok(());
    };
    let host = host.to_str().unwrap_or_default().to_ascii_lowercase();
    if host_allowed(&host, auth, listen) {
        return Ok(());
    }
    tracing::warn!(host, "refused a request for an unknown host");
    Err(error(
        StatusCode::BAD_REQUEST,
        ErrorCode::BadRequest,
        &format!(
            "this deployer does not answer for the host {:?}; add it to auth.allowed_hosts if it is really its name",
            host.chars().take(100).collect::<String>()
        ),
    ))
}

pub fn host_allowed(
    host: &str,
    auth: &crate::config::auth::Auth,
    listen: std::net::SocketAddr,
) -> bool {
    let name = host_name(host);
    if matches!(name, "localhost" | "127.0.0.1" | "[::1]") {
        return true;
    }
    let public = auth
        .public_url
        .as_deref()
        .and_then(|u| u.split_once("://"))
        .map(|(_, h)| h.to_ascii_lowercase());
    public.as_deref() == Some(host)
        || auth
            .allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host) || h.eq_ignore_ascii_case(name))
        || (!listen.ip().is_unspecified() && listen.to_string() == host)
}

/// The host without its port (`[::1]:3000` → `[::1]`).
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// A write carrying the session cookie must come from the deployer's own page: its `Origin`
/// names the host the request is for, or (without `Origin`) `Sec-Fetch-Site` says same-origin.
/// For the host of `public_url`, the `Origin` is `public_url` itself, scheme included: a page of
/// the same host on plain http (which anyone on the network can write) is another origin.
fn check_origin(headers: &HeaderMap, public_url: Option<&str>) -> Result<(), String> {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default().to_ascii_lowercase();
        let origin_host = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        let public = public_url.map(str::to_ascii_lowercase);
        let public_host = public
            .as_deref()
            .and_then(|u| u.split_once("://"))
            .map(|(_, h)| h);
        let scheme_agrees =
            |h: &str| public_host != Some(h) || public.as_deref() == Some(origin.as_str());
        return match (origin_host, host) {
            (Some(o), Some(h)) if o == h && scheme_agrees(&h) => Ok(()),
            _ => Err(format!(
                "a change carrying the session cookie must come from the deployer's own page; this one came from {:?}",
                origin.chars().take(100).collect::<String>()
            )),
        };
    }
    match headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
    {
        Some("same-origin" | "none") => Ok(()),
        Some(site) => Err(format!(
            "a change carrying the session cookie must come from the deployer's own page; this one is {site}"
        )),
        None => Err(
            "a change carrying the session cookie must come from the deployer's own page (it has no Origin); \
             scripts use an API token"
                .into(),
        ),
    }
}

fn error(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    (
        status,
        axum::Json(ErrorResponse {
            error: ErrorBody::new(code, message),
        }),
    )
        .into_response()
}

/// Headers every answer carries: no sniffing, no framing, no referrer to other sites, and a
/// content security policy (pages set their own, with the nonce of their inline scripts; any
/// other answer gets one that allows nothing).
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    response
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_public_and_listed_hosts_are_accepted_others_refused() {
        let auth = crate::config::auth::Auth {
            public_url: Some("https://deployer.example.com".into()),
            allowed_hosts: vec!["deployer.internal:8080".into()],
            ..Default::default()
        };
        let listen = "0.0.0.0:3000".parse().unwrap();
        for ok in [
            "127.0.0.1:3000",
            "localhost:41234",
            "localhost",
            "[::1]:3000",
            "deployer.example.com",
            "deployer.internal:8080",
        ] {
            assert!(host_allowed(ok, &auth, listen), "{ok}");
        }
        for bad in [
            "evil.example",
            "deployer.example.com.evil.example",
            "0.0.0.0:3000",
            "127.0.0.1.evil:3000",
        ] {
            assert!(!host_allowed(bad, &auth, listen), "{bad}");
        }
    }

    #[test]
    fn writes_with_the_cookie_need_the_own_origin() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "127.0.0.1:3000".parse().unwrap());
        assert!(
            check_origin(&headers, None).is_err(),
            "no Origin, no Sec-Fetch-Site"
        );
        headers.insert("sec-fetch-site", "same-origin".parse().unwrap());
        assert!(check_origin(&headers, None).is_ok());
        headers.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(check_origin(&headers, None).is_err());
        headers.insert(header::ORIGIN, "http://127.0.0.1:3000".parse().unwrap());
        assert!(
            check_origin(&headers, None).is_ok(),
            "Origin decides when present"
        );
        headers.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(check_origin(&headers, None).is_err());
        headers.insert(header::ORIGIN, "null".parse().unwrap());
        assert!(check_origin(&headers, None).is_err());
    }

    #[test]
    fn the_public_urls_host_takes_writes_only_from_its_scheme() {
        let public = Some("https://Deployer.example.com");
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "deployer.example.com".parse().unwrap());
        headers.insert(
            header::ORIGIN,
            "http://deployer.example.com".parse().unwrap(),
        );
        assert!(check_origin(&headers, public).is_err());
        assert!(
            check_origin(&headers, None).is_ok(),
            "no public URL: as before"
        );
        headers.insert(
            header::ORIGIN,
            "https://deployer.example.com".parse().unwrap(),
        );
        assert!(check_origin(&headers, public).is_ok());
        // Another name the deployer answers for (`allowed_hosts`): its own origin, as before.
        headers.insert(header::HOST, "deployer.internal:8080".parse().unwrap());
        headers.insert(
            header::ORIGIN,
            "http://deployer.internal:8080".parse().unwrap(),
        );
        assert!(check_origin(&headers, public).is_ok());
    }
}
