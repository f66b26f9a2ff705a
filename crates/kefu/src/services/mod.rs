//! The business rules, independent of Socket.IO and HTTP: accounts and tokens, routing customers
//! to agents, the chat itself (authorise, store with group commit, deliver in order).

pub mod accounts;
pub mod attachments;
pub mod auth;
pub mod canned;
pub mod chat;
pub mod delivery;
pub mod hours;
pub mod limits;
pub mod mail;
pub mod reports;
pub mod transcripts;
pub mod writer;

use crate::{domain::ValidationError, store::StoreError};

/// What a client may be told about a failure. Internal details stay in `Other` and in the log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unauthorized")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    InvalidPayload(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedType(String),
    /// Over an abuse limit: what was limited, and when to try again if known.
    #[error("{what}")]
    RateLimited {
        what: &'static str,
        retry_after: Option<std::time::Duration>,
    },
    #[error("{0}")]
    NotFound(&'static str),
    /// A Socket.IO event kefu does not know.
    #[error("there is no event named {0:?}; see docs/protocol.md")]
    UnknownEvent(String),
    #[error("{0}")]
    Conflict(&'static str),
    /// A signed link's token (resume, unsubscribe) that is forged, mangled or expired.
    #[error("{0}")]
    InvalidToken(&'static str),
    #[error("the database is unavailable, nothing was stored; try again")]
    Unavailable,
    #[error(
        "the database cannot write (its disk may be full), nothing was stored; try again later"
    )]
    CannotWrite,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Error {
    /// The same refusal for another caller that waited on one outcome.
    pub(crate) fn again(&self) -> Error {
        match self {
            Error::Unauthorized => Error::Unauthorized,
            Error::Forbidden(m) => Error::Forbidden(m),
            Error::InvalidPayload(m) => Error::InvalidPayload(m.clone()),
            Error::TooLarge(m) => Error::TooLarge(m.clone()),
            Error::UnsupportedType(m) => Error::UnsupportedType(m.clone()),
            Error::RateLimited { what, retry_after } => Error::RateLimited {
                what,
                retry_after: *retry_after,
            },
            Error::NotFound(m) => Error::NotFound(m),
            Error::UnknownEvent(m) => Error::UnknownEvent(m.clone()),
            Error::Conflict(m) => Error::Conflict(m),
            Error::InvalidToken(m) => Error::InvalidToken(m),
            Error::Unavailable => Error::Unavailable,
            Error::CannotWrite => Error::CannotWrite,
            Error::Other(e) => Error::Other(anyhow::anyhow!("{e:#}")),
        }
    }

    pub fn rate_limited(what: &'static str) -> Self {
        Error::RateLimited {
            what,
            retry_after: None,
        }
    }

    /// Every code [`Error::code`] can return (docs/protocol.md, "Error codes").
    pub const CODES: &'static [&'static str] = &[
        "unauthorized",
        "forbidden",
        "invalid_payload",
        "too_large",
        "unsupported_type",
        "rate_limited",
        "not_found",
        "unknown_event",
        "conflict",
        "invalid_token",
        "unavailable",
        "internal",
    ];

    /// The stable snake_case code of docs/protocol.md.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unauthorized => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::InvalidPayload(_) => "invalid_payload",
            Error::TooLarge(_) => "too_large",
            Error::UnsupportedType(_) => "unsupported_type",
            Error::RateLimited { .. } => "rate_limited",
            Error::NotFound(_) => "not_found",
            Error::UnknownEvent(_) => "unknown_event",
            Error::Conflict(_) => "conflict",
            Error::InvalidToken(_) => "invalid_token",
            Error::Unavailable | Error::CannotWrite => "unavailable",
            Error::Other(_) => "internal",
        }
    }

    /// The text a client sees; `Other` hides its cause.
    pub fn public_message(&self) -> String {
        match self {
            Error::Other(_) => "internal error".to_owned(),
            other => other.to_string(),
        }
    }

    /// Logs what deserves a log line, once, where the error is answered.
    pub fn log(&self, context: &str) {
        match self {
            Error::Other(e) => tracing::error!(error = ?e, "{context} failed"),
            Error::Unavailable => tracing::warn!("{context}: database unavailable"),
            Error::CannotWrite => tracing::warn!("{context}: the database cannot write"),
            _ => tracing::debug!(code = self.code(), "{context} refused"),
        }
    }
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Error::NotFound("not found"),
            StoreError::Conflict(_) => Error::Conflict("already exists"),
            StoreError::Unavailable(reason) => {
                tracing::debug!(%reason, "database unavailable");
                Error::Unavailable
            }
            StoreError::Busy => {
                tracing::warn!("the database is busy: a statement waited too long for its turn");
                Error::RateLimited {
                    what: "the server is busy; try again in a few seconds",
                    retry_after: Some(std::time::Duration::from_secs(5)),
                }
            }
            StoreError::Contended(reason) => {
                tracing::warn!(%reason, "a transaction kept meeting conflicting ones");
                Error::Unavailable
            }
            StoreError::CannotWrite(reason) => {
                tracing::warn!(%reason, "the database cannot write: is its disk full?");
                Error::CannotWrite
            }
            StoreError::Other(e) => Error::Other(e.into()),
        }
    }
}

impl From<ValidationError> for Error {
    fn from(error: ValidationError) -> Self {
        match error {
            ValidationError::Invalid(message) => Error::InvalidPayload(message),
            ValidationError::TooLarge(message) => Error::TooLarge(message),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_a_code_of_the_published_list() {
        let errors = [
            Error::Unauthorized,
            Error::Forbidden("x"),
            Error::InvalidPayload("x".into()),
            Error::TooLarge("x".into()),
            Error::UnsupportedType("x".into()),
            Error::rate_limited("x"),
            Error::NotFound("x"),
            Error::UnknownEvent("x".into()),
            Error::Conflict("x"),
            Error::InvalidToken("x"),
            Error::Unavailable,
            Error::CannotWrite,
            Error::Other(anyhow::anyhow!("x")),
        ];
        let mut seen: Vec<&str> = errors.iter().map(Error::code).collect();
        seen.sort_unstable();
        seen.dedup();
        let mut published = Error::CODES.to_vec();
        published.sort_unstable();
        assert_eq!(seen, published);
    }
}
