//! The results store: every scored transaction, in SQLite (`results.db`).
//!
//! One row per `txn_id` (unique): writes are idempotent, and a repeated `txn_id` gets
//! the decision stored the first time. The database runs in WAL mode with `synchronous=FULL`,
//! so a committed batch survives a crash of the process or of the machine; [`Writer`] groups
//! many results into one commit and acknowledges each only after that commit.
//! Card numbers never reach this module: it stores the card token and the masked number.

mod alerts;
mod counters;
mod dashboard;
mod reader;
mod results;
mod writer;

pub use alerts::{AlertStatus, StoredAlert};
pub use dashboard::{CountryCount, Cursor, Filter, MAX_PAGE, MinuteCount, Stats, TransactionRow};
pub use reader::ReadPool;
pub use results::Results;
pub use writer::{Ack, Writer, WriterClosed, WriterStats};

use crate::domain::Action;
use crate::domain::{CardToken, Country, ScoredTransaction, Transaction};
use anyhow::Context;
use counters::Counters;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;

/// The schema version this build writes; older databases are migrated on open.
pub const SCHEMA_VERSION: i64 = 5;

const MIGRATIONS: [&str; 5] = [
    "
    CREATE TABLE results (
        txn_id            TEXT PRIMARY KEY,
        timestamp         INTEGER NOT NULL,
        amount            REAL NOT NULL,
        country           TEXT NOT NULL,
        merchant          TEXT NOT NULL,
        merchant_category TEXT,
        card_masked       TEXT NOT NULL,
        card_token        TEXT NOT NULL,
        score             REAL NOT NULL,
        if_score          REAL NOT NULL,
        ae_mse            REAL NOT NULL,
        action            TEXT NOT NULL CHECK (action IN ('allow', 'review', 'block')),
        reasons           TEXT NOT NULL,
        model_version     TEXT NOT NULL,
        received_at       INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX results_received_at ON results (received_at);
    CREATE INDEX results_action_received_at ON results (action, received_at);
",
    "
    CREATE TABLE alerts (
        txn_id      TEXT NOT NULL,
        webhook     TEXT NOT NULL,
        status      TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts    INTEGER NOT NULL,
        last_error  TEXT,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        PRIMARY KEY (txn_id, webhook)
    ) WITHOUT ROWID;
    CREATE INDEX alerts_status ON alerts (status, updated_at);
",
    "
    ALTER TABLE results ADD COLUMN latency_us INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX results_flagged ON results (received_at) WHERE action != 'allow';
    -- Counters kept up to date by every insert, so the dashboard never scans the results.
    CREATE TABLE stats_minute (
        minute       INTEGER PRIMARY KEY,  -- received_at / 60000
        transactions INTEGER NOT NULL,
        reviewed     INTEGER NOT NULL,
        blocked      INTEGER NOT NULL
    );
    CREATE TABLE stats_country (
        country      TEXT PRIMARY KEY,
        transactions INTEGER NOT NULL,
        flagged      INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO stats_minute
        SELECT received_at / 60000, COUNT(*), SUM(action = 'review'), SUM(action = 'block') FROM results GROUP BY 1;
    INSERT INTO stats_country SELECT country, COUNT(*), SUM(action != 'allow') FROM results GROUP BY 1;
",
    // Rows are appended in arrival order (rowid table) and only the narrow txn_id index takes
    // random keys: with realistic (random) txn_ids, a WITHOUT ROWID table keyed by txn_id
    // scattered every insert over the whole table (BENCHMARKS.md, "Results store").
    "
    CREATE TABLE results_v4 (
        id                INTEGER PRIMARY KEY,
        txn_id            TEXT NOT NULL UNIQUE,
        timestamp         INTEGER NOT NULL,
        amount            REAL NOT NULL,
        country           TEXT NOT NULL,
        merchant          TEXT NOT NULL,
        merchant_category TEXT,
        card_masked       TEXT NOT NULL,
        card_token        TEXT NOT NULL,
        score             REAL NOT NULL,
        if_score          REAL NOT NULL,
        ae_mse            REAL NOT NULL,
        action            TEXT NOT NULL CHECK (action IN ('allow', 'review', 'block')),
        reasons           TEXT NOT NULL,
        model_version     TEXT NOT NULL,
        received_at       INTEGER NOT NULL,
        latency_us        INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO results_v4 (txn_id, timestamp, amount, country, merchant, merchant_category, card_masked,
            card_token, score, if_score, ae_mse, action, reasons, model_version, received_at, latency_us)
        SELECT txn_id, timestamp, amount, country, merchant, merchant_category, card_masked, card_token, score,
            if_score, ae_mse, action, reasons, model_version, received_at, latency_us
        FROM results ORDER BY received_at, txn_id;
    DROP TABLE results;
    ALTER TABLE results_v4 RENAME TO results;
    -- Two indexes serve every dashboard page: all results, and flagged ones (review and block
    -- pages filter it; allow pages filter the first, where nearly every row matches).
    CREATE INDEX results_received_at ON results (received_at, txn_id);
    CREATE INDEX results_flagged ON results (received_at, txn_id) WHERE action != 'allow';
",
    // v5: the supervised model's fraud probability (NULL for bundles without one).
    "ALTER TABLE results ADD COLUMN fraud_probability REAL;",
];

/// What happened to one result handed to the store.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Stored now.
    Inserted,
    /// The `txn_id` was already stored: this is the earlier decision, unchanged.
    Duplicate(Box<ScoredTransaction>),
}

/// A connection to the results database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates its schema.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let conn =
            Connection::open(path).with_context(|| format!("cannot open the results database {}", path.display()))?;
        // First, so that processes opening the database together wait for each other.
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        set_wal(&conn).with_context(|| format!("cannot switch {} to WAL mode", path.display()))?;
        conn.pragma_update(None, "synchronous", "FULL").context("cannot set synchronous=FULL")?;
        // 64 MiB of page cache (default 2 MiB): inserts of random txn_ids touch pages all over the
        // txn_id index, and past a few hundred thousand results most of them missed the cache.
        conn.pragma_update(None, "cache_size", -65_536).context("cannot set the page cache size")?;
        let mut store = Self { conn };
        store.migrate().with_context(|| format!("cannot migrate {}", path.display()))?;
        Ok(store)
    }

    /// Brings the schema to [`SCHEMA_VERSION`] in one write transaction: a second process
    /// opening the same new database waits, then finds it migrated.
    fn migrate(&mut self) -> anyhow::Result<()> {
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        anyhow::ensure!(
            version <= SCHEMA_VERSION,
            "the database has schema version {version}, newer than this aegis understands ({SCHEMA_VERSION})"
        );
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        for sql in MIGRATIONS.iter().skip(version as usize) {
            tx.execute_batch(sql)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        Ok(())
    }

    /// Stores `rows` in one transaction. A row whose `txn_id` is already stored (earlier, or
    /// earlier in the same batch) is not written again; its outcome carries the stored row.
    pub fn insert_batch(&mut self, rows: &[ScoredTransaction]) -> anyhow::Result<Vec<Outcome>> {
        // IMMEDIATE takes the write lock up front (waiting up to the busy timeout), so several
        // processes can share one database (Kafka workers and `serve`).
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut outcomes = Vec::with_capacity(rows.len());
        let mut counters = Counters::default();
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO results (txn_id, timestamp, amount, country, merchant, merchant_category, card_masked,
                    card_token, score, if_score, ae_mse, action, reasons, model_version, received_at, latency_us,
                    fraud_probability)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
                 ON CONFLICT (txn_id) DO NOTHING",
            )?;
            for r in rows {
                let reasons = serde_json::to_string(&r.reasons)?;
                let changed = insert.execute(params![
                    r.txn_id,
                    r.timestamp,
                    r.amount,
                    r.country,
                    r.merchant,
                    r.merchant_category,
                    r.card_masked,
                    r.card_token,
                    r.score,
                    r.if_score,
                    r.ae_mse,
                    r.action.as_str(),
                    reasons,
                    r.model_version,
                    r.received_at,
                    r.latency_us,
                    r.fraud_probability,
                ])?;
                outcomes.push(if changed == 1 {
                    counters.add(r);
                    Outcome::Inserted
                } else {
                    let stored = get(&tx, &r.txn_id)?.context("a conflicting row vanished")?;
                    Outcome::Duplicate(Box::new(stored))
                });
            }
        }
        counters.write(&tx)?;
        tx.commit()?;
        Ok(outcomes)
    }

    /// The stored decision for `txn_id`, if any.
    pub fn get(&self, txn_id: &str) -> anyhow::Result<Option<ScoredTransaction>> {
        get(&self.conn, txn_id)
    }

    /// Calls `f` with every stored transaction from `since` (Unix seconds) on, oldest first,
    /// so that a restarted server can rebuild each card's history. Rows whose card token is not
    /// in the current format are skipped. Returns how many were replayed.
    pub fn replay(&self, since: i64, mut f: impl FnMut(Transaction)) -> anyhow::Result<u64> {
        let mut stmt = self.conn.prepare(
            "SELECT txn_id, timestamp, card_token, amount, country, merchant, merchant_category
             FROM results WHERE timestamp >= ?1 ORDER BY timestamp, received_at",
        )?;
        let mut rows = stmt.query([since])?;
        let mut n = 0;
        while let Some(r) = rows.next()? {
            let token: String = r.get(2)?;
            let country: String = r.get(4)?;
            let (Some(card), Some(country)) = (CardToken::from_hex(&token), Country::parse(&country)) else {
                continue;
            };
            f(Transaction {
                txn_id: r.get(0)?,
                timestamp: r.get(1)?,
                card,
                amount: r.get(3)?,
                country,
                merchant: r.get(5)?,
                merchant_category: r.get(6)?,
            });
            n += 1;
        }
        Ok(n)
    }

    /// The newest transaction time stored, if any.
    pub fn latest_timestamp(&self) -> anyhow::Result<Option<i64>> {
        Ok(self.conn.query_row("SELECT MAX(timestamp) FROM results", [], |r| r.get(0))?)
    }

    pub fn count(&self) -> anyhow::Result<u64> {
        let n: i64 = self.conn.query_row("SELECT COUNT(*) FROM results", [], |r| r.get(0))?;
        Ok(n.unsigned_abs())
    }
}

/// `PRAGMA journal_mode=WAL`, retried for up to 5 s while another process holds the new database:
/// the journal-mode switch can answer "database is locked" at once instead of waiting on the busy
/// timeout (seen when two Kafka workers created one database together).
fn set_wal(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

pub(crate) fn get(conn: &Connection, txn_id: &str) -> anyhow::Result<Option<ScoredTransaction>> {
    let mut stmt = conn.prepare_cached(
        "SELECT txn_id, timestamp, amount, country, merchant, merchant_category, card_masked, card_token, score,
                if_score, ae_mse, action, reasons, model_version, received_at, latency_us, fraud_probability
         FROM results WHERE txn_id = ?1",
    )?;
    let row = stmt
        .query_row([txn_id], |r| {
            Ok((
                ScoredTransaction {
                    txn_id: r.get(0)?,
                    timestamp: r.get(1)?,
                    amount: r.get(2)?,
                    country: r.get(3)?,
                    merchant: r.get(4)?,
                    merchant_category: r.get(5)?,
                    card_masked: r.get(6)?,
                    card_token: r.get(7)?,
                    score: r.get(8)?,
                    if_score: r.get(9)?,
                    ae_mse: r.get(10)?,
                    action: Action::Allow,
                    reasons: Vec::new(),
                    model_version: r.get(13)?,
                    received_at: r.get(14)?,
                    latency_us: r.get(15)?,
                    fraud_probability: r.get(16)?,
                },
                r.get::<_, String>(11)?,
                r.get::<_, String>(12)?,
            ))
        })
        .optional()?;
    row.map(|(mut result, action, reasons)| {
        result.action = action.parse().map_err(anyhow::Error::msg)?;
        result.reasons = serde_json::from_str(&reasons).context("stored reasons are not a JSON list")?;
        Ok(result)
    })
    .transpose()
}

#[cfg(test)]
mod tests;
