//! The data phase of a publish: the files that changed are read again from the artifact (only
//! their byte ranges, in parallel streams) and uploaded, small ones from memory with many in
//! flight, large ones in parts. Their digests are known from the verify pass, so nothing is
//! hashed twice and a large file is not spooled to disk.

use super::encodings::{compress, Encoding};
use super::target::Target;
use super::target::SHA256_METADATA;
use super::window::{RequestWindow, Slot};
use crate::digest::{Digests, FileDigest, Sha256Check};
use pipeline_ext::artifacts::{
    ArtifactError, ArtifactReader, EntryStream, ObjectOptions, ObjectUpload, DEFAULT_PART_SIZE,
    PARALLEL_READS,
};
use pipeline_ext::job::{Activity, JobError};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

/// Files up to this size are uploaded from memory with one `PutObject`.
pub(super) const SMALL_FILE: u64 = 8 * 1024 * 1024;
/// Bytes of file data held in memory at once, across all uploads in flight.
const MEMORY_BUDGET_KIB: u32 = 32 * 1024;
/// Bytes of entry pages held back, read, until every other file is up.
const PARKED_KIB: u32 = 16 * 1024;
/// What a multipart upload holds: the part being filled and the one in flight.
const LARGE_FILE_KIB: u32 = (2 * DEFAULT_PART_SIZE / 1024) as u32;

/// A file whose content must be uploaded.
pub(super) struct ChangedFile {
    /// Its position in the archive's entries.
    pub index: usize,
    /// Its name in the archive.
    pub name: String,
    /// Its key.
    pub key: String,
    /// Its size.
    pub size: u64,
    /// Its digests from the verify pass.
    pub digest: FileDigest,
    /// Its headers.
    pub options: ObjectOptions,
    /// The entry's bytes go to `key` (false when only files made from it changed).
    pub upload_plain: bool,
    /// An entry page: uploaded only after every file that is not one.
    pub last: bool,
    /// Files made from it at publish time that must be made and uploaded.
    pub generated: Vec<Generated>,
}

/// A file compressed from an entry at publish time.
pub(super) struct Generated {
    /// Its key.
    pub key: String,
    /// How it is compressed.
    pub encoding: Encoding,
    /// At which level.
    pub level: u32,
    /// Its headers (the SHA-256 of its bytes is added when they are made).
    pub options: ObjectOptions,
}

/// Why the upload phase stopped, and how many files it had uploaded by then.
pub(super) struct UploadFailure {
    /// The first failure.
    pub error: JobError,
    /// Files uploaded before it.
    pub uploaded: usize,
}

/// What the upload streams share.
struct Shared {
    /// The site bucket.
    target: Arc<Target>,
    /// Requests in flight.
    window: Arc<RequestWindow>,
    /// Memory for bodies, in KiB.
    budget: Arc<Semaphore>,
    /// Keys uploaded so far.
    uploaded: Mutex<Vec<String>>,
    /// What the job is doing, for an overrun's message.
    activity: Activity,
    /// Memory for entry pages read in the one pass and held until the rest is up, in KiB.
    park_budget: Arc<Semaphore>,
    /// Entry pages read and held, with their memory.
    parked: Mutex<Vec<(ChangedFile, Vec<u8>, OwnedSemaphorePermit)>>,
    /// Entry pages for a second pass (large, or past the parking budget).
    later: Mutex<Vec<ChangedFile>>,
}

impl Shared {
    /// Notes keys as uploaded.
    fn record(&self, keys: Vec<String>) {
        if let Ok(mut uploaded) = self.uploaded.lock() {
            uploaded.extend(keys);
        }
    }

    /// The keys uploaded.
    fn uploaded(&self) -> Vec<String> {
        self.uploaded.lock().map(|u| u.clone()).unwrap_or_default()
    }

    /// Memory for a body and a request slot, waiting for both.
    async fn permits(&self, kib: u32) -> Result<(OwnedSemaphorePermit, Slot), JobError> {
        let closed = |_| JobError::failed("the upload pool was closed");
        let bytes = self
            .budget
            .clone()
            .acquire_many_owned(kib)
            .await
            .map_err(closed)?;
        let slot = self.window.slot().await.map_err(closed)?;
        Ok((bytes, slot))
    }
}

/// Uploads `files` (in archive order) with as many requests in flight as `window` allows,
/// entry pages (`last`) after every other file; returns the keys uploaded. A failure stops
/// every stream and cancels the uploads in flight.
///
/// Entry pages are read in the same pass as the rest and held (up to 16 MiB) until it is up,
/// so keeping them last does not read the archive twice; pages past that are read by a
/// second pass.
pub(super) async fn upload_changed(
    reader: &ArtifactReader,
    target: Arc<Target>,
    files: Vec<ChangedFile>,
    window: Arc<RequestWindow>,
    activity: Activity,
) -> Result<Vec<String>, UploadFailure> {
    let shared = Arc::new(Shared {
        target,
        window,
        budget: Arc::new(Semaphore::new(MEMORY_BUDGET_KIB as usize)),
        uploaded: Mutex::new(Vec::new()),
        activity: activity.clone(),
        park_budget: Arc::new(Semaphore::new(PARKED_KIB as usize)),
        parked: Mutex::new(Vec::new()),
        later: Mutex::new(Vec::new()),
    });
    let indices: Vec<usize> = files.iter().map(|f| f.index).collect();
    let mut files = files.into_iter().peekable();
    let mut streams = JoinSet::new();
    for group in reader.partition(&indices, PARALLEL_READS) {
        let stream = reader.stream_selected(&group);
        let mine: Vec<ChangedFile> = group
            .iter()
            .filter_map(|&i| files.next_if(|f| f.index == i))
            .collect();
        streams.spawn(upload_group(shared.clone(), stream, mine));
    }
    while let Some(done) = streams.join_next().await {
        let error = match done {
            Ok(Ok(())) => continue,
            Ok(Err(error)) => error,
            Err(err) => JobError::failed(format!("an upload stream failed: {err}")),
        };
        // Dropping the set cancels the other streams and their uploads in flight.
        drop(streams);
        return Err(UploadFailure {
            error,
            uploaded: shared.uploaded().len(),
        });
    }
    // Everything else is up: the entry pages held back now.
    let parked = std::mem::take(&mut *shared.parked.lock().unwrap_or_else(|e| e.into_inner()));
    let mut puts: JoinSet<Result<Vec<String>, JobError>> = JoinSet::new();
    for (file, data, held) in parked {
        let slot = match shared.window.slot().await {
            Ok(slot) => slot,
            Err(_) => {
                return Err(UploadFailure {
                    error: JobError::failed("the upload pool was closed"),
                    uploaded: shared.uploaded().len(),
                })
            }
        };
        let target = shared.target.clone();
        shared
            .activity
            .doing(format!("publishing s3://{}/{}", target.bucket, file.key));
        puts.spawn(async move {
            let _held = (held, slot);
            put_file_and_copies(&target, file, data).await
        });
    }
    while let Some(done) = puts.join_next().await {
        match finished(done) {
            Ok(keys) => shared.record(keys),
            Err(error) => {
                return Err(UploadFailure {
                    error,
                    uploaded: shared.uploaded().len(),
                })
            }
        }
    }
    let later = std::mem::take(&mut *shared.later.lock().unwrap_or_else(|e| e.into_inner()));
    let mut uploaded = shared.uploaded();
    if !later.is_empty() {
        let later = later
            .into_iter()
            .map(|file| ChangedFile {
                last: false,
                ..file
            })
            .collect();
        let second = Box::pin(upload_changed(
            reader,
            shared.target.clone(),
            later,
            shared.window.clone(),
            activity,
        ));
        match second.await {
            Ok(keys) => uploaded.extend(keys),
            Err(UploadFailure { error, uploaded: n }) => {
                return Err(UploadFailure {
                    error,
                    uploaded: uploaded.len() + n,
                })
            }
        }
    }
    Ok(uploaded)
}

/// Uploads one contiguous group of changed files from one stream.
async fn upload_group(
    shared: Arc<Shared>,
    mut stream: EntryStream,
    files: Vec<ChangedFile>,
) -> Result<(), JobError> {
    let mut puts: JoinSet<Result<Vec<String>, JobError>> = JoinSet::new();
    let target = shared.target.clone();
    for file in files {
        let entry = stream
            .next_entry()
            .await?
            .ok_or_else(|| JobError::failed(format!("the artifact ended before `{}`", file.key)))?;
        if file.name != entry.name {
            return Err(JobError::failed(format!(
                "internal error: `{}` is not the entry planned for {}",
                entry.name, file.key
            )));
        }
        if file.last {
            // An entry page: read now and held, or left for a second pass.
            let kib = ((file.size / 1024 + 1) * (1 + file.generated.len() as u64))
                .min(u64::from(PARKED_KIB)) as u32;
            let held = (file.size <= SMALL_FILE)
                .then(|| shared.park_budget.clone().try_acquire_many_owned(kib).ok())
                .flatten();
            match held {
                Some(held) => {
                    let data = stream.read_to_vec(SMALL_FILE as usize).await?;
                    if let Ok(mut parked) = shared.parked.lock() {
                        parked.push((file, data, held));
                    }
                }
                None => {
                    if let Ok(mut later) = shared.later.lock() {
                        later.push(file);
                    }
                }
            }
            continue;
        }
        shared
            .activity
            .doing(format!("publishing s3://{}/{}", target.bucket, file.key));
        if file.size <= SMALL_FILE {
            // The file, and each compressed copy made from it while it is held.
            let copies = 1 + file.generated.len() as u64;
            let kib = ((file.size / 1024 + 1) * copies).min(u64::from(MEMORY_BUDGET_KIB)) as u32;
            let held = shared.permits(kib).await?;
            // Read back in full (CRC-32 checked again) before the first byte is sent; S3
            // checks it against the digests of the verify pass.
            let data = stream.read_to_vec(SMALL_FILE as usize).await?;
            let target = target.clone();
            puts.spawn(async move {
                let _held = held;
                put_file_and_copies(&target, file, data).await
            });
        } else {
            let _held = shared.permits(LARGE_FILE_KIB).await?;
            upload_large(&target, &mut stream, &file).await?;
            shared.record(vec![file.key]);
        }
        while let Some(done) = puts.try_join_next() {
            shared.record(finished(done)?);
        }
    }
    while let Some(done) = puts.join_next().await {
        shared.record(finished(done)?);
    }
    Ok(())
}

/// Compressions running at once: one per core. They are CPU work on blocking threads; more
/// would only hold more memory.
fn compressing() -> &'static Semaphore {
    static COMPRESSING: std::sync::OnceLock<Semaphore> = std::sync::OnceLock::new();
    COMPRESSING
        .get_or_init(|| Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get())))
}

/// Uploads a small file (unless only its copies changed) and the compressed copies made from it.
async fn put_file_and_copies(
    target: &Target,
    file: ChangedFile,
    data: Vec<u8>,
) -> Result<Vec<String>, JobError> {
    let mut keys = Vec::with_capacity(1 + file.generated.len());
    let data = Arc::new(data);
    for copy in file.generated {
        let source = data.clone();
        let (encoding, level) = (copy.encoding, copy.level);
        let _turn = compressing()
            .acquire()
            .await
            .map_err(|_| JobError::failed("the compression pool was closed"))?;
        let made = tokio::task::spawn_blocking(move || {
            let packed = compress(&source, encoding, level)?;
            let mut digest = Digests::default();
            digest.update(&packed);
            Ok::<_, std::io::Error>((packed, digest.finish_raw()))
        })
        .await
        .map_err(|e| JobError::failed(format!("compressing `{}` failed: {e}", file.name)))?
        .map_err(|e| JobError::failed(format!("compressing `{}` failed: {e}", file.name)))?;
        let (packed, digest) = made;
        let mut options = copy.options;
        options
            .metadata
            .push((SHA256_METADATA.into(), digest.sha256_hex()));
        target
            .put_small(&copy.key, packed, &digest, options)
            .await?;
        keys.push(copy.key);
    }
    if file.upload_plain {
        let data = Arc::try_unwrap(data).unwrap_or_else(|shared| shared.as_ref().clone());
        target
            .put_small(&file.key, data, &file.digest, file.options)
            .await?;
        keys.push(file.key);
    }
    Ok(keys)
}

/// The publish's result once every stream ended.
fn finished(
    done: Result<Result<Vec<String>, JobError>, tokio::task::JoinError>,
) -> Result<Vec<String>, JobError> {
    done.map_err(|e| JobError::failed(format!("upload task failed: {e}")))?
}

/// Streams a large file into a multipart upload, one part buffered and one in flight. The
/// upload is completed only when the bytes sent hash to the verified SHA-256.
async fn upload_large(
    target: &Target,
    stream: &mut EntryStream,
    file: &ChangedFile,
) -> Result<(), JobError> {
    let mut upload = ObjectUpload::new(
        target.client.clone(),
        &target.bucket,
        &file.key,
        file.options.clone(),
        DEFAULT_PART_SIZE,
    );
    let mut check = Sha256Check::default();
    loop {
        let chunk = match stream.read_chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(err) => {
                upload.abort().await;
                return Err(err.into());
            }
        };
        check.update(&chunk);
        if let Err(err) = upload.write(&chunk).await {
            upload.abort().await;
            return Err(upload_error(target, &file.key, err));
        }
    }
    if !check.matches(&file.digest.sha256) {
        upload.abort().await;
        return Err(JobError::failed(format!(
            "the artifact changed while it was being published: `{}` no longer holds the content that was verified; nothing was written for it",
            file.key
        )));
    }
    upload
        .finish()
        .await
        .map_err(|e| upload_error(target, &file.key, e))?;
    Ok(())
}

/// An artifact error while uploading `key`, naming it.
fn upload_error(target: &Target, key: &str, err: ArtifactError) -> JobError {
    match err {
        // The failure names the operation, bucket and key already.
        ArtifactError::S3(failure) => failure.into(),
        other => target.failed("uploading", key, other),
    }
}
