//! What CSAT and the admin's reports read and write.

use sqlx::Row;

use super::{Store, StoreError, events::NewEvent, sql};
use crate::domain::{ConversationId, EventKind, UserId, now_millis};

/// Why a rating was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rated {
    Taken,
    NotYours,
    NotResolved,
    AlreadyRated,
}

/// One conversation, as the reports count it.
#[derive(Debug, Clone)]
pub struct ConversationFacts {
    pub id: ConversationId,
    pub created_at: i64,
    pub agent_id: Option<UserId>,
    pub resolved_at: Option<i64>,
    pub resolved_by: Option<UserId>,
    pub rating: Option<i64>,
    /// The first message of staff in it: who and when.
    pub first_response: Option<(UserId, i64)>,
    /// It left the queue unanswered: its customer had gone (`ended_as = 'abandoned'`).
    pub abandoned: bool,
}

impl Store {
    /// The customer rates its resolved conversation, once.
    pub async fn rate_conversation(
        &self,
        id: ConversationId,
        customer: UserId,
        score: i64,
        comment: Option<&str>,
    ) -> Result<Rated, StoreError> {
        let now = now_millis();
        let mut tx = self.begin_write().await?;
        let result = sqlx::query(sql!(
            self,
            "UPDATE conversations SET rating = ?, rating_comment = ?, rated_at = ? \
             WHERE id = ? AND customer_id = ? AND status = 'resolved' AND rating IS NULL"
        ))
        .bind(score)
        .bind(comment)
        .bind(now)
        .bind(id.0)
        .bind(customer.0)
        .execute(&mut **tx)
        .await?;
        if result.rows_affected() == 1 {
            let event = NewEvent::new(id, EventKind::Rated, now)
                .by(customer)
                .score(score);
            self.record_event(&mut tx, event).await?;
            tx.commit().await?;
            return Ok(Rated::Taken);
        }
        drop(tx);
        let row = sqlx::query(sql!(
            self,
            "SELECT customer_id, status, rating FROM conversations WHERE id = ?"
        ))
        .bind(id.0)
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        let Some(row) = row else {
            return Ok(Rated::NotYours);
        };
        if row.try_get::<i64, _>("customer_id")? != customer.0 {
            return Ok(Rated::NotYours);
        }
        if row.try_get::<Option<i64>, _>("rating")?.is_some() {
            return Ok(Rated::AlreadyRated);
        }
        Ok(Rated::NotResolved)
    }

    /// The conversations created since `since` (milliseconds), with what the reports need.
    pub async fn conversation_facts(
        &self,
        since: i64,
    ) -> Result<Vec<ConversationFacts>, StoreError> {
        let rows = sqlx::query(sql!(
            self,
            "SELECT id, created_at, agent_id, resolved_at, resolved_by, rating, ended_as \
             FROM conversations WHERE created_at >= ? ORDER BY id"
        ))
        .bind(since)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        let mut facts = rows
            .iter()
            .map(|row| {
                Ok(ConversationFacts {
                    id: ConversationId(row.try_get("id")?),
                    created_at: row.try_get("created_at")?,
                    agent_id: row.try_get::<Option<i64>, _>("agent_id")?.map(UserId),
                    resolved_at: row.try_get("resolved_at")?,
                    resolved_by: row.try_get::<Option<i64>, _>("resolved_by")?.map(UserId),
                    rating: row.try_get("rating")?,
                    first_response: None,
                    abandoned: super::optional_text(row, "ended_as")?.as_deref()
                        == Some("abandoned"),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // The first message of staff per conversation: the lowest seq not sent by its customer.
        let firsts = sqlx::query(sql!(
            self,
            "SELECT m.conversation_id, m.sender_id, m.created_at FROM messages m \
             JOIN conversations c ON c.id = m.conversation_id \
             WHERE c.created_at >= ? AND m.kind = 'text' AND m.sender_id <> c.customer_id \
             AND m.seq = (SELECT MIN(f.seq) FROM messages f WHERE f.conversation_id = m.conversation_id \
                          AND f.kind = 'text' AND f.sender_id <> c.customer_id)"
        ))
        .bind(since)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        let index: std::collections::HashMap<i64, usize> =
            facts.iter().enumerate().map(|(i, f)| (f.id.0, i)).collect();
        for row in firsts {
            let conversation: i64 = row.try_get("conversation_id")?;
            if let Some(&i) = index.get(&conversation) {
                facts[i].first_response = Some((
                    UserId(row.try_get("sender_id")?),
                    row.try_get("created_at")?,
                ));
            }
        }
        Ok(facts)
    }
}
