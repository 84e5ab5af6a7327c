//! The HTTP API of a real `aegis serve`: every route, validation, idempotency, auth, batches.

use super::server::{Server, bundles, pan, txn};
use aegis::store::Store;
use serde_json::{Value, json};

fn stored(server: &Server) -> u64 {
    super::stored_rows(&server.db)
}

#[test]
fn predict_answers_stores_and_never_keeps_the_card_number() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &bundles().a, &[], &[]);
    let card = pan(1);
    let (status, body) = server.predict(&txn("t-1", &card, 42.5, "FR", "2025-01-09T10:00:00Z"));
    assert_eq!(status, 200, "{body}");
    for field in ["txn_id", "score", "action", "reasons", "if_score", "ae_mse", "label", "model_version", "latency_us"]
    {
        assert!(body.get(field).is_some(), "missing {field}: {body}");
    }
    let score = body["score"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&score), "{body}");
    // The test bundle learned from labels: the decision score is the supervised probability.
    assert_eq!(body["fraud_probability"].as_f64(), Some(score), "{body}");
    assert_eq!(body["label"].as_u64().unwrap(), u64::from(body["action"] != "allow"));
    assert_eq!(body["duplicate"], false);

    let row = Store::open(&server.db).unwrap().get("t-1").unwrap().expect("stored before the answer");
    assert_eq!(row.card_masked, "411111******".to_owned() + &card[12..]);
    assert_eq!(row.card_token.len(), 32);
    assert_eq!(row.score, score as f32);
    assert_eq!(row.fraud_probability, Some(score as f32));
    // The raw PAN is in no file the server wrote, nor in its log.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(card.len()).any(|w| w == card.as_bytes()), "PAN found in a file");
    }
    assert!(!server.output().contains(&card));
}

#[test]
fn a_repeated_txn_id_returns_the_stored_decision_and_does_not_count_twice() {
    let first = tempfile::tempdir().unwrap();
    let twice = Server::start(first.path(), &bundles().a, &[], &[]);
    let card = pan(2);
    let t1 = txn("r-1", &card, 30.0, "FR", "2025-01-09T10:00:00Z");
    let t2 = txn("r-2", &card, 900.0, "BR", "2025-01-09T10:05:00Z");
    let (_, a) = twice.predict(&t1);
    // Same id, different content: still the stored decision.
    let mut altered = t1.clone();
    altered["amount"] = json!(5000.0);
    let (status, again) = twice.predict(&altered);
    assert_eq!(status, 200);
    assert_eq!(again["duplicate"], true);
    assert_eq!((&again["score"], &again["action"]), (&a["score"], &a["action"]));
    let (_, after_duplicate) = twice.predict(&t2);

    // Against a server that saw r-1 once, r-2 scores the same: the card state moved once.
    let second = tempfile::tempdir().unwrap();
    let once = Server::start(second.path(), &bundles().a, &[], &[]);
    once.predict(&t1);
    let (_, after_single) = once.predict(&t2);
    assert_eq!(after_duplicate["score"], after_single["score"]);
    assert_eq!(stored(&twice), 2);
}

#[test]
fn every_client_mistake_gets_a_4xx_naming_the_problem_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &bundles().a, &[], &[]);
    let good = txn("v-1", &pan(3), 10.0, "FR", "2025-01-09T10:00:00Z");
    let with = |field: &str, value: Value| {
        let mut t = good.clone();
        t[field] = value;
        t
    };
    let without = |field: &str| {
        let mut t = good.clone();
        t.as_object_mut().unwrap().remove(field);
        t
    };
    let cases: Vec<(Value, u16, &str, Option<&str>)> = vec![
        (without("amount"), 422, "missing_field", Some("amount")),
        (without("card_num"), 422, "missing_field", Some("card_num")),
        (with("amount", json!("ten")), 422, "invalid_type", Some("amount")),
        (with("amount", json!(-5)), 422, "invalid_value", Some("amount")),
        (with("amount", json!(1e9)), 422, "invalid_value", Some("amount")),
        (with("timestamp", json!("not a time")), 422, "invalid_value", Some("timestamp")),
        (with("timestamp", json!("2999-01-01T00:00:00Z")), 422, "invalid_value", Some("timestamp")),
        (with("country", json!("FRA")), 422, "invalid_value", Some("country")),
        (with("country", json!(33)), 422, "invalid_type", Some("country")),
        (with("card_num", json!("4111111111111112")), 422, "invalid_value", Some("card_num")),
        (with("card_num", json!("12345")), 422, "invalid_value", Some("card_num")),
        (with("txn_id", json!("")), 422, "invalid_value", Some("txn_id")),
        (json!([1, 2]), 400, "invalid_body", None),
    ];
    for (body, status, code, field) in cases {
        let (got, answer) = server.predict(&body);
        assert_eq!(got, status, "{body} -> {answer}");
        assert_eq!(answer["error"]["code"], code, "{body} -> {answer}");
        assert_eq!(answer["error"]["field"].as_str(), field, "{answer}");
        assert!(!answer["error"]["message"].as_str().unwrap().is_empty());
    }
    let raw = |body: &'static str, content_type: &str| {
        let resp = server
            .client()
            .post(format!("{}/predict", server.url))
            .header("content-type", content_type)
            .body(body)
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.json::<Value>().unwrap())
    };
    let (status, body) = raw("{\"txn_id\": ", "application/json");
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_json")));
    let (status, body) = raw("{}", "text/plain");
    assert_eq!((status, body["error"]["code"].as_str()), (415, Some("unsupported_media_type")));
    let huge: &'static str = Box::leak(format!("{{\"txn_id\": \"{}\"}}", "x".repeat(200_000)).into_boxed_str());
    let (status, body) = raw(huge, "application/json");
    assert_eq!((status, body["error"]["code"].as_str()), (413, Some("body_too_large")));
    assert_eq!(stored(&server), 0, "nothing is stored for a rejected request");
}

#[test]
fn batches_answer_in_order_with_per_item_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &bundles().a, &[], &[]);
    let batch: Vec<Value> = (0..20)
        .map(|i| {
            if i == 7 {
                json!({"txn_id": "b-7", "amount": 1})
            } else if i == 12 {
                // b-3 again in the same batch: scored once, the repeat answered "in progress".
                txn("b-3", &pan(103), 23.0, "FR", "2025-01-09T10:00:00Z")
            } else {
                txn(&format!("b-{i}"), &pan(100 + i % 5), 20.0 + i as f64, "FR", "2025-01-09T10:00:00Z")
            }
        })
        .collect();
    let (status, body) = server.post("/predict/batch", &json!(batch), None);
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 20);
    for (i, r) in results.iter().enumerate() {
        match i {
            7 => assert_eq!(r["error"]["code"], "missing_field", "{r}"),
            12 => assert_eq!(r["error"]["code"], "in_progress", "{r}"),
            _ => assert_eq!(r["txn_id"], format!("b-{i}"), "{r}"),
        }
    }
    assert_eq!(stored(&server), 18);
    let too_many: Vec<Value> = (0..10_001).map(|i| json!({"txn_id": i})).collect();
    let (status, body) = server.post("/predict/batch", &json!(too_many), None);
    assert_eq!((status, body["error"]["code"].as_str()), (413, Some("batch_too_large")));
}

#[test]
fn a_token_guards_scoring_and_admin_but_not_health_or_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &bundles().a, &[], &[("AEGIS_API_TOKEN", "s3cret")]);
    let t = txn("a-1", &pan(4), 10.0, "FR", "2025-01-09T10:00:00Z");
    for token in [None, Some("wrong")] {
        let (status, body) = server.post("/predict", &t, token);
        assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")));
        assert_eq!(server.post("/admin/reload", &json!({}), token).0, 401);
        assert_eq!(server.post("/predict/batch", &json!([t]), token).0, 401);
    }
    assert_eq!(server.post("/predict", &t, Some("s3cret")).0, 200);
    assert_eq!(server.get("/health").0, 200);
    assert_eq!(server.get("/metrics").0, 200);
    assert!(!server.output().contains("s3cret"));
}

#[test]
fn health_ready_metrics_openapi_and_unknown_routes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &bundles().a, &[], &[]);
    let (status, health) = server.get("/health");
    assert_eq!((status, health.as_str()), (200, r#"{"status":"ok"}"#));
    let (status, ready) = server.get("/ready");
    let ready: Value = serde_json::from_str(&ready).unwrap();
    assert_eq!((status, &ready["ready"], &ready["store"]), (200, &json!(true), &json!("ok")));
    let flag_rate = ready["flag_rate"].as_f64().unwrap_or_else(|| panic!("{ready}"));
    assert!(flag_rate > 0.0 && flag_rate < 0.5, "the calibrated review rate: {flag_rate}");
    let version = ready["model_version"].as_str().unwrap().to_owned();

    server.predict(&txn("m-1", &pan(5), 10.0, "FR", "2025-01-09T10:00:00Z"));
    server.predict(&json!({}));
    let (_, metrics) = server.get("/metrics");
    for want in [
        r#"aegis_http_requests_total{route="/predict",method="POST",status="200"} 1"#,
        r#"aegis_http_requests_total{route="/predict",method="POST",status="422"} 1"#,
        r#"aegis_http_request_duration_seconds_count{route="/predict",method="POST",status="200"} 1"#,
        "aegis_store_write_seconds_count 1",
        "aegis_store_queue_depth 0",
        &format!(r#"aegis_model_info{{version="{version}"}} 1"#),
    ] {
        assert!(metrics.contains(want), "{want} not in:\n{metrics}");
    }
    assert!(metrics.contains("aegis_decisions_total{action="), "{metrics}");

    let (status, spec) = server.get("/openapi.json");
    let spec: Value = serde_json::from_str(&spec).unwrap();
    assert_eq!(status, 200);
    for path in ["/predict", "/predict/batch", "/health", "/ready", "/metrics", "/admin/reload"] {
        assert!(spec["paths"][path].is_object(), "{path} missing from the OpenAPI document");
    }
    let schema = &spec["components"]["schemas"]["TransactionIn"]["properties"];
    assert!(schema["card_num"].is_object() && schema["amount"].is_object(), "{schema}");

    let (status, body) = server.get("/no/such/route");
    assert_eq!(status, 404);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["code"], "not_found");
    let (status, _) = server.get("/predict");
    assert_eq!(status, 405);
}

#[test]
fn a_restarted_server_rebuilds_card_history_from_the_store() {
    let card = pan(7);
    let history =
        [txn("h-1", &card, 30.0, "FR", "2025-01-09T10:00:00Z"), txn("h-2", &card, 45.0, "FR", "2025-01-09T12:00:00Z")];
    let next = txn("h-3", &card, 900.0, "BR", "2025-01-09T12:05:00Z");

    // One server that sees all three transactions.
    let continuous = tempfile::tempdir().unwrap();
    let server = Server::start(continuous.path(), &bundles().a, &[], &[]);
    history.iter().for_each(|t| assert_eq!(server.predict(t).0, 200));
    let (_, expected) = server.predict(&next);
    drop(server);

    // The same, with a restart (same database and card key) before the third.
    let restarted = tempfile::tempdir().unwrap();
    let first = Server::start(restarted.path(), &bundles().a, &[], &[]);
    history.iter().for_each(|t| assert_eq!(first.predict(t).0, 200));
    drop(first);
    let second = Server::start(restarted.path(), &bundles().a, &[], &[]);
    let (_, got) = second.predict(&next);
    assert_eq!(got["score"], expected["score"], "the card's history survived the restart");
    assert_eq!(got["reasons"], expected["reasons"]);
}

#[test]
fn a_pii_field_is_in_no_file_the_server_wrote_nor_in_its_log_and_history_reads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A bundle with the generator's declared fields (the e-mail is `pii = true`).
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/schema.toml");
    super::aegis_ok(d, &["generate", "--rows", "4000", "--cards", "200", "--days", "15", "--out", "tx.csv"]);
    super::aegis_ok(
        d,
        &["train", "--data", "tx.csv", "--out", "m", "--epochs", "2", "--trees", "30", "--schema", schema],
    );
    let models = std::fs::canonicalize(d.join("m/current")).unwrap();
    let mut server = Server::start(d, &models, &[], &[]);
    let email = "alice.secret@example.com";
    let mut t = txn("pii-1", &pan(7), 42.5, "FR", "2025-01-09T10:00:00Z");
    t["email"] = json!(email);
    t["device_id"] = json!("d-42");
    t["channel"] = json!("ecom");
    let (status, body) = server.predict(&t);
    assert_eq!(status, 200, "{body}");
    // A bad e-mail: refused by name, not echoed.
    t["txn_id"] = json!("pii-2");
    t["email"] = json!(format!("{email}\u{7}"));
    let (status, body) = server.predict(&t);
    assert_eq!((status, &body["error"]["field"]), (422, &json!("email")), "{body}");
    assert!(!body.to_string().contains("alice"), "{body}");
    // `produce --data --schema` sends a CSV's declared fields too.
    let out = super::aegis_ok(
        d,
        &[
            "produce",
            "--target",
            &server.url,
            "--data",
            "tx.csv",
            "--schema",
            schema,
            "--count",
            "50",
            "--rate",
            "0",
            "-q",
        ],
    );
    assert!(out.contains("50 transactions processed"), "{out}");
    let csv = std::fs::read_to_string(d.join("tx.csv")).unwrap();
    let first_email =
        csv.lines().skip(1).filter_map(|l| l.split(',').nth(13)).find(|e| !e.is_empty()).unwrap().to_owned();
    assert!(first_email.contains('@'), "{first_email}");
    server.signal("-TERM");
    assert!(server.wait(std::time::Duration::from_secs(30)));
    for entry in std::fs::read_dir(d).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() && path.file_name().is_some_and(|n| n != "tx.csv") {
            let bytes = std::fs::read(&path).unwrap();
            assert!(!bytes.windows(5).any(|w| w == b"alice"), "the e-mail is in {}", path.display());
            let raw = first_email.as_bytes();
            assert!(!bytes.windows(raw.len()).any(|w| w == raw), "a produced e-mail is in {}", path.display());
        }
    }
    assert!(!server.output().contains("alice"), "the e-mail is in the log");
    // Stored as a token, by name: a restarted server rebuilds the card's history with it.
    let row = Store::open(d.join("results.db")).unwrap().get("pii-1").unwrap().unwrap();
    let fields: Value = serde_json::from_str(row.fields.as_deref().unwrap()).unwrap();
    assert!(fields["email"].as_str().unwrap().starts_with("tok_") && fields["device_id"] == "d-42", "{fields}");
    let with_fields: i64 = rusqlite::Connection::open(d.join("results.db"))
        .unwrap()
        .query_row("SELECT COUNT(*) FROM results WHERE fields LIKE '%\"channel\"%'", [], |r| r.get(0))
        .unwrap();
    assert!(with_fields > 40, "produced rows carry their fields: {with_fields}");
}
