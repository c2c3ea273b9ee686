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
use tracing_subscriber::filter::Targets;

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

/// The filter for `level`, with the capped targets held at INFO or below. `Targets` rather
/// than `EnvFilter`: the same prefix match on targets without a regex engine in every binary
/// (smaller packages, nothing compiled at start-up).
pub fn filter_for(level: LevelFilter) -> Targets {
    let cap = level.min(LevelFilter::INFO);
    Targets::new()
        .with_default(level)
        .with_targets(CAPPED_TARGETS.iter().map(|target| (*target, cap)))
}

/// Installs the global subscriber once; later calls do nothing.
pub fn init() {
    let filter = filter_for(level_from_env());
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT")
        .map(|v| v.eq_ignore_ascii_case("JSON"))
        .unwrap_or(false);
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let format = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_target(true)
        .without_time();
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if json {
        registry
            .with(format.json().flatten_event(true).with_current_span(false))
            .try_init()
    } else {
        registry.with(format).try_init()
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
        use tracing::Level;
        let filter = filter_for(LevelFilter::TRACE);
        assert!(filter.would_enable("migration_runner::plan", &Level::TRACE));
        for target in [
            "lambda_runtime",
            "lambda_runtime::layers",
            "aws_sigv4::http_request",
        ] {
            assert!(!filter.would_enable(target, &Level::DEBUG), "{target}");
            assert!(filter.would_enable(target, &Level::INFO), "{target}");
        }
    }

    #[test]
    fn capped_targets_follow_a_stricter_level() {
        use tracing::Level;
        let filter = filter_for(LevelFilter::WARN);
        assert!(!filter.would_enable("lambda_runtime", &Level::INFO));
        assert!(filter.would_enable("lambda_runtime", &Level::WARN));
        assert!(!filter.would_enable("artifact_processor", &Level::INFO));
    }
}
