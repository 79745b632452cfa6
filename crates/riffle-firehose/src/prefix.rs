//! S3 object keys as AWS lays them out ("Amazon S3 object name format",
//! "Custom prefixes for Amazon S3 objects" in the Firehose developer
//! guide):
//!
//! `<evaluated prefix><stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid><ext>`
//!
//! A prefix may hold `!{timestamp:<Java DateTimeFormatter pattern>}`,
//! `!{firehose:random-string}` (11 random characters, new at each use),
//! `!{firehose:error-output-type}` (ErrorOutputPrefix only) and the
//! dynamic partitioning keys `!{partitionKeyFromQuery:..}` /
//! `!{partitionKeyFromLambda:..}`. A prefix without a timestamp expression
//! gets `yyyy/MM/dd/HH/` appended, except under dynamic partitioning,
//! where the Prefix is the partition layout. Timestamps are the approximate arrival
//! of the oldest record in the object, in UTC or the destination's
//! CustomTimeZone; every timestamp in one key is the same instant.
//!
//! [`validate`] enforces AWS's semantic rules at CreateDeliveryStream and
//! UpdateDestination with AWS's InvalidArgumentException text.

use jiff::tz::TimeZone;

use crate::error::FirehoseError;

/// One piece of a prefix template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    /// A Java DateTimeFormatter pattern.
    Timestamp(Vec<Field>),
    RandomString,
    ErrorOutputType,
    /// `partitionKeyFromQuery` / `partitionKeyFromLambda` and the key.
    PartitionKey(String, String),
}

/// A parsed prefix.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    pub parts: Vec<Part>,
}

/// AWS's wording for a prefix that breaks a rule.
fn rule(text: &str) -> FirehoseError {
    FirehoseError::InvalidArgument(format!(
        "Ths supplied prefix(es) do not satisfy the following constraint: {text}"
    ))
}

impl Template {
    /// Parses a prefix; `!{` may only open an expression.
    pub fn parse(src: &str) -> Result<Template, FirehoseError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = src;
        while let Some(at) = rest.find("!{") {
            lit.push_str(&rest[..at]);
            let after = &rest[at + 2..];
            let end = after.find('}').ok_or_else(|| {
                rule("The sequence '!{' can only appear in '!{namespace:value}' expressions")
            })?;
            let expr = &after[..end];
            let (ns, value) = expr.split_once(':').ok_or_else(|| {
                rule(&format!(
                    "Expression '!{{{expr}}}' is not of the form '!{{namespace:value}}'"
                ))
            })?;
            let part = match (ns, value) {
                ("timestamp", v) => Part::Timestamp(parse_pattern(v).map_err(|e| {
                    rule(&format!("Invalid timestamp pattern '{v}' in prefix: {e}"))
                })?),
                ("firehose", "random-string") => Part::RandomString,
                ("firehose", "error-output-type") => Part::ErrorOutputType,
                ("partitionKeyFromQuery" | "partitionKeyFromLambda", k) if !k.is_empty() => {
                    Part::PartitionKey(ns.to_owned(), k.to_owned())
                }
                _ => {
                    return Err(rule(&format!(
                        "Unsupported expression '!{{{expr}}}'; supported namespaces are timestamp, firehose, partitionKeyFromQuery and partitionKeyFromLambda"
                    )))
                }
            };
            if !lit.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut lit)));
            }
            parts.push(part);
            rest = &after[end + 1..];
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Literal(lit));
        }
        Ok(Template { parts })
    }

    pub fn has_expressions(&self) -> bool {
        self.parts.iter().any(|p| !matches!(p, Part::Literal(_)))
    }

    fn has(&self, f: impl Fn(&Part) -> bool) -> bool {
        self.parts.iter().any(f)
    }

    /// The template with `yyyy/MM/dd/HH/` appended unless it has a
    /// timestamp expression.
    fn with_default_time(mut self) -> Template {
        if !self.has(|p| matches!(p, Part::Timestamp(_))) {
            self.parts.push(Part::Timestamp(
                parse_pattern("yyyy/MM/dd/HH/").expect("the default pattern parses"),
            ));
        }
        self
    }

    /// Evaluates the template at `ms` in `tz`.
    pub fn eval(&self, ms: i64, tz: &TimeZone, error_type: Option<&str>) -> String {
        self.eval_keys(ms, tz, error_type, &PartitionKeys::default())
    }

    /// Evaluates the template with partition key values; a key `keys`
    /// lacks evaluates to nothing (see [`Layout::missing_key`]).
    pub fn eval_keys(
        &self,
        ms: i64,
        tz: &TimeZone,
        error_type: Option<&str>,
        keys: &PartitionKeys,
    ) -> String {
        let at = zoned(ms, tz);
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Literal(s) => out.push_str(s),
                Part::Timestamp(fields) => format_fields(&mut out, fields, &at),
                Part::RandomString => out.push_str(&random_string()),
                Part::ErrorOutputType => out.push_str(error_type.unwrap_or("")),
                Part::PartitionKey(ns, k) => {
                    out.push_str(keys.get(ns, k).unwrap_or(""));
                }
            }
        }
        out
    }
}

/// The partition keys of a record under dynamic partitioning: from the
/// MetadataExtraction query and from the Lambda transformation.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionKeys {
    pub query: std::collections::BTreeMap<String, String>,
    pub lambda: std::collections::BTreeMap<String, String>,
}

impl PartitionKeys {
    /// The value of `!{ns:key}`.
    pub fn get(&self, ns: &str, key: &str) -> Option<&str> {
        match ns {
            "partitionKeyFromQuery" => self.query.get(key),
            "partitionKeyFromLambda" => self.lambda.get(key),
            _ => None,
        }
        .map(String::as_str)
    }
}

/// 11 random characters, as AWS's `!{firehose:random-string}`.
fn random_string() -> String {
    uuid::Uuid::new_v4().to_string()[..11].to_owned()
}

/// The key templates of one S3 destination.
#[derive(Debug, Clone)]
pub struct Layout {
    prefix: Template,
    /// ErrorOutputPrefix when given; `None` means `<Prefix><type>/` then
    /// the time.
    error_prefix: Option<Template>,
    raw_prefix: String,
    pub tz: TimeZone,
}

/// Checks Prefix and ErrorOutputPrefix against AWS's rules and returns the
/// layout they describe. `dynamic_partitioning` allows partition keys.
pub fn validate(
    prefix: Option<&str>,
    error_prefix: Option<&str>,
    dynamic_partitioning: bool,
    time_zone: Option<&str>,
) -> Result<Layout, FirehoseError> {
    let raw_prefix = prefix.unwrap_or("").to_owned();
    let p = Template::parse(&raw_prefix)?;
    let e = match error_prefix.filter(|s| !s.is_empty()) {
        Some(s) => Some(Template::parse(s)?),
        None => None,
    };
    if p.has(|x| matches!(x, Part::ErrorOutputType)) {
        return Err(rule(
            "Prefix cannot contain the expression !{firehose:error-output-type}",
        ));
    }
    if p.has_expressions() && e.is_none() {
        return Err(rule(
            "ErrorOutputPrefix cannot be null or empty when Prefix contains expressions",
        ));
    }
    if let Some(e) = &e {
        if e.has_expressions() && !e.has(|x| matches!(x, Part::ErrorOutputType)) {
            return Err(rule(
                "ErrorOutputPrefix must contain at least one instance of !{firehose:error-output-type} when it contains expressions",
            ));
        }
        if e.has(|x| matches!(x, Part::PartitionKey(..))) {
            return Err(rule(
                "ErrorOutputPrefix cannot contain dynamic partitioning keys",
            ));
        }
    }
    let keys = p.has(|x| matches!(x, Part::PartitionKey(..)));
    if keys && !dynamic_partitioning {
        return Err(rule(
            "Prefix can contain partitionKeyFromQuery or partitionKeyFromLambda expressions only when dynamic partitioning is enabled",
        ));
    }
    if dynamic_partitioning && !keys {
        return Err(rule(
            "Prefix must contain at least one partitionKeyFromQuery or partitionKeyFromLambda expression when dynamic partitioning is enabled",
        ));
    }
    let tz = time_zone_named(time_zone)?;
    Ok(Layout {
        prefix: p,
        error_prefix: e,
        raw_prefix,
        tz,
    })
}

/// The time zone named by CustomTimeZone (UTC when absent or empty).
pub fn time_zone_named(name: Option<&str>) -> Result<TimeZone, FirehoseError> {
    match name.filter(|s| !s.is_empty()) {
        None | Some("UTC") => Ok(TimeZone::UTC),
        Some(n) => TimeZone::get(n).map_err(|_| {
            FirehoseError::InvalidArgument(format!(
                "CustomTimeZone {n} is not a supported time zone."
            ))
        }),
    }
}

/// The longest evaluated prefix AWS allows.
pub const MAX_EVALUATED_PREFIX: usize = 512;

impl Layout {
    /// The evaluated prefix of an object whose oldest record arrived at
    /// `ms`.
    pub fn prefix(&self, ms: i64) -> String {
        self.prefix
            .clone()
            .with_default_time()
            .eval(ms, &self.tz, None)
    }

    /// The evaluated prefix of an object of one partition. The Prefix is
    /// the partition layout: no default time is appended to it.
    pub fn partition_prefix(&self, ms: i64, keys: &PartitionKeys) -> String {
        self.prefix.eval_keys(ms, &self.tz, None, keys)
    }

    /// The partition key expressions of the prefix, in order.
    pub fn partition_keys(&self) -> impl Iterator<Item = (&str, &str)> {
        self.prefix.parts.iter().filter_map(|p| match p {
            Part::PartitionKey(ns, k) => Some((ns.as_str(), k.as_str())),
            _ => None,
        })
    }

    /// The first partition key expression of the prefix `keys` has no
    /// value for, as written (`partitionKeyFromQuery:customer_id`).
    pub fn missing_key(&self, keys: &PartitionKeys) -> Option<String> {
        self.partition_keys()
            .find(|(ns, k)| keys.get(ns, k).is_none())
            .map(|(ns, k)| format!("{ns}:{k}"))
    }

    /// The evaluated ErrorOutputPrefix for `error_type`
    /// (`processing-failed`, `format-conversion-failed`, ...).
    pub fn error_prefix(&self, ms: i64, error_type: &str) -> String {
        match &self.error_prefix {
            Some(t) => t
                .clone()
                .with_default_time()
                .eval(ms, &self.tz, Some(error_type)),
            None => self.folder_prefix(ms, error_type),
        }
    }

    /// `<Prefix><folder>/` then the time (`yyyy/MM/dd/HH/` unless Prefix
    /// has a timestamp expression): where Firehose puts objects of its own
    /// beside the data, such as a Redshift destination's `manifests`.
    pub fn folder_prefix(&self, ms: i64, folder: &str) -> String {
        let mut t = Template::parse(&self.raw_prefix).unwrap_or_default();
        t.parts.push(Part::Literal(format!("{folder}/")));
        t.with_default_time().eval(ms, &self.tz, Some(folder))
    }

    /// The whole key: prefix, then `<stream>-<version>-<time>-<uuid><ext>`.
    pub fn key(&self, prefix: &str, stream: &str, version: u64, ms: i64, ext: &str) -> String {
        let t = zoned(ms, &self.tz);
        format!(
            "{prefix}{stream}-{version}-{:04}-{:02}-{:02}-{:02}-{:02}-{:02}-{}{ext}",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            uuid::Uuid::new_v4()
        )
    }
}

fn zoned(ms: i64, tz: &TimeZone) -> jiff::Zoned {
    let ts = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    ts.to_zoned(tz.clone())
}

/// One element of a Java DateTimeFormatter pattern: a run of one letter
/// and its count, or literal text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Letter(char, usize),
    Text(String),
}

/// Parses a DateTimeFormatter pattern: letters are fields, text in single
/// quotes is literal (`''` is a quote), optional-section brackets are
/// dropped (their content is always printed), other characters are
/// literal. Letters DateTimeFormatter reserves or Riffle does not format
/// are refused.
pub fn parse_pattern(p: &str) -> Result<Vec<Field>, String> {
    const SUPPORTED: &str = "GuyDMLdQqEecaHhKkmsSnABVzOXxZw";
    let chars: Vec<char> = p.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut text = String::new();
    let flush = |text: &mut String, out: &mut Vec<Field>| {
        if !text.is_empty() {
            out.push(Field::Text(std::mem::take(text)));
        }
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            if chars.get(i + 1) == Some(&'\'') {
                text.push('\'');
                i += 2;
                continue;
            }
            let mut j = i + 1;
            loop {
                match chars.get(j) {
                    None => return Err("unterminated quote".into()),
                    Some('\'') if chars.get(j + 1) == Some(&'\'') => {
                        text.push('\'');
                        j += 2;
                    }
                    Some('\'') => break,
                    Some(&ch) => {
                        text.push(ch);
                        j += 1;
                    }
                }
            }
            i = j + 1;
        } else if c == '[' || c == ']' {
            i += 1;
        } else if c.is_ascii_alphabetic() {
            if !SUPPORTED.contains(c) {
                return Err(format!("unknown pattern letter: {c}"));
            }
            let mut n = 1;
            while chars.get(i + n) == Some(&c) {
                n += 1;
            }
            flush(&mut text, &mut out);
            out.push(Field::Letter(c, n));
            i += n;
        } else if matches!(c, '{' | '}' | '#') {
            return Err(format!("pattern includes reserved character: '{c}'"));
        } else {
            text.push(c);
            i += 1;
        }
    }
    flush(&mut text, &mut out);
    Ok(out)
}

fn num(out: &mut String, v: i64, width: usize) {
    if v < 0 {
        out.push('-');
    }
    out.push_str(&format!("{:0width$}", v.unsigned_abs(), width = width));
}

fn text_field(out: &mut String, full: &str, n: usize) {
    match n {
        1..=3 => out.push_str(&full[..3.min(full.len())]),
        5 => out.push_str(&full[..1]),
        _ => out.push_str(full),
    }
}

fn offset(out: &mut String, secs: i32, colon: bool, z_for_zero: bool, minutes: bool) {
    if secs == 0 && z_for_zero {
        out.push('Z');
        return;
    }
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    out.push(sign);
    out.push_str(&format!("{:02}", a / 3600));
    let m = a % 3600 / 60;
    if minutes || m != 0 {
        if colon {
            out.push(':');
        }
        out.push_str(&format!("{m:02}"));
    }
}

/// Formats `at` as DateTimeFormatter would (English, ISO week fields).
fn format_fields(out: &mut String, fields: &[Field], at: &jiff::Zoned) {
    use jiff::civil::Weekday;
    for f in fields {
        let (c, n) = match f {
            Field::Text(t) => {
                out.push_str(t);
                continue;
            }
            Field::Letter(c, n) => (*c, *n),
        };
        let year = i64::from(at.year());
        let month = i64::from(at.month());
        match c {
            'G' => out.push_str(if n == 4 { "Anno Domini" } else { "AD" }),
            'u' | 'y' => {
                if n == 2 {
                    num(out, year.rem_euclid(100), 2)
                } else {
                    num(out, year, n)
                }
            }
            'M' | 'L' => match n {
                1 | 2 => num(out, month, n),
                _ => text_field(out, riffle_core::calendar::MONTHS[(month - 1) as usize], n),
            },
            'd' => num(out, i64::from(at.day()), n),
            'D' => num(out, i64::from(at.day_of_year()), n),
            'Q' | 'q' => {
                let q = (month - 1) / 3 + 1;
                match n {
                    1 | 2 => num(out, q, n),
                    3 => out.push_str(&format!("Q{q}")),
                    _ => out.push_str(["1st", "2nd", "3rd", "4th"][(q - 1) as usize]),
                }
                if n >= 4 {
                    out.push_str(" quarter");
                }
            }
            'E' | 'e' | 'c' => {
                let wd = at.weekday();
                if (c == 'e' || c == 'c') && n <= 2 {
                    // Localized day of week, Sunday first (US).
                    num(out, i64::from(wd.to_sunday_one_offset()), n);
                } else {
                    let name = match wd {
                        Weekday::Monday => "Monday",
                        Weekday::Tuesday => "Tuesday",
                        Weekday::Wednesday => "Wednesday",
                        Weekday::Thursday => "Thursday",
                        Weekday::Friday => "Friday",
                        Weekday::Saturday => "Saturday",
                        Weekday::Sunday => "Sunday",
                    };
                    text_field(out, name, n);
                }
            }
            'w' => num(out, i64::from(at.date().iso_week_date().week()), n),
            'a' => out.push_str(if at.hour() < 12 { "AM" } else { "PM" }),
            'B' => out.push_str(if at.hour() < 12 {
                "in the morning"
            } else {
                "in the afternoon"
            }),
            'H' => num(out, i64::from(at.hour()), n),
            'k' => num(
                out,
                if at.hour() == 0 {
                    24
                } else {
                    i64::from(at.hour())
                },
                n,
            ),
            'K' => num(out, i64::from(at.hour() % 12), n),
            'h' => {
                let h = i64::from(at.hour() % 12);
                num(out, if h == 0 { 12 } else { h }, n)
            }
            'm' => num(out, i64::from(at.minute()), n),
            's' => num(out, i64::from(at.second()), n),
            'S' => {
                let nanos = format!("{:09}", at.subsec_nanosecond());
                let digits: String = nanos
                    .chars()
                    .chain(std::iter::repeat('0'))
                    .take(n)
                    .collect();
                out.push_str(&digits);
            }
            'n' => num(out, i64::from(at.subsec_nanosecond()), n),
            'A' => {
                let t = at.time();
                let ms = ((i64::from(t.hour()) * 60 + i64::from(t.minute())) * 60
                    + i64::from(t.second()))
                    * 1000
                    + i64::from(t.subsec_nanosecond()) / 1_000_000;
                num(out, ms, n)
            }
            'V' => out.push_str(at.time_zone().iana_name().unwrap_or("UTC")),
            'z' => {
                let info = at.time_zone().to_offset_info(at.timestamp());
                out.push_str(info.abbreviation())
            }
            'O' => {
                let secs = at.offset().seconds();
                out.push_str("GMT");
                if secs != 0 {
                    offset(out, secs, true, false, n == 4);
                }
            }
            'X' | 'x' => {
                let secs = at.offset().seconds();
                offset(out, secs, n >= 3, c == 'X', n != 1);
            }
            'Z' => {
                let secs = at.offset().seconds();
                match n {
                    1..=3 => offset(out, secs, false, false, true),
                    4 => {
                        out.push_str("GMT");
                        if secs != 0 {
                            offset(out, secs, true, false, true);
                        }
                    }
                    _ => offset(out, secs, true, true, true),
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2018-08-27T10:30:05.123Z, a Monday.
    const T: i64 = 1_535_365_805_123;

    fn fmt(p: &str, tz: &TimeZone) -> String {
        let mut out = String::new();
        format_fields(&mut out, &parse_pattern(p).unwrap(), &zoned(T, tz));
        out
    }

    #[test]
    fn java_patterns() {
        let utc = TimeZone::UTC;
        assert_eq!(fmt("yyyy/MM/dd/HH/", &utc), "2018/08/27/10/");
        assert_eq!(fmt("yyyy'-'MM'-'dd", &utc), "2018-08-27");
        assert_eq!(
            fmt("'year='yyyy'/month='MM'/day='dd'/hour='HH", &utc),
            "year=2018/month=08/day=27/hour=10"
        );
        assert_eq!(fmt("yy M d H m s SSS", &utc), "18 8 27 10 30 5 123");
        assert_eq!(
            fmt("EEE EEEE MMM MMMM D", &utc),
            "Mon Monday Aug August 239"
        );
        assert_eq!(fmt("hh a 'it''s' ''", &utc), "10 AM it's '");
        assert_eq!(fmt("Z XXX VV", &utc), "+0000 Z UTC");
        let tokyo = TimeZone::get("Asia/Tokyo").unwrap();
        assert_eq!(
            fmt("yyyy-MM-dd HH:mm Z XXX z", &tokyo),
            "2018-08-27 19:30 +0900 +09:00 JST"
        );
        assert!(parse_pattern("yyyy#").is_err());
        assert!(parse_pattern("'open").is_err());
        assert!(parse_pattern("yyyy-bb").is_err());
    }

    #[test]
    fn prefixes_as_aws_evaluates_them() {
        let l = validate(None, None, false, None).unwrap();
        assert_eq!(l.prefix(T), "2018/08/27/10/");
        assert_eq!(
            l.error_prefix(T, "processing-failed"),
            "processing-failed/2018/08/27/10/"
        );
        let l = validate(Some("myFirehosePrefix/"), None, false, None).unwrap();
        assert_eq!(l.prefix(T), "myFirehosePrefix/2018/08/27/10/");
        assert_eq!(
            l.error_prefix(T, "processing-failed"),
            "myFirehosePrefix/processing-failed/2018/08/27/10/"
        );
        let l = validate(
            Some("myPrefix/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"),
            Some("myErrorPrefix/!{timestamp:'year='yyyy'/month='MM'/day='dd'/hour='HH}/!{firehose:error-output-type}"),
            false,
            None,
        )
        .unwrap();
        assert_eq!(l.prefix(T), "myPrefix/year=2018/month=08/day=27/hour=10/");
        assert_eq!(
            l.error_prefix(T, "processing-failed"),
            "myErrorPrefix/year=2018/month=08/day=27/hour=10/processing-failed"
        );
        let l = validate(
            Some("rand=!{firehose:random-string}/"),
            Some("err/!{firehose:error-output-type}/"),
            false,
            None,
        )
        .unwrap();
        let p = l.prefix(T);
        assert!(
            p.starts_with("rand=") && p.ends_with("/2018/08/27/10/"),
            "{p}"
        );
        assert_eq!(p.len(), "rand=".len() + 11 + "/2018/08/27/10/".len(), "{p}");
        let key = l.key("x/", "s", 3, T, ".gz");
        let re = regex_lite::Regex::new(
            r"^x/s-3-2018-08-27-10-30-05-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.gz$",
        )
        .unwrap();
        assert!(re.is_match(&key), "{key}");
        // Time zones move both the prefix and the suffix.
        let l = validate(None, None, false, Some("Asia/Tokyo")).unwrap();
        assert_eq!(l.prefix(T), "2018/08/27/19/");
        assert!(l
            .key("", "s", 1, T, "")
            .starts_with("s-1-2018-08-27-19-30-05-"));
    }

    #[test]
    fn rules() {
        let msg = |r: Result<Layout, FirehoseError>| r.unwrap_err().to_string();
        assert_eq!(
            msg(validate(Some("!{timestamp:yyyy}"), None, false, None)),
            "Ths supplied prefix(es) do not satisfy the following constraint: ErrorOutputPrefix cannot be null or empty when Prefix contains expressions"
        );
        assert!(msg(validate(
            Some("a/!{firehose:error-output-type}"),
            Some("e/"),
            false,
            None
        ))
        .contains("Prefix cannot contain the expression !{firehose:error-output-type}"));
        assert!(
            msg(validate(None, Some("e/!{timestamp:yyyy}"), false, None))
                .contains("must contain at least one instance of !{firehose:error-output-type}")
        );
        assert!(msg(validate(Some("a/!{nope:x}"), Some("e/"), false, None))
            .contains("Unsupported expression '!{nope:x}'"));
        assert!(msg(validate(
            Some("a/!{timestamp:yyyy"),
            Some("e/"),
            false,
            None
        ))
        .contains("'!{' can only appear"));
        assert!(msg(validate(
            Some("!{partitionKeyFromQuery:id}/"),
            Some("e/!{firehose:error-output-type}"),
            false,
            None
        ))
        .contains("only when dynamic partitioning is enabled"));
        assert!(msg(validate(None, None, false, Some("Mars/Olympus"))).contains("CustomTimeZone"));
        // A literal ErrorOutputPrefix needs no expression.
        assert!(validate(Some("!{timestamp:yyyy}/"), Some("errors/"), false, None).is_ok());
    }
}
