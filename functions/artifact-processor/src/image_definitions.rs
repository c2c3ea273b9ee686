//! `image_definitions`: `imagedefinitions.json` (ECS standard) or `imageDetail.json` (ECS
//! blue/green) in an output artifact.

use crate::params::{ImageDefinitionsStep, ImageFormat};
use crate::StepReport;
use pipeline_ext::job::JobError;
use serde_json::json;

pub fn check(step: &ImageDefinitionsStep) -> Result<(), JobError> {
    if step.containers.is_empty() {
        return Err(JobError::config(
            "image_definitions: `containers` is empty; map container names to image URIs",
        ));
    }
    if step.format == ImageFormat::Imagedetail && step.containers.len() != 1 {
        return Err(JobError::config(format!(
            "image_definitions: format `imagedetail` takes exactly one container, got {}",
            step.containers.len()
        )));
    }
    for (name, uri) in &step.containers {
        check_container_name(name)?;
        check_image_uri(name, uri)?;
    }
    Ok(())
}

fn check_container_name(name: &str) -> Result<(), JobError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(JobError::config(format!(
            "image_definitions: container name `{name}` is invalid: 1-255 letters, digits, hyphens and underscores"
        )))
    }
}

/// `registry/repository[:tag][@sha256:digest]`, as ECS accepts.
fn check_image_uri(container: &str, uri: &str) -> Result<(), JobError> {
    let bad = |why: &str| {
        Err(JobError::config(format!(
            "image_definitions: image URI `{uri}` of container `{container}` is invalid: {why}"
        )))
    };
    if uri.is_empty() || uri.len() > 2048 {
        return bad("empty or longer than 2048 characters");
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("it contains whitespace");
    }
    let (rest, digest) = match uri.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (uri, None),
    };
    if let Some(digest) = digest {
        let valid = digest.strip_prefix("sha256:").is_some_and(|h| {
            h.len() == 64
                && h.chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        });
        if !valid {
            return bad("the digest must be sha256: and 64 lowercase hex digits");
        }
    }
    let last = rest.rsplit('/').next().unwrap_or(rest);
    let (repository_tail, tag) = match last.split_once(':') {
        Some((repo, tag)) => (repo, Some(tag)),
        None => (last, None),
    };
    if let Some(tag) = tag {
        let valid = !tag.is_empty()
            && tag.len() <= 128
            && tag
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid {
            return bad("the tag must be 1-128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`");
        }
    }
    if repository_tail.is_empty() || repository_tail.chars().any(|c| c.is_ascii_uppercase()) {
        return bad("the repository name must be lowercase and not empty");
    }
    Ok(())
}

pub async fn run(
    job: &crate::ProcessorJob,
    step: &ImageDefinitionsStep,
) -> Result<StepReport, JobError> {
    let (file, body) = match step.format {
        ImageFormat::Imagedefinitions => {
            let list: Vec<_> = step
                .containers
                .iter()
                .map(|(name, uri)| json!({"name": name, "imageUri": uri}))
                .collect();
            ("imagedefinitions.json", serde_json::to_vec_pretty(&list))
        }
        ImageFormat::Imagedetail => {
            let uri = step.containers.values().next().cloned().unwrap_or_default();
            (
                "imageDetail.json",
                serde_json::to_vec_pretty(&json!({"ImageURI": uri})),
            )
        }
    };
    let body = body.map_err(|e| JobError::failed(format!("cannot serialize {file}: {e}")))?;
    let store = job.artifacts()?;
    let mut writer = store.create(job.output(&step.output)?);
    let work = writer.add_file(file, &body).await.map_err(JobError::from);
    let ((), written) = crate::transform::finish_or_abort(writer, work).await?;
    Ok(StepReport {
        summary: format!(
            "{file} with {} container(s) into `{}` (s3://{}/{})",
            step.containers.len(),
            step.output,
            written.bucket,
            written.key
        ),
        variables: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ecr_uris_with_tags_and_digests() {
        for uri in [
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:abc123",
            "public.ecr.aws/nginx/nginx:1.27",
            "nginx",
            "localhost:5000/team/app:v1.2.3",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(check_image_uri("web", uri).is_ok(), "{uri}");
        }
    }

    #[test]
    fn refuses_malformed_uris_and_names() {
        for uri in [
            "",
            "web app:1",
            "repo/Web:1",
            "repo/web:-bad",
            "repo/web@sha256:xyz",
        ] {
            assert!(check_image_uri("web", uri).is_err(), "{uri}");
        }
        assert!(check_container_name("web app").is_err());
        assert!(check_container_name("web_app-1").is_ok());
    }
}
