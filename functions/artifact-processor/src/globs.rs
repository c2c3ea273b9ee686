//! `**`-style globs over artifact paths: `*` stays within one folder, `**` crosses folders.

use pipeline_ext::glob::Glob;
use pipeline_ext::job::JobError;

pub struct GlobList {
    globs: Vec<Glob>,
}

impl GlobList {
    /// Compiles `patterns`; a bad pattern is a `ConfigurationError` naming it and `field`.
    pub fn new(field: &str, patterns: &[String]) -> Result<Self, JobError> {
        let globs = patterns
            .iter()
            .map(|p| {
                Glob::new(p).map_err(|e| {
                    JobError::config(format!("{field}: invalid glob `{p}`: {}", e.reason))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { globs })
    }

    /// The first pattern matching `path`, in the order written.
    pub fn first_match(&self, path: &str) -> Option<&str> {
        self.globs
            .iter()
            .find(|g| g.is_match(path))
            .map(Glob::pattern)
    }

    pub fn matches(&self, path: &str) -> bool {
        self.first_match(path).is_some()
    }

    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.globs.iter().map(Glob::pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(p: &[&str]) -> GlobList {
        GlobList::new("test", &p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn star_stays_in_one_folder_and_double_star_crosses() {
        let l = list(&["*.html"]);
        assert!(l.matches("index.html") && !l.matches("docs/index.html"));
        let l = list(&["**/*.map"]);
        assert!(l.matches("app.js.map") && l.matches("assets/js/app.js.map"));
        let l = list(&["assets/**"]);
        assert!(l.matches("assets/a/b.css") && !l.matches("index.html"));
    }

    #[test]
    fn first_match_wins_in_written_order() {
        let l = list(&["index.html", "**"]);
        assert_eq!(l.first_match("index.html"), Some("index.html"));
        assert_eq!(l.first_match("x/y"), Some("**"));
    }

    #[test]
    fn bad_glob_names_the_field_and_pattern() {
        let err = GlobList::new("steps[0].filter.include", &["a[".to_string()])
            .err()
            .unwrap();
        assert!(
            err.message.contains("steps[0].filter.include") && err.message.contains("`a[`"),
            "{}",
            err.message
        );
    }
}
