//! `idle`: many visitors (and a few agents) connect, log in and stay connected without talking.
//! Measures how fast they all get in and what each costs the server in memory. Then the first
//! agent's visitors write a first message each (which starts their conversations on kefu) and
//! the agent checks that it lists them all as online.

use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use serde_json::{Value, json};

use crate::{
    first,
    fleet::{self, Login},
    report::{bytes, latency_line, per, quantiles},
    target::{Session, Sessions, Target, cpu_between, id_text, own_cpu, own_rss},
};

#[derive(Args, Debug)]
pub struct IdleArgs {
    /// Visitors to connect and log in (default 1000, or every visitor of --sessions).
    #[arg(long)]
    visitors: Option<usize>,
    /// Agents the visitors are spread over (default 4, or the agents of --sessions).
    #[arg(long)]
    agents: Option<usize>,
    /// Use the agents and visitors saved by `provision` instead of creating them: the server's
    /// memory before the run is then that of a server that has done nothing but start.
    #[arg(long)]
    sessions: Option<std::path::PathBuf>,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Seconds to hold every connection open before measuring memory.
    #[arg(long, default_value_t = 5)]
    hold: u64,
    /// Seconds after which connections not yet logged in are given up.
    #[arg(long, default_value_t = 600)]
    deadline: u64,
    /// Skip the presence check: the first agent's visitors each write a first message (after
    /// the memory is measured), then that agent asks, over a fresh connection, which of its
    /// visitors are online.
    #[arg(long)]
    no_presence_check: bool,
}

pub async fn run(target: &Target, args: &IdleArgs, as_json: bool) -> anyhow::Result<bool> {
    let provisioning = Instant::now();
    let (agents, visitors) = match &args.sessions {
        Some(path) => {
            let mut saved = Sessions::load(path)?;
            let visitors = args.visitors.unwrap_or(saved.visitors.len());
            let agents = args.agents.unwrap_or(saved.agents.len());
            if visitors > saved.visitors.len() || agents > saved.agents.len() {
                bail!(
                    "{} holds {} agents and {} visitors",
                    path.display(),
                    saved.agents.len(),
                    saved.visitors.len()
                );
            }
            saved.visitors.truncate(visitors);
            saved.agents.truncate(agents);
            (saved.agents, saved.visitors)
        }
        None => {
            let (agents, visitors) = (args.agents.unwrap_or(4), args.visitors.unwrap_or(1000));
            let capacity = fleet::most_per_agent(visitors, agents, target.nodes());
            (
                target.create_agents(agents, capacity).await?,
                target.create_visitors(visitors, 32).await?,
            )
        }
    };
    let provision_time = args.sessions.is_none().then(|| provisioning.elapsed());
    if agents.is_empty() {
        bail!("at least one agent is needed");
    }
    let nodes = target.nodes();
    let plan = fleet::plan(&agents, &visitors, nodes)?;
    let pins = &plan.pins;
    let far = Instant::now() + Duration::from_secs(600);
    let mut agent_fleet = fleet::connect(target, &plan.agents, 8, 1, true, far).await;
    if agent_fleet.connected() < agents.len() {
        bail!(
            "agents could not log in: {}",
            agent_fleet.first_error.unwrap_or_default()
        );
    }

    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss_before, bench_before) = (target.rss(), own_rss());
    let (cpu_before, bench_cpu_before) = (target.cpu(), own_cpu());
    let deadline = Instant::now() + Duration::from_secs(args.deadline);
    // The visitors' clients drop pushed events unread: a server that broadcasts presence to
    // everyone would otherwise fill the load generator's memory, not its own.
    let mut fleet =
        fleet::connect(target, &plan.visitors, args.concurrency, 1, true, deadline).await;
    let cpu = cpu_between(cpu_before, target.cpu());
    let bench_cpu = cpu_between(bench_cpu_before, own_cpu());
    let connect_time = fleet.elapsed;
    let share = |cpu: Option<Duration>| cpu.map(|c| c.as_secs_f64() / connect_time.as_secs_f64());
    let connected = fleet.connected();
    let rate = connected as f64 / fleet.elapsed.as_secs_f64();

    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    let (rss_after, bench_after) = (target.rss(), own_rss());
    let presence = if args.no_presence_check {
        Value::Null
    } else {
        // An agent's members are the customers whose conversations it holds, and on kefu a
        // conversation starts with the customer's first message: the first agent's visitors
        // write one now, after the memory was measured.
        let writers: Vec<first::Writer> = (0..visitors.len())
            .filter(|&i| pins[i].1 == 0)
            .filter_map(|i| {
                let (client, _) = fleet.clients[i].as_ref()?;
                Some(first::Writer {
                    client,
                    id: &visitors[i].id,
                    agent: &agents[0].id,
                })
            })
            .collect();
        let written = first::send(&writers, 64).await;
        let mine: Vec<&str> = writers.iter().map(|w| w.id).collect();
        let mut check = presence_check(target, &agents[0], 0, &mine).await;
        check["first_messages_failed"] = json!(written.tally.total());
        check
    };
    fleet.close_all();
    agent_fleet.close_all();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after_close = target.rss();

    let rss_per_connection = per(rss_before, rss_after, connected);
    let bench_per_connection = per(bench_before, bench_after, connected);
    let cpu_per_connection = cpu
        .filter(|_| connected > 0)
        .map(|cpu| cpu.as_secs_f64() * 1e6 / connected as f64);
    let report = json!({
        "scenario": "idle",
        "visitors": visitors.len(), "agents": agents.len(), "concurrency": args.concurrency,
        "provision_seconds": provision_time.map(|t| t.as_secs_f64()),
        "connected": connected, "failed": fleet.failed, "unfinished": fleet.unfinished,
        "first_error": fleet.first_error,
        "connect_seconds": fleet.elapsed.as_secs_f64(),
        "connections_per_second": rate,
        "connect_latency_us": quantiles(&fleet.latency),
        "server_cpu_us_per_connection": cpu_per_connection,
        "server_cpu_share": share(cpu), "bench_cpu_share": share(bench_cpu),
        "server_rss_bytes": {"before": rss_before, "after": rss_after, "after_close": rss_after_close},
        "server_rss_per_connection_bytes": rss_per_connection,
        "bench_rss_bytes": {"before": bench_before, "after": bench_after},
        "bench_rss_per_connection_bytes": bench_per_connection,
        "presence": presence,
    });
    if as_json {
        println!("{report}");
    } else {
        println!(
            "idle: {} visitors over {} agents, {} connecting at once",
            visitors.len(),
            agents.len(),
            args.concurrency
        );
        if let Some(time) = provision_time {
            println!("  provisioned over REST in {:.1} s", time.as_secs_f64());
        }
        println!(
            "  connected and logged in {connected} in {:.2} s ({rate:.0}/s); failed {}, unfinished {}",
            fleet.elapsed.as_secs_f64(),
            fleet.failed,
            fleet.unfinished
        );
        if let Some(error) = &fleet.first_error {
            println!("  first error: {error}");
        }
        println!("{}", latency_line("connect+login", &fleet.latency));
        if let Some(per_connection) = cpu_per_connection {
            println!(
                "  server CPU       {per_connection:.0} µs per connection, {:.0}% of a core (load generator {:.0}%)",
                share(cpu).unwrap_or(0.0) * 100.0,
                share(bench_cpu).unwrap_or(0.0) * 100.0
            );
        }
        println!(
            "  server RSS       {} before, {} after ({} per connection), {} after closing",
            bytes(rss_before),
            bytes(rss_after),
            bytes(rss_per_connection.map(|b| b.max(0.0) as u64)),
            bytes(rss_after_close)
        );
        println!(
            "  bench RSS        {} before, {} after ({} per connection)",
            bytes(bench_before),
            bytes(bench_after),
            bytes(bench_per_connection.map(|b| b.max(0.0) as u64))
        );
        println!("  presence         {presence}");
    }
    Ok(fleet.failed == 0 && fleet.unfinished == 0)
}

/// Logs `agent` in over a fresh connection to `node` and asks `all_member`: how many of
/// `expected` (the visitors routed to it that are connected) it lists, and how many of those as
/// online.
pub async fn presence_check(
    target: &Target,
    agent: &Session,
    node: usize,
    expected: &[&str],
) -> Value {
    let login = Login {
        session: agent.clone(),
        node,
        cs_id: None,
    };
    let result = async {
        let (mut client, _) = fleet::log_in(target, usize::MAX, &login, false).await?;
        let ack = client.call("all_member", Value::Null).await?;
        let members = match ack.get("users") {
            Some(users) => users.clone(),
            None if ack.is_array() => ack,
            None => {
                client
                    .expect("myUsersList", Duration::from_secs(10))
                    .await?
            }
        };
        client.close();
        anyhow::Ok(members)
    }
    .await;
    let members = match result {
        Ok(Value::Array(members)) => members,
        Ok(other) => return json!({"error": format!("unexpected all_member answer: {other}")}),
        Err(error) => return json!({"error": format!("{error:#}")}),
    };
    let expected: std::collections::HashSet<&str> = expected.iter().copied().collect();
    // A member without an `online` flag comes from a server that lists only connected members.
    let flagged = members.iter().any(|m| m.get("online").is_some());
    let online = members
        .iter()
        .filter(|m| m.get("online").is_none_or(|o| o == true))
        .filter_map(|m| id_text(&m["id"]))
        .filter(|id| expected.contains(&id.as_str()))
        .count();
    json!({"members": members.len(), "online": online, "expected": expected.len(), "online_flag": flagged})
}
