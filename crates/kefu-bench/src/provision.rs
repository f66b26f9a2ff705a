//! `provision`: creates agents and visitors over REST and saves their sessions to a file, for
//! `idle --sessions` to use against a server started afresh on the same database; and the users
//! of a run, saved or created now.

use std::{
    path::{Path, PathBuf},
    sync::atomic::Ordering,
    time::Instant,
};

use anyhow::bail;

use clap::Args;
use serde_json::json;

use crate::target::{Session, Sessions, Target};

#[derive(Args, Debug)]
pub struct ProvisionArgs {
    /// Visitors to create.
    #[arg(long, default_value_t = 1000)]
    visitors: usize,
    /// Agents to create.
    #[arg(long, default_value_t = 4)]
    agents: usize,
    /// Open conversations each agent may hold at once, on a server that limits them (default:
    /// the most visitors a run over the same --urls routes to one agent).
    #[arg(long)]
    capacity: Option<usize>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Where to write the sessions (JSON).
    #[arg(long)]
    out: PathBuf,
}

pub async fn run(target: &Target, args: &ProvisionArgs, as_json: bool) -> anyhow::Result<bool> {
    let started = Instant::now();
    let capacity = args.capacity.unwrap_or_else(|| {
        crate::fleet::most_per_agent(args.visitors, args.agents, target.nodes())
    });
    let agents = target.create_agents(args.agents, capacity).await?;
    let visitors = target
        .create_visitors(args.visitors, args.concurrency)
        .await?;
    let elapsed = started.elapsed();
    Sessions { agents, visitors }.save(&args.out)?;
    let rate = args.visitors as f64 / elapsed.as_secs_f64();
    if as_json {
        let report = json!({
            "scenario": "provision", "visitors": args.visitors, "agents": args.agents,
            "seconds": elapsed.as_secs_f64(), "visitors_per_second": rate,
            "capacity": capacity,
            "visitor_conflicts_retried": target.visitor_conflicts.load(Ordering::Relaxed),
        });
        println!("{report}");
    } else {
        println!(
            "provisioned {} agents and {} visitors in {:.1} s ({rate:.0} visitors/s) into {}",
            args.agents,
            args.visitors,
            elapsed.as_secs_f64(),
            args.out.display()
        );
        let conflicts = target.visitor_conflicts.load(Ordering::Relaxed);
        if conflicts > 0 {
            println!("  {conflicts} visitors answered 409 Conflict and were created again");
        }
    }
    Ok(true)
}

/// The agents and visitors of a run: `counts` (agents, visitors) of those saved in `sessions`
/// (all of them when not given), or created now over REST (`defaults` when not given), each
/// agent with the capacity its share of the visitors needs.
pub async fn users(
    target: &Target,
    sessions: Option<&Path>,
    counts: (Option<usize>, Option<usize>),
    defaults: (usize, usize),
) -> anyhow::Result<(Vec<Session>, Vec<Session>)> {
    let Some(path) = sessions else {
        let (agents, visitors) = (
            counts.0.unwrap_or(defaults.0),
            counts.1.unwrap_or(defaults.1),
        );
        let capacity = crate::fleet::most_per_agent(visitors, agents, target.nodes());
        let agents = target.create_agents(agents, capacity).await?;
        let visitors = target.create_visitors(visitors, 32).await?;
        return Ok((agents, visitors));
    };
    let mut saved = Sessions::load(path)?;
    let (agents, visitors) = (
        counts.0.unwrap_or(saved.agents.len()),
        counts.1.unwrap_or(saved.visitors.len()),
    );
    if agents > saved.agents.len() || visitors > saved.visitors.len() || agents == 0 {
        bail!(
            "{} holds {} agents and {} visitors",
            path.display(),
            saved.agents.len(),
            saved.visitors.len()
        );
    }
    saved.agents.truncate(agents);
    saved.visitors.truncate(visitors);
    Ok((saved.agents, saved.visitors))
}
