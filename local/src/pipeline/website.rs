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
    // Only plain names: no way out of the bucket's folder, no hidden (metadata) files.
    let plain =
        |part: &str| !part.is_empty() && !part.starts_with('.') && !part.contains(['\\', '\0']);
    if !plain(&bucket) || !key.split('/').all(plain) {
        return StatusCode::NOT_FOUND.into_response();
    }
    match tokio::fs::read(s3.object_path(&bucket, &key)).await {
        Ok(bytes) => {
            let kind = mime_guess::from_path(&key).first_or_octet_stream();
            ([(header::CONTENT_TYPE, kind.to_string())], bytes).into_response()
        }
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}
