//! One trust store per process: a function that makes HTTPS calls through the AWS SDK and
//! reqwest reads its roots once, from `SSL_CERT_FILE` when it is set (and then never touches
//! the system's certificate folders), else from the platform's bundle file alone, never a scan
//! of `/etc/ssl/certs` on top of it.
//!
//! Seen from outside the process with inotify, which reports every open of a file in a
//! watched folder. One test in its own test binary, so no other test opens certificates
//! meanwhile.

use pipeline_testkit::{JobEventBuilder, JobRunAssertions, LocalFunction};
use serde_json::json;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every open (`IN_OPEN`) of a file, or listing of the folder itself, in the watched folders.
struct OpenWatch {
    fd: i32,
    watched: Vec<(i32, PathBuf)>,
}

impl OpenWatch {
    fn new(folders: &[PathBuf]) -> Self {
        // SAFETY: plain syscalls on a descriptor this struct owns.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(fd >= 0, "inotify_init1 failed");
        let mut watched = Vec::new();
        for folder in folders {
            let path = CString::new(folder.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: `path` is a valid C string for the duration of the call.
            let wd = unsafe { libc::inotify_add_watch(fd, path.as_ptr(), libc::IN_OPEN) };
            assert!(wd >= 0, "cannot watch {}", folder.display());
            watched.push((wd, folder.clone()));
        }
        Self { fd, watched }
    }

    /// The paths opened since the last call (a folder opened for listing is the folder).
    fn opened(&self) -> Vec<PathBuf> {
        let mut paths = Vec::new();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: reads into a buffer we own, of the length we pass.
            let n = unsafe { libc::read(self.fd, buffer.as_mut_ptr().cast(), buffer.len()) };
            if n <= 0 {
                return paths;
            }
            let mut at = 0usize;
            let header = std::mem::size_of::<libc::inotify_event>();
            while at + header <= n as usize {
                // SAFETY: the kernel wrote a whole event here; read it unaligned.
                let event: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(buffer[at..].as_ptr().cast()) };
                let name = &buffer[at + header..at + header + event.len as usize];
                let name = String::from_utf8_lossy(name.split(|b| *b == 0).next().unwrap_or(&[]))
                    .into_owned();
                let folder = self
                    .watched
                    .iter()
                    .find(|(wd, _)| *wd == event.wd)
                    .map(|(_, f)| f.clone())
                    .unwrap_or_default();
                paths.push(if name.is_empty() {
                    folder
                } else {
                    folder.join(name)
                });
                at += header + event.len as usize;
            }
        }
    }
}

impl Drop for OpenWatch {
    fn drop(&mut self) {
        // SAFETY: closes the descriptor this struct owns, once.
        unsafe { libc::close(self.fd) };
    }
}

/// `/etc/ssl/certs` and the folders its links point into (Debian keeps the certificates in
/// `/usr/share/ca-certificates/…` and links them there).
fn certificate_folders() -> Vec<PathBuf> {
    let certs = Path::new("/etc/ssl/certs");
    assert!(
        certs.is_dir(),
        "this test needs /etc/ssl/certs (apt-get install ca-certificates)"
    );
    let mut folders = vec![certs.to_path_buf()];
    for entry in std::fs::read_dir(certs).unwrap().flatten() {
        if let Ok(target) = std::fs::canonicalize(entry.path()) {
            if let Some(parent) = target.parent() {
                if !folders.iter().any(|f| f == parent) {
                    folders.push(parent.to_path_buf());
                }
            }
        }
    }
    folders
}

async fn gate_over_https(
    trust: &[(String, String)],
    url: &str,
) -> pipeline_local::job_invocation::JobRun {
    let env: Vec<(&str, &str)> = trust
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let function = LocalFunction::start(
        "deploy-gate",
        env!("CARGO_BIN_EXE_deploy-gate"),
        Duration::from_secs(30),
        &env,
    )
    .await
    .expect("function host starts");
    let params = json!({"http": [{"url": url, "retries": 0}], "bake_seconds": 0});
    function
        .run(JobEventBuilder::new("deploy-gate", &params).build())
        .await
        .expect("a job event")
}

#[tokio::test]
async fn roots_are_read_once_from_ssl_cert_file_or_the_bundle_never_from_a_folder_scan() {
    // The HTTPS service and its trust bundle are made (reading the system bundle) before the
    // watch starts.
    let tls = pipeline_local::tls::LocalTls::generate().expect("a CA");
    let app = axum::Router::new().route("/health", axum::routing::get(|| async { "ok" }));
    let (addr, _task) = pipeline_local::tls::serve(app, Some(&tls))
        .await
        .expect("HTTPS service");
    let url = format!("https://127.0.0.1:{}/health", addr.port());
    let folders = certificate_folders();
    let watch = OpenWatch::new(&folders);

    // SSL_CERT_FILE set: an HTTPS smoke check (reqwest) and the report (the AWS SDK) use
    // exactly that file; nothing under the system's folders is opened.
    let run = gate_over_https(&tls.trust_env(), &url).await;
    assert!(
        run.succeeded(),
        "the check passes with the run's CA: {:?}",
        run.results()
    );
    let opened = watch.opened();
    assert!(
        opened.is_empty(),
        "with SSL_CERT_FILE set, the function opened {opened:?}"
    );

    // Nothing set: the platform's bundle file, once, and no file or listing of the folder.
    let run = gate_over_https(&[], &url).await;
    run.expect_failure();
    let opened = watch.opened();
    assert_eq!(
        opened,
        [PathBuf::from("/etc/ssl/certs/ca-certificates.crt")],
        "without SSL_CERT_FILE, the function read the bundle once and nothing else"
    );

    // The watch sees what it is meant to see.
    std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap();
    assert_eq!(watch.opened().len(), 1, "inotify reports an open");
}
