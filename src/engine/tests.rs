use super::*;
use crate::domain::Transaction;
use crate::ingest::LabelledTransaction;
use crate::scoring::testing::trained;
use std::path::Path;

fn engine(dir: &Path, bundle: &Bundle) -> Engine {
    engine_for_tests(dir, bundle)
}

fn valid(txn: &Transaction) -> ValidTransaction {
    ValidTransaction { txn: txn.clone(), card_masked: "411111******1111".into() }
}

/// Two transactions of one card, the first earlier.
fn same_card(rows: &[LabelledTransaction]) -> (Transaction, Transaction) {
    let first = &rows[0].txn;
    let later = rows[1..].iter().find(|r| r.txn.card == first.card).expect("a card with two transactions");
    (first.clone(), later.txn.clone())
}

#[tokio::test]
async fn the_answer_comes_after_the_commit_and_a_repeat_gets_the_stored_decision() {
    let (bundle, rows) = trained();
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), &bundle);
    let t = &rows[0].txn;
    let pending = engine.submit(valid(t), Arrival::now()).unwrap();
    // While the first is in flight the id is claimed: a repeat is refused or, if the commit
    // already happened, answered from the store — never scored again.
    match engine.submit(valid(t), Arrival::now()) {
        Err(EngineError::InProgress(id)) => assert_eq!(id, t.txn_id),
        Ok(Pending::Ready(s)) => assert!(s.duplicate),
        other => panic!("a repeat in flight was scored again: {other:?}"),
    }
    let first = pending.wait(engine.metrics()).await.unwrap();
    assert!(!first.duplicate);
    // Persisted before the answer: another connection already sees it.
    let mut store = crate::store::Store::open(dir.path().join("results.db")).unwrap();
    let stored = store.get(&t.txn_id).unwrap().expect("stored before the answer");
    assert_eq!((stored.score, stored.action), (first.txn.score, first.txn.action));
    assert_eq!(stored.fraud_probability, first.txn.fraud_probability);
    // The claim went with the commit: a repeat now gets the stored decision, once stored.
    let again = engine.process(valid(t), Arrival::now()).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(
        (again.txn.score, again.txn.action, again.txn.reasons.clone()),
        (first.txn.score, first.txn.action, first.txn.reasons)
    );
    assert_eq!(store.count().unwrap(), 1);
    engine.shutdown();
}

#[tokio::test]
async fn a_batch_scores_as_one_at_a_time_would_and_claims_each_id_once() {
    let (bundle, rows) = trained();
    // More than a chunk, so the batch is scored under two holds of the lock.
    let txns: Vec<&Transaction> = rows.iter().take(SUBMIT_CHUNK + 88).map(|r| &r.txn).collect();
    assert_eq!(txns.len(), SUBMIT_CHUNK + 88);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let scores = |t: &ScoredTransaction| (t.txn_id.clone(), t.score, t.if_score, t.ae_mse, t.action);
    let one_at_a_time = engine(a.path(), &bundle);
    let mut want = Vec::new();
    for t in &txns {
        want.push(scores(&one_at_a_time.process(valid(t), Arrival::now()).await.unwrap().txn));
    }
    // The first is stored already; the batch repeats it, and repeats its sixth at the end
    // of the first chunk (in flight: refused) and at the end (in the second chunk: in flight
    // or committed by then, so refused or answered as a repeat — never scored twice).
    let batched = engine(b.path(), &bundle);
    batched.process(valid(txns[0]), Arrival::now()).await.unwrap();
    let mut batch: Vec<_> = txns.iter().chain([&txns[5]]).map(|t| (valid(t), Arrival::now())).collect();
    batch.insert(SUBMIT_CHUNK - 1, (valid(txns[5]), Arrival::now()));
    let mut outcomes = batched.submit_many(batch);
    match outcomes.pop() {
        Some(Err(EngineError::InProgress(id))) => assert_eq!(id, txns[5].txn_id),
        Some(Ok(p)) => assert!(p.wait(batched.metrics()).await.unwrap().duplicate, "answered as a repeat"),
        other => panic!("the repeat in the second chunk: {other:?}"),
    }
    assert!(
        matches!(outcomes.remove(SUBMIT_CHUNK - 1), Err(EngineError::InProgress(id)) if id == txns[5].txn_id),
        "a txn_id twice in one chunk is scored once"
    );
    let mut got = Vec::new();
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let scored = outcome.unwrap().wait(batched.metrics()).await.unwrap();
        assert_eq!(scored.duplicate, i == 0, "only the stored one is a repeat");
        got.push(scores(&scored.txn));
    }
    assert_eq!(got, want);
    for e in [one_at_a_time, batched] {
        e.shutdown();
    }
}

#[tokio::test]
async fn a_repeat_after_a_restart_or_stored_by_another_process_gets_the_stored_decision() {
    let (bundle, rows) = trained();
    let (t0, t1) = same_card(&rows);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Restarted between a transaction and its repeat: the repeat is answered from the store,
    // and the card's next transaction scores as if it had been sent once.
    let first = engine(a.path(), &bundle);
    let stored = first.process(valid(&t0), Arrival::now()).await.unwrap().txn;
    first.shutdown();
    let restarted = engine(a.path(), &bundle);
    let again = restarted.process(valid(&t0), Arrival::now()).await.unwrap();
    assert!(again.duplicate);
    assert_eq!((again.txn.score, again.txn.received_at), (stored.score, stored.received_at));
    let got = restarted.process(valid(&t1), Arrival::now()).await.unwrap().txn.score;
    let once = engine(b.path(), &bundle);
    once.process(valid(&t0), Arrival::now()).await.unwrap();
    assert_eq!(got, once.process(valid(&t1), Arrival::now()).await.unwrap().txn.score);
    // Another process on the same store stored it after this one started.
    let other = engine(a.path(), &bundle);
    let t2 = Transaction { txn_id: "stored-elsewhere".into(), ..t1.clone() };
    let elsewhere = restarted.process(valid(&t2), Arrival::now()).await.unwrap().txn;
    let here = other.process(valid(&t2), Arrival::now()).await.unwrap();
    assert!(here.duplicate, "the store's first decision, not a second one");
    assert_eq!((here.txn.score, here.txn.received_at), (elsewhere.score, elsewhere.received_at));
    for e in [restarted, once, other] {
        e.shutdown();
    }
}

#[tokio::test]
async fn a_new_transaction_skips_the_store_look_up_and_a_repeat_does_not() {
    let (bundle, rows) = trained();
    let dir = tempfile::tempdir().unwrap();
    let lookups = |e: &Engine| e.store_lookups.load(Ordering::Relaxed);
    let first = engine(dir.path(), &bundle);
    for r in &rows[..50] {
        assert!(!first.process(valid(&r.txn), Arrival::now()).await.unwrap().duplicate);
    }
    assert_eq!(lookups(&first), 0, "50 new transactions on an empty store");
    let again = first.process(valid(&rows[0].txn), Arrival::now()).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(lookups(&first), 1, "a repeat of an id this process handled is looked up");
    first.shutdown();

    // Restarted: what is stored is behind the horizon, so a repeat is looked up and answered
    // from the store; a transaction newer than everything stored is not looked up.
    let restarted = engine(dir.path(), &bundle);
    assert!(restarted.process(valid(&rows[1].txn), Arrival::now()).await.unwrap().duplicate);
    assert_eq!(lookups(&restarted), 1);
    let newest = rows[..50].iter().map(|r| r.txn.timestamp).max().unwrap();
    let newer =
        |id: &str, secs: i64| Transaction { txn_id: id.into(), timestamp: newest + secs, ..rows[2].txn.clone() };
    assert!(!restarted.process(valid(&newer("newer-1", 60)), Arrival::now()).await.unwrap().duplicate);
    assert_eq!(lookups(&restarted), 1);

    // Stored by another process after this one opened the store: not looked up, scored here,
    // and the store answers its first decision all the same.
    let other = engine(dir.path(), &bundle);
    let elsewhere = restarted.process(valid(&newer("newer-2", 120)), Arrival::now()).await.unwrap().txn;
    let here = other.process(valid(&newer("newer-2", 120)), Arrival::now()).await.unwrap();
    assert_eq!(lookups(&other), 0);
    assert!(here.duplicate, "the store's first decision, not a second one");
    assert_eq!((here.txn.score, here.txn.received_at), (elsewhere.score, elsewhere.received_at));
    assert_eq!(crate::store::Store::open(dir.path().join("results.db")).unwrap().count().unwrap(), 52);
    for e in [restarted, other] {
        e.shutdown();
    }
}

#[tokio::test]
async fn a_repeat_never_moves_card_state_twice() {
    let (bundle, rows) = trained();
    let (t0, t1) = same_card(&rows);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Engine A sees t0 twice, engine B once; the card's next transaction must score the same.
    let ea = engine(a.path(), &bundle);
    ea.process(valid(&t0), Arrival::now()).await.unwrap();
    assert!(ea.process(valid(&t0), Arrival::now()).await.unwrap().duplicate);
    let got = ea.process(valid(&t1), Arrival::now()).await.unwrap();
    let eb = engine(b.path(), &bundle);
    eb.process(valid(&t0), Arrival::now()).await.unwrap();
    let want = eb.process(valid(&t1), Arrival::now()).await.unwrap();
    assert_eq!((got.txn.score, got.txn.if_score, got.txn.ae_mse), (want.txn.score, want.txn.if_score, want.txn.ae_mse));
    ea.shutdown();
    eb.shutdown();
}

#[tokio::test]
async fn workers_sharing_a_store_share_merchant_country_and_category_counts() {
    let (bundle, rows) = trained();
    let base = rows[0].txn.clone();
    let at = |i: usize, card: &str| Transaction {
        txn_id: format!("shared-{i}"),
        card: CardKey::new(b"shared").token(card),
        merchant: "M-SHARED".into(),
        timestamp: base.timestamp + i as i64 * 60,
        ..base.clone()
    };
    let (shared, alone) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Worker A scores 30 transactions at one merchant; worker B, on the same store, saw none.
    let a = engine(shared.path(), &bundle);
    let b = engine(shared.path(), &bundle);
    for i in 0..30 {
        a.process(valid(&at(i, &format!("card-{i}"))), Arrival::now()).await.unwrap();
    }
    // One worker that saw all of them: what B should read after its refresh.
    let single = engine(alone.path(), &bundle);
    for i in 0..30 {
        single.process(valid(&at(i, &format!("card-{i}"))), Arrival::now()).await.unwrap();
    }
    // Two days later: the merchant's hour and day windows are each worker's own (not shared
    // through the store; ARCHITECTURE.md), its 7- and 30-day counts are shared.
    let probe = Transaction { timestamp: base.timestamp + 2 * 86_400, ..at(30, "a new card") };
    let want = single.process(valid(&probe), Arrival::now()).await.unwrap().txn;
    let scores = |t: &ScoredTransaction| (t.score, t.if_score, t.ae_mse);
    // Before the refresh, B's view of the merchant is empty, and it scores the probe otherwise.
    let nothing = tempfile::tempdir().unwrap();
    let unshared = engine(nothing.path(), &bundle);
    let stale = unshared.process(valid(&probe), Arrival::now()).await.unwrap().txn;
    assert_ne!(scores(&stale), scores(&want), "the shared counts matter to the score");
    assert!(b.refresh_shared_counts().unwrap() >= 4, "merchant, country, category and overall rows");
    let got = b.process(valid(&probe), Arrival::now()).await.unwrap().txn;
    assert_eq!(scores(&got), scores(&want), "after the refresh B reads what one worker would");
    for e in [a, b, single, unshared] {
        e.shutdown();
    }
}

#[tokio::test]
async fn a_restart_replays_verdicts_with_the_history() {
    use crate::domain::{LabelIn, Verdict};
    let (bundle, rows) = trained();
    let (t0, t1) = same_card(&rows);
    let fraud = LabelIn {
        txn_id: t0.txn_id.clone(),
        verdict: Verdict::Fraud,
        source: "chargeback".into(),
        reported_at: t0.timestamp + 1,
        note: None,
    };
    // Restarted between the label and the card's next transaction.
    let (a, b, c) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = engine(a.path(), &bundle);
    first.process(valid(&t0), Arrival::now()).await.unwrap();
    first.label(std::slice::from_ref(&fraud)).unwrap();
    first.shutdown();
    let restarted = engine(a.path(), &bundle);
    let got = restarted.process(valid(&t1), Arrival::now()).await.unwrap().txn.score;
    // Never restarted.
    let live = engine(b.path(), &bundle);
    live.process(valid(&t0), Arrival::now()).await.unwrap();
    live.label(std::slice::from_ref(&fraud)).unwrap();
    let want = live.process(valid(&t1), Arrival::now()).await.unwrap().txn.score;
    // Never labelled: the label must matter for the comparison to mean anything.
    let unlabelled = engine(c.path(), &bundle);
    unlabelled.process(valid(&t0), Arrival::now()).await.unwrap();
    let without = unlabelled.process(valid(&t1), Arrival::now()).await.unwrap().txn.score;
    assert_eq!(got, want, "the restarted engine lost the verdict");
    assert_ne!(want, without, "the fraud verdict should change the card's next score");
    for e in [restarted, live, unlabelled] {
        e.shutdown();
    }
}

#[tokio::test]
async fn a_rejected_submit_releases_its_claim() {
    let (bundle, rows) = trained();
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), &bundle);
    // A transaction the models cannot score (a non-finite amount makes non-finite features)
    // is an error, and its id stays free for a corrected retry.
    let mut bad = rows[0].txn.clone();
    bad.amount = f64::NAN;
    let first = engine.process(valid(&bad), Arrival::now()).await;
    let retry = engine.process(valid(&rows[0].txn), Arrival::now()).await;
    assert!(first.is_err(), "{first:?}");
    assert!(retry.as_ref().is_ok_and(|s| !s.duplicate), "the failed submit kept its claim or a row: {retry:?}");
    engine.shutdown();
}

#[tokio::test]
async fn a_shadow_may_declare_fields_the_champion_does_not_read() {
    let schema =
        crate::domain::fields::Schema::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/schema.toml")))
            .unwrap();
    let (champion, rows) = trained();
    let (challenger, _) = crate::scoring::testing::trained_with(schema.clone());
    let dir = tempfile::tempdir().unwrap();
    let (models, shadows) = (dir.path().join("models"), dir.path().join("shadows"));
    std::fs::create_dir_all(&models).unwrap();
    std::fs::create_dir_all(&shadows).unwrap();
    champion.save(&models, &[]).unwrap();
    let shadow = challenger.save(&shadows, &[]).unwrap();
    let config = EngineConfig {
        models,
        shadow: Some(shadow),
        rules: None,
        db: dir.path().join("results.db").into(),
        db_timeout: std::time::Duration::ZERO,
        card_key: CardKey::new(b"engine tests"),
        warm_up: Vec::new(),
    };
    let engine = Engine::open(config, Arc::new(Metrics::default())).unwrap();
    // Requests take the shadow's fields; the store keeps them, for the day it is promoted.
    assert_eq!(engine.fields(), schema);
    let body = serde_json::json!({"txn_id": "s-1", "timestamp": rows[0].txn.timestamp, "amount": 20.0,
        "country": "FR", "merchant": "M1", "card_num": "4111111111111111", "device_id": "d-9", "channel": "ecom"});
    let valid =
        crate::domain::TransactionIn::validate(&body, engine.card_key(), &engine.fields(), 2_000_000_000).unwrap();
    let scored = engine.submit(valid, Arrival::now()).unwrap().wait(engine.metrics()).await.unwrap();
    assert!(scored.txn.shadow.is_some(), "the shadow scored it");
    let stored = crate::store::Store::open(dir.path().join("results.db")).unwrap().get("s-1").unwrap().unwrap();
    assert!(stored.fields.unwrap().contains("\"device_id\":\"d-9\""));
    // Promoted (forced: no evidence here), the challenger answers with its own fields.
    engine.promote(true).unwrap();
    assert_eq!(engine.fields(), schema);
    assert_eq!(engine.model_version(), challenger.manifest.version);
}
