//! The `kefu` command: parse the command line, load settings, start logging, run.

use std::{io::Read, path::PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use kefu::{
    Settings,
    domain::Role,
    services::accounts::Accounts,
    store::{Store, gate::Lanes},
};
use serde::Serialize;

#[derive(Parser)]
#[command(
    name = "kefu",
    version,
    about = "Real-time customer-service chat server"
)]
struct Cli {
    /// A TOML settings file (also KEFU_CONFIG).
    #[arg(long, global = true, env = "KEFU_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    flags: Flags,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Flags override the file and the environment; only the ones given are applied.
#[derive(clap::Args, Serialize)]
struct Flags {
    /// Address to listen on (KEFU_LISTEN; default 127.0.0.1:3000).
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<String>,
    /// Data directory (KEFU_DATA_DIR; default ./data).
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    /// sqlite://, mysql:// or postgres:// URL (KEFU_DATABASE_URL; default SQLite in the data directory).
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
    /// Redis URL for several nodes (KEFU_REDIS_URL).
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    redis_url: Option<String>,
    /// This node's id, unique among the nodes sharing a Redis (KEFU_NODE_ID; default <hostname>-<pid>).
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    node_id: Option<String>,
    /// Create the demo agents alice and bob and print their logins (KEFU_DEMO).
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    demo: bool,
    /// TLS certificate chain, PEM (KEFU_TLS_CERT); with --tls-key, the server speaks HTTPS and WSS.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cert: Option<PathBuf>,
    /// TLS private key, PEM (KEFU_TLS_KEY).
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_key: Option<PathBuf>,
    /// Log filter, e.g. info or kefu=debug (KEFU_LOG).
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Create or update the database schema, then exit.
    Migrate,
    /// Manage staff accounts.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add an agent or an admin; the password is read from standard input.
    Add {
        #[arg(long, value_enum)]
        role: StaffRole,
        #[arg(long)]
        username: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Read the password from standard input (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum StaffRole {
    Agent,
    Admin,
}

/// mimalloc rather than glibc's allocator: the message path allocates and frees many small
/// buffers across threads, where glibc's spent about 14% of the server's CPU
/// (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref(), &cli.flags).context("loading settings")?;
    kefu::telemetry::init(&settings);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            std::fs::create_dir_all(&settings.data_dir)?;
            Store::open(&settings.database_url(), Lanes::split(2, 1))
                .await?
                .close()
                .await;
            println!("database schema is up to date");
            Ok(())
        }
        Command::User(UserCommand::Add {
            role,
            username,
            display_name,
            password_stdin: _,
        }) => {
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .context("reading the password")?;
            let password = password.trim_end_matches(['\r', '\n']).to_owned();
            std::fs::create_dir_all(&settings.data_dir)?;
            let store = Store::open(&settings.database_url(), Lanes::split(2, 1)).await?;
            let secret = kefu::services::auth::Auth::load_or_create_secret(
                settings.jwt_secret.as_ref().map(|s| s.expose()),
                &settings.data_dir,
            )?;
            let auth =
                kefu::services::auth::Auth::new(&secret, Default::default(), Default::default());
            let role = match role {
                StaffRole::Agent => Role::Agent,
                StaffRole::Admin => Role::Admin,
            };
            let user = Accounts::new(store.clone(), auth, Default::default())
                .create_staff(role, &username, password, display_name.as_deref())
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.public_message()))?;
            store.close().await;
            println!(
                "created {} {} (id {})",
                role.as_str(),
                user.username,
                user.id
            );
            Ok(())
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let listen = settings.listen;
    let server = kefu::Server::open(settings).await?;
    let listener =
        kefu::server::listen(listen).with_context(|| format!("listening on {listen}"))?;
    let addr = listener.local_addr()?;
    // Signals are caught from here on: a SIGTERM right after "listening" still stops cleanly.
    let shutdown = shutdown_signal();
    let scheme = server.scheme();
    println!("kefu listening on {scheme}://{addr}");
    println!("  customer chat:  {scheme}://{addr}/chat");
    println!("  agent console:  {scheme}://{addr}/console");
    println!("  admin:          {scheme}://{addr}/admin");
    for note in &server.notes {
        println!("  {note}");
    }
    server.serve(listener, shutdown).await
}

/// SIGTERM or Ctrl-C, caught from the moment this is called.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        let terminate = async {
            match terminate.as_mut() {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {},
            _ = terminate => {},
        }
    }
}
