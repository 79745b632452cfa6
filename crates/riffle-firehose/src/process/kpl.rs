//! Records aggregated by the Kinesis Producer Library: the magic bytes
//! `F3 89 9A C2`, a protobuf `AggregatedRecord`, then the MD5 of the
//! protobuf bytes. The protobuf is read by hand; only the fields
//! deaggregation needs are kept.
//!
//! ```text
//! message AggregatedRecord {
//!   repeated string partition_key_table     = 1;
//!   repeated string explicit_hash_key_table = 2;
//!   repeated Record records                 = 3;
//! }
//! message Record {
//!   required uint64 partition_key_index     = 1;
//!   optional uint64 explicit_hash_key_index = 2;
//!   required bytes  data                    = 3;
//!   repeated Tag    tags                    = 4;
//! }
//! ```

use bytes::Bytes;
use md5::{Digest, Md5};

/// The magic prefix of an aggregated record.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
const DIGEST: usize = 16;

/// One user record of an aggregated record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub partition_key: String,
    pub data: Bytes,
}

/// Whether `data` carries the KPL magic and room for a digest.
pub fn is_aggregated(data: &[u8]) -> bool {
    data.len() >= MAGIC.len() + DIGEST && data.starts_with(&MAGIC)
}

fn varint(b: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at).ok_or("truncated varint")?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint longer than 10 bytes".into())
}

/// A protobuf message as (field number, wire type, value bytes or the
/// varint).
enum Field<'a> {
    Varint(u32, u64),
    Bytes(u32, &'a [u8]),
}

fn fields(b: &[u8]) -> Result<Vec<Field<'_>>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let tag = varint(b, &mut at)?;
        let (num, wire) = ((tag >> 3) as u32, tag & 7);
        match wire {
            0 => out.push(Field::Varint(num, varint(b, &mut at)?)),
            1 => {
                at = at
                    .checked_add(8)
                    .filter(|e| *e <= b.len())
                    .ok_or("truncated field")?
            }
            2 => {
                let len = varint(b, &mut at)? as usize;
                let end = at
                    .checked_add(len)
                    .filter(|e| *e <= b.len())
                    .ok_or("truncated length-delimited field")?;
                out.push(Field::Bytes(num, &b[at..end]));
                at = end;
            }
            5 => {
                at = at
                    .checked_add(4)
                    .filter(|e| *e <= b.len())
                    .ok_or("truncated field")?
            }
            w => return Err(format!("unsupported protobuf wire type {w}")),
        }
    }
    Ok(out)
}

/// The user records of an aggregated record; `Err` says why it is not a
/// valid one (digest mismatch, malformed protobuf, bad key index).
/// The longest partition key (256 characters of UTF-8).
const MAX_PARTITION_KEY_BYTES: usize = 256 * 4;

pub fn deaggregate(data: &Bytes) -> Result<Vec<UserRecord>, String> {
    if !is_aggregated(data) {
        return Err("the record is not a KPL aggregated record".into());
    }
    let body = &data[MAGIC.len()..data.len() - DIGEST];
    let digest = &data[data.len() - DIGEST..];
    if Md5::digest(body).as_slice() != digest {
        return Err("the aggregated record's MD5 digest does not match its content".into());
    }
    let mut keys = Vec::new();
    let mut records = Vec::new();
    for f in fields(body)? {
        match f {
            Field::Bytes(1, k) => {
                // Kinesis partition keys are at most 256 characters; a
                // longer one (each user record gets a copy) is not KPL's.
                if k.len() > MAX_PARTITION_KEY_BYTES {
                    return Err("a partition key of the aggregated record is too long".into());
                }
                keys.push(String::from_utf8_lossy(k).into_owned())
            }
            Field::Bytes(3, r) => {
                let mut key_index = None;
                let mut payload = None;
                for rf in fields(r)? {
                    match rf {
                        Field::Varint(1, i) => key_index = Some(i),
                        Field::Bytes(3, d) => payload = Some(d),
                        _ => {}
                    }
                }
                let i = key_index.ok_or("a user record has no partition_key_index")?;
                let d = payload.ok_or("a user record has no data")?;
                // Zero-copy: the payload is a slice of the record.
                let start = d.as_ptr() as usize - data.as_ptr() as usize;
                records.push((i, data.slice(start..start + d.len())));
            }
            _ => {}
        }
    }
    records
        .into_iter()
        .map(|(i, data)| {
            let partition_key = keys
                .get(i as usize)
                .cloned()
                .ok_or_else(|| format!("partition_key_index {i} is out of range"))?;
            Ok(UserRecord {
                partition_key,
                data,
            })
        })
        .collect()
}

/// Builds an aggregated record (tests and tools).
pub fn aggregate(keys: &[&str], records: &[(u64, &[u8])]) -> Vec<u8> {
    fn put_varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn put_bytes(out: &mut Vec<u8>, num: u64, b: &[u8]) {
        put_varint(out, (num << 3) | 2);
        put_varint(out, b.len() as u64);
        out.extend_from_slice(b);
    }
    let mut body = Vec::new();
    for k in keys {
        put_bytes(&mut body, 1, k.as_bytes());
    }
    for (i, d) in records {
        let mut r = Vec::new();
        put_varint(&mut r, 1 << 3);
        put_varint(&mut r, *i);
        put_bytes(&mut r, 3, d);
        put_bytes(&mut body, 3, &r);
    }
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&body);
    out.extend_from_slice(&Md5::digest(&body));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let agg = Bytes::from(aggregate(
            &["pk-a", "pk-b"],
            &[(0, b"one"), (1, b"two"), (0, b"")],
        ));
        assert!(is_aggregated(&agg));
        let recs = deaggregate(&agg).unwrap();
        assert_eq!(
            recs,
            vec![
                UserRecord {
                    partition_key: "pk-a".into(),
                    data: Bytes::from_static(b"one")
                },
                UserRecord {
                    partition_key: "pk-b".into(),
                    data: Bytes::from_static(b"two")
                },
                UserRecord {
                    partition_key: "pk-a".into(),
                    data: Bytes::new()
                },
            ]
        );
    }

    #[test]
    fn hand_built_bytes() {
        // One key "k", one record {index 0, data "hi"}, laid out by hand.
        let body: &[u8] = &[0x0a, 1, b'k', 0x1a, 6, 0x08, 0, 0x1a, 2, b'h', b'i'];
        let mut rec = MAGIC.to_vec();
        rec.extend_from_slice(body);
        rec.extend_from_slice(&Md5::digest(body));
        assert_eq!(aggregate(&["k"], &[(0, b"hi")]), rec);
        let out = deaggregate(&Bytes::from(rec)).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(&out[0].data[..], b"hi");
    }

    #[test]
    fn corrupt_input() {
        let mut agg = aggregate(&["k"], &[(0, b"payload")]);
        let n = agg.len();
        agg[n - 1] ^= 1;
        assert!(deaggregate(&Bytes::from(agg.clone()))
            .unwrap_err()
            .contains("MD5"));
        // A truncated protobuf with a matching digest.
        let body: &[u8] = &[0x1a, 9, 0x08];
        let mut bad = MAGIC.to_vec();
        bad.extend_from_slice(body);
        bad.extend_from_slice(&Md5::digest(body));
        assert!(deaggregate(&Bytes::from(bad))
            .unwrap_err()
            .contains("truncated"));
        // A key index out of range.
        let oob = aggregate(&["k"], &[(3, b"x")]);
        assert!(deaggregate(&Bytes::from(oob))
            .unwrap_err()
            .contains("out of range"));
        assert!(!is_aggregated(b"plain record"));
    }
}
