//! Card-not-present traffic: the channel, entry mode, device, IP address, e-mail and location
//! of every row, and the fraud only those fields reveal (scenarios 9–11).
//!
//! Legitimate behaviour carries the mess real data has: households share a laptop and a home
//! IP, phones go out through carrier IPs thousands of customers share, some purchases come
//! from an office IP shared by a whole company, cardholders buy new phones, and travellers
//! shop from hotel networks abroad. The new scenarios are at amounts normal for the card and
//! at ordinary online shops, so card and merchant features alone barely see them:
//! 9. card testing by a bot: one device and one IP range try dozens of stolen cards within
//!    minutes, spread over many shops; the cards that pass are cashed out a day later;
//! 10. account takeover: a card's online purchases suddenly come from a new device, e-mail
//!     and place, for a few days;
//! 11. a fraud ring: a handful of devices and e-mails reused across dozens of stolen cards
//!     over weeks.
//!
//! Everything is drawn from RNGs of their own, so the core columns of the other scenarios are
//! the same as without these fields for the rows they share.

use super::world::{CATEGORIES, World};
use super::{GeneratorConfig, Row};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use rand_pcg::Pcg64Mcg;
use std::hash::{Hash, Hasher};

/// Approximate (latitude, longitude) of each country of [`COUNTRIES`], in order.
const CENTRES: [(f32, f32); 25] = [
    (39.8, -98.6),
    (52.4, -1.5),
    (51.2, 10.4),
    (46.6, 2.4),
    (40.4, -3.7),
    (42.8, 12.6),
    (45.4, -75.7),
    (52.1, 5.3),
    (35.7, 139.7),
    (-33.9, 151.2),
    (-15.8, -47.9),
    (19.4, -99.1),
    (21.1, 78.0),
    (59.3, 18.1),
    (52.2, 21.0),
    (53.3, -6.3),
    (46.8, 8.2),
    (50.8, 4.4),
    (39.9, 32.9),
    (38.7, -9.1),
    (1.35, 103.8),
    (25.2, 55.3),
    (-26.2, 28.0),
    (9.1, 7.4),
    (44.4, 26.1),
];

/// Channels and entry modes, as written.
pub const CHANNELS: [&str; 2] = ["pos", "ecom"];
pub const ENTRY_MODES: [&str; 5] = ["chip", "contactless", "magstripe", "ecom", "moto"];

/// The generated fields of one row. Ids of 0 are absent (a card-present purchase has no
/// device, IP or e-mail).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cnp {
    pub channel: u8,
    pub entry_mode: u8,
    pub device: u32,
    pub ip: u32,
    pub email: u32,
    pub lat: f32,
    pub lon: f32,
}

/// A cardholder's online identity.
#[derive(Debug, Clone, Copy)]
struct Holder {
    phone: u32,
    /// The phone after a change (from `new_phone_at`), if the holder buys one.
    new_phone: u32,
    new_phone_at: i64,
    /// Shared with the household.
    laptop: u32,
    home_ip: u32,
    office_ip: u32,
    email: u32,
    lat: f32,
    lon: f32,
}

/// Share of purchases made online, per category (the rest in store).
fn online_share(category: u8) -> f64 {
    match CATEGORIES[usize::from(category)].0 {
        "online_retail" => 0.95,
        "electronics" | "entertainment" => 0.5,
        "travel" | "hotel" => 0.6,
        "clothing" => 0.3,
        "money_transfer" | "gambling" => 0.7,
        _ => 0.03,
    }
}

/// An id drawn from the attacker namespace (never a holder's).
fn attacker_id(rng: &mut Pcg64Mcg) -> u32 {
    rng.random_range(0x4000_0000..0x7fff_ffff)
}

fn holders(world: &World, seed: u64, start: i64, days: u32) -> Vec<Holder> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 0xC0FF_EE00_D15E_A5E5);
    let n = world.cards.len() as u32;
    let offices = (n / 40).max(1);
    let mut out: Vec<Holder> = Vec::with_capacity(world.cards.len());
    for (i, card) in world.cards.iter().enumerate() {
        let (clat, clon) = CENTRES[usize::from(card.home)];
        let mut h = Holder {
            phone: 1 + i as u32 * 4,
            new_phone: 2 + i as u32 * 4,
            new_phone_at: if rng.random::<f64>() < 0.25 {
                start + rng.random_range(0..i64::from(days).max(1) * 86_400)
            } else {
                i64::MAX
            },
            laptop: 3 + i as u32 * 4,
            home_ip: 0x0A00_0000 + i as u32,
            // A quarter of holders sometimes buy from their company's network.
            office_ip: if rng.random::<f64>() < 0.25 { 0x2000_0000 + rng.random_range(0..offices) } else { 0 },
            email: 1 + i as u32,
            lat: clat + rng.random_range(-2.0..2.0),
            lon: clon + rng.random_range(-2.0..2.0),
        };
        // Households: a fifth of holders live with an earlier one (same country), sharing the
        // laptop, the home network and the place, sometimes the e-mail.
        if i > 0 && rng.random::<f64>() < 0.2 {
            let j = rng.random_range(i.saturating_sub(50)..i);
            if world.cards[j].home == card.home {
                let other = out[j];
                (h.laptop, h.home_ip, h.lat, h.lon) = (other.laptop, other.home_ip, other.lat, other.lon);
                if rng.random::<f64>() < 0.2 {
                    h.email = other.email;
                }
            }
        }
        out.push(h);
    }
    out
}

/// The fields of every row (in row order).
pub fn annotate(world: &World, config: &GeneratorConfig, rows: &[Row]) -> Vec<Cnp> {
    use rayon::prelude::*;
    let holders = holders(world, config.seed, config.start, config.days);
    let carriers = 2_000u32;
    rows.par_iter()
        .map(|r| {
            let mut hasher = std::hash::DefaultHasher::new();
            (config.seed, r.ts, r.card, r.merchant, r.amount_cents, r.scenario).hash(&mut hasher);
            let mut rng = Pcg64Mcg::seed_from_u64(hasher.finish());
            let m = &world.merchants[r.merchant as usize];
            let (mlat, mlon) = merchant_place(r.merchant, m.country);
            let online = r.actor != 0 || rng.random::<f64>() < online_share(m.category);
            if !online {
                let roll = rng.random::<f64>();
                let entry_mode = if roll < 0.55 {
                    0
                } else if roll < 0.98 {
                    1
                } else {
                    2
                };
                return Cnp { channel: 0, entry_mode, device: 0, ip: 0, email: 0, lat: mlat, lon: mlon };
            }
            let entry_mode = if rng.random::<f64>() < 0.02 { 4 } else { 3 };
            if r.actor != 0 {
                return attacker(r.actor, r.scenario, &mut rng, entry_mode);
            }
            let Some(h) = holders.get(r.card as usize) else {
                // Cards added by attacks (BIN attacks): a fresh device of nobody known.
                let (lat, lon) = CENTRES[usize::from(m.country)];
                return Cnp {
                    channel: 1,
                    entry_mode,
                    device: attacker_id(&mut rng),
                    ip: attacker_id(&mut rng),
                    email: attacker_id(&mut rng),
                    lat,
                    lon,
                };
            };
            // Fraudsters of the older scenarios online: half from their own device. (Not the
            // large purchases abroad, nor label noise: those are the cardholder's own.)
            if matches!(r.scenario, 2 | 3 | 6 | 7 | 8) && rng.random::<f64>() < 0.5 {
                let (lat, lon) = CENTRES[rng.random_range(0..CENTRES.len())];
                return Cnp {
                    channel: 1,
                    entry_mode,
                    device: attacker_id(&mut rng),
                    ip: attacker_id(&mut rng),
                    email: if rng.random::<f64>() < 0.5 { h.email } else { attacker_id(&mut rng) },
                    lat,
                    lon,
                };
            }
            let card = &world.cards[r.card as usize];
            let travelling = r.country != card.home && r.country == card.travel;
            let on_phone = rng.random::<f64>() < 0.6;
            let device = if !on_phone {
                h.laptop
            } else if r.ts >= h.new_phone_at {
                h.new_phone
            } else {
                h.phone
            };
            let (ip, lat, lon) = if travelling {
                let (lat, lon) = CENTRES[usize::from(card.travel)];
                // Hotel and café networks of the trip's country, shared by many travellers.
                (0x3000_0000 + u32::from(card.travel) * 500 + rng.random_range(0..500), lat, lon)
            } else if on_phone && rng.random::<f64>() < 0.5 {
                // Carrier-grade NAT: thousands of phones share a few addresses.
                (0x6400_0000 + u32::from(card.home) * carriers + rng.random_range(0..carriers / 20), h.lat, h.lon)
            } else if h.office_ip != 0 && rng.random::<f64>() < 0.3 {
                (h.office_ip, h.lat, h.lon)
            } else {
                (h.home_ip, h.lat, h.lon)
            };
            let jitter = |x: f32, rng: &mut Pcg64Mcg| x + rng.random_range(-0.05..0.05);
            Cnp {
                channel: 1,
                entry_mode,
                device,
                ip,
                email: h.email,
                lat: jitter(lat, &mut rng),
                lon: jitter(lon, &mut rng),
            }
        })
        .collect()
}

/// The device, IP, e-mail and place an attacker `actor` uses.
fn attacker(actor: u32, scenario: u8, rng: &mut Pcg64Mcg, entry_mode: u8) -> Cnp {
    let mut base = std::hash::DefaultHasher::new();
    actor.hash(&mut base);
    let a = (base.finish() as u32) & 0x3fff_ffff | 0x4000_0000;
    let (lat, lon) = CENTRES[(a as usize) % CENTRES.len()];
    let (device, ip, email) = match scenario {
        // A bot: one device, one /24 of addresses, a throwaway e-mail per try.
        9 => (a, (a << 8) | rng.random_range(0..256), attacker_id(rng)),
        // A takeover: the fraudster's own device, network and e-mail.
        10 => (a, a ^ 0x5555, a ^ 0xAAAA),
        // A ring: a handful of devices and e-mails, a few networks.
        _ => (a + rng.random_range(0..5), a.wrapping_mul(3) + rng.random_range(0..3), a + 100 + rng.random_range(0..4)),
    };
    let jitter = rng.random_range(-0.5..0.5);
    Cnp { channel: 1, entry_mode, device, ip, email, lat: lat + jitter, lon: lon + jitter }
}

/// Where a merchant is: its country's centre, moved by a fixed amount per merchant.
fn merchant_place(merchant: u32, country: u8) -> (f32, f32) {
    let (lat, lon) = CENTRES[usize::from(country)];
    let h = merchant.wrapping_mul(2_654_435_761);
    let dx = (h & 0xffff) as f32 / 65_535.0 * 4.0 - 2.0;
    let dy = (h >> 16) as f32 / 65_535.0 * 4.0 - 2.0;
    (lat + dy, lon + dx)
}

/// Online shops, by the share of their sales made online.
fn online_merchants(world: &World) -> Vec<u32> {
    (0..world.merchants.len() as u32).filter(|&m| online_share(world.merchants[m as usize].category) >= 0.5).collect()
}

fn normal_amount(level: f64, category: u8, rng: &mut Pcg64Mcg) -> u32 {
    let noise = LogNormal::new(0.0, 0.45).map_or(1.0, |d| d.sample(rng));
    (level * CATEGORIES[usize::from(category)].1 * noise * 100.0).clamp(100.0, 5_000_000.0) as u32
}

fn fraud_row(world: &World, card: u32, merchant: u32, ts: i64, actor: u32, scenario: u8, rng: &mut Pcg64Mcg) -> Row {
    let m = &world.merchants[merchant as usize];
    let amount_cents = normal_amount(world.cards[card as usize].level, m.category, rng);
    Row { ts, card, merchant, amount_cents, country: m.country, label: true, scenario, actor }
}

/// Scenarios 9–11, until about `budget` rows each.
pub fn inject(world: &World, config: &GeneratorConfig, budgets: [usize; 3], rows: &mut Vec<Row>) {
    let mut rng = Pcg64Mcg::seed_from_u64(config.seed ^ 0x0BAD_CAFE_F00D_0001);
    let shops = online_merchants(world);
    if shops.is_empty() || world.cards.is_empty() {
        return;
    }
    let period = i64::from(config.days) * 86_400;
    let end = config.start + period - 1;
    let shop = |rng: &mut Pcg64Mcg| shops[rng.random_range(0..shops.len())];
    let card = |rng: &mut Pcg64Mcg| rng.random_range(0..world.cards.len()) as u32;
    // One of the card's usual shops (ordered online), so its card and merchant features look
    // like the cardholder's.
    let usual = |c: u32, rng: &mut Pcg64Mcg| {
        let favourites = &world.cards[c as usize].favourites;
        if favourites.is_empty() {
            shops[rng.random_range(0..shops.len())]
        } else {
            favourites[rng.random_range(0..favourites.len())]
        }
    };
    let mut actor = 1u32;
    // 9: a bot tries 20–80 cards within 10–40 minutes; 40% pass and are cashed out a day later.
    let mut left = budgets[0];
    while left > 0 {
        actor += 1;
        let from = config.start + rng.random_range(0..(period - 3 * 86_400).max(1));
        let span = rng.random_range(600..2_400);
        for _ in 0..rng.random_range(20..=80) {
            if left == 0 {
                break;
            }
            let c = card(&mut rng);
            rows.push(fraud_row(world, c, shop(&mut rng), from + rng.random_range(0..span), actor, 9, &mut rng));
            left -= 1;
            if left > 0 && rng.random::<f64>() < 0.4 {
                let later = (from + rng.random_range(20 * 3600..30 * 3600)).min(end);
                rows.push(fraud_row(world, c, shop(&mut rng), later, actor, 9, &mut rng));
                left -= 1;
            }
        }
    }
    // 10: a takeover of one card: 3–8 online purchases at its usual shops over one to four days.
    let mut left = budgets[1];
    while left > 0 {
        actor += 1;
        let c = card(&mut rng);
        let from = config.start + rng.random_range(period / 10..period.max(period / 10 + 1));
        for _ in 0..rng.random_range(3..=8) {
            if left == 0 {
                break;
            }
            let ts = (from + rng.random_range(0..4 * 86_400)).min(end);
            rows.push(fraud_row(world, c, usual(c, &mut rng), ts, actor, 10, &mut rng));
            left -= 1;
        }
    }
    // 11: a ring: 20–60 stolen cards over two to six weeks, each used one to three times, half
    // of the time at one of the card's usual shops.
    let mut left = budgets[2];
    while left > 0 {
        actor += 1;
        let weeks = rng.random_range(2..=6) * 7 * 86_400;
        let from = config.start + rng.random_range(0..(period - weeks).max(1));
        for _ in 0..rng.random_range(20..=60) {
            let c = card(&mut rng);
            for _ in 0..rng.random_range(1..=3) {
                if left == 0 {
                    break;
                }
                let ts = (from + rng.random_range(0..weeks)).min(end);
                let m = if rng.random::<f64>() < 0.5 { usual(c, &mut rng) } else { shop(&mut rng) };
                rows.push(fraud_row(world, c, m, ts, actor, 11, &mut rng));
                left -= 1;
            }
        }
    }
}

/// Writes a generated id as text: devices `d-…`, IPs dotted, e-mails `u…@mail.example`.
pub fn push_device(line: &mut Vec<u8>, id: u32) {
    if id != 0 {
        line.extend_from_slice(format!("d-{id:08x}").as_bytes());
    }
}

pub fn push_ip(line: &mut Vec<u8>, ip: u32) {
    if ip != 0 {
        let [a, b, c, d] = ip.to_be_bytes();
        line.extend_from_slice(format!("{a}.{b}.{c}.{d}").as_bytes());
    }
}

pub fn push_email(line: &mut Vec<u8>, id: u32) {
    if id != 0 {
        line.extend_from_slice(format!("u{id:x}@mail.example").as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centres_cover_every_country() {
        assert_eq!(CENTRES.len(), super::super::COUNTRIES.len());
    }
}
