//! The dashboard's reads: totals and per-minute counts from the maintained counters, and pages
//! of results newest first through the `received_at` indexes. Each query reads a bounded number
//! of rows whatever the size of the store (BENCHMARKS.md: 1,000,000 stored results).

use super::sql::{Conn, Row, Value, args};
use super::{ReadPool, column};
use crate::scoring::Action;
use serde::Serialize;

/// Most rows one page may ask for.
pub const MAX_PAGE: usize = 500;
/// Latency percentiles are taken over this many of the newest results.
const LATENCY_WINDOW: usize = 1_000;
/// Minutes in the time series.
const SERIES_MINUTES: i64 = 60;

/// One stored result as the dashboard shows it (no card token).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TransactionRow {
    pub txn_id: String,
    /// Transaction time (RFC 3339).
    pub timestamp: String,
    /// When Aegis received it (Unix milliseconds); with `txn_id`, the paging cursor.
    pub received_at: i64,
    pub amount: f64,
    pub country: String,
    pub merchant: String,
    pub merchant_category: Option<String>,
    pub card_masked: String,
    pub score: f32,
    pub action: Action,
    pub reasons: Vec<String>,
    /// Names of the rules that matched.
    pub rules: Vec<String>,
    pub model_version: String,
    /// Receipt to decision, microseconds.
    pub latency_us: u32,
    /// The transaction's verdict from its labels, if it has any.
    pub verdict: Option<crate::domain::Verdict>,
    /// The declared fields (`train --schema`) by name, PII as tokens; absent without them.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub fields: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MinuteCount {
    /// Start of the minute, Unix milliseconds.
    pub minute: i64,
    pub transactions: i64,
    pub flagged: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CountryCount {
    pub country: String,
    pub transactions: i64,
    pub flagged: i64,
}

/// Headline numbers.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Stats {
    pub processed: i64,
    pub reviewed: i64,
    pub blocked: i64,
    /// Reviewed + blocked.
    pub flagged: i64,
    /// Flagged / processed (0 when nothing was processed).
    pub flag_rate: f64,
    /// Transactions per second over the last one to two minutes.
    pub throughput_per_sec: f64,
    /// 99th percentile of receipt-to-decision latency over the newest 1,000 results (scoring;
    /// the commit comes after).
    pub p99_latency_us: Option<u32>,
    /// 99th percentile of `/predict`'s answer latency over the last one to two minutes,
    /// server-side, commit included: the upper bound of its histogram bucket (null without
    /// answers, or from a process that does not answer `/predict`).
    pub p99_answer_us: Option<u64>,
    /// Newest `received_at` (Unix ms), if any: changes whenever a result is stored.
    pub last_received_at: Option<i64>,
    /// Transactions whose verdict is fraud.
    pub confirmed_fraud: i64,
    /// Flagged transactions with a verdict.
    pub reviewed_flags: i64,
    /// Of the flagged transactions with a verdict, the share confirmed fraud (none reviewed: null).
    pub review_precision: Option<f64>,
    /// Flagged transactions waiting for a verdict (the review queue).
    pub open_queue: i64,
    /// Changes whenever a label changes a verdict.
    pub verdicts_version: i64,
    /// The last 60 minutes, oldest first, minutes without traffic included.
    pub per_minute: Vec<MinuteCount>,
}

/// The card's transactions a case view lists.
const CARD_HISTORY: usize = 20;

/// One stored transaction in full: the dashboard row and every model's score.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TransactionDetail {
    #[serde(flatten)]
    pub row: TransactionRow,
    pub if_score: f32,
    pub ae_mse: f32,
    pub fraud_probability: Option<f32>,
    pub shadow: Option<crate::domain::ShadowScore>,
}

/// The case view of one transaction: everything stored about it (no card token), its labels
/// and its card's recent transactions.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Case {
    pub transaction: TransactionDetail,
    /// Every label, newest first (the verdict is the newest).
    pub labels: Vec<super::StoredLabel>,
    /// The card's newest transactions (this one included), newest first, with their actions
    /// and verdicts.
    pub card_history: Vec<TransactionRow>,
    /// Per entity field of the transaction (device, IP, e-mail, …): the other cards that used
    /// the same value in the day before it.
    pub links: Vec<Link>,
}

/// Cards linked to a case through one declared entity value.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Link {
    pub field: String,
    /// The value (a token for a PII field).
    pub value: String,
    /// Distinct cards with this value in the 24 hours before the case (its own included).
    pub cards: u32,
    /// Those of them with a transaction already confirmed fraud.
    pub fraud_cards: u32,
    /// The newest transaction of each other card (at most [`LINKED`]), to open as a case.
    pub transactions: Vec<LinkedTransaction>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LinkedTransaction {
    pub txn_id: String,
    pub card_masked: String,
    pub verdict: Option<crate::domain::Verdict>,
}

/// Linked cards listed per value.
pub const LINKED: usize = 10;
/// Rows read per value: the link counts are exact up to this many transactions in the day.
const LINK_SCAN: usize = 2_000;

/// Where a page ends: the next page has rows strictly older than this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub received_at: i64,
    pub txn_id: String,
}

impl std::str::FromStr for Cursor {
    type Err = String;

    /// `<received_at ms>:<txn_id>`, as the `next` field of a page gives it.
    fn from_str(s: &str) -> Result<Self, String> {
        let (ms, id) = s.split_once(':').ok_or("expected <received_at>:<txn_id>")?;
        let received_at = ms.parse().map_err(|_| "the cursor must start with Unix milliseconds".to_owned())?;
        Ok(Self { received_at, txn_id: id.to_owned() })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.received_at, self.txn_id)
    }
}

/// Which results a page lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    All,
    Action(Action),
    /// Review or block.
    Flagged,
}

impl ReadPool {
    pub fn stats(&self, now_ms: i64) -> anyhow::Result<Stats> {
        self.with(|c| stats(c, now_ms))
    }

    /// Up to `limit` results (at most 500), newest first, older than `before` if given.
    pub fn page(&self, filter: Filter, limit: usize, before: Option<&Cursor>) -> anyhow::Result<Vec<TransactionRow>> {
        self.with(|c| page(c, filter, limit.min(MAX_PAGE), before))
    }

    /// Flagged results without a verdict, oldest first: received before `before` (Unix ms) if
    /// given, after the cursor `after` (the previous page's `next`) if given.
    pub fn review_queue(
        &self,
        limit: usize,
        before: Option<i64>,
        after: Option<&Cursor>,
    ) -> anyhow::Result<Vec<TransactionRow>> {
        self.with(|c| {
            // The partial index `results_queue` holds exactly these rows, in this order.
            c.query(
                concat!(
                    "SELECT ",
                    columns!(),
                    " FROM results WHERE action <> 'allow' AND verdict IS NULL
                     AND received_at < ?1 AND (received_at, txn_id) > (?2, ?3)
                     ORDER BY received_at, txn_id LIMIT ?4"
                ),
                args![
                    before.unwrap_or(i64::MAX),
                    after.map_or(i64::MIN, |a| a.received_at),
                    after.map_or("", |a| a.txn_id.as_str()),
                    limit.min(MAX_PAGE)
                ],
                row,
            )
        })
    }

    /// Everything the case view shows about `txn_id`, if it is stored; `entities`: the declared
    /// entity fields whose values link it to other cards.
    pub fn case(&self, txn_id: &str, entities: &[String]) -> anyhow::Result<Option<Case>> {
        self.with(|c| {
            let detail = c.query_opt(
                concat!(
                    "SELECT ",
                    columns!(),
                    ", if_score, ae_mse, fraud_probability, shadow_score, shadow_action, shadow_version, card_token,
                     card_key FROM results WHERE txn_id = ?1"
                ),
                args![txn_id],
                |r| {
                    let transaction = TransactionDetail {
                        row: row(r)?,
                        if_score: r.real32(16)?,
                        ae_mse: r.real32(17)?,
                        fraud_probability: r.opt_real32(18)?,
                        shadow: column::shadow(r, 19)?,
                    };
                    Ok((transaction, r.string(22)?, r.int(23)?))
                },
            )?;
            let Some((transaction, card_token, card_key)) = detail else { return Ok(None) };
            let labels = super::labels::labels_of(c, txn_id)?;
            let card_history = c.query(
                concat!(
                    "SELECT ",
                    columns!(),
                    " FROM results WHERE card_key = ?1 AND card_token = ?2
                     ORDER BY timestamp DESC, received_at DESC LIMIT ?3"
                ),
                args![card_key, &card_token, CARD_HISTORY],
                row,
            )?;
            let mut links = Vec::new();
            let values = transaction.row.fields.as_ref().and_then(|f| f.as_object());
            for field in entities {
                let Some(value) = values.and_then(|v| v.get(field)).and_then(|v| v.as_str()) else { continue };
                links.push(link(c, field, value, transaction.row.received_at, &card_token)?);
            }
            Ok(Some(Case { transaction, labels, card_history, links }))
        })
    }

    /// Countries by flagged count, then by transactions.
    pub fn countries(&self, limit: usize) -> anyhow::Result<Vec<CountryCount>> {
        self.with(|c| {
            c.query(
                "SELECT country, transactions, flagged FROM stats_country
                 ORDER BY flagged DESC, transactions DESC, country LIMIT ?1",
                args![limit.min(MAX_PAGE)],
                |r| Ok(CountryCount { country: r.string(0)?, transactions: r.int(1)?, flagged: r.int(2)? }),
            )
        })
    }
}

/// The cards that used `value` of `field` in the day up to `received_at` (the newest
/// [`LINK_SCAN`] transactions with it). The `fields` column is not indexed: the scan walks the
/// day's rows by their arrival index and tests each row's JSON.
fn link(c: &mut Conn, field: &str, value: &str, received_at: i64, own_card: &str) -> anyhow::Result<Link> {
    let path = match c.backend() {
        super::sql::Backend::Sqlite => "json_extract(fields, ?3)",
        super::sql::Backend::Postgres => "(fields::jsonb ->> ?3)",
    };
    let key = match c.backend() {
        super::sql::Backend::Sqlite => format!("$.\"{field}\""),
        super::sql::Backend::Postgres => field.to_owned(),
    };
    let sql = format!(
        "SELECT txn_id, card_masked, card_token, verdict FROM results
         WHERE received_at BETWEEN ?1 AND ?2 AND fields IS NOT NULL AND {path} = ?4
         ORDER BY received_at DESC LIMIT ?5"
    );
    let rows = c.query(&sql, args![received_at - 86_400_000, received_at, key.as_str(), value, LINK_SCAN], |r| {
        Ok((
            LinkedTransaction { txn_id: r.string(0)?, card_masked: r.string(1)?, verdict: column::parsed_opt(r, 3)? },
            r.string(2)?,
        ))
    })?;
    let mut cards: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
    let mut transactions = Vec::new();
    for (t, card) in rows {
        let fraud = t.verdict == Some(crate::domain::Verdict::Fraud);
        let seen = cards.contains_key(&card);
        *cards.entry(card.clone()).or_default() |= fraud;
        if !seen && card != own_card && transactions.len() < LINKED {
            transactions.push(t);
        }
    }
    cards.entry(own_card.to_owned()).or_default();
    Ok(Link {
        field: field.to_owned(),
        value: value.to_owned(),
        cards: cards.len() as u32,
        fraud_cards: cards.values().filter(|&&f| f).count() as u32,
        transactions,
    })
}

fn stats(c: &mut Conn, now_ms: i64) -> anyhow::Result<Stats> {
    let (processed, reviewed, blocked) = c.query_one(
        "SELECT CAST(COALESCE(SUM(transactions), 0) AS BIGINT), CAST(COALESCE(SUM(reviewed), 0) AS BIGINT),
             CAST(COALESCE(SUM(blocked), 0) AS BIGINT)
         FROM stats_minute",
        &[],
        |r| Ok((r.int(0)?, r.int(1)?, r.int(2)?)),
    )?;
    let now_minute = now_ms.div_euclid(60_000);
    let first = now_minute - SERIES_MINUTES + 1;
    let mut per_minute: Vec<MinuteCount> =
        (first..=now_minute).map(|m| MinuteCount { minute: m * 60_000, transactions: 0, flagged: 0 }).collect();
    c.for_each(
        "SELECT minute, transactions, reviewed + blocked FROM stats_minute WHERE minute BETWEEN ?1 AND ?2",
        args![first, now_minute],
        |r| {
            let slot = &mut per_minute[(r.int(0)? - first) as usize];
            (slot.transactions, slot.flagged) = (r.int(1)?, r.int(2)?);
            Ok(())
        },
    )?;
    // The current minute so far plus the whole previous one.
    let recent = per_minute.iter().rev().take(2).map(|m| m.transactions).sum::<i64>();
    let seconds = 60.0 + now_ms.rem_euclid(60_000) as f64 / 1000.0;
    let mut latencies: Vec<u32> =
        c.query("SELECT latency_us FROM results ORDER BY received_at DESC LIMIT ?1", args![LATENCY_WINDOW], |r| {
            r.int32(0)
        })?;
    latencies.sort_unstable();
    let p99 = (!latencies.is_empty()).then(|| latencies[(latencies.len() * 99).div_ceil(100) - 1]);
    let last_received_at = c.query_one("SELECT MAX(received_at) FROM results", &[], |r| r.opt_int(0))?;
    let labels = super::labels::label_stats(c)?;
    let verdicts_version = super::labels::last_verdict_seq(c)?;
    Ok(Stats {
        processed,
        reviewed,
        blocked,
        flagged: reviewed + blocked,
        flag_rate: if processed > 0 { (reviewed + blocked) as f64 / processed as f64 } else { 0.0 },
        throughput_per_sec: recent as f64 / seconds,
        p99_latency_us: p99,
        p99_answer_us: None,
        last_received_at,
        confirmed_fraud: labels.confirmed_fraud,
        reviewed_flags: labels.reviewed_flags,
        review_precision: (labels.reviewed_flags > 0)
            .then(|| labels.confirmed_flags as f64 / labels.reviewed_flags as f64),
        open_queue: reviewed + blocked - labels.reviewed_flags,
        verdicts_version,
        per_minute,
    })
}

/// The columns [`row`] reads, in its order.
macro_rules! columns {
    () => {
        "txn_id, timestamp, received_at, amount, country, merchant, merchant_category, card_masked, score, action,
        reasons, model_version, latency_us, rules, verdict, fields"
    };
}
use columns;

fn page(c: &mut Conn, filter: Filter, limit: usize, before: Option<&Cursor>) -> anyhow::Result<Vec<TransactionRow>> {
    // Pages walk an index ordered by (received_at, txn_id) backwards: all results, or the
    // partial index of flagged ones. Parameters are numbered as they are bound, so that each
    // statement has exactly the ones it uses (PostgreSQL requires it).
    let mut bound: Vec<Value<'_>> = Vec::with_capacity(4);
    let mut conditions: Vec<String> = Vec::with_capacity(2);
    match filter {
        Filter::All => {}
        Filter::Action(Action::Allow) => conditions.push("action = 'allow'".into()),
        // Spelled out so that the partial index on flagged rows applies.
        Filter::Action(a) => {
            bound.push(a.as_str().into());
            conditions.push(format!("action <> 'allow' AND action = ?{}", bound.len()));
        }
        Filter::Flagged => conditions.push("action <> 'allow'".into()),
    }
    if let Some(b) = before {
        // A row-value comparison, so that a later page is an index seek too.
        bound.push(b.received_at.into());
        bound.push(b.txn_id.as_str().into());
        conditions.push(format!("(received_at, txn_id) < (?{}, ?{})", bound.len() - 1, bound.len()));
    }
    bound.push(limit.into());
    let condition = if conditions.is_empty() { "TRUE".to_owned() } else { conditions.join(" AND ") };
    let sql = format!(
        "SELECT {} FROM results WHERE {condition} ORDER BY received_at DESC, txn_id DESC LIMIT ?{}",
        columns!(),
        bound.len()
    );
    c.query(&sql, &bound, row)
}

fn row(r: &dyn Row) -> anyhow::Result<TransactionRow> {
    Ok(TransactionRow {
        txn_id: r.string(0)?,
        timestamp: crate::domain::rfc3339(r.int(1)?),
        received_at: r.int(2)?,
        amount: r.real(3)?,
        country: r.string(4)?,
        merchant: r.string(5)?,
        merchant_category: r.opt_string(6)?,
        card_masked: r.string(7)?,
        score: r.real32(8)?,
        action: column::parsed(r, 9)?,
        reasons: column::json_list(r, 10)?,
        model_version: r.string(11)?,
        latency_us: r.int32(12)?,
        rules: column::json_list(r, 13)?,
        verdict: column::parsed_opt(r, 14)?,
        fields: r.opt_text(15)?.and_then(|f| serde_json::from_str(f).ok()),
    })
}
