//! Writing generated rows as CSV, fast.
//!
//! Rows are rendered by hand into one reused line buffer instead of through `csv::Writer` and
//! chrono's formatter: every field is ASCII without commas or quotes, so no escaping is needed,
//! and the hand-rolled RFC 3339 and decimal formatting is what lets generation pass 1M rows/s
//! (see BENCHMARKS.md).

use super::{CATEGORIES, COUNTRIES, Generated};
use std::io::Write;

pub const CSV_HEADER: &str = "txn_id,timestamp,card_num,amount,country,merchant,merchant_category,label,fraud_scenario";

/// Writes the header and every row; calls `progress(rows_written)` every 65,536 rows.
pub fn write_csv(data: &Generated, out: impl Write, mut progress: impl FnMut(u64)) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
    out.write_all(CSV_HEADER.as_bytes())?;
    out.write_all(b"\n")?;
    let mut line = Vec::with_capacity(160);
    for (i, r) in data.rows.iter().enumerate() {
        line.clear();
        push_hex16(&mut line, txn_id(data.seed, i as u64));
        line.push(b',');
        push_rfc3339(&mut line, r.ts);
        line.push(b',');
        line.extend_from_slice(data.world.cards[r.card as usize].pan.as_bytes());
        line.push(b',');
        push_u64(&mut line, u64::from(r.amount_cents / 100));
        line.push(b'.');
        let cents = r.amount_cents % 100;
        line.extend_from_slice(&[b'0' + (cents / 10) as u8, b'0' + (cents % 10) as u8]);
        line.push(b',');
        line.extend_from_slice(COUNTRIES[usize::from(r.country)].0.as_bytes());
        line.push(b',');
        let m = &data.world.merchants[r.merchant as usize];
        line.extend_from_slice(m.id.as_bytes());
        line.push(b',');
        line.extend_from_slice(CATEGORIES[usize::from(m.category)].0.as_bytes());
        line.extend_from_slice(if r.label { b",1," } else { b",0," });
        line.push(b'0' + r.scenario);
        line.push(b'\n');
        out.write_all(&line)?;
        if i % 65_536 == 65_535 {
            progress(i as u64 + 1);
        }
    }
    out.flush()?;
    progress(data.rows.len() as u64);
    Ok(())
}

/// A transaction id unique per (seed, row): SplitMix64 of both.
pub fn txn_id(seed: u64, index: u64) -> u64 {
    let mut z = seed.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ index.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn push_hex16(buf: &mut Vec<u8>, v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..16).rev() {
        buf.push(HEX[((v >> (shift * 4)) & 0xf) as usize]);
    }
}

fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

fn push_2(buf: &mut Vec<u8>, v: i64) {
    buf.extend_from_slice(&[b'0' + (v / 10) as u8, b'0' + (v % 10) as u8]);
}

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds (years 0–9999), via Howard Hinnant's
/// days-to-civil algorithm.
fn push_rfc3339(buf: &mut Vec<u8>, ts: i64) {
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    push_2(buf, year / 100);
    push_2(buf, year % 100);
    buf.push(b'-');
    push_2(buf, month);
    buf.push(b'-');
    push_2(buf, day);
    buf.push(b'T');
    push_2(buf, secs / 3600);
    buf.push(b':');
    push_2(buf, secs / 60 % 60);
    buf.push(b':');
    push_2(buf, secs % 60);
    buf.push(b'Z');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn rfc3339_matches_chrono(ts in 0i64..253_402_300_799) {
            let mut buf = Vec::new();
            push_rfc3339(&mut buf, ts);
            let want = chrono::DateTime::from_timestamp(ts, 0).unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            prop_assert_eq!(String::from_utf8(buf).unwrap(), want);
        }

        #[test]
        fn integers_match_std(v in any::<u64>()) {
            let mut buf = Vec::new();
            push_u64(&mut buf, v);
            prop_assert_eq!(String::from_utf8(buf).unwrap(), v.to_string());
        }
    }
}
