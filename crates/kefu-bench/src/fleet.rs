//! Many connections at once: connect, authenticate, `login`, a bounded number in flight.

use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use hdrhistogram::Histogram;
use kefu_wire::{Client, Dial};
use serde_json::{Value, json};

use crate::{
    report::histogram,
    target::{Session, Target},
};

/// How long a connection may take to connect and log in before it counts as failed.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// One connection to open: who, and what its `login` says.
pub struct Login {
    pub session: Session,
    pub cs_id: Option<String>,
}

pub struct Fleet {
    /// The logged-in clients with their `login` acks, by the index of their [`Login`]; `None`
    /// where connecting or logging in failed or the deadline passed first.
    pub clients: Vec<Option<(Client, Value)>>,
    /// Connect + handshake + `login` ack, per connection, in microseconds.
    pub latency: Histogram<u64>,
    pub failed: usize,
    /// Connections not attempted or not finished when the deadline passed.
    pub unfinished: usize,
    pub first_error: Option<String>,
    pub elapsed: Duration,
}

impl Fleet {
    pub fn connected(&self) -> usize {
        self.clients.iter().filter(|c| c.is_some()).count()
    }

    pub fn close_all(&mut self) {
        for (client, _) in self.clients.iter().flatten() {
            client.close();
        }
        self.clients.clear();
    }
}

/// Connects and logs in every login, `concurrency` at a time, giving up on what is not done by
/// `deadline`.
pub async fn connect(
    target: &Target,
    logins: &[Login],
    concurrency: usize,
    discard_events: bool,
    deadline: Instant,
) -> Fleet {
    let started = Instant::now();
    let mut fleet = Fleet {
        clients: (0..logins.len()).map(|_| None).collect(),
        latency: histogram(),
        failed: 0,
        unfinished: 0,
        first_error: None,
        elapsed: Duration::ZERO,
    };
    let mut attempts = stream::iter(logins.iter().enumerate())
        .map(|(i, login)| async move {
            let began = Instant::now();
            let result = log_in(target, i, login, discard_events).await;
            (i, began.elapsed(), result)
        })
        .buffer_unordered(concurrency.max(1));
    let mut finished = 0;
    loop {
        let next = tokio::time::timeout_at(deadline.into(), attempts.next()).await;
        let Ok(Some((i, took, result))) = next else {
            break;
        };
        finished += 1;
        match result {
            Ok(pair) => {
                fleet.latency.saturating_record(took.as_micros() as u64);
                fleet.clients[i] = Some(pair);
            }
            Err(error) => {
                fleet.failed += 1;
                fleet
                    .first_error
                    .get_or_insert_with(|| format!("{error:#}"));
            }
        }
    }
    fleet.unfinished = logins.len() - finished;
    fleet.elapsed = started.elapsed();
    fleet
}

/// Connects the `i`-th connection (its source address follows `i`) and logs it in; gives up
/// after [`LOGIN_TIMEOUT`].
pub async fn log_in(
    target: &Target,
    i: usize,
    login: &Login,
    discard_events: bool,
) -> anyhow::Result<(Client, Value)> {
    tokio::time::timeout(LOGIN_TIMEOUT, try_log_in(target, i, login, discard_events))
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("no login within {LOGIN_TIMEOUT:?}")))
}

async fn try_log_in(
    target: &Target,
    i: usize,
    login: &Login,
    discard_events: bool,
) -> anyhow::Result<(Client, Value)> {
    let dial = Dial {
        local_addr: target.source(i),
        discard_events,
        ..Dial::default()
    };
    let client = Client::dial(&target.url, json!({"token": login.session.token}), &dial).await?;
    let mut payload = json!({"userId": login.session.id});
    if let Some(cs_id) = &login.cs_id {
        payload["csId"] = json!(cs_id);
    }
    let ack = client.call("login", payload).await?;
    if ack["ok"] != true {
        client.close();
        anyhow::bail!("login refused: {ack}");
    }
    Ok((client, ack))
}
