//! Who waits for whom: a control operation stuck in its metadata commit
//! holds up nothing but later control operations of its own stream, and its
//! change is visible only once the commit has returned; a creation stuck in
//! its commit holds up no other creation or deletion, while the names and
//! shards it reserved still count. A failed commit changes nothing.
//!
//! The metadata store is the real one (redb in a file); a gate holds or
//! fails commits of rows named `slow` *before* they reach redb. So what is
//! shown is that the service holds no lock of its own across a commit that
//! another stream needs. redb itself runs one write transaction at a time,
//! so commits of different streams are serialised by the store (each is one
//! short transaction); that wait is outside what the gate holds.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use riffle_core::clock::SystemClock;
use riffle_core::Clock;
use riffle_log::memory::MemoryEngine;
use riffle_meta::{Backend, Batch, MetaError, RedbBackend, Store};
use riffle_streams::{Config, Ctx, KinesisError, Service};
use riffle_wire::Value;

/// What the gate does with commits that touch the slow stream.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Gate {
    Open,
    Hold,
    Fail,
}

#[derive(Default)]
struct GateState {
    mode: Option<Gate>,
    waiting: usize,
}

/// The redb metadata store, with commits of rows named `slow` held or
/// failed before they reach it.
#[derive(Clone)]
struct GatedMeta {
    gate: Arc<(Mutex<GateState>, Condvar)>,
    redb: Arc<RedbBackend>,
    _dir: Arc<tempfile::TempDir>,
}

impl GatedMeta {
    fn new() -> GatedMeta {
        let dir = tempfile::tempdir().unwrap();
        let redb = RedbBackend::open(&dir.path().join("meta.redb")).unwrap();
        GatedMeta {
            gate: Arc::default(),
            redb: Arc::new(redb),
            _dir: Arc::new(dir),
        }
    }

    fn set(&self, g: Gate) {
        let (m, cv) = &*self.gate;
        m.lock().unwrap().mode = Some(g);
        cv.notify_all();
    }

    fn wait_for_waiter(&self) {
        let (m, cv) = &*self.gate;
        let g = m.lock().unwrap();
        let (_g, t) = cv
            .wait_timeout_while(g, Duration::from_secs(10), |s| s.waiting == 0)
            .unwrap();
        assert!(!t.timed_out(), "the commit never reached the store");
    }
}

/// Opens the gate when dropped, so a failing test ends instead of waiting
/// for a held commit forever.
struct OpenOnDrop(GatedMeta);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.set(Gate::Open);
    }
}

impl Backend for GatedMeta {
    fn scan(&self, table: &str) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        self.redb.scan(table)
    }
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, MetaError> {
        self.redb.get(table, key)
    }
    fn tables(&self) -> Result<Vec<String>, MetaError> {
        self.redb.tables()
    }
    fn commit(&self, batch: &Batch) -> Result<(), MetaError> {
        let slow = batch.writes.iter().any(|w| w.key().ends_with("\0slow"));
        if slow {
            let (m, cv) = &*self.gate;
            let mut g = m.lock().unwrap();
            g.waiting += 1;
            cv.notify_all();
            let mut g = cv.wait_while(g, |s| s.mode == Some(Gate::Hold)).unwrap();
            g.waiting -= 1;
            if g.mode == Some(Gate::Fail) {
                return Err(std::io::Error::other("injected commit failure").into());
            }
        }
        self.redb.commit(batch)
    }
}

fn doc(json: &str) -> Value {
    riffle_wire::json::decode(json.as_bytes()).unwrap()
}

fn ctx() -> Ctx {
    Ctx {
        region: "us-east-1".into(),
    }
}

async fn call(svc: &Service, op: &str, json: &str) -> Result<Value, KinesisError> {
    svc.call(&ctx(), op, doc(json)).await
}

fn tags(v: &Value) -> Vec<String> {
    let Value::Map(m) = v else { panic!("{v:?}") };
    let Some(Value::List(l)) = m.get("Tags") else {
        panic!("{v:?}")
    };
    l.iter()
        .map(|t| match t {
            Value::Map(t) => match t.get("Key") {
                Some(Value::Str(k)) => k.clone(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        })
        .collect()
}

fn empty_service(meta: GatedMeta, shard_limit: u32) -> Arc<Service> {
    let cfg = Config {
        status_delay_ms: 0,
        shard_limit,
        ..Config::default()
    };
    let clock = SystemClock::new() as Arc<dyn Clock>;
    let ns = Store::new(meta).namespace("kinesis").unwrap();
    Service::open(cfg, clock, MemoryEngine::new(), ns).unwrap()
}

async fn service(meta: GatedMeta) -> Arc<Service> {
    let svc = empty_service(meta, Config::default().shard_limit);
    for name in ["slow", "fast"] {
        call(
            &svc,
            "CreateStream",
            &format!(r#"{{"StreamName":"{name}","ShardCount":2}}"#),
        )
        .await
        .unwrap();
    }
    svc
}

fn within<F: std::future::Future>(f: F) -> tokio::time::Timeout<F> {
    tokio::time::timeout(Duration::from_secs(5), f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_commit_blocks_no_reader_or_writer() {
    let meta = GatedMeta::new();
    let svc = service(meta.clone()).await;
    let _open = OpenOnDrop(meta.clone());
    meta.set(Gate::Hold);
    let tagging = tokio::spawn({
        let svc = svc.clone();
        async move {
            call(
                &svc,
                "AddTagsToStream",
                r#"{"StreamName":"slow","Tags":{"team":"a"}}"#,
            )
            .await
        }
    });
    let waiter = meta.clone();
    tokio::task::spawn_blocking(move || waiter.wait_for_waiter())
        .await
        .unwrap();

    // Records flow into both streams, and are read back, while the commit
    // of the slow stream's tag is held.
    for name in ["fast", "slow"] {
        let put = within(call(
            &svc,
            "PutRecord",
            &format!(r#"{{"StreamName":"{name}","PartitionKey":"k","Data":"aGk="}}"#),
        ))
        .await
        .expect("PutRecord waited for another stream's commit")
        .unwrap();
        let Value::Map(put) = put else { panic!() };
        let Some(Value::Str(shard)) = put.get("ShardId") else {
            panic!()
        };
        let it = within(call(
            &svc,
            "GetShardIterator",
            &format!(
                r#"{{"StreamName":"{name}","ShardId":"{shard}","ShardIteratorType":"TRIM_HORIZON"}}"#
            ),
        ))
        .await
        .expect("GetShardIterator waited")
        .unwrap();
        let Value::Map(it) = it else { panic!() };
        let Some(Value::Str(it)) = it.get("ShardIterator") else {
            panic!()
        };
        let got = within(call(
            &svc,
            "GetRecords",
            &format!(r#"{{"ShardIterator":"{it}"}}"#),
        ))
        .await
        .expect("GetRecords waited")
        .unwrap();
        let Value::Map(got) = got else { panic!() };
        let Some(Value::List(records)) = got.get("Records") else {
            panic!()
        };
        assert_eq!(records.len(), 1, "{name}");
    }
    // The change is not visible before it is durable.
    let listed = within(call(&svc, "ListTagsForStream", r#"{"StreamName":"slow"}"#))
        .await
        .expect("ListTagsForStream waited")
        .unwrap();
    assert_eq!(tags(&listed), Vec::<String>::new());
    // Control operations on another stream go ahead too (their commits
    // reach redb, which this one has not yet).
    within(call(
        &svc,
        "AddTagsToStream",
        r#"{"StreamName":"fast","Tags":{"team":"b"}}"#,
    ))
    .await
    .expect("a control operation waited for another stream's commit")
    .unwrap();
    assert!(!tagging.is_finished());

    meta.set(Gate::Open);
    within(tagging).await.unwrap().unwrap().unwrap();
    let listed = call(&svc, "ListTagsForStream", r#"{"StreamName":"slow"}"#)
        .await
        .unwrap();
    assert_eq!(tags(&listed), vec!["team".to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_changes_nothing() {
    let meta = GatedMeta::new();
    let svc = service(meta.clone()).await;
    meta.set(Gate::Fail);
    let err = call(
        &svc,
        "AddTagsToStream",
        r#"{"StreamName":"slow","Tags":{"team":"a"}}"#,
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type(), "InternalFailure");
    let err = call(
        &svc,
        "SplitShard",
        r#"{"StreamName":"slow","ShardToSplit":"shardId-000000000000","NewStartingHashKey":"1000"}"#,
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type(), "InternalFailure");
    let listed = call(&svc, "ListTagsForStream", r#"{"StreamName":"slow"}"#)
        .await
        .unwrap();
    assert_eq!(tags(&listed), Vec::<String>::new());
    let shards = call(&svc, "ListShards", r#"{"StreamName":"slow"}"#)
        .await
        .unwrap();
    let Value::Map(shards) = shards else { panic!() };
    let Some(Value::List(shards)) = shards.get("Shards") else {
        panic!()
    };
    assert_eq!(shards.len(), 2, "a failed split left shards behind");
    // Deleting fails as a whole too: the stream is still there.
    let err = call(&svc, "DeleteStream", r#"{"StreamName":"slow"}"#)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "InternalFailure");
    meta.set(Gate::Open);
    call(&svc, "DescribeStreamSummary", r#"{"StreamName":"slow"}"#)
        .await
        .unwrap();
}

fn stream_names(v: &Value) -> Vec<String> {
    let Value::Map(m) = v else { panic!("{v:?}") };
    let Some(Value::List(l)) = m.get("StreamNames") else {
        panic!("{v:?}")
    };
    l.iter()
        .map(|n| match n {
            Value::Str(n) => n.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creation_stuck_in_its_commit_holds_up_no_other_creation() {
    let meta = GatedMeta::new();
    let svc = empty_service(meta.clone(), 10);
    let _open = OpenOnDrop(meta.clone());
    meta.set(Gate::Hold);
    let creating = tokio::spawn({
        let svc = svc.clone();
        async move {
            call(
                &svc,
                "CreateStream",
                r#"{"StreamName":"slow","ShardCount":4}"#,
            )
            .await
        }
    });
    let waiter = meta.clone();
    tokio::task::spawn_blocking(move || waiter.wait_for_waiter())
        .await
        .unwrap();

    // Other streams are created and deleted meanwhile.
    within(call(
        &svc,
        "CreateStream",
        r#"{"StreamName":"other","ShardCount":3}"#,
    ))
    .await
    .expect("a creation waited for another creation's commit")
    .unwrap();
    within(call(&svc, "DeleteStream", r#"{"StreamName":"other"}"#))
        .await
        .expect("a deletion waited for a creation's commit")
        .unwrap();
    // The creation in flight keeps its name and its 4 shards of the 10.
    let err = within(call(
        &svc,
        "CreateStream",
        r#"{"StreamName":"slow","ShardCount":1}"#,
    ))
    .await
    .unwrap()
    .unwrap_err();
    assert_eq!(err.error_type(), "ResourceInUseException");
    let err = within(call(
        &svc,
        "CreateStream",
        r#"{"StreamName":"big","ShardCount":7}"#,
    ))
    .await
    .unwrap()
    .unwrap_err();
    assert_eq!(err.error_type(), "LimitExceededException");
    within(call(
        &svc,
        "CreateStream",
        r#"{"StreamName":"fits","ShardCount":6}"#,
    ))
    .await
    .unwrap()
    .unwrap();
    // Not visible before it is durable.
    let err = call(&svc, "DescribeStreamSummary", r#"{"StreamName":"slow"}"#)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "ResourceNotFoundException");
    assert!(!creating.is_finished());

    meta.set(Gate::Open);
    within(creating).await.unwrap().unwrap().unwrap();
    let listed = call(&svc, "ListStreams", "{}").await.unwrap();
    assert_eq!(stream_names(&listed), vec!["fits", "slow"]);

    // A failed creation gives its name and shards back.
    call(&svc, "DeleteStream", r#"{"StreamName":"slow"}"#)
        .await
        .unwrap();
    call(&svc, "DeleteStream", r#"{"StreamName":"fits"}"#)
        .await
        .unwrap();
    meta.set(Gate::Fail);
    let err = call(
        &svc,
        "CreateStream",
        r#"{"StreamName":"slow","ShardCount":10}"#,
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type(), "InternalFailure");
    meta.set(Gate::Open);
    call(
        &svc,
        "CreateStream",
        r#"{"StreamName":"slow","ShardCount":10}"#,
    )
    .await
    .unwrap();
    let listed = call(&svc, "ListStreams", "{}").await.unwrap();
    assert_eq!(stream_names(&listed), vec!["slow"]);
}
