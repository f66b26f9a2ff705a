//! Request bodies that stop or trickle are cut off, and one address or one user cannot hold many
//! of them open (docs/security.md, "Slow and stalled requests").

mod common;

use std::time::{Duration, Instant};

use common::{Backend, TestServer};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Sends `head`, then `first` bytes of body, then one byte every `every` until the server answers
/// or closes; what it answered (its status line and body), and when.
async fn trickle(base: &str, head: &str, first: &[u8], every: Duration) -> (String, Duration) {
    let mut tcp = TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(first).await.unwrap();
    let started = Instant::now();
    let (mut read, mut write) = tcp.into_split();
    let writing = tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if write.write_all(b"x").await.is_err() {
                return;
            }
        }
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), read.read_to_end(&mut answer)).await;
    writing.abort();
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

fn multipart_head(token: &str, length: usize) -> String {
    format!(
        "POST /api/attachments HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\
         content-type: multipart/form-data; boundary=XyZ\r\ncontent-length: {length}\r\n\r\n"
    )
}

const PART_HEAD: &[u8] = b"--XyZ\r\ncontent-disposition: form-data; name=\"file\"; \
    filename=\"a.png\"\r\ncontent-type: image/png\r\n\r\n\x89PNG\r\n\x1a\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_a_byte_at_a_time_is_answered_408_within_30_s() {
    let server = TestServer::start(Backend::Sqlite).await;
    let head = "POST /api/visitors HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                content-length: 200\r\n\r\n";
    let (answer, waited) = trickle(&server.base, head, b"{", Duration::from_secs(2)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"invalid_payload\""), "{answer}");
    assert!(
        waited < Duration::from_secs(30),
        "answered after {waited:?}"
    );
    let (status, _) = server.get("/healthz").await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_is_cut_off_and_leaves_no_file_on_disk() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (token, id) = server.visitor().await;
    // The customer's conversation exists before it uploads.
    let _ = server.login(&token, &id).await;
    let head = multipart_head(&token, 9 * 1024 * 1024);
    let mut first = PART_HEAD.to_vec();
    first.extend(std::iter::repeat_n(0u8, 64 * 1024));
    let (answer, waited) = trickle(&server.base, &head, &first, Duration::from_secs(120)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        waited < Duration::from_secs(30),
        "answered after {waited:?}"
    );
    let dir = server.state.settings.attachment_dir();
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "files left behind: {left:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_has_at_most_four_uploads_in_progress() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (token, id) = server.visitor().await;
    let _ = server.login(&token, &id).await;
    let head = multipart_head(&token, 9 * 1024 * 1024);
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut tcp = TcpStream::connect(server.base.trim_start_matches("http://"))
            .await
            .unwrap();
        tcp.write_all(head.as_bytes()).await.unwrap();
        tcp.write_all(PART_HEAD).await.unwrap();
        held.push(tcp);
    }
    // Each of the four has started writing its file.
    let dir = server.state.settings.attachment_dir();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(&dir).map_or(0, |d| d.count()) < 4 {
        assert!(Instant::now() < deadline, "the four uploads did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (answer, waited) = trickle(&server.base, &head, PART_HEAD, Duration::from_secs(120)).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.contains("too many uploads at once"), "{answer}");
    assert!(
        waited < Duration::from_secs(5),
        "refused at once, not after {waited:?}"
    );
    drop(held);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_has_a_bounded_number_of_bodies_in_progress() {
    let server = TestServer::start(Backend::Sqlite).await;
    let head = "POST /api/visitors HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                content-length: 200\r\n\r\n{";
    let mut held = Vec::new();
    for _ in 0..kefu::http::bodies::MAX_BODIES_PER_ADDRESS {
        let mut tcp = TcpStream::connect(server.base.trim_start_matches("http://"))
            .await
            .unwrap();
        tcp.write_all(head.as_bytes()).await.unwrap();
        held.push(tcp);
    }
    // Give the server the time to take them all in.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (answer, waited) = trickle(&server.base, head, b"", Duration::from_secs(120)).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.contains("retry-after: 10"), "{answer}");
    assert!(
        waited < Duration::from_secs(5),
        "refused at once, not after {waited:?}"
    );
    // Requests without a body still pass, and the held ones are cut off in time.
    let (status, _) = server.get("/healthz").await;
    assert_eq!(status, 200);
    let mut answer = Vec::new();
    let started = Instant::now();
    let _ = tokio::time::timeout(Duration::from_secs(40), held[0].read_to_end(&mut answer)).await;
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 408"));
    server.stop().await;
}
