//! Publishing into another account's bucket: a publish step's `role_arn` makes its S3 and
//! CloudFront calls as the site account's role, while the artifact is still read with the
//! job's credentials. The local S3 refuses a bucket of another account to anyone else, so a
//! step that forgot the role fails instead of writing where it should not.

mod common;

use common::*;
use pipeline_testkit::{JobRunAssertions, LocalFunction};
use serde_json::{json, Value};

const ROLE: &str = "arn:aws:iam::333333333333:role/pipeline-publish";
const SITE_ACCOUNT: &str = "333333333333";
const PROD_SITE: &str = "prod-site";

async fn processor_with_prod_site() -> LocalFunction {
    let f = processor(&[]).await;
    f.aws.s3.create_bucket_in(SITE_ACCOUNT, PROD_SITE).unwrap();
    f.aws.sts.add_role(ROLE, Some("site-7")).unwrap();
    f
}

async fn publish(
    f: &LocalFunction,
    step: Value,
) -> (pipeline_local::job_invocation::JobRun, String) {
    let event = event(json!([{ "publish": step }]), &[]);
    let job_id = event["CodePipeline.job"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let files = vec![
        ("index.html".to_string(), b"<h1>prod</h1>".to_vec()),
        ("app.js".to_string(), b"console.log(1)".to_vec()),
    ];
    f.aws
        .s3
        .put_file(ARTIFACTS, &input_key(&event), &zip_of(&files))
        .unwrap();
    (run(f, event).await, job_id)
}

/// The role (or the caller's kind) that signed each S3 call of `operation` on `bucket`.
fn signers(f: &LocalFunction, operation: &str, bucket: &str) -> Vec<String> {
    f.aws
        .calls
        .of("s3", operation)
        .iter()
        .filter(|c| c.detail["bucket"] == bucket)
        .map(|c| {
            c.access_key
                .as_deref()
                .and_then(|k| f.aws.sts.session_of(k))
                .map(|s| format!("{} as {}", s.role_arn, s.session_name))
                .unwrap_or_else(|| "job or function credentials".into())
        })
        .collect()
}

#[tokio::test]
async fn publishes_into_the_site_accounts_bucket_as_its_role() {
    let f = processor_with_prod_site().await;
    let (run, job_id) = publish(
        &f,
        json!({"input": "Source", "bucket": PROD_SITE, "role_arn": ROLE, "external_id": "site-7"}),
    )
    .await;
    let vars = success_vars(&run);
    assert_eq!(vars["FilesPublished"], "2", "{:?}", run.summary_text());
    assert!(f.aws.s3.exists(PROD_SITE, "index.html"));
    let writers = signers(&f, "PutObject", PROD_SITE);
    // The two files and the release record.
    assert_eq!(writers.len(), 3, "{writers:?}");
    for writer in writers {
        assert_eq!(writer, format!("{ROLE} as pipeline-{job_id}"));
    }
    // The artifact was read with the job's credentials, not the role's.
    assert!(signers(&f, "GetObject", ARTIFACTS)
        .iter()
        .all(|s| s == "job or function credentials"));
}

#[tokio::test]
async fn a_publish_that_forgets_the_role_is_refused_by_the_other_accounts_bucket() {
    let f = processor_with_prod_site().await;
    let (run, _) = publish(&f, json!({"input": "Source", "bucket": PROD_SITE})).await;
    let (kind, message) = run.expect_failure();
    assert_eq!(kind, "PermissionError", "{message}");
    assert!(message.contains("AccessDenied"), "{message}");
    assert!(!f.aws.s3.exists(PROD_SITE, "index.html"));
}

#[tokio::test]
async fn a_refused_assume_role_names_the_role_and_writes_nothing() {
    let f = processor_with_prod_site().await;
    let (run, _) = publish(
        &f,
        json!({"input": "Source", "bucket": PROD_SITE, "role_arn": ROLE, "external_id": "guessed"}),
    )
    .await;
    let (kind, message) = run.expect_failure();
    assert_eq!(kind, "PermissionError");
    assert!(
        message.contains(&format!("cannot assume {ROLE}")) && message.contains("step 1 (publish)"),
        "{message}"
    );
    assert!(!f.aws.s3.exists(PROD_SITE, "index.html"));
}
