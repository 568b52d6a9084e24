//! The artifacts bucket — the S3 seam: every S3 call the deployer makes is here. The build
//! folders the build server wrote are listed with ListObjectsV2 (paginated), turned into
//! [`Build`]s newest first (`folders.rs`), and cached for a short while so a page load does not
//! re-list the bucket; a build's files are read with bounded size and time.

mod folders;
pub mod notifications;

pub use folders::{check_overrides, group_into_builds};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use app::model::Build;
use aws_sdk_s3::Client as S3Client;
use chrono::{DateTime, Utc};

use crate::aws::AwsFailure;
use crate::cache::TtlCache;

/// The largest artifact read: CloudFormation's own limit for a template (by TemplateURL), and
/// far more than any parameters file needs.
pub const MAX_ARTIFACT_BYTES: i64 = 1024 * 1024;
/// How long reading one artifact may take.
const ARTIFACT_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an artifact could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The artifact is not something the deployer will read (too big, not text): the build is
    /// refused.
    Unreadable(String),
    /// S3 failed or was too slow.
    Failed(String),
}

/// How long a listing is reused. New builds appear within this time (well inside a minute).
pub const LISTING_TTL: Duration = Duration::from_secs(20);

/// The template names the build server may write, in the order they are preferred.
pub const TEMPLATE_FILES: [&str; 3] = ["template.yaml", "template.yml", "template.json"];
pub const PARAMETERS_FILE: &str = "parameters.json";

/// One build folder as found in S3, with the keys of its files.
#[derive(Clone, Debug)]
pub struct BuildFolder {
    pub build: Build,
    /// The full S3 key of the template, when there is one.
    pub template_key: Option<String>,
    /// The full S3 key of `parameters.json`, when there is one.
    pub parameters_key: Option<String>,
    /// Environment name → full S3 key of `parameters.<ENV>.json`.
    pub overrides: BTreeMap<String, String>,
}

/// Lists build folders in the artifacts bucket, with a per-project cache.
pub struct ArtifactStore {
    s3: S3Client,
    bucket: String,
    prefix: String,
    /// The configured environment names: `parameters.<ENV>.json` must name one of them.
    environments: Vec<String>,
    cache: TtlCache<Arc<Vec<BuildFolder>>>,
    /// How many times each project was listed (the cost the watcher keeps low).
    listings: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

impl ArtifactStore {
    pub fn new(
        s3: S3Client,
        bucket: String,
        prefix: String,
        environments: Vec<String>,
        ttl: Duration,
    ) -> Self {
        ArtifactStore {
            s3,
            bucket,
            prefix,
            environments,
            cache: TtlCache::new("build_listings", ttl),
            listings: Default::default(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Empty, or ending with `/`: a project's folders are under `<prefix><project>/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// How many times the project's folders were listed in S3 since start.
    pub fn listings(&self, project: &str) -> u64 {
        self.listings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(project)
            .copied()
            .unwrap_or(0)
    }

    /// The project's build folders, newest first. Concurrent callers for one project share one
    /// listing; a listing younger than the TTL is reused.
    pub async fn folders(&self, project: &str) -> Result<Arc<Vec<BuildFolder>>, AwsFailure> {
        self.cache
            .get_or_load(project, || async {
                Ok(Arc::new(self.list(project).await?))
            })
            .await
    }

    /// The listing pages were last given, however old, without listing.
    pub fn cached(&self, project: &str) -> Option<Arc<Vec<BuildFolder>>> {
        self.cache.peek(project)
    }

    /// Forgets the cached listing of a project, e.g. after a build was written by a test.
    pub fn invalidate(&self, project: &str) {
        self.cache.invalidate(project);
    }

    /// Forgets the listing only when it is older than `age`: a build asked for by name that the
    /// listing lacks may have just been written, but a flood of unknown names must not re-list
    /// the bucket on every request. Returns whether it was forgotten.
    pub fn invalidate_if_older(&self, project: &str, age: Duration) -> bool {
        let stale = self.cache.age(project).is_none_or(|a| a >= age);
        if stale {
            self.cache.invalidate(project);
        }
        stale
    }

    /// One build's folder read from S3 now, not from the cached listing: what a deployment is
    /// made of is never decided by a cache (another replica's, or one a moment old). `None`
    /// when the folder is not there.
    pub async fn folder(
        &self,
        project: &str,
        build: &str,
    ) -> Result<Option<BuildFolder>, AwsFailure> {
        if build.is_empty() || build.contains('/') {
            return Ok(None);
        }
        let project_prefix = format!("{}{}/", self.prefix, project);
        let files = self.objects(&format!("{project_prefix}{build}/")).await?;
        let mut folders = group_into_builds(project, &project_prefix, files);
        check_overrides(&mut folders, &self.environments);
        Ok(folders.into_iter().find(|f| f.build.id == build))
    }

    /// Every object under `prefix` (paginated), with its last-modified time.
    async fn objects(&self, prefix: &str) -> Result<Vec<(String, DateTime<Utc>)>, AwsFailure> {
        let mut files: Vec<(String, DateTime<Utc>)> = Vec::new();
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                AwsFailure::from_sdk(format!("listing s3://{}/{prefix}", self.bucket), e)
            })?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                let modified = object
                    .last_modified()
                    .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
                    .unwrap_or_default();
                files.push((key.to_owned(), modified));
            }
        }
        Ok(files)
    }

    async fn list(&self, project: &str) -> Result<Vec<BuildFolder>, AwsFailure> {
        let folder_prefix = format!("{}{}/", self.prefix, project);
        *self
            .listings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(project.to_owned())
            .or_default() += 1;
        let files = self.objects(&folder_prefix).await?;
        let mut folders = group_into_builds(project, &folder_prefix, files);
        check_overrides(&mut folders, &self.environments);
        Ok(folders)
    }

    /// Reads one artifact: its size is checked before the body is read (≤ 1 MB), and the read
    /// is bounded in time. A byte-order mark is dropped (editors on some systems write one).
    pub async fn fetch(&self, key: &str) -> Result<String, FetchError> {
        let bucket = &self.bucket;
        let object = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                FetchError::Failed(
                    AwsFailure::from_sdk(format!("fetching s3://{bucket}/{key}"), e).to_string(),
                )
            })?;
        let name = key.rsplit('/').next().unwrap_or(key);
        if let Some(size) = object.content_length()
            && size > MAX_ARTIFACT_BYTES
        {
            return Err(FetchError::Unreadable(format!(
                "{name} is {size} bytes; the deployer reads artifacts up to {MAX_ARTIFACT_BYTES} bytes \
                 (CloudFormation's own limit for a template is 1 MB)"
            )));
        }
        let bytes = tokio::time::timeout(ARTIFACT_READ_TIMEOUT, object.body.collect())
            .await
            .map_err(|_| {
                FetchError::Failed(format!(
                    "reading {key} took longer than {} s",
                    ARTIFACT_READ_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|_| FetchError::Failed(format!("the download of {key} broke off")))?
            .into_bytes();
        if bytes.len() as i64 > MAX_ARTIFACT_BYTES {
            return Err(FetchError::Unreadable(format!(
                "{name} is {} bytes; the deployer reads artifacts up to {MAX_ARTIFACT_BYTES} bytes",
                bytes.len()
            )));
        }
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        String::from_utf8(bytes.to_vec())
            .map_err(|_| FetchError::Unreadable(format!("{name} is not UTF-8 text")))
    }
}
