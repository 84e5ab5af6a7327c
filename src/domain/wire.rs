//! A transaction as clients send it (JSON, raw card number), and its validation.
//!
//! Parsing is by hand from a JSON object rather than through a derived `Deserialize`, so that
//! every rejection names its field and says what was wrong ("`amount` must be at most
//! 1000000"), which is what an API client needs to fix its request.

use super::time::parse_timestamp;
use super::{CardKey, CardToken, Country, Transaction, luhn_valid, mask_pan};
use crate::domain::fields::Schema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// Largest amount accepted: anything above is a client bug (cents sent as units, say).
pub const MAX_AMOUNT: f64 = 1_000_000.0;
/// Earliest timestamp accepted (2000-01-01T00:00:00Z).
pub const MIN_TIMESTAMP: i64 = 946_684_800;
/// The latest timestamp accepted at `now`: the end of tomorrow (UTC). A day or more of clock
/// skew passes; a date further ahead (milliseconds sent as seconds, a typo) does not. The bound
/// moves once a day, so the OpenAPI document can state it as a `maximum`.
pub fn latest_timestamp(now: i64) -> i64 {
    (now.div_euclid(86_400) + 2) * 86_400 - 1
}
pub(super) const MAX_ID_LEN: usize = 128;

/// One transaction to score, as sent to `POST /predict`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TransactionIn {
    /// Unique transaction id (1–128 characters); the idempotency key.
    #[schema(example = "9f2c01d4a1b3e7f0", min_length = 1, max_length = 128)]
    pub txn_id: String,
    /// When the card was used: RFC 3339 (`2025-01-01T12:30:45Z`) or Unix seconds.
    #[schema(value_type = String, example = "2025-01-01T12:30:45Z")]
    pub timestamp: Value,
    /// Amount in the card's currency, 0 to 1,000,000.
    #[schema(example = 42.5, minimum = 0, maximum = 1_000_000)]
    pub amount: f64,
    /// ISO 3166 alpha-2 country of the merchant.
    #[schema(example = "FR", pattern = "^[A-Za-z]{2}$")]
    pub country: String,
    /// Merchant (or terminal) id.
    #[schema(example = "M00042", min_length = 1, max_length = 128)]
    pub merchant: String,
    /// Card number: 12–19 digits passing the Luhn check. Never stored or logged. Required
    /// unless `card_token` and `card_masked` are sent instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "4111111111111111", pattern = "^[0-9]{12,19}$")]
    pub card_num: Option<String>,
    /// Instead of `card_num`: the card's token (32 hex digits, HMAC-SHA256 under the deployment's
    /// card key), as `aegis produce --target kafka://…` sends it unless told `--send-pan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[0-9a-fA-F]{32}$")]
    pub card_token: Option<String>,
    /// With `card_token`: the masked number (first 6 / last 4), for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "411111******1111", pattern = "^[0-9*]{0,18}[*][0-9*]{0,18}$", max_length = 19)]
    pub card_masked: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "grocery", max_length = 64)]
    pub merchant_category: Option<String>,
    /// ISO 4217 code, e.g. `EUR`; validated, not yet used for scoring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    /// The model's declared fields (`train --schema`), as top-level keys.
    #[serde(flatten)]
    #[schema(ignore)]
    pub fields: Map<String, Value>,
}

/// The keys a request may carry besides the declared fields.
pub const CORE_KEYS: [&str; 10] = [
    "txn_id",
    "timestamp",
    "amount",
    "country",
    "merchant",
    "card_num",
    "card_token",
    "card_masked",
    "merchant_category",
    "currency",
];

/// Why a request was rejected, naming the field when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: &'static str,
    pub message: String,
    pub field: Option<Cow<'static, str>>,
}

impl Rejection {
    pub(super) fn field(code: &'static str, field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), field: Some(field.into()) }
    }

    pub fn invalid_json(e: &serde_json::Error) -> Self {
        Self { code: "invalid_json", message: format!("the body is not valid JSON: {e}"), field: None }
    }
}

/// A transaction that passed validation, with its card number already tokenized and masked.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidTransaction {
    pub txn: Transaction,
    pub card_masked: String,
}

impl TransactionIn {
    /// Validates one JSON value (which must be an object) into a transaction carrying
    /// `schema`'s declared fields. A key that is neither a core field nor a declared one is
    /// refused (`unknown_field`): a misspelt field must not silently lose its signal.
    pub fn validate(value: &Value, key: &CardKey, schema: &Schema, now: i64) -> Result<ValidTransaction, Rejection> {
        Self::validate_keys(value, key, schema, now, true).map(|(valid, _)| valid)
    }

    /// [`TransactionIn::validate`] that accepts unknown keys and names the first one: what a
    /// stream consumer does, where an upstream adding a field must not stop scoring.
    pub fn validate_lenient(
        value: &Value,
        key: &CardKey,
        schema: &Schema,
        now: i64,
    ) -> Result<(ValidTransaction, Option<String>), Rejection> {
        Self::validate_keys(value, key, schema, now, false)
    }

    fn validate_keys(
        value: &Value,
        key: &CardKey,
        schema: &Schema,
        now: i64,
        refuse_unknown: bool,
    ) -> Result<(ValidTransaction, Option<String>), Rejection> {
        let obj = value.as_object().ok_or_else(|| Rejection {
            code: "invalid_body",
            message: "expected a JSON object".into(),
            field: None,
        })?;
        let txn_id = text(obj, "txn_id", MAX_ID_LEN)?;
        let timestamp = timestamp(obj, now)?;
        let amount = amount(obj)?;
        let country_text = text(obj, "country", 2)?;
        let country = Country::parse(country_text)
            .ok_or_else(|| Rejection::field("invalid_value", "country", "`country` must be two letters (ISO 3166)"))?;
        let merchant = text(obj, "merchant", MAX_ID_LEN)?;
        let (card, card_masked) = card(obj, key)?;
        let merchant_category = optional_text(obj, "merchant_category", 64)?;
        if let Some(c) = optional_text(obj, "currency", 3)?
            && !(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(Rejection::field("invalid_value", "currency", "`currency` must be three capital letters"));
        }
        let unknown = obj.keys().find(|k| !CORE_KEYS.contains(&k.as_str()) && schema.position(k).is_none());
        if let Some(unknown) = unknown.filter(|_| refuse_unknown) {
            return Err(super::fields::request::unknown_field(unknown, schema));
        }
        let fields = super::fields::request::declared(obj, key, schema)?;
        let valid = ValidTransaction {
            txn: Transaction {
                txn_id: txn_id.to_owned(),
                timestamp,
                card,
                amount,
                country,
                merchant: merchant.to_owned(),
                merchant_category: merchant_category.map(str::to_owned),
                bin: super::bin_of(&card_masked),
                fields,
            },
            card_masked,
        };
        Ok((valid, unknown.cloned()))
    }

    /// The same request with the card number replaced by its token and masked form (what a
    /// Kafka message carries unless the deployment asks for PANs on the wire).
    pub fn tokenized(mut self, key: &CardKey) -> Self {
        if let Some(pan) = self.card_num.take() {
            self.card_token = Some(key.token(&pan).to_string());
            self.card_masked = Some(mask_pan(&pan));
        }
        self
    }

    /// The card's token under `key` (from the number, or as sent).
    pub fn token(&self, key: &CardKey) -> Option<CardToken> {
        match (&self.card_num, &self.card_token) {
            (Some(pan), _) => Some(key.token(pan)),
            (None, Some(token)) => CardToken::from_hex(token),
            (None, None) => None,
        }
    }

    /// The masked card number, whichever way the card was sent.
    pub fn masked_card(&self) -> String {
        self.card_num.as_deref().map_or_else(|| self.card_masked.clone().unwrap_or_default(), mask_pan)
    }
}

pub(super) fn present<'a>(obj: &'a Map<String, Value>, field: &'static str) -> Result<&'a Value, Rejection> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(Rejection::field("missing_field", field, format!("`{field}` is required"))),
        Some(v) => Ok(v),
    }
}

pub(super) fn wrong_type(field: &'static str, expected: &str) -> Rejection {
    Rejection::field("invalid_type", field, format!("`{field}` must be {expected}"))
}

/// A non-empty string of at most `max` characters with no control characters.
pub(super) fn text<'a>(obj: &'a Map<String, Value>, field: &'static str, max: usize) -> Result<&'a str, Rejection> {
    let s = present(obj, field)?.as_str().ok_or_else(|| wrong_type(field, "a string"))?;
    check_text(s, field, max)
}

pub(super) fn optional_text<'a>(
    obj: &'a Map<String, Value>,
    field: &'static str,
    max: usize,
) -> Result<Option<&'a str>, Rejection> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            v.as_str().ok_or_else(|| wrong_type(field, "a string")).and_then(|s| check_text(s, field, max)).map(Some)
        }
    }
}

fn check_text<'a>(s: &'a str, field: &'static str, max: usize) -> Result<&'a str, Rejection> {
    if s.trim().is_empty() {
        return Err(Rejection::field("invalid_value", field, format!("`{field}` must not be empty")));
    }
    if s.chars().count() > max {
        return Err(Rejection::field("invalid_value", field, format!("`{field}` must be at most {max} characters")));
    }
    if s.chars().any(char::is_control) {
        return Err(Rejection::field("invalid_value", field, format!("`{field}` must not contain control characters")));
    }
    Ok(s)
}

fn timestamp(obj: &Map<String, Value>, now: i64) -> Result<i64, Rejection> {
    const FIELD: &str = "timestamp";
    let ts = match present(obj, FIELD)? {
        Value::String(s) => parse_timestamp(s).ok_or_else(|| {
            Rejection::field("invalid_value", FIELD, "`timestamp` must be RFC 3339, e.g. 2025-01-01T12:30:45Z")
        })?,
        Value::Number(n) => unix_seconds(n).ok_or_else(|| wrong_type(FIELD, "whole Unix seconds"))?,
        _ => return Err(wrong_type(FIELD, "an RFC 3339 string or Unix seconds")),
    };
    if !(MIN_TIMESTAMP..=latest_timestamp(now)).contains(&ts) {
        return Err(Rejection::field(
            "invalid_value",
            FIELD,
            "`timestamp` must be after 2000 and at most the end of tomorrow (UTC)",
        ));
    }
    Ok(ts)
}

/// Whole seconds from a JSON number: an integer, or a float with no fraction (`1735689600.0`,
/// which JSON Schema also counts as an integer).
pub(super) fn unix_seconds(n: &serde_json::Number) -> Option<i64> {
    n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18).map(|f| f as i64))
}

fn amount(obj: &Map<String, Value>) -> Result<f64, Rejection> {
    const FIELD: &str = "amount";
    let a = present(obj, FIELD)?.as_f64().ok_or_else(|| wrong_type(FIELD, "a number"))?;
    if !a.is_finite() || a < 0.0 {
        return Err(Rejection::field("invalid_value", FIELD, "`amount` must not be negative"));
    }
    if a > MAX_AMOUNT {
        return Err(Rejection::field("invalid_value", FIELD, format!("`amount` must be at most {MAX_AMOUNT}")));
    }
    Ok(a)
}

/// The card's token and masked number, from `card_num` or from `card_token` + `card_masked`.
fn card(obj: &Map<String, Value>, key: &CardKey) -> Result<(CardToken, String), Rejection> {
    let given = |field: &str| obj.get(field).is_some_and(|v| !v.is_null());
    if given("card_num") {
        // One way to name the card: a token next to a number could disagree with it.
        if let Some(field) = ["card_token", "card_masked"].into_iter().find(|f| given(f)) {
            return Err(Rejection::field(
                "invalid_value",
                field,
                format!(
                    "send `card_num`, or `card_token` with `card_masked`, not both (`{field}` was sent with `card_num`)"
                ),
            ));
        }
    } else if given("card_token") {
        let token = text(obj, "card_token", 32)?;
        let token = CardToken::from_hex(token)
            .ok_or_else(|| Rejection::field("invalid_value", "card_token", "`card_token` must be 32 hex digits"))?;
        let masked = text(obj, "card_masked", 19)?;
        if !masked.bytes().all(|b| b.is_ascii_digit() || b == b'*') || !masked.contains('*') {
            return Err(Rejection::field("invalid_value", "card_masked", "`card_masked` must be digits and `*`"));
        }
        return Ok((token, masked.to_owned()));
    }
    let pan = card_num(obj)?;
    Ok((key.token(pan), mask_pan(pan)))
}

fn card_num(obj: &Map<String, Value>) -> Result<&str, Rejection> {
    const FIELD: &str = "card_num";
    // A number would lose digits past 2^53, so only a string is accepted.
    let s = present(obj, FIELD)?.as_str().ok_or_else(|| wrong_type(FIELD, "a string of digits"))?;
    if !(12..=19).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejection::field("invalid_value", FIELD, "`card_num` must be 12 to 19 digits"));
    }
    if !luhn_valid(s) {
        return Err(Rejection::field("invalid_value", FIELD, "`card_num` fails the Luhn check"));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn valid() -> Value {
        json!({"txn_id": "t1", "timestamp": "2025-01-01T12:30:45Z", "amount": 12.5, "country": "fr",
               "merchant": "M1", "card_num": "4111111111111111", "merchant_category": "grocery"})
    }

    /// The rejection of the valid transaction with `field` set to `value` (`None` removes it).
    fn rejection(field: &str, value: Option<Value>) -> Rejection {
        let mut v = valid();
        let obj = v.as_object_mut().unwrap();
        match value {
            Some(value) => obj.insert(field.into(), value),
            None => obj.remove(field),
        };
        TransactionIn::validate(&v, &CardKey::new(b"k"), &Schema::default(), NOW).unwrap_err()
    }

    #[test]
    fn a_valid_transaction_is_tokenized_and_masked() {
        let key = CardKey::new(b"k");
        let t = TransactionIn::validate(&valid(), &key, &Schema::default(), NOW).unwrap();
        assert_eq!(t.txn.timestamp, 1_735_734_645);
        assert_eq!(t.txn.country.as_str(), "FR");
        assert_eq!(t.txn.card, key.token("4111111111111111"));
        assert_eq!(t.card_masked, "411111******1111");
        assert_eq!(t.txn.merchant_category.as_deref(), Some("grocery"));
    }

    #[test]
    fn each_rejection_names_its_field() {
        let cases = [
            ("missing_field", "amount", None),
            ("missing_field", "txn_id", Some(Value::Null)),
            ("invalid_type", "amount", Some(json!("12"))),
            ("invalid_value", "amount", Some(json!(-1))),
            ("invalid_value", "amount", Some(json!(1e12))),
            ("invalid_value", "timestamp", Some(json!("soon"))),
            ("invalid_value", "timestamp", Some(json!(NOW + 200_000))),
            ("invalid_type", "timestamp", Some(json!(true))),
            ("invalid_type", "timestamp", Some(json!(1_735_689_600.5))),
            ("invalid_value", "country", Some(json!("F1"))),
            ("invalid_value", "merchant", Some(json!(" "))),
            ("invalid_value", "card_num", Some(json!("4111111111111112"))),
            ("invalid_value", "card_num", Some(json!("41111"))),
            ("invalid_type", "card_num", Some(json!(4111111111111111u64))),
            ("invalid_value", "card_token", Some(json!("00112233445566778899aabbccddeeff"))),
            ("invalid_value", "card_masked", Some(json!(7))),
            ("invalid_value", "currency", Some(json!("euro"))),
        ];
        for (code, field, value) in cases {
            let r = rejection(field, value);
            assert_eq!((r.code, r.field.as_deref()), (code, Some(field)), "{r:?}");
            assert!(r.message.contains(field), "{r:?}");
        }
    }

    #[test]
    fn a_token_and_masked_number_stand_in_for_the_card_number() {
        let key = CardKey::new(b"k");
        let request: TransactionIn = serde_json::from_value(valid()).unwrap();
        let tokenized = request.clone().tokenized(&key);
        assert_eq!(tokenized.card_num, None);
        assert_eq!(tokenized.token(&key), request.token(&key));
        let value = serde_json::to_value(&tokenized).unwrap();
        assert!(!value.to_string().contains("4111111111111111"), "{value}");
        let t = TransactionIn::validate(&value, &key, &Schema::default(), NOW).unwrap();
        assert_eq!((t.txn.card, t.card_masked.as_str()), (key.token("4111111111111111"), "411111******1111"));
        let mut bad = value.clone();
        bad["card_token"] = json!("xyz");
        let r = TransactionIn::validate(&bad, &key, &Schema::default(), NOW).unwrap_err();
        assert_eq!(r.field.as_deref(), Some("card_token"));
    }

    #[test]
    fn a_rejection_never_echoes_the_card_number() {
        let r = rejection("card_num", Some(json!("4111111111111112")));
        assert!(!r.message.contains("4111111111111112"));
    }
}
