//! The two date formats S3 speaks: ISO 8601 in XML bodies
//! (`2026-01-02T03:04:05.000Z`) and the HTTP date in headers
//! (`Fri, 02 Jan 2026 03:04:05 GMT`).

use riffle_core::clock::civil_from_days;

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn split(ms: i64) -> (i64, i64, i64, i64, i64, i64, i64, i64) {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    (
        y,
        m,
        d,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000),
        days,
    )
}

/// `2026-01-02T03:04:05.000Z`.
pub fn iso8601(ms: i64) -> String {
    let (y, m, d, h, mi, s, milli, _) = split(ms);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// `Fri, 02 Jan 2026 03:04:05 GMT`.
pub fn http_date(ms: i64) -> String {
    let (y, m, d, h, mi, s, _, days) = split(ms);
    let wd = DAYS[days.rem_euclid(7) as usize];
    let mon = MONTHS[(m - 1).clamp(0, 11) as usize];
    format!("{wd}, {d:02} {mon} {y:04} {h:02}:{mi:02}:{s:02} GMT")
}

/// Epoch seconds of an HTTP date (`Fri, 02 Jan 2026 03:04:05 GMT`), or of
/// an ISO 8601 one, as SDKs send either in conditional headers.
pub fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Some(rest) = s.split_once(", ").map(|(_, r)| r) {
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() != 5 {
            return None;
        }
        let d: i64 = f[0].parse().ok()?;
        let m = MONTHS.iter().position(|x| x.eq_ignore_ascii_case(f[1]))? as i64 + 1;
        let y: i64 = f[2].parse().ok()?;
        let t: Vec<i64> = f[3]
            .split(':')
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        if t.len() != 3 {
            return None;
        }
        return Some(days_from_civil(y, m, d) * 86_400 + t[0] * 3600 + t[1] * 60 + t[2]);
    }
    // 2026-01-02T03:04:05[.000]Z
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    if s.len() >= 20 && s.as_bytes()[10] == b'T' {
        let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
        let (h, mi, se) = (n(11..13)?, n(14..16)?, n(17..19)?);
        return Some(days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60 + se);
    }
    None
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        let ms = 1_767_323_045_123; // 2026-01-02T03:04:05.123Z, a Friday
        assert_eq!(iso8601(ms), "2026-01-02T03:04:05.123Z");
        assert_eq!(http_date(ms), "Fri, 02 Jan 2026 03:04:05 GMT");
        assert_eq!(parse_date(&http_date(ms)), Some(ms / 1000));
        assert_eq!(parse_date(&iso8601(ms)), Some(ms / 1000));
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }
}
