//! The offline path in the database: who has gone since when, the waiting conversations whose
//! customers left (abandoned, or kept as offline conversations), the assigned ones where nothing
//! was said while the customer was away (resolved as idle), and the waits for an agent asked for by
//! name that ran out. Each change is conditional on the state it was read in, so two nodes (a lease
//! that changed hands mid-sweep) never apply it twice.

use sqlx::Row;

use super::{
    Conversation, Store, StoreError,
    conversations::{conversation_columns, conversation_from_row},
    events::NewEvent,
    sql,
};
use crate::domain::{ConversationId, EventKind, UserId};

/// Conversations changed per transaction by a sweep.
const SWEEP_BATCH: usize = 500;

/// An open conversation as the presence sweep sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenPresence {
    pub conversation: ConversationId,
    pub customer: UserId,
    pub agent: Option<UserId>,
    /// Since when the customer has had no connection, as recorded.
    pub customer_gone_at: Option<i64>,
}

/// What a sweep of the queue did with the conversations whose customers left.
#[derive(Debug, Default)]
pub struct Abandoned {
    /// Ended as abandoned.
    pub ended: Vec<Conversation>,
    /// Kept waiting as offline conversations: their customers left an e-mail.
    pub kept: usize,
}

impl Store {
    /// Every open conversation, with its customer's recorded absence.
    pub async fn open_presence(&self) -> Result<Vec<OpenPresence>, StoreError> {
        sqlx::query(sql!(
            self,
            "SELECT id, customer_id, agent_id, customer_gone_at FROM conversations \
             WHERE status = 'open'"
        ))
        .fetch_all(&mut *self.conn().await?)
        .await?
        .iter()
        .map(|row| {
            Ok(OpenPresence {
                conversation: ConversationId(row.try_get("id")?),
                customer: UserId(row.try_get("customer_id")?),
                agent: row.try_get::<Option<i64>, _>("agent_id")?.map(UserId),
                customer_gone_at: row.try_get("customer_gone_at")?,
            })
        })
        .collect()
    }

    /// Records that the customers of these conversations left at `at` (`None`: they are back).
    /// A departure already recorded keeps its earlier time.
    pub async fn set_customers_gone(
        &self,
        conversations: &[ConversationId],
        at: Option<i64>,
    ) -> Result<(), StoreError> {
        let keys: Vec<i64> = conversations.iter().map(|c| c.0).collect();
        let query = match at {
            Some(_) => {
                "UPDATE conversations SET customer_gone_at = ? \
                 WHERE customer_gone_at IS NULL AND id IN ({})"
            }
            None => "UPDATE conversations SET customer_gone_at = NULL WHERE id IN ({})",
        };
        self.update_keys(query, at, &keys).await
    }

    /// Staff members with their recorded absence.
    pub async fn staff_presence(&self) -> Result<Vec<(UserId, Option<i64>)>, StoreError> {
        sqlx::query(sql!(
            self,
            "SELECT id, gone_at FROM users WHERE role <> 'customer' AND disabled = 0"
        ))
        .fetch_all(&mut *self.conn().await?)
        .await?
        .iter()
        .map(|row| Ok((UserId(row.try_get("id")?), row.try_get("gone_at")?)))
        .collect()
    }

    /// Records that these staff members left at `at` (`None`: they are back).
    pub async fn set_staff_gone(
        &self,
        staff: &[UserId],
        at: Option<i64>,
    ) -> Result<(), StoreError> {
        let keys: Vec<i64> = staff.iter().map(|u| u.0).collect();
        let query = match at {
            Some(_) => "UPDATE users SET gone_at = ? WHERE gone_at IS NULL AND id IN ({})",
            None => "UPDATE users SET gone_at = NULL WHERE id IN ({})",
        };
        self.update_keys(query, at, &keys).await
    }

    /// `query` with `{}` for the keys, and `at` bound first when given, in batches.
    async fn update_keys(
        &self,
        query: &str,
        at: Option<i64>,
        keys: &[i64],
    ) -> Result<(), StoreError> {
        for chunk in keys.chunks(SWEEP_BATCH) {
            let query =
                self.dialect
                    .dynamic(query.replacen("{}", &super::placeholders(chunk.len()), 1));
            let mut q = sqlx::query(query.as_ref());
            if let Some(at) = at {
                q = q.bind(at);
            }
            for key in chunk {
                q = q.bind(*key);
            }
            q.execute(&mut *self.write_conn().await?).await?;
        }
        Ok(())
    }

    /// The waiting conversations whose customers left before `gone_before`: those whose customer
    /// left an e-mail are kept as offline conversations; the others end as abandoned.
    pub async fn abandon_waiting(
        &self,
        gone_before: i64,
        now: i64,
    ) -> Result<Abandoned, StoreError> {
        let kept = sqlx::query(sql!(
            self,
            "UPDATE conversations SET offline = 1 \
             WHERE status = 'open' AND agent_id IS NULL AND offline = 0 \
             AND customer_gone_at IS NOT NULL AND customer_gone_at < ? \
             AND EXISTS (SELECT 1 FROM users u WHERE u.id = conversations.customer_id \
                         AND u.email IS NOT NULL AND u.email <> '')"
        ))
        .bind(gone_before)
        .execute(&mut *self.write_conn().await?)
        .await?
        .rows_affected() as usize;
        let candidates: Vec<Conversation> = sqlx::query(sql!(
            self,
            concat!(
                "SELECT ",
                conversation_columns!(),
                " FROM conversations WHERE status = 'open' AND agent_id IS NULL AND offline = 0 \
                 AND customer_gone_at IS NOT NULL AND customer_gone_at < ? ORDER BY id LIMIT ?"
            )
        ))
        .bind(gone_before)
        .bind(SWEEP_BATCH as i64)
        .fetch_all(&mut *self.conn().await?)
        .await?
        .iter()
        .map(conversation_from_row)
        .collect::<Result<_, _>>()?;
        let mut ended = Vec::with_capacity(candidates.len());
        if candidates.is_empty() {
            return Ok(Abandoned { ended, kept });
        }
        let mut tx = self.begin_write().await?;
        for conversation in candidates {
            let done = sqlx::query(sql!(
                self,
                "UPDATE conversations SET status = 'resolved', open_key = NULL, resolved_at = ?, \
                 updated_at = ?, ended_as = 'abandoned' \
                 WHERE id = ? AND status = 'open' AND agent_id IS NULL AND offline = 0 \
                 AND customer_gone_at IS NOT NULL AND customer_gone_at < ?"
            ))
            .bind(now)
            .bind(now)
            .bind(conversation.id.0)
            .bind(gone_before)
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() == 1 {
                let event = NewEvent::new(conversation.id, EventKind::Abandoned, now);
                self.record_event(&mut tx, event).await?;
                ended.push(Conversation {
                    open: false,
                    ..conversation
                });
            }
        }
        tx.commit().await?;
        Ok(Abandoned { ended, kept })
    }

    /// Assigned conversations whose customer left before `gone_before` and whose last message (or
    /// start, without one) is older than `quiet_before`.
    pub async fn idle_conversations(
        &self,
        gone_before: i64,
        quiet_before: i64,
    ) -> Result<Vec<Conversation>, StoreError> {
        sqlx::query(sql!(
            self,
            "SELECT c.id, c.customer_id, c.agent_id, c.status, c.last_seq FROM conversations c \
             LEFT JOIN messages m ON m.conversation_id = c.id AND m.seq = c.last_seq \
             WHERE c.status = 'open' AND c.agent_id IS NOT NULL \
             AND c.customer_gone_at IS NOT NULL AND c.customer_gone_at < ? \
             AND COALESCE(m.created_at, c.created_at) < ? ORDER BY c.id LIMIT ?"
        ))
        .bind(gone_before)
        .bind(quiet_before)
        .bind(SWEEP_BATCH as i64)
        .fetch_all(&mut *self.conn().await?)
        .await?
        .iter()
        .map(conversation_from_row)
        .collect()
    }

    /// Ends an idle conversation ([`Store::idle_conversations`]) if it is still its agent's, still
    /// quiet since `seq` and its customer still away; `false` otherwise.
    pub async fn end_idle(
        &self,
        conversation: &Conversation,
        now: i64,
    ) -> Result<bool, StoreError> {
        let Some(agent) = conversation.agent_id else {
            return Ok(false);
        };
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(sql!(
            self,
            "UPDATE conversations SET status = 'resolved', open_key = NULL, resolved_at = ?, \
             updated_at = ?, ended_as = 'idle' \
             WHERE id = ? AND agent_id = ? AND status = 'open' AND last_seq = ? \
             AND customer_gone_at IS NOT NULL"
        ))
        .bind(now)
        .bind(now)
        .bind(conversation.id.0)
        .bind(agent.0)
        .bind(conversation.last_seq)
        .execute(&mut **tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        let event = NewEvent::new(conversation.id, EventKind::Resolved, now).to(Some(agent));
        self.record_event(&mut tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Waiting conversations whose wait for the agent asked for ran out by `now`: the wait is
    /// over (they wait for anyone now). Returns them with the agent they waited for.
    pub async fn end_requested_waits(
        &self,
        now: i64,
    ) -> Result<Vec<(Conversation, UserId)>, StoreError> {
        let rows = sqlx::query(sql!(
            self,
            concat!(
                "SELECT ",
                conversation_columns!(),
                ", requested_agent_id FROM conversations WHERE status = 'open' \
                 AND requested_agent_id IS NOT NULL AND requested_until < ? ORDER BY id LIMIT ?"
            )
        ))
        .bind(now)
        .bind(SWEEP_BATCH as i64)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        let mut ended = Vec::with_capacity(rows.len());
        for row in &rows {
            let conversation = conversation_from_row(row)?;
            let agent = UserId(row.try_get("requested_agent_id")?);
            let done = sqlx::query(sql!(
                self,
                "UPDATE conversations SET requested_agent_id = NULL, requested_until = NULL \
                 WHERE id = ? AND requested_agent_id = ?"
            ))
            .bind(conversation.id.0)
            .bind(agent.0)
            .execute(&mut *self.write_conn().await?)
            .await?;
            // Still waiting (not taken by that agent meanwhile): told that the wait is over.
            if done.rows_affected() == 1 && conversation.agent_id.is_none() {
                ended.push((conversation, agent));
            }
        }
        Ok(ended)
    }

    /// The phone number a customer left, if any.
    pub async fn phone_of(&self, user: UserId) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(sql!(self, "SELECT phone FROM users WHERE id = ?"))
            .bind(user.0)
            .fetch_one(&mut *self.conn().await?)
            .await?;
        Ok(row
            .try_get::<Option<String>, _>("phone")?
            .filter(|p| !p.is_empty()))
    }

    /// Keeps the contact details a customer gave (each one given replaces the one kept).
    pub async fn set_contact(
        &self,
        user: UserId,
        name: Option<&str>,
        email: Option<&str>,
        phone: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(sql!(
            self,
            "UPDATE users SET display_name = COALESCE(?, display_name), email = COALESCE(?, email), \
             phone = COALESCE(?, phone) WHERE id = ? AND role = 'customer'"
        ))
        .bind(name)
        .bind(email)
        .bind(phone)
        .bind(user.0)
        .execute(&mut *self.write_conn().await?)
        .await?;
        Ok(())
    }

    /// The conversation was left through the offline form.
    pub async fn mark_offline(&self, conversation: ConversationId) -> Result<(), StoreError> {
        sqlx::query(sql!(
            self,
            "UPDATE conversations SET offline = 1 WHERE id = ?"
        ))
        .bind(conversation.0)
        .execute(&mut *self.write_conn().await?)
        .await?;
        Ok(())
    }

    /// How many conversations wait in the queue.
    pub async fn queue_length(&self) -> Result<i64, StoreError> {
        let row = sqlx::query(sql!(
            self,
            "SELECT COUNT(*) AS n FROM conversations WHERE status = 'open' AND agent_id IS NULL"
        ))
        .fetch_one(&mut *self.conn().await?)
        .await?;
        Ok(row.try_get("n")?)
    }

    /// A conversation just made waits for the agent asked for until a time.
    pub(super) async fn set_requested_wait(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        conversation: ConversationId,
        (agent, until): (UserId, i64),
    ) -> Result<(), StoreError> {
        sqlx::query(sql!(
            self,
            "UPDATE conversations SET requested_agent_id = ?, requested_until = ? WHERE id = ?"
        ))
        .bind(agent.0)
        .bind(until)
        .bind(conversation.0)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The agent a waiting conversation waits for, and until when, if it waits for one.
    pub async fn requested_wait(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<(UserId, i64)>, StoreError> {
        let row = sqlx::query(sql!(
            self,
            "SELECT requested_agent_id, requested_until FROM conversations WHERE id = ?"
        ))
        .bind(conversation.0)
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let agent: Option<i64> = row.try_get("requested_agent_id")?;
        let until: Option<i64> = row.try_get("requested_until")?;
        Ok(agent.zip(until).map(|(a, u)| (UserId(a), u)))
    }
}
