//! Signed values in mails: the resume link (a customer's identity back on the device that opens
//! it), the unsubscribe link, kefu's Message-IDs (the conversation id plus an HMAC, so a reply is
//! matched to its conversation without trusting its From alone), and the inbound webhook's
//! signature.

use ring::hmac;

use crate::domain::{ConversationId, UserId};

/// How long a resume link works.
pub const RESUME_FOR_MS: i64 = 30 * 24 * 3600 * 1000;
/// How far a webhook's timestamp may be from now.
pub const WEBHOOK_TOLERANCE_SECS: i64 = 300;

#[derive(Clone)]
pub struct Links {
    key: hmac::Key,
    /// The domain of Message-IDs (the sender's).
    domain: String,
}

impl Links {
    /// `secret`: the server's token secret; the links' key is derived from it, so that a link
    /// works on every node and after a restart.
    pub fn new(secret: &[u8], domain: &str) -> Self {
        let derived = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, secret),
            b"kefu mail links v1",
        );
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
            domain: domain.to_owned(),
        }
    }

    /// The first 16 bytes of the HMAC of `data`, in hex.
    fn sign(&self, data: &str) -> String {
        hex(&hmac::sign(&self.key, data.as_bytes()).as_ref()[..16])
    }

    fn signed(&self, data: &str, signature: &str) -> bool {
        constant_time_eq(self.sign(data).as_bytes(), signature.as_bytes())
    }

    /// `<user>.<expires ms>.<signature>`.
    pub fn resume_token(&self, user: UserId, now: i64) -> String {
        let data = format!("{}.{}", user.0, now + RESUME_FOR_MS);
        let signature = self.sign(&format!("resume.{data}"));
        format!("{data}.{signature}")
    }

    /// The customer a resume token names, if it is genuine and not expired.
    pub fn check_resume(&self, token: &str, now: i64) -> Option<UserId> {
        let mut parts = token.trim().splitn(3, '.');
        let (user, expires, signature) = (parts.next()?, parts.next()?, parts.next()?);
        let user: i64 = user.parse().ok()?;
        let expires: i64 = expires.parse().ok()?;
        (self.signed(&format!("resume.{user}.{expires}"), signature) && expires > now)
            .then_some(UserId(user))
    }

    /// `<user>.<signature>`: an unsubscribe link does not expire.
    pub fn unsubscribe_token(&self, user: UserId) -> String {
        format!(
            "{}.{}",
            user.0,
            self.sign(&format!("unsubscribe.{}", user.0))
        )
    }

    pub fn check_unsubscribe(&self, token: &str) -> Option<UserId> {
        let (user, signature) = token.trim().split_once('.')?;
        let user: i64 = user.parse().ok()?;
        self.signed(&format!("unsubscribe.{user}"), signature)
            .then_some(UserId(user))
    }

    /// A new Message-ID for a mail about `conversation` (0: none), with angle brackets.
    pub fn message_id(&self, conversation: Option<ConversationId>) -> String {
        let conversation = conversation.map_or(0, |c| c.0);
        let unique = super::super::auth::random_hex(8);
        let signature = self.sign(&format!("mid.{conversation}.{unique}"));
        format!("<kefu.{conversation}.{unique}.{signature}@{}>", self.domain)
    }

    /// The conversation a Message-ID of kefu's names; `None` for anyone else's, or a forged one.
    pub fn conversation_of(&self, message_id: &str) -> Option<ConversationId> {
        let id = message_id
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>');
        let (local, _domain) = id.split_once('@')?;
        let mut parts = local.split('.');
        if parts.next()? != "kefu" {
            return None;
        }
        let (conversation, unique, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let conversation: i64 = conversation.parse().ok()?;
        (conversation > 0 && self.signed(&format!("mid.{conversation}.{unique}"), signature))
            .then_some(ConversationId(conversation))
    }
}

/// Why a webhook's signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// No header, or not `t=<seconds>,v1=<hex>`.
    Malformed,
    /// The timestamp is more than five minutes from now.
    Stale,
    /// The HMAC does not match.
    Mismatch,
}

impl SignatureError {
    pub fn message(self) -> &'static str {
        match self {
            SignatureError::Malformed => {
                "X-Kefu-Signature must be t=<unix seconds>,v1=<hex HMAC-SHA256>"
            }
            SignatureError::Stale => "the signature's timestamp is more than 5 minutes from now",
            SignatureError::Mismatch => "the signature does not match the body",
        }
    }
}

/// Checks `X-Kefu-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn verify_webhook(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now_secs: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Malformed)?;
    let (mut t, mut v1) = (None, None);
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = Some(value),
            Some(("v1", value)) => v1 = Some(value),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    let at: i64 = t.parse().map_err(|_| SignatureError::Malformed)?;
    let expected = unhex(v1.ok_or(SignatureError::Malformed)?).ok_or(SignatureError::Malformed)?;
    if (now_secs - at).abs() > WEBHOOK_TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    let mut signed = Vec::with_capacity(t.len() + 1 + body.len());
    signed.extend_from_slice(t.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    hmac::verify(
        &hmac::Key::new(hmac::HMAC_SHA256, secret),
        &signed,
        &expected,
    )
    .map_err(|_| SignatureError::Mismatch)
}

/// The header a sender puts on `body` at `t` (for tests and docs).
pub fn sign_webhook(secret: &[u8], body: &[u8], t: i64) -> String {
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), &signed);
    format!("t={t},v1={}", hex(tag.as_ref()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> Links {
        Links::new(b"a secret of the server", "shop.example")
    }

    #[test]
    fn a_message_id_names_its_conversation_and_survives_the_round_trip() {
        let links = links();
        let id = links.message_id(Some(ConversationId(42)));
        assert!(
            id.starts_with("<kefu.42.") && id.ends_with("@shop.example>"),
            "{id}"
        );
        assert_eq!(links.conversation_of(&id), Some(ConversationId(42)));
        assert_ne!(
            links.message_id(Some(ConversationId(42))),
            id,
            "each is unique"
        );
    }

    #[test]
    fn a_forged_or_foreign_message_id_names_no_conversation() {
        let links = links();
        let id = links.message_id(Some(ConversationId(42)));
        let forged = id.replacen("kefu.42.", "kefu.43.", 1);
        assert_eq!(links.conversation_of(&forged), None);
        assert_eq!(links.conversation_of("<CAF=abc@mail.gmail.com>"), None);
        let other = Links::new(b"another server", "shop.example");
        assert_eq!(other.conversation_of(&id), None);
    }

    #[test]
    fn a_resume_token_names_its_customer_until_it_expires() {
        let links = links();
        let token = links.resume_token(UserId(7), 1_000);
        assert_eq!(links.check_resume(&token, 2_000), Some(UserId(7)));
        assert_eq!(links.check_resume(&token, 1_000 + RESUME_FOR_MS + 1), None);
        assert_eq!(
            links.check_resume(&token.replacen('7', "8", 1), 2_000),
            None
        );
        assert_eq!(links.check_resume("garbage", 2_000), None);
    }

    #[test]
    fn an_unsubscribe_token_cannot_be_made_for_another_user() {
        let links = links();
        let token = links.unsubscribe_token(UserId(5));
        assert_eq!(links.check_unsubscribe(&token), Some(UserId(5)));
        let (_, signature) = token.split_once('.').unwrap();
        assert_eq!(links.check_unsubscribe(&format!("6.{signature}")), None);
    }

    #[test]
    fn a_webhook_signature_is_checked_for_body_secret_and_time() {
        let body = b"From: a@b.c\r\n\r\nhi";
        let header = sign_webhook(b"s3cret", body, 1_000_000);
        assert_eq!(
            verify_webhook(b"s3cret", Some(&header), body, 1_000_100),
            Ok(())
        );
        assert_eq!(
            verify_webhook(b"s3cret", Some(&header), b"other", 1_000_100),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_webhook(b"wrong", Some(&header), body, 1_000_100),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_webhook(b"s3cret", Some(&header), body, 1_000_301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_webhook(b"s3cret", Some("v1=00"), body, 1_000_000),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_webhook(b"s3cret", None, body, 1_000_000),
            Err(SignatureError::Malformed)
        );
    }
}
