//! Per-card streaming state and the features read from it.
//!
//! Memory is bounded (about 700 bytes a card; see `BENCHMARKS.md`): three bucket rings, a
//! Space-Saving table of the card's countries and a small set of recently used merchants.
//! Exactness: window counts and sums are exact at bucket granularity (5 min for the 1 h window,
//! 1 h for 24 h, 1 day for 7 and 30 days); the home country and distinct-country count are exact
//! while a card has used at most [`COUNTRY_SLOTS`] countries; "new merchant" means "not among the
//! card's last [`MERCHANT_SLOTS`] distinct merchants"; "new country" is exact while the card has
//! used at most [`COUNTRY_SLOTS`] countries (an evicted country counts as new again).

use super::ring::Ring;
use crate::domain::Country;

pub const COUNTRY_SLOTS: usize = 6;
pub const MERCHANT_SLOTS: usize = 32;

const DAY: i64 = 86_400;

/// What a card had done before the current transaction, plus the current one where stated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CardFeatures {
    /// (count, amount sum) over 1 h, 24 h, 7 d and 30 d, including the current transaction.
    pub windows: [(u32, f32); 4],
    /// Seconds since the card's previous transaction; `None` for its first.
    pub secs_since_prev: Option<i64>,
    /// Mean amount over the previous 30 days, excluding the current one; `None` without history.
    pub prev_mean_30d: Option<f32>,
    /// The card's most frequent country before this transaction; `None` for its first.
    pub home_country: Option<Country>,
    /// True if the merchant is not among the card's recent merchants.
    pub new_merchant: bool,
    /// True if the card has history but was never used in this country before.
    pub new_country: bool,
    /// Distinct countries used in the last 24 h, including the current transaction.
    pub distinct_countries_24h: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct CountrySlot {
    pub(super) country: Country,
    pub(super) count: u32,
    pub(super) last_seen: i64,
}

/// The streaming state of one card.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CardState {
    pub(super) five_minutes: Ring<12, 300>,
    pub(super) hours: Ring<24, 3600>,
    pub(super) days: Ring<30, DAY>,
    pub(super) last_ts: Option<i64>,
    pub(super) countries: [CountrySlot; COUNTRY_SLOTS],
    /// Hashes of recently seen merchants (0 = empty slot), replaced oldest first.
    pub(super) merchants: [u32; MERCHANT_SLOTS],
    pub(super) next_merchant: u8,
    /// When the newest fraud label for one of the card's transactions became known (Unix
    /// seconds; 0 = never).
    pub(super) fraud_known_at: i64,
    /// One past the highest Kafka offset recorded here (0 = none; a card's messages all come
    /// from one partition), saved with the state in checkpoints (`features::codec`).
    pub(super) applied: i64,
    /// After a restore from a checkpoint, the checkpoint's `applied`: messages below it are in
    /// the state already, so their redelivery must not move it again. 0 = not restored (a state
    /// built from the store holds every stored message). Not saved.
    pub(super) held: i64,
    /// When the state was restored (Unix ms; 0 = never): a redelivered message stored before
    /// then was stored by the previous owner; one stored since is a repeat. Not saved.
    pub(super) restored_at: i64,
}

impl CardState {
    /// Reads the features of a transaction and then records it. Point-in-time correct: what is
    /// read depends only on earlier transactions and this one.
    pub fn observe(&mut self, ts: i64, amount: f32, country: Country, merchant_hash: u32) -> CardFeatures {
        let secs_since_prev = self.last_ts.map(|prev| (ts - prev).max(0));
        let (prev_count_30d, prev_sum_30d) = self.days.window(ts, 30);
        let prev_mean_30d = (prev_count_30d > 0).then(|| prev_sum_30d / prev_count_30d as f32);
        let home_country = self
            .countries
            .iter()
            .filter(|s| s.count > 0)
            .max_by_key(|s| (s.count, std::cmp::Reverse(s.country)))
            .map(|s| s.country);
        let new_country = home_country.is_some() && !self.countries.iter().any(|s| s.count > 0 && s.country == country);
        let merchant_hash = merchant_hash | 1; // never the empty marker
        let new_merchant = !self.merchants.contains(&merchant_hash);

        self.record(ts, amount, country, merchant_hash, new_merchant);

        let distinct_countries_24h =
            self.countries.iter().filter(|s| s.count > 0 && s.last_seen > ts - DAY).count() as u32;
        CardFeatures {
            windows: [
                self.five_minutes.window(ts, 12),
                self.hours.window(ts, 24),
                self.days.window(ts, 7),
                self.days.window(ts, 30),
            ],
            secs_since_prev,
            prev_mean_30d,
            home_country,
            new_merchant,
            new_country,
            distinct_countries_24h,
        }
    }

    /// A fraud label for one of this card's transactions became known at `known_at`.
    pub fn fraud_label_known(&mut self, known_at: i64) {
        self.fraud_known_at = self.fraud_known_at.max(known_at);
    }

    /// When the card's newest fraud label became known, if one has.
    pub fn fraud_known_at(&self) -> Option<i64> {
        (self.fraud_known_at != 0).then_some(self.fraud_known_at)
    }

    fn record(&mut self, ts: i64, amount: f32, country: Country, merchant_hash: u32, new_merchant: bool) {
        self.five_minutes.add(ts, amount);
        self.hours.add(ts, amount);
        self.days.add(ts, amount);
        self.last_ts = Some(self.last_ts.map_or(ts, |prev| prev.max(ts)));
        if new_merchant {
            self.merchants[usize::from(self.next_merchant)] = merchant_hash;
            self.next_merchant = ((usize::from(self.next_merchant) + 1) % MERCHANT_SLOTS) as u8;
        }
        // Space-Saving: bump the country's slot, or take over the least-counted slot.
        let slot = match self.countries.iter().position(|s| s.count > 0 && s.country == country) {
            Some(i) => i,
            None => {
                let i = (0..COUNTRY_SLOTS).min_by_key(|&i| self.countries[i].count).unwrap_or(0);
                self.countries[i].country = country;
                i
            }
        };
        let s = &mut self.countries[slot];
        s.count = s.count.saturating_add(1);
        s.last_seen = s.last_seen.max(ts);
    }
}
