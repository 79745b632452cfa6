//! Batch frames: the unit the disk engine writes, checksums and reads.
//!
//! ```text
//! offset size
//!   0     4   len            bytes after this field (28 + payload), u32 LE
//!   4     4   crc            CRC32C of bytes 8 .. 4 + len, u32 LE
//!   8     1   kind           1 = records, 2 = hole (see encode_hole)
//!   9     1   flags          bit 0: synced-before (see FLAG_SYNCED_BEFORE);
//!                            other bits zero (format 1: always zero)
//!  10     2   reserved       zero
//!  12     4   shard          u32 LE
//!  16     8   first_offset   u64 LE: offset of the first record in its shard
//!  24     4   count          u32 LE: records in the frame, offsets contiguous
//!  28     8   base_arrival   i64 LE: epoch ms of the first record
//!  36     ..  records        count × { varint arrival_delta_ms, varint key_len,
//!                            key (UTF-8), varint data_len, data }
//! ```

use bytes::Bytes;

pub const HEADER: usize = 36;
pub const KIND_RECORDS: u8 = 1;
/// A hole: `riffle repair --quarantine` wrote it over a damaged byte range
/// (the same size, so every other frame keeps its position). Its header
/// names the records that were lost there (shard, first offset, count) so
/// their offsets are never reused; readers skip it. Its payload is zeros.
pub const KIND_HOLE: u8 = 2;
/// Hole flag bit: nothing was known of the lost range (its header was
/// destroyed): the shard, offset and count fields are zero and mean nothing.
pub const HOLE_UNATTRIBUTED: u8 = 2;
/// Flag bit: this frame starts a commit cycle, and every byte before it in
/// its segment was durable (synced) when it was written. Recovery uses it to
/// tell damage in writes no sync had covered (cut) from damage in synced data
/// (corruption): a power loss cannot damage bytes before such a frame.
pub const FLAG_SYNCED_BEFORE: u8 = 1;
/// A frame may not claim more than this (a corrupt length must not make
/// recovery allocate gigabytes).
pub const MAX_FRAME: usize = 256 * 1024 * 1024;

/// A record inside a frame, before decoding its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameRecord {
    pub arrival_ms: i64,
    pub partition_key: String,
    pub data: Bytes,
}

/// The fixed part of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Whole frame size in bytes, length field included.
    pub size: usize,
    pub crc: u32,
    pub kind: u8,
    pub flags: u8,
    pub shard: u32,
    pub first_offset: u64,
    pub count: u32,
    pub base_arrival: i64,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Appends one frame of `records` (arrival, key, data) to `out`.
pub fn encode<'a>(
    out: &mut Vec<u8>,
    flags: u8,
    shard: u32,
    first_offset: u64,
    records: impl ExactSizeIterator<Item = (i64, &'a str, &'a [u8])>,
) {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER]);
    let count = records.len() as u32;
    let mut base = None;
    for (arrival, key, data) in records {
        let b = *base.get_or_insert(arrival);
        put_varint(out, (arrival - b).max(0) as u64);
        put_varint(out, key.len() as u64);
        out.extend_from_slice(key.as_bytes());
        put_varint(out, data.len() as u64);
        out.extend_from_slice(data);
    }
    let len = (out.len() - start - 4) as u32;
    let h = &mut out[start..start + HEADER];
    h[0..4].copy_from_slice(&len.to_le_bytes());
    h[8] = KIND_RECORDS;
    h[9] = flags;
    h[12..16].copy_from_slice(&shard.to_le_bytes());
    h[16..24].copy_from_slice(&first_offset.to_le_bytes());
    h[24..28].copy_from_slice(&count.to_le_bytes());
    h[28..36].copy_from_slice(&base.unwrap_or(0).to_le_bytes());
    let crc = crc32c::crc32c(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Appends a hole frame of exactly `size` bytes (at least [`HEADER`]) that
/// stands for `count` lost records of `shard` from `first_offset` on (or,
/// with `None`, for records nobody can name).
pub fn encode_hole(out: &mut Vec<u8>, size: usize, lost: Option<(u32, u64, u32, i64)>) {
    debug_assert!((HEADER..=MAX_FRAME).contains(&size));
    let start = out.len();
    out.resize(start + size, 0);
    let h = &mut out[start..start + HEADER];
    h[0..4].copy_from_slice(&((size - 4) as u32).to_le_bytes());
    h[8] = KIND_HOLE;
    match lost {
        Some((shard, first_offset, count, base_arrival)) => {
            h[12..16].copy_from_slice(&shard.to_le_bytes());
            h[16..24].copy_from_slice(&first_offset.to_le_bytes());
            h[24..28].copy_from_slice(&count.to_le_bytes());
            h[28..36].copy_from_slice(&base_arrival.to_le_bytes());
        }
        None => h[9] = HOLE_UNATTRIBUTED,
    }
    let crc = crc32c::crc32c(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Whether `kind` is a frame kind this version knows.
pub fn known_kind(kind: u8) -> bool {
    kind == KIND_RECORDS || kind == KIND_HOLE
}

/// Reads the fixed part of the frame at the start of `buf`, if `buf` holds it
/// and its length is plausible.
pub fn header(buf: &[u8]) -> Option<Header> {
    if buf.len() < HEADER {
        return None;
    }
    let u32_at = |i: usize| u32::from_le_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
    let u64_at = |i: usize| u64::from_le_bytes(buf[i..i + 8].try_into().unwrap_or_default());
    let size = u32_at(0) as usize + 4;
    if !(HEADER..=MAX_FRAME).contains(&size) {
        return None;
    }
    Some(Header {
        size,
        crc: u32_at(4),
        kind: buf[8],
        flags: buf[9],
        shard: u32_at(12),
        first_offset: u64_at(16),
        count: u32_at(24),
        base_arrival: u64_at(28) as i64,
    })
}

/// Whether a whole frame's checksum holds.
pub fn verify(frame: &[u8]) -> bool {
    match header(frame) {
        Some(h) if frame.len() == h.size => crc32c::crc32c(&frame[8..]) == h.crc,
        _ => false,
    }
}

/// Decodes a verified frame's records.
pub fn records(frame: &Bytes) -> Option<Vec<FrameRecord>> {
    let h = header(frame)?;
    if h.kind != KIND_RECORDS || frame.len() != h.size {
        return None;
    }
    let mut out = Vec::with_capacity(h.count as usize);
    let mut pos = HEADER;
    for _ in 0..h.count {
        let delta = get_varint(frame, &mut pos)?;
        let klen = get_varint(frame, &mut pos)? as usize;
        let key = frame.get(pos..pos.checked_add(klen)?)?;
        let key = std::str::from_utf8(key).ok()?.to_owned();
        pos += klen;
        let dlen = get_varint(frame, &mut pos)? as usize;
        let end = pos.checked_add(dlen)?;
        if end > frame.len() {
            return None;
        }
        let data = frame.slice(pos..end);
        pos = end;
        out.push(FrameRecord {
            arrival_ms: h.base_arrival + delta as i64,
            partition_key: key,
            data,
        });
    }
    (pos == frame.len()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_checksum() {
        let mut buf = Vec::new();
        let recs = [
            (1000i64, "a", &b"x"[..]),
            (1003, "bb", &b""[..]),
            (1003, "", &[0u8; 300][..]),
        ];
        encode(&mut buf, 0, 7, 42, recs.iter().copied());
        let h = header(&buf).unwrap();
        assert_eq!(
            (h.size, h.shard, h.first_offset, h.count, h.base_arrival),
            (buf.len(), 7, 42, 3, 1000)
        );
        assert!(verify(&buf));
        let got = records(&Bytes::from(buf.clone())).unwrap();
        let want: Vec<_> = recs
            .iter()
            .map(|(a, k, d)| FrameRecord {
                arrival_ms: *a,
                partition_key: (*k).into(),
                data: Bytes::copy_from_slice(d),
            })
            .collect();
        assert_eq!(got, want);
        for i in 4..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x10;
            assert!(!verify(&bad), "flip at {i} undetected");
        }
        assert!(!verify(&buf[..buf.len() - 1]));
    }

    #[test]
    fn hole_layout() {
        let mut buf = Vec::new();
        encode_hole(&mut buf, 50, Some((3, 7, 2, 99)));
        assert_eq!(buf.len(), 50);
        let h = header(&buf).unwrap();
        assert_eq!(
            (
                h.size,
                h.kind,
                h.flags,
                h.shard,
                h.first_offset,
                h.count,
                h.base_arrival
            ),
            (50, KIND_HOLE, 0, 3, 7, 2, 99)
        );
        assert!(verify(&buf));
        assert!(buf[HEADER..].iter().all(|b| *b == 0));
        assert_eq!(records(&Bytes::from(buf.clone())), None);
        let mut anon = Vec::new();
        encode_hole(&mut anon, HEADER, None);
        let h = header(&anon).unwrap();
        assert_eq!((h.flags, h.shard, h.count), (HOLE_UNATTRIBUTED, 0, 0));
        assert!(verify(&anon));
    }

    #[test]
    fn layout_is_stable() {
        let mut buf = Vec::new();
        encode(&mut buf, 0, 1, 2, [(5i64, "k", &b"d"[..])].into_iter());
        assert_eq!(
            buf,
            [
                &[37, 0, 0, 0][..],
                &crc32c::crc32c(&buf[8..]).to_le_bytes(),
                &[
                    1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0, 0, 0,
                    0, 0
                ],
                &[0, 1, b'k', 1, b'd'],
            ]
            .concat()
        );
        // The synced-before flag is byte 9, inside the checksum.
        let mut flagged = Vec::new();
        encode(
            &mut flagged,
            FLAG_SYNCED_BEFORE,
            1,
            2,
            [(5i64, "k", &b"d"[..])].into_iter(),
        );
        assert_eq!(flagged[9], 1);
        assert_eq!(flagged[8..], {
            let mut b = buf[8..].to_vec();
            b[1] = 1;
            b
        });
        assert_eq!(header(&flagged).unwrap().flags, FLAG_SYNCED_BEFORE);
        assert!(verify(&flagged));
        let mut cleared = flagged.clone();
        cleared[9] = 0;
        assert!(!verify(&cleared));
    }
}
