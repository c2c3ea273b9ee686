//! One TLS stack for every HTTPS call a function makes: rustls on ring, over one trust store.
//!
//! The AWS SDKs' default HTTPS client brings aws-lc, reqwest's default brings it too. aws-lc is
//! about 2 MiB of every package and, unless built without it, seeds its random generator with a
//! CPU-jitter collector that costs tens of milliseconds of each cold start. ring is a fraction
//! of the size and takes its seed from the kernel's `getrandom()`. BENCHMARKS.md, "One TLS
//! stack on ring".
//!
//! **One trust store per process** ([`trust_roots`]), read once before the first handshake and
//! shared by every SDK client and every reqwest client: `SSL_CERT_FILE` when it is set, exactly
//! that file; else `SSL_CERT_DIR` (the files of those folders); else the platform's bundle file
//! (the first of [`PLATFORM_BUNDLES`], which on Lambda's images is the one the system keeps).
//! Never a directory scan on top of a bundle: left to themselves, the SDK's client and
//! reqwest's platform verifier each read the bundle and then every file of `/etc/ssl/certs`,
//! once per client (BENCHMARKS.md, "One trust store per process").

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider, TlsContext, TrustStore};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once, OnceLock};

/// Where Linux distributions keep the system's trusted roots as one PEM bundle: Debian and
/// Ubuntu, Amazon Linux (Lambda's `provided.al2023`), Fedora and RHEL, openSUSE, Alpine.
pub const PLATFORM_BUNDLES: [&str; 5] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Where the process's trust anchors came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustSource {
    /// `SSL_CERT_FILE`, or the platform's bundle.
    File(PathBuf),
    /// The files of the `SSL_CERT_DIR` folders.
    Dirs(Vec<PathBuf>),
    /// Nothing could be read: every certificate fails to verify, and the first call says why.
    Nothing,
}

/// The process's trust anchors, read once.
pub struct TrustRoots {
    /// Where they came from.
    pub source: TrustSource,
    /// The roots, parsed.
    store: Arc<RootCertStore>,
    /// The same roots as PEM, for the SDK's TLS context (which takes PEM, not a parsed store).
    pem: Vec<u8>,
    /// Certificates in the source that are not usable trust anchors.
    pub skipped: usize,
    /// reqwest's TLS configuration over `store`.
    reqwest_config: rustls::ClientConfig,
}

/// How many times this process read its trust anchors: once, whatever the number of clients.
static LOADS: AtomicUsize = AtomicUsize::new(0);
/// How many TLS connectors the SDK clients built: one per timeout setting in use, not one per
/// client.
static TLS_CONNECTORS: AtomicUsize = AtomicUsize::new(0);

/// How many TLS connectors this process's SDK clients built so far.
pub fn sdk_tls_connectors() -> usize {
    TLS_CONNECTORS.load(Ordering::Relaxed)
}

/// The process's trust store (see the module's documentation), read on first use.
pub fn trust_roots() -> &'static TrustRoots {
    static ROOTS: OnceLock<TrustRoots> = OnceLock::new();
    ROOTS.get_or_init(|| {
        LOADS.fetch_add(1, Ordering::Relaxed);
        let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let source = match (env("SSL_CERT_FILE"), env("SSL_CERT_DIR")) {
            (Some(file), _) => TrustSource::File(file.into()),
            (None, Some(dirs)) => TrustSource::Dirs(std::env::split_paths(&dirs).collect()),
            (None, None) => PLATFORM_BUNDLES
                .iter()
                .map(Path::new)
                .find(|path| path.is_file())
                .map_or(TrustSource::Nothing, |path| TrustSource::File(path.into())),
        };
        TrustRoots::load(source)
    })
}

impl TrustRoots {
    fn load(source: TrustSource) -> Self {
        let mut pem_files = Vec::new();
        match &source {
            TrustSource::File(path) => match std::fs::read(path) {
                Ok(bytes) => pem_files.push(bytes),
                Err(err) => {
                    tracing::warn!(path = %path.display(), error = %err, "cannot read the trust bundle")
                }
            },
            TrustSource::Dirs(dirs) => {
                for dir in dirs {
                    let Ok(entries) = std::fs::read_dir(dir) else {
                        tracing::warn!(path = %dir.display(), "cannot read the SSL_CERT_DIR folder");
                        continue;
                    };
                    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
                    paths.sort();
                    pem_files.extend(paths.iter().filter_map(|p| std::fs::read(p).ok()));
                }
            }
            TrustSource::Nothing => {
                tracing::warn!("no trust bundle found (SSL_CERT_FILE, SSL_CERT_DIR, the platform's): no certificate will verify");
            }
        }
        let mut store = RootCertStore::empty();
        let mut pem = Vec::new();
        let mut skipped = 0;
        for cert in pem_files
            .iter()
            .flat_map(|bytes| CertificateDer::pem_slice_iter(bytes))
        {
            match cert.map(|der| (store.add(der.clone()), der)) {
                Ok((Ok(()), der)) => append_pem(&mut pem, &der),
                _ => skipped += 1,
            }
        }
        if skipped > 0 {
            tracing::debug!(
                skipped,
                "certificates in the trust source that are not usable roots were left out"
            );
        }
        let store = Arc::new(store);
        install_crypto_provider();
        let reqwest_config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map(|builder| {
            builder
                .with_root_certificates(store.clone())
                .with_no_client_auth()
        })
        // ring's default provider supports the default versions; this cannot fail.
        .unwrap_or_else(|_| {
            rustls::ClientConfig::builder()
                .with_root_certificates(store.clone())
                .with_no_client_auth()
        });
        Self {
            source,
            store,
            pem,
            skipped,
            reqwest_config,
        }
    }

    /// The parsed roots.
    pub fn store(&self) -> &Arc<RootCertStore> {
        &self.store
    }

    /// How many roots there are.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// How many times this process read its trust anchors (1 once any client was built).
    pub fn loads() -> usize {
        LOADS.load(Ordering::Relaxed)
    }
}

fn append_pem(out: &mut Vec<u8>, der: &CertificateDer<'_>) {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    out.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
    for line in encoded.as_bytes().chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(b"-----END CERTIFICATE-----\n");
}

/// The HTTPS client for the AWS SDKs: hyper and rustls on ring over the process's trust store,
/// and `HTTPS_PROXY`/`NO_PROXY` from the environment, as the SDKs' own default client does.
/// Connect and read timeouts come from each SDK client's configuration.
pub fn sdk_http_client() -> SharedHttpClient {
    // The same construction as the SDK's default client (aws-smithy-runtime), with ring for
    // aws-lc and our roots for its own loading of the native ones: one connector per timeout
    // setting, the client's sleep implementation, the proxy.
    Builder::new().build_with_connector_fn(|settings, runtime_components| {
        // The SDK calls this with neither for every client it builds, only to load the native
        // roots early, and drops what it gets ("validate_base_client_config"). Our roots are
        // read once per process; building a TLS connector here would parse them again for
        // every SDK client a function makes before its first request (six in
        // pipeline-notifier). A connector without TLS costs nothing.
        if settings.is_none() && runtime_components.is_none() {
            return ConnectorBuilder::default().build_http();
        }
        TLS_CONNECTORS.fetch_add(1, Ordering::Relaxed);
        let mut connector = ConnectorBuilder::default()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .tls_context(sdk_tls_context());
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = runtime_components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// The SDK's TLS context: our roots only, never its own load of the native ones.
fn sdk_tls_context() -> TlsContext {
    let roots = trust_roots();
    let store = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(roots.pem.clone());
    TlsContext::builder()
        .with_trust_store(store)
        .build()
        // Building a context from a trust store has nothing that can fail.
        .unwrap_or_default()
}

/// A reqwest client builder on the same TLS stack and trust store: ring as the process's
/// rustls provider, certificates checked by webpki against [`trust_roots`].
pub fn client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder().use_preconfigured_tls(trust_roots().reqwest_config.clone())
}

/// Makes ring the process's default rustls provider (reqwest asks for it when it builds a
/// client). Idempotent; a provider installed earlier by someone else is left in place.
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err means a provider is already installed, which is what this call wants.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reqwest_clients_build_on_the_ring_provider() {
        let client = client_builder().build();
        assert!(client.is_ok(), "{client:?}");
        let provider = rustls::crypto::CryptoProvider::get_default().expect("installed");
        assert!(
            provider
                .cipher_suites
                .iter()
                .any(|suite| suite.suite() == rustls::CipherSuite::TLS13_AES_128_GCM_SHA256),
            "ring's default suites"
        );
    }

    /// No SDK brings a default HTTPS client (and aws-lc with it): a client built without ours
    /// has none, and says so.
    #[tokio::test]
    async fn an_sdk_client_without_ours_has_no_https_client_to_fall_back_on() {
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url("https://127.0.0.1:9")
            .credentials_provider(aws_credential_types::Credentials::new(
                "a", "b", None, None, "test",
            ))
            .build();
        let err = aws_sdk_s3::Client::from_conf(config)
            .list_buckets()
            .send()
            .await
            .expect_err("no HTTP client");
        let text = aws_smithy_types::error::display::DisplayErrorContext(&err).to_string();
        assert!(text.contains("HTTP client"), "{text}");
    }

    #[test]
    fn every_client_shares_one_trust_store_read_once() {
        let first = client_builder().build();
        let second = client_builder().build();
        assert!(first.is_ok() && second.is_ok());
        let (a, b) = (sdk_tls_context(), sdk_tls_context());
        drop((a, b));
        assert!(std::ptr::eq(trust_roots(), trust_roots()));
        assert_eq!(TrustRoots::loads(), 1, "the roots were read more than once");
    }

    #[test]
    fn a_bundle_file_is_all_that_is_trusted_and_a_folder_reads_the_same() {
        let Some(system) = PLATFORM_BUNDLES.iter().find(|p| Path::new(p).is_file()) else {
            panic!("no platform bundle on this machine; install ca-certificates");
        };
        let file = TrustRoots::load(TrustSource::File(system.into()));
        assert!(file.len() > 50, "{} roots", file.len());
        // The PEM handed to the SDK holds exactly the parsed roots.
        let again = CertificateDer::pem_slice_iter(&file.pem).count();
        assert_eq!(again, file.len());

        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(system, dir.path().join("bundle.pem")).unwrap();
        std::fs::write(dir.path().join("README"), "not a certificate").unwrap();
        let dirs = TrustRoots::load(TrustSource::Dirs(vec![dir.path().into()]));
        assert_eq!(dirs.len(), file.len());

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let bad = TrustRoots::load(TrustSource::File(garbage));
        assert!(bad.is_empty());
        assert_eq!(
            bad.skipped, 1,
            "a certificate that does not parse is left out, not fatal"
        );
        assert!(TrustRoots::load(TrustSource::Nothing).is_empty());
    }

    /// The SDK validates every client's HTTP client by building a connector it throws away;
    /// that must not parse the roots once per client.
    #[tokio::test]
    async fn building_sdk_clients_builds_no_tls_connector() {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .http_client(sdk_http_client())
            .build();
        let before = sdk_tls_connectors();
        for _ in 0..6 {
            let _ = aws_sdk_s3::Client::new(&config);
            let _ = aws_sdk_codepipeline::Client::new(&config);
        }
        assert_eq!(
            sdk_tls_connectors(),
            before,
            "a TLS connector per client built"
        );
    }

    #[test]
    fn installing_twice_is_harmless() {
        install_crypto_provider();
        install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
