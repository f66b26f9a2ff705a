//! The cache of customers' latest conversations.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use crate::{
    domain::{ConversationId, UserId},
    store::Conversation,
};

/// What is known of a customer's latest conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Latest {
    /// It is open (with its agent, or waiting).
    Open(Conversation),
    /// It was resolved; the customer's next message starts another.
    Ended(ConversationId),
    /// The customer never had one: its first message starts it.
    Nothing,
}

impl Latest {
    pub(super) fn of(conversation: Option<Conversation>) -> Self {
        match conversation {
            Some(c) if c.open => Latest::Open(c),
            Some(c) => Latest::Ended(c.id),
            None => Latest::Nothing,
        }
    }

    pub(super) fn open(self) -> Option<Conversation> {
        match self {
            Latest::Open(conversation) => Some(conversation),
            _ => None,
        }
    }
}

/// Customers' latest conversations as last read: every message and every login needs it, and a
/// query each costs more than the rest of their path. Changes made through this node update it
/// at once (a conversation started, assigned, handed on, resolved); a change made by another node
/// arrives through Redis and is in any case seen within [`FRESH_IN_CLUSTER`].
pub(super) struct OpenConversations {
    by_customer: std::sync::Mutex<HashMap<UserId, (Latest, Instant)>>,
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, (Latest, Instant)>> {
        self.by_customer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn get(&self, customer: UserId) -> Option<Latest> {
        let map = self.lock();
        let (latest, at) = map.get(&customer)?;
        (at.elapsed() < self.fresh_for).then(|| latest.clone())
    }

    pub(super) fn put(&self, customer: UserId, latest: Latest) {
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
        map.insert(customer, (latest, Instant::now()));
    }

    pub(super) fn put_open(&self, conversation: &Conversation) {
        self.put(conversation.customer_id, Latest::Open(conversation.clone()));
    }

    pub(super) fn forget(&self, customer: UserId) {
        self.lock().remove(&customer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conversation(id: i64, open: bool) -> Conversation {
        Conversation {
            id: ConversationId(id),
            customer_id: UserId(7),
            agent_id: None,
            open,
            last_seq: 0,
        }
    }

    #[test]
    fn what_is_known_of_a_customer_is_trusted_for_a_while_then_read_again() {
        let cache = OpenConversations::new(Duration::from_millis(30));
        assert_eq!(cache.get(UserId(7)), None);
        cache.put(UserId(7), Latest::Nothing);
        assert_eq!(cache.get(UserId(7)), Some(Latest::Nothing));
        cache.put_open(&conversation(3, true));
        assert_eq!(
            cache.get(UserId(7)).and_then(Latest::open).map(|c| c.id),
            Some(ConversationId(3))
        );
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.get(UserId(7)), None, "stale entries are read again");
    }

    #[test]
    fn a_resolved_conversation_is_known_as_ended() {
        assert_eq!(
            Latest::of(Some(conversation(4, false))),
            Latest::Ended(ConversationId(4))
        );
        assert_eq!(Latest::of(None), Latest::Nothing);
        assert!(matches!(
            Latest::of(Some(conversation(5, true))),
            Latest::Open(_)
        ));
    }
}
