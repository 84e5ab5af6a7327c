//! Feature engineering: one code path for training replay and live scoring.
//!
//! [`FeaturePipeline::observe`] turns a [`Transaction`] into the fixed, named feature vector of
//! [`FEATURE_NAMES`], reading the card's state as it was before the transaction and then
//! recording it — so replaying a history in time order reproduces exactly what live scoring
//! would have computed at each moment (point-in-time correct, no train/serve skew).

mod card_state;
pub mod codec;
pub mod declared;
mod encoders;
pub mod entity;
mod names;
mod replay;
mod ring;
pub mod risk;
mod table;

pub use card_state::{CardFeatures, CardState};
pub use encoders::{CategoryEncoder, Encoders, Encoding};
pub use names::{FEATURE_NAMES, N_FEATURES, SCHEMA_VERSION, feature_at, feature_index};
pub use replay::{Event, Replayed, TimeWindow, interleave, label_schedule, replay};

use crate::domain::{CardToken, Country, Transaction};
use entity::{EntityReading, EntityTable};
use names::at;
use risk::{DailyCounts, RiskTable, day_of};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// Seconds-since-previous assumed for a card's first transaction (30 days).
const NO_PREVIOUS_SECS: f32 = 30.0 * 86_400.0;
/// How long a known fraud label marks its card as compromised.
pub const KNOWN_FRAUD_SECS: i64 = 30 * 86_400;
/// The label delay assumed when none is given: a week, like a first chargeback notice.
pub const DEFAULT_LABEL_DELAY_SECS: i64 = 7 * 86_400;

/// Settings of the features, recorded in the bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureConfig {
    /// How long labels take to arrive: risk is read from transaction days at least this old.
    pub label_delay_secs: i64,
    /// The team's declared fields (empty without a schema file).
    pub fields: crate::domain::fields::Schema,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self { label_delay_secs: DEFAULT_LABEL_DELAY_SECS, fields: Default::default() }
    }
}

impl FeatureConfig {
    fn delay_days(&self) -> u32 {
        (self.label_delay_secs.max(0) as u64).div_ceil(86_400).min(u64::from(risk::MAX_DELAY_DAYS)) as u32
    }
}

/// The encoders plus every card's, merchant's, issuer range's, country's and category's
/// streaming state.
///
/// Card states live in one dense `Vec`, found through a small token → index map: a hash table
/// grows to about twice its entries, and with ~660-byte states stored inline that doubled the
/// memory per card (measured at 1M cards; BENCHMARKS.md).
#[derive(Debug, Clone)]
pub struct FeaturePipeline {
    encoders: Encoders,
    config: FeatureConfig,
    index: HashMap<CardToken, u32>,
    states: Vec<CardState>,
    merchants: RiskTable<Box<str>>,
    /// The merchants' and issuer ranges' short windows and distinct cards.
    merchant_windows: EntityTable<Box<str>>,
    bin_windows: EntityTable<u32>,
    bins: RiskTable<u32>,
    countries: RiskTable<Country>,
    categories: RiskTable<Box<str>>,
    global: DailyCounts,
    /// The declared fields' state and features (after the built-in ones).
    declared: declared::Declared,
}

impl FeaturePipeline {
    pub fn new(encoders: Encoders, config: FeatureConfig) -> Self {
        Self {
            encoders,
            index: HashMap::new(),
            states: Vec::new(),
            merchants: RiskTable::default(),
            merchant_windows: EntityTable::default(),
            bin_windows: EntityTable::default(),
            bins: RiskTable::default(),
            countries: RiskTable::default(),
            categories: RiskTable::default(),
            global: DailyCounts::default(),
            declared: declared::Declared::new(config.fields.clone()),
            config,
        }
    }

    /// Swaps in new encoders and settings (a reloaded model bundle) and keeps every card's and
    /// merchant's state, which does not depend on them. A bundle declaring other fields starts
    /// their state afresh.
    pub fn set_encoders(&mut self, encoders: Encoders, config: FeatureConfig) {
        self.encoders = encoders;
        if config.fields != *self.declared.schema() {
            self.declared = declared::Declared::new(config.fields.clone());
        }
        self.config = config;
    }

    /// Features per transaction: the built-in [`N_FEATURES`], then the declared fields'.
    pub fn width(&self) -> usize {
        N_FEATURES + self.declared.width()
    }

    /// The declared fields' state (for memory figures).
    pub fn declared(&self) -> &declared::Declared {
        &self.declared
    }

    pub fn n_cards(&self) -> usize {
        self.states.len()
    }

    pub fn n_merchants(&self) -> usize {
        self.merchants.len()
    }

    /// Bytes per merchant and per issuer range held by their short windows (active values).
    pub fn entity_bytes(&self) -> (usize, usize) {
        (self.merchant_windows.bytes_per_value(), self.bin_windows.bytes_per_value())
    }

    fn card_slot(&mut self, card: CardToken) -> usize {
        let states = &mut self.states;
        *self.index.entry(card).or_insert_with(|| {
            states.push(CardState::default());
            (states.len() - 1) as u32
        }) as usize
    }

    /// When the newest fraud label of `card` became known, if one has.
    pub fn card_fraud_known_at(&self, card: &CardToken) -> Option<i64> {
        self.index.get(card).and_then(|&i| self.states[i as usize].fraud_known_at())
    }

    /// Computes the features of `txn` into `out` ([`FeaturePipeline::width`] long) and records
    /// it in its card's, merchant's, country's, category's and declared fields' state.
    pub fn observe(&mut self, txn: &Transaction, out: &mut [f32]) {
        let (out, rest) = out.split_at_mut(N_FEATURES);
        let out: &mut [f32; N_FEATURES] = out.try_into().expect("N_FEATURES");
        let amount = txn.amount as f32;
        let slot = self.card_slot(txn.card);
        let card = &mut self.states[slot];
        let fraud_known_at = card.fraud_known_at();
        let new_card = card.last_ts.is_none();
        let features = card.observe(txn.timestamp, amount, txn.country, merchant_hash(&txn.merchant));
        self.write_stateless(txn, out);
        write_card_features(amount, txn, &features, out);
        out[at::CARD_KNOWN_FRAUD] =
            f32::from(fraud_known_at.is_some_and(|at| at <= txn.timestamp && txn.timestamp - at < KNOWN_FRAUD_SECS));
        let prior = self.write_risk(txn, out);
        self.write_entities(txn, new_card, prior, out);
        self.declared.observe(slot, txn, new_card, self.config.delay_days(), prior, rest);
    }

    /// The merchant's and the issuer range's short windows; the range's features are missing
    /// (NaN) when the card is not a card number.
    fn write_entities(&mut self, txn: &Transaction, new_card: bool, prior: f64, out: &mut [f32; N_FEATURES]) {
        let (ts, amount) = (txn.timestamp, txn.amount as f32);
        let m = self.merchant_windows.observe(
            txn.merchant.as_str(),
            |k: &str| Box::from(k),
            ts,
            amount,
            txn.card,
            new_card,
        );
        let ln = |n: u32| (n as f32).ln_1p();
        out[at::MERCHANT_COUNT_1H] = ln(m.count_1h);
        out[at::MERCHANT_SUM_1H] = m.sum_1h.max(0.0).ln_1p();
        out[at::MERCHANT_COUNT_24H] = ln(m.count_24h);
        out[at::MERCHANT_SUM_24H] = m.sum_24h.max(0.0).ln_1p();
        out[at::MERCHANT_CARDS_1H] = ln(m.cards_1h);
        out[at::MERCHANT_CARDS_24H] = ln(m.cards_24h);
        out[at::MERCHANT_NEW_CARD_SHARE_1H] = m.new_cards_1h as f32 / m.cards_1h.max(1) as f32;
        let Some(bin) = txn.bin else {
            for i in at::BIN_FEATURES {
                out[i] = f32::NAN;
            }
            return;
        };
        let b: EntityReading = self.bin_windows.observe(&bin, |b| *b, ts, amount, txn.card, new_card);
        out[at::BIN_COUNT_1H] = ln(b.count_1h);
        out[at::BIN_COUNT_24H] = ln(b.count_24h);
        out[at::BIN_CARDS_1H] = ln(b.cards_1h);
        out[at::BIN_CARDS_24H] = ln(b.cards_24h);
        out[at::BIN_NEW_CARDS_1H] = ln(b.new_cards_1h);
        let (today, delay) = (day_of(ts), self.config.delay_days());
        let counts = self.bins.get_or_insert(&bin, |b| *b);
        out[at::BIN_RISK_30D] = risk::read(counts, today, delay, prior).risk[2];
        counts.add_txn(ts);
    }

    /// [`FeaturePipeline::observe`] for the Kafka message at `offset` of its card's partition:
    /// the card remembers the offset, and a message its restored state already holds (a
    /// redelivery after a checkpoint was loaded) is scored against the state without moving it.
    pub fn observe_at(&mut self, txn: &Transaction, offset: i64, out: &mut [f32]) {
        let slot = self.card_slot(txn.card);
        if offset < self.states[slot].held {
            let held = self.states[slot].clone();
            self.observe(txn, out);
            self.states[slot] = held;
            return;
        }
        self.observe(txn, out);
        let state = &mut self.states[slot];
        state.applied = state.applied.max(offset + 1);
    }

    /// The Kafka message at `offset`, whose decision is already stored, arrives again: it moves
    /// a card state restored from a checkpoint that does not hold it yet (the previous owner
    /// stored it after its checkpoint), exactly once. A state that was not restored was built
    /// from the store and holds it already. True if it moved the state.
    /// `stored_at` is when the stored decision's transaction arrived (Unix ms): one stored
    /// since the restore is a repeat, which never moves state.
    /// A card this process holds no state of (first seen by the previous owner after its last
    /// checkpoint) gets one from the message: nothing of it was in any state here. Its later
    /// stored messages then move it once each (`applied` keeps the ones this process stores).
    pub fn replay_at(&mut self, txn: &Transaction, offset: i64, stored_at: i64, out: &mut [f32]) -> bool {
        let Some(&slot) = self.index.get(&txn.card) else {
            self.observe_at(txn, offset, out);
            let slot = self.card_slot(txn.card);
            let state = &mut self.states[slot];
            (state.held, state.restored_at) = (offset + 1, i64::MAX);
            return true;
        };
        let state = &self.states[slot as usize];
        if state.held == 0 || offset < state.applied || stored_at >= state.restored_at {
            return false;
        }
        self.observe_at(txn, offset, out);
        true
    }

    /// Raises one entity's transaction count on `day` to `txns` (the store's total over every
    /// process; see [`DailyCounts::raise_txns`]). Unknown country codes are skipped.
    pub fn raise_txns(&mut self, entity: Entity, key: &str, day: u32, txns: u32) {
        let counts = match entity {
            Entity::Merchant => self.merchants.get_or_insert(key, |k: &str| Box::from(k)),
            Entity::Category => self.categories.get_or_insert(key, |k: &str| Box::from(k)),
            Entity::Country => match Country::parse(key) {
                Some(c) => self.countries.get_or_insert(&c, |c| *c),
                None => return,
            },
            Entity::Bin => match key.parse::<u32>() {
                Ok(bin) => self.bins.get_or_insert(&bin, |b| *b),
                Err(_) => return,
            },
            Entity::All => &mut self.global,
        };
        counts.raise_txns(day, txns);
    }

    /// The states of those of `cards` that have one, as a checkpoint ([`codec`]).
    pub fn export_cards<'a>(&self, cards: impl IntoIterator<Item = &'a CardToken>, out: &mut Vec<u8>) {
        let states: Vec<codec::Card<'_>> = cards
            .into_iter()
            .filter_map(|c| {
                let i = *self.index.get(c)? as usize;
                Some((*c, &self.states[i], self.declared.card(i)))
            })
            .collect();
        codec::encode(states.into_iter(), out);
    }

    /// Replaces the states of the checkpoint's cards with the checkpoint's, restored at `now_ms`;
    /// returns the cards. A fraud label this process applied to a card since the checkpoint was
    /// taken (every worker applies every verdict change) is kept: the newer of the two.
    pub fn import_cards(&mut self, checkpoint: &[u8], now_ms: i64) -> anyhow::Result<Vec<CardToken>> {
        let cards = codec::decode(checkpoint, now_ms)?;
        Ok(cards
            .into_iter()
            .map(|(token, mut state, fields)| {
                let slot = self.card_slot(token);
                state.fraud_known_at = state.fraud_known_at.max(self.states[slot].fraud_known_at);
                self.states[slot] = state;
                self.declared.set_card(slot, fields);
                token
            })
            .collect())
    }

    /// A label for `txn` (observed earlier) became known at `known_at`. Only fraud labels move
    /// state: risk is known frauds over transactions, so a legitimate verdict changes nothing.
    /// Call it in time order with [`FeaturePipeline::observe`] (replay interleaves them), so
    /// that a transaction only sees labels known before it.
    pub fn observe_label(&mut self, txn: &Transaction, known_at: i64, fraud: bool) {
        if !fraud {
            return;
        }
        let known_at = known_at.max(txn.timestamp);
        let slot = self.card_slot(txn.card);
        self.states[slot].fraud_label_known(known_at);
        let ts = txn.timestamp;
        self.merchants.get_or_insert(txn.merchant.as_str(), |k: &str| Box::from(k)).add_fraud(ts, 1);
        self.countries.get_or_insert(&txn.country, |c| *c).add_fraud(ts, 1);
        self.categories.get_or_insert(category(txn), |k: &str| Box::from(k)).add_fraud(ts, 1);
        if let Some(bin) = txn.bin {
            self.bins.get_or_insert(&bin, |b| *b).add_fraud(ts, 1);
        }
        self.declared.add_fraud(txn, 1);
        self.global.add_fraud(ts, 1);
    }

    /// A fraud label applied earlier for `txn` was withdrawn (the transaction was found
    /// legitimate): its merchant, country and category counts forget it. The card's
    /// compromised flag stays (it may have other reasons to be suspect for its 30 days).
    pub fn retract_label(&mut self, txn: &Transaction) {
        let ts = txn.timestamp;
        self.merchants.get_or_insert(txn.merchant.as_str(), |k: &str| Box::from(k)).add_fraud(ts, -1);
        self.countries.get_or_insert(&txn.country, |c| *c).add_fraud(ts, -1);
        self.categories.get_or_insert(category(txn), |k: &str| Box::from(k)).add_fraud(ts, -1);
        if let Some(bin) = txn.bin {
            self.bins.get_or_insert(&bin, |b| *b).add_fraud(ts, -1);
        }
        self.declared.add_fraud(txn, -1);
        self.global.add_fraud(ts, -1);
    }

    /// Writes the merchant's, country's and category's risk; returns the prior they were
    /// smoothed towards (read before this transaction counted), for the BIN's.
    fn write_risk(&mut self, txn: &Transaction, out: &mut [f32; N_FEATURES]) -> f64 {
        let (today, delay) = (day_of(txn.timestamp), self.config.delay_days());
        let prior = risk::prior(&self.global, today, delay);
        let merchant = self.merchants.get_or_insert(txn.merchant.as_str(), |k: &str| Box::from(k));
        let m = risk::read(merchant, today, delay, prior);
        merchant.add_txn(txn.timestamp);
        for k in 0..3 {
            out[at::MERCHANT_COUNTS + k] = (m.counts[k] as f32).ln_1p();
            out[at::MERCHANT_RISKS + k] = m.risk[k];
        }
        out[at::MERCHANT_RECENT_FRAUDS] = (m.recent_frauds as f32).ln_1p();
        let country = self.countries.get_or_insert(&txn.country, |c| *c);
        out[at::COUNTRY_RISK] = risk::read(country, today, delay, prior).risk[2];
        country.add_txn(txn.timestamp);
        let category = self.categories.get_or_insert(category(txn), |k: &str| Box::from(k));
        out[at::CATEGORY_RISK] = risk::read(category, today, delay, prior).risk[2];
        category.add_txn(txn.timestamp);
        self.global.add_txn(txn.timestamp);
        prior
    }

    fn write_stateless(&self, txn: &Transaction, out: &mut [f32; N_FEATURES]) {
        use std::f32::consts::TAU;
        let secs_of_day = txn.timestamp.rem_euclid(86_400) as f32;
        let hour = secs_of_day / 3600.0;
        // 1970-01-01 was a Thursday: shift so that Monday = 0.
        let dow = (txn.timestamp.div_euclid(86_400) + 3).rem_euclid(7) as f32;
        let country = self.encoders.country.encode(txn.country.as_str());
        let category = self.encoders.category.encode(category(txn));
        out[at::LOG_AMOUNT] = (txn.amount as f32).ln_1p();
        out[at::HOUR_SIN] = (TAU * hour / 24.0).sin();
        out[at::HOUR_COS] = (TAU * hour / 24.0).cos();
        out[at::DOW_SIN] = (TAU * dow / 7.0).sin();
        out[at::DOW_COS] = (TAU * dow / 7.0).cos();
        out[at::IS_WEEKEND] = f32::from(dow >= 5.0);
        out[at::IS_NIGHT] = f32::from(hour < 6.0);
        out[at::COUNTRY_FREQUENCY] = country.frequency;
        out[at::CATEGORY_FREQUENCY] = category.frequency;
    }
}

fn category(txn: &Transaction) -> &str {
    category_key(txn.merchant_category.as_deref())
}

/// The key of a merchant category in the per-category state ("" when there is none).
pub fn category_key(category: Option<&str>) -> &str {
    category.unwrap_or("")
}

/// The kinds of state that span cards, whose daily transaction counts workers share through
/// the store (`entity_days`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Entity {
    Merchant,
    Country,
    Category,
    /// The card's issuer range (the first six digits of a card number).
    Bin,
    /// Every transaction (the prior that risk is smoothed towards).
    All,
}

impl Entity {
    pub const ALL: [Self; 5] = [Self::Merchant, Self::Country, Self::Category, Self::Bin, Self::All];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Merchant => "merchant",
            Self::Country => "country",
            Self::Category => "category",
            Self::Bin => "bin",
            Self::All => "all",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

fn write_card_features(amount: f32, txn: &Transaction, card: &CardFeatures, out: &mut [f32; N_FEATURES]) {
    for (k, &(count, sum)) in card.windows.iter().enumerate() {
        let base = at::CARD_WINDOWS + 3 * k;
        out[base] = (count as f32).ln_1p();
        out[base + 1] = sum.max(0.0).ln_1p();
        out[base + 2] = (sum.max(0.0) / count.max(1) as f32).ln_1p();
    }
    out[at::SECS_SINCE_PREV] = card.secs_since_prev.map_or(NO_PREVIOUS_SECS, |s| s as f32).ln_1p();
    out[at::AMOUNT_RATIO_30D] = card.prev_mean_30d.map_or(0.0, |mean| ((amount + 1.0) / (mean.max(0.0) + 1.0)).ln());
    out[at::FOREIGN_COUNTRY] = f32::from(card.home_country.is_some_and(|home| home != txn.country));
    out[at::NEW_MERCHANT] = f32::from(card.new_merchant);
    out[at::NEW_COUNTRY] = f32::from(card.new_country);
    out[at::DISTINCT_COUNTRIES_24H] = card.distinct_countries_24h as f32;
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
