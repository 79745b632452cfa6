//! The behaviour every engine must have, as functions an engine's tests call
//! with a factory. [`model_check`] also replays random operations against a
//! plain in-memory reference.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::{LogEngine, NewRecord, ReadLimits, StreamLog};

pub const ALL: ReadLimits = ReadLimits {
    max_records: usize::MAX,
    max_bytes: usize::MAX,
};

fn rec(shard: u32, key: &str, data: &[u8]) -> NewRecord {
    NewRecord {
        shard,
        partition_key: key.to_owned(),
        data: Bytes::copy_from_slice(data),
    }
}

async fn append(log: &Arc<dyn StreamLog>, records: Vec<NewRecord>, now: i64) -> Vec<u64> {
    let a = log.append(records, now).expect("append");
    let offsets = a.offsets.clone();
    a.durable.await.expect("durable");
    offsets
}

fn contents(log: &Arc<dyn StreamLog>, shard: u32) -> Vec<(u64, i64, String, Vec<u8>)> {
    log.read(shard, 0, ALL)
        .expect("read")
        .records
        .into_iter()
        .map(|r| (r.offset, r.arrival_ms, r.partition_key, r.data.to_vec()))
        .collect()
}

/// Offsets count per shard from 1; reads return one shard's records in order
/// with their keys, data and arrival times; limits hold.
pub async fn offsets_and_reads(engine: Arc<dyn LogEngine>) {
    let log = engine.open(7).unwrap();
    assert_eq!((log.next_offset(0), log.settled_offset(0)), (1, 1));
    let a = append(
        &log,
        vec![rec(0, "a", b"1"), rec(1, "b", b"22"), rec(0, "c", b"")],
        1000,
    )
    .await;
    assert_eq!(a, vec![1, 1, 2]);
    let b = append(&log, vec![rec(1, "d", &[0, 255])], 900).await;
    assert_eq!(b, vec![2]);
    assert_eq!(
        contents(&log, 0),
        vec![
            (1, 1000, "a".into(), b"1".to_vec()),
            (2, 1000, "c".into(), vec![])
        ]
    );
    assert_eq!(
        contents(&log, 1),
        vec![
            (1, 1000, "b".into(), b"22".to_vec()),
            (2, 1000, "d".into(), vec![0, 255])
        ]
    );
    assert_eq!((log.next_offset(1), log.settled_offset(1)), (3, 3));
    let r = log.read(1, 2, ALL).unwrap();
    assert_eq!(
        (r.records.len(), r.records[0].offset, r.next_position),
        (1, 2, 3)
    );
    let r = log
        .read(
            1,
            0,
            ReadLimits {
                max_records: 1,
                max_bytes: usize::MAX,
            },
        )
        .unwrap();
    assert_eq!((r.records.len(), r.next_position), (1, 2));
    let r = log
        .read(
            1,
            0,
            ReadLimits {
                max_records: 10,
                max_bytes: 1,
            },
        )
        .unwrap();
    assert_eq!(
        r.records.len(),
        1,
        "the first record is returned whatever its size"
    );
    let r = log.read(9, 5, ALL).unwrap();
    assert_eq!((r.records.len(), r.next_position), (0, 5));
}

/// `seek_time` finds the first record at or after a time.
pub async fn seek_by_time(engine: Arc<dyn LogEngine>) {
    let log = engine.open(8).unwrap();
    append(&log, vec![rec(0, "a", b"1")], 1000).await;
    append(&log, vec![rec(0, "b", b"2"), rec(0, "c", b"3")], 2000).await;
    append(&log, vec![rec(0, "d", b"4")], 3000).await;
    assert_eq!(log.seek_time(0, 0), 1);
    assert_eq!(log.seek_time(0, 1000), 1);
    assert_eq!(log.seek_time(0, 1001), 2);
    assert_eq!(log.seek_time(0, 2500), 4);
    assert_eq!(log.seek_time(0, 3001), 5);
    assert_eq!(log.seek_time(3, 0), 1);
}

/// Trimming never drops a record that arrived at or after the cutoff.
pub async fn trim_keeps_newer(engine: Arc<dyn LogEngine>) {
    let log = engine.open(9).unwrap();
    for t in 0..50 {
        append(&log, vec![rec(0, "k", &[t as u8; 100])], 1000 + t * 1000).await;
    }
    log.trim(26_000);
    let left = contents(&log, 0);
    assert!(left.iter().all(|r| r.0 >= 1));
    let newer: Vec<_> = left.iter().filter(|r| r.1 >= 26_000).map(|r| r.0).collect();
    assert_eq!(newer, (26..=50).collect::<Vec<_>>());
    assert_eq!(log.next_offset(0), 51);
}

/// A removed log is gone; reopening the id starts empty.
pub async fn remove_forgets(engine: Arc<dyn LogEngine>) {
    let log = engine.open(10).unwrap();
    append(&log, vec![rec(0, "k", b"x")], 1).await;
    engine.remove(10).unwrap();
    let again = engine.open(10).unwrap();
    assert_eq!(again.next_offset(0), 1);
    assert!(contents(&again, 0).is_empty());
}

/// One step of a random workload.
#[derive(Debug, Clone)]
pub enum Op {
    Append(Vec<(u32, u8, usize)>),
    Read {
        shard: u32,
        from: u64,
        max_records: usize,
        max_bytes: usize,
    },
}

/// Replays `ops` against the engine and a reference model and compares
/// every read.
pub async fn model_check(engine: Arc<dyn LogEngine>, ops: Vec<Op>) {
    let log = engine.open(11).unwrap();
    let mut model: HashMap<u32, Vec<(String, Vec<u8>)>> = HashMap::new();
    for (t, op) in ops.into_iter().enumerate() {
        match op {
            Op::Append(recs) => {
                let batch: Vec<_> = recs
                    .iter()
                    .map(|&(shard, byte, len)| rec(shard, &format!("k{byte}"), &vec![byte; len]))
                    .collect();
                let offsets = append(&log, batch, t as i64).await;
                for (&(shard, byte, len), offset) in recs.iter().zip(offsets) {
                    let m = model.entry(shard).or_default();
                    m.push((format!("k{byte}"), vec![byte; len]));
                    assert_eq!(offset, m.len() as u64);
                }
            }
            Op::Read {
                shard,
                from,
                max_records,
                max_bytes,
            } => {
                let got = log
                    .read(
                        shard,
                        from,
                        ReadLimits {
                            max_records,
                            max_bytes,
                        },
                    )
                    .unwrap();
                let all = model.get(&shard).cloned().unwrap_or_default();
                let mut want = Vec::new();
                let mut bytes = 0;
                for (i, (k, d)) in all.iter().enumerate() {
                    let offset = i as u64 + 1;
                    if offset < from {
                        continue;
                    }
                    let size = k.len() + d.len();
                    if want.len() >= max_records || (!want.is_empty() && bytes + size > max_bytes) {
                        break;
                    }
                    bytes += size;
                    want.push((offset, k.clone(), d.clone()));
                }
                let got: Vec<_> = got
                    .records
                    .into_iter()
                    .map(|r| (r.offset, r.partition_key, r.data.to_vec()))
                    .collect();
                assert_eq!(got, want);
            }
        }
    }
}

/// A proptest strategy for [`model_check`] workloads.
pub fn ops() -> impl proptest_strategy::Strategy<Value = Vec<Op>> {
    proptest_strategy::ops()
}

#[doc(hidden)]
pub mod proptest_strategy {
    use proptest::prelude::*;
    pub use proptest::strategy::Strategy;

    use super::Op;

    pub fn ops() -> impl Strategy<Value = Vec<Op>> {
        let append =
            prop::collection::vec((0u32..4, any::<u8>(), 0usize..300), 1..40).prop_map(Op::Append);
        let read = (0u32..4, 0u64..60, 1usize..50, 1usize..5000).prop_map(
            |(shard, from, max_records, max_bytes)| Op::Read {
                shard,
                from,
                max_records,
                max_bytes,
            },
        );
        prop::collection::vec(prop_oneof![3 => append, 2 => read], 1..30)
    }
}
