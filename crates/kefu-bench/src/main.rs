//! `kefu-bench`: drives a running kefu server (or any server speaking its protocol) and reports
//! what it saw, as text or as one JSON line.
//!
//! - `target`: the server under test: provisioning over REST, its CPU time and memory from `/proc`
//! - `fleet`: many connections at once: connect, authenticate, `login`
//! - `chat`: visitors send messages to their agents, closed or open loop; throughput, latency,
//!   lost messages, server CPU per delivered message
//! - `idle`: many logged-in connections held open; connect rate and server memory per connection
//! - `storm`: connect, log in, disconnect in a loop; connect rate and memory growth
//! - `burst`: every `login` sent at once (and every first message); refused logins by code
//! - `restart`: held connections, the server killed and started again; time until all are
//!   back, refused logins, acked messages lost
//! - `queue`: visitors waiting, then the agents sign in; time until all are assigned, CPU per
//!   assignment, `queue_position` events per customer per second
//! - `provision`: users created ahead and saved, for `idle` against a freshly started server
//! - `first`: each visitor's first message, which starts its conversation on kefu, and where
//!   that conversation went (at once, or later from the queue)
//! - `attempt`: one connection or acked event, its failure sorted by kind; tallies of them
//! - `reconnect`: socket.io-client's reconnection backoff
//! - `lifecycle`: killing the server, the restart command, finding the new process
//! - `report`: histograms and printing
//!
//! Server CPU comes from `/proc/<pid>/stat` (user + system time of all its threads), memory from
//! VmRSS in `/proc/<pid>/status`: figures that stay honest when the load generator is the
//! bottleneck.

mod attempt;
mod burst;
mod chat;
mod first;
mod fleet;
mod idle;
mod lifecycle;
mod provision;
mod queue;
mod reconnect;
mod report;
mod restart;
mod storm;
mod target;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(version, about = "Load generator for kefu")]
struct Cli {
    /// The server's base URL. Give it once per node to spread connections over several nodes of
    /// a cluster: visitor i connects to node i mod N, agent j to node j mod N, and each visitor
    /// is routed to an agent on the next node, so that every message crosses nodes.
    #[arg(long, global = true, default_value = "http://127.0.0.1:3000")]
    url: Vec<String>,
    /// The admin password, to create the agents.
    #[arg(
        long,
        global = true,
        env = "KEFU_ADMIN_PASSWORD",
        hide_env_values = true
    )]
    admin_password: Option<String>,
    /// The server's process id, for its CPU time and memory (of one process: with several nodes,
    /// read theirs from outside, as bench/cluster/run does).
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// Spread connections over the source addresses 127.0.0.1 ..= 127.0.0.N (one source address
    /// reaches about 28,000 ports of one server).
    #[arg(long, global = true, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=254))]
    source_addrs: u8,
    /// Print exactly one JSON line instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// Visitors pinned to agents send messages; throughput, latency, losses, CPU per message.
    Chat(chat::ChatArgs),
    /// Many visitors connect, log in and stay; connect rate, memory per connection, presence.
    Idle(idle::IdleArgs),
    /// Clients connect, log in and disconnect in a loop; connect rate, memory growth.
    Storm(storm::StormArgs),
    /// Everyone connects, then every login is sent at once (with --first-message, every first
    /// message too); time to the last ack, latency, every refusal by code, CPU per login.
    ///
    /// Visitors and agents connect, --concurrency handshakes at a time; then every `login` goes
    /// out at once. Reports the time from the first login sent to the last ack, login latency
    /// quantiles, every refused login by its error code (`unavailable` apart) and every one not
    /// answered within --ack-timeout, and the server's CPU per login. With --first-message each
    /// visitor writes its first message as soon as its login is answered: the same figures for
    /// those, their delivery to the agents, and where their conversations went.
    Burst(burst::BurstArgs),
    /// Held connections writing acked messages; the server killed (-9) and restarted by a
    /// command; time until all are logged in again, refusals, acked messages lost.
    ///
    /// Visitors and agents log in and hold; visitors write at --rate, every ack noted. After
    /// --hold seconds the server is killed (`kill -9` of --server-pid, or --kill-command) and,
    /// once it is gone, --restart-command starts it again on the same URL and data. Every client
    /// reconnects as socket.io-client does (a delay before each attempt, 1 s doubling up to 5 s,
    /// each moved by up to half either way: the official defaults) and logs in again. Reports
    /// the time from the restart until all are back, attempts, refused handshakes and logins by
    /// code, and the acked messages missing from each visitor's `history` (afterSeq) afterwards;
    /// CPU and memory of the new process. The new server keeps running.
    Restart(restart::RestartArgs),
    /// Visitors write while no agent is online, then the agents sign in at once; time until all
    /// are assigned, CPU per assignment, queue_position events per customer per second.
    ///
    /// Visitors log in and send their first message while no agent is online, so every
    /// conversation waits. After --wait seconds the agents (capacity --capacity, set with
    /// `PATCH /api/agents/{id}`) sign in at once. Reports the time until every visitor got
    /// `conversation_assigned`, the server's CPU per assignment during the drain, the agents'
    /// login latency (a login must not wait for the drain), and `queue_position` events per
    /// customer per second (mean, max) while waiting and while draining, with every gap under a
    /// second between two events of one customer. For kefu: the reference design has no queue.
    Queue(queue::QueueArgs),
    /// Create agents and visitors and save their sessions, for `idle --sessions`.
    Provision(provision::ProvisionArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    let target = target::Target::new(
        cli.url,
        cli.admin_password,
        cli.server_pid,
        cli.source_addrs,
    )?;
    let clean = match &cli.scenario {
        Scenario::Chat(args) => chat::run(&target, args, cli.json).await?,
        Scenario::Idle(args) => idle::run(&target, args, cli.json).await?,
        Scenario::Storm(args) => storm::run(&target, args, cli.json).await?,
        Scenario::Burst(args) => burst::run(&target, args, cli.json).await?,
        Scenario::Restart(args) => restart::run(&target, args, cli.json).await?,
        Scenario::Queue(args) => queue::run(&target, args, cli.json).await?,
        Scenario::Provision(args) => provision::run(&target, args, cli.json).await?,
    };
    // A run that lost messages or connections still reports, then says so in its exit status.
    Ok(if clean {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}
