//! Firehose's console endpoint, `GET /_riffle/console/api/firehose/<name>`:
//! what the delivery stream page shows that no AWS API reports. AWS shows
//! these as CloudWatch metrics; Riffle's `/metrics` has the same counters
//! for every stream, and this answers for one, with what its delivery task
//! holds right now:
//!
//! - `counters`: CloudWatch's `IncomingRecords`, `IncomingBytes`,
//!   `DeliveryToS3.Success` / `.Records` / `.Bytes`,
//!   `DeliveryToRedshift.*`, `ThrottledRecords`, `PartitionCount`,
//!   `PartitionCountExceeded`, `JQProcessing.Duration` (seconds, summed),
//!   and `FailedAttempts` (delivery attempts that failed and were retried
//!   or given up on);
//! - `dataFreshnessSeconds`: `DeliveryToS3.DataFreshness`, the age of the
//!   oldest record not yet delivered;
//! - the buffer: `unreadRecords` (accepted, not yet read by the delivery
//!   task), `staged` (a Lambda processor's buffer), `partitions` (each
//!   partition's records and bytes against the size hint, and how long its
//!   interval has run) and `pending` (objects due: being written or
//!   waiting for a retry);
//! - `destinations`: each destination's type and whether Riffle delivers
//!   to it (other types are stored and described; records stay buffered).
//!
//! Ages are measured on the server's clock. A stream that does not exist
//! gets Firehose's `ResourceNotFoundException`.

use riffle_firehose::state::Msg;
use riffle_firehose::stats::Held;
use riffle_firehose::{ConsoleView, Service};
use riffle_wire::{Map, Value};

use crate::platform::Response;

/// The answer for `rest` (the stream's name) in `region`.
pub fn stream(svc: &Service, rest: &str, region: &str) -> Response {
    let name = crate::s3::request::decode_path(rest);
    let view = (!name.contains('/'))
        .then(|| svc.console_view(&(region.to_owned(), name.clone())))
        .flatten();
    match view {
        Some(v) => crate::console::json(document(&v)),
        None => crate::json11::error_response(&Msg::not_found(&name, svc.account())),
    }
}

fn int(n: u64) -> Value {
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Seconds from `then_ms` to `now_ms`; `None` when `then_ms` is 0 (no record).
fn age(then_ms: i64, now_ms: i64) -> Option<Value> {
    (then_ms != 0).then(|| Value::Float((now_ms - then_ms).max(0) as f64 / 1000.0))
}

fn held(h: &Held, now_ms: i64) -> Map {
    let mut m = Map::new();
    m.put("records", int(h.records));
    m.put("bytes", int(h.bytes));
    m.put("oldestAgeSeconds", age(h.oldest_ms, now_ms));
    m
}

/// The endpoint's document for one stream.
pub fn document(v: &ConsoleView) -> Value {
    let s = &v.stats;
    let mut counters = Map::new();
    for (k, n) in [
        ("IncomingRecords", s.incoming_records),
        ("IncomingBytes", s.incoming_bytes),
        ("DeliveryToS3.Success", s.s3_success),
        ("DeliveryToS3.Records", s.s3_records),
        ("DeliveryToS3.Bytes", s.s3_bytes),
        ("DeliveryToRedshift.Success", s.redshift_success),
        ("DeliveryToRedshift.Records", s.redshift_records),
        ("DeliveryToRedshift.Bytes", s.redshift_bytes),
        ("ThrottledRecords", s.throttled_records),
        ("FailedAttempts", s.failed_attempts),
        ("PartitionCount", s.partition_count),
        ("PartitionCountExceeded", s.partition_count_exceeded),
    ] {
        counters.put(k, int(n));
    }
    counters.put("JQProcessing.Duration", Value::Float(s.jq_seconds));
    let partitions = v
        .fill
        .partitions
        .iter()
        .map(|p| {
            let mut m = held(&p.held, v.now_ms);
            let mut keys = Map::new();
            for (k, val) in &p.keys {
                keys.put(k, Value::Str(val.clone()));
            }
            m.put("keys", Value::Map(keys));
            m.put("intervalElapsedSeconds", age(p.opened_ms, v.now_ms));
            Value::Map(m)
        })
        .collect();
    let destinations = v
        .stream
        .destinations
        .iter()
        .map(|d| {
            let mut m = Map::new();
            m.put("DestinationId", Value::Str(d.id.clone()));
            m.put("type", Value::Str(d.kind.prefix().to_owned()));
            m.put("delivered", Value::Bool(d.kind.delivers()));
            Value::Map(m)
        })
        .collect();
    let mut m = Map::new();
    m.put("DeliveryStreamName", Value::Str(v.stream.name.clone()));
    m.put(
        "DeliveryStreamStatus",
        Value::Str(v.stream.status.as_str().to_owned()),
    );
    m.put("now", Value::Timestamp(v.now_ms));
    m.put("failureDescription", v.failure.clone().map(Value::Str));
    m.put("dataFreshnessSeconds", Value::Float(s.data_freshness_secs));
    m.put("counters", Value::Map(counters));
    m.put("unreadRecords", int(v.unread_records));
    m.put("staged", Value::Map(held(&v.fill.staged, v.now_ms)));
    m.put("partitions", Value::List(partitions));
    m.put("pending", Value::Map(held(&v.fill.pending, v.now_ms)));
    m.put("destinations", Value::List(destinations));
    Value::Map(m)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use riffle_core::clock::ManualClock;
    use riffle_core::Clock;
    use riffle_firehose::{Config, Ctx};
    use riffle_log::memory::MemoryEngine;

    use super::*;

    fn doc(v: Value) -> String {
        String::from_utf8(riffle_wire::json::encode(&v).to_vec()).unwrap()
    }

    async fn call(svc: &Service, op: &str, body: &str) -> Value {
        let ctx = Ctx {
            region: "us-east-1".into(),
        };
        svc.call(
            &ctx,
            op,
            riffle_wire::json::decode(body.as_bytes()).unwrap(),
        )
        .await
        .unwrap()
    }

    /// Without an object sink an S3 destination keeps records buffered:
    /// the console sees them unread, the reason, and its stored-only
    /// destinations.
    #[tokio::test]
    async fn console_view_of_a_stream_that_cannot_deliver() {
        let clock = ManualClock::new(1_700_000_000_000);
        let svc = Service::new(
            Config {
                status_delay_ms: 0,
                delivery_tick_ms: 10,
                ..Config::default()
            },
            clock.clone() as Arc<dyn Clock>,
            MemoryEngine::new(),
            None,
        );
        call(
            &svc,
            "CreateDeliveryStream",
            r#"{"DeliveryStreamName":"orders","ExtendedS3DestinationConfiguration":{"RoleARN":"arn:aws:iam::000000000000:role/r","BucketARN":"arn:aws:s3:::b"}}"#,
        )
        .await;
        call(
            &svc,
            "PutRecordBatch",
            r#"{"DeliveryStreamName":"orders","Records":[{"Data":"YWJj"},{"Data":"ZGVm"}]}"#,
        )
        .await;
        let not_configured = riffle_firehose::deliver::NOT_CONFIGURED;
        let mut last = String::new();
        for _ in 0..200 {
            let v = svc
                .console_view(&("us-east-1".into(), "orders".into()))
                .unwrap();
            last = doc(document(&v));
            if v.failure.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(
            last,
            format!(
                r#"{{"DeliveryStreamName":"orders","DeliveryStreamStatus":"ACTIVE","now":1700000000,"failureDescription":"{not_configured}","dataFreshnessSeconds":0,"counters":{{"IncomingRecords":2,"IncomingBytes":6,"DeliveryToS3.Success":0,"DeliveryToS3.Records":0,"DeliveryToS3.Bytes":0,"DeliveryToRedshift.Success":0,"DeliveryToRedshift.Records":0,"DeliveryToRedshift.Bytes":0,"ThrottledRecords":0,"FailedAttempts":0,"PartitionCount":0,"PartitionCountExceeded":0,"JQProcessing.Duration":0}},"unreadRecords":2,"staged":{{"records":0,"bytes":0}},"partitions":[],"pending":{{"records":0,"bytes":0}},"destinations":[{{"DestinationId":"destinationId-000000000001","type":"ExtendedS3","delivered":true}}]}}"#
            )
        );
        let missing = stream(&svc, "nope", "us-east-1");
        assert_eq!(missing.status(), 400);
        assert_eq!(
            missing.headers()["x-amzn-errortype"],
            "ResourceNotFoundException:"
        );
    }
}
