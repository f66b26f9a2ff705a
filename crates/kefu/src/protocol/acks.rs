//! The answers to each event: every success carries `ok: true`, every failure is an
//! [`ErrorAck`]; and the error bodies both transports share.

use serde::Serialize;

use super::{
    AgentStatusName,
    payloads::{MemberPayload, MessagePayload, NotePayload},
};
use crate::{
    domain::{ConversationId, MessageId, UserId},
    services::Error,
};

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
pub struct TransferAck {
    pub ok: bool,
    pub conversation_id: ConversationId,
    pub agent_id: Option<UserId>,
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
