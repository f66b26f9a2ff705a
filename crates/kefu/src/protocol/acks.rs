//! The answers to each event: every success carries `ok: true`, every failure is an
//! [`ErrorAck`]; and the error bodies both transports share.

use serde::Serialize;
use ts_rs::TS;

use super::{
    AgentStatusName,
    payloads::{MemberPayload, MessagePayload, NotePayload},
};
use crate::{
    domain::{ConversationId, MessageId, UserId},
    services::Error,
};

#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct LoginAck {
    #[ts(type = "true")]
    pub ok: bool,
    pub cs_id: Option<UserId>,
    pub conversation_id: Option<ConversationId>,
    pub queued: bool,
    pub position: Option<i64>,
    pub estimated_wait_seconds: Option<i64>,
    pub ended: bool,
    /// The agent named by `csId`, when one was: whether it is online, and until when (ms since
    /// the Unix epoch) the conversation waits for it only when it is not.
    pub requested_agent: Option<RequestedAgentBody>,
}

#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RequestedAgentBody {
    pub id: UserId,
    pub display_name: String,
    pub online: bool,
    pub waits_until: Option<i64>,
}

#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct QueueStatusAck {
    #[ts(type = "true")]
    pub ok: bool,
    pub queued: bool,
    pub conversation_id: Option<ConversationId>,
    pub position: Option<i64>,
    pub estimated_wait_seconds: Option<i64>,
}

#[derive(Debug, Serialize, TS)]
#[ts(rename = "SetStatusAck")]
#[serde(rename_all = "camelCase")]
pub struct StatusAck {
    #[ts(type = "true")]
    pub ok: bool,
    pub status: AgentStatusName,
}

#[derive(Debug, Serialize, TS)]
#[ts(rename = "ResolveAck")]
#[serde(rename_all = "camelCase")]
pub struct ConversationAck {
    #[ts(type = "true")]
    pub ok: bool,
    pub conversation_id: ConversationId,
}

#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct TransferAck {
    #[ts(type = "true")]
    pub ok: bool,
    pub conversation_id: ConversationId,
    pub agent_id: Option<UserId>,
}

#[derive(Debug, Serialize, TS)]
pub struct NoteAck<'a> {
    #[ts(type = "true")]
    pub ok: bool,
    pub note: NotePayload<'a>,
}

#[derive(Debug, Serialize, TS)]
pub struct NotesAck<'a> {
    #[ts(type = "true")]
    pub ok: bool,
    pub notes: Vec<NotePayload<'a>>,
}

#[derive(Debug, Serialize, TS)]
#[ts(rename = "AllMemberAck")]
pub struct MembersAck<'a> {
    #[ts(type = "true")]
    pub ok: bool,
    pub users: &'a [MemberPayload<'a>],
}

#[derive(Debug, Serialize, TS)]
#[ts(rename = "PrivateMessageAck")]
#[serde(rename_all = "camelCase")]
pub struct SentAck<'a> {
    #[ts(type = "true")]
    pub ok: bool,
    pub id: MessageId,
    pub seq: i64,
    pub conversation_id: ConversationId,
    pub created_at: String,
    pub client_msg_id: Option<&'a str>,
    pub duplicate: bool,
    /// Only on the customer's message that started its conversation: where it went.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub started: Option<StartedAck>,
}

/// The conversation a customer's first message started: given to `csId`, or waiting in the
/// queue (`queued`, its place following as `queue_position`).
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct StartedAck {
    pub cs_id: Option<UserId>,
    pub queued: bool,
}

#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ReadAck {
    #[ts(type = "true")]
    pub ok: bool,
    pub conversation_id: ConversationId,
    pub up_to_id: MessageId,
    pub seq: i64,
}

#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct HistoryAck<'a> {
    #[ts(type = "true")]
    pub ok: bool,
    pub conversation_id: Option<ConversationId>,
    pub messages: Vec<MessagePayload<'a>>,
    pub has_more: bool,
    pub peer_read_seq: i64,
}

#[derive(Debug, Serialize, TS)]
pub struct OkAck {
    #[ts(type = "true")]
    pub ok: bool,
}

pub const OK: OkAck = OkAck { ok: true };

#[derive(Debug, Serialize, TS)]
pub struct ErrorBody {
    #[ts(type = "ErrorCode")]
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
#[derive(Debug, Serialize, TS)]
#[ts(rename = "AckError")]
pub struct ErrorAck {
    #[ts(type = "false")]
    pub ok: bool,
    pub error: ErrorBody,
}

/// The `error` event, for a failed event sent without an ack callback.
#[derive(Debug, Serialize, TS)]
#[ts(rename = "EventError")]
pub struct ErrorEvent<'a> {
    pub event: &'a str,
    #[ts(type = "ErrorCode")]
    pub code: &'static str,
    pub message: String,
}
