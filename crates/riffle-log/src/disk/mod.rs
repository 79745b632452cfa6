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
//! never returned as data: its records are skipped (logged and counted once
//! per frame in [`DiskStats`]) and the read goes on after it, so readers get
//! past damage instead of failing at it forever. Hole frames (written by
//! `riffle repair --quarantine`, see [`fsck`]) are skipped silently.
//!
//! Files: every operation goes through a [`riffle_fs::Fs`]
//! ([`DiskEngine::open`]: the real file system; [`DiskEngine::open_with`]:
//! any, such as the simulated one of the power-loss tests in `power.rs`).
//! Every sync is named by a [`SyncPoint`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use riffle_fs::{Fs, FsFile, RealFs};
use tokio::sync::watch;

use crate::{
    Appended, LogEngine, LogError, LogId, NewRecord, ReadBatch, ReadLimits, StoredRecord, StreamLog,
};

pub mod frame;
pub mod fsck;
pub mod segment;

use segment::{Entry, Handle};

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
    /// Tests only: skip one sync point (pretend it succeeded), to show the
    /// power-loss checks catch its absence.
    #[cfg(test)]
    pub(crate) skip_sync: Option<SyncPoint>,
}

/// Every place the engine makes something durable. Each one is needed: the
/// power-loss tests fail when any one is skipped (see `tests.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncPoint {
    /// `fdatasync` of the active segment after a commit cycle's write, before
    /// its appends are acknowledged (`fsync` mode).
    CycleData,
    /// `fdatasync` of a segment before it is sealed (`interval` and `none`
    /// modes; in `fsync` mode its cycles were synced already).
    SealData,
    /// `fsync` of a new index file before it is renamed into place.
    IndexData,
    /// `fsync` of a new offsets checkpoint before it is renamed into place.
    CheckpointData,
    /// `fsync` of the log directory once a roll has created the new
    /// segment (it also makes the roll's index and checkpoint renames
    /// durable).
    SegmentEntry,
    /// `fsync` of the log directory when the log is opened: the entry of a
    /// segment recovery created, or of one (or an index) that a process
    /// that died had not synced yet.
    OpenLogDir,
    /// `fsync` of the parent of a directory the engine creates (the engine's
    /// root and its missing parents, a log's directory).
    NewDirEntry,
    /// `fsync` of the parent of the engine's root or of a log's directory
    /// that already exists when opened: a process that died may have created
    /// it without syncing its parent.
    OpenDirEntry,
    /// `fdatasync` of the active segment when a log is opened, after recovery
    /// cut its tail: the cut is durable, and so is everything the next
    /// cycle's synced-before flag claims.
    OpenActive,
    /// The periodic `fdatasync` of `interval` mode.
    IntervalFlush,
}

impl SyncPoint {
    pub const ALL: [SyncPoint; 10] = [
        SyncPoint::CycleData,
        SyncPoint::SealData,
        SyncPoint::IndexData,
        SyncPoint::CheckpointData,
        SyncPoint::SegmentEntry,
        SyncPoint::OpenLogDir,
        SyncPoint::NewDirEntry,
        SyncPoint::OpenDirEntry,
        SyncPoint::OpenActive,
        SyncPoint::IntervalFlush,
    ];
}

/// Runs the engine's syncs, each named by its [`SyncPoint`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Syncer {
    #[cfg(test)]
    skip: Option<SyncPoint>,
}

impl Syncer {
    fn new(_cfg: &DiskConfig) -> Syncer {
        Syncer {
            #[cfg(test)]
            skip: _cfg.skip_sync,
        }
    }

    #[inline]
    fn skips(&self, _point: SyncPoint) -> bool {
        #[cfg(test)]
        {
            self.skip == Some(_point)
        }
        #[cfg(not(test))]
        {
            false
        }
    }

    pub fn sync_data(&self, point: SyncPoint, f: &dyn FsFile) -> io::Result<()> {
        if self.skips(point) {
            return Ok(());
        }
        f.sync_data()
    }

    pub fn sync_all(&self, point: SyncPoint, f: &dyn FsFile) -> io::Result<()> {
        if self.skips(point) {
            return Ok(());
        }
        f.sync_all()
    }

    pub fn sync_dir(&self, point: SyncPoint, fs: &dyn Fs, dir: &Path) -> io::Result<()> {
        if self.skips(point) {
            return Ok(());
        }
        fs.sync_dir(dir)
    }

    /// Creates `dir` (and missing parents) and makes its entry durable: the
    /// parent of every directory created is synced, and so is the parent of
    /// the nearest one that existed (a process that died may have created
    /// it without syncing its parent); with `whole_path`, the parents of
    /// every existing directory up to the root too.
    pub(crate) fn ensure_dir(&self, fs: &dyn Fs, dir: &Path, whole_path: bool) -> io::Result<()> {
        let parent_of = |d: &Path| match d.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut missing = Vec::new();
        let mut existing = Some(dir);
        while let Some(d) = existing {
            if fs.exists(d) {
                break;
            }
            missing.push(d);
            existing = d.parent().filter(|p| !p.as_os_str().is_empty());
        }
        for d in missing.iter().rev() {
            match fs.create_dir(d) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            self.sync_dir(SyncPoint::NewDirEntry, fs, &parent_of(d))?;
        }
        while let Some(d) = existing {
            let Some(parent) = d.parent() else { break };
            if parent.as_os_str().is_empty() {
                break;
            }
            self.sync_dir(SyncPoint::OpenDirEntry, fs, parent)?;
            if !whole_path {
                break;
            }
            existing = Some(parent);
        }
        Ok(())
    }
}

impl Default for DiskConfig {
    fn default() -> Self {
        DiskConfig {
            durability: Durability::Fsync,
            segment_bytes: 128 * 1024 * 1024,
            sync_interval: Duration::from_millis(100),
            #[cfg(test)]
            skip_sync: None,
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
    /// Index files rebuilt and offsets checkpoints found damaged: repairs
    /// a power loss alone never makes necessary.
    pub repairs: AtomicU64,
    /// Records readers skipped because their frame was damaged (counted
    /// once per damaged frame), and those frames' bytes.
    pub skipped_corrupt_records: AtomicU64,
    pub skipped_corrupt_bytes: AtomicU64,
    /// The same, per log.
    skipped_by_log: Mutex<BTreeMap<LogId, (u64, u64)>>,
}

impl DiskStats {
    fn note_skipped(&self, log: LogId, records: u64, bytes: u64) {
        self.skipped_corrupt_records
            .fetch_add(records, Ordering::Relaxed);
        self.skipped_corrupt_bytes
            .fetch_add(bytes, Ordering::Relaxed);
        let mut m = lock(&self.skipped_by_log);
        let e = m.entry(log).or_default();
        e.0 += records;
        e.1 += bytes;
    }

    /// Per log: (log id, records skipped, bytes skipped), logs that skipped
    /// nothing left out.
    pub fn skipped_by_log(&self) -> Vec<(LogId, u64, u64)> {
        lock(&self.skipped_by_log)
            .iter()
            .map(|(id, (r, b))| (*id, *r, *b))
            .collect()
    }
}

/// Whether a damaged frame's untrusted header may be believed: it continues
/// its shard (`expected` is the shard's next offset so far) with a sane
/// count. Recovery and `fsck` use the same rule.
pub(crate) fn plausible(expected: u64, e: &Entry) -> bool {
    expected == e.first_offset && e.count > 0 && e.count < 1 << 24
}

/// Stream logs under one directory.
pub struct DiskEngine {
    fs: Arc<dyn Fs>,
    root: PathBuf,
    cfg: DiskConfig,
    /// The open logs. Held only to look up, insert or take out a log, never
    /// across file I/O.
    logs: Mutex<HashMap<LogId, Arc<DiskLog>>>,
    /// One slot per log id being opened or removed: opening (recovery) and
    /// removal of one id take turns, while other ids and lookups go ahead.
    busy: Mutex<HashMap<LogId, Arc<Mutex<()>>>>,
    pub stats: Arc<DiskStats>,
    /// The interval flusher, woken when the engine is dropped so it ends.
    flusher: Mutex<Option<std::thread::Thread>>,
}

impl Drop for DiskEngine {
    fn drop(&mut self) {
        if let Some(t) = lock(&self.flusher).take() {
            t.unpark();
        }
    }
}

impl DiskEngine {
    /// Opens (creating) the engine's directory on the real file system. A
    /// background thread syncs logs in interval mode that have unsynced
    /// writes.
    pub fn open(root: impl Into<PathBuf>, cfg: DiskConfig) -> io::Result<Arc<Self>> {
        Self::open_with(Arc::new(RealFs), root, cfg)
    }

    /// [`DiskEngine::open`] on any file system (tests use a simulated one
    /// that can lose power).
    pub fn open_with(
        fs: Arc<dyn Fs>,
        root: impl Into<PathBuf>,
        cfg: DiskConfig,
    ) -> io::Result<Arc<Self>> {
        let root = root.into();
        Syncer::new(&cfg).ensure_dir(&*fs, &root, true)?;
        let engine = Arc::new(DiskEngine {
            fs,
            root,
            cfg,
            logs: Mutex::new(HashMap::new()),
            busy: Mutex::new(HashMap::new()),
            stats: Arc::default(),
            flusher: Mutex::new(None),
        });
        {
            let every = engine.cfg.sync_interval;
            let weak = Arc::downgrade(&engine);
            let t = std::thread::Builder::new()
                .name("riffle-flush".into())
                .spawn(move || loop {
                    let due = std::time::Instant::now() + every;
                    // Woken early only when the engine is dropped (or
                    // spuriously: then it sleeps on).
                    while let Some(left) = due.checked_duration_since(std::time::Instant::now()) {
                        if left.is_zero() || weak.strong_count() == 0 {
                            break;
                        }
                        std::thread::park_timeout(left);
                    }
                    let Some(engine) = weak.upgrade() else { return };
                    let logs: Vec<_> = lock(&engine.logs).values().cloned().collect();
                    for log in logs {
                        log.flush();
                    }
                })?;
            *lock(&engine.flusher) = Some(t.thread().clone());
        }
        Ok(engine)
    }

    fn dir(&self, id: LogId) -> PathBuf {
        self.root.join(format!("{id:016x}"))
    }

    /// Runs `f` holding the slot of `id` (and no other lock).
    fn in_slot<R>(&self, id: LogId, f: impl FnOnce() -> R) -> R {
        let slot = lock(&self.busy).entry(id).or_default().clone();
        let out = {
            let _turn = lock(&slot);
            f()
        };
        let mut busy = lock(&self.busy);
        drop(slot);
        if busy.get(&id).is_some_and(|s| Arc::strong_count(s) == 1) {
            busy.remove(&id);
        }
        out
    }
}

impl LogEngine for DiskEngine {
    fn open(&self, id: LogId) -> Result<Arc<dyn StreamLog>, LogError> {
        if let Some(l) = lock(&self.logs).get(&id) {
            return Ok(l.clone());
        }
        self.in_slot(id, || {
            if let Some(l) = lock(&self.logs).get(&id) {
                return Ok(l.clone() as Arc<dyn StreamLog>);
            }
            let log = DiskLog::open(
                self.fs.clone(),
                self.dir(id),
                id,
                self.cfg.clone(),
                self.stats.clone(),
            )
            .map_err(io_err)?;
            lock(&self.logs).insert(id, log.clone());
            Ok(log)
        })
    }

    fn remove(&self, id: LogId) -> Result<(), LogError> {
        self.in_slot(id, || {
            if let Some(log) = lock(&self.logs).remove(&id) {
                lock(&log.inner).removed = true;
            }
            match self.fs.remove_dir_all(&self.dir(id)) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_err(e)),
            }
        })
    }

    fn stored_ids(&self) -> Result<Vec<LogId>, LogError> {
        // A log's directory is its id in 16 lowercase hex digits; anything
        // else under the root is not a log.
        let names = self.fs.read_dir(&self.root).map_err(io_err)?;
        Ok(names
            .iter()
            .filter_map(|n| n.to_str())
            .filter(|n| n.len() == 16 && n.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .filter_map(|n| LogId::from_str_radix(n, 16).ok())
            .collect())
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
    file: Handle,
    /// Bytes written and published.
    len: u64,
    /// Bytes known durable (synced); a cycle written at `len` is marked
    /// [`frame::FLAG_SYNCED_BEFORE`] when this has reached `len`.
    synced: u64,
    last_arrival: i64,
}

impl Segment {
    fn fresh(file: Handle) -> Segment {
        Segment {
            file,
            len: segment::SEG_HEADER,
            synced: 0,
            last_arrival: 0,
        }
    }
}

type CycleResult = Option<Result<(), LogError>>;

/// Where a cycle's frames landed.
struct Written {
    seq: u64,
    base: u64,
    new_file: Option<Handle>,
    /// Whether the cycle was synced (`fsync` mode).
    synced: bool,
}

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
    /// Entries of the active segment that belong to no shard (unattributed
    /// holes, damage whose header is not believed): kept for its index.
    orphans: Vec<Entry>,
}

/// One stream's log on disk.
pub struct DiskLog {
    me: std::sync::Weak<DiskLog>,
    fs: Arc<dyn Fs>,
    syncer: Syncer,
    /// The durability mode: 0 fsync, 1 interval, 2 none.
    mode: std::sync::atomic::AtomicU8,
    dir: PathBuf,
    id: LogId,
    cfg: DiskConfig,
    stats: Arc<DiskStats>,
    inner: Mutex<Inner>,
    tip: watch::Sender<u64>,
    sealed: Mutex<BTreeMap<u64, SealedIndex>>,
    /// Damaged frames (segment, position) readers already skipped: each is
    /// logged and counted once.
    skipped: Mutex<std::collections::HashSet<(u64, u64)>>,
}

impl DiskLog {
    /// Opens or creates the log in `dir`, recovering what is there.
    fn open(
        fs: Arc<dyn Fs>,
        dir: PathBuf,
        id: LogId,
        cfg: DiskConfig,
        stats: Arc<DiskStats>,
    ) -> io::Result<Arc<DiskLog>> {
        let syncer = Syncer::new(&cfg);
        let inner = Self::recover(&*fs, &syncer, &dir, id, &stats)?;
        Ok(Arc::new_cyclic(|me| DiskLog {
            me: me.clone(),
            fs,
            syncer,
            mode: std::sync::atomic::AtomicU8::new(mode_byte(cfg.durability)),
            dir,
            id,
            cfg,
            stats,
            inner: Mutex::new(inner),
            tip: watch::channel(0).0,
            sealed: Mutex::new(BTreeMap::new()),
            skipped: Mutex::new(std::collections::HashSet::new()),
        }))
    }

    /// Rebuilds a log's state from its files: sealed segments from their
    /// index files (or a scan when one is missing or damaged), the active
    /// segment by a verifying scan that cuts a torn tail or an incomplete
    /// final cycle.
    fn recover(
        fs: &dyn Fs,
        syncer: &Syncer,
        dir: &Path,
        id: LogId,
        stats: &DiskStats,
    ) -> io::Result<Inner> {
        syncer.ensure_dir(fs, dir, false)?;
        let seqs = segment::list(fs, dir)?;
        let mut shards: HashMap<u32, ShardState> = HashMap::new();
        let checkpoint = segment::read_offsets(fs, dir).unwrap_or_else(|segment::Damaged| {
            tracing::warn!(dir = %dir.display(), "the offsets checkpoint is damaged");
            stats.repairs.fetch_add(1, Ordering::Relaxed);
            Vec::new()
        });
        for (shard, next) in checkpoint {
            let s = shards.entry(shard).or_default();
            s.next_offset = s.next_offset.max(next);
        }
        // A trailing segment whose creation was cut short (no complete header)
        // holds nothing acknowledged: drop it before deciding which is last.
        let mut seqs = seqs;
        while let Some(&seq) = seqs.last() {
            let (file, version) = segment::open(fs, dir, seq)?;
            if version.is_some() {
                break;
            }
            drop(file);
            fs.remove_file(&segment::seg_path(dir, seq))?;
            seqs.pop();
        }
        let read_index = |seq: u64| match segment::read_index(fs, dir, seq) {
            Ok(e) => e,
            Err(segment::Damaged) => {
                tracing::warn!(dir = %dir.display(), seq, "index file is damaged");
                None
            }
        };
        // The last segment is the active one unless it was sealed (it has an
        // index file): then a roll was cut short after sealing, and a fresh
        // segment becomes active. A last segment in format 1 is sealed now,
        // so every frame written from here on is in format 2.
        let mut last_sealed = seqs.last().is_some_and(|&seq| read_index(seq).is_some());
        let mut segments = BTreeMap::new();
        let mut last_arrival = 0;
        let mut orphans = Vec::new();
        for (i, &seq) in seqs.iter().enumerate() {
            let last = i + 1 == seqs.len() && !last_sealed;
            let (file, version) = segment::open(fs, dir, seq)?;
            let Some(version) = version else {
                tracing::error!(dir = %dir.display(), seq, "segment header is damaged; its frames are unreadable");
                stats.corrupt_frames.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let mut file_len = file.len()?;
            let indexed = if last { None } else { read_index(seq) };
            let entries = match indexed {
                Some(entries) => entries,
                None => {
                    let cut_unsynced = last && version >= 2;
                    let scan = segment::scan(&*file, file_len, cut_unsynced)?;
                    // Only the active segment can have a torn tail: sealed
                    // ones were synced before sealing.
                    if last && scan.valid_len < file_len {
                        let cut = file_len - scan.valid_len;
                        tracing::warn!(dir = %dir.display(), seq, bytes = cut, "cutting a torn tail");
                        stats.torn_bytes_truncated.fetch_add(cut, Ordering::Relaxed);
                        file.set_len(scan.valid_len)?;
                        file_len = scan.valid_len;
                    }
                    if !last {
                        tracing::warn!(dir = %dir.display(), seq, "rebuilding a missing or damaged index file");
                        stats.repairs.fetch_add(1, Ordering::Relaxed);
                        segment::write_index(fs, dir, seq, &scan.entries, syncer)?;
                    }
                    scan.entries
                }
            };
            if last {
                // What the scan kept (and the cut) is durable from here on,
                // so the next cycle may say so.
                syncer.sync_data(SyncPoint::OpenActive, &*file)?;
                if version < segment::VERSION {
                    segment::write_index(fs, dir, seq, &entries, syncer)?;
                    last_sealed = true;
                }
            }
            let len = entries
                .last()
                .map_or(segment::SEG_HEADER, |e| e.pos + u64::from(e.size));
            let mut seg_last = 0;
            let active_here = last && !last_sealed;
            for e in &entries {
                if e.hole && e.count == 0 {
                    // A hole nothing is known of: it belongs to no shard.
                    if active_here {
                        orphans.push(*e);
                    }
                    continue;
                }
                if e.corrupt {
                    tracing::error!(dir = %dir.display(), seq, pos = e.pos, "frame failed its checksum; its records will be skipped, never served (run `riffle fsck`)");
                    stats.corrupt_frames.fetch_add(1, Ordering::Relaxed);
                    // Its header is untrusted: index it (so readers skip
                    // the range, counted) only where it continues its shard.
                    let expected = shards.get(&e.shard).map_or(1, |s| s.next_offset);
                    if !plausible(expected, e) {
                        if active_here {
                            orphans.push(Entry {
                                count: 0,
                                first_offset: 0,
                                ..*e
                            });
                        }
                        continue;
                    }
                }
                let s = shards.entry(e.shard).or_default();
                s.next_offset = s.next_offset.max(e.first_offset + u64::from(e.count));
                s.note(seq, e);
                if active_here {
                    s.active.push(*e);
                }
                seg_last = seg_last.max(e.last_arrival);
            }
            last_arrival = last_arrival.max(seg_last);
            segments.insert(
                seq,
                Segment {
                    file,
                    len,
                    synced: file_len,
                    last_arrival: seg_last,
                },
            );
        }
        for s in shards.values_mut() {
            s.settled = s.next_offset;
        }
        let fresh = match segments.keys().next_back() {
            Some(&seq) if last_sealed => Some(seq + 1),
            Some(_) => None,
            None => Some(1),
        };
        let active = match fresh {
            Some(seq) => {
                let file = segment::create(fs, dir, id, seq)?;
                segments.insert(seq, Segment::fresh(file));
                seq
            }
            None => *segments.keys().next_back().unwrap_or(&1),
        };
        // The directory is synced even when nothing was created here: a
        // process that died between creating a segment (or renaming an
        // index into place) and syncing the directory left an entry that
        // a power loss could still take away.
        if let Err(e) = syncer.sync_dir(SyncPoint::OpenLogDir, fs, dir) {
            if fresh.is_some() {
                let _ = fs.remove_file(&segment::seg_path(dir, active));
            }
            return Err(e);
        }
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
            orphans,
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
        let (seq, file, len) = {
            let mut g = lock(&self.inner);
            if !g.dirty {
                return;
            }
            g.dirty = false;
            let seq = g.active;
            match g.segments.get(&seq) {
                Some(s) => (seq, s.file.clone(), s.len),
                None => return,
            }
        };
        if let Err(e) = self.syncer.sync_data(SyncPoint::IntervalFlush, &*file) {
            tracing::error!(dir = %self.dir.display(), error = %e, "periodic sync failed");
            lock(&self.inner).dirty = true;
        } else {
            self.stats.syncs.fetch_add(1, Ordering::Relaxed);
            if let Some(s) = lock(&self.inner).segments.get_mut(&seq) {
                s.synced = s.synced.max(len);
            }
        }
    }

    /// The writer: drains pending cycles until none is left.
    async fn write_loop(self: Arc<Self>) {
        loop {
            let (cycle, file, seq, len, roll, synced_before) = {
                let mut g = lock(&self.inner);
                if g.pending.frames.is_empty() || g.removed {
                    g.writing = false;
                    return;
                }
                let cycle = std::mem::replace(&mut g.pending, Cycle::new());
                let seq = g.active;
                let (file, len, synced_before) = match g.segments.get(&seq) {
                    Some(seg) => (seg.file.clone(), seg.len, seg.synced >= seg.len),
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
                        .chain(g.orphans.iter().copied())
                        .collect();
                    all.sort_unstable_by_key(|e| e.pos);
                    all
                });
                // The first frame of a cycle in a fresh segment is never
                // marked: the segment's header was not synced yet.
                let synced_before = synced_before && sealed.is_none();
                (cycle, file, seq, len, sealed, synced_before)
            };
            let mut buf = Vec::new();
            let mut placed = Vec::with_capacity(cycle.frames.len());
            for (i, f) in cycle.frames.iter().enumerate() {
                let shard = f.shard;
                let start = buf.len();
                let flags = if i == 0 && synced_before {
                    frame::FLAG_SYNCED_BEFORE
                } else {
                    0
                };
                frame::encode(
                    &mut buf,
                    flags,
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
                    hole: false,
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
    /// frames landed: (segment, base position, new file if rolled, whether
    /// the cycle was synced).
    fn write_cycle(
        &self,
        buf: Vec<u8>,
        mut file: Handle,
        mut seq: u64,
        mut len: u64,
        roll: Option<Vec<Entry>>,
        offsets: Vec<(u32, u64)>,
    ) -> Result<Written, LogError> {
        let fs = &*self.fs;
        let mut new_file = None;
        if let Some(entries) = roll {
            if self.mode() != Durability::Fsync {
                self.syncer
                    .sync_data(SyncPoint::SealData, &*file)
                    .map_err(io_err)?;
            }
            segment::write_index(fs, &self.dir, seq, &entries, &self.syncer).map_err(io_err)?;
            segment::write_offsets(fs, &self.dir, &offsets, &self.syncer).map_err(io_err)?;
            let f = segment::create(fs, &self.dir, self.id, seq + 1).map_err(io_err)?;
            // One directory sync makes the index, the checkpoint and the new
            // segment's entry durable.
            if let Err(e) = self.syncer.sync_dir(SyncPoint::SegmentEntry, fs, &self.dir) {
                let _ = fs.remove_file(&segment::seg_path(&self.dir, seq + 1));
                return Err(io_err(e));
            }
            seq += 1;
            len = segment::SEG_HEADER;
            file = f.clone();
            new_file = Some(f);
        }
        let fsync = self.mode() == Durability::Fsync;
        let res = file.write_all_at(&buf, len).and_then(|_| {
            if fsync {
                self.stats.syncs.fetch_add(1, Ordering::Relaxed);
                self.syncer.sync_data(SyncPoint::CycleData, &*file)
            } else {
                Ok(())
            }
        });
        if let Err(e) = res {
            // Nothing of this cycle may survive: cut the file back, and drop
            // a segment this cycle created (the next cycle rolls again).
            if new_file.is_some() {
                let _ = fs.remove_file(&segment::seg_path(&self.dir, seq));
            } else if let Err(t) = file.set_len(len) {
                tracing::error!(dir = %self.dir.display(), error = %t, "could not truncate a failed write");
            }
            return Err(io_err(e));
        }
        Ok(Written {
            seq,
            base: len,
            new_file,
            synced: fsync,
        })
    }

    fn finish_cycle(&self, cycle: Cycle, placed: Vec<Entry>, result: Result<Written, LogError>) {
        let mut g = lock(&self.inner);
        let outcome = match result {
            Ok(Written {
                seq,
                base,
                new_file,
                synced,
            }) => {
                if let Some(f) = new_file {
                    g.segments.insert(seq, Segment::fresh(f));
                    g.active = seq;
                    // The sealed segment's frames now live in its index file.
                    for s in g.shards.values_mut() {
                        s.active.clear();
                    }
                    g.orphans.clear();
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
                    if synced {
                        seg.synced = end;
                    }
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
    fn sealed_frames(&self, seg: u64, file: Option<&Handle>) -> Option<SealedIndex> {
        if let Some(m) = lock(&self.sealed).get(&seg) {
            return Some(m.clone());
        }
        let fs = &*self.fs;
        let entries = match segment::read_index(fs, &self.dir, seg) {
            Ok(Some(e)) => e,
            _ => {
                let file = file?;
                let len = file.len().ok()?;
                let scan = segment::scan(&**file, len, false).ok()?;
                tracing::warn!(dir = %self.dir.display(), seg, "rebuilt a missing or damaged index file");
                self.stats.repairs.fetch_add(1, Ordering::Relaxed);
                // Not for a segment retention just deleted.
                if fs.exists(&segment::seg_path(&self.dir, seg)) {
                    let _ = segment::write_index(fs, &self.dir, seg, &scan.entries, &self.syncer);
                }
                scan.entries
            }
        };
        let mut by_shard: HashMap<u32, Vec<Entry>> = HashMap::new();
        for e in entries {
            // Damage or holes that name no records belong to no shard; a
            // damaged header is believed only where it continues its shard
            // in order (an index rebuilt by a scan keeps what it claims).
            if (e.corrupt || e.hole) && e.count == 0 {
                continue;
            }
            let list = by_shard.entry(e.shard).or_default();
            let prev_end = list.last().map_or(0, Entry::end_offset);
            if e.corrupt && (e.first_offset < prev_end || e.count >= 1 << 24) {
                continue;
            }
            list.push(e);
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

    /// Reads a frame's bytes and checks them ([`LogError::Corrupt`] when
    /// they fail).
    fn load(&self, file: &dyn FsFile, f: &FrameRef) -> Result<Vec<frame::FrameRecord>, LogError> {
        let corrupt = |reason: &str| LogError::Corrupt {
            offset: f.e.first_offset,
            reason: reason.into(),
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

    /// A reader met a damaged frame: its records are lost. Logged and
    /// counted the first time any reader meets it.
    fn skip_damaged(&self, shard: u32, f: &FrameRef, reason: &str) {
        if !lock(&self.skipped).insert((f.seg, f.e.pos)) {
            return;
        }
        if !f.e.corrupt {
            // Found by this read (recovery counted the ones it flagged).
            self.stats.corrupt_frames.fetch_add(1, Ordering::Relaxed);
        }
        self.stats
            .note_skipped(self.id, u64::from(f.e.count), u64::from(f.e.size));
        tracing::error!(
            dir = %self.dir.display(),
            seg = f.seg,
            pos = f.e.pos,
            bytes = f.e.size,
            shard,
            first_offset = f.e.first_offset,
            count = f.e.count,
            reason,
            "skipping damaged records: they are lost and readers continue after them; `riffle fsck` reports the range and `riffle repair --quarantine` moves it away"
        );
    }

    /// One pass of [`StreamLog::read`]: may return no records but a
    /// `next_position` past damage or holes it skipped.
    fn read_once(&self, shard: u32, from: u64, limits: ReadLimits) -> Result<ReadBatch, LogError> {
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
            let files: HashMap<u64, Handle> = spans
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
            // Past a hole or a damaged frame the read goes on: its offsets
            // are never served, and the next read starts after them.
            if f.e.hole {
                next = next.max(f.e.end_offset());
                continue;
            }
            let recs = match self.load(&**file, f) {
                Ok(r) => r,
                Err(LogError::Corrupt { reason, .. }) => {
                    self.skip_damaged(shard, f, &reason);
                    next = next.max(f.e.end_offset());
                    continue;
                }
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
        // A pass that skipped only damage or holes goes on from after them,
        // so a reader gets the records beyond (bounded: damage is rare).
        let mut from = from;
        for _ in 0..64 {
            let batch = self.read_once(shard, from, limits)?;
            if !batch.records.is_empty() || batch.next_position <= from {
                return Ok(batch);
            }
            from = batch.next_position;
        }
        Ok(ReadBatch {
            records: Vec::new(),
            next_position: from,
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
        match self.load(&*file, &FrameRef { seg: span.seg, e }) {
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
            // The segment first: an index without its segment is ignored,
            // a sealed segment without its index would be rebuilt.
            if let Err(e) = self.fs.remove_file(&segment::seg_path(&self.dir, seq)) {
                tracing::warn!(dir = %self.dir.display(), seq, error = %e, "could not delete an expired segment");
            }
            let _ = self.fs.remove_file(&segment::idx_path(&self.dir, seq));
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

#[cfg(test)]
mod power;

#[cfg(test)]
mod fsck_tests;
