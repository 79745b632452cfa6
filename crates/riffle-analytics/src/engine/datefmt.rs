//! Java `SimpleDateFormat` patterns, both ways, in UTC: what
//! TIMESTAMP_TO_CHAR, CHAR_TO_TIMESTAMP and the log parsers use.
//!
//! Letters: `G y Y M L w W D d F E u a H k K h m s S z Z X`; text in
//! `'...'` is literal and `''` is one quote; any other character is
//! literal. Formatting follows Java in the US locale with the zone UTC.
//! Parsing is strict about ranges (month 1-12, a day the month has, hour
//! 0-23, ...) as Kinesis Analytics documents, and lenient where Java is:
//! spaces before a field are skipped, a number takes as many digits as
//! are there unless the next field is a number too, text fields take full
//! or short names in any case, and text after the pattern is ignored.
//! Fields absent from the pattern default to 1970-01-01 00:00:00.000.

use super::value::{civil_from_days, days_from_civil, month_days, DAY_MS};

/// Sunday first, as Java's `Calendar` numbers them.
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(char, usize),
    Lit(String),
}

fn tokenize(pattern: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            if chars.get(i + 1) == Some(&'\'') {
                lit.push('\'');
                i += 2;
                continue;
            }
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("Unterminated quote in pattern '{pattern}'")),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        lit.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        lit.push(ch);
                        i += 1;
                    }
                }
            }
        } else if c.is_ascii_alphabetic() {
            if !"GyYMLwWDdFEuaHkKhmsSzZX".contains(c) {
                return Err(format!("Illegal pattern character '{c}'"));
            }
            if !lit.is_empty() {
                out.push(Tok::Lit(std::mem::take(&mut lit)));
            }
            let mut n = 1;
            while chars.get(i + n) == Some(&c) {
                n += 1;
            }
            out.push(Tok::Field(c, n));
            i += n;
        } else {
            lit.push(c);
            i += 1;
        }
    }
    if !lit.is_empty() {
        out.push(Tok::Lit(lit));
    }
    Ok(out)
}

/// Day of week of a day number, 0 = Sunday.
fn weekday(days: i64) -> i64 {
    (days + 4).rem_euclid(7)
}

/// Week of year with Sunday first and one day minimum (US rules).
fn week_of_year(days: i64, y: i64) -> i64 {
    let next_jan1 = days_from_civil(y + 1, 1, 1);
    let week_start = days - weekday(days);
    if week_start + 6 >= next_jan1 {
        return 1;
    }
    let jan1 = days_from_civil(y, 1, 1);
    (days - (jan1 - weekday(jan1))) / 7 + 1
}

fn pad(out: &mut String, v: i64, width: usize) {
    if v < 0 {
        out.push('-');
    }
    let s = v.unsigned_abs().to_string();
    for _ in s.len()..width {
        out.push('0');
    }
    out.push_str(&s);
}

fn text(out: &mut String, full: &str, n: usize) {
    if n >= 4 {
        out.push_str(full);
    } else {
        out.push_str(&full[..3]);
    }
}

/// Formats epoch milliseconds (UTC) with a SimpleDateFormat pattern.
pub fn format(pattern: &str, ms: i64) -> Result<String, String> {
    let toks = tokenize(pattern)?;
    let days = ms.div_euclid(DAY_MS);
    let tod = ms.rem_euclid(DAY_MS);
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s, milli) = (
        tod / 3_600_000,
        tod / 60_000 % 60,
        tod / 1000 % 60,
        tod % 1000,
    );
    let era_year = if y <= 0 { 1 - y } else { y };
    let mut out = String::new();
    for t in &toks {
        match t {
            Tok::Lit(l) => out.push_str(l),
            Tok::Field(c, n) => {
                let n = *n;
                match c {
                    'G' => out.push_str(if y <= 0 { "BC" } else { "AD" }),
                    'y' | 'Y' => {
                        if n == 2 {
                            pad(&mut out, era_year % 100, 2)
                        } else {
                            pad(&mut out, era_year, n)
                        }
                    }
                    'M' | 'L' => {
                        if n >= 3 {
                            text(&mut out, riffle_core::calendar::MONTHS[mo as usize - 1], n)
                        } else {
                            pad(&mut out, mo as i64, n)
                        }
                    }
                    'w' => pad(&mut out, week_of_year(days, y), n),
                    'W' => {
                        let first = days - (d as i64 - 1);
                        pad(&mut out, (d as i64 - 1 + weekday(first)) / 7 + 1, n)
                    }
                    'D' => pad(&mut out, days - days_from_civil(y, 1, 1) + 1, n),
                    'd' => pad(&mut out, d as i64, n),
                    'F' => pad(&mut out, (d as i64 - 1) / 7 + 1, n),
                    'E' => text(&mut out, DAYS[weekday(days) as usize], n),
                    'u' => pad(&mut out, (weekday(days) + 6) % 7 + 1, n),
                    'a' => out.push_str(if h < 12 { "AM" } else { "PM" }),
                    'H' => pad(&mut out, h, n),
                    'k' => pad(&mut out, if h == 0 { 24 } else { h }, n),
                    'K' => pad(&mut out, h % 12, n),
                    'h' => pad(&mut out, if h % 12 == 0 { 12 } else { h % 12 }, n),
                    'm' => pad(&mut out, mi, n),
                    's' => pad(&mut out, s, n),
                    'S' => pad(&mut out, milli, n),
                    'z' => out.push_str(if n >= 4 {
                        "Coordinated Universal Time"
                    } else {
                        "UTC"
                    }),
                    'Z' => out.push_str("+0000"),
                    'X' => out.push('Z'),
                    _ => return Err(format!("Illegal pattern character '{c}'")),
                }
            }
        }
    }
    Ok(out)
}

#[derive(Default)]
struct Parsed {
    year: Option<i64>,
    /// Two-digit year text: resolve with the 80/20 century window.
    short_year: bool,
    month: Option<u32>,
    day: Option<u32>,
    day_of_year: Option<i64>,
    hour24: Option<i64>,
    hour12: Option<i64>,
    pm: Option<bool>,
    minute: i64,
    second: i64,
    milli: i64,
    offset_ms: i64,
    bc: bool,
}

struct Cursor<'a> {
    s: &'a [char],
    i: usize,
}

impl Cursor<'_> {
    fn skip_blanks(&mut self) {
        while matches!(self.s.get(self.i), Some(' ' | '\t')) {
            self.i += 1;
        }
    }

    /// Digits: exactly `max` when given (adjacent numeric fields), else
    /// all there are.
    fn number(&mut self, max: Option<usize>) -> Option<(i64, usize)> {
        self.skip_blanks();
        let start = self.i;
        let neg = self.s.get(self.i) == Some(&'-') && max.is_none();
        if neg {
            self.i += 1;
        }
        let digits_start = self.i;
        while self.i < self.s.len()
            && self.s[self.i].is_ascii_digit()
            && max.is_none_or(|m| self.i - digits_start < m)
        {
            self.i += 1;
        }
        let len = self.i - digits_start;
        if len == 0 || len > 18 {
            self.i = start;
            return None;
        }
        let v: i64 = self.s[digits_start..self.i]
            .iter()
            .collect::<String>()
            .parse()
            .ok()?;
        Some((if neg { -v } else { v }, len))
    }

    /// The longest of `words` found here, in any case: its index.
    fn word(&mut self, words: &[&str]) -> Option<usize> {
        self.skip_blanks();
        let (k, w) = words
            .iter()
            .enumerate()
            .filter(|(_, w)| self.starts_with_ci(w))
            .max_by_key(|(_, w)| w.len())?;
        self.i += w.chars().count();
        Some(k)
    }

    /// A full or three-letter name: its index in `names`.
    fn name(&mut self, names: &[&str]) -> Option<usize> {
        let mut words: Vec<&str> = names.to_vec();
        words.extend(names.iter().map(|n| &n[..3]));
        self.word(&words).map(|k| k % names.len())
    }

    fn starts_with_ci(&self, lit: &str) -> bool {
        let lit: Vec<char> = lit.chars().collect();
        self.s.len() >= self.i + lit.len()
            && self.s[self.i..self.i + lit.len()]
                .iter()
                .zip(&lit)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }

    /// `Z`, `UTC`, `GMT`, `GMT+hh:mm`, `+hh:mm`, `+hhmm`, `+hh`.
    fn zone(&mut self) -> Option<i64> {
        self.skip_blanks();
        if self.s.get(self.i) == Some(&'Z') {
            self.i += 1;
            return Some(0);
        }
        for name in ["UTC", "GMT", "UT"] {
            if self.starts_with_ci(name) {
                self.i += name.len();
                if !matches!(self.s.get(self.i), Some('+' | '-')) {
                    return Some(0);
                }
                break;
            }
        }
        let sign = match self.s.get(self.i) {
            Some('+') => 1,
            Some('-') => -1,
            _ => return None,
        };
        self.i += 1;
        let digits = |c: &mut Cursor, n: usize| -> Option<i64> {
            let start = c.i;
            while c.i < c.s.len() && c.s[c.i].is_ascii_digit() && c.i - start < n {
                c.i += 1;
            }
            if c.i == start {
                return None;
            }
            c.s[start..c.i].iter().collect::<String>().parse().ok()
        };
        let start = self.i;
        let hh = digits(self, 2)?;
        let hlen = self.i - start;
        let mm = if self.s.get(self.i) == Some(&':') {
            self.i += 1;
            digits(self, 2)?
        } else if hlen == 2 {
            digits(self, 2).unwrap_or(0)
        } else {
            0
        };
        if hh > 23 || mm > 59 {
            return None;
        }
        Some(sign * (hh * 3_600_000 + mm * 60_000))
    }
}

fn current_year() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    civil_from_days(now.div_euclid(DAY_MS)).0
}

/// Parses text with a SimpleDateFormat pattern into epoch milliseconds
/// (UTC). The error is a short reason; callers name the value and pattern.
pub fn parse(pattern: &str, input: &str) -> Result<i64, String> {
    let toks = tokenize(pattern)?;
    let chars: Vec<char> = input.chars().collect();
    let mut c = Cursor { s: &chars, i: 0 };
    let mut p = Parsed::default();
    let numeric = |t: Option<&Tok>| match t {
        Some(Tok::Field(ch, n)) => match ch {
            'M' | 'L' => *n < 3,
            'E' | 'a' | 'G' | 'z' | 'Z' | 'X' => false,
            _ => true,
        },
        _ => false,
    };
    for (k, t) in toks.iter().enumerate() {
        match t {
            Tok::Lit(l) => {
                for ch in l.chars() {
                    if c.s.get(c.i) == Some(&ch) {
                        c.i += 1;
                    } else if ch.is_whitespace() {
                        // A blank in the pattern may match no blank: the
                        // next field skips blanks anyway.
                    } else {
                        return Err(format!("expected '{ch}' at position {}", c.i + 1));
                    }
                }
            }
            Tok::Field(f, n) => {
                let n = *n;
                let max = if numeric(toks.get(k + 1)) {
                    Some(n)
                } else {
                    None
                };
                let num = |c: &mut Cursor, what: &str| {
                    c.number(max)
                        .ok_or_else(|| format!("expected {what} at position {}", c.i + 1))
                };
                let range = |v: i64, lo: i64, hi: i64, what: &str| {
                    if v < lo || v > hi {
                        Err(format!("{what} {v} out of range"))
                    } else {
                        Ok(v)
                    }
                };
                match f {
                    'G' => {
                        let e = c.word(&["BC", "AD"]).ok_or("expected era")?;
                        p.bc = e == 0;
                    }
                    'y' | 'Y' => {
                        let (v, len) = num(&mut c, "year")?;
                        p.year = Some(v);
                        p.short_year = n <= 2 && len == 2 && v >= 0;
                    }
                    'M' | 'L' => {
                        if n >= 3 {
                            let m = c.name(&riffle_core::calendar::MONTHS).ok_or_else(|| {
                                format!("expected month name at position {}", c.i + 1)
                            })?;
                            p.month = Some(m as u32 + 1);
                        } else {
                            let (v, _) = num(&mut c, "month")?;
                            p.month = Some(range(v, 1, 12, "month")? as u32);
                        }
                    }
                    'd' => {
                        let (v, _) = num(&mut c, "day")?;
                        p.day = Some(range(v, 1, 31, "day")? as u32);
                    }
                    'D' => {
                        let (v, _) = num(&mut c, "day of year")?;
                        p.day_of_year = Some(range(v, 1, 366, "day of year")?);
                    }
                    'w' | 'W' | 'F' | 'u' => {
                        // Read and checked as numbers; they do not fix the
                        // date (the other fields do).
                        num(&mut c, "number")?;
                    }
                    'E' => {
                        c.name(&DAYS)
                            .ok_or_else(|| format!("expected day name at position {}", c.i + 1))?;
                    }
                    'a' => {
                        let v = c
                            .word(&["AM", "PM"])
                            .ok_or_else(|| format!("expected AM or PM at position {}", c.i + 1))?;
                        p.pm = Some(v == 1);
                    }
                    'H' => p.hour24 = Some(range(num(&mut c, "hour")?.0, 0, 23, "hour")?),
                    'k' => {
                        let v = range(num(&mut c, "hour")?.0, 1, 24, "hour")?;
                        p.hour24 = Some(v % 24);
                    }
                    'K' => p.hour12 = Some(range(num(&mut c, "hour")?.0, 0, 11, "hour")?),
                    'h' => {
                        let v = range(num(&mut c, "hour")?.0, 1, 12, "hour")?;
                        p.hour12 = Some(v % 12);
                    }
                    'm' => p.minute = range(num(&mut c, "minute")?.0, 0, 59, "minute")?,
                    's' => p.second = range(num(&mut c, "second")?.0, 0, 59, "second")?,
                    'S' => p.milli = range(num(&mut c, "millisecond")?.0, 0, 999, "millisecond")?,
                    'z' | 'Z' | 'X' => {
                        p.offset_ms = c.zone().ok_or_else(|| {
                            format!("expected a time zone at position {}", c.i + 1)
                        })?;
                    }
                    _ => return Err(format!("Illegal pattern character '{f}'")),
                }
            }
        }
    }
    let mut year = p.year.unwrap_or(1970);
    if p.short_year {
        // Java: within 80 years before and 20 after the formatter's creation.
        let now = current_year();
        let base = (now - 80).div_euclid(100) * 100 + year;
        year = if base < now - 80 { base + 100 } else { base };
    }
    if p.bc {
        year = 1 - year;
    }
    if !(-1_000_000..=1_000_000).contains(&year) {
        return Err(format!("year {year} out of range"));
    }
    let days = match (p.day_of_year, p.month, p.day) {
        (Some(doy), None, None) => {
            let len = if month_days(year, 2) == 29 { 366 } else { 365 };
            if doy > len {
                return Err(format!("day of year {doy} out of range"));
            }
            days_from_civil(year, 1, 1) + doy - 1
        }
        (_, m, d) => {
            let m = m.unwrap_or(1);
            let d = d.unwrap_or(1);
            if d > month_days(year, m) {
                return Err(format!("day {d} out of range for month {m}"));
            }
            days_from_civil(year, m, d)
        }
    };
    let hour = match (p.hour24, p.hour12, p.pm) {
        (Some(h), _, _) => h,
        (None, Some(h), pm) => h + if pm == Some(true) { 12 } else { 0 },
        (None, None, Some(true)) => 12,
        _ => 0,
    };
    let tod = hour * 3_600_000 + p.minute * 60_000 + p.second * 1000 + p.milli;
    days.checked_mul(DAY_MS)
        .and_then(|v| v.checked_add(tod))
        .and_then(|v| v.checked_sub(p.offset_ms))
        .ok_or_else(|| "value out of range".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::value::parse_timestamp;

    fn ts(s: &str) -> i64 {
        parse_timestamp(s).unwrap()
    }

    #[test]
    fn formats_like_java() {
        let t = ts("2009-09-16 03:15:24.007");
        assert_eq!(
            format("yyyy-MM-dd HH:mm:ss.SSS", t).unwrap(),
            "2009-09-16 03:15:24.007"
        );
        assert_eq!(format("yy/M/d h:m a", t).unwrap(), "09/9/16 3:15 AM");
        assert_eq!(format("EEE, dd MMM yyyy", t).unwrap(), "Wed, 16 Sep 2009");
        assert_eq!(format("EEEE MMMM", t).unwrap(), "Wednesday September");
        assert_eq!(
            format("'at' HH 'o''clock' z Z X", t).unwrap(),
            "at 03 o'clock UTC +0000 Z"
        );
        assert_eq!(format("D u k K S", t).unwrap(), "259 3 3 3 7");
        assert_eq!(format("hh a", ts("2020-01-01 12:00:00")).unwrap(), "12 PM");
        assert_eq!(format("k", ts("2020-01-01 00:30:00")).unwrap(), "24");
        // 2020-12-31 is a Thursday: its week holds 2021-01-01, so week 1.
        assert_eq!(format("w W F", ts("2020-12-31")).unwrap(), "1 5 5");
        assert_eq!(format("w", ts("2020-01-05")).unwrap(), "2");
        assert!(format("yyyy-qq", 0).is_err());
        assert!(format("'open", 0).is_err());
    }

    #[test]
    fn parses_like_java() {
        assert_eq!(
            parse("yyyy-MM-dd hh:mm:ss", "2009-09-16 03:15:24").unwrap(),
            ts("2009-09-16 03:15:24")
        );
        assert_eq!(parse("yyyy-MM", "2009-09").unwrap(), ts("2009-09-01"));
        assert_eq!(parse("HH:mm", "13:05").unwrap(), ts("1970-01-01 13:05:00"));
        assert_eq!(
            parse("dd/MMM/yyyy:HH:mm:ss Z", "10/oct/2000:13:55:36 -0700").unwrap(),
            ts("2000-10-10 20:55:36")
        );
        assert_eq!(
            parse("yyyyMMddHHmmssSSS", "20240229235959123").unwrap(),
            ts("2024-02-29 23:59:59.123")
        );
        assert_eq!(
            parse("h:mm a", "12:30 am").unwrap(),
            ts("1970-01-01 00:30:00")
        );
        assert_eq!(
            parse("h:mm a", "1:30 PM").unwrap(),
            ts("1970-01-01 13:30:00")
        );
        assert_eq!(parse("yyyy D", "2024 60").unwrap(), ts("2024-02-29"));
        assert_eq!(
            parse("yyyy-MM-dd'T'HH:mm:ssXXX", "2024-01-01T10:00:00+02:00").unwrap(),
            ts("2024-01-01 08:00:00")
        );
        assert_eq!(
            parse("yyyy-MM-dd", "2024-01-01 trailing").unwrap(),
            ts("2024-01-01")
        );
        assert_eq!(
            parse("EEE MMM d yyyy", "Tue September 1 2026").unwrap(),
            ts("2026-09-01")
        );
        // Two-digit years fall within 80 years back and 20 ahead.
        assert_eq!(parse("yy", "99").unwrap(), ts("1999-01-01"));
        assert!(parse("yyyy-MM-dd", "2023-02-29").is_err());
        assert!(parse("yyyy-MM-dd", "2023-13-01").is_err());
        assert!(parse("HH:mm", "24:00").is_err());
        assert!(parse("yyyy-MM-dd", "2023/01/01").is_err());
        assert!(parse("yyyy", "").is_err());
        assert!(parse("yyyy", "二〇二四").is_err());
        assert!(parse("yyyy", "999999999999999999").is_err());
    }
}
