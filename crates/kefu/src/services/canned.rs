//! Canned replies: snippets agents insert with a shortcut. Shared ones are managed by admins; each
//! agent keeps its own. Placeholders (`{{customer.name}}`) are filled in by the console.

use super::{Error, Result, auth::Identity};
use crate::{
    domain::{Content, Role},
    store::{CannedReply, Store, StoreError},
};

/// `/` then 1 to 32 of `a-z 0-9 _ -`.
pub fn parse_shortcut(value: &str) -> Result<String> {
    let value = value.trim().to_lowercase();
    let valid = value.strip_prefix('/').is_some_and(|rest| {
        (1..=32).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    });
    if valid {
        Ok(value)
    } else {
        Err(Error::InvalidPayload(
            "shortcut must be / followed by 1 to 32 of a-z 0-9 _ -".into(),
        ))
    }
}

#[derive(Clone)]
pub struct CannedReplies {
    store: Store,
    max_bytes: usize,
}

impl CannedReplies {
    pub fn new(store: Store, max_bytes: usize) -> Self {
        Self { store, max_bytes }
    }

    fn staff(me: Identity) -> Result<()> {
        if me.role.is_staff() {
            Ok(())
        } else {
            Err(Error::Forbidden("staff only"))
        }
    }

    pub async fn list(&self, me: Identity) -> Result<Vec<CannedReply>> {
        Self::staff(me)?;
        Ok(self.store.canned_replies(me.user_id).await?)
    }

    #[tracing::instrument(skip_all, fields(user = %me.user_id))]
    pub async fn create(
        &self,
        me: Identity,
        shortcut: &str,
        content: String,
        shared: bool,
    ) -> Result<CannedReply> {
        Self::staff(me)?;
        if shared && me.role != Role::Admin {
            return Err(Error::Forbidden("only admins create shared replies"));
        }
        let shortcut = parse_shortcut(shortcut)?;
        let content = Content::parse(content, self.max_bytes)?;
        let owner = (!shared).then_some(me.user_id);
        self.store
            .create_canned_reply(owner, &shortcut, content.as_str())
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => Error::Conflict("that shortcut is taken"),
                other => other.into(),
            })
    }

    /// The reply, if `me` may change it: its owner, or an admin for a shared one.
    async fn editable(&self, me: Identity, id: i64) -> Result<CannedReply> {
        Self::staff(me)?;
        let reply = self.store.canned_reply(id).await.map_err(|e| match e {
            StoreError::NotFound => Error::NotFound("no such reply"),
            other => other.into(),
        })?;
        match reply.owner_id {
            Some(owner) if owner == me.user_id => Ok(reply),
            None if me.role == Role::Admin => Ok(reply),
            None => Err(Error::Forbidden("only admins change shared replies")),
            // Someone else's personal reply does not exist for me.
            Some(_) => Err(Error::NotFound("no such reply")),
        }
    }

    #[tracing::instrument(skip_all, fields(user = %me.user_id))]
    pub async fn update(
        &self,
        me: Identity,
        id: i64,
        shortcut: Option<&str>,
        content: Option<String>,
    ) -> Result<CannedReply> {
        let mut reply = self.editable(me, id).await?;
        if let Some(shortcut) = shortcut {
            reply.shortcut = parse_shortcut(shortcut)?;
        }
        if let Some(content) = content {
            reply.content = Content::parse(content, self.max_bytes)?.into_inner();
        }
        self.store
            .update_canned_reply(id, &reply.shortcut, &reply.content)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => Error::Conflict("that shortcut is taken"),
                other => other.into(),
            })?;
        Ok(reply)
    }

    #[tracing::instrument(skip_all, fields(user = %me.user_id))]
    pub async fn delete(&self, me: Identity, id: i64) -> Result<()> {
        self.editable(me, id).await?;
        Ok(self.store.delete_canned_reply(id).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shortcut_is_a_slash_and_a_short_lowercase_word() {
        assert_eq!(parse_shortcut("/refund").unwrap(), "/refund");
        assert_eq!(parse_shortcut(" /Refund_2 ").unwrap(), "/refund_2");
        for bad in [
            "refund",
            "/",
            "/has space",
            "/ü",
            &format!("/{}", "a".repeat(33)),
        ] {
            assert!(parse_shortcut(bad).is_err(), "{bad}");
        }
    }
}
