//! The offline path: waiting customers who leave are abandoned (unless they left an e-mail),
//! counted from when they left even across a restart, idle conversations of customers who left
//! are resolved, an offline or signed-out agent's conversations go back to the queue, a customer
//! asking for an offline agent waits for it only a while, the offline form, and what the widget
//! is told (open, busy, away, closed).

mod common;

use std::time::Duration;

use common::{Backend, TestServer, WAIT};
use kefu::Settings;
use kefu_wire::Client;
use serde_json::{Value, json};

on_every_backend!(
    a_waiting_customer_who_leaves_is_abandoned_and_one_who_comes_back_keeps_its_place,
    a_departure_outlives_a_restart_and_the_customer_is_abandoned_when_first_due,
    a_customer_who_left_an_email_stays_waiting_as_an_offline_conversation,
    the_offline_form_keeps_the_contact_and_waits_for_the_next_agent,
    an_idle_conversation_whose_customer_left_is_resolved_and_frees_the_agent,
    an_offline_or_signed_out_agents_conversations_go_back_to_the_queue,
    a_customer_asking_for_an_offline_agent_waits_for_it_then_for_anyone,
    availability_follows_the_agents_the_queue_and_the_business_hours,
);

/// Short timers: a round every 100 ms, abandonment after 1 s away, everything else off unless a
/// test turns it on.
fn short_timers(settings: &mut Settings) {
    settings.timers_every_ms = 100;
    settings.queue_abandon_after = 1;
    settings.idle_resolve_after = 0;
    settings.agent_offline_requeue_after = 0;
    settings.requested_agent_wait = 3600;
}

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

/// Polls `check` until it is true, for at most `WAIT`.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {WAIT:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get(server: &TestServer, path: &str, token: Option<&str>) -> (u16, Value) {
    server
        .request(reqwest::Method::GET, path, None, token)
        .await
}

async fn queue_place(client: &Client) -> Value {
    let ack = client.call("queue_status", json!({})).await.unwrap();
    assert_eq!(ack["ok"], true, "{ack}");
    ack["position"].clone()
}

async fn report(server: &TestServer) -> Value {
    let admin = server.admin_token().await;
    let (status, body) = get(server, "/api/admin/reports?days=1", Some(&admin)).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn a_waiting_customer_who_leaves_is_abandoned_and_one_who_comes_back_keeps_its_place(
    backend: Backend,
) {
    let server = TestServer::start_with(backend, short_timers).await;
    let (leaver_token, leaver) = server.visitor().await;
    let (returner_token, returner) = server.visitor().await;
    let (stayer_token, stayer) = server.visitor().await;
    let (leaving, first) = server.arrive(&leaver_token, &leaver).await;
    assert_eq!(first["queued"], true, "{first}");
    let (returning, _) = server.arrive(&returner_token, &returner).await;
    let (staying, _) = server.arrive(&stayer_token, &stayer).await;
    assert_eq!(queue_place(&staying).await, 3);
    leaving.close();
    drop(leaving);
    // Away for less than the grace: its place is kept.
    returning.close();
    drop(returning);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (returned, login) = server.login(&returner_token, &returner).await;
    assert_eq!(login["queued"], true, "{login}");
    eventually("the leaver is abandoned", || async {
        report(&server).await["abandoned"] == 1
    })
    .await;
    let report = report(&server).await;
    assert!(
        report["abandonWaitSeconds"].as_f64().unwrap() >= 1.0,
        "the wait before abandoning: {report}"
    );
    // The others moved up; the one that came back kept its place ahead of the one that stayed.
    assert_eq!(queue_place(&returned).await, 1);
    assert_eq!(queue_place(&staying).await, 2);
    // An agent coming online gets the two still there, not the one that left.
    let (token, agent) = server.agent("alice").await;
    let (mut console, _) = server.login(&token, &agent).await;
    let mut customers = Vec::new();
    for _ in 0..2 {
        let assigned = expect_where(&mut console, "conversation_assigned", |_| true).await;
        customers.push(assigned["customerId"].as_str().unwrap().to_owned());
    }
    customers.sort();
    let mut expected = vec![returner.clone(), stayer.clone()];
    expected.sort();
    assert_eq!(customers, expected);
    // The one who left writes again later: a new conversation starts.
    let (mut back, login) = server.login(&leaver_token, &leaver).await;
    assert_eq!(login["ended"], true, "{login}");
    let sent = back
        .call("private_message", json!({"content": "still there?"}))
        .await
        .unwrap();
    assert_eq!(sent["ok"], true, "{sent}");
    assert!(sent["started"].is_object(), "{sent}");
    let _ = expect_where(&mut back, "conversation_assigned", |_| true).await;
    server.stop().await;
}

/// Three seconds away abandons; the server restarts two seconds after the customer left.
fn abandon_after_3_s(settings: &mut Settings) {
    short_timers(settings);
    settings.queue_abandon_after = 3;
}

async fn a_departure_outlives_a_restart_and_the_customer_is_abandoned_when_first_due(
    backend: Backend,
) {
    let mut server = TestServer::start_with(backend, abandon_after_3_s).await;
    let (token, id) = server.visitor().await;
    let (client, arrived) = server.arrive(&token, &id).await;
    assert_eq!(arrived["queued"], true, "{arrived}");
    let conversation: i64 = arrived["conversationId"].as_str().unwrap().parse().unwrap();
    let url = server.database_url();
    let gone_at = || {
        let url = url.clone();
        async move {
            common::scalar(
                &url,
                &format!("SELECT customer_gone_at FROM conversations WHERE id = {conversation}"),
            )
            .await
        }
    };
    let abandoned = || {
        let url = url.clone();
        async move {
            common::scalar(
                &url,
                &format!(
                    "SELECT COUNT(*) FROM conversation_events \
                     WHERE conversation_id = {conversation} AND kind = 'abandoned'"
                ),
            )
            .await
        }
    };
    client.close();
    drop(client);
    let left = std::time::Instant::now();
    eventually("the departure is recorded", || async {
        gone_at().await.is_some()
    })
    .await;
    let departed = gone_at().await.unwrap();
    tokio::time::sleep(Duration::from_millis(2000).saturating_sub(left.elapsed())).await;
    assert_eq!(abandoned().await, Some(0), "abandoned before its time");
    let restarted = kefu::domain::now_millis();
    server.restart_with(abandon_after_3_s).await;
    eventually("the customer is abandoned", || async {
        abandoned().await == Some(1)
    })
    .await;
    // Counted from the departure kept in the database, not from the restart: a server that
    // kept it in memory only would wait until 3 s after it restarted.
    assert_eq!(
        gone_at().await,
        Some(departed),
        "the departure's time is kept"
    );
    let resolved_at = common::scalar(
        &url,
        &format!("SELECT resolved_at FROM conversations WHERE id = {conversation}"),
    )
    .await
    .unwrap();
    assert!(
        resolved_at - departed >= 3000,
        "abandoned {} ms after leaving",
        resolved_at - departed
    );
    assert!(
        resolved_at < restarted + 3000,
        "abandoned {} ms after the restart, as if the departure were forgotten",
        resolved_at - restarted
    );
    assert_eq!(report(&server).await["abandoned"], 1);
    server.stop().await;
}

async fn a_customer_who_left_an_email_stays_waiting_as_an_offline_conversation(backend: Backend) {
    let server = TestServer::start_with(backend, short_timers).await;
    let (status, body) = server
        .post(
            "/api/visitors",
            json!({"name": "Mei", "email": "mei@example.com"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    let id = body["user"]["id"].as_str().unwrap().to_owned();
    let (client, _) = server.arrive(&token, &id).await;
    client.close();
    drop(client);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(report(&server).await["abandoned"], 0);
    let (agent_token, agent) = server.agent("alice").await;
    let (mut console, _) = server.login(&agent_token, &agent).await;
    let assigned = expect_where(&mut console, "conversation_assigned", |_| true).await;
    assert_eq!(assigned["customerId"], id.as_str());
    let members = console.call("all_member", json!({})).await.unwrap();
    let member = &members["users"][0];
    assert_eq!(member["offline"], true, "{members}");
    assert_eq!(member["email"], "mei@example.com", "{members}");
    server.stop().await;
}

async fn the_offline_form_keeps_the_contact_and_waits_for_the_next_agent(backend: Backend) {
    let server = TestServer::start_with(backend, short_timers).await;
    let (token, id) = server.visitor().await;
    let (status, contact) = get(&server, "/api/me/contact", Some(&token)).await;
    assert_eq!(status, 200, "{contact}");
    assert_eq!(contact, json!({"name": null, "email": null, "phone": null}));
    // Each bad input is refused with what is wrong, and nothing is stored.
    for (body, says) in [
        (
            json!({"content": "hi", "email": "a@b.c"}),
            "name is required",
        ),
        (json!({"content": "hi", "name": "Li"}), "email is required"),
        (
            json!({"content": "hi", "name": "Li", "email": "nope"}),
            "email",
        ),
        (
            json!({"content": "hi", "name": "Li", "email": "a@b.c", "phone": "call me"}),
            "phone",
        ),
        (
            json!({"content": "  ", "name": "Li", "email": "a@b.c"}),
            "content",
        ),
    ] {
        let (status, error) = server
            .post("/api/offline-messages", body.clone(), Some(&token))
            .await;
        assert_eq!(status, 400, "{body} -> {error}");
        assert_eq!(error["error"]["code"], "invalid_payload", "{error}");
        assert!(
            error["error"]["message"].as_str().unwrap().contains(says),
            "{body} -> {error}"
        );
    }
    let (status, left) = server
        .post(
            "/api/offline-messages",
            json!({"name": "Li Lei", "email": "lilei@example.com", "phone": "+86 10 1234 5678",
                   "content": "My parcel did not arrive", "clientMsgId": "form-1"}),
            Some(&token),
        )
        .await;
    assert_eq!(status, 201, "{left}");
    assert_eq!(left["message"]["content"], "My parcel did not arrive");
    assert_eq!(left["message"]["seq"], 1);
    assert_eq!(left["place"], 1, "{left}");
    let (_, contact) = get(&server, "/api/me/contact", Some(&token)).await;
    assert_eq!(
        contact,
        json!({"name": "Li Lei", "email": "lilei@example.com", "phone": "+86 10 1234 5678"})
    );
    // Known now: not asked again; the same message sent twice is stored once.
    let (status, again) = server
        .post(
            "/api/offline-messages",
            json!({"content": "My parcel did not arrive", "clientMsgId": "form-1"}),
            Some(&token),
        )
        .await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["message"]["id"], left["message"]["id"]);
    // Nobody connected, and still waiting long after the abandonment grace.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let (agent_token, agent) = server.agent("alice").await;
    let (mut console, _) = server.login(&agent_token, &agent).await;
    let assigned = expect_where(&mut console, "conversation_assigned", |_| true).await;
    assert_eq!(assigned["customerId"], id.as_str());
    let members = console.call("all_member", json!({})).await.unwrap();
    let member = &members["users"][0];
    assert_eq!(member["offline"], true, "{members}");
    assert_eq!(member["displayName"], "Li Lei", "{members}");
    assert_eq!(member["phone"], "+86 10 1234 5678", "{members}");
    assert_eq!(member["lastMessage"]["content"], "My parcel did not arrive");
    server.stop().await;
}

async fn an_idle_conversation_whose_customer_left_is_resolved_and_frees_the_agent(
    backend: Backend,
) {
    let server = TestServer::start_with(backend, |s| {
        short_timers(s);
        s.idle_resolve_after = 1;
    })
    .await;
    let (agent_token, agent) = server.agent("alice").await;
    server.set_capacity(&agent, 1).await;
    let (mut console, _) = server.login(&agent_token, &agent).await;
    let (ghost_token, ghost) = server.visitor().await;
    let (ghost_client, first) = server.arrive(&ghost_token, &ghost).await;
    assert_eq!(first["csId"], agent.as_str(), "{first}");
    let (waiting_token, waiting) = server.visitor().await;
    let (mut waiter, second) = server.arrive(&waiting_token, &waiting).await;
    assert_eq!(second["queued"], true, "the agent is full: {second}");
    // The first customer says "hi" and leaves; nothing more is said.
    ghost_client.close();
    drop(ghost_client);
    let resolved = expect_where(&mut console, "conversation_resolved", |_| true).await;
    assert_eq!(resolved["customerId"], ghost.as_str(), "{resolved}");
    // The system message says why, in the conversation.
    let note = expect_where(&mut console, "new_private_message", |m| {
        m["kind"] == "system"
    })
    .await;
    assert!(
        note["content"].as_str().unwrap().contains("closed"),
        "{note}"
    );
    // The capacity freed takes the next customer.
    let assigned = expect_where(&mut waiter, "conversation_assigned", |_| true).await;
    assert_eq!(assigned["agentId"], agent.as_str(), "{assigned}");
    server.stop().await;
}

async fn an_offline_or_signed_out_agents_conversations_go_back_to_the_queue(backend: Backend) {
    let server = TestServer::start_with(backend, |s| {
        short_timers(s);
        s.agent_offline_requeue_after = 1;
    })
    .await;
    let (alice_token, alice) = server.agent("alice").await;
    let (alice_console, _) = server.login(&alice_token, &alice).await;
    let (token, customer) = server.visitor().await;
    let (mut chat, first) = server.arrive(&token, &customer).await;
    assert_eq!(first["csId"], alice.as_str());
    // Alice's console closes; she stays away.
    alice_console.close();
    drop(alice_console);
    let told = expect_where(&mut chat, "new_private_message", |m| m["kind"] == "system").await;
    assert!(
        told["content"].as_str().unwrap().contains("went offline"),
        "{told}"
    );
    // Told `conversation_queued` too (before or after the message), and waiting first in line.
    assert_eq!(queue_place(&chat).await, 1);
    // Bob signs in and gets the customer.
    let (bob_token, bob) = server.agent("bob").await;
    let (mut bob_console, _) = server.login(&bob_token, &bob).await;
    let assigned = expect_where(&mut bob_console, "conversation_assigned", |_| true).await;
    assert_eq!(assigned["customerId"], customer.as_str());
    // Bob signs out: the customer goes back to the queue at once, told so.
    let (status, _) = server
        .post("/api/logout", json!({}), Some(&bob_token))
        .await;
    assert_eq!(status, 204);
    let told = expect_where(&mut chat, "new_private_message", |m| {
        m["kind"] == "system"
            && m["content"]
                .as_str()
                .unwrap()
                .contains("no longer available")
    })
    .await;
    assert_eq!(told["senderId"], bob.as_str());
    assert_eq!(queue_place(&chat).await, 1);
    server.stop().await;
}

async fn a_customer_asking_for_an_offline_agent_waits_for_it_then_for_anyone(backend: Backend) {
    let server = TestServer::start_with(backend, |s| {
        short_timers(s);
        s.requested_agent_wait = 2;
    })
    .await;
    let (_, alice) = server.agent("alice").await;
    let (bob_token, bob) = server.agent("bob").await;
    let (mut bob_console, _) = server.login(&bob_token, &bob).await;
    let (token, customer) = server.visitor().await;
    let client = server.connect(&token).await;
    let login = client
        .call("login", json!({"userId": customer, "csId": alice}))
        .await
        .unwrap();
    assert_eq!(login["ok"], true, "{login}");
    assert_eq!(login["requestedAgent"]["id"], alice.as_str(), "{login}");
    assert_eq!(login["requestedAgent"]["online"], false, "{login}");
    let until = login["requestedAgent"]["waitsUntil"].as_i64().unwrap();
    let now = kefu::domain::now_millis();
    assert!((now + 1000..=now + 2500).contains(&until), "{login}");
    let sent = client
        .call("private_message", json!({"content": "Alice, please"}))
        .await
        .unwrap();
    assert_eq!(
        sent["started"]["queued"], true,
        "waits for Alice, not Bob: {sent}"
    );
    let started = std::time::Instant::now();
    let assigned = expect_where(&mut bob_console, "conversation_assigned", |_| true).await;
    assert_eq!(assigned["customerId"], customer.as_str());
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "Bob got it only once the wait ran out"
    );
    let mut client = client;
    let told = expect_where(&mut client, "new_private_message", |m| {
        m["kind"] == "system"
    })
    .await;
    assert!(
        told["content"].as_str().unwrap().contains("not available"),
        "{told}"
    );
    // Asked for an online agent: no wait.
    let (token, second) = server.visitor().await;
    let client = server.connect(&token).await;
    let login = client
        .call("login", json!({"userId": second, "csId": bob}))
        .await
        .unwrap();
    assert_eq!(login["requestedAgent"]["online"], true, "{login}");
    assert_eq!(
        login["requestedAgent"]["waitsUntil"],
        Value::Null,
        "{login}"
    );
    server.stop().await;
}

async fn availability_follows_the_agents_the_queue_and_the_business_hours(backend: Backend) {
    let server = TestServer::start_with(backend, short_timers).await;
    let state = || async {
        let (status, body) = get(&server, "/api/availability", None).await;
        assert_eq!(status, 200, "{body}");
        body
    };
    let away = state().await;
    assert_eq!(away["state"], "away", "{away}");
    assert_eq!(away["timeZone"], "UTC");
    let (token, agent) = server.agent("alice").await;
    server.set_capacity(&agent, 1).await;
    let (_console, _) = server.login(&token, &agent).await;
    eventually("open with an agent online", || async {
        state().await["state"] == "open"
    })
    .await;
    let (visitor_token, visitor) = server.visitor().await;
    let (_chat, _) = server.arrive(&visitor_token, &visitor).await;
    let busy = state().await;
    assert_eq!(busy["state"], "busy", "{busy}");
    assert!(busy["estimateSeconds"].as_i64().unwrap() > 0, "{busy}");

    // Business hours: only admins set them, bad ones are refused, and outside them it is closed.
    let admin = server.admin_token().await;
    let (status, refused) = server
        .request(
            reqwest::Method::PUT,
            "/api/admin/hours",
            Some(json!({"enabled": false, "timeZone": "UTC", "weekly": []})),
            Some(&token),
        )
        .await;
    assert_eq!(status, 403, "{refused}");
    let (status, error) = server
        .request(
            reqwest::Method::PUT,
            "/api/admin/hours",
            Some(json!({"enabled": true, "timeZone": "Mars/Olympus", "weekly": [{"day": "mon", "open": "09:00", "close": "18:00"}]})),
            Some(&admin),
        )
        .await;
    assert_eq!(status, 400, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("timeZone"),
        "{error}"
    );
    // Open one minute a week, a day from now: closed now, opening then.
    let tomorrow = time::OffsetDateTime::now_utc() + time::Duration::days(1);
    let day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        [tomorrow.weekday().number_days_from_monday() as usize];
    let hours = json!({"enabled": true, "timeZone": "Asia/Shanghai",
                       "weekly": [{"day": day, "open": "12:00", "close": "12:01"}],
                       "closedDays": []});
    let (status, saved) = server
        .request(
            reqwest::Method::PUT,
            "/api/admin/hours",
            Some(hours.clone()),
            Some(&admin),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved, hours);
    let (_, read) = get(&server, "/api/admin/hours", Some(&admin)).await;
    assert_eq!(read, hours);
    let closed = state().await;
    assert_eq!(closed["state"], "closed", "{closed}");
    assert_eq!(closed["timeZone"], "Asia/Shanghai");
    let opens = closed["opensAt"].as_i64().unwrap();
    let now = kefu::domain::now_millis();
    assert!(
        opens > now && opens < now + 3 * 24 * 3600 * 1000,
        "{closed}"
    );
    server.stop().await;
}
