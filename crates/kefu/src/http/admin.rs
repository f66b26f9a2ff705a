//! Admin routes: the agents, and what each node holds.

use axum::{
    Json,
    extract::{Path, Query, State},
};
use serde::Deserialize;

use super::{
    api::{ApiJson, Caller},
    error::ApiError,
};
use crate::protocol::http::{
    AgentSummary, AgentUpdate, Agents, Colleague, Colleagues, NodeSummary, Nodes, Updated,
};
use crate::{
    AppState,
    domain::{Role, UserId},
    protocol::AgentStatusName,
    services::{
        Error,
        auth::Identity,
        reports::{MAX_DAYS, Report},
    },
};

pub(super) fn require_admin(caller: Identity) -> Result<(), ApiError> {
    if caller.role == Role::Admin {
        Ok(())
    } else {
        Err(Error::Forbidden("admins only").into())
    }
}

/// `GET /api/agents`: every agent and admin, with presence and load.
pub async fn list_agents(
    State(app): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Agents>, ApiError> {
    require_admin(caller)?;
    let staff = app.accounts.staff().await?;
    let ids: Vec<UserId> = staff.iter().map(|(u, _)| u.id).collect();
    let agents = app
        .chat
        .staff_loads(&ids)
        .await?
        .into_iter()
        .map(|(load, online)| AgentSummary {
            open_conversations: load.open,
            online,
            connections: app.connections.connections_of(load.user.id),
            disabled: load.disabled,
            capacity: load.capacity,
            status: AgentStatusName::of(!load.away),
            user: load.user,
        })
        .collect();
    Ok(Json(Agents { agents }))
}

/// `GET /api/agents/available`: the enabled agents, for a transfer; any staff member.
pub async fn colleagues(
    State(app): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Colleagues>, ApiError> {
    if !caller.role.is_staff() {
        return Err(Error::Forbidden("staff only").into());
    }
    let staff = app.accounts.staff().await?;
    let ids: Vec<UserId> = staff
        .iter()
        .filter(|(u, disabled)| !disabled && u.role == Role::Agent)
        .map(|(u, _)| u.id)
        .collect();
    let agents = app
        .chat
        .staff_loads(&ids)
        .await?
        .into_iter()
        .map(|(load, online)| Colleague {
            online,
            status: AgentStatusName::of(!load.away),
            open_conversations: load.open,
            capacity: load.capacity,
            user: load.user,
        })
        .collect();
    Ok(Json(Colleagues { agents }))
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
    if update.disabled.is_none() && update.capacity.is_none() {
        return Err(Error::InvalidPayload("give disabled or capacity".into()).into());
    }
    if let Some(capacity) = update.capacity {
        app.chat.set_capacity(id, capacity).await?;
    }
    if let Some(disabled) = update.disabled {
        app.accounts.set_disabled(caller, id, disabled).await?;
        app.cluster.account_changed(id);
        app.chat.staff_changed();
        if disabled {
            app.cluster.disconnect_user(id);
            app.chat
                .release_agent(id, crate::services::chat::Release::Disabled)
                .await?;
        }
    }
    let load = app
        .chat
        .staff_loads(&[id])
        .await?
        .into_iter()
        .next()
        .map(|(load, _)| load)
        .ok_or(Error::NotFound("no such agent"))?;
    Ok(Json(Updated {
        user: load.user,
        disabled: load.disabled,
        capacity: load.capacity,
    }))
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

#[derive(Deserialize)]
pub struct ReportQuery {
    days: Option<String>,
}

/// `GET /api/admin/reports?days=30`: conversations per day, and per agent first response,
/// resolution and CSAT.
pub async fn reports(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Query(query): Query<ReportQuery>,
) -> Result<Json<Report>, ApiError> {
    require_admin(caller)?;
    let days = match query.days.as_deref() {
        None => 30,
        Some(days) => days
            .parse()
            .map_err(|_| Error::InvalidPayload(format!("days must be between 1 and {MAX_DAYS}")))?,
    };
    Ok(Json(app.reports.report(days).await?))
}
