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

/// Lists build folders in the artifacts bucket, with a per-project listing kept in memory.
///
/// A page never waits on a re-list: once a project has been listed, its listing is served
/// however old, and one that is older than the TTL is re-listed in the background (one at a
/// time). A re-list lists only what is new: the folder names (one entry per build, a thousand
/// per page), then the files of folders it has not seen or saw incomplete; every
/// [`FULL_RELIST_EVERY`] it lists every object again, which catches a file added to a complete
/// folder.
pub struct ArtifactStore {
    lister: Lister,
    ttl: Duration,
    slots: std::sync::Mutex<std::collections::HashMap<String, Arc<Slot>>>,
}

/// How often a project's every object is listed again (a re-list in between lists only new
/// and incomplete folders).
pub const FULL_RELIST_EVERY: Duration = Duration::from_secs(600);
/// More new folders than this at once (a bucket filled in bulk): one full listing is cheaper
/// than a listing per folder.
const MAX_FOLDERS_LISTED_ONE_BY_ONE: usize = 100;

/// What S3 held for a project at one moment.
struct Listing {
    folders: Arc<Vec<BuildFolder>>,
    /// Each folder's files (key, last modified), by folder name: what a re-list keeps.
    files: BTreeMap<String, Vec<(String, DateTime<Utc>)>>,
    at: std::time::Instant,
    full_at: std::time::Instant,
}

#[derive(Default)]
struct Slot {
    listing: std::sync::Mutex<Option<Arc<Listing>>>,
    /// One re-list of the project at a time.
    listing_now: Arc<tokio::sync::Mutex<()>>,
}

impl Slot {
    fn current(&self) -> Option<Arc<Listing>> {
        self.listing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set(&self, listing: Option<Arc<Listing>>) {
        *self
            .listing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = listing;
    }
}

/// What lists: S3, the bucket and the counts (cloned into a background re-list).
#[derive(Clone)]
struct Lister {
    s3: S3Client,
    bucket: String,
    prefix: String,
    /// The configured environment names: `parameters.<ENV>.json` must name one of them (the
    /// config may change while the deployer runs).
    environments: Arc<std::sync::RwLock<Vec<String>>>,
    /// How many times each project was listed, and with how many S3 calls.
    counts: Arc<std::sync::Mutex<std::collections::HashMap<String, ListingCounts>>>,
}

/// A project's listings since start: how many, and the S3 calls they made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListingCounts {
    pub listings: u64,
    pub full_listings: u64,
    pub s3_calls: u64,
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
            lister: Lister {
                s3,
                bucket,
                prefix,
                environments: Arc::new(std::sync::RwLock::new(environments)),
                counts: Default::default(),
            },
            ttl,
            slots: Default::default(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.lister.bucket
    }

    /// The environments a build's `parameters.<ENV>.json` may name (after a config reload).
    /// Listings already made keep what they said until their next re-list.
    pub fn set_environments(&self, environments: Vec<String>) {
        *self
            .lister
            .environments
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = environments;
    }

    /// The folder names directly under the prefix — every one a project, or named hidden or
    /// refused by the catalog. One delimiter listing (a thousand folders per S3 call).
    pub async fn project_folders(&self) -> Result<Vec<String>, AwsFailure> {
        let (mut names, _) = self.lister.folder_names(&self.lister.prefix).await?;
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Empty, or ending with `/`: a project's folders are under `<prefix><project>/`.
    pub fn prefix(&self) -> &str {
        &self.lister.prefix
    }

    /// How many times the project's folders were listed in S3 since start.
    pub fn listings(&self, project: &str) -> u64 {
        self.counts(project).listings
    }

    /// The project's listings since start, and the S3 calls they made.
    pub fn counts(&self, project: &str) -> ListingCounts {
        self.lister
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(project)
            .copied()
            .unwrap_or_default()
    }

    fn slot(&self, project: &str) -> Arc<Slot> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(project.to_owned())
            .or_default()
            .clone()
    }

    /// The project's build folders, newest first, for a page: the listing in memory, however
    /// old (one older than the TTL is re-listed in the background meanwhile); only a project
    /// never listed yet waits for its first listing (callers at once share it).
    pub async fn folders(&self, project: &str) -> Result<Arc<Vec<BuildFolder>>, AwsFailure> {
        let slot = self.slot(project);
        if let Some(listing) = slot.current() {
            crate::metrics::cache("build_listings", true);
            if listing.at.elapsed() >= self.ttl
                && let Ok(guard) = slot.listing_now.clone().try_lock_owned()
            {
                let (lister, slot, project) =
                    (self.lister.clone(), slot.clone(), project.to_owned());
                tokio::spawn(async move {
                    if let Err(e) = lister.relist(&project, &slot).await {
                        tracing::debug!(project, error = %e, "background re-list failed");
                    }
                    drop(guard);
                });
            }
            return Ok(listing.folders.clone());
        }
        crate::metrics::cache("build_listings", false);
        self.relist(project, self.ttl).await
    }

    /// The project's build folders no older than `max_age`: re-listed now (only what is new)
    /// when the listing in memory is older. Pages are served the previous listing meanwhile.
    pub async fn relist(
        &self,
        project: &str,
        max_age: Duration,
    ) -> Result<Arc<Vec<BuildFolder>>, AwsFailure> {
        let slot = self.slot(project);
        let _one = slot.listing_now.lock().await;
        if let Some(listing) = slot.current()
            && listing.at.elapsed() < max_age
        {
            return Ok(listing.folders.clone());
        }
        self.lister.relist(project, &slot).await
    }

    /// The listing pages were last given, however old, without listing.
    pub fn cached(&self, project: &str) -> Option<Arc<Vec<BuildFolder>>> {
        self.slot(project).current().map(|l| l.folders.clone())
    }

    /// Forgets the listing of a project: the next caller waits for a full listing (tests that
    /// just wrote a build use it).
    pub fn invalidate(&self, project: &str) {
        // A new slot: a re-list under way (begun before what made the caller invalidate) ends
        // in the old one, unseen.
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(project);
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
        let project_prefix = format!("{}{}/", self.lister.prefix, project);
        let (files, _) = self
            .lister
            .objects(&format!("{project_prefix}{build}/"))
            .await?;
        let mut folders = group_into_builds(project, &project_prefix, files);
        check_overrides(&mut folders, &self.lister.environment_names());
        Ok(folders.into_iter().find(|f| f.build.id == build))
    }
    /// Reads one artifact: its size is checked before the body is read (≤ 1 MB), and the read
    /// is bounded in time. A byte-order mark is dropped (editors on some systems write one).
    pub async fn fetch(&self, key: &str) -> Result<String, FetchError> {
        let bucket = &self.lister.bucket;
        let object = self
            .lister
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

impl Lister {
    fn environment_names(&self) -> Vec<String> {
        self.environments
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Lists the project again (only what is new when there is a recent full listing) and
    /// keeps the result in `slot`. The caller holds the slot's `listing_now`.
    async fn relist(
        &self,
        project: &str,
        slot: &Slot,
    ) -> Result<Arc<Vec<BuildFolder>>, AwsFailure> {
        let folder_prefix = format!("{}{}/", self.prefix, project);
        let previous = slot
            .current()
            .filter(|p| p.full_at.elapsed() < FULL_RELIST_EVERY);
        let mut calls = 0;
        let (files, full_at) = match previous {
            Some(previous) => {
                let (names, c) = self.folder_names(&folder_prefix).await?;
                calls += c;
                let stale: Vec<&String> = names
                    .iter()
                    .filter(|name| match previous.files.get(*name) {
                        None => true,
                        Some(files) => !complete(files),
                    })
                    .collect();
                if stale.len() > MAX_FOLDERS_LISTED_ONE_BY_ONE {
                    let (files, c) = self.objects(&folder_prefix).await?;
                    calls += c;
                    (by_folder(&folder_prefix, files), None)
                } else {
                    let mut files: BTreeMap<String, Vec<(String, DateTime<Utc>)>> = names
                        .iter()
                        .filter_map(|name| Some((name.clone(), previous.files.get(name)?.clone())))
                        .collect();
                    let listed = futures::future::join_all(
                        stale
                            .iter()
                            .map(|name| self.objects_of(&folder_prefix, name)),
                    )
                    .await;
                    for (name, result) in stale.iter().zip(listed) {
                        let (found, c) = result?;
                        calls += c;
                        files.insert((*name).clone(), found);
                    }
                    (files, Some(previous.full_at))
                }
            }
            None => {
                let (files, c) = self.objects(&folder_prefix).await?;
                calls += c;
                (by_folder(&folder_prefix, files), None)
            }
        };
        let mut folders = group_into_builds(
            project,
            &folder_prefix,
            files.values().flatten().cloned().collect(),
        );
        check_overrides(&mut folders, &self.environment_names());
        let folders = Arc::new(folders);
        {
            let mut counts = self
                .counts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let counts = counts.entry(project.to_owned()).or_default();
            counts.listings += 1;
            counts.full_listings += u64::from(full_at.is_none());
            counts.s3_calls += calls;
        }
        let now = std::time::Instant::now();
        slot.set(Some(Arc::new(Listing {
            folders: folders.clone(),
            files,
            at: now,
            full_at: full_at.unwrap_or(now),
        })));
        Ok(folders)
    }

    /// One folder's files.
    async fn objects_of(
        &self,
        folder_prefix: &str,
        name: &str,
    ) -> Result<(Vec<(String, DateTime<Utc>)>, u64), AwsFailure> {
        self.objects(&format!("{folder_prefix}{name}/")).await
    }

    /// Every object under `prefix` (paginated), with its last-modified time; and the calls made.
    async fn objects(
        &self,
        prefix: &str,
    ) -> Result<(Vec<(String, DateTime<Utc>)>, u64), AwsFailure> {
        let mut files: Vec<(String, DateTime<Utc>)> = Vec::new();
        let mut calls = 0;
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            calls += 1;
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
        Ok((files, calls))
    }

    /// The names of the folders under `folder_prefix` (S3's common prefixes: one entry per
    /// folder however many files it holds); and the calls made.
    async fn folder_names(&self, folder_prefix: &str) -> Result<(Vec<String>, u64), AwsFailure> {
        let mut names = Vec::new();
        let mut calls = 0;
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(folder_prefix)
            .delimiter("/")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            calls += 1;
            let page = page.map_err(|e| {
                AwsFailure::from_sdk(format!("listing s3://{}/{folder_prefix}", self.bucket), e)
            })?;
            for common in page.common_prefixes() {
                let Some(name) = common
                    .prefix()
                    .and_then(|p| p.strip_prefix(folder_prefix))
                    .and_then(|p| p.strip_suffix('/'))
                else {
                    continue;
                };
                if !name.is_empty() {
                    names.push(name.to_owned());
                }
            }
        }
        Ok((names, calls))
    }
}

/// Files grouped by their folder (the first path segment after `folder_prefix`).
fn by_folder(
    folder_prefix: &str,
    files: Vec<(String, DateTime<Utc>)>,
) -> BTreeMap<String, Vec<(String, DateTime<Utc>)>> {
    let mut grouped: BTreeMap<String, Vec<(String, DateTime<Utc>)>> = BTreeMap::new();
    for (key, modified) in files {
        let Some((folder, _)) = key
            .strip_prefix(folder_prefix)
            .and_then(|rest| rest.split_once('/'))
        else {
            continue;
        };
        grouped
            .entry(folder.to_owned())
            .or_default()
            .push((key, modified));
    }
    grouped
}

/// Whether a folder's files hold a template and the parameters: a complete folder is not listed
/// again until the next full listing; an incomplete one (its build still being written) is.
fn complete(files: &[(String, DateTime<Utc>)]) -> bool {
    let has = |name: &str| {
        files
            .iter()
            .any(|(key, _)| key.rsplit('/').next() == Some(name))
    };
    TEMPLATE_FILES.iter().any(|t| has(t)) && has(PARAMETERS_FILE)
}
