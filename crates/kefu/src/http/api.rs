//! The REST routes: visitors, logins, agents.

use axum::{
    Json,
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request, State, rejection::BytesRejection},
    http::{StatusCode, header, request::Parts},
};
use serde::de::DeserializeOwned;
use std::net::IpAddr;

use super::error::ApiError;
use crate::protocol::http::{
    AgentRequest, ConversationItem, ConversationList, LoginRequest, Session, UserBody,
    VisitorRequest,
};
use crate::{
    AppState,
    domain::{Role, format_timestamp},
    metrics::Limit,
    services::{Error, auth::Identity},
};

/// A JSON body whose every problem is an `invalid_payload` in the protocol's shape.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Json::<T>::from_request(request, state)
            .await
            .map(|Json(v)| ApiJson(v))
            .map_err(ApiError::rejection)
    }
}

/// The caller of a route that needs a bearer token.
pub struct Caller(pub Identity);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let token = header
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or(Error::Unauthorized)?;
        Ok(Caller(app.accounts.authenticate(token.trim()).await?))
    }
}

/// The client's address, as the per-address limits count it (see `trusted_proxies`).
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, std::convert::Infallible> {
        Ok(ClientIp(app.limits.client_ip(parts)))
    }
}

/// `POST /api/visitors`: the body is optional.
pub async fn create_visitor(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Session>), ApiError> {
    let body = body.map_err(|r| ApiError::body(r.status(), r.body_text()))?;
    if let Err(wait) = app.limits.visitors.take(&ip) {
        app.metrics.limited(Limit::Visitors);
        return Err(Error::RateLimited {
            what: "too many new visitors from this address; try again later",
            retry_after: Some(wait),
        }
        .into());
    }
    let request: VisitorRequest = if body.iter().all(u8::is_ascii_whitespace) {
        VisitorRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| Error::InvalidPayload(format!("invalid JSON body: {e}")))?
    };
    let (token, user) = app
        .accounts
        .create_visitor(request.name.as_deref(), request.email.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(Session { token, user })))
}

/// Sign-in, slowed down for a guesser: after repeated failures from one address, or against one
/// account, every attempt is refused for a while, the right password too.
pub async fn login(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Json<Session>, ApiError> {
    let account = request.username.trim().to_lowercase();
    let limits = &app.limits;
    if let Err(wait) = limits
        .login_failures
        .check(&ip)
        .and_then(|()| limits.account_failures.check(&account))
    {
        app.metrics.limited(Limit::Login);
        return Err(Error::RateLimited {
            what: "too many failed sign-ins; try again later",
            retry_after: Some(wait),
        }
        .into());
    }
    match app
        .accounts
        .login(&request.username, &request.password)
        .await
    {
        Ok((token, user)) => Ok(Json(Session { token, user })),
        Err(Error::Unauthorized) => {
            app.metrics.login_failures.inc();
            let _ = limits.login_failures.take(&ip);
            let _ = limits.account_failures.take(&account);
            Err(Error::Unauthorized.into())
        }
        Err(error) => Err(error.into()),
    }
}

/// `POST /api/logout`: every token of the caller's account stops working, and its connections
/// close on every node (a node that misses the word closes them at its next token check).
pub async fn logout(
    State(app): State<AppState>,
    Caller(caller): Caller,
) -> Result<StatusCode, ApiError> {
    app.accounts.sign_out(caller).await?;
    app.cluster.account_changed(caller.user_id);
    app.cluster.disconnect_user(caller.user_id);
    if caller.role.is_staff() {
        // Signed out: its customers do not wait for it (docs/protocol.md, "When nobody can
        // answer"). The sign-out stands even if this fails: the timers hand them on later.
        if let Err(error) = app
            .chat
            .release_agent(caller.user_id, crate::services::chat::Release::SignedOut)
            .await
        {
            error.log("handing a signed-out agent's conversations back to the queue");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn create_agent(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiJson(request): ApiJson<AgentRequest>,
) -> Result<(StatusCode, Json<UserBody>), ApiError> {
    if caller.role != Role::Admin {
        return Err(Error::Forbidden("only an admin can create agents").into());
    }
    // Checked before the account exists.
    let email = request
        .email
        .as_deref()
        .filter(|e| !e.trim().is_empty())
        .map(crate::domain::Email::parse)
        .transpose()?;
    let user = app
        .accounts
        .create_staff(
            Role::Agent,
            &request.username,
            request.password,
            request.display_name.as_deref(),
        )
        .await?;
    if let Some(email) = &email {
        app.accounts.set_email(user.id, email.as_str()).await?;
    }
    app.chat.staff_changed();
    tracing::info!(agent = %user.id, "agent created");
    Ok((StatusCode::CREATED, Json(UserBody { user })))
}

pub async fn me(
    State(app): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<UserBody>, ApiError> {
    Ok(Json(UserBody {
        user: app.accounts.user(caller).await?,
    }))
}

/// `GET /api/conversations`: the caller's own conversations (a customer's), newest first.
pub async fn conversations(
    State(app): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<ConversationList>, ApiError> {
    let conversations = app
        .chat
        .conversations(caller)
        .await?
        .into_iter()
        .map(|c| ConversationItem {
            id: c.conversation.id,
            customer_id: c.conversation.customer_id,
            agent_id: c.conversation.agent_id,
            status: if c.conversation.open {
                "open"
            } else {
                "resolved"
            },
            created_at: format_timestamp(c.created_at),
            resolved_at: c.resolved_at.map(format_timestamp),
            rating: c.rating,
            offline: c.offline,
            ended_as: c.ended_as,
        })
        .collect();
    Ok(Json(ConversationList { conversations }))
}

pub async fn not_found() -> ApiError {
    ApiError(Error::NotFound("no such route"))
}
