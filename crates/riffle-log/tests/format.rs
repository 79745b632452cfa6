//! Data written in every format version (see `design.md`) stays readable:
//! logs committed under `tests/fixtures/v1/` and `tests/fixtures/v2/` are
//! opened and read back.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use riffle_log::disk::{DiskConfig, DiskEngine};
use riffle_log::{LogEngine, NewRecord, ReadLimits};

const LOG_ID: u64 = 0x5249_4646;
const ALL: ReadLimits = ReadLimits {
    max_records: usize::MAX,
    max_bytes: usize::MAX,
};

fn fixture() -> PathBuf {
    fixture_v(1)
}

fn fixture_v(version: u32) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/v{version}"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The records of the fixture: (shard, key, data, arrival ms).
fn expected() -> Vec<(u32, String, Vec<u8>, i64)> {
    (0..12u32)
        .map(|i| {
            (
                i % 2,
                format!("key-{i}"),
                format!("record {i} é").into_bytes(),
                1_700_000_000_000 + i64::from(i) * 10,
            )
        })
        .collect()
}

#[test]
fn reads_format_v1() {
    reads_format(1);
}

#[test]
fn reads_format_v2() {
    reads_format(2);
}

fn reads_format(version: u32) {
    let d = tempfile::tempdir().unwrap();
    copy_dir(&fixture_v(version), d.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let engine = DiskEngine::open(
            d.path(),
            DiskConfig {
                segment_bytes: 200,
                ..DiskConfig::default()
            },
        )
        .unwrap();
        let log = engine.open(LOG_ID).unwrap();
        for shard in 0..2 {
            let got: Vec<_> = log
                .read(shard, 0, ALL)
                .unwrap()
                .records
                .into_iter()
                .map(|r| (r.offset, r.partition_key, r.data.to_vec(), r.arrival_ms))
                .collect();
            let want: Vec<_> = expected()
                .into_iter()
                .filter(|r| r.0 == shard)
                .enumerate()
                .map(|(i, (_, k, d, t))| (i as u64 + 1, k, d, t))
                .collect();
            assert_eq!(got, want);
            assert_eq!(log.next_offset(shard), 7);
        }
        assert!(
            std::fs::read_dir(d.path().join(format!("{LOG_ID:016x}")))
                .unwrap()
                .count()
                >= 4
        );
    });
}

/// Writes the fixture of the current format version (never regenerate an
/// older one: it pins data written by older code):
/// `cargo test -p riffle-log --test format -- --ignored`.
#[test]
#[ignore]
fn write_fixture() {
    let dir = fixture_v(riffle_log::disk::segment::VERSION);
    let _ = std::fs::remove_dir_all(&dir);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let engine = DiskEngine::open(
            &dir,
            DiskConfig {
                segment_bytes: 200,
                ..DiskConfig::default()
            },
        )
        .unwrap();
        let log = engine.open(LOG_ID).unwrap();
        for (shard, key, data, t) in expected() {
            let a = log
                .append(
                    vec![NewRecord {
                        shard,
                        partition_key: key,
                        data: Bytes::from(data),
                    }],
                    t,
                )
                .unwrap();
            a.durable.await.unwrap();
        }
    });
}

/// A log in format 1 goes on in format 2: its last segment is sealed when
/// opened, new records land in a new segment, and both read back.
#[test]
fn format_v1_log_takes_new_records() {
    let d = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), d.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cfg = || DiskConfig {
        segment_bytes: 200,
        ..DiskConfig::default()
    };
    rt.block_on(async {
        let engine = DiskEngine::open(d.path(), cfg()).unwrap();
        let log = engine.open(LOG_ID).unwrap();
        for i in 0..3u8 {
            let a = log
                .append(
                    vec![NewRecord {
                        shard: 0,
                        partition_key: "new".into(),
                        data: Bytes::from(vec![i; 10]),
                    }],
                    1_800_000_000_000,
                )
                .unwrap();
            assert_eq!(a.offsets, vec![7 + u64::from(i)]);
            a.durable.await.unwrap();
        }
    });
    let engine = DiskEngine::open(d.path(), cfg()).unwrap();
    let log = engine.open(LOG_ID).unwrap();
    let got = log.read(0, 0, ALL).unwrap().records;
    assert_eq!(got.len(), 9);
    assert_eq!(got[8].data.as_ref(), &[2u8; 10]);
    assert_eq!(log.read(1, 0, ALL).unwrap().records.len(), 6);
    // The new segments are in format 2.
    let dir = d.path().join(format!("{LOG_ID:016x}"));
    let mut versions: Vec<u32> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .map(|p| {
            let b = std::fs::read(p).unwrap();
            u32::from_le_bytes(b[8..12].try_into().unwrap())
        })
        .collect();
    versions.sort_unstable();
    assert_eq!(versions.first(), Some(&1));
    assert_eq!(versions.last(), Some(&2));
}

/// `fsck` finds the logs of both formats clean, and `repair` leaves them
/// byte for byte as they are.
#[test]
fn fixtures_check_clean_and_repair_changes_nothing() {
    use riffle_fs::RealFs;
    use riffle_log::disk::fsck::{self, RepairOptions};
    for version in [1, 2] {
        let d = tempfile::tempdir().unwrap();
        copy_dir(&fixture_v(version), d.path());
        let dir = d.path().join(format!("{LOG_ID:016x}"));
        let report = fsck::check_log(&RealFs, &dir).unwrap();
        assert!(report.is_clean(), "v{version}: {report:?}");
        let records: u64 = report.segments.iter().map(|s| s.records).sum();
        assert_eq!(records, 12, "v{version}");
        let files = |dir: &Path| {
            let mut v: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| {
                    let p = e.unwrap().path();
                    (p.clone(), std::fs::read(p).unwrap())
                })
                .collect();
            v.sort();
            v
        };
        let before = files(&dir);
        let out = fsck::repair_log(
            &RealFs,
            &dir,
            &RepairOptions {
                quarantine: Some(d.path().join("q")),
                ..RepairOptions::default()
            },
        )
        .unwrap();
        assert!(out.actions.is_empty() && out.left.is_empty(), "{out:?}");
        assert_eq!(files(&dir), before);
    }
}
