//! Every user error ends with a one-line message naming what and where, and a non-zero exit.

use super::{aegis_err, aegis_ok};
use std::fs;

#[test]
fn help_explains_every_subcommand_with_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let top = aegis_ok(dir.path(), &["--help"]);
    for cmd in ["generate", "train", "evaluate"] {
        assert!(top.contains(cmd), "{top}");
    }
    let gen_help = aegis_ok(dir.path(), &["generate", "--help"]);
    assert!(gen_help.contains("[default: 60000]") && gen_help.contains("data/transactions.csv]"), "{gen_help}");
    let train = aegis_ok(dir.path(), &["train", "--help"]);
    assert!(train.contains("--columns") && train.contains("[default: 0.01]"), "{train}");
    assert!(train.contains("--label-delay") && train.contains("--block-precision"), "{train}");
    // serve and consume take the same store and alert flags (one set of clap groups).
    let commands: &[&str] = if cfg!(feature = "kafka") { &["serve", "consume"] } else { &["serve"] };
    for cmd in commands {
        let help = aegis_ok(dir.path(), &[cmd, "--help"]);
        for flag in ["--db", "--card-key-file", "--alert-webhook", "--alert-attempts", "--alert-backoff-ms"] {
            assert!(help.contains(flag), "{cmd} --help lacks {flag}");
        }
    }
}

#[test]
fn bad_flags_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let err = aegis_err(d, &["generate", "--rows", "lots"]);
    assert!(err.contains("--rows"), "{err}");
    let err = aegis_err(d, &["generate", "--merchants", "3", "--out", "x.csv"]);
    assert!(err.contains("--merchants must be at least 25"), "{err}");
    let err = aegis_err(d, &["train", "--db", "typo.db"]);
    assert!(err.contains("typo.db does not exist"), "{err}");
    assert!(!d.join("typo.db").exists(), "a mistyped --db is not created");
    let err = aegis_err(d, &["train", "--data", "nope.csv"]);
    assert!(err.starts_with("error: cannot open nope.csv"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    let err = aegis_err(d, &["evaluate", "--data", "nope.csv", "--models", "no-models"]);
    assert!(err.contains("no-models") && err.contains("aegis train"), "{err}");
}

#[test]
fn malformed_csv_names_line_and_column_or_is_skipped_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    aegis_ok(d, &["generate", "--rows", "500", "--out", "tx.csv"]);
    let mut lines: Vec<String> = fs::read_to_string(d.join("tx.csv")).unwrap().lines().map(str::to_owned).collect();
    let fields: Vec<&str> = lines[10].split(',').collect();
    lines[10] = format!("{},{},{},not-a-number,{}", fields[0], fields[1], fields[2], fields[4..].join(","));
    fs::write(d.join("bad.csv"), lines.join("\n") + "\n").unwrap();
    let err = aegis_err(d, &["train", "--data", "bad.csv", "--epochs", "1"]);
    assert!(err.contains("line 11, column `amount`: `not-a-number`"), "{err}");
    let out = super::aegis(d, &["train", "--data", "bad.csv", "--epochs", "1", "--skip-bad-rows"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipped 1 bad rows"));

    fs::write(d.join("empty.csv"), "").unwrap();
    let err = aegis_err(d, &["train", "--data", "empty.csv"]);
    assert!(err.contains("empty.csv: the file is empty"), "{err}");
    let err = aegis_err(d, &["train", "--data", "tx.csv", "--numeric", "--target", "Nope"]);
    assert!(err.contains("no column `Nope`"), "{err}");
}

#[test]
fn bundles_of_another_format_or_schema_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    aegis_ok(d, &["generate", "--rows", "1000", "--out", "tx.csv"]);
    aegis_ok(d, &["train", "--data", "tx.csv", "--epochs", "1"]);
    let manifest_path = fs::canonicalize(d.join("models/current")).unwrap().join("manifest.json");
    let original = fs::read_to_string(&manifest_path).unwrap();

    fs::write(&manifest_path, original.replace("\"format_version\":2", "\"format_version\":99")).unwrap();
    let err = aegis_err(d, &["evaluate", "--data", "tx.csv"]);
    assert!(err.contains("bundle format 99 is not supported"), "{err}");

    fs::write(&manifest_path, original.replace("\"log_amount\"", "\"amount\"")).unwrap();
    let err = aegis_err(d, &["evaluate", "--data", "tx.csv"]);
    assert!(err.contains("feature schema"), "{err}");

    fs::write(&manifest_path, "{ not json").unwrap();
    let err = aegis_err(d, &["evaluate", "--data", "tx.csv"]);
    assert!(err.contains("manifest.json: not a valid bundle file"), "{err}");
}
