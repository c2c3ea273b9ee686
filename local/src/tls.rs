//! HTTPS on loopback (`--tls`), as every AWS and Slack call is on Lambda: a certificate
//! authority made for this process, a certificate for `127.0.0.1` and `localhost` signed by it,
//! and a trust bundle (the system's roots plus this CA) that the functions are pointed at with
//! `SSL_CERT_FILE` (`pipeline_ext::https::trust_roots`, under the AWS SDK and reqwest) and `AWS_CA_BUNDLE`
//! (botocore), so they verify the endpoints' certificates exactly as they verify AWS's.

use axum::Router;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// A client that connects and never finishes the handshake is dropped after this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The certificate authority and server certificate of one pipeline-local process.
pub struct LocalTls {
    acceptor: TlsAcceptor,
    bundle: PathBuf,
    ca_pem: String,
    _dir: tempfile::TempDir,
}

impl LocalTls {
    /// Makes a new CA and server certificate, and writes the trust bundle to a temporary folder
    /// kept as long as this value.
    pub fn generate() -> std::io::Result<Self> {
        let other = |e: rcgen::Error| std::io::Error::other(format!("certificate: {e}"));
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(other)?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(
            rcgen::DnType::CommonName,
            "pipeline-local CA (this run only)",
        );
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca_key = rcgen::KeyPair::generate().map_err(other)?;
        let ca_cert = ca_params.self_signed(&ca_key).map_err(other)?;
        let issuer = rcgen::Issuer::new(ca_params, ca_key);

        let mut server_params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .map_err(other)?;
        server_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "pipeline-local");
        server_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = rcgen::KeyPair::generate().map_err(other)?;
        let server_cert = server_params
            .signed_by(&server_key, &issuer)
            .map_err(other)?;

        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into());
        let chain = vec![server_cert.der().clone(), ca_cert.der().clone()];
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(std::io::Error::other)?;

        let ca_pem = ca_cert.pem();
        let dir = tempfile::Builder::new()
            .prefix("pipeline-local-tls-")
            .tempdir()?;
        let bundle = dir.path().join("ca-bundle.pem");
        let mut contents = pipeline_ext::https::PLATFORM_BUNDLES
            .iter()
            .find_map(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default();
        if !contents.is_empty() && !contents.ends_with('\n') {
            contents.push('\n');
        }
        contents.push_str(&ca_pem);
        std::fs::write(&bundle, contents)?;
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            bundle,
            ca_pem,
            _dir: dir,
        })
    }

    /// The certificate `--tls` asks for: a new one when `wanted`, else none.
    pub fn when(wanted: bool) -> Result<Option<Arc<Self>>, String> {
        wanted
            .then(Self::generate)
            .transpose()
            .map(|tls| tls.map(Arc::new))
            .map_err(|e| format!("cannot make the HTTPS certificate: {e}"))
    }

    /// The trust bundle: the system's roots and this CA.
    pub fn bundle(&self) -> &Path {
        &self.bundle
    }

    /// This run's CA certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// What a function needs to trust the endpoints: the bundle for rustls-native-certs
    /// (`SSL_CERT_FILE`), botocore (`AWS_CA_BUNDLE`) and requests (`REQUESTS_CA_BUNDLE`).
    pub fn trust_env(&self) -> Vec<(String, String)> {
        let bundle = self.bundle.display().to_string();
        ["SSL_CERT_FILE", "AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE"]
            .into_iter()
            .map(|name| (name.to_string(), bundle.clone()))
            .collect()
    }
}

/// Serves `router` on a free loopback port, over HTTPS when `tls` is given; returns the address
/// and the server's task.
pub async fn serve(
    router: Router,
    tls: Option<&LocalTls>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = match tls {
        None => tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        }),
        Some(tls) => {
            let listener = TlsListener::new(listener, tls.acceptor.clone());
            tokio::spawn(async move {
                let _ = axum::serve(listener, router).await;
            })
        }
    };
    Ok((addr, task))
}

/// The scheme of URLs to endpoints served with or without `tls`.
pub fn scheme(tls: Option<&LocalTls>) -> &'static str {
    if tls.is_some() {
        "https"
    } else {
        "http"
    }
}

/// Connections whose TLS handshake completed. Handshakes run in their own tasks, so a client
/// that stalls in one (or speaks plain HTTP) never holds up the others.
struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    fn new(listener: TcpListener, acceptor: TlsAcceptor) -> Self {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let (sender, ready) = mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(connection) => connection,
                    Err(_) => {
                        // Out of file descriptors and the like: wait rather than spin.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // A TLS response leaves in several records; with Nagle on, the second waits for
                // the client's delayed ACK (40 ms), which is no part of what a function costs.
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                let sender = sender.clone();
                tokio::spawn(async move {
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        let _ = sender.send((stream, peer)).await;
                    }
                });
            }
        });
        Self {
            ready,
            addr,
            accepting,
        }
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accepting task is gone only when the listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
