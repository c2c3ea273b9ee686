//! Who may decide: `APPROVERS` lists Slack user ids (`U…`, `W…`) and user-group ids (`S…`);
//! group members are resolved with `usergroups.users.list` and kept for five minutes. An
//! empty list allows nobody.

use pipeline_ext::slack::SlackClient;
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

const GROUP_CACHE_TTL: Duration = Duration::from_secs(300);

pub struct Approvers {
    users: HashSet<String>,
    groups: Vec<String>,
    members: Mutex<Option<(Instant, HashSet<String>)>>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Denied,
    /// A group could not be resolved in time; the click is refused, never let through.
    Unknown(String),
}

impl Approvers {
    pub fn parse(list: &str) -> Self {
        let ids = list.split(',').map(str::trim).filter(|id| !id.is_empty());
        let (groups, users): (Vec<&str>, Vec<&str>) = ids.partition(|id| id.starts_with('S'));
        Self {
            users: users.into_iter().map(str::to_owned).collect(),
            groups: groups.into_iter().map(str::to_owned).collect(),
            members: Mutex::new(None),
        }
    }

    /// Nobody listed.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty()
    }

    pub async fn check(&self, user: &str, slack: &SlackClient, deadline: Instant) -> Verdict {
        if self.users.contains(user) {
            return Verdict::Allowed;
        }
        if self.groups.is_empty() {
            return Verdict::Denied;
        }
        if let Some(members) = self.cached() {
            return if members.contains(user) {
                Verdict::Allowed
            } else {
                Verdict::Denied
            };
        }
        let mut members = HashSet::new();
        for group in &self.groups {
            match slack
                .call_form(
                    "usergroups.users.list",
                    &[("usergroup", group.as_str())],
                    deadline,
                )
                .await
            {
                Ok(answer) => members.extend(
                    answer["users"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|u| u.as_str().map(str::to_owned)),
                ),
                Err(err) => return Verdict::Unknown(format!("user group {group}: {err}")),
            }
        }
        let allowed = members.contains(user);
        if let Ok(mut slot) = self.members.lock() {
            *slot = Some((Instant::now(), members));
        }
        if allowed {
            Verdict::Allowed
        } else {
            Verdict::Denied
        }
    }

    fn cached(&self) -> Option<HashSet<String>> {
        let slot = self.members.lock().ok()?;
        let (at, members) = slot.as_ref()?;
        (at.elapsed() < GROUP_CACHE_TTL).then(|| members.clone())
    }
}
