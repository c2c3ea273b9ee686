//! Slack request signatures (v0): `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{raw body}` with
//! the app's signing secret, and a timestamp within five minutes of now.
//! <https://api.slack.com/authentication/verifying-requests-from-slack>

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::{SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

/// How far a request's timestamp may be from now, either way.
pub const MAX_CLOCK_SKEW_SECONDS: u64 = 5 * 60;

/// Why a request is not taken as Slack's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No timestamp header.
    #[error("no X-Slack-Request-Timestamp header")]
    MissingTimestamp,
    /// No signature header.
    #[error("no X-Slack-Signature header")]
    MissingSignature,
    /// The timestamp is not a number.
    #[error("X-Slack-Request-Timestamp is not a Unix time")]
    BadTimestamp,
    /// Too far from now: a replay or a skewed clock.
    #[error(
        "the request is {0} s away from now (at most 300 s allowed): a replay or a skewed clock"
    )]
    Stale(u64),
    /// The signature does not match.
    #[error("the signature does not match the body")]
    Mismatch,
}

/// Computes the `X-Slack-Signature` value Slack would send.
pub fn sign(signing_secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(signing_secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a request as Slack's own SDKs do: fresh timestamp, then a constant-time comparison
/// of the whole header value with the expected one.
pub fn verify(
    signing_secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: SystemTime,
) -> Result<(), SignatureError> {
    let timestamp = timestamp.ok_or(SignatureError::MissingTimestamp)?;
    let signature = signature.ok_or(SignatureError::MissingSignature)?;
    let sent: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    let now = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let skew = now.abs_diff(sent);
    if skew > MAX_CLOCK_SKEW_SECONDS {
        return Err(SignatureError::Stale(skew));
    }
    let expected = sign(signing_secret, timestamp, body);
    if expected.as_bytes().ct_eq(signature.as_bytes()).into() {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn matches_slacks_documented_example() {
        // From Slack's "Verifying requests from Slack" page.
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert_eq!(sign(SECRET, "1531420618", body), expected);
        assert_eq!(
            verify(
                SECRET,
                Some("1531420618"),
                Some(expected),
                body,
                at(1531420618 + 10)
            ),
            Ok(())
        );
    }

    #[test]
    fn refuses_stale_future_tampered_and_incomplete_requests() {
        let body = b"payload=%7B%7D";
        let good = sign(SECRET, "1700000000", body);
        let now = at(1_700_000_000);
        assert_eq!(
            verify(
                SECRET,
                Some("1699999640"),
                Some(&sign(SECRET, "1699999640", body)),
                body,
                now
            ),
            Err(SignatureError::Stale(360))
        );
        assert_eq!(
            verify(
                SECRET,
                Some("1700000400"),
                Some(&sign(SECRET, "1700000400", body)),
                body,
                now
            ),
            Err(SignatureError::Stale(400))
        );
        assert_eq!(
            verify(
                SECRET,
                Some("1700000000"),
                Some(&good),
                b"payload=%7B%7Dx",
                now
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                SECRET,
                Some("1700000000"),
                Some(&good.to_uppercase()),
                body,
                now
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, None, Some(&good), body, now),
            Err(SignatureError::MissingTimestamp)
        );
        assert_eq!(
            verify(SECRET, Some("1700000000"), None, body, now),
            Err(SignatureError::MissingSignature)
        );
        assert_eq!(
            verify(SECRET, Some("soon"), Some(&good), body, now),
            Err(SignatureError::BadTimestamp)
        );
    }
}
