use super::ValidationError;

/// The text of a message: not empty, at most the configured number of UTF-8 bytes, and no NUL
/// (PostgreSQL cannot store it, and no human types it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content(String);

impl Content {
    pub fn parse(value: String, max_bytes: usize) -> Result<Self, ValidationError> {
        if value.is_empty() {
            return Err(ValidationError::invalid("content must not be empty"));
        }
        if value.len() > max_bytes {
            return Err(ValidationError::TooLarge(format!(
                "content is {} bytes, the limit is {max_bytes}; send a file instead",
                value.len()
            )));
        }
        if value.contains('\0') {
            return Err(ValidationError::invalid(
                "content must not contain NUL characters",
            ));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// The sender's own id for a message, which makes a retry idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientMsgId(String);

impl ClientMsgId {
    /// In characters, as the protocol and the database columns count them.
    pub const MAX_LEN: usize = 64;

    pub fn parse(value: String) -> Result<Self, ValidationError> {
        let printable = value.chars().all(|c| !c.is_control());
        if value.is_empty() || value.chars().count() > Self::MAX_LEN || !printable {
            return Err(ValidationError::invalid(
                "clientMsgId must be 1 to 64 printable characters",
            ));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A page size for `history`: default 50, at most 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimit(u32);

impl HistoryLimit {
    pub const DEFAULT: u32 = 50;
    pub const MAX: u32 = 100;

    pub fn parse(value: Option<i64>) -> Result<Self, ValidationError> {
        match value {
            None => Ok(Self(Self::DEFAULT)),
            Some(n) if n >= 1 => Ok(Self(n.min(i64::from(Self::MAX)) as u32)),
            Some(_) => Err(ValidationError::invalid("limit must be a positive integer")),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_at_the_limit_is_accepted_and_one_byte_more_is_too_large() {
        assert!(Content::parse("a".repeat(8192), 8192).is_ok());
        assert!(matches!(
            Content::parse("a".repeat(8193), 8192),
            Err(ValidationError::TooLarge(_))
        ));
    }

    #[test]
    fn content_limit_counts_utf8_bytes_not_characters() {
        // 3 bytes each
        assert!(matches!(
            Content::parse("客".repeat(3), 8),
            Err(ValidationError::TooLarge(_))
        ));
    }

    #[test]
    fn empty_content_and_nul_are_invalid() {
        assert!(matches!(
            Content::parse(String::new(), 10),
            Err(ValidationError::Invalid(_))
        ));
        assert!(matches!(
            Content::parse("a\0b".into(), 10),
            Err(ValidationError::Invalid(_))
        ));
    }

    #[test]
    fn markup_is_kept_as_plain_text() {
        let text = "<img src=x onerror=alert(1)>";
        assert_eq!(Content::parse(text.into(), 100).unwrap().as_str(), text);
    }

    #[test]
    fn client_msg_ids_are_short_and_printable() {
        assert!(ClientMsgId::parse("c-1".into()).is_ok());
        assert!(ClientMsgId::parse(String::new()).is_err());
        assert!(ClientMsgId::parse("x".repeat(65)).is_err());
        assert!(ClientMsgId::parse("a\nb".into()).is_err());
    }

    #[test]
    fn history_limit_defaults_to_50_and_is_capped_at_100() {
        assert_eq!(HistoryLimit::parse(None).unwrap().get(), 50);
        assert_eq!(HistoryLimit::parse(Some(1000)).unwrap().get(), 100);
        assert!(HistoryLimit::parse(Some(0)).is_err());
    }
}
