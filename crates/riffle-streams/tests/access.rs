//! In-process readers and writers: every record once, partition-key order
//! across splits, merges and rescaling (parents drained before children),
//! checkpoints that resume exactly after the last record, LATEST and
//! AT_TIMESTAMP starts, and a reader that waits for new records.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use riffle_core::clock::SystemClock;
use riffle_core::Clock;
use riffle_log::memory::MemoryEngine;
use riffle_streams::access::{PutEntry, PutOutcome, Start, StreamReader, StreamRecord};
use riffle_streams::{Config, Ctx, Service};
use riffle_wire::Value;

const REGION: &str = "us-east-1";

async fn call(svc: &Service, op: &str, json: &str) -> Value {
    let ctx = Ctx {
        region: REGION.into(),
    };
    let doc = riffle_wire::json::decode(json.as_bytes()).unwrap();
    svc.call(&ctx, op, doc)
        .await
        .unwrap_or_else(|e| panic!("{op}: {e}"))
}

async fn service(name: &str, shards: u32) -> Arc<Service> {
    let cfg = Config {
        status_delay_ms: 0,
        ..Config::default()
    };
    let svc = Service::new(
        cfg,
        SystemClock::new() as Arc<dyn Clock>,
        MemoryEngine::new(),
        [7; 32],
    );
    call(
        &svc,
        "CreateStream",
        &format!(r#"{{"StreamName":"{name}","ShardCount":{shards}}}"#),
    )
    .await;
    svc
}

/// Puts `rounds` records for each of ten keys; data is `key/n`.
async fn put_round(svc: &Arc<Service>, name: &str, round: usize, put: &mut Vec<(String, String)>) {
    let w = svc.stream_writer(REGION, name).unwrap();
    let entries: Vec<PutEntry> = (0..10)
        .map(|k| {
            let key = format!("key-{k}");
            let data = format!("{key}/{round}");
            put.push((key.clone(), data.clone()));
            PutEntry {
                partition_key: key,
                explicit_hash_key: None,
                data: Bytes::from(data),
            }
        })
        .collect();
    let out = w.put(entries).await.unwrap();
    assert_eq!(out.len(), 10);
    assert!(
        out.iter().all(|o| matches!(o, PutOutcome::Ok { .. })),
        "{out:?}"
    );
}

async fn drain(r: &mut StreamReader, want: usize) -> Vec<StreamRecord> {
    let mut got = Vec::new();
    for _ in 0..200 {
        if got.len() >= want {
            break;
        }
        got.extend(r.next(7, Duration::from_millis(50)).await.unwrap());
    }
    got
}

async fn lineage(svc: &Service, name: &str) -> HashMap<String, Vec<String>> {
    let out = call(svc, "ListShards", &format!(r#"{{"StreamName":"{name}"}}"#)).await;
    let Value::Map(m) = out else { panic!() };
    let Some(Value::List(shards)) = m.get("Shards") else {
        panic!()
    };
    shards
        .iter()
        .map(|sh| {
            let Value::Map(sh) = sh else { panic!() };
            let text = |k: &str| match sh.get(k) {
                Some(Value::Str(s)) => Some(s.clone()),
                _ => None,
            };
            let parents = [text("ParentShardId"), text("AdjacentParentShardId")]
                .into_iter()
                .flatten()
                .collect();
            (text("ShardId").unwrap(), parents)
        })
        .collect()
}

/// Each record once; each key's records in put order; every record of a
/// shard read after every record of its parents.
fn check_order(
    got: &[StreamRecord],
    put: &[(String, String)],
    parents: &HashMap<String, Vec<String>>,
) {
    let datas: Vec<String> = got
        .iter()
        .map(|r| String::from_utf8(r.data.to_vec()).unwrap())
        .collect();
    let mut sorted = datas.clone();
    sorted.sort();
    let mut want: Vec<String> = put.iter().map(|(_, d)| d.clone()).collect();
    want.sort();
    assert_eq!(sorted, want, "every record exactly once");
    let mut by_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in got {
        by_key
            .entry(&r.partition_key)
            .or_default()
            .push(std::str::from_utf8(&r.data).unwrap());
    }
    let mut want_by_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (k, d) in put {
        want_by_key.entry(k).or_default().push(d);
    }
    assert_eq!(by_key, want_by_key, "per-key order");
    let last_of: HashMap<&str, usize> = got
        .iter()
        .enumerate()
        .map(|(i, r)| (r.shard_id.as_str(), i))
        .collect();
    for (i, r) in got.iter().enumerate() {
        for p in &parents[&r.shard_id] {
            if let Some(&last) = last_of.get(p.as_str()) {
                assert!(
                    last < i,
                    "{} read before its parent {p} was drained",
                    r.shard_id
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_every_record_in_key_order_across_reshards() {
    let svc = service("clicks", 2).await;
    let mut put = Vec::new();
    put_round(&svc, "clicks", 0, &mut put).await;
    call(
        &svc,
        "SplitShard",
        r#"{"StreamName":"clicks","ShardToSplit":"shardId-000000000000","NewStartingHashKey":"85070591730234615865843651857942052864"}"#,
    )
    .await;
    put_round(&svc, "clicks", 1, &mut put).await;
    call(
        &svc,
        "MergeShards",
        r#"{"StreamName":"clicks","ShardToMerge":"shardId-000000000002","AdjacentShardToMerge":"shardId-000000000003"}"#,
    )
    .await;
    put_round(&svc, "clicks", 2, &mut put).await;
    call(
        &svc,
        "UpdateShardCount",
        r#"{"StreamName":"clicks","TargetShardCount":4,"ScalingType":"UNIFORM_SCALING"}"#,
    )
    .await;
    put_round(&svc, "clicks", 3, &mut put).await;

    let mut r = svc
        .stream_reader(REGION, "clicks", Start::TrimHorizon)
        .unwrap();
    let got = drain(&mut r, put.len()).await;
    check_order(&got, &put, &lineage(&svc, "clicks").await);
    assert!(r
        .next(10, Duration::from_millis(20))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_resumes_right_after_the_last_record() {
    let svc = service("orders", 2).await;
    let mut put = Vec::new();
    put_round(&svc, "orders", 0, &mut put).await;
    put_round(&svc, "orders", 1, &mut put).await;
    let mut first = svc
        .stream_reader(REGION, "orders", Start::TrimHorizon)
        .unwrap();
    let mut got = first.next(7, Duration::ZERO).await.unwrap();
    assert_eq!(got.len(), 7);
    let cp = first.checkpoint();
    // A checkpoint survives serialisation (services persist it).
    let cp: riffle_streams::access::Checkpoint =
        serde_json::from_str(&serde_json::to_string(&cp).unwrap()).unwrap();
    call(
        &svc,
        "SplitShard",
        r#"{"StreamName":"orders","ShardToSplit":"shardId-000000000001","NewStartingHashKey":"255211775190703847597530955573826158592"}"#,
    )
    .await;
    put_round(&svc, "orders", 2, &mut put).await;
    let mut second = svc
        .stream_reader(REGION, "orders", Start::Checkpoint(cp))
        .unwrap();
    got.extend(drain(&mut second, put.len() - 7).await);
    check_order(&got, &put, &lineage(&svc, "orders").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_waits_for_new_records() {
    let svc = service("live", 3).await;
    let mut old = Vec::new();
    put_round(&svc, "live", 0, &mut old).await;
    let mut r = svc.stream_reader(REGION, "live", Start::Latest).unwrap();
    assert!(r
        .next(100, Duration::from_millis(50))
        .await
        .unwrap()
        .is_empty());
    let writer = svc.clone();
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut put = Vec::new();
        put_round(&writer, "live", 1, &mut put).await;
        put
    });
    let first = r.next(100, Duration::from_secs(10)).await.unwrap();
    assert!(!first.is_empty(), "the reader did not wake for new records");
    let put = late.await.unwrap();
    let mut got = first;
    got.extend(drain(&mut r, put.len() - got.len()).await);
    check_order(&got, &put, &lineage(&svc, "live").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_timestamp_skips_what_came_before() {
    let svc = service("ts", 1).await;
    let mut old = Vec::new();
    put_round(&svc, "ts", 0, &mut old).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let ts = svc.now_ms();
    let mut put = Vec::new();
    put_round(&svc, "ts", 1, &mut put).await;
    let mut r = svc
        .stream_reader(REGION, "ts", Start::AtTimestamp(ts))
        .unwrap();
    let got = drain(&mut r, put.len()).await;
    check_order(&got, &put, &lineage(&svc, "ts").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_deleted_streams_are_not_found() {
    let svc = service("gone", 1).await;
    let err = svc
        .stream_reader(REGION, "nope", Start::TrimHorizon)
        .err()
        .unwrap();
    assert_eq!(
        (err.error_type(), err.message()),
        (
            "ResourceNotFoundException",
            Some("Stream nope under account 000000000000 not found.".into())
        )
    );
    let mut r = svc
        .stream_reader(REGION, "gone", Start::TrimHorizon)
        .unwrap();
    let w = svc.stream_writer(REGION, "gone").unwrap();
    call(&svc, "DeleteStream", r#"{"StreamName":"gone"}"#).await;
    let err = r.next(1, Duration::ZERO).await.unwrap_err();
    assert_eq!(err.error_type(), "ResourceNotFoundException");
    let err = w
        .put(vec![PutEntry {
            partition_key: "k".into(),
            explicit_hash_key: None,
            data: Bytes::from_static(b"x"),
        }])
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "ResourceNotFoundException");
    let err = w.put(Vec::new()).await.unwrap_err();
    assert_eq!(err.error_type(), "ValidationException");
}
