//! The HTTP API (axum): scoring routes, health and readiness, metrics, the OpenAPI document,
//! admin routes, and the dashboard (page + JSON API + event stream; open like `/metrics`, as
//! it shows no card number). Handlers are thin: they parse, call the [`Engine`], and shape the answer.

mod admin;
mod dashboard;
mod error;
mod labels;
mod lists;
mod openapi;
mod predict;

pub use crate::domain::PredictResponse;
pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use predict::{BatchItem, BatchResponse, MAX_BATCH};

use crate::engine::Engine;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Instant;

/// Largest `/predict` body: one transaction is a few hundred bytes.
const PREDICT_BODY_LIMIT: usize = 64 * 1024;
/// Largest `/predict/batch` body: room for 10,000 transactions.
const BATCH_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Every route, as metrics label them (a fixed set keeps the label cardinality bounded).
const ROUTES: [&str; 21] = [
    "/predict",
    "/predict/batch",
    "/labels",
    "/lists/{name}/items",
    "/admin/reload",
    "/admin/promote",
    "/health",
    "/ready",
    "/metrics",
    "/openapi.json",
    "/",
    "/assets/app.js",
    "/assets/app.css",
    "/assets/favicon.svg",
    "/api/stats",
    "/api/transactions",
    "/api/flagged",
    "/api/review",
    "/api/transactions/{txn_id}",
    "/api/countries",
    "/api/events",
];

/// What the handlers use: the engine for decisions, and directly the store's readers, the
/// metrics and the card key (handlers do not reach through the engine for them).
#[derive(Debug, Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub readers: Arc<crate::store::ReadPool>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub card_key: crate::domain::CardKey,
    /// SHA-256 of the bearer token that `/predict*` and admin routes require, if any.
    api_token: Option<[u8; 32]>,
}

impl AppState {
    pub fn new(engine: Arc<Engine>, api_token: Option<&str>) -> Self {
        Self {
            readers: Arc::clone(engine.readers()),
            metrics: Arc::clone(engine.metrics()),
            card_key: engine.card_key().clone(),
            engine,
            api_token: api_token.filter(|t| !t.is_empty()).map(|t| Sha256::digest(t).into()),
        }
    }
}

pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/predict", post(predict::one).layer(DefaultBodyLimit::max(PREDICT_BODY_LIMIT)))
        .route("/predict/batch", post(predict::batch).layer(DefaultBodyLimit::max(BATCH_BODY_LIMIT)))
        .route("/labels", post(labels::post).layer(DefaultBodyLimit::max(BATCH_BODY_LIMIT)))
        .route("/lists/{name}/items", get(lists::get).post(lists::post).delete(lists::delete))
        .route("/admin/reload", post(admin::reload))
        .route("/admin/promote", post(admin::promote))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/health", get(admin::health))
        .route("/ready", get(admin::ready))
        .route("/metrics", get(admin::metrics))
        .route("/openapi.json", get(openapi::spec))
        .route("/", get(dashboard::index))
        .route("/assets/app.js", get(dashboard::script))
        .route("/assets/app.css", get(dashboard::style))
        .route("/assets/favicon.svg", get(dashboard::icon))
        .route("/api/stats", get(dashboard::stats))
        .route("/api/transactions", get(dashboard::transactions))
        .route("/api/flagged", get(dashboard::flagged))
        .route("/api/review", get(dashboard::review))
        .route("/api/transactions/{txn_id}", get(dashboard::case))
        .route("/api/countries", get(dashboard::countries))
        .route("/api/events", get(dashboard::events))
        .merge(protected)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method")
        })
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// Counts every request and its latency by route, method and status.
async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|p| ROUTES.iter().find(|r| **r == p.as_str()))
        .copied()
        .unwrap_or("unmatched");
    let method = match *req.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::DELETE => "DELETE",
        _ => "other",
    };
    let response = next.run(req).await;
    state.metrics.observe_request(route, method, response.status().as_u16(), started.elapsed());
    response
}

/// Rejects requests without the configured bearer token. Digests are compared, so the time
/// taken does not reveal how much of a guess was right.
async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(expected) = state.api_token else {
        return next.run(req).await;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| <[u8; 32]>::from(Sha256::digest(t.trim())));
    if given == Some(expected) {
        return next.run(req).await;
    }
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "send `Authorization: Bearer <token>`").into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Serves until `shutdown` resolves, then stops accepting and finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests;
