//! Logging in and staying logged in, against an identity provider of the test's own that speaks
//! the protocol as real ones do (discovery, a token endpoint signing ID tokens with RSA, userinfo):
//! a login returns only to a path of this site, a callback is taken only from the browser that
//! started the login, starting logins is bounded, logging out cannot be done from another site,
//! and an https deployer's writes, cookie and headers hold to https.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use common::Harness;
use openidconnect::core::{
    CoreIdToken, CoreIdTokenClaims, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
    CoreRsaPrivateSigningKey,
};
use openidconnect::{
    Audience, EmptyAdditionalClaims, EndUserUsername, IssuerUrl, JsonWebKeyId, Nonce,
    PrivateSigningKey, StandardClaims, SubjectIdentifier,
};
use serde_json::{Value, json};

/// The identity provider's signing key: made for these tests (`openssl genrsa -traditional
/// 2048`), it signs nothing else.
const TEST_ONLY_SIGNING_KEY: &str = concat!(
    "-----BEGIN RSA PRIVATE KEY-----\n",
    "MIIEpAIBAAKCAQEAqo8nemVOr65/P28hilUqxTcJmNt6TVF9iRaGRaaeh+A9vz6r\n",
    "6IzFTddJIQVMTLmL2H5Gy9jvIqC73LTVNOyf3pE1/roonJPfIX0b2l9EMuoXmoX2\n",
    "xFqPZw3PNkrQC74iD0+N93HxuoWnAAZVP/zQZroYm6plfYT2qkmogz1bq3peXtp+\n",
    "T85I+ih/wI6+7BYGNqFARoTJUJBUXMqCxIyvkeYc2K4qCGko7EFHpxdTe4CQCf0y\n",
    "1rToo9yTVDrTmVCAOiS/fDBVyf+soPOY/Mq7pzTSZh8MizyQgxEHiOnrMSmxamNt\n",
    "tVxa6ZlluCe6+TWL7AUrL+ua8XH3WkdN0pzojQIDAQABAoIBAEHEzPTaDuMY1zGn\n",
    "UVgt6j29MOK0M2+QLmfH+0PtcbE0i6rs6E5WxhhznVvx1o+5ds8nNnaRsvj34SlE\n",
    "w/hSDH2/IgKVV2a1cLPRsgVdegdmFG7+HH9v6l9TSGWHqLz2dtzPkQ9rbUq/Efwk\n",
    "9QelHdmXBjk0lkk2FgXpPGVLKkevWT056Z+QLD9G7XQux02m9oTYzLE/Tyzmabf6\n",
    "k2ZFr6VI9yYi2o5O6ga0Z3tVKNZC3KoYp0OmVQEDtMCvlEDmLd3aljKYta7iuPN6\n",
    "O17QHLhUIy2YlVLb7cLfXO2Xqeh9J7FhDfe9OCdd1o9x1sowSfY026RRe3cmszuP\n",
    "Js4kdHMCgYEA3TpqbiiOjE+SqZa38PVf6ZslP2PSSrzZoLE7r5BhZDFqCtJ3CgTf\n",
    "XLnQPpsOnUMHfxXq7cpOp/4LTz5nQGdt25N/i5ID5JPYvKHLK0lx2iBKd47ifAxs\n",
    "G+qd7MLx/Hvvg29mXTy9s8FX5urnoUlKqyZxJQD/IIsDvsOXTQuwFMMCgYEAxV32\n",
    "48OSa3wxeKwzFXTxiut3sVgqIWEFtuxHzg3hyC27duxJoCLixWDbnG5NucbrNjEQ\n",
    "3PHNWp9gsZoGRrQbZMvWilY9wv1uIKyh0qFYrEeCG2jTwqjfFkWqhc/yEn7hFaNB\n",
    "WNoedYOt12K5ddWXEjN8QCfKfThP5epIBm/N+G8CgYEAiBTbzQEjlkmIRMtSQGUf\n",
    "Z3ooslJ7079Q+xiqRzc/wTroKNoHoWEX6FjgMPJ+Tdwia1kXFshgE9QgLtGK/8Hf\n",
    "gLa9OSRLQrpzEq1PZUQbRXqhc+Ovi3C0u4NZO387DP1LeoT26Zloc38VzBRpAPwt\n",
    "cxQFeyaeyOzaE+kKU7lBybMCgYBXZEr9AU0lMOHK+BzKhHSruaXPLiXBj+9y1t7Y\n",
    "m4b9F1rpxqi3MptNIJ09gA4Ek9L0tPctjhgK54VuPrBGwFtc33FI4fUJESShbS9e\n",
    "T7ku158BugICMLpPZ1uhUrlyfSH3bclyqWpRSJRCSeGrDn+NPKTo13Wuyq9+M6Xe\n",
    "y8TdGwKBgQDAVJOGW6fhhh1WxoGRMuN/bQPi1TeSQm7FPMEwlMLo/IZvbI5Tt9f6\n",
    "LLqlqotGWP0BxvefmKQBIM8g2rawCr+wSNe6OpWrrC+ZdnecmIwXR8uDUJ0QqRv1\n",
    "iKu6UCXcRxRCk7hCMt/R0cl+4z8PA5UaLMOLkP04Ogo71b2/GJZ65A==\n",
    "-----END RSA PRIVATE KEY-----\n",
);

/// The key the identity provider rotates to (made as the one above, for these tests only).
const TEST_ONLY_NEXT_SIGNING_KEY: &str = concat!(
    "-----BEGIN RSA PRIVATE KEY-----\n",
    "MIIEogIBAAKCAQEAoWJ3Mxy1IxBArq+mI6XJr8IytmKpDagC/6/Ux2ETy+O5Ye0h\n",
    "e9w0N+N07Oa2gya+Y9SWPVPQVyPMNi4A76C2wQrW4kT7w/TFTVKCZiGfAPFwmq4y\n",
    "Eu/Dl5R632BCDmR4FEA+ibMRpSl/xHINFBrkrDUV8Lps9+FQyI1AP4p2WzdGitR4\n",
    "t6wLXLpBzWOc+ihuDRJjeEwy/iGkDJ/IljD02kYoh8HaFotMRbWFkoAC3zapWfr6\n",
    "tjpfaZKpb9FPsC6cSz3dDFCuIXpX0964LZTOHP8roEBy73pP7X0F5oq1l7jEtDXg\n",
    "J0Q6AR1vWYAB8ViJTVdx0XIVJjLUIc/s6XXPewIDAQABAoIBAA1TFupmbWI2vlBt\n",
    "+japQoy7aPp8DN8uxwibWOMZVcwYwj6emIwkcz9GDWpd5iXP9hpB/CGWIPaA4yR6\n",
    "CeO/DjfEEFfgQDU+qWen71JFZl5qkNSEm2fK2ghS3w5AYVPU4cEySLePzF4pnf33\n",
    "OLM3QTgirewRSFvzA3t7hhl48iq3tQM+/qZpLr3E6HTU6/ruelqBgU1lWmY3wUic\n",
    "VvcWIewZPPu+6aoCPOVCySlBwzO2bTdGNA1BdefxrwYhyVEDcY466+hw666j7ASl\n",
    "xmvkWx+V5Qw/O/XQNAkdXROyk5k/cT6Ku1X5DCZYl2JEJx/3F4df1TdV0waxVlG/\n",
    "4IlZNNECgYEA1pF05DlucBOSWpDUjEEDtOal2CYH7Vi3ollHlGjDGy6+z1jPIUZB\n",
    "s5uhkt2FMpPtMzk/DhrkG7s/D0e9fM0cOs7iMbMimpIJFCPBD6GBSVeuP2RdNLqb\n",
    "N2z2pa0yevIzrJcaSnLBNAKxu0LSzzJgQDb9xeR9i3KNo4mp2T7vu7kCgYEAwIwJ\n",
    "hrTYcsowjO6eo7m8oB+SEimYcrTgo5Tk4Sx6b0Gvs2gCmVsCEQwfF/BPtxol+0Z3\n",
    "7ED+98ZhRs2gsd+VBuaMfN8sRdNOIOMsmvwSbgRVYyrLh8XfPqrBOMOCXoRCIDRi\n",
    "yy45l0R0CwF0sLrL1knm9jIrWrKKONKFcTyVxtMCgYBm9fV5bnWoIjwgaU8U3j3B\n",
    "GMyMI/O52NCFfwHyHTNCX/P/20XJWcU9QnkN2G6KDqHL6rRvOEgtZnSkCHDM6j+Z\n",
    "mJzB7Iu2UE069M03ivBXGVPr52UyYDkLJ6ZTagDHLmHNd9SN1PMQ2hofGbm+4xV8\n",
    "uuabh0EXISkGSJDQRnsTQQKBgAJq/8egR8ORRHDQok9eCr9cBiKSQSbXnKaRPRqS\n",
    "y2rQQVuYZ8fzO6BpLY7IZsfe3TE9nk3qNwl3hUs1U9pH+4Adrw/2YYDy+V0yXSIJ\n",
    "HlYhWc0oAWxQENChplGHKwDy2j27Sq5Qg0qiAm8M8qExh1PGk87trFu0OEYkZqaY\n",
    "Yy0fAoGAYiSuc0wJNvLeI/AOvqbfNBkuQPhLBzXEJ2WzvHP0iVzVsijZodFG8oYf\n",
    "LKBYTMJiwLeCT1bY1quMda86troO1FLnheuh9QPS640fuQbEQFKGCJUuyQlzpy4i\n",
    "E/IQlShc0QlyXkxCnqf/mlfA9h5snMyyEPluglA462Szr2WVrnA=\n",
    "-----END RSA PRIVATE KEY-----\n",
);

const CLIENT_ID: &str = "deployer";
const HTTPS: &str = "https://deployer.example.com";

/// An identity provider on a local port, logging everyone in as `alice` of `developers`.
struct IdentityProvider {
    issuer: String,
    /// The nonce of the login being finished (read from the authorization URL, as the
    /// provider's login page would keep it).
    nonce: Arc<Mutex<Option<String>>>,
    keys: Arc<Mutex<Keys>>,
    /// How many times its key set was read.
    jwks_reads: Arc<AtomicUsize>,
}

/// A key: its PEM and its id (`kid`).
type Key = (&'static str, &'static str);

/// The key the provider signs ID tokens with, and the keys its key set publishes.
#[derive(Clone)]
struct Keys {
    signing: Key,
    published: Vec<Key>,
}

impl IdentityProvider {
    fn use_keys(&self, signing: Key, published: &[Key]) {
        *self.keys.lock().unwrap() = Keys {
            signing,
            published: published.to_vec(),
        };
    }
}

fn signing_key((pem, kid): Key) -> CoreRsaPrivateSigningKey {
    CoreRsaPrivateSigningKey::from_pem(pem, Some(JsonWebKeyId::new(kid.to_owned()))).unwrap()
}

async fn identity_provider() -> IdentityProvider {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let nonce: Arc<Mutex<Option<String>>> = Arc::default();
    let discovery = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    });
    let first: Key = (TEST_ONLY_SIGNING_KEY, "key-1");
    let keys = Arc::new(Mutex::new(Keys {
        signing: first,
        published: vec![first],
    }));
    let jwks_reads: Arc<AtomicUsize> = Arc::default();
    let jwks = {
        let (keys, reads) = (keys.clone(), jwks_reads.clone());
        move || {
            reads.fetch_add(1, Ordering::SeqCst);
            let published = keys.lock().unwrap().published.clone();
            let set = CoreJsonWebKeySet::new(
                published
                    .into_iter()
                    .map(|key| signing_key(key).as_verification_key())
                    .collect(),
            );
            async move { axum::Json(serde_json::to_value(set).unwrap()) }
        }
    };
    let token = {
        let (issuer, nonce, keys) = (issuer.clone(), nonce.clone(), keys.clone());
        move || {
            let (issuer, nonce) = (issuer.clone(), nonce.lock().unwrap().clone());
            let key = signing_key(keys.lock().unwrap().signing);
            async move {
                let now = chrono::Utc::now();
                let claims = CoreIdTokenClaims::new(
                    IssuerUrl::new(issuer).unwrap(),
                    vec![Audience::new(CLIENT_ID.to_owned())],
                    now + chrono::Duration::minutes(5),
                    now,
                    StandardClaims::new(SubjectIdentifier::new("alice".to_owned()))
                        .set_preferred_username(Some(EndUserUsername::new("alice".to_owned()))),
                    EmptyAdditionalClaims {},
                )
                .set_nonce(nonce.map(Nonce::new));
                let id_token = CoreIdToken::new(
                    claims,
                    &key,
                    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
                    None,
                    None,
                )
                .unwrap();
                axum::Json(json!({
                    "access_token": "access-1",
                    "token_type": "bearer",
                    "expires_in": 300,
                    "id_token": id_token,
                }))
            }
        }
    };
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || async move { axum::Json(discovery) }),
        )
        .route("/jwks", axum::routing::get(jwks))
        .route("/token", axum::routing::post(token))
        .route(
            "/userinfo",
            axum::routing::get(|| async {
                axum::Json(json!({"sub": "alice", "groups": ["developers"]}))
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    IdentityProvider {
        issuer,
        nonce,
        keys,
        jwks_reads,
    }
}

/// A deployer that logs people in with `idp`, at `public_url` (`None`: its listen address).
async fn deployer(idp: &IdentityProvider, public_url: Option<&str>) -> Harness {
    let issuer = idp.issuer.clone();
    let public_url = public_url.map(str::to_owned);
    Harness::start_configured(move |config, _| {
        config.auth.public_url = public_url;
        config.auth.oidc = Some(deployer::config::auth::Oidc {
            issuer,
            client_id: CLIENT_ID.to_owned(),
            client_secret_env: "DEPLOYER_OIDC_CLIENT_SECRET".to_owned(),
            client_secret: Some("client-secret".into()),
            groups_claim: "groups".to_owned(),
            scopes: Vec::new(),
        });
    })
    .await
}

/// A login started at `/auth/login?next=…`: where the provider was asked to send the browser
/// back with, and the cookies the browser was given.
struct Started {
    state: String,
    /// `name=value; …`, as the browser sends them back.
    cookies: String,
}

async fn start_login(h: &Harness, idp: &IdentityProvider, next: &str) -> Started {
    let (status, headers, body) = h
        .anonymous(
            Request::get(format!("/auth/login?next={next}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(status.is_redirection(), "{status} {body}");
    let location = reqwest::Url::parse(headers["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(&idp.issuer), "{location}");
    let param = |name: &str| {
        location
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    *idp.nonce.lock().unwrap() = Some(param("nonce"));
    Started {
        state: param("state"),
        cookies: given_cookies(&headers),
    }
}

/// The cookies a response sets (not those it clears), as `name=value; …`.
fn given_cookies(headers: &HeaderMap) -> String {
    set_cookies(headers)
        .iter()
        .filter(|c| !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("; ")
}

fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The provider sends the browser back (with these cookies, if any).
async fn callback(
    h: &Harness,
    state: &str,
    cookies: Option<&str>,
) -> (StatusCode, HeaderMap, String) {
    let mut request = Request::get(format!(
        "/auth/callback?code=code-1&state={}",
        common::urlencode(state)
    ));
    if let Some(cookies) = cookies.filter(|c| !c.is_empty()) {
        request = request.header("cookie", cookies);
    }
    h.anonymous(request.body(Body::empty()).unwrap()).await
}

/// A whole login, from `/auth/login?next=…` to the callback; answers the callback's answer.
async fn log_in(h: &Harness, idp: &IdentityProvider, next: &str) -> (StatusCode, HeaderMap) {
    let started = start_login(h, idp, next).await;
    let (status, headers, body) = callback(h, &started.state, Some(&started.cookies)).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    (status, headers)
}

fn request(
    method: &str,
    uri: &str,
    cookie: &str,
    host: &str,
    origin: Option<&str>,
) -> Request<Body> {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("cookie", cookie)
        .header("host", host);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    if method == "PUT" {
        return request
            .header("content-type", "application/json")
            .body(Body::from(json!({"reason": "x"}).to_string()))
            .unwrap();
    }
    request.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn logins_go_on_when_the_provider_rotates_its_signing_key() {
    let idp = identity_provider().await;
    let h = deployer(&idp, None).await;
    log_in(&h, &idp, "/").await;

    // A new key (a new kid) signs, the old one is no longer published: the deployer's cached
    // key set has not got it, so it reads the provider's again — no restart.
    let next: Key = (TEST_ONLY_NEXT_SIGNING_KEY, "key-2");
    idp.use_keys(next, &[next]);
    let (_, headers) = log_in(&h, &idp, "/").await;
    assert!(
        set_cookies(&headers)
            .iter()
            .any(|c| c.starts_with("deployer_session=")),
        "logged in with the new key"
    );

    // Tokens signed with keys the provider does not publish (a key id no key set has): refused,
    // and they do not make the deployer read the key set once each.
    idp.use_keys((TEST_ONLY_SIGNING_KEY, "key-unknown"), &[next]);
    let reads = idp.jwks_reads.load(Ordering::SeqCst);
    for _ in 0..10 {
        let started = start_login(&h, &idp, "/").await;
        let (status, _, page) = callback(&h, &started.state, Some(&started.cookies)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{page}");
        assert!(page.contains("No matching key"), "{page}");
    }
    let more = idp.jwks_reads.load(Ordering::SeqCst) - reads;
    assert!(
        more <= 1,
        "10 tokens with an unknown key read the key set {more} times"
    );

    // The provider publishes the key again: logins work again.
    idp.use_keys(next, &[next]);
    log_in(&h, &idp, "/").await;
}

#[tokio::test]
async fn a_login_returns_only_to_a_path_of_this_site() {
    let idp = identity_provider().await;
    let h = deployer(&idp, None).await;
    for (next, back_to) in [
        // Browsers drop tabs and newlines from URLs: `/\t/evil.example` is `//evil.example`.
        ("/%09/evil.example/phish", "/"),
        ("/%0A/evil.example", "/"),
        ("%2F%2Fevil.example", "/"),
        ("https%3A%2F%2Fevil.example%2F", "/"),
        ("/%5Cevil.example", "/"),
        ("/projects/web%3Ftab%3Dstacks", "/projects/web?tab=stacks"),
    ] {
        let (_, headers) = log_in(&h, &idp, next).await;
        assert_eq!(headers["location"], back_to, "next={next}");
    }
}

#[tokio::test]
async fn a_callback_is_taken_only_from_the_browser_that_started_the_login() {
    let idp = identity_provider().await;
    let h = deployer(&idp, None).await;
    let started = start_login(&h, &idp, "/").await;

    // An attacker's callback URL opened in a victim's browser: no cookie of this login.
    let (status, _, page) = callback(&h, &started.state, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("another browser"), "{page}");
    assert!(
        !started.cookies.is_empty(),
        "the login binds itself to the browser with a cookie"
    );
    // A cookie of the same name with another value is no better.
    let name = started.cookies.split('=').next().unwrap();
    let (status, _, page) = callback(&h, &started.state, Some(&format!("{name}=forged"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");

    // The browser that started it finishes it, and its login cookie is cleared.
    let (status, headers, page) = callback(&h, &started.state, Some(&started.cookies)).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let set = set_cookies(&headers);
    assert!(
        set.iter()
            .any(|c| c.starts_with(&format!("{name}=;")) && c.contains("Max-Age=0")),
        "{set:?}"
    );
    assert!(
        set.iter().any(|c| c.starts_with("deployer_session=")),
        "{set:?}"
    );
}

#[tokio::test]
async fn starting_logins_is_bounded() {
    let idp = identity_provider().await;
    let h = deployer(&idp, None).await;
    let app = deployer::router(h.state.clone());
    let mut started = 0;
    let refused = loop {
        use tower::ServiceExt;
        let response = app
            .clone()
            .oneshot(Request::get("/auth/login").body(Body::empty()).unwrap())
            .await
            .unwrap();
        if !response.status().is_redirection() {
            break response.status();
        }
        started += 1;
        if started == 5_000 {
            panic!("5000 logins were started at once and none was refused");
        }
    };
    assert_eq!(refused, StatusCode::SERVICE_UNAVAILABLE);
    assert!(started >= 500, "only {started} logins were allowed");
}

#[tokio::test]
async fn logging_out_from_another_site_is_refused() {
    let idp = identity_provider().await;
    let h = deployer(&idp, None).await;
    let (_, headers) = log_in(&h, &idp, "/").await;
    let session = given_cookies(&headers);
    let host = "127.0.0.1:3000";
    let me = || request("GET", "/api/v1/me", &session, host, None);

    let (status, _, body) = h
        .anonymous(request(
            "POST",
            "/auth/logout",
            &session,
            host,
            Some("http://evil.example"),
        ))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _, body) = h.anonymous(me()).await;
    assert_eq!(status, StatusCode::OK, "still logged in: {body}");

    let (status, _, _) = h
        .anonymous(request(
            "POST",
            "/auth/logout",
            &session,
            host,
            Some("http://127.0.0.1:3000"),
        ))
        .await;
    assert!(status.is_redirection(), "{status}");
    let (status, _, _) = h.anonymous(me()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_https_deployer_takes_writes_only_from_its_https_origin() {
    let idp = identity_provider().await;
    let h = deployer(&idp, Some(HTTPS)).await;
    let (_, headers) = log_in(&h, &idp, "/").await;
    let session = given_cookies(&headers);
    let host = "deployer.example.com";
    let pause = |origin: &str| request("PUT", "/api/v1/pause", &session, host, Some(origin));

    // The same host over plain http (a page a network attacker can write into) is another site.
    let (status, _, body) = h.anonymous(pause("http://deployer.example.com")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (_, trail) = h.audit("action=pause").await;
    assert_eq!(trail, json!([]));

    let (status, _, body) = h.anonymous(pause(HTTPS)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn an_https_deployer_sends_hsts_and_a_host_prefixed_session_cookie() {
    let idp = identity_provider().await;
    let h = deployer(&idp, Some(HTTPS)).await;
    let (_, headers) = log_in(&h, &idp, "/").await;
    let set = set_cookies(&headers);
    let session = set
        .iter()
        .find(|c| c.contains("session="))
        .unwrap_or_else(|| panic!("no session cookie: {set:?}"));
    assert!(session.starts_with("__Host-deployer_session="), "{session}");
    for attribute in ["; Secure", "; Path=/;", "; HttpOnly", "; SameSite=Lax"] {
        assert!(session.contains(attribute), "{attribute}: {session}");
    }
    assert!(!session.contains("Domain"), "{session}");
    assert_eq!(
        headers["strict-transport-security"], "max-age=31536000",
        "{headers:?}"
    );

    // The name the deployer sets is the name it reads, and only that one over https.
    let cookie = given_cookies(&headers);
    let host = "deployer.example.com";
    let (status, headers, body) = h
        .anonymous(request("GET", "/api/v1/me", &cookie, host, None))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["strict-transport-security"], "max-age=31536000");
    let me: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(me["name"], "alice");
    let id = cookie.split_once('=').unwrap().1;
    let (status, _, _) = h
        .anonymous(request(
            "GET",
            "/api/v1/me",
            &format!("deployer_session={id}"),
            host,
            None,
        ))
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a plain-named cookie could be tossed"
    );

    // Logging out clears the cookie it set.
    let (status, headers, _) = h
        .anonymous(request("POST", "/auth/logout", &cookie, host, Some(HTTPS)))
        .await;
    assert!(status.is_redirection(), "{status}");
    let cleared = set_cookies(&headers);
    assert!(
        cleared
            .iter()
            .any(|c| c.starts_with("__Host-deployer_session=;")
                && c.contains("Max-Age=0")
                && c.contains("; Secure")),
        "{cleared:?}"
    );
    let (status, _, _) = h
        .anonymous(request("GET", "/api/v1/me", &cookie, host, None))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_deployer_on_plain_http_sends_no_hsts() {
    let idp = identity_provider().await;
    let h = deployer(&idp, Some("http://127.0.0.1:3000")).await;
    let (_, headers) = log_in(&h, &idp, "/").await;
    assert!(!headers.contains_key("strict-transport-security"));
    let set = set_cookies(&headers);
    assert!(
        set.iter()
            .any(|c| c.starts_with("deployer_session=") && !c.contains("Secure")),
        "{set:?}"
    );
}
