//! PutRecord, PutRecords, GetShardIterator, GetRecords.

use bytes::Bytes;
use riffle_core::iterator::ShardIterator;
use riffle_core::seqnum::{SeqEncoder, SeqNum, END_COUNTER};
use riffle_core::{clock, hashkey, limits, names};
use riffle_log::{NewRecord, ReadLimits, StoredRecord};
use riffle_wire::shape::Timestamp;

use crate::error::Result;
use crate::model::*;
use crate::state::{Msg, Shard, Status, Stream};
use crate::{Ctx, KinesisError, Service};

/// A record ready for routing.
struct Incoming {
    partition_key: Option<String>,
    explicit_hash_key: Option<String>,
    data: Bytes,
}

/// Where a record goes, or why it cannot go anywhere.
fn hash_key_of(s: &Stream, r: &Incoming, path: &str) -> Result<u128> {
    if let Some(ehk) = &r.explicit_hash_key {
        return hashkey::parse(ehk).ok_or_else(|| {
            KinesisError::InvalidArgument(format!(
                "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was {ehk}"
            ))
        });
    }
    match &r.partition_key {
        Some(pk) if s.distribution.as_deref() != Some("AUTO") => Ok(hashkey::partition_hash(pk)),
        _ if s.distribution.as_deref() == Some("AUTO") => Ok(rand::random::<u128>()),
        _ => Err(KinesisError::Validation(format!(
            "1 validation error detected: Value null at '{path}' failed to satisfy constraint: Member must not be null"
        ))),
    }
}

/// A record's size: its data plus its partition key (UTF-8 bytes), which is
/// what AWS counts against the record and request limits.
fn record_size(data: &Bytes, partition_key: Option<&String>) -> usize {
    data.len() + partition_key.map_or(0, String::len)
}

/// The stream's maximum record size (1 MiB unless raised) applies to the
/// data and the partition key together. Data alone over it breaks the
/// `data` length constraint, in AWS's validation words; data that fits but
/// not with its key is refused as an invalid argument.
fn check_size(s: &Stream, r: &Incoming, path: &str) -> Result<()> {
    let max = (s.max_record_kib * 1024) as usize;
    if r.data.len() > max {
        return Err(KinesisError::Validation(format!(
            "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim={0} cap={0}]' at '{path}' failed to satisfy constraint: Member must have length less than or equal to {max}",
            r.data.len()
        )));
    }
    let size = record_size(&r.data, r.partition_key.as_ref());
    if size > max {
        return Err(KinesisError::InvalidArgument(format!(
            "Record size exceeds the stream's maximum record size of {max} bytes. Record size (data and partition key): {size} bytes."
        )));
    }
    Ok(())
}

/// Writable means ACTIVE or UPDATING; otherwise AWS says the stream is not found.
fn writable<'a>(s: &'a Stream, account: &str) -> Result<&'a Stream> {
    match s.status {
        Status::Active | Status::Updating { .. } => Ok(s),
        _ => Err(Msg::stream_not_found(&s.name, account)),
    }
}

fn dry_run(flag: Option<bool>) -> Result<()> {
    if flag == Some(true) {
        return Err(KinesisError::DryRunOperation(
            "Request would have succeeded, but DryRun flag is set.".into(),
        ));
    }
    Ok(())
}

pub async fn put_record(
    svc: &Service,
    ctx: &Ctx,
    input: PutRecordInput,
) -> Result<PutRecordOutput> {
    let account = svc.account().to_owned();
    let now = svc.now_ms();
    let rec = Incoming {
        partition_key: input.partition_key,
        explicit_hash_key: input.explicit_hash_key,
        data: input.data,
    };
    let (shard, appended, encrypted, (_pending, stream_id, bytes)) = svc.write_to(ctx, input.stream_name.as_deref(), input.stream_arn.as_deref(), |s| {
        let s = writable(s, &account)?;
        let key = hash_key_of(s, &rec, "partitionKey")?;
        if let Some(seq) = &input.sequence_number_for_ordering {
            if SeqNum::decode(seq).is_err() {
                return Err(KinesisError::InvalidArgument(format!(
                    "ExclusiveMinimumSequenceNumber {seq} used in PutRecord on stream {} under account {account} is invalid.",
                    s.name
                )));
            }
        }
        check_size(s, &rec, "data")?;
        dry_run(input.dry_run)?;
        let shard = s.route(key).cloned().ok_or_else(|| KinesisError::Internal("no open shard covers the hash key".into()))?;
        let bytes = record_size(&rec.data, rec.partition_key.as_ref());
        svc.throttle.admit_write(svc, s, shard.index, 1, bytes as u64, now)?;
        let pending = svc.reserve_write(s, bytes as u64)?;
        let appended = s.log.append(
            vec![NewRecord { shard: shard.index, partition_key: rec.partition_key.unwrap_or_default(), data: rec.data }],
            now,
        )?;
        Ok((shard, appended, s.encryption.is_some(), (pending, s.id, bytes as u64)))
    })?;
    appended.durable.await?;
    svc.traffic.wrote(stream_id, &[(shard.index, 1, bytes)]);
    Ok(PutRecordOutput {
        shard_id: shard.id(),
        sequence_number: shard.seq(appended.offsets[0], (appended.arrival_ms / 1000) as u64),
        encryption_type: Some(if encrypted { "KMS" } else { "NONE" }.to_owned()),
    })
}

/// A batch's (shard, records, bytes of data and keys), one entry a shard.
fn by_shard(batch: &[NewRecord]) -> Vec<(u32, u64, u64)> {
    let mut each: Vec<(u32, u64)> = batch
        .iter()
        .map(|r| (r.shard, (r.data.len() + r.partition_key.len()) as u64))
        .collect();
    each.sort_unstable_by_key(|e| e.0);
    let mut out: Vec<(u32, u64, u64)> = Vec::new();
    for (shard, bytes) in each {
        match out.last_mut() {
            Some(last) if last.0 == shard => {
                last.1 += 1;
                last.2 += bytes;
            }
            _ => out.push((shard, 1, bytes)),
        }
    }
    out
}

pub async fn put_records(
    svc: &Service,
    ctx: &Ctx,
    input: PutRecordsInput,
) -> Result<PutRecordsOutput> {
    let account = svc.account().to_owned();
    let now = svc.now_ms();
    let total: usize = input
        .records
        .iter()
        .map(|r| record_size(&r.data, r.partition_key.as_ref()))
        .sum();
    if total > limits::PUT_RECORDS_MAX_BYTES {
        return Err(KinesisError::InvalidArgument(
            "Records size exceeds 5 MB limit".into(),
        ));
    }
    let n = input.records.len();
    let (plan, appended, encrypted, (_pending, stream_id, written)) = svc.write_to(
        ctx,
        input.stream_name.as_deref(),
        input.stream_arn.as_deref(),
        |s| {
            let s = writable(s, &account)?;
            let mut routed = Vec::with_capacity(n);
            for (i, r) in input.records.into_iter().enumerate() {
                let rec = Incoming {
                    partition_key: r.partition_key,
                    explicit_hash_key: r.explicit_hash_key,
                    data: r.data,
                };
                let key = hash_key_of(s, &rec, &format!("records.{}.member.partitionKey", i + 1))?;
                check_size(s, &rec, &format!("records.{}.member.data", i + 1))?;
                routed.push((key, rec));
            }
            dry_run(input.dry_run)?;
            let pending = svc.reserve_write(s, total as u64)?;
            // Each entry either goes to the log or fails on its own (throttling).
            let mut plan: Vec<std::result::Result<Shard, KinesisError>> = Vec::with_capacity(n);
            let mut batch = Vec::with_capacity(n);
            for (key, rec) in routed {
                let shard = s.route(key).cloned().ok_or_else(|| {
                    KinesisError::Internal("no open shard covers the hash key".into())
                })?;
                let bytes = record_size(&rec.data, rec.partition_key.as_ref()) as u64;
                match svc.throttle.admit_write(svc, s, shard.index, 1, bytes, now) {
                    Ok(()) => {
                        batch.push(NewRecord {
                            shard: shard.index,
                            partition_key: rec.partition_key.unwrap_or_default(),
                            data: rec.data,
                        });
                        plan.push(Ok(shard));
                    }
                    Err(e) => plan.push(Err(e)),
                }
            }
            let written = by_shard(&batch);
            let appended = if batch.is_empty() {
                None
            } else {
                Some(s.log.append(batch, now)?)
            };
            Ok((
                plan,
                appended,
                s.encryption.is_some(),
                (pending, s.id, written),
            ))
        },
    )?;
    let (offsets, secs) = match appended {
        Some(a) => {
            a.durable.await?;
            svc.traffic.wrote(stream_id, &written);
            (a.offsets, (a.arrival_ms / 1000) as u64)
        }
        None => (Vec::new(), 0),
    };
    let mut offsets = offsets.into_iter();
    let mut failed = 0;
    // One encoder per shard: a shard's records in a call have consecutive offsets.
    let mut encoders: Vec<(u32, SeqEncoder)> = Vec::new();
    let records = plan
        .into_iter()
        .map(|p| match p {
            Ok(shard) => PutRecordsResultEntry {
                sequence_number: offsets.next().map(|o| {
                    let i = match encoders.iter().position(|(k, _)| *k == shard.index) {
                        Some(i) => i,
                        None => {
                            encoders.push((shard.index, SeqEncoder::default()));
                            encoders.len() - 1
                        }
                    };
                    encoders[i].1.encode(shard.seq_num(o, secs))
                }),
                shard_id: Some(shard.id()),
                error_code: None,
                error_message: None,
            },
            Err(e) => {
                failed += 1;
                PutRecordsResultEntry {
                    sequence_number: None,
                    shard_id: None,
                    error_code: Some(e.error_type().into()),
                    error_message: e.message(),
                }
            }
        })
        .collect();
    Ok(PutRecordsOutput {
        failed_record_count: Some(failed),
        records,
        encryption_type: Some(if encrypted { "KMS" } else { "NONE" }.to_owned()),
    })
}

fn must_either(kind: &str, with_seq: bool) -> KinesisError {
    KinesisError::InvalidArgument(format!(
        "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified {kind} and {}.",
        if with_seq { "also a StartingSequenceNumber" } else { "no StartingSequenceNumber" }
    ))
}

/// Where a reader asks to start: an iterator type with its sequence number
/// or timestamp.
pub(crate) struct StartAt<'a> {
    pub kind: &'a str,
    pub seq: Option<&'a str>,
    pub timestamp: Option<Timestamp>,
}

/// A starting position inside a shard, resolved to a log offset.
pub(crate) fn start_position(
    s: &Stream,
    shard: &Shard,
    at: StartAt<'_>,
    now: i64,
    account: &str,
    op: &str,
) -> Result<u64> {
    let StartAt {
        kind,
        seq,
        timestamp,
    } = at;
    let end = shard.closed.map_or(u64::MAX, |c| c.offset);
    Ok(match kind {
        "TRIM_HORIZON" => shard.start_offset,
        "LATEST" => s.log.next_offset(shard.index).min(end),
        "AT_TIMESTAMP" => {
            let ts = timestamp.ok_or_else(|| {
                KinesisError::InvalidArgument(
                    "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter.".into(),
                )
            })?;
            if ts.0 > now {
                return Err(KinesisError::InvalidArgument(format!(
                    "The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. timestampInMillis: {}, currentTimestampInMillis: {now}",
                    ts.0
                )));
            }
            s.log
                .seek_time(shard.index, ts.0)
                .max(shard.start_offset)
                .min(end)
        }
        "AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER" => {
            let seq = seq.ok_or_else(|| must_either(kind, false))?;
            let parsed = SeqNum::decode(seq).map_err(|_| {
                KinesisError::InvalidArgument(format!(
                    "StartingSequenceNumber {seq} used in {op} on shard {} in stream {} under account {account} is invalid.",
                    shard.id(), s.name
                ))
            })?;
            if parsed.shard_index != shard.index {
                return Err(KinesisError::InvalidArgument(format!(
                    "Invalid StartingSequenceNumber. It encodes {}, while it was used in a call to a shard with {}",
                    names::shard_id(parsed.shard_index),
                    shard.id()
                )));
            }
            if parsed.shard_created_secs != shard.created_secs {
                return Err(KinesisError::InvalidArgument(format!(
                    "StartingSequenceNumber {seq} used in {op} on shard {} in stream {} under account {account} is invalid because it did not come from this stream.",
                    shard.id(), s.name
                )));
            }
            let at = if parsed.counter == END_COUNTER {
                end
            } else {
                parsed.counter
            };
            let pos = if kind == "AFTER_SEQUENCE_NUMBER" {
                at.saturating_add(1)
            } else {
                at
            };
            pos.max(shard.start_offset).min(end)
        }
        other => {
            return Err(KinesisError::InvalidArgument(format!(
                "Invalid ShardIteratorType {other}."
            )))
        }
    })
}

pub async fn get_shard_iterator(
    svc: &Service,
    ctx: &Ctx,
    input: GetShardIteratorInput,
) -> Result<GetShardIteratorOutput> {
    let account = svc.account().to_owned();
    let now = svc.now_ms();
    let index = names::parse_shard_id(&input.shard_id);
    let key = svc.key(
        ctx,
        input.stream_name.as_deref(),
        input.stream_arn.as_deref(),
    )?;
    let Some(index) = index else {
        return Err(Msg::shard_not_found(&input.shard_id, &key.1, &account));
    };
    if input.starting_sequence_number.is_some()
        && matches!(
            input.shard_iterator_type.as_str(),
            "TRIM_HORIZON" | "LATEST" | "AT_TIMESTAMP"
        )
    {
        return Err(must_either(&input.shard_iterator_type, true));
    }
    let missing = || Msg::shard_does_not_exist(&names::shard_id(index), &key.1, &account);
    let s = svc.snapshot(&key).ok_or_else(missing)?;
    let s = &*s;
    if matches!(s.status, Status::Creating { .. }) {
        return Err(missing());
    }
    let shard = s.shard(index).ok_or_else(missing)?;
    let at = StartAt {
        kind: &input.shard_iterator_type,
        seq: input.starting_sequence_number.as_deref(),
        timestamp: input.timestamp,
    };
    let position = start_position(s, shard, at, now, &account, "GetShardIterator")?;
    if input.dry_run == Some(true) {
        dry_run(input.dry_run)?;
    }
    let it = ShardIterator {
        created_ms: now,
        stream_id: s.id,
        stream_name: s.name.clone(),
        shard_index: index,
        position,
    };
    Ok(GetShardIteratorOutput {
        shard_iterator: Some(svc.tokens.encode(&it)),
    })
}

/// What one read of a shard found.
pub(crate) struct ShardRead {
    pub records: Vec<Record>,
    pub next_position: u64,
    pub millis_behind: i64,
    /// Set once a closed shard is drained: its children.
    pub children: Option<Vec<ChildShard>>,
}

/// Reads a shard from `position`: retention applied, sequence numbers built,
/// and the end of a closed shard detected.
pub(crate) fn read_shard(
    svc: &Service,
    s: &Stream,
    shard: &Shard,
    position: u64,
    max_records: usize,
) -> Result<ShardRead> {
    let now = svc.now_ms();
    let cutoff = now - s.retention_ms();
    let batch = s.log.read(
        shard.index,
        position,
        ReadLimits {
            max_records,
            max_bytes: limits::GET_RECORDS_MAX_BYTES,
        },
    )?;
    let truncated = batch.records.len() >= max_records;

    let mut last_arrival = None;
    let mut encoder = SeqEncoder::default();
    let records: Vec<Record> = batch
        .records
        .into_iter()
        .filter(|r| r.arrival_ms >= cutoff)
        .map(|r: StoredRecord| {
            last_arrival = Some(r.arrival_ms);
            Record {
                sequence_number: encoder
                    .encode(shard.seq_num(r.offset, (r.arrival_ms / 1000) as u64)),
                approximate_arrival_timestamp: Some(Timestamp(r.arrival_ms)),
                data: r.data,
                partition_key: Some(r.partition_key),
                encryption_type: s.encrypted_at(r.arrival_ms).then(|| "KMS".to_owned()),
            }
        })
        .collect();
    let next_position = batch.next_position.max(position);
    // A failing probe (an I/O error ahead) still counts as more data: the
    // records already read are delivered, and the next read reports it.
    // (Damaged frames are not errors: the log skips them.)
    let probe = ReadLimits {
        max_records: 1,
        max_bytes: 1,
    };
    let more = truncated
        || s.log
            .read(shard.index, next_position, probe)
            .map_or(true, |b| !b.records.is_empty());
    let millis_behind = match (more, last_arrival) {
        (true, Some(t)) => (now - t).max(0),
        _ => 0,
    };
    let drained = match shard.closed {
        // Nothing is appended to a closed shard: once every offset it handed
        // out is settled (durable or abandoned), it is drained. (After a
        // crash its next offset can be below the close offset: records that
        // were never acknowledged.)
        Some(c) => {
            let next = s.log.next_offset(shard.index);
            !more && s.log.settled_offset(shard.index) >= next.min(c.offset)
        }
        None => false,
    };
    Ok(ShardRead {
        records,
        next_position,
        millis_behind,
        children: drained.then(|| s.children_of(shard.index)),
    })
}

/// Decodes and checks an iterator: genuine, unexpired.
pub(crate) fn open_iterator(svc: &Service, token: &str) -> Result<ShardIterator> {
    let it = svc
        .tokens
        .decode(token)
        .ok_or_else(|| KinesisError::InvalidArgument("Invalid ShardIterator.".into()))?;
    let now = svc.now_ms();
    if now - it.created_ms > limits::ITERATOR_TTL_MS {
        return Err(KinesisError::ExpiredIterator(format!(
            "Iterator expired. The iterator was created at time {} while right now it is {} which is further in the future than the tolerated delay of {} milliseconds.",
            clock::java_date(it.created_ms),
            clock::java_date(now),
            limits::ITERATOR_TTL_MS
        )));
    }
    Ok(it)
}

pub async fn get_records(
    svc: &Service,
    ctx: &Ctx,
    input: GetRecordsInput,
) -> Result<GetRecordsOutput> {
    let _ = ctx;
    let account = svc.account().to_owned();
    let it = open_iterator(svc, &input.shard_iterator)?;
    let limit = input
        .limit
        .map_or(limits::GET_RECORDS_MAX_RECORDS, |l| l as usize);
    let now = svc.now_ms();
    let missing =
        || Msg::shard_does_not_exist(&names::shard_id(it.shard_index), &it.stream_name, &account);
    let s = svc.snapshot_by_id(it.stream_id).ok_or_else(missing)?;
    let s = &*s;
    let shard = s.shard(it.shard_index).ok_or_else(missing)?;
    dry_run(input.dry_run)?;
    svc.throttle.admit_read(svc, s, shard.index, now)?;
    let read = read_shard(svc, s, shard, it.position, limit)?;
    let bytes: usize = read.records.iter().map(|r| r.data.len()).sum();
    svc.throttle.charge_read(s, shard.index, bytes as u64, now);
    svc.traffic.read(
        s.id,
        shard.index,
        read.records.len() as u64,
        bytes as u64,
        read.millis_behind,
    );
    let next = match read.children {
        Some(_) => None,
        None => Some(svc.tokens.encode(&ShardIterator {
            created_ms: now,
            position: read.next_position,
            ..it
        })),
    };
    Ok(GetRecordsOutput {
        records: read.records,
        next_shard_iterator: next,
        millis_behind_latest: Some(read.millis_behind),
        child_shards: read.children,
    })
}
