//! SQL values and types of the engine.
//!
//! - [`SqlType`]: the column types Kinesis Analytics allows (`RecordColumn`
//!   SqlType and in-application stream columns).
//! - [`Value`]: one cell. Integers of every width are `Int` (range-checked
//!   against the column type on cast), REAL and DOUBLE are `Double`,
//!   DECIMAL is an exact [`Dec`], CHAR and VARCHAR are `Str`, TIMESTAMP is
//!   epoch milliseconds (UTC), DATE days since the epoch, TIME milliseconds
//!   of the day, day-time INTERVALs milliseconds, year-month INTERVALs
//!   months.
//! - [`cast`]: SQL CAST between them, with SQLstream's texts for failures.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

/// A failure evaluating an expression; the row goes to `error_stream`
/// with this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError(pub String);

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EvalError {}

pub type EvalResult<T> = Result<T, EvalError>;

pub fn fail<T>(message: impl Into<String>) -> EvalResult<T> {
    Err(EvalError(message.into()))
}

/// A column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SqlType {
    Boolean,
    TinyInt,
    SmallInt,
    Integer,
    BigInt,
    Real,
    Double,
    /// DECIMAL(precision, scale).
    Decimal(u8, u8),
    /// CHAR(length): padded with spaces to its length.
    Char(u32),
    /// VARCHAR(length): at most its length.
    Varchar(u32),
    Timestamp,
    Date,
    Time,
    Varbinary(u32),
    /// Not a column type: INTERVAL literals and differences.
    IntervalDay,
    IntervalMonth,
}

impl SqlType {
    /// Parses a type as written in SQL or in a RecordColumn's SqlType
    /// (`VARCHAR(16)`, `DECIMAL(10,2)`, `DOUBLE PRECISION`, ...).
    pub fn parse(s: &str) -> Option<SqlType> {
        let t = s.trim().to_ascii_uppercase();
        let (base, args) = match t.find('(') {
            Some(i) => {
                let inner = t[i + 1..].strip_suffix(')')?;
                let args: Option<Vec<u32>> =
                    inner.split(',').map(|a| a.trim().parse().ok()).collect();
                (t[..i].trim().to_string(), args?)
            }
            None => (t.clone(), Vec::new()),
        };
        let base = base.split_whitespace().collect::<Vec<_>>().join(" ");
        let len = |d: u32| -> Option<u32> {
            match args.as_slice() {
                [] => Some(d),
                [n] if *n >= 1 => Some(*n),
                _ => None,
            }
        };
        Some(match base.as_str() {
            "BOOLEAN" => SqlType::Boolean,
            "TINYINT" => SqlType::TinyInt,
            "SMALLINT" => SqlType::SmallInt,
            "INT" | "INTEGER" => SqlType::Integer,
            "BIGINT" => SqlType::BigInt,
            "REAL" | "FLOAT" => SqlType::Real,
            "DOUBLE" | "DOUBLE PRECISION" => SqlType::Double,
            "DECIMAL" | "NUMERIC" | "DEC" => match args.as_slice() {
                [] => SqlType::Decimal(19, 0),
                [p] if (1..=38).contains(p) => SqlType::Decimal(*p as u8, 0),
                [p, s] if (1..=38).contains(p) && s <= p => SqlType::Decimal(*p as u8, *s as u8),
                _ => return None,
            },
            "CHAR" | "CHARACTER" => SqlType::Char(len(1)?),
            "VARCHAR" | "CHARACTER VARYING" | "CHAR VARYING" => {
                if args.is_empty() {
                    return None;
                }
                SqlType::Varchar(len(1)?)
            }
            "TIMESTAMP" => SqlType::Timestamp,
            "DATE" => SqlType::Date,
            "TIME" => SqlType::Time,
            "VARBINARY" | "BINARY VARYING" => {
                if args.is_empty() {
                    return None;
                }
                SqlType::Varbinary(len(1)?)
            }
            _ => return None,
        })
    }

    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            SqlType::TinyInt
                | SqlType::SmallInt
                | SqlType::Integer
                | SqlType::BigInt
                | SqlType::Real
                | SqlType::Double
                | SqlType::Decimal(..)
        )
    }
}

impl fmt::Display for SqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlType::Boolean => f.write_str("BOOLEAN"),
            SqlType::TinyInt => f.write_str("TINYINT"),
            SqlType::SmallInt => f.write_str("SMALLINT"),
            SqlType::Integer => f.write_str("INTEGER"),
            SqlType::BigInt => f.write_str("BIGINT"),
            SqlType::Real => f.write_str("REAL"),
            SqlType::Double => f.write_str("DOUBLE"),
            SqlType::Decimal(p, s) => write!(f, "DECIMAL({p}, {s})"),
            SqlType::Char(n) => write!(f, "CHAR({n})"),
            SqlType::Varchar(n) => write!(f, "VARCHAR({n})"),
            SqlType::Timestamp => f.write_str("TIMESTAMP"),
            SqlType::Date => f.write_str("DATE"),
            SqlType::Time => f.write_str("TIME"),
            SqlType::Varbinary(n) => write!(f, "VARBINARY({n})"),
            SqlType::IntervalDay => f.write_str("INTERVAL DAY TO SECOND"),
            SqlType::IntervalMonth => f.write_str("INTERVAL YEAR TO MONTH"),
        }
    }
}

/// An exact decimal: `mant × 10^-scale`.
#[derive(Debug, Clone, Copy)]
pub struct Dec {
    pub mant: i128,
    pub scale: u8,
}

const POW10: [i128; 39] = {
    let mut t = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

impl Dec {
    pub fn new(mant: i128, scale: u8) -> Dec {
        Dec { mant, scale }
    }

    /// The same value with `scale` digits after the point, rounding half
    /// away from zero; None on overflow.
    pub fn rescale(self, scale: u8) -> Option<Dec> {
        if scale >= self.scale {
            let f = *POW10.get((scale - self.scale) as usize)?;
            Some(Dec::new(self.mant.checked_mul(f)?, scale))
        } else {
            let Some(&f) = POW10.get((self.scale - scale) as usize) else {
                return Some(Dec::new(0, scale));
            };
            let q = self.mant / f;
            let r = self.mant % f;
            let q = if r.abs() * 2 >= f {
                q + self.mant.signum()
            } else {
                q
            };
            Some(Dec::new(q, scale))
        }
    }

    pub fn to_f64(self) -> f64 {
        self.mant as f64 / 10f64.powi(self.scale as i32)
    }

    pub fn from_i64(v: i64) -> Dec {
        Dec::new(v as i128, 0)
    }

    pub fn from_f64(v: f64, scale: u8) -> Option<Dec> {
        let m = (v * 10f64.powi(scale as i32)).round();
        if !m.is_finite() || m.abs() >= 1e38 {
            return None;
        }
        Some(Dec::new(m as i128, scale))
    }

    /// Parses `-12.345`, `1e3`, `.5`.
    pub fn parse(s: &str) -> Option<Dec> {
        let s = s.trim();
        let (num, exp) = match s.find(['e', 'E']) {
            Some(i) => (&s[..i], s[i + 1..].parse::<i32>().ok()?),
            None => (s, 0),
        };
        let (neg, digits) = match num.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, num.strip_prefix('+').unwrap_or(num)),
        };
        let (int, frac) = match digits.find('.') {
            Some(i) => (&digits[..i], &digits[i + 1..]),
            None => (digits, ""),
        };
        if int.is_empty() && frac.is_empty()
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let all = format!("{int}{frac}");
        let all = all.trim_start_matches('0');
        if all.len() > 38 {
            return None;
        }
        let mant: i128 = if all.is_empty() { 0 } else { all.parse().ok()? };
        let mut scale = frac.len() as i64 - exp as i64;
        let mut mant = if neg { -mant } else { mant };
        if scale < 0 {
            mant = mant.checked_mul(*POW10.get(scale.unsigned_abs() as usize)?)?;
            scale = 0;
        }
        if scale > 38 {
            // Digits beyond 38 places after the point are dropped.
            let drop = (scale - 38) as usize;
            mant = match POW10.get(drop) {
                Some(f) => mant / f,
                None => 0,
            };
            scale = 38;
        }
        Some(Dec::new(mant, scale as u8))
    }

    fn align(a: Dec, b: Dec) -> Option<(i128, i128, u8)> {
        let s = a.scale.max(b.scale);
        Some((a.rescale(s)?.mant, b.rescale(s)?.mant, s))
    }

    pub fn checked_add(a: Dec, b: Dec) -> Option<Dec> {
        let (x, y, s) = Dec::align(a, b)?;
        Some(Dec::new(x.checked_add(y)?, s))
    }

    pub fn checked_sub(a: Dec, b: Dec) -> Option<Dec> {
        let (x, y, s) = Dec::align(a, b)?;
        Some(Dec::new(x.checked_sub(y)?, s))
    }

    pub fn checked_mul(a: Dec, b: Dec) -> Option<Dec> {
        let scale = a.scale.checked_add(b.scale)?;
        let d = Dec::new(a.mant.checked_mul(b.mant)?, scale);
        if scale > 18 {
            d.rescale(18)
        } else {
            Some(d)
        }
    }

    /// Division keeps at least 6 digits after the point.
    pub fn checked_div(a: Dec, b: Dec) -> Option<Dec> {
        if b.mant == 0 {
            return None;
        }
        let scale = a.scale.max(6);
        // a / b at `scale`: a.mant * 10^(scale + b.scale - a.scale) / b.mant
        let shift = (scale + b.scale).checked_sub(a.scale)?;
        let num = a.mant.checked_mul(*POW10.get(shift as usize)?)?;
        let q = num / b.mant;
        let r = num % b.mant;
        let q = if r.abs() * 2 >= b.mant.abs() {
            q + (num.signum() * b.mant.signum())
        } else {
            q
        };
        Some(Dec::new(q, scale))
    }

    /// Digits before the point.
    pub fn int_digits(self) -> u32 {
        let whole = (self.mant / POW10[self.scale as usize]).unsigned_abs();
        if whole == 0 {
            0
        } else {
            whole.ilog10() + 1
        }
    }
}

impl PartialEq for Dec {
    fn eq(&self, other: &Dec) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Dec {}

impl PartialOrd for Dec {
    fn partial_cmp(&self, other: &Dec) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Dec {
    fn cmp(&self, other: &Dec) -> Ordering {
        match Dec::align(*self, *other) {
            Some((x, y, _)) => x.cmp(&y),
            None => self.to_f64().total_cmp(&other.to_f64()),
        }
    }
}

impl fmt::Display for Dec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.mant < 0;
        let digits = self.mant.unsigned_abs().to_string();
        let s = self.scale as usize;
        let (int, frac) = if digits.len() > s {
            (
                digits[..digits.len() - s].to_string(),
                digits[digits.len() - s..].to_string(),
            )
        } else {
            ("0".to_string(), format!("{digits:0>s$}"))
        };
        if neg {
            f.write_str("-")?;
        }
        if s == 0 {
            write!(f, "{int}")
        } else {
            write!(f, "{int}.{frac}")
        }
    }
}

/// One cell.
#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Decimal(Dec),
    Str(Arc<str>),
    /// Epoch milliseconds, UTC.
    Timestamp(i64),
    /// Days since 1970-01-01.
    Date(i32),
    /// Milliseconds since midnight.
    Time(i64),
    Bytes(Arc<[u8]>),
    /// A day-time interval in milliseconds.
    Interval(i64),
    /// A year-month interval in months.
    Months(i64),
    /// A row of named fields: what the log parsers return; fields are
    /// read with `(expr).NAME`.
    Row(Arc<[(Arc<str>, Value)]>),
}

impl Value {
    pub fn str(s: impl Into<Arc<str>>) -> Value {
        Value::Str(s.into())
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as f64, for numbers.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Double(d) => Some(*d),
            Value::Decimal(d) => Some(d.to_f64()),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The type a value of this kind has when nothing narrower is known.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Bool(_) => "BOOLEAN",
            Value::Int(_) => "BIGINT",
            Value::Double(_) => "DOUBLE",
            Value::Decimal(_) => "DECIMAL",
            Value::Str(_) => "VARCHAR",
            Value::Timestamp(_) => "TIMESTAMP",
            Value::Date(_) => "DATE",
            Value::Time(_) => "TIME",
            Value::Bytes(_) => "VARBINARY",
            Value::Interval(_) => "INTERVAL DAY TO SECOND",
            Value::Months(_) => "INTERVAL YEAR TO MONTH",
            Value::Row(_) => "ROW",
        }
    }

    /// SQL comparison: None when either side is NULL or the kinds do not
    /// compare.
    pub fn compare(&self, other: &Value) -> Option<Ordering> {
        use Value::*;
        match (self, other) {
            (Null, _) | (_, Null) => None,
            (Bool(a), Bool(b)) => Some(a.cmp(b)),
            (Int(a), Int(b)) => Some(a.cmp(b)),
            (Decimal(a), Decimal(b)) => Some(a.cmp(b)),
            (Int(a), Decimal(b)) => Some(Dec::from_i64(*a).cmp(b)),
            (Decimal(a), Int(b)) => Some(a.cmp(&Dec::from_i64(*b))),
            (Str(a), Str(b)) => Some(compare_text(a, b)),
            (Timestamp(a), Timestamp(b))
            | (Time(a), Time(b))
            | (Interval(a), Interval(b))
            | (Months(a), Months(b)) => Some(a.cmp(b)),
            (Date(a), Date(b)) => Some(a.cmp(b)),
            (Date(a), Timestamp(b)) => Some((*a as i64 * DAY_MS).cmp(b)),
            (Timestamp(a), Date(b)) => Some(a.cmp(&(*b as i64 * DAY_MS))),
            (Bytes(a), Bytes(b)) => Some(a.cmp(b)),
            (Row(a), Row(b)) => {
                for ((_, x), (_, y)) in a.iter().zip(b.iter()) {
                    match x.compare(y)? {
                        Ordering::Equal => {}
                        o => return Some(o),
                    }
                }
                Some(a.len().cmp(&b.len()))
            }
            (a, b) => {
                let (x, y) = (a.as_f64()?, b.as_f64()?);
                x.partial_cmp(&y)
            }
        }
    }

    /// A total order for sorting and grouping: NULL first, then by kind.
    pub fn total_cmp(&self, other: &Value) -> Ordering {
        match self.compare(other) {
            Some(o) => o,
            None => match (self, other) {
                (Value::Null, Value::Null) => Ordering::Equal,
                (Value::Null, _) => Ordering::Less,
                (_, Value::Null) => Ordering::Greater,
                (Value::Double(a), Value::Double(b)) => a.total_cmp(b),
                (a, b) => a.rank().cmp(&b.rank()),
            },
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) | Value::Double(_) | Value::Decimal(_) => 2,
            Value::Str(_) => 3,
            Value::Timestamp(_) | Value::Date(_) => 4,
            Value::Time(_) => 5,
            Value::Bytes(_) => 6,
            Value::Interval(_) => 7,
            Value::Months(_) => 8,
            Value::Row(_) => 9,
        }
    }

    /// The text a value has in CSV output and string contexts (CAST to
    /// VARCHAR).
    pub fn to_text(&self) -> Option<String> {
        Some(match self {
            Value::Null => return None,
            Value::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Double(d) => format_double(*d),
            Value::Decimal(d) => d.to_string(),
            Value::Str(s) => s.to_string(),
            Value::Timestamp(ms) => format_timestamp(*ms),
            Value::Date(d) => format_date(*d),
            Value::Time(t) => format_time(*t),
            Value::Bytes(b) => b.iter().map(|x| format!("{x:02X}")).collect(),
            Value::Interval(ms) => format_interval(*ms),
            Value::Months(m) => format!("{}-{:02}", m / 12, (m % 12).abs()),
            Value::Row(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(_, v)| v.to_text().unwrap_or_else(|| "NULL".into()))
                    .collect();
                format!("({})", parts.join(", "))
            }
        })
    }
}

/// Values equal for grouping: NULLs group together.
impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.total_cmp(other) == Ordering::Equal
    }
}

impl Eq for Value {}

impl std::hash::Hash for Value {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        match self {
            Value::Null => 0u8.hash(h),
            Value::Bool(b) => b.hash(h),
            // Numbers of every kind that compare equal hash alike.
            Value::Int(_) | Value::Double(_) | Value::Decimal(_) => {
                let f = self.as_f64().unwrap_or(0.0);
                if f == 0.0 {
                    0u64.hash(h)
                } else {
                    f.to_bits().hash(h)
                }
            }
            Value::Str(s) => s.trim_end_matches(' ').hash(h),
            Value::Timestamp(v) | Value::Time(v) | Value::Interval(v) | Value::Months(v) => {
                v.hash(h)
            }
            Value::Date(d) => (*d as i64 * DAY_MS).hash(h),
            Value::Bytes(b) => b.hash(h),
            Value::Row(fields) => {
                for (_, v) in fields.iter() {
                    v.hash(h);
                }
            }
        }
    }
}

/// CHAR comparison semantics: trailing spaces do not count.
fn compare_text(a: &str, b: &str) -> Ordering {
    a.trim_end_matches(' ').cmp(b.trim_end_matches(' '))
}

pub const DAY_MS: i64 = 86_400_000;

/// Doubles print as Java does for whole values (`3.0`), else shortest
/// round-trip; exponents as `1.0E10`.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "NaN".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let a = d.abs();
    if a != 0.0 && !(1e-3..1e7).contains(&a) {
        let s = format!("{d:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let m = if m.contains('.') {
            m.to_string()
        } else {
            format!("{m}.0")
        };
        return format!("{m}E{e}");
    }
    if d.fract() == 0.0 {
        format!("{d:.1}")
    } else {
        format!("{d}")
    }
}

fn civil(ms: i64) -> (i64, u32, u32, i64) {
    let days = ms.div_euclid(DAY_MS);
    let (y, m, d) = civil_from_days(days);
    (y, m, d, ms.rem_euclid(DAY_MS))
}

/// (year, month, day) of a day number (days since 1970-01-01).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a civil date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2024-01-31 12:00:05.123` (milliseconds only when not zero).
pub fn format_timestamp(ms: i64) -> String {
    let (y, m, d, rest) = civil(ms);
    format!("{y:04}-{m:02}-{d:02} {}", format_time(rest))
}

pub fn format_date(days: i32) -> String {
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

pub fn format_time(ms: i64) -> String {
    let (h, mi, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    if frac == 0 {
        format!("{h:02}:{mi:02}:{s:02}")
    } else {
        format!("{h:02}:{mi:02}:{s:02}.{frac:03}")
    }
}

fn format_interval(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let a = ms.unsigned_abs() as i64;
    format!("{sign}{} {}", a / DAY_MS, format_time(a % DAY_MS))
}

/// Parses `YYYY-MM-DD[ HH:MM:SS[.fff]]` (also with `T`, and a trailing `Z`).
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = match s.find([' ', 'T']) {
        Some(i) => (&s[..i], Some(s[i + 1..].trim())),
        None => (s, None),
    };
    let days = parse_date(date)? as i64;
    let t = match time {
        Some(t) if !t.is_empty() => parse_time(t)?,
        _ => 0,
    };
    days.checked_mul(DAY_MS)?.checked_add(t)
}

pub fn parse_date(s: &str) -> Option<i32> {
    let mut it = s.trim().splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    if !(-999_999_999..=999_999_999).contains(&y) {
        return None;
    }
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || d == 0 || d > month_days(y, m) {
        return None;
    }
    i32::try_from(days_from_civil(y, m, d)).ok()
}

pub fn month_days(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

pub fn parse_time(s: &str) -> Option<i64> {
    let (hms, frac) = match s.find('.') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    };
    let mut it = hms.split(':');
    let h: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let sec: i64 = it.next().map_or(Some(0), |x| x.parse().ok())?;
    if it.next().is_some() || h > 23 || m > 59 || sec > 59 || h < 0 || m < 0 || sec < 0 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ms: i64 = format!("{:0<3}", &frac[..frac.len().min(3)]).parse().ok()?;
    Some(h * 3_600_000 + m * 60_000 + sec * 1000 + ms)
}

fn int_range(t: SqlType) -> (i64, i64) {
    match t {
        SqlType::TinyInt => (i8::MIN as i64, i8::MAX as i64),
        SqlType::SmallInt => (i16::MIN as i64, i16::MAX as i64),
        SqlType::Integer => (i32::MIN as i64, i32::MAX as i64),
        _ => (i64::MIN, i64::MAX),
    }
}

fn cant(v: &Value, t: SqlType) -> EvalError {
    EvalError(format!(
        "Cannot cast {} value '{}' to {t}",
        v.type_name(),
        v.to_text().unwrap_or_default()
    ))
}

/// SQL CAST of a value to a type. Strings are trimmed before parsing as
/// numbers, booleans, dates and times; VARCHAR truncates to its length
/// and CHAR pads.
pub fn cast(v: &Value, t: SqlType) -> EvalResult<Value> {
    use Value as V;
    if v.is_null() {
        return Ok(V::Null);
    }
    let out = match t {
        SqlType::Boolean => match v {
            V::Bool(b) => V::Bool(*b),
            V::Str(s) => match s.trim().to_ascii_uppercase().as_str() {
                "TRUE" => V::Bool(true),
                "FALSE" => V::Bool(false),
                "UNKNOWN" => V::Null,
                _ => return Err(cant(v, t)),
            },
            V::Int(i) => V::Bool(*i != 0),
            _ => return Err(cant(v, t)),
        },
        SqlType::TinyInt | SqlType::SmallInt | SqlType::Integer | SqlType::BigInt => {
            let i = match v {
                V::Int(i) => Some(*i as i128),
                V::Double(d) if d.is_finite() => Some(d.trunc() as i128),
                V::Decimal(d) => Some(d.mant / POW10[d.scale as usize]),
                V::Bool(b) => Some(*b as i128),
                V::Str(s) => {
                    let s = s.trim();
                    match s.parse::<i128>() {
                        Ok(i) => Some(i),
                        Err(_) => Dec::parse(s).map(|d| d.mant / POW10[d.scale as usize]),
                    }
                }
                _ => None,
            };
            let (lo, hi) = int_range(t);
            match i {
                Some(i) if i >= lo as i128 && i <= hi as i128 => V::Int(i as i64),
                Some(_) => {
                    return fail(format!(
                        "Value '{}' is out of range for {t}",
                        v.to_text().unwrap_or_default()
                    ))
                }
                None => return Err(cant(v, t)),
            }
        }
        SqlType::Real | SqlType::Double => {
            let f = match v {
                V::Str(s) => s.trim().parse::<f64>().ok(),
                V::Bool(b) => Some(*b as i64 as f64),
                other => other.as_f64(),
            };
            match f {
                // REAL keeps float precision and reads as its shortest
                // float text (1.1, not 1.100000023841858).
                Some(f) if t == SqlType::Real => {
                    let r = f as f32;
                    V::Double(if r.is_finite() {
                        r.to_string().parse().unwrap_or(r as f64)
                    } else {
                        r as f64
                    })
                }
                Some(f) => V::Double(f),
                None => return Err(cant(v, t)),
            }
        }
        SqlType::Decimal(p, s) => {
            let d = match v {
                V::Int(i) => Some(Dec::from_i64(*i)),
                V::Decimal(d) => Some(*d),
                V::Double(f) => Dec::from_f64(*f, s),
                V::Str(x) => Dec::parse(x),
                _ => None,
            };
            let d = d.ok_or_else(|| cant(v, t))?.rescale(s);
            match d {
                Some(d) if d.int_digits() <= (p - s) as u32 => V::Decimal(d),
                _ => {
                    return fail(format!(
                        "Value '{}' is out of range for {t}",
                        v.to_text().unwrap_or_default()
                    ))
                }
            }
        }
        SqlType::Char(n) | SqlType::Varchar(n) => {
            let text = v.to_text().unwrap_or_default();
            let mut s: String = text.chars().take(n as usize).collect();
            if let SqlType::Char(n) = t {
                let len = s.chars().count();
                s.extend(std::iter::repeat_n(' ', n as usize - len));
            }
            V::str(s)
        }
        SqlType::Timestamp => match v {
            V::Timestamp(ms) => V::Timestamp(*ms),
            V::Date(d) => V::Timestamp(*d as i64 * DAY_MS),
            V::Str(s) => V::Timestamp(parse_timestamp(s).ok_or_else(|| cant(v, t))?),
            _ => return Err(cant(v, t)),
        },
        SqlType::Date => match v {
            V::Date(d) => V::Date(*d),
            V::Timestamp(ms) => V::Date(ms.div_euclid(DAY_MS) as i32),
            V::Str(s) => {
                let s = s.trim();
                let d = parse_date(s)
                    .or_else(|| parse_timestamp(s).map(|ms| ms.div_euclid(DAY_MS) as i32));
                V::Date(d.ok_or_else(|| cant(v, t))?)
            }
            _ => return Err(cant(v, t)),
        },
        SqlType::Time => match v {
            V::Time(ms) => V::Time(*ms),
            V::Timestamp(ms) => V::Time(ms.rem_euclid(DAY_MS)),
            V::Str(s) => V::Time(parse_time(s.trim()).ok_or_else(|| cant(v, t))?),
            _ => return Err(cant(v, t)),
        },
        SqlType::Varbinary(n) => match v {
            V::Bytes(b) => V::Bytes(b[..b.len().min(n as usize)].into()),
            V::Str(s) => V::Bytes(s.as_bytes()[..s.len().min(n as usize)].into()),
            _ => return Err(cant(v, t)),
        },
        SqlType::IntervalDay => match v {
            V::Interval(ms) => V::Interval(*ms),
            _ => return Err(cant(v, t)),
        },
        SqlType::IntervalMonth => match v {
            V::Months(m) => V::Months(*m),
            _ => return Err(cant(v, t)),
        },
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_parse_as_written() {
        assert_eq!(SqlType::parse("VARCHAR(16)"), Some(SqlType::Varchar(16)));
        assert_eq!(
            SqlType::parse("decimal(10, 2)"),
            Some(SqlType::Decimal(10, 2))
        );
        assert_eq!(SqlType::parse("DOUBLE"), Some(SqlType::Double));
        assert_eq!(SqlType::parse("VARCHAR"), None);
        assert_eq!(SqlType::parse("DECIMAL(2,3)"), None);
        assert_eq!(SqlType::parse("TEXT"), None);
    }

    #[test]
    fn decimals_are_exact() {
        let a = Dec::parse("0.1").unwrap();
        let b = Dec::parse("0.2").unwrap();
        assert_eq!(Dec::checked_add(a, b).unwrap().to_string(), "0.3");
        assert_eq!(
            Dec::parse("-1.005")
                .unwrap()
                .rescale(2)
                .unwrap()
                .to_string(),
            "-1.01"
        );
        assert_eq!(
            Dec::checked_div(Dec::from_i64(1), Dec::from_i64(3))
                .unwrap()
                .to_string(),
            "0.333333"
        );
        assert_eq!(Dec::parse("1e3").unwrap().to_string(), "1000");
        assert_eq!(Dec::parse("-0.05").unwrap().to_string(), "-0.05");
        assert!(Dec::parse("1.2.3").is_none());
        assert_eq!(
            Dec::parse("1e-100").unwrap().to_string(),
            "0.00000000000000000000000000000000000000"
        );
        assert_eq!(Dec::parse("1e-2147483648").unwrap().mant, 0);
        assert!(Dec::parse("1e2147483647").is_none());
        assert!(parse_date("9223372036854775807-01-01").is_none());
    }

    #[test]
    fn casts() {
        assert_eq!(
            cast(&Value::str(" 42 "), SqlType::Integer).unwrap(),
            Value::Int(42)
        );
        assert_eq!(
            cast(&Value::str("300"), SqlType::TinyInt).unwrap_err().0,
            "Value '300' is out of range for TINYINT"
        );
        assert_eq!(
            cast(&Value::str("abc"), SqlType::Double).unwrap_err().0,
            "Cannot cast VARCHAR value 'abc' to DOUBLE"
        );
        assert_eq!(
            cast(&Value::str("2024-02-29 10:11:12.5"), SqlType::Timestamp)
                .unwrap()
                .to_text()
                .unwrap(),
            "2024-02-29 10:11:12.500"
        );
        assert!(cast(&Value::str("2023-02-29"), SqlType::Date).is_err());
        assert_eq!(
            cast(&Value::str("abcdef"), SqlType::Varchar(3)).unwrap(),
            Value::str("abc")
        );
        assert_eq!(
            cast(&Value::Double(12.345), SqlType::Decimal(5, 2))
                .unwrap()
                .to_text()
                .unwrap(),
            "12.35"
        );
        assert!(cast(&Value::Double(1234.5), SqlType::Decimal(4, 2)).is_err());
        assert_eq!(format_double(3.0), "3.0");
        assert_eq!(format_double(0.25), "0.25");
        assert_eq!(format_double(1e10), "1.0E10");
        assert_eq!(format_timestamp(0), "1970-01-01 00:00:00");
    }
}
