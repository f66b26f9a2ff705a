//! Private notes (agents only; no customer ever reads one) and the customer's rating.

use super::Chat;
use crate::{
    domain::{Content, ConversationId, Role, UserId},
    services::{Error, Result, auth::Identity, delivery::Notice},
    store::{Note, Rated, StoreError},
};

/// The longest comment a rating may carry.
pub const MAX_RATING_COMMENT_CHARS: usize = 1000;

impl Chat {
    /// A private note on the agent's conversation with `peer`: its author's connections get it,
    /// the customer never does.
    #[tracing::instrument(skip_all, fields(user = %me.user_id))]
    pub async fn note(&self, me: Identity, peer: Option<UserId>, content: String) -> Result<Note> {
        if !me.role.is_staff() {
            return Err(Error::Forbidden("only agents write notes"));
        }
        let content = Content::parse(content, self.max_message_bytes)?;
        let conversation = self.conversation_with(me, peer).await?;
        let note = self
            .store
            .add_note(conversation.id, me.user_id, content.as_str())
            .await?;
        self.delivery
            .notify(me.user_id, &Notice::NoteAdded { note: &note }, None);
        Ok(note)
    }

    /// The notes of the agent's conversation with `peer`, or, for an admin, of any conversation.
    #[tracing::instrument(skip_all, fields(user = %me.user_id))]
    pub async fn notes(
        &self,
        me: Identity,
        peer: Option<UserId>,
        conversation: Option<ConversationId>,
    ) -> Result<Vec<Note>> {
        if !me.role.is_staff() {
            return Err(Error::Forbidden("only agents read notes"));
        }
        let conversation = match (conversation, me.role) {
            (Some(id), Role::Admin) => self.store.conversation(id).await.map_err(|e| match e {
                StoreError::NotFound => Error::NotFound("no such conversation"),
                other => other.into(),
            })?,
            (Some(id), _) => match self.store.conversation(id).await.ok() {
                Some(c) if c.open && c.agent_id == Some(me.user_id) => c,
                _ => return Err(Error::NotFound("no such conversation")),
            },
            (None, _) => self.conversation_with(me, peer).await?,
        };
        Ok(self.store.notes_of(conversation.id).await?)
    }

    /// The customer rates its resolved conversation (1 to 5, with an optional comment), once.
    #[tracing::instrument(skip_all, fields(user = %me.user_id, conversation = %conversation))]
    pub async fn rate(
        &self,
        me: Identity,
        conversation: ConversationId,
        score: i64,
        comment: Option<String>,
    ) -> Result<()> {
        if me.role != Role::Customer {
            return Err(Error::Forbidden("only customers rate conversations"));
        }
        if !(1..=5).contains(&score) {
            return Err(Error::InvalidPayload(
                "score must be 1, 2, 3, 4 or 5".into(),
            ));
        }
        let comment = comment
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty());
        if comment.as_ref().is_some_and(|c| c.contains('\0')) {
            return Err(Error::InvalidPayload(
                "the comment must not contain NUL characters".into(),
            ));
        }
        if comment
            .as_ref()
            .is_some_and(|c| c.chars().count() > MAX_RATING_COMMENT_CHARS)
        {
            return Err(Error::TooLarge(format!(
                "the comment may have at most {MAX_RATING_COMMENT_CHARS} characters"
            )));
        }
        match self
            .store
            .rate_conversation(conversation, me.user_id, score, comment.as_deref())
            .await?
        {
            Rated::Taken => Ok(()),
            Rated::NotYours => Err(Error::Forbidden("not your conversation")),
            Rated::NotResolved => Err(Error::Forbidden("the conversation has not ended")),
            Rated::AlreadyRated => Err(Error::Conflict("this conversation is rated already")),
        }
    }
}
