//! Abuse limits, the token lifecycle, allowed origins, the pages' security headers and the
//! Prometheus metrics, against the running server.
//!
//! Every client of a test comes from 127.0.0.1; the per-address limits tell clients apart through
//! `X-Forwarded-For`, which counts only because 127.0.0.1 is made a trusted proxy.

mod common;

use std::time::{Duration, Instant};

use common::{Backend, TestServer};
use kefu_wire::Client;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

on_every_backend!(
    signing_out_revokes_every_token_of_the_account_and_closes_its_sockets,
    a_revocation_made_elsewhere_closes_the_socket_at_the_next_check,
    content_is_encrypted_at_rest_and_its_keys_rotate,
);

async fn wait_closed(client: &Client, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if client.is_closed() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.is_closed()
}

async fn refusal(server: &TestServer, token: &str) -> String {
    Client::connect(&server.base, json!({ "token": token }))
        .await
        .err()
        .expect("the handshake is refused")
        .to_string()
}

/// A request from `ip` as a trusted proxy in front of the server says.
async fn from(
    server: &TestServer,
    ip: &str,
    method: Method,
    path: &str,
    body: Value,
) -> reqwest::Response {
    reqwest::Client::new()
        .request(method, format!("{}{path}", server.base))
        .header("x-forwarded-for", ip)
        .json(&body)
        .send()
        .await
        .expect("HTTP request")
}

async fn metrics(server: &TestServer) -> String {
    let response = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    response.text().await.unwrap()
}

/// The value of one series in the exposition text.
fn series(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no series {name} in:\n{text}"))
        .parse()
        .unwrap()
}

fn trusting_localhost(s: &mut kefu::Settings) {
    s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
}

async fn signing_out_revokes_every_token_of_the_account_and_closes_its_sockets(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (first, alice_id) = server.agent("alice").await;
    let login = json!({"username": "alice", "password": "agent-password"});
    let (status, body) = server.post("/api/login", login.clone(), None).await;
    assert_eq!(status, 200, "{body}");
    let second = body["token"].as_str().unwrap().to_owned();
    let (tab, _) = server.login(&first, &alice_id).await;
    let (bob, bob_id) = server.agent("bob").await;
    let (bob_tab, _) = server.login(&bob, &bob_id).await;

    let (status, _) = server
        .request(Method::POST, "/api/logout", None, Some(&second))
        .await;
    assert_eq!(status, 204);
    assert!(
        wait_closed(&tab, Duration::from_secs(5)).await,
        "the account's socket is closed at once"
    );
    for token in [&first, &second] {
        let (status, body) = server
            .request(Method::GET, "/api/me", None, Some(token))
            .await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"]["code"], "unauthorized");
        assert!(refusal(&server, token).await.contains("unauthorized"));
    }
    let (status, _) = server
        .request(Method::POST, "/api/logout", None, Some(&first))
        .await;
    assert_eq!(status, 401, "a revoked token cannot sign out again");
    // Another account is untouched, and signing in again works.
    assert!(!bob_tab.is_closed());
    assert_eq!(
        bob_tab.call("heartbeat", json!({})).await.unwrap()["ok"],
        true
    );
    let (status, body) = server.post("/api/login", login, None).await;
    assert_eq!(status, 200, "{body}");
    let fresh = body["token"].as_str().unwrap();
    let (_again, _) = server.login(fresh, &alice_id).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_signing_out_the_server_closes_the_transport_of_a_client_that_keeps_it_open() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let server = TestServer::start(Backend::Sqlite).await;
    let (token, _) = server.agent("alice").await;
    let url = format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        server.base.replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    /// The next packet that is not a ping (pings are answered); `None` once closed or silent.
    async fn next<S>(ws: &mut S) -> Option<String>
    where
        S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
            + futures_util::Sink<Message>
            + Unpin,
    {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
                Ok(Some(Ok(Message::Text(text)))) if text.as_str() == "2" => {
                    let _ = ws.send(Message::text("3")).await;
                }
                Ok(Some(Ok(Message::Text(text)))) => return Some(text.as_str().to_owned()),
                Ok(Some(Ok(_))) => continue,
                // Closed (a close frame, the end of the stream) or timed out.
                _ => return None,
            }
        }
    }
    assert!(
        next(&mut ws).await.unwrap().starts_with("0{"),
        "Engine.IO open"
    );
    ws.send(Message::text(format!(r#"40{{"token":"{token}"}}"#)))
        .await
        .unwrap();
    assert!(
        next(&mut ws).await.unwrap().starts_with("40{"),
        "Socket.IO connected"
    );
    let (status, _) = server
        .request(Method::POST, "/api/logout", None, Some(&token))
        .await;
    assert_eq!(status, 204);
    let started = Instant::now();
    // The namespace's disconnect; this client ignores it and keeps answering pings.
    assert_eq!(next(&mut ws).await.as_deref(), Some("41"));
    loop {
        match next(&mut ws).await {
            // A close packet of Engine.IO may come first.
            Some(text) if text == "1" => continue,
            Some(other) => panic!("unexpected after the sign-out: {other}"),
            None => break,
        }
    }
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(8),
        "the transport is closed by the server ({waited:?})"
    );
    server.stop().await;
}

async fn a_revocation_made_elsewhere_closes_the_socket_at_the_next_check(backend: Backend) {
    let server = TestServer::start_with(backend, |s| s.token_recheck_ms = 200).await;
    let (token, id) = server.visitor().await;
    let (client, _) = server.login(&token, &id).await;
    let (other_token, other_id) = server.visitor().await;
    let (other, _) = server.login(&other_token, &other_id).await;
    // As another node does it: in the database only, with no word to this node.
    server
        .state
        .store
        .revoke_tokens(kefu::domain::UserId::parse(&id).unwrap())
        .await
        .unwrap();
    assert!(
        wait_closed(&client, Duration::from_secs(5)).await,
        "closed at the next token check"
    );
    assert!(!other.is_closed(), "other users stay connected");
    assert!(refusal(&server, &token).await.contains("unauthorized"));
    assert_eq!(
        series(&metrics(&server).await, "kefu_revoked_disconnects_total"),
        1.0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_is_closed_when_its_token_expires() {
    let server = TestServer::start_with(Backend::Sqlite, |s| {
        s.customer_token_ttl = 2;
        s.token_recheck_ms = 200;
    })
    .await;
    let (token, id) = server.visitor().await;
    let (client, _) = server.login(&token, &id).await;
    let (agent_token, agent_id) = server.agent("alice").await;
    let (agent, _) = server.login(&agent_token, &agent_id).await;
    assert!(
        wait_closed(&client, Duration::from_secs(8)).await,
        "the connection ends with its token"
    );
    assert!(
        !agent.is_closed(),
        "a token with time left keeps its connection"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_visitors_per_address_are_limited_and_told_when_to_come_back() {
    let server = TestServer::start_with(Backend::Sqlite, |s| {
        s.visitor_rate_per_minute = 3;
        trusting_localhost(s);
    })
    .await;
    for _ in 0..3 {
        let response = from(
            &server,
            "203.0.113.7",
            Method::POST,
            "/api/visitors",
            json!({}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let response = from(
        &server,
        "203.0.113.7",
        Method::POST,
        "/api/visitors",
        json!({}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // At most 3 in any minute: the next one may come when the first is a minute old.
    assert!((55..=60).contains(&retry), "Retry-After {retry}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Another address has its own allowance.
    let response = from(
        &server,
        "198.51.100.1",
        Method::POST,
        "/api/visitors",
        json!({}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let text = metrics(&server).await;
    assert_eq!(
        series(&text, "kefu_rate_limited_total{limit=\"visitors\"}"),
        1.0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_for_header_from_an_untrusted_peer_changes_nothing() {
    let server = TestServer::start_with(Backend::Sqlite, |s| s.visitor_rate_per_minute = 2).await;
    for (ip, expected) in [
        ("203.0.113.1", StatusCode::CREATED),
        ("203.0.113.2", StatusCode::CREATED),
        ("203.0.113.3", StatusCode::TOO_MANY_REQUESTS),
    ] {
        let response = from(&server, ip, Method::POST, "/api/visitors", json!({})).await;
        assert_eq!(response.status(), expected, "as {ip}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_lock_out_the_address_and_then_the_account() {
    let server = TestServer::start_with(Backend::Sqlite, |s| {
        s.login_failures_per_minute = 1;
        s.login_failures_burst = 3;
        trusting_localhost(s);
    })
    .await;
    server.agent("alice").await;
    server.agent("bob").await;
    let wrong = json!({"username": "alice", "password": "wrong-password"});
    let right = json!({"username": "alice", "password": "agent-password"});
    for _ in 0..3 {
        let response = from(
            &server,
            "203.0.113.9",
            Method::POST,
            "/api/login",
            wrong.clone(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // The guesser's address is locked out, even with the right password...
    let response = from(
        &server,
        "203.0.113.9",
        Method::POST,
        "/api/login",
        right.clone(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // ...and so is the account, from anywhere: the guesses could come from many addresses.
    let response = from(&server, "198.51.100.4", Method::POST, "/api/login", right).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another account from another address signs in.
    let bob = json!({"username": "bob", "password": "agent-password"});
    let response = from(&server, "198.51.100.4", Method::POST, "/api/login", bob).await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = metrics(&server).await;
    assert_eq!(series(&text, "kefu_login_failures_total"), 3.0);
    assert_eq!(
        series(&text, "kefu_rate_limited_total{limit=\"login\"}"),
        2.0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_per_address_are_limited() {
    let server = TestServer::start_with(Backend::Sqlite, |s| {
        s.handshake_rate_limit = 1;
        s.handshake_rate_burst = 2;
    })
    .await;
    let (token, _) = server.visitor().await;
    let _a = server.connect(&token).await;
    let _b = server.connect(&token).await;
    assert!(refusal(&server, &token).await.contains("rate_limited"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let _c = server.connect(&token).await;
    let text = metrics(&server).await;
    assert_eq!(
        series(&text, "kefu_handshakes_total{outcome=\"limited\"}"),
        1.0
    );
    assert_eq!(
        series(&text, "kefu_handshakes_total{outcome=\"accepted\"}"),
        3.0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_holds_at_most_its_maximum_of_connections() {
    let server = TestServer::start_with(Backend::Sqlite, |s| s.max_connections_per_user = 2).await;
    let (token, _) = server.visitor().await;
    let first = server.connect(&token).await;
    let _second = server.connect(&token).await;
    assert!(
        refusal(&server, &token)
            .await
            .contains("too_many_connections")
    );
    let (other, _) = server.visitor().await;
    let _other = server.connect(&other).await;
    first.close();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Client::connect(&server.base, json!({ "token": token })).await {
            Ok(_third) => break,
            Err(e) if Instant::now() < deadline => {
                assert!(e.to_string().contains("too_many_connections"), "{e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("a closed connection frees its place: {e}"),
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_over_the_connections_rate_are_refused_without_closing_it() {
    let server = TestServer::start_with(Backend::Sqlite, |s| {
        s.event_rate_limit = 1;
        s.event_rate_burst = 3;
    })
    .await;
    let (token, _) = server.visitor().await;
    let client = server.connect(&token).await;
    let mut codes = Vec::new();
    for _ in 0..5 {
        let ack = client.call("heartbeat", json!({})).await.unwrap();
        codes.push(if ack["ok"] == true {
            "ok".to_owned()
        } else {
            ack["error"]["code"].as_str().unwrap().to_owned()
        });
    }
    assert_eq!(codes, ["ok", "ok", "ok", "rate_limited", "rate_limited"]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        client.call("heartbeat", json!({})).await.unwrap()["ok"],
        true
    );
    assert!(!client.is_closed());
    let text = metrics(&server).await;
    assert_eq!(
        series(&text, "kefu_rate_limited_total{limit=\"events\"}"),
        2.0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origins_not_allowed_are_refused_on_the_api_and_the_socket() {
    let server = TestServer::start_with(Backend::Sqlite, |s| {
        s.allowed_origins = vec!["https://shop.example".into()];
    })
    .await;
    let http = reqwest::Client::new();
    let own = server.base.clone();
    for (origin, expected) in [
        (Some("https://evil.example"), 403),
        (Some("null"), 403),
        (Some("https://shop.example"), 201),
        (Some(own.as_str()), 201),
        (None, 201),
    ] {
        let mut request = http.post(format!("{}/api/visitors", server.base));
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), expected, "Origin {origin:?}");
        if expected == 403 {
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "forbidden");
        }
    }
    // The Socket.IO handshake, long-polling or WebSocket upgrade, is refused the same way.
    let handshake = format!("{}/socket.io/?EIO=4&transport=polling", server.base);
    let refused = http
        .get(&handshake)
        .header(header::ORIGIN, "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let upgrade = http
        .get(format!(
            "{}/socket.io/?EIO=4&transport=websocket",
            server.base
        ))
        .header(header::ORIGIN, "https://evil.example")
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(upgrade.status(), 403);
    let allowed = http
        .get(&handshake)
        .header(header::ORIGIN, "https://shop.example")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    assert!(allowed.text().await.unwrap().contains("\"sid\""));
    // The pages are not API: anyone may load them.
    let page = http
        .get(format!("{}/chat", server.base))
        .header(header::ORIGIN, "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(
        series(&metrics(&server).await, "kefu_forbidden_origins_total"),
        4.0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_chat_may_be_framed_and_only_by_the_allowed_shops() {
    let server = TestServer::start_with(Backend::Sqlite, |s| {
        s.allowed_origins = vec!["https://shop.example".into()];
    })
    .await;
    let get = |path: &'static str| {
        let url = format!("{}{path}", server.base);
        async move { reqwest::get(url).await.unwrap() }
    };
    let chat = get("/chat").await;
    assert_eq!(chat.status(), 200);
    let policy = chat.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        policy.contains("frame-ancestors 'self' https://shop.example"),
        "{policy}"
    );
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(!chat.headers().contains_key(header::X_FRAME_OPTIONS));
    for path in ["/console", "/admin", "/"] {
        let page = get(path).await;
        assert_eq!(page.status(), 200, "{path}");
        let headers = page.headers();
        let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{path}: {policy}"
        );
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY", "{path}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer", "{path}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_happened() {
    let server = TestServer::start_with(Backend::Sqlite, |s| s.message_rate_limit = 0).await;
    let (agent_token, agent_id) = server.agent("alice").await;
    let (mut agent, _) = server.login(&agent_token, &agent_id).await;
    let (token, id) = server.visitor().await;
    let (visitor, _) = server.login(&token, &id).await;
    for i in 0..3 {
        let ack = visitor
            .call(
                "private_message",
                json!({ "content": format!("hello {i}") }),
            )
            .await
            .unwrap();
        assert_eq!(ack["ok"], true, "{ack}");
    }
    for _ in 0..3 {
        agent
            .expect("new_private_message", Duration::from_secs(5))
            .await
            .unwrap();
    }
    assert!(refusal(&server, "garbage").await.contains("unauthorized"));
    let text = metrics(&server).await;
    assert!(text.contains("# TYPE kefu_message_ack_seconds histogram"));
    assert_eq!(series(&text, "kefu_connections"), 2.0);
    assert_eq!(series(&text, "kefu_users_online"), 2.0);
    assert_eq!(series(&text, "kefu_logins_total"), 2.0);
    assert_eq!(series(&text, "kefu_messages_received_total"), 3.0);
    assert_eq!(series(&text, "kefu_messages_stored_total"), 3.0);
    assert_eq!(series(&text, "kefu_messages_delivered_total"), 3.0);
    assert_eq!(series(&text, "kefu_message_ack_seconds_count"), 3.0);
    assert_eq!(
        series(&text, "kefu_message_ack_seconds_bucket{le=\"+Inf\"}"),
        3.0
    );
    assert!(series(&text, "kefu_store_batch_size_count") >= 1.0);
    assert_eq!(
        series(&text, "kefu_handshakes_total{outcome=\"accepted\"}"),
        2.0
    );
    assert_eq!(
        series(&text, "kefu_handshakes_total{outcome=\"unauthorized\"}"),
        1.0
    );
    assert!(series(&text, "process_resident_memory_bytes") > 1e6);
    assert!(series(&text, "process_open_fds") > 0.0);
    assert!(
        !text.contains("kefu_redis_connected"),
        "a single node has no Redis"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_have_a_listener_of_their_own() {
    let spare = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = spare.local_addr().unwrap();
    drop(spare);
    let server = TestServer::start_with(Backend::Sqlite, |s| s.metrics_listen = Some(addr)).await;
    let (status, _) = server.get("/metrics").await;
    assert_eq!(status, 404, "not on the public listener");
    let mut text = String::new();
    for _ in 0..50 {
        if let Ok(response) = reqwest::get(format!("http://{addr}/metrics")).await {
            text = response.text().await.unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(text.contains("kefu_connections 0\n"), "{text}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_long_polling_sessions_are_capped_while_websocket_still_connects() {
    let server = TestServer::start_with(Backend::Sqlite, |s| s.max_polling_requests = 1).await;
    let http = reqwest::Client::new();
    let handshake = format!("{}/socket.io/?EIO=4&transport=polling", server.base);
    let sid = open_polling_session(&server.base).await;
    // The first poll takes the server's first ping; answered, the next poll stays open (nothing
    // to send) and takes the one place.
    let poll_url = format!("{handshake}&sid={sid}");
    assert_eq!(
        http.get(&poll_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "2"
    );
    let pong = http.post(&poll_url).body("3").send().await.unwrap();
    assert_eq!(pong.status(), 200);
    let poll = tokio::spawn({
        let url = format!("{handshake}&sid={sid}");
        let http = http.clone();
        async move { http.get(url).send().await.map(|r| r.status().as_u16()) }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = http.get(&handshake).send().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key(header::RETRY_AFTER));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    let (token, _) = server.visitor().await;
    let ws = server.connect(&token).await;
    assert_eq!(ws.call("heartbeat", json!({})).await.unwrap()["ok"], true);
    poll.abort();
    assert_eq!(
        series(
            &metrics(&server).await,
            "kefu_rate_limited_total{limit=\"polling_sessions\"}"
        ),
        1.0
    );
    server.stop().await;
}

/// Opens an Engine.IO long-polling session: its id.
async fn open_polling_session(base: &str) -> String {
    let open = reqwest::get(format!("{base}/socket.io/?EIO=4&transport=polling"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    open.split("\"sid\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a session id")
        .to_owned()
}

/// A raw request on a fresh TCP connection: the status line's code, or `None` when the server
/// closed the connection without one.
async fn raw_status(base: &str, request: &[u8]) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    // The server may answer and close before it read everything; that is fine here.
    let _ = tcp.write_all(request).await;
    let mut head = [0u8; 12];
    match tokio::time::timeout(Duration::from_secs(20), tcp.read_exact(&mut head)).await {
        Ok(Ok(_)) => std::str::from_utf8(&head[9..12]).ok()?.parse().ok(),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_headers_get_431_and_the_server_keeps_serving() {
    let server = TestServer::start(Backend::Sqlite).await;
    let big = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    assert_eq!(raw_status(&server.base, big.as_bytes()).await, Some(431));
    let many: String = (0..5000).map(|i| format!("x-h{i}: v\r\n")).collect();
    let many = format!("GET /healthz HTTP/1.1\r\nhost: x\r\n{many}\r\n");
    assert_eq!(raw_status(&server.base, many.as_bytes()).await, Some(431));
    let fine = b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    assert_eq!(raw_status(&server.base, fine).await, Some(200));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_header_cap_holds_when_the_headers_come_in_one_write() {
    let server = TestServer::start(Backend::Sqlite).await;
    let head = |bytes: usize| {
        format!(
            "GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\nx-big: {}\r\n\r\n",
            "a".repeat(bytes)
        )
    };
    // raw_status writes the whole head at once: hyper reads it past its buffer's limit in one go.
    assert_eq!(
        raw_status(&server.base, head(40 * 1024).as_bytes()).await,
        Some(431)
    );
    assert_eq!(
        raw_status(&server.base, head(33 * 1024).as_bytes()).await,
        Some(431)
    );
    assert_eq!(
        raw_status(&server.base, head(30 * 1024).as_bytes()).await,
        Some(200)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start(Backend::Sqlite).await;
    let mut tcp = tokio::net::TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the connection is closed");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(20),
        "closed after {waited:?}, the header deadline being 10 s"
    );
    let (status, _) = server.get("/healthz").await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_polling_upload_sent_byte_by_byte_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start(Backend::Sqlite).await;
    let sid = open_polling_session(&server.base).await;
    let mut tcp = tokio::net::TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nhost: x\r\n\
         content-type: text/plain\r\ncontent-length: 1000\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let trickle = async {
        loop {
            if tcp.write_all(b"4").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(40), trickle).await;
    let waited = started.elapsed();
    let mut answer = vec![0u8; 12];
    let _ = tcp.read(&mut answer).await;
    assert!(
        waited < Duration::from_secs(30),
        "the upload is cut off after its 20 s deadline, not left open ({waited:?})"
    );
    let (status, _) = server.get("/healthz").await;
    assert_eq!(status, 200);
    server.stop().await;
}

/// A certificate authority and a certificate for `localhost` signed by it, in PEM files under
/// `dir`: (certificate path, key path, the authority's certificate).
fn test_certificate(
    dir: &std::path::Path,
) -> (
    std::path::PathBuf,
    std::path::PathBuf,
    rustls::pki_types::CertificateDer<'static>,
) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, leaf.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path, ca.der().clone())
}

async fn tls_connect(
    base: &str,
    ca: &rustls::pki_types::CertificateDer<'static>,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.expect("TLS handshake")
}

/// The next text frame that is not an Engine.IO ping.
async fn next_text(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    >,
) -> String {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match ws.next().await.expect("a frame").unwrap() {
            Message::Text(text) if text.as_str() != "2" => return text.to_string(),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_certificate_the_server_speaks_https_and_wss() {
    use futures_util::SinkExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::Message;
    let dir = common::temp_dir();
    let (cert, key, ca) = test_certificate(&dir.join("tls"));
    let server = TestServer::start_with(Backend::Sqlite, |s| {
        s.tls_cert = Some(cert);
        s.tls_key = Some(key);
    })
    .await;

    // HTTPS
    let mut tls = tls_connect(&server.base, &ca).await;
    tls.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tls.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("ok"), "{answer}");

    // Plain HTTP on the TLS port is refused.
    assert_eq!(
        raw_status(&server.base, b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await,
        None
    );

    // WSS, with a visitor's token (made here: the test's HTTP client speaks no TLS).
    let (token, user) = server
        .state
        .accounts
        .create_visitor(None, None)
        .await
        .unwrap();
    let id = user.id.to_string();
    let tls = tls_connect(&server.base, &ca).await;
    let (mut ws, _) = tokio_tungstenite::client_async(
        "wss://localhost/socket.io/?EIO=4&transport=websocket",
        tls,
    )
    .await
    .expect("WebSocket over TLS");
    assert!(next_text(&mut ws).await.starts_with("0{"), "Engine.IO open");
    ws.send(Message::text(format!(r#"40{{"token":"{token}"}}"#)))
        .await
        .unwrap();
    assert!(
        next_text(&mut ws).await.starts_with("40{\"sid\""),
        "Socket.IO connected"
    );
    ws.send(Message::text(format!(
        r#"421["login",{{"userId":"{id}"}}]"#
    )))
    .await
    .unwrap();
    let ack = loop {
        let text = next_text(&mut ws).await;
        if text.starts_with("431") {
            break text;
        }
    };
    assert!(ack.contains("\"ok\":true"), "{ack}");
    server.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_without_its_key_or_with_another_key_is_refused_at_start() {
    let dir = common::temp_dir();
    let (cert, _key, _) = test_certificate(&dir.join("a"));
    let (_, other_key, _) = test_certificate(&dir.join("b"));
    let mut settings = common::settings(dir.clone(), None);
    settings.tls_cert = Some(cert.clone());
    let error = kefu::Server::open(settings.clone())
        .await
        .err()
        .expect("refused");
    assert!(error.to_string().contains("both"), "{error:#}");
    settings.tls_key = Some(other_key);
    let error = kefu::Server::open(settings.clone())
        .await
        .err()
        .expect("refused");
    assert!(format!("{error:#}").contains("does not match"), "{error:#}");
    settings.tls_key = Some(dir.join("missing.pem"));
    let error = kefu::Server::open(settings).await.err().expect("refused");
    assert!(format!("{error:#}").contains("missing.pem"), "{error:#}");
    let _ = std::fs::remove_dir_all(dir);
}

const KEY_1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_2: &str = "k2:HxwdHhscGRoXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=";

/// What the database holds: (content, key_id) of every row of `table`, oldest first.
async fn stored_rows(server: &TestServer, table: &str) -> Vec<(String, Option<String>)> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&server.state.settings.database_url())
        .await
        .unwrap();
    let rows = sqlx::query(&format!("SELECT content, key_id FROM {table} ORDER BY id"))
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows.iter()
        .map(|r| {
            // MySQL's MEDIUMTEXT comes through the Any driver as bytes.
            let content = r
                .try_get::<String, _>("content")
                .unwrap_or_else(|_| String::from_utf8(r.get::<Vec<u8>, _>("content")).unwrap());
            (content, r.get::<Option<String>, _>("key_id"))
        })
        .collect()
}

async fn history_contents(client: &Client) -> Value {
    let ack = client.call("history", json!({})).await.unwrap();
    if ack["ok"] != true {
        return ack;
    }
    ack["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].clone())
        .collect()
}

async fn content_is_encrypted_at_rest_and_its_keys_rotate(backend: Backend) {
    let keys = |list: &[&str]| -> Vec<kefu::config::Secret> {
        list.iter().map(|k| kefu::config::Secret::new(*k)).collect()
    };
    let mut server = TestServer::start_with(backend, |s| s.encryption_keys = keys(&[KEY_1])).await;
    let (agent_token, agent_id) = server.agent("alice").await;
    let (visitor_token, visitor_id) = server.visitor().await;
    {
        let (agent, _) = server.login(&agent_token, &agent_id).await;
        let (visitor, _) = server.login(&visitor_token, &visitor_id).await;
        let ack = visitor
            .call(
                "private_message",
                json!({"content": "my order 4711 never came"}),
            )
            .await
            .unwrap();
        assert_eq!(ack["ok"], true, "{ack}");
        let ack = agent
            .call(
                "note",
                json!({"peerId": visitor_id, "content": "order 4711: refund"}),
            )
            .await
            .unwrap();
        assert_eq!(ack["ok"], true, "{ack}");
        assert_eq!(
            history_contents(&visitor).await,
            json!(["my order 4711 never came"])
        );
    }
    for table in ["messages", "notes"] {
        let rows = stored_rows(&server, table).await;
        assert_eq!(rows.len(), 1, "{table}");
        assert!(
            !rows[0].0.contains("4711"),
            "{table} holds ciphertext: {}",
            rows[0].0
        );
        assert_eq!(rows[0].1.as_deref(), Some("k1"), "{table}");
    }

    // A new key seals from now on; the old one still opens what it sealed.
    server
        .restart_with(|s| s.encryption_keys = keys(&[KEY_2, KEY_1]))
        .await;
    {
        let (agent, _) = server.login(&agent_token, &agent_id).await;
        let (visitor, _) = server.login(&visitor_token, &visitor_id).await;
        let ack = visitor
            .call("private_message", json!({"content": "still waiting, 4711"}))
            .await
            .unwrap();
        assert_eq!(ack["ok"], true, "{ack}");
        assert_eq!(
            history_contents(&visitor).await,
            json!(["my order 4711 never came", "still waiting, 4711"])
        );
        let notes = agent
            .call("notes", json!({"peerId": visitor_id}))
            .await
            .unwrap();
        assert_eq!(
            notes["notes"][0]["content"], "order 4711: refund",
            "{notes}"
        );
    }
    let keys_used: Vec<Option<String>> = stored_rows(&server, "messages")
        .await
        .into_iter()
        .map(|r| r.1)
        .collect();
    assert_eq!(keys_used, [Some("k1".to_owned()), Some("k2".to_owned())]);

    // Without the keys, sealed content cannot be read, and is never shown as ciphertext.
    server
        .restart_with(|s| s.encryption_keys = Vec::new())
        .await;
    let (visitor, _) = server.login(&visitor_token, &visitor_id).await;
    let refused = history_contents(&visitor).await;
    assert_eq!(refused["error"]["code"], "internal", "{refused}");
    drop(visitor);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_encryption_key_is_refused_at_start() {
    let dir = common::temp_dir();
    let mut settings = common::settings(dir.clone(), None);
    settings.encryption_keys = vec![kefu::config::Secret::new("k1:c2hvcnQ=")];
    let error = kefu::Server::open(settings).await.err().expect("refused");
    assert!(format!("{error:#}").contains("32"), "{error:#}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_handshake_that_never_comes_is_cut_off() {
    use tokio::io::AsyncReadExt;
    let dir = common::temp_dir();
    let (cert, key, ca) = test_certificate(&dir.join("tls"));
    let server = TestServer::start_with(Backend::Sqlite, |s| {
        s.tls_cert = Some(cert);
        s.tls_key = Some(key);
    })
    .await;
    let mut silent = tokio::net::TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), silent.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the silent connection is closed");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(20),
        "closed after {waited:?}, the handshake deadline being 10 s"
    );
    // Meanwhile and after, a real client is served.
    let mut tls = tls_connect(&server.base, &ca).await;
    use tokio::io::AsyncWriteExt;
    tls.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tls.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    server.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_passwords_session_ids_and_message_bodies_stay_out_of_the_log() {
    let dir = common::temp_dir();
    // kefu's own code at its most talkative, everything else at the default level.
    let mut server =
        common::Process::spawn_with(&dir, None, &[("KEFU_LOG", "info,kefu=debug".to_owned())]);
    let base = server.base.clone();
    let (_, admin) = common::post_json(
        &base,
        "/api/login",
        json!({"username": "admin", "password": common::ADMIN_PASSWORD}),
        None,
    )
    .await;
    let admin = admin["token"].as_str().unwrap().to_owned();
    let agent_password = "correct-horse-battery-7391";
    let (status, agent) = common::post_json(
        &base,
        "/api/agents",
        json!({"username": "alice", "password": agent_password}),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 201, "{agent}");
    let (_, alice) = common::post_json(
        &base,
        "/api/login",
        json!({"username": "alice", "password": agent_password}),
        None,
    )
    .await;
    let alice_token = alice["token"].as_str().unwrap().to_owned();
    let wrong_password = "wrong-password-5512";
    let (status, _) = common::post_json(
        &base,
        "/api/login",
        json!({"username": "alice", "password": wrong_password}),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (_, visitor) = common::post_json(&base, "/api/visitors", json!({}), None).await;
    let visitor_token = visitor["token"].as_str().unwrap().to_owned();
    let visitor_id = visitor["user"]["id"].as_str().unwrap().to_owned();

    let agent = Client::connect(&base, json!({"token": alice_token}))
        .await
        .unwrap();
    agent.call("login", json!({})).await.unwrap();
    let customer = Client::connect(&base, json!({"token": visitor_token}))
        .await
        .unwrap();
    customer
        .call("login", json!({"userId": visitor_id}))
        .await
        .unwrap();
    let body = "my card number is 4111-1111-1111-1111";
    let ack = customer
        .call("private_message", json!({"content": body}))
        .await
        .unwrap();
    assert_eq!(ack["ok"], true, "{ack}");
    let note = "customer called about card 4111";
    agent
        .call("note", json!({"peerId": visitor_id, "content": note}))
        .await
        .unwrap();
    let forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.forged-signature-8812";
    assert!(
        Client::connect(&base, json!({"token": forged}))
            .await
            .is_err()
    );
    // A long-polling session id, which would let a reader of the log take the session over.
    let sid = open_polling_session(&base).await;
    let _ = reqwest::get(format!(
        "{base}/socket.io/?EIO=4&transport=polling&sid={sid}"
    ))
    .await;
    let (status, _) = server_logout(&base, &alice_token).await;
    assert_eq!(status, 204);
    drop((agent, customer));
    assert_eq!(server.terminate(), Some(0));

    assert!(
        !server.log_lines("signed out").is_empty(),
        "the log is there and talkative: {:?}",
        server.log_lines("")
    );
    for secret in [
        alice_token.as_str(),
        visitor_token.as_str(),
        admin.as_str(),
        forged,
        common::ADMIN_PASSWORD,
        agent_password,
        wrong_password,
        body,
        "4111-1111",
        note,
        sid.as_str(),
    ] {
        assert_eq!(
            server.log_lines(secret),
            Vec::<String>::new(),
            "{secret} was logged"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

async fn server_logout(base: &str, token: &str) -> (u16, Value) {
    common::post_json(base, "/api/logout", json!({}), Some(token)).await
}
