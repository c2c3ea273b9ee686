//! The bake period across invocations: when the next round is due, whether this invocation
//! has time for it, and what to report after it.

use crate::params::Params;
use crate::round::{self, CheckResult};
use crate::Clients;
use pipeline_ext::job::{Job, JobError, JobOutcome, JobSuccess};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Kept for the alarm lookup when a round is planned.
const ALARM_LOOKUP_ALLOWANCE: Duration = Duration::from_secs(3);
/// Left between the end of a round and the runner's deadline for building the report.
const REPORT_ALLOWANCE: Duration = Duration::from_millis(250);
/// The continuation token holds at most 2,048 characters; the results get what is left.
const MAX_DETAIL_CHARS: usize = 60;
const MAX_RESULTS_CHARS: usize = 1_500;

/// How far a token's start may lie ahead of this container's clock (clock skew between
/// containers).
const CLOCK_SKEW: Duration = Duration::from_secs(60);
/// Beyond one interval per round passed, the time a bake may lose between invocations.
const HANDOVER_SLACK: Duration = Duration::from_secs(300);

/// The continuation state: when the bake started (wall clock, since invocations may run in
/// different containers), how many rounds passed, and what the last round saw.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BakeState {
    /// When the bake began (epoch milliseconds).
    pub started_ms: u64,
    /// Rounds run so far.
    pub rounds: u32,
    /// What the last round saw, one line per check.
    #[serde(default)]
    pub last: Vec<String>,
}

/// One invocation's share of the bake: wait for the next round if it fits, run it, then
/// succeed, fail or continue.
pub async fn step(
    job: &Job<Params, BakeState>,
    clients: &Clients,
) -> Result<JobOutcome<BakeState>, JobError> {
    let params = &job.params;
    let mut state = match &job.state {
        Some(state) => {
            check_token(state, params, now_ms())?;
            state.clone()
        }
        None => BakeState {
            started_ms: now_ms(),
            ..BakeState::default()
        },
    };
    let due_ms = state.started_ms.saturating_add(
        u64::from(state.rounds)
            .saturating_mul(params.interval_seconds.saturating_mul(1000))
            .min(params.bake_seconds.saturating_mul(1000)),
    );
    let wait = Duration::from_millis(due_ms.saturating_sub(now_ms()));
    if !wait.is_zero() {
        let usable = job.remaining().saturating_sub(round_cost(params));
        if wait > usable {
            // Not enough time to wait and still run the round: wait what we can, hand over.
            let pause = wait.min(job.remaining().saturating_sub(Duration::from_secs(1)));
            tokio::time::sleep(pause).await;
            return Ok(continuation(params, state, "waiting for the next round"));
        }
        tokio::time::sleep(wait).await;
    }

    let deadline = job.deadline() - REPORT_ALLOWANCE;
    // Boxed: the round's future is deep (HTTP and SDK calls), and inlining it overflows rustc's layout depth.
    let cloudwatch = match params.target_role()? {
        None => clients.cloudwatch.clone(),
        Some(role) => {
            // One round per invocation: the session must outlast one interval's work.
            let work = Duration::from_secs(params.interval_seconds) + round_cost(params);
            let config = Box::pin(clients.sessions.config_for(Some(&role), &job.id, work)).await?;
            aws_sdk_cloudwatch::Client::new(&config)
        }
    };
    let results = Box::pin(round::run(params, clients, &cloudwatch, deadline)).await?;
    state.rounds = state.rounds.saturating_add(1);
    let elapsed = Duration::from_millis(now_ms().saturating_sub(state.started_ms));
    let lines: Vec<String> = results.iter().map(|r| format!("- {r}")).collect();
    let failed: Vec<&CheckResult> = results.iter().filter(|r| !r.passed).collect();
    if !failed.is_empty() {
        let what = failed
            .iter()
            .map(|r| format!("{}: {}", r.name, r.detail))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(JobError::failed(format!(
            "deploy gate failed on round {} ({} s into a {} s bake): {what}\nAll checks this round:\n{}",
            state.rounds,
            elapsed.as_secs(),
            params.bake_seconds,
            lines.join("\n")
        )));
    }
    tracing::info!(
        round = state.rounds,
        elapsed_s = elapsed.as_secs(),
        "round passed"
    );
    if elapsed >= params.bake() {
        let summary = format!(
            "All {} checks passed for {} s ({} rounds).\n{}",
            results.len(),
            elapsed.as_secs(),
            state.rounds,
            lines.join("\n")
        );
        return Ok(JobOutcome::Succeeded(
            JobSuccess::new(summary)
                .variable("ChecksPassed", results.len())
                .variable("BakeSeconds", elapsed.as_secs()),
        ));
    }
    state.last = compact_results(&results);
    let note = format!("round {} passed", state.rounds);
    Ok(continuation(params, state, &note))
}

/// Refuses a continuation state this bake could not have produced: one that starts in the
/// future (the bake would stall), or claims more time than its rounds account for (the bake
/// would be skipped). A token is data that came back from outside; it is checked, not trusted.
pub fn check_token(state: &BakeState, params: &Params, now_ms: u64) -> Result<(), JobError> {
    let refuse = |why: String| {
        Err(JobError::failed(format!(
            "the deploy gate's continuation token is inconsistent ({why}); the bake was not resumed from it"
        )))
    };
    if state.started_ms > now_ms.saturating_add(CLOCK_SKEW.as_millis() as u64) {
        return refuse(format!(
            "its bake starts {} s in the future",
            (state.started_ms - now_ms) / 1000
        ));
    }
    let interval_ms = params.interval_seconds.saturating_mul(1000);
    let most_rounds = params
        .bake_seconds
        .checked_div(params.interval_seconds)
        .unwrap_or(0)
        .saturating_add(2);
    if u64::from(state.rounds) > most_rounds {
        return refuse(format!(
            "{} rounds, more than a {} s bake every {} s has",
            state.rounds, params.bake_seconds, params.interval_seconds
        ));
    }
    let elapsed_ms = now_ms.saturating_sub(state.started_ms);
    let accounted_ms = u64::from(state.rounds)
        .saturating_add(1)
        .saturating_mul(interval_ms)
        .saturating_add(HANDOVER_SLACK.as_millis() as u64);
    if elapsed_ms > accounted_ms {
        return refuse(format!(
            "it claims {} s of baking but only {} rounds passed",
            elapsed_ms / 1000,
            state.rounds
        ));
    }
    Ok(())
}

/// The longest a round can take: the slowest check with all its retries, and the alarms.
fn round_cost(params: &Params) -> Duration {
    let http = params
        .http
        .iter()
        .map(|c| c.worst_case())
        .max()
        .unwrap_or_default();
    let alarms = if params.alarms.is_empty() {
        Duration::ZERO
    } else {
        ALARM_LOOKUP_ALLOWANCE
    };
    http.max(alarms) + REPORT_ALLOWANCE
}

fn continuation(params: &Params, state: BakeState, note: &str) -> JobOutcome<BakeState> {
    let elapsed = now_ms().saturating_sub(state.started_ms) / 1000;
    let percent = (elapsed * 100)
        .checked_div(params.bake_seconds)
        .unwrap_or(0)
        .min(99) as u8;
    let mut summary = format!(
        "Baking: {note}; {elapsed} s of {} s, {} rounds passed.",
        params.bake_seconds, state.rounds
    );
    for line in &state.last {
        summary.push_str("\n- ");
        summary.push_str(line);
    }
    JobOutcome::Continue {
        state,
        summary,
        percent_complete: Some(percent),
    }
}

/// The last results, each shortened, as many as fit in the token's budget.
fn compact_results(results: &[CheckResult]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut used = 0;
    for (index, result) in results.iter().enumerate() {
        let name: String = result.name.chars().take(MAX_DETAIL_CHARS).collect();
        let detail: String = result.detail.chars().take(MAX_DETAIL_CHARS).collect();
        let line = format!("{name}: {detail}");
        if used + line.len() > MAX_RESULTS_CHARS {
            lines.push(format!("… and {} more", results.len() - index));
            break;
        }
        used += line.len() + 4;
        lines.push(line);
    }
    lines
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_results_always_fit_in_a_continuation_token() {
        let results: Vec<CheckResult> = (0..200)
            .map(|i| {
                CheckResult::passed(
                    format!("GET https://service-{i}.example.com/{}", "x".repeat(100)),
                    "status 200 in 12 ms".repeat(5),
                )
            })
            .collect();
        let state = BakeState {
            started_ms: u64::MAX,
            rounds: u32::MAX,
            last: compact_results(&results),
        };
        // The runner wraps the state as `{"v":1,"state":…}`.
        let token = serde_json::json!({"v": 1, "state": state}).to_string();
        assert!(
            token.chars().count() <= 2048,
            "{} chars",
            token.chars().count()
        );
        assert!(state.last.last().unwrap().starts_with("… and"));
    }
}
