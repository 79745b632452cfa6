//! Where accepted records wait for delivery.
//!
//! [`Buffer`] is the seam; [`LogBuffer`] is its first implementation: one
//! [`riffle_log::StreamLog`] per delivery stream incarnation (shard 0),
//! so an acknowledged record has exactly Data Streams' durability: the
//! acknowledgement waits for the log's durable future, and the log's
//! durability mode (fsync, interval, none) is the server's.

use std::sync::Arc;

use bytes::Bytes;
use riffle_log::{Durable, NewRecord, ReadBatch, ReadLimits, StreamLog};

use crate::error::Result;

/// The one shard of a buffer log.
pub const SHARD: u32 = 0;

/// Records taken in: their buffer offsets, in input order, and a future that
/// resolves once they are durable.
pub struct Accepted {
    pub offsets: Vec<u64>,
    pub arrival_ms: i64,
    pub durable: Durable,
}

/// A delivery stream's buffer of accepted, not yet delivered records.
pub trait Buffer: Send + Sync {
    /// Takes records in; they are acknowledged once `durable` resolves.
    fn append(&self, records: Vec<Bytes>, now_ms: i64) -> Result<Accepted>;
    /// Durable records from offset `from`.
    fn read(&self, from: u64, limits: ReadLimits) -> Result<ReadBatch>;
    /// The offset the next record will get.
    fn next_offset(&self) -> u64;
    /// Changes whenever durable records are added.
    fn watch(&self) -> tokio::sync::watch::Receiver<u64>;
    /// Drops delivered records that arrived before `cutoff_ms`.
    fn trim(&self, cutoff_ms: i64);
}

/// A buffer kept in a record log.
pub struct LogBuffer {
    log: Arc<dyn StreamLog>,
}

impl LogBuffer {
    pub fn new(log: Arc<dyn StreamLog>) -> Arc<LogBuffer> {
        Arc::new(LogBuffer { log })
    }
}

impl Buffer for LogBuffer {
    fn append(&self, records: Vec<Bytes>, now_ms: i64) -> Result<Accepted> {
        let records = records
            .into_iter()
            .map(|data| NewRecord {
                shard: SHARD,
                partition_key: String::new(),
                data,
            })
            .collect();
        let a = self.log.append(records, now_ms)?;
        Ok(Accepted {
            offsets: a.offsets,
            arrival_ms: a.arrival_ms,
            durable: a.durable,
        })
    }

    fn read(&self, from: u64, limits: ReadLimits) -> Result<ReadBatch> {
        Ok(self.log.read(SHARD, from, limits)?)
    }

    fn next_offset(&self) -> u64 {
        self.log.next_offset(SHARD)
    }

    fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.log.watch()
    }

    fn trim(&self, cutoff_ms: i64) {
        self.log.trim(cutoff_ms)
    }
}
