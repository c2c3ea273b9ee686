//! `UserParameters`: the JSON string of the action's configuration, parsed into a typed config.
//!
//! Config types use `#[serde(deny_unknown_fields)]`: there, an unknown key is a user's typo.

use super::outcome::JobError;
use serde::de::DeserializeOwned;

/// Parses `UserParameters` into `T`; every error is a `ConfigurationError` naming the key (as a
/// path such as `steps[0].publish.bucket`) and what was expected.
pub fn parse_user_parameters<T: DeserializeOwned>(raw: Option<&str>) -> Result<T, JobError> {
    let raw = match raw.map(str::trim) {
        None | Some("") => {
            return Err(JobError::config(
                "UserParameters is missing: set the action's UserParameters to a JSON object",
            ))
        }
        Some(raw) => raw,
    };
    let mut de = serde_json::Deserializer::from_str(raw);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    let value = parsed.map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = strip_position(&inner);
        if inner.is_syntax() || inner.is_eof() {
            JobError::config(format!("UserParameters is not valid JSON: {message}"))
        } else if path == "." {
            JobError::config(format!("UserParameters: {message}"))
        } else {
            JobError::config(format!("UserParameters: at `{path}`: {message}"))
        }
    })?;
    de.end()
        .map_err(|err| JobError::config(format!("UserParameters: {}", strip_position(&err))))?;
    Ok(value)
}

/// serde_json appends "at line 1 column 17"; for syntax errors that helps, for shape errors
/// the path already says where.
fn strip_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    if err.is_syntax() || err.is_eof() {
        return text;
    }
    match text.rfind(" at line ") {
        Some(pos) => text[..pos].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::FailureKind;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Config {
        #[allow(dead_code)]
        steps: Vec<Step>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "snake_case")]
    enum Step {
        Publish {
            #[allow(dead_code)]
            bucket: String,
        },
    }

    fn message(raw: Option<&str>) -> String {
        let err = parse_user_parameters::<Config>(raw).unwrap_err();
        assert_eq!(err.kind, FailureKind::ConfigurationError);
        err.message
    }

    #[test]
    fn missing_parameters_are_a_configuration_error() {
        assert!(message(None).contains("missing"));
        assert!(message(Some("  ")).contains("missing"));
    }

    #[test]
    fn invalid_json_says_so() {
        assert!(message(Some("{steps:")).contains("not valid JSON"));
    }

    #[test]
    fn unknown_key_is_named_with_its_path_and_the_expected_keys() {
        let msg = message(Some(r#"{"steps":[{"publish":{"buckt":"x"}}]}"#));
        assert!(msg.contains("steps[0]"), "{msg}");
        assert!(msg.contains("unknown field `buckt`"), "{msg}");
        assert!(msg.contains("bucket"), "{msg}");
    }

    #[test]
    fn wrong_type_names_the_key_and_the_expected_type() {
        let msg = message(Some(r#"{"steps": 3}"#));
        assert!(
            msg.contains("`steps`") && msg.contains("expected a sequence"),
            "{msg}"
        );
    }

    #[test]
    fn missing_required_key_is_named() {
        assert!(message(Some("{}")).contains("missing field `steps`"));
    }

    #[test]
    fn trailing_garbage_is_refused() {
        assert!(parse_user_parameters::<Config>(Some(r#"{"steps":[]} x"#)).is_err());
    }
}
