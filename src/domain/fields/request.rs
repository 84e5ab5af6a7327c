//! A request's declared fields (`/predict`, Kafka messages): each key validated by its kind,
//! and the refusal of a key that is neither a core field nor a declared one.

use super::{FieldValue, Schema, value::parse_json};
use crate::domain::CardKey;
use crate::domain::wire::Rejection;
use serde_json::{Map, Value};

/// The rejection of a key that is neither a core field nor a declared one.
pub(crate) fn unknown_field(unknown: &str, schema: &Schema) -> Rejection {
    let known = if schema.is_empty() {
        String::new()
    } else {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name.as_str()).collect();
        format!(" (declared fields: {})", names.join(", "))
    };
    Rejection::field(
        "unknown_field",
        unknown.to_owned(),
        format!("`{unknown}` is neither a transaction field nor a field of the model's schema{known}"),
    )
}

/// The declared fields' values, in schema order.
pub(crate) fn declared(obj: &Map<String, Value>, key: &CardKey, schema: &Schema) -> Result<super::Fields, Rejection> {
    if schema.is_empty() {
        return Ok(Default::default());
    }
    schema
        .fields()
        .iter()
        .map(|field| {
            let value = match obj.get(&field.name) {
                None => FieldValue::Missing,
                Some(v) => parse_json(field, v, key).map_err(|why| {
                    Rejection::field("invalid_value", field.name.clone(), format!("`{}` {why}", field.name))
                })?,
            };
            if field.required && value.is_missing() {
                return Err(Rejection::field(
                    "missing_field",
                    field.name.clone(),
                    format!("`{}` is required", field.name),
                ));
            }
            Ok(value)
        })
        .collect()
}
