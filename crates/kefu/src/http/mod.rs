//! The HTTP side: the REST API under `/api`, health checks, and the embedded web UI.

mod admin;
mod api;
mod attachments;
mod canned;
pub mod error;
mod ui;

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, State},
    http::StatusCode,
    routing::{any, get, patch, post},
};
use serde_json::json;

use crate::AppState;

/// API bodies are small JSON documents.
const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/visitors", post(api::create_visitor))
        .route("/login", post(api::login))
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
        .route(
            "/admin/conversations/{id}/transcript",
            get(admin::transcript),
        )
        .route("/me", get(api::me))
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
        .route("/attachments/{id}", get(attachments::download));
    let api = uploads.merge(api);
    Router::new()
        .nest("/api", api)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .fallback(get(ui::serve))
        .with_state(state)
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
