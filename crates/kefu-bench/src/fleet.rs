//! Many connections at once: connect, authenticate, `login`, a bounded number in flight.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
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

/// One connection to open: who, on which node, and what its `login` says.
#[derive(Clone)]
pub struct Login {
    pub session: Session,
    /// The index of the node (`--url`) to connect to.
    pub node: usize,
    pub cs_id: Option<String>,
}

/// Where a visitor goes when `agents` agents are spread over `nodes` nodes (agent j on node
/// j mod N): its node, and the index of its agent. The visitor `i` connects to node i mod N and
/// is routed to an agent on the next node, so that with several nodes every message it sends
/// crosses from one node to another; with one node, visitor i goes to agent i mod `agents`.
/// `None` when some node has no agent (fewer agents than nodes).
pub fn pin(visitor: usize, agents: usize, nodes: usize) -> Option<(usize, usize)> {
    let nodes = nodes.max(1);
    let node = visitor % nodes;
    let agent_node = (node + 1) % nodes;
    // Agents on `agent_node`: agent_node, agent_node + N, agent_node + 2N, …
    let on_node = agents.saturating_sub(agent_node).div_ceil(nodes);
    if on_node == 0 {
        return None;
    }
    Some((node, agent_node + nodes * ((visitor / nodes) % on_node)))
}

/// Where every connection goes: agent j to node j mod N, each visitor to its node and its agent
/// as [`pin`] gives them.
pub struct Plan {
    /// Per visitor: (its node, the index of its agent).
    pub pins: Vec<(usize, usize)>,
    pub agents: Vec<Login>,
    pub visitors: Vec<Login>,
}

pub fn plan(agents: &[Session], visitors: &[Session], nodes: usize) -> anyhow::Result<Plan> {
    let nodes = nodes.max(1);
    let pins: Vec<(usize, usize)> = (0..visitors.len())
        .map(|i| pin(i, agents.len(), nodes))
        .collect::<Option<_>>()
        .ok_or_else(|| anyhow!("with several --urls, at least one agent per node is needed"))?;
    let agent_logins = agents
        .iter()
        .enumerate()
        .map(|(j, session)| Login {
            session: session.clone(),
            node: j % nodes,
            cs_id: None,
        })
        .collect();
    let visitor_logins = visitors
        .iter()
        .zip(&pins)
        .map(|(session, &(node, agent))| Login {
            session: session.clone(),
            node,
            cs_id: Some(agents[agent].id.clone()),
        })
        .collect();
    Ok(Plan {
        pins,
        agents: agent_logins,
        visitors: visitor_logins,
    })
}

pub struct Fleet {
    /// The logged-in clients with their `login` acks, by the index of their [`Login`]; `None`
    /// where connecting or logging in failed or the deadline passed first.
    pub clients: Vec<Option<(Client, Value)>>,
    /// Connect + handshake + `login` ack, per connection, in microseconds.
    pub latency: Histogram<u64>,
    pub failed: usize,
    /// Connections that logged in (or failed) only after more than one attempt.
    pub retried: usize,
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

/// Connects and logs in every login, `concurrency` at a time, each up to `attempts` times (as a
/// client that reconnects), giving up on what is not done by `deadline`.
pub async fn connect(
    target: &Target,
    logins: &[Login],
    concurrency: usize,
    attempts: usize,
    discard_events: bool,
    deadline: Instant,
) -> Fleet {
    let started = Instant::now();
    let mut fleet = Fleet {
        clients: (0..logins.len()).map(|_| None).collect(),
        latency: histogram(),
        failed: 0,
        retried: 0,
        unfinished: 0,
        first_error: None,
        elapsed: Duration::ZERO,
    };
    let mut attempts = stream::iter(logins.iter().enumerate())
        .map(|(i, login)| async move {
            let mut tries = 0;
            loop {
                tries += 1;
                let began = Instant::now();
                let result = log_in(target, i, login, discard_events).await;
                if result.is_ok() || tries >= attempts.max(1) {
                    break (i, began.elapsed(), tries - 1, result);
                }
            }
        })
        .buffer_unordered(concurrency.max(1));
    let mut finished = 0;
    loop {
        let next = tokio::time::timeout_at(deadline.into(), attempts.next()).await;
        let Ok(Some((i, took, retries, result))) = next else {
            break;
        };
        finished += 1;
        fleet.retried += usize::from(retries > 0);
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
/// after [`LOGIN_TIMEOUT`]. A connection that fails to log in is closed: left open, it would
/// count as one more connection of its user.
pub async fn log_in(
    target: &Target,
    i: usize,
    login: &Login,
    discard_events: bool,
) -> anyhow::Result<(Client, Value)> {
    let deadline = tokio::time::Instant::now() + LOGIN_TIMEOUT;
    let dial = Dial {
        local_addr: target.source(i),
        discard_events,
        ..Dial::default()
    };
    let url = target.node_url(login.node);
    let auth = json!({"token": login.session.token});
    let client = tokio::time::timeout_at(deadline, Client::dial(url, auth, &dial))
        .await
        .map_err(|_| anyhow!("not connected within {LOGIN_TIMEOUT:?}"))??;
    let mut payload = json!({"userId": login.session.id});
    if let Some(cs_id) = &login.cs_id {
        payload["csId"] = json!(cs_id);
    }
    let ack = match client.call_later("login", payload) {
        Ok(ack) => tokio::time::timeout_at(deadline, ack).await,
        Err(error) => {
            client.close();
            return Err(error);
        }
    };
    match ack {
        Ok(Ok(ack)) if ack["ok"] == true => Ok((client, ack)),
        Ok(Ok(ack)) => {
            client.close();
            bail!("login refused: {ack}")
        }
        Ok(Err(_)) => bail!("connection closed before the login ack"),
        Err(_) => {
            client.close();
            bail!("no login ack within {LOGIN_TIMEOUT:?} of connecting")
        }
    }
}

/// The most visitors [`pin`] gives one agent: the capacity each agent needs.
pub fn most_per_agent(visitors: usize, agents: usize, nodes: usize) -> usize {
    let mut load = vec![0usize; agents];
    for i in 0..visitors {
        if let Some((_, agent)) = pin(i, agents, nodes) {
            load[agent] += 1;
        }
    }
    load.into_iter().max().unwrap_or(0).max(1)
}

#[cfg(test)]
mod tests {
    use super::{most_per_agent, pin};

    #[test]
    fn the_capacity_needed_is_the_busiest_agents_share() {
        assert_eq!(most_per_agent(10, 3, 1), 4);
        assert_eq!(most_per_agent(16_499, 168, 6), 99);
        assert_eq!(most_per_agent(0, 3, 1), 1);
    }

    #[test]
    fn on_one_node_visitors_take_the_agents_in_turn() {
        let agents: Vec<usize> = (0..7).map(|i| pin(i, 3, 1).unwrap().1).collect();
        assert_eq!(agents, [0, 1, 2, 0, 1, 2, 0]);
        assert!((0..7).all(|i| pin(i, 3, 1).unwrap().0 == 0));
    }

    #[test]
    fn on_several_nodes_every_visitor_has_an_agent_on_another_node() {
        let (agents, nodes) = (12, 6);
        let mut load = vec![0; agents];
        for i in 0..6000 {
            let (node, agent) = pin(i, agents, nodes).unwrap();
            assert_eq!(node, i % nodes);
            assert_ne!(
                agent % nodes,
                node,
                "visitor {i} shares node {node} with its agent"
            );
            load[agent] += 1;
        }
        assert!(load.iter().all(|&n| n == 500), "{load:?}");
    }

    #[test]
    fn uneven_agents_still_cover_every_node() {
        for i in 0..100 {
            let (node, agent) = pin(i, 7, 3).unwrap();
            assert!(agent < 7);
            assert_eq!(agent % 3, (node + 1) % 3);
        }
    }

    #[test]
    fn fewer_agents_than_nodes_leave_some_visitors_without_one() {
        assert_eq!(pin(1, 1, 3), None);
    }
}
