//! The record log behind Data Streams, as a small object-safe trait.
//!
//! - [`LogEngine`] opens and removes one [`StreamLog`] per stream incarnation.
//! - [`StreamLog`] is an append-only log of all of a stream's shards
//!   interleaved. Each shard numbers its records with its own offsets,
//!   starting at 1 (0 is never a record, so "just before the first record" is
//!   always expressible). Offsets are assigned at [`StreamLog::append`] time,
//!   in call order, so a caller that holds its stream's lock while appending
//!   gets an order that matches its routing decisions; the returned
//!   [`Appended::durable`] future resolves once the records survive a crash.
//!   Readers only ever see durable records. An append that fails is never
//!   acknowledged and its offsets are never reused: they stay a gap.
//! - [`memory::MemoryEngine`]: everything in memory; records are durable as
//!   soon as they are appended. Used by tests and `--storage memory`.
//!
//! Nothing above this trait assumes a local file: an engine may keep its
//! data anywhere that can order appends and serve ranges by (shard, offset).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod disk;
pub mod memory;

/// Identifies one incarnation of a stream: a recreated stream gets a new id.
pub type LogId = u64;

/// A record to append, already routed to its shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    pub shard: u32,
    pub partition_key: String,
    pub data: Bytes,
}

/// A record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub offset: u64,
    pub shard: u32,
    /// Epoch milliseconds; never decreases along the log.
    pub arrival_ms: i64,
    pub partition_key: String,
    pub data: Bytes,
}

/// Failures of the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    #[error("the log has no room left: {0}")]
    NoSpace(String),
    #[error("log I/O failed: {0}")]
    Io(String),
    #[error("log data is corrupt at offset {offset}: {reason}")]
    Corrupt { offset: u64, reason: String },
    #[error("the stream log was removed")]
    Removed,
}

/// Resolves once appended records are durable.
pub type Durable = Pin<Box<dyn Future<Output = Result<(), LogError>> + Send>>;

/// The outcome of an append: each record's offset within its shard, in
/// input order, all stamped with `arrival_ms`.
pub struct Appended {
    pub offsets: Vec<u64>,
    pub arrival_ms: i64,
    pub durable: Durable,
}

/// Limits of one read.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    pub max_records: usize,
    /// Data + partition-key bytes; the first record is always returned.
    pub max_bytes: usize,
}

/// Records of one shard from a position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadBatch {
    pub records: Vec<StoredRecord>,
    /// Where the next read of this shard continues.
    pub next_position: u64,
}

/// One stream's log.
pub trait StreamLog: Send + Sync {
    /// Assigns each record the next offset of its shard, in order, stamped
    /// with the later of `now_ms` and the previous arrival time.
    fn append(&self, records: Vec<NewRecord>, now_ms: i64) -> Result<Appended, LogError>;

    /// Durable records of `shard` with offset >= `from`, trimmed ones skipped.
    fn read(&self, shard: u32, from: u64, limits: ReadLimits) -> Result<ReadBatch, LogError>;

    /// The offset the next record appended to `shard` will get.
    fn next_offset(&self, shard: u32) -> u64;

    /// Every offset of `shard` below this is settled: durable, or abandoned
    /// by a failed append.
    fn settled_offset(&self, shard: u32) -> u64;

    /// The offset of the first record of `shard` that arrived at or after
    /// `ms` (or the shard's next offset when there is none).
    fn seek_time(&self, shard: u32, ms: i64) -> u64;

    /// Drops records that arrived before `cutoff_ms`.
    fn trim(&self, cutoff_ms: i64);

    /// Changes whenever durable data is added; for long-polling readers.
    fn watch(&self) -> tokio::sync::watch::Receiver<u64>;

    /// Sets this log's durability mode; engines without one ignore it.
    fn set_durability(&self, _mode: Durability) {}
}

/// When an acknowledged append is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fdatasync` before every acknowledgement (the default).
    Fsync,
    /// Acknowledge after `write`; sync every interval: a crash of the machine
    /// (not of the process) loses at most that window.
    Interval,
    /// Never sync: for tests and throwaway data.
    None,
}

impl Durability {
    pub fn parse(s: &str) -> Option<Durability> {
        match s {
            "fsync" => Some(Durability::Fsync),
            "interval" => Some(Durability::Interval),
            "none" => Some(Durability::None),
            _ => None,
        }
    }
}

/// A storage engine: a factory of stream logs.
pub trait LogEngine: Send + Sync {
    /// Opens the log of `id`, creating it empty if it does not exist.
    fn open(&self, id: LogId) -> Result<Arc<dyn StreamLog>, LogError>;

    /// Removes the log of `id` and its data.
    fn remove(&self, id: LogId) -> Result<(), LogError>;

    /// The ids of every log in durable storage (what a restart finds,
    /// opened or not). Engines that keep nothing across restarts have none.
    fn stored_ids(&self) -> Result<Vec<LogId>, LogError> {
        Ok(Vec::new())
    }

    /// A short name for logs and metrics.
    fn name(&self) -> &'static str;
}
