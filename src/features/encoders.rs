//! Categorical encodings learned at training time: each country and merchant category becomes
//! (frequency, smoothed fraud rate). Values unseen or rare in training share an "other" bucket,
//! so live traffic can never fail on a new value.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Values seen fewer times than this in training fall into the "other" bucket.
const MIN_COUNT: u64 = 5;
/// Pseudo-count pulling a value's fraud rate towards the overall rate (additive smoothing).
const SMOOTHING: f64 = 20.0;

/// The encoding of one value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Encoding {
    /// Share of training transactions with this value.
    pub frequency: f32,
    /// Smoothed fraud rate among them (the overall rate when training had no labels).
    pub risk: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryEncoder {
    values: BTreeMap<String, Encoding>,
    other: Encoding,
}

impl CategoryEncoder {
    /// Learns from `(value, label)` pairs; labels may be absent.
    pub fn fit<'a>(items: impl IntoIterator<Item = (&'a str, Option<bool>)>) -> Self {
        let mut counts: HashMap<&str, (u64, u64)> = HashMap::new();
        let (mut total, mut frauds) = (0u64, 0u64);
        for (value, label) in items {
            let fraud = u64::from(label == Some(true));
            let e = counts.entry(value).or_default();
            e.0 += 1;
            e.1 += fraud;
            total += 1;
            frauds += fraud;
        }
        let prior = if total > 0 { frauds as f64 / total as f64 } else { 0.0 };
        let encode = |n: u64, f: u64| Encoding {
            frequency: if total > 0 { (n as f64 / total as f64) as f32 } else { 0.0 },
            risk: ((f as f64 + prior * SMOOTHING) / (n as f64 + SMOOTHING)) as f32,
        };
        let (mut rare_n, mut rare_f) = (0, 0);
        let mut values = BTreeMap::new();
        for (value, (n, f)) in counts {
            if n >= MIN_COUNT {
                values.insert(value.to_owned(), encode(n, f));
            } else {
                rare_n += n;
                rare_f += f;
            }
        }
        Self { values, other: encode(rare_n, rare_f) }
    }

    pub fn encode(&self, value: &str) -> Encoding {
        self.values.get(value).copied().unwrap_or(self.other)
    }

    /// Number of values with their own encoding (excluding "other").
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// The encoders the transaction feature pipeline needs, stored in the model bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Encoders {
    pub country: CategoryEncoder,
    pub category: CategoryEncoder,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequent_values_get_their_own_encoding_and_rare_ones_share_other() {
        let mut items = vec![("US", Some(false)); 90];
        items.extend(vec![("FR", Some(true)); 8]);
        items.extend([("XX", Some(true)), ("YY", Some(false))]);
        let enc = CategoryEncoder::fit(items);
        assert_eq!(enc.len(), 2);
        let us = enc.encode("US");
        let fr = enc.encode("FR");
        assert!((us.frequency - 0.9).abs() < 1e-6);
        assert!(fr.risk > us.risk);
        // Rare and unseen values map to the same "other" bucket, never an error.
        assert_eq!(enc.encode("XX"), enc.encode("never-seen"));
        assert!((enc.encode("XX").frequency - 0.02).abs() < 1e-6);
    }

    #[test]
    fn smoothing_matches_hand_computation() {
        // 10 rows, 1 fraud overall: prior 0.1. "A": 5 rows, 1 fraud → (1 + 0.1·20)/(5 + 20) = 0.12.
        let mut items = vec![("A", Some(true))];
        items.extend(vec![("A", Some(false)); 4]);
        items.extend(vec![("B", Some(false)); 5]);
        let enc = CategoryEncoder::fit(items);
        assert!((enc.encode("A").risk - 0.12).abs() < 1e-6);
        assert!((enc.encode("B").risk - 0.08).abs() < 1e-6);
    }

    #[test]
    fn without_labels_risk_is_zero() {
        let enc = CategoryEncoder::fit(vec![("A", None); 10]);
        assert_eq!(enc.encode("A").risk, 0.0);
    }
}
