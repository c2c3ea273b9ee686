//! The partition keys of the executions table: one variant per kind of item, so a key is never
//! spelled as a string literal in a function.

use std::fmt;

/// The `pk` of one item of the executions table.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ItemKey {
    /// `execution#<execution id>`: pipeline-notifier's folded events of one execution and its
    /// Slack message.
    Execution {
        /// The pipeline execution id.
        execution_id: String,
    },
    /// `approval#<token>`: approval-notifier's claim of one approval request and where the
    /// message was posted.
    ApprovalRequest {
        /// The approval token CodePipeline issued.
        token: String,
    },
    /// `votes#<token>`: approval-responder's clicks on one approval and the decision.
    Votes {
        /// The approval token CodePipeline issued.
        token: String,
    },
    /// `approval-action#<execution>#<stage>#<action>`: where the approval message of an action
    /// in an execution was posted, with its blocks, so pipeline-notifier can rewrite it when
    /// the action ends outside Slack.
    ApprovalAction {
        /// The pipeline execution id.
        execution_id: String,
        /// The stage name.
        stage: String,
        /// The approval action's name.
        action: String,
    },
}

impl ItemKey {
    /// The item of one execution.
    pub fn execution(execution_id: impl Into<String>) -> Self {
        Self::Execution {
            execution_id: execution_id.into(),
        }
    }

    /// approval-notifier's item of one approval token.
    pub fn approval_request(token: impl Into<String>) -> Self {
        Self::ApprovalRequest {
            token: token.into(),
        }
    }

    /// approval-responder's item of one approval token.
    pub fn votes(token: impl Into<String>) -> Self {
        Self::Votes {
            token: token.into(),
        }
    }

    /// The index item of an approval action in an execution.
    pub fn approval_action(
        execution_id: impl Into<String>,
        stage: impl Into<String>,
        action: impl Into<String>,
    ) -> Self {
        Self::ApprovalAction {
            execution_id: execution_id.into(),
            stage: stage.into(),
            action: action.into(),
        }
    }

    /// Reads a stored `pk` back; `None` for a key no function writes. Stage and action names
    /// cannot hold `#` (CodePipeline allows `[A-Za-z0-9.@_-]`), so the split is unambiguous.
    pub fn parse(pk: &str) -> Option<Self> {
        let (kind, rest) = pk.split_once('#')?;
        let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        match kind {
            "execution" => nonempty(rest).map(Self::execution),
            "approval" => nonempty(rest).map(Self::approval_request),
            "votes" => nonempty(rest).map(Self::votes),
            "approval-action" => {
                let mut parts = rest.splitn(3, '#');
                let execution_id = nonempty(parts.next()?)?;
                let stage = nonempty(parts.next()?)?;
                let action = nonempty(parts.next()?)?;
                (!action.contains('#')).then_some(Self::ApprovalAction {
                    execution_id,
                    stage,
                    action,
                })
            }
            _ => None,
        }
    }
}

impl fmt::Display for ItemKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Execution { execution_id } => write!(f, "execution#{execution_id}"),
            Self::ApprovalRequest { token } => write!(f, "approval#{token}"),
            Self::Votes { token } => write!(f, "votes#{token}"),
            Self::ApprovalAction {
                execution_id,
                stage,
                action,
            } => write!(f, "approval-action#{execution_id}#{stage}#{action}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_keep_the_stored_spelling() {
        assert_eq!(ItemKey::execution("e-1").to_string(), "execution#e-1");
        assert_eq!(ItemKey::approval_request("t").to_string(), "approval#t");
        assert_eq!(ItemKey::votes("t").to_string(), "votes#t");
        assert_eq!(
            ItemKey::approval_action("e", "Prod", "Gate").to_string(),
            "approval-action#e#Prod#Gate"
        );
    }

    #[test]
    fn refuses_keys_no_function_writes() {
        for pk in [
            "",
            "execution",
            "execution#",
            "other#x",
            "approval-action#e#s",
            "approval-action#e#s#a#b",
        ] {
            assert_eq!(ItemKey::parse(pk), None, "{pk}");
        }
    }

    proptest! {
        #[test]
        fn every_key_reads_back_as_itself(
            id in "[A-Za-z0-9-]{1,40}",
            stage in "[A-Za-z0-9.@_-]{1,100}",
            action in "[A-Za-z0-9.@_-]{1,100}",
        ) {
            for key in [
                ItemKey::execution(&id),
                ItemKey::approval_request(&id),
                ItemKey::votes(&id),
                ItemKey::approval_action(&id, &stage, &action),
            ] {
                prop_assert_eq!(ItemKey::parse(&key.to_string()), Some(key));
            }
        }

        #[test]
        fn parse_never_panics(pk in "\\PC{0,60}") {
            let _ = ItemKey::parse(&pk);
        }
    }
}
