//! PutRecord and PutRecordBatch: checked, appended to the delivery stream's
//! buffer and acknowledged once durable.

use base64::Engine as _;
use bytes::Bytes;

use crate::error::{FirehoseError, Result};
use crate::state::{Msg, Status};
use crate::{model, Ctx, Service, StreamKey};

/// PutRecordBatch's limit on the data of one request.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// An opaque record id, 64 characters: the buffer log, the offset, the
/// arrival time and randomness (AWS's ids are opaque and as long).
pub(crate) fn record_id(log_id: u64, offset: u64, arrival_ms: i64) -> String {
    let mut b = [0u8; 48];
    b[..8].copy_from_slice(&log_id.to_be_bytes());
    b[8..16].copy_from_slice(&offset.to_be_bytes());
    b[16..24].copy_from_slice(&arrival_ms.to_be_bytes());
    let r: [u8; 24] = rand::random();
    b[24..].copy_from_slice(&r);
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Checks a batch's total size against AWS's limit.
pub(crate) fn check_batch(records: &[model::Record]) -> Result<()> {
    let total: usize = records.iter().map(|r| r.data.len()).sum();
    if total > MAX_BATCH_BYTES {
        return Err(FirehoseError::InvalidArgument(
            "Records size exceeds 4 MB limit".into(),
        ));
    }
    Ok(())
}

/// Appends `data` to the named delivery stream's buffer and waits until it
/// is durable; returns the record ids and whether SSE is on.
async fn put(svc: &Service, key: &StreamKey, data: Vec<Bytes>) -> Result<(Vec<String>, bool)> {
    let (s, cell) = svc.writable(key)?;
    if s.status != Status::Active {
        return Err(Msg::not_found(&key.1, svc.account()));
    }
    if s.is_kinesis_source() {
        return Err(Msg::not_permitted_on_kinesis_source());
    }
    let (records, bytes) = (data.len() as u64, data.iter().map(|d| d.len() as u64).sum());
    let accepted = cell
        .buffer
        .append(data, svc.now_ms())
        .inspect_err(|e| throttled(&cell, e, records))?;
    accepted.durable.await?;
    cell.stats.incoming(records, bytes);
    let ids = accepted
        .offsets
        .iter()
        .map(|o| record_id(s.log_id, *o, accepted.arrival_ms))
        .collect();
    Ok((ids, s.encrypted()))
}

/// Counts the records of a put refused with a throttling error.
fn throttled(cell: &crate::registry::Cell, e: &FirehoseError, records: u64) {
    if matches!(
        e,
        FirehoseError::ServiceUnavailable(_) | FirehoseError::LimitExceeded(_)
    ) {
        cell.stats
            .throttled_records
            .fetch_add(records, std::sync::atomic::Ordering::Relaxed);
    }
}

/// PutRecord.
pub async fn put_record(
    svc: &Service,
    ctx: &Ctx,
    i: model::PutRecordInput,
) -> Result<model::PutRecordOutput> {
    let key: StreamKey = (ctx.region.clone(), i.delivery_stream_name);
    let (mut ids, encrypted) = put(svc, &key, vec![i.record.data]).await?;
    Ok(model::PutRecordOutput {
        record_id: ids.pop().unwrap_or_default(),
        encrypted: Some(encrypted),
    })
}

/// PutRecordBatch: every record is accepted or the request fails.
pub async fn put_record_batch(
    svc: &Service,
    ctx: &Ctx,
    i: model::PutRecordBatchInput,
) -> Result<model::PutRecordBatchOutput> {
    let key: StreamKey = (ctx.region.clone(), i.delivery_stream_name);
    check_batch(&i.records)?;
    let data = i.records.into_iter().map(|r| r.data).collect();
    let (ids, encrypted) = put(svc, &key, data).await?;
    Ok(model::PutRecordBatchOutput {
        failed_put_count: 0,
        encrypted: Some(encrypted),
        request_responses: ids
            .into_iter()
            .map(|id| model::PutRecordBatchResponseEntry {
                record_id: Some(id),
                ..Default::default()
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_ids_are_long_and_distinct() {
        let a = record_id(1, 1, 0);
        let b = record_id(1, 2, 0);
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }

    #[test]
    fn batch_size_limit() {
        let rec = |n: usize| model::Record {
            data: Bytes::from(vec![0u8; n]),
        };
        assert!(check_batch(&[
            rec(1024 * 1000),
            rec(1024 * 1000),
            rec(1024 * 1000),
            rec(1024 * 1000)
        ])
        .is_ok());
        let over = vec![rec(MAX_BATCH_BYTES / 4); 4]
            .into_iter()
            .chain([rec(1)])
            .collect::<Vec<_>>();
        let e = check_batch(&over).unwrap_err();
        assert_eq!(e.error_type(), "InvalidArgumentException");
        assert_eq!(
            e.message().as_deref(),
            Some("Records size exceeds 4 MB limit")
        );
    }
}
