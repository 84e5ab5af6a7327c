//! `/lists/{name}/items`: the named lists rules test membership in (`merchant in
//! blocked_merchants`). A card is listed by its token; sent by number it is tokenized at once and
//! the number is neither stored nor logged.

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::predict::json_body;
use crate::store::ListItem;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest list value (a merchant id, a country, a 32-digit card token).
const MAX_VALUE: usize = 128;
/// Most items one request adds.
const MAX_ITEMS: usize = 10_000;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListBody {
    pub list: String,
    /// Oldest first.
    pub items: Vec<ListItem>,
}

/// One item to add: exactly one of `value` and `card_num`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // documents the body; the handler validates the JSON by hand
pub struct ListItemIn {
    /// A merchant id, a country code or a card token (32 hex digits).
    #[schema(min_length = 1, max_length = 128)]
    pub value: Option<String>,
    /// A card number (12–19 digits, Luhn-valid), tokenized on arrival.
    #[schema(pattern = "^[0-9]{12,19}$")]
    pub card_num: Option<String>,
    #[schema(max_length = 1000)]
    pub note: Option<String>,
}

/// One item or a JSON array of items.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum ListItemsIn {
    One(ListItemIn),
    Many(Vec<ListItemIn>),
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Added {
    /// Items sent.
    pub items: usize,
    /// Of those, new to the list.
    pub added: usize,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Removed {
    pub removed: bool,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RemoveQuery {
    /// The value to remove (a card by its token, as `GET` lists it).
    #[param(min_length = 1, max_length = 128)]
    value: String,
}

/// The items of a list (empty if it has none).
#[utoipa::path(get, path = "/lists/{name}/items", tag = "lists", security((), ("bearer" = [])),
    params(("name" = String, Path, description = "List name: letters, digits and _ (at most 64), not starting with a digit")),
    responses((status = 200, body = ListBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn get(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<ListBody>, ApiError> {
    check_name(&name)?;
    let readers = std::sync::Arc::clone(&state.readers);
    let list = name.clone();
    let items = tokio::task::spawn_blocking(move || readers.list_items(&list))
        .await
        .map_err(|_| unavailable())?
        .map_err(|_| unavailable())?;
    Ok(Json(ListBody { list: name, items }))
}

/// Add items (one object or an array); rules see them at once, other processes sharing the
/// store within a few seconds.
#[utoipa::path(post, path = "/lists/{name}/items", tag = "lists", request_body = ListItemsIn,
    security((), ("bearer" = [])),
    params(("name" = String, Path, description = "List name: letters, digits and _ (at most 64), not starting with a digit")),
    responses((status = 200, body = Added), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn post(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Added>, ApiError> {
    check_name(&name)?;
    let items = match json_body(&headers, body)? {
        Value::Array(items) => items,
        one => vec![one],
    };
    if items.len() > MAX_ITEMS {
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large", "at most 10,000 items at once"));
    }
    let items = items.iter().map(|v| item(v, &state.card_key)).collect::<Result<Vec<_>, ApiError>>()?;
    let engine = std::sync::Arc::clone(&state.engine);
    let n = items.len();
    let added = tokio::task::spawn_blocking(move || engine.add_list_items(&name, &items))
        .await
        .map_err(|_| unavailable())?
        .map_err(|e| {
            tracing::error!(error = %format!("{e:#}"), "list items not stored");
            unavailable()
        })?;
    Ok(Json(Added { items: n, added }))
}

/// Remove one value.
#[utoipa::path(delete, path = "/lists/{name}/items", tag = "lists", security((), ("bearer" = [])),
    params(("name" = String, Path, description = "List name"), RemoveQuery),
    responses((status = 200, body = Removed), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, description = "Not on the list", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    q: Result<Query<RemoveQuery>, QueryRejection>,
) -> Result<Json<Removed>, ApiError> {
    check_name(&name)?;
    let Query(q) = q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))?;
    let engine = std::sync::Arc::clone(&state.engine);
    let removed = tokio::task::spawn_blocking(move || engine.remove_list_item(&name, &q.value))
        .await
        .map_err(|_| unavailable())?
        .map_err(|_| unavailable())?;
    if !removed {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_listed", "that value is not on the list"));
    }
    Ok(Json(Removed { removed }))
}

fn check_name(name: &str) -> Result<(), ApiError> {
    // A list named like a rule variable (`amount`) can be stored but not used: the rules
    // loader refuses to declare it and the variable wins in expressions.
    if crate::rules::is_identifier(name) {
        return Ok(());
    }
    let mut e = ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_value",
        "a list name is letters, digits and _ (at most 64), not starting with a digit",
    );
    e.detail.field = Some("name".into());
    Err(e)
}

/// (value, note) from one item.
fn item(v: &Value, key: &crate::domain::CardKey) -> Result<(String, Option<String>), ApiError> {
    let invalid = |field: &'static str, message: &str| {
        let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_value", message);
        e.detail.field = Some(field.into());
        e
    };
    let obj =
        v.as_object().ok_or_else(|| invalid("items", "each item must be an object with `value` or `card_num`"))?;
    let note = match obj.get("note") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= 1_000 => Some(s.clone()),
        Some(_) => return Err(invalid("note", "`note` must be a string of at most 1,000 characters")),
    };
    match (obj.get("value").filter(|v| !v.is_null()), obj.get("card_num").filter(|v| !v.is_null())) {
        (Some(Value::String(s)), None)
            if !s.trim().is_empty() && s.len() <= MAX_VALUE && !s.chars().any(char::is_control) =>
        {
            Ok((s.trim().to_owned(), note))
        }
        (Some(_), None) => Err(invalid("value", "`value` must be a non-empty string of at most 128 characters")),
        (None, Some(Value::String(pan)))
            if (12..=19).contains(&pan.len())
                && pan.bytes().all(|b| b.is_ascii_digit())
                && crate::domain::luhn_valid(pan) =>
        {
            Ok((key.token(pan).to_string(), note))
        }
        (None, Some(_)) => Err(invalid("card_num", "`card_num` must be 12 to 19 digits passing the Luhn check")),
        _ => Err(invalid("value", "send exactly one of `value` and `card_num`")),
    }
}

fn unavailable() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "the store cannot be reached; retry")
}
