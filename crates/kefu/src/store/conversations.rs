use std::collections::HashMap;

use sqlx::{Row, any::AnyRow};

use super::{Store, StoreError, events::NewEvent, sql, text};
use crate::domain::{ConversationId, EventKind, Role, User, UserId, now_millis};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub id: ConversationId,
    pub customer_id: UserId,
    pub agent_id: Option<UserId>,
    pub open: bool,
    pub last_seq: i64,
}

/// Someone I share an open conversation with, as `all_member` lists them.
#[derive(Debug, Clone)]
pub struct Member {
    pub user: User,
    pub conversation_id: ConversationId,
    /// Messages they sent me that I have not marked read.
    pub unread: i64,
    /// The latest message of the conversation, from either side.
    pub last_message: Option<super::StoredMessage>,
    /// The conversation was left through the offline form.
    pub offline: bool,
    /// The contact details the customer left (shown to its agent; a customer's own agent has
    /// none).
    pub email: Option<String>,
    pub phone: Option<String>,
}

macro_rules! conversation_columns {
    () => {
        "id, customer_id, agent_id, status, last_seq"
    };
}
pub(super) use conversation_columns;

pub(super) fn conversation_from_row(row: &AnyRow) -> Result<Conversation, StoreError> {
    Ok(Conversation {
        id: ConversationId(row.try_get("id")?),
        customer_id: UserId(row.try_get("customer_id")?),
        agent_id: row.try_get::<Option<i64>, _>("agent_id")?.map(UserId),
        open: text(row, "status")? == "open",
        last_seq: row.try_get("last_seq")?,
    })
}

fn member_from_row(row: &AnyRow) -> Result<Member, StoreError> {
    let role = text(row, "role")?;
    Ok(Member {
        user: User {
            id: UserId(row.try_get("id")?),
            role: Role::parse(&role)
                .map_err(|e| StoreError::Other(sqlx::Error::Decode(e.to_string().into())))?,
            username: text(row, "username")?,
            display_name: text(row, "display_name")?,
        },
        conversation_id: ConversationId(row.try_get("conversation_id")?),
        unread: row.try_get("unread")?,
        last_message: None,
        offline: row.try_get::<i64, _>("offline")? != 0,
        email: super::optional_text(row, "email")?,
        phone: super::optional_text(row, "phone")?,
    })
}

impl Store {
    /// The customer's open conversation, created if it has none. Safe under concurrency: the
    /// unique `open_key` lets only one open conversation per customer exist.
    pub async fn open_conversation(&self, customer: UserId) -> Result<Conversation, StoreError> {
        if let Some(conversation) = self.current_conversation(customer).await? {
            return Ok(conversation);
        }
        Ok(self
            .create_conversation(customer, None, None)
            .await?
            .conversation)
    }

    /// The customer's open conversation, if any.
    pub async fn current_conversation(
        &self,
        customer: UserId,
    ) -> Result<Option<Conversation>, StoreError> {
        let row = sqlx::query(sql!(
            self,
            concat!(
                "SELECT ",
                conversation_columns!(),
                " FROM conversations WHERE open_key = ?"
            )
        ))
        .bind(customer.0)
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        row.as_ref().map(conversation_from_row).transpose()
    }

    /// The customer's most recent conversation, open or not, read together with the others asked
    /// for at the same moment ([`batched`]).
    ///
    /// [`batched`]: super::batched
    pub async fn latest_conversation(
        &self,
        customer: UserId,
    ) -> Result<Option<Conversation>, StoreError> {
        self.reads.latest.get(self, customer).await
    }

    pub(super) fn read_latest_conversations(
        store: Store,
        customers: Vec<UserId>,
    ) -> super::batched::Reading<UserId, Conversation> {
        Box::pin(async move {
            let keys: Vec<i64> = customers.iter().map(|c| c.0).collect();
            store
                .rows_with_keys(
                    concat!(
                        "SELECT ",
                        conversation_columns!(),
                        " FROM conversations WHERE id IN \
                         (SELECT MAX(id) FROM conversations WHERE customer_id IN ({}) GROUP BY customer_id)"
                    ),
                    &keys,
                )
                .await?
                .iter()
                .map(|row| conversation_from_row(row).map(|c| (c.customer_id, c)))
                .collect()
        })
    }

    pub async fn conversation(&self, id: ConversationId) -> Result<Conversation, StoreError> {
        let row = sqlx::query(sql!(
            self,
            concat!(
                "SELECT ",
                conversation_columns!(),
                " FROM conversations WHERE id = ?"
            )
        ))
        .bind(id.0)
        .fetch_one(&mut *self.conn().await?)
        .await?;
        conversation_from_row(&row)
    }

    /// Takes an agent's open conversations away from it, back into the queue; returns them.
    pub async fn release_conversations(
        &self,
        agent: UserId,
    ) -> Result<Vec<Conversation>, StoreError> {
        let mut tx = self.begin_write().await?;
        let conversations = sqlx::query(sql!(
            self,
            concat!(
                "SELECT ",
                conversation_columns!(),
                " FROM conversations WHERE agent_id = ? AND status = 'open'"
            )
        ))
        .bind(agent.0)
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(conversation_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        let now = now_millis();
        sqlx::query(sql!(
            self,
            "UPDATE conversations SET agent_id = NULL, assigned_at = NULL, updated_at = ? \
             WHERE agent_id = ? AND status = 'open'"
        ))
        .bind(now)
        .bind(agent.0)
        .execute(&mut **tx)
        .await?;
        for conversation in &conversations {
            let event = NewEvent::new(conversation.id, EventKind::Queued, now).to(Some(agent));
            self.record_event(&mut tx, event).await?;
        }
        tx.commit().await?;
        Ok(conversations)
    }

    /// How many open conversations each of these agents holds (absent agents hold none).
    pub async fn open_conversation_counts(
        &self,
        agents: &[UserId],
    ) -> Result<HashMap<UserId, i64>, StoreError> {
        let mut counts: HashMap<UserId, i64> = agents.iter().map(|a| (*a, 0)).collect();
        let keys: Vec<i64> = agents.iter().map(|a| a.0).collect();
        for row in self
            .rows_with_keys(
                "SELECT agent_id, COUNT(*) AS n FROM conversations WHERE status = 'open' AND agent_id IN ({}) GROUP BY agent_id",
                &keys,
            )
            .await?
        {
            counts.insert(UserId(row.try_get("agent_id")?), row.try_get("n")?);
        }
        Ok(counts)
    }

    /// My members: for an agent (or admin), the customers of its open conversations, latest
    /// activity first; for a customer, the agent of its open conversation, if one is assigned.
    pub async fn members_of(&self, user: UserId, role: Role) -> Result<Vec<Member>, StoreError> {
        // `unread` counts what the other side sent after my read mark.
        let query = if role == Role::Customer {
            sql!(
                self,
                "SELECT c.id AS conversation_id, c.last_seq, c.offline, u.id, u.role, u.username, u.display_name, u.email, u.phone, \
                   (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id AND m.sender_id <> c.customer_id \
                      AND m.seq > COALESCE((SELECT r.last_read_seq FROM read_states r \
                                            WHERE r.user_id = ? AND r.conversation_id = c.id), 0)) AS unread \
                 FROM conversations c JOIN users u ON u.id = c.agent_id \
                 WHERE c.open_key = ?"
            )
        } else {
            sql!(
                self,
                "SELECT c.id AS conversation_id, c.last_seq, c.offline, u.id, u.role, u.username, u.display_name, u.email, u.phone, \
                   (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id AND m.sender_id = c.customer_id \
                      AND m.seq > COALESCE((SELECT r.last_read_seq FROM read_states r \
                                            WHERE r.user_id = ? AND r.conversation_id = c.id), 0)) AS unread \
                 FROM conversations c JOIN users u ON u.id = c.customer_id \
                 WHERE c.agent_id = ? AND c.status = 'open' ORDER BY c.updated_at DESC, c.id DESC"
            )
        };
        let rows = sqlx::query(query)
            .bind(user.0)
            .bind(user.0)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        self.members_with_last_message(&rows).await
    }

    async fn members_with_last_message(&self, rows: &[AnyRow]) -> Result<Vec<Member>, StoreError> {
        let mut members = rows
            .iter()
            .map(member_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let mut latest = Vec::with_capacity(rows.len());
        for (row, member) in rows.iter().zip(&members) {
            let last_seq: i64 = row.try_get("last_seq")?;
            if last_seq > 0 {
                latest.push((member.conversation_id, last_seq));
            }
        }
        let mut last_messages = self.messages_at(&latest).await?;
        for member in &mut members {
            member.last_message = last_messages.remove(&member.conversation_id);
        }
        Ok(members)
    }

    /// How far `user` has read in a conversation (0 before the first `read`).
    pub async fn read_seq(
        &self,
        user: UserId,
        conversation: ConversationId,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(sql!(
            self,
            "SELECT last_read_seq FROM read_states WHERE user_id = ? AND conversation_id = ?"
        ))
        .bind(user.0)
        .bind(conversation.0)
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        Ok(match row {
            Some(row) => row.try_get("last_read_seq")?,
            None => 0,
        })
    }

    /// Who shares an open conversation with this user: presence goes to them and nobody else.
    pub async fn peers_of(&self, user: UserId, role: Role) -> Result<Vec<UserId>, StoreError> {
        let rows = if role == Role::Customer {
            sqlx::query(sql!(
                self,
                "SELECT agent_id AS peer FROM conversations WHERE open_key = ? AND agent_id IS NOT NULL"
            ))
            .bind(user.0)
            .fetch_all(&mut *self.conn().await?)
            .await?
        } else {
            sqlx::query(sql!(
                self,
                "SELECT customer_id AS peer FROM conversations WHERE agent_id = ? AND status = 'open'"
            ))
            .bind(user.0)
            .fetch_all(&mut *self.conn().await?)
            .await?
        };
        rows.iter()
            .map(|row| Ok(UserId(row.try_get("peer")?)))
            .collect()
    }

    /// Moves my read mark in a conversation forward to `seq` (never backwards).
    pub async fn mark_read(
        &self,
        user: UserId,
        conversation: ConversationId,
        seq: i64,
    ) -> Result<(), StoreError> {
        let now = now_millis();
        let upsert = match self.dialect {
            super::Dialect::MySql => {
                "INSERT INTO read_states (user_id, conversation_id, last_read_seq, updated_at) VALUES (?, ?, ?, ?) \
                 ON DUPLICATE KEY UPDATE last_read_seq = GREATEST(last_read_seq, VALUES(last_read_seq)), \
                 updated_at = VALUES(updated_at)"
            }
            super::Dialect::Sqlite => {
                "INSERT INTO read_states (user_id, conversation_id, last_read_seq, updated_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (user_id, conversation_id) DO UPDATE SET \
                 last_read_seq = MAX(read_states.last_read_seq, excluded.last_read_seq), updated_at = excluded.updated_at"
            }
            super::Dialect::Postgres => sql!(
                self,
                "INSERT INTO read_states (user_id, conversation_id, last_read_seq, updated_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (user_id, conversation_id) DO UPDATE SET \
                 last_read_seq = GREATEST(read_states.last_read_seq, excluded.last_read_seq), updated_at = excluded.updated_at"
            ),
        };
        sqlx::query(upsert)
            .bind(user.0)
            .bind(conversation.0)
            .bind(seq)
            .bind(now)
            .execute(&mut *self.write_conn().await?)
            .await?;
        Ok(())
    }
}
