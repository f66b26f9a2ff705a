//! The chat rules: who may talk to whom, routing customers to agents, reading, typing, history and
//! presence. Identity always comes from the authenticated connection, never from a payload.

use std::{
    collections::HashMap,
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use super::{
    Error, Result,
    auth::Identity,
    delivery::{ConnectionId, Delivery, Notice},
    writer::{Reply, WriteJob, Writer},
};
use crate::{
    domain::{ClientMsgId, Content, ConversationId, HistoryLimit, MessageId, Role, User, UserId},
    store::{
        AgentLoad, Assignment, Conversation, ConversationSummary, HistoryPage, Member, NewMessage,
        Note, Page, Rated, Store, StoreError, StoredMessage,
    },
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

/// A waiting conversation's place in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuePlace {
    /// 1 for the head.
    pub position: i64,
    pub estimated_wait_seconds: i64,
}

/// How long a place in the queue may take: each available agent takes one waiting customer per
/// typical conversation.
struct WaitEstimate {
    available: i64,
    per_conversation: i64,
}

impl WaitEstimate {
    fn seconds(&self, position: i64) -> i64 {
        (position + self.available - 1) / self.available * self.per_conversation
    }
}

/// The longest comment a rating may carry.
pub const MAX_RATING_COMMENT_CHARS: usize = 1000;
/// The most open conversations an agent may be given at once.
pub const MAX_CAPACITY: i64 = 10_000;
/// Tries to route one customer before it is left waiting (agents fill up under concurrency).
const ROUTING_ATTEMPTS: usize = 5;
/// Waiting customers told their place after each change of the queue.
const QUEUE_ANNOUNCED: u32 = 1000;
/// The wait per conversation assumed before any conversation was resolved.
const DEFAULT_HANDLING_SECONDS: i64 = 300;

pub struct SendRequest {
    pub receiver: Option<UserId>,
    pub content: String,
    pub client_msg_id: Option<String>,
    /// An uploaded file to send; `content` is then an optional caption.
    pub attachment_id: Option<i64>,
}

pub struct HistoryRequest {
    pub peer: Option<UserId>,
    pub conversation: Option<ConversationId>,
    pub before: Option<MessageId>,
    pub after_seq: Option<i64>,
    pub limit: Option<i64>,
}

pub struct History {
    pub conversation: Option<Conversation>,
    pub page: HistoryPage,
    /// How far the other side has read (0 before its first `read`).
    pub peer_read_seq: i64,
}

pub struct ReadOutcome {
    pub conversation: ConversationId,
    pub up_to: MessageId,
    pub seq: i64,
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
    async fn start_conversation(
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

    /// Tries to give a waiting conversation to an agent; when none has room it stays in the queue
    /// and its customer is told its place. `true` if it left the queue.
    async fn route_waiting(
        &self,
        conversation: &Conversation,
        cs_id: Option<UserId>,
    ) -> Result<bool> {
        self.route(conversation, cs_id, None).await
    }

    /// [`Chat::route_waiting`], to the agent asked for (`cs_id`) or the best one but `except`.
    async fn route(
        &self,
        conversation: &Conversation,
        mut cs_id: Option<UserId>,
        except: Option<UserId>,
    ) -> Result<bool> {
        for _ in 0..ROUTING_ATTEMPTS {
            let agent = match cs_id {
                Some(_) => self.pick_agent(cs_id).await?,
                None => self.best_available_agent(except).await?,
            };
            let Some(agent) = agent else {
                break;
            };
            match self
                .store
                .assign_conversation(conversation.id, agent.id)
                .await?
            {
                Assignment::Assigned => {
                    self.announce_assignment(conversation, &agent).await;
                    return Ok(true);
                }
                Assignment::Taken => {
                    self.open.forget(conversation.customer_id);
                    return Ok(true);
                }
                // Filled up meanwhile: the next best one.
                Assignment::Full => cs_id = None,
            }
        }
        if let Some(place) = self.queue_place(conversation.id).await? {
            self.delivery.notify(
                conversation.customer_id,
                &Notice::QueuePosition {
                    conversation: conversation.id,
                    place,
                },
                None,
            );
        }
        Ok(false)
    }

    /// The online, available agent with the most free capacity; ties go to the one idle longest,
    /// then to the one online longest.
    async fn best_available_agent(&self, except: Option<UserId>) -> Result<Option<User>> {
        let mut online = self.delivery.online_agents().await;
        online.retain(|a| Some(*a) != except);
        let loads = self.store.agent_loads(&online).await?;
        let rank = |id: UserId| online.iter().position(|a| *a == id).unwrap_or(usize::MAX);
        Ok(loads
            .into_iter()
            .filter(|l| !l.away && !l.disabled && l.free() > 0)
            .min_by_key(|l| (-l.free(), l.last_assigned_at, rank(l.user.id)))
            .map(|l| l.user))
    }

    /// The agent a customer asked for (`csId`) when it is available with room, else the best
    /// available one.
    async fn pick_agent(&self, cs_id: Option<UserId>) -> Result<Option<User>> {
        let Some(requested) = cs_id else {
            return self.best_available_agent(None).await;
        };
        let record = self.store.user(requested).await.map_err(|e| match e {
            StoreError::NotFound => Error::NotFound("no such agent"),
            other => other.into(),
        })?;
        if !record.user.role.is_staff() || record.disabled {
            return Err(Error::NotFound("no such agent"));
        }
        let load = self.store.agent_loads(&[requested]).await?;
        match load.first() {
            Some(load) if !load.away && load.free() > 0 => Ok(Some(record.user)),
            _ => self.best_available_agent(None).await,
        }
    }

    /// Tells the customer and the agent that the conversation is now theirs.
    async fn announce_assignment(&self, conversation: &Conversation, agent: &User) {
        self.open.put(&Conversation {
            agent_id: Some(agent.id),
            ..conversation.clone()
        });
        self.delivery.conversation_changed(conversation.customer_id);
        tracing::info!(conversation = %conversation.id, agent = %agent.id, "conversation assigned");
        let notice = Notice::Assigned {
            conversation: conversation.id,
            customer: conversation.customer_id,
            agent,
        };
        self.delivery
            .notify(conversation.customer_id, &notice, None);
        self.delivery.notify(agent.id, &notice, None);
        // Both sides learn that the other is now a member they can see online.
        if self.delivery.online(&[conversation.customer_id]).await == [true] {
            self.delivery.notify(
                agent.id,
                &Notice::Presence {
                    user: conversation.customer_id,
                    online: true,
                },
                None,
            );
        }
        self.delivery.notify(
            conversation.customer_id,
            &Notice::Presence {
                user: agent.id,
                online: true,
            },
            None,
        );
    }

    /// Hands the waiting conversations, oldest first, to the available agents with room; then
    /// tells those still waiting their new place.
    pub async fn assign_queue(&self) -> Result<()> {
        let mut moved = false;
        'queue: loop {
            if self.stopping.is_cancelled() {
                break;
            }
            let queued = self.store.queued_conversations(100).await?;
            if queued.is_empty() {
                break;
            }
            let mut progressed = false;
            for conversation in &queued {
                if self.stopping.is_cancelled() {
                    break 'queue;
                }
                let mut attempts = 0;
                loop {
                    let Some(agent) = self.best_available_agent(None).await? else {
                        break 'queue;
                    };
                    match self
                        .store
                        .assign_conversation(conversation.id, agent.id)
                        .await?
                    {
                        Assignment::Assigned => {
                            self.announce_assignment(conversation, &agent).await;
                            break;
                        }
                        Assignment::Taken => {
                            self.open.forget(conversation.customer_id);
                            break;
                        }
                        Assignment::Full if attempts < ROUTING_ATTEMPTS => attempts += 1,
                        Assignment::Full => break 'queue,
                    }
                }
                moved = true;
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        if moved {
            self.announce_queue().await?;
        }
        Ok(())
    }

    /// Tells every waiting customer its place and estimated wait.
    async fn announce_queue(&self) -> Result<()> {
        let queued = self.store.queued_conversations(QUEUE_ANNOUNCED).await?;
        if queued.is_empty() {
            return Ok(());
        }
        let estimate = self.wait_estimate().await?;
        for (i, conversation) in queued.iter().enumerate() {
            let position = i as i64 + 1;
            self.delivery.notify(
                conversation.customer_id,
                &Notice::QueuePosition {
                    conversation: conversation.id,
                    place: QueuePlace {
                        position,
                        estimated_wait_seconds: estimate.seconds(position),
                    },
                },
                None,
            );
        }
        Ok(())
    }

    /// The waiting conversation's place, `None` if it is not waiting.
    async fn queue_place(&self, conversation: ConversationId) -> Result<Option<QueuePlace>> {
        let Some(position) = self.store.queue_position(conversation).await? else {
            return Ok(None);
        };
        let estimate = self.wait_estimate().await?;
        Ok(Some(QueuePlace {
            position,
            estimated_wait_seconds: estimate.seconds(position),
        }))
    }

    async fn wait_estimate(&self) -> Result<WaitEstimate> {
        let online = self.delivery.online_agents().await;
        let loads = self.store.agent_loads(&online).await?;
        let available = loads
            .iter()
            .filter(|l| !l.away && !l.disabled)
            .count()
            .max(1) as i64;
        let per_conversation = self
            .store
            .median_handling_seconds()
            .await?
            .unwrap_or(DEFAULT_HANDLING_SECONDS);
        Ok(WaitEstimate {
            available,
            per_conversation,
        })
    }

    /// A customer's place in the queue (`queue_status`): `None` when it is not waiting.
    pub async fn queue_status(
        &self,
        me: Identity,
    ) -> Result<(Option<ConversationId>, Option<QueuePlace>)> {
        if me.role != Role::Customer {
            return Err(Error::Forbidden("only customers wait in the queue"));
        }
        let Some(conversation) = self.store.current_conversation(me.user_id).await? else {
            return Ok((None, None));
        };
        let place = match conversation.agent_id {
            Some(_) => None,
            None => self.queue_place(conversation.id).await?,
        };
        Ok((Some(conversation.id), place))
    }

    /// An agent sets itself available or away. Away agents get no new conversations and keep
    /// theirs; becoming available takes from the queue.
    pub async fn set_status(
        &self,
        me: Identity,
        origin: Option<ConnectionId>,
        available: bool,
    ) -> Result<()> {
        if !me.role.is_staff() {
            return Err(Error::Forbidden("only agents set an availability"));
        }
        self.store.set_away(me.user_id, !available).await?;
        self.delivery.notify(
            me.user_id,
            &Notice::AgentStatus {
                agent: me.user_id,
                available,
            },
            origin,
        );
        if available {
            self.assign_queue().await?;
        }
        Ok(())
    }

    /// The agent ends its conversation with `peer`. The customer's next message starts a new one;
    /// the freed capacity takes from the queue.
    pub async fn resolve(&self, me: Identity, peer: Option<UserId>) -> Result<ConversationId> {
        if !me.role.is_staff() {
            return Err(Error::Forbidden("only agents resolve conversations"));
        }
        let conversation = self.conversation_with(me, peer).await?;
        if !self
            .store
            .resolve_conversation(conversation.id, me.user_id)
            .await?
        {
            self.open.forget(conversation.customer_id);
            return Err(Error::Conflict("the conversation is no longer open"));
        }
        let customer = conversation.customer_id;
        self.open.forget(customer);
        self.delivery.conversation_changed(customer);
        tracing::info!(conversation = %conversation.id, agent = %me.user_id, "conversation resolved");
        let notice = Notice::Resolved {
            conversation: conversation.id,
            customer,
            agent: me.user_id,
        };
        self.delivery.notify(customer, &notice, None);
        self.delivery.notify(me.user_id, &notice, None);
        self.assign_queue().await?;
        Ok(conversation.id)
    }

    /// Agents and admins with their availability and load; `online` for each.
    pub async fn staff_loads(&self, ids: &[UserId]) -> Result<Vec<(AgentLoad, bool)>> {
        let loads = self.store.agent_loads(ids).await?;
        let online = self
            .delivery
            .online(&loads.iter().map(|l| l.user.id).collect::<Vec<_>>())
            .await;
        Ok(loads.into_iter().zip(online).collect())
    }

    /// An admin sets how many open conversations an agent may hold; more room takes from the
    /// queue.
    pub async fn set_capacity(&self, agent: UserId, capacity: i64) -> Result<()> {
        if !(1..=MAX_CAPACITY).contains(&capacity) {
            return Err(Error::InvalidPayload(format!(
                "capacity must be between 1 and {MAX_CAPACITY}"
            )));
        }
        if !self.store.set_capacity(agent, capacity).await? {
            return Err(Error::NotFound("no such agent"));
        }
        self.assign_queue().await
    }

    /// The agent hands its conversation with `peer` to another agent (`to`), or back to the queue
    /// (`None`), with an optional private note for whoever takes it next.
    pub async fn transfer(
        &self,
        me: Identity,
        peer: Option<UserId>,
        to: Option<UserId>,
        note: Option<String>,
    ) -> Result<(ConversationId, Option<UserId>)> {
        if !me.role.is_staff() {
            return Err(Error::Forbidden("only agents transfer conversations"));
        }
        let note = note
            .filter(|n| !n.trim().is_empty())
            .map(|n| Content::parse(n, self.max_message_bytes))
            .transpose()?;
        let conversation = self.conversation_with(me, peer).await?;
        let target = match to {
            Some(to) => Some(self.transfer_target(me, to).await?),
            None => None,
        };
        match self
            .store
            .transfer_conversation(conversation.id, me.user_id, target.as_ref().map(|t| t.id))
            .await?
        {
            Assignment::Assigned => {}
            Assignment::Full => return Err(Error::Conflict("that agent has no free capacity")),
            Assignment::Taken => {
                self.open.forget(conversation.customer_id);
                return Err(Error::Conflict("the conversation is no longer yours"));
            }
        }
        let customer = conversation.customer_id;
        self.open.forget(customer);
        self.delivery.conversation_changed(customer);
        tracing::info!(conversation = %conversation.id, from = %me.user_id, to = ?target.as_ref().map(|t| t.id), "conversation transferred");
        let note = match note {
            Some(note) => Some(
                self.store
                    .add_note(conversation.id, me.user_id, note.as_str())
                    .await?,
            ),
            None => None,
        };
        self.delivery.notify(
            me.user_id,
            &Notice::Transferred {
                conversation: conversation.id,
                customer,
                from: me.user_id,
                to: target.as_ref().map(|t| t.id),
            },
            None,
        );
        // The customer no longer shares a conversation with me.
        self.delivery.notify(
            customer,
            &Notice::Presence {
                user: me.user_id,
                online: false,
            },
            None,
        );
        let moved = Conversation {
            agent_id: target.as_ref().map(|t| t.id),
            ..conversation.clone()
        };
        match &target {
            Some(target) => {
                self.say(
                    &moved,
                    target.id,
                    format!("{} joined the conversation", target.display_name),
                );
                self.announce_assignment(&moved, target).await;
                if let Some(note) = &note {
                    self.delivery
                        .notify(target.id, &Notice::NoteAdded { note }, None);
                }
            }
            None => {
                self.say(&moved, me.user_id, "Waiting for the next agent".to_owned());
                self.delivery.notify(
                    customer,
                    &Notice::Queued {
                        conversation: conversation.id,
                    },
                    None,
                );
                // Anyone but me: I just handed it back.
                if !self.route(&moved, None, Some(me.user_id)).await? {
                    self.announce_queue().await?;
                }
            }
        }
        Ok((conversation.id, target.map(|t| t.id)))
    }

    /// Whom a conversation may be handed to: another enabled agent, online, available, with room.
    async fn transfer_target(&self, me: Identity, to: UserId) -> Result<User> {
        if to == me.user_id {
            return Err(Error::InvalidPayload(
                "toAgentId is you: choose another agent".into(),
            ));
        }
        let load = self.store.agent_loads(&[to]).await?;
        let Some(load) = load.into_iter().find(|l| l.user.role == Role::Agent) else {
            return Err(Error::NotFound("no such agent"));
        };
        if load.disabled {
            return Err(Error::NotFound("no such agent"));
        }
        if self.delivery.online(&[to]).await != [true] {
            return Err(Error::Conflict("that agent is offline"));
        }
        if load.away {
            return Err(Error::Conflict("that agent is away"));
        }
        if load.free() <= 0 {
            return Err(Error::Conflict("that agent has no free capacity"));
        }
        Ok(load.user)
    }

    /// Stores a system message in the conversation and delivers it to both sides like any
    /// message; `sender` is the agent it speaks for.
    fn say(&self, conversation: &Conversation, sender: UserId, content: String) {
        let job = WriteJob {
            message: NewMessage {
                conversation_id: conversation.id,
                sender_id: sender,
                kind: "system",
                content,
                client_msg_id: None,
                attachment_id: None,
            },
            receiver: Some(conversation.customer_id),
            origin: None,
            reply: Box::new(|outcome| {
                if let Err(error) = outcome {
                    error.log("storing a system message");
                }
            }),
        };
        let writer = self.writer.clone();
        tokio::spawn(async move { writer.submit(job).await });
    }

    /// A private note on the agent's conversation with `peer`: its author's connections get it,
    /// the customer never does.
    pub async fn note(&self, me: Identity, peer: Option<UserId>, content: String) -> Result<Note> {
        if !me.role.is_staff() {
            return Err(Error::Forbidden("only agents write notes"));
        }
        let content = Content::parse(content, self.max_message_bytes)?;
        let conversation = self.conversation_with(me, peer).await?;
        let note = self
            .store
            .add_note(conversation.id, me.user_id, content.as_str())
            .await?;
        self.delivery
            .notify(me.user_id, &Notice::NoteAdded { note: &note }, None);
        Ok(note)
    }

    /// The notes of the agent's conversation with `peer`, or, for an admin, of any conversation.
    pub async fn notes(
        &self,
        me: Identity,
        peer: Option<UserId>,
        conversation: Option<ConversationId>,
    ) -> Result<Vec<Note>> {
        if !me.role.is_staff() {
            return Err(Error::Forbidden("only agents read notes"));
        }
        let conversation = match (conversation, me.role) {
            (Some(id), Role::Admin) => self.store.conversation(id).await.map_err(|e| match e {
                StoreError::NotFound => Error::NotFound("no such conversation"),
                other => other.into(),
            })?,
            (Some(id), _) => match self.store.conversation(id).await.ok() {
                Some(c) if c.open && c.agent_id == Some(me.user_id) => c,
                _ => return Err(Error::NotFound("no such conversation")),
            },
            (None, _) => self.conversation_with(me, peer).await?,
        };
        Ok(self.store.notes_of(conversation.id).await?)
    }

    /// The customer rates its resolved conversation (1 to 5, with an optional comment), once.
    pub async fn rate(
        &self,
        me: Identity,
        conversation: ConversationId,
        score: i64,
        comment: Option<String>,
    ) -> Result<()> {
        if me.role != Role::Customer {
            return Err(Error::Forbidden("only customers rate conversations"));
        }
        if !(1..=5).contains(&score) {
            return Err(Error::InvalidPayload(
                "score must be 1, 2, 3, 4 or 5".into(),
            ));
        }
        let comment = comment
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty());
        if comment.as_ref().is_some_and(|c| c.contains('\0')) {
            return Err(Error::InvalidPayload(
                "the comment must not contain NUL characters".into(),
            ));
        }
        if comment
            .as_ref()
            .is_some_and(|c| c.chars().count() > MAX_RATING_COMMENT_CHARS)
        {
            return Err(Error::TooLarge(format!(
                "the comment may have at most {MAX_RATING_COMMENT_CHARS} characters"
            )));
        }
        match self
            .store
            .rate_conversation(conversation, me.user_id, score, comment.as_deref())
            .await?
        {
            Rated::Taken => Ok(()),
            Rated::NotYours => Err(Error::Forbidden("not your conversation")),
            Rated::NotResolved => Err(Error::Forbidden("the conversation has not ended")),
            Rated::AlreadyRated => Err(Error::Conflict("this conversation is rated already")),
        }
    }

    /// A customer's conversations, newest first.
    pub async fn conversations(&self, me: Identity) -> Result<Vec<ConversationSummary>> {
        Ok(self.store.conversations_of(me.user_id).await?)
    }

    /// An agent left for good (its account was disabled): its customers see it go offline, their
    /// conversations go back to the queue and to the other online agents.
    pub async fn release_agent(&self, agent: UserId) -> Result<()> {
        let released = self.store.release_conversations(agent).await?;
        for conversation in &released {
            let customer = conversation.customer_id;
            self.open.forget(customer);
            self.delivery.conversation_changed(customer);
            self.delivery.notify(
                customer,
                &Notice::Presence {
                    user: agent,
                    online: false,
                },
                None,
            );
            self.delivery.notify(
                customer,
                &Notice::Queued {
                    conversation: conversation.id,
                },
                None,
            );
        }
        self.assign_queue().await
    }

    /// Another node changed the customer's open conversation: read it again next time.
    pub fn forget_conversation(&self, customer: UserId) {
        self.open.forget(customer);
    }

    /// My members (`all_member`): an agent's customers, or a customer's agent.
    pub async fn members(&self, me: Identity) -> Result<Vec<(Member, bool)>> {
        let members = self.store.members_of(me.user_id, me.role).await?;
        let ids: Vec<UserId> = members.iter().map(|m| m.user.id).collect();
        let online = self.delivery.online(&ids).await;
        Ok(members.into_iter().zip(online).collect())
    }

    /// For each of `users`, whether it is online on some node.
    pub async fn online(&self, users: &[UserId]) -> Vec<bool> {
        self.delivery.online(users).await
    }

    /// Ids of my members that are online now (`Online_user`).
    pub async fn online_peers(&self, me: Identity) -> Result<Vec<UserId>> {
        let peers = self.store.peers_of(me.user_id, me.role).await?;
        self.online_among(peers).await
    }

    /// [`Chat::online_peers`] for the answer to a `login`: a customer's one peer is the agent of
    /// the conversation its login just found, so it is not read again.
    pub async fn online_after_login(
        &self,
        me: Identity,
        outcome: &LoginOutcome,
    ) -> Result<Vec<UserId>> {
        if me.role.is_staff() {
            return self.online_peers(me).await;
        }
        self.online_among(outcome.cs_id.into_iter().collect()).await
    }

    async fn online_among(&self, peers: Vec<UserId>) -> Result<Vec<UserId>> {
        let online = self.delivery.online(&peers).await;
        Ok(peers
            .into_iter()
            .zip(online)
            .filter_map(|(peer, online)| online.then_some(peer))
            .collect())
    }

    /// The conversation I may write to or read, with `peer` (an agent's customer, or a customer's
    /// agent; a customer may leave `peer` out).
    async fn conversation_with(&self, me: Identity, peer: Option<UserId>) -> Result<Conversation> {
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
    async fn open_conversation(&self, customer: UserId) -> Result<Conversation> {
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
    async fn refusal(&self, peer: UserId, forbidden: &'static str) -> Error {
        match self.store.user(peer).await {
            Ok(_) => Error::Forbidden(forbidden),
            Err(StoreError::NotFound) => Error::NotFound("no such user"),
            Err(e) => e.into(),
        }
    }

    /// Validates and queues a message. `turn` resolves when the sender's earlier messages are
    /// queued, so that one connection's messages keep their order. `reply` runs once the message
    /// is stored (or refused); delivery follows, in `seq` order.
    #[tracing::instrument(skip_all, fields(user = %me.user_id))]
    pub async fn send(
        &self,
        me: Identity,
        origin: Option<ConnectionId>,
        request: SendRequest,
        turn: impl Future<Output = ()>,
        reply: Reply,
    ) {
        let prepared = self.prepare(me, request).await;
        turn.await;
        match prepared {
            Ok((message, receiver)) => {
                self.writer
                    .submit(WriteJob {
                        message,
                        receiver,
                        origin,
                        reply,
                    })
                    .await;
            }
            Err(error) => {
                error.log("private_message");
                reply(Err(&error));
            }
        }
    }

    async fn prepare(
        &self,
        me: Identity,
        request: SendRequest,
    ) -> Result<(NewMessage, Option<UserId>)> {
        let attachment = match request.attachment_id {
            Some(id) => match self.store.attachment(id).await {
                Ok(attachment) if attachment.uploader_id == me.user_id => Some(attachment),
                Ok(_) | Err(StoreError::NotFound) => {
                    return Err(Error::NotFound("no such attachment"));
                }
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        let content = match (&attachment, request.content.trim().is_empty()) {
            // A file without a caption is shown by its name.
            (Some(attachment), true) => Content::parse(attachment.name.clone(), usize::MAX)?,
            _ => Content::parse(request.content, self.max_message_bytes)?,
        };
        let client_msg_id = request.client_msg_id.map(ClientMsgId::parse).transpose()?;
        let conversation = self.conversation_with(me, request.receiver).await?;
        if attachment
            .as_ref()
            .is_some_and(|a| a.conversation_id != conversation.id)
        {
            return Err(Error::Forbidden(
                "that file was uploaded to another conversation",
            ));
        }
        let receiver = if me.role.is_staff() {
            Some(conversation.customer_id)
        } else {
            conversation.agent_id
        };
        let kind = match &attachment {
            Some(a) if a.mime.starts_with("image/") => "image",
            Some(_) => "file",
            None => "text",
        };
        let message = NewMessage {
            conversation_id: conversation.id,
            sender_id: me.user_id,
            kind,
            content: content.into_inner(),
            client_msg_id: client_msg_id.map(|c| c.as_str().to_owned()),
            attachment_id: attachment.map(|a| a.id),
        };
        Ok((message, receiver))
    }

    /// Marks my conversation with `peer` read up to a message and tells the peer and my other
    /// connections.
    pub async fn read(
        &self,
        me: Identity,
        origin: Option<ConnectionId>,
        peer: Option<UserId>,
        up_to: MessageId,
    ) -> Result<ReadOutcome> {
        let conversation = self.conversation_with(me, peer).await?;
        let message = self
            .store
            .message_in(conversation.id, up_to)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => Error::NotFound("no such message in this conversation"),
                other => other.into(),
            })?;
        self.store
            .mark_read(me.user_id, conversation.id, message.seq)
            .await?;
        let notice = Notice::Read {
            reader: me.user_id,
            up_to,
            conversation: conversation.id,
            seq: message.seq,
        };
        if let Some(peer) = other_side(me, &conversation) {
            self.delivery.notify(peer, &notice, None);
        }
        self.delivery.notify(me.user_id, &notice, origin);
        Ok(ReadOutcome {
            conversation: conversation.id,
            up_to,
            seq: message.seq,
        })
    }

    pub async fn typing(&self, me: Identity, receiver: Option<UserId>, typing: bool) -> Result<()> {
        let conversation = self.conversation_with(me, receiver).await?;
        if let Some(peer) = other_side(me, &conversation) {
            self.delivery.notify(
                peer,
                &Notice::Typing {
                    user: me.user_id,
                    typing,
                },
                None,
            );
        }
        Ok(())
    }

    pub async fn history(&self, me: Identity, request: HistoryRequest) -> Result<History> {
        let limit = HistoryLimit::parse(request.limit)?.get();
        let conversation = match request.conversation {
            Some(id) => {
                let conversation = self.store.conversation(id).await.map_err(|e| match e {
                    StoreError::NotFound => Error::NotFound("no such conversation"),
                    other => other.into(),
                })?;
                let mine = conversation.customer_id == me.user_id
                    || (me.role.is_staff() && conversation.agent_id == Some(me.user_id));
                if !mine {
                    return Err(Error::NotFound("no such conversation"));
                }
                Some(conversation)
            }
            None if me.role == Role::Customer => {
                let conversation = self.store.latest_conversation(me.user_id).await?;
                if let (Some(peer), Some(c)) = (request.peer, &conversation)
                    && c.agent_id != Some(peer)
                {
                    return Err(Error::Forbidden("that user is not your agent"));
                }
                conversation
            }
            None => Some(self.conversation_with(me, request.peer).await?),
        };
        let Some(conversation) = conversation else {
            return Ok(History {
                conversation: None,
                page: HistoryPage {
                    messages: Vec::new(),
                    has_more: false,
                },
                peer_read_seq: 0,
            });
        };
        let page = match (request.before, request.after_seq) {
            (Some(_), Some(_)) => {
                return Err(Error::InvalidPayload(
                    "give beforeId or afterSeq, not both".into(),
                ));
            }
            (Some(before), None) => {
                let anchor: StoredMessage = self
                    .store
                    .message_in(conversation.id, before)
                    .await
                    .map_err(|e| match e {
                        StoreError::NotFound => {
                            Error::NotFound("no such message in this conversation")
                        }
                        other => other.into(),
                    })?;
                Page::Before { seq: anchor.seq }
            }
            (None, Some(seq)) if seq >= 0 => Page::After { seq },
            (None, Some(_)) => {
                return Err(Error::InvalidPayload(
                    "afterSeq must not be negative".into(),
                ));
            }
            (None, None) => Page::Latest,
        };
        let page = self.store.history(conversation.id, page, limit).await?;
        let peer_read_seq = match other_side(me, &conversation) {
            Some(peer) => self.store.read_seq(peer, conversation.id).await?,
            None => 0,
        };
        Ok(History {
            conversation: Some(conversation),
            page,
            peer_read_seq,
        })
    }

    /// A user's first connection opened or last one closed: tell the users who share an open
    /// conversation with it, and nobody else. An agent coming online also takes the queue.
    pub async fn presence_changed(&self, user: Identity, online: bool) -> Result<()> {
        let peers = self.store.peers_of(user.user_id, user.role).await?;
        let notice = Notice::Presence {
            user: user.user_id,
            online,
        };
        for peer in peers {
            self.delivery.notify(peer, &notice, None);
        }
        if online && user.role == Role::Agent {
            self.assign_queue().await?;
        }
        Ok(())
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

/// Customers' open conversations as last read: every message needs its sender's conversation,
/// and a query per message costs more than the rest of its path. Changes made through this node
/// update it at once; a change made by another node arrives through Redis and is in any case
/// seen within [`FRESH_IN_CLUSTER`].
struct OpenConversations {
    by_customer: std::sync::Mutex<HashMap<UserId, (Conversation, Instant)>>,
    fresh_for: Duration,
}

/// How long an entry is trusted on a node of a cluster: the bound on a missed invalidation.
const FRESH_IN_CLUSTER: Duration = Duration::from_secs(2);
/// On a node alone, every change goes through it and updates the entry: only a change made in
/// the database by hand is waited for. (With 2 s here too, 10,000 customers writing once a
/// second cost 5,000 queries a second; docs/benchmarks.md.)
const FRESH_ALONE: Duration = Duration::from_secs(60);
/// Entries kept before the stale ones are swept out.
const SWEEP_ABOVE: usize = 50_000;

impl OpenConversations {
    fn new(fresh_for: Duration) -> Self {
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

    fn get(&self, customer: UserId) -> Option<Conversation> {
        let map = self.lock();
        let (conversation, at) = map.get(&customer)?;
        (at.elapsed() < self.fresh_for).then(|| conversation.clone())
    }

    fn put(&self, conversation: &Conversation) {
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

    fn forget(&self, customer: UserId) {
        self.lock().remove(&customer);
    }
}
