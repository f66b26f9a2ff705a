//! Attachments: files uploaded into a conversation, stored under the attachment directory.

use sqlx::{Row, any::AnyRow};

use super::{Store, StoreError, sql, text};
use crate::domain::{ConversationId, UserId, now_millis};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: i64,
    pub conversation_id: ConversationId,
    pub uploader_id: UserId,
    pub name: String,
    pub mime: String,
    pub size: i64,
    pub stored_as: String,
}

fn attachment_from_row(row: &AnyRow) -> Result<Attachment, StoreError> {
    Ok(Attachment {
        id: row.try_get("id")?,
        conversation_id: ConversationId(row.try_get("conversation_id")?),
        uploader_id: UserId(row.try_get("uploader_id")?),
        name: text(row, "name")?,
        mime: text(row, "mime")?,
        size: row.try_get("size")?,
        stored_as: text(row, "stored_as")?,
    })
}

pub struct NewAttachment<'a> {
    pub conversation_id: ConversationId,
    pub uploader_id: UserId,
    pub name: &'a str,
    pub mime: &'a str,
    pub size: i64,
    pub stored_as: &'a str,
}

impl Store {
    pub async fn add_attachment(&self, new: NewAttachment<'_>) -> Result<Attachment, StoreError> {
        sqlx::query(sql!(
            self,
            "INSERT INTO attachments (conversation_id, uploader_id, name, mime, size, stored_as, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(new.conversation_id.0)
        .bind(new.uploader_id.0)
        .bind(new.name)
        .bind(new.mime)
        .bind(new.size)
        .bind(new.stored_as)
        .bind(now_millis())
        .execute(&mut *self.write_conn().await?)
        .await?;
        // `stored_as` is a fresh random name: it finds the row on every database.
        let row = sqlx::query(sql!(
            self,
            "SELECT id, conversation_id, uploader_id, name, mime, size, stored_as FROM attachments WHERE stored_as = ?"
        ))
        .bind(new.stored_as)
        .fetch_one(&mut *self.conn().await?)
        .await?;
        attachment_from_row(&row)
    }

    pub async fn attachment(&self, id: i64) -> Result<Attachment, StoreError> {
        let row = sqlx::query(sql!(
            self,
            "SELECT id, conversation_id, uploader_id, name, mime, size, stored_as FROM attachments WHERE id = ?"
        ))
        .bind(id)
        .fetch_one(&mut *self.conn().await?)
        .await?;
        attachment_from_row(&row)
    }

    /// Several attachments at once; unknown ids are left out.
    pub async fn attachments(&self, ids: &[i64]) -> Result<Vec<Attachment>, StoreError> {
        self.rows_with_keys(
            "SELECT id, conversation_id, uploader_id, name, mime, size, stored_as FROM attachments WHERE id IN ({})",
            ids,
        )
        .await?
        .iter()
        .map(attachment_from_row)
        .collect()
    }
}
