use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use super::ValidationError;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        /// Travels as a string of digits; parsed from a string or a non-negative integer, since
        /// clients of the reference design send numbers.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ts_rs::TS)]
        // On the wire an id is a string of decimal digits (JavaScript numbers lose i64 precision).
        #[ts(type = "string")]
        pub struct $name(pub i64);

        impl $name {
            pub fn parse(value: &str) -> Result<Self, ValidationError> {
                // At most 19 digits (i64::MAX has 19); the parse below refuses what overflows.
                let valid = !value.is_empty() && value.len() <= 19 && value.bytes().all(|b| b.is_ascii_digit());
                match valid.then(|| value.parse::<i64>()) {
                    Some(Ok(id)) if id > 0 => Ok(Self(id)),
                    _ => Err(ValidationError::invalid(concat!($what, " must be a string of digits"))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                #[derive(Deserialize)]
                #[serde(untagged)]
                enum Raw<'a> {
                    Text(std::borrow::Cow<'a, str>),
                    Number(u64),
                }
                let raw = Raw::deserialize(deserializer).map_err(|e: D::Error| {
                    // A missing field keeps serde's own words, which name it.
                    if e.to_string().starts_with("missing field") {
                        e
                    } else {
                        de::Error::custom(concat!($what, " must be a string of digits"))
                    }
                })?;
                match raw
                {
                    Raw::Text(text) => Self::parse(&text).map_err(de::Error::custom),
                    Raw::Number(n) => Self::parse(&n.to_string()).map_err(de::Error::custom),
                }
            }
        }
    };
}

id_type!(
    /// A user: customer, agent or admin.
    UserId, "a user id"
);
id_type!(
    /// A conversation between one customer and the agents that serve it.
    ConversationId, "a conversation id"
);
id_type!(
    /// A stored message.
    MessageId, "a message id"
);
id_type!(
    /// An uploaded file.
    AttachmentId, "an attachment id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_serialize_as_strings() {
        assert_eq!(serde_json::to_string(&UserId(42)).unwrap(), "\"42\"");
    }

    #[test]
    fn ids_parse_from_strings_and_numbers() {
        assert_eq!(
            serde_json::from_str::<UserId>("\"42\"").unwrap(),
            UserId(42)
        );
        assert_eq!(serde_json::from_str::<UserId>("42").unwrap(), UserId(42));
    }

    #[test]
    fn zero_negative_and_non_numeric_ids_are_refused() {
        for bad in [
            "\"0\"",
            "-1",
            "\"-1\"",
            "\"abc\"",
            "\"1 OR 1=1\"",
            "\"\"",
            "1.5",
            "null",
            "{}",
            "\"99999999999999999999\"",
        ] {
            assert!(
                serde_json::from_str::<UserId>(bad).is_err(),
                "{bad} was accepted"
            );
        }
    }
}
