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

#[tokio::test]
async fn declared_fields_are_validated_stored_tokenized_and_documented() {
    let dir = tempfile::tempdir().unwrap();
    let schema = crate::domain::fields::Schema::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/schema.toml"
    )))
    .unwrap();
    let (bundle, _) = crate::scoring::testing::trained_with(schema);
    let engine = Arc::new(engine_for_tests(dir.path(), &bundle));
    let app = router(AppState::new(Arc::clone(&engine), None));
    let with = |id: &str, extra: Value| {
        let mut t: Value = serde_json::from_str(&txn(id)).unwrap();
        for (k, v) in extra.as_object().unwrap() {
            t[k] = v.clone();
        }
        t.to_string()
    };
    let good = json!({"channel": "ecom", "device_id": "d-1", "email": "alice@example.com",
        "location": {"lat": 48.85, "lon": 2.35}, "entry_mode": null});
    let (status, body) = call(&app, "POST", "/predict", JSON, &with("f-1", good), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Stored by name, the e-mail as a token only.
    let mut store = crate::store::Store::open(dir.path().join("results.db")).unwrap();
    let stored = store.get("f-1").unwrap().unwrap().fields.unwrap();
    assert!(stored.contains("\"device_id\":\"d-1\"") && stored.contains("tok_"), "{stored}");
    assert!(!stored.contains("alice"), "{stored}");
    let case = call(&app, "GET", "/api/transactions/f-1", None, "", None).await.1;
    assert_eq!(case["transaction"]["fields"]["device_id"], json!("d-1"), "{case}");
    // Its entity fields link it to the cards that shared them (only itself here); categories do not.
    let links = case["links"].as_array().unwrap();
    let fields: Vec<&str> = links.iter().map(|l| l["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["device_id", "email"], "{case}");
    assert_eq!((&links[0]["cards"], &links[0]["fraud_cards"]), (&json!(1), &json!(0)));
    assert!(!case.to_string().contains("alice"), "{case}");
    // A typo is refused, naming the key; a value of the wrong kind names its field.
    let (status, body) = call(&app, "POST", "/predict", JSON, &with("f-2", json!({"devise_id": "d-1"})), None).await;
    assert_eq!(
        (status, &body["error"]["code"], &body["error"]["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("unknown_field"), &json!("devise_id"))
    );
    let (status, body) =
        call(&app, "POST", "/predict", JSON, &with("f-3", json!({"location": {"lat": 91, "lon": 0}})), None).await;
    assert_eq!((status, &body["error"]["field"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("location")), "{body}");
    let (status, body) =
        call(&app, "POST", "/predict", JSON, &with("f-4", json!({"device_id": 7.5, "channel": ["x"]})), None).await;
    assert_eq!((status, &body["error"]["field"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("channel")), "{body}");
    // The document states the declared keys, and no others.
    let (_, doc) = call(&app, "GET", "/openapi.json", None, "", None).await;
    let t = &doc["components"]["schemas"]["TransactionIn"];
    assert_eq!(t["additionalProperties"], json!(false));
    assert_eq!(t["properties"]["location"]["oneOf"][0]["required"], json!(["lat", "lon"]));
    assert!(t["properties"]["email"]["description"].as_str().unwrap().contains("PII"));
}

#[tokio::test]
async fn without_a_schema_unknown_keys_are_refused_too() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), None);
    let mut t: Value = serde_json::from_str(&txn("u-1")).unwrap();
    t["merchant_categroy"] = json!("grocery");
    let (status, body) = call(&app, "POST", "/predict", JSON, &t.to_string(), None).await;
    assert_eq!((status, &body["error"]["code"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("unknown_field")));
    assert_eq!(body["error"]["field"], json!("merchant_categroy"));
}
