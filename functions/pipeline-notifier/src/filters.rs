//! Which executions get a message: `PIPELINES` (comma-separated globs on the pipeline name,
//! default every pipeline) and `SHOW_STATES` (comma-separated pipeline states; an execution gets
//! its message once it reaches one of them, and from then on it is kept up to date; default
//! every state).

use pipeline_ext::glob::Glob;
use pipeline_ext::slack::SettingsError;

/// Which executions get a message.
#[derive(Clone, Debug)]
pub struct Filters {
    pipelines: Option<Vec<Glob>>,
    states: Option<Vec<String>>,
}

/// States a pipeline execution can be in, as its events name them.
pub const PIPELINE_STATES: [&str; 8] = [
    "STARTED",
    "RESUMED",
    "STOPPING",
    "STOPPED",
    "SUCCEEDED",
    "FAILED",
    "CANCELED",
    "SUPERSEDED",
];

impl Filters {
    /// `PIPELINES` (globs, comma- or space-separated; empty or `*`: all) and `SHOW_STATES`
    /// (pipeline states; empty: all).
    pub fn new(pipelines: &str, states: &str) -> Result<Self, SettingsError> {
        let patterns: Vec<&str> = split(pipelines).collect();
        let pipelines = if patterns.is_empty() || patterns == ["*"] {
            None
        } else {
            let globs = patterns
                .into_iter()
                .map(|pattern| {
                    Glob::new(pattern).map_err(|e| SettingsError::Invalid {
                        name: "PIPELINES",
                        reason: format!("bad glob {pattern:?}: {}", e.reason),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Some(globs)
        };
        let wanted: Vec<String> = split(states).map(str::to_ascii_uppercase).collect();
        for state in &wanted {
            if !PIPELINE_STATES.contains(&state.as_str()) {
                return Err(SettingsError::Invalid {
                    name: "SHOW_STATES",
                    reason: format!(
                        "unknown state {state:?}; expected some of {}",
                        PIPELINE_STATES.join(", ")
                    ),
                });
            }
        }
        Ok(Self {
            pipelines,
            states: (!wanted.is_empty()).then_some(wanted),
        })
    }

    /// Whether `PIPELINES` lets this pipeline in.
    pub fn pipeline(&self, name: &str) -> bool {
        self.pipelines
            .as_ref()
            .is_none_or(|globs| globs.iter().any(|g| g.is_match(name)))
    }

    /// Whether an execution in this state gets a message.
    pub fn state(&self, state: &str) -> bool {
        self.states
            .as_ref()
            .is_none_or(|states| states.iter().any(|s| s == state))
    }
}

fn split(list: &str) -> impl Iterator<Item = &str> {
    list.split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::Filters;

    #[test]
    fn matches_pipeline_globs() {
        let filters = Filters::new("web-*, api", "").unwrap();
        assert!(filters.pipeline("web-prod"));
        assert!(filters.pipeline("api"));
        assert!(!filters.pipeline("api-staging"));
        assert!(Filters::new("", "").unwrap().pipeline("anything"));
    }

    #[test]
    fn refuses_unknown_states() {
        let err = Filters::new("*", "FAILED,DONE").unwrap_err();
        assert!(err.to_string().contains("\"DONE\""), "{err}");
        let filters = Filters::new("*", "failed, succeeded").unwrap();
        assert!(filters.state("FAILED") && !filters.state("STARTED"));
    }
}
