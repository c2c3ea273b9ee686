//! The `S3` deploy action, for real, into the local S3: the input artifact extracted under
//! `ObjectKey` (`Extract: true`) or stored as one object at `ObjectKey`, with `CacheControl`
//! and each file's Content-Type. `CannedACL` and `KMSEncryptionKeyARN` are checked and shown:
//! the local S3 keeps neither ACLs nor keys.

use super::super::super::model::ActionDef;
use super::super::super::report::ActionResult;
use super::super::Execution;
use crate::s3::{plain_object_path, StoredHeaders};

/// The canned ACLs S3 accepts (CodePipeline passes `CannedACL` through).
const CANNED_ACLS: [&str; 8] = [
    "private",
    "public-read",
    "public-read-write",
    "aws-exec-read",
    "authenticated-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
    "log-delivery-write",
];

/// A KMS key as the S3 deploy action takes it: a key ARN or an alias ARN.
fn is_kms_key_arn(value: &str) -> bool {
    let mut parts = value.splitn(6, ':');
    let (Some("arn"), Some(_), Some("kms"), Some(region), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    !region.is_empty()
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && (resource.strip_prefix("key/").is_some_and(|k| !k.is_empty())
            || resource
                .strip_prefix("alias/")
                .is_some_and(|a| !a.is_empty()))
}

impl Execution<'_> {
    pub(in super::super) fn s3_deploy(&mut self, action: &ActionDef) -> ActionResult {
        match self.try_s3_deploy(action) {
            Ok((summary, notes)) => ActionResult::succeeded(summary, notes),
            Err(why) => ActionResult::failed(why),
        }
    }

    fn try_s3_deploy(&mut self, action: &ActionDef) -> Result<(String, Vec<String>), String> {
        // Variables (`#{Source.CommitId}`) resolve in every configuration value, as in CodePipeline.
        let config = |key: &str| -> Result<Option<String>, String> {
            action
                .config(key)
                .map(|value| self.variables.substitute(&value))
                .transpose()
        };
        let bucket = config("BucketName")?.ok_or("the S3 deploy action needs BucketName")?;
        let extract = match config("Extract")?.as_deref() {
            Some("true") | Some("True") | Some("TRUE") => true,
            Some("false") | Some("False") | Some("FALSE") => false,
            Some(other) => return Err(format!("Extract must be true or false, not `{other}`")),
            None => return Err("the S3 deploy action needs Extract (true or false)".into()),
        };
        let object_key = config("ObjectKey")?.unwrap_or_default();
        if !extract && object_key.is_empty() {
            return Err("with Extract false the S3 deploy action needs ObjectKey".into());
        }
        let acl = config("CannedACL")?;
        if let Some(acl) = acl.as_deref().filter(|a| !CANNED_ACLS.contains(a)) {
            return Err(format!(
                "CannedACL `{acl}` is not one S3 accepts ({})",
                CANNED_ACLS.join(", ")
            ));
        }
        let cache_control = config("CacheControl")?;
        if let Some(value) = cache_control.as_deref() {
            if http::HeaderValue::from_str(value).is_err() {
                return Err(format!(
                    "CacheControl {value:?} cannot be sent as an HTTP header"
                ));
            }
        }
        let kms = config("KMSEncryptionKeyARN")?;
        if let Some(key) = kms.as_deref().filter(|k| !is_kms_key_arn(k)) {
            return Err(format!(
                "KMSEncryptionKeyARN `{key}` is not a KMS key or alias ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)"
            ));
        }
        let [input] = action.inputs.as_slice() else {
            return Err(format!(
                "the S3 deploy action takes exactly one input artifact, not {}",
                action.inputs.len()
            ));
        };
        let location = self
            .artifacts
            .get(input)
            .ok_or_else(|| format!("no artifact named {input} was produced before this action"))?
            .clone();
        let aws = self.context.aws;
        if !aws.s3.root().join(&bucket).is_dir() {
            return Err(format!(
                "the bucket {bucket} does not exist in the local S3 (NoSuchBucket)"
            ));
        }
        let archive = std::fs::read(aws.s3.object_path(&location.bucket, &location.key))
            .map_err(|e| format!("cannot read the artifact {input}: {e}"))?;
        let headers = |name: &str| StoredHeaders {
            content_type: Some(
                mime_guess::from_path(name)
                    .first_or_octet_stream()
                    .to_string(),
            ),
            content_encoding: None,
            cache_control: cache_control.clone(),
        };
        let mut written = Vec::new();
        if extract {
            let prefix = object_key.trim_matches('/');
            let files = crate::zips::unzip(archive)
                .map_err(|e| format!("the artifact {input} is not a readable zip: {e}"))?;
            // Every name is checked before the first object is written.
            let mut planned = Vec::new();
            for (name, data) in files.into_iter().filter(|(n, _)| !n.ends_with('/')) {
                let key = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}/{name}")
                };
                if plain_object_path(aws.s3.root(), &bucket, &key).is_none() {
                    return Err(format!(
                        "the artifact {input} holds `{name}`, which is no plain key (no `..`, hidden or empty segments); nothing was deployed"
                    ));
                }
                planned.push((name, key, data));
            }
            for (name, key, data) in planned {
                aws.s3
                    .put_file_with_headers(&bucket, &key, &data, &headers(&name))
                    .map_err(|e| format!("cannot write s3://{bucket}/{key}: {e}"))?;
                written.push(key);
            }
        } else {
            if plain_object_path(aws.s3.root(), &bucket, &object_key).is_none() {
                return Err(format!("ObjectKey `{object_key}` is no plain key"));
            }
            aws.s3
                .put_file_with_headers(&bucket, &object_key, &archive, &headers(&object_key))
                .map_err(|e| format!("cannot write s3://{bucket}/{object_key}: {e}"))?;
            written.push(object_key.clone());
        }
        let target = if extract {
            format!(
                "{} files extracted to s3://{bucket}/{}",
                written.len(),
                object_key.trim_matches('/')
            )
        } else {
            format!("{input} stored as s3://{bucket}/{object_key}")
        };
        let mut notes = Vec::new();
        if let Some(value) = &cache_control {
            notes.push(format!("Cache-Control: {value}"));
        }
        if let Some(acl) = &acl {
            notes.push(format!(
                "CannedACL {acl} checked (the local S3 keeps no ACLs)"
            ));
        }
        if let Some(key) = &kms {
            notes.push(format!(
                "KMS key {key} checked (the local S3 does not encrypt)"
            ));
        }
        if let Some(namespace) = &action.namespace {
            self.variables.set(
                namespace,
                [
                    ("BucketName".to_string(), bucket.clone()),
                    ("ObjectKey".to_string(), object_key.clone()),
                ],
            );
        }
        Ok((target, notes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kms_keys_are_key_or_alias_arns() {
        assert!(is_kms_key_arn(
            "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab"
        ));
        assert!(is_kms_key_arn(
            "arn:aws:kms:eu-west-1:111111111111:alias/site"
        ));
        assert!(!is_kms_key_arn("1234abcd-12ab"));
        assert!(!is_kms_key_arn("arn:aws:kms:us-east-1:1111:key/x"));
        assert!(!is_kms_key_arn("arn:aws:s3:::bucket"));
    }

    proptest! {
        #[test]
        fn any_text_is_judged_without_panicking(value in "\\PC{0,80}") {
            let _ = is_kms_key_arn(&value);
        }
    }
}
