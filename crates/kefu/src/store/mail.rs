//! E-mail: the outbox (rows claimed one at a time with a conditional `UPDATE`, so that two nodes
//! never send one), the marks that make each mail trigger fire once per conversation, opt-outs,
//! and the reads the triggers make.

use sqlx::{Row, any::AnyRow};

use super::{Store, StoreError, optional_text, sql, text};
use crate::domain::{ConversationId, UserId};

/// A mail to queue.
#[derive(Debug, Clone)]
pub struct NewMail {
    pub recipient: String,
    pub kind: &'static str,
    pub conversation: Option<ConversationId>,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub references: Option<String>,
    pub unsubscribe_url: Option<String>,
    pub due_at: i64,
}

/// A mail waiting in the outbox.
#[derive(Debug, Clone)]
pub struct OutboxMail {
    pub id: i64,
    pub recipient: String,
    pub kind: String,
    pub conversation: Option<ConversationId>,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub references: Option<String>,
    pub unsubscribe_url: Option<String>,
    pub due_at: i64,
    pub attempts: i64,
    pub created_at: i64,
}

/// What a trigger records with the mails it queues, in the same transaction: a mark already
/// taken (by another node, or before a restart) means the mails are not queued again.
#[derive(Debug, Clone, Copy)]
pub enum MailMark {
    /// Agents were told that the conversation waits with nobody online.
    Waiting {
        conversation: ConversationId,
        at: i64,
    },
    /// The agent was told that the customer's message `seq` has no answer.
    Unanswered {
        conversation: ConversationId,
        seq: i64,
    },
    /// The customer was mailed the agents' messages up to `seq`.
    CustomerReply {
        conversation: ConversationId,
        seq: i64,
    },
}

/// A conversation whose customer went away, with what was mailed and read so far.
#[derive(Debug, Clone)]
pub struct GoneCustomer {
    pub conversation: ConversationId,
    pub customer: UserId,
    pub email: String,
    pub agent: Option<UserId>,
    pub mailed_seq: i64,
    pub read_seq: i64,
}

/// A conversation whose last message is the customer's, older than asked.
#[derive(Debug, Clone, Copy)]
pub struct Unanswered {
    pub conversation: ConversationId,
    pub customer: UserId,
    pub agent: UserId,
    pub seq: i64,
}

/// A conversation in the queue no agent has been told of yet.
#[derive(Debug, Clone, Copy)]
pub struct WaitingUnmailed {
    pub conversation: ConversationId,
    pub customer: UserId,
}

macro_rules! outbox_columns {
    () => {
        "id, recipient, kind, conversation_id, subject, body_text, body_html, message_id, \
         in_reply_to, refs, unsubscribe_url, due_at, attempts, created_at"
    };
}

fn outbox_from_row(row: &AnyRow) -> Result<OutboxMail, StoreError> {
    Ok(OutboxMail {
        id: row.try_get("id")?,
        recipient: text(row, "recipient")?,
        kind: text(row, "kind")?,
        conversation: row
            .try_get::<Option<i64>, _>("conversation_id")?
            .map(ConversationId),
        subject: text(row, "subject")?,
        body_text: text(row, "body_text")?,
        body_html: optional_text(row, "body_html")?,
        message_id: text(row, "message_id")?,
        in_reply_to: optional_text(row, "in_reply_to")?,
        references: optional_text(row, "refs")?,
        unsubscribe_url: optional_text(row, "unsubscribe_url")?,
        due_at: row.try_get("due_at")?,
        attempts: row.try_get("attempts")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Queues `mails`, and with them takes `mark` if given: `false` (nothing queued) when the mark
    /// was taken already.
    pub async fn enqueue_mails(
        &self,
        mark: Option<MailMark>,
        mails: &[NewMail],
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        if let Some(mark) = mark {
            let taken = match mark {
                MailMark::Waiting { conversation, at } => sqlx::query(sql!(
                    self,
                    "UPDATE conversations SET mailed_waiting_at = ? \
                     WHERE id = ? AND mailed_waiting_at IS NULL"
                ))
                .bind(at)
                .bind(conversation.0),
                MailMark::Unanswered { conversation, seq } => sqlx::query(sql!(
                    self,
                    "UPDATE conversations SET mailed_unanswered_seq = ? \
                     WHERE id = ? AND mailed_unanswered_seq < ?"
                ))
                .bind(seq)
                .bind(conversation.0)
                .bind(seq),
                MailMark::CustomerReply { conversation, seq } => sqlx::query(sql!(
                    self,
                    "UPDATE conversations SET mailed_customer_seq = ? \
                     WHERE id = ? AND mailed_customer_seq < ?"
                ))
                .bind(seq)
                .bind(conversation.0)
                .bind(seq),
            }
            .execute(&mut **tx)
            .await?;
            if taken.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
        }
        for mail in mails {
            sqlx::query(sql!(
                self,
                "INSERT INTO mail_outbox (recipient, kind, conversation_id, subject, body_text, \
                 body_html, message_id, in_reply_to, refs, unsubscribe_url, due_at, attempts, \
                 created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)"
            ))
            .bind(&mail.recipient)
            .bind(mail.kind)
            .bind(mail.conversation.map(|c| c.0))
            .bind(&mail.subject)
            .bind(&mail.body_text)
            .bind(mail.body_html.as_deref())
            .bind(&mail.message_id)
            .bind(mail.in_reply_to.as_deref())
            .bind(mail.references.as_deref())
            .bind(mail.unsubscribe_url.as_deref())
            .bind(mail.due_at)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Mails due now and claimed by nobody, oldest first.
    pub async fn due_mails(&self, now: i64, limit: i64) -> Result<Vec<OutboxMail>, StoreError> {
        let rows = sqlx::query(sql!(
            self,
            concat!(
                "SELECT ",
                outbox_columns!(),
                " FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL AND due_at <= ? \
                 AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY due_at, id LIMIT ?"
            )
        ))
        .bind(now)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(outbox_from_row).collect()
    }

    /// Every mail not yet sent to `recipient` but a transcript (what a digest gathers), oldest
    /// first, whoever holds it.
    pub async fn unsent_mails_to(&self, recipient: &str) -> Result<Vec<OutboxMail>, StoreError> {
        let rows = sqlx::query(sql!(
            self,
            concat!(
                "SELECT ",
                outbox_columns!(),
                " FROM mail_outbox WHERE recipient = ? AND sent_at IS NULL AND failed_at IS NULL \
                 AND kind <> 'transcript' ORDER BY id"
            )
        ))
        .bind(recipient)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(outbox_from_row).collect()
    }

    /// Claims the mail `id` for this node until `until`: `false` when another node holds it, or
    /// it was sent or given up meanwhile.
    pub async fn claim_mail(&self, id: i64, now: i64, until: i64) -> Result<bool, StoreError> {
        let claimed = sqlx::query(sql!(
            self,
            "UPDATE mail_outbox SET claimed_until = ? WHERE id = ? AND sent_at IS NULL \
             AND failed_at IS NULL AND (claimed_until IS NULL OR claimed_until < ?)"
        ))
        .bind(until)
        .bind(id)
        .bind(now)
        .execute(&mut *self.write_conn().await?)
        .await?;
        Ok(claimed.rows_affected() == 1)
    }

    /// When `recipient` was last sent a mail that counts against its limit (not a transcript).
    pub async fn last_mailed_at(&self, recipient: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(sql!(
            self,
            "SELECT MAX(sent_at) AS last FROM mail_outbox \
             WHERE recipient = ? AND sent_at IS NOT NULL AND kind <> 'transcript'"
        ))
        .bind(recipient)
        .fetch_one(&mut *self.conn().await?)
        .await?;
        Ok(row.try_get::<Option<i64>, _>("last")?)
    }

    /// The mails `ids` went out at `now`.
    pub async fn mails_sent(&self, ids: &[i64], now: i64) -> Result<(), StoreError> {
        let mut conn = self.write_conn().await?;
        for id in ids {
            sqlx::query(sql!(
                self,
                "UPDATE mail_outbox SET sent_at = ?, claimed_until = NULL, last_error = NULL \
                 WHERE id = ?"
            ))
            .bind(now)
            .bind(*id)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// A claimed mail waits until `due_at` (its recipient's limit; or a failed attempt, counted
    /// with its error); `failed_at` gives it up.
    pub async fn mail_postponed(
        &self,
        id: i64,
        due_at: i64,
        failed: Option<(&str, Option<i64>)>,
    ) -> Result<(), StoreError> {
        let mut conn = self.write_conn().await?;
        match failed {
            None => sqlx::query(sql!(
                self,
                "UPDATE mail_outbox SET due_at = ?, claimed_until = NULL WHERE id = ?"
            ))
            .bind(due_at)
            .bind(id),
            Some((error, failed_at)) => sqlx::query(sql!(
                self,
                "UPDATE mail_outbox SET due_at = ?, claimed_until = NULL, \
                 attempts = attempts + 1, last_error = ?, failed_at = ? WHERE id = ?"
            ))
            .bind(due_at)
            .bind(error)
            .bind(failed_at)
            .bind(id),
        }
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// The threading of the last mail to `recipient` about `conversation`: its Message-ID and
    /// References, what the next one answers.
    pub async fn last_thread(
        &self,
        recipient: &str,
        conversation: ConversationId,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        let row = sqlx::query(sql!(
            self,
            "SELECT message_id, refs FROM mail_outbox WHERE recipient = ? AND conversation_id = ? \
             ORDER BY id DESC LIMIT 1"
        ))
        .bind(recipient)
        .bind(conversation.0)
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        row.map(|row| Ok((text(&row, "message_id")?, optional_text(&row, "refs")?)))
            .transpose()
    }

    /// Mails neither sent nor given up.
    pub async fn pending_mail_count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL",
        )
        .fetch_one(&mut *self.conn().await?)
        .await?;
        Ok(row.try_get("n")?)
    }

    /// Conversations in the queue that no agent was told of.
    pub async fn waiting_unmailed(&self) -> Result<Vec<WaitingUnmailed>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, customer_id FROM conversations WHERE status = 'open' \
             AND agent_id IS NULL AND mailed_waiting_at IS NULL ORDER BY id LIMIT 100",
        )
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(WaitingUnmailed {
                    conversation: ConversationId(row.try_get("id")?),
                    customer: UserId(row.try_get("customer_id")?),
                })
            })
            .collect()
    }

    /// Open, assigned conversations whose last message is the customer's, sent at `before` or
    /// earlier, and not yet mailed about.
    pub async fn unanswered(&self, before: i64) -> Result<Vec<Unanswered>, StoreError> {
        let rows = sqlx::query(sql!(
            self,
            "SELECT c.id, c.customer_id, c.agent_id, c.last_seq FROM conversations c \
             JOIN messages m ON m.conversation_id = c.id AND m.seq = c.last_seq \
             WHERE c.status = 'open' AND c.agent_id IS NOT NULL \
             AND c.mailed_unanswered_seq < c.last_seq AND m.sender_id = c.customer_id \
             AND m.created_at <= ? ORDER BY c.id LIMIT 100"
        ))
        .bind(before)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Unanswered {
                    conversation: ConversationId(row.try_get("id")?),
                    customer: UserId(row.try_get("customer_id")?),
                    agent: UserId(row.try_get("agent_id")?),
                    seq: row.try_get("last_seq")?,
                })
            })
            .collect()
    }

    /// Conversations whose customer went away, has an e-mail and did not opt out, with messages
    /// after the last one mailed.
    pub async fn gone_customers(&self) -> Result<Vec<GoneCustomer>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.id, c.customer_id, c.agent_id, c.mailed_customer_seq, u.email, \
             COALESCE(r.last_read_seq, 0) AS read_seq FROM conversations c \
             JOIN users u ON u.id = c.customer_id \
             LEFT JOIN read_states r ON r.user_id = c.customer_id AND r.conversation_id = c.id \
             WHERE c.customer_gone_at IS NOT NULL AND u.email IS NOT NULL \
             AND u.mail_opt_out = 0 AND c.last_seq > c.mailed_customer_seq \
             ORDER BY c.id LIMIT 200",
        )
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(GoneCustomer {
                    conversation: ConversationId(row.try_get("id")?),
                    customer: UserId(row.try_get("customer_id")?),
                    agent: row.try_get::<Option<i64>, _>("agent_id")?.map(UserId),
                    email: text(row, "email")?,
                    mailed_seq: row.try_get("mailed_customer_seq")?,
                    read_seq: row.try_get("read_seq")?,
                })
            })
            .collect()
    }

    /// A user's e-mail (if any) and whether it opted out of mail.
    pub async fn mail_contact(&self, user: UserId) -> Result<(Option<String>, bool), StoreError> {
        let row = sqlx::query(sql!(
            self,
            "SELECT email, mail_opt_out FROM users WHERE id = ? AND disabled = 0"
        ))
        .bind(user.0)
        .fetch_one(&mut *self.conn().await?)
        .await?;
        Ok((
            optional_text(&row, "email")?,
            row.try_get::<i64, _>("mail_opt_out")? != 0,
        ))
    }

    /// Enabled staff with an e-mail.
    pub async fn staff_mail_addresses(&self) -> Result<Vec<(UserId, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, email FROM users WHERE role <> 'customer' AND disabled = 0 \
             AND email IS NOT NULL ORDER BY id",
        )
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|row| Ok((UserId(row.try_get("id")?), text(row, "email")?)))
            .collect()
    }

    pub async fn set_mail_opt_out(&self, user: UserId, out: bool) -> Result<(), StoreError> {
        let done = sqlx::query(sql!(self, "UPDATE users SET mail_opt_out = ? WHERE id = ?"))
            .bind(i64::from(out))
            .bind(user.0)
            .execute(&mut *self.write_conn().await?)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Sets a user's e-mail (staff: where mail triggers reach them).
    pub async fn set_email(&self, user: UserId, email: Option<&str>) -> Result<(), StoreError> {
        sqlx::query(sql!(self, "UPDATE users SET email = ? WHERE id = ?"))
            .bind(email)
            .bind(user.0)
            .execute(&mut *self.write_conn().await?)
            .await?;
        Ok(())
    }
}
