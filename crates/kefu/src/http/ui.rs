//! The web UI, built by Vite into `web/dist` and embedded in the binary.

use axum::{
    http::{HeaderValue, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../../web/dist"]
#[exclude = ".gitkeep"]
struct Assets;

/// `/x` is `x`, else `x.html`, else the app's `index.html` (client-side routes).
pub async fn serve(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let candidates = [
        (!path.is_empty()).then(|| path.to_owned()),
        (!path.is_empty()).then(|| format!("{}.html", path.trim_end_matches('/'))),
        Some("index.html".to_owned()),
    ];
    for candidate in candidates.into_iter().flatten() {
        if let Some(file) = Assets::get(&candidate) {
            let mime = mime_guess::from_path(&candidate).first_or_octet_stream();
            // Hashed asset names never change content; pages and widget.js must be revalidated.
            let cache = if candidate.starts_with("assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            let mut response = (StatusCode::OK, file.data.into_owned()).into_response();
            let headers = response.headers_mut();
            if let Ok(value) = HeaderValue::from_str(mime.as_ref()) {
                headers.insert(header::CONTENT_TYPE, value);
            }
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            return response;
        }
    }
    (
        StatusCode::NOT_FOUND,
        "the web UI is not built into this binary; see the README",
    )
        .into_response()
}
