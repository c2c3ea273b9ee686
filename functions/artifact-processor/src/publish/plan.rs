//! What a publish puts where: each file of the artifact as itself, as a compressed variant
//! beside or in place of its plain name, and the copies `compress` makes, with their headers.

use super::encodings::{fingerprint, role_of, to_generate, Encoding, Role};
use super::headers::{content_type, CacheRules, HEADER_RULES_METADATA};
use super::releases::{RecordState, RECORD_NAME};
use super::target::{Existing, SHA256_METADATA};
use super::upload::{ChangedFile, Generated, SMALL_FILE};
use crate::digest::FileDigest;
use crate::globs::GlobList;
use crate::params::{EncodedLayout, PublishStep};
use pipeline_ext::artifacts::{ObjectOptions, Reservation, ZipEntry};
use pipeline_ext::job::JobError;
use std::collections::{BTreeMap, HashMap, HashSet};

/// What one file to publish holds beside its key and name: its record, headers and metadata.
const FILE_RECORD_BYTES: usize = 320;

/// Every file the publish will have under the prefix, before comparing.
pub(super) struct PublishPlan {
    /// One per entry published (its content, or copies made from it).
    pub files: Vec<ChangedFile>,
    /// Every key the site will have.
    pub wanted: HashSet<String>,
    /// Name → fingerprint of each copy made at publish time.
    pub generated: BTreeMap<String, String>,
    /// Variants not published because another stands in the plain name's place.
    pub folded: usize,
    /// Files `compress` names that are too large to compress in memory.
    pub too_large_to_compress: usize,
    /// Copies made at publish time that are new or changed.
    pub to_compress: usize,
}

/// The step's rules, compiled once.
pub(super) struct PlanRules<'a> {
    /// The step's parameters.
    pub step: &'a PublishStep,
    /// `cache_control` and `default_cache_control`, compiled.
    pub cache: &'a CacheRules,
    /// `compress`, compiled.
    pub compress: &'a GlobList,
    /// `entry_points`.
    pub entry_points: &'a GlobList,
    /// The digest every object of this publish records (`x-amz-meta-publish-headers`).
    pub header_rules: &'a str,
    /// The objects' header rules changed: every copy is made again.
    pub refresh_headers: bool,
}

impl PlanRules<'_> {
    fn options(&self, plain: &str, encoding: Option<Encoding>) -> ObjectOptions {
        ObjectOptions {
            content_type: Some(content_type(plain)),
            cache_control: self.cache.for_path(plain),
            content_encoding: encoding.map(|e| e.header().to_string()),
            metadata: vec![(HEADER_RULES_METADATA.into(), self.header_rules.to_string())],
            ..ObjectOptions::default()
        }
    }
}

/// Plans the publish of `entries` (with their digests) under `prefix`.
pub(super) fn plan(
    entries: &[ZipEntry],
    digests: Vec<FileDigest>,
    prefix: &str,
    rules: &PlanRules<'_>,
    existing: &HashMap<String, Existing>,
    record: &RecordState,
    held: &mut Reservation,
) -> Result<PublishPlan, JobError> {
    let names: HashSet<&str> = entries
        .iter()
        .filter(|e| !e.is_dir)
        .map(|e| e.name.as_str())
        .collect();
    if names.contains(RECORD_NAME) {
        return Err(JobError::config(format!(
            "the artifact holds `{RECORD_NAME}`, the name publish keeps its release record under; rename or drop that file"
        )));
    }
    let layout = rules.step.precompressed;
    let mut plan = PublishPlan {
        files: Vec::new(),
        wanted: HashSet::new(),
        generated: BTreeMap::new(),
        folded: 0,
        too_large_to_compress: 0,
        to_compress: 0,
    };
    for (index, (entry, digest)) in entries.iter().zip(digests).enumerate() {
        if entry.is_dir {
            continue;
        }
        let name = entry.name.as_str();
        let (key_name, plain, encoding) = match role_of(name, &names, layout) {
            Role::Plain => (name, name, None),
            Role::VariantBeside { plain, encoding } => (
                name,
                names.get(plain.as_str()).copied().unwrap_or(name),
                Some(encoding),
            ),
            Role::VariantInPlace { plain, encoding } => {
                let plain = names.get(plain.as_str()).copied().unwrap_or(name);
                (plain, plain, Some(encoding))
            }
            Role::Replaced => continue,
            Role::Folded => {
                plan.folded += 1;
                continue;
            }
        };
        let key = format!("{prefix}{key_name}");
        // The key twice (wanted, the file), the name, and the file's headers.
        held.grow(
            (2 * key.len() + name.len() + FILE_RECORD_BYTES) as u64,
            "the publish's list of files",
        )?;
        let mut options = rules.options(plain, encoding);
        options
            .metadata
            .push((SHA256_METADATA.into(), digest.sha256_hex()));
        let mut file = ChangedFile {
            index,
            name: name.to_string(),
            key: key.clone(),
            size: entry.size,
            digest,
            options,
            upload_plain: true,
            last: super::is_entry_point(rules.entry_points, key_name),
            generated: Vec::new(),
        };
        if encoding.is_none() && rules.compress.matches(name) {
            if entry.size > SMALL_FILE {
                plan.too_large_to_compress += 1;
            } else {
                for made in to_generate(name, &names, layout) {
                    let in_place = layout != EncodedLayout::SideBySide;
                    let made_name = if in_place {
                        name.to_string()
                    } else {
                        format!("{name}{}", made.suffix())
                    };
                    let made_key = format!("{prefix}{made_name}");
                    let level = made.level(&rules.step.compress_level);
                    let from = fingerprint(&file.digest.sha256_hex(), made, level);
                    let current = !rules.refresh_headers
                        && existing.contains_key(&made_key)
                        && record.generated_from(&made_name) == Some(from.as_str());
                    if in_place {
                        // The plain name holds the compressed copy, never the plain bytes.
                        file.upload_plain = false;
                    }
                    plan.generated.insert(made_name, from);
                    plan.wanted.insert(made_key.clone());
                    if !current {
                        plan.to_compress += 1;
                        file.generated.push(Generated {
                            key: made_key,
                            encoding: made,
                            level,
                            options: rules.options(name, Some(made)),
                        });
                    }
                }
            }
        }
        plan.wanted.insert(key);
        plan.files.push(file);
    }
    Ok(plan)
}
