//! One connection and one acked event, with what went wrong sorted by kind: an ack that refused
//! (by its error code), a handshake the server refused (`connect_error`, by its message), a
//! server not listening, a connection that broke, an ack that never came. The scenarios that
//! count refusals one by one (`burst`, `queue`, `restart`) tally these.

use std::{collections::BTreeMap, time::Duration};

use kefu_wire::{Client, Dial, Refused};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::target::Target;

/// Why a connection or an acked event did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The ack said `ok: false`: its error code (`unavailable`, `forbidden`, …).
    Refused(String),
    /// The server refused the handshake (`connect_error`): its message (`unavailable`,
    /// `rate_limited`, …).
    HandshakeRefused(String),
    /// Nothing listens on the server's address (the TCP connection was refused).
    Unreachable,
    /// The TCP, WebSocket or Engine.IO handshake failed otherwise, or took too long.
    Handshake(String),
    /// The connection closed before the ack.
    Closed,
    /// No ack within the time allowed.
    NoAck,
}

impl Failure {
    /// The key a [`Tally`] counts this under among the failures that are not refusals.
    fn kind(&self) -> &'static str {
        match self {
            Self::Refused(_) | Self::HandshakeRefused(_) => "refused",
            Self::Unreachable => "unreachable",
            Self::Handshake(_) => "handshake",
            Self::Closed => "closed",
            Self::NoAck => "no_ack",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(code) => write!(f, "refused: {code}"),
            Self::HandshakeRefused(message) => write!(f, "handshake refused: {message}"),
            Self::Unreachable => f.write_str("the server is not listening"),
            Self::Handshake(error) => write!(f, "handshake failed: {error}"),
            Self::Closed => f.write_str("the connection closed before the ack"),
            Self::NoAck => f.write_str("no ack in time"),
        }
    }
}

/// Opens the `i`-th connection (its source address follows `i`) to node `node` with `token`,
/// giving up after `timeout`.
pub async fn dial(
    target: &Target,
    i: usize,
    node: usize,
    token: &str,
    discard_events: bool,
    timeout: Duration,
) -> Result<Client, Failure> {
    let dial = Dial {
        local_addr: target.source(i),
        discard_events,
        ..Dial::default()
    };
    let connecting = Client::dial(target.node_url(node), json!({ "token": token }), &dial);
    match tokio::time::timeout(timeout, connecting).await {
        Err(_) => Err(Failure::Handshake(format!(
            "not connected within {timeout:?}"
        ))),
        Ok(Ok(client)) => Ok(client),
        Ok(Err(error)) => Err(classify(&error)),
    }
}

fn classify(error: &anyhow::Error) -> Failure {
    if let Some(Refused(message)) = error.downcast_ref::<Refused>() {
        return Failure::HandshakeRefused(message.clone());
    }
    let refused = error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    });
    if refused {
        Failure::Unreachable
    } else {
        Failure::Handshake(format!("{error:#}"))
    }
}

/// What became of an ack awaited with a timeout.
pub type Awaited = Result<Result<Value, oneshot::error::RecvError>, tokio::time::error::Elapsed>;

/// Sorts an awaited ack: its body when it says `ok: true`, else why not.
pub fn judge(ack: Awaited) -> Result<Value, Failure> {
    match ack {
        Ok(Ok(body)) if body["ok"] == true => Ok(body),
        Ok(Ok(body)) => Err(Failure::Refused(
            body["error"]["code"]
                .as_str()
                .map_or_else(|| format!("unexplained: {body}"), str::to_owned),
        )),
        Ok(Err(_)) => Err(Failure::Closed),
        Err(_) => Err(Failure::NoAck),
    }
}

/// Emits `event` with an ack callback and waits up to `timeout` for the ack.
pub async fn call(
    client: &Client,
    event: &str,
    payload: Value,
    timeout: Duration,
) -> Result<Value, Failure> {
    match client.call_later(event, payload) {
        Ok(ack) => judge(tokio::time::timeout(timeout, ack).await),
        Err(_) => Err(Failure::Closed),
    }
}

/// Failures counted by kind: refusals by their error code, everything else by what happened.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Acks that said `ok: false`, by error code.
    pub refused: BTreeMap<String, usize>,
    /// Handshakes refused (`connect_error`), by message.
    pub handshakes_refused: BTreeMap<String, usize>,
    /// The rest, by kind: `unreachable`, `handshake`, `closed`, `no_ack`.
    pub failed: BTreeMap<&'static str, usize>,
    /// The first failure, spelt out.
    pub first: Option<String>,
}

impl Tally {
    pub fn add(&mut self, failure: &Failure) {
        self.first.get_or_insert_with(|| failure.to_string());
        match failure {
            Failure::Refused(code) => *self.refused.entry(code.clone()).or_default() += 1,
            Failure::HandshakeRefused(message) => {
                *self.handshakes_refused.entry(message.clone()).or_default() += 1;
            }
            other => *self.failed.entry(other.kind()).or_default() += 1,
        }
    }

    pub fn merge(&mut self, other: &Self) {
        for (code, n) in &other.refused {
            *self.refused.entry(code.clone()).or_default() += n;
        }
        for (message, n) in &other.handshakes_refused {
            *self.handshakes_refused.entry(message.clone()).or_default() += n;
        }
        for (kind, n) in &other.failed {
            *self.failed.entry(kind).or_default() += n;
        }
        if self.first.is_none() {
            self.first.clone_from(&other.first);
        }
    }

    /// Refused acks and refused handshakes.
    pub fn refused_total(&self) -> usize {
        self.refused.values().sum::<usize>() + self.handshakes_refused.values().sum::<usize>()
    }

    pub fn failed_total(&self) -> usize {
        self.failed.values().sum()
    }

    pub fn total(&self) -> usize {
        self.refused_total() + self.failed_total()
    }

    pub fn json(&self) -> Value {
        json!({
            "refused": self.refused,
            "handshakes_refused": self.handshakes_refused,
            "refused_total": self.refused_total(),
            "failed": self.failed,
            "failed_total": self.failed_total(),
            "first": self.first,
        })
    }

    /// `refused 3 (unavailable 3), failed 1 (no_ack 1)`, or `none refused, none failed`.
    pub fn line(&self) -> String {
        fn counts<K: std::fmt::Display>(map: &BTreeMap<K, usize>) -> String {
            map.iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
        let mut refused = self.refused.clone();
        for (message, n) in &self.handshakes_refused {
            *refused.entry(format!("handshake {message}")).or_default() += n;
        }
        let refused = match self.refused_total() {
            0 => "none refused".to_owned(),
            n => format!("refused {n} ({})", counts(&refused)),
        };
        let failed = match self.failed_total() {
            0 => "none failed".to_owned(),
            n => format!("failed {n} ({})", counts(&self.failed)),
        };
        format!("{refused}, {failed}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusing_ack_is_counted_under_its_error_code() {
        let ack = Ok(Ok(
            json!({"ok": false, "error": {"code": "unavailable", "message": "busy"}}),
        ));
        assert_eq!(judge(ack), Err(Failure::Refused("unavailable".into())));
    }

    #[test]
    fn an_ack_that_says_ok_is_a_success() {
        let body = json!({"ok": true, "csId": "3"});
        assert_eq!(judge(Ok(Ok(body.clone()))), Ok(body));
    }

    #[test]
    fn a_tally_keeps_refusals_apart_from_failures() {
        let mut tally = Tally::default();
        tally.add(&Failure::Refused("unavailable".into()));
        tally.add(&Failure::Refused("unavailable".into()));
        tally.add(&Failure::HandshakeRefused("rate_limited".into()));
        tally.add(&Failure::NoAck);
        assert_eq!(tally.refused["unavailable"], 2);
        assert_eq!(tally.refused_total(), 3);
        assert_eq!(tally.failed_total(), 1);
        assert_eq!(tally.first.as_deref(), Some("refused: unavailable"));
        assert_eq!(
            tally.line(),
            "refused 3 (handshake rate_limited 1, unavailable 2), failed 1 (no_ack 1)"
        );
    }

    #[test]
    fn a_refused_tcp_connection_means_nobody_listens() {
        let error = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
            .context("TCP connect");
        assert_eq!(classify(&error), Failure::Unreachable);
        let refused = anyhow::Error::new(Refused("unavailable".into()));
        assert_eq!(
            classify(&refused),
            Failure::HandshakeRefused("unavailable".into())
        );
    }
}
