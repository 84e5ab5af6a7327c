//! Operational routes: liveness, readiness, metrics, and model hot reload.

use super::AppState;
use super::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub ready: bool,
    pub model_version: String,
    /// `ok`, or why the store cannot take results.
    pub store: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Reloaded {
    pub model_version: String,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: a model is loaded and the store takes results.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, description = "Not ready", body = Readiness)))]
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let store = match state.engine.store_status() {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("{e:#}"),
    };
    let ready = store == "ok";
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(Readiness { ready, model_version: state.engine.model_version(), store }))
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let text = state.engine.render_metrics();
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
}

/// Load the model bundle (and the shadow bundle and rules file, if any) again from their paths
/// and swap them in; if anything does not load, nothing changes and the current ones keep
/// serving. SIGHUP does the same.
#[utoipa::path(post, path = "/admin/reload", tag = "operations", security((), ("bearer" = [])),
    responses((status = 200, body = Reloaded), (status = 401, body = ErrorBody),
              (status = 422, description = "The bundle was refused; the old one still serves", body = ErrorBody)))]
pub async fn reload(State(state): State<AppState>) -> Result<Json<Reloaded>, ApiError> {
    let engine = std::sync::Arc::clone(&state.engine);
    let result = tokio::task::spawn_blocking(move || engine.reload())
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    match result {
        Ok(model_version) => Ok(Json(Reloaded { model_version })),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "model reload refused; the current bundle keeps serving");
            Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "reload_failed", format!("{e:#}")))
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Promoted {
    /// The new champion (the former shadow).
    pub model_version: String,
}

/// Make the shadow model the champion: it answers from now on, with the card history it built
/// while in the shadow; `current` beside it points at it, so restarts and reloads keep it.
#[utoipa::path(post, path = "/admin/promote", tag = "operations", security((), ("bearer" = [])),
    responses((status = 200, body = Promoted), (status = 401, body = ErrorBody),
              (status = 409, description = "No shadow model is loaded", body = ErrorBody)))]
pub async fn promote(State(state): State<AppState>) -> Result<Json<Promoted>, ApiError> {
    let engine = std::sync::Arc::clone(&state.engine);
    let result = tokio::task::spawn_blocking(move || engine.promote())
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    match result {
        Ok(model_version) => Ok(Json(Promoted { model_version })),
        Err(e) => Err(ApiError::new(StatusCode::CONFLICT, "promote_failed", format!("{e:#}"))),
    }
}
