//! Results-store throughput: 200,000 scored results from two producer threads through the
//! group-commit writer into a fresh `results.db` (WAL, synchronous=FULL), each acknowledged
//! after its commit. Reports results/s, mean batch size and mean commit time. Transaction ids
//! are random (hashed), as real ones are: sequential ids flattered the store 3x.
//!
//! `cargo bench --bench store` (SQLite); `DB=postgres://user@host:port/empty_db cargo bench --bench
//! store` for PostgreSQL (an empty database: the bench does not clean up).

use aegis::scoring::Action;
use aegis::store::{Location, Store, Writer};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Instant;

#[path = "common/stored.rs"]
mod stored;

fn main() {
    const N: usize = 200_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let db: Location = match std::env::var("DB") {
        Ok(url) => url.parse().expect("DB: a postgres:// URL or a file"),
        Err(_) => dir.path().join("results.db").into(),
    };
    println!("store: {db}");
    let writer = Writer::spawn(Store::open(&db).expect("store"), 8_192, 2_048, std::time::Duration::ZERO);
    let (acked_tx, acked_rx) = mpsc::channel::<bool>();
    let started = Instant::now();
    std::thread::scope(|s| {
        for p in 0..2 {
            let writer = &writer;
            let acked = acked_tx.clone();
            s.spawn(move || {
                for i in (p..N).step_by(2) {
                    let action = if i % 50 == 0 { Action::Review } else { Action::Allow };
                    let row = stored::result(i as u64, action);
                    let acked = acked.clone();
                    writer.submit(row, Box::new(move |o| acked.send(o.is_ok()).unwrap_or(()))).expect("writer running");
                }
            });
        }
    });
    drop(acked_tx);
    let ok = acked_rx.iter().filter(|&ok| ok).count();
    let secs = started.elapsed().as_secs_f64();
    let stats = writer.stats();
    let batches = stats.batches.load(Ordering::Relaxed).max(1);
    println!("stored and acknowledged {ok} of {N} results in {secs:.2} s: {:.0} results/s", ok as f64 / secs);
    println!(
        "{batches} commits, mean batch {:.0} results, mean commit {:.2} ms",
        N as f64 / batches as f64,
        stats.commit_micros.load(Ordering::Relaxed) as f64 / batches as f64 / 1000.0
    );
    writer.shutdown();
}
