//! Who started the execution an approval belongs to, as Slack user ids, for
//! `forbid_self_approval`.
//!
//! What can be known: the approval token leads to its execution (`GetPipelineState`: the action
//! whose latest execution holds the token, in a stage whose latest execution is the one waiting),
//! and the execution to its trigger (`GetPipelineExecution`). A `StartPipelineExecution` trigger
//! names the IAM principal; when its last part (an assumed role's session name, as IAM Identity
//! Center and most SSO set it, or an IAM user name) is an email, `users.lookupByEmail` finds the
//! person. A pipeline can also say who asked for the release in the approval's custom data
//! (`requested-by: <email>`), carried in the button. What cannot be known: who pushed the
//! commit behind a webhook or EventBridge trigger (unless the pipeline passes it that way), and
//! principals without an email-shaped name; those executions have no known starter.

use pipeline_ext::sdk::SdkFailure;
use pipeline_ext::slack::approval::{is_email, ApprovalRef};
use pipeline_ext::slack::SlackClient;
use tokio::time::Instant;

/// Why who started the execution could not be told (the approval is then refused).
#[derive(Debug, thiserror::Error)]
pub enum StarterError {
    /// The approval's execution could not be found in the pipeline's state.
    #[error(transparent)]
    Execution(#[from] pipeline_ext::pipeline_state::StateError),
    /// A CodePipeline call did not answer before the click's deadline.
    #[error("CodePipeline {0} did not answer in time")]
    TimedOut(&'static str),
    /// A CodePipeline call failed.
    #[error(transparent)]
    CodePipeline(SdkFailure),
    /// Slack did not say who has the starter's email.
    #[error("looking up {email} in Slack: {error}")]
    Slack {
        /// The email looked up.
        email: String,
        /// Slack's answer.
        error: pipeline_ext::slack::SlackError,
    },
}

/// The Slack users who count as having started the execution (possibly none).
pub async fn started_by(
    codepipeline: &aws_sdk_codepipeline::Client,
    slack: &SlackClient,
    approval: &ApprovalRef,
    deadline: Instant,
) -> Result<Vec<String>, StarterError> {
    let mut emails: Vec<String> = approval.requested_by.iter().cloned().collect();
    if let Some(email) = trigger_email(codepipeline, approval, deadline).await? {
        if !emails.contains(&email) {
            emails.push(email);
        }
    }
    let mut users = Vec::new();
    for email in emails {
        match slack
            .call_form(
                "users.lookupByEmail",
                &[("email", email.as_str())],
                deadline,
            )
            .await
        {
            Ok(answer) => {
                if let Some(id) = answer["user"]["id"].as_str() {
                    users.push(id.to_string());
                }
            }
            // Nobody in this workspace has that email: nobody here started it.
            Err(err) if err.code() == Some("users_not_found") => {}
            Err(err) => return Err(StarterError::Slack { email, error: err }),
        }
    }
    Ok(users)
}

/// The email of the principal that started the approval's execution, when it has one.
async fn trigger_email(
    codepipeline: &aws_sdk_codepipeline::Client,
    approval: &ApprovalRef,
    deadline: Instant,
) -> Result<Option<String>, StarterError> {
    let execution_id =
        pipeline_ext::pipeline_state::waiting_execution(codepipeline, approval, deadline).await?;
    let execution = tokio::time::timeout_at(
        deadline,
        codepipeline
            .get_pipeline_execution()
            .pipeline_name(&approval.pipeline)
            .pipeline_execution_id(&execution_id)
            .send(),
    )
    .await
    .map_err(|_| StarterError::TimedOut("GetPipelineExecution"))?
    .map_err(|err| {
        StarterError::CodePipeline(SdkFailure::from_sdk(
            "CodePipeline",
            "GetPipelineExecution",
            &err,
        ))
    })?;
    let detail = execution
        .pipeline_execution()
        .and_then(|e| e.trigger())
        .filter(|t| t.trigger_type().map(|k| k.as_str()) == Some("StartPipelineExecution"))
        .and_then(|t| t.trigger_detail())
        .unwrap_or_default();
    Ok(principal_email(detail))
}

/// `arn:aws:sts::1:assumed-role/Role/alice@example.com` → `alice@example.com`.
pub fn principal_email(principal: &str) -> Option<String> {
    if !principal.starts_with("arn:") {
        return None;
    }
    let name = principal.rsplit(['/', ':']).next()?;
    is_email(name).then(|| name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::principal_email;

    #[test]
    fn reads_an_email_from_a_principal_arn() {
        assert_eq!(
            principal_email("arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_Admin_0123/Alice@Example.com").as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(
            principal_email("arn:aws:iam::111111111111:user/bob@example.org").as_deref(),
            Some("bob@example.org")
        );
        assert_eq!(
            principal_email("arn:aws:sts::1:assumed-role/Deployer/i-0abc"),
            None
        );
        assert_eq!(principal_email("alice@example.com"), None);
        assert_eq!(
            principal_email("arn:aws:events:us-east-1:1:rule/start"),
            None
        );
    }
}
