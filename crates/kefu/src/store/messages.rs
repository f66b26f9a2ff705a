use std::collections::HashMap;

use sqlx::{Row, any::AnyRow};

use super::{Store, StoreError, optional_text, sealing::Sealed, sql, text};
use crate::domain::{ConversationId, MessageId, UserId};

/// A message to store; its `seq` is given by the database transaction.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub conversation_id: ConversationId,
    pub sender_id: UserId,
    /// `text`, or `system` for what kefu says in a conversation (an agent joined).
    pub kind: &'static str,
    pub content: String,
    pub client_msg_id: Option<String>,
    /// An uploaded file the message carries (`kind` `image` or `file`).
    pub attachment_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub seq: i64,
    pub sender_id: UserId,
    pub kind: String,
    pub content: String,
    pub client_msg_id: Option<String>,
    pub created_at: i64,
    /// This is the answer to a retry: the message was stored before.
    pub duplicate: bool,
    pub attachment_id: Option<i64>,
    /// The attachment's details, where the reader needs them.
    pub attachment: Option<super::Attachment>,
}

/// Messages ascending by `seq`.
#[derive(Debug, Clone)]
pub struct HistoryPage {
    pub messages: Vec<StoredMessage>,
    pub has_more: bool,
}

/// Which page of a conversation to read.
#[derive(Debug, Clone, Copy)]
pub enum Page {
    Latest,
    Before { seq: i64 },
    After { seq: i64 },
}

/// Rows per multi-row statement: keeps every statement under SQLite's and MySQL's parameter limits.
pub(super) const ROWS_PER_STATEMENT: usize = 100;

macro_rules! message_columns {
    () => {
        "id, conversation_id, seq, sender_id, kind, content, client_msg_id, created_at, attachment_id, key_id"
    };
}
pub(super) use message_columns;

pub(super) fn message_from_row(store: &Store, row: &AnyRow) -> Result<StoredMessage, StoreError> {
    let conversation_id = ConversationId(row.try_get("conversation_id")?);
    let content = store.unseal(
        text(row, "content")?,
        optional_text(row, "key_id")?,
        Sealed::Message(conversation_id.0),
    )?;
    Ok(StoredMessage {
        id: MessageId(row.try_get("id")?),
        conversation_id,
        seq: row.try_get("seq")?,
        sender_id: UserId(row.try_get("sender_id")?),
        kind: text(row, "kind")?,
        content,
        client_msg_id: optional_text(row, "client_msg_id")?,
        created_at: row.try_get("created_at")?,
        duplicate: false,
        attachment_id: row.try_get("attachment_id")?,
        attachment: None,
    })
}

impl Store {
    /// Loads the details of the attachments these messages carry (one query, only if any do).
    pub async fn fill_attachments(&self, messages: &mut [StoredMessage]) -> Result<(), StoreError> {
        let ids: Vec<i64> = messages.iter().filter_map(|m| m.attachment_id).collect();
        if ids.is_empty() {
            return Ok(());
        }
        let found: HashMap<i64, super::Attachment> = self
            .attachments(&ids)
            .await?
            .into_iter()
            .map(|a| (a.id, a))
            .collect();
        for message in messages {
            message.attachment = message.attachment_id.and_then(|id| found.get(&id).cloned());
        }
        Ok(())
    }

    /// The messages at these `(conversation, seq)` places, by conversation.
    pub async fn messages_at(
        &self,
        places: &[(ConversationId, i64)],
    ) -> Result<HashMap<ConversationId, StoredMessage>, StoreError> {
        let mut found = HashMap::with_capacity(places.len());
        for chunk in places.chunks(ROWS_PER_STATEMENT) {
            let conditions = vec!["(conversation_id = ? AND seq = ?)"; chunk.len()].join(" OR ");
            let query = self.dialect.dynamic(format!(
                concat!("SELECT ", message_columns!(), " FROM messages WHERE {}"),
                conditions
            ));
            let mut q = sqlx::query(query.as_ref());
            for (conversation, seq) in chunk {
                q = q.bind(conversation.0).bind(*seq);
            }
            for row in q.fetch_all(&mut *self.conn().await?).await? {
                let message = message_from_row(self, &row)?;
                found.insert(message.conversation_id, message);
            }
        }
        Ok(found)
    }

    /// A message, if it belongs to that conversation.
    pub async fn message_in(
        &self,
        conversation: ConversationId,
        id: MessageId,
    ) -> Result<StoredMessage, StoreError> {
        let row = sqlx::query(sql!(
            self,
            concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages WHERE id = ? AND conversation_id = ?"
            )
        ))
        .bind(id.0)
        .bind(conversation.0)
        .fetch_one(&mut *self.conn().await?)
        .await?;
        message_from_row(self, &row)
    }

    /// One page of a conversation, ascending by `seq`.
    pub async fn history(
        &self,
        conversation: ConversationId,
        page: Page,
        limit: u32,
    ) -> Result<HistoryPage, StoreError> {
        let fetch = i64::from(limit) + 1;
        let rows = match page {
            Page::Latest => {
                sqlx::query(sql!(
                    self,
                    concat!(
                        "SELECT ",
                        message_columns!(),
                        " FROM messages WHERE conversation_id = ? ORDER BY seq DESC LIMIT ?"
                    )
                ))
                .bind(conversation.0)
                .bind(fetch)
                .fetch_all(&mut *self.conn().await?)
                .await?
            }
            Page::Before { seq } => sqlx::query(sql!(
                self,
                concat!(
                    "SELECT ",
                    message_columns!(),
                    " FROM messages WHERE conversation_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
                )
            ))
            .bind(conversation.0)
            .bind(seq)
            .bind(fetch)
            .fetch_all(&mut *self.conn().await?)
            .await?,
            Page::After { seq } => sqlx::query(sql!(
                self,
                concat!(
                    "SELECT ",
                    message_columns!(),
                    " FROM messages WHERE conversation_id = ? AND seq > ? ORDER BY seq ASC LIMIT ?"
                )
            ))
            .bind(conversation.0)
            .bind(seq)
            .bind(fetch)
            .fetch_all(&mut *self.conn().await?)
            .await?,
        };
        let mut messages = rows
            .iter()
            .map(|row| message_from_row(self, row))
            .collect::<Result<Vec<_>, _>>()?;
        let has_more = messages.len() > limit as usize;
        messages.truncate(limit as usize);
        if !matches!(page, Page::After { .. }) {
            messages.reverse();
        }
        self.fill_attachments(&mut messages).await?;
        Ok(HistoryPage { messages, has_more })
    }
}
