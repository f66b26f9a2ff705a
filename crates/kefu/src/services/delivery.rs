//! What the chat rules tell connected users, independent of how it travels: the transport
//! implements [`Delivery`] (see `cluster`).

use crate::{
    domain::{ConversationId, MessageId, QueuePlace, User, UserId},
    store::{Note, StoredMessage},
};

/// A connection, as the transport numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionId(pub u64);

#[derive(Debug)]
pub enum Notice<'a> {
    /// A stored message; `receiver` is `None` while its conversation waits for an agent.
    Message {
        message: &'a StoredMessage,
        receiver: Option<UserId>,
    },
    Read {
        reader: UserId,
        up_to: MessageId,
        conversation: ConversationId,
        seq: i64,
    },
    Typing {
        user: UserId,
        typing: bool,
    },
    Presence {
        user: UserId,
        online: bool,
    },
    /// The conversation lost its agent and waits in the queue again.
    Queued {
        conversation: ConversationId,
    },
    Assigned {
        conversation: ConversationId,
        customer: UserId,
        agent: &'a User,
    },
    /// A waiting customer's place in the queue.
    QueuePosition {
        conversation: ConversationId,
        place: QueuePlace,
    },
    Resolved {
        conversation: ConversationId,
        customer: UserId,
        agent: UserId,
    },
    AgentStatus {
        agent: UserId,
        available: bool,
    },
    /// The conversation left `from` (to another agent, or back to the queue).
    Transferred {
        conversation: ConversationId,
        customer: UserId,
        from: UserId,
        to: Option<UserId>,
    },
    /// A private note: only ever sent to staff.
    NoteAdded {
        note: &'a Note,
    },
}

/// A boxed future: what a [`Delivery`] answers that may need another node's word.
pub type Pending<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

pub trait Delivery: Send + Sync + 'static {
    /// Sends to every connection of `to` but `except`, on this node at once and on the others
    /// through the cluster. A connection that cannot take it (its buffer is full) is
    /// disconnected, never silently skipped.
    fn notify(&self, to: UserId, notice: &Notice<'_>, except: Option<ConnectionId>);
    /// [`Delivery::notify`] to the user's connections on this node only: for what every node
    /// tells its own users (each waiting customer's place in the queue).
    fn notify_here(&self, to: UserId, notice: &Notice<'_>);
    /// For each of `users`, whether it has a live connection on some node.
    fn online<'a>(&'a self, users: &'a [UserId]) -> Pending<'a, Vec<bool>>;
    /// Agents with a live connection, in the order they came online.
    fn online_agents(&self) -> Pending<'_, Vec<UserId>>;
    /// A customer's open conversation changed hands: other nodes forget their copy of it.
    fn conversation_changed(&self, customer: UserId);
    /// Whether [`Delivery::online`] sees every node's connections now (a node alone, or a
    /// cluster whose link to Redis is up): without it, users on other nodes look offline.
    fn sees_every_node(&self) -> bool;
}
