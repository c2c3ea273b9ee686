//! A CodeBuild buildspec (version 0.2) as pipeline-local runs it: `env` (variables, exported
//! variables, secrets), the four phases with `commands`, `finally` and `on-failure`, and
//! `artifacts` with `secondary-artifacts`.

use serde_yaml::Value;

/// The phases in the order CodeBuild runs them.
pub const PHASES: [&str; 4] = ["install", "pre_build", "build", "post_build"];

/// One phase.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Phase {
    /// `install`, `pre_build`, `build` or `post_build`.
    pub name: &'static str,
    /// `commands`, in order.
    pub commands: Vec<String>,
    /// `finally`: run whether the commands passed or not.
    pub finally: Vec<String>,
    /// `on-failure: CONTINUE` (the default, `ABORT`, ends the build).
    pub continue_on_failure: bool,
}

/// The files one artifact holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArtifactFiles {
    /// `files`: globs relative to the base directory.
    pub files: Vec<String>,
    /// `base-directory`, relative to the source directory.
    pub base_directory: Option<String>,
    /// `discard-paths: yes`: files at the zip's root.
    pub discard_paths: bool,
    /// `name`: CodeBuild's name for the artifact; in a pipeline the action's output artifact
    /// names it, so this is only reported.
    pub name: Option<String>,
}

/// A buildspec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Buildspec {
    /// `env.variables`.
    pub variables: Vec<(String, String)>,
    /// `env.exported-variables`.
    pub exported: Vec<String>,
    /// `env.secrets-manager`: name → `secret-id:json-key`.
    pub secrets_manager: Vec<(String, String)>,
    /// `env.parameter-store`: name → parameter name.
    pub parameter_store: Vec<(String, String)>,
    /// The phases present, in CodeBuild's order.
    pub phases: Vec<Phase>,
    /// `artifacts` (the primary artifact).
    pub artifacts: Option<ArtifactFiles>,
    /// `artifacts.secondary-artifacts`: identifier → files.
    pub secondary: Vec<(String, ArtifactFiles)>,
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn strings(value: &Value, what: &str) -> Result<Vec<String>, String> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Sequence(items) => items
            .iter()
            .map(|i| scalar(i).ok_or_else(|| format!("{what}: every item must be a string")))
            .collect(),
        other => scalar(other)
            .map(|s| vec![s])
            .ok_or_else(|| format!("{what} must be a list")),
    }
}

fn pairs(value: &Value, what: &str) -> Result<Vec<(String, String)>, String> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Mapping(map) => map
            .iter()
            .map(|(k, v)| {
                let name = scalar(k).ok_or_else(|| format!("{what}: a name must be a string"))?;
                let value = scalar(v).ok_or_else(|| format!("{what}.{name} must be a string"))?;
                Ok((name, value))
            })
            .collect(),
        _ => Err(format!("{what} must be a mapping of names to values")),
    }
}

fn yes(value: &Value) -> bool {
    matches!(
        scalar(value).as_deref(),
        Some("yes" | "true" | "True" | "YES")
    )
}

fn artifact_files(value: &Value, what: &str) -> Result<ArtifactFiles, String> {
    let files = strings(&value["files"], &format!("{what}.files"))?;
    if files.is_empty() {
        return Err(format!("{what} names no files"));
    }
    let base_directory = scalar(&value["base-directory"]);
    for (key, path) in files
        .iter()
        .map(|f| ("files", f))
        .chain(base_directory.iter().map(|b| ("base-directory", b)))
    {
        stays_inside(path).map_err(|why| format!("{what}.{key} `{path}`: {why}"))?;
    }
    Ok(ArtifactFiles {
        files,
        base_directory,
        discard_paths: yes(&value["discard-paths"]),
        name: scalar(&value["name"]),
    })
}

/// An artifact's path must stay in the build's source folder: it is read from there and
/// zipped, so `..` or an absolute path would ship files of the machine that ran the build.
fn stays_inside(path: &str) -> Result<(), String> {
    if path.starts_with('/') || path.starts_with('\\') {
        return Err("an absolute path; artifact paths are relative to the source folder".into());
    }
    if path.split(['/', '\\']).any(|part| part == "..") {
        return Err("`..` leaves the source folder; artifacts come from inside it".into());
    }
    Ok(())
}

impl Buildspec {
    /// Reads a buildspec's text; the error names the key that is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let doc: Value =
            serde_yaml::from_str(text).map_err(|e| format!("the buildspec is not YAML: {e}"))?;
        match scalar(&doc["version"]).as_deref() {
            Some("0.2") => {}
            Some(other) => {
                return Err(format!(
                    "buildspec version {other}: pipeline-local runs version 0.2"
                ))
            }
            None => return Err("the buildspec has no version (write `version: 0.2`)".into()),
        }
        let env = &doc["env"];
        let mut spec = Buildspec {
            variables: pairs(&env["variables"], "env.variables")?,
            exported: strings(&env["exported-variables"], "env.exported-variables")?,
            secrets_manager: pairs(&env["secrets-manager"], "env.secrets-manager")?,
            parameter_store: pairs(&env["parameter-store"], "env.parameter-store")?,
            ..Default::default()
        };
        for name in PHASES {
            let phase = &doc["phases"][name];
            if phase.is_null() {
                continue;
            }
            let on_failure = scalar(&phase["on-failure"]).unwrap_or_else(|| "ABORT".into());
            let continue_on_failure = match on_failure.as_str() {
                "ABORT" => false,
                "CONTINUE" => true,
                other => {
                    return Err(format!(
                        "phases.{name}.on-failure is ABORT or CONTINUE, not {other}"
                    ))
                }
            };
            spec.phases.push(Phase {
                name,
                commands: strings(&phase["commands"], &format!("phases.{name}.commands"))?,
                finally: strings(&phase["finally"], &format!("phases.{name}.finally"))?,
                continue_on_failure,
            });
        }
        if spec.phases.is_empty() {
            return Err("the buildspec has no phases".into());
        }
        let artifacts = &doc["artifacts"];
        if !artifacts.is_null() {
            if !artifacts["files"].is_null() {
                spec.artifacts = Some(artifact_files(artifacts, "artifacts")?);
            }
            if let Value::Mapping(secondary) = &artifacts["secondary-artifacts"] {
                for (id, files) in secondary {
                    let id = scalar(id).unwrap_or_default();
                    let what = format!("artifacts.secondary-artifacts.{id}");
                    spec.secondary
                        .push((id.clone(), artifact_files(files, &what)?));
                }
            }
        }
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_phases_env_and_artifacts() {
        let spec = Buildspec::parse(
            "version: 0.2\nenv:\n  variables: {STAGE: test, RETRIES: 3}\n  exported-variables: [IMAGE_TAG]\nphases:\n  build:\n    on-failure: CONTINUE\n    commands:\n      - make\n      - |\n        echo multi\n        echo line\n    finally: [echo done]\n  install:\n    commands: [npm ci]\nartifacts:\n  files: ['**/*']\n  base-directory: dist\n  discard-paths: yes\n  secondary-artifacts:\n    Report: {files: [report.xml]}\n",
        )
        .unwrap();
        assert_eq!(
            spec.phases.iter().map(|p| p.name).collect::<Vec<_>>(),
            ["install", "build"]
        );
        assert_eq!(spec.phases[1].commands.len(), 2);
        assert!(spec.phases[1].continue_on_failure);
        assert_eq!(
            spec.variables,
            vec![
                ("STAGE".into(), "test".into()),
                ("RETRIES".into(), "3".into())
            ]
        );
        let artifacts = spec.artifacts.unwrap();
        assert_eq!(artifacts.base_directory.as_deref(), Some("dist"));
        assert!(artifacts.discard_paths);
        assert_eq!(spec.secondary[0].0, "Report");
    }

    #[test]
    fn mistakes_are_named_by_key() {
        for (text, needle) in [
            ("phases: {build: {commands: [x]}}", "no version"),
            (
                "version: 0.1\nphases: {build: {commands: [x]}}",
                "version 0.1",
            ),
            ("version: 0.2", "no phases"),
            (
                "version: 0.2\nphases: {build: {on-failure: RETRY, commands: [x]}}",
                "on-failure",
            ),
            (
                "version: 0.2\nphases: {build: {commands: {a: b}}}",
                "phases.build.commands",
            ),
            (
                "version: 0.2\nphases: {build: {commands: [x]}}\nartifacts: {files: []}",
                "names no files",
            ),
            (
                "version: 0.2\nphases: {build: {commands: [x]}}\nartifacts: {files: ['../../etc/passwd']}",
                "artifacts.files `../../etc/passwd`: `..` leaves the source folder",
            ),
            (
                "version: 0.2\nphases: {build: {commands: [x]}}\nartifacts: {files: ['*'], base-directory: ../..}",
                "artifacts.base-directory `../..`",
            ),
            (
                "version: 0.2\nphases: {build: {commands: [x]}}\nartifacts: {files: ['/etc/*']}",
                "an absolute path",
            ),
            (
                "version: 0.2\nphases: {build: {commands: [x]}}\nartifacts: {files: [a], secondary-artifacts: {R: {files: ['x/../../y']}}}",
                "artifacts.secondary-artifacts.R.files",
            ),
            ("version: 0.2\nphases: [build: {commands: [x]}", "not YAML"),
        ] {
            let error = Buildspec::parse(text).unwrap_err();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }

    proptest! {
        #[test]
        fn any_text_is_read_or_refused_without_panicking(text in "\\PC{0,300}") {
            let _ = Buildspec::parse(&text);
        }
    }
}
