//! Acting in another account: a step's `"role_arn"` (and `"external_id"`) in UserParameters
//! makes its AWS calls as that role, through `sts:AssumeRole`.
//!
//! Pipelines live in a tooling account and deploy to dev, staging and production accounts; a
//! step that reads production's alarms or writes production's bucket assumes a role there.
//! Artifacts are still read and written with the job's artifact credentials: only the step's
//! own calls change account.
//!
//! - The session name traces back to the job: `pipeline-<job id>`, so the target account's
//!   CloudTrail names the job that made each call.
//! - The duration fits the work (at least STS's 15 minutes, at most an hour, the default
//!   maximum of a role's session).
//! - Credentials are cached per role and job in this process, so one invocation assumes each
//!   role once and a continuation in the same warm container reuses them, until they are
//!   within the work's length of expiring: then they are assumed again. They are never put in
//!   a continuation token, which CodePipeline stores and shows.
//! - A refusal is a `PermissionError` naming the role and what its trust policy must say.

use crate::job::JobError;
use aws_config::SdkConfig;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// STS's shortest session.
const MIN_SESSION: Duration = Duration::from_secs(15 * 60);
/// The longest session a role allows unless its owner raised `MaxSessionDuration`.
const MAX_SESSION: Duration = Duration::from_secs(60 * 60);
/// Credentials this close to expiring are assumed again before use.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// The role a step acts as, from its UserParameters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TargetRole {
    /// `arn:aws:iam::<account>:role/<name>`.
    pub role_arn: String,
    /// The external id the role's trust policy requires, if any.
    pub external_id: Option<String>,
}

impl TargetRole {
    /// Reads a step's `role_arn` and `external_id` (`field` names the step in errors, empty
    /// for top-level parameters): `None` when the step acts in this account; a
    /// `ConfigurationError` for an ARN that is not an IAM role's, or an external id without a
    /// role.
    pub fn from_params(
        field: &str,
        role_arn: Option<&str>,
        external_id: Option<&str>,
    ) -> Result<Option<Self>, JobError> {
        let field = if field.is_empty() {
            String::new()
        } else {
            format!("{field}.")
        };
        let Some(role_arn) = role_arn else {
            return match external_id {
                Some(_) => Err(JobError::config(format!(
                    "{field}external_id is set without {field}role_arn: name the role it is for"
                ))),
                None => Ok(None),
            };
        };
        if account_of(role_arn).is_none() {
            return Err(JobError::config(format!(
                "{field}role_arn `{role_arn}` is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)"
            )));
        }
        if let Some(id) = external_id {
            let valid = (2..=1224).contains(&id.len())
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c));
            if !valid {
                return Err(JobError::config(format!(
                    "{field}external_id must be 2 to 1,224 characters of letters, digits and +=,.@:/-_"
                )));
            }
        }
        Ok(Some(Self {
            role_arn: role_arn.to_string(),
            external_id: external_id.map(str::to_owned),
        }))
    }

    /// The account the role is in.
    pub fn account(&self) -> &str {
        account_of(&self.role_arn).unwrap_or_default()
    }
}

/// The 12-digit account of an IAM role ARN (`arn:<partition>:iam::<account>:role/<path/name>`).
fn account_of(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    let (arn_tag, partition, service, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let well_formed = arn_tag == "arn"
        && partition.starts_with("aws")
        && service == "iam"
        && region.is_empty()
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && resource
            .strip_prefix("role/")
            .is_some_and(|name| !name.is_empty() && name.len() <= 512);
    well_formed.then_some(account)
}

/// The session name of a job's calls in a target account: `pipeline-<job id>`, cut to the 64
/// characters STS allows, of the characters it allows.
pub fn session_name(job_id: &str) -> String {
    let clean: String = job_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "=,.@-_".contains(*c))
        .collect();
    let mut name = format!("pipeline-{clean}");
    name.truncate(64);
    name
}

/// How long to ask for: the work and the refresh margin, within STS's limits.
fn session_length(work: Duration) -> Duration {
    (work + REFRESH_MARGIN).clamp(MIN_SESSION, MAX_SESSION)
}

/// Assumed-role sessions of this process, by role and job.
#[derive(Clone)]
pub struct RoleSessions {
    base: SdkConfig,
    sts: aws_sdk_sts::Client,
    cache: Arc<Mutex<HashMap<(TargetRole, String), Credentials>>>,
}

impl RoleSessions {
    /// Sessions assumed with the function's own credentials from `base`.
    pub fn new(base: &SdkConfig) -> Self {
        Self {
            base: base.clone(),
            sts: aws_sdk_sts::Client::new(base),
            cache: Arc::default(),
        }
    }

    /// The SDK configuration of `role` for job `job_id`'s step, whose work takes about
    /// `work`: `base` itself when `role` is `None`.
    pub async fn config_for(
        &self,
        role: Option<&TargetRole>,
        job_id: &str,
        work: Duration,
    ) -> Result<SdkConfig, JobError> {
        let Some(role) = role else {
            return Ok(self.base.clone());
        };
        let credentials = self.credentials(role, job_id, work).await?;
        Ok(self
            .base
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .build())
    }

    /// Cached credentials still good for `work`, or newly assumed ones.
    async fn credentials(
        &self,
        role: &TargetRole,
        job_id: &str,
        work: Duration,
    ) -> Result<Credentials, JobError> {
        let key = (role.clone(), job_id.to_string());
        let cached = self.cache.lock().ok().and_then(|c| c.get(&key).cloned());
        if let Some(credentials) = cached {
            let good_until = SystemTime::now() + work.max(REFRESH_MARGIN);
            if credentials.expiry().is_some_and(|e| e > good_until) {
                return Ok(credentials);
            }
        }
        let fresh = self.assume(role, job_id, work).await?;
        if let Ok(mut cache) = self.cache.lock() {
            // Sessions of other jobs that have expired go; the cache stays small.
            let now = SystemTime::now();
            cache.retain(|_, c| c.expiry().is_none_or(|e| e > now));
            cache.insert(key, fresh.clone());
        }
        Ok(fresh)
    }

    async fn assume(
        &self,
        role: &TargetRole,
        job_id: &str,
        work: Duration,
    ) -> Result<Credentials, JobError> {
        let session = session_name(job_id);
        let answer = self
            .sts
            .assume_role()
            .role_arn(&role.role_arn)
            .role_session_name(&session)
            .set_external_id(role.external_id.clone())
            .duration_seconds(session_length(work).as_secs() as i32)
            .send()
            .await
            .map_err(|err| refusal(role, &err))?;
        let issued = answer.credentials().ok_or_else(|| {
            JobError::failed(format!(
                "STS AssumeRole of {} answered without credentials",
                role.role_arn
            ))
        })?;
        let expiry = SystemTime::try_from(*issued.expiration())
            .unwrap_or_else(|_| SystemTime::now() + MIN_SESSION);
        Ok(Credentials::new(
            issued.access_key_id(),
            issued.secret_access_key(),
            Some(issued.session_token().to_string()),
            Some(expiry),
            "pipeline-target-account",
        ))
    }
}

/// What an AssumeRole failure means for the pipeline's user.
fn refusal<E>(role: &TargetRole, err: &aws_sdk_sts::error::SdkError<E>) -> JobError
where
    E: aws_sdk_sts::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_sts::error::ProvideErrorMetadata;
    let code = err.code().unwrap_or_default().to_string();
    let message = err.message().unwrap_or_default().to_string();
    let function =
        std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "this function".into());
    match code.as_str() {
        "AccessDenied" | "AccessDeniedException" => {
            let condition = match &role.external_id {
                Some(_) => {
                    " with the condition StringEquals sts:ExternalId = the external_id of this step"
                }
                None => "",
            };
            JobError::permission(format!(
                "cannot assume {} (AccessDenied: {message}): its trust policy in account {} must allow sts:AssumeRole to the execution role of {function} in the pipeline's account{condition}, and that role's policy must allow sts:AssumeRole on {}",
                role.role_arn,
                role.account(),
                role.role_arn
            ))
        }
        "RegionDisabledException" => JobError::permission(format!(
            "cannot assume {}: STS is not activated in this region for account {} ({message})",
            role.role_arn,
            role.account()
        )),
        "" => JobError::failed(format!(
            "STS AssumeRole of {} got no answer: {}",
            role.role_arn,
            aws_smithy_types::error::display::DisplayErrorContext(err)
        )),
        _ => JobError::failed(format!(
            "STS AssumeRole of {} failed: {code}: {message}",
            role.role_arn
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_a_role_and_refuses_what_is_not_one() {
        let role = TargetRole::from_params(
            "alarms",
            Some("arn:aws:iam::222222222222:role/pipeline-gate"),
            Some("tooling-123"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(role.account(), "222222222222");
        assert_eq!(TargetRole::from_params("alarms", None, None).unwrap(), None);
        for (arn, external) in [
            ("arn:aws:iam::2222:role/x", None),
            ("arn:aws:s3:::bucket", None),
            ("arn:aws:iam::222222222222:user/x", None),
            ("arn:aws:iam::222222222222:role/", None),
            ("arn:aws:iam::222222222222:role/x", Some("a")),
            (
                "arn:aws:iam::222222222222:role/x",
                Some("spaces are not allowed"),
            ),
        ] {
            let error = TargetRole::from_params("publish", Some(arn), external).unwrap_err();
            assert_eq!(
                error.kind,
                crate::job::FailureKind::ConfigurationError,
                "{arn}"
            );
            assert!(error.message.starts_with("publish."), "{}", error.message);
        }
        let error = TargetRole::from_params("publish", None, Some("abc")).unwrap_err();
        assert!(error.message.contains("without publish.role_arn"));
    }

    #[test]
    fn the_session_traces_back_to_the_job_and_fits_sts() {
        assert_eq!(
            session_name("0123abcd-4567-89ef-0123-456789abcdef"),
            "pipeline-0123abcd-4567-89ef-0123-456789abcdef"
        );
        assert_eq!(session_name(&"x".repeat(100)).len(), 64);
        assert_eq!(session_length(Duration::from_secs(10)), MIN_SESSION);
        assert_eq!(
            session_length(Duration::from_secs(20 * 60)),
            Duration::from_secs(25 * 60)
        );
        assert_eq!(session_length(Duration::from_secs(5 * 3600)), MAX_SESSION);
    }

    proptest! {
        #[test]
        fn any_role_arn_is_read_or_refused_without_panicking(arn in "\\PC{0,120}", id in proptest::option::of("\\PC{0,40}")) {
            let _ = TargetRole::from_params("step", Some(&arn), id.as_deref());
        }

        #[test]
        fn a_session_name_is_always_one_sts_accepts(job in "\\PC{0,100}") {
            let name = session_name(&job);
            prop_assert!(name.len() <= 64 && name.len() >= 9);
            prop_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || "=,.@-_".contains(c)));
        }
    }
}
