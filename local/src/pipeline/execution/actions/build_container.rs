//! `--container-engine docker|podman`: a build's phases run in the project's image instead of
//! on the host.
//!
//! Each phase's script runs as `ENGINE run --rm` of the image, with the build's folder mounted
//! at the same path (so `CODEBUILD_SRC_DIR`, the saved environment and the artifacts' paths
//! mean the same inside and out), the host's network (the local endpoints are on loopback) and
//! the build's variables passed by name. CodeBuild's curated images (`aws/codebuild/…`) are not
//! on a public registry under that name: build or tag one under it, or name another image in
//! the project. A machine without the engine gets a clear refusal, never a host run it did not
//! ask for.

use std::path::Path;
use std::process::Command;

/// The image a `Commands` action runs in, as CodePipeline's runs on Amazon Linux 2023.
pub(super) const COMMANDS_IMAGE: &str = "public.ecr.aws/amazonlinux/amazonlinux:2023";

/// A container engine the person chose.
#[derive(
    clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize,
)]
pub enum ContainerEngine {
    /// Docker's CLI.
    Docker,
    /// Podman's CLI (the same `run` flags).
    Podman,
}

impl ContainerEngine {
    /// The command's name.
    pub fn program(self) -> &'static str {
        match self {
            ContainerEngine::Docker => "docker",
            ContainerEngine::Podman => "podman",
        }
    }

    /// Whether the engine answers here; the refusal says what to do otherwise.
    pub fn check_available(self) -> Result<(), String> {
        let program = self.program();
        let answers = Command::new(program)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if answers {
            Ok(())
        } else {
            Err(format!(
                "--container-engine {program}: `{program}` is not on this machine (or `{program} --version` fails); install it, or leave --container-engine out to run the build's commands on the host"
            ))
        }
    }
}

/// Where a build's phases run in a container.
#[derive(Clone, Debug)]
pub(super) struct BuildContainer {
    /// The engine.
    pub engine: ContainerEngine,
    /// The image.
    pub image: String,
    /// The container's name, so a build that runs out of time is removed, not just detached.
    pub name: String,
}

impl BuildContainer {
    /// `ENGINE run` of `script` with `env` passed by name (values stay out of the process list).
    pub fn command(&self, script: &str, env: &[(String, String)], work: &Path) -> Command {
        let mut command = Command::new(self.engine.program());
        let mount = format!("{0}:{0}", work.display());
        command.args(["run", "--rm", "--network", "host", "--name", &self.name]);
        command.args(["-v", &mount, "-w", &work.display().to_string()]);
        for (name, _) in env.iter().filter(|(name, _)| name != "PATH") {
            command.args(["-e", name]);
        }
        command.arg(&self.image).args(["bash", "-c", script]);
        command
    }

    /// Removes the container (after the time limit killed its client).
    pub fn remove(&self) {
        let _ = Command::new(self.engine.program())
            .args(["rm", "-f", &self.name])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}
