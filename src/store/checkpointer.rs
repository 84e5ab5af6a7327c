//! SQLite's WAL checkpoints, moved off the commit path.
//!
//! By default the connection whose commit takes the WAL past 1,000 pages copies the WAL back
//! into the database file and fsyncs it, inside that commit: with the group-commit writer that
//! is one `/predict` in every ~100 at 1,000 requests/s waiting for megabytes of random writes.
//! The [`Writer`](super::Writer)'s connection turns automatic checkpoints off and this thread, on
//! its own connection, runs `PRAGMA wal_checkpoint(PASSIVE)` every [`Policy::interval`]: a
//! passive checkpoint copies what no reader still needs and never blocks the writer, which keeps
//! appending to the WAL meanwhile (WAL mode lets one writer and one checkpointer run together).
//!
//! SQLite starts the WAL from its beginning again only when a writer finds all of it copied,
//! which under steady load never happens here (the writer appends while the checkpoint copies),
//! and a blocking checkpoint from this thread would starve behind back-to-back commits. So once
//! the WAL passes [`Policy::restart_frames`] this thread raises a flag and the writer, between
//! two batches, copies the little the passive checkpoints left ([`Checkpointer::restart_due`]);
//! its next commit then starts the WAL over. Measured in BENCHMARKS.md ("p99 at 1,000
//! requests/s").

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

/// When checkpoints run.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// How often the WAL is copied back into the database file.
    pub interval: Duration,
    /// WAL length (in frames, one page each) past which the writer is asked to finish the copy.
    pub restart_frames: i64,
}

impl Default for Policy {
    /// Every 250 ms; the WAL starts over past 64 MiB of 4 KiB pages.
    fn default() -> Self {
        Self { interval: Duration::from_millis(250), restart_frames: 16_384 }
    }
}

/// The checkpoint thread; dropping it stops the thread (after one last checkpoint).
#[derive(Debug)]
pub struct Checkpointer {
    restart: Arc<AtomicBool>,
    stop: Option<Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the SQLite database at `path` on a connection of its own.
    pub fn spawn(path: &Path, policy: Policy) -> anyhow::Result<Self> {
        let conn = super::open_sqlite(path)?;
        let restart = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&restart);
        let (stop, stopped) = channel();
        let handle = std::thread::Builder::new()
            .name("aegis-checkpoint".into())
            .spawn(move || run(&conn, &stopped, policy, &flag))?;
        Ok(Self { restart, stop: Some(stop), handle: Some(handle) })
    }

    /// True (once) when the WAL has grown past the policy's length: the writer should run a
    /// checkpoint itself before its next batch.
    pub fn restart_due(&self) -> bool {
        self.restart.swap(false, Ordering::Relaxed)
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

fn run(conn: &rusqlite::Connection, stopped: &Receiver<()>, policy: Policy, restart: &AtomicBool) {
    loop {
        let stop = match stopped.recv_timeout(policy.interval) {
            Err(RecvTimeoutError::Timeout) => false,
            Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
        };
        // The answer's second column is the WAL's length in frames.
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)) {
            Ok(frames) if frames > policy.restart_frames => restart.store(true, Ordering::Relaxed),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; retrying"),
        }
        if stop {
            return;
        }
    }
}
