//! Clicks where the message or the decision could differ from what happened: a button value
//! copied from another approval's message, a reason CodePipeline would refuse for its length in
//! UTF-16, and a user-group check Slack never answers.

mod flow;

use flow::*;
use pipeline_local::faults::Fault;
use serde_json::json;

const TOKEN_B: &str = "9d1e6c2a-40b7-4c1f-8a55-6e2f3b4c5d6e";

async fn two_approvals(
    flow: &Flow,
) -> (
    pipeline_local::slack::SlackMessage,
    pipeline_local::slack::SlackMessage,
) {
    flow.aws
        .codepipeline
        .register_approval(TOKEN_B, "web", "Staging", "ReleaseApproval");
    let a = notify(flow, TOKEN).await;
    let b = notify(flow, TOKEN_B).await;
    assert_ne!(a.ts, b.ts);
    (a, b)
}

fn decision_of(flow: &Flow, token: &str) -> Option<(String, String)> {
    flow.aws.codepipeline.approval(token).unwrap().decision
}

/// Nothing decided, no message rewritten, the clicker told why.
fn assert_refused_untouched(
    flow: &Flow,
    a: &pipeline_local::slack::SlackMessage,
    b: &pipeline_local::slack::SlackMessage,
) {
    assert_eq!(approval_calls(flow), 0, "nothing is decided");
    assert!(decision_of(flow, TOKEN).is_none() && decision_of(flow, TOKEN_B).is_none());
    assert_eq!(
        flow.slack.calls("chat.update").len(),
        0,
        "no message is rewritten"
    );
    assert_eq!(current(flow, &a.ts).blocks, a.blocks, "message A untouched");
    assert_eq!(current(flow, &b.ts).blocks, b.blocks, "message B untouched");
    let reply = told(flow, APPROVER).pop().expect("the clicker is told");
    assert!(
        reply.contains("does not belong to this approval message"),
        "{reply}"
    );
}

#[tokio::test]
async fn rejects_a_click_on_one_message_carrying_another_approvals_button_value() {
    let flow = flow(APPROVER).await;
    let (a, b) = two_approvals(&flow).await;
    // Message A's click, with the value of message B's Approve button.
    let mut forged = click(&a, "approve", APPROVER);
    forged["actions"][0]["value"] = click(&b, "approve", APPROVER)["actions"][0]["value"].clone();
    let (status, _) = respond(&flow, &signed_request(&form(&forged), now(), false)).await;
    assert_eq!(status, 200);
    assert_refused_untouched(&flow, &a, &b);

    // B's own button decides B and rewrites B's message only.
    let (status, _) = respond(
        &flow,
        &signed_request(&form(&click(&b, "approve", APPROVER)), now(), false),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(decision_of(&flow, TOKEN_B).unwrap().0, "Approved");
    assert!(decision_of(&flow, TOKEN).is_none(), "A is still waiting");
    assert_eq!(
        current(&flow, &a.ts).blocks,
        a.blocks,
        "message A untouched"
    );
    assert!(current(&flow, &b.ts)
        .blocks
        .to_string()
        .contains("*Approved*"));
}

#[tokio::test]
async fn rejects_a_click_whose_whole_message_is_another_approvals_but_its_address_is_not() {
    // B's payload (blocks and value agree) addressed to A's message: the table says where
    // B's approval was posted, and it is not there.
    let flow = flow(APPROVER).await;
    let (a, b) = two_approvals(&flow).await;
    let mut forged = click(&b, "approve", APPROVER);
    forged["container"]["message_ts"] = json!(a.ts);
    forged["message"]["ts"] = json!(a.ts);
    let (status, _) = respond(&flow, &signed_request(&form(&forged), now(), false)).await;
    assert_eq!(status, 200);
    assert_refused_untouched(&flow, &a, &b);
}

#[tokio::test]
async fn a_reason_of_600_emoji_is_recorded_with_a_summary_codepipeline_takes() {
    let flow = flow(APPROVER).await;
    let message = notify(&flow, TOKEN).await;
    respond(
        &flow,
        &signed_request(&form(&click(&message, "reject", APPROVER)), now(), false),
    )
    .await;
    let view = flow.slack.views().pop().expect("the reason dialog");
    assert!(
        view.to_string().contains("an emoji counts as two"),
        "the dialog says how long a reason CodePipeline keeps: {view}"
    );
    let (family, fire) = ("👨\u{200d}👩\u{200d}👧", "🔥");
    let unit = format!("{family}{fire}");
    let reason = unit.repeat(300);
    let (status, body) = respond(
        &flow,
        &signed_request(&form(&submission(&view, APPROVER, &reason)), now(), false),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, ""), "the dialog closes");
    let (result, summary) = decision(&flow).expect("the rejection is recorded");
    assert_eq!(result, "Rejected");
    let units = summary.encode_utf16().count();
    assert!(units <= 512, "{units} UTF-16 units");
    assert!(units > 480, "the summary keeps as much as fits: {units}");
    let kept = summary
        .strip_prefix(&format!("Rejected in Slack by dana ({APPROVER}): "))
        .and_then(|s| s.strip_suffix('…'))
        .expect("the summary says who and why, cut with a mark");
    assert!(reason.starts_with(kept));
    assert!(
        [0, family.len()].contains(&(kept.len() % unit.len())),
        "the cut falls between graphemes, never inside the ZWJ family or a surrogate pair"
    );
}

#[tokio::test]
async fn a_hung_user_group_lookup_is_answered_with_an_ephemeral_within_slacks_three_seconds() {
    let flow = flow("S0RELEASERS").await;
    flow.slack.add_usergroup("S0RELEASERS", &["U0GROUPMEMBER"]);
    let message = notify(&flow, TOKEN).await;
    flow.aws
        .faults
        .add(Fault::new("slack", "usergroups.users.list", "hang", 200));
    let invocation = flow
        .responder
        .invoke(&signed_request(
            &form(&click(&message, "approve", "U0GROUPMEMBER")),
            now(),
            false,
        ))
        .await;
    assert_eq!(approval_calls(&flow), 0, "nothing is decided");
    assert!(decision(&flow).is_none());
    let told = flow.slack.calls("chat.postEphemeral");
    assert_eq!(told.len(), 1, "the clicker is told");
    let text = told[0].detail["request"]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("Could not check your user groups"), "{text}");
    assert!(text.contains("nothing was recorded"), "{text}");
    // Slack drops an interaction answered after 3 s; the ephemeral must go out before.
    let after_ms = told[0].at_ms - invocation.started_at_ms;
    assert!(
        after_ms < 3_000.0,
        "the ephemeral went out {after_ms:.0} ms after the click"
    );
}
