//! Data written in format version 1 (see `design.md`) stays readable: a log
//! committed under `tests/fixtures/v1/` is opened and read back.

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
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1")
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
    let d = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), d.path());
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

/// Regenerates the fixture: `cargo test -p riffle-log --test format -- --ignored`.
#[test]
#[ignore]
fn write_fixture() {
    let dir = fixture();
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
