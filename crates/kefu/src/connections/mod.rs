//! The live connections of this node, by user: this node's view of presence ("online while any
//! connection is alive"), and delivery of events to each of a user's connections here.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::value::RawValue;
use socketioxide::{SendError, SocketError};
use tokio::sync::mpsc;

mod conn;

pub use conn::{Conn, Ticket};

use crate::{
    adapter::SocketRef,
    domain::{Role, UserId},
    metrics::Metrics,
    services::{
        auth::{Identity, Verified},
        delivery::ConnectionId,
    },
    store::Revocation,
};

/// A user came online on this node (its first connection was confirmed) or went offline here (its
/// last one closed). Made under the registry's lock, so they are queued in the order they happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceChange {
    pub identity: Identity,
    pub online: bool,
}

struct Entry {
    conn: Arc<Conn>,
    socket: SocketRef,
}

#[derive(Default)]
struct UserConns {
    entries: Vec<Entry>,
    /// Its coming online was announced: its going offline will be.
    announced: bool,
}

#[derive(Default)]
struct Inner {
    by_user: HashMap<UserId, UserConns>,
    /// Agents with a live connection, in the order they came online.
    online_agents: Vec<UserId>,
    count: usize,
}

pub struct Connections {
    inner: Mutex<Inner>,
    next_id: AtomicU64,
    started: Instant,
    limits: ConnectionLimits,
    metrics: Arc<Metrics>,
    changes: mpsc::UnboundedSender<PresenceChange>,
}

/// Per-connection and per-user limits; a rate of 0 turns that limit off.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub message_rate: u32,
    pub message_burst: u32,
    pub event_rate: u32,
    pub event_burst: u32,
    /// Connections one user may hold on this node; 0 means no limit.
    pub per_user: usize,
}

/// The user already holds its maximum of connections here.
#[derive(Debug)]
pub struct TooManyConnections;

impl Connections {
    pub fn new(
        limits: ConnectionLimits,
        metrics: Arc<Metrics>,
        changes: mpsc::UnboundedSender<PresenceChange>,
    ) -> Self {
        Self {
            inner: Mutex::default(),
            next_id: AtomicU64::new(1),
            started: Instant::now(),
            limits,
            metrics,
            changes,
        }
    }

    fn went_offline(&self, user: &UserConns, identity: Identity) {
        if user.announced {
            let _ = self.changes.send(PresenceChange {
                identity,
                online: false,
            });
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind: keep serving.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn new_conn(&self, token: Verified) -> Arc<Conn> {
        let id = ConnectionId(self.next_id.fetch_add(1, Ordering::Relaxed));
        Arc::new(Conn::new(id, token, &self.limits, self.metrics.clone()))
    }

    /// Registers a connection, before the server confirms it: events can reach it from then on.
    /// Refused when its user holds its maximum of connections here already.
    pub fn add(&self, conn: Arc<Conn>, socket: SocketRef) -> Result<(), TooManyConnections> {
        let user = conn.identity.user_id;
        let is_agent = conn.identity.role == Role::Agent;
        let mut inner = self.lock();
        let conns = inner.by_user.entry(user).or_default();
        if self.limits.per_user > 0 && conns.entries.len() >= self.limits.per_user {
            return Err(TooManyConnections);
        }
        conns.entries.push(Entry { conn, socket });
        let first = conns.entries.len() == 1;
        inner.count += 1;
        if first && is_agent {
            inner.online_agents.push(user);
        }
        Ok(())
    }

    /// The connection is confirmed: its user comes online, unless it already was.
    pub fn confirm(&self, conn: &Conn) {
        let mut inner = self.lock();
        let Some(conns) = inner.by_user.get_mut(&conn.identity.user_id) else {
            return;
        };
        if !conns.announced && conns.entries.iter().any(|e| e.conn.id == conn.id) {
            conns.announced = true;
            let _ = self.changes.send(PresenceChange {
                identity: conn.identity,
                online: true,
            });
        }
    }

    /// Forgets a connection; its user goes offline with its last one.
    pub fn remove(&self, conn: &Conn) {
        let user = conn.identity.user_id;
        let mut inner = self.lock();
        let Some(conns) = inner.by_user.get_mut(&user) else {
            return;
        };
        let before = conns.entries.len();
        conns.entries.retain(|e| e.conn.id != conn.id);
        let removed = before - conns.entries.len();
        if conns.entries.is_empty()
            && let Some(gone) = inner.by_user.remove(&user)
        {
            inner.online_agents.retain(|a| *a != user);
            self.went_offline(&gone, conn.identity);
        }
        inner.count -= removed;
    }

    /// The users this node has announced online.
    pub fn announced_users(&self) -> Vec<Identity> {
        self.lock()
            .by_user
            .values()
            .filter(|u| u.announced)
            .filter_map(|u| u.entries.first().map(|e| e.conn.identity))
            .collect()
    }

    pub fn heartbeat(&self, conn: &Conn) {
        let now = self.started.elapsed().as_millis() as i64;
        conn.last_heartbeat.store(now.max(1), Ordering::Relaxed);
    }

    /// Forgets connections whose socket is closed but whose disconnect handler never ran (the
    /// connection failed between the handshake and its confirmation). Young entries are left
    /// alone: a socket is not marked connected until just after it is registered.
    pub fn purge_closed(&self) -> usize {
        let mut purged = Vec::new();
        let mut inner = self.lock();
        let mut emptied = Vec::new();
        for (user, conns) in inner.by_user.iter_mut() {
            conns.entries.retain(|e| {
                let stale =
                    !e.socket.connected() && e.conn.registered.elapsed() > Duration::from_secs(5);
                if stale {
                    purged.push(e.conn.clone());
                }
                !stale
            });
            if conns.entries.is_empty() {
                emptied.push(*user);
            }
        }
        for user in emptied {
            if let Some(gone) = inner.by_user.remove(&user)
                && let Some(conn) = purged
                    .iter()
                    .find(|c: &&Arc<Conn>| c.identity.user_id == user)
            {
                self.went_offline(&gone, conn.identity);
            }
            inner.online_agents.retain(|a| *a != user);
        }
        inner.count -= purged.len();
        purged.len()
    }

    /// Connections that sent a heartbeat once and then went silent for longer than `timeout`.
    pub fn silent(&self, timeout: Duration) -> Vec<SocketRef> {
        let now = self.started.elapsed().as_millis() as i64;
        let timeout = timeout.as_millis() as i64;
        let inner = self.lock();
        inner
            .by_user
            .values()
            .flat_map(|u| &u.entries)
            .filter(|e| {
                let last = e.conn.last_heartbeat.load(Ordering::Relaxed);
                last > 0 && now - last > timeout
            })
            .map(|e| e.socket.clone())
            .collect()
    }

    /// Connections whose token expired by `now` (milliseconds), or was revoked: their account
    /// is among `revoked` and disabled, or signed out after the token was issued.
    pub fn expired_or_revoked(&self, now: i64, revoked: &[Revocation]) -> Vec<SocketRef> {
        let revoked: HashMap<UserId, &Revocation> = revoked.iter().map(|r| (r.user, r)).collect();
        let inner = self.lock();
        let mut out = Vec::new();
        for (user, conns) in &inner.by_user {
            let revocation = revoked.get(user);
            for entry in &conns.entries {
                let conn = &entry.conn;
                let gone = conn.expires_at <= now
                    || revocation.is_some_and(|r| r.disabled || conn.issued_at < r.valid_from);
                if gone {
                    out.push(entry.socket.clone());
                }
            }
        }
        out
    }

    pub fn len(&self) -> usize {
        self.lock().count
    }

    /// Users with at least one connection.
    pub fn online_users(&self) -> usize {
        self.lock().by_user.len()
    }

    pub fn connections_of(&self, user: UserId) -> usize {
        self.lock()
            .by_user
            .get(&user)
            .map_or(0, |u| u.entries.len())
    }

    /// Closes every connection of a user (a disabled account). The user is offline from this
    /// call on, so that nothing is routed to it while the sockets close.
    pub fn disconnect_user(&self, user: UserId) {
        let sockets: Vec<SocketRef> = {
            let mut inner = self.lock();
            let conns = inner.by_user.remove(&user).unwrap_or_default();
            inner.online_agents.retain(|a| *a != user);
            inner.count -= conns.entries.len();
            if let Some(first) = conns.entries.first() {
                self.went_offline(&conns, first.conn.identity);
            }
            conns.entries.into_iter().map(|e| e.socket).collect()
        };
        for socket in sockets {
            let _ = socket.disconnect();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `user` has a connection on the Engine.IO session `sid` (one that connected to the
    /// namespace again after a disconnect).
    pub fn holds_session(&self, user: UserId, sid: socketioxide::socket::Sid) -> bool {
        self.lock()
            .by_user
            .get(&user)
            .is_some_and(|u| u.entries.iter().any(|e| e.socket.id == sid))
    }

    /// Emits to each connection of `to` here but `except`. A connection whose buffer is full is
    /// disconnected, so that it resyncs with `history` instead of silently missing a message.
    pub fn emit(&self, to: UserId, event: &str, payload: &RawValue, except: Option<ConnectionId>) {
        let mut slow = Vec::new();
        {
            let inner = self.lock();
            let Some(conns) = inner.by_user.get(&to) else {
                return;
            };
            for entry in conns.entries.iter().filter(|e| Some(e.conn.id) != except) {
                if entry.conn.lagging.load(Ordering::Relaxed) {
                    continue;
                }
                match entry.socket.emit(event, payload) {
                    Ok(()) if event == crate::protocol::NEW_PRIVATE_MESSAGE => {
                        self.metrics.messages_delivered.inc();
                    }
                    Ok(()) | Err(SendError::Socket(SocketError::Closed)) => {}
                    Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                        entry.conn.lagging.store(true, Ordering::Relaxed);
                        slow.push((entry.socket.clone(), entry.conn.id));
                    }
                    Err(e) => tracing::error!(error = %e, event, "cannot encode an event"),
                }
            }
        }
        // Session ids stay out of the logs: they would let a reader hijack a polling session.
        for (socket, connection) in slow {
            tracing::warn!(user = %to, connection = connection.0, "disconnecting a connection that does not keep up");
            self.metrics.slow_consumer_disconnects.inc();
            // With its buffer full even the disconnect packet may not fit; then the connection is
            // closed at its next Engine.IO ping, which cannot be queued either.
            let _ = socket.disconnect();
        }
    }
}

impl Connections {
    pub fn is_online(&self, user: UserId) -> bool {
        self.lock().by_user.contains_key(&user)
    }

    /// Agents with a live connection here, in the order they came online.
    pub fn online_agents(&self) -> Vec<UserId> {
        self.lock().online_agents.clone()
    }
}
