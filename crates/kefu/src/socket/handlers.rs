//! Thin event handlers: extract, call a service, ack or emit.

use std::{sync::Arc, time::Instant};

use socketioxide::extract::{Event, Extension, State, TryData};

use super::reply::Reply;
use crate::{
    AppState,
    adapter::SocketRef,
    connections::{Conn, Ticket},
    metrics::Limit,
    protocol::{self, *},
    services::{
        Error,
        chat::{self, SendRequest},
        writer::Written,
    },
};

type Ext = Extension<Arc<Conn>>;

fn invalid(event: &str, error: impl std::fmt::Display) -> Error {
    Error::InvalidPayload(format!("invalid {event} payload: {error}"))
}

pub fn register(socket: &SocketRef) {
    socket.on(protocol::LOGIN, login);
    socket.on(protocol::ALL_MEMBER, all_member);
    socket.on(protocol::PRIVATE_MESSAGE, private_message);
    socket.on(protocol::READ, read);
    socket.on(protocol::TYPING, typing);
    socket.on(protocol::HISTORY, history);
    socket.on(protocol::HEARTBEAT, heartbeat);
    socket.on(protocol::SET_STATUS, set_status);
    socket.on(protocol::RESOLVE, resolve);
    socket.on(protocol::QUEUE_STATUS, queue_status);
    socket.on(protocol::TRANSFER, transfer);
    socket.on(protocol::NOTE, note);
    socket.on(protocol::NOTES, notes);
    socket.on(protocol::RATE, rate);
    socket.on_fallback(unknown_event);
}

/// Any other event: with an ack, the client is told at once rather than left waiting forever.
async fn unknown_event(Event(event): Event, reply: Reply) {
    // The name is the client's: bounded before it is echoed back.
    let name: String = event.chars().take(64).collect();
    let Some(reply) = reply.admit(&name) else {
        return;
    };
    reply.error(&name, &Error::UnknownEvent(name.clone()));
}

async fn login(
    socket: SocketRef,
    Extension(conn): Ext,
    State(app): State<AppState>,
    TryData(request): TryData<Payload<LoginRequest>>,
    reply: Reply,
) {
    let Some(reply) = reply.admit(protocol::LOGIN) else {
        return;
    };
    let result = async {
        let Payload(request) = request.map_err(|e| invalid(protocol::LOGIN, e))?;
        let outcome = app
            .chat
            .login(conn.identity, request.user_id, request.cs_id)
            .await?;
        let online = app.chat.online_after_login(conn.identity, &outcome).await?;
        Ok::<_, Error>((outcome, online))
    }
    .await;
    match result {
        Ok((outcome, online)) => {
            app.metrics.logins.inc();
            reply.ok(&LoginAck {
                ok: true,
                cs_id: outcome.cs_id,
                conversation_id: outcome.conversation_id,
                queued: outcome.queued,
                position: outcome.place.map(|p| p.position),
                estimated_wait_seconds: outcome.place.map(|p| p.estimated_wait_seconds),
                ended: outcome.ended,
                requested_agent: outcome.requested.map(|r| protocol::RequestedAgentBody {
                    id: r.id,
                    display_name: r.display_name,
                    online: r.online,
                    waits_until: r.waits_until,
                }),
            });
            let _ = socket.emit(protocol::ONLINE_USER, &(online,));
        }
        Err(error) => reply.send::<()>(protocol::LOGIN, Err(error)),
    }
}

async fn all_member(
    socket: SocketRef,
    Extension(conn): Ext,
    State(app): State<AppState>,
    reply: Reply,
) {
    let Some(reply) = reply.admit(protocol::ALL_MEMBER) else {
        return;
    };
    match app.chat.members(conn.identity).await {
        Ok(members) => {
            let users: Vec<MemberPayload> = members
                .iter()
                .map(|(m, online)| MemberPayload::new(m, *online, conn.identity.user_id))
                .collect();
            let _ = socket.emit(protocol::MY_USERS_LIST, &(&users,));
            reply.ok(&MembersAck {
                ok: true,
                users: &users,
            });
        }
        Err(error) => reply.send::<()>(protocol::ALL_MEMBER, Err(error)),
    }
}

async fn private_message(
    Extension(conn): Ext,
    State(app): State<AppState>,
    ticket: Ticket,
    TryData(request): TryData<Payload<PrivateMessageRequest>>,
    reply: Reply,
) {
    let request = match request {
        Ok(Payload(request)) => request,
        Err(e) => {
            return reply.send::<()>(
                protocol::PRIVATE_MESSAGE,
                Err(invalid(protocol::PRIVATE_MESSAGE, e)),
            );
        }
    };
    if request
        .sender_id
        .is_some_and(|s| s != conn.identity.user_id)
    {
        let error = Error::Forbidden("senderId is not the authenticated user");
        return reply.send::<()>(protocol::PRIVATE_MESSAGE, Err(error));
    }
    if !ticket.within_rate {
        app.metrics.limited(Limit::Messages);
        let error = Error::rate_limited("too many messages, slow down");
        return reply.send::<()>(protocol::PRIVATE_MESSAGE, Err(error));
    }
    if request.content.is_none() && request.attachment_id.is_none() {
        let error = invalid(protocol::PRIVATE_MESSAGE, "missing field `content`");
        return reply.send::<()>(protocol::PRIVATE_MESSAGE, Err(error));
    }
    app.metrics.messages_received.inc();
    let arrived = Instant::now();
    let metrics = app.metrics.clone();
    let send = SendRequest {
        receiver: request.receiver_id,
        content: request.content.unwrap_or_default(),
        client_msg_id: request.client_msg_id,
        attachment_id: request.attachment_id.map(|a| a.0),
    };
    let on_stored = Box::new(move |outcome: Result<Written<'_>, &Error>| match outcome {
        Ok(Written { message, started }) => {
            reply.ok(&SentAck {
                ok: true,
                id: message.id,
                seq: message.seq,
                conversation_id: message.conversation_id,
                created_at: crate::domain::format_timestamp(message.created_at),
                client_msg_id: message.client_msg_id.as_deref(),
                duplicate: message.duplicate,
                started: started.filter(|s| s.created).map(|s| StartedAck {
                    cs_id: s.conversation.agent_id,
                    queued: s.conversation.agent_id.is_none(),
                }),
            });
            metrics
                .message_ack_seconds
                .observe_duration(arrived.elapsed());
        }
        Err(error) => reply.error(protocol::PRIVATE_MESSAGE, error),
    });
    app.chat
        .send(conn.identity, Some(conn.id), send, ticket.turn(), on_stored)
        .await;
}

async fn read(
    Extension(conn): Ext,
    State(app): State<AppState>,
    TryData(request): TryData<Payload<ReadRequest>>,
    reply: Reply,
) {
    let Some(reply) = reply.admit(protocol::READ) else {
        return;
    };
    let result = async {
        let Payload(request) = request.map_err(|e| invalid(protocol::READ, e))?;
        let outcome = app
            .chat
            .read(
                conn.identity,
                Some(conn.id),
                request.peer_id,
                request.up_to_id,
            )
            .await?;
        Ok(ReadAck {
            ok: true,
            conversation_id: outcome.conversation,
            up_to_id: outcome.up_to,
            seq: outcome.seq,
        })
    }
    .await;
    reply.send(protocol::READ, result);
}

async fn typing(
    Extension(conn): Ext,
    State(app): State<AppState>,
    TryData(request): TryData<Payload<TypingRequest>>,
    reply: Reply,
) {
    let Some(reply) = reply.admit(protocol::TYPING) else {
        return;
    };
    let result = async {
        let Payload(request) = request.map_err(|e| invalid(protocol::TYPING, e))?;
        app.chat
            .typing(conn.identity, request.receiver_id, request.typing)
            .await?;
        Ok(protocol::OK)
    }
    .await;
    reply.send(protocol::TYPING, result);
}

async fn history(
    Extension(conn): Ext,
    State(app): State<AppState>,
    TryData(request): TryData<Payload<HistoryRequest>>,
    reply: Reply,
) {
    let Some(reply) = reply.admit(protocol::HISTORY) else {
        return;
    };
    let result = async {
        let Payload(request) = request.map_err(|e| invalid(protocol::HISTORY, e))?;
        let history = app
            .chat
            .history(
                conn.identity,
                chat::HistoryRequest {
                    peer: request.peer_id,
                    conversation: request.conversation_id,
                    before: request.before_id,
                    after_seq: request.after_seq,
                    limit: request.limit,
                },
            )
            .await?;
        Ok(history)
    }
    .await;
    match result {
        Ok(history) => {
            let conversation = history.conversation.as_ref();
            let messages = history
                .page
                .messages
                .iter()
                .map(|m| {
                    let receiver = conversation.and_then(|c| {
                        if m.sender_id == c.customer_id {
                            c.agent_id
                        } else {
                            Some(c.customer_id)
                        }
                    });
                    MessagePayload::new(m, receiver)
                })
                .collect();
            reply.ok(&HistoryAck {
                ok: true,
                conversation_id: conversation.map(|c| c.id),
                messages,
                has_more: history.page.has_more,
                peer_read_seq: history.peer_read_seq,
            });
        }
        Err(error) => reply.send::<()>(protocol::HISTORY, Err(error)),
    }
}

async fn heartbeat(Extension(conn): Ext, State(app): State<AppState>, reply: Reply) {
    let Some(reply) = reply.admit(protocol::HEARTBEAT) else {
        return;
    };
    app.connections.heartbeat(&conn);
    reply.ok(&protocol::OK);
}

async fn set_status(
    Extension(conn): Ext,
    State(app): State<AppState>,
    TryData(request): TryData<Payload<SetStatusRequest>>,
    reply: Reply,
) {
    let Some(reply) = reply.admit(protocol::SET_STATUS) else {
        return;
    };
    let result = async {
        let Payload(request) = request.map_err(|e| invalid(protocol::SET_STATUS, e))?;
        let available = request.status == AgentStatusName::Available;
        app.chat
            .set_status(conn.identity, Some(conn.id), available)
            .await?;
        Ok(StatusAck {
            ok: true,
            status: request.status,
        })
    }
    .await;
    reply.send(protocol::SET_STATUS, result);
}

async fn resolve(
    Extension(conn): Ext,
    State(app): State<AppState>,
    TryData(request): TryData<Payload<PeerRequest>>,
    reply: Reply,
) {
    let Some(reply) = reply.admit(protocol::RESOLVE) else {
        return;
    };
    let result = async {
        let Payload(request) = request.map_err(|e| invalid(protocol::RESOLVE, e))?;
        let conversation_id = app.chat.resolve(conn.identity, request.peer_id).await?;
        Ok(ConversationAck {
            ok: true,
            conversation_id,
        })
    }
    .await;
    reply.send(protocol::RESOLVE, result);
}

async fn queue_status(Extension(conn): Ext, State(app): State<AppState>, reply: Reply) {
    let Some(reply) = reply.admit(protocol::QUEUE_STATUS) else {
        return;
    };
    let result = app
        .chat
        .queue_status(conn.identity)
        .await
        .map(|(conversation_id, place)| QueueStatusAck {
            ok: true,
            queued: place.is_some(),
            conversation_id,
            position: place.map(|p| p.position),
            estimated_wait_seconds: place.map(|p| p.estimated_wait_seconds),
        });
    reply.send(protocol::QUEUE_STATUS, result);
}

async fn transfer(
    Extension(conn): Ext,
    State(app): State<AppState>,
    TryData(request): TryData<Payload<TransferRequest>>,
    reply: Reply,
) {
    let Some(reply) = reply.admit(protocol::TRANSFER) else {
        return;
    };
    let result = async {
        let Payload(request) = request.map_err(|e| invalid(protocol::TRANSFER, e))?;
        let (conversation_id, agent_id) = app
            .chat
            .transfer(
                conn.identity,
                request.peer_id,
                request.to_agent_id,
                request.note,
            )
            .await?;
        Ok(TransferAck {
            ok: true,
            conversation_id,
            agent_id,
        })
    }
    .await;
    reply.send(protocol::TRANSFER, result);
}

async fn note(
    Extension(conn): Ext,
    State(app): State<AppState>,
    TryData(request): TryData<Payload<NoteRequest>>,
    reply: Reply,
) {
    let Some(reply) = reply.admit(protocol::NOTE) else {
        return;
    };
    let result = async {
        let Payload(request) = request.map_err(|e| invalid(protocol::NOTE, e))?;
        app.chat
            .note(conn.identity, request.peer_id, request.content)
            .await
    }
    .await;
    match result {
        Ok(note) => reply.ok(&NoteAck {
            ok: true,
            note: NotePayload::new(&note),
        }),
        Err(error) => reply.send::<()>(protocol::NOTE, Err(error)),
    }
}

async fn notes(
    Extension(conn): Ext,
    State(app): State<AppState>,
    TryData(request): TryData<Payload<NotesRequest>>,
    reply: Reply,
) {
    let Some(reply) = reply.admit(protocol::NOTES) else {
        return;
    };
    let result = async {
        let Payload(request) = request.map_err(|e| invalid(protocol::NOTES, e))?;
        app.chat
            .notes(conn.identity, request.peer_id, request.conversation_id)
            .await
    }
    .await;
    match result {
        Ok(notes) => reply.ok(&NotesAck {
            ok: true,
            notes: notes.iter().map(NotePayload::new).collect(),
        }),
        Err(error) => reply.send::<()>(protocol::NOTES, Err(error)),
    }
}

async fn rate(
    Extension(conn): Ext,
    State(app): State<AppState>,
    TryData(request): TryData<Payload<RateRequest>>,
    reply: Reply,
) {
    let Some(reply) = reply.admit(protocol::RATE) else {
        return;
    };
    let result = async {
        let Payload(request) = request.map_err(|e| invalid(protocol::RATE, e))?;
        app.chat
            .rate(
                conn.identity,
                request.conversation_id,
                request.score,
                request.comment,
            )
            .await?;
        Ok(protocol::OK)
    }
    .await;
    reply.send(protocol::RATE, result);
}
