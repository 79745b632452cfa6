//! Redshift's COPY, translated for PostgreSQL: the CopyOptions grammar,
//! and the staged object's data turned into rows of PostgreSQL's COPY
//! text format, so that what Redshift would load is what PostgreSQL
//! loads. Sans-IO: no sockets, no database.
//!
//! PostgreSQL's own COPY options differ from Redshift's (no JSON, no
//! IGNOREHEADER n, no BLANKSASNULL, no epoch times), so Riffle reads the
//! data itself, as Redshift would, and hands PostgreSQL canonical rows
//! (`COPY t (cols) FROM STDIN`: tab-separated, `\N` for NULL, backslash
//! escapes). The per-column rules that depend on the column's type
//! (empty fields of non-character columns are NULL, TIMEFORMAT applies to
//! timestamps, TRIMBLANKS to VARCHAR) use the table's columns as the
//! database reports them ([`Column`]).

use std::io::Read;

/// The data format of the staged object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// Character-delimited text (Redshift's default, `|`).
    Text,
    /// `CSV [QUOTE [AS] 'q']`.
    Csv { quote: u8 },
    /// `JSON 'auto'` or `JSON 'auto ignorecase'`: object keys name
    /// columns.
    JsonAuto { ignore_case: bool },
}

/// TIMEFORMAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    /// None given: `YYYY-MM-DD HH:MI:SS`, which PostgreSQL reads as is.
    Default,
    /// `'auto'`: values go to PostgreSQL's own date/time parser, which
    /// reads the ISO 8601 and SQL forms Redshift recognises.
    Auto,
    EpochSecs,
    EpochMillis,
}

/// The COPY options Riffle carries out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOptions {
    pub format: Format,
    /// An ASCII byte; `|` for text, `,` for CSV.
    pub delimiter: u8,
    pub gzip: bool,
    pub ignore_header: usize,
    pub ignore_blank_lines: bool,
    /// NULL AS; `\N` by default.
    pub null_as: String,
    pub blanks_as_null: bool,
    pub empty_as_null: bool,
    pub time_format: TimeFormat,
    pub escape: bool,
    pub remove_quotes: bool,
    pub trim_blanks: bool,
    pub truncate_columns: bool,
    pub fill_record: bool,
    /// ACCEPTINVCHARS: each invalid UTF-8 byte becomes this character.
    pub accept_inv_chars: Option<char>,
    /// EXPLICIT_IDS: identity columns are loaded from the data too.
    pub explicit_ids: bool,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            format: Format::Text,
            delimiter: b'|',
            gzip: false,
            ignore_header: 0,
            ignore_blank_lines: false,
            null_as: "\\N".into(),
            blanks_as_null: false,
            empty_as_null: false,
            time_format: TimeFormat::Default,
            escape: false,
            remove_quotes: false,
            trim_blanks: false,
            truncate_columns: false,
            fill_record: false,
            accept_inv_chars: None,
            explicit_ids: false,
        }
    }
}

/// Why CopyOptions cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionsError {
    /// Redshift would refuse the COPY as malformed
    /// (`Redshift.SyntaxError`).
    Syntax(String),
    /// Conflicting, redundant or invalid values
    /// (`Redshift.IncorrectCopyOptions`).
    Incorrect(String),
    /// Valid for Redshift, not carried out by Riffle.
    Unsupported(String),
}

/// One lexical token of CopyOptions.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A keyword or number, upper-cased.
    Word(String),
    /// A quoted string, `''` read as `'`, backslashes kept.
    Str(String),
}

fn tokens(src: &str) -> Result<Vec<Token>, OptionsError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() || c == b';' || c == b',' {
            i += 1;
        } else if c == b'\'' {
            let mut s = Vec::new();
            i += 1;
            loop {
                match b.get(i) {
                    None => {
                        return Err(OptionsError::Syntax(
                            "unterminated quoted string in CopyOptions".into(),
                        ))
                    }
                    Some(b'\'') if b.get(i + 1) == Some(&b'\'') => {
                        s.push(b'\'');
                        i += 2;
                    }
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    // A backslash keeps the next byte, so `\'` does not
                    // end the string.
                    Some(b'\\') if i + 1 < b.len() => {
                        s.extend_from_slice(&b[i..i + 2]);
                        i += 2;
                    }
                    Some(&x) => {
                        s.push(x);
                        i += 1;
                    }
                }
            }
            out.push(Token::Str(String::from_utf8_lossy(&s).into_owned()));
        } else if c.is_ascii_alphanumeric() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Token::Word(src[start..i].to_ascii_uppercase()));
        } else {
            let rest: String = src[i..].chars().take(12).collect();
            return Err(OptionsError::Syntax(format!(
                "syntax error at or near \"{rest}\""
            )));
        }
    }
    Ok(out)
}

/// A DELIMITER or QUOTE argument: one ASCII character, written as is or
/// as `\t`, `\n`, `\r`, `\\` or an octal `\ddd`.
fn one_char(what: &str, s: &str) -> Result<u8, OptionsError> {
    let b = s.as_bytes();
    let c = match b {
        [c] => Some(*c),
        [b'\\', b't'] => Some(b'\t'),
        [b'\\', b'n'] => Some(b'\n'),
        [b'\\', b'r'] => Some(b'\r'),
        [b'\\', x] => Some(*x),
        [b'\\', d @ ..] if d.len() == 3 && d.iter().all(|x| (b'0'..=b'7').contains(x)) => {
            u8::from_str_radix(&s[1..], 8).ok()
        }
        _ => None,
    };
    match c {
        Some(c) if c.is_ascii() && c != b'\n' && c != 0 => Ok(c),
        _ => Err(OptionsError::Incorrect(format!(
            "COPY {what} must be a single ASCII character other than newline: '{s}'"
        ))),
    }
}

impl CopyOptions {
    /// Reads a CopyCommand's CopyOptions.
    pub fn parse(src: &str) -> Result<CopyOptions, OptionsError> {
        let toks = tokens(src)?;
        let mut o = CopyOptions::default();
        let mut format: Option<&'static str> = None;
        let mut delimiter: Option<u8> = None;
        let mut quote: Option<u8> = None;
        let mut json_option: Option<String> = None;
        let mut seen: Vec<String> = Vec::new();
        let mut i = 0;
        let word = |i: usize| match toks.get(i) {
            Some(Token::Word(w)) => Some(w.as_str()),
            _ => None,
        };
        while i < toks.len() {
            let Token::Word(kw) = &toks[i] else {
                let Token::Str(s) = &toks[i] else {
                    unreachable!()
                };
                return Err(OptionsError::Syntax(format!(
                    "syntax error at or near \"'{s}'\""
                )));
            };
            i += 1;
            let mut kw = kw.as_str();
            if kw == "FORMAT" {
                if word(i) == Some("AS") {
                    i += 1;
                }
                kw = match word(i) {
                    Some(
                        w @ ("JSON" | "CSV" | "AVRO" | "PARQUET" | "ORC" | "FIXEDWIDTH"
                        | "SHAPEFILE"),
                    ) => {
                        i += 1;
                        w
                    }
                    _ => {
                        return Err(OptionsError::Syntax(
                            "syntax error: FORMAT [AS] must name a data format".into(),
                        ))
                    }
                };
            }
            // Returns the next string argument, after an optional AS.
            let arg = |i: &mut usize, required: bool| -> Result<Option<String>, OptionsError> {
                if word(*i) == Some("AS") {
                    *i += 1;
                }
                match toks.get(*i) {
                    Some(Token::Str(s)) => {
                        *i += 1;
                        Ok(Some(s.clone()))
                    }
                    _ if required => Err(OptionsError::Syntax(format!(
                        "syntax error: {kw} needs a quoted argument"
                    ))),
                    _ => Ok(None),
                }
            };
            if seen.iter().any(|s| s == kw) {
                return Err(OptionsError::Incorrect(format!(
                    "conflicting or redundant options: {kw} is given twice"
                )));
            }
            seen.push(kw.to_owned());
            let mut set_format = |f: &'static str| match format.replace(f) {
                Some(prev) => Err(OptionsError::Incorrect(format!(
                    "conflicting or redundant options: {prev} and {f}"
                ))),
                None => Ok(()),
            };
            match kw {
                "JSON" => {
                    set_format("JSON")?;
                    json_option = Some(arg(&mut i, false)?.unwrap_or_else(|| "auto".into()));
                }
                "CSV" => {
                    set_format("CSV")?;
                    if word(i) == Some("QUOTE") {
                        i += 1;
                        seen.push("QUOTE".into());
                        quote = Some(one_char("QUOTE", &arg(&mut i, true)?.unwrap_or_default())?);
                    }
                }
                "QUOTE" => {
                    quote = Some(one_char("QUOTE", &arg(&mut i, true)?.unwrap_or_default())?)
                }
                "DELIMITER" => {
                    delimiter = Some(one_char(
                        "delimiter",
                        &arg(&mut i, true)?.unwrap_or_default(),
                    )?)
                }
                "GZIP" => o.gzip = true,
                "IGNOREHEADER" => {
                    if word(i) == Some("AS") {
                        i += 1;
                    }
                    o.ignore_header = match word(i).map(str::parse::<usize>) {
                        Some(Ok(n)) => {
                            i += 1;
                            n
                        }
                        _ => {
                            return Err(OptionsError::Syntax(
                                "syntax error: IGNOREHEADER needs a number of rows".into(),
                            ))
                        }
                    };
                }
                "IGNOREBLANKLINES" => o.ignore_blank_lines = true,
                "NULL" => {
                    let s = arg(&mut i, true)?.unwrap_or_default();
                    if s == "\\n" {
                        return Err(OptionsError::Incorrect(
                            "NULL AS '\\n' is not allowed: newline ends a line".into(),
                        ));
                    }
                    o.null_as = match s.as_str() {
                        "\\0" | "\\000" => "\0".into(),
                        _ => s,
                    };
                }
                "BLANKSASNULL" => o.blanks_as_null = true,
                "EMPTYASNULL" => o.empty_as_null = true,
                "ESCAPE" => o.escape = true,
                "REMOVEQUOTES" => o.remove_quotes = true,
                "TRIMBLANKS" => o.trim_blanks = true,
                "TRUNCATECOLUMNS" => o.truncate_columns = true,
                "FILLRECORD" => o.fill_record = true,
                "ACCEPTINVCHARS" => {
                    let c = arg(&mut i, false)?.unwrap_or_else(|| "?".into());
                    match c.as_bytes() {
                        [b] if b.is_ascii() && *b != 0 => o.accept_inv_chars = Some(*b as char),
                        _ => {
                            return Err(OptionsError::Incorrect(format!(
                                "ACCEPTINVCHARS needs one ASCII character other than NUL: '{c}'"
                            )))
                        }
                    }
                }
                "TIMEFORMAT" => {
                    o.time_format = match arg(&mut i, true)?.unwrap_or_default().as_str() {
                        "auto" => TimeFormat::Auto,
                        "epochsecs" => TimeFormat::EpochSecs,
                        "epochmillisecs" => TimeFormat::EpochMillis,
                        "YYYY-MM-DD HH:MI:SS" => TimeFormat::Default,
                        other => {
                            return Err(OptionsError::Unsupported(format!(
                                "TIMEFORMAT '{other}' (only 'auto', 'epochsecs', 'epochmillisecs' and the default 'YYYY-MM-DD HH:MI:SS')"
                            )))
                        }
                    }
                }
                "DATEFORMAT" => match arg(&mut i, true)?.unwrap_or_default().as_str() {
                    "auto" | "YYYY-MM-DD" => {}
                    other => {
                        return Err(OptionsError::Unsupported(format!(
                            "DATEFORMAT '{other}' (only 'auto' and the default 'YYYY-MM-DD')"
                        )))
                    }
                },
                "ENCODING" => {
                    if word(i) == Some("AS") {
                        i += 1;
                    }
                    let enc = match toks.get(i) {
                        Some(Token::Word(w)) => w.clone(),
                        Some(Token::Str(s)) => s.to_ascii_uppercase(),
                        None => String::new(),
                    };
                    i += 1;
                    match enc.as_str() {
                        "UTF8" => {}
                        "UTF16" | "UTF16LE" | "UTF16BE" => {
                            return Err(OptionsError::Unsupported(format!("ENCODING {enc}")))
                        }
                        _ => {
                            return Err(OptionsError::Incorrect(format!(
                                "ENCODING must be UTF8, UTF16, UTF16LE or UTF16BE, not {enc}"
                            )))
                        }
                    }
                }
                "MAXERROR" => {
                    if word(i) == Some("AS") {
                        i += 1;
                    }
                    match word(i).map(str::parse::<u64>) {
                        Some(Ok(0)) => i += 1,
                        Some(Ok(_)) => {
                            return Err(OptionsError::Unsupported(
                                "MAXERROR above 0 (a batch loads whole or not at all)".into(),
                            ))
                        }
                        _ => {
                            return Err(OptionsError::Syntax(
                                "syntax error: MAXERROR needs a number".into(),
                            ))
                        }
                    }
                }
                // What only tunes Redshift itself, or what PostgreSQL does
                // anyway: accepted, nothing to do.
                "COMPUPDATE" | "STATUPDATE" => {
                    if matches!(
                        word(i),
                        Some("ON" | "OFF" | "TRUE" | "FALSE" | "PRESET")
                    ) {
                        i += 1;
                    }
                }
                "REGION" => {
                    arg(&mut i, true)?;
                }
                "EXPLICIT_IDS" => o.explicit_ids = true,
                "ROUNDEC" | "MANIFEST" => {}
                "AVRO" | "PARQUET" | "ORC" | "FIXEDWIDTH" | "SHAPEFILE" | "LZOP" | "BZIP2"
                | "ZSTD" | "NOLOAD" | "ACCEPTANYDATE" => {
                    return Err(OptionsError::Unsupported(kw.to_owned()))
                }
                "CREDENTIALS" | "IAM_ROLE" | "ACCESS_KEY_ID" | "SECRET_ACCESS_KEY"
                | "SESSION_TOKEN" | "MASTER_SYMMETRIC_KEY" | "ENCRYPTED" | "READRATIO"
                | "SSH" => {
                    return Err(OptionsError::Incorrect(format!(
                        "{kw} cannot be given in CopyOptions: Firehose writes the COPY command's source and authorization itself"
                    )))
                }
                other => {
                    return Err(OptionsError::Syntax(format!(
                        "syntax error at or near \"{other}\""
                    )))
                }
            }
        }
        let conflict = |a: &str, b: &str| {
            Err(OptionsError::Incorrect(format!(
                "conflicting options: {a} cannot be used with {b}"
            )))
        };
        match format {
            Some("CSV") => {
                if o.escape {
                    return conflict("CSV", "ESCAPE");
                }
                if o.remove_quotes {
                    return conflict("CSV", "REMOVEQUOTES");
                }
                o.format = Format::Csv {
                    quote: quote.unwrap_or(b'"'),
                };
                o.delimiter = delimiter.unwrap_or(b',');
            }
            Some("JSON") => {
                for (set, name) in [
                    (delimiter.is_some(), "DELIMITER"),
                    (o.escape, "ESCAPE"),
                    (o.remove_quotes, "REMOVEQUOTES"),
                    (o.fill_record, "FILLRECORD"),
                ] {
                    if set {
                        return conflict("JSON", name);
                    }
                }
                o.format = match json_option.as_deref() {
                    Some("auto") => Format::JsonAuto { ignore_case: false },
                    Some("auto ignorecase") => Format::JsonAuto { ignore_case: true },
                    Some(p) if p.starts_with("s3://") => {
                        return Err(OptionsError::Unsupported(format!(
                            "JSON with a JSONPaths file ('{p}')"
                        )))
                    }
                    Some(other) => {
                        return Err(OptionsError::Unsupported(format!("JSON '{other}'")))
                    }
                    None => unreachable!("JSON sets its option"),
                };
            }
            _ => {
                if quote.is_some() {
                    return Err(OptionsError::Incorrect(
                        "QUOTE can be used only with CSV".into(),
                    ));
                }
                o.delimiter = delimiter.unwrap_or(b'|');
            }
        }
        if quote == Some(o.delimiter) {
            return conflict("QUOTE", "the same DELIMITER");
        }
        Ok(o)
    }
}

/// What the database says of one target column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: ColumnKind,
}

/// The column types the conversion rules tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// CHAR/VARCHAR/TEXT; `varchar` for TRIMBLANKS, `max_chars` for
    /// TRUNCATECOLUMNS.
    Text {
        varchar: bool,
        max_chars: Option<usize>,
    },
    Timestamp,
    TimestampTz,
    Other,
}

impl ColumnKind {
    /// From PostgreSQL's `format_type()` text.
    pub fn from_type(t: &str) -> ColumnKind {
        let len = || {
            t.split_once('(')
                .and_then(|(_, r)| r.strip_suffix(')'))
                .and_then(|n| n.parse().ok())
        };
        if t.starts_with("character varying") || t.starts_with("varchar") {
            ColumnKind::Text {
                varchar: true,
                max_chars: len(),
            }
        } else if t == "text" {
            ColumnKind::Text {
                varchar: true,
                max_chars: None,
            }
        } else if t.starts_with("character") || t.starts_with("bpchar") || t == "\"char\"" {
            ColumnKind::Text {
                varchar: false,
                max_chars: len(),
            }
        } else if t.starts_with("timestamp")
            && t.ends_with("with time zone")
            && !t.ends_with("without time zone")
        {
            ColumnKind::TimestampTz
        } else if t.starts_with("timestamp") {
            ColumnKind::Timestamp
        } else {
            ColumnKind::Other
        }
    }
}

/// Why the data cannot be loaded (`Redshift.DataLoadFailed`): the line of
/// the staged object (1-based, after decompression) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// Rows in PostgreSQL's COPY text format.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rows {
    pub body: Vec<u8>,
    pub count: u64,
}

/// One field as read from the data.
enum Field {
    Null,
    /// A trailing column FILLRECORD supplies.
    Missing,
    Value(String),
}

/// Turns the staged object's bytes into rows for `columns` (the COPY's
/// column list, in order).
pub fn translate(o: &CopyOptions, columns: &[Column], data: &[u8]) -> Result<Rows, LoadError> {
    let at0 = |reason: String| LoadError { line: 0, reason };
    let inflated;
    let data = if o.gzip {
        let mut out = Vec::with_capacity(data.len() * 4);
        flate2::read::MultiGzDecoder::new(data)
            .read_to_end(&mut out)
            .map_err(|e| at0(format!("gzip: {e}")))?;
        inflated = out;
        &inflated[..]
    } else {
        data
    };
    let text = utf8(data, o.accept_inv_chars)?;
    let (skipped, body) = skip_lines(&text, o.ignore_header);
    let mut out = Rows::default();
    let mut emit = |line: usize, fields: Vec<Field>| -> Result<(), LoadError> {
        let err = |reason: String| LoadError { line, reason };
        if fields.len() > columns.len() {
            return Err(err(format!(
                "Extra column(s) found: {} fields for {} columns",
                fields.len(),
                columns.len()
            )));
        }
        if fields.len() < columns.len() && !o.fill_record {
            return Err(err(format!(
                "Delimiter not found: {} fields for {} columns",
                fields.len(),
                columns.len()
            )));
        }
        let mut fields = fields.into_iter();
        for (n, col) in columns.iter().enumerate() {
            if n > 0 {
                out.body.push(b'\t');
            }
            let f = fields.next().unwrap_or(Field::Missing);
            match convert(o, col, f).map_err(|r| err(format!("column {}: {r}", col.name)))? {
                None => out.body.extend_from_slice(b"\\N"),
                Some(v) => escape_into(&mut out.body, &v),
            }
        }
        out.body.push(b'\n');
        out.count += 1;
        Ok(())
    };
    match &o.format {
        Format::JsonAuto { ignore_case } => {
            json_rows(body, skipped, columns, *ignore_case, &mut emit)
        }
        Format::Csv { quote } => csv_rows(o, *quote, body, skipped, &mut emit),
        Format::Text => text_rows(o, body, skipped, &mut emit),
    }?;
    Ok(out)
}

/// The data as text: invalid UTF-8 is an error unless ACCEPTINVCHARS
/// replaces each invalid byte.
fn utf8(data: &[u8], replace: Option<char>) -> Result<std::borrow::Cow<'_, str>, LoadError> {
    match std::str::from_utf8(data) {
        Ok(s) => Ok(s.into()),
        Err(e) => {
            let Some(r) = replace else {
                let line = 1 + data[..e.valid_up_to()]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count();
                return Err(LoadError {
                    line,
                    reason: "String contains invalid or unsupported UTF8 codepoints".into(),
                });
            };
            let mut out = String::with_capacity(data.len());
            let mut rest = data;
            loop {
                match std::str::from_utf8(rest) {
                    Ok(s) => {
                        out.push_str(s);
                        break;
                    }
                    Err(e) => {
                        let (ok, bad) = rest.split_at(e.valid_up_to());
                        out.push_str(std::str::from_utf8(ok).expect("checked valid"));
                        let n = e.error_len().unwrap_or(bad.len());
                        out.extend(std::iter::repeat_n(r, n));
                        rest = &bad[n..];
                    }
                }
            }
            Ok(out.into())
        }
    }
}

/// IGNOREHEADER: the number of lines skipped and the rest.
fn skip_lines(text: &str, n: usize) -> (usize, &str) {
    let mut rest = text;
    let mut skipped = 0;
    while skipped < n && !rest.is_empty() {
        rest = rest.split_once('\n').map_or("", |(_, r)| r);
        skipped += 1;
    }
    (skipped, rest)
}

/// Redshift's rules for one field of `col`: NULL, or the text PostgreSQL
/// gets.
fn convert(o: &CopyOptions, col: &Column, f: Field) -> Result<Option<String>, String> {
    let v = match f {
        Field::Null => return Ok(None),
        Field::Missing => {
            return Ok(match col.kind {
                ColumnKind::Text { .. } if !o.empty_as_null => Some(String::new()),
                _ => None,
            })
        }
        Field::Value(v) => v,
    };
    match col.kind {
        ColumnKind::Text { varchar, max_chars } => {
            if v.is_empty() {
                return Ok((!o.empty_as_null).then_some(v));
            }
            if o.blanks_as_null && v.chars().all(char::is_whitespace) {
                return Ok(None);
            }
            let mut v = v;
            if o.trim_blanks && varchar {
                v.truncate(v.trim_end().len());
            }
            if let (true, Some(n)) = (o.truncate_columns, max_chars) {
                if let Some((at, _)) = v.char_indices().nth(n) {
                    v.truncate(at);
                }
            }
            Ok(Some(v))
        }
        // Empty and blank fields of other types are always NULL.
        _ if v.trim().is_empty() => Ok(None),
        ColumnKind::Timestamp | ColumnKind::TimestampTz => match o.time_format {
            TimeFormat::EpochSecs => epoch(&v, 1_000_000).map(Some),
            TimeFormat::EpochMillis => epoch(&v, 1_000).map(Some),
            TimeFormat::Default | TimeFormat::Auto => Ok(Some(v)),
        },
        ColumnKind::Other => Ok(Some(v)),
    }
}

/// An epoch time in seconds (`micros_per_unit` 1e6) or milliseconds
/// (1e3), with an optional fraction, as an RFC 3339 UTC timestamp.
fn epoch(v: &str, micros_per_unit: i64) -> Result<String, String> {
    let bad = || format!("Invalid timestamp format or value: '{v}' is not an epoch time");
    let t = v.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: i64 = int.parse().map_err(|_| bad())?;
    let mut micros = whole.checked_mul(micros_per_unit).ok_or_else(bad)?;
    // The fraction, to the microsecond.
    let mut scale = micros_per_unit;
    for d in frac.bytes() {
        scale /= 10;
        if scale == 0 {
            break;
        }
        micros += i64::from(d - b'0') * scale;
    }
    if neg {
        micros = -micros;
    }
    jiff::Timestamp::from_microsecond(micros)
        .map(|ts| ts.to_string())
        .map_err(|_| bad())
}

/// Appends `v` escaped for PostgreSQL's COPY text format.
fn escape_into(out: &mut Vec<u8>, v: &str) {
    for &b in v.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

type Emit<'a> = dyn FnMut(usize, Vec<Field>) -> Result<(), LoadError> + 'a;

/// Delimited text: a line is a row; ESCAPE makes `\` take the next
/// character literally (newline and delimiter included); REMOVEQUOTES
/// strips surrounding quotes, keeping delimiters inside them.
fn text_rows(
    o: &CopyOptions,
    text: &str,
    skipped: usize,
    emit: &mut Emit<'_>,
) -> Result<(), LoadError> {
    let b = text.as_bytes();
    let mut line = skipped + 1;
    let mut row_line = line;
    let mut fields: Vec<Field> = Vec::new();
    // The field's value and whether it was written exactly as NULL AS.
    let mut cur: Vec<u8> = Vec::new();
    let mut raw_start = 0;
    let mut quoted: Option<u8> = None;
    let mut was_quoted = false;
    let mut line_begin = 0;
    let finish = |cur: &mut Vec<u8>, raw: &[u8], was_quoted: bool| -> Field {
        let value = String::from_utf8(std::mem::take(cur)).expect("split at ASCII bytes");
        let null_escaped = o.escape && o.null_as == "\\N" && raw == b"\\\\N";
        if !was_quoted && (raw == o.null_as.as_bytes() || null_escaped) {
            Field::Null
        } else {
            Field::Value(value)
        }
    };
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if o.escape && c == b'\\' {
            match b.get(i + 1) {
                Some(&n) => {
                    if n == b'\n' {
                        line += 1;
                    }
                    cur.push(n);
                    i += 2;
                }
                None => {
                    cur.push(c);
                    i += 1;
                }
            }
            continue;
        }
        if let Some(q) = quoted {
            if c == q {
                quoted = None;
            } else {
                if c == b'\n' {
                    line += 1;
                }
                cur.push(c);
            }
            i += 1;
            continue;
        }
        if o.remove_quotes && (c == b'"' || c == b'\'') && i == raw_start {
            quoted = Some(c);
            was_quoted = true;
            i += 1;
            continue;
        }
        if c == o.delimiter || c == b'\n' {
            fields.push(finish(&mut cur, &b[raw_start..i], was_quoted));
            was_quoted = false;
            raw_start = i + 1;
            if c == b'\n' {
                let blank = fields.len() == 1 && i == line_begin;
                line_begin = i + 1;
                let row = std::mem::take(&mut fields);
                if !(blank && o.ignore_blank_lines) {
                    emit(row_line, row)?;
                }
                line += 1;
                row_line = line;
            }
            i += 1;
            continue;
        }
        cur.push(c);
        i += 1;
    }
    if quoted.is_some() {
        return Err(LoadError {
            line: row_line,
            reason: "Unterminated quoted string (REMOVEQUOTES)".into(),
        });
    }
    if raw_start < b.len() || !fields.is_empty() {
        fields.push(finish(&mut cur, &b[raw_start..], was_quoted));
        emit(row_line, fields)?;
    }
    Ok(())
}

/// CSV: fields in `quote` may hold delimiters and newlines, a doubled
/// quote stands for one, and white space around a quoted field is
/// ignored.
fn csv_rows(
    o: &CopyOptions,
    quote: u8,
    text: &str,
    skipped: usize,
    emit: &mut Emit<'_>,
) -> Result<(), LoadError> {
    let b = text.as_bytes();
    let d = o.delimiter;
    let mut line = skipped + 1;
    let mut i = 0;
    while i < b.len() {
        let row_line = line;
        if b[i] == b'\n' && o.ignore_blank_lines {
            i += 1;
            line += 1;
            continue;
        }
        let mut fields = Vec::new();
        loop {
            // Leading white space before a quote is ignored.
            let mut j = i;
            while j < b.len() && b[j] != d && b[j] != b'\n' && (b[j] == b' ' || b[j] == b'\t') {
                j += 1;
            }
            let field_end = if j < b.len() && b[j] == quote {
                let mut v = Vec::new();
                j += 1;
                loop {
                    match b.get(j) {
                        None => {
                            return Err(LoadError {
                                line: row_line,
                                reason: "Unterminated quoted field".into(),
                            })
                        }
                        Some(&c) if c == quote => {
                            if b.get(j + 1) == Some(&quote) {
                                v.push(quote);
                                j += 2;
                            } else {
                                j += 1;
                                break;
                            }
                        }
                        Some(&c) => {
                            if c == b'\n' {
                                line += 1;
                            }
                            v.push(c);
                            j += 1;
                        }
                    }
                }
                while j < b.len() && (b[j] == b' ' || b[j] == b'\t') && b[j] != d {
                    j += 1;
                }
                if j < b.len() && b[j] != d && b[j] != b'\n' {
                    return Err(LoadError {
                        line,
                        reason: "Invalid quote formatting for CSV".into(),
                    });
                }
                fields.push(Field::Value(
                    String::from_utf8(v).expect("split at ASCII bytes"),
                ));
                j
            } else {
                let mut k = i;
                while k < b.len() && b[k] != d && b[k] != b'\n' {
                    k += 1;
                }
                let raw = &text[i..k];
                fields.push(if raw == o.null_as {
                    Field::Null
                } else {
                    Field::Value(raw.to_owned())
                });
                k
            };
            i = field_end + 1;
            if field_end >= b.len() || b[field_end] == b'\n' {
                line += 1;
                break;
            }
        }
        emit(row_line, fields)?;
    }
    Ok(())
}

/// JSON 'auto': each top-level object is a row; keys name columns
/// (case-insensitively with 'auto ignorecase'); missing keys and `null`
/// are NULL; nested objects and arrays load as their JSON text.
fn json_rows(
    text: &str,
    skipped: usize,
    columns: &[Column],
    ignore_case: bool,
    emit: &mut Emit<'_>,
) -> Result<(), LoadError> {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>();
    let line_at = |offset: usize| {
        skipped
            + 1
            + text.as_bytes()[..offset.min(text.len())]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
    };
    loop {
        let start = stream.byte_offset();
        let Some(next) = stream.next() else {
            return Ok(());
        };
        // The value starts after any white space.
        let first = text[start..].len() - text[start..].trim_start().len();
        let line = line_at(start + first);
        let v = next.map_err(|e| LoadError {
            line,
            reason: format!("Invalid JSON: {e}"),
        })?;
        let serde_json::Value::Object(obj) = v else {
            return Err(LoadError {
                line,
                reason: "Invalid JSONPath format: a JSON array or scalar needs a JSONPaths file; JSON 'auto' loads objects".into(),
            });
        };
        let fields = columns
            .iter()
            .map(|c| {
                let found = if ignore_case {
                    obj.iter()
                        .find(|(k, _)| k.to_lowercase() == c.name.to_lowercase())
                        .map(|(_, v)| v)
                } else {
                    obj.get(&c.name)
                };
                match found {
                    None | Some(serde_json::Value::Null) => Field::Null,
                    Some(serde_json::Value::String(s)) => Field::Value(s.clone()),
                    Some(serde_json::Value::Bool(b)) => Field::Value(b.to_string()),
                    Some(serde_json::Value::Number(n)) => Field::Value(n.to_string()),
                    Some(other) => Field::Value(other.to_string()),
                }
            })
            .collect();
        emit(line, fields)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, t: &str) -> Column {
        Column {
            name: name.into(),
            kind: ColumnKind::from_type(t),
        }
    }

    fn rows(opts: &str, cols: &[Column], data: &[u8]) -> Result<String, LoadError> {
        let o = CopyOptions::parse(opts).unwrap();
        let r = translate(&o, cols, data)?;
        let s = String::from_utf8(r.body).unwrap();
        assert_eq!(r.count as usize, s.lines().count());
        Ok(s)
    }

    fn err(opts: &str) -> OptionsError {
        CopyOptions::parse(opts).unwrap_err()
    }

    #[test]
    fn parses_options() {
        assert_eq!(CopyOptions::parse("").unwrap(), CopyOptions::default());
        let o = CopyOptions::parse(
            "json 'auto' gzip TIMEFORMAT AS 'epochmillisecs' blanksasnull EMPTYASNULL ignoreheader as 2 NULL AS 'nil';",
        )
        .unwrap();
        assert_eq!(
            o,
            CopyOptions {
                format: Format::JsonAuto { ignore_case: false },
                gzip: true,
                time_format: TimeFormat::EpochMillis,
                blanks_as_null: true,
                empty_as_null: true,
                ignore_header: 2,
                null_as: "nil".into(),
                ..CopyOptions::default()
            }
        );
        let o = CopyOptions::parse("FORMAT AS CSV QUOTE AS '''' DELIMITER '\\t'").unwrap();
        assert_eq!(o.format, Format::Csv { quote: b'\'' });
        assert_eq!(o.delimiter, b'\t');
        assert_eq!(
            CopyOptions::parse("delimiter '\\001'").unwrap().delimiter,
            1
        );
        assert_eq!(CopyOptions::parse("csv").unwrap().delimiter, b',');
        assert_eq!(
            CopyOptions::parse("JSON AS 'auto ignorecase'")
                .unwrap()
                .format,
            Format::JsonAuto { ignore_case: true }
        );
        assert_eq!(CopyOptions::parse("NULL AS '\\0'").unwrap().null_as, "\0");
        assert_eq!(
            CopyOptions::parse("ACCEPTINVCHARS")
                .unwrap()
                .accept_inv_chars,
            Some('?')
        );
        // Options that only tune Redshift are accepted.
        assert_eq!(
            CopyOptions::parse(
                "COMPUPDATE OFF STATUPDATE ON REGION 'us-west-2' MAXERROR 0 ROUNDEC"
            )
            .unwrap(),
            CopyOptions::default()
        );
    }

    #[test]
    fn refuses_options_as_redshift_would() {
        assert!(
            matches!(err("DELIMITER ',,'"), OptionsError::Incorrect(m) if m.contains("single ASCII character"))
        );
        assert!(
            matches!(err("CSV ESCAPE"), OptionsError::Incorrect(m) if m.contains("CSV cannot be used with ESCAPE"))
        );
        assert!(matches!(
            err("JSON 'auto' DELIMITER ','"),
            OptionsError::Incorrect(_)
        ));
        assert!(matches!(err("CSV JSON 'auto'"), OptionsError::Incorrect(_)));
        assert!(matches!(err("GZIP GZIP"), OptionsError::Incorrect(m) if m.contains("redundant")));
        assert!(matches!(err("QUOTE '\"'"), OptionsError::Incorrect(_)));
        assert!(matches!(err("IAM_ROLE 'arn'"), OptionsError::Incorrect(_)));
        assert_eq!(
            err("BOGUS"),
            OptionsError::Syntax("syntax error at or near \"BOGUS\"".into())
        );
        assert!(matches!(err("DELIMITER"), OptionsError::Syntax(_)));
        assert!(matches!(err("NULL AS 'x"), OptionsError::Syntax(_)));
        assert!(matches!(err("ignoreheader x"), OptionsError::Syntax(_)));
        assert_eq!(err("LZOP"), OptionsError::Unsupported("LZOP".into()));
        assert!(
            matches!(err("JSON 's3://b/paths.json'"), OptionsError::Unsupported(m) if m.contains("JSONPaths"))
        );
        assert!(matches!(
            err("TIMEFORMAT 'MM/DD/YYYY HH:MI'"),
            OptionsError::Unsupported(_)
        ));
        assert!(matches!(err("MAXERROR 10"), OptionsError::Unsupported(_)));
    }

    #[test]
    fn json_auto_maps_keys_to_columns() {
        let cols = [
            col("id", "integer"),
            col("name", "character varying(20)"),
            col("meta", "text"),
            col("ok", "boolean"),
        ];
        let data = br#"{"id": 1, "name": "a\tb", "meta": {"k": [1, 2]}, "ok": true, "ignored": 5}{"name":"x\\y","Id":2}
{"id": null, "name": "", "ok": false}"#;
        assert_eq!(
            rows("JSON 'auto'", &cols, data).unwrap(),
            "1\ta\\tb\t{\"k\":[1,2]}\ttrue\n\\N\tx\\\\y\t\\N\t\\N\n\\N\t\t\\N\tfalse\n"
        );
        // 'auto ignorecase' matches `Id`.
        assert!(rows("JSON 'auto ignorecase'", &cols, data)
            .unwrap()
            .contains("\n2\tx\\\\y"));
        let e = rows("JSON 'auto'", &cols, b"{\"id\":1}\n[1,2]").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("JSONPaths"), "{e}");
        let e = rows("JSON 'auto'", &cols, b"{\"id\":1}\n\n{\"id\":").unwrap_err();
        assert_eq!(e.line, 3);
    }

    #[test]
    fn time_formats() {
        let cols = [
            col("t", "timestamp without time zone"),
            col("tz", "timestamp(3) with time zone"),
            col("n", "bigint"),
        ];
        assert_eq!(
            rows(
                "JSON 'auto' TIMEFORMAT 'epochsecs'",
                &cols,
                br#"{"t": 1700000000, "tz": "1700000000.25", "n": 1700000000}"#
            )
            .unwrap(),
            "2023-11-14T22:13:20Z\t2023-11-14T22:13:20.25Z\t1700000000\n"
        );
        assert_eq!(
            rows(
                "TIMEFORMAT 'epochmillisecs'",
                &cols,
                b"1700000000123|-1|5\n"
            )
            .unwrap(),
            "2023-11-14T22:13:20.123Z\t1969-12-31T23:59:59.999Z\t5\n"
        );
        // 'auto' and the default hand the text to PostgreSQL's parser.
        assert_eq!(
            rows(
                "TIMEFORMAT 'auto'",
                &cols,
                b"2024-01-02 03:04:05|2024-01-02T03:04:05+02:00|1\n"
            )
            .unwrap(),
            "2024-01-02 03:04:05\t2024-01-02T03:04:05+02:00\t1\n"
        );
        let e = rows("TIMEFORMAT 'epochsecs'", &cols, b"2024-01-02|x|1\n").unwrap_err();
        assert!(e.reason.contains("column t: Invalid timestamp"), "{e}");
    }

    #[test]
    fn csv_with_delimiter_quotes_and_header() {
        let cols = [
            col("a", "integer"),
            col("b", "varchar(10)"),
            col("c", "text"),
        ];
        let data = b"a;b;c\n1;\"x;\"\"y\"\"\";  \"multi\nline\"  \n2;;\\N\n3;plain;\n";
        assert_eq!(
            rows("CSV DELIMITER ';' IGNOREHEADER 1", &cols, data).unwrap(),
            "1\tx;\"y\"\tmulti\\nline\n2\t\t\\N\n3\tplain\t\n"
        );
        assert_eq!(
            rows(
                "CSV QUOTE AS '%' NULL AS 'NULL' EMPTYASNULL",
                &cols,
                b"1,%a,b%,NULL\n,,\n"
            )
            .unwrap(),
            "1\ta,b\t\\N\n\\N\t\\N\t\\N\n"
        );
        let e = rows("CSV", &cols, b"1,2\n").unwrap_err();
        assert_eq!(
            (e.line, e.reason.as_str()),
            (1, "Delimiter not found: 2 fields for 3 columns")
        );
        let e = rows("CSV", &cols, b"1,2,3\n4,5,6,7\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.starts_with("Extra column(s) found"));
        assert!(rows("CSV", &cols, b"1,\"open,3\n").is_err());
    }

    #[test]
    fn text_nulls_blanks_and_escapes() {
        let cols = [
            col("a", "integer"),
            col("b", "character varying(4)"),
            col("c", "character(3)"),
        ];
        // Default: pipe, `\N` is NULL, empty INT is NULL, empty VARCHAR is ''.
        assert_eq!(
            rows("", &cols, b"1|x|y\n|\\N|   \n").unwrap(),
            "1\tx\ty\n\\N\t\\N\t   \n"
        );
        assert_eq!(
            rows("BLANKSASNULL EMPTYASNULL", &cols, b"1||   \n").unwrap(),
            "1\t\\N\t\\N\n"
        );
        assert_eq!(
            rows("TRIMBLANKS TRUNCATECOLUMNS", &cols, b"1|abcdef  |ab  \n").unwrap(),
            "1\tabcd\tab \n"
        );
        // ESCAPE: the delimiter, a newline and the backslash itself.
        assert_eq!(
            rows("ESCAPE", &cols, b"1|a\\|b|c\\\nd\n2|\\\\|\\N\n").unwrap(),
            "1\ta|b\tc\\nd\n2\t\\\\\t\\N\n"
        );
        assert_eq!(
            rows("REMOVEQUOTES DELIMITER ','", &cols, b"1,\"a,b\",'c'\n").unwrap(),
            "1\ta,b\tc\n"
        );
        assert_eq!(rows("FILLRECORD", &cols, b"1|a\n").unwrap(), "1\ta\t\n");
        assert_eq!(
            rows("FILLRECORD EMPTYASNULL", &cols, b"1\n").unwrap(),
            "1\t\\N\t\\N\n"
        );
        // Blank lines are rows unless IGNOREBLANKLINES.
        assert!(rows("", &cols, b"1|a|b\n\n2|c|d\n").is_err());
        assert_eq!(
            rows("IGNOREBLANKLINES", &cols, b"1|a|b\n\n2|c|d").unwrap(),
            "1\ta\tb\n2\tc\td\n"
        );
        // Carriage returns and tabs in data are escaped for PostgreSQL.
        assert_eq!(
            rows("", &cols, b"1|a\tb|c\r\n").unwrap(),
            "1\ta\\tb\tc\\r\n"
        );
    }

    #[test]
    fn gzip_and_invalid_utf8() {
        use std::io::Write;
        let cols = [col("a", "text")];
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b"one\ntwo\n").unwrap();
        let gz = e.finish().unwrap();
        assert_eq!(rows("GZIP", &cols, &gz).unwrap(), "one\ntwo\n");
        let e = rows("GZIP", &cols, b"not gzip").unwrap_err();
        assert!(e.reason.starts_with("gzip:"), "{e}");
        // Without GZIP the compressed bytes are not text.
        assert!(rows("", &cols, &gz).is_err());
        let e = rows("", &cols, b"ok\nbad\xff\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(
            rows("ACCEPTINVCHARS AS '^'", &cols, b"ok\nbad\xff\xfe\n").unwrap(),
            "ok\nbad^^\n"
        );
    }

    #[test]
    fn column_kinds() {
        use ColumnKind::*;
        assert_eq!(
            ColumnKind::from_type("character varying(12)"),
            Text {
                varchar: true,
                max_chars: Some(12)
            }
        );
        assert_eq!(
            ColumnKind::from_type("character(1)"),
            Text {
                varchar: false,
                max_chars: Some(1)
            }
        );
        assert_eq!(
            ColumnKind::from_type("text"),
            Text {
                varchar: true,
                max_chars: None
            }
        );
        assert_eq!(
            ColumnKind::from_type("timestamp with time zone"),
            TimestampTz
        );
        assert_eq!(
            ColumnKind::from_type("timestamp(6) without time zone"),
            Timestamp
        );
        assert_eq!(ColumnKind::from_type("numeric(10,2)"), Other);
    }
}
