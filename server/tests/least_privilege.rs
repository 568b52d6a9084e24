//! Least privilege at run time: the deployer creates a new project's stack, previews and deploys
//! an update, judges a rollback and cancels a running update (CloudFormation rolls it back) —
//! against an emulator that enforces IAM, holding nothing but
//! what `infra/` grants. `tests/policies.rs` proves the same statically, from the code.
//!
//! The emulator is the local AWS (`start_moto`) started with `INITIAL_NO_AUTH_ACTION_COUNT`
//! (`scripts/test` starts a second one, with 0, and names it in `DEPLOYER_TEST_MOTO_IAM`; without
//! it these tests say so and pass). moto then checks every request: its access key must belong
//! to an IAM user or an assumed role, and their policies must allow the action.
//!
//! The set-up (once for the whole file, [`corner`]): nothing can be signed for before an IAM user
//! exists, so it asks moto for exactly [`FREE_REQUESTS`] unchecked requests
//! (`/moto-api/reset-auth`: a rerun and the suite's second pass work too) and in them makes, in
//! accounts of its own:
//! - in DEV and GBL, an `admin` user (to arrange and inspect, never used by the deployer), and
//!   the stack `deployer-access` from `infra/deployer-access.yaml` itself: the `deployer` role,
//!   the CloudFormation role, the stack-events topic, queue and subscription;
//! - in a third account, the replicas' identity: a user whose only right is the instance role's
//!   `DeployInEachEnvironment` statement of `infra/deployer.yaml` (sts:AssumeRole on the two
//!   `deployer` roles), as an instance profile would give it.
//!
//! The next request must be refused, or the test stops. The deployer runs with the replicas'
//! user as its base credentials, and assumes each environment's `deployer` role as in AWS.
//!
//! What moto's policy evaluation does not check — so this test cannot; `tests/policies.rs` and
//! review do:
//! - the resources of CloudFormation and EC2 actions: moto evaluates them against `*`, which a
//!   statement scoped to `stack/*` never matches; the test widens those statements' `Resource`
//!   to `*` in the emulator (their actions stay the template's). S3, SQS and STS resources are
//!   checked (the bucket and its objects, the queues, the roles assumed).
//! - conditions: moto evaluates none in permission policies (the `DeleteStack` tag condition and
//!   `iam:PassedToService` are not enforced), and in trust policies only `StringEquals` on
//!   values the request carries.
//! - actions a call implies: `iam:PassRole` for a RoleARN, `cloudformation:TagResource` for
//!   tags, `s3:GetObject` of a TemplateURL (CloudFormation reads it without asking IAM).
//! - trust policies across accounts: a role of another account is assumed whatever its trust
//!   policy says (only a role of the caller's own account has its trust checked, by exact ARN,
//!   so an assumed role's session never matches the role it came from).
//! - resource-based policies (the queue policies), SCPs, permission boundaries.
//! - a role's inline policy made by CloudFormation: moto stores it as a mapping and fails
//!   (KeyError) when it evaluates it, so the set-up puts the template's own policy on the role
//!   again with PutRolePolicy.

mod common;
mod iam;

use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use iam::{Context, Template};
use serde_json::{Value as Json, json};

const REGION: &str = "eu-west-1";
/// The unchecked requests the set-up makes (see [`set_up`]): in DEV and GBL, CreateUser,
/// PutUserPolicy, CreateAccessKey, CreateStack and PutRolePolicy; in the replicas' account,
/// CreateUser, PutUserPolicy and CreateAccessKey.
const FREE_REQUESTS: usize = 2 * 5 + 3;

/// The emulator enforcing IAM, if the run has one.
fn emulator() -> Option<String> {
    let url = std::env::var("DEPLOYER_TEST_MOTO_IAM")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        eprintln!(
            "\n==== SKIPPED: least privilege at run time needs an emulator enforcing IAM. Set \
             DEPLOYER_TEST_MOTO_IAM=http://127.0.0.1:<port> to a local AWS started with \
             INITIAL_NO_AUTH_ACTION_COUNT=0 (scripts/test does). ====\n"
        );
    }
    url.map(|u| u.trim_end_matches('/').to_owned())
}

#[derive(Clone)]
struct Keys {
    id: String,
    secret: String,
}

impl Keys {
    fn provider(&self) -> SharedCredentialsProvider {
        SharedCredentialsProvider::new(Credentials::new(
            &self.id,
            &self.secret,
            None,
            None,
            "least-privilege",
        ))
    }
}

/// What the set-up made, shared by every test of this file (its free requests are spent once).
struct Corner {
    endpoint: String,
    dev: String,
    gbl: String,
    bucket: String,
    /// The replicas' identity: the right to assume the `deployer` roles, and nothing else.
    instance: Keys,
    dev_admin: Keys,
    gbl_admin: Keys,
}

static CORNER: tokio::sync::OnceCell<Corner> = tokio::sync::OnceCell::const_new();

async fn corner(endpoint: &str) -> &'static Corner {
    CORNER.get_or_init(|| set_up(endpoint.to_owned())).await
}

fn role_arn(account: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:role/{name}")
}

/// One request of the free window: not signed (moto checks nothing yet), its account named by
/// moto's `x-moto-account-id`. Answers the response body.
async fn unchecked(
    endpoint: &str,
    service: &str,
    account: &str,
    form: &[(&str, String)],
) -> String {
    let response = reqwest::Client::new()
        .post(endpoint)
        .header("x-moto-account-id", account)
        .header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIDUNCHECKED/20261208/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0"
            ),
        )
        .form(form)
        .send()
        .await
        .unwrap_or_else(|e| panic!("the emulator at {endpoint}: {e}"));
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(
        !body.contains("InvalidClientTokenId"),
        "the emulator refused an unchecked request: it counted more requests than the set-up's \
         {FREE_REQUESTS} (another client of {endpoint}?): {body}"
    );
    assert!(status.is_success(), "{service} {form:?}: {status} {body}");
    body
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let start = text
        .find(open)
        .unwrap_or_else(|| panic!("no {open} in {text}"))
        + open.len();
    let end = text[start..].find(close).unwrap() + start;
    &text[start..end]
}

/// An IAM user with one inline policy and an access key.
async fn user(endpoint: &str, account: &str, name: &str, policy: &Json) -> Keys {
    let v = || ("Version", "2010-05-08".to_owned());
    let name = name.to_owned();
    unchecked(
        endpoint,
        "iam",
        account,
        &[
            ("Action", "CreateUser".into()),
            v(),
            ("UserName", name.clone()),
        ],
    )
    .await;
    unchecked(
        endpoint,
        "iam",
        account,
        &[
            ("Action", "PutUserPolicy".into()),
            v(),
            ("UserName", name.clone()),
            ("PolicyName", "only".into()),
            ("PolicyDocument", policy.to_string()),
        ],
    )
    .await;
    let body = unchecked(
        endpoint,
        "iam",
        account,
        &[
            ("Action", "CreateAccessKey".into()),
            v(),
            ("UserName", name),
        ],
    )
    .await;
    Keys {
        id: between(&body, "<AccessKeyId>", "</AccessKeyId>").to_owned(),
        secret: between(&body, "<SecretAccessKey>", "</SecretAccessKey>").to_owned(),
    }
}

/// A policy as moto can evaluate it: the statements of CloudFormation and EC2 actions on `*`
/// (moto authorizes those services' calls against `*`, which no narrower ARN matches). Every
/// action stays the template's.
fn as_moto_evaluates(mut policy: Json) -> Json {
    for statement in policy["Statement"].as_array_mut().unwrap() {
        let actions = iam::strings(&statement["Action"]);
        if actions
            .iter()
            .all(|a| a.starts_with("cloudformation:") || a.starts_with("ec2:"))
        {
            statement["Resource"] = json!("*");
        }
    }
    policy
}

async fn set_up(endpoint: String) -> Corner {
    // Accounts and a bucket of this process's own (the suite runs twice against one emulator).
    let base = 100_000_000_000 + u64::from(std::process::id() % 800_000) * 1000;
    let (dev, gbl, replica) = (
        (base + 1).to_string(),
        (base + 4).to_string(),
        (base + 9).to_string(),
    );
    let bucket = format!("least-privilege-{base}");
    let instance_role = role_arn(&replica, "deployer-instance");

    let opened = reqwest::Client::new()
        .post(format!("{endpoint}/moto-api/reset-auth"))
        .body(FREE_REQUESTS.to_string())
        .send()
        .await
        .unwrap();
    assert!(
        opened.status().is_success(),
        "moto's reset-auth: {}",
        opened.status()
    );

    let everything = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    let access = Template::load("deployer-access.yaml");
    let text = std::fs::read_to_string(iam::infra_path("deployer-access.yaml")).unwrap();
    let mut admins = Vec::new();
    for account in [&dev, &gbl] {
        admins.push(user(&endpoint, account, "admin", &everything).await);
        let v = || ("Version", "2010-05-15".to_owned());
        unchecked(
            &endpoint,
            "cloudformation",
            account,
            &[
                ("Action", "CreateStack".into()),
                v(),
                ("StackName", "deployer-access".into()),
                ("TemplateBody", text.clone()),
                ("Capabilities.member.1", "CAPABILITY_NAMED_IAM".into()),
                (
                    "Parameters.member.1.ParameterKey",
                    "DeployerInstanceRoleArn".into(),
                ),
                ("Parameters.member.1.ParameterValue", instance_role.clone()),
                (
                    "Parameters.member.2.ParameterKey",
                    "ArtifactsBucketName".into(),
                ),
                ("Parameters.member.2.ParameterValue", bucket.clone()),
            ],
        )
        .await;
        // The role's policy as the template writes it, resolved for this account (moto made the
        // role, but cannot evaluate the policy CloudFormation gave it).
        let ctx = Context::new(account, REGION, "deployer-access")
            .param("DeployerInstanceRoleArn", instance_role.clone())
            .param("ArtifactsBucketName", bucket.clone());
        let policies = access.named_role_policies("DeployerRole", &ctx);
        assert_eq!(
            policies.len(),
            1,
            "one inline policy on the deployer role: {policies:?}"
        );
        let (name, policy) = policies.into_iter().next().unwrap();
        unchecked(
            &endpoint,
            "iam",
            account,
            &[
                ("Action", "PutRolePolicy".into()),
                ("Version", "2010-05-08".into()),
                ("RoleName", "deployer".into()),
                ("PolicyName", name),
                ("PolicyDocument", as_moto_evaluates(policy).to_string()),
            ],
        )
        .await;
    }
    // The replicas: the instance role's statements that assume roles (its other rights are the
    // boot script's), with EnvironmentRoleArns naming the two deployer roles.
    let ctx = Context::new(&replica, REGION, "GBL-DEPLOYER").param(
        "EnvironmentRoleArns",
        json!([role_arn(&dev, "deployer"), role_arn(&gbl, "deployer")]),
    );
    let statements: Vec<Json> = Template::load("deployer.yaml")
        .role_policies("InstanceRole", &ctx)
        .iter()
        .flat_map(|doc| doc["Statement"].as_array().cloned().unwrap_or_default())
        .filter(|s| iam::strings(&s["Action"]) == ["sts:AssumeRole"])
        .collect();
    assert_eq!(statements.len(), 1, "{statements:?}");
    let instance = user(
        &endpoint,
        &replica,
        "deployer-instance",
        &json!({"Version": "2012-10-17", "Statement": statements}),
    )
    .await;

    // From here on every request is checked.
    let probe = reqwest::Client::new()
        .post(&endpoint)
        .header(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential=AKIDNOBODY/20261208/{REGION}/sts/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .form(&[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")])
        .send()
        .await
        .unwrap();
    let status = probe.status();
    let body = probe.text().await.unwrap();
    assert!(
        body.contains("InvalidClientTokenId"),
        "the emulator at {endpoint} answered an unknown key with {status}: it does not enforce IAM \
         after the set-up's {FREE_REQUESTS} requests (more requests than that were free?): {body}"
    );

    let corner = Corner {
        endpoint,
        dev,
        gbl,
        bucket,
        instance,
        gbl_admin: admins.pop().unwrap(),
        dev_admin: admins.pop().unwrap(),
    };
    // What GBL-DEPLOYER makes (deployer.yaml): the bucket and its notifications queue.
    let gbl_admin = Admin::new(&corner, &corner.gbl_admin).await;
    gbl_admin
        .s3
        .create_bucket()
        .bucket(&corner.bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    gbl_admin
        .sqs
        .create_queue()
        .queue_name("deployer-artifacts-events")
        .send()
        .await
        .unwrap();
    for admin in [gbl_admin, Admin::new(&corner, &corner.dev_admin).await] {
        admin
            .stack_settles("deployer-access", "CREATE_COMPLETE")
            .await;
    }
    corner
}

/// An account's administrator: arranges and inspects, never the deployer's.
struct Admin {
    cfn: aws_sdk_cloudformation::Client,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    ec2: aws_sdk_ec2::Client,
}

async fn sdk_config(
    endpoint: &str,
    credentials: SharedCredentialsProvider,
) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .load()
        .await
}

impl Admin {
    async fn new(corner: &Corner, keys: &Keys) -> Admin {
        Self::with(&corner.endpoint, keys.provider()).await
    }

    async fn with(endpoint: &str, credentials: SharedCredentialsProvider) -> Admin {
        let config = sdk_config(endpoint, credentials).await;
        Admin {
            cfn: aws_sdk_cloudformation::Client::new(&config),
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&config)
                    .force_path_style(true)
                    .build(),
            ),
            sqs: aws_sdk_sqs::Client::new(&config),
            ec2: aws_sdk_ec2::Client::new(&config),
        }
    }

    /// Waits (up to a minute) for the stack to leave its `*_IN_PROGRESS` state; it must end in
    /// `expected`.
    async fn stack_settles(
        &self,
        stack: &str,
        expected: &str,
    ) -> aws_sdk_cloudformation::types::Stack {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self
                .cfn
                .describe_stacks()
                .stack_name(stack)
                .send()
                .await
                .unwrap();
            let found = out.stacks()[0].clone();
            let status = found.stack_status().unwrap().as_str().to_owned();
            if !status.ends_with("_IN_PROGRESS") {
                assert_eq!(
                    status,
                    expected,
                    "{stack}: {:?}",
                    found.stack_status_reason()
                );
                return found;
            }
            assert!(Instant::now() < deadline, "{stack} still {status}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Messages waiting in the queue, and taken but not deleted.
    async fn queue_holds(&self, url: &str) -> (u64, u64) {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        let count = |name: A| {
            out.attributes()
                .and_then(|a| a.get(&name))
                .map_or(0, |v| v.parse().unwrap())
        };
        (
            count(A::ApproximateNumberOfMessages),
            count(A::ApproximateNumberOfMessagesNotVisible),
        )
    }
}

/// The deployer, as the replicas run it: base credentials that can only assume the roles.
struct Deployer {
    state: deployer::AppState,
    token: String,
    _dir: tempfile::TempDir,
}

impl Deployer {
    async fn start(corner: &Corner) -> Deployer {
        let dir = tempfile::tempdir().unwrap();
        let Corner {
            endpoint,
            dev,
            gbl,
            bucket,
            ..
        } = corner;
        let mut toml = format!(
            "listen = \"127.0.0.1:0\"\nstore = {:?}\npoll_interval_ms = 50\n\
             [artifacts]\nbucket = \"{bucket}\"\nprefix = \"builds/\"\nenvironment = \"GBL\"\n\
             notifications_queue_url = \"{endpoint}/{gbl}/deployer-artifacts-events\"\n",
            dir.path().join("deployer.sqlite")
        );
        for (name, account) in [("DEV", dev), ("GBL", gbl)] {
            toml.push_str(&format!(
                "[[environments]]\nname = \"{name}\"\naccount_id = \"{account}\"\nregion = \"{REGION}\"\n\
                 role_arn = \"{}\"\ncloudformation_role_arn = \"{}\"\n\
                 stack_events_topic_arn = \"arn:aws:sns:{REGION}:{account}:deployer-stack-events\"\n\
                 stack_events_queue_url = \"{endpoint}/{account}/deployer-stack-events\"\n\
                 endpoint_url = \"{endpoint}\"\n",
                role_arn(account, "deployer"),
                role_arn(account, "deployer-cloudformation"),
            ));
        }
        toml.push_str(
            "[[projects]]\nname = \"web\"\ntitle = \"Web\"\nenvironments = [\"DEV\"]\n\
             [auth.roles]\nviewer = {}\nadmin = { admin = true }\n\
             [auth.groups]\nadmins = \"admin\"\neveryone = \"viewer\"\n",
        );
        let mut config = deployer::config::Config::parse(&toml).unwrap();
        if let Some(admin) = common::postgres_server() {
            config.store = deployer::config::StoreLocation::Postgres(
                deployer::store::scratch_postgres_database(&admin)
                    .await
                    .unwrap(),
            );
        }
        let aws =
            deployer::aws::AwsClients::connect(&config, Some(corner.instance.provider())).await;
        let state = deployer::state(config, aws).await.unwrap();
        let token = deployer::auth::new_secret(deployer::auth::TOKEN_PREFIX);
        state
            .auth
            .store()
            .create_token(&deployer::store::NewTokenRow {
                id: "t-least-privilege",
                name: "least-privilege",
                role: "admin",
                hash: &deployer::auth::hash(&token),
                created_by: "least-privilege",
                person: "sub:least-privilege",
                person_name: "least-privilege",
                expires_at: None,
            })
            .await
            .unwrap();
        Deployer {
            state,
            token,
            _dir: dir,
        }
    }

    async fn call(&self, method: &str, uri: &str, body: Json) -> (StatusCode, Json) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json");
        let request = match body {
            Json::Null => request.body(Body::empty()),
            body => request.body(Body::from(body.to_string())),
        };
        common::answer(&self.state, request.unwrap()).await
    }

    /// Starts deploying the build of `web` to DEV; answers the deployment's id.
    async fn begin(&self, build: &str) -> String {
        let (status, started) = self
            .call(
                "POST",
                "/api/v1/deployments",
                json!({"project": "web", "environment": "DEV", "build": build}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{started}");
        started["id"].as_str().unwrap().to_owned()
    }

    /// The deployment once `ready` says so (or fails after 120 s, showing the last answer).
    async fn until(&self, id: &str, what: &str, ready: impl Fn(&Json) -> bool) -> Json {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (status, detail) = self
                .call("GET", &format!("/api/v1/deployments/{id}"), Json::Null)
                .await;
            assert_eq!(status, StatusCode::OK, "{detail}");
            if ready(&detail) {
                return detail;
            }
            assert!(
                Instant::now() < deadline,
                "deployment {id}: never {what}: {detail}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The deployment's outcome, once it has one.
    async fn outcome(&self, id: &str) -> Json {
        self.until(id, "finished", |d| {
            !matches!(
                d["status"].as_str(),
                Some("pending" | "running" | "cancelling")
            )
        })
        .await
    }

    /// Deploys the build of `web` to DEV and waits for the outcome.
    async fn deploy(&self, build: &str) -> Json {
        let id = self.begin(build).await;
        self.outcome(&id).await
    }
}

/// A session of `role` as the replicas get one (the deployer's own way: the SDK's provider).
async fn assumed(corner: &Corner, role: &str) -> aws_config::sts::AssumeRoleProvider {
    let base = sdk_config(&corner.endpoint, corner.instance.provider()).await;
    aws_config::sts::AssumeRoleProvider::builder(role)
        .session_name("least-privilege")
        .region(aws_config::Region::new(REGION))
        .configure(&base)
        .build()
        .await
}

/// The templates the builds carry: the suite's, launching an image (the rollback verdict looks
/// it up with ec2:DescribeImages).
fn launching_an_image(template: &str) -> String {
    template.replacen(
        "Parameters:\n",
        "Parameters:\n  ImageId:\n    Type: AWS::EC2::Image::Id\n",
        1,
    )
}

#[tokio::test]
async fn the_deployer_creates_updates_and_judges_a_rollback_with_only_the_rights_infra_grants() {
    let Some(endpoint) = emulator() else {
        return;
    };
    let corner = corner(&endpoint).await;
    let (dev_admin, gbl_admin) = (
        Admin::new(corner, &corner.dev_admin).await,
        Admin::new(corner, &corner.gbl_admin).await,
    );

    // Sanity: the emulator holds the replicas to their one right.
    let replica = Admin::with(&corner.endpoint, corner.instance.provider()).await;
    let refused = replica.cfn.describe_stacks().send().await.unwrap_err();
    assert!(
        format!("{refused:?}").contains("AccessDenied"),
        "the replicas' user may call CloudFormation itself: {refused:?}"
    );

    // Three builds: the first, an update adding a bucket, and one launching an image the
    // account cannot see.
    let image = dev_admin
        .ec2
        .describe_images()
        .send()
        .await
        .unwrap()
        .images()[0]
        .image_id()
        .unwrap()
        .to_owned();
    let builds = [
        (
            "web-master-1",
            launching_an_image(common::TEMPLATE),
            image.as_str(),
        ),
        (
            "web-master-2",
            launching_an_image(&common::template_with_a_bucket()),
            image.as_str(),
        ),
        (
            "web-master-3",
            launching_an_image(common::TEMPLATE),
            "ami-0123456789abcdef0",
        ),
    ];
    for (build, template, image) in &builds {
        for (file, body) in [
            ("template.yaml", template.clone()),
            (
                "parameters.json",
                json!({"Greeting": "hello", "ImageId": image}).to_string(),
            ),
        ] {
            gbl_admin
                .s3
                .put_object()
                .bucket(&corner.bucket)
                .key(format!("builds/web/{build}/{file}"))
                .body(body.into_bytes().into())
                .send()
                .await
                .unwrap();
        }
    }

    let deployer = Deployer::start(corner).await;

    // A new project: its stack is created (CreateStack, as the deployer role).
    let first = deployer.deploy("web-master-1").await;
    assert_eq!(first["status"], "succeeded", "{first}");
    dev_admin.stack_settles("DEV-WEB", "CREATE_COMPLETE").await;

    // An update, previewed (a change set made, described and deleted) …
    let (status, changes) = deployer
        .call(
            "POST",
            "/api/v1/projects/web/preview",
            json!({"environment": "DEV", "build": "web-master-2"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changes}");
    assert!(
        changes
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["action"] == "Add" && c["logical_id"] == "Uploads"),
        "{changes}"
    );
    let left = dev_admin
        .cfn
        .list_change_sets()
        .stack_name("DEV-WEB")
        .send()
        .await
        .unwrap();
    assert!(
        left.summaries().is_empty(),
        "the preview's change set is left: {left:?}"
    );
    // … then deployed (a change set made, described, executed).
    let second = deployer.deploy("web-master-2").await;
    assert_eq!(second["status"], "succeeded", "{second}");
    dev_admin.stack_settles("DEV-WEB", "UPDATE_COMPLETE").await;

    // The rollback verdict: the older build's image exists (ec2:DescribeImages), its imports
    // and the exports it keeps check out (ListExports, ListImports).
    let (status, verdict) = deployer
        .call(
            "GET",
            "/api/v1/projects/web/rollback?environment=DEV&build=web-master-1",
            Json::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{verdict}");
    assert_eq!(verdict["verdict"], "safe", "{verdict}");
    assert_eq!(verdict["warnings"], json!([]), "{verdict}");
    // And an image the account cannot see is named (DescribeImages answered, not refused).
    let (_, verdict) = deployer
        .call(
            "GET",
            "/api/v1/projects/web/rollback?environment=DEV&build=web-master-3",
            Json::Null,
        )
        .await;
    let kinds: Vec<&str> = verdict["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["missing_image"], "{verdict}");

    // A cancel: an update back to web-master-1, slowed so that it is still running, cancelled
    // (CancelUpdateStack) and rolled back by CloudFormation.
    let paced = reqwest::Client::new()
        .post(format!("{}/_local/pace", corner.endpoint))
        .json(&json!({"seconds": 0.5, "stack": "DEV-WEB"}))
        .send()
        .await
        .unwrap();
    assert!(paced.status().is_success());
    let id = deployer.begin("web-master-1").await;
    deployer
        .until(&id, "working on a resource", |d| {
            d["events"].as_array().is_some_and(|events| {
                events.iter().any(|e| {
                    e["resource_type"] != "AWS::CloudFormation::Stack"
                        && e["status"]
                            .as_str()
                            .is_some_and(|s| s.ends_with("_IN_PROGRESS"))
                })
            })
        })
        .await;
    let (status, answer) = deployer
        .call(
            "POST",
            &format!("/api/v1/deployments/{id}/cancel"),
            json!({"confirm_delete": false}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let cancelled = deployer.outcome(&id).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    dev_admin
        .stack_settles("DEV-WEB", "UPDATE_ROLLBACK_COMPLETE")
        .await;

    // Both queues are read and emptied as the deployer role (ReceiveMessage, DeleteMessage).
    let queues = [
        (
            &gbl_admin,
            format!(
                "{}/{}/deployer-artifacts-events",
                corner.endpoint, corner.gbl
            ),
        ),
        (
            &dev_admin,
            format!("{}/{}/deployer-stack-events", corner.endpoint, corner.dev),
        ),
    ];
    for (admin, url) in &queues {
        admin
            .sqs
            .send_message()
            .queue_url(url)
            .message_body("{\"least-privilege\": \"a message the deployer reads and deletes\"}")
            .send()
            .await
            .unwrap();
    }
    for (admin, url) in &queues {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let holds = admin.queue_holds(url).await;
            if holds == (0, 0) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{url} still holds {holds:?} (waiting, taken but not deleted): the deployer cannot read or delete its messages"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // And the deployer role, all it does being done, may do nothing more: write to the bucket,
    // say, or delete the access stack's queue.
    let as_role = Admin::with(
        &corner.endpoint,
        SharedCredentialsProvider::new(assumed(corner, &role_arn(&corner.gbl, "deployer")).await),
    )
    .await;
    let refused = as_role
        .s3
        .put_object()
        .bucket(&corner.bucket)
        .key("builds/web/web-master-9/template.yaml")
        .body(b"{}".to_vec().into())
        .send()
        .await;
    assert!(
        refused.is_err(),
        "the deployer role may write to the bucket"
    );
    let refused = as_role
        .sqs
        .delete_queue()
        .queue_url(format!(
            "{}/{}/deployer-stack-events",
            corner.endpoint, corner.gbl
        ))
        .send()
        .await;
    assert!(refused.is_err(), "the deployer role may delete a queue");
    // Neither may the replicas assume a role the instance role does not name.
    let other = assumed(corner, &role_arn(&corner.dev, "deployer-cloudformation"))
        .await
        .provide_credentials()
        .await;
    assert!(
        other.is_err(),
        "the replicas may assume the CloudFormation role"
    );
}
