//! The value a transaction carries for a declared field: parsed from a CSV cell or a JSON
//! key, validated per kind, PII tokenized on arrival, written back as JSON for the store.

use super::{Field, Kind, Schema};
use crate::domain::CardKey;

/// Longest text value of a category or entity field.
pub const MAX_TEXT: usize = 256;

/// One declared field's value. Category and entity values are text; a `pii` field's text is
/// already its token (`tok_…`), never the raw value.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Missing,
    Number(f64),
    Flag(bool),
    Text(Box<str>),
    Location { lat: f64, lon: f64 },
}

/// A transaction's values, in schema order (empty without a schema: no allocation).
pub type Fields = Box<[FieldValue]>;

impl FieldValue {
    pub fn is_missing(&self) -> bool {
        matches!(self, Self::Missing)
    }

    pub fn text(&self) -> Option<&str> {
        match self {
            Self::Text(t) => Some(t),
            _ => None,
        }
    }

    /// The value as JSON (what the store keeps and rules read); `null` when missing.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Self::Missing => serde_json::Value::Null,
            Self::Number(n) => json!(n),
            Self::Flag(b) => json!(b),
            Self::Text(t) => json!(t),
            Self::Location { lat, lon } => json!({ "lat": lat, "lon": lon }),
        }
    }
}

/// The token a PII value is replaced with: a keyed hash of the field's name and the value
/// (so the same e-mail in two fields, or equal to a card number, gives unrelated tokens).
pub fn tokenize(key: &CardKey, field: &str, value: &str) -> String {
    let token = key.token(&format!("{field}\0{value}")).to_string();
    format!("tok_{}", &token[..20])
}

/// True for what [`tokenize`] writes: a value tokenized upstream (`aegis produce` to a Kafka
/// topic, under the deployment's card key) is taken as it is, not tokenized twice.
pub fn is_token(value: &str) -> bool {
    value.len() == 24
        && value.starts_with("tok_")
        && value[4..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parses a CSV cell (`cells` holds one cell, or two for a location read from two columns).
/// An empty cell is missing.
pub fn parse_cells(field: &Field, cells: &[&str], key: &CardKey) -> Result<FieldValue, String> {
    let cells: Vec<&str> = cells.iter().map(|c| c.trim()).collect();
    if cells.iter().all(|c| c.is_empty()) {
        return Ok(FieldValue::Missing);
    }
    match (field.kind, cells.as_slice()) {
        (Kind::Location, [lat, lon]) => location(lat.parse().ok(), lon.parse().ok()),
        (Kind::Location, [both]) => {
            let (lat, lon) = both.split_once(',').ok_or("is not a location (\"lat,lon\")")?;
            location(lat.trim().parse().ok(), lon.trim().parse().ok())
        }
        (Kind::Number, [n]) => number(field, n.parse().ok()),
        (Kind::Flag, [b]) => flag(b).ok_or_else(|| "is not a flag (true/false, 1/0, yes/no)".into()),
        (_, [t]) => text(field, t, key),
        _ => Err("has the wrong number of columns".into()),
    }
}

/// Parses a JSON value (an API request, a Kafka message); `null` is missing. Stricter than a
/// CSV cell, as `/openapi.json` states: text as a string, a location as `{"lat", "lon"}`.
pub fn parse_json(field: &Field, value: &serde_json::Value, key: &CardKey) -> Result<FieldValue, String> {
    use serde_json::Value;
    match (field.kind, value) {
        (_, Value::Null) => Ok(FieldValue::Missing),
        (Kind::Number, Value::Number(n)) => number(field, n.as_f64()),
        (Kind::Number, _) => Err("must be a number".into()),
        (Kind::Flag, Value::Bool(b)) => Ok(FieldValue::Flag(*b)),
        (Kind::Flag, _) => Err("must be true or false".into()),
        (Kind::Category | Kind::Entity, Value::String(s)) => text(field, s, key),
        (Kind::Category | Kind::Entity, _) => Err("must be a string".into()),
        (Kind::Location, Value::Object(o)) => {
            location(o.get("lat").and_then(Value::as_f64), o.get("lon").and_then(Value::as_f64))
        }
        (Kind::Location, _) => Err("must be {\"lat\": …, \"lon\": …}".into()),
    }
}

/// The values as the store keeps them: a JSON object by field name (missing ones left out),
/// `None` without a schema or when every value is missing.
pub fn to_stored(schema: &Schema, values: &[FieldValue]) -> Option<String> {
    let object: serde_json::Map<String, serde_json::Value> = schema
        .fields()
        .iter()
        .zip(values)
        .filter(|(_, v)| !v.is_missing())
        .map(|(f, v)| (f.name.clone(), v.to_json()))
        .collect();
    (!object.is_empty()).then(|| serde_json::Value::Object(object).to_string())
}

/// Values read back from the store for `schema`, by name (a field the object lacks, or holds
/// in a form its kind does not take, is missing). Stored values are trusted: PII is already a
/// token and is not tokenized again.
pub fn from_stored(schema: &Schema, stored: Option<&str>) -> Fields {
    if schema.is_empty() {
        return Fields::default();
    }
    let object = stored.and_then(|s| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(s).ok());
    schema
        .fields()
        .iter()
        .map(|f| {
            let Some(v) = object.as_ref().and_then(|o| o.get(&f.name)) else { return FieldValue::Missing };
            match (f.kind, v) {
                (Kind::Number, serde_json::Value::Number(n)) => {
                    n.as_f64().map_or(FieldValue::Missing, FieldValue::Number)
                }
                (Kind::Flag, serde_json::Value::Bool(b)) => FieldValue::Flag(*b),
                (Kind::Category | Kind::Entity, serde_json::Value::String(t)) => FieldValue::Text(t.as_str().into()),
                (Kind::Location, serde_json::Value::Object(o)) => {
                    match (o.get("lat").and_then(|x| x.as_f64()), o.get("lon").and_then(|x| x.as_f64())) {
                        (Some(lat), Some(lon)) => FieldValue::Location { lat, lon },
                        _ => FieldValue::Missing,
                    }
                }
                _ => FieldValue::Missing,
            }
        })
        .collect()
}

/// Checks a transaction's values against the schema: a required field that is missing is an
/// error naming it.
pub fn check_required(schema: &Schema, values: &[FieldValue]) -> Result<(), String> {
    match schema.fields().iter().zip(values).find(|(f, v)| f.required && v.is_missing()) {
        Some((f, _)) => Err(f.name.clone()),
        None => Ok(()),
    }
}

fn number(field: &Field, n: Option<f64>) -> Result<FieldValue, String> {
    let n = n.filter(|n| n.is_finite()).ok_or("is not a number")?;
    if let Some(min) = field.min.filter(|&min| n < min) {
        return Err(format!("is below the minimum {min}"));
    }
    if let Some(max) = field.max.filter(|&max| n > max) {
        return Err(format!("is above the maximum {max}"));
    }
    Ok(FieldValue::Number(n))
}

fn flag(b: &str) -> Option<FieldValue> {
    match b.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" | "t" => Some(FieldValue::Flag(true)),
        "false" | "0" | "no" | "n" | "f" => Some(FieldValue::Flag(false)),
        _ => None,
    }
}

fn text(field: &Field, t: &str, key: &CardKey) -> Result<FieldValue, String> {
    // Checked as sent (what `/openapi.json` states), then trimmed.
    if t.chars().count() > MAX_TEXT || t.chars().any(char::is_control) {
        return Err(format!("must be at most {MAX_TEXT} characters of printable text"));
    }
    let t = t.trim();
    if t.is_empty() {
        return Ok(FieldValue::Missing);
    }
    let pii = field.pii && !is_token(t);
    Ok(FieldValue::Text(if pii { tokenize(key, &field.name, t).into() } else { t.into() }))
}

fn location(lat: Option<f64>, lon: Option<f64>) -> Result<FieldValue, String> {
    match (lat, lon) {
        (Some(lat), Some(lon)) if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) => {
            Ok(FieldValue::Location { lat, lon })
        }
        _ => Err("is not a location (latitude −90..90, longitude −180..180)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(kind: Kind, pii: bool) -> Field {
        Field {
            name: "f".into(),
            kind,
            column: None,
            columns: None,
            required: false,
            pii,
            min: Some(0.0).filter(|_| kind == Kind::Number),
            max: Some(10.0).filter(|_| kind == Kind::Number),
        }
    }

    #[test]
    fn each_kind_parses_from_csv_and_json_and_refuses_bad_values() {
        let key = CardKey::new(b"k");
        let n = field(Kind::Number, false);
        assert_eq!(parse_cells(&n, &["2.5"], &key), Ok(FieldValue::Number(2.5)));
        assert_eq!(parse_cells(&n, &[""], &key), Ok(FieldValue::Missing));
        assert!(parse_cells(&n, &["11"], &key).unwrap_err().contains("maximum"));
        assert!(parse_json(&n, &json!("2"), &key).is_err());
        let b = field(Kind::Flag, false);
        assert_eq!(parse_cells(&b, &["Yes"], &key), Ok(FieldValue::Flag(true)));
        assert_eq!(parse_json(&b, &json!(false), &key), Ok(FieldValue::Flag(false)));
        assert!(parse_cells(&b, &["maybe"], &key).is_err());
        let l = field(Kind::Location, false);
        let paris = FieldValue::Location { lat: 48.85, lon: 2.35 };
        assert_eq!(parse_cells(&l, &["48.85, 2.35"], &key).as_ref(), Ok(&paris));
        assert_eq!(parse_cells(&l, &["48.85", "2.35"], &key).as_ref(), Ok(&paris));
        assert_eq!(parse_json(&l, &json!({"lat": 48.85, "lon": 2.35}), &key).as_ref(), Ok(&paris));
        assert!(parse_json(&l, &json!([48.85, 2.35]), &key).is_err(), "JSON takes the documented form only");
        assert!(parse_json(&l, &json!({"lat": 48.85}), &key).is_err());
        assert!(parse_cells(&l, &["91,0"], &key).is_err());
        assert_eq!(parse_json(&l, &json!(null), &key), Ok(FieldValue::Missing));
        let e = field(Kind::Entity, false);
        assert_eq!(parse_json(&e, &json!(" d-1 "), &key), Ok(FieldValue::Text("d-1".into())));
        assert!(parse_json(&e, &json!("x".repeat(300)), &key).is_err());
        assert!(parse_json(&e, &json!({"a": 1}), &key).is_err());
        assert!(parse_json(&e, &json!(7), &key).is_err());
        assert_eq!(parse_json(&e, &json!("  "), &key), Ok(FieldValue::Missing), "blank is missing");
    }

    #[test]
    fn values_round_trip_through_the_store_by_name() {
        let schema = Schema::new(vec![
            Field { name: "n".into(), ..field(Kind::Number, false) },
            Field { name: "e".into(), ..field(Kind::Entity, true) },
            Field { name: "l".into(), ..field(Kind::Location, false) },
            Field { name: "b".into(), ..field(Kind::Flag, false) },
        ])
        .unwrap();
        let values = vec![
            FieldValue::Number(2.0),
            FieldValue::Text("tok_abc".into()),
            FieldValue::Location { lat: 1.5, lon: -2.5 },
            FieldValue::Missing,
        ];
        let stored = to_stored(&schema, &values).unwrap();
        assert!(!stored.contains("\"b\""), "missing values are left out: {stored}");
        assert_eq!(&*from_stored(&schema, Some(&stored)), values.as_slice());
        assert!(from_stored(&schema, None).iter().all(FieldValue::is_missing));
        assert_eq!(to_stored(&schema, &vec![FieldValue::Missing; 4]), None);
        assert!(from_stored(&Schema::default(), Some(&stored)).is_empty());
    }

    #[test]
    fn pii_values_are_tokenized_per_field_and_never_kept() {
        let key = CardKey::new(b"k");
        let email = field(Kind::Entity, true);
        let FieldValue::Text(t) = parse_cells(&email, &["alice@example.com"], &key).unwrap() else { panic!() };
        assert!(t.starts_with("tok_") && !t.contains("alice"), "{t}");
        assert_eq!(parse_json(&email, &json!("alice@example.com"), &key).unwrap(), FieldValue::Text(t.clone()));
        // Tokenized upstream (produce to Kafka under the same key): kept, not tokenized twice.
        assert!(is_token(&t));
        assert_eq!(parse_json(&email, &json!(t.to_string()), &key).unwrap(), FieldValue::Text(t.clone()));
        let other = Field { name: "g".into(), ..email.clone() };
        assert_ne!(parse_cells(&other, &["alice@example.com"], &key).unwrap(), FieldValue::Text(t.clone()));
        assert_ne!(parse_cells(&email, &["alice@example.com"], &CardKey::new(b"other")).unwrap(), FieldValue::Text(t));
    }
}
