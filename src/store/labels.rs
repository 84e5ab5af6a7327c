//! Labels: verdicts from analysts, chargebacks and customers, one row per (`txn_id`, source).
//!
//! A transaction's **verdict** is its newest label by `reported_at` over every source (a tie goes
//! to fraud). It is kept on the result row (the review queue is an index of flagged rows without
//! one), and every change of it is appended to `verdict_changes` in the same transaction: the
//! feature state of this process, of other processes sharing the store and of a restarted one
//! is moved by those changes, once each, never by the raw labels.

use super::Store;
use super::sql::{Conn, Row, args};
pub use crate::domain::LabelIn;
use crate::domain::fields::Schema;
use crate::domain::{Action, CardToken, Country, Transaction, Verdict};

/// What storing one label did.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelOutcome {
    /// Stored (new, or newer than this source's earlier label); `change` if the verdict moved.
    Stored { change: Option<VerdictChange> },
    /// The same label, or an older report than the one stored for this source: nothing changed.
    Unchanged,
    /// No stored result has this `txn_id`; nothing was stored.
    UnknownTxn,
}

/// A transaction's verdict changed at `known_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct VerdictChange {
    /// Position in the store's sequence of changes.
    pub seq: i64,
    /// The transaction, as the feature pipeline sees it (`None` for a row whose card token is
    /// not in the current format).
    pub txn: Option<Transaction>,
    pub verdict: Verdict,
    pub previous: Option<Verdict>,
    pub known_at: i64,
}

/// One stored label, as the case view lists them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct StoredLabel {
    pub label: Verdict,
    pub source: String,
    /// When it became known (RFC 3339).
    pub reported_at: String,
    pub note: Option<String>,
    /// When Aegis stored it, Unix milliseconds.
    pub stored_at: i64,
}

/// Label counters for the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LabelStats {
    /// Transactions whose verdict is fraud.
    pub confirmed_fraud: i64,
    /// Flagged transactions with a verdict.
    pub reviewed_flags: i64,
    /// Flagged transactions whose verdict is fraud.
    pub confirmed_flags: i64,
}

impl Store {
    /// Stores `labels` in one transaction, `origin` naming this process in the change log.
    /// The changes' transactions carry `schema`'s declared fields.
    pub fn put_labels(
        &mut self,
        labels: &[LabelIn],
        origin: &str,
        now_ms: i64,
        schema: &Schema,
    ) -> anyhow::Result<Vec<LabelOutcome>> {
        // One label writer at a time (on PostgreSQL too), so that verdict changes are numbered
        // in commit order and a reader that saw change `n` has seen every change before it.
        self.conn.transaction(Some(super::locks::LABELS), |c| {
            labels.iter().map(|l| put_label(c, l, origin, now_ms, schema)).collect()
        })
    }

    /// The newest verdict change's sequence number (0 if none).
    pub fn last_verdict_seq(&mut self) -> anyhow::Result<i64> {
        last_verdict_seq(&mut self.conn)
    }

    /// Every verdict change known at or after `since` (Unix seconds), in the order they became
    /// known, for rebuilding feature state.
    pub(super) fn verdict_changes_known_since(
        &mut self,
        since: i64,
        schema: &Schema,
    ) -> anyhow::Result<Vec<VerdictChange>> {
        self.conn.query(
            concat!(change_columns!(), " WHERE c.known_at >= ?1 ORDER BY c.known_at, c.seq"),
            args![since],
            |r| change_row(r, schema),
        )
    }
}

pub(super) fn last_verdict_seq(c: &mut Conn) -> anyhow::Result<i64> {
    c.query_one("SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM verdict_changes", &[], |r| r.int(0))
}

/// The select list [`change_row`] reads.
macro_rules! change_columns {
    () => {
        "SELECT c.seq, c.verdict, c.previous, c.known_at, c.origin, r.txn_id, r.timestamp, r.card_token,
                r.amount, r.country, r.merchant, r.merchant_category, r.card_masked, r.fields
         FROM verdict_changes c JOIN results r ON r.txn_id = c.txn_id"
    };
}
use change_columns;

/// Verdict changes after `seq` made by other processes than `origin`, oldest first (at most
/// `limit` read), and the last sequence number read.
pub(super) fn changes_since(
    c: &mut Conn,
    seq: i64,
    origin: &str,
    limit: usize,
    schema: &Schema,
) -> anyhow::Result<(Vec<VerdictChange>, i64)> {
    let (mut changes, mut last) = (Vec::new(), seq);
    c.for_each(concat!(change_columns!(), " WHERE c.seq > ?1 ORDER BY c.seq LIMIT ?2"), args![seq, limit], |r| {
        last = r.int(0)?;
        if r.text(4)? != origin {
            changes.push(change_row(r, schema)?);
        }
        Ok(())
    })?;
    Ok((changes, last))
}

fn put_label(c: &mut Conn, l: &LabelIn, origin: &str, now_ms: i64, schema: &Schema) -> anyhow::Result<LabelOutcome> {
    let row = c.query_opt("SELECT action, verdict FROM results WHERE txn_id = ?1", args![&l.txn_id], |r| {
        Ok((r.string(0)?, r.opt_string(1)?))
    })?;
    let Some((action, previous)) = row else { return Ok(LabelOutcome::UnknownTxn) };
    let stored = c.query_opt(
        "SELECT label, reported_at, note FROM labels WHERE txn_id = ?1 AND source = ?2",
        args![&l.txn_id, &l.source],
        |r| Ok((r.string(0)?, r.int(1)?, r.opt_string(2)?)),
    )?;
    if let Some((label, reported_at, note)) = &stored {
        let same = label == l.verdict.as_str() && *reported_at == l.reported_at && *note == l.note;
        if same || *reported_at > l.reported_at {
            return Ok(LabelOutcome::Unchanged);
        }
    }
    c.execute(
        "INSERT INTO labels (txn_id, source, label, reported_at, note, stored_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (txn_id, source) DO UPDATE SET label = excluded.label, reported_at = excluded.reported_at,
             note = excluded.note, stored_at = excluded.stored_at",
        args![&l.txn_id, &l.source, l.verdict.as_str(), l.reported_at, l.note.as_deref(), now_ms],
    )?;
    // The newest report decides; at the same time, fraud.
    let (verdict, known_at) = c.query_one(
        "SELECT label, reported_at FROM labels WHERE txn_id = ?1
         ORDER BY reported_at DESC, CASE label WHEN 'fraud' THEN 0 ELSE 1 END LIMIT 1",
        args![&l.txn_id],
        |r| Ok((r.string(0)?, r.int(1)?)),
    )?;
    if previous.as_deref() == Some(verdict.as_str()) {
        return Ok(LabelOutcome::Stored { change: None });
    }
    let parse = |s: &str| s.parse::<Verdict>().map_err(anyhow::Error::msg);
    let (verdict, previous) = (parse(&verdict)?, previous.as_deref().map(parse).transpose()?);
    c.execute("UPDATE results SET verdict = ?1 WHERE txn_id = ?2", args![verdict.as_str(), &l.txn_id])?;
    let seq = c.query_one(
        "INSERT INTO verdict_changes (txn_id, verdict, previous, known_at, origin) VALUES (?1, ?2, ?3, ?4, ?5)
         RETURNING seq",
        args![&l.txn_id, verdict.as_str(), previous.map(Verdict::as_str), known_at, origin],
        |r| r.int(0),
    )?;
    let fraud = |v: Option<Verdict>| i64::from(v == Some(Verdict::Fraud));
    let delta = fraud(Some(verdict)) - fraud(previous);
    let flagged = action.parse::<Action>().map_err(anyhow::Error::msg)? != Action::Allow;
    c.execute(
        "UPDATE label_stats SET confirmed_fraud = confirmed_fraud + ?1, reviewed_flags = reviewed_flags + ?2,
             confirmed_flags = confirmed_flags + ?3",
        args![delta, i64::from(flagged && previous.is_none()), if flagged { delta } else { 0 }],
    )?;
    let txn = c.query_one(
        concat!("SELECT ", super::transaction_columns!(), " FROM results WHERE txn_id = ?1"),
        args![&l.txn_id],
        |r| transaction(r, 0, schema),
    )?;
    Ok(LabelOutcome::Stored { change: Some(VerdictChange { seq, txn, verdict, previous, known_at }) })
}

/// A change from the columns `seq, verdict, previous, known_at, origin` then the transaction's.
fn change_row(r: &dyn Row, schema: &Schema) -> anyhow::Result<VerdictChange> {
    Ok(VerdictChange {
        seq: r.int(0)?,
        verdict: super::column::parsed(r, 1)?,
        previous: super::column::parsed_opt(r, 2)?,
        known_at: r.int(3)?,
        txn: transaction(r, 5, schema)?,
    })
}

/// The transaction in the columns of [`super::transaction_columns`] starting at `at`, its
/// declared fields read as `schema` names them; `None` if its token or country does not parse.
pub(super) fn transaction(r: &dyn Row, at: usize, schema: &Schema) -> anyhow::Result<Option<Transaction>> {
    let (Some(card), Some(country)) = (CardToken::from_hex(r.text(at + 2)?), Country::parse(r.text(at + 4)?)) else {
        return Ok(None);
    };
    Ok(Some(Transaction {
        txn_id: r.string(at)?,
        timestamp: r.int(at + 1)?,
        card,
        amount: r.real(at + 3)?,
        country,
        merchant: r.string(at + 5)?,
        merchant_category: r.opt_string(at + 6)?,
        bin: crate::domain::bin_of(r.text(at + 7)?),
        fields: crate::domain::fields::value::from_stored(schema, r.opt_text(at + 8)?),
    }))
}

/// The labels of `txn_id`, newest first.
pub(super) fn labels_of(c: &mut Conn, txn_id: &str) -> anyhow::Result<Vec<StoredLabel>> {
    c.query(
        "SELECT label, source, reported_at, note, stored_at FROM labels WHERE txn_id = ?1
         ORDER BY reported_at DESC, source",
        args![txn_id],
        |r| {
            Ok(StoredLabel {
                label: super::column::parsed(r, 0)?,
                source: r.string(1)?,
                reported_at: crate::domain::rfc3339(r.int(2)?),
                note: r.opt_string(3)?,
                stored_at: r.int(4)?,
            })
        },
    )
}

pub(super) fn label_stats(c: &mut Conn) -> anyhow::Result<LabelStats> {
    c.query_one("SELECT confirmed_fraud, reviewed_flags, confirmed_flags FROM label_stats", &[], |r| {
        Ok(LabelStats { confirmed_fraud: r.int(0)?, reviewed_flags: r.int(1)?, confirmed_flags: r.int(2)? })
    })
}
