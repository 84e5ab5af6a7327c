//! A transaction as the feature pipeline sees it: already parsed, card already tokenized.

use super::CardToken;
use std::fmt;

/// An ISO 3166 alpha-2 country code, stored as two upper-case ASCII letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Country([u8; 2]);

impl Country {
    /// Parses two ASCII letters (any case). `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Some(Self([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => None,
        }
    }

    /// "Unknown country" for data without a country column (ISO's user-assigned `ZZ`).
    pub const UNKNOWN: Self = Self(*b"ZZ");

    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("ZZ")
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Country({self})")
    }
}

/// One card transaction, validated. `timestamp` is Unix seconds (UTC).
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    pub txn_id: String,
    pub timestamp: i64,
    pub card: CardToken,
    pub amount: f64,
    pub country: Country,
    pub merchant: String,
    pub merchant_category: Option<String>,
    /// The card's issuer range (first six digits), when the card is a card number
    /// ([`super::bin_of`]); `None` for customer ids.
    pub bin: Option<u32>,
    /// The values of the team's declared fields, in schema order (empty without a schema;
    /// PII already tokenized).
    pub fields: crate::domain::fields::Fields,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_codes_parse_strictly() {
        assert_eq!(Country::parse("fr").map(|c| c.to_string()), Some("FR".into()));
        assert_eq!(Country::parse(" US "), Country::parse("US"));
        assert_eq!(Country::parse("USA"), None);
        assert_eq!(Country::parse("1A"), None);
        assert_eq!(Country::parse(""), None);
    }
}
