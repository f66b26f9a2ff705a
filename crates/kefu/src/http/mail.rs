//! E-mail's routes (docs/mail.md): the resume link's session, a transcript by e-mail, the
//! unsubscribe page and its one-click POST (RFC 8058), and the inbound webhook.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode},
    response::{Html, IntoResponse, Response},
};
use serde::Deserialize;

use super::{
    api::{ApiJson, Caller},
    error::ApiError,
};
use crate::{
    AppState,
    domain::ConversationId,
    protocol::http::{InboundReceived, ResumeRequest, Session, TranscriptEmailed},
    services::Error,
};

/// Raw MIME bodies of the inbound webhook may be this large (attachments included).
pub const MAX_INBOUND_BYTES: usize = 4 * 1024 * 1024;

/// `POST /api/visitors/resume`: the visitor's session again, on the device that opened the link.
pub async fn resume(
    State(app): State<AppState>,
    ApiJson(request): ApiJson<ResumeRequest>,
) -> Result<Json<Session>, ApiError> {
    let (token, user) = app.mail.resume(&request.token).await?;
    Ok(Json(Session { token, user }))
}

/// `POST /api/conversations/{id}/transcript/email`: the customer's own conversation to its
/// e-mail.
pub async fn email_transcript(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<TranscriptEmailed>), ApiError> {
    let id = ConversationId::parse(&id)?;
    let to = app.mail.email_transcript(caller, id).await?;
    Ok((StatusCode::ACCEPTED, Json(TranscriptEmailed { to })))
}

#[derive(Deserialize)]
pub struct UnsubscribeQuery {
    token: Option<String>,
}

fn token_of(query: &UnsubscribeQuery) -> Result<&str, ApiError> {
    query
        .token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::InvalidToken("the unsubscribe link has no token").into())
}

/// `GET /api/mail/unsubscribe?token=…`: a page with one button (a link scanner that follows the
/// link must not unsubscribe anyone).
pub async fn unsubscribe_page(
    State(app): State<AppState>,
    Query(query): Query<UnsubscribeQuery>,
) -> Result<Response, ApiError> {
    let token = token_of(&query)?;
    if !app.mail.unsubscribe_valid(token) {
        return Err(Error::InvalidToken("the unsubscribe link is not valid").into());
    }
    let token = html_escape(token);
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>Unsubscribe</title></head>\
         <body style=\"font-family:sans-serif;max-width:32em;margin:3em auto\">\
         <h1>No more e-mails about replies?</h1>\
         <p>You will no longer get an e-mail when an agent answers you after you left the chat. \
         A transcript you ask for is still sent.</p>\
         <form method=\"post\" action=\"/api/mail/unsubscribe?token={token}\">\
         <button type=\"submit\">Unsubscribe</button></form></body></html>"
    );
    Ok(Html(page).into_response())
}

/// `POST /api/mail/unsubscribe?token=…`: the button, and mail clients' one-click unsubscribe.
pub async fn unsubscribe(
    State(app): State<AppState>,
    Query(query): Query<UnsubscribeQuery>,
) -> Result<Response, ApiError> {
    app.mail.unsubscribe(token_of(&query)?).await?;
    Ok(Html(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Unsubscribed</title>\
         </head><body style=\"font-family:sans-serif;max-width:32em;margin:3em auto\">\
         <h1>Unsubscribed</h1><p>You will get no more e-mails about replies.</p></body></html>",
    )
    .into_response())
}

/// `POST /api/mail/inbound`: a reply's raw MIME from a mail provider, signed with
/// `X-Kefu-Signature`.
pub async fn inbound(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<InboundReceived>), ApiError> {
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError(Error::TooLarge(
                "the mail is over the limit of 4 MiB".into(),
            ))
        } else {
            ApiError::body(r.status(), r.body_text())
        }
    })?;
    let signature = headers
        .get("x-kefu-signature")
        .and_then(|v| v.to_str().ok());
    let received = app.mail.webhook(signature, &body).await?;
    let status = if received.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(InboundReceived {
            conversation_id: received.conversation,
            duplicate: received.duplicate,
        }),
    ))
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
