//! Connections come and go by the thousand: each one leaves no trace behind.

mod common;

use common::{Backend, Process, TestServer, rss_kib, temp_dir};
use futures_util::{StreamExt, stream};
use kefu_wire::Client;
use serde_json::{Value, json};

/// Connects, logs in and disconnects `cycles` times, `parallel` at once, with these visitors.
async fn churn(base: &str, visitors: &[(String, String)], cycles: usize, parallel: usize) {
    stream::iter(0..cycles)
        .for_each_concurrent(parallel, |i| async move {
            let (token, id) = &visitors[i % visitors.len()];
            let client = Client::connect(base, json!({"token": token}))
                .await
                .unwrap();
            let ack = client.call("login", json!({"userId": id})).await.unwrap();
            assert_eq!(ack["ok"], true, "{ack}");
            client.close();
        })
        .await;
}

/// `n` visitors, each with a conversation started by one message.
async fn visitors(base: &str, n: usize) -> Vec<(String, String)> {
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    for _ in 0..n {
        let body: Value = http
            .post(format!("{base}/api/visitors"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let (token, id) = (
            body["token"].as_str().unwrap().to_owned(),
            body["user"]["id"].as_str().unwrap().to_owned(),
        );
        // Each writes once, so that it has a conversation (and an agent, where one is online).
        let client = Client::connect(base, json!({"token": token}))
            .await
            .unwrap();
        client.call("login", json!({"userId": id})).await.unwrap();
        let sent = client
            .call("private_message", json!({"content": "hello"}))
            .await
            .unwrap();
        assert_eq!(sent["ok"], true, "{sent}");
        client.close();
        out.push((token, id));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_close_are_forgotten() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (agent_token, agent_id) = server.agent("alice").await;
    server.set_capacity(&agent_id, 20).await;
    let (mut agent, _) = server.login(&agent_token, &agent_id).await;
    let visitors = visitors(&server.base, 20).await;
    churn(&server.base, &visitors, 1000, 20).await;
    // The last close may still be in flight.
    for _ in 0..100 {
        if server.state.connections.len() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        server.state.connections.len(),
        1,
        "only the agent is still connected"
    );
    let members = agent.call("all_member", Value::Null).await.unwrap();
    let users = members["users"].as_array().unwrap();
    assert_eq!(users.len(), 20);
    assert!(
        users.iter().all(|u| u["online"] == false),
        "every visitor is offline again"
    );
    // The agent heard each visitor come and go; the last word for each is "offline".
    let mut last = std::collections::HashMap::new();
    while let Some(event) = agent
        .next_event(std::time::Duration::from_millis(200))
        .await
    {
        if event.name == "update_member_list" {
            last.insert(
                event.data["userId"].as_str().unwrap().to_owned(),
                event.data["online"].clone(),
            );
        }
    }
    assert!(last.values().all(|online| *online == false), "{last:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_flat_over_connect_disconnect_cycles() {
    let server = Process::spawn(&temp_dir(), None);
    let visitors = visitors(&server.base, 50).await;
    churn(&server.base, &visitors, 2_000, 50).await;
    let warm = rss_kib(server.child.id());
    const CYCLES: usize = 10_000;
    let rounds: usize = std::env::var("KEFU_CHURN_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    let mut after = warm;
    for round in 0..rounds {
        churn(&server.base, &visitors, CYCLES, 50).await;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        after = rss_kib(server.child.id());
        println!("round {round}: RSS {after} KiB");
    }
    let growth = after.saturating_sub(warm);
    println!(
        "RSS after warm-up {warm} KiB, after {CYCLES} more cycles {after} KiB ({growth} KiB growth)"
    );
    // A leak of even one small allocation per connection would show as megabytes here.
    assert!(
        growth < 8 * 1024,
        "RSS grew by {growth} KiB over {CYCLES} connect/disconnect cycles"
    );
}
