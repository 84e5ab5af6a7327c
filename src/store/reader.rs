//! Read-only connections for lookups made while the writer commits (WAL lets readers and the
//! one writer run at once).

use super::ScoredTransaction;
use anyhow::Context;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::Mutex;

/// A few read-only connections. A caller takes the first free one, so lookups from different
/// threads rarely wait for each other; each lookup holds its connection for microseconds.
#[derive(Debug)]
pub struct ReadPool {
    conns: Vec<Mutex<Connection>>,
}

impl ReadPool {
    /// Opens `size` read-only connections to an existing (already migrated) database.
    pub fn open(path: &Path, size: usize) -> anyhow::Result<Self> {
        let conns = (0..size.max(1))
            .map(|_| {
                let conn = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .with_context(|| format!("cannot open {} for reading", path.display()))?;
                conn.busy_timeout(std::time::Duration::from_secs(5))?;
                Ok(Mutex::new(conn))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { conns })
    }

    /// Runs `f` on a free connection (or waits for the first one if all are busy).
    pub fn with<T>(&self, f: impl FnOnce(&Connection) -> anyhow::Result<T>) -> anyhow::Result<T> {
        for conn in &self.conns {
            if let Ok(guard) = conn.try_lock() {
                return f(&guard);
            }
        }
        // A panic while holding a connection cannot leave it half-written: reads only.
        let guard = self.conns[0].lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&guard)
    }

    /// The stored decision for `txn_id`, if any.
    /// `Ok` if the database answers a read.
    pub fn ping(&self) -> anyhow::Result<()> {
        self.with(|c| {
            Ok(c.query_row("SELECT 1 FROM results LIMIT 1", [], |_| Ok(()))
                .map(|_| ())
                .or_else(|e| if e == rusqlite::Error::QueryReturnedNoRows { Ok(()) } else { Err(e) })?)
        })
    }

    pub fn get(&self, txn_id: &str) -> anyhow::Result<Option<ScoredTransaction>> {
        self.with(|conn| super::get(conn, txn_id))
    }
}
