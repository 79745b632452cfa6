//! The scalar functions of the Kinesis Analytics SQL dialect, looked up
//! by upper-case name and argument count.
//!
//! Functions with special syntax come through [`lookup`] under these
//! names, their arguments in this order:
//!
//! - `SUBSTRING(s FROM a [FOR n])`: `SUBSTRING` (s, a[, n]); with a
//!   string for `a`, the first match of that regular expression;
//! - `SUBSTRING(s SIMILAR p ESCAPE e)`: `SUBSTRING_SIMILAR` (s, p, e);
//! - `POSITION(needle IN haystack)`: `POSITION` (needle, haystack);
//! - `TRIM([spec] [chars] FROM s)`: `TRIM` (`'BOTH'|'LEADING'|'TRAILING'`,
//!   chars, s);
//! - `OVERLAY(s PLACING r FROM a [FOR n])`: `OVERLAY` (s, r, a[, n]);
//! - `FLOOR(x TO unit)`, `CEIL(x TO unit)`: `FLOOR_TO`, `CEIL_TO` (x, unit);
//! - `EXTRACT(unit FROM x)`: `EXTRACT` (unit, x);
//! - `STEP(x BY step)`: `STEP` (x, step).
//!
//! NULL arguments give NULL except where a function says otherwise
//! (COALESCE, NULLIF, TIMESTAMP_TO_CHAR). Strings are counted in
//! characters. Wrong kinds of arguments and arithmetic overflow are
//! [`EvalError`]s. The log parsers live in [`super::logparse`], date
//! patterns in [`super::datefmt`].

use std::cell::RefCell;
use std::rc::Rc;

use regex_lite::{Captures, Regex};

use super::datefmt;
use super::logparse;
use super::value::{
    civil_from_days, days_from_civil, fail, Dec, EvalError, EvalResult, Value, DAY_MS,
};

pub type ScalarFn = fn(&[Value]) -> EvalResult<Value>;

/// A scalar function by its upper-case name and argument count:
/// `Some(Ok(f))`; `Some(Err(message))` when the name is known but not with
/// that many arguments; `None` when the name is unknown.
pub fn lookup(name: &str, argc: usize) -> Option<Result<ScalarFn, String>> {
    let (f, ok): (ScalarFn, bool) = match name {
        // Strings.
        "CHAR_LENGTH" | "CHARACTER_LENGTH" => (char_length, argc == 1),
        "UPPER" => (upper, argc == 1),
        "LOWER" => (lower, argc == 1),
        "INITCAP" => (initcap, argc == 1),
        "POSITION" => (position, argc == 2),
        "SUBSTRING" => (substring, argc == 2 || argc == 3),
        "SUBSTRING_SIMILAR" => (substring_similar, argc == 3),
        "OVERLAY" => (overlay, argc == 3 || argc == 4),
        "TRIM" => (trim, argc == 3),
        "REGEX_REPLACE" => (regex_replace, argc == 5),
        // Numbers.
        "ABS" => (abs, argc == 1),
        "CEIL" | "CEILING" => (ceil, argc == 1),
        "FLOOR" => (floor, argc == 1),
        "EXP" => (exp, argc == 1),
        "LN" => (ln, argc == 1),
        "LOG10" => (log10, argc == 1),
        "MOD" => (modulo, argc == 2),
        "POWER" => (power, argc == 2),
        "STEP" => (step, argc == 2),
        // NULLs.
        "COALESCE" => (coalesce, argc >= 1),
        "NULLIF" => (nullif, argc == 2),
        // Dates and times.
        "FLOOR_TO" => (floor_to, argc == 2),
        "CEIL_TO" => (ceil_to, argc == 2),
        "EXTRACT" => (extract, argc == 2),
        "TSDIFF" => (tsdiff, argc == 2),
        "TO_TIMESTAMP" => (to_timestamp, argc == 1),
        "UNIX_TIMESTAMP" => (unix_timestamp, argc == 1),
        "TIMESTAMP_TO_CHAR" => (timestamp_to_char, argc == 2),
        "DATE_TO_CHAR" => (date_to_char, argc == 2),
        "TIME_TO_CHAR" => (time_to_char, argc == 2),
        "CHAR_TO_TIMESTAMP" => (char_to_timestamp, argc == 2),
        "CHAR_TO_DATE" => (char_to_date, argc == 2),
        "CHAR_TO_TIME" => (char_to_time, argc == 2),
        // Log parsing.
        "REGEX_LOG_PARSE" => (logparse::regex_log_parse, argc == 2 || argc == 3),
        "FAST_REGEX_LOG_PARSER" => (logparse::fast_regex_log_parser, argc == 2 || argc == 3),
        "W3C_LOG_PARSE" => (logparse::w3c_log_parse, argc == 2),
        "VARIABLE_COLUMN_LOG_PARSE" => {
            (logparse::variable_column_log_parse, (3..=5).contains(&argc))
        }
        "FIXED_COLUMN_LOG_PARSE" => (logparse::fixed_column_log_parse, argc == 2),
        "SYS_LOG_PARSE" => (logparse::sys_log_parse, argc == 1),
        _ => return None,
    };
    Some(if ok {
        Ok(f)
    } else {
        Err(format!(
            "No match found for function signature {name}({})",
            vec!["<ANY>"; argc].join(", ")
        ))
    })
}

// ---------------------------------------------------------------------
// Argument helpers.

pub(super) fn any_null(args: &[Value]) -> bool {
    args.iter().any(Value::is_null)
}

fn wrong(func: &str, pos: usize, v: &Value, expected: &str) -> EvalError {
    EvalError(format!(
        "Cannot apply {func} to argument {pos} of type {}: expected {expected}",
        v.type_name()
    ))
}

pub(super) fn text<'a>(func: &str, args: &'a [Value], i: usize) -> EvalResult<&'a str> {
    match &args[i] {
        Value::Str(s) => Ok(s),
        v => Err(wrong(func, i + 1, v, "a character string")),
    }
}

/// An integer: BIGINT, or a DECIMAL or DOUBLE with no fraction.
pub(super) fn int(func: &str, args: &[Value], i: usize) -> EvalResult<i64> {
    let v = &args[i];
    let r = match v {
        Value::Int(n) => Some(*n),
        Value::Decimal(d) => d
            .rescale(0)
            .filter(|r| Dec::cmp(r, d).is_eq())
            .and_then(|r| i64::try_from(r.mant).ok()),
        Value::Double(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Some(*f as i64),
        _ => None,
    };
    r.ok_or_else(|| wrong(func, i + 1, v, "an integer"))
}

fn double(func: &str, args: &[Value], i: usize) -> EvalResult<f64> {
    args[i]
        .as_f64()
        .ok_or_else(|| wrong(func, i + 1, &args[i], "a number"))
}

pub(super) fn chars(s: &str) -> Vec<char> {
    s.chars().collect()
}

fn overflow(func: &str) -> EvalError {
    EvalError(format!("{func}: numeric overflow"))
}

// ---------------------------------------------------------------------
// Strings.

fn char_length(args: &[Value]) -> EvalResult<Value> {
    if any_null(args) {
        return Ok(Value::Null);
    }
    Ok(Value::Int(
        text("CHAR_LENGTH", args, 0)?.chars().count() as i64
    ))
}

fn upper(args: &[Value]) -> EvalResult<Value> {
    if any_null(args) {
        return Ok(Value::Null);
    }
    Ok(Value::str(text("UPPER", args, 0)?.to_uppercase()))
}

fn lower(args: &[Value]) -> EvalResult<Value> {
    if any_null(args) {
        return Ok(Value::Null);
    }
    Ok(Value::str(text("LOWER", args, 0)?.to_lowercase()))
}

/// First letter of each blank-separated word upper-cased, the rest lower.
fn initcap(args: &[Value]) -> EvalResult<Value> {
    if any_null(args) {
        return Ok(Value::Null);
    }
    let mut out = String::new();
    let mut start = true;
    for c in text("INITCAP", args, 0)?.chars() {
        if c.is_whitespace() {
            out.push(c);
            start = true;
        } else if start {
            out.extend(c.to_uppercase());
            start = false;
        } else {
            out.extend(c.to_lowercase());
        }
    }
    Ok(Value::str(out))
}

/// 1-based character position of the first occurrence, 0 when absent.
fn position(args: &[Value]) -> EvalResult<Value> {
    if any_null(args) {
        return Ok(Value::Null);
    }
    let needle = text("POSITION", args, 0)?;
    let hay = text("POSITION", args, 1)?;
    Ok(Value::Int(match hay.find(needle) {
        Some(b) => hay[..b].chars().count() as i64 + 1,
        None => 0,
    }))
}

/// Characters from 1-based `start` for `len` (to the end when None), SQL
/// standard style: a start before 1 shortens the length.
fn substr(s: &str, start: i64, len: Option<i64>) -> String {
    let cs = chars(s);
    let end = match len {
        Some(n) => start.saturating_add(n),
        None => i64::MAX,
    };
    let from = start.max(1);
    let to = end.min(cs.len() as i64 + 1);
    if to <= from {
        return String::new();
    }
    cs[(from - 1) as usize..(to - 1) as usize].iter().collect()
}

fn substring(args: &[Value]) -> EvalResult<Value> {
    if any_null(args) {
        return Ok(Value::Null);
    }
    let s = text("SUBSTRING", args, 0)?;
    if let Value::Str(pattern) = &args[1] {
        // SUBSTRING(s FROM regex): the first match, NULL when none.
        if args.len() == 3 {
            return Err(wrong("SUBSTRING", 3, &args[2], "no length with a pattern"));
        }
        let re = regex(pattern)?;
        return Ok(re.find(s).map_or(Value::Null, |m| Value::str(m.as_str())));
    }
    let start = int("SUBSTRING", args, 1)?;
    let len = match args.get(2) {
        Some(_) => {
            let n = int("SUBSTRING", args, 2)?;
            if n < 0 {
                return fail(format!("Substring error: negative length {n}"));
            }
            Some(n)
        }
        None => None,
    };
    Ok(Value::str(substr(s, start, len)))
}

/// A SQL `SIMILAR TO` pattern as a regular expression; `escape` followed
/// by `"` marks the returned part (as `(`...`)`), by anything else a
/// literal.
fn similar_to_regex(pattern: &str, escape: char) -> EvalResult<(String, usize)> {
    let cs = chars(pattern);
    let mut out = String::new();
    let mut marks = 0;
    let mut i = 0;
    let mut in_class = false;
    while i < cs.len() {
        let c = cs[i];
        if c == escape {
            let Some(&next) = cs.get(i + 1) else {
                return fail("SUBSTRING: invalid escape sequence at the end of the pattern");
            };
            if next == '"' && !in_class {
                marks += 1;
                out.push_str(if marks == 1 { "){1,1}?(" } else { "){1,1}(?:" });
            } else {
                out.push_str(&regex_lite::escape(next.encode_utf8(&mut [0; 4])));
            }
            i += 2;
            continue;
        }
        match c {
            '[' if !in_class => {
                in_class = true;
                out.push('[');
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            _ if in_class => {
                if c == '\\' {
                    out.push_str("\\\\");
                } else {
                    out.push(c);
                }
            }
            '%' => out.push_str(".*"),
            '_' => out.push('.'),
            '|' | '*' | '+' | '?' | '{' | '}' | '(' | ')' => out.push(c),
            _ => out.push_str(&regex_lite::escape(c.encode_utf8(&mut [0; 4]))),
        }
        i += 1;
    }
    Ok((format!("(?s)^(?:{out})$"), marks))
}

/// SUBSTRING(s SIMILAR pattern ESCAPE e): the part of `s` between the
/// pattern's two escaped double quotes, the whole pattern matching all of
/// `s`; NULL when it does not.
fn substring_similar(args: &[Value]) -> EvalResult<Value> {
    if any_null(args) {
        return Ok(Value::Null);
    }
    let s = text("SUBSTRING", args, 0)?;
    let pattern = text("SUBSTRING", args, 1)?;
    let mut esc = text("SUBSTRING", args, 2)?.chars();
    let escape = match (esc.next(), esc.next()) {
        (Some(c), None) => c,
        _ => return fail("SUBSTRING: the escape must be exactly 1 character"),
    };
    let (re, marks) = similar_to_regex(pattern, escape)?;
    if marks != 2 {
        return fail(format!(
            "SUBSTRING: invalid use of escape character: the pattern '{pattern}' needs exactly two {escape}\""
        ));
    }
    let re = regex(&re)?;
    Ok(re
        .captures(s)
        .and_then(|c| c.get(1))
        .map_or(Value::Null, |m| Value::str(m.as_str())))
}

/// `s[..a-1] || r || s[a-1+n..]`, n defaulting to the length of r.
fn overlay(args: &[Value]) -> EvalResult<Value> {
    if any_null(args) {
        return Ok(Value::Null);
    }
    let s = text("OVERLAY", args, 0)?;
    let r = text("OVERLAY", args, 1)?;
    let start = int("OVERLAY", args, 2)?;
    let len = match args.get(3) {
        Some(_) => int("OVERLAY", args, 3)?,
        None => r.chars().count() as i64,
    };
    if len < 0 {
        return fail(format!("Overlay error: negative length {len}"));
    }
    let mut out = substr(s, 1, Some(start.saturating_sub(1).max(0)));
    out.push_str(r);
    out.push_str(&substr(s, start.saturating_add(len), None));
    Ok(Value::str(out))
}

fn trim(args: &[Value]) -> EvalResult<Value> {
    if any_null(args) {
        return Ok(Value::Null);
    }
    let spec = text("TRIM", args, 0)?;
    let set = text("TRIM", args, 1)?;
    let s = text("TRIM", args, 2)?;
    let mut it = set.chars();
    let c = match (it.next(), it.next()) {
        (Some(c), None) => c,
        _ => return fail("Trim error: trim character must be exactly 1 character"),
    };
    let out = match spec.to_ascii_uppercase().as_str() {
        "BOTH" => s.trim_matches(c),
        "LEADING" => s.trim_start_matches(c),
        "TRAILING" => s.trim_end_matches(c),
        other => return fail(format!("TRIM: unknown trim specification '{other}'")),
    };
    Ok(Value::str(out))
}

thread_local! {
    static REGEXES: RefCell<Vec<(String, Rc<Regex>)>> = const { RefCell::new(Vec::new()) };
}

/// A compiled regular expression, from a small per-thread cache (the
/// patterns are nearly always literals).
pub(super) fn regex(pattern: &str) -> EvalResult<Rc<Regex>> {
    REGEXES.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(i) = cache.iter().position(|(p, _)| p == pattern) {
            let hit = cache.remove(i);
            let re = hit.1.clone();
            cache.insert(0, hit);
            return Ok(re);
        }
        let re = Rc::new(
            Regex::new(pattern)
                .map_err(|e| EvalError(format!("Invalid regular expression '{pattern}': {e}")))?,
        );
        cache.insert(0, (pattern.to_string(), re.clone()));
        cache.truncate(16);
        Ok(re)
    })
}

/// Java's replacement syntax: `$n` and `${name}` are groups, `\x` is x.
fn expand(re: &Regex, caps: &Captures, repl: &str, out: &mut String) -> EvalResult<()> {
    let cs = chars(repl);
    let mut i = 0;
    while i < cs.len() {
        match cs[i] {
            '\\' => {
                let Some(&c) = cs.get(i + 1) else {
                    return fail("REGEX_REPLACE: character to be escaped is missing");
                };
                out.push(c);
                i += 2;
            }
            '$' if cs.get(i + 1) == Some(&'{') => {
                let close = cs[i..].iter().position(|&c| c == '}').map(|p| p + i);
                let Some(close) = close else {
                    return fail("REGEX_REPLACE: named capturing group is missing trailing '}'");
                };
                let name: String = cs[i + 2..close].iter().collect();
                if !re.capture_names().any(|n| n == Some(name.as_str())) {
                    return fail(format!("REGEX_REPLACE: no group with name {{{name}}}"));
                }
                if let Some(m) = caps.name(&name) {
                    out.push_str(m.as_str());
                }
                i = close + 1;
            }
            '$' => {
                // Java takes as many digits as still name a group.
                let mut j = i + 1;
                let mut group: Option<usize> = None;
                while let Some(d) = cs.get(j).and_then(|c| c.to_digit(10)) {
                    let g = group.unwrap_or(0) * 10 + d as usize;
                    if group.is_some() && g >= caps.len() {
                        break;
                    }
                    group = Some(g);
                    j += 1;
                }
                let Some(g) = group else {
                    return fail("REGEX_REPLACE: illegal group reference");
                };
                if g >= caps.len() {
                    return fail(format!("REGEX_REPLACE: no group {g}"));
                }
                if let Some(m) = caps.get(g) {
                    out.push_str(m.as_str());
                }
                i = j;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(())
}

/// REGEX_REPLACE(original, regex, replacement, startPosition, occurrence):
/// from the 1-based start, replace every match (occurrence 0) or only the
/// n-th.
fn regex_replace(args: &[Value]) -> EvalResult<Value> {
    if any_null(args) {
        return Ok(Value::Null);
    }
    const F: &str = "REGEX_REPLACE";
    let s = text(F, args, 0)?;
    let re = regex(text(F, args, 1)?)?;
    let repl = text(F, args, 2)?;
    let start = int(F, args, 3)?;
    let occurrence = int(F, args, 4)?;
    if start < 1 {
        return fail(format!("{F}: start position {start} is less than 1"));
    }
    if occurrence < 0 {
        return fail(format!("{F}: occurrence {occurrence} is less than 0"));
    }
    let Some((from, _)) = s.char_indices().nth(start as usize - 1) else {
        return Ok(Value::str(s));
    };
    let mut out = String::from(&s[..from]);
    let mut last = from;
    let mut at = from;
    let mut n = 0;
    while at <= s.len() {
        let Some(caps) = re.captures_at(s, at) else {
            break;
        };
        let m = caps.get(0).expect("group 0");
        n += 1;
        if occurrence == 0 || n == occurrence {
            out.push_str(&s[last..m.start()]);
            expand(&re, &caps, repl, &mut out)?;
            last = m.end();
            if occurrence != 0 {
                break;
            }
        }
        at = if m.end() > m.start() {
            m.end()
        } else {
            // An empty match: step over one character.
            match s[m.end()..].chars().next() {
                Some(c) => m.end() + c.len_utf8(),
                None => break,
            }
        };
    }
    out.push_str(&s[last..]);
    Ok(Value::str(out))
}

// ---------------------------------------------------------------------
// Numbers.

fn abs(args: &[Value]) -> EvalResult<Value> {
    Ok(match &args[0] {
        Value::Null => Value::Null,
        Value::Int(i) => Value::Int(i.checked_abs().ok_or_else(|| overflow("ABS"))?),
        Value::Double(d) => Value::Double(d.abs()),
        Value::Decimal(d) => Value::Decimal(Dec::new(
            d.mant.checked_abs().ok_or_else(|| overflow("ABS"))?,
            d.scale,
        )),
        Value::Interval(ms) => Value::Interval(ms.checked_abs().ok_or_else(|| overflow("ABS"))?),
        v => return Err(wrong("ABS", 1, v, "a number")),
    })
}

/// FLOOR or CEIL of a number, keeping its kind (a DECIMAL gets scale 0).
fn round_to_int(func: &str, args: &[Value], up: bool) -> EvalResult<Value> {
    Ok(match &args[0] {
        Value::Null => Value::Null,
        Value::Int(i) => Value::Int(*i),
        Value::Double(d) => Value::Double(if up { d.ceil() } else { d.floor() }),
        Value::Decimal(d) => {
            let f = 10i128.pow(d.scale as u32);
            let (q, r) = (d.mant.div_euclid(f), d.mant.rem_euclid(f));
            Value::Decimal(Dec::new(if up && r != 0 { q + 1 } else { q }, 0))
        }
        v => {
            return Err(wrong(
                func,
                1,
                v,
                "a number (use FLOOR(x TO unit) for times)",
            ))
        }
    })
}

fn floor(args: &[Value]) -> EvalResult<Value> {
    round_to_int("FLOOR", args, false)
}

fn ceil(args: &[Value]) -> EvalResult<Value> {
    round_to_int("CEIL", args, true)
}

fn exp(args: &[Value]) -> EvalResult<Value> {
    if any_null(args) {
        return Ok(Value::Null);
    }
    Ok(Value::Double(double("EXP", args, 0)?.exp()))
}

fn logarithm(func: &str, args: &[Value], f: fn(f64) -> f64) -> EvalResult<Value> {
    if any_null(args) {
        return Ok(Value::Null);
    }
    let x = double(func, args, 0)?;
    if x <= 0.0 {
        return fail(format!(
            "{func}: cannot take logarithm of zero or negative number {}",
            args[0].to_text().unwrap_or_default()
        ));
    }
    Ok(Value::Double(f(x)))
}

fn ln(args: &[Value]) -> EvalResult<Value> {
    logarithm("LN", args, f64::ln)
}

fn log10(args: &[Value]) -> EvalResult<Value> {
    logarithm("LOG10", args, f64::log10)
}

/// MOD of integers (scale 0), with the sign of the dividend.
fn modulo(args: &[Value]) -> EvalResult<Value> {
    if any_null(args) {
        return Ok(Value::Null);
    }
    let exact = |i: usize| -> EvalResult<(i128, bool)> {
        match &args[i] {
            Value::Int(n) => Ok((*n as i128, false)),
            Value::Decimal(d) if d.scale == 0 => Ok((d.mant, true)),
            v => Err(wrong("MOD", i + 1, v, "an integer (scale 0)")),
        }
    };
    let (a, da) = exact(0)?;
    let (b, db) = exact(1)?;
    if b == 0 {
        return fail("MOD: division by zero");
    }
    let r = a.wrapping_rem(b);
    Ok(if da || db {
        Value::Decimal(Dec::new(r, 0))
    } else {
        Value::Int(r as i64)
    })
}

fn power(args: &[Value]) -> EvalResult<Value> {
    if any_null(args) {
        return Ok(Value::Null);
    }
    let x = double("POWER", args, 0)?;
    let y = double("POWER", args, 1)?;
    Ok(Value::Double(x.powf(y)))
}

/// STEP(x BY step): x rounded down to a multiple of step (integers), or
/// to a multiple of an interval since the epoch (dates and times).
fn step(args: &[Value]) -> EvalResult<Value> {
    if any_null(args) {
        return Ok(Value::Null);
    }
    let positive = |n: i64| -> EvalResult<i64> {
        if n <= 0 {
            fail(format!("STEP: the step must be positive, not {n}"))
        } else {
            Ok(n)
        }
    };
    let floor_ms = |x: i64, s: i64| x - x.rem_euclid(s);
    Ok(match (&args[0], &args[1]) {
        (Value::Timestamp(t), Value::Interval(s)) => Value::Timestamp(floor_ms(*t, positive(*s)?)),
        (Value::Time(t), Value::Interval(s)) => Value::Time(floor_ms(*t, positive(*s)?)),
        (Value::Date(d), Value::Interval(s)) => {
            let ms = floor_ms(*d as i64 * DAY_MS, positive(*s)?);
            Value::Date(ms.div_euclid(DAY_MS) as i32)
        }
        (Value::Timestamp(_) | Value::Date(_), Value::Months(m)) => {
            let m = positive(*m)?;
            let (y, mo, _) = civil_from_days(split(&args[0]).0);
            let months = (y - 1970) * 12 + mo as i64 - 1;
            let months = months - months.rem_euclid(m);
            let days = days_from_civil(
                1970 + months.div_euclid(12),
                months.rem_euclid(12) as u32 + 1,
                1,
            );
            rebuild(&args[0], days, 0)?
        }
        (Value::Int(_) | Value::Decimal(_) | Value::Double(_), _) => {
            let x = int("STEP", args, 0)?;
            let s = positive(int("STEP", args, 1)?)?;
            Value::Int(x - x.rem_euclid(s))
        }
        (Value::Timestamp(_) | Value::Date(_) | Value::Time(_), s) => {
            return Err(wrong("STEP", 2, s, "an INTERVAL"))
        }
        (x, _) => return Err(wrong("STEP", 1, x, "an integer, DATE, TIME or TIMESTAMP")),
    })
}

// ---------------------------------------------------------------------
// NULLs.

fn coalesce(args: &[Value]) -> EvalResult<Value> {
    Ok(args
        .iter()
        .find(|v| !v.is_null())
        .cloned()
        .unwrap_or(Value::Null))
}

fn nullif(args: &[Value]) -> EvalResult<Value> {
    Ok(match args[0].compare(&args[1]) {
        Some(std::cmp::Ordering::Equal) => Value::Null,
        _ => args[0].clone(),
    })
}

// ---------------------------------------------------------------------
// Dates and times.

/// (day number, milliseconds of the day) of a DATE, TIME or TIMESTAMP.
fn split(v: &Value) -> (i64, i64) {
    match v {
        Value::Timestamp(ms) => (ms.div_euclid(DAY_MS), ms.rem_euclid(DAY_MS)),
        Value::Date(d) => (*d as i64, 0),
        Value::Time(t) => (0, *t),
        _ => (0, 0),
    }
}

/// A value of the same kind as `like` from a day number and time of day.
fn rebuild(like: &Value, days: i64, tod: i64) -> EvalResult<Value> {
    let out_of_range = || EvalError(format!("{} value out of range", like.type_name()));
    Ok(match like {
        Value::Date(_) => Value::Date(i32::try_from(days).map_err(|_| out_of_range())?),
        Value::Time(_) => Value::Time(tod.rem_euclid(DAY_MS)),
        _ => Value::Timestamp(
            days.checked_mul(DAY_MS)
                .and_then(|ms| ms.checked_add(tod))
                .ok_or_else(out_of_range)?,
        ),
    })
}

fn unit(func: &str, args: &[Value], i: usize) -> EvalResult<String> {
    Ok(text(func, args, i)?.trim().to_ascii_uppercase())
}

/// FLOOR(x TO unit), or the ceiling when `up`.
fn round_time(func: &str, args: &[Value], up: bool) -> EvalResult<Value> {
    if any_null(args) {
        return Ok(Value::Null);
    }
    let x = &args[0];
    if !matches!(x, Value::Timestamp(_) | Value::Date(_) | Value::Time(_)) {
        return Err(wrong(func, 1, x, "a DATE, TIME or TIMESTAMP"));
    }
    let u = unit(func, args, 1)?;
    let (days, tod) = split(x);
    let is_time = matches!(x, Value::Time(_));
    let by_ms = |step: i64| -> EvalResult<Value> {
        let floor = tod - tod % step;
        let t = if up && floor != tod {
            floor + step
        } else {
            floor
        };
        rebuild(x, days, t)
    };
    let (y, m, _) = civil_from_days(days);
    // Calendar units: the first day of the period and the next one.
    let period = |first: i64, next: i64| -> EvalResult<Value> {
        if up && (first != days || tod != 0) {
            rebuild(x, next, 0)
        } else {
            rebuild(x, first, 0)
        }
    };
    let calendar = !matches!(u.as_str(), "HOUR" | "MINUTE" | "SECOND" | "MILLISECOND");
    if is_time && calendar {
        return fail(format!("{func}: cannot round a TIME to {u}"));
    }
    match u.as_str() {
        "MILLISECOND" => Ok(x.clone()),
        "SECOND" => by_ms(1000),
        "MINUTE" => by_ms(60_000),
        "HOUR" => by_ms(3_600_000),
        "DAY" => period(days, days + 1),
        "WEEK" => {
            // Weeks start on Sunday.
            let first = days - (days + 4).rem_euclid(7);
            period(first, first + 7)
        }
        "MONTH" => {
            let next = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            period(days_from_civil(y, m, 1), days_from_civil(next.0, next.1, 1))
        }
        "QUARTER" => {
            let q = (m - 1) / 3 * 3 + 1;
            let next = if q == 10 { (y + 1, 1) } else { (y, q + 3) };
            period(days_from_civil(y, q, 1), days_from_civil(next.0, next.1, 1))
        }
        "YEAR" => period(days_from_civil(y, 1, 1), days_from_civil(y + 1, 1, 1)),
        _ => fail(format!("{func}: unknown time unit '{u}'")),
    }
}

fn floor_to(args: &[Value]) -> EvalResult<Value> {
    round_time("FLOOR", args, false)
}

fn ceil_to(args: &[Value]) -> EvalResult<Value> {
    round_time("CEIL", args, true)
}

/// EXTRACT(unit FROM x): BIGINT, except SECOND, which is DECIMAL(5,3)
/// with the milliseconds.
fn extract(args: &[Value]) -> EvalResult<Value> {
    if any_null(args) {
        return Ok(Value::Null);
    }
    let u = unit("EXTRACT", args, 0)?;
    let x = &args[1];
    let seconds = |ms: i64| Value::Decimal(Dec::new((ms % 60_000) as i128, 3));
    let cant = || fail(format!("Cannot extract {u} from {}", x.type_name()));
    let v = match x {
        Value::Interval(ms) => match u.as_str() {
            "DAY" => ms / DAY_MS,
            "HOUR" => ms % DAY_MS / 3_600_000,
            "MINUTE" => ms % 3_600_000 / 60_000,
            "SECOND" => return Ok(seconds(*ms)),
            _ => return cant(),
        },
        Value::Months(mo) => match u.as_str() {
            "YEAR" => mo / 12,
            "MONTH" => mo % 12,
            _ => return cant(),
        },
        Value::Timestamp(_) | Value::Date(_) | Value::Time(_) => {
            let (days, tod) = split(x);
            let has_date = !matches!(x, Value::Time(_));
            let has_time = !matches!(x, Value::Date(_));
            let (y, m, d) = civil_from_days(days);
            match u.as_str() {
                "YEAR" if has_date => y,
                "QUARTER" if has_date => (m as i64 - 1) / 3 + 1,
                "MONTH" if has_date => m as i64,
                "DAY" if has_date => d as i64,
                "DOY" if has_date => days - days_from_civil(y, 1, 1) + 1,
                "DOW" if has_date => (days + 4).rem_euclid(7) + 1,
                "HOUR" if has_time => tod / 3_600_000,
                "MINUTE" if has_time => tod / 60_000 % 60,
                "SECOND" if has_time => return Ok(seconds(tod)),
                _ => return cant(),
            }
        }
        v => {
            return Err(wrong(
                "EXTRACT",
                2,
                v,
                "a DATE, TIME, TIMESTAMP or INTERVAL",
            ))
        }
    };
    Ok(Value::Int(v))
}

/// Epoch milliseconds of a TIMESTAMP, DATE or BIGINT.
fn millis(func: &str, args: &[Value], i: usize) -> EvalResult<i64> {
    match &args[i] {
        Value::Timestamp(ms) => Ok(*ms),
        Value::Date(d) => Ok(*d as i64 * DAY_MS),
        Value::Int(ms) => Ok(*ms),
        v => Err(wrong(func, i + 1, v, "a TIMESTAMP or BIGINT milliseconds")),
    }
}

/// TSDIFF(startTime, endTime): endTime - startTime in milliseconds.
fn tsdiff(args: &[Value]) -> EvalResult<Value> {
    if any_null(args) {
        return Ok(Value::Null);
    }
    let a = millis("TSDIFF", args, 0)?;
    let b = millis("TSDIFF", args, 1)?;
    Ok(Value::Int(
        b.checked_sub(a).ok_or_else(|| overflow("TSDIFF"))?,
    ))
}

fn to_timestamp(args: &[Value]) -> EvalResult<Value> {
    if any_null(args) {
        return Ok(Value::Null);
    }
    Ok(Value::Timestamp(int("TO_TIMESTAMP", args, 0)?))
}

fn unix_timestamp(args: &[Value]) -> EvalResult<Value> {
    if any_null(args) {
        return Ok(Value::Null);
    }
    match &args[0] {
        Value::Timestamp(ms) => Ok(Value::Int(*ms)),
        Value::Date(d) => Ok(Value::Int(*d as i64 * DAY_MS)),
        v => Err(wrong("UNIX_TIMESTAMP", 1, v, "a TIMESTAMP")),
    }
}

fn format_with(func: &str, args: &[Value], ms: i64) -> EvalResult<Value> {
    let pattern = text(func, args, 0)?;
    datefmt::format(pattern, ms)
        .map(Value::str)
        .map_err(|e| EvalError(format!("{func}: {e}")))
}

/// TIMESTAMP_TO_CHAR(format, ts); a NULL timestamp gives the string
/// 'null', as AWS documents.
fn timestamp_to_char(args: &[Value]) -> EvalResult<Value> {
    const F: &str = "TIMESTAMP_TO_CHAR";
    match args {
        [Value::Null, _] => Ok(Value::Null),
        [_, Value::Null] => {
            text(F, args, 0)?;
            Ok(Value::str("null"))
        }
        [_, Value::Timestamp(ms)] => format_with(F, args, *ms),
        [_, Value::Date(d)] => format_with(F, args, *d as i64 * DAY_MS),
        [_, v] => Err(wrong(F, 2, v, "a TIMESTAMP")),
        _ => unreachable!("arity checked by lookup"),
    }
}

fn date_to_char(args: &[Value]) -> EvalResult<Value> {
    if any_null(args) {
        return Ok(Value::Null);
    }
    match &args[1] {
        Value::Date(d) => format_with("DATE_TO_CHAR", args, *d as i64 * DAY_MS),
        Value::Timestamp(ms) => format_with("DATE_TO_CHAR", args, *ms),
        v => Err(wrong("DATE_TO_CHAR", 2, v, "a DATE")),
    }
}

fn time_to_char(args: &[Value]) -> EvalResult<Value> {
    if any_null(args) {
        return Ok(Value::Null);
    }
    match &args[1] {
        Value::Time(t) => format_with("TIME_TO_CHAR", args, *t),
        Value::Timestamp(ms) => format_with("TIME_TO_CHAR", args, *ms),
        v => Err(wrong("TIME_TO_CHAR", 2, v, "a TIME")),
    }
}

fn parse_with(func: &str, args: &[Value], what: &str) -> EvalResult<Option<i64>> {
    if any_null(args) {
        return Ok(None);
    }
    let pattern = text(func, args, 0)?;
    let s = text(func, args, 1)?;
    datefmt::parse(pattern, s).map(Some).map_err(|e| {
        EvalError(format!(
            "Cannot parse '{s}' as {what} with format '{pattern}': {e}"
        ))
    })
}

fn char_to_timestamp(args: &[Value]) -> EvalResult<Value> {
    Ok(parse_with("CHAR_TO_TIMESTAMP", args, "TIMESTAMP")?.map_or(Value::Null, Value::Timestamp))
}

fn char_to_date(args: &[Value]) -> EvalResult<Value> {
    Ok(parse_with("CHAR_TO_DATE", args, "DATE")?
        .map_or(Value::Null, |ms| Value::Date(ms.div_euclid(DAY_MS) as i32)))
}

fn char_to_time(args: &[Value]) -> EvalResult<Value> {
    Ok(parse_with("CHAR_TO_TIME", args, "TIME")?
        .map_or(Value::Null, |ms| Value::Time(ms.rem_euclid(DAY_MS))))
}

/// Calling functions by name in tests (here and in the log parsers').
#[cfg(test)]
pub(crate) mod calls {
    use super::lookup;
    use crate::engine::value::{EvalResult, Value};

    pub(crate) fn call(name: &str, args: Vec<Value>) -> EvalResult<Value> {
        let f = lookup(name, args.len())
            .unwrap_or_else(|| panic!("{name} unknown"))
            .unwrap_or_else(|e| panic!("{e}"));
        f(&args)
    }

    pub(crate) fn ok(name: &str, args: Vec<Value>) -> Value {
        call(name, args).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    pub(crate) fn err(name: &str, args: Vec<Value>) -> String {
        match call(name, args) {
            Err(e) => e.0,
            Ok(v) => panic!("{name} gave {v:?}"),
        }
    }

    pub(crate) fn s(x: &str) -> Value {
        Value::str(x)
    }

    pub(crate) fn i(x: i64) -> Value {
        Value::Int(x)
    }
}

#[cfg(test)]
mod tests {
    use super::calls::*;
    use super::*;
    use crate::engine::value::parse_timestamp;

    fn dec(x: &str) -> Value {
        Value::Decimal(Dec::parse(x).unwrap())
    }

    fn ts(x: &str) -> Value {
        Value::Timestamp(parse_timestamp(x).unwrap())
    }

    fn text_of(v: Value) -> String {
        v.to_text().unwrap_or_else(|| "NULL".into())
    }

    #[test]
    fn lookup_knows_names_and_arities() {
        assert!(lookup("SUBSTRING_SIMILAR", 3).unwrap().is_ok());
        assert!(lookup("NO_SUCH_FUNCTION", 1).is_none());
        assert_eq!(
            lookup("SUBSTRING", 1).unwrap().err().unwrap(),
            "No match found for function signature SUBSTRING(<ANY>)"
        );
        assert_eq!(
            lookup("UPPER", 2).unwrap().err().unwrap(),
            "No match found for function signature UPPER(<ANY>, <ANY>)"
        );
        assert_eq!(
            lookup("COALESCE", 0).unwrap().err().unwrap(),
            "No match found for function signature COALESCE()"
        );
        assert!(lookup("CHARACTER_LENGTH", 1).unwrap().is_ok());
        assert!(lookup("CEILING", 1).unwrap().is_ok());
    }

    #[test]
    fn string_functions() {
        assert_eq!(ok("CHAR_LENGTH", vec![s("héllo wörld")]), i(11));
        assert_eq!(ok("CHAR_LENGTH", vec![Value::Null]), Value::Null);
        assert_eq!(ok("UPPER", vec![s("abcDEFghi123ß")]), s("ABCDEFGHI123SS"));
        assert_eq!(ok("LOWER", vec![s("ÀBC Ünï")]), s("àbc ünï"));
        assert_eq!(ok("UPPER", vec![s("")]), s(""));
        assert_eq!(
            ok("INITCAP", vec![s("every wORD gets  a cAPITAL éclair")]),
            s("Every Word Gets  A Capital Éclair")
        );
        assert_eq!(ok("POSITION", vec![s("lo"), s("héllo")]), i(4));
        assert_eq!(ok("POSITION", vec![s("x"), s("héllo")]), i(0));
        assert_eq!(ok("POSITION", vec![s(""), s("abc")]), i(1));
        assert!(err("UPPER", vec![i(3)]).contains("UPPER"));
    }

    #[test]
    fn substring_like_the_reference() {
        let d = || s("123456789");
        assert_eq!(ok("SUBSTRING", vec![d(), i(3), i(4)]), s("3456"));
        assert_eq!(ok("SUBSTRING", vec![d(), i(17), i(4)]), s(""));
        assert_eq!(ok("SUBSTRING", vec![d(), i(-1), i(4)]), s("12"));
        assert_eq!(ok("SUBSTRING", vec![d(), i(6), i(0)]), s(""));
        assert_eq!(ok("SUBSTRING", vec![d(), i(8), i(4)]), s("89"));
        assert_eq!(ok("SUBSTRING", vec![d(), i(7)]), s("789"));
        assert_eq!(
            ok("SUBSTRING", vec![s("日本語テキスト"), i(2), i(3)]),
            s("本語テ")
        );
        assert_eq!(ok("SUBSTRING", vec![d(), Value::Null]), Value::Null);
        assert_eq!(
            ok("SUBSTRING", vec![s("WIRELESS"), s("L[A-Z]+")]),
            s("LESS")
        );
        assert_eq!(ok("SUBSTRING", vec![s("WIRELESS"), s("Q")]), Value::Null);
        assert!(err("SUBSTRING", vec![d(), i(1), i(-1)]).contains("negative"));
        assert!(err("SUBSTRING", vec![d(), s("a"), i(1)]).contains("SUBSTRING"));
        let sim = |x: &str, p: &str| ok("SUBSTRING_SIMILAR", vec![s(x), s(p), s("#")]);
        assert_eq!(sim("abcabc", "a#\"bcab#\"c"), s("bcab"));
        assert_eq!(sim("abcabc", "a#\"%#\"c"), s("bcab"));
        assert_eq!(sim("abcabc", "_#\"%#\"_"), s("bcab"));
        assert_eq!(sim("abcabc", "#\"(abc)*#\""), s("abcabc"));
        assert_eq!(sim("abcabc", "#\"abc#\""), Value::Null);
        assert_eq!(sim("a.b ñ", "%#\"[.]b _#\""), s(".b ñ"));
        assert!(err("SUBSTRING_SIMILAR", vec![s("a"), s("a"), s("#")]).contains("escape"));
    }

    #[test]
    fn overlay_like_the_reference() {
        let o = |a: i64, n: Option<i64>| {
            let mut args = vec![s("abcde"), s("XYZ"), i(a)];
            args.extend(n.map(i));
            text_of(ok("OVERLAY", args))
        };
        assert_eq!(o(1, None), "XYZde");
        assert_eq!(o(0, None), "XYZcde");
        assert_eq!(o(-2, None), "XYZabcde");
        assert_eq!(o(4, None), "abcXYZ");
        assert_eq!(o(17, None), "abcdeXYZ");
        assert_eq!(o(2, Some(0)), "aXYZbcde");
        assert_eq!(o(2, Some(2)), "aXYZde");
        assert_eq!(o(2, Some(9)), "aXYZ");
        assert_eq!(ok("OVERLAY", vec![s("αβγ"), s("ω"), i(2)]), s("αωγ"));
        assert!(err("OVERLAY", vec![s("a"), s("b"), i(1), i(-1)]).contains("negative"));
    }

    #[test]
    fn trim_like_the_reference() {
        let t = |spec: &str, c: &str, x: &str| text_of(ok("TRIM", vec![s(spec), s(c), s(x)]));
        assert_eq!(t("BOTH", " ", "  both ends  "), "both ends");
        assert_eq!(t("LEADING", "-", "--front--"), "front--");
        assert_eq!(t("TRAILING", "-", "--back--"), "--back");
        assert_eq!(t("BOTH", "z", "--none--"), "--none--");
        assert_eq!(t("BOTH", "é", "ééxéé"), "x");
        assert_eq!(
            err("TRIM", vec![s("BOTH"), s("ab"), s("x")]),
            "Trim error: trim character must be exactly 1 character"
        );
        assert!(call("TRIM", vec![s("BOTH"), s(""), s("x")]).is_err());
        assert_eq!(
            ok("TRIM", vec![s("BOTH"), s(" "), Value::Null]),
            Value::Null
        );
    }

    #[test]
    fn regex_replace_cases() {
        let r = |x: &str, re: &str, rep: &str, st: i64, occ: i64| {
            text_of(ok(
                "REGEX_REPLACE",
                vec![s(x), s(re), s(rep), i(st), i(occ)],
            ))
        };
        assert_eq!(r("RETAIL", "RETAIL", "SHOPS", 1, 0), "SHOPS");
        assert_eq!(r("a1b22c333", "[0-9]+", "#", 1, 0), "a#b#c#");
        assert_eq!(r("a1b22c333", "[0-9]+", "#", 1, 2), "a1b#c333");
        assert_eq!(r("a1b22c333", "[0-9]+", "#", 4, 0), "a1b#c#");
        assert_eq!(r("a1b2", "[0-9]", "#", 9, 0), "a1b2");
        assert_eq!(
            r("John Smith", "(\\w+) (\\w+)", "$2, $1", 1, 0),
            "Smith, John"
        );
        assert_eq!(r("cost 5", "\\d", "\\$$0", 1, 0), "cost $5");
        assert_eq!(r("ééé", "é", "e", 2, 0), "éee");
        assert_eq!(r("abc", "x*", "-", 1, 0), "-a-b-c-");
        assert!(err("REGEX_REPLACE", vec![s("a"), s("a"), s("b"), i(0), i(0)]).contains("start"));
        assert!(
            err("REGEX_REPLACE", vec![s("a"), s("a"), s("b"), i(1), i(-1)]).contains("occurrence")
        );
        assert!(
            err("REGEX_REPLACE", vec![s("a"), s("("), s("b"), i(1), i(0)])
                .contains("Invalid regular expression")
        );
        assert!(err("REGEX_REPLACE", vec![s("a"), s("a"), s("$2"), i(1), i(0)]).contains("group"));
        assert_eq!(r("ab", "(?P<x>a)|(?P<y>b)", "[${x}${y}]", 1, 0), "[a][b]");
        assert!(
            err("REGEX_REPLACE", vec![s("a"), s("a"), s("${z}"), i(1), i(0)])
                .contains("no group with name")
        );
        assert_eq!(
            ok("FLOOR_TO", vec![Value::Timestamp(i64::MAX), s("DAY")]),
            Value::Timestamp(i64::MAX - i64::MAX.rem_euclid(DAY_MS))
        );
        assert!(
            err("CEIL_TO", vec![Value::Timestamp(i64::MAX), s("YEAR")]).contains("out of range")
        );
    }

    #[test]
    fn numeric_functions() {
        assert_eq!(ok("ABS", vec![i(-5)]), i(5));
        assert_eq!(text_of(ok("ABS", vec![dec("-1.50")])), "1.50");
        assert_eq!(ok("ABS", vec![Value::Double(-2.5)]), Value::Double(2.5));
        assert!(err("ABS", vec![i(i64::MIN)]).contains("overflow"));
        assert!(err("ABS", vec![s("x")]).contains("ABS"));
        // The reference's FLOOR and CEIL examples.
        assert_eq!(text_of(ok("FLOOR", vec![dec("2.0")])), "2");
        assert_eq!(text_of(ok("FLOOR", vec![dec("-1.0")])), "-1");
        assert_eq!(text_of(ok("FLOOR", vec![dec("5.2")])), "5");
        assert_eq!(text_of(ok("FLOOR", vec![dec("-3.3")])), "-4");
        assert_eq!(text_of(ok("FLOOR", vec![dec("-9.3")])), "-10");
        assert_eq!(text_of(ok("CEIL", vec![dec("-3.3")])), "-3");
        assert_eq!(text_of(ok("CEILING", vec![dec("5.2")])), "6");
        assert_eq!(ok("CEIL", vec![Value::Double(1.1)]), Value::Double(2.0));
        assert!(matches!(ok("FLOOR", vec![i(7)]), Value::Int(7)));
        assert!(matches!(ok("FLOOR", vec![dec("7.9")]), Value::Decimal(d) if d.scale == 0));
        assert_eq!(ok("EXP", vec![i(0)]), Value::Double(1.0));
        assert_eq!(
            ok("LN", vec![Value::Double(std::f64::consts::E)]),
            Value::Double(1.0)
        );
        assert_eq!(ok("LOG10", vec![i(1000)]), Value::Double(3.0));
        assert!(err("LN", vec![i(0)]).contains("logarithm"));
        // MOD as documented: the sign of the dividend.
        assert_eq!(ok("MOD", vec![i(4), i(2)]), i(0));
        assert_eq!(ok("MOD", vec![i(5), i(3)]), i(2));
        assert_eq!(ok("MOD", vec![i(-4), i(3)]), i(-1));
        assert_eq!(ok("MOD", vec![i(5), i(12)]), i(5));
        assert_eq!(ok("MOD", vec![i(i64::MIN), i(-1)]), i(0));
        assert!(err("MOD", vec![i(1), i(0)]).contains("division by zero"));
        assert!(err("MOD", vec![dec("1.5"), i(1)]).contains("MOD"));
        assert_eq!(ok("POWER", vec![i(2), i(10)]), Value::Double(1024.0));
        assert_eq!(ok("POWER", vec![i(2), Value::Null]), Value::Null);
        assert_eq!(ok("STEP", vec![i(23), i(5)]), i(20));
        assert_eq!(ok("STEP", vec![i(30), i(10)]), i(30));
        assert_eq!(ok("STEP", vec![i(-1), i(10)]), i(-10));
        assert!(err("STEP", vec![i(1), i(0)]).contains("positive"));
        assert_eq!(
            ok(
                "STEP",
                vec![ts("2004-09-30 13:48:23"), Value::Interval(10_000)]
            ),
            ts("2004-09-30 13:48:20")
        );
        assert_eq!(
            ok("STEP", vec![ts("2004-09-30 13:48:23"), Value::Months(3)]),
            ts("2004-07-01 00:00:00")
        );
    }

    #[test]
    fn null_functions() {
        assert_eq!(ok("COALESCE", vec![Value::Null, i(2), i(3)]), i(2));
        assert_eq!(ok("COALESCE", vec![Value::Null]), Value::Null);
        assert_eq!(ok("NULLIF", vec![i(1), i(1)]), Value::Null);
        assert_eq!(ok("NULLIF", vec![i(1), i(2)]), i(1));
        assert_eq!(ok("NULLIF", vec![i(1), Value::Null]), i(1));
        assert_eq!(ok("NULLIF", vec![Value::Null, i(1)]), Value::Null);
    }

    #[test]
    fn floor_and_ceil_to_units() {
        let t = || ts("2004-09-30 13:48:23.5");
        let f = |u: &str| ok("FLOOR_TO", vec![t(), s(u)]);
        let c = |u: &str| ok("CEIL_TO", vec![t(), s(u)]);
        assert_eq!(f("HOUR"), ts("2004-09-30 13:00:00"));
        assert_eq!(f("MINUTE"), ts("2004-09-30 13:48:00"));
        assert_eq!(f("SECOND"), ts("2004-09-30 13:48:23"));
        assert_eq!(f("DAY"), ts("2004-09-30 00:00:00"));
        assert_eq!(f("WEEK"), ts("2004-09-26 00:00:00"));
        assert_eq!(f("MONTH"), ts("2004-09-01 00:00:00"));
        assert_eq!(f("QUARTER"), ts("2004-07-01 00:00:00"));
        assert_eq!(f("year"), ts("2004-01-01 00:00:00"));
        assert_eq!(c("HOUR"), ts("2004-09-30 14:00:00"));
        assert_eq!(c("DAY"), ts("2004-10-01 00:00:00"));
        assert_eq!(c("MONTH"), ts("2004-10-01 00:00:00"));
        assert_eq!(c("QUARTER"), ts("2004-10-01 00:00:00"));
        assert_eq!(c("YEAR"), ts("2005-01-01 00:00:00"));
        assert_eq!(
            ok("CEIL_TO", vec![ts("2004-01-01"), s("YEAR")]),
            ts("2004-01-01")
        );
        assert_eq!(
            ok("FLOOR_TO", vec![Value::Date(12_000), s("MONTH")]),
            Value::Date(11_992)
        );
        assert_eq!(
            ok("FLOOR_TO", vec![Value::Time(5_000_000), s("HOUR")]),
            Value::Time(3_600_000)
        );
        assert!(err("FLOOR_TO", vec![Value::Time(5), s("YEAR")]).contains("TIME"));
        assert!(err("FLOOR_TO", vec![t(), s("FORTNIGHT")]).contains("unknown time unit"));
        assert!(err("FLOOR_TO", vec![i(1), s("DAY")]).contains("FLOOR"));
        assert_eq!(ok("FLOOR_TO", vec![Value::Null, s("DAY")]), Value::Null);
    }

    #[test]
    fn extract_fields() {
        let t = || ts("2016-09-23 04:29:26.234");
        let e = |u: &str, v: Value| ok("EXTRACT", vec![s(u), v]);
        assert_eq!(e("MINUTE", t()), i(29));
        assert_eq!(e("HOUR", t()), i(4));
        assert_eq!(e("YEAR", t()), i(2016));
        assert_eq!(e("MONTH", t()), i(9));
        assert_eq!(e("DAY", t()), i(23));
        assert_eq!(text_of(e("SECOND", t())), "26.234");
        assert_eq!(e("QUARTER", t()), i(3));
        assert_eq!(e("DOY", t()), i(267));
        assert_eq!(e("DOW", t()), i(6));
        // INTERVAL '2 3:4:5.678' DAY TO SECOND
        let iv = || Value::Interval(2 * DAY_MS + 3 * 3_600_000 + 4 * 60_000 + 5_678);
        assert_eq!(e("DAY", iv()), i(2));
        assert_eq!(e("HOUR", iv()), i(3));
        assert_eq!(e("MINUTE", iv()), i(4));
        assert_eq!(text_of(e("SECOND", iv())), "5.678");
        assert_eq!(e("YEAR", Value::Months(27)), i(2));
        assert_eq!(e("MONTH", Value::Months(27)), i(3));
        assert_eq!(e("DAY", Value::Date(0)), i(1));
        assert!(err("EXTRACT", vec![s("HOUR"), Value::Date(0)])
            .contains("Cannot extract HOUR from DATE"));
        assert!(err("EXTRACT", vec![s("DAY"), s("x")]).contains("EXTRACT"));
    }

    #[test]
    fn epoch_conversions() {
        assert_eq!(
            ok("TO_TIMESTAMP", vec![i(1_474_604_966_234)]),
            ts("2016-09-23 04:29:26.234")
        );
        assert_eq!(
            ok("UNIX_TIMESTAMP", vec![ts("2016-09-23 04:29:26.234")]),
            i(1_474_604_966_234)
        );
        assert_eq!(ok("UNIX_TIMESTAMP", vec![Value::Null]), Value::Null);
        assert_eq!(
            ok(
                "TSDIFF",
                vec![ts("2020-01-01 00:00:00"), ts("2020-01-01 00:00:01.5")]
            ),
            i(1500)
        );
        assert_eq!(ok("TSDIFF", vec![i(10), i(4)]), i(-6));
        assert!(err("TSDIFF", vec![i(i64::MIN), i(1)]).contains("overflow"));
        assert!(err("TO_TIMESTAMP", vec![s("x")]).contains("TO_TIMESTAMP"));
    }

    #[test]
    fn formatting_and_parsing_dates() {
        let t = || ts("2009-09-16 03:15:24.5");
        assert_eq!(
            ok("TIMESTAMP_TO_CHAR", vec![s("yyyy-MM-dd HH:mm:ss.SSS"), t()]),
            s("2009-09-16 03:15:24.500")
        );
        assert_eq!(
            ok("TIMESTAMP_TO_CHAR", vec![s("yyyy"), Value::Null]),
            s("null")
        );
        assert_eq!(
            ok("DATE_TO_CHAR", vec![s("dd MMM yyyy"), Value::Date(0)]),
            s("01 Jan 1970")
        );
        assert_eq!(
            ok("TIME_TO_CHAR", vec![s("hh:mm a"), Value::Time(49_500_000)]),
            s("01:45 PM")
        );
        assert_eq!(
            ok(
                "CHAR_TO_TIMESTAMP",
                vec![s("yyyy-MM-dd hh:mm:ss"), s("2009-09-16 03:15:24")]
            ),
            ts("2009-09-16 03:15:24")
        );
        // Fields missing from the template take their defaults.
        assert_eq!(
            ok("CHAR_TO_TIMESTAMP", vec![s("yyyy-MM"), s("2009-09")]),
            ts("2009-09-01 00:00:00")
        );
        assert_eq!(
            ok("CHAR_TO_DATE", vec![s("dd/MM/yyyy"), s("29/02/2024")]),
            Value::Date(19_782)
        );
        assert_eq!(
            ok("CHAR_TO_TIME", vec![s("HH:mm:ss"), s("23:59:58")]),
            Value::Time(86_398_000)
        );
        assert_eq!(ok("CHAR_TO_TIME", vec![Value::Null, s("x")]), Value::Null);
        assert_eq!(
            err("CHAR_TO_TIMESTAMP", vec![s("yyyy-MM-dd"), s("2009-02-30")]),
            "Cannot parse '2009-02-30' as TIMESTAMP with format 'yyyy-MM-dd': day 30 out of range for month 2"
        );
        assert!(err("TIMESTAMP_TO_CHAR", vec![s("yyyy-bb"), t()])
            .contains("Illegal pattern character 'b'"));
        assert!(err("DATE_TO_CHAR", vec![s("yyyy"), i(1)]).contains("DATE_TO_CHAR"));
    }
}
