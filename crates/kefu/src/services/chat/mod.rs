//! The chat rules: who may talk to whom, routing customers to agents and the queue, handing
//! conversations on, messaging, notes and ratings, presence. Identity always comes from the
//! authenticated connection, never from a payload. One type, [`Chat`], in one file per topic:
//!
//! - here: the type, `login`, and finding the conversation a user may act in;
//! - [`routing`]: who takes a new conversation, the queue as a customer asks after it,
//!   availability and capacity;
//! - [`queue`]: the pump that drains the queue many conversations at a time and tells places;
//! - [`roster`]: every agent's capacity, availability and load, in memory;
//! - [`handover`]: transfer, resolve, and releasing a disabled agent's conversations;
//! - [`messaging`]: send, read, typing, history, system messages;
//! - [`notes`]: private notes and ratings;
//! - [`presence`]: who is online, and what changes when someone comes or goes;
//! - [`open`]: the cache of customers' latest conversations;
//! - [`timers`]: the offline path's timers (abandoned, idle, the agent left, the wait for an agent
//!   asked for), run by one node of a cluster;
//! - [`offline`]: what a visitor can expect now, the offline form, a customer's contact details.

mod handover;
mod messaging;
mod notes;
mod offline;
mod open;
mod presence;
mod queue;
mod roster;
mod routing;
mod timers;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

pub use messaging::{History, HistoryRequest, ReadOutcome, SendRequest};
pub use notes::MAX_RATING_COMMENT_CHARS;
pub use offline::{Availability, AvailabilityState, Contact, OfflineMessage};
pub use routing::{MAX_CAPACITY, RequestedAgent};
pub use timers::Release;

use self::{
    open::{FRESH_ALONE, FRESH_IN_CLUSTER, Latest, OpenConversations},
    queue::Pump,
    roster::{ROSTER_FRESH_ALONE, ROSTER_FRESH_IN_CLUSTER, Roster},
};
use super::{Error, Result, auth::Identity, delivery::Delivery, writer::Writer};
use crate::{
    domain::{ConversationId, QueuePlace, UserId},
    store::{Conversation, ConversationSummary, Member, Store, StoreError},
};

#[derive(Clone)]
pub struct Chat {
    store: Store,
    open: Arc<OpenConversations>,
    roster: Arc<Roster>,
    pump: Arc<Pump>,
    requests: Arc<Requests>,
    starting: Arc<Starting>,
    writer: Writer,
    delivery: Arc<dyn Delivery>,
    max_message_bytes: usize,
    timers: crate::config::Timers,
    metrics: Arc<crate::metrics::Metrics>,
    /// Set when the server stops: long work (draining the queue) ends at its next step, leaving
    /// the rest for the next start.
    stopping: tokio_util::sync::CancellationToken,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginOutcome {
    pub cs_id: Option<UserId>,
    pub conversation_id: Option<ConversationId>,
    pub queued: bool,
    /// Where a waiting customer is in the queue.
    pub place: Option<QueuePlace>,
    /// The customer's last conversation was resolved and it has not written since: no new
    /// conversation is started (and no agent taken) until it does.
    pub ended: bool,
    /// The agent it asked for (`csId`): online or not, and until when it is waited for.
    pub requested: Option<RequestedAgent>,
}

/// The agent each customer asked for at `login` (`csId`), until its first message routes it.
#[derive(Default)]
struct Requests(Mutex<HashMap<UserId, (UserId, Instant)>>);

/// How long a request is remembered, and how many before old ones are swept.
const REQUEST_KEPT: Duration = Duration::from_secs(24 * 3600);
const REQUESTS_SWEPT_ABOVE: usize = 100_000;

impl Requests {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, (UserId, Instant)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remember(&self, customer: UserId, agent: UserId) {
        let mut map = self.lock();
        if map.len() >= REQUESTS_SWEPT_ABOVE {
            map.retain(|_, (_, at)| at.elapsed() < REQUEST_KEPT);
        }
        map.insert(customer, (agent, Instant::now()));
    }

    fn of(&self, customer: UserId) -> Option<UserId> {
        self.lock()
            .get(&customer)
            .filter(|(_, at)| at.elapsed() < REQUEST_KEPT)
            .map(|(agent, _)| *agent)
    }

    fn forget(&self, customer: UserId) {
        self.lock().remove(&customer);
    }
}

/// Customers whose first messages are on their way to the writer: all of them hint the agent the
/// first one was promised, and the promise ends once, when the conversation is written.
#[derive(Default)]
struct Starting(Mutex<HashMap<UserId, Start>>);

/// One customer's start in flight.
struct Start {
    agent: Option<UserId>,
    /// The agent asked for that is waited for, and until when.
    waits_for: Option<(UserId, i64)>,
    /// Messages of it not stored (or refused) yet.
    pending: usize,
    /// Its outcome is known: the promise to `agent` ended.
    settled: bool,
}

impl Starting {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, Start>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Chat {
    pub fn new(
        store: Store,
        writer: Writer,
        delivery: Arc<dyn Delivery>,
        max_message_bytes: usize,
        in_cluster: bool,
        timers: crate::config::Timers,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        let (fresh_for, roster_fresh_for) = if in_cluster {
            (FRESH_IN_CLUSTER, ROSTER_FRESH_IN_CLUSTER)
        } else {
            (FRESH_ALONE, ROSTER_FRESH_ALONE)
        };
        Self {
            store,
            open: Arc::new(OpenConversations::new(fresh_for)),
            roster: Arc::new(Roster::new(roster_fresh_for)),
            pump: Arc::default(),
            requests: Arc::default(),
            starting: Arc::default(),
            writer,
            delivery,
            max_message_bytes,
            timers,
            metrics,
            stopping: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// The server is stopping: work in progress ends at its next step.
    pub fn stop(&self) {
        self.stopping.cancel();
    }

    /// The reference design's `login`: the claimed user id must be the caller's own. It writes
    /// nothing: a customer's conversation starts with its first message. An agent's login wakes
    /// the queue without waiting for it.
    #[tracing::instrument(skip_all, fields(user = %me.user_id))]
    pub async fn login(
        &self,
        me: Identity,
        claimed: UserId,
        cs_id: Option<UserId>,
    ) -> Result<LoginOutcome> {
        if claimed != me.user_id {
            return Err(Error::Forbidden("userId is not the authenticated user"));
        }
        if me.role.is_staff() {
            self.wake_queue();
            return Ok(LoginOutcome {
                cs_id: Some(me.user_id),
                conversation_id: None,
                queued: false,
                place: None,
                ended: false,
                requested: None,
            });
        }
        if let Some(requested) = cs_id {
            self.check_requested(requested).await?;
            self.requests.remember(me.user_id, requested);
        }
        let mut outcome = match self.latest(me.user_id).await? {
            Latest::Open(conversation) => {
                let place = match conversation.agent_id {
                    Some(_) => None,
                    None => self.queue_place(conversation.id).await?,
                };
                LoginOutcome {
                    cs_id: conversation.agent_id,
                    conversation_id: Some(conversation.id),
                    queued: conversation.agent_id.is_none(),
                    place,
                    ended: false,
                    requested: None,
                }
            }
            // Coming back after the end: the next message starts a new conversation.
            Latest::Ended(id) => LoginOutcome {
                cs_id: None,
                conversation_id: Some(id),
                queued: false,
                place: None,
                ended: true,
                requested: None,
            },
            Latest::Nothing => LoginOutcome {
                cs_id: None,
                conversation_id: None,
                queued: false,
                place: None,
                ended: false,
                requested: None,
            },
        };
        if let Some(requested) = cs_id {
            // Only a conversation still waiting waits for the agent asked for.
            let waiting = outcome
                .conversation_id
                .filter(|_| outcome.queued && !outcome.ended);
            outcome.requested = Some(self.requested_agent(requested, waiting).await?);
        }
        Ok(outcome)
    }

    /// What is known of the customer's latest conversation: from the cache, else read.
    async fn latest(&self, customer: UserId) -> Result<Latest> {
        if let Some(latest) = self.open.get(customer) {
            return Ok(latest);
        }
        let latest = Latest::of(self.store.latest_conversation(customer).await?);
        self.open.put(customer, latest.clone());
        Ok(latest)
    }

    /// A customer's conversations, newest first.
    #[tracing::instrument(skip_all, fields(user = %me.user_id))]
    pub async fn conversations(&self, me: Identity) -> Result<Vec<ConversationSummary>> {
        Ok(self.store.conversations_of(me.user_id).await?)
    }

    /// My members (`all_member`): an agent's customers, or a customer's agent.
    #[tracing::instrument(skip_all, fields(user = %me.user_id))]
    pub async fn members(&self, me: Identity) -> Result<Vec<(Member, bool)>> {
        let members = self.store.members_of(me.user_id, me.role).await?;
        let ids: Vec<UserId> = members.iter().map(|m| m.user.id).collect();
        let online = self.delivery.online(&ids).await;
        Ok(members.into_iter().zip(online).collect())
    }

    /// The conversation I may act in with `peer` (an agent's customer, or a customer's agent; a
    /// customer may leave `peer` out). `not_found` for a customer without an open conversation.
    async fn conversation_with(&self, me: Identity, peer: Option<UserId>) -> Result<Conversation> {
        if me.role.is_staff() {
            let customer =
                peer.ok_or_else(|| Error::InvalidPayload("receiverId/peerId is required".into()))?;
            let conversation = self.latest(customer).await?.open();
            return match conversation.filter(|c| c.agent_id == Some(me.user_id)) {
                Some(conversation) => Ok(conversation),
                None => Err(self
                    .refusal(customer, "that user is not one of your customers")
                    .await),
            };
        }
        let Some(conversation) = self.latest(me.user_id).await?.open() else {
            return Err(Error::NotFound("no conversation yet: a message starts one"));
        };
        self.check_peer(&conversation, peer).await?;
        Ok(conversation)
    }

    /// A customer may name only its own agent (or nobody).
    async fn check_peer(&self, conversation: &Conversation, peer: Option<UserId>) -> Result<()> {
        match peer {
            Some(peer) if Some(peer) != conversation.agent_id => Err(self
                .refusal(peer, "you can only write to your own agent")
                .await),
            _ => Ok(()),
        }
    }

    /// The customer's open conversation; a customer without one starts it now (an upload before
    /// any message).
    async fn open_conversation(&self, customer: UserId) -> Result<Conversation> {
        match self.latest(customer).await?.open() {
            Some(conversation) => Ok(conversation),
            None => {
                let requested = self.requests.of(customer);
                let conversation = self.start_conversation(customer, requested).await?;
                self.requests.forget(customer);
                Ok(conversation)
            }
        }
    }

    /// The conversation `me` may write to with `peer` (a customer's own, started if needed).
    pub async fn writable_conversation(
        &self,
        me: Identity,
        peer: Option<UserId>,
    ) -> Result<ConversationId> {
        if me.role.is_staff() {
            return Ok(self.conversation_with(me, peer).await?.id);
        }
        let conversation = self.open_conversation(me.user_id).await?;
        self.check_peer(&conversation, peer).await?;
        Ok(conversation.id)
    }

    /// Why `peer` is out of reach: it does not exist (`not_found`), or it is someone else's.
    async fn refusal(&self, peer: UserId, forbidden: &'static str) -> Error {
        match self.store.user(peer).await {
            Ok(_) => Error::Forbidden(forbidden),
            Err(StoreError::NotFound) => Error::NotFound("no such user"),
            Err(e) => e.into(),
        }
    }

    /// Another node changed the customer's open conversation: read it again next time.
    pub fn forget_conversation(&self, customer: UserId) {
        self.open.forget(customer);
    }
}

/// The other person of a conversation, seen from `me`.
fn other_side(me: Identity, conversation: &Conversation) -> Option<UserId> {
    if me.user_id == conversation.customer_id {
        conversation.agent_id
    } else {
        Some(conversation.customer_id)
    }
}
