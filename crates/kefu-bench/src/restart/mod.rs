//! `restart`: visitors and agents hold logged-in connections while the visitors write at a low
//! rate, every message acked and noted, until they see their connection close (so that the acks
//! sent as the server dies are checked too); the server is killed (`kill -9`) and started again
//! by a command, and every client reconnects as socket.io-client would (its backoff, with
//! jitter) and logs in again. Measures the time from the restart until all are back, every
//! refused handshake and login by its code, and the acked messages lost: each visitor reads its
//! history afterwards (`afterSeq`), where every message acked before the kill must be.

use std::{
    path::PathBuf,
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Args;
use futures_util::StreamExt;
use serde_json::{Value, json};

mod client;

use client::{Holder, Shared, hold, missing_from_history};

use crate::{
    attempt::Tally,
    chat::MARK_LEN,
    fleet, lifecycle, provision,
    reconnect::Schedule,
    report::{bytes, duration, histogram, latency_line, quantiles},
    target::{Target, cpu_of, rss_of},
};

#[derive(Args, Debug)]
pub struct RestartArgs {
    /// Visitors holding a connection and writing (default 1000, or every visitor of --sessions).
    #[arg(long)]
    visitors: Option<usize>,
    /// Agents holding a connection; each visitor writes to one (default 10, or every agent of
    /// --sessions).
    #[arg(long)]
    agents: Option<usize>,
    /// Use the agents and visitors saved by `provision` instead of creating them over REST.
    #[arg(long)]
    sessions: Option<PathBuf>,
    /// Connections opened at once before the kill.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Messages per second in all, spread evenly over the visitors, each with an ack (default:
    /// one per visitor every 5 s).
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds of writing before the kill.
    #[arg(long, default_value_t = 10)]
    hold: u64,
    /// Kills the server, run through `sh -c` (default: `kill -9` of --server-pid).
    #[arg(long)]
    kill_command: Option<String>,
    /// Starts the server again on the same URL and data, run through `sh -c` once the killed
    /// process is gone. It must return once the server is started in the background (it need
    /// not be listening yet); the last line it prints that is a number is taken as the new
    /// server's process id, else the process that listens on the URL's port is.
    #[arg(long)]
    restart_command: String,
    /// socket.io-client's `reconnectionDelay`: the first reconnection waits this long, each next
    /// one twice the last (the web widget uses 500).
    #[arg(long, default_value_t = 1000)]
    reconnect_delay_ms: u64,
    /// socket.io-client's `reconnectionDelayMax` (the web widget uses 8000).
    #[arg(long, default_value_t = 5000)]
    reconnect_delay_max_ms: u64,
    /// socket.io-client's `randomizationFactor`: each delay moved up to this share either way.
    #[arg(long, default_value_t = 0.5)]
    randomization_factor: f64,
    /// Seconds after the restart within which every client must be logged in again.
    #[arg(long, default_value_t = 120)]
    deadline: u64,
    /// Seconds a handshake or a login may wait before the client gives that connection up and
    /// tries again (socket.io-client's `timeout` is 20 s).
    #[arg(long, default_value_t = 20)]
    attempt_timeout: u64,
    /// Do not read the history afterwards (for a server without `history`): the acked messages
    /// are then not checked here; --acked-file lets them be checked elsewhere.
    #[arg(long)]
    no_history_check: bool,
    /// Write every message acked before the kill (JSON: visitor id, message id, seq, content).
    #[arg(long)]
    acked_file: Option<PathBuf>,
    /// Bytes of content per message (at least 41).
    #[arg(long, default_value_t = 64)]
    size: usize,
}

/// What the kill and the restart did.
struct Restarted {
    killed_at: Instant,
    gone_after: Option<Duration>,
    restarted_at: Instant,
    command_time: Option<Duration>,
    command_error: Option<String>,
    pid: Option<u32>,
    pid_from: &'static str,
    /// The restarted server exited before every client was back.
    exited: bool,
    cpu_at_all_back: Option<Duration>,
    rss_at_all_back: Option<u64>,
}

async fn kill_and_restart(shared: &Shared<'_>, clients: usize) -> anyhow::Result<Restarted> {
    tokio::time::sleep(Duration::from_secs(shared.args.hold)).await;
    let old_pid = shared.target.server_pid;
    let killed_at = Instant::now();
    match (&shared.args.kill_command, old_pid) {
        (Some(command), _) => {
            lifecycle::shell(command, Duration::from_secs(30)).await?;
        }
        (None, Some(pid)) => lifecycle::kill(pid).await?,
        (None, None) => bail!("--server-pid or --kill-command is needed to kill the server"),
    }
    let gone_after = match old_pid {
        Some(pid) => lifecycle::wait_gone(pid, Duration::from_secs(30))
            .await
            .then(|| killed_at.elapsed()),
        None => Some(killed_at.elapsed()),
    };
    // Clients still connected a while after the kill give up: the server did not die.
    *shared.give_up.lock().unwrap_or_else(|p| p.into_inner()) =
        Some(Instant::now() + Duration::from_secs(30));
    if gone_after.is_none() {
        bail!("the server (pid {old_pid:?}) still runs 30 s after the kill");
    }
    // Its listening socket too (another process may have held it, with a --kill-command).
    let port =
        lifecycle::port_of(shared.target.node_url(0)).context("no port in the server's URL")?;
    if !lifecycle::wait_port_free(port, Duration::from_secs(30)).await {
        bail!("port {port} is still listened on 30 s after the kill");
    }
    let restarted_at = Instant::now();
    *shared.give_up.lock().unwrap_or_else(|p| p.into_inner()) =
        Some(restarted_at + Duration::from_secs(shared.args.deadline));
    let (command_time, command_error, mut pid) =
        match lifecycle::shell(&shared.args.restart_command, Duration::from_secs(120)).await {
            Ok(output) => (
                Some(restarted_at.elapsed()),
                None,
                lifecycle::pid_in(&output),
            ),
            Err(error) => (None, Some(format!("{error:#}")), None),
        };
    let mut pid_from = "output";
    if pid.is_none() && command_error.is_none() {
        pid_from = "port";
        pid = lifecycle::wait_listener(port, Duration::from_secs(shared.args.deadline)).await;
    }
    let deadline = restarted_at + Duration::from_secs(shared.args.deadline);
    let mut exited = false;
    while shared.back.load(Ordering::Relaxed) < clients && Instant::now() < deadline {
        // A server that did not come up (its port taken, its data unreadable): nobody will be
        // back, and nothing is gained by waiting.
        if pid.is_some_and(lifecycle::gone) {
            exited = true;
            *shared.give_up.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(Restarted {
        killed_at,
        gone_after,
        restarted_at,
        command_time,
        command_error,
        pid,
        pid_from,
        exited,
        cpu_at_all_back: pid.and_then(cpu_of),
        rss_at_all_back: pid.and_then(|p| rss_of(&p.to_string())),
    })
}

pub async fn run(target: &Target, args: &RestartArgs, as_json: bool) -> anyhow::Result<bool> {
    if args.agents == Some(0) || args.visitors == Some(0) {
        bail!("--agents and --visitors must be at least 1");
    }
    if args.rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
        bail!("--rate must be above 0");
    }
    if args.kill_command.is_none() && target.server_pid.is_none() {
        bail!("--server-pid or --kill-command is needed to kill the server");
    }
    let nodes = target.nodes();
    let (agents, visitors) = provision::users(
        target,
        args.sessions.as_deref(),
        (args.agents, args.visitors),
        (10, 1000),
    )
    .await?;
    let plan = fleet::plan(&agents, &visitors, nodes)?;
    let far = Instant::now() + Duration::from_secs(600);
    // Events are read (and dropped) only to see a connection close at once.
    let agent_fleet = fleet::connect(target, &plan.agents, args.concurrency, 1, false, far).await;
    let visitor_fleet =
        fleet::connect(target, &plan.visitors, args.concurrency, 1, false, far).await;
    if agent_fleet.connected() + visitor_fleet.connected() < agents.len() + visitors.len() {
        bail!(
            "{} of {} connections could not log in before the kill: {}",
            agents.len() + visitors.len() - agent_fleet.connected() - visitor_fleet.connected(),
            agents.len() + visitors.len(),
            agent_fleet
                .first_error
                .or(visitor_fleet.first_error)
                .unwrap_or_default()
        );
    }
    let connect_time = agent_fleet.elapsed + visitor_fleet.elapsed;

    let rate = args.rate.unwrap_or(visitors.len() as f64 / 5.0);
    let period = Duration::from_secs_f64(visitors.len() as f64 / rate);
    let shared = Shared {
        target,
        args,
        schedule: Schedule {
            min: Duration::from_millis(args.reconnect_delay_ms),
            max: Duration::from_millis(args.reconnect_delay_max_ms),
            randomization: args.randomization_factor,
        },
        size: args.size.max(MARK_LEN),
        epoch: Instant::now(),
        give_up: Mutex::new(None),
        back: AtomicUsize::new(0),
    };
    let started = Instant::now();
    let mut holders = Vec::new();
    for (j, pair) in agent_fleet.clients.into_iter().enumerate() {
        let (client, _) = pair.context("an agent is missing")?;
        let holder = Holder {
            i: j,
            login: plan.agents[j].clone(),
            writes: None,
            first: started,
            period,
        };
        holders.push((holder, client));
    }
    for (v, pair) in visitor_fleet.clients.into_iter().enumerate() {
        let (client, _) = pair.context("a visitor is missing")?;
        let holder = Holder {
            i: agents.len() + v,
            login: plan.visitors[v].clone(),
            writes: Some((v, agents[plan.pins[v].1].id.clone())),
            // The visitors' schedules spread over one period.
            first: started + period.mul_f64(v as f64 / visitors.len() as f64),
            period,
        };
        holders.push((holder, client));
    }
    let clients = holders.len();
    let lives = futures_util::future::join_all(
        holders
            .into_iter()
            .map(|(holder, client)| hold(&shared, holder, client)),
    );
    let restarting = async {
        let restarted = kill_and_restart(&shared, clients).await;
        if restarted.is_err() {
            // The clients stop holding: nothing is coming.
            *shared.give_up.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        }
        restarted
    };
    let (mut lives, restarted) = tokio::join!(lives, restarting);
    let restarted = restarted?;

    // Every message acked before the kill, looked for in its sender's history.
    let visitor_lives = &lives[agents.len()..];
    let acked: usize = visitor_lives.iter().map(|l| l.acked.len()).sum();
    if let Some(path) = &args.acked_file {
        let list: Vec<Value> = visitor_lives
            .iter()
            .zip(&visitors)
            .flat_map(|(life, visitor)| {
                life.acked.iter().map(move |m| {
                    json!({"visitor": visitor.id, "id": m.id, "seq": m.seq, "content": m.content})
                })
            })
            .collect();
        std::fs::write(path, serde_json::to_vec(&list)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let (mut lost, mut unread) = (None, 0);
    if !args.no_history_check {
        let checks: Vec<Option<usize>> = futures_util::stream::iter(visitor_lives)
            .map(|life| async move {
                match &life.client {
                    _ if life.acked.is_empty() => Some(0),
                    Some((client, _)) => missing_from_history(client, &life.acked).await,
                    None => None,
                }
            })
            .buffered(64)
            .collect()
            .await;
        unread = checks.iter().filter(|c| c.is_none()).count();
        lost = Some(checks.iter().flatten().sum::<usize>());
    }
    for life in &mut lives {
        if let Some((client, _)) = life.client.take() {
            client.close();
        }
    }

    let mut back_latency = histogram();
    let mut reconnect = Tally::default();
    let mut refused_messages = Tally::default();
    let (mut attempts, mut unreachable, mut never_dropped) = (0, 0, 0);
    for life in &lives {
        if let Some(at) = life.back_at {
            back_latency.saturating_record(
                at.saturating_duration_since(restarted.restarted_at)
                    .as_micros() as u64,
            );
        }
        reconnect.merge(&life.reconnect);
        refused_messages.merge(&life.refused);
        attempts += life.attempts;
        unreachable += life.unreachable;
        never_dropped += usize::from(life.dropped_at.is_none());
    }
    let back = lives.iter().filter(|l| l.back_at.is_some()).count();
    let last_back = lives.iter().filter_map(|l| l.back_at).max();
    let since =
        |from: Instant| last_back.map(|at| at.saturating_duration_since(from).as_secs_f64());
    let unacked: usize = lives.iter().map(|l| l.unacked).sum();
    let sent = acked + unacked + refused_messages.total();
    let cpu_us = restarted.cpu_at_all_back.map(|c| c.as_secs_f64() * 1e6);
    let report = json!({
        "scenario": "restart",
        "visitors": visitors.len(), "agents": agents.len(), "nodes": nodes,
        "rate": rate, "hold_seconds": args.hold,
        "connect_seconds": connect_time.as_secs_f64(),
        "before_kill": {
            "sent": sent, "acked": acked, "refused": refused_messages.json(),
            // Sent, and the server died before it answered.
            "unacked": unacked,
        },
        "kill": {
            "pid": target.server_pid, "command": args.kill_command,
            "seconds_until_gone": restarted.gone_after.map(|d| d.as_secs_f64()),
        },
        "restart": {
            "command": args.restart_command,
            "command_seconds": restarted.command_time.map(|d| d.as_secs_f64()),
            "command_error": restarted.command_error,
            "seconds_after_kill": restarted.restarted_at.duration_since(restarted.killed_at).as_secs_f64(),
            "server_pid": restarted.pid, "pid_from": restarted.pid_from,
            "server_exited": restarted.exited,
        },
        "reconnect": {
            "schedule": {
                "delay_ms": args.reconnect_delay_ms, "delay_max_ms": args.reconnect_delay_max_ms,
                "randomization_factor": args.randomization_factor,
            },
            "clients": clients, "back": back, "not_back": clients - back,
            "never_dropped": never_dropped,
            // From the restart command's start (and from the kill) to the last client back.
            "all_back_seconds": since(restarted.restarted_at),
            "all_back_seconds_after_kill": since(restarted.killed_at),
            "back_latency_us": quantiles(&back_latency),
            "attempts": attempts,
            // Attempts that found nobody listening: the server was not up yet.
            "attempts_unreachable": unreachable,
            "failures": reconnect.json(),
        },
        "refused": reconnect.refused_total(),
        "lost": lost,
        "history_unread": unread,
        "history_checked": !args.no_history_check,
        // The new process, from its start until every client was back.
        "server_cpu_seconds": cpu_us.map(|c| c / 1e6),
        "server_cpu_us_per_login": cpu_us.filter(|_| back > 0).map(|c| c / back as f64),
        "server_rss_bytes": restarted.rss_at_all_back,
        "server_pid": restarted.pid,
    });
    if as_json {
        println!("{report}");
    } else {
        println!(
            "restart: {} visitors and {} agents held, {rate:.0} messages/s for {} s, then kill -9 and restart",
            visitors.len(),
            agents.len(),
            args.hold
        );
        println!(
            "  before the kill  {sent} messages sent, {acked} acked, {unacked} unanswered when the server died; {}",
            refused_messages.line()
        );
        println!(
            "  restart          {:.2} s after the kill; new server pid {} (from its {})",
            restarted
                .restarted_at
                .duration_since(restarted.killed_at)
                .as_secs_f64(),
            restarted
                .pid
                .map_or("unknown".to_owned(), |p| p.to_string()),
            restarted.pid_from
        );
        if let Some(error) = &restarted.command_error {
            println!("  restart command failed: {error}");
        }
        if restarted.exited {
            println!("  the restarted server exited before every client was back");
        }
        println!(
            "  back             {back} of {clients} in {} after the restart ({} after the kill); never dropped {never_dropped}",
            since(restarted.restarted_at).map_or("n/a".to_owned(), |s| format!("{s:.2} s")),
            since(restarted.killed_at).map_or("n/a".to_owned(), |s| format!("{s:.2} s")),
        );
        println!("{}", latency_line("back after", &back_latency));
        println!(
            "  attempts         {attempts} ({unreachable} found nobody listening); {}",
            reconnect.line()
        );
        match lost {
            Some(lost) => println!(
                "  lost             {lost} of {acked} acked messages missing from the history ({unread} histories unread)"
            ),
            None => println!("  lost             not checked ({acked} acked messages)"),
        }
        if let Some(cpu_us) = cpu_us {
            println!(
                "  server CPU       {} from its start until all were back, {} per login",
                duration(cpu_us as u64),
                duration((cpu_us / back.max(1) as f64) as u64)
            );
        }
        println!(
            "  server RSS       {} once all were back",
            bytes(restarted.rss_at_all_back)
        );
    }
    Ok(back == clients
        && never_dropped == 0
        && reconnect.total() == 0
        && refused_messages.total() == 0
        && lost.unwrap_or(0) == 0
        && unread == 0
        && restarted.command_error.is_none()
        && !restarted.exited)
}
