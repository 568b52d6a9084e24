//! The REST API's client: bearer token, JSON in and out, and the deployer's error answers turned
//! into exit codes with the server's own message.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::config::Settings;
use crate::exit;

/// A command that could not do what it was asked: the message to print and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub exit: u8,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            exit: exit::USAGE,
            message: message.into(),
        }
    }

    pub fn refused(message: impl Into<String>) -> Failure {
        Failure {
            exit: exit::REFUSED,
            message: message.into(),
        }
    }

    /// The deployer answered an error: `{"error": {"code", "message", …}}`.
    fn answered(status: StatusCode, body: &str) -> Failure {
        let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let error = &parsed["error"];
        let code = error["code"].as_str().unwrap_or_default();
        let mut message = error["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| {
                let body = body.trim();
                match body.is_empty() {
                    true => status.to_string(),
                    false => format!("{status}: {}", body.chars().take(300).collect::<String>()),
                }
            });
        // A 409 names the deployment in the way; say how to follow it.
        if let Some(active) = error["active"]["id"]
            .as_str()
            .or(error["deployment_id"].as_str())
            && !message.contains(active)
        {
            message.push_str(&format!(" (deployment {active})"));
        }
        let exit = match status.as_u16() {
            423 => exit::PAUSED,
            409 if code == "confirmation_required" => exit::REFUSED,
            409 => exit::BUSY,
            400..=499 => exit::REFUSED,
            _ => exit::USAGE,
        };
        let kind = match code {
            "" => String::new(),
            code => format!("{} ", code.replace('_', " ")),
        };
        Failure {
            exit,
            message: format!("{kind}({}): {message}", status.as_u16()),
        }
    }

    fn unreachable(url: &str, e: &reqwest::Error) -> Failure {
        let mut cause = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            cause = format!("{cause}: {s}");
            source = s.source();
        }
        Failure::usage(format!("cannot reach the deployer at {url}: {cause}"))
    }
}

/// The deployer's REST API at one URL, with one token.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    url: String,
    token: String,
}

impl Client {
    pub fn new(settings: &Settings) -> Result<Client, Failure> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("deployctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Failure::usage(format!("cannot make an HTTP client: {e}")))?;
        Ok(Client {
            http,
            base: format!("{}/api/v1", settings.url),
            url: settings.url.clone(),
            token: settings.token.clone(),
        })
    }

    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, Failure> {
        debug_assert!(
            crate::is_endpoint("GET", path),
            "GET {path} is not in ENDPOINTS"
        );
        let request = self.http.get(self.address(path)).query(query);
        self.call(request).await
    }

    /// A write: `POST`, `PUT` or `DELETE`, with a JSON body or none.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, Failure> {
        debug_assert!(
            crate::is_endpoint(method, path),
            "{method} {path} is not in ENDPOINTS"
        );
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| Failure::usage(format!("no such method {method}")))?;
        let mut request = self.http.request(method, self.address(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        self.call(request).await
    }

    /// `GET /events` (server-sent events), resuming after `last_id`: the open response.
    pub async fn events(&self, last_id: Option<u64>) -> Result<reqwest::Response, Failure> {
        let mut request = self
            .http
            .get(self.address("/events"))
            .header("accept", "text/event-stream")
            .bearer_auth(&self.token);
        if let Some(id) = last_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failure::unreachable(&self.url, &e))?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(Failure::answered(status, &body));
        }
        Ok(response)
    }

    fn address(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let response = request
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .map_err(|e| Failure::unreachable(&self.url, &e))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| Failure::unreachable(&self.url, &e))?;
        if !status.is_success() {
            return Err(Failure::answered(status, &body));
        }
        serde_json::from_str(&body).map_err(|e| {
            Failure::usage(format!(
                "the deployer at {} answered {status} with something that is not JSON ({e}); is the URL right?",
                self.url
            ))
        })
    }
}

/// Percent-encodes a path segment or query value (RFC 3986 unreserved characters kept).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
