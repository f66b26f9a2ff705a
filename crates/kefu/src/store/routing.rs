//! What routing needs from the database: each agent's capacity, availability and load, and the
//! assignments that must never put an agent over its capacity, whichever nodes race.

use sqlx::Row;

use super::{
    Conversation, Dialect, Store, StoreError, conversations::conversation_from_row,
    events::NewEvent, sql, text,
};
use crate::domain::{ConversationId, EventKind, Role, User, UserId, now_millis};

/// An agent as routing sees it.
#[derive(Debug, Clone)]
pub struct AgentLoad {
    pub user: User,
    pub capacity: i64,
    pub away: bool,
    /// Open conversations assigned to it.
    pub open: i64,
    /// Milliseconds; 0 if it never got a conversation.
    pub last_assigned_at: i64,
    pub disabled: bool,
}

impl AgentLoad {
    pub fn free(&self) -> i64 {
        self.capacity - self.open
    }
}

/// What became of an attempt to give a conversation to an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignment {
    Assigned,
    /// The conversation is no longer waiting (assigned by someone else, or resolved).
    Taken,
    /// The agent has no free capacity.
    Full,
}

macro_rules! agent_load_columns {
    () => {
        "SELECT u.id, u.role, u.username, u.display_name, u.capacity, u.away, u.last_assigned_at, u.disabled, \
         (SELECT COUNT(*) FROM conversations c WHERE c.agent_id = u.id AND c.status = 'open') AS open_count \
         FROM users u WHERE u.role <> 'customer'"
    };
}

fn agent_loads_of(rows: Vec<sqlx::any::AnyRow>) -> Result<Vec<AgentLoad>, StoreError> {
    rows.iter()
        .map(|row| {
            let role = Role::parse(&text(row, "role")?)
                .map_err(|e| StoreError::Other(sqlx::Error::Decode(e.to_string().into())))?;
            Ok(AgentLoad {
                user: User {
                    id: UserId(row.try_get("id")?),
                    role,
                    username: text(row, "username")?,
                    display_name: text(row, "display_name")?,
                },
                capacity: row.try_get("capacity")?,
                away: row.try_get::<i64, _>("away")? != 0,
                open: row.try_get("open_count")?,
                last_assigned_at: row.try_get("last_assigned_at")?,
                disabled: row.try_get::<i64, _>("disabled")? != 0,
            })
        })
        .collect()
}

impl Store {
    /// The staff among `ids`, with capacity, availability and load.
    pub async fn agent_loads(&self, ids: &[UserId]) -> Result<Vec<AgentLoad>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let query = format!(
            concat!(agent_load_columns!(), " AND u.id IN ({})"),
            super::placeholders(ids.len())
        );
        let query = self.dialect.dynamic(query);
        let mut q = sqlx::query(query.as_ref());
        for id in ids {
            q = q.bind(id.0);
        }
        agent_loads_of(q.fetch_all(&mut *self.conn().await?).await?)
    }

    /// Every agent and admin, with capacity, availability and load.
    pub async fn all_agent_loads(&self) -> Result<Vec<AgentLoad>, StoreError> {
        let rows = sqlx::query(sql!(self, agent_load_columns!()))
            .fetch_all(&mut *self.conn().await?)
            .await?;
        agent_loads_of(rows)
    }

    /// `false` when there is no such user.
    pub async fn set_away(&self, id: UserId, away: bool) -> Result<bool, StoreError> {
        let result = sqlx::query(sql!(self, "UPDATE users SET away = ? WHERE id = ?"))
            .bind(i64::from(away))
            .bind(id.0)
            .execute(&mut *self.write_conn().await?)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// `false` when there is no such staff member.
    pub async fn set_capacity(&self, id: UserId, capacity: i64) -> Result<bool, StoreError> {
        let result = sqlx::query(sql!(
            self,
            "UPDATE users SET capacity = ? WHERE id = ? AND role <> 'customer'"
        ))
        .bind(capacity)
        .bind(id.0)
        .execute(&mut *self.write_conn().await?)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Locks the agent's row for the rest of the transaction (SQLite's write lock is taken at
    /// `BEGIN IMMEDIATE`) and tells whether it can take one more conversation: assignments to
    /// one agent happen one at a time, so its load is never read stale.
    ///
    /// A conversation that changes hands is locked first ([`Store::lock_conversation`]): the
    /// writers lock conversations, then (through the messages' foreign keys) their senders, so
    /// taking them in the same order cannot deadlock. PostgreSQL's `FOR NO KEY UPDATE` does not
    /// even conflict with those foreign-key locks.
    pub(super) async fn has_room(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        agent: UserId,
    ) -> Result<bool, StoreError> {
        Ok(self.room_of(tx, agent).await? > 0)
    }

    /// How many more open conversations `agent` may take, with its row locked (see
    /// [`Store::has_room`]).
    pub(super) async fn room_of(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        agent: UserId,
    ) -> Result<i64, StoreError> {
        let lock = match self.dialect {
            // `BEGIN IMMEDIATE` holds the database's write lock already: one statement reads the
            // capacity and the load, which cannot change under it.
            Dialect::Sqlite => {
                let row = sqlx::query(sql!(
                    self,
                    "SELECT capacity, (SELECT COUNT(*) FROM conversations \
                     WHERE agent_id = ? AND status = 'open') AS n FROM users WHERE id = ?"
                ))
                .bind(agent.0)
                .bind(agent.0)
                .fetch_optional(&mut **tx)
                .await?
                .ok_or(StoreError::NotFound)?;
                let (capacity, open): (i64, i64) = (row.try_get("capacity")?, row.try_get("n")?);
                return Ok(capacity - open);
            }
            Dialect::Postgres => sql!(
                self,
                "SELECT capacity FROM users WHERE id = ? FOR NO KEY UPDATE"
            ),
            Dialect::MySql => sql!(self, "SELECT capacity FROM users WHERE id = ? FOR UPDATE"),
        };
        // The row lock comes first: a count read in the same statement could predate it.
        let capacity: i64 = sqlx::query(lock)
            .bind(agent.0)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or(StoreError::NotFound)?
            .try_get("capacity")?;
        let open: i64 = sqlx::query(sql!(
            self,
            "SELECT COUNT(*) AS n FROM conversations WHERE agent_id = ? AND status = 'open'"
        ))
        .bind(agent.0)
        .fetch_one(&mut **tx)
        .await?
        .try_get("n")?;
        Ok(capacity - open)
    }

    async fn lock_conversation(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        id: ConversationId,
    ) -> Result<(), StoreError> {
        let lock = match self.dialect {
            Dialect::Sqlite => return Ok(()),
            Dialect::Postgres => sql!(
                self,
                "SELECT id FROM conversations WHERE id = ? FOR NO KEY UPDATE"
            ),
            Dialect::MySql => sql!(self, "SELECT id FROM conversations WHERE id = ? FOR UPDATE"),
        };
        sqlx::query(lock)
            .bind(id.0)
            .fetch_optional(&mut **tx)
            .await?;
        Ok(())
    }

    pub(super) async fn note_assignment(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        agent: UserId,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(sql!(
            self,
            "UPDATE users SET last_assigned_at = ? WHERE id = ?"
        ))
        .bind(now)
        .bind(agent.0)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Gives a waiting conversation to an agent, if the agent has room.
    pub async fn assign_conversation(
        &self,
        id: ConversationId,
        agent: UserId,
    ) -> Result<Assignment, StoreError> {
        super::retry_contended(|| self.assign_conversation_once(id, agent)).await
    }

    async fn assign_conversation_once(
        &self,
        id: ConversationId,
        agent: UserId,
    ) -> Result<Assignment, StoreError> {
        let mut tx = self.begin_write().await?;
        self.lock_conversation(&mut tx, id).await?;
        if !self.has_room(&mut tx, agent).await? {
            return Ok(Assignment::Full);
        }
        let now = now_millis();
        let result = sqlx::query(sql!(
            self,
            "UPDATE conversations SET agent_id = ?, assigned_at = ?, updated_at = ? \
             WHERE id = ? AND agent_id IS NULL AND status = 'open'"
        ))
        .bind(agent.0)
        .bind(now)
        .bind(now)
        .bind(id.0)
        .execute(&mut **tx)
        .await?;
        if result.rows_affected() != 1 {
            return Ok(Assignment::Taken);
        }
        self.note_assignment(&mut tx, agent, now).await?;
        let event = NewEvent::new(id, EventKind::Assigned, now).to(Some(agent));
        self.record_event(&mut tx, event).await?;
        tx.commit().await?;
        Ok(Assignment::Assigned)
    }

    /// Creates the customer's open conversation, given to `agent` if it has room (else waiting).
    /// `created` is `false` with the existing one when the customer has an open conversation
    /// already (the unique `open_key` decides under concurrency).
    pub async fn create_conversation(
        &self,
        customer: UserId,
        agent: Option<UserId>,
        waits_for: Option<(UserId, i64)>,
    ) -> Result<Created, StoreError> {
        super::retry_contended(|| self.create_conversation_once(customer, agent, waits_for)).await
    }

    async fn create_conversation_once(
        &self,
        customer: UserId,
        agent: Option<UserId>,
        waits_for: Option<(UserId, i64)>,
    ) -> Result<Created, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut full = false;
        let agent = match agent {
            Some(agent) if self.has_room(&mut tx, agent).await? => Some(agent),
            Some(_) => {
                full = true;
                None
            }
            None => None,
        };
        let now = now_millis();
        let (conversation, created) = match self
            .insert_conversation(&mut tx, customer, agent, now)
            .await
        {
            Ok(id) => {
                if let Some(agent) = agent {
                    self.note_assignment(&mut tx, agent, now).await?;
                    let event = NewEvent::new(id, EventKind::Assigned, now).to(Some(agent));
                    self.record_event(&mut tx, event).await?;
                } else if let Some(waits_for) = waits_for {
                    self.set_requested_wait(&mut tx, id, waits_for).await?;
                }
                tx.commit().await?;
                let conversation = Conversation {
                    id,
                    customer_id: customer,
                    agent_id: agent,
                    open: true,
                    last_seq: 0,
                };
                (conversation, true)
            }
            Err(StoreError::Conflict(_)) => {
                drop(tx);
                let existing = self
                    .current_conversation(customer)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                (existing, false)
            }
            Err(e) => return Err(e),
        };
        Ok(Created {
            conversation,
            created,
            full,
        })
    }

    /// Inserts an open conversation and returns its id; `Conflict` when the customer has one.
    async fn insert_conversation(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        customer: UserId,
        agent: Option<UserId>,
        now: i64,
    ) -> Result<ConversationId, StoreError> {
        macro_rules! insert {
            ($returning:literal) => {
                sqlx::query(sql!(
                    self,
                    concat!(
                        "INSERT INTO conversations (customer_id, agent_id, status, open_key, last_seq, created_at, updated_at, assigned_at) \
                         VALUES (?, ?, 'open', ?, 0, ?, ?, ?)",
                        $returning
                    )
                ))
                .bind(customer.0)
                .bind(agent.map(|a| a.0))
                .bind(customer.0)
                .bind(now)
                .bind(now)
                .bind(agent.map(|_| now))
            };
        }
        let id = if self.dialect.has_returning() {
            insert!(" RETURNING id")
                .fetch_one(&mut **tx)
                .await?
                .try_get("id")?
        } else {
            insert!("")
                .execute(&mut **tx)
                .await?
                .last_insert_id()
                .ok_or(StoreError::NotFound)?
        };
        Ok(ConversationId(id))
    }

    /// Hands `agent`'s open conversation to `to` (if it has room), or back to the queue (`None`).
    /// `Taken` when the conversation is no longer `agent`'s.
    pub async fn transfer_conversation(
        &self,
        id: ConversationId,
        agent: UserId,
        to: Option<UserId>,
    ) -> Result<Assignment, StoreError> {
        super::retry_contended(|| self.transfer_conversation_once(id, agent, to)).await
    }

    async fn transfer_conversation_once(
        &self,
        id: ConversationId,
        agent: UserId,
        to: Option<UserId>,
    ) -> Result<Assignment, StoreError> {
        let mut tx = self.begin_write().await?;
        self.lock_conversation(&mut tx, id).await?;
        if let Some(to) = to
            && !self.has_room(&mut tx, to).await?
        {
            return Ok(Assignment::Full);
        }
        let now = now_millis();
        let result = sqlx::query(sql!(
            self,
            "UPDATE conversations SET agent_id = ?, assigned_at = ?, updated_at = ?, \
             returned_by = ?, returned_at = ? WHERE id = ? AND agent_id = ? AND status = 'open'"
        ))
        .bind(to.map(|t| t.0))
        .bind(to.map(|_| now))
        .bind(now)
        .bind(to.map_or(Some(agent.0), |_| None))
        .bind(to.map_or(Some(now), |_| None))
        .bind(id.0)
        .bind(agent.0)
        .execute(&mut **tx)
        .await?;
        if result.rows_affected() != 1 {
            return Ok(Assignment::Taken);
        }
        if let Some(to) = to {
            self.note_assignment(&mut tx, to, now).await?;
        }
        let kind = match to {
            Some(_) => EventKind::Transferred,
            None => EventKind::Queued,
        };
        let event = NewEvent::new(id, kind, now).by(agent).to(to);
        self.record_event(&mut tx, event).await?;
        tx.commit().await?;
        Ok(Assignment::Assigned)
    }

    /// Ends an open conversation of `agent`; `false` when it is not one.
    pub async fn resolve_conversation(
        &self,
        id: ConversationId,
        agent: UserId,
    ) -> Result<bool, StoreError> {
        let now = now_millis();
        let mut tx = self.begin_write().await?;
        let result = sqlx::query(sql!(
            self,
            "UPDATE conversations SET status = 'resolved', open_key = NULL, resolved_at = ?, \
             resolved_by = ?, updated_at = ? WHERE id = ? AND agent_id = ? AND status = 'open'"
        ))
        .bind(now)
        .bind(agent.0)
        .bind(now)
        .bind(id.0)
        .bind(agent.0)
        .execute(&mut **tx)
        .await?;
        if result.rows_affected() != 1 {
            return Ok(false);
        }
        let event = NewEvent::new(id, EventKind::Resolved, now).by(agent);
        self.record_event(&mut tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A customer's conversations, newest first.
    pub async fn conversations_of(
        &self,
        customer: UserId,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        sqlx::query(sql!(
            self,
            "SELECT id, customer_id, agent_id, status, last_seq, created_at, resolved_at, rating, offline, \
             ended_as FROM conversations WHERE customer_id = ? ORDER BY id DESC LIMIT 100"
        ))
        .bind(customer.0)
        .fetch_all(&mut *self.conn().await?)
        .await?
        .iter()
        .map(|row| {
            Ok(ConversationSummary {
                conversation: conversation_from_row(row)?,
                created_at: row.try_get("created_at")?,
                resolved_at: row.try_get("resolved_at")?,
                rating: row.try_get("rating")?,
                offline: row.try_get::<i64, _>("offline")? != 0,
                ended_as: super::optional_text(row, "ended_as")?,
            })
        })
        .collect()
    }
}

/// What [`Store::create_conversation`] did.
#[derive(Debug, Clone)]
pub struct Created {
    pub conversation: Conversation,
    /// A new conversation was made (else the customer's open one is returned).
    pub created: bool,
    /// The agent asked for had no room, so the conversation waits.
    pub full: bool,
}

/// A conversation as a list shows it.
#[derive(Debug, Clone)]
pub struct ConversationSummary {
    pub conversation: Conversation,
    pub created_at: i64,
    pub resolved_at: Option<i64>,
    pub rating: Option<i64>,
    /// Left through the offline form.
    pub offline: bool,
    /// How kefu ended it, when kefu did: `abandoned` or `idle`.
    pub ended_as: Option<String>,
}
