//! The sweep that queues mails, run by the node holding the lease `mail-triggers`. Each trigger
//! takes a mark on the conversation in the transaction that queues its mails, so that it fires
//! once whichever node runs it, and never again after a restart.
//!
//! - a conversation waits in the queue and no agent is online: every agent with an e-mail;
//! - the customer's last message has had no answer for `mail_unanswered_after`: its agent;
//! - an agent wrote and the customer had left (`customer_gone_at`) without reading it
//!   (`read_states`): after `mail_reply_delay`, the customer, unless it opted out.

use std::{collections::HashMap, sync::Arc};

use tokio_util::sync::CancellationToken;

use super::{Inner, templates};
use crate::{
    domain::{UserId, now_millis},
    services::Result,
    store::{GoneCustomer, MailMark, NewMail, Page, StoredMessage},
};

const LEASE: &str = "mail-triggers";

pub(super) async fn run(inner: Arc<Inner>, stop: CancellationToken) {
    let every = inner.config.every;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let hold_for = (every.as_millis() as i64 * 5).max(3000);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let now = now_millis();
        match inner
            .store
            .claim_lease(LEASE, &inner.node, now, hold_for)
            .await
        {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "claiming the mail triggers' lease");
                continue;
            }
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            outcome = sweep(&inner) => if let Err(error) = outcome {
                error.log("the mail triggers");
            }
        }
    }
    let _ = inner.store.release_lease(LEASE, &inner.node).await;
}

async fn sweep(inner: &Inner) -> Result<()> {
    waiting(inner).await?;
    if !inner.config.unanswered_after.is_zero() {
        unanswered(inner).await?;
    }
    gone_customers(inner).await
}

/// Conversations waiting while no agent is online, to every agent with an e-mail.
async fn waiting(inner: &Inner) -> Result<()> {
    let store = &inner.store;
    let waiting = store.waiting_unmailed().await?;
    if waiting.is_empty() {
        return Ok(());
    }
    let staff: Vec<UserId> = store
        .staff()
        .await?
        .into_iter()
        .filter(|r| !r.disabled)
        .map(|r| r.user.id)
        .collect();
    if inner.chat.online(&staff).await.into_iter().any(|on| on) {
        return Ok(());
    }
    let addresses = store.staff_mail_addresses().await?;
    if addresses.is_empty() {
        // Nobody to tell yet: the conversations stay unmarked, for the first agent given an
        // e-mail while they still wait.
        return Ok(());
    }
    let base = &inner.config.public_url;
    for conversation in waiting {
        let now = now_millis();
        let names = store.display_names(&[conversation.customer]).await?;
        let customer = name(&names, conversation.customer);
        let first = store
            .history(conversation.conversation, Page::After { seq: 0 }, 1)
            .await?
            .messages
            .first()
            .map(|m| format!("{customer}: {}", m.content))
            .unwrap_or_default();
        let link = templates::console_link(base, conversation.conversation);
        let written = templates::waiting(&customer, conversation.conversation, &first, &link);
        let mails: Vec<NewMail> = addresses
            .iter()
            .map(|(_, address)| NewMail {
                recipient: address.clone(),
                kind: "waiting",
                conversation: Some(conversation.conversation),
                subject: written.subject.clone(),
                body_text: written.text.clone(),
                body_html: None,
                message_id: inner.links.message_id(Some(conversation.conversation)),
                in_reply_to: None,
                references: None,
                unsubscribe_url: None,
                due_at: now,
            })
            .collect();
        store
            .enqueue_mails(
                Some(MailMark::Waiting {
                    conversation: conversation.conversation,
                    at: now,
                }),
                &mails,
                now,
            )
            .await?;
    }
    Ok(())
}

/// Conversations whose customer has waited too long for an answer, to their agent.
async fn unanswered(inner: &Inner) -> Result<()> {
    let store = &inner.store;
    let after = inner.config.unanswered_after;
    let now = now_millis();
    for found in store.unanswered(now - after.as_millis() as i64).await? {
        let mark = MailMark::Unanswered {
            conversation: found.conversation,
            seq: found.seq,
        };
        let (email, _) = store
            .mail_contact(found.agent)
            .await
            .unwrap_or((None, false));
        let Some(email) = email else {
            store.enqueue_mails(Some(mark), &[], now).await?;
            continue;
        };
        let names = store.display_names(&[found.customer]).await?;
        let customer = name(&names, found.customer);
        let last = store
            .history(found.conversation, Page::After { seq: found.seq - 1 }, 1)
            .await?
            .messages
            .first()
            .map(|m| m.content.clone())
            .unwrap_or_default();
        let link = templates::console_link(&inner.config.public_url, found.conversation);
        let minutes = after.as_secs().div_ceil(60);
        let written = templates::unanswered(&customer, minutes, &last, &link);
        let mail = NewMail {
            recipient: email,
            kind: "unanswered",
            conversation: Some(found.conversation),
            subject: written.subject,
            body_text: written.text,
            body_html: None,
            message_id: inner.links.message_id(Some(found.conversation)),
            in_reply_to: None,
            references: None,
            unsubscribe_url: None,
            due_at: now,
        };
        store.enqueue_mails(Some(mark), &[mail], now).await?;
    }
    Ok(())
}

/// Agents' replies the customer left without reading, to the customer.
async fn gone_customers(inner: &Inner) -> Result<()> {
    for gone in inner.store.gone_customers().await? {
        mail_customer(inner, gone).await?;
    }
    Ok(())
}

async fn mail_customer(inner: &Inner, gone: GoneCustomer) -> Result<()> {
    let store = &inner.store;
    let now = now_millis();
    let ready_before = now - inner.config.reply_delay.as_millis() as i64;
    let from = gone.mailed_seq.max(gone.read_seq);
    let page = store
        .history(gone.conversation, Page::After { seq: from }, 100)
        .await?;
    let is_reply = |m: &StoredMessage| m.sender_id != gone.customer && m.kind != "system";
    let replies: Vec<&StoredMessage> = page.messages.iter().filter(|m| is_reply(m)).collect();
    let Some(last_seen) = page.messages.last() else {
        return Ok(());
    };
    if replies.is_empty() {
        // Nothing of the agents' since: what was looked at need not be looked at again.
        if !page.has_more {
            let mark = MailMark::CustomerReply {
                conversation: gone.conversation,
                seq: last_seen.seq,
            };
            store.enqueue_mails(Some(mark), &[], now).await?;
        }
        return Ok(());
    }
    // The delay runs from the newest reply: a burst of replies goes in one mail.
    if replies.last().is_some_and(|m| m.created_at > ready_before) {
        return Ok(());
    }
    let up_to = replies.last().map_or(from, |m| m.seq);
    let so_far = store
        .history(gone.conversation, Page::Before { seq: up_to + 1 }, 30)
        .await?
        .messages;
    let mut ids: Vec<UserId> = so_far.iter().map(|m| m.sender_id).collect();
    ids.push(gone.customer);
    ids.sort_unstable();
    ids.dedup();
    let names = store.display_names(&ids).await?;
    let name_of = |m: &StoredMessage| {
        if m.sender_id == gone.customer {
            "You".to_owned()
        } else {
            name(&names, m.sender_id)
        }
    };
    let new: Vec<StoredMessage> = replies.iter().map(|m| (*m).clone()).collect();
    let base = &inner.config.public_url;
    let resume = templates::resume_link(base, &inner.links.resume_token(gone.customer, now));
    let unsubscribe =
        templates::unsubscribe_link(base, &inner.links.unsubscribe_token(gone.customer));
    let written = templates::reply(
        &inner.config.shop,
        &templates::lines(&new, name_of),
        &templates::lines(&so_far, name_of),
        &resume,
        &unsubscribe,
    );
    let (in_reply_to, references) = match store.last_thread(&gone.email, gone.conversation).await? {
        Some((previous, refs)) => {
            let refs = match refs {
                Some(refs) => format!("{refs} {previous}"),
                None => previous.clone(),
            };
            (Some(previous), Some(refs))
        }
        None => (None, None),
    };
    let mail = NewMail {
        recipient: gone.email.clone(),
        kind: "reply",
        conversation: Some(gone.conversation),
        subject: written.subject,
        body_text: written.text,
        body_html: None,
        message_id: inner.links.message_id(Some(gone.conversation)),
        in_reply_to,
        references,
        unsubscribe_url: Some(unsubscribe),
        due_at: now,
    };
    let mark = MailMark::CustomerReply {
        conversation: gone.conversation,
        seq: up_to,
    };
    store.enqueue_mails(Some(mark), &[mail], now).await?;
    Ok(())
}

fn name(names: &HashMap<UserId, String>, id: UserId) -> String {
    names
        .get(&id)
        .cloned()
        .unwrap_or_else(|| format!("User {id}"))
}
