//! What clients send: the argument of each Socket.IO event.

use serde::Deserialize;
use ts_rs::TS;

use super::{AgentStatusName, optional_id};
use crate::domain::{AttachmentId, ConversationId, MessageId, UserId};

#[derive(Debug, Deserialize, TS)]
#[ts(rename = "LoginPayload")]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    pub user_id: UserId,
    #[serde(default, deserialize_with = "optional_id")]
    #[ts(optional)]
    pub cs_id: Option<UserId>,
}

#[derive(Debug, Deserialize, TS)]
#[ts(rename = "PrivateMessagePayload")]
#[serde(rename_all = "camelCase")]
pub struct PrivateMessageRequest {
    #[serde(default, deserialize_with = "optional_id")]
    #[ts(optional)]
    pub receiver_id: Option<UserId>,
    /// Required unless `attachmentId` is given.
    #[serde(default)]
    #[ts(optional)]
    pub content: Option<String>,
    #[serde(default, deserialize_with = "optional_id")]
    #[ts(optional)]
    pub attachment_id: Option<AttachmentId>,
    #[serde(default)]
    #[ts(optional)]
    pub client_msg_id: Option<String>,
    #[serde(default, deserialize_with = "optional_id")]
    #[ts(optional)]
    pub sender_id: Option<UserId>,
}

#[derive(Debug, Deserialize, TS)]
#[ts(rename = "ReadPayload")]
#[serde(rename_all = "camelCase")]
pub struct ReadRequest {
    #[serde(default, deserialize_with = "optional_id")]
    #[ts(optional)]
    pub peer_id: Option<UserId>,
    pub up_to_id: MessageId,
}

#[derive(Debug, Deserialize, TS)]
#[ts(rename = "SetStatusPayload")]
#[serde(rename_all = "camelCase")]
pub struct SetStatusRequest {
    pub status: AgentStatusName,
}

#[derive(Debug, Deserialize, TS)]
#[ts(rename = "ResolvePayload")]
#[serde(rename_all = "camelCase")]
pub struct PeerRequest {
    #[serde(default, deserialize_with = "optional_id")]
    #[ts(optional)]
    pub peer_id: Option<UserId>,
}

#[derive(Debug, Deserialize, TS)]
#[ts(rename = "TransferPayload")]
#[serde(rename_all = "camelCase")]
pub struct TransferRequest {
    #[serde(default, deserialize_with = "optional_id")]
    #[ts(optional)]
    pub peer_id: Option<UserId>,
    /// Required, `null` for the queue.
    #[serde(deserialize_with = "optional_id")]
    pub to_agent_id: Option<UserId>,
    #[serde(default)]
    #[ts(optional)]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, TS)]
#[ts(rename = "RatePayload")]
#[serde(rename_all = "camelCase")]
pub struct RateRequest {
    pub conversation_id: ConversationId,
    pub score: i64,
    #[serde(default)]
    #[ts(optional)]
    pub comment: Option<String>,
}

#[derive(Debug, Deserialize, TS)]
#[ts(rename = "NotePayload")]
#[serde(rename_all = "camelCase")]
pub struct NoteRequest {
    #[serde(default, deserialize_with = "optional_id")]
    #[ts(optional)]
    pub peer_id: Option<UserId>,
    pub content: String,
}

#[derive(Debug, Deserialize, TS)]
#[ts(rename = "NotesPayload")]
#[serde(rename_all = "camelCase")]
pub struct NotesRequest {
    #[serde(default, deserialize_with = "optional_id")]
    #[ts(optional)]
    pub peer_id: Option<UserId>,
    #[serde(default, deserialize_with = "optional_id")]
    #[ts(optional)]
    pub conversation_id: Option<ConversationId>,
}

#[derive(Debug, Deserialize, TS)]
#[ts(rename = "TypingPayload")]
#[serde(rename_all = "camelCase")]
pub struct TypingRequest {
    #[serde(default, deserialize_with = "optional_id")]
    #[ts(optional)]
    pub receiver_id: Option<UserId>,
    pub typing: bool,
}

#[derive(Debug, Deserialize, TS)]
#[ts(rename = "HistoryPayload")]
#[serde(rename_all = "camelCase")]
pub struct HistoryRequest {
    #[serde(default, deserialize_with = "optional_id")]
    #[ts(optional)]
    pub peer_id: Option<UserId>,
    #[serde(default, deserialize_with = "optional_id")]
    #[ts(optional)]
    pub conversation_id: Option<ConversationId>,
    #[serde(default, deserialize_with = "optional_id")]
    #[ts(optional)]
    pub before_id: Option<MessageId>,
    #[serde(default)]
    #[ts(optional)]
    pub after_seq: Option<i64>,
    #[serde(default)]
    #[ts(optional)]
    pub limit: Option<i64>,
}
