//! Test harness: the local AWS emulator (moto: one for the run, or one per test, see `moto.rs`),
//! and a deployer configured against it with four environments as four accounts of the test's own.
#![allow(dead_code)]

mod fixtures;
mod moto;
pub mod proxy;
mod sse;

use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use fixtures::{GATED_TEMPLATE, TEMPLATE, release_gate, template_with_a_bucket};
pub use moto::Moto;
#[allow(unused_imports)]
pub use sse::{Sse, SseParser, read_until};

use aws_credential_types::{Credentials, provider::SharedCredentialsProvider};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use deployer::{AppState, aws::AwsClients, config::Config};
use tower::ServiceExt;

/// The environments, each an account of its own ([`Moto::account`]).
pub const ENVIRONMENTS: [&str; 4] = ["DEV", "STG", "PRD", "GBL"];
pub const PREFIX: &str = "builds/";

/// The config the tests run with: every project deploys to DEV, STG and PRD, in the test's own
/// accounts and bucket in `moto`.
pub fn config(moto: &Moto, store: &std::path::Path) -> Config {
    config_via(&moto.endpoint, moto, store)
}

/// [`config`] reaching moto at `endpoint` (e.g. through a fault proxy).
pub fn config_via(endpoint: &str, moto: &Moto, store: &std::path::Path) -> Config {
    let mut config = Config::parse(&config_toml_via(endpoint, moto, store)).unwrap();
    config.auth.bootstrap_token = Some(BOOTSTRAP_TOKEN.into());
    config
}

/// [`config`] as the file a deployer process reads.
pub fn config_toml(moto: &Moto, store: &std::path::Path) -> String {
    config_toml_via(&moto.endpoint, moto, store)
}

fn config_toml_via(endpoint: &str, moto: &Moto, store: &std::path::Path) -> String {
    let bucket = &moto.bucket;
    let mut toml = format!(
        "listen = \"127.0.0.1:0\"\nstore = {store:?}\npoll_interval_ms = 50\n[artifacts]\nbucket = \"{bucket}\"\nprefix = \"{PREFIX}\"\nenvironment = \"GBL\"\n"
    );
    for (name, account) in &moto.accounts {
        toml.push_str(&format!(
            "[[environments]]\nname = \"{name}\"\naccount_id = \"{account}\"\nregion = \"eu-west-1\"\n\
             role_arn = \"arn:aws:iam::{account}:role/deployer\"\nendpoint_url = \"{endpoint}\"\n"
        ));
    }
    toml.push_str("[[projects]]\nname = \"web\"\ntitle = \"Web\"\nenvironments = [\"DEV\", \"STG\", \"PRD\"]\n");
    toml.push_str("[[projects]]\nname = \"web-api\"\nenvironments = [\"DEV\"]\n");
    toml.push_str(
        "[auth.roles]\nviewer = {}\ndeployer = { deploy = [\"DEV\", \"STG\"] }\nadmin = { admin = true }\n\
         [auth.groups]\nadmins = \"admin\"\ndevelopers = \"deployer\"\neveryone = \"viewer\"\n",
    );
    toml
}

/// The Python of the local AWS's virtualenv (the seed and the stand-in Jenkins run on it):
/// `LOCAL_AWS_PYTHON` (scripts/lib.sh exports it), else the workspace's `.venv`.
pub fn python() -> std::path::PathBuf {
    match std::env::var("LOCAL_AWS_PYTHON") {
        Ok(python) if !python.is_empty() => python.into(),
        _ => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"),
    }
}

/// The PostgreSQL server the suite runs on, when `DEPLOYER_TEST_POSTGRES` names one.
pub fn postgres_server() -> Option<String> {
    std::env::var("DEPLOYER_TEST_POSTGRES")
        .ok()
        .filter(|u| !u.is_empty())
}

/// The bootstrap token every harness's deployer accepts (as `DEPLOYER_BOOTSTRAP_TOKEN` would
/// give it); the harness makes its own admin token, "tester", with it.
pub const BOOTSTRAP_TOKEN: &str = "test-bootstrap-token-0123456789";

pub fn static_credentials() -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(Credentials::new("testing", "testing", None, None, "tests"))
}

/// A deployer against moto, plus the clients of every environment for arranging tests.
pub struct Harness {
    /// The harness deployer's store (a restarted deployer opens the same one).
    pub store: deployer::config::StoreLocation,
    pub dir: tempfile::TempDir,
    pub moto: Moto,
    pub proxy: Option<proxy::FaultProxy>,
    pub state: AppState,
    pub aws: AwsClients,
    /// The admin API token ("tester") every request of the harness carries unless it sets its
    /// own `Authorization` (or none: [`Harness::anonymous`]).
    pub token: String,
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(None).await
    }

    /// A harness whose CloudFormation (in every environment) is the given one; S3 stays moto.
    pub async fn start_with(
        cfn: Option<std::sync::Arc<dyn deployer::aws::cfn::CloudFormation>>,
    ) -> Harness {
        Self::start_full(cfn, false).await
    }

    /// A harness whose deployer reaches moto through a [`proxy::FaultProxy`] (`h.proxy`).
    pub async fn start_behind_proxy() -> Harness {
        Self::start_full(None, true).await
    }

    /// A harness whose config is changed first (e.g. Jenkins configured, a short watch interval).
    pub async fn start_configured(change: impl FnOnce(&mut Config, &str)) -> Harness {
        Self::start_changed(None, false, change).await
    }

    async fn start_full(
        cfn: Option<std::sync::Arc<dyn deployer::aws::cfn::CloudFormation>>,
        behind_proxy: bool,
    ) -> Harness {
        Self::start_changed(cfn, behind_proxy, |_, _| {}).await
    }

    pub async fn start_changed(
        cfn: Option<std::sync::Arc<dyn deployer::aws::cfn::CloudFormation>>,
        behind_proxy: bool,
        change: impl FnOnce(&mut Config, &str),
    ) -> Harness {
        let moto = Moto::start();
        let proxy = match behind_proxy {
            true => Some(proxy::FaultProxy::start(&moto.endpoint).await),
            false => None,
        };
        let endpoint = proxy
            .as_ref()
            .map_or(moto.endpoint.clone(), |p| p.url.clone());
        let dir = tempfile::tempdir().unwrap();
        let mut config = config_via(&endpoint, &moto, &dir.path().join("deployer.sqlite"));
        // `scripts/test` runs the suite a second time on PostgreSQL: each harness its database.
        if let Some(admin) = postgres_server() {
            config.store = deployer::config::StoreLocation::Postgres(
                deployer::store::scratch_postgres_database(&admin)
                    .await
                    .expect("a scratch database on DEPLOYER_TEST_POSTGRES"),
            );
        }
        change(&mut config, &moto.endpoint);
        let store = config.store.clone();
        let aws = AwsClients::connect(&config, Some(static_credentials())).await;
        let state = match cfn {
            None => deployer::state(config, aws.clone()).await.unwrap(),
            Some(cfn) => {
                let map = ENVIRONMENTS
                    .iter()
                    .map(|env| (env.to_string(), cfn.clone()))
                    .collect();
                deployer::state_with_cloudformation(config, aws.clone(), map)
                    .await
                    .unwrap()
            }
        };
        let mut harness = Harness {
            store,
            dir,
            moto,
            proxy,
            state,
            aws,
            token: BOOTSTRAP_TOKEN.to_owned(),
        };
        // Seeded in the store (as an admin's earlier `POST /api/v1/tokens` would have), so that
        // the audit trail of each test starts empty.
        let secret = deployer::auth::new_secret(deployer::auth::TOKEN_PREFIX);
        harness
            .state
            .auth
            .store()
            .create_token(&deployer::store::NewTokenRow {
                id: "t-tester",
                name: "tester",
                role: "admin",
                hash: &deployer::auth::hash(&secret),
                created_by: "harness",
                person: "sub:harness",
                person_name: "harness",
                expires_at: None,
            })
            .await
            .unwrap();
        harness.token = secret;
        harness
            .s3()
            .create_bucket()
            .bucket(&harness.moto.bucket)
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        harness
    }

    pub fn s3(&self) -> &aws_sdk_s3::Client {
        &self.aws.env("GBL").unwrap().s3
    }

    pub fn cfn(&self, env: &str) -> &aws_sdk_cloudformation::Client {
        &self.aws.env(env).unwrap().cloudformation
    }

    pub async fn put(&self, key: &str, body: &str) {
        self.s3()
            .put_object()
            .bucket(&self.moto.bucket)
            .key(format!("{PREFIX}{key}"))
            .body(body.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap();
        // The listing is cached (a build asked for by name re-lists only a listing seconds
        // old): a test sees its upload at once.
        if let Some(project) = key.split('/').next() {
            self.state.catalog().artifacts.invalidate(project);
        }
    }

    /// Writes a complete build folder.
    pub async fn put_build(&self, project: &str, id: &str) {
        self.put_build_of(project, id, TEMPLATE).await;
    }

    /// Writes a complete build folder with this template.
    pub async fn put_build_of(&self, project: &str, id: &str, template: &str) {
        self.put_build_with(project, id, template, r#"{"Greeting":"hello"}"#)
            .await;
    }

    /// Writes a build folder: this template as `template.yaml`, these parameters as
    /// `parameters.json`. Every test writes its builds through here.
    pub async fn put_build_with(&self, project: &str, id: &str, template: &str, parameters: &str) {
        self.put(&format!("{project}/{id}/template.yaml"), template)
            .await;
        self.put(&format!("{project}/{id}/parameters.json"), parameters)
            .await;
    }

    /// Opens `GET /api/v1/events` on a served deployer (`base`, from [`Harness::serve`]).
    pub async fn events(&self, base: &str) -> reqwest::Response {
        authorized_client(&self.token)
            .get(format!("{base}/api/v1/events"))
            .send()
            .await
            .unwrap()
    }

    /// The stack as CloudFormation in `env` first shows it (a gated create has started); waits
    /// up to 10 s.
    pub async fn stack_appears(
        &self,
        env: &str,
        name: &str,
    ) -> aws_sdk_cloudformation::types::Stack {
        let cfn = self.cfn(env);
        for _ in 0..400 {
            if let Ok(out) = cfn.describe_stacks().stack_name(name).send().await
                && let Some(s) = out.stacks().first()
            {
                return s.clone();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{name} never appeared in {env}");
    }

    /// Asks for a deployment of `web` in DEV and returns its id (it must be accepted).
    pub async fn start_deployment(&self, build: &str) -> String {
        let (status, started) = self
            .post(
                "/api/v1/deployments",
                serde_json::json!({"project": "web", "environment": "DEV", "build": build}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{started}");
        started["id"].as_str().unwrap().to_owned()
    }

    /// The config a restarted deployer reads: the same emulator and the same store.
    pub fn config_again(&self) -> Config {
        let mut config = config(&self.moto, &self.dir.path().join("deployer.sqlite"));
        config.store = self.store.clone();
        config
    }

    /// CloudFormation in DEV reached directly, never through the harness's proxy: what really
    /// happened in the emulator.
    pub async fn moto_cfn(&self) -> aws_sdk_cloudformation::Client {
        let config = config(&self.moto, &self.dir.path().join("unused.sqlite"));
        let aws = AwsClients::connect(&config, Some(static_credentials())).await;
        aws.env("DEV").unwrap().cloudformation.clone()
    }

    /// Serves the harness's deployer on a free local port, as `deployer` does (for clients that
    /// need a socket: the CLI, event streams); answers its base URL.
    pub async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(deployer::serve(
            listener,
            self.state.clone(),
            std::future::pending(),
        ));
        url
    }

    /// GET through the whole router, without a socket.
    pub async fn get(&self, uri: &str) -> (StatusCode, serde_json::Value) {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    pub async fn post(
        &self,
        uri: &str,
        body: serde_json::Value,
    ) -> (StatusCode, serde_json::Value) {
        let request = Request::post(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.send(request).await
    }

    /// Any method with a JSON body (`null`: no body).
    pub async fn send_json(
        &self,
        method: &str,
        uri: &str,
        body: serde_json::Value,
    ) -> (StatusCode, serde_json::Value) {
        let builder = Request::builder().method(method).uri(uri);
        let request = if body.is_null() {
            builder.body(Body::empty()).unwrap()
        } else {
            builder
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap()
        };
        self.send(request).await
    }

    /// A raw JSON-typed body, for malformed and oversized requests.
    pub async fn send_raw(
        &self,
        method: &str,
        uri: &str,
        body: &str,
    ) -> (StatusCode, serde_json::Value) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        self.send(request).await
    }

    /// The status the event stream answers with this `Last-Event-ID` (the stream is dropped).
    pub async fn events_status(&self, last_event_id: &str) -> StatusCode {
        let request = Request::get("/api/v1/events")
            .header("last-event-id", last_event_id)
            .header("authorization", format!("Bearer {}", self.token))
            .body(Body::empty())
            .unwrap();
        let label = format!("GET {}", request.uri());
        let app = deployer::router(self.state.clone());
        answered(&label, app.oneshot(request)).await.status()
    }

    // ---- one method per endpoint of the REST API ----

    /// `GET /api/v1/projects/{project}/builds?<query>`
    pub async fn builds(&self, project: &str, query: &str) -> (StatusCode, serde_json::Value) {
        self.get(&format!("/api/v1/projects/{project}/builds?{query}"))
            .await
    }

    /// `GET /api/v1/projects/{project}/stacks`
    pub async fn stacks(&self, project: &str) -> (StatusCode, serde_json::Value) {
        self.get(&format!("/api/v1/projects/{project}/stacks"))
            .await
    }

    /// `GET /api/v1/deployments?<query>`
    pub async fn deployments(&self, query: &str) -> (StatusCode, serde_json::Value) {
        self.get(&format!("/api/v1/deployments?{query}")).await
    }

    /// `GET /api/v1/deployments/{id}`
    pub async fn deployment(&self, id: &str) -> (StatusCode, serde_json::Value) {
        self.get(&format!("/api/v1/deployments/{id}")).await
    }

    /// `POST /api/v1/deployments`
    pub async fn request_deploy(
        &self,
        project: &str,
        environment: &str,
        build: &str,
    ) -> (StatusCode, serde_json::Value) {
        self.post(
            "/api/v1/deployments",
            serde_json::json!({"project": project, "environment": environment, "build": build}),
        )
        .await
    }

    /// `POST /api/v1/deployments/{id}/cancel`
    pub async fn cancel(&self, id: &str, confirm_delete: bool) -> (StatusCode, serde_json::Value) {
        self.post(
            &format!("/api/v1/deployments/{id}/cancel"),
            serde_json::json!({"confirm_delete": confirm_delete}),
        )
        .await
    }

    /// `PUT /api/v1/pause`
    pub async fn pause(&self, body: serde_json::Value) -> (StatusCode, serde_json::Value) {
        self.send_json("PUT", "/api/v1/pause", body).await
    }

    /// `DELETE /api/v1/pause?<query>`
    pub async fn unpause(&self, query: &str) -> (StatusCode, serde_json::Value) {
        self.send_json(
            "DELETE",
            &format!("/api/v1/pause?{query}"),
            serde_json::Value::Null,
        )
        .await
    }

    /// `GET /api/v1/audit?<query>`
    pub async fn audit(&self, query: &str) -> (StatusCode, serde_json::Value) {
        self.get(&format!("/api/v1/audit?{query}")).await
    }

    /// Calls one of the page's server functions (`POST /api/<name>`, its arguments as a JSON
    /// object, as the browser does) through the whole router; answers its status and JSON body.
    pub async fn server_fn(
        &self,
        name: &str,
        args: serde_json::Value,
    ) -> (StatusCode, serde_json::Value) {
        let request = Request::post(format!("/api/{name}"))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(Body::from(args.to_string()))
            .unwrap();
        self.send(request).await
    }

    /// An HTTP client that sends the harness's token with every request (for a deployer served
    /// on a socket).
    pub fn http_client(&self) -> reqwest::Client {
        authorized_client(&self.token)
    }

    /// Sends a request as is: no credentials added. Answers the status, the headers and the body.
    pub async fn anonymous(
        &self,
        request: Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let (status, headers, bytes) = routed(&self.state, request).await;
        (
            status,
            headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    /// A new API token with this name and role (`POST /api/v1/tokens` as the harness's admin);
    /// answers its secret.
    pub async fn new_token(&self, name: &str, role: &str) -> String {
        let (status, created) = self
            .post(
                "/api/v1/tokens",
                serde_json::json!({"name": name, "role": role}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created["token"].as_str().unwrap().to_owned()
    }

    /// An API token made by `person` (as their own `POST /api/v1/tokens` after logging in would
    /// make it): it acts for that person, whatever its name. Answers its secret.
    pub async fn token_of(&self, person: &str, name: &str, role: &str) -> String {
        let secret = deployer::auth::new_secret(deployer::auth::TOKEN_PREFIX);
        self.state
            .auth
            .store()
            .create_token(&deployer::store::NewTokenRow {
                id: &format!("t-{}", deployer::auth::random_id()),
                name,
                role,
                hash: &deployer::auth::hash(&secret),
                created_by: person,
                person: &format!("sub:subject-of-{person}"),
                person_name: person,
                expires_at: None,
            })
            .await
            .unwrap();
        secret
    }

    /// A person logged in through single sign-on (as a finished login leaves it: the identity
    /// provider's subject `subject-of-<subject>`, their username and groups); answers the
    /// session cookie's value.
    pub async fn login(&self, subject: &str, username: &str, groups: &[&str]) -> String {
        let id = deployer::auth::new_secret("");
        self.state
            .auth
            .store()
            .create_session(
                &deployer::auth::hash(&id),
                &deployer::store::Session {
                    username: username.to_owned(),
                    subject: Some(format!("subject-of-{subject}")),
                    display_name: username.to_owned(),
                    groups: groups.iter().map(|g| g.to_string()).collect(),
                    expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
                },
            )
            .await
            .unwrap();
        id
    }

    /// A request with this bearer token; answers the status and the JSON body.
    pub async fn with_token(
        &self,
        token: &str,
        mut request: Request<Body>,
    ) -> (StatusCode, serde_json::Value) {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        self.send(request).await
    }

    /// Waits until the stack's operation has ended (CloudFormation — and the local AWS — takes
    /// its time after the API call) and returns its status.
    pub async fn settled(&self, env: &str, stack: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self
                .cfn(env)
                .describe_stacks()
                .stack_name(stack)
                .send()
                .await
                .unwrap();
            let status = out.stacks()[0].stack_status().unwrap().as_str().to_owned();
            if !status.ends_with("_IN_PROGRESS") {
                return status;
            }
            assert!(Instant::now() < deadline, "{stack} still {status}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Starts a deployment and waits for its outcome; returns the deployment's detail.
    pub async fn deploy(&self, project: &str, env: &str, build: &str) -> serde_json::Value {
        let (status, started) = self
            .post(
                "/api/v1/deployments",
                serde_json::json!({"project": project, "environment": env, "build": build}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{started}");
        self.wait(started["id"].as_str().unwrap()).await
    }

    /// Polls a deployment until it is no longer active.
    pub async fn wait(&self, id: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, detail) = self.get(&format!("/api/v1/deployments/{id}")).await;
            assert_eq!(status, StatusCode::OK, "{detail}");
            if !matches!(
                detail["status"].as_str(),
                Some("pending" | "running" | "cancelling")
            ) {
                return detail;
            }
            assert!(
                Instant::now() < deadline,
                "deployment {id} did not finish: {detail}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn card(&self, project: &str, env: &str) -> serde_json::Value {
        let (_, cards) = self
            .get(&format!("/api/v1/projects/{project}/stacks"))
            .await;
        cards
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["environment"] == env)
            .unwrap()
            .clone()
    }

    async fn send(&self, mut request: Request<Body>) -> (StatusCode, serde_json::Value) {
        if !request.headers().contains_key("authorization") {
            request.headers_mut().insert(
                "authorization",
                format!("Bearer {}", self.token).parse().unwrap(),
            );
        }
        let uri = request.uri().to_string();
        let (status, _, bytes) = routed(&self.state, request).await;
        let json = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{uri} answered {status} with non-JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        (status, json)
    }
}

/// An HTTP client that sends `Authorization: Bearer <token>` with every request.
pub fn authorized_client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Percent-encodes a form value.
/// Sends a request to a deployer's router as is (a replica's, say) and reads its JSON answer
/// (`null` when the body is not JSON).
pub async fn answer(state: &AppState, request: Request<Body>) -> (StatusCode, serde_json::Value) {
    let (status, _, body) = routed(state, request).await;
    (
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The name of an environment's stack-events topic and queue in the tests (as
/// `infra/deployer-access.yaml` names them).
pub const STACK_EVENTS: &str = "deployer-stack-events";

/// Where an account's stack events go in the tests: its topic and queue in moto.
pub fn stack_events_config(endpoint: &str, account: &str) -> deployer::config::StackEvents {
    deployer::config::StackEvents {
        topic_arn: format!("arn:aws:sns:eu-west-1:{account}:{STACK_EVENTS}"),
        queue_url: format!("{endpoint}/{account}/{STACK_EVENTS}"),
    }
}

/// Makes an account's stack-events topic, its queue and the subscription in moto (what the
/// access template makes in AWS). moto publishes stack events to the topics of a stack's
/// NotificationARNs and delivers them to subscribed queues, as AWS does.
pub async fn make_stack_events(endpoint: &str, sqs: &aws_sdk_sqs::Client, account: &str) {
    sqs.create_queue()
        .queue_name(STACK_EVENTS)
        .send()
        .await
        .unwrap();
    let sns = async |form: Vec<(&'static str, String)>| {
        let response = reqwest::Client::new()
            .post(endpoint)
            .header("x-moto-account-id", account)
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261128/eu-west-1/sns/aws4_request, SignedHeaders=host, Signature=0",
            )
            .form(&form)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{}",
            response.text().await.unwrap()
        );
    };
    sns(vec![
        ("Action", "CreateTopic".into()),
        ("Name", STACK_EVENTS.into()),
    ])
    .await;
    sns(vec![
        ("Action", "Subscribe".into()),
        (
            "TopicArn",
            format!("arn:aws:sns:eu-west-1:{account}:{STACK_EVENTS}"),
        ),
        ("Protocol", "sqs".into()),
        (
            "Endpoint",
            format!("arn:aws:sqs:eu-west-1:{account}:{STACK_EVENTS}"),
        ),
    ])
    .await;
}

/// Prints a benchmark's figure: its samples' count, mean, median, 95th percentile and maximum.
pub fn report(what: &str, mut samples: Vec<std::time::Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    let mean = samples.iter().sum::<std::time::Duration>() / samples.len() as u32;
    println!("{what}");
    println!(
        "    n = {:<4} mean {:>9.1?}   p50 {:>9.1?}   p95 {:>9.1?}   max {:>9.1?}",
        samples.len(),
        mean,
        at(0.5),
        at(0.95),
        samples[samples.len() - 1]
    );
}

/// The longest a test waits for the deployer's router to answer a request, or to finish its body:
/// a request that hangs fails its test, naming it, instead of holding the whole run.
const ANSWER_LIMIT: Duration = Duration::from_secs(30);

async fn answered(
    label: &str,
    response: impl std::future::Future<
        Output = Result<axum::response::Response, std::convert::Infallible>,
    >,
) -> axum::response::Response {
    match tokio::time::timeout(ANSWER_LIMIT, response).await {
        Ok(Ok(response)) => response,
        Ok(Err(never)) => match never {},
        Err(_) => panic!("{label}: the deployer did not answer within {ANSWER_LIMIT:?}"),
    }
}

/// Sends a request to a deployer's router and reads the whole answer, each within
/// [`ANSWER_LIMIT`].
async fn routed(
    state: &AppState,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, axum::body::Bytes) {
    let label = format!("{} {}", request.method(), request.uri());
    let response = answered(&label, deployer::router(state.clone()).oneshot(request)).await;
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, read_body(&label, response).await)
}

async fn read_body(label: &str, response: axum::response::Response) -> axum::body::Bytes {
    match tokio::time::timeout(
        ANSWER_LIMIT,
        axum::body::to_bytes(response.into_body(), usize::MAX),
    )
    .await
    {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => panic!("{label}: the answer's body could not be read: {e}"),
        Err(_) => panic!("{label}: the answer's body did not end within {ANSWER_LIMIT:?}"),
    }
}
