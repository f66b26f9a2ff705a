//! Routing: who takes a conversation, the queue and the places in it, an agent's availability
//! and capacity.

use super::Chat;
use crate::{
    domain::{ConversationId, QueuePlace, UserId, WaitEstimate},
    domain::{Role, User},
    services::{
        Error, Result,
        auth::Identity,
        delivery::{ConnectionId, Notice},
    },
    store::{AgentLoad, Assignment, Conversation, StoreError},
};

/// The most open conversations an agent may be given at once.
pub const MAX_CAPACITY: i64 = 10_000;
/// Tries to route one customer before it is left waiting (agents fill up under concurrency).
const ROUTING_ATTEMPTS: usize = 5;
/// Waiting customers told their place after each change of the queue.
const QUEUE_ANNOUNCED: u32 = 1000;
/// The wait per conversation assumed before any conversation was resolved.
const DEFAULT_HANDLING_SECONDS: i64 = 300;

impl Chat {
    /// Tries to give a waiting conversation to an agent; when none has room it stays in the queue
    /// and its customer is told its place. `true` if it left the queue.
    pub(super) async fn route_waiting(
        &self,
        conversation: &Conversation,
        cs_id: Option<UserId>,
    ) -> Result<bool> {
        self.route(conversation, cs_id, None).await
    }

    /// [`Chat::route_waiting`], to the agent asked for (`cs_id`) or the best one but `except`.
    pub(super) async fn route(
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
    pub(super) async fn best_available_agent(
        &self,
        except: Option<UserId>,
    ) -> Result<Option<User>> {
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
    pub(super) async fn pick_agent(&self, cs_id: Option<UserId>) -> Result<Option<User>> {
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
    pub(super) async fn announce_assignment(&self, conversation: &Conversation, agent: &User) {
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
    #[tracing::instrument(skip_all)]
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
    pub(super) async fn announce_queue(&self) -> Result<()> {
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
    pub(super) async fn queue_place(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<QueuePlace>> {
        let Some(position) = self.store.queue_position(conversation).await? else {
            return Ok(None);
        };
        let estimate = self.wait_estimate().await?;
        Ok(Some(QueuePlace {
            position,
            estimated_wait_seconds: estimate.seconds(position),
        }))
    }

    pub(super) async fn wait_estimate(&self) -> Result<WaitEstimate> {
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
    #[tracing::instrument(skip_all, fields(user = %me.user_id))]
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
    #[tracing::instrument(skip_all, fields(user = %me.user_id))]
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
    #[tracing::instrument(skip_all, fields(agent = %agent))]
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
}
