//! The queue's pump: one task per node gives waiting conversations to the agents with room, many
//! per transaction, and tells each waiting customer connected here its place, at most once a
//! second. Whatever frees room or adds to the queue (an agent online or available, more
//! capacity, a conversation resolved, handed back or started without an agent) wakes it; nothing
//! waits for it, so an agent's sign-in is answered at once however long the queue.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use tokio::{sync::Notify, task::JoinSet};
use tokio_util::sync::CancellationToken;

use super::Chat;
use crate::{
    domain::{ConversationId, QueuePlace, UserId, WaitEstimate},
    services::{Result, delivery::Notice},
    store::{AgentLoad, Conversation, Queued, Waiting},
};

/// Conversations given out per transaction.
pub(super) const DRAIN_BATCH: u32 = 500;
/// A waiting customer hears of its place at most this often.
const ANNOUNCE_EVERY: Duration = Duration::from_secs(1);
/// The most waiting conversations a node lists to tell places.
const SNAPSHOT_LIMIT: u32 = 100_000;
/// A place known from a list older than this is counted again instead.
const PLACES_FRESH: Duration = Duration::from_secs(5);
/// How long a count of the queue's length is reused when there is no fresh list.
const COUNTED_FRESH: Duration = Duration::from_secs(1);
/// How long the median handling time is reused before it is read again.
const MEDIAN_FRESH: Duration = Duration::from_secs(60);
/// A conversation an agent handed back to the queue does not go straight back to that agent for
/// this long.
const RETURNED_KEPT_FROM: Duration = Duration::from_secs(120);
/// The wait per conversation assumed before any conversation was resolved.
const DEFAULT_HANDLING_SECONDS: i64 = 300;

#[derive(Default)]
pub(super) struct Pump {
    wake: Notify,
    state: Mutex<PumpState>,
}

#[derive(Default)]
struct PumpState {
    /// Each waiting conversation's place at the last look (1 for the head), and when.
    places: HashMap<ConversationId, i64>,
    listed: usize,
    listed_at: Option<Instant>,
    /// The place each waiting customer was told last.
    told: HashMap<ConversationId, i64>,
    /// Online, available agents at the last drain (at least 1 for estimates).
    available: i64,
    median: Option<(i64, Instant)>,
    /// The queue's length as last counted for `GET /api/availability`, and when.
    counted: Option<(i64, Instant)>,
}

impl Pump {
    fn lock(&self) -> std::sync::MutexGuard<'_, PumpState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Chat {
    /// Starts this node's queue pump and the offline path's timers (run by one node of a
    /// cluster at a time, `node` naming this one); they end when the server stops
    /// ([`Chat::stop`]).
    pub fn start(&self, node: String, tasks: &mut JoinSet<()>) {
        tasks.spawn(self.clone().pump(self.stopping.clone()));
        tasks.spawn(self.clone().run_timers(node, self.stopping.clone()));
    }

    /// Something changed that may move the queue: the pump runs soon.
    pub(super) fn wake_queue(&self) {
        self.pump.wake.notify_one();
    }

    async fn pump(self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(ANNOUNCE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_announce: Option<Instant> = None;
        // At the start, whatever waits from before is taken and told.
        let mut dirty = true;
        let mut waiting = false;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                () = self.pump.wake.notified() => dirty = true,
                _ = tick.tick() => {
                    // While anyone waits, look again every tick: another node's changes, and a
                    // conversation handed back that may now go to its agent after all.
                    if waiting {
                        dirty = true;
                    }
                }
            }
            if !dirty || self.stopping.is_cancelled() {
                continue;
            }
            if let Err(error) = self.drain().await {
                error.log("draining the queue");
            }
            if last_announce.is_some_and(|at| at.elapsed() < ANNOUNCE_EVERY) {
                // Told again at the next tick.
                continue;
            }
            match self.announce_places().await {
                Ok(listed) => waiting = listed > 0,
                Err(error) => error.log("telling the queue its places"),
            }
            last_announce = Some(Instant::now());
            dirty = false;
        }
    }

    /// Gives the head of the queue to the online, available agents with room, one transaction
    /// per [`DRAIN_BATCH`], until nobody has room or nobody waits.
    #[tracing::instrument(skip_all)]
    pub(super) async fn drain(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            if self.stopping.is_cancelled() {
                break;
            }
            let online = self.delivery.online_agents().await;
            if online.is_empty() {
                self.pump.lock().available = 0;
                break;
            }
            // Read fresh for the drain, not given to the roster: the roster counts promises to
            // agents that a read would count a second time once written.
            let loads = self.store.agent_loads(&online).await?;
            let mut takers: Vec<(usize, AgentLoad)> = loads
                .into_iter()
                .filter(|l| !l.away && !l.disabled)
                // Room promised to first messages on their way is theirs.
                .map(|mut l| {
                    l.open += self.roster.promised(l.user.id);
                    l
                })
                .map(|l| {
                    (
                        online
                            .iter()
                            .position(|a| *a == l.user.id)
                            .unwrap_or(usize::MAX),
                        l,
                    )
                })
                .collect();
            self.pump.lock().available = takers.len() as i64;
            takers.retain(|(_, l)| l.free() > 0);
            let room: i64 = takers.iter().map(|(_, l)| l.free()).sum();
            if room <= 0 {
                break;
            }
            let limit = u32::try_from(room).unwrap_or(u32::MAX).min(DRAIN_BATCH);
            let ids: Vec<UserId> = takers.iter().map(|(_, l)| l.user.id).collect();
            let waiting = self
                .store
                .queued_conversations(limit, RETURNED_KEPT_FROM.as_millis() as i64, &ids)
                .await?;
            if waiting.is_empty() {
                break;
            }
            let plan = plan_assignments(&waiting, &mut takers);
            let assigned = self.store.assign_conversations(&plan).await?;
            if assigned.is_empty() {
                break;
            }
            total += assigned.len();
            self.announce_drained(&waiting, &assigned, &takers).await;
            if (waiting.len() as u32) < limit {
                break;
            }
        }
        Ok(total)
    }

    /// Tells both sides of each conversation just given out, as one assignment is told.
    async fn announce_drained(
        &self,
        waiting: &[Queued],
        assigned: &[(ConversationId, UserId)],
        takers: &[(usize, AgentLoad)],
    ) {
        let now = crate::domain::now_millis();
        let moved: Vec<Conversation> = assigned
            .iter()
            .filter_map(|(id, agent)| {
                let q = waiting.iter().find(|q| q.conversation.id == *id)?;
                Some(Conversation {
                    agent_id: Some(*agent),
                    ..q.conversation.clone()
                })
            })
            .collect();
        let customers: Vec<UserId> = moved.iter().map(|c| c.customer_id).collect();
        let online = self.delivery.online(&customers).await;
        let mut state = self.pump.lock();
        for (conversation, customer_online) in moved.iter().zip(online) {
            let Some(agent) = conversation.agent_id else {
                continue;
            };
            let Some((_, load)) = takers.iter().find(|(_, l)| l.user.id == agent) else {
                continue;
            };
            state.places.remove(&conversation.id);
            state.told.remove(&conversation.id);
            self.roster.add_open(agent, 1, now);
            self.told_assigned(conversation, &load.user, customer_online);
        }
    }

    /// Lists the queue and tells each waiting customer connected here its place, if it changed
    /// since it was last told. Returns how many wait.
    async fn announce_places(&self) -> Result<usize> {
        let listed = self.store.queue_snapshot(SNAPSHOT_LIMIT).await?;
        let estimate = self.wait_estimate().await?;
        let mut tell: Vec<(Waiting, i64)> = Vec::new();
        {
            let mut state = self.pump.lock();
            let mut places = HashMap::with_capacity(listed.len());
            let mut told = HashMap::with_capacity(listed.len());
            for (i, waiting) in listed.iter().enumerate() {
                let place = i as i64 + 1;
                places.insert(waiting.conversation, place);
                if state.told.get(&waiting.conversation) != Some(&place) {
                    tell.push((*waiting, place));
                }
                told.insert(waiting.conversation, place);
            }
            state.places = places;
            state.told = told;
            state.listed = listed.len();
            state.listed_at = Some(Instant::now());
        }
        for (waiting, position) in tell {
            self.delivery.notify_here(
                waiting.customer,
                &Notice::QueuePosition {
                    conversation: waiting.conversation,
                    place: QueuePlace {
                        position,
                        estimated_wait_seconds: estimate.seconds(position),
                    },
                },
            );
        }
        Ok(listed.len())
    }

    /// How many conversations wait: from the pump's last list when fresh, else counted, at most
    /// once a second however many visitors ask (every open widget asks every 30 s).
    pub(super) async fn queue_length(&self) -> Result<i64> {
        {
            let state = self.pump.lock();
            if state
                .listed_at
                .is_some_and(|at| at.elapsed() < PLACES_FRESH)
            {
                return Ok(state.listed as i64);
            }
            if let Some((n, at)) = state.counted
                && at.elapsed() < COUNTED_FRESH
            {
                return Ok(n);
            }
        }
        let n = self.store.queue_length().await?;
        self.pump.lock().counted = Some((n, Instant::now()));
        Ok(n)
    }

    /// The waiting conversation's place: from the last list when it is fresh, else counted.
    /// `None` if it is not waiting.
    pub(super) async fn queue_place(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<QueuePlace>> {
        let known = {
            let state = self.pump.lock();
            let fresh = state
                .listed_at
                .is_some_and(|at| at.elapsed() < PLACES_FRESH);
            fresh.then(|| state.places.get(&conversation).copied())
        };
        let position = match known {
            Some(Some(position)) => Some(position),
            // Waiting since the last list, or no fresh list: counted, and listed again soon.
            _ => {
                self.wake_queue();
                self.store.queue_position(conversation).await?
            }
        };
        let Some(position) = position else {
            return Ok(None);
        };
        let estimate = self.wait_estimate().await?;
        Ok(Some(QueuePlace {
            position,
            estimated_wait_seconds: estimate.seconds(position),
        }))
    }

    /// Each available agent takes one waiting customer per typical conversation: the median time
    /// from assignment to resolution of the last 100, read at most once a minute.
    pub(super) async fn wait_estimate(&self) -> Result<WaitEstimate> {
        let (available, cached) = {
            let state = self.pump.lock();
            let cached = state
                .median
                .filter(|(_, at)| at.elapsed() < MEDIAN_FRESH)
                .map(|(m, _)| m);
            (state.available.max(1), cached)
        };
        let per_conversation = match cached {
            Some(median) => median,
            None => {
                let median = self
                    .store
                    .median_handling_seconds()
                    .await?
                    .unwrap_or(DEFAULT_HANDLING_SECONDS);
                self.pump.lock().median = Some((median, Instant::now()));
                median
            }
        };
        Ok(WaitEstimate {
            available,
            per_conversation,
        })
    }
}

/// Pairs the waiting conversations, oldest first, with agents: each goes to the agent with the
/// most room left (ties: idle longest, then online longest), as one would be routed alone.
fn plan_assignments(
    waiting: &[Queued],
    takers: &mut [(usize, AgentLoad)],
) -> Vec<(ConversationId, UserId)> {
    let mut plan = Vec::with_capacity(waiting.len());
    for queued in waiting {
        let Some((_, load)) = takers
            .iter_mut()
            .filter(|(_, l)| l.free() > 0 && Some(l.user.id) != queued.returned_by)
            .filter(|(_, l)| queued.waits_for.is_none_or(|agent| agent == l.user.id))
            .min_by_key(|(rank, l)| (-l.free(), l.last_assigned_at, *rank))
        else {
            continue;
        };
        load.open += 1;
        // Ties then go round the agents, as assignments one at a time would.
        load.last_assigned_at = i64::MAX - (waiting.len() - plan.len()) as i64;
        plan.push((queued.conversation.id, load.user.id));
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Role, User};

    fn load(id: i64, capacity: i64, open: i64) -> (usize, AgentLoad) {
        (
            id as usize,
            AgentLoad {
                user: User {
                    id: UserId(id),
                    role: Role::Agent,
                    username: format!("a{id}"),
                    display_name: format!("A{id}"),
                },
                capacity,
                away: false,
                open,
                last_assigned_at: 0,
                disabled: false,
            },
        )
    }

    fn waiting(n: i64) -> Vec<Queued> {
        (1..=n)
            .map(|id| Queued {
                conversation: Conversation {
                    id: ConversationId(id),
                    customer_id: UserId(100 + id),
                    agent_id: None,
                    open: true,
                    last_seq: 1,
                },
                returned_by: None,
                waits_for: None,
            })
            .collect()
    }

    #[test]
    fn a_drain_fills_the_agents_with_the_most_room_first_and_no_one_over_capacity() {
        let mut takers = vec![load(1, 3, 0), load(2, 5, 3), load(3, 2, 2)];
        let plan = plan_assignments(&waiting(10), &mut takers);
        // Room: 3, 2 and 0: five of the ten are given out.
        assert_eq!(plan.len(), 5);
        let to = |agent: i64| plan.iter().filter(|(_, a)| *a == UserId(agent)).count();
        assert_eq!((to(1), to(2), to(3)), (3, 2, 0));
        // Oldest first, the first to the agent with the most room.
        assert_eq!(plan[0], (ConversationId(1), UserId(1)));
        assert!(takers.iter().all(|(_, l)| l.open <= l.capacity));
    }

    #[test]
    fn a_conversation_handed_back_does_not_go_straight_back_to_its_agent() {
        let mut takers = vec![load(1, 5, 0)];
        let mut queue = waiting(2);
        queue[0].returned_by = Some(UserId(1));
        let plan = plan_assignments(&queue, &mut takers);
        assert_eq!(plan, [(ConversationId(2), UserId(1))]);
    }

    #[test]
    fn a_conversation_waiting_for_the_agent_asked_for_goes_to_that_agent_only() {
        let mut takers = vec![load(1, 5, 0), load(2, 5, 0)];
        let mut queue = waiting(2);
        queue[0].waits_for = Some(UserId(2));
        queue[1].waits_for = Some(UserId(3));
        let plan = plan_assignments(&queue, &mut takers);
        assert_eq!(plan, vec![(ConversationId(1), UserId(2))]);
    }

    #[test]
    fn equal_room_is_shared_in_turn() {
        let mut takers = vec![load(1, 2, 0), load(2, 2, 0)];
        let plan = plan_assignments(&waiting(4), &mut takers);
        let agents: Vec<i64> = plan.iter().map(|(_, a)| a.0).collect();
        assert_eq!(agents, [1, 2, 1, 2]);
    }
}
