//! Several kefu nodes on one database and one Redis (a private `redis-server` per test): chat,
//! typing, read receipts and presence across nodes; a node killed with kill -9 mid-traffic; Redis
//! stopped for 10 s mid-traffic and started again; the offline path's timers firing once in the
//! cluster, and on another node when the one running them dies.

mod common;

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::{Backend, PrivateRedis, Process, TestDatabase, WAIT, get_json, post_json};
use kefu_wire::{Client, Event};
use serde_json::{Value, json};

const JWT_SECRET: &str = "a-secret-every-node-of-the-test-cluster-shares";

struct TestCluster {
    redis: PrivateRedis,
    db: TestDatabase,
    nodes: Vec<Process>,
    dirs: Vec<std::path::PathBuf>,
}

impl TestCluster {
    async fn start(backend: Backend, nodes: usize) -> Self {
        Self::start_with(backend, nodes, &[]).await
    }

    /// With more `KEFU_*` settings, the same on every node.
    async fn start_with(backend: Backend, nodes: usize, settings: &[(&str, String)]) -> Self {
        let redis = PrivateRedis::start().await;
        let db = TestDatabase::create(backend).await;
        let mut cluster = Self {
            redis,
            db,
            nodes: Vec::new(),
            dirs: Vec::new(),
        };
        for i in 0..nodes {
            let dir = common::temp_dir();
            let mut env = vec![
                ("KEFU_REDIS_URL", cluster.redis.url()),
                ("KEFU_NODE_ID", format!("node-{i}")),
                ("KEFU_JWT_SECRET", JWT_SECRET.to_owned()),
                ("KEFU_LOG", "info".to_owned()),
            ];
            env.extend(settings.iter().cloned());
            let node = Process::spawn_with(&dir, cluster.db.url.as_deref(), &env);
            cluster.nodes.push(node);
            cluster.dirs.push(dir);
        }
        for node in &cluster.nodes {
            wait_ready(&node.base, true).await;
        }
        cluster
    }

    fn base(&self, node: usize) -> &str {
        &self.nodes[node].base
    }

    async fn stop(mut self) {
        for node in &mut self.nodes {
            if node.child.try_wait().unwrap().is_none() {
                node.terminate();
            }
        }
        self.db.drop_now().await;
        for dir in &self.dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
        self.redis.stop();
    }
}

/// Polls `/readyz` until it says `ready` (or not), within 15 s; returns the last body.
async fn wait_ready(base: &str, ready: bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = get_json(base, "/readyz", None).await;
        if (status == 200) == ready {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{base}/readyz still answers {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn admin_token(base: &str) -> String {
    let (status, body) = post_json(
        base,
        "/api/login",
        json!({"username": "admin", "password": common::ADMIN_PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

/// Creates the agent through one node; (token, id).
async fn agent(base: &str, username: &str) -> (String, String) {
    let admin = admin_token(base).await;
    let credentials = json!({"username": username, "password": "agent-password"});
    let (status, body) = post_json(base, "/api/agents", credentials.clone(), Some(&admin)).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = post_json(base, "/api/login", credentials, None).await;
    assert_eq!(status, 200, "{body}");
    (
        body["token"].as_str().unwrap().to_owned(),
        body["user"]["id"].as_str().unwrap().to_owned(),
    )
}

async fn visitor(base: &str) -> (String, String) {
    let (status, body) = post_json(base, "/api/visitors", json!({}), None).await;
    assert_eq!(status, 201, "{body}");
    (
        body["token"].as_str().unwrap().to_owned(),
        body["user"]["id"].as_str().unwrap().to_owned(),
    )
}

async fn login(base: &str, token: &str, user: &str) -> (Client, Value) {
    let client = Client::connect(base, json!({"token": token}))
        .await
        .unwrap_or_else(|e| panic!("connecting to {base}: {e}"));
    let ack = client.call("login", json!({"userId": user})).await.unwrap();
    assert_eq!(ack["ok"], true, "{ack}");
    (client, ack)
}

/// Logs in and writes `content`, the first message, which starts the conversation: the client,
/// and the message's ack.
async fn arrive(base: &str, token: &str, user: &str, content: &str) -> (Client, Value) {
    let (client, _) = login(base, token, user).await;
    let sent = client
        .call("private_message", json!({"content": content}))
        .await
        .unwrap();
    assert_eq!(sent["ok"], true, "{sent}");
    assert!(sent["started"].is_object(), "{sent}");
    (client, sent)
}

/// Waits for the event whose data satisfies `matches`, skipping the others.
async fn expect_where(client: &mut Client, name: &str, matches: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match client.next_event(left).await {
            Some(Event { name: n, data }) if n == name && matches(&data) => return data,
            Some(_) => continue,
            None => panic!("no matching {name} event within {WAIT:?}"),
        }
    }
}

/// The cluster tests need a database that several processes share.
macro_rules! on_every_server_backend {
    ($($story:ident),* $(,)?) => {
        mod mysql { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $story() { if $crate::common::Backend::MySql.enabled() { super::$story($crate::common::Backend::MySql).await } } )* }
        mod postgres { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $story() { if $crate::common::Backend::Postgres.enabled() { super::$story($crate::common::Backend::Postgres).await } } )* }
    };
}

on_every_server_backend!(
    three_nodes_carry_chat_typing_reads_and_presence,
    on_three_nodes_abandonment_and_idle_resolution_fire_once,
);

/// A visitor on node 0, its agent on node 2 and the agent's second tab on node 1.
async fn three_nodes_carry_chat_typing_reads_and_presence(backend: Backend) {
    let cluster = TestCluster::start(backend, 3).await;
    let (agent_token, agent_id) = agent(cluster.base(0), "alice").await;
    let (mut agent_c, _) = login(cluster.base(2), &agent_token, &agent_id).await;
    let (mut agent_b, _) = login(cluster.base(1), &agent_token, &agent_id).await;

    // Routing on node 0 sees the agent online on the other nodes.
    let (visitor_token, visitor_id) = visitor(cluster.base(0)).await;
    let (mut customer, ack) = login(cluster.base(0), &visitor_token, &visitor_id).await;
    assert_eq!(ack["csId"], Value::Null, "a login routes nothing: {ack}");

    // Customer → agent: its first message starts the conversation, routed to the agent online on
    // the other nodes, and reaches both tabs.
    let first = json!({"content": "hello from node 0", "clientMsgId": "c-1"});
    let sent = customer
        .call("private_message", first.clone())
        .await
        .unwrap();
    assert_eq!(sent["ok"], true, "{sent}");
    assert_eq!(
        sent["started"],
        json!({"csId": agent_id, "queued": false}),
        "{sent}"
    );
    for tab in [&mut agent_c, &mut agent_b] {
        let assigned = tab.expect("conversation_assigned", WAIT).await.unwrap();
        assert_eq!(assigned["customerId"], visitor_id.as_str(), "{assigned}");
        expect_where(tab, "user_online", |d| d == visitor_id.as_str()).await;
    }
    for tab in [&mut agent_c, &mut agent_b] {
        let message = expect_where(tab, "new_private_message", |d| d["id"] == sent["id"]).await;
        assert_eq!(message["content"], "hello from node 0");
        assert_eq!(message["seq"], 1);
    }
    // A retry through another node gets the stored message back, not a second one.
    let (retrying, _) = login(cluster.base(1), &visitor_token, &visitor_id).await;
    let retried = retrying.call("private_message", first).await.unwrap();
    assert_eq!(retried["id"], sent["id"], "{retried}");
    assert_eq!(retried["seq"], 1, "{retried}");
    retrying.close();

    // Agent → customer, and the agent's other tab sees its own message.
    let reply = agent_c
        .call(
            "private_message",
            json!({"receiverId": visitor_id, "content": "hi from node 2"}),
        )
        .await
        .unwrap();
    assert_eq!(reply["ok"], true, "{reply}");
    let message = expect_where(&mut customer, "new_private_message", |d| {
        d["id"] == reply["id"]
    })
    .await;
    assert_eq!(message["content"], "hi from node 2");
    assert_eq!(message["seq"], 2);
    expect_where(&mut agent_b, "new_private_message", |d| {
        d["id"] == reply["id"]
    })
    .await;

    // Typing and read receipts cross nodes too.
    customer.emit("typing", json!({"typing": true})).unwrap();
    for tab in [&mut agent_c, &mut agent_b] {
        let typing = expect_where(tab, "typing", |d| d["userId"] == visitor_id.as_str()).await;
        assert_eq!(typing["typing"], true);
    }
    let read = agent_c
        .call("read", json!({"peerId": visitor_id, "upToId": sent["id"]}))
        .await
        .unwrap();
    assert_eq!(read["ok"], true, "{read}");
    for client in [&mut customer, &mut agent_b] {
        let receipt = expect_where(client, "messages_read", |d| d["upToId"] == sent["id"]).await;
        assert_eq!(receipt["readerId"], agent_id.as_str());
    }

    // Every node is listed, with the connections it holds.
    let admin = admin_token(cluster.base(1)).await;
    let (status, nodes) = get_json(cluster.base(1), "/api/admin/nodes", Some(&admin)).await;
    assert_eq!(status, 200, "{nodes}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut nodes = nodes;
    loop {
        let ids: BTreeSet<&str> = nodes["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|n| n["id"].as_str())
            .collect();
        let connections: u64 = nodes["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|n| n["connections"].as_u64())
            .sum();
        if ids == BTreeSet::from(["node-0", "node-1", "node-2"]) && connections == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "{nodes}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        nodes = get_json(cluster.base(1), "/api/admin/nodes", Some(&admin))
            .await
            .1;
    }

    // The agent is online for the whole cluster while one of its tabs is; the customer leaving
    // node 0 goes offline for the agent's tabs elsewhere.
    agent_b.close();
    let (_, agents) = get_json(cluster.base(0), "/api/agents", Some(&admin)).await;
    let alice = agents["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == agent_id.as_str())
        .unwrap();
    assert_eq!(alice["online"], true, "{agents}");
    customer.close();
    expect_where(&mut agent_c, "user_offline", |d| d == visitor_id.as_str()).await;

    // Disabling the agent through node 0 closes its connection on node 2 at once.
    let (status, body) = common::request_json(
        cluster.base(0),
        reqwest::Method::PATCH,
        &format!("/api/agents/{agent_id}"),
        json!({"disabled": true}),
        &admin,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + WAIT;
    while !agent_c.is_closed() {
        assert!(
            Instant::now() < deadline,
            "the agent's socket on node 2 is still open"
        );
        let _ = agent_c.next_event(Duration::from_millis(100)).await;
    }
    // Node 1 checked the agent's token a moment ago (and keeps what it read): told through Redis,
    // it refuses the token well before the 5 s it would trust its copy, over HTTP and for a new
    // connection. (Moments when the machine is idle; 3.5 s leaves room for a busy one.)
    let deadline = Instant::now() + Duration::from_millis(3500);
    while get_json(cluster.base(1), "/api/me", Some(&agent_token))
        .await
        .0
        != 401
    {
        assert!(
            Instant::now() < deadline,
            "node 1 still takes the disabled agent's token"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        Client::connect(cluster.base(1), json!({"token": agent_token}))
            .await
            .is_err(),
        "node 1 still lets the disabled agent connect"
    );
    cluster.stop().await;
}

/// Records every event a client receives until told to stop; returns the client and the events.
fn record(
    mut client: Client,
) -> (
    Arc<Mutex<Vec<Event>>>,
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<Client>,
) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let kept = events.clone();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stopped.changed() => return client,
                event = client.next_event(Duration::from_secs(3600)) => match event {
                    Some(event) => kept.lock().unwrap().push(event),
                    None => return client,
                },
            }
        }
    });
    (events, stop, task)
}

fn ids_of(events: &[Event], name: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.name == name)
        .filter_map(|e| e.data["id"].as_str().map(str::to_owned))
        .collect()
}

/// A visitor that sends until stopped, moving to the next node when its node goes away and
/// retrying the message in flight with the same `clientMsgId`; returns the acknowledged ids.
async fn sender(
    bases: Vec<String>,
    token: String,
    user: String,
    stop: tokio::sync::watch::Receiver<bool>,
) -> BTreeSet<String> {
    let mut acked = BTreeSet::new();
    let mut node = 0;
    let mut n = 0;
    let mut client = login(&bases[0], &token, &user).await.0;
    while !*stop.borrow() {
        n += 1;
        let payload =
            json!({"content": format!("{user} m{n}"), "clientMsgId": format!("{user}-{n}")});
        loop {
            let ack = tokio::time::timeout(
                Duration::from_secs(3),
                client.call("private_message", payload.clone()),
            )
            .await;
            match ack {
                Ok(Ok(ack)) if ack["ok"] == true => {
                    acked.insert(ack["id"].as_str().unwrap().to_owned());
                    break;
                }
                // `unavailable` and the like: try again.
                Ok(Ok(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
                // The node is gone: reconnect to the next one, as the reference client does.
                _ => {
                    node = (node + 1) % bases.len();
                    loop {
                        match Client::connect(&bases[node], json!({"token": token})).await {
                            Ok(c) if c.call("login", json!({"userId": user})).await.is_ok() => {
                                client = c;
                                break;
                            }
                            _ => {
                                node = (node + 1) % bases.len();
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        }
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    acked
}

/// Every message of the customer's conversation, through `history {afterSeq}` on `base`.
async fn history_ids(base: &str, token: &str, agent: &str, customer: &str) -> Vec<String> {
    stored_places(base, token, agent, customer)
        .await
        .into_iter()
        .map(|(id, _, _)| id)
        .collect()
}

/// Every message of the customer's conversation as (id, conversation, seq).
async fn stored_places(
    base: &str,
    token: &str,
    agent: &str,
    customer: &str,
) -> Vec<(String, String, i64)> {
    let (client, _) = login(base, token, agent).await;
    let mut ids = Vec::new();
    let mut after = 0;
    loop {
        let page = client
            .call(
                "history",
                json!({"peerId": customer, "afterSeq": after, "limit": 100}),
            )
            .await
            .unwrap();
        assert_eq!(page["ok"], true, "{page}");
        let messages = page["messages"].as_array().unwrap();
        for message in messages {
            after = message["seq"].as_i64().unwrap();
            ids.push((
                message["id"].as_str().unwrap().to_owned(),
                message["conversationId"].as_str().unwrap().to_owned(),
                after,
            ));
        }
        if page["hasMore"] != true {
            return ids;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_traffic_loses_nothing_and_its_users_go_offline() {
    if !Backend::Postgres.enabled() {
        return;
    }
    let cluster = TestCluster::start(Backend::Postgres, 3).await;
    let bases: Vec<String> = (0..3).map(|i| cluster.base(i).to_owned()).collect();
    let (agent_token, agent_id) = agent(&bases[2], "alice").await;
    let (agent_c, _) = login(&bases[2], &agent_token, &agent_id).await;
    // The agent's second tab is on the node that dies.
    let (agent_a, _) = login(&bases[0], &agent_token, &agent_id).await;
    let (live_c, stop_c, task_c) = record(agent_c);
    let (live_a, stop_a, task_a) = record(agent_a);

    let mut visitors = Vec::new();
    for _ in 0..4 {
        visitors.push(visitor(&bases[0]).await);
    }
    // One more visitor on the doomed node, which will not come back.
    let (gone_token, gone_id) = visitor(&bases[0]).await;
    let (gone, _) = arrive(&bases[0], &gone_token, &gone_id, "hello").await;

    let (stop_traffic, traffic_stopped) = tokio::sync::watch::channel(false);
    let senders: Vec<_> = visitors
        .iter()
        .map(|(token, id)| {
            tokio::spawn(sender(
                bases.clone(),
                token.clone(),
                id.clone(),
                traffic_stopped.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut cluster = cluster;
    cluster.nodes[0].kill_9();
    let killed_at = Instant::now();
    // Its users go offline for the others within the heartbeat timeout, unless they reconnect.
    let offline_after = loop {
        let seen = live_c
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.name == "user_offline" && e.data == gone_id.as_str());
        if seen {
            break killed_at.elapsed();
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(8),
            "the visitor of the dead node is still online for its agent"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("a dead node's user went offline after {offline_after:?}");
    assert!(
        offline_after < Duration::from_millis(6000),
        "{offline_after:?}"
    );
    drop(gone);

    // The agent's tab on the dead node reconnects elsewhere and resyncs.
    let _ = stop_a.send(true);
    let before_kill = ids_of(&live_a.lock().unwrap(), "new_private_message");
    let _ = task_a.await;
    let (agent_b, _) = login(&bases[1], &agent_token, &agent_id).await;
    let (live_b, stop_b, task_b) = record(agent_b);

    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop_traffic.send(true);
    let mut acked = BTreeSet::new();
    for sender in senders {
        acked.extend(sender.await.unwrap());
    }
    assert!(
        acked.len() > 40,
        "only {} messages acknowledged",
        acked.len()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop_c.send(true);
    let _ = stop_b.send(true);
    let _ = task_c.await;
    let _ = task_b.await;

    // The surviving tab got every acknowledged message live, except what the dead node had
    // acknowledged but not yet handed to Redis when it died. Such a message leaves a gap in the
    // conversation's `seq` that the next live message reveals, and a client resyncs on a gap
    // (docs/protocol.md): each one must be revealed so, and be in the history.
    let live_on_c: Vec<Value> = live_c
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.name == "new_private_message")
        .map(|e| e.data.clone())
        .collect();
    let on_c: BTreeSet<String> = live_on_c
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    let mut highest_seen = std::collections::HashMap::<String, i64>::new();
    for message in &live_on_c {
        let seen = highest_seen
            .entry(message["conversationId"].as_str().unwrap().to_owned())
            .or_default();
        *seen = (*seen).max(message["seq"].as_i64().unwrap());
    }
    let mut stored = std::collections::HashMap::new();
    for (_, customer) in &visitors {
        for (id, conversation, seq) in
            stored_places(&bases[1], &agent_token, &agent_id, customer).await
        {
            stored.insert(id, (conversation, seq));
        }
    }
    let missed: Vec<_> = acked.difference(&on_c).collect();
    println!(
        "the surviving tab missed {} of {} live, each then found by its gap",
        missed.len(),
        acked.len()
    );
    assert!(missed.len() <= 4, "too many missed live: {missed:?}");
    for id in missed {
        let (conversation, seq) = stored
            .get(id)
            .unwrap_or_else(|| panic!("acknowledged message {id} is not stored"));
        assert!(
            highest_seen.get(conversation).is_some_and(|h| h > seq),
            "the surviving tab cannot tell that it missed {id}"
        );
    }
    // The moved tab has each one exactly once after merging what it saw live with its resync.
    let mut moved: BTreeSet<String> = before_kill.into_iter().collect();
    moved.extend(ids_of(&live_b.lock().unwrap(), "new_private_message"));
    for (_, customer) in &visitors {
        moved.extend(history_ids(&bases[1], &agent_token, &agent_id, customer).await);
    }
    let missing: Vec<_> = acked.difference(&moved).collect();
    assert!(missing.is_empty(), "the moved tab missed {missing:?}");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_for_10_s_loses_nothing_and_the_nodes_recover() {
    if !Backend::Postgres.enabled() {
        return;
    }
    let mut cluster = TestCluster::start(Backend::Postgres, 2).await;
    let bases: Vec<String> = (0..2).map(|i| cluster.base(i).to_owned()).collect();
    let (agent_token, agent_id) = agent(&bases[1], "alice").await;
    let (agent, _) = login(&bases[1], &agent_token, &agent_id).await;
    let (live, stop_agent, agent_task) = record(agent);
    let mut visitors = Vec::new();
    for _ in 0..2 {
        visitors.push(visitor(&bases[0]).await);
    }
    let (stop_traffic, traffic_stopped) = tokio::sync::watch::channel(false);
    let senders: Vec<_> = visitors
        .iter()
        .map(|(token, id)| {
            // Node 0 only: it stays up, so every ack comes from there.
            tokio::spawn(sender(
                vec![bases[0].clone()],
                token.clone(),
                id.clone(),
                traffic_stopped.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;

    cluster.redis.stop();
    let body = wait_ready(&bases[0], false).await;
    assert_eq!(body["status"], "not ready", "{body}");
    assert!(body["reason"].as_str().unwrap().contains("redis"), "{body}");
    let delivered_before = ids_of(&live.lock().unwrap(), "new_private_message").len();
    tokio::time::sleep(Duration::from_secs(10)).await;
    cluster.redis.restart().await;
    for base in &bases {
        wait_ready(base, true).await;
    }
    // Both nodes ask their clients to resync.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !live.lock().unwrap().iter().any(|e| e.name == "resync") {
        assert!(Instant::now() < deadline, "no resync after Redis came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Live delivery across nodes works again.
    let delivered_after_outage = ids_of(&live.lock().unwrap(), "new_private_message").len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop_traffic.send(true);
    let mut acked = BTreeSet::new();
    for sender in senders {
        acked.extend(sender.await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop_agent.send(true);
    let _ = agent_task.await;
    let live_ids = ids_of(&live.lock().unwrap(), "new_private_message");
    assert!(
        live_ids.len() > delivered_after_outage,
        "nothing was delivered live after Redis came back"
    );
    assert!(
        delivered_before > 0,
        "nothing was delivered before the outage"
    );

    // Every acknowledged message is stored and reaches the agent, live or by its resync.
    let mut seen: BTreeSet<String> = live_ids.into_iter().collect();
    for (_, customer) in &visitors {
        seen.extend(history_ids(&bases[1], &agent_token, &agent_id, customer).await);
    }
    let missing: Vec<_> = acked.difference(&seen).collect();
    assert!(missing.is_empty(), "lost {missing:?}");
    assert!(acked.len() > 100, "only {} acknowledged", acked.len());

    // The outage was logged once per node, not once per message.
    for node in &cluster.nodes {
        let warnings = node.log_lines("redis");
        let warnings: Vec<_> = warnings.iter().filter(|l| l.contains("WARN")).collect();
        assert!(warnings.len() <= 3, "{warnings:#?}");
    }
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_agents_on_three_nodes_share_one_queue_without_going_over_capacity() {
    if !Backend::Postgres.enabled() {
        return;
    }
    let cluster = TestCluster::start(Backend::Postgres, 3).await;
    let bases: Vec<String> = (0..3).map(|i| cluster.base(i).to_owned()).collect();
    let admin = admin_token(&bases[0]).await;
    let mut agents = Vec::new();
    for (i, base) in bases.iter().enumerate() {
        let (token, id) = agent(base, &format!("agent{i}")).await;
        let (status, body) = common::request_json(
            base,
            reqwest::Method::PATCH,
            &format!("/api/agents/{id}"),
            json!({"capacity": 5}),
            &admin,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        agents.push((login(base, &token, &id).await.0, id));
    }
    // Routing on every node sees all three agents before the customers arrive.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, listed) = get_json(&bases[0], "/api/agents", Some(&admin)).await;
        let online = listed["agents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["online"] == true)
            .count();
        if online == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "{listed}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut visitors = Vec::new();
    for i in 0..50 {
        let base = &bases[i % 3];
        let (token, id) = visitor(base).await;
        visitors.push((base.clone(), token, id));
    }
    let arrivals = visitors
        .iter()
        .map(|(base, token, id)| arrive(base, token, id, "hello"));
    let customers: Vec<(Client, Value)> = futures_util::future::join_all(arrivals).await;

    // Each node routes first messages from what it knows, and the transaction that assigns checks
    // the agent's room: a conversation one node meant for an agent that another node filled waits,
    // and the queue gives it to whoever has room. Settled, every agent holds five and 35 wait in
    // arrival order, each told its place.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (per_agent, waiting) = loop {
        let mut per_agent = std::collections::BTreeMap::<String, usize>::new();
        let mut waiting = Vec::new();
        for (client, _) in &customers {
            let status = client.call("queue_status", json!({})).await.unwrap();
            if status["queued"] == true {
                waiting.push((
                    status["conversationId"]
                        .as_str()
                        .unwrap()
                        .parse::<i64>()
                        .unwrap(),
                    status["position"].as_i64().unwrap(),
                ));
            }
        }
        let (_, listed) = get_json(
            &bases[0],
            "/api/agents",
            Some(&admin_token(&bases[0]).await),
        )
        .await;
        for a in listed["agents"].as_array().unwrap() {
            if a["role"] == "agent" {
                per_agent.insert(
                    a["id"].as_str().unwrap().to_owned(),
                    a["openConversations"].as_u64().unwrap() as usize,
                );
            }
        }
        // Places are told from each node's last look at the queue (at most a second old).
        let mut places: Vec<i64> = waiting.iter().map(|w| w.1).collect();
        places.sort();
        let settled = per_agent.values().all(|n| *n == 5)
            && waiting.len() == 35
            && places == (1..=35).collect::<Vec<_>>();
        if settled || Instant::now() > deadline {
            break (per_agent, waiting);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        per_agent.values().copied().collect::<Vec<_>>(),
        [5, 5, 5],
        "nobody over capacity, nobody idle: {per_agent:?}"
    );
    let mut waiting = waiting;
    waiting.sort();
    assert_eq!(
        waiting.iter().map(|w| w.1).collect::<Vec<_>>(),
        (1..=35).collect::<Vec<_>>()
    );

    // Resolving on node 1 pulls the head of the queue to that agent, whichever node it is on.
    let head = waiting[0].0.to_string();
    let (agent_b, agent_b_id) = &mut agents[1];
    let members = agent_b.call("all_member", json!({})).await.unwrap();
    let mine = members["users"][0]["id"].as_str().unwrap().to_owned();
    let resolved = agent_b
        .call("resolve", json!({"peerId": mine}))
        .await
        .unwrap();
    assert_eq!(resolved["ok"], true, "{resolved}");
    let assigned = expect_where(agent_b, "conversation_assigned", |d| {
        d["conversationId"] == head.as_str()
    })
    .await;
    assert_eq!(assigned["agentId"], agent_b_id.as_str());
    cluster.stop().await;
}

/// The offline path's timers, short: a round every 100 ms; a waiting customer away 2 s is
/// abandoned; a conversation quiet 4 s while its customer is away is resolved as idle.
fn short_timers() -> Vec<(&'static str, String)> {
    vec![
        ("KEFU_TIMERS_EVERY_MS", "100".to_owned()),
        ("KEFU_QUEUE_ABANDON_AFTER", "2".to_owned()),
        ("KEFU_IDLE_RESOLVE_AFTER", "4".to_owned()),
        ("KEFU_AGENT_OFFLINE_REQUEUE_AFTER", "0".to_owned()),
    ]
}

/// A number read straight from the cluster's database.
async fn count(cluster: &TestCluster, query: &str) -> i64 {
    common::scalar(cluster.db.url.as_deref().unwrap(), query)
        .await
        .unwrap_or(0)
}

/// How many events of `kind` the conversation has.
async fn events(cluster: &TestCluster, conversation: i64, kind: &str) -> i64 {
    count(
        cluster,
        &format!(
            "SELECT COUNT(*) FROM conversation_events \
             WHERE conversation_id = {conversation} AND kind = '{kind}'"
        ),
    )
    .await
}

/// The node that holds the timers' lease now, if one does.
async fn timers_holder(cluster: &TestCluster) -> Option<usize> {
    let now = kefu::domain::now_millis();
    for i in 0..cluster.nodes.len() {
        let held = count(
            cluster,
            &format!(
                "SELECT COUNT(*) FROM leases WHERE name = 'offline-path' \
                 AND holder = 'node-{i}' AND held_until > {now}"
            ),
        )
        .await;
        if held == 1 {
            return Some(i);
        }
    }
    None
}

/// Polls `check` every 100 ms until it is true, for at most `within`.
async fn within<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A customer who arrives on `base` and waits in the queue: its client and conversation.
async fn arrive_waiting(base: &str) -> (Client, i64) {
    let (token, id) = visitor(base).await;
    arrive_waiting_as(base, &token, &id).await
}

async fn arrive_waiting_as(base: &str, token: &str, id: &str) -> (Client, i64) {
    let (client, sent) = arrive(base, token, id, "hello").await;
    assert_eq!(sent["started"]["queued"], true, "{sent}");
    (client, conversation_of(&sent))
}

fn conversation_of(sent: &Value) -> i64 {
    sent["conversationId"].as_str().unwrap().parse().unwrap()
}

/// Customers on every node: those who wait and leave are abandoned once, one who comes back on
/// another node within the grace keeps its place, an assigned customer who leaves has its
/// conversation resolved as idle once and the agent's room goes to the queue; the node that runs
/// the timers dies with kill -9 and another one runs them.
async fn on_three_nodes_abandonment_and_idle_resolution_fire_once(backend: Backend) {
    let mut cluster = TestCluster::start_with(backend, 3, &short_timers()).await;
    let bases: Vec<String> = (0..3).map(|i| cluster.base(i).to_owned()).collect();
    let admin = admin_token(&bases[0]).await;
    let (agent_token, agent_id) = agent(&bases[0], "alice").await;
    let (status, body) = common::request_json(
        &bases[0],
        reqwest::Method::PATCH,
        &format!("/api/agents/{agent_id}"),
        json!({"capacity": 1}),
        &admin,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (mut console, _) = login(&bases[2], &agent_token, &agent_id).await;
    for base in &bases {
        within(WAIT, "every node sees Alice online", || async {
            let (_, listed) = get_json(base, "/api/agents", Some(&admin)).await;
            listed["agents"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["id"] == agent_id.as_str() && a["online"] == true)
        })
        .await;
    }

    // Alice talks with one customer (node 0); four wait behind, one on each node and one more on
    // node 2.
    let (talker_token, talker) = visitor(&bases[0]).await;
    let (talking, sent) = arrive(&bases[0], &talker_token, &talker, "hello").await;
    assert_eq!(sent["started"]["csId"], agent_id.as_str(), "{sent}");
    let talked = conversation_of(&sent);
    let (first_token, first) = visitor(&bases[1]).await;
    let (first_leaver, first_left) = arrive_waiting_as(&bases[1], &first_token, &first).await;
    let (second_token, second) = visitor(&bases[2]).await;
    let (second_leaver, second_left) = arrive_waiting_as(&bases[2], &second_token, &second).await;
    let (returner_token, returner) = visitor(&bases[0]).await;
    let (returning, sent) = arrive(&bases[0], &returner_token, &returner, "hello").await;
    assert_eq!(sent["started"]["queued"], true, "{sent}");
    let returned = conversation_of(&sent);
    let (staying, stayed) = arrive_waiting(&bases[2]).await;

    // All but one waiting customer leave together; one comes back on node 1 within the grace.
    for client in [talking, first_leaver, second_leaver, returning] {
        client.close();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (mut back, login_ack) = login(&bases[1], &returner_token, &returner).await;
    assert_eq!(login_ack["queued"], true, "{login_ack}");

    within(WAIT * 2, "the two who left are abandoned", || async {
        events(&cluster, first_left, "abandoned").await == 1
            && events(&cluster, second_left, "abandoned").await == 1
    })
    .await;
    // The conversation quiet while its customer was away is resolved, with a word why, and
    // Alice's room goes to the head of the queue: the one who came back, ahead of the one who
    // stayed.
    let resolved = expect_where(&mut console, "conversation_resolved", |d| {
        d["customerId"] == talker.as_str()
    })
    .await;
    assert_eq!(resolved["conversationId"], talked.to_string(), "{resolved}");
    let assigned = expect_where(&mut back, "conversation_assigned", |_| true).await;
    assert_eq!(assigned["agentId"], agent_id.as_str(), "{assigned}");
    assert_eq!(
        assigned["conversationId"],
        returned.to_string(),
        "{assigned}"
    );
    within(WAIT, "the one who stayed waits first in line", || async {
        let status = staying.call("queue_status", json!({})).await.unwrap();
        status["queued"] == true && status["position"] == 1
    })
    .await;

    // Many rounds later, on three nodes, each happened once.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(events(&cluster, first_left, "abandoned").await, 1);
    assert_eq!(events(&cluster, second_left, "abandoned").await, 1);
    assert_eq!(events(&cluster, returned, "abandoned").await, 0);
    assert_eq!(events(&cluster, stayed, "abandoned").await, 0);
    assert_eq!(events(&cluster, talked, "resolved").await, 1);
    assert_eq!(events(&cluster, talked, "abandoned").await, 0);
    let system_messages = count(
        &cluster,
        &format!(
            "SELECT COUNT(*) FROM messages WHERE conversation_id = {talked} AND kind = 'system'"
        ),
    )
    .await;
    assert_eq!(system_messages, 1, "the idle resolution's word, once");
    let idle = count(
        &cluster,
        &format!("SELECT COUNT(*) FROM conversations WHERE id = {talked} AND ended_as = 'idle'"),
    )
    .await;
    assert_eq!(idle, 1, "resolved as idle");
    let (status, report) = get_json(&bases[1], "/api/admin/reports?days=1", Some(&admin)).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["abandoned"], 2, "{report}");

    // Those who were abandoned write again through the node they had used, which did not
    // necessarily end their conversation: each starts a new one.
    let mut rewritten = Vec::new();
    for (base, token, id, left) in [
        (&bases[1], &first_token, &first, first_left),
        (&bases[2], &second_token, &second, second_left),
    ] {
        let (client, login_ack) = login(base, token, id).await;
        assert_eq!(login_ack["ended"], true, "{login_ack}");
        let sent = client
            .call("private_message", json!({"content": "still there?"}))
            .await
            .unwrap();
        assert_eq!(sent["ok"], true, "{sent}");
        assert!(sent["started"].is_object(), "{sent}");
        assert_ne!(conversation_of(&sent), left, "{sent}");
        rewritten.push(client);
    }

    // The node running the timers dies; another one takes the lease and the timers go on.
    let dead = timers_holder(&cluster)
        .await
        .expect("a node holds the timers' lease");
    // A customer waiting on that node is cut off with it.
    let (_stranded, stranded_left) = arrive_waiting(&bases[dead]).await;
    cluster.nodes[dead].kill_9();
    let killed_at = Instant::now();
    let alive = (dead + 1) % 3;
    let (late_leaver, late_left) = arrive_waiting(&bases[alive]).await;
    late_leaver.close();
    within(
        Duration::from_secs(5),
        "another node holds the timers' lease",
        || async { timers_holder(&cluster).await.is_some_and(|n| n != dead) },
    )
    .await;
    println!(
        "node-{dead} ran the timers; another took over {:?} after it was killed",
        killed_at.elapsed()
    );
    within(
        Duration::from_secs(10),
        "a customer who left after the node died is abandoned",
        || async { events(&cluster, late_left, "abandoned").await == 1 },
    )
    .await;
    // The dead node's users go offline for the others (within its heartbeat timeout), so its
    // waiting customer is abandoned too.
    within(
        Duration::from_secs(15),
        "the customer waiting on the dead node is abandoned",
        || async { events(&cluster, stranded_left, "abandoned").await == 1 },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(events(&cluster, late_left, "abandoned").await, 1);
    assert_eq!(events(&cluster, stranded_left, "abandoned").await, 1);
    drop((console, back, staying, rewritten));
    cluster.stop().await;
}
