//! `POST /labels`: verdicts (analysts, chargebacks, customers) for scored transactions, one or a
//! batch. A stored label moves this process's label-aware features at once; other processes
//! sharing the store pick it up within the runtime's sync interval.

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::predict::{MAX_BATCH, json_body};
use crate::domain::{LabelIn, LabelRequest, Verdict};
use crate::store::LabelOutcome;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde_json::Value;

/// What happened to one label.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LabelResult {
    pub txn_id: String,
    pub label: Verdict,
    pub source: String,
    /// `stored`, or `unchanged` when this source already sent the same label or a newer one.
    #[schema(example = "stored")]
    pub status: &'static str,
    /// True if the transaction's verdict (its newest label over every source) changed.
    pub verdict_changed: bool,
}

/// One entry of a batch answer: the label's result, or its error (`unknown_txn` for a
/// `txn_id` never scored; nothing is stored for an item with an error).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum LabelItem {
    Ok(LabelResult),
    Err(ErrorBody),
}

/// The answer to `POST /labels`: one result for one label, a list for a batch.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum LabelAnswer {
    One(LabelResult),
    Batch(LabelBatchResponse),
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LabelBatchResponse {
    /// One entry per label sent, in the same order.
    pub results: Vec<LabelItem>,
}

/// One label or a JSON array of up to 10,000.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // documents the body; the handler validates the JSON by hand
pub enum LabelsBody {
    One(LabelRequest),
    Many(Vec<LabelRequest>),
}

/// Label transactions as fraud or legitimate. Idempotent per (`txn_id`, `source`): the same
/// label again, or an older `reported_at`, changes nothing; a later one replaces it. A single
/// label answers 200 with its result, 404 for an unknown `txn_id`, 422 naming the bad field; a
/// batch answers 200 with one result or error per label, in order.
#[utoipa::path(post, path = "/labels", tag = "labels", request_body = LabelsBody,
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The label's result (one label) or one entry per label (a batch)", body = LabelAnswer),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No scored transaction has this txn_id (one label)", body = ErrorBody),
        (status = 413, description = "Body too large or more than 10,000 labels", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "A field is missing or invalid", body = ErrorBody),
        (status = 503, description = "The store could not commit the labels", body = ErrorBody),
    ))]
pub async fn post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<LabelAnswer>, ApiError> {
    let now = chrono::Utc::now().timestamp();
    match json_body(&headers, body)? {
        Value::Array(items) => {
            if items.len() > MAX_BATCH {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "batch_too_large",
                    format!("a batch holds at most {MAX_BATCH} labels; this one has {}", items.len()),
                ));
            }
            let checked: Vec<Result<LabelIn, ApiError>> =
                items.iter().map(|v| LabelRequest::validate(v, now).map_err(ApiError::from)).collect();
            let valid: Vec<LabelIn> = checked.iter().filter_map(|c| c.as_ref().ok().cloned()).collect();
            let mut outcomes = store(&state, valid.clone()).await?.into_iter().zip(valid);
            let results = checked
                .into_iter()
                .map(|c| match c {
                    Err(e) => LabelItem::Err(e.body()),
                    Ok(_) => match outcomes.next() {
                        Some((outcome, label)) => match result(&label, &outcome) {
                            Ok(r) => LabelItem::Ok(r),
                            Err(e) => LabelItem::Err(e.body()),
                        },
                        None => LabelItem::Err(internal().body()),
                    },
                })
                .collect();
            Ok(Json(LabelAnswer::Batch(LabelBatchResponse { results })))
        }
        value => {
            let label = LabelRequest::validate(&value, now)?;
            let outcome = store(&state, vec![label.clone()]).await?.pop().ok_or_else(internal)?;
            Ok(Json(LabelAnswer::One(result(&label, &outcome)?)))
        }
    }
}

async fn store(state: &AppState, labels: Vec<LabelIn>) -> Result<Vec<LabelOutcome>, ApiError> {
    if labels.is_empty() {
        return Ok(Vec::new());
    }
    let engine = std::sync::Arc::clone(&state.engine);
    match tokio::task::spawn_blocking(move || engine.label(&labels)).await {
        Ok(Ok(outcomes)) => Ok(outcomes),
        Ok(Err(e)) => {
            tracing::error!(error = %format!("{e:#}"), "labels not stored");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the labels could not be stored; retry",
            ))
        }
        Err(_) => Err(internal()),
    }
}

fn result(label: &LabelIn, outcome: &LabelOutcome) -> Result<LabelResult, ApiError> {
    let (status, verdict_changed) = match outcome {
        LabelOutcome::Stored { change } => ("stored", change.is_some()),
        LabelOutcome::Unchanged => ("unchanged", false),
        LabelOutcome::UnknownTxn => {
            let mut e = ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_txn",
                format!("no scored transaction has txn_id `{}`", label.txn_id),
            );
            e.detail.field = Some("txn_id".into());
            return Err(e);
        }
    };
    Ok(LabelResult {
        txn_id: label.txn_id.clone(),
        label: label.verdict,
        source: label.source.clone(),
        status,
        verdict_changed,
    })
}

fn internal() -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
}
