//! In-process access to streams, for the other services (Firehose reads a
//! stream as its source, Analytics reads inputs and writes outputs) without
//! HTTP.
//!
//! - [`StreamWriter`] puts records with exactly PutRecords' routing, limits
//!   and durability: `put` returns once the records are acknowledged.
//! - [`StreamReader`] reads every shard of a stream from a [`Start`], waits
//!   for new records, and follows resharding lineage as KCL does: a child
//!   shard is read only after all of its parents are drained, so records of
//!   one partition key come out in order across splits and merges. Its
//!   [`Checkpoint`] (a sequence number or "finished" per shard) resumes a
//!   later reader exactly after the last record returned.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use riffle_core::seqnum::SeqNum;
use riffle_core::{limits, names};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{PutRecordsInput, PutRecordsRequestEntry};
use crate::ops::records::{read_shard, start_position, StartAt};
use crate::state::{Msg, Status, Stream};
use crate::{Ctx, KinesisError, Service, StreamKey};

/// Where a new reader starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// The oldest records kept, in every shard (children after parents).
    TrimHorizon,
    /// Only records put after the reader starts, in the open shards.
    Latest,
    /// Records that arrived at or after this time (epoch ms).
    AtTimestamp(i64),
    /// Right after a checkpoint of an earlier reader.
    Checkpoint(Checkpoint),
}

/// How far a reader has got, shard by shard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub shards: BTreeMap<String, ShardCheckpoint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShardCheckpoint {
    /// Everything up to and including this sequence number was returned.
    After(String),
    /// Nothing was returned from the shard yet; start at this sequence
    /// number (the shard's first, or LATEST when the reader started).
    At(String),
    /// The shard is closed and every record in it was returned.
    Finished,
}

/// A record read in process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    pub shard_id: String,
    pub sequence_number: String,
    pub partition_key: String,
    pub data: Bytes,
    pub arrival_ms: i64,
}

/// A record to put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutEntry {
    pub partition_key: String,
    pub explicit_hash_key: Option<String>,
    pub data: Bytes,
}

/// What happened to one put record: its shard and sequence number, or the
/// AWS error code and message it failed with (throttling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    Ok {
        shard_id: String,
        sequence_number: String,
    },
    Failed {
        code: String,
        message: String,
    },
}

/// Writes to one stream.
#[derive(Clone)]
pub struct StreamWriter {
    svc: Arc<Service>,
    ctx: Ctx,
    name: String,
}

impl StreamWriter {
    /// Puts up to 500 records (5 MiB), routed as PutRecords routes them;
    /// returns once they are durable. A request-level error (no stream,
    /// too large) fails the whole call; throttled records fail alone.
    pub async fn put(&self, entries: Vec<PutEntry>) -> Result<Vec<PutOutcome>> {
        if entries.is_empty() || entries.len() > limits::PUT_RECORDS_MAX_RECORDS {
            return Err(KinesisError::Validation(format!(
                "1 validation error detected: Value '{}' at 'records' failed to satisfy constraint: Member must have length between 1 and {}",
                entries.len(),
                limits::PUT_RECORDS_MAX_RECORDS
            )));
        }
        if let Some(bad) = entries
            .iter()
            .find(|e| e.partition_key.is_empty() || e.partition_key.chars().count() > 256)
        {
            return Err(KinesisError::Validation(format!(
                "1 validation error detected: Value '{}' at 'records.member.partitionKey' failed to satisfy constraint: Member must have length between 1 and 256",
                bad.partition_key
            )));
        }
        let input = PutRecordsInput {
            records: entries
                .into_iter()
                .map(|e| PutRecordsRequestEntry {
                    partition_key: Some(e.partition_key),
                    explicit_hash_key: e.explicit_hash_key,
                    data: e.data,
                })
                .collect(),
            stream_name: Some(self.name.clone()),
            stream_arn: None,
            stream_id: None,
            dry_run: None,
        };
        let out = crate::ops::records::put_records(&self.svc, &self.ctx, input).await?;
        Ok(out
            .records
            .into_iter()
            .map(|r| match (r.shard_id, r.sequence_number, r.error_code) {
                (Some(shard_id), Some(sequence_number), None) => PutOutcome::Ok {
                    shard_id,
                    sequence_number,
                },
                (_, _, code) => PutOutcome::Failed {
                    code: code.unwrap_or_else(|| "InternalFailure".into()),
                    message: r.error_message.unwrap_or_default(),
                },
            })
            .collect())
    }
}

/// One shard a reader follows.
#[derive(Debug, Clone)]
struct Cursor {
    /// The next log offset to read.
    position: u64,
    /// The last sequence number returned, if any.
    last: Option<String>,
    finished: bool,
}

/// Reads every shard of one stream incarnation, parents before children.
pub struct StreamReader {
    svc: Arc<Service>,
    key: StreamKey,
    stream_id: u64,
    cursors: BTreeMap<u32, Cursor>,
    /// Shards the reader does not follow because they predate its start
    /// (LATEST / AT_TIMESTAMP skip closed history): their children are read
    /// as if the parent were drained.
    skipped: Vec<u32>,
    /// Shard to start the next read from, so no shard starves the others.
    turn: usize,
}

impl Service {
    /// A writer for the stream `name` in `region`.
    pub fn stream_writer(self: &Arc<Self>, region: &str, name: &str) -> Result<StreamWriter> {
        let key = (region.to_owned(), name.to_owned());
        self.snapshot(&key)
            .ok_or_else(|| Msg::stream_not_found(name, self.account()))?;
        Ok(StreamWriter {
            svc: self.clone(),
            ctx: Ctx {
                region: region.to_owned(),
            },
            name: name.to_owned(),
        })
    }

    /// A reader of the stream `name` in `region`, from `start`.
    pub fn stream_reader(
        self: &Arc<Self>,
        region: &str,
        name: &str,
        start: Start,
    ) -> Result<StreamReader> {
        let key = (region.to_owned(), name.to_owned());
        let s = self
            .snapshot(&key)
            .ok_or_else(|| Msg::stream_not_found(name, self.account()))?;
        if matches!(s.status, Status::Creating { .. }) {
            return Err(Msg::not_active(&s, self.account()));
        }
        let now = self.now_ms();
        let account = self.account().to_owned();
        let mut cursors = BTreeMap::new();
        let mut skipped = Vec::new();
        let at = |shard, kind, seq: Option<&str>, ts: Option<i64>| {
            start_position(
                &s,
                shard,
                StartAt {
                    kind,
                    seq,
                    timestamp: ts.map(riffle_wire::shape::Timestamp),
                },
                now,
                &account,
                "StreamReader",
            )
        };
        match &start {
            Start::TrimHorizon => {
                for sh in s.shards.iter().filter(|sh| is_root(&s, sh.index)) {
                    cursors.insert(sh.index, Cursor::at(sh.start_offset));
                }
            }
            Start::Latest => {
                for sh in &s.shards {
                    if sh.is_open() {
                        cursors.insert(sh.index, Cursor::at(at(sh, "LATEST", None, None)?));
                    } else {
                        skipped.push(sh.index);
                    }
                }
            }
            Start::AtTimestamp(ts) => {
                // A closed shard whose every record is older than `ts` is
                // skipped; the first shards left in each line of descent are
                // read from `ts` on, and their children after them.
                let mut from = BTreeMap::new();
                for sh in &s.shards {
                    let pos = at(sh, "AT_TIMESTAMP", None, Some(*ts))?;
                    if sh.closed.is_some_and(|c| pos >= c.offset) {
                        skipped.push(sh.index);
                    } else {
                        from.insert(sh.index, pos);
                    }
                }
                for (index, pos) in from {
                    let sh = &s.shards[index as usize];
                    let first = sh
                        .parent
                        .into_iter()
                        .chain(sh.adjacent_parent)
                        .all(|p| skipped.contains(&p) || s.shard(p).is_none());
                    if first {
                        cursors.insert(index, Cursor::at(pos));
                    }
                }
            }
            Start::Checkpoint(cp) => {
                for (id, c) in &cp.shards {
                    let Some(index) = names::parse_shard_id(id) else {
                        return Err(Msg::shard_not_found(id, name, &account));
                    };
                    let sh = s
                        .shard(index)
                        .ok_or_else(|| Msg::shard_not_found(id, name, &account))?;
                    let cursor = match c {
                        ShardCheckpoint::Finished => Cursor {
                            position: sh.closed.map_or(sh.start_offset, |c| c.offset),
                            last: None,
                            finished: true,
                        },
                        ShardCheckpoint::After(seq) => Cursor {
                            position: at(sh, "AFTER_SEQUENCE_NUMBER", Some(seq), None)?,
                            last: Some(seq.clone()),
                            finished: false,
                        },
                        ShardCheckpoint::At(seq) => {
                            Cursor::at(at(sh, "AT_SEQUENCE_NUMBER", Some(seq), None)?)
                        }
                    };
                    cursors.insert(index, cursor);
                }
            }
        }
        let mut reader = StreamReader {
            svc: self.clone(),
            key,
            stream_id: s.id,
            cursors,
            skipped,
            turn: 0,
        };
        reader.discover(&s);
        Ok(reader)
    }
}

/// Whether a shard has no parent the stream still lists.
fn is_root(s: &Stream, index: u32) -> bool {
    s.shard(index).is_some_and(|sh| {
        sh.parent
            .into_iter()
            .chain(sh.adjacent_parent)
            .all(|p| s.shard(p).is_none())
    })
}

impl Cursor {
    fn at(position: u64) -> Cursor {
        Cursor {
            position,
            last: None,
            finished: false,
        }
    }
}

impl StreamReader {
    /// Starts following every shard whose parents are all drained (or not
    /// followed at all).
    fn discover(&mut self, s: &Stream) {
        loop {
            let mut added = false;
            for sh in &s.shards {
                if self.cursors.contains_key(&sh.index) || self.skipped.contains(&sh.index) {
                    continue;
                }
                let parents: Vec<u32> = sh.parent.into_iter().chain(sh.adjacent_parent).collect();
                let ready = !parents.is_empty()
                    && parents.iter().all(|p| {
                        self.skipped.contains(p) || self.cursors.get(p).is_some_and(|c| c.finished)
                    });
                if ready {
                    self.cursors.insert(sh.index, Cursor::at(sh.start_offset));
                    added = true;
                }
            }
            if !added {
                return;
            }
        }
    }

    fn snapshot(&self) -> Result<Arc<Stream>> {
        self.svc
            .snapshot(&self.key)
            .filter(|s| s.id == self.stream_id)
            .ok_or_else(|| Msg::stream_not_found(&self.key.1, self.svc.account()))
    }

    /// Up to `max` records, from the shards being followed in turn. When
    /// none are available, waits up to `wait` for new ones; an empty batch
    /// means none came.
    pub async fn next(&mut self, max: usize, wait: Duration) -> Result<Vec<StreamRecord>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let s = self.snapshot()?;
            // Watch before reading, so a record published in between wakes us.
            let mut watch = s.log.watch();
            let out = self.read_once(&s, max.max(1))?;
            if !out.is_empty() {
                return Ok(out);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(out);
            }
            // Wake for new data, or at least every 100 ms for status changes
            // (a reshard publishes no data).
            let step = (deadline - now).min(Duration::from_millis(100));
            let _ = tokio::time::timeout(step, watch.changed()).await;
        }
    }

    fn read_once(&mut self, s: &Stream, max: usize) -> Result<Vec<StreamRecord>> {
        let mut out = Vec::new();
        let active: Vec<u32> = self
            .cursors
            .iter()
            .filter(|(_, c)| !c.finished)
            .map(|(i, _)| *i)
            .collect();
        if active.is_empty() {
            self.discover(s);
            return Ok(out);
        }
        let n = active.len();
        for k in 0..n {
            if out.len() >= max {
                break;
            }
            let index = active[(self.turn + k) % n];
            let Some(shard) = s.shard(index) else {
                continue;
            };
            let position = self.cursors[&index].position;
            let read = read_shard(&self.svc, s, shard, position, max - out.len())?;
            let cursor = self.cursors.get_mut(&index).expect("followed shard");
            cursor.position = read.next_position;
            if let Some(last) = read.records.last() {
                cursor.last = Some(last.sequence_number.clone());
            }
            let shard_id = shard.id();
            out.extend(read.records.into_iter().map(|r| StreamRecord {
                shard_id: shard_id.clone(),
                sequence_number: r.sequence_number,
                partition_key: r.partition_key.unwrap_or_default(),
                data: r.data,
                arrival_ms: r.approximate_arrival_timestamp.map_or(0, |t| t.0),
            }));
            if read.children.is_some() {
                cursor.finished = true;
            }
        }
        self.turn = self.turn.wrapping_add(1);
        self.discover(s);
        Ok(out)
    }

    /// Where this reader is: resuming from it continues right after the
    /// last record returned.
    pub fn checkpoint(&self) -> Checkpoint {
        let s = self.snapshot().ok();
        Checkpoint {
            shards: self
                .cursors
                .iter()
                .map(|(index, c)| {
                    let state = if c.finished {
                        ShardCheckpoint::Finished
                    } else if let Some(last) = &c.last {
                        ShardCheckpoint::After(last.clone())
                    } else {
                        let seq = s
                            .as_ref()
                            .and_then(|s| s.shard(*index))
                            .map(|sh| {
                                SeqNum {
                                    shard_created_secs: sh.created_secs,
                                    counter: c.position,
                                    record_secs: sh.created_secs,
                                    shard_index: sh.index,
                                }
                                .encode()
                            })
                            .unwrap_or_default();
                        ShardCheckpoint::At(seq)
                    };
                    (names::shard_id(*index), state)
                })
                .collect(),
        }
    }

    /// Whether every shard followed is closed and drained (a stream that was
    /// merged away completely; never true while a shard is open).
    pub fn is_finished(&self) -> bool {
        self.cursors.values().all(|c| c.finished)
    }
}
