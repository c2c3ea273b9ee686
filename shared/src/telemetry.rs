//! Logging setup for the functions, following Lambda's logging controls.
//!
//! `AWS_LAMBDA_LOG_FORMAT=JSON` gives one JSON object per line; `AWS_LAMBDA_LOG_LEVEL` (or
//! `RUST_LOG` holding a plain level) sets the level, `INFO` by default.
//!
//! Some dependencies log request material below INFO: `lambda_runtime` prints the raw event
//! (with the job's live credentials) at TRACE, and the AWS signer prints canonical requests
//! (with the session token header). Those targets are capped at INFO whatever level is asked
//! for, so neither the event nor credentials ever reach the logs.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;

/// Targets that are never logged below INFO.
pub const CAPPED_TARGETS: &[&str] = &[
    "lambda_runtime",
    "lambda_runtime_api_client",
    "aws_config",
    "aws_runtime",
    "aws_sigv4",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http",
    "aws_smithy_http_client",
    "aws_smithy_types",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
    "tower",
];

/// The level asked for by the environment.
pub fn level_from_env() -> LevelFilter {
    let raw = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_default();
    parse_level(&raw).unwrap_or(LevelFilter::INFO)
}

fn parse_level(raw: &str) -> Option<LevelFilter> {
    match raw.trim().to_ascii_uppercase().as_str() {
        "TRACE" => Some(LevelFilter::TRACE),
        "DEBUG" => Some(LevelFilter::DEBUG),
        "INFO" => Some(LevelFilter::INFO),
        "WARN" => Some(LevelFilter::WARN),
        "ERROR" | "FATAL" => Some(LevelFilter::ERROR),
        "OFF" => Some(LevelFilter::OFF),
        _ => None,
    }
}

/// The filter for `level`, with the capped targets held at INFO or below.
pub fn filter_for(level: LevelFilter) -> EnvFilter {
    let cap = level.min(LevelFilter::INFO);
    let mut directives = vec![level.to_string().to_lowercase()];
    for target in CAPPED_TARGETS {
        directives.push(format!("{target}={}", cap.to_string().to_lowercase()));
    }
    EnvFilter::new(directives.join(","))
}

/// Installs the global subscriber once; later calls do nothing.
pub fn init() {
    let filter = filter_for(level_from_env());
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT")
        .map(|v| v.eq_ignore_ascii_case("JSON"))
        .unwrap_or(false);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(true);
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .without_time()
            .try_init()
    } else {
        builder.without_time().try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lambda_level_names() {
        assert_eq!(parse_level("trace"), Some(LevelFilter::TRACE));
        assert_eq!(parse_level("FATAL"), Some(LevelFilter::ERROR));
        assert_eq!(parse_level("verbose"), None);
    }

    #[test]
    fn capped_targets_stay_at_info_when_trace_is_asked() {
        let text = filter_for(LevelFilter::TRACE).to_string();
        assert!(text.contains("lambda_runtime=info"), "{text}");
        assert!(text.contains("aws_sigv4=info"), "{text}");
        assert!(text.split(',').any(|d| d == "trace"), "{text}");
    }

    #[test]
    fn capped_targets_follow_a_stricter_level() {
        let text = filter_for(LevelFilter::WARN).to_string();
        assert!(text.contains("lambda_runtime=warn"), "{text}");
    }
}
