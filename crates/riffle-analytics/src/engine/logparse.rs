//! The log parsing functions: each returns a ROW, read with
//! `(expr).COLUMN1`, or NULL when the line does not parse.
//!
//! - `REGEX_LOG_PARSE(line, regex[, columns])`: the regex must match the
//!   whole line; one column per group, COLUMN1..COLUMNn VARCHAR(1024);
//! - `FAST_REGEX_LOG_PARSER(line, regex[, columns])`: the same with lazy
//!   quantifiers (the first match wins);
//! - `W3C_LOG_PARSE(line, format)`: predefined names or Apache formats;
//! - `VARIABLE_COLUMN_LOG_PARSE(line, columns, delimiter[, escape[, quote]])`;
//! - `FIXED_COLUMN_LOG_PARSE(line, columns)`;
//! - `SYS_LOG_PARSE(line)`.
//!
//! Column lists are `name [TYPE] type ['format'] [NOT NULL] [START n [FOR m]], ...`.

use std::sync::Arc;

use super::datefmt;
use super::functions::{any_null, chars, int, regex, text};
use super::value::{cast, fail, EvalError, EvalResult, SqlType, Value};

/// One column of a parser's output: its name, type, and for dates and
/// times an optional SimpleDateFormat pattern; FIXED_COLUMN_LOG_PARSE's
/// START and FOR.
#[derive(Debug, Clone)]
struct Column {
    name: Arc<str>,
    ty: SqlType,
    format: Option<String>,
    start: Option<usize>,
    len: Option<usize>,
}

impl Column {
    fn varchar(i: usize, len: u32) -> Column {
        Column {
            name: format!("COLUMN{i}").into(),
            ty: SqlType::Varchar(len),
            format: None,
            start: None,
            len: None,
        }
    }

    /// The text of a field as a value of this column.
    fn value(&self, func: &str, field: Option<&str>) -> EvalResult<Value> {
        let Some(s) = field else {
            return Ok(Value::Null);
        };
        if !matches!(self.ty, SqlType::Char(_) | SqlType::Varchar(_)) && s.trim().is_empty() {
            return Ok(Value::Null);
        }
        let ms = match (&self.format, self.ty) {
            (Some(f), SqlType::Timestamp | SqlType::Date | SqlType::Time) => {
                Some(datefmt::parse(f, s).map_err(|e| {
                    EvalError(format!(
                        "{func}: cannot parse '{s}' for column {} with format '{f}': {e}",
                        self.name
                    ))
                })?)
            }
            _ => None,
        };
        let v = match ms {
            Some(ms) => cast(&Value::Timestamp(ms), self.ty),
            None => cast(&Value::str(s), self.ty),
        };
        v.map_err(|e| EvalError(format!("{func}: column {}: {e}", self.name)))
    }
}

fn row(columns: &[Column], values: Vec<Value>) -> Value {
    Value::Row(
        columns
            .iter()
            .zip(values)
            .map(|(c, v)| (c.name.clone(), v))
            .collect::<Vec<_>>()
            .into(),
    )
}

/// Splits on `sep` outside quotes and parentheses.
fn split_top(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut depth, mut quote) = (0, None::<char>);
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                cur.push(c);
            }
            (None, '(') => {
                depth += 1;
                cur.push(c);
            }
            (None, ')') => {
                depth -= 1;
                cur.push(c);
            }
            (None, c) if c == sep && depth == 0 => out.push(std::mem::take(&mut cur)),
            (None, c) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Words of a column description: quoted strings and parenthesized type
/// arguments stay whole.
fn words(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in split_top(s.trim(), ' ') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        // `DECIMAL (10,2)` and `VARCHAR(8)` alike.
        if part.starts_with('(') {
            if let Some(last) = out.last_mut() {
                last.push_str(part);
                continue;
            }
        }
        out.push(part.to_string());
    }
    out
}

/// `name [TYPE] type ['format'] [NOT NULL] [START n [FOR m]], ...`
fn parse_columns(func: &str, spec: &str, default: SqlType) -> EvalResult<Vec<Column>> {
    let bad =
        |d: &str, why: &str| EvalError(format!("{func}: bad column description '{d}': {why}"));
    let mut out = Vec::new();
    for desc in split_top(spec, ',') {
        let w = words(&desc);
        let Some(first) = w.first() else {
            return Err(bad(&desc, "empty"));
        };
        let name = if first.len() >= 2 && first.starts_with('"') && first.ends_with('"') {
            first[1..first.len() - 1].to_string()
        } else {
            first.to_ascii_uppercase()
        };
        let mut col = Column {
            name: name.into(),
            ty: default,
            format: None,
            start: None,
            len: None,
        };
        let mut i = 1;
        if w.get(i).is_some_and(|t| t.eq_ignore_ascii_case("TYPE")) {
            i += 1;
        }
        // The type: words up to a keyword or a quoted format.
        let mut ty = Vec::new();
        while let Some(t) = w.get(i) {
            let up = t.to_ascii_uppercase();
            if up == "NOT" || up == "START" || up == "FOR" || t.starts_with('\'') {
                break;
            }
            ty.push(t.clone());
            i += 1;
        }
        if !ty.is_empty() {
            col.ty = SqlType::parse(&ty.join(" ")).ok_or_else(|| bad(&desc, "unknown type"))?;
        }
        while let Some(t) = w.get(i) {
            let up = t.to_ascii_uppercase();
            let num = |k: usize| -> EvalResult<usize> {
                w.get(k)
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| bad(&desc, "expected a number"))
            };
            if t.starts_with('\'') && t.ends_with('\'') && t.len() >= 2 {
                col.format = Some(t[1..t.len() - 1].replace("''", "'"));
                i += 1;
            } else if up == "NOT" && w.get(i + 1).is_some_and(|n| n.eq_ignore_ascii_case("NULL")) {
                i += 2;
            } else if up == "START" {
                col.start = Some(num(i + 1)?);
                i += 2;
            } else if up == "FOR" {
                col.len = Some(num(i + 1)?);
                i += 2;
            } else {
                return Err(bad(&desc, &format!("unexpected '{t}'")));
            }
        }
        out.push(col);
    }
    Ok(out)
}

const REGEX_COLUMN_LEN: u32 = 1024;

/// The parse of `s` by a regular expression matching all of it: one
/// column per group.
fn regex_parse(func: &str, args: &[Value], lazy: bool) -> EvalResult<Value> {
    if args[..2].iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    let s = text(func, args, 0)?;
    let pattern = text(func, args, 1)?;
    let anchored = format!("{}^(?:{pattern})$", if lazy { "(?U)" } else { "" });
    let re = regex(&anchored)?;
    let groups = re.captures_len() - 1;
    let columns = match args.get(2) {
        Some(Value::Null) | None => (1..=groups)
            .map(|i| Column::varchar(i, REGEX_COLUMN_LEN))
            .collect(),
        Some(_) => {
            let cols = parse_columns(
                func,
                text(func, args, 2)?,
                SqlType::Varchar(REGEX_COLUMN_LEN),
            )?;
            if cols.len() != groups {
                return fail(format!(
                    "{func}: {} columns described for {groups} groups",
                    cols.len()
                ));
            }
            cols
        }
    };
    let Some(caps) = re.captures(s) else {
        return Ok(Value::Null);
    };
    let values = columns
        .iter()
        .enumerate()
        .map(|(i, c)| c.value(func, caps.get(i + 1).map(|m| m.as_str())))
        .collect::<EvalResult<Vec<_>>>()?;
    Ok(row(&columns, values))
}

pub(super) fn regex_log_parse(args: &[Value]) -> EvalResult<Value> {
    regex_parse("REGEX_LOG_PARSE", args, false)
}

/// Like REGEX_LOG_PARSE with lazy quantifiers: the first match wins.
pub(super) fn fast_regex_log_parser(args: &[Value]) -> EvalResult<Value> {
    regex_parse("FAST_REGEX_LOG_PARSER", args, true)
}

/// An Apache `LogFormat` for W3C_LOG_PARSE's predefined names.
fn w3c_format(name: &str) -> Option<&'static str> {
    Some(
        match name
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_uppercase()
            .as_str()
        {
            "COMMON" => r#"%h %l %u %t "%r" %>s %b"#,
            "COMMON WITH VHOST" => r#"%v %h %l %u %t "%r" %>s %b"#,
            "NCSA EXTENDED" | "COMBINED" => {
                r#"%h %l %u %t "%r" %>s %b "%[Referer]i" "%[User-agent]i""#
            }
            "REFERER" => "%[Referer]i ---> %U",
            "AGENT" => "%[User-agent]i",
            _ => return None,
        },
    )
}

/// W3C_LOG_PARSE(line, format): a predefined format name or an Apache
/// format; one column per specifier, COLUMN1..COLUMNn. `%b`, `%s`,
/// `%D`, `%T`, `%p`, `%P`, `%I`, `%O`, `%k` are BIGINT (`-` is NULL), the
/// rest VARCHAR.
pub(super) fn w3c_log_parse(args: &[Value]) -> EvalResult<Value> {
    const F: &str = "W3C_LOG_PARSE";
    if any_null(args) {
        return Ok(Value::Null);
    }
    let s = text(F, args, 0)?;
    let fmt_arg = text(F, args, 1)?;
    if fmt_arg.trim().eq_ignore_ascii_case("IIS") {
        return fail(format!("{F}: the IIS format is not supported"));
    }
    let fmt = w3c_format(fmt_arg).unwrap_or(fmt_arg);
    let cs = chars(fmt);
    let mut pattern = String::from("^");
    let mut columns = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        if cs[i] != '%' {
            let mut buf = [0u8; 4];
            pattern.push_str(&regex_lite::escape(cs[i].encode_utf8(&mut buf)));
            i += 1;
            continue;
        }
        i += 1;
        // Modifiers: `<`, `>`, `!`, status codes; a `{...}` or `[...]`
        // argument.
        while i < cs.len() && (matches!(cs[i], '<' | '>' | '!' | ',') || cs[i].is_ascii_digit()) {
            i += 1;
        }
        if i < cs.len() && (cs[i] == '{' || cs[i] == '[') {
            let close = if cs[i] == '{' { '}' } else { ']' };
            match cs[i..].iter().position(|&c| c == close) {
                Some(p) => i += p + 1,
                None => return fail(format!("{F}: unterminated argument in format '{fmt}'")),
            }
        }
        let Some(&letter) = cs.get(i) else {
            return fail(format!("{F}: format '{fmt}' ends in '%'"));
        };
        i += 1;
        if letter == '%' {
            pattern.push('%');
            continue;
        }
        if !letter.is_ascii_alphabetic() {
            return fail(format!(
                "{F}: unknown specifier '%{letter}' in format '{fmt}'"
            ));
        }
        let numeric = matches!(letter, 'b' | 's' | 'D' | 'T' | 'p' | 'P' | 'I' | 'O' | 'k');
        pattern.push_str(if letter == 't' {
            r"(\[[^\]]*\])"
        } else {
            "(.*?)"
        });
        let mut col = Column::varchar(columns.len() + 1, 4096);
        if numeric {
            col.ty = SqlType::BigInt;
        }
        columns.push(col);
    }
    pattern.push('$');
    let re = regex(&pattern)?;
    let Some(caps) = re.captures(s) else {
        return Ok(Value::Null);
    };
    let values = columns
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let field = caps.get(k + 1).map(|m| m.as_str());
            let field = if c.ty == SqlType::BigInt && field == Some("-") {
                None
            } else {
                field
            };
            c.value(F, field)
        })
        .collect::<EvalResult<Vec<_>>>()?;
    Ok(row(&columns, values))
}

/// Fields of `s` split on `delim` (a string), honoring an escape
/// character and begin/end quote characters; quotes are dropped.
fn split_fields(
    s: &str,
    delim: &str,
    escape: Option<char>,
    quote: Option<(char, char)>,
) -> Vec<String> {
    let cs = chars(s);
    let dl = chars(delim);
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if Some(c) == escape && i + 1 < cs.len() {
            cur.push(cs[i + 1]);
            i += 2;
        } else if in_quote {
            if Some(c) == quote.map(|q| q.1) {
                in_quote = false;
            } else {
                cur.push(c);
            }
            i += 1;
        } else if Some(c) == quote.map(|q| q.0) {
            in_quote = true;
            i += 1;
        } else if !dl.is_empty() && cs[i..].starts_with(&dl) {
            out.push(std::mem::take(&mut cur));
            i += dl.len();
        } else {
            cur.push(c);
            i += 1;
        }
    }
    out.push(cur);
    out
}

/// VARIABLE_COLUMN_LOG_PARSE(line, columns, delimiter[, escape[, quote]]):
/// `columns` is a count (COLUMN1..COLUMNn, VARCHAR) or a list of
/// `name TYPE type` descriptions. Missing fields are NULL, extra ones
/// dropped.
pub(super) fn variable_column_log_parse(args: &[Value]) -> EvalResult<Value> {
    const F: &str = "VARIABLE_COLUMN_LOG_PARSE";
    if args[..3].iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    let s = text(F, args, 0)?;
    let columns = match &args[1] {
        Value::Str(spec) => parse_columns(F, spec, SqlType::Varchar(4096))?,
        _ => {
            let n = int(F, args, 1)?;
            if !(1..=10_000).contains(&n) {
                return fail(format!("{F}: bad number of columns {n}"));
            }
            (1..=n as usize).map(|i| Column::varchar(i, 4096)).collect()
        }
    };
    let delim = text(F, args, 2)?;
    if delim.is_empty() {
        return fail(format!("{F}: the delimiter is empty"));
    }
    let one = |i: usize| -> EvalResult<Option<String>> {
        match args.get(i) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => Ok(Some(text(F, args, i)?.to_string())),
        }
    };
    let escape = one(3)?.and_then(|e| e.chars().next());
    let quote = one(4)?.and_then(|q| {
        let mut it = q.chars();
        let b = it.next()?;
        Some((b, it.next().unwrap_or(b)))
    });
    let fields = split_fields(s, delim, escape, quote);
    let values = columns
        .iter()
        .enumerate()
        .map(|(i, c)| c.value(F, fields.get(i).map(String::as_str)))
        .collect::<EvalResult<Vec<_>>>()?;
    Ok(row(&columns, values))
}

/// FIXED_COLUMN_LOG_PARSE(line, 'name TYPE type START n [FOR m], ...'):
/// 0-based character positions; without FOR a field runs to the end.
pub(super) fn fixed_column_log_parse(args: &[Value]) -> EvalResult<Value> {
    const F: &str = "FIXED_COLUMN_LOG_PARSE";
    if any_null(args) {
        return Ok(Value::Null);
    }
    let cs = chars(text(F, args, 0)?);
    let columns = parse_columns(F, text(F, args, 1)?, SqlType::Varchar(4096))?;
    let values = columns
        .iter()
        .map(|c| {
            let Some(start) = c.start else {
                return fail(format!("{F}: column {} has no START", c.name));
            };
            let end = c
                .len
                .map_or(cs.len(), |n| start.saturating_add(n))
                .min(cs.len());
            let field: Option<String> = (start < cs.len()).then(|| cs[start..end].iter().collect());
            c.value(F, field.as_deref())
        })
        .collect::<EvalResult<Vec<_>>>()?;
    Ok(row(&columns, values))
}

/// SYS_LOG_PARSE(line): `Mon DD HH:MM:SS rest` into COLUMN1 TIMESTAMP
/// (no year in syslog: 1970, as SimpleDateFormat defaults) and COLUMN2
/// VARCHAR, the rest of the line.
pub(super) fn sys_log_parse(args: &[Value]) -> EvalResult<Value> {
    const F: &str = "SYS_LOG_PARSE";
    if any_null(args) {
        return Ok(Value::Null);
    }
    let s = text(F, args, 0)?;
    let re = regex(r"^([A-Za-z]{3} +\d{1,2} \d{1,2}:\d{2}:\d{2}) ?(.*)$")?;
    let Some(caps) = re.captures(s) else {
        return Ok(Value::Null);
    };
    let ts = datefmt::parse("MMM d HH:mm:ss", &caps[1])
        .map_err(|e| EvalError(format!("{F}: cannot parse '{}': {e}", &caps[1])))?;
    let columns = [
        Column {
            ty: SqlType::Timestamp,
            ..Column::varchar(1, 0)
        },
        Column::varchar(2, 0),
    ];
    Ok(row(
        &columns,
        vec![Value::Timestamp(ts), Value::str(&caps[2])],
    ))
}

#[cfg(test)]
mod tests {
    use super::super::functions::calls::*;
    use super::*;

    fn fields(v: &Value) -> Vec<(String, String)> {
        match v {
            Value::Row(f) => f
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_text().unwrap_or_else(|| "NULL".into())))
                .collect(),
            other => panic!("not a row: {other:?}"),
        }
    }

    #[test]
    fn regex_log_parse_groups() {
        let v = ok("REGEX_LOG_PARSE", vec![s("ENERGY"), s(".*([E].).*([R].*)")]);
        assert_eq!(
            fields(&v),
            vec![
                ("COLUMN1".into(), "EN".into()),
                ("COLUMN2".into(), "RGY".into())
            ]
        );
        assert_eq!(
            ok("REGEX_LOG_PARSE", vec![s("RETAIL"), s("([0-9]+)")]),
            Value::Null
        );
        let v = ok(
            "REGEX_LOG_PARSE",
            vec![
                s("id=42 név=Zoë"),
                s(r"id=(\d+) név=(\S+)"),
                s("ID INTEGER, NAME VARCHAR(8)"),
            ],
        );
        assert_eq!(
            fields(&v),
            vec![("ID".into(), "42".into()), ("NAME".into(), "Zoë".into())]
        );
        assert!(matches!(&v, Value::Row(f) if f[0].1 == Value::Int(42)));
        assert!(err("REGEX_LOG_PARSE", vec![s("x"), s("(x)"), s("A, B")]).contains("2 columns"));
        // Lazy: the first group takes as little as it can.
        let v = ok("FAST_REGEX_LOG_PARSER", vec![s("a-b-c"), s("(.*)-(.*)")]);
        assert_eq!(fields(&v)[0].1, "a");
        let v = ok("REGEX_LOG_PARSE", vec![s("a-b-c"), s("(.*)-(.*)")]);
        assert_eq!(fields(&v)[0].1, "a-b");
    }

    #[test]
    fn w3c_log_parse_formats() {
        let line =
            r#"192.0.2.7 - alice [21/Mar/2017:10:01:02 +0000] "GET /a b.html HTTP/1.1" 200 2326"#;
        let v = ok("W3C_LOG_PARSE", vec![s(line), s("COMMON")]);
        let f = fields(&v);
        assert_eq!(f.len(), 7);
        assert_eq!(f[0], ("COLUMN1".into(), "192.0.2.7".into()));
        assert_eq!(f[1].1, "-");
        assert_eq!(f[2].1, "alice");
        assert_eq!(f[3].1, "[21/Mar/2017:10:01:02 +0000]");
        assert_eq!(f[4].1, "GET /a b.html HTTP/1.1");
        assert!(
            matches!(&v, Value::Row(r) if r[5].1 == Value::Int(200) && r[6].1 == Value::Int(2326))
        );
        let vhost = format!("www.example.com {}", line.replace(" 2326", " -"));
        let v = ok("W3C_LOG_PARSE", vec![s(&vhost), s("common  with vhost")]);
        let f = fields(&v);
        assert_eq!(f.len(), 8);
        assert_eq!(f[0].1, "www.example.com");
        assert_eq!(f[7].1, "NULL");
        let ext = format!(r#"{line} "http://ref.example/" "Mozilla/5.0 (X11)""#);
        let f = fields(&ok("W3C_LOG_PARSE", vec![s(&ext), s("NCSA EXTENDED")]));
        assert_eq!(f[7].1, "http://ref.example/");
        assert_eq!(f[8].1, "Mozilla/5.0 (X11)");
        let f = fields(&ok(
            "W3C_LOG_PARSE",
            vec![s("http://x/ ---> /index.html"), s("REFERER")],
        ));
        assert_eq!(
            f,
            vec![
                ("COLUMN1".into(), "http://x/".into()),
                ("COLUMN2".into(), "/index.html".into())
            ]
        );
        let f = fields(&ok("W3C_LOG_PARSE", vec![s("curl/8.0"), s("AGENT")]));
        assert_eq!(f[0].1, "curl/8.0");
        let f = fields(&ok("W3C_LOG_PARSE", vec![s("GET 5% 12"), s("%m %p%% %D")]));
        assert_eq!(
            f,
            vec![
                ("COLUMN1".into(), "GET".into()),
                ("COLUMN2".into(), "5".into()),
                ("COLUMN3".into(), "12".into())
            ]
        );
        assert_eq!(
            ok("W3C_LOG_PARSE", vec![s("garbage"), s("COMMON")]),
            Value::Null
        );
        assert!(err("W3C_LOG_PARSE", vec![s("x"), s("IIS")]).contains("IIS"));
    }

    #[test]
    fn variable_column_log_parse_cases() {
        let v = ok("VARIABLE_COLUMN_LOG_PARSE", vec![s("a,b,c"), i(3), s(",")]);
        assert_eq!(
            fields(&v),
            vec![
                ("COLUMN1".into(), "a".into()),
                ("COLUMN2".into(), "b".into()),
                ("COLUMN3".into(), "c".into())
            ]
        );
        let v = ok(
            "VARIABLE_COLUMN_LOG_PARSE",
            vec![s(r"a\,b,c"), i(2), s(","), s("\\"), Value::Null],
        );
        assert_eq!(fields(&v)[0].1, "a,b");
        let v = ok(
            "VARIABLE_COLUMN_LOG_PARSE",
            vec![s("[x;y];z"), i(3), s(";"), s("\\"), s("[]")],
        );
        assert_eq!(
            fields(&v).iter().map(|f| f.1.clone()).collect::<Vec<_>>(),
            vec!["x;y", "z", "NULL"]
        );
        let v = ok(
            "VARIABLE_COLUMN_LOG_PARSE",
            vec![
                s("7::ünï::2024-01-02"),
                s("N TYPE INTEGER, \"name\" TYPE VARCHAR(3), D TYPE DATE"),
                s("::"),
            ],
        );
        assert_eq!(
            fields(&v),
            vec![
                ("N".into(), "7".into()),
                ("name".into(), "ünï".into()),
                ("D".into(), "2024-01-02".into())
            ]
        );
        assert!(err(
            "VARIABLE_COLUMN_LOG_PARSE",
            vec![s("x,y"), s("N TYPE INTEGER"), s(",")]
        )
        .contains("column N"));
        assert!(err(
            "VARIABLE_COLUMN_LOG_PARSE",
            vec![s("x"), s("N TYPE BLOB"), s(",")]
        )
        .contains("unknown type"));
        assert_eq!(
            ok("VARIABLE_COLUMN_LOG_PARSE", vec![Value::Null, i(1), s(",")]),
            Value::Null
        );
    }

    #[test]
    fn fixed_column_and_syslog() {
        let v = ok(
            "FIXED_COLUMN_LOG_PARSE",
            vec![
                s("0042alice 21/Mar/2017:10:01:02"),
                s("ID TYPE INTEGER START 0 FOR 4, NAME TYPE VARCHAR(5) START 4 FOR 5, AT TYPE TIMESTAMP 'dd/MMM/yyyy:HH:mm:ss' START 10"),
            ],
        );
        assert_eq!(
            fields(&v),
            vec![
                ("ID".into(), "42".into()),
                ("NAME".into(), "alice".into()),
                ("AT".into(), "2017-03-21 10:01:02".into())
            ]
        );
        assert!(err("FIXED_COLUMN_LOG_PARSE", vec![s("x"), s("A TYPE INTEGER")]).contains("START"));
        let v = ok(
            "SYS_LOG_PARSE",
            vec![s("Mar  5 07:08:09 host1 sshd[42]: ok")],
        );
        assert_eq!(
            fields(&v),
            vec![
                ("COLUMN1".into(), "1970-03-05 07:08:09".into()),
                ("COLUMN2".into(), "host1 sshd[42]: ok".into())
            ]
        );
        assert_eq!(ok("SYS_LOG_PARSE", vec![s("not syslog")]), Value::Null);
    }
}
