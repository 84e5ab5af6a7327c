//! Memory per card and per merchant of the streaming feature state: feeds one transaction for
//! each of 1,000,000 cards (at one merchant), then one for each of 200,000 merchants (from one
//! card), through the feature pipeline and reports the resident-memory growth of each.
//!
//! `cargo bench --bench card_memory` (Linux: reads /proc/self/statm)

use aegis::domain::{CardKey, Country, Transaction};
use aegis::features::{CardState, CategoryEncoder, Encoders, FeatureConfig, FeaturePipeline, N_FEATURES};

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

fn main() {
    const CARDS: usize = 1_000_000;
    let key = CardKey::new(b"bench");
    let encoders = Encoders { country: CategoryEncoder::fit([]), category: CategoryEncoder::fit([]) };
    let mut txn = Transaction {
        txn_id: String::new(),
        timestamp: 1_735_689_600,
        card: key.token("0"),
        amount: 10.0,
        country: Country::parse("US").unwrap_or_default(),
        merchant: "M000001".into(),
        merchant_category: None,
        bin: None,
        fields: Default::default(),
    };
    let tokens: Vec<_> = (0..CARDS).map(|i| key.token(&i.to_string())).collect();
    let mut out = [0f32; N_FEATURES];
    let before = resident_bytes();
    let mut pipeline = FeaturePipeline::new(encoders, FeatureConfig::default());
    let started = std::time::Instant::now();
    for (i, token) in tokens.iter().enumerate() {
        txn.card = *token;
        txn.timestamp += i as i64 % 7;
        pipeline.observe(&txn, &mut out);
    }
    let secs = started.elapsed().as_secs_f64();
    let after = resident_bytes();
    println!("cards: {}", pipeline.n_cards());
    println!("size_of::<CardState>(): {} bytes", std::mem::size_of::<CardState>());
    println!("resident growth: {:.0} bytes/card (state + hash map + token)", (after - before) as f64 / CARDS as f64);
    println!("observe, first transaction of a card: {:.0} ns", secs * 1e9 / CARDS as f64);

    const MERCHANTS: usize = 200_000;
    let names: Vec<String> = (0..MERCHANTS).map(|i| format!("T{i:08}")).collect();
    let before = resident_bytes();
    for name in &names {
        txn.merchant.clone_from(name);
        pipeline.observe(&txn, &mut out);
    }
    let after = resident_bytes();
    println!("merchants: {}", pipeline.n_merchants());
    println!(
        "resident growth: {:.0} bytes/merchant (daily counts + hash map + id)",
        (after - before) as f64 / MERCHANTS as f64
    );
}
