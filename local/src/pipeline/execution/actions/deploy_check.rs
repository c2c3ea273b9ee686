//! Deploy actions pipeline-local cannot perform (ECS, CodeDeploy, CloudFormation, Lambda,
//! ECR, another pipeline): what it can check is checked — the configuration CodePipeline
//! requires and the files the action would read from its input artifacts, as the service
//! would read them — and the action is shown NOT DEPLOYED. It counts as done only with
//! `--assume-deployed`; otherwise the execution stops there, saying what was checked.

use super::super::super::model::ActionDef;
use super::super::super::report::ActionResult;
use super::super::Execution;
use serde_json::Value;

/// How the timeline and the console show a deploy that was only checked.
const NOT_DEPLOYED: &str = "NOT DEPLOYED";

/// The deploy providers checked here, with the configuration keys each requires.
const CHECKED: &[(&str, &str, &str, &[&str])] = &[
    ("Deploy", "AWS", "ECS", &["ClusterName", "ServiceName"]),
    (
        "Deploy",
        "AWS",
        "CodeDeployToECS",
        &[
            "ApplicationName",
            "DeploymentGroupName",
            "TaskDefinitionTemplateArtifact",
            "AppSpecTemplateArtifact",
        ],
    ),
    (
        "Deploy",
        "AWS",
        "CodeDeploy",
        &["ApplicationName", "DeploymentGroupName"],
    ),
    (
        "Deploy",
        "AWS",
        "CloudFormation",
        &["ActionMode", "StackName"],
    ),
    (
        "Deploy",
        "AWS",
        "CloudFormationStackSet",
        &["StackSetName", "TemplatePath"],
    ),
    ("Deploy", "AWS", "Lambda", &["FunctionName"]),
    ("Build", "AWS", "ECRBuildAndPublish", &["ECRRepositoryName"]),
    ("Invoke", "AWS", "CodePipeline", &["PipelineName"]),
];

/// CloudFormation's action modes.
const ACTION_MODES: [&str; 5] = [
    "CREATE_UPDATE",
    "DELETE_ONLY",
    "REPLACE_ON_FAILURE",
    "CHANGE_SET_REPLACE",
    "CHANGE_SET_EXECUTE",
];

/// True for the providers this module checks.
pub(in super::super) fn is_checked_deploy(action: &ActionDef) -> bool {
    required_keys(action).is_some()
}

fn required_keys(action: &ActionDef) -> Option<&'static [&'static str]> {
    CHECKED
        .iter()
        .find(|(category, owner, provider, _)| {
            action.category == *category && action.owner == *owner && action.provider == *provider
        })
        .map(|(_, _, _, keys)| *keys)
}

impl Execution<'_> {
    pub(in super::super) fn checked_deploy(
        &mut self,
        stage: &str,
        action: &ActionDef,
    ) -> ActionResult {
        match self.check_deploy(action) {
            Err(problem) => {
                ActionResult::failed(format!("{} would fail: {problem}", action.kind()))
            }
            Ok(checked) => {
                let what = format!(
                    "NOT DEPLOYED ({} is not emulated by pipeline-local); checked: {}",
                    action.kind(),
                    checked.join("; ")
                );
                if self.context.options.assume_deployed {
                    ActionResult::succeeded(
                        format!("{what}; counted as deployed by --assume-deployed"),
                        Vec::new(),
                    )
                    .shown_as(NOT_DEPLOYED)
                } else {
                    ActionResult::failed(format!(
                        "{what}. The execution stops here rather than count it as deployed: pass --assume-deployed to go on as if it were, or --skip {stage}.{}",
                        action.name
                    ))
                    .shown_as(NOT_DEPLOYED)
                }
            }
        }
    }

    /// What was checked, or the first problem found. The checks are the ones the service would
    /// make before deploying anything, so a failure here is a failure there, found before the
    /// push.
    fn check_deploy(&mut self, action: &ActionDef) -> Result<Vec<String>, String> {
        let mut checked = Vec::new();
        for key in required_keys(action).unwrap_or_default() {
            let value = action.config(key).unwrap_or_default();
            if value.trim().is_empty() {
                return Err(format!("the configuration has no {key}"));
            }
        }
        checked.push("required configuration present".to_string());
        match action.provider.as_str() {
            "ECS" => {
                let file = action
                    .config("FileName")
                    .unwrap_or_else(|| "imagedefinitions.json".to_string());
                let text = self.input_file(action, None, &file)?;
                let count = check_image_definitions(&text).map_err(|e| format!("{file}: {e}"))?;
                checked.push(format!(
                    "{file}: {count} containers, each a name and an image URI"
                ));
            }
            "CodeDeployToECS" => {
                let taskdef_artifact = action.config("TaskDefinitionTemplateArtifact");
                let path = action
                    .config("TaskDefinitionTemplatePath")
                    .unwrap_or_else(|| "taskdef.json".to_string());
                let text = self.input_file(action, taskdef_artifact.as_deref(), &path)?;
                let taskdef: Value =
                    serde_json::from_str(&text).map_err(|e| format!("{path} is not JSON: {e}"))?;
                if taskdef["containerDefinitions"]
                    .as_array()
                    .is_none_or(|c| c.is_empty())
                {
                    return Err(format!("{path} has no containerDefinitions"));
                }
                checked.push(format!("{path}: a task definition"));
                let appspec_artifact = action.config("AppSpecTemplateArtifact");
                let path = action
                    .config("AppSpecTemplatePath")
                    .unwrap_or_else(|| "appspec.yaml".to_string());
                let text = self.input_file(action, appspec_artifact.as_deref(), &path)?;
                let appspec: serde_yaml::Value =
                    serde_yaml::from_str(&text).map_err(|e| format!("{path} is not YAML: {e}"))?;
                if appspec.get("Resources").is_none() {
                    return Err(format!("{path} has no Resources"));
                }
                checked.push(format!("{path}: an AppSpec with Resources"));
            }
            "CloudFormation" => {
                let mode = action.config("ActionMode").unwrap_or_default();
                if !ACTION_MODES.contains(&mode.as_str()) {
                    return Err(format!(
                        "ActionMode `{mode}` is not one of {}",
                        ACTION_MODES.join(", ")
                    ));
                }
                if mode != "DELETE_ONLY" && mode != "CHANGE_SET_EXECUTE" {
                    checked.extend(self.check_stack_template(action)?);
                }
            }
            _ => {}
        }
        Ok(checked)
    }

    /// `TemplatePath` (`Artifact::path`) read, its parameters matched with `ParameterOverrides`,
    /// and `OutputFileName` written to the output artifact.
    fn check_stack_template(&mut self, action: &ActionDef) -> Result<Vec<String>, String> {
        let template_path = action
            .config("TemplatePath")
            .ok_or("the configuration has no TemplatePath")?;
        let (artifact, path) = template_path
            .split_once("::")
            .ok_or_else(|| format!("TemplatePath `{template_path}` is not ArtifactName::path"))?;
        let text = self.input_file(action, Some(artifact), path)?;
        let template: serde_yaml::Value = serde_yaml::from_str(&text)
            .map_err(|e| format!("{template_path} is not a YAML or JSON template: {e}"))?;
        let resources = template
            .get("Resources")
            .and_then(|r| r.as_mapping())
            .filter(|r| !r.is_empty())
            .ok_or_else(|| format!("{template_path} declares no Resources"))?;
        let mut checked = vec![format!("{template_path}: {} resources", resources.len())];
        let overrides: serde_json::Map<String, Value> = match action.config("ParameterOverrides") {
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| format!("ParameterOverrides is not a JSON object: {e}"))?,
            None => serde_json::Map::new(),
        };
        let declared = template.get("Parameters").and_then(|p| p.as_mapping());
        for name in overrides.keys() {
            if !declared.is_some_and(|d| d.contains_key(name.as_str())) {
                return Err(format!(
                    "ParameterOverrides sets {name}, which {template_path} does not declare"
                ));
            }
        }
        for (name, spec) in declared.into_iter().flatten() {
            let name = name.as_str().unwrap_or_default();
            if spec.get("Default").is_none() && !overrides.contains_key(name) {
                return Err(format!(
                    "the parameter {name} of {template_path} has no Default and ParameterOverrides does not set it"
                ));
            }
        }
        checked.push(format!(
            "{} parameter overrides match the template",
            overrides.len()
        ));
        if let Some(file) = action.config("OutputFileName") {
            let outputs: serde_json::Map<String, Value> = template
                .get("Outputs")
                .and_then(|o| o.as_mapping())
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| {
                    let value = match v.get("Value") {
                        Some(serde_yaml::Value::String(s)) => s.clone(),
                        _ => "(not deployed: known only after the stack is)".to_string(),
                    };
                    Some((k.as_str()?.to_string(), Value::String(value)))
                })
                .collect();
            let body =
                serde_json::to_vec_pretty(&Value::Object(outputs)).map_err(|e| e.to_string())?;
            let zipped = crate::zips::zip_files(&[(file.clone(), body)])
                .map_err(|e| format!("cannot write {file}: {e}"))?;
            for output in &action.outputs {
                let location = self.new_artifact(output);
                self.context
                    .aws
                    .s3
                    .put_file(&location.bucket, &location.key, &zipped)
                    .map_err(|e| format!("cannot write the artifact {output}: {e}"))?;
                self.artifacts.insert(output.clone(), location);
            }
            checked.push(format!("{file} written with the template's Outputs"));
        }
        Ok(checked)
    }

    /// The text of `path` in the input artifact `artifact` (the first input when `None`).
    fn input_file(
        &self,
        action: &ActionDef,
        artifact: Option<&str>,
        path: &str,
    ) -> Result<String, String> {
        let name = match artifact {
            Some(name) if action.inputs.iter().any(|i| i == name) => name.to_string(),
            Some(name) => return Err(format!("{name} is not an input artifact of the action")),
            None => action
                .inputs
                .first()
                .cloned()
                .ok_or("the action has no input artifact")?,
        };
        let location = self
            .artifacts
            .get(&name)
            .ok_or_else(|| format!("no artifact named {name} was produced before this action"))?;
        let aws = self.context.aws;
        let bytes = std::fs::read(aws.s3.object_path(&location.bucket, &location.key))
            .map_err(|e| format!("cannot read the artifact {name}: {e}"))?;
        let files = crate::zips::unzip(bytes)
            .map_err(|e| format!("the artifact {name} is not a readable zip: {e}"))?;
        let wanted = path.trim_start_matches("./");
        let (_, data) = files
            .into_iter()
            .find(|(n, _)| n == wanted)
            .ok_or_else(|| format!("the artifact {name} has no {wanted}"))?;
        String::from_utf8(data).map_err(|_| format!("{wanted} in {name} is not UTF-8 text"))
    }
}

/// `imagedefinitions.json` as the ECS deploy action reads it: a non-empty array of
/// `{"name", "imageUri"}`, names unique. Returns how many containers.
fn check_image_definitions(text: &str) -> Result<usize, String> {
    let list: Vec<Value> =
        serde_json::from_str(text).map_err(|e| format!("not a JSON array: {e}"))?;
    if list.is_empty() {
        return Err("the array is empty".into());
    }
    let mut names = std::collections::HashSet::new();
    for (i, item) in list.iter().enumerate() {
        let name = item["name"].as_str().filter(|n| !n.trim().is_empty());
        let uri = item["imageUri"]
            .as_str()
            .filter(|u| !u.is_empty() && !u.contains(char::is_whitespace));
        match (name, uri) {
            (Some(name), Some(_)) => {
                if !names.insert(name.to_string()) {
                    return Err(format!("container {name} is listed twice"));
                }
            }
            _ => {
                return Err(format!(
                    "entry {i} needs a non-empty \"name\" and an \"imageUri\" without spaces"
                ))
            }
        }
    }
    Ok(list.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn image_definitions_are_read_as_ecs_reads_them() {
        assert_eq!(
            check_image_definitions(
                r#"[{"name":"web","imageUri":"1.dkr.ecr.us-east-1.amazonaws.com/web:abc"}]"#
            ),
            Ok(1)
        );
        for bad in [
            "[]",
            "{}",
            r#"[{"name":"web"}]"#,
            r#"[{"name":"","imageUri":"x"}]"#,
            r#"[{"name":"w","imageUri":"a b"}]"#,
            r#"[{"name":"w","imageUri":"a"},{"name":"w","imageUri":"b"}]"#,
        ] {
            assert!(check_image_definitions(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_text_is_judged_without_panicking(text in "\\PC{0,200}") {
            let _ = check_image_definitions(&text);
        }
    }
}
