//! The offline path's timers: one node of a cluster at a time (the holder of a lease in the
//! database) records who has gone since when, then
//!
//! - ends the waiting conversations whose customers left `abandon_after` ago as abandoned, or
//!   keeps them for the next agent when the customer left an e-mail (an offline conversation);
//! - resolves the assigned conversations where nothing was said for `idle_resolve_after` while
//!   the customer was away, so that no agent's capacity is held by someone who left;
//! - hands the conversations of an agent offline for `agent_offline_requeue_after` back to the
//!   queue, telling the customer why;
//! - ends the waits for an agent asked for by name that ran out.
//!
//! Absences are recorded in the database (`customer_gone_at`, `users.gone_at`), so a restart or a
//! change of lease holder keeps counting from the same moment; every change is conditional on the
//! state it was read in.

use std::{collections::HashSet, time::Duration};

use tokio_util::sync::CancellationToken;

use super::{Chat, open::Latest};
use crate::{
    domain::{ConversationId, UserId, now_millis},
    services::{Result, delivery::Notice},
    store::Conversation,
};

/// The lease's name in the `leases` table.
const LEASE: &str = "offline-path";

impl Chat {
    /// The timers' loop, until the server stops.
    pub(super) async fn run_timers(self, node: String, stop: CancellationToken) {
        let every = self.timers.every;
        // Held for three rounds: a node that stops renewing it is replaced within that.
        let held_for = (every * 3).max(Duration::from_secs(2)).as_millis() as i64;
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut holding = false;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let claimed = tokio::select! {
                _ = stop.cancelled() => break,
                claimed = self.store.claim_lease(LEASE, &node, now_millis(), held_for) => claimed,
            };
            match claimed {
                Ok(true) => {
                    if !holding {
                        tracing::info!("this node runs the offline path's timers");
                    }
                    holding = true;
                }
                Ok(false) => {
                    holding = false;
                    continue;
                }
                Err(error) => {
                    super::super::Error::from(error).log("claiming the timers' lease");
                    continue;
                }
            }
            let started = std::time::Instant::now();
            let round = tokio::select! {
                _ = stop.cancelled() => break,
                round = self.timers_round() => round,
            };
            if let Err(error) = round {
                error.log("running the offline path's timers");
            }
            let took = started.elapsed();
            if took > every {
                tracing::warn!(
                    ?took,
                    "a round of the offline path's timers took longer than its period"
                );
            } else {
                tracing::debug!(?took, "a round of the offline path's timers");
            }
        }
        if holding && let Err(error) = self.store.release_lease(LEASE, &node).await {
            super::super::Error::from(error).log("giving up the timers' lease");
        }
    }

    /// One round of every timer. Skipped while presence cannot see the other nodes (Redis
    /// away): their customers would look gone.
    pub(super) async fn timers_round(&self) -> Result<()> {
        if !self.delivery.sees_every_node() {
            tracing::debug!("the timers wait for presence to see every node");
            return Ok(());
        }
        let now = now_millis();
        let ms = |d: Duration| d.as_millis() as i64;
        self.record_absences(now).await?;
        let abandoned = self
            .store
            .abandon_waiting(now - ms(self.timers.abandon_after), now)
            .await?;
        self.metrics.abandoned.add(abandoned.ended.len() as u64);
        self.metrics.kept_offline.add(abandoned.kept as u64);
        for conversation in &abandoned.ended {
            tracing::info!(conversation = %conversation.id, "conversation abandoned");
            self.ended_here(conversation.id, conversation.customer_id);
        }
        if let Some(after) = self.timers.idle_resolve_after {
            let cutoff = now - ms(after);
            for conversation in self.store.idle_conversations(cutoff, cutoff).await? {
                self.end_idle(&conversation, after, now).await?;
            }
        }
        if let Some(after) = self.timers.agent_offline_requeue_after {
            let cutoff = now - ms(after);
            let gone: Vec<UserId> = self
                .store
                .staff_presence()
                .await?
                .into_iter()
                .filter(|(_, gone_at)| gone_at.is_some_and(|at| at < cutoff))
                .map(|(id, _)| id)
                .collect();
            let holding: HashSet<UserId> = self
                .store
                .open_conversation_counts(&gone)
                .await?
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(id, _)| id)
                .collect();
            for agent in holding {
                self.release_agent(agent, Release::Offline).await?;
            }
        }
        for (conversation, agent) in self.store.end_requested_waits(now).await? {
            let name = self.staff_name(agent).await;
            self.say(
                &conversation,
                agent,
                format!(
                    "{name} is not available. You are now waiting for the next available agent."
                ),
            );
            self.wake_queue();
        }
        Ok(())
    }

    /// Records who of the customers with an open conversation, and of the staff, has gone (and
    /// since now) or come back, as presence says on every node.
    async fn record_absences(&self, now: i64) -> Result<()> {
        let open = self.store.open_presence().await?;
        let customers: Vec<UserId> = open.iter().map(|o| o.customer).collect();
        let online = self.delivery.online(&customers).await;
        let (mut gone, mut back): (Vec<ConversationId>, Vec<ConversationId>) = Default::default();
        for (o, online) in open.iter().zip(online) {
            match (online, o.customer_gone_at) {
                (false, None) => gone.push(o.conversation),
                (true, Some(_)) => back.push(o.conversation),
                _ => {}
            }
        }
        self.store.set_customers_gone(&gone, Some(now)).await?;
        self.store.set_customers_gone(&back, None).await?;
        let staff = self.store.staff_presence().await?;
        let ids: Vec<UserId> = staff.iter().map(|(id, _)| *id).collect();
        let online = self.delivery.online(&ids).await;
        let (mut gone, mut back): (Vec<UserId>, Vec<UserId>) = Default::default();
        for ((id, gone_at), online) in staff.iter().zip(online) {
            match (online, gone_at) {
                (false, None) => gone.push(*id),
                (true, Some(_)) => back.push(*id),
                _ => {}
            }
        }
        self.store.set_staff_gone(&gone, Some(now)).await?;
        self.store.set_staff_gone(&back, None).await?;
        Ok(())
    }

    /// Resolves a conversation where nothing was said for `after` while its customer was away.
    async fn end_idle(&self, conversation: &Conversation, after: Duration, now: i64) -> Result<()> {
        let Some(agent) = conversation.agent_id else {
            return Ok(());
        };
        if !self.store.end_idle(conversation, now).await? {
            return Ok(());
        }
        tracing::info!(conversation = %conversation.id, "idle conversation resolved");
        self.metrics.idle_resolved.inc();
        let minutes = after.as_secs().div_ceil(60);
        self.say(
            conversation,
            agent,
            format!(
                "This conversation was closed after {minutes} min without a message while you were away. Write again at any time."
            ),
        );
        let customer = conversation.customer_id;
        self.ended_here(conversation.id, customer);
        let notice = Notice::Resolved {
            conversation: conversation.id,
            customer,
            agent,
        };
        self.delivery.notify(customer, &notice, None);
        self.delivery.notify(agent, &notice, None);
        self.roster.add_open(agent, -1, 0);
        self.wake_queue();
        Ok(())
    }

    /// A conversation kefu ended: the customer's next message starts a new one, on every node.
    fn ended_here(&self, conversation: ConversationId, customer: UserId) {
        self.open.put(customer, Latest::Ended(conversation));
        self.delivery.conversation_changed(customer);
    }

    /// A staff member's name for a system message.
    pub(super) async fn staff_name(&self, id: UserId) -> String {
        if let Some(load) = self.roster.staff(id) {
            return load.user.display_name;
        }
        match self.store.user(id).await {
            Ok(record) => record.user.display_name,
            Err(_) => "The agent".into(),
        }
    }
}

/// Why an agent's conversations go back to the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Its account was disabled.
    Disabled,
    /// It signed out.
    SignedOut,
    /// It stayed offline longer than `agent_offline_requeue_after`.
    Offline,
}

impl Release {
    /// What the customer is told, in the agent's name.
    pub(super) fn told(self, name: &str) -> String {
        match self {
            Release::Disabled | Release::SignedOut => format!(
                "{name} is no longer available. You are back in line for the next available agent."
            ),
            Release::Offline => {
                format!("{name} went offline. You are back in line for the next available agent.")
            }
        }
    }
}
