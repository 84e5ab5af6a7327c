//! Turning a score into short human sentences.
//!
//! The autoencoder's per-feature reconstruction errors say which features made a transaction
//! hard to explain as normal; the biggest ones, read together with the feature values, become
//! the reasons ("amount 6.2× this card's 30-day average").

use crate::domain::Transaction;
use crate::features::{FEATURE_NAMES, N_FEATURES};

/// Up to `max` reasons, from the features with the largest reconstruction errors.
pub fn explain(txn: &Transaction, features: &[f32; N_FEATURES], errors: &[f32; N_FEATURES], max: usize) -> Vec<String> {
    let mut order: [usize; N_FEATURES] = std::array::from_fn(|i| i);
    order.sort_unstable_by(|&a, &b| errors[b].total_cmp(&errors[a]));
    let mut out: Vec<String> = Vec::with_capacity(max);
    for i in order {
        if out.len() >= max {
            break;
        }
        if let Some(sentence) = sentence(FEATURE_NAMES[i], features[i], txn) {
            if !out.contains(&sentence) {
                out.push(sentence);
            }
        }
    }
    out
}

/// The sentence for one feature's value, or `None` where the value is unremarkable or the
/// feature is not meaningful on its own (calendar encodings).
fn sentence(name: &str, v: f32, txn: &Transaction) -> Option<String> {
    let count = |v: f32| v.exp_m1().round() as u64;
    Some(match name {
        "log_amount" => format!("amount {:.2}", txn.amount),
        "log_amount_ratio_30d" if v > 0.0 => format!("amount {:.1}× this card's 30-day average", v.exp()),
        "log_amount_ratio_30d" => format!("amount {:.1}× below this card's 30-day average", (-v).exp()),
        "foreign_country" if v > 0.5 => format!("outside the card's home country ({})", txn.country),
        "new_country" if v > 0.5 => format!("first transaction in {} for this card", txn.country),
        "new_merchant" if v > 0.5 => "first purchase at this merchant".to_owned(),
        "distinct_countries_24h" if v > 1.5 => format!("{} countries in 24 hours", v as u32),
        "log_count_1h" if count(v) > 1 => format!("{} transactions in the last hour", count(v)),
        "log_count_24h" if count(v) > 1 => format!("{} transactions in 24 hours", count(v)),
        "log_sum_1h" => format!("{:.2} spent in the last hour", v.exp_m1()),
        "log_sum_24h" => format!("{:.2} spent in 24 hours", v.exp_m1()),
        "log_secs_since_prev" => format!("{} s since the card's previous transaction", v.exp_m1().round() as u64),
        "is_night" if v > 0.5 => "night-time transaction".to_owned(),
        "category_risk" | "category_frequency" => {
            format!("unusual merchant category ({})", txn.merchant_category.as_deref().unwrap_or("unknown"))
        }
        "country_risk" | "country_frequency" => format!("unusual country ({})", txn.country),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CardKey, Country};
    use crate::features::feature_index;

    #[test]
    fn largest_errors_become_sentences() {
        let txn = Transaction {
            txn_id: "t".into(),
            timestamp: 0,
            card: CardKey::new(b"k").token("4111111111111111"),
            amount: 812.4,
            country: Country::parse("FR").unwrap(),
            merchant: "M1".into(),
            merchant_category: Some("jewelry".into()),
        };
        let mut features = [0f32; N_FEATURES];
        let mut errors = [0f32; N_FEATURES];
        let set = |f: &mut [f32; N_FEATURES], e: &mut [f32; N_FEATURES], name: &str, v: f32, err: f32| {
            let i = feature_index(name).unwrap();
            f[i] = v;
            e[i] = err;
        };
        set(&mut features, &mut errors, "log_amount_ratio_30d", 6.2f32.ln(), 9.0);
        set(&mut features, &mut errors, "new_country", 1.0, 5.0);
        set(&mut features, &mut errors, "hour_sin", 0.3, 7.0); // no sentence of its own
        set(&mut features, &mut errors, "new_merchant", 1.0, 1.0);
        let r = explain(&txn, &features, &errors, 2);
        assert_eq!(r, ["amount 6.2× this card's 30-day average", "first transaction in FR for this card"]);
    }
}
