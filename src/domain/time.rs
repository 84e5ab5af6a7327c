//! Time helpers every layer uses: parsing the timestamp forms transaction files and requests
//! use (all read as UTC), and formatting Unix seconds as RFC 3339.

use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// RFC 3339 UTC to the second (`2025-01-01T12:30:45Z`); the bare number if out of range.
pub fn rfc3339(ts: i64) -> String {
    DateTime::from_timestamp(ts, 0)
        .map_or_else(|| ts.to_string(), |d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// Unix seconds from RFC 3339 (`2025-01-01T12:00:00Z`, any offset), `YYYY-MM-DD HH:MM:SS`
/// or `YYYY-MM-DDTHH:MM:SS` (taken as UTC, fractions allowed), a bare date, or Unix seconds.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp());
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(dt.and_utc().timestamp());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|dt| dt.and_utc().timestamp());
    }
    // Unix seconds, within years 1970–2100 so that a stray amount is not taken for a time.
    s.parse::<i64>().ok().filter(|v| (0..4_102_444_800).contains(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_back() {
        assert_eq!(rfc3339(1_735_734_645), "2025-01-01T12:30:45Z");
        assert_eq!(parse_timestamp(&rfc3339(1_735_734_645)), Some(1_735_734_645));
    }

    #[test]
    fn accepts_the_documented_forms() {
        let t = 1_735_734_645; // 2025-01-01T12:30:45Z
        assert_eq!(parse_timestamp("2025-01-01T12:30:45Z"), Some(t));
        assert_eq!(parse_timestamp("2025-01-01T14:30:45+02:00"), Some(t));
        assert_eq!(parse_timestamp("2025-01-01 12:30:45"), Some(t));
        assert_eq!(parse_timestamp("2025-01-01T12:30:45.250"), Some(t));
        assert_eq!(parse_timestamp("1735734645"), Some(t));
        assert_eq!(parse_timestamp("2025-01-01"), Some(t - 45_045));
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp("2025-13-01"), None);
        assert_eq!(parse_timestamp("-5"), None);
    }
}
