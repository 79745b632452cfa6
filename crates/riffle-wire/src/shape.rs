//! Service-model shapes and the validator that checks a decoded body against
//! them, the way AWS's front end does before an operation runs.
//!
//! Shape tables are generated from the botocore service model (see
//! `scripts/gen_model.py`) into each service crate. Validation has two
//! outcomes that clients tell apart: a value of the wrong *type* is a
//! `SerializationException` and stops at once; broken *constraints* (null,
//! length, range, pattern, enum) are collected, in model order, into one
//! `ValidationException` message.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use base64::Engine;
use bytes::Bytes;

use crate::value::{Map, Value};

/// A regular expression from the model, compiled on first use and matched
/// against the whole value, as AWS does.
pub struct Pattern {
    pub src: &'static str,
    re: OnceLock<Option<regex_lite::Regex>>,
}

impl Pattern {
    pub const fn new(src: &'static str) -> Self {
        Pattern { src, re: OnceLock::new() }
    }

    /// Whether `s` matches; a pattern that does not compile matches anything
    /// (the generator's tests keep that from happening).
    pub fn is_match(&self, s: &str) -> bool {
        self.compiled().is_none_or(|re| re.is_match(s))
    }

    pub fn compiled(&self) -> Option<&regex_lite::Regex> {
        self.re
            .get_or_init(|| regex_lite::Regex::new(&format!("^(?:{})$", self.src)).ok())
            .as_ref()
    }
}

/// A member of a structure shape.
pub struct Member {
    /// The wire name (`StreamName`).
    pub name: &'static str,
    pub shape: &'static Shape,
    pub required: bool,
}

/// One shape of a service model, with the constraints AWS enforces.
pub enum Shape {
    Structure(&'static [Member]),
    List {
        member: &'static Shape,
        min: Option<u64>,
        max: Option<u64>,
    },
    Map {
        key: &'static Shape,
        value: &'static Shape,
        min: Option<u64>,
        max: Option<u64>,
    },
    String {
        min: Option<u64>,
        max: Option<u64>,
        pattern: Option<&'static Pattern>,
        enums: &'static [&'static str],
    },
    Integer {
        min: Option<i64>,
        max: Option<i64>,
    },
    Boolean,
    Blob {
        min: Option<u64>,
        max: Option<u64>,
    },
    Timestamp,
    Double,
}

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// `SerializationException`: a member of the wrong type, or a bad blob.
    Serialization(String),
    /// `ValidationException`: the full AWS message.
    Validation(String),
}

/// Checks `body` against the structure `shape` and returns it normalised:
/// unknown members and nulls dropped, blobs decoded to [`Value::Bytes`],
/// timestamps as [`Value::Timestamp`].
pub fn validate(shape: &Shape, body: Value) -> Result<Map, Invalid> {
    let mut v = Validator { errors: Vec::new() };
    let out = v.value(shape, body, "")?;
    if !v.errors.is_empty() {
        let n = v.errors.len();
        let head = if n == 1 {
            "1 validation error detected: ".to_owned()
        } else {
            format!("{n} validation errors detected: ")
        };
        return Err(Invalid::Validation(head + &v.errors.join("; ")));
    }
    match out {
        Value::Map(m) => Ok(m),
        _ => Ok(Map::new()),
    }
}

struct Validator {
    errors: Vec<String>,
}

/// `StreamName` → `streamName`, as AWS names members in messages.
fn lower_camel(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// How AWS shows a value in a validation message.
fn render(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(n) => n.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Str(s) => s.clone(),
        Value::Bytes(b) => format!("java.nio.HeapByteBuffer[pos=0 lim={0} cap={0}]", b.len()),
        Value::Timestamp(ms) => ms.to_string(),
        Value::List(items) => {
            format!("[{}]", items.iter().map(render).collect::<Vec<_>>().join(", "))
        }
        Value::Map(m) => format!(
            "{{{}}}",
            m.0.iter()
                .map(|(k, v)| format!("{k}={}", render(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn type_error(shape: &Shape, got: &Value) -> Invalid {
    let msg = match (shape, got) {
        (Shape::Structure(_) | Shape::Map { .. }, Value::List(_)) => {
            "Start of list found where not expected".to_owned()
        }
        (Shape::List { .. }, Value::Map(_)) | (_, Value::Map(_)) => {
            "Start of structure or map found where not expected.".to_owned()
        }
        (Shape::List { .. } | Shape::Structure(_) | Shape::Map { .. }, _) | (_, Value::List(_)) => {
            "Unexpected field type".to_owned()
        }
        (Shape::String { .. }, Value::Int(_) | Value::Float(_)) => {
            "NUMBER_VALUE cannot be converted to String".to_owned()
        }
        (Shape::String { .. }, Value::Bool(b)) => {
            format!("{}_VALUE cannot be converted to String", if *b { "TRUE" } else { "FALSE" })
        }
        (Shape::Integer { .. }, Value::Str(_)) => {
            "STRING_VALUE can not be converted to an Integer".to_owned()
        }
        (Shape::Integer { .. }, Value::Bool(_)) => {
            "TRUE_VALUE can not be converted to an Integer".to_owned()
        }
        (Shape::Boolean, Value::Str(_)) => "STRING_VALUE can not be converted to a Boolean".to_owned(),
        (Shape::Boolean, _) => "NUMBER_VALUE can not be converted to a Boolean".to_owned(),
        (Shape::Blob { .. }, Value::Int(_) | Value::Float(_)) => {
            "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to a Blob"
                .to_owned()
        }
        (Shape::Blob { .. }, Value::Bool(_)) => {
            "class java.lang.Boolean can not be converted to a Blob".to_owned()
        }
        (Shape::Timestamp, Value::Bool(_)) => {
            "class java.lang.Boolean can not be converted to milliseconds since epoch".to_owned()
        }
        (Shape::Timestamp, _) => {
            "class java.lang.String can not be converted to milliseconds since epoch".to_owned()
        }
        _ => format!("Unexpected {} value", got.kind_name()),
    };
    Invalid::Serialization(msg)
}

impl Validator {
    fn fail(&mut self, value: Option<&Value>, path: &str, constraint: String) {
        let shown = match value {
            None | Some(Value::Null) => "null".to_owned(),
            Some(v) => format!("'{}'", render(v)),
        };
        self.errors.push(format!(
            "Value {shown} at '{path}' failed to satisfy constraint: Member must {constraint}"
        ));
    }

    fn length(&mut self, v: &Value, path: &str, len: u64, min: Option<u64>, max: Option<u64>) {
        if let Some(min) = min.filter(|m| len < *m) {
            self.fail(Some(v), path, format!("have length greater than or equal to {min}"));
        }
        if let Some(max) = max.filter(|m| len > *m) {
            self.fail(Some(v), path, format!("have length less than or equal to {max}"));
        }
    }

    fn value(&mut self, shape: &Shape, v: Value, path: &str) -> Result<Value, Invalid> {
        match shape {
            Shape::Structure(members) => {
                let Value::Map(mut m) = v else {
                    return Err(type_error(shape, &v));
                };
                let mut out = Map::with_capacity(members.len());
                for member in members.iter() {
                    let sub = if path.is_empty() {
                        lower_camel(member.name)
                    } else {
                        format!("{path}.{}", lower_camel(member.name))
                    };
                    match m.take(member.name) {
                        None | Some(Value::Null) => {
                            if member.required {
                                self.fail(None, &sub, "not be null".into());
                            }
                        }
                        Some(x) => {
                            let x = self.value(member.shape, x, &sub)?;
                            out.0.push((member.name.to_owned(), x));
                        }
                    }
                }
                Ok(Value::Map(out))
            }
            Shape::List { member, min, max } => {
                let Value::List(items) = v else {
                    return Err(type_error(shape, &v));
                };
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    let sub = format!("{path}.{}.member", i + 1);
                    if item == Value::Null {
                        self.fail(None, &sub, "not be null".into());
                        continue;
                    }
                    out.push(self.value(member, item, &sub)?);
                }
                let out = Value::List(out);
                self.length(&out, path, count(&out), *min, *max);
                Ok(out)
            }
            Shape::Map { key, value, min, max } => {
                let Value::Map(m) = v else {
                    return Err(type_error(shape, &v));
                };
                let mut out = Map::with_capacity(m.len());
                for (k, item) in m.0 {
                    let kv = self.value(key, Value::Str(k), &format!("{path}.key"))?;
                    let Value::Str(k) = kv else { continue };
                    if item == Value::Null {
                        continue;
                    }
                    let item = self.value(value, item, &format!("{path}.value"))?;
                    out.0.push((k, item));
                }
                let out = Value::Map(out);
                self.length(&out, path, count(&out), *min, *max);
                Ok(out)
            }
            Shape::String { min, max, pattern, enums } => {
                let Value::Str(s) = &v else {
                    return Err(type_error(shape, &v));
                };
                let len = s.chars().count() as u64;
                self.length(&v, path, len, *min, *max);
                if let Some(p) = pattern {
                    if !p.is_match(s) {
                        self.fail(
                            Some(&v),
                            path,
                            format!("satisfy regular expression pattern: {}", p.src),
                        );
                    }
                }
                if !enums.is_empty() && !enums.contains(&s.as_str()) {
                    self.fail(
                        Some(&v),
                        path,
                        format!("satisfy enum value set: [{}]", enums.join(", ")),
                    );
                }
                Ok(v)
            }
            Shape::Integer { min, max } => {
                let n = match v {
                    Value::Int(n) => n,
                    // Coral truncates fractional numbers to integers.
                    Value::Float(f) if f.is_finite() => f.trunc() as i64,
                    _ => return Err(type_error(shape, &v)),
                };
                let shown = Value::Int(n);
                if let Some(min) = min.filter(|m| n < *m) {
                    self.fail(Some(&shown), path, format!("have value greater than or equal to {min}"));
                }
                if let Some(max) = max.filter(|m| n > *m) {
                    self.fail(Some(&shown), path, format!("have value less than or equal to {max}"));
                }
                Ok(shown)
            }
            Shape::Double => match v {
                Value::Int(n) => Ok(Value::Float(n as f64)),
                Value::Float(_) => Ok(v),
                _ => Err(type_error(shape, &v)),
            },
            Shape::Boolean => match v {
                Value::Bool(_) => Ok(v),
                _ => Err(type_error(shape, &v)),
            },
            Shape::Blob { min, max } => {
                let b = match v {
                    Value::Bytes(b) => b,
                    Value::Str(s) => decode_base64(&s)?,
                    _ => return Err(type_error(shape, &v)),
                };
                let out = Value::Bytes(b);
                let len = match &out {
                    Value::Bytes(b) => b.len() as u64,
                    _ => 0,
                };
                self.length(&out, path, len, *min, *max);
                Ok(out)
            }
            Shape::Timestamp => match v {
                Value::Timestamp(_) => Ok(v),
                Value::Int(secs) => Ok(Value::Timestamp(secs.saturating_mul(1000))),
                Value::Float(secs) if secs.is_finite() => {
                    Ok(Value::Timestamp((secs * 1000.0).round() as i64))
                }
                _ => Err(type_error(shape, &v)),
            },
        }
    }
}

fn count(v: &Value) -> u64 {
    match v {
        Value::List(l) => l.len() as u64,
        Value::Map(m) => m.len() as u64,
        _ => 0,
    }
}

/// Decodes a JSON blob the way AWS does: standard alphabet, padding optional.
pub fn decode_base64(s: &str) -> Result<Bytes, Invalid> {
    let trimmed = s.trim_end_matches('=');
    if trimmed.len() % 4 == 1 {
        return Err(Invalid::Serialization(format!(
            "Base64 encoded length is expected a multiple of 4 bytes but found: {}",
            s.len()
        )));
    }
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(trimmed)
        .map(Bytes::from)
        .map_err(|_| {
            Invalid::Serialization(
                "Invalid Base64 character detected in the encoded data".to_owned(),
            )
        })
}

/// Typed views of validated values, used by generated model code.
pub trait FromValue: Sized {
    fn from_value(v: Value) -> Self;
}

/// Conversion of typed output back into a document.
pub trait IntoValue {
    fn into_value(self) -> Value;
}

impl FromValue for String {
    fn from_value(v: Value) -> Self {
        match v {
            Value::Str(s) => s,
            _ => String::new(),
        }
    }
}

impl FromValue for i64 {
    fn from_value(v: Value) -> Self {
        match v {
            Value::Int(n) | Value::Timestamp(n) => n,
            _ => 0,
        }
    }
}

impl FromValue for f64 {
    fn from_value(v: Value) -> Self {
        match v {
            Value::Float(f) => f,
            Value::Int(n) => n as f64,
            _ => 0.0,
        }
    }
}

impl FromValue for bool {
    fn from_value(v: Value) -> Self {
        matches!(v, Value::Bool(true))
    }
}

impl FromValue for Bytes {
    fn from_value(v: Value) -> Self {
        match v {
            Value::Bytes(b) => b,
            _ => Bytes::new(),
        }
    }
}

impl<T: FromValue> FromValue for Vec<T> {
    fn from_value(v: Value) -> Self {
        match v {
            Value::List(items) => items.into_iter().map(T::from_value).collect(),
            _ => Vec::new(),
        }
    }
}

impl<T: FromValue> FromValue for BTreeMap<String, T> {
    fn from_value(v: Value) -> Self {
        match v {
            Value::Map(m) => m.0.into_iter().map(|(k, v)| (k, T::from_value(v))).collect(),
            _ => BTreeMap::new(),
        }
    }
}

impl IntoValue for String {
    fn into_value(self) -> Value {
        Value::Str(self)
    }
}

impl IntoValue for i64 {
    fn into_value(self) -> Value {
        Value::Int(self)
    }
}

impl IntoValue for f64 {
    fn into_value(self) -> Value {
        Value::Float(self)
    }
}

impl IntoValue for bool {
    fn into_value(self) -> Value {
        Value::Bool(self)
    }
}

impl IntoValue for Bytes {
    fn into_value(self) -> Value {
        Value::Bytes(self)
    }
}

impl<T: IntoValue> IntoValue for Vec<T> {
    fn into_value(self) -> Value {
        Value::List(self.into_iter().map(T::into_value).collect())
    }
}

impl<T: IntoValue> IntoValue for BTreeMap<String, T> {
    fn into_value(self) -> Value {
        Value::Map(Map(self.into_iter().map(|(k, v)| (k, v.into_value())).collect()))
    }
}

/// Epoch milliseconds, rendered as a timestamp on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Timestamp(pub i64);

impl FromValue for Timestamp {
    fn from_value(v: Value) -> Self {
        Timestamp(i64::from_value(v))
    }
}

impl IntoValue for Timestamp {
    fn into_value(self) -> Value {
        Value::Timestamp(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static NAME_PATTERN: Pattern = Pattern::new("[a-zA-Z0-9_.-]+");
    static NAME: Shape = Shape::String {
        min: Some(1),
        max: Some(128),
        pattern: Some(&NAME_PATTERN),
        enums: &[],
    };
    static COUNT: Shape = Shape::Integer { min: Some(1), max: None };
    static DATA: Shape = Shape::Blob { min: None, max: Some(4) };
    static INPUT: Shape = Shape::Structure(&[
        Member { name: "StreamName", shape: &NAME, required: true },
        Member { name: "ShardCount", shape: &COUNT, required: false },
        Member { name: "Data", shape: &DATA, required: false },
    ]);

    fn body(json: &str) -> Value {
        crate::json::decode(json.as_bytes()).unwrap()
    }

    #[test]
    fn collects_constraint_errors_in_model_order() {
        let err = validate(&INPUT, body(r#"{"StreamName":"a b","ShardCount":0}"#)).unwrap_err();
        assert_eq!(
            err,
            Invalid::Validation(
                "2 validation errors detected: Value 'a b' at 'streamName' failed to satisfy \
                 constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; \
                 Value '0' at 'shardCount' failed to satisfy constraint: Member must have value \
                 greater than or equal to 1"
                    .into()
            )
        );
        let err = validate(&INPUT, body(r#"{"StreamName":null}"#)).unwrap_err();
        assert_eq!(
            err,
            Invalid::Validation(
                "1 validation error detected: Value null at 'streamName' failed to satisfy \
                 constraint: Member must not be null"
                    .into()
            )
        );
    }

    #[test]
    fn type_errors_are_serialization_errors() {
        assert_eq!(
            validate(&INPUT, body(r#"{"StreamName":1}"#)).unwrap_err(),
            Invalid::Serialization("NUMBER_VALUE cannot be converted to String".into())
        );
        assert_eq!(
            validate(&INPUT, body(r#"{"StreamName":"s","Data":"a"}"#)).unwrap_err(),
            Invalid::Serialization(
                "Base64 encoded length is expected a multiple of 4 bytes but found: 1".into()
            )
        );
    }

    #[test]
    fn normalises_blobs_and_drops_unknown_members() {
        let m = validate(&INPUT, body(r#"{"StreamName":"s","Data":"aGk=","Other":[1]}"#)).unwrap();
        let mut expect = Map::new();
        expect.put("StreamName", Value::Str("s".into()));
        expect.put("Data", Value::Bytes(Bytes::from_static(b"hi")));
        assert_eq!(m, expect);
        let err = validate(&INPUT, body(r#"{"StreamName":"s","Data":"aGVsbG8="}"#)).unwrap_err();
        assert_eq!(
            err,
            Invalid::Validation(
                "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=5 cap=5]' \
                 at 'data' failed to satisfy constraint: Member must have length less than or \
                 equal to 4"
                    .into()
            )
        );
    }
}
