//! Bounded memory under overload: record bytes accepted but not yet durable
//! are capped server-wide; past the cap writes get
//! ProvisionedThroughputExceededException, and room comes back as soon as
//! the pending writes are durable.

use std::sync::Arc;
use std::time::Duration;

use riffle_core::clock::SystemClock;
use riffle_core::Clock;
use riffle_log::memory::MemoryEngine;
use riffle_log::{
    Appended, LogEngine, LogError, LogId, NewRecord, ReadBatch, ReadLimits, StreamLog,
};
use riffle_streams::{Config, Ctx, Service};
use riffle_wire::Value;
use tokio::sync::watch;

/// A log whose appends become durable only once the gate opens.
struct Held {
    inner: Arc<dyn StreamLog>,
    gate: watch::Receiver<bool>,
}

impl StreamLog for Held {
    fn append(&self, records: Vec<NewRecord>, now_ms: i64) -> Result<Appended, LogError> {
        let mut a = self.inner.append(records, now_ms)?;
        let mut gate = self.gate.clone();
        let durable = a.durable;
        a.durable = Box::pin(async move {
            let _ = gate.wait_for(|open| *open).await;
            durable.await
        });
        Ok(a)
    }
    fn read(&self, shard: u32, from: u64, limits: ReadLimits) -> Result<ReadBatch, LogError> {
        self.inner.read(shard, from, limits)
    }
    fn next_offset(&self, shard: u32) -> u64 {
        self.inner.next_offset(shard)
    }
    fn settled_offset(&self, shard: u32) -> u64 {
        self.inner.settled_offset(shard)
    }
    fn seek_time(&self, shard: u32, ms: i64) -> u64 {
        self.inner.seek_time(shard, ms)
    }
    fn trim(&self, cutoff_ms: i64) {
        self.inner.trim(cutoff_ms)
    }
    fn watch(&self) -> watch::Receiver<u64> {
        self.inner.watch()
    }
}

struct HeldEngine {
    inner: Arc<MemoryEngine>,
    gate: watch::Receiver<bool>,
}

impl LogEngine for HeldEngine {
    fn open(&self, id: LogId) -> Result<Arc<dyn StreamLog>, LogError> {
        Ok(Arc::new(Held {
            inner: self.inner.open(id)?,
            gate: self.gate.clone(),
        }))
    }
    fn remove(&self, id: LogId) -> Result<(), LogError> {
        self.inner.remove(id)
    }
    fn name(&self) -> &'static str {
        "held"
    }
}

async fn put(svc: &Service, bytes: usize) -> Result<Value, riffle_streams::KinesisError> {
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; bytes]);
    let doc = riffle_wire::json::decode(
        format!(r#"{{"StreamName":"s","PartitionKey":"k","Data":"{data}"}}"#).as_bytes(),
    )
    .unwrap();
    let ctx = Ctx {
        region: "us-east-1".into(),
    };
    svc.call(&ctx, "PutRecord", doc).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_write_bytes_are_capped() {
    let (open, gate) = watch::channel(true);
    let cfg = Config {
        status_delay_ms: 0,
        max_pending_write_bytes: 1000,
        ..Config::default()
    };
    let engine = Arc::new(HeldEngine {
        inner: MemoryEngine::new(),
        gate,
    });
    let svc = Service::new(cfg, SystemClock::new() as Arc<dyn Clock>, engine, [3; 32]);
    let ctx = Ctx {
        region: "us-east-1".into(),
    };
    let doc = riffle_wire::json::decode(br#"{"StreamName":"s","ShardCount":1}"#).unwrap();
    svc.call(&ctx, "CreateStream", doc).await.unwrap();

    open.send_replace(false);
    // 599 bytes of data and a 1-byte key are pending.
    let first = tokio::spawn({
        let svc = svc.clone();
        async move { put(&svc, 599).await }
    });
    for _ in 0..100 {
        if svc.pending_write_bytes() == 600 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(svc.pending_write_bytes(), 600);
    let err = put(&svc, 500).await.unwrap_err();
    assert_eq!(
        (err.error_type(), err.message()),
        (
            "ProvisionedThroughputExceededException",
            Some("Rate exceeded for stream s under account 000000000000.".into())
        )
    );
    // What still fits is admitted.
    let second = tokio::spawn({
        let svc = svc.clone();
        async move { put(&svc, 399).await }
    });
    open.send_replace(true);
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
    assert_eq!(svc.pending_write_bytes(), 0);
    put(&svc, 500).await.unwrap();
    // A single write larger than the cap still goes through when nothing
    // else is pending.
    put(&svc, 2000).await.unwrap();
    assert_eq!(svc.pending_write_bytes(), 0);
}
