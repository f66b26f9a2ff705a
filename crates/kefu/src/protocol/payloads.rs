//! What the server pushes: messages, members and the notices of each event.

use serde::Serialize;
use ts_rs::TS;

use super::AgentStatusName;
use crate::{
    domain::{ConversationId, MessageId, Role, User, UserId, format_timestamp},
    store::{Attachment, Member, Note, StoredMessage},
};

/// A message as clients see it, live and in history.
#[derive(Debug, Serialize, TS)]
#[ts(rename = "Message")]
#[serde(rename_all = "camelCase")]
pub struct MessagePayload<'a> {
    pub id: MessageId,
    pub seq: i64,
    pub conversation_id: ConversationId,
    pub sender_id: UserId,
    pub receiver_id: Option<UserId>,
    #[ts(type = "MessageKind")]
    pub kind: &'a str,
    pub content: &'a str,
    pub timestamp: String,
    pub client_msg_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub attachment: Option<AttachmentPayload<'a>>,
}

/// An attachment as clients see it; `url` needs the reader's token (header or `?token=`).
#[derive(Debug, Serialize, TS)]
#[ts(rename = "Attachment")]
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

#[derive(Debug, Serialize, TS)]
#[ts(rename = "Member")]
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
    /// The conversation was left through the offline form (a customer, as its agent lists it).
    pub offline: bool,
    /// A customer's e-mail and phone, for its agent; never a staff member's.
    pub email: Option<&'a str>,
    pub phone: Option<&'a str>,
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
            offline: member.offline,
            email: member
                .email
                .as_deref()
                .filter(|_| member.user.role == Role::Customer),
            phone: member
                .phone
                .as_deref()
                .filter(|_| member.user.role == Role::Customer),
        }
    }
}

#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct MessagesRead {
    pub reader_id: UserId,
    pub up_to_id: MessageId,
    pub conversation_id: ConversationId,
    pub seq: i64,
}

#[derive(Debug, Serialize, TS)]
#[ts(rename = "TypingEvent")]
#[serde(rename_all = "camelCase")]
pub struct Typing {
    pub user_id: UserId,
    pub typing: bool,
}

#[derive(Debug, Serialize, TS)]
#[ts(rename = "MemberPresence")]
#[serde(rename_all = "camelCase")]
pub struct MemberUpdate {
    pub user_id: UserId,
    pub online: bool,
}

#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ConversationQueued {
    pub conversation_id: ConversationId,
}

#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ConversationAssigned<'a> {
    pub conversation_id: ConversationId,
    pub customer_id: UserId,
    pub agent_id: UserId,
    pub agent: &'a User,
}

#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct QueuePosition {
    pub conversation_id: ConversationId,
    pub position: i64,
    pub estimated_wait_seconds: i64,
}

#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ConversationResolved {
    pub conversation_id: ConversationId,
    pub customer_id: UserId,
    pub agent_id: UserId,
}

#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ConversationTransferred {
    pub conversation_id: ConversationId,
    pub customer_id: UserId,
    pub from_agent_id: UserId,
    pub to_agent_id: Option<UserId>,
}

#[derive(Debug, Serialize, TS)]
#[ts(rename = "Note")]
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

#[derive(Debug, Serialize, TS)]
pub struct NewNote<'a> {
    pub note: NotePayload<'a>,
}

#[derive(Debug, Serialize, TS)]
#[ts(rename = "AgentStatusEvent")]
#[serde(rename_all = "camelCase")]
pub struct AgentStatus {
    pub agent_id: UserId,
    pub status: AgentStatusName,
}

/// The server may have missed delivering something to this client (reason `"cluster"`: a node
/// lost its Redis link): fetch what a reconnect fetches, whatever the reason says.
#[derive(Debug, Serialize, TS)]
#[ts(rename = "ResyncEvent")]
pub struct Resync {
    pub reason: &'static str,
}
