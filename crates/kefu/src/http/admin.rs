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
    let agents = staff
        .into_iter()
        .map(|(user, disabled)| {
            let connections = app.connections.connections_of(user.id);
            AgentSummary {
                open_conversations: counts.get(&user.id).copied().unwrap_or(0),
                online: connections > 0,
                connections,
                disabled,
                user,
            }
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
        app.connections.disconnect_user(id);
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

/// `GET /api/admin/nodes`: what each node holds (one node until several run together).
pub async fn nodes(
    State(app): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Nodes>, ApiError> {
    require_admin(caller)?;
    use crate::services::delivery::Delivery;
    let agents = app.connections.online_agents();
    let counts = app.store.open_conversation_counts(&agents).await?;
    let node = NodeSummary {
        id: app.node.id.clone(),
        started_at: crate::domain::format_timestamp(app.node.started_at),
        connections: app.connections.len(),
        online_users: app.connections.online_users(),
        online_agents: agents.len(),
        open_conversations: counts.values().sum(),
    };
    Ok(Json(Nodes { nodes: vec![node] }))
}
