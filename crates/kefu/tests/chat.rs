//! The chat protocol, end to end through a real server, on SQLite, MariaDB and PostgreSQL.

mod common;

use std::{collections::HashMap, time::Duration};

use common::{Backend, TestServer, WAIT};
use serde_json::{Value, json};

on_every_backend!(
    visitor_and_agent_chat_both_ways_in_order,
    a_retry_with_the_same_client_msg_id_is_stored_once,
    reading_clears_unread_counts_and_tells_the_peer,
    history_pages_backwards_and_resyncs_forwards,
    identity_never_comes_from_the_payload,
    nobody_writes_into_another_conversation,
    a_queued_customer_is_assigned_when_an_agent_comes_online,
    concurrent_senders_get_gapless_sequences,
    presence_goes_only_to_members,
    bad_input_gets_a_clear_error_code,
    too_many_messages_are_rate_limited,
);

async fn visitor_and_agent_chat_both_ways_in_order(backend: Backend) {
    let server = TestServer::start_with(backend, |s| s.message_rate_limit = 0).await;
    let (agent_token, agent_id) = server.agent("alice").await;
    let (mut agent, _) = server.login(&agent_token, &agent_id).await;
    let mut agent_tab2 = server.connect(&agent_token).await;
    let (visitor_token, visitor_id) = server.visitor().await;
    let (mut visitor, ack) = server.login(&visitor_token, &visitor_id).await;
    // A login writes nothing: the conversation starts with the first message.
    assert_eq!(ack["csId"], Value::Null, "{ack}");
    assert_eq!(ack["conversationId"], Value::Null, "{ack}");
    assert_eq!(ack["queued"], false);

    let sent = visitor
        .call(
            "private_message",
            json!({"receiverId": agent_id, "content": "hello"}),
        )
        .await
        .unwrap();
    assert_eq!(sent["ok"], true, "{sent}");
    assert_eq!(sent["seq"], 1);
    assert_eq!(
        sent["started"],
        json!({"csId": agent_id, "queued": false}),
        "routed to the only online agent with the first message"
    );
    assert!(
        sent["id"].is_string()
            && sent["conversationId"].is_string()
            && sent["createdAt"].is_string()
    );
    for tab in [&mut agent, &mut agent_tab2] {
        let received = tab.expect("new_private_message", WAIT).await.unwrap();
        assert_eq!(received["id"], sent["id"]);
        assert_eq!(received["content"], "hello");
        assert_eq!(received["senderId"], visitor_id.as_str());
        assert_eq!(received["receiverId"], agent_id.as_str());
    }

    // The agent answers from one tab: the visitor and the other tab see it, the sending tab does not.
    let reply = agent
        .call(
            "private_message",
            json!({"receiverId": visitor_id, "content": "hi, how can I help?"}),
        )
        .await
        .unwrap();
    assert_eq!(reply["seq"], 2);
    let received = visitor.expect("new_private_message", WAIT).await.unwrap();
    assert_eq!(received["content"], "hi, how can I help?");
    assert_eq!(
        agent_tab2
            .expect("new_private_message", WAIT)
            .await
            .unwrap()["id"],
        reply["id"]
    );
    assert!(
        agent
            .next_event(Duration::from_millis(300))
            .await
            .is_none_or(|e| e.name != "new_private_message")
    );

    // A burst from the visitor arrives complete and in seq order.
    let acks: Vec<_> = (0..50)
        .map(|i| {
            visitor
                .call_later("private_message", json!({"content": format!("burst {i}")}))
                .unwrap()
        })
        .collect();
    for ack in acks {
        assert_eq!(ack.await.unwrap()["ok"], true);
    }
    let mut seqs = Vec::new();
    while seqs.len() < 50 {
        let message = agent.expect("new_private_message", WAIT).await.unwrap();
        seqs.push(message["seq"].as_i64().unwrap());
    }
    assert_eq!(seqs, (3..53).collect::<Vec<_>>());
    server.stop().await;
}

async fn a_retry_with_the_same_client_msg_id_is_stored_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (agent_token, agent_id) = server.agent("alice").await;
    let (mut agent, _) = server.login(&agent_token, &agent_id).await;
    let (visitor_token, visitor_id) = server.visitor().await;
    let (visitor, _) = server.login(&visitor_token, &visitor_id).await;

    let message = json!({"content": "refund please", "clientMsgId": "c-1"});
    let first = visitor
        .call("private_message", message.clone())
        .await
        .unwrap();
    let again = visitor
        .call("private_message", message.clone())
        .await
        .unwrap();
    assert_eq!(first["duplicate"], false);
    assert_eq!(again["duplicate"], true);
    assert_eq!((&first["id"], &first["seq"]), (&again["id"], &again["seq"]));
    // Two copies in one group commit are stored once as well.
    let (a, b) = (
        visitor
            .call_later(
                "private_message",
                json!({"content": "x", "clientMsgId": "c-2"}),
            )
            .unwrap(),
        visitor
            .call_later(
                "private_message",
                json!({"content": "x", "clientMsgId": "c-2"}),
            )
            .unwrap(),
    );
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert_eq!(a["id"], b["id"]);

    assert_eq!(
        agent.expect("new_private_message", WAIT).await.unwrap()["id"],
        first["id"]
    );
    assert_eq!(
        agent.expect("new_private_message", WAIT).await.unwrap()["id"],
        a["id"]
    );
    assert!(
        agent
            .next_event(Duration::from_millis(300))
            .await
            .is_none_or(|e| e.name != "new_private_message")
    );
    let history = visitor.call("history", json!({})).await.unwrap();
    assert_eq!(
        history["messages"].as_array().unwrap().len(),
        2,
        "{history}"
    );
    server.stop().await;
}

async fn reading_clears_unread_counts_and_tells_the_peer(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (agent_token, agent_id) = server.agent("alice").await;
    let (agent, _) = server.login(&agent_token, &agent_id).await;
    let (visitor_token, visitor_id) = server.visitor().await;
    let (mut visitor, _) = server.login(&visitor_token, &visitor_id).await;
    let mut last = Value::Null;
    for i in 0..3 {
        last = visitor
            .call("private_message", json!({"content": format!("m{i}")}))
            .await
            .unwrap();
    }
    let members = agent.call("all_member", Value::Null).await.unwrap();
    let users = members["users"].as_array().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["id"], visitor_id.as_str());
    assert_eq!(users[0]["message_count"], 3);
    assert_eq!(users[0]["online"], true);

    let read = agent
        .call("read", json!({"peerId": visitor_id, "upToId": last["id"]}))
        .await
        .unwrap();
    assert_eq!(read["ok"], true, "{read}");
    let notice = visitor.expect("messages_read", WAIT).await.unwrap();
    assert_eq!(notice["readerId"], agent_id.as_str());
    assert_eq!(notice["upToId"], last["id"]);
    let members = agent.call("all_member", Value::Null).await.unwrap();
    assert_eq!(members["users"][0]["message_count"], 0);
    assert_eq!(
        members["users"][0]["lastMessage"]["content"], "m2",
        "the preview is the latest message"
    );
    let history = visitor.call("history", json!({})).await.unwrap();
    assert_eq!(
        history["peerReadSeq"], 3,
        "a reloaded client still knows what was read"
    );
    // Reading never moves backwards.
    let first = visitor.call("history", json!({})).await.unwrap()["messages"][0]["id"].clone();
    agent
        .call("read", json!({"peerId": visitor_id, "upToId": first}))
        .await
        .unwrap();
    assert_eq!(
        agent.call("all_member", Value::Null).await.unwrap()["users"][0]["message_count"],
        0
    );
    server.stop().await;
}

async fn history_pages_backwards_and_resyncs_forwards(backend: Backend) {
    let server = TestServer::start_with(backend, |s| s.message_rate_limit = 0).await;
    let (agent_token, agent_id) = server.agent("alice").await;
    let (agent, _) = server.login(&agent_token, &agent_id).await;
    let (visitor_token, visitor_id) = server.visitor().await;
    let (visitor, _) = server.login(&visitor_token, &visitor_id).await;
    for i in 1..=120 {
        visitor
            .call("private_message", json!({"content": format!("m{i}")}))
            .await
            .unwrap();
    }
    let latest = agent
        .call("history", json!({"peerId": visitor_id, "limit": 30}))
        .await
        .unwrap();
    let seqs = |page: &Value| {
        page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(seqs(&latest), (91..=120).collect::<Vec<_>>());
    assert_eq!(latest["hasMore"], true);
    let before = latest["messages"][0]["id"].clone();
    let older = agent
        .call(
            "history",
            json!({"peerId": visitor_id, "beforeId": before, "limit": 30}),
        )
        .await
        .unwrap();
    assert_eq!(seqs(&older), (61..=90).collect::<Vec<_>>());
    let capped = agent
        .call(
            "history",
            json!({"peerId": visitor_id, "afterSeq": 0, "limit": 1000}),
        )
        .await
        .unwrap();
    assert_eq!(
        seqs(&capped),
        (1..=100).collect::<Vec<_>>(),
        "a page holds at most 100"
    );
    assert_eq!(capped["hasMore"], true);
    let rest = agent
        .call("history", json!({"peerId": visitor_id, "afterSeq": 100}))
        .await
        .unwrap();
    assert_eq!(seqs(&rest), (101..=120).collect::<Vec<_>>());
    assert_eq!(rest["hasMore"], false);
    server.stop().await;
}

async fn identity_never_comes_from_the_payload(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (agent_token, agent_id) = server.agent("alice").await;
    let (_agent, _) = server.login(&agent_token, &agent_id).await;
    let (visitor_token, visitor_id) = server.visitor().await;
    let (other_token, other_id) = server.visitor().await;
    let visitor = server.connect(&visitor_token).await;
    let _ = other_token;

    let login = visitor
        .call("login", json!({"userId": other_id}))
        .await
        .unwrap();
    assert_eq!(login["error"]["code"], "forbidden", "{login}");
    let login = visitor
        .call("login", json!({"userId": agent_id}))
        .await
        .unwrap();
    assert_eq!(login["error"]["code"], "forbidden");
    visitor
        .call("login", json!({"userId": visitor_id}))
        .await
        .unwrap();
    let spoofed = visitor
        .call(
            "private_message",
            json!({"senderId": agent_id, "content": "I am the agent"}),
        )
        .await
        .unwrap();
    assert_eq!(spoofed["error"]["code"], "forbidden");
    let history = visitor.call("history", json!({})).await.unwrap();
    assert_eq!(
        history["messages"].as_array().unwrap().len(),
        0,
        "nothing was stored"
    );

    // Tokens: missing, garbage, signed with another secret.
    for auth in [
        json!({}),
        json!({"token": "garbage"}),
        json!({"token": forged_token(&visitor_id)}),
    ] {
        let refused = kefu_wire::Client::connect(&server.base, auth)
            .await
            .err()
            .expect("refused");
        assert!(refused.to_string().contains("unauthorized"), "{refused}");
    }
    server.stop().await;
}

fn forged_token(user_id: &str) -> String {
    let header = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9";
    let claims = format!(r#"{{"sub":"{user_id}","role":"admin","iat":0,"exp":9999999999}}"#);
    let claims = base64url(claims.as_bytes());
    format!("{header}.{claims}.c2lnbmF0dXJlIGZyb20gYW5vdGhlciBzZWNyZXQ")
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

async fn nobody_writes_into_another_conversation(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice_token, alice_id) = server.agent("alice").await;
    let (bob_token, bob_id) = server.agent("bob").await;
    let (alice, _) = server.login(&alice_token, &alice_id).await;
    let (ann_token, ann_id) = server.visitor().await;
    let (ann, _) = server.login(&ann_token, &ann_id).await;
    let sent = ann
        .call("private_message", json!({"content": "mine"}))
        .await
        .unwrap();
    assert_eq!(sent["started"]["csId"], alice_id.as_str(), "{sent}");
    let (bob, _) = server.login(&bob_token, &bob_id).await;
    let (ben_token, ben_id) = server.visitor().await;
    let (ben, _) = server.login(&ben_token, &ben_id).await;
    let first = ben
        .call("private_message", json!({"content": "me too"}))
        .await
        .unwrap();
    assert_eq!(
        first["started"]["csId"],
        bob_id.as_str(),
        "the new customer goes to the agent with fewer conversations"
    );
    let attempts = [
        (
            &ann,
            "private_message",
            json!({"receiverId": bob_id, "content": "x"}),
        ),
        (
            &ann,
            "typing",
            json!({"receiverId": bob_id, "typing": true}),
        ),
        (
            &ben,
            "private_message",
            json!({"receiverId": alice_id, "content": "x"}),
        ),
        (
            &bob,
            "private_message",
            json!({"receiverId": ann_id, "content": "x"}),
        ),
        (&bob, "history", json!({"peerId": ann_id})),
        (
            &bob,
            "read",
            json!({"peerId": ann_id, "upToId": sent["id"]}),
        ),
        (
            &alice,
            "private_message",
            json!({"receiverId": alice_id, "content": "x"}),
        ),
    ];
    for (client, event, payload) in attempts {
        let ack = client.call(event, payload.clone()).await.unwrap();
        assert_eq!(
            ack["error"]["code"], "forbidden",
            "{event} {payload}: {ack}"
        );
    }
    let conversation = sent["conversationId"].clone();
    let ack = ben
        .call("history", json!({"conversationId": conversation}))
        .await
        .unwrap();
    assert_eq!(
        ack["error"]["code"], "not_found",
        "another customer's conversation is invisible"
    );
    let ack = bob
        .call("history", json!({"conversationId": conversation}))
        .await
        .unwrap();
    assert_eq!(ack["error"]["code"], "not_found");
    let ack = ben
        .call("read", json!({"upToId": sent["id"]}))
        .await
        .unwrap();
    assert_eq!(
        ack["error"]["code"], "not_found",
        "a message of another conversation"
    );
    server.stop().await;
}

async fn a_queued_customer_is_assigned_when_an_agent_comes_online(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (agent_token, agent_id) = server.agent("alice").await;
    let (visitor_token, visitor_id) = server.visitor().await;
    let (mut visitor, ack) = server.login(&visitor_token, &visitor_id).await;
    assert_eq!(
        ack["queued"], false,
        "nothing is started before a message: {ack}"
    );
    assert_eq!(ack["csId"], Value::Null);
    // Accepted while nobody is there: the conversation starts, and waits.
    let waiting = visitor
        .call("private_message", json!({"content": "anyone?"}))
        .await
        .unwrap();
    assert_eq!(waiting["ok"], true, "{waiting}");
    assert_eq!(waiting["started"], json!({"csId": null, "queued": true}));
    let place = visitor.expect("queue_position", WAIT).await.unwrap();
    assert_eq!(place["position"], 1, "{place}");
    assert_eq!(place["conversationId"], waiting["conversationId"]);
    let (_, again) = server.login(&visitor_token, &visitor_id).await;
    assert_eq!(again["queued"], true, "{again}");
    assert_eq!(again["position"], 1, "{again}");

    let mut agent = server.connect(&agent_token).await;
    let assigned = visitor.expect("conversation_assigned", WAIT).await.unwrap();
    assert_eq!(assigned["agentId"], agent_id.as_str());
    assert_eq!(assigned["agent"]["username"], "alice");
    let assigned = agent.expect("conversation_assigned", WAIT).await.unwrap();
    assert_eq!(assigned["customerId"], visitor_id.as_str());
    let history = agent
        .call("history", json!({"peerId": visitor_id}))
        .await
        .unwrap();
    assert_eq!(history["messages"][0]["content"], "anyone?");
    // Now the agent is the receiver.
    visitor
        .call("private_message", json!({"content": "hello"}))
        .await
        .unwrap();
    assert_eq!(
        agent.expect("new_private_message", WAIT).await.unwrap()["receiverId"],
        agent_id.as_str()
    );
    server.stop().await;
}

async fn concurrent_senders_get_gapless_sequences(backend: Backend) {
    let server = TestServer::start_with(backend, |s| s.message_rate_limit = 0).await;
    let (agent_token, agent_id) = server.agent("alice").await;
    server.set_capacity(&agent_id, 8).await;
    let (mut agent, _) = server.login(&agent_token, &agent_id).await;
    let mut visitors = Vec::new();
    for _ in 0..8 {
        let (token, id) = server.visitor().await;
        let (client, _) = server.login(&token, &id).await;
        visitors.push((client, id));
    }
    const EACH: usize = 40;
    let sends = visitors.iter().map(|(client, _)| async move {
        let acks: Vec<_> = (0..EACH)
            .map(|i| {
                client
                    .call_later("private_message", json!({"content": format!("{i}")}))
                    .unwrap()
            })
            .collect();
        let mut seqs = Vec::new();
        for ack in acks {
            let ack = ack.await.unwrap();
            assert_eq!(ack["ok"], true, "{ack}");
            seqs.push(ack["seq"].as_i64().unwrap());
        }
        seqs
    });
    for seqs in futures_util::future::join_all(sends).await {
        assert_eq!(
            seqs,
            (1..=EACH as i64).collect::<Vec<_>>(),
            "one sender's messages are numbered in order"
        );
    }
    let mut by_sender: HashMap<String, Vec<i64>> = HashMap::new();
    for n in 0..visitors.len() * EACH {
        let Ok(message) = agent.expect("new_private_message", WAIT).await else {
            panic!("only {n} delivered: {by_sender:?}");
        };
        by_sender
            .entry(message["senderId"].as_str().unwrap().to_owned())
            .or_default()
            .push(message["seq"].as_i64().unwrap());
    }
    for (_, id) in &visitors {
        assert_eq!(
            by_sender[id],
            (1..=EACH as i64).collect::<Vec<_>>(),
            "delivered complete and in seq order"
        );
    }
    server.stop().await;
}

async fn presence_goes_only_to_members(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice_token, alice_id) = server.agent("alice").await;
    let (mut alice, _) = server.login(&alice_token, &alice_id).await;
    let (ann_token, ann_id) = server.visitor().await;
    let (ann, _) = server.login(&ann_token, &ann_id).await;
    // Not a member of anyone's until she writes: then her agent sees her online.
    while let Some(event) = alice.next_event(Duration::from_millis(300)).await {
        assert_ne!(event.name, "user_online", "ann wrote nothing yet");
    }
    ann.call("private_message", json!({"content": "hi"}))
        .await
        .unwrap();
    assert_eq!(
        alice.expect("user_online", WAIT).await.unwrap(),
        ann_id.as_str()
    );
    let (bob_token, bob_id) = server.agent("bob").await;
    let (mut bob, _) = server.login(&bob_token, &bob_id).await;

    ann.close();
    assert_eq!(
        alice.expect("user_offline", WAIT).await.unwrap(),
        ann_id.as_str()
    );
    let update = alice.expect("update_member_list", WAIT).await.unwrap();
    assert_eq!(update, json!({"userId": ann_id, "online": false}));
    while let Some(event) = bob.next_event(Duration::from_millis(300)).await {
        assert!(
            !event.name.starts_with("user_"),
            "bob shares no conversation with ann: {event:?}"
        );
    }
    server.stop().await;
}

async fn bad_input_gets_a_clear_error_code(backend: Backend) {
    let server = TestServer::start_with(backend, |s| {
        s.max_message_bytes = 100;
        s.message_rate_limit = 0;
    })
    .await;
    let (agent_token, agent_id) = server.agent("alice").await;
    let (_agent, _) = server.login(&agent_token, &agent_id).await;
    let (visitor_token, visitor_id) = server.visitor().await;
    let (mut visitor, _) = server.login(&visitor_token, &visitor_id).await;
    let cases = [
        (json!({}), "invalid_payload"),
        (json!({"content": 42}), "invalid_payload"),
        (json!("just a string"), "invalid_payload"),
        (
            json!({"content": "x", "receiverId": "not-an-id"}),
            "invalid_payload",
        ),
        (json!({"content": "a\u{0}b"}), "invalid_payload"),
        (json!({"content": "x".repeat(101)}), "too_large"),
    ];
    for (payload, code) in cases {
        let ack = visitor
            .call("private_message", payload.clone())
            .await
            .unwrap();
        assert_eq!(ack["ok"], false);
        assert_eq!(ack["error"]["code"], code, "{payload}: {ack}");
    }
    let depth = 20_000;
    let deep = format!(
        r#"{{"content":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let ack = tokio::time::timeout(WAIT, visitor.call_raw("private_message", &deep).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ack["error"]["code"], "invalid_payload",
        "JSON nested {depth} deep"
    );
    assert_eq!(
        visitor
            .call("private_message", json!({"content": "x".repeat(100)}))
            .await
            .unwrap()["ok"],
        true
    );
    // Without an ack callback the error comes as an event.
    visitor
        .emit("private_message", json!({"content": 1}))
        .unwrap();
    let error = visitor.expect("error", WAIT).await.unwrap();
    assert_eq!(error["event"], "private_message");
    assert_eq!(error["code"], "invalid_payload");
    let history = visitor.call("history", json!({"limit": 0})).await.unwrap();
    assert_eq!(history["error"]["code"], "invalid_payload");
    let history = visitor
        .call("history", json!({"conversationId": "999999"}))
        .await
        .unwrap();
    assert_eq!(history["error"]["code"], "not_found");
    // And the connection still works.
    assert_eq!(
        visitor.call("heartbeat", Value::Null).await.unwrap()["ok"],
        true
    );
    server.stop().await;
}

async fn too_many_messages_are_rate_limited(backend: Backend) {
    let server = TestServer::start_with(backend, |s| {
        s.message_rate_limit = 1;
        s.message_rate_burst = 5;
    })
    .await;
    let (agent_token, agent_id) = server.agent("alice").await;
    let (mut agent, _) = server.login(&agent_token, &agent_id).await;
    let (visitor_token, visitor_id) = server.visitor().await;
    let (visitor, _) = server.login(&visitor_token, &visitor_id).await;
    let acks: Vec<_> = (0..10)
        .map(|i| {
            visitor
                .call_later("private_message", json!({"content": format!("{i}")}))
                .unwrap()
        })
        .collect();
    let mut codes = Vec::new();
    for ack in acks {
        let ack = ack.await.unwrap();
        codes.push(if ack["ok"] == true {
            "ok".to_owned()
        } else {
            ack["error"]["code"].as_str().unwrap().to_owned()
        });
    }
    assert_eq!(codes[..5], ["ok"; 5], "the burst passes: {codes:?}");
    assert!(codes[5..].iter().all(|c| c == "rate_limited"), "{codes:?}");
    // What was accepted is delivered, and nothing else.
    for i in 0..5 {
        assert_eq!(
            agent.expect("new_private_message", WAIT).await.unwrap()["content"],
            i.to_string()
        );
    }
    assert!(
        agent
            .next_event(Duration::from_millis(300))
            .await
            .is_none_or(|e| e.name != "new_private_message")
    );
    server.stop().await;
}
