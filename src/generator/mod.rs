//! Synthetic card transactions with labelled fraud scenarios, deterministic for a seed.
//!
//! Legitimate traffic: each card shops mostly at its regular merchants at home, at its own rate
//! and spending level, on a daily rhythm, with occasional trips abroad. Fraud scenarios (the
//! `fraud_scenario` column):
//! 1. a large amount (> 200) abroad, labelled fraud with probability 0.6 (the classic rule);
//! 2. a compromised (bust-out) merchant: for a window of days fraudsters run stolen cards through
//!    a few merchants' terminals — every transaction there in the window is fraud, from cards
//!    that never shopped there, at above their usual amounts, while the regular customers shop
//!    elsewhere;
//! 3. a compromised card: a burst of large transactions, often in a country new to the card;
//! 4. label noise: a random legitimate transaction labelled fraud;
//! 5. a skimmed terminal: for two to four weeks every transaction at a few merchants is fraud,
//!    made by the merchant's regular customers at their normal amounts — each one looks
//!    perfectly normal for its card, so only the merchant's confirmed-fraud history gives it away;
//! 6. a card takeover: for two weeks about a third of a card's transactions are made by a
//!    fraudster at several times the card's usual amount, at the card's usual places;
//! 7. a BIN attack: dozens of sequential card numbers of one issuer range, never seen before,
//!    tried within hours at one or two small online shops, at amounts normal there;
//! 8. card testing: within an hour or two, dozens of stolen cards buy at one small online shop,
//!    at amounts normal for each card;
//! 9. – 11. card-not-present fraud only the device, IP, e-mail and location reveal: a testing
//!    bot, account takeovers and fraud rings ([`cnp`], which also writes those fields for
//!    every row).
//!
//! The legitimate mess around them: cards spread unevenly over issuer ranges (a few big issuers
//! see many cards an hour), quiet cards seen for the first time weeks into the data, and rushes
//! (a sale, a ticket release) where dozens of cardholders buy at one shop within an hour.

mod attacks;
pub mod cnp;
mod csv_out;
mod scenarios;
mod world;

pub use csv_out::{CSV_HEADER, txn_id, write_csv};
pub use world::{CATEGORIES, COUNTRIES, World};

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;

/// What to generate. Checked by [`GeneratorConfig::check`].
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    pub rows: usize,
    pub cards: usize,
    pub merchants: usize,
    pub days: u32,
    /// Unix seconds of the first day's midnight (UTC).
    pub start: i64,
    pub seed: u64,
    /// Target share of transactions that are fraud (scenarios 1–3 are scaled to it).
    pub fraud_rate: f64,
    /// Share of transactions randomly labelled fraud (scenario 4).
    pub label_noise: f64,
}

impl GeneratorConfig {
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.rows > 0, "--rows must be at least 1");
        anyhow::ensure!(self.cards > 0, "--cards must be at least 1");
        anyhow::ensure!(self.merchants >= COUNTRIES.len(), "--merchants must be at least {}", COUNTRIES.len());
        anyhow::ensure!((1..=3650).contains(&self.days), "--days must be between 1 and 3650");
        anyhow::ensure!((0.0..=0.5).contains(&self.fraud_rate), "--fraud-rate must be between 0 and 0.5");
        anyhow::ensure!((0.0..=0.1).contains(&self.label_noise), "--label-noise must be between 0 and 0.1");
        Ok(())
    }
}

/// One generated transaction, compact; rendered to text only when written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    pub ts: i64,
    pub card: u32,
    pub merchant: u32,
    pub amount_cents: u32,
    pub country: u8,
    pub label: bool,
    pub scenario: u8,
    /// The attacker of a card-not-present scenario (0: the cardholder or an older scenario).
    pub actor: u32,
}

/// The world and its transactions, in time order.
#[derive(Debug)]
pub struct Generated {
    pub world: World,
    pub rows: Vec<Row>,
    /// Channel, entry mode, device, IP, e-mail and place of each row.
    pub cnp: Vec<cnp::Cnp>,
    pub seed: u64,
}

impl Generated {
    /// Transactions per fraud scenario (index 0 = legitimate).
    pub fn scenario_counts(&self) -> [usize; SCENARIOS] {
        let mut counts = [0; SCENARIOS];
        for r in &self.rows {
            counts[usize::from(r.scenario)] += 1;
        }
        counts
    }

    pub fn fraud_count(&self) -> usize {
        self.rows.iter().filter(|r| r.label).count()
    }
}

/// Scenario ids 0 (legitimate) to 11.
pub const SCENARIOS: usize = 12;
/// Shares of the fraud budget given to compromised-card bursts, bust-out merchants, skimmed
/// terminals, card takeovers, BIN attacks and card testing; the rest comes from the
/// large-amount-abroad rule.
const BURST_SHARE: f64 = 0.25;
const MERCHANT_SHARE: f64 = 0.15;
const SKIMMED_SHARE: f64 = 0.25;
const TAKEOVER_SHARE: f64 = 0.17;
const BIN_ATTACK_SHARE: f64 = 0.04;
const TESTING_SHARE: f64 = 0.04;
/// Card-not-present scenarios: a testing bot, account takeovers, fraud rings.
const CNP_SHARES: [f64; 3] = [0.04, 0.04, 0.05];
/// Share of all rows that are legitimate rushes at one shop.
const RUSH_SHARE: f64 = 0.01;
/// Rows of legitimate traffic generated per RNG stream.
const CHUNK: usize = 1 << 16;

pub fn generate(config: &GeneratorConfig) -> anyhow::Result<Generated> {
    config.check()?;
    let mut rng = Pcg64Mcg::seed_from_u64(config.seed);
    let mut world = World::new(config.cards, config.merchants, &mut rng);
    let budget = |share: f64| ((config.rows as f64 * config.fraud_rate * share) as usize).min(config.rows / 4);
    let (burst_rows, merchant_rows) = (budget(BURST_SHARE), budget(MERCHANT_SHARE));
    let compromised = scenarios::CompromisedMerchants::pick(&world, config, merchant_rows, &mut rng);
    let noise = LogNormal::new(0.0, 0.45)?;
    let (bin_rows, testing_rows) = (budget(BIN_ATTACK_SHARE), budget(TESTING_SHARE));
    let rush_rows = (config.rows as f64 * RUSH_SHARE) as usize;
    let cnp_rows = CNP_SHARES.map(budget);
    let legit_rows = (config.rows - burst_rows - merchant_rows - bin_rows - testing_rows - rush_rows)
        .saturating_sub(cnp_rows.iter().sum());
    // Legitimate traffic in fixed-size chunks, each with its own seeded RNG: parallel, yet the
    // same output whatever the number of threads (measured: generation is bound by memory
    // latency on card and merchant lookups, so the second core nearly halves it).
    let chunks: Vec<Vec<Row>> = (0..legit_rows.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let mut rng = Pcg64Mcg::seed_from_u64(config.seed ^ (c as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let n = CHUNK.min(legit_rows - c * CHUNK);
            let mut rows = Vec::with_capacity(n);
            while rows.len() < n {
                let mut row = legit_row(&world, config, &noise, &mut rng);
                // Regular customers of a compromised merchant shop elsewhere during its window;
                // where there is nowhere else in that country, another purchase is drawn.
                for _ in 0..8 {
                    if !compromised.covers(row.merchant, row.ts) {
                        break;
                    }
                    row.merchant = world.sample_merchant_in(row.country, false, &mut rng);
                }
                if !compromised.covers(row.merchant, row.ts) {
                    rows.push(row);
                }
            }
            rows
        })
        .collect();
    let mut rows = Vec::with_capacity(config.rows);
    for chunk in chunks {
        rows.extend(chunk);
    }
    compromised.inject(&world, config, merchant_rows, &mut rows, &mut rng);
    scenarios::compromised_cards(&world, config, burst_rows, &mut rows, &mut rng);
    attacks::flash_sales(&world, config, rush_rows, &mut rows, &mut rng);
    attacks::testing_bursts(&world, config, testing_rows, &mut rows, &mut rng);
    attacks::bin_attacks(&mut world, config, bin_rows, &mut rows, &mut rng);
    cnp::inject(&world, config, cnp_rows, &mut rows);
    // The key covers every field that can differ, so the order is fully defined and an
    // unstable sort (measured: a quarter of generation time saved over a stable one) is
    // still deterministic.
    rows.par_sort_unstable_by_key(|r| (r.ts, r.card, r.merchant, r.amount_cents, r.scenario, r.actor));
    // These turn legitimate rows into fraud in place, so the time order stays.
    scenarios::skimmed_terminals(&world, config, budget(SKIMMED_SHARE), &mut rows, &mut rng);
    scenarios::card_takeovers(&world, config, budget(TAKEOVER_SHARE), &mut rows, &mut rng);
    scenarios::label_noise(config.label_noise, &mut rows, &mut rng);
    let cnp = cnp::annotate(&world, config, &rows);
    Ok(Generated { world, rows, cnp, seed: config.seed })
}

/// An ordinary purchase; a large one abroad is labelled fraud with probability 0.6 (scenario 1).
fn legit_row(world: &World, config: &GeneratorConfig, noise: &LogNormal<f64>, rng: &mut Pcg64Mcg) -> Row {
    let card_idx = world.sample_card(rng);
    let card = &world.cards[card_idx as usize];
    let opens = ((card.opens * f64::from(config.days)) as u32).min(config.days - 1);
    let day = i64::from(rng.random_range(opens..config.days));
    let ts = config.start + day * 86_400 + world.sample_time_of_day(rng);
    let abroad = rng.random::<f64>() < card.abroad;
    let merchant = if abroad {
        world.sample_merchant_in(card.travel, false, rng)
    } else if rng.random::<f64>() < 0.75 {
        card.favourites[rng.random_range(0..card.favourites.len())]
    } else {
        world.sample_merchant_in(card.home, false, rng)
    };
    let m = &world.merchants[merchant as usize];
    let amount = card.level * CATEGORIES[usize::from(m.category)].1 * noise.sample(rng);
    let amount_cents = (amount * 100.0).clamp(1.0, 5_000_000.0) as u32;
    let large_abroad = m.country != card.home && amount_cents > 20_000;
    let label = large_abroad && rng.random::<f64>() < 0.6;
    Row {
        ts,
        card: card_idx,
        merchant,
        amount_cents,
        country: m.country,
        label,
        scenario: if label { 1 } else { 0 },
        actor: 0,
    }
}

#[cfg(test)]
mod tests;
