//! Shard iterators: opaque, tamper-evident tokens that expire.
//!
//! Layout before base64 (all big-endian):
//!
//! ```text
//! 00 00 00 00 00 00 00 01 | u8 version=1 | i64 created_ms | u64 stream_id
//! | u32 shard_index | u64 position | u8 name_len | name | 16-byte HMAC-SHA256 prefix
//! ```
//!
//! The leading eight bytes make tokens start with `AAAAAAAAAAE`, like AWS's.
//! The MAC, keyed by a per-server secret, covers everything before it, so a
//! client cannot move an iterator to another position or stream.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const MAGIC: [u8; 8] = [0, 0, 0, 0, 0, 0, 0, 1];
const VERSION: u8 = 1;
const MAC_LEN: usize = 16;

/// What an iterator points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardIterator {
    pub created_ms: i64,
    /// The stream incarnation: a recreated stream of the same name differs.
    pub stream_id: u64,
    pub stream_name: String,
    pub shard_index: u32,
    /// The log offset of the next record to return.
    pub position: u64,
}

/// Signs and checks iterators with one server secret.
#[derive(Clone)]
pub struct IteratorCodec {
    key: [u8; 32],
}

impl IteratorCodec {
    pub fn new(key: [u8; 32]) -> Self {
        IteratorCodec { key }
    }

    fn mac(&self, data: &[u8]) -> [u8; MAC_LEN] {
        let mut m = <Hmac<Sha256>>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        m.update(data);
        let full = m.finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    /// Seals an arbitrary payload (pagination tokens) with the same key;
    /// `kind` keeps one kind of token from being accepted as another.
    pub fn seal(&self, kind: u8, payload: &[u8]) -> String {
        let mut b = Vec::with_capacity(10 + payload.len() + MAC_LEN);
        b.extend_from_slice(&MAGIC);
        b.push(0x80 | kind);
        b.extend_from_slice(payload);
        let mac = self.mac(&b);
        b.extend_from_slice(&mac);
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    /// The payload of a token sealed with `kind`, if genuine.
    pub fn open(&self, kind: u8, token: &str) -> Option<Vec<u8>> {
        let b = base64::engine::general_purpose::STANDARD
            .decode(token)
            .ok()?;
        if b.len() < 9 + MAC_LEN || b[..8] != MAGIC || b[8] != 0x80 | kind {
            return None;
        }
        let (body, mac) = b.split_at(b.len() - MAC_LEN);
        let expect = self.mac(body);
        if expect.iter().zip(mac).fold(0u8, |a, (x, y)| a | (x ^ y)) != 0 {
            return None;
        }
        Some(body[9..].to_vec())
    }

    pub fn encode(&self, it: &ShardIterator) -> String {
        let name = it.stream_name.as_bytes();
        let mut b = Vec::with_capacity(46 + name.len() + MAC_LEN);
        b.extend_from_slice(&MAGIC);
        b.push(VERSION);
        b.extend_from_slice(&it.created_ms.to_be_bytes());
        b.extend_from_slice(&it.stream_id.to_be_bytes());
        b.extend_from_slice(&it.shard_index.to_be_bytes());
        b.extend_from_slice(&it.position.to_be_bytes());
        b.push(name.len().min(255) as u8);
        b.extend_from_slice(&name[..name.len().min(255)]);
        let mac = self.mac(&b);
        b.extend_from_slice(&mac);
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    /// Decodes a token; `None` for anything this server did not issue.
    pub fn decode(&self, token: &str) -> Option<ShardIterator> {
        let b = base64::engine::general_purpose::STANDARD
            .decode(token)
            .ok()?;
        if b.len() < 38 + MAC_LEN || b[..8] != MAGIC || b[8] != VERSION {
            return None;
        }
        let (body, mac) = b.split_at(b.len() - MAC_LEN);
        let expect = self.mac(body);
        if expect.iter().zip(mac).fold(0u8, |a, (x, y)| a | (x ^ y)) != 0 {
            return None;
        }
        let u64_at = |i: usize| u64::from_be_bytes(body[i..i + 8].try_into().unwrap_or_default());
        let name_len = body[37] as usize;
        if body.len() != 38 + name_len {
            return None;
        }
        Some(ShardIterator {
            created_ms: u64_at(9) as i64,
            stream_id: u64_at(17),
            shard_index: u32::from_be_bytes(body[25..29].try_into().unwrap_or_default()),
            position: u64_at(29),
            stream_name: String::from_utf8(body[38..].to_vec()).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_tampering() {
        let codec = IteratorCodec::new([7; 32]);
        let it = ShardIterator {
            created_ms: 1_700_000_000_123,
            stream_id: 42,
            stream_name: "a".repeat(128),
            shard_index: 9,
            position: 123_456,
        };
        let tok = codec.encode(&it);
        assert!(tok.starts_with("AAAAAAAAAAE"));
        assert!(tok.len() <= 512);
        assert_eq!(codec.decode(&tok), Some(it));
        let mut raw = base64::engine::general_purpose::STANDARD
            .decode(&tok)
            .unwrap();
        raw[30] ^= 1;
        let forged = base64::engine::general_purpose::STANDARD.encode(raw);
        assert_eq!(codec.decode(&forged), None);
        assert_eq!(IteratorCodec::new([8; 32]).decode(&tok), None);
        assert_eq!(codec.decode("garbage"), None);
        let t = codec.seal(3, b"payload");
        assert_eq!(codec.open(3, &t), Some(b"payload".to_vec()));
        assert_eq!(codec.open(4, &t), None);
        assert_eq!(codec.decode(&t), None);
    }
}
