//! AWS clients, built once at start: one set per environment (its account, region and
//! credentials, assuming a role through STS where configured; path-style S3 for emulators).

use std::collections::HashMap;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig, sts::AssumeRoleProvider};
use aws_credential_types::provider::SharedCredentialsProvider;

pub mod cfn;
mod cfn_sdk;
mod failure;
pub mod images;
pub mod queue;

pub use cfn_sdk::AwsCfn;
pub use failure::AwsFailure;

use crate::config::{Config, Environment};

/// The clients of one environment.
#[derive(Clone, Debug)]
pub struct EnvClients {
    pub cloudformation: aws_sdk_cloudformation::Client,
    pub s3: aws_sdk_s3::Client,
    /// For long polls (the artifacts bucket's notifications): its attempts may last 20 s.
    pub sqs: aws_sdk_sqs::Client,
    /// Whether the images a build launches exist in the account (DescribeImages).
    pub ec2: aws_sdk_ec2::Client,
}

/// Clients for every configured environment.
#[derive(Clone, Debug, Default)]
pub struct AwsClients {
    by_env: HashMap<String, EnvClients>,
    /// What replaced the default chain (a config reload connects new environments the same way).
    base: Option<SharedCredentialsProvider>,
}

impl AwsClients {
    /// Builds every environment's clients. `credentials` replaces the default chain as the
    /// base credentials (tests pass the emulator's static keys); `None` uses the default chain.
    pub async fn connect(config: &Config, credentials: Option<SharedCredentialsProvider>) -> Self {
        Self::connect_environments(&config.environments, credentials).await
    }

    /// As [`AwsClients::connect`], for these environments only (a config reload's new ones).
    pub async fn connect_environments(
        environments: &[Environment],
        credentials: Option<SharedCredentialsProvider>,
    ) -> Self {
        let mut by_env = HashMap::new();
        for env in environments {
            let sdk = sdk_config(env, credentials.clone()).await;
            by_env.insert(
                env.name.clone(),
                EnvClients::new(&sdk, env.endpoint_url.is_some()),
            );
        }
        AwsClients {
            by_env,
            base: credentials,
        }
    }

    /// The base credentials these clients were connected with (`None`: the default chain).
    pub fn base_credentials(&self) -> Option<SharedCredentialsProvider> {
        self.base.clone()
    }

    /// Replaces (or, with `None`, removes) one environment's clients.
    pub fn set_env(&mut self, name: &str, clients: Option<EnvClients>) {
        match clients {
            Some(clients) => {
                self.by_env.insert(name.to_owned(), clients);
            }
            None => {
                self.by_env.remove(name);
            }
        }
    }

    pub fn env(&self, name: &str) -> Option<&EnvClients> {
        self.by_env.get(name)
    }
}

impl EnvClients {
    fn new(sdk: &SdkConfig, emulator: bool) -> Self {
        // Every attempt of every call is counted (`deployer_aws_calls_total`).
        let s3 = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(emulator)
            .interceptor(crate::metrics::AwsCalls)
            .build();
        let cloudformation = aws_sdk_cloudformation::config::Builder::from(sdk)
            .interceptor(crate::metrics::AwsCalls)
            .build();
        let ec2 = aws_sdk_ec2::config::Builder::from(sdk)
            .interceptor(crate::metrics::AwsCalls)
            .build();
        let sqs = aws_sdk_sqs::config::Builder::from(sdk)
            .timeout_config(long_poll_timeouts())
            .interceptor(crate::metrics::AwsCalls)
            .build();
        EnvClients {
            cloudformation: aws_sdk_cloudformation::Client::from_conf(cloudformation),
            ec2: aws_sdk_ec2::Client::from_conf(ec2),
            s3: aws_sdk_s3::Client::from_conf(s3),
            sqs: aws_sdk_sqs::Client::from_conf(sqs),
        }
    }
}

/// An endpoint that accepts connections and never answers must not hold a page or a deployment
/// forever: each attempt is bounded, and so is an operation with its retries (the deploy engine
/// retries on top of that, saying "waiting for AWS").
fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(30))
        .build()
}

/// A long poll waits up to [`LONG_POLL_SECONDS`] for a message: its attempt may take that long.
fn long_poll_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(LONG_POLL_SECONDS as u64 + 10))
        .operation_timeout(Duration::from_secs(LONG_POLL_SECONDS as u64 * 3))
        .build()
}

/// How long one ReceiveMessage waits for a message (SQS' longest).
pub const LONG_POLL_SECONDS: i32 = 20;

async fn sdk_config(
    env: &Environment,
    credentials: Option<SharedCredentialsProvider>,
) -> SdkConfig {
    let region = Region::new(env.region.clone());
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region.clone())
        .timeout_config(timeouts());
    if let Some(profile) = &env.credentials.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &env.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(credentials) = credentials {
        loader = loader.credentials_provider(credentials);
    }
    let base = loader.load().await;
    let Some(role_arn) = &env.credentials.role_arn else {
        return base;
    };
    let provider = AssumeRoleProvider::builder(role_arn)
        .session_name(format!("deployer-{}", env.name.to_lowercase()))
        .region(region)
        .configure(&base)
        .build()
        .await;
    base.into_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .build()
}
