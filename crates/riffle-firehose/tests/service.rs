//! The service in process: lifecycle, versions, destinations, the buffer,
//! and state that survives reopening the metadata store.

use std::sync::Arc;

use riffle_core::clock::ManualClock;
use riffle_core::Clock;
use riffle_firehose::{model, Config, Ctx, Service};
use riffle_log::memory::MemoryEngine;
use riffle_log::LogEngine;
use riffle_wire::{json, Value};

fn ctx() -> Ctx {
    Ctx {
        region: "us-east-1".into(),
    }
}

fn doc(s: &str) -> Value {
    json::decode(s.as_bytes()).unwrap()
}

async fn call(
    svc: &Service,
    op: &str,
    body: &str,
) -> Result<Value, riffle_firehose::FirehoseError> {
    svc.call(&ctx(), op, doc(body)).await
}

fn text(v: &Value) -> String {
    String::from_utf8(json::encode(v)).unwrap()
}

const S3: &str = r#""ExtendedS3DestinationConfiguration":{"RoleARN":"arn:aws:iam::000000000000:role/r","BucketARN":"arn:aws:s3:::b"}"#;

fn service(
    clock: Arc<ManualClock>,
    engine: Arc<dyn LogEngine>,
    ns: Option<riffle_meta::Namespace>,
) -> Arc<Service> {
    let cfg = Config {
        status_delay_ms: 100,
        ..Config::default()
    };
    match ns {
        Some(ns) => Service::open(cfg, clock as Arc<dyn Clock>, engine, None, ns).unwrap(),
        None => Service::new(cfg, clock as Arc<dyn Clock>, engine, None),
    }
}

#[test]
fn every_pattern_compiles() {
    for p in model::PATTERNS {
        assert!(p.compiled().is_some(), "{}", p.src);
    }
    assert!(model::P_TAG_KEY.is_match("team"));
    assert!(model::P_TAG_KEY.is_match("awsome"));
    assert!(model::P_TAG_KEY.is_match("été"));
    assert!(!model::P_TAG_KEY.is_match("aws:x"));
    assert!(!model::P_NON_EMPTY_STRING.is_match("   "));
}

#[tokio::test]
async fn lifecycle_versions_and_destinations() {
    let clock = ManualClock::new(1_700_000_000_000);
    let svc = service(clock.clone(), MemoryEngine::new(), None);
    let out = call(
        &svc,
        "CreateDeliveryStream",
        &format!(r#"{{"DeliveryStreamName":"a",{S3}}}"#),
    )
    .await
    .unwrap();
    assert!(text(&out).contains("arn:aws:firehose:us-east-1:000000000000:deliverystream/a"));
    let e = call(
        &svc,
        "CreateDeliveryStream",
        &format!(r#"{{"DeliveryStreamName":"a",{S3}}}"#),
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), "ResourceInUseException");
    let d = text(
        &call(
            &svc,
            "DescribeDeliveryStream",
            r#"{"DeliveryStreamName":"a"}"#,
        )
        .await
        .unwrap(),
    );
    assert!(d.contains(r#""DeliveryStreamStatus":"CREATING""#), "{d}");
    // Not ACTIVE yet: records are refused.
    let e = call(
        &svc,
        "PutRecord",
        r#"{"DeliveryStreamName":"a","Record":{"Data":"aGk="}}"#,
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), "ResourceNotFoundException");
    clock.advance(100);
    let d = text(
        &call(
            &svc,
            "DescribeDeliveryStream",
            r#"{"DeliveryStreamName":"a"}"#,
        )
        .await
        .unwrap(),
    );
    assert!(d.contains(r#""DeliveryStreamStatus":"ACTIVE""#), "{d}");
    assert!(
        d.contains(r#""DestinationId":"destinationId-000000000001""#),
        "{d}"
    );
    assert!(d.contains(r#""S3DestinationDescription":{"#), "{d}");
    assert!(d.contains(r#""CompressionFormat":"UNCOMPRESSED""#), "{d}");
    let r = text(
        &call(
            &svc,
            "PutRecord",
            r#"{"DeliveryStreamName":"a","Record":{"Data":"aGk="}}"#,
        )
        .await
        .unwrap(),
    );
    assert!(r.contains(r#""Encrypted":false"#), "{r}");

    // A stale version is refused; the current one merges.
    let upd = |v: &str| {
        format!(
            r#"{{"DeliveryStreamName":"a","CurrentDeliveryStreamVersionId":"{v}","DestinationId":"destinationId-000000000001","ExtendedS3DestinationUpdate":{{"Prefix":"p/","BufferingHints":{{"IntervalInSeconds":60}}}}}}"#
        )
    };
    let e = call(&svc, "UpdateDestination", &upd("7"))
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "ConcurrentModificationException");
    call(&svc, "UpdateDestination", &upd("1")).await.unwrap();
    let d = text(
        &call(
            &svc,
            "DescribeDeliveryStream",
            r#"{"DeliveryStreamName":"a"}"#,
        )
        .await
        .unwrap(),
    );
    assert!(d.contains(r#""VersionId":"2""#), "{d}");
    assert!(d.contains(r#""Prefix":"p/""#), "{d}");
    assert!(
        d.contains(r#""BufferingHints":{"SizeInMBs":5,"IntervalInSeconds":60}"#),
        "{d}"
    );
    assert!(d.contains(r#""BucketARN":"arn:aws:s3:::b""#), "{d}");

    // Delete: DELETING, then gone.
    call(
        &svc,
        "DeleteDeliveryStream",
        r#"{"DeliveryStreamName":"a"}"#,
    )
    .await
    .unwrap();
    let d = text(
        &call(
            &svc,
            "DescribeDeliveryStream",
            r#"{"DeliveryStreamName":"a"}"#,
        )
        .await
        .unwrap(),
    );
    assert!(d.contains(r#""DeliveryStreamStatus":"DELETING""#), "{d}");
    clock.advance(100);
    let e = call(
        &svc,
        "DescribeDeliveryStream",
        r#"{"DeliveryStreamName":"a"}"#,
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), "ResourceNotFoundException");
    assert_eq!(
        e.message().unwrap(),
        "Firehose a not found under account 000000000000."
    );
}

#[tokio::test]
async fn reopening_keeps_streams_and_buffered_records() {
    let clock = ManualClock::new(1_700_000_000_000);
    let store = riffle_meta::Store::memory();
    let engine = MemoryEngine::new();
    {
        let svc = service(
            clock.clone(),
            engine.clone(),
            Some(store.namespace("firehose").unwrap()),
        );
        call(
            &svc,
            "CreateDeliveryStream",
            &format!(r#"{{"DeliveryStreamName":"k",{S3},"Tags":[{{"Key":"a","Value":"b"}}]}}"#),
        )
        .await
        .unwrap();
        clock.advance(100);
        call(
            &svc,
            "PutRecordBatch",
            r#"{"DeliveryStreamName":"k","Records":[{"Data":"YQ=="},{"Data":"Yg=="}]}"#,
        )
        .await
        .unwrap();
        svc.maintain().await;
    }
    let svc = service(
        clock.clone(),
        engine.clone(),
        Some(store.namespace("firehose").unwrap()),
    );
    let d = text(
        &call(
            &svc,
            "DescribeDeliveryStream",
            r#"{"DeliveryStreamName":"k"}"#,
        )
        .await
        .unwrap(),
    );
    assert!(d.contains(r#""DeliveryStreamStatus":"ACTIVE""#), "{d}");
    let t = text(
        &call(
            &svc,
            "ListTagsForDeliveryStream",
            r#"{"DeliveryStreamName":"k"}"#,
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        t,
        r#"{"Tags":[{"Key":"a","Value":"b"}],"HasMoreTags":false}"#
    );
}
