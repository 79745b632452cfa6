//! Offline checking and repair of stream logs (`riffle fsck`, `riffle
//! repair`). The server must not be running: nothing here coordinates with
//! a live [`super::DiskLog`].
//!
//! [`check_log`] reads a log the way recovery would and reports, per
//! segment, the frames checked, damaged byte ranges (with the shard and
//! offsets they held when the index file or a believable frame header says
//! so), a torn tail recovery would cut, and missing, damaged or mismatched
//! index files. It writes nothing.
//!
//! [`repair_log`] does what the check proposes: rebuilds index files, cuts a
//! torn tail (as recovery would), and with a quarantine directory copies
//! each damaged range there (`<seq>-<pos>.bin` and a `<seq>-<pos>.json`
//! note) and overwrites it in place with a hole frame of the same size
//! ([`frame::KIND_HOLE`]), so every other frame keeps its position and every
//! record its offset (and so its sequence number). Each step is durable
//! before the next relies on it: the quarantined copy and note are synced
//! (and their directory) before the segment is touched, the segment is
//! synced before its index is rewritten (temporary file, sync, rename,
//! directory sync). Repair is idempotent: a repaired log checks clean, and
//! a clean log is left byte for byte as it was.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use riffle_fs::{Fs, FsFile, OpenMode};

use super::segment::{self, Entry};
use super::{frame, plausible, Syncer};
use crate::LogId;

/// What was lost in a damaged range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lost {
    pub shard: u32,
    pub first_offset: u64,
    pub count: u32,
    pub base_arrival: i64,
}

impl Lost {
    /// The offsets lost, `first..=last`.
    pub fn last_offset(&self) -> u64 {
        self.first_offset + u64::from(self.count) - 1
    }
}

/// Where the shard and offsets of a damaged range come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribution {
    /// The segment's index file (written when the data was intact): exact.
    Index,
    /// The damaged frame's own header, believed because it continues its
    /// shard (the rule recovery uses).
    Header,
    /// Nothing believable: the records' shard and offsets are unknown.
    Unknown,
}

/// A damaged byte range of a segment: never served, skipped by readers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub start: u64,
    pub end: u64,
    pub lost: Option<Lost>,
    pub attribution: Attribution,
}

/// The state of a segment's index file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexState {
    /// The active segment: it has none until sealed.
    Active,
    Ok,
    Missing,
    /// It exists but cannot be read (magic, version, size, checksum).
    Damaged,
    /// It reads, but does not describe the segment's frames.
    Mismatched,
}

/// One segment, checked.
#[derive(Debug, Clone)]
pub struct SegmentReport {
    pub seq: u64,
    pub path: PathBuf,
    pub bytes: u64,
    pub sealed: bool,
    /// A trailing segment without a complete header: its creation was cut
    /// short, it holds nothing, recovery removes it.
    pub incomplete: bool,
    /// The header of a segment that is not the last is damaged: its frames
    /// cannot be trusted (not repairable here).
    pub header_damaged: bool,
    /// Records frames whose checksum holds.
    pub frames: u64,
    pub records: u64,
    /// Hole frames (ranges quarantined earlier).
    pub holes: u64,
    pub damaged: Vec<Damage>,
    /// Active segment only: bytes recovery cuts (a torn tail or an
    /// unsynced final cycle), `[start, end)`. Not damage: nothing
    /// acknowledged and synced is there.
    pub torn_tail: Option<(u64, u64)>,
    pub index: IndexState,
    /// The frames as they should be indexed.
    entries: Vec<Entry>,
}

/// One log (stream incarnation), checked.
#[derive(Debug, Clone)]
pub struct LogReport {
    pub dir: PathBuf,
    pub log_id: Option<LogId>,
    /// The offsets checkpoint exists but is damaged.
    pub checkpoint_damaged: bool,
    pub segments: Vec<SegmentReport>,
}

impl LogReport {
    /// No damage, no index to rebuild, no damaged checkpoint. (Torn tails
    /// and incomplete trailing segments are left to recovery and do not
    /// count.)
    pub fn is_clean(&self) -> bool {
        !self.checkpoint_damaged
            && self.segments.iter().all(|s| {
                !s.header_damaged
                    && s.damaged.is_empty()
                    && matches!(s.index, IndexState::Ok | IndexState::Active)
            })
    }

    pub fn damaged(&self) -> impl Iterator<Item = (&SegmentReport, &Damage)> {
        self.segments
            .iter()
            .flat_map(|s| s.damaged.iter().map(move |d| (s, d)))
    }
}

/// The log directories under an engine root (`<data-dir>/streams`), by id.
pub fn list_logs(fs: &dyn Fs, root: &Path) -> io::Result<Vec<(LogId, PathBuf)>> {
    let mut out = Vec::new();
    for name in fs.read_dir(root)? {
        let name = name.to_string_lossy();
        if name.len() == 16 {
            if let Ok(id) = u64::from_str_radix(&name, 16) {
                out.push((id, root.join(&*name)));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Checks one log directory, writing nothing.
pub fn check_log(fs: &dyn Fs, dir: &Path) -> io::Result<LogReport> {
    let log_id = dir
        .file_name()
        .and_then(|n| u64::from_str_radix(&n.to_string_lossy(), 16).ok());
    let seqs = segment::list(fs, dir)?;
    let (checkpoint, checkpoint_damaged) = match segment::read_offsets(fs, dir) {
        Ok(c) => (c, false),
        Err(segment::Damaged) => (Vec::new(), true),
    };
    let mut expected: HashMap<u32, u64> = HashMap::new();
    for (shard, next) in checkpoint {
        let e = expected.entry(shard).or_insert(1);
        *e = (*e).max(next);
    }
    // Trailing segments without a complete header are removed by recovery.
    let mut n = seqs.len();
    while n > 0 && segment::open(fs, dir, seqs[n - 1])?.1.is_none() {
        n -= 1;
    }
    let last_sealed = n > 0 && matches!(segment::read_index(fs, dir, seqs[n - 1]), Ok(Some(_)));
    let mut segments = Vec::new();
    for (i, &seq) in seqs.iter().enumerate() {
        if i >= n {
            let path = segment::seg_path(dir, seq);
            let bytes = fs.open(&path, OpenMode::Existing)?.len()?;
            segments.push(SegmentReport {
                seq,
                path,
                bytes,
                sealed: false,
                incomplete: true,
                header_damaged: false,
                frames: 0,
                records: 0,
                holes: 0,
                damaged: Vec::new(),
                torn_tail: None,
                index: IndexState::Active,
                entries: Vec::new(),
            });
            continue;
        }
        let active = i + 1 == n && !last_sealed;
        segments.push(check_segment(fs, dir, seq, active, &mut expected)?);
    }
    Ok(LogReport {
        dir: dir.to_path_buf(),
        log_id,
        checkpoint_damaged,
        segments,
    })
}

/// Checks one segment; `expected` holds each shard's next offset so far
/// (recovery's rule for believing a damaged header) and is advanced.
fn check_segment(
    fs: &dyn Fs,
    dir: &Path,
    seq: u64,
    active: bool,
    expected: &mut HashMap<u32, u64>,
) -> io::Result<SegmentReport> {
    let path = segment::seg_path(dir, seq);
    let (file, version) = segment::open(fs, dir, seq)?;
    let bytes = file.len()?;
    let mut report = SegmentReport {
        seq,
        path,
        bytes,
        sealed: !active,
        incomplete: false,
        header_damaged: false,
        frames: 0,
        records: 0,
        holes: 0,
        damaged: Vec::new(),
        torn_tail: None,
        index: IndexState::Active,
        entries: Vec::new(),
    };
    let Some(version) = version else {
        report.header_damaged = true;
        report.damaged.push(Damage {
            start: 0,
            end: bytes,
            lost: None,
            attribution: Attribution::Unknown,
        });
        return Ok(report);
    };
    if !active {
        match segment::read_index(fs, dir, seq) {
            Ok(Some(ix)) => {
                // The index was written from memory when the segment was
                // sealed (its data synced): when it still describes the whole
                // file, it is the truth, and each frame is checked against it.
                if tiles(&ix, bytes) && by_index(&*file, &ix, &mut report, expected)? {
                    return Ok(report);
                }
                report.index = IndexState::Mismatched;
            }
            Ok(None) => report.index = IndexState::Missing,
            Err(segment::Damaged) => report.index = IndexState::Damaged,
        }
    }
    by_scan(&*file, bytes, active && version >= 2, &mut report, expected)?;
    Ok(report)
}

fn advance(expected: &mut HashMap<u32, u64>, e: &Entry) {
    if e.count > 0 {
        let x = expected.entry(e.shard).or_insert(1);
        *x = (*x).max(e.end_offset());
    }
}

/// Whether index entries cover a segment's frames exactly, back to back.
fn tiles(ix: &[Entry], bytes: u64) -> bool {
    let mut pos = segment::SEG_HEADER;
    for e in ix {
        if e.pos != pos || e.size == 0 {
            return false;
        }
        pos = e.end_pos();
    }
    pos == bytes
}

/// A hole frame's entry, as a scan of it finds it.
fn hole_entry(pos: u64, size: u64, lost: Option<Lost>) -> Entry {
    let l = lost.unwrap_or(Lost {
        shard: 0,
        first_offset: 0,
        count: 0,
        base_arrival: 0,
    });
    Entry {
        shard: l.shard,
        count: l.count,
        first_offset: l.first_offset,
        base_arrival: l.base_arrival,
        last_arrival: l.base_arrival,
        pos,
        size: size as u32,
        corrupt: false,
        hole: true,
    }
}

/// Checks a sealed segment frame by frame against its index. Returns false
/// (reporting nothing) when an intact frame contradicts the index: then
/// the index is wrong, not the data.
fn by_index(
    file: &dyn FsFile,
    ix: &[Entry],
    report: &mut SegmentReport,
    expected: &mut HashMap<u32, u64>,
) -> io::Result<bool> {
    let mut out = SegmentReport {
        index: IndexState::Ok,
        entries: Vec::with_capacity(ix.len()),
        ..report.clone()
    };
    for x in ix {
        let mut buf = vec![0u8; x.size as usize];
        file.read_exact_at(&mut buf, x.pos)?;
        let intact = frame::verify(&buf);
        match frame::header(&buf).filter(|_| intact) {
            Some(h) if h.kind == frame::KIND_RECORDS => {
                let same = !x.hole
                    && (h.shard, h.first_offset, h.count, h.base_arrival)
                        == (x.shard, x.first_offset, x.count, x.base_arrival);
                if !same || frame::records(&bytes::Bytes::from(buf)).is_none() {
                    return Ok(false);
                }
                let mut e = *x;
                e.corrupt = false;
                if x.corrupt {
                    out.index = IndexState::Mismatched;
                }
                out.frames += 1;
                out.records += u64::from(e.count);
                advance(expected, &e);
                out.entries.push(e);
            }
            Some(h) if h.kind == frame::KIND_HOLE => {
                let lost = (h.flags & frame::HOLE_UNATTRIBUTED == 0).then_some(Lost {
                    shard: h.shard,
                    first_offset: h.first_offset,
                    count: h.count,
                    base_arrival: h.base_arrival,
                });
                let e = hole_entry(x.pos, u64::from(x.size), lost);
                if e != *x {
                    // A repair stopped before it rewrote the index.
                    out.index = IndexState::Mismatched;
                }
                out.holes += 1;
                advance(expected, &e);
                out.entries.push(e);
            }
            _ => {
                // Damage. The index knows what was there, unless it was
                // itself rebuilt by a scan of the damage (flagged): then
                // only a believable header names it.
                let mut e = *x;
                let believed = e.count > 0
                    && !e.hole
                    && (!e.corrupt || plausible(expected.get(&e.shard).copied().unwrap_or(1), &e));
                if !believed {
                    e.count = 0;
                    e.first_offset = 0;
                }
                e.corrupt = true;
                e.hole = false;
                out.damaged.push(Damage {
                    start: e.pos,
                    end: e.end_pos(),
                    lost: believed.then_some(Lost {
                        shard: e.shard,
                        first_offset: e.first_offset,
                        count: e.count,
                        base_arrival: e.base_arrival,
                    }),
                    attribution: match (believed, x.corrupt) {
                        (false, _) => Attribution::Unknown,
                        (true, false) => Attribution::Index,
                        (true, true) => Attribution::Header,
                    },
                });
                // (The index still describes the frame: the data is what
                // is wrong, so no rewrite is called for.)
                advance(expected, &e);
                out.entries.push(e);
            }
        }
    }
    *report = out;
    Ok(true)
}

/// Checks a segment by scanning it (the active one, or a sealed one whose
/// index cannot be used): damaged headers are believed by recovery's rule.
fn by_scan(
    file: &dyn FsFile,
    bytes: u64,
    cut_unsynced: bool,
    report: &mut SegmentReport,
    expected: &mut HashMap<u32, u64>,
) -> io::Result<()> {
    let scan = segment::scan(file, bytes, cut_unsynced)?;
    let mut found = scan.entries;
    if scan.valid_len < bytes {
        if !report.sealed {
            report.torn_tail = Some((scan.valid_len, bytes));
        } else {
            // A sealed segment was synced whole before sealing: a bad end
            // is damage, not a torn write.
            found.push(Entry {
                pos: scan.valid_len,
                size: (bytes - scan.valid_len) as u32,
                ..segment::lenient_header(file, scan.valid_len)
            });
        }
    }
    for mut e in found {
        if !e.corrupt {
            if e.hole {
                report.holes += 1;
            } else {
                report.frames += 1;
                report.records += u64::from(e.count);
            }
            advance(expected, &e);
            report.entries.push(e);
            continue;
        }
        let believed = plausible(expected.get(&e.shard).copied().unwrap_or(1), &e);
        if !believed {
            e.count = 0;
            e.first_offset = 0;
        }
        report.damaged.push(Damage {
            start: e.pos,
            end: e.end_pos(),
            lost: believed.then_some(Lost {
                shard: e.shard,
                first_offset: e.first_offset,
                count: e.count,
                base_arrival: e.base_arrival,
            }),
            attribution: if believed {
                Attribution::Header
            } else {
                Attribution::Unknown
            },
        });
        advance(expected, &e);
        report.entries.push(e);
    }
    Ok(())
}

/// What [`repair_log`] may do.
#[derive(Debug, Clone, Default)]
pub struct RepairOptions {
    /// Move damaged ranges into this directory (`<data-dir>/quarantine/<log
    /// id>`) and put hole frames in their place. Without it only index files
    /// are rebuilt and torn tails cut.
    pub quarantine: Option<PathBuf>,
    /// Named in the quarantine notes.
    pub stream: Option<String>,
    /// The time written in the notes, epoch ms.
    pub now_ms: i64,
}

/// What [`repair_log`] did.
#[derive(Debug, Clone, Default)]
pub struct RepairOutcome {
    /// One line per change made.
    pub actions: Vec<String>,
    /// Problems left: damage without `quarantine`, or that cannot be fixed.
    pub left: Vec<String>,
}

/// Repairs one log directory (see the module documentation). Only changes
/// what [`check_log`] finds wrong.
pub fn repair_log(fs: &dyn Fs, dir: &Path, opts: &RepairOptions) -> io::Result<RepairOutcome> {
    let report = check_log(fs, dir)?;
    let mut out = RepairOutcome::default();
    let syncer = Syncer::default();
    let mut dir_dirty = false;
    for seg in &report.segments {
        let name = format!("{:016x}.seg", seg.seq);
        if seg.incomplete {
            continue;
        }
        if seg.header_damaged {
            out.left.push(format!(
                "{name}: the segment header is damaged; its frames cannot be trusted (not repaired)"
            ));
            continue;
        }
        let file = fs.open(&seg.path, OpenMode::Existing)?;
        let mut entries = seg.entries.clone();
        let mut rewritten = false;
        if !seg.damaged.is_empty() {
            match &opts.quarantine {
                None => out.left.push(format!(
                    "{name}: {} damaged range(s) left in place (repair with --quarantine moves them out)",
                    seg.damaged.len()
                )),
                Some(qdir) => {
                    for d in &seg.damaged {
                        let size = (d.end - d.start) as usize;
                        if !(frame::HEADER..=frame::MAX_FRAME).contains(&size) {
                            out.left.push(format!(
                                "{name}: damaged bytes {}..{} do not fit a hole frame (not repaired)",
                                d.start, d.end
                            ));
                            continue;
                        }
                        quarantine(fs, qdir, &report, seg, d, opts)?;
                        let mut hole = Vec::with_capacity(size);
                        frame::encode_hole(
                            &mut hole,
                            size,
                            d.lost
                                .map(|l| (l.shard, l.first_offset, l.count, l.base_arrival)),
                        );
                        file.write_all_at(&hole, d.start)?;
                        rewritten = true;
                        if let Some(e) = entries.iter_mut().find(|e| e.pos == d.start) {
                            *e = hole_entry(d.start, size as u64, d.lost);
                        }
                        out.actions.push(format!(
                            "{name}: bytes {}..{} quarantined and replaced by a hole frame",
                            d.start, d.end
                        ));
                    }
                    if rewritten {
                        file.sync_data()?;
                    }
                }
            }
        }
        if let Some((start, end)) = seg.torn_tail {
            file.set_len(start)?;
            file.sync_data()?;
            out.actions.push(format!(
                "{name}: cut a torn tail, bytes {start}..{end} (as recovery would)"
            ));
        }
        if seg.sealed && (rewritten || seg.index != IndexState::Ok) {
            segment::write_index(fs, dir, seg.seq, &entries, &syncer)?;
            dir_dirty = true;
            out.actions.push(format!(
                "{:016x}.idx: rewritten ({} entries)",
                seg.seq,
                entries.len()
            ));
        }
    }
    if report.checkpoint_damaged {
        // Rebuilt from the sealed segments' frames: a shard's numbering
        // only ever moves forward.
        let mut next: HashMap<u32, u64> = HashMap::new();
        for seg in report.segments.iter().filter(|s| s.sealed) {
            for e in seg.entries.iter().filter(|e| e.count > 0) {
                let x = next.entry(e.shard).or_insert(1);
                *x = (*x).max(e.end_offset());
            }
        }
        let mut offsets: Vec<(u32, u64)> = next.into_iter().collect();
        offsets.sort_unstable();
        segment::write_offsets(fs, dir, &offsets, &syncer)?;
        dir_dirty = true;
        out.actions
            .push("offsets: the damaged checkpoint was rewritten".into());
    }
    if dir_dirty {
        fs.sync_dir(dir)?;
    }
    Ok(out)
}

/// Copies a damaged range and a note of what it was into `qdir`, durably,
/// unless an earlier run did (the first copy is the original bytes).
fn quarantine(
    fs: &dyn Fs,
    qdir: &Path,
    report: &LogReport,
    seg: &SegmentReport,
    d: &Damage,
    opts: &RepairOptions,
) -> io::Result<()> {
    Syncer::default().ensure_dir(fs, qdir, true)?;
    let stem = format!("{:016x}-{}", seg.seq, d.start);
    let bin = qdir.join(format!("{stem}.bin"));
    let note = qdir.join(format!("{stem}.json"));
    if fs.exists(&bin) && fs.exists(&note) {
        return Ok(());
    }
    let file = fs.open(&seg.path, OpenMode::Existing)?;
    let mut bytes = vec![0u8; (d.end - d.start) as usize];
    file.read_exact_at(&mut bytes, d.start)?;
    if !fs.exists(&bin) {
        write_synced(fs, &bin, &bytes)?;
    }
    write_synced(fs, &note, note_json(report, seg, d, opts).as_bytes())?;
    fs.sync_dir(qdir)
}

fn write_synced(fs: &dyn Fs, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let f = fs.open(&tmp, OpenMode::Truncate)?;
        f.write_all_at(bytes, 0)?;
        f.sync_all()?;
    }
    fs.rename(&tmp, path)
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn note_json(report: &LogReport, seg: &SegmentReport, d: &Damage, opts: &RepairOptions) -> String {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "null".into());
    let lost = d.lost;
    format!(
        "{{\n  \"log\": {},\n  \"stream\": {},\n  \"segment\": {},\n  \"byte_start\": {},\n  \"byte_end\": {},\n  \"shard\": {},\n  \"shard_id\": {},\n  \"first_offset\": {},\n  \"count\": {},\n  \"attribution\": {},\n  \"replaced_by\": \"a hole frame (kind 2) of the same size\",\n  \"quarantined_at_ms\": {}\n}}\n",
        opt(report.log_id.map(|id| json_str(&format!("{id:016x}")))),
        opt(opts.stream.as_deref().map(json_str)),
        json_str(&format!("{:016x}.seg", seg.seq)),
        d.start,
        d.end,
        opt(lost.map(|l| l.shard.to_string())),
        opt(lost.map(|l| json_str(&format!("shardId-{:012}", l.shard)))),
        opt(lost.map(|l| l.first_offset.to_string())),
        opt(lost.map(|l| l.count.to_string())),
        json_str(match d.attribution {
            Attribution::Index => "index",
            Attribution::Header => "frame header",
            Attribution::Unknown => "unknown",
        }),
        opts.now_ms,
    )
}
