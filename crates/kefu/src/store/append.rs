//! The group commit's write: a batch of messages in one transaction, with the conversations the
//! customers' first messages start (created, routed and assigned in that same commit).

use std::collections::HashMap;

use sqlx::{Row, any::AnyRow};

use super::{
    Conversation, Dialect, NewMessage, Store, StoreError, StoredMessage,
    events::NewEvent,
    messages::{ROWS_PER_STATEMENT, message_columns, message_from_row},
    sealing::Sealed,
};
use crate::domain::{ConversationId, EventKind, MessageId, UserId, now_millis};

/// A customer's first message since its last conversation ended (or ever): the conversation does
/// not exist yet. It is created with the message, given to `agent` if that agent still has room
/// when the transaction looks, else left waiting in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    pub customer: UserId,
    pub agent: Option<UserId>,
    /// The agent the customer asked for, who is offline, and until when the conversation
    /// waits for it only (when `agent` does not take it).
    pub waits_for: Option<(UserId, i64)>,
}

/// The conversation a [`Start`] ended up in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub conversation: Conversation,
    /// Made by this batch (else the customer's open conversation existed already: another tab,
    /// another node, or an upload was first).
    pub created: bool,
}

/// What [`Store::append_messages`] wrote: one stored message per input, in input order, and what
/// became of each customer's start.
#[derive(Debug, Default)]
pub struct Appended {
    pub messages: Vec<StoredMessage>,
    pub started: HashMap<UserId, Started>,
}

impl Store {
    /// Stores a batch of messages in one transaction (group commit). A message whose `(sender,
    /// clientMsgId)` was stored before, in an earlier batch or earlier in this one, is answered
    /// with the first copy and `duplicate: true`. Each conversation's `seq` numbers are handed out
    /// in input order without gaps.
    ///
    /// `starts[i]`, when given, says that message `i` starts its customer's conversation: its
    /// `conversation_id` is ignored, and the customer's open conversation (if one exists by now)
    /// or a new one is used.
    ///
    /// Locks are taken in the order the routing transactions take them: conversations first, then
    /// agents (for a new conversation's capacity), so the two cannot deadlock.
    pub async fn append_messages(
        &self,
        batch: &[NewMessage],
        starts: &[Option<Start>],
    ) -> Result<Appended, StoreError> {
        super::retry_contended(|| self.append_once(batch, starts)).await
    }

    async fn append_once(
        &self,
        batch: &[NewMessage],
        starts: &[Option<Start>],
    ) -> Result<Appended, StoreError> {
        let mut batch: Vec<NewMessage> = batch.to_vec();
        let mut tx = self.begin_write().await?;
        let now = now_millis();
        let mut results: Vec<Option<StoredMessage>> = vec![None; batch.len()];

        let copies = self.answer_retries(&mut tx, &batch, &mut results).await?;
        let copy_indexes: Vec<usize> = copies.iter().map(|(i, _)| *i).collect();
        let fresh = |i: usize, results: &[Option<StoredMessage>]| {
            results[i].is_none() && !copy_indexes.contains(&i)
        };

        // Starts whose customer has an open conversation by now write into it.
        let mut started: HashMap<UserId, Started> = HashMap::new();
        let mut to_create: Vec<(Start, Vec<usize>)> = Vec::new();
        let wanted: Vec<UserId> = {
            let mut customers: Vec<UserId> = starts
                .iter()
                .enumerate()
                .filter(|(i, s)| s.is_some() && fresh(*i, &results))
                .filter_map(|(_, s)| s.map(|s| s.customer))
                .collect();
            customers.sort_unstable();
            customers.dedup();
            customers
        };
        let existing = self.open_conversations_of(&mut tx, &wanted).await?;
        for (i, start) in starts.iter().enumerate() {
            let Some(start) = start else { continue };
            if !fresh(i, &results) {
                continue;
            }
            match existing.get(&start.customer) {
                Some(conversation) => {
                    batch[i].conversation_id = conversation.id;
                    started.entry(start.customer).or_insert_with(|| Started {
                        conversation: conversation.clone(),
                        created: false,
                    });
                }
                None => match to_create
                    .iter_mut()
                    .find(|(s, _)| s.customer == start.customer)
                {
                    Some((_, indexes)) => indexes.push(i),
                    None => to_create.push((*start, vec![i])),
                },
            }
        }
        let creating: Vec<usize> = to_create.iter().flat_map(|(_, ix)| ix.clone()).collect();

        // Existing conversations, grouped in arrival order: one statement advances `last_seq` of
        // every conversation in a chunk.
        let mut by_conversation: Vec<(ConversationId, Vec<usize>)> = Vec::new();
        for (i, message) in batch.iter().enumerate() {
            if !fresh(i, &results) || creating.contains(&i) {
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
        let mut seqs: Vec<i64> = vec![0; batch.len()];
        self.advance_seqs(&mut tx, &by_conversation, &mut seqs, now)
            .await?;

        // New conversations, each with its messages' count as `last_seq`. Their agents are locked
        // in id order, as every transaction that locks several agents does.
        to_create.sort_by_key(|(start, _)| start.agent.map_or(i64::MAX, |a| a.0));
        for (start, indexes) in &to_create {
            let count = indexes.len() as i64;
            let (conversation, created) =
                self.start_conversation(&mut tx, *start, count, now).await?;
            let first = conversation.last_seq - count + 1;
            for (offset, &i) in indexes.iter().enumerate() {
                batch[i].conversation_id = conversation.id;
                seqs[i] = first + offset as i64;
            }
            by_conversation.push((conversation.id, indexes.clone()));
            started.insert(
                start.customer,
                Started {
                    conversation,
                    created,
                },
            );
        }

        let new: Vec<usize> = by_conversation
            .iter()
            .flat_map(|(_, indexes)| indexes.iter().copied())
            .collect();
        let ids = self
            .insert_messages(&mut tx, &batch, &new, &seqs, now)
            .await?;
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
        let mut messages = results
            .into_iter()
            .map(|r| r.ok_or(StoreError::NotFound))
            .collect::<Result<Vec<_>, _>>()?;
        self.fill_attachments(&mut messages).await?;
        Ok(Appended { messages, started })
    }

    /// Retries: answered from what is stored (into `results`), or from the first copy in this
    /// batch (returned as `(copy, first)` pairs).
    async fn answer_retries(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        batch: &[NewMessage],
        results: &mut [Option<StoredMessage>],
    ) -> Result<Vec<(usize, usize)>, StoreError> {
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
            for row in q.fetch_all(&mut **tx).await? {
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
        Ok(copies)
    }

    /// The open conversations of these customers, read in the transaction.
    async fn open_conversations_of(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        customers: &[UserId],
    ) -> Result<HashMap<UserId, Conversation>, StoreError> {
        let mut found = HashMap::with_capacity(customers.len());
        for chunk in customers.chunks(ROWS_PER_STATEMENT) {
            let query = self.dialect.dynamic(format!(
                "SELECT id, customer_id, agent_id, status, last_seq FROM conversations \
                 WHERE open_key IN ({})",
                super::placeholders(chunk.len())
            ));
            let mut q = sqlx::query(query.as_ref());
            for customer in chunk {
                q = q.bind(customer.0);
            }
            for row in q.fetch_all(&mut **tx).await? {
                let conversation = super::conversations::conversation_from_row(&row)?;
                found.insert(conversation.customer_id, conversation);
            }
        }
        Ok(found)
    }

    /// Advances `last_seq` of each conversation by its number of messages and hands out their
    /// seqs, in arrival order.
    async fn advance_seqs(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        by_conversation: &[(ConversationId, Vec<usize>)],
        seqs: &mut [i64],
        now: i64,
    ) -> Result<(), StoreError> {
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
                q.fetch_all(&mut **tx).await?
            } else {
                q.execute(&mut **tx).await?;
                let query = format!(
                    "SELECT id, last_seq FROM conversations WHERE id IN ({})",
                    super::placeholders(chunk.len())
                );
                let mut q = sqlx::query(&query);
                for (conversation, _) in chunk {
                    q = q.bind(conversation.0);
                }
                q.fetch_all(&mut **tx).await?
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
        Ok(())
    }

    /// The customer's conversation for `count` new messages: created (given to `start.agent` if
    /// it has room, with the event that says so), or, when another transaction made one first,
    /// that one with its `last_seq` advanced. Its `last_seq` is the last of the `count` seqs.
    async fn start_conversation(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        start: Start,
        count: i64,
        now: i64,
    ) -> Result<(Conversation, bool), StoreError> {
        let agent = match start.agent {
            Some(agent) if self.has_room(tx, agent).await? => Some(agent),
            _ => None,
        };
        let inserted = self
            .insert_open_conversation(tx, start.customer, agent, count, now)
            .await?;
        let Some(id) = inserted else {
            // Made meanwhile by another transaction: write into it.
            let existing = self
                .open_conversations_of(tx, &[start.customer])
                .await?
                .remove(&start.customer)
                .ok_or(StoreError::NotFound)?;
            let mut seqs = vec![0; count as usize];
            let indexes: Vec<usize> = (0..count as usize).collect();
            self.advance_seqs(tx, &[(existing.id, indexes)], &mut seqs, now)
                .await?;
            let conversation = Conversation {
                last_seq: seqs.last().copied().unwrap_or(existing.last_seq),
                ..existing
            };
            return Ok((conversation, false));
        };
        if let Some(agent) = agent {
            self.note_assignment(tx, agent, now).await?;
            let event = NewEvent::new(id, EventKind::Assigned, now).to(Some(agent));
            self.record_event(tx, event).await?;
        } else if let Some(waits_for) = start.waits_for {
            self.set_requested_wait(tx, id, waits_for).await?;
        }
        let conversation = Conversation {
            id,
            customer_id: start.customer,
            agent_id: agent,
            open: true,
            last_seq: count,
        };
        Ok((conversation, true))
    }

    /// Inserts the customer's open conversation with `last_seq`; `None` when it has one already
    /// (the unique `open_key`), without failing the transaction.
    async fn insert_open_conversation(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        customer: UserId,
        agent: Option<UserId>,
        last_seq: i64,
        now: i64,
    ) -> Result<Option<ConversationId>, StoreError> {
        macro_rules! insert {
            ($head:literal, $tail:literal) => {
                sqlx::query(super::sql!(
                    self,
                    concat!(
                        $head,
                        " INTO conversations (customer_id, agent_id, status, open_key, last_seq, \
                         created_at, updated_at, assigned_at) VALUES (?, ?, 'open', ?, ?, ?, ?, ?)",
                        $tail
                    )
                ))
                .bind(customer.0)
                .bind(agent.map(|a| a.0))
                .bind(customer.0)
                .bind(last_seq)
                .bind(now)
                .bind(now)
                .bind(agent.map(|_| now))
            };
        }
        if self.dialect == Dialect::MySql {
            let done = insert!("INSERT IGNORE", "").execute(&mut **tx).await?;
            if done.rows_affected() == 0 {
                return Ok(None);
            }
            return Ok(done.last_insert_id().map(ConversationId));
        }
        let row = insert!("INSERT", " ON CONFLICT (open_key) DO NOTHING RETURNING id")
            .fetch_optional(&mut **tx)
            .await?;
        row.map(|r| r.try_get("id").map(ConversationId))
            .transpose()
            .map_err(StoreError::from)
    }

    /// Inserts the messages at `new` (multi-row statements); their ids by `(conversation, seq)`.
    async fn insert_messages(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        batch: &[NewMessage],
        new: &[usize],
        seqs: &[i64],
        now: i64,
    ) -> Result<HashMap<(ConversationId, i64), MessageId>, StoreError> {
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
                q.fetch_all(&mut **tx).await?
            } else {
                q.execute(&mut **tx).await?;
                self.inserted_ids_mysql(tx, chunk, batch, seqs).await?
            };
            for row in rows {
                let key = (
                    ConversationId(row.try_get("conversation_id")?),
                    row.try_get("seq")?,
                );
                ids.insert(key, MessageId(row.try_get("id")?));
            }
        }
        Ok(ids)
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
}
