//! Corruption: readers get past damage; `fsck` finds it exactly; `repair
//! --quarantine` moves it out durably, keeps every other record's offset,
//! and is idempotent. On `SimFs`, so a power loss right after a repair shows
//! that everything it did was synced.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use riffle_fs::sim::{CrashMode, SimFs};
use riffle_fs::OpenMode;

use super::fsck::{self, Attribution, Damage, IndexState, Lost, RepairOptions};
use super::*;
use crate::conformance::ALL;

const ROOT: &str = "/data/streams";
const QROOT: &str = "/data/quarantine";
const LOG: LogId = 7;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn dir() -> PathBuf {
    Path::new(ROOT).join(format!("{LOG:016x}"))
}

fn qdir() -> PathBuf {
    Path::new(QROOT).join(format!("{LOG:016x}"))
}

fn open(fs: &SimFs, segment_bytes: u64) -> Arc<DiskEngine> {
    DiskEngine::open_with(
        Arc::new(fs.clone()),
        ROOT,
        DiskConfig {
            segment_bytes,
            ..DiskConfig::default()
        },
    )
    .unwrap()
}

/// Writes `n` single-record cycles alternating between shards 0 and 1, so
/// every frame is a cycle of its own; returns (shard, offset, data) of each.
fn write(fs: &SimFs, segment_bytes: u64, n: u8) -> Vec<(u32, u64, Vec<u8>)> {
    let rt = rt();
    let e = open(fs, segment_bytes);
    let log = e.open(LOG).unwrap();
    let mut out = Vec::new();
    rt.block_on(async {
        for i in 0..n {
            let shard = u32::from(i % 2);
            let data = vec![i; 40];
            let a = log
                .append(
                    vec![NewRecord {
                        shard,
                        partition_key: format!("pk{i}"),
                        data: Bytes::from(data.clone()),
                    }],
                    1000 + i64::from(i),
                )
                .unwrap();
            out.push((shard, a.offsets[0], data));
            a.durable.await.unwrap();
        }
    });
    out.sort();
    out
}

/// Every record of shards 0 and 1, as (shard, offset, data).
fn read_all(e: &Arc<DiskEngine>) -> Vec<(u32, u64, Vec<u8>)> {
    let log = e.open(LOG).unwrap();
    let mut out = Vec::new();
    for shard in 0..2 {
        // Small reads too: each must get past the damage on its own.
        let mut from = 0;
        loop {
            let b = log
                .read(
                    shard,
                    from,
                    ReadLimits {
                        max_records: 1,
                        max_bytes: usize::MAX,
                    },
                )
                .unwrap();
            if b.records.is_empty() {
                break;
            }
            from = b.next_position;
            out.extend(
                b.records
                    .into_iter()
                    .map(|r| (shard, r.offset, r.data.to_vec())),
            );
        }
        let whole: Vec<_> = log
            .read(shard, 0, ALL)
            .unwrap()
            .records
            .into_iter()
            .map(|r| (shard, r.offset, r.data.to_vec()))
            .collect();
        let piecewise: Vec<_> = out.iter().filter(|r| r.0 == shard).cloned().collect();
        assert_eq!(whole, piecewise);
    }
    out.sort();
    out
}

/// Flips one bit at `pos` of a segment, durably (bit rot).
fn flip(fs: &SimFs, seq: u64, pos: u64) {
    let f = fs
        .open(&segment::seg_path(&dir(), seq), OpenMode::Existing)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, pos).unwrap();
    b[0] ^= 0x08;
    f.write_all_at(&b, pos).unwrap();
    f.sync_data().unwrap();
}

/// Every file under `root` with its bytes.
fn snapshot(fs: &SimFs, root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let Ok(names) = fs.read_dir(root) else {
        return out;
    };
    for n in names {
        let p = root.join(n);
        if fs.read_dir(&p).is_ok() {
            out.extend(snapshot(fs, &p));
        } else {
            out.insert(p.clone(), fs.read(&p).unwrap());
        }
    }
    out
}

fn repair(fs: &SimFs, quarantine: bool) -> fsck::RepairOutcome {
    fsck::repair_log(
        fs,
        &dir(),
        &RepairOptions {
            quarantine: quarantine.then(qdir),
            stream: Some("orders".into()),
            now_ms: 5,
        },
    )
    .unwrap()
}

/// The whole story for one damaged frame: check, read past, repair, check,
/// survive a power loss, read again, repair again (nothing), append.
fn damaged_frame_story(
    segment_bytes: u64,
    n: u8,
    pick: impl Fn(&SimFs) -> (u64, Entry),
    attribution: Attribution,
) {
    let fs = SimFs::new(1);
    let written = write(&fs, segment_bytes, n);
    let (seq, victim) = pick(&fs);
    assert!(!victim.corrupt && victim.count == 1);
    flip(&fs, seq, victim.pos + frame::HEADER as u64 + 3);
    let lost: Vec<_> = written
        .iter()
        .filter(|r| r.0 == victim.shard && r.1 == victim.first_offset)
        .cloned()
        .collect();
    let survivors: Vec<_> = written
        .iter()
        .filter(|r| !lost.contains(r))
        .cloned()
        .collect();
    assert_eq!(lost.len(), 1);

    // fsck names exactly that range.
    let report = fsck::check_log(&fs, &dir()).unwrap();
    assert!(!report.is_clean());
    let damaged: Vec<_> = report.damaged().map(|(s, d)| (s.seq, d.clone())).collect();
    assert_eq!(
        damaged,
        vec![(
            seq,
            Damage {
                start: victim.pos,
                end: victim.end_pos(),
                lost: Some(Lost {
                    shard: victim.shard,
                    first_offset: victim.first_offset,
                    count: 1,
                    base_arrival: victim.base_arrival,
                }),
                attribution,
            }
        )]
    );

    // Readers get every other record, the damaged one skipped and counted.
    {
        let e = open(&fs, segment_bytes);
        assert_eq!(read_all(&e), survivors);
        assert_eq!(read_all(&e), survivors);
        assert_eq!(e.stats.skipped_corrupt_records.load(Ordering::Relaxed), 1);
        assert_eq!(
            e.stats.skipped_by_log(),
            vec![(LOG, 1, u64::from(victim.size))]
        );
    }

    // Without --quarantine the damage stays (and is said to).
    let before = snapshot(&fs, Path::new("/data"));
    let out = repair(&fs, false);
    assert_eq!(out.left.len(), 1, "{out:?}");
    assert_eq!(snapshot(&fs, Path::new("/data")), before);

    // --quarantine: the bytes and a note move out; the log checks clean,
    // even after a power loss right after the repair.
    let original = before[&segment::seg_path(&dir(), seq)]
        [victim.pos as usize..victim.end_pos() as usize]
        .to_vec();
    let out = repair(&fs, true);
    assert!(out.left.is_empty(), "{out:?}");
    fs.crash(CrashMode::DropAll);
    fs.reboot();
    let report = fsck::check_log(&fs, &dir()).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.segments.iter().map(|s| s.holes).sum::<u64>(), 1);
    let stem = qdir().join(format!("{seq:016x}-{}", victim.pos));
    assert_eq!(fs.read(&stem.with_extension("bin")).unwrap(), original);
    let note = String::from_utf8(fs.read(&stem.with_extension("json")).unwrap()).unwrap();
    for want in [
        format!("\"first_offset\": {}", victim.first_offset),
        format!("\"shard\": {}", victim.shard),
        "\"count\": 1".to_string(),
        "\"stream\": \"orders\"".to_string(),
        format!("\"byte_start\": {}", victim.pos),
    ] {
        assert!(note.contains(&want), "{want} not in {note}");
    }

    // Records after the damage keep their offsets; the hole is skipped
    // silently; new records continue the numbering.
    {
        let rt = rt();
        let e = open(&fs, segment_bytes);
        assert_eq!(read_all(&e), survivors);
        assert_eq!(e.stats.skipped_corrupt_records.load(Ordering::Relaxed), 0);
        assert_eq!(e.stats.corrupt_frames.load(Ordering::Relaxed), 0);
        let log = e.open(LOG).unwrap();
        let next = written
            .iter()
            .filter(|r| r.0 == victim.shard)
            .map(|r| r.1)
            .max()
            .unwrap()
            + 1;
        assert_eq!(log.next_offset(victim.shard), next);
        rt.block_on(async {
            let a = log
                .append(
                    vec![NewRecord {
                        shard: victim.shard,
                        partition_key: "late".into(),
                        data: Bytes::from_static(b"late"),
                    }],
                    9999,
                )
                .unwrap();
            assert_eq!(a.offsets, vec![next]);
            a.durable.await.unwrap();
        });
    }

    // Repair is idempotent: a second run changes nothing.
    let before = snapshot(&fs, Path::new("/data"));
    let out = repair(&fs, true);
    assert!(out.actions.is_empty() && out.left.is_empty(), "{out:?}");
    assert_eq!(snapshot(&fs, Path::new("/data")), before);
    assert!(fsck::check_log(&fs, &dir()).unwrap().is_clean());
}

#[test]
fn damage_in_a_sealed_segment() {
    damaged_frame_story(
        300,
        24,
        |fs| {
            let seqs = segment::list(fs, &dir()).unwrap();
            assert!(seqs.len() >= 3, "{seqs:?}");
            let ix = segment::read_index(fs, &dir(), seqs[1]).unwrap().unwrap();
            assert!(ix.len() >= 3);
            (seqs[1], ix[ix.len() / 2])
        },
        Attribution::Index,
    );
}

#[test]
fn damage_in_the_last_frame_of_a_sealed_segment() {
    damaged_frame_story(
        300,
        24,
        |fs| {
            let seqs = segment::list(fs, &dir()).unwrap();
            let ix = segment::read_index(fs, &dir(), seqs[0]).unwrap().unwrap();
            (seqs[0], *ix.last().unwrap())
        },
        Attribution::Index,
    );
}

#[test]
fn damage_in_the_active_segment() {
    damaged_frame_story(
        1 << 20,
        8,
        |fs| {
            let seg = segment::seg_path(&dir(), 1);
            let f = fs.open(&seg, OpenMode::Existing).unwrap();
            let scan = segment::scan(&*f, f.len().unwrap(), true).unwrap();
            assert_eq!(scan.entries.len(), 8);
            (1, scan.entries[3])
        },
        Attribution::Header,
    );
}

/// A damaged index file is rebuilt by repair (with or without quarantine),
/// and the rebuilt one matches what the engine wrote.
#[test]
fn repair_rebuilds_damaged_and_missing_indexes() {
    let fs = SimFs::new(2);
    write(&fs, 300, 16);
    let idx1 = segment::idx_path(&dir(), 1);
    let idx2 = segment::idx_path(&dir(), 2);
    let good1 = fs.read(&idx1).unwrap();
    let good2 = fs.read(&idx2).unwrap();
    let f = fs.open(&idx1, OpenMode::Existing).unwrap();
    f.write_all_at(&[0xff], 20).unwrap();
    f.sync_data().unwrap();
    fs.remove_file(&idx2).unwrap();
    fs.sync_dir(&dir()).unwrap();
    let report = fsck::check_log(&fs, &dir()).unwrap();
    assert_eq!(report.segments[0].index, IndexState::Damaged);
    assert_eq!(report.segments[1].index, IndexState::Missing);
    assert_eq!(report.damaged().count(), 0);
    assert!(!report.is_clean());
    let out = repair(&fs, false);
    assert_eq!(out.actions.len(), 2, "{out:?}");
    fs.crash(CrashMode::DropAll);
    fs.reboot();
    assert!(fsck::check_log(&fs, &dir()).unwrap().is_clean());
    assert_eq!(fs.read(&idx1).unwrap(), good1);
    assert_eq!(fs.read(&idx2).unwrap(), good2);
}

/// A clean log (several sealed segments and an active one) is left byte
/// for byte as it was, and nothing is quarantined.
#[test]
fn a_clean_log_is_untouched_by_repair() {
    let fs = SimFs::new(3);
    write(&fs, 300, 30);
    let report = fsck::check_log(&fs, &dir()).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert!(report.segments.len() >= 3);
    assert_eq!(report.segments.iter().map(|s| s.records).sum::<u64>(), 30);
    let before = snapshot(&fs, Path::new("/data"));
    let out = repair(&fs, true);
    assert!(out.actions.is_empty() && out.left.is_empty(), "{out:?}");
    assert_eq!(snapshot(&fs, Path::new("/data")), before);
    assert!(!fs.exists(Path::new(QROOT)));
}

/// A damaged frame whose header is destroyed cannot be attributed: fsck
/// says so, readers are not wedged, and the hole repair writes names no
/// records (every other offset stays).
#[test]
fn damage_with_a_destroyed_header() {
    let fs = SimFs::new(4);
    let written = write(&fs, 1 << 20, 8);
    let seg = segment::seg_path(&dir(), 1);
    let f = fs.open(&seg, OpenMode::Existing).unwrap();
    let scan = segment::scan(&*f, f.len().unwrap(), true).unwrap();
    let victim = scan.entries[2];
    // The shard field: the header no longer continues its shard.
    f.write_all_at(&[0x55], victim.pos + 13).unwrap();
    f.sync_data().unwrap();
    let report = fsck::check_log(&fs, &dir()).unwrap();
    let damaged: Vec<_> = report.damaged().map(|(_, d)| d.clone()).collect();
    assert_eq!(
        damaged,
        vec![Damage {
            start: victim.pos,
            end: victim.end_pos(),
            lost: None,
            attribution: Attribution::Unknown,
        }]
    );
    let survivors: Vec<_> = written
        .iter()
        .filter(|r| !(r.0 == victim.shard && r.1 == victim.first_offset))
        .cloned()
        .collect();
    assert_eq!(read_all(&open(&fs, 1 << 20)), survivors);
    repair(&fs, true);
    assert!(fsck::check_log(&fs, &dir()).unwrap().is_clean());
    assert_eq!(read_all(&open(&fs, 1 << 20)), survivors);
    // The engine seals the repaired segment with its unattributed hole in
    // the index: still clean.
    let more = write(&fs, 300, 12);
    let report = fsck::check_log(&fs, &dir()).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.segments[0].index, IndexState::Ok);
    assert_eq!(report.segments[0].holes, 1);
    let mut all = survivors.clone();
    all.extend(more);
    all.sort();
    assert_eq!(read_all(&open(&fs, 300)), all);
}

/// A repair stopped after writing a hole but before rewriting the index:
/// readers still skip the range, fsck asks for the index, repair finishes.
#[test]
fn a_repair_stopped_before_the_index_is_finished_later() {
    let fs = SimFs::new(5);
    let written = write(&fs, 300, 16);
    let ix = segment::read_index(&fs, &dir(), 2).unwrap().unwrap();
    let victim = ix[1];
    let stale = fs.read(&segment::idx_path(&dir(), 2)).unwrap();
    flip(&fs, 2, victim.pos + 40);
    repair(&fs, true);
    // Put the old index back, as if the rename had not happened.
    let f = fs
        .open(&segment::idx_path(&dir(), 2), OpenMode::Truncate)
        .unwrap();
    f.write_all_at(&stale, 0).unwrap();
    f.sync_all().unwrap();
    let report = fsck::check_log(&fs, &dir()).unwrap();
    assert_eq!(report.damaged().count(), 0);
    assert_eq!(report.segments[1].index, IndexState::Mismatched);
    let survivors: Vec<_> = written
        .iter()
        .filter(|r| !(r.0 == victim.shard && r.1 == victim.first_offset))
        .cloned()
        .collect();
    assert_eq!(read_all(&open(&fs, 300)), survivors);
    let out = repair(&fs, false);
    assert_eq!(out.actions.len(), 1, "{out:?}");
    assert!(fsck::check_log(&fs, &dir()).unwrap().is_clean());
    assert_eq!(read_all(&open(&fs, 300)), survivors);
}
