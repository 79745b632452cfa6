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

struct Inner {
    shards: HashMap<u32, VecDeque<StoredRecord>>,
    next_offset: u64,
    last_arrival: i64,
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
                next_offset: 1,
                last_arrival: 0,
            }),
            tip: watch::channel(1).0,
        }
    }
}

impl StreamLog for MemoryLog {
    fn append(&self, records: Vec<NewRecord>, now_ms: i64) -> Result<Appended, LogError> {
        let mut g = lock(&self.inner);
        let arrival = now_ms.max(g.last_arrival);
        g.last_arrival = arrival;
        let first = g.next_offset;
        for (i, r) in records.into_iter().enumerate() {
            let stored = StoredRecord {
                offset: first + i as u64,
                shard: r.shard,
                arrival_ms: arrival,
                partition_key: r.partition_key,
                data: r.data,
            };
            g.shards.entry(r.shard).or_default().push_back(stored);
            g.next_offset += 1;
        }
        let tip = g.next_offset;
        drop(g);
        self.tip.send_replace(tip);
        Ok(Appended {
            first_offset: first,
            arrival_ms: arrival,
            durable: Box::pin(async { Ok(()) }),
        })
    }

    fn read(&self, shard: u32, from: u64, limits: ReadLimits) -> Result<ReadBatch, LogError> {
        let g = lock(&self.inner);
        let Some(q) = g.shards.get(&shard) else {
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

    fn next_offset(&self) -> u64 {
        lock(&self.inner).next_offset
    }

    fn durable_offset(&self) -> u64 {
        lock(&self.inner).next_offset
    }

    fn seek_time(&self, shard: u32, ms: i64) -> u64 {
        let g = lock(&self.inner);
        match g.shards.get(&shard) {
            Some(q) => {
                let i = q.partition_point(|r| r.arrival_ms < ms);
                q.get(i).map_or(g.next_offset, |r| r.offset)
            }
            None => g.next_offset,
        }
    }

    fn last_record(&self, shard: u32) -> Option<StoredRecord> {
        lock(&self.inner)
            .shards
            .get(&shard)
            .and_then(|q| q.back().cloned())
    }

    fn trim(&self, cutoff_ms: i64) {
        let mut g = lock(&self.inner);
        for q in g.shards.values_mut() {
            while q.front().is_some_and(|r| r.arrival_ms < cutoff_ms) {
                q.pop_front();
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
    async fn appends_interleave_shards_and_read_by_shard() {
        let engine = MemoryEngine::new();
        let log = engine.open(1).unwrap();
        let a = log
            .append(vec![rec(0, "a"), rec(1, "b"), rec(0, "c")], 1000)
            .unwrap();
        a.durable.await.unwrap();
        assert_eq!(a.first_offset, 1);
        let b = log.append(vec![rec(1, "d")], 900).unwrap();
        assert_eq!((b.first_offset, b.arrival_ms), (4, 1000));
        let r = log.read(0, 0, ALL).unwrap();
        let got: Vec<_> = r
            .records
            .iter()
            .map(|r| (r.offset, r.data.clone()))
            .collect();
        assert_eq!(
            got,
            vec![(1, Bytes::from_static(b"a")), (3, Bytes::from_static(b"c"))]
        );
        assert_eq!(r.next_position, 4);
        let r = log.read(1, 3, ALL).unwrap();
        assert_eq!(r.records.len(), 1);
        assert_eq!(r.records[0].offset, 4);
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
        assert_eq!((r.records.len(), r.next_position), (1, 3));
        assert_eq!(log.seek_time(1, 1000), 2);
        assert_eq!(log.seek_time(1, 1001), 5);
        log.trim(1001);
        assert_eq!(log.read(0, 0, ALL).unwrap().records, vec![]);
        engine.remove(1).unwrap();
        assert_eq!(engine.open(1).unwrap().next_offset(), 1);
    }
}
