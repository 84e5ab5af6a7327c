//! Mapping a CSV's header to the transaction fields Aegis needs.

use super::{LabelledTransaction, parse_country, parse_label, parse_timestamp};
use crate::domain::fields::{FieldValue, Schema, value::parse_cells};
use crate::domain::{CardKey, Transaction, TransactionIn};
use anyhow::{anyhow, bail};
use std::str::FromStr;

/// The fields a transaction file can provide; `card`, `timestamp` and `amount` are required.
const FIELDS: [(&str, bool); 10] = [
    ("txn_id", false),
    ("timestamp", true),
    ("card", true),
    ("amount", true),
    ("country", false),
    ("merchant", false),
    ("merchant_category", false),
    ("label", false),
    ("label_time", false),
    ("scenario", false),
];

/// Which CSV column holds each field. Defaults are the generator's column names; override with
/// `field=COLUMN` pairs, e.g. `card=CUSTOMER,timestamp=TX_TIME,label=TX_FRAUD`.
/// Declared fields (`--schema`) are read from their own columns ([`Schema`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnMap {
    names: [String; 10],
    schema: Schema,
}

impl Default for ColumnMap {
    fn default() -> Self {
        Self {
            names: [
                "txn_id",
                "timestamp",
                "card_num",
                "amount",
                "country",
                "merchant",
                "merchant_category",
                "label",
                "label_time",
                "fraud_scenario",
            ]
            .map(String::from),
            schema: Schema::default(),
        }
    }
}

impl FromStr for ColumnMap {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        let mut map = Self::default();
        for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, column) = pair
                .split_once('=')
                .ok_or_else(|| anyhow!("column mapping `{pair}` is not of the form field=COLUMN"))?;
            let i = FIELDS.iter().position(|(f, _)| *f == field.trim()).ok_or_else(|| {
                anyhow!("unknown field `{}` in column mapping; fields are {}", field.trim(), field_list())
            })?;
            map.names[i] = column.trim().to_owned();
        }
        Ok(map)
    }
}

fn field_list() -> String {
    FIELDS.iter().map(|f| f.0).collect::<Vec<_>>().join(", ")
}

impl ColumnMap {
    /// The same mapping, reading `schema`'s declared fields too.
    pub fn with_schema(mut self, schema: Schema) -> Self {
        self.schema = schema;
        self
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The column the label is read from.
    pub fn label_name(&self) -> &str {
        &self.names[7]
    }

    /// Finds each field's column in `headers`. A missing required column is an error naming it;
    /// a missing optional one is simply absent.
    pub fn resolve(&self, headers: &csv::StringRecord) -> anyhow::Result<ResolvedColumns> {
        let mut idx = [None; 10];
        for (i, (field, required)) in FIELDS.iter().enumerate() {
            idx[i] = headers.iter().position(|h| h == self.names[i]);
            if idx[i].is_none() && *required {
                let have: Vec<&str> = headers.iter().collect();
                if let [only] = have.as_slice()
                    && let Some(sep) = [';', '\t', '|'].into_iter().find(|&c| only.contains(c))
                {
                    bail!(
                        "the header looks {}-separated ({only}): aegis reads comma-separated files; \
                         convert the file first",
                        if sep == '\t' { "tab".to_owned() } else { format!("`{sep}`") }
                    );
                }
                bail!(
                    "no column `{}` for the {field} field (the header has: {}); map it with --columns {field}=COLUMN",
                    self.names[i],
                    have.join(", ")
                );
            }
        }
        let mut declared = Vec::with_capacity(self.schema.len());
        for field in self.schema.fields() {
            let wanted = field.csv_columns();
            let found: Option<Vec<usize>> = wanted.iter().map(|c| headers.iter().position(|h| h == *c)).collect();
            if found.is_none() && field.required {
                bail!(
                    "no column `{}` for the required field `{}` of the schema (the header has: {})",
                    wanted.join("` and `"),
                    field.name,
                    headers.iter().collect::<Vec<_>>().join(", ")
                );
            }
            declared.push(found);
        }
        Ok(ResolvedColumns { idx, names: self.names.clone(), schema: self.schema.clone(), declared })
    }
}

fn cols_name(field: &crate::domain::fields::Field) -> String {
    field.csv_columns().join("`/`")
}

/// Column positions for one file.
#[derive(Debug)]
pub struct ResolvedColumns {
    idx: [Option<usize>; 10],
    names: [String; 10],
    schema: Schema,
    /// Per declared field, its column(s); `None` when the file lacks them (all missing).
    declared: Vec<Option<Vec<usize>>>,
}

impl ResolvedColumns {
    pub fn has_label(&self) -> bool {
        self.idx[7].is_some()
    }

    pub fn has_scenario(&self) -> bool {
        self.idx[9].is_some()
    }

    fn field<'r>(&self, record: &'r csv::StringRecord, i: usize) -> Option<&'r str> {
        self.idx[i].and_then(|c| record.get(c))
    }

    /// The declared fields' values of a record, or which line and field is wrong.
    fn declared(
        &self,
        record: &csv::StringRecord,
        line: u64,
        key: &CardKey,
    ) -> anyhow::Result<crate::domain::fields::Fields> {
        self.schema
            .fields()
            .iter()
            .zip(&self.declared)
            .map(|(field, cols)| {
                let Some(cols) = cols else { return Ok(FieldValue::Missing) };
                let cells: Vec<&str> = cols.iter().map(|&c| record.get(c).unwrap_or("")).collect();
                // A PII value is never echoed, not even in an error message.
                let shown =
                    if field.pii { "(a PII value, not shown)".to_owned() } else { format!("`{}`", cells.join(",")) };
                let value = parse_cells(field, &cells, key)
                    .map_err(|why| anyhow!("line {line}, column `{}`: {shown} {why}", cols_name(field)))?;
                if field.required && value.is_missing() {
                    bail!("line {line}, column `{}`: missing value (the field is required)", cols_name(field));
                }
                Ok(value)
            })
            .collect()
    }

    /// The declared fields of a record as JSON keys of a request (raw text: the server
    /// tokenizes PII on arrival).
    fn declared_json(&self, record: &csv::StringRecord) -> serde_json::Map<String, serde_json::Value> {
        let plain = CardKey::new(b"unused");
        let mut out = serde_json::Map::new();
        for (field, cols) in self.schema.fields().iter().zip(&self.declared) {
            let Some(cols) = cols else { continue };
            let cells: Vec<&str> = cols.iter().map(|&c| record.get(c).unwrap_or("")).collect();
            let raw = crate::domain::fields::Field { pii: false, ..field.clone() };
            if let Ok(v) = parse_cells(&raw, &cells, &plain).map(|v| v.to_json()) {
                if !v.is_null() {
                    out.insert(field.name.clone(), v);
                }
            }
        }
        out
    }

    /// The record as an API request (raw card number kept), its label and its Unix time.
    pub fn request(
        &self,
        record: &csv::StringRecord,
        line: u64,
        key: &CardKey,
    ) -> anyhow::Result<(TransactionIn, Option<bool>, i64)> {
        let row = self.parse(record, line, key)?;
        let t = row.txn;
        let request = TransactionIn {
            txn_id: t.txn_id,
            timestamp: crate::domain::rfc3339(t.timestamp).into(),
            amount: t.amount,
            country: t.country.as_str().to_owned(),
            merchant: t.merchant,
            card_num: self.field(record, 2).map(str::to_owned),
            card_token: None,
            card_masked: None,
            merchant_category: t.merchant_category,
            currency: None,
            fields: self.declared_json(record),
        };
        Ok((request, row.label, t.timestamp))
    }

    /// Parses one record into a transaction, or says which line and column is wrong.
    pub fn parse(&self, record: &csv::StringRecord, line: u64, key: &CardKey) -> anyhow::Result<LabelledTransaction> {
        let bad =
            |i: usize, value: &str, why: &str| anyhow!("line {line}, column `{}`: `{value}` {why}", self.names[i]);
        let required = |i: usize| {
            self.field(record, i)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| anyhow!("line {line}, column `{}`: missing value", self.names[i]))
        };
        let ts_text = required(1)?;
        let timestamp = parse_timestamp(ts_text)
            .ok_or_else(|| bad(1, ts_text, "is not a timestamp (RFC 3339, `YYYY-MM-DD HH:MM:SS` or Unix seconds)"))?;
        let card = required(2)?;
        let amount_text = required(3)?;
        let amount: f64 = amount_text
            .parse()
            .ok()
            .filter(|a: &f64| a.is_finite() && *a >= 0.0)
            .ok_or_else(|| bad(3, amount_text, "is not a non-negative number"))?;
        let country_text = self.field(record, 4).unwrap_or("");
        let country =
            parse_country(country_text).ok_or_else(|| bad(4, country_text, "is not a two-letter country code"))?;
        let label = match self.field(record, 7) {
            None => None,
            Some(v) => Some(parse_label(v).ok_or_else(|| bad(7, v, "is not a label (0 or 1)"))?),
        };
        let label_time = match self.field(record, 8).filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => Some(
                parse_timestamp(v)
                    .ok_or_else(|| bad(8, v, "is not a timestamp (RFC 3339, `YYYY-MM-DD HH:MM:SS` or Unix seconds)"))?,
            ),
        };
        let scenario = self.field(record, 9).filter(|v| !v.is_empty()).map(Box::from);
        let masked_card = crate::domain::mask_pan(card);
        Ok(LabelledTransaction {
            txn: Transaction {
                txn_id: self.field(record, 0).map_or_else(|| format!("line-{line}"), str::to_owned),
                timestamp,
                card: key.token(card),
                amount,
                country,
                merchant: self.field(record, 5).unwrap_or("").to_owned(),
                merchant_category: self.field(record, 6).filter(|c| !c.is_empty()).map(str::to_owned),
                bin: crate::domain::bin_of(&masked_card),
                fields: self.declared(record, line, key)?,
            },
            label,
            label_time,
            scenario,
            masked_card,
            line,
        })
    }
}
