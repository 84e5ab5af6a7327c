//! Card states as bytes, for checkpoints (`aegis consume` hands a partition's cards over
//! through the store when the partition moves to another worker).
//!
//! Format (little-endian), version [`VERSION`]: `b"AEGC"`, the version byte, the card count
//! (u32), then per card its token (u128), its state and (version 2) its declared fields' memory
//! ([`super::declared::CardFields`]: the values it used and its places; empty without a schema). In a state, each ring and the
//! country and merchant slots start with a bitmask of the slots in use, and only those follow:
//! most cards use a few buckets of each ring, so a typical state takes ~100 bytes instead of
//! ~650 (BENCHMARKS.md, "PostgreSQL"). Written by hand rather than through serde: serde's
//! array support stops at fixed lengths and does not reach the rings' const-generic sizes, and
//! the bitmasks are what makes the format small.

use super::card_state::{COUNTRY_SLOTS, CardState, CountrySlot, MERCHANT_SLOTS};
use super::declared::CardFields;
use super::ring::Ring;
use crate::domain::{CardToken, Country};
use anyhow::{Context, bail, ensure};

const MAGIC: &[u8; 4] = b"AEGC";
/// Bumped whenever the layout of a state changes; older checkpoints are then refused (and the
/// cards rebuilt from what the new owner sees). Version 1 (no declared fields) is still read.
pub const VERSION: u8 = 2;

/// One card of a checkpoint.
pub type Card<'a> = (CardToken, &'a CardState, Option<&'a CardFields>);

/// Writes `cards` with their states.
pub fn encode<'a>(cards: impl ExactSizeIterator<Item = Card<'a>>, out: &mut Vec<u8>) {
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&(cards.len() as u32).to_le_bytes());
    for (token, state, fields) in cards {
        out.extend_from_slice(&token.as_u128().to_le_bytes());
        state.encode(out);
        CardFields::encode(fields, out);
    }
}

/// Reads what [`encode`] wrote (or version 1, without declared fields).
pub fn decode(bytes: &[u8], restored_at: i64) -> anyhow::Result<Vec<(CardToken, CardState, CardFields)>> {
    let mut r = Reader(bytes);
    ensure!(r.take(4)? == MAGIC, "not a card-state checkpoint");
    let version = r.u8()?;
    ensure!(
        version == VERSION || version == 1,
        "card-state checkpoint version {version}, this aegis reads 1 and {VERSION}"
    );
    let n = r.u32()? as usize;
    let mut cards = Vec::with_capacity(n.min(bytes.len() / 16));
    for _ in 0..n {
        let token = CardToken::from_u128(r.u128()?);
        let mut state = CardState::decode(&mut r)?;
        state.restored_at = restored_at;
        let fields = if version >= 2 { CardFields::decode(&mut r)? } else { CardFields::default() };
        cards.push((token, state, fields));
    }
    ensure!(r.0.is_empty(), "{} bytes after the last card", r.0.len());
    Ok(cards)
}

impl CardState {
    fn encode(&self, out: &mut Vec<u8>) {
        self.five_minutes.encode(out);
        self.hours.encode(out);
        self.days.encode(out);
        out.extend_from_slice(&self.last_ts.unwrap_or(i64::MIN).to_le_bytes());
        let used = mask(self.countries.iter().map(|s| s.count > 0));
        out.push(used as u8);
        for s in self.countries.iter().filter(|s| s.count > 0) {
            out.extend_from_slice(s.country.as_str().as_bytes());
            out.extend_from_slice(&s.count.to_le_bytes());
            out.extend_from_slice(&s.last_seen.to_le_bytes());
        }
        let used = mask(self.merchants.iter().map(|&m| m != 0));
        out.extend_from_slice(&used.to_le_bytes());
        for m in self.merchants.iter().filter(|&&m| m != 0) {
            out.extend_from_slice(&m.to_le_bytes());
        }
        out.push(self.next_merchant);
        out.extend_from_slice(&self.fraud_known_at.to_le_bytes());
        out.extend_from_slice(&self.applied.to_le_bytes());
    }

    fn decode(r: &mut Reader<'_>) -> anyhow::Result<Self> {
        let mut s = Self {
            five_minutes: Ring::decode(r)?,
            hours: Ring::decode(r)?,
            days: Ring::decode(r)?,
            last_ts: Some(r.i64()?).filter(|&t| t != i64::MIN),
            ..Self::default()
        };
        let used = u32::from(r.u8()?);
        for (i, slot) in s.countries.iter_mut().enumerate().take(COUNTRY_SLOTS) {
            if used & (1 << i) != 0 {
                let code = r.take(2)?;
                let country = std::str::from_utf8(code).ok().and_then(Country::parse).context("a bad country code")?;
                *slot = CountrySlot { country, count: r.u32()?, last_seen: r.i64()? };
            }
        }
        let used = r.u32()?;
        for (i, m) in s.merchants.iter_mut().enumerate().take(MERCHANT_SLOTS) {
            if used & (1 << i) != 0 {
                *m = r.u32()?;
            }
        }
        s.next_merchant = r.u8()?;
        ensure!(usize::from(s.next_merchant) < MERCHANT_SLOTS, "a bad merchant slot");
        s.fraud_known_at = r.i64()?;
        s.applied = r.i64()?;
        s.held = s.applied;
        Ok(s)
    }
}

impl<const N: usize, const WIDTH: i64> Ring<N, WIDTH> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.head.map_or(u32::MAX, |h| h).to_le_bytes());
        let used = mask(self.count.iter().map(|&c| c > 0));
        out.extend_from_slice(&used.to_le_bytes());
        for (c, s) in self.count.iter().zip(&self.sum).filter(|(c, _)| **c > 0) {
            out.extend_from_slice(&c.to_le_bytes());
            out.extend_from_slice(&s.to_le_bytes());
        }
    }

    fn decode(r: &mut Reader<'_>) -> anyhow::Result<Self> {
        let mut ring = Self { head: Some(r.u32()?).filter(|&h| h != u32::MAX), ..Self::default() };
        let used = r.u32()?;
        for i in 0..N {
            if used & (1 << i) != 0 {
                ring.count[i] = r.u16()?;
                ring.sum[i] = f32::from_le_bytes(r.array()?);
            }
        }
        Ok(ring)
    }
}

/// Bit `i` set when the `i`-th flag is (at most 32 flags: every ring and slot array here).
fn mask(flags: impl Iterator<Item = bool>) -> u32 {
    flags.enumerate().fold(0, |m, (i, used)| m | (u32::from(used) << i))
}

pub(super) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize) -> anyhow::Result<&'a [u8]> {
        if self.0.len() < n {
            bail!("the checkpoint ends early");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    pub(super) fn array<const K: usize>(&mut self) -> anyhow::Result<[u8; K]> {
        Ok(self.take(K)?.try_into()?)
    }
    pub(super) fn u8(&mut self) -> anyhow::Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub(super) fn u16(&mut self) -> anyhow::Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub(super) fn u32(&mut self) -> anyhow::Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn i64(&mut self) -> anyhow::Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    fn u128(&mut self) -> anyhow::Result<u128> {
        Ok(u128::from_le_bytes(self.array()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_exactly_and_stay_small() {
        let fr = Country::parse("FR").unwrap();
        let us = Country::parse("US").unwrap();
        let mut busy = CardState::default();
        for i in 0..200i64 {
            let country = if i % 7 == 0 { us } else { fr };
            busy.observe(1_735_689_600 + i * 1_700, 10.0 + i as f32, country, (i % 40) as u32 * 7919);
        }
        busy.fraud_label_known(1_735_900_000);
        busy.applied = 41;
        busy.held = 41;
        busy.restored_at = 5;
        let mut quiet = CardState::default();
        quiet.observe(1_735_689_600, 25.0, fr, 3);
        let cards = [
            (CardToken::from_u128(7), busy),
            (CardToken::from_u128(u128::MAX), quiet),
            (CardToken::from_u128(1), CardState::default()),
        ];
        let mut bytes = Vec::new();
        encode(cards.iter().map(|(t, s)| (*t, s, None)), &mut bytes);
        let mut back: Vec<(CardToken, CardState)> = decode(&bytes, 5)
            .unwrap()
            .into_iter()
            .map(|(t, s, f)| {
                assert_eq!(f, CardFields::default());
                (t, s)
            })
            .collect();
        for (_, s) in back.iter_mut().skip(1) {
            (s.held, s.restored_at) = (0, 0);
        }
        assert_eq!(back, cards);
        // A version-1 checkpoint (before declared fields) still reads.
        let mut v1 = Vec::new();
        v1.extend_from_slice(MAGIC);
        v1.push(1);
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(&7u128.to_le_bytes());
        cards[1].1.encode(&mut v1);
        assert_eq!(decode(&v1, 0).unwrap()[0].1.last_ts, cards[1].1.last_ts);
        // A one-transaction card: one bucket per ring, one country, one merchant.
        let mut one = Vec::new();
        cards[1].1.encode(&mut one);
        assert!(one.len() < 100, "{} bytes", one.len());
        // Damage is an error, never a panic.
        assert!(decode(&bytes[..bytes.len() - 1], 0).is_err());
        let mut wrong = bytes.clone();
        wrong[4] = VERSION + 1;
        assert!(format!("{:#}", decode(&wrong, 0).unwrap_err()).contains("version"));
    }
}
