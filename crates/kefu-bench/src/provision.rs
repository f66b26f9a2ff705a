//! `provision`: creates agents and visitors over REST and saves their sessions to a file, for
//! `idle --sessions` to use against a server started afresh on the same database.

use std::{path::PathBuf, time::Instant};

use clap::Args;
use serde_json::json;

use crate::target::{Sessions, Target};

#[derive(Args, Debug)]
pub struct ProvisionArgs {
    /// Visitors to create.
    #[arg(long, default_value_t = 1000)]
    visitors: usize,
    /// Agents to create.
    #[arg(long, default_value_t = 4)]
    agents: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Where to write the sessions (JSON).
    #[arg(long)]
    out: PathBuf,
}

pub async fn run(target: &Target, args: &ProvisionArgs, as_json: bool) -> anyhow::Result<bool> {
    let started = Instant::now();
    let agents = target.create_agents(args.agents).await?;
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
    }
    Ok(true)
}
