//! The Socket.IO side: the handshake authenticates (identity lives in the socket's extensions for
//! its whole life), then thin handlers call the services.

mod handlers;
mod reply;

use std::{sync::Arc, time::Duration};

use serde::Deserialize;
use socketioxide::{
    ParserConfig, SocketIo,
    extract::{Extension, State, TryData},
    handler::ConnectHandler,
    layer::SocketIoLayer,
    socket::DisconnectReason,
};
use socketioxide_redis::{RedisAdapterConfig, RedisAdapterCtr};

use crate::{
    AppState,
    adapter::{Adapter, Io, Link, SocketRef, user_node_room, user_room},
    config::Settings,
    connections::Conn,
    metrics::{Handshake, Limit},
    services::Error,
};

/// Binary attachments a packet may announce: kefu expects none, so a small cap stops a client from
/// making the server wait for (and buffer) thousands.
const MAX_INCOMING_BINARIES: usize = 10;
/// The first read buffer of each WebSocket, held for the connection's life (engineioxide's
/// default is 4 KiB). kefu's events are small; a larger frame grows the buffer as it arrives.
const WS_READ_BUFFER_BYTES: usize = 1024;
/// Broadcasts from other nodes that may wait to be handed to this node's sockets.
const CLUSTER_STREAM_BUFFER: usize = 65_536;

/// The Socket.IO layer, with the adapter that reaches the other nodes through `link`.
pub async fn layer(
    settings: &Settings,
    link: Link,
    redis_prefix: &str,
    state: AppState,
) -> anyhow::Result<(SocketIoLayer<Adapter>, Io)> {
    // Room for the largest message plus its JSON framing; anything bigger closes the connection.
    let max_payload = (settings.max_message_bytes as u64 * 2 + 16 * 1024).max(64 * 1024);
    let adapter = RedisAdapterCtr::new_with_driver(
        link,
        RedisAdapterConfig::new()
            .with_prefix(format!("{redis_prefix}-socket.io"))
            // Broadcasts from other nodes waiting to be handed out here: a full buffer drops
            // (the client then finds a `seq` gap and resyncs), so it is roomy; it only takes
            // memory while it is full.
            .with_stream_buffer(CLUSTER_STREAM_BUFFER),
    );
    let (layer, io) = SocketIo::builder()
        .with_adapter::<Adapter>(adapter)
        .max_buffer_size(settings.socket_buffer_packets)
        .ws_read_buffer_size(WS_READ_BUFFER_BYTES)
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
    // Subscribing waits for nothing: while Redis is away, the link subscribes when it is back.
    io.ns("/", on_connect.with(authenticate))
        .await
        .map_err(|e| anyhow::anyhow!("starting the Socket.IO namespace: {e:?}"))?;
    Ok((layer, io))
}

#[derive(Deserialize)]
struct HandshakeAuth {
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
    TryData(auth): TryData<HandshakeAuth>,
    State(app): State<AppState>,
) -> Result<(), Refused> {
    let ip = app.limits.client_ip(socket.req_parts());
    if app.limits.handshakes.take(&ip).is_err() {
        app.metrics.limited(Limit::Handshakes);
        app.metrics.handshake(Handshake::Limited);
        return Err(Refused("rate_limited"));
    }
    let Ok(HandshakeAuth { token }) = auth else {
        app.metrics.handshake(Handshake::Unauthorized);
        return Err(Refused("unauthorized"));
    };
    match app.accounts.verify(&token).await {
        Ok(verified) => {
            let identity = verified.identity;
            let conn = app.connections.new_conn(verified);
            socket.extensions.insert(conn.clone());
            // Everything that must hold from the first event on happens here, before the server
            // confirms the connection: the connect handler runs later, as a task of its own, and
            // a message sent right after connecting must find the socket with its handlers and
            // among its user's connections.
            handlers::register(&socket);
            socket.on_disconnect(on_disconnect);
            if app.cluster.link().is_cluster() {
                // Other nodes reach the user's connections through its room; this node's own go
                // through the registry, so broadcasts from here leave them out by the second.
                let user = identity.user_id;
                socket.join([user_room(user), user_node_room(user, app.cluster.node())]);
            }
            if app.connections.add(conn, socket.clone()).is_err() {
                app.metrics.limited(Limit::ConnectionsPerUser);
                app.metrics.handshake(Handshake::Limited);
                return Err(Refused("too_many_connections"));
            }
            app.metrics.handshake(Handshake::Accepted);
            Ok(())
        }
        Err(Error::Unavailable | Error::CannotWrite) => {
            app.metrics.handshake(Handshake::Unavailable);
            Err(Refused("unavailable"))
        }
        Err(error) => {
            error.log("handshake");
            app.metrics.handshake(Handshake::Unauthorized);
            Err(Refused("unauthorized"))
        }
    }
}

/// The connection is confirmed: its user comes online unless it already was (announced by the
/// presence task, in the order of the changes).
async fn on_connect(
    socket: SocketRef,
    Extension(conn): Extension<Arc<Conn>>,
    State(app): State<AppState>,
) {
    if socket.connected() {
        app.connections.confirm(&conn);
    }
}

/// How long a client may keep its Engine.IO transport open after the server ended its only
/// namespace connection (a sign-out, a revoked token, a slow consumer): the official client
/// closes it at once, or connects again over it.
const TRANSPORT_GRACE: Duration = Duration::from_secs(2);

async fn on_disconnect(
    socket: SocketRef,
    reason: DisconnectReason,
    Extension(conn): Extension<Arc<Conn>>,
    State(app): State<AppState>,
) {
    app.connections.remove(&conn);
    if reason != DisconnectReason::ServerNSDisconnect {
        return;
    }
    let Some(closer) = socket
        .req_parts()
        .extensions
        .get::<engineioxide::SessionCloser>()
        .cloned()
    else {
        return;
    };
    let (sid, user) = (socket.id, conn.identity.user_id);
    tokio::spawn(async move {
        tokio::time::sleep(TRANSPORT_GRACE).await;
        if !app.connections.holds_session(user, sid) {
            closer.close(engineioxide::DisconnectReason::TransportClose);
        }
    });
}
