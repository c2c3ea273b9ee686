//! The runner of the functions an event triggers (SNS, EventBridge, a Function URL): what
//! [`crate::job::JobRunner`] is to invoke actions.
//!
//! It gives the handler the invocation's deadline less a margin, runs it on its own task so a
//! panic is caught, stops it when the deadline passes, and turns every failure into a
//! [`Diagnostic`] with a **stable `errorType`**: the handler's own (see [`EventFailure`]),
//! [`ERROR_PANICKED`] or [`ERROR_OUT_OF_TIME`]. Lambda shows the `errorType` in its metrics and
//! logs and passes it to a dead-letter queue; a Rust type path there (what `lambda_runtime`
//! makes of a boxed error) cannot be alarmed on and changes between compiler versions.
//!
//! An event that can never be processed (a value no service would take, a shape we do not
//! know) is not a failure: the handler logs it with a stable reason and returns `Ok`, or
//! returns an error whose [`EventFailure::is_permanent`] says so, which the runner logs and
//! answers with `{"skipped": reason}`, so that Lambda does not retry an event that cannot
//! succeed.

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::{json, Value};
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// `errorType` of a handler that panicked.
pub const ERROR_PANICKED: &str = "HandlerPanicked";
/// `errorType` of a handler stopped at the invocation's deadline.
pub const ERROR_OUT_OF_TIME: &str = "OutOfTime";
/// The deadline assumed when the Runtime API gives none in the future: Lambda's longest timeout.
const NO_DEADLINE_FALLBACK: Duration = Duration::from_secs(900);
/// Kept from the deadline to answer the Runtime API once the handler was stopped.
const ANSWER_RESERVE: Duration = Duration::from_millis(100);

/// What an event function's handler fails with.
pub trait EventFailure: std::fmt::Display + Send + 'static {
    /// The `errorType` Lambda records: a stable name in CamelCase, documented with the
    /// function, never derived from a Rust type.
    fn error_type(&self) -> &'static str;

    /// True when retrying the same event cannot succeed (the event itself is the problem):
    /// the runner logs it and skips it instead of failing the invocation.
    fn is_permanent(&self) -> bool {
        false
    }
}

/// A handler that answers every event (a Function URL's, with an HTTP status) never fails.
impl EventFailure for std::convert::Infallible {
    fn error_type(&self) -> &'static str {
        match *self {}
    }
}

/// Runs event handlers. Build one per process.
#[derive(Clone, Debug)]
pub struct EventRunner {
    margin: Duration,
}

impl EventRunner {
    /// A runner that gives handlers the invocation's deadline less `margin`, so that a
    /// handler's own timeouts end before Lambda's and it can still say what failed.
    pub fn new(margin: Duration) -> Self {
        Self { margin }
    }

    /// Handles one invocation: `handler` gets the event and its deadline.
    pub async fn run<F, Fut, E>(
        &self,
        event: LambdaEvent<Value>,
        handler: F,
    ) -> Result<Value, Diagnostic>
    where
        F: FnOnce(Value, Instant) -> Fut,
        Fut: Future<Output = Result<Value, E>> + Send + 'static,
        E: EventFailure,
    {
        let (payload, context) = event.into_parts();
        let deadline = invocation_deadline(context.deadline);
        let work_deadline = deadline.checked_sub(self.margin).unwrap_or(deadline);
        let stop_at = deadline.checked_sub(ANSWER_RESERVE).unwrap_or(deadline);
        let mut task = tokio::spawn(handler(payload, work_deadline));
        let outcome = tokio::select! {
            joined = &mut task => joined,
            _ = tokio::time::sleep_until(stop_at) => {
                task.abort();
                tracing::error!(request_id = %context.request_id, error_type = ERROR_OUT_OF_TIME, "the handler was stopped at the invocation's deadline");
                return Err(Diagnostic {
                    error_type: ERROR_OUT_OF_TIME.into(),
                    error_message: "the handler did not finish before the invocation's deadline".into(),
                });
            }
        };
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) if err.is_permanent() => {
                tracing::warn!(request_id = %context.request_id, reason = err.error_type(), error = %err, "event skipped: it can never be processed");
                Ok(json!({"skipped": err.error_type(), "why": err.to_string()}))
            }
            Ok(Err(err)) => {
                tracing::error!(request_id = %context.request_id, error_type = err.error_type(), error = %err, "invocation failed");
                Err(Diagnostic {
                    error_type: err.error_type().into(),
                    error_message: err.to_string(),
                })
            }
            Err(joined) => {
                let message = if joined.is_panic() {
                    panic_message(joined.into_panic())
                } else {
                    joined.to_string()
                };
                tracing::error!(request_id = %context.request_id, error_type = ERROR_PANICKED, panic = %message, "the handler panicked");
                Err(Diagnostic {
                    error_type: ERROR_PANICKED.into(),
                    error_message: format!("the handler panicked: {message}"),
                })
            }
        }
    }
}

/// The Runtime API's epoch-millisecond deadline as a monotonic instant; one that is absent
/// or past (some local emulators send none) is taken as Lambda's longest timeout, with a
/// warning, so there is still time to do the work and answer.
pub fn invocation_deadline(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    if deadline_ms > now_ms {
        Instant::now() + Duration::from_millis(deadline_ms - now_ms)
    } else {
        tracing::warn!(
            deadline_ms,
            "the Runtime API gave no deadline in the future; assuming Lambda's longest timeout, {} s",
            NO_DEADLINE_FALLBACK.as_secs()
        );
        Instant::now() + NO_DEADLINE_FALLBACK
    }
}

/// The message of a caught panic.
pub(crate) fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_runtime::Context;

    #[derive(Debug)]
    enum Failure {
        Upstream,
        Poison,
    }

    impl std::fmt::Display for Failure {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(match self {
                Failure::Upstream => "Slack did not answer",
                Failure::Poison => "execution id of 5000 characters",
            })
        }
    }

    impl EventFailure for Failure {
        fn error_type(&self) -> &'static str {
            match self {
                Failure::Upstream => "SlackUndelivered",
                Failure::Poison => "InvalidEvent",
            }
        }
        fn is_permanent(&self) -> bool {
            matches!(self, Failure::Poison)
        }
    }

    fn event_due_in(ms: u64) -> LambdaEvent<Value> {
        let mut context = Context::default();
        context.request_id = "req-1".into();
        context.deadline = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
            + ms;
        LambdaEvent::new(json!({"id": "e-1"}), context)
    }

    #[tokio::test]
    async fn a_handler_error_gets_its_stable_error_type() {
        let runner = EventRunner::new(Duration::from_millis(500));
        let err = runner
            .run(event_due_in(10_000), |_, _| async {
                Err::<Value, _>(Failure::Upstream)
            })
            .await
            .unwrap_err();
        assert_eq!(err.error_type, "SlackUndelivered");
        assert_eq!(err.error_message, "Slack did not answer");
    }

    #[tokio::test]
    async fn an_event_that_can_never_succeed_is_skipped_not_failed() {
        let runner = EventRunner::new(Duration::from_millis(500));
        let answer = runner
            .run(event_due_in(10_000), |_, _| async {
                Err::<Value, _>(Failure::Poison)
            })
            .await
            .expect("no invocation error: Lambda must not retry it");
        assert_eq!(answer["skipped"], "InvalidEvent");
    }

    #[tokio::test]
    async fn a_panic_is_a_stable_error_type_with_its_message() {
        let runner = EventRunner::new(Duration::from_millis(500));
        let err = runner
            .run(event_due_in(10_000), |_, _| async {
                if true {
                    panic!("index out of bounds");
                }
                Ok::<Value, Failure>(Value::Null)
            })
            .await
            .unwrap_err();
        assert_eq!(err.error_type, ERROR_PANICKED);
        assert!(err.error_message.contains("index out of bounds"));
    }

    #[tokio::test]
    async fn the_handler_gets_the_deadline_less_the_margin_and_is_stopped_at_the_deadline() {
        let runner = EventRunner::new(Duration::from_millis(300));
        let started = Instant::now();
        let err = runner
            .run(event_due_in(800), move |_, deadline| async move {
                let given = deadline.saturating_duration_since(started);
                assert!(given <= Duration::from_millis(520), "{given:?}");
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok::<Value, Failure>(Value::Null)
            })
            .await
            .unwrap_err();
        assert_eq!(err.error_type, ERROR_OUT_OF_TIME);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_deadline_in_the_past_is_lambdas_longest_timeout() {
        let left = invocation_deadline(0) - Instant::now();
        assert!(left > Duration::from_secs(800), "{left:?}");
    }
}
