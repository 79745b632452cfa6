//! Records to rows and rows to records: an input's `InputSchema` turns the
//! bytes of each streaming-source record into rows of the in-application
//! input stream, an output's `DestinationSchema` turns rows of an
//! in-application stream into destination records.
//!
//! Input follows the Developer Guide's *Mapping Streaming Source Elements
//! to SQL Input Columns* and *Working with JSONPath*:
//!
//! - Column names are used exactly as given in `Name` (Kinesis Analytics
//!   quotes them when it creates the stream), types as in `SqlType`.
//! - JSON: `RecordRowPath` selects the row element(s) of a record (`$`
//!   the record itself, `$.records[0:]` one row per element of
//!   `records`); each column's `Mapping` is a JSONPath from the row
//!   element. Paths know `$`, `.name`, `['name']` (also `"name"`, with
//!   `\` escaping the next character), `[n]` and `[n:]` (`[*]` is
//!   `[0:]`). Names are case sensitive; nothing at a path is NULL. A path
//!   ending in `[n:]` is the array (from element n) in one column; a path
//!   going on after `[n:]` flattens the array: one row per element, other
//!   columns repeated, an element lacking the member NULL, an empty array
//!   (or one where no element has a queried member) one row with those
//!   columns NULL. Only one level of dereferencing is supported and only
//!   one array can be flattened per schema.
//! - JSON values become column types by the guide's table: `null` is
//!   NULL for every type; `true`/`false` are 1/0 for numbers, one byte
//!   for VARBINARY, `true`/`false` for text and an error for datetimes;
//!   a number converts to numeric types only when it fits the size and
//!   precision (123.4 into INT fails), is `false` for BOOLEAN when 0 and
//!   `true` otherwise, its source text for CHAR/VARCHAR and an error for
//!   VARBINARY and datetimes; a string is parsed for numbers and
//!   datetimes (`1992-02-14`, `1992-02-14 18:35:44.0`, also with `T` and
//!   a trailing `Z`), is `true` for BOOLEAN only when it is `true` in any
//!   case, converts to VARBINARY only as a `X'3F67A23A'` literal, and is
//!   truncated (CHAR padded) to the text type's length without error;
//!   arrays and objects are their compact source text (member order and
//!   escapes as sent, whitespace between tokens dropped) for CHAR/VARCHAR
//!   and an error otherwise.
//! - CSV: the record is split on `RecordRowDelimiter` (empty rows are
//!   skipped), each row on `RecordColumnDelimiter`; both are literal
//!   strings of any length, and no quoting is applied (a `"` is data), as
//!   schema discovery splits them. The n-th field feeds the n-th column;
//!   `Mapping` is not used; fields past the last column are ignored,
//!   missing and empty fields are NULL. A field converts as a JSON string
//!   does.
//!
//! A record that is not UTF-8 (the only `RecordEncoding`) or not JSON,
//! and a row with a value that does not convert, gives a [`MappingError`]
//! instead of a row: the engine writes it to `error_stream`, whose
//! `DATA_ROW` holds the hex-encoded data of the original row.
//!
//! Output: JSON records are one object per row, a member per column named
//! as the column, with no delimiter after it (destinations receive
//! concatenated JSON); CSV records are the values joined by `,` and ended
//! by `\n`, a value holding `,`, `"`, CR or LF quoted with `"` and its
//! `"` doubled. NULL is `null` in JSON and an empty field in CSV; numbers
//! are JSON numbers (DECIMAL exactly as held), TIMESTAMP is
//! `yyyy-MM-dd HH:mm:ss.SSS`, DATE `yyyy-MM-dd`, TIME `HH:mm:ss[.SSS]`,
//! BOOLEAN `true`/`false`.
//!
//! Riffle's own limits, where AWS states none: JSON nests at most 128
//! levels; CHAR columns are at most 65535 characters long.

use std::fmt::Write as _;

use serde_json::Value as Json;

use super::value::{self, cast, Dec, SqlType, Value, DAY_MS};

/// Deepest JSON nesting read.
const MAX_DEPTH: usize = 128;

/// Longest CHAR column (values are padded to it).
const MAX_CHAR: u32 = 65_535;

/// The longest value text quoted in a message.
const MAX_SHOWN: usize = 100;

// ---------------------------------------------------------------------
// Source metadata columns

/// The kind of streaming source an input reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    KinesisStream,
    Firehose,
}

const KINESIS_STREAM_COLUMNS: [(&str, SqlType); 2] = [
    ("APPROXIMATE_ARRIVAL_TIME", SqlType::Timestamp),
    ("SHARD_ID", SqlType::Varchar(128)),
];

const FIREHOSE_COLUMNS: [(&str, SqlType); 1] = [("APPROXIMATE_ARRIVAL_TIME", SqlType::Timestamp)];

/// The columns an in-application input stream carries from its source
/// besides the mapped ones (and ROWTIME).
///
/// The Developer Guide (*Working with the SQL Editor*, *Timestamps and
/// the ROWTIME Column*) says Kinesis Analytics fetches each record's
/// approximate arrival timestamp into the in-application input stream as
/// `APPROXIMATE_ARRIVAL_TIME`, for Kinesis data streams and Firehose
/// delivery streams alike (*Preprocessing Data Using a Lambda Function*
/// lists it in both sources' record metadata); *Parallelizing Input
/// Streams* says records from a Kinesis data stream include a `shard_id`
/// field and records from a Firehose delivery stream have no field naming
/// their shard or partition. `SHARD_ID` is as long as a Kinesis shard id
/// may be (128).
pub fn source_columns(kind: SourceKind) -> &'static [(&'static str, SqlType)] {
    match kind {
        SourceKind::KinesisStream => &KINESIS_STREAM_COLUMNS,
        SourceKind::Firehose => &FIREHOSE_COLUMNS,
    }
}

// ---------------------------------------------------------------------
// Input

/// A record or row that could not be mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingError {
    pub message: String,
    /// The raw data of the row (the whole record when it could not be
    /// read), hex-encoded in lower case as `error_stream`'s `DATA_ROW`
    /// holds it.
    pub data: String,
}

/// How records of one input become rows.
#[derive(Debug, Clone)]
pub struct InputMapping {
    columns: Vec<(String, SqlType)>,
    format: Format,
}

#[derive(Debug, Clone)]
enum Format {
    Json(JsonFormat),
    Csv {
        row_delimiter: String,
        column_delimiter: String,
    },
}

#[derive(Debug, Clone)]
struct JsonFormat {
    row_path: Vec<Step>,
    /// The array flattened into rows: the path to it from the row
    /// element, and the first element taken.
    flatten: Option<(Vec<Step>, usize)>,
    columns: Vec<ColumnPath>,
}

#[derive(Debug, Clone)]
enum ColumnPath {
    /// From the row element.
    Row(Vec<Step>),
    /// From each element of the flattened array.
    Element(Vec<Step>),
}

impl InputMapping {
    /// From an input's InputSchema document; Err(message) if it cannot be
    /// used.
    pub fn from_schema(schema: &Json) -> Result<InputMapping, String> {
        let format = schema
            .get("RecordFormat")
            .filter(|f| f.is_object())
            .ok_or("InputSchema has no RecordFormat")?;
        match schema.get("RecordEncoding") {
            None | Some(Json::Null) => {}
            Some(Json::String(e)) if e == "UTF-8" => {}
            Some(other) => {
                return Err(format!(
                    "RecordEncoding {other} is not supported; records must be UTF-8"
                ))
            }
        }
        let specs = schema
            .get("RecordColumns")
            .and_then(Json::as_array)
            .filter(|c| !c.is_empty())
            .ok_or("InputSchema has no RecordColumns")?;
        let mut columns: Vec<(String, SqlType)> = Vec::with_capacity(specs.len());
        let mut mappings: Vec<Option<&str>> = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let name = spec
                .get("Name")
                .and_then(Json::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| format!("RecordColumns[{i}] has no Name"))?;
            if name == "ROWTIME" {
                return Err("Column name ROWTIME is reserved".into());
            }
            if columns.iter().any(|(n, _)| n == name) {
                return Err(format!("Column \"{name}\" is defined more than once"));
            }
            let type_text = spec
                .get("SqlType")
                .and_then(Json::as_str)
                .ok_or_else(|| format!("Column \"{name}\" has no SqlType"))?;
            let sql_type = match SqlType::parse(type_text) {
                Some(SqlType::IntervalDay | SqlType::IntervalMonth) | None => {
                    return Err(format!(
                        "Column \"{name}\": SqlType \"{type_text}\" is not a supported type"
                    ))
                }
                Some(SqlType::Char(n)) if n > MAX_CHAR => {
                    return Err(format!(
                        "Column \"{name}\": CHAR is at most {MAX_CHAR} characters long"
                    ))
                }
                Some(t) => t,
            };
            columns.push((name.to_owned(), sql_type));
            mappings.push(spec.get("Mapping").and_then(Json::as_str));
        }
        let parameters = format.get("MappingParameters");
        let format = match format.get("RecordFormatType").and_then(Json::as_str) {
            Some("JSON") => {
                let row_path = parameters
                    .and_then(|p| p.get("JSONMappingParameters"))
                    .and_then(|p| p.get("RecordRowPath"))
                    .and_then(Json::as_str)
                    .unwrap_or("$");
                Format::Json(json_format(row_path, &columns, &mappings)?)
            }
            Some("CSV") => {
                let csv = parameters.and_then(|p| p.get("CSVMappingParameters"));
                let delimiter = |member: &str, default: &str| -> Result<String, String> {
                    match csv.and_then(|c| c.get(member)) {
                        None | Some(Json::Null) => Ok(default.to_owned()),
                        Some(Json::String(d)) if !d.is_empty() => Ok(d.clone()),
                        Some(_) => Err(format!("{member} must be a non-empty string")),
                    }
                };
                Format::Csv {
                    row_delimiter: delimiter("RecordRowDelimiter", "\n")?,
                    column_delimiter: delimiter("RecordColumnDelimiter", ",")?,
                }
            }
            Some(other) => return Err(format!("RecordFormatType {other} is not supported")),
            None => return Err("RecordFormat has no RecordFormatType".into()),
        };
        Ok(InputMapping { columns, format })
    }

    /// The in-application stream's columns (names as given, types),
    /// without ROWTIME and without the source metadata columns.
    pub fn columns(&self) -> &[(String, SqlType)] {
        &self.columns
    }

    /// The rows of one record, each the row's values in column order or
    /// the error that kept it out.
    pub fn rows(&self, data: &[u8]) -> Vec<Result<Vec<Value>, MappingError>> {
        match &self.format {
            Format::Json(json) => self.json_rows(json, data),
            Format::Csv {
                row_delimiter,
                column_delimiter,
            } => split_bytes(data, row_delimiter.as_bytes())
                .into_iter()
                .filter(|row| !row.is_empty())
                .map(|row| self.csv_row(row, column_delimiter))
                .collect(),
        }
    }

    fn json_rows(&self, json: &JsonFormat, data: &[u8]) -> Vec<Result<Vec<Value>, MappingError>> {
        let record_error = |message: String| {
            vec![Err(MappingError {
                message,
                data: hex(data),
            })]
        };
        let text = match std::str::from_utf8(data) {
            Ok(t) => t,
            Err(e) => {
                return record_error(format!(
                    "Record is not valid UTF-8 (invalid byte at offset {})",
                    e.valid_up_to()
                ))
            }
        };
        let root = match parse_json(text) {
            Ok(r) => r,
            Err(e) => return record_error(format!("Record is not valid JSON: {e}")),
        };
        let (elements, missing) = select_all(&root, &json.row_path);
        if elements.is_empty() && missing {
            return record_error(format!(
                "No element at RecordRowPath {}",
                path_text(&json.row_path)
            ));
        }
        let mut out = Vec::new();
        for element in elements {
            // The row's own text, for errors.
            let raw = || {
                element
                    .span(text)
                    .map_or_else(|| hex(data), |s| hex(s.as_bytes()))
            };
            let flattened: Vec<&Node> = match &json.flatten {
                Some((path, from)) => match pick(element, path) {
                    Picked::Node(Node {
                        kind: Kind::Array(items),
                        ..
                    }) => items.get(*from..).unwrap_or(&[]).iter().collect(),
                    _ => Vec::new(),
                },
                None => Vec::new(),
            };
            let mut rows: Vec<Vec<Picked>> = flattened
                .iter()
                .map(|i| picks(&json.columns, element, Some(i)))
                .collect();
            let queried = rows.iter().any(|row| {
                row.iter()
                    .zip(&json.columns)
                    .any(|(p, c)| matches!(c, ColumnPath::Element(_)) && !p.is_missing())
            });
            if !queried {
                rows = vec![picks(&json.columns, element, None)];
            }
            for row in rows {
                let values: Result<Vec<Value>, String> = row
                    .iter()
                    .zip(&self.columns)
                    .map(|(p, (name, t))| {
                        convert_json(p, *t, text).map_err(|bad| bad.message(name, *t))
                    })
                    .collect();
                out.push(values.map_err(|message| MappingError {
                    message,
                    data: raw(),
                }));
            }
        }
        out
    }

    fn csv_row(&self, row: &[u8], delimiter: &str) -> Result<Vec<Value>, MappingError> {
        let text = std::str::from_utf8(row).map_err(|e| MappingError {
            message: format!(
                "Row is not valid UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
            data: hex(row),
        })?;
        let mut fields = text.split(delimiter);
        self.columns
            .iter()
            .map(|(name, t)| {
                match fields.next() {
                    None | Some("") => Ok(Value::Null),
                    Some(field) => from_text(field, *t).ok_or_else(|| Bad::new("value", field)),
                }
                .map_err(|bad| MappingError {
                    message: bad.message(name, *t),
                    data: hex(row),
                })
            })
            .collect()
    }
}

/// What each column reads from a row element and, when an array is
/// flattened, one of its elements (None: no element).
fn picks<'a>(columns: &[ColumnPath], element: &'a Node, item: Option<&'a Node>) -> Vec<Picked<'a>> {
    columns
        .iter()
        .map(|c| match (c, item) {
            (ColumnPath::Row(p), _) => pick(element, p),
            (ColumnPath::Element(p), Some(item)) => pick(item, p),
            (ColumnPath::Element(_), None) => Picked::Missing,
        })
        .collect()
}

fn json_format(
    row_path: &str,
    columns: &[(String, SqlType)],
    mappings: &[Option<&str>],
) -> Result<JsonFormat, String> {
    let row_path = parse_path(row_path).map_err(|e| format!("RecordRowPath {row_path}: {e}"))?;
    let mut flatten: Option<(Vec<Step>, usize)> = None;
    let mut paths = Vec::with_capacity(columns.len());
    for ((name, _), mapping) in columns.iter().zip(mappings) {
        let mapping = mapping
            .ok_or_else(|| format!("Column \"{name}\" has no Mapping, which JSON records need"))?;
        let steps = parse_path(mapping)
            .map_err(|e| format!("Column \"{name}\": Mapping {mapping}: {e}"))?;
        // The first [n:] that is not last flattens the array it reads.
        let split = steps
            .iter()
            .enumerate()
            .position(|(i, s)| matches!(s, Step::From(_)) && i + 1 < steps.len());
        let Some(at) = split else {
            paths.push(ColumnPath::Row(steps));
            continue;
        };
        let (prefix, rest) = steps.split_at(at);
        let from = match rest.first() {
            Some(Step::From(n)) => *n,
            _ => return Err(format!("Column \"{name}\": Mapping {mapping} is not valid")),
        };
        let rest = rest.get(1..).unwrap_or(&[]);
        let deeper = rest
            .iter()
            .enumerate()
            .any(|(i, s)| matches!(s, Step::From(_)) && i + 1 < rest.len());
        if deeper {
            return Err(format!(
                "Column \"{name}\": Mapping {mapping} dereferences more than one level of arrays"
            ));
        }
        match &flatten {
            Some((p, f)) if p.as_slice() != prefix || *f != from => {
                return Err(format!(
                    "Column \"{name}\": Mapping {mapping} flattens a second array; only one array can be flattened in a schema"
                ))
            }
            Some(_) => {}
            None => flatten = Some((prefix.to_vec(), from)),
        }
        paths.push(ColumnPath::Element(rest.to_vec()));
    }
    Ok(JsonFormat {
        row_path,
        flatten,
        columns: paths,
    })
}

/// Splits on a non-empty delimiter.
fn split_bytes<'a>(data: &'a [u8], delimiter: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i + delimiter.len() <= data.len() && !delimiter.is_empty() {
        if data.get(i..i + delimiter.len()) == Some(delimiter) {
            out.push(data.get(start..i).unwrap_or_default());
            i += delimiter.len();
            start = i;
        } else {
            i += 1;
        }
    }
    out.push(data.get(start..).unwrap_or_default());
    out
}

/// Bytes as lowercase hex: how `error_stream`'s DATA_ROW shows a record.
pub fn hex(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len() * 2);
    for b in data {
        let _ = write!(s, "{b:02x}");
    }
    s
}

// ---------------------------------------------------------------------
// Conversions

/// A value that does not convert: what it is and its text.
struct Bad {
    what: &'static str,
    text: String,
}

impl Bad {
    fn new(what: &'static str, text: &str) -> Bad {
        let mut shown: String = text.chars().take(MAX_SHOWN).collect();
        if shown.len() < text.len() {
            shown.push_str("...");
        }
        Bad { what, text: shown }
    }

    fn message(&self, column: &str, t: SqlType) -> String {
        format!(
            "Cannot convert {} '{}' to {t} for column \"{column}\"",
            self.what, self.text
        )
    }
}

fn convert_json(p: &Picked, t: SqlType, src: &str) -> Result<Value, Bad> {
    let node = match p {
        Picked::Missing => return Ok(Value::Null),
        Picked::Tail(items) => {
            let text = array_text(items, src);
            return match t {
                SqlType::Char(_) | SqlType::Varchar(_) => Ok(text_value(&text, t)),
                _ => Err(Bad::new("JSON array", &text)),
            };
        }
        Picked::Node(n) => n,
    };
    match &node.kind {
        Kind::Null => Ok(Value::Null),
        Kind::Bool(b) => {
            let word = if *b { "true" } else { "false" };
            match t {
                SqlType::Boolean => Ok(Value::Bool(*b)),
                SqlType::Char(_) | SqlType::Varchar(_) => Ok(text_value(word, t)),
                SqlType::Varbinary(_) => Ok(Value::Bytes(vec![*b as u8].into())),
                t if t.is_numeric() => number(if *b { "1" } else { "0" }, t)
                    .ok_or_else(|| Bad::new("JSON boolean", word)),
                _ => Err(Bad::new("JSON boolean", word)),
            }
        }
        Kind::Num => {
            let text = node.span(src).unwrap_or_default();
            match t {
                SqlType::Boolean => Ok(Value::Bool(!exact(text).is_some_and(|e| e.is_zero()))),
                SqlType::Char(_) | SqlType::Varchar(_) => Ok(text_value(text, t)),
                t if t.is_numeric() => number(text, t).ok_or_else(|| Bad::new("JSON number", text)),
                _ => Err(Bad::new("JSON number", text)),
            }
        }
        Kind::Str(s) => from_text(s, t).ok_or_else(|| Bad::new("JSON string", s)),
        Kind::Array(_) | Kind::Object(_) => {
            let text = compact(node.span(src).unwrap_or_default());
            let what = if matches!(node.kind, Kind::Array(_)) {
                "JSON array"
            } else {
                "JSON object"
            };
            match t {
                SqlType::Char(_) | SqlType::Varchar(_) => Ok(text_value(&text, t)),
                _ => Err(Bad::new(what, &text)),
            }
        }
    }
}

/// A string (a JSON string or a CSV field) as a value of a type.
fn from_text(s: &str, t: SqlType) -> Option<Value> {
    match t {
        SqlType::Boolean => Some(Value::Bool(s.eq_ignore_ascii_case("true"))),
        SqlType::Char(_) | SqlType::Varchar(_) => Some(text_value(s, t)),
        SqlType::Varbinary(n) => {
            let digits = s
                .strip_prefix(['X', 'x'])?
                .strip_prefix('\'')?
                .strip_suffix('\'')?;
            if digits.len() % 2 != 0 {
                return None;
            }
            let bytes: Option<Vec<u8>> = digits
                .as_bytes()
                .chunks(2)
                .map(|pair| {
                    let pair = std::str::from_utf8(pair).ok()?;
                    u8::from_str_radix(pair, 16).ok()
                })
                .collect();
            let mut bytes = bytes?;
            bytes.truncate(n as usize);
            Some(Value::Bytes(bytes.into()))
        }
        SqlType::Date | SqlType::Time | SqlType::Timestamp => {
            // Years beyond nine digits are no dates (and would overflow
            // the day arithmetic).
            let year = s.trim().bytes().take_while(u8::is_ascii_digit).count();
            if year > 9 {
                return None;
            }
            cast(&Value::str(s), t).ok()
        }
        t if t.is_numeric() => number(s.trim(), t),
        _ => None,
    }
}

/// Text as CHAR/VARCHAR: truncated to the length, CHAR padded.
fn text_value(s: &str, t: SqlType) -> Value {
    cast(&Value::str(s), t).unwrap_or_else(|_| Value::str(s))
}

/// A decimal number exactly: `digits × 10^exp`, `digits` without leading
/// or trailing zeros (empty for zero).
struct Exact<'a> {
    neg: bool,
    int: &'a str,
    frac: &'a str,
    exp: i64,
}

impl Exact<'_> {
    fn is_zero(&self) -> bool {
        self.int.bytes().chain(self.frac.bytes()).all(|b| b == b'0')
    }

    /// The significant digits and the power of ten they are scaled by.
    fn digits(&self) -> (String, i64) {
        let all: String = self.int.chars().chain(self.frac.chars()).collect();
        let all = all.trim_start_matches('0');
        let trimmed = all.trim_end_matches('0');
        let zeros = (all.len() - trimmed.len()) as i64;
        let exp = self
            .exp
            .saturating_sub(self.frac.len() as i64)
            .saturating_add(zeros);
        (trimmed.to_owned(), exp)
    }
}

/// Parses `[+-]digits[.digits][(e|E)[+-]digits]` (also `.5` and `5.`).
fn exact(s: &str) -> Option<Exact<'_>> {
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (mantissa, exp) = match rest.find(['e', 'E']) {
        Some(i) => (rest.get(..i)?, Some(rest.get(i + 1..)?)),
        None => (rest, None),
    };
    let (int, frac) = match mantissa.find('.') {
        Some(i) => (mantissa.get(..i)?, mantissa.get(i + 1..)?),
        None => (mantissa, ""),
    };
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() && frac.is_empty() || !digits(int) || !digits(frac) {
        return None;
    }
    let exp = match exp {
        None => 0,
        Some(e) => {
            let (eneg, ed) = match e.strip_prefix('-') {
                Some(r) => (true, r),
                None => (false, e.strip_prefix('+').unwrap_or(e)),
            };
            if ed.is_empty() || !digits(ed) {
                return None;
            }
            // Beyond any digit count a number can have: saturate.
            let v = ed.parse::<i64>().unwrap_or(i64::MAX / 2).min(i64::MAX / 2);
            if eneg {
                -v
            } else {
                v
            }
        }
    };
    Some(Exact {
        neg,
        int,
        frac,
        exp,
    })
}

/// A number's text as a numeric type, None when it is no number or does
/// not fit the type's size and precision.
fn number(s: &str, t: SqlType) -> Option<Value> {
    match t {
        SqlType::Real | SqlType::Double => {
            exact(s)?;
            let f: f64 = s.parse().ok()?;
            if !f.is_finite() {
                return None;
            }
            if t == SqlType::Real {
                let r = f as f32;
                return r.is_finite().then_some(Value::Double(r as f64));
            }
            Some(Value::Double(f))
        }
        SqlType::TinyInt | SqlType::SmallInt | SqlType::Integer | SqlType::BigInt => {
            let e = exact(s)?;
            if e.is_zero() {
                return Some(Value::Int(0));
            }
            let (digits, exp) = e.digits();
            if exp < 0 || digits.len() as i64 + exp > 19 {
                return None;
            }
            let mut v: i128 = digits.parse().ok()?;
            for _ in 0..exp {
                v = v.checked_mul(10)?;
            }
            let v = i64::try_from(if e.neg { -v } else { v }).ok()?;
            cast(&Value::Int(v), t).ok()
        }
        SqlType::Decimal(p, scale) => {
            let e = exact(s)?;
            if e.is_zero() {
                return Some(Value::Decimal(Dec::new(0, scale)));
            }
            let (digits, exp) = e.digits();
            let frac = if exp < 0 { -exp } else { 0 };
            let int_digits = digits.len() as i64 + exp;
            if frac > scale as i64 || int_digits > (p - scale) as i64 {
                return None;
            }
            let mut v: i128 = digits.parse().ok()?;
            for _ in 0..(exp + scale as i64) {
                v = v.checked_mul(10)?;
            }
            Some(Value::Decimal(Dec::new(if e.neg { -v } else { v }, scale)))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------
// JSON

#[derive(Debug)]
struct Node {
    kind: Kind,
    start: usize,
    end: usize,
}

#[derive(Debug)]
enum Kind {
    Null,
    Bool(bool),
    /// The text is the node's span.
    Num,
    Str(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl Node {
    fn span<'a>(&self, src: &'a str) -> Option<&'a str> {
        src.get(self.start..self.end)
    }
}

/// JSON text without the whitespace between its tokens.
fn compact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            if c == '"' {
                in_string = true;
            }
            out.push(c);
        }
    }
    out
}

fn array_text(items: &[Node], src: &str) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|i| compact(i.span(src).unwrap_or_default()))
        .collect();
    format!("[{}]", parts.join(","))
}

fn parse_json(src: &str) -> Result<Node, String> {
    let mut p = Parser {
        s: src.as_bytes(),
        src,
        pos: 0,
    };
    p.ws();
    let node = p.value(0)?;
    p.ws();
    if p.pos < p.s.len() {
        return Err(p.fail("unexpected characters after the JSON value"));
    }
    Ok(node)
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn fail(&self, what: &str) -> String {
        let before = self.src.get(..self.pos).unwrap_or(self.src);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        format!("{what} at line {line} column {column}")
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, String> {
        let start = self.pos;
        let kind = match self.peek() {
            None => return Err(self.fail("unexpected end of data")),
            Some(b'{' | b'[') if depth >= MAX_DEPTH => {
                return Err(self.fail(&format!("nesting deeper than {MAX_DEPTH} levels")))
            }
            Some(b'{') => {
                self.pos += 1;
                let mut members = Vec::new();
                self.ws();
                if !self.eat(b'}') {
                    loop {
                        self.ws();
                        if self.peek() != Some(b'"') {
                            return Err(self.fail("expected a member name"));
                        }
                        let key = self.string()?;
                        self.ws();
                        if !self.eat(b':') {
                            return Err(self.fail("expected ':'"));
                        }
                        self.ws();
                        let v = self.value(depth + 1)?;
                        members.push((key, v));
                        self.ws();
                        if self.eat(b'}') {
                            break;
                        }
                        if !self.eat(b',') {
                            return Err(self.fail("expected ',' or '}'"));
                        }
                    }
                }
                Kind::Object(members)
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.ws();
                if !self.eat(b']') {
                    loop {
                        self.ws();
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        if self.eat(b']') {
                            break;
                        }
                        if !self.eat(b',') {
                            return Err(self.fail("expected ',' or ']'"));
                        }
                    }
                }
                Kind::Array(items)
            }
            Some(b'"') => Kind::Str(self.string()?),
            Some(b't') => self.word("true", Kind::Bool(true))?,
            Some(b'f') => self.word("false", Kind::Bool(false))?,
            Some(b'n') => self.word("null", Kind::Null)?,
            Some(b'-' | b'0'..=b'9') => {
                self.number()?;
                Kind::Num
            }
            Some(_) => return Err(self.fail("unexpected character")),
        };
        Ok(Node {
            kind,
            start,
            end: self.pos,
        })
    }

    fn word(&mut self, word: &str, kind: Kind) -> Result<Kind, String> {
        if self.s.get(self.pos..self.pos + word.len()) == Some(word.as_bytes()) {
            self.pos += word.len();
            Ok(kind)
        } else {
            Err(self.fail("unexpected character"))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<(), String> {
        self.eat(b'-');
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.fail("invalid number")),
        }
        if self.eat(b'.') && self.digits() == 0 {
            return Err(self.fail("invalid number"));
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return Err(self.fail("invalid number"));
            }
        }
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .src
            .get(self.pos..self.pos + 4)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.fail("invalid \\u escape"))?;
        let v = u32::from_str_radix(digits, 16).map_err(|_| self.fail("invalid \\u escape"))?;
        self.pos += 4;
        Ok(v)
    }

    /// A string at `"`, unescaped.
    fn string(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let run = self.pos;
            while matches!(self.peek(), Some(b) if b != b'"' && b != b'\\' && b >= 0x20) {
                self.pos += 1;
            }
            out.push_str(self.src.get(run..self.pos).unwrap_or_default());
            match self.peek() {
                None => return Err(self.fail("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos += 1;
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if !(self.eat(b'\\') && self.eat(b'u')) {
                                    return Err(self.fail("unpaired surrogate in \\u escape"));
                                }
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.fail("unpaired surrogate in \\u escape"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            let c = char::from_u32(code)
                                .ok_or_else(|| self.fail("unpaired surrogate in \\u escape"))?;
                            out.push(c);
                            continue;
                        }
                        _ => return Err(self.fail("invalid escape")),
                    };
                    self.pos += 1;
                    out.push(c);
                }
                Some(_) => return Err(self.fail("control character in string")),
            }
        }
    }
}

// ---------------------------------------------------------------------
// JSONPath

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Member(String),
    Index(usize),
    /// `[n:]`: the elements from n on.
    From(usize),
}

fn path_text(steps: &[Step]) -> String {
    let mut out = String::from("$");
    for s in steps {
        match s {
            Step::Member(m)
                if !m.is_empty() && m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                out.push('.');
                out.push_str(m);
            }
            Step::Member(m) => {
                let _ = write!(out, "['{}']", m.replace('\\', "\\\\").replace('\'', "\\'"));
            }
            Step::Index(n) => {
                let _ = write!(out, "[{n}]");
            }
            Step::From(n) => {
                let _ = write!(out, "[{n}:]");
            }
        }
    }
    out
}

fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let mut chars = path.chars().peekable();
    if chars.next() != Some('$') {
        return Err("a path starts with $".into());
    }
    let mut steps = Vec::new();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                let mut name = String::new();
                while let Some(&c) = chars.peek() {
                    if c == '.' || c == '[' {
                        break;
                    }
                    name.push(c);
                    chars.next();
                }
                if name.is_empty() {
                    return Err("'.' must be followed by a member name".into());
                }
                steps.push(Step::Member(name));
            }
            '[' => {
                let step = match chars.next() {
                    Some(q @ ('\'' | '"')) => {
                        let mut name = String::new();
                        loop {
                            match chars.next() {
                                None => return Err("unterminated quoted name".into()),
                                Some('\\') => match chars.next() {
                                    Some(c) => name.push(c),
                                    None => return Err("unterminated quoted name".into()),
                                },
                                Some(c) if c == q => break,
                                Some(c) => name.push(c),
                            }
                        }
                        Step::Member(name)
                    }
                    Some('*') => Step::From(0),
                    Some(c) if c.is_ascii_digit() => {
                        let mut n = String::from(c);
                        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                            n.push(d);
                            chars.next();
                        }
                        let n: usize = n.parse().map_err(|_| "array index too large")?;
                        if chars.peek() == Some(&':') {
                            chars.next();
                            Step::From(n)
                        } else {
                            Step::Index(n)
                        }
                    }
                    _ => {
                        return Err(
                            "'[' must be followed by a quoted name, an index, n: or *".into()
                        )
                    }
                };
                if chars.next() != Some(']') {
                    return Err("expected ']'".into());
                }
                steps.push(step);
            }
            _ => return Err(format!("unexpected '{c}'")),
        }
    }
    Ok(steps)
}

/// What a column path reads.
enum Picked<'a> {
    Missing,
    Node(&'a Node),
    /// The elements a final `[n:]` reads.
    Tail(&'a [Node]),
}

impl Picked<'_> {
    fn is_missing(&self) -> bool {
        matches!(self, Picked::Missing)
    }
}

fn member<'a>(node: &'a Node, name: &str) -> Option<&'a Node> {
    match &node.kind {
        // The last of repeated names counts.
        Kind::Object(members) => members.iter().rev().find(|(k, _)| k == name).map(|m| &m.1),
        _ => None,
    }
}

fn index(node: &Node, i: usize) -> Option<&Node> {
    match &node.kind {
        Kind::Array(items) => items.get(i),
        _ => None,
    }
}

/// A path with at most a final `[n:]` (the array from element n).
fn pick<'a>(node: &'a Node, steps: &[Step]) -> Picked<'a> {
    let mut cur = node;
    for (i, step) in steps.iter().enumerate() {
        let next = match step {
            Step::Member(name) => member(cur, name),
            Step::Index(n) => index(cur, *n),
            Step::From(n) => {
                return match &cur.kind {
                    Kind::Array(items) if i + 1 == steps.len() => {
                        Picked::Tail(items.get(*n..).unwrap_or(&[]))
                    }
                    _ => Picked::Missing,
                }
            }
        };
        match next {
            Some(n) => cur = n,
            None => return Picked::Missing,
        }
    }
    Picked::Node(cur)
}

/// Every element a path selects, each `[n:]` taking the elements from
/// n; and whether some step found nothing.
fn select_all<'a>(node: &'a Node, steps: &[Step]) -> (Vec<&'a Node>, bool) {
    let mut current = vec![node];
    let mut missing = false;
    for step in steps {
        let mut next = Vec::new();
        for n in current {
            match step {
                Step::Member(name) => match member(n, name) {
                    Some(m) => next.push(m),
                    None => missing = true,
                },
                Step::Index(i) => match index(n, *i) {
                    Some(m) => next.push(m),
                    None => missing = true,
                },
                Step::From(i) => match &n.kind {
                    Kind::Array(items) => next.extend(items.get(*i..).unwrap_or(&[])),
                    _ => missing = true,
                },
            }
        }
        current = next;
    }
    (current, missing)
}

// ---------------------------------------------------------------------
// Output

/// How rows become output records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Json,
    Csv,
}

impl OutputFormat {
    /// From an output's DestinationSchema document.
    pub fn from_schema(schema: &Json) -> Result<OutputFormat, String> {
        match schema.get("RecordFormatType").and_then(Json::as_str) {
            Some("JSON") => Ok(OutputFormat::Json),
            Some("CSV") => Ok(OutputFormat::Csv),
            Some(other) => Err(format!("RecordFormatType {other} is not supported")),
            None => Err("DestinationSchema has no RecordFormatType".into()),
        }
    }

    /// One output record for a row: its columns' names and values (a
    /// value missing from a short row is NULL).
    pub fn record(&self, columns: &[String], row: &[Value]) -> Vec<u8> {
        let value = |i: usize| row.get(i).unwrap_or(&Value::Null);
        let mut out = String::new();
        match self {
            OutputFormat::Json => {
                out.push('{');
                for (i, name) in columns.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json_string(&mut out, name);
                    out.push(':');
                    json_value(&mut out, value(i));
                }
                out.push('}');
            }
            OutputFormat::Csv => {
                for i in 0..columns.len() {
                    if i > 0 {
                        out.push(',');
                    }
                    let text = output_text(value(i)).unwrap_or_default();
                    if text.contains([',', '"', '\n', '\r']) {
                        out.push('"');
                        out.push_str(&text.replace('"', "\"\""));
                        out.push('"');
                    } else {
                        out.push_str(&text);
                    }
                }
                out.push('\n');
            }
        }
        out.into_bytes()
    }
}

/// A value's text in output records; None for NULL.
fn output_text(v: &Value) -> Option<String> {
    match v {
        Value::Bool(b) => Some(if *b { "true" } else { "false" }.into()),
        Value::Timestamp(ms) => {
            let (y, m, d) = value::civil_from_days(ms.div_euclid(DAY_MS));
            let t = ms.rem_euclid(DAY_MS);
            Some(format!(
                "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
                t / 3_600_000,
                t / 60_000 % 60,
                t / 1000 % 60,
                t % 1000
            ))
        }
        other => other.to_text(),
    }
}

fn json_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Double(d) if d.is_finite() => out.push_str(&value::format_double(*d)),
        Value::Double(_) => out.push_str("null"),
        Value::Decimal(d) => {
            let _ = write!(out, "{d}");
        }
        other => json_string(out, &output_text(other).unwrap_or_default()),
    }
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A JSON input schema: (name, mapping, type) per column.
    fn json_mapping(row_path: &str, columns: &[(&str, &str, &str)]) -> InputMapping {
        let columns: Vec<Json> = columns
            .iter()
            .map(|(n, m, t)| json!({"Name": n, "Mapping": m, "SqlType": t}))
            .collect();
        InputMapping::from_schema(&json!({
            "RecordFormat": {
                "RecordFormatType": "JSON",
                "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": row_path}}
            },
            "RecordEncoding": "UTF-8",
            "RecordColumns": columns
        }))
        .unwrap()
    }

    fn csv_mapping(rows: &str, columns_delimiter: &str, columns: &[(&str, &str)]) -> InputMapping {
        let columns: Vec<Json> = columns
            .iter()
            .map(|(n, t)| json!({"Name": n, "SqlType": t}))
            .collect();
        InputMapping::from_schema(&json!({
            "RecordFormat": {
                "RecordFormatType": "CSV",
                "MappingParameters": {"CSVMappingParameters": {
                    "RecordRowDelimiter": rows,
                    "RecordColumnDelimiter": columns_delimiter
                }}
            },
            "RecordEncoding": "UTF-8",
            "RecordColumns": columns
        }))
        .unwrap()
    }

    /// Rows compared exactly (Value's own equality mixes numeric kinds).
    fn shown(rows: &[Result<Vec<Value>, MappingError>]) -> Vec<String> {
        rows.iter().map(|r| format!("{r:?}")).collect()
    }

    fn ok(values: Vec<Value>) -> String {
        format!("{:?}", Ok::<_, MappingError>(values))
    }

    fn err(message: &str, data: &[u8]) -> String {
        format!(
            "{:?}",
            Err::<Vec<Value>, _>(MappingError {
                message: message.into(),
                data: hex(data),
            })
        )
    }

    fn s(v: &str) -> Value {
        Value::str(v)
    }

    fn dec(mant: i128, scale: u8) -> Value {
        Value::Decimal(Dec::new(mant, scale))
    }

    #[test]
    fn json_paths_reach_nested_members() {
        let m = json_mapping(
            "$",
            &[
                ("TICKER", "$.ticker", "VARCHAR(4)"),
                ("user_id", "$.user.id", "INTEGER"),
                ("HOME", "$.user['home page']", "VARCHAR(16)"),
                ("IT", r"$.user['it\'s']", "VARCHAR(8)"),
                ("SECOND", "$.tags[1]", "BIGINT"),
                ("MISSING", "$.nope", "VARCHAR(4)"),
                ("CASE", "$.Ticker", "VARCHAR(4)"),
                ("USER", "$.user", "VARCHAR(64)"),
                ("TAGS", "$.tags[0:]", "VARCHAR(64)"),
                ("REST", "$.tags[1:]", "VARCHAR(64)"),
                ("OUT", "$.tags[5]", "INTEGER"),
                ("NUL", "$.none", "INTEGER"),
            ],
        );
        let names: Vec<&str> = m.columns().iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "TICKER", "user_id", "HOME", "IT", "SECOND", "MISSING", "CASE", "USER", "TAGS",
                "REST", "OUT", "NUL"
            ]
        );
        assert_eq!(m.columns()[1].1, SqlType::Integer);
        let record = br#" {"ticker": "AMZNX", "user": {"id": 7, "home page": "x y", "it's": "q"},
            "tags": [10, 20, {"k" : [1, "a b"]}], "none": null} "#;
        assert_eq!(
            shown(&m.rows(record)),
            [ok(vec![
                s("AMZN"),
                Value::Int(7),
                s("x y"),
                s("q"),
                Value::Int(20),
                Value::Null,
                Value::Null,
                s(r#"{"id":7,"home page":"x y","it's":"q"}"#),
                s(r#"[10,20,{"k":[1,"a b"]}]"#),
                s(r#"[20,{"k":[1,"a b"]}]"#),
                Value::Null,
                Value::Null,
            ])]
        );
    }

    #[test]
    fn record_row_path_gives_a_row_per_element() {
        let m = json_mapping(
            "$.records[0:]",
            &[("ID", "$.id", "INTEGER"), ("NAME", "$.name", "VARCHAR(8)")],
        );
        let rows = m.rows(br#"{"records":[{"id":1,"name":"a"},{"id":2},{"id":"x"}]}"#);
        assert_eq!(
            shown(&rows),
            [
                ok(vec![Value::Int(1), s("a")]),
                ok(vec![Value::Int(2), Value::Null]),
                err(
                    "Cannot convert JSON string 'x' to INTEGER for column \"ID\"",
                    br#"{"id":"x"}"#
                ),
            ]
        );
        assert!(m.rows(br#"{"records":[]}"#).is_empty());
        assert_eq!(
            shown(&m.rows(br#"{"other":1}"#)),
            [err(
                "No element at RecordRowPath $.records[0:]",
                br#"{"other":1}"#
            )]
        );
    }

    #[test]
    fn one_array_flattens_into_rows() {
        let m = json_mapping(
            "$",
            &[
                ("NAME", "$.customerName", "VARCHAR(16)"),
                ("ORDER_ID", "$.orders[0:].orderId", "VARCHAR(8)"),
                ("PRICE", "$.orders[0:].itemPrice", "DECIMAL(6,2)"),
                ("ORDERS", "$.orders[0:]", "VARCHAR(128)"),
            ],
        );
        let record = br#"{"customerName":"John Doe","orders":[
            {"orderId":"23284","itemName":"Widget","itemPrice":"33.99"},
            {"orderId":"63122","itemPrice":22.5},
            {"itemName":"Sprocket"}]}"#;
        let all = r#"[{"orderId":"23284","itemName":"Widget","itemPrice":"33.99"},{"orderId":"63122","itemPrice":22.5},{"itemName":"Sprocket"}]"#;
        assert_eq!(
            shown(&m.rows(record)),
            [
                ok(vec![s("John Doe"), s("23284"), dec(3399, 2), s(all)]),
                ok(vec![s("John Doe"), s("63122"), dec(2250, 2), s(all)]),
                ok(vec![s("John Doe"), Value::Null, Value::Null, s(all)]),
            ]
        );
        // An empty array, or one whose elements hold none of the queried
        // members, is one row of NULLs; so is a missing array.
        let empty = ok(vec![s("Jane"), Value::Null, Value::Null, s("[]")]);
        assert_eq!(
            shown(&m.rows(br#"{"customerName":"Jane","orders":[]}"#)),
            [empty]
        );
        assert_eq!(
            shown(&m.rows(br#"{"customerName":"Jane","orders":[{"x":1},{"y":2}]}"#)),
            [ok(vec![
                s("Jane"),
                Value::Null,
                Value::Null,
                s(r#"[{"x":1},{"y":2}]"#)
            ])]
        );
        assert_eq!(
            shown(&m.rows(br#"{"customerName":"Jane"}"#)),
            [ok(vec![s("Jane"), Value::Null, Value::Null, Value::Null])]
        );
        // Flattening from a later element.
        let m = json_mapping("$", &[("V", "$.a[1:].v", "INTEGER")]);
        assert_eq!(
            shown(&m.rows(br#"{"a":[{"v":1},{"v":2},{"v":3}]}"#)),
            [ok(vec![Value::Int(2)]), ok(vec![Value::Int(3)])]
        );
    }

    #[test]
    fn json_values_convert_as_the_guide_tabulates() {
        let m = json_mapping(
            "$",
            &[
                ("B_BOOL", "$.t", "BOOLEAN"),
                ("B_INT", "$.t", "INTEGER"),
                ("B_TEXT", "$.f", "VARCHAR(3)"),
                ("B_BIN", "$.t", "VARBINARY(4)"),
                ("B_DEC", "$.f", "DECIMAL(3,1)"),
                ("N_ZERO", "$.zero", "BOOLEAN"),
                ("N_NONZERO", "$.neg", "BOOLEAN"),
                ("N_EXP", "$.e5", "INTEGER"),
                ("N_TEXT", "$.huge", "VARCHAR(8)"),
                ("N_DOUBLE", "$.pi", "DOUBLE"),
                ("N_DEC", "$.price", "DECIMAL(10,2)"),
                ("N_SMALL", "$.neg", "SMALLINT"),
                ("N_REAL", "$.e5", "REAL"),
                ("N_WHOLE", "$.whole", "TINYINT"),
                ("S_TRUE", "$.yes", "BOOLEAN"),
                ("S_OTHER", "$.word", "BOOLEAN"),
                ("S_INT", "$.num", "INTEGER"),
                ("S_TS", "$.ts", "TIMESTAMP"),
                ("S_ISO", "$.iso", "TIMESTAMP"),
                ("S_DATE", "$.day", "DATE"),
                ("S_DAY_TS", "$.day", "TIMESTAMP"),
                ("S_TIME", "$.time", "TIME"),
                ("S_BIN", "$.hex", "VARBINARY(2)"),
                ("S_CHAR", "$.word", "CHAR(5)"),
                ("S_DEC", "$.sdec", "DECIMAL(38,2)"),
                ("O_TEXT", "$.obj", "VARCHAR(5)"),
            ],
        );
        let record = br#"{"t":true,"f":false,"zero":0,"neg":-32768,"e5":1e5,"huge":1e400,
            "pi":6.0221,"price":12.50,"whole":12.000,"yes":"TRUE","word":"yes","num":" 42 ",
            "ts":"2017-12-01 12:34:56.789","iso":"2018-08-01T20:17:20.797945","day":"1992-02-14",
            "time":"18:35:44.5","hex":"X'3F67A2'","sdec":"-123456789012345678901234567890123.45",
            "obj":{"a": [1, 2]}}"#;
        assert_eq!(
            shown(&m.rows(record)),
            [ok(vec![
                Value::Bool(true),
                Value::Int(1),
                s("fal"),
                Value::Bytes(vec![1u8].into()),
                dec(0, 1),
                Value::Bool(false),
                Value::Bool(true),
                Value::Int(100_000),
                s("1e400"),
                Value::Double(6.0221),
                dec(1250, 2),
                Value::Int(-32768),
                Value::Double(100_000.0),
                Value::Int(12),
                Value::Bool(true),
                Value::Bool(false),
                Value::Int(42),
                Value::Timestamp(1_512_131_696_789),
                Value::Timestamp(1_533_154_640_797),
                Value::Date(8079),
                Value::Timestamp(8079 * DAY_MS),
                Value::Time(66_944_500),
                Value::Bytes(vec![0x3f, 0x67].into()),
                s("yes  "),
                dec(-12_345_678_901_234_567_890_123_456_789_012_345, 2),
                s(r#"{"a":"#),
            ])]
        );
    }

    #[test]
    fn values_that_do_not_convert_are_error_rows() {
        let cases: &[(&str, &str, &str)] = &[
            ("123.4", "INTEGER", "Cannot convert JSON number '123.4' to INTEGER for column \"C\""),
            ("300", "TINYINT", "Cannot convert JSON number '300' to TINYINT for column \"C\""),
            ("1.234", "DECIMAL(5,2)", "Cannot convert JSON number '1.234' to DECIMAL(5, 2) for column \"C\""),
            ("1234.5", "DECIMAL(5,2)", "Cannot convert JSON number '1234.5' to DECIMAL(5, 2) for column \"C\""),
            ("1e400", "DOUBLE", "Cannot convert JSON number '1e400' to DOUBLE for column \"C\""),
            ("1e39", "REAL", "Cannot convert JSON number '1e39' to REAL for column \"C\""),
            ("99999999999999999999", "BIGINT", "Cannot convert JSON number '99999999999999999999' to BIGINT for column \"C\""),
            ("1e-100", "INTEGER", "Cannot convert JSON number '1e-100' to INTEGER for column \"C\""),
            ("1e999999999999999999999", "DECIMAL(5,2)", "Cannot convert JSON number '1e999999999999999999999' to DECIMAL(5, 2) for column \"C\""),
            (r#""1e-100""#, "DECIMAL(5,2)", "Cannot convert JSON string '1e-100' to DECIMAL(5, 2) for column \"C\""),
            (r#""1e-2147483648""#, "BIGINT", "Cannot convert JSON string '1e-2147483648' to BIGINT for column \"C\""),
            (r#""12abc""#, "DOUBLE", "Cannot convert JSON string '12abc' to DOUBLE for column \"C\""),
            (r#""NaN""#, "DOUBLE", "Cannot convert JSON string 'NaN' to DOUBLE for column \"C\""),
            (r#"{"a": 1}"#, "INTEGER", "Cannot convert JSON object '{\"a\":1}' to INTEGER for column \"C\""),
            ("[1]", "BOOLEAN", "Cannot convert JSON array '[1]' to BOOLEAN for column \"C\""),
            ("true", "TIMESTAMP", "Cannot convert JSON boolean 'true' to TIMESTAMP for column \"C\""),
            ("true", "DECIMAL(1,1)", "Cannot convert JSON boolean 'true' to DECIMAL(1, 1) for column \"C\""),
            ("17", "DATE", "Cannot convert JSON number '17' to DATE for column \"C\""),
            ("17", "VARBINARY(2)", "Cannot convert JSON number '17' to VARBINARY(2) for column \"C\""),
            (r#""X'3F6'""#, "VARBINARY(2)", "Cannot convert JSON string 'X'3F6'' to VARBINARY(2) for column \"C\""),
            (r#""3F""#, "VARBINARY(2)", "Cannot convert JSON string '3F' to VARBINARY(2) for column \"C\""),
            (r#""not a date""#, "TIMESTAMP", "Cannot convert JSON string 'not a date' to TIMESTAMP for column \"C\""),
            (r#""2023-02-29""#, "DATE", "Cannot convert JSON string '2023-02-29' to DATE for column \"C\""),
            (r#""9223372036854775807-03-01""#, "DATE", "Cannot convert JSON string '9223372036854775807-03-01' to DATE for column \"C\""),
        ];
        for (value, sql_type, message) in cases {
            let m = json_mapping("$", &[("C", "$.c", sql_type)]);
            let record = format!(r#"{{"c":{value}}}"#);
            assert_eq!(
                shown(&m.rows(record.as_bytes())),
                [err(message, record.as_bytes())],
                "{value} as {sql_type}"
            );
        }
        // Long values are cut in messages.
        let m = json_mapping("$", &[("C", "$.c", "INTEGER")]);
        let record = format!(r#"{{"c":"{}"}}"#, "x".repeat(150));
        let rows = m.rows(record.as_bytes());
        let message = format!(
            "Cannot convert JSON string '{}...' to INTEGER for column \"C\"",
            "x".repeat(100)
        );
        assert_eq!(shown(&rows), [err(&message, record.as_bytes())]);
    }

    #[test]
    fn unreadable_records_are_one_error_each() {
        let m = json_mapping("$", &[("A", "$.a", "VARCHAR(4)")]);
        let cases: &[(&[u8], &str)] = &[
            (br#"{"a":"#, "Record is not valid JSON: unexpected end of data at line 1 column 6"),
            (b"{\"a\":1}\n x", "Record is not valid JSON: unexpected characters after the JSON value at line 2 column 2"),
            (b"{\"a\":\xff}", "Record is not valid UTF-8 (invalid byte at offset 5)"),
            (b"", "Record is not valid JSON: unexpected end of data at line 1 column 1"),
            (br#"{"a":"\ud800"}"#, "Record is not valid JSON: unpaired surrogate in \\u escape at line 1 column 13"),
            (b"{\"a\":\"x\ty\"}", "Record is not valid JSON: control character in string at line 1 column 8"),
            (br#"{"a":01}"#, "Record is not valid JSON: expected ',' or '}' at line 1 column 7"),
            (br#"{"a":[1,]}"#, "Record is not valid JSON: unexpected character at line 1 column 9"),
            (br#"{a:1}"#, "Record is not valid JSON: expected a member name at line 1 column 2"),
            (br#"{"a":tru}"#, "Record is not valid JSON: unexpected character at line 1 column 6"),
        ];
        for (record, message) in cases {
            assert_eq!(shown(&m.rows(record)), [err(message, record)]);
        }
        // Nesting: 128 levels are read, deeper is an error, not a crash.
        let m = json_mapping("$", &[("A", "$", "VARCHAR(1024)")]);
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(
            shown(&m.rows(deep(128).as_bytes())),
            [ok(vec![s(&deep(128))])]
        );
        let record = deep(100_000);
        assert_eq!(
            shown(&m.rows(record.as_bytes())),
            [err(
                "Record is not valid JSON: nesting deeper than 128 levels at line 1 column 129",
                record.as_bytes()
            )]
        );
        // Escapes are decoded; surrogate pairs too.
        let m = json_mapping(
            "$",
            &[("A", "$.a", "VARCHAR(16)"), ("B", "$.b", "VARCHAR(32)")],
        );
        assert_eq!(
            shown(&m.rows(br#"{"a":"\"\\\/\n\u00e9\ud83d\ude00","b":{"k":"\u00e9 \""}}"#)),
            [ok(vec![
                s("\"\\/\n\u{e9}\u{1f600}"),
                s(r#"{"k":"\u00e9 \""}"#)
            ])]
        );
    }

    #[test]
    fn csv_rows_split_on_any_delimiters() {
        let m = csv_mapping(
            "\r\n",
            "|",
            &[
                ("S", "VARCHAR(1)"),
                ("N", "INTEGER"),
                ("D", "DOUBLE"),
                ("B", "BOOLEAN"),
            ],
        );
        let mut record = b"a|1|2.5|true\r\nbb||7|FALSE|extra\r\n\r\nc\r\nd|x\r\n".to_vec();
        record.extend_from_slice(b"\xffe|1\r\n\"q|2| 3 |yes");
        assert_eq!(
            shown(&m.rows(&record)),
            [
                ok(vec![
                    s("a"),
                    Value::Int(1),
                    Value::Double(2.5),
                    Value::Bool(true)
                ]),
                ok(vec![
                    s("b"),
                    Value::Null,
                    Value::Double(7.0),
                    Value::Bool(false)
                ]),
                ok(vec![s("c"), Value::Null, Value::Null, Value::Null]),
                err(
                    "Cannot convert value 'x' to INTEGER for column \"N\"",
                    b"d|x"
                ),
                err(
                    "Row is not valid UTF-8 (invalid byte at offset 0)",
                    b"\xffe|1"
                ),
                ok(vec![
                    s("\""),
                    Value::Int(2),
                    Value::Double(3.0),
                    Value::Bool(false)
                ]),
            ]
        );
        // Multi-character delimiters; quotes are data.
        let m = csv_mapping("##", "::", &[("A", "VARCHAR(8)"), ("B", "DECIMAL(4,1)")]);
        assert_eq!(
            shown(&m.rows(b"\"x,y\"::1.5##z::-0.0##")),
            [
                ok(vec![s("\"x,y\""), dec(15, 1)]),
                ok(vec![s("z"), dec(0, 1)]),
            ]
        );
    }

    #[test]
    fn csv_delimiters_default_to_lines_and_commas() {
        let m = InputMapping::from_schema(&json!({
            "RecordFormat": {"RecordFormatType": "CSV"},
            "RecordColumns": [
                {"Name": "A", "SqlType": "INTEGER", "Mapping": "ignored"},
                {"Name": "B", "SqlType": "VARCHAR(2)"}
            ]
        }))
        .unwrap();
        assert_eq!(
            shown(&m.rows(b"1,ab\n2,c,d\n")),
            [
                ok(vec![Value::Int(1), s("ab")]),
                ok(vec![Value::Int(2), s("c")]),
            ]
        );
    }

    #[test]
    fn schemas_that_cannot_be_used() {
        let schema =
            |format: Json, columns: Json| json!({"RecordFormat": format, "RecordColumns": columns});
        let json_format = json!({"RecordFormatType": "JSON",
            "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}});
        let column = |n: &str, m: &str, t: &str| json!({"Name": n, "Mapping": m, "SqlType": t});
        let cases = [
            (
                schema(json_format.clone(), json!([column("A", "$.a[0:].x", "INTEGER"), column("B", "$.b[0:].y", "INTEGER")])),
                "Column \"B\": Mapping $.b[0:].y flattens a second array; only one array can be flattened in a schema",
            ),
            (
                schema(json_format.clone(), json!([column("A", "$.a[0:].b[0:].c", "INTEGER")])),
                "Column \"A\": Mapping $.a[0:].b[0:].c dereferences more than one level of arrays",
            ),
            (
                schema(json_format.clone(), json!([{"Name": "A", "SqlType": "INTEGER"}])),
                "Column \"A\" has no Mapping, which JSON records need",
            ),
            (
                schema(json_format.clone(), json!([column("A", "$.a", "TEXT")])),
                "Column \"A\": SqlType \"TEXT\" is not a supported type",
            ),
            (
                schema(json_format.clone(), json!([column("A", "$.a", "CHAR(70000)")])),
                "Column \"A\": CHAR is at most 65535 characters long",
            ),
            (
                schema(json_format.clone(), json!([column("A", "a", "INTEGER")])),
                "Column \"A\": Mapping a: a path starts with $",
            ),
            (
                schema(json_format.clone(), json!([column("A", "$..a", "INTEGER")])),
                "Column \"A\": Mapping $..a: '.' must be followed by a member name",
            ),
            (
                schema(json_format.clone(), json!([column("A", "$.a[-1]", "INTEGER")])),
                "Column \"A\": Mapping $.a[-1]: '[' must be followed by a quoted name, an index, n: or *",
            ),
            (
                schema(json_format.clone(), json!([column("A", "$.a['b'", "INTEGER")])),
                "Column \"A\": Mapping $.a['b': expected ']'",
            ),
            (
                schema(json_format.clone(), json!([column("A", "$.a", "INTEGER"), column("A", "$.b", "INTEGER")])),
                "Column \"A\" is defined more than once",
            ),
            (
                schema(json_format.clone(), json!([column("ROWTIME", "$.a", "TIMESTAMP")])),
                "Column name ROWTIME is reserved",
            ),
            (
                schema(json_format.clone(), json!([])),
                "InputSchema has no RecordColumns",
            ),
            (
                schema(json!({"RecordFormatType": "XML"}), json!([column("A", "$.a", "INTEGER")])),
                "RecordFormatType XML is not supported",
            ),
            (
                schema(json!({"RecordFormatType": "JSON", "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "records"}}}), json!([column("A", "$.a", "INTEGER")])),
                "RecordRowPath records: a path starts with $",
            ),
            (
                schema(json!({"RecordFormatType": "CSV", "MappingParameters": {"CSVMappingParameters": {"RecordRowDelimiter": "", "RecordColumnDelimiter": ","}}}), json!([column("A", "$.a", "INTEGER")])),
                "RecordRowDelimiter must be a non-empty string",
            ),
            (json!({"RecordColumns": []}), "InputSchema has no RecordFormat"),
        ];
        for (schema, message) in cases {
            assert_eq!(InputMapping::from_schema(&schema).unwrap_err(), message);
        }
        let mut utf16 = schema(json_format, json!([column("A", "$.a", "INTEGER")]));
        utf16["RecordEncoding"] = json!("UTF-16");
        assert_eq!(
            InputMapping::from_schema(&utf16).unwrap_err(),
            "RecordEncoding \"UTF-16\" is not supported; records must be UTF-8"
        );
    }

    #[test]
    fn discovered_schemas_read_their_samples() {
        use riffle_wire::shape::IntoValue;
        let doc = |d: &crate::discover::Discovered| -> Json {
            serde_json::from_slice(&riffle_wire::json::encode(&d.schema.clone().into_value()))
                .unwrap()
        };
        let sample = r#"{"ticker":"QXZ","price":12.5,"n":3,"ok":true,"big":5000000000,"user":{"id":7,"home page":"x"}}"#;
        let found = crate::discover::infer(&[sample.to_string()]).unwrap();
        let m = InputMapping::from_schema(&doc(&found)).unwrap();
        let columns: Vec<(&str, SqlType)> =
            m.columns().iter().map(|(n, t)| (n.as_str(), *t)).collect();
        assert_eq!(
            columns,
            [
                ("ticker", SqlType::Varchar(4)),
                ("price", SqlType::Double),
                ("n", SqlType::Integer),
                ("ok", SqlType::Boolean),
                ("big", SqlType::BigInt),
                ("user_id", SqlType::Integer),
                ("user_home_page", SqlType::Varchar(1)),
            ]
        );
        assert_eq!(
            shown(&m.rows(sample.as_bytes())),
            [ok(vec![
                s("QXZ"),
                Value::Double(12.5),
                Value::Int(3),
                Value::Bool(true),
                Value::Int(5_000_000_000),
                Value::Int(7),
                s("x"),
            ])]
        );
        let found = crate::discover::infer(&["a|1|2.5|true\nbcd|2|3|false".to_string()]).unwrap();
        let m = InputMapping::from_schema(&doc(&found)).unwrap();
        assert_eq!(
            shown(&m.rows(b"a|1|2.5|true\nbcd|2|3|false")),
            [
                ok(vec![
                    s("a"),
                    Value::Int(1),
                    Value::Double(2.5),
                    Value::Bool(true)
                ]),
                ok(vec![
                    s("bcd"),
                    Value::Int(2),
                    Value::Double(3.0),
                    Value::Bool(false)
                ]),
            ]
        );
    }

    fn output_row() -> (Vec<String>, Vec<Value>) {
        let columns = [
            "ROWTIME",
            "TICKER",
            "PRICE",
            "QTY",
            "OK",
            "NOTE",
            "RATIO",
            "DAY",
            "AT",
            "BIN",
            "BIG",
            "NAN",
            "quoted Name",
        ];
        let row = vec![
            Value::Timestamp(1_512_131_696_789),
            s("A\"B,\n\u{1}é"),
            dec(1250, 2),
            Value::Int(-3),
            Value::Bool(true),
            Value::Null,
            Value::Double(3.0),
            Value::Date(8079),
            Value::Timestamp(-1),
            Value::Bytes(vec![0x3f, 0xa0].into()),
            Value::Double(1e10),
            Value::Double(f64::NAN),
            Value::Timestamp(0),
        ];
        (columns.iter().map(|c| c.to_string()).collect(), row)
    }

    #[test]
    fn json_output_records() {
        let (columns, row) = output_row();
        let record = OutputFormat::Json.record(&columns, &row);
        assert_eq!(
            String::from_utf8(record).unwrap(),
            concat!(
                r#"{"ROWTIME":"2017-12-01 12:34:56.789","TICKER":"A\"B,\n\u0001é","PRICE":12.50,"#,
                r#""QTY":-3,"OK":true,"NOTE":null,"RATIO":3.0,"DAY":"1992-02-14","#,
                r#""AT":"1969-12-31 23:59:59.999","BIN":"3FA0","BIG":1.0E10,"NAN":null,"#,
                r#""quoted Name":"1970-01-01 00:00:00.000"}"#
            )
        );
        // A short row's missing values are null.
        assert_eq!(
            OutputFormat::Json.record(&["A".into(), "B".into()], &[Value::Int(1)]),
            br#"{"A":1,"B":null}"#
        );
    }

    #[test]
    fn csv_output_records() {
        let (columns, row) = output_row();
        let record = OutputFormat::Csv.record(&columns, &row);
        assert_eq!(
            String::from_utf8(record).unwrap(),
            "2017-12-01 12:34:56.789,\"A\"\"B,\n\u{1}é\",12.50,-3,true,,3.0,1992-02-14,\
             1969-12-31 23:59:59.999,3FA0,1.0E10,NaN,1970-01-01 00:00:00.000\n"
        );
        assert_eq!(
            OutputFormat::Csv.record(&["A".into(), "B".into()], &[s("x y"), s("")]),
            b"x y,\n"
        );
    }

    #[test]
    fn destination_schemas() {
        assert_eq!(
            OutputFormat::from_schema(&json!({"RecordFormatType": "JSON"})),
            Ok(OutputFormat::Json)
        );
        assert_eq!(
            OutputFormat::from_schema(&json!({"RecordFormatType": "CSV"})),
            Ok(OutputFormat::Csv)
        );
        assert_eq!(
            OutputFormat::from_schema(&json!({"RecordFormatType": "AVRO"})),
            Err("RecordFormatType AVRO is not supported".to_string())
        );
        assert_eq!(
            OutputFormat::from_schema(&json!({})),
            Err("DestinationSchema has no RecordFormatType".to_string())
        );
    }

    #[test]
    fn source_metadata_columns() {
        assert_eq!(
            source_columns(SourceKind::KinesisStream),
            [
                ("APPROXIMATE_ARRIVAL_TIME", SqlType::Timestamp),
                ("SHARD_ID", SqlType::Varchar(128)),
            ]
        );
        assert_eq!(
            source_columns(SourceKind::Firehose),
            [("APPROXIMATE_ARRIVAL_TIME", SqlType::Timestamp)]
        );
    }
}
