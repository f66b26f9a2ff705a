//! Private notes: agents' words about a conversation, kept apart from its messages so that no
//! query a customer can reach ever reads them.

use sqlx::{Row, any::AnyRow};

use super::{Store, StoreError, optional_text, sealing::Sealed, sql, text};
use crate::domain::{ConversationId, UserId, now_millis};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub id: i64,
    pub conversation_id: ConversationId,
    pub author_id: UserId,
    pub author_name: String,
    pub content: String,
    pub created_at: i64,
}

fn note_from_row(store: &Store, row: &AnyRow) -> Result<Note, StoreError> {
    let conversation_id = ConversationId(row.try_get("conversation_id")?);
    Ok(Note {
        id: row.try_get("id")?,
        conversation_id,
        author_id: UserId(row.try_get("author_id")?),
        author_name: text(row, "display_name")?,
        content: store.unseal(
            text(row, "content")?,
            optional_text(row, "key_id")?,
            Sealed::Note(conversation_id.0),
        )?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    pub async fn add_note(
        &self,
        conversation: ConversationId,
        author: UserId,
        content: &str,
    ) -> Result<Note, StoreError> {
        let now = now_millis();
        let (sealed, key_id) = self.seal(content, Sealed::Note(conversation.0))?;
        let id: i64 = if self.dialect.has_returning() {
            sqlx::query(sql!(
                self,
                "INSERT INTO notes (conversation_id, author_id, content, created_at, key_id) VALUES (?, ?, ?, ?, ?) RETURNING id"
            ))
            .bind(conversation.0)
            .bind(author.0)
            .bind(sealed.as_ref())
            .bind(now)
            .bind(key_id)
            .fetch_one(&mut *self.write_conn().await?)
            .await?
            .try_get("id")?
        } else {
            let result = sqlx::query(sql!(
                self,
                "INSERT INTO notes (conversation_id, author_id, content, created_at, key_id) VALUES (?, ?, ?, ?, ?)"
            ))
            .bind(conversation.0)
            .bind(author.0)
            .bind(sealed.as_ref())
            .bind(now)
            .bind(key_id)
            .execute(&mut *self.write_conn().await?)
            .await?;
            result.last_insert_id().ok_or(StoreError::NotFound)?
        };
        let author_name = self.user(author).await?.user.display_name;
        Ok(Note {
            id,
            conversation_id: conversation,
            author_id: author,
            author_name,
            content: content.to_owned(),
            created_at: now,
        })
    }

    /// A conversation's notes, oldest first.
    pub async fn notes_of(&self, conversation: ConversationId) -> Result<Vec<Note>, StoreError> {
        sqlx::query(sql!(
            self,
            "SELECT n.id, n.conversation_id, n.author_id, u.display_name, n.content, n.key_id, n.created_at \
             FROM notes n JOIN users u ON u.id = n.author_id WHERE n.conversation_id = ? ORDER BY n.id"
        ))
        .bind(conversation.0)
        .fetch_all(&mut *self.conn().await?)
        .await?
        .iter()
        .map(|row| note_from_row(self, row))
        .collect()
    }
}
