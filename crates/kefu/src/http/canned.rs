//! `/api/canned-replies`: list, create, change and delete canned replies.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};

use super::{
    api::{ApiJson, Caller},
    error::ApiError,
};
use crate::protocol::http::{NewReply, One, Replies, ReplyBody, ReplyChange};
use crate::{AppState, services::Error};

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
