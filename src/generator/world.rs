//! The synthetic world: countries, merchant categories, merchants and cards with spending
//! profiles. Everything is drawn from one seeded RNG, so a seed fixes the world.

use crate::domain::luhn_check_digit;
use rand::{Rng, seq::IndexedRandom};
use rand_distr::{Distribution, LogNormal};
use rand_pcg::Pcg64Mcg;

/// Countries with their share of cardholders and merchants (roughly card-volume shaped).
pub const COUNTRIES: [(&str, f64); 25] = [
    ("US", 30.0),
    ("GB", 10.0),
    ("DE", 9.0),
    ("FR", 8.0),
    ("ES", 5.0),
    ("IT", 5.0),
    ("CA", 5.0),
    ("NL", 4.0),
    ("JP", 4.0),
    ("AU", 3.0),
    ("BR", 3.0),
    ("MX", 3.0),
    ("IN", 3.0),
    ("SE", 2.0),
    ("PL", 2.0),
    ("IE", 1.5),
    ("CH", 1.5),
    ("BE", 1.5),
    ("TR", 1.0),
    ("PT", 1.0),
    ("SG", 1.0),
    ("AE", 1.0),
    ("ZA", 1.0),
    ("NG", 0.5),
    ("RO", 0.5),
];

/// Merchant categories: (name, typical amount × the card's level, share of merchants,
/// favoured by fraudsters cashing out a compromised card).
pub const CATEGORIES: [(&str, f64, f64, bool); 13] = [
    ("grocery", 0.6, 20.0, false),
    ("restaurant", 0.8, 15.0, false),
    ("fuel", 0.9, 10.0, false),
    ("pharmacy", 0.5, 6.0, false),
    ("clothing", 1.5, 10.0, false),
    ("electronics", 3.0, 6.0, true),
    ("travel", 4.0, 4.0, false),
    ("online_retail", 1.2, 12.0, true),
    ("entertainment", 1.0, 7.0, false),
    ("hotel", 3.5, 4.0, false),
    ("jewelry", 4.5, 2.0, true),
    ("money_transfer", 2.5, 2.0, true),
    ("gambling", 2.0, 2.0, true),
];

/// Relative transaction volume per hour of day (UTC): quiet nights, lunch and evening peaks.
pub const HOURLY_RHYTHM: [f64; 24] = [
    0.3, 0.2, 0.15, 0.1, 0.1, 0.2, 0.5, 1.0, 1.5, 1.8, 2.0, 2.2, 2.6, 2.4, 2.1, 2.0, 2.1, 2.4, 2.7, 2.6, 2.2, 1.6, 1.0,
    0.6,
];

const ISSUER_PREFIXES: [&str; 6] = ["4539", "4556", "4916", "5425", "5312", "5168"];
/// Share of cards first used during the period rather than from its start.
const NEW_CARD_SHARE: f64 = 0.15;
/// Issuer ranges (BINs) cards are drawn from.
const ISSUER_RANGES: usize = 48;

#[derive(Debug, Clone)]
pub struct Merchant {
    pub id: String,
    pub country: u8,
    pub category: u8,
}

#[derive(Debug, Clone)]
pub struct Card {
    pub pan: String,
    pub home: u8,
    /// Where this cardholder travels when abroad.
    pub travel: u8,
    /// Median purchase amount.
    pub level: f64,
    /// Relative transaction rate (expected transactions per day).
    pub rate: f64,
    /// Chance that a given purchase happens abroad.
    pub abroad: f64,
    /// Regular merchants in the home country.
    pub favourites: Vec<u32>,
    /// When the card starts being used, as a share of the period: 0 for most cards, later for
    /// new accounts and reissued cards, so a card seen for the first time is common and
    /// legitimate, not a sign of fraud by itself.
    pub opens: f64,
}

#[derive(Debug)]
pub struct World {
    pub cards: Vec<Card>,
    /// Six-digit issuer ranges; cards are spread over them with Zipf weights (a few big issuers
    /// whose ranges see many cards an hour, and a long tail).
    pub bins: Vec<String>,
    pub merchants: Vec<Merchant>,
    /// Merchant indices per country.
    pub by_country: Vec<Vec<u32>>,
    card_cdf: Vec<f64>,
    hour_cdf: Vec<f64>,
}

/// Cumulative weights, for sampling by binary search.
pub fn cdf(weights: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut acc = 0.0;
    weights
        .into_iter()
        .map(|w| {
            acc += w;
            acc
        })
        .collect()
}

pub fn sample_cdf(cdf: &[f64], rng: &mut Pcg64Mcg) -> usize {
    let total = cdf.last().copied().unwrap_or(0.0);
    let x = rng.random::<f64>() * total;
    cdf.partition_point(|&c| c <= x).min(cdf.len().saturating_sub(1))
}

impl World {
    pub fn new(n_cards: usize, n_merchants: usize, rng: &mut Pcg64Mcg) -> Self {
        let country_cdf = cdf(COUNTRIES.iter().map(|c| c.1));
        let category_cdf = cdf(CATEGORIES.iter().map(|c| c.2));
        let merchants: Vec<Merchant> = (0..n_merchants)
            .map(|i| Merchant {
                id: format!("M{i:06}"),
                // The first merchants cover every country, so each has somewhere to shop.
                country: if i < COUNTRIES.len() { i } else { sample_cdf(&country_cdf, rng) } as u8,
                category: sample_cdf(&category_cdf, rng) as u8,
            })
            .collect();
        let mut by_country = vec![Vec::new(); COUNTRIES.len()];
        for (i, m) in merchants.iter().enumerate() {
            by_country[usize::from(m.country)].push(i as u32);
        }
        let level = LogNormal::new(45f64.ln(), 0.6).unwrap_or_else(|_| unreachable!());
        let rate = LogNormal::new(1.0f64.ln(), 0.7).unwrap_or_else(|_| unreachable!());
        let bins: Vec<String> = (0..ISSUER_RANGES)
            .map(|_| {
                let prefix = ISSUER_PREFIXES.choose(rng).copied().unwrap_or("4539");
                format!("{prefix}{:02}", rng.random_range(0..100u8))
            })
            .collect();
        let bin_cdf = cdf((0..ISSUER_RANGES).map(|k| 1.0 / (k as f64 + 1.0)));
        let cards: Vec<Card> = (0..n_cards)
            .map(|_| {
                let home = sample_cdf(&country_cdf, rng) as u8;
                let mut travel = sample_cdf(&country_cdf, rng) as u8;
                if travel == home {
                    travel =
                        ((usize::from(home) + 1 + rng.random_range(0..COUNTRIES.len() - 1)) % COUNTRIES.len()) as u8;
                }
                let local = &by_country[usize::from(home)];
                let favourites = (0..12).filter_map(|_| local.choose(rng).copied()).collect();
                Card {
                    pan: pan_in(&bins[sample_cdf(&bin_cdf, rng)], rng.random_range(0..1_000_000_000)),
                    home,
                    travel,
                    level: level.sample(rng).clamp(3.0, 2_000.0),
                    rate: rate.sample(rng).clamp(0.05, 20.0),
                    abroad: rng.random_range(0.005..0.05),
                    favourites,
                    opens: if rng.random::<f64>() < NEW_CARD_SHARE { rng.random::<f64>() } else { 0.0 },
                }
            })
            .collect();
        let card_cdf = cdf(cards.iter().map(|c| c.rate));
        Self { cards, bins, merchants, by_country, card_cdf, hour_cdf: cdf(HOURLY_RHYTHM) }
    }

    /// A card drawn in proportion to its transaction rate.
    pub fn sample_card(&self, rng: &mut Pcg64Mcg) -> u32 {
        sample_cdf(&self.card_cdf, rng) as u32
    }

    /// Seconds into a day, following the daily rhythm.
    pub fn sample_time_of_day(&self, rng: &mut Pcg64Mcg) -> i64 {
        sample_cdf(&self.hour_cdf, rng) as i64 * 3600 + rng.random_range(0..3600)
    }

    /// A merchant in `country`, preferring fraud-favoured categories if `risky`.
    pub fn sample_merchant_in(&self, country: u8, risky: bool, rng: &mut Pcg64Mcg) -> u32 {
        let pool = &self.by_country[usize::from(country)];
        let mut pick = pool.choose(rng).copied().unwrap_or(0);
        for _ in 0..8 {
            if !risky || CATEGORIES[usize::from(self.merchants[pick as usize].category)].3 {
                break;
            }
            pick = pool.choose(rng).copied().unwrap_or(pick);
        }
        pick
    }
}

/// The 16-digit, Luhn-valid card number with account number `account` (< 10⁹) in the
/// six-digit range `bin`.
pub fn pan_in(bin: &str, account: u32) -> String {
    let mut digits: Vec<u8> = format!("{bin}{account:09}").into_bytes();
    digits.truncate(15);
    digits.push(luhn_check_digit(&digits));
    String::from_utf8(digits).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::luhn_valid;
    use rand::SeedableRng;

    #[test]
    fn world_is_well_formed() {
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        let w = World::new(200, 300, &mut rng);
        assert!(w.cards.iter().all(|c| c.pan.len() == 16 && luhn_valid(&c.pan)));
        assert!(w.cards.iter().all(|c| c.travel != c.home && !c.favourites.is_empty()));
        assert!(w.by_country.iter().all(|m| !m.is_empty()));
        assert!(w.cards.iter().all(|c| c.favourites.iter().all(|&m| w.merchants[m as usize].country == c.home)));
    }
}
