//! Each visitor's first message, sent before a measured window. On kefu a `login` writes
//! nothing: a customer's conversation starts with its first `private_message`, whose ack says
//! where it went (`started: {csId, queued}`). Sending it ahead keeps the measured traffic the
//! steady state it always was, and tells where each visitor was routed.

use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use hdrhistogram::Histogram;
use kefu_wire::Client;
use serde_json::{Value, json};

use crate::{
    attempt::{self, Tally},
    report::{histogram, quantiles},
    target::id_text,
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

    #[test]
    fn a_first_message_is_not_mistaken_for_a_measured_one() {
        let text = content(42);
        assert!(text.starts_with(PREFIX));
        assert!(!text.starts_with("t:"));
    }
}
