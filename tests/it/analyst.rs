//! The analyst loop against a real `aegis serve`: labels in, the review queue and case view,
//! lists and rules, the shadow model and its promotion, and retraining from the store.

use super::server::{Server, bundles, pan, txn};
use serde_json::{Value, json};
use std::time::Duration;

fn get_json(server: &Server, path: &str) -> (u16, Value) {
    let (status, body) = server.get(path);
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn delete(server: &Server, path: &str, token: Option<&str>) -> u16 {
    let mut req = server.client().delete(format!("{}{path}", server.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().unwrap().status().as_u16()
}

/// Scores `n` transactions of distinct cards at bundle b (which flags ~40%) and returns the
/// ids it flagged.
fn flagged_ids(server: &Server, n: u64, token: Option<&str>) -> Vec<String> {
    let mut flagged = Vec::new();
    for i in 0..n {
        let ts = format!("2025-01-09T10:{:02}:00Z", i % 60);
        let body = txn(&format!("q-{i}"), &pan(500 + i), 50.0 + 97.0 * i as f64, "BR", &ts);
        let (status, body) = server.post("/predict", &body, token);
        assert_eq!(status, 200, "{body}");
        if body["action"] != "allow" {
            flagged.push(body["txn_id"].as_str().unwrap().to_owned());
        }
    }
    assert!(flagged.len() >= 3, "bundle b should flag some of {n}: {flagged:?}");
    flagged
}

#[test]
fn labels_are_validated_idempotent_and_empty_the_review_queue() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &bundles().b, &["--api-token", "s3cret"], &[]);
    let token = Some("s3cret");
    let flagged = flagged_ids(&server, 30, token);
    let (_, queue) = get_json(&server, "/api/review?limit=500");
    let rows = queue["transactions"].as_array().unwrap();
    let received: Vec<i64> = rows.iter().map(|t| t["received_at"].as_i64().unwrap()).collect();
    assert!(received.windows(2).all(|w| w[0] <= w[1]), "oldest first: {received:?}");
    // Two answered within one millisecond are ordered by txn_id ("q-10" before "q-9").
    let mut queued: Vec<&str> = rows.iter().map(|t| t["txn_id"].as_str().unwrap()).collect();
    queued.sort_unstable();
    let mut expected: Vec<&str> = flagged.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(queued, expected, "the queue holds the flagged ones");

    let label = json!({"txn_id": flagged[0], "label": "fraud", "source": "analyst", "note": "customer confirmed"});
    assert_eq!(server.post("/labels", &label, None).0, 401, "writing needs the token");
    let (status, body) = server.post("/labels", &label, token);
    assert_eq!((status, &body["status"], &body["verdict_changed"]), (200, &json!("stored"), &json!(true)), "{body}");
    // The same label again changes nothing; an older report from the same source neither.
    let (_, again) = server.post("/labels", &label, token);
    assert_eq!((&again["status"], &again["verdict_changed"]), (&json!("unchanged"), &json!(false)));
    let older =
        json!({"txn_id": flagged[0], "label": "legit", "source": "analyst", "reported_at": "2025-01-10T00:00:00Z"});
    assert_eq!(server.post("/labels", &older, token).1["status"], "unchanged");

    // Validation names the field; an unknown id is 404; nothing is stored for either.
    for (body, status, field) in [
        (json!({"txn_id": flagged[1], "label": "maybe", "source": "analyst"}), 422, "label"),
        (json!({"txn_id": flagged[1], "label": "fraud", "source": "Bad Source"}), 422, "source"),
        (json!({"txn_id": flagged[1], "label": "fraud"}), 422, "source"),
        (json!({"txn_id": "never-scored", "label": "fraud", "source": "chargeback"}), 404, "txn_id"),
    ] {
        let (got, answer) = server.post("/labels", &body, token);
        assert_eq!((got, answer["error"]["field"].as_str()), (status, Some(field)), "{body}: {answer}");
    }
    // A batch: one result or error per item, in order; the bad ones store nothing.
    let batch = json!([
        {"txn_id": flagged[1], "label": "legit", "source": "analyst"},
        {"txn_id": "never-scored", "label": "fraud", "source": "chargeback"},
        {"txn_id": flagged[2], "label": 7, "source": "analyst"},
        {"txn_id": flagged[2], "label": "fraud", "source": "chargeback", "reported_at": "2025-01-20T00:00:00Z"},
    ]);
    let (status, answer) = server.post("/labels", &batch, token);
    assert_eq!(status, 200, "{answer}");
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results[0]["status"], "stored");
    assert_eq!(results[1]["error"]["code"], "unknown_txn");
    assert_eq!(results[2]["error"]["field"], "label");
    assert_eq!(results[3]["status"], "stored");
    let labels: i64 = rusqlite::Connection::open(&server.db)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM labels", [], |r| r.get(0))
        .unwrap();
    assert_eq!(labels, 3, "three labels stored, none for the rejected items");

    // Labelled transactions left the queue; the tiles count them.
    let (_, queue) = get_json(&server, "/api/review?limit=500");
    let mut left: Vec<&str> =
        queue["transactions"].as_array().unwrap().iter().map(|t| t["txn_id"].as_str().unwrap()).collect();
    left.sort_unstable();
    let mut waiting: Vec<&str> = flagged[3..].iter().map(String::as_str).collect();
    waiting.sort_unstable();
    assert_eq!(left, waiting);
    let (_, stats) = get_json(&server, "/api/stats");
    assert_eq!(stats["confirmed_fraud"], 2, "{stats}");
    assert_eq!(stats["reviewed_flags"], 3, "{stats}");
    assert_eq!(stats["open_queue"].as_u64().unwrap() as usize, flagged.len() - 3, "{stats}");
    assert!((stats["review_precision"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9, "{stats}");

    // The case view: scores, reasons, the labels and the card's history.
    let (status, case) = get_json(&server, &format!("/api/transactions/{}", flagged[0]));
    assert_eq!(status, 200, "{case}");
    assert_eq!(case["transaction"]["verdict"], "fraud");
    assert_eq!(case["labels"][0]["note"], "customer confirmed");
    assert!(case["transaction"]["fraud_probability"].is_number(), "{case}");
    assert!(!case["transaction"]["reasons"].as_array().unwrap().is_empty(), "{case}");
    assert_eq!(case["card_history"][0]["txn_id"], flagged[0].as_str());
    assert!(!case.to_string().contains(&pan(500)), "no card number in the case view");
    assert_eq!(get_json(&server, "/api/transactions/nope").0, 404);
}

#[test]
fn a_label_moves_the_features_at_once_here_and_within_seconds_in_a_process_sharing_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, RULES).unwrap();
    let rules = rules.to_str().unwrap();
    let one = Server::start(dir.path(), &bundles().a, &["--rules", rules], &[]);
    let card = pan(77);
    assert_eq!(one.predict(&txn("k-1", &card, 60.0, "FR", "2025-01-09T10:00:00Z")).0, 200);
    // A second process on the same database rebuilds the card's history from it.
    let two_dir = tempfile::tempdir().unwrap();
    let two = Server::start(two_dir.path(), &bundles().a, &["--db", one.db.to_str().unwrap(), "--rules", rules], &[]);
    let (_, label) = one.post("/labels", &json!({"txn_id": "k-1", "label": "fraud", "source": "chargeback"}), None);
    assert_eq!(label["verdict_changed"], true, "{label}");
    // A list change reaches the other process too (checked last: scoring another transaction
    // at `two` alone would make the two processes' merchant counts differ).
    let stolen = pan(78);
    assert_eq!(one.post("/lists/stolen_cards/items", &json!({"card_num": stolen}), None).0, 200);
    std::thread::sleep(aegis::runtime::SYNC_INTERVAL + Duration::from_secs(1));
    // The card's next transaction (a different id at each process) scores the same in both:
    // each has applied the label exactly once. A third process that never heard of the label
    // (a fresh store with the same history) scores it differently.
    let next = |id: &str| txn(id, &card, 60.0, "FR", "2025-01-09T11:00:00Z");
    let (_, a) = one.predict(&next("k-2a"));
    let (_, b) = two.predict(&next("k-2b"));
    let scores = |v: &serde_json::Value| (v["score"].clone(), v["if_score"].clone(), v["ae_mse"].clone());
    assert_eq!(scores(&a), scores(&b), "{a}\n{b}");
    let fresh = tempfile::tempdir().unwrap();
    let three = Server::start(fresh.path(), &bundles().a, &["--rules", rules], &[]);
    three.predict(&txn("k-1", &card, 60.0, "FR", "2025-01-09T10:00:00Z"));
    let (_, c) = three.predict(&next("k-2c"));
    // The label moves the card's features: the models that read every feature (the forest, the
    // autoencoder) score the card differently; the supervised model never scores it lower.
    assert_ne!(scores(&a), scores(&c), "the fraud label should change the card's next scores: {a}\n{c}");
    let reasons = a["reasons"].to_string() + &a["score"].to_string();
    assert!(a["score"].as_f64() >= c["score"].as_f64(), "a card with confirmed fraud scores no lower: {reasons}");
    let (_, blocked) = two.predict(&txn("k-stolen", &stolen, 10.0, "FR", "2025-01-09T11:30:00Z"));
    assert_eq!(blocked["rules"], json!(["stolen-card"]), "{blocked}");
}

const RULES: &str = r#"
lists = ["stolen_cards", "trusted_merchants"]

[[rule]]
name = "stolen-card"
when = "card in stolen_cards"
action = "block"
reason = "card reported stolen"

[[rule]]
name = "trusted-merchant"
when = "merchant in trusted_merchants"
action = "allow"
reason = "merchant on the trusted list"

[[rule]]
name = "big-ticket"
when = "amount > 5000.0"
action = "review"
reason = "large amount"

[[rule]]
name = "errs-at-run-time"
when = "amount > 1000.0 && merchant_category + 1 > 2"
action = "block"
reason = "never matches: a string plus an int is a type error"
"#;

#[test]
fn rules_and_lists_decide_beside_the_model_and_a_broken_reload_keeps_the_old_rules() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, RULES).unwrap();
    let server = Server::start(dir.path(), &bundles().a, &["--rules", rules.to_str().unwrap()], &[]);
    let ts = "2025-01-09T10:00:00Z";
    // review: a rule raises the model's allow.
    let (_, big) = server.predict(&txn("r-1", &pan(901), 6000.0, "FR", ts));
    assert!(big["rules"].as_array().unwrap().contains(&json!("big-ticket")), "{big}");
    assert_ne!(big["action"], "allow", "{big}");
    assert!(big["reasons"][0].as_str().unwrap().contains("large amount"), "{big}");
    // block: a card listed by its number (tokenized at once, never stored as a number).
    let stolen = pan(902);
    let (status, added) =
        server.post("/lists/stolen_cards/items", &json!({"card_num": stolen, "note": "reported"}), None);
    assert_eq!((status, &added["added"]), (200, &json!(1)), "{added}");
    let (_, listed) = get_json(&server, "/lists/stolen_cards/items");
    assert_eq!(listed["items"][0]["value"].as_str().unwrap().len(), 32, "{listed}");
    assert!(!listed.to_string().contains(&stolen));
    let (_, blocked) = server.predict(&txn("r-2", &stolen, 12.0, "FR", ts));
    assert_eq!((&blocked["action"], &blocked["rules"]), (&json!("block"), &json!(["stolen-card"])), "{blocked}");
    // allow overrides everything, the block rule included.
    let mut trusted = txn("r-3", &stolen, 7000.0, "FR", ts);
    trusted["merchant"] = json!("M-TRUSTED");
    server.post("/lists/trusted_merchants/items", &json!([{"value": "M-TRUSTED"}]), None);
    let (_, allowed) = server.predict(&trusted);
    assert_eq!(allowed["action"], "allow", "{allowed}");
    assert_eq!(allowed["rules"], json!(["stolen-card", "trusted-merchant", "big-ticket"]), "{allowed}");
    // The stored row keeps the rules that matched.
    let row = aegis::store::Store::open(&server.db).unwrap().get("r-3").unwrap().unwrap();
    assert_eq!(row.rules, ["stolen-card", "trusted-merchant", "big-ticket"]);
    // Removing a list item takes effect at once.
    let token = listed["items"][0]["value"].as_str().unwrap().to_owned();
    assert_eq!(delete(&server, &format!("/lists/stolen_cards/items?value={token}"), None), 200);
    assert_eq!(delete(&server, &format!("/lists/stolen_cards/items?value={token}"), None), 404);
    let (_, after) = server.predict(&txn("r-4", &stolen, 12.0, "FR", ts));
    assert!(!after["rules"].as_array().unwrap().contains(&json!("stolen-card")), "{after}");
    assert_eq!(server.post("/lists/1bad/items", &json!({"value": "x"}), None).0, 422);
    // The run-time error is counted, logged once, and never fails the request.
    let (status, _) = server.predict(&txn("r-5", &pan(903), 1500.0, "FR", ts));
    assert_eq!(status, 200);
    assert_eq!(server.output().matches("a rule failed at run time").count(), 1, "{}", server.output());

    // A broken file is refused on reload, and the old rules keep deciding.
    std::fs::write(&rules, RULES.replace("amount > 5000.0", "amount >>> 5000.0")).unwrap();
    let (status, refused) = server.post("/admin/reload", &json!({}), None);
    assert_eq!(status, 422, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("rule 3 (`big-ticket`)"), "{message}");
    let (_, still) = server.predict(&txn("r-6", &pan(904), 6000.0, "FR", ts));
    assert!(still["rules"].as_array().unwrap().contains(&json!("big-ticket")), "{still}");
    // A good file is taken.
    std::fs::write(&rules, RULES.replace("amount > 5000.0", "amount > 100000.0")).unwrap();
    assert_eq!(server.post("/admin/reload", &json!({}), None).0, 200);
    let (_, now) = server.predict(&txn("r-7", &pan(905), 6000.0, "FR", ts));
    assert!(!now["rules"].as_array().unwrap().contains(&json!("big-ticket")), "{now}");
}

#[test]
fn a_broken_rules_file_stops_serve_from_starting_with_the_rule_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.toml"), RULES.replace("card in stolen_cards", "card in stolen")).unwrap();
    let models = bundles().a.to_str().unwrap().to_owned();
    let err =
        super::aegis_err(dir.path(), &["serve", "--models", &models, "--rules", "rules.toml", "--addr", "127.0.0.1:0"]);
    assert!(err.contains("rule 1 (`stolen-card`)") && err.contains("unknown name `stolen`"), "{err}");
}

#[test]
fn the_shadow_model_is_stored_compared_and_promoted() {
    let dir = tempfile::tempdir().unwrap();
    let root = super::server::models_root(dir.path(), &bundles().a);
    let shadow = bundles().b.to_str().unwrap().to_owned();
    let server = Server::start(dir.path(), &root, &["--shadow", &shadow], &[]);
    let flagged_by_shadow = (0..30u64)
        .filter(|i| {
            let ts = format!("2025-01-09T10:{:02}:00Z", i);
            let (_, body) = server.predict(&txn(&format!("s-{i}"), &pan(600 + i), 40.0 + 113.0 * *i as f64, "BR", &ts));
            let row = aegis::store::Store::open(&server.db).unwrap().get(&format!("s-{i}")).unwrap().unwrap();
            let shadow = row.shadow.expect("the shadow's opinion is stored");
            assert_ne!(shadow.model_version, body["model_version"].as_str().unwrap());
            // Never answered: the answer is the champion's.
            assert_eq!(body["score"].as_f64().unwrap() as f32, row.score);
            shadow.action.as_str() != "allow"
        })
        .count();
    assert!(flagged_by_shadow > 0, "bundle b flags ~40%");
    let (_, case) = get_json(&server, "/api/transactions/s-0");
    let b_version = bundles().b.file_name().unwrap().to_str().unwrap();
    assert_eq!(case["transaction"]["shadow"]["model_version"], b_version, "the case view shows the shadow: {case}");
    // Without verdicts there is no evidence: promotion is refused, saying how to force it.
    let (status, refused) = server.post("/admin/promote", &json!({}), None);
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(status == 409 && message.contains("no evidence") && message.contains("force=true"), "{refused}");
    // Labels, then the comparison on the stored results.
    for i in [3u64, 11, 19, 27] {
        server.post("/labels", &json!({"txn_id": format!("s-{i}"), "label": "fraud", "source": "chargeback"}), None);
    }
    let db = server.db.to_str().unwrap().to_owned();
    let out = super::aegis_ok(dir.path(), &["evaluate", "--db", &db]);
    assert!(out.contains("30 stored transactions") && out.contains("4 fraud"), "{out}");
    assert!(out.contains("25 flagged decisions (by either model) have no verdict yet"), "unreviewed flags: {out}");
    let auc_line = out.lines().find(|l| l.starts_with("ROC AUC")).unwrap();
    assert_eq!(auc_line.split_whitespace().filter(|w| w.parse::<f64>().is_ok()).count(), 2, "two columns: {out}");

    // Promotion (forced: four frauds are not evidence enough): the shadow answers from now on,
    // and `current` points at it.
    let (status, promoted) = server.post("/admin/promote?force=true", &json!({}), None);
    assert_eq!((status, promoted["model_version"].as_str()), (200, Some(b_version)), "{promoted}");
    let (_, after) = server.predict(&txn("s-after", &pan(600), 45.0, "BR", "2025-01-09T11:00:00Z"));
    assert_eq!(after["model_version"], b_version);
    assert_eq!(std::fs::canonicalize(root.join("current")).unwrap(), bundles().b);
    assert_eq!(server.post("/admin/promote", &json!({}), None).0, 409, "nothing left to promote");
}

#[test]
fn retraining_from_the_store_runs_the_loop_without_a_csv() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = bundles().data.to_str().unwrap().to_owned();
    // The demo stores 2,500 decisions; the file's labels come back as a chargeback file.
    super::aegis_ok(
        d,
        &["demo", "--data", &data, "--count", "2500", "--rate", "0", "--exit-when-done", "--addr", "127.0.0.1:0"],
    );
    let mut chargebacks = String::from("TRANSACTION,IS_FRAUD,REPORTED\n");
    let mut reader = csv::Reader::from_path(&bundles().data).unwrap();
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (id, label, ts) = (col("txn_id"), col("label"), col("timestamp"));
    for r in reader.records().map(Result::unwrap) {
        if &r[label] == "1" {
            let reported = chrono::DateTime::parse_from_rfc3339(&r[ts]).unwrap().timestamp() + 3 * 86_400;
            chargebacks += &format!("{},1,{reported}\n", &r[id]);
        }
    }
    chargebacks += "not-a-row,maybe,\n";
    std::fs::write(d.join("chargebacks.csv"), chargebacks).unwrap();
    let out = super::aegis(
        d,
        &["labels", "import", "chargebacks.csv", "--columns", "txn_id=TRANSACTION,label=IS_FRAUD,reported_at=REPORTED"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "an invalid row fails the import: {stdout}");
    assert!(stdout.contains("1 invalid") && stdout.contains("for unknown transactions"), "{stdout}");
    // The problems in line order (invalid rows are found on reading, unknown ones on storing),
    // and the error says what was stored.
    let lines: Vec<u64> =
        stdout.lines().filter_map(|l| l.trim().strip_prefix("line ")?.split(':').next()?.parse().ok()).collect();
    assert!(!lines.is_empty() && lines.windows(2).all(|w| w[0] < w[1]), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("were not stored") && stderr.contains("the other"), "{stderr}");
    let stored: i64 = rusqlite::Connection::open(d.join("results.db"))
        .unwrap()
        .query_row("SELECT COUNT(*) FROM results WHERE verdict = 'fraud'", [], |r| r.get(0))
        .unwrap();
    assert!(stored >= 20, "the window's frauds got their verdicts: {stored}");

    let out = super::aegis_ok(
        d,
        &["train", "--db", "results.db", "--out", "retrained", "--challenger", "--epochs", "3", "--trees", "50"],
    );
    assert!(out.contains("training on") && out.contains("a challenger"), "{out}");
    assert!(!d.join("retrained/current").exists(), "a challenger does not become current");
    let version = std::fs::read_dir(d.join("retrained")).unwrap().next().unwrap().unwrap().path();
    let manifest = std::fs::read_to_string(version.join("manifest.json")).unwrap();
    assert!(manifest.contains("results database"), "{manifest}");
}

#[test]
fn rules_test_backtests_a_rules_file_on_a_csv() {
    let dir = tempfile::tempdir().unwrap();
    let rules = "[[rule]]\nname = \"big\"\nwhen = \"amount > 500.0\"\naction = \"review\"\nreason = \"large\"\n\n\
                 [[rule]]\nname = \"burst\"\nwhen = \"card_txn_count_1h >= 3\"\naction = \"block\"\nreason = \"burst\"\n";
    std::fs::write(dir.path().join("rules.toml"), rules).unwrap();
    let (data, models) = (bundles().data.to_str().unwrap(), bundles().a.to_str().unwrap());
    let out =
        super::aegis_ok(dir.path(), &["rules", "test", "--rules", "rules.toml", "--data", data, "--models", models]);
    // `big` hits exactly the rows above 500.
    let mut reader = csv::Reader::from_path(&bundles().data).unwrap();
    let amount = reader.headers().unwrap().iter().position(|h| h == "amount").unwrap();
    let above = reader.records().map(Result::unwrap).filter(|r| r[amount].parse::<f64>().unwrap() > 500.0).count();
    let row = |name: &str| -> Vec<String> {
        let line = out.lines().find(|l| l.split_whitespace().next() == Some(name)).unwrap_or_else(|| panic!("{out}"));
        line.split_whitespace().map(str::to_owned).collect()
    };
    let big = row("big");
    assert_eq!((big[1].as_str(), big[2].parse::<usize>().unwrap()), ("review", above), "{out}");
    assert!(big[4].ends_with('%') && big[5].ends_with('%'), "precision and recall with labels: {out}");
    assert!(row("burst")[2].parse::<usize>().unwrap() > 0, "{out}");
    assert!(out.contains("model + rules: flagged"), "{out}");
}
