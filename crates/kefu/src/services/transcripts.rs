//! Transcripts: what a shop hands to a customer or a lawyer. Every message (never a note), with
//! what happened around them (assigned, transferred, back to the queue, resolved, rated), and each
//! attachment named with its type, size and link. Finding a customer's conversations, for admins.

use std::collections::HashMap;

use super::{Error, Result, auth::Identity};
use crate::{
    domain::{ConversationId, EventKind, Role, UserId, format_timestamp},
    store::{
        ConversationEvent, ConversationQuery, ConversationRecord, Page, Store, StoreError,
        StoredMessage,
    },
};

/// The most conversations one search returns.
pub const MAX_FOUND: u32 = 100;

#[derive(Clone)]
pub struct Transcripts {
    store: Store,
}

/// One conversation whole, in order.
pub struct Transcript {
    pub record: ConversationRecord,
    pub messages: Vec<StoredMessage>,
    pub events: Vec<ConversationEvent>,
    /// Display names of everyone who wrote or acted.
    pub names: HashMap<UserId, String>,
}

/// A line of a transcript: a message, or an event between messages.
#[derive(Debug, Clone, Copy)]
pub enum Entry<'a> {
    Message(&'a StoredMessage),
    Event(&'a ConversationEvent),
}

impl Entry<'_> {
    fn at(&self) -> i64 {
        match self {
            Entry::Message(m) => m.created_at,
            Entry::Event(e) => e.created_at,
        }
    }
}

/// Someone else's conversation is answered as if there were none.
const NOT_FOUND: Error = Error::NotFound("no such conversation");

impl Transcripts {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The conversation, for an admin, or for the agent it is (or was last) assigned to.
    #[tracing::instrument(skip_all, fields(user = %me.user_id, conversation = %id))]
    pub async fn transcript(&self, me: Identity, id: ConversationId) -> Result<Transcript> {
        if !me.role.is_staff() {
            return Err(Error::Forbidden("only staff export transcripts"));
        }
        let record = self.record(id).await?;
        if me.role != Role::Admin && record.conversation.agent_id != Some(me.user_id) {
            return Err(NOT_FOUND);
        }
        self.load(record).await
    }

    /// The conversation `id` as a transcript heads it; `not_found` when there is none.
    async fn record(&self, id: ConversationId) -> Result<ConversationRecord> {
        self.store
            .conversation_record(id)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => NOT_FOUND,
                other => other.into(),
            })
    }

    /// A customer's own conversation (what it may have mailed to itself).
    #[tracing::instrument(skip_all, fields(user = %me.user_id, conversation = %id))]
    pub async fn for_customer(&self, me: Identity, id: ConversationId) -> Result<Transcript> {
        let record = self.record(id).await?;
        if me.role != Role::Customer || record.conversation.customer_id != me.user_id {
            return Err(NOT_FOUND);
        }
        self.load(record).await
    }

    async fn load(&self, record: ConversationRecord) -> Result<Transcript> {
        let id = record.conversation.id;
        let mut messages: Vec<StoredMessage> = Vec::new();
        loop {
            let after = messages.last().map_or(0, |m| m.seq);
            let page = self
                .store
                .history(id, Page::After { seq: after }, 100)
                .await?;
            messages.extend(page.messages);
            if !page.has_more {
                break;
            }
        }
        let events = self.store.events_of(id).await?;
        let mut ids: Vec<UserId> = messages.iter().map(|m| m.sender_id).collect();
        ids.extend(
            events
                .iter()
                .flat_map(|e| [e.actor_id, e.agent_id])
                .flatten(),
        );
        ids.push(record.conversation.customer_id);
        ids.sort_unstable();
        ids.dedup();
        let names = self.store.display_names(&ids).await?;
        Ok(Transcript {
            record,
            messages,
            events,
            names,
        })
    }

    /// Admins: conversations whose customer matches `query`, newest first.
    #[tracing::instrument(skip_all, fields(user = %me.user_id))]
    pub async fn find(
        &self,
        me: Identity,
        mut query: ConversationQuery,
    ) -> Result<Vec<ConversationRecord>> {
        if me.role != Role::Admin {
            return Err(Error::Forbidden("only admins search every conversation"));
        }
        if query.text.as_ref().is_some_and(|t| t.chars().count() > 200) {
            return Err(Error::InvalidPayload(
                "the search text may have at most 200 characters".into(),
            ));
        }
        query.limit = query.limit.clamp(1, MAX_FOUND);
        Ok(self.store.find_conversations(&query).await?)
    }
}

impl Transcript {
    /// Messages and events by time; at the same millisecond a message comes before the event it
    /// led to.
    pub fn entries(&self) -> Vec<Entry<'_>> {
        let mut entries: Vec<Entry<'_>> = self
            .messages
            .iter()
            .map(Entry::Message)
            .chain(self.events.iter().map(Entry::Event))
            .collect();
        entries.sort_by_key(|e| (e.at(), matches!(e, Entry::Event(_))));
        entries
    }

    fn name(&self, id: Option<UserId>) -> &str {
        id.and_then(|id| self.names.get(&id))
            .map_or("?", String::as_str)
    }

    /// What an event says, in a sentence.
    pub fn describe(&self, event: &ConversationEvent) -> String {
        let actor = self.name(event.actor_id);
        let agent = self.name(event.agent_id);
        match event.kind {
            EventKind::Assigned => format!("Assigned to {agent}"),
            EventKind::Transferred => format!("{actor} transferred the conversation to {agent}"),
            EventKind::Queued if event.actor_id.is_some() => {
                format!("{actor} returned the conversation to the queue")
            }
            EventKind::Queued => {
                format!("Back in the queue: {agent} signed out, stayed offline or was disabled")
            }
            EventKind::Resolved if event.actor_id.is_none() => {
                "Resolved by kefu: nothing was said while the customer was away".into()
            }
            EventKind::Resolved => format!("Resolved by {actor}"),
            EventKind::Abandoned => "Abandoned: the customer left before an agent answered".into(),
            EventKind::Rated => {
                let score = event.score.unwrap_or_default();
                match self
                    .record
                    .rating_comment
                    .as_deref()
                    .filter(|c| !c.is_empty())
                {
                    Some(comment) => format!("{actor} rated the conversation {score}/5: {comment}"),
                    None => format!("{actor} rated the conversation {score}/5"),
                }
            }
        }
    }

    /// The plain-text transcript; `base` (`https://host`) makes attachment links absolute.
    pub fn as_text(&self, base: &str) -> String {
        let record = &self.record;
        let when = |at: i64| {
            let t = format_timestamp(at);
            format!("{} {} UTC", &t[..10], &t[11..19])
        };
        let mut out = format!("Conversation {}\n", record.conversation.id);
        out.push_str(&format!(
            "Customer: {} ({}, id {}{})\n",
            record.customer_name,
            record.customer_username,
            record.conversation.customer_id,
            record
                .customer_email
                .as_deref()
                .map(|e| format!(", {e}"))
                .unwrap_or_default()
        ));
        out.push_str(&format!("Started: {}\n", when(record.created_at)));
        match record.resolved_at {
            Some(at) if !record.conversation.open => {
                out.push_str(&format!("Status: resolved {}\n", when(at)));
            }
            _ => out.push_str("Status: open\n"),
        }
        out.push('\n');
        for entry in self.entries() {
            match entry {
                Entry::Message(m) => {
                    let at = when(m.created_at);
                    let line = match (m.kind.as_str(), &m.attachment) {
                        ("system", _) => format!("{at}  -- {}", m.content),
                        (_, Some(a)) => {
                            let caption = if m.content != a.name {
                                format!(" \"{}\"", m.content)
                            } else {
                                String::new()
                            };
                            format!(
                                "{at}  {}: [{} {}, {}, {}]{caption} {base}/api/attachments/{} \
                                 (staff sign-in needed)",
                                self.name(Some(m.sender_id)),
                                if a.mime.starts_with("image/") {
                                    "image"
                                } else {
                                    "file"
                                },
                                a.name,
                                a.mime,
                                human_size(a.size),
                                a.id
                            )
                        }
                        _ => format!("{at}  {}: {}", self.name(Some(m.sender_id)), m.content),
                    };
                    out.push_str(&line);
                }
                Entry::Event(e) => {
                    out.push_str(&format!("{}  -- {}", when(e.created_at), self.describe(e)));
                }
            }
            out.push('\n');
        }
        out
    }
}

/// `12.3 KiB`, `2.0 MiB`, `512 B`.
fn human_size(bytes: i64) -> String {
    let b = bytes.max(0) as f64;
    if b < 1024.0 {
        format!("{bytes} B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{:.1} MiB", b / 1024.0 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Attachment, Conversation};

    fn message(id: i64, seq: i64, sender: i64, at: i64, content: &str) -> StoredMessage {
        StoredMessage {
            id: crate::domain::MessageId(id),
            conversation_id: ConversationId(1),
            seq,
            sender_id: UserId(sender),
            kind: "text".into(),
            content: content.into(),
            client_msg_id: None,
            created_at: at,
            duplicate: false,
            attachment_id: None,
            attachment: None,
        }
    }

    fn event(
        kind: EventKind,
        at: i64,
        actor: Option<i64>,
        agent: Option<i64>,
    ) -> ConversationEvent {
        ConversationEvent {
            id: at,
            conversation_id: ConversationId(1),
            kind,
            actor_id: actor.map(UserId),
            agent_id: agent.map(UserId),
            score: (kind == EventKind::Rated).then_some(5),
            created_at: at,
        }
    }

    fn transcript() -> Transcript {
        let mut photo = message(3, 3, 7, 3000, "photo.png");
        photo.kind = "image".into();
        photo.attachment = Some(Attachment {
            id: 9,
            conversation_id: ConversationId(1),
            uploader_id: UserId(7),
            name: "photo.png".into(),
            mime: "image/png".into(),
            size: 12_600,
            stored_as: "x".into(),
        });
        Transcript {
            record: ConversationRecord {
                conversation: Conversation {
                    id: ConversationId(1),
                    customer_id: UserId(7),
                    agent_id: Some(UserId(3)),
                    open: false,
                    last_seq: 3,
                },
                customer_name: "Ann".into(),
                customer_username: "visitor-1".into(),
                customer_email: Some("ann@example.com".into()),
                agent_name: Some("Bob".into()),
                created_at: 1000,
                resolved_at: Some(5000),
                rating: Some(5),
                rating_comment: Some("quick".into()),
                offline: false,
                ended_as: None,
            },
            messages: vec![
                message(1, 1, 7, 1000, "hello"),
                message(2, 2, 2, 2000, "hi, Alice here"),
                photo,
            ],
            events: vec![
                event(EventKind::Assigned, 1000, None, Some(2)),
                event(EventKind::Transferred, 2500, Some(2), Some(3)),
                event(EventKind::Resolved, 5000, Some(3), None),
                event(EventKind::Rated, 6000, Some(7), None),
            ],
            names: [(7, "Ann"), (2, "Alice"), (3, "Bob")]
                .into_iter()
                .map(|(id, name)| (UserId(id), name.to_owned()))
                .collect(),
        }
    }

    #[test]
    fn a_transcript_tells_what_happened_between_the_messages_in_order() {
        let text = transcript().as_text("https://help.example");
        let lines: Vec<&str> = text.lines().skip(5).collect();
        assert_eq!(
            lines,
            [
                "1970-01-01 00:00:01 UTC  Ann: hello",
                "1970-01-01 00:00:01 UTC  -- Assigned to Alice",
                "1970-01-01 00:00:02 UTC  Alice: hi, Alice here",
                "1970-01-01 00:00:02 UTC  -- Alice transferred the conversation to Bob",
                "1970-01-01 00:00:03 UTC  Ann: [image photo.png, image/png, 12.3 KiB] \
                 https://help.example/api/attachments/9 (staff sign-in needed)",
                "1970-01-01 00:00:05 UTC  -- Resolved by Bob",
                "1970-01-01 00:00:06 UTC  -- Ann rated the conversation 5/5: quick",
            ]
        );
    }

    #[test]
    fn a_transcript_heading_names_the_customer_and_the_outcome() {
        let text = transcript().as_text("");
        assert!(text.starts_with(
            "Conversation 1\nCustomer: Ann (visitor-1, id 7, ann@example.com)\n\
             Started: 1970-01-01 00:00:01 UTC\nStatus: resolved 1970-01-01 00:00:05 UTC\n"
        ));
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(12_600), "12.3 KiB");
        assert_eq!(human_size(3 * 1024 * 1024), "3.0 MiB");
    }
}
