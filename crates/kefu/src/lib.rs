//! kefu: a real-time customer-service chat server.
//!
//! - [`config`]: one typed [`Settings`] from defaults, a TOML file, `KEFU_*` and flags.
//! - [`domain`]: ids, roles, message content, queue places, each parsed once at the edge; no I/O.
//! - [`store`]: SQLite, MySQL/MariaDB or PostgreSQL through one query set; migrations per dialect.
//! - [`services`]: accounts and tokens, the chat rules (login, routing and the queue, messaging,
//!   notes, presence), group commit of messages, transcripts, reports, abuse limits, e-mail both
//!   ways (`services::mail`).
//! - [`protocol`]: every event, payload, ack and error body of both transports (docs/protocol.md),
//!   and the encoder of notices; the web UI's TypeScript types are generated from it.
//! - [`adapter`]: the Socket.IO adapter over kefu's Redis link, and the rooms.
//! - [`connections`]: this node's live connections by user: presence here, delivery here.
//! - [`cluster`]: several nodes on one Redis: delivery to the other nodes, shared presence.
//! - [`socket`]: the Socket.IO side: handshake auth, thin handlers.
//! - [`http`]: the REST API, health checks and the embedded web UI, over our HTTP/1.1 and TLS loop.
//! - [`state`]: what every handler shares; [`server`]: the start, the sweeps and the stop.
//! - [`metrics`]: Prometheus counters and histograms.
//!
//! A message goes: socket handler → [`services::chat::Chat::send`] (authorise, validate) → a
//! writer shard ([`services::writer`]) that commits it with others in one transaction → the
//! sender's ack → the receiver's connections, in `seq` order ([`cluster::Cluster`] delivers it
//! here through [`connections`] and to the other nodes through the [`adapter`]).

pub mod adapter;
pub mod cluster;
pub mod config;
pub mod connections;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod protocol;
pub mod server;
pub mod services;
pub mod socket;
pub mod state;
pub mod store;
pub mod telemetry;

pub use config::Settings;
pub use server::{Server, run};
pub use state::AppState;
