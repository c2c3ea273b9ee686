//! Property: whatever the artifact's bytes and however the job event is bent (any JSON in any
//! of its fields), the runner sends exactly one final report and the process does not crash.

mod common;

use common::*;
use pipeline_local::runtime_api::Outcome;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use std::time::Duration;

/// Where the event is bent: every part the runner reads.
const POINTERS: &[&str] = &[
    "/CodePipeline.job/accountId",
    "/CodePipeline.job/data",
    "/CodePipeline.job/data/actionConfiguration",
    "/CodePipeline.job/data/actionConfiguration/configuration/UserParameters",
    "/CodePipeline.job/data/inputArtifacts",
    "/CodePipeline.job/data/inputArtifacts/0/location",
    "/CodePipeline.job/data/inputArtifacts/0/location/s3Location/objectKey",
    "/CodePipeline.job/data/outputArtifacts/0/name",
    "/CodePipeline.job/data/encryptionKey",
    "/CodePipeline.job/data/continuationToken",
];

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,30}".prop_map(Value::from),
        Just(json!(u64::MAX)),
        Just(json!("{\"v\":1,\"state\":{\"done\":4294967295}}")),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Replaces the value at `pointer`, or adds it when its parent is an object.
fn bend_event(event: &mut Value, pointer: &str, value: Value) {
    if let Some(slot) = event.pointer_mut(pointer) {
        *slot = value;
        return;
    }
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    if let Some(Value::Object(map)) = event.pointer_mut(parent) {
        map.insert(key.to_string(), value);
    }
}

#[test]
fn any_event_and_any_artifact_get_exactly_one_report_and_no_crash() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let h = runtime.block_on(harness(Duration::from_secs(15), &[]));
    let strategy = (
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..2048),
            proptest::collection::vec(any::<u8>(), 0..64).prop_map(|noise| {
                let mut zip = zip_with(&[("a.txt", b"hello"), ("b/c.txt", b"world")]);
                for (i, byte) in noise.iter().enumerate() {
                    let at = (i * 7919 + *byte as usize) % zip.len();
                    zip[at] ^= byte | 1;
                }
                zip
            }),
        ],
        proptest::option::of((proptest::sample::select(POINTERS), any_json())),
    );
    let mut runner = TestRunner::new(Config {
        cases: 128,
        ..Config::default()
    });
    runner
        .run(&strategy, |(artifact, bend)| {
            let mut event = copy_event();
            h.aws
                .s3
                .put_file(BUCKET, &input_key(&event), &artifact)
                .unwrap();
            if let Some((pointer, value)) = &bend {
                bend_event(&mut event, pointer, value.clone());
            }
            let run = runtime.block_on(run(&h, event));
            for invocation in &run.invocations {
                prop_assert!(
                    matches!(invocation.outcome, Outcome::Response { .. }),
                    "the invocation did not answer: {:?} (bent {:?})",
                    invocation.outcome,
                    bend
                );
            }
            let finals = run
                .results()
                .iter()
                .filter(|r| r.get("continuationToken").is_none())
                .count();
            prop_assert_eq!(finals, 1, "reports: {:?} (bent {:?})", run.results(), bend);
            Ok(())
        })
        .unwrap();
}
