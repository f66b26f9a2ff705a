//! What every handler shares: the settings, this node, the store and the services, the connection
//! registry and the cluster. Built once by [`crate::server::Server::open`].

use std::{ops::Deref, sync::Arc};

use crate::{
    cluster::Cluster,
    config::Settings,
    connections::Connections,
    domain,
    metrics::Metrics,
    services::{
        accounts::Accounts, attachments::Attachments, canned::CannedReplies, chat::Chat,
        hours::Hours, limits::Limits, mail::Mail, reports::Reports, transcripts::Transcripts,
    },
    store::Store,
};

/// Everything a handler may need, cheap to clone.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Shared>);

pub struct Shared {
    pub settings: Settings,
    pub node: Node,
    pub store: Store,
    pub accounts: Accounts,
    pub chat: Chat,
    pub hours: Hours,
    pub reports: Reports,
    pub transcripts: Transcripts,
    pub canned: CannedReplies,
    pub attachments: Attachments,
    pub connections: Arc<Connections>,
    pub cluster: Arc<Cluster>,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    pub mail: Mail,
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// This process, as the admin page lists it.
pub struct Node {
    pub id: String,
    /// Milliseconds since the Unix epoch.
    pub started_at: i64,
}

impl Node {
    pub(crate) fn new(configured: Option<&str>) -> Self {
        let id = configured.map(str::to_owned).unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            let host = host.trim();
            format!(
                "{}-{}",
                if host.is_empty() { "kefu" } else { host },
                std::process::id()
            )
        });
        Self {
            id,
            started_at: domain::now_millis(),
        }
    }
}
