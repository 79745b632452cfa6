//! The in-memory engine: each shard's records in a deque, durable on append.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::{
    Appended, LogEngine, LogError, LogId, NewRecord, ReadBatch, ReadLimits, StoredRecord, StreamLog,
};

/// Keeps every stream log in memory.
#[derive(Default)]
pub struct MemoryEngine {
    logs: Mutex<HashMap<LogId, Arc<MemoryLog>>>,
}

impl MemoryEngine {
    pub fn new() -> Arc<Self> {
        Arc::new(MemoryEngine::default())
    }
}

impl LogEngine for MemoryEngine {
    fn open(&self, id: LogId) -> Result<Arc<dyn StreamLog>, LogError> {
        let mut logs = lock(&self.logs);
        let log = logs
            .entry(id)
            .or_insert_with(|| Arc::new(MemoryLog::new()))
            .clone();
        Ok(log)
    }

    fn remove(&self, id: LogId) -> Result<(), LogError> {
        lock(&self.logs).remove(&id);
        Ok(())
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct ShardLog {
    records: VecDeque<StoredRecord>,
    next_offset: u64,
}

impl Default for ShardLog {
    /// Offsets start at 1.
    fn default() -> Self {
        ShardLog {
            records: VecDeque::new(),
            next_offset: 1,
        }
    }
}

struct Inner {
    shards: HashMap<u32, ShardLog>,
    last_arrival: i64,
    appends: u64,
}

/// One stream's log in memory.
pub struct MemoryLog {
    inner: Mutex<Inner>,
    tip: watch::Sender<u64>,
}

impl MemoryLog {
    fn new() -> Self {
        MemoryLog {
            inner: Mutex::new(Inner {
                shards: HashMap::new(),
                last_arrival: 0,
                appends: 0,
            }),
            tip: watch::channel(0).0,
        }
    }
}

impl StreamLog for MemoryLog {
    fn append(&self, records: Vec<NewRecord>, now_ms: i64) -> Result<Appended, LogError> {
        let mut g = lock(&self.inner);
        let arrival = now_ms.max(g.last_arrival);
        g.last_arrival = arrival;
        let mut offsets = Vec::with_capacity(records.len());
        for r in records {
            let shard = g.shards.entry(r.shard).or_default();
            let offset = shard.next_offset;
            shard.next_offset += 1;
            offsets.push(offset);
            shard.records.push_back(StoredRecord {
                offset,
                shard: r.shard,
                arrival_ms: arrival,
                partition_key: r.partition_key,
                data: r.data,
            });
        }
        g.appends += 1;
        let n = g.appends;
        drop(g);
        self.tip.send_replace(n);
        Ok(Appended {
            offsets,
            arrival_ms: arrival,
            durable: Box::pin(async { Ok(()) }),
        })
    }

    fn read(&self, shard: u32, from: u64, limits: ReadLimits) -> Result<ReadBatch, LogError> {
        let g = lock(&self.inner);
        let Some(q) = g.shards.get(&shard).map(|s| &s.records) else {
            return Ok(ReadBatch {
                records: Vec::new(),
                next_position: from,
            });
        };
        let start = q.partition_point(|r| r.offset < from);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut next = from;
        for r in q.range(start..) {
            let size = r.data.len() + r.partition_key.len();
            if out.len() >= limits.max_records
                || (!out.is_empty() && bytes + size > limits.max_bytes)
            {
                break;
            }
            bytes += size;
            next = r.offset + 1;
            out.push(r.clone());
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
        self.next_offset(shard)
    }

    fn seek_time(&self, shard: u32, ms: i64) -> u64 {
        let g = lock(&self.inner);
        match g.shards.get(&shard) {
            Some(s) => {
                let i = s.records.partition_point(|r| r.arrival_ms < ms);
                s.records.get(i).map_or(s.next_offset, |r| r.offset)
            }
            None => 1,
        }
    }

    fn trim(&self, cutoff_ms: i64) {
        let mut g = lock(&self.inner);
        for s in g.shards.values_mut() {
            while s.records.front().is_some_and(|r| r.arrival_ms < cutoff_ms) {
                s.records.pop_front();
            }
        }
    }

    fn watch(&self) -> watch::Receiver<u64> {
        self.tip.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn rec(shard: u32, data: &'static str) -> NewRecord {
        NewRecord {
            shard,
            partition_key: "pk".into(),
            data: Bytes::from_static(data.as_bytes()),
        }
    }

    const ALL: ReadLimits = ReadLimits {
        max_records: 10_000,
        max_bytes: 10 << 20,
    };

    #[tokio::test]
    async fn offsets_count_per_shard_from_one() {
        let engine = MemoryEngine::new();
        let log = engine.open(1).unwrap();
        let a = log
            .append(vec![rec(0, "a"), rec(1, "b"), rec(0, "c")], 1000)
            .unwrap();
        a.durable.await.unwrap();
        assert_eq!(a.offsets, vec![1, 1, 2]);
        let b = log.append(vec![rec(1, "d")], 900).unwrap();
        assert_eq!((b.offsets, b.arrival_ms), (vec![2], 1000));
        let r = log.read(0, 0, ALL).unwrap();
        let got: Vec<_> = r
            .records
            .iter()
            .map(|r| (r.offset, r.data.clone()))
            .collect();
        assert_eq!(
            got,
            vec![(1, Bytes::from_static(b"a")), (2, Bytes::from_static(b"c"))]
        );
        assert_eq!(r.next_position, 3);
        let r = log.read(1, 2, ALL).unwrap();
        assert_eq!(
            r.records.iter().map(|r| r.offset).collect::<Vec<_>>(),
            vec![2]
        );
        let r = log
            .read(
                1,
                0,
                ReadLimits {
                    max_records: 1,
                    max_bytes: 1,
                },
            )
            .unwrap();
        assert_eq!((r.records.len(), r.next_position), (1, 2));
        assert_eq!(log.seek_time(1, 1000), 1);
        assert_eq!(log.seek_time(1, 1001), 3);
        assert_eq!((log.next_offset(0), log.next_offset(7)), (3, 1));
        log.trim(1001);
        assert_eq!(log.read(0, 0, ALL).unwrap().records, vec![]);
        engine.remove(1).unwrap();
        assert_eq!(engine.open(1).unwrap().next_offset(0), 1);
    }
}

#[cfg(test)]
mod conformance_tests {
    use proptest::prelude::*;

    use super::MemoryEngine;
    use crate::conformance;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn conforms() {
        let rt = rt();
        rt.block_on(conformance::offsets_and_reads(MemoryEngine::new()));
        rt.block_on(conformance::seek_by_time(MemoryEngine::new()));
        rt.block_on(conformance::trim_keeps_newer(MemoryEngine::new()));
        rt.block_on(conformance::remove_forgets(MemoryEngine::new()));
    }

    proptest! {
        #[test]
        fn matches_the_reference_model(ops in conformance::ops()) {
            rt().block_on(conformance::model_check(MemoryEngine::new(), ops));
        }
    }
}
