//! Reads `template.yaml` as CloudFormation would for a local stack: parameters (defaults, then
//! overrides), conditions, and the intrinsic functions the template uses (`Ref`, `Fn::GetAtt`,
//! `Fn::Sub`, `Fn::Join`, `Fn::If`, `Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or`,
//! `Condition`, and `Fn::ImportValue` from `--parameter EXPORT=VALUE`), with local physical names: a function `pipeline-local-<LogicalId>`, a bucket
//! `pipeline-local-<logicalid>`, ARNs in account 000000000000.

use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::Path;

/// The stack name the template is resolved as.
pub const STACK_NAME: &str = "pipeline-local";
/// The account id of every local resource.
pub const ACCOUNT_ID: &str = "000000000000";

/// Why a template cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not YAML.
    #[error("{path} is not valid YAML: {source}")]
    Yaml {
        /// The file.
        path: String,
        /// Where and why.
        source: serde_yaml::Error,
    },
    /// The file looks like JSON (`cdk synth` output) and is not.
    #[error("{path} is not valid JSON: {source}")]
    Json {
        /// The file.
        path: String,
        /// Where and why.
        source: serde_json::Error,
    },
    /// Something the template says cannot be resolved.
    #[error("template: {0}")]
    Invalid(String),
}

/// A SAM template with its parameters resolved.
pub struct Template {
    parameters: HashMap<String, String>,
    /// `CommaDelimitedList` parameters, which `Ref` gives as lists.
    lists: Vec<String>,
    conditions: HashMap<String, bool>,
    /// Values of other stacks' exports (`Fn::ImportValue`), from `--parameter EXPORT=VALUE`:
    /// no other stack exists locally to export them.
    imports: HashMap<String, String>,
    resources: Map<String, Value>,
    globals: Value,
}

/// A Lambda function the template declares, with its local stand-in names.
#[derive(Clone, Debug)]
pub struct FunctionDef {
    /// Its logical id.
    pub logical_id: String,
    /// The workspace binary (`Metadata.BuildProperties.Binary`).
    pub binary: String,
    /// Its `FunctionName`.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// `Environment.Variables`, resolved (Globals first).
    pub environment: Vec<(String, String)>,
    /// Its `Timeout`.
    pub timeout_seconds: u64,
    /// Its `MemorySize`.
    pub memory_mb: u32,
    /// `Events` of the function, resolved.
    pub events: Map<String, Value>,
}

impl Template {
    /// Reads a template, with `overrides` winning over its parameters' defaults.
    pub fn load(path: &Path, overrides: &[(String, String)]) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.display().to_string(),
            source,
        })?;
        // JSON (`cdk synth`, `aws cloudformation get-template`) is read as JSON: its errors
        // then point at JSON, and tabs that YAML refuses are fine.
        let json = if text.trim_start().starts_with('{') {
            serde_json::from_str(&text).map_err(|source| TemplateError::Json {
                path: path.display().to_string(),
                source,
            })?
        } else {
            let yaml: serde_yaml::Value =
                serde_yaml::from_str(&text).map_err(|source| TemplateError::Yaml {
                    path: path.display().to_string(),
                    source,
                })?;
            to_json(yaml)
        };
        let mut parameters = HashMap::new();
        let mut lists = Vec::new();
        if let Some(declared) = json["Parameters"].as_object() {
            for (name, spec) in declared {
                if spec["Type"] == "CommaDelimitedList" {
                    lists.push(name.clone());
                }
                let default = match &spec["Default"] {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                parameters.insert(name.clone(), default);
            }
        }
        let imports_values = text.contains("Fn::ImportValue") || text.contains("!ImportValue");
        let mut imports = HashMap::new();
        for (name, value) in overrides {
            if parameters.contains_key(name) {
                parameters.insert(name.clone(), value.clone());
            } else if imports_values {
                imports.insert(name.clone(), value.clone());
            } else {
                return Err(TemplateError::Invalid(format!(
                    "parameter {name} is not declared in the template (nor imported with Fn::ImportValue)"
                )));
            }
        }
        let mut template = Self {
            parameters,
            lists,
            conditions: HashMap::new(),
            imports,
            resources: json["Resources"].as_object().cloned().unwrap_or_default(),
            globals: json["Globals"]["Function"].clone(),
        };
        let declared: Map<String, Value> =
            json["Conditions"].as_object().cloned().unwrap_or_default();
        // Conditions may refer to each other: evaluate until all are known.
        for _ in 0..=declared.len() {
            for (name, expression) in &declared {
                if template.conditions.contains_key(name) {
                    continue;
                }
                if let Ok(value) = template.condition_value(expression) {
                    template.conditions.insert(name.clone(), value);
                }
            }
        }
        if let Some(name) = declared
            .keys()
            .find(|n| !template.conditions.contains_key(*n))
        {
            return Err(TemplateError::Invalid(format!(
                "condition {name} cannot be evaluated"
            )));
        }
        Ok(template)
    }

    /// A parameter's resolved value.
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters.get(name).map(String::as_str)
    }

    /// Whether the template declares a resource of this type under this logical id, whatever
    /// its condition.
    pub fn declares(&self, logical_id: &str, kind: &str) -> bool {
        self.resources
            .get(logical_id)
            .is_some_and(|r| r["Type"] == kind)
    }

    /// Resources whose condition holds, by logical id.
    pub fn resources(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.resources.iter().filter(|(_, r)| {
            r["Condition"]
                .as_str()
                .is_none_or(|c| self.conditions.get(c).copied().unwrap_or(false))
        })
    }

    /// The resources of one type, with their logical ids.
    pub fn resources_of_type<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Value)> + 'a {
        self.resources().filter(move |(_, r)| r["Type"] == kind)
    }

    /// The template's functions, resolved.
    pub fn functions(&self) -> Result<Vec<FunctionDef>, TemplateError> {
        let mut functions = Vec::new();
        for (id, resource) in self.resources_of_type("AWS::Serverless::Function") {
            let binary = resource["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .ok_or_else(|| {
                    TemplateError::Invalid(format!(
                        "function {id} has no Metadata.BuildProperties.Binary"
                    ))
                })?
                .to_string();
            let properties = &resource["Properties"];
            let mut environment = Vec::new();
            for source in [
                &self.globals["Environment"]["Variables"],
                &properties["Environment"]["Variables"],
            ] {
                let resolved = self.resolve(source)?;
                for (key, value) in resolved.as_object().cloned().unwrap_or_default() {
                    let value = match value {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    environment.retain(|(k, _): &(String, String)| k != &key);
                    environment.push((key, value));
                }
            }
            // What Lambda itself sets from `LoggingConfig`: the functions log JSON lines when
            // the template asks for them, as on AWS.
            let logging = |field: &str| {
                properties["LoggingConfig"][field]
                    .as_str()
                    .or_else(|| self.globals["LoggingConfig"][field].as_str())
                    .map(str::to_owned)
            };
            if let Some(format) = logging("LogFormat") {
                environment.push(("AWS_LAMBDA_LOG_FORMAT".into(), format));
            }
            if let Some(level) = logging("ApplicationLogLevel") {
                environment.push(("AWS_LAMBDA_LOG_LEVEL".into(), level));
            }
            let number = |field: &str, default: u64| {
                properties[field]
                    .as_u64()
                    .or_else(|| self.globals[field].as_u64())
                    .unwrap_or(default)
            };
            functions.push(FunctionDef {
                logical_id: id.clone(),
                name: function_name(id),
                arn: function_arn(id),
                binary,
                environment,
                timeout_seconds: number("Timeout", 3),
                memory_mb: number("MemorySize", 128) as u32,
                events: self
                    .resolve(&properties["Events"])?
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            });
        }
        Ok(functions)
    }

    /// Resolves every intrinsic function in `value`; `AWS::NoValue` removes its key or item.
    pub fn resolve(&self, value: &Value) -> Result<Value, TemplateError> {
        Ok(self.resolve_inner(value)?.unwrap_or(Value::Null))
    }

    fn resolve_inner(&self, value: &Value) -> Result<Option<Value>, TemplateError> {
        match value {
            Value::Object(map) if map.len() == 1 => {
                let (key, argument) = map.iter().next().expect("one entry");
                match key.as_str() {
                    "Ref" => self.reference(argument.as_str().unwrap_or_default()),
                    "Fn::GetAtt" => self.get_att(argument).map(Some),
                    "Fn::Sub" => self.sub(argument).map(Some),
                    "Fn::Join" => {
                        let separator = argument[0].as_str().unwrap_or_default();
                        let items = self.resolve(&argument[1])?;
                        let parts: Vec<String> = items
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                            .into_iter()
                            .map(|v| match v {
                                Value::String(s) => s,
                                other => other.to_string(),
                            })
                            .collect();
                        Ok(Some(json!(parts.join(separator))))
                    }
                    "Fn::ImportValue" => {
                        let export = match self.resolve(argument)? {
                            Value::String(name) => name,
                            other => {
                                return Err(TemplateError::Invalid(format!(
                                    "Fn::ImportValue needs an export name, not {other}"
                                )))
                            }
                        };
                        match self.imports.get(&export) {
                            Some(value) => Ok(Some(json!(value))),
                            None => Err(TemplateError::Invalid(format!(
                                "Fn::ImportValue {export}: another stack's export, which no local stack provides; give its value with --parameter {export}=VALUE"
                            ))),
                        }
                    }
                    "Fn::If" => {
                        let name = argument[0].as_str().unwrap_or_default();
                        let branch = if self.condition(name)? {
                            &argument[1]
                        } else {
                            &argument[2]
                        };
                        self.resolve_inner(branch)
                    }
                    _ => {
                        let mut out = Map::new();
                        for (k, v) in map {
                            if let Some(v) = self.resolve_inner(v)? {
                                out.insert(k.clone(), v);
                            }
                        }
                        Ok(Some(Value::Object(out)))
                    }
                }
            }
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, v) in map {
                    if let Some(v) = self.resolve_inner(v)? {
                        out.insert(k.clone(), v);
                    }
                }
                Ok(Some(Value::Object(out)))
            }
            Value::Array(items) => {
                let mut out = Vec::new();
                for item in items {
                    if let Some(v) = self.resolve_inner(item)? {
                        out.push(v);
                    }
                }
                Ok(Some(Value::Array(out)))
            }
            other => Ok(Some(other.clone())),
        }
    }

    fn condition(&self, name: &str) -> Result<bool, TemplateError> {
        self.conditions
            .get(name)
            .copied()
            .ok_or_else(|| TemplateError::Invalid(format!("unknown condition {name}")))
    }

    fn condition_value(&self, expression: &Value) -> Result<bool, TemplateError> {
        let (key, argument) = expression
            .as_object()
            .and_then(|m| m.iter().next())
            .ok_or_else(|| TemplateError::Invalid("a condition is not a function".into()))?;
        match key.as_str() {
            "Fn::Equals" => Ok(self.resolve(&argument[0])? == self.resolve(&argument[1])?),
            "Fn::Not" => Ok(!self.condition_value(&argument[0])?),
            "Fn::And" => argument
                .as_array()
                .into_iter()
                .flatten()
                .try_fold(true, |all, c| Ok(all && self.condition_value(c)?)),
            "Fn::Or" => argument
                .as_array()
                .into_iter()
                .flatten()
                .try_fold(false, |any, c| Ok(any || self.condition_value(c)?)),
            "Condition" => self.condition(argument.as_str().unwrap_or_default()),
            other => Err(TemplateError::Invalid(format!(
                "{other} is not a condition function"
            ))),
        }
    }

    fn reference(&self, name: &str) -> Result<Option<Value>, TemplateError> {
        Ok(Some(match name {
            "AWS::NoValue" => return Ok(None),
            "AWS::StackName" => json!(STACK_NAME),
            "AWS::Region" => json!(crate::endpoints::REGION),
            "AWS::AccountId" => json!(ACCOUNT_ID),
            "AWS::Partition" => json!("aws"),
            "AWS::URLSuffix" => json!("amazonaws.com"),
            _ => {
                if let Some(value) = self.parameters.get(name) {
                    return Ok(Some(self.parameter_value(name, value)));
                }
                let resource = self
                    .resources
                    .get(name)
                    .ok_or_else(|| TemplateError::Invalid(format!("Ref to unknown {name}")))?;
                json!(self.physical_id(name, resource)?)
            }
        }))
    }

    /// A `CommaDelimitedList` parameter is a list; everything else a string.
    fn parameter_value(&self, name: &str, value: &str) -> Value {
        if self.lists.iter().any(|l| l == name) {
            json!(value
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .collect::<Vec<_>>())
        } else {
            json!(value)
        }
    }

    /// What `Ref` gives for a resource.
    pub fn physical_id(&self, id: &str, resource: &Value) -> Result<String, TemplateError> {
        Ok(match resource["Type"].as_str().unwrap_or_default() {
            "AWS::Serverless::Function" | "AWS::Lambda::Function" => function_name(id),
            "AWS::S3::Bucket" => bucket_name(id),
            "AWS::SNS::Topic" => format!(
                "arn:aws:sns:{}:{ACCOUNT_ID}:{STACK_NAME}-{id}",
                crate::endpoints::REGION
            ),
            "AWS::DynamoDB::Table" => format!("{STACK_NAME}-{id}"),
            "AWS::CodeBuild::Project" => match &resource["Properties"]["Name"] {
                Value::Null => format!("{STACK_NAME}-{id}"),
                name => self.resolve(name)?.as_str().unwrap_or(id).to_string(),
            },
            "AWS::CloudWatch::Alarm" => match &resource["Properties"]["AlarmName"] {
                Value::Null => format!("{STACK_NAME}-{id}"),
                name => self.resolve(name)?.as_str().unwrap_or(id).to_string(),
            },
            _ => format!("{STACK_NAME}-{id}"),
        })
    }

    fn get_att(&self, argument: &Value) -> Result<Value, TemplateError> {
        let (id, attribute) = match argument {
            Value::String(s) => s
                .split_once('.')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .unwrap_or_default(),
            Value::Array(parts) => (
                parts[0].as_str().unwrap_or_default().to_string(),
                parts[1].as_str().unwrap_or_default().to_string(),
            ),
            _ => Default::default(),
        };
        let resource = self
            .resources
            .get(&id)
            .ok_or_else(|| TemplateError::Invalid(format!("GetAtt of unknown {id}")))?;
        let region = crate::endpoints::REGION;
        Ok(json!(match (
            resource["Type"].as_str().unwrap_or_default(),
            attribute.as_str()
        ) {
            ("AWS::Serverless::Function" | "AWS::Lambda::Function", "Arn") => function_arn(&id),
            ("AWS::S3::Bucket", "Arn") => format!("arn:aws:s3:::{}", bucket_name(&id)),
            ("AWS::DynamoDB::Table", "Arn") => {
                format!("arn:aws:dynamodb:{region}:{ACCOUNT_ID}:table/{STACK_NAME}-{id}")
            }
            ("AWS::IAM::Role", "Arn") =>
                format!("arn:aws:iam::{ACCOUNT_ID}:role/{STACK_NAME}-{id}"),
            (_, "FunctionUrl") => format!("http://127.0.0.1/{id}"),
            (kind, attribute) => {
                return Err(TemplateError::Invalid(format!(
                    "GetAtt {id}.{attribute} ({kind}) is not known to pipeline-local"
                )));
            }
        }))
    }

    fn sub(&self, argument: &Value) -> Result<Value, TemplateError> {
        let (text, variables) = match argument {
            Value::String(s) => (s.clone(), Map::new()),
            Value::Array(parts) => (
                parts[0].as_str().unwrap_or_default().to_string(),
                self.resolve(&parts[1])?
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            ),
            _ => return Err(TemplateError::Invalid("Fn::Sub needs a string".into())),
        };
        let mut out = String::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| {
                TemplateError::Invalid(format!("unclosed ${{ in Fn::Sub {text:?}"))
            })?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str(&format!("${{{literal}}}"));
            } else {
                let value = match variables.get(name) {
                    Some(v) => v.clone(),
                    None if name.contains('.') && !name.starts_with("AWS::") => {
                        self.get_att(&json!(name))?
                    }
                    None => self.reference(name)?.unwrap_or(Value::Null),
                };
                match value {
                    Value::String(s) => out.push_str(&s),
                    other => out.push_str(&other.to_string()),
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(json!(out))
    }
}

/// The name a function without `FunctionName` gets.
pub fn function_name(logical_id: &str) -> String {
    format!("{STACK_NAME}-{logical_id}")
}

/// The ARN of a function of the stack.
pub fn function_arn(logical_id: &str) -> String {
    format!(
        "arn:aws:lambda:{}:{ACCOUNT_ID}:function:{}",
        crate::endpoints::REGION,
        function_name(logical_id)
    )
}

/// The name a bucket without `BucketName` gets.
pub fn bucket_name(logical_id: &str) -> String {
    format!("{STACK_NAME}-{}", logical_id.to_ascii_lowercase())
}

/// YAML with CloudFormation's short tags (`!Ref X`, `!Sub …`) as the JSON long form.
fn to_json(yaml: serde_yaml::Value) -> Value {
    use serde_yaml::Value as Y;
    match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => json!(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                json!(i)
            } else if let Some(u) = n.as_u64() {
                json!(u)
            } else {
                json!(n.as_f64())
            }
        }
        Y::String(s) => json!(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Y::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Y::String(s) => s,
                        other => serde_yaml::to_string(&other)
                            .unwrap_or_default()
                            .trim()
                            .to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let tag = tag.trim_start_matches('!');
            let value = to_json(tagged.value);
            let name = match tag {
                "Ref" | "Condition" => tag.to_string(),
                // `!GetAtt A.B` is a string; the long form takes [A, B].
                "GetAtt" => {
                    let value = match value {
                        Value::String(s) => match s.split_once('.') {
                            Some((a, b)) => json!([a, b]),
                            None => json!(s),
                        },
                        other => other,
                    };
                    return json!({"Fn::GetAtt": value});
                }
                other => format!("Fn::{other}"),
            };
            json!({ name: value })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(text: &str, overrides: &[(&str, &str)]) -> Template {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("template.yaml");
        std::fs::write(&path, text).unwrap();
        let overrides: Vec<(String, String)> = overrides
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        Template::load(&path, &overrides).unwrap()
    }

    const TEXT: &str = r#"
Parameters:
  Secret: {Type: String, Default: ""}
  Bake: {Type: Number, Default: 300}
Conditions:
  WithSecret: !Not [!Equals [!Ref Secret, ""]]
  Both: !And [!Condition WithSecret, !Equals [!Ref Bake, "300"]]
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: deploy-gate}}
    Properties:
      Environment:
        Variables:
          SECRET: !Ref Secret
          SITE: !Sub "https://${Site}/${!literal}/${Site.Arn}"
  Site:
    Type: AWS::S3::Bucket
    Condition: WithSecret
  Uses:
    Type: Custom
    Properties:
      Fn: !GetAtt Fn.Arn
      Maybe: !If [Both, yes, !Ref AWS::NoValue]
      List: [!Ref AWS::NoValue, !Join ["-", [a, !Ref Bake]]]
"#;

    #[test]
    fn resolves_intrinsics_and_conditions() {
        let t = template(TEXT, &[("Secret", "arn:secret")]);
        let f = &t.functions().unwrap()[0];
        assert_eq!(f.binary, "deploy-gate");
        assert_eq!(
            f.environment,
            vec![
                ("SECRET".to_string(), "arn:secret".to_string()),
                (
                    "SITE".to_string(),
                    "https://pipeline-local-site/${literal}/arn:aws:s3:::pipeline-local-site"
                        .to_string()
                )
            ]
        );
        let uses = t
            .resolve(&t.resources.get("Uses").unwrap()["Properties"])
            .unwrap();
        assert_eq!(uses["Fn"], json!(function_arn("Fn")));
        assert_eq!(uses["Maybe"], json!("yes"));
        assert_eq!(uses["List"], json!(["a-300"]));
        assert_eq!(t.resources().count(), 3);
    }

    #[test]
    fn imported_values_come_from_parameters_or_are_named_with_the_fix() {
        let text = r#"
Parameters:
  Env: {Type: String, Default: prod}
Resources:
  Uses:
    Type: Custom
    Properties:
      Cluster: !ImportValue shared-cluster
      Vpc: {"Fn::ImportValue": {"Fn::Sub": "${Env}-vpc"}}
"#;
        let t = template(
            text,
            &[
                ("shared-cluster", "arn:ecs:cluster/main"),
                ("prod-vpc", "vpc-1"),
            ],
        );
        let uses = t
            .resolve(&t.resources.get("Uses").unwrap()["Properties"])
            .unwrap();
        assert_eq!(uses["Cluster"], json!("arn:ecs:cluster/main"));
        assert_eq!(uses["Vpc"], json!("vpc-1"));
        let t = template(text, &[("shared-cluster", "c")]);
        let error = t
            .resolve(&t.resources.get("Uses").unwrap()["Properties"])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("Fn::ImportValue prod-vpc")
                && error.contains("--parameter prod-vpc=VALUE"),
            "{error}"
        );
        // Without an import, an undeclared parameter is still a mistake.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.yaml");
        std::fs::write(&path, TEXT).unwrap();
        let error = Template::load(&path, &[("Nope".into(), "1".into())])
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("parameter Nope is not declared"), "{error}");
    }

    #[test]
    fn false_conditions_drop_resources_and_values() {
        let t = template(TEXT, &[]);
        assert_eq!(t.resources().count(), 2);
        let uses = t
            .resolve(&t.resources.get("Uses").unwrap()["Properties"])
            .unwrap();
        assert!(uses.get("Maybe").is_none());
    }
}
