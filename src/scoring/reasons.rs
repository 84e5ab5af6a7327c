//! Turning a score into short human sentences.
//!
//! With a supervised model, its per-prediction contributions say which features pushed this
//! transaction's fraud probability up; without one, the autoencoder's per-feature reconstruction
//! errors say which features made it hard to explain as normal. The biggest ones, read together
//! with the feature values, become the reasons ("amount 6.2× this card's 30-day average",
//! "device_id d-81 used by 9 cards in 24 hours").

use super::FeatureSchema;
use crate::domain::Transaction;
use crate::domain::fields::{FieldValue, Kind};

/// Up to `max` reasons, from the features with the largest reconstruction errors.
pub fn explain(txn: &Transaction, schema: &FeatureSchema, features: &[f32], errors: &[f32], max: usize) -> Vec<String> {
    let n = features.len().min(errors.len()).min(schema.names.len());
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|&a, &b| errors[b].total_cmp(&errors[a]));
    let mut out: Vec<String> = Vec::with_capacity(max);
    for i in order {
        if out.len() >= max {
            break;
        }
        if let Some(sentence) = any_sentence(schema, i, features[i], txn) {
            if !out.contains(&sentence) {
                out.push(sentence);
            }
        }
    }
    out
}

/// Up to `max` reasons from the supervised model's contributions (one per feature, then the
/// Isolation Forest score and the autoencoder error): the features that pushed the fraud
/// probability up most, then the anomaly models if there is room. Empty if nothing pushed it up.
pub fn explain_supervised(
    txn: &Transaction,
    schema: &FeatureSchema,
    features: &[f32],
    contributions: &[f32],
    max: usize,
) -> Vec<String> {
    let n = features.len().min(schema.names.len());
    let mut order: Vec<usize> = (0..contributions.len().min(n + 2)).collect();
    order.sort_unstable_by(|&a, &b| contributions[b].total_cmp(&contributions[a]));
    let mut out: Vec<String> = Vec::with_capacity(max);
    // Features first: they say what is unusual. The anomaly models' scores only fill in when the
    // features pushing the score up have no sentence of their own.
    for &i in order.iter().filter(|&&i| i < n && contributions[i] > 0.0) {
        if out.len() >= max {
            break;
        }
        if let Some(sentence) = any_sentence(schema, i, features[i], txn) {
            if !out.contains(&sentence) {
                out.push(sentence);
            }
        }
    }
    for &i in order.iter().filter(|&&i| i >= n && contributions[i] > 0.0) {
        if out.len() < max {
            let model = if i == n { "the Isolation Forest" } else { "the autoencoder" };
            out.push(format!("unusual for {model}"));
        }
    }
    out
}

/// The sentence of feature `i`: a built-in one by its name, a declared field's by its field.
fn any_sentence(schema: &FeatureSchema, i: usize, v: f32, txn: &Transaction) -> Option<String> {
    let name = schema.names.get(i)?;
    if i < crate::features::N_FEATURES {
        return sentence(name, v, txn);
    }
    declared_sentence(schema, name, v, txn)
}

/// The sentence for a declared field's feature: which field, what value, what is unusual.
fn declared_sentence(schema: &FeatureSchema, name: &str, v: f32, txn: &Transaction) -> Option<String> {
    if v.is_nan() {
        return None;
    }
    let (pos, field) = schema
        .fields
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| name.starts_with(f.name.as_str()))
        .max_by_key(|(_, f)| f.name.len())?;
    let suffix = &name[field.name.len()..];
    let f = &field.name;
    let value = match txn.fields.get(pos) {
        Some(FieldValue::Text(t)) => {
            let t: String = t.chars().take(24).collect();
            format!("{f} {t}")
        }
        _ => f.clone(),
    };
    let count = |v: f32| v.exp_m1().round() as u64;
    Some(match (field.kind, suffix) {
        (Kind::Number, "") => format!("{f} = {v}"),
        (Kind::Flag, "") if v > 0.5 => format!("{f} is true"),
        (Kind::Flag, "") => format!("{f} is false"),
        (_, "_new_for_card") if v > 0.5 => format!("new {value} for this card"),
        (_, "_risk_30d") if v >= 0.005 => format!("{:.0}% confirmed fraud with {value} (30-day window)", 100.0 * v),
        (_, "_log_cards_1h") if count(v) > 1 => format!("{value} used by {} cards in the last hour", count(v)),
        (_, "_log_cards_24h") if count(v) > 1 => format!("{value} used by {} cards in 24 hours", count(v)),
        (_, "_log_count_1h") if count(v) > 1 => format!("{} transactions with {value} in the last hour", count(v)),
        (_, "_log_count_24h") if count(v) > 1 => format!("{} transactions with {value} in 24 hours", count(v)),
        (_, "_log_count_7d" | "_log_count_30d") if count(v) > 1 => {
            format!("{} transactions with {value} ({} window)", count(v), &suffix["_log_count_".len()..])
        }
        (_, "_log_known_frauds") if count(v) > 0 => format!("{value} linked to {} confirmed frauds", count(v)),
        (_, "_card_distinct_7d") if v > 1.5 => format!("{} different {f} values on this card in 7 days", v as u32),
        (_, "_card_distinct_30d") if v > 1.5 => format!("{} different {f} values on this card in 30 days", v as u32),
        (_, "_log_km_from_usual") if v.exp_m1() >= 1.0 => {
            format!("{:.0} km from this card's usual {f}", v.exp_m1())
        }
        (_, "_log_kmh_since_prev") if v.exp_m1() > 900.0 => {
            format!("impossible travel: {:.0} km/h since this card's previous {f}", v.exp_m1())
        }
        _ => return None,
    })
}

/// The sentence for one feature's value, or `None` where the value is unremarkable or the
/// feature is not meaningful on its own (calendar encodings).
fn sentence(name: &str, v: f32, txn: &Transaction) -> Option<String> {
    if v.is_nan() {
        return None; // missing: nothing to say
    }
    let count = |v: f32| v.exp_m1().round() as u64;
    let bin = || txn.bin.map_or_else(String::new, |b| format!("{b:06}"));
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
        "merchant_risk_1d" | "merchant_risk_7d" | "merchant_risk_30d" if v >= 0.005 => {
            let days = &name["merchant_risk_".len()..];
            format!("{:.0}% confirmed fraud at merchant {} ({} window)", 100.0 * v, txn.merchant, days)
        }
        "merchant_log_recent_frauds" if count(v) > 0 => {
            format!("{} fraud reports already at merchant {} this week", count(v), txn.merchant)
        }
        "merchant_log_count_1d" | "merchant_log_count_7d" | "merchant_log_count_30d" => {
            let days = &name["merchant_log_count_".len()..];
            format!("{} transactions at merchant {} ({} window)", count(v), txn.merchant, days)
        }
        "card_known_fraud" if v > 0.5 => "fraud already confirmed on this card".to_owned(),
        "merchant_log_cards_1h" if count(v) > 1 => {
            format!("{} different cards at merchant {} in the last hour", count(v), txn.merchant)
        }
        "merchant_log_cards_24h" if count(v) > 1 => {
            format!("{} different cards at merchant {} in 24 hours", count(v), txn.merchant)
        }
        "merchant_log_count_1h" | "merchant_log_sum_1h" if count(v) > 1 => {
            format!("busy hour at merchant {}", txn.merchant)
        }
        "merchant_log_count_24h" | "merchant_log_sum_24h" => format!("busy day at merchant {}", txn.merchant),
        "merchant_new_card_share_1h" if v > 0.0 => {
            format!("{:.0}% of this hour's cards at merchant {} are new to Aegis", 100.0 * v, txn.merchant)
        }
        "bin_log_new_cards_1h" if count(v) > 0 => format!("{} new cards of BIN {} in the last hour", count(v), bin()),
        "bin_log_cards_1h" if count(v) > 1 => format!("{} different cards of BIN {} in the last hour", count(v), bin()),
        "bin_log_cards_24h" if count(v) > 1 => format!("{} different cards of BIN {} in 24 hours", count(v), bin()),
        "bin_log_count_1h" => format!("busy hour for BIN {}", bin()),
        "bin_log_count_24h" => format!("busy day for BIN {}", bin()),
        "bin_risk_30d" if v >= 0.005 => format!("{:.0}% confirmed fraud on BIN {} (30-day window)", 100.0 * v, bin()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{FeatureConfig, N_FEATURES};

    fn core() -> FeatureSchema {
        FeatureSchema::transaction(FeatureConfig::default())
    }
    use crate::domain::{CardKey, Country};
    use crate::features::feature_index;

    #[test]
    fn supervised_reasons_put_features_before_the_anomaly_models() {
        let txn = Transaction {
            txn_id: "t".into(),
            timestamp: 0,
            card: CardKey::new(b"k").token("4111111111111111"),
            amount: 50.0,
            country: Country::parse("FR").unwrap(),
            merchant: "T42".into(),
            merchant_category: None,
            bin: None,
            fields: Default::default(),
        };
        let mut features = [0f32; N_FEATURES];
        let mut contributions = [0f32; N_FEATURES + 2];
        features[feature_index("merchant_risk_7d").unwrap()] = 0.42;
        contributions[feature_index("merchant_risk_7d").unwrap()] = 0.8;
        contributions[feature_index("hour_sin").unwrap()] = 2.0; // no sentence of its own
        contributions[N_FEATURES] = 1.5; // the forest
        contributions[feature_index("card_known_fraud").unwrap()] = -3.0; // pushed down: not a reason
        let r = explain_supervised(&txn, &core(), &features, &contributions, 3);
        assert_eq!(r, ["42% confirmed fraud at merchant T42 (7d window)", "unusual for the Isolation Forest"]);
    }

    #[test]
    fn the_hours_of_a_merchant_and_a_range_become_sentences_and_missing_values_none() {
        let txn = Transaction {
            txn_id: "t".into(),
            timestamp: 0,
            card: CardKey::new(b"k").token("4556931234567890"),
            amount: 20.0,
            country: Country::parse("FR").unwrap(),
            merchant: "S7".into(),
            merchant_category: None,
            bin: Some(455_693),
            fields: Default::default(),
        };
        let mut features = [0f32; N_FEATURES];
        let mut contributions = [0f32; N_FEATURES + 2];
        for (name, v, c) in [("bin_log_new_cards_1h", 27f32, 3.0), ("merchant_log_cards_1h", 38f32, 2.0)] {
            features[feature_index(name).unwrap()] = v.ln_1p();
            contributions[feature_index(name).unwrap()] = c;
        }
        let r = explain_supervised(&txn, &core(), &features, &contributions, 3);
        assert_eq!(
            r,
            ["27 new cards of BIN 455693 in the last hour", "38 different cards at merchant S7 in the last hour"]
        );
        // Missing (a customer id): no sentence, whatever the contribution.
        features[feature_index("bin_log_new_cards_1h").unwrap()] = f32::NAN;
        let r = explain_supervised(&txn, &core(), &features, &contributions, 3);
        assert_eq!(r, ["38 different cards at merchant S7 in the last hour"]);
    }

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
            bin: None,
            fields: Default::default(),
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
        let r = explain(&txn, &core(), &features, &errors, 2);
        assert_eq!(r, ["amount 6.2× this card's 30-day average", "first transaction in FR for this card"]);
    }

    #[test]
    fn declared_fields_give_readable_reasons() {
        use crate::domain::fields::{Field, FieldValue, Schema};
        let field = |name: &str, kind, pii| Field {
            name: name.into(),
            kind,
            column: None,
            columns: None,
            required: false,
            pii,
            min: None,
            max: None,
        };
        let fields =
            Schema::new(vec![field("device_id", Kind::Entity, false), field("location", Kind::Location, false)])
                .unwrap();
        let schema = FeatureSchema::transaction(FeatureConfig { fields, ..Default::default() });
        let txn = Transaction {
            txn_id: "t".into(),
            timestamp: 0,
            card: CardKey::new(b"k").token("4111111111111111"),
            amount: 20.0,
            country: Country::parse("FR").unwrap(),
            merchant: "S7".into(),
            merchant_category: None,
            bin: None,
            fields: vec![FieldValue::Text("d-9".into()), FieldValue::Location { lat: 1.0, lon: 2.0 }].into(),
        };
        let at = |name: &str| schema.names.iter().position(|n| n == name).unwrap();
        let mut features = vec![0f32; schema.names.len()];
        let mut contributions = vec![0f32; schema.names.len() + 2];
        for (name, v, c) in [
            ("device_id_log_cards_24h", 9f32.ln_1p(), 3.0),
            ("device_id_new_for_card", 1.0, 2.0),
            ("location_log_kmh_since_prev", 5_000f32.ln_1p(), 1.0),
        ] {
            features[at(name)] = v;
            contributions[at(name)] = c;
        }
        let r = explain_supervised(&txn, &schema, &features, &contributions, 3);
        assert_eq!(
            r,
            [
                "device_id d-9 used by 9 cards in 24 hours",
                "new device_id d-9 for this card",
                "impossible travel: 5000 km/h since this card's previous location",
            ]
        );
    }
}
