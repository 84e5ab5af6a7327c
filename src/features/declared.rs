//! Features of a team's declared fields ([`crate::fields`]), appended after the built-in
//! ones in schema order, through the same point-in-time pipeline (replay and live).
//!
//! Per kind:
//! - `number`, `flag`: the value as it is;
//! - `category`: first use by this card, and the value's label-delayed fraud share;
//! - `entity`: transactions and amounts over 1 h / 24 h, transactions over 7 d / 30 d,
//!   distinct cards over 1 h / 24 h, first use by this card, the card's distinct values over
//!   7 d / 30 d, the label-delayed fraud share and the frauds already known on it;
//! - `location`: distance from the card's usual place and the speed implied since its
//!   previous located transaction (impossible travel).
//!
//! A missing value gives missing (NaN) features, never 0: the GBDT learns a direction for
//! them, the scaler maps them to the mean for the unsupervised models, rules see `null`.
//!
//! Memory: an entity value holds the short windows of [`super::entity`] (dropped a day after
//! its last use) and [`risk::DAYS`] days of 16-bit counts (264 bytes, dropped once older than
//! that); a card holds
//! [`SEEN_SLOTS`] × 8 bytes per category or entity field and 24 bytes per location field.

use super::entity::EntityTable;
use super::risk::{self, DailyCounts, RiskTable, day_of};
use crate::domain::Transaction;
use crate::domain::fields::{FieldValue, Kind, Schema};
use std::hash::{Hash, Hasher};

/// Values of one category or entity field remembered per card (the most recent ones).
pub const SEEN_SLOTS: usize = 8;
const DAY: i64 = 86_400;
/// The card's usual place follows its last this-many located transactions (a running mean).
const PLACE_MEMORY: u32 = 20;

/// Features per field of each kind, by suffix (`{name}{suffix}`).
fn suffixes(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Number | Kind::Flag => &[""],
        Kind::Category => &["_new_for_card", "_risk_30d"],
        Kind::Entity => &[
            "_log_count_1h",
            "_log_sum_1h",
            "_log_count_24h",
            "_log_sum_24h",
            "_log_count_7d",
            "_log_count_30d",
            "_log_cards_1h",
            "_log_cards_24h",
            "_new_for_card",
            "_card_distinct_7d",
            "_card_distinct_30d",
            "_risk_30d",
            "_log_known_frauds",
        ],
        Kind::Location => &["_log_km_from_usual", "_log_kmh_since_prev"],
    }
}

/// The names of the features a schema adds, in vector order.
pub fn feature_names(schema: &Schema) -> Vec<String> {
    schema.fields().iter().flat_map(|f| suffixes(f.kind).iter().map(move |s| format!("{}{s}", f.name))).collect()
}

/// One value a card used, in a category or entity field.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Seen {
    /// Low bits of the value's hash, never 0 (0 = empty slot).
    value: u32,
    /// Its latest use (Unix seconds as `u32`).
    last: u32,
}

/// Where a card was, for one location field.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Place {
    lat: f32,
    lon: f32,
    /// Previous located transaction (Unix seconds as `u32`; 0 = none yet).
    at: u32,
    usual_lat: f32,
    usual_lon: f32,
    n: u32,
}

/// A card's memory of its declared fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CardFields {
    seen: Box<[Seen]>,
    places: Box<[Place]>,
}

impl CardFields {
    /// Checkpoint bytes ([`super::codec`]): the used value slots by position, then the places.
    pub(super) fn encode(fields: Option<&Self>, out: &mut Vec<u8>) {
        let empty = Self::default();
        let f = fields.unwrap_or(&empty);
        let used: Vec<(usize, &Seen)> = f.seen.iter().enumerate().filter(|(_, s)| s.value != 0).collect();
        out.extend_from_slice(&(used.len() as u16).to_le_bytes());
        out.extend_from_slice(&(f.seen.len() as u16).to_le_bytes());
        for (i, s) in used {
            out.extend_from_slice(&(i as u16).to_le_bytes());
            out.extend_from_slice(&s.value.to_le_bytes());
            out.extend_from_slice(&s.last.to_le_bytes());
        }
        out.push(f.places.len() as u8);
        for p in f.places.iter() {
            for x in [p.lat, p.lon, p.usual_lat, p.usual_lon] {
                out.extend_from_slice(&x.to_le_bytes());
            }
            out.extend_from_slice(&p.at.to_le_bytes());
            out.extend_from_slice(&p.n.to_le_bytes());
        }
    }

    pub(super) fn decode(r: &mut super::codec::Reader<'_>) -> anyhow::Result<Self> {
        let (used, len) = (usize::from(r.u16()?), usize::from(r.u16()?));
        let mut seen = vec![Seen::default(); len];
        for _ in 0..used {
            let i = usize::from(r.u16()?);
            let s = Seen { value: r.u32()?, last: r.u32()? };
            *seen.get_mut(i).ok_or_else(|| anyhow::anyhow!("a bad declared-field slot"))? = s;
        }
        let places = (0..r.u8()?)
            .map(|_| {
                let mut f = || r.array::<4>().map(f32::from_le_bytes);
                let (lat, lon, usual_lat, usual_lon) = (f()?, f()?, f()?, f()?);
                Ok(Place { lat, lon, usual_lat, usual_lon, at: r.u32()?, n: r.u32()? })
            })
            .collect::<anyhow::Result<Vec<Place>>>()?;
        Ok(Self { seen: seen.into(), places: places.into() })
    }
}

/// Per field, where its state lives.
#[derive(Debug, Clone, Copy)]
enum Plan {
    Value,
    Category { set: usize, risk: usize },
    Entity { set: usize, risk: usize, windows: usize },
    Location { place: usize },
}

/// The state of every declared field: per entity value, per category value, per card.
#[derive(Debug, Clone, Default)]
pub struct Declared {
    schema: Schema,
    plans: Vec<Plan>,
    width: usize,
    n_sets: usize,
    n_places: usize,
    /// Per category or entity field, its values' daily counts (16-bit: there can be millions).
    risks: Vec<RiskTable<u64, u16>>,
    windows: Vec<EntityTable<u64>>,
    cards: Vec<CardFields>,
    /// The day (Unix days) of the last sweep of the daily counts.
    swept: u32,
}

impl Declared {
    pub fn new(schema: Schema) -> Self {
        let (mut sets, mut risks, mut windows, mut places) = (0, 0, 0, 0);
        let plans = schema
            .fields()
            .iter()
            .map(|f| match f.kind {
                Kind::Number | Kind::Flag => Plan::Value,
                Kind::Category => {
                    (sets, risks) = (sets + 1, risks + 1);
                    Plan::Category { set: sets - 1, risk: risks - 1 }
                }
                Kind::Entity => {
                    (sets, risks, windows) = (sets + 1, risks + 1, windows + 1);
                    Plan::Entity { set: sets - 1, risk: risks - 1, windows: windows - 1 }
                }
                Kind::Location => {
                    places += 1;
                    Plan::Location { place: places - 1 }
                }
            })
            .collect();
        let width = schema.fields().iter().map(|f| suffixes(f.kind).len()).sum();
        Self {
            schema,
            plans,
            width,
            n_sets: sets,
            n_places: places,
            risks: vec![RiskTable::default(); risks],
            windows: vec![EntityTable::default(); windows],
            cards: Vec::new(),
            swept: 0,
        }
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// How many features the declared fields add.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Writes the declared features of `txn` (the card's state at `slot`, `new_card`: its first
    /// transaction anywhere) into `out` and records the transaction. `prior`: the overall fraud
    /// rate risk is smoothed towards.
    pub fn observe(
        &mut self,
        slot: usize,
        txn: &Transaction,
        new_card: bool,
        delay_days: u32,
        prior: f64,
        out: &mut [f32],
    ) {
        if self.width == 0 {
            return;
        }
        let (ts, today) = (txn.timestamp, day_of(txn.timestamp));
        self.sweep(today);
        if self.cards.len() <= slot {
            let empty = CardFields {
                seen: vec![Seen::default(); self.n_sets * SEEN_SLOTS].into(),
                places: vec![Place::default(); self.n_places].into(),
            };
            self.cards.resize(slot + 1, empty);
        }
        let card = &mut self.cards[slot];
        let mut o = 0;
        for (plan, value) in self.plans.iter().zip(txn.fields.iter().chain(std::iter::repeat(&FieldValue::Missing))) {
            let n = match *plan {
                Plan::Value => {
                    out[o] = match value {
                        FieldValue::Number(x) => *x as f32,
                        FieldValue::Flag(b) => f32::from(*b),
                        _ => f32::NAN,
                    };
                    1
                }
                Plan::Category { set, risk } => {
                    let Some(text) = value.text() else {
                        out[o..o + 2].fill(f32::NAN);
                        o += 2;
                        continue;
                    };
                    let h = hash(text);
                    let (new, _) = remember(&mut card.seen[set * SEEN_SLOTS..][..SEEN_SLOTS], h as u32, ts);
                    out[o] = f32::from(new);
                    let counts = self.risks[risk].get_or_insert(&h, |h| *h);
                    out[o + 1] = risk::read(counts, today, delay_days, prior).risk[2];
                    counts.add_txn(ts);
                    2
                }
                Plan::Entity { set, risk, windows } => {
                    let Some(text) = value.text() else {
                        out[o..o + 13].fill(f32::NAN);
                        o += 13;
                        continue;
                    };
                    let h = hash(text);
                    let (new, distinct) = remember(&mut card.seen[set * SEEN_SLOTS..][..SEEN_SLOTS], h as u32, ts);
                    let w = self.windows[windows].observe(&h, |h| *h, ts, txn.amount as f32, txn.card, new_card);
                    let counts = self.risks[risk].get_or_insert(&h, |h| *h);
                    let r = risk::read(counts, today, delay_days, prior);
                    let known = counts.sum(today.saturating_sub(risk::DAYS as u32 - 1), today).1;
                    counts.add_txn(ts);
                    let ln = |n: u32| (n as f32).ln_1p();
                    out[o..o + 13].copy_from_slice(&[
                        ln(w.count_1h),
                        w.sum_1h.max(0.0).ln_1p(),
                        ln(w.count_24h),
                        w.sum_24h.max(0.0).ln_1p(),
                        ln(r.counts[1] + 1),
                        ln(r.counts[2] + 1),
                        ln(w.cards_1h),
                        ln(w.cards_24h),
                        f32::from(new),
                        distinct[0] as f32,
                        distinct[1] as f32,
                        r.risk[2],
                        ln(known),
                    ]);
                    13
                }
                Plan::Location { place } => {
                    let p = &mut card.places[place];
                    match value {
                        FieldValue::Location { lat, lon } => {
                            let (km, kmh) = p.observe(*lat as f32, *lon as f32, ts);
                            out[o] = km.map_or(f32::NAN, f32::ln_1p);
                            out[o + 1] = kmh.map_or(f32::NAN, f32::ln_1p);
                        }
                        _ => out[o..o + 2].fill(f32::NAN),
                    }
                    2
                }
            };
            o += n;
        }
    }

    /// A fraud label became known for `txn` (`delta` = −1 withdraws one): the fraud shares of
    /// its category and entity values see it.
    pub fn add_fraud(&mut self, txn: &Transaction, delta: i32) {
        for (plan, value) in self.plans.iter().zip(txn.fields.iter()) {
            let (Plan::Category { risk, .. } | Plan::Entity { risk, .. }, Some(text)) = (plan, value.text()) else {
                continue;
            };
            self.risks[*risk].get_or_insert(&hash(text), |h| *h).add_fraud(txn.timestamp, delta);
        }
    }

    /// Once a day: drops the daily counts of values unused for longer than the counts reach.
    fn sweep(&mut self, today: u32) {
        if today <= self.swept {
            return;
        }
        self.swept = today;
        let oldest = today.saturating_sub(risk::DAYS as u32);
        for table in &mut self.risks {
            if table.values().iter().any(|c| c.last_day().is_some_and(|d| d < oldest)) {
                table.retain(|c| c.last_day().is_some_and(|d| d >= oldest));
            }
        }
    }

    /// The memory of the card at `slot`, if it has any.
    pub fn card(&self, slot: usize) -> Option<&CardFields> {
        self.cards.get(slot).filter(|c| !c.seen.is_empty() || !c.places.is_empty())
    }

    /// Takes a checkpoint's memory for the card at `slot`, when it was written for the same
    /// shape of schema; otherwise (another schema, none) the card's memory starts afresh, as
    /// its core state is replaced too.
    pub fn set_card(&mut self, slot: usize, fields: CardFields) {
        if self.width == 0 {
            return;
        }
        if fields.seen.len() != self.n_sets * SEEN_SLOTS || fields.places.len() != self.n_places {
            if let Some(c) = self.cards.get_mut(slot) {
                c.seen.fill(Seen::default());
                c.places.fill(Place::default());
            }
            return;
        }
        if self.cards.len() <= slot {
            let empty = CardFields {
                seen: vec![Seen::default(); self.n_sets * SEEN_SLOTS].into(),
                places: vec![Place::default(); self.n_places].into(),
            };
            self.cards.resize(slot + 1, empty);
        }
        self.cards[slot] = fields;
    }

    /// Values held per entity field: (windows, daily counts).
    pub fn held(&self) -> Vec<(usize, usize)> {
        self.plans
            .iter()
            .filter_map(|p| match *p {
                Plan::Entity { risk, windows, .. } => Some((self.windows[windows].len(), self.risks[risk].len())),
                _ => None,
            })
            .collect()
    }

    /// Bytes per card held for the declared fields.
    pub fn bytes_per_card(&self) -> usize {
        std::mem::size_of::<CardFields>()
            + self.n_sets * SEEN_SLOTS * std::mem::size_of::<Seen>()
            + self.n_places * std::mem::size_of::<Place>()
    }

    /// Bytes per entity value of the first entity field once its short windows are gone (its
    /// daily counts and their index).
    pub fn idle_bytes_per_value() -> usize {
        std::mem::size_of::<DailyCounts<u16>>() + std::mem::size_of::<u64>() + 4 + 1
    }
}

/// Records `value` among a card's remembered values at `ts`; returns whether it was new to the
/// card and the card's distinct values over 7 and 30 days (this one included).
fn remember(slots: &mut [Seen], value: u32, ts: i64) -> (bool, [u32; 2]) {
    let now = ts.clamp(1, i64::from(u32::MAX)) as u32;
    let new = match slots.iter_mut().find(|s| s.value == value) {
        Some(s) => {
            s.last = s.last.max(now);
            false
        }
        None => {
            let oldest = (0..slots.len()).min_by_key(|&k| slots[k].last).unwrap_or(0);
            slots[oldest] = Seen { value, last: now };
            true
        }
    };
    let within =
        |days: i64| slots.iter().filter(|s| s.value != 0 && i64::from(s.last) > ts - days * DAY).count() as u32;
    (new, [within(7), within(30)])
}

impl Place {
    /// Records a located transaction; returns the distance (km) from the card's usual place and
    /// the speed (km/h) since its previous located transaction, each `None` without history.
    fn observe(&mut self, lat: f32, lon: f32, ts: i64) -> (Option<f32>, Option<f32>) {
        let now = ts.clamp(1, i64::from(u32::MAX)) as u32;
        let from_usual = (self.n > 0).then(|| km(self.usual_lat, self.usual_lon, lat, lon));
        let speed = (self.at != 0).then(|| {
            let hours = (now.saturating_sub(self.at) as f32 / 3600.0).max(1.0 / 60.0);
            km(self.lat, self.lon, lat, lon) / hours
        });
        self.n = (self.n + 1).min(PLACE_MEMORY);
        let w = 1.0 / self.n as f32;
        self.usual_lat += (lat - self.usual_lat) * w;
        self.usual_lon += (lon - self.usual_lon) * w;
        (self.lat, self.lon, self.at) = (lat, lon, self.at.max(now));
        (from_usual, speed)
    }
}

/// Great-circle distance in km (haversine).
fn km(lat1: f32, lon1: f32, lat2: f32, lon2: f32) -> f32 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let (dp, dl) = ((lat2 - lat1).to_radians(), (lon2 - lon1).to_radians());
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0 * a.sqrt().min(1.0).asin()
}

/// A stable hash of a text value (SipHash with fixed keys: the same in every process); the
/// low 32 bits are never 0.
fn hash(text: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    text.hash(&mut h);
    h.finish() | 1
}

#[cfg(test)]
mod tests;
