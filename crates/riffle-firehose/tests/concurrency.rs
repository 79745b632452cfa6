//! Who waits for whom: a creation stuck in its metadata commit holds up no
//! other creation, deletion or maintenance pass, while the name it reserved
//! and its place under the account limit still count; a failed creation
//! leaves nothing behind and gives both back.
//!
//! The metadata store is the real one (redb in a file); a gate holds or
//! fails commits of rows named `slow` *before* they reach redb, so what is
//! shown is that the service holds no lock of its own across a commit that
//! another stream needs.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use riffle_core::clock::ManualClock;
use riffle_core::Clock;
use riffle_firehose::{Config, Ctx, FirehoseError, Service};
use riffle_log::disk::{DiskConfig, DiskEngine};
use riffle_log::LogEngine;
use riffle_meta::{Backend, Batch, MetaError, RedbBackend, Store};
use riffle_wire::{json, Value};

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
}

impl GatedMeta {
    fn new(dir: &std::path::Path) -> GatedMeta {
        let redb = RedbBackend::open(&dir.join("meta.redb")).unwrap();
        GatedMeta {
            gate: Arc::default(),
            redb: Arc::new(redb),
        }
    }

    fn set(&self, g: Gate) {
        let (m, cv) = &*self.gate;
        m.lock().unwrap().mode = Some(g);
        cv.notify_all();
    }

    /// Waits until a commit is held at the gate.
    async fn held(&self) {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let (m, cv) = &*me.gate;
            let g = m.lock().unwrap();
            let (_g, t) = cv
                .wait_timeout_while(g, Duration::from_secs(10), |s| s.waiting == 0)
                .unwrap();
            assert!(!t.timed_out(), "the commit never reached the store");
        })
        .await
        .unwrap();
    }

    /// The names of the stored delivery streams.
    fn stored(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .redb
            .scan("firehose/delivery-streams")
            .unwrap()
            .into_iter()
            .map(|(k, _)| k.rsplit('\0').next().unwrap().to_owned())
            .collect();
        names.sort();
        names
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
        if batch.writes.iter().any(|w| w.key().ends_with("\0slow")) {
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

const DELAY_MS: i64 = 100;

struct Env {
    meta: GatedMeta,
    clock: Arc<ManualClock>,
    engine: Arc<DiskEngine>,
    svc: Arc<Service>,
    _dir: tempfile::TempDir,
}

impl Env {
    fn new(limit: usize) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let meta = GatedMeta::new(dir.path());
        let clock = ManualClock::new(1_700_000_000_000);
        let engine = DiskEngine::open(
            dir.path().join("firehose"),
            DiskConfig {
                segment_bytes: 1 << 20,
                ..DiskConfig::default()
            },
        )
        .unwrap();
        let cfg = Config {
            status_delay_ms: DELAY_MS,
            delivery_stream_limit: limit,
            ..Config::default()
        };
        let ns = Store::new(meta.clone()).namespace("firehose").unwrap();
        let svc = Service::open(
            cfg,
            clock.clone() as Arc<dyn Clock>,
            engine.clone(),
            None,
            ns,
        )
        .unwrap();
        Env {
            meta,
            clock,
            engine,
            svc,
            _dir: dir,
        }
    }

    fn create(
        &self,
        name: &str,
    ) -> impl std::future::Future<Output = Result<Value, FirehoseError>> {
        let svc = self.svc.clone();
        let body = format!(
            r#"{{"DeliveryStreamName":"{name}","ExtendedS3DestinationConfiguration":{{"RoleARN":"arn:aws:iam::000000000000:role/r","BucketARN":"arn:aws:s3:::b"}}}}"#
        );
        async move { call(&svc, "CreateDeliveryStream", &body).await }
    }

    fn call<'a>(
        &'a self,
        op: &'a str,
        name: &str,
    ) -> impl std::future::Future<Output = Result<Value, FirehoseError>> + 'a {
        let body = format!(r#"{{"DeliveryStreamName":"{name}"}}"#);
        async move { call(&self.svc, op, &body).await }
    }

    async fn listed(&self) -> Vec<String> {
        let v = call(&self.svc, "ListDeliveryStreams", "{}").await.unwrap();
        let Value::Map(m) = v else { panic!("{v:?}") };
        let Some(Value::List(l)) = m.get("DeliveryStreamNames") else {
            panic!("{m:?}")
        };
        l.iter()
            .map(|n| match n {
                Value::Str(s) => s.clone(),
                other => panic!("{other:?}"),
            })
            .collect()
    }
}

async fn call(svc: &Service, op: &str, body: &str) -> Result<Value, FirehoseError> {
    let ctx = Ctx {
        region: "us-east-1".into(),
    };
    svc.call(&ctx, op, json::decode(body.as_bytes()).unwrap())
        .await
}

fn within<F: std::future::Future>(f: F) -> tokio::time::Timeout<F> {
    tokio::time::timeout(Duration::from_secs(5), f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creation_stuck_in_its_commit_holds_up_no_other_stream() {
    let env = Env::new(3);
    let _open = OpenOnDrop(env.meta.clone());
    env.create("gone").await.unwrap();
    env.clock.advance(DELAY_MS);
    env.meta.set(Gate::Hold);
    let slow = tokio::spawn(env.create("slow"));
    env.meta.held().await;

    within(env.create("fast"))
        .await
        .expect("a creation waited for another creation's commit")
        .unwrap();
    within(env.call("DeleteDeliveryStream", "gone"))
        .await
        .expect("a deletion waited for a creation's commit")
        .unwrap();
    // The deletion completes and maintenance sweeps it meanwhile.
    env.clock.advance(DELAY_MS);
    within(env.svc.maintain())
        .await
        .expect("maintenance waited for a creation's commit");
    assert_eq!(env.meta.stored(), ["fast"]);

    // The creation in flight keeps its name and its place under the limit
    // of 3 ("fast", "other" and it).
    let e = within(env.create("slow")).await.unwrap().unwrap_err();
    assert_eq!(e.error_type(), "ResourceInUseException", "{e:?}");
    within(env.create("other")).await.unwrap().unwrap();
    let e = within(env.create("more")).await.unwrap().unwrap_err();
    assert_eq!(e.error_type(), "LimitExceededException", "{e:?}");
    // Not visible before it is durable.
    let e = env
        .call("DescribeDeliveryStream", "slow")
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "ResourceNotFoundException", "{e:?}");
    assert!(!slow.is_finished());

    env.meta.set(Gate::Open);
    within(slow).await.unwrap().unwrap().unwrap();
    assert_eq!(env.listed().await, ["fast", "other", "slow"]);
    assert_eq!(env.meta.stored(), ["fast", "other", "slow"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_creation_leaves_nothing_and_gives_its_name_back() {
    let env = Env::new(2);
    let _open = OpenOnDrop(env.meta.clone());
    env.create("a").await.unwrap();
    let logs = env.engine.stored_ids().unwrap();
    assert_eq!(logs.len(), 1);
    env.meta.set(Gate::Fail);
    let e = env.create("slow").await.unwrap_err();
    assert_eq!(e.error_type(), "InternalFailure", "{e:?}");
    assert_eq!(env.listed().await, ["a"]);
    assert_eq!(env.meta.stored(), ["a"]);
    // Its buffer log is gone too.
    assert_eq!(env.engine.stored_ids().unwrap(), logs);

    // Neither the name nor the place under the limit of 2 is still held.
    env.meta.set(Gate::Open);
    env.create("slow").await.unwrap();
    assert_eq!(env.listed().await, ["a", "slow"]);
    assert_eq!(env.meta.stored(), ["a", "slow"]);
}
