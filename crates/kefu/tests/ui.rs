//! The embedded web UI as a browser fetches it: pages, the icon, and what is not there.

mod common;

use common::{Backend, TestServer};
use reqwest::header;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_page_is_served_at_its_clean_address() {
    let server = TestServer::start(Backend::Sqlite).await;
    for path in [
        "/",
        "/chat",
        "/console",
        "/admin",
        "/console/",
        "/chat.html",
    ] {
        let response = reqwest::get(format!("{}{path}", server.base))
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let kind = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
        assert!(kind.starts_with("text/html"), "{path}: {kind}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_page_is_a_404_page_not_the_landing_page() {
    let server = TestServer::start(Backend::Sqlite).await;
    let landing = reqwest::get(format!("{}/", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for path in ["/nothing", "/chat/extra", "/assets/none.js", "/favicon.png"] {
        let response = reqwest::get(format!("{}{path}", server.base))
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let headers = response.headers().clone();
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY", "{path}");
        let body = response.text().await.unwrap();
        assert_ne!(body, landing, "{path}");
        assert!(
            body.contains("404") && body.contains("href=\"/\""),
            "{body}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_icon_is_an_icon() {
    let server = TestServer::start(Backend::Sqlite).await;
    let response = reqwest::get(format!("{}/favicon.ico", server.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "image/x-icon");
    let bytes = response.bytes().await.unwrap();
    // An ICO directory: reserved 0, type 1 (icon), at least one image.
    assert_eq!(&bytes[..4], &[0, 0, 1, 0], "an ICO header");
    assert!(u16::from_le_bytes([bytes[4], bytes[5]]) >= 1);
    server.stop().await;
}

/// `path` fetched with `Accept-Encoding: accept` (none when empty): the encoding and the body.
async fn fetch(server: &TestServer, path: &str, accept: &str) -> (Option<String>, Vec<u8>, String) {
    let mut request = reqwest::Client::new().get(format!("{}{path}", server.base));
    if !accept.is_empty() {
        request = request.header(header::ACCEPT_ENCODING, accept);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let encoding = response
        .headers()
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap().to_owned());
    let vary = response
        .headers()
        .get(header::VARY)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (encoding, response.bytes().await.unwrap().to_vec(), vary)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_assets_are_sent_compressed_to_browsers_that_take_it() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (_, page, _) = fetch(&server, "/chat", "").await;
    let page = String::from_utf8(page).unwrap();
    let script = page
        .split("src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the chat page loads a script")
        .to_owned();
    for path in ["/chat", "/widget.js", script.as_str()] {
        let (plain_encoding, plain, vary) = fetch(&server, path, "").await;
        assert_eq!(plain_encoding, None, "{path}");
        assert_eq!(vary, "accept-encoding", "{path}");
        let (encoding, brotli, _) = fetch(&server, path, "gzip, deflate, br, zstd").await;
        assert_eq!(encoding.as_deref(), Some("br"), "{path}");
        assert!(brotli.len() < plain.len(), "{path}");
        let (encoding, gzip, _) = fetch(&server, path, "gzip;q=1.0, br;q=0").await;
        assert_eq!(encoding.as_deref(), Some("gzip"), "{path}");
        assert_eq!(&gzip[..2], &[0x1f, 0x8b], "{path}: a gzip stream");
        assert!(gzip.len() < plain.len(), "{path}");
        let (encoding, _, _) = fetch(&server, path, "identity").await;
        assert_eq!(encoding, None, "{path}");
    }
    // The variants are not pages of their own.
    let response = reqwest::get(format!("{}{script}.br", server.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    server.stop().await;
}
