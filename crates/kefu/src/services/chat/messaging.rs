//! Messages: send (validated here, stored by the writer), read marks, typing, history pages, and
//! the system messages kefu writes itself.

use std::future::Future;

use super::{Chat, other_side};
use crate::{
    domain::{ClientMsgId, Content, ConversationId, HistoryLimit, MessageId, Role, UserId},
    services::{
        Error, Result,
        auth::Identity,
        delivery::{ConnectionId, Notice},
        writer::{Reply, WriteJob, Written},
    },
    store::{
        Conversation, HistoryPage, NewMessage, Page, Start, Started, StoreError, StoredMessage,
    },
};

pub struct SendRequest {
    pub receiver: Option<UserId>,
    pub content: String,
    pub client_msg_id: Option<String>,
    /// An uploaded file to send; `content` is then an optional caption.
    pub attachment_id: Option<i64>,
}

pub struct HistoryRequest {
    pub peer: Option<UserId>,
    pub conversation: Option<ConversationId>,
    pub before: Option<MessageId>,
    pub after_seq: Option<i64>,
    pub limit: Option<i64>,
}

pub struct History {
    pub conversation: Option<Conversation>,
    pub page: HistoryPage,
    /// How far the other side has read (0 before its first `read`).
    pub peer_read_seq: i64,
}

/// A message ready for the writer.
pub(super) struct Prepared {
    message: NewMessage,
    customer: UserId,
    receiver: Option<UserId>,
    start: Option<Start>,
}

pub struct ReadOutcome {
    pub conversation: ConversationId,
    pub up_to: MessageId,
    pub seq: i64,
}

impl Chat {
    /// Validates and queues a message. `turn` resolves when the sender's earlier messages are
    /// queued, so that one connection's messages keep their order. `reply` runs once the message
    /// is stored (or refused); delivery follows, in `seq` order. A customer's first message (since
    /// its last conversation ended, or ever) starts its conversation in the same commit.
    #[tracing::instrument(skip_all, fields(user = %me.user_id))]
    pub async fn send(
        &self,
        me: Identity,
        origin: Option<ConnectionId>,
        request: SendRequest,
        turn: impl Future<Output = ()>,
        reply: Reply,
    ) {
        let prepared = self.prepare(me, request).await;
        turn.await;
        match prepared {
            Ok(prepared) => {
                let reply = match prepared.start {
                    Some(start) => self.starting(start, reply),
                    None => reply,
                };
                self.writer
                    .submit(WriteJob {
                        message: prepared.message,
                        customer: prepared.customer,
                        start: prepared.start,
                        receiver: prepared.receiver,
                        origin,
                        reply,
                    })
                    .await;
            }
            Err(error) => {
                error.log("private_message");
                reply(Err(&error));
            }
        }
    }

    pub(super) async fn prepare(&self, me: Identity, request: SendRequest) -> Result<Prepared> {
        let attachment = match request.attachment_id {
            Some(id) => match self.store.attachment(id).await {
                Ok(attachment) if attachment.uploader_id == me.user_id => Some(attachment),
                Ok(_) | Err(StoreError::NotFound) => {
                    return Err(Error::NotFound("no such attachment"));
                }
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        let content = match (&attachment, request.content.trim().is_empty()) {
            // A file without a caption is shown by its name.
            (Some(attachment), true) => Content::parse(attachment.name.clone(), usize::MAX)?,
            _ => Content::parse(request.content, self.max_message_bytes)?,
        };
        let client_msg_id = request.client_msg_id.map(ClientMsgId::parse).transpose()?;
        let (conversation, customer, receiver, start) = if me.role.is_staff() {
            let conversation = self.conversation_with(me, request.receiver).await?;
            let customer = conversation.customer_id;
            (Some(conversation), customer, Some(customer), None)
        } else {
            match self.latest(me.user_id).await?.open() {
                Some(conversation) => {
                    self.check_peer(&conversation, request.receiver).await?;
                    let agent = conversation.agent_id;
                    (Some(conversation), me.user_id, agent, None)
                }
                None => {
                    // The first message: to the agent it names, or the one asked for at login.
                    if let Some(named) = request.receiver {
                        self.check_requested(named).await?;
                    }
                    let requested = request.receiver.or_else(|| self.requests.of(me.user_id));
                    // Routed last, once the message is known to be valid: the agent is reserved.
                    let start = Start {
                        customer: me.user_id,
                        agent: requested,
                        waits_for: None,
                    };
                    (None, me.user_id, None, Some(start))
                }
            }
        };
        if attachment.as_ref().is_some_and(|a| {
            conversation
                .as_ref()
                .is_none_or(|c| a.conversation_id != c.id)
        }) {
            return Err(Error::Forbidden(
                "that file was uploaded to another conversation",
            ));
        }
        let kind = match &attachment {
            Some(a) if a.mime.starts_with("image/") => "image",
            Some(_) => "file",
            None => "text",
        };
        let message = NewMessage {
            // A start's conversation is made by the writer (the id is not read).
            conversation_id: conversation.map_or(ConversationId(0), |c| c.id),
            sender_id: me.user_id,
            kind,
            content: content.into_inner(),
            client_msg_id: client_msg_id.map(|c| c.as_str().to_owned()),
            attachment_id: attachment.map(|a| a.id),
        };
        let start = match start {
            Some(start) => {
                let (agent, waits_for) = self.join_start(start.customer, start.agent).await?;
                Some(Start {
                    agent,
                    waits_for,
                    ..start
                })
            }
            None => None,
        };
        Ok(Prepared {
            message,
            customer,
            receiver,
            start,
        })
    }

    /// A first message's reply: once it is stored, the conversation it started is known here and
    /// told (assigned, or waiting in the queue), before the sender's ack and the delivery.
    fn starting(&self, start: Start, reply: Reply) -> Reply {
        let chat = self.clone();
        Box::new(move |outcome| {
            let (created, took) = match &outcome {
                Ok(Written {
                    started: Some(started),
                    ..
                }) => {
                    chat.conversation_started(started);
                    let created = started.created;
                    let took = created
                        && start.agent.is_some()
                        && started.conversation.agent_id == start.agent;
                    (created, took)
                }
                _ => (false, false),
            };
            // The promise ends: kept, or not (the agent filled up, the conversation existed, the
            // write failed), and then its place is free again.
            chat.start_written(start.customer, created, took);
            reply(outcome);
        })
    }

    fn conversation_started(&self, started: &Started) {
        let conversation = &started.conversation;
        let customer = conversation.customer_id;
        self.requests.forget(customer);
        self.open.put_open(conversation);
        if !started.created {
            return;
        }
        tracing::info!(conversation = %conversation.id, "conversation started");
        match conversation.agent_id {
            Some(agent) => {
                match self.roster.staff(agent) {
                    // The customer just wrote: it is online.
                    Some(load) => self.told_assigned(conversation, &load.user, true),
                    None => {
                        let (chat, conversation) = (self.clone(), conversation.clone());
                        tokio::spawn(async move {
                            match chat.store.user(agent).await {
                                Ok(record) => {
                                    chat.announce_assignment(&conversation, &record.user).await;
                                }
                                Err(error) => {
                                    Error::from(error).log("announcing an assignment");
                                }
                            }
                        });
                    }
                }
            }
            None => {
                self.delivery.conversation_changed(customer);
                self.wake_queue();
            }
        }
    }

    /// Marks my conversation with `peer` read up to a message and tells the peer and my other
    /// connections.
    #[tracing::instrument(skip_all, fields(user = %me.user_id))]
    pub async fn read(
        &self,
        me: Identity,
        origin: Option<ConnectionId>,
        peer: Option<UserId>,
        up_to: MessageId,
    ) -> Result<ReadOutcome> {
        let conversation = self.conversation_with(me, peer).await?;
        let message = self
            .store
            .message_in(conversation.id, up_to)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => Error::NotFound("no such message in this conversation"),
                other => other.into(),
            })?;
        self.store
            .mark_read(me.user_id, conversation.id, message.seq)
            .await?;
        let notice = Notice::Read {
            reader: me.user_id,
            up_to,
            conversation: conversation.id,
            seq: message.seq,
        };
        if let Some(peer) = other_side(me, &conversation) {
            self.delivery.notify(peer, &notice, None);
        }
        self.delivery.notify(me.user_id, &notice, origin);
        Ok(ReadOutcome {
            conversation: conversation.id,
            up_to,
            seq: message.seq,
        })
    }

    #[tracing::instrument(skip_all, fields(user = %me.user_id))]
    pub async fn typing(&self, me: Identity, receiver: Option<UserId>, typing: bool) -> Result<()> {
        let conversation = if me.role.is_staff() {
            self.conversation_with(me, receiver).await?
        } else {
            // Before its first message a customer types to nobody.
            let Some(conversation) = self.latest(me.user_id).await?.open() else {
                if let Some(named) = receiver {
                    self.check_requested(named).await?;
                }
                return Ok(());
            };
            self.check_peer(&conversation, receiver).await?;
            conversation
        };
        if let Some(peer) = other_side(me, &conversation) {
            self.delivery.notify(
                peer,
                &Notice::Typing {
                    user: me.user_id,
                    typing,
                },
                None,
            );
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(user = %me.user_id))]
    pub async fn history(&self, me: Identity, request: HistoryRequest) -> Result<History> {
        let limit = HistoryLimit::parse(request.limit)?.get();
        let conversation = match request.conversation {
            Some(id) => {
                let conversation = self.store.conversation(id).await.map_err(|e| match e {
                    StoreError::NotFound => Error::NotFound("no such conversation"),
                    other => other.into(),
                })?;
                let mine = conversation.customer_id == me.user_id
                    || (me.role.is_staff() && conversation.agent_id == Some(me.user_id));
                if !mine {
                    return Err(Error::NotFound("no such conversation"));
                }
                Some(conversation)
            }
            None if me.role == Role::Customer => {
                let conversation = self.store.latest_conversation(me.user_id).await?;
                if let (Some(peer), Some(c)) = (request.peer, &conversation)
                    && c.agent_id != Some(peer)
                {
                    return Err(Error::Forbidden("that user is not your agent"));
                }
                conversation
            }
            None => Some(self.conversation_with(me, request.peer).await?),
        };
        let Some(conversation) = conversation else {
            return Ok(History {
                conversation: None,
                page: HistoryPage {
                    messages: Vec::new(),
                    has_more: false,
                },
                peer_read_seq: 0,
            });
        };
        let page = match (request.before, request.after_seq) {
            (Some(_), Some(_)) => {
                return Err(Error::InvalidPayload(
                    "give beforeId or afterSeq, not both".into(),
                ));
            }
            (Some(before), None) => {
                let anchor: StoredMessage = self
                    .store
                    .message_in(conversation.id, before)
                    .await
                    .map_err(|e| match e {
                        StoreError::NotFound => {
                            Error::NotFound("no such message in this conversation")
                        }
                        other => other.into(),
                    })?;
                Page::Before { seq: anchor.seq }
            }
            (None, Some(seq)) if seq >= 0 => Page::After { seq },
            (None, Some(_)) => {
                return Err(Error::InvalidPayload(
                    "afterSeq must not be negative".into(),
                ));
            }
            (None, None) => Page::Latest,
        };
        let page = self.store.history(conversation.id, page, limit).await?;
        let peer_read_seq = match other_side(me, &conversation) {
            Some(peer) => self.store.read_seq(peer, conversation.id).await?,
            None => 0,
        };
        Ok(History {
            conversation: Some(conversation),
            page,
            peer_read_seq,
        })
    }

    /// Stores a system message in the conversation and delivers it to both sides like any
    /// message; `sender` is the agent it speaks for.
    pub(super) fn say(&self, conversation: &Conversation, sender: UserId, content: String) {
        let job = WriteJob {
            customer: conversation.customer_id,
            start: None,
            message: NewMessage {
                conversation_id: conversation.id,
                sender_id: sender,
                kind: "system",
                content,
                client_msg_id: None,
                attachment_id: None,
            },
            receiver: Some(conversation.customer_id),
            origin: None,
            reply: Box::new(|outcome| {
                if let Err(error) = outcome {
                    error.log("storing a system message");
                }
            }),
        };
        let writer = self.writer.clone();
        tokio::spawn(async move { writer.submit(job).await });
    }
}
