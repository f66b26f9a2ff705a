//! The staff as routing sees them: each agent's capacity, availability and load, held in memory
//! so that a customer's first message (and a `login` naming an agent) is routed without a query.
//! Read from the database when older than its freshness, and kept current by what this node
//! changes. A hint only: the transaction that assigns checks the agent's room again.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::{
    domain::{User, UserId},
    store::{AgentLoad, Store, StoreError},
};

pub(super) struct Roster {
    state: Mutex<State>,
    /// One reader at a time: many first messages at once need one read, not one each.
    reading: tokio::sync::Mutex<()>,
    fresh_for: Duration,
}

#[derive(Default)]
struct State {
    /// Each agent's load as last read, kept current by this node's own changes.
    loads: HashMap<UserId, AgentLoad>,
    /// Conversations promised to each agent and not written yet: a read of the database does not
    /// know them, so they are counted apart.
    reserved: HashMap<UserId, i64>,
    read_at: Option<Instant>,
}

impl State {
    fn free(&self, load: &AgentLoad) -> i64 {
        load.free() - self.reserved.get(&load.user.id).copied().unwrap_or(0)
    }
}

/// On a node alone every change goes through it; in a cluster the others' changes are read
/// again this often.
pub(super) const ROSTER_FRESH_ALONE: Duration = Duration::from_secs(10);
pub(super) const ROSTER_FRESH_IN_CLUSTER: Duration = Duration::from_secs(1);

impl Roster {
    pub(super) fn new(fresh_for: Duration) -> Self {
        Self {
            state: Mutex::default(),
            reading: tokio::sync::Mutex::new(()),
            fresh_for,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads every agent's load again when what is held is older than its freshness.
    pub(super) async fn refresh_if_stale(&self, store: &Store) -> Result<(), StoreError> {
        let stale = || {
            self.lock()
                .read_at
                .is_none_or(|at| at.elapsed() >= self.fresh_for)
        };
        if !stale() {
            return Ok(());
        }
        let _reading = self.reading.lock().await;
        // Read meanwhile by whoever held the lock.
        if stale() {
            let loads = store.all_agent_loads().await?;
            self.absorb(loads);
        }
        Ok(())
    }

    /// Takes every agent's load as read from the database.
    pub(super) fn absorb(&self, loads: Vec<AgentLoad>) {
        let mut state = self.lock();
        state.loads = loads.into_iter().map(|l| (l.user.id, l)).collect();
        state.read_at = Some(Instant::now());
    }

    /// Conversations promised to `agent` and not written yet: room the queue must not take.
    pub(super) fn promised(&self, agent: UserId) -> i64 {
        self.lock().reserved.get(&agent).copied().unwrap_or(0)
    }

    /// Forgets what is held: the next reader reads again.
    pub(super) fn invalidate(&self) {
        self.lock().read_at = None;
    }

    /// The staff member, if it is one and is enabled.
    pub(super) fn staff(&self, id: UserId) -> Option<AgentLoad> {
        self.lock()
            .loads
            .get(&id)
            .filter(|l| !l.disabled && l.user.role.is_staff())
            .cloned()
    }

    /// Of the `online` staff, how many are available (enabled, not away), and how many of those
    /// have room now.
    pub(super) fn available_with_room(&self, online: &[UserId]) -> (i64, i64) {
        let state = self.lock();
        let available: Vec<&AgentLoad> = online
            .iter()
            .filter_map(|id| state.loads.get(id))
            .filter(|l| !l.away && !l.disabled)
            .collect();
        let with_room = available.iter().filter(|l| state.free(l) > 0).count();
        (available.len() as i64, with_room as i64)
    }

    /// `n` more (or fewer) open conversations for `agent`, as this node just changed them.
    pub(super) fn add_open(&self, agent: UserId, n: i64, at: i64) {
        if let Some(load) = self.lock().loads.get_mut(&agent) {
            load.open = (load.open + n).max(0);
            if n > 0 {
                load.last_assigned_at = at;
            }
        }
    }

    pub(super) fn set_away(&self, agent: UserId, away: bool) {
        if let Some(load) = self.lock().loads.get_mut(&agent) {
            load.away = away;
        }
    }

    pub(super) fn set_capacity(&self, agent: UserId, capacity: i64) {
        if let Some(load) = self.lock().loads.get_mut(&agent) {
            load.capacity = capacity;
        }
    }

    /// [`Roster::pick`], and the agent picked counts the conversation as promised at once: hints
    /// given to many first messages at the same moment spread over the agents instead of all
    /// naming the same one. [`Roster::settle`] ends the promise, whether the agent took it or not.
    pub(super) fn reserve(
        &self,
        online: &[UserId],
        requested: Option<UserId>,
        except: Option<UserId>,
    ) -> Option<User> {
        let picked = self.pick(online, requested, except)?;
        let mut state = self.lock();
        *state.reserved.entry(picked.id).or_default() += 1;
        if let Some(load) = state.loads.get_mut(&picked.id) {
            load.last_assigned_at = crate::domain::now_millis();
        }
        Some(picked)
    }

    /// The conversation promised to `agent` was written: taken (it counts as open from now on) or
    /// not.
    pub(super) fn settle(&self, agent: UserId, taken: bool) {
        let mut state = self.lock();
        if let Some(n) = state.reserved.get_mut(&agent) {
            *n -= 1;
            if *n <= 0 {
                state.reserved.remove(&agent);
            }
        }
        if taken && let Some(load) = state.loads.get_mut(&agent) {
            load.open += 1;
        }
    }

    /// Who should take a new conversation: the agent asked for when it is online, available and
    /// has room; else the online, available agent with the most room (ties: idle longest, then
    /// online longest), never `except`.
    pub(super) fn pick(
        &self,
        online: &[UserId],
        requested: Option<UserId>,
        except: Option<UserId>,
    ) -> Option<User> {
        let state = self.lock();
        let takes = |l: &&AgentLoad| !l.away && !l.disabled && state.free(l) > 0;
        if let Some(load) = requested
            .filter(|r| online.contains(r) && Some(*r) != except)
            .and_then(|r| state.loads.get(&r))
            .filter(takes)
        {
            return Some(load.user.clone());
        }
        online
            .iter()
            .enumerate()
            .filter(|(_, id)| Some(**id) != except)
            .filter_map(|(rank, id)| state.loads.get(id).map(|l| (rank, l)))
            .filter(|(_, l)| takes(l))
            .min_by_key(|(rank, l)| (-state.free(l), l.last_assigned_at, *rank))
            .map(|(_, l)| l.user.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;

    fn load(id: i64, capacity: i64, open: i64, last_assigned_at: i64) -> AgentLoad {
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
            last_assigned_at,
            disabled: false,
        }
    }

    fn roster(loads: Vec<AgentLoad>) -> Roster {
        let roster = Roster::new(ROSTER_FRESH_ALONE);
        roster.absorb(loads);
        roster
    }

    #[test]
    fn the_agent_with_the_most_room_takes_it_then_the_one_idle_longest() {
        let r = roster(vec![load(1, 5, 4, 0), load(2, 5, 2, 50), load(3, 5, 2, 10)]);
        let online = [UserId(1), UserId(2), UserId(3)];
        assert_eq!(r.pick(&online, None, None).unwrap().id, UserId(3));
        r.add_open(UserId(3), 1, 100);
        assert_eq!(r.pick(&online, None, None).unwrap().id, UserId(2));
    }

    #[test]
    fn hints_given_at_the_same_moment_spread_over_the_agents() {
        let r = roster(vec![load(1, 2, 0, 0), load(2, 2, 0, 0)]);
        let online = [UserId(1), UserId(2)];
        let picked: Vec<i64> = (0..5)
            .map(|_| r.reserve(&online, None, None).map_or(0, |u| u.id.0))
            .collect();
        assert_eq!(picked, [1, 2, 1, 2, 0], "four places, then nobody");
        // A promise not kept frees its place; one kept stays counted, read again or not.
        r.settle(UserId(2), false);
        assert_eq!(r.reserve(&online, None, None).unwrap().id, UserId(2));
        r.settle(UserId(1), true);
        r.settle(UserId(1), true);
        // A fresh read counts what was written; the promises still out (two to 2) stay counted.
        r.absorb(vec![load(1, 2, 2, 0), load(2, 2, 0, 0)]);
        assert!(
            r.reserve(&online, Some(UserId(1)), None).is_none(),
            "1 is full, 2 promised"
        );
        r.settle(UserId(2), false);
        assert_eq!(
            r.reserve(&online, Some(UserId(1)), None).unwrap().id,
            UserId(2)
        );
    }

    #[test]
    fn the_agent_asked_for_takes_it_while_online_available_and_with_room() {
        let r = roster(vec![load(1, 5, 4, 0), load(2, 5, 0, 0)]);
        let online = [UserId(1), UserId(2)];
        assert_eq!(
            r.pick(&online, Some(UserId(1)), None).unwrap().id,
            UserId(1)
        );
        r.add_open(UserId(1), 1, 1);
        assert_eq!(
            r.pick(&online, Some(UserId(1)), None).unwrap().id,
            UserId(2)
        );
        r.set_away(UserId(2), true);
        assert!(r.pick(&online, Some(UserId(1)), None).is_none());
        assert!(
            r.pick(&[UserId(1)], Some(UserId(2)), None).is_none(),
            "offline"
        );
    }

    #[test]
    fn nobody_offline_away_full_or_excepted_takes_it() {
        let r = roster(vec![load(1, 1, 1, 0), load(2, 5, 0, 0)]);
        assert!(r.pick(&[UserId(1)], None, None).is_none(), "full");
        assert!(
            r.pick(&[UserId(2)], None, Some(UserId(2))).is_none(),
            "excepted"
        );
        assert!(r.pick(&[], None, None).is_none(), "nobody online");
    }
}
