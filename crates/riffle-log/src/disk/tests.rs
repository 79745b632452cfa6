//! The disk engine: conformance, recovery, torn tails, corruption.

use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;

use riffle_fs::OpenMode;

use super::*;
use crate::conformance::{self, ALL};

fn segs_in(dir: &Path) -> io::Result<Vec<u64>> {
    segment::list(&RealFs, dir)
}

fn index_of(dir: &Path, seq: u64) -> Option<Vec<Entry>> {
    segment::read_index(&RealFs, dir, seq).ok().flatten()
}

fn engine(dir: &Path, segment_bytes: u64) -> Arc<DiskEngine> {
    DiskEngine::open(
        dir,
        DiskConfig {
            segment_bytes,
            ..DiskConfig::default()
        },
    )
    .unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn rec(shard: u32, data: &[u8]) -> NewRecord {
    NewRecord {
        shard,
        partition_key: format!("k{}", data.len()),
        data: Bytes::copy_from_slice(data),
    }
}

async fn put(log: &Arc<dyn StreamLog>, recs: Vec<NewRecord>, now: i64) -> Vec<u64> {
    let a = log.append(recs, now).unwrap();
    let o = a.offsets.clone();
    a.durable.await.unwrap();
    o
}

fn data_of(log: &Arc<dyn StreamLog>, shard: u32) -> Vec<(u64, Vec<u8>)> {
    log.read(shard, 0, ALL)
        .unwrap()
        .records
        .into_iter()
        .map(|r| (r.offset, r.data.to_vec()))
        .collect()
}

#[test]
fn conforms() {
    let rt = rt();
    let d = tempfile::tempdir().unwrap();
    rt.block_on(conformance::offsets_and_reads(engine(d.path(), 1 << 20)));
    rt.block_on(conformance::seek_by_time(engine(d.path(), 1 << 20)));
    rt.block_on(conformance::trim_keeps_newer(engine(d.path(), 1024)));
    rt.block_on(conformance::remove_forgets(engine(d.path(), 1 << 20)));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]
    #[test]
    fn matches_the_reference_model(ops in conformance::ops(), seg in 200u64..5000) {
        let d = tempfile::tempdir().unwrap();
        rt().block_on(conformance::model_check(engine(d.path(), seg), ops));
    }
}

#[test]
fn recovers_everything_acknowledged_across_segments() {
    let rt = rt();
    let d = tempfile::tempdir().unwrap();
    let want: Vec<(u64, Vec<u8>)> = rt.block_on(async {
        let e = engine(d.path(), 2048);
        let log = e.open(1).unwrap();
        let mut want = Vec::new();
        for i in 0..100u32 {
            let data = vec![i as u8; (i as usize * 7) % 300];
            let o = put(
                &log,
                vec![rec(0, &data), rec(1, b"other")],
                1000 + i64::from(i),
            )
            .await;
            want.push((o[0], data));
        }
        want
    });
    let segs = segs_in(&d.path().join(format!("{:016x}", 1))).unwrap();
    assert!(
        segs.len() > 5,
        "expected several segments, got {}",
        segs.len()
    );
    // A fresh engine on the same directory sees the same log.
    let e = engine(d.path(), 2048);
    let log = e.open(1).unwrap();
    assert_eq!(data_of(&log, 0), want);
    assert_eq!(data_of(&log, 1).len(), 100);
    assert_eq!((log.next_offset(0), log.next_offset(1)), (101, 101));
    // Deleted index files are rebuilt from the segments.
    for seq in &segs {
        let _ = std::fs::remove_file(segment::idx_path(
            &d.path().join(format!("{:016x}", 1)),
            *seq,
        ));
    }
    drop(log);
    drop(e);
    let e = engine(d.path(), 2048);
    let log = e.open(1).unwrap();
    assert_eq!(data_of(&log, 0), want);
    assert!(index_of(&d.path().join(format!("{:016x}", 1)), segs[0]).is_some());
}

/// Cutting the active segment at every byte of its last frame keeps exactly
/// the frames before it.
#[test]
fn torn_tail_at_every_offset_keeps_the_frames_before() {
    let rt = rt();
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join(format!("{:016x}", 1));
    rt.block_on(async {
        let e = engine(d.path(), 1 << 30);
        let log = e.open(1).unwrap();
        put(&log, vec![rec(0, b"first"), rec(0, b"second")], 10).await;
        put(&log, vec![rec(0, &[7u8; 120])], 20).await;
    });
    let seg = segment::seg_path(&dir, 1);
    let full = std::fs::read(&seg).unwrap();
    let last_frame_start = {
        let f = RealFs.open(&seg, OpenMode::Existing).unwrap();
        let s = segment::scan(&*f, full.len() as u64, true).unwrap();
        assert_eq!(s.entries.len(), 2);
        s.entries[1].pos as usize
    };
    for cut in last_frame_start..full.len() {
        std::fs::write(&seg, &full[..cut]).unwrap();
        let e = engine(d.path(), 1 << 30);
        let log = e.open(1).unwrap();
        assert_eq!(
            data_of(&log, 0),
            vec![(1, b"first".to_vec()), (2, b"second".to_vec())],
            "cut at {cut}"
        );
        assert_eq!(
            std::fs::metadata(&seg).unwrap().len() as usize,
            last_frame_start
        );
        // The log goes on from there.
        let o = rt.block_on(put(&log, vec![rec(0, b"after")], 30));
        assert_eq!(o, vec![3]);
        assert_eq!(data_of(&log, 0).last().unwrap(), &(3, b"after".to_vec()));
    }
}

#[test]
fn bit_flips_in_the_tail_truncate_and_mid_log_are_reported() {
    let rt = rt();
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join(format!("{:016x}", 1));
    rt.block_on(async {
        let e = engine(d.path(), 1 << 30);
        let log = e.open(1).unwrap();
        for i in 0..3u8 {
            put(&log, vec![rec(0, &[i; 50])], 10).await;
        }
    });
    let seg = segment::seg_path(&dir, 1);
    let full = std::fs::read(&seg).unwrap();
    let entries = segment::scan(
        &*RealFs.open(&seg, OpenMode::Existing).unwrap(),
        full.len() as u64,
        true,
    )
    .unwrap()
    .entries;
    // Tail: a flip in the last frame's data drops that frame.
    let mut bad = full.clone();
    bad[entries[2].pos as usize + 40] ^= 1;
    std::fs::write(&seg, &bad).unwrap();
    {
        let e = engine(d.path(), 1 << 30);
        let log = e.open(1).unwrap();
        assert_eq!(data_of(&log, 0), vec![(1, vec![0; 50]), (2, vec![1; 50])]);
        assert_eq!(
            e.stats.torn_bytes_truncated.load(Ordering::Relaxed),
            u64::from(entries[2].size)
        );
    }
    // Mid-log: a flip in the first frame is reported, never served as data:
    // readers skip its records (counted once) and get the ones after it.
    let mut bad = full.clone();
    bad[entries[0].pos as usize + 40] ^= 1;
    std::fs::write(&seg, &bad).unwrap();
    let e = engine(d.path(), 1 << 30);
    let log = e.open(1).unwrap();
    assert_eq!(e.stats.corrupt_frames.load(Ordering::Relaxed), 1);
    for _ in 0..2 {
        assert_eq!(data_of(&log, 0), vec![(2, vec![1; 50]), (3, vec![2; 50])]);
    }
    assert_eq!(e.stats.skipped_corrupt_records.load(Ordering::Relaxed), 1);
    assert_eq!(
        e.stats.skipped_by_log(),
        vec![(1, 1, u64::from(entries[0].size))]
    );
    // A reader positioned in it continues after it.
    let b = log.read(0, 1, conformance::ALL).unwrap();
    assert_eq!(b.records[0].offset, 2);
    assert_eq!(b.next_position, 4);
}

#[test]
fn offsets_survive_retention_deleting_every_frame() {
    let rt = rt();
    let d = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let e = engine(d.path(), 256);
        let log = e.open(1).unwrap();
        for i in 0..20 {
            put(&log, vec![rec(3, &[1; 100])], i).await;
        }
        put(&log, vec![rec(4, b"x")], 1000).await;
        log.trim(1000);
        assert!(data_of(&log, 3).is_empty());
    });
    let e = engine(d.path(), 256);
    let log = e.open(1).unwrap();
    assert_eq!(log.next_offset(3), 21);
}

#[test]
fn concurrent_appends_group_commit() {
    let rt = rt();
    let d = tempfile::tempdir().unwrap();
    let e = engine(d.path(), 1 << 30);
    let log = e.open(1).unwrap();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for w in 0..8u8 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..50u8 {
                    put(&log, vec![rec(u32::from(w % 2), &[w, i])], 1).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    assert_eq!(data_of(&log, 0).len() + data_of(&log, 1).len(), 400);
    let syncs = e.stats.syncs.load(Ordering::Relaxed);
    assert!(syncs < 400, "group commit should share syncs, got {syncs}");
}

#[test]
fn interval_and_none_modes_sync_as_documented() {
    let rt = rt();
    let d = tempfile::tempdir().unwrap();
    let e = DiskEngine::open(
        d.path(),
        DiskConfig {
            durability: Durability::Interval,
            sync_interval: Duration::from_millis(20),
            ..DiskConfig::default()
        },
    )
    .unwrap();
    let log = e.open(1).unwrap();
    rt.block_on(async {
        for i in 0..10u8 {
            put(&log, vec![rec(0, &[i])], 1).await;
        }
    });
    // Acknowledged without a sync per cycle; the flusher syncs soon after.
    assert_eq!(e.stats.syncs.load(Ordering::Relaxed), 0);
    std::thread::sleep(Duration::from_millis(200));
    assert!(e.stats.syncs.load(Ordering::Relaxed) >= 1);
    // `none` never syncs, even later.
    log.set_durability(Durability::None);
    let before = e.stats.syncs.load(Ordering::Relaxed);
    rt.block_on(put(&log, vec![rec(0, b"x")], 1));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(e.stats.syncs.load(Ordering::Relaxed), before);
    // Back to fsync: one sync per cycle.
    log.set_durability(Durability::Fsync);
    rt.block_on(put(&log, vec![rec(0, b"y")], 1));
    assert_eq!(e.stats.syncs.load(Ordering::Relaxed), before + 1);
    assert_eq!(data_of(&log, 0).len(), 12);
}

/// A roll that was cut short after sealing (index written, next segment
/// missing or header-less) loses nothing, now or after the next roll.
#[test]
fn interrupted_roll_keeps_the_sealed_segment() {
    let rt = rt();
    for damage in ["missing", "empty"] {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join(format!("{:016x}", 1));
        let want: Vec<(u64, Vec<u8>)> = rt.block_on(async {
            let e = engine(d.path(), 300);
            let log = e.open(1).unwrap();
            let mut want = Vec::new();
            for i in 0..6u8 {
                let o = put(&log, vec![rec(0, &[i; 120])], 1).await;
                want.push((o[0], vec![i; 120]));
            }
            want
        });
        let segs = segs_in(&dir).unwrap();
        let newest = *segs.last().unwrap();
        let sealed = segs[segs.len() - 2];
        assert!(index_of(&dir, sealed).is_some());
        // Undo the newest segment as if the crash came during its creation,
        // with everything after the sealed one gone.
        for seq in segs.iter().filter(|s| **s > sealed) {
            std::fs::remove_file(segment::seg_path(&dir, *seq)).unwrap();
        }
        let _ = newest;
        if damage == "empty" {
            std::fs::write(segment::seg_path(&dir, sealed + 1), b"").unwrap();
        }
        let kept: Vec<(u64, Vec<u8>)> = want
            .iter()
            .filter(|(o, _)| {
                // Records in deleted segments are gone with them; the sealed
                // segment's records must all be there.
                *o <= index_of(&dir, sealed)
                    .unwrap()
                    .iter()
                    .map(|e| e.first_offset + u64::from(e.count) - 1)
                    .max()
                    .unwrap()
            })
            .cloned()
            .collect();
        let e = engine(d.path(), 300);
        let log = e.open(1).unwrap();
        assert_eq!(data_of(&log, 0), kept, "{damage}");
        // Writing on (and rolling) keeps the sealed segment's index intact.
        rt.block_on(async {
            for i in 0..4u8 {
                put(&log, vec![rec(0, &[100 + i; 120])], 2).await;
            }
        });
        drop(log);
        drop(e);
        let e = engine(d.path(), 300);
        let log = e.open(1).unwrap();
        let got = data_of(&log, 0);
        assert_eq!(&got[..kept.len()], &kept[..], "{damage}");
        assert_eq!(got.len(), kept.len() + 4);
    }
}

/// A damaged length field mid-log: the frames after it are still found.
#[test]
fn corrupt_length_mid_log_keeps_later_frames() {
    let rt = rt();
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join(format!("{:016x}", 1));
    rt.block_on(async {
        let e = engine(d.path(), 1 << 30);
        let log = e.open(1).unwrap();
        for i in 0..3u8 {
            put(&log, vec![rec(0, &[i; 50])], 10).await;
        }
    });
    let seg = segment::seg_path(&dir, 1);
    let mut bytes = std::fs::read(&seg).unwrap();
    let first = segment::SEG_HEADER as usize;
    bytes[first] ^= 0x40; // the length field of the first frame
    std::fs::write(&seg, &bytes).unwrap();
    let e = engine(d.path(), 1 << 30);
    let log = e.open(1).unwrap();
    assert_eq!(e.stats.torn_bytes_truncated.load(Ordering::Relaxed), 0);
    assert_eq!(
        log.read(0, 0, ALL)
            .unwrap()
            .records
            .iter()
            .map(|r| (r.offset, r.data.to_vec()))
            .collect::<Vec<_>>(),
        vec![(2, vec![1; 50]), (3, vec![2; 50])]
    );
}

#[test]
fn frames_stop_growing_below_the_reader_limit() {
    let mut c = Cycle::new();
    let big = Bytes::from(vec![0u8; 6 * 1024 * 1024]);
    for i in 0..4 {
        c.add(3, 10 + i, 1, "k".into(), big.clone());
    }
    c.add(4, 1, 1, "k".into(), Bytes::from_static(b"x"));
    let shape: Vec<_> = c
        .frames
        .iter()
        .map(|f| (f.shard, f.first_offset, f.records.len()))
        .collect();
    assert_eq!(shape, vec![(3, 10, 2), (3, 12, 2), (4, 1, 1)]);
    assert!(c.frames.iter().all(|f| f.bytes <= FRAME_TARGET));
}

/// A file system that holds every operation under one directory until it
/// is let go, to show who waits for a log's I/O.
#[derive(Debug)]
struct Held {
    inner: riffle_fs::sim::SimFs,
    under: PathBuf,
    /// (held, operations waiting)
    state: Arc<(std::sync::Mutex<(bool, u32)>, std::sync::Condvar)>,
}

impl Held {
    fn wait(&self, path: &Path) {
        if !path.starts_with(&self.under) {
            return;
        }
        let (m, cv) = &*self.state;
        let mut g = m.lock().unwrap();
        g.1 += 1;
        cv.notify_all();
        while g.0 {
            g = cv.wait(g).unwrap();
        }
    }
}

impl riffle_fs::Fs for Held {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn riffle_fs::FsFile>> {
        self.wait(path);
        self.inner.open(path, mode)
    }
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        self.wait(path);
        self.inner.create_dir(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.wait(from);
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.wait(path);
        self.inner.remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.wait(path);
        self.inner.remove_dir_all(path)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<std::ffi::OsString>> {
        self.wait(path);
        self.inner.read_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.wait(path);
        self.inner.sync_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }
}

/// Opening (recovering) one log holds no lock other logs need: while the
/// file I/O of log 2's opening is stuck, an open log is found, another log
/// is opened and written, and one is removed. A second opening of log 2
/// waits for the first and gets the same log.
#[test]
fn opening_one_log_blocks_no_other() {
    use std::sync::mpsc;
    let root = PathBuf::from("/data/streams");
    let state = Arc::new((std::sync::Mutex::new((true, 0)), std::sync::Condvar::new()));
    let fs = Held {
        inner: riffle_fs::sim::SimFs::new(1),
        under: root.join(format!("{:016x}", 2)),
        state: state.clone(),
    };
    let engine = DiskEngine::open_with(Arc::new(fs), &root, DiskConfig::default()).unwrap();
    let one = engine.open(1).unwrap();
    engine.open(4).unwrap();
    let opening: Vec<_> = (0..2)
        .map(|_| {
            let e = engine.clone();
            std::thread::spawn(move || e.open(2).unwrap())
        })
        .collect();
    {
        let (m, cv) = &*state;
        let g = m.lock().unwrap();
        let _g = cv
            .wait_timeout_while(g, Duration::from_secs(10), |g| g.1 == 0)
            .unwrap();
    }
    let (tx, rx) = mpsc::channel();
    let e = engine.clone();
    std::thread::spawn(move || {
        let found = e.open(1).unwrap();
        let three = e.open(3).unwrap();
        let rt = rt();
        let offsets = rt.block_on(put(&three, vec![rec(0, b"three")], 1));
        e.remove(4).unwrap();
        tx.send((found, offsets)).unwrap();
    });
    let (found, offsets) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("other logs waited for log 2's opening");
    assert!(Arc::ptr_eq(&found, &one));
    assert_eq!(offsets, vec![1]);
    {
        let (m, cv) = &*state;
        m.lock().unwrap().0 = false;
        cv.notify_all();
    }
    let twos: Vec<_> = opening.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(Arc::ptr_eq(&twos[0], &twos[1]), "log 2 was opened twice");
}
