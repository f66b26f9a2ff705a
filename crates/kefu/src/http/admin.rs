//! Admin routes: the agents, and what each node holds.

use axum::{
    Json,
    extract::{Path, State},
};
use serde::{Deserialize, Serialize};

use super::{
    api::{ApiJson, Caller},
    error::ApiError,
};
use crate::{
    AppState,
    domain::{Role, User, UserId},
    services::{Error, auth::Identity},
};

fn require_admin(caller: Identity) -> Result<(), ApiError> {
    if caller.role == Role::Admin {
        Ok(())
    } else {
        Err(Error::Forbidden("admins only").into())
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentSummary {
    #[serde(flatten)]
    user: User,
    disabled: bool,
    online: bool,
    connections: usize,
    open_conversations: i64,
}

#[derive(Serialize)]
pub struct Agents {
    agents: Vec<AgentSummary>,
}

/// `GET /api/agents`: every agent and admin, with presence and load.
pub async fn list_agents(
    State(app): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Agents>, ApiError> {
    require_admin(caller)?;
    let staff = app.accounts.staff().await?;
    let ids: Vec<UserId> = staff.iter().map(|(u, _)| u.id).collect();
    let counts = app.store.open_conversation_counts(&ids).await?;
    let online = app.chat.online(&ids).await;
    let agents = staff
        .into_iter()
        .zip(online)
        .map(|((user, disabled), online)| AgentSummary {
            open_conversations: counts.get(&user.id).copied().unwrap_or(0),
            online,
            connections: app.connections.connections_of(user.id),
            disabled,
            user,
        })
        .collect();
    Ok(Json(Agents { agents }))
}

#[derive(Deserialize)]
pub struct AgentUpdate {
    disabled: bool,
}

#[derive(Serialize)]
pub struct Updated {
    user: User,
    disabled: bool,
}

/// `PATCH /api/agents/{id}`: disable (its connections close at once) or enable an account.
pub async fn update_agent(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiJson(update): ApiJson<AgentUpdate>,
) -> Result<Json<Updated>, ApiError> {
    require_admin(caller)?;
    let id = UserId::parse(&id)?;
    let user = app
        .accounts
        .set_disabled(caller, id, update.disabled)
        .await?;
    if update.disabled {
        app.cluster.disconnect_user(id).await;
        app.chat.release_agent(id).await?;
    }
    Ok(Json(Updated {
        user,
        disabled: update.disabled,
    }))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSummary {
    id: String,
    started_at: String,
    connections: usize,
    online_users: usize,
    online_agents: usize,
    /// Open conversations of the agents connected to this node.
    open_conversations: i64,
}

#[derive(Serialize)]
pub struct Nodes {
    nodes: Vec<NodeSummary>,
}

/// `GET /api/admin/nodes`: what each live node holds.
pub async fn nodes(
    State(app): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Nodes>, ApiError> {
    require_admin(caller)?;
    let figures = app.cluster.nodes().await;
    let agents: Vec<UserId> = figures.iter().flat_map(|n| n.agents.clone()).collect();
    let counts = app.store.open_conversation_counts(&agents).await?;
    let nodes = figures
        .into_iter()
        .map(|node| NodeSummary {
            open_conversations: node
                .agents
                .iter()
                .map(|a| counts.get(a).copied().unwrap_or(0))
                .sum(),
            id: node.id,
            started_at: crate::domain::format_timestamp(node.started_at),
            connections: node.connections,
            online_users: node.online_users,
            online_agents: node.agents.len(),
        })
        .collect();
    Ok(Json(Nodes { nodes }))
}
