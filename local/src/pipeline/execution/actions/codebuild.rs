//! `CodeBuild` (Build and Test) and `Commands` actions, run on this machine: the buildspec
//! (the project's inline `BuildSpec`, a file in the primary source, or the action's
//! `Commands`) in a fresh working folder with a clean environment — the CodeBuild variables,
//! the project's, the action's and the buildspec's, secrets from the local Secrets Manager and
//! parameters from the local Parameter Store —
//! phase by phase with `finally` and `on-failure`, within the project's `TimeoutInMinutes`;
//! `exported-variables` become the action's output variables and `artifacts` its output
//! artifacts. Each phase's output goes to the action's notes (and the terminal with
//! `--verbose`). The commands run on the host, or with `--container-engine` in the project's
//! image ([`super::build_container`]).

use super::super::super::buildspec::{ArtifactFiles, Buildspec, Phase};
use super::super::super::model::ActionDef;
use super::super::super::report::ActionResult;
use super::super::Execution;
use super::build_container::{BuildContainer, COMMANDS_IMAGE};
use pipeline_ext::glob::Glob;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Lines of a failed build's output quoted in its summary.
const TAIL_LINES: usize = 15;

/// True for the providers this module runs.
pub(in super::super) fn is_build(action: &ActionDef) -> bool {
    matches!(
        (
            action.category.as_str(),
            action.owner.as_str(),
            action.provider.as_str()
        ),
        ("Build" | "Test", "AWS", "CodeBuild") | ("Build", "AWS", "Commands")
    )
}

/// What a build is: its buildspec, time limit, the project's variables and the project's
/// name (empty for a `Commands` action).
struct BuildDefinition {
    /// The buildspec (for a Commands action, one `build` phase of its commands).
    spec: Buildspec,
    /// The project's `TimeoutInMinutes` (5 to 2,160, as CodeBuild allows), for all phases.
    timeout: Duration,
    /// The project's `Environment.EnvironmentVariables`, resolved.
    project_env: Vec<(String, String)>,
    /// The project's name, for `CODEBUILD_BUILD_ID` and the summary.
    project: String,
    /// The project's `Environment.Image` (for `--container-engine`).
    image: String,
}

/// How a build ended.
struct BuildRun {
    /// The phase that failed, if one did.
    failed: Option<String>,
    /// Everything the commands printed.
    log: Vec<String>,
    /// The environment after the last phase.
    env: Vec<(String, String)>,
}

impl Execution<'_> {
    pub(in super::super) async fn build(
        &mut self,
        stage: &str,
        action: &ActionDef,
    ) -> ActionResult {
        self.build_logs.remove(&action.name);
        match self.try_build(stage, action).await {
            Ok(result) | Err(result) => result,
        }
    }

    /// The build, with every way it can fail as the action's failure: a build either
    /// succeeded or says why it did not; nothing is left half-reported.
    async fn try_build(
        &mut self,
        stage: &str,
        action: &ActionDef,
    ) -> Result<ActionResult, ActionResult> {
        let fail = |why: String| ActionResult::failed(why);
        let BuildDefinition {
            spec,
            timeout,
            project_env,
            project,
            image,
        } = self.build_definition(action).map_err(fail)?;
        let timeout = match self.context.options.build_timeout {
            Some(cap) => timeout.min(Duration::from_secs(cap)),
            None => timeout,
        };
        let container = match self.context.options.container_engine {
            Some(engine) => {
                engine.check_available().map_err(fail)?;
                Some(BuildContainer {
                    engine,
                    image,
                    name: format!("pipeline-local-build-{}", uuid::Uuid::new_v4().simple()),
                })
            }
            None => None,
        };
        let work = tempfile::Builder::new()
            .prefix("pipeline-local-build-")
            .tempdir()
            .map_err(|e| fail(format!("cannot make the build's folder: {e}")))?;
        let mut env = self
            .build_environment(action, &project, work.path())
            .map_err(fail)?;
        env.extend(project_env);
        env.extend(self.action_environment(action).map_err(fail)?);
        env.extend(spec.variables.iter().cloned());
        for (name, reference) in &spec.secrets_manager {
            env.push((name.clone(), self.secret_value(reference).map_err(fail)?));
        }
        for (name, parameter) in &spec.parameter_store {
            env.push((name.clone(), self.parameter_value(parameter).map_err(fail)?));
        }
        let echo = self.context.options.verbose;
        let phases = spec.phases.clone();
        let dir = work.path().to_path_buf();
        let sink = echo.then(crate::pipeline::output::current).flatten();
        let live = self.context.console.clone().map(|console| LiveLog {
            console,
            execution: self.execution_id.clone(),
            stage: stage.to_string(),
            action: action.name.clone(),
        });
        let ran = tokio::task::spawn_blocking(move || {
            let echo = echo.then_some(sink);
            run_phases(
                &phases,
                &dir,
                env,
                timeout,
                echo,
                container.as_ref(),
                live.as_ref(),
            )
        })
        .await
        .map_err(|e| fail(format!("the build's runner stopped: {e}")))?
        .map_err(fail)?;
        self.build_logs.insert(action.name.clone(), ran.log.clone());
        if let Some(phase) = &ran.failed {
            let tail: Vec<&str> = ran
                .log
                .iter()
                .rev()
                .take(TAIL_LINES)
                .rev()
                .map(String::as_str)
                .collect();
            return Err(fail(format!(
                "the build failed in {phase}; its last lines: {}",
                tail.join(" ⏎ ")
            )));
        }
        let source = work.path().join("src");
        let mut notes = Vec::new();
        let outputs: Vec<(String, ArtifactFiles)> = match (&spec.artifacts, action.outputs.first())
        {
            (Some(files), Some(first)) => {
                let mut all = vec![(first.clone(), files.clone())];
                all.extend(spec.secondary.iter().cloned());
                all
            }
            _ => spec.secondary.clone(),
        };
        for (name, files) in outputs {
            if !action.outputs.contains(&name) {
                return Err(fail(format!(
                    "the buildspec's artifact {name} is not an output artifact of the action ({})",
                    action.outputs.join(", ")
                )));
            }
            let collected = collect_files(&source, &files).map_err(fail)?;
            let zipped = crate::zips::zip_files(&collected)
                .map_err(|e| fail(format!("cannot zip the artifact {name}: {e}")))?;
            let location = self.new_artifact(&name);
            self.context
                .aws
                .s3
                .put_file(&location.bucket, &location.key, &zipped)
                .map_err(|e| fail(format!("cannot write the artifact {name}: {e}")))?;
            let called = files
                .name
                .as_ref()
                .map(|n| format!(", the buildspec's name {n}"))
                .unwrap_or_default();
            notes.push(format!(
                "artifact {name} ({} files{called}) → s3://{}/{}",
                collected.len(),
                location.bucket,
                location.key
            ));
            self.artifacts.insert(name, location);
        }
        if let Some(namespace) = &action.namespace {
            let exported: Vec<(String, String)> = spec
                .exported
                .iter()
                .map(|name| {
                    let value = ran
                        .env
                        .iter()
                        .rev()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    (name.clone(), value)
                })
                .collect();
            self.variables.set(namespace, exported);
        }
        let phases: Vec<&str> = spec.phases.iter().map(|p| p.name).collect();
        Ok(ActionResult::succeeded(
            format!(
                "{} on the host: {} ({} output lines)",
                if project.is_empty() {
                    "commands ran".to_string()
                } else {
                    format!("project {project} built")
                },
                phases.join(", "),
                ran.log.len()
            ),
            notes,
        ))
    }

    /// The buildspec, the time limit, the project's variables and the project's name.
    fn build_definition(&mut self, action: &ActionDef) -> Result<BuildDefinition, String> {
        if action.provider == "Commands" {
            let commands: Vec<String> = match action.configuration.get("Commands") {
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                Some(Value::String(text)) => text.lines().map(str::to_owned).collect(),
                _ => return Err("the Commands action has no Commands".into()),
            };
            // Commands may name variables (`#{SourceVariables.CommitId}`), as on CodePipeline.
            let commands = commands
                .iter()
                .map(|c| self.variables.substitute(c))
                .collect::<Result<Vec<_>, _>>()?;
            let mut spec = Buildspec {
                phases: vec![Phase {
                    name: "build",
                    commands,
                    ..Default::default()
                }],
                ..Default::default()
            };
            // A Commands action names each output artifact's files in the artifact itself.
            for (name, files) in &action.output_files {
                let files = ArtifactFiles {
                    files: files.clone(),
                    ..Default::default()
                };
                if action.outputs.first() == Some(name) {
                    spec.artifacts = Some(files);
                } else {
                    spec.secondary.push((name.clone(), files));
                }
            }
            if let Some(name) = action
                .outputs
                .iter()
                .find(|n| !action.output_files.iter().any(|(f, _)| f == *n))
            {
                return Err(format!(
                    "the Commands action's output artifact {name} names no Files: say which files it holds"
                ));
            }
            spec.exported = match action.configuration.get("OutputVariables") {
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            };
            return Ok(BuildDefinition {
                spec,
                timeout: Duration::from_secs(55 * 60),
                project_env: Vec::new(),
                project: String::new(),
                image: COMMANDS_IMAGE.to_string(),
            });
        }
        let name = action
            .config("ProjectName")
            .ok_or("the CodeBuild action has no ProjectName")?;
        let mut found = None;
        for (id, resource) in self.template.resources_of_type("AWS::CodeBuild::Project") {
            if self
                .template
                .physical_id(id, resource)
                .map_err(|e| e.to_string())?
                == name
            {
                found = Some(
                    self.template
                        .resolve(&resource["Properties"])
                        .map_err(|e| e.to_string())?,
                );
            }
        }
        let project = found.ok_or_else(|| {
            format!("ProjectName {name} is not an AWS::CodeBuild::Project of this template")
        })?;
        let timeout = Duration::from_secs(
            project["TimeoutInMinutes"]
                .as_u64()
                .or_else(|| {
                    project["TimeoutInMinutes"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                })
                .unwrap_or(60)
                .clamp(5, 2160)
                * 60,
        );
        let declared = project["Source"]["BuildSpec"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let text = if declared.contains('\n') || declared.trim_start().starts_with("version") {
            declared
        } else {
            let path = if declared.is_empty() {
                "buildspec.yml".to_string()
            } else {
                declared
            };
            self.primary_file(action, &path)?
        };
        let spec = Buildspec::parse(&text)?;
        let mut env = Vec::new();
        for variable in project["Environment"]["EnvironmentVariables"]
            .as_array()
            .into_iter()
            .flatten()
        {
            env.push(self.typed_variable(
                variable["Name"].as_str().unwrap_or_default(),
                &variable["Value"],
                variable["Type"].as_str().unwrap_or("PLAINTEXT"),
            )?);
        }
        Ok(BuildDefinition {
            spec,
            timeout,
            project_env: env,
            project: name,
            image: project["Environment"]["Image"]
                .as_str()
                .unwrap_or("aws/codebuild/amazonlinux-x86_64-standard:5.0")
                .to_string(),
        })
    }

    /// A file of the primary source artifact, as text.
    fn primary_file(&self, action: &ActionDef, path: &str) -> Result<String, String> {
        let primary = self.primary_input(action)?;
        let location = &self.artifacts[&primary];
        let bytes = std::fs::read(
            self.context
                .aws
                .s3
                .object_path(&location.bucket, &location.key),
        )
        .map_err(|e| format!("cannot read the artifact {primary}: {e}"))?;
        let files =
            crate::zips::unzip(bytes).map_err(|e| format!("{primary} is not a zip: {e}"))?;
        files
            .into_iter()
            .find(|(name, _)| name == path)
            .map(|(_, data)| String::from_utf8_lossy(&data).into_owned())
            .ok_or_else(|| format!("the source {primary} has no buildspec {path}"))
    }

    /// `PrimarySource`, else the first input artifact; it must have been produced.
    fn primary_input(&self, action: &ActionDef) -> Result<String, String> {
        let name = action
            .config("PrimarySource")
            .or_else(|| action.inputs.first().cloned())
            .ok_or("the build has no input artifact")?;
        if !self.artifacts.contains_key(&name) {
            return Err(format!(
                "no artifact named {name} was produced before this action"
            ));
        }
        Ok(name)
    }

    /// The working folder with the sources extracted, and CodeBuild's own variables.
    fn build_environment(
        &self,
        action: &ActionDef,
        project: &str,
        work: &Path,
    ) -> Result<Vec<(String, String)>, String> {
        let primary = self.primary_input(action)?;
        let mut env = vec![
            (
                "PATH".to_string(),
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
            ),
            ("HOME".to_string(), work.join("home").display().to_string()),
            ("LANG".to_string(), "C.UTF-8".to_string()),
            ("CI".to_string(), "true".to_string()),
            (
                "CODEBUILD_BUILD_ID".to_string(),
                format!(
                    "{}:{}",
                    if project.is_empty() {
                        &action.name
                    } else {
                        project
                    },
                    uuid::Uuid::new_v4()
                ),
            ),
            ("CODEBUILD_BUILD_NUMBER".to_string(), "1".to_string()),
            (
                "CODEBUILD_INITIATOR".to_string(),
                format!("codepipeline/{}", self.pipeline.name),
            ),
            ("CODEBUILD_BUILD_SUCCEEDING".to_string(), "1".to_string()),
            (
                "CODEBUILD_RESOLVED_SOURCE_VERSION".to_string(),
                self.source_version(),
            ),
        ];
        env.extend(self.context.aws.function_env());
        // Where the local buckets are served as websites (`<url>/<bucket>/<key>`), for tests
        // that check a site a previous action published; absent on AWS.
        env.push((
            "PIPELINE_LOCAL_SITE_URL".to_string(),
            self.context.site_url.clone(),
        ));
        std::fs::create_dir_all(work.join("home")).map_err(|e| e.to_string())?;
        for name in &action.inputs {
            let location = self.artifacts.get(name).ok_or_else(|| {
                format!("no artifact named {name} was produced before this action")
            })?;
            let folder = if *name == primary {
                work.join("src")
            } else {
                work.join(format!("src_{name}"))
            };
            let bytes = std::fs::read(
                self.context
                    .aws
                    .s3
                    .object_path(&location.bucket, &location.key),
            )
            .map_err(|e| format!("cannot read the artifact {name}: {e}"))?;
            extract(&bytes, &folder).map_err(|e| format!("cannot extract {name}: {e}"))?;
            let variable = if *name == primary {
                "CODEBUILD_SRC_DIR".to_string()
            } else {
                format!("CODEBUILD_SRC_DIR_{name}")
            };
            env.push((variable, folder.display().to_string()));
        }
        Ok(env)
    }

    /// The source revision this build sees: the commit of a git source, else the archive's MD5.
    fn source_version(&self) -> String {
        let source = self
            .pipeline
            .stages
            .iter()
            .flat_map(|s| &s.actions)
            .find(|a| a.category == "Source");
        if let Some(action) = source.filter(|a| super::is_git_source(a)) {
            if let Ok((_, revision)) = self.git_revision(action) {
                return revision.commit;
            }
        }
        match &self.source_archive {
            Ok(bytes) => {
                use md5::Digest as _;
                hex::encode(md5::Md5::digest(bytes))
            }
            Err(_) => String::new(),
        }
    }

    /// The action's `EnvironmentVariables` (a JSON list of `{name, value, type}`).
    fn action_environment(&self, action: &ActionDef) -> Result<Vec<(String, String)>, String> {
        let Some(text) = action.config("EnvironmentVariables") else {
            return Ok(Vec::new());
        };
        let text = self.variables.substitute(&text)?;
        let list: Vec<Value> = serde_json::from_str(&text)
            .map_err(|e| format!("EnvironmentVariables is not a JSON list: {e}"))?;
        list.iter()
            .map(|v| {
                self.typed_variable(
                    v["name"].as_str().unwrap_or_default(),
                    &v["value"],
                    v["type"].as_str().unwrap_or("PLAINTEXT"),
                )
            })
            .collect()
    }

    /// One variable of a type: `PLAINTEXT`, `SECRETS_MANAGER` or `PARAMETER_STORE` (from the
    /// local Secrets Manager and Parameter Store).
    fn typed_variable(
        &self,
        name: &str,
        value: &Value,
        kind: &str,
    ) -> Result<(String, String), String> {
        if name.is_empty() {
            return Err("an environment variable has no name".into());
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        match kind {
            "PLAINTEXT" => Ok((name.to_string(), text)),
            "SECRETS_MANAGER" => Ok((name.to_string(), self.secret_value(&text)?)),
            "PARAMETER_STORE" => Ok((name.to_string(), self.parameter_value(&text)?)),
            other => Err(format!("the variable {name} has the unknown type {other}")),
        }
    }

    /// A parameter of the local Parameter Store, decrypted as CodeBuild reads it.
    fn parameter_value(&self, name: &str) -> Result<String, String> {
        self.context
            .aws
            .ssm
            .get(name)
            .map(|p| p.value)
            .ok_or_else(|| {
                format!("the parameter {name} is not in the local Parameter Store (--ssm-parameters FILE)")
            })
    }

    /// `secret-id` or `secret-id:json-key` from the local Secrets Manager.
    fn secret_value(&self, reference: &str) -> Result<String, String> {
        let mut parts = reference.splitn(3, ':');
        let id = parts.next().unwrap_or_default();
        let key = parts.next().filter(|k| !k.is_empty());
        let secret = self.context.aws.secrets.get(id).ok_or_else(|| {
            format!("the secret {id} is not in the local Secrets Manager (--secrets FILE)")
        })?;
        let value = match key {
            Some(key) => secret
                .get(key)
                .cloned()
                .ok_or_else(|| format!("the secret {id} has no key {key}"))?,
            None => secret,
        };
        Ok(match value {
            Value::String(s) => s,
            other => other.to_string(),
        })
    }
}

/// Extracts a zip into `folder`, refusing names that leave it.
///
/// An artifact is data the pipeline produced, not necessarily trusted: an entry named
/// `../x` or `/etc/x` would write outside the build, so it fails the build instead.
fn extract(bytes: &[u8], folder: &Path) -> Result<(), String> {
    std::fs::create_dir_all(folder).map_err(|e| e.to_string())?;
    for (name, data) in crate::zips::unzip(bytes.to_vec()).map_err(|e| e.to_string())? {
        let relative = Path::new(&name);
        if relative.is_absolute()
            || relative
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(format!(
                "the entry {name} would land outside the build's folder"
            ));
        }
        if name.ends_with('/') {
            std::fs::create_dir_all(folder.join(relative)).map_err(|e| e.to_string())?;
            continue;
        }
        let path = folder.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&path, data).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The files an artifact takes, as (name in the zip, bytes).
///
/// Globs are relative to `base-directory` (the source directory when absent), as CodeBuild
/// reads them; an artifact that matches nothing fails the build, as CodeBuild's does, rather
/// than deliver an empty zip to the next stage.
fn collect_files(source: &Path, spec: &ArtifactFiles) -> Result<Vec<(String, Vec<u8>)>, String> {
    let base = match &spec.base_directory {
        Some(dir) => source.join(dir),
        None => source.to_path_buf(),
    };
    let globs = spec
        .files
        .iter()
        .map(|p| {
            Glob::new(p.trim_start_matches("./"))
                .map_err(|e| format!("artifacts.files: `{p}`: {}", e.reason))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut found = Vec::new();
    let mut stack = vec![base.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let relative = path
                    .strip_prefix(&base)
                    .map_err(|e| e.to_string())?
                    .to_string_lossy()
                    .replace('\\', "/");
                if globs.iter().any(|g| g.is_match(&relative)) {
                    let name = if spec.discard_paths {
                        relative.rsplit('/').next().unwrap_or(&relative).to_string()
                    } else {
                        relative.clone()
                    };
                    found.push((name, std::fs::read(&path).map_err(|e| e.to_string())?));
                }
            }
        }
    }
    if found.is_empty() {
        return Err(format!(
            "no file under {} matches artifacts.files {:?}",
            base.display(),
            spec.files
        ));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

/// Runs the phases, each in its own `bash` that picks up the environment and folder the last
/// one left; the build stops at a failed phase unless it says `on-failure: CONTINUE` (a failed
/// `build` still runs `post_build`, with `CODEBUILD_BUILD_SUCCEEDING=0`, as CodeBuild does).
fn run_phases(
    phases: &[Phase],
    work: &Path,
    env: Vec<(String, String)>,
    timeout: Duration,
    echo: Option<Option<crate::pipeline::output::Sink>>,
    container: Option<&BuildContainer>,
    live: Option<&LiveLog>,
) -> Result<BuildRun, String> {
    let env_file = work.join("env.sh");
    let pwd_file = work.join("pwd");
    let source = env
        .iter()
        .rev()
        .find(|(k, _)| k == "CODEBUILD_SRC_DIR")
        .map(|(_, v)| PathBuf::from(v))
        .unwrap_or_else(|| work.to_path_buf());
    std::fs::create_dir_all(&source).map_err(|e| e.to_string())?;
    std::fs::write(&pwd_file, source.display().to_string()).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    let mut groups = ProcessGroups::default();
    let mut log = Vec::new();
    let mut failed: Option<String> = None;
    for phase in phases {
        let build_failed = failed.is_some();
        if build_failed && phase.name != "post_build" {
            continue;
        }
        // The phase's commands run in one shell (`cd` and `export` carry over, as in buildspec
        // 0.2). The EXIT trap runs `finally` and saves the environment and folder for the next
        // phase however the shell ends, even when a command calls `exit`.
        let mut script = String::from("set +e\n__status=0\n__finish() {\n__code=$?\n");
        script
            .push_str("[ $__status -eq 0 ] && [ $__code -ne 0 ] && __status=$__code\n__final=0\n");
        for command in &phase.finally {
            script.push_str(&format!(
                "{command}\n__rc=$?; [ $__rc -ne 0 ] && __final=$__rc\n"
            ));
        }
        script.push_str(&format!(
            "export -p > '{}'\npwd > '{}'\n[ $__status -ne 0 ] && exit $__status\nexit $__final\n}}\ntrap __finish EXIT\n",
            env_file.display(),
            pwd_file.display()
        ));
        script.push_str(&format!("[ -f '{0}' ] && . '{0}'\n", env_file.display()));
        script.push_str(&format!("cd \"$(cat '{}')\"\n", pwd_file.display()));
        script.push_str(&format!(
            "export CODEBUILD_BUILD_SUCCEEDING={}\n",
            if build_failed { 0 } else { 1 }
        ));
        for command in &phase.commands {
            script.push_str(&format!(
                "if [ $__status -eq 0 ]; then\nprintf '%s\\n' '[Container] Running command {}'\n{command}\n__rc=$?; [ $__rc -ne 0 ] && __status=$__rc\nfi\n",
                // Shown verbatim, as CodeBuild shows it: in single quotes nothing expands.
                command.lines().next().unwrap_or_default().replace('\'', "'\\''")
            ));
        }
        script.push_str("exit 0\n");
        let left = deadline.saturating_duration_since(Instant::now());
        let (status, output) = run_script(&script, &env, work, left, container, &mut groups)?;
        let lines: Vec<String> = output.lines().map(str::to_owned).collect();
        let logged = log.len();
        log.push(format!(
            "[Container] Entering phase {}",
            phase.name.to_uppercase()
        ));
        log.extend(lines);
        match status {
            Some(0) => log.push(format!(
                "[Container] Phase complete: {} State: SUCCEEDED",
                phase.name.to_uppercase()
            )),
            Some(code) => {
                log.push(format!(
                    "[Container] Phase complete: {} State: FAILED (exit status {code})",
                    phase.name.to_uppercase()
                ));
                if !phase.continue_on_failure && failed.is_none() {
                    failed = Some(phase.name.to_string());
                }
            }
            None => {
                log.push(format!(
                    "[Container] Phase {} timed out",
                    phase.name.to_uppercase()
                ));
                show_phase(&log[logged..], echo.as_ref(), live);
                return Ok(BuildRun {
                    failed: Some(format!(
                        "{} (its time limit, {} s, ran out: the process group was killed)",
                        phase.name,
                        timeout.as_secs()
                    )),
                    log,
                    env: Vec::new(),
                });
            }
        }
        show_phase(&log[logged..], echo.as_ref(), live);
    }
    let exported = std::fs::read_to_string(&env_file).unwrap_or_default();
    Ok(BuildRun {
        failed,
        log,
        env: parse_exports(&exported),
    })
}

/// Runs one phase's script with a clean environment; `None` when `limit` ran out (the whole
/// process group is killed).
fn run_script(
    script: &str,
    env: &[(String, String)],
    work: &Path,
    limit: Duration,
    container: Option<&BuildContainer>,
    groups: &mut ProcessGroups,
) -> Result<(Option<i32>, String), String> {
    use std::os::unix::process::CommandExt;
    let log_path = work.join("phase.log");
    let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
    let mut command = match container {
        Some(container) => container.command(script, env, work),
        None => {
            let mut bash = Command::new("bash");
            bash.arg("-c").arg(script);
            bash
        }
    };
    let mut child = command
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(work)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| match container {
            Some(c) => format!("cannot run {}: {e}", c.engine.program()),
            None => format!("cannot run bash: {e}"),
        })?;
    groups.0.push(child.id());
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => break Some(status.code().unwrap_or(1)),
            None if Instant::now() >= deadline => {
                kill_group(child.id());
                let _ = child.wait();
                if let Some(container) = container {
                    container.remove();
                }
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let output = std::fs::read(&log_path).map_err(|e| e.to_string())?;
    Ok((status, String::from_utf8_lossy(&output).into_owned()))
}

/// A phase's lines, as it ends, in the terminal (`--verbose`) and the console.
fn show_phase(
    lines: &[String],
    echo: Option<&Option<crate::pipeline::output::Sink>>,
    live: Option<&LiveLog>,
) {
    if let Some(sink) = echo {
        for line in lines {
            crate::pipeline::output::line_to(sink.as_ref(), format!("    │ {line}"));
        }
    }
    if let Some(live) = live {
        live.append(lines);
    }
}

/// Where a build's lines go as each phase ends: its action's log in the console, so a long
/// build shows its progress before it ends.
struct LiveLog {
    console: crate::console::Console,
    execution: String,
    stage: String,
    action: String,
}

impl LiveLog {
    fn append(&self, lines: &[String]) {
        self.console.update(|record| {
            record
                .execution_mut(&self.execution)
                .action_mut(&self.stage, &self.action)
                .logs
                .extend_from_slice(lines);
        });
    }
}

/// The process groups of a build's phases. A phase may leave a process in the background
/// for a later phase (a server its tests call), as CodeBuild's phases share one container;
/// when the build ends, however it ends, every process it left is killed, as CodeBuild's
/// container is removed.
#[derive(Default)]
struct ProcessGroups(Vec<u32>);

impl Drop for ProcessGroups {
    fn drop(&mut self) {
        for group in &self.0 {
            kill_group(*group);
        }
    }
}

fn kill_group(group: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// `export -p` output (`declare -x NAME="value"`) as (name, value).
///
/// bash writes every exported variable this way, with `"`, `\`, `$` and `` ` `` escaped by a
/// backslash; the exported variables a buildspec names are read from here after the last phase.
fn parse_exports(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("declare -x ")?;
            let (name, value) = rest.split_once('=')?;
            let value = value.strip_prefix('"')?.strip_suffix('"')?;
            let mut out = String::new();
            let mut chars = value.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(next) = chars.next() {
                        out.push(next);
                    }
                } else {
                    out.push(c);
                }
            }
            Some((name.to_string(), out))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exports_are_read_back_with_their_escapes() {
        let vars = parse_exports(
            "declare -x A=\"1\"\ndeclare -x B=\"say \\\"hi\\\" \\$x\"\ndeclare -x C\n",
        );
        assert_eq!(
            vars,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "say \"hi\" $x".into())
            ]
        );
    }

    #[test]
    fn an_artifact_entry_leaving_the_build_folder_is_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("build/src");
        for name in [
            "../../escape.txt",
            "/tmp/abs-escape.txt",
            "ok/../../../x.txt",
        ] {
            let zip = crate::zips::zip_files(&[
                ("fine.txt".to_string(), b"fine".to_vec()),
                (name.to_string(), b"hostile".to_vec()),
            ])
            .unwrap();
            let error = extract(&zip, &folder).unwrap_err();
            assert!(
                error.contains("outside the build's folder"),
                "{name}: {error}"
            );
        }
        assert!(!dir.path().join("escape.txt").exists());
        assert!(!dir.path().join("x.txt").exists());
    }

    #[test]
    fn symlinks_a_build_makes_are_not_followed_into_its_artifact() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret.txt"), "host file").unwrap();
        let source = dir.path().join("src");
        std::fs::create_dir_all(&source).unwrap();
        std::fs::write(source.join("app.js"), "code").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), source.join("link.txt")).unwrap();
        std::os::unix::fs::symlink(dir.path(), source.join("up")).unwrap();
        let files = collect_files(
            &source,
            &ArtifactFiles {
                files: vec!["**/*".into()],
                ..Default::default()
            },
        )
        .unwrap();
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["app.js"]);
    }

    proptest! {
        #[test]
        fn any_export_text_is_read_without_panicking(text in "\\PC{0,200}") {
            let _ = parse_exports(&text);
        }
    }
}
