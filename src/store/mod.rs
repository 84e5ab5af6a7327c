//! The results store: every scored transaction, in SQLite (`results.db`).
//!
//! One row per `txn_id` (unique): writes are idempotent, and a repeated `txn_id` gets
//! the decision stored the first time. The database runs in WAL mode with `synchronous=FULL`,
//! so a committed batch survives a crash of the process or of the machine; [`Writer`] groups
//! many results into one commit and acknowledges each only after that commit.
//! Card numbers never reach this module: it stores the card token and the masked number.

mod alerts;
mod column;
mod counters;
mod dashboard;
mod labels;
mod lists;
mod reader;
mod results;
mod training;
mod writer;

pub use alerts::{AlertStatus, StoredAlert};
pub use dashboard::{
    Case, CountryCount, Cursor, Filter, MAX_PAGE, MinuteCount, Stats, TransactionDetail, TransactionRow,
};
pub use labels::{LabelIn, LabelOutcome, LabelStats, StoredLabel, VerdictChange};
pub use lists::ListItem;
pub use reader::ReadPool;
pub use results::Results;
pub use training::Compared;
pub use writer::{Ack, Writer, WriterClosed, WriterStats};

use crate::domain::{ScoredTransaction, Transaction};
use anyhow::Context;
use counters::Counters;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;

/// The schema version this build writes; older databases are migrated on open.
pub const SCHEMA_VERSION: i64 = 6;

const MIGRATIONS: [&str; 6] = [
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
    // v6: the analyst loop. Rules that matched, the shadow model's opinion, the verdict (the
    // labels' outcome, kept on the row so the review queue is an index walk), the card index for
    // the case view, labels, verdict changes in order (what other processes and restarts
    // replay), label counters, and named lists.
    "
    ALTER TABLE results ADD COLUMN rules TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE results ADD COLUMN shadow_score REAL;
    ALTER TABLE results ADD COLUMN shadow_action TEXT;
    ALTER TABLE results ADD COLUMN shadow_version TEXT;
    ALTER TABLE results ADD COLUMN verdict TEXT CHECK (verdict IN ('fraud', 'legit'));
    CREATE INDEX results_card ON results (card_token, timestamp);
    CREATE INDEX results_queue ON results (received_at, txn_id) WHERE action != 'allow' AND verdict IS NULL;
    CREATE TABLE labels (
        txn_id      TEXT NOT NULL,
        source      TEXT NOT NULL,
        label       TEXT NOT NULL CHECK (label IN ('fraud', 'legit')),
        reported_at INTEGER NOT NULL,
        note        TEXT,
        stored_at   INTEGER NOT NULL,
        PRIMARY KEY (txn_id, source)
    ) WITHOUT ROWID;
    CREATE TABLE verdict_changes (
        seq      INTEGER PRIMARY KEY,
        txn_id   TEXT NOT NULL,
        verdict  TEXT NOT NULL CHECK (verdict IN ('fraud', 'legit')),
        previous TEXT,
        known_at INTEGER NOT NULL,
        origin   TEXT NOT NULL
    );
    CREATE INDEX verdict_changes_known_at ON verdict_changes (known_at);
    CREATE TABLE label_stats (
        id              INTEGER PRIMARY KEY CHECK (id = 1),
        confirmed_fraud INTEGER NOT NULL,
        reviewed_flags  INTEGER NOT NULL,
        confirmed_flags INTEGER NOT NULL,
        lists_version   INTEGER NOT NULL
    );
    INSERT INTO label_stats VALUES (1, 0, 0, 0, 0);
    CREATE TABLE list_items (
        list     TEXT NOT NULL,
        item     TEXT NOT NULL,
        note     TEXT,
        added_at INTEGER NOT NULL,
        PRIMARY KEY (list, item)
    ) WITHOUT ROWID;
",
];

/// One step of stored history, in the order replay hands them out.
#[derive(Debug, Clone, PartialEq)]
pub enum History {
    Transaction(Transaction),
    Verdict(VerdictChange),
}

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
                    fraud_probability, rules, shadow_score, shadow_action, shadow_version)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)
                 ON CONFLICT (txn_id) DO NOTHING",
            )?;
            for r in rows {
                let reasons = serde_json::to_string(&r.reasons)?;
                let rules = serde_json::to_string(&r.rules)?;
                let shadow = r.shadow.as_ref();
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
                    rules,
                    shadow.map(|s| s.score),
                    shadow.map(|s| s.action.as_str()),
                    shadow.map(|s| s.model_version.as_str()),
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
    /// and every verdict change known from `since` on, each before the first transaction after
    /// it became known — so that a restarted server rebuilds card and merchant state as replay
    /// does. Rows whose card token is not in the current format are skipped. Returns how many
    /// transactions were replayed.
    pub fn replay(&self, since: i64, mut f: impl FnMut(History)) -> anyhow::Result<u64> {
        let mut changes = self.verdict_changes_known_since(since)?.into_iter().peekable();
        let mut stmt = self.conn.prepare(
            "SELECT txn_id, timestamp, card_token, amount, country, merchant, merchant_category
             FROM results WHERE timestamp >= ?1 ORDER BY timestamp, received_at",
        )?;
        let mut rows = stmt.query([since])?;
        let mut n = 0;
        while let Some(r) = rows.next()? {
            let Some(txn) = labels::transaction(r, 0)? else { continue };
            while let Some(c) = changes.next_if(|c| c.known_at < txn.timestamp) {
                f(History::Verdict(c));
            }
            f(History::Transaction(txn));
            n += 1;
        }
        changes.for_each(|c| f(History::Verdict(c)));
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

/// The columns [`scored_row`] reads, in its order.
pub(crate) const SCORED_COLUMNS: &str = "txn_id, timestamp, amount, country, merchant, merchant_category, card_masked,
    card_token, score, if_score, ae_mse, action, reasons, model_version, received_at, latency_us, fraud_probability,
    rules, shadow_score, shadow_action, shadow_version";

pub(crate) fn get(conn: &Connection, txn_id: &str) -> anyhow::Result<Option<ScoredTransaction>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {SCORED_COLUMNS} FROM results WHERE txn_id = ?1"))?;
    Ok(stmt.query_row([txn_id], scored_row).optional()?)
}

/// A stored result, from a row selected with [`SCORED_COLUMNS`].
pub(crate) fn scored_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ScoredTransaction> {
    Ok(ScoredTransaction {
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
        action: column::parsed(r, 11)?,
        reasons: column::json_list(r, 12)?,
        model_version: r.get(13)?,
        received_at: r.get(14)?,
        latency_us: r.get(15)?,
        fraud_probability: r.get(16)?,
        rules: column::json_list(r, 17)?,
        shadow: column::shadow(r, 18)?,
    })
}

#[cfg(test)]
mod tests;
