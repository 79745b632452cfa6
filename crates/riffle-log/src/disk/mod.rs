//! The local-disk engine: one directory per stream log, segment files of
//! checksummed frames, group commit, recovery. `design.md` in this crate
//! draws the formats byte by byte.
//!
//! Write path: [`StreamLog::append`] assigns offsets under the log's lock and
//! adds the records to the *pending cycle*. One writer task per log takes
//! the pending cycle, encodes one frame per shard, writes it with a single
//! `write` and, in `fsync` mode, one `fdatasync`, then publishes the frames
//! to readers and resolves every append of the cycle. While it syncs, the
//! next cycle forms (group commit). A failed cycle is truncated away, its
//! appends fail, and their offsets are abandoned (never reused).
//!
//! Read path: each shard keeps an index of its durable frames; reads `pread`
//! the frames they need and verify their checksums. A frame that fails is
//! reported and returned as [`LogError::Corrupt`], never as data.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use crate::{
    Appended, LogEngine, LogError, LogId, NewRecord, ReadBatch, ReadLimits, StoredRecord, StreamLog,
};

pub mod frame;
pub mod segment;

use segment::Entry;

pub use crate::Durability;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct DiskConfig {
    /// The mode of logs that were not given one.
    pub durability: Durability,
    /// A segment is sealed and a new one started past this size.
    pub segment_bytes: u64,
    /// How often logs in `interval` mode are synced.
    pub sync_interval: Duration,
}

impl Default for DiskConfig {
    fn default() -> Self {
        DiskConfig {
            durability: Durability::Fsync,
            segment_bytes: 128 * 1024 * 1024,
            sync_interval: Duration::from_millis(100),
        }
    }
}

/// Counters the server exports as metrics.
#[derive(Debug, Default)]
pub struct DiskStats {
    pub corrupt_frames: AtomicU64,
    pub torn_bytes_truncated: AtomicU64,
    pub syncs: AtomicU64,
    pub failed_cycles: AtomicU64,
}

/// Stream logs under one directory.
pub struct DiskEngine {
    root: PathBuf,
    cfg: DiskConfig,
    logs: Mutex<HashMap<LogId, Arc<DiskLog>>>,
    pub stats: Arc<DiskStats>,
}

impl DiskEngine {
    /// Opens (creating) the engine's directory. A background thread syncs
    /// logs in interval mode that have unsynced writes.
    pub fn open(root: impl Into<PathBuf>, cfg: DiskConfig) -> io::Result<Arc<Self>> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        let engine = Arc::new(DiskEngine {
            root,
            cfg,
            logs: Mutex::new(HashMap::new()),
            stats: Arc::default(),
        });
        {
            let every = engine.cfg.sync_interval;
            let weak = Arc::downgrade(&engine);
            std::thread::Builder::new()
                .name("riffle-flush".into())
                .spawn(move || loop {
                    std::thread::sleep(every);
                    let Some(engine) = weak.upgrade() else { return };
                    let logs: Vec<_> = lock(&engine.logs).values().cloned().collect();
                    for log in logs {
                        log.flush();
                    }
                })?;
        }
        Ok(engine)
    }

    fn dir(&self, id: LogId) -> PathBuf {
        self.root.join(format!("{id:016x}"))
    }
}

impl LogEngine for DiskEngine {
    fn open(&self, id: LogId) -> Result<Arc<dyn StreamLog>, LogError> {
        let mut logs = lock(&self.logs);
        if let Some(l) = logs.get(&id) {
            return Ok(l.clone());
        }
        let log = DiskLog::open(self.dir(id), id, self.cfg.clone(), self.stats.clone())
            .map_err(io_err)?;
        logs.insert(id, log.clone());
        Ok(log)
    }

    fn remove(&self, id: LogId) -> Result<(), LogError> {
        if let Some(log) = lock(&self.logs).remove(&id) {
            lock(&log.inner).removed = true;
        }
        match std::fs::remove_dir_all(self.dir(id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(e)),
        }
    }

    fn name(&self) -> &'static str {
        "disk"
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn io_err(e: io::Error) -> LogError {
    match e.raw_os_error() {
        Some(28) | Some(122) => LogError::NoSpace(e.to_string()),
        _ => LogError::Io(e.to_string()),
    }
}

/// A durable frame of one shard, as readers find it.
#[derive(Debug, Clone, Copy)]
struct FrameRef {
    seg: u64,
    e: Entry,
}

/// What one segment holds of one shard.
#[derive(Debug, Clone, Copy)]
struct SegSpan {
    seg: u64,
    end_offset: u64,
    max_arrival: i64,
}

/// A shard's index: a span per segment, and the frames of the active
/// segment. Frames of sealed segments are read from their index files when
/// a read needs them (a few are cached), so memory does not grow with the
/// data kept.
struct ShardState {
    next_offset: u64,
    settled: u64,
    spans: VecDeque<SegSpan>,
    active: Vec<Entry>,
}

impl Default for ShardState {
    fn default() -> Self {
        ShardState {
            next_offset: 1,
            settled: 1,
            spans: VecDeque::new(),
            active: Vec::new(),
        }
    }
}

impl ShardState {
    fn note(&mut self, seg: u64, e: &Entry) {
        let end = e.first_offset + u64::from(e.count);
        match self.spans.back_mut() {
            Some(span) if span.seg == seg => {
                span.end_offset = span.end_offset.max(end);
                span.max_arrival = span.max_arrival.max(e.last_arrival);
            }
            _ => self.spans.push_back(SegSpan {
                seg,
                end_offset: end,
                max_arrival: e.last_arrival,
            }),
        }
    }
}

/// Sealed segments' frames by shard, as read from their index files.
type SealedIndex = Arc<HashMap<u32, Vec<Entry>>>;

/// Sealed indexes kept in memory at once.
const SEALED_CACHE: usize = 16;

struct Segment {
    file: Arc<File>,
    /// Bytes written and published.
    len: u64,
    last_arrival: i64,
}

type CycleResult = Option<Result<(), LogError>>;

struct PendingFrame {
    shard: u32,
    first_offset: u64,
    bytes: usize,
    records: Vec<(i64, String, Bytes)>,
}

/// A frame stops growing here, far below what a reader accepts
/// ([`frame::MAX_FRAME`]); a cycle may hold several frames of one shard.
const FRAME_TARGET: usize = 16 * 1024 * 1024;

struct Cycle {
    frames: Vec<PendingFrame>,
    /// The index in `frames` of each shard's frame still taking records.
    open: HashMap<u32, usize>,
    done: watch::Sender<CycleResult>,
}

impl Cycle {
    fn new() -> Self {
        Cycle {
            frames: Vec::new(),
            open: HashMap::new(),
            done: watch::channel(None).0,
        }
    }

    fn add(&mut self, shard: u32, offset: u64, arrival: i64, key: String, data: Bytes) {
        let size = key.len() + data.len() + 16;
        let i = match self.open.get(&shard) {
            Some(&i) if self.frames[i].bytes + size <= FRAME_TARGET => i,
            _ => {
                self.frames.push(PendingFrame {
                    shard,
                    first_offset: offset,
                    bytes: 0,
                    records: Vec::new(),
                });
                self.open.insert(shard, self.frames.len() - 1);
                self.frames.len() - 1
            }
        };
        let f = &mut self.frames[i];
        f.bytes += size;
        f.records.push((arrival, key, data));
    }
}

struct Inner {
    shards: HashMap<u32, ShardState>,
    segments: BTreeMap<u64, Segment>,
    active: u64,
    pending: Cycle,
    writing: bool,
    dirty: bool,
    last_arrival: i64,
    removed: bool,
    published: u64,
}

/// One stream's log on disk.
pub struct DiskLog {
    me: std::sync::Weak<DiskLog>,
    /// The durability mode: 0 fsync, 1 interval, 2 none.
    mode: std::sync::atomic::AtomicU8,
    dir: PathBuf,
    id: LogId,
    cfg: DiskConfig,
    stats: Arc<DiskStats>,
    inner: Mutex<Inner>,
    tip: watch::Sender<u64>,
    sealed: Mutex<BTreeMap<u64, SealedIndex>>,
}

impl DiskLog {
    /// Opens or creates the log in `dir`, recovering what is there.
    fn open(
        dir: PathBuf,
        id: LogId,
        cfg: DiskConfig,
        stats: Arc<DiskStats>,
    ) -> io::Result<Arc<DiskLog>> {
        let inner = Self::recover(&dir, id, &stats)?;
        Ok(Arc::new_cyclic(|me| DiskLog {
            me: me.clone(),
            mode: std::sync::atomic::AtomicU8::new(mode_byte(cfg.durability)),
            dir,
            id,
            cfg,
            stats,
            inner: Mutex::new(inner),
            tip: watch::channel(0).0,
            sealed: Mutex::new(BTreeMap::new()),
        }))
    }

    /// Rebuilds a log's state from its files: sealed segments from their
    /// index files (or a scan when one is missing or damaged), the active
    /// segment by a verifying scan that truncates a torn tail.
    fn recover(dir: &Path, id: LogId, stats: &DiskStats) -> io::Result<Inner> {
        std::fs::create_dir_all(dir)?;
        let seqs = segment::list(dir)?;
        let mut shards: HashMap<u32, ShardState> = HashMap::new();
        for (shard, next) in segment::read_offsets(dir) {
            let s = shards.entry(shard).or_default();
            s.next_offset = s.next_offset.max(next);
        }
        // A trailing segment whose creation was cut short (no complete header)
        // holds nothing acknowledged: drop it before deciding which is last.
        let mut seqs = seqs;
        while let Some(&seq) = seqs.last() {
            let (file, header_ok) = segment::open(dir, seq)?;
            if header_ok {
                break;
            }
            drop(file);
            std::fs::remove_file(segment::seg_path(dir, seq))?;
            seqs.pop();
        }
        // The last segment is the active one unless it was sealed (it has an
        // index file): then a roll was cut short after sealing, and a fresh
        // segment becomes active.
        let last_sealed = seqs
            .last()
            .is_some_and(|&seq| segment::read_index(dir, seq).is_some());
        let mut segments = BTreeMap::new();
        let mut last_arrival = 0;
        for (i, &seq) in seqs.iter().enumerate() {
            let last = i + 1 == seqs.len() && !last_sealed;
            let (file, header_ok) = segment::open(dir, seq)?;
            if !header_ok {
                if last {
                    // A segment whose creation was cut short holds nothing acknowledged.
                    drop(file);
                    std::fs::remove_file(segment::seg_path(dir, seq))?;
                    continue;
                }
                tracing::error!(dir = %dir.display(), seq, "segment header is damaged; its frames are unreadable");
                stats.corrupt_frames.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let file_len = file.metadata()?.len();
            let entries = match (last, segment::read_index(dir, seq)) {
                (false, Some(entries)) => entries,
                _ => {
                    let scan = segment::scan(&file, file_len)?;
                    // Only the active segment can have a torn tail: sealed
                    // ones were synced before sealing.
                    if last && scan.valid_len < file_len {
                        let cut = file_len - scan.valid_len;
                        tracing::warn!(dir = %dir.display(), seq, bytes = cut, "truncating a torn tail");
                        stats.torn_bytes_truncated.fetch_add(cut, Ordering::Relaxed);
                        file.set_len(scan.valid_len)?;
                        file.sync_all()?;
                    }
                    if !last {
                        segment::write_index(dir, seq, &scan.entries)?;
                    }
                    scan.entries
                }
            };
            let len = entries
                .last()
                .map_or(segment::SEG_HEADER, |e| e.pos + u64::from(e.size));
            let mut seg_last = 0;
            for e in &entries {
                if e.corrupt {
                    tracing::error!(dir = %dir.display(), seq, pos = e.pos, "frame failed its checksum; it will not be served");
                    stats.corrupt_frames.fetch_add(1, Ordering::Relaxed);
                    // Its header is untrusted: index it (so readers of the
                    // range get an error) only where it continues its shard.
                    let expected = shards.get(&e.shard).map_or(1, |s| s.next_offset);
                    let plausible = expected == e.first_offset && e.count > 0 && e.count < 1 << 24;
                    if !plausible {
                        continue;
                    }
                }
                let s = shards.entry(e.shard).or_default();
                s.next_offset = s.next_offset.max(e.first_offset + u64::from(e.count));
                s.note(seq, e);
                if last {
                    s.active.push(*e);
                }
                seg_last = seg_last.max(e.last_arrival);
            }
            last_arrival = last_arrival.max(seg_last);
            segments.insert(
                seq,
                Segment {
                    file: Arc::new(file),
                    len,
                    last_arrival: seg_last,
                },
            );
        }
        for s in shards.values_mut() {
            s.settled = s.next_offset;
        }
        let active = match segments.keys().next_back() {
            Some(&seq) if last_sealed => {
                let file = segment::create(dir, id, seq + 1)?;
                segments.insert(
                    seq + 1,
                    Segment {
                        file: Arc::new(file),
                        len: segment::SEG_HEADER,
                        last_arrival: 0,
                    },
                );
                seq + 1
            }
            Some(&seq) => seq,
            None => {
                let file = segment::create(dir, id, 1)?;
                segments.insert(
                    1,
                    Segment {
                        file: Arc::new(file),
                        len: segment::SEG_HEADER,
                        last_arrival: 0,
                    },
                );
                1
            }
        };
        Ok(Inner {
            shards,
            segments,
            active,
            pending: Cycle::new(),
            writing: false,
            dirty: false,
            last_arrival,
            removed: false,
            published: 0,
        })
    }

    fn mode(&self) -> Durability {
        match self.mode.load(Ordering::Relaxed) {
            0 => Durability::Fsync,
            1 => Durability::Interval,
            _ => Durability::None,
        }
    }

    /// Syncs unsynced writes (interval durability).
    fn flush(&self) {
        let file = {
            let mut g = lock(&self.inner);
            if !g.dirty {
                return;
            }
            g.dirty = false;
            g.segments.get(&g.active).map(|s| s.file.clone())
        };
        if let Some(f) = file {
            if let Err(e) = f.sync_data() {
                tracing::error!(dir = %self.dir.display(), error = %e, "periodic sync failed");
                lock(&self.inner).dirty = true;
            } else {
                self.stats.syncs.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The writer: drains pending cycles until none is left.
    async fn write_loop(self: Arc<Self>) {
        loop {
            let (cycle, file, seq, len, roll) = {
                let mut g = lock(&self.inner);
                if g.pending.frames.is_empty() || g.removed {
                    g.writing = false;
                    return;
                }
                let cycle = std::mem::replace(&mut g.pending, Cycle::new());
                let seq = g.active;
                let (file, len) = match g.segments.get(&seq) {
                    Some(seg) => (seg.file.clone(), seg.len),
                    None => {
                        g.writing = false;
                        return;
                    }
                };
                let roll = len > segment::SEG_HEADER && len >= self.cfg.segment_bytes;
                // The sealed segment's index: every shard's frames, in file order.
                let sealed = roll.then(|| {
                    let mut all: Vec<Entry> = g
                        .shards
                        .values()
                        .flat_map(|s| s.active.iter().copied())
                        .collect();
                    all.sort_unstable_by_key(|e| e.pos);
                    all
                });
                (cycle, file, seq, len, sealed)
            };
            let mut buf = Vec::new();
            let mut placed = Vec::with_capacity(cycle.frames.len());
            for f in &cycle.frames {
                let shard = f.shard;
                let start = buf.len();
                frame::encode(
                    &mut buf,
                    shard,
                    f.first_offset,
                    f.records
                        .iter()
                        .map(|(a, k, d)| (*a, k.as_str(), d.as_ref())),
                );
                placed.push(Entry {
                    shard,
                    count: f.records.len() as u32,
                    first_offset: f.first_offset,
                    base_arrival: f.records.first().map_or(0, |r| r.0),
                    last_arrival: f.records.last().map_or(0, |r| r.0),
                    pos: start as u64,
                    size: (buf.len() - start) as u32,
                    corrupt: false,
                });
            }
            let this = self.clone();
            let offsets: Vec<(u32, u64)> = if roll.is_some() {
                lock(&self.inner)
                    .shards
                    .iter()
                    .map(|(k, s)| (*k, s.next_offset))
                    .collect()
            } else {
                Vec::new()
            };
            let job = tokio::task::spawn_blocking(move || {
                this.write_cycle(buf, file, seq, len, roll, offsets)
            });
            let result = match job.await {
                Ok(r) => r,
                Err(e) => Err(LogError::Io(format!("writer task failed: {e}"))),
            };
            self.finish_cycle(cycle, placed, result);
        }
    }

    /// Blocking part of a cycle: roll if due, write, sync. Returns where the
    /// frames landed: (segment, base position, new file if rolled).
    fn write_cycle(
        &self,
        buf: Vec<u8>,
        mut file: Arc<File>,
        mut seq: u64,
        mut len: u64,
        roll: Option<Vec<Entry>>,
        offsets: Vec<(u32, u64)>,
    ) -> Result<(u64, u64, Option<Arc<File>>), LogError> {
        let mut new_file = None;
        if let Some(entries) = roll {
            if self.mode() != Durability::Fsync {
                file.sync_data().map_err(io_err)?;
            }
            segment::write_index(&self.dir, seq, &entries).map_err(io_err)?;
            segment::write_offsets(&self.dir, &offsets).map_err(io_err)?;
            let f = Arc::new(segment::create(&self.dir, self.id, seq + 1).map_err(io_err)?);
            seq += 1;
            len = segment::SEG_HEADER;
            file = f.clone();
            new_file = Some(f);
        }
        let res = file
            .write_all_at(&buf, len)
            .and_then(|_| match self.mode() {
                Durability::Fsync => {
                    self.stats.syncs.fetch_add(1, Ordering::Relaxed);
                    file.sync_data()
                }
                _ => Ok(()),
            });
        if let Err(e) = res {
            // Nothing of this cycle may survive: cut the file back, and drop
            // a segment this cycle created (the next cycle rolls again).
            if new_file.is_some() {
                let _ = std::fs::remove_file(segment::seg_path(&self.dir, seq));
            } else if let Err(t) = file.set_len(len) {
                tracing::error!(dir = %self.dir.display(), error = %t, "could not truncate a failed write");
            }
            return Err(io_err(e));
        }
        Ok((seq, len, new_file))
    }

    fn finish_cycle(
        &self,
        cycle: Cycle,
        placed: Vec<Entry>,
        result: Result<(u64, u64, Option<Arc<File>>), LogError>,
    ) {
        let mut g = lock(&self.inner);
        let outcome = match result {
            Ok((seq, base, new_file)) => {
                if let Some(f) = new_file {
                    g.segments.insert(
                        seq,
                        Segment {
                            file: f,
                            len: segment::SEG_HEADER,
                            last_arrival: 0,
                        },
                    );
                    g.active = seq;
                    // The sealed segment's frames now live in its index file.
                    for s in g.shards.values_mut() {
                        s.active.clear();
                    }
                }
                let mut end = base;
                let mut last = 0;
                for mut e in placed {
                    e.pos += base;
                    end = e.pos + u64::from(e.size);
                    last = last.max(e.last_arrival);
                    let s = g.shards.entry(e.shard).or_default();
                    s.settled = s.settled.max(e.first_offset + u64::from(e.count));
                    s.note(seq, &e);
                    s.active.push(e);
                }
                if let Some(seg) = g.segments.get_mut(&seq) {
                    seg.len = end;
                    seg.last_arrival = seg.last_arrival.max(last);
                }
                g.dirty |= self.mode() == Durability::Interval;
                Ok(())
            }
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "write failed; the appends of this cycle are refused");
                self.stats.failed_cycles.fetch_add(1, Ordering::Relaxed);
                for p in placed {
                    let s = g.shards.entry(p.shard).or_default();
                    s.settled = s.settled.max(p.first_offset + u64::from(p.count));
                }
                Err(e)
            }
        };
        g.published += 1;
        let n = g.published;
        drop(g);
        cycle.done.send_replace(Some(outcome));
        self.tip.send_replace(n);
    }

    /// A sealed segment's frames by shard: cached, else read from its index
    /// file, else rebuilt from the segment (and the index file rewritten).
    fn sealed_frames(&self, seg: u64, file: Option<&Arc<File>>) -> Option<SealedIndex> {
        if let Some(m) = lock(&self.sealed).get(&seg) {
            return Some(m.clone());
        }
        let entries = match segment::read_index(&self.dir, seg) {
            Some(e) => e,
            None => {
                let file = file?;
                let len = file.metadata().ok()?.len();
                let scan = segment::scan(file, len).ok()?;
                tracing::warn!(dir = %self.dir.display(), seg, "rebuilt a missing or damaged index file");
                // Not for a segment retention just deleted.
                if segment::seg_path(&self.dir, seg).exists() {
                    let _ = segment::write_index(&self.dir, seg, &scan.entries);
                }
                scan.entries
            }
        };
        let mut by_shard: HashMap<u32, Vec<Entry>> = HashMap::new();
        for e in entries {
            by_shard.entry(e.shard).or_default().push(e);
        }
        let m: SealedIndex = Arc::new(by_shard);
        let mut cache = lock(&self.sealed);
        if cache.len() >= SEALED_CACHE {
            if let Some(&oldest) = cache.keys().next() {
                cache.remove(&oldest);
            }
        }
        cache.insert(seg, m.clone());
        Some(m)
    }

    /// Reads a frame's bytes and checks them.
    fn load(&self, file: &File, f: &FrameRef) -> Result<Vec<frame::FrameRecord>, LogError> {
        let corrupt = |reason: &str| {
            self.stats.corrupt_frames.fetch_add(1, Ordering::Relaxed);
            tracing::error!(dir = %self.dir.display(), seg = f.seg, pos = f.e.pos, reason, "corrupt frame");
            LogError::Corrupt {
                offset: f.e.first_offset,
                reason: reason.into(),
            }
        };
        if f.e.corrupt {
            return Err(LogError::Corrupt {
                offset: f.e.first_offset,
                reason: "frame failed its checksum".into(),
            });
        }
        let mut buf = vec![0u8; f.e.size as usize];
        file.read_exact_at(&mut buf, f.e.pos).map_err(io_err)?;
        if !frame::verify(&buf) {
            return Err(corrupt("frame failed its checksum"));
        }
        frame::records(&Bytes::from(buf)).ok_or_else(|| corrupt("frame records are malformed"))
    }
}

impl StreamLog for DiskLog {
    fn append(&self, records: Vec<NewRecord>, now_ms: i64) -> Result<Appended, LogError> {
        let mut g = lock(&self.inner);
        if g.removed {
            return Err(LogError::Removed);
        }
        let arrival = now_ms.max(g.last_arrival);
        g.last_arrival = arrival;
        let mut offsets = Vec::with_capacity(records.len());
        let Inner {
            shards, pending, ..
        } = &mut *g;
        for r in records {
            let s = shards.entry(r.shard).or_default();
            let offset = s.next_offset;
            s.next_offset += 1;
            offsets.push(offset);
            pending.add(r.shard, offset, arrival, r.partition_key, r.data);
        }
        let mut done = pending.done.subscribe();
        if !g.writing {
            g.writing = true;
            if let Some(me) = self.me.upgrade() {
                tokio::spawn(me.write_loop());
            }
        }
        drop(g);
        Ok(Appended {
            offsets,
            arrival_ms: arrival,
            durable: Box::pin(async move {
                match done.wait_for(Option::is_some).await {
                    Ok(r) => r.clone().unwrap_or(Ok(())),
                    Err(_) => Err(LogError::Removed),
                }
            }),
        })
    }

    fn read(&self, shard: u32, from: u64, limits: ReadLimits) -> Result<ReadBatch, LogError> {
        let (spans, active_seq, active, files) = {
            let g = lock(&self.inner);
            let Some(s) = g.shards.get(&shard) else {
                return Ok(ReadBatch {
                    records: Vec::new(),
                    next_position: from,
                });
            };
            let spans: Vec<SegSpan> = s
                .spans
                .iter()
                .filter(|sp| sp.end_offset > from)
                .copied()
                .collect();
            let start = s
                .active
                .partition_point(|e| e.first_offset + u64::from(e.count) <= from);
            let active: Vec<Entry> = s.active[start..]
                .iter()
                .take(limits.max_records.min(4096))
                .copied()
                .collect();
            let files: HashMap<u64, Arc<File>> = spans
                .iter()
                .filter_map(|sp| g.segments.get(&sp.seg).map(|x| (sp.seg, x.file.clone())))
                .collect();
            (spans, g.active, active, files)
        };
        let mut frames = Vec::new();
        let mut records = 0usize;
        let mut bytes = 0usize;
        'spans: for sp in &spans {
            let sealed;
            let entries: &[Entry] = if sp.seg == active_seq {
                &active
            } else {
                sealed = self.sealed_frames(sp.seg, files.get(&sp.seg));
                sealed
                    .as_ref()
                    .and_then(|m| m.get(&shard))
                    .map_or(&[], Vec::as_slice)
            };
            let start = entries.partition_point(|e| e.first_offset + u64::from(e.count) <= from);
            for e in &entries[start..] {
                if records >= limits.max_records || (bytes >= limits.max_bytes && records > 0) {
                    break 'spans;
                }
                let end = e.first_offset + u64::from(e.count);
                records += (end - from.max(e.first_offset)) as usize;
                // A lower bound of the keys and data wanted from the frame:
                // each record costs at most 30 bytes of varints and delta.
                if e.first_offset >= from {
                    bytes +=
                        (e.size as usize).saturating_sub(frame::HEADER + 30 * e.count as usize);
                }
                frames.push(FrameRef { seg: sp.seg, e: *e });
            }
        }
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut next = from;
        'frames: for f in &frames {
            let Some(file) = files.get(&f.seg) else {
                continue;
            };
            let recs = match self.load(file, f) {
                Ok(r) => r,
                Err(e) if out.is_empty() => return Err(e),
                Err(_) => break,
            };
            for (i, r) in recs.into_iter().enumerate() {
                let offset = f.e.first_offset + i as u64;
                if offset < from {
                    continue;
                }
                let size = r.data.len() + r.partition_key.len();
                if out.len() >= limits.max_records
                    || (!out.is_empty() && bytes + size > limits.max_bytes)
                {
                    break 'frames;
                }
                bytes += size;
                next = offset + 1;
                out.push(StoredRecord {
                    offset,
                    shard,
                    arrival_ms: r.arrival_ms,
                    partition_key: r.partition_key,
                    data: r.data,
                });
            }
        }
        Ok(ReadBatch {
            records: out,
            next_position: next,
        })
    }

    fn next_offset(&self, shard: u32) -> u64 {
        lock(&self.inner)
            .shards
            .get(&shard)
            .map_or(1, |s| s.next_offset)
    }

    fn settled_offset(&self, shard: u32) -> u64 {
        lock(&self.inner)
            .shards
            .get(&shard)
            .map_or(1, |s| s.settled)
    }

    fn seek_time(&self, shard: u32, ms: i64) -> u64 {
        let (span, active_seq, active, file, next) = {
            let g = lock(&self.inner);
            let Some(s) = g.shards.get(&shard) else {
                return 1;
            };
            let Some(span) = s.spans.iter().find(|sp| sp.max_arrival >= ms).copied() else {
                return s.settled;
            };
            let active = if span.seg == g.active {
                s.active.clone()
            } else {
                Vec::new()
            };
            (
                span,
                g.active,
                active,
                g.segments.get(&span.seg).map(|x| x.file.clone()),
                s.settled,
            )
        };
        let sealed;
        let entries: &[Entry] = if span.seg == active_seq {
            &active
        } else {
            sealed = self.sealed_frames(span.seg, file.as_ref());
            sealed
                .as_ref()
                .and_then(|m| m.get(&shard))
                .map_or(&[], Vec::as_slice)
        };
        let Some(e) = entries.iter().find(|e| e.last_arrival >= ms).copied() else {
            return next;
        };
        if e.base_arrival >= ms {
            return e.first_offset;
        }
        let Some(file) = file else { return next };
        match self.load(&file, &FrameRef { seg: span.seg, e }) {
            Ok(recs) => recs
                .iter()
                .position(|r| r.arrival_ms >= ms)
                .map_or(e.first_offset + u64::from(e.count), |i| {
                    e.first_offset + i as u64
                }),
            Err(_) => e.first_offset,
        }
    }

    fn trim(&self, cutoff_ms: i64) {
        let doomed: Vec<u64> = {
            let mut g = lock(&self.inner);
            let active = g.active;
            let doomed: Vec<u64> = g
                .segments
                .iter()
                .filter(|(seq, s)| **seq != active && s.last_arrival < cutoff_ms)
                .map(|(seq, _)| *seq)
                .collect();
            if doomed.is_empty() {
                return;
            }
            for seq in &doomed {
                g.segments.remove(seq);
            }
            let first_kept = g.segments.keys().next().copied().unwrap_or(u64::MAX);
            for s in g.shards.values_mut() {
                while s.spans.front().is_some_and(|sp| sp.seg < first_kept) {
                    s.spans.pop_front();
                }
            }
            doomed
        };
        for seq in doomed {
            lock(&self.sealed).remove(&seq);
            let _ = std::fs::remove_file(segment::idx_path(&self.dir, seq));
            if let Err(e) = std::fs::remove_file(segment::seg_path(&self.dir, seq)) {
                tracing::warn!(dir = %self.dir.display(), seq, error = %e, "could not delete an expired segment");
            }
        }
    }

    fn watch(&self) -> watch::Receiver<u64> {
        self.tip.subscribe()
    }

    fn set_durability(&self, d: Durability) {
        self.mode.store(mode_byte(d), Ordering::Relaxed);
    }
}

fn mode_byte(d: Durability) -> u8 {
    match d {
        Durability::Fsync => 0,
        Durability::Interval => 1,
        Durability::None => 2,
    }
}

#[cfg(test)]
mod tests;
