//! One connection as kefu keeps it: its identity and token times, its rate allowances, and the
//! turnstile that keeps its messages in the order they were sent.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
    },
    time::Instant,
};

use super::ConnectionLimits;
use crate::{
    metrics::{Limit, Metrics},
    services::{
        auth::{Identity, Verified},
        delivery::ConnectionId,
        limits::TokenBucket,
    },
};

/// What kefu keeps per connection (in the socket's extensions).
pub struct Conn {
    pub id: ConnectionId,
    pub identity: Identity,
    /// When its token was issued and when it expires (milliseconds since the Unix epoch): a
    /// connection lives no longer than its token, nor past the token's revocation.
    pub(super) issued_at: i64,
    pub(super) expires_at: i64,
    /// `private_message` allowance.
    rate: Mutex<TokenBucket>,
    /// Allowance of every other event.
    events: Mutex<TokenBucket>,
    metrics: Arc<Metrics>,
    /// Milliseconds since the registry started at the last `heartbeat`; 0 until the first one.
    pub(super) last_heartbeat: AtomicI64,
    order: Turnstile,
    /// Its outgoing buffer overflowed: it has missed something and must resync, so nothing more
    /// is sent to it while it is being closed.
    pub(super) lagging: AtomicBool,
    pub(super) registered: Instant,
}

impl Conn {
    pub(super) fn new(
        id: ConnectionId,
        token: Verified,
        limits: &ConnectionLimits,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            id,
            identity: token.identity,
            issued_at: token.issued_at,
            expires_at: token.expires_at,
            rate: Mutex::new(TokenBucket::new(
                f64::from(limits.message_rate),
                limits.message_burst,
            )),
            events: Mutex::new(TokenBucket::new(
                f64::from(limits.event_rate),
                limits.event_burst,
            )),
            metrics,
            last_heartbeat: AtomicI64::new(0),
            order: Turnstile::default(),
            lagging: AtomicBool::new(false),
            registered: Instant::now(),
        }
    }

    /// Takes one message from the connection's allowance; `false` when it is used up.
    fn try_send_message(&self) -> bool {
        self.rate
            .lock()
            .map(|mut bucket| bucket.take(Instant::now()).is_ok())
            .unwrap_or(true)
    }

    /// Takes one event from the connection's allowance; `false` when it is used up.
    pub fn try_event(&self) -> bool {
        let allowed = self
            .events
            .lock()
            .map(|mut bucket| bucket.take(Instant::now()).is_ok())
            .unwrap_or(true);
        if !allowed {
            self.metrics.limited(Limit::Events);
        }
        allowed
    }

    /// A place in this connection's line, taken in the order its events arrived, with the
    /// verdict of the rate limit taken in that same order.
    pub fn ticket(self: &Arc<Self>) -> Ticket {
        let number = self.order.next.fetch_add(1, Ordering::Relaxed);
        let within_rate = self.try_send_message();
        Ticket {
            conn: self.clone(),
            number,
            within_rate,
        }
    }
}

/// Socket.IO runs each event handler as its own task, so two messages from one connection could
/// overtake each other while they are validated. A ticket, taken when the event arrives, lets the
/// handler wait for its turn before it queues the message for writing: a sender's messages get
/// their `seq` in the order they were sent.
#[derive(Default)]
struct Turnstile {
    next: AtomicU64,
    state: Mutex<TurnState>,
    changed: tokio::sync::Notify,
}

#[derive(Default)]
struct TurnState {
    current: u64,
    /// Tickets given up before their turn came.
    skipped: std::collections::BTreeSet<u64>,
}

pub struct Ticket {
    conn: Arc<Conn>,
    number: u64,
    pub within_rate: bool,
}

impl Ticket {
    /// Resolves when every earlier ticket of the connection is done.
    pub async fn turn(&self) {
        let order = &self.conn.order;
        loop {
            let changed = order.changed.notified();
            if order
                .state
                .lock()
                .map(|s| s.current >= self.number)
                .unwrap_or(true)
            {
                return;
            }
            changed.await;
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let order = &self.conn.order;
        let Ok(mut state) = order.state.lock() else {
            return;
        };
        if state.current == self.number {
            state.current += 1;
            loop {
                let next = state.current;
                if !state.skipped.remove(&next) {
                    break;
                }
                state.current += 1;
            }
            order.changed.notify_waiters();
        } else {
            state.skipped.insert(self.number);
        }
    }
}
