//! `/api/canned-replies`: list, create, change and delete canned replies.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};

use super::{
    api::{ApiJson, Caller},
    error::ApiError,
};
use crate::{AppState, services::Error, store::CannedReply};

#[derive(Serialize)]
pub struct ReplyBody {
    id: String,
    shortcut: String,
    content: String,
    shared: bool,
}

impl From<CannedReply> for ReplyBody {
    fn from(reply: CannedReply) -> Self {
        Self {
            id: reply.id.to_string(),
            shared: reply.owner_id.is_none(),
            shortcut: reply.shortcut,
            content: reply.content,
        }
    }
}

#[derive(Serialize)]
pub struct Replies {
    replies: Vec<ReplyBody>,
}

#[derive(Serialize)]
pub struct One {
    reply: ReplyBody,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewReply {
    shortcut: String,
    content: String,
    #[serde(default)]
    shared: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyChange {
    shortcut: Option<String>,
    content: Option<String>,
}

fn reply_id(id: &str) -> Result<i64, ApiError> {
    id.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| Error::InvalidPayload("a reply id is a string of digits".into()).into())
}

pub async fn list(
    State(app): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Replies>, ApiError> {
    let replies = app.canned.list(caller).await?;
    Ok(Json(Replies {
        replies: replies.into_iter().map(ReplyBody::from).collect(),
    }))
}

pub async fn create(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiJson(new): ApiJson<NewReply>,
) -> Result<(StatusCode, Json<One>), ApiError> {
    let reply = app
        .canned
        .create(caller, &new.shortcut, new.content, new.shared)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(One {
            reply: reply.into(),
        }),
    ))
}

pub async fn update(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiJson(change): ApiJson<ReplyChange>,
) -> Result<Json<One>, ApiError> {
    let id = reply_id(&id)?;
    let reply = app
        .canned
        .update(caller, id, change.shortcut.as_deref(), change.content)
        .await?;
    Ok(Json(One {
        reply: reply.into(),
    }))
}

pub async fn delete(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = reply_id(&id)?;
    app.canned.delete(caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
