//! The single writer: results arrive over a bounded channel and are committed in groups.
//!
//! Each commit takes whatever is waiting (up to `max_batch`), so under load one fsync covers
//! many results, and when idle a lone result is committed at once. Every result's `ack` is called
//! only after its batch has committed: an acknowledged result is durable ("persist before
//! acknowledge"). The ack is a plain callback, so async callers can pass a oneshot sender.

use super::{Outcome, ScoredTransaction, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Called once per result with its outcome, after the commit (or with the error).
pub type Ack = Box<dyn FnOnce(Result<Outcome, String>) + Send>;

struct Job {
    row: ScoredTransaction,
    ack: Ack,
}

/// Counters for metrics: committed batches and rows, and rows waiting in the queue.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub batches: AtomicU64,
    pub rows: AtomicU64,
    pub queued: AtomicU64,
    /// Total commit time, microseconds (with `batches`, the mean commit latency).
    pub commit_micros: AtomicU64,
}

/// Handle to the writer thread. Dropping every handle (or calling [`Writer::shutdown`]) lets
/// the thread commit what is queued and stop.
#[derive(Debug)]
pub struct Writer {
    tx: SyncSender<Job>,
    stats: Arc<WriterStats>,
    handle: Option<JoinHandle<()>>,
}

/// The writer has stopped (its thread ended); the result was not accepted.
#[derive(Debug, thiserror::Error)]
#[error("the results writer has stopped")]
pub struct WriterClosed;

impl Writer {
    /// Starts the writer thread on `store`, with a queue of `capacity` results.
    pub fn spawn(store: Store, capacity: usize, max_batch: usize) -> Self {
        let (tx, rx) = sync_channel(capacity.max(1));
        let stats = Arc::new(WriterStats::default());
        let thread_stats = Arc::clone(&stats);
        let handle = std::thread::Builder::new()
            .name("aegis-store-writer".into())
            .spawn(move || run(store, &rx, max_batch.max(1), &thread_stats))
            .ok();
        Self { tx, stats, handle }
    }

    /// Queues `row`, blocking while the queue is full (back-pressure).
    pub fn submit(&self, row: ScoredTransaction, ack: Ack) -> Result<(), WriterClosed> {
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        self.tx.send(Job { row, ack }).map_err(|_| {
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
            WriterClosed
        })
    }

    /// False once the writer thread has ended (it only ends on shutdown or a panic).
    pub fn is_running(&self) -> bool {
        self.handle.as_ref().is_some_and(|h| !h.is_finished())
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Commits everything queued, then stops the thread.
    pub fn shutdown(mut self) {
        let handle = self.handle.take();
        drop(self);
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

fn run(mut store: Store, rx: &Receiver<Job>, max_batch: usize, stats: &WriterStats) {
    let mut jobs: Vec<Job> = Vec::with_capacity(max_batch);
    // Blocks for the first job of each batch; ends when every sender is gone and the queue is empty.
    while let Ok(first) = rx.recv() {
        jobs.push(first);
        while jobs.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        stats.queued.fetch_sub(jobs.len() as u64, Ordering::Relaxed);
        // Rows and acks part ways here (moved, not copied): the rows go to the commit, the acks
        // wait for its outcome.
        let (rows, acks): (Vec<ScoredTransaction>, Vec<Ack>) = jobs.drain(..).map(|j| (j.row, j.ack)).unzip();
        let started = std::time::Instant::now();
        let result = store.insert_batch(&rows);
        stats.commit_micros.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        match result {
            Ok(outcomes) => {
                stats.batches.fetch_add(1, Ordering::Relaxed);
                stats.rows.fetch_add(rows.len() as u64, Ordering::Relaxed);
                for (ack, outcome) in acks.into_iter().zip(outcomes) {
                    ack(Ok(outcome));
                }
            }
            Err(e) => {
                let message = format!("{e:#}");
                tracing::error!(error = %message, rows = rows.len(), "results batch not stored");
                for ack in acks {
                    ack(Err(message.clone()));
                }
            }
        }
    }
}
