//! The admin's routes: agents with their presence and load, disabling, and the nodes.

mod common;

use std::time::Duration;

use common::{Backend, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

on_every_backend!(
    an_admin_sees_every_agent_with_presence_and_load,
    a_disabled_agent_is_out_at_once_and_can_come_back,
    a_disabled_agents_customers_go_to_another_agent,
);

async fn an_admin_sees_every_agent_with_presence_and_load(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice_token, alice_id) = server.agent("alice").await;
    server.agent("bob").await;
    let (_alice, _) = server.login(&alice_token, &alice_id).await;
    let _alice_tab2 = server.connect(&alice_token).await;
    let (visitor_token, visitor_id) = server.visitor().await;
    let (_visitor, _) = server.arrive(&visitor_token, &visitor_id).await;
    let admin = server.admin_token().await;

    let (status, body) = server
        .request(Method::GET, "/api/agents", None, Some(&admin))
        .await;
    assert_eq!(status, 200, "{body}");
    let agents = body["agents"].as_array().unwrap();
    let find = |name: &str| {
        agents
            .iter()
            .find(|a| a["username"] == name)
            .cloned()
            .unwrap()
    };
    let alice = find("alice");
    assert_eq!(alice["online"], true);
    assert_eq!(alice["connections"], 2);
    assert_eq!(alice["openConversations"], 1);
    assert_eq!(alice["disabled"], false);
    assert_eq!(find("bob")["online"], false);
    assert_eq!(find("admin")["role"], "admin");

    let (status, body) = server
        .request(Method::GET, "/api/admin/nodes", None, Some(&admin))
        .await;
    assert_eq!(status, 200, "{body}");
    let node = &body["nodes"][0];
    assert_eq!(node["connections"], 3);
    assert_eq!(node["onlineUsers"], 2);
    assert_eq!(node["onlineAgents"], 1);
    assert_eq!(node["openConversations"], 1);
    assert!(node["id"].as_str().is_some_and(|id| !id.is_empty()));

    for path in ["/api/agents", "/api/admin/nodes"] {
        assert_eq!(
            server
                .request(Method::GET, path, None, Some(&alice_token))
                .await
                .0,
            403
        );
        assert_eq!(server.request(Method::GET, path, None, None).await.0, 401);
    }
    server.stop().await;
}

async fn a_disabled_agent_is_out_at_once_and_can_come_back(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice_token, alice_id) = server.agent("alice").await;
    let (alice, _) = server.login(&alice_token, &alice_id).await;
    let admin = server.admin_token().await;
    let path = format!("/api/agents/{alice_id}");

    let (status, body) = set_disabled(&server, &path, true, &alice_token).await;
    assert_eq!(status, 403, "only an admin: {body}");
    let (status, body) = set_disabled(&server, &path, true, &admin).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["disabled"], true);

    for _ in 0..50 {
        if alice.is_closed() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        alice.is_closed(),
        "the disabled agent's connection is closed at once"
    );
    let refused = kefu_wire::Client::connect(&server.base, json!({"token": alice_token}))
        .await
        .err()
        .expect("refused");
    assert!(refused.to_string().contains("unauthorized"), "{refused}");
    let login = json!({"username": "alice", "password": "agent-password"});
    assert_eq!(server.post("/api/login", login.clone(), None).await.0, 401);
    assert_eq!(
        server
            .request(Method::GET, "/api/me", None, Some(&alice_token))
            .await
            .0,
        401
    );

    let (status, _) = set_disabled(&server, &path, false, &admin).await;
    assert_eq!(status, 200);
    let (status, fresh) = server.post("/api/login", login, None).await;
    assert_eq!(status, 200);
    let fresh = fresh["token"].as_str().unwrap().to_owned();
    assert_eq!(
        server
            .request(Method::GET, "/api/me", None, Some(&fresh))
            .await
            .0,
        200
    );
    assert_eq!(
        server
            .request(Method::GET, "/api/me", None, Some(&alice_token))
            .await
            .0,
        401,
        "enabling an account does not revive the tokens it had before"
    );

    // Mistakes get clear answers.
    let admin_id = server
        .request(Method::GET, "/api/me", None, Some(&admin))
        .await
        .1["user"]["id"]
        .clone();
    let own = format!("/api/agents/{}", admin_id.as_str().unwrap());
    let cases: [(&str, Value, u16); 4] = [
        (&own, json!({"disabled": true}), 403),
        ("/api/agents/999999", json!({"disabled": true}), 404),
        ("/api/agents/not-an-id", json!({"disabled": true}), 400),
        (&path, json!({"disabled": "yes"}), 400),
    ];
    for (path, body, expected) in cases {
        let (status, answer) = server
            .request(Method::PATCH, path, Some(body), Some(&admin))
            .await;
        assert_eq!(status, expected, "{path}: {answer}");
        assert!(answer["error"]["code"].is_string(), "{answer}");
    }
    server.stop().await;
}

async fn a_disabled_agents_customers_go_to_another_agent(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice_token, alice_id) = server.agent("alice").await;
    let (_alice, _) = server.login(&alice_token, &alice_id).await;
    let (ann_token, ann_id) = server.visitor().await;
    let (mut ann, ack) = server
        .arrive_with(&ann_token, &ann_id, None, "hello alice")
        .await;
    assert_eq!(ack["csId"], alice_id.as_str());
    let (bob_token, bob_id) = server.agent("bob").await;
    let (mut bob, _) = server.login(&bob_token, &bob_id).await;

    let admin = server.admin_token().await;
    let path = format!("/api/agents/{alice_id}");
    let (status, _) = set_disabled(&server, &path, true, &admin).await;
    assert_eq!(status, 200);

    assert_eq!(
        ann.expect("user_offline", common::WAIT).await.unwrap(),
        alice_id.as_str()
    );
    let assigned = ann
        .expect("conversation_assigned", common::WAIT)
        .await
        .unwrap();
    assert_eq!(
        assigned["agentId"],
        bob_id.as_str(),
        "the customer is not left waiting for a disabled agent"
    );
    assert_eq!(
        bob.expect("conversation_assigned", common::WAIT)
            .await
            .unwrap()["customerId"],
        ann_id.as_str()
    );
    let history = bob
        .call("history", json!({"peerId": ann_id}))
        .await
        .unwrap();
    assert_eq!(
        history["messages"][0]["content"], "hello alice",
        "the new agent sees the whole history"
    );
    ann.call("private_message", json!({"content": "hello bob"}))
        .await
        .unwrap();
    assert_eq!(
        bob.expect("new_private_message", common::WAIT)
            .await
            .unwrap()["content"],
        "hello bob"
    );
    server.stop().await;
}

async fn set_disabled(
    server: &TestServer,
    path: &str,
    disabled: bool,
    token: &str,
) -> (u16, Value) {
    server
        .request(
            Method::PATCH,
            path,
            Some(json!({ "disabled": disabled })),
            Some(token),
        )
        .await
}
