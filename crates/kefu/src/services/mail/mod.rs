//! E-mail, both ways (docs/mail.md).
//!
//! - [`outbox`]: the outbox in the database, sent over SMTP (lettre) by whichever node claims a
//!   row; per-recipient limits and digests; retries with a growing pause for 24 hours; metrics.
//! - [`triggers`]: the sweep (under a lease: one node at a time) that queues mails: a customer
//!   waits and no agent is online; a customer has had no answer; an agent's reply the customer
//!   left without reading.
//! - [`templates`]: the words of each mail.
//! - [`links`]: signed resume and unsubscribe links, Message-IDs that name their conversation,
//!   the inbound webhook's signature.
//! - [`inbound`]: a reply's raw MIME, parsed and trimmed of its quoted history.
//! - [`imap`]: the poller of the mailbox customers reply to (under a lease).
//!
//! Mail never stands in the way of chat: a trigger only queues a row; the SMTP server's failures
//! are the outbox's business.

pub mod imap;
pub mod inbound;
pub mod links;
pub mod outbox;
pub mod templates;
pub mod triggers;

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use lettre::{AsyncSmtpTransport, Tokio1Executor, message::Mailbox};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{
    Error, Result,
    accounts::Accounts,
    auth::Identity,
    chat::{Chat, SendRequest},
    transcripts::Transcripts,
};
use crate::{
    config::Settings,
    domain::{ClientMsgId, ConversationId, Role, User, now_millis},
    metrics::Metrics,
    store::{NewMail, Store, StoreError},
};

pub use links::Links;

/// The longest delay before an unseen reply is mailed.
pub const MAX_REPLY_DELAY_SECS: u64 = 120;

/// What the mail service was configured with.
pub(crate) struct Config {
    pub from: Option<Mailbox>,
    pub reply_to: Option<Mailbox>,
    /// The name customers know the shop by (the sender's name, else "us").
    pub shop: String,
    pub public_url: String,
    pub every: Duration,
    pub unanswered_after: Duration,
    pub reply_delay: Duration,
    pub recipient_interval: Duration,
    pub retry: Duration,
    pub imap_url: Option<String>,
    pub imap_poll: Duration,
    pub inbound_secret: Option<String>,
}

/// The mail service; cheap to clone.
#[derive(Clone)]
pub struct Mail {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub store: Store,
    pub chat: Chat,
    pub transcripts: Transcripts,
    pub accounts: Accounts,
    pub links: Links,
    pub metrics: Arc<Metrics>,
    /// This node's name: the holder of leases.
    pub node: String,
    pub config: Config,
    /// `None`: no `smtp_url`, nothing is sent (nor queued).
    pub transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
}

/// What became of an inbound reply.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub conversation: ConversationId,
    /// Read before (two polls, two nodes, a webhook retried): stored once.
    pub duplicate: bool,
}

#[allow(clippy::too_many_arguments)]
impl Mail {
    pub fn new(
        settings: &Settings,
        secret: &[u8],
        store: Store,
        chat: Chat,
        transcripts: Transcripts,
        accounts: Accounts,
        metrics: Arc<Metrics>,
        node: String,
    ) -> anyhow::Result<Self> {
        let parse = |what: &str, value: &str| -> anyhow::Result<Mailbox> {
            value
                .parse::<Mailbox>()
                .with_context(|| format!("{what} {value:?} is not an e-mail address"))
        };
        let from = settings
            .smtp_from
            .as_deref()
            .map(|v| parse("KEFU_SMTP_FROM", v))
            .transpose()?;
        let reply_to = settings
            .mail_reply_to
            .as_deref()
            .map(|v| parse("KEFU_MAIL_REPLY_TO", v))
            .transpose()?;
        let transport = match &settings.smtp_url {
            None => None,
            Some(url) => {
                if from.is_none() {
                    anyhow::bail!("KEFU_SMTP_URL needs KEFU_SMTP_FROM, the sender of kefu's mails");
                }
                Some(
                    AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                        .context("KEFU_SMTP_URL is not an smtp:// or smtps:// URL")?
                        .timeout(Some(Duration::from_secs(30)))
                        .build(),
                )
            }
        };
        let domain = from
            .as_ref()
            .or(reply_to.as_ref())
            .map(|m| m.email.domain().to_owned())
            .unwrap_or_else(|| "kefu.invalid".to_owned());
        let shop = from
            .as_ref()
            .and_then(|m| m.name.clone())
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "us".to_owned());
        let imap_url = settings.imap_url.as_ref().map(|u| u.expose().to_owned());
        if let Some(url) = &imap_url {
            imap::Mailbox::parse(url).context("KEFU_IMAP_URL")?;
        }
        let config = Config {
            from,
            reply_to,
            shop,
            public_url: settings.public_url(),
            every: Duration::from_millis(settings.mail_every_ms.max(50)),
            unanswered_after: Duration::from_secs(settings.mail_unanswered_after),
            reply_delay: Duration::from_secs(settings.mail_reply_delay.min(MAX_REPLY_DELAY_SECS)),
            recipient_interval: Duration::from_secs(settings.mail_recipient_interval),
            retry: Duration::from_millis(settings.mail_retry_ms.max(10)),
            imap_url,
            imap_poll: Duration::from_millis(settings.imap_poll_ms.max(100)),
            inbound_secret: settings
                .mail_inbound_secret
                .as_ref()
                .map(|s| s.expose().to_owned()),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                chat,
                transcripts,
                accounts,
                links: Links::new(secret, &domain),
                metrics,
                node,
                config,
                transport,
            }),
        })
    }

    /// `true` when kefu sends mail (`smtp_url` is set).
    pub fn sends(&self) -> bool {
        self.inner.transport.is_some()
    }

    /// Starts the outbox and the triggers (with SMTP), and the IMAP poller (with a mailbox).
    pub fn start(&self, tasks: &mut JoinSet<()>, stop: CancellationToken) {
        if self.sends() {
            tasks.spawn(outbox::run(self.inner.clone(), stop.clone()));
            tasks.spawn(triggers::run(self.inner.clone(), stop.clone()));
        }
        if self.inner.config.imap_url.is_some() {
            tasks.spawn(imap::run(self.inner.clone(), stop));
        }
    }

    /// `POST /api/visitors/resume`: the session of the customer a resume link names.
    #[tracing::instrument(skip_all)]
    pub async fn resume(&self, token: &str) -> Result<(String, User)> {
        let user = self
            .inner
            .links
            .check_resume(token, now_millis())
            .ok_or(Error::InvalidToken("the link is not valid or has expired"))?;
        match self.inner.accounts.customer_session(user).await {
            Err(Error::NotFound(_)) => Err(Error::InvalidToken("the link is not valid")),
            other => other,
        }
    }

    /// The customer an unsubscribe link names gets no more mails of agents' replies.
    #[tracing::instrument(skip_all)]
    pub async fn unsubscribe(&self, token: &str) -> Result<()> {
        let user = self
            .inner
            .links
            .check_unsubscribe(token)
            .ok_or(Error::InvalidToken("the unsubscribe link is not valid"))?;
        match self.inner.store.set_mail_opt_out(user, true).await {
            Err(StoreError::NotFound) => {
                Err(Error::InvalidToken("the unsubscribe link is not valid"))
            }
            other => Ok(other?),
        }
    }

    /// Checks an unsubscribe link without acting on it (the page with its button).
    pub fn unsubscribe_valid(&self, token: &str) -> bool {
        self.inner.links.check_unsubscribe(token).is_some()
    }

    /// Queues the transcript of the customer's own conversation `id` to its e-mail; the address.
    #[tracing::instrument(skip_all, fields(user = %me.user_id, conversation = %id))]
    pub async fn email_transcript(&self, me: Identity, id: ConversationId) -> Result<String> {
        let inner = &self.inner;
        if !self.sends() {
            return Err(Error::Forbidden("this server sends no e-mail"));
        }
        if me.role != Role::Customer {
            return Err(Error::Forbidden(
                "only the customer has its transcript mailed",
            ));
        }
        let transcript = inner.transcripts.for_customer(me, id).await?;
        let (email, _) = inner.store.mail_contact(me.user_id).await?;
        let email = email.ok_or_else(|| {
            Error::InvalidPayload(
                "kefu has no e-mail address for you: give one first (POST /api/visitors or the \
                 offline form)"
                    .into(),
            )
        })?;
        let now = now_millis();
        let base = &inner.config.public_url;
        let resume = templates::resume_link(base, &inner.links.resume_token(me.user_id, now));
        let written =
            templates::transcript(&inner.config.shop, id, &transcript.as_text(base), &resume);
        inner
            .store
            .enqueue_mails(
                None,
                &[NewMail {
                    recipient: email.clone(),
                    kind: "transcript",
                    conversation: Some(id),
                    subject: written.subject,
                    body_text: written.text,
                    body_html: None,
                    message_id: inner.links.message_id(Some(id)),
                    in_reply_to: None,
                    references: None,
                    unsubscribe_url: None,
                    due_at: now,
                }],
                now,
            )
            .await?;
        Ok(email)
    }

    /// `POST /api/mail/inbound`: a provider's signed webhook with a reply's raw MIME.
    pub async fn webhook(&self, signature: Option<&str>, body: &[u8]) -> Result<Received> {
        let secret = self
            .inner
            .config
            .inbound_secret
            .as_deref()
            .ok_or(Error::Forbidden(
                "the inbound webhook is off: set KEFU_MAIL_INBOUND_SECRET",
            ))?;
        links::verify_webhook(secret.as_bytes(), signature, body, now_millis() / 1000).map_err(
            |e| {
                tracing::debug!(?e, "an inbound webhook's signature was refused");
                Error::InvalidToken(e.message())
            },
        )?;
        self.inner.receive(body).await
    }
}

/// Why a reply was not taken, as the IMAP poller needs to know: try again later or never.
pub(crate) fn transient(error: &Error) -> bool {
    matches!(
        error,
        Error::Unavailable | Error::CannotWrite | Error::RateLimited { .. } | Error::Other(_)
    )
}

impl Inner {
    /// A reply by e-mail: matched to its conversation by the kefu Message-ID it answers, its
    /// sender checked against the customer's e-mail, and appended as the customer's message
    /// (with a clientMsgId from its Message-ID, so that a mail read twice is stored once). When
    /// that conversation has ended, the message starts the customer's next one, as any first
    /// message does.
    #[tracing::instrument(skip_all)]
    pub(crate) async fn receive(&self, raw: &[u8]) -> Result<Received> {
        let mail = inbound::parse(raw).map_err(|e| Error::InvalidPayload(e.message().into()))?;
        let conversation = mail
            .answers
            .iter()
            .find_map(|id| self.links.conversation_of(id))
            .ok_or(Error::NotFound(
                "the mail answers no conversation of this server",
            ))?;
        let record = match self.store.conversation(conversation).await {
            Ok(c) => c,
            Err(StoreError::NotFound) => return Err(Error::NotFound("no such conversation")),
            Err(e) => return Err(e.into()),
        };
        let customer = record.customer_id;
        let (email, _) = match self.store.mail_contact(customer).await {
            Ok(contact) => contact,
            Err(StoreError::NotFound) => {
                return Err(Error::Forbidden("the conversation's customer cannot write"));
            }
            Err(e) => return Err(e.into()),
        };
        if email.map(|e| e.trim().to_lowercase()) != Some(mail.from.clone()) {
            return Err(Error::Forbidden(
                "the sender is not the conversation's customer",
            ));
        }
        let client_msg_id = client_msg_id(mail.message_id.as_deref().unwrap_or(&mail.text));
        let message = self
            .chat
            .send_now(
                Identity {
                    user_id: customer,
                    role: Role::Customer,
                },
                SendRequest {
                    receiver: None,
                    content: mail.text,
                    client_msg_id: Some(client_msg_id.as_str().to_owned()),
                    attachment_id: None,
                },
            )
            .await?;
        let received = Received {
            conversation: message.conversation_id,
            duplicate: message.duplicate,
        };
        tracing::info!(
            conversation = %received.conversation,
            duplicate = received.duplicate,
            "a reply by e-mail"
        );
        Ok(received)
    }
}

/// The clientMsgId of an inbound mail: from its Message-ID, so that every reading of one mail
/// (two polls, two nodes, a webhook retried) is the same message.
pub fn client_msg_id(message_id: &str) -> ClientMsgId {
    let digest = ring::digest::digest(&ring::digest::SHA256, message_id.trim().as_bytes());
    ClientMsgId::parse(format!("mail-{}", links::hex(&digest.as_ref()[..20])))
        .expect("45 printable characters")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_message_id_always_gives_one_client_msg_id() {
        let a = client_msg_id("<abc@mail.example.com>");
        assert_eq!(a.as_str(), client_msg_id("<abc@mail.example.com>").as_str());
        assert_ne!(a.as_str(), client_msg_id("<abd@mail.example.com>").as_str());
        assert!(a.as_str().starts_with("mail-") && a.as_str().len() <= 64);
    }
}
