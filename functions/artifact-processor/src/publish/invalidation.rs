//! The CloudFront invalidation after a publish changed something.

use crate::Clients;
use pipeline_ext::job::JobError;
use pipeline_ext::sdk::SdkFailure;

/// CloudFront paths are URL paths: spaces and other reserved characters are percent-encoded.
pub(super) fn encode_path(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(super) async fn invalidate(
    clients: &Clients,
    distribution: &str,
    paths: Vec<String>,
    reference: &str,
) -> Result<String, JobError> {
    use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};
    let count = paths.len() as i32;
    let batch = InvalidationBatch::builder()
        .paths(
            Paths::builder()
                .quantity(count)
                .set_items(Some(paths))
                .build()
                .map_err(|e| JobError::failed(e.to_string()))?,
        )
        .caller_reference(reference)
        .build()
        .map_err(|e| JobError::failed(e.to_string()))?;
    let output = clients
        .cloudfront
        .create_invalidation()
        .distribution_id(distribution)
        .invalidation_batch(batch)
        .send()
        .await
        .map_err(|e| {
            let failure = SdkFailure::from_sdk("CloudFront", "CreateInvalidation", &e)
                .on(format!("distribution {distribution}"));
            if failure.code() == "NoSuchDistribution" {
                JobError::config(failure.to_string())
            } else {
                failure.into()
            }
        })?;
    Ok(output
        .invalidation()
        .map(|i| i.id().to_string())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudfront_paths_are_encoded() {
        assert_eq!(encode_path("docs/a b+c.html"), "docs/a%20b%2Bc.html");
    }
}
