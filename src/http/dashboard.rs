//! The dashboard: the page and its assets (embedded in the binary, no build step, no CDN) and
//! the JSON API behind it, plus a Server-Sent Events stream that says when there is news.

use super::AppState;
use super::error::{ApiError, ErrorBody};
use crate::scoring::Action;
use crate::store::{Case, CountryCount, Cursor, Filter, MAX_PAGE, Stats, TransactionRow};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse};
use serde::{Deserialize, Serialize};
use std::time::Duration;

const INDEX: &str = include_str!("../dashboard/index.html");
const SCRIPT: &str = include_str!("../dashboard/app.js");
const STYLE: &str = include_str!("../dashboard/app.css");
const ICON: &str = include_str!("../dashboard/favicon.svg");

/// Only our own script and style run: a value that slipped through as markup could not execute.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'";

/// How often the event stream checks the store for new results.
const EVENT_POLL: Duration = Duration::from_secs(1);

pub async fn index() -> impl IntoResponse {
    ([(header::CONTENT_SECURITY_POLICY, CSP), (header::CACHE_CONTROL, "no-cache")], Html(INDEX))
}

pub async fn script() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], SCRIPT)
}

pub async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], STYLE)
}

pub async fn icon() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "max-age=86400")], ICON)
}

/// Runs a store read on a blocking thread (SQLite calls block).
async fn read<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&crate::store::ReadPool) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let readers = std::sync::Arc::clone(&state.readers);
    tokio::task::spawn_blocking(move || f(&readers)).await.map_err(anyhow::Error::from).and_then(|r| r).map_err(|e| {
        tracing::error!(error = %format!("{e:#}"), "dashboard query failed");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "the results store cannot be read")
    })
}

/// Totals, rates, p99 latency and the last hour per minute.
#[utoipa::path(get, path = "/api/stats", tag = "dashboard", responses((status = 200, body = Stats)))]
pub async fn stats(State(state): State<AppState>) -> Result<Json<Stats>, ApiError> {
    let now = chrono::Utc::now().timestamp_millis();
    let mut stats = read(&state, move |r| r.stats(now)).await?;
    stats.p99_answer_us = state.engine.metrics().predict_p99_us();
    Ok(Json(stats))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Only this action.
    #[param(value_type = Option<Action>)]
    action: Option<String>,
    /// Rows (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
    /// The `next` cursor of the previous page (`<received_at ms>:<txn_id>`).
    #[param(pattern = "^-?[0-9]{1,18}:")]
    before: Option<String>,
}

/// A page of results, newest first, with the cursor of the next page.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page {
    pub transactions: Vec<TransactionRow>,
    /// Pass as `before` (`after` for the review queue) for the next page; absent on the last page.
    pub next: Option<String>,
}

impl Page {
    /// A page of up to `limit` rows; a full page has a cursor at its last row.
    fn of(transactions: Vec<TransactionRow>, limit: usize) -> Self {
        let next = transactions
            .last()
            .filter(|_| transactions.len() == limit)
            .map(|t| Cursor { received_at: t.received_at, txn_id: t.txn_id.clone() }.to_string());
        Self { transactions, next }
    }
}

/// Recent results, newest first, optionally of one action.
#[utoipa::path(get, path = "/api/transactions", tag = "dashboard", params(PageQuery),
    responses((status = 200, body = Page), (status = 400, body = ErrorBody)))]
pub async fn transactions(
    State(state): State<AppState>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Page>, ApiError> {
    let Query(q) = q.map_err(query_error)?;
    let filter = match q.action.as_deref() {
        None => Filter::All,
        Some(a) => Filter::Action(a.parse::<Action>().map_err(|m| bad_query("action", m))?),
    };
    page(&state, filter, q.limit, q.before.as_deref()).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    /// Rows (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
    /// The `next` cursor of the previous page (`<received_at ms>:<txn_id>`).
    #[param(pattern = "^-?[0-9]{1,18}:")]
    before: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CountriesQuery {
    /// Rows (default 10).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

/// Flagged (review or block) results, newest first.
#[utoipa::path(get, path = "/api/flagged", tag = "dashboard", params(LimitQuery),
    responses((status = 200, body = Page), (status = 400, body = ErrorBody)))]
pub async fn flagged(
    State(state): State<AppState>,
    q: Result<Query<LimitQuery>, QueryRejection>,
) -> Result<Json<Page>, ApiError> {
    let Query(q) = q.map_err(query_error)?;
    page(&state, Filter::Flagged, q.limit, q.before.as_deref()).await
}

async fn page(
    state: &AppState,
    filter: Filter,
    limit: Option<usize>,
    before: Option<&str>,
) -> Result<Json<Page>, ApiError> {
    let limit = checked_limit(limit)?;
    let before = before.map(|b| b.parse::<Cursor>().map_err(|m| bad_query("before", m))).transpose()?;
    let transactions = read(state, move |r| r.page(filter, limit, before.as_ref())).await?;
    Ok(Json(Page::of(transactions, limit)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReviewQuery {
    /// Rows (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
    /// Only flags received before this time (Unix milliseconds), e.g. to work on the ones
    /// waiting longest.
    before: Option<i64>,
    /// The `next` cursor of the previous page (`<received_at ms>:<txn_id>`).
    #[param(pattern = "^-?[0-9]{1,18}:")]
    after: Option<String>,
}

/// The review queue: flagged (review or block) transactions without a verdict, oldest first.
/// A transaction leaves it when any label arrives for it.
#[utoipa::path(get, path = "/api/review", tag = "dashboard", params(ReviewQuery),
    responses((status = 200, body = Page), (status = 400, body = ErrorBody)))]
pub async fn review(
    State(state): State<AppState>,
    q: Result<Query<ReviewQuery>, QueryRejection>,
) -> Result<Json<Page>, ApiError> {
    let Query(q) = q.map_err(query_error)?;
    let limit = checked_limit(q.limit)?;
    let after = q.after.as_deref().map(|b| b.parse::<Cursor>().map_err(|m| bad_query("after", m))).transpose()?;
    let before = q.before;
    let transactions = read(&state, move |r| r.review_queue(limit, before, after.as_ref())).await?;
    Ok(Json(Page::of(transactions, limit)))
}

/// One transaction: every model's score, the reasons and rules, its labels and its card's
/// recent transactions.
#[utoipa::path(get, path = "/api/transactions/{txn_id}", tag = "dashboard",
    params(("txn_id" = String, Path, description = "The transaction id")),
    responses((status = 200, body = Case), (status = 404, description = "Not stored", body = ErrorBody)))]
pub async fn case(
    State(state): State<AppState>,
    axum::extract::Path(txn_id): axum::extract::Path<String>,
) -> Result<Json<Case>, ApiError> {
    // The model's entity fields link the case to other cards.
    let entities: Vec<String> = state
        .engine
        .fields()
        .fields()
        .iter()
        .filter(|f| f.kind == crate::domain::fields::Kind::Entity)
        .map(|f| f.name.clone())
        .collect();
    match read(&state, move |r| r.case(&txn_id, &entities)).await? {
        Some(case) => Ok(Json(case)),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no stored transaction has this txn_id")),
    }
}

/// Countries by number of flagged transactions.
#[utoipa::path(get, path = "/api/countries", tag = "dashboard", params(CountriesQuery),
    responses((status = 200, body = Vec<CountryCount>), (status = 400, body = ErrorBody)))]
pub async fn countries(
    State(state): State<AppState>,
    q: Result<Query<CountriesQuery>, QueryRejection>,
) -> Result<Json<Vec<CountryCount>>, ApiError> {
    let Query(q) = q.map_err(query_error)?;
    let limit = checked_limit(q.limit.or(Some(10)))?;
    read(&state, move |r| r.countries(limit)).await.map(Json)
}

/// Server-Sent Events: a `stats` event (the `/api/stats` body) at connection and whenever new
/// results or verdicts are stored, checked every second; comments keep the connection alive.
#[utoipa::path(get, path = "/api/events", tag = "dashboard",
    responses((status = 200, description = "text/event-stream of `stats` events", content_type = "text/event-stream")))]
pub async fn events(
    State(state): State<AppState>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let stream = futures_util::stream::unfold((state, None), |(state, seen)| async move {
        loop {
            if seen.is_some() {
                tokio::time::sleep(EVENT_POLL).await;
            }
            let now = chrono::Utc::now().timestamp_millis();
            match read(&state, move |r| r.stats(now))
                .await
                .map(|s| Stats { p99_answer_us: state.engine.metrics().predict_p99_us(), ..s })
            {
                Ok(stats) if seen != Some((stats.processed, stats.last_received_at, stats.verdicts_version)) => {
                    let mark = Some((stats.processed, stats.last_received_at, stats.verdicts_version));
                    let event = Event::default().event("stats").json_data(&stats).unwrap_or_default();
                    return Some((Ok(event), (state, mark)));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(EVENT_POLL).await,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn checked_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit.unwrap_or(50) {
        n @ 1..=MAX_PAGE => Ok(n),
        _ => Err(bad_query("limit", format!("`limit` must be 1 to {MAX_PAGE}"))),
    }
}

fn query_error(e: QueryRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text())
}

fn bad_query(field: &'static str, message: impl Into<String>) -> ApiError {
    let mut e = ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", message);
    e.detail.field = Some(field.into());
    e
}
