//! Attacks on many cards at once (scenarios 7 and 8), and the legitimate rushes that look like
//! them. Every transaction here is at an amount normal for its card and shop: only the shape of
//! the hour gives an attack away — many different cards at one small shop, or many cards never
//! seen before from one issuer range.

use super::world::{CATEGORIES, Card, World, pan_in};
use super::{GeneratorConfig, Row};
use rand::Rng;
use rand_distr::{Distribution, LogNormal};
use rand_pcg::Pcg64Mcg;

/// Categories where card-not-present attacks cash in or test cards.
const ONLINE: [&str; 3] = ["online_retail", "entertainment", "electronics"];

/// A time of attack: a random moment of the period, leaving `span` seconds before its end.
fn start(config: &GeneratorConfig, span: i64, rng: &mut Pcg64Mcg) -> i64 {
    let period = i64::from(config.days) * 86_400;
    config.start + rng.random_range(0..(period - span).max(1))
}

/// An amount normal for a purchase of `level` at a merchant of `category`, in cents.
fn normal_amount(level: f64, category: u8, rng: &mut Pcg64Mcg) -> u32 {
    let noise = LogNormal::new(0.0, 0.45).map_or(1.0, |d| d.sample(rng));
    (level * CATEGORIES[usize::from(category)].1 * noise * 100.0).clamp(100.0, 5_000_000.0) as u32
}

/// A merchant of an online category (or any, where there is none), the quietest of a few drawn.
fn small_online_merchant(world: &World, traffic: &[u32], rng: &mut Pcg64Mcg) -> u32 {
    let online = |m: u32| ONLINE.contains(&CATEGORIES[usize::from(world.merchants[m as usize].category)].0);
    let mut best: Option<u32> = None;
    for _ in 0..64 {
        let m = rng.random_range(0..world.merchants.len()) as u32;
        if online(m) && best.is_none_or(|b| traffic[m as usize] < traffic[b as usize]) {
            best = Some(m);
        }
    }
    best.unwrap_or_else(|| rng.random_range(0..world.merchants.len()) as u32)
}

/// A card drawn by how much it shops, preferring one whose home is `country` (a shop's rush
/// brings its own customers).
fn local_card(world: &World, country: u8, rng: &mut Pcg64Mcg) -> u32 {
    let mut card = world.sample_card(rng);
    for _ in 0..32 {
        if world.cards[card as usize].home == country {
            break;
        }
        card = world.sample_card(rng);
    }
    card
}

/// Legitimate rows per merchant so far.
fn traffic(world: &World, rows: &[Row]) -> Vec<u32> {
    let mut t = vec![0u32; world.merchants.len()];
    for r in rows {
        t[r.merchant as usize] += 1;
    }
    t
}

/// Scenario 7: BIN attacks. Fraudsters enumerate card numbers of one issuer range: 20–120
/// sequential numbers, never used before, each tried once or twice within one to four hours at
/// one or two online shops, at amounts normal there. Until about `budget` rows are fraud.
pub fn bin_attacks(
    world: &mut World,
    config: &GeneratorConfig,
    budget: usize,
    rows: &mut Vec<Row>,
    rng: &mut Pcg64Mcg,
) {
    let traffic = traffic(world, rows);
    let level = LogNormal::new(45f64.ln(), 0.6).ok();
    let mut left = budget;
    while left > 0 {
        let bin = world.bins[rng.random_range(0..world.bins.len())].clone();
        let shops = [small_online_merchant(world, &traffic, rng), small_online_merchant(world, &traffic, rng)];
        let span = rng.random_range(3_600..=4 * 3_600);
        let from = start(config, span, rng);
        let mut account = rng.random_range(0..900_000_000u32);
        for _ in 0..rng.random_range(20..=120usize) {
            if left == 0 {
                break;
            }
            account += rng.random_range(1..=3);
            let card = world.cards.len() as u32;
            let home = world.merchants[shops[0] as usize].country;
            world.cards.push(Card {
                pan: pan_in(&bin, account),
                home,
                travel: home,
                level: level.map_or(45.0, |d| d.sample(rng)).clamp(3.0, 2_000.0),
                rate: 0.0,
                abroad: 0.0,
                favourites: Vec::new(),
                opens: 0.0,
            });
            let mut ts = from + rng.random_range(0..span);
            for _ in 0..if rng.random::<f64>() < 0.2 { 2 } else { 1 } {
                if left == 0 {
                    break;
                }
                let shop = shops[rng.random_range(0..2)];
                let m = &world.merchants[shop as usize];
                let amount_cents = normal_amount(world.cards[card as usize].level, m.category, rng);
                rows.push(Row {
                    ts,
                    card,
                    merchant: shop,
                    amount_cents,
                    country: m.country,
                    label: true,
                    scenario: 7,
                    actor: 0,
                });
                left -= 1;
                ts += rng.random_range(30..600);
            }
        }
    }
}

/// Scenario 8: card testing at one small shop. Within 30 minutes to two hours, 15–60 stolen
/// cards (customers' real cards, most never at this shop) each buy once or twice, at amounts
/// normal for the card there. Until about `budget` rows are fraud.
pub fn testing_bursts(world: &World, config: &GeneratorConfig, budget: usize, rows: &mut Vec<Row>, rng: &mut Pcg64Mcg) {
    burst(world, config, budget, 15..=60, rows, rng, true);
}

/// Legitimate rushes: a shop's sale or a ticket release brings 20–150 of its country's
/// cardholders within an hour or two (each at its usual level), so that many cards at one
/// shop in an hour is not fraud by itself. About `rows_wanted` rows.
pub fn flash_sales(
    world: &World,
    config: &GeneratorConfig,
    rows_wanted: usize,
    rows: &mut Vec<Row>,
    rng: &mut Pcg64Mcg,
) {
    burst(world, config, rows_wanted, 20..=150, rows, rng, false);
}

/// Many cards at one shop within a short window: fraud (random cards, the quietest online
/// shops) or a legitimate rush (local cards weighted by how much they shop, any shop).
fn burst(
    world: &World,
    config: &GeneratorConfig,
    budget: usize,
    cards: std::ops::RangeInclusive<usize>,
    rows: &mut Vec<Row>,
    rng: &mut Pcg64Mcg,
    fraud: bool,
) {
    let traffic = traffic(world, rows);
    let mut left = budget;
    while left > 0 {
        let shop = if fraud {
            small_online_merchant(world, &traffic, rng)
        } else {
            rng.random_range(0..world.merchants.len()) as u32
        };
        let m = &world.merchants[shop as usize];
        let span = rng.random_range(1_800..=2 * 3_600);
        let from = start(config, span, rng);
        for _ in 0..rng.random_range(cards.clone()) {
            if left == 0 {
                break;
            }
            let card =
                if fraud { rng.random_range(0..world.cards.len()) as u32 } else { local_card(world, m.country, rng) };
            let level = world.cards[card as usize].level;
            let mut ts = from + rng.random_range(0..span);
            for _ in 0..if rng.random::<f64>() < 0.25 { 2 } else { 1 } {
                if left == 0 {
                    break;
                }
                let amount_cents = normal_amount(level, m.category, rng);
                let scenario = if fraud { 8 } else { 0 };
                rows.push(Row {
                    ts,
                    card,
                    merchant: shop,
                    amount_cents,
                    country: m.country,
                    label: fraud,
                    scenario,
                    actor: 0,
                });
                left -= 1;
                ts += rng.random_range(60..900);
            }
        }
    }
}

/// How many of `rows` land on cards added after the world was made (the BIN attacks' cards).
#[cfg(test)]
pub fn on_new_cards(world_cards: usize, rows: &[Row]) -> usize {
    rows.iter().filter(|r| r.card as usize >= world_cards).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_bin_attack_uses_new_sequential_numbers_of_one_range() {
        let mut rng = Pcg64Mcg::seed_from_u64(3);
        let mut world = World::new(200, 100, &mut rng);
        let config = GeneratorConfig {
            rows: 1000,
            cards: 200,
            merchants: 100,
            days: 10,
            start: 1_735_689_600,
            seed: 3,
            fraud_rate: 0.04,
            label_noise: 0.0,
        };
        let mut rows = Vec::new();
        // At least 20 cards an attack: a budget of 20 rows is one attack.
        bin_attacks(&mut world, &config, 20, &mut rows, &mut rng);
        assert!(rows.len() >= 20 && rows.iter().all(|r| r.label && r.scenario == 7));
        assert_eq!(on_new_cards(200, &rows), rows.len());
        let pans: Vec<&str> = rows.iter().map(|r| world.cards[r.card as usize].pan.as_str()).collect();
        assert!(pans.iter().all(|p| p[..6] == pans[0][..6] && crate::domain::luhn_valid(p)));
        let (first, last) = (rows.iter().map(|r| r.ts).min().unwrap(), rows.iter().map(|r| r.ts).max().unwrap());
        assert!(last - first < 5 * 3600, "one attack spans hours: {}", last - first);
    }
}
