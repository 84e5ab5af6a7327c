use super::*;
use std::sync::atomic::Ordering;
use std::sync::mpsc;

fn result(id: &str, action: Action) -> StoredResult {
    StoredResult {
        txn_id: id.into(),
        timestamp: 1_735_689_600,
        amount: 812.4,
        country: "FR".into(),
        merchant: "M000042".into(),
        merchant_category: Some("jewelry".into()),
        card_masked: "453912******3374".into(),
        card_token: "00ff".repeat(8),
        score: 0.991,
        if_score: 0.71,
        ae_mse: 3.5,
        action,
        reasons: vec!["amount 6.2× this card's 30-day average".into(), "first transaction in FR for this card".into()],
        model_version: "v1".into(),
        received_at: 1_735_689_600_123,
        latency_us: 210,
    }
}

#[test]
fn round_trips_every_field_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.db");
    let mut store = Store::open(&path).unwrap();
    let r = result("t1", Action::Block);
    assert_eq!(store.insert_batch(std::slice::from_ref(&r)).unwrap(), [Outcome::Inserted]);
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.get("t1").unwrap(), Some(r));
    assert_eq!(store.get("nope").unwrap(), None);
    let version: i64 = store.conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn a_repeated_txn_id_keeps_the_first_decision() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("r.db")).unwrap();
    let first = result("t1", Action::Block);
    let again = StoredResult { score: 0.1, action: Action::Allow, ..result("t1", Action::Allow) };
    // Within one batch and across batches.
    let outcomes = store.insert_batch(&[first.clone(), again.clone()]).unwrap();
    assert_eq!(outcomes, [Outcome::Inserted, Outcome::Duplicate(Box::new(first.clone()))]);
    assert_eq!(store.insert_batch(&[again]).unwrap(), [Outcome::Duplicate(Box::new(first))]);
    assert_eq!(store.count().unwrap(), 1);
}

#[test]
fn refuses_a_database_from_a_newer_aegis() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    drop(Store::open(&path).unwrap());
    Connection::open(&path).unwrap().pragma_update(None, "user_version", 99).unwrap();
    let err = format!("{:#}", Store::open(&path).unwrap_err());
    assert!(err.contains("schema version 99"), "{err}");
}

#[test]
fn the_writer_acknowledges_only_committed_results() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let writer = Writer::spawn(Store::open(&path).unwrap(), 64, 16);
    let (done_tx, done_rx) = mpsc::channel();
    let n = 500;
    for i in 0..n {
        let done = done_tx.clone();
        let check_path = path.clone();
        let id = format!("t{i}");
        let ack: Ack = Box::new(move |outcome| {
            // At ack time a separate connection must already see the row: it is committed.
            let visible = Store::open(&check_path).unwrap().get(&id).unwrap().is_some();
            done.send((outcome, visible)).unwrap();
        });
        writer.submit(result(&format!("t{i}"), Action::Review), ack).unwrap();
    }
    for _ in 0..n {
        let (outcome, visible) = done_rx.recv().unwrap();
        assert_eq!(outcome, Ok(Outcome::Inserted));
        assert!(visible, "acknowledged before commit");
    }
    let stats = writer.stats();
    assert_eq!(stats.rows.load(Ordering::Relaxed), n);
    assert!(stats.batches.load(Ordering::Relaxed) <= n);
    writer.shutdown();
    assert_eq!(Store::open(&path).unwrap().count().unwrap(), n);
}

#[test]
fn shutdown_commits_what_is_queued() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let writer = Writer::spawn(Store::open(&path).unwrap(), 1000, 100);
    for i in 0..300 {
        writer.submit(result(&format!("t{i}"), Action::Allow), Box::new(|_| {})).unwrap();
    }
    writer.shutdown();
    assert_eq!(Store::open(&path).unwrap().count().unwrap(), 300);
}
