//! Every Socket.IO event name and payload of the protocol, in one place (docs/protocol.md).

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

use crate::{
    domain::{AttachmentId, ConversationId, MessageId, Role, User, UserId, format_timestamp},
    services::{Error, delivery::Notice},
    store::{Attachment, Member, Note, StoredMessage},
};

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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    pub user_id: UserId,
    #[serde(default, deserialize_with = "optional_id")]
    pub cs_id: Option<UserId>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrivateMessageRequest {
    #[serde(default, deserialize_with = "optional_id")]
    pub receiver_id: Option<UserId>,
    /// Required unless `attachmentId` is given.
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default, deserialize_with = "optional_id")]
    pub attachment_id: Option<AttachmentId>,
    #[serde(default)]
    pub client_msg_id: Option<String>,
    #[serde(default, deserialize_with = "optional_id")]
    pub sender_id: Option<UserId>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadRequest {
    #[serde(default, deserialize_with = "optional_id")]
    pub peer_id: Option<UserId>,
    pub up_to_id: MessageId,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetStatusRequest {
    pub status: AgentStatusName,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerRequest {
    #[serde(default, deserialize_with = "optional_id")]
    pub peer_id: Option<UserId>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferRequest {
    #[serde(default, deserialize_with = "optional_id")]
    pub peer_id: Option<UserId>,
    /// Required, `null` for the queue.
    #[serde(deserialize_with = "optional_id")]
    pub to_agent_id: Option<UserId>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateRequest {
    pub conversation_id: ConversationId,
    pub score: i64,
    #[serde(default)]
    pub comment: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NoteRequest {
    #[serde(default, deserialize_with = "optional_id")]
    pub peer_id: Option<UserId>,
    pub content: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotesRequest {
    #[serde(default, deserialize_with = "optional_id")]
    pub peer_id: Option<UserId>,
    #[serde(default, deserialize_with = "optional_id")]
    pub conversation_id: Option<ConversationId>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypingRequest {
    #[serde(default, deserialize_with = "optional_id")]
    pub receiver_id: Option<UserId>,
    pub typing: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRequest {
    #[serde(default, deserialize_with = "optional_id")]
    pub peer_id: Option<UserId>,
    #[serde(default, deserialize_with = "optional_id")]
    pub conversation_id: Option<ConversationId>,
    #[serde(default, deserialize_with = "optional_id")]
    pub before_id: Option<MessageId>,
    #[serde(default)]
    pub after_seq: Option<i64>,
    #[serde(default)]
    pub limit: Option<i64>,
}

/// A message as clients see it, live and in history.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagePayload<'a> {
    pub id: MessageId,
    pub seq: i64,
    pub conversation_id: ConversationId,
    pub sender_id: UserId,
    pub receiver_id: Option<UserId>,
    pub kind: &'a str,
    pub content: &'a str,
    pub timestamp: String,
    pub client_msg_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachment: Option<AttachmentPayload<'a>>,
}

/// An attachment as clients see it; `url` needs the reader's token (header or `?token=`).
#[derive(Debug, Serialize)]
pub struct AttachmentPayload<'a> {
    pub id: String,
    pub name: &'a str,
    pub mime: &'a str,
    pub size: i64,
    pub url: String,
}

impl<'a> AttachmentPayload<'a> {
    pub fn new(attachment: &'a Attachment) -> Self {
        Self {
            id: attachment.id.to_string(),
            name: &attachment.name,
            mime: &attachment.mime,
            size: attachment.size,
            url: format!("/api/attachments/{}", attachment.id),
        }
    }
}

impl<'a> MessagePayload<'a> {
    pub fn new(message: &'a StoredMessage, receiver_id: Option<UserId>) -> Self {
        Self {
            id: message.id,
            seq: message.seq,
            conversation_id: message.conversation_id,
            sender_id: message.sender_id,
            receiver_id,
            kind: &message.kind,
            content: &message.content,
            timestamp: format_timestamp(message.created_at),
            client_msg_id: message.client_msg_id.as_deref(),
            attachment: message.attachment.as_ref().map(AttachmentPayload::new),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberPayload<'a> {
    pub id: UserId,
    pub role: Role,
    pub username: &'a str,
    pub display_name: &'a str,
    /// Kept in snake_case: the reference design's name.
    #[serde(rename = "message_count")]
    pub message_count: i64,
    pub online: bool,
    pub conversation_id: ConversationId,
    pub last_message: Option<MessagePayload<'a>>,
}

impl<'a> MemberPayload<'a> {
    /// `me` is who asked: the receiver of the last message is whoever did not send it.
    pub fn new(member: &'a Member, online: bool, me: UserId) -> Self {
        let last_message = member.last_message.as_ref().map(|m| {
            let receiver = if m.sender_id == me {
                member.user.id
            } else {
                me
            };
            MessagePayload::new(m, Some(receiver))
        });
        Self {
            id: member.user.id,
            role: member.user.role,
            username: &member.user.username,
            display_name: &member.user.display_name,
            message_count: member.unread,
            online,
            conversation_id: member.conversation_id,
            last_message,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagesRead {
    pub reader_id: UserId,
    pub up_to_id: MessageId,
    pub conversation_id: ConversationId,
    pub seq: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Typing {
    pub user_id: UserId,
    pub typing: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberUpdate {
    pub user_id: UserId,
    pub online: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationQueued {
    pub conversation_id: ConversationId,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationAssigned<'a> {
    pub conversation_id: ConversationId,
    pub customer_id: UserId,
    pub agent_id: UserId,
    pub agent: &'a User,
}

// Acks. Every success carries `ok: true`.

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginAck {
    pub ok: bool,
    pub cs_id: Option<UserId>,
    pub conversation_id: Option<ConversationId>,
    pub queued: bool,
    pub position: Option<i64>,
    pub estimated_wait_seconds: Option<i64>,
    pub ended: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueStatusAck {
    pub ok: bool,
    pub queued: bool,
    pub conversation_id: Option<ConversationId>,
    pub position: Option<i64>,
    pub estimated_wait_seconds: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusAck {
    pub ok: bool,
    pub status: AgentStatusName,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationAck {
    pub ok: bool,
    pub conversation_id: ConversationId,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuePosition {
    pub conversation_id: ConversationId,
    pub position: i64,
    pub estimated_wait_seconds: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationResolved {
    pub conversation_id: ConversationId,
    pub customer_id: UserId,
    pub agent_id: UserId,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferAck {
    pub ok: bool,
    pub conversation_id: ConversationId,
    pub agent_id: Option<UserId>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationTransferred {
    pub conversation_id: ConversationId,
    pub customer_id: UserId,
    pub from_agent_id: UserId,
    pub to_agent_id: Option<UserId>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotePayload<'a> {
    pub id: String,
    pub conversation_id: ConversationId,
    pub author_id: UserId,
    pub author_name: &'a str,
    pub content: &'a str,
    pub timestamp: String,
}

impl<'a> NotePayload<'a> {
    pub fn new(note: &'a Note) -> Self {
        Self {
            id: note.id.to_string(),
            conversation_id: note.conversation_id,
            author_id: note.author_id,
            author_name: &note.author_name,
            content: &note.content,
            timestamp: format_timestamp(note.created_at),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct NoteAck<'a> {
    pub ok: bool,
    pub note: NotePayload<'a>,
}

#[derive(Debug, Serialize)]
pub struct NotesAck<'a> {
    pub ok: bool,
    pub notes: Vec<NotePayload<'a>>,
}

#[derive(Debug, Serialize)]
pub struct NewNote<'a> {
    pub note: NotePayload<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatus {
    pub agent_id: UserId,
    pub status: AgentStatusName,
}

#[derive(Debug, Serialize)]
pub struct MembersAck<'a> {
    pub ok: bool,
    pub users: &'a [MemberPayload<'a>],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SentAck<'a> {
    pub ok: bool,
    pub id: MessageId,
    pub seq: i64,
    pub conversation_id: ConversationId,
    pub created_at: String,
    pub client_msg_id: Option<&'a str>,
    pub duplicate: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadAck {
    pub ok: bool,
    pub conversation_id: ConversationId,
    pub up_to_id: MessageId,
    pub seq: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryAck<'a> {
    pub ok: bool,
    pub conversation_id: Option<ConversationId>,
    pub messages: Vec<MessagePayload<'a>>,
    pub has_more: bool,
    pub peer_read_seq: i64,
}

#[derive(Debug, Serialize)]
pub struct OkAck {
    pub ok: bool,
}

pub const OK: OkAck = OkAck { ok: true };

#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub code: &'static str,
    pub message: String,
}

impl From<&Error> for ErrorBody {
    fn from(error: &Error) -> Self {
        Self {
            code: error.code(),
            message: error.public_message(),
        }
    }
}

/// `{ok: false, error: {code, message}}`
#[derive(Debug, Serialize)]
pub struct ErrorAck {
    pub ok: bool,
    pub error: ErrorBody,
}

/// The `error` event, for a failed event sent without an ack callback.
#[derive(Debug, Serialize)]
pub struct ErrorEvent<'a> {
    pub event: &'a str,
    pub code: &'static str,
    pub message: String,
}

/// The events a notice becomes, each payload serialized once for every connection on every node.
pub fn encode(notice: &Notice<'_>) -> Vec<(&'static str, Arc<RawValue>)> {
    fn raw<T: Serialize + ?Sized>(payload: &T) -> Option<Arc<RawValue>> {
        match serde_json::value::to_raw_value(payload) {
            Ok(raw) => Some(Arc::from(raw)),
            Err(error) => {
                tracing::error!(%error, "cannot encode an event");
                None
            }
        }
    }
    let encoded = match *notice {
        Notice::Message { message, receiver } => vec![(
            NEW_PRIVATE_MESSAGE,
            raw(&MessagePayload::new(message, receiver)),
        )],
        Notice::Read {
            reader,
            up_to,
            conversation,
            seq,
        } => vec![(
            MESSAGES_READ,
            raw(&MessagesRead {
                reader_id: reader,
                up_to_id: up_to,
                conversation_id: conversation,
                seq,
            }),
        )],
        Notice::Typing { user, typing } => vec![(
            TYPING,
            raw(&Typing {
                user_id: user,
                typing,
            }),
        )],
        Notice::Presence { user, online } => vec![
            (if online { USER_ONLINE } else { USER_OFFLINE }, raw(&user)),
            (
                UPDATE_MEMBER_LIST,
                raw(&MemberUpdate {
                    user_id: user,
                    online,
                }),
            ),
        ],
        Notice::Queued { conversation } => vec![(
            CONVERSATION_QUEUED,
            raw(&ConversationQueued {
                conversation_id: conversation,
            }),
        )],
        Notice::Assigned {
            conversation,
            customer,
            agent,
        } => vec![(
            CONVERSATION_ASSIGNED,
            raw(&ConversationAssigned {
                conversation_id: conversation,
                customer_id: customer,
                agent_id: agent.id,
                agent,
            }),
        )],
        Notice::QueuePosition {
            conversation,
            place,
        } => vec![(
            QUEUE_POSITION,
            raw(&QueuePosition {
                conversation_id: conversation,
                position: place.position,
                estimated_wait_seconds: place.estimated_wait_seconds,
            }),
        )],
        Notice::Resolved {
            conversation,
            customer,
            agent,
        } => vec![(
            CONVERSATION_RESOLVED,
            raw(&ConversationResolved {
                conversation_id: conversation,
                customer_id: customer,
                agent_id: agent,
            }),
        )],
        Notice::Transferred {
            conversation,
            customer,
            from,
            to,
        } => vec![(
            CONVERSATION_TRANSFERRED,
            raw(&ConversationTransferred {
                conversation_id: conversation,
                customer_id: customer,
                from_agent_id: from,
                to_agent_id: to,
            }),
        )],
        Notice::NoteAdded { note } => vec![(
            NEW_NOTE,
            raw(&NewNote {
                note: NotePayload::new(note),
            }),
        )],
        Notice::AgentStatus { agent, available } => vec![(
            AGENT_STATUS,
            raw(&AgentStatus {
                agent_id: agent,
                status: AgentStatusName::of(available),
            }),
        )],
    };
    encoded
        .into_iter()
        .filter_map(|(event, payload)| Some((event, payload?)))
        .collect()
}
