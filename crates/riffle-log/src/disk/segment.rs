//! Segment files, their index files, and the per-log offsets checkpoint.
//!
//! ```text
//! <seq:016x>.seg   header (32 bytes) then frames (see frame.rs)
//!   0  8  magic "RIFFLSEG"
//!   8  4  format version, u32 LE (1)
//!  12  4  reserved, zero
//!  16  8  log id, u64 LE
//!  24  8  segment sequence number, u64 LE
//!
//! <seq:016x>.idx   written when a segment is sealed; rebuilt from the
//!                  segment when missing or damaged
//!   0  8  magic "RIFFLIDX"
//!   8  4  format version, u32 LE (1)
//!  12  4  entry count n, u32 LE
//!  16  48·n entries: shard u32, count u32, first_offset u64, base_arrival i64,
//!                    last_arrival i64, position u64, size u32, flags u32
//!                    (bit 0: frame failed its checksum)
//!  ..  4  CRC32C of everything before, u32 LE
//!
//! offsets          next offset of every shard when the newest segment was
//!                  sealed, so numbering survives retention deleting every
//!                  frame of a shard
//!   0  8  magic "RIFFLOFF", 4 version (1), 4 count n,
//!   16 12·n {shard u32, next_offset u64}, then CRC32C u32 of all before
//! ```
//! All integers little-endian.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::frame;

pub const SEG_MAGIC: &[u8; 8] = b"RIFFLSEG";
pub const IDX_MAGIC: &[u8; 8] = b"RIFFLIDX";
pub const OFF_MAGIC: &[u8; 8] = b"RIFFLOFF";
pub const VERSION: u32 = 1;
pub const SEG_HEADER: u64 = 32;
const IDX_ENTRY: usize = 48;

/// Where a frame lives and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub shard: u32,
    pub count: u32,
    pub first_offset: u64,
    pub base_arrival: i64,
    pub last_arrival: i64,
    pub pos: u64,
    pub size: u32,
    pub corrupt: bool,
}

pub fn seg_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016x}.seg"))
}

pub fn idx_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016x}.idx"))
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates a segment with its header, durably (file and directory synced).
pub fn create(dir: &Path, log_id: u64, seq: u64) -> io::Result<File> {
    let path = seg_path(dir, seq);
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    let mut h = Vec::with_capacity(SEG_HEADER as usize);
    h.extend_from_slice(SEG_MAGIC);
    h.extend_from_slice(&VERSION.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&log_id.to_le_bytes());
    h.extend_from_slice(&seq.to_le_bytes());
    if let Err(e) = f
        .write_all(&h)
        .and_then(|_| f.sync_all())
        .and_then(|_| sync_dir(dir))
    {
        let _ = fs::remove_file(&path);
        return Err(e);
    }
    Ok(f)
}

/// Opens a segment for reading and appending; checks its header.
pub fn open(dir: &Path, seq: u64) -> io::Result<(File, bool)> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(seg_path(dir, seq))?;
    let mut h = [0u8; SEG_HEADER as usize];
    let ok = f.read_exact_at(&mut h, 0).is_ok()
        && &h[0..8] == SEG_MAGIC
        && u32::from_le_bytes([h[8], h[9], h[10], h[11]]) == VERSION
        && u64::from_le_bytes(h[24..32].try_into().unwrap_or_default()) == seq;
    Ok((f, ok))
}

/// The outcome of scanning a segment's frames.
pub struct Scan {
    pub entries: Vec<Entry>,
    /// Where valid data ends: frames from here on are a torn tail.
    pub valid_len: u64,
}

/// Scans every frame of a segment, verifying checksums. A frame that fails
/// its checksum but is followed by a valid frame is mid-log corruption (kept,
/// flagged); one that is not ends the valid data (a torn tail).
pub fn scan(file: &File, file_len: u64) -> io::Result<Scan> {
    let mut entries = Vec::new();
    let mut pos = SEG_HEADER;
    let mut hbuf = [0u8; frame::HEADER];
    while pos < file_len {
        let Some(h) = read_header(file, pos, file_len, &mut hbuf) else {
            // An unreadable header: corruption if a valid frame follows,
            // else the end of the valid data.
            let Some(next) = next_valid_frame(file, pos + 1, file_len)? else {
                break;
            };
            let raw = lenient_header(file, pos);
            entries.push(Entry {
                pos,
                size: (next - pos) as u32,
                corrupt: true,
                ..raw
            });
            pos = next;
            continue;
        };
        let mut buf = vec![0u8; h.size];
        file.read_exact_at(&mut buf, pos)?;
        let bytes = bytes::Bytes::from(buf);
        let good = frame::verify(&bytes);
        let records = if good { frame::records(&bytes) } else { None };
        match records {
            Some(recs) => entries.push(Entry {
                shard: h.shard,
                count: h.count,
                first_offset: h.first_offset,
                base_arrival: h.base_arrival,
                last_arrival: recs.last().map_or(h.base_arrival, |r| r.arrival_ms),
                pos,
                size: h.size as u32,
                corrupt: false,
            }),
            None => {
                // Mid-log corruption if a valid frame follows anywhere after
                // it; otherwise the valid data ends here.
                let Some(next) = next_valid_frame(file, pos + 1, file_len)? else {
                    break;
                };
                entries.push(Entry {
                    shard: h.shard,
                    count: h.count,
                    first_offset: h.first_offset,
                    base_arrival: h.base_arrival,
                    last_arrival: h.base_arrival,
                    pos,
                    size: (next - pos) as u32,
                    corrupt: true,
                });
                pos = next;
                continue;
            }
        }
        pos += h.size as u64;
    }
    Ok(Scan {
        entries,
        valid_len: pos.min(file_len),
    })
}

/// The fields a damaged frame's header claims (untrusted: recovery only uses
/// them when they continue their shard).
fn lenient_header(file: &File, pos: u64) -> Entry {
    let mut h = [0u8; frame::HEADER];
    let _ = file.read_exact_at(&mut h, pos);
    let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let u64_at = |i: usize| u64::from_le_bytes(h[i..i + 8].try_into().unwrap_or_default());
    Entry {
        shard: u32_at(12),
        count: u32_at(24),
        first_offset: u64_at(16),
        base_arrival: u64_at(28) as i64,
        last_arrival: u64_at(28) as i64,
        pos,
        size: 0,
        corrupt: true,
    }
}

/// The position of the first frame at or after `from` whose checksum holds.
/// Only used once corruption was found, so it may read the rest of the file.
fn next_valid_frame(file: &File, from: u64, file_len: u64) -> io::Result<Option<u64>> {
    if from >= file_len {
        return Ok(None);
    }
    let mut rest = vec![0u8; (file_len - from) as usize];
    file.read_exact_at(&mut rest, from)?;
    for i in 0..rest.len() {
        let Some(h) = frame::header(&rest[i..]) else {
            continue;
        };
        if h.kind == frame::KIND_RECORDS
            && i + h.size <= rest.len()
            && frame::verify(&rest[i..i + h.size])
        {
            return Ok(Some(from + i as u64));
        }
    }
    Ok(None)
}

fn read_header(
    file: &File,
    pos: u64,
    file_len: u64,
    buf: &mut [u8; frame::HEADER],
) -> Option<frame::Header> {
    if pos + frame::HEADER as u64 > file_len || file.read_exact_at(buf, pos).is_err() {
        return None;
    }
    let h = frame::header(buf)?;
    (pos + h.size as u64 <= file_len && h.kind == frame::KIND_RECORDS).then_some(h)
}

/// Writes a sealed segment's index durably (temporary file, sync, rename).
pub fn write_index(dir: &Path, seq: u64, entries: &[Entry]) -> io::Result<()> {
    let mut b = Vec::with_capacity(20 + entries.len() * IDX_ENTRY);
    b.extend_from_slice(IDX_MAGIC);
    b.extend_from_slice(&VERSION.to_le_bytes());
    b.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in entries {
        b.extend_from_slice(&e.shard.to_le_bytes());
        b.extend_from_slice(&e.count.to_le_bytes());
        b.extend_from_slice(&e.first_offset.to_le_bytes());
        b.extend_from_slice(&e.base_arrival.to_le_bytes());
        b.extend_from_slice(&e.last_arrival.to_le_bytes());
        b.extend_from_slice(&e.pos.to_le_bytes());
        b.extend_from_slice(&e.size.to_le_bytes());
        b.extend_from_slice(&u32::from(e.corrupt).to_le_bytes());
    }
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    write_atomic(dir, &idx_path(dir, seq), &b)
}

/// Reads an index file; `None` when missing or damaged.
pub fn read_index(dir: &Path, seq: u64) -> Option<Vec<Entry>> {
    let b = fs::read(idx_path(dir, seq)).ok()?;
    if b.len() < 20 || &b[0..8] != IDX_MAGIC {
        return None;
    }
    let (body, crc) = b.split_at(b.len() - 4);
    if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().ok()?) {
        return None;
    }
    let n = u32::from_le_bytes(body[12..16].try_into().ok()?) as usize;
    if u32::from_le_bytes(body[8..12].try_into().ok()?) != VERSION
        || body.len() != 16 + n * IDX_ENTRY
    {
        return None;
    }
    let mut out = Vec::with_capacity(n);
    for e in body[16..].chunks_exact(IDX_ENTRY) {
        let u32_at = |i: usize| u32::from_le_bytes(e[i..i + 4].try_into().unwrap_or_default());
        let u64_at = |i: usize| u64::from_le_bytes(e[i..i + 8].try_into().unwrap_or_default());
        out.push(Entry {
            shard: u32_at(0),
            count: u32_at(4),
            first_offset: u64_at(8),
            base_arrival: u64_at(16) as i64,
            last_arrival: u64_at(24) as i64,
            pos: u64_at(32),
            size: u32_at(40),
            corrupt: u32_at(44) & 1 == 1,
        });
    }
    Some(out)
}

/// Writes the offsets checkpoint durably.
pub fn write_offsets(dir: &Path, offsets: &[(u32, u64)]) -> io::Result<()> {
    let mut b = Vec::with_capacity(20 + offsets.len() * 12);
    b.extend_from_slice(OFF_MAGIC);
    b.extend_from_slice(&VERSION.to_le_bytes());
    b.extend_from_slice(&(offsets.len() as u32).to_le_bytes());
    for (shard, next) in offsets {
        b.extend_from_slice(&shard.to_le_bytes());
        b.extend_from_slice(&next.to_le_bytes());
    }
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    write_atomic(dir, &dir.join("offsets"), &b)
}

/// Reads the offsets checkpoint; empty when missing or damaged.
pub fn read_offsets(dir: &Path) -> Vec<(u32, u64)> {
    let Ok(b) = fs::read(dir.join("offsets")) else {
        return Vec::new();
    };
    if b.len() < 20 || &b[0..8] != OFF_MAGIC {
        return Vec::new();
    }
    let (body, crc) = b.split_at(b.len() - 4);
    if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().unwrap_or_default()) {
        return Vec::new();
    }
    let n = u32::from_le_bytes(body[12..16].try_into().unwrap_or_default()) as usize;
    if body.len() != 16 + n * 12 {
        return Vec::new();
    }
    body[16..]
        .chunks_exact(12)
        .map(|c| {
            (
                u32::from_le_bytes(c[0..4].try_into().unwrap_or_default()),
                u64::from_le_bytes(c[4..12].try_into().unwrap_or_default()),
            )
        })
        .collect()
}

fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    sync_dir(dir)
}

/// Segment sequence numbers present in `dir`, ascending.
pub fn list(dir: &Path) -> io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let name = e?.file_name();
        let name = name.to_string_lossy();
        if let Some(hex) = name.strip_suffix(".seg") {
            if let Ok(seq) = u64::from_str_radix(hex, 16) {
                out.push(seq);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}
