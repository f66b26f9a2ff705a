//! The node's link to Redis: one multiplexed RESP3 connection that carries the Socket.IO
//! adapter's pub/sub (this is its [`Driver`]) and the shared-presence commands. It reconnects by
//! itself, subscribes again to every channel, and publishes its state so that `/readyz` and the
//! logs can tell (once per outage, not once per message).

use std::{
    collections::HashMap,
    fmt,
    sync::{
        Arc, RwLock, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use redis::{AsyncConnectionConfig, PushInfo, PushKind, aio::MultiplexedConnection};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// How long connecting, or one command, may take before the link counts as down.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Waits between attempts to reconnect, growing up to the last.
const RECONNECT_BACKOFF: [u64; 5] = [100, 200, 500, 1000, 2000];
/// Publications sent to Redis in one round trip.
const PUBLISH_BATCH: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Not connected yet since the start.
    Connecting,
    /// Connected; `generation` counts the connections made since the start.
    Up {
        generation: u64,
    },
    Down {
        reason: String,
    },
}

/// Why something could not go through Redis.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LinkError {
    #[error("redis unreachable")]
    Down,
    #[error("redis: {0}")]
    Command(String),
}

/// A clone-able handle; `Link::single()` is the link of a node that runs alone, which never leaves
/// the process.
#[derive(Clone)]
pub struct Link(Option<Arc<Inner>>);

struct Inner {
    client: redis::Client,
    /// Every channel subscribed to, with where its messages go; subscribed again on reconnect.
    handlers: RwLock<HashMap<String, mpsc::Sender<ChanItem>>>,
    /// The connection while the link is up, with its generation.
    conn: RwLock<Option<(MultiplexedConnection, u64)>>,
    state: watch::Sender<LinkState>,
    outbox: mpsc::UnboundedSender<(String, Vec<u8>)>,
    /// Wakes the supervisor when the connection of that generation is found broken.
    broken: mpsc::UnboundedSender<u64>,
    /// Publications that could not be sent (the link was down).
    dropped: AtomicU64,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Link")
            .field(&self.0.as_ref().map(|i| i.state.borrow().clone()))
            .finish()
    }
}

impl Link {
    pub fn single() -> Self {
        Self(None)
    }

    /// Starts connecting to `url` in the background; the link is usable at once and goes up when
    /// Redis answers. RESP3 is used, for pub/sub on the same connection as the commands.
    pub fn connect(url: &str, stop: CancellationToken) -> anyhow::Result<Self> {
        let url = if url.contains("protocol=") {
            url.to_owned()
        } else if url.contains('?') {
            format!("{url}&protocol=resp3")
        } else {
            format!("{url}?protocol=resp3")
        };
        let client = redis::Client::open(url.as_str())
            .map_err(|e| anyhow::anyhow!("invalid Redis URL: {e}"))?;
        let (outbox, outgoing) = mpsc::unbounded_channel();
        let (broken, broken_rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            client,
            handlers: RwLock::default(),
            conn: RwLock::default(),
            state: watch::Sender::new(LinkState::Connecting),
            outbox,
            broken,
            dropped: AtomicU64::new(0),
        });
        tokio::spawn(supervise(Arc::downgrade(&inner), broken_rx, stop.clone()));
        tokio::spawn(publish_outgoing(Arc::downgrade(&inner), outgoing, stop));
        Ok(Self(Some(inner)))
    }

    pub fn is_cluster(&self) -> bool {
        self.0.is_some()
    }

    pub fn state(&self) -> LinkState {
        match &self.0 {
            Some(inner) => inner.state.borrow().clone(),
            None => LinkState::Up { generation: 1 },
        }
    }

    pub fn watch(&self) -> Option<watch::Receiver<LinkState>> {
        self.0.as_ref().map(|inner| inner.state.subscribe())
    }

    pub fn is_up(&self) -> bool {
        matches!(self.state(), LinkState::Up { .. })
    }

    /// Publications lost since the start because the link was down.
    pub fn dropped(&self) -> u64 {
        self.0
            .as_ref()
            .map_or(0, |inner| inner.dropped.load(Ordering::Relaxed))
    }

    /// Runs one command (or pipeline) on the connection; a broken connection is reported to the
    /// supervisor, which reconnects.
    pub async fn query<T: redis::FromRedisValue>(
        &self,
        command: &impl Command,
    ) -> Result<T, LinkError> {
        let inner = self.0.as_ref().ok_or(LinkError::Down)?;
        let (mut conn, generation) = inner.connection().ok_or(LinkError::Down)?;
        command
            .run(&mut conn)
            .await
            .map_err(|e| inner.failed(generation, e))
    }
}

/// A single command or a pipeline.
pub trait Command: Sync {
    fn run<T: redis::FromRedisValue>(
        &self,
        conn: &mut MultiplexedConnection,
    ) -> impl Future<Output = redis::RedisResult<T>> + Send;
}

impl Command for redis::Cmd {
    fn run<T: redis::FromRedisValue>(
        &self,
        conn: &mut MultiplexedConnection,
    ) -> impl Future<Output = redis::RedisResult<T>> + Send {
        self.query_async(conn)
    }
}

impl Command for redis::Pipeline {
    fn run<T: redis::FromRedisValue>(
        &self,
        conn: &mut MultiplexedConnection,
    ) -> impl Future<Output = redis::RedisResult<T>> + Send {
        self.query_async(conn)
    }
}

impl Inner {
    fn connection(&self) -> Option<(MultiplexedConnection, u64)> {
        self.conn.read().ok()?.clone()
    }

    /// Turns a command's error into a [`LinkError`], telling the supervisor when the connection
    /// itself is broken.
    fn failed(&self, generation: u64, error: redis::RedisError) -> LinkError {
        if error.is_io_error()
            || error.is_timeout()
            || error.is_connection_dropped()
            || error.is_unrecoverable_error()
        {
            let _ = self.broken.send(generation);
            LinkError::Down
        } else {
            LinkError::Command(error.to_string())
        }
    }

    fn route(&self, push: PushInfo, generation: u64) {
        match push.kind {
            PushKind::Message => {
                let mut data = push.data.into_iter();
                let (Some(channel), Some(payload)) = (data.next(), data.next()) else {
                    return;
                };
                let (Ok(channel), Ok(payload)) = (
                    redis::from_redis_value::<String>(channel),
                    redis::from_redis_value::<Vec<u8>>(payload),
                ) else {
                    return;
                };
                let handlers = self.handlers.read().unwrap_or_else(|p| p.into_inner());
                if let Some(tx) = handlers.get(&channel)
                    && tx.try_send((channel, payload)).is_err()
                {
                    tracing::warn!(
                        "a cluster channel is full: a message from another node was dropped"
                    );
                }
            }
            PushKind::Disconnection => {
                let _ = self.broken.send(generation);
            }
            _ => {}
        }
    }
}

/// Keeps the link connected: connects, subscribes to every channel, waits until the connection
/// breaks, and starts again with a growing pause.
async fn supervise(
    inner: Weak<Inner>,
    mut broken: mpsc::UnboundedReceiver<u64>,
    stop: CancellationToken,
) {
    let mut generation = 0;
    let mut attempt = 0;
    let mut down_since: Option<Instant> = None;
    loop {
        let Some(link) = inner.upgrade() else { return };
        let next = generation + 1;
        match connect(&link, next).await {
            Ok(conn) => {
                generation = next;
                attempt = 0;
                *link.conn.write().unwrap_or_else(|p| p.into_inner()) = Some((conn, generation));
                link.state.send_replace(LinkState::Up { generation });
                match down_since.take() {
                    Some(since) => tracing::info!(
                        after = ?since.elapsed(),
                        "redis link restored"
                    ),
                    None => tracing::info!("redis link up"),
                }
                drop(link);
                // Until the current connection breaks (reports about older ones are stale).
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        report = broken.recv() => match report {
                            Some(g) if g == generation => break,
                            Some(_) => continue,
                            None => return,
                        },
                    }
                }
                let Some(link) = inner.upgrade() else { return };
                *link.conn.write().unwrap_or_else(|p| p.into_inner()) = None;
                link.state.send_replace(LinkState::Down {
                    reason: "redis connection lost".into(),
                });
                tracing::warn!("redis link lost: serving local connections only until it is back");
                down_since = Some(Instant::now());
            }
            Err(error) => {
                let reason = format!("redis unreachable: {error}");
                if down_since.is_none() {
                    tracing::warn!("{reason}: serving local connections only until it is back");
                    down_since = Some(Instant::now());
                }
                link.state.send_replace(LinkState::Down { reason });
                drop(link);
                let pause = RECONNECT_BACKOFF[attempt.min(RECONNECT_BACKOFF.len() - 1)];
                attempt += 1;
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(pause)) => {}
                }
            }
        }
    }
}

async fn connect(link: &Arc<Inner>, generation: u64) -> redis::RedisResult<MultiplexedConnection> {
    let router = Arc::downgrade(link);
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(COMMAND_TIMEOUT))
        .set_response_timeout(Some(COMMAND_TIMEOUT))
        .set_push_sender(move |push: PushInfo| {
            if let Some(inner) = router.upgrade() {
                inner.route(push, generation);
            }
            Ok::<(), std::convert::Infallible>(())
        });
    let mut conn = link
        .client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let channels: Vec<String> = link
        .handlers
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .keys()
        .cloned()
        .collect();
    if !channels.is_empty() {
        conn.subscribe(&channels).await?;
    }
    Ok(conn)
}

/// Sends the publications in the order they were made, many per round trip.
async fn publish_outgoing(
    inner: Weak<Inner>,
    mut outgoing: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    stop: CancellationToken,
) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            n = outgoing.recv_many(&mut batch, PUBLISH_BATCH) => if n == 0 { return },
        }
        let Some(link) = inner.upgrade() else { return };
        let Some((mut conn, generation)) = link.connection() else {
            link.dropped
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            batch.clear();
            continue;
        };
        let mut pipe = redis::pipe();
        for (channel, payload) in batch.drain(..) {
            pipe.publish(channel, payload).ignore();
        }
        if let Err(error) = pipe.query_async::<()>(&mut conn).await {
            link.dropped.fetch_add(pipe.len() as u64, Ordering::Relaxed);
            let _ = link.failed(generation, error);
        }
    }
}

impl Link {
    /// Publishes in the background, in the order of the calls: nothing waits for Redis. While the
    /// link is down it fails at once, and the caller falls back to what this node can do alone.
    pub fn send(&self, chan: String, val: Vec<u8>) -> Result<(), LinkError> {
        let Some(inner) = &self.0 else {
            return Ok(());
        };
        if inner.connection().is_none() {
            inner.dropped.fetch_add(1, Ordering::Relaxed);
            return Err(LinkError::Down);
        }
        inner.outbox.send((chan, val)).map_err(|_| LinkError::Down)
    }
}

impl Driver for Link {
    type Error = LinkError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), LinkError> {
        self.send(chan, val)
    }

    /// Registers the channel (subscribed again after every reconnect) and subscribes now if the
    /// link is up; a node starts even while Redis is away.
    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, LinkError> {
        let Some(inner) = &self.0 else {
            return Ok(MessageStream::new_empty());
        };
        let (tx, rx) = mpsc::channel(size.max(1));
        inner
            .handlers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(chan.clone(), tx);
        if let Some((mut conn, generation)) = inner.connection()
            && let Err(error) = conn.subscribe(&chan).await
        {
            let _ = inner.failed(generation, error);
        }
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), LinkError> {
        let Some(inner) = &self.0 else {
            return Ok(());
        };
        inner
            .handlers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&chan);
        if let Some((mut conn, generation)) = inner.connection() {
            conn.unsubscribe(&chan)
                .await
                .map_err(|e| inner.failed(generation, e))?;
        }
        Ok(())
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, LinkError> {
        if self.0.is_none() {
            return Ok(1);
        }
        let (_, count): (String, u16) = self
            .query(redis::cmd("PUBSUB").arg("NUMSUB").arg(chan))
            .await?;
        Ok(count)
    }
}
