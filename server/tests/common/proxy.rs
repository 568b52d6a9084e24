//! A fault-injecting HTTP proxy between the deployer and moto, for the drills: it answers
//! CloudFormation calls with `Throttling` (HTTP 400) or 503, holds answers past the SDK's attempt
//! timeout after the request reached moto, or vanishes (connection refused) and comes back.
//! Everything else is forwarded unchanged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// What the proxy does to a matching request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 400 with CloudFormation's `Throttling` error; nothing reaches moto.
    Throttle,
    /// HTTP 503 with no AWS error; nothing reaches moto.
    Unavailable,
    /// Forwarded to moto, and the answer held this long (past the SDK's 10 s attempt timeout).
    SlowAnswer(Duration),
}

/// The next `count` requests for `action` (a CloudFormation action, `*` for any) get `fault`.
#[derive(Clone, Debug)]
struct Rule {
    action: &'static str,
    fault: Fault,
    count: u32,
}

#[derive(Default)]
struct Shared {
    target: String,
    client: reqwest::Client,
    rules: Mutex<Vec<Rule>>,
    injected: AtomicU32,
    forwarded: Mutex<HashMap<String, u32>>,
}

pub struct FaultProxy {
    pub url: String,
    port: u16,
    shared: Arc<Shared>,
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl FaultProxy {
    /// A proxy on a free loopback port in front of `target` (moto's endpoint).
    pub async fn start(target: &str) -> FaultProxy {
        let shared = Arc::new(Shared {
            target: target.to_owned(),
            ..Shared::default()
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = FaultProxy {
            url: format!("http://127.0.0.1:{port}"),
            port,
            shared,
            stop: Mutex::new(None),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        *self.stop.lock().unwrap() = Some(tx);
        let shared = self.shared.clone();
        let app = axum::Router::new().fallback(move |method, uri, headers, body| {
            handle(shared.clone(), method, uri, headers, body)
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
    }

    /// The next `count` requests for `action` get `fault`.
    pub fn inject(&self, action: &'static str, fault: Fault, count: u32) {
        self.shared.rules.lock().unwrap().push(Rule {
            action,
            fault,
            count,
        });
    }

    /// Faults injected so far.
    pub fn injected(&self) -> u32 {
        self.shared.injected.load(Ordering::SeqCst)
    }

    /// How many requests for `action` reached moto.
    pub fn forwarded(&self, action: &str) -> u32 {
        self.shared
            .forwarded
            .lock()
            .unwrap()
            .get(action)
            .copied()
            .unwrap_or(0)
    }

    /// The emulator vanishes: connections are refused until [`FaultProxy::come_back`].
    pub async fn vanish(&self) {
        if let Some(stop) = self.stop.lock().unwrap().take() {
            let _ = stop.send(());
        }
        // Until the port refuses connections.
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the proxy did not stop listening");
    }

    /// The emulator is back, on the same address.
    pub async fn come_back(&self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        self.serve(listener);
    }
}

/// The CloudFormation action of a query-protocol request (`Action=DescribeStacks&…`).
/// (S3's listings are recognised from their query string.)
fn action_of(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .map(str::to_owned)
}

async fn handle(
    shared: Arc<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let action = action_of(&body).or_else(|| {
        // S3 speaks REST: a bucket listing is a GET with `list-type=2`.
        uri.query()
            .is_some_and(|q| q.contains("list-type=2"))
            .then(|| "ListObjectsV2".to_owned())
    });
    let fault = action.as_deref().and_then(|action| {
        let mut rules = shared.rules.lock().unwrap();
        let rule = rules
            .iter_mut()
            .find(|r| r.count > 0 && (r.action == "*" || r.action == action))?;
        rule.count -= 1;
        Some(rule.fault)
    });
    if fault.is_some() {
        shared.injected.fetch_add(1, Ordering::SeqCst);
    }
    match fault {
        Some(Fault::Throttle) => {
            return (
                StatusCode::BAD_REQUEST,
                [("content-type", "text/xml")],
                "<ErrorResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\">\
                 <Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>\
                 <RequestId>drill</RequestId></ErrorResponse>",
            )
                .into_response();
        }
        Some(Fault::Unavailable) => {
            return (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response();
        }
        _ => {}
    }
    if let Some(action) = &action {
        *shared
            .forwarded
            .lock()
            .unwrap()
            .entry(action.clone())
            .or_default() += 1;
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = shared
        .client
        .request(method, format!("{}{path}", shared.target))
        .body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = answer.status();
    let mut out = Response::builder().status(status.as_u16());
    for (name, value) in answer.headers() {
        if name != "content-length" && name != "transfer-encoding" {
            out = out.header(name, value);
        }
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    if let Some(Fault::SlowAnswer(delay)) = fault {
        tokio::time::sleep(delay).await;
    }
    out.body(Body::from(bytes)).unwrap()
}
