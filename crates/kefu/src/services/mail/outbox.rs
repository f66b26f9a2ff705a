//! The outbox: every node sends what is due, each row claimed first with a conditional `UPDATE`
//! (`claimed_until`), so that two nodes never send one mail. A recipient gets at most one mail
//! per `mail_recipient_interval`: a mail that comes sooner waits, and what waited goes out as one
//! digest when the time is up. A failed attempt is tried again after a pause that doubles (from
//! `mail_retry_ms` to an hour); a mail is given up after 24 hours of failures.

use std::{sync::Arc, sync::atomic::Ordering, time::Duration};

use lettre::{
    AsyncTransport, Message,
    message::{
        Mailbox,
        header::{ContentType, Header, HeaderName, HeaderValue},
    },
};
use tokio_util::sync::CancellationToken;

use super::{Inner, templates};
use crate::{domain::now_millis, store::OutboxMail};

/// How long a claimed mail is this node's to send before another may try.
const CLAIM_FOR: Duration = Duration::from_secs(120);
/// A mail that has failed for this long is given up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The longest pause between two attempts.
const MAX_PAUSE: Duration = Duration::from_secs(3600);
/// Mails looked at per round.
const PER_ROUND: i64 = 50;

pub(super) async fn run(inner: Arc<Inner>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(inner.config.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        // An SMTP server that hangs must not hold up a shutdown.
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = round(&inner) => {}
        }
    }
}

async fn round(inner: &Inner) {
    match inner.store.pending_mail_count().await {
        Ok(n) => inner
            .metrics
            .mail
            .pending
            .store(n.max(0) as u64, Ordering::Relaxed),
        Err(e) => {
            tracing::debug!(error = %e, "counting the outbox");
            return;
        }
    }
    let now = now_millis();
    let due = match inner.store.due_mails(now, PER_ROUND).await {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(error = %e, "reading the outbox");
            return;
        }
    };
    for mail in due {
        if let Err(e) = send_one(inner, mail).await {
            tracing::warn!(error = %e, "the outbox could not record a send");
        }
    }
}

/// Sends `mail` (with whatever else waits for its recipient, as one digest), or makes it wait.
async fn send_one(inner: &Inner, mail: OutboxMail) -> Result<(), crate::store::StoreError> {
    let store = &inner.store;
    let now = now_millis();
    if !store
        .claim_mail(mail.id, now, now + CLAIM_FOR.as_millis() as i64)
        .await?
    {
        return Ok(());
    }
    let mut batch = vec![mail];
    if batch[0].kind != "transcript" {
        let interval = inner.config.recipient_interval.as_millis() as i64;
        if let Some(last) = store.last_mailed_at(&batch[0].recipient).await?
            && now < last + interval
        {
            return store
                .mail_postponed(batch[0].id, last + interval, None)
                .await;
        }
        for other in store.unsent_mails_to(&batch[0].recipient).await? {
            if other.id != batch[0].id
                && store
                    .claim_mail(other.id, now, now + CLAIM_FOR.as_millis() as i64)
                    .await?
            {
                batch.push(other);
            }
        }
        batch.sort_by_key(|m| m.id);
    }
    let retry = batch.iter().any(|m| m.attempts > 0);
    if retry {
        inner.metrics.mail.retried.inc();
    }
    let message = match compose(inner, &batch) {
        Ok(message) => message,
        Err(error) => {
            // Nothing will make this mail valid: give it up now.
            tracing::warn!(%error, recipient = %batch[0].recipient, "a mail cannot be built");
            inner.metrics.mail.failed.inc();
            inner.metrics.mail.given_up.inc();
            for m in &batch {
                store
                    .mail_postponed(m.id, now, Some((&error.to_string(), Some(now))))
                    .await?;
            }
            return Ok(());
        }
    };
    let transport = inner.transport.as_ref().expect("the outbox runs with SMTP");
    match transport.send(message).await {
        Ok(_) => {
            inner.metrics.mail.sent.inc();
            let ids: Vec<i64> = batch.iter().map(|m| m.id).collect();
            tracing::info!(
                recipient = %batch[0].recipient,
                mails = ids.len(),
                kind = %batch[0].kind,
                "mail sent"
            );
            store.mails_sent(&ids, now_millis()).await
        }
        Err(error) => {
            inner.metrics.mail.failed.inc();
            let error = error.to_string();
            for m in &batch {
                let attempts = m.attempts + 1;
                let give_up = now - m.created_at >= GIVE_UP_AFTER.as_millis() as i64;
                if give_up {
                    inner.metrics.mail.given_up.inc();
                    tracing::warn!(%error, recipient = %m.recipient, "a mail is given up");
                } else {
                    tracing::info!(%error, attempts, "sending a mail failed; it is tried again");
                }
                let next = now + pause(inner.config.retry, attempts).as_millis() as i64;
                store
                    .mail_postponed(m.id, next, Some((&error, give_up.then_some(now))))
                    .await?;
            }
            Ok(())
        }
    }
}

/// The pause after the `attempts`-th failure: `first`, doubled each time, at most an hour.
pub fn pause(first: Duration, attempts: i64) -> Duration {
    let doublings = attempts.clamp(1, 20) as u32 - 1;
    first
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(MAX_PAUSE)
}

/// One message for `batch` (oldest first): the mail itself, or a digest of them all, threaded
/// under the newest.
fn compose(inner: &Inner, batch: &[OutboxMail]) -> anyhow::Result<Message> {
    let newest = batch.last().expect("a batch is not empty");
    let (subject, text) = if batch.len() == 1 {
        (newest.subject.clone(), newest.body_text.clone())
    } else {
        let parts: Vec<(&str, &str)> = batch
            .iter()
            .map(|m| (m.subject.as_str(), m.body_text.as_str()))
            .collect();
        let digest = templates::digest(&parts);
        (digest.subject, digest.text)
    };
    let from = inner
        .config
        .from
        .clone()
        .expect("the outbox runs with a sender");
    let to: Mailbox = newest.recipient.parse()?;
    let mut builder = Message::builder()
        .from(from.clone())
        .reply_to(inner.config.reply_to.clone().unwrap_or(from))
        .to(to)
        .subject(subject)
        .message_id(Some(newest.message_id.clone()))
        .header(AutoSubmitted);
    if let Some(in_reply_to) = &newest.in_reply_to {
        builder = builder.in_reply_to(in_reply_to.clone());
    }
    if let Some(references) = &newest.references {
        builder = builder.references(references.clone());
    }
    if let Some(url) = batch.iter().rev().find_map(|m| m.unsubscribe_url.clone()) {
        builder = builder
            .header(ListUnsubscribe(format!("<{url}>")))
            .header(ListUnsubscribePost);
    }
    let message = match (batch.len(), &newest.body_html) {
        (1, Some(html)) => builder.multipart(
            lettre::message::MultiPart::alternative_plain_html(text, html.clone()),
        )?,
        _ => builder.header(ContentType::TEXT_PLAIN).body(text)?,
    };
    Ok(message)
}

/// `List-Unsubscribe: <url>` (RFC 2369).
#[derive(Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_owned()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058).
#[derive(Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".to_owned())
    }
}

/// `Auto-Submitted: auto-generated` (RFC 3834): no vacation replies to kefu's mails.
#[derive(Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_doubles_from_the_first_up_to_an_hour() {
        let first = Duration::from_secs(30);
        assert_eq!(pause(first, 1), Duration::from_secs(30));
        assert_eq!(pause(first, 2), Duration::from_secs(60));
        assert_eq!(pause(first, 4), Duration::from_secs(240));
        assert_eq!(pause(first, 50), MAX_PAUSE);
    }

    #[test]
    fn retries_span_more_than_a_day_before_a_mail_is_given_up() {
        // Attempts keep coming at most an hour apart until 24 hours have passed.
        let total: Duration = (1..=40).map(|n| pause(Duration::from_secs(30), n)).sum();
        assert!(total > GIVE_UP_AFTER);
    }
}
