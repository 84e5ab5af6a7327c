//! `GET /openapi.json`: the API description, generated from the handler and type annotations.

use super::{admin, dashboard, error, labels, lists, predict};
use crate::domain::{MIN_TIMESTAMP, latest_timestamp};
use axum::Json;
use serde_json::{Value, json};
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(title = "Aegis", description = "Real-time card fraud scoring: score, action and reasons for every transaction."),
    paths(
        predict::one,
        predict::batch,
        admin::health,
        admin::ready,
        admin::metrics,
        admin::reload,
        admin::promote,
        labels::post,
        lists::get,
        lists::post,
        lists::delete,
        dashboard::stats,
        dashboard::transactions,
        dashboard::flagged,
        dashboard::review,
        dashboard::case,
        dashboard::countries,
        dashboard::events
    ),
    components(schemas(crate::domain::TransactionIn, crate::domain::LabelRequest, lists::ListItemIn, error::ErrorBody,
        error::ErrorDetail, labels::LabelBatchResponse, labels::LabelItem)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// What the validation of free-text fields (`check_text`) accepts: no control characters and
/// not only white space (their lengths are in the schemas).
const TEXT_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";

/// What a list name may be (`rules::is_identifier`).
const LIST_NAME_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]{0,63}$";

/// Declares the bearer-token scheme that `/predict*` and `/admin/*` use when a token is set.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The served document, built per request: the latest accepted timestamp moves once a day, and
/// a transaction's declared fields are the loaded bundle's.
pub async fn spec(axum::extract::State(state): axum::extract::State<super::AppState>) -> Json<Value> {
    Json(document(chrono::Utc::now().timestamp(), &state.engine.fields()))
}

/// The JSON Schema of a declared field's key, as `fields::value::parse_json` accepts it.
fn field_schema(field: &crate::domain::fields::Field) -> Value {
    use crate::domain::fields::Kind;
    let mut schema = match field.kind {
        Kind::Number => {
            let mut s = json!({"type": "number"});
            if let Some(min) = field.min {
                s["minimum"] = json!(min);
            }
            if let Some(max) = field.max {
                s["maximum"] = json!(max);
            }
            s
        }
        Kind::Flag => json!({"type": "boolean"}),
        // A blank value is missing: fine for an optional field, refused for a required one.
        Kind::Category | Kind::Entity => json!({"type": "string", "maxLength": crate::domain::fields::value::MAX_TEXT,
            "pattern": if field.required { TEXT_PATTERN } else { r"^[^\x00-\x1f\x7f-\x9f]*$" }}),
        Kind::Location => json!({"type": "object", "required": ["lat", "lon"], "properties": {
            "lat": {"type": "number", "minimum": -90, "maximum": 90},
            "lon": {"type": "number", "minimum": -180, "maximum": 180}}}),
    };
    let pii = if field.pii { " PII: tokenized on arrival, never stored raw." } else { "" };
    schema["description"] = json!(format!("Declared field ({}).{pii}", field.kind.as_str()));
    if field.required {
        schema
    } else {
        json!({"description": schema["description"].clone(), "oneOf": [schema, {"type": "null"}]})
    }
}

/// utoipa's document plus what its derives cannot state, so that the document says exactly what
/// the server accepts (checked by the schemathesis run in `scripts/test.sh`):
/// - a transaction names its card by `card_num`, or by `card_token` with `card_masked`, never
///   both; a label's and a transaction's time is an RFC 3339 string or Unix seconds;
/// - batch bodies (`/predict/batch`, a `/labels` array) take any JSON values as items: each is
///   validated on its own and answered with its own result or error;
/// - a list item is a `value` or a `card_num`, not both.
/// - a transaction takes the bundle's declared fields as keys, and no other key.
fn document(now: i64, fields: &crate::domain::fields::Schema) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let time = |description: &str| {
        json!({"description": description, "oneOf": [
            // Years 2000 to 2999; the end of tomorrow as a date cannot be a pattern.
            {"type": "string", "format": "date-time", "pattern": "^2[0-9]{3}-"},
            {"type": "integer", "format": "int64", "minimum": MIN_TIMESTAMP, "maximum": latest_timestamp(now)}]})
    };
    let schemas = &mut doc["components"]["schemas"];
    schemas["TransactionIn"]["oneOf"] = json!([
        {"required": ["card_num"], "properties": {"card_num": {"type": "string"}, "card_token": {"type": "null"},
            "card_masked": {"type": "null"}}},
        {"required": ["card_token", "card_masked"], "properties": {"card_token": {"type": "string"},
            "card_masked": {"type": "string"}, "card_num": {"type": "null"}}}]);
    schemas["TransactionIn"]["properties"]["timestamp"] =
        time("When the card was used: RFC 3339 or Unix seconds, from 2000 to the end of tomorrow (UTC).");
    let mut reported_at = time(
        "When the label became known: RFC 3339 or Unix seconds, from 2000 to the end of tomorrow (UTC); default (absent or null) now.",
    );
    if let Some(forms) = reported_at["oneOf"].as_array_mut() {
        forms.push(json!({"type": "null"}));
    }
    schemas["LabelRequest"]["properties"]["reported_at"] = reported_at;
    schemas["ListItemIn"]["oneOf"] = json!([
        {"required": ["value"], "properties": {"value": {"type": "string"}, "card_num": {"type": "null"}}},
        {"required": ["card_num"], "properties": {"card_num": {"type": "string"}, "value": {"type": "null"}}}]);
    for (schema, field) in [
        ("TransactionIn", "txn_id"),
        ("TransactionIn", "merchant"),
        ("TransactionIn", "merchant_category"),
        ("LabelRequest", "txn_id"),
        ("LabelRequest", "note"),
        ("ListItemIn", "value"),
    ] {
        schemas[schema]["properties"][field]["pattern"] = json!(TEXT_PATTERN);
    }
    let transaction = &mut schemas["TransactionIn"];
    transaction["additionalProperties"] = json!(false);
    for field in fields.fields() {
        transaction["properties"][&field.name] = field_schema(field);
        if field.required {
            if let Some(required) = transaction["required"].as_array_mut() {
                required.push(json!(field.name));
            }
        }
    }
    let any_items = |what: &str| {
        json!({"type": "array", "maxItems": predict::MAX_BATCH, "items": {},
            "description": format!("Up to 10,000 {what}; each is validated on its own and gets its own result or error.")})
    };
    let paths = &mut doc["paths"];
    paths["/predict/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"] = any_items("transactions");
    paths["/labels"]["post"]["requestBody"]["content"]["application/json"]["schema"] =
        json!({"oneOf": [{"$ref": "#/components/schemas/LabelRequest"}, any_items("labels")]});
    for method in ["get", "post", "delete"] {
        if let Some(params) = paths["/lists/{name}/items"][method]["parameters"].as_array_mut() {
            for p in params.iter_mut().filter(|p| p["name"] == "name") {
                p["schema"] = json!({"type": "string", "pattern": LIST_NAME_PATTERN});
            }
        }
    }
    doc
}
