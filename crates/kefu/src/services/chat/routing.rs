//! Routing: who takes a new conversation (from the roster in memory, checked again by the
//! transaction that assigns), the conversations that are told they are assigned, the queue as a
//! customer asks after it, an agent's availability and capacity. Draining the queue is the
//! pump's ([`super::queue`]).

use super::{Chat, open::Latest};
use crate::{
    domain::{ConversationId, QueuePlace, Role, User, UserId},
    services::{
        Error, Result,
        auth::Identity,
        delivery::{ConnectionId, Notice},
    },
    store::{AgentLoad, Assignment, Conversation, StoreError},
};

/// The agent a customer asked for, as its login is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedAgent {
    pub id: UserId,
    pub display_name: String,
    pub online: bool,
    /// Until when a conversation waits for it only (milliseconds since the Unix epoch).
    pub waits_until: Option<i64>,
}

/// The most open conversations an agent may be given at once.
pub const MAX_CAPACITY: i64 = 10_000;

impl Chat {
    /// Who should take a new conversation now, per the roster: the agent asked for (`requested`)
    /// when it is online, available and has room, else the best one, never `except`.
    pub(super) async fn route_hint(
        &self,
        requested: Option<UserId>,
        except: Option<UserId>,
    ) -> Result<Option<User>> {
        self.roster.refresh_if_stale(&self.store).await?;
        let online = self.delivery.online_agents().await;
        Ok(self.roster.pick(&online, requested, except))
    }

    /// [`Chat::route_hint`] for a new conversation about to be written: the agent counts it at
    /// once. Whoever gets `Some` ends the promise ([`Chat::settle`]) once it is written.
    /// An agent asked for who is offline is waited for ([`Chat::waits_for`]): nobody is
    /// reserved.
    pub(super) async fn reserve_agent(
        &self,
        requested: Option<UserId>,
    ) -> Result<(Option<User>, Option<(UserId, i64)>)> {
        self.roster.refresh_if_stale(&self.store).await?;
        let online = self.delivery.online_agents().await;
        let waits_for = self.waits_for(&online, requested);
        if waits_for.is_some() {
            return Ok((None, waits_for));
        }
        Ok((self.roster.reserve(&online, requested, None), None))
    }

    /// A customer who asked for an agent that is offline waits for it only, until
    /// `requested_agent_wait` from now; then for anyone. (An agent online but away or full is not
    /// waited for: the conversation goes to another agent at once, as routing does.)
    fn waits_for(&self, online: &[UserId], requested: Option<UserId>) -> Option<(UserId, i64)> {
        let requested = requested?;
        (!online.contains(&requested)).then(|| {
            let wait = self.timers.requested_agent_wait.as_millis() as i64;
            (requested, crate::domain::now_millis() + wait)
        })
    }

    /// What a customer who asked for `requested` at login is told: whether it is online, and,
    /// when it is not, until when it is waited for (the wait of its waiting conversation, else
    /// one that would start now).
    pub(super) async fn requested_agent(
        &self,
        requested: UserId,
        waiting: Option<ConversationId>,
    ) -> Result<RequestedAgent> {
        self.roster.refresh_if_stale(&self.store).await?;
        let online = self.delivery.online_agents().await;
        let display_name = self.staff_name(requested).await;
        let Some((_, until)) = self.waits_for(&online, Some(requested)) else {
            return Ok(RequestedAgent {
                id: requested,
                display_name,
                online: true,
                waits_until: None,
            });
        };
        let stored = match waiting {
            Some(id) => self.store.requested_wait(id).await?,
            None => None,
        };
        Ok(RequestedAgent {
            id: requested,
            display_name,
            online: false,
            waits_until: Some(
                stored
                    .filter(|(agent, _)| *agent == requested)
                    .map_or(until, |(_, stored)| stored),
            ),
        })
    }

    /// The agent a customer's first message is meant for: promised by the first of its messages
    /// in flight, shared by the others (one promise per conversation, however many messages start
    /// it). Each caller reports its outcome with [`Chat::start_written`].
    pub(super) async fn join_start(
        &self,
        customer: UserId,
        requested: Option<UserId>,
    ) -> Result<(Option<UserId>, Option<(UserId, i64)>)> {
        self.roster.refresh_if_stale(&self.store).await?;
        let online = self.delivery.online_agents().await;
        let mut starting = self.starting.lock();
        if let Some(start) = starting.get_mut(&customer) {
            start.pending += 1;
            return Ok((start.agent, start.waits_for));
        }
        let waits_for = self.waits_for(&online, requested);
        let agent = match waits_for {
            Some(_) => None,
            None => self.roster.reserve(&online, requested, None).map(|a| a.id),
        };
        starting.insert(
            customer,
            super::Start {
                agent,
                waits_for,
                pending: 1,
                settled: false,
            },
        );
        Ok((agent, waits_for))
    }

    /// One message of a customer's start is written (`took`: it made the conversation, given to
    /// the promised agent), or refused. The promise ends with the first outcome that made the
    /// conversation, else with the last message.
    pub(super) fn start_written(&self, customer: UserId, created: bool, took: bool) {
        let mut starting = self.starting.lock();
        let Some(start) = starting.get_mut(&customer) else {
            return;
        };
        start.pending = start.pending.saturating_sub(1);
        if let Some(agent) = start.agent
            && !start.settled
            && (created || start.pending == 0)
        {
            start.settled = true;
            self.roster.settle(agent, took);
        }
        if start.pending == 0 {
            starting.remove(&customer);
        }
    }

    /// The promise to `agent` ([`Chat::reserve_agent`]) ends: it took the conversation or not.
    pub(super) fn settle(&self, agent: UserId, taken: bool) {
        self.roster.settle(agent, taken);
    }

    /// `requested` names an enabled agent or admin; `not_found` otherwise.
    pub(super) async fn check_requested(&self, requested: UserId) -> Result<()> {
        self.roster.refresh_if_stale(&self.store).await?;
        if self.roster.staff(requested).is_some() {
            return Ok(());
        }
        // Made since the roster was read, perhaps.
        match self.store.user(requested).await {
            Ok(record) if record.user.role.is_staff() && !record.disabled => {
                self.roster.invalidate();
                Ok(())
            }
            Ok(_) | Err(StoreError::NotFound) => Err(Error::NotFound("no such agent")),
            Err(e) => Err(e.into()),
        }
    }

    /// A customer without an open conversation starts one now, before its first message (an
    /// upload is first): given to the agent asked for or the best one in the same transaction,
    /// else waiting in the queue.
    pub(super) async fn start_conversation(
        &self,
        customer: UserId,
        requested: Option<UserId>,
    ) -> Result<Conversation> {
        let (agent, waits_for) = self.reserve_agent(requested).await?;
        let created = self
            .store
            .create_conversation(customer, agent.as_ref().map(|a| a.id), waits_for)
            .await;
        let created = match created {
            Ok(created) => created,
            Err(error) => {
                if let Some(agent) = &agent {
                    self.settle(agent.id, false);
                }
                return Err(error.into());
            }
        };
        let conversation = created.conversation;
        self.open.put_open(&conversation);
        let took = agent
            .as_ref()
            .is_some_and(|a| created.created && conversation.agent_id == Some(a.id));
        if let Some(agent) = &agent {
            self.settle(agent.id, took);
        }
        match &agent {
            Some(agent) if took => self.announce_assignment(&conversation, agent).await,
            _ if conversation.agent_id.is_none() => self.wake_queue(),
            _ => {}
        }
        Ok(conversation)
    }

    /// Gives a waiting conversation to the best agent but `except` right away; `true` if one took
    /// it. Otherwise it waits, and the pump is woken.
    pub(super) async fn route(
        &self,
        conversation: &Conversation,
        except: Option<UserId>,
    ) -> Result<bool> {
        let Some(agent) = self.route_hint(None, except).await? else {
            self.wake_queue();
            return Ok(false);
        };
        match self
            .store
            .assign_conversation(conversation.id, agent.id)
            .await?
        {
            Assignment::Assigned => {
                self.roster
                    .add_open(agent.id, 1, crate::domain::now_millis());
                self.announce_assignment(conversation, &agent).await;
                Ok(true)
            }
            Assignment::Taken => {
                self.open.forget(conversation.customer_id);
                Ok(true)
            }
            Assignment::Full => {
                self.roster.invalidate();
                self.wake_queue();
                Ok(false)
            }
        }
    }

    /// Tells the customer and the agent that the conversation is now theirs.
    pub(super) async fn announce_assignment(&self, conversation: &Conversation, agent: &User) {
        let customer_online = self.delivery.online(&[conversation.customer_id]).await == [true];
        self.told_assigned(conversation, agent, customer_online);
    }

    /// [`Chat::announce_assignment`], knowing whether the customer is online.
    pub(super) fn told_assigned(
        &self,
        conversation: &Conversation,
        agent: &User,
        customer_online: bool,
    ) {
        self.open.put_open(&Conversation {
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
        if customer_online {
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

    /// Room may have freed or the queue grown: the pump gives out what it can, soon. Nothing
    /// waits for it.
    pub fn assign_queue(&self) {
        self.wake_queue();
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
        let Latest::Open(conversation) = self.latest(me.user_id).await? else {
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
        self.roster.set_away(me.user_id, !available);
        self.delivery.notify(
            me.user_id,
            &Notice::AgentStatus {
                agent: me.user_id,
                available,
            },
            origin,
        );
        if available {
            self.wake_queue();
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
        self.roster.set_capacity(agent, capacity);
        self.wake_queue();
        Ok(())
    }

    /// An agent's account was disabled or enabled: routing reads the staff again.
    pub fn staff_changed(&self) {
        self.roster.invalidate();
    }
}
