//! Segment files, their index files, and the per-log offsets checkpoint.
//!
//! ```text
//! <seq:016x>.seg   header (32 bytes) then frames (see frame.rs)
//!   0  8  magic "RIFFLSEG"
//!   8  4  format version, u32 LE (2; 1 is still read)
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
//!                    (bit 0: frame failed its checksum; bit 1: a hole
//!                    frame, see frame::KIND_HOLE)
//!  ..  4  CRC32C of everything before, u32 LE
//!
//! offsets          next offset of every shard when the newest segment was
//!                  sealed, so numbering survives retention deleting every
//!                  frame of a shard
//!   0  8  magic "RIFFLOFF", 4 version (1), 4 count n,
//!   16 12·n {shard u32, next_offset u64}, then CRC32C u32 of all before
//! ```
//! All integers little-endian.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use riffle_fs::{Fs, FsFile, OpenMode};

use super::frame;
use super::{SyncPoint, Syncer};

pub const SEG_MAGIC: &[u8; 8] = b"RIFFLSEG";
pub const IDX_MAGIC: &[u8; 8] = b"RIFFLIDX";
pub const OFF_MAGIC: &[u8; 8] = b"RIFFLOFF";
/// The segment format written: 2 marks frames written after a sync (see
/// `frame::FLAG_SYNCED_BEFORE`).
pub const VERSION: u32 = 2;
/// The oldest segment format read.
pub const MIN_VERSION: u32 = 1;
/// Index and offsets files are unchanged since version 1.
pub const INDEX_VERSION: u32 = 1;
pub const SEG_HEADER: u64 = 32;
const IDX_ENTRY: usize = 48;

/// A file that exists but cannot be read back (bad magic, version, size or
/// checksum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damaged;

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
    /// A hole frame (`frame::KIND_HOLE`): the records it names were lost and
    /// quarantined; readers skip them. `count` 0: nothing is known of them.
    pub hole: bool,
}

impl Entry {
    /// The offset after the frame's last record.
    pub fn end_offset(&self) -> u64 {
        self.first_offset + u64::from(self.count)
    }

    /// The byte position after the frame.
    pub fn end_pos(&self) -> u64 {
        self.pos + u64::from(self.size)
    }
}

pub fn seg_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016x}.seg"))
}

pub fn idx_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016x}.idx"))
}

/// A file of the log, as the engine holds it.
pub type Handle = Arc<dyn FsFile>;

/// Creates a segment with its header. Neither the file nor its directory
/// entry is synced here: the caller syncs the directory before anything
/// depends on the segment, and the first sync of its data (a cycle's, or
/// the one before sealing) covers the header.
pub fn create(fs: &dyn Fs, dir: &Path, log_id: u64, seq: u64) -> io::Result<Handle> {
    let path = seg_path(dir, seq);
    let f = fs.open(&path, OpenMode::CreateNew)?;
    let mut h = Vec::with_capacity(SEG_HEADER as usize);
    h.extend_from_slice(SEG_MAGIC);
    h.extend_from_slice(&VERSION.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&log_id.to_le_bytes());
    h.extend_from_slice(&seq.to_le_bytes());
    if let Err(e) = f.write_all_at(&h, 0) {
        let _ = fs.remove_file(&path);
        return Err(e);
    }
    Ok(f)
}

/// Opens a segment for reading and appending; checks its header and returns
/// its format version (`None` when the header is damaged or incomplete).
pub fn open(fs: &dyn Fs, dir: &Path, seq: u64) -> io::Result<(Handle, Option<u32>)> {
    let f = fs.open(&seg_path(dir, seq), OpenMode::Existing)?;
    let mut h = [0u8; SEG_HEADER as usize];
    let ok = f.read_exact_at(&mut h, 0).is_ok()
        && &h[0..8] == SEG_MAGIC
        && u64::from_le_bytes(h[24..32].try_into().unwrap_or_default()) == seq;
    let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    let known = (MIN_VERSION..=VERSION).contains(&version);
    Ok((f, (ok && known).then_some(version)))
}

/// The outcome of scanning a segment's frames.
pub struct Scan {
    pub entries: Vec<Entry>,
    /// Where valid data ends: frames from here on are a torn tail (or an
    /// incomplete final cycle).
    pub valid_len: u64,
}

/// Scans every frame of a segment, verifying checksums. A frame that fails
/// its checksum is:
/// - the end of the valid data when no valid frame follows (a torn tail);
/// - with `cut_unsynced` (the active segment, format 2), also the end of the
///   valid data when no valid frame *marked as written after a sync*
///   follows: the damage is in writes no sync had covered yet, which a power
///   loss may keep in any subset;
/// - otherwise mid-log corruption: kept, flagged.
pub fn scan(file: &dyn FsFile, file_len: u64, cut_unsynced: bool) -> io::Result<Scan> {
    let mut entries = Vec::new();
    let mut pos = SEG_HEADER;
    let mut hbuf = [0u8; frame::HEADER];
    while pos < file_len {
        let header = read_header(file, pos, file_len, &mut hbuf);
        let last_arrival = match header {
            Some(h) => {
                let mut buf = vec![0u8; h.size];
                file.read_exact_at(&mut buf, pos)?;
                let bytes = bytes::Bytes::from(buf);
                if !frame::verify(&bytes) {
                    None
                } else if h.kind == frame::KIND_HOLE {
                    Some(h.base_arrival)
                } else {
                    frame::records(&bytes)
                        .map(|recs| recs.last().map_or(h.base_arrival, |r| r.arrival_ms))
                }
            }
            None => None,
        };
        if let (Some(h), Some(last_arrival)) = (header, last_arrival) {
            let hole = h.kind == frame::KIND_HOLE;
            let unattributed = hole && h.flags & frame::HOLE_UNATTRIBUTED != 0;
            entries.push(Entry {
                shard: if unattributed { 0 } else { h.shard },
                count: if unattributed { 0 } else { h.count },
                first_offset: if unattributed { 0 } else { h.first_offset },
                base_arrival: h.base_arrival,
                last_arrival,
                pos,
                size: h.size as u32,
                corrupt: false,
                hole,
            });
            pos += h.size as u64;
            continue;
        }
        // Damage: what follows decides between a cut and corruption.
        let after = later_frames(file, pos + 1, file_len)?;
        let Some(next) = after.first_valid else {
            break;
        };
        if cut_unsynced && after.first_synced_before.is_none() {
            break;
        }
        let raw = lenient_header(file, pos);
        entries.push(Entry {
            pos,
            size: (next - pos) as u32,
            corrupt: true,
            ..raw
        });
        pos = next;
    }
    Ok(Scan {
        entries,
        valid_len: pos.min(file_len),
    })
}

/// The fields a damaged frame's header claims (untrusted: recovery only uses
/// them when they continue their shard).
pub(crate) fn lenient_header(file: &dyn FsFile, pos: u64) -> Entry {
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
        hole: false,
    }
}

/// Valid frames found after damage.
struct Later {
    /// The first position at or after `from` where a frame's checksum holds.
    first_valid: Option<u64>,
    /// The first such frame that is marked [`frame::FLAG_SYNCED_BEFORE`].
    first_synced_before: Option<u64>,
}

/// Looks for valid frames at any byte position from `from` on (skipping
/// over the ones it finds). Only used once damage was found, so it may read
/// the rest of the file.
fn later_frames(file: &dyn FsFile, from: u64, file_len: u64) -> io::Result<Later> {
    let mut out = Later {
        first_valid: None,
        first_synced_before: None,
    };
    if from >= file_len {
        return Ok(out);
    }
    let mut rest = vec![0u8; (file_len - from) as usize];
    file.read_exact_at(&mut rest, from)?;
    let mut i = 0;
    while i < rest.len() {
        let Some(h) = frame::header(&rest[i..]) else {
            i += 1;
            continue;
        };
        if frame::known_kind(h.kind)
            && i + h.size <= rest.len()
            && frame::verify(&rest[i..i + h.size])
        {
            let at = from + i as u64;
            out.first_valid.get_or_insert(at);
            if h.flags & frame::FLAG_SYNCED_BEFORE != 0 {
                out.first_synced_before = Some(at);
                break;
            }
            i += h.size;
        } else {
            i += 1;
        }
    }
    Ok(out)
}

fn read_header(
    file: &dyn FsFile,
    pos: u64,
    file_len: u64,
    buf: &mut [u8; frame::HEADER],
) -> Option<frame::Header> {
    if pos + frame::HEADER as u64 > file_len || file.read_exact_at(buf, pos).is_err() {
        return None;
    }
    let h = frame::header(buf)?;
    (pos + h.size as u64 <= file_len && frame::known_kind(h.kind)).then_some(h)
}

/// Writes a sealed segment's index (temporary file, sync, rename). The
/// rename is durable once the caller syncs the directory.
pub fn write_index(
    fs: &dyn Fs,
    dir: &Path,
    seq: u64,
    entries: &[Entry],
    syncer: &Syncer,
) -> io::Result<()> {
    let mut b = Vec::with_capacity(20 + entries.len() * IDX_ENTRY);
    b.extend_from_slice(IDX_MAGIC);
    b.extend_from_slice(&INDEX_VERSION.to_le_bytes());
    b.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in entries {
        b.extend_from_slice(&e.shard.to_le_bytes());
        b.extend_from_slice(&e.count.to_le_bytes());
        b.extend_from_slice(&e.first_offset.to_le_bytes());
        b.extend_from_slice(&e.base_arrival.to_le_bytes());
        b.extend_from_slice(&e.last_arrival.to_le_bytes());
        b.extend_from_slice(&e.pos.to_le_bytes());
        b.extend_from_slice(&e.size.to_le_bytes());
        let flags = u32::from(e.corrupt) | u32::from(e.hole) << 1;
        b.extend_from_slice(&flags.to_le_bytes());
    }
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    write_atomic(fs, &idx_path(dir, seq), &b, syncer, SyncPoint::IndexData)
}

/// Reads an index file; `Err(Damaged)` when it exists but is damaged.
pub fn read_index(fs: &dyn Fs, dir: &Path, seq: u64) -> Result<Option<Vec<Entry>>, Damaged> {
    let b = match fs.read(&idx_path(dir, seq)) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(_) => return Err(Damaged),
    };
    parse_index(&b).map(Some).ok_or(Damaged)
}

fn parse_index(b: &[u8]) -> Option<Vec<Entry>> {
    if b.len() < 20 || &b[0..8] != IDX_MAGIC {
        return None;
    }
    let (body, crc) = b.split_at(b.len() - 4);
    if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().ok()?) {
        return None;
    }
    let n = u32::from_le_bytes(body[12..16].try_into().ok()?) as usize;
    if u32::from_le_bytes(body[8..12].try_into().ok()?) != INDEX_VERSION
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
            hole: u32_at(44) & 2 == 2,
        });
    }
    Some(out)
}

/// Writes the offsets checkpoint (like an index: durable once the caller
/// syncs the directory).
pub fn write_offsets(
    fs: &dyn Fs,
    dir: &Path,
    offsets: &[(u32, u64)],
    syncer: &Syncer,
) -> io::Result<()> {
    let mut b = Vec::with_capacity(20 + offsets.len() * 12);
    b.extend_from_slice(OFF_MAGIC);
    b.extend_from_slice(&INDEX_VERSION.to_le_bytes());
    b.extend_from_slice(&(offsets.len() as u32).to_le_bytes());
    for (shard, next) in offsets {
        b.extend_from_slice(&shard.to_le_bytes());
        b.extend_from_slice(&next.to_le_bytes());
    }
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    write_atomic(
        fs,
        &dir.join("offsets"),
        &b,
        syncer,
        SyncPoint::CheckpointData,
    )
}

/// Reads the offsets checkpoint: empty when missing, `Err(Damaged)` when it
/// exists but is damaged.
pub fn read_offsets(fs: &dyn Fs, dir: &Path) -> Result<Vec<(u32, u64)>, Damaged> {
    let b = match fs.read(&dir.join("offsets")) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(_) => return Err(Damaged),
    };
    if b.len() < 20 || &b[0..8] != OFF_MAGIC {
        return Err(Damaged);
    }
    let (body, crc) = b.split_at(b.len() - 4);
    if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().unwrap_or_default()) {
        return Err(Damaged);
    }
    let n = u32::from_le_bytes(body[12..16].try_into().unwrap_or_default()) as usize;
    if body.len() != 16 + n * 12 {
        return Err(Damaged);
    }
    Ok(body[16..]
        .chunks_exact(12)
        .map(|c| {
            (
                u32::from_le_bytes(c[0..4].try_into().unwrap_or_default()),
                u64::from_le_bytes(c[4..12].try_into().unwrap_or_default()),
            )
        })
        .collect())
}

/// Writes `path` through a temporary file: write, sync (`point`), rename.
fn write_atomic(
    fs: &dyn Fs,
    path: &Path,
    bytes: &[u8],
    syncer: &Syncer,
    point: SyncPoint,
) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let f = fs.open(&tmp, OpenMode::Truncate)?;
        f.write_all_at(bytes, 0)?;
        syncer.sync_all(point, &*f)?;
    }
    fs.rename(&tmp, path)
}

/// Segment sequence numbers present in `dir`, ascending.
pub fn list(fs: &dyn Fs, dir: &Path) -> io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for name in fs.read_dir(dir)? {
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
