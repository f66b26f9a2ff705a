//! The offline path over HTTP: what a visitor can expect now (`/api/availability`), the offline
//! form (`/api/offline-messages`), what kefu knows of the customer (`/api/me/contact`), and the
//! business hours admins set (`/api/admin/hours`).

use axum::{Json, extract::State, http::StatusCode};

use super::{
    admin::require_admin,
    api::{ApiJson, Caller},
    error::ApiError,
};
use crate::{
    domain::{HoursDocument, IntervalDocument},
    protocol::{
        MessagePayload,
        http::{
            AvailabilityBody, ContactBody, HoursBody, HoursInterval, OfflineMessageRequest,
            OfflineMessageResponse,
        },
    },
    services::chat::OfflineMessage,
    state::AppState,
};

/// `GET /api/availability`: open, busy, away or closed, with the queue and the next opening.
pub async fn availability(State(app): State<AppState>) -> Result<Json<AvailabilityBody>, ApiError> {
    let hours = app.hours.get().await?;
    let now = app.chat.availability(&hours).await?;
    Ok(Json(AvailabilityBody {
        state: now.state.as_str(),
        agents_available: now.agents_available,
        queue_length: now.queue_length,
        estimate_seconds: now.estimate_seconds,
        opens_at: now.opens_at,
        time_zone: hours.time_zone().to_owned(),
        mail: app.mail.sends(),
    }))
}

/// `GET /api/me/contact`: the customer's name, e-mail and phone as kefu knows them.
pub async fn contact(
    State(app): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<ContactBody>, ApiError> {
    let contact = app.chat.contact(caller).await?;
    Ok(Json(ContactBody {
        name: contact.name,
        email: contact.email,
        phone: contact.phone,
    }))
}

/// `POST /api/offline-messages`: the offline form (留言).
pub async fn leave_message(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiJson(request): ApiJson<OfflineMessageRequest>,
) -> Result<(StatusCode, Json<OfflineMessageResponse>), ApiError> {
    let (message, conversation) = app
        .chat
        .leave_offline(
            caller,
            OfflineMessage {
                name: request.name,
                email: request.email,
                phone: request.phone,
                content: request.content,
                client_msg_id: request.client_msg_id,
            },
        )
        .await?;
    let place = app.chat.queue_status(caller).await?.1.map(|p| p.position);
    Ok((
        StatusCode::CREATED,
        Json(OfflineMessageResponse {
            conversation_id: conversation,
            message: serde_json::to_value(MessagePayload::new(&message, None))
                .map_err(|e| crate::services::Error::Other(anyhow::anyhow!(e)))?,
            place,
        }),
    ))
}

/// `GET /api/admin/hours`.
pub async fn hours(
    State(app): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<HoursBody>, ApiError> {
    require_admin(caller)?;
    Ok(Json(body(app.hours.get().await?.document())))
}

/// `PUT /api/admin/hours`.
pub async fn set_hours(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiJson(request): ApiJson<HoursBody>,
) -> Result<Json<HoursBody>, ApiError> {
    require_admin(caller)?;
    let document = HoursDocument {
        enabled: request.enabled,
        time_zone: request.time_zone,
        weekly: request
            .weekly
            .into_iter()
            .map(|i| IntervalDocument {
                day: i.day,
                open: i.open,
                close: i.close,
            })
            .collect(),
        closed_days: request.closed_days,
    };
    Ok(Json(body(app.hours.set(document).await?.document())))
}

fn body(document: &HoursDocument) -> HoursBody {
    HoursBody {
        enabled: document.enabled,
        time_zone: document.time_zone.clone(),
        weekly: document
            .weekly
            .iter()
            .map(|i| HoursInterval {
                day: i.day.clone(),
                open: i.open.clone(),
                close: i.close.clone(),
            })
            .collect(),
        closed_days: document.closed_days.clone(),
    }
}
