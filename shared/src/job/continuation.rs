//! Continuation tokens: the handler's typed state, serialized into the token CodePipeline
//! hands back on the next invocation.

use super::outcome::JobError;
use super::report::MAX_CONTINUATION_TOKEN_CHARS;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Bumped when the token layout changes, so an old token is refused rather than misread.
const TOKEN_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Token<S> {
    v: u32,
    state: S,
}

pub fn encode<S: Serialize>(state: &S) -> Result<String, JobError> {
    let token = serde_json::to_string(&Token {
        v: TOKEN_VERSION,
        state,
    })
    .map_err(|e| JobError::failed(format!("could not serialize the continuation state: {e}")))?;
    if token.chars().count() > MAX_CONTINUATION_TOKEN_CHARS {
        return Err(JobError::failed(format!(
            "continuation state is {} characters, over CodePipeline's limit of {MAX_CONTINUATION_TOKEN_CHARS}",
            token.chars().count()
        )));
    }
    Ok(token)
}

pub fn decode<S: DeserializeOwned>(token: &str) -> Result<S, JobError> {
    let parsed: Token<S> = serde_json::from_str(token).map_err(|e| {
        JobError::failed(format!(
            "the continuation token is not one this function issued: {e}"
        ))
    })?;
    if parsed.v != TOKEN_VERSION {
        return Err(JobError::failed(format!(
            "the continuation token has version {}, this function reads version {TOKEN_VERSION}",
            parsed.v
        )));
    }
    Ok(parsed.state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Progress {
        done: Vec<u32>,
    }

    #[test]
    fn state_round_trips() {
        let token = encode(&Progress { done: vec![1, 2] }).unwrap();
        assert_eq!(
            decode::<Progress>(&token).unwrap(),
            Progress { done: vec![1, 2] }
        );
    }

    #[test]
    fn oversized_state_is_refused() {
        let err = encode(&Progress {
            done: (0..1000).collect(),
        })
        .unwrap_err();
        assert!(err.message.contains("2048"), "{}", err.message);
    }

    #[test]
    fn foreign_token_is_refused() {
        assert!(decode::<Progress>("not json").is_err());
        assert!(decode::<Progress>(r#"{"v":9,"state":{"done":[]}}"#)
            .unwrap_err()
            .message
            .contains("version 9"));
    }
}
