//! The CloudFront invalidation after a publish changed something: which paths (within
//! CloudFront's limits), the request with its retries, and the wait for completion.
//!
//! The CloudFront client has the SDK's retries off: this module makes at most
//! [`CREATE_ATTEMPTS`] requests per invalidation, after throttling, a 5xx,
//! `TooManyInvalidationsInProgress` or no answer, spaced by exponential backoff with jitter
//! and never past the job's deadline. Every attempt sends the same `CallerReference`, so an
//! attempt whose answer was lost is answered with the invalidation it created, not a second one.

use pipeline_ext::sdk::SdkFailure;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Paths one `CreateInvalidation` may carry, and file paths a distribution may have in progress.
pub(super) const MAX_PATHS: usize = 3000;
/// Wildcard paths a distribution may have in progress.
pub(super) const MAX_WILDCARDS: usize = 15;
/// Requests per invalidation at most.
pub(super) const CREATE_ATTEMPTS: u32 = 6;
/// The pause before the second attempt; each later one doubles, with jitter.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Time kept free before the deadline for reporting.
const DEADLINE_RESERVE: Duration = Duration::from_secs(2);

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

/// The paths to invalidate for `changed` (URL paths starting with `/`): as they are when
/// there are at most `max_paths`, else folders (`/assets/*`) in their place, at most
/// `max_wildcards` of them, and `/*` when folders cannot get there. Folders are taken deepest
/// first, the fullest first at each depth, so no more is invalidated than the limits need.
/// Every changed path is covered by the answer.
pub(super) fn plan_paths(
    changed: Vec<String>,
    max_paths: usize,
    max_wildcards: usize,
) -> Vec<String> {
    let max_paths = max_paths.clamp(1, MAX_PATHS);
    let max_wildcards = max_wildcards.min(MAX_WILDCARDS);
    let mut paths = changed;
    paths.sort();
    paths.dedup();
    let everything = || vec!["/*".to_string()];
    if paths.iter().any(|p| p == "/*") {
        return everything();
    }
    let fits = |paths: &[String]| {
        paths.len() <= max_paths
            && paths.iter().filter(|p| p.ends_with('*')).count() <= max_wildcards
    };
    let deepest = paths
        .iter()
        .map(|p| p.matches('/').count())
        .max()
        .unwrap_or(0);
    // A folder at depth `d` is a path's prefix through its `d`-th `/` (`/a/` is at depth 2).
    for depth in (2..=deepest).rev() {
        loop {
            if fits(&paths) {
                return paths;
            }
            let mut under: HashMap<&str, usize> = HashMap::new();
            for path in &paths {
                if let Some((at, _)) = path.match_indices('/').nth(depth - 1) {
                    *under.entry(&path[..=at]).or_default() += 1;
                }
            }
            let fullest = under
                .into_iter()
                .filter(|(_, n)| *n >= 2)
                .max_by_key(|(folder, n)| (*n, std::cmp::Reverse(*folder)));
            let Some((folder, _)) = fullest else {
                break;
            };
            let folder = folder.to_string();
            paths.retain(|p| !p.starts_with(&folder));
            paths.push(format!("{folder}*"));
            paths.sort();
        }
    }
    if fits(&paths) {
        paths
    } else {
        everything()
    }
}

/// An invalidation CloudFront accepted.
#[derive(Debug)]
pub(super) struct Created {
    pub id: String,
    /// Requests it took.
    pub attempts: u32,
}

/// An invalidation CloudFront did not accept.
#[derive(Debug)]
pub(super) struct NotCreated {
    pub failure: SdkFailure,
    pub attempts: u32,
}

/// Worth another request: no answer, a 5xx, throttling, or earlier invalidations still
/// holding the distribution's limits.
fn is_retryable(failure: &SdkFailure) -> bool {
    failure.is_transient()
        || matches!(
            failure.code(),
            "ServiceUnavailable" | "TooManyInvalidationsInProgress"
        )
}

/// The pause before attempt `attempt + 1`: half to all of `FIRST_BACKOFF × 2^(attempt-1)`.
fn backoff(attempt: u32) -> Duration {
    let step = FIRST_BACKOFF * 2u32.pow(attempt.saturating_sub(1).min(10));
    step.mul_f64(0.5 + fastrand::f64() * 0.5)
}

/// Creates the invalidation of `paths` (at most [`MAX_PATHS`]), retrying as the module says.
pub(super) async fn create(
    client: &aws_sdk_cloudfront::Client,
    distribution: &str,
    paths: &[String],
    reference: &str,
    deadline: Instant,
) -> Result<Created, NotCreated> {
    use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};
    let build = || -> Result<InvalidationBatch, String> {
        InvalidationBatch::builder()
            .paths(
                Paths::builder()
                    .quantity(paths.len() as i32)
                    .set_items(Some(paths.to_vec()))
                    .build()
                    .map_err(|e| e.to_string())?,
            )
            .caller_reference(reference)
            .build()
            .map_err(|e| e.to_string())
    };
    let mut attempts = 0;
    loop {
        attempts += 1;
        let batch = build().map_err(|message| NotCreated {
            failure: SdkFailure {
                service: "CloudFront",
                operation: "CreateInvalidation",
                resource: Some(format!("distribution {distribution}")),
                code: Some("InvalidRequest".into()),
                status: None,
                message,
            },
            attempts,
        })?;
        let sent = client
            .create_invalidation()
            .distribution_id(distribution)
            .invalidation_batch(batch)
            .send()
            .await;
        let failure = match sent {
            Ok(output) => {
                return Ok(Created {
                    id: output
                        .invalidation()
                        .map(|i| i.id().to_string())
                        .unwrap_or_default(),
                    attempts,
                })
            }
            Err(e) => SdkFailure::from_sdk("CloudFront", "CreateInvalidation", &e)
                .on(format!("distribution {distribution}")),
        };
        let pause = backoff(attempts);
        let out_of_time = Instant::now() + pause + DEADLINE_RESERVE > deadline;
        if attempts >= CREATE_ATTEMPTS || !is_retryable(&failure) || out_of_time {
            return Err(NotCreated { failure, attempts });
        }
        tracing::warn!(
            attempt = attempts,
            code = failure.code(),
            "CreateInvalidation failed; trying again"
        );
        tokio::time::sleep(pause).await;
    }
}

/// Invalidations a publish waits for, carried across continuations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidationWait {
    /// The distribution.
    pub distribution: String,
    /// The invalidations not yet seen `Completed`.
    pub ids: Vec<String>,
    /// When the wait started, Unix milliseconds.
    pub since_ms: u64,
}

/// Reads each invalidation once; returns those still in progress. A transient failure counts
/// as "still in progress" (the next round reads again); any other is the error.
pub(super) async fn still_in_progress(
    client: &aws_sdk_cloudfront::Client,
    wait: &InvalidationWait,
) -> Result<Vec<String>, SdkFailure> {
    let mut open = Vec::new();
    for id in &wait.ids {
        let read = client
            .get_invalidation()
            .distribution_id(&wait.distribution)
            .id(id)
            .send()
            .await;
        match read {
            Ok(output) => {
                let status = output.invalidation().map(|i| i.status()).unwrap_or("");
                if status != "Completed" {
                    open.push(id.clone());
                }
            }
            Err(e) => {
                let failure = SdkFailure::from_sdk("CloudFront", "GetInvalidation", &e).on(
                    format!("invalidation {id} of distribution {}", wait.distribution),
                );
                if !is_retryable(&failure) {
                    return Err(failure);
                }
                open.push(id.clone());
            }
        }
    }
    Ok(open)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn covered(path: &str, by: &[String]) -> bool {
        by.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => p == path,
        })
    }

    #[test]
    fn cloudfront_paths_are_encoded() {
        assert_eq!(encode_path("docs/a b+c.html"), "docs/a%20b%2Bc.html");
        assert_eq!(encode_path("a*b"), "a%2Ab");
    }

    #[test]
    fn few_paths_stay_as_they_are() {
        let paths = vec![
            "/b.js".to_string(),
            "/a.js".to_string(),
            "/a.js".to_string(),
        ];
        assert_eq!(plan_paths(paths, 50, 10), vec!["/a.js", "/b.js"]);
    }

    #[test]
    fn many_paths_collapse_into_the_deepest_folders_that_suffice() {
        let paths: Vec<String> = (0..40)
            .map(|i| format!("/live/d{}/f{i}.js", i % 4))
            .collect();
        assert_eq!(
            plan_paths(paths, 10, 10),
            vec!["/live/d0/*", "/live/d1/*", "/live/d2/*", "/live/d3/*"]
        );
        let mut paths: Vec<String> = (0..100).map(|i| format!("/assets/js/f{i}.js")).collect();
        paths.extend((0..3).map(|i| format!("/docs/p{i}.html")));
        paths.push("/index.html".into());
        let planned = plan_paths(paths.clone(), 50, 10);
        assert_eq!(
            planned,
            vec![
                "/assets/js/*",
                "/docs/p0.html",
                "/docs/p1.html",
                "/docs/p2.html",
                "/index.html"
            ]
        );
        for path in &paths {
            assert!(covered(path, &planned), "{path}");
        }
    }

    #[test]
    fn five_thousand_paths_fit_cloudfronts_limits() {
        let folders = ["assets", "img", "docs", "fonts"];
        let paths: Vec<String> = (0..5000)
            .map(|i| format!("/{}/f{i}.js", folders[i % 4]))
            .collect();
        let planned = plan_paths(paths.clone(), MAX_PATHS, 10);
        assert!(planned.len() <= MAX_PATHS);
        // Two folders are enough; the other files keep their own paths.
        assert_eq!(planned.iter().filter(|p| p.ends_with('*')).count(), 2);
        assert!(paths.iter().all(|p| covered(p, &planned)));
        // Forty folders of 125 cannot get under 3,000 with ten wildcards: everything.
        let spread: Vec<String> = (0..5000).map(|i| format!("/d{}/f{i}.js", i % 40)).collect();
        assert_eq!(plan_paths(spread, MAX_PATHS, 10), vec!["/*"]);
    }

    #[test]
    fn a_wildcard_already_pending_is_kept_and_merged() {
        let paths = vec!["/*".to_string(), "/a.js".to_string()];
        assert_eq!(plan_paths(paths, 50, 10), vec!["/*"]);
        let paths: Vec<String> = (0..20).map(|i| format!("/d{i}/*")).collect();
        assert_eq!(plan_paths(paths, 50, 10), vec!["/*"]);
    }

    proptest! {
        /// Whatever changed, the plan covers it within the limits, or is `/*`.
        #[test]
        fn plans_cover_every_path_within_the_limits(
            paths in proptest::collection::vec("(/[a-c]{1,2}){1,4}(/\\*)?", 1..300),
            max_paths in 1usize..60,
            max_wildcards in 0usize..16,
        ) {
            let planned = plan_paths(paths.clone(), max_paths, max_wildcards);
            for path in &paths {
                prop_assert!(covered(path.trim_end_matches('*'), &planned), "{} not covered by {:?}", path, planned);
            }
            if planned != vec!["/*".to_string()] {
                prop_assert!(planned.len() <= max_paths);
                prop_assert!(planned.iter().filter(|p| p.ends_with('*')).count() <= max_wildcards);
            }
        }
    }
}
