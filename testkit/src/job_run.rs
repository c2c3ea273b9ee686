//! What a test reads from a finished job, asserting as it reads.

use pipeline_local::job_invocation::JobRun;
use serde_json::{Map, Value};

/// Reading a [`JobRun`]'s reports; each accessor panics with the reports when the job did not
/// end the way the test expects.
pub trait JobRunAssertions {
    /// The only report the job made (asserts there was exactly one).
    fn only_result(&self) -> &Value;
    /// The last report.
    fn last(&self) -> &Value;
    /// The failure's `(type, message)`; asserts the job ended in one failure report, after
    /// nothing but continuations.
    fn expect_failure(&self) -> (String, String);
    /// The final success's output variables; asserts the job succeeded.
    fn expect_variables(&self) -> Map<String, Value>;
    /// The last report's summary (empty when it had none).
    fn summary_text(&self) -> String;
}

impl JobRunAssertions for JobRun {
    fn only_result(&self) -> &Value {
        let results = self.results();
        assert_eq!(
            results.len(),
            1,
            "expected exactly one result, got {results:?}"
        );
        &results[0]
    }

    fn last(&self) -> &Value {
        self.last_result()
            .unwrap_or_else(|| panic!("the job reported nothing: {:?}", self.record))
    }

    fn expect_failure(&self) -> (String, String) {
        let results = self.results();
        let earlier = &results[..results.len().saturating_sub(1)];
        assert!(
            earlier.iter().all(|r| r.get("continuationToken").is_some()),
            "a final report came before the last one: {results:?}"
        );
        JobRun::failure(self).unwrap_or_else(|| panic!("expected a failure: {}", self.last()))
    }

    fn expect_variables(&self) -> Map<String, Value> {
        self.output_variables()
            .unwrap_or_else(|| panic!("job failed: {}", self.last()))
    }

    fn summary_text(&self) -> String {
        JobRun::summary(self).unwrap_or_default().to_string()
    }
}
