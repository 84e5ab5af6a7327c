//! Reading training and evaluation data from CSV.
//!
//! Two shapes: transaction CSVs (the generator's, or any with a `--columns` mapping), which go
//! through the feature pipeline, and purely numeric, already-preprocessed CSVs (`--numeric`),
//! whose columns are the features. Every parse error names the line and the column.

mod columns;
mod numeric;
mod timestamp;

pub use columns::ColumnMap;
pub use numeric::{NumericData, NumericSpec, read_numeric};
pub use timestamp::parse_timestamp;

use crate::domain::{CardKey, Country, Transaction};
use anyhow::{Context, bail};
use std::path::Path;

/// A transaction read from a file, with its label if the file has one.
#[derive(Debug, Clone)]
pub struct LabelledTransaction {
    pub txn: Transaction,
    pub label: Option<bool>,
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
}

/// Reads a transaction CSV, tokenizing card ids with `key`, and sorts the rows by timestamp
/// (stable: rows with equal timestamps keep file order). A malformed row is an error naming
/// its line and column, unless `skip_bad_rows`, in which case it is counted and reported.
pub fn read_transactions(
    path: &Path,
    map: &ColumnMap,
    key: &CardKey,
    skip_bad_rows: bool,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<TransactionData> {
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
        match cols.parse(&record, line, key) {
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
    rows.sort_by_key(|r| r.txn.timestamp);
    Ok(TransactionData { rows, skipped, has_labels: cols.has_label() })
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
