//! Dashboard queries on a large store (target < 50 ms each with 1,000,000 stored results).
//!
//! `cargo bench --bench dashboard` (fills a temporary database first; ROWS=… to change the size;
//! DB=postgres://user@host:port/empty_db to measure PostgreSQL)

use aegis::domain::ScoredTransaction;
use aegis::scoring::Action;
use aegis::store::{Cursor, Filter, Location, ReadPool, Store};
use std::time::{Duration, Instant};

const COUNTRIES: [&str; 25] = [
    "US", "GB", "FR", "DE", "ES", "IT", "NL", "BE", "CH", "SE", "PL", "PT", "IE", "CA", "MX", "BR", "AR", "JP", "CN",
    "IN", "AU", "SG", "AE", "ZA", "NG",
];

fn main() {
    let rows: usize = std::env::var("ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let path: Location = match std::env::var("DB") {
        Ok(url) => url.parse().expect("DB: a postgres:// URL or a file"),
        Err(_) => dir.path().join("results.db").into(),
    };
    println!("store: {path}");
    let mut store = Store::open(&path).expect("store");
    let start_ms = 1_795_000_000_000i64;
    let filled = Instant::now();
    for chunk in (0..rows).collect::<Vec<_>>().chunks(10_000) {
        let batch: Vec<ScoredTransaction> = chunk.iter().map(|&i| result(i, start_ms)).collect();
        store.insert_batch(&batch).expect("insert");
    }
    println!("filled {rows} results in {:.1} s", filled.elapsed().as_secs_f64());
    let now = start_ms + rows as i64 * 7; // just after the newest
    let pool = ReadPool::open(&path, 1).expect("pool");
    let middle = Cursor { received_at: start_ms + (rows as i64 / 2) * 7, txn_id: "m".into() };

    println!("| query | median | max (20 runs) |\n|---|---|---|");
    time("GET /api/stats", || pool.stats(now).map(|s| s.processed as usize));
    time("GET /api/transactions?limit=50", || pool.page(Filter::All, 50, None).map(|p| p.len()));
    time("GET /api/transactions?limit=200", || pool.page(Filter::All, 200, None).map(|p| p.len()));
    time("GET /api/transactions?action=block&limit=50", || {
        pool.page(Filter::Action(Action::Block), 50, None).map(|p| p.len())
    });
    time("GET /api/flagged?limit=20", || pool.page(Filter::Flagged, 20, None).map(|p| p.len()));
    time("GET /api/countries?limit=10", || pool.countries(10).map(|c| c.len()));
    time("GET /api/transactions?limit=50&before=<middle of the store>", || {
        pool.page(Filter::All, 50, Some(&middle)).map(|p| p.len())
    });
    time("GET /api/review?limit=50", || pool.review_queue(50, None, None).map(|p| p.len()));
    let flagged = result(rows / 2 / 100 * 100, start_ms).txn_id;
    time("GET /api/transactions/{txn_id} (case view)", || {
        pool.case(&flagged, &[]).map(|c| c.map_or(0, |c| c.card_history.len()))
    });
}

/// One stored result: 96% allow, 3% review, 1% block, received 7 ms apart.
fn result(i: usize, start_ms: i64) -> ScoredTransaction {
    let action = match i % 100 {
        0 => Action::Block,
        1..=3 => Action::Review,
        _ => Action::Allow,
    };
    ScoredTransaction {
        txn_id: format!("{:016x}", aegis::generator::txn_id(1, i as u64)),
        timestamp: 1_735_689_600 + i as i64,
        amount: 10.0 + (i % 500) as f64,
        country: COUNTRIES[i * 7 % COUNTRIES.len()].into(),
        merchant: format!("M{:06}", i % 5000),
        merchant_category: Some("grocery".into()),
        card_masked: "453912******3374".into(),
        card_token: format!("{:032x}", i % 50_000),
        score: 0.5,
        if_score: 0.4,
        ae_mse: 0.1,
        action,
        reasons: if action == Action::Allow {
            Vec::new()
        } else {
            vec!["amount 6.2× this card's 30-day average".into()]
        },
        model_version: "bench".into(),
        received_at: start_ms + i as i64 * 7,
        latency_us: 300 + (i % 700) as u32,
        fields: None,
        fraud_probability: None,
        rules: Vec::new(),
        shadow: None,
    }
}

fn time(name: &str, mut f: impl FnMut() -> anyhow::Result<usize>) {
    let mut times: Vec<Duration> = (0..20)
        .map(|_| {
            let t = Instant::now();
            let n = f().expect("query");
            assert!(n > 0, "{name} returned nothing");
            t.elapsed()
        })
        .collect();
    times.sort();
    println!("| `{name}` | {:.2} ms | {:.2} ms |", times[10].as_secs_f64() * 1e3, times[19].as_secs_f64() * 1e3);
}
