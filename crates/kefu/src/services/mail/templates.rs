//! The words of kefu's mails, plain text: each says what happened and links to where to act.

use crate::{
    domain::{ConversationId, format_timestamp},
    store::StoredMessage,
};

use super::inbound::REPLY_MARKER;

/// A mail's subject and text.
pub struct Written {
    pub subject: String,
    pub text: String,
}

pub fn console_link(base: &str, conversation: ConversationId) -> String {
    format!("{base}/console?conversation={conversation}")
}

pub fn resume_link(base: &str, token: &str) -> String {
    format!("{base}/chat?resume={token}")
}

pub fn unsubscribe_link(base: &str, token: &str) -> String {
    format!("{base}/api/mail/unsubscribe?token={token}")
}

fn when(at: i64) -> String {
    let t = format_timestamp(at);
    format!("{} {} UTC", &t[..10], &t[11..16])
}

/// Messages as lines `time  name: text`, `name` given by `name_of`.
pub fn lines(messages: &[StoredMessage], name_of: impl Fn(&StoredMessage) -> String) -> String {
    let mut out = String::new();
    for m in messages {
        if m.kind == "system" {
            out.push_str(&format!("{}  -- {}\n", when(m.created_at), m.content));
        } else {
            out.push_str(&format!(
                "{}  {}: {}\n",
                when(m.created_at),
                name_of(m),
                m.content
            ));
        }
    }
    out
}

/// To every agent: a customer waits and nobody is online.
pub fn waiting(customer: &str, conversation: ConversationId, first: &str, link: &str) -> Written {
    Written {
        subject: format!("{customer} is waiting and no agent is online"),
        text: format!(
            "{customer} started a conversation and no agent is online to answer.\n\n\
             {first}\n\nOpen the conversation {conversation}: {link}\n"
        ),
    }
}

/// To the assigned agent: the customer's last message has had no answer.
pub fn unanswered(customer: &str, minutes: u64, last: &str, link: &str) -> Written {
    Written {
        subject: format!("{customer} has had no answer for {minutes} minutes"),
        text: format!(
            "The conversation assigned to you has had no answer for {minutes} minutes.\n\n\
             {customer}: {last}\n\nAnswer it: {link}\n"
        ),
    }
}

/// To the customer who left: the agents' replies, then the conversation so far.
pub fn reply(shop: &str, new: &str, so_far: &str, resume: &str, unsubscribe: &str) -> Written {
    Written {
        subject: format!("New reply from {shop}"),
        text: format!(
            "{REPLY_MARKER}\n\nYou have a new reply:\n\n{new}\n\
             Continue in the chat: {resume}\n\
             or answer this e-mail: your answer goes to the same conversation.\n\n\
             The conversation so far:\n\n{so_far}\n\
             You get this because you left the chat before reading the reply. \
             No more such e-mails: {unsubscribe}\n"
        ),
    }
}

/// To the customer who asked: the whole transcript.
pub fn transcript(shop: &str, conversation: ConversationId, text: &str, resume: &str) -> Written {
    Written {
        subject: format!("Your conversation with {shop} ({conversation})"),
        text: format!(
            "{REPLY_MARKER}\n\nThe transcript you asked for:\n\n{text}\n\
             Continue in the chat: {resume}\n"
        ),
    }
}

/// Several mails to one recipient gathered into one, oldest first.
pub fn digest(parts: &[(&str, &str)]) -> Written {
    let mut text = format!("{} updates since the last e-mail.\n\n", parts.len());
    for (i, (subject, body)) in parts.iter().enumerate() {
        text.push_str(&format!(
            "==== {}. {subject} ====\n\n{}\n\n",
            i + 1,
            body.replace(REPLY_MARKER, "").trim()
        ));
    }
    Written {
        subject: format!("{} updates: {}", parts.len(), parts[parts.len() - 1].0),
        text: format!("{REPLY_MARKER}\n\n{text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_keeps_every_part_in_order_under_one_subject() {
        let digest = digest(&[("First", "one"), ("Second", "two")]);
        assert_eq!(digest.subject, "2 updates: Second");
        let first = digest.text.find("1. First").unwrap();
        let second = digest.text.find("2. Second").unwrap();
        assert!(first < second);
        assert!(digest.text.contains("one") && digest.text.contains("two"));
        assert_eq!(digest.text.matches(REPLY_MARKER).count(), 1);
    }
}
