//! The pipeline as the template declares it (resolved), and CodePipeline's variable syntax.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A pipeline as the template declares it.
#[derive(Clone, Debug)]
pub struct PipelineDef {
    /// Its name.
    pub name: String,
    /// Its artifact store's bucket.
    pub artifact_bucket: String,
    /// Its stages, in order.
    pub stages: Vec<StageDef>,
    /// `ExecutionMode`: `SUPERSEDED` (the default), `QUEUED` or `PARALLEL`.
    pub execution_mode: String,
    /// Pipeline-level `Variables` (V2): name and default value, in the template's order.
    pub variables: Vec<(String, Option<String>)>,
    /// `Triggers` (V2), as the template has them.
    pub triggers: Value,
}

/// CodePipeline's limits on a pipeline variable's value.
const MAX_VARIABLE_VALUE_CHARS: usize = 1000;

impl PipelineDef {
    /// The pipeline variables of an execution: each declared one's `--variable` value, else its
    /// default. A declared variable with neither, or a `--variable` naming no declared variable,
    /// is an error naming it, as StartPipelineExecution refuses them.
    pub fn resolve_variables(&self, given: &[String]) -> Result<Vec<(String, String)>, String> {
        let mut values: BTreeMap<&str, &str> = BTreeMap::new();
        for item in given {
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| format!("--variable {item}: write NAME=VALUE"))?;
            if !self.variables.iter().any(|(declared, _)| declared == name) {
                let declared: Vec<&str> = self.variables.iter().map(|(n, _)| n.as_str()).collect();
                return Err(format!(
                    "--variable {name}: the pipeline declares no such variable (it declares: {})",
                    if declared.is_empty() {
                        "none".to_string()
                    } else {
                        declared.join(", ")
                    }
                ));
            }
            if value.chars().count() > MAX_VARIABLE_VALUE_CHARS {
                return Err(format!(
                    "--variable {name}: the value is over CodePipeline's {MAX_VARIABLE_VALUE_CHARS} characters"
                ));
            }
            values.insert(name, value);
        }
        self.variables
            .iter()
            .map(|(name, default)| {
                match values.get(name.as_str()).copied().or(default.as_deref()) {
                    Some(value) => Ok((name.clone(), value.to_string())),
                    None => Err(format!(
                        "the pipeline variable {name} has no default value: pass --variable {name}=VALUE"
                    )),
                }
            })
            .collect()
    }
}

/// A stage.
#[derive(Clone, Debug)]
pub struct StageDef {
    /// Its name.
    pub name: String,
    /// Its actions, in `RunOrder`.
    pub actions: Vec<ActionDef>,
    /// `OnFailure.Result`: `ROLLBACK`, `FAIL` or `RETRY` (CodePipeline V2).
    pub on_failure: Option<String>,
    /// `OnFailure.RetryConfiguration.RetryMode`: `FAILED_ACTIONS` (default) or `ALL_ACTIONS`.
    pub retry_mode: String,
    /// `BeforeEntry.Conditions`: checked before the stage runs.
    pub before_entry: Vec<ConditionDef>,
    /// `OnSuccess.Conditions`: checked after the stage succeeded.
    pub on_success: Vec<ConditionDef>,
}

/// A stage condition: when any of its rules is not met, `result` happens.
#[derive(Clone, Debug)]
pub struct ConditionDef {
    /// `FAIL`, `ROLLBACK`, `SKIP`…
    pub result: String,
    /// Its rules, all of which must be met.
    pub rules: Vec<RuleDef>,
}

/// One rule of a condition.
#[derive(Clone, Debug)]
pub struct RuleDef {
    /// Its name.
    pub name: String,
    /// `RuleTypeId.Provider`: `VariableCheck`, `CloudWatchAlarm`, `LambdaInvoke`, …
    pub provider: String,
    /// Its configuration, resolved.
    pub configuration: Map<String, Value>,
}

impl RuleDef {
    /// A configuration value, as text.
    pub fn config(&self, key: &str) -> Option<String> {
        match self.configuration.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }
}

/// The conditions of a `BeforeEntry`/`OnSuccess` block.
fn conditions(block: &Value) -> Vec<ConditionDef> {
    block["Conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|condition| ConditionDef {
            result: condition["Result"].as_str().unwrap_or("FAIL").to_string(),
            rules: condition["Rules"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|rule| RuleDef {
                    name: rule["Name"].as_str().unwrap_or_default().to_string(),
                    provider: rule["RuleTypeId"]["Provider"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    configuration: rule["Configuration"]
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                })
                .collect(),
        })
        .collect()
}

/// An action.
#[derive(Clone, Debug)]
pub struct ActionDef {
    /// Its name.
    pub name: String,
    /// Where its output variables go.
    pub namespace: Option<String>,
    /// `Source`, `Build`, `Invoke`…
    pub category: String,
    /// `AWS`, `ThirdParty`, `Custom`.
    pub owner: String,
    /// `S3`, `Lambda`, `Manual`…
    pub provider: String,
    /// Its configuration, resolved.
    pub configuration: Map<String, Value>,
    /// Its input artifacts.
    pub inputs: Vec<String>,
    /// Its output artifacts.
    pub outputs: Vec<String>,
    /// The `Files` an output artifact declares (a Commands action's artifacts), by name.
    pub output_files: Vec<(String, Vec<String>)>,
    /// Its `RunOrder`.
    pub run_order: u64,
}

impl ActionDef {
    /// `Category/Owner/Provider`.
    pub fn kind(&self) -> String {
        format!("{}/{}/{}", self.category, self.owner, self.provider)
    }

    /// A configuration value, as text.
    pub fn config(&self, key: &str) -> Option<String> {
        match self.configuration.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }
}

impl PipelineDef {
    /// Reads a resolved `AWS::CodePipeline::Pipeline` resource.
    pub fn from_resource(name: String, properties: &Value) -> Result<Self, String> {
        let artifact_bucket = properties["ArtifactStore"]["Location"]
            .as_str()
            .ok_or("the pipeline has no ArtifactStore.Location")?
            .to_string();
        let names = |list: &Value| -> Vec<String> {
            list.as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a["Name"].as_str().map(str::to_owned))
                .collect()
        };
        let mut stages = Vec::new();
        for stage in properties["Stages"]
            .as_array()
            .ok_or("the pipeline has no Stages")?
        {
            let mut actions = Vec::new();
            for action in stage["Actions"].as_array().into_iter().flatten() {
                let id = &action["ActionTypeId"];
                let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
                actions.push(ActionDef {
                    name: text(&action["Name"]),
                    namespace: action["Namespace"].as_str().map(str::to_owned),
                    category: text(&id["Category"]),
                    owner: text(&id["Owner"]),
                    provider: text(&id["Provider"]),
                    configuration: action["Configuration"]
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                    inputs: names(&action["InputArtifacts"]),
                    outputs: names(&action["OutputArtifacts"]),
                    output_files: action["OutputArtifacts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|a| {
                            let files = a["Files"].as_array()?;
                            Some((
                                a["Name"].as_str()?.to_string(),
                                files
                                    .iter()
                                    .filter_map(|f| f.as_str().map(str::to_owned))
                                    .collect(),
                            ))
                        })
                        .collect(),
                    run_order: action["RunOrder"].as_u64().unwrap_or(1),
                });
            }
            actions.sort_by_key(|a| a.run_order);
            stages.push(StageDef {
                name: stage["Name"].as_str().unwrap_or_default().to_string(),
                actions,
                on_failure: stage["OnFailure"]["Result"].as_str().map(str::to_owned),
                retry_mode: stage["OnFailure"]["RetryConfiguration"]["RetryMode"]
                    .as_str()
                    .unwrap_or("FAILED_ACTIONS")
                    .to_string(),
                before_entry: conditions(&stage["BeforeEntry"]),
                on_success: conditions(&stage["OnSuccess"]),
            });
        }
        let variables = properties["Variables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| {
                let name = v["Name"].as_str()?.to_string();
                let default = match &v["DefaultValue"] {
                    Value::String(s) => Some(s.clone()),
                    Value::Null => None,
                    other => Some(other.to_string()),
                };
                Some((name, default))
            })
            .collect();
        Ok(Self {
            name,
            artifact_bucket,
            variables,
            triggers: properties["Triggers"].clone(),
            execution_mode: properties["ExecutionMode"]
                .as_str()
                .unwrap_or("SUPERSEDED")
                .to_string(),
            stages,
        })
    }
}

/// Output variables by namespace, plus `codepipeline.PipelineExecutionId`.
#[derive(Debug, Default)]
pub struct Variables {
    /// Variables by namespace.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
}

impl Variables {
    /// Replaces every `#{Namespace.Variable}` in `text`, as CodePipeline does before it runs an
    /// action; a variable that is not known fails the action, naming it.
    pub fn substitute(&self, text: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("#{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed variable reference in {text:?}"))?;
            let reference = &after[..end];
            let value = reference
                .split_once('.')
                .and_then(|(ns, var)| self.namespaces.get(ns)?.get(var));
            match value {
                Some(value) => out.push_str(value),
                None => {
                    return Err(format!(
                        "the variable #{{{reference}}} is not resolved: no action before this one produced it"
                    ))
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Sets a namespace's variables.
    pub fn set(&mut self, namespace: &str, values: impl IntoIterator<Item = (String, String)>) {
        self.namespaces
            .entry(namespace.to_string())
            .or_default()
            .extend(values);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_variables_take_the_given_value_else_the_default() {
        let pipeline = PipelineDef {
            name: "p".into(),
            artifact_bucket: "b".into(),
            stages: Vec::new(),
            execution_mode: "SUPERSEDED".into(),
            variables: vec![("Env".into(), Some("dev".into())), ("Ticket".into(), None)],
            triggers: Value::Null,
        };
        assert_eq!(
            pipeline.resolve_variables(&["Ticket=T-1".into()]).unwrap(),
            vec![
                ("Env".into(), "dev".into()),
                ("Ticket".into(), "T-1".into())
            ]
        );
        assert!(pipeline
            .resolve_variables(&[])
            .unwrap_err()
            .contains("--variable Ticket=VALUE"));
        assert!(pipeline
            .resolve_variables(&["Nope=1".into()])
            .unwrap_err()
            .contains("declares no such variable (it declares: Env, Ticket)"));
        assert!(pipeline
            .resolve_variables(&["Env".into()])
            .unwrap_err()
            .contains("NAME=VALUE"));
    }

    #[test]
    fn substitutes_variables_and_names_unknown_ones() {
        let mut variables = Variables::default();
        variables.set(
            "codepipeline",
            [("PipelineExecutionId".to_string(), "e-1".to_string())],
        );
        variables.set("Migrate", [("SchemaVersion".to_string(), "3".to_string())]);
        assert_eq!(
            variables
                .substitute("run #{codepipeline.PipelineExecutionId} at #{Migrate.SchemaVersion}")
                .unwrap(),
            "run e-1 at 3"
        );
        let err = variables.substitute("#{Build.Nope}").unwrap_err();
        assert!(err.contains("#{Build.Nope}"), "{err}");
    }
}
