//! The start and the stop: [`Server::open`] builds the state (database, tokens, first accounts,
//! services, the connection registry and the cluster), [`Server::serve`] listens until told to
//! stop, then closes the sockets, finishes the writes in flight and closes the database.

mod bootstrap;
mod sweeps;

use std::{future::Future, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    adapter::Link,
    cluster::{self, Cluster},
    config::Settings,
    connections::{ConnectionLimits, Connections},
    http, metrics, services,
    services::{accounts::Accounts, auth::Auth, chat::Chat, delivery::Delivery, writer::Writer},
    socket,
    state::{AppState, Node, Shared},
    store::{self, Store},
};

/// How long a stopping server waits for open HTTP requests after closing every socket.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How long it waits for the database connections still in use to come back.
const STORE_CLOSE_GRACE: Duration = Duration::from_secs(3);

/// A server whose database is ready, not yet listening.
pub struct Server {
    state: AppState,
    tasks: JoinSet<()>,
    stop_writers: CancellationToken,
    /// Stops the cluster's background work, after the writers.
    stop_cluster: CancellationToken,
    /// The cluster's background work, started once the Socket.IO server exists.
    cluster_work: Option<cluster::Work>,
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
        let url = settings.database_url();
        let dialect = store::Dialect::from_url(&url)?;
        let store = Store::open(&url, dialect.lanes(settings.database_max_connections))
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
        let fresh_for = if settings.redis_url.is_some() {
            services::accounts::ACCOUNTS_FRESH_IN_CLUSTER
        } else {
            services::accounts::ACCOUNTS_FRESH_ALONE
        };
        let accounts = Accounts::new(store.clone(), auth, fresh_for);
        let notes = bootstrap::bootstrap_accounts(&settings, &accounts).await?;

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
        let (cluster, cluster_work) = Cluster::new(
            node.id.clone(),
            &settings.redis_prefix,
            node.started_at,
            link,
            connections.clone(),
            changes_rx,
            settings.node_timeout(),
        );
        let mut tasks = JoinSet::new();
        let stop_writers = CancellationToken::new();
        let shards = dialect.writers();
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
            settings.timers(),
            metrics.clone(),
        );
        chat.start(node.id.clone(), &mut tasks);
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
        let hours = services::hours::Hours::new(store.clone());
        let mail = services::mail::Mail::new(
            &settings,
            &secret,
            store.clone(),
            chat.clone(),
            transcripts.clone(),
            accounts.clone(),
            metrics.clone(),
            node.id.clone(),
        )?;
        let state = AppState(Arc::new(Shared {
            hours,
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
            mail,
        }));
        Ok(Self {
            state,
            tasks,
            stop_writers,
            stop_cluster,
            cluster_work: Some(cluster_work),
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
        if let Some(work) = self.cluster_work.take() {
            work.start(
                io.clone(),
                self.state.chat.clone(),
                self.state.accounts.clone(),
                self.stop_cluster.clone(),
                &mut self.tasks,
            );
        }
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
        self.tasks.spawn(sweeps::sweep_silent_connections(
            self.state.clone(),
            stop_sweeper.clone(),
        ));
        self.tasks.spawn(sweeps::recheck_tokens(
            self.state.clone(),
            stop_sweeper.clone(),
        ));
        // E-mail: the outbox, its triggers and the reply mailbox (each only when configured).
        self.state.mail.start(&mut self.tasks, stop_sweeper.clone());

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

/// Connections the kernel keeps ready for the accept loop. tokio's default, 1,024, overflows
/// when every client of a restarted node comes back within the same second: the connections
/// beyond it are dropped by the kernel, and their clients retry on TCP's own backoff (1, 3, 7 s
/// and on), so they come back in waves seconds apart. The kernel caps this at
/// `net.core.somaxconn` (4,096 on current Linux).
pub const LISTEN_BACKLOG: u32 = 65_535;

/// A listener on `addr` with [`LISTEN_BACKLOG`].
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As tokio's own bind does: a restart may bind while the old connections linger.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
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
