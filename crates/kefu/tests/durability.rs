//! Nothing acknowledged is ever lost: not on kill -9, not on SIGTERM, not when the database goes
//! away, not when a receiver cannot keep up.

mod common;

use std::{collections::BTreeSet, time::Duration};

use futures_util::StreamExt;

use common::{Backend, Outage, Process, TestDatabase, TestServer, WAIT};
use kefu_wire::Client;
use serde_json::{Value, json};

on_every_backend!(
    kill_9_mid_traffic_loses_no_acknowledged_message,
    sigterm_finishes_the_writes_in_flight_and_exits_0
);

struct Chat {
    agent_token: String,
    visitors: Vec<(Client, String)>,
}

async fn provision(base: &str, visitors: usize) -> Chat {
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value, token: Option<String>| {
        let mut request = http.post(format!("{base}{path}")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let admin = post(
        "/api/login",
        json!({"username": "admin", "password": common::ADMIN_PASSWORD}),
        None,
    )
    .await;
    let admin = admin["token"].as_str().unwrap().to_owned();
    post(
        "/api/agents",
        json!({"username": "alice", "password": "agent-password"}),
        Some(admin),
    )
    .await;
    let agent = post(
        "/api/login",
        json!({"username": "alice", "password": "agent-password"}),
        None,
    )
    .await;
    let agent_token = agent["token"].as_str().unwrap().to_owned();
    let agent_id = agent["user"]["id"].as_str().unwrap().to_owned();
    let agent_client = Client::connect(base, json!({"token": agent_token}))
        .await
        .unwrap();
    agent_client
        .call("login", json!({"userId": agent_id}))
        .await
        .unwrap();
    let mut clients = Vec::new();
    for _ in 0..visitors {
        let visitor = post("/api/visitors", json!({}), None).await;
        let id = visitor["user"]["id"].as_str().unwrap().to_owned();
        let client = Client::connect(base, json!({"token": visitor["token"]}))
            .await
            .unwrap();
        client.call("login", json!({"userId": id})).await.unwrap();
        let first = client
            .call("private_message", json!({"content": "hello"}))
            .await
            .unwrap();
        assert_eq!(first["started"]["csId"], agent_id.as_str(), "{first}");
        clients.push((client, id));
    }
    agent_client.close();
    Chat {
        agent_token,
        visitors: clients,
    }
}

/// Sends from every visitor, `window` messages in flight each, until stopped; returns the ids of
/// the acknowledged messages.
async fn traffic(
    chat: &Chat,
    window: usize,
    stop: tokio::sync::watch::Receiver<bool>,
) -> BTreeSet<String> {
    let senders = chat.visitors.iter().map(|(client, _)| {
        let stop = stop.clone();
        async move {
            let mut acked = BTreeSet::new();
            let mut n = 0;
            while !*stop.borrow() {
                let batch: Vec<_> = (0..window)
                    .filter_map(|_| {
                        n += 1;
                        client
                            .call_later("private_message", json!({"content": format!("m{n}")}))
                            .ok()
                    })
                    .collect();
                for ack in batch {
                    match tokio::time::timeout(Duration::from_secs(5), ack).await {
                        Ok(Ok(ack)) if ack["ok"] == true => {
                            acked.insert(ack["id"].as_str().unwrap().to_owned());
                        }
                        _ => return acked,
                    }
                }
            }
            acked
        }
    });
    futures_util::future::join_all(senders)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Every message of each visitor's conversation, read through the agent's `history`.
async fn stored_messages(base: &str, chat: &Chat) -> Vec<Vec<Value>> {
    let agent = Client::connect(base, json!({"token": chat.agent_token}))
        .await
        .unwrap();
    let mut all = Vec::new();
    for (_, visitor) in &chat.visitors {
        let mut messages = Vec::new();
        loop {
            let after = messages
                .last()
                .map_or(0, |m: &Value| m["seq"].as_i64().unwrap());
            let page = agent
                .call(
                    "history",
                    json!({"peerId": visitor, "afterSeq": after, "limit": 100}),
                )
                .await
                .unwrap();
            assert_eq!(page["ok"], true, "{page}");
            messages.extend(page["messages"].as_array().unwrap().iter().cloned());
            if page["hasMore"] != true {
                break;
            }
        }
        all.push(messages);
    }
    all
}

fn assert_gapless(conversations: &[Vec<Value>]) {
    for messages in conversations {
        let seqs: Vec<i64> = messages
            .iter()
            .map(|m| m["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(
            seqs,
            (1..=seqs.len() as i64).collect::<Vec<_>>(),
            "seq numbers have no gaps"
        );
    }
}

/// Restarts kefu on the same storage and checks that every acknowledged message is there, with
/// gapless `seq` numbers; then drops the database.
async fn assert_every_acked_message_survives_a_restart(
    data_dir: &std::path::Path,
    db: &TestDatabase,
    chat: &Chat,
    acked: &BTreeSet<String>,
) {
    let restarted = Process::spawn(data_dir, db.url.as_deref());
    let stored = stored_messages(&restarted.base, chat).await;
    let stored_ids: BTreeSet<String> = stored
        .iter()
        .flatten()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    let lost: Vec<_> = acked.difference(&stored_ids).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged messages lost: {lost:?}",
        lost.len()
    );
    assert_gapless(&stored);
    drop(restarted);
    db.drop_now().await;
}

async fn kill_9_mid_traffic_loses_no_acknowledged_message(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let data_dir = common::temp_dir();
    let mut process = Process::spawn(&data_dir, db.url.as_deref());
    let chat = provision(&process.base, 4).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let traffic = traffic(&chat, 16, stopped);
    let killer = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        process.kill_9();
        stop.send_replace(true);
    };
    let (acked, ()) = tokio::join!(traffic, killer);
    assert!(
        acked.len() > 50,
        "traffic was flowing when the server died ({} acked)",
        acked.len()
    );

    assert_every_acked_message_survives_a_restart(&data_dir, &db, &chat, &acked).await;
}

async fn sigterm_finishes_the_writes_in_flight_and_exits_0(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let data_dir = common::temp_dir();
    let mut process = Process::spawn(&data_dir, db.url.as_deref());
    let chat = provision(&process.base, 3).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let traffic = traffic(&chat, 32, stopped);
    let terminate = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let code = tokio::task::block_in_place(|| process.terminate());
        stop.send_replace(true);
        code
    };
    let (acked, code) = tokio::join!(traffic, terminate);
    assert_eq!(code, Some(0), "a graceful stop exits 0");
    assert!(!acked.is_empty());

    assert_every_acked_message_survives_a_restart(&data_dir, &db, &chat, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_answers_unavailable_and_recovers() {
    if Backend::Postgres.enabled() {
        database_outage(Backend::Postgres, "127.0.0.1:5432").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_outage_answers_unavailable_and_recovers() {
    if Backend::MySql.enabled() {
        database_outage(Backend::MySql, "127.0.0.1:3306").await;
    }
}

async fn database_outage(backend: Backend, target: &'static str) {
    let outage = Outage::relay_to(target).await;
    let port = outage.port;
    let server = TestServer::start_with(backend, |settings| {
        let url = settings.database_url.take().unwrap();
        settings.database_url = Some(url.replace(target, &format!("127.0.0.1:{port}")));
        settings.message_rate_limit = 0;
    })
    .await;
    let (agent_token, agent_id) = server.agent("alice").await;
    let (mut agent, _) = server.login(&agent_token, &agent_id).await;
    let (visitor_token, visitor_id) = server.visitor().await;
    let (visitor, _) = server.login(&visitor_token, &visitor_id).await;
    let before = visitor
        .call("private_message", json!({"content": "before"}))
        .await
        .unwrap();
    assert_eq!(before["ok"], true);
    agent.expect("new_private_message", WAIT).await.unwrap();

    outage.cut();
    let (status, _) = server.get("/readyz").await;
    assert_eq!(status, 503, "not ready while the database is away");
    for i in 0..3 {
        let ack = visitor
            .call("private_message", json!({"content": format!("during {i}")}))
            .await
            .unwrap();
        assert_eq!(ack["ok"], false, "never a false ack: {ack}");
        assert_eq!(ack["error"]["code"], "unavailable", "{ack}");
    }
    let silent = agent.next_event(Duration::from_millis(300)).await;
    assert!(
        silent.is_none_or(|e| e.name != "new_private_message"),
        "nothing unstored is delivered"
    );

    outage.restore();
    let mut recovered = None;
    for _ in 0..50 {
        let ack = visitor
            .call("private_message", json!({"content": "after"}))
            .await
            .unwrap();
        if ack["ok"] == true {
            recovered = Some(ack);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = recovered.expect("the server recovers by itself when the database returns");
    assert_eq!(after["seq"], 2, "the refused messages were not stored");
    assert_eq!(
        agent.expect("new_private_message", WAIT).await.unwrap()["content"],
        "after"
    );
    assert_eq!(server.get("/readyz").await.0, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_cannot_keep_up_is_disconnected_and_resyncs() {
    let server = TestServer::start_with(Backend::Sqlite, |s| {
        s.message_rate_limit = 0;
        s.socket_buffer_packets = 64;
        s.ping_interval_ms = 500;
        s.ping_timeout_ms = 500;
    })
    .await;
    let (agent_token, agent_id) = server.agent("alice").await;
    let slow = Client::connect_with(
        &server.base,
        json!({"token": agent_token}),
        kefu_wire::Options {
            recv_buffer: Some(4096),
        },
    )
    .await
    .unwrap();
    slow.call("login", json!({"userId": agent_id}))
        .await
        .unwrap();
    let (visitor_token, visitor_id) = server.visitor().await;
    let (visitor, _) = server.login(&visitor_token, &visitor_id).await;
    slow.set_reading(false);

    let content = "x".repeat(4000);
    let mut acked = 0;
    for _ in 0..100 {
        let acks: Vec<_> = (0..50)
            .map(|_| {
                visitor
                    .call_later("private_message", json!({"content": content}))
                    .unwrap()
            })
            .collect();
        for ack in acks {
            assert_eq!(
                ack.await.unwrap()["ok"],
                true,
                "the sender is not held back by a slow receiver"
            );
            acked += 1;
        }
        if slow.is_closed() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    slow.set_reading(true);
    tokio::time::timeout(Duration::from_secs(10), async {
        while !slow.is_closed() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the server disconnects the receiver that does not keep up");

    // It comes back and finds everything.
    let agent = server.connect(&agent_token).await;
    let mut seen = 0;
    let mut after = 0;
    loop {
        let page = agent
            .call("history", json!({"peerId": visitor_id, "afterSeq": after}))
            .await
            .unwrap();
        let messages = page["messages"].as_array().unwrap();
        seen += messages.len();
        after = messages
            .last()
            .map_or(after, |m| m["seq"].as_i64().unwrap());
        if page["hasMore"] != true {
            break;
        }
    }
    assert_eq!(seen, acked);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_the_queue_drains_exits_at_once_and_the_rest_drains_after_the_restart() {
    const WAITING: usize = 1500;
    let data_dir = common::temp_dir();
    let mut process = Process::spawn(&data_dir, None);
    let base = process.base.clone();
    let http = reqwest::Client::new();
    let post = |path: &'static str, body: Value, token: Option<String>| {
        let request = http.post(format!("{base}{path}")).json(&body);
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    // Customers wait before any agent is online.
    let waiting = futures_util::stream::iter(0..WAITING)
        .map(|_| async {
            let visitor = post("/api/visitors", json!({}), None).await;
            let client = Client::connect(&base, json!({"token": visitor["token"]}))
                .await
                .unwrap();
            client
                .call("login", json!({"userId": visitor["user"]["id"]}))
                .await
                .unwrap();
            let first = client
                .call("private_message", json!({"content": "anyone?"}))
                .await
                .unwrap();
            assert_eq!(first["started"]["queued"], true, "{first}");
            client.close();
        })
        .buffer_unordered(8);
    waiting.collect::<Vec<()>>().await;
    let admin = post(
        "/api/login",
        json!({"username": "admin", "password": common::ADMIN_PASSWORD}),
        None,
    )
    .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let agent = post(
        "/api/agents",
        json!({"username": "alice", "password": "agent-password"}),
        Some(admin.clone()),
    )
    .await;
    let agent_id = agent["user"]["id"].as_str().unwrap().to_owned();
    let patched = http
        .patch(format!("{base}/api/agents/{agent_id}"))
        .bearer_auth(&admin)
        .json(&json!({"capacity": 10_000}))
        .send()
        .await
        .unwrap();
    assert!(patched.status().is_success());
    let login = json!({"username": "alice", "password": "agent-password"});
    let agent_token = post("/api/login", login.clone(), None).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // The agent's sign-in starts the drain; the server is told to stop while it runs.
    let agent = Client::connect(&base, json!({"token": agent_token}))
        .await
        .unwrap();
    let _draining = agent
        .call_later("login", json!({"userId": agent_id}))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let code = tokio::task::block_in_place(|| process.terminate());
    let took = started.elapsed();
    eprintln!("stopped {took:?} after SIGTERM");
    assert_eq!(code, Some(0));
    assert!(
        took < Duration::from_secs(5),
        "the stop waited {took:?} for the queue to drain"
    );

    // Nothing of the queue was lost: after a restart the agent's sign-in takes the rest.
    let process = Process::spawn(&data_dir, None);
    let base = process.base.clone();
    let agent_token = http
        .post(format!("{base}/api/login"))
        .json(&login)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let agent = Client::connect(&base, json!({"token": agent_token}))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    agent
        .call("login", json!({"userId": agent_id}))
        .await
        .unwrap();
    loop {
        let members = agent.call("all_member", json!({})).await.unwrap();
        let count = members["users"].as_array().map_or(0, Vec::len);
        if count == WAITING {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{count} of {WAITING} assigned after the restart"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
