//! Purely numeric, already-preprocessed CSVs: every chosen column is a feature, one is the target.

use super::parse_label;
use aegis_model::Matrix;
use anyhow::{Context, bail};
use std::path::Path;

/// Which columns to use.
#[derive(Debug, Clone, Default)]
pub struct NumericSpec {
    /// The label column, if any.
    pub target: Option<String>,
    /// Feature columns; empty means every numeric column except the target.
    pub features: Vec<String>,
}

/// Features, labels and the feature names, in file order.
#[derive(Debug)]
pub struct NumericData {
    pub names: Vec<String>,
    pub matrix: Matrix,
    pub labels: Option<Vec<bool>>,
    pub skipped: Vec<String>,
}

pub fn read_numeric(path: &Path, spec: &NumericSpec, skip_bad_rows: bool) -> anyhow::Result<NumericData> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let headers = reader.headers().with_context(|| format!("{}: cannot read the header line", path.display()))?.clone();
    if headers.iter().all(str::is_empty) {
        bail!("{}: the file is empty (no header line)", path.display());
    }
    let position = |name: &str| {
        headers.iter().position(|h| h == name).with_context(|| {
            format!(
                "{}: no column `{name}` (the header has: {})",
                path.display(),
                headers.iter().collect::<Vec<_>>().join(", ")
            )
        })
    };
    let target = spec.target.as_deref().map(position).transpose()?;
    let mut records = reader.records();
    let first = match records.next() {
        Some(r) => r.with_context(|| format!("{}: line 2", path.display()))?,
        None => bail!("{}: no data rows", path.display()),
    };
    let columns: Vec<usize> = if spec.features.is_empty() {
        // Every column whose first value is a number, except the target.
        (0..headers.len())
            .filter(|&c| Some(c) != target && first.get(c).is_some_and(|v| v.parse::<f64>().is_ok()))
            .collect()
    } else {
        spec.features.iter().map(|f| position(f)).collect::<anyhow::Result<_>>()?
    };
    if columns.is_empty() {
        bail!("{}: no numeric feature columns (name them with --features)", path.display());
    }
    let names: Vec<String> = columns.iter().map(|&c| headers[c].to_owned()).collect();
    let mut matrix = Matrix::with_cols(columns.len());
    let mut labels = target.map(|_| Vec::new());
    let mut skipped = Vec::new();
    let mut row = vec![0f32; columns.len()];
    for (k, record) in std::iter::once(Ok(first)).chain(records).enumerate() {
        let line = k as u64 + 2;
        let parsed = record
            .map_err(anyhow::Error::from)
            .and_then(|rec| parse_row(&rec, &columns, &names, target, &mut row, line).map(|l| (l, rec)));
        match parsed {
            Ok((label, _)) => {
                matrix.push_row(&row)?;
                if let (Some(labels), Some(l)) = (labels.as_mut(), label) {
                    labels.push(l);
                }
            }
            Err(e) if skip_bad_rows => skipped.push(e.to_string()),
            Err(e) => bail!("{}: {e}", path.display()),
        }
    }
    if matrix.is_empty() {
        bail!("{}: no data rows that could be parsed", path.display());
    }
    Ok(NumericData { names, matrix, labels, skipped })
}

fn parse_row(
    rec: &csv::StringRecord,
    columns: &[usize],
    names: &[String],
    target: Option<usize>,
    row: &mut [f32],
    line: u64,
) -> anyhow::Result<Option<bool>> {
    for ((slot, &c), name) in row.iter_mut().zip(columns).zip(names) {
        let text = rec.get(c).unwrap_or("");
        *slot = text
            .parse::<f32>()
            .ok()
            .filter(|v| v.is_finite())
            .with_context(|| format!("line {line}, column `{name}`: `{text}` is not a finite number"))?;
    }
    target
        .map(|t| {
            let text = rec.get(t).unwrap_or("");
            parse_label(text).with_context(|| format!("line {line}, target column: `{text}` is not a label (0 or 1)"))
        })
        .transpose()
}
