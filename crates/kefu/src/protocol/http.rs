//! The HTTP API's request and response bodies (docs/protocol.md, "HTTP API").

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::{AgentStatusName, AttachmentPayload, MessagePayload};
use crate::{
    domain::{ConversationId, User, UserId, format_timestamp},
    store::{CannedReply, ConversationRecord},
};

#[derive(Serialize, TS)]
#[ts(rename = "SessionResponse")]
pub struct Session {
    pub token: String,
    pub user: User,
}

#[derive(Serialize, TS)]
#[ts(rename = "UserResponse")]
pub struct UserBody {
    pub user: User,
}

#[derive(Deserialize, Default, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields)]
pub struct VisitorRequest {
    pub name: Option<String>,
    pub email: Option<String>,
}

#[derive(Deserialize, TS)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Deserialize, TS)]
#[ts(rename = "CreateAgentRequest")]
#[serde(rename_all = "camelCase")]
pub struct AgentRequest {
    pub username: String,
    pub password: String,
    #[ts(optional)]
    pub display_name: Option<String>,
    /// Where kefu's mails to this agent go (a customer waits, a customer has no answer).
    #[ts(optional)]
    pub email: Option<String>,
}

/// `POST /api/visitors/resume`: the token of a resume link (`/chat?resume=<token>`) from a mail.
#[derive(Deserialize, TS)]
pub struct ResumeRequest {
    pub token: String,
}

/// `POST /api/conversations/{id}/transcript/email`: where the transcript goes.
#[derive(Serialize, TS)]
#[ts(rename = "TranscriptEmailed")]
pub struct TranscriptEmailed {
    pub to: String,
}

/// `POST /api/mail/inbound`: the conversation a reply by e-mail went to.
#[derive(Serialize, TS)]
#[ts(rename = "InboundMailReceived")]
#[serde(rename_all = "camelCase")]
pub struct InboundReceived {
    pub conversation_id: ConversationId,
    /// The mail was received before (a retry): stored once.
    pub duplicate: bool,
}

#[derive(Serialize, TS)]
#[ts(rename = "ConversationSummary")]
#[serde(rename_all = "camelCase")]
pub struct ConversationItem {
    pub id: ConversationId,
    pub customer_id: UserId,
    pub agent_id: Option<UserId>,
    #[ts(type = "ConversationStatus")]
    pub status: &'static str,
    pub created_at: String,
    pub resolved_at: Option<String>,
    pub rating: Option<i64>,
    /// Left through the offline form.
    pub offline: bool,
    /// How kefu ended it, when kefu did.
    #[ts(type = "\"abandoned\" | \"idle\" | null")]
    pub ended_as: Option<String>,
}

#[derive(Serialize, TS)]
#[ts(rename = "ConversationsResponse")]
pub struct ConversationList {
    pub conversations: Vec<ConversationItem>,
}

#[derive(Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AgentSummary {
    #[serde(flatten)]
    pub user: User,
    pub disabled: bool,
    pub online: bool,
    pub connections: usize,
    pub open_conversations: i64,
    pub capacity: i64,
    pub status: AgentStatusName,
}

#[derive(Serialize, TS)]
#[ts(rename = "AgentsResponse")]
pub struct Agents {
    pub agents: Vec<AgentSummary>,
}

#[derive(Serialize, TS)]
#[ts(rename = "AvailableAgent")]
#[serde(rename_all = "camelCase")]
pub struct Colleague {
    #[serde(flatten)]
    pub user: User,
    pub online: bool,
    pub status: AgentStatusName,
    pub open_conversations: i64,
    pub capacity: i64,
}

#[derive(Serialize, TS)]
#[ts(rename = "AvailableAgentsResponse")]
pub struct Colleagues {
    pub agents: Vec<Colleague>,
}

#[derive(Deserialize, TS)]
#[ts(rename = "UpdateAgentRequest")]
#[serde(deny_unknown_fields)]
#[ts(optional_fields)]
pub struct AgentUpdate {
    pub disabled: Option<bool>,
    pub capacity: Option<i64>,
}

#[derive(Serialize, TS)]
#[ts(rename = "UpdateAgentResponse")]
pub struct Updated {
    pub user: User,
    pub disabled: bool,
    pub capacity: i64,
}

#[derive(Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct NodeSummary {
    pub id: String,
    pub started_at: String,
    pub connections: usize,
    pub online_users: usize,
    pub online_agents: usize,
    /// Open conversations of the agents connected to this node.
    pub open_conversations: i64,
}

#[derive(Serialize, TS)]
#[ts(rename = "NodesResponse")]
pub struct Nodes {
    pub nodes: Vec<NodeSummary>,
}

#[derive(Serialize, TS)]
#[ts(rename = "CannedReply")]
pub struct ReplyBody {
    pub id: String,
    pub shortcut: String,
    pub content: String,
    pub shared: bool,
}

impl From<CannedReply> for ReplyBody {
    fn from(reply: CannedReply) -> Self {
        Self {
            id: reply.id.to_string(),
            shared: reply.owner_id.is_none(),
            shortcut: reply.shortcut,
            content: reply.content,
        }
    }
}

#[derive(Serialize, TS)]
#[ts(rename = "CannedRepliesResponse")]
pub struct Replies {
    pub replies: Vec<ReplyBody>,
}

#[derive(Serialize, TS)]
#[ts(rename = "CannedReplyResponse")]
pub struct One {
    pub reply: ReplyBody,
}

#[derive(Deserialize, TS)]
#[ts(rename = "CreateCannedReplyRequest")]
#[serde(deny_unknown_fields)]
pub struct NewReply {
    pub shortcut: String,
    pub content: String,
    #[serde(default)]
    #[ts(optional, as = "Option<bool>")]
    pub shared: bool,
}

#[derive(Deserialize, TS)]
#[ts(rename = "UpdateCannedReplyRequest")]
#[serde(deny_unknown_fields)]
#[ts(optional_fields)]
pub struct ReplyChange {
    pub shortcut: Option<String>,
    pub content: Option<String>,
}

#[derive(Serialize, TS)]
#[ts(rename = "AttachmentResponse")]
pub struct Uploaded<'a> {
    pub attachment: AttachmentPayload<'a>,
}

#[derive(Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Person<'a> {
    pub id: UserId,
    pub display_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub email: Option<&'a str>,
}

#[derive(Serialize, TS)]
#[ts(rename = "FoundConversation")]
#[serde(rename_all = "camelCase")]
pub struct Found<'a> {
    pub id: ConversationId,
    pub customer: Person<'a>,
    pub agent: Option<Person<'a>>,
    #[ts(type = "ConversationStatus")]
    pub status: &'static str,
    pub messages: i64,
    pub created_at: String,
    pub resolved_at: Option<String>,
    pub rating: Option<i64>,
    /// Left through the offline form.
    pub offline: bool,
    /// How kefu ended it, when kefu did.
    #[ts(type = "\"abandoned\" | \"idle\" | null")]
    pub ended_as: Option<&'a str>,
}

impl<'a> Found<'a> {
    pub fn new(record: &'a ConversationRecord) -> Self {
        let c = &record.conversation;
        Self {
            id: c.id,
            customer: Person {
                id: c.customer_id,
                display_name: &record.customer_name,
                username: Some(&record.customer_username),
                email: record.customer_email.as_deref(),
            },
            agent: c.agent_id.map(|id| Person {
                id,
                display_name: record.agent_name.as_deref().unwrap_or_default(),
                username: None,
                email: None,
            }),
            status: if c.open { "open" } else { "resolved" },
            messages: c.last_seq,
            created_at: format_timestamp(record.created_at),
            resolved_at: record.resolved_at.map(format_timestamp),
            rating: record.rating,
            offline: record.offline,
            ended_as: record.ended_as.as_deref(),
        }
    }
}

#[derive(Serialize, TS)]
#[ts(rename = "FoundConversationsResponse")]
#[serde(rename_all = "camelCase")]
pub struct FoundPage<'a> {
    pub conversations: Vec<Found<'a>>,
    /// The `before` of the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub next_before: Option<ConversationId>,
}

#[derive(Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct TranscriptConversation<'a> {
    pub id: ConversationId,
    pub customer_id: UserId,
    pub customer: Person<'a>,
    pub agent_id: Option<UserId>,
    #[ts(type = "ConversationStatus")]
    pub status: &'static str,
    pub created_at: String,
    pub resolved_at: Option<String>,
    pub rating: Option<i64>,
    pub rating_comment: Option<&'a str>,
}

#[derive(Serialize, TS)]
#[ts(rename = "ConversationEvent")]
#[serde(rename_all = "camelCase")]
pub struct EventPayload {
    pub id: i64,
    #[ts(type = "ConversationEventKind")]
    pub kind: &'static str,
    pub timestamp: String,
    pub actor_id: Option<UserId>,
    pub agent_id: Option<UserId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub score: Option<i64>,
    /// The event in a sentence, as the text transcript says it.
    pub text: String,
}

#[derive(Serialize, TS)]
#[ts(rename = "TranscriptResponse")]
pub struct TranscriptBody<'a> {
    pub conversation: TranscriptConversation<'a>,
    pub messages: Vec<MessagePayload<'a>>,
    pub events: Vec<EventPayload>,
}

/// `GET /api/availability`.
#[derive(Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AvailabilityBody {
    #[ts(type = "\"open\" | \"busy\" | \"away\" | \"closed\"")]
    pub state: &'static str,
    pub agents_available: i64,
    pub queue_length: i64,
    pub estimate_seconds: Option<i64>,
    /// Milliseconds since the Unix epoch.
    pub opens_at: Option<i64>,
    pub time_zone: String,
    /// Whether kefu sends e-mail (`KEFU_SMTP_URL` is set): without it, nothing is promised by
    /// e-mail.
    pub mail: bool,
}

/// `GET /api/me/contact`.
#[derive(Serialize, TS)]
pub struct ContactBody {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// `POST /api/offline-messages`.
#[derive(Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields)]
pub struct OfflineMessageRequest {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    #[ts(optional = false)]
    pub content: String,
    pub client_msg_id: Option<String>,
}

#[derive(Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct OfflineMessageResponse {
    pub conversation_id: ConversationId,
    #[ts(type = "Message")]
    pub message: serde_json::Value,
    pub place: Option<i64>,
}

/// `GET` and `PUT /api/admin/hours`.
#[derive(Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct HoursBody {
    pub enabled: bool,
    pub time_zone: String,
    pub weekly: Vec<HoursInterval>,
    #[serde(default)]
    pub closed_days: Vec<String>,
}

#[derive(Serialize, Deserialize, TS)]
pub struct HoursInterval {
    #[ts(type = "\"mon\" | \"tue\" | \"wed\" | \"thu\" | \"fri\" | \"sat\" | \"sun\"")]
    pub day: String,
    pub open: String,
    pub close: String,
}
