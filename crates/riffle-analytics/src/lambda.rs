//! AWS Lambda in applications: input preprocessing and Lambda outputs,
//! invoked through the server's Lambda Invoke endpoint
//! ([`crate::LambdaInvoker`], `--lambda-endpoint`).
//!
//! Preprocessing (an input's `InputLambdaProcessor`): every batch read
//! goes to the function before schema mapping, in invocations of at most
//! [`MAX_PAYLOAD`] of event:
//!
//! `{"invocationId", "applicationArn", "streamArn", "records":
//!   [{"recordId", "kinesisStreamRecordMetadata": {"shardId",
//!   "partitionKey", "sequenceNumber", "approximateArrivalTimestamp"}
//!   (a Data Streams input) | "kinesisFirehoseRecordMetadata":
//!   {"approximateArrivalTimestamp"} (a Firehose input), "data": <base64>}]}`
//!
//! A Data Streams record's id is its sequence number, a Firehose
//! record's a random GUID; arrival times are epoch milliseconds. The
//! function answers `{"records": [{"recordId", "result", "data"}]}` with
//! every recordId exactly once. `Ok` records (their `data` required) are
//! mapped in place of the originals (one payload may hold several JSON
//! documents or CSV rows), `Dropped` ones are gone, `ProcessingFailed`
//! ones go to `error_stream` with their original data. An invocation
//! that fails (no answer, a function error, an answer that breaks the
//! model) is retried [`PREPROCESS_RETRIES`] times with backoff; then its
//! records go to `error_stream` with the reason, and the application
//! reads on.
//!
//! Outputs (`LambdaOutput`): the records an output's stream produced, in
//! the output's format, go to the function in invocations of at most
//! [`MAX_PAYLOAD`]:
//!
//! `{"invocationId", "applicationArn", "records": [{"recordId",
//!   "lambdaDeliveryRecordMetadata": {"retryHint"}, "data": <base64>}]}`
//!
//! answered by `{"records": [{"recordId", "result": "Ok" |
//! "DeliveryFailed"}]}`. A record not acknowledged `Ok` (DeliveryFailed,
//! left out, another result, an invocation that failed) is sent again
//! until it is delivered; its `retryHint` counts its failed deliveries.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use riffle_wire::{Map, Value};
use serde_json::Value as Json;
use tokio::sync::watch;

use crate::engine::mapping::hex;
use crate::engine::query::ErrorRow;
use crate::LambdaInvoker;

/// The most a synchronous invocation's event may carry.
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024;
/// Invocations of a preprocessing batch retried after the first.
pub const PREPROCESS_RETRIES: u32 = 3;
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(4);

/// A random GUID (version 4 form).
pub fn guid() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let state = std::collections::hash_map::RandomState::new();
    let word = |salt: u64| {
        let mut h = state.build_hasher();
        h.write_u64(n);
        h.write_u64(salt);
        h.finish()
    };
    let (a, b) = (word(1), word(2));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        ((b >> 48) & 0x3fff) | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// Where a Data Streams record came from.
#[derive(Debug, Clone)]
pub struct StreamMeta<'a> {
    pub shard_id: &'a str,
    pub partition_key: &'a str,
    pub sequence_number: &'a str,
}

/// A record read, on its way to the preprocessing function.
#[derive(Debug, Clone)]
pub struct PreRecord<'a> {
    pub id: String,
    pub arrival_ms: i64,
    pub data: &'a [u8],
    /// Data Streams metadata; `None` for a Firehose input.
    pub stream: Option<StreamMeta<'a>>,
}

fn entry(map: &mut Map, key: &str, v: Value) {
    map.0.push((key.to_owned(), v));
}

/// The event of one preprocessing invocation.
pub fn preprocess_event(
    invocation_id: &str,
    application_arn: &str,
    stream_arn: &str,
    records: &[PreRecord<'_>],
) -> Vec<u8> {
    let mut doc = Map::new();
    entry(&mut doc, "invocationId", Value::Str(invocation_id.into()));
    entry(
        &mut doc,
        "applicationArn",
        Value::Str(application_arn.into()),
    );
    entry(&mut doc, "streamArn", Value::Str(stream_arn.into()));
    let list = records
        .iter()
        .map(|r| {
            let mut rec = Map::new();
            entry(&mut rec, "recordId", Value::Str(r.id.clone()));
            let mut meta = Map::new();
            let key = match &r.stream {
                Some(s) => {
                    entry(&mut meta, "shardId", Value::Str(s.shard_id.into()));
                    entry(
                        &mut meta,
                        "partitionKey",
                        Value::Str(s.partition_key.into()),
                    );
                    entry(
                        &mut meta,
                        "sequenceNumber",
                        Value::Str(s.sequence_number.into()),
                    );
                    "kinesisStreamRecordMetadata"
                }
                None => "kinesisFirehoseRecordMetadata",
            };
            entry(
                &mut meta,
                "approximateArrivalTimestamp",
                Value::Int(r.arrival_ms),
            );
            entry(&mut rec, key, Value::Map(meta));
            entry(
                &mut rec,
                "data",
                Value::Bytes(Bytes::copy_from_slice(r.data)),
            );
            Value::Map(rec)
        })
        .collect();
    entry(&mut doc, "records", Value::List(list));
    riffle_wire::json::encode(&Value::Map(doc))
}

/// The event of one output delivery invocation: records by id, with
/// their retry hints.
pub fn delivery_event(
    invocation_id: &str,
    application_arn: &str,
    records: &[(String, u64, &[u8])],
) -> Vec<u8> {
    let mut doc = Map::new();
    entry(&mut doc, "invocationId", Value::Str(invocation_id.into()));
    entry(
        &mut doc,
        "applicationArn",
        Value::Str(application_arn.into()),
    );
    let list = records
        .iter()
        .map(|(id, hint, data)| {
            let mut rec = Map::new();
            entry(&mut rec, "recordId", Value::Str(id.clone()));
            let mut meta = Map::new();
            entry(&mut meta, "retryHint", Value::Int(*hint as i64));
            entry(&mut rec, "lambdaDeliveryRecordMetadata", Value::Map(meta));
            entry(&mut rec, "data", Value::Bytes(Bytes::copy_from_slice(data)));
            Value::Map(rec)
        })
        .collect();
    entry(&mut doc, "records", Value::List(list));
    riffle_wire::json::encode(&Value::Map(doc))
}

/// What the preprocessing function made of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    Ok(Bytes),
    Dropped,
    Failed,
}

/// The answer's `records`, each with its position among `ids`; `Err` for
/// an answer that is not a records document or names an id not sent or
/// one twice.
fn answered<'a>(body: &'a Json, ids: &[String]) -> Result<Vec<(usize, &'a Json)>, String> {
    let records = body
        .get("records")
        .and_then(Json::as_array)
        .ok_or("the answer has no records array")?;
    let index: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut seen = vec![false; ids.len()];
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let id = r
            .get("recordId")
            .and_then(Json::as_str)
            .ok_or("a returned record has no recordId")?;
        let &i = index
            .get(id)
            .ok_or_else(|| format!("the answer has the unknown recordId {id}"))?;
        if std::mem::replace(&mut seen[i], true) {
            return Err(format!("the answer has the recordId {id} more than once"));
        }
        out.push((i, r));
    }
    Ok(out)
}

/// Reads a preprocessing answer for the record ids sent, in their order;
/// `Err` says how it breaks the response model.
pub fn parse_preprocessed(body: &[u8], ids: &[String]) -> Result<Vec<Processed>, String> {
    let doc: Json = serde_json::from_slice(body)
        .map_err(|e| format!("the answer is not a JSON document: {e}"))?;
    let mut out: Vec<Option<Processed>> = vec![None; ids.len()];
    for (i, r) in answered(&doc, ids)? {
        let id = &ids[i];
        let result = r.get("result").and_then(Json::as_str);
        out[i] = Some(match result {
            Some("Ok") => {
                let data = r
                    .get("data")
                    .and_then(Json::as_str)
                    .ok_or_else(|| format!("the Ok record {id} has no data"))?;
                let data = riffle_wire::shape::decode_base64(data)
                    .map_err(|_| format!("the data of record {id} is not base64"))?;
                Processed::Ok(data)
            }
            Some("Dropped") => Processed::Dropped,
            Some("ProcessingFailed") => Processed::Failed,
            Some(other) => return Err(format!("record {id} has the unknown result {other}")),
            None => return Err(format!("record {id} has no result")),
        });
    }
    let missing = out.iter().filter(|o| o.is_none()).count();
    if missing > 0 {
        return Err(format!(
            "{missing} of the {} record ids sent were not returned",
            ids.len()
        ));
    }
    Ok(out.into_iter().flatten().collect())
}

/// Reads a delivery answer for the record ids sent: whether each was
/// acknowledged `Ok`. A record left out or with any other result was
/// not delivered; `Err` when the answer is not a records document.
pub fn parse_delivered(body: &[u8], ids: &[String]) -> Result<Vec<bool>, String> {
    let doc: Json = serde_json::from_slice(body)
        .map_err(|e| format!("the answer is not a JSON document: {e}"))?;
    let mut out = vec![false; ids.len()];
    for (i, r) in answered(&doc, ids)? {
        out[i] = r.get("result").and_then(Json::as_str) == Some("Ok");
    }
    Ok(out)
}

/// The size one record adds to an event: base64 data plus its fields.
fn record_cost(len: usize) -> usize {
    len.div_ceil(3) * 4 + 512
}

/// Splits records (by their data lengths) into invocations of at most
/// [`MAX_PAYLOAD`] of event; each holds at least one record.
pub fn split(lens: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut size) = (0, 1024);
    for (i, &len) in lens.iter().enumerate() {
        let cost = record_cost(len);
        if i > start && size + cost > MAX_PAYLOAD {
            out.push(start..i);
            start = i;
            size = 1024;
        }
        size += cost;
    }
    if start < lens.len() {
        out.push(start..lens.len());
    }
    out
}

/// Waits for `fut`, or `None` when the application is told to stop.
async fn unless_stopped<T>(
    stop: &mut watch::Receiver<bool>,
    fut: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        v = fut => Some(v),
        _ = stop.wait_for(|s| *s) => None,
    }
}

/// An input's preprocessing function.
pub struct Preprocessor {
    pub invoker: Arc<dyn LambdaInvoker>,
    pub function_arn: String,
    pub application_arn: String,
    pub stream_arn: String,
}

impl Preprocessor {
    /// One invocation, retried; the answer, or why the last attempt
    /// failed. `None` when stopped meanwhile.
    async fn invoke(
        &self,
        records: &[PreRecord<'_>],
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Result<Vec<Processed>, String>> {
        let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
        let event = preprocess_event(&guid(), &self.application_arn, &self.stream_arn, records);
        let mut backoff = BACKOFF_FIRST;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let answer =
                unless_stopped(stop, self.invoker.invoke(&self.function_arn, event.clone()))
                    .await?;
            let r = answer.and_then(|body| parse_preprocessed(&body, &ids));
            match r {
                Ok(out) => return Some(Ok(out)),
                Err(e) if attempt > PREPROCESS_RETRIES => return Some(Err(e)),
                Err(e) => {
                    tracing::warn!(function = %self.function_arn, error = %e, attempt, "Lambda preprocessing failed; retrying");
                    unless_stopped(stop, tokio::time::sleep(backoff)).await?;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// Each record's data after the function: `Some` to map, `None` when
    /// dropped or failed (failed records are added to `errors`, at
    /// `now`). `None` overall when stopped before the batch was done.
    pub async fn run(
        &self,
        records: &[PreRecord<'_>],
        now: i64,
        errors: &mut Vec<ErrorRow>,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Vec<Option<Bytes>>> {
        let mut out = Vec::with_capacity(records.len());
        let lens: Vec<usize> = records.iter().map(|r| r.data.len()).collect();
        for range in split(&lens) {
            let part = &records[range];
            match self.invoke(part, stop).await? {
                Ok(processed) => {
                    for (r, p) in part.iter().zip(processed) {
                        out.push(match p {
                            Processed::Ok(data) => Some(data),
                            Processed::Dropped => None,
                            Processed::Failed => {
                                errors.push(ErrorRow {
                                    rowtime: now,
                                    message: format!(
                                        "Lambda preprocessing: the function {} set ProcessingFailed for the record",
                                        self.function_arn
                                    ),
                                    data: hex(r.data),
                                });
                                None
                            }
                        });
                    }
                }
                Err(e) => {
                    tracing::warn!(function = %self.function_arn, error = %e, records = part.len(), "Lambda preprocessing failed; the records go to error_stream");
                    for r in part {
                        errors.push(ErrorRow {
                            rowtime: now,
                            message: format!(
                                "Lambda preprocessing failed after {} attempts: {e}",
                                PREPROCESS_RETRIES + 1
                            ),
                            data: hex(r.data),
                        });
                        out.push(None);
                    }
                }
            }
        }
        Some(out)
    }
}

/// Record ids of a batch: the given ones when they are unique, else
/// random GUIDs.
pub fn unique_ids(ids: Vec<String>) -> Vec<String> {
    let distinct: HashSet<&String> = ids.iter().collect();
    if distinct.len() == ids.len() {
        ids
    } else {
        ids.iter().map(|_| guid()).collect()
    }
}

/// An output's destination function.
pub struct Delivery {
    pub invoker: Arc<dyn LambdaInvoker>,
    pub function_arn: String,
    pub application_arn: String,
    /// Failed deliveries of the records still pending: every record sent
    /// again has failed each delivery since the batch was first sent.
    failures: AtomicU64,
}

impl Delivery {
    pub fn new(
        invoker: Arc<dyn LambdaInvoker>,
        function_arn: String,
        application_arn: String,
    ) -> Self {
        Delivery {
            invoker,
            function_arn,
            application_arn,
            failures: AtomicU64::new(0),
        }
    }

    /// Sends records to the function; returns those it did not
    /// acknowledge `Ok`, to send again.
    pub async fn send(&self, records: &[Bytes]) -> Vec<Bytes> {
        let hint = self.failures.load(Ordering::Relaxed);
        let mut left = Vec::new();
        let lens: Vec<usize> = records.iter().map(Bytes::len).collect();
        for range in split(&lens) {
            let part = &records[range];
            let batch: Vec<(String, u64, &[u8])> =
                part.iter().map(|d| (guid(), hint, d.as_ref())).collect();
            let ids: Vec<String> = batch.iter().map(|(id, _, _)| id.clone()).collect();
            let event = delivery_event(&guid(), &self.application_arn, &batch);
            let answer = self
                .invoker
                .invoke(&self.function_arn, event)
                .await
                .and_then(|body| parse_delivered(&body, &ids));
            match answer {
                Ok(acks) => {
                    let failed = acks.iter().filter(|ok| !**ok).count();
                    if failed > 0 {
                        tracing::warn!(function = %self.function_arn, failed, retry_hint = hint, "Lambda output: records not delivered; sending them again");
                    }
                    left.extend(
                        part.iter()
                            .zip(acks)
                            .filter(|(_, ok)| !ok)
                            .map(|(d, _)| d.clone()),
                    );
                }
                Err(e) => {
                    tracing::warn!(function = %self.function_arn, error = %e, records = part.len(), retry_hint = hint, "Lambda output invocation failed; sending the records again");
                    left.extend(part.iter().cloned());
                }
            }
        }
        if left.is_empty() {
            self.failures.store(0, Ordering::Relaxed);
        } else {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("id{i}")).collect()
    }

    #[test]
    fn preprocessing_events_carry_the_source_metadata() {
        let recs = [
            PreRecord {
                id: "49".into(),
                arrival_ms: 1_520_280_173_000,
                data: b"hello world",
                stream: Some(StreamMeta {
                    shard_id: "shardId-000000000003",
                    partition_key: "7400791606",
                    sequence_number: "49",
                }),
            },
            PreRecord {
                id: "g".into(),
                arrival_ms: 5,
                data: b"",
                stream: None,
            },
        ];
        let doc: Json =
            serde_json::from_slice(&preprocess_event("inv", "arn:app", "arn:s", &recs)).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({
                "invocationId": "inv",
                "applicationArn": "arn:app",
                "streamArn": "arn:s",
                "records": [
                    {
                        "recordId": "49",
                        "kinesisStreamRecordMetadata": {
                            "shardId": "shardId-000000000003",
                            "partitionKey": "7400791606",
                            "sequenceNumber": "49",
                            "approximateArrivalTimestamp": 1_520_280_173_000i64
                        },
                        "data": "aGVsbG8gd29ybGQ="
                    },
                    {
                        "recordId": "g",
                        "kinesisFirehoseRecordMetadata": {"approximateArrivalTimestamp": 5},
                        "data": ""
                    }
                ]
            })
        );
    }

    #[test]
    fn delivery_events_carry_retry_hints() {
        let doc: Json = serde_json::from_slice(&delivery_event(
            "inv",
            "arn:app",
            &[("r1".into(), 2, b"{\"A\":1}")],
        ))
        .unwrap();
        assert_eq!(
            doc,
            serde_json::json!({
                "invocationId": "inv",
                "applicationArn": "arn:app",
                "records": [{
                    "recordId": "r1",
                    "lambdaDeliveryRecordMetadata": {"retryHint": 2},
                    "data": "eyJBIjoxfQ=="
                }]
            })
        );
    }

    #[test]
    fn preprocessing_answers_follow_the_model() {
        let body = br#"{"records":[
            {"recordId":"id1","result":"Dropped"},
            {"recordId":"id0","result":"Ok","data":"SEVMTE8="},
            {"recordId":"id2","result":"ProcessingFailed"}]}"#;
        assert_eq!(
            parse_preprocessed(body, &ids(3)).unwrap(),
            vec![
                Processed::Ok(Bytes::from_static(b"HELLO")),
                Processed::Dropped,
                Processed::Failed
            ]
        );
        let bad: [&[u8]; 8] = [
            b"garbage",
            b"{}",
            br#"{"records":[{"recordId":"id0","result":"Ok","data":"SEVMTE8="}]}"#,
            br#"{"records":[{"recordId":"id0","result":"Ok"},{"recordId":"id1","result":"Dropped"}]}"#,
            br#"{"records":[{"recordId":"id0","result":"Ok","data":"!!"},{"recordId":"id1","result":"Dropped"}]}"#,
            br#"{"records":[{"recordId":"id0","result":"Maybe"},{"recordId":"id1","result":"Dropped"}]}"#,
            br#"{"records":[{"recordId":"id0","result":"Dropped"},{"recordId":"id0","result":"Dropped"}]}"#,
            br#"{"records":[{"recordId":"x","result":"Dropped"},{"recordId":"id1","result":"Dropped"}]}"#,
        ];
        for b in bad {
            assert!(
                parse_preprocessed(b, &ids(2)).is_err(),
                "{}",
                String::from_utf8_lossy(b)
            );
        }
    }

    #[test]
    fn delivery_answers_acknowledge_records() {
        let body = br#"{"records":[{"recordId":"id0","result":"Ok"},{"recordId":"id1","result":"DeliveryFailed"},{"recordId":"id3"}]}"#;
        assert_eq!(
            parse_delivered(body, &ids(4)).unwrap(),
            vec![true, false, false, false]
        );
        assert!(parse_delivered(b"[1]", &ids(1)).is_err());
        assert!(
            parse_delivered(br#"{"records":[{"recordId":"zz","result":"Ok"}]}"#, &ids(1)).is_err()
        );
    }

    #[test]
    fn invocations_stay_under_the_payload_limit() {
        assert_eq!(split(&[]), Vec::<std::ops::Range<usize>>::new());
        assert_eq!(split(&[10, 10, 10]), vec![0..3]);
        let big = 3 * 1024 * 1024;
        assert_eq!(split(&[big, 10, big, big]), vec![0..2, 2..3, 3..4]);
        assert_eq!(split(&[MAX_PAYLOAD * 2]), vec![0..1]);
    }

    #[test]
    fn guids_are_version_4_and_distinct() {
        let a = guid();
        let b = guid();
        assert_ne!(a, b);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            vec![8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
        assert_eq!(unique_ids(vec!["1".into(), "2".into()]), vec!["1", "2"]);
        assert_ne!(unique_ids(vec!["1".into(), "1".into()])[0], "1");
    }
}
