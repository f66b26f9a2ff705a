//! Conversations as staff find and export them: `GET /api/admin/conversations` (admins search by
//! customer) and `GET /api/conversations/{id}/transcript` (an admin, or the conversation's agent).

use axum::{
    Json,
    extract::{Path, Query, State},
    http::{HeaderMap, header, request::Parts},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{api::Caller, error::ApiError};
use crate::protocol::http::{
    EventPayload, Found, FoundPage, Person, TranscriptBody, TranscriptConversation,
};
use crate::{
    AppState,
    domain::{ConversationId, format_timestamp},
    protocol::MessagePayload,
    services::{
        Error,
        transcripts::{Entry, Transcript},
    },
    store::ConversationQuery,
};

#[derive(Deserialize)]
pub struct FindQuery {
    q: Option<String>,
    status: Option<String>,
    before: Option<String>,
    limit: Option<String>,
}

/// `GET /api/admin/conversations?q=&status=&before=&limit=`: newest first.
pub async fn find(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Query(query): Query<FindQuery>,
) -> Result<Response, ApiError> {
    let open = match query.status.as_deref() {
        None | Some("") | Some("all") => None,
        Some("open") => Some(true),
        Some("resolved") => Some(false),
        Some(_) => {
            return Err(
                Error::InvalidPayload("status must be open, resolved or all".into()).into(),
            );
        }
    };
    let before = query
        .before
        .as_deref()
        .map(ConversationId::parse)
        .transpose()?;
    let limit = match query.limit.as_deref() {
        None => 50,
        Some(limit) => limit
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=crate::services::transcripts::MAX_FOUND).contains(l))
            .ok_or_else(|| Error::InvalidPayload("limit must be a number from 1 to 100".into()))?,
    };
    let records = app
        .transcripts
        .find(
            caller,
            ConversationQuery {
                text: query.q,
                open,
                before,
                limit,
            },
        )
        .await?;
    let full = records.len() as u32 >= limit.clamp(1, crate::services::transcripts::MAX_FOUND);
    let page = FoundPage {
        next_before: if full {
            records.last().map(|r| r.conversation.id)
        } else {
            None
        },
        conversations: records.iter().map(Found::new).collect(),
    };
    Ok(Json(page).into_response())
}

#[derive(Deserialize)]
pub struct TranscriptQuery {
    format: Option<String>,
}

/// `GET /api/conversations/{id}/transcript[?format=text]` (also under `/api/admin/`): every
/// message and event, never a note.
pub async fn transcript(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Query(query): Query<TranscriptQuery>,
    parts: Parts,
) -> Result<Response, ApiError> {
    let id = ConversationId::parse(&id)?;
    let format = query.format.as_deref();
    if !matches!(format, None | Some("json") | Some("text")) {
        return Err(Error::InvalidPayload("format must be json or text".into()).into());
    }
    let transcript = app.transcripts.transcript(caller, id).await?;
    if format == Some("text") {
        let base = public_base(&app, &parts);
        return Ok((
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"conversation-{id}.txt\""),
                ),
            ],
            transcript.as_text(&base),
        )
            .into_response());
    }
    Ok(Json(json_body(&transcript)).into_response())
}

fn json_body(transcript: &Transcript) -> TranscriptBody<'_> {
    let record = &transcript.record;
    let conversation = &record.conversation;
    let mut messages = Vec::with_capacity(transcript.messages.len());
    let mut events = Vec::with_capacity(transcript.events.len());
    for entry in transcript.entries() {
        match entry {
            Entry::Message(m) => {
                let receiver = if m.sender_id == conversation.customer_id {
                    conversation.agent_id
                } else {
                    Some(conversation.customer_id)
                };
                messages.push(MessagePayload::new(m, receiver));
            }
            Entry::Event(e) => events.push(EventPayload {
                id: e.id,
                kind: e.kind.as_str(),
                timestamp: format_timestamp(e.created_at),
                actor_id: e.actor_id,
                agent_id: e.agent_id,
                score: e.score,
                text: transcript.describe(e),
            }),
        }
    }
    TranscriptBody {
        conversation: TranscriptConversation {
            id: conversation.id,
            customer_id: conversation.customer_id,
            customer: Person {
                id: conversation.customer_id,
                display_name: &record.customer_name,
                username: Some(&record.customer_username),
                email: record.customer_email.as_deref(),
            },
            agent_id: conversation.agent_id,
            status: if conversation.open {
                "open"
            } else {
                "resolved"
            },
            created_at: format_timestamp(record.created_at),
            resolved_at: record.resolved_at.map(format_timestamp),
            rating: record.rating,
            rating_comment: record.rating_comment.as_deref(),
        },
        messages,
        events,
    }
}

/// `https://host:port` as the client reached this server: the `Host` header, and the scheme of
/// this listener or, from a trusted proxy, the one it names in `X-Forwarded-Proto`.
fn public_base(app: &AppState, parts: &Parts) -> String {
    let headers: &HeaderMap = &parts.headers;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("localhost");
    let from_proxy = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .is_some_and(|peer| app.settings.trusted_proxies.contains(&peer.0.ip()));
    let forwarded = headers
        .get("x-forwarded-proto")
        .and_then(|p| p.to_str().ok())
        .filter(|p| from_proxy && matches!(*p, "http" | "https"));
    let scheme = forwarded.unwrap_or(if app.settings.tls_cert.is_some() {
        "https"
    } else {
        "http"
    });
    format!("{scheme}://{host}")
}
