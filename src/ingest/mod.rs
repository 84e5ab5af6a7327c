//! Reading training and evaluation data from CSV.
//!
//! Two shapes: transaction CSVs (the generator's, or any with a `--columns` mapping), which go
//! through the feature pipeline, and purely numeric, already-preprocessed CSVs (`--numeric`),
//! whose columns are the features. Every parse error names the line and the column.

mod columns;
mod numeric;

pub use crate::domain::parse_timestamp;
pub use columns::{ColumnMap, ResolvedColumns};
pub use numeric::{NumericData, NumericSpec, read_numeric};

use crate::domain::{CardKey, Country, Transaction, TransactionIn};
use anyhow::{Context, bail};
use std::path::Path;

/// A transaction read from a file, with its label if the file has one.
#[derive(Debug, Clone)]
pub struct LabelledTransaction {
    pub txn: Transaction,
    pub label: Option<bool>,
    /// When the label became known (a `label_time` column), if the file says.
    pub label_time: Option<i64>,
    /// The fraud scenario id (a `fraud_scenario` column), for per-scenario reports.
    pub scenario: Option<Box<str>>,
    /// The card number masked for display (first 6 / last 4); the raw PAN is not kept.
    pub masked_card: String,
    /// 1-based line in the file, for messages.
    pub line: u64,
}

/// What a read produced: rows in timestamp order, and how many bad rows were skipped.
#[derive(Debug)]
pub struct TransactionData {
    pub rows: Vec<LabelledTransaction>,
    pub skipped: Vec<String>,
    pub has_labels: bool,
    pub has_scenarios: bool,
}

/// Reads a transaction CSV, tokenizing card ids with `key`, and sorts the rows by timestamp
/// (stable: rows with equal timestamps keep file order). A malformed row is an error naming
/// its line and column, unless `skip_bad_rows`, in which case it is counted and reported.
pub fn read_transactions(
    path: &Path,
    map: &ColumnMap,
    key: &CardKey,
    skip_bad_rows: bool,
    progress: impl FnMut(u64),
) -> anyhow::Result<TransactionData> {
    let (mut rows, skipped, cols) =
        read_records(path, map, skip_bad_rows, progress, |cols, record, line| cols.parse(record, line, key))?;
    rows.sort_by_key(|r| r.txn.timestamp);
    Ok(TransactionData { rows, skipped, has_labels: cols.has_label(), has_scenarios: cols.has_scenario() })
}

/// Reads a transaction CSV as API requests (raw card numbers included) with their labels, in
/// time order: what `aegis produce --data` sends. Every row is validated as `train` would.
pub fn read_requests(path: &Path, map: &ColumnMap) -> anyhow::Result<Vec<(TransactionIn, Option<bool>)>> {
    let key = CardKey::new(b"validation only");
    let (mut rows, _, _) =
        read_records(path, map, false, |_| {}, |cols, record, line| cols.request(record, line, &key))?;
    rows.sort_by_key(|(_, _, ts)| *ts);
    Ok(rows.into_iter().map(|(request, label, _)| (request, label)).collect())
}

/// The CSV reading loop shared by the readers above: `parse` turns each record into a `T`.
fn read_records<T>(
    path: &Path,
    map: &ColumnMap,
    skip_bad_rows: bool,
    mut progress: impl FnMut(u64),
    mut parse: impl FnMut(&ResolvedColumns, &csv::StringRecord, u64) -> anyhow::Result<T>,
) -> anyhow::Result<(Vec<T>, Vec<String>, ResolvedColumns)> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let headers =
        reader.headers().with_context(|| format!("cannot read the header line of {}", path.display()))?.clone();
    if headers.iter().all(str::is_empty) {
        bail!("{}: the file is empty (no header line)", path.display());
    }
    let cols = map.resolve(&headers).with_context(|| path.display().to_string())?;
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                if skip_bad_rows {
                    skipped.push(format!("line {line}: {e}"));
                    continue;
                }
                bail!("{}: line {line}: {e}", path.display());
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        match parse(&cols, &record, line) {
            Ok(row) => rows.push(row),
            Err(e) if skip_bad_rows => skipped.push(e.to_string()),
            Err(e) => bail!("{}: {e}", path.display()),
        }
        if line % 65_536 == 0 {
            progress(line);
        }
    }
    if rows.is_empty() {
        bail!("{}: no data rows{}", path.display(), if skipped.is_empty() { "" } else { " that could be parsed" });
    }
    Ok((rows, skipped, cols))
}

/// Parses a label: `0`/`1`, `true`/`false`, `0.0`/`1.0`.
pub fn parse_label(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "1.0" | "yes" => Some(true),
        "0" | "false" | "0.0" | "no" => Some(false),
        _ => None,
    }
}

/// Parses a country code; an empty field is "unknown".
pub fn parse_country(s: &str) -> Option<Country> {
    if s.trim().is_empty() { Some(Country::UNKNOWN) } else { Country::parse(s) }
}

#[cfg(test)]
mod tests;
