use std::collections::HashMap;

use sqlx::{Row, any::AnyRow};

use super::{Dialect, Store, StoreError, optional_text, sealing::Sealed, sql, text};
use crate::domain::{ConversationId, MessageId, UserId, now_millis};

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

macro_rules! message_columns {
    () => {
        "id, conversation_id, seq, sender_id, kind, content, client_msg_id, created_at, attachment_id, key_id"
    };
}

fn message_from_row(store: &Store, row: &AnyRow) -> Result<StoredMessage, StoreError> {
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

/// Rows per multi-row statement: keeps every statement under SQLite's and MySQL's parameter limits.
const ROWS_PER_STATEMENT: usize = 100;

impl Store {
    /// Stores a batch of messages in one transaction (group commit) and returns one stored message
    /// per input, in input order. A message whose `(sender, clientMsgId)` was stored before, in an
    /// earlier batch or earlier in this one, is answered with the first copy and `duplicate: true`.
    /// Each conversation's `seq` numbers are handed out in input order without gaps.
    pub async fn append_messages(
        &self,
        batch: &[NewMessage],
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut tx = self.begin_write().await?;
        let now = now_millis();
        let mut results: Vec<Option<StoredMessage>> = vec![None; batch.len()];

        // Retries: answered from what is stored, or from the first copy in this batch.
        let mut first_with_key: HashMap<(UserId, &str), usize> = HashMap::new();
        let mut copies: Vec<(usize, usize)> = Vec::new();
        for (i, message) in batch.iter().enumerate() {
            if let Some(key) = message.client_msg_id.as_deref() {
                match first_with_key.get(&(message.sender_id, key)) {
                    Some(&first) => copies.push((i, first)),
                    None => {
                        first_with_key.insert((message.sender_id, key), i);
                    }
                }
            }
        }
        let keyed: Vec<(UserId, &str, usize)> = first_with_key
            .iter()
            .map(|(&(s, k), &i)| (s, k, i))
            .collect();
        for chunk in keyed.chunks(ROWS_PER_STATEMENT) {
            let conditions =
                vec!["(sender_id = ? AND client_msg_id = ?)"; chunk.len()].join(" OR ");
            let query = self.dialect.dynamic(format!(
                concat!("SELECT ", message_columns!(), " FROM messages WHERE {}"),
                conditions
            ));
            let mut q = sqlx::query(query.as_ref());
            for (sender, key, _) in chunk {
                q = q.bind(sender.0).bind(*key);
            }
            for row in q.fetch_all(&mut *tx).await? {
                let mut stored = message_from_row(self, &row)?;
                stored.duplicate = true;
                let key = (
                    stored.sender_id,
                    stored.client_msg_id.clone().unwrap_or_default(),
                );
                if let Some(&(_, _, i)) = chunk
                    .iter()
                    .find(|(s, k, _)| (*s, *k) == (key.0, key.1.as_str()))
                {
                    results[i] = Some(stored);
                }
            }
        }

        // New messages, grouped by conversation in arrival order.
        let copy_indexes: Vec<usize> = copies.iter().map(|(i, _)| *i).collect();
        let mut by_conversation: Vec<(ConversationId, Vec<usize>)> = Vec::new();
        for (i, message) in batch.iter().enumerate() {
            if results[i].is_some() || copy_indexes.contains(&i) {
                continue;
            }
            match by_conversation
                .iter_mut()
                .find(|(c, _)| *c == message.conversation_id)
            {
                Some((_, indexes)) => indexes.push(i),
                None => by_conversation.push((message.conversation_id, vec![i])),
            }
        }
        // One statement advances `last_seq` of every conversation in the chunk.
        let mut seqs: Vec<i64> = vec![0; batch.len()];
        for chunk in by_conversation.chunks(ROWS_PER_STATEMENT) {
            let mut query = String::from("UPDATE conversations SET last_seq = last_seq + CASE id");
            query.push_str(&" WHEN ? THEN ?".repeat(chunk.len()));
            query.push_str(" END, updated_at = ? WHERE id IN (");
            query.push_str(&super::placeholders(chunk.len()));
            query.push(')');
            if self.dialect.has_returning() {
                query.push_str(" RETURNING id, last_seq");
            }
            let query = self.dialect.dynamic(query);
            let mut q = sqlx::query(query.as_ref());
            for (conversation, indexes) in chunk {
                q = q.bind(conversation.0).bind(indexes.len() as i64);
            }
            q = q.bind(now);
            for (conversation, _) in chunk {
                q = q.bind(conversation.0);
            }
            let rows = if self.dialect.has_returning() {
                q.fetch_all(&mut *tx).await?
            } else {
                q.execute(&mut *tx).await?;
                let query = format!(
                    "SELECT id, last_seq FROM conversations WHERE id IN ({})",
                    super::placeholders(chunk.len())
                );
                let mut q = sqlx::query(&query);
                for (conversation, _) in chunk {
                    q = q.bind(conversation.0);
                }
                q.fetch_all(&mut *tx).await?
            };
            let mut last_seqs: HashMap<ConversationId, i64> = HashMap::with_capacity(rows.len());
            for row in rows {
                last_seqs.insert(ConversationId(row.try_get("id")?), row.try_get("last_seq")?);
            }
            for (conversation, indexes) in chunk {
                let last_seq = *last_seqs.get(conversation).ok_or(StoreError::NotFound)?;
                let count = indexes.len() as i64;
                for (offset, &i) in indexes.iter().enumerate() {
                    seqs[i] = last_seq - count + 1 + offset as i64;
                }
            }
        }

        let new: Vec<usize> = by_conversation
            .iter()
            .flat_map(|(_, indexes)| indexes.iter().copied())
            .collect();
        let mut ids: HashMap<(ConversationId, i64), MessageId> = HashMap::with_capacity(new.len());
        for chunk in new.chunks(ROWS_PER_STATEMENT) {
            let mut query = String::from(
                "INSERT INTO messages (conversation_id, seq, sender_id, kind, content, client_msg_id, created_at, attachment_id, key_id) VALUES ",
            );
            query.push_str(&vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", "));
            if self.dialect.has_returning() {
                query.push_str(" RETURNING id, conversation_id, seq");
            }
            let query = self.dialect.dynamic(query);
            let sealed = chunk
                .iter()
                .map(|&i| {
                    let m = &batch[i];
                    self.seal(m.content.as_str(), Sealed::Message(m.conversation_id.0))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut q = sqlx::query(query.as_ref());
            for (&i, (content, key_id)) in chunk.iter().zip(&sealed) {
                let m = &batch[i];
                q = q
                    .bind(m.conversation_id.0)
                    .bind(seqs[i])
                    .bind(m.sender_id.0)
                    .bind(m.kind)
                    .bind(content.as_ref())
                    .bind(m.client_msg_id.as_deref())
                    .bind(now)
                    .bind(m.attachment_id)
                    .bind(*key_id);
            }
            let rows = if self.dialect.has_returning() {
                q.fetch_all(&mut *tx).await?
            } else {
                q.execute(&mut *tx).await?;
                self.inserted_ids_mysql(&mut tx, chunk, batch, &seqs)
                    .await?
            };
            for row in rows {
                let key = (
                    ConversationId(row.try_get("conversation_id")?),
                    row.try_get("seq")?,
                );
                ids.insert(key, MessageId(row.try_get("id")?));
            }
        }
        tx.commit().await?;

        for &i in &new {
            let m = &batch[i];
            let id = *ids
                .get(&(m.conversation_id, seqs[i]))
                .ok_or(StoreError::NotFound)?;
            results[i] = Some(StoredMessage {
                id,
                conversation_id: m.conversation_id,
                seq: seqs[i],
                sender_id: m.sender_id,
                kind: m.kind.to_owned(),
                content: m.content.clone(),
                client_msg_id: m.client_msg_id.clone(),
                created_at: now,
                duplicate: false,
                attachment_id: m.attachment_id,
                attachment: None,
            });
        }
        for (i, first) in copies {
            let mut copy = results[first].clone().ok_or(StoreError::NotFound)?;
            copy.duplicate = true;
            results[i] = Some(copy);
        }
        let mut results = results
            .into_iter()
            .map(|r| r.ok_or(StoreError::NotFound))
            .collect::<Result<Vec<_>, _>>()?;
        self.fill_attachments(&mut results).await?;
        Ok(results)
    }

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

    /// MySQL has no `INSERT … RETURNING`: read the ids back by `(conversation_id, seq)`, which is unique.
    async fn inserted_ids_mysql(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        chunk: &[usize],
        batch: &[NewMessage],
        seqs: &[i64],
    ) -> Result<Vec<AnyRow>, StoreError> {
        debug_assert_eq!(self.dialect, Dialect::MySql);
        let conditions = vec!["(conversation_id = ? AND seq = ?)"; chunk.len()].join(" OR ");
        let query = format!("SELECT id, conversation_id, seq FROM messages WHERE {conditions}");
        let mut q = sqlx::query(&query);
        for &i in chunk {
            q = q.bind(batch[i].conversation_id.0).bind(seqs[i]);
        }
        Ok(q.fetch_all(&mut **tx).await?)
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
            for row in q.fetch_all(&self.pool).await? {
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
        .fetch_one(&self.pool)
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
                .fetch_all(&self.pool)
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
            .fetch_all(&self.pool)
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
            .fetch_all(&self.pool)
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
