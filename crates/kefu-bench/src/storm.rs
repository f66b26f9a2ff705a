//! `storm`: clients connect, log in and disconnect over and over. Measures how many connections
//! the server takes per second, and whether its memory comes back down once they are gone.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::bail;
use clap::Args;
use serde_json::{Value, json};

use crate::{
    fleet::{self, Login},
    report::{bytes, histogram, latency_line, quantiles},
    target::Target,
};

#[derive(Args, Debug)]
pub struct StormArgs {
    /// Clients cycling at once (each one visitor).
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Connect + login + disconnect cycles in total.
    #[arg(long, default_value_t = 2000)]
    cycles: usize,
    /// Cycles before the server's memory is first measured (default: a tenth of --cycles).
    #[arg(long)]
    warmup: Option<usize>,
}

pub async fn run(target: &Target, args: &StormArgs, as_json: bool) -> anyhow::Result<bool> {
    if args.clients == 0 || args.cycles == 0 {
        bail!("--clients and --cycles must be at least 1");
    }
    let warmup = args.warmup.unwrap_or(args.cycles / 10).min(args.cycles);
    let agent = target.create_agents(1, args.clients).await?.remove(0);
    let far = Instant::now() + Duration::from_secs(600);
    let agent_login = [Login {
        session: agent.clone(),
        node: 0,
        cs_id: None,
    }];
    let mut agent_fleet = fleet::connect(target, &agent_login, 1, 1, true, far).await;
    if agent_fleet.connected() == 0 {
        bail!(
            "the agent could not log in: {}",
            agent_fleet.first_error.unwrap_or_default()
        );
    }
    let logins: Arc<Vec<Login>> = Arc::new(
        target
            .create_visitors(args.clients, 32)
            .await?
            .into_iter()
            .enumerate()
            .map(|(i, session)| Login {
                session,
                node: i % target.nodes(),
                cs_id: Some(agent.id.clone()),
            })
            .collect(),
    );

    let rss_start = target.rss();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let completed = AtomicUsize::new(0);
    let first_error = Mutex::new(None::<String>);
    let warm: Mutex<Option<(Instant, usize, Option<u64>)>> = Mutex::new(None);
    let started = Instant::now();
    let workers = (0..args.clients).map(|worker| {
        let (logins, next, done, completed) = (&logins, &next, &done, &completed);
        let (first_error, warm) = (&first_error, &warm);
        async move {
            let mut latency = histogram();
            loop {
                let cycle = next.fetch_add(1, Ordering::Relaxed);
                if cycle >= args.cycles {
                    break;
                }
                let began = Instant::now();
                match fleet::log_in(target, cycle, &logins[worker], true).await {
                    Ok((client, _)) => {
                        latency.saturating_record(began.elapsed().as_micros() as u64);
                        client.close();
                        completed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(error) => {
                        let mut first = first_error.lock().unwrap_or_else(|p| p.into_inner());
                        first.get_or_insert_with(|| format!("{error:#}"));
                    }
                }
                if done.fetch_add(1, Ordering::Relaxed) + 1 == warmup {
                    let snapshot = (
                        Instant::now(),
                        completed.load(Ordering::Relaxed),
                        target.rss(),
                    );
                    *warm.lock().unwrap_or_else(|p| p.into_inner()) = Some(snapshot);
                }
            }
            latency
        }
    });
    let latencies = futures_util::future::join_all(workers).await;
    let elapsed = started.elapsed();
    let mut latency = histogram();
    for l in &latencies {
        latency.add(l).ok();
    }
    let completed = completed.load(Ordering::Relaxed);
    let failed = args.cycles - completed;

    // Let the server finish closing what was just closed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_end = target.rss();
    let connections_left = match target.admin_token().await {
        Ok(admin) => target
            .get("/api/admin/nodes", &admin)
            .await
            .and_then(|body| {
                body["nodes"].as_array().map(|nodes| {
                    nodes
                        .iter()
                        .filter_map(|n| n["connections"].as_u64())
                        .sum::<u64>()
                })
            }),
        Err(_) => None,
    };
    agent_fleet.close_all();

    let (warm_at, warm_completed, rss_warm) = warm
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .unwrap_or((started, 0, rss_start));
    let rate = completed as f64 / elapsed.as_secs_f64();
    let after_warmup = (started + elapsed).saturating_duration_since(warm_at);
    let rate_after_warmup = (completed - warm_completed) as f64 / after_warmup.as_secs_f64();
    let growth = match (rss_warm, rss_end) {
        (Some(warm), Some(end)) => Some(end as i64 - warm as i64),
        _ => None,
    };
    let first_error = first_error.into_inner().unwrap_or_else(|p| p.into_inner());
    let report = json!({
        "scenario": "storm",
        "clients": args.clients, "cycles": args.cycles, "warmup": warmup,
        "completed": completed, "failed": failed, "first_error": first_error,
        "seconds": elapsed.as_secs_f64(),
        "connects_per_second": rate,
        "connects_per_second_after_warmup": rate_after_warmup,
        "connect_latency_us": quantiles(&latency),
        "server_rss_bytes": {"start": rss_start, "after_warmup": rss_warm, "end": rss_end},
        "server_rss_growth_bytes": growth,
        // The server's own count of open connections afterwards (kefu's admin route): the agent's.
        "server_connections_after": connections_left.map_or(Value::Null, Value::from),
    });
    if as_json {
        println!("{report}");
    } else {
        println!(
            "storm: {} clients, {} connect+login+disconnect cycles",
            args.clients, args.cycles
        );
        println!(
            "  completed {completed} in {:.2} s ({rate:.0}/s, {rate_after_warmup:.0}/s after warm-up); failed {failed}",
            elapsed.as_secs_f64()
        );
        if let Some(error) = &first_error {
            println!("  first error: {error}");
        }
        println!("{}", latency_line("connect+login", &latency));
        println!(
            "  server RSS       {} at start, {} after {warmup} cycles, {} at the end",
            bytes(rss_start),
            bytes(rss_warm),
            bytes(rss_end)
        );
        if let Some(left) = connections_left {
            println!("  connections the server still holds: {left}");
        }
    }
    Ok(failed == 0)
}
