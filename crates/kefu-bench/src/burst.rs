//! `burst`: visitors and agents connect, a few hundred handshakes at a time, then every `login`
//! is sent at once, as when a sale starts and every open page signs in. Every login is
//! accounted for: answered, refused (by its error code), or never answered. With
//! `--first-message`, each visitor also writes its first message the moment its login is
//! answered, and those are accounted for the same way, up to their delivery to the agent.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::bail;
use clap::Args;
use futures_util::{StreamExt, stream, stream::FuturesUnordered};
use hdrhistogram::Histogram;
use kefu_wire::Client;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::{
    attempt::{self, Awaited, Tally},
    chat::{self, MARK_LEN},
    first, fleet, provision,
    report::{bytes, duration, histogram, latency_line, quantiles},
    target::{Target, cpu_between, own_cpu},
};

#[derive(Args, Debug)]
pub struct BurstArgs {
    /// Visitors (default 1000, or every visitor of --sessions).
    #[arg(long)]
    visitors: Option<usize>,
    /// Agents; each visitor asks for one at login, as in `chat` (default 10, or every agent of
    /// --sessions).
    #[arg(long)]
    agents: Option<usize>,
    /// Use the agents and visitors saved by `provision` instead of creating them over REST.
    #[arg(long)]
    sessions: Option<PathBuf>,
    /// Handshakes in flight at once while connecting; the logins then all go at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Every visitor also sends its first message as soon as its login is answered (logins and
    /// first messages: the minute a sale starts).
    #[arg(long)]
    first_message: bool,
    /// Bytes of content per first message (at least 41).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Seconds a login or a first message may wait for its ack before it counts as unanswered.
    #[arg(long, default_value_t = 120)]
    ack_timeout: u64,
}

/// How long a handshake may take before it counts as failed.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// After the last ack, deliveries that have not all arrived get this long without progress.
const SETTLE: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sent {
    Login,
    FirstMessage,
}

async fn awaited(
    kind: Sent,
    i: usize,
    sent: Instant,
    ack: oneshot::Receiver<Value>,
    timeout: Duration,
) -> (Sent, usize, Instant, Awaited) {
    (kind, i, sent, tokio::time::timeout(timeout, ack).await)
}

/// Acks of one kind of event sent in a burst.
struct Burst {
    sent: usize,
    ok: usize,
    tally: Tally,
    latency: Histogram<u64>,
    first_sent: Option<Instant>,
    last_ack: Option<Instant>,
    last_ok: Option<Instant>,
}

impl Burst {
    fn new() -> Self {
        Self {
            sent: 0,
            ok: 0,
            tally: Tally::default(),
            latency: histogram(),
            first_sent: None,
            last_ack: None,
            last_ok: None,
        }
    }

    fn sending(&mut self, at: Instant) {
        self.sent += 1;
        self.first_sent.get_or_insert(at);
    }

    fn answered(&mut self, sent: Instant, now: Instant, result: &Result<Value, attempt::Failure>) {
        match result {
            Ok(_) => {
                self.ok += 1;
                self.latency
                    .saturating_record(now.duration_since(sent).as_micros() as u64);
                self.last_ok = Some(now);
            }
            Err(failure) => self.tally.add(failure),
        }
        if !matches!(result, Err(attempt::Failure::NoAck)) {
            self.last_ack = Some(now);
        }
    }

    /// From the first sent to `at`, in seconds.
    fn seconds_to(&self, at: Option<Instant>) -> Option<f64> {
        Some(at?.duration_since(self.first_sent?).as_secs_f64())
    }

    fn json(&self) -> Value {
        json!({
            "sent": self.sent,
            "ok": self.ok,
            "seconds_to_last_ack": self.seconds_to(self.last_ack),
            "seconds_to_last_ok": self.seconds_to(self.last_ok),
            "latency_us": quantiles(&self.latency),
            "failures": self.tally.json(),
        })
    }

    fn lines(&self, name: &str, short: &str) -> String {
        let seconds = |at| {
            self.seconds_to(at)
                .map_or("n/a".to_owned(), |s| format!("{s:.2} s"))
        };
        format!(
            "  {name}: {} sent, {} answered ok; last ack {} after the first was sent (last ok {})\n  {name}: {}\n{}",
            self.sent,
            self.ok,
            seconds(self.last_ack),
            seconds(self.last_ok),
            self.tally.line(),
            latency_line(&format!("{short} ack"), &self.latency),
        )
    }
}

pub async fn run(target: &Target, args: &BurstArgs, as_json: bool) -> anyhow::Result<bool> {
    if args.agents == Some(0) || args.visitors == Some(0) {
        bail!("--agents and --visitors must be at least 1");
    }
    let size = args.size.max(MARK_LEN);
    let ack_timeout = Duration::from_secs(args.ack_timeout);
    let (agents, visitors) = provision::users(
        target,
        args.sessions.as_deref(),
        (args.agents, args.visitors),
        (10, 1000),
    )
    .await?;
    let plan = fleet::plan(&agents, &visitors, target.nodes())?;
    let logins: Vec<&fleet::Login> = plan.agents.iter().chain(&plan.visitors).collect();
    let agent_count = agents.len();

    // Every connection first, without logging in.
    let connect_started = Instant::now();
    let mut connect_tally = Tally::default();
    let mut connect_latency = histogram();
    let mut clients: Vec<Option<Client>> = (0..logins.len()).map(|_| None).collect();
    let mut dialed = stream::iter(logins.iter().enumerate())
        .map(|(i, login)| async move {
            // Agents read their deliveries when visitors write to them; nobody reads the rest.
            let discard = !(args.first_message && i < agent_count);
            let began = Instant::now();
            let result = attempt::dial(
                target,
                i,
                login.node,
                &login.session.token,
                discard,
                HANDSHAKE_TIMEOUT,
            )
            .await;
            (i, began.elapsed(), result)
        })
        .buffer_unordered(args.concurrency.max(1));
    while let Some((i, took, result)) = dialed.next().await {
        match result {
            Ok(client) => {
                connect_latency.saturating_record(took.as_micros() as u64);
                clients[i] = Some(client);
            }
            Err(failure) => connect_tally.add(&failure),
        }
    }
    drop(dialed);
    let connect_time = connect_started.elapsed();
    let connected = clients.iter().filter(|c| c.is_some()).count();

    // Let the last handshakes' work settle, so that the burst is measured alone.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss_before, cpu_before, bench_cpu_before) = (target.rss(), target.cpu(), own_cpu());

    let epoch = Instant::now();
    let mut login = Burst::new();
    let mut message = Burst::new();
    let mut pending = FuturesUnordered::new();
    for (i, client) in clients.iter().enumerate() {
        let Some(client) = client else { continue };
        let mut payload = json!({ "userId": logins[i].session.id });
        if let Some(cs_id) = &logins[i].cs_id {
            payload["csId"] = json!(cs_id);
        }
        let now = Instant::now();
        login.sending(now);
        match client.call_later("login", payload) {
            Ok(ack) => pending.push(awaited(Sent::Login, i, now, ack, ack_timeout)),
            Err(_) => login.tally.add(&attempt::Failure::Closed),
        }
    }

    // The agents' connections are read from now on: their logins' acks are already awaited.
    let stop = Arc::new(AtomicBool::new(false));
    let delivered_so_far = Arc::new(AtomicU64::new(0));
    let receivers: Vec<_> = if args.first_message {
        clients[..agent_count]
            .iter_mut()
            .filter_map(Option::take)
            .map(|client| {
                tokio::spawn(chat::receive(
                    client,
                    epoch,
                    stop.clone(),
                    delivered_so_far.clone(),
                ))
            })
            .collect()
    } else {
        Vec::new()
    };

    let mut login_acks: Vec<Option<Value>> = vec![None; logins.len()];
    let mut message_acks: Vec<Option<Value>> = vec![None; logins.len()];
    while let Some((kind, i, sent, ack)) = pending.next().await {
        let now = Instant::now();
        let result = attempt::judge(ack);
        match kind {
            Sent::Login => {
                login.answered(sent, now, &result);
                let Ok(ack) = result else { continue };
                login_acks[i] = Some(ack);
                if !args.first_message || i < agent_count {
                    continue;
                }
                let Some(client) = &clients[i] else { continue };
                let visitor = i - agent_count;
                let agent = &agents[plan.pins[visitor].1].id;
                let payload = json!({
                    "receiverId": agent,
                    "senderId": logins[i].session.id,
                    "content": chat::content(chat::micros_since(epoch, now), visitor, 0, size),
                });
                message.sending(now);
                match client.call_later("private_message", payload) {
                    Ok(ack) => pending.push(awaited(Sent::FirstMessage, i, now, ack, ack_timeout)),
                    Err(_) => message.tally.add(&attempt::Failure::Closed),
                }
            }
            Sent::FirstMessage => {
                message.answered(sent, now, &result);
                message_acks[i] = result.ok();
            }
        }
    }
    let burst_time = epoch.elapsed();
    let cpu = cpu_between(cpu_before, target.cpu());
    let bench_cpu = cpu_between(bench_cpu_before, own_cpu());
    let rss_after = target.rss();

    // Deliveries of the first messages, and where each conversation went.
    let mut first_report = Value::Null;
    let mut first_clean = true;
    if args.first_message {
        let mut last = (delivered_so_far.load(Ordering::Relaxed), Instant::now());
        while last.0 < message.ok as u64 && last.1.elapsed() < SETTLE {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let now = delivered_so_far.load(Ordering::Relaxed);
            if now != last.0 {
                last = (now, Instant::now());
            }
        }
        stop.store(true, Ordering::Relaxed);
        let mut seen = vec![0u32; visitors.len()];
        let mut deliver = histogram();
        for task in receivers {
            let (received, _) = task.await?;
            for (visitor, _, latency) in received.deliveries {
                deliver.saturating_record(latency);
                if let Some(count) = seen.get_mut(visitor) {
                    *count += 1;
                }
            }
        }
        let (mut lost, mut duplicates, mut queued, mut misrouted) = (0, 0, 0, 0);
        let mut first_misrouted = None;
        for (visitor, &count) in seen.iter().enumerate() {
            let i = agent_count + visitor;
            duplicates += count.saturating_sub(1) as usize;
            let Some(ack) = &message_acks[i] else {
                continue;
            };
            lost += usize::from(count == 0);
            queued += usize::from(ack["started"]["queued"] == true);
            let agent = &agents[plan.pins[visitor].1].id;
            let login_ack = login_acks[i].as_ref().unwrap_or(&Value::Null);
            if first::routed_to(login_ack, ack).as_ref() != Some(agent) {
                misrouted += 1;
                first_misrouted.get_or_insert_with(|| {
                    format!("visitor {visitor} asked for agent {agent}: first message {ack}")
                });
            }
        }
        first_clean = message.tally.total() == 0 && lost == 0 && misrouted == 0;
        let mut report = message.json();
        report["delivered"] = json!(message.ok - lost);
        report["lost"] = json!(lost);
        report["duplicates"] = json!(duplicates);
        report["deliver_latency_us"] = quantiles(&deliver);
        report["queued"] = json!(queued);
        report["misrouted"] = json!(misrouted);
        report["first_misrouted"] = json!(first_misrouted);
        first_report = report;
    }
    for client in clients.iter().flatten() {
        client.close();
    }

    let answered = login.ok.max(1) as f64;
    let cpu_us = cpu.map(|c| c.as_secs_f64() * 1e6);
    let report = json!({
        "scenario": "burst",
        "visitors": visitors.len(), "agents": agents.len(), "nodes": target.nodes(),
        "concurrency": args.concurrency, "first_message": args.first_message,
        "connect": {
            "connected": connected,
            "seconds": connect_time.as_secs_f64(),
            "latency_us": quantiles(&connect_latency),
            "failures": connect_tally.json(),
        },
        "logins": login.json(),
        "refused": login.tally.refused_total(),
        "unavailable": login.tally.refused.get("unavailable").copied().unwrap_or(0),
        "first_messages": first_report,
        // From the first login sent to the last ack of anything (first messages included).
        "seconds": burst_time.as_secs_f64(),
        "server_cpu_seconds": cpu.map(|c| c.as_secs_f64()),
        "server_cpu_us_per_login": cpu_us.filter(|_| !args.first_message).map(|c| c / answered),
        "server_cpu_us_per_login_and_message": cpu_us
            .filter(|_| args.first_message)
            .map(|c| c / answered),
        "server_cpu_share": cpu.map(|c| c.as_secs_f64() / burst_time.as_secs_f64()),
        "server_rss_bytes": {"before": rss_before, "after": rss_after},
        "bench_cpu_seconds": bench_cpu.map(|c| c.as_secs_f64()),
    });
    if as_json {
        println!("{report}");
    } else {
        println!(
            "burst: {} visitors and {} agents, {} handshakes at a time, then every login at once{}",
            visitors.len(),
            agents.len(),
            args.concurrency,
            if args.first_message {
                ", each visitor's first message as soon as its login is answered"
            } else {
                ""
            }
        );
        println!(
            "  connected {connected} in {:.2} s; {}",
            connect_time.as_secs_f64(),
            connect_tally.line()
        );
        println!("{}", latency_line("connect", &connect_latency));
        println!("{}", login.lines("login", "login"));
        if args.first_message {
            println!("{}", message.lines("first message", "first msg"));
            println!(
                "  first messages: delivered {}, lost (acked, never delivered) {}, duplicates {}, queued {}, misrouted {}",
                first_report["delivered"],
                first_report["lost"],
                first_report["duplicates"],
                first_report["queued"],
                first_report["misrouted"]
            );
        }
        println!(
            "  burst            {:.2} s from the first login sent to the last ack",
            burst_time.as_secs_f64()
        );
        if let Some(cpu_us) = cpu_us {
            println!(
                "  server CPU       {} in all, {} per {}, {:.0}% of a core",
                duration(cpu_us as u64),
                duration((cpu_us / answered) as u64),
                if args.first_message {
                    "login and first message"
                } else {
                    "login"
                },
                cpu.map_or(0.0, |c| c.as_secs_f64() / burst_time.as_secs_f64()) * 100.0
            );
        }
        println!(
            "  server RSS       {} before, {} after",
            bytes(rss_before),
            bytes(rss_after)
        );
    }
    Ok(connect_tally.total() == 0 && login.tally.total() == 0 && first_clean)
}
