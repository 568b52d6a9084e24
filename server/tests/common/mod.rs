//! Test harness: a moto server (the local AWS emulator) on a free port per test, and a deployer
//! configured against it with four environments as four accounts.
#![allow(dead_code)]

pub mod proxy;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_credential_types::{Credentials, provider::SharedCredentialsProvider};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use deployer::{AppState, aws::AwsClients, config::Config};
use tower::ServiceExt;

pub const ACCOUNTS: [(&str, &str); 4] = [
    ("DEV", "111111111111"),
    ("STG", "222222222222"),
    ("PRD", "333333333333"),
    ("GBL", "444444444444"),
];
pub const BUCKET: &str = "artifacts";
pub const PREFIX: &str = "builds/";

/// A moto server, killed when dropped.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    /// Starts moto on a free port and returns once *this* moto is serving. Tests run in
    /// parallel, so a port found free can be taken by another test's moto before ours binds it;
    /// a probe of the port would then reach the other one (and fail when that test ends). moto
    /// says "Running on" only after its own bind succeeded and exits when the port is taken, so
    /// its stderr decides, and a taken port is retried with another.
    pub fn start() -> Moto {
        let bin = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_owned());
        for _attempt in 0..10 {
            let port = free_port();
            let mut child = Command::new(&bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {bin} (set MOTO_SERVER): {e}"));
            let stderr = child.stderr.take().expect("piped stderr");
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            // Reads moto's log to the end: the readiness line first, then drains the request log
            // so that moto never blocks on a full pipe.
            std::thread::spawn(move || {
                let mut ready = Some(ready_tx);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if line.contains("Running on")
                        && let Some(tx) = ready.take()
                    {
                        let _ = tx.send(());
                    }
                }
            });
            match ready_rx.recv_timeout(Duration::from_secs(60)) {
                Ok(()) => {
                    return Moto {
                        child,
                        endpoint: format!("http://127.0.0.1:{port}"),
                    };
                }
                // stderr closed without the line: moto exited, most likely because the port was
                // taken in the meantime. Try another.
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    panic!("moto did not start on port {port} within 60 s");
                }
            }
        }
        panic!("moto could not start on any of 10 free ports");
    }
}

/// A port that is free now, and not one this process handed out before.
fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The config the tests run with: every project deploys to DEV, STG and PRD.
pub fn config(endpoint: &str, store: &std::path::Path) -> Config {
    Config::parse(&config_toml(endpoint, store)).unwrap()
}

/// [`config`] as the file a deployer process reads.
pub fn config_toml(endpoint: &str, store: &std::path::Path) -> String {
    let mut toml = format!(
        "listen = \"127.0.0.1:0\"\nstore = {store:?}\npoll_interval_ms = 50\nactor = \"tester\"\n[artifacts]\nbucket = \"{BUCKET}\"\nprefix = \"{PREFIX}\"\nenvironment = \"GBL\"\n"
    );
    for (name, account) in ACCOUNTS {
        toml.push_str(&format!(
            "[[environments]]\nname = \"{name}\"\naccount_id = \"{account}\"\nregion = \"eu-west-1\"\n\
             role_arn = \"arn:aws:iam::{account}:role/deployer\"\nendpoint_url = \"{endpoint}\"\n"
        ));
    }
    toml.push_str("[[projects]]\nname = \"web\"\ntitle = \"Web\"\nenvironments = [\"DEV\", \"STG\", \"PRD\"]\n");
    toml.push_str("[[projects]]\nname = \"web-api\"\nenvironments = [\"DEV\"]\n");
    toml
}

pub fn static_credentials() -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(Credentials::new("testing", "testing", None, None, "tests"))
}

/// A deployer against moto, plus the clients of every environment for arranging tests.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub moto: Moto,
    pub proxy: Option<proxy::FaultProxy>,
    pub state: AppState,
    pub aws: AwsClients,
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(None).await
    }

    /// A harness whose CloudFormation (in every environment) is the given one; S3 stays moto.
    pub async fn start_with(
        cfn: Option<std::sync::Arc<dyn deployer::deploy::cfn::CloudFormation>>,
    ) -> Harness {
        Self::start_full(cfn, false).await
    }

    /// A harness whose deployer reaches moto through a [`proxy::FaultProxy`] (`h.proxy`).
    pub async fn start_behind_proxy() -> Harness {
        Self::start_full(None, true).await
    }

    async fn start_full(
        cfn: Option<std::sync::Arc<dyn deployer::deploy::cfn::CloudFormation>>,
        behind_proxy: bool,
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
        let config = config(&endpoint, &dir.path().join("deployer.sqlite"));
        let aws = AwsClients::connect(&config, Some(static_credentials())).await;
        let state = match cfn {
            None => deployer::state(config, aws.clone()).await.unwrap(),
            Some(cfn) => {
                let map = ACCOUNTS
                    .iter()
                    .map(|(env, _)| (env.to_string(), cfn.clone()))
                    .collect();
                deployer::state_with_cloudformation(config, aws.clone(), map)
                    .await
                    .unwrap()
            }
        };
        let harness = Harness {
            dir,
            moto,
            proxy,
            state,
            aws,
        };
        harness
            .s3()
            .create_bucket()
            .bucket(BUCKET)
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
            .bucket(BUCKET)
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
        self.put(&format!("{project}/{id}/template.yaml"), template)
            .await;
        self.put(
            &format!("{project}/{id}/parameters.json"),
            r#"{"Greeting":"hello"}"#,
        )
        .await;
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

    /// CloudFormation in DEV reached directly, never through the harness's proxy: what really
    /// happened in the emulator.
    pub async fn moto_cfn(&self) -> aws_sdk_cloudformation::Client {
        let config = config(&self.moto.endpoint, &self.dir.path().join("unused.sqlite"));
        let aws = AwsClients::connect(&config, Some(static_credentials())).await;
        aws.env("DEV").unwrap().cloudformation.clone()
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
            .body(Body::empty())
            .unwrap();
        let app = deployer::router(self.state.clone());
        app.oneshot(request).await.unwrap().status()
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

    async fn send(&self, request: Request<Body>) -> (StatusCode, serde_json::Value) {
        let uri = request.uri().to_string();
        let app = deployer::router(self.state.clone());
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{uri} answered {status} with non-JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        (status, json)
    }
}

/// A template whose create waits: moto holds the stack in CREATE_IN_PROGRESS when CreateStack
/// meets a `Custom::` resource backed by a Lambda of the same template, until the test answers
/// for the Lambda ([`Harness::release_gate`]).
pub const GATED_TEMPLATE: &str = r#"
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Greeting:
    Type: String
Resources:
  HookRole:
    Type: AWS::IAM::Role
    Properties:
      RoleName: !Sub "${AWS::StackName}-hook"
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: { Service: lambda.amazonaws.com }
            Action: sts:AssumeRole
  Hook:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.11
      Handler: index.handler
      Role: !GetAtt HookRole.Arn
      Code:
        ZipFile: "def handler(event, context): pass"
  Wait:
    Type: Custom::Wait
    Properties:
      ServiceToken: !GetAtt Hook.Arn
      Greeting: !Ref Greeting
"#;

/// Answers for the gate's Lambda on moto's cfnresponse endpoint: the gated create completes.
pub async fn release_gate(moto_endpoint: &str, account: &str, stack_id: &str) {
    let port = moto_endpoint.rsplit(':').next().unwrap();
    let response = reqwest::Client::new()
        .put(format!("http://localhost:{port}/cloudformation_eu-west-1/cfnresponse?stack={stack_id}"))
        .header("content-type", "application/json")
        // The Lambda's answer carries no credentials: moto takes the account from this header
        // and the region from the (unchecked) credential scope of an Authorization header.
        .header("x-moto-account-id", account)
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261126/eu-west-1/cloudformation/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(serde_json::json!({"Status": "SUCCESS", "LogicalResourceId": "Wait", "StackId": stack_id, "Data": {}}).to_string())
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
}

pub const TEMPLATE: &str = r#"
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Greeting:
    Type: String
  Secret:
    Type: String
    NoEcho: true
    Default: hunter2
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Message:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub "/${AWS::StackName}/greeting"
      Type: String
      Value: !Ref Greeting
Outputs:
  QueueUrl:
    Value: !Ref Queue
    Export:
      Name: !Sub "${AWS::StackName}-QueueUrl"
"#;

/// One server-sent event as a client sees it.
#[derive(Debug, Clone)]
pub struct Sse {
    pub id: Option<u64>,
    pub event: String,
    pub data: serde_json::Value,
}

/// Splits an event stream's bytes into events, across chunk boundaries. Keep-alive comments
/// (blocks without data) are skipped.
#[derive(Default)]
pub struct SseParser {
    buffer: String,
}

impl SseParser {
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Sse> {
        self.buffer.push_str(&String::from_utf8_lossy(chunk));
        let mut out = Vec::new();
        while let Some(end) = self.buffer.find("\n\n") {
            let block: String = self.buffer.drain(..end + 2).collect();
            let (mut id, mut event, mut data) = (None, String::from("message"), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                }
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                }
                if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if data.is_empty() {
                continue;
            }
            out.push(Sse {
                id,
                event,
                data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
            });
        }
        out
    }
}
