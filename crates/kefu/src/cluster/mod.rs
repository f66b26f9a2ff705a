//! Several nodes on one database and one Redis; everything multi-node lives here.
//!
//! - [`link`]: the Redis connection, kept alive, and the Socket.IO adapter's pub/sub driver.
//! - Delivery: a notice goes to this node's connections at once (the registry in
//!   `socket::connections`, which disconnects a connection that does not keep up), and through the
//!   socketioxide-redis adapter to the user's room on the other nodes.
//! - Presence: a user is online while it has a connection on any node. Each node keeps its users
//!   in Redis and refreshes its own liveness; a node that stops refreshing is declared dead by the
//!   others, which take its users offline. Without a Redis URL, a node is alone and Redis is never
//!   needed.
//! - While Redis is away, a node serves its own connections, answers presence from what it sees,
//!   and reports not ready; when Redis is back it restores its users and asks every client to
//!   resync, since deliveries to other nodes may have been missed.

pub mod link;
mod presence;

pub use presence::NodeFigures;

use std::{
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use serde_json::value::RawValue;
use socketioxide::{SocketIo, adapter::Emitter};
use socketioxide_redis::{CustomRedisAdapter, drivers::Driver};
use tokio::{sync::mpsc, task::JoinSet};
use tokio_util::sync::CancellationToken;

use self::link::{Link, LinkState};
use crate::{
    domain::UserId,
    services::{
        chat::Chat,
        delivery::{ConnectionId, Delivery, Notice, Pending},
    },
    socket::{
        connections::{Connections, PresenceChange},
        events,
    },
};

/// The Socket.IO adapter of every node; alone, its link never leaves the process.
pub type Adapter = CustomRedisAdapter<Emitter, Link>;
pub type Io = SocketIo<Adapter>;

/// The room of every connection of a user, on every node.
pub fn user_room(user: UserId) -> String {
    format!("u:{user}")
}

/// The room of a user's connections on one node: this node's own connections are served from
/// the registry, so a broadcast leaves them out with this room.
pub fn user_node_room(user: UserId, node: &str) -> String {
    format!("u:{user}@{node}")
}

/// The one Socket.IO namespace kefu serves. It is gone once the server has closed, so it is looked
/// up each time (socketioxide's shortcuts panic without it).
pub const ROOT: &str = "/";

/// Room for cache-invalidation messages waiting for the publisher.
const INVALIDATIONS_BUFFER: usize = 4096;

/// An event for a user's connections on the other nodes.
struct RemoteEmit {
    to: UserId,
    event: &'static str,
    payload: Arc<RawValue>,
}

pub struct Cluster {
    node: String,
    keys: presence::Keys,
    /// Customers whose open conversation changed (assigned, released); each node forgets its copy.
    conversations_channel: String,
    started_at: i64,
    link: Link,
    local: Arc<Connections>,
    io: OnceLock<Io>,
    remote: mpsc::UnboundedSender<RemoteEmit>,
    startup: Mutex<Option<Startup>>,
    /// How long a node may go without refreshing before the others declare it dead.
    node_timeout: Duration,
}

/// What [`Cluster::start`] consumes.
struct Startup {
    remote: mpsc::UnboundedReceiver<RemoteEmit>,
    changes: mpsc::UnboundedReceiver<PresenceChange>,
}

impl Cluster {
    pub fn new(
        node: String,
        prefix: &str,
        started_at: i64,
        link: Link,
        local: Arc<Connections>,
        changes: mpsc::UnboundedReceiver<PresenceChange>,
        node_timeout: Duration,
    ) -> Self {
        let (remote, remote_rx) = mpsc::unbounded_channel();
        Self {
            node,
            keys: presence::Keys::new(prefix),
            conversations_channel: format!("{prefix}#conversations"),
            started_at,
            link,
            local,
            io: OnceLock::new(),
            remote,
            startup: Mutex::new(Some(Startup {
                remote: remote_rx,
                changes,
            })),
            node_timeout,
        }
    }

    pub fn link(&self) -> &Link {
        &self.link
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Why this node should not take traffic, if it should not.
    pub fn not_ready(&self) -> Option<String> {
        match self.link.state() {
            LinkState::Up { .. } => None,
            LinkState::Connecting => Some("redis: connecting".into()),
            LinkState::Down { reason } => Some(reason),
        }
    }

    /// Starts the background work once the Socket.IO server exists: publishing to other nodes,
    /// presence, and following other nodes' changes to conversations.
    pub fn start(
        self: &Arc<Self>,
        io: Io,
        chat: Chat,
        stop: CancellationToken,
        tasks: &mut JoinSet<()>,
    ) {
        let Some(startup) = self.startup.lock().ok().and_then(|mut p| p.take()) else {
            return;
        };
        let _ = self.io.set(io.clone());
        if self.link.is_cluster() {
            tasks.spawn(publish_remote(
                io.clone(),
                self.node.clone(),
                startup.remote,
                stop.clone(),
            ));
            tasks.spawn(follow_conversations(
                self.link.clone(),
                self.conversations_channel.clone(),
                chat.clone(),
                stop.clone(),
            ));
        }
        tasks.spawn(presence::run(self.clone(), io, chat, startup.changes, stop));
    }

    /// Every live node with its figures; this node alone when it runs alone or Redis is away.
    pub async fn nodes(&self) -> Vec<NodeFigures> {
        if self.link.is_cluster() && self.link.is_up() {
            match presence::nodes(&self.link, &self.keys).await {
                Ok(nodes) if !nodes.is_empty() => return nodes,
                Ok(_) => {}
                Err(error) => tracing::debug!(%error, "listing the nodes"),
            }
        }
        vec![NodeFigures {
            id: self.node.clone(),
            started_at: self.started_at,
            connections: self.local.len(),
            online_users: self.local.online_users(),
            agents: self.local.online_agents(),
        }]
    }

    /// Disconnects every connection of a user, on every node.
    pub async fn disconnect_user(&self, user: UserId) {
        self.local.disconnect_user(user);
        if self.link.is_cluster()
            && self.link.is_up()
            && let Some(io) = self.io.get()
            && let Some(root) = io.of(ROOT)
            && let Err(error) = root.to(user_room(user)).disconnect().await
        {
            tracing::warn!(%error, "could not reach the other nodes to disconnect a user");
        }
    }
}

impl Delivery for Cluster {
    fn notify(&self, to: UserId, notice: &Notice<'_>, except: Option<ConnectionId>) {
        let cluster = self.link.is_cluster() && self.link.is_up();
        for (event, payload) in events::encode(notice) {
            self.local.emit(to, event, &payload, except);
            if cluster {
                let _ = self.remote.send(RemoteEmit { to, event, payload });
            }
        }
    }

    fn online<'a>(&'a self, users: &'a [UserId]) -> Pending<'a, Vec<bool>> {
        Box::pin(async move {
            if users.is_empty() {
                return Vec::new();
            }
            if self.link.is_cluster() && self.link.is_up() {
                match presence::online(&self.link, &self.keys, users).await {
                    Ok(online) => return online,
                    Err(error) => tracing::debug!(%error, "presence from this node only"),
                }
            }
            users.iter().map(|u| self.local.is_online(*u)).collect()
        })
    }

    fn online_agents(&self) -> Pending<'_, Vec<UserId>> {
        Box::pin(async move {
            if self.link.is_cluster() && self.link.is_up() {
                match presence::online_agents(&self.link, &self.keys).await {
                    Ok(agents) => return agents,
                    Err(error) => tracing::debug!(%error, "online agents from this node only"),
                }
            }
            self.local.online_agents()
        })
    }

    fn conversation_changed(&self, customer: UserId) {
        if self.link.is_cluster() && self.link.is_up() {
            let _ = self.link.send(
                self.conversations_channel.clone(),
                customer.to_string().into_bytes(),
            );
        }
    }
}

/// Sends events to users' connections on the other nodes, in the order they were made.
async fn publish_remote(
    io: Io,
    node: String,
    mut queue: mpsc::UnboundedReceiver<RemoteEmit>,
    stop: CancellationToken,
) {
    loop {
        let item = tokio::select! {
            _ = stop.cancelled() => return,
            item = queue.recv() => match item {
                Some(item) => item,
                None => return,
            },
        };
        // Stopping: the namespace is gone, there is nobody left to tell.
        let Some(root) = io.of(ROOT) else { return };
        // The publication is queued on the link, not awaited on Redis; a failure means the link
        // is down, which the link reports once.
        let _ = root
            .to(user_room(item.to))
            .except(user_node_room(item.to, &node))
            .emit(item.event, &*item.payload)
            .await;
    }
}

/// Forgets the cached open conversation of customers changed on other nodes.
async fn follow_conversations(link: Link, channel: String, chat: Chat, stop: CancellationToken) {
    use futures_util::StreamExt;
    let Ok(mut changes) = link.subscribe(channel, INVALIDATIONS_BUFFER).await else {
        return;
    };
    loop {
        let item = tokio::select! {
            _ = stop.cancelled() => return,
            item = changes.next() => match item {
                Some((_, payload)) => payload,
                None => return,
            },
        };
        if let Some(customer) = std::str::from_utf8(&item)
            .ok()
            .and_then(|s| UserId::parse(s).ok())
        {
            chat.forget_conversation(customer);
        }
    }
}
