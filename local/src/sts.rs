//! STS on loopback (awsQuery, served by [`crate::service`]): `AssumeRole` issues temporary
//! credentials for a role the local "accounts" declare, which the other local endpoints then
//! accept and record, so a test can tell which role each call was made with; and
//! `GetCallerIdentity` says who signed.
//!
//! A role is assumable only when declared ([`LocalSts::add_role`]), with its external id when
//! it has one; anything else is `AccessDenied`, worded as STS words it.

use crate::calls::CallLog;
use crate::faults::Faults;
use crate::s3::CredentialRegistry;
use crate::service::{AwsJson, AwsQuery, JsonService, ServiceError};
use axum::http::StatusCode;
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// The account pipeline-local's own function role is in.
pub const LOCAL_ACCOUNT: &str = "000000000000";
/// `DurationSeconds` bounds.
const DURATION: std::ops::RangeInclusive<u64> = 900..=43_200;

/// A role that can be assumed, and the external id its trust policy requires.
#[derive(Clone, Debug)]
struct Role {
    /// The `sts:ExternalId` its trust policy's condition requires, if any: the confused-deputy
    /// guard a tooling account's roles are given.
    external_id: Option<String>,
}

/// Which account each caller acts in, for the services that keep each account's own
/// (alarms, secrets, databases, buckets): the assumed role's for a session's key, else this
/// process's. Without an STS (`Accounts::default()`), every caller is in [`LOCAL_ACCOUNT`].
#[derive(Clone, Default)]
pub struct Accounts(Option<LocalSts>);

impl Accounts {
    /// Accounts as `sts`'s sessions say.
    pub fn from_sts(sts: LocalSts) -> Self {
        Self(Some(sts))
    }

    /// The account a call signed with `access_key` acts in (`ExpiredToken` for a session
    /// that has expired).
    pub fn of(&self, access_key: Option<&str>) -> Result<String, ServiceError> {
        match &self.0 {
            Some(sts) => sts.caller_account(access_key),
            None => Ok(LOCAL_ACCOUNT.to_string()),
        }
    }
}

/// Credentials issued by `AssumeRole`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The role assumed.
    pub role_arn: String,
    /// `RoleSessionName`.
    pub session_name: String,
    /// When the credentials expire.
    pub expires: SystemTime,
}

/// Shared state of the local STS endpoint.
#[derive(Clone)]
pub struct LocalSts {
    /// The roles that can be assumed, by ARN.
    roles: Arc<RwLock<HashMap<String, Role>>>,
    /// Every session issued, by its access key, so a call's signer names its role.
    sessions: Arc<RwLock<HashMap<String, Session>>>,
    /// Where issued credentials are registered, so the other endpoints accept them.
    credentials: CredentialRegistry,
    /// Every call answered.
    calls: CallLog,
    /// Planned failures (`sts`, keyed by role ARN).
    faults: Faults,
    /// The longest a session lasts, whatever `DurationSeconds` asks (tests of expiry).
    max_session: Arc<RwLock<Option<Duration>>>,
}

fn access_denied(message: String) -> ServiceError {
    ServiceError::new(StatusCode::FORBIDDEN, "AccessDenied", message)
}

/// `arn:aws:iam::<12 digits>:role/<path/>name` → the account.
fn role_account(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let name = resource.strip_prefix("role/")?;
    (account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !name.is_empty()
        && name.len() <= 512
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b)))
    .then_some(account)
}

/// `RoleSessionName`: 2–64 of `[\w+=,.@-]`.
fn valid_session_name(name: &str) -> bool {
    (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
}

impl LocalSts {
    /// An endpoint with no roles, issuing credentials into `credentials`.
    pub fn new(credentials: CredentialRegistry, calls: CallLog, faults: Faults) -> Self {
        Self {
            roles: Arc::default(),
            sessions: Arc::default(),
            credentials,
            calls,
            faults,
            max_session: Arc::default(),
        }
    }

    /// Makes sessions issued from now on last at most `limit` (STS's own minimum is 15
    /// minutes; a test of a continuation that outlives its credentials needs less).
    pub fn cap_sessions(&self, limit: Duration) {
        if let Ok(mut max) = self.max_session.write() {
            *max = Some(limit);
        }
    }

    /// The account a call signed with `access_key` acts in: the assumed role's for a session's
    /// key (`ExpiredToken` once it has expired, as AWS answers), else this process's own.
    pub fn caller_account(&self, access_key: Option<&str>) -> Result<String, ServiceError> {
        let Some(session) = access_key.and_then(|key| self.session_of(key)) else {
            return Ok(LOCAL_ACCOUNT.to_string());
        };
        if session.expires <= SystemTime::now() {
            return Err(ServiceError::client(
                "ExpiredToken",
                "The security token included in the request is expired",
            ));
        }
        Ok(role_account(&session.role_arn)
            .unwrap_or(LOCAL_ACCOUNT)
            .to_string())
    }

    /// Declares a role that can be assumed, requiring `external_id` when given. Refuses an ARN
    /// that is not a role's.
    pub fn add_role(&self, arn: &str, external_id: Option<&str>) -> Result<(), String> {
        role_account(arn).ok_or_else(|| format!("{arn} is not an IAM role ARN"))?;
        if let Ok(mut roles) = self.roles.write() {
            roles.insert(
                arn.to_string(),
                Role {
                    external_id: external_id.map(str::to_owned),
                },
            );
        }
        Ok(())
    }

    /// The session an access key was issued for, if `AssumeRole` issued it.
    pub fn session_of(&self, access_key: &str) -> Option<Session> {
        self.sessions.read().ok()?.get(access_key).cloned()
    }

    /// Its HTTP routes.
    pub fn router(&self) -> Router {
        crate::service::router(self.clone(), self.calls.clone(), self.faults.clone())
    }

    /// `AssumeRole`: the request checked as STS checks it, the role's trust (declared, external
    /// id) checked, and a session issued whose credentials the local endpoints accept.
    fn assume_role(&self, request: &Value) -> Result<Value, ServiceError> {
        let field = |name: &str| request[name].as_str().map(str::to_owned);
        let arn = field("RoleArn").ok_or_else(|| ServiceError::missing_member("roleArn"))?;
        let session_name = field("RoleSessionName")
            .ok_or_else(|| ServiceError::missing_member("roleSessionName"))?;
        let account = role_account(&arn).ok_or_else(|| {
            ServiceError::client("ValidationError", format!("{arn} is not a valid role ARN"))
        })?;
        if !valid_session_name(&session_name) {
            return Err(ServiceError::client(
                "ValidationError",
                format!("1 validation error detected: Value '{session_name}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"),
            ));
        }
        let duration = match field("DurationSeconds") {
            None => 3600,
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|d| DURATION.contains(d))
                .ok_or_else(|| {
                    ServiceError::client(
                        "ValidationError",
                        format!("DurationSeconds {text} must be between 900 and 43200"),
                    )
                })?,
        };
        let role = self
            .roles
            .read()
            .ok()
            .and_then(|roles| roles.get(&arn).cloned());
        let denied = || {
            access_denied(format!(
                "User: arn:aws:sts::{LOCAL_ACCOUNT}:assumed-role/pipeline-local-function-role/local is not authorized to perform: sts:AssumeRole on resource: {arn}"
            ))
        };
        let role = role.ok_or_else(denied)?;
        if role.external_id.is_some() && role.external_id != field("ExternalId") {
            return Err(denied());
        }
        let id = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
        let access_key = format!("ASIA{}", &id[..16]);
        let secret = uuid::Uuid::new_v4().simple().to_string();
        let mut lasts = Duration::from_secs(duration);
        if let Some(cap) = self.max_session.read().ok().and_then(|m| *m) {
            lasts = lasts.min(cap);
        }
        let expires = SystemTime::now() + lasts;
        self.credentials.register(&access_key, &secret);
        if let Ok(mut sessions) = self.sessions.write() {
            sessions.insert(
                access_key.clone(),
                Session {
                    role_arn: arn.clone(),
                    session_name: session_name.clone(),
                    expires,
                },
            );
        }
        let role_name = arn.rsplit('/').next().unwrap_or_default();
        Ok(json!({
            "Credentials": {
                "AccessKeyId": access_key,
                "SecretAccessKey": secret,
                "SessionToken": format!("local-sts-{}", uuid::Uuid::new_v4().simple()),
                "Expiration": aws_smithy_types::DateTime::from(expires)
                    .fmt(aws_smithy_types::date_time::Format::DateTime)
                    .unwrap_or_default(),
            },
            "AssumedRoleUser": {
                "AssumedRoleId": format!("AROA{}:{session_name}", &id[16..28]),
                "Arn": format!("arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}"),
            },
            "PackedPolicySize": 0,
        }))
    }

    /// `GetCallerIdentity`: the assumed role of a session's key, else the local function role.
    fn caller_identity(&self, caller: Option<&str>) -> Result<Value, ServiceError> {
        let caller = caller.ok_or_else(|| {
            ServiceError::client(
                "MissingAuthenticationToken",
                "Request is missing Authentication Token",
            )
        })?;
        Ok(match self.session_of(caller) {
            Some(session) => {
                let account = role_account(&session.role_arn).unwrap_or(LOCAL_ACCOUNT);
                let role_name = session.role_arn.rsplit('/').next().unwrap_or_default();
                json!({
                    "UserId": format!("AROALOCAL:{}", session.session_name),
                    "Account": account,
                    "Arn": format!("arn:aws:sts::{account}:assumed-role/{role_name}/{}", session.session_name),
                })
            }
            None => json!({
                "UserId": format!("AROALOCAL:{caller}"),
                "Account": LOCAL_ACCOUNT,
                "Arn": format!("arn:aws:sts::{LOCAL_ACCOUNT}:assumed-role/pipeline-local-function-role/local"),
            }),
        })
    }
}

impl JsonService for LocalSts {
    const NAME: &'static str = "sts";
    const TARGET_PREFIX: &'static str = "AWSSecurityTokenServiceV20110615";
    const AWS_JSON: AwsJson = AwsJson::V1_0;
    const AWS_QUERY: Option<AwsQuery> = Some(AwsQuery {
        xmlns: "https://sts.amazonaws.com/doc/2011-06-15/",
    });

    fn dispatch(&self, operation: &str, request: &Value) -> Result<Value, ServiceError> {
        self.dispatch_as(operation, request, None)
    }

    fn dispatch_as(
        &self,
        operation: &str,
        request: &Value,
        caller: Option<&str>,
    ) -> Result<Value, ServiceError> {
        match operation {
            "AssumeRole" => self.assume_role(request),
            "GetCallerIdentity" => self.caller_identity(caller),
            other => Err(ServiceError::unknown_operation(other)),
        }
    }

    fn fault_key(&self, request: &Value) -> Option<String> {
        request["RoleArn"].as_str().map(str::to_owned)
    }

    fn call_detail(&self, request: &Value) -> Value {
        // Never the external id: it is the one shared secret of a trust policy.
        json!({
            "RoleArn": request["RoleArn"],
            "RoleSessionName": request["RoleSessionName"],
            "DurationSeconds": request["DurationSeconds"],
            "ExternalIdGiven": request.get("ExternalId").is_some(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sts() -> LocalSts {
        LocalSts::new(
            CredentialRegistry::default(),
            CallLog::default(),
            Faults::default(),
        )
    }

    const ROLE: &str = "arn:aws:iam::222222222222:role/pipeline-publish";

    #[test]
    fn a_declared_role_is_assumed_with_its_external_id_only() {
        let sts = sts();
        sts.add_role(ROLE, Some("tooling-xyz")).unwrap();
        let ask = |external: Option<&str>| {
            let mut request = json!({"RoleArn": ROLE, "RoleSessionName": "pipeline-1234abcd"});
            if let Some(id) = external {
                request["ExternalId"] = json!(id);
            }
            sts.dispatch("AssumeRole", &request)
        };
        assert_eq!(ask(None).unwrap_err().code, "AccessDenied");
        assert_eq!(ask(Some("wrong")).unwrap_err().code, "AccessDenied");
        let answer = ask(Some("tooling-xyz")).unwrap();
        let key = answer["Credentials"]["AccessKeyId"].as_str().unwrap();
        assert_eq!(sts.session_of(key).unwrap().role_arn, ROLE);
        assert_eq!(
            answer["AssumedRoleUser"]["Arn"],
            "arn:aws:sts::222222222222:assumed-role/pipeline-publish/pipeline-1234abcd"
        );
        let me = sts
            .dispatch_as("GetCallerIdentity", &json!({}), Some(key))
            .unwrap();
        assert_eq!(me["Account"], "222222222222");
    }

    #[test]
    fn an_undeclared_role_is_denied_naming_it() {
        let error = sts()
            .dispatch(
                "AssumeRole",
                &json!({"RoleArn": ROLE, "RoleSessionName": "s1"}),
            )
            .unwrap_err();
        assert_eq!(error.status, StatusCode::FORBIDDEN);
        assert!(error.message.contains(ROLE), "{}", error.message);
    }

    #[test]
    fn requests_are_validated_as_sts_validates_them() {
        let sts = sts();
        sts.add_role(ROLE, None).unwrap();
        for (request, code) in [
            (json!({"RoleSessionName": "s1"}), "ValidationException"),
            (
                json!({"RoleArn": "arn:aws:s3:::b", "RoleSessionName": "s1"}),
                "ValidationError",
            ),
            (
                json!({"RoleArn": ROLE, "RoleSessionName": "x"}),
                "ValidationError",
            ),
            (
                json!({"RoleArn": ROLE, "RoleSessionName": "s1", "DurationSeconds": "60"}),
                "ValidationError",
            ),
        ] {
            assert_eq!(
                sts.dispatch("AssumeRole", &request).unwrap_err().code,
                code,
                "{request}"
            );
        }
        assert!(sts.add_role("arn:aws:iam::1:role/x", None).is_err());
    }

    proptest! {
        #[test]
        fn any_role_arn_is_judged_without_panicking(arn in "\\PC{0,80}") {
            let _ = role_account(&arn);
            let _ = valid_session_name(&arn);
        }
    }
}
