//! When nobody can answer: what the widget is told (open, busy, away, closed), the offline form
//! (留言) that leaves a message with the customer's contact details, and what kefu knows of them.

use std::time::Duration;

use super::{Chat, SendRequest};
use crate::{
    domain::{BusinessHours, ConversationId, DisplayName, Email, Role, now_millis},
    services::{Error, Result, auth::Identity, writer::Written},
    store::StoredMessage,
};

/// What a visitor can expect now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AvailabilityState {
    /// An agent can take the conversation now.
    Open,
    /// Agents are there but full: the newcomer waits in the queue.
    Busy,
    /// Within business hours, but no agent is online and available.
    Away,
    /// Outside business hours.
    Closed,
}

impl AvailabilityState {
    pub fn as_str(self) -> &'static str {
        match self {
            AvailabilityState::Open => "open",
            AvailabilityState::Busy => "busy",
            AvailabilityState::Away => "away",
            AvailabilityState::Closed => "closed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Availability {
    pub state: AvailabilityState,
    pub agents_available: i64,
    pub queue_length: i64,
    pub estimate_seconds: Option<i64>,
    pub opens_at: Option<i64>,
}

/// A customer's contact details as kefu knows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    /// `None` while the name is the one kefu made up ("Visitor 1a2b").
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// What the offline form sends.
#[derive(Debug, Clone, Default)]
pub struct OfflineMessage {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub content: String,
    pub client_msg_id: Option<String>,
}

/// A phone number as people write it: 3 to 32 of digits, spaces and `+-()`, with a digit.
fn parse_phone(phone: &str) -> Result<String> {
    let phone = phone.trim();
    let ok = (3..=32).contains(&phone.chars().count())
        && phone.chars().any(|c| c.is_ascii_digit())
        && phone
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    if !ok {
        return Err(Error::InvalidPayload(
            "phone must be 3 to 32 digits, spaces and + - ( )".into(),
        ));
    }
    Ok(phone.to_owned())
}

/// How long a sent offline message waits for the writer at most.
const WRITE_WAIT: Duration = Duration::from_secs(30);

impl Chat {
    /// What a visitor arriving now can expect, given the shop's business hours.
    pub async fn availability(&self, hours: &BusinessHours) -> Result<Availability> {
        let now = now_millis();
        self.roster.refresh_if_stale(&self.store).await?;
        let online = self.delivery.online_agents().await;
        let (available, with_room) = self.roster.available_with_room(&online);
        let queue_length = self.queue_length().await?;
        let state = if !hours.is_open(now) {
            AvailabilityState::Closed
        } else if available == 0 {
            AvailabilityState::Away
        } else if with_room > 0 && queue_length == 0 {
            AvailabilityState::Open
        } else {
            AvailabilityState::Busy
        };
        let estimate_seconds = match state {
            AvailabilityState::Busy => Some(self.wait_estimate().await?.seconds(queue_length + 1)),
            _ => None,
        };
        Ok(Availability {
            state,
            agents_available: available,
            queue_length,
            estimate_seconds,
            opens_at: match state {
                AvailabilityState::Closed => hours.opens_at(now),
                _ => None,
            },
        })
    }

    /// The contact details kefu has for a customer.
    #[tracing::instrument(skip_all, fields(user = %me.user_id))]
    pub async fn contact(&self, me: Identity) -> Result<Contact> {
        if me.role != Role::Customer {
            return Err(Error::Forbidden("only customers have contact details here"));
        }
        let record = self.store.user(me.user_id).await?;
        let made_up = record
            .user
            .username
            .strip_prefix("visitor-")
            .and_then(|tag| tag.get(..4))
            .is_some_and(|tag| record.user.display_name == format!("Visitor {tag}"));
        Ok(Contact {
            name: (!made_up).then(|| record.user.display_name.clone()),
            email: record.email.filter(|e| !e.is_empty()),
            phone: self.store.phone_of(me.user_id).await?,
        })
    }

    /// The offline form: the contact details are kept, the message is written like any, and the
    /// conversation is marked left offline, so that it waits for the next agent however long the
    /// customer is away.
    #[tracing::instrument(skip_all, fields(user = %me.user_id))]
    pub async fn leave_offline(
        &self,
        me: Identity,
        form: OfflineMessage,
    ) -> Result<(StoredMessage, ConversationId)> {
        let known = self.contact(me).await?;
        let given = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let name = match (given(&form.name), &known.name) {
            (Some(name), _) => Some(DisplayName::parse(&name)?.as_str().to_owned()),
            (None, Some(_)) => None,
            (None, None) => return Err(Error::InvalidPayload("name is required".into())),
        };
        let email = match (given(&form.email), &known.email) {
            (Some(email), _) => Some(Email::parse(&email)?.as_str().to_owned()),
            (None, Some(_)) => None,
            (None, None) => return Err(Error::InvalidPayload("email is required".into())),
        };
        let phone = given(&form.phone).map(|p| parse_phone(&p)).transpose()?;
        if form.content.trim().is_empty() {
            return Err(Error::InvalidPayload("content is required".into()));
        }
        crate::domain::Content::parse(form.content.clone(), self.max_message_bytes)?;
        self.store
            .set_contact(
                me.user_id,
                name.as_deref(),
                email.as_deref(),
                phone.as_deref(),
            )
            .await?;
        let message = self
            .send_now(
                me,
                SendRequest {
                    receiver: None,
                    content: form.content,
                    client_msg_id: form.client_msg_id,
                    attachment_id: None,
                },
            )
            .await?;
        self.store.mark_offline(message.conversation_id).await?;
        Ok((message.clone(), message.conversation_id))
    }

    /// [`Chat::send`] for a caller that waits for the outcome (no connection, no turn).
    pub(crate) async fn send_now(
        &self,
        me: Identity,
        request: SendRequest,
    ) -> Result<StoredMessage> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let reply: crate::services::writer::Reply =
            Box::new(move |outcome: std::result::Result<Written<'_>, &Error>| {
                let _ = tx.send(outcome.map(|w| w.message.clone()).map_err(Error::again));
            });
        self.send(me, None, request, async {}, reply).await;
        match tokio::time::timeout(WRITE_WAIT, rx).await {
            Ok(Ok(outcome)) => outcome,
            _ => Err(Error::Unavailable),
        }
    }
}
