//! The chat rules: who may talk to whom, routing customers to agents and the queue, handing
//! conversations on, messaging, notes and ratings, presence. Identity always comes from the
//! authenticated connection, never from a payload. One type, [`Chat`], in one file per topic:
//!
//! - here: the type, `login`, and finding the conversation a user may act in;
//! - [`routing`]: routing, the queue and its places, availability and capacity;
//! - [`handover`]: transfer, resolve, and releasing a disabled agent's conversations;
//! - [`messaging`]: send, read, typing, history, system messages;
//! - [`notes`]: private notes and ratings;
//! - [`presence`]: who is online, and what changes when someone comes or goes;
//! - [`open`]: the cache of customers' open conversations.

mod handover;
mod messaging;
mod notes;
mod open;
mod presence;
mod routing;

use std::sync::Arc;

pub use messaging::{History, HistoryRequest, ReadOutcome, SendRequest};
pub use notes::MAX_RATING_COMMENT_CHARS;
pub use routing::MAX_CAPACITY;

use self::open::{FRESH_ALONE, FRESH_IN_CLUSTER, OpenConversations};
use super::{Error, Result, auth::Identity, delivery::Delivery, writer::Writer};
use crate::{
    domain::{ConversationId, QueuePlace, UserId},
    store::{Conversation, ConversationSummary, Member, Store, StoreError},
};

#[derive(Clone)]
pub struct Chat {
    store: Store,
    open: Arc<OpenConversations>,
    writer: Writer,
    delivery: Arc<dyn Delivery>,
    max_message_bytes: usize,
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
}

impl Chat {
    pub fn new(
        store: Store,
        writer: Writer,
        delivery: Arc<dyn Delivery>,
        max_message_bytes: usize,
        in_cluster: bool,
    ) -> Self {
        let fresh_for = if in_cluster {
            FRESH_IN_CLUSTER
        } else {
            FRESH_ALONE
        };
        Self {
            store,
            open: Arc::new(OpenConversations::new(fresh_for)),
            writer,
            delivery,
            max_message_bytes,
            stopping: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// The server is stopping: work in progress ends at its next step.
    pub fn stop(&self) {
        self.stopping.cancel();
    }

    /// The reference design's `login`: the claimed user id must be the caller's own.
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
            self.assign_queue().await?;
            return Ok(LoginOutcome {
                cs_id: Some(me.user_id),
                conversation_id: None,
                queued: false,
                place: None,
                ended: false,
            });
        }
        // A customer's open conversation, when it has one, is its latest: one query tells both.
        let latest = match self.open.get(me.user_id) {
            Some(conversation) => Some(conversation),
            None => self.store.latest_conversation(me.user_id).await?,
        };
        let conversation = match latest {
            Some(conversation) if conversation.open && conversation.agent_id.is_some() => {
                conversation
            }
            Some(conversation) if conversation.open => {
                self.route_waiting(&conversation, cs_id).await?;
                self.store.conversation(conversation.id).await?
            }
            // Coming back after the end: the next message starts a new conversation.
            Some(ended) => {
                return Ok(LoginOutcome {
                    cs_id: None,
                    conversation_id: Some(ended.id),
                    queued: false,
                    place: None,
                    ended: true,
                });
            }
            None => self.start_conversation(me.user_id, cs_id).await?,
        };
        self.open.put(&conversation);
        let place = match conversation.agent_id {
            Some(_) => None,
            None => self.queue_place(conversation.id).await?,
        };
        Ok(LoginOutcome {
            cs_id: conversation.agent_id,
            conversation_id: Some(conversation.id),
            queued: conversation.agent_id.is_none(),
            place,
            ended: false,
        })
    }

    /// A customer without an open conversation starts one: given at once to the agent asked for
    /// or the best available one (in the same commit), or else waiting in the queue.
    pub(super) async fn start_conversation(
        &self,
        customer: UserId,
        cs_id: Option<UserId>,
    ) -> Result<Conversation> {
        let agent = self.pick_agent(cs_id).await?;
        let created = self
            .store
            .create_conversation(customer, agent.as_ref().map(|a| a.id))
            .await?;
        let conversation = created.conversation;
        match (&agent, conversation.agent_id) {
            (Some(agent), Some(assigned)) if created.created && assigned == agent.id => {
                self.announce_assignment(&conversation, agent).await;
                Ok(conversation)
            }
            (_, Some(_)) => Ok(conversation),
            (_, None) => {
                // Nobody had room (or the one asked for filled up meanwhile): try the others,
                // then wait.
                self.route_waiting(&conversation, None).await?;
                Ok(self.store.conversation(conversation.id).await?)
            }
        }
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

    /// The conversation I may write to or read, with `peer` (an agent's customer, or a customer's
    /// agent; a customer may leave `peer` out).
    pub(super) async fn conversation_with(
        &self,
        me: Identity,
        peer: Option<UserId>,
    ) -> Result<Conversation> {
        if me.role.is_staff() {
            let customer =
                peer.ok_or_else(|| Error::InvalidPayload("receiverId/peerId is required".into()))?;
            let conversation = match self.open.get(customer) {
                Some(conversation) => Some(conversation),
                None => {
                    let current = self.store.current_conversation(customer).await?;
                    if let Some(conversation) = &current {
                        self.open.put(conversation);
                    }
                    current
                }
            };
            return match conversation.filter(|c| c.agent_id == Some(me.user_id)) {
                Some(conversation) => Ok(conversation),
                None => Err(self
                    .refusal(customer, "that user is not one of your customers")
                    .await),
            };
        }
        let conversation = self.open_conversation(me.user_id).await?;
        match peer {
            Some(peer) if Some(peer) != conversation.agent_id => Err(self
                .refusal(peer, "you can only write to your own agent")
                .await),
            _ => Ok(conversation),
        }
    }

    /// The customer's open conversation; a customer without one (its last was resolved) starts
    /// one, routed like at `login`.
    pub(super) async fn open_conversation(&self, customer: UserId) -> Result<Conversation> {
        if let Some(conversation) = self.open.get(customer) {
            return Ok(conversation);
        }
        let conversation = match self.store.current_conversation(customer).await? {
            Some(conversation) => conversation,
            None => self.start_conversation(customer, None).await?,
        };
        self.open.put(&conversation);
        Ok(conversation)
    }

    /// The conversation `me` may write to with `peer` (a customer's own, started if needed).
    pub async fn writable_conversation(
        &self,
        me: Identity,
        peer: Option<UserId>,
    ) -> Result<ConversationId> {
        Ok(self.conversation_with(me, peer).await?.id)
    }

    /// Why `peer` is out of reach: it does not exist (`not_found`), or it is someone else's.
    pub(super) async fn refusal(&self, peer: UserId, forbidden: &'static str) -> Error {
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
