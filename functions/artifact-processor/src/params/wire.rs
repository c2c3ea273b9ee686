//! Parameter values that end up in an HTTP request line or header: checked while the
//! `UserParameters` are read, so a value no request can carry is a `ConfigurationError` naming
//! its key (`steps[0].publish.cache_control.index.html`), not a request that fails mid-publish
//! after other files went out.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::ops::Deref;

/// A value sent as an HTTP header (`Cache-Control`, a KMS key id): visible ASCII, spaces and
/// tabs. A CR or LF would end the header (header injection); other control characters and
/// non-ASCII text are refused by S3 and by the HTTP client alike.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct HeaderValue(String);

/// A bucket name as S3 takes it in a request: letters, digits, `.`, `-` and `_` (the last
/// two and capitals only in legacy buckets), at most 255 characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct BucketName(String);

/// A CloudFront distribution id: capital letters and digits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DistributionId(String);

impl HeaderValue {
    /// Checks `value` as [`HeaderValue`] describes.
    pub fn parse(value: &str) -> Result<Self, String> {
        if let Some(bad) = value
            .chars()
            .find(|c| !(*c == '\t' || (' '..='~').contains(c)))
        {
            let what = match bad {
                '\r' | '\n' => "a line break (CR or LF)".to_string(),
                c if c.is_control() => format!("the control character U+{:04X}", c as u32),
                c => format!("the non-ASCII character `{c}`"),
            };
            return Err(format!(
                "{value:?} cannot be sent as an HTTP header value: it contains {what}; use visible ASCII, spaces and tabs only"
            ));
        }
        Ok(Self(value.to_string()))
    }
}

impl BucketName {
    /// Checks `value` as [`BucketName`] describes.
    pub fn parse(value: &str) -> Result<Self, String> {
        if value.is_empty() {
            return Err("a bucket name must not be empty".into());
        }
        if value.len() > 255
            || !value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        {
            return Err(format!(
                "{value:?} is not an S3 bucket name: use letters, digits, `.`, `-` and `_` (at most 255)"
            ));
        }
        Ok(Self(value.to_string()))
    }
}

impl DistributionId {
    /// Checks `value` as [`DistributionId`] describes.
    pub fn parse(value: &str) -> Result<Self, String> {
        if value.is_empty()
            || value.len() > 64
            || !value
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            return Err(format!(
                "{value:?} is not a CloudFront distribution id (capital letters and digits, as `E2ABC123XYZ`)"
            ));
        }
        Ok(Self(value.to_string()))
    }
}

/// A length of time written as a number and a unit: `90s`, `30m`, `12h`, `7d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Age(std::time::Duration);

impl Age {
    /// Checks `value` as [`Age`] describes.
    pub fn parse(value: &str) -> Result<Self, String> {
        let refuse = || {
            format!("{value:?} is not an age: write a whole number and a unit, as `90s`, `30m`, `12h` or `7d`")
        };
        let split = value.len().checked_sub(1).ok_or_else(refuse)?;
        if !value.is_char_boundary(split) {
            return Err(refuse());
        }
        let (number, unit) = value.split_at(split);
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(refuse());
        }
        let number: u64 = number.parse().map_err(|_| refuse())?;
        let seconds = match unit {
            "s" => Some(number),
            "m" => number.checked_mul(60),
            "h" => number.checked_mul(3600),
            "d" => number.checked_mul(86_400),
            _ => None,
        }
        .filter(|s| *s <= 10 * 365 * 86_400)
        .ok_or_else(refuse)?;
        Ok(Self(std::time::Duration::from_secs(seconds)))
    }

    /// The age as a duration.
    pub fn duration(&self) -> std::time::Duration {
        self.0
    }
}

impl<'de> Deserialize<'de> for Age {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

macro_rules! checked_string {
    ($name:ident) => {
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

checked_string!(HeaderValue);
checked_string!(BucketName);
checked_string!(DistributionId);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_values_refuse_line_breaks_and_say_which() {
        for bad in ["no-cache\r\nX-Evil: 1", "a\nb", "a\rb"] {
            let err = HeaderValue::parse(bad).unwrap_err();
            assert!(err.contains("line break (CR or LF)"), "{err}");
        }
        assert!(HeaderValue::parse("a\u{0}b")
            .unwrap_err()
            .contains("U+0000"));
        assert!(HeaderValue::parse("max-age=1é")
            .unwrap_err()
            .contains("non-ASCII"));
        assert!(HeaderValue::parse("public, max-age=31536000,\timmutable").is_ok());
    }

    #[test]
    fn bucket_names_and_distribution_ids_are_what_a_request_can_carry() {
        assert!(BucketName::parse("www-example.com").is_ok());
        assert!(BucketName::parse("Legacy_Bucket").is_ok());
        assert!(BucketName::parse("site\r\nHost: evil").is_err());
        assert!(BucketName::parse("a/b").is_err());
        assert!(BucketName::parse("").is_err());
        assert!(DistributionId::parse("E2ABC123XYZ").is_ok());
        assert!(DistributionId::parse("E2ABC\n").is_err());
    }

    #[test]
    fn ages_are_a_number_and_a_unit() {
        assert_eq!(Age::parse("7d").unwrap().duration().as_secs(), 7 * 86_400);
        assert_eq!(Age::parse("90s").unwrap().duration().as_secs(), 90);
        assert_eq!(Age::parse("12h").unwrap().duration().as_secs(), 12 * 3600);
        for bad in [
            "",
            "d",
            "7",
            "-1d",
            "1.5h",
            "7 d",
            "7w",
            "99999999999999999999d",
            "4000d",
            "é",
        ] {
            assert!(Age::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        /// Any text is read as an age or refused, never a panic; what is read round-trips.
        #[test]
        fn any_age_text_is_read_or_refused(value in "\\PC{0,12}|[0-9]{1,6}[smhd]") {
            if let Ok(age) = Age::parse(&value) {
                let n: u64 = value[..value.len() - 1].parse().unwrap();
                let unit = match &value[value.len() - 1..] { "s" => 1, "m" => 60, "h" => 3600, _ => 86_400 };
                prop_assert_eq!(age.duration().as_secs(), n * unit);
            }
        }

        /// Whatever is accepted is a valid header value for the HTTP client the SDK uses.
        #[test]
        fn accepted_header_values_are_valid_http_header_values(value in "\\PC{0,40}|[\\x00-\\x7f]{0,40}") {
            if let Ok(checked) = HeaderValue::parse(&value) {
                prop_assert!(http::HeaderValue::from_str(&checked).is_ok());
            } else {
                prop_assert!(http::HeaderValue::from_str(&value).is_err() || !value.is_ascii());
            }
        }
    }
}
