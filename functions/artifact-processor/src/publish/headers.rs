//! The headers a published file gets: Content-Type from its extension, Cache-Control from the
//! step's rules, and a digest of those rules so a change of rules re-publishes the headers.

use crate::globs::GlobList;
use crate::params::PublishStep;
use pipeline_ext::job::JobError;

/// User metadata naming the header rules (Content-Type table and `cache_control`) an object
/// was published with, so that a change of rules re-publishes the headers of unchanged files.
pub const HEADER_RULES_METADATA: &str = "publish-headers";
/// Bumped when [`content_type`] changes what it answers (v2: compressed variants take the
/// plain name's type and a `Content-Encoding`).
const CONTENT_TYPE_RULES: &str = "content-type-v2";

pub(super) struct CacheRules {
    globs: GlobList,
    values: Vec<String>,
    default: Option<String>,
}

impl CacheRules {
    pub(super) fn new(step: &PublishStep) -> Result<Self, JobError> {
        let patterns: Vec<String> = step.cache_control.keys().cloned().collect();
        Ok(Self {
            globs: GlobList::new("publish.cache_control", &patterns)?,
            values: step.cache_control.values().map(|v| v.to_string()).collect(),
            default: step.default_cache_control.as_ref().map(|v| v.to_string()),
        })
    }

    pub(super) fn for_path(&self, path: &str) -> Option<String> {
        match self.globs.first_match(path) {
            Some(pattern) => self
                .globs
                .patterns()
                .position(|p| p == pattern)
                .map(|i| self.values[i].clone()),
            None => self.default.clone(),
        }
    }
}

/// Content-Type from the extension; text types say they are UTF-8.
pub fn content_type(path: &str) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let text = mime.type_() == mime_guess::mime::TEXT
        || matches!(
            mime.essence_str(),
            "application/javascript" | "application/json" | "application/xml" | "image/svg+xml"
        );
    if text {
        format!("{}; charset=utf-8", mime.essence_str())
    } else {
        mime.essence_str().to_string()
    }
}

/// A short digest of everything that decides an object's headers: the Content-Type table's
/// version, the `cache_control` rules in order and the default.
pub(super) fn header_rules_digest(step: &PublishStep) -> String {
    let rules = serde_json::json!([
        CONTENT_TYPE_RULES,
        step.cache_control.iter().collect::<Vec<_>>(),
        step.default_cache_control,
    ]);
    crate::digest::sha256_hex(rules.to_string().as_bytes())[..16].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_come_from_extensions() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(
            content_type("assets/app.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("img/logo.png"), "image/png");
        assert_eq!(
            content_type("data.bin.unknownext"),
            "application/octet-stream"
        );
    }
}
