//! `kefu-bench`: drives a running kefu server with chat traffic and reports what it saw.
//!
//! It provisions agents and visitors through the REST API, connects each over WebSocket with a
//! minimal Socket.IO client, pins every visitor to one agent, and has the visitors send
//! `private_message` with an ack in a closed loop (a window of messages in flight each). It reports
//! delivered messages per second, send→ack and send→deliver latency, lost messages (acked but
//! never delivered), and, given the server's pid, the server's CPU time per delivered message read
//! from `/proc/<pid>/stat`, a figure that stays honest when the load generator is the bottleneck.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;
use hdrhistogram::Histogram;
use kefu_wire::Client;
use serde_json::{Value, json};
use tokio::sync::Mutex;

#[derive(Parser, Debug)]
#[command(version, about = "Load generator for kefu")]
struct Args {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// The admin password, to create the agents.
    #[arg(long, env = "KEFU_ADMIN_PASSWORD")]
    admin_password: String,
    /// The server's process id, for its CPU time per message.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Visitors sending messages.
    #[arg(long, default_value_t = 100)]
    visitors: usize,
    /// Agents receiving them (each visitor is pinned to one).
    #[arg(long, default_value_t = 10)]
    agents: usize,
    /// Messages in flight per visitor.
    #[arg(long, default_value_t = 4)]
    window: usize,
    /// Seconds of traffic.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Bytes of content per message (at least 24).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Print one JSON line instead of a table.
    #[arg(long)]
    json: bool,
}

struct Stats {
    ack: Histogram<u64>,
    deliver: Histogram<u64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.agents == 0 || args.visitors == 0 || args.window == 0 {
        bail!("--agents, --visitors and --window must be at least 1");
    }
    let http = reqwest::Client::new();
    let epoch = Instant::now();
    let admin = post(
        &http,
        &args.url,
        "/api/login",
        json!({"username": "admin", "password": args.admin_password}),
        None,
    )
    .await?;
    let admin = admin["token"].as_str().context("admin login")?.to_owned();

    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
            % 0xffffff
    );
    let mut agents = Vec::new();
    for i in 0..args.agents {
        let username = format!("bench-{run}-{i}");
        let password = "bench-password";
        post(
            &http,
            &args.url,
            "/api/agents",
            json!({"username": username, "password": password}),
            Some(&admin),
        )
        .await?;
        let session = post(
            &http,
            &args.url,
            "/api/login",
            json!({"username": username, "password": password}),
            None,
        )
        .await?;
        let token = session["token"].as_str().context("agent token")?.to_owned();
        let id = session["user"]["id"]
            .as_str()
            .context("agent id")?
            .to_owned();
        let client = Client::connect(&args.url, json!({"token": token})).await?;
        client.call("login", json!({"userId": id})).await?;
        agents.push((client, id));
    }
    let mut visitors = Vec::new();
    for i in 0..args.visitors {
        let session = post(&http, &args.url, "/api/visitors", json!({}), None).await?;
        let id = session["user"]["id"]
            .as_str()
            .context("visitor id")?
            .to_owned();
        let client = Client::connect(&args.url, json!({"token": session["token"]})).await?;
        let agent = &agents[i % agents.len()].1;
        let ack = client
            .call("login", json!({"userId": id, "csId": agent}))
            .await?;
        if ack["csId"] != agent.as_str() {
            bail!("visitor {id} was not routed to agent {agent}: {ack}");
        }
        visitors.push(client);
    }

    let stats = Arc::new(Mutex::new(Stats {
        ack: Histogram::new_with_max(60_000_000, 3)?,
        deliver: Histogram::new_with_max(60_000_000, 3)?,
    }));
    let delivered = Arc::new(AtomicU64::new(0));
    let sending = Arc::new(AtomicBool::new(true));

    let receivers: Vec<_> = agents
        .into_iter()
        .map(|(mut client, _)| {
            let (stats, delivered, sending) = (stats.clone(), delivered.clone(), sending.clone());
            tokio::spawn(async move {
                let mut local = Histogram::<u64>::new_with_max(60_000_000, 3).unwrap();
                loop {
                    let quiet = if sending.load(Ordering::Relaxed) {
                        Duration::from_secs(5)
                    } else {
                        Duration::from_secs(2)
                    };
                    let Some(event) = client.next_event(quiet).await else {
                        break;
                    };
                    if event.name != "new_private_message" {
                        continue;
                    }
                    if let Some(sent) = sent_at(&event.data) {
                        local.saturating_record(micros_since(epoch).saturating_sub(sent));
                    }
                    delivered.fetch_add(1, Ordering::Relaxed);
                }
                stats.lock().await.deliver.add(&local).ok();
            })
        })
        .collect();

    let cpu_before = args.server_pid.map(cpu_ticks).transpose()?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let acked = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let senders: Vec<_> = visitors
        .into_iter()
        .map(|client| {
            let (stats, acked, refused) = (stats.clone(), acked.clone(), refused.clone());
            let (window, size) = (args.window, args.size.max(24));
            tokio::spawn(async move {
                let mut local = Histogram::<u64>::new_with_max(60_000_000, 3).unwrap();
                let mut in_flight = std::collections::VecDeque::new();
                loop {
                    while in_flight.len() < window && Instant::now() < deadline {
                        let sent = micros_since(epoch);
                        let content = format!("t:{sent:020}:{}", "x".repeat(size - 23));
                        match client.call_later("private_message", json!({"content": content})) {
                            Ok(ack) => in_flight.push_back((sent, ack)),
                            Err(_) => break,
                        }
                    }
                    let Some((sent, ack)) = in_flight.pop_front() else {
                        break;
                    };
                    match tokio::time::timeout(Duration::from_secs(30), ack).await {
                        Ok(Ok(ack)) if ack["ok"] == true => {
                            local.saturating_record(micros_since(epoch).saturating_sub(sent));
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                stats.lock().await.ack.add(&local).ok();
                client
            })
        })
        .collect();
    let mut clients = Vec::new();
    for sender in senders {
        clients.push(sender.await?);
    }
    let sending_time = started.elapsed();
    sending.store(false, Ordering::Relaxed);
    for receiver in receivers {
        receiver.await?;
    }
    let cpu_after = args.server_pid.map(cpu_ticks).transpose()?;
    drop(clients);

    let stats = stats.lock().await;
    let (acked, refused, delivered) = (
        acked.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
        delivered.load(Ordering::Relaxed),
    );
    let lost = acked.saturating_sub(delivered);
    let rate = delivered as f64 / sending_time.as_secs_f64();
    let cpu_us_per_message = match (cpu_before, cpu_after) {
        (Some(before), Some(after)) if delivered > 0 => {
            Some((after - before) as f64 * 1e6 / ticks_per_second() / delivered as f64)
        }
        _ => None,
    };
    let quantiles = |h: &Histogram<u64>| json!({"p50": h.value_at_quantile(0.5), "p99": h.value_at_quantile(0.99), "p999": h.value_at_quantile(0.999), "max": h.max()});
    let report = json!({
        "scenario": "chat",
        "visitors": args.visitors, "agents": args.agents, "window": args.window, "size": args.size,
        "seconds": sending_time.as_secs_f64(),
        "acked": acked, "refused": refused, "delivered": delivered, "lost": lost,
        "delivered_per_second": rate,
        "ack_latency_us": quantiles(&stats.ack),
        "deliver_latency_us": quantiles(&stats.deliver),
        "server_cpu_us_per_message": cpu_us_per_message,
    });
    if args.json {
        println!("{report}");
    } else {
        println!(
            "chat: {} visitors, {} agents, window {}, {} B messages, {:.1} s",
            args.visitors,
            args.agents,
            args.window,
            args.size,
            sending_time.as_secs_f64()
        );
        println!("  acked {acked}, refused {refused}, delivered {delivered}, lost {lost}");
        println!("  delivered/s            {rate:>10.0}");
        for (name, h) in [("send→ack", &stats.ack), ("send→deliver", &stats.deliver)] {
            println!(
                "  {name:<14} µs   p50 {:>7}  p99 {:>7}  p99.9 {:>7}  max {:>7}",
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
                h.max()
            );
        }
        if let Some(cpu) = cpu_us_per_message {
            println!("  server CPU / message   {cpu:>7.1} µs");
        }
    }
    if lost > 0 {
        bail!("{lost} acknowledged messages were never delivered");
    }
    Ok(())
}

async fn post(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    body: Value,
    token: Option<&str>,
) -> anyhow::Result<Value> {
    let mut request = http.post(format!("{base}{path}")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("POST {path}"))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("POST {path}: {status} {body}");
    }
    Ok(body)
}

fn micros_since(epoch: Instant) -> u64 {
    epoch.elapsed().as_micros() as u64
}

/// The send time the visitor wrote into the content: `t:<micros>:…`.
fn sent_at(message: &Value) -> Option<u64> {
    message["content"]
        .as_str()?
        .strip_prefix("t:")?
        .get(..20)?
        .parse()
        .ok()
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name may contain spaces; the fields after its closing parenthesis are fixed.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("parsing /proc stat")?
        .1
        .split_whitespace()
        .collect();
    let utime: u64 = fields.get(11).context("utime")?.parse()?;
    let stime: u64 = fields.get(12).context("stime")?.parse()?;
    Ok(utime + stime)
}

fn ticks_per_second() -> f64 {
    // Linux's USER_HZ is 100 on every architecture kefu targets.
    100.0
}
