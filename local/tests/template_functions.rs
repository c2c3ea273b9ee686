//! template.yaml and the workspace agree: every function crate is deployed by the template, and
//! every function the template deploys is a binary of the workspace.

use pipeline_local::pipeline::template::Template;
use std::collections::BTreeSet;
use std::path::Path;

#[test]
fn every_workspace_function_is_in_the_template_and_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let members = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .expect("workspace members");
    let workspace: BTreeSet<String> = members
        .split('"')
        .filter_map(|m| m.strip_prefix("functions/"))
        .map(|dir| {
            let crate_manifest =
                std::fs::read_to_string(root.join("functions").join(dir).join("Cargo.toml"))
                    .unwrap();
            crate_manifest
                .lines()
                .find_map(|l| l.strip_prefix("name = "))
                .expect("a package name")
                .trim_matches('"')
                .to_string()
        })
        .collect();
    // With every condition on, the template declares all of its functions.
    let overrides = [
        (
            "SlackSecretArn",
            "arn:aws:secretsmanager:us-east-1:0:secret:slack",
        ),
        ("CreateExamplePipeline", "true"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let template = Template::load(&root.join("template.yaml"), &overrides).unwrap();
    let deployed: BTreeSet<String> = template
        .functions()
        .unwrap()
        .into_iter()
        .map(|f| f.binary)
        .collect();
    assert_eq!(workspace.len(), 6, "{workspace:?}");
    assert_eq!(
        workspace, deployed,
        "workspace functions vs template functions"
    );
    for function in &deployed {
        assert!(
            root.join("functions")
                .join(function)
                .join("src/main.rs")
                .exists(),
            "{function} has no binary"
        );
    }
}

/// Uploading `demo.zip` starts the example pipeline (its source action does not poll): the
/// bucket sends its events to EventBridge and a rule targets the pipeline with a role allowed
/// to start it, and nothing else.
#[test]
fn uploading_the_demo_starts_the_example_pipeline() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let overrides = [
        ("CreateExamplePipeline", "true"),
        ("DatabaseSecretArn", "arn:s"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let template = Template::load(&root.join("template.yaml"), &overrides).unwrap();
    let resource = |id: &str| {
        let (_, r) = template.resources().find(|(n, _)| *n == id).unwrap();
        template.resolve(&r["Properties"]).unwrap()
    };
    let bucket = resource("ExampleSourceBucket");
    assert_eq!(
        bucket["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"],
        true
    );
    let rule = resource("ExampleSourceRule");
    assert_eq!(rule["EventPattern"]["detail-type"][0], "Object Created");
    assert_eq!(
        rule["EventPattern"]["detail"]["object"]["key"][0],
        "demo.zip"
    );
    let pipeline = resource("ExamplePipeline");
    let source = &pipeline["Stages"][0]["Actions"][0]["Configuration"];
    assert_eq!(source["PollForSourceChanges"], false);
    assert_eq!(source["S3ObjectKey"], "demo.zip");
    let target = rule["Targets"][0]["Arn"].as_str().unwrap();
    assert!(
        target.starts_with("arn:") && target.contains(":codepipeline:"),
        "{target}"
    );
    let role = resource("ExampleSourceRuleRole");
    let statement = &role["Policies"][0]["PolicyDocument"]["Statement"][0];
    assert_eq!(statement["Action"], "codepipeline:StartPipelineExecution");
    assert_eq!(statement["Resource"], rule["Targets"][0]["Arn"]);
}
