//! Notices to events: each payload serialized once, for every connection on every node.

use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;

use super::*;
use crate::services::delivery::Notice;

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
