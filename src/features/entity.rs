//! Short windows over a value many cards share (a merchant, an issuer range): transactions and
//! amounts in the last hour and day, the distinct cards behind them, and how many of those cards
//! Aegis had never seen before. Card testing and BIN attacks show here first: one shop or one
//! range suddenly used by dozens of different, mostly new, cards within the hour, each at an
//! amount that looks normal for a card.
//!
//! Point in time like the card's windows: [`EntityWindows::observe`] records the transaction and
//! reads windows that include it and nothing later. Memory is bounded: two bucket rings
//! (~230 bytes) plus 12 bytes per distinct card of the last 24 h, at most [`CARD_SLOTS`]; a value
//! unseen for longer than the longest window is dropped by [`EntityTable`]'s hourly sweep.
//!
//! Exactness: counts and sums are exact at bucket granularity (5 min for 1 h, 1 h for 24 h, as
//! for cards). Distinct cards are exact while the value has seen at most [`CARD_SLOTS`] distinct
//! cards in 24 h; past that the least recently seen card is forgotten, so the 24 h figure stays
//! at the cap and the 1 h figures stay exact while the hour itself has at most that many cards.

use super::ring::Ring;
use super::table::DenseTable;
use crate::domain::CardToken;
use std::borrow::Borrow;
use std::hash::Hash;

/// Distinct cards remembered per value.
pub const CARD_SLOTS: usize = 512;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// One card's visits to one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    /// Low 32 bits of the card token (a collision within one value's few hundred cards is a
    /// one-in-ten-million event, and only merges two cards' counts).
    card: u32,
    /// Its latest transaction here (Unix seconds, as `u32`: until 2106).
    last: u32,
    /// When it first came here as a card new to Aegis (its first transaction anywhere); 0 for a
    /// card with history.
    new_at: u32,
}

/// Unix seconds as stored in [`Seen`] (clamped: real transactions are between 1970 and 2106).
fn secs(ts: i64) -> u32 {
    ts.clamp(1, i64::from(u32::MAX)) as u32
}

/// What the windows read, the current transaction included.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EntityReading {
    pub count_1h: u32,
    pub sum_1h: f32,
    pub count_24h: u32,
    pub sum_24h: f32,
    /// Distinct cards in the last hour and day.
    pub cards_1h: u32,
    pub cards_24h: u32,
    /// Distinct cards of the last hour that were new to Aegis when they came.
    pub new_cards_1h: u32,
}

/// The windows of one merchant or issuer range.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntityWindows {
    minutes: Ring<12, 300>,
    hours: Ring<24, 3600>,
    cards: Vec<Seen>,
}

impl EntityWindows {
    /// Records a transaction of `card` (`new_card`: its first anywhere) and reads the windows.
    pub fn observe(&mut self, ts: i64, amount: f32, card: CardToken, new_card: bool) -> EntityReading {
        self.minutes.add(ts, amount);
        self.hours.add(ts, amount);
        let card = card.as_u128() as u32;
        let now = secs(ts);
        // In the window of `span` seconds ending now (a later time, out of order, is not).
        let within = |t: u32, span: u32| t != 0 && t <= now && now - t < span;
        let (mut cards_1h, mut cards_24h, mut new_cards_1h) = (0u32, 0u32, 0u32);
        let mut found = false;
        let mut i = 0;
        // One pass: forget cards idle for a day, update this card, count the rest.
        while i < self.cards.len() {
            let s = &mut self.cards[i];
            if s.card == card {
                s.last = s.last.max(now);
                found = true;
            } else if s.last <= now && now - s.last >= DAY as u32 {
                self.cards.swap_remove(i);
                continue;
            }
            let s = self.cards[i];
            cards_24h += u32::from(within(s.last, DAY as u32));
            cards_1h += u32::from(within(s.last, HOUR as u32));
            new_cards_1h += u32::from(within(s.new_at, HOUR as u32));
            i += 1;
        }
        if !found {
            let seen = Seen { card, last: now, new_at: if new_card { now } else { 0 } };
            if self.cards.len() >= CARD_SLOTS {
                // Full: the least recently seen card makes room (it was counted above).
                let oldest = (0..self.cards.len()).min_by_key(|&k| self.cards[k].last).unwrap_or(0);
                let gone = self.cards[oldest];
                cards_24h -= u32::from(within(gone.last, DAY as u32));
                cards_1h -= u32::from(within(gone.last, HOUR as u32));
                new_cards_1h -= u32::from(within(gone.new_at, HOUR as u32));
                self.cards[oldest] = seen;
            } else {
                self.cards.push(seen);
            }
            cards_24h += 1;
            cards_1h += 1;
            new_cards_1h += u32::from(new_card);
        }
        let (count_1h, sum_1h) = self.minutes.window(ts, 12);
        let (count_24h, sum_24h) = self.hours.window(ts, 24);
        EntityReading { count_1h, sum_1h, count_24h, sum_24h, cards_1h, cards_24h, new_cards_1h }
    }

    /// True if nothing happened here in the day before `ts`: every window reads empty. The
    /// newest hour bucket may hold a transaction up to an hour later than the bucket's start,
    /// and distinct cards count in seconds, so a value is idle a full day after that hour ends.
    fn idle_at(&self, ts: i64) -> bool {
        self.hours.head.is_none_or(|head| i64::from(head) + 25 <= ts.div_euclid(HOUR))
    }

    /// Heap bytes held beyond the struct itself.
    fn heap_bytes(&self) -> usize {
        self.cards.capacity() * std::mem::size_of::<Seen>()
    }
}

/// Windows per value, stored densely ([`DenseTable`]); values idle for a day are dropped once
/// an hour (of event time), so memory follows the active values, not every value ever seen.
#[derive(Debug, Clone)]
pub struct EntityTable<K> {
    table: DenseTable<K, EntityWindows>,
    /// The hour (Unix seconds / 3600) of the last sweep.
    swept: i64,
}

impl<K> Default for EntityTable<K> {
    fn default() -> Self {
        Self { table: DenseTable::default(), swept: i64::MIN }
    }
}

impl<K: Hash + Eq> EntityTable<K> {
    /// Records a transaction at the value `key` (`make_key` runs only for a value not held) and
    /// reads its windows.
    pub fn observe<Q>(
        &mut self,
        key: &Q,
        make_key: impl FnOnce(&Q) -> K,
        ts: i64,
        amount: f32,
        card: CardToken,
        new_card: bool,
    ) -> EntityReading
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if ts.div_euclid(HOUR) > self.swept {
            self.swept = ts.div_euclid(HOUR);
            if self.table.values().iter().any(|v| v.idle_at(ts)) {
                self.table.retain(|v| !v.idle_at(ts));
            }
        }
        self.table.get_or_insert(key, make_key).observe(ts, amount, card, new_card)
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Bytes held per value, on average (the states, their card lists and the index's share;
    /// keys' own heap not counted).
    pub fn bytes_per_value(&self) -> usize {
        let values = self.table.values();
        let states = std::mem::size_of_val(values);
        let cards: usize = values.iter().map(EntityWindows::heap_bytes).sum();
        (states + cards + self.table.index_bytes()) / values.len().max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn token(card: u32) -> CardToken {
        CardToken::from_hex(&format!("{:032x}", u128::from(card) * 0x1_0000_0001)).unwrap()
    }

    /// Brute force over the raw events, the current one included: distinct cards whose latest
    /// transaction at or before `ts` falls in the window, and the new ones among them.
    fn brute(events: &[(i64, u32, bool, f32)], ts: i64) -> EntityReading {
        use std::collections::BTreeMap;
        let mut last: BTreeMap<u32, i64> = BTreeMap::new();
        let mut new_at: BTreeMap<u32, i64> = BTreeMap::new();
        let mut r = EntityReading::default();
        for &(t, card, new, amount) in events.iter().filter(|e| e.0 <= ts) {
            let l = last.entry(card).or_insert(t);
            *l = (*l).max(t);
            if new {
                new_at.entry(card).or_insert(t);
            }
            // Buckets: 5 min for the hour, 1 h for the day.
            if t.div_euclid(300) > ts.div_euclid(300) - 12 {
                r.count_1h += 1;
                r.sum_1h += amount;
            }
            if t.div_euclid(3600) > ts.div_euclid(3600) - 24 {
                r.count_24h += 1;
                r.sum_24h += amount;
            }
        }
        r.cards_1h = last.values().filter(|&&l| l > ts - HOUR).count() as u32;
        r.cards_24h = last.values().filter(|&&l| l > ts - DAY).count() as u32;
        r.new_cards_1h = new_at.values().filter(|&&at| at > ts - HOUR).count() as u32;
        r
    }

    proptest! {
        #[test]
        fn windows_and_distinct_cards_match_brute_force(
            steps in proptest::collection::vec((0i64..1800, 0u32..40, any::<bool>(), 1u32..500), 1..300),
        ) {
            let mut w = EntityWindows::default();
            let mut events = Vec::new();
            let mut seen = std::collections::BTreeSet::new();
            let mut ts = 1_700_000_000;
            for (gap, card, maybe_new, cents) in steps {
                ts += gap;
                // A card is new to Aegis only on its first transaction ever.
                let new = maybe_new && seen.insert(card);
                seen.insert(card);
                let amount = cents as f32;
                events.push((ts, card, new, amount));
                let got = w.observe(ts, amount, token(card), new);
                let want = brute(&events, ts);
                prop_assert_eq!(
                    (got.count_1h, got.count_24h, got.cards_1h, got.cards_24h, got.new_cards_1h),
                    (want.count_1h, want.count_24h, want.cards_1h, want.cards_24h, want.new_cards_1h)
                );
                prop_assert!((got.sum_1h - want.sum_1h).abs() <= 1e-3 * want.sum_1h.max(1.0));
                prop_assert!((got.sum_24h - want.sum_24h).abs() <= 1e-3 * want.sum_24h.max(1.0));
            }
        }
    }

    #[test]
    fn past_the_cap_the_day_reads_the_cap_and_the_hour_stays_exact() {
        let mut w = EntityWindows::default();
        let t0 = 1_700_000_000;
        // CARD_SLOTS + 100 cards over 20 hours, then 30 cards in the last hour.
        let n = CARD_SLOTS as u32 + 100;
        for c in 0..n {
            w.observe(t0 + i64::from(c) * 20 * HOUR / i64::from(n), 1.0, token(c), false);
        }
        let t1 = t0 + 21 * HOUR;
        let mut r = EntityReading::default();
        for c in 0..30 {
            r = w.observe(t1 + i64::from(c), 1.0, token(100_000 + c), c % 3 == 0);
        }
        assert_eq!(r.cards_24h, CARD_SLOTS as u32);
        assert_eq!(r.cards_1h, 30);
        assert_eq!(r.new_cards_1h, 10);
        assert!(w.cards.len() <= CARD_SLOTS);
    }

    #[test]
    fn idle_values_are_swept_and_memory_follows_the_active_ones() {
        let mut table: EntityTable<u32> = EntityTable::default();
        let t0 = 1_700_000_000;
        for v in 0..10_000u32 {
            table.observe(&v, |v| *v, t0 + i64::from(v % 3600), 5.0, token(v), true);
        }
        assert_eq!(table.len(), 10_000);
        // A day and more later only the values used since remain.
        for v in 0..10u32 {
            table.observe(&v, |v| *v, t0 + 2 * DAY + i64::from(v), 5.0, token(v), false);
        }
        assert_eq!(table.len(), 10);
        // A value that comes back starts afresh.
        let r = table.observe(&5_000, |v| *v, t0 + 2 * DAY + 60, 5.0, token(5_000), false);
        assert_eq!((r.count_24h, r.cards_24h), (1, 1));
        assert_eq!(std::mem::size_of::<Seen>(), 12);
        assert!(table.bytes_per_value() < 600, "{} bytes per value", table.bytes_per_value());
    }

    #[test]
    fn a_card_of_the_last_24_hours_survives_the_sweep() {
        let mut table: EntityTable<u32> = EntityTable::default();
        // At the end of hour H, then 23 h 50 min later (hour H + 24): the first card is still
        // within the day, though its hour bucket has left the 24-hour ring.
        let t0 = 1_700_000_000 / 3600 * 3600 + 3590;
        table.observe(&1, |v| *v, t0, 5.0, token(1), false);
        let r = table.observe(&1, |v| *v, t0 + DAY - 600, 5.0, token(2), false);
        assert_eq!(r.cards_24h, 2);
    }
}
