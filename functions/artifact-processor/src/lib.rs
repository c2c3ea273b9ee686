//! artifact-processor: the invoke action that post-processes CodePipeline artifacts.
//!
//! Steps run in order (README, "artifact-processor"): `publish` a build into an S3 site bucket, write
//! `image_definitions`, `render` placeholders, write a checksum `manifest`, `filter` files and
//! `promote` an artifact to a release bucket. Input artifacts are streamed with bounded memory
//! and checked as untrusted; outputs are written with SSE-KMS and the job's key.
//!
//! Where things are: `params` (the `UserParameters` and the checks made before any step runs),
//! one module per step (`publish`, `image_definitions`, `render`, `manifest`, `promote`;
//! `filter` lives in `transform`, which streams an input artifact into an output one), and the
//! helpers they share: `globs` and `digest`. This file runs the steps in order.

#![warn(missing_docs)]

mod digest;
mod globs;
mod image_definitions;
mod manifest;
mod params;
mod promote;
mod publish;
mod render;
mod transform;

pub use params::{Params, Step};

use pipeline_ext::job::{Job, JobError, JobOutcome, JobSuccess};
use std::collections::HashMap;

/// Clients signed with the function's role: the site and release buckets are not the
/// pipeline's artifact bucket, which only the job's credentials reach.
#[derive(Clone, Debug)]
pub struct Clients {
    /// The function role's S3 client, for buckets outside the artifact store.
    pub s3: aws_sdk_s3::Client,
    /// CloudFront, for publish's invalidation.
    pub cloudfront: aws_sdk_cloudfront::Client,
}

impl Clients {
    /// The clients of one container.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            s3: aws_sdk_s3::Client::new(config),
            cloudfront: aws_sdk_cloudfront::Client::new(config),
        }
    }
}

/// What one step did: a summary line and output variables.
#[derive(Default)]
pub(crate) struct StepReport {
    pub summary: String,
    pub variables: Vec<(&'static str, String)>,
}

/// Runs the job's steps in order.
pub async fn handle(job: Job<Params, ()>, clients: Clients) -> Result<JobOutcome<()>, JobError> {
    check_plan(&job)?;
    let mut summary = Vec::new();
    let mut totals: HashMap<&'static str, u64> = HashMap::new();
    let mut success = JobSuccess::default();
    for (index, step) in job.params.steps.iter().enumerate() {
        let label = format!("step {} ({})", index + 1, step.name());
        job.doing(&label);
        // Boxed: each step is a large future, and nesting them all inline overflows rustc's layout depth.
        let report = Box::pin(run_step(&job, &clients, step))
            .await
            .map_err(|e| e.context(&label))?;
        tracing::info!(step = step.name(), summary = %report.summary, "step done");
        summary.push(format!("{label}: {}", report.summary));
        for (key, value) in report.variables {
            match key {
                // Counts add up across several publish steps.
                "FilesPublished" | "FilesHeadersUpdated" | "FilesDeleted" => {
                    *totals.entry(key).or_default() += value.parse::<u64>().unwrap_or(0);
                }
                _ => {
                    success.output_variables.insert(key.to_string(), value);
                }
            }
        }
    }
    for (key, value) in totals {
        success
            .output_variables
            .insert(key.to_string(), value.to_string());
    }
    success.summary = summary.join("\n");
    Ok(JobOutcome::Succeeded(success))
}

async fn run_step(
    job: &Job<Params, ()>,
    clients: &Clients,
    step: &Step,
) -> Result<StepReport, JobError> {
    match step {
        Step::Publish(s) => publish::run(job, clients, s).await,
        Step::ImageDefinitions(s) => image_definitions::run(job, s).await,
        Step::Render(s) => render::run(job, s).await,
        Step::Manifest(s) => manifest::run(job, s).await,
        Step::Filter(s) => transform::filter(job, s).await,
        Step::Promote(s) => promote::run(job, clients, s).await,
    }
}

/// Checks every step against the job before anything runs, so a mistake in step 3 does not
/// surface after step 1 has published.
fn check_plan(job: &Job<Params, ()>) -> Result<(), JobError> {
    if job.params.steps.is_empty() {
        return Err(JobError::config(
            "UserParameters: `steps` is empty; list at least one step",
        ));
    }
    let mut writers: HashMap<&str, usize> = HashMap::new();
    for (index, step) in job.params.steps.iter().enumerate() {
        let at = |e: JobError| e.context(format!("step {} ({})", index + 1, step.name()));
        if let Some(input) = step.input() {
            job.input(input).map_err(at)?;
        }
        if let Some(output) = step.output() {
            job.output(output).map_err(at)?;
            if let Some(first) = writers.insert(output, index + 1) {
                return Err(JobError::config(format!(
                    "output artifact `{output}` is written by step {first} and step {}; each output can be written once",
                    index + 1
                )));
            }
        }
        match step {
            Step::Publish(s) => publish::check(s).map_err(at)?,
            Step::ImageDefinitions(s) => image_definitions::check(s).map_err(at)?,
            Step::Render(s) => render::check(s).map_err(at)?,
            Step::Filter(s) => transform::check_filter(s).map_err(at)?,
            Step::Promote(s) => promote::check(s).map_err(at)?,
            Step::Manifest(_) => {}
        }
    }
    Ok(())
}
