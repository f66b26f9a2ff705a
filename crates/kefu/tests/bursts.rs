//! The worst minutes, at sizes a test can afford (the full sizes are `kefu-bench`'s `burst`,
//! `queue` and `restart`, docs/benchmarks.md): every login at once, every first message at once,
//! a long queue drained when the agents sign in, a kill -9 with every client coming back.

mod common;

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use common::{Backend, Process, TestServer, temp_dir};
use futures_util::{StreamExt, future::join_all, stream};
use kefu_wire::Client;
use serde_json::{Value, json};

on_every_backend!(
    two_thousand_logins_at_once_are_all_answered_and_none_is_unavailable,
    a_queue_of_five_hundred_drains_when_agents_sign_in_with_places_told_at_most_once_a_second,
);

/// SQLite's readers never wait for a writer (WAL): only the servers can be made busy this way.
mod busy {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mysql() {
        if Backend::MySql.enabled() {
            a_database_busy_for_longer_than_the_pool_timeout_is_waited_for_not_unavailable(
                Backend::MySql,
            )
            .await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if Backend::Postgres.enabled() {
            a_database_busy_for_longer_than_the_pool_timeout_is_waited_for_not_unavailable(
                Backend::Postgres,
            )
            .await
        }
    }
}

/// `n` visitors: tokens and ids, created `parallel` at a time.
async fn visitors(base: &str, n: usize) -> Vec<(String, String)> {
    let http = reqwest::Client::new();
    stream::iter(0..n)
        .map(|_| {
            let http = http.clone();
            async move {
                let body: Value = http
                    .post(format!("{base}/api/visitors"))
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                (
                    body["token"].as_str().unwrap().to_owned(),
                    body["user"]["id"].as_str().unwrap().to_owned(),
                )
            }
        })
        .buffer_unordered(16)
        .collect()
        .await
}

/// Connects every visitor, 64 handshakes at a time.
async fn connect_all(base: &str, visitors: &[(String, String)]) -> Vec<Client> {
    stream::iter(visitors)
        .map(|(token, _)| async move {
            Client::connect(base, json!({"token": token}))
                .await
                .expect("a visitor connects")
        })
        .buffered(64)
        .collect()
        .await
}

/// Sends `event` with `payload(i)` on every client at once, then waits for every ack: the acks,
/// in order, and how long the last one took.
async fn all_at_once(
    clients: &[Client],
    event: &str,
    payload: impl Fn(usize) -> Value,
) -> (Vec<Value>, Duration) {
    let started = Instant::now();
    let pending: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| c.call_later(event, payload(i)).unwrap())
        .collect();
    let acks = join_all(pending.into_iter().map(|ack| async move {
        tokio::time::timeout(Duration::from_secs(60), ack)
            .await
            .map(|a| a.unwrap_or(Value::Null))
            .unwrap_or_else(|_| json!({"ok": false, "error": {"code": "no_ack"}}))
    }))
    .await;
    (acks, started.elapsed())
}

/// How many acks failed, by error code.
fn refusals(acks: &[Value]) -> HashMap<String, usize> {
    let mut refused = HashMap::new();
    for ack in acks.iter().filter(|a| a["ok"] != true) {
        *refused
            .entry(ack["error"]["code"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    refused
}

async fn two_thousand_logins_at_once_are_all_answered_and_none_is_unavailable(backend: Backend) {
    const VISITORS: usize = 2000;
    let server = TestServer::start_with(backend, |s| s.message_rate_limit = 0).await;
    let mut agents = Vec::new();
    for i in 0..4 {
        let (token, id) = server.agent(&format!("agent{i}")).await;
        server.set_capacity(&id, 100).await;
        agents.push(server.connect(&token).await);
        let ack = agents[i]
            .call("login", json!({"userId": id}))
            .await
            .unwrap();
        assert_eq!(ack["ok"], true, "{ack}");
    }
    let visitors = visitors(&server.base, VISITORS).await;
    let clients = connect_all(&server.base, &visitors).await;

    // Every login at once: each is a read, answered; none waits for a write.
    let (acks, took) = all_at_once(&clients, "login", |i| json!({"userId": visitors[i].1})).await;
    println!("{VISITORS} logins at once answered in {took:?}");
    assert_eq!(
        refusals(&acks),
        HashMap::new(),
        "every login is answered ok"
    );
    assert!(
        acks.iter().all(|a| a["conversationId"].is_null()),
        "a login makes no conversation"
    );

    // Every first message at once: each starts its conversation, in group commits.
    let (sent, took) = all_at_once(
        &clients,
        "private_message",
        |i| json!({"content": "hello", "clientMsgId": format!("first-{i}")}),
    )
    .await;
    println!("{VISITORS} first messages at once stored in {took:?}");
    assert_eq!(
        refusals(&sent),
        HashMap::new(),
        "every first message is stored"
    );
    let assigned = sent
        .iter()
        .filter(|a| a["started"]["queued"] == false)
        .count();
    assert_eq!(
        assigned, 400,
        "four agents of capacity 100 take 400; the others wait"
    );
    assert!(
        sent.iter().all(|a| a["started"].is_object()),
        "each started one"
    );
    server.stop().await;
}

async fn a_queue_of_five_hundred_drains_when_agents_sign_in_with_places_told_at_most_once_a_second(
    backend: Backend,
) {
    const WAITING: usize = 500;
    let server = TestServer::start_with(backend, |s| s.message_rate_limit = 0).await;
    let visitors = visitors(&server.base, WAITING).await;
    let clients = connect_all(&server.base, &visitors).await;
    let (acks, _) = all_at_once(&clients, "login", |i| json!({"userId": visitors[i].1})).await;
    assert_eq!(refusals(&acks), HashMap::new());
    // Nobody is online: every first message waits.
    let (sent, _) = all_at_once(&clients, "private_message", |_| json!({"content": "hi"})).await;
    assert_eq!(refusals(&sent), HashMap::new());
    assert!(sent.iter().all(|a| a["started"]["queued"] == true));

    // Every client records when it hears of its place and of its agent.
    let mut clients = clients;
    let listening: Vec<_> = clients
        .drain(..)
        .map(|mut client| {
            tokio::spawn(async move {
                let mut places = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(60);
                while Instant::now() < deadline {
                    let Some(event) = client.next_event(Duration::from_secs(5)).await else {
                        continue;
                    };
                    match event.name.as_str() {
                        "queue_position" => places.push((Instant::now(), event.data)),
                        "conversation_assigned" => return (places, Some(Instant::now())),
                        _ => {}
                    }
                }
                (places, None)
            })
        })
        .collect();
    // Told where they stand, then the agents come: five of capacity 100.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let signed_in = Instant::now();
    let mut agents = Vec::new();
    for i in 0..5 {
        let (token, id) = server.agent(&format!("agent{i}")).await;
        server.set_capacity(&id, 100).await;
        let client = server.connect(&token).await;
        let asked = Instant::now();
        let ack = client.call("login", json!({"userId": id})).await.unwrap();
        assert_eq!(ack["ok"], true, "{ack}");
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "an agent's sign-in does not wait for the queue ({:?})",
            asked.elapsed()
        );
        agents.push(client);
    }
    let mut last_assigned = signed_in;
    for (i, listener) in listening.into_iter().enumerate() {
        let (places, assigned) = listener.await.unwrap();
        let assigned = assigned.unwrap_or_else(|| panic!("visitor {i} was never assigned"));
        last_assigned = last_assigned.max(assigned);
        assert!(!places.is_empty(), "visitor {i} was told its place");
        let told: Vec<_> = places.iter().map(|p| &p.1).collect();
        // At most one place a second. Each telling is timed when this test reads it, which
        // on a busy machine can be late by a few hundred milliseconds: n tellings take at
        // least n - 1 seconds, less half a second for one late reading.
        let span = places.last().unwrap().0.duration_since(places[0].0);
        let least =
            Duration::from_secs(places.len() as u64 - 1).saturating_sub(Duration::from_millis(500));
        assert!(
            span >= least,
            "visitor {i} was told its place {} times within {span:?}: {told:?}",
            places.len()
        );
    }
    println!(
        "{WAITING} waiting assigned within {:?} of the agents signing in",
        last_assigned.duration_since(signed_in)
    );
    server.stop().await;
}

/// Holds a lock that stops every read of `conversations` on `url`'s database until the returned
/// sender is dropped; resolves once the lock is held.
async fn lock_conversations(backend: Backend, url: &str) -> tokio::sync::oneshot::Sender<()> {
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let (locked, is_locked) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        match backend {
            Backend::Postgres => {
                conn.execute("BEGIN").await.unwrap();
                conn.execute("LOCK TABLE conversations IN ACCESS EXCLUSIVE MODE")
                    .await
                    .unwrap();
            }
            Backend::MySql => {
                conn.execute("LOCK TABLES conversations WRITE")
                    .await
                    .unwrap();
            }
            Backend::Sqlite => unreachable!("SQLite's readers do not wait for a writer"),
        }
        let _ = locked.send(());
        let _ = released.await;
        match backend {
            Backend::Postgres => conn.execute("COMMIT").await.unwrap(),
            _ => conn.execute("UNLOCK TABLES").await.unwrap(),
        };
        let _ = conn.close().await;
    });
    is_locked.await.unwrap();
    release
}

/// The database is up but busy (a table locked for longer than the pool's 5 s timeout): a burst of
/// requests that each read it waits its turn and is answered, not told "unavailable".
async fn a_database_busy_for_longer_than_the_pool_timeout_is_waited_for_not_unavailable(
    backend: Backend,
) {
    const CLIENTS: usize = 60;
    let server = TestServer::start(backend).await;
    let visitors = visitors(&server.base, CLIENTS).await;
    let release = lock_conversations(backend, server.db.url.as_deref().unwrap()).await;
    let started = Instant::now();
    let base = server.base.clone();
    let asking = tokio::spawn(async move {
        join_all(
            visitors
                .iter()
                .map(|(token, _)| common::get_json(&base, "/api/conversations", Some(token))),
        )
        .await
    });
    tokio::time::sleep(Duration::from_secs(7)).await;
    let waiting = server.state.store.waiting();
    drop(release);
    let answered = asking.await.unwrap();
    let refused: Vec<&(u16, Value)> = answered.iter().filter(|(s, _)| *s != 200).collect();
    println!(
        "{CLIENTS} requests over a 7 s lock: {} refused, {:?} for all; {} reads were waiting",
        refused.len(),
        started.elapsed(),
        waiting.reads
    );
    assert!(waiting.reads > 0, "the requests queued for their turns");
    assert_eq!(refused, Vec::<&(u16, Value)>::new(), "busy is not down");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_who_opens_the_chat_and_leaves_makes_no_conversation() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (agent_token, agent_id) = server.agent("alice").await;
    let (mut agent, _) = server.login(&agent_token, &agent_id).await;
    let (token, id) = server.visitor().await;
    let (client, ack) = server.login(&token, &id).await;
    assert_eq!(ack["conversationId"], Value::Null, "{ack}");
    let typing = client
        .call("typing", json!({"typing": true}))
        .await
        .unwrap();
    assert_eq!(
        typing["ok"], true,
        "typing before writing goes nowhere: {typing}"
    );
    client.close();
    let (status, mine) = server
        .request(
            reqwest::Method::GET,
            "/api/conversations",
            None,
            Some(&token),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(mine["conversations"], json!([]), "no conversation");
    let admin = server.admin_token().await;
    let (_, found) = server
        .request(
            reqwest::Method::GET,
            "/api/admin/conversations",
            None,
            Some(&admin),
        )
        .await;
    assert_eq!(found["conversations"], json!([]), "none anywhere");
    let members = agent.call("all_member", json!({})).await.unwrap();
    assert_eq!(members["users"], json!([]), "nobody's member");
    while let Some(event) = agent.next_event(Duration::from_millis(300)).await {
        assert!(
            !event.name.starts_with("user_") && event.name != "typing",
            "the agent heard of a visitor who never wrote: {event:?}"
        );
    }
    server.stop().await;
}

/// Connects and logs in again and again, pausing as socket.io-client does between attempts
/// (1 s growing to 5 s, randomized by half), until it is in or `deadline` passes.
async fn come_back(base: &str, token: &str, id: &str, deadline: Instant) -> Option<Client> {
    let mut delay = 1000u64;
    loop {
        if let Ok(client) = Client::connect(base, json!({"token": token})).await
            && let Ok(ack) = client.call("login", json!({"userId": id})).await
            && ack["ok"] == true
        {
            return Some(client);
        }
        if Instant::now() > deadline {
            return None;
        }
        let jitter = rand_jitter(delay);
        tokio::time::sleep(Duration::from_millis(jitter)).await;
        delay = (delay * 2).min(5000);
    }
}

/// `delay` randomized by ±50%, from the clock (the tests need no random crate).
fn rand_jitter(delay: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos() as u64;
    delay / 2 + nanos % delay.max(1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_kill_9_every_held_client_comes_back_and_nothing_acked_is_lost() {
    const HELD: usize = 300;
    let data_dir = temp_dir();
    let mut process = Process::spawn(&data_dir, None);
    let base = process.base.clone();
    let admin: Value = reqwest::Client::new()
        .post(format!("{base}/api/login"))
        .json(&json!({"username": "admin", "password": common::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin = admin["token"].as_str().unwrap().to_owned();
    let (_, agent) = common::post_json(
        &base,
        "/api/agents",
        json!({"username": "alice", "password": "agent-password"}),
        Some(&admin),
    )
    .await;
    let agent_id = agent["user"]["id"].as_str().unwrap().to_owned();
    let (status, _) = common::request_json(
        &base,
        reqwest::Method::PATCH,
        &format!("/api/agents/{agent_id}"),
        json!({"capacity": 1000}),
        &admin,
    )
    .await;
    assert_eq!(status, 200);
    let (_, agent_session) = common::post_json(
        &base,
        "/api/login",
        json!({"username": "alice", "password": "agent-password"}),
        None,
    )
    .await;
    let agent_token = agent_session["token"].as_str().unwrap().to_owned();
    let agent = Client::connect(&base, json!({"token": agent_token}))
        .await
        .unwrap();
    agent
        .call("login", json!({"userId": agent_id}))
        .await
        .unwrap();

    let visitors = visitors(&base, HELD).await;
    let clients = connect_all(&base, &visitors).await;
    let (acks, _) = all_at_once(&clients, "login", |i| json!({"userId": visitors[i].1})).await;
    assert_eq!(refusals(&acks), HashMap::new());
    let (sent, _) = all_at_once(
        &clients,
        "private_message",
        |i| json!({"content": format!("before {i}"), "clientMsgId": format!("b-{i}")}),
    )
    .await;
    assert_eq!(refusals(&sent), HashMap::new());
    let acked: Vec<String> = sent
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();

    process.kill_9();
    drop(clients);
    drop(agent);
    let restarted_at = Instant::now();
    let process = Process::spawn(&data_dir, None);
    let base = process.base.clone();
    // Everyone comes back at once (the port changed: a proxy would hide that from a browser).
    let deadline = Instant::now() + Duration::from_secs(60);
    let back: Vec<Option<Client>> = join_all(
        visitors
            .iter()
            .map(|(token, id)| come_back(&base, token, id, deadline)),
    )
    .await;
    let took = restarted_at.elapsed();
    let missing = back.iter().filter(|c| c.is_none()).count();
    println!("{HELD} clients back {took:?} after the restart; {missing} missing");
    assert_eq!(missing, 0, "every client comes back");
    // Nothing acknowledged before the kill is lost.
    let mut stored = Vec::new();
    for client in back.iter().flatten() {
        let history = client
            .call("history", json!({"afterSeq": 0}))
            .await
            .unwrap();
        assert_eq!(history["ok"], true, "{history}");
        for m in history["messages"].as_array().unwrap() {
            stored.push(m["id"].as_str().unwrap().to_owned());
        }
    }
    stored.sort();
    let mut acked = acked;
    acked.sort();
    assert_eq!(
        stored, acked,
        "every acknowledged message survived the kill -9"
    );
    drop(process);
}

/// The writer is held up (SQLite's write lock taken by someone else) while one customer's first
/// messages arrive together: they are stored in one batch, which starts one conversation. Only
/// the first message's ack says it started it, the agent hears of it once, and its load counts it
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_messages_stored_in_one_batch_start_one_conversation_announced_once() {
    use sqlx::{Connection, Executor};
    let server = TestServer::start(Backend::Sqlite).await;
    let (agent_token, agent_id) = server.agent("alice").await;
    server.set_capacity(&agent_id, 2).await;
    let (mut agent, _) = server.login(&agent_token, &agent_id).await;
    let (token, id) = server.visitor().await;
    let (customer, _) = server.login(&token, &id).await;
    let (other_token, other_id) = server.visitor().await;
    let (other, _) = server.login(&other_token, &other_id).await;

    // Someone else holds the write lock: the writer's next transaction waits for it.
    let url = format!(
        "sqlite://{}",
        server.data_dir.join("kefu.db").to_str().unwrap()
    );
    let mut lock = sqlx::AnyConnection::connect(&url).await.unwrap();
    lock.execute("BEGIN IMMEDIATE").await.unwrap();
    // The other customer's first message is the batch that waits for the lock...
    let stalled = other
        .call_later("private_message", json!({"content": "first in line"}))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ... and this customer's five first messages queue behind it, to be written together.
    let sent: Vec<_> = (0..5)
        .map(|i| {
            customer
                .call_later("private_message", json!({"content": format!("m{i}")}))
                .unwrap()
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock.execute("COMMIT").await.unwrap();
    let _ = lock.close().await;
    let stalled = stalled.await.unwrap();
    assert_eq!(stalled["ok"], true, "{stalled}");
    let mut acks = Vec::new();
    for ack in sent {
        let ack = ack.await.unwrap();
        assert_eq!(ack["ok"], true, "{ack}");
        acks.push(ack);
    }
    let seqs: Vec<i64> = acks.iter().map(|a| a["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5], "one conversation, in order");
    let started: Vec<i64> = acks
        .iter()
        .filter(|a| a["started"].is_object())
        .map(|a| a["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(started, vec![1], "only the first message started it");

    // The agent hears of each conversation once.
    let mut assigned = Vec::new();
    while let Some(event) = agent.next_event(Duration::from_millis(500)).await {
        if event.name == "conversation_assigned" {
            assigned.push(event.data["customerId"].as_str().unwrap().to_owned());
        }
    }
    assigned.sort();
    let mut expected = vec![id.clone(), other_id.clone()];
    expected.sort();
    assert_eq!(assigned, expected, "each conversation announced once");

    // Two conversations fill capacity 2 exactly: a third customer waits, and one fewer lets the
    // next one in. (Counted five times, the agent would look full already.)
    let alice = server.listed_agent(&agent_id).await;
    assert_eq!(alice["openConversations"], 2, "{alice}");
    server.set_capacity(&agent_id, 3).await;
    let (third_token, third_id) = server.visitor().await;
    let (_third, outcome) = server.arrive(&third_token, &third_id).await;
    assert_eq!(outcome["queued"], false, "room for one more: {outcome}");
    assert_eq!(outcome["csId"], agent_id.as_str());
    server.stop().await;
}
