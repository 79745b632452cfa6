//! The protocol-neutral document tree that both body codecs decode into and
//! encode from.
//!
//! JSON and CBOR disagree on blobs and timestamps: JSON carries blobs as base64
//! strings and timestamps as epoch seconds, CBOR as byte strings and tag 1.
//! Decoders therefore produce the raw form they saw, and [`crate::shape`]
//! normalises it against the service model into [`Value::Bytes`] and
//! [`Value::Timestamp`]; encoders render those two variants in their own way.

use bytes::Bytes;

/// A decoded request body, or a response body about to be encoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// Binary data: a CBOR byte string, or a JSON base64 string after
    /// normalisation.
    Bytes(Bytes),
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
    List(Vec<Value>),
    Map(Map),
}

/// An ordered map: wire order is kept so that encoded output is stable.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Map(pub Vec<(String, Value)>);

impl Map {
    pub fn new() -> Self {
        Map(Vec::new())
    }

    pub fn with_capacity(n: usize) -> Self {
        Map(Vec::with_capacity(n))
    }

    /// Appends a member; `None` values are skipped, as AWS omits absent members.
    pub fn put(&mut self, key: &str, value: impl Into<Option<Value>>) {
        if let Some(v) = value.into() {
            self.0.push((key.to_owned(), v));
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Removes and returns a member (the first one, if the body repeated it).
    pub fn take(&mut self, key: &str) -> Option<Value> {
        let i = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.swap_remove(i).1)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Value {
    /// The name AWS uses for a wire type in serialization error messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) | Value::Float(_) | Value::Timestamp(_) => "number",
            Value::Str(_) => "string",
            Value::Bytes(_) => "blob",
            Value::List(_) => "list",
            Value::Map(_) => "structure",
        }
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<Bytes> for Value {
    fn from(b: Bytes) -> Self {
        Value::Bytes(b)
    }
}

impl From<Map> for Value {
    fn from(m: Map) -> Self {
        Value::Map(m)
    }
}

impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Value::List(v)
    }
}
