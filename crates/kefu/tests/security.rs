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
    assert!((1..=20).contains(&retry), "Retry-After {retry}");
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
    let open = http
        .get(&handshake)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let sid = open
        .split("\"sid\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a session id")
        .to_owned();
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
