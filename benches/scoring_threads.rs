//! Scoring from several threads at once, and the share of time the card-state lock is held:
//! the whole of scoring under the lock (how the engine scored until the performance issue)
//! against features under the lock and the models outside it (how it scores now), and a
//! Kafka-sized batch scored as one matrix.
//!
//! `cargo bench --bench scoring_threads`

use aegis::domain::Transaction;
use aegis::scoring::{Scorer, decide, decide_batch};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const PER_THREAD: usize = 40_000;

mod common;

/// How the lock is used per transaction.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Features, models, decision and reasons all under the lock.
    WholeUnderLock,
    /// Features under the lock; models, decision and reasons after it is released.
    FeaturesUnderLock,
}

/// Scores `PER_THREAD` transactions on each of `threads` threads; returns (transactions/s,
/// the share of the threads' time holding the lock, the share waiting for it).
fn measure(scorer: &Mutex<Scorer>, stream: &[Transaction], threads: usize, mode: Mode) -> (f64, f64, f64) {
    let next = AtomicUsize::new(0);
    let held = Mutex::new((Duration::ZERO, Duration::ZERO));
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let bundle = std::sync::Arc::clone(scorer.lock().expect("lock").bundle());
                let mut scratch = bundle.models.scratch();
                let mut contributions = Vec::new();
                let (mut mine, mut waited) = (Duration::ZERO, Duration::ZERO);
                for _ in 0..PER_THREAD {
                    let txn = &stream[next.fetch_add(1, Ordering::Relaxed) % stream.len()];
                    let asked = Instant::now();
                    let mut guard = scorer.lock().expect("lock");
                    let taken = Instant::now();
                    waited += taken - asked;
                    match mode {
                        Mode::WholeUnderLock => {
                            std::hint::black_box(guard.score(txn, None).expect("scores"));
                            mine += taken.elapsed();
                            drop(guard);
                        }
                        Mode::FeaturesUnderLock => {
                            let features = guard.features(txn, None);
                            mine += taken.elapsed();
                            drop(guard);
                            let d = decide(&bundle, txn, &features, &mut scratch, &mut contributions);
                            std::hint::black_box(d.expect("scores"));
                        }
                    }
                }
                let mut total = held.lock().expect("lock");
                total.0 += mine;
                total.1 += waited;
            });
        }
    });
    let wall = started.elapsed().as_secs_f64();
    let (held, waited) = *held.lock().expect("lock");
    let share = |d: Duration| d.as_secs_f64() / (wall * threads as f64);
    ((threads * PER_THREAD) as f64 / wall, share(held), share(waited))
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (bundle, _, rows, split) = common::trained(dir.path());
    let mut scorer = Scorer::new(bundle).expect("scorer");
    for r in &rows[..split] {
        scorer.observe(&r.txn);
    }
    let stream: Vec<Transaction> = rows[split..].iter().map(|r| r.txn.clone()).collect();
    let scorer = Mutex::new(scorer);
    println!("{} cores available", std::thread::available_parallelism().map_or(1, usize::from));
    for mode in [Mode::WholeUnderLock, Mode::FeaturesUnderLock] {
        for threads in [1, 2, 4] {
            let (rate, held, waited) = measure(&scorer, &stream, threads, mode);
            println!(
                "{mode:?}, {threads} thread(s): {rate:>7.0} transactions/s; of the threads' time, {:.0}% holding the lock, {:.0}% waiting for it",
                held * 100.0,
                waited * 100.0
            );
        }
    }
    // A Kafka lane's batch: features for 512 under one hold of the lock, then one matrix.
    let mut guard = scorer.lock().expect("lock");
    let bundle = std::sync::Arc::clone(guard.bundle());
    let started = Instant::now();
    let mut scored = 0;
    let mut locked = Duration::ZERO;
    for chunk in stream.chunks(512).cycle().take(80) {
        let taken = Instant::now();
        let rows: Vec<(&Transaction, Vec<f32>)> = chunk.iter().map(|t| (t, guard.features(t, None))).collect();
        locked += taken.elapsed();
        scored += decide_batch(&bundle, &rows).into_iter().filter(Result::is_ok).count();
    }
    let wall = started.elapsed().as_secs_f64();
    println!(
        "batches of 512 (features, then one matrix): {:>9.0} transactions/s, features {:.0}% of the time",
        scored as f64 / wall,
        locked.as_secs_f64() / wall * 100.0
    );
}
