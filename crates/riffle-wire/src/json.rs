//! AWS JSON 1.1 bodies: `application/x-amz-json-1.1`.
//!
//! Blobs travel as base64 strings and timestamps as epoch seconds with
//! millisecond precision (`1459799926.48`).

use std::fmt;

use base64::Engine;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::value::{Map, Value};
use crate::DecodeError;

/// Nesting deeper than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 64;

/// Parses a request body. An empty body is an empty structure, as AWS treats it.
pub fn decode(body: &[u8]) -> Result<Value, DecodeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Map(Map::new()));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let v = ValueSeed(0)
        .deserialize(&mut de)
        .map_err(|e| DecodeError(e.to_string()))?;
    de.end().map_err(|e| DecodeError(e.to_string()))?;
    Ok(v)
}

struct ValueSeed(usize);

impl<'de> de::DeserializeSeed<'de> for ValueSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.0 > MAX_DEPTH {
            return Err(de::Error::custom("document nested too deeply"));
        }
        d.deserialize_any(ValueVisitor(self.0))
    }
}

struct ValueVisitor(usize);

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Int(n))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(i64::try_from(n).map_or(Value::Float(n as f64), Value::Int))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(Value::Float(n))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::Str(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::Str(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(v) = seq.next_element_seed(ValueSeed(self.0 + 1))? {
            out.push(v);
        }
        Ok(Value::List(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(ValueSeed(self.0 + 1))?;
            out.0.push((k, v));
        }
        Ok(Value::Map(out))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        ValueSeed(0).deserialize(d)
    }
}

use de::DeserializeSeed;

/// Renders a response body.
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write(&mut out, v);
    out
}

fn write(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(n) => out.extend_from_slice(itoa(*n).as_bytes()),
        Value::Float(f) => {
            if f.is_finite() {
                out.extend_from_slice(format!("{f}").as_bytes())
            } else {
                out.extend_from_slice(b"null")
            }
        }
        Value::Str(s) => write_str(out, s),
        Value::Bytes(b) => {
            out.push(b'"');
            let start = out.len();
            let n = base64::encoded_len(b.len(), true).unwrap_or(0);
            out.resize(start + n, 0);
            let written = base64::engine::general_purpose::STANDARD
                .encode_slice(b, &mut out[start..])
                .unwrap_or(0);
            out.truncate(start + written);
            out.push(b'"');
        }
        Value::Timestamp(ms) => out.extend_from_slice(epoch_seconds(*ms).as_bytes()),
        Value::List(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(out, item);
            }
            out.push(b']');
        }
        Value::Map(m) => {
            out.push(b'{');
            for (i, (k, item)) in m.0.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, k);
                out.push(b':');
                write(out, item);
            }
            out.push(b'}');
        }
    }
}

fn itoa(n: i64) -> String {
    n.to_string()
}

/// Epoch milliseconds as JSON seconds: `1459799926.48`, `1459799926`.
pub fn epoch_seconds(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    let mut s = secs.to_string();
    if frac != 0 {
        s.push('.');
        let digits = [frac / 100, frac / 10 % 10, frac % 10];
        let keep = if digits[2] != 0 {
            3
        } else if digits[1] != 0 {
            2
        } else {
            1
        };
        for d in &digits[..keep] {
            s.push((b'0' + *d as u8) as char);
        }
    }
    s
}

/// Appends `s` as a JSON string literal.
pub fn write_string(out: &mut Vec<u8>, s: &str) {
    write_str(out, s)
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &c) in bytes.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                out.extend_from_slice(format!("\\u{c:04x}").as_bytes());
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// A decoded value as a `serde_json` document (blobs become base64 strings,
/// timestamps epoch seconds), for handlers that work on JSON documents.
pub fn to_serde(v: &Value) -> serde_json::Value {
    serde_json::from_slice(&encode(v)).unwrap_or(serde_json::Value::Null)
}

/// A `serde_json` document as a value, the inverse of [`to_serde`]; a
/// response shape then turns base64 strings back into blobs and numbers
/// into timestamps.
pub fn from_serde(v: &serde_json::Value) -> Value {
    serde_json::to_vec(v)
        .ok()
        .and_then(|b| decode(&b).ok())
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;

    #[test]
    fn empty_body_is_empty_structure() {
        assert_eq!(decode(b"").unwrap(), Value::Map(Map::new()));
        assert_eq!(decode(b"  \n").unwrap(), Value::Map(Map::new()));
    }

    #[test]
    fn timestamps_render_as_seconds_with_millis() {
        assert_eq!(epoch_seconds(1_459_799_926_480), "1459799926.48");
        assert_eq!(epoch_seconds(1_459_799_926_000), "1459799926");
        assert_eq!(epoch_seconds(1_459_799_926_007), "1459799926.007");
    }

    #[test]
    fn encodes_blobs_as_base64_and_escapes_strings() {
        let mut m = Map::new();
        m.put("Data", Value::Bytes(Bytes::from_static(b"hello")));
        m.put("K", Value::Str("a\"b\\c\n\u{1}é".into()));
        assert_eq!(
            String::from_utf8(encode(&Value::Map(m))).unwrap(),
            r#"{"Data":"aGVsbG8=","K":"a\"b\\c\n\u0001é"}"#
        );
    }

    #[test]
    fn refuses_deep_nesting_and_trailing_garbage() {
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(decode(deep.as_bytes()).is_err());
        assert!(decode(b"{} x").is_err());
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            ".*".prop_map(Value::Str),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::List),
                prop::collection::vec(("[a-zA-Z]{1,8}", inner), 0..8)
                    .prop_map(|kv| Value::Map(Map(kv))),
            ]
        })
    }

    proptest! {
        #[test]
        fn round_trips(v in arb_value()) {
            prop_assert_eq!(decode(&encode(&v)).unwrap(), v);
        }
    }
}
