//! Metadata written by format version 1 stays readable: `fixtures/meta-v1.redb`
//! was written by the server as it stood before the shared metadata store
//! (streams in the un-namespaced redb tables `streams` and `server`), and
//! `fixtures/meta-v1.expected.json` holds what the API said about it then.
//! Both came from the test `write_fixture` of commit be862a0 (a stream with
//! a split and a merge, records, consumers with tags and policies, tags,
//! a policy, encryption switched on, off and on, metrics, retention,
//! scaling, a second region, account settings, and streams and a consumer
//! caught mid-transition).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable, TableDefinition, TableHandle};
use riffle_core::clock::ManualClock;
use riffle_core::Clock;
use riffle_log::memory::MemoryEngine;
use riffle_meta::Store;
use riffle_streams::{Config, Ctx, Service};
use riffle_wire::Value;

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

type Rows = Vec<(String, Vec<u8>)>;

/// Every row of every table, read with redb directly.
fn raw_tables(path: &Path) -> Vec<(String, Rows)> {
    let db = redb::Database::open(path).unwrap();
    let tx = db.begin_read().unwrap();
    let names: Vec<String> = tx
        .list_tables()
        .unwrap()
        .map(|t| t.name().to_owned())
        .collect();
    names
        .into_iter()
        .map(|name| {
            let t = tx
                .open_table(TableDefinition::<&str, &[u8]>::new(&name))
                .unwrap();
            let rows = t
                .iter()
                .unwrap()
                .map(|r| {
                    let (k, v) = r.unwrap();
                    (k.value().to_owned(), v.value().to_vec())
                })
                .collect();
            (name, rows)
        })
        .collect()
}

fn table<'a>(tables: &'a [(String, Rows)], name: &str) -> &'a Rows {
    &tables
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no table {name}"))
        .1
}

fn doc(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap()
}

fn expected() -> (i64, serde_json::Value) {
    let e = doc(&std::fs::read(fixtures().join("meta-v1.expected.json")).unwrap());
    (e["clock_ms"].as_i64().unwrap(), e["observed"].clone())
}

async fn open(path: &Path, clock_ms: i64) -> Arc<Service> {
    let store = Store::open(path).unwrap();
    let ns = store.namespace(riffle_streams::meta::NAMESPACE).unwrap();
    Service::open(
        config(3_600_000),
        ManualClock::new(clock_ms) as Arc<dyn Clock>,
        MemoryEngine::new(),
        ns,
    )
    .unwrap()
}

fn copy_fixture(dir: &tempfile::TempDir) -> PathBuf {
    let path = dir.path().join("meta.redb");
    std::fs::copy(fixtures().join("meta-v1.redb"), &path).unwrap();
    path
}

#[tokio::test]
async fn v1_fixture_reads_back_and_moves_into_the_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_fixture(&dir);
    let (clock_ms, observed) = expected();
    let before = raw_tables(&path);
    let mut names: Vec<&str> = before.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    assert_eq!(names, ["server", "streams"]);

    // Every field the API shows, as it showed it before.
    let svc = open(&path, clock_ms).await;
    assert_eq!(observe(&svc).await, observed);
    assert_eq!(Arc::strong_count(&svc), 1);
    drop(svc);

    // The old tables are gone; the rows live in the namespace.
    let after = raw_tables(&path);
    let mut names: Vec<&str> = after.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        ["kinesis/account", "kinesis/server", "kinesis/streams"]
    );

    // Stream rows are the same documents, field by field, under the same
    // keys (fields the API does not show included: encryption changes,
    // scalings, close offsets).
    let old = table(&before, "streams");
    let new = table(&after, "kinesis/streams");
    assert_eq!(old.len(), 5);
    assert_eq!(
        old.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        new.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
    for ((key, o), (_, n)) in old.iter().zip(new) {
        assert_eq!(doc(o), doc(n), "row {key:?}");
    }
    let full = doc(&new.iter().find(|(k, _)| k == "us-east-1\0full").unwrap().1);
    assert_eq!(full["encryption_changes"].as_array().unwrap().len(), 3);
    assert_eq!(full["scalings"].as_array().unwrap().len(), 1);
    assert_eq!(full["shards"].as_array().unwrap().len(), 9);

    // The iterator secret is the same 32 bytes; the account settings the
    // same instants.
    let old_server = table(&before, "server");
    let old_secret = &old_server
        .iter()
        .find(|(k, _)| k == "iterator-secret")
        .unwrap()
        .1;
    let new_secret = doc(&table(&after, "kinesis/server")[0].1);
    assert_eq!(new_secret["v"], 1);
    use base64::Engine as _;
    assert_eq!(
        &base64::engine::general_purpose::STANDARD
            .decode(new_secret["key"].as_str().unwrap())
            .unwrap(),
        old_secret
    );
    let account = doc(&table(&after, "kinesis/account")[0].1);
    assert_eq!(
        account,
        serde_json::json!({
            "v": 1,
            "status": "ENABLED",
            "started_at_ms": 1_790_000_006_000_i64,
            "earliest_allowed_end_at_ms": 1_821_536_006_000_i64,
        })
    );

    // Opened again, the migrated store says the same.
    let svc = open(&path, clock_ms).await;
    assert_eq!(observe(&svc).await, observed);
}

#[tokio::test]
async fn iterators_sealed_before_the_move_still_open() {
    // The secret survives the move: a token sealed with the stored secret
    // before the move opens after it.
    let dir = tempfile::tempdir().unwrap();
    let path = copy_fixture(&dir);
    let (clock_ms, _) = expected();
    let before = raw_tables(&path);
    let secret: [u8; 32] = table(&before, "server")
        .iter()
        .find(|(k, _)| k == "iterator-secret")
        .unwrap()
        .1
        .as_slice()
        .try_into()
        .unwrap();
    let svc = open(&path, clock_ms).await;
    let token = riffle_core::iterator::IteratorCodec::new(secret).seal(7, b"sealed before");
    assert_eq!(svc.tokens.open(7, &token), Some(b"sealed before".to_vec()));
}
