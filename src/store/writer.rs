//! The single writer: results arrive over a bounded channel and are committed in groups.
//!
//! Each commit takes whatever is waiting (up to `max_batch`), so under load one fsync covers
//! many results, and when idle a lone result is committed at once. Every result's `ack` is called
//! only after its batch has committed: an acknowledged result is durable ("persist before
//! acknowledge"). The ack is a plain callback, so async callers can pass a oneshot sender.
//!
//! A batch that fails (the database went away: a PostgreSQL restart, a network cut) is retried
//! with backoff for up to the writer's `retry_for`; meanwhile results queue up to the channel's
//! capacity and then `submit` blocks, which is the back-pressure callers (HTTP handlers, the
//! Kafka worker's bounded in-flight window) feel. Only after `retry_for` do the acks carry the
//! error.
//!
//! On SQLite the writer's commits do not copy the WAL back into the database file: a
//! [`Checkpointer`] thread does, and the writer finishes the copy between two batches when it
//! asks (`checkpointer.rs`).

use super::{CheckpointPolicy, Checkpointer, Outcome, ScoredTransaction, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
    /// Failed commit attempts (each retried until the writer's `retry_for` runs out).
    pub failures: AtomicU64,
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
    /// A failing batch is retried for up to `retry_for` before its results are failed.
    pub fn spawn(store: Store, capacity: usize, max_batch: usize, retry_for: Duration) -> Self {
        Self::spawn_with(store, capacity, max_batch, retry_for, CheckpointPolicy::default())
    }

    /// [`spawn`](Self::spawn) with SQLite's checkpoints run on `checkpoints`' schedule.
    pub fn spawn_with(
        mut store: Store,
        capacity: usize,
        max_batch: usize,
        retry_for: Duration,
        checkpoints: CheckpointPolicy,
    ) -> Self {
        // Without the thread the commits keep checkpointing themselves: slower tails, nothing lost.
        let checkpointer = store.hand_checkpoints_off(checkpoints).unwrap_or_else(|e| {
            tracing::warn!(error = %format!("{e:#}"), "WAL checkpoints stay on the commits");
            None
        });
        let (tx, rx) = sync_channel(capacity.max(1));
        let stats = Arc::new(WriterStats::default());
        let thread_stats = Arc::clone(&stats);
        let handle = std::thread::Builder::new()
            .name("aegis-store-writer".into())
            .spawn(move || run(store, checkpointer, &rx, max_batch.max(1), retry_for, &thread_stats))
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

fn run(
    mut store: Store,
    checkpointer: Option<Checkpointer>,
    rx: &Receiver<Job>,
    max_batch: usize,
    retry_for: Duration,
    stats: &WriterStats,
) {
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
        let started = Instant::now();
        let result = commit(&mut store, &rows, retry_for, stats);
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
        if checkpointer.as_ref().is_some_and(Checkpointer::restart_due)
            && let Err(e) = store.checkpoint_wal()
        {
            tracing::warn!(error = %format!("{e:#}"), "WAL checkpoint failed");
        }
    }
}

/// Longest wait between two attempts at a failing batch.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Inserts `rows`, retrying a failure with backoff until `retry_for` has passed since the first.
fn commit(
    store: &mut Store,
    rows: &[ScoredTransaction],
    retry_for: Duration,
    stats: &WriterStats,
) -> anyhow::Result<Vec<Outcome>> {
    let first_failure = Instant::now();
    let mut backoff = Duration::from_millis(50);
    let mut retried = false;
    loop {
        match store.insert_batch(rows) {
            Ok(outcomes) if retried => return Ok(outcomes.into_iter().zip(rows).map(committed_before).collect()),
            Ok(outcomes) => return Ok(outcomes),
            Err(e) => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                if first_failure.elapsed() >= retry_for {
                    return Err(e.context(format!("the results store failed for {retry_for:?}")));
                }
                tracing::warn!(error = %format!("{e:#}"), retry_in = ?backoff, rows = rows.len(), "results batch not stored; retrying");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                retried = true;
            }
        }
    }
}

/// On a retry, a row found stored exactly as submitted was stored by the attempt that "failed"
/// (the commit went through but its answer was lost with the connection): it is this
/// submission's insert, not somebody else's earlier decision.
fn committed_before((outcome, row): (Outcome, &ScoredTransaction)) -> Outcome {
    match outcome {
        Outcome::Duplicate(stored) if *stored == *row => Outcome::Inserted,
        other => other,
    }
}
