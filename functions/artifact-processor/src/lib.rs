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
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Clients signed with the function's role: the site and release buckets are not the
/// pipeline's artifact bucket, which only the job's credentials reach.
#[derive(Clone)]
pub struct Clients {
    /// The function role's S3 client, for buckets outside the artifact store.
    pub s3: aws_sdk_s3::Client,
    /// CloudFront, for publish's invalidation.
    pub cloudfront: aws_sdk_cloudfront::Client,
    /// Assumed roles, for a step's `role_arn` in another account.
    pub sessions: pipeline_ext::target_account::RoleSessions,
}

impl Clients {
    /// The clients of one container. CloudFront's has the SDK's retries off: publish makes its
    /// own, counted and bounded by the job's deadline.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self::with_sessions(
            config,
            pipeline_ext::target_account::RoleSessions::new(config),
        )
    }

    fn with_sessions(
        config: &aws_config::SdkConfig,
        sessions: pipeline_ext::target_account::RoleSessions,
    ) -> Self {
        // An attempt that gets no answer in 10 s (CloudFront answers in well under one) is
        // given up and retried, rather than holding the job to its deadline.
        let cloudfront = aws_sdk_cloudfront::config::Builder::from(config)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(std::time::Duration::from_secs(3))
                    .operation_attempt_timeout(std::time::Duration::from_secs(10))
                    .build(),
            )
            .build();
        Self {
            s3: aws_sdk_s3::Client::new(config),
            cloudfront: aws_sdk_cloudfront::Client::from_conf(cloudfront),
            sessions,
        }
    }

    /// The clients of `step`: these, or acting as its `role_arn` for as long as the
    /// invocation can last.
    async fn for_step(&self, job: &ProcessorJob, step: &Step) -> Result<Self, JobError> {
        let Some(role) = step.target_role()? else {
            return Ok(self.clone());
        };
        let config = self
            .sessions
            .config_for(Some(&role), &job.id, job.remaining())
            .await?;
        Ok(Self::with_sessions(&config, self.sessions.clone()))
    }
}

/// A job of this function: its parameters and where a continuation resumes.
pub(crate) type ProcessorJob = Job<Params, Resume>;

/// Where a job stopped to wait, carried in the continuation token: the steps before it are
/// done, with what they reported.
#[derive(Debug, Serialize, Deserialize)]
pub struct Resume {
    /// The publish step that waits for its invalidation (0-based).
    step: usize,
    /// The summary lines so far.
    summary: Vec<String>,
    /// Output variables so far (counts summed).
    variables: BTreeMap<String, String>,
    /// The invalidations it waits for.
    wait: publish::InvalidationWait,
}

/// Summary lines are cut to this many characters in a continuation token, which CodePipeline
/// limits to 2,048 characters in all.
const RESUMED_LINE_CHARS: [usize; 3] = [400, 160, 60];

/// What one step did: a summary line and output variables.
#[derive(Default)]
pub(crate) struct StepReport {
    pub summary: String,
    pub variables: Vec<(&'static str, String)>,
}

/// What the steps reported so far.
#[derive(Default)]
struct Reports {
    summary: Vec<String>,
    variables: BTreeMap<String, String>,
}

impl Reports {
    fn add(&mut self, label: &str, report: StepReport) {
        self.summary.push(format!("{label}: {}", report.summary));
        for (key, value) in report.variables {
            match key {
                // Counts add up across several publish steps.
                "FilesPublished"
                | "FilesHeadersUpdated"
                | "FilesDeleted"
                | "FilesKept"
                | "FilesToPrune" => {
                    let sum = self
                        .variables
                        .get(key)
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                        + value.parse::<u64>().unwrap_or(0);
                    self.variables.insert(key.to_string(), sum.to_string());
                }
                _ => {
                    self.variables.insert(key.to_string(), value);
                }
            }
        }
    }

    /// A continuation waiting at `step`, its summary cut until the token fits.
    fn waiting(
        self,
        step: usize,
        wait: publish::InvalidationWait,
    ) -> Result<JobOutcome<Resume>, JobError> {
        let note = format!(
            "Waiting for CloudFront invalidation {} on distribution {}; the files are live.",
            wait.ids.join(", "),
            wait.distribution
        );
        let full = format!("{}\n{note}", self.summary.join("\n"));
        for limit in RESUMED_LINE_CHARS {
            let state = Resume {
                step,
                summary: self
                    .summary
                    .iter()
                    .map(|line| line.chars().take(limit).collect())
                    .collect(),
                variables: self.variables.clone(),
                wait: wait.clone(),
            };
            if pipeline_ext::job::fits_in_token(&state) {
                return Ok(JobOutcome::Continue {
                    state,
                    summary: full,
                    percent_complete: None,
                });
            }
        }
        Err(JobError::failed(format!(
            "{full}\nThe wait cannot be carried to the next invocation (its state is over CodePipeline's 2,048 characters); the files are live, check the invalidation in the CloudFront console"
        )))
    }
}

/// Runs the job's steps in order; on a continuation, goes on where the last invocation waited.
pub async fn handle(
    job: Job<Params, Resume>,
    clients: Clients,
) -> Result<JobOutcome<Resume>, JobError> {
    check_plan(&job)?;
    let mut reports = Reports::default();
    let mut first = 0;
    if let Some(resume) = &job.state {
        let step = match job.params.steps.get(resume.step) {
            Some(Step::Publish(step))
                if step.invalidation.wait
                    && step.cloudfront_distribution_id.as_deref()
                        == Some(resume.wait.distribution.as_str()) =>
            {
                step
            }
            _ => {
                return Err(JobError::failed(
                    "the continuation token is inconsistent with the UserParameters: it waits at a step that is not a publish waiting for that distribution",
                ))
            }
        };
        reports.summary = resume.summary.clone();
        reports.variables = resume.variables.clone();
        let label = format!("step {} (publish)", resume.step + 1);
        job.doing(format!("{label}: waiting for the CloudFront invalidation"));
        let step_clients = Box::pin(clients.for_step(&job, &job.params.steps[resume.step]))
            .await
            .map_err(|e| e.context(&label))?;
        if let Some(wait) = publish::resume_wait(&step_clients, step, resume.wait.clone())
            .await
            .map_err(|e| e.context(&label))?
        {
            return reports.waiting(resume.step, wait);
        }
        reports.summary.push(format!(
            "{label}: CloudFront invalidation {} completed",
            resume.wait.ids.join(", ")
        ));
        first = resume.step + 1;
    }
    for (index, step) in job.params.steps.iter().enumerate().skip(first) {
        let label = format!("step {} ({})", index + 1, step.name());
        job.doing(&label);
        // Boxed: each step is a large future, and nesting them all inline overflows rustc's layout depth.
        let step_clients = Box::pin(clients.for_step(&job, step))
            .await
            .map_err(|e| e.context(&label))?;
        let (report, wait) = Box::pin(run_step(&job, &step_clients, step))
            .await
            .map_err(|e| e.context(&label))?;
        tracing::info!(step = step.name(), summary = %report.summary, "step done");
        reports.add(&label, report);
        if let Some(wait) = wait {
            return reports.waiting(index, wait);
        }
    }
    let success = JobSuccess {
        summary: reports.summary.join("\n"),
        output_variables: reports.variables,
    };
    Ok(JobOutcome::Succeeded(success))
}

/// One step's report, and the invalidations a publish waits for.
async fn run_step(
    job: &Job<Params, Resume>,
    clients: &Clients,
    step: &Step,
) -> Result<(StepReport, Option<publish::InvalidationWait>), JobError> {
    let done = |report| (report, None);
    Ok(match step {
        Step::Publish(s) => {
            let published = publish::run(job, clients, s).await?;
            (published.report, published.wait)
        }
        Step::ImageDefinitions(s) => done(image_definitions::run(job, s).await?),
        Step::Render(s) => done(render::run(job, s).await?),
        Step::Manifest(s) => done(manifest::run(job, s).await?),
        Step::Filter(s) => done(transform::filter(job, s).await?),
        Step::Promote(s) => done(promote::run(job, clients, s).await?),
    })
}

/// Checks every step against the job before anything runs, so a mistake in step 3 does not
/// surface after step 1 has published.
fn check_plan(job: &Job<Params, Resume>) -> Result<(), JobError> {
    if job.params.steps.is_empty() {
        return Err(JobError::config(
            "UserParameters: `steps` is empty; list at least one step",
        ));
    }
    let mut writers: BTreeMap<&str, usize> = BTreeMap::new();
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
        step.target_role().map_err(at)?;
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
