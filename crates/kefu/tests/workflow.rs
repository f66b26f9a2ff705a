//! The customer-service workflow: agent capacity and the one FIFO queue under concurrency, away
//! agents, resolving and coming back.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Backend, TestServer, WAIT};
use kefu_wire::Client;
use serde_json::{Value, json};

on_every_backend!(
    fifty_customers_fill_three_agents_of_capacity_five_and_queue_in_order,
    an_away_agent_keeps_its_customers_and_gets_no_new_ones,
    a_resolved_conversation_ends_for_both_and_the_next_message_starts_another,
    a_transfer_hands_over_the_history_and_the_notes_and_tells_everyone,
    notes_never_reach_the_customer,
    a_customer_rates_once_and_the_report_and_the_transcript_show_it,
    canned_replies_are_shared_by_admins_or_kept_by_each_agent,
    attachments_reach_only_the_conversation_and_stay_within_their_limits,
    admins_find_a_customers_conversations_and_the_transcript_tells_transfers_and_files,
);

/// Waits for the event whose data satisfies `matches`, skipping the others.
async fn expect_where(client: &mut Client, name: &str, matches: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match client.next_event(left).await {
            Some(event) if event.name == name && matches(&event.data) => return event.data,
            Some(_) => continue,
            None => panic!("no matching {name} event within {WAIT:?}"),
        }
    }
}

/// `n` agents online, each with `capacity`: (client, id).
async fn agents(server: &TestServer, n: usize, capacity: i64) -> Vec<(Client, String)> {
    let mut agents = Vec::new();
    for i in 0..n {
        let (token, id) = server.agent(&format!("agent{i}")).await;
        server.set_capacity(&id, capacity).await;
        let (client, _) = server.login(&token, &id).await;
        agents.push((client, id));
    }
    agents
}

/// Visitors that arrive all at once, each writing its first message: (client, id, where its
/// conversation went: `{csId, queued, conversationId, seq}`).
async fn arrive_at_once(server: &TestServer, n: usize) -> Vec<(Client, String, Value)> {
    let mut visitors = Vec::new();
    for _ in 0..n {
        visitors.push(server.visitor().await);
    }
    let logins = visitors.iter().map(|(token, id)| server.arrive(token, id));
    futures_util::future::join_all(logins)
        .await
        .into_iter()
        .zip(visitors)
        .map(|((client, ack), (_, id))| (client, id, ack))
        .collect()
}

async fn fifty_customers_fill_three_agents_of_capacity_five_and_queue_in_order(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut agents = agents(&server, 3, 5).await;
    let mut customers = arrive_at_once(&server, 50).await;

    // Exactly five each; nobody over capacity.
    let mut per_agent: BTreeMap<String, usize> = BTreeMap::new();
    for (_, _, ack) in &customers {
        if ack["queued"] == false {
            *per_agent
                .entry(ack["csId"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    let expected: BTreeMap<String, usize> = agents.iter().map(|(_, id)| (id.clone(), 5)).collect();
    if per_agent != expected {
        for (_, id, ack) in &customers {
            eprintln!("DEBUG {id} {ack}");
        }
    }
    assert_eq!(per_agent, expected);

    // The other 35 wait in arrival order: positions 1..=35 by conversation id.
    let mut waiting = Vec::new();
    for (client, id, ack) in &customers {
        if ack["queued"] == true {
            let status = client.call("queue_status", json!({})).await.unwrap();
            assert_eq!(status["queued"], true, "{status}");
            assert!(
                status["estimatedWaitSeconds"].as_i64().unwrap() > 0,
                "{status}"
            );
            waiting.push((
                status["conversationId"]
                    .as_str()
                    .unwrap()
                    .parse::<i64>()
                    .unwrap(),
                status["position"].as_i64().unwrap(),
                id.clone(),
            ));
        }
    }
    assert_eq!(waiting.len(), 35);
    waiting.sort();
    let positions: Vec<i64> = waiting.iter().map(|w| w.1).collect();
    assert_eq!(positions, (1..=35).collect::<Vec<_>>());
    let agent_status = agents[0].1.clone();
    let listed = server.listed_agent(&agent_status).await;
    assert_eq!(listed["openConversations"], 5, "{listed}");
    assert_eq!(listed["capacity"], 5, "{listed}");

    // The first agent resolves one of its conversations: the head of the queue is its at once,
    // and everyone behind moves up by one.
    let head = waiting[0].2.clone();
    let (agent, agent_id) = &mut agents[0];
    let mine = customers
        .iter()
        .find(|(_, _, ack)| ack["csId"] == agent_id.as_str())
        .unwrap()
        .1
        .clone();
    let resolved = agent
        .call("resolve", json!({"peerId": mine}))
        .await
        .unwrap();
    assert_eq!(resolved["ok"], true, "{resolved}");
    let assigned = expect_where(agent, "conversation_assigned", |d| {
        d["customerId"] == head.as_str()
    })
    .await;
    assert_eq!(assigned["agentId"], agent_id.as_str());
    let (head_client, _, _) = customers.iter_mut().find(|(_, id, _)| *id == head).unwrap();
    let told = head_client
        .expect("conversation_assigned", WAIT)
        .await
        .unwrap();
    assert_eq!(told["agentId"], agent_id.as_str());
    let (second, _, _) = customers
        .iter_mut()
        .find(|(_, id, _)| *id == waiting[1].2)
        .unwrap();
    let moved = expect_where(second, "queue_position", |d| d["position"] == 1).await;
    assert_eq!(moved["conversationId"], waiting[1].0.to_string());
    server.stop().await;
}

async fn an_away_agent_keeps_its_customers_and_gets_no_new_ones(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut team = agents(&server, 2, 5).await;
    let (_busy, busy_id) = team.pop().unwrap();
    let (mut away, away_id) = team.pop().unwrap();
    // The agent going away has a customer to keep.
    let (token, id) = server.visitor().await;
    let (kept, ack) = server
        .arrive_with(&token, &id, Some(&away_id), "hello")
        .await;
    assert_eq!(ack["csId"], away_id.as_str(), "{ack}");
    let status = away
        .call("set_status", json!({"status": "away"}))
        .await
        .unwrap();
    assert_eq!(status, json!({"ok": true, "status": "away"}));
    let refused = away
        .call("set_status", json!({"status": "sleeping"}))
        .await
        .unwrap();
    assert_eq!(refused["error"]["code"], "invalid_payload", "{refused}");

    // New customers go to the other agent, even when asking for the away one.
    for _ in 0..3 {
        let (token, id) = server.visitor().await;
        let (_client, ack) = server
            .arrive_with(&token, &id, Some(&away_id), "hello")
            .await;
        assert_eq!(ack["csId"], busy_id.as_str(), "{ack}");
    }
    // The away agent still talks with the customer it had.
    let sent = kept
        .call("private_message", json!({"content": "still there?"}))
        .await
        .unwrap();
    assert_eq!(sent["ok"], true, "{sent}");
    expect_where(&mut away, "new_private_message", |d| d["id"] == sent["id"]).await;

    // With the other agent full, a customer waits, until the away agent is back.
    server.set_capacity(&busy_id, 3).await;
    let (token, waiting_id) = server.visitor().await;
    let (mut waiting, ack) = server.arrive(&token, &waiting_id).await;
    assert_eq!(ack["queued"], true, "{ack}");
    let place = waiting.expect("queue_position", WAIT).await.unwrap();
    assert_eq!(place["position"], 1, "{place}");
    let back = away
        .call("set_status", json!({"status": "available"}))
        .await
        .unwrap();
    assert_eq!(back["status"], "available");
    let assigned = waiting.expect("conversation_assigned", WAIT).await.unwrap();
    assert_eq!(assigned["agentId"], away_id.as_str());
    // Customers cannot set a status.
    let refused = waiting
        .call("set_status", json!({"status": "away"}))
        .await
        .unwrap();
    assert_eq!(refused["error"]["code"], "forbidden", "{refused}");
    server.stop().await;
}

async fn a_resolved_conversation_ends_for_both_and_the_next_message_starts_another(
    backend: Backend,
) {
    let server = TestServer::start(backend).await;
    let mut team = agents(&server, 1, 5).await;
    let (agent, agent_id) = &mut team[0];
    let (token, customer_id) = server.visitor().await;
    let (mut customer, ack) = server
        .arrive_with(&token, &customer_id, None, "my order is late")
        .await;
    let first_conversation = ack["conversationId"].as_str().unwrap().to_owned();
    assert_eq!(ack["seq"], 1);

    // Only the customer's agent resolves it.
    let (other_token, other_id) = server.agent("other").await;
    let (other, _) = server.login(&other_token, &other_id).await;
    let refused = other
        .call("resolve", json!({"peerId": customer_id}))
        .await
        .unwrap();
    assert_eq!(refused["error"]["code"], "forbidden", "{refused}");
    let refused = customer
        .call("resolve", json!({"peerId": agent_id}))
        .await
        .unwrap();
    assert_eq!(refused["error"]["code"], "forbidden", "{refused}");
    // The other agent steps away, so that the next conversation comes back to the first.
    let away = other
        .call("set_status", json!({"status": "away"}))
        .await
        .unwrap();
    assert_eq!(away["ok"], true, "{away}");

    let resolved = agent
        .call("resolve", json!({"peerId": customer_id}))
        .await
        .unwrap();
    assert_eq!(
        resolved,
        json!({"ok": true, "conversationId": first_conversation})
    );
    for client in [&mut customer, agent] {
        let ended = client.expect("conversation_resolved", WAIT).await.unwrap();
        assert_eq!(
            ended,
            json!({"conversationId": first_conversation, "customerId": customer_id, "agentId": agent_id})
        );
    }
    let again = agent
        .call("resolve", json!({"peerId": customer_id}))
        .await
        .unwrap();
    assert_eq!(again["error"]["code"], "forbidden", "{again}");

    // Coming back starts nothing until the customer writes: no empty conversation takes an agent.
    let (_back, ack) = server.login(&token, &customer_id).await;
    assert_eq!(ack["ended"], true, "{ack}");
    assert_eq!(ack["conversationId"], first_conversation.as_str());
    assert_eq!(ack["csId"], Value::Null);

    // Writing again starts a new conversation, numbered from 1, routed to an agent.
    let next = customer
        .call("private_message", json!({"content": "one more thing"}))
        .await
        .unwrap();
    assert_eq!(next["ok"], true, "{next}");
    assert_eq!(next["seq"], 1);
    assert_ne!(next["conversationId"], first_conversation.as_str());
    let (agent, _) = &mut team[0];
    expect_where(agent, "new_private_message", |d| d["id"] == next["id"]).await;

    // The old one is still readable, and both are listed.
    let old = customer
        .call("history", json!({"conversationId": first_conversation}))
        .await
        .unwrap();
    assert_eq!(old["messages"][0]["content"], "my order is late");
    let (status, list) = server
        .request(
            reqwest::Method::GET,
            "/api/conversations",
            None,
            Some(&token),
        )
        .await;
    assert_eq!(status, 200, "{list}");
    let statuses: BTreeSet<(String, String)> = list["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        BTreeSet::from([
            (first_conversation.clone(), "resolved".to_owned()),
            (
                next["conversationId"].as_str().unwrap().to_owned(),
                "open".to_owned()
            ),
        ])
    );
    server.stop().await;
}

const QUIET: std::time::Duration = std::time::Duration::from_millis(700);

/// The data of the latest event of that name.
fn find(events: &[kefu_wire::Event], name: &str) -> Value {
    events
        .iter()
        .rev()
        .find(|e| e.name == name)
        .map(|e| e.data.clone())
        .unwrap_or_else(|| panic!("no {name} among {events:?}"))
}

/// Every event a client received so far, within `quiet` of silence.
async fn drain(client: &mut Client, quiet: std::time::Duration) -> Vec<kefu_wire::Event> {
    let mut events = Vec::new();
    while let Some(event) = client.next_event(quiet).await {
        events.push(event);
    }
    events
}

async fn a_transfer_hands_over_the_history_and_the_notes_and_tells_everyone(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice_token, alice_id) = server.agent("alice").await;
    let (mut alice, _) = server.login(&alice_token, &alice_id).await;
    let (bob_token, bob_id) = server.agent("bob").await;
    let (mut bob, _) = server.login(&bob_token, &bob_id).await;
    let (token, customer_id) = server.visitor().await;
    let mut customer = server.connect(&token).await;
    let ack = customer
        .call("login", json!({"userId": customer_id, "csId": alice_id}))
        .await
        .unwrap();
    assert_eq!(
        ack["csId"],
        Value::Null,
        "nothing is routed before a message"
    );
    let first = customer
        .call("private_message", json!({"content": "I want a refund"}))
        .await
        .unwrap();
    assert_eq!(first["started"]["csId"], alice_id.as_str(), "{first}");
    let noted = alice
        .call(
            "note",
            json!({"peerId": customer_id, "content": "order 1234, paid twice"}),
        )
        .await
        .unwrap();
    assert_eq!(noted["ok"], true, "{noted}");
    assert_eq!(noted["note"]["authorId"], alice_id.as_str());

    // Refusals first: nothing changes hands.
    for (payload, code) in [
        (
            json!({"peerId": customer_id, "toAgentId": alice_id}),
            "invalid_payload",
        ),
        (
            json!({"peerId": customer_id, "toAgentId": "987654"}),
            "not_found",
        ),
        (json!({"peerId": customer_id}), "invalid_payload"),
    ] {
        let refused = alice.call("transfer", payload).await.unwrap();
        assert_eq!(refused["error"]["code"], code, "{refused}");
    }
    let refused = customer
        .call("transfer", json!({"peerId": alice_id, "toAgentId": bob_id}))
        .await
        .unwrap();
    assert_eq!(refused["error"]["code"], "forbidden", "{refused}");
    // Only the conversation's agent hands it over.
    let refused = bob
        .call(
            "transfer",
            json!({"peerId": customer_id, "toAgentId": bob_id}),
        )
        .await
        .unwrap();
    assert_eq!(refused["error"]["code"], "forbidden", "{refused}");
    let away = bob
        .call("set_status", json!({"status": "away"}))
        .await
        .unwrap();
    assert_eq!(away["ok"], true);
    let refused = alice
        .call(
            "transfer",
            json!({"peerId": customer_id, "toAgentId": bob_id}),
        )
        .await
        .unwrap();
    assert_eq!(refused["error"]["code"], "conflict", "{refused}");
    bob.call("set_status", json!({"status": "available"}))
        .await
        .unwrap();

    let moved = alice
        .call(
            "transfer",
            json!({"peerId": customer_id, "toAgentId": bob_id, "note": "refund approved, please confirm"}),
        )
        .await
        .unwrap();
    assert_eq!(moved["ok"], true, "{moved}");
    assert_eq!(moved["agentId"], bob_id.as_str());
    let left = expect_where(&mut alice, "conversation_transferred", |_| true).await;
    assert_eq!(left["toAgentId"], bob_id.as_str());
    assert_eq!(left["customerId"], customer_id.as_str());
    // The system message is stored and delivered in order with the messages, so it may come
    // before or after the notices.
    let seen = drain(&mut bob, QUIET).await;
    let assigned = find(&seen, "conversation_assigned");
    assert_eq!(assigned["customerId"], customer_id.as_str());
    let handed = find(&seen, "new_note");
    assert_eq!(handed["note"]["content"], "refund approved, please confirm");
    assert_eq!(find(&seen, "new_private_message")["kind"], "system");
    let seen = drain(&mut customer, QUIET).await;
    let joined = find(&seen, "new_private_message");
    assert_eq!(joined["kind"], "system");
    assert_eq!(joined["content"], "bob joined the conversation");
    assert_eq!(joined["senderId"], bob_id.as_str());
    assert_eq!(
        find(&seen, "conversation_assigned")["agentId"],
        bob_id.as_str()
    );

    // The new agent reads everything; the old one can no longer write.
    let history = bob
        .call("history", json!({"peerId": customer_id}))
        .await
        .unwrap();
    assert_eq!(history["messages"][0]["id"], first["id"]);
    let notes = bob
        .call("notes", json!({"peerId": customer_id}))
        .await
        .unwrap();
    let contents: Vec<&str> = notes["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        contents,
        ["order 1234, paid twice", "refund approved, please confirm"]
    );
    let refused = alice
        .call(
            "private_message",
            json!({"receiverId": customer_id, "content": "hi"}),
        )
        .await
        .unwrap();
    assert_eq!(refused["error"]["code"], "forbidden", "{refused}");
    let refused = alice
        .call("notes", json!({"peerId": customer_id}))
        .await
        .unwrap();
    assert_eq!(refused["error"]["code"], "forbidden", "{refused}");

    // Back to the queue, with nobody available: the customer waits at the head.
    alice
        .call("set_status", json!({"status": "away"}))
        .await
        .unwrap();
    let queued = bob
        .call(
            "transfer",
            json!({"peerId": customer_id, "toAgentId": null}),
        )
        .await
        .unwrap();
    assert_eq!(queued["agentId"], Value::Null, "{queued}");
    let seen = drain(&mut customer, QUIET).await;
    find(&seen, "conversation_queued");
    // Bob handed it back: it does not go straight back to him. Its place comes within a second.
    assert!(
        seen.iter().all(|e| e.name != "conversation_assigned"),
        "{seen:?}"
    );
    let place = match seen.iter().rev().find(|e| e.name == "queue_position") {
        Some(event) => event.data.clone(),
        None => customer.expect("queue_position", WAIT).await.unwrap(),
    };
    assert_eq!(place["position"], 1, "{place}");
    let waiting = find(&seen, "new_private_message");
    assert_eq!(waiting["kind"], "system");
    assert_eq!(waiting["content"], "Waiting for the next agent");
    // Alice is back: the conversation is hers again, with its history.
    alice
        .call("set_status", json!({"status": "available"}))
        .await
        .unwrap();
    let again = expect_where(&mut customer, "conversation_assigned", |_| true).await;
    assert_eq!(again["agentId"], alice_id.as_str());
    server.stop().await;
}

async fn notes_never_reach_the_customer(backend: Backend) {
    const SECRET: &str = "NOTE-7f3a: customer is a known fraudster";
    let server = TestServer::start(backend).await;
    let (alice_token, alice_id) = server.agent("alice").await;
    let (mut alice, _) = server.login(&alice_token, &alice_id).await;
    let (bob_token, bob_id) = server.agent("bob").await;
    let (_bob, _) = server.login(&bob_token, &bob_id).await;
    let (token, customer_id) = server.visitor().await;
    let mut customer = server.connect(&token).await;
    customer
        .call("login", json!({"userId": customer_id, "csId": alice_id}))
        .await
        .unwrap();
    customer
        .call("private_message", json!({"content": "hello"}))
        .await
        .unwrap();
    let noted = alice
        .call("note", json!({"peerId": customer_id, "content": SECRET}))
        .await
        .unwrap();
    assert_eq!(noted["ok"], true, "{noted}");
    expect_where(&mut alice, "new_note", |d| d["note"]["content"] == SECRET).await;
    alice
        .call(
            "transfer",
            json!({"peerId": customer_id, "toAgentId": bob_id, "note": SECRET}),
        )
        .await
        .unwrap();

    // The customer asks for notes in every way it can.
    for payload in [
        json!({"peerId": bob_id}),
        json!({"peerId": alice_id}),
        json!({"conversationId": noted["note"]["conversationId"]}),
    ] {
        let refused = customer.call("notes", payload).await.unwrap();
        assert_eq!(refused["error"]["code"], "forbidden", "{refused}");
    }
    let refused = customer
        .call("note", json!({"peerId": bob_id, "content": "x"}))
        .await
        .unwrap();
    assert_eq!(refused["error"]["code"], "forbidden", "{refused}");
    let mut seen = Vec::new();
    for payload in [
        json!({}),
        json!({"conversationId": noted["note"]["conversationId"]}),
        json!({"afterSeq": 0}),
    ] {
        seen.push(customer.call("history", payload).await.unwrap());
    }
    seen.push(customer.call("all_member", json!({})).await.unwrap());
    seen.push(customer.call("queue_status", json!({})).await.unwrap());
    for path in ["/api/conversations", "/api/me"] {
        seen.push(
            server
                .request(reqwest::Method::GET, path, None, Some(&token))
                .await
                .1,
        );
    }
    seen.extend(
        drain(&mut customer, std::time::Duration::from_millis(500))
            .await
            .into_iter()
            .map(|e| json!({"event": e.name, "data": e.data})),
    );
    assert!(seen.len() > 8, "{seen:?}");
    for answer in &seen {
        assert!(
            !answer.to_string().contains("NOTE-7f3a"),
            "a note reached the customer: {answer}"
        );
    }
    server.stop().await;
}

async fn a_customer_rates_once_and_the_report_and_the_transcript_show_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice_token, alice_id) = server.agent("alice").await;
    let (alice, _) = server.login(&alice_token, &alice_id).await;
    let (token, customer_id) = server.visitor().await;
    let (mut customer, ack) = server
        .arrive_with(&token, &customer_id, None, "where is my parcel?")
        .await;
    let conversation = ack["conversationId"].as_str().unwrap().to_owned();
    let reply = alice
        .call(
            "private_message",
            json!({"receiverId": customer_id, "content": "on its way"}),
        )
        .await
        .unwrap();
    assert_eq!(reply["ok"], true, "{reply}");
    alice
        .call(
            "note",
            json!({"peerId": customer_id, "content": "SECRET-NOTE courier lost it"}),
        )
        .await
        .unwrap();

    let early = customer
        .call("rate", json!({"conversationId": conversation, "score": 5}))
        .await
        .unwrap();
    assert_eq!(early["error"]["code"], "forbidden", "{early}");
    alice
        .call("resolve", json!({"peerId": customer_id}))
        .await
        .unwrap();
    expect_where(&mut customer, "conversation_resolved", |_| true).await;
    for (payload, code) in [
        (
            json!({"conversationId": conversation, "score": 6}),
            "invalid_payload",
        ),
        (
            json!({"conversationId": conversation, "score": 0}),
            "invalid_payload",
        ),
        (
            json!({"conversationId": conversation, "score": 4.5}),
            "invalid_payload",
        ),
        (json!({"conversationId": conversation}), "invalid_payload"),
        (
            json!({"conversationId": conversation, "score": 4, "comment": "x".repeat(1001)}),
            "too_large",
        ),
    ] {
        let refused = customer.call("rate", payload).await.unwrap();
        assert_eq!(refused["error"]["code"], code, "{refused}");
    }
    let refused = alice
        .call("rate", json!({"conversationId": conversation, "score": 1}))
        .await
        .unwrap();
    assert_eq!(refused["error"]["code"], "forbidden", "{refused}");
    let (other_token, other_id) = server.visitor().await;
    let (other, _) = server.login(&other_token, &other_id).await;
    let refused = other
        .call("rate", json!({"conversationId": conversation, "score": 1}))
        .await
        .unwrap();
    assert_eq!(refused["error"]["code"], "forbidden", "{refused}");
    let rated = customer
        .call(
            "rate",
            json!({"conversationId": conversation, "score": 4, "comment": "quick, thanks"}),
        )
        .await
        .unwrap();
    assert_eq!(rated, json!({"ok": true}));
    let again = customer
        .call("rate", json!({"conversationId": conversation, "score": 1}))
        .await
        .unwrap();
    assert_eq!(again["error"]["code"], "conflict", "{again}");

    let admin = server.admin_token().await;
    let (status, report) = server
        .request(
            reqwest::Method::GET,
            "/api/admin/reports?days=7",
            None,
            Some(&admin),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    let days = report["days"].as_array().unwrap();
    assert_eq!(days.len(), 7);
    let counted: u64 = days
        .iter()
        .map(|d| d["conversations"].as_u64().unwrap())
        .sum();
    // The other visitor only logged in: a login makes no conversation.
    assert_eq!(counted, 1, "{report}");
    let mine = report["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent"]["id"] == alice_id.as_str())
        .unwrap();
    assert_eq!(mine["csat"], json!({"average": 4.0, "count": 1}), "{mine}");
    assert_eq!(mine["resolved"], 1);
    assert!(
        mine["firstResponseSeconds"]["median"].as_f64().unwrap() >= 0.0,
        "{mine}"
    );
    assert!(
        mine["resolutionSeconds"]["p90"].as_f64().unwrap() >= 0.0,
        "{mine}"
    );
    for (query, code) in [("days=0", 400), ("days=366", 400), ("days=abc", 400)] {
        let (status, body) = server
            .request(
                reqwest::Method::GET,
                &format!("/api/admin/reports?{query}"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(status, code, "{body}");
        assert_eq!(body["error"]["code"], "invalid_payload", "{body}");
    }
    let (status, _) = server
        .request(
            reqwest::Method::GET,
            "/api/admin/reports",
            None,
            Some(&alice_token),
        )
        .await;
    assert_eq!(status, 403);

    // The transcript has the messages and never the note.
    let path = format!("/api/admin/conversations/{conversation}/transcript");
    let (status, transcript) = server
        .request(reqwest::Method::GET, &path, None, Some(&admin))
        .await;
    assert_eq!(status, 200, "{transcript}");
    let contents: Vec<&str> = transcript["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["where is my parcel?", "on its way"]);
    assert!(!transcript.to_string().contains("SECRET-NOTE"));
    // What happened around the messages, in order.
    let events: Vec<(String, String)> = transcript["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].to_string(),
                e["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(
        events[0],
        ("\"assigned\"".into(), "Assigned to alice".into())
    );
    assert_eq!(
        events[1],
        ("\"resolved\"".into(), "Resolved by alice".into())
    );
    assert_eq!(events[2].0, "\"rated\"");
    assert!(
        events[2].1.starts_with("Visitor ")
            && events[2]
                .1
                .ends_with(" rated the conversation 4/5: quick, thanks"),
        "{events:?}"
    );
    assert_eq!(transcript["conversation"]["rating"], 4);
    assert_eq!(transcript["conversation"]["ratingComment"], "quick, thanks");
    let (status, text) = server.get(&format!("{path}?format=text&")).await;
    assert_eq!(status, 401, "a transcript needs the admin's token: {text}");
    let response = reqwest::Client::new()
        .get(format!("{}{path}?format=text", server.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains("alice: on its way"), "{text}");
    assert!(text.contains("-- Resolved by alice"), "{text}");
    assert!(
        text.contains("rated the conversation 4/5: quick, thanks"),
        "{text}"
    );
    assert!(!text.contains("SECRET-NOTE"), "{text}");
    // The conversation's agent may export it too, where it is; another agent may not see it.
    let (bob_token, _) = server.agent("bob").await;
    for path in [
        path.clone(),
        format!("/api/conversations/{conversation}/transcript"),
    ] {
        let (status, body) = server
            .request(reqwest::Method::GET, &path, None, Some(&alice_token))
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = server
            .request(reqwest::Method::GET, &path, None, Some(&bob_token))
            .await;
        assert_eq!(status, 404, "{body}");
        let (status, _) = server
            .request(reqwest::Method::GET, &path, None, Some(&token))
            .await;
        assert_eq!(status, 403, "customers do not export transcripts");
    }
    server.stop().await;
}

async fn canned_replies_are_shared_by_admins_or_kept_by_each_agent(backend: Backend) {
    use reqwest::Method;
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    let (alice, _) = server.agent("alice").await;
    let (bob, _) = server.agent("bob").await;
    let (customer, _) = server.visitor().await;
    let body = |v: Value| Some(v);

    let (status, mine) = server
        .request(
            Method::POST,
            "/api/canned-replies",
            body(json!({"shortcut": "/Refund", "content": "Hi {{customer.name}}, your refund is on its way."})),
            Some(&alice),
        )
        .await;
    assert_eq!(status, 201, "{mine}");
    assert_eq!(mine["reply"]["shortcut"], "/refund");
    assert_eq!(mine["reply"]["shared"], false);
    let mine_id = mine["reply"]["id"].as_str().unwrap().to_owned();
    let (status, shared) = server
        .request(
            Method::POST,
            "/api/canned-replies",
            body(json!({"shortcut": "/hello", "content": "Hello, I am {{agent.name}}.", "shared": true})),
            Some(&admin),
        )
        .await;
    assert_eq!(status, 201, "{shared}");
    let shared_id = shared["reply"]["id"].as_str().unwrap().to_owned();

    for (payload, token, code) in [
        (
            json!({"shortcut": "/refund", "content": "again"}),
            &alice,
            409,
        ),
        (json!({"shortcut": "refund", "content": "x"}), &alice, 400),
        (json!({"shortcut": "/ok", "content": ""}), &alice, 400),
        (
            json!({"shortcut": "/team", "content": "x", "shared": true}),
            &alice,
            403,
        ),
        (json!({"shortcut": "/x", "content": "x"}), &customer, 403),
    ] {
        let (status, answer) = server
            .request(
                Method::POST,
                "/api/canned-replies",
                body(payload),
                Some(token),
            )
            .await;
        assert_eq!(status, code, "{answer}");
    }
    // Bob may use the same shortcut for his own.
    let (status, _) = server
        .request(
            Method::POST,
            "/api/canned-replies",
            body(json!({"shortcut": "/refund", "content": "Bob's way"})),
            Some(&bob),
        )
        .await;
    assert_eq!(status, 201);

    let list = |token: String| {
        let server = &server;
        async move {
            let (status, list) = server
                .request(Method::GET, "/api/canned-replies", None, Some(&token))
                .await;
            assert_eq!(status, 200, "{list}");
            list["replies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["content"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(alice.clone()).await,
        [
            "Hello, I am {{agent.name}}.",
            "Hi {{customer.name}}, your refund is on its way."
        ]
    );
    assert_eq!(
        list(bob.clone()).await,
        ["Hello, I am {{agent.name}}.", "Bob's way"]
    );

    // Only the owner changes a personal reply, only an admin a shared one.
    let path = format!("/api/canned-replies/{mine_id}");
    let (status, _) = server
        .request(
            Method::PATCH,
            &path,
            body(json!({"content": "x"})),
            Some(&bob),
        )
        .await;
    assert_eq!(status, 404);
    let (status, changed) = server
        .request(
            Method::PATCH,
            &path,
            body(json!({"content": "Refund sent."})),
            Some(&alice),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["reply"]["content"], "Refund sent.");
    let shared_path = format!("/api/canned-replies/{shared_id}");
    let (status, _) = server
        .request(Method::DELETE, &shared_path, None, Some(&alice))
        .await;
    assert_eq!(status, 403);
    let (status, _) = server
        .request(Method::DELETE, &shared_path, None, Some(&admin))
        .await;
    assert_eq!(status, 204);
    let (status, _) = server
        .request(Method::DELETE, &path, None, Some(&alice))
        .await;
    assert_eq!(status, 204);
    assert!(list(alice.clone()).await.is_empty());
    let (status, _) = server
        .request(
            Method::DELETE,
            "/api/canned-replies/abc",
            None,
            Some(&alice),
        )
        .await;
    assert_eq!(status, 400);
    server.stop().await;
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR pretend the rest of an image is here";

/// Uploads `bytes` as `name` with a claimed type: (status, body).
async fn upload(
    server: &TestServer,
    token: Option<&str>,
    bytes: Vec<u8>,
    name: &str,
    claimed: &str,
    peer: Option<&str>,
) -> (u16, Value) {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str(claimed)
        .unwrap();
    let mut form = reqwest::multipart::Form::new().part("file", part);
    if let Some(peer) = peer {
        form = form.text("peerId", peer.to_owned());
    }
    let mut request = reqwest::Client::new()
        .post(format!("{}/api/attachments", server.base))
        .multipart(form);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// GET an attachment's url: (status, bytes).
async fn fetch(server: &TestServer, url: &str, token: Option<&str>) -> (u16, Vec<u8>) {
    let mut request = reqwest::Client::new().get(format!("{}{url}", server.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (
        response.status().as_u16(),
        response.bytes().await.unwrap().to_vec(),
    )
}

async fn attachments_reach_only_the_conversation_and_stay_within_their_limits(backend: Backend) {
    let server = TestServer::start_with(backend, |s| s.attachment_max_bytes = 4096).await;
    let (alice_token, alice_id) = server.agent("alice").await;
    let (mut alice, _) = server.login(&alice_token, &alice_id).await;
    let (bob_token, bob_id) = server.agent("bob").await;
    server.set_capacity(&bob_id, 1).await;
    let (token, customer_id) = server.visitor().await;
    let customer = server.connect(&token).await;
    customer
        .call("login", json!({"userId": customer_id, "csId": alice_id}))
        .await
        .unwrap();
    let (stranger_token, stranger_id) = server.visitor().await;
    let stranger = server.connect(&stranger_token).await;
    stranger
        .call("login", json!({"userId": stranger_id, "csId": alice_id}))
        .await
        .unwrap();

    let (status, uploaded) = upload(
        &server,
        Some(&token),
        PNG.to_vec(),
        "../photo.png",
        "image/png",
        None,
    )
    .await;
    assert_eq!(status, 201, "{uploaded}");
    let attachment = uploaded["attachment"].clone();
    assert_eq!(attachment["name"], "photo.png");
    assert_eq!(attachment["mime"], "image/png");
    assert_eq!(attachment["size"], PNG.len());
    let url = attachment["url"].as_str().unwrap().to_owned();

    let sent = customer
        .call("private_message", json!({"attachmentId": attachment["id"]}))
        .await
        .unwrap();
    assert_eq!(sent["ok"], true, "{sent}");
    let message = expect_where(&mut alice, "new_private_message", |d| d["id"] == sent["id"]).await;
    assert_eq!(message["kind"], "image");
    assert_eq!(message["content"], "photo.png");
    assert_eq!(message["attachment"]["url"], url.as_str());
    let history = alice
        .call("history", json!({"peerId": customer_id}))
        .await
        .unwrap();
    assert_eq!(history["messages"][0]["attachment"]["id"], attachment["id"]);

    // The conversation's customer, its agent and admins read it; nobody else learns it exists.
    let admin = server.admin_token().await;
    for reader in [&token, &alice_token, &admin] {
        let (status, bytes) = fetch(&server, &url, Some(reader)).await;
        assert_eq!((status, bytes.as_slice()), (200, PNG));
    }
    let (status, bytes) = fetch(&server, &format!("{url}?token={alice_token}"), None).await;
    assert_eq!((status, bytes.as_slice()), (200, PNG));
    for outsider in [&stranger_token, &bob_token] {
        let (status, _) = fetch(&server, &url, Some(outsider)).await;
        assert_eq!(status, 404);
    }
    assert_eq!(fetch(&server, &url, None).await.0, 401);
    assert_eq!(
        fetch(&server, "/api/attachments/987654", Some(&admin))
            .await
            .0,
        404
    );
    let response = reqwest::Client::new()
        .get(format!("{}{url}", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");

    // Someone else's file cannot be sent.
    let refused = stranger
        .call("private_message", json!({"attachmentId": attachment["id"]}))
        .await
        .unwrap();
    assert_eq!(refused["error"]["code"], "not_found", "{refused}");

    // Limits: size, type, the text size limit's hint, who may upload where.
    let (status, body) = upload(
        &server,
        Some(&token),
        vec![b'a'; 5000],
        "big.txt",
        "text/plain",
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("too_large")),
        "{body}"
    );
    for (bytes, claimed) in [
        (b"<html><script>alert(1)</script>".to_vec(), "text/html"),
        (
            b"MZ\x90\0\x03 pretend executable".to_vec(),
            "application/octet-stream",
        ),
        (b"<html>".to_vec(), "image/png"),
    ] {
        let (status, body) = upload(&server, Some(&token), bytes, "x", claimed, None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (415, Some("unsupported_type")),
            "{body}"
        );
    }
    let (status, body) = upload(&server, None, PNG.to_vec(), "a.png", "image/png", None).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = upload(
        &server,
        Some(&alice_token),
        PNG.to_vec(),
        "a.png",
        "image/png",
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_payload")),
        "{body}"
    );
    let (status, body) = upload(
        &server,
        Some(&alice_token),
        b"notes".to_vec(),
        "n.txt",
        "text/plain",
        Some(&customer_id),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["attachment"]["mime"], "text/plain");
    let (status, body) = upload(
        &server,
        Some(&bob_token),
        PNG.to_vec(),
        "a.png",
        "image/png",
        Some(&customer_id),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let long = customer
        .call("private_message", json!({"content": "x".repeat(9000)}))
        .await
        .unwrap();
    assert_eq!(long["error"]["code"], "too_large", "{long}");
    assert!(
        long["error"]["message"]
            .as_str()
            .unwrap()
            .contains("send a file"),
        "{long}"
    );
    server.stop().await;
}

async fn admins_find_a_customers_conversations_and_the_transcript_tells_transfers_and_files(
    backend: Backend,
) {
    use reqwest::Method;
    let server = TestServer::start(backend).await;
    let admin = server.admin_token().await;
    let (alice_token, alice_id) = server.agent("alice").await;
    let (alice, _) = server.login(&alice_token, &alice_id).await;
    let (bob_token, bob_id) = server.agent("bob").await;
    let (_bob, _) = server.login(&bob_token, &bob_id).await;
    // A customer who gave a name and an e-mail, and one who did not.
    let (status, ann) = server
        .post(
            "/api/visitors",
            json!({"name": "Ann 50%_Lee", "email": "ann@shop.example"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{ann}");
    let ann_token = ann["token"].as_str().unwrap().to_owned();
    let ann_id = ann["user"]["id"].as_str().unwrap().to_owned();
    let (mut ann_client, ack) = server
        .arrive_with(&ann_token, &ann_id, None, "my order")
        .await;
    let conversation = ack["conversationId"].as_str().unwrap().to_owned();
    let (other_token, other_id) = server.visitor().await;
    let _ = server.arrive(&other_token, &other_id).await;

    let png = b"\x89PNG\r\n\x1a\n0000000000000000".to_vec();
    let (status, uploaded) = upload(
        &server,
        Some(&ann_token),
        png,
        "receipt.png",
        "image/png",
        None,
    )
    .await;
    assert_eq!(status, 201, "{uploaded}");
    let attachment = uploaded["attachment"]["id"].as_str().unwrap().to_owned();
    let sent = ann_client
        .call("private_message", json!({"attachmentId": attachment}))
        .await
        .unwrap();
    assert_eq!(sent["ok"], true, "{sent}");
    // Whoever has Ann hands her to the other.
    let (holder, holder_token, to) = if ack["csId"] == alice_id.as_str() {
        (&alice, &alice_token, bob_id.clone())
    } else {
        (&_bob, &bob_token, alice_id.clone())
    };
    let moved = holder
        .call("transfer", json!({"peerId": ann_id, "toAgentId": to}))
        .await
        .unwrap();
    assert_eq!(moved["ok"], true, "{moved}");
    let _ = holder_token;
    // The line that says who joined is stored like any message.
    expect_where(&mut ann_client, "new_private_message", |m| {
        m["kind"] == "system"
    })
    .await;

    // Found by part of the name (its % and _ taken literally), by e-mail, by either id.
    for q in ["50%_l", "ANN@SHOP", ann_id.as_str(), conversation.as_str()] {
        let (status, found) = server
            .request(
                Method::GET,
                &format!("/api/admin/conversations?q={}", urlencode(q)),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(status, 200, "{found}");
        let ids: Vec<&str> = found["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [conversation.as_str()], "q={q}: {found}");
        let first = &found["conversations"][0];
        assert_eq!(first["customer"]["displayName"], "Ann 50%_Lee");
        assert_eq!(first["customer"]["email"], "ann@shop.example");
        assert_eq!(first["agent"]["id"], to.as_str());
        assert_eq!(first["status"], "open");
        assert_eq!(first["messages"], 3, "two messages and the join line");
    }
    for q in ["50x_l", "nobody"] {
        let (_, found) = server
            .request(
                Method::GET,
                &format!("/api/admin/conversations?q={q}"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(found["conversations"], json!([]), "q={q}");
    }
    // Every conversation, newest first, a page at a time.
    let (_, page) = server
        .request(
            Method::GET,
            "/api/admin/conversations?limit=1",
            None,
            Some(&admin),
        )
        .await;
    assert_eq!(page["conversations"].as_array().unwrap().len(), 1, "{page}");
    let before = page["nextBefore"].as_str().expect("a next page").to_owned();
    let (_, rest) = server
        .request(
            Method::GET,
            &format!("/api/admin/conversations?before={before}&status=open"),
            None,
            Some(&admin),
        )
        .await;
    assert_eq!(rest["conversations"].as_array().unwrap().len(), 1, "{rest}");
    assert!(rest.get("nextBefore").is_none(), "{rest}");
    for (query, code) in [
        ("status=closed", 400),
        ("limit=x", 400),
        ("limit=0", 400),
        ("limit=101", 400),
        ("before=abc", 400),
    ] {
        let (status, body) = server
            .request(
                Method::GET,
                &format!("/api/admin/conversations?{query}"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (code, Some("invalid_payload")),
            "{query}"
        );
    }
    let (status, _) = server
        .request(
            Method::GET,
            "/api/admin/conversations",
            None,
            Some(&alice_token),
        )
        .await;
    assert_eq!(status, 403, "agents do not search every conversation");

    // The text transcript: the transfer, and the file with its link.
    let response = reqwest::Client::new()
        .get(format!(
            "{}/api/conversations/{conversation}/transcript?format=text",
            server.base
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let host = server.base.trim_start_matches("http://");
    assert!(text.contains("Customer: Ann 50%_Lee ("), "{text}");
    assert!(text.contains("ann@shop.example"), "{text}");
    assert!(
        text.contains(&format!(
            "Ann 50%_Lee: [image receipt.png, image/png, 24 B] http://{host}/api/attachments/{attachment}"
        )),
        "{text}"
    );
    assert!(text.contains(" transferred the conversation to "), "{text}");
    assert!(text.contains(" joined the conversation"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let at = |needle: &str| lines.iter().position(|l| l.contains(needle)).unwrap();
    // The first message and the assignment it led to are one commit: the message comes first.
    assert!(at("my order") < at("-- Assigned to"));
    assert!(at("receipt.png") < at("transferred the conversation"));
    server.stop().await;
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
