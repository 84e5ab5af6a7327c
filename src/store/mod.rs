//! The results store: every scored transaction, in SQLite (`results.db`, the embedded default)
//! or PostgreSQL (`--db postgres://…`, shared by workers on several machines).
//!
//! One row per `txn_id` (unique): writes are idempotent, and a repeated `txn_id` gets
//! the decision stored the first time. SQLite runs in WAL mode with `synchronous=FULL` and
//! PostgreSQL commits with its default `synchronous_commit=on`, so a committed batch survives a
//! crash of the process or of the machine; [`Writer`] groups many results into one commit and
//! acknowledges each only after that commit. Statements are written once for both databases
//! ([`sql`]); only the schema DDL is written per backend.
//! Card numbers never reach this module: it stores the card token and the masked number.

mod alerts;
mod checkpointer;
mod checkpoints;
mod column;
mod counters;
mod dashboard;
mod labels;
mod lists;
mod reader;
mod results;
pub(crate) mod sql;
mod training;
mod writer;

pub use alerts::{AlertStatus, StoredAlert};
pub(crate) use checkpointer::Checkpointer;
pub use checkpointer::Policy as CheckpointPolicy;
pub use checkpoints::Checkpoint;
pub use counters::EntityDay;
pub use dashboard::{
    Case, CountryCount, Cursor, Filter, MAX_PAGE, MinuteCount, Stats, TransactionDetail, TransactionRow,
};
pub use labels::{LabelIn, LabelOutcome, LabelStats, StoredLabel, VerdictChange};
pub use lists::ListItem;
pub use reader::ReadPool;
pub use results::Results;
pub use sql::Location;
pub use training::Compared;
pub(crate) use training::scored_by_shadow;
pub use writer::{Ack, Writer, WriterClosed, WriterStats};

use crate::domain::fields::Schema;
use crate::domain::{ScoredTransaction, Transaction};
use anyhow::Context;
use counters::Counters;
use rusqlite::Connection;
use sql::{Backend, Conn, Row, args};

/// The columns [`labels::transaction`] reads, in its order.
macro_rules! transaction_columns {
    () => {
        "txn_id, timestamp, card_token, amount, country, merchant, merchant_category, card_masked, fields"
    };
}
pub(crate) use transaction_columns;

/// The schema version this build writes; older databases are migrated on open.
pub const SCHEMA_VERSION: i64 = 10;

/// SQLite's schema history: migration `i` takes a database from version `i` to `i + 1`.
/// v8's backfill of `entity_days` from the stored results, the same on both backends.
macro_rules! entity_days_backfill {
    () => {
        "
    CREATE INDEX entity_days_day ON entity_days (day);
    INSERT INTO entity_days SELECT 'merchant', merchant, timestamp / 86400, COUNT(*) FROM results GROUP BY 2, 3;
    INSERT INTO entity_days SELECT 'country', country, timestamp / 86400, COUNT(*) FROM results GROUP BY 2, 3;
    INSERT INTO entity_days
        SELECT 'category', COALESCE(merchant_category, ''), timestamp / 86400, COUNT(*) FROM results GROUP BY 2, 3;
    INSERT INTO entity_days SELECT 'all', '', timestamp / 86400, COUNT(*) FROM results GROUP BY 3;
"
    };
}

const MIGRATIONS: [&str; 10] = [
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
    // v7: card-state checkpoints of Kafka partitions (`aegis consume`): the partition's cards'
    // states (features::codec) and the offset to resume from.
    "
    CREATE TABLE card_checkpoints (
        consumer_group TEXT NOT NULL,
        topic          TEXT NOT NULL,
        partition      INTEGER NOT NULL,
        next_offset    INTEGER NOT NULL,
        cards          INTEGER NOT NULL,
        state          BLOB NOT NULL,
        taken_at       INTEGER NOT NULL,
        PRIMARY KEY (consumer_group, topic, partition)
    ) WITHOUT ROWID;
",
    // v8: daily transaction counts per merchant, country, category and overall, kept by every
    // insert (like the dashboard counters), so that workers share the state that spans cards.
    concat!(
        "
    CREATE TABLE entity_days (
        kind   TEXT NOT NULL,
        entity TEXT NOT NULL,
        day    INTEGER NOT NULL,
        txns   INTEGER NOT NULL,
        PRIMARY KEY (kind, entity, day)
    ) WITHOUT ROWID;
",
        entity_days_backfill!()
    ),
    // v9: the card index's integer key ([`card_key`]); filled and indexed by [`Store::migrate`].
    "ALTER TABLE results ADD COLUMN card_key INTEGER NOT NULL DEFAULT 0;",
    // v10: the declared fields of `train --schema`, as a JSON object (PII already tokenized).
    "ALTER TABLE results ADD COLUMN fields TEXT;",
];

/// PostgreSQL's schema history, as (version reached, DDL): PostgreSQL support started at
/// version 6, whose schema the first entry creates whole. Types follow SQLite's: 64-bit
/// integers, double-precision reals (scores are `f32`s, stored exactly), text.
const PG_MIGRATIONS: [(i64, &str); 5] = [
    (
        6,
        "
    CREATE TABLE results (
        id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        txn_id            TEXT NOT NULL UNIQUE,
        timestamp         BIGINT NOT NULL,
        amount            DOUBLE PRECISION NOT NULL,
        country           TEXT NOT NULL,
        merchant          TEXT NOT NULL,
        merchant_category TEXT,
        card_masked       TEXT NOT NULL,
        card_token        TEXT NOT NULL,
        score             DOUBLE PRECISION NOT NULL,
        if_score          DOUBLE PRECISION NOT NULL,
        ae_mse            DOUBLE PRECISION NOT NULL,
        action            TEXT NOT NULL CHECK (action IN ('allow', 'review', 'block')),
        reasons           TEXT NOT NULL,
        model_version     TEXT NOT NULL,
        received_at       BIGINT NOT NULL,
        latency_us        BIGINT NOT NULL DEFAULT 0,
        fraud_probability DOUBLE PRECISION,
        rules             TEXT NOT NULL DEFAULT '[]',
        shadow_score      DOUBLE PRECISION,
        shadow_action     TEXT,
        shadow_version    TEXT,
        verdict           TEXT CHECK (verdict IN ('fraud', 'legit'))
    );
    CREATE INDEX results_received_at ON results (received_at, txn_id);
    CREATE INDEX results_flagged ON results (received_at, txn_id) WHERE action <> 'allow';
    CREATE INDEX results_card ON results (card_token, timestamp);
    CREATE INDEX results_queue ON results (received_at, txn_id) WHERE action <> 'allow' AND verdict IS NULL;
    CREATE TABLE alerts (
        txn_id      TEXT NOT NULL,
        webhook     TEXT NOT NULL,
        status      TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts    BIGINT NOT NULL,
        last_error  TEXT,
        created_at  BIGINT NOT NULL,
        updated_at  BIGINT NOT NULL,
        PRIMARY KEY (txn_id, webhook)
    );
    CREATE INDEX alerts_status ON alerts (status, updated_at);
    CREATE TABLE stats_minute (
        minute       BIGINT PRIMARY KEY,
        transactions BIGINT NOT NULL,
        reviewed     BIGINT NOT NULL,
        blocked      BIGINT NOT NULL
    );
    CREATE TABLE stats_country (
        country      TEXT PRIMARY KEY,
        transactions BIGINT NOT NULL,
        flagged      BIGINT NOT NULL
    );
    CREATE TABLE labels (
        txn_id      TEXT NOT NULL,
        source      TEXT NOT NULL,
        label       TEXT NOT NULL CHECK (label IN ('fraud', 'legit')),
        reported_at BIGINT NOT NULL,
        note        TEXT,
        stored_at   BIGINT NOT NULL,
        PRIMARY KEY (txn_id, source)
    );
    CREATE TABLE verdict_changes (
        seq      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        txn_id   TEXT NOT NULL,
        verdict  TEXT NOT NULL CHECK (verdict IN ('fraud', 'legit')),
        previous TEXT,
        known_at BIGINT NOT NULL,
        origin   TEXT NOT NULL
    );
    CREATE INDEX verdict_changes_known_at ON verdict_changes (known_at);
    CREATE INDEX verdict_changes_txn ON verdict_changes (txn_id);
    CREATE TABLE label_stats (
        id              BIGINT PRIMARY KEY CHECK (id = 1),
        confirmed_fraud BIGINT NOT NULL,
        reviewed_flags  BIGINT NOT NULL,
        confirmed_flags BIGINT NOT NULL,
        lists_version   BIGINT NOT NULL
    );
    INSERT INTO label_stats VALUES (1, 0, 0, 0, 0);
    CREATE TABLE list_items (
        list     TEXT NOT NULL,
        item     TEXT NOT NULL,
        note     TEXT,
        added_at BIGINT NOT NULL,
        PRIMARY KEY (list, item)
    );
",
    ),
    (
        7,
        "
    CREATE TABLE card_checkpoints (
        consumer_group TEXT NOT NULL,
        topic          TEXT NOT NULL,
        partition      BIGINT NOT NULL,
        next_offset    BIGINT NOT NULL,
        cards          BIGINT NOT NULL,
        state          BYTEA NOT NULL,
        taken_at       BIGINT NOT NULL,
        PRIMARY KEY (consumer_group, topic, partition)
    );
",
    ),
    (
        8,
        concat!(
            "
    CREATE TABLE entity_days (
        kind   TEXT NOT NULL,
        entity TEXT NOT NULL,
        day    BIGINT NOT NULL,
        txns   BIGINT NOT NULL,
        PRIMARY KEY (kind, entity, day)
    );
",
            entity_days_backfill!()
        ),
    ),
    (9, "ALTER TABLE results ADD COLUMN card_key BIGINT NOT NULL DEFAULT 0;"),
    (10, "ALTER TABLE results ADD COLUMN fields TEXT;"),
];

/// v9's index, built once the keys of stored rows are filled in ([`backfill_card_keys`]): it
/// replaces the index on `(card_token, timestamp)`.
const CARD_KEY_INDEX: &str = "
    DROP INDEX results_card;
    CREATE INDEX results_card ON results (card_key, timestamp);
";

/// The card index's key of a card token: the first 8 bytes of its SHA-256, big-endian (as
/// PostgreSQL's `sha256(…)::bit(64)::bigint` reads them). The case view finds
/// a card's rows by it (and then compares the token itself). An index on this integer instead
/// of the 32-character token makes the writer's inserts cheaper (BENCHMARKS.md, "card index");
/// a hash rather than a prefix of the token, because tokens a client sends itself may share
/// long prefixes. Stored in every row: it must never change.
pub(crate) fn card_key(card_token: &str) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(card_token.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// v9: the card key of every stored row. PostgreSQL computes it in one statement (its
/// `sha256`); SQLite has no SHA-256, so it gets one `UPDATE` per distinct card, found through
/// the old index on the token.
fn backfill_card_keys(c: &mut Conn) -> anyhow::Result<()> {
    match c.backend() {
        Backend::Postgres => {
            c.batch(
                "UPDATE results SET card_key =
                    ('x' || encode(substr(sha256(convert_to(card_token, 'UTF8')), 1, 8), 'hex'))::bit(64)::bigint",
            )?;
        }
        Backend::Sqlite => {
            let tokens = c.query("SELECT DISTINCT card_token FROM results", &[], |r| r.string(0))?;
            for token in &tokens {
                c.execute("UPDATE results SET card_key = ?1 WHERE card_token = ?2", args![card_key(token), token])?;
            }
        }
    }
    c.batch(CARD_KEY_INDEX)
}

/// Advisory-lock keys (PostgreSQL): one migrator at a time, one label or list writer at a time.
pub(crate) mod locks {
    pub const MIGRATE: i64 = 0x6165_6769_735f_6d67; // "aegis_mg"
    pub const LABELS: i64 = 0x6165_6769_735f_6c62; // "aegis_lb"
}

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
    conn: Conn,
}

impl Store {
    /// Opens the database at `db` (creating a SQLite file if needed) and migrates its schema.
    pub fn open(db: impl Into<Location>) -> anyhow::Result<Self> {
        let db = db.into();
        let conn = match &db {
            Location::Sqlite(path) => Conn::Sqlite(
                open_sqlite(path).with_context(|| format!("cannot open the results database {}", path.display()))?,
            ),
            Location::Postgres(url) => Conn::postgres(url)?,
        };
        let mut store = Self { conn };
        store.migrate().with_context(|| format!("cannot migrate {db}"))?;
        Ok(store)
    }

    /// Brings the schema to [`SCHEMA_VERSION`] in one write transaction: a second process
    /// opening the same new database waits (SQLite's write lock, PostgreSQL's advisory lock),
    /// then finds it migrated.
    fn migrate(&mut self) -> anyhow::Result<()> {
        let backend = self.conn.backend();
        self.conn.transaction(Some(locks::MIGRATE), |c| {
            let version = match backend {
                Backend::Sqlite => c.query_one("PRAGMA user_version", &[], |r| r.int(0))?,
                Backend::Postgres => {
                    c.batch("CREATE TABLE IF NOT EXISTS aegis_schema (version BIGINT NOT NULL)")?;
                    c.query_opt("SELECT MAX(version) FROM aegis_schema", &[], |r| r.opt_int(0))?.flatten().unwrap_or(0)
                }
            };
            anyhow::ensure!(
                version <= SCHEMA_VERSION,
                "the database has schema version {version}, newer than this aegis understands ({SCHEMA_VERSION})"
            );
            if version == SCHEMA_VERSION {
                return Ok(());
            }
            match backend {
                Backend::Sqlite => {
                    for sql in MIGRATIONS.iter().skip(version as usize) {
                        c.batch(sql)?;
                    }
                }
                Backend::Postgres => {
                    for (_, sql) in PG_MIGRATIONS.iter().filter(|(v, _)| *v > version) {
                        c.batch(sql)?;
                    }
                }
            }
            if version < 9 {
                backfill_card_keys(c)?;
            }
            match backend {
                Backend::Sqlite => c.batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}")),
                Backend::Postgres => {
                    c.execute("DELETE FROM aegis_schema", &[])?;
                    c.execute("INSERT INTO aegis_schema (version) VALUES (?1)", args![SCHEMA_VERSION])?;
                    Ok(())
                }
            }
        })
    }

    /// Hands SQLite's WAL checkpoints to a [`Checkpointer`] thread (none on PostgreSQL): this
    /// connection's commits no longer copy the WAL back themselves.
    pub(crate) fn hand_checkpoints_off(&mut self, policy: CheckpointPolicy) -> anyhow::Result<Option<Checkpointer>> {
        let Conn::Sqlite(db) = &self.conn else { return Ok(None) };
        let path = db.path().map(std::path::PathBuf::from).context("a SQLite database without a file")?;
        let checkpointer = Checkpointer::spawn(&path, policy)?;
        db.pragma_update(None, "wal_autocheckpoint", 0)?;
        Ok(Some(checkpointer))
    }

    /// Copies the WAL back into the database file from this connection (the writer's, between
    /// batches: nothing is appended meanwhile, so its next commit starts the WAL over).
    pub(crate) fn checkpoint_wal(&mut self) -> anyhow::Result<()> {
        if let Conn::Sqlite(db) = &self.conn {
            db.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        }
        Ok(())
    }

    /// Stores `rows` in one transaction. A row whose `txn_id` is already stored (earlier, or
    /// earlier in the same batch) is not written again; its outcome carries the stored row.
    pub fn insert_batch(&mut self, rows: &[ScoredTransaction]) -> anyhow::Result<Vec<Outcome>> {
        // SQLite: IMMEDIATE takes the write lock up front (waiting up to the busy timeout), so
        // several processes can share one database (Kafka workers and `serve`). PostgreSQL:
        // batches from several workers commit side by side; a txn_id two of them insert at once
        // is stored by the first, and the second waits for it and reads it as a duplicate.
        self.conn.transaction(None, |c| {
            if c.backend() == Backend::Postgres {
                return insert_many(c, rows);
            }
            let Conn::Sqlite(db) = c else { anyhow::bail!("not a SQLite connection") };
            // Prepared once per batch (looking the statement up by its text cost a hash of
            // 500 bytes per row).
            let mut insert = db.prepare_cached(
                "INSERT INTO results (txn_id, timestamp, amount, country, merchant, merchant_category, card_masked,
                    card_token, score, if_score, ae_mse, action, reasons, model_version, received_at, latency_us,
                    fraud_probability, rules, shadow_score, shadow_action, shadow_version, card_key, fields)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21,
                    ?22, ?23)
                 ON CONFLICT (txn_id) DO NOTHING",
            )?;
            let mut inserted = Vec::with_capacity(rows.len());
            let mut counters = Counters::default();
            for r in rows {
                let reasons = serde_json::to_string(&r.reasons)?;
                let rules = serde_json::to_string(&r.rules)?;
                let shadow = r.shadow.as_ref();
                let changed = insert.execute(rusqlite::params_from_iter(args![
                    &r.txn_id,
                    r.timestamp,
                    r.amount,
                    &r.country,
                    &r.merchant,
                    r.merchant_category.as_deref(),
                    &r.card_masked,
                    &r.card_token,
                    r.score,
                    r.if_score,
                    r.ae_mse,
                    r.action.as_str(),
                    &reasons,
                    &r.model_version,
                    r.received_at,
                    r.latency_us,
                    r.fraud_probability,
                    &rules,
                    shadow.map(|s| s.score),
                    shadow.map(|s| s.action.as_str()),
                    shadow.map(|s| s.model_version.as_str()),
                    card_key(&r.card_token),
                    r.fields.as_deref(),
                ]))?;
                if changed == 1 {
                    counters.add(r);
                }
                inserted.push(changed == 1);
            }
            drop(insert);
            let mut outcomes = Vec::with_capacity(rows.len());
            for (r, inserted) in rows.iter().zip(inserted) {
                outcomes.push(if inserted {
                    Outcome::Inserted
                } else {
                    let stored = get(c, &r.txn_id)?.context("a conflicting row vanished")?;
                    Outcome::Duplicate(Box::new(stored))
                });
            }
            counters.write(c)?;
            Ok(outcomes)
        })
    }

    /// The stored decision for `txn_id`, if any.
    pub fn get(&mut self, txn_id: &str) -> anyhow::Result<Option<ScoredTransaction>> {
        get(&mut self.conn, txn_id)
    }

    /// Calls `f` with every stored transaction from `since` (Unix seconds) on, oldest first,
    /// and every verdict change known from `since` on, each before the first transaction after
    /// it became known — so that a restarted server rebuilds card and merchant state as replay
    /// does. Rows whose card token is not in the current format are skipped. Returns how many
    /// transactions were replayed.
    /// `schema`: the declared fields the transactions are read with.
    pub fn replay(&mut self, since: i64, schema: &Schema, mut f: impl FnMut(History)) -> anyhow::Result<u64> {
        let mut changes = self.verdict_changes_known_since(since, schema)?.into_iter().peekable();
        let mut n = 0;
        self.conn.for_each(
            concat!(
                "SELECT ",
                transaction_columns!(),
                " FROM results WHERE timestamp >= ?1 ORDER BY timestamp, received_at"
            ),
            args![since],
            |r| {
                let Some(txn) = labels::transaction(r, 0, schema)? else { return Ok(()) };
                while let Some(c) = changes.next_if(|c| c.known_at < txn.timestamp) {
                    f(History::Verdict(c));
                }
                f(History::Transaction(txn));
                n += 1;
                Ok(())
            },
        )?;
        changes.for_each(|c| f(History::Verdict(c)));
        Ok(n)
    }

    /// The newest transaction time stored, if any.
    pub fn latest_timestamp(&mut self) -> anyhow::Result<Option<i64>> {
        self.conn.query_one("SELECT MAX(timestamp) FROM results", &[], |r| r.opt_int(0))
    }

    pub fn count(&mut self) -> anyhow::Result<u64> {
        let n = self.conn.query_one("SELECT COUNT(*) FROM results", &[], |r| r.int(0))?;
        Ok(n.unsigned_abs())
    }
}

/// [`Store::insert_batch`] on PostgreSQL: the whole batch in one multi-row `INSERT` (one round
/// trip instead of one per row), rows taken in `txn_id` order so that two workers inserting
/// overlapping batches (a redelivery after a rebalance) lock rows in the same order and wait for
/// each other instead of deadlocking. The first of several rows with one `txn_id` is stored.
fn insert_many(c: &mut Conn, rows: &[ScoredTransaction]) -> anyhow::Result<Vec<Outcome>> {
    let text = |f: fn(&ScoredTransaction) -> &str| rows.iter().map(f).collect::<Vec<&str>>();
    let int = |f: fn(&ScoredTransaction) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
    let real = |f: fn(&ScoredTransaction) -> f64| rows.iter().map(f).collect::<Vec<f64>>();
    let json = |f: fn(&ScoredTransaction) -> &Vec<String>| {
        rows.iter().map(|r| serde_json::to_string(f(r))).collect::<Result<Vec<String>, _>>()
    };
    let (reasons, rules) = (json(|r| &r.reasons)?, json(|r| &r.rules)?);
    let category: Vec<Option<&str>> = rows.iter().map(|r| r.merchant_category.as_deref()).collect();
    let probability: Vec<Option<f64>> = rows.iter().map(|r| r.fraud_probability.map(f64::from)).collect();
    let shadow_score: Vec<Option<f64>> = rows.iter().map(|r| r.shadow.as_ref().map(|s| f64::from(s.score))).collect();
    let shadow_action: Vec<Option<&str>> = rows.iter().map(|r| r.shadow.as_ref().map(|s| s.action.as_str())).collect();
    let shadow_version: Vec<Option<&str>> =
        rows.iter().map(|r| r.shadow.as_ref().map(|s| s.model_version.as_str())).collect();
    let fields: Vec<Option<&str>> = rows.iter().map(|r| r.fields.as_deref()).collect();
    let inserted = c
        .postgres_query(
            "INSERT INTO results (txn_id, timestamp, amount, country, merchant, merchant_category, card_masked,
                card_token, score, if_score, ae_mse, action, reasons, model_version, received_at, latency_us,
                fraud_probability, rules, shadow_score, shadow_action, shadow_version, card_key, fields)
             SELECT txn_id, timestamp, amount, country, merchant, merchant_category, card_masked, card_token, score,
                 if_score, ae_mse, action, reasons, model_version, received_at, latency_us, fraud_probability, rules,
                 shadow_score, shadow_action, shadow_version, card_key, fields
             FROM UNNEST(?1::text[], ?2::bigint[], ?3::float8[], ?4::text[], ?5::text[], ?6::text[], ?7::text[],
                 ?8::text[], ?9::float8[], ?10::float8[], ?11::float8[], ?12::text[], ?13::text[], ?14::text[],
                 ?15::bigint[], ?16::bigint[], ?17::float8[], ?18::text[], ?19::float8[], ?20::text[], ?21::text[],
                 ?22::bigint[], ?23::text[])
                 WITH ORDINALITY AS u(txn_id, timestamp, amount, country, merchant, merchant_category, card_masked,
                     card_token, score, if_score, ae_mse, action, reasons, model_version, received_at, latency_us,
                     fraud_probability, rules, shadow_score, shadow_action, shadow_version, card_key, fields, n)
             ORDER BY txn_id, n
             ON CONFLICT (txn_id) DO NOTHING
             RETURNING txn_id",
            &[
                &text(|r| &r.txn_id),
                &int(|r| r.timestamp),
                &real(|r| r.amount),
                &text(|r| &r.country),
                &text(|r| &r.merchant),
                &category,
                &text(|r| &r.card_masked),
                &text(|r| &r.card_token),
                &real(|r| r.score.into()),
                &real(|r| r.if_score.into()),
                &real(|r| r.ae_mse.into()),
                &text(|r| r.action.as_str()),
                &reasons,
                &text(|r| &r.model_version),
                &int(|r| r.received_at),
                &int(|r| r.latency_us.into()),
                &probability,
                &rules,
                &shadow_score,
                &shadow_action,
                &shadow_version,
                &int(|r| card_key(&r.card_token)),
                &fields,
            ],
        )?
        .context("a PostgreSQL batch insert on another database")?;
    let mut fresh: std::collections::HashSet<String> = inserted.iter().map(|r| r.get::<_, String>(0)).collect();
    let mut counters = Counters::default();
    let mut outcomes = Vec::with_capacity(rows.len());
    for r in rows {
        outcomes.push(if fresh.remove(&r.txn_id) {
            counters.add(r);
            Outcome::Inserted
        } else {
            Outcome::Duplicate(Box::new(get(c, &r.txn_id)?.context("a conflicting row vanished")?))
        });
    }
    counters.write(c)?;
    Ok(outcomes)
}

/// A SQLite connection set up as every writer uses it.
fn open_sqlite(path: &std::path::Path) -> anyhow::Result<Connection> {
    let conn = Connection::open(path)?;
    // First, so that processes opening the database together wait for each other.
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    set_wal(&conn).context("cannot switch to WAL mode")?;
    conn.pragma_update(None, "synchronous", "FULL").context("cannot set synchronous=FULL")?;
    // 64 MiB of page cache (default 2 MiB): inserts of random txn_ids touch pages all over the
    // txn_id index, and past a few hundred thousand results most of them missed the cache.
    conn.pragma_update(None, "cache_size", -65_536).context("cannot set the page cache size")?;
    Ok(conn)
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
macro_rules! scored_columns {
    () => {
        "txn_id, timestamp, amount, country, merchant, merchant_category, card_masked, card_token, score, if_score,
        ae_mse, action, reasons, model_version, received_at, latency_us, fraud_probability, rules, shadow_score,
        shadow_action, shadow_version, fields"
    };
}

pub(crate) fn get(conn: &mut Conn, txn_id: &str) -> anyhow::Result<Option<ScoredTransaction>> {
    conn.query_opt(concat!("SELECT ", scored_columns!(), " FROM results WHERE txn_id = ?1"), args![txn_id], scored_row)
}

/// The stored decisions among `txn_ids`, by id: one round trip on PostgreSQL (`= ANY`), one
/// index seek each on SQLite (in process, where a round trip costs nothing).
pub(crate) fn get_many(
    conn: &mut Conn,
    txn_ids: &[&str],
) -> anyhow::Result<std::collections::HashMap<String, ScoredTransaction>> {
    let mut found = std::collections::HashMap::new();
    if let Some(rows) = conn.postgres_query_unprepared(
        concat!("SELECT ", scored_columns!(), " FROM results WHERE txn_id = ANY(?1::text[])"),
        &[&txn_ids],
    )? {
        for r in &rows {
            let stored = scored_row(r)?;
            found.insert(stored.txn_id.clone(), stored);
        }
        return Ok(found);
    }
    for id in txn_ids {
        if let Some(stored) = get(conn, id)? {
            found.insert(stored.txn_id.clone(), stored);
        }
    }
    Ok(found)
}

/// A stored result, from a row selected with [`scored_columns`].
pub(crate) fn scored_row(r: &dyn Row) -> anyhow::Result<ScoredTransaction> {
    Ok(ScoredTransaction {
        txn_id: r.string(0)?,
        timestamp: r.int(1)?,
        amount: r.real(2)?,
        country: r.string(3)?,
        merchant: r.string(4)?,
        merchant_category: r.opt_string(5)?,
        card_masked: r.string(6)?,
        card_token: r.string(7)?,
        score: r.real32(8)?,
        if_score: r.real32(9)?,
        ae_mse: r.real32(10)?,
        action: column::parsed(r, 11)?,
        reasons: column::json_list(r, 12)?,
        model_version: r.string(13)?,
        received_at: r.int(14)?,
        latency_us: r.int32(15)?,
        fraud_probability: r.opt_real32(16)?,
        rules: column::json_list(r, 17)?,
        shadow: column::shadow(r, 18)?,
        fields: r.opt_string(21)?,
    })
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
