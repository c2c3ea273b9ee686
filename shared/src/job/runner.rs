//! The invoke-action runner: turns one Lambda invocation into exactly one report to
//! CodePipeline, whatever the handler does (returns, errors, panics or runs out of time).

use super::continuation;
use super::event::{job_id_of, Artifact, JobEvent};
use super::outcome::{JobError, JobOutcome, JobSuccess};
use super::params::parse_user_parameters;
use super::report::{validate_output_variables, Delivery, JobReporter, ReportError};
use crate::artifacts::ArtifactStore;
use crate::sdk::SdkFailure;
use aws_config::SdkConfig;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Time kept back from the Lambda deadline for reporting the result.
pub const DEFAULT_SAFETY_MARGIN: Duration = Duration::from_secs(5);
/// Time kept back from the Lambda deadline for answering the Runtime API after reporting.
const RUNTIME_RESERVE: Duration = Duration::from_millis(200);
/// A report attempt with less time than this is not started.
const MIN_REPORT_ATTEMPT: Duration = Duration::from_millis(100);
/// Lambda `errorType` of an invocation whose event is not a CodePipeline job.
pub const ERROR_NOT_A_JOB: &str = "NotACodePipelineJob";
/// Lambda `errorType` of an invocation whose result CodePipeline never took.
pub const ERROR_NOT_REPORTED: &str = "JobResultNotReported";
/// How many finished job ids a warm container remembers to recognise repeat deliveries.
const REMEMBERED_JOBS: usize = 256;
/// Most attempts at one report (`PutJobSuccessResult` or `PutJobFailureResult`). The reporting
/// client has the SDK's own retries turned off, so this is the number of HTTP requests: a
/// struggling CodePipeline gets a few, spaced by exponential backoff with jitter, never a storm.
pub const REPORT_ATTEMPTS: u32 = 4;
/// The pause before the second attempt; each later one is three times longer, with jitter.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// One job as the handler sees it: typed parameters, continuation state, artifacts, time.
pub struct Job<P, S> {
    /// The job id.
    pub id: String,
    /// The pipeline's account.
    pub account_id: String,
    /// The Lambda request id; reported as `externalExecutionId`.
    pub request_id: String,
    /// The typed `UserParameters`.
    pub params: P,
    /// Present when CodePipeline re-invoked us with a continuation token we issued.
    pub state: Option<S>,
    /// Input artifacts.
    pub inputs: Vec<Artifact>,
    /// Output artifacts.
    pub outputs: Vec<Artifact>,
    artifacts: Option<ArtifactStore>,
    deadline: Instant,
    activity: Activity,
}

/// What a job is doing right now, for the message when its time runs out. A clone is a
/// handle on the same note, for work the job spreads over tasks.
#[derive(Clone, Default)]
pub struct Activity(Arc<Mutex<String>>);

impl Activity {
    /// Notes what the job is doing now, as [`Job::doing`].
    pub fn doing(&self, what: impl Into<String>) {
        self.set(what.into());
    }

    fn set(&self, what: String) {
        if let Ok(mut current) = self.0.lock() {
            *current = what;
        }
    }

    fn describe(&self) -> String {
        self.0.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl<P, S> Job<P, S> {
    /// Notes what the job is doing now (a step, a key, a URL), so that a job stopped at its
    /// deadline says what ran out of time, not only that time ran out.
    pub fn doing(&self, what: impl Into<String>) {
        self.activity.set(what.into());
    }

    /// A handle on the job's activity note, for tasks the job spawns.
    pub fn activity(&self) -> Activity {
        self.activity.clone()
    }

    /// Artifact IO with the job's own credentials.
    pub fn artifacts(&self) -> Result<&ArtifactStore, JobError> {
        self.artifacts
            .as_ref()
            .ok_or_else(|| JobError::config("the job event carries no artifactCredentials"))
    }

    /// The input artifact of that name (`ConfigurationError` when the action has none).
    pub fn input(&self, name: &str) -> Result<&Artifact, JobError> {
        find_artifact(&self.inputs, name, "input")
    }

    /// The output artifact of that name (`ConfigurationError` when the action has none).
    pub fn output(&self, name: &str) -> Result<&Artifact, JobError> {
        find_artifact(&self.outputs, name, "output")
    }

    /// Time left before the runner stops the handler to report (Lambda deadline minus margin).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// When the runner stops the handler to report (Lambda deadline minus the safety margin).
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

fn find_artifact<'a>(
    list: &'a [Artifact],
    name: &str,
    kind: &str,
) -> Result<&'a Artifact, JobError> {
    list.iter().find(|a| a.name == name).ok_or_else(|| {
        let known: Vec<&str> = list.iter().map(|a| a.name.as_str()).collect();
        JobError::config(format!(
            "no {kind} artifact named `{name}`; the action has {kind} artifacts: [{}]",
            known.join(", ")
        ))
    })
}

/// Runs invoke-action handlers and reports their results. Build one per process and share it
/// across invocations.
pub struct JobRunner {
    sdk_config: SdkConfig,
    reporter: JobReporter,
    safety_margin: Duration,
    finished: Mutex<VecDeque<String>>,
}

impl JobRunner {
    /// A runner whose CodePipeline client comes from `sdk_config` (region, endpoint, the
    /// function role's credentials). Artifact clients reuse its endpoint settings with the job's
    /// credentials.
    pub fn new(sdk_config: &SdkConfig) -> Self {
        // The runner retries reports itself (`deliver`), bounded by the Lambda deadline; the
        // SDK's retries inside each of ours would multiply the attempts.
        let client = aws_sdk_codepipeline::Client::from_conf(
            aws_sdk_codepipeline::config::Builder::from(sdk_config)
                .retry_config(aws_config::retry::RetryConfig::disabled())
                .build(),
        );
        Self {
            sdk_config: sdk_config.clone(),
            reporter: JobReporter::new(client),
            safety_margin: DEFAULT_SAFETY_MARGIN,
            finished: Mutex::new(VecDeque::new()),
        }
    }

    /// Loads the AWS configuration from the environment, with a retry policy fit for reporting.
    pub async fn from_env() -> Self {
        Self::new(&crate::sdk::load_config().await)
    }

    /// Replaces the time kept back from the Lambda deadline for reporting (default 5 s).
    pub fn with_safety_margin(mut self, margin: Duration) -> Self {
        self.safety_margin = margin;
        self
    }

    /// Handles one invocation. Always reports to CodePipeline when the event names a job, and
    /// returns `Ok` once the report is delivered (or was already delivered) so that Lambda does
    /// not retry a job that has a result.
    pub async fn run<P, S, F, Fut>(
        &self,
        event: LambdaEvent<Value>,
        handler: F,
    ) -> Result<Value, Diagnostic>
    where
        P: DeserializeOwned + Send + 'static,
        S: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce(Job<P, S>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<JobOutcome<S>, JobError>> + Send + 'static,
    {
        let (payload, context) = event.into_parts();
        let request_id = context.request_id.clone();
        let Some(job_id) = job_id_of(&payload).map(str::to_owned) else {
            tracing::error!(
                request_id,
                "event is not a CodePipeline job (no `CodePipeline.job.id`); nothing to report"
            );
            return Err(Diagnostic {
                error_type: ERROR_NOT_A_JOB.into(),
                error_message: "event is not a CodePipeline job event (no `CodePipeline.job.id`)"
                    .into(),
            });
        };
        if self.already_finished(&job_id) {
            tracing::warn!(
                job_id,
                "repeat delivery of a job this container already finished; skipped"
            );
            return Ok(response(&job_id, "skipped-repeat", None));
        }

        let deadline = crate::event_runner::invocation_deadline(context.deadline);
        let work_deadline = deadline
            .checked_sub(self.safety_margin)
            .unwrap_or_else(Instant::now);
        tracing::info!(
            job_id,
            request_id,
            remaining_ms = deadline
                .saturating_duration_since(Instant::now())
                .as_millis() as u64,
            "job started"
        );

        let activity = Activity::default();
        let outcome = match self.prepare::<P, S>(payload, &request_id, work_deadline, &activity) {
            Ok(job) => {
                let overrun = Overrun {
                    started: Instant::now(),
                    margin: self.safety_margin,
                    activity,
                };
                run_until(work_deadline, overrun, handler(job)).await
            }
            Err(err) => Err(err),
        };
        let report_deadline = deadline
            .checked_sub(RUNTIME_RESERVE)
            .unwrap_or_else(Instant::now);
        self.report(&job_id, &request_id, outcome, report_deadline)
            .await
    }

    fn prepare<P, S>(
        &self,
        payload: Value,
        request_id: &str,
        deadline: Instant,
        activity: &Activity,
    ) -> Result<Job<P, S>, JobError>
    where
        P: DeserializeOwned,
        S: DeserializeOwned,
    {
        let event: JobEvent = serde_json::from_value(payload)
            .map_err(|e| JobError::config(format!("malformed CodePipeline job event: {e}")))?;
        let job = event.job;
        let params = parse_user_parameters::<P>(
            job.data
                .action_configuration
                .configuration
                .user_parameters
                .as_deref(),
        )?;
        let state = job
            .data
            .continuation_token
            .as_deref()
            .map(continuation::decode::<S>)
            .transpose()?;
        let artifacts = job.data.artifact_credentials.as_ref().map(|creds| {
            ArtifactStore::for_job(&self.sdk_config, creds, job.data.encryption_key.as_ref())
        });
        Ok(Job {
            id: job.id,
            account_id: job.account_id,
            request_id: request_id.to_string(),
            params,
            state,
            inputs: job.data.input_artifacts,
            outputs: job.data.output_artifacts,
            artifacts,
            deadline,
            activity: activity.clone(),
        })
    }

    async fn report<S: Serialize>(
        &self,
        job_id: &str,
        request_id: &str,
        outcome: Result<JobOutcome<S>, JobError>,
        until: Instant,
    ) -> Result<Value, Diagnostic> {
        let outcome = outcome.and_then(|o| match o {
            JobOutcome::Succeeded(success) => validate_output_variables(&success.output_variables)
                .map(|_| Prepared::Done(success)),
            JobOutcome::Continue {
                state,
                summary,
                percent_complete,
            } => continuation::encode(&state).map(|token| Prepared::Continue {
                token,
                summary,
                percent_complete,
            }),
        });
        let (result, label) = match &outcome {
            Ok(Prepared::Done(success)) => (
                self.deliver(job_id, "PutJobSuccessResult", until, || {
                    self.reporter.success(job_id, success, request_id)
                })
                .await,
                "success",
            ),
            Ok(Prepared::Continue {
                token,
                summary,
                percent_complete,
            }) => (
                self.deliver(job_id, "PutJobSuccessResult", until, || {
                    self.reporter.continuation(
                        job_id,
                        token,
                        summary,
                        *percent_complete,
                        request_id,
                    )
                })
                .await,
                "continuation",
            ),
            Err(error) => {
                tracing::warn!(job_id, failure_type = error.kind.as_str(), message = %error.message, "job failed");
                (
                    self.report_failure(job_id, request_id, error, until).await,
                    "failure",
                )
            }
        };
        // A success CodePipeline refused (an output variable it does not take, a summary it
        // does not accept) must not leave the job hanging: report a failure that says why.
        let (result, label, failure) = match result {
            Err(err) if label != "failure" && err.is_refusal() => {
                let error = JobError::failed(format!(
                    "CodePipeline refused the {label} report: {}",
                    err.failure
                ));
                tracing::warn!(job_id, error = %err, "success report refused; reporting a failure instead");
                (
                    self.report_failure(job_id, request_id, &error, until).await,
                    "failure",
                    Some(error.kind.as_str()),
                )
            }
            Ok(delivery) if label == "failure" => (
                Ok(delivery),
                label,
                outcome.as_ref().err().map(|e| e.kind.as_str()),
            ),
            other => (other, label, None),
        };
        match result {
            Ok(Delivery::Accepted) => {
                if label != "continuation" {
                    self.remember_finished(job_id);
                }
                tracing::info!(job_id, result = label, "job result reported");
                Ok(response(job_id, label, failure))
            }
            Ok(Delivery::AlreadyCompleted) => {
                self.remember_finished(job_id);
                tracing::warn!(job_id, "CodePipeline says the job is already completed: this was a repeat delivery; result dropped");
                Ok(response(job_id, "already-completed", None))
            }
            Err(err) => {
                tracing::error!(job_id, error = %err, "job result could not be reported before the Lambda deadline");
                Err(Diagnostic {
                    error_type: ERROR_NOT_REPORTED.into(),
                    error_message: err.to_string(),
                })
            }
        }
    }

    async fn report_failure(
        &self,
        job_id: &str,
        request_id: &str,
        error: &JobError,
        until: Instant,
    ) -> Result<Delivery, ReportError> {
        self.deliver(job_id, "PutJobFailureResult", until, || {
            self.reporter.failure(job_id, error, request_id)
        })
        .await
    }

    /// Sends one report: at most [`REPORT_ATTEMPTS`] attempts, each bounded by a share of the
    /// time left before `until`, spaced by exponential backoff with jitter (see [`backoff`]).
    /// Only a timeout, throttling or a 5xx is tried again; a refusal is final.
    async fn deliver<F, Fut>(
        &self,
        job_id: &str,
        operation: &'static str,
        until: Instant,
        attempt: F,
    ) -> Result<Delivery, ReportError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Delivery, ReportError>>,
    {
        let mut last = None;
        for attempt_no in 0..REPORT_ATTEMPTS {
            if attempt_no > 0 {
                let left = until.saturating_duration_since(Instant::now());
                let pause = backoff(attempt_no, left, REPORT_ATTEMPTS - attempt_no);
                tokio::time::sleep(pause).await;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left < MIN_REPORT_ATTEMPT {
                break;
            }
            // Half of what is left, so a hung connection still leaves room for another try.
            let limit = if left > Duration::from_secs(2) {
                left / 2
            } else {
                left
            };
            match tokio::time::timeout(limit, attempt()).await {
                Ok(Ok(delivery)) => return Ok(delivery),
                Ok(Err(err)) if err.is_refusal() => return Err(err),
                Ok(Err(err)) => {
                    tracing::warn!(job_id, attempt = attempt_no + 1, error = %err, "report attempt failed");
                    last = Some(err);
                }
                Err(_) => {
                    tracing::warn!(
                        job_id,
                        operation,
                        attempt = attempt_no + 1,
                        timeout_ms = limit.as_millis() as u64,
                        "CodePipeline did not answer the report in time"
                    );
                    last = Some(ReportError {
                        failure: SdkFailure::timed_out("CodePipeline", operation, limit),
                    });
                }
            }
        }
        Err(last.unwrap_or_else(|| ReportError {
            failure: SdkFailure::timed_out("CodePipeline", operation, Duration::ZERO)
                .on(job_id.to_string()),
        }))
    }

    fn already_finished(&self, job_id: &str) -> bool {
        self.finished
            .lock()
            .map(|list| list.iter().any(|id| id == job_id))
            .unwrap_or(false)
    }

    fn remember_finished(&self, job_id: &str) {
        if let Ok(mut list) = self.finished.lock() {
            if list.len() == REMEMBERED_JOBS {
                list.pop_front();
            }
            list.push_back(job_id.to_string());
        }
    }
}

enum Prepared {
    Done(JobSuccess),
    Continue {
        token: String,
        summary: String,
        percent_complete: Option<u8>,
    },
}

/// The pause before attempt `attempt_no` (1 for the second attempt): `FIRST_BACKOFF` × 3^(n-1),
/// between half and all of it at random (so invocations that failed together do not retry
/// together), and never more than an even share of `left` among the `attempts_to_go`, so the
/// last attempts still fit before the deadline.
fn backoff(attempt_no: u32, left: Duration, attempts_to_go: u32) -> Duration {
    let full = FIRST_BACKOFF.saturating_mul(3u32.saturating_pow(attempt_no.saturating_sub(1)));
    let jittered = full.mul_f64(0.5 + fastrand::f64() / 2.0);
    jittered.min(left / (attempts_to_go + 1))
}

fn response(job_id: &str, reported: &str, failure_type: Option<&str>) -> Value {
    let mut value = json!({"jobId": job_id, "reported": reported});
    if let Some(kind) = failure_type {
        value["failureType"] = json!(kind);
    }
    value
}

/// Runs the handler on its own task so that a panic is caught and a handler that overruns is
/// stopped at `deadline`.
/// What the message of a job stopped at its deadline says: how long it had, how much was kept
/// back, and what it was doing.
struct Overrun {
    started: Instant,
    margin: Duration,
    activity: Activity,
}

impl Default for Overrun {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            margin: DEFAULT_SAFETY_MARGIN,
            activity: Activity::default(),
        }
    }
}

impl Overrun {
    fn message(&self) -> String {
        let doing = self.activity.describe();
        let doing = if doing.is_empty() {
            String::new()
        } else {
            format!(" while {doing}")
        };
        format!(
            "the action ran out of time after {:.1} s{doing} (the function's timeout, less {} s kept to report the result); raise the function's timeout or reduce the work per run",
            self.started.elapsed().as_secs_f64(),
            self.margin.as_secs()
        )
    }
}

async fn run_until<S, Fut>(
    deadline: Instant,
    overrun: Overrun,
    work: Fut,
) -> Result<JobOutcome<S>, JobError>
where
    S: Send + 'static,
    Fut: Future<Output = Result<JobOutcome<S>, JobError>> + Send + 'static,
{
    let mut task = tokio::spawn(work);
    tokio::select! {
        joined = &mut task => match joined {
            Ok(result) => result,
            Err(err) if err.is_panic() => Err(JobError::failed(format!("the action panicked: {}", crate::event_runner::panic_message(err.into_panic())))),
            Err(err) => Err(JobError::failed(format!("the action was cancelled: {err}"))),
        },
        _ = tokio::time::sleep_until(deadline) => {
            task.abort();
            // Wait (briefly) until the handler is dropped: its uploads cancel themselves and
            // abort their multipart uploads on drop, before the failure is reported.
            let _ = tokio::time::timeout(Duration::from_millis(250), &mut task).await;
            Err(JobError::failed(overrun.message()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_leaves_room_for_the_attempts_to_go() {
        for _ in 0..200 {
            let plenty = Duration::from_secs(600);
            let first = backoff(1, plenty, 3);
            let third = backoff(3, plenty, 1);
            assert!(
                first >= FIRST_BACKOFF / 2 && first <= FIRST_BACKOFF,
                "{first:?}"
            );
            assert!(
                third >= FIRST_BACKOFF * 9 / 2 && third <= FIRST_BACKOFF * 9,
                "{third:?}"
            );
            let tight = backoff(3, Duration::from_millis(900), 1);
            assert!(tight <= Duration::from_millis(450), "{tight:?}");
        }
    }

    #[tokio::test]
    async fn panics_become_job_failures() {
        let result: Result<JobOutcome<()>, JobError> = run_until(
            Instant::now() + Duration::from_secs(5),
            Overrun::default(),
            async { panic!("boom at step 3") },
        )
        .await;
        let err = result.unwrap_err();
        assert_eq!(err.kind, super::super::FailureKind::JobFailed);
        assert!(err.message.contains("boom at step 3"));
    }

    #[tokio::test]
    async fn overrunning_work_is_stopped_at_the_deadline() {
        let started = Instant::now();
        let result: Result<JobOutcome<()>, JobError> = run_until(
            Instant::now() + Duration::from_millis(50),
            Overrun::default(),
            async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(JobOutcome::Succeeded(JobSuccess::new("never")))
            },
        )
        .await;
        assert!(result.unwrap_err().message.contains("ran out of time"));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
