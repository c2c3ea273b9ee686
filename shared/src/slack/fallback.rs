//! The notifiers' optional fallback topic (`FALLBACK_TOPIC_ARN`): when Slack still fails after
//! retries, a plain-text copy goes to SNS so nothing is lost.

/// Publishes `text` with the Slack error appended. `Err` describes why SNS refused.
pub async fn publish_copy(
    sns: &aws_sdk_sns::Client,
    topic: &str,
    subject: &str,
    text: &str,
    slack_error: &str,
) -> Result<(), String> {
    sns.publish()
        .topic_arn(topic)
        .subject(sns_subject(subject))
        .message(format!("{text}\n(Slack failed: {slack_error})"))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            crate::sdk::SdkFailure::from_sdk("SNS", "Publish", &e)
                .on(topic)
                .to_string()
        })
}

/// An SNS subject: at most 100 printable ASCII characters.
fn sns_subject(subject: &str) -> String {
    subject
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(100)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn subjects_fit_sns_rules() {
        let subject = super::sns_subject(&format!("web — {}", "x".repeat(200)));
        assert!(subject.starts_with("web ? x"));
        assert_eq!(subject.chars().count(), 100);
    }
}
