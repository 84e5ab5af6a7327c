//! Label-aware state that spans cards: per merchant (terminal), country and merchant category,
//! daily counts of transactions and of the fraud labels known so far, by transaction day.
//!
//! A label reaches this state only when it becomes known ([`DailyCounts::add_fraud`] is called
//! at the label's time), so a read at time `t` sees exactly the labels known before `t`. Risk is
//! read over *mature* days — transaction days at least the label delay old, whose labels have
//! had time to arrive — as in the fraud-detection handbook's delayed terminal-risk features;
//! frauds known early (a customer's report the same day) are read separately, from the
//! immature days.
//!
//! Memory: [`DAYS`] days of two `u32` counters per entity (`BENCHMARKS.md` has bytes per
//! merchant); days older than the ring are dropped as time moves on.

/// Days kept per entity: a 30-day window behind a label delay of up to [`MAX_DELAY_DAYS`].
pub const DAYS: usize = 64;
/// The longest label delay the windows support.
pub const MAX_DELAY_DAYS: u32 = 30;
/// Pseudo-count pulling a rate towards the overall rate: a merchant with 2 transactions, both
/// fraud, reads (2 + 5·p₀)/7, not 100%.
const SMOOTHING: f64 = 5.0;

const DAY: i64 = 86_400;

pub fn day_of(ts: i64) -> u32 {
    ts.div_euclid(DAY).clamp(0, i64::from(u32::MAX)) as u32
}

/// A day's counter: `u32` for merchants, issuer ranges, countries and categories; `u16`
/// (saturating at 65,535 a day) for the values of declared entity fields, which can number
/// millions (264 bytes a value instead of 520).
pub trait Counter: Copy + Default + PartialEq + std::fmt::Debug {
    fn get(self) -> u32;
    /// `n`, saturated to the counter's range.
    fn of(n: u32) -> Self;
}

impl Counter for u32 {
    fn get(self) -> u32 {
        self
    }

    fn of(n: u32) -> Self {
        n
    }
}

impl Counter for u16 {
    fn get(self) -> u32 {
        u32::from(self)
    }

    fn of(n: u32) -> Self {
        n.min(u32::from(u16::MAX)) as u16
    }
}

/// Per transaction day: transactions seen and fraud labels known, over the last [`DAYS`] days.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyCounts<C: Counter = u32> {
    /// Newest day held; `None` before the first transaction.
    head: Option<u32>,
    txns: [C; DAYS],
    frauds: [C; DAYS],
}

impl<C: Counter> Default for DailyCounts<C> {
    fn default() -> Self {
        Self { head: None, txns: [C::default(); DAYS], frauds: [C::default(); DAYS] }
    }
}

impl<C: Counter> DailyCounts<C> {
    /// Moves the ring forward to `day`, clearing the days that fall out.
    fn advance(&mut self, day: u32) {
        match self.head {
            Some(h) if day <= h => {}
            Some(h) => {
                for k in 1..=(day - h).min(DAYS as u32) {
                    let slot = (h + k) as usize % DAYS;
                    self.txns[slot] = C::default();
                    self.frauds[slot] = C::default();
                }
                self.head = Some(day);
            }
            None => self.head = Some(day),
        }
    }

    /// The slot of `day` if the ring still holds it.
    fn slot(&self, day: u32) -> Option<usize> {
        let head = self.head?;
        (day <= head && head - day < DAYS as u32).then_some(day as usize % DAYS)
    }

    pub fn add_txn(&mut self, ts: i64) {
        let day = day_of(ts);
        self.advance(day);
        if let Some(s) = self.slot(day) {
            self.txns[s] = C::of(self.txns[s].get().saturating_add(1));
        }
    }

    /// Raises `day`'s transaction count to `txns` if it holds fewer (another worker's share,
    /// read from the store: its count covers this process's committed transactions too).
    pub fn raise_txns(&mut self, day: u32, txns: u32) {
        self.advance(day);
        if let Some(s) = self.slot(day) {
            self.txns[s] = C::of(self.txns[s].get().max(txns));
        }
    }

    /// A fraud label became known for a transaction made at `txn_ts` (`delta` = −1 retracts one).
    pub fn add_fraud(&mut self, txn_ts: i64, delta: i32) {
        let day = day_of(txn_ts);
        self.advance(day);
        if let Some(s) = self.slot(day) {
            self.frauds[s] = C::of(self.frauds[s].get().saturating_add_signed(delta));
        }
    }

    /// The newest day held, if any.
    pub fn last_day(&self) -> Option<u32> {
        self.head
    }

    /// (transactions, known frauds) over transaction days `first..=last`.
    pub fn sum(&self, first: u32, last: u32) -> (u32, u32) {
        let Some(head) = self.head else { return (0, 0) };
        let first = first.max(head.saturating_sub(DAYS as u32 - 1));
        let last = last.min(head);
        let (mut n, mut f) = (0u32, 0u32);
        if first <= last {
            for day in first..=last {
                let s = day as usize % DAYS;
                n += self.txns[s].get();
                f += self.frauds[s].get();
            }
        }
        (n, f)
    }
}

/// What one entity's state says at a moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EntityRisk {
    /// Transactions on the last 1, 7 and 30 days (today included, the current one excluded).
    pub counts: [u32; 3],
    /// Smoothed share of known frauds over the 1, 7 and 30 mature days.
    pub risk: [f32; 3],
    /// Frauds already known among the transactions of the immature days (the label delay).
    pub recent_frauds: u32,
}

/// Reads windows at day `today` for a label delay of `delay_days`, against prior rate `prior`.
pub fn read<C: Counter>(counts: &DailyCounts<C>, today: u32, delay_days: u32, prior: f64) -> EntityRisk {
    let window = |days: u32| counts.sum(today.saturating_sub(days - 1), today).0;
    let last_mature = today.saturating_sub(delay_days + 1);
    let risk = |days: u32| {
        let (n, f) = counts.sum(last_mature.saturating_sub(days - 1), last_mature);
        ((f64::from(f) + SMOOTHING * prior) / (f64::from(n) + SMOOTHING)) as f32
    };
    EntityRisk {
        counts: [window(1), window(7), window(30)],
        risk: [risk(1), risk(7), risk(30)],
        recent_frauds: counts.sum(today.saturating_sub(delay_days), today).1,
    }
}

/// The overall known fraud rate over the 30 mature days: the prior every entity is pulled to.
pub fn prior(global: &DailyCounts, today: u32, delay_days: u32) -> f64 {
    let last = today.saturating_sub(delay_days + 1);
    let (n, f) = global.sum(last.saturating_sub(29), last);
    if n == 0 { 0.0 } else { f64::from(f) / f64::from(n) }
}

/// Daily counts per entity, stored densely behind a key → index map.
pub type RiskTable<K, C = u32> = super::table::DenseTable<K, DailyCounts<C>>;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Brute force over the raw events: (transactions, frauds known) on days `first..=last`.
    fn brute(events: &[(i64, bool)], first: u32, last: u32, head: u32) -> (u32, u32) {
        let lo = first.max(head.saturating_sub(DAYS as u32 - 1));
        let mut n = 0;
        let mut f = 0;
        for &(ts, fraud) in events {
            let d = day_of(ts);
            if d >= lo && d <= last.min(head) {
                n += 1;
                f += u32::from(fraud);
            }
        }
        (n, f)
    }

    proptest! {
        #[test]
        fn windows_match_brute_force(
            mut gaps in proptest::collection::vec((0i64..3 * DAY, any::<bool>()), 1..200),
            span in 1u32..40,
            back in 0u32..80,
        ) {
            let mut ts = 20_000 * DAY;
            let mut events = Vec::new();
            let mut c: DailyCounts = DailyCounts::default();
            for (gap, fraud) in gaps.drain(..) {
                ts += gap;
                c.add_txn(ts);
                if fraud {
                    c.add_fraud(ts, 1);
                }
                events.push((ts, fraud));
            }
            let head = day_of(ts);
            let last = head.saturating_sub(back);
            let first = last.saturating_sub(span - 1);
            prop_assert_eq!(c.sum(first, last), brute(&events, first, last, head));
        }
    }

    #[test]
    fn sixteen_bit_days_saturate_instead_of_wrapping() {
        let mut c: DailyCounts<u16> = DailyCounts::default();
        let day0 = 20_000 * DAY;
        for k in 0..70_000 {
            c.add_txn(day0 + k % 3_600);
        }
        c.add_fraud(day0, 3);
        c.add_fraud(day0, -1);
        assert_eq!(c.sum(day_of(day0), day_of(day0)), (65_535, 2));
        assert_eq!(std::mem::size_of::<DailyCounts<u16>>(), 264);
    }

    #[test]
    fn risk_reads_only_mature_days_and_is_smoothed() {
        let mut c: DailyCounts = DailyCounts::default();
        let day0 = 20_000 * DAY;
        // Ten transactions a day for 20 days; every one on day 3 is fraud, known at once.
        for d in 0..20 {
            for k in 0..10 {
                let ts = day0 + d * DAY + k * 60;
                c.add_txn(ts);
                if d == 3 {
                    c.add_fraud(ts, 1);
                }
            }
        }
        let today = day_of(day0) + 10;
        // Delay 7: the mature days end at day 2 (10 − 7 − 1), so day 3 is not yet read as risk
        // but counts as an early-known fraud.
        let r = read(&c, today, 7, 0.0);
        assert_eq!(r.risk, [0.0, 0.0, 0.0]);
        assert_eq!(r.recent_frauds, 10);
        assert_eq!(r.counts, [10, 70, 110]);
        // A day later, day 3 is mature: 1-day risk 10/(10+5).
        let r = read(&c, today + 1, 7, 0.0);
        assert!((r.risk[0] - 10.0 / 15.0).abs() < 1e-6, "{:?}", r.risk);
        assert_eq!(r.recent_frauds, 0);
        // A merchant with 2 transactions, both fraud, is not "100% fraud".
        let mut two: DailyCounts = DailyCounts::default();
        for k in 0..2 {
            two.add_txn(day0 + k);
            two.add_fraud(day0 + k, 1);
        }
        let r = read(&two, day_of(day0) + 8, 7, 0.01);
        assert!(r.risk[0] < 0.35, "{:?}", r.risk);
    }
}
