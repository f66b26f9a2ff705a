//! The HTTP side: the REST API under `/api`, health checks, and the embedded web UI.

mod admin;
mod api;
mod attachments;
pub mod bodies;
mod canned;
mod conversations;
pub mod error;
mod mail;
mod offline;
pub mod serve;
mod ui;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, Request, State},
    http::{Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::{any, get, patch, post},
};
use serde_json::json;

use crate::{
    AppState,
    metrics::{Gauges, Limit},
};

/// API bodies are small JSON documents.
const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/visitors", post(api::create_visitor))
        .route("/visitors/resume", post(mail::resume))
        .route(
            "/conversations/{id}/transcript/email",
            post(mail::email_transcript),
        )
        .route(
            "/mail/unsubscribe",
            get(mail::unsubscribe_page).post(mail::unsubscribe),
        )
        .route("/login", post(api::login))
        .route("/logout", post(api::logout))
        .route("/agents", post(api::create_agent).get(admin::list_agents))
        .route("/agents/available", get(admin::colleagues))
        .route("/agents/{id}", patch(admin::update_agent))
        .route("/conversations", get(api::conversations))
        .route("/canned-replies", get(canned::list).post(canned::create))
        .route(
            "/canned-replies/{id}",
            patch(canned::update).delete(canned::delete),
        )
        .route("/admin/nodes", get(admin::nodes))
        .route("/admin/reports", get(admin::reports))
        .route("/admin/conversations", get(conversations::find))
        .route(
            "/admin/conversations/{id}/transcript",
            get(conversations::transcript),
        )
        .route(
            "/conversations/{id}/transcript",
            get(conversations::transcript),
        )
        .route("/me", get(api::me))
        .route("/me/contact", get(offline::contact))
        .route("/availability", get(offline::availability))
        .route("/offline-messages", post(offline::leave_message))
        .route("/admin/hours", get(offline::hours).put(offline::set_hours))
        .fallback(any(api::not_found))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    // Uploads have a limit of their own, checked again while the file streams to disk.
    let upload_limit = usize::try_from(state.attachments.max_bytes())
        .unwrap_or(usize::MAX)
        .saturating_add(MAX_BODY_BYTES);
    let uploads = Router::new()
        .route(
            "/attachments",
            post(attachments::upload).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/attachments/{id}", get(attachments::download))
        .route(
            "/mail/inbound",
            post(mail::inbound).layer(DefaultBodyLimit::max(mail::MAX_INBOUND_BYTES)),
        );
    let api = uploads.merge(api);
    let router = Router::new()
        .nest("/api", api)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz));
    // With a listener of its own, the metrics stay off the public one.
    let router = if state.settings.metrics_listen.is_none() {
        router.route("/metrics", get(metrics))
    } else {
        router.route("/metrics", any(api::not_found))
    };
    router.fallback(get(ui::serve)).with_state(state)
}

/// `GET /metrics` alone, for the separate metrics listener.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Prometheus' text exposition format.
async fn metrics(State(app): State<AppState>) -> Response {
    let link = app.cluster.link();
    let text = app.metrics.render(&Gauges {
        connections: app.connections.len(),
        users_online: app.connections.online_users(),
        redis_connected: link.is_cluster().then(|| link.is_up()),
        database_waiting: {
            let waiting = app.store.waiting();
            (waiting.reads, waiting.writes)
        },
    });
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Refuses API and Socket.IO requests that a browser sent from a page of an origin not allowed
/// (`allowed_origins`): another site cannot use a visitor's token, not even over WebSocket, which
/// has no CORS. Requests without an `Origin` (no browser) and from the server's own origin pass.
pub async fn check_origin(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let allowed = &app.settings.allowed_origins;
    let path = request.uri().path();
    let guarded = path.starts_with("/api/") || path.starts_with("/socket.io");
    if allowed.is_empty() || !guarded {
        return next.run(request).await;
    }
    let headers = request.headers();
    let Some(origin) = headers.get(header::ORIGIN) else {
        return next.run(request).await;
    };
    let origin = origin.to_str().unwrap_or("");
    let own = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| {
            origin
                .split_once("://")
                .is_some_and(|(_, rest)| rest == host)
        });
    if own || allowed.iter().any(|a| a.trim_end_matches('/') == origin) {
        return next.run(request).await;
    }
    app.metrics.forbidden_origins.inc();
    let body = Json(json!({ "error": {
        "code": "forbidden",
        "message": "this origin is not allowed; see KEFU_ALLOWED_ORIGINS",
    }}));
    (StatusCode::FORBIDDEN, body).into_response()
}

/// How long a long-polling upload (a POST of at most the largest payload) may take.
const POLLING_UPLOAD_DEADLINE: Duration = Duration::from_secs(20);

/// Open long-polling requests, counted by [`guard_polling`].
#[derive(Clone, Default)]
pub struct PollingRequests(Arc<AtomicUsize>);

struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Caps the long-polling requests open at once, and the time an upload may take. Past the cap, a
/// new long-polling session is refused with 503 (its client retries later, or uses WebSocket,
/// which is not capped here); the sessions already open keep polling.
pub async fn guard_polling(
    State((app, open)): State<(AppState, PollingRequests)>,
    request: Request,
    next: Next,
) -> Response {
    let cap = app.settings.max_polling_requests;
    let polling = request.uri().path().starts_with("/socket.io")
        && request
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "transport=polling"));
    if !polling {
        return next.run(request).await;
    }
    let is_new_session = request.method() == Method::GET
        && !request
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p.starts_with("sid=")));
    let count = open.0.fetch_add(1, Ordering::Relaxed) + 1;
    let guard = Open(open.0.clone());
    if cap > 0 && is_new_session && count > cap {
        drop(guard);
        app.metrics.limited(Limit::PollingSessions);
        let body = Json(json!({ "error": {
            "code": "rate_limited",
            "message": "too many long-polling sessions; try again later or use WebSocket",
        }}));
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5")],
            body,
        )
            .into_response();
    }
    let is_upload = request.method() == Method::POST;
    let response = if is_upload {
        // An upload is at most the largest payload: one still coming after this long is a
        // slowloris holding a request open byte by byte, not a slow network.
        match tokio::time::timeout(POLLING_UPLOAD_DEADLINE, next.run(request)).await {
            Ok(response) => response,
            Err(_) => {
                let body = Json(json!({ "error": {
                    "code": "invalid_payload",
                    "message": "the long-polling upload took too long",
                }}));
                (StatusCode::REQUEST_TIMEOUT, body).into_response()
            }
        }
    } else {
        next.run(request).await
    };
    drop(guard);
    response
}

/// Ready when the database answers and, with several nodes, Redis does.
async fn readyz(State(app): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let reason = if !app.store.ping().await {
        Some("database unreachable".to_owned())
    } else {
        app.cluster.not_ready()
    };
    match reason {
        None => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready", "reason": reason })),
        ),
    }
}
