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
