//! The PostgreSQL store end to end: `aegis serve --db postgres://…` scores and stores, answers a
//! repeat from the store, takes labels and list entries, and a second server on the same
//! database (another machine, as far as it knows) sees all of it. The database is a fresh one on
//! the server `scripts/test.sh` starts.

use super::server::{Server, bundles, pan, txn};
use super::{aegis_err, postgres_db, stored_rows};
use serde_json::{Value, json};

fn get_json(server: &Server, path: &str) -> Value {
    let (status, body) = server.get(path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn two_servers_on_one_postgres_database_share_decisions_labels_and_lists() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let db = postgres_db();
    let key = dir_a.path().join("card.key");
    let args = ["--db", db.as_str(), "--card-key-file", key.to_str().unwrap()];
    let a = Server::start(dir_a.path(), &bundles().b, &args, &[]);
    let mut flagged = Vec::new();
    let mut first = Value::Null;
    for i in 0..20u64 {
        let body = txn(&format!("pg-{i}"), &pan(700 + i), 50.0 + 97.0 * i as f64, "BR", "2025-01-09T10:00:00Z");
        let (status, answer) = a.predict(&body);
        assert_eq!((status, &answer["duplicate"]), (200, &json!(false)), "{answer}");
        if answer["action"] != "allow" {
            flagged.push(answer["txn_id"].as_str().unwrap().to_owned());
        }
        if i == 0 {
            first = answer;
        }
    }
    assert!(flagged.len() >= 2, "bundle b flags some: {flagged:?}");
    assert_eq!(stored_rows(&db), 20, "every decision is in PostgreSQL");
    let (_, label) = a.post("/labels", &json!({"txn_id": flagged[0], "label": "fraud", "source": "analyst"}), None);
    assert_eq!(label["verdict_changed"], true, "{label}");
    let stolen = pan(999);
    assert_eq!(a.post("/lists/stolen_cards/items", &json!({"card_num": stolen}), None).0, 200);

    // A second server on the same database: the same card key, another working directory.
    let b = Server::start(dir_b.path(), &bundles().b, &args, &[]);
    let stats = get_json(&b, "/api/stats");
    assert_eq!((&stats["processed"], &stats["confirmed_fraud"]), (&json!(20), &json!(1)), "{stats}");
    let queue = get_json(&b, "/api/review?limit=500");
    let mut queued: Vec<&str> =
        queue["transactions"].as_array().unwrap().iter().map(|t| t["txn_id"].as_str().unwrap()).collect();
    queued.sort_unstable();
    let mut waiting: Vec<&str> = flagged[1..].iter().map(String::as_str).collect();
    waiting.sort_unstable();
    assert_eq!(queued, waiting, "the labelled one left the queue");
    let case = get_json(&b, &format!("/api/transactions/{}", flagged[0]));
    assert_eq!(case["labels"][0]["source"], "analyst", "{case}");
    let listed = get_json(&b, "/lists/stolen_cards/items");
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1), "{listed}");
    // A repeat sent to the other server gets the first decision, from the store.
    let repeat = txn("pg-0", &pan(700), 50.0, "BR", "2025-01-09T10:00:00Z");
    let (_, again) = b.predict(&repeat);
    assert_eq!(again["duplicate"], true);
    assert_eq!((&again["score"], &again["action"]), (&first["score"], &first["action"]));
    assert_eq!(stored_rows(&db), 20);
}

#[test]
fn a_postgres_store_needs_the_shared_card_key_and_a_reachable_server() {
    let dir = tempfile::tempdir().unwrap();
    let models = bundles().a.to_str().unwrap().to_owned();
    let db = postgres_db();
    let err = aegis_err(dir.path(), &["serve", "--models", &models, "--db", &db, "--addr", "127.0.0.1:0"]);
    assert!(err.contains("AEGIS_CARD_KEY") && err.contains("--card-key-file"), "{err}");
    let key = dir.path().join("k").to_str().unwrap().to_owned();
    // Nothing listens on port 1: refused at once.
    let unreachable = "postgres://aegis:hunter2@127.0.0.1:1/aegis";
    let args = ["serve", "--models", &models, "--db", unreachable, "--card-key-file", &key, "--addr", "127.0.0.1:0"];
    let err = aegis_err(dir.path(), &args);
    assert!(err.contains("cannot connect to PostgreSQL at postgres://aegis:***@127.0.0.1:1/aegis"), "{err}");
    assert!(!err.contains("hunter2"), "the password is never shown: {err}");
    let err = aegis_err(dir.path(), &["labels", "import", "x.csv", "--db", "postgres://h:notaport/x"]);
    assert!(err.contains("not a valid PostgreSQL URL"), "{err}");
}

#[test]
fn the_demo_labels_import_train_and_evaluate_work_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = postgres_db();
    // Every command finds the database in AEGIS_DB (train/evaluate are given --db, as their
    // --db is the alternative to --data), with the shared card key a PostgreSQL store needs.
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_aegis"))
            .args(args)
            .current_dir(d)
            .env("AEGIS_DB", &db)
            .env("AEGIS_CARD_KEY", "00112233445566778899aabbccddeeff")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "aegis {args:?}:\n{text}");
        text
    };
    let data = bundles().data.to_str().unwrap().to_owned();
    let out =
        run(&["demo", "--data", &data, "--count", "1500", "--rate", "0", "--exit-when-done", "--addr", "127.0.0.1:0"]);
    assert!(out.contains("labelled frauds") && out.contains("a challenger"), "{out}");
    assert!(!out.contains("aegis:"), "no password or error in the output: {out}");
    assert_eq!(stored_rows(&db), 1500);

    let mut chargebacks = String::from("txn_id,label\n");
    let mut reader = csv::Reader::from_path(&bundles().data).unwrap();
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    for r in reader.records().map(Result::unwrap).filter(|r| &r[col("label")] == "1") {
        chargebacks += &format!("{},fraud\n", &r[col("txn_id")]);
    }
    std::fs::write(d.join("chargebacks.csv"), chargebacks).unwrap();
    // Frauds outside the demo's window are unknown here: reported, not fatal for the others.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aegis"))
        .args(["labels", "import", "chargebacks.csv"])
        .current_dir(d)
        .env("AEGIS_DB", &db)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("for unknown transactions"), "{text}");
    let mut client = ::postgres::Client::connect(&db, ::postgres::NoTls).unwrap();
    let frauds: i64 = client.query_one("SELECT COUNT(*) FROM results WHERE verdict = 'fraud'", &[]).unwrap().get(0);
    assert!(frauds >= 5, "the window's frauds got their verdicts: {frauds}");

    let out = run(&["train", "--db", &db, "--out", "retrained", "--challenger", "--epochs", "2", "--trees", "50"]);
    assert!(out.contains("a challenger"), "{out}");
    let out = run(&["evaluate", "--db", &db]);
    assert!(out.contains("1500 stored transactions"), "{out}");
}
