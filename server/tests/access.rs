//! Login and permissions: nobody gets in without a session or a token (every route, every
//! server function, every page — walked from the router's own tables), a viewer cannot deploy, a
//! deployer cannot reach PRD or resume, tokens are shown once, kept hashed and revoked at once,
//! writes carrying the session cookie must come from the deployer's own page, and the audit log
//! names the person or the token.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::Harness;
use deployer::store::Session;
use serde_json::{Value, json};

fn request(method: Method, uri: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .unwrap()
}

#[tokio::test]
async fn every_route_server_function_and_page_needs_credentials() {
    let h = Harness::start().await;
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
    ];
    let paths = deployer::api::paths();
    assert!(paths.len() >= 14, "the REST table is walked: {paths:?}");
    for path in paths {
        let uri = format!(
            "/api/v1{}",
            path.replace("{project}", "web").replace("{id}", "d-1")
        );
        for method in &methods {
            let (status, headers, body) = h.anonymous(request(method.clone(), &uri)).await;
            if path == "/openapi.json" {
                // The API's description: open, like the load balancer's check.
                continue;
            }
            if path == "/health" {
                // The load balancer's check: open, and says nothing beyond "ok".
                if *method == Method::GET {
                    assert_eq!(status, StatusCode::OK);
                    assert_eq!(
                        serde_json::from_str::<Value>(&body).unwrap(),
                        json!({"status": "ok"})
                    );
                }
                continue;
            }
            if path == "/ready" {
                // The load balancer's other check: open, and says how far the first sweep is.
                if *method == Method::GET {
                    assert!(
                        status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE,
                        "{status}: {body}"
                    );
                    let report: Value = serde_json::from_str(&body).unwrap();
                    assert!(report["ready"].is_boolean(), "{report}");
                }
                continue;
            }
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}: {body}");
            let body: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body["error"]["code"], "unauthorized", "{method} {uri}");
            assert!(headers.contains_key("www-authenticate"));
        }
    }

    // Server functions, from Leptos' own registry.
    let functions: Vec<_> = leptos::server_fn::axum::server_fn_paths().collect();
    assert!(functions.len() >= 12, "{functions:?}");
    for (path, method) in functions {
        let (status, _, body) = h.anonymous(request(method.clone(), path)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
    }

    // Pages (from the app's route list) and the static files.
    let pages = deployer::page_routes();
    assert!(pages.len() >= 4);
    for page in pages {
        let path = page
            .path()
            .split('/')
            .map(|s| if s.starts_with(':') { "web" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        let get = Request::get(&path)
            .header("accept", "text/html")
            .body(Body::empty())
            .unwrap();
        let (status, _, body) = h.anonymous(get).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "page {path}: {body}");
    }
    let (status, _, _) = h
        .anonymous(
            Request::get("/pkg/deployer.css")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A token that was never issued is refused, not ignored.
    let (status, body) = h
        .with_token(
            "dpl_made-up",
            Request::get("/api/v1/projects")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    security_headers_and_the_nonce_policy(&h).await;
}

/// Creates a token with this name and role (as the harness's admin) and answers its secret.
fn deploy(project: &str, env: &str, build: &str) -> Request<Body> {
    Request::post("/api/v1/deployments")
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"project": project, "environment": env, "build": build}).to_string(),
        ))
        .unwrap()
}

fn json_request(method: Method, uri: &str, body: Value) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn viewers_look_deployers_deploy_where_allowed_and_only_admins_resume() {
    let h = Harness::start().await;
    h.put_build("web", "web-master-1").await;
    let viewer = h.new_token("dashboard", "viewer").await;
    let deployer = h.new_token("jenkins-dev", "deployer").await;

    // A viewer sees everything and changes nothing.
    let (status, _) = h
        .with_token(
            &viewer,
            Request::get("/api/v1/projects")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, refused) = h
        .with_token(&viewer, deploy("web", "DEV", "web-master-1"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["error"]["code"], "forbidden");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("deploy to DEV") && message.contains("dashboard"),
        "{message}"
    );
    let (status, _) = h
        .with_token(
            &viewer,
            json_request(Method::PUT, "/api/v1/pause", json!({"reason": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The same refusal through the page's server function.
    let mut page = json_request(
        Method::POST,
        "/api/request_deployment",
        json!({"project": "web", "environment": "DEV", "build": "web-master-1"}),
    );
    page.headers_mut()
        .insert("accept", "application/json".parse().unwrap());
    let (status, body) = h.with_token(&viewer, page).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "forbidden");

    // A deployer (DEV and STG) deploys to DEV; PRD needs its own right.
    let (status, started) = h
        .with_token(&deployer, deploy("web", "DEV", "web-master-1"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let done = h.wait(started["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        done["actor"], "jenkins-dev",
        "the token's name is the actor"
    );
    let (status, refused) = h
        .with_token(&deployer, deploy("web", "PRD", "web-master-1"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("deploy to PRD") && message.contains("DEV, STG"),
        "{message}"
    );

    // Pausing is the emergency brake (any deployer); resuming needs an admin.
    let (status, _) = h
        .with_token(
            &deployer,
            json_request(Method::PUT, "/api/v1/pause", json!({"reason": "smoke"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, refused) = h
        .with_token(
            &deployer,
            Request::delete("/api/v1/pause")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("admin")
    );
    let (status, _) = h.unpause("").await;
    assert_eq!(status, StatusCode::OK, "the admin resumes");

    // Tokens are an admin's business.
    let (status, _) = h
        .with_token(
            &deployer,
            json_request(
                Method::POST,
                "/api/v1/tokens",
                json!({"name": "mine", "role": "admin"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // What each may do, as the page learns it.
    let (_, me) = h
        .with_token(
            &deployer,
            Request::get("/api/v1/me").body(Body::empty()).unwrap(),
        )
        .await;
    assert_eq!(me["name"], "jenkins-dev");
    assert_eq!(me["via"], "token");
    assert_eq!(me["deploy"], json!(["DEV", "STG"]));
    assert_eq!(me["can_pause"], true);
    assert_eq!(me["can_resume"], false);

    // The audit log names the token for its calls, and the harness's admin token for its own.
    let (_, trail) = h.audit("action=pause").await;
    assert_eq!(trail[0]["actor"], "jenkins-dev");
    let (_, trail) = h.audit("action=unpause").await;
    assert_eq!(trail[0]["actor"], "tester");
}

#[tokio::test]
async fn tokens_are_shown_once_kept_hashed_and_revoked_at_once() {
    let h = Harness::start().await;
    let (status, created) = h
        .post("/api/v1/tokens", json!({"name": "ci", "role": "deployer"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("dpl_") && secret.len() > 40);
    assert_eq!(created["role"], "deployer");
    assert_eq!(created["created_by"], "tester");

    // Listed without the secret; the database holds only its hash.
    let (_, list) = h.get("/api/v1/tokens").await;
    let text = list.to_string();
    assert!(
        text.contains("\"ci\"") && !text.contains(&secret[4..]),
        "{text}"
    );
    let mut stored = String::new();
    match &h.store {
        deployer::config::StoreLocation::Sqlite(_) => {
            for file in ["deployer.sqlite", "deployer.sqlite-wal"] {
                if let Ok(bytes) = std::fs::read(h.dir.path().join(file)) {
                    stored.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
        }
        deployer::config::StoreLocation::Postgres(url) => {
            use sqlx::Connection;
            let mut db = sqlx::PgConnection::connect(url).await.unwrap();
            let rows: Vec<String> = sqlx::query_scalar("SELECT row_to_json(t)::text FROM tokens t")
                .fetch_all(&mut db)
                .await
                .unwrap();
            stored = rows.join("\n");
        }
    }
    assert!(
        !stored.contains(&secret[4..]),
        "the secret is in the database"
    );
    assert!(
        stored.contains(&deployer::auth::hash(&secret)),
        "its hash is"
    );

    // Works, then revoked: 401 at once.
    let me = || Request::get("/api/v1/me").body(Body::empty()).unwrap();
    let (status, _) = h.with_token(&secret, me()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, revoked) = h
        .send_json("DELETE", &format!("/api/v1/tokens/{id}"), Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    assert_eq!(revoked["revoked_by"], "tester");
    let (status, body) = h.with_token(&secret, me()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // Bad requests lose nothing and say why.
    let (status, body) = h
        .post("/api/v1/tokens", json!({"name": "x", "role": "superuser"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("viewer")
    );
    let (status, _) = h
        .post("/api/v1/tokens", json!({"name": "", "role": "viewer"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = h
        .post(
            "/api/v1/tokens",
            json!({"name": "tester", "role": "viewer"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "an active token has that name"
    );
    let (status, _) = h
        .post("/api/v1/tokens", json!({"name": "ci", "role": "viewer"}))
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a revoked token's name is free again"
    );
    let (status, _) = h
        .send_json("DELETE", "/api/v1/tokens/t-nope", Value::Null)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Audited, without the secret.
    let (_, trail) = h.audit("").await;
    let actions: Vec<&str> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["token_created", "token_revoked", "token_created"]);
    assert!(!trail.to_string().contains(&secret[4..]));

    // The bootstrap token is an admin, audited as "bootstrap".
    let (status, _) = h
        .with_token(
            common::BOOTSTRAP_TOKEN,
            json_request(Method::PUT, "/api/v1/pause", json!({"reason": "first"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, trail) = h.audit("action=pause").await;
    assert_eq!(trail[0]["actor"], "bootstrap");
}

/// A person's session, as a finished login leaves it; answers the cookie's value.
async fn session(h: &Harness, user: &str, groups: &[&str], ttl: chrono::Duration) -> String {
    let id = deployer::auth::new_secret("");
    h.state
        .auth
        .store()
        .create_session(
            &deployer::auth::hash(&id),
            &Session {
                username: user.to_owned(),
                subject: Some(format!("subject-of-{user}")),
                display_name: format!("{user} (display)"),
                groups: groups.iter().map(|g| g.to_string()).collect(),
                expires_at: chrono::Utc::now() + ttl,
            },
        )
        .await
        .unwrap();
    id
}

fn with_cookie(mut request: Request<Body>, session: &str, origin: Option<&str>) -> Request<Body> {
    let headers = request.headers_mut();
    headers.insert(
        "cookie",
        format!("deployer_session={session}").parse().unwrap(),
    );
    headers.insert("host", "127.0.0.1:3000".parse().unwrap());
    if let Some(origin) = origin {
        headers.insert("origin", origin.parse().unwrap());
    }
    request
}

#[tokio::test]
async fn writes_with_the_session_cookie_must_come_from_the_deployers_own_page() {
    let h = Harness::start().await;
    let alice = session(&h, "alice", &["developers"], chrono::Duration::hours(1)).await;
    let own = Some("http://127.0.0.1:3000");
    let evil = Some("http://evil.example");

    let (status, _, me) = h
        .anonymous(with_cookie(
            Request::get("/api/v1/me").body(Body::empty()).unwrap(),
            &alice,
            None,
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let me: Value = serde_json::from_str(&me).unwrap();
    assert_eq!(me["name"], "alice");
    assert_eq!(me["display_name"], "alice (display)");
    assert_eq!(me["roles"], json!(["deployer"]));

    let pause = || json_request(Method::PUT, "/api/v1/pause", json!({"reason": "x"}));
    // Cross-site: refused (JSON to a REST route, to a server function, a form post, no Origin).
    let (status, _, body) = h.anonymous(with_cookie(pause(), &alice, evil)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let fn_call = || {
        json_request(
            Method::POST,
            "/api/pause_deployments",
            json!({"reason": "x", "environment": null, "cancel_in_flight": false}),
        )
    };
    let (status, _, body) = h.anonymous(with_cookie(fn_call(), &alice, evil)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let form = |uri: &str| {
        Request::post(uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("reason=x&cancel_in_flight=false"))
            .unwrap()
    };
    let (status, _, body) = h
        .anonymous(with_cookie(form("/api/pause_deployments"), &alice, evil))
        .await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{status} {body}"
    );
    let (status, _, _) = h
        .anonymous(with_cookie(form("/api/pause_deployments"), &alice, own))
        .await;
    assert_eq!(
        status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "server functions take JSON only"
    );
    let (status, _, _) = h
        .anonymous(with_cookie(form("/api/v1/deployments"), &alice, evil))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = h.anonymous(with_cookie(pause(), &alice, None)).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "no Origin, no Sec-Fetch-Site"
    );
    let (_, trail) = h.audit("action=pause").await;
    assert_eq!(trail, json!([]), "nothing cross-site got through");

    // From the deployer's own page: allowed, and audited as the person.
    let (status, _, body) = h.anonymous(with_cookie(fn_call(), &alice, own)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, trail) = h.audit("action=pause").await;
    assert_eq!(trail[0]["actor"], "alice");

    // A request for a host that is not the deployer's (DNS rebinding) is refused.
    let mut foreign = with_cookie(
        Request::get("/api/v1/me").body(Body::empty()).unwrap(),
        &alice,
        None,
    );
    foreign
        .headers_mut()
        .insert("host", "evil.example".parse().unwrap());
    let (status, _, _) = h.anonymous(foreign).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Logout ends the session; an expired one is no session.
    let logout = with_cookie(
        Request::post("/auth/logout").body(Body::empty()).unwrap(),
        &alice,
        own,
    );
    let (status, headers, _) = h.anonymous(logout).await;
    assert!(status.is_redirection(), "{status}");
    let cleared = headers["set-cookie"].to_str().unwrap();
    assert!(
        cleared.contains("deployer_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let (status, _, _) = h
        .anonymous(with_cookie(
            Request::get("/api/v1/me").body(Body::empty()).unwrap(),
            &alice,
            None,
        ))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let old = session(&h, "bob", &["admins"], chrono::Duration::seconds(-1)).await;
    let (status, _, _) = h
        .anonymous(with_cookie(
            Request::get("/api/v1/me").body(Body::empty()).unwrap(),
            &old,
            None,
        ))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Security headers on every answer, and the page's nonce policy. Run inside the route walk:
/// Leptos' route generation (which the walk calls directly) must not run while another test of
/// this process renders a page.
async fn security_headers_and_the_nonce_policy(h: &Harness) {
    let mut page = Request::get("/audit")
        .header("accept", "text/html")
        .body(Body::empty())
        .unwrap();
    page.headers_mut().insert(
        "authorization",
        format!("Bearer {}", h.token).parse().unwrap(),
    );
    let (status, headers, html) = h.anonymous(page).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(headers.contains_key("referrer-policy"));
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("the page's policy names a nonce");
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "the inline scripts carry it"
    );

    let (_, headers, _) = h
        .anonymous(Request::get("/api/v1/health").body(Body::empty()).unwrap())
        .await;
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
}

/// A preview makes a change set in the environment's account (macros run): it needs the right
/// to deploy there, is a POST (a GET, which any site's link sends with a person's cookie, is
/// for API tokens only), and each person gets a few at a time and a minute.
#[tokio::test]
async fn a_preview_needs_the_deploy_right_is_not_a_cross_site_get_and_is_bounded_per_person() {
    let h = Harness::start().await;
    h.put_build("web", "web-master-1").await;
    let body = json!({"environment": "DEV", "build": "web-master-1"});
    let viewer = h.token_of("vera", "vera", "viewer").await;
    let (status, refused) = h
        .with_token(
            &viewer,
            json_request(Method::POST, "/api/v1/projects/web/preview", body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let dev_only = h.token_of("dave", "dave", "deployer").await;
    let (status, refused) = h
        .with_token(
            &dev_only,
            json_request(
                Method::POST,
                "/api/v1/projects/web/preview",
                json!({"environment": "PRD", "build": "web-master-1"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let (status, changes) = h
        .with_token(
            &dev_only,
            json_request(Method::POST, "/api/v1/projects/web/preview", body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changes}");
    assert!(
        changes.as_array().is_some_and(|c| !c.is_empty()),
        "{changes}"
    );

    // A GET with a person's cookie (a top-level cross-site navigation sends it) is refused.
    let alice = session(&h, "alice", &["admins"], chrono::Duration::hours(1)).await;
    let (status, _, text) = h
        .anonymous(with_cookie(
            request(
                Method::GET,
                "/api/v1/projects/web/preview?environment=DEV&build=web-master-1",
            ),
            &alice,
            None,
        ))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");

    // Bounded per person, whatever token they use: past the minute's share, 429.
    let mut last = StatusCode::OK;
    for _ in 0..25 {
        let (status, _) = h
            .with_token(
                &dev_only,
                json_request(Method::POST, "/api/v1/projects/web/preview", body.clone()),
            )
            .await;
        last = status;
        if status != StatusCode::OK {
            break;
        }
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}

/// A person's groups are read when they log in, and kept by the session: an admin who takes a
/// person's rights away ends their sessions at once, and the person logs in again with what the
/// identity provider gives them now.
#[tokio::test]
async fn an_admin_ends_a_persons_sessions_at_once() {
    let h = Harness::start().await;
    let alice = session(&h, "alice", &["admins"], chrono::Duration::days(30)).await;
    let other = session(&h, "alice", &["admins"], chrono::Duration::days(30)).await;
    let bob = session(&h, "bob", &["developers"], chrono::Duration::days(1)).await;
    let me = |cookie: String| {
        let h = &h;
        async move {
            let (status, _, _) = h
                .anonymous(with_cookie(
                    request(Method::GET, "/api/v1/me"),
                    &cookie,
                    None,
                ))
                .await;
            status
        }
    };
    assert_eq!(me(alice.clone()).await, StatusCode::OK);

    let viewer = h.token_of("vera", "vera", "viewer").await;
    let (status, _) = h
        .with_token(
            &viewer,
            request(Method::DELETE, "/api/v1/sessions?user=alice"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "admins only");
    let (status, refused) = h.send_json("DELETE", "/api/v1/sessions", Value::Null).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");

    let (status, ended) = h
        .send_json("DELETE", "/api/v1/sessions?user=alice", Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{ended}");
    assert_eq!(ended["ended"], 2);
    assert_eq!(me(alice).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(other).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(bob).await, StatusCode::OK, "nobody else's");
    let (_, trail) = h.audit("action=sessions_ended").await;
    assert!(
        trail[0]["detail"].as_str().unwrap().contains("alice"),
        "{trail}"
    );
}
