//! The local buckets as a static website (what S3 website hosting or CloudFront would serve),
//! so the example deploy gate checks the site it just published: `GET /{bucket}/{key}` answers
//! the object, 404 when there is none. `GET /health` answers `ok` for templates whose gate
//! checks no published page.

use crate::s3::LocalS3;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
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
) -> Response {
    let Some(path) = crate::s3::plain_object_path(s3.root(), &bucket, &key) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match tokio::fs::read(path).await {
        Ok(bytes) => {
            let kind = mime_guess::from_path(&key).first_or_octet_stream();
            ([(header::CONTENT_TYPE, kind.to_string())], bytes).into_response()
        }
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
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
