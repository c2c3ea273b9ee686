//! Slack interaction payloads (`payload=<json>` form bodies): a button click (`block_actions`)
//! or the reason modal's submission (`view_submission`).

use pipeline_ext::slack::approval::{ApprovalRef, REASON_BLOCK, REASON_INPUT, REJECT_VIEW};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A Slack user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlackUser {
    /// Their id.
    pub id: String,
    /// Their name (may be empty).
    pub name: String,
}

/// What Slack sent.
#[derive(Clone, Debug)]
pub enum Interaction {
    /// A button of an approval message.
    Click {
        /// `approve` or `reject`.
        action_id: String,
        /// The approval the button is for.
        approval: ApprovalRef,
        /// Who clicked.
        user: SlackUser,
        /// The message's channel.
        channel: String,
        /// The message's ts.
        message_ts: String,
        /// The message's blocks, to rewrite in place.
        blocks: Vec<Value>,
        /// For `views.open`, when a reason is asked.
        trigger_id: String,
    },
    /// The reason dialog, submitted.
    ReasonSubmitted {
        /// What the dialog was opened for.
        context: DecisionContext,
        /// Who submitted it.
        user: SlackUser,
        /// The reason typed.
        reason: String,
    },
}

/// Carried through the reason modal's `private_metadata` (at most 3,000 characters).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DecisionContext {
    /// What the reason is for.
    #[serde(rename = "d", default)]
    pub decision: crate::policy::Decision,
    /// The approval.
    #[serde(rename = "r")]
    pub approval: ApprovalRef,
    /// The message's channel.
    #[serde(rename = "c")]
    pub channel: String,
    /// The message's ts.
    #[serde(rename = "m")]
    pub message_ts: String,
    /// The message's blocks without the buttons, when they fit.
    #[serde(rename = "b", default)]
    pub blocks: Vec<Value>,
}

/// Why a payload was refused; the text goes to the logs, not to Slack.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// No `payload` field in the form.
    #[error("the body has no `payload` form field")]
    NoPayload,
    /// `payload` is not JSON.
    #[error("the payload is not JSON")]
    NotJson,
    /// A field the interaction needs is missing.
    #[error("the payload lacks {0}")]
    Missing(&'static str),
    /// An action that is not one of our buttons.
    #[error("unknown action `{0}`")]
    UnknownAction(String),
    /// An interaction type the responder does not take.
    #[error("unsupported interaction type `{0}`")]
    UnsupportedType(String),
}

/// Reads an interaction from a form body.
pub fn parse(body: &[u8]) -> Result<Interaction, PayloadError> {
    let payload = form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
        .ok_or(PayloadError::NoPayload)?;
    let payload: Value = serde_json::from_str(&payload).map_err(|_| PayloadError::NotJson)?;
    let user = SlackUser {
        id: text(&payload["user"]["id"]).ok_or(PayloadError::Missing("user.id"))?,
        name: text(&payload["user"]["username"])
            .or_else(|| text(&payload["user"]["name"]))
            .unwrap_or_default(),
    };
    match payload["type"].as_str().unwrap_or_default() {
        "block_actions" => {
            let action = &payload["actions"][0];
            let action_id =
                text(&action["action_id"]).ok_or(PayloadError::Missing("actions[0].action_id"))?;
            if action_id != pipeline_ext::slack::approval::APPROVE_ACTION
                && action_id != pipeline_ext::slack::approval::REJECT_ACTION
            {
                return Err(PayloadError::UnknownAction(action_id));
            }
            let approval = text(&action["value"])
                .and_then(|v| ApprovalRef::decode(&v))
                .ok_or(PayloadError::Missing("a valid button value"))?;
            Ok(Interaction::Click {
                action_id,
                approval,
                user,
                channel: text(&payload["channel"]["id"])
                    .or_else(|| text(&payload["container"]["channel_id"]))
                    .ok_or(PayloadError::Missing("channel.id"))?,
                message_ts: text(&payload["message"]["ts"])
                    .or_else(|| text(&payload["container"]["message_ts"]))
                    .ok_or(PayloadError::Missing("message.ts"))?,
                blocks: payload["message"]["blocks"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
                trigger_id: text(&payload["trigger_id"]).unwrap_or_default(),
            })
        }
        "view_submission" => {
            let view = &payload["view"];
            if view["callback_id"].as_str() != Some(REJECT_VIEW) {
                return Err(PayloadError::UnknownAction(
                    text(&view["callback_id"]).unwrap_or_default(),
                ));
            }
            let context: DecisionContext = text(&view["private_metadata"])
                .and_then(|m| serde_json::from_str(&m).ok())
                .ok_or(PayloadError::Missing("view.private_metadata"))?;
            let reason = text(&view["state"]["values"][REASON_BLOCK][REASON_INPUT]["value"])
                .map(|r| r.trim().to_string())
                .unwrap_or_default();
            Ok(Interaction::ReasonSubmitted {
                context,
                user,
                reason,
            })
        }
        other => Err(PayloadError::UnsupportedType(other.to_string())),
    }
}

/// Whether one of the buttons of the message `blocks` carries `approval`: a click's value must
/// come from the message it was clicked on, or deciding it would rewrite another approval's
/// message.
pub fn message_carries(blocks: &[Value], approval: &ApprovalRef) -> bool {
    blocks
        .iter()
        .filter(|b| b["type"] == "actions")
        .filter_map(|b| b["elements"].as_array())
        .flatten()
        .filter_map(|e| e["value"].as_str())
        .filter_map(ApprovalRef::decode)
        .any(|carried| carried == *approval)
}

/// A string field, when it is one.
fn text(value: &Value) -> Option<String> {
    value.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}
