//! The one ack envelope: `{ok: true, …}` or `{ok: false, error: {code, message}}`; without an ack
//! callback, a failure is emitted as the `error` event instead.

use std::{convert::Infallible, sync::Arc};

use serde::Serialize;
use socketioxide::handler::Value;
use socketioxide::{handler::FromMessageParts, socket::Socket};

use crate::{
    adapter::{Adapter, SocketRef},
    connections::{Conn, Ticket},
    protocol::{self, ErrorAck, ErrorEvent},
    services::Error,
};

type AckSender = socketioxide::extract::AckSender<Adapter>;

pub struct Reply {
    ack: AckSender,
    has_ack: bool,
    socket: SocketRef,
    /// The connection's event allowance had room for this event.
    within_rate: bool,
}

impl FromMessageParts<Adapter> for Reply {
    type Error = Infallible;

    fn from_message_parts(
        s: &Arc<Socket<Adapter>>,
        v: &mut Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Infallible> {
        // Counted as the event arrives, before its handler's task is spawned.
        let within_rate = s
            .extensions
            .get::<Arc<Conn>>()
            .is_none_or(|conn| conn.try_event());
        Ok(Self {
            ack: AckSender::from_message_parts(s, v, ack_id)?,
            has_ack: ack_id.is_some(),
            socket: SocketRef::from(s.clone()),
            within_rate,
        })
    }
}

impl Reply {
    /// The reply, when the connection is within its event rate; otherwise the sender is told
    /// `rate_limited` and the event is dropped without any work done for it.
    pub fn admit(self, event: &str) -> Option<Self> {
        if self.within_rate {
            return Some(self);
        }
        self.error(event, &Error::rate_limited("too many events, slow down"));
        None
    }

    pub fn ok<T: Serialize + ?Sized>(self, data: &T) {
        if let Err(e) = self.ack.send(data) {
            tracing::debug!(error = %e, "ack not sent");
        }
    }

    pub fn error(self, event: &str, error: &Error) {
        let sent = if self.has_ack {
            self.ack.send(&ErrorAck {
                ok: false,
                error: error.into(),
            })
        } else {
            let body = ErrorEvent {
                event,
                code: error.code(),
                message: error.public_message(),
            };
            self.socket.emit(protocol::ERROR, &body)
        };
        if let Err(e) = sent {
            tracing::debug!(error = %e, "error reply not sent");
        }
    }

    /// Acks `result`, or the error it holds (logged once, here).
    pub fn send<T: Serialize>(self, event: &str, result: Result<T, Error>) {
        match result {
            Ok(data) => self.ok(&data),
            Err(error) => {
                error.log(event);
                self.error(event, &error);
            }
        }
    }
}

impl FromMessageParts<Adapter> for Ticket {
    type Error = socketioxide::extract::ExtensionNotFound<Arc<Conn>>;

    /// Runs synchronously as the event arrives, before the handler's task is spawned.
    fn from_message_parts(
        s: &Arc<Socket<Adapter>>,
        v: &mut Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Self::Error> {
        let socketioxide::extract::Extension(conn) =
            socketioxide::extract::Extension::<Arc<Conn>>::from_message_parts(s, v, ack_id)?;
        Ok(conn.ticket())
    }
}
