//! generate → train → evaluate through the real binary.

use super::{aegis_err, aegis_ok};
use serde_json::Value;
use std::fs;

fn json(path: &std::path::Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).expect("valid JSON")
}

#[test]
fn generate_train_evaluate_detects_fraud_well_above_chance() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = aegis_ok(d, &["generate", "--rows", "40000", "--days", "50", "--seed", "7", "--out", "data/tx.csv"]);
    assert!(out.contains("wrote 40000 transactions"), "{out}");

    // With the generator's card-not-present fields declared (examples/schema.toml), as the
    // README trains: without them the online scenarios (9-11) are near chance by design.
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/schema.toml");
    let out = aegis_ok(d, &["train", "--data", "data/tx.csv", "--out", "models", "--seed", "7", "--schema", schema]);
    assert!(out.contains("combined"), "the evaluation table is printed: {out}");
    assert!(out.contains("supervised model:"), "labelled data trains the supervised model: {out}");
    assert!(out.contains("top features by gain: "), "what each feature brings: {out}");

    // The bundle: manifest, weights, reports, and `current` pointing at it.
    let bundle = fs::canonicalize(d.join("models/current")).unwrap();
    for file in ["manifest.json", "models.json", "encoders.json", "report.json", "report.html"] {
        assert!(bundle.join(file).is_file(), "missing {file}");
    }
    let manifest = json(&bundle.join("manifest.json"));
    assert_eq!(manifest["format_version"], 2);
    assert_eq!(manifest["schema"]["version"], 3);
    assert_eq!(manifest["schema"]["label_delay_secs"], 7 * 86_400);
    assert!(manifest["supervised"]["trees"].as_u64().unwrap() > 0);
    assert_eq!(manifest["schema"]["kind"], "transaction");
    // The built-in features, then 45 of the six declared fields.
    assert_eq!(manifest["schema"]["names"].as_array().unwrap().len(), aegis::features::N_FEATURES + 45);
    assert_eq!(manifest["schema"]["fields"].as_array().unwrap().len(), 6);
    assert_eq!(manifest["data"]["training_rows"], 32000);
    assert_eq!(manifest["data"]["holdout_rows"], 8000);
    let (review, block) =
        (manifest["thresholds"]["review"].as_f64().unwrap(), manifest["thresholds"]["block"].as_f64().unwrap());
    assert!(0.0 < review && review < block && block <= 1.0, "thresholds {review} {block}");

    let report = json(&bundle.join("report.json"));
    let combined = report["models"].as_array().unwrap().iter().find(|m| m["model"] == "combined").unwrap();
    let auc = combined["roc_auc"].as_f64().unwrap();
    assert!(auc >= 0.85, "combined ROC AUC on the holdout is {auc}");
    // Skimmed terminals (scenario 5): every transaction looks normal for its card, so only the
    // merchant's confirmed-fraud history can find them. Card features alone score them at chance.
    let scenario = |id: &str| {
        let s = report["scenarios"].as_array().unwrap().iter().find(|s| s["scenario"] == id);
        let s = s.unwrap_or_else(|| panic!("scenario {id} in the report: {}", report["scenarios"]));
        let combined = s["models"].as_array().unwrap().iter().find(|m| m["model"] == "combined").unwrap();
        combined["roc_auc"].as_f64().unwrap()
    };
    let skimmed = scenario("5");
    assert!(skimmed >= 0.8, "skimmed-terminal ROC AUC {skimmed}");
    let takeover = scenario("6");
    assert!(takeover >= 0.75, "card-takeover ROC AUC {takeover}");
    let html = fs::read_to_string(bundle.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("ROC curve"));

    // A backtest of the last week: earlier rows warm the card state up.
    let out = aegis_ok(
        d,
        &[
            "evaluate",
            "--data",
            "data/tx.csv",
            "--models",
            "models",
            "--from",
            "2025-02-12",
            "--out",
            "eval",
            "--scores",
            "eval/scores.csv",
        ],
    );
    assert!(out.contains("combined"), "{out}");
    let backtest = json(&d.join("eval/report.json"));
    let rows = backtest["rows"].as_u64().unwrap();
    // A week is a seventh of 50 days' rows or more: cards first used during the period shop
    // in its later weeks only.
    assert!((5000..10000).contains(&rows), "a week of a 50-day file: {rows} rows");
    assert!(out.contains("Per fraud scenario"), "{out}");
    let scored = fs::read_to_string(d.join("eval/scores.csv")).unwrap();
    assert_eq!(scored.lines().count() as u64, rows + 1);
}

/// The combined model's ROC AUC on one fraud scenario of a report.
fn scenario_auc(report: &Value, id: &str) -> f64 {
    let s = report["scenarios"].as_array().unwrap().iter().find(|s| s["scenario"] == id);
    let s = s.unwrap_or_else(|| panic!("scenario {id} in the report: {}", report["scenarios"]));
    let combined = s["models"].as_array().unwrap().iter().find(|m| m["model"] == "combined").unwrap();
    combined["roc_auc"].as_f64().unwrap()
}

#[test]
fn the_issuer_range_features_catch_bin_attacks_that_card_features_miss() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    aegis_ok(
        d,
        &["generate", "--rows", "60000", "--days", "30", "--seed", "21", "--fraud-rate", "0.08", "--out", "tx.csv"],
    );
    // The same file with customer ids instead of card numbers: no issuer range to read.
    let csv = fs::read_to_string(d.join("tx.csv")).unwrap();
    let ids: String = csv
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let mut cols: Vec<String> = line.split(',').map(str::to_owned).collect();
            if i > 0 {
                cols[2] = format!("c{}", cols[2]);
            }
            cols.join(",") + "\n"
        })
        .collect();
    fs::write(d.join("ids.csv"), ids).unwrap();
    let auc = |data: &str, out: &str| {
        aegis_ok(d, &["train", "--data", data, "--out", out, "--seed", "7"]);
        let report = json(&fs::canonicalize(d.join(out).join("current")).unwrap().join("report.json"));
        scenario_auc(&report, "7")
    };
    let (with_bins, without) = (auc("tx.csv", "cards"), auc("ids.csv", "ids"));
    assert!(with_bins >= 0.95, "BIN attack ROC AUC with card numbers: {with_bins}");
    assert!(with_bins > without + 0.03, "the issuer range's features: {with_bins} vs {without} without them");
}

#[test]
fn declared_fields_reveal_card_not_present_fraud_that_core_features_miss() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    aegis_ok(
        d,
        &["generate", "--rows", "60000", "--days", "30", "--seed", "21", "--fraud-rate", "0.08", "--out", "tx.csv"],
    );
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/schema.toml");
    // Trained on the first 20 days, judged on the last 10 (evaluate reads the bundle's schema).
    let report = |out: &str, extra: &[&str]| {
        let mut args = vec!["train", "--data", "tx.csv", "--out", out, "--seed", "7", "--to", "2025-01-21"];
        args.extend_from_slice(extra);
        aegis_ok(d, &args);
        let models = format!("{out}/current");
        let eval = format!("{out}-eval");
        aegis_ok(d, &["evaluate", "--data", "tx.csv", "--models", &models, "--from", "2025-01-21", "--out", &eval]);
        json(&d.join(eval).join("report.json"))
    };
    let (with, without) = (report("fields", &["--schema", schema]), report("core", &[]));
    for (id, name) in [("9", "card testing by a bot"), ("10", "account takeover"), ("11", "fraud ring")] {
        let (a, b) = (scenario_auc(&with, id), scenario_auc(&without, id));
        assert!(a >= 0.9, "{name}: ROC AUC {a} with the schema's fields");
        assert!(a > b + 0.05, "{name}: {a} with the fields vs {b} without them");
    }
    // The bundle carries the schema; one trained without it has none (its manifest as before).
    let manifest = |out: &str| json(&fs::canonicalize(d.join(out).join("current")).unwrap().join("manifest.json"));
    let fields = manifest("fields")["schema"]["fields"].as_array().unwrap().len();
    assert_eq!(fields, 6);
    assert!(manifest("core")["schema"].get("fields").is_none());
}

#[test]
fn generate_is_deterministic_for_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for name in ["a.csv", "b.csv"] {
        aegis_ok(d, &["generate", "--rows", "3000", "--seed", "11", "--out", name]);
    }
    aegis_ok(d, &["generate", "--rows", "3000", "--seed", "12", "--out", "c.csv"]);
    let read = |n: &str| fs::read(d.join(n)).unwrap();
    assert_eq!(read("a.csv"), read("b.csv"));
    assert_ne!(read("a.csv"), read("c.csv"));
}

#[test]
fn trains_on_a_mapped_transaction_csv_without_optional_columns() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    aegis_ok(d, &["generate", "--rows", "3000", "--out", "tx.csv"]);
    // Rewrite as another team's schema: other names, no country, no category, no ids.
    let text = fs::read_to_string(d.join("tx.csv")).unwrap();
    let mut mapped = String::from("TX_TIME,CUSTOMER,TX_AMOUNT,TERMINAL,TX_FRAUD\n");
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        mapped.push_str(&format!(
            "{},{},{},{},{}\n",
            f[1].replace('T', " ").trim_end_matches('Z'),
            f[2],
            f[3],
            f[5],
            f[7]
        ));
    }
    fs::write(d.join("mapped.csv"), mapped).unwrap();
    let columns = "card=CUSTOMER,timestamp=TX_TIME,amount=TX_AMOUNT,merchant=TERMINAL,label=TX_FRAUD";
    let out = aegis_ok(d, &["train", "--data", "mapped.csv", "--columns", columns, "--epochs", "3"]);
    assert!(out.contains("combined"), "{out}");
    aegis_ok(d, &["evaluate", "--data", "mapped.csv", "--columns", columns]);
    // Without the mapping the same file is refused with a pointer to --columns.
    let err = aegis_err(d, &["evaluate", "--data", "mapped.csv"]);
    assert!(err.contains("--columns"), "{err}");
}

#[test]
fn trains_and_evaluates_a_numeric_csv() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A preprocessed data set: V1..V4, an id column to ignore, and a target; outliers are frauds.
    let mut csv = String::from("id,V1,V2,V3,V4,Class\n");
    for i in 0..2000u32 {
        let fraud = i % 50 == 49;
        let x = |k: u32| {
            let base = ((i * 7919 + k * 104_729) % 1000) as f32 / 1000.0 - 0.5;
            if fraud { base + 4.0 } else { base }
        };
        csv.push_str(&format!("t{i},{},{},{},{},{}\n", x(1), x(2), x(3), x(4), u8::from(fraud)));
    }
    fs::write(d.join("num.csv"), csv).unwrap();
    let out = aegis_ok(d, &["train", "--data", "num.csv", "--numeric", "--target", "Class", "--epochs", "5"]);
    assert!(out.contains("400 for evaluation"), "{out}");
    // Preprocessed files with a target get the supervised model too.
    assert!(out.contains("supervised model:"), "{out}");
    let manifest = json(&fs::canonicalize(d.join("models/current")).unwrap().join("manifest.json"));
    assert_eq!(manifest["schema"]["kind"], "numeric");
    assert_eq!(manifest["schema"]["names"], serde_json::json!(["V1", "V2", "V3", "V4"]));
    let report = json(&fs::canonicalize(d.join("models/current")).unwrap().join("report.json"));
    assert!(report["models"][0]["roc_auc"].as_f64().unwrap() > 0.95, "planted outliers: {report}");
    let supervised = report["models"].as_array().unwrap().iter().find(|m| m["model"] == "supervised").unwrap();
    assert!(supervised["roc_auc"].as_f64().unwrap() > 0.95, "{report}");
    // Evaluation reads the same columns and remembers the target.
    let out = aegis_ok(d, &["evaluate", "--data", "num.csv"]);
    assert!(out.contains("Evaluated 2000 transactions, 40 fraud"), "{out}");
}

#[test]
fn demo_generates_trains_and_streams_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = ["demo", "--rate", "0", "--count", "300", "--exit-when-done", "--addr", "127.0.0.1:0"];
    let out = aegis_ok(d, &args);
    assert!(out.contains("generating it") && out.contains("training one"), "{out}");
    assert!(out.contains("through POST http://127.0.0.1:"), "{out}");
    let summary = |out: &str| {
        let line = out.lines().find(|l| l.starts_with("300 transactions processed")).unwrap_or_else(|| panic!("{out}"));
        line.split(" errors").next().unwrap().to_owned()
    };
    let first = summary(&out);
    assert!(first.ends_with(", 0"), "no request failed: {first}");
    // The streamed window holds several kinds of fraud, and the demo says how many it caught.
    let kinds =
        out.lines().find_map(|l| l.strip_prefix("They include labelled frauds: ")).unwrap_or_else(|| panic!("{out}"));
    assert!(kinds.split(", ").filter(|k| !k.contains("label noise")).count() >= 3, "{kinds}");
    let caught = out.lines().find(|l| l.starts_with("300 transactions, caught ")).unwrap_or_else(|| panic!("{out}"));
    let numbers: Vec<usize> = caught.split(|c: char| !c.is_ascii_digit()).filter_map(|w| w.parse().ok()).collect();
    let (hits, frauds, false_alarms) = (numbers[1], numbers[2], numbers[3]);
    assert!(frauds > 0 && 2 * hits >= frauds && false_alarms < hits, "the demo should catch most frauds: {caught}");
    // The frauds it let through come back as chargebacks; the flagged ones wait for an analyst.
    let posted = out.lines().find_map(|l| l.strip_prefix("Posted ")).unwrap_or_else(|| panic!("{out}"));
    assert!(posted.starts_with(&format!("{} chargebacks", frauds - hits)), "{posted}");
    let db = rusqlite::Connection::open(d.join("results.db")).unwrap();
    let count = |sql: &str| db.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap() as usize;
    assert_eq!(count("SELECT COUNT(*) FROM labels WHERE source = 'chargeback'"), frauds - hits);
    assert_eq!(count("SELECT COUNT(*) FROM results WHERE action != 'allow' AND verdict IS NULL"), hits + false_alarms);
    // The loop closes: a challenger trained from the store, beside the current bundle.
    assert!(out.contains("a challenger: try it with `aegis serve --shadow"), "{out}");
    // Its chargebacks are dated inside the streamed window, so the retraining sees them.
    assert!(!out.contains("with 0 known frauds"), "the demo's chargebacks count: {out}");
    assert_eq!(
        fs::read_dir(d.join("models"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().join("manifest.json").is_file())
            .count(),
        3,
        "current, its bundle and the challenger"
    );
    assert!(d.join("data/transactions.csv").is_file() && d.join("models/current/manifest.json").is_file());
    assert_eq!(super::stored_rows(d.join("results.db")), 300, "every decision is stored");
    // A second run reuses the data and the bundle; the store answers with the same decisions.
    let again = aegis_ok(d, &args);
    assert!(!again.contains("generating it") && !again.contains("training one"), "{again}");
    assert_eq!(summary(&again), first, "same data, same bundle, same decisions");
    assert!(again.contains("300 were already stored"), "{again}");
    // Flagged lines show masked cards, never a full card number.
    for line in out.lines().filter(|l| l.starts_with("  review") || l.starts_with("  block")) {
        assert!(line.contains("******"), "{line}");
    }
}

#[test]
fn unlabelled_data_trains_without_a_report_and_cannot_be_evaluated() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    aegis_ok(d, &["generate", "--rows", "2000", "--out", "tx.csv"]);
    // Drop the label and scenario columns (the 8th and 9th).
    let text = fs::read_to_string(d.join("tx.csv")).unwrap();
    let unlabelled: String = text
        .lines()
        .map(|l| {
            let cols: Vec<&str> = l.split(',').collect();
            [&cols[..7], &cols[9..]].concat().join(",") + "\n"
        })
        .collect();
    fs::write(d.join("unlabelled.csv"), unlabelled).unwrap();
    let out = aegis_ok(d, &["train", "--data", "unlabelled.csv", "--epochs", "2"]);
    assert!(out.contains("the data has no labels"), "{out}");
    let bundle = fs::canonicalize(d.join("models/current")).unwrap();
    assert!(bundle.join("models.json").is_file() && !bundle.join("report.json").exists());
    assert_eq!(json(&bundle.join("manifest.json"))["data"]["holdout_rows"], 0);
    let err = aegis_err(d, &["evaluate", "--data", "unlabelled.csv"]);
    assert!(err.contains("no `label` column"), "{err}");
}
