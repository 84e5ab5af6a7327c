//! A team's own transaction fields: the schema file that declares them (`--schema
//! schema.toml` on `train`, then carried in the model bundle) and the values a transaction
//! carries for them ([`value`]).
//!
//! ```toml
//! [[field]]
//! name = "device_id"
//! kind = "entity"          # number | flag | category | entity | location
//! column = "device"        # the CSV column (default: the name)
//! required = false         # a row or request without it is an error (default: false)
//! pii = false              # text fields: tokenized on arrival, never stored raw (default: false)
//! ```
//!
//! Every field becomes features through the one feature pipeline (`features::declared`), a
//! key of `/predict` and of Kafka messages, a variable of rules and a key of the stored
//! `fields` object. Without a schema nothing changes: the schema is empty.

pub(crate) mod request;
pub mod value;

pub use value::{FieldValue, Fields};

use anyhow::{Context, bail, ensure};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// What a field holds, and so which features it gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A number, used as it is (optionally validated against `min`/`max`).
    Number,
    /// true / false.
    Flag,
    /// One of a small set of values (channel, entry mode, MCC): first use by the card and the
    /// value's label-delayed fraud share.
    Category,
    /// An id many transactions share (device, IP, e-mail, address): its windows, distinct
    /// cards, first use by the card, the card's distinct values and its fraud share.
    Entity,
    /// Latitude and longitude: distance from the card's usual place and the speed implied
    /// since the card's previous transaction.
    Location,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Number => "number",
            Self::Flag => "flag",
            Self::Category => "category",
            Self::Entity => "entity",
            Self::Location => "location",
        }
    }

    /// Category and entity values are text (and can be PII).
    pub fn is_text(self) -> bool {
        matches!(self, Self::Category | Self::Entity)
    }
}

/// One declared field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    pub name: String,
    pub kind: Kind,
    /// The CSV column; a location reads `"lat,lon"` from it, or two columns given as
    /// `columns = ["lat", "lon"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<[String; 2]>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub pii: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

impl Field {
    /// The CSV column(s) the field is read from.
    pub fn csv_columns(&self) -> Vec<&str> {
        match (&self.columns, &self.column) {
            (Some([a, b]), _) => vec![a.as_str(), b.as_str()],
            (None, Some(c)) => vec![c.as_str()],
            (None, None) => vec![self.name.as_str()],
        }
    }
}

/// The declared fields, in file order (cheap to clone; empty without a schema).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Vec<Field>", into = "Vec<Field>")]
pub struct Schema(Arc<[Field]>);

/// As stored in a bundle (checked when it was first loaded from its file).
impl From<Vec<Field>> for Schema {
    fn from(fields: Vec<Field>) -> Self {
        Self(fields.into())
    }
}

impl From<Schema> for Vec<Field> {
    fn from(schema: Schema) -> Self {
        schema.0.to_vec()
    }
}

/// Names a declared field cannot take: the core fields of a transaction and the keys a
/// request may carry.
pub const RESERVED: [&str; 14] = [
    "txn_id",
    "timestamp",
    "card",
    "card_num",
    "card_token",
    "card_masked",
    "amount",
    "currency",
    "country",
    "merchant",
    "merchant_category",
    "label",
    "label_time",
    "scenario",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    field: Vec<Field>,
}

impl Schema {
    pub fn new(fields: Vec<Field>) -> anyhow::Result<Self> {
        for (i, f) in fields.iter().enumerate() {
            ensure!(
                !f.name.is_empty()
                    && f.name.len() <= 64
                    && f.name.starts_with(|c: char| c.is_ascii_lowercase())
                    && f.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "field `{}`: a name is 1 to 64 lower-case letters, digits and `_`, starting with a letter \
                 (rules and features use it as an identifier)",
                f.name
            );
            ensure!(!RESERVED.contains(&f.name.as_str()), "field `{}`: the name is a core field of Aegis", f.name);
            ensure!(fields[..i].iter().all(|g| g.name != f.name), "field `{}` is declared twice", f.name);
            ensure!(!f.pii || f.kind.is_text(), "field `{}`: only category and entity fields can be pii", f.name);
            ensure!(
                f.min.is_none() && f.max.is_none() || f.kind == Kind::Number,
                "field `{}`: min and max apply to number fields only",
                f.name
            );
            if let (Some(min), Some(max)) = (f.min, f.max) {
                ensure!(min <= max, "field `{}`: min {min} is above max {max}", f.name);
            }
            ensure!(
                f.columns.is_none() || f.kind == Kind::Location,
                "field `{}`: `columns` (two of them) is for location fields; use `column`",
                f.name
            );
            ensure!(
                f.columns.is_none() || f.column.is_none(),
                "field `{}`: give `column` or `columns`, not both",
                f.name
            );
        }
        Ok(Self(fields.into()))
    }

    /// Reads a schema file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read the schema {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("schema {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let file: File = toml::from_str(text).context("not a valid schema file")?;
        if file.field.is_empty() {
            bail!("no fields declared (expected [[field]] tables with name and kind)");
        }
        Self::new(file.field)
    }

    /// The schema as a schema file (written by hand: the `toml` crate is built for parsing
    /// only, and a field is a few plain keys).
    pub fn to_toml(&self) -> String {
        use std::fmt::Write;
        // A JSON string literal is a TOML basic string.
        let quoted = |s: &str| serde_json::Value::from(s).to_string();
        let mut out = String::new();
        for f in self.fields() {
            let _ = write!(out, "[[field]]\nname = {}\nkind = \"{}\"\n", quoted(&f.name), f.kind.as_str());
            if let Some(c) = &f.column {
                let _ = writeln!(out, "column = {}", quoted(c));
            }
            if let Some([a, b]) = &f.columns {
                let _ = writeln!(out, "columns = [{}, {}]", quoted(a), quoted(b));
            }
            let _ = writeln!(out, "required = {}\npii = {}", f.required, f.pii);
            for (key, bound) in [("min", f.min), ("max", f.max)] {
                if let Some(x) = bound {
                    let _ = writeln!(out, "{key} = {x:?}");
                }
            }
            out.push('\n');
        }
        out
    }

    pub fn fields(&self) -> &[Field] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn position(&self, name: &str) -> Option<usize> {
        self.0.iter().position(|f| f.name == name)
    }

    /// This schema's fields, then `other`'s that this one lacks: what a request carries when
    /// two models with these schemas score it (a champion and its shadow). A field both declare
    /// with different kinds is an error.
    pub fn union(&self, other: &Self) -> anyhow::Result<Self> {
        let mut fields = self.0.to_vec();
        for f in other.fields() {
            match self.position(&f.name) {
                Some(i) => ensure!(
                    self.0[i].kind == f.kind,
                    "field `{}` is a {} in one model and a {} in the other",
                    f.name,
                    self.0[i].kind.as_str(),
                    f.kind.as_str()
                ),
                None => fields.push(f.clone()),
            }
        }
        Ok(Self(fields.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_file_parses_with_defaults() {
        let s = Schema::parse(
            r#"
            [[field]]
            name = "device_id"
            kind = "entity"
            [[field]]
            name = "email"
            kind = "entity"
            pii = true
            column = "EMAIL"
            [[field]]
            name = "place"
            kind = "location"
            columns = ["lat", "lon"]
            [[field]]
            name = "risk_score"
            kind = "number"
            min = 0
            max = 100
            required = true
            "#,
        )
        .unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(s.fields()[0].csv_columns(), ["device_id"]);
        assert_eq!(s.fields()[1].csv_columns(), ["EMAIL"]);
        assert!(s.fields()[1].pii && !s.fields()[0].pii && !s.fields()[0].required);
        assert_eq!(s.fields()[2].csv_columns(), ["lat", "lon"]);
        assert!(s.fields()[3].required);
        assert_eq!(Schema::parse(&s.to_toml()).unwrap(), s, "written back as a schema file");
    }

    #[test]
    fn bad_schemas_are_refused_with_the_field_named() {
        let err = |text: &str| format!("{:#}", Schema::parse(text).unwrap_err());
        assert!(
            err(r#"[[field]]
            name = "amount"
            kind = "number""#)
            .contains("core field")
        );
        assert!(
            err(r#"[[field]]
            name = "Device"
            kind = "entity""#)
            .contains("lower-case")
        );
        assert!(
            err(r#"[[field]]
            name = "d"
            kind = "blob""#)
            .contains("not a valid schema")
        );
        assert!(
            err(r#"[[field]]
            name = "n"
            kind = "number"
            pii = true"#)
            .contains("only category and entity")
        );
        assert!(
            err(r#"[[field]]
            name = "d"
            kind = "entity"
            [[field]]
            name = "d"
            kind = "flag""#)
            .contains("twice")
        );
        assert!(err("").contains("no fields"));
        assert!(
            err(r#"[[field]]
            name = "d"
            kind = "entity"
            colum = "x""#)
            .contains("not a valid schema")
        );
    }
}
