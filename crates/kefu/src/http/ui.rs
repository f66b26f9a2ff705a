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

/// How a response body may be encoded, best first: what the build precompressed beside each
/// text asset (`x.br`, `x.gz`).
const ENCODINGS: [(&str, &str); 2] = [("br", ".br"), ("gzip", ".gz")];

/// Whether the request's `Accept-Encoding` takes `coding` (a `q` of 0 refuses it).
fn accepts(headers: &HeaderMap, coding: &str) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case(coding) || name == "*") && !refused
        })
}

/// `/` is the landing page, `/x` is `x`, else `x.html`; anything else is a 404 page (the apps
/// have no client-side routes: the console's state is in its URL's fragment). Served brotli- or
/// gzip-encoded when the browser takes it and the build made that variant.
pub async fn serve(State(app): State<AppState>, uri: Uri, request: HeaderMap) -> Response {
    let path = uri.path().trim_start_matches('/');
    // The precompressed variants are served in place of their originals, never by their names.
    let variant = ENCODINGS.iter().any(|(_, ext)| path.ends_with(ext));
    let candidates = [
        path.is_empty().then(|| "index.html".to_owned()),
        (!path.is_empty() && !variant).then(|| path.to_owned()),
        (!path.is_empty() && !variant).then(|| format!("{}.html", path.trim_end_matches('/'))),
    ];
    for candidate in candidates.into_iter().flatten() {
        if let Some(file) = Assets::get(&candidate) {
            let mime = mime_guess::from_path(&candidate).first_or_octet_stream();
            let variants: Vec<_> = ENCODINGS
                .iter()
                .filter_map(|(coding, ext)| {
                    Assets::get(&format!("{candidate}{ext}")).map(|f| (*coding, f))
                })
                .collect();
            let chosen = variants
                .iter()
                .find(|(coding, _)| accepts(&request, coding))
                .map(|(coding, f)| (*coding, f.data.clone()));
            // Hashed asset names never change content; pages and widget.js must be revalidated.
            let cache = if candidate.starts_with("assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            let (encoding, data) = match chosen {
                Some((coding, data)) => (Some(coding), data),
                None => (None, file.data),
            };
            let mut response = (StatusCode::OK, data.into_owned()).into_response();
            let headers = response.headers_mut();
            if let Some(coding) = encoding {
                headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
            }
            if !variants.is_empty() {
                headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
            }
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
    if Assets::get("index.html").is_none() {
        return (
            StatusCode::NOT_FOUND,
            "the web UI is not built into this binary; see the README",
        )
            .into_response();
    }
    not_found_page(&app.settings.allowed_origins)
}

/// A page that is not there: said in both of the UI's languages, with the way back.
fn not_found_page(allowed_origins: &[String]) -> Response {
    const PAGE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
        <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
        <title>Page not found · kefu</title><link rel=\"icon\" href=\"/favicon.ico\">\
        <style>body{font:16px/1.5 system-ui,sans-serif;color:#1f2937;margin:0;display:grid;\
        place-items:center;min-height:100vh}main{padding:2rem;text-align:center}\
        a{color:#2f6bd8}</style></head><body><main><h1>404</h1>\
        <p>There is no page here.</p><p lang=\"zh-CN\">此页面不存在。</p>\
        <p><a href=\"/\">kefu</a> · <a href=\"/chat\">Chat</a> · \
        <a href=\"/console\">Console</a> · <a href=\"/admin\">Admin</a></p>\
        </main></body></html>\n";
    let mut response = (StatusCode::NOT_FOUND, PAGE).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    page_headers(headers, "404.html", allowed_origins);
    response
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
