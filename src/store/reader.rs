//! Connections for lookups made while the writer commits (SQLite's WAL, like PostgreSQL, lets
//! readers and writers run at once).

use super::ScoredTransaction;
use super::sql::{Conn, Location};
use anyhow::Context;
use rusqlite::{Connection, OpenFlags};
use std::sync::Mutex;

/// A few connections for reads. A caller takes the first free one, so lookups from different
/// threads rarely wait for each other; each lookup holds its connection for microseconds.
#[derive(Debug)]
pub struct ReadPool {
    conns: Vec<Mutex<Conn>>,
}

impl ReadPool {
    /// Opens `size` connections to an existing (already migrated) database; SQLite's are
    /// read-only.
    pub fn open(db: impl Into<Location>, size: usize) -> anyhow::Result<Self> {
        let db = db.into();
        let conns = (0..size.max(1))
            .map(|_| {
                let conn = match &db {
                    Location::Sqlite(path) => {
                        let conn = Connection::open_with_flags(
                            path,
                            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                        )
                        .with_context(|| format!("cannot open {} for reading", path.display()))?;
                        conn.busy_timeout(std::time::Duration::from_secs(5))?;
                        Conn::Sqlite(conn)
                    }
                    Location::Postgres(url) => Conn::postgres(url)?,
                };
                Ok(Mutex::new(conn))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { conns })
    }

    /// Runs `f` on a free connection (or waits for the first one if all are busy).
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Conn) -> anyhow::Result<T>) -> anyhow::Result<T> {
        for conn in &self.conns {
            if let Ok(mut guard) = conn.try_lock() {
                return f(&mut guard);
            }
        }
        // A panic while holding a connection cannot leave it half-written: reads only.
        let mut guard = self.conns[0].lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    /// `Ok` if the database answers a read.
    pub fn ping(&self) -> anyhow::Result<()> {
        self.with(|c| c.query_opt("SELECT 1 FROM results LIMIT 1", &[], |_| Ok(())).map(|_| ()))
    }

    /// The stored decision for `txn_id`, if any.
    pub fn get(&self, txn_id: &str) -> anyhow::Result<Option<ScoredTransaction>> {
        self.with(|conn| super::get(conn, txn_id))
    }

    /// The stored decisions among `txn_ids`, by id (one query on PostgreSQL).
    pub fn get_many(&self, txn_ids: &[&str]) -> anyhow::Result<std::collections::HashMap<String, ScoredTransaction>> {
        self.with(|conn| super::get_many(conn, txn_ids))
    }
}
