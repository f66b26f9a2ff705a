//! The cache of customers' open conversations.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use crate::{domain::UserId, store::Conversation};

/// Customers' open conversations as last read: every message needs its sender's conversation,
/// and a query per message costs more than the rest of its path. Changes made through this node
/// update it at once; a change made by another node arrives through Redis and is in any case
/// seen within [`FRESH_IN_CLUSTER`].
pub(super) struct OpenConversations {
    by_customer: std::sync::Mutex<HashMap<UserId, (Conversation, Instant)>>,
    fresh_for: Duration,
}

/// How long an entry is trusted on a node of a cluster: the bound on a missed invalidation.
pub(super) const FRESH_IN_CLUSTER: Duration = Duration::from_secs(2);
/// On a node alone, every change goes through it and updates the entry: only a change made in
/// the database by hand is waited for. (With 2 s here too, 10,000 customers writing once a
/// second cost 5,000 queries a second; docs/benchmarks.md.)
pub(super) const FRESH_ALONE: Duration = Duration::from_secs(60);
/// Entries kept before the stale ones are swept out.
const SWEEP_ABOVE: usize = 50_000;

impl OpenConversations {
    pub(super) fn new(fresh_for: Duration) -> Self {
        Self {
            by_customer: std::sync::Mutex::default(),
            fresh_for,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, (Conversation, Instant)>> {
        self.by_customer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn get(&self, customer: UserId) -> Option<Conversation> {
        let map = self.lock();
        let (conversation, at) = map.get(&customer)?;
        (at.elapsed() < self.fresh_for).then(|| conversation.clone())
    }

    pub(super) fn put(&self, conversation: &Conversation) {
        let mut map = self.lock();
        if map.len() >= SWEEP_ABOVE {
            let fresh_for = self.fresh_for;
            map.retain(|_, (_, at)| at.elapsed() < fresh_for);
            // Mostly fresh still: start over rather than sweep again at the next insert, so
            // that a sweep is paid for by at least SWEEP_ABOVE / 2 inserts.
            if map.len() >= SWEEP_ABOVE / 2 {
                map.clear();
            }
        }
        map.insert(
            conversation.customer_id,
            (conversation.clone(), Instant::now()),
        );
    }

    pub(super) fn forget(&self, customer: UserId) {
        self.lock().remove(&customer);
    }
}
