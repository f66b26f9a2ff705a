//! A customer's reply by e-mail, read from raw MIME (`mail-parser`): who sent it, what it
//! answers (In-Reply-To, References), and its new text with the quoted history trimmed.

use mail_parser::MessageParser;

/// The line kefu puts at the top of the mails customers may answer.
pub const REPLY_MARKER: &str = "-- Reply above this line to answer in the chat --";

/// What kefu takes from an inbound mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMail {
    /// The sender's address, lower case.
    pub from: String,
    /// Without angle brackets; `None` when the mail had none.
    pub message_id: Option<String>,
    /// In-Reply-To then References, newest first, without angle brackets.
    pub answers: Vec<String>,
    /// The new text, quoted history trimmed.
    pub text: String,
}

/// Why an inbound mail cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    NotMime,
    NoSender,
    NoText,
}

impl Unreadable {
    pub fn message(self) -> &'static str {
        match self {
            Unreadable::NotMime => "the body is not an e-mail message (raw MIME)",
            Unreadable::NoSender => "the mail has no From address",
            Unreadable::NoText => "the mail has no text above the quoted history",
        }
    }
}

pub fn parse(raw: &[u8]) -> Result<InboundMail, Unreadable> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(Unreadable::NotMime)?;
    if message.headers().is_empty() {
        return Err(Unreadable::NotMime);
    }
    let from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(|a| a.trim().to_lowercase())
        .filter(|a| a.contains('@'))
        .ok_or(Unreadable::NoSender)?;
    let mut answers: Vec<String> = Vec::new();
    for header in [message.in_reply_to(), message.references()] {
        if let Some(list) = header.as_text_list() {
            // References run oldest first; the newest is the likeliest to be kefu's.
            for id in list.iter().rev() {
                let id = id.trim().trim_matches(['<', '>']).to_owned();
                if !id.is_empty() && !answers.contains(&id) {
                    answers.push(id);
                }
            }
        }
    }
    let body = message.body_text(0).unwrap_or_default();
    let text = trim_quoted(&body);
    if text.is_empty() {
        return Err(Unreadable::NoText);
    }
    Ok(InboundMail {
        from,
        message_id: message
            .message_id()
            .map(|id| id.trim().trim_matches(['<', '>']).to_owned())
            .filter(|id| !id.is_empty()),
        answers,
        text,
    })
}

/// The new text of a reply: everything before the first line that starts the quoted history
/// (kefu's marker, "On … wrote:", "在 … 写道：", "-----Original Message-----"), without lines
/// quoted with '>' and without the blank lines around it.
pub fn trim_quoted(body: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let lines: Vec<&str> = body.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        if starts_history(trimmed) {
            break;
        }
        // "On Mon, 7 Dec 2026 at 10:00, Shop <support@shop.example>" wrapped onto two lines.
        if trimmed.starts_with("On ")
            && lines
                .get(i + 1)
                .is_some_and(|next| next.trim().ends_with("wrote:"))
        {
            break;
        }
        if trimmed.starts_with('>') {
            continue;
        }
        kept.push(line.trim_end());
    }
    // A signature separator ("-- ", kept without its space) ends the text too.
    if let Some(at) = kept.iter().position(|l| *l == "--") {
        kept.truncate(at);
    }
    kept.join("\n").trim().to_owned()
}

fn starts_history(line: &str) -> bool {
    let lower = line.to_lowercase();
    lower.contains("reply above this line")
        || (line.starts_with("On ") && line.ends_with("wrote:"))
        || (line.starts_with('在') && (line.ends_with("写道：") || line.ends_with("写道:")))
        || lower.starts_with("-----original message-----")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_lines_and_what_follows_on_wrote_are_trimmed() {
        let body = "Thanks, that works!\n\nOn Mon, 7 Dec 2026 at 10:00, Shop <s@shop.example> wrote:\n> Try again\n> please\n";
        assert_eq!(trim_quoted(body), "Thanks, that works!");
    }

    #[test]
    fn a_wrapped_on_wrote_line_is_recognised() {
        let body = "Yes\n\nOn Mon, 7 Dec 2026 at 10:00, Shop\n<s@shop.example> wrote:\n> x\n";
        assert_eq!(trim_quoted(body), "Yes");
    }

    #[test]
    fn chinese_clients_quote_headers_are_recognised() {
        let body = "好的，谢谢\n\n在 2026年12月7日 10:00，客服 <s@shop.example> 写道：\n> 您好\n";
        assert_eq!(trim_quoted(body), "好的，谢谢");
    }

    #[test]
    fn outlook_original_message_and_kefus_marker_end_the_text() {
        assert_eq!(
            trim_quoted("See you\r\n-----Original Message-----\r\nFrom: shop\r\n"),
            "See you"
        );
        assert_eq!(
            trim_quoted(&format!("Fine\n\n{REPLY_MARKER}\nAgent: hello\n")),
            "Fine"
        );
    }

    #[test]
    fn interleaved_quotes_are_dropped_and_the_answers_kept() {
        let body = "> question one\nanswer one\n> question two\nanswer two\n-- \nJane";
        assert_eq!(trim_quoted(body), "answer one\nanswer two");
    }

    #[test]
    fn a_reply_is_parsed_with_its_sender_threading_and_text() {
        let raw = b"From: Jane <Jane@Example.COM>\r\nTo: support@shop.example\r\n\
Subject: Re: your conversation\r\nMessage-ID: <abc@mail.example.com>\r\n\
In-Reply-To: <kefu.5.aa.bb@shop.example>\r\n\
References: <kefu.5.00.11@shop.example> <kefu.5.aa.bb@shop.example>\r\n\r\n\
It arrived, thanks.\r\n\r\nOn Mon, Shop wrote:\r\n> hello\r\n";
        let mail = parse(raw).unwrap();
        assert_eq!(mail.from, "jane@example.com");
        assert_eq!(mail.message_id.as_deref(), Some("abc@mail.example.com"));
        assert_eq!(
            mail.answers,
            ["kefu.5.aa.bb@shop.example", "kefu.5.00.11@shop.example"]
        );
        assert_eq!(mail.text, "It arrived, thanks.");
    }

    #[test]
    fn a_mail_with_only_quoted_text_is_refused() {
        let raw = b"From: a@b.c\r\nSubject: x\r\n\r\n> only quoted\r\n";
        assert_eq!(parse(raw), Err(Unreadable::NoText));
        assert_eq!(parse(b"Subject: x\r\n\r\nhi"), Err(Unreadable::NoSender));
    }
}
