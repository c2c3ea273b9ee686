//! One TLS stack for every HTTPS call a function makes: rustls on ring.
//!
//! The AWS SDKs' default HTTPS client brings aws-lc, reqwest's default brings it too. aws-lc is
//! about 2 MiB of every package and, unless built without it, seeds its random generator with a
//! CPU-jitter collector that costs tens of milliseconds of each cold start. ring is a fraction
//! of the size and takes its seed from the kernel's `getrandom()`. Certificates are verified
//! as before: the AWS SDKs against the system trust store (`SSL_CERT_FILE`/`SSL_CERT_DIR`
//! honoured), reqwest (Slack, smoke checks) with the platform verifier over the same store.
//! BENCHMARKS.md, "One TLS stack on ring".

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use std::sync::Once;

/// The HTTPS client for the AWS SDKs: hyper and rustls on ring, the system trust store, and
/// `HTTPS_PROXY`/`NO_PROXY` from the environment, as the SDKs' own default client does.
/// Connect and read timeouts come from each SDK client's configuration.
pub fn sdk_http_client() -> SharedHttpClient {
    // The same construction as the SDK's default client (aws-smithy-runtime), with ring for
    // aws-lc: one connector per timeout setting, the client's sleep implementation, the proxy.
    Builder::new().build_with_connector_fn(|settings, runtime_components| {
        let mut connector =
            ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::Ring));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = runtime_components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// A reqwest client builder on the same TLS stack: ring as the process's rustls provider,
/// certificates checked by the platform verifier against the system trust store.
pub fn client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
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
    fn installing_twice_is_harmless() {
        install_crypto_provider();
        install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
