//! Handing a conversation on: to another agent or back to the queue, ended by its agent, or
//! taken from an agent whose account was disabled.

use super::Chat;
use crate::{
    domain::{Content, ConversationId, Role, User, UserId},
    services::{Error, Result, auth::Identity, delivery::Notice},
    store::{Assignment, Conversation},
};

impl Chat {
    /// The agent hands its conversation with `peer` to another agent (`to`), or back to the queue
    /// (`None`), with an optional private note for whoever takes it next.
    #[tracing::instrument(skip_all, fields(user = %me.user_id))]
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
        self.roster.add_open(me.user_id, -1, 0);
        if let Some(target) = &target {
            self.roster
                .add_open(target.id, 1, crate::domain::now_millis());
        }
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
                // Anyone but me: I just handed it back. Else it waits, and the pump tells it.
                self.route(&moved, Some(me.user_id)).await?;
            }
        }
        Ok((conversation.id, target.map(|t| t.id)))
    }

    /// Whom a conversation may be handed to: another enabled agent, online, available, with room.
    pub(super) async fn transfer_target(&self, me: Identity, to: UserId) -> Result<User> {
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

    /// The agent ends its conversation with `peer`. The customer's next message starts a new one;
    /// the freed capacity takes from the queue.
    #[tracing::instrument(skip_all, fields(user = %me.user_id))]
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
        self.open
            .put(customer, super::open::Latest::Ended(conversation.id));
        self.roster.add_open(me.user_id, -1, 0);
        self.wake_queue();
        Ok(conversation.id)
    }

    /// An agent left (its account was disabled, it signed out, or it stayed offline): its
    /// customers see it go offline and are told why; their conversations go back to the queue and
    /// to the other online agents.
    #[tracing::instrument(skip_all, fields(agent = %agent))]
    pub async fn release_agent(&self, agent: UserId, why: super::timers::Release) -> Result<()> {
        let released = self.store.release_conversations(agent).await?;
        if released.is_empty() {
            return Ok(());
        }
        self.metrics.requeued.add(released.len() as u64);
        tracing::info!(
            released = released.len(),
            ?why,
            "conversations back in the queue"
        );
        let name = self.staff_name(agent).await;
        for conversation in &released {
            let customer = conversation.customer_id;
            self.open.forget(customer);
            self.delivery.conversation_changed(customer);
            self.say(conversation, agent, why.told(&name));
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
        self.roster.add_open(agent, -(released.len() as i64), 0);
        self.wake_queue();
        Ok(())
    }
}
