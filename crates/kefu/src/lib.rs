//! kefu: a real-time customer-service chat server.
//!
//! - [`config`]: one typed [`Settings`] from defaults, a TOML file, `KEFU_*` and flags.
//! - [`domain`]: ids, roles, message content, each parsed once at the edge; no I/O.
//! - [`store`]: SQLite, MySQL/MariaDB or PostgreSQL through one query set; migrations per dialect.
//! - [`services`]: accounts and tokens, routing, the chat rules, group commit of messages, abuse
//!   limits.
//! - [`socket`]: the Socket.IO protocol (docs/protocol.md): handshake auth, thin handlers, delivery.
//! - [`http`]: the REST API, health checks and the embedded web UI, over our HTTP/1.1 and TLS loop.
//! - [`metrics`]: Prometheus counters and histograms.
//! - [`cluster`]: several nodes on one Redis: the Socket.IO adapter, shared presence, readiness.
//!
//! A message goes: socket handler → [`services::chat::Chat::send`] (authorise, validate) → a
//! writer shard ([`services::writer`]) that commits it with others in one transaction → the
//! sender's ack → the receiver's connections, in `seq` order.

pub mod cluster;
pub mod config;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod services;
pub mod socket;
pub mod store;
pub mod telemetry;

use std::{future::Future, ops::Deref, path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;

use cluster::{Cluster, link::Link};
pub use config::Settings;
use services::{accounts::Accounts, auth::Auth, chat::Chat, delivery::Delivery, writer::Writer};
use socket::connections::{ConnectionLimits, Connections};
use store::Store;

/// Everything a handler may need, cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub settings: Settings,
    pub node: Node,
    pub store: Store,
    pub accounts: Accounts,
    pub chat: Chat,
    pub reports: services::reports::Reports,
    pub transcripts: services::transcripts::Transcripts,
    pub canned: services::canned::CannedReplies,
    pub attachments: services::attachments::Attachments,
    pub connections: Arc<Connections>,
    pub cluster: Arc<Cluster>,
    pub metrics: Arc<metrics::Metrics>,
    pub limits: services::limits::Limits,
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// How long a stopping server waits for open HTTP requests after closing every socket.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How long it waits for the database connections still in use to come back.
const STORE_CLOSE_GRACE: Duration = Duration::from_secs(3);

/// This process, as the admin page lists it.
pub struct Node {
    pub id: String,
    /// Milliseconds since the Unix epoch.
    pub started_at: i64,
}

impl Node {
    fn new(configured: Option<&str>) -> Self {
        let id = configured.map(str::to_owned).unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            let host = host.trim();
            format!(
                "{}-{}",
                if host.is_empty() { "kefu" } else { host },
                std::process::id()
            )
        });
        Self {
            id,
            started_at: domain::now_millis(),
        }
    }
}

/// A server whose database is ready, not yet listening.
pub struct Server {
    state: AppState,
    tasks: JoinSet<()>,
    stop_writers: CancellationToken,
    /// Stops the cluster's background work, after the writers.
    stop_cluster: CancellationToken,
    /// What an operator should read once: generated credentials, demo logins.
    pub notes: Vec<String>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Server {
    /// Opens the database (creating the schema), prepares tokens and the first accounts.
    pub async fn open(settings: Settings) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&settings.data_dir).with_context(|| {
            format!(
                "creating the data directory {}",
                settings.data_dir.display()
            )
        })?;
        let keys: Vec<String> = settings
            .encryption_keys
            .iter()
            .map(|k| k.expose().to_owned())
            .collect();
        let store = Store::open(&settings.database_url(), settings.database_max_connections)
            .await?
            .with_encryption_keys(&keys)
            .context("KEFU_ENCRYPTION_KEYS")?;
        if settings.redis_url.is_some() && settings.jwt_secret.is_none() {
            anyhow::bail!(
                "several nodes (a Redis URL) must share one token secret: set KEFU_JWT_SECRET \
                 to the same value of 32 characters or more on every node"
            );
        }
        if settings.redis_url.is_some() && store.dialect() == store::Dialect::Sqlite {
            anyhow::bail!(
                "several nodes (a Redis URL) need a shared MySQL/MariaDB or PostgreSQL database; \
                 set KEFU_DATABASE_URL"
            );
        }
        let tls = match (&settings.tls_cert, &settings.tls_key) {
            (Some(cert), Some(key)) => Some(http::serve::tls_acceptor(cert, key)?),
            (None, None) => None,
            _ => anyhow::bail!(
                "TLS needs both KEFU_TLS_CERT and KEFU_TLS_KEY (--tls-cert, --tls-key)"
            ),
        };
        let secret = Auth::load_or_create_secret(
            settings.jwt_secret.as_ref().map(|s| s.expose()),
            &settings.data_dir,
        )?;
        let auth = Auth::new(
            &secret,
            Duration::from_secs(settings.customer_token_ttl),
            Duration::from_secs(settings.staff_token_ttl),
        );
        let accounts = Accounts::new(store.clone(), auth);
        let notes = bootstrap_accounts(&settings, &accounts).await?;

        let metrics = Arc::new(metrics::Metrics::default());
        let (changes, changes_rx) = tokio::sync::mpsc::unbounded_channel();
        let connections = Arc::new(Connections::new(
            ConnectionLimits {
                message_rate: settings.message_rate_limit,
                message_burst: settings.message_rate_burst,
                event_rate: settings.event_rate_limit,
                event_burst: settings.event_rate_burst,
                per_user: settings.max_connections_per_user,
            },
            metrics.clone(),
            changes,
        ));
        let stop_cluster = CancellationToken::new();
        let link = match &settings.redis_url {
            Some(url) => Link::connect(url, stop_cluster.clone())?,
            None => Link::single(),
        };
        let node = Node::new(settings.node_id.as_deref());
        let cluster = Arc::new(Cluster::new(
            node.id.clone(),
            &settings.redis_prefix,
            node.started_at,
            link,
            connections.clone(),
            changes_rx,
            settings.node_timeout(),
        ));
        let mut tasks = JoinSet::new();
        let stop_writers = CancellationToken::new();
        // SQLite has one writer at a time anyway; the servers take a few transactions in parallel.
        let shards = if store.dialect() == store::Dialect::Sqlite {
            1
        } else {
            4
        };
        let delivery: Arc<dyn Delivery> = cluster.clone();
        let writer = Writer::spawn(
            store.clone(),
            delivery.clone(),
            shards,
            settings.write_batch_max,
            metrics.clone(),
            stop_writers.clone(),
            &mut tasks,
        );
        let chat = Chat::new(
            store.clone(),
            writer,
            delivery,
            settings.max_message_bytes,
            cluster.link().is_cluster(),
        );
        let reports = services::reports::Reports::new(store.clone());
        let transcripts = services::transcripts::Transcripts::new(store.clone());
        let attachments = services::attachments::Attachments::new(
            store.clone(),
            chat.clone(),
            settings.attachment_dir(),
            settings.attachment_max_bytes,
            settings.attachment_types.clone(),
        );
        let canned =
            services::canned::CannedReplies::new(store.clone(), settings.max_message_bytes);
        let limits = services::limits::Limits::new(&settings);
        let state = AppState(Arc::new(Shared {
            settings,
            node,
            store,
            accounts,
            chat,
            reports,
            transcripts,
            canned,
            attachments,
            connections,
            cluster,
            metrics,
            limits,
        }));
        Ok(Self {
            state,
            tasks,
            stop_writers,
            stop_cluster,
            notes,
            tls,
        })
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// `https` with TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Serves until `shutdown` resolves, then stops accepting, closes every socket, finishes the
    /// writes in flight and closes the database.
    pub async fn serve(
        mut self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (socket_layer, io) = socket::layer(
            &self.state.settings,
            self.state.cluster.link().clone(),
            &self.state.settings.redis_prefix,
            self.state.clone(),
        )
        .await?;
        self.state.cluster.start(
            io.clone(),
            self.state.chat.clone(),
            self.stop_cluster.clone(),
            &mut self.tasks,
        );
        let app = http::router(self.state.clone())
            .layer(socket_layer)
            .layer(axum::middleware::from_fn_with_state(
                (self.state.clone(), http::PollingRequests::default()),
                http::guard_polling,
            ))
            .layer(axum::middleware::from_fn_with_state(
                (
                    self.state.clone(),
                    http::bodies::BodiesInProgress::default(),
                ),
                http::bodies::guard_bodies,
            ))
            .layer(axum::middleware::from_fn_with_state(
                self.state.clone(),
                http::check_origin,
            ));
        if let Some(addr) = self.state.settings.metrics_listen {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the metrics listener {addr}"))?;
            tracing::info!(%addr, "metrics listening");
            let metrics = http::metrics_router(self.state.clone());
            let stop = self.stop_cluster.clone();
            self.tasks.spawn(async move {
                let serving = axum::serve(listener, metrics)
                    .with_graceful_shutdown(async move { stop.cancelled().await });
                if let Err(e) = serving.await {
                    tracing::error!(error = %e, "the metrics listener failed");
                }
            });
        }

        let stop_sweeper = CancellationToken::new();
        self.tasks.spawn(sweep_silent_connections(
            self.state.clone(),
            stop_sweeper.clone(),
        ));
        self.tasks
            .spawn(recheck_tokens(self.state.clone(), stop_sweeper.clone()));

        let addr = listener.local_addr()?;
        tracing::info!(%addr, tls = self.tls.is_some(), "listening");
        let open = http::serve::serve(listener, app, self.tls.take(), shutdown).await;
        tracing::info!("shutting down: closing connections");
        self.state.chat.stop();
        // Closing the sockets ends their long-polling requests too; what is left of HTTP gets a
        // short grace (a long-polling request of a session that never joined a namespace would
        // otherwise hold the shutdown until its next ping).
        io.close().await;
        open.close(SHUTDOWN_GRACE).await;

        stop_sweeper.cancel();
        self.stop_writers.cancel();
        self.stop_cluster.cancel();
        while self.tasks.join_next().await.is_some() {}
        // A handler still holding a connection must not hold the exit: what it did not commit
        // was never acknowledged.
        if tokio::time::timeout(STORE_CLOSE_GRACE, self.state.store.close())
            .await
            .is_err()
        {
            tracing::warn!("closing the database with work still in progress");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Opens and serves: what tests call with a listener on port 0.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    Server::open(settings)
        .await?
        .serve(listener, shutdown)
        .await
}

/// Disconnects connections whose heartbeats stopped (the reference design's 2 s / 4 s rhythm),
/// and forgets connections that closed without a disconnect.
async fn sweep_silent_connections(state: AppState, stop: CancellationToken) {
    let timeout = state.settings.heartbeat_timeout();
    let mut tick = tokio::time::interval(
        (timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(1)),
    );
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let purged = state.connections.purge_closed();
        if purged > 0 {
            tracing::debug!(purged, "forgot connections that never opened");
        }
        for socket in state.connections.silent(timeout) {
            tracing::debug!("disconnecting a connection whose heartbeats stopped");
            let _ = socket.disconnect();
        }
    }
}

/// Closes connections whose token expired or was revoked (a sign-out, a disabled account) since
/// they connected. A revocation made on this node closes them at once; this catches the ones made
/// on a node whose word did not get here (Redis away), and tokens that simply ran out.
async fn recheck_tokens(state: AppState, stop: CancellationToken) {
    let every = Duration::from_millis(state.settings.token_recheck_ms.max(100));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Revocations are asked for since the last check that answered, with a margin for the clocks
    // of other nodes and of the database.
    let margin = 60_000;
    let mut since = domain::now_millis() - margin;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = domain::now_millis();
        // A database that stopped answering must not hold up a shutdown.
        let asked = tokio::select! {
            _ = stop.cancelled() => return,
            asked = state.accounts.revoked_since(since) => asked,
        };
        let revoked = match asked {
            Ok(revoked) => {
                since = now - margin;
                revoked
            }
            Err(error) => {
                // Expiry is still enforced; revocations are asked for again next time.
                error.log("checking for revoked tokens");
                Vec::new()
            }
        };
        for socket in state.connections.expired_or_revoked(now, &revoked) {
            state.metrics.revoked_disconnects.inc();
            let _ = socket.disconnect();
        }
    }
}

/// The admin from `KEFU_ADMIN_PASSWORD` (or a generated password on a first start without it),
/// and the demo agents with `--demo`.
async fn bootstrap_accounts(
    settings: &Settings,
    accounts: &Accounts,
) -> anyhow::Result<Vec<String>> {
    let mut notes = Vec::new();
    match &settings.admin_password {
        Some(password) => {
            if accounts
                .bootstrap_admin(password.expose())
                .await
                .map_err(anyhow_of)?
            {
                notes.push(
                    "admin account created: user admin, password from KEFU_ADMIN_PASSWORD"
                        .to_owned(),
                );
            }
        }
        None => {
            let password = services::auth::random_hex(8);
            if accounts
                .bootstrap_admin(&password)
                .await
                .map_err(anyhow_of)?
            {
                notes.push(format!(
                    "admin account created: user admin, password {password} (shown once)"
                ));
            }
        }
    }
    if settings.demo {
        notes.extend(demo_agents(&settings.data_dir, accounts).await?);
    }
    Ok(notes)
}

/// `alice` and `bob`, with passwords generated once and kept in `<data_dir>/demo-logins`.
async fn demo_agents(data_dir: &Path, accounts: &Accounts) -> anyhow::Result<Vec<String>> {
    let path = data_dir.join("demo-logins");
    let mut logins = std::fs::read_to_string(&path).unwrap_or_default();
    for (username, display_name) in [("alice", "Alice"), ("bob", "Bob")] {
        if logins
            .lines()
            .any(|l| l.starts_with(&format!("{username} ")))
        {
            continue;
        }
        let password = services::auth::random_hex(6);
        match accounts
            .create_staff(
                domain::Role::Agent,
                username,
                password.clone(),
                Some(display_name),
            )
            .await
        {
            Ok(_) => logins.push_str(&format!("{username} {password}\n")),
            Err(services::Error::Conflict(_)) => continue,
            Err(e) => return Err(anyhow_of(e)),
        }
    }
    std::fs::write(&path, &logins).with_context(|| format!("writing {}", path.display()))?;
    Ok(logins
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(user, password)| format!("demo agent: user {user}, password {password}"))
        .collect())
}

fn anyhow_of(error: services::Error) -> anyhow::Error {
    match error {
        services::Error::Other(e) => e,
        other => anyhow::anyhow!("{other}"),
    }
}
