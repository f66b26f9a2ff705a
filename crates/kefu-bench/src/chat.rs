//! `chat`: visitors pinned to agents send `private_message`, in a closed loop (a window of
//! messages in flight per visitor) or an open loop (a fixed total rate, each send on schedule
//! whatever the acks do). Every message carries its send time, its visitor and its number, so
//! each one is accounted for: acked, refused, delivered, delivered twice, or lost. Each
//! visitor's first message is sent, acked and delivered before the measured window (it starts
//! the conversation on kefu, and its ack says which agent took it). With `--visitors-first` the
//! visitors write it before any agent is online: the agents come afterwards, and each visitor
//! then writes to the agent the queue gave it.

use std::{
    collections::VecDeque,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Args;
use futures_util::{StreamExt, stream::FuturesUnordered};
use hdrhistogram::Histogram;
use kefu_wire::Client;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::{
    first, fleet,
    idle::presence_check,
    provision,
    report::{bytes, histogram, latency_line, quantiles, recorded},
    target::{Session, Target, cpu_between, own_cpu, own_rss},
};

#[derive(Args, Debug)]
pub struct ChatArgs {
    /// Visitors sending messages (default 100, or every visitor of --sessions).
    #[arg(long)]
    visitors: Option<usize>,
    /// Agents receiving them, each visitor pinned to one (default 10, or every agent of
    /// --sessions).
    #[arg(long)]
    agents: Option<usize>,
    /// Closed loop: messages in flight per visitor.
    #[arg(long, default_value_t = 4)]
    window: usize,
    /// Open loop: messages per second in total, spread evenly over the visitors, each sent on
    /// schedule whether or not earlier ones were acknowledged (replaces --window).
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds of traffic.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Bytes of content per message (at least 41: the send time, visitor and number come first).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Connections opened at once while setting up.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Use the agents and visitors saved by `provision` instead of creating them over REST.
    #[arg(long)]
    sessions: Option<PathBuf>,
    /// Times a connection is tried (connect and `login`, up to 30 s each) before it counts as
    /// failed, as a client that reconnects would.
    #[arg(long, default_value_t = 1)]
    login_attempts: usize,
    /// Seconds within which every connection must be logged in.
    #[arg(long, default_value_t = 600)]
    deadline: u64,
    /// Once every connection is logged in, write how that went (one JSON object) to this file,
    /// then wait for a line on standard input before sending: a script lines several load
    /// generators up this way, and measures the servers while every connection is held.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// After the traffic, while every connection is still open, this many agents each log in
    /// again over a fresh connection (to another node when there are several) and ask
    /// `all_member`: each must list all its visitors as online.
    #[arg(long, default_value_t = 0)]
    presence_check: usize,
    /// Add the latency histograms' recorded values to the JSON line (`[[µs, count], …]`), so
    /// that the histograms of several load generators can be merged exactly.
    #[arg(long)]
    histograms: bool,
    /// The wrong order of a shop's morning: the visitors connect, log in and write their first
    /// message while no agent is online (on kefu each waits in the queue), then the agents log
    /// in and the queue hands the conversations to agents with room, not necessarily the ones
    /// asked for. Each visitor then writes to the agent its `conversation_assigned` named (a
    /// server without a queue keeps the one asked for). Every visitor must be assigned within
    /// 60 s of the agents' logins (and within --deadline). One --url only.
    #[arg(long)]
    visitors_first: bool,
}

/// How long a message may wait for its ack before it counts as unacknowledged.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// After the last ack, deliveries that have not all arrived get this long without progress.
const SETTLE: Duration = Duration::from_secs(3);
/// With `--visitors-first`: how long after the agents' logins every waiting visitor may take
/// to be assigned.
const ASSIGN_TIMEOUT: Duration = Duration::from_secs(60);

/// What became of a sent message, from its sender's side.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Acked,
    Refused,
    Unacked,
}

/// The head of every message's content: `t:<send µs>:<visitor>:<number>:`.
pub const MARK_LEN: usize = 41;

pub fn content(sent_us: u64, visitor: usize, number: usize, size: usize) -> String {
    let mut text = format!("t:{sent_us:020}:{visitor:07}:{number:09}:");
    text.extend(std::iter::repeat_n('x', size.saturating_sub(MARK_LEN)));
    text
}

/// The mark a visitor wrote into a message's content.
pub fn mark(message: &Value) -> Option<(u64, usize, usize)> {
    let text = message["content"].as_str()?.strip_prefix("t:")?;
    let mut fields = text.splitn(4, ':');
    let sent = fields.next()?.parse().ok()?;
    let visitor = fields.next()?.parse().ok()?;
    let number = fields.next()?.parse().ok()?;
    Some((sent, visitor, number))
}

struct Sender {
    client: Client,
    index: usize,
    id: String,
    agent: String,
}

/// What one visitor sent. Latencies are kept as plain numbers and put into one histogram at the
/// end: a histogram each (≈170 KiB) would cost more than the connection itself when one process
/// drives tens of thousands of visitors.
struct Sent {
    outcomes: Vec<Outcome>,
    ack_us: Vec<u64>,
    first_refusal: Option<String>,
}

pub struct Received {
    /// (visitor, number, send→deliver µs) of every marked message.
    pub deliveries: Vec<(usize, usize, u64)>,
    pub unmarked: u64,
    /// `resync` events: the server saying that deliveries may have been missed.
    resyncs: u64,
}

pub async fn run(target: &Target, args: &ChatArgs, as_json: bool) -> anyhow::Result<bool> {
    if args.agents == Some(0) || args.visitors == Some(0) || args.window == 0 {
        bail!("--agents, --visitors and --window must be at least 1");
    }
    if args.rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
        bail!("--rate must be above 0");
    }
    let size = args.size.max(MARK_LEN);
    let setup_deadline = Instant::now() + Duration::from_secs(args.deadline);
    let nodes = target.nodes();
    if args.visitors_first && nodes > 1 {
        bail!(
            "--visitors-first takes one --url: the queue gives a conversation to any agent with room, \
             on any node, so the visitors could not be kept to agents on other nodes"
        );
    }

    let (agents, visitors) = provision::users(
        target,
        args.sessions.as_deref(),
        (args.agents, args.visitors),
        (10, 100),
    )
    .await?;
    let plan = fleet::plan(&agents, &visitors, nodes)?;
    let pins = &plan.pins;
    let bench_cpu_before = own_cpu();
    let connect_stalls = Stalls::watch();
    let connect_started = (Instant::now(), unix_now());
    // Normally the agents are online before the first visitor; with --visitors-first they come
    // last, after every visitor's first message.
    let early_agents = match args.visitors_first {
        false => Some(connect_agents(target, &plan.agents, args, setup_deadline).await?),
        true => None,
    };
    // The visitors' events are dropped unread, unless they must tell where the queue sent them.
    let mut visitor_fleet = connect_visitors(
        target,
        &plan.visitors,
        args,
        setup_deadline,
        !args.visitors_first,
    )
    .await?;
    let (mut visitor_clients, login_acks): (Vec<Client>, Vec<Value>) =
        std::mem::take(&mut visitor_fleet.clients)
            .into_iter()
            .map(|pair| pair.context("a visitor is missing"))
            .collect::<anyhow::Result<Vec<(Client, Value)>>>()?
            .into_iter()
            .unzip();
    let mut early_first = None;
    let mut assigned = None;
    let agent_fleet = match early_agents {
        Some(fleet) => fleet,
        None => {
            let first_messages =
                send_first(&visitor_clients, &visitors, &agents, pins, args.concurrency).await?;
            // Where each conversation went, when the server said so at once: on kefu those
            // that waited (`started.csId` null) learn it from `conversation_assigned`; a server
            // without `started` keeps the agent asked for at login.
            let routed: Vec<Option<String>> = login_acks
                .iter()
                .zip(&first_messages.acks)
                .map(|(login, ack)| first::routed_to(login, ack.as_ref().unwrap_or(&Value::Null)))
                .collect();
            let timeout =
                ASSIGN_TIMEOUT.min(setup_deadline.saturating_duration_since(Instant::now()));
            let (fleet, clients, assignments) = first::await_assignments(
                visitor_clients,
                routed,
                connect_agents(target, &plan.agents, args, setup_deadline),
                timeout,
            )
            .await?;
            visitor_clients = clients;
            early_first = Some(first_messages);
            assigned = Some(assignments);
            fleet
        }
    };
    let connect_time = agent_fleet.elapsed + visitor_fleet.elapsed;
    let mut connect_latency = agent_fleet.latency.clone();
    connect_latency.add(&visitor_fleet.latency).ok();
    let mut connect = json!({
        "connected": agents.len() + visitors.len(),
        "retried": agent_fleet.retried + visitor_fleet.retried,
        "agents": agents.len(), "visitors": visitors.len(),
        "seconds": connect_time.as_secs_f64(),
        "started_unix": connect_started.1,
        "finished_unix": unix_now(),
        "latency_us": quantiles(&connect_latency),
        "bench_cpu_seconds": cpu_between(bench_cpu_before, own_cpu()).map(|c| c.as_secs_f64()),
        "bench_rss_bytes": own_rss(),
        "bench_stalls_us": quantiles(&connect_stalls.stop().await),
    });
    // Each visitor's first message starts its conversation (on kefu, where a login writes
    // nothing) and tells where it went: sent and delivered before the measured window, so that
    // the window measures the steady state.
    let mut first_messages = match early_first {
        Some(first_messages) => first_messages,
        None => send_first(&visitor_clients, &visitors, &agents, pins, args.concurrency).await?,
    };
    // The agent each visitor writes to, by its index in `agents`: the one it asked for, or with
    // --visitors-first the one the queue gave it.
    let agent_of: Vec<usize> = match &assigned {
        None => pins.iter().map(|&(_, agent)| agent).collect(),
        Some(assignments) => assignments.agents(&agents)?,
    };
    // Every agent logged in, or the run stopped above: in the order of `agents`.
    let mut agent_clients: Vec<Client> = agent_fleet
        .clients
        .into_iter()
        .flatten()
        .map(|(client, _)| client)
        .collect();
    let mut mine: Vec<Vec<&str>> = vec![Vec::new(); agents.len()];
    for (i, &agent) in agent_of.iter().enumerate() {
        mine[agent].push(&visitors[i].id);
    }
    first_messages.delivered = match &assigned {
        None => {
            first::await_deliveries(
                agent_clients
                    .iter_mut()
                    .zip(mine.iter().map(Vec::len))
                    .collect(),
            )
            .await
        }
        // A first message that waited was delivered live to nobody: its agent finds it among
        // its members.
        Some(_) => first::in_member_lists(&agent_clients, &mine).await,
    };
    let first_lost = first_messages
        .acked()
        .saturating_sub(first_messages.delivered);
    connect["first_messages"] = first_messages.json();
    // With --visitors-first: the visitors the queue gave another agent than the one asked for.
    let elsewhere = agent_of
        .iter()
        .zip(pins)
        .filter(|(agent, (_, asked))| agent != &asked)
        .count();
    if let Some(assignments) = &assigned {
        connect["assignment"] = assignments.json(&first_messages, &mine, elsewhere);
    }

    let mut senders = Vec::new();
    let mut misrouted = (0, None);
    for (index, ((client, login_ack), message_ack)) in visitor_clients
        .into_iter()
        .zip(login_acks)
        .zip(&first_messages.acks)
        .enumerate()
    {
        let agent = &agents[agent_of[index]].id;
        let message_ack = message_ack.as_ref().unwrap_or(&Value::Null);
        if assigned.is_none() && first::routed_to(&login_ack, message_ack).as_ref() != Some(agent) {
            misrouted.0 += 1;
            misrouted.1.get_or_insert_with(|| {
                format!(
                    "visitor {index} asked for agent {agent}: login {login_ack}, first message {message_ack}"
                )
            });
        }
        senders.push(Sender {
            client,
            index,
            id: visitors[index].id.clone(),
            agent: agent.clone(),
        });
    }
    if let (count, Some(first)) = misrouted {
        bail!("{count} visitors were not routed to the agent they asked for; the first: {first}");
    }
    if let Some(path) = &args.ready_file {
        wait_for_start(path, &connect).await?;
    }

    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let delivered_so_far = Arc::new(AtomicU64::new(0));
    let receivers: Vec<_> = agent_clients
        .into_iter()
        .map(|client| {
            tokio::spawn(receive(
                client,
                epoch,
                stop.clone(),
                delivered_so_far.clone(),
            ))
        })
        .collect();

    let rss_before = target.rss();
    let cpu_before = target.cpu();
    let bench_cpu_before = own_cpu();
    let traffic_stalls = Stalls::watch();
    let started = Instant::now();
    let stop_sending = started + Duration::from_secs(args.duration);
    let visitor_count = senders.len();
    let sending: Vec<_> = senders
        .into_iter()
        .map(|sender| match args.rate {
            None => tokio::spawn(closed_loop(sender, args.window, size, epoch, stop_sending)),
            Some(rate) => {
                let period = Duration::from_secs_f64(visitor_count as f64 / rate);
                // Spread the visitors' schedules over one period rather than all at once.
                let first = started + period.mul_f64(sender.index as f64 / visitor_count as f64);
                tokio::spawn(open_loop(sender, period, first, size, epoch, stop_sending))
            }
        })
        .collect();
    let mut sent = Vec::new();
    let mut visitor_clients = Vec::new();
    for task in sending {
        let (s, client) = task.await?;
        sent.push(s);
        visitor_clients.push(client);
    }
    let traffic_time = started.elapsed();
    let total_sent: usize = sent.iter().map(|s| s.outcomes.len()).sum();

    // Let the deliveries still on their way arrive.
    let mut last = (delivered_so_far.load(Ordering::Relaxed), Instant::now());
    loop {
        let now = delivered_so_far.load(Ordering::Relaxed);
        if now >= total_sent as u64 {
            break;
        }
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() >= SETTLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let measured_time = started.elapsed();
    let cpu = cpu_between(cpu_before, target.cpu());
    let bench_cpu = cpu_between(bench_cpu_before, own_cpu());
    let traffic_stalls = traffic_stalls.stop().await;
    let rss_after = target.rss();

    // Every connection is still open: presence as agents see it, and who the server dropped.
    let mut presence = Vec::new();
    for (j, agent) in agents.iter().enumerate().take(args.presence_check) {
        presence.push(presence_check(target, agent, j + 1, &mine[j]).await);
    }
    let dropped_visitors = visitor_clients.iter().filter(|c| c.is_closed()).count();
    stop.store(true, Ordering::Relaxed);
    let mut received = Vec::new();
    // By agent, in the order of `agents`: every agent logged in, or the run stopped above.
    let mut agent_dropped = Vec::new();
    for task in receivers {
        let (r, dropped) = task.await?;
        received.push(r);
        agent_dropped.push(dropped);
    }
    let dropped_agents = agent_dropped.iter().filter(|&&d| d).count();

    // Account for every message.
    let mut counts: Vec<Vec<u32>> = sent.iter().map(|s| vec![0; s.outcomes.len()]).collect();
    let mut unknown = 0u64;
    let mut deliver = histogram();
    for r in &received {
        unknown += r.unmarked;
        for &(visitor, number, latency) in &r.deliveries {
            deliver.saturating_record(latency);
            match counts.get_mut(visitor).and_then(|c| c.get_mut(number)) {
                Some(count) => *count += 1,
                None => unknown += 1,
            }
        }
    }
    let mut acks = histogram();
    let (mut acked, mut refused, mut unacked) = (0u64, 0u64, 0u64);
    let (mut delivered, mut duplicates, mut lost, mut not_delivered) = (0u64, 0u64, 0u64, 0u64);
    let mut first_refusal = None;
    // Lost while the agent's connection stayed up: not explained by a dropped connection.
    let mut lost_to_connected = 0u64;
    let mut missing: Vec<(usize, Vec<usize>)> = Vec::new();
    for (visitor, (s, counts)) in sent.iter().zip(&counts).enumerate() {
        let agent_stayed = !agent_dropped
            .get(agent_of[visitor])
            .copied()
            .unwrap_or(true);
        for &latency in &s.ack_us {
            acks.saturating_record(latency);
        }
        if first_refusal.is_none() {
            first_refusal.clone_from(&s.first_refusal);
        }
        for (outcome, &count) in s.outcomes.iter().zip(counts) {
            match outcome {
                Outcome::Acked => acked += 1,
                Outcome::Refused => refused += 1,
                Outcome::Unacked => unacked += 1,
            }
            if count == 0 {
                not_delivered += 1;
                if *outcome == Outcome::Acked {
                    lost += 1;
                    lost_to_connected += u64::from(agent_stayed);
                }
            } else {
                delivered += 1;
                duplicates += u64::from(count - 1);
            }
        }
        let unseen: Vec<usize> = (0..s.outcomes.len())
            .filter(|&n| s.outcomes[n] == Outcome::Acked && counts[n] == 0)
            .collect();
        if !unseen.is_empty() {
            missing.push((visitor, unseen));
        }
    }
    // What a client does when told to resync (or on a gap in `seq`): read the history. The
    // messages not delivered live are looked for there, through their senders' connections.
    let recovered = recover(&visitor_clients, &missing).await;
    for client in &visitor_clients {
        client.close();
    }
    let resyncs: u64 = received.iter().map(|r| r.resyncs).sum();
    let rate = delivered as f64 / traffic_time.as_secs_f64();
    let cpu_per_message = cpu
        .filter(|_| delivered > 0)
        .map(|cpu| cpu.as_secs_f64() * 1e6 / delivered as f64);
    let cpu_share = cpu.map(|cpu| cpu.as_secs_f64() / measured_time.as_secs_f64());

    let mut report = json!({
        "scenario": "chat",
        "mode": if args.rate.is_some() { "open" } else { "closed" },
        "visitors_first": args.visitors_first,
        "visitors": visitors.len(), "agents": agents.len(), "nodes": nodes,
        "window": args.rate.is_none().then_some(args.window),
        "rate": args.rate,
        "size": size,
        "seconds": traffic_time.as_secs_f64(),
        "sent": total_sent, "acked": acked, "refused": refused, "unacked": unacked,
        "first_refusal": first_refusal,
        "delivered": delivered, "duplicates": duplicates, "unknown_deliveries": unknown,
        "lost": lost, "lost_to_connected_agents": lost_to_connected,
        // Of the lost, those found in the history afterwards (stored, not pushed live), and
        // the `resync` events the agents got, which tell a client to look there.
        "recovered_from_history": recovered,
        "lost_after_history": lost.saturating_sub(recovered),
        "resyncs_to_agents": resyncs,
        "sent_not_delivered": not_delivered,
        "delivered_per_second": rate,
        "ack_latency_us": quantiles(&acks),
        "deliver_latency_us": quantiles(&deliver),
        "server_cpu_us_per_message": cpu_per_message,
        "server_cpu_share": cpu_share,
        "server_rss_bytes": {"before": rss_before, "after": rss_after},
        "bench_rss_bytes": own_rss(),
        "bench_cpu_seconds": bench_cpu.map(|c| c.as_secs_f64()),
        // How late a 100 ms timer of the load generator fired: its own stalls, which delay
        // what it sends, reads and answers (pings included).
        "bench_stalls_us": quantiles(&traffic_stalls),
        "connect": connect,
        "dropped": {"visitors": dropped_visitors, "agents": dropped_agents},
        "presence": presence,
    });
    if args.histograms {
        report["ack_latency_recorded"] = recorded(&acks);
        report["deliver_latency_recorded"] = recorded(&deliver);
    }
    if as_json {
        println!("{report}");
    } else {
        match args.rate {
            None => println!(
                "chat, closed loop: {} visitors, {} agents, window {}, {size} B messages, {:.1} s",
                visitors.len(),
                agents.len(),
                args.window,
                traffic_time.as_secs_f64()
            ),
            Some(r) => println!(
                "chat, open loop: {} visitors, {} agents, {r} messages/s offered, {size} B messages, {:.1} s",
                visitors.len(),
                agents.len(),
                traffic_time.as_secs_f64()
            ),
        }
        println!(
            "  connected and logged in {} in {:.2} s, over {nodes} node(s){}",
            agents.len() + visitors.len(),
            connect_time.as_secs_f64(),
            if args.visitors_first {
                ", the visitors first"
            } else {
                ""
            }
        );
        println!("{}", latency_line("connect+login", &connect_latency));
        match &assigned {
            None => println!(
                "  first messages   {} acked in {:.2} s before the traffic, {} delivered",
                first_messages.acked(),
                first_messages.elapsed.as_secs_f64(),
                first_messages.delivered
            ),
            Some(assignments) => {
                println!(
                    "  first messages   {} acked in {:.2} s before any agent was online, {} found in their agents' member lists",
                    first_messages.acked(),
                    first_messages.elapsed.as_secs_f64(),
                    first_messages.delivered
                );
                println!(
                    "  assignment       {}",
                    assignments.line(&first_messages, &mine, elsewhere)
                );
            }
        }
        println!(
            "  sent {total_sent}, acked {acked}, refused {refused}, unacked {unacked}, delivered {delivered}, duplicates {duplicates}"
        );
        println!(
            "  lost (acked, never delivered) {lost} ({lost_to_connected} to agents that stayed connected), sent but not delivered {not_delivered}"
        );
        if lost > 0 {
            println!(
                "  of the lost, found in the history afterwards {recovered}; resync events to agents {resyncs}"
            );
        }
        if let Some(refusal) = &first_refusal {
            println!("  first refusal: {refusal}");
        }
        println!("  delivered/s      {rate:.0}");
        println!("{}", latency_line("send→ack", &acks));
        println!("{}", latency_line("send→deliver", &deliver));
        if let Some(cpu) = cpu_per_message {
            println!(
                "  server CPU       {cpu:.1} µs per delivered message, {:.0}% of a core",
                cpu_share.unwrap_or(0.0) * 100.0
            );
        }
        println!(
            "  server RSS       {} before, {} after",
            bytes(rss_before),
            bytes(rss_after)
        );
        println!(
            "  closed by the server during the run: {dropped_visitors} visitors, {dropped_agents} agents"
        );
        for check in &presence {
            println!("  presence         {check}");
        }
    }
    if lost > 0 {
        eprintln!(
            "{lost} acknowledged messages were never delivered live ({recovered} found in the history afterwards, {resyncs} resync events to agents)"
        );
    }
    if first_lost > 0 {
        eprintln!("{first_lost} acknowledged first messages never reached their agents");
    }
    if dropped_visitors + dropped_agents > 0 {
        eprintln!(
            "the server closed {dropped_visitors} visitors' and {dropped_agents} agents' connections during the run"
        );
    }
    let presence_right = presence
        .iter()
        .all(|check| check["expected"].is_u64() && check["online"] == check["expected"]);
    if !presence_right {
        eprintln!("an agent does not see all its visitors online");
    }
    // A message not pushed live is acceptable only where the protocol says so: the client was
    // told to resync, and the history has it.
    let none_lost = lost == 0 || (resyncs > 0 && recovered == lost);
    Ok(none_lost && first_lost == 0 && dropped_visitors + dropped_agents == 0 && presence_right)
}

/// Connects and logs in every agent; all of them, or an error.
async fn connect_agents(
    target: &Target,
    logins: &[fleet::Login],
    args: &ChatArgs,
    deadline: Instant,
) -> anyhow::Result<fleet::Fleet> {
    let agent_fleet = fleet::connect(target, logins, 8, args.login_attempts, false, deadline).await;
    if agent_fleet.connected() < logins.len() {
        bail!(
            "agents could not log in: {}",
            agent_fleet.first_error.unwrap_or_default()
        );
    }
    Ok(agent_fleet)
}

/// Connects and logs in every visitor; all of them, or an error.
async fn connect_visitors(
    target: &Target,
    logins: &[fleet::Login],
    args: &ChatArgs,
    deadline: Instant,
    discard_events: bool,
) -> anyhow::Result<fleet::Fleet> {
    let visitor_fleet = fleet::connect(
        target,
        logins,
        args.concurrency,
        args.login_attempts,
        discard_events,
        deadline,
    )
    .await;
    if visitor_fleet.connected() < logins.len() {
        bail!(
            "{} visitors could not log in ({} failed, {} unfinished): {}",
            logins.len() - visitor_fleet.connected(),
            visitor_fleet.failed,
            visitor_fleet.unfinished,
            visitor_fleet.first_error.unwrap_or_default()
        );
    }
    Ok(visitor_fleet)
}

/// Every visitor's first message, to the agent it is pinned to; all acked, or an error.
async fn send_first(
    clients: &[Client],
    visitors: &[Session],
    agents: &[Session],
    pins: &[(usize, usize)],
    concurrency: usize,
) -> anyhow::Result<first::FirstMessages> {
    let writers: Vec<first::Writer> = clients
        .iter()
        .enumerate()
        .map(|(i, client)| first::Writer {
            client,
            id: &visitors[i].id,
            agent: &agents[pins[i].1].id,
        })
        .collect();
    let first_messages = first::send(&writers, concurrency).await;
    if first_messages.tally.total() > 0 {
        bail!(
            "{} of {} visitors' first messages failed: {}; the first: {}",
            first_messages.tally.total(),
            visitors.len(),
            first_messages.tally.line(),
            first_messages.tally.first.clone().unwrap_or_default()
        );
    }
    Ok(first_messages)
}

/// How many of the `missing` messages (by visitor, their numbers) each visitor finds in its
/// conversation's history.
async fn recover(visitors: &[Client], missing: &[(usize, Vec<usize>)]) -> u64 {
    futures_util::stream::iter(missing)
        .map(|(visitor, numbers)| async move {
            let mut found = 0u64;
            let mut after = 0u64;
            // A page at a time while `hasMore`; a run sends a few messages per visitor.
            for _ in 0..100 {
                let Ok(page) = visitors[*visitor]
                    .call("history", json!({"afterSeq": after, "limit": 100}))
                    .await
                else {
                    break;
                };
                let messages = page["messages"].as_array().cloned().unwrap_or_default();
                for message in &messages {
                    if let Some((_, v, n)) = mark(message)
                        && v == *visitor
                        && numbers.contains(&n)
                    {
                        found += 1;
                    }
                    after = after.max(message["seq"].as_u64().unwrap_or(after));
                }
                if page["hasMore"] != true || messages.is_empty() {
                    break;
                }
            }
            found
        })
        .buffer_unordered(64)
        .fold(0, |sum, found| async move { sum + found })
        .await
}

/// Watches the load generator's own runtime: how late a 100 ms timer fires.
struct Stalls {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Histogram<u64>>,
}

impl Stalls {
    fn watch() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut late = histogram();
            let tick = Duration::from_millis(100);
            while !stopped.load(Ordering::Relaxed) {
                let asked = Instant::now();
                tokio::time::sleep(tick).await;
                late.saturating_record(asked.elapsed().saturating_sub(tick).as_micros() as u64);
            }
            late
        });
        Self { stop, task }
    }

    async fn stop(self) -> Histogram<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_else(|_| histogram())
    }
}

/// Seconds since the Unix epoch: load generators in several processes share this clock.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |t| t.as_secs_f64())
}

/// Says that every connection is logged in (the file appears whole, by a rename), then waits for
/// a line, or the end, of standard input.
async fn wait_for_start(path: &std::path::Path, connect: &Value) -> anyhow::Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, connect.to_string())
        .with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))?;
    let mut line = String::new();
    tokio::io::AsyncBufReadExt::read_line(
        &mut tokio::io::BufReader::new(tokio::io::stdin()),
        &mut line,
    )
    .await
    .context("reading standard input")?;
    Ok(())
}

pub fn micros_since(epoch: Instant, at: Instant) -> u64 {
    at.saturating_duration_since(epoch).as_micros() as u64
}

fn payload(sender: &Sender, sent_us: u64, number: usize, size: usize) -> Value {
    // receiverId and senderId as clients of the reference design send them: the server checks
    // that senderId is the sender's own id.
    json!({
        "receiverId": sender.agent,
        "senderId": sender.id,
        "content": content(sent_us, sender.index, number, size),
    })
}

impl Sent {
    fn new() -> Self {
        Self {
            outcomes: Vec::new(),
            ack_us: Vec::new(),
            first_refusal: None,
        }
    }

    fn settle(&mut self, number: usize, sent_us: u64, epoch: Instant, ack: AckResult) {
        self.outcomes[number] = match ack {
            Ok(Ok(ack)) if ack["ok"] == true => {
                self.ack_us
                    .push(micros_since(epoch, Instant::now()).saturating_sub(sent_us));
                Outcome::Acked
            }
            Ok(Ok(ack)) => {
                self.first_refusal.get_or_insert_with(|| ack.to_string());
                Outcome::Refused
            }
            _ => Outcome::Unacked,
        };
    }
}

type AckResult = Result<Result<Value, oneshot::error::RecvError>, tokio::time::error::Elapsed>;

async fn closed_loop(
    sender: Sender,
    window: usize,
    size: usize,
    epoch: Instant,
    stop_sending: Instant,
) -> (Sent, Client) {
    let mut sent = Sent::new();
    let mut in_flight = VecDeque::new();
    let mut open = true;
    loop {
        while open && in_flight.len() < window && Instant::now() < stop_sending {
            let number = sent.outcomes.len();
            let sent_us = micros_since(epoch, Instant::now());
            match sender
                .client
                .call_later("private_message", payload(&sender, sent_us, number, size))
            {
                Ok(ack) => {
                    sent.outcomes.push(Outcome::Unacked);
                    in_flight.push_back((number, sent_us, ack));
                }
                Err(_) => open = false,
            }
        }
        let Some((number, sent_us, ack)) = in_flight.pop_front() else {
            break;
        };
        let ack = tokio::time::timeout(ACK_TIMEOUT, ack).await;
        sent.settle(number, sent_us, epoch, ack);
    }
    // The connection stays open until the run is over: the caller closes it.
    (sent, sender.client)
}

async fn open_loop(
    sender: Sender,
    period: Duration,
    first: Instant,
    size: usize,
    epoch: Instant,
    stop_sending: Instant,
) -> (Sent, Client) {
    let mut sent = Sent::new();
    let mut ticks = tokio::time::interval_at(first.into(), period);
    // A late tick is sent at once and timed from when it was due: latency counts the delay.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut in_flight = FuturesUnordered::new();
    let mut sending = true;
    // With a long period (one message a minute), the next tick may come long after the end.
    let end = tokio::time::sleep_until(stop_sending.into());
    tokio::pin!(end);
    loop {
        tokio::select! {
            biased;
            Some((number, sent_us, ack)) = in_flight.next() => {
                sent.settle(number, sent_us, epoch, ack);
            }
            due = ticks.tick(), if sending => {
                let due = due.into_std();
                if due >= stop_sending {
                    sending = false;
                    continue;
                }
                let number = sent.outcomes.len();
                let sent_us = micros_since(epoch, due);
                match sender.client.call_later(
                    "private_message",
                    payload(&sender, sent_us, number, size),
                ) {
                    Ok(ack) => {
                        sent.outcomes.push(Outcome::Unacked);
                        in_flight.push(async move {
                            (number, sent_us, tokio::time::timeout(ACK_TIMEOUT, ack).await)
                        });
                    }
                    Err(_) => sending = false,
                }
            }
            () = &mut end, if sending => sending = false,
            else => break,
        }
    }
    // The connection stays open until the run is over: the caller closes it.
    (sent, sender.client)
}

pub async fn receive(
    mut client: Client,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    delivered: Arc<AtomicU64>,
) -> (Received, bool) {
    let mut received = Received {
        deliveries: Vec::new(),
        unmarked: 0,
        resyncs: 0,
    };
    loop {
        match client.next_event(Duration::from_millis(100)).await {
            Some(event) if event.name == "new_private_message" => {
                let now = micros_since(epoch, Instant::now());
                match mark(&event.data) {
                    Some((sent_us, visitor, number)) => {
                        received
                            .deliveries
                            .push((visitor, number, now.saturating_sub(sent_us)));
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    None => received.unmarked += 1,
                }
            }
            Some(event) if event.name == "resync" => received.resyncs += 1,
            Some(_) => {}
            None if stop.load(Ordering::Relaxed) => break,
            None if client.is_closed() => {
                // Nothing more can arrive; wait for the end without spinning.
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                break;
            }
            None => {}
        }
    }
    // Whether the server closed the connection before the end of the run.
    let dropped = client.is_closed();
    client.close();
    (received, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_mark_survives_the_round_trip() {
        let text = content(1_234_567, 42, 7, 64);
        assert_eq!(text.len(), 64);
        assert_eq!(mark(&json!({ "content": text })), Some((1_234_567, 42, 7)));
    }

    #[test]
    fn a_short_size_still_carries_the_whole_mark() {
        let text = content(1, 2, 3, 0);
        assert_eq!(text.len(), MARK_LEN);
        assert_eq!(mark(&json!({ "content": text })), Some((1, 2, 3)));
    }

    #[test]
    fn content_without_a_mark_is_not_counted_as_ours() {
        assert_eq!(mark(&json!({ "content": "hello" })), None);
        assert_eq!(mark(&json!({ "text": "t:1:2:3:" })), None);
    }
}
