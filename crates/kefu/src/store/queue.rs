//! The queue in the database: the open conversations without an agent, oldest first, and the
//! drain that gives many of them to agents in one transaction.

use sqlx::Row;

use super::{
    Conversation, Dialect, Store, StoreError,
    conversations::{conversation_columns, conversation_from_row},
    events::NewEvent,
    sql,
};
use crate::domain::{ConversationId, EventKind, UserId, now_millis};

/// A waiting conversation as the drain takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub conversation: Conversation,
    /// The agent that handed it back to the queue lately: it does not get it straight back.
    pub returned_by: Option<UserId>,
    /// The agent asked for by name, the only one to take it until its wait ends.
    pub waits_for: Option<UserId>,
}

/// A waiting conversation as the queue lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    pub conversation: ConversationId,
    pub customer: UserId,
}

impl Store {
    /// Open conversations without an agent that one of `takers` may take, oldest first, each
    /// with the agent that handed it back to the queue within `returned_within` milliseconds, if
    /// one did, and the agent it waits for, if it waits for one (asked for by name): a
    /// conversation waiting for an agent not among `takers` is left out.
    pub async fn queued_conversations(
        &self,
        limit: u32,
        returned_within: i64,
        takers: &[UserId],
    ) -> Result<Vec<Queued>, StoreError> {
        let now = now_millis();
        let since = now - returned_within;
        // `IN ()` is no SQL: an id no user has stands in for nobody.
        let keys: Vec<i64> = if takers.is_empty() {
            vec![0]
        } else {
            takers.iter().map(|t| t.0).collect()
        };
        let query = self.dialect.dynamic(format!(
            concat!(
                "SELECT ",
                conversation_columns!(),
                ", returned_by, returned_at, requested_agent_id, requested_until FROM conversations \
                 WHERE status = 'open' AND agent_id IS NULL \
                 AND (requested_until IS NULL OR requested_until < ? OR requested_agent_id IN ({})) \
                 ORDER BY id LIMIT ?"
            ),
            super::placeholders(keys.len())
        ));
        let mut q = sqlx::query(query.as_ref()).bind(now);
        for key in &keys {
            q = q.bind(*key);
        }
        q.bind(i64::from(limit))
            .fetch_all(&mut *self.conn().await?)
            .await?
            .iter()
            .map(|row| {
                let returned_at: Option<i64> = row.try_get("returned_at")?;
                let returned_by: Option<i64> = row.try_get("returned_by")?;
                let requested: Option<i64> = row.try_get("requested_agent_id")?;
                let until: Option<i64> = row.try_get("requested_until")?;
                Ok(Queued {
                    conversation: conversation_from_row(row)?,
                    returned_by: returned_by
                        .filter(|_| returned_at.is_some_and(|at| at >= since))
                        .map(UserId),
                    waits_for: requested
                        .filter(|_| until.is_some_and(|until| until >= now))
                        .map(UserId),
                })
            })
            .collect()
    }

    /// Every waiting conversation (at most `limit`), oldest first: each one's place is its index
    /// plus one.
    pub async fn queue_snapshot(&self, limit: u32) -> Result<Vec<Waiting>, StoreError> {
        sqlx::query(sql!(
            self,
            "SELECT id, customer_id FROM conversations WHERE status = 'open' AND agent_id IS NULL \
             ORDER BY id LIMIT ?"
        ))
        .bind(i64::from(limit))
        .fetch_all(&mut *self.conn().await?)
        .await?
        .iter()
        .map(|row| {
            Ok(Waiting {
                conversation: ConversationId(row.try_get("id")?),
                customer: UserId(row.try_get("customer_id")?),
            })
        })
        .collect()
    }

    /// Gives waiting conversations to agents in one transaction: `plan` pairs each conversation
    /// with the agent meant to take it. An agent takes as many of its conversations, in plan
    /// order, as it has room for when the transaction looks; a conversation no longer waiting is
    /// skipped. Returns the pairs that were assigned.
    ///
    /// The conversations are locked first, then the agents in id order: the order the writers
    /// take them in, so the two cannot deadlock.
    pub async fn assign_conversations(
        &self,
        plan: &[(ConversationId, UserId)],
    ) -> Result<Vec<(ConversationId, UserId)>, StoreError> {
        super::retry_contended(|| self.assign_once(plan)).await
    }

    async fn assign_once(
        &self,
        plan: &[(ConversationId, UserId)],
    ) -> Result<Vec<(ConversationId, UserId)>, StoreError> {
        if plan.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        let lock = match self.dialect {
            Dialect::Sqlite => None,
            Dialect::Postgres => Some(" FOR NO KEY UPDATE"),
            Dialect::MySql => Some(" FOR UPDATE"),
        };
        let mut waiting: Vec<ConversationId> = Vec::with_capacity(plan.len());
        for chunk in plan.chunks(super::messages::ROWS_PER_STATEMENT) {
            let query = self.dialect.dynamic(format!(
                "SELECT id FROM conversations WHERE id IN ({}) AND agent_id IS NULL \
                 AND status = 'open'{}",
                super::placeholders(chunk.len()),
                lock.unwrap_or_default()
            ));
            let mut q = sqlx::query(query.as_ref());
            for (conversation, _) in chunk {
                q = q.bind(conversation.0);
            }
            for row in q.fetch_all(&mut **tx).await? {
                waiting.push(ConversationId(row.try_get("id")?));
            }
        }
        let mut agents: Vec<UserId> = plan.iter().map(|(_, a)| *a).collect();
        agents.sort_unstable();
        agents.dedup();
        let now = now_millis();
        let mut assigned = Vec::with_capacity(plan.len());
        for agent in agents {
            let room = self.room_of(&mut tx, agent).await?;
            let mine = plan
                .iter()
                .filter(|(c, a)| *a == agent && waiting.contains(c))
                .take(room.max(0) as usize);
            let mut took = 0;
            for (conversation, _) in mine {
                let done = sqlx::query(sql!(
                    self,
                    "UPDATE conversations SET agent_id = ?, assigned_at = ?, updated_at = ? \
                     WHERE id = ? AND agent_id IS NULL AND status = 'open'"
                ))
                .bind(agent.0)
                .bind(now)
                .bind(now)
                .bind(conversation.0)
                .execute(&mut **tx)
                .await?;
                if done.rows_affected() == 1 {
                    let event =
                        NewEvent::new(*conversation, EventKind::Assigned, now).to(Some(agent));
                    self.record_event(&mut tx, event).await?;
                    assigned.push((*conversation, agent));
                    took += 1;
                }
            }
            if took > 0 {
                self.note_assignment(&mut tx, agent, now).await?;
            }
        }
        tx.commit().await?;
        Ok(assigned)
    }

    /// The waiting conversation's place in the queue, 1 for the head; `None` if it is not waiting.
    pub async fn queue_position(&self, id: ConversationId) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(sql!(
            self,
            "SELECT COUNT(*) AS n FROM conversations q \
             WHERE q.status = 'open' AND q.agent_id IS NULL AND q.id <= ? \
             AND EXISTS (SELECT 1 FROM conversations c WHERE c.id = ? AND c.status = 'open' AND c.agent_id IS NULL)"
        ))
        .bind(id.0)
        .bind(id.0)
        .fetch_one(&mut *self.conn().await?)
        .await?;
        let n: i64 = row.try_get("n")?;
        Ok((n > 0).then_some(n))
    }

    /// The median time from assignment to resolution of the last 100 resolved conversations, in
    /// seconds; `None` before the first.
    pub async fn median_handling_seconds(&self) -> Result<Option<i64>, StoreError> {
        let rows = sqlx::query(sql!(
            self,
            "SELECT resolved_at - assigned_at AS took FROM conversations \
             WHERE status = 'resolved' AND assigned_at IS NOT NULL AND resolved_at IS NOT NULL \
             ORDER BY resolved_at DESC LIMIT 100"
        ))
        .fetch_all(&mut *self.conn().await?)
        .await?;
        let mut took: Vec<i64> = rows
            .iter()
            .map(|r| r.try_get::<i64, _>("took"))
            .collect::<Result<_, _>>()?;
        if took.is_empty() {
            return Ok(None);
        }
        took.sort_unstable();
        Ok(Some(took[took.len() / 2].max(0) / 1000))
    }
}
