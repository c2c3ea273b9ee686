//! The local buckets as a static website (what S3 website hosting or CloudFront would serve),
//! so the example deploy gate checks the site it just published: `GET /{bucket}/{key}` answers
//! the object with the headers it was stored with (`Content-Type`, `Content-Encoding`,
//! `Cache-Control`), 404 when there is none. `GET /health` answers `ok` for templates whose
//! gate checks no published page.
//!
//! Compressed variants published side by side (`x.br`, `x.gz` stored with a
//! `Content-Encoding`) are chosen by `Accept-Encoding`, brotli first, as the CloudFront
//! Function in the README does, and every answer for such a file says
//! `Vary: Accept-Encoding`.

use crate::s3::LocalS3;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Serves the website on a free loopback port; returns its base URL.
pub async fn serve_website(s3: LocalS3) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .route("/{bucket}/{*key}", axum::routing::get(object))
        .with_state(s3);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}"))
}

async fn object(
    State(s3): State<LocalS3>,
    Path((bucket, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let accepted = accepted_encodings(
        headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
    );
    // A variant stored beside the file, with its encoding, stands for it when accepted.
    let mut varies = false;
    let mut chosen = None;
    for (encoding, suffix) in [("br", ".br"), ("gzip", ".gz")] {
        let variant = format!("{key}{suffix}");
        if crate::s3::plain_object_path(s3.root(), &bucket, &variant).is_some_and(|p| p.is_file())
            && s3
                .stored_headers(&bucket, &variant)
                .content_encoding
                .as_deref()
                == Some(encoding)
        {
            varies = true;
            if chosen.is_none() && accepted.iter().any(|a| a == encoding) {
                chosen = Some(variant);
            }
        }
    }
    let served = chosen.unwrap_or(key.clone());
    let Some(path) = crate::s3::plain_object_path(s3.root(), &bucket, &served) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(bytes) = tokio::fs::read(path).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let stored = s3.stored_headers(&bucket, &served);
    let content_type = stored.content_type.unwrap_or_else(|| {
        mime_guess::from_path(&key)
            .first_or_octet_stream()
            .to_string()
    });
    let mut response = ([(header::CONTENT_TYPE, content_type)], bytes).into_response();
    let answer = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_ENCODING, stored.content_encoding),
        (header::CACHE_CONTROL, stored.cache_control),
        (header::VARY, varies.then(|| "Accept-Encoding".to_string())),
    ] {
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            answer.insert(name, value);
        }
    }
    response
}

/// The content codings an `Accept-Encoding` header accepts (`q` above 0), lowercased.
fn accepted_encodings(header: &str) -> Vec<String> {
    header
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';');
            let coding = parts.next()?.trim().to_ascii_lowercase();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (!coding.is_empty() && !refused).then_some(coding)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(base: &str, path: &str) -> String {
        let address = base.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    #[test]
    fn accept_encoding_is_read_with_its_weights() {
        assert_eq!(
            accepted_encodings("gzip, deflate, br"),
            ["gzip", "deflate", "br"]
        );
        assert_eq!(accepted_encodings("br;q=0, GZIP;q=0.5"), ["gzip"]);
        assert!(accepted_encodings("").is_empty());
    }

    proptest::proptest! {
        #[test]
        fn any_accept_encoding_is_read_without_panicking(header in "\\PC{0,60}") {
            for coding in accepted_encodings(&header) {
                proptest::prop_assert!(!coding.is_empty());
            }
        }
    }

    #[tokio::test]
    async fn serves_published_objects_and_nothing_outside_the_buckets() {
        let dir = tempfile::tempdir().unwrap();
        let s3 = LocalS3::new(
            &dir.path().join("s3"),
            Default::default(),
            Default::default(),
            Default::default(),
        )
        .unwrap();
        s3.put_file("site", "live/site/health.txt", b"ok\n")
            .unwrap();
        std::fs::write(dir.path().join("secret.txt"), "not yours").unwrap();
        let base = serve_website(s3).await.unwrap();

        let page = get(&base, "/site/live/site/health.txt").await;
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
        assert!(page.ends_with("ok\n"), "{page}");
        assert!(get(&base, "/site/live/site/missing.txt")
            .await
            .starts_with("HTTP/1.1 404"));
        for escape in [
            "/site/../secret.txt",
            "/site/%2e%2e/%2e%2e/secret.txt",
            "/s3/..%2f..%2fsecret.txt",
            "/site/.metadata",
        ] {
            let answer = get(&base, escape).await;
            assert!(!answer.contains("not yours"), "{escape}: {answer}");
            assert!(!answer.starts_with("HTTP/1.1 200"), "{escape}: {answer}");
        }
    }
}
