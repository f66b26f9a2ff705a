//! Finding conversations as staff do: the admin's search by customer, and one conversation's
//! record for its transcript.

use sqlx::{Row, any::AnyRow};

use super::{
    Conversation, Store, StoreError, conversations::conversation_from_row, optional_text, sql, text,
};
use crate::domain::{ConversationId, UserId};

/// A conversation with what a list or a transcript's heading shows of it.
#[derive(Debug, Clone)]
pub struct ConversationRecord {
    pub conversation: Conversation,
    pub customer_name: String,
    pub customer_username: String,
    pub customer_email: Option<String>,
    pub agent_name: Option<String>,
    pub created_at: i64,
    pub resolved_at: Option<i64>,
    pub rating: Option<i64>,
    pub rating_comment: Option<String>,
    /// Left through the offline form.
    pub offline: bool,
    /// How kefu ended it, when kefu did: `abandoned` or `idle`.
    pub ended_as: Option<String>,
}

/// What the admin looks for: text in the customer's name, user name or e-mail, or a number that
/// is a customer's or a conversation's id; newest first, before a conversation id (the cursor).
#[derive(Debug, Clone, Default)]
pub struct ConversationQuery {
    pub text: Option<String>,
    pub open: Option<bool>,
    pub before: Option<ConversationId>,
    pub limit: u32,
}

macro_rules! record_columns {
    () => {
        "c.id, c.customer_id, c.agent_id, c.status, c.last_seq, c.created_at, c.resolved_at, \
         c.rating, c.rating_comment, c.offline, c.ended_as, u.display_name AS customer_name, \
         u.username AS customer_username, u.email AS customer_email, a.display_name AS agent_name \
         FROM conversations c JOIN users u ON u.id = c.customer_id \
         LEFT JOIN users a ON a.id = c.agent_id"
    };
}

fn record_from_row(row: &AnyRow) -> Result<ConversationRecord, StoreError> {
    Ok(ConversationRecord {
        conversation: conversation_from_row(row)?,
        customer_name: text(row, "customer_name")?,
        customer_username: text(row, "customer_username")?,
        customer_email: optional_text(row, "customer_email")?,
        agent_name: optional_text(row, "agent_name")?,
        created_at: row.try_get("created_at")?,
        resolved_at: row.try_get("resolved_at")?,
        rating: row.try_get("rating")?,
        rating_comment: optional_text(row, "rating_comment")?,
        offline: row.try_get::<i64, _>("offline")? != 0,
        ended_as: optional_text(row, "ended_as")?,
    })
}

/// `text` as a `LIKE` pattern that matches it anywhere, its own `%`, `_` and `!` taken literally.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '!') {
            pattern.push('!');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Store {
    pub async fn conversation_record(
        &self,
        id: ConversationId,
    ) -> Result<ConversationRecord, StoreError> {
        let row = sqlx::query(sql!(
            self,
            concat!("SELECT ", record_columns!(), " WHERE c.id = ?")
        ))
        .bind(id.0)
        .fetch_optional(&mut *self.conn().await?)
        .await?
        .ok_or(StoreError::NotFound)?;
        record_from_row(&row)
    }

    pub async fn find_conversations(
        &self,
        query: &ConversationQuery,
    ) -> Result<Vec<ConversationRecord>, StoreError> {
        let text = query.text.as_deref().map(str::trim).unwrap_or_default();
        // A number is a customer's or a conversation's id (not a digit inside a user name).
        let (text, id) = match text.parse::<i64>() {
            Ok(id) => ("", id),
            Err(_) => (text, -1),
        };
        let pattern = contains_pattern(text);
        let status = match query.open {
            None => "",
            Some(true) => "open",
            Some(false) => "resolved",
        };
        sqlx::query(sql!(
            self,
            concat!(
                "SELECT ",
                record_columns!(),
                " WHERE ((? = '' AND ? < 0) OR (? <> '' AND (LOWER(u.display_name) LIKE ? ESCAPE '!' \
                 OR LOWER(u.username) LIKE ? ESCAPE '!' \
                 OR LOWER(COALESCE(u.email, '')) LIKE ? ESCAPE '!')) \
                 OR c.customer_id = ? OR c.id = ?) \
                 AND (? = '' OR c.status = ?) AND c.id < ? \
                 ORDER BY c.id DESC LIMIT ?"
            )
        ))
        .bind(text)
        .bind(id)
        .bind(text)
        .bind(&pattern)
        .bind(&pattern)
        .bind(&pattern)
        .bind(id)
        .bind(id)
        .bind(status)
        .bind(status)
        .bind(query.before.map_or(i64::MAX, |b| b.0))
        .bind(i64::from(query.limit))
        .fetch_all(&mut *self.conn().await?)
        .await?
        .iter()
        .map(record_from_row)
        .collect()
    }

    /// The display names of the users among `ids` that exist, for a transcript.
    pub async fn display_names(
        &self,
        ids: &[UserId],
    ) -> Result<std::collections::HashMap<UserId, String>, StoreError> {
        Ok(self
            .users(ids)
            .await?
            .into_iter()
            .map(|r| (r.user.id, r.user.display_name))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_pattern_matches_the_text_anywhere_and_its_wildcards_literally() {
        assert_eq!(contains_pattern("Ann"), "%ann%");
        assert_eq!(contains_pattern("50%_off!"), "%50!%!_off!!%");
        assert_eq!(contains_pattern("张三"), "%张三%");
    }
}
