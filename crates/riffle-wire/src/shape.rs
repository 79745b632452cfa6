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
    /// The model's pattern, as messages quote it.
    pub src: &'static str,
    /// What is compiled: `src`, or an equivalent `regex-lite` accepts.
    matcher: &'static str,
    re: OnceLock<Option<regex_lite::Regex>>,
}

impl Pattern {
    pub const fn new(src: &'static str) -> Self {
        Pattern {
            src,
            matcher: src,
            re: OnceLock::new(),
        }
    }

    /// A model pattern `regex-lite` cannot compile (look-around, Unicode
    /// classes), matched with `matcher`, which accepts the same strings.
    pub const fn rewritten(src: &'static str, matcher: &'static str) -> Self {
        Pattern {
            src,
            matcher,
            re: OnceLock::new(),
        }
    }

    /// Whether `s` matches; a pattern that does not compile matches anything
    /// (the generator's tests keep that from happening).
    pub fn is_match(&self, s: &str) -> bool {
        self.compiled().is_none_or(|re| re.is_match(s))
    }

    pub fn compiled(&self) -> Option<&regex_lite::Regex> {
        self.re
            .get_or_init(|| regex_lite::Regex::new(&format!("^(?:{})$", self.matcher)).ok())
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
    /// `class` is the Java class AWS names in messages that show a structure.
    Structure {
        class: &'static str,
        members: &'static [Member],
    },
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
    /// `long` tells Integer from Long, which AWS names in type errors.
    Integer {
        min: Option<i64>,
        max: Option<i64>,
        long: bool,
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

/// Why a request body did not become an operation's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The service has no such operation.
    UnknownOperation,
    /// The body is not an object (AWS: `SerializationException`, no message).
    NotAnObject,
    Invalid(Invalid),
}

impl From<Invalid> for Refused {
    fn from(e: Invalid) -> Self {
        Refused::Invalid(e)
    }
}

/// A request body checked as the input of `shape`: an object, valid.
pub fn input(shape: &Shape, body: Value) -> Result<Map, Refused> {
    if !matches!(body, Value::Map(_)) {
        return Err(Refused::NotAnObject);
    }
    Ok(validate(shape, body)?)
}

/// The input of `operation`, looked up in a service's generated operation
/// table and checked as [`input`] does.
pub fn operation_input(
    operations: &[(&str, &Shape)],
    operation: &str,
    body: Value,
) -> Result<Map, Refused> {
    let shape = operations
        .iter()
        .find(|(name, _)| *name == operation)
        .map(|(_, s)| *s)
        .ok_or(Refused::UnknownOperation)?;
    input(shape, body)
}

/// Checks `body` against the structure `shape` and returns it normalised:
/// unknown members and nulls dropped, blobs decoded to [`Value::Bytes`],
/// timestamps as [`Value::Timestamp`].
pub fn validate(shape: &Shape, body: Value) -> Result<Map, Invalid> {
    let mut v = Validator { errors: Vec::new() };
    let out = v.value(shape, body, &Path::Root)?;
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

/// Where a value sits in the body; rendered only when a message needs it.
enum Path<'a> {
    Root,
    Member(&'a Path<'a>, &'static str),
    Item(&'a Path<'a>, usize),
    Key(&'a Path<'a>, &'a str),
}

impl Path<'_> {
    /// `records.1.member.partitionKey`, as AWS writes it.
    fn render(&self) -> String {
        let (parent, part) = match self {
            Path::Root => return String::new(),
            Path::Member(p, name) => (p, lower_camel(name)),
            Path::Item(p, i) => (p, format!("{}.member", i + 1)),
            Path::Key(p, k) => (p, (*k).to_owned()),
        };
        let head = parent.render();
        if head.is_empty() {
            part
        } else {
            format!("{head}.{part}")
        }
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
            format!(
                "[{}]",
                items.iter().map(render).collect::<Vec<_>>().join(", ")
            )
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
    const NUMBER: &str = "class com.amazon.coral.value.json.numbers.TruncatingBigNumber";
    let class = match got {
        Value::Bool(_) => "class java.lang.Boolean",
        Value::Str(_) => "class java.lang.String",
        Value::Bytes(_) => "class java.nio.HeapByteBuffer",
        _ => NUMBER,
    };
    let msg = match (shape, got) {
        (_, Value::List(_)) => "Start of list found where not expected".to_owned(),
        (_, Value::Map(_)) => "Start of structure or map found where not expected.".to_owned(),
        (Shape::List { .. }, _) => "Expected list or null".to_owned(),
        (Shape::Map { .. }, _) => "Expected map or null".to_owned(),
        (Shape::Structure { .. }, _) => "Expected null".to_owned(),
        (Shape::String { .. }, _) => format!("{class} can not be converted to an String"),
        (Shape::Integer { long, .. }, _) => {
            format!(
                "{class} can not be converted to an {}",
                if *long { "Long" } else { "Integer" }
            )
        }
        (Shape::Double, _) => format!("{class} can not be converted to an Double"),
        (Shape::Boolean, Value::Str(s)) => {
            format!("'{}' can not be converted to an Boolean", s.to_uppercase())
        }
        (Shape::Boolean, _) => format!("{class} can not be converted to an Boolean"),
        (Shape::Blob { .. }, _) => format!("{class} can not be converted to a Blob"),
        (Shape::Timestamp, _) => {
            format!("{class} can not be converted to milliseconds since epoch")
        }
    };
    Invalid::Serialization(msg)
}

/// AWS reports at most this many constraint violations in one message.
const MAX_ERRORS: usize = 10;

/// The constraint texts a scalar shape imposes, in AWS's order.
fn constraints(shape: &Shape) -> Vec<String> {
    let mut out = Vec::new();
    match shape {
        Shape::String {
            min,
            max,
            pattern,
            enums,
        } => {
            if let Some(p) = pattern {
                out.push(format!(
                    "Member must satisfy regular expression pattern: {}",
                    p.src
                ));
            }
            if let Some(max) = max {
                out.push(format!(
                    "Member must have length less than or equal to {max}"
                ));
            }
            if let Some(min) = min {
                out.push(format!(
                    "Member must have length greater than or equal to {min}"
                ));
            }
            if !enums.is_empty() {
                out.push(format!(
                    "Member must satisfy enum value set: [{}]",
                    enums.join(", ")
                ));
            }
        }
        Shape::Integer { min, max, .. } => {
            if let Some(max) = max {
                out.push(format!(
                    "Member must have value less than or equal to {max}"
                ));
            }
            if let Some(min) = min {
                out.push(format!(
                    "Member must have value greater than or equal to {min}"
                ));
            }
        }
        Shape::Blob { min, max } => {
            if let Some(max) = max {
                out.push(format!(
                    "Member must have length less than or equal to {max}"
                ));
            }
            if let Some(min) = min {
                out.push(format!(
                    "Member must have length greater than or equal to {min}"
                ));
            }
        }
        _ => {}
    }
    out
}

/// The constraints a normalised scalar breaks, in AWS's order: range, then
/// pattern, then length, then enum.
fn violations(shape: &Shape, v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let length = |out: &mut Vec<String>, len: u64, min: &Option<u64>, max: &Option<u64>| {
        if let Some(min) = min.filter(|m| len < *m) {
            out.push(format!(
                "Member must have length greater than or equal to {min}"
            ));
        }
        if let Some(max) = max.filter(|m| len > *m) {
            out.push(format!(
                "Member must have length less than or equal to {max}"
            ));
        }
    };
    match (shape, v) {
        (
            Shape::String {
                min,
                max,
                pattern,
                enums,
            },
            Value::Str(s),
        ) => {
            if let Some(p) = pattern.filter(|p| !p.is_match(s)) {
                out.push(format!(
                    "Member must satisfy regular expression pattern: {}",
                    p.src
                ));
            }
            length(&mut out, s.chars().count() as u64, min, max);
            if !enums.is_empty() && !enums.contains(&s.as_str()) {
                out.push(format!(
                    "Member must satisfy enum value set: [{}]",
                    enums.join(", ")
                ));
            }
        }
        (Shape::Integer { min, max, .. }, Value::Int(n)) => {
            if let Some(min) = min.filter(|m| n < m) {
                out.push(format!(
                    "Member must have value greater than or equal to {min}"
                ));
            }
            if let Some(max) = max.filter(|m| n > m) {
                out.push(format!(
                    "Member must have value less than or equal to {max}"
                ));
            }
        }
        (Shape::Blob { min, max }, Value::Bytes(b)) => length(&mut out, b.len() as u64, min, max),
        (Shape::List { min, max, .. }, Value::List(l)) => {
            length(&mut out, l.len() as u64, min, max)
        }
        (Shape::Map { min, max, .. }, Value::Map(m)) => length(&mut out, m.len() as u64, min, max),
        _ => {}
    }
    out
}

fn length_errors(len: u64, min: &Option<u64>, max: &Option<u64>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(min) = min.filter(|m| len < *m) {
        out.push(format!(
            "Member must have length greater than or equal to {min}"
        ));
    }
    if let Some(max) = max.filter(|m| len > *m) {
        out.push(format!(
            "Member must have length less than or equal to {max}"
        ));
    }
    out
}

/// A list as AWS shows it: structures by their Java identity, scalars by value.
fn show_list(member: &Shape, items: &[Value]) -> String {
    let shown: Vec<String> = items
        .iter()
        .map(|v| match member {
            Shape::Structure { class, .. } => format!("{class}@c965e310"),
            _ => render(v),
        })
        .collect();
    format!("[{}]", shown.join(", "))
}

fn is_scalar(shape: &Shape) -> bool {
    !matches!(
        shape,
        Shape::Structure { .. } | Shape::List { .. } | Shape::Map { .. }
    )
}

impl Validator {
    fn fail(&mut self, value: Option<&Value>, path: &Path<'_>, constraint: &str) {
        let shown = match value {
            None | Some(Value::Null) => "null".to_owned(),
            Some(v) => format!("'{}'", render(v)),
        };
        self.fail_shown(shown, path, constraint);
    }

    fn fail_shown(&mut self, shown: String, path: &Path<'_>, constraint: &str) {
        if self.errors.len() >= MAX_ERRORS {
            return;
        }
        self.errors.push(format!(
            "Value {shown} at '{}' failed to satisfy constraint: {constraint}",
            path.render()
        ));
    }

    fn check(&mut self, shape: &Shape, v: &Value, path: &Path<'_>) {
        for c in violations(shape, v) {
            self.fail(Some(v), path, &c);
        }
    }

    /// Normalises a scalar to its model type, or fails with AWS's type error.
    fn scalar(&mut self, shape: &Shape, v: Value) -> Result<Value, Invalid> {
        Ok(match (shape, v) {
            (Shape::String { .. }, v @ Value::Str(_)) => v,
            // Coral floors fractional numbers and clamps to the Java type's range.
            (Shape::Integer { long, .. }, Value::Int(n)) => Value::Int(clamp(n, *long)),
            (Shape::Integer { long, .. }, Value::Float(f)) if f.is_finite() => {
                Value::Int(clamp(f.floor() as i64, *long))
            }
            (Shape::Double, Value::Int(n)) => Value::Float(n as f64),
            (Shape::Double, v @ Value::Float(_)) => v,
            (Shape::Boolean, v @ Value::Bool(_)) => v,
            (Shape::Boolean, Value::Str(s)) => match s.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Value::Bool(true),
                "false" | "0" | "no" => Value::Bool(false),
                _ => return Err(type_error(shape, &Value::Str(s))),
            },
            (Shape::Blob { .. }, v @ Value::Bytes(_)) => v,
            (Shape::Blob { .. }, Value::Str(s)) => Value::Bytes(decode_base64(&s)?),
            (Shape::Timestamp, v @ Value::Timestamp(_)) => v,
            (Shape::Timestamp, Value::Int(secs)) => Value::Timestamp(secs.saturating_mul(1000)),
            (Shape::Timestamp, Value::Float(secs)) if secs.is_finite() => {
                Value::Timestamp((secs * 1000.0).round() as i64)
            }
            (_, v) => return Err(type_error(shape, &v)),
        })
    }

    fn value(&mut self, shape: &Shape, v: Value, path: &Path<'_>) -> Result<Value, Invalid> {
        match shape {
            Shape::Structure { members, .. } => {
                let Value::Map(mut m) = v else {
                    return Err(type_error(shape, &v));
                };
                let mut out = Map::with_capacity(members.len());
                for member in members.iter() {
                    let sub = Path::Member(path, member.name);
                    match m.take(member.name) {
                        None | Some(Value::Null) => {
                            if member.required {
                                self.fail(None, &sub, "Member must not be null");
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
                // AWS reports the list's own length before its members.
                for c in length_errors(items.len() as u64, min, max) {
                    let shown = format!("'{}'", show_list(member, &items));
                    self.fail_shown(shown, path, &c);
                }
                let mut out = Vec::with_capacity(items.len());
                let mut member_broken = false;
                for (i, item) in items.into_iter().enumerate() {
                    if item == Value::Null {
                        continue;
                    }
                    if is_scalar(member) {
                        let item = self.scalar(member, item)?;
                        member_broken |= !violations(member, &item).is_empty();
                        out.push(item);
                    } else {
                        out.push(self.value(member, item, &Path::Item(path, i))?);
                    }
                }
                if member_broken {
                    let all = constraints(member).join(", ");
                    let shown = format!("'{}'", show_list(member, &out));
                    self.fail_shown(
                        shown,
                        path,
                        &format!("Member must satisfy constraint: [{all}]"),
                    );
                }
                Ok(Value::List(out))
            }
            Shape::Map { key, value, .. } => {
                let Value::Map(m) = v else {
                    return Err(type_error(shape, &v));
                };
                let mut out = Map::with_capacity(m.len());
                let (mut keys_broken, mut values_broken) = (false, false);
                for (k, item) in m.0 {
                    keys_broken |= !violations(key, &Value::Str(k.clone())).is_empty();
                    if item == Value::Null {
                        continue;
                    }
                    let item = if is_scalar(value) {
                        let item = self.scalar(value, item)?;
                        values_broken |= !violations(value, &item).is_empty();
                        item
                    } else {
                        self.value(value, item, &Path::Key(path, &k))?
                    };
                    out.0.push((k, item));
                }
                let out = Value::Map(out);
                self.check(shape, &out, path);
                if keys_broken {
                    let all = constraints(key).join(", ");
                    self.fail(
                        Some(&out),
                        path,
                        &format!("Map keys must satisfy constraint: [{all}]"),
                    );
                }
                if values_broken {
                    let all = constraints(value).join(", ");
                    self.fail(
                        Some(&out),
                        path,
                        &format!("Map value must satisfy constraint: [{all}]"),
                    );
                }
                Ok(out)
            }
            _ => {
                let out = self.scalar(shape, v)?;
                self.check(shape, &out, path);
                Ok(out)
            }
        }
    }
}

fn clamp(n: i64, long: bool) -> i64 {
    if long {
        n
    } else {
        n.clamp(i64::from(i32::MIN), i64::from(i32::MAX))
    }
}

/// Decodes a JSON blob the way AWS does: standard alphabet, padding optional.
pub fn decode_base64(s: &str) -> Result<Bytes, Invalid> {
    let fail = |why: String| {
        Invalid::Serialization(format!("'{s}' can not be converted to a Blob: {why}"))
    };
    if !s.len().is_multiple_of(4) {
        return Err(fail(format!(
            "Base64 encoded length is expected a multiple of 4 bytes but found: {}",
            s.len()
        )));
    }
    let body = s.trim_end_matches('=');
    if s.len() - body.len() > 2 {
        return Err(fail("Invalid Base64 character: '='".into()));
    }
    if let Some(c) = body
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '+' || *c == '/'))
    {
        return Err(fail(format!("Invalid Base64 character: '{c}'")));
    }
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map(Bytes::from)
        .map_err(|_| fail("Invalid last non-pad Base64 character dectected".into()))
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

/// Recursive structures (a Glue table's status holds a table) box the
/// member that closes the cycle.
impl<T: FromValue> FromValue for Box<T> {
    fn from_value(v: Value) -> Self {
        Box::new(T::from_value(v))
    }
}

impl<T: IntoValue> IntoValue for Box<T> {
    fn into_value(self) -> Value {
        (*self).into_value()
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
            Value::Map(m) => {
                m.0.into_iter()
                    .map(|(k, v)| (k, T::from_value(v)))
                    .collect()
            }
            _ => BTreeMap::new(),
        }
    }
}

/// Operations with no output answer with an empty body.
impl IntoValue for () {
    fn into_value(self) -> Value {
        Value::Null
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
        Value::Map(Map(self
            .into_iter()
            .map(|(k, v)| (k, v.into_value()))
            .collect()))
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
    static COUNT: Shape = Shape::Integer {
        min: Some(1),
        max: None,
        long: false,
    };
    static DATA: Shape = Shape::Blob {
        min: None,
        max: Some(4),
    };
    static INPUT: Shape = Shape::Structure {
        class: "Input",
        members: &[
            Member {
                name: "StreamName",
                shape: &NAME,
                required: true,
            },
            Member {
                name: "ShardCount",
                shape: &COUNT,
                required: false,
            },
            Member {
                name: "Data",
                shape: &DATA,
                required: false,
            },
        ],
    };

    fn body(json: &str) -> Value {
        crate::json::decode(json.as_bytes()).unwrap()
    }

    #[test]
    fn operation_input_finds_the_operation_then_checks_the_body() {
        let ops: &[(&str, &Shape)] = &[("CreateStream", &INPUT)];
        let mut want = Map::new();
        want.put("StreamName", Value::Str("s".into()));
        assert_eq!(
            operation_input(ops, "CreateStream", body(r#"{"StreamName":"s"}"#)),
            Ok(want)
        );
        assert_eq!(
            operation_input(ops, "DeleteStream", body(r#"{"StreamName":"s"}"#)),
            Err(Refused::UnknownOperation)
        );
        assert_eq!(
            operation_input(ops, "CreateStream", body("[1]")),
            Err(Refused::NotAnObject)
        );
        assert_eq!(
            operation_input(ops, "CreateStream", body(r#"{"ShardCount":1}"#)),
            Err(Refused::Invalid(Invalid::Validation(
                "1 validation error detected: Value null at 'streamName' failed to satisfy \
                 constraint: Member must not be null"
                    .into()
            )))
        );
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
            Invalid::Serialization(
                "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be \
                 converted to an String"
                    .into()
            )
        );
        assert_eq!(
            validate(&INPUT, body(r#"{"StreamName":"s","Data":"a"}"#)).unwrap_err(),
            Invalid::Serialization(
                "'a' can not be converted to a Blob: Base64 encoded length is expected a \
                 multiple of 4 bytes but found: 1"
                    .into()
            )
        );
    }

    #[test]
    fn normalises_blobs_and_drops_unknown_members() {
        let m = validate(
            &INPUT,
            body(r#"{"StreamName":"s","Data":"aGk=","Other":[1]}"#),
        )
        .unwrap();
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
