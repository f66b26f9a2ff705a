//! The web UI, built by Vite into `web/dist` and embedded in the binary.

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};

use crate::AppState;
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../../web/dist"]
#[exclude = ".gitkeep"]
struct Assets;

/// `/x` is `x`, else `x.html`, else the app's `index.html` (client-side routes).
pub async fn serve(State(app): State<AppState>, uri: Uri) -> Response {
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
            if candidate.ends_with(".html") {
                page_headers(headers, &candidate, &app.settings.allowed_origins);
            }
            return response;
        }
    }
    (
        StatusCode::NOT_FOUND,
        "the web UI is not built into this binary; see the README",
    )
        .into_response()
}

/// What a page may load and who may frame it. Only the chat is framed (by the shops' pages, from
/// widget.js); the console and the admin never are. Styles may be inline (Vue's style bindings);
/// scripts come only from this server.
fn page_headers(headers: &mut HeaderMap, page: &str, allowed_origins: &[String]) {
    let framed_by = if page == "chat.html" {
        if allowed_origins.is_empty() {
            "*".to_owned()
        } else {
            format!("'self' {}", allowed_origins.join(" "))
        }
    } else {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        "'none'".to_owned()
    };
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; \
         object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors {framed_by}"
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static(if page == "chat.html" {
            "unsafe-none"
        } else {
            "same-origin"
        }),
    );
}
