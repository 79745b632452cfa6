//! Metadata written by format version 1 stays readable: `fixtures/meta-v1.redb`
//! was written by the server as it stood before the shared metadata store
//! (streams in the un-namespaced redb tables `streams` and `server`), and
//! `fixtures/meta-v1.expected.json` holds what the API said about it then.

use std::path::Path;
use std::sync::Arc;

use riffle_core::clock::ManualClock;
use riffle_core::Clock;
use riffle_log::memory::MemoryEngine;
use riffle_streams::{Config, Ctx, Service};
use riffle_wire::Value;

const T0: i64 = 1_790_000_000_000;

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

fn ctx(region: &str) -> Ctx {
    Ctx {
        region: region.into(),
    }
}

async fn call(svc: &Service, region: &str, op: &str, json: &str) -> Value {
    let body = riffle_wire::json::decode(json.as_bytes()).unwrap();
    svc.call(&ctx(region), op, body)
        .await
        .unwrap_or_else(|e| panic!("{op} {json}: {e:?}"))
}

/// A call's answer, or its error, as JSON.
async fn answer(svc: &Service, region: &str, op: &str, json: &str) -> serde_json::Value {
    let body = riffle_wire::json::decode(json.as_bytes()).unwrap();
    match svc.call(&ctx(region), op, body).await {
        Ok(v) => to_json(&v),
        Err(e) => serde_json::json!({ "error": format!("{e:?}") }),
    }
}

fn to_json(v: &Value) -> serde_json::Value {
    serde_json::from_slice(&riffle_wire::json::encode(v)).unwrap()
}

fn field<'a>(v: &'a serde_json::Value, path: &[&str]) -> &'a serde_json::Value {
    path.iter().fold(v, |v, k| &v[*k])
}

/// Everything the API tells about the account's metadata.
async fn observe(svc: &Service) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    out.insert(
        "DescribeAccountSettings".into(),
        to_json(&call(svc, "us-east-1", "DescribeAccountSettings", "{}").await),
    );
    for region in ["us-east-1", "eu-west-1"] {
        let list = to_json(&call(svc, region, "ListStreams", "{}").await);
        let mut streams = serde_json::Map::new();
        for name in list["StreamNames"].as_array().unwrap() {
            let name = name.as_str().unwrap();
            let by_name = format!(r#"{{"StreamName":"{name}"}}"#);
            let describe = to_json(&call(svc, region, "DescribeStream", &by_name).await);
            let arn = field(&describe, &["StreamDescription", "StreamARN"])
                .as_str()
                .unwrap()
                .to_owned();
            let by_arn = format!(r#"{{"StreamARN":"{arn}"}}"#);
            let by_resource = format!(r#"{{"ResourceARN":"{arn}"}}"#);
            let mut s = serde_json::Map::new();
            s.insert("DescribeStream".into(), describe);
            for (op, body) in [
                ("DescribeStreamSummary", &by_name),
                ("ListTagsForStream", &by_name),
                ("ListShards", &by_name),
                ("GetResourcePolicy", &by_resource),
            ] {
                s.insert(op.into(), answer(svc, region, op, body).await);
            }
            let consumers = to_json(&call(svc, region, "ListStreamConsumers", &by_arn).await);
            let mut each = serde_json::Map::new();
            for c in consumers["Consumers"].as_array().unwrap() {
                let carn = c["ConsumerARN"].as_str().unwrap();
                let mut m = serde_json::Map::new();
                for (op, body) in [
                    (
                        "DescribeStreamConsumer",
                        format!(r#"{{"ConsumerARN":"{carn}"}}"#),
                    ),
                    (
                        "ListTagsForResource",
                        format!(r#"{{"ResourceARN":"{carn}"}}"#),
                    ),
                    (
                        "GetResourcePolicy",
                        format!(r#"{{"ResourceARN":"{carn}"}}"#),
                    ),
                ] {
                    m.insert(op.into(), answer(svc, region, op, &body).await);
                }
                each.insert(c["ConsumerName"].as_str().unwrap().into(), m.into());
            }
            s.insert("ListStreamConsumers".into(), consumers);
            s.insert("Consumers".into(), each.into());
            streams.insert(name.into(), s.into());
        }
        out.insert(region.into(), streams.into());
    }
    out.into()
}

fn config(status_delay_ms: i64) -> Config {
    Config {
        status_delay_ms,
        ..Config::default()
    }
}

async fn put(svc: &Service, stream: &str, n: usize) {
    for i in 0..n {
        call(
            svc,
            "us-east-1",
            "PutRecord",
            &format!(r#"{{"StreamName":"{stream}","PartitionKey":"key-{i}","Data":"cmlmZmxl"}}"#),
        )
        .await;
    }
}

/// Writes the fixture with the code of the day (run by hand, once, before
/// the format changed): `cargo test -p riffle-streams --test meta_v1 -- --ignored`.
#[tokio::test]
#[ignore]
async fn write_fixture() {
    use riffle_streams::meta::RedbMeta;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.redb");
    let clock = ManualClock::new(T0);
    let arn = "arn:aws:kinesis:us-east-1:000000000000:stream/full";
    {
        let meta = RedbMeta::open(&path).unwrap();
        let svc = Service::open(
            config(0),
            clock.clone() as Arc<dyn Clock>,
            MemoryEngine::new(),
            Box::new(meta),
        )
        .unwrap();
        let us = |op: &'static str, body: String| {
            let svc = svc.clone();
            async move { call(&svc, "us-east-1", op, &body).await }
        };
        us(
            "CreateStream",
            r#"{"StreamName":"full","ShardCount":2,"Tags":{"team":"riffle"}}"#.into(),
        )
        .await;
        for name in ["doomed", "updating"] {
            us(
                "CreateStream",
                format!(r#"{{"StreamName":"{name}","ShardCount":1}}"#),
            )
            .await;
        }
        call(
            &svc,
            "eu-west-1",
            "CreateStream",
            r#"{"StreamName":"full","StreamModeDetails":{"StreamMode":"ON_DEMAND"}}"#,
        )
        .await;
        put(&svc, "full", 5).await;
        clock.advance(1_000);
        us(
            "SplitShard",
            r#"{"StreamName":"full","ShardToSplit":"shardId-000000000000","NewStartingHashKey":"85070591730234615865843651857942052864"}"#.into(),
        )
        .await;
        put(&svc, "full", 7).await;
        clock.advance(1_000);
        us(
            "MergeShards",
            r#"{"StreamName":"full","ShardToMerge":"shardId-000000000003","AdjacentShardToMerge":"shardId-000000000001"}"#.into(),
        )
        .await;
        put(&svc, "full", 3).await;
        clock.advance(1_000);
        us(
            "AddTagsToStream",
            r#"{"StreamName":"full","Tags":{"env":"test","riffle:durability":"none","path":"a b/é = +@"}}"#.into(),
        )
        .await;
        us(
            "IncreaseStreamRetentionPeriod",
            r#"{"StreamName":"full","RetentionPeriodHours":48}"#.into(),
        )
        .await;
        us(
            "StartStreamEncryption",
            r#"{"StreamName":"full","EncryptionType":"KMS","KeyId":"alias/aws/kinesis"}"#.into(),
        )
        .await;
        clock.advance(1_000);
        us(
            "StopStreamEncryption",
            r#"{"StreamName":"full","EncryptionType":"KMS","KeyId":"alias/aws/kinesis"}"#.into(),
        )
        .await;
        clock.advance(1_000);
        us(
            "StartStreamEncryption",
            r#"{"StreamName":"full","EncryptionType":"KMS","KeyId":"arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab"}"#.into(),
        )
        .await;
        us(
            "EnableEnhancedMonitoring",
            r#"{"StreamName":"full","ShardLevelMetrics":["IncomingBytes","OutgoingRecords"]}"#
                .into(),
        )
        .await;
        let policy = r#"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::000000000000:root\"},\"Action\":\"kinesis:GetRecords\",\"Resource\":\"RES\"}]}"#;
        us(
            "PutResourcePolicy",
            format!(
                r#"{{"ResourceARN":"{arn}","Policy":"{}"}}"#,
                policy.replace("RES", arn)
            ),
        )
        .await;
        us(
            "UpdateShardCount",
            r#"{"StreamName":"full","TargetShardCount":4,"ScalingType":"UNIFORM_SCALING"}"#.into(),
        )
        .await;
        clock.advance(1_000);
        let reg = to_json(
            &us(
                "RegisterStreamConsumer",
                format!(r#"{{"StreamARN":"{arn}","ConsumerName":"c1","Tags":{{"owner":"ops"}}}}"#),
            )
            .await,
        );
        let carn = reg["Consumer"]["ConsumerARN"].as_str().unwrap().to_owned();
        us(
            "TagResource",
            format!(r#"{{"ResourceARN":"{carn}","Tags":{{"tier":"gold"}}}}"#),
        )
        .await;
        us(
            "PutResourcePolicy",
            format!(
                r#"{{"ResourceARN":"{carn}","Policy":"{}"}}"#,
                policy.replace("RES", &carn)
            ),
        )
        .await;
        us(
            "UpdateMaxRecordSize",
            format!(r#"{{"StreamARN":"{arn}","MaxRecordSizeInKiB":2048}}"#),
        )
        .await;
        let eu = "arn:aws:kinesis:eu-west-1:000000000000:stream/full";
        call(
            &svc,
            "eu-west-1",
            "UpdateStreamWarmThroughput",
            &format!(r#"{{"StreamARN":"{eu}","WarmThroughputMiBps":100}}"#),
        )
        .await;
        call(
            &svc,
            "eu-west-1",
            "UpdateStreamRecordDistributionStrategy",
            &format!(r#"{{"StreamARN":"{eu}","RecordDistributionStrategy":"USER_PARTITION_KEY"}}"#),
        )
        .await;
        us(
            "UpdateAccountSettings",
            r#"{"MinimumThroughputBillingCommitment":{"Status":"ENABLED"}}"#.into(),
        )
        .await;
        put(&svc, "full", 2).await;
        drop(us);
        assert_eq!(Arc::strong_count(&svc), 1);
    }
    clock.advance(1_000);
    {
        // Transitions in flight: a stream CREATING, one UPDATING, one
        // DELETING, a consumer CREATING.
        let meta = RedbMeta::open(&path).unwrap();
        let svc = Service::open(
            config(3_600_000),
            clock.clone() as Arc<dyn Clock>,
            MemoryEngine::new(),
            Box::new(meta),
        )
        .unwrap();
        call(
            &svc,
            "us-east-1",
            "CreateStream",
            r#"{"StreamName":"pending","ShardCount":1}"#,
        )
        .await;
        call(
            &svc,
            "us-east-1",
            "UpdateShardCount",
            r#"{"StreamName":"updating","TargetShardCount":2,"ScalingType":"UNIFORM_SCALING"}"#,
        )
        .await;
        call(
            &svc,
            "us-east-1",
            "DeleteStream",
            r#"{"StreamName":"doomed"}"#,
        )
        .await;
        call(
            &svc,
            "us-east-1",
            "RegisterStreamConsumer",
            &format!(r#"{{"StreamARN":"{arn}","ConsumerName":"c2"}}"#),
        )
        .await;
        let expected = serde_json::json!({
            "clock_ms": clock.now_ms(),
            "observed": observe(&svc).await,
        });
        std::fs::write(
            fixtures().join("meta-v1.expected.json"),
            serde_json::to_string_pretty(&expected).unwrap() + "\n",
        )
        .unwrap();
        assert_eq!(Arc::strong_count(&svc), 1);
    }
    std::fs::copy(&path, fixtures().join("meta-v1.redb")).unwrap();
}
