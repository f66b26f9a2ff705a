//! The Socket.IO side: the handshake authenticates (identity lives in the socket's extensions for
//! its whole life), then thin handlers call the services.

pub mod connections;
pub mod events;
mod handlers;
mod reply;

use std::{sync::Arc, time::Duration};

use serde::Deserialize;
use socketioxide::{
    ParserConfig, SocketIo,
    extract::{Extension, SocketRef, State, TryData},
    handler::ConnectHandler,
    layer::SocketIoLayer,
};

use self::connections::Conn;
use crate::{AppState, config::Settings, services::Error};

/// Binary attachments a packet may announce: kefu expects none, so a small cap stops a client from
/// making the server wait for (and buffer) thousands.
const MAX_INCOMING_BINARIES: usize = 10;

pub fn layer(settings: &Settings, state: AppState) -> (SocketIoLayer, SocketIo) {
    // Room for the largest message plus its JSON framing; anything bigger closes the connection.
    let max_payload = (settings.max_message_bytes as u64 * 2 + 16 * 1024).max(64 * 1024);
    let (layer, io) = SocketIo::builder()
        .max_buffer_size(settings.socket_buffer_packets)
        .ping_interval(Duration::from_millis(settings.ping_interval_ms))
        .ping_timeout(Duration::from_millis(settings.ping_timeout_ms))
        .max_payload(max_payload)
        .ws_max_message_size(max_payload as usize)
        .ws_max_frame_size(max_payload as usize)
        .with_parser(
            ParserConfig::common()
                .max_incoming_binaries(MAX_INCOMING_BINARIES)
                .max_incoming_binary_buf_size(max_payload as usize),
        )
        .with_state(state)
        .build_layer();
    io.ns("/", on_connect.with(authenticate));
    (layer, io)
}

#[derive(Deserialize)]
struct Handshake {
    token: String,
}

/// Why a handshake was refused; its text is the `connect_error` message.
#[derive(Debug)]
struct Refused(&'static str);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

async fn authenticate(
    socket: SocketRef,
    TryData(auth): TryData<Handshake>,
    State(app): State<AppState>,
) -> Result<(), Refused> {
    let Ok(Handshake { token }) = auth else {
        return Err(Refused("unauthorized"));
    };
    match app.accounts.authenticate(&token).await {
        Ok(identity) => {
            let conn = app.connections.new_conn(identity);
            socket.extensions.insert(conn.clone());
            // Everything that must hold from the first event on happens here, before the server
            // confirms the connection: the connect handler runs later, as a task of its own, and
            // a message sent right after connecting must find the socket with its handlers and
            // among its user's connections.
            handlers::register(&socket);
            socket.on_disconnect(on_disconnect);
            let first = app.connections.add(conn.clone(), socket.clone());
            conn.set_first_of_user(first);
            Ok(())
        }
        Err(Error::Unavailable) => Err(Refused("unavailable")),
        Err(error) => {
            error.log("handshake");
            Err(Refused("unauthorized"))
        }
    }
}

/// Announces the user online when this is its first connection.
async fn on_connect(
    socket: SocketRef,
    Extension(conn): Extension<Arc<Conn>>,
    State(app): State<AppState>,
) {
    if conn.first_of_user() && socket.connected() {
        tracing::debug!(user = %conn.identity.user_id, "online");
        if let Err(error) = app.chat.presence_changed(conn.identity, true).await {
            error.log("announcing presence");
        }
    }
}

async fn on_disconnect(Extension(conn): Extension<Arc<Conn>>, State(app): State<AppState>) {
    if app.connections.remove(&conn) {
        tracing::debug!(user = %conn.identity.user_id, "offline");
        if let Err(error) = app.chat.presence_changed(conn.identity, false).await {
            error.log("announcing presence");
        }
    }
}
