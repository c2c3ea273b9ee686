//! `render`: replaces `{{NAME}}` and `<NAME>` placeholders in the named files of an artifact.
//!
//! `{{NAME}}` (spaces inside the braces allowed) takes any name of letters, digits, `_`, `.`
//! and `-`. `<NAME>` is CodePipeline's ECS convention (`<IMAGE1_NAME>`), so it only takes
//! upper-case names: `<div>` in an HTML file is not a placeholder. A placeholder without a value
//! fails the step, listing every one missing.

use crate::globs::GlobList;
use crate::params::RenderStep;
use crate::transform::{copy_data, finish_or_abort};
use crate::StepReport;
use indexmap::IndexMap;
use pipeline_ext::job::JobError;
use std::collections::BTreeSet;

/// Rendered files are read whole: they are templates, not payloads.
const MAX_TEMPLATE_BYTES: usize = 16 * 1024 * 1024;

pub fn check(step: &RenderStep) -> Result<(), JobError> {
    if step.files.is_empty() {
        return Err(JobError::config(
            "render: `files` is empty; name the files to render",
        ));
    }
    GlobList::new("render.files", &step.files)?;
    Ok(())
}

/// The text with known placeholders replaced, and the names of unknown ones.
#[cfg(test)]
pub fn render(text: &str, values: &IndexMap<String, String>) -> (String, BTreeSet<String>) {
    render_within(text, values, usize::MAX).unwrap_or_default()
}

/// Renders like `render` (the test-only wrapper), giving up (`None`) as soon as the output would pass `max_len` bytes: a few
/// placeholders with long values can turn a small template into gigabytes.
pub fn render_within(
    text: &str,
    values: &IndexMap<String, String>,
    max_len: usize,
) -> Option<(String, BTreeSet<String>)> {
    let mut out = String::with_capacity(text.len().min(max_len));
    let mut missing = BTreeSet::new();
    let mut rest = text;
    while let Some(pos) = rest.find(['{', '<']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        let found = if let Some(inner) = tail.strip_prefix("{{") {
            inner.find("}}").and_then(|end| {
                let name = inner[..end].trim();
                is_brace_name(name).then(|| (name, 2 + end + 2))
            })
        } else if let Some(inner) = tail.strip_prefix('<') {
            inner.find('>').and_then(|end| {
                let name = &inner[..end];
                is_angle_name(name).then_some((name, 1 + end + 1))
            })
        } else {
            None
        };
        match found {
            Some((name, len)) => {
                match values.get(name) {
                    Some(value) => {
                        if out.len().saturating_add(value.len()) > max_len {
                            return None;
                        }
                        out.push_str(value)
                    }
                    None => {
                        missing.insert(name.to_string());
                        out.push_str(&tail[..len]);
                    }
                }
                rest = &tail[len..];
            }
            None => {
                let ch = tail.chars().next().map(char::len_utf8).unwrap_or(1);
                out.push_str(&tail[..ch]);
                rest = &tail[ch..];
            }
        }
    }
    out.push_str(rest);
    (out.len() <= max_len).then_some((out, missing))
}

fn is_brace_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn is_angle_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

pub async fn run(job: &crate::ProcessorJob, step: &RenderStep) -> Result<StepReport, JobError> {
    let templates = GlobList::new("render.files", &step.files)?;
    let store = job.artifacts()?;
    let reader = store.open(job.input(&step.input)?).await?;
    let mut entries = reader.stream().await?;
    let mut writer = store.create(job.output(&step.output)?);
    let work = async {
        let mut rendered = Vec::new();
        let mut copied = 0usize;
        let mut missing: BTreeSet<String> = BTreeSet::new();
        let mut matched: BTreeSet<&str> = BTreeSet::new();
        while let Some(entry) = entries.next_entry().await? {
            if entry.is_dir {
                continue;
            }
            writer.start_file(&entry.name).await?;
            match templates.first_match(&entry.name) {
                Some(pattern) => {
                    matched.insert(pattern);
                    let bytes = entries.read_to_vec(MAX_TEMPLATE_BYTES).await?;
                    let text = String::from_utf8(bytes).map_err(|_| {
                        JobError::config(format!("render: `{}` is not UTF-8 text", entry.name))
                    })?;
                    // The template and what it renders to count against the job's budget,
                    // beside what the reader and writer already hold.
                    let budget = store.budget();
                    let _template = budget.reserve(text.len() as u64, "render: the template")?;
                    let room = budget.limit().saturating_sub(budget.used());
                    let (out, unknown) =
                        render_within(&text, &step.values, usize::try_from(room).unwrap_or(usize::MAX))
                            .ok_or_else(|| {
                                JobError::failed(format!(
                                    "render: `{}` would grow past {} MiB once rendered, the share of the function's memory one file may take; shorten the values or raise the function's memory size",
                                    entry.name,
                                    budget.limit() >> 20
                                ))
                            })?;
                    let _rendered = budget.reserve(out.len() as u64, "render: the rendered file")?;
                    missing.extend(
                        unknown
                            .into_iter()
                            .map(|name| format!("{name} (in {})", entry.name)),
                    );
                    writer.write(out.as_bytes()).await?;
                    rendered.push(entry.name.clone());
                }
                None => {
                    copy_data(&mut entries, &mut writer).await?;
                    copied += 1;
                }
            }
        }
        let unmatched: Vec<&str> = templates
            .patterns()
            .filter(|p| !matched.contains(p))
            .collect();
        if !unmatched.is_empty() {
            return Err(JobError::config(format!(
                "render: no file of `{}` matches {unmatched:?}",
                step.input
            )));
        }
        if !missing.is_empty() {
            let list: Vec<String> = missing.into_iter().collect();
            return Err(JobError::config(format!(
                "render: {} placeholder(s) have no value in `values`: {}",
                list.len(),
                list.join(", ")
            )));
        }
        Ok((rendered, copied))
    }
    .await;
    let ((rendered, copied), written) = finish_or_abort(writer, work).await?;
    Ok(StepReport {
        summary: format!(
            "rendered {} ({copied} other files copied) into `{}` (s3://{}/{})",
            rendered.join(", "),
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

    fn values(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn replaces_both_placeholder_styles() {
        let (out, missing) = render(
            r#"{"image": "<IMAGE1_NAME>", "env": "{{ STAGE }}", "x": "{{STAGE}}"}"#,
            &values(&[("IMAGE1_NAME", "web:1"), ("STAGE", "prod")]),
        );
        assert_eq!(out, r#"{"image": "web:1", "env": "prod", "x": "prod"}"#);
        assert!(missing.is_empty());
    }

    #[test]
    fn html_tags_are_not_placeholders_and_missing_ones_are_listed() {
        let (out, missing) = render("<div>{{A}} <B_2> <p> {{ c.d }}</div> a < b", &values(&[]));
        assert_eq!(out, "<div>{{A}} <B_2> <p> {{ c.d }}</div> a < b");
        assert_eq!(missing.into_iter().collect::<Vec<_>>(), ["A", "B_2", "c.d"]);
    }

    #[test]
    fn keeps_multibyte_text() {
        let (out, _) = render("héllo {{X}} ✓ <Y", &values(&[("X", "wörld")]));
        assert_eq!(out, "héllo wörld ✓ <Y");
    }
}
