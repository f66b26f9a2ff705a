//! Presence shared through Redis, and the one task that announces every presence change.
//!
//! Keys, under the cluster's prefix (`kefu` by default, so that several clusters can share one
//! Redis):
//! - `kefu:online:{user}`: the nodes where the user has a connection; online while not empty.
//! - `kefu:agents`: the online agents, scored by when they came online (routing's tie-break).
//! - `kefu:nodes`: the live nodes, scored by their last refresh, in Redis' own clock so that the
//!   nodes' clocks need not agree.
//! - `kefu:node:{node}:users`: user → role of the node's online users, what the others clean up
//!   when the node dies.
//! - `kefu:node:{node}`: the node's figures for the admin page.
//! - `kefu:reap:{node}`: taken by the node that cleans up after a dead one.
//!
//! Every change is one Lua script, so two nodes changing one user's presence at once cannot both
//! announce it.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Cluster;
use crate::{
    adapter::{Io, Link, LinkError, LinkState, ROOT},
    connections::PresenceChange,
    domain::{Role, UserId},
    protocol,
    services::{auth::Identity, chat::Chat},
};

/// Presence changes recorded in one round trip.
const BATCH: usize = 512;

/// The cluster's key names.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    fn online(&self, user: UserId) -> String {
        format!("{}:online:{user}", self.prefix)
    }

    fn agents(&self) -> String {
        format!("{}:agents", self.prefix)
    }

    fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }

    fn users(&self, node: &str) -> String {
        format!("{}:node:{node}:users", self.prefix)
    }

    fn info(&self, node: &str) -> String {
        format!("{}:node:{node}", self.prefix)
    }

    fn reap(&self, node: &str) -> String {
        format!("{}:reap:{node}", self.prefix)
    }
}

/// KEYS: online set, node's users, agents. ARGV: node, user, role.
/// Returns 1 when the user was offline everywhere before.
const CONNECT: &str = r"
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
local added = redis.call('SADD', KEYS[1], ARGV[1])
if ARGV[3] == 'agent' then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[3], 'NX', t[1] * 1000 + math.floor(t[2] / 1000), ARGV[2])
end
if added == 1 and redis.call('SCARD', KEYS[1]) == 1 then return 1 end
return 0
";

/// KEYS: online set, node's users, agents. ARGV: node, user.
/// Returns 1 when the user is now offline everywhere.
const DISCONNECT: &str = r"
redis.call('HDEL', KEYS[2], ARGV[2])
local removed = redis.call('SREM', KEYS[1], ARGV[1])
if removed == 1 and redis.call('SCARD', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[3], ARGV[2])
  return 1
end
return 0
";

/// KEYS: nodes, the node's figures. ARGV: node, timeout ms, connections, users, agents, started.
/// Returns whether the node was missing (declared dead, or Redis lost its data) and the nodes
/// silent for longer than the timeout.
const REFRESH: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local missing = redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], 'connections', ARGV[3], 'users', ARGV[4], 'agents', ARGV[5], 'startedAt', ARGV[6])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]) * 3)
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
return {missing, dead}
";

fn connect_script(pipe: &mut redis::Pipeline, keys: &Keys, node: &str, who: Identity) {
    pipe.cmd("EVAL")
        .arg(CONNECT)
        .arg(3)
        .arg(keys.online(who.user_id))
        .arg(keys.users(node))
        .arg(keys.agents())
        .arg(node)
        .arg(who.user_id.0)
        .arg(who.role.as_str());
}

fn disconnect_script(pipe: &mut redis::Pipeline, keys: &Keys, node: &str, user: UserId) {
    pipe.cmd("EVAL")
        .arg(DISCONNECT)
        .arg(3)
        .arg(keys.online(user))
        .arg(keys.users(node))
        .arg(keys.agents())
        .arg(node)
        .arg(user.0);
}

/// Which of `users` have a connection on some node.
pub(super) async fn online(
    link: &Link,
    keys: &Keys,
    users: &[UserId],
) -> Result<Vec<bool>, LinkError> {
    let mut pipe = redis::pipe();
    for user in users {
        pipe.exists(keys.online(*user));
    }
    link.query(&pipe).await
}

/// Online agents, in the order they came online.
pub(super) async fn online_agents(link: &Link, keys: &Keys) -> Result<Vec<UserId>, LinkError> {
    let ids: Vec<i64> = link
        .query(redis::cmd("ZRANGE").arg(keys.agents()).arg(0).arg(-1))
        .await?;
    Ok(ids.into_iter().map(UserId).collect())
}

/// One live node, as `GET /api/admin/nodes` shows it.
#[derive(Debug, Clone)]
pub struct NodeFigures {
    pub id: String,
    pub started_at: i64,
    pub connections: usize,
    pub online_users: usize,
    pub agents: Vec<UserId>,
}

/// Every live node with its last figures.
pub(super) async fn nodes(link: &Link, keys: &Keys) -> Result<Vec<NodeFigures>, LinkError> {
    let ids: Vec<String> = link
        .query(redis::cmd("ZRANGE").arg(keys.nodes()).arg(0).arg(-1))
        .await?;
    let mut pipe = redis::pipe();
    for id in &ids {
        pipe.hgetall(keys.info(id));
    }
    let infos: Vec<HashMap<String, String>> = link.query(&pipe).await?;
    Ok(ids
        .into_iter()
        .zip(infos)
        .map(|(id, info)| {
            let number = |field: &str| info.get(field).and_then(|v| v.parse().ok());
            NodeFigures {
                id,
                started_at: number("startedAt").unwrap_or(0),
                connections: number("connections").unwrap_or(0) as usize,
                online_users: number("users").unwrap_or(0) as usize,
                agents: info
                    .get("agents")
                    .map(|a| {
                        a.split(',')
                            .filter_map(|id| id.parse().ok())
                            .map(UserId)
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect())
}

/// The presence tasks. One records this node's changes (in Redis when there is one) and announces
/// those that change what others see; announcing takes database queries, so with a cluster a
/// second task of its own keeps the node alive in Redis and cleans up after dead nodes: however
/// busy the first, the others never take this node for dead because it was announcing.
pub(super) async fn run(
    cluster: Arc<Cluster>,
    io: Io,
    chat: Chat,
    mut changes: mpsc::UnboundedReceiver<PresenceChange>,
    stop: CancellationToken,
) {
    let (reaped, mut reaped_rx) = mpsc::unbounded_channel::<Vec<PresenceChange>>();
    let keeper = |chat: Option<Chat>| Keeper {
        cluster: cluster.clone(),
        io: io.clone(),
        chat,
        dirty: Arc::default(),
        registered: false,
        generation: 0,
        reaped: reaped.clone(),
    };
    let announcer = keeper(Some(chat));
    let refresher = cluster.link.is_cluster().then(|| {
        let mut refresher = Keeper {
            dirty: announcer.dirty.clone(),
            ..keeper(None)
        };
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(refresher.cluster.node_timeout / 4);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => refresher.refresh().await,
                }
            }
        })
    });
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            n = changes.recv_many(&mut batch, BATCH) => {
                if n == 0 {
                    break;
                }
                announcer.record(&batch).await;
                batch.clear();
            }
            Some(offline) = reaped_rx.recv() => announcer.announce(&offline).await,
        }
    }
    if let Some(refresher) = refresher {
        let _ = refresher.await;
    }
    // Stopping: the connections are closed by now; what they changed is announced, then the node
    // leaves so that the others need not wait for it to be declared dead.
    while let Ok(change) = changes.try_recv() {
        batch.push(change);
    }
    // Bounded: with the database or Redis gone, each announcement would wait for its timeout
    // and the stop would take as long as there were users; the others notice by themselves.
    let farewell = async {
        announcer.record(&batch).await;
        announcer.leave().await;
    };
    if tokio::time::timeout(FAREWELL_TIMEOUT, farewell)
        .await
        .is_err()
    {
        tracing::warn!(
            "stopping without announcing every user offline: the database or Redis does not answer"
        );
    }
}

/// How long a stopping node spends announcing its users offline.
const FAREWELL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

struct Keeper {
    cluster: Arc<Cluster>,
    io: Io,
    /// The announcer's; the refresher hands what it finds to the announcer through `reaped`.
    chat: Option<Chat>,
    /// Changes happened that Redis has not recorded (it was away).
    dirty: Arc<AtomicBool>,
    /// This node has registered in Redis since it started.
    registered: bool,
    /// The link's generation at the last refresh.
    generation: u64,
    reaped: mpsc::UnboundedSender<Vec<PresenceChange>>,
}

impl Keeper {
    fn node(&self) -> &str {
        &self.cluster.node
    }

    fn link(&self) -> &Link {
        &self.cluster.link
    }

    fn keys(&self) -> &Keys {
        &self.cluster.keys
    }

    /// Records changes and announces those that change what the user's peers see: alone, or
    /// while Redis is away, each change; with Redis, a user's first connection anywhere and its
    /// last one.
    async fn record(&self, changes: &[PresenceChange]) {
        if changes.is_empty() {
            return;
        }
        let announced: Vec<PresenceChange> = if !self.link().is_cluster() {
            changes.to_vec()
        } else {
            let mut pipe = redis::pipe();
            for change in changes {
                if change.online {
                    connect_script(&mut pipe, self.keys(), self.node(), change.identity);
                } else {
                    disconnect_script(&mut pipe, self.keys(), self.node(), change.identity.user_id);
                }
            }
            match self.link().query::<Vec<i64>>(&pipe).await {
                Ok(results) => changes
                    .iter()
                    .zip(results)
                    .filter(|(_, first_or_last)| *first_or_last == 1)
                    .map(|(change, _)| *change)
                    .collect(),
                Err(_) => {
                    self.dirty.store(true, Ordering::Relaxed);
                    changes.to_vec()
                }
            }
        };
        self.announce(&announced).await;
    }

    async fn announce(&self, changes: &[PresenceChange]) {
        let Some(chat) = &self.chat else {
            let _ = self.reaped.send(changes.to_vec());
            return;
        };
        for change in changes {
            if let Err(error) = chat.presence_changed(change.identity, change.online).await {
                error.log("announcing presence");
            }
        }
    }

    /// Tells the cluster this node is alive; restores its users in Redis when Redis lost them or
    /// missed changes; takes the users of dead nodes offline.
    async fn refresh(&mut self) {
        let LinkState::Up { generation } = self.link().state() else {
            return;
        };
        let local = &self.cluster.local;
        let agents: Vec<String> = local
            .online_agents()
            .iter()
            .map(|a| a.to_string())
            .collect();
        let refreshed: Result<(i64, Vec<String>), _> = self
            .link()
            .query(
                redis::cmd("EVAL")
                    .arg(REFRESH)
                    .arg(2)
                    .arg(self.keys().nodes())
                    .arg(self.keys().info(self.node()))
                    .arg(self.node())
                    .arg(self.cluster.node_timeout.as_millis() as u64)
                    .arg(local.len())
                    .arg(local.online_users())
                    .arg(agents.join(","))
                    .arg(self.cluster.started_at),
            )
            .await;
        let Ok((missing, dead)) = refreshed else {
            return;
        };
        // Every connection after the first is a reconnection, also one before the first refresh.
        let reconnected = generation > 1 && self.generation != generation;
        self.generation = generation;
        let lost = missing == 1 && self.registered;
        let dirty = self.dirty.load(Ordering::Relaxed);
        if missing == 1 || reconnected || dirty {
            if let Err(error) = self.reconcile().await {
                tracing::debug!(%error, "restoring presence in redis");
                return;
            }
            if lost {
                tracing::warn!(
                    "this node had been taken for dead or redis lost its data: presence restored"
                );
            }
            // Deliveries through Redis may have been missed while it was away, here or elsewhere.
            if reconnected || lost || dirty {
                self.resync_everyone().await;
            }
            self.dirty.store(false, Ordering::Relaxed);
            self.registered = true;
        }
        for node in dead.iter().filter(|n| n.as_str() != self.node()) {
            match self.reap(node).await {
                Ok(None) => {}
                Ok(Some(offline)) => {
                    tracing::warn!(
                        node = node.as_str(),
                        offline = offline.len(),
                        "a node stopped refreshing: its users went offline"
                    );
                    self.announce(&offline).await;
                }
                Err(error) => tracing::debug!(%error, "cleaning up after a dead node"),
            }
        }
    }

    /// Makes Redis hold exactly this node's online users.
    async fn reconcile(&self) -> Result<(), LinkError> {
        let recorded: HashMap<i64, String> = self
            .link()
            .query(redis::cmd("HGETALL").arg(self.keys().users(self.node())))
            .await?;
        let present = self.cluster.local.announced_users();
        let present_ids: HashSet<i64> = present.iter().map(|i| i.user_id.0).collect();
        let mut pipe = redis::pipe();
        for identity in present
            .iter()
            .filter(|i| !recorded.contains_key(&i.user_id.0))
        {
            connect_script(&mut pipe, self.keys(), self.node(), *identity);
            pipe.ignore();
        }
        for user in recorded.keys().filter(|u| !present_ids.contains(u)) {
            disconnect_script(&mut pipe, self.keys(), self.node(), UserId(*user));
            pipe.ignore();
        }
        if !pipe.is_empty() {
            self.link().query::<()>(&pipe).await?;
        }
        Ok(())
    }

    /// Takes a dead node's users offline, unless another node does it first (`None`); returns the
    /// users now offline everywhere.
    async fn reap(&self, dead: &str) -> Result<Option<Vec<PresenceChange>>, LinkError> {
        let claimed: Option<String> = self
            .link()
            .query(
                redis::cmd("SET")
                    .arg(self.keys().reap(dead))
                    .arg(self.node())
                    .arg("NX")
                    .arg("PX")
                    .arg(10_000),
            )
            .await?;
        if claimed.is_none() {
            return Ok(None);
        }
        let users: HashMap<i64, String> = self
            .link()
            .query(redis::cmd("HGETALL").arg(self.keys().users(dead)))
            .await?;
        let users: Vec<Identity> = users
            .into_iter()
            .filter_map(|(user, role)| {
                Some(Identity {
                    user_id: UserId(user),
                    role: Role::parse(&role).ok()?,
                })
            })
            .collect();
        let mut pipe = redis::pipe();
        for identity in &users {
            disconnect_script(&mut pipe, self.keys(), dead, identity.user_id);
        }
        pipe.del(self.keys().users(dead)).ignore();
        pipe.del(self.keys().info(dead)).ignore();
        pipe.zrem(self.keys().nodes(), dead).ignore();
        let results: Vec<i64> = self.link().query(&pipe).await?;
        Ok(Some(
            users
                .into_iter()
                .zip(results)
                .filter(|(_, last)| *last == 1)
                .map(|(identity, _)| PresenceChange {
                    identity,
                    online: false,
                })
                .collect(),
        ))
    }

    /// Asks every client on every node (or on this node, if Redis is away again) to fetch what it
    /// may have missed.
    async fn resync_everyone(&self) {
        let payload = protocol::Resync { reason: "cluster" };
        tracing::info!("asking every client to resync");
        let Some(root) = self.io.of(ROOT) else {
            return;
        };
        if root.clone().emit(protocol::RESYNC, &payload).await.is_err() {
            let _ = root.local().emit(protocol::RESYNC, &payload).await;
        }
    }

    /// A stopping node takes its remaining users offline and leaves the cluster.
    async fn leave(&self) {
        if !self.link().is_cluster() || !self.link().is_up() {
            return;
        }
        match self.reap(self.node()).await {
            Ok(offline) => self.announce(&offline.unwrap_or_default()).await,
            Err(error) => tracing::debug!(%error, "leaving the cluster"),
        }
    }
}
