//! In-process scoring benchmarks: one transaction through features + the unsupervised models +
//! the supervised model + decision + reasons, and the single-row model paths on their own.
//!
//! `cargo bench --bench scoring`

use aegis::cli::Cli;
use aegis::domain::{CardKey, TransactionIn};
use aegis::features::N_FEATURES;
use aegis::ingest::{ColumnMap, read_requests, read_transactions};
use aegis::scoring::{Bundle, Scorer};
use clap::Parser;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn run(args: &[&str]) {
    let cli = Cli::try_parse_from(std::iter::once("aegis").chain(args.iter().copied())).expect("valid command line");
    aegis::commands::run(cli).expect("command succeeds");
}

fn scoring(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("tx.csv");
    let models = dir.path().join("models");
    let (data_s, models_s) = (data.to_string_lossy().into_owned(), models.to_string_lossy().into_owned());
    run(&["generate", "--rows", "40000", "--out", &data_s]);
    run(&["train", "--data", &data_s, "--out", &models_s, "--to", "2025-02-20"]);
    let bundle = Bundle::load(&models).expect("bundle");
    let rows =
        read_transactions(&data, &ColumnMap::default(), &CardKey::new(b"bench"), false, |_| {}).expect("rows").rows;
    let split = rows.iter().position(|r| r.txn.timestamp >= 1_740_009_600).expect("rows after the cut");

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
            let d = scorer.score(black_box(&stream[i % stream.len()].txn)).expect("scores");
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
            let valid = TransactionIn::validate(black_box(&requests[j % requests.len()]), &key, now).expect("valid");
            j += 1;
            scorer.score(&valid.txn).expect("scores")
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

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = scoring
}
criterion_main!(benches);
