//! `Source`/`AWS`/`S3`: the source folder, zipped once per run, written to the bucket and key
//! the action names and delivered as its output artifacts.

use crate::pipeline::execution::Execution;
use crate::pipeline::model::ActionDef;
use crate::pipeline::report::ActionResult;

impl Execution<'_> {
    pub(in super::super) fn s3_source(&mut self, action: &ActionDef) -> ActionResult {
        let (Some(bucket), Some(key)) = (action.config("S3Bucket"), action.config("S3ObjectKey"))
        else {
            return ActionResult::failed(
                "the S3 source action needs S3Bucket and S3ObjectKey".into(),
            );
        };
        let folder = &self.context.options.source;
        let zipped = match &self.source_archive {
            Ok(bytes) => bytes.clone(),
            Err(e) => return ActionResult::failed(e.clone()),
        };
        let aws = self.context.aws;
        if let Err(e) = aws.s3.put_file(&bucket, &key, &zipped) {
            return ActionResult::failed(format!("cannot write s3://{bucket}/{key}: {e}"));
        }
        let mut notes = vec![format!(
            "{} zipped ({} bytes) to s3://{bucket}/{key}",
            folder.display(),
            zipped.len()
        )];
        if let Err(failed) = self.deliver_source(action, &zipped, &mut notes) {
            return failed;
        }
        if let Some(namespace) = &action.namespace {
            self.variables.set(
                namespace,
                [
                    ("BucketName".to_string(), bucket.clone()),
                    ("ObjectKey".to_string(), key.clone()),
                ],
            );
        }
        let summary = notes.remove(0);
        ActionResult::succeeded(summary, notes)
    }
}
