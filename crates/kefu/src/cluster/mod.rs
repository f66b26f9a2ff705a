//! Several nodes on one database and one Redis; everything multi-node lives here.
//!
//! - Delivery: a notice goes to this node's connections at once (the registry in
//!   [`crate::connections`], which disconnects a connection that does not keep up), and through
//!   the socketioxide-redis adapter ([`crate::adapter`], over the Redis link) to the user's room on
//!   the other nodes.
//! - Presence: a user is online while it has a connection on any node. Each node keeps its users
//!   in Redis and refreshes its own liveness; a node that stops refreshing is declared dead by the
//!   others, which take its users offline. Without a Redis URL, a node is alone and Redis is never
//!   needed.
//! - While Redis is away, a node serves its own connections, answers presence from what it sees,
//!   and reports not ready; when Redis is back it restores its users and asks every client to
//!   resync, since deliveries to other nodes may have been missed.

mod presence;

pub use presence::NodeFigures;

use std::{sync::Arc, time::Duration};

use serde_json::value::RawValue;
use socketioxide_redis::drivers::Driver;
use tokio::{sync::mpsc, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    adapter::{Io, Link, LinkState, ROOT, user_node_room, user_room},
    connections::{Connections, PresenceChange},
    domain::UserId,
    protocol,
    services::{
        accounts::Accounts,
        chat::Chat,
        delivery::{ConnectionId, Delivery, Notice, Pending},
    },
};

/// What marks an account change on the changes channel (a customer's id alone is a conversation's).
const ACCOUNT_CHANGED: &str = "a:";

/// Room for cache-invalidation messages waiting for the publisher.
const INVALIDATIONS_BUFFER: usize = 4096;

/// What goes to the other nodes, in the order it was made.
enum Remote {
    /// An event for a user's connections there.
    Emit {
        to: UserId,
        event: &'static str,
        payload: Arc<RawValue>,
    },
    /// Every connection of a user there closes.
    Disconnect { user: UserId },
}

pub struct Cluster {
    node: String,
    keys: presence::Keys,
    /// What a node changed that the others keep a copy of: customers' open conversations
    /// (assigned, released) and accounts (signed out, disabled); each node forgets its copy.
    changes_channel: String,
    started_at: i64,
    link: Link,
    local: Arc<Connections>,
    remote: mpsc::UnboundedSender<Remote>,
    /// How long a node may go without refreshing before the others declare it dead.
    node_timeout: Duration,
}

/// The cluster's background work, started once the Socket.IO server exists ([`Work::start`]):
/// publishing to the other nodes, presence, and following their changes to conversations.
pub struct Work {
    cluster: Arc<Cluster>,
    remote: mpsc::UnboundedReceiver<Remote>,
    changes: mpsc::UnboundedReceiver<PresenceChange>,
}

impl Cluster {
    /// The cluster, and its work to start once there is a Socket.IO server: the server's state
    /// holds the cluster, so the server is made after it.
    pub fn new(
        node: String,
        prefix: &str,
        started_at: i64,
        link: Link,
        local: Arc<Connections>,
        changes: mpsc::UnboundedReceiver<PresenceChange>,
        node_timeout: Duration,
    ) -> (Arc<Self>, Work) {
        let (remote, remote_rx) = mpsc::unbounded_channel();
        let cluster = Arc::new(Self {
            node,
            keys: presence::Keys::new(prefix),
            changes_channel: format!("{prefix}#conversations"),
            started_at,
            link,
            local,
            remote,
            node_timeout,
        });
        let work = Work {
            cluster: cluster.clone(),
            remote: remote_rx,
            changes,
        };
        (cluster, work)
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

    /// An account changed (signed out, disabled or enabled): the other nodes check its tokens
    /// against the database again. (This node's caller has forgotten it already.)
    pub fn account_changed(&self, user: UserId) {
        if self.link.is_cluster() && self.link.is_up() {
            let _ = self.link.send(
                self.changes_channel.clone(),
                format!("{ACCOUNT_CHANGED}{user}").into_bytes(),
            );
        }
    }

    /// Disconnects every connection of a user, here at once and on the other nodes next.
    pub fn disconnect_user(&self, user: UserId) {
        self.local.disconnect_user(user);
        if self.link.is_cluster() && self.link.is_up() {
            let _ = self.remote.send(Remote::Disconnect { user });
        }
    }
}

impl Work {
    pub fn start(
        self,
        io: Io,
        chat: Chat,
        accounts: Accounts,
        stop: CancellationToken,
        tasks: &mut JoinSet<()>,
    ) {
        let cluster = self.cluster;
        if cluster.link.is_cluster() {
            tasks.spawn(publish_remote(
                io.clone(),
                cluster.node.clone(),
                self.remote,
                stop.clone(),
            ));
            tasks.spawn(follow_changes(
                cluster.link.clone(),
                cluster.changes_channel.clone(),
                chat.clone(),
                accounts,
                stop.clone(),
            ));
        }
        tasks.spawn(presence::run(cluster, io, chat, self.changes, stop));
    }
}

impl Delivery for Cluster {
    fn notify(&self, to: UserId, notice: &Notice<'_>, except: Option<ConnectionId>) {
        let cluster = self.link.is_cluster() && self.link.is_up();
        for (event, payload) in protocol::encode(notice) {
            self.local.emit(to, event, &payload, except);
            if cluster {
                let _ = self.remote.send(Remote::Emit { to, event, payload });
            }
        }
    }

    fn notify_here(&self, to: UserId, notice: &Notice<'_>) {
        if !self.local.is_online(to) {
            return;
        }
        for (event, payload) in protocol::encode(notice) {
            self.local.emit(to, event, &payload, None);
        }
    }

    fn sees_every_node(&self) -> bool {
        !self.link.is_cluster() || self.link.is_up()
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
                self.changes_channel.clone(),
                customer.to_string().into_bytes(),
            );
        }
    }
}

/// Sends events to users' connections on the other nodes, and closes them there, in the order
/// they were made.
async fn publish_remote(
    io: Io,
    node: String,
    mut queue: mpsc::UnboundedReceiver<Remote>,
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
        match item {
            // The publication is queued on the link, not awaited on Redis; a failure means the
            // link is down, which the link reports once.
            Remote::Emit { to, event, payload } => {
                let _ = root
                    .to(user_room(to))
                    .except(user_node_room(to, &node))
                    .emit(event, &*payload)
                    .await;
            }
            Remote::Disconnect { user } => {
                if let Err(error) = root
                    .to(user_room(user))
                    .except(user_node_room(user, &node))
                    .disconnect()
                    .await
                {
                    tracing::warn!(%error, "could not reach the other nodes to disconnect a user");
                }
            }
        }
    }
}

/// Forgets what other nodes changed: a customer's cached open conversation (its id), or an
/// account's cached token check (`a:` and its id).
async fn follow_changes(
    link: Link,
    channel: String,
    chat: Chat,
    accounts: Accounts,
    stop: CancellationToken,
) {
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
        let Ok(text) = std::str::from_utf8(&item) else {
            continue;
        };
        match text.strip_prefix(ACCOUNT_CHANGED) {
            Some(account) => {
                if let Ok(user) = UserId::parse(account) {
                    accounts.forget(user);
                }
            }
            None => {
                if let Ok(customer) = UserId::parse(text) {
                    chat.forget_conversation(customer);
                }
            }
        }
    }
}
