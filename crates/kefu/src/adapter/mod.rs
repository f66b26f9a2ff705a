//! The Socket.IO adapter every node runs: socketioxide-redis over kefu's own Redis [`link`], which
//! never leaves the process when a node runs alone. What the connection registry, the cluster and
//! the socket layer all name (the socket and server types, the rooms) lives here, below them.

pub mod link;

use socketioxide::{SocketIo, adapter::Emitter};
use socketioxide_redis::CustomRedisAdapter;

use crate::domain::UserId;
pub use link::{Link, LinkError, LinkState};

/// The Socket.IO adapter of every node; alone, its link never leaves the process.
pub type Adapter = CustomRedisAdapter<Emitter, Link>;
pub type Io = SocketIo<Adapter>;
pub type SocketRef = socketioxide::extract::SocketRef<Adapter>;

/// The one Socket.IO namespace kefu serves. It is gone once the server has closed, so it is looked
/// up each time (socketioxide's shortcuts panic without it).
pub const ROOT: &str = "/";

/// The room of every connection of a user, on every node.
pub fn user_room(user: UserId) -> String {
    format!("u:{user}")
}

/// The room of a user's connections on one node: this node's own connections are served from
/// the registry, so a broadcast leaves them out with this room.
pub fn user_node_room(user: UserId, node: &str) -> String {
    format!("u:{user}@{node}")
}
