//! Feature engineering: one code path for training replay and live scoring.
//!
//! [`FeaturePipeline::observe`] turns a [`Transaction`] into the fixed, named feature vector of
//! [`FEATURE_NAMES`], reading the card's state as it was before the transaction and then
//! recording it — so replaying a history in time order reproduces exactly what live scoring
//! would have computed at each moment (point-in-time correct, no train/serve skew).

mod card_state;
mod encoders;
mod replay;
mod ring;

pub use card_state::{CardFeatures, CardState};
pub use encoders::{CategoryEncoder, Encoders, Encoding};
pub use replay::{TimeWindow, replay};

use crate::domain::{CardToken, Transaction};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// Bumped whenever a feature is added, removed, reordered or redefined.
pub const SCHEMA_VERSION: u32 = 1;

/// The transaction feature schema, in vector order.
pub const FEATURE_NAMES: [&str; 29] = [
    "log_amount",
    "hour_sin",
    "hour_cos",
    "dow_sin",
    "dow_cos",
    "is_weekend",
    "is_night",
    "country_frequency",
    "country_risk",
    "category_frequency",
    "category_risk",
    "log_count_1h",
    "log_sum_1h",
    "log_mean_1h",
    "log_count_24h",
    "log_sum_24h",
    "log_mean_24h",
    "log_count_7d",
    "log_sum_7d",
    "log_mean_7d",
    "log_count_30d",
    "log_sum_30d",
    "log_mean_30d",
    "log_secs_since_prev",
    "log_amount_ratio_30d",
    "foreign_country",
    "new_merchant",
    "new_country",
    "distinct_countries_24h",
];

pub const N_FEATURES: usize = FEATURE_NAMES.len();

/// Index of a feature by name, for code that explains scores.
pub fn feature_index(name: &str) -> Option<usize> {
    FEATURE_NAMES.iter().position(|n| *n == name)
}

/// Seconds-since-previous assumed for a card's first transaction (30 days).
const NO_PREVIOUS_SECS: f32 = 30.0 * 86_400.0;

/// The encoders plus every card's streaming state.
///
/// States live in one dense `Vec`, found through a small token → index map: a hash table grows
/// to about twice its entries, and with ~660-byte states stored inline that doubled the memory
/// per card (measured at 1M cards; BENCHMARKS.md).
#[derive(Debug, Clone)]
pub struct FeaturePipeline {
    encoders: Encoders,
    index: HashMap<CardToken, u32>,
    states: Vec<CardState>,
}

impl FeaturePipeline {
    pub fn new(encoders: Encoders) -> Self {
        Self { encoders, index: HashMap::new(), states: Vec::new() }
    }

    /// Swaps in new encoders (a reloaded model bundle) and keeps every card's state, which does
    /// not depend on them.
    pub fn set_encoders(&mut self, encoders: Encoders) {
        self.encoders = encoders;
    }

    pub fn n_cards(&self) -> usize {
        self.states.len()
    }

    /// Computes the features of `txn` into `out` and records it in its card's state.
    pub fn observe(&mut self, txn: &Transaction, out: &mut [f32; N_FEATURES]) {
        let amount = txn.amount as f32;
        let states = &mut self.states;
        let slot = *self.index.entry(txn.card).or_insert_with(|| {
            states.push(CardState::default());
            (states.len() - 1) as u32
        });
        let card = self.states[slot as usize].observe(txn.timestamp, amount, txn.country, merchant_hash(&txn.merchant));
        self.write_stateless(txn, out);
        write_card_features(amount, txn, &card, out);
    }

    fn write_stateless(&self, txn: &Transaction, out: &mut [f32; N_FEATURES]) {
        use std::f32::consts::TAU;
        let secs_of_day = txn.timestamp.rem_euclid(86_400) as f32;
        let hour = secs_of_day / 3600.0;
        // 1970-01-01 was a Thursday: shift so that Monday = 0.
        let dow = (txn.timestamp.div_euclid(86_400) + 3).rem_euclid(7) as f32;
        let country = self.encoders.country.encode(txn.country.as_str());
        let category = self.encoders.category.encode(txn.merchant_category.as_deref().unwrap_or(""));
        out[0] = (txn.amount as f32).ln_1p();
        out[1] = (TAU * hour / 24.0).sin();
        out[2] = (TAU * hour / 24.0).cos();
        out[3] = (TAU * dow / 7.0).sin();
        out[4] = (TAU * dow / 7.0).cos();
        out[5] = f32::from(dow >= 5.0);
        out[6] = f32::from(hour < 6.0);
        out[7] = country.frequency;
        out[8] = country.risk;
        out[9] = category.frequency;
        out[10] = category.risk;
    }
}

fn write_card_features(amount: f32, txn: &Transaction, card: &CardFeatures, out: &mut [f32; N_FEATURES]) {
    for (k, &(count, sum)) in card.windows.iter().enumerate() {
        let base = 11 + 3 * k;
        out[base] = (count as f32).ln_1p();
        out[base + 1] = sum.max(0.0).ln_1p();
        out[base + 2] = (sum.max(0.0) / count.max(1) as f32).ln_1p();
    }
    out[23] = card.secs_since_prev.map_or(NO_PREVIOUS_SECS, |s| s as f32).ln_1p();
    out[24] = card.prev_mean_30d.map_or(0.0, |mean| ((amount + 1.0) / (mean.max(0.0) + 1.0)).ln());
    out[25] = f32::from(card.home_country.is_some_and(|home| home != txn.country));
    out[26] = f32::from(card.new_merchant);
    out[27] = f32::from(card.new_country);
    out[28] = card.distinct_countries_24h as f32;
}

/// A stable 32-bit hash of a merchant id (SipHash with fixed keys, so it is the same in every
/// process and every run).
fn merchant_hash(merchant: &str) -> u32 {
    let mut h = std::hash::DefaultHasher::new();
    merchant.hash(&mut h);
    h.finish() as u32
}

#[cfg(test)]
mod tests;
