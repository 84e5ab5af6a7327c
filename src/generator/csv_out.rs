//! Writing generated rows as CSV, fast.
//!
//! Rows are rendered by hand into one reused line buffer instead of through `csv::Writer` and
//! chrono's formatter: every field is ASCII without commas or quotes, so no escaping is needed,
//! and the hand-rolled RFC 3339 and decimal formatting is what lets generation pass 1M rows/s
//! (see BENCHMARKS.md).

use super::{CATEGORIES, COUNTRIES, Generated, cnp};
use rayon::prelude::*;
use std::io::Write;

pub const CSV_HEADER: &str = "txn_id,timestamp,card_num,amount,country,merchant,merchant_category,label,fraud_scenario,\
channel,entry_mode,device_id,ip,email,lat,lon";

/// Rows formatted per parallel task.
const CHUNK: usize = 1 << 15;

/// Writes the header and every row; calls `progress(rows_written)` as it goes.
///
/// Chunks of rows are formatted in parallel, a few at a time, and written in order, so
/// memory stays bounded and the file is the same whatever the number of threads.
pub fn write_csv(data: &Generated, out: impl Write, mut progress: impl FnMut(u64)) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
    out.write_all(CSV_HEADER.as_bytes())?;
    out.write_all(b"\n")?;
    let per_batch = CHUNK * 2 * rayon::current_num_threads().max(1);
    let mut written = 0u64;
    for (b, batch) in data.rows.chunks(per_batch).enumerate() {
        let first = b * per_batch;
        let texts: Vec<Vec<u8>> =
            batch.par_chunks(CHUNK).enumerate().map(|(c, rows)| format_rows(data, first + c * CHUNK, rows)).collect();
        for text in texts {
            out.write_all(&text)?;
        }
        written += batch.len() as u64;
        progress(written);
    }
    out.flush()?;
    progress(data.rows.len() as u64);
    Ok(())
}

/// CSV lines for `rows`, the first of which is row number `first`.
fn format_rows(data: &Generated, first: usize, rows: &[super::Row]) -> Vec<u8> {
    let mut line = Vec::with_capacity(rows.len() * 96);
    let mut dates = DateCache::default();
    for (k, r) in rows.iter().enumerate() {
        push_hex16(&mut line, txn_id(data.seed, (first + k) as u64));
        line.push(b',');
        dates.push_rfc3339(&mut line, r.ts);
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
        push_u64(&mut line, u64::from(r.scenario));
        let c = &data.cnp[first + k];
        line.push(b',');
        line.extend_from_slice(cnp::CHANNELS[usize::from(c.channel)].as_bytes());
        line.push(b',');
        line.extend_from_slice(cnp::ENTRY_MODES[usize::from(c.entry_mode)].as_bytes());
        line.push(b',');
        cnp::push_device(&mut line, c.device);
        line.push(b',');
        cnp::push_ip(&mut line, c.ip);
        line.push(b',');
        cnp::push_email(&mut line, c.email);
        line.extend_from_slice(format!(",{:.4},{:.4}", c.lat, c.lon).as_bytes());
        line.push(b'\n');
    }
    line
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
    let mut out = [0u8; 16];
    for (k, byte) in v.to_be_bytes().into_iter().enumerate() {
        out[2 * k] = HEX[usize::from(byte >> 4)];
        out[2 * k + 1] = HEX[usize::from(byte & 0xf)];
    }
    buf.extend_from_slice(&out);
}

/// Formats timestamps, reusing the `YYYY-MM-DDT` prefix while consecutive rows share a day
/// (rows are written in time order, so the calendar arithmetic runs once a day).
#[derive(Default)]
struct DateCache {
    day: Option<i64>,
    prefix: Vec<u8>,
}

impl DateCache {
    fn push_rfc3339(&mut self, buf: &mut Vec<u8>, ts: i64) {
        let day = ts.div_euclid(86_400);
        if self.day != Some(day) {
            self.prefix.clear();
            push_rfc3339(&mut self.prefix, day * 86_400);
            self.prefix.truncate(11); // "YYYY-MM-DDT"
            self.day = Some(day);
        }
        buf.extend_from_slice(&self.prefix);
        push_time_of_day(buf, ts.rem_euclid(86_400));
    }
}

/// `HH:MM:SSZ` for seconds into a day.
fn push_time_of_day(buf: &mut Vec<u8>, secs: i64) {
    push_2(buf, secs / 3600);
    buf.push(b':');
    push_2(buf, secs / 60 % 60);
    buf.push(b':');
    push_2(buf, secs % 60);
    buf.push(b'Z');
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
    push_time_of_day(buf, secs);
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
        fn cached_dates_match_uncached(mut ts in proptest::collection::vec(0i64..4_000_000_000, 1..50)) {
            ts.sort_unstable();
            let mut cache = DateCache::default();
            for t in ts {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                cache.push_rfc3339(&mut a, t);
                push_rfc3339(&mut b, t);
                prop_assert_eq!(a, b);
            }
        }

        #[test]
        fn hex_matches_format(v in any::<u64>()) {
            let mut buf = Vec::new();
            push_hex16(&mut buf, v);
            prop_assert_eq!(String::from_utf8(buf).unwrap(), format!("{v:016x}"));
        }

        #[test]
        fn integers_match_std(v in any::<u64>()) {
            let mut buf = Vec::new();
            push_u64(&mut buf, v);
            prop_assert_eq!(String::from_utf8(buf).unwrap(), v.to_string());
        }
    }
}
