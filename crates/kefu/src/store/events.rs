//! Conversation events: written inside the transaction of the change they record.

use sqlx::Row;

use super::{Store, StoreError, sql, text};
use crate::domain::{ConversationId, EventKind, UserId};

/// One thing that happened to a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationEvent {
    pub id: i64,
    pub conversation_id: ConversationId,
    pub kind: EventKind,
    pub actor_id: Option<UserId>,
    pub agent_id: Option<UserId>,
    pub score: Option<i64>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

/// What a change records, before it has an id.
#[derive(Debug, Clone, Copy)]
pub(super) struct NewEvent {
    pub conversation: ConversationId,
    pub kind: EventKind,
    pub actor: Option<UserId>,
    pub agent: Option<UserId>,
    pub score: Option<i64>,
    pub at: i64,
}

impl NewEvent {
    pub fn new(conversation: ConversationId, kind: EventKind, at: i64) -> Self {
        Self {
            conversation,
            kind,
            actor: None,
            agent: None,
            score: None,
            at,
        }
    }

    pub fn by(self, actor: UserId) -> Self {
        Self {
            actor: Some(actor),
            ..self
        }
    }

    pub fn to(self, agent: Option<UserId>) -> Self {
        Self { agent, ..self }
    }

    pub fn score(self, score: i64) -> Self {
        Self {
            score: Some(score),
            ..self
        }
    }
}

impl Store {
    /// Records `event` in the transaction of the change it describes.
    pub(super) async fn record_event(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        event: NewEvent,
    ) -> Result<(), StoreError> {
        sqlx::query(sql!(
            self,
            "INSERT INTO conversation_events \
             (conversation_id, kind, actor_id, agent_id, score, created_at) VALUES (?, ?, ?, ?, ?, ?)"
        ))
        .bind(event.conversation.0)
        .bind(event.kind.as_str())
        .bind(event.actor.map(|a| a.0))
        .bind(event.agent.map(|a| a.0))
        .bind(event.score)
        .bind(event.at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// A conversation's events, oldest first.
    pub async fn events_of(
        &self,
        conversation: ConversationId,
    ) -> Result<Vec<ConversationEvent>, StoreError> {
        sqlx::query(sql!(
            self,
            "SELECT id, conversation_id, kind, actor_id, agent_id, score, created_at \
             FROM conversation_events WHERE conversation_id = ? ORDER BY id"
        ))
        .bind(conversation.0)
        .fetch_all(&mut *self.conn().await?)
        .await?
        .iter()
        .map(|row| {
            let kind = text(row, "kind")?;
            Ok(ConversationEvent {
                id: row.try_get("id")?,
                conversation_id: ConversationId(row.try_get("conversation_id")?),
                kind: EventKind::parse(&kind).ok_or_else(|| {
                    StoreError::Other(sqlx::Error::Decode(
                        format!("unknown conversation event {kind:?}").into(),
                    ))
                })?,
                actor_id: row.try_get::<Option<i64>, _>("actor_id")?.map(UserId),
                agent_id: row.try_get::<Option<i64>, _>("agent_id")?.map(UserId),
                score: row.try_get("score")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect()
    }
}
