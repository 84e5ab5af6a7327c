//! A label as clients send it (`POST /labels`, `aegis labels import`), and its validation: as
//! strict as a transaction's, every rejection naming its field.

use super::Verdict;
use super::time::parse_timestamp;
use super::wire::latest_timestamp;
use super::wire::{MAX_ID_LEN, MIN_TIMESTAMP, Rejection, optional_text, present, text, unix_seconds, wrong_type};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest `source`.
const MAX_SOURCE: usize = 32;
/// Longest `note`.
const MAX_NOTE: usize = 1_000;

/// One label, as sent to `POST /labels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LabelRequest {
    /// The labelled transaction (already scored by Aegis).
    #[schema(example = "9f2c01d4a1b3e7f0", min_length = 1, max_length = 128)]
    pub txn_id: String,
    pub label: Verdict,
    /// Who says so: lower-case letters, digits, `_` and `-`, at most 32 (`chargeback`,
    /// `analyst`, `customer`, …). One label per transaction and source; a later `reported_at`
    /// replaces it.
    #[schema(example = "chargeback", pattern = "^[a-z0-9_-]{1,32}$")]
    pub source: String,
    /// When the label became known: RFC 3339 or Unix seconds; default now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "2025-01-08T09:00:00Z")]
    pub reported_at: Option<Value>,
    /// Free text, at most 1,000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 1000)]
    pub note: Option<String>,
}

/// A validated label.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelIn {
    pub txn_id: String,
    pub verdict: Verdict,
    pub source: String,
    /// When the label became known, Unix seconds.
    pub reported_at: i64,
    pub note: Option<String>,
}

impl LabelRequest {
    /// Validates one JSON value (which must be an object); `now` is the default `reported_at`.
    pub fn validate(value: &Value, now: i64) -> Result<LabelIn, Rejection> {
        let obj = value.as_object().ok_or_else(|| Rejection {
            code: "invalid_body",
            message: "expected a JSON object".into(),
            field: None,
        })?;
        let txn_id = text(obj, "txn_id", MAX_ID_LEN)?.to_owned();
        let verdict = match present(obj, "label")? {
            Value::String(s) => {
                s.parse::<Verdict>().map_err(|m| Rejection::field("invalid_value", "label", format!("`label`: {m}")))?
            }
            _ => return Err(wrong_type("label", "the string \"fraud\" or \"legit\"")),
        };
        let source = text(obj, "source", MAX_SOURCE)?;
        if !source.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-') {
            return Err(Rejection::field(
                "invalid_value",
                "source",
                "`source` must be lower-case letters, digits, `_` or `-` (e.g. chargeback, analyst)",
            ));
        }
        let reported_at = match obj.get("reported_at") {
            None | Some(Value::Null) => now,
            Some(Value::String(s)) => parse_timestamp(s).ok_or_else(|| {
                Rejection::field(
                    "invalid_value",
                    "reported_at",
                    "`reported_at` must be RFC 3339, e.g. 2025-01-08T09:00:00Z",
                )
            })?,
            Some(Value::Number(n)) => unix_seconds(n).ok_or_else(|| wrong_type("reported_at", "whole Unix seconds"))?,
            Some(_) => return Err(wrong_type("reported_at", "an RFC 3339 string or Unix seconds")),
        };
        if !(MIN_TIMESTAMP..=latest_timestamp(now)).contains(&reported_at) {
            return Err(Rejection::field(
                "invalid_value",
                "reported_at",
                "`reported_at` must be after 2000 and at most the end of tomorrow (UTC)",
            ));
        }
        let note = optional_text(obj, "note", MAX_NOTE)?.map(str::to_owned);
        Ok(LabelIn { txn_id, verdict, source: source.to_owned(), reported_at, note })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_label_defaults_its_time_to_now_and_each_rejection_names_its_field() {
        let ok =
            LabelRequest::validate(&json!({"txn_id": "t1", "label": "fraud", "source": "chargeback"}), NOW).unwrap();
        assert_eq!((ok.verdict, ok.reported_at, ok.source.as_str()), (Verdict::Fraud, NOW, "chargeback"));
        let with = |field: &str, value: Value| {
            let mut v = json!({"txn_id": "t1", "label": "legit", "source": "analyst"});
            v[field] = value;
            LabelRequest::validate(&v, NOW)
        };
        assert_eq!(with("reported_at", json!("2025-01-08T09:00:00Z")).unwrap().reported_at, 1_736_326_800);
        for (field, value, code) in [
            ("label", json!("maybe"), "invalid_value"),
            ("label", json!(1), "invalid_type"),
            ("label", Value::Null, "missing_field"),
            ("source", json!("Chargeback!"), "invalid_value"),
            ("source", json!(""), "invalid_value"),
            ("txn_id", json!(7), "invalid_type"),
            ("reported_at", json!("yesterday"), "invalid_value"),
            ("reported_at", json!(NOW + 200_000), "invalid_value"),
            ("note", json!(["x"]), "invalid_type"),
        ] {
            let r = with(field, value.clone()).unwrap_err();
            assert_eq!((r.code, r.field.as_deref()), (code, Some(field)), "{field} = {value}: {r:?}");
        }
        assert_eq!(LabelRequest::validate(&json!([1]), NOW).unwrap_err().code, "invalid_body");
    }
}
