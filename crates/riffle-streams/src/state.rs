//! The in-memory picture of streams, shards and consumers, and the lookups
//! and messages every operation shares.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use riffle_core::hashkey::HashRange;
use riffle_core::names;
use riffle_core::seqnum::{SeqNum, END_COUNTER};
use riffle_log::StreamLog;

use crate::error::{KinesisError, Result};
use crate::model;
use riffle_wire::shape::Timestamp;

/// A stream's lifecycle state. `until_ms` is when the pending transition
/// completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating { until_ms: i64 },
    Active,
    Updating { until_ms: i64 },
    Deleting { until_ms: i64 },
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Creating { .. } => "CREATING",
            Status::Active => "ACTIVE",
            Status::Updating { .. } => "UPDATING",
            Status::Deleting { .. } => "DELETING",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Provisioned,
    OnDemand,
}

impl Mode {
    pub fn as_str(&self) -> &'static str {
        match self {
            Mode::Provisioned => "PROVISIONED",
            Mode::OnDemand => "ON_DEMAND",
        }
    }

    pub fn details(&self) -> model::StreamModeDetails {
        model::StreamModeDetails {
            stream_mode: self.as_str().into(),
        }
    }
}

/// One shard. Its records live in the stream log under its index, with
/// offsets at or above `start_offset`, and below `closed.offset` once closed.
#[derive(Debug, Clone)]
pub struct Shard {
    pub index: u32,
    pub range: HashRange,
    pub parent: Option<u32>,
    pub adjacent_parent: Option<u32>,
    pub created_secs: u64,
    pub start_offset: u64,
    pub closed: Option<Closed>,
}

#[derive(Debug, Clone, Copy)]
pub struct Closed {
    /// The shard's next log offset when it closed.
    pub offset: u64,
    pub at_ms: i64,
}

impl Shard {
    pub fn id(&self) -> String {
        names::shard_id(self.index)
    }

    pub fn is_open(&self) -> bool {
        self.closed.is_none()
    }

    /// A sequence number of this shard for a log offset.
    pub fn seq(&self, counter: u64, record_secs: u64) -> String {
        self.seq_num(counter, record_secs).encode()
    }

    pub fn seq_num(&self, counter: u64, record_secs: u64) -> SeqNum {
        SeqNum {
            shard_created_secs: self.created_secs,
            counter,
            record_secs,
            shard_index: self.index,
        }
    }

    pub fn starting_seq(&self) -> String {
        self.seq(self.start_offset - 1, self.created_secs)
    }

    pub fn ending_seq(&self) -> Option<String> {
        self.closed
            .map(|c| self.seq(END_COUNTER, (c.at_ms / 1000) as u64))
    }

    pub fn to_model(&self) -> model::Shard {
        model::Shard {
            shard_id: self.id(),
            parent_shard_id: self.parent.map(names::shard_id),
            adjacent_parent_shard_id: self.adjacent_parent.map(names::shard_id),
            hash_key_range: hash_range(&self.range),
            sequence_number_range: model::SequenceNumberRange {
                starting_sequence_number: self.starting_seq(),
                ending_sequence_number: self.ending_seq(),
            },
        }
    }
}

pub fn hash_range(r: &HashRange) -> model::HashKeyRange {
    model::HashKeyRange {
        starting_hash_key: r.start.to_string(),
        ending_hash_key: r.end.to_string(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerStatus {
    Creating { until_ms: i64 },
    Active,
    Deleting { until_ms: i64 },
}

#[derive(Debug, Clone)]
pub struct Consumer {
    pub name: String,
    pub arn: String,
    pub created_ms: i64,
    pub status: ConsumerStatus,
    pub tags: BTreeMap<String, String>,
    pub policy: Option<String>,
}

impl Consumer {
    pub fn status_str(&self) -> &'static str {
        match self.status {
            ConsumerStatus::Creating { .. } => "CREATING",
            ConsumerStatus::Active => "ACTIVE",
            ConsumerStatus::Deleting { .. } => "DELETING",
        }
    }

    pub fn to_model(&self) -> model::Consumer {
        model::Consumer {
            consumer_name: self.name.clone(),
            consumer_arn: self.arn.clone(),
            consumer_status: self.status_str().into(),
            consumer_creation_timestamp: Timestamp(self.created_ms / 1000 * 1000),
        }
    }
}

/// One stream incarnation.
#[derive(Clone)]
pub struct Stream {
    pub id: u64,
    pub name: String,
    pub region: String,
    pub arn: String,
    pub created_ms: i64,
    pub status: Status,
    pub mode: Mode,
    pub retention_hours: i64,
    pub shards: Vec<Shard>,
    pub tags: BTreeMap<String, String>,
    pub encryption: Option<String>,
    /// When server-side encryption was switched on (`true`) or off, oldest
    /// first: a record reports the setting in force when it arrived.
    pub encryption_changes: Vec<(i64, bool)>,
    pub metrics: BTreeSet<String>,
    pub consumers: Vec<Consumer>,
    pub policy: Option<String>,
    pub max_record_kib: i64,
    pub warm_throughput_mibps: Option<i64>,
    pub distribution: Option<String>,
    /// Times of UpdateShardCount calls, for the 10-per-24-hours limit.
    pub scalings: Vec<i64>,
    pub log: Arc<dyn StreamLog>,
}

impl Stream {
    pub fn shard(&self, index: u32) -> Option<&Shard> {
        self.shards.get(index as usize)
    }

    pub fn open_shards(&self) -> impl Iterator<Item = &Shard> {
        self.shards.iter().filter(|s| s.is_open())
    }

    pub fn open_shard_count(&self) -> usize {
        self.open_shards().count()
    }

    pub fn retention_ms(&self) -> i64 {
        self.retention_hours * 3_600_000
    }

    /// The open shard whose range holds `key`.
    pub fn route(&self, key: u128) -> Option<&Shard> {
        self.open_shards().find(|s| s.range.contains(key))
    }

    pub fn is_active(&self) -> bool {
        self.status == Status::Active
    }

    /// Shards born from `parent` (splits, merges, rescaling), as ChildShards.
    pub fn children_of(&self, parent: u32) -> Vec<model::ChildShard> {
        self.shards
            .iter()
            .filter(|s| s.parent == Some(parent) || s.adjacent_parent == Some(parent))
            .map(|s| model::ChildShard {
                shard_id: s.id(),
                parent_shards: s
                    .parent
                    .into_iter()
                    .chain(s.adjacent_parent)
                    .map(names::shard_id)
                    .collect(),
                hash_key_range: hash_range(&s.range),
            })
            .collect()
    }

    /// Whether a record that arrived at `ms` was written encrypted.
    pub fn encrypted_at(&self, ms: i64) -> bool {
        self.encryption_changes
            .iter()
            .rev()
            .find(|(t, _)| *t <= ms)
            .is_some_and(|(_, on)| *on)
    }

    pub fn encryption_type(&self) -> &'static str {
        if self.encryption.is_some() {
            "KMS"
        } else {
            "NONE"
        }
    }

    pub fn enhanced_monitoring(&self) -> Vec<model::EnhancedMetrics> {
        vec![model::EnhancedMetrics {
            shard_level_metrics: Some(self.metrics.iter().cloned().collect()),
        }]
    }

    /// Adds a shard at the next index, starting at the log's next offset.
    pub fn add_shard(
        &mut self,
        range: HashRange,
        parent: Option<u32>,
        adjacent: Option<u32>,
        now_ms: i64,
    ) -> u32 {
        let index = self.shards.len() as u32;
        self.shards.push(Shard {
            index,
            range,
            parent,
            adjacent_parent: adjacent,
            created_secs: (now_ms / 1000) as u64,
            start_offset: self.log.next_offset(index),
            closed: None,
        });
        index
    }

    pub fn close_shard(&mut self, index: u32, now_ms: i64) {
        let offset = self.log.next_offset(index);
        if let Some(s) = self.shards.get_mut(index as usize) {
            s.closed.get_or_insert(Closed {
                offset,
                at_ms: now_ms,
            });
        }
    }
}

/// Message texts shared by several operations, in AWS's words.
pub struct Msg;

impl Msg {
    pub fn stream_not_found(name: &str, account: &str) -> KinesisError {
        KinesisError::ResourceNotFound(format!("Stream {name} under account {account} not found."))
    }

    pub fn not_active(s: &Stream, account: &str) -> KinesisError {
        KinesisError::ResourceInUse(format!(
            "Stream {} under account {account} not ACTIVE, instead in state {}",
            s.name,
            s.status.as_str()
        ))
    }

    pub fn shard_not_found(shard: &str, stream: &str, account: &str) -> KinesisError {
        KinesisError::ResourceNotFound(format!(
            "Could not find shard {shard} in stream {stream} under account {account}."
        ))
    }

    pub fn shard_does_not_exist(shard: &str, stream: &str, account: &str) -> KinesisError {
        KinesisError::ResourceNotFound(format!(
            "Shard {shard} in stream {stream} under account {account} does not exist"
        ))
    }

    pub fn on_demand(s: &Stream, account: &str) -> KinesisError {
        KinesisError::Validation(format!(
            "Request is invalid. Stream {} under account {account} is in On-Demand mode.",
            s.name
        ))
    }

    pub fn already_closed(shard: &str, stream: &str, account: &str) -> KinesisError {
        KinesisError::ResourceInUse(format!(
            "Shard {shard} in stream {stream} under account {account} has already been merged or split, and thus is not eligible for merging or splitting."
        ))
    }

    pub fn shard_limit(
        account: &str,
        region: &str,
        open: usize,
        limit: u32,
        extra: usize,
    ) -> KinesisError {
        KinesisError::LimitExceeded(format!(
            "This request would exceed the shard limit for the account {account} in {region}. Current shard count for the account: {open}. Limit: {limit}. Number of additional shards that would have resulted from this request: {extra}. Refer to the AWS Service Limits page (http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for current limits and how to request higher limits."
        ))
    }
}

/// Fails unless the stream is ACTIVE.
pub fn require_active(s: &Stream, account: &str) -> Result<()> {
    if s.is_active() {
        Ok(())
    } else {
        Err(Msg::not_active(s, account))
    }
}
