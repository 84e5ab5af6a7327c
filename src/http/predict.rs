//! `POST /predict` and `POST /predict/batch`.

use super::AppState;
use super::error::{ApiError, ErrorBody};
use crate::domain::{PredictResponse, TransactionIn};
use crate::engine::{Arrival, EngineError, Pending, Scored};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use serde::Serialize;
use serde_json::Value;
use std::time::Instant;

/// Most transactions in one batch request.
pub const MAX_BATCH: usize = 10_000;

/// The answer: the decision's wire view, with the time since the request arrived.
fn answer(s: &Scored, started: Instant) -> PredictResponse {
    PredictResponse::new(&s.txn, s.duplicate, started.elapsed().as_micros() as u64)
}

/// One entry of a batch answer: a decision, or the error for that transaction.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum BatchItem {
    Ok(PredictResponse),
    Err(ErrorBody),
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchResponse {
    /// One entry per transaction sent, in the same order.
    pub results: Vec<BatchItem>,
}

/// Score one transaction. A 200 answer means the decision is committed to the store.
#[utoipa::path(post, path = "/predict", tag = "scoring", request_body = TransactionIn,
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Scored and stored (or the stored decision for a repeated txn_id)", body = PredictResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 409, description = "The same txn_id is being processed right now", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "A field is missing or invalid", body = ErrorBody),
        (status = 503, description = "The store could not commit the result", body = ErrorBody),
    ))]
pub async fn one(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<PredictResponse>, ApiError> {
    let arrival = Arrival::now();
    let value = json_body(&headers, body)?;
    let valid = TransactionIn::validate(&value, &state.card_key, &state.engine.fields(), arrival.unix_ms / 1000)?;
    let scored = state.engine.process(valid, arrival).await?;
    Ok(Json(answer(&scored, arrival.instant)))
}

/// Score up to 10,000 transactions (a JSON array). Results come back in order; an invalid
/// transaction gets its own error entry and does not fail the others.
#[utoipa::path(post, path = "/predict/batch", tag = "scoring", request_body = Vec<TransactionIn>,
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "One result or error per transaction, in order", body = BatchResponse),
        (status = 400, description = "Malformed JSON or not an array", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 413, description = "Body too large or more than 10,000 transactions", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
    ))]
pub async fn batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<BatchResponse>, ApiError> {
    let arrival = Arrival::now();
    let Value::Array(items) = json_body(&headers, body)? else {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", "expected a JSON array of transactions"));
    };
    if items.len() > MAX_BATCH {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("a batch holds at most {MAX_BATCH} transactions; this one has {}", items.len()),
        ));
    }
    // Validating and scoring thousands of rows is CPU work: keep it off the async workers. The
    // valid ones go to the engine together (per chunk: one claim, one store look-up, one hold
    // of the scorer lock, the models as one matrix), as a Kafka lane's batch does.
    let (engine, key) = (std::sync::Arc::clone(&state.engine), state.card_key.clone());
    let pending = tokio::task::spawn_blocking(move || {
        let mut outcomes: Vec<Option<Result<Pending, ApiError>>> = Vec::with_capacity(items.len());
        let mut valid = Vec::with_capacity(items.len());
        let fields = engine.fields();
        for item in &items {
            match TransactionIn::validate(item, &key, &fields, arrival.unix_ms / 1000) {
                Ok(v) => {
                    valid.push((v, arrival));
                    outcomes.push(None);
                }
                Err(e) => outcomes.push(Some(Err(e.into()))),
            }
        }
        let mut submitted = engine.submit_many(valid).into_iter();
        outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| {
                    submitted.next().unwrap_or_else(|| Err(EngineError::no_outcome())).map_err(ApiError::from)
                })
            })
            .collect::<Vec<Result<Pending, ApiError>>>()
    })
    .await
    .map_err(|e| ApiError::from(EngineError::Internal(e.into())))?;
    let mut results = Vec::with_capacity(pending.len());
    for p in pending {
        let item = match p {
            Ok(p) => p.wait(&state.metrics).await.map_err(ApiError::from),
            Err(e) => Err(e),
        };
        results.push(match item {
            Ok(scored) => BatchItem::Ok(answer(&scored, arrival.instant)),
            Err(e) => BatchItem::Err(e.body()),
        });
    }
    Ok(Json(BatchResponse { results }))
}

/// The body as JSON, after checking its content type.
pub(super) fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence != "application/json" && !essence.ends_with("+json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the transaction as JSON with `Content-Type: application/json`",
        ));
    }
    let body = body?;
    serde_json::from_slice(&body).map_err(|e| crate::domain::Rejection::invalid_json(&e).into())
}
