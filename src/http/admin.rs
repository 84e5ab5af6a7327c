//! Operational routes: liveness, readiness, metrics, and model hot reload.

use super::AppState;
use super::error::{ApiError, ErrorBody};
use crate::engine::Engine;
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
    /// The shadow (challenger) bundle scored beside the model, if any.
    pub shadow_model_version: Option<String>,
    /// `ok`, or why the store cannot take results.
    pub store: String,
    /// The share of its training transactions the model flags (review or block): about what a
    /// stream like its training data should see flagged.
    pub flag_rate: f64,
}

/// The model version serving after a reload or a promotion.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ModelVersion {
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
    let (model_version, shadow_model_version) = (state.engine.model_version(), state.engine.shadow_version());
    let flag_rate = state.engine.flag_rate();
    (status, Json(Readiness { ready, model_version, shadow_model_version, store, flag_rate }))
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
    responses((status = 200, body = ModelVersion), (status = 401, body = ErrorBody),
              (status = 422, description = "Refused (a bundle or the rules file does not load); the old ones still serve", body = ErrorBody)))]
pub async fn reload(State(state): State<AppState>) -> Result<Json<ModelVersion>, ApiError> {
    change(&state, Engine::reload, StatusCode::UNPROCESSABLE_ENTITY, "reload_failed", "model reload").await
}

/// `?force=true` on `/admin/promote`.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PromoteQuery {
    /// Promote even without evidence, or when the shadow ranks the confirmed frauds worse than
    /// the champion (logged as forced).
    #[serde(default)]
    pub force: bool,
}

/// Make the shadow model the champion: it answers from now on, with the card history it built
/// while in the shadow; the models directory's `current` points at it, so restarts and reloads
/// keep it. Refused (409) unless the stored decisions the shadow scored, with their verdicts,
/// show it ranks confirmed frauds at least as well as the champion (average precision, at least
/// 5 frauds), or `force=true`.
#[utoipa::path(post, path = "/admin/promote", tag = "operations", params(PromoteQuery), security((), ("bearer" = [])),
    responses((status = 200, body = ModelVersion), (status = 400, description = "A malformed query", body = ErrorBody),
              (status = 401, body = ErrorBody),
              (status = 409, description = "No shadow model is loaded, or it has no evidence or is worse", body = ErrorBody)))]
pub async fn promote(
    State(state): State<AppState>,
    query: Result<axum::extract::Query<PromoteQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ModelVersion>, ApiError> {
    let force = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))?.force;
    let engine = std::sync::Arc::clone(&state.engine);
    let result = tokio::task::spawn_blocking(move || engine.promote(force))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    result.map(|model_version| Json(ModelVersion { model_version })).map_err(|e| {
        tracing::warn!(error = %format!("{e:#}"), "promotion refused; the current models keep serving");
        ApiError::new(StatusCode::CONFLICT, "promote_failed", format!("{e:#}"))
    })
}

/// Runs a change of the engine's models on a blocking thread: the model version that serves
/// after it, or `status`/`code` with the reason (logged as `what` refused) when it is refused.
async fn change(
    state: &AppState,
    f: fn(&Engine) -> anyhow::Result<String>,
    status: StatusCode,
    code: &'static str,
    what: &'static str,
) -> Result<Json<ModelVersion>, ApiError> {
    let engine = std::sync::Arc::clone(&state.engine);
    let result = tokio::task::spawn_blocking(move || f(&engine))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    result.map(|model_version| Json(ModelVersion { model_version })).map_err(|e| {
        tracing::warn!(error = %format!("{e:#}"), "{what} refused; the current models keep serving");
        ApiError::new(status, code, format!("{e:#}"))
    })
}
