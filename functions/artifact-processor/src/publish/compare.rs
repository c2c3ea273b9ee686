//! Sorting the files of a publish into changed and unchanged: the listing decides when it
//! can, a `HeadObject` when it cannot, and unchanged files get new headers when the rules
//! changed.

use super::target::{Existing, Fate, Target};
use super::upload::ChangedFile;
use super::window::RequestWindow;
use pipeline_ext::job::JobError;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::task::JoinSet;

/// The files to upload, and what became of the others.
pub(super) struct Compared {
    /// In archive order.
    pub changed: Vec<ChangedFile>,
    pub headers_only: Vec<String>,
    pub unchanged: usize,
}

/// What a comparison task found: the file's fate, and the file when something of it must be
/// uploaded (its content, or only copies made from it).
type Found = (Option<Fate>, Option<ChangedFile>);

impl Compared {
    fn record(&mut self, (fate, file): Found) {
        match fate {
            Some(Fate::HeadersOnly(key)) => self.headers_only.push(key),
            Some(Fate::Unchanged) => self.unchanged += 1,
            None => {}
        }
        if let Some(file) = file {
            self.changed.push(file);
        }
    }
}

/// The file after its content was found unchanged: still to upload when copies made from it
/// changed.
fn copies_only(mut file: ChangedFile) -> Option<ChangedFile> {
    file.upload_plain = false;
    (!file.generated.is_empty()).then_some(file)
}

/// Sorts the files into changed and unchanged, asking S3 (`HeadObject`) only when the listing
/// cannot tell, and refreshes the headers of unchanged files when the rules changed.
pub(super) async fn compare(
    target: &Arc<Target>,
    files: Vec<ChangedFile>,
    existing: &HashMap<String, Existing>,
    window: &Arc<RequestWindow>,
) -> Result<Compared, JobError> {
    let mut compared = Compared {
        changed: Vec::new(),
        headers_only: Vec::new(),
        unchanged: 0,
    };
    let mut checks: JoinSet<Result<Found, JobError>> = JoinSet::new();
    let joined = |done: Result<Result<Found, JobError>, tokio::task::JoinError>| {
        done.map_err(|e| JobError::failed(format!("comparison task failed: {e}")))?
    };
    for file in files {
        if !file.upload_plain {
            // Only copies made from it are published: they decided already.
            compared.record((None, copies_only(file)));
            continue;
        }
        let Some(prior) = existing.get(&file.key).cloned() else {
            compared.record((None, Some(file)));
            continue;
        };
        if prior.size != file.size as i64 {
            compared.record((None, Some(file)));
            continue;
        }
        let listed_same = prior.etag.as_deref() == Some(file.digest.md5_hex().as_str());
        if listed_same && !target.refresh_headers {
            // The listing decides: no request, no task.
            compared.record((Some(Fate::Unchanged), copies_only(file)));
            continue;
        }
        // A slot is taken before the task exists, so no more tasks are alive than requests
        // the window allows (each holds a request's state).
        let slot = window
            .slot()
            .await
            .map_err(|_| JobError::failed("the comparison pool was closed"))?;
        let target = target.clone();
        checks.spawn(async move {
            let _slot = slot;
            if listed_same || target.holds_content(&file.key, &file.digest).await? {
                let fate = target.keep(&file.key, file.options.clone()).await?;
                Ok((Some(fate), copies_only(file)))
            } else {
                Ok((None, Some(file)))
            }
        });
        while let Some(done) = checks.try_join_next() {
            compared.record(joined(done)?);
        }
    }
    while let Some(done) = checks.join_next().await {
        compared.record(joined(done)?);
    }
    compared.changed.sort_by_key(|f| f.index);
    compared.headers_only.sort();
    Ok(compared)
}
