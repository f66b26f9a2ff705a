//! `chat`: visitors pinned to agents send `private_message`, in a closed loop (a window of
//! messages in flight per visitor) or an open loop (a fixed total rate, each send on schedule
//! whatever the acks do). Every message carries its send time, its visitor and its number, so
//! each one is accounted for: acked, refused, delivered, delivered twice, or lost.

use std::{
    collections::VecDeque,
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
    fleet::{self, Login},
    report::{bytes, histogram, latency_line, quantiles},
    target::{Target, cpu_between, id_text, own_rss},
};

#[derive(Args, Debug)]
pub struct ChatArgs {
    /// Visitors sending messages.
    #[arg(long, default_value_t = 100)]
    visitors: usize,
    /// Agents receiving them (each visitor is pinned to one).
    #[arg(long, default_value_t = 10)]
    agents: usize,
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
}

/// How long a message may wait for its ack before it counts as unacknowledged.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// After the last ack, deliveries that have not all arrived get this long without progress.
const SETTLE: Duration = Duration::from_secs(3);

/// What became of a sent message, from its sender's side.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Acked,
    Refused,
    Unacked,
}

/// The head of every message's content: `t:<send µs>:<visitor>:<number>:`.
const MARK_LEN: usize = 41;

fn content(sent_us: u64, visitor: usize, number: usize, size: usize) -> String {
    let mut text = format!("t:{sent_us:020}:{visitor:07}:{number:09}:");
    text.extend(std::iter::repeat_n('x', size.saturating_sub(MARK_LEN)));
    text
}

/// The mark a visitor wrote into a message's content.
fn mark(message: &Value) -> Option<(u64, usize, usize)> {
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

struct Sent {
    outcomes: Vec<Outcome>,
    acks: Histogram<u64>,
    first_refusal: Option<String>,
}

struct Received {
    deliveries: Vec<(usize, usize)>,
    latency: Histogram<u64>,
    unmarked: u64,
}

pub async fn run(target: &Target, args: &ChatArgs, as_json: bool) -> anyhow::Result<bool> {
    if args.agents == 0 || args.visitors == 0 || args.window == 0 {
        bail!("--agents, --visitors and --window must be at least 1");
    }
    if args.rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
        bail!("--rate must be above 0");
    }
    let size = args.size.max(MARK_LEN);
    let setup_deadline = Instant::now() + Duration::from_secs(600);

    let agents = target.create_agents(args.agents).await?;
    let logins: Vec<Login> = agents
        .iter()
        .map(|session| Login {
            session: session.clone(),
            cs_id: None,
        })
        .collect();
    let agent_fleet = fleet::connect(target, &logins, 8, false, setup_deadline).await;
    if agent_fleet.connected() < agents.len() {
        bail!(
            "agents could not log in: {}",
            agent_fleet.first_error.unwrap_or_default()
        );
    }
    let visitors = target.create_visitors(args.visitors, 32).await?;
    let logins: Vec<Login> = visitors
        .iter()
        .enumerate()
        .map(|(i, session)| Login {
            session: session.clone(),
            cs_id: Some(agents[i % agents.len()].id.clone()),
        })
        .collect();
    let visitor_fleet =
        fleet::connect(target, &logins, args.concurrency, true, setup_deadline).await;
    if visitor_fleet.connected() < visitors.len() {
        bail!(
            "{} visitors could not log in: {}",
            visitors.len() - visitor_fleet.connected(),
            visitor_fleet.first_error.unwrap_or_default()
        );
    }
    let mut senders = Vec::new();
    for (index, pair) in visitor_fleet.clients.into_iter().enumerate() {
        let (client, ack) = pair.context("a visitor is missing")?;
        let agent = &agents[index % agents.len()].id;
        if id_text(&ack["csId"]).as_ref() != Some(agent) {
            bail!("visitor {index} was not routed to agent {agent}: {ack}");
        }
        senders.push(Sender {
            client,
            index,
            id: visitors[index].id.clone(),
            agent: agent.clone(),
        });
    }

    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let delivered_so_far = Arc::new(AtomicU64::new(0));
    let receivers: Vec<_> = agent_fleet
        .clients
        .into_iter()
        .flatten()
        .map(|(client, _)| {
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
    for task in sending {
        sent.push(task.await?);
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
    let rss_after = target.rss();
    stop.store(true, Ordering::Relaxed);
    let mut received = Vec::new();
    for task in receivers {
        received.push(task.await?);
    }

    // Account for every message.
    let mut counts: Vec<Vec<u32>> = sent.iter().map(|s| vec![0; s.outcomes.len()]).collect();
    let mut unknown = 0u64;
    let mut deliver = histogram();
    for r in &received {
        deliver.add(&r.latency).ok();
        unknown += r.unmarked;
        for &(visitor, number) in &r.deliveries {
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
    for (s, counts) in sent.iter().zip(&counts) {
        acks.add(&s.acks).ok();
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
                }
            } else {
                delivered += 1;
                duplicates += u64::from(count - 1);
            }
        }
    }
    let rate = delivered as f64 / traffic_time.as_secs_f64();
    let cpu_per_message = cpu
        .filter(|_| delivered > 0)
        .map(|cpu| cpu.as_secs_f64() * 1e6 / delivered as f64);
    let cpu_share = cpu.map(|cpu| cpu.as_secs_f64() / measured_time.as_secs_f64());

    let report = json!({
        "scenario": "chat",
        "mode": if args.rate.is_some() { "open" } else { "closed" },
        "visitors": args.visitors, "agents": args.agents,
        "window": args.rate.is_none().then_some(args.window),
        "rate": args.rate,
        "size": size,
        "seconds": traffic_time.as_secs_f64(),
        "sent": total_sent, "acked": acked, "refused": refused, "unacked": unacked,
        "first_refusal": first_refusal,
        "delivered": delivered, "duplicates": duplicates, "unknown_deliveries": unknown,
        "lost": lost, "sent_not_delivered": not_delivered,
        "delivered_per_second": rate,
        "ack_latency_us": quantiles(&acks),
        "deliver_latency_us": quantiles(&deliver),
        "server_cpu_us_per_message": cpu_per_message,
        "server_cpu_share": cpu_share,
        "server_rss_bytes": {"before": rss_before, "after": rss_after},
        "bench_rss_bytes": own_rss(),
    });
    if as_json {
        println!("{report}");
    } else {
        match args.rate {
            None => println!(
                "chat, closed loop: {} visitors, {} agents, window {}, {size} B messages, {:.1} s",
                args.visitors,
                args.agents,
                args.window,
                traffic_time.as_secs_f64()
            ),
            Some(r) => println!(
                "chat, open loop: {} visitors, {} agents, {r} messages/s offered, {size} B messages, {:.1} s",
                args.visitors,
                args.agents,
                traffic_time.as_secs_f64()
            ),
        }
        println!(
            "  sent {total_sent}, acked {acked}, refused {refused}, unacked {unacked}, delivered {delivered}, duplicates {duplicates}"
        );
        println!("  lost (acked, never delivered) {lost}, sent but not delivered {not_delivered}");
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
    }
    if lost > 0 {
        eprintln!("{lost} acknowledged messages were never delivered");
    }
    Ok(lost == 0)
}

fn micros_since(epoch: Instant, at: Instant) -> u64 {
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
            acks: histogram(),
            first_refusal: None,
        }
    }

    fn settle(&mut self, number: usize, sent_us: u64, epoch: Instant, ack: AckResult) {
        self.outcomes[number] = match ack {
            Ok(Ok(ack)) if ack["ok"] == true => {
                self.acks
                    .saturating_record(micros_since(epoch, Instant::now()).saturating_sub(sent_us));
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
) -> Sent {
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
    sender.client.close();
    sent
}

async fn open_loop(
    sender: Sender,
    period: Duration,
    first: Instant,
    size: usize,
    epoch: Instant,
    stop_sending: Instant,
) -> Sent {
    let mut sent = Sent::new();
    let mut ticks = tokio::time::interval_at(first.into(), period);
    // A late tick is sent at once and timed from when it was due: latency counts the delay.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut in_flight = FuturesUnordered::new();
    let mut sending = true;
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
            else => break,
        }
    }
    sender.client.close();
    sent
}

async fn receive(
    mut client: Client,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    delivered: Arc<AtomicU64>,
) -> Received {
    let mut received = Received {
        deliveries: Vec::new(),
        latency: histogram(),
        unmarked: 0,
    };
    loop {
        match client.next_event(Duration::from_millis(100)).await {
            Some(event) if event.name == "new_private_message" => {
                let now = micros_since(epoch, Instant::now());
                match mark(&event.data) {
                    Some((sent_us, visitor, number)) => {
                        received
                            .latency
                            .saturating_record(now.saturating_sub(sent_us));
                        received.deliveries.push((visitor, number));
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    None => received.unmarked += 1,
                }
            }
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
    client.close();
    received
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
