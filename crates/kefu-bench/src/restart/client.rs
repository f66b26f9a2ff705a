//! One client of `restart`: it holds its connection, writing on schedule, until the server
//! dies; then it comes back as socket.io-client would, and afterwards reads its history.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::{StreamExt, stream::FuturesUnordered};
use kefu_wire::Client;
use serde_json::{Value, json};

use super::RestartArgs;
use crate::{
    attempt::{self, Awaited, Tally},
    chat,
    fleet::Login,
    reconnect::{Jitter, Schedule},
    target::{Target, id_text},
};

/// A message whose ack said `ok`, before the kill.
#[derive(Clone)]
pub(super) struct Acked {
    pub(super) id: Option<String>,
    pub(super) seq: Option<u64>,
    pub(super) content: String,
}

/// What one client lived through.
#[derive(Default)]
pub(super) struct Life {
    pub(super) acked: Vec<Acked>,
    /// Messages refused before the kill.
    pub(super) refused: Tally,
    /// Messages sent whose ack never came: in flight when the server died (a visitor writes
    /// until it sees its connection close, so that acks sent as the server dies are checked).
    pub(super) unacked: usize,
    /// When the client saw its connection close (`None`: it never did).
    pub(super) dropped_at: Option<Instant>,
    /// When it was logged in again.
    pub(super) back_at: Option<Instant>,
    /// Connections tried after the drop, and how many found nobody listening.
    pub(super) attempts: usize,
    pub(super) unreachable: usize,
    /// Refused handshakes and logins, and failed attempts, after the drop.
    pub(super) reconnect: Tally,
    /// The new connection, and its login's ack.
    pub(super) client: Option<(Client, Value)>,
}

/// What every client shares: the target, the schedules, and the run's clock.
pub(super) struct Shared<'a> {
    pub(super) target: &'a Target,
    pub(super) args: &'a RestartArgs,
    pub(super) schedule: Schedule,
    pub(super) size: usize,
    pub(super) epoch: Instant,
    /// When a client that has not seen its connection drop gives up (the kill did not work).
    pub(super) give_up: Mutex<Option<Instant>>,
    pub(super) back: AtomicUsize,
}

impl Shared<'_> {
    pub(super) fn given_up(&self) -> bool {
        self.give_up
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|at| Instant::now() >= at)
    }
}

/// One client: the `i`-th connection, a visitor when it has somewhere to write.
pub(super) struct Holder {
    pub(super) i: usize,
    pub(super) login: Login,
    /// (visitor index, agent id) for a visitor.
    pub(super) writes: Option<(usize, String)>,
    /// The first send, and the time between two.
    pub(super) first: Instant,
    pub(super) period: Duration,
}

pub(super) fn login_payload(login: &Login) -> Value {
    let mut payload = json!({ "userId": login.session.id });
    if let Some(cs_id) = &login.cs_id {
        payload["csId"] = json!(cs_id);
    }
    payload
}

pub(super) enum Step {
    Answered(String, Awaited),
    Event(bool),
}

/// Holds a connection, writing on schedule, until it drops; then reconnects with backoff and
/// logs in again.
pub(super) async fn hold(shared: &Shared<'_>, holder: Holder, mut client: Client) -> Life {
    let mut life = Life::default();
    let mut in_flight = FuturesUnordered::new();
    let mut next_send = holder.first;
    let mut number = 0;
    loop {
        let wait = if holder.writes.is_none() {
            Duration::from_millis(250)
        } else {
            next_send
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(250))
        };
        let step = tokio::select! {
            biased;
            Some((content, ack)) = in_flight.next() => Step::Answered(content, ack),
            event = client.next_event(wait) => Step::Event(event.is_none()),
        };
        match step {
            Step::Answered(content, ack) => match attempt::judge(ack) {
                Ok(ack) => life.acked.push(Acked {
                    id: id_text(&ack["id"]),
                    seq: ack["seq"].as_u64(),
                    content,
                }),
                Err(attempt::Failure::Refused(code)) => {
                    life.refused.add(&attempt::Failure::Refused(code));
                }
                Err(_) => life.unacked += 1,
            },
            Step::Event(none) => {
                if none && client.is_closed() {
                    life.dropped_at = Some(Instant::now());
                    break;
                }
                if shared.given_up() {
                    client.close();
                    break;
                }
            }
        }
        if let Some((visitor, agent)) = &holder.writes
            && Instant::now() >= next_send
        {
            let content = chat::content(
                chat::micros_since(shared.epoch, next_send),
                *visitor,
                number,
                shared.size,
            );
            let payload = json!({
                "receiverId": agent,
                "senderId": holder.login.session.id,
                "content": content,
            });
            if let Ok(ack) = client.call_later("private_message", payload) {
                in_flight.push(async move {
                    (
                        content,
                        tokio::time::timeout(Duration::from_secs(30), ack).await,
                    )
                });
            }
            number += 1;
            next_send += holder.period;
        }
    }
    // The acks of what was in flight: the closed connection answers them at once.
    while let Some((content, ack)) = in_flight.next().await {
        match attempt::judge(ack) {
            Ok(ack) => life.acked.push(Acked {
                id: id_text(&ack["id"]),
                seq: ack["seq"].as_u64(),
                content,
            }),
            Err(failure @ attempt::Failure::Refused(_)) => life.refused.add(&failure),
            Err(_) => life.unacked += 1,
        }
    }
    if life.dropped_at.is_none() {
        return life;
    }

    // Back, as socket.io-client comes back: a delay before every attempt, growing.
    let mut jitter = Jitter::new(holder.i as u64 ^ shared.epoch.elapsed().as_nanos() as u64);
    let attempt_timeout = Duration::from_secs(shared.args.attempt_timeout);
    let mut tries = 0;
    while !shared.given_up() {
        tokio::time::sleep(shared.schedule.delay(tries, jitter.next())).await;
        tries += 1;
        life.attempts += 1;
        let token = &holder.login.session.token;
        let node = holder.login.node;
        let dialed =
            attempt::dial(shared.target, holder.i, node, token, true, attempt_timeout).await;
        let client = match dialed {
            Ok(client) => client,
            Err(attempt::Failure::Unreachable) => {
                life.unreachable += 1;
                continue;
            }
            Err(failure) => {
                life.reconnect.add(&failure);
                continue;
            }
        };
        match attempt::call(
            &client,
            "login",
            login_payload(&holder.login),
            attempt_timeout,
        )
        .await
        {
            Ok(ack) => {
                life.back_at = Some(Instant::now());
                shared.back.fetch_add(1, Ordering::Relaxed);
                life.client = Some((client, ack));
                break;
            }
            Err(failure) => {
                life.reconnect.add(&failure);
                client.close();
            }
        }
    }
    life
}

/// Every message a visitor had acked that its history lacks, or `None` when the history could
/// not be read.
pub(super) async fn missing_from_history(client: &Client, acked: &[Acked]) -> Option<usize> {
    let mut ids = std::collections::HashSet::new();
    let mut after = 0u64;
    loop {
        let page = attempt::call(
            client,
            "history",
            json!({"afterSeq": after, "limit": 100}),
            Duration::from_secs(30),
        )
        .await
        .ok()?;
        let messages = page["messages"].as_array()?;
        for message in messages {
            if let Some(id) = id_text(&message["id"]) {
                ids.insert(id);
            }
            after = after.max(message["seq"].as_u64().unwrap_or(after));
        }
        if page["hasMore"] != true || messages.is_empty() {
            break;
        }
    }
    Some(
        acked
            .iter()
            .filter(|m| m.id.as_ref().is_none_or(|id| !ids.contains(id)))
            .count(),
    )
}
