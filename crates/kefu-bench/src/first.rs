//! Each visitor's first message, sent before a measured window. On kefu a `login` writes
//! nothing: a customer's conversation starts with its first `private_message`, whose ack says
//! where it went (`started: {csId, queued}`). Sending it ahead keeps the measured traffic the
//! steady state it always was, and tells where each visitor was routed. A conversation that
//! waited in the queue learns its agent later, from `conversation_assigned`.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::bail;
use futures_util::{StreamExt, stream};
use hdrhistogram::Histogram;
use kefu_wire::Client;
use serde_json::{Value, json};

use crate::{
    attempt::{self, Tally},
    report::{histogram, quantiles},
    target::{Session, id_text},
};

/// The head of a first message's content; the measured messages carry another mark.
pub const PREFIX: &str = "first:";

/// How long a first message may wait for its ack.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the agents' deliveries of the first messages may take without progress.
const SETTLE: Duration = Duration::from_secs(5);

pub fn content(visitor: usize) -> String {
    format!("{PREFIX}{visitor:07}: hello")
}

/// One visitor about to write: its connection, its own id and the agent it writes to.
pub struct Writer<'a> {
    pub client: &'a Client,
    pub id: &'a str,
    pub agent: &'a str,
}

pub struct FirstMessages {
    /// Per visitor, in the order given: the message's ack, when it said `ok`.
    pub acks: Vec<Option<Value>>,
    pub tally: Tally,
    /// Send→ack, microseconds.
    pub latency: Histogram<u64>,
    pub elapsed: Duration,
    /// First messages that reached an agent's connection.
    pub delivered: usize,
}

impl FirstMessages {
    pub fn acked(&self) -> usize {
        self.acks.iter().filter(|a| a.is_some()).count()
    }

    pub fn json(&self) -> Value {
        json!({
            "sent": self.acks.len(),
            "acked": self.acked(),
            "delivered": self.delivered,
            "lost": self.acked().saturating_sub(self.delivered),
            "seconds": self.elapsed.as_secs_f64(),
            "ack_latency_us": quantiles(&self.latency),
            "failures": self.tally.json(),
        })
    }
}

/// Sends every visitor's first message (`receiverId` and `senderId`, as clients of the reference
/// design write), `concurrency` in flight at once.
pub async fn send(writers: &[Writer<'_>], concurrency: usize) -> FirstMessages {
    let started = Instant::now();
    let mut results: Vec<(usize, Duration, Result<Value, attempt::Failure>)> =
        stream::iter(writers.iter().enumerate())
            .map(|(i, writer)| async move {
                let payload = json!({
                    "receiverId": writer.agent,
                    "senderId": writer.id,
                    "content": content(i),
                });
                let began = Instant::now();
                let result =
                    attempt::call(writer.client, "private_message", payload, ACK_TIMEOUT).await;
                (i, began.elapsed(), result)
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
    results.sort_by_key(|(i, _, _)| *i);
    let mut first = FirstMessages {
        acks: Vec::with_capacity(writers.len()),
        tally: Tally::default(),
        latency: histogram(),
        elapsed: started.elapsed(),
        delivered: 0,
    };
    for (_, took, result) in results {
        match result {
            Ok(ack) => {
                first.latency.saturating_record(took.as_micros() as u64);
                first.acks.push(Some(ack));
            }
            Err(failure) => {
                first.tally.add(&failure);
                first.acks.push(None);
            }
        }
    }
    first
}

/// Reads each agent's events until it has seen its `expected` first messages, or nothing came
/// for a while; the events read are gone, so the measured window starts with an empty inbox.
/// Returns how many arrived.
pub async fn await_deliveries(agents: Vec<(&mut Client, usize)>) -> usize {
    let reading = agents.into_iter().map(|(client, expected)| async move {
        let mut seen = 0;
        let mut last = Instant::now();
        while seen < expected && last.elapsed() < SETTLE {
            match client.next_event(Duration::from_millis(100)).await {
                Some(event)
                    if event.name == "new_private_message"
                        && event.data["content"]
                            .as_str()
                            .is_some_and(|c| c.starts_with(PREFIX)) =>
                {
                    seen += 1;
                    last = Instant::now();
                }
                Some(_) => {}
                None if client.is_closed() => break,
                None => {}
            }
        }
        seen
    });
    futures_util::future::join_all(reading).await.iter().sum()
}

/// What a connection heard, with when it was read.
#[derive(Default)]
pub struct Heard {
    pub positions: Vec<Instant>,
    /// `conversation_assigned` events: when, and to which agent.
    pub assigned: Vec<(Instant, Option<String>)>,
    pub closed: bool,
}

/// Reads a connection's events until `stop`, noting `queue_position` and
/// `conversation_assigned`; counts the connections assigned at least once in `assigned`.
pub async fn listen(
    mut client: Client,
    stop: Arc<AtomicBool>,
    assigned: Arc<AtomicUsize>,
) -> (Heard, Client) {
    let mut heard = Heard::default();
    loop {
        match client.next_event(Duration::from_millis(250)).await {
            Some(event) if event.name == "queue_position" => heard.positions.push(Instant::now()),
            Some(event) if event.name == "conversation_assigned" => {
                if heard.assigned.is_empty() {
                    assigned.fetch_add(1, Ordering::Relaxed);
                }
                heard
                    .assigned
                    .push((Instant::now(), id_text(&event.data["agentId"])));
            }
            Some(_) => {}
            None if stop.load(Ordering::Relaxed) => break,
            None if client.is_closed() => {
                heard.closed = true;
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                break;
            }
            None => {}
        }
    }
    (heard, client)
}

/// Listens to the visitors whose conversations wait (`routed` names no agent) for
/// `conversation_assigned` while `arrive` runs (the agents signing in, which drains the queue),
/// then until each of them was told or `timeout` passed since `arrive` finished. Gives back what
/// `arrive` returned, every client in the order given, and where each conversation went.
pub async fn await_assignments<T>(
    visitors: Vec<Client>,
    routed: Vec<Option<String>>,
    arrive: impl Future<Output = anyhow::Result<T>>,
    timeout: Duration,
) -> anyhow::Result<(T, Vec<Client>, Assignments)> {
    let stop = Arc::new(AtomicBool::new(false));
    let told = Arc::new(AtomicUsize::new(0));
    let mut listeners = Vec::new();
    let mut clients: Vec<Option<Client>> = Vec::with_capacity(visitors.len());
    for (i, client) in visitors.into_iter().enumerate() {
        if routed.get(i).is_some_and(Option::is_none) {
            listeners.push((i, tokio::spawn(listen(client, stop.clone(), told.clone()))));
            clients.push(None);
        } else {
            clients.push(Some(client));
        }
    }
    let agents_started = Instant::now();
    let arrived = arrive.await;
    if arrived.is_ok() {
        let deadline = Instant::now() + timeout;
        while told.load(Ordering::Relaxed) < listeners.len() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut assignments = Assignments {
        agents_started,
        timeout,
        told: vec![None; routed.len()],
        routed,
    };
    for (i, task) in listeners {
        let (heard, client) = task.await?;
        assignments.told[i] = heard.assigned.into_iter().next();
        clients[i] = Some(client);
    }
    let clients = clients.into_iter().flatten().collect();
    Ok((arrived?, clients, assignments))
}

/// Where the visitors' conversations went once the agents came (see [`await_assignments`]).
pub struct Assignments {
    /// When the first agent began to connect (its `login` follows its handshake).
    agents_started: Instant,
    timeout: Duration,
    /// Per visitor: the agent its first message's ack (or login's) named, `None` if it waited.
    routed: Vec<Option<String>>,
    /// Per visitor: its first `conversation_assigned`, when it was read and the agent named.
    told: Vec<Option<(Instant, Option<String>)>>,
}

impl Assignments {
    /// Each visitor's agent, by its index in `agents`; an error if one was never assigned, or
    /// assigned to an agent not of this run.
    pub fn agents(&self, agents: &[Session]) -> anyhow::Result<Vec<usize>> {
        let index: HashMap<&str, usize> = agents
            .iter()
            .enumerate()
            .map(|(j, agent)| (agent.id.as_str(), j))
            .collect();
        let mut unassigned = (0, None);
        let mut agent_of = Vec::with_capacity(self.routed.len());
        for (i, (routed, told)) in self.routed.iter().zip(&self.told).enumerate() {
            let named = routed
                .clone()
                .or_else(|| told.as_ref().and_then(|(_, agent)| agent.clone()));
            match named.as_deref().map(|id| (id, index.get(id))) {
                Some((_, Some(&j))) => agent_of.push(j),
                Some((id, None)) => {
                    bail!("visitor {i} was given agent {id}, who is not one of this run's agents")
                }
                None => {
                    unassigned.0 += 1;
                    unassigned.1.get_or_insert(i);
                }
            }
        }
        if let (count, Some(first)) = unassigned {
            bail!(
                "{count} of {} visitors were not assigned an agent within {} s of the agents' \
                 logins (the first: visitor {first}): every agent needs room for its share \
                 (a capacity of at least visitors ÷ agents)",
                self.routed.len(),
                self.timeout.as_secs()
            );
        }
        Ok(agent_of)
    }

    /// The visitors that waited and were told, and the time from the first agent's connection
    /// to the last of them told.
    fn assigned(&self) -> (usize, Option<Duration>) {
        let told: Vec<Instant> = self
            .told
            .iter()
            .zip(&self.routed)
            .filter(|(_, routed)| routed.is_none())
            .filter_map(|(told, _)| told.as_ref().map(|(at, _)| *at))
            .collect();
        let last = told.iter().max();
        (
            told.len(),
            last.map(|at| at.saturating_duration_since(self.agents_started)),
        )
    }

    /// `mine`: each agent's visitors; `elsewhere`: the visitors given another agent than the
    /// one they asked for.
    pub fn json(
        &self,
        first_messages: &FirstMessages,
        mine: &[Vec<&str>],
        elsewhere: usize,
    ) -> Value {
        let (assigned, all_in) = self.assigned();
        json!({
            "queued": queued(first_messages),
            "waited": self.routed.iter().filter(|r| r.is_none()).count(),
            "assigned": assigned,
            // From the first agent's connection to the last waiting visitor told
            // `conversation_assigned`.
            "seconds_to_assign_all": all_in.map(|d| d.as_secs_f64()),
            "most_per_agent": mine.iter().map(Vec::len).max(),
            "not_the_agent_asked_for": elsewhere,
        })
    }

    pub fn line(
        &self,
        first_messages: &FirstMessages,
        mine: &[Vec<&str>],
        elsewhere: usize,
    ) -> String {
        let (assigned, all_in) = self.assigned();
        let most = mine.iter().map(Vec::len).max().unwrap_or(0);
        match all_in {
            Some(all_in) => format!(
                "{} first messages queued; {assigned} visitors assigned, all {:.2} s after the first agent began to log in; {elsewhere} not to the agent asked for, most to one agent {most}",
                queued(first_messages),
                all_in.as_secs_f64()
            ),
            None => format!(
                "{} first messages queued; none waited for an agent (no queue): each visitor kept the agent it asked for",
                queued(first_messages)
            ),
        }
    }
}

/// The first messages whose ack said that their conversation waits in the queue.
fn queued(first_messages: &FirstMessages) -> usize {
    first_messages
        .acks
        .iter()
        .flatten()
        .filter(|ack| ack["started"]["queued"] == true)
        .count()
}

/// How many of `expected` (visitor ids) an agent's `all_member` answer lists with a message
/// it has not read: a first message that waited in the queue is delivered live to nobody, its
/// agent finds it here. `message_count` is the unread count on kefu and on the reference design
/// alike.
pub fn with_first_message(members: &Value, expected: &[&str]) -> usize {
    let expected: HashSet<&str> = expected.iter().copied().collect();
    let unread = |member: &Value| {
        let count = &member["message_count"];
        count
            .as_u64()
            .or_else(|| count.as_str().and_then(|c| c.parse().ok()))
            .unwrap_or(0)
    };
    members
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .filter(|member| unread(member) > 0)
        .filter_map(|member| id_text(&member["id"]))
        .filter(|id| expected.contains(id.as_str()))
        .count()
}

/// Asks each agent's connection for `all_member` and counts, as [`with_first_message`], its
/// visitors (`expected`, per agent) whose first message it finds there.
pub async fn in_member_lists(agents: &[Client], expected: &[Vec<&str>]) -> usize {
    let asking = agents
        .iter()
        .zip(expected)
        .map(|(client, mine)| async move {
            match attempt::call(client, "all_member", Value::Null, ACK_TIMEOUT).await {
                Ok(ack) => with_first_message(&ack["users"], mine),
                Err(_) => 0,
            }
        });
    futures_util::future::join_all(asking).await.iter().sum()
}

/// The agent a visitor's conversation went to: the first message's `started.csId` where the
/// server says where a conversation started (kefu), else the `csId` of the login's ack (a
/// conversation already open, or a server that routes at login). `None` while it waits.
pub fn routed_to(login_ack: &Value, message_ack: &Value) -> Option<String> {
    match message_ack.get("started") {
        Some(started) if started.is_object() => id_text(&started["csId"]),
        _ => id_text(&login_ack["csId"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_started_conversation_is_routed_where_the_message_ack_says() {
        let login = json!({"ok": true, "csId": null});
        let message = json!({"ok": true, "id": "7", "started": {"csId": "3", "queued": false}});
        assert_eq!(routed_to(&login, &message).as_deref(), Some("3"));
    }

    #[test]
    fn a_queued_conversation_is_routed_nowhere_yet() {
        let login = json!({"ok": true, "csId": "3"});
        let message = json!({"ok": true, "started": {"csId": null, "queued": true}});
        assert_eq!(routed_to(&login, &message), None);
    }

    #[test]
    fn without_started_the_login_ack_tells_the_agent() {
        let login = json!({"ok": true, "csId": 3});
        let message = json!({"ok": true, "id": "7", "seq": 7});
        assert_eq!(routed_to(&login, &message).as_deref(), Some("3"));
    }

    fn session(id: &str) -> Session {
        Session {
            token: String::new(),
            id: id.to_owned(),
        }
    }

    #[test]
    fn a_visitor_writes_to_the_agent_it_was_given_or_else_to_the_one_it_was_routed_to() {
        let now = Instant::now();
        let assignments = Assignments {
            agents_started: now,
            timeout: Duration::from_secs(60),
            routed: vec![None, Some("3".into()), None],
            told: vec![
                Some((now, Some("4".into()))),
                None,
                Some((now, Some("3".into()))),
            ],
        };
        let agents = [session("3"), session("4")];
        assert_eq!(assignments.agents(&agents).unwrap(), [1, 0, 0]);
        assert_eq!(assignments.assigned().0, 2);
    }

    #[test]
    fn a_visitor_never_assigned_fails_the_run_with_a_reason() {
        let now = Instant::now();
        let assignments = Assignments {
            agents_started: now,
            timeout: Duration::from_secs(60),
            routed: vec![None, None],
            told: vec![Some((now, Some("3".into()))), None],
        };
        let error = assignments.agents(&[session("3")]).unwrap_err().to_string();
        assert!(
            error.starts_with("1 of 2 visitors were not assigned"),
            "{error}"
        );
        let stranger = Assignments {
            told: vec![Some((now, Some("9".into()))), Some((now, Some("3".into())))],
            ..assignments
        };
        assert!(stranger.agents(&[session("3")]).is_err());
    }

    #[test]
    fn an_agent_finds_the_first_messages_of_its_own_visitors_in_its_member_list() {
        // kefu's rows: ids as strings; the reference design's: ids as numbers.
        let kefu = json!([
            {"id": "12", "message_count": 1, "online": true},
            {"id": "13", "message_count": 0, "online": true},
            {"id": "14", "message_count": 2, "online": true},
        ]);
        assert_eq!(with_first_message(&kefu, &["12", "13"]), 1);
        let reference = json!([{"id": 12, "message_count": 1}, {"id": 3, "message_count": 0}]);
        assert_eq!(with_first_message(&reference, &["12", "14"]), 1);
        assert_eq!(with_first_message(&Value::Null, &["12"]), 0);
    }

    #[test]
    fn a_first_message_is_not_mistaken_for_a_measured_one() {
        let text = content(42);
        assert!(text.starts_with(PREFIX));
        assert!(!text.starts_with("t:"));
    }
}
