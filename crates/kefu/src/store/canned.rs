//! Canned replies: shared snippets (no owner) and each agent's own.

use sqlx::{Row, any::AnyRow};

use super::{Store, StoreError, sql, text};
use crate::domain::{UserId, now_millis};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedReply {
    pub id: i64,
    /// `None`: shared by every agent.
    pub owner_id: Option<UserId>,
    pub shortcut: String,
    pub content: String,
}

fn reply_from_row(row: &AnyRow) -> Result<CannedReply, StoreError> {
    Ok(CannedReply {
        id: row.try_get("id")?,
        owner_id: row.try_get::<Option<i64>, _>("owner_id")?.map(UserId),
        shortcut: text(row, "shortcut")?,
        content: text(row, "content")?,
    })
}

impl Store {
    /// The shared replies and `owner`'s own, by shortcut.
    pub async fn canned_replies(&self, owner: UserId) -> Result<Vec<CannedReply>, StoreError> {
        sqlx::query(sql!(
            self,
            "SELECT id, owner_id, shortcut, content FROM canned_replies \
             WHERE owner_id IS NULL OR owner_id = ? ORDER BY shortcut, id"
        ))
        .bind(owner.0)
        .fetch_all(&mut *self.conn().await?)
        .await?
        .iter()
        .map(reply_from_row)
        .collect()
    }

    pub async fn canned_reply(&self, id: i64) -> Result<CannedReply, StoreError> {
        let row = sqlx::query(sql!(
            self,
            "SELECT id, owner_id, shortcut, content FROM canned_replies WHERE id = ?"
        ))
        .bind(id)
        .fetch_one(&mut *self.conn().await?)
        .await?;
        reply_from_row(&row)
    }

    /// `Conflict` when the shortcut is taken in that scope (shared, or the owner's).
    pub async fn create_canned_reply(
        &self,
        owner: Option<UserId>,
        shortcut: &str,
        content: &str,
    ) -> Result<CannedReply, StoreError> {
        let now = now_millis();
        sqlx::query(sql!(
            self,
            "INSERT INTO canned_replies (owner_id, shortcut, content, created_at, updated_at) VALUES (?, ?, ?, ?, ?)"
        ))
        .bind(owner.map(|o| o.0))
        .bind(shortcut)
        .bind(content)
        .bind(now)
        .bind(now)
        .execute(&mut *self.write_conn().await?)
        .await?;
        let row = match owner {
            None => {
                sqlx::query(sql!(
                    self,
                    "SELECT id, owner_id, shortcut, content FROM canned_replies \
                     WHERE shortcut = ? AND owner_id IS NULL"
                ))
                .bind(shortcut)
                .fetch_one(&mut *self.conn().await?)
                .await?
            }
            Some(owner) => {
                sqlx::query(sql!(
                    self,
                    "SELECT id, owner_id, shortcut, content FROM canned_replies \
                     WHERE shortcut = ? AND owner_id = ?"
                ))
                .bind(shortcut)
                .bind(owner.0)
                .fetch_one(&mut *self.conn().await?)
                .await?
            }
        };
        reply_from_row(&row)
    }

    pub async fn update_canned_reply(
        &self,
        id: i64,
        shortcut: &str,
        content: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(sql!(
            self,
            "UPDATE canned_replies SET shortcut = ?, content = ?, updated_at = ? WHERE id = ?"
        ))
        .bind(shortcut)
        .bind(content)
        .bind(now_millis())
        .bind(id)
        .execute(&mut *self.write_conn().await?)
        .await?;
        Ok(())
    }

    pub async fn delete_canned_reply(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query(sql!(self, "DELETE FROM canned_replies WHERE id = ?"))
            .bind(id)
            .execute(&mut *self.write_conn().await?)
            .await?;
        Ok(())
    }
}
