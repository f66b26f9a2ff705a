//! `queue`: visitors log in and write their first message while no agent is online, so that
//! every conversation waits; then the agents sign in at once and the queue drains. Measures how
//! long until every visitor was told `conversation_assigned`, the server's CPU per assignment,
//! the agents' login latency (a login must not wait for the drain), and the `queue_position`
//! events each customer got, per second, while waiting and while the queue drained.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::bail;
use clap::Args;
use futures_util::{StreamExt, stream, stream::FuturesUnordered};
use serde_json::{Value, json};

use crate::{
    attempt::{self, Tally},
    chat::{self, MARK_LEN},
    first::listen,
    fleet::{self, Login},
    provision,
    report::{bytes, duration, histogram, latency_line, quantiles},
    target::{Target, cpu_between},
};

#[derive(Args, Debug)]
pub struct QueueArgs {
    /// Visitors who write while no agent is online (default 1000, or every visitor of
    /// --sessions).
    #[arg(long)]
    visitors: Option<usize>,
    /// Agents who then sign in at once (default 10, or every agent of --sessions).
    #[arg(long)]
    agents: Option<usize>,
    /// Conversations each agent may hold, set with `PATCH /api/agents/{id}` (default: the
    /// visitors' share, rounded up, so that the queue drains whole).
    #[arg(long)]
    capacity: Option<usize>,
    /// Use the agents and visitors saved by `provision` (none of them signed in) instead of
    /// creating them over REST.
    #[arg(long)]
    sessions: Option<PathBuf>,
    /// Connections opened at once while the visitors connect and log in.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Seconds the queue waits, every first message answered, before the agents sign in.
    #[arg(long, default_value_t = 5)]
    wait: u64,
    /// Seconds after the agents' logins within which every visitor must be assigned.
    #[arg(long, default_value_t = 120)]
    drain_timeout: u64,
    /// Bytes of content per first message (at least 41).
    #[arg(long, default_value_t = 64)]
    size: usize,
}

/// How long a handshake, a login or a first message may take.
const ACK_TIMEOUT: Duration = Duration::from_secs(60);
/// Two `queue_position` events of one customer closer than this, as the load generator reads
/// them, break the promise of at most one a second (the 100 ms spare is for reading late).
const POSITION_GAP: Duration = Duration::from_millis(900);

/// `queue_position` events per customer per second over one phase: each customer's count over
/// its time in the phase (at least a second, so that one event in a short stay is one a
/// second, not a hundred).
#[derive(Default)]
struct Rates {
    events: usize,
    customers: usize,
    sum: f64,
    max: f64,
}

impl Rates {
    fn add(&mut self, events: usize, stay: Duration) {
        let rate = events as f64 / stay.as_secs_f64().max(1.0);
        self.events += events;
        self.customers += 1;
        self.sum += rate;
        self.max = self.max.max(rate);
    }

    fn json(&self) -> Value {
        json!({
            "events": self.events,
            "customers": self.customers,
            "per_customer_per_second": {
                "mean": (self.customers > 0).then(|| self.sum / self.customers as f64),
                "max": (self.customers > 0).then_some(self.max),
            },
        })
    }
}

/// The gaps between one customer's `queue_position` events: (smallest, under a second, under
/// [`POSITION_GAP`]).
fn gaps(times: &[Instant]) -> (Option<Duration>, usize, usize) {
    let mut smallest: Option<Duration> = None;
    let (mut under_second, mut too_close) = (0, 0);
    for pair in times.windows(2) {
        let gap = pair[1].saturating_duration_since(pair[0]);
        smallest = Some(smallest.map_or(gap, |s| s.min(gap)));
        under_second += usize::from(gap < Duration::from_secs(1));
        too_close += usize::from(gap < POSITION_GAP);
    }
    (smallest, under_second, too_close)
}

pub async fn run(target: &Target, args: &QueueArgs, as_json: bool) -> anyhow::Result<bool> {
    if args.agents == Some(0) || args.visitors == Some(0) || args.capacity == Some(0) {
        bail!("--agents, --visitors and --capacity must be at least 1");
    }
    let size = args.size.max(MARK_LEN);
    let nodes = target.nodes();
    let (agents, visitors) = provision::users(
        target,
        args.sessions.as_deref(),
        (args.agents, args.visitors),
        (10, 1000),
    )
    .await?;
    let capacity = args
        .capacity
        .unwrap_or_else(|| visitors.len().div_ceil(agents.len()));
    let admin = target.admin_token().await?;
    if !target.set_capacity(&admin, &agents, capacity).await? {
        bail!(
            "the server does not limit its agents' conversations (no capacity, no queue): `queue` needs kefu"
        );
    }

    // The visitors log in (asking for no agent) and listen.
    let visitor_logins: Vec<Login> = visitors
        .iter()
        .enumerate()
        .map(|(i, session)| Login {
            session: session.clone(),
            node: i % nodes,
            cs_id: None,
        })
        .collect();
    let far = Instant::now() + Duration::from_secs(600);
    let visitor_fleet =
        fleet::connect(target, &visitor_logins, args.concurrency, 1, false, far).await;
    let connected = visitor_fleet.connected();

    // Every first message at once.
    let epoch = Instant::now();
    let mut first_tally = Tally::default();
    let mut first_latency = histogram();
    let mut pending = FuturesUnordered::new();
    let mut sent_at: Vec<Option<Instant>> = vec![None; visitors.len()];
    let mut listeners = Vec::new();
    let stop = Arc::new(AtomicBool::new(false));
    let assigned_count = Arc::new(AtomicUsize::new(0));
    let cpu_first = target.cpu();
    for (i, pair) in visitor_fleet.clients.into_iter().enumerate() {
        let Some((client, _)) = pair else { continue };
        let payload = json!({
            "senderId": visitors[i].id,
            "content": chat::content(chat::micros_since(epoch, Instant::now()), i, 0, size),
        });
        let now = Instant::now();
        match client.call_later("private_message", payload) {
            Ok(ack) => {
                sent_at[i] = Some(now);
                pending.push(async move { (i, now, tokio::time::timeout(ACK_TIMEOUT, ack).await) });
            }
            Err(_) => first_tally.add(&attempt::Failure::Closed),
        }
        listeners.push((
            i,
            tokio::spawn(listen(client, stop.clone(), assigned_count.clone())),
        ));
    }
    let (mut waiting, mut placed_at_once) = (vec![false; visitors.len()], 0);
    while let Some((i, sent, ack)) = pending.next().await {
        match attempt::judge(ack) {
            Ok(ack) => {
                first_latency.saturating_record(sent.elapsed().as_micros() as u64);
                if ack["started"]["queued"] == true {
                    waiting[i] = true;
                } else {
                    placed_at_once += 1;
                }
            }
            Err(failure) => first_tally.add(&failure),
        }
    }
    let first_time = epoch.elapsed();
    let queued = waiting.iter().filter(|&&w| w).count();
    if queued == 0 && first_tally.total() == 0 && connected > 0 {
        bail!("no first message was queued: the server has no queue (or an agent was online)");
    }

    // The queue waits.
    let wait_started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.wait)).await;
    let cpu_wait = cpu_between(cpu_first, target.cpu());
    let wait_time = wait_started.elapsed();

    // The agents connect, then all sign in at once.
    let mut agent_tally = Tally::default();
    let dialed: Vec<_> = stream::iter(agents.iter().enumerate())
        .map(|(j, agent)| {
            // After the visitors' source addresses.
            attempt::dial(
                target,
                visitors.len() + j,
                j % nodes,
                &agent.token,
                false,
                ACK_TIMEOUT,
            )
        })
        .buffered(args.concurrency.max(1))
        .collect()
        .await;
    let mut dialed_agents = Vec::new();
    for (j, result) in dialed.into_iter().enumerate() {
        match result {
            Ok(client) => dialed_agents.push((j, client)),
            Err(failure) => agent_tally.add(&failure),
        }
    }
    let (rss_before, cpu_before) = (target.rss(), target.cpu());
    let drain_started = Instant::now();
    let mut agent_acks = FuturesUnordered::new();
    for (j, client) in &dialed_agents {
        let now = Instant::now();
        match client.call_later("login", json!({ "userId": agents[*j].id })) {
            Ok(ack) => {
                agent_acks.push(async move { (now, tokio::time::timeout(ACK_TIMEOUT, ack).await) })
            }
            Err(_) => agent_tally.add(&attempt::Failure::Closed),
        }
    }
    let agent_stop = Arc::new(AtomicBool::new(false));
    let agents_heard: Vec<_> = dialed_agents
        .into_iter()
        .map(|(_, client)| {
            tokio::spawn(listen(
                client,
                agent_stop.clone(),
                Arc::new(AtomicUsize::new(0)),
            ))
        })
        .collect();
    let agent_logins = async {
        let mut latency = histogram();
        let mut tally = Tally::default();
        let mut last = None;
        while let Some((sent, ack)) = agent_acks.next().await {
            let now = Instant::now();
            match attempt::judge(ack) {
                Ok(_) => latency.saturating_record(now.duration_since(sent).as_micros() as u64),
                Err(failure) => tally.add(&failure),
            }
            last = Some(now);
        }
        (latency, tally, last)
    };
    let drain_deadline = drain_started + Duration::from_secs(args.drain_timeout);
    let drained = async {
        while assigned_count.load(Ordering::Relaxed) < queued && Instant::now() < drain_deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (Instant::now(), target.cpu())
    };
    let ((agent_latency, agent_login_tally, agent_last), (drained_at, cpu_after)) =
        tokio::join!(agent_logins, drained);
    agent_tally.merge(&agent_login_tally);
    let cpu_drain = cpu_between(cpu_before, cpu_after);
    let rss_after = target.rss();

    // Let a late event or two arrive (a second assignment, a position after the assignment).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    agent_stop.store(true, Ordering::Relaxed);
    let mut per_agent = Vec::new();
    for task in agents_heard {
        let (heard, client) = task.await?;
        per_agent.push(heard.assigned.len());
        client.close();
    }
    let (mut wait_rates, mut drain_rates) = (Rates::default(), Rates::default());
    let mut assign_latency = histogram();
    let mut first_position = histogram();
    let (mut assigned, mut assigned_twice, mut never_told, mut dropped) = (0, 0, 0, 0);
    let mut last_assigned = None::<Instant>;
    let (mut smallest_gap, mut under_second, mut too_close) = (None::<Duration>, 0, 0);
    for (i, task) in listeners {
        let (heard, client) = task.await?;
        client.close();
        dropped += usize::from(heard.closed);
        let Some(sent) = sent_at[i].filter(|_| waiting[i]) else {
            continue;
        };
        let assigned_at = heard.assigned.first().map(|(at, _)| *at);
        if let Some(at) = assigned_at {
            assigned += 1;
            assigned_twice += usize::from(heard.assigned.len() > 1);
            assign_latency.saturating_record(at.duration_since(drain_started).as_micros() as u64);
            last_assigned = Some(last_assigned.map_or(at, |l| l.max(at)));
        }
        let end = assigned_at.unwrap_or(drained_at);
        let in_wait = heard
            .positions
            .iter()
            .filter(|&&t| t < drain_started)
            .count();
        let in_drain = heard
            .positions
            .iter()
            .filter(|&&t| t >= drain_started && t <= end)
            .count();
        wait_rates.add(in_wait, drain_started.saturating_duration_since(sent));
        drain_rates.add(in_drain, end.saturating_duration_since(drain_started));
        match heard.positions.first() {
            Some(at) => first_position
                .saturating_record(at.saturating_duration_since(sent).as_micros() as u64),
            None => never_told += 1,
        }
        let (smallest, under, close) = gaps(&heard.positions);
        if let Some(gap) = smallest {
            smallest_gap = Some(smallest_gap.map_or(gap, |s| s.min(gap)));
        }
        under_second += under;
        too_close += close;
    }
    let unassigned = queued - assigned;
    let over_capacity = per_agent.iter().filter(|&&n| n > capacity).count();
    let drain_time = last_assigned.map(|at| at.duration_since(drain_started));
    let cpu_per_assignment = cpu_drain
        .filter(|_| assigned > 0)
        .map(|c| c.as_secs_f64() * 1e6 / assigned as f64);
    let report = json!({
        "scenario": "queue",
        "visitors": visitors.len(), "agents": agents.len(), "capacity": capacity, "nodes": nodes,
        "visitor_logins": {
            "connected": connected, "failed": visitor_fleet.failed,
            "unfinished": visitor_fleet.unfinished, "first_error": visitor_fleet.first_error,
            "seconds": visitor_fleet.elapsed.as_secs_f64(),
            "latency_us": quantiles(&visitor_fleet.latency),
        },
        "first_messages": {
            "sent": sent_at.iter().filter(|s| s.is_some()).count(),
            "queued": queued, "placed_at_once": placed_at_once,
            "seconds": first_time.as_secs_f64(),
            "ack_latency_us": quantiles(&first_latency),
            "failures": first_tally.json(),
        },
        "wait_seconds": wait_time.as_secs_f64(),
        "server_cpu_share_while_waiting": cpu_wait
            .map(|c| c.as_secs_f64() / (first_time + wait_time).as_secs_f64()),
        "agent_logins": {
            "sent": agents.len(),
            "ok": agent_latency.len(),
            "seconds_to_last_ack": agent_last.map(|at| at.duration_since(drain_started).as_secs_f64()),
            "latency_us": quantiles(&agent_latency),
            "failures": agent_tally.json(),
        },
        "drain": {
            "waiting": queued, "assigned": assigned, "unassigned": unassigned,
            "assigned_twice": assigned_twice,
            // From the first agent login sent to the last visitor told `conversation_assigned`.
            "seconds": drain_time.map(|d| d.as_secs_f64()),
            "timed_out": unassigned > 0,
            "assign_latency_us": quantiles(&assign_latency),
            "most_per_agent": per_agent.iter().max(),
            "agents_over_capacity": over_capacity,
        },
        "server_cpu_seconds_drain": cpu_drain.map(|c| c.as_secs_f64()),
        "server_cpu_us_per_assignment": cpu_per_assignment,
        "queue_position": {
            "wait": wait_rates.json(),
            "drain": drain_rates.json(),
            "first_after_us": quantiles(&first_position),
            "never_told": never_told,
            "min_gap_ms": smallest_gap.map(|g| g.as_secs_f64() * 1e3),
            "gaps_under_1s": under_second,
            "gaps_under_900ms": too_close,
        },
        "dropped_visitors": dropped,
        "server_rss_bytes": {"before_drain": rss_before, "after_drain": rss_after},
    });
    if as_json {
        println!("{report}");
    } else {
        println!(
            "queue: {} visitors write while no agent is online, then {} agents of capacity {capacity} sign in at once",
            visitors.len(),
            agents.len()
        );
        println!(
            "  visitors logged in {connected} in {:.2} s; failed {}, unfinished {}",
            visitor_fleet.elapsed.as_secs_f64(),
            visitor_fleet.failed,
            visitor_fleet.unfinished
        );
        if let Some(error) = &visitor_fleet.first_error {
            println!("  first error: {error}");
        }
        println!(
            "  first messages   {queued} queued, {placed_at_once} placed at once, in {:.2} s; {}",
            first_time.as_secs_f64(),
            first_tally.line()
        );
        println!("{}", latency_line("first msg ack", &first_latency));
        println!(
            "  agents' logins   {} of {}; {}",
            agent_latency.len(),
            agents.len(),
            agent_tally.line()
        );
        println!("{}", latency_line("agent login ack", &agent_latency));
        println!(
            "  drain            {assigned} of {queued} assigned in {}; unassigned {unassigned}, assigned twice {assigned_twice}, agents over capacity {over_capacity}",
            drain_time.map_or("n/a".to_owned(), |d| format!("{:.2} s", d.as_secs_f64()))
        );
        println!("{}", latency_line("assigned after", &assign_latency));
        if let Some(cpu) = cpu_per_assignment {
            println!(
                "  server CPU       {} per assignment during the drain",
                duration(cpu as u64)
            );
        }
        println!(
            "  queue_position   per customer per second: waiting mean {:.2} max {:.2}; draining mean {:.2} max {:.2}",
            wait_rates.sum / wait_rates.customers.max(1) as f64,
            wait_rates.max,
            drain_rates.sum / drain_rates.customers.max(1) as f64,
            drain_rates.max
        );
        println!(
            "  queue_position   never told {never_told}, gaps under 1 s {under_second} (under 0.9 s {too_close}), smallest gap {}",
            smallest_gap.map_or("n/a".to_owned(), |g| duration(g.as_micros() as u64))
        );
        println!("{}", latency_line("first position", &first_position));
        println!(
            "  server RSS       {} before the drain, {} after",
            bytes(rss_before),
            bytes(rss_after)
        );
    }
    Ok(visitor_fleet.failed + visitor_fleet.unfinished == 0
        && first_tally.total() == 0
        && placed_at_once == 0
        && agent_tally.total() == 0
        && unassigned == 0
        && assigned_twice == 0
        && over_capacity == 0
        && never_told == 0
        && too_close == 0
        && dropped == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_in_a_short_stay_counts_as_one_a_second() {
        let mut rates = Rates::default();
        rates.add(1, Duration::from_millis(50));
        rates.add(3, Duration::from_secs(6));
        assert_eq!(rates.max, 1.0);
        assert_eq!(rates.events, 4);
        assert!((rates.sum / 2.0 - 0.75).abs() < 1e-9);
    }

    #[test]
    fn events_closer_than_a_second_are_counted_and_the_closest_named() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let (smallest, under, close) = gaps(&[at(0), at(1000), at(1950), at(2500), at(4000)]);
        assert_eq!(smallest, Some(Duration::from_millis(550)));
        assert_eq!(under, 2);
        assert_eq!(close, 1);
        assert_eq!(gaps(&[at(0)]), (None, 0, 0));
    }
}
