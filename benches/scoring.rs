//! In-process scoring benchmarks: one transaction through features + the unsupervised models +
//! the supervised model + decision + reasons, and the single-row model paths on their own.
//!
//! `cargo bench --bench scoring`

use aegis::domain::{CardKey, TransactionIn};
use aegis::features::N_FEATURES;
use aegis::ingest::{ColumnMap, read_requests};
use aegis::rules::{Lists, RuleInput, RuleSet};
use aegis::scoring::Scorer;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

mod common;

fn scoring(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (bundle, data, rows, split) = common::trained(dir.path());

    let models_only = bundle.models.clone();
    let mut scorer = Scorer::new(bundle).expect("scorer");
    for r in &rows[..split] {
        scorer.observe(&r.txn);
    }
    let stream = &rows[split..];
    let mut i = 0;
    c.bench_function("score_transaction (features + IF + AE + GBDT + decision + reasons)", |b| {
        b.iter(|| {
            // Each iteration scores the next transaction, as live traffic would.
            let d = scorer.score(black_box(&stream[i % stream.len()].txn), None).expect("scores");
            i += 1;
            d
        })
    });

    // What `/predict` does between parsing the body and queueing the result: validate the JSON,
    // tokenize the card, then score.
    let requests: Vec<serde_json::Value> = read_requests(&data, &ColumnMap::default())
        .expect("requests")
        .split_off(split)
        .into_iter()
        .map(|(request, _)| serde_json::to_value(request).expect("serialises"))
        .collect();
    let key = CardKey::new(b"bench");
    let now = chrono::Utc::now().timestamp();
    let mut j = 0;
    c.bench_function("validate_and_score (JSON value -> validated -> scored)", |b| {
        b.iter(|| {
            let valid =
                TransactionIn::validate(black_box(&requests[j % requests.len()]), &key, &Default::default(), now)
                    .expect("valid");
            j += 1;
            scorer.score(&valid.txn, None).expect("scores")
        })
    });

    // Twenty rules of the kinds fraud teams write (amounts, countries, hours, features in
    // natural units, scores, and membership in a 10,000-merchant list), on scored transactions.
    let lists =
        Lists::new(1, [("watched_merchants".to_owned(), (0..10_000).map(|k| format!("M{k:06}")).collect())].into());
    let rules = RuleSet::parse(RULES, &lists, &Default::default()).expect("the bench rules compile");
    let decisions: Vec<_> =
        stream.iter().take(2_000).map(|r| (r, scorer.score(&r.txn, None).expect("scores"))).collect();
    let cards: Vec<String> = decisions.iter().map(|(r, _)| r.txn.card.to_string()).collect();
    let mut matches = Vec::new();
    let mut k = 0;
    c.bench_function("rules_20_per_transaction (CEL, resolver, 10k-entry list)", |b| {
        b.iter(|| {
            let n = k % decisions.len();
            let (row, d) = &decisions[n];
            let input = RuleInput {
                txn: &row.txn,
                card: &cards[n],
                features: &d.features,
                score: &d.score,
                model_action: d.action,
            };
            matches.clear();
            rules.evaluate(black_box(&input), &lists, &mut matches);
            k += 1;
            matches.len()
        })
    });

    // The same with a schema's declared fields: examples/schema.toml (2 categories, 3 entities,
    // a location: 45 features more).
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/schema.toml");
    let (with_fields, _, rows, split) = common::trained_with(dir.path(), Some(schema));
    let mut scorer = Scorer::new(with_fields).expect("scorer");
    for r in &rows[..split] {
        scorer.observe(&r.txn);
    }
    let stream = &rows[split..];
    let mut i = 0;
    c.bench_function("score_transaction_with_schema (6 declared fields, 95 features)", |b| {
        b.iter(|| {
            let d = scorer.score(black_box(&stream[i % stream.len()].txn), None).expect("scores");
            i += 1;
            d
        })
    });

    let row = [0.3f32; N_FEATURES];
    let mut ws = models_only.autoencoder.workspace();
    let mut errors = [0f32; N_FEATURES];
    c.bench_function("autoencoder_single_row", |b| {
        b.iter(|| models_only.autoencoder.reconstruction_errors(black_box(&row), &mut ws, &mut errors).expect("scores"))
    });
    c.bench_function("isolation_forest_single_row", |b| {
        b.iter(|| models_only.forest.score(black_box(&row)).expect("scores"))
    });
    let gbdt = models_only.supervised.as_ref().expect("generated data has labels: a supervised model");
    let input = [0.3f32; N_FEATURES + 2];
    c.bench_function("supervised_gbdt_single_row", |b| b.iter(|| gbdt.predict(black_box(&input)).expect("scores")));
    let mut contributions = [0f32; N_FEATURES + 2];
    c.bench_function("supervised_gbdt_contributions", |b| {
        b.iter(|| gbdt.contributions(black_box(&input), &mut contributions).expect("explains"))
    });
}

const RULES: &str = r#"
[[rule]]
name = "big"
when = 'amount > 1000.0'
action = "review"
reason = "big"

[[rule]]
name = "big-foreign"
when = 'amount > 500.0 && country != "US"'
action = "review"
reason = "big-foreign"

[[rule]]
name = "night-big"
when = 'hour < 5 && amount > 300.0'
action = "review"
reason = "night-big"

[[rule]]
name = "burst"
when = 'card_txn_count_1h > 3'
action = "review"
reason = "burst"

[[rule]]
name = "burst-24h"
when = 'card_txn_count_24h > 10 && amount > 100.0'
action = "review"
reason = "burst-24h"

[[rule]]
name = "ratio"
when = 'amount_ratio_30d > 5.0'
action = "review"
reason = "ratio"

[[rule]]
name = "ratio-foreign"
when = 'amount_ratio_30d > 3.0 && foreign_country > 0.5'
action = "review"
reason = "ratio-foreign"

[[rule]]
name = "new-merchant-big"
when = 'new_merchant > 0.5 && amount > 400.0'
action = "review"
reason = "new-merchant-big"

[[rule]]
name = "new-country"
when = 'new_country > 0.5 && amount > 200.0'
action = "review"
reason = "new-country"

[[rule]]
name = "countries"
when = 'distinct_countries_24h > 2.0'
action = "review"
reason = "countries"

[[rule]]
name = "fast"
when = 'secs_since_prev < 60.0 && amount > 50.0'
action = "review"
reason = "fast"

[[rule]]
name = "merchant-risk"
when = 'merchant_risk_7d > 0.2'
action = "review"
reason = "merchant-risk"

[[rule]]
name = "merchant-frauds"
when = 'merchant_log_recent_frauds > 1.0'
action = "review"
reason = "merchant-frauds"

[[rule]]
name = "known-card"
when = 'card_known_fraud > 0.5'
action = "review"
reason = "known-card"

[[rule]]
name = "score"
when = 'score > 0.9'
action = "review"
reason = "score"

[[rule]]
name = "forest"
when = 'if_score > 0.7 && ae_mse > 5.0'
action = "review"
reason = "forest"

[[rule]]
name = "watched"
when = 'merchant in watched_merchants && amount > 250.0'
action = "review"
reason = "watched"

[[rule]]
name = "category"
when = 'merchant_category == "electronics" && amount > 800.0'
action = "review"
reason = "category"

[[rule]]
name = "quiet-merchant"
when = 'merchant_txn_count_1d < 2 && amount > 300.0'
action = "review"
reason = "quiet-merchant"

[[rule]]
name = "model-review"
when = 'model_action == "review" && amount > 700.0'
action = "review"
reason = "model-review"

"#;

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = scoring
}
criterion_main!(benches);
