//! The router in process (`tower::ServiceExt::oneshot`): status codes, error bodies, auth and
//! idempotency without spawning the binary.

use super::*;
use crate::engine::engine_for_tests;
use crate::scoring::testing::trained;
use axum::body::Body;
use serde_json::{Value, json};
use tower::ServiceExt;

fn app(dir: &std::path::Path, token: Option<&str>) -> Router {
    let (bundle, _) = trained();
    router(AppState::new(Arc::new(engine_for_tests(dir, &bundle)), token))
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    content_type: Option<&str>,
    body: &str,
    bearer: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = axum::http::Request::builder().method(method).uri(uri);
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    if let Some(t) = bearer {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let resp = app.clone().oneshot(req.body(Body::from(body.to_owned())).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn txn(id: &str) -> String {
    json!({"txn_id": id, "timestamp": "2025-01-09T10:00:00Z", "amount": 42.5, "country": "FR",
           "merchant": "M1", "card_num": "4111111111111111"})
    .to_string()
}

const JSON: Option<&str> = Some("application/json");

#[tokio::test]
async fn predict_scores_once_and_answers_repeats_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), None);
    let (status, first) = call(&app, "POST", "/predict", JSON, &txn("r-1"), None).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["duplicate"], false);
    assert!(first["fraud_probability"].is_number(), "{first}");
    let (status, again) = call(&app, "POST", "/predict", JSON, &txn("r-1"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["duplicate"], true);
    assert_eq!((&again["score"], &again["action"]), (&first["score"], &first["action"]));
}

#[tokio::test]
async fn client_mistakes_get_4xx_json_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), None);
    let (status, body) = call(&app, "POST", "/predict", Some("text/plain"), &txn("e-1"), None).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    let (status, body) = call(&app, "POST", "/predict", JSON, "{not json", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["code"].is_string(), "{body}");
    let mut bad: Value = serde_json::from_str(&txn("e-2")).unwrap();
    bad["amount"] = json!(-1.0);
    let (status, body) = call(&app, "POST", "/predict", JSON, &bad.to_string(), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "amount");
    let (status, _) = call(&app, "GET", "/no-such-route", None, "", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_token_guards_scoring_but_not_health() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), Some("s3cret"));
    let (status, body) = call(&app, "POST", "/predict", JSON, &txn("a-1"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = call(&app, "POST", "/predict", JSON, &txn("a-1"), Some("wrong")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = call(&app, "POST", "/predict", JSON, &txn("a-1"), Some("s3cret")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = call(&app, "GET", "/health", None, "", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_openapi_document_states_what_the_server_checks() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), None);
    let (status, doc) = call(&app, "GET", "/openapi.json", None, "", None).await;
    assert_eq!(status, StatusCode::OK);
    // Query parameters are in the query, optional, with the bounds the handlers enforce.
    for path in ["/api/transactions", "/api/flagged", "/api/review", "/api/countries"] {
        let params = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
        let limit = params.iter().find(|p| p["name"] == "limit").unwrap();
        assert_eq!((&limit["in"], &limit["required"]), (&json!("query"), &json!(false)), "{path}: {limit}");
        assert_eq!((&limit["schema"]["minimum"], &limit["schema"]["maximum"]), (&json!(1), &json!(500)), "{path}");
        let (status, _) = call(&app, "GET", &format!("{path}?limit=0"), None, "", None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
    }
    // A card is a number, or a token with its masked form; sending both is refused.
    let one_of = &doc["components"]["schemas"]["TransactionIn"]["oneOf"];
    assert_eq!(one_of[1]["required"], json!(["card_token", "card_masked"]));
    let both = json!({"txn_id": "b", "timestamp": "2025-01-09T10:00:00Z", "amount": 1.0, "country": "FR",
        "merchant": "M1", "card_num": "4111111111111111", "card_token": "00112233445566778899aabbccddeeff"});
    let (status, body) = call(&app, "POST", "/predict", JSON, &both.to_string(), None).await;
    assert_eq!((status, &body["error"]["field"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("card_token")));
    // Batch items are validated one by one, so the document accepts any item.
    let batch = &doc["paths"]["/predict/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!((&batch["items"], &batch["maxItems"]), (&json!({}), &json!(MAX_BATCH)));
    // The latest timestamp the server takes is stated, and taken.
    let maximum = doc["components"]["schemas"]["TransactionIn"]["properties"]["timestamp"]["oneOf"][1]["maximum"]
        .as_i64()
        .unwrap();
    let latest = json!({"txn_id": "late", "timestamp": maximum, "amount": 1.0, "country": "FR", "merchant": "M1",
        "card_num": "4111111111111111"});
    assert_eq!(call(&app, "POST", "/predict", JSON, &latest.to_string(), None).await.0, StatusCode::OK);
    let later = latest.to_string().replace(&maximum.to_string(), &(maximum + 1).to_string()).replace("late", "later");
    assert_eq!(call(&app, "POST", "/predict", JSON, &later, None).await.0, StatusCode::UNPROCESSABLE_ENTITY);
}
