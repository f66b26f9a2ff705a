//! The vocabulary of kefu: ids, roles, users and message content, each parsed once at the edge so
//! that the rest of the code only sees valid values. No I/O here.

mod event;
mod hours;
mod ids;
mod message;
mod queue;
mod user;

pub use event::EventKind;
pub use hours::{BusinessHours, HoursDocument, IntervalDocument};
pub use ids::{AttachmentId, ConversationId, MessageId, UserId};
pub use message::{ClientMsgId, Content, HistoryLimit};
pub use queue::{QueuePlace, WaitEstimate};
pub use user::{DisplayName, Email, Password, Role, User, Username};

/// Why a value from outside was refused. `TooLarge` is kept apart because clients are told to
/// send less, not to fix a type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    TooLarge(String),
}

impl ValidationError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }
}

/// Milliseconds since the Unix epoch, as stored in the database.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// `2026-11-26T04:15:22.123Z`, the one timestamp format of the protocol.
pub fn format_timestamp(millis: i64) -> String {
    let nanos = i128::from(millis) * 1_000_000;
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp_nanos(nanos) else {
        return String::new();
    };
    let (y, mo, d) = (at.year(), at.month() as u8, at.day());
    let (h, mi, s, ms) = (at.hour(), at.minute(), at.second(), at.millisecond());
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_timestamp(1_795_666_522_123),
            "2026-11-26T04:15:22.123Z"
        );
    }
}
