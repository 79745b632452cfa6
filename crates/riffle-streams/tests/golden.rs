//! Request bodies exactly as real SDKs send them (captured by
//! `scripts/capture_golden.py` into `tests/golden/`) decode and validate into
//! the expected typed inputs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::Bytes;
use riffle_streams::model::{self, *};
use riffle_wire::shape::{self, FromValue, Timestamp};
use riffle_wire::{Encoding, Value};

fn golden(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/golden")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The body of a captured JSON request, checked against its target.
fn captured(name: &str, target: &str) -> Value {
    let Value::Map(mut m) = riffle_wire::json::decode(&golden(name)).unwrap() else {
        panic!("not a map")
    };
    assert_eq!(
        m.take("target"),
        Some(Value::Str(format!("Kinesis_20131202.{target}")))
    );
    assert_eq!(
        m.take("content_type"),
        Some(Value::Str("application/x-amz-json-1.1".into()))
    );
    let Some(Value::Str(body)) = m.take("body") else {
        panic!("no body")
    };
    Encoding::Json.decode(body.as_bytes()).unwrap()
}

fn parse<T: FromValue>(shape: &shape::Shape, body: Value) -> T {
    T::from_value(Value::Map(shape::validate(shape, body).unwrap()))
}

#[test]
fn boto3_put_record() {
    let input: PutRecordInput = parse(
        &model::PUT_RECORD_INPUT,
        captured("boto3-put-record.json", "PutRecord"),
    );
    assert_eq!(
        input,
        PutRecordInput {
            stream_name: Some("clicks".into()),
            data: Bytes::from((0..=255u8).collect::<Vec<_>>()),
            partition_key: Some("user-1".into()),
            explicit_hash_key: Some("170141183460469231731687303715884105728".into()),
            ..Default::default()
        }
    );
}

#[test]
fn boto3_put_records() {
    let input: PutRecordsInput = parse(
        &model::PUT_RECORDS_INPUT,
        captured("boto3-put-records.json", "PutRecords"),
    );
    let entry = |d: &'static [u8], k: &str| PutRecordsRequestEntry {
        data: Bytes::from_static(d),
        partition_key: Some(k.into()),
        explicit_hash_key: None,
    };
    assert_eq!(
        input,
        PutRecordsInput {
            records: vec![entry(b"a", "1"), entry(b"\x00\xff", "2")],
            stream_name: Some("clicks".into()),
            ..Default::default()
        }
    );
}

#[test]
fn boto3_timestamps_are_epoch_seconds() {
    let input: GetShardIteratorInput = parse(
        &model::GET_SHARD_ITERATOR_INPUT,
        captured("boto3-get-shard-iterator.json", "GetShardIterator"),
    );
    assert_eq!(input.timestamp, Some(Timestamp(1_767_323_045_678)));
    assert_eq!(input.shard_iterator_type, "AT_TIMESTAMP");
    let input: ListShardsInput = parse(
        &model::LIST_SHARDS_INPUT,
        captured("boto3-list-shards.json", "ListShards"),
    );
    assert_eq!(
        input.shard_filter,
        Some(ShardFilter {
            r#type: "AT_TIMESTAMP".into(),
            shard_id: None,
            timestamp: Some(Timestamp(1_767_312_000_000))
        })
    );
    assert_eq!(
        input.stream_arn.as_deref(),
        Some("arn:aws:kinesis:us-east-1:000000000000:stream/clicks")
    );
}

#[test]
fn boto3_create_stream_with_tags() {
    let input: CreateStreamInput = parse(
        &model::CREATE_STREAM_INPUT,
        captured("boto3-create-stream.json", "CreateStream"),
    );
    assert_eq!(
        input,
        CreateStreamInput {
            stream_name: "clicks".into(),
            shard_count: Some(3),
            tags: Some(BTreeMap::from([("team".to_owned(), "web".to_owned())])),
            ..Default::default()
        }
    );
}

#[test]
fn java_cbor_requests() {
    let body = Encoding::Cbor
        .decode(&golden("java-cbor-put-record.cbor"))
        .unwrap();
    let input: PutRecordInput = parse(&model::PUT_RECORD_INPUT, body);
    assert_eq!(input.data, Bytes::from((0..=255u8).collect::<Vec<_>>()));
    assert_eq!(input.partition_key.as_deref(), Some("user-1"));
    let body = Encoding::Cbor
        .decode(&golden("java-cbor-get-shard-iterator.cbor"))
        .unwrap();
    let input: GetShardIteratorInput = parse(&model::GET_SHARD_ITERATOR_INPUT, body);
    assert_eq!(input.timestamp, Some(Timestamp(1_767_323_045_678)));
}

#[test]
fn outputs_encode_per_encoding() {
    use riffle_wire::shape::IntoValue;
    let record = Record {
        sequence_number: "49546986683135544286507457936321625675700192471156785154".into(),
        approximate_arrival_timestamp: Some(Timestamp(1_459_799_926_480)),
        data: Bytes::from_static(b"\x00hi"),
        partition_key: Some("k".into()),
        encryption_type: None,
    };
    let v = record.into_value();
    assert_eq!(
        String::from_utf8(Encoding::Json.encode(&v)).unwrap(),
        r#"{"SequenceNumber":"49546986683135544286507457936321625675700192471156785154","ApproximateArrivalTimestamp":1459799926.48,"Data":"AGhp","PartitionKey":"k"}"#
    );
    let cbor = Encoding::Cbor.encode(&v);
    // ApproximateArrivalTimestamp: tag 1 (0xc1) around a 64-bit integer of milliseconds.
    let ts = [&[0xc1u8, 0x1b][..], &1_459_799_926_480u64.to_be_bytes()].concat();
    assert!(cbor.windows(ts.len()).any(|w| w == ts.as_slice()));
    // Data: a 3-byte byte string (0x43).
    assert!(cbor.windows(4).any(|w| w == [0x43, 0, b'h', b'i']));
}
