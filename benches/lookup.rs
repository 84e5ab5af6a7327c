//! The idempotency look-up `/predict` makes before scoring: `ReadPool::get` of a new (not stored)
//! `txn_id` on a SQLite store of 300,000 results. Two cases, timed per look-up:
//! - back to back: nothing is written meanwhile, so the reader's page cache stays warm;
//! - after a commit: one result is committed (and acknowledged) before each look-up, as when
//!   requests and commits alternate, so each look-up opens a read transaction on a database that
//!   changed since its last one (SQLite's WAL reader then drops its page cache).
//!
//! `cargo bench --bench lookup`

use aegis::scoring::Action;
use aegis::store::{ReadPool, Store, Writer};
use std::time::{Duration, Instant};

#[path = "common/stored.rs"]
mod stored;

fn row(i: u64) -> aegis::domain::ScoredTransaction {
    stored::result(i, Action::Allow)
}

/// Stores `row(i)` and waits for its acknowledgement.
fn commit(writer: &Writer, i: u64) {
    let (tx, rx) = std::sync::mpsc::channel();
    writer.submit(row(i), Box::new(move |o| tx.send(o.is_ok()).unwrap_or(()))).expect("writer running");
    assert!(rx.recv().expect("acknowledged"), "stored");
}

/// Times `n` look-ups of ids never stored, running `before(k)` (untimed) ahead of look-up `k`.
fn look_ups(pool: &ReadPool, n: u64, seed: u64, mut before: impl FnMut(u64)) -> String {
    let mut micros: Vec<f64> = Vec::with_capacity(n as usize);
    for k in 0..n {
        before(k);
        let id = format!("{:016x}", aegis::generator::txn_id(seed, k));
        let t = Instant::now();
        let found = pool.get(&id).expect("look-up");
        micros.push(t.elapsed().as_secs_f64() * 1e6);
        assert!(found.is_none());
    }
    micros.sort_by(f64::total_cmp);
    let mean = micros.iter().sum::<f64>() / micros.len() as f64;
    let at = |q: usize| micros[micros.len() * q / 100];
    format!("{n} look-ups: mean {mean:.1} us, p50 {:.1} us, p99 {:.1} us", at(50), at(99))
}

fn main() {
    const STORED: u64 = 300_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("results.db");
    let writer = Writer::spawn(Store::open(&path).expect("store"), 8_192, 2_048, Duration::ZERO);
    let (tx, rx) = std::sync::mpsc::channel();
    for i in 0..STORED {
        let tx = tx.clone();
        writer.submit(row(i), Box::new(move |o| tx.send(o.is_ok()).unwrap_or(()))).expect("writer running");
    }
    drop(tx);
    assert_eq!(rx.iter().filter(|ok| *ok).count() as u64, STORED, "every result stored");
    let pool = ReadPool::open(&path, 1).expect("read pool");
    println!("back to back:   {}", look_ups(&pool, 20_000, 9, |_| ()));
    println!("after a commit: {}", look_ups(&pool, 5_000, 10, |k| commit(&writer, STORED + k)));
    writer.shutdown();
}
