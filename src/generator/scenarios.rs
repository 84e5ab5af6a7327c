//! Fraud scenarios 2–6, applied on top of legitimate traffic (scenario 1 is drawn inline).

use super::{GeneratorConfig, Row, World};
use rand::Rng;
use rand_pcg::Pcg64Mcg;

/// Scenario 3: compromised cards. Each gets a burst of 3–12 transactions a few minutes apart,
/// at 3–10× its usual level, in a country new to it 60% of the time, at fraud-favoured merchants.
pub fn compromised_cards(
    world: &World,
    config: &GeneratorConfig,
    budget: usize,
    rows: &mut Vec<Row>,
    rng: &mut Pcg64Mcg,
) {
    let span = i64::from(config.days) * 86_400;
    let mut left = budget;
    while left > 0 {
        let card_idx = rng.random_range(0..world.cards.len()) as u32;
        let card = &world.cards[card_idx as usize];
        let country = if rng.random::<f64>() < 0.6 {
            // A country that is neither home nor the usual trip.
            let mut c = rng.random_range(0..super::COUNTRIES.len()) as u8;
            while c == card.home || c == card.travel {
                c = rng.random_range(0..super::COUNTRIES.len()) as u8;
            }
            c
        } else {
            card.home
        };
        let mut ts = config.start + rng.random_range(span / 10..span.max(span / 10 + 1));
        let burst = rng.random_range(3..=12).min(left);
        for _ in 0..burst {
            let merchant = world.sample_merchant_in(country, true, rng);
            let amount = card.level * rng.random_range(3.0..10.0);
            rows.push(Row {
                ts: ts.min(config.start + span - 1),
                card: card_idx,
                merchant,
                amount_cents: (amount * 100.0).clamp(100.0, 5_000_000.0) as u32,
                country,
                label: true,
                scenario: 3,
                actor: 0,
            });
            ts += rng.random_range(60..2_400);
        }
        left -= burst;
    }
}

/// Scenario 2: compromised (bust-out) merchants, each with a window of 2–5 days.
#[derive(Debug, Default)]
pub struct CompromisedMerchants {
    /// (merchant, window start, window end) in Unix seconds, end exclusive.
    windows: Vec<(u32, i64, i64)>,
    /// Per merchant: whether any window is theirs (a fast reject for the common case).
    flagged: Vec<bool>,
}

impl CompromisedMerchants {
    /// About one compromised merchant per 40 fraudulent transactions wanted (at least one).
    pub fn pick(world: &World, config: &GeneratorConfig, rows: usize, rng: &mut Pcg64Mcg) -> Self {
        if rows == 0 {
            return Self::default();
        }
        let n = rows.div_ceil(40).clamp(1, world.merchants.len() / 10 + 1);
        let windows = (0..n)
            .map(|_| {
                let merchant = rng.random_range(0..world.merchants.len()) as u32;
                let days = rng.random_range(2..=5u32).min(config.days);
                let first = rng.random_range(0..=config.days - days);
                let start = config.start + i64::from(first) * 86_400;
                (merchant, start, start + i64::from(days) * 86_400)
            })
            .collect::<Vec<_>>();
        let mut flagged = vec![false; world.merchants.len()];
        for &(m, _, _) in &windows {
            flagged[m as usize] = true;
        }
        Self { windows, flagged }
    }

    /// True if `merchant` is compromised at `ts`.
    pub fn covers(&self, merchant: u32, ts: i64) -> bool {
        self.flagged.get(merchant as usize).copied().unwrap_or(false)
            && self.windows.iter().any(|&(m, from, to)| m == merchant && (from..to).contains(&ts))
    }

    /// Adds `rows` fraudulent transactions, spread over the compromised windows: stolen cards
    /// (random, so almost never regulars) at 1.5–6× their usual level.
    pub fn inject(&self, world: &World, config: &GeneratorConfig, rows: usize, out: &mut Vec<Row>, rng: &mut Pcg64Mcg) {
        if self.windows.is_empty() {
            return;
        }
        for k in 0..rows {
            let (merchant, from, to) = self.windows[k % self.windows.len()];
            let card_idx = rng.random_range(0..world.cards.len()) as u32;
            let card = &world.cards[card_idx as usize];
            let day = rng.random_range(0..(to - from) / 86_400);
            let ts = (from + day * 86_400 + world.sample_time_of_day(rng))
                .min(config.start + i64::from(config.days) * 86_400 - 1);
            out.push(Row {
                ts,
                card: card_idx,
                merchant,
                amount_cents: (card.level * rng.random_range(1.5..6.0) * 100.0).clamp(100.0, 5_000_000.0) as u32,
                country: world.merchants[merchant as usize].country,
                label: true,
                scenario: 2,
                actor: 0,
            });
        }
    }
}

/// Scenario 4: each legitimate transaction is labelled fraud with probability `rate`.
pub fn label_noise(rate: f64, rows: &mut [Row], rng: &mut Pcg64Mcg) {
    if rate <= 0.0 {
        return;
    }
    for r in rows.iter_mut().filter(|r| !r.label) {
        if rng.random::<f64>() < rate {
            r.label = true;
            r.scenario = 4;
        }
    }
}

/// Indices of the legitimate rows of each key (rows are in time order, so each list is too).
fn legit_rows_by(rows: &[Row], n: usize, key: impl Fn(&Row) -> u32) -> Vec<Vec<u32>> {
    let mut by = vec![Vec::new(); n];
    for (i, r) in rows.iter().enumerate() {
        if !r.label {
            by[key(r) as usize].push(i as u32);
        }
    }
    by
}

/// A window of `min_days..=max_days` (at most the data's span), as Unix seconds, end exclusive.
fn window(config: &GeneratorConfig, min_days: u32, max_days: u32, rng: &mut Pcg64Mcg) -> (i64, i64) {
    let days = rng.random_range(min_days..=max_days).min(config.days);
    let first = rng.random_range(0..=config.days - days);
    let start = config.start + i64::from(first) * 86_400;
    (start, start + i64::from(days) * 86_400)
}

/// Scenario 5: skimmed terminals. A merchant's terminal is compromised for 14–28 days: every
/// transaction there in the window is fraud, made by its usual customers at their usual amounts
/// (the rows are the legitimate ones, relabelled). Merchants are drawn until about `budget` rows
/// are fraud.
pub fn skimmed_terminals(world: &World, config: &GeneratorConfig, budget: usize, rows: &mut [Row], rng: &mut Pcg64Mcg) {
    if budget == 0 {
        return;
    }
    let by_merchant = legit_rows_by(rows, world.merchants.len(), |r| r.merchant);
    let mut left = budget;
    for _ in 0..20 * world.merchants.len() {
        if left == 0 {
            break;
        }
        let merchant = rng.random_range(0..world.merchants.len());
        let (from, to) = window(config, 14, 28, rng);
        let hits: Vec<u32> = by_merchant[merchant]
            .iter()
            .copied()
            .filter(|&i| !rows[i as usize].label && (from..to).contains(&rows[i as usize].ts))
            .collect();
        // A terminal far busier than the budget left would swamp the mix: try another.
        if hits.is_empty() || hits.len() > left + 20 {
            continue;
        }
        left = left.saturating_sub(hits.len());
        for i in hits {
            let r = &mut rows[i as usize];
            r.label = true;
            r.scenario = 5;
        }
    }
}

/// Scenario 6: card takeovers. For 14 days, each transaction of a taken-over card is the
/// fraudster's with probability 1/3, at 2.5–6× the amount the cardholder would have spent, at the
/// same merchant and time. Cards are drawn until about `budget` rows are fraud.
pub fn card_takeovers(world: &World, config: &GeneratorConfig, budget: usize, rows: &mut [Row], rng: &mut Pcg64Mcg) {
    if budget == 0 {
        return;
    }
    let by_card = legit_rows_by(rows, world.cards.len(), |r| r.card);
    let mut left = budget;
    for _ in 0..20 * world.cards.len() {
        if left == 0 {
            break;
        }
        let card = world.sample_card(rng) as usize;
        let (from, to) = window(config, 14, 14, rng);
        for &i in &by_card[card] {
            let r = &mut rows[i as usize];
            if left == 0 || r.label || !(from..to).contains(&r.ts) || rng.random::<f64>() >= 1.0 / 3.0 {
                continue;
            }
            let amount = f64::from(r.amount_cents) * rng.random_range(2.5..6.0);
            r.amount_cents = amount.clamp(100.0, 5_000_000.0) as u32;
            r.label = true;
            r.scenario = 6;
            left -= 1;
        }
    }
}
