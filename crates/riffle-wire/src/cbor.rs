//! CBOR 1.1 bodies: `application/x-amz-cbor-1.1` (RFC 8949), as the Java SDK,
//! the KCL and the KPL send them.
//!
//! Blobs are byte strings. Timestamps are tag 1 around an integer of epoch
//! *milliseconds* — the Java SDK's convention, which it also expects back; a
//! tag 1 around a float is read as epoch seconds, as RFC 8949 defines it.
//! Decoding is two-phase like every codec here: structural limits (depth,
//! declared lengths against the bytes left) are checked before allocating.

use bytes::Bytes;

use crate::value::{Map, Value};
use crate::DecodeError;

const MAX_DEPTH: usize = 64;

/// Parses a request body. An empty body is an empty structure.
pub fn decode(body: &[u8]) -> Result<Value, DecodeError> {
    if body.is_empty() {
        return Ok(Value::Map(Map::new()));
    }
    let mut d = Decoder { buf: body, pos: 0 };
    let v = d.value(0)?;
    if d.pos != body.len() {
        return Err(err("trailing bytes after CBOR value"));
    }
    Ok(v)
}

fn err(msg: &str) -> DecodeError {
    DecodeError(msg.to_owned())
}

struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

enum Item {
    Len(u64),
    Indefinite,
}

impl Decoder<'_> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| err("unexpected end of CBOR input"))?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: u64) -> Result<&[u8], DecodeError> {
        let left = (self.buf.len() - self.pos) as u64;
        if n > left {
            return Err(err("unexpected end of CBOR input"));
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn uint(&mut self, info: u8) -> Result<Item, DecodeError> {
        let n = match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.byte()?),
            25 => u64::from(u16::from_be_bytes(
                self.take(2)?.try_into().unwrap_or_default(),
            )),
            26 => u64::from(u32::from_be_bytes(
                self.take(4)?.try_into().unwrap_or_default(),
            )),
            27 => u64::from_be_bytes(self.take(8)?.try_into().unwrap_or_default()),
            31 => return Ok(Item::Indefinite),
            _ => return Err(err("invalid CBOR additional information")),
        };
        Ok(Item::Len(n))
    }

    fn definite(&mut self, info: u8) -> Result<u64, DecodeError> {
        match self.uint(info)? {
            Item::Len(n) => Ok(n),
            Item::Indefinite => Err(err("indefinite length not allowed here")),
        }
    }

    /// The bytes of a (possibly chunked) byte or text string of `major` type.
    fn string(&mut self, major: u8, info: u8) -> Result<Vec<u8>, DecodeError> {
        match self.uint(info)? {
            Item::Len(n) => Ok(self.take(n)?.to_vec()),
            Item::Indefinite => {
                let mut out = Vec::new();
                loop {
                    let b = self.byte()?;
                    if b == 0xff {
                        return Ok(out);
                    }
                    if b >> 5 != major {
                        return Err(err("bad chunk in indefinite-length string"));
                    }
                    let n = self.definite(b & 0x1f)?;
                    out.extend_from_slice(self.take(n)?);
                }
            }
        }
    }

    fn text(&mut self, info: u8) -> Result<String, DecodeError> {
        String::from_utf8(self.string(3, info)?).map_err(|_| err("invalid UTF-8 in CBOR text"))
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(err("CBOR document nested too deeply"));
        }
        let b = self.byte()?;
        let (major, info) = (b >> 5, b & 0x1f);
        Ok(match major {
            0 => {
                let n = self.definite(info)?;
                i64::try_from(n).map_or(Value::Float(n as f64), Value::Int)
            }
            1 => {
                let n = self.definite(info)?;
                i64::try_from(n).map_or(Value::Float(-1.0 - n as f64), |n| Value::Int(-1 - n))
            }
            2 => Value::Bytes(Bytes::from(self.string(2, info)?)),
            3 => Value::Str(self.text(info)?),
            4 => {
                let mut out = Vec::new();
                match self.uint(info)? {
                    Item::Len(n) => {
                        // Every element takes at least one byte.
                        if n > (self.buf.len() - self.pos) as u64 {
                            return Err(err("unexpected end of CBOR input"));
                        }
                        out.reserve(n as usize);
                        for _ in 0..n {
                            out.push(self.value(depth + 1)?);
                        }
                    }
                    Item::Indefinite => loop {
                        if self.buf.get(self.pos) == Some(&0xff) {
                            self.pos += 1;
                            break;
                        }
                        out.push(self.value(depth + 1)?);
                    },
                }
                Value::List(out)
            }
            5 => {
                let mut out = Map::new();
                match self.uint(info)? {
                    Item::Len(n) => {
                        if n > (self.buf.len() - self.pos) as u64 / 2 {
                            return Err(err("unexpected end of CBOR input"));
                        }
                        for _ in 0..n {
                            let k = self.key()?;
                            let v = self.value(depth + 1)?;
                            out.0.push((k, v));
                        }
                    }
                    Item::Indefinite => loop {
                        if self.buf.get(self.pos) == Some(&0xff) {
                            self.pos += 1;
                            break;
                        }
                        let k = self.key()?;
                        let v = self.value(depth + 1)?;
                        out.0.push((k, v));
                    },
                }
                Value::Map(out)
            }
            6 => {
                let tag = self.definite(info)?;
                let inner = self.value(depth + 1)?;
                match (tag, inner) {
                    (1, Value::Int(ms)) => Value::Timestamp(ms),
                    (1, Value::Float(secs)) => Value::Timestamp((secs * 1000.0).round() as i64),
                    (_, v) => v,
                }
            }
            _ => match info {
                20 => Value::Bool(false),
                21 => Value::Bool(true),
                22 | 23 => Value::Null,
                25 => {
                    let h = u16::from_be_bytes(self.take(2)?.try_into().unwrap_or_default());
                    Value::Float(half_to_f64(h))
                }
                26 => Value::Float(f64::from(f32::from_be_bytes(
                    self.take(4)?.try_into().unwrap_or_default(),
                ))),
                27 => Value::Float(f64::from_be_bytes(
                    self.take(8)?.try_into().unwrap_or_default(),
                )),
                _ => return Err(err("unsupported CBOR simple value")),
            },
        })
    }

    fn key(&mut self) -> Result<String, DecodeError> {
        let b = self.byte()?;
        if b >> 5 != 3 {
            return Err(err("CBOR map key is not a text string"));
        }
        self.text(b & 0x1f)
    }
}

fn half_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let mant = f64::from(h & 0x3ff);
    sign * match exp {
        0 => mant * 2f64.powi(-24),
        31 if mant == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1.0 + mant / 1024.0) * 2f64.powi(exp - 15),
    }
}

/// Renders a response body.
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write(&mut out, v);
    out
}

fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= u64::from(u8::MAX) {
        out.extend_from_slice(&[m | 24, n as u8]);
    } else if n <= u64::from(u16::MAX) {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= u64::from(u32::MAX) {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn write_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        head(out, 0, n as u64);
    } else {
        head(out, 1, (-1 - n) as u64);
    }
}

fn write(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(0xf6),
        Value::Bool(false) => out.push(0xf4),
        Value::Bool(true) => out.push(0xf5),
        Value::Int(n) => write_int(out, *n),
        Value::Float(f) => {
            out.push(0xfb);
            out.extend_from_slice(&f.to_be_bytes());
        }
        Value::Str(s) => {
            head(out, 3, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(b) => {
            head(out, 2, b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::Timestamp(ms) => {
            head(out, 6, 1);
            write_int(out, *ms);
        }
        Value::List(items) => {
            head(out, 4, items.len() as u64);
            for item in items {
                write(out, item);
            }
        }
        Value::Map(m) => {
            head(out, 5, m.0.len() as u64);
            for (k, item) in &m.0 {
                head(out, 3, k.len() as u64);
                out.extend_from_slice(k.as_bytes());
                write(out, item);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_java_style_timestamp_and_blob() {
        // {"Timestamp": 1(1459799926480), "Data": h'0102'}
        let mut body = vec![0xa2];
        body.extend_from_slice(&[0x69]);
        body.extend_from_slice(b"Timestamp");
        body.extend_from_slice(&[0xc1, 0x1b]);
        body.extend_from_slice(&1_459_799_926_480u64.to_be_bytes());
        body.extend_from_slice(&[0x64]);
        body.extend_from_slice(b"Data");
        body.extend_from_slice(&[0x42, 1, 2]);
        let mut expect = Map::new();
        expect.put("Timestamp", Value::Timestamp(1_459_799_926_480));
        expect.put("Data", Value::Bytes(Bytes::from_static(&[1, 2])));
        assert_eq!(decode(&body).unwrap(), Value::Map(expect.clone()));
        assert_eq!(encode(&Value::Map(expect)), body);
    }

    #[test]
    fn reads_indefinite_lengths_and_half_floats() {
        // {_ "a": [_ 1, -2], "b": (_ h'01', h'02'), "c": 1.5 (half)}
        let body = [
            0xbf, 0x61, b'a', 0x9f, 0x01, 0x21, 0xff, 0x61, b'b', 0x5f, 0x41, 1, 0x41, 2, 0xff,
            0x61, b'c', 0xf9, 0x3e, 0x00, 0xff,
        ];
        let mut expect = Map::new();
        expect.put("a", Value::List(vec![Value::Int(1), Value::Int(-2)]));
        expect.put("b", Value::Bytes(Bytes::from_static(&[1, 2])));
        expect.put("c", Value::Float(1.5));
        assert_eq!(decode(&body).unwrap(), Value::Map(expect));
    }

    #[test]
    fn refuses_lying_lengths_and_bad_keys() {
        assert!(decode(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode(&[0x5a, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode(&[0xa1, 0x01, 0x01]).is_err());
        assert!(decode(&[0x80, 0x80]).is_err());
        assert!(decode(&[0x81; 500]).is_err());
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            any::<f64>()
                .prop_filter("NaN", |f| !f.is_nan())
                .prop_map(Value::Float),
            ".*".prop_map(Value::Str),
            prop::collection::vec(any::<u8>(), 0..64).prop_map(|v| Value::Bytes(Bytes::from(v))),
            any::<i64>().prop_map(Value::Timestamp),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::List),
                prop::collection::vec((".{0,8}", inner), 0..8).prop_map(|kv| Value::Map(Map(kv))),
            ]
        })
    }

    proptest! {
        #[test]
        fn round_trips(v in arb_value()) {
            prop_assert_eq!(decode(&encode(&v)).unwrap(), v);
        }

        #[test]
        fn never_panics_on_garbage(body in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&body);
        }
    }
}
