//! `UserParameters` of the artifact-processor (README, "artifact-processor").

mod wire;

use indexmap::IndexMap;
use pipeline_ext::job::JobError;
use pipeline_ext::target_account::TargetRole;
use serde::Deserialize;
pub use wire::{Age, BucketName, DistributionId, HeaderValue};

/// The `UserParameters` of artifact-processor.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Run in order; the first failure stops the run.
    pub steps: Vec<Step>,
}

/// One step, named by its single key.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Extract an input artifact into a bucket (README, "publish").
    Publish(Box<PublishStep>),
    /// Write `imagedefinitions.json` or `imageDetail.json`.
    ImageDefinitions(ImageDefinitionsStep),
    /// Replace placeholders in some files.
    Render(RenderStep),
    /// Add `manifest.json` with every file's size and SHA-256.
    Manifest(ManifestStep),
    /// Keep or drop files by glob.
    Filter(FilterStep),
    /// Copy an input artifact to a release bucket.
    Promote(PromoteStep),
}

impl Step {
    /// The role the step's own calls are made as (publish and promote, in the target's
    /// account), when not the function's.
    pub fn target_role(&self) -> Result<Option<TargetRole>, JobError> {
        let (role, external) = match self {
            Step::Publish(s) => (&s.role_arn, &s.external_id),
            Step::Promote(s) => (&s.role_arn, &s.external_id),
            _ => return Ok(None),
        };
        TargetRole::from_params("", role.as_deref(), external.as_deref())
    }

    /// The step's key (`publish`), for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Step::Publish(_) => "publish",
            Step::ImageDefinitions(_) => "image_definitions",
            Step::Render(_) => "render",
            Step::Manifest(_) => "manifest",
            Step::Filter(_) => "filter",
            Step::Promote(_) => "promote",
        }
    }

    /// The input artifact the step reads, if any.
    pub fn input(&self) -> Option<&str> {
        match self {
            Step::Publish(s) => Some(&s.input),
            Step::ImageDefinitions(_) => None,
            Step::Render(s) => Some(&s.input),
            Step::Manifest(s) => Some(&s.input),
            Step::Filter(s) => Some(&s.input),
            Step::Promote(s) => Some(&s.input),
        }
    }

    /// The output artifact the step writes, if any.
    pub fn output(&self) -> Option<&str> {
        match self {
            Step::ImageDefinitions(s) => Some(&s.output),
            Step::Render(s) => Some(&s.output),
            Step::Manifest(s) => Some(&s.output),
            Step::Filter(s) => Some(&s.output),
            Step::Publish(_) | Step::Promote(_) => None,
        }
    }
}

/// Parallel uploads by default.
fn default_concurrency() -> usize {
    16
}

/// Changed paths over which the invalidation is `/*`.
fn default_invalidate_all_over() -> usize {
    50
}

/// `publish`: an input artifact extracted into a bucket and prefix.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishStep {
    /// The input artifact.
    pub input: String,
    /// The site bucket.
    pub bucket: BucketName,
    /// Where under the bucket (empty: its root).
    #[serde(default)]
    pub prefix: String,
    /// Delete objects under the prefix that the artifact no longer has.
    #[serde(default)]
    pub delete_stale: bool,
    /// Glob → Cache-Control, first match in the order written wins.
    #[serde(default)]
    pub cache_control: IndexMap<String, HeaderValue>,
    /// `Cache-Control` of files no pattern names.
    #[serde(default)]
    pub default_cache_control: Option<HeaderValue>,
    /// The distribution to invalidate after a change.
    #[serde(default)]
    pub cloudfront_distribution_id: Option<DistributionId>,
    /// The role in the site's account the bucket and CloudFront are reached as.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// The external id that role's trust policy requires.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Uploads in flight at once (1–64).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Past this many changed paths, the invalidation names folders (`/assets/*`) instead of
    /// files, and `/*` when that is not enough.
    #[serde(default = "default_invalidate_all_over")]
    pub invalidate_all_over: usize,
    /// How the invalidation is made and whether the step waits for it.
    #[serde(default)]
    pub invalidation: InvalidationRules,
    /// Grace for files no longer in the artifact; set, it decides what stale files go.
    #[serde(default)]
    pub prune: Option<PruneRules>,
    /// Globs of the pages a browser enters by: uploaded after every other file, and deleted
    /// without grace when the artifact no longer has them. A pattern without `/` names files in
    /// every folder.
    #[serde(default = "default_entry_points")]
    pub entry_points: Vec<String>,
    /// Where the `.br`/`.gz` variants of a file in the artifact are published.
    #[serde(default)]
    pub precompressed: EncodedLayout,
    /// Globs of the files compressed (brotli and gzip) at publish time; a pattern without `/`
    /// names files in every folder.
    #[serde(default)]
    pub compress: Vec<String>,
    /// Compression levels of `compress`.
    #[serde(default)]
    pub compress_level: CompressLevels,
}

/// `*.html`: every page, in every folder.
fn default_entry_points() -> Vec<String> {
    vec!["*.html".to_string()]
}

/// `publish.prune`: which files no longer in the artifact are deleted.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PruneRules {
    /// A file goes once the release that last published it is more than this many releases old.
    #[serde(default)]
    pub keep_releases: Option<u64>,
    /// A file goes once the release that last published it is older than this (`7d`, `12h`).
    #[serde(default)]
    pub older_than: Option<Age>,
    /// List what would be deleted, delete nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// `publish.precompressed`: where the `x.br`/`x.gz` variants of a file `x` go.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum EncodedLayout {
    /// Each under its own name, with `Content-Encoding` and the plain name's `Content-Type`.
    #[default]
    SideBySide,
    /// The brotli variant under the plain name (`Content-Encoding: br`), the others not published.
    Br,
    /// The gzip variant under the plain name (`Content-Encoding: gzip`), the others not published.
    Gzip,
}

/// `publish.compress_level`.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CompressLevels {
    /// Brotli quality, 0–11.
    #[serde(default = "default_brotli_level")]
    pub br: u32,
    /// Gzip level, 1–9.
    #[serde(default = "default_gzip_level")]
    pub gzip: u32,
}

fn default_brotli_level() -> u32 {
    11
}

fn default_gzip_level() -> u32 {
    9
}

impl Default for CompressLevels {
    fn default() -> Self {
        Self {
            br: default_brotli_level(),
            gzip: default_gzip_level(),
        }
    }
}

/// Minutes a publish waits for its invalidation by default.
fn default_max_wait_minutes() -> u32 {
    30
}

/// `publish.invalidation`.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct InvalidationRules {
    /// Succeed only once CloudFront says the invalidation is `Completed` (polled across
    /// continuations).
    #[serde(default)]
    pub wait: bool,
    /// How long to wait before the step fails saying the files are live and the cache is not.
    #[serde(default = "default_max_wait_minutes")]
    pub max_wait_minutes: u32,
    /// Folder wildcards one invalidation may use (CloudFront allows 15 in progress at once).
    #[serde(default = "default_max_wildcards")]
    pub max_wildcards: usize,
}

fn default_max_wildcards() -> usize {
    10
}

impl Default for InvalidationRules {
    fn default() -> Self {
        Self {
            wait: false,
            max_wait_minutes: default_max_wait_minutes(),
            max_wildcards: default_max_wildcards(),
        }
    }
}

/// Which file `image_definitions` writes.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// `imagedefinitions.json` for ECS standard deployments.
    #[default]
    Imagedefinitions,
    /// `imageDetail.json` for ECS blue/green deployments.
    Imagedetail,
}

/// `image_definitions`: the file ECS deploy actions read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageDefinitionsStep {
    /// The output artifact.
    pub output: String,
    /// `imagedefinitions.json` or `imageDetail.json`.
    #[serde(default)]
    pub format: ImageFormat,
    /// Container name → image URI.
    pub containers: IndexMap<String, String>,
}

/// `render`: placeholders replaced in some files.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderStep {
    /// The input artifact.
    pub input: String,
    /// The output artifact.
    pub output: String,
    /// Paths or globs of the files to render; every other file is copied as is.
    pub files: Vec<String>,
    /// Placeholder names and their values, in order.
    pub values: IndexMap<String, String>,
}

/// `manifest`: the artifact plus `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestStep {
    /// The input artifact.
    pub input: String,
    /// The output artifact.
    pub output: String,
}

/// `**`: every file.
fn everything() -> Vec<String> {
    vec!["**".to_string()]
}

/// `filter`: some files of an artifact.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterStep {
    /// The input artifact.
    pub input: String,
    /// The output artifact.
    pub output: String,
    /// Globs of the files kept (default: all).
    #[serde(default = "everything")]
    pub include: Vec<String>,
    /// Globs of the files dropped from those.
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// How `promote` encrypts the copy.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
pub enum PromoteEncryption {
    /// SSE-S3.
    #[default]
    #[serde(rename = "AES256")]
    Aes256,
    /// SSE-KMS, with `kms_key_id` or the bucket's key.
    #[serde(rename = "aws:kms")]
    AwsKms,
}

/// `promote`: an input artifact copied to a release bucket.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromoteStep {
    /// The input artifact.
    pub input: String,
    /// The release bucket.
    pub bucket: BucketName,
    /// The key, variables substituted.
    pub key: String,
    /// How the copy is encrypted.
    #[serde(default)]
    pub encryption: PromoteEncryption,
    /// The KMS key of `aws:kms`.
    #[serde(default)]
    pub kms_key_id: Option<HeaderValue>,
    /// The role in the release bucket's account the copy is written as.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// The external id that role's trust policy requires.
    #[serde(default)]
    pub external_id: Option<String>,
}
