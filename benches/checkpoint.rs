//! Card-state checkpoints (`aegis consume`'s partition hand-over): 1,000,000 cards, each with a
//! realistic month of history (20 transactions over 30 days, 3 countries, 12 merchants), then
//! the bytes per card of a checkpoint of all of them, and the time to write it, to read it
//! back into an empty pipeline, and to store and load it through the results store.
//!
//! `cargo bench --bench checkpoint` (CARDS=… to change the count; DB=postgres://… to store it
//! in PostgreSQL instead of a temporary SQLite file)

use aegis::domain::{CardKey, Country, Transaction};
use aegis::features::{CategoryEncoder, Encoders, FeatureConfig, FeaturePipeline, N_FEATURES};
use aegis::store::{Checkpoint, Location, Store};
use std::time::Instant;

fn main() {
    let cards: usize = std::env::var("CARDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let key = CardKey::new(b"bench");
    let encoders = || Encoders { country: CategoryEncoder::fit([]), category: CategoryEncoder::fit([]) };
    let countries = ["US", "FR", "GB"].map(|c| Country::parse(c).unwrap_or_default());
    let tokens: Vec<_> = (0..cards).map(|i| key.token(&i.to_string())).collect();
    let mut pipeline = FeaturePipeline::new(encoders(), FeatureConfig::default());
    let mut out = [0f32; N_FEATURES];
    let mut txn = Transaction {
        txn_id: String::new(),
        timestamp: 0,
        card: tokens[0],
        amount: 10.0,
        country: countries[0],
        merchant: String::new(),
        merchant_category: None,
        bin: None,
        fields: Default::default(),
    };
    let merchants: Vec<String> = (0..5_000).map(|m| format!("M{m:06}")).collect();
    for (i, token) in tokens.iter().enumerate() {
        txn.card = *token;
        for k in 0..20usize {
            txn.timestamp = 1_735_689_600 + (k as i64) * 130_000 + (i as i64 % 3_600);
            txn.amount = 5.0 + ((i + k) % 200) as f64;
            txn.country = countries[usize::from(k % 7 == 0) + usize::from(k % 11 == 0)];
            txn.merchant.clone_from(&merchants[(i * 7 + k % 12) % merchants.len()]);
            pipeline.observe_at(&txn, (i * 20 + k) as i64, &mut out);
        }
    }
    let started = Instant::now();
    let mut bytes = Vec::new();
    pipeline.export_cards(tokens.iter(), &mut bytes);
    let export = started.elapsed();
    let started = Instant::now();
    let mut restored = FeaturePipeline::new(encoders(), FeatureConfig::default());
    let n = restored.import_cards(&bytes, 1).expect("a valid checkpoint").len();
    let import = started.elapsed();
    println!(
        "{cards} cards: checkpoint {:.1} MB, {:.0} bytes per card; written in {:.2} s, read into an empty pipeline in {:.2} s ({n} cards)",
        bytes.len() as f64 / 1e6,
        bytes.len() as f64 / cards as f64,
        export.as_secs_f64(),
        import.as_secs_f64()
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let db: Location = match std::env::var("DB") {
        Ok(url) => url.parse().expect("DB: a postgres:// URL or a file"),
        Err(_) => dir.path().join("results.db").into(),
    };
    let mut store = Store::open(&db).expect("store");
    let checkpoint = Checkpoint { partition: 0, next_offset: 1, cards: cards as u64, state: bytes };
    let started = Instant::now();
    store.save_checkpoints("bench", "transactions", std::slice::from_ref(&checkpoint), 0).expect("saved");
    let save = started.elapsed();
    let started = Instant::now();
    let loaded = store.load_checkpoint("bench", "transactions", 0).expect("loaded").expect("one");
    let load = started.elapsed();
    assert_eq!(loaded.state.len(), checkpoint.state.len());
    println!("store {db}: saved in {:.2} s, loaded in {:.2} s", save.as_secs_f64(), load.as_secs_f64());
}
