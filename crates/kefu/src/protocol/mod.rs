//! The protocol of both transports, in one place (docs/protocol.md): every Socket.IO event name,
//! request, ack, notice and error body, the HTTP API's bodies, and the encoder that turns a
//! service's [`Notice`](crate::services::delivery::Notice) into events. The socket layer, the
//! HTTP routes and the cluster all speak through it; the web UI's TypeScript types are generated
//! from it ([`typescript`]).

mod acks;
mod encode;
pub mod http;
mod payloads;
mod requests;
#[cfg(test)]
mod typescript;

use serde::{Deserialize, Deserializer, Serialize};
use ts_rs::TS;

pub use acks::*;
pub use encode::encode;
pub use payloads::*;
pub use requests::*;

// Client → server.
pub const LOGIN: &str = "login";
pub const ALL_MEMBER: &str = "all_member";
pub const PRIVATE_MESSAGE: &str = "private_message";
pub const READ: &str = "read";
pub const TYPING: &str = "typing";
pub const HISTORY: &str = "history";
pub const HEARTBEAT: &str = "heartbeat";
pub const SET_STATUS: &str = "set_status";
pub const RESOLVE: &str = "resolve";
pub const QUEUE_STATUS: &str = "queue_status";
pub const TRANSFER: &str = "transfer";
pub const NOTE: &str = "note";
pub const NOTES: &str = "notes";
pub const RATE: &str = "rate";

// Server → client.
pub const NEW_PRIVATE_MESSAGE: &str = "new_private_message";
pub const MESSAGES_READ: &str = "messages_read";
pub const MY_USERS_LIST: &str = "myUsersList";
pub const ONLINE_USER: &str = "Online_user";
pub const USER_ONLINE: &str = "user_online";
pub const USER_OFFLINE: &str = "user_offline";
pub const UPDATE_MEMBER_LIST: &str = "update_member_list";
pub const CONVERSATION_ASSIGNED: &str = "conversation_assigned";
pub const CONVERSATION_QUEUED: &str = "conversation_queued";
pub const RESYNC: &str = "resync";
pub const QUEUE_POSITION: &str = "queue_position";
pub const CONVERSATION_RESOLVED: &str = "conversation_resolved";
pub const AGENT_STATUS: &str = "agent_status";
pub const CONVERSATION_TRANSFERRED: &str = "conversation_transferred";
pub const NEW_NOTE: &str = "new_note";
pub const ERROR: &str = "error";

/// An event's argument, which must be a JSON object: serde would otherwise also read a struct
/// from an array (`[1, 2, 3]`), positionally.
#[derive(Debug)]
pub struct Payload<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Payload<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectOnly<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for ObjectOnly<T> {
            type Value = T;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<M: serde::de::MapAccess<'de>>(self, map: M) -> Result<T, M::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }

        deserializer
            .deserialize_map(ObjectOnly(std::marker::PhantomData))
            .map(Payload)
    }
}

/// Accepts a missing field, `null` and `""` as "not given": clients of the reference design send
/// `String(undefined)`-style placeholders for ids they do not have.
fn optional_id<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) if s.is_empty() || s == "undefined" || s == "null" => {
            Ok(None)
        }
        Some(other) => T::deserialize(other)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, TS)]
#[ts(rename = "AgentStatus")]
#[serde(rename_all = "snake_case")]
pub enum AgentStatusName {
    Available,
    Away,
}

impl AgentStatusName {
    pub fn of(available: bool) -> Self {
        if available {
            Self::Available
        } else {
            Self::Away
        }
    }
}
