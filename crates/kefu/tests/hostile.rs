//! Hostile input and hostile conditions, against the running server: SQL injection and 1 MB
//! strings in every text field, control characters and lone UTF-16 surrogates, a reconnect storm
//! of 5,000 connections, and SQLite's disk filling up. Each story asserts the exact outcome, then
//! that the server still serves everyone: a fresh visitor and agent exchange a message.

mod common;

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
    path::Path,
    time::{Duration, Instant},
};

use common::{ADMIN_PASSWORD, Backend, Process, TestServer, WAIT, get_json, post_json, temp_dir};
use futures_util::{StreamExt, stream};
use kefu_wire::{Client, Dial, Refused};
use reqwest::Method;
use serde_json::{Value, json};

on_every_backend!(
    sql_injection_in_every_text_field_is_stored_verbatim_or_refused,
    control_characters_are_stored_verbatim_and_nul_and_lone_surrogates_are_refused,
);

/// What an attacker types where a careless program pastes text into SQL.
const INJECTIONS: [&str; 6] = [
    "'; DROP TABLE messages; --",
    "\" OR 1=1 --",
    "\\'); DELETE FROM users; --",
    "%' OR '1'='1",
    "1; DROP TABLE users",
    "' UNION SELECT password_hash, email FROM users --",
];

/// Injections where an id goes, besides [`INJECTIONS`]: some that start like a number.
const NUMBER_LIKE_INJECTIONS: [&str; 4] = ["1 OR 1=1", "1' --", "1)) OR ((1=1", "1/**/OR/**/1=1"];

fn id_injections() -> impl Iterator<Item = &'static str> {
    INJECTIONS.into_iter().chain(NUMBER_LIKE_INJECTIONS)
}

/// Injections that are still well-formed email addresses (no blank, one `@`).
const INJECTED_EMAILS: [&str; 2] = ["x'OR'1'='1@example.com", "a@b.c';DROP/**/TABLE/**/users;--"];

const MB: usize = 1 << 20;

/// A refusal with this status and error code.
#[track_caller]
fn assert_refused((status, body): (u16, Value), expected: u16, code: &str) {
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (expected, Some(code)),
        "{}",
        shorten(&body.to_string())
    );
}

/// Text short enough for an assertion message.
fn shorten(text: &str) -> String {
    if text.len() <= 300 {
        return text.to_owned();
    }
    let cut = (0..=300).rev().find(|i| text.is_char_boundary(*i)).unwrap();
    format!("{}… ({} bytes)", &text[..cut], text.len())
}

/// Every byte that is not a letter or digit percent-encoded, for an id in a URL path.
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Waits for the `new_private_message` with this id, skipping other events.
async fn expect_message(client: &mut Client, id: &Value) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match client.next_event(left).await {
            Some(event) if event.name == "new_private_message" && event.data["id"] == *id => {
                return event.data;
            }
            Some(_) => continue,
            None => panic!("message {id} was not delivered within {WAIT:?}"),
        }
    }
}

async fn wait_closed(client: &Client, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while !client.is_closed() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.is_closed()
}

/// The event's ack, which must be an error: its code.
async fn ack_code(client: &Client, event: &str, payload: &Value) -> String {
    let ack = client
        .call(event, payload.clone())
        .await
        .unwrap_or_else(|e| panic!("{event} {}: {e}", shorten(&payload.to_string())));
    assert_eq!(
        ack["ok"],
        false,
        "{event} {}: {ack}",
        shorten(&payload.to_string())
    );
    ack["error"]["code"].as_str().unwrap_or_default().to_owned()
}

/// Every message of a conversation, oldest first, read page by page.
async fn all_messages(client: &Client, query: Value) -> Vec<Value> {
    let mut messages = Vec::new();
    loop {
        let mut page_query = query.clone();
        page_query["afterSeq"] = json!(
            messages
                .last()
                .map_or(0, |m: &Value| m["seq"].as_i64().unwrap())
        );
        page_query["limit"] = json!(100);
        let page = client.call("history", page_query).await.unwrap();
        assert_eq!(page["ok"], true, "{page}");
        messages.extend(page["messages"].as_array().unwrap().iter().cloned());
        if page["hasMore"] != true {
            return messages;
        }
    }
}

/// The server still serves everyone: a new agent and a new visitor exchange a message both ways.
async fn still_serves_everyone(base: &str) {
    let (status, admin) = post_json(
        base,
        "/api/login",
        json!({"username": "admin", "password": ADMIN_PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{admin}");
    let admin = admin["token"].as_str().unwrap().to_owned();
    let username = format!("fresh-{}", kefu::services::auth::random_hex(4));
    let login = json!({"username": username, "password": "agent-password"});
    let (status, body) = post_json(base, "/api/agents", login.clone(), Some(&admin)).await;
    assert_eq!(status, 201, "{body}");
    let agent_id = body["user"]["id"].as_str().unwrap().to_owned();
    // Room for every customer still waiting, so that the fresh visitor is this agent's too.
    let (status, body) = common::request_json(
        base,
        Method::PATCH,
        &format!("/api/agents/{agent_id}"),
        json!({"capacity": 10_000}),
        &admin,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, session) = post_json(base, "/api/login", login, None).await;
    assert_eq!(status, 200, "{session}");
    let mut agent = Client::connect(base, json!({"token": session["token"]}))
        .await
        .expect("a fresh agent connects");
    let ack = agent
        .call("login", json!({"userId": agent_id}))
        .await
        .unwrap();
    assert_eq!(ack["ok"], true, "{ack}");

    let (status, visitor) = post_json(base, "/api/visitors", json!({"name": "Fresh"}), None).await;
    assert_eq!(status, 201, "{visitor}");
    let visitor_id = visitor["user"]["id"].as_str().unwrap().to_owned();
    let mut customer = Client::connect(base, json!({"token": visitor["token"]}))
        .await
        .expect("a fresh visitor connects");
    let ack = customer
        .call("login", json!({"userId": visitor_id, "csId": agent_id}))
        .await
        .unwrap();
    assert_eq!(ack["ok"], true, "{ack}");
    // Its first message starts the conversation, with the agent it asked for.
    let opened = customer
        .call("private_message", json!({"content": "hello"}))
        .await
        .unwrap();
    assert_eq!(opened["started"]["csId"], agent_id.as_str(), "{opened}");
    let sent = customer
        .call("private_message", json!({"content": "still there?"}))
        .await
        .unwrap();
    assert_eq!(sent["ok"], true, "{sent}");
    assert_eq!(
        expect_message(&mut agent, &sent["id"]).await["content"],
        "still there?"
    );
    let reply = agent
        .call(
            "private_message",
            json!({"receiverId": visitor_id, "content": "yes"}),
        )
        .await
        .unwrap();
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(
        expect_message(&mut customer, &reply["id"]).await["content"],
        "yes"
    );
    agent.close();
    customer.close();
}

/// Runs `query` on the server's database, from outside the server: every row, each column as text
/// (numbers too), `None` for NULL.
async fn rows(server: &TestServer, query: &str) -> Vec<Vec<Option<String>>> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&server.state.settings.database_url())
        .await
        .unwrap();
    let rows = sqlx::query(query).fetch_all(&pool).await.unwrap();
    pool.close().await;
    rows.iter()
        .map(|row| {
            (0..row.columns().len())
                .map(|i| {
                    // MySQL's TEXT columns come through the Any driver as bytes.
                    row.try_get::<Option<String>, _>(i)
                        .or_else(|_| {
                            row.try_get::<Option<Vec<u8>>, _>(i)
                                .map(|b| b.map(|b| String::from_utf8(b).unwrap()))
                        })
                        .or_else(|_| {
                            row.try_get::<Option<i64>, _>(i)
                                .map(|n| n.map(|n| n.to_string()))
                        })
                        .unwrap_or_else(|e| panic!("{query}: column {i}: {e}"))
                })
                .collect()
        })
        .collect()
}

/// The number of rows of each table, as the database says.
async fn counts(server: &TestServer) -> BTreeMap<&'static str, i64> {
    let mut counts = BTreeMap::new();
    for table in [
        "users",
        "conversations",
        "messages",
        "notes",
        "canned_replies",
    ] {
        let n = rows(server, &format!("SELECT COUNT(*) FROM {table}")).await[0][0]
            .as_deref()
            .unwrap()
            .parse()
            .unwrap();
        counts.insert(table, n);
    }
    counts
}

async fn sql_injection_in_every_text_field_is_stored_verbatim_or_refused(backend: Backend) {
    let server = TestServer::start_with(backend, |s| {
        s.message_rate_limit = 0;
        s.event_rate_limit = 0;
    })
    .await;
    let admin = server.admin_token().await;
    let (alice_token, alice_id) = server.agent("alice").await;
    let (bob_token, bob_id) = server.agent("bob").await;

    // Over HTTP: visitor names and emails, usernames, passwords, display names, canned replies.
    let mut named_visitors = Vec::new();
    for injection in INJECTIONS {
        let (status, body) = server
            .post("/api/visitors", json!({"name": injection}), None)
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["user"]["displayName"], injection);
        let token = body["token"].as_str().unwrap().to_owned();
        let (status, me) = server
            .request(Method::GET, "/api/me", None, Some(&token))
            .await;
        assert_eq!(status, 200, "{me}");
        assert_eq!(me["user"]["displayName"], injection, "read back verbatim");
        named_visitors.push((token, body["user"]["id"].as_str().unwrap().to_owned()));

        // Every one of them has a blank, which no email address has.
        let email = json!({"name": "Ann", "email": injection});
        assert_refused(
            server.post("/api/visitors", email, None).await,
            400,
            "invalid_payload",
        );
        for login in [
            json!({"username": injection, "password": "agent-password"}),
            json!({"username": format!("alice{injection}"), "password": "agent-password"}),
            json!({"username": "alice", "password": injection}),
            json!({"username": injection, "password": injection}),
        ] {
            assert_refused(
                server.post("/api/login", login, None).await,
                401,
                "unauthorized",
            );
        }
        let agent = json!({"username": injection, "password": "agent-password"});
        assert_refused(
            server.post("/api/agents", agent, Some(&admin)).await,
            400,
            "invalid_payload",
        );
        let reply = json!({"shortcut": injection, "content": "x"});
        assert_refused(
            server
                .post("/api/canned-replies", reply, Some(&alice_token))
                .await,
            400,
            "invalid_payload",
        );
    }
    for email in INJECTED_EMAILS {
        let (status, body) = server
            .post(
                "/api/visitors",
                json!({"name": "Eve", "email": email}),
                None,
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let emails = rows(
        &server,
        "SELECT email FROM users WHERE email IS NOT NULL ORDER BY id",
    )
    .await;
    assert_eq!(
        emails,
        INJECTED_EMAILS.map(|e| vec![Some(e.to_owned())]),
        "stored verbatim"
    );

    // Injections as passwords and display names are kept verbatim: the password signs in, and a
    // character more does not.
    for (i, injection) in INJECTIONS.into_iter().enumerate() {
        let username = format!("agent-{i}");
        let (status, body) = server
            .post(
                "/api/agents",
                json!({"username": username, "password": injection, "displayName": injection}),
                Some(&admin),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["user"]["displayName"], injection);
        let (status, session) = server
            .post(
                "/api/login",
                json!({"username": username, "password": injection}),
                None,
            )
            .await;
        assert_eq!(status, 200, "{session}");
        assert_eq!(session["user"]["displayName"], injection);
        let wrong = json!({"username": username, "password": format!("{injection}x")});
        assert_refused(
            server.post("/api/login", wrong, None).await,
            401,
            "unauthorized",
        );
    }
    let (status, agents) = server
        .request(Method::GET, "/api/agents", None, Some(&admin))
        .await;
    assert_eq!(status, 200, "{agents}");
    for injection in INJECTIONS {
        assert!(
            agents["agents"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["displayName"] == injection),
            "{injection} among {agents}"
        );
    }

    let mut reply_ids = Vec::new();
    for (i, injection) in INJECTIONS.into_iter().enumerate() {
        let (status, body) = server
            .request(
                Method::POST,
                "/api/canned-replies",
                Some(json!({"shortcut": format!("/inj{i}"), "content": injection})),
                Some(&alice_token),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["reply"]["content"], injection);
        reply_ids.push(body["reply"]["id"].as_str().unwrap().to_owned());
    }
    let first_reply = format!("/api/canned-replies/{}", reply_ids[0]);
    for injection in INJECTIONS {
        let change = Some(json!({"shortcut": injection}));
        assert_refused(
            server
                .request(Method::PATCH, &first_reply, change, Some(&alice_token))
                .await,
            400,
            "invalid_payload",
        );
    }
    for content in [INJECTIONS[1], INJECTIONS[0]] {
        let (status, changed) = server
            .request(
                Method::PATCH,
                &first_reply,
                Some(json!({"content": content})),
                Some(&alice_token),
            )
            .await;
        assert_eq!(status, 200, "{changed}");
        assert_eq!(changed["reply"]["content"], content);
    }
    let (status, list) = server
        .request(Method::GET, "/api/canned-replies", None, Some(&alice_token))
        .await;
    assert_eq!(status, 200, "{list}");
    let contents: Vec<&str> = list["replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, INJECTIONS, "read back verbatim, by shortcut");

    // Injections where a path or query names an id.
    for injection in id_injections() {
        let id = percent_encoded(injection);
        for (method, path, token, body) in [
            (
                Method::PATCH,
                format!("/api/canned-replies/{id}"),
                &alice_token,
                Some(json!({"content": "x"})),
            ),
            (
                Method::DELETE,
                format!("/api/canned-replies/{id}"),
                &alice_token,
                None,
            ),
            (
                Method::PATCH,
                format!("/api/agents/{id}"),
                &admin,
                Some(json!({"disabled": true})),
            ),
            (
                Method::GET,
                format!("/api/admin/conversations/{id}/transcript"),
                &admin,
                None,
            ),
            (Method::GET, format!("/api/attachments/{id}"), &admin, None),
            (
                Method::GET,
                format!("/api/admin/reports?days={id}"),
                &admin,
                None,
            ),
        ] {
            let (status, answer) = server
                .request(method.clone(), &path, body, Some(token))
                .await;
            assert_eq!(
                (status, answer["error"]["code"].as_str()),
                (400, Some("invalid_payload")),
                "{method} {path}: {answer}"
            );
        }
    }

    // Over Socket.IO: message content and clientMsgId, read back live and from history.
    let (mut alice, _) = server.login(&alice_token, &alice_id).await;
    let (bob, _) = server.login(&bob_token, &bob_id).await;
    let (ann_token, ann_id) = server.visitor().await;
    let mut ann = server.connect(&ann_token).await;
    let login = ann
        .call("login", json!({"userId": ann_id, "csId": alice_id}))
        .await
        .unwrap();
    assert_eq!(login["ok"], true, "{login}");
    // Its first message starts the conversation, with the agent it asked for.
    let opened = ann
        .call("private_message", json!({"content": "hello"}))
        .await
        .unwrap();
    assert_eq!(opened["started"]["csId"], alice_id.as_str(), "{opened}");
    let mut expected = vec![json!({"clientMsgId": Value::Null, "content": "hello"})];
    let mut last_id = Value::Null;
    for injection in INJECTIONS {
        let message = json!({"content": injection, "clientMsgId": injection});
        let sent = ann.call("private_message", message.clone()).await.unwrap();
        assert_eq!(sent["ok"], true, "{sent}");
        assert_eq!(
            (&sent["clientMsgId"], &sent["duplicate"]),
            (&json!(injection), &json!(false))
        );
        let received = expect_message(&mut alice, &sent["id"]).await;
        assert_eq!(received["content"], injection);
        assert_eq!(received["clientMsgId"], injection);
        let again = ann.call("private_message", message).await.unwrap();
        assert_eq!(
            (&again["id"], &again["duplicate"]),
            (&sent["id"], &json!(true)),
            "{again}"
        );
        let reply = alice
            .call(
                "private_message",
                json!({"receiverId": ann_id, "content": injection}),
            )
            .await
            .unwrap();
        assert_eq!(reply["ok"], true, "{reply}");
        assert_eq!(
            expect_message(&mut ann, &reply["id"]).await["content"],
            injection
        );
        expected.extend([
            json!({"content": injection, "clientMsgId": injection}),
            json!({"content": injection, "clientMsgId": null}),
        ]);
        last_id = reply["id"].clone();
    }
    let stored = |messages: Vec<Value>| -> Vec<Value> {
        messages
            .iter()
            .filter(|m| m["kind"] == "text")
            .map(|m| json!({"content": m["content"], "clientMsgId": m["clientMsgId"]}))
            .collect()
    };
    assert_eq!(stored(all_messages(&ann, json!({})).await), expected);
    assert_eq!(
        stored(all_messages(&alice, json!({"peerId": ann_id})).await),
        expected
    );
    for injection in INJECTIONS {
        let noted = alice
            .call("note", json!({"peerId": ann_id, "content": injection}))
            .await
            .unwrap();
        assert_eq!(noted["note"]["content"], injection, "{noted}");
    }

    // Injections where an event names an id: refused as no id at all, nothing done.
    let conversation = opened["conversationId"].clone();
    for injection in id_injections() {
        let cases = [
            (&ann, "login", json!({"userId": injection})),
            (&ann, "login", json!({"userId": ann_id, "csId": injection})),
            (
                &ann,
                "private_message",
                json!({"receiverId": injection, "content": "x"}),
            ),
            (
                &ann,
                "private_message",
                json!({"senderId": injection, "content": "x"}),
            ),
            (&ann, "history", json!({"conversationId": injection})),
            (&ann, "history", json!({"beforeId": injection})),
            (
                &ann,
                "typing",
                json!({"receiverId": injection, "typing": true}),
            ),
            (&ann, "read", json!({"upToId": injection})),
            (
                &ann,
                "rate",
                json!({"conversationId": injection, "score": 5}),
            ),
            (
                &alice,
                "private_message",
                json!({"receiverId": injection, "content": "x"}),
            ),
            (&alice, "history", json!({"peerId": injection})),
            (
                &alice,
                "history",
                json!({"peerId": ann_id, "beforeId": injection}),
            ),
            (
                &alice,
                "read",
                json!({"peerId": injection, "upToId": last_id}),
            ),
            (
                &alice,
                "read",
                json!({"peerId": ann_id, "upToId": injection}),
            ),
            (
                &alice,
                "typing",
                json!({"receiverId": injection, "typing": true}),
            ),
            (&alice, "note", json!({"peerId": injection, "content": "x"})),
            (&alice, "notes", json!({"peerId": injection})),
            (&alice, "notes", json!({"conversationId": injection})),
            (&alice, "resolve", json!({"peerId": injection})),
            (
                &alice,
                "transfer",
                json!({"peerId": injection, "toAgentId": bob_id}),
            ),
            (
                &alice,
                "transfer",
                json!({"peerId": ann_id, "toAgentId": injection}),
            ),
        ];
        for (client, event, payload) in cases {
            assert_eq!(
                ack_code(client, event, &payload).await,
                "invalid_payload",
                "{event} {payload}"
            );
        }
    }
    assert_eq!(
        stored(all_messages(&ann, json!({})).await),
        expected,
        "nothing was added"
    );
    let history = ann
        .call("history", json!({"conversationId": conversation}))
        .await
        .unwrap();
    assert_eq!(history["peerReadSeq"], 0, "nothing was read: {history}");

    // Transfer notes: the conversation goes back and forth, each time with an injection.
    let mut agents = [(alice, alice_id.clone()), (bob, bob_id.clone())];
    for (i, injection) in INJECTIONS.into_iter().enumerate() {
        let (from, to) = (i % 2, (i + 1) % 2);
        let to_id = agents[to].1.clone();
        let moved = agents[from]
            .0
            .call(
                "transfer",
                json!({"peerId": ann_id, "toAgentId": to_id, "note": injection}),
            )
            .await
            .unwrap();
        assert_eq!(moved["ok"], true, "{moved}");
        assert_eq!(moved["agentId"], to_id.as_str());
    }
    let [(alice, _), (bob, _)] = &mut agents;
    let notes = alice
        .call("notes", json!({"peerId": ann_id}))
        .await
        .unwrap();
    let notes: Vec<&str> = notes["notes"]
        .as_array()
        .unwrap_or_else(|| panic!("{notes}"))
        .iter()
        .map(|n| n["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        notes,
        [INJECTIONS, INJECTIONS].concat(),
        "notes, then transfer notes"
    );

    // Rating comments, by the visitors named with injections: each rates a resolved conversation.
    for ((token, id), injection) in named_visitors.iter().zip(INJECTIONS) {
        let customer = server.connect(token).await;
        customer
            .call("login", json!({"userId": id, "csId": bob_id}))
            .await
            .unwrap();
        let sent = customer
            .call("private_message", json!({"content": "hello"}))
            .await
            .unwrap();
        assert_eq!(sent["ok"], true, "{sent}");
        assert_eq!(sent["started"]["csId"], bob_id.as_str(), "{sent}");
        let members = bob.call("all_member", json!({})).await.unwrap();
        let member = members["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["id"] == id.as_str())
            .unwrap_or_else(|| panic!("{members}"));
        assert_eq!(member["displayName"], injection);
        let resolved = bob.call("resolve", json!({"peerId": id})).await.unwrap();
        assert_eq!(resolved["ok"], true, "{resolved}");
        let rated = customer
            .call(
                "rate",
                json!({"conversationId": sent["conversationId"], "score": 3, "comment": injection}),
            )
            .await
            .unwrap();
        assert_eq!(rated, json!({"ok": true}));
    }
    let comments = rows(
        &server,
        "SELECT rating_comment FROM conversations WHERE rating IS NOT NULL ORDER BY id",
    )
    .await;
    assert_eq!(
        comments,
        INJECTIONS.map(|c| vec![Some(c.to_owned())]),
        "stored verbatim"
    );

    // Every table is still there, with every row: admin, alice, bob, 6 agents, 6 + 2 + 1 visitors;
    // Ann's first "hello" and 12 messages, a system message per transfer, one "hello" per named
    // visitor.
    let expected_counts = BTreeMap::from([
        ("users", 18),
        ("conversations", 7),
        ("messages", 1 + 12 + 6 + 6),
        ("notes", 12),
        ("canned_replies", 6),
    ]);
    // The transfers' system messages are written as messages are, in the background.
    let deadline = Instant::now() + WAIT;
    let mut found = counts(&server).await;
    while found != expected_counts && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        found = counts(&server).await;
    }
    assert_eq!(found, expected_counts);
    drop(agents);
    drop(ann);
    still_serves_everyone(&server.base).await;
    server.stop().await;
}

/// Every text field of the HTTP API holding `text`: (method, path, token, body).
fn text_fields<'a>(
    text: &str,
    admin: &'a str,
    agent: &'a str,
    reply: &str,
) -> Vec<(Method, String, Option<&'a str>, Value)> {
    let email = format!("{text}@example.com");
    vec![
        (
            Method::POST,
            "/api/visitors".into(),
            None,
            json!({"name": text}),
        ),
        (
            Method::POST,
            "/api/visitors".into(),
            None,
            json!({"email": email}),
        ),
        (
            Method::POST,
            "/api/login".into(),
            None,
            json!({"username": text, "password": "agent-password"}),
        ),
        (
            Method::POST,
            "/api/login".into(),
            None,
            json!({"username": "alice", "password": text}),
        ),
        (
            Method::POST,
            "/api/agents".into(),
            Some(admin),
            json!({"username": text, "password": "agent-password"}),
        ),
        (
            Method::POST,
            "/api/agents".into(),
            Some(admin),
            json!({"username": "carol", "password": text}),
        ),
        (
            Method::POST,
            "/api/agents".into(),
            Some(admin),
            json!({"username": "dave", "password": "agent-password", "displayName": text}),
        ),
        (
            Method::POST,
            "/api/canned-replies".into(),
            Some(agent),
            json!({"shortcut": text, "content": "x"}),
        ),
        (
            Method::POST,
            "/api/canned-replies".into(),
            Some(agent),
            json!({"shortcut": "/big", "content": text}),
        ),
        (
            Method::PATCH,
            reply.into(),
            Some(agent),
            json!({"shortcut": text}),
        ),
        (
            Method::PATCH,
            reply.into(),
            Some(agent),
            json!({"content": text}),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_megabyte_strings_over_http_are_refused_and_nothing_is_stored() {
    let server = TestServer::start(Backend::Sqlite).await;
    let admin = server.admin_token().await;
    let (alice, _) = server.agent("alice").await;
    let (status, mine) = server
        .request(
            Method::POST,
            "/api/canned-replies",
            Some(json!({"shortcut": "/mine", "content": "mine"})),
            Some(&alice),
        )
        .await;
    assert_eq!(status, 201, "{mine}");
    let reply = format!(
        "/api/canned-replies/{}",
        mine["reply"]["id"].as_str().unwrap()
    );
    let before = counts(&server).await;

    // Bodies over 64 KiB: 413 too_large, whatever field holds the megabyte. Every answer is
    // checked before a mismatch fails the test, to show them all.
    let mut wrong = Vec::new();
    let big = "x".repeat(MB);
    for (method, path, token, body) in text_fields(&big, &admin, &alice, &reply) {
        let field = body
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(",");
        let mut request = reqwest::Client::new()
            .request(method.clone(), format!("{}{path}", server.base))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let code = serde_json::from_str::<Value>(&text)
            .ok()
            .map(|b| b["error"]["code"].clone());
        if (status, code) != (413, Some(json!("too_large"))) {
            wrong.push(format!("{method} {path} ({field}): {status} {text}"));
        }
    }
    // Fields a little under the body limit: each field's own rule answers.
    let long = "x".repeat(60_000);
    let expected = [
        (400, "invalid_payload"),
        (400, "invalid_payload"),
        (401, "unauthorized"),
        (401, "unauthorized"),
        (400, "invalid_payload"),
        (400, "invalid_payload"),
        (400, "invalid_payload"),
        (400, "invalid_payload"),
        (413, "too_large"),
        (400, "invalid_payload"),
        (413, "too_large"),
    ];
    let fields = text_fields(&long, &admin, &alice, &reply);
    assert_eq!(fields.len(), expected.len());
    for ((method, path, token, body), (status, code)) in fields.into_iter().zip(expected) {
        let what = format!("{method} {path} {}", shorten(&body.to_string()));
        let answer = server.request(method, &path, Some(body), token).await;
        if (answer.0, answer.1["error"]["code"].as_str()) != (status, Some(code)) {
            wrong.push(format!(
                "{what}: {} {}, not {status} {code}",
                answer.0, answer.1
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "answers other than the documented ones:\n{}",
        wrong.join("\n")
    );

    assert_eq!(counts(&server).await, before, "nothing was stored");
    let (status, list) = server
        .request(Method::GET, "/api/canned-replies", None, Some(&alice))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        list["replies"],
        json!([{"id": mine["reply"]["id"], "shortcut": "/mine", "content": "mine", "shared": false}])
    );
    still_serves_everyone(&server.base).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_megabyte_strings_in_every_event_field_are_refused_and_the_connection_keeps_working() {
    // Messages may be 512 KiB here, so that an event carrying a 1 MB string fits in the largest
    // WebSocket message (twice the message limit plus 16 KiB) and reaches the event's own rules.
    let server = TestServer::start_with(Backend::Sqlite, |s| {
        s.max_message_bytes = 512 * 1024;
        s.message_rate_limit = 0;
        s.event_rate_limit = 0;
    })
    .await;
    let (alice_token, alice_id) = server.agent("alice").await;
    let (alice, _) = server.login(&alice_token, &alice_id).await;
    let (bob_token, bob_id) = server.agent("bob").await;
    let (_bob, _) = server.login(&bob_token, &bob_id).await;
    let (token, customer_id) = server.visitor().await;
    let customer = server.connect(&token).await;
    let ack = customer
        .call("login", json!({"userId": customer_id, "csId": alice_id}))
        .await
        .unwrap();
    assert_eq!(ack["ok"], true, "{ack}");
    // Its first message starts the conversation, with the agent it asked for.
    let opened = customer
        .call("private_message", json!({"content": "hello"}))
        .await
        .unwrap();
    assert_eq!(opened["started"]["csId"], alice_id.as_str(), "{opened}");
    let before = customer
        .call("private_message", json!({"content": "before"}))
        .await
        .unwrap();
    assert_eq!(before["ok"], true, "{before}");
    // A customer whose conversation is over, to rate it.
    let (rater_token, rater_id) = server.visitor().await;
    let rater = server.connect(&rater_token).await;
    rater
        .call("login", json!({"userId": rater_id, "csId": alice_id}))
        .await
        .unwrap();
    let first = rater
        .call("private_message", json!({"content": "hi"}))
        .await
        .unwrap();
    let rated_conversation = first["conversationId"].clone();
    let resolved = alice
        .call("resolve", json!({"peerId": rater_id}))
        .await
        .unwrap();
    assert_eq!(resolved["ok"], true, "{resolved}");

    let big = "x".repeat(MB);
    let cases = [
        (
            &customer,
            "private_message",
            json!({"content": big}),
            "too_large",
        ),
        (
            &customer,
            "private_message",
            json!({"content": "x", "clientMsgId": big}),
            "invalid_payload",
        ),
        (
            &customer,
            "private_message",
            json!({"receiverId": big, "content": "x"}),
            "invalid_payload",
        ),
        (
            &customer,
            "history",
            json!({"conversationId": big}),
            "invalid_payload",
        ),
        (
            &customer,
            "history",
            json!({"beforeId": big}),
            "invalid_payload",
        ),
        (
            &customer,
            "typing",
            json!({"receiverId": big, "typing": true}),
            "invalid_payload",
        ),
        (
            &customer,
            "login",
            json!({"userId": big}),
            "invalid_payload",
        ),
        (
            &alice,
            "private_message",
            json!({"receiverId": customer_id, "content": big}),
            "too_large",
        ),
        (&alice, "history", json!({"peerId": big}), "invalid_payload"),
        (
            &alice,
            "read",
            json!({"peerId": customer_id, "upToId": big}),
            "invalid_payload",
        ),
        (
            &alice,
            "note",
            json!({"peerId": customer_id, "content": big}),
            "too_large",
        ),
        (
            &alice,
            "transfer",
            json!({"peerId": customer_id, "toAgentId": bob_id, "note": big}),
            "too_large",
        ),
        (
            &alice,
            "set_status",
            json!({"status": big}),
            "invalid_payload",
        ),
        (
            &rater,
            "rate",
            json!({"conversationId": rated_conversation, "score": 5, "comment": big}),
            "too_large",
        ),
    ];
    for (client, event, payload, code) in cases {
        let what = format!("{event} {}", shorten(&payload.to_string()));
        let ack = client
            .call(event, payload)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            ack["error"]["code"],
            code,
            "{what}: {}",
            shorten(&ack.to_string())
        );
        if code == "too_large" && event == "private_message" {
            let message = ack["error"]["message"].as_str().unwrap();
            assert!(message.contains("send a file"), "the hint: {message}");
        }
        assert!(!client.is_closed(), "{what} closed the connection");
        let heartbeat = client.call("heartbeat", json!({})).await.unwrap();
        assert_eq!(heartbeat["ok"], true, "after {what}: {heartbeat}");
    }

    // Nothing was stored, nothing moved.
    let contents: Vec<Value> = all_messages(&customer, json!({}))
        .await
        .into_iter()
        .map(|m| m["content"].clone())
        .collect();
    assert_eq!(contents, [json!("hello"), json!("before")]);
    let notes = alice
        .call("notes", json!({"peerId": customer_id}))
        .await
        .unwrap();
    assert_eq!(notes, json!({"ok": true, "notes": []}));
    let still_hers = alice
        .call(
            "private_message",
            json!({"receiverId": customer_id, "content": "still yours truly"}),
        )
        .await
        .unwrap();
    assert_eq!(
        still_hers["ok"], true,
        "the transfer did not happen: {still_hers}"
    );
    let rated = rater
        .call(
            "rate",
            json!({"conversationId": rated_conversation, "score": 5, "comment": "fine"}),
        )
        .await
        .unwrap();
    assert_eq!(rated, json!({"ok": true}), "the big rating was not taken");
    still_serves_everyone(&server.base).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_megabyte_event_beyond_the_largest_payload_closes_only_its_connection() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (agent_token, agent_id) = server.agent("alice").await;
    let (mut agent, _) = server.login(&agent_token, &agent_id).await;
    let (token, customer_id) = server.visitor().await;
    let (customer, _) = server.login(&token, &customer_id).await;
    let (bystander_token, bystander_id) = server.visitor().await;
    let (bystander, _) = server.login(&bystander_token, &bystander_id).await;

    // 1 MB is over the largest payload (64 KiB with 8 KiB messages): the server closes the
    // connection rather than read it.
    let _never_acked = customer
        .call_later("private_message", json!({"content": "x".repeat(MB)}))
        .unwrap();
    assert!(
        wait_closed(&customer, Duration::from_secs(10)).await,
        "the connection that sent 1 MB is closed"
    );
    assert!(!agent.is_closed() && !bystander.is_closed());
    let sent = bystander
        .call("private_message", json!({"content": "unaffected"}))
        .await
        .unwrap();
    assert_eq!(sent["ok"], true, "{sent}");
    assert_eq!(
        expect_message(&mut agent, &sent["id"]).await["content"],
        "unaffected"
    );
    // Nothing was stored: not the message, nor the conversation it would have started.
    let (status, list) = server
        .request(
            reqwest::Method::GET,
            "/api/conversations",
            None,
            Some(&token),
        )
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["conversations"], json!([]), "nothing was stored");
    // The same visitor comes back and writes.
    let (again, _) = server.login(&token, &customer_id).await;
    let sent = again
        .call("private_message", json!({"content": "small again"}))
        .await
        .unwrap();
    assert_eq!(sent["ok"], true, "{sent}");
    assert_eq!(
        expect_message(&mut agent, &sent["id"]).await["content"],
        "small again"
    );
    still_serves_everyone(&server.base).await;
    server.stop().await;
}

async fn control_characters_are_stored_verbatim_and_nul_and_lone_surrogates_are_refused(
    backend: Backend,
) {
    let server = TestServer::start_with(backend, |s| {
        s.message_rate_limit = 0;
        s.event_rate_limit = 0;
    })
    .await;
    let (alice_token, alice_id) = server.agent("alice").await;
    let (mut alice, _) = server.login(&alice_token, &alice_id).await;
    let (bob_token, bob_id) = server.agent("bob").await;
    let (_bob, _) = server.login(&bob_token, &bob_id).await;
    let (token, customer_id) = server.visitor().await;
    let mut customer = server.connect(&token).await;
    let login = customer
        .call("login", json!({"userId": customer_id, "csId": alice_id}))
        .await
        .unwrap();
    assert_eq!(login["ok"], true, "{login}");
    // Its first message starts the conversation, with the agent it asked for.
    let opened = customer
        .call("private_message", json!({"content": "hello"}))
        .await
        .unwrap();
    assert_eq!(opened["started"]["csId"], alice_id.as_str(), "{opened}");

    // Every C0 control but NUL, DEL, line and paragraph separators, bidi overrides, zero-width
    // characters: kept exactly as sent, live and in history.
    let controls: String = (1..=0x1f_u32)
        .chain([0x7f])
        .filter_map(char::from_u32)
        .collect();
    let contents = [
        format!("a{controls}b"),
        "\u{1}".to_owned(),
        "\u{7f}".to_owned(),
        " \t\r\n padded with blanks \n\t ".to_owned(),
        "line\u{2028}separator\u{2029}paragraph\u{85}next line".to_owned(),
        "invoice_\u{202e}fdp.exe\u{202c}, \u{202d}\u{2066}\u{2067}\u{2068}\u{2069}".to_owned(),
        "zero\u{200b}width\u{200d}joiner\u{feff}".to_owned(),
        "😀 astral \u{10ffff}, \u{fffd} replacement".to_owned(),
    ];
    let mut expected = vec![json!("hello")];
    for content in &contents {
        let sent = customer
            .call("private_message", json!({"content": content}))
            .await
            .unwrap();
        assert_eq!(sent["ok"], true, "{content:?}: {sent}");
        let received = expect_message(&mut alice, &sent["id"]).await;
        assert_eq!(
            received["content"].as_str(),
            Some(content.as_str()),
            "delivered verbatim"
        );
        expected.push(json!(content));
    }
    let reply = alice
        .call(
            "private_message",
            json!({"receiverId": customer_id, "content": contents[0]}),
        )
        .await
        .unwrap();
    assert_eq!(
        expect_message(&mut customer, &reply["id"]).await["content"],
        contents[0]
    );
    expected.push(json!(contents[0]));
    let noted = alice
        .call(
            "note",
            json!({"peerId": customer_id, "content": contents[0]}),
        )
        .await
        .unwrap();
    assert_eq!(noted["note"]["content"], contents[0], "{noted}");
    let (status, canned) = server
        .request(
            Method::POST,
            "/api/canned-replies",
            Some(json!({"shortcut": "/controls", "content": contents[0]})),
            Some(&alice_token),
        )
        .await;
    assert_eq!(
        (status, &canned["reply"]["content"]),
        (201, &json!(contents[0]))
    );

    // A clientMsgId is kept as exactly as the content: ids that differ only in trailing blanks
    // or in case are different messages, not retries of one another.
    let mut first = Value::Null;
    for key in ["k", "k ", "k  ", "K", "k\u{a0}"] {
        let sent = customer
            .call(
                "private_message",
                json!({"content": key, "clientMsgId": key}),
            )
            .await
            .unwrap();
        assert_eq!(sent["ok"], true, "clientMsgId {key:?}: {sent}");
        assert_eq!(sent["duplicate"], false, "clientMsgId {key:?}: {sent}");
        assert_ne!(sent["id"], first, "clientMsgId {key:?}");
        assert_eq!(sent["clientMsgId"], key);
        first = sent["id"].clone();
        expected.push(json!(key));
    }

    // A surrogate pair written as JSON escapes is one character, kept.
    let pair = customer
        .call_raw("private_message", r#"{"content":"pair \ud83d\ude00"}"#)
        .unwrap();
    let pair = tokio::time::timeout(WAIT, pair).await.unwrap().unwrap();
    assert_eq!(pair["ok"], true, "{pair}");
    expected.push(json!("pair 😀"));

    // NUL, anywhere, and control characters in an id or a name are invalid_payload.
    for (client, event, payload) in [
        (&customer, "private_message", json!({"content": "\u{0}"})),
        (&customer, "private_message", json!({"content": "a\u{0}b"})),
        (
            &customer,
            "private_message",
            json!({"content": "x", "clientMsgId": "a\u{0}"}),
        ),
        (
            &customer,
            "private_message",
            json!({"content": "x", "clientMsgId": "c\u{1}"}),
        ),
        (
            &customer,
            "private_message",
            json!({"content": "x", "clientMsgId": "c\u{7f}"}),
        ),
        (
            &alice,
            "note",
            json!({"peerId": customer_id, "content": "a\u{0}b"}),
        ),
        (
            &alice,
            "transfer",
            json!({"peerId": customer_id, "toAgentId": bob_id, "note": "a\u{0}b"}),
        ),
    ] {
        assert_eq!(
            ack_code(client, event, &payload).await,
            "invalid_payload",
            "{event} {payload:?}"
        );
    }
    for name in ["\u{0}", "Ann\u{1}", "Ann\u{1b}[31m"] {
        let answer = server
            .post("/api/visitors", json!({"name": name}), None)
            .await;
        assert_refused(answer, 400, "invalid_payload");
    }
    let nul_reply = Some(json!({"shortcut": "/nul", "content": "a\u{0}b"}));
    assert_refused(
        server
            .request(
                Method::POST,
                "/api/canned-replies",
                nul_reply,
                Some(&alice_token),
            )
            .await,
        400,
        "invalid_payload",
    );

    // Lone surrogates cannot be in a Rust string: sent as JSON escapes in the raw packet. They
    // are no text, so invalid_payload, and nothing is stored.
    let note = format!(r#"{{"peerId":"{customer_id}","content":"a\udbffb"}}"#);
    for (client, event, raw) in [
        (&customer, "private_message", r#"{"content":"\ud800"}"#),
        (&customer, "private_message", r#"{"content":"a\ud800b"}"#),
        (&customer, "private_message", r#"{"content":"\udfff"}"#),
        (
            &customer,
            "private_message",
            r#"{"content":"\udc00\ud800"}"#,
        ),
        (
            &customer,
            "private_message",
            r#"{"content":"\ud800\ud800"}"#,
        ),
        (&customer, "private_message", r#"{"content":"a\u0000b"}"#),
        (
            &customer,
            "private_message",
            r#"{"content":"x","clientMsgId":"\ud800"}"#,
        ),
        (&alice, "note", note.as_str()),
    ] {
        let ack = client.call_raw(event, raw).unwrap();
        let ack = tokio::time::timeout(WAIT, ack)
            .await
            .unwrap_or_else(|_| panic!("no ack for {event} {raw}"))
            .unwrap_or_else(|_| panic!("the connection closed on {event} {raw}"));
        assert_eq!(
            ack["error"]["code"], "invalid_payload",
            "{event} {raw}: {ack}"
        );
    }
    for raw in [
        r#"{"name":"\ud800"}"#,
        r#"{"name":"Ann","email":"a\udfff@example.com"}"#,
    ] {
        let response = reqwest::Client::new()
            .post(format!("{}/api/visitors", server.base))
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert_refused(
            (status, response.json().await.unwrap_or(Value::Null)),
            400,
            "invalid_payload",
        );
    }
    let (status, canned) = post_raw(
        &server,
        "/api/canned-replies",
        r#"{"shortcut":"/lone","content":"\ud800"}"#,
        &alice_token,
    )
    .await;
    assert_refused((status, canned), 400, "invalid_payload");

    assert!(!customer.is_closed() && !alice.is_closed());
    let contents: Vec<Value> = all_messages(&customer, json!({}))
        .await
        .into_iter()
        .map(|m| m["content"].clone())
        .collect();
    assert_eq!(contents, expected, "exactly what was accepted, verbatim");
    let notes = alice
        .call("notes", json!({"peerId": customer_id}))
        .await
        .unwrap();
    assert_eq!(notes["notes"].as_array().map(Vec::len), Some(1), "{notes}");

    // A rating comment takes control characters as they are, and refuses NUL like every text.
    let conversation = opened["conversationId"].clone();
    let resolved = alice
        .call("resolve", json!({"peerId": customer_id}))
        .await
        .unwrap();
    assert_eq!(resolved["ok"], true, "{resolved}");
    let with_nul = json!({"conversationId": conversation, "score": 2, "comment": "slow\u{0}"});
    assert_eq!(
        ack_code(&customer, "rate", &with_nul).await,
        "invalid_payload",
        "a rating comment with NUL"
    );
    let comment = "\u{202e}ok\u{1}";
    let rated = customer
        .call(
            "rate",
            json!({"conversationId": conversation, "score": 4, "comment": comment}),
        )
        .await
        .unwrap();
    assert_eq!(rated, json!({"ok": true}));
    let stored = rows(
        &server,
        "SELECT rating, rating_comment FROM conversations WHERE rating IS NOT NULL",
    )
    .await;
    assert_eq!(
        stored,
        [vec![Some("4".to_owned()), Some(comment.to_owned())]]
    );
    still_serves_everyone(&server.base).await;
    server.stop().await;
}

/// `POST` a raw body (which may be JSON no Rust string can hold) with a bearer token.
async fn post_raw(
    server: &TestServer,
    path: &str,
    body: &'static str,
    token: &str,
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", server.base))
        .header("content-type", "application/json")
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The value of one series in a server's `/metrics`.
async fn metric(base: &str, name: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no series {name}"))
        .parse()
        .unwrap()
}

/// Waits until the server's `kefu_connections` is `expected`; the last value seen.
async fn connections_settle_at(base: &str, expected: f64, within: Duration) -> f64 {
    let deadline = Instant::now() + within;
    loop {
        let now = metric(base, "kefu_connections").await;
        if now == expected || Instant::now() >= deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How one handshake of the storm ended.
enum Handshake {
    Accepted(Client),
    /// `connect_error` with this message.
    Refused(String),
    /// Anything else: an error the protocol does not define, or no answer.
    Failed(String),
}

/// A handshake for each of `which` (connection `i` uses token `i % tokens.len()` and source
/// address 127.0.0.`2 + i % sources`), `parallel` at once: (i, outcome).
async fn storm(
    base: &str,
    tokens: &[String],
    which: Vec<usize>,
    parallel: usize,
    sources: usize,
) -> Vec<(usize, Handshake)> {
    stream::iter(which)
        .map(|i| {
            let auth = json!({"token": tokens[i % tokens.len()]});
            let source = Ipv4Addr::new(127, 0, 0, 2 + (i % sources) as u8);
            let dial = Dial {
                local_addr: Some(IpAddr::V4(source)),
                discard_events: true,
                ..Dial::default()
            };
            async move {
                let dialing = Client::dial(base, auth, &dial);
                let outcome = match tokio::time::timeout(Duration::from_secs(30), dialing).await {
                    Ok(Ok(client)) => Handshake::Accepted(client),
                    Ok(Err(e)) => match e.downcast_ref::<Refused>() {
                        Some(Refused(message)) => Handshake::Refused(message.clone()),
                        None => Handshake::Failed(format!("{e:#}")),
                    },
                    Err(_) => Handshake::Failed("no answer within 30 s".into()),
                };
                (i, outcome)
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await
}

/// The outcomes of a storm's handshakes.
struct Tally {
    accepted: Vec<Client>,
    /// Connection numbers, by the `connect_error` message they were told.
    refused: BTreeMap<String, Vec<usize>>,
    /// How many ended each other way.
    failed: BTreeMap<String, usize>,
}

impl Tally {
    fn of(outcomes: Vec<(usize, Handshake)>) -> Self {
        let mut tally = Self {
            accepted: Vec::new(),
            refused: BTreeMap::new(),
            failed: BTreeMap::new(),
        };
        for (i, outcome) in outcomes {
            match outcome {
                Handshake::Accepted(client) => tally.accepted.push(client),
                Handshake::Refused(message) => tally.refused.entry(message).or_default().push(i),
                Handshake::Failed(error) => *tally.failed.entry(error).or_default() += 1,
            }
        }
        tally
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_storm_of_5000_connections_is_served_and_leaves_no_connection_behind() {
    const VISITORS: usize = 500;
    const PER_VISITOR: usize = 10;
    const CONNECTIONS: usize = VISITORS * PER_VISITOR;
    const PARALLEL: usize = 500;
    const SOURCES: usize = 10;
    // A process of its own: its descriptors are not the test's (which holds the client ends).
    let data_dir = temp_dir();
    let mut server = Process::spawn_with(
        &data_dir,
        None,
        &[("KEFU_MAX_CONNECTIONS_PER_USER", PER_VISITOR.to_string())],
    );
    let base = server.base.clone();
    let started = Instant::now();
    let tokens: Vec<String> = stream::iter(0..VISITORS)
        .map(|_| {
            let base = base.clone();
            async move {
                let (status, body) = post_json(&base, "/api/visitors", json!({}), None).await;
                assert_eq!(status, 201, "{body}");
                body["token"].as_str().unwrap().to_owned()
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    println!("{VISITORS} visitors in {:?}", started.elapsed());

    // Everyone connects at once: each user to its maximum.
    let started = Instant::now();
    let everyone: Vec<usize> = (0..CONNECTIONS).collect();
    let outcomes = storm(&base, &tokens, everyone.clone(), PARALLEL, SOURCES).await;
    let Tally {
        accepted: clients,
        refused,
        failed,
    } = Tally::of(outcomes);
    println!(
        "storm: {} accepted, refused {:?}, failed {failed:?} in {:?}",
        clients.len(),
        refused
            .iter()
            .map(|(m, v)| (m, v.len()))
            .collect::<Vec<_>>(),
        started.elapsed()
    );
    assert!(
        failed.is_empty(),
        "handshakes without a defined answer: {failed:?}"
    );
    assert!(
        refused.is_empty(),
        "{CONNECTIONS} connections of {VISITORS} users allowed {PER_VISITOR} each reach no limit, \
         yet some were refused: {:?}",
        refused
            .iter()
            .map(|(m, v)| (m, v.len()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        connections_settle_at(&base, CONNECTIONS as f64, Duration::from_secs(10)).await,
        CONNECTIONS as f64,
        "the server counts every open connection"
    );
    for client in clients.iter().step_by(CONNECTIONS / 10) {
        assert_eq!(
            client.call("heartbeat", json!({})).await.unwrap()["ok"],
            true
        );
    }

    // Everyone drops and reconnects at once, while the server is still letting the old
    // connections go: a user whose old ones are still counted is told `too_many_connections`,
    // and gets in when it tries again.
    let started = Instant::now();
    for client in &clients {
        client.close();
    }
    drop(clients);
    let mut clients = Vec::new();
    let mut pending = everyone;
    let mut told = BTreeMap::<String, usize>::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pending.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} connections still not back after 30 s: {told:?}",
            pending.len()
        );
        let outcomes = storm(
            &base,
            &tokens,
            std::mem::take(&mut pending),
            PARALLEL,
            SOURCES,
        )
        .await;
        let Tally {
            accepted,
            refused,
            failed,
        } = Tally::of(outcomes);
        assert!(
            failed.is_empty(),
            "handshakes without a defined answer: {failed:?}"
        );
        clients.extend(accepted);
        for (message, again) in refused {
            assert_eq!(message, "too_many_connections", "the only limit in reach");
            *told.entry(message).or_default() += again.len();
            pending.extend(again);
        }
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    println!(
        "reconnect: all {} back in {:?}, told on the way {told:?}",
        clients.len(),
        started.elapsed()
    );
    assert_eq!(
        connections_settle_at(&base, CONNECTIONS as f64, Duration::from_secs(30)).await,
        CONNECTIONS as f64,
        "the old connections are gone and the new ones counted"
    );
    for client in clients.iter().step_by(CONNECTIONS / 10) {
        assert_eq!(
            client.call("heartbeat", json!({})).await.unwrap()["ok"],
            true
        );
    }
    for client in &clients {
        client.close();
    }
    drop(clients);
    assert_eq!(
        connections_settle_at(&base, 0.0, Duration::from_secs(30)).await,
        0.0,
        "every closed connection is let go"
    );
    let (status, nodes) =
        get_json(&base, "/api/admin/nodes", Some(&admin_token(&base).await)).await;
    assert_eq!(status, 200, "{nodes}");
    assert_eq!(nodes["nodes"][0]["connections"], 0, "{nodes}");
    still_serves_everyone(&base).await;
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server is still running"
    );
    assert_eq!(server.terminate(), Some(0), "and stops cleanly");
    let _ = std::fs::remove_dir_all(data_dir);
}

async fn admin_token(base: &str) -> String {
    let (status, body) = post_json(
        base,
        "/api/login",
        json!({"username": "admin", "password": ADMIN_PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

/// The kefu binary started through `sh`, which ignores SIGXFSZ before it execs kefu: the ignored
/// signal is inherited, so a write past the file-size limit (`prlimit --fsize`) fails with EFBIG
/// instead of killing the process.
fn spawn_size_limited(data_dir: &Path) -> Process {
    Process::spawn_wrapped(
        &["sh", "-c", r#"trap "" XFSZ; exec "$0" "$@""#],
        data_dir,
        None,
        &[],
    )
}

/// Sets the soft limit on the size of the files `kefu` writes (`None`: unlimited).
fn limit_file_size(kefu: &Process, bytes: Option<u64>) {
    let soft = bytes.map_or("unlimited".to_owned(), |b| b.to_string());
    let status = std::process::Command::new("prlimit")
        .arg("--pid")
        .arg(kefu.child.id().to_string())
        .arg(format!("--fsize={soft}:unlimited"))
        .status()
        .expect("prlimit runs (Debian package util-linux)");
    assert!(status.success(), "prlimit --fsize={soft}");
}

/// The size of the largest file in `dir`.
fn largest_file(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_clearly_keeps_serving_reads_and_recovers_without_a_restart() {
    /// Messages refused before the disk gets room again: more than the database pool's 8
    /// connections, so that every connection has met the full disk.
    const REFUSALS: usize = 12;
    let data_dir = temp_dir();
    let mut server = spawn_size_limited(&data_dir);
    let base = server.base.clone();
    let admin = admin_token(&base).await;
    let login = json!({"username": "alice", "password": "agent-password"});
    let (status, body) = post_json(&base, "/api/agents", login.clone(), Some(&admin)).await;
    assert_eq!(status, 201, "{body}");
    let (status, session) = post_json(&base, "/api/login", login.clone(), None).await;
    assert_eq!(status, 200, "{session}");
    let agent_token = session["token"].as_str().unwrap().to_owned();
    let agent_id = session["user"]["id"].as_str().unwrap().to_owned();
    let agent = Client::connect(&base, json!({"token": agent_token}))
        .await
        .unwrap();
    agent
        .call("login", json!({"userId": agent_id}))
        .await
        .unwrap();
    let (status, visitor) = post_json(&base, "/api/visitors", json!({}), None).await;
    assert_eq!(status, 201, "{visitor}");
    let visitor_token = visitor["token"].as_str().unwrap().to_owned();
    let visitor_id = visitor["user"]["id"].as_str().unwrap().to_owned();
    let customer = Client::connect(&base, json!({"token": visitor_token}))
        .await
        .unwrap();
    customer
        .call("login", json!({"userId": visitor_id}))
        .await
        .unwrap();
    let opened = customer
        .call("private_message", json!({"content": "hello"}))
        .await
        .unwrap();
    assert_eq!(opened["started"]["csId"], agent_id.as_str(), "{opened}");
    let message = |n: usize| {
        let head = format!("{n:06} ");
        let content = format!("{head}{}", "x".repeat(8192 - head.len()));
        json!({"content": content, "clientMsgId": format!("m-{n}")})
    };
    let first = customer.call("private_message", message(0)).await.unwrap();
    assert_eq!(first["ok"], true, "{first}");
    let mut acked = vec![
        opened["id"].as_str().unwrap().to_owned(),
        first["id"].as_str().unwrap().to_owned(),
    ];

    // Files may now grow a little past the largest one: the database fills up soon. What the
    // server does wrong is collected, to be shown all at once; what makes going on pointless (a
    // false ack, a hang, a crash) fails at once.
    let mut problems = Vec::new();
    let limit = largest_file(&data_dir) + 256 * 1024;
    limit_file_size(&server, Some(limit));
    let mut refused = Vec::new();
    let mut n = 1;
    while refused.len() < REFUSALS {
        assert!(
            n < 2000,
            "{n} messages of 8 KiB fit in files of at most {limit} bytes"
        );
        let ack = customer
            .call("private_message", message(n))
            .await
            .unwrap_or_else(|e| panic!("message {n} with the disk full: {e}"));
        if ack["ok"] == true {
            if !refused.is_empty() {
                problems.push(format!("message {n} acked after a refusal: {ack}"));
            }
            acked.push(ack["id"].as_str().unwrap().to_owned());
        } else {
            refused.push((n, ack["error"].clone()));
        }
        n += 1;
    }
    println!(
        "files limited to {limit} bytes: {} messages acked, then refused with {:?}",
        acked.len(),
        refused
            .iter()
            .map(|(_, e)| e.to_string())
            .collect::<Vec<_>>()
    );
    assert!(
        acked.len() > 1,
        "some messages fit before the disk was full"
    );
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "kefu is still running"
    );
    for (n, error) in &refused {
        let message = error["message"].as_str().unwrap_or_default();
        // The protocol's answer for "nothing was stored, retry later", saying why.
        if error["code"] != "unavailable"
            || !message.contains("nothing was stored")
            || !message.contains("full")
        {
            problems.push(format!(
                "message {n} refused with {error}, not `unavailable` saying the storage is full \
                 and nothing was stored"
            ));
        }
    }

    // Reads go on: health, sign-in, a new connection, history with exactly the acked messages.
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");
    let (status, session) = post_json(&base, "/api/login", login.clone(), None).await;
    assert_eq!(status, 200, "signing in reads only: {session}");
    let reader = Client::connect(&base, json!({"token": session["token"]}))
        .await
        .expect("a new connection while the disk is full");
    let stored = |messages: Vec<Value>| -> Vec<String> {
        messages
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        stored(all_messages(&reader, json!({"peerId": visitor_id})).await),
        acked,
        "every acked message is stored, and no refused one"
    );

    // Room again, without a restart: every write succeeds at once, a refused message sent again
    // is new, and history has everything.
    limit_file_size(&server, None);
    let mut resent = Vec::new();
    for (retry, _) in &refused {
        let again = customer
            .call("private_message", message(*retry))
            .await
            .unwrap();
        if again["ok"] == true {
            if again["duplicate"] != false {
                problems.push(format!("refused message {retry} had been stored: {again}"));
            }
            acked.push(again["id"].as_str().unwrap().to_owned());
        } else {
            resent.push((*retry, again["error"].clone()));
        }
    }
    if !resent.is_empty() {
        problems.push(format!(
            "with room again, {} of the {} refused messages sent again were refused again: {:?}",
            resent.len(),
            refused.len(),
            resent
                .iter()
                .map(|(n, e)| format!("{n}: {e}"))
                .collect::<Vec<_>>()
        ));
    }
    let mut failed_after = Vec::new();
    for n in n..n + 2 * REFUSALS {
        let ack = customer.call("private_message", message(n)).await.unwrap();
        if ack["ok"] == true {
            acked.push(ack["id"].as_str().unwrap().to_owned());
        } else {
            failed_after.push(format!("{n}: {}", ack["error"]));
        }
    }
    if !failed_after.is_empty() {
        problems.push(format!(
            "with room again, {} of {} new messages were refused: {failed_after:?}",
            failed_after.len(),
            2 * REFUSALS
        ));
    }
    assert_eq!(
        stored(all_messages(&reader, json!({"peerId": visitor_id})).await),
        acked,
        "every acked message is stored, and no refused one"
    );
    assert!(
        problems.is_empty(),
        "with a full disk:\n{}",
        problems.join("\n")
    );
    still_serves_everyone(&base).await;
    assert!(
        server.log_lines("panicked").is_empty(),
        "{:?}",
        server.log_lines("panicked")
    );
    assert_eq!(server.terminate(), Some(0));
    let _ = std::fs::remove_dir_all(data_dir);
}
