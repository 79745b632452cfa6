//! The store's contract, on the memory backend (with a probe that records
//! and fails commits) and on redb (a file, and redb's in-memory storage
//! behind a layer that fails writes).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use riffle_meta::{Backend, Batch, MemoryBackend, MetaError, Row, Store, Tx, Write};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Item {
    name: String,
    size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    tags: BTreeMap<String, String>,
    parts: Vec<Part>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Part {
    index: u32,
    closed: bool,
}

impl Row for Item {
    const VERSION: u32 = 2;

    /// Version 1 called `size` `bytes`.
    fn upgrade(
        version: u64,
        mut doc: serde_json::Map<String, serde_json::Value>,
    ) -> Option<serde_json::Map<String, serde_json::Value>> {
        if version != 1 {
            return None;
        }
        let bytes = doc.remove("bytes")?;
        doc.insert("size".into(), bytes);
        Some(doc)
    }
}

fn item(name: &str, size: u64) -> Item {
    Item {
        name: name.into(),
        size,
        note: size.is_multiple_of(2).then(|| format!("even \"{size}\"\n")),
        tags: [("team".to_owned(), "riffle".to_owned())].into(),
        parts: vec![
            Part {
                index: 0,
                closed: true,
            },
            Part {
                index: 1,
                closed: false,
            },
        ],
    }
}

/// A memory backend that records every commit and fails them on demand.
#[derive(Clone, Default)]
struct Probe {
    rows: Arc<MemoryBackend>,
    commits: Arc<Mutex<Vec<Batch>>>,
    fail: Arc<AtomicBool>,
}

impl Probe {
    fn commits(&self) -> Vec<Batch> {
        self.commits.lock().unwrap().clone()
    }
}

impl Backend for Probe {
    fn scan(&self, table: &str) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        self.rows.scan(table)
    }
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, MetaError> {
        self.rows.get(table, key)
    }
    fn tables(&self) -> Result<Vec<String>, MetaError> {
        self.rows.tables()
    }
    fn commit(&self, batch: &Batch) -> Result<(), MetaError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("injected").into());
        }
        self.commits.lock().unwrap().push(batch.clone());
        self.rows.commit(batch)
    }
}

#[test]
fn namespaces_are_isolated() {
    let store = Store::memory();
    let kinesis = store.namespace("kinesis").unwrap();
    let firehose = store.namespace("firehose").unwrap();
    let k_items = kinesis.table::<Item>("items").unwrap();
    let f_items = firehose.table::<Item>("items").unwrap();
    assert_eq!(k_items.name(), "kinesis/items");
    assert_eq!(f_items.name(), "firehose/items");

    let mut tx = Tx::new();
    tx.put(&k_items, "a", &item("from kinesis", 1)).unwrap();
    kinesis.apply(tx).unwrap();
    let mut tx = Tx::new();
    tx.put(&f_items, "a", &item("from firehose", 2)).unwrap();
    firehose.apply(tx).unwrap();

    assert_eq!(
        kinesis.load(&k_items).unwrap(),
        vec![("a".to_owned(), item("from kinesis", 1))]
    );
    assert_eq!(
        firehose.load(&f_items).unwrap(),
        vec![("a".to_owned(), item("from firehose", 2))]
    );

    // A namespace can neither read nor write another's tables.
    let err = kinesis.load(&f_items).unwrap_err();
    assert!(
        matches!(&err, MetaError::ForeignTable { namespace, table } if namespace == "kinesis" && table == "firehose/items"),
        "{err:?}"
    );
    let mut tx = Tx::new();
    tx.put(&k_items, "b", &item("b", 3)).unwrap();
    tx.delete(&f_items, "a");
    let err = kinesis.apply(tx).unwrap_err();
    assert!(
        matches!(&err, MetaError::ForeignTable { namespace, table } if namespace == "kinesis" && table == "firehose"),
        "{err:?}"
    );
    // ...and the refused transaction wrote nothing.
    assert_eq!(kinesis.keys(&k_items).unwrap(), vec!["a".to_owned()]);
    assert_eq!(firehose.keys(&f_items).unwrap(), vec!["a".to_owned()]);

    // A namespace has one owner at a time.
    let err = store.namespace("kinesis").err().unwrap();
    assert!(
        matches!(&err, MetaError::NamespaceTaken(n) if n == "kinesis"),
        "{err:?}"
    );
    let again = kinesis.clone();
    drop(kinesis);
    assert!(
        store.namespace("kinesis").is_err(),
        "a clone still holds it"
    );
    drop(again);
    store.namespace("kinesis").unwrap();
}

#[test]
fn apply_commits_puts_and_deletes_together() {
    let probe = Probe::default();
    let store = Store::new(probe.clone());
    let ns = store.namespace("svc").unwrap();
    let items = ns.table::<Item>("items").unwrap();
    let other = ns.table::<Item>("other").unwrap();

    let mut tx = Tx::new();
    tx.put(&items, "a", &item("a", 1)).unwrap();
    tx.put(&items, "b", &item("b", 2)).unwrap();
    ns.apply(tx).unwrap();

    // Across tables: a row moves from `items` to `other` in one commit.
    let mut tx = Tx::new();
    tx.delete(&items, "a");
    tx.put(&other, "a", &item("a", 1)).unwrap();
    ns.apply(tx).unwrap();
    let commits = probe.commits();
    assert_eq!(commits.len(), 2);
    assert_eq!(
        commits[1]
            .writes
            .iter()
            .map(|w| (w.table(), w.key(), matches!(w, Write::Put { .. })))
            .collect::<Vec<_>>(),
        vec![("svc/items", "a", false), ("svc/other", "a", true)]
    );
    assert_eq!(ns.keys(&items).unwrap(), vec!["b".to_owned()]);
    assert_eq!(ns.keys(&other).unwrap(), vec!["a".to_owned()]);

    // A failed commit changes nothing.
    probe.fail.store(true, Ordering::SeqCst);
    let mut tx = Tx::new();
    tx.delete(&items, "b");
    tx.put(&other, "c", &item("c", 3)).unwrap();
    let err = ns.apply(tx).unwrap_err();
    assert!(matches!(err, MetaError::Io(_)), "{err:?}");
    assert_eq!(ns.keys(&items).unwrap(), vec!["b".to_owned()]);
    assert_eq!(ns.keys(&other).unwrap(), vec!["a".to_owned()]);

    // ...and leaves the store unsure, so retrying writes again.
    probe.fail.store(false, Ordering::SeqCst);
    let mut tx = Tx::new();
    tx.delete(&items, "b");
    tx.put(&other, "c", &item("c", 3)).unwrap();
    ns.apply(tx).unwrap();
    assert_eq!(probe.commits().last().unwrap().writes.len(), 2);
    assert_eq!(ns.keys(&items).unwrap(), Vec::<String>::new());
    assert_eq!(
        ns.keys(&other).unwrap(),
        vec!["a".to_owned(), "c".to_owned()]
    );
}

#[test]
fn unchanged_rows_are_skipped() {
    let probe = Probe::default();
    let store = Store::new(probe.clone());
    let ns = store.namespace("svc").unwrap();
    let items = ns.table::<Item>("items").unwrap();
    let put = |key: &str, row: &Item| {
        let mut tx = Tx::new();
        tx.put(&items, key, row).unwrap();
        ns.apply(tx).unwrap();
    };

    put("a", &item("a", 1));
    put("a", &item("a", 1));
    assert_eq!(probe.commits().len(), 1, "an unchanged row was written");
    put("a", &item("a", 5));
    assert_eq!(probe.commits().len(), 2);

    // Only the changed row of a transaction is written.
    let mut tx = Tx::new();
    tx.put(&items, "a", &item("a", 5)).unwrap();
    tx.put(&items, "b", &item("b", 1)).unwrap();
    ns.apply(tx).unwrap();
    let last = probe.commits().last().unwrap().clone();
    assert_eq!(
        last.writes.iter().map(|w| w.key()).collect::<Vec<_>>(),
        vec!["b"]
    );

    // Once the table is loaded, deleting an absent row is moot; deleting a
    // present one is not, and only once.
    let store2 = Store::new(probe.clone());
    drop(ns);
    let ns = store2.namespace("svc").unwrap();
    assert_eq!(ns.load(&items).unwrap().len(), 2);
    let n = probe.commits().len();
    let mut tx = Tx::new();
    tx.delete(&items, "nope");
    tx.put(&items, "a", &item("a", 5)).unwrap();
    ns.apply(tx).unwrap();
    assert_eq!(probe.commits().len(), n, "loaded rows are known");
    for _ in 0..2 {
        let mut tx = Tx::new();
        tx.delete(&items, "a");
        ns.apply(tx).unwrap();
    }
    assert_eq!(probe.commits().len(), n + 1);
    assert_eq!(ns.keys(&items).unwrap(), vec!["b".to_owned()]);
}

#[test]
fn rows_round_trip_typed_through_redb() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.redb");
    let rows: Vec<(String, Item)> = (0..5)
        .map(|i| (format!("us-east-1\0s{i}"), item(&format!("s{i}"), i)))
        .collect();
    {
        let store = Store::open(&path).unwrap();
        let ns = store.namespace("kinesis").unwrap();
        let items = ns.table::<Item>("items").unwrap();
        let mut tx = Tx::new();
        for (k, v) in &rows {
            tx.put(&items, k.clone(), v).unwrap();
        }
        ns.apply(tx).unwrap();
    }
    let store = Store::open(&path).unwrap();
    let ns = store.namespace("kinesis").unwrap();
    let items = ns.table::<Item>("items").unwrap();
    assert_eq!(ns.load(&items).unwrap(), rows);
    assert_eq!(
        ns.get(&items, "us-east-1\0s3").unwrap(),
        Some(item("s3", 3))
    );
    assert_eq!(ns.get(&items, "us-east-1\0s9").unwrap(), None);

    // The stored document: the version first, then the fields in order.
    let one = Item {
        name: "n".into(),
        size: 7,
        note: None,
        tags: BTreeMap::new(),
        parts: vec![],
    };
    assert_eq!(
        riffle_meta::encode("t", "k", &one).unwrap(),
        br#"{"v":2,"name":"n","size":7,"tags":{},"parts":[]}"#
    );
}

#[test]
fn legacy_tables_are_read_and_dropped() {
    let probe = Probe::default();
    probe
        .rows
        .commit(&Batch {
            writes: vec![Write::Put {
                table: "things".into(),
                key: "a".into(),
                value: br#"{"v":1,"name":"a","bytes":9,"tags":{},"parts":[]}"#.to_vec(),
            }],
            drop_tables: vec![],
        })
        .unwrap();
    let store = Store::new(probe.clone());
    let ns = store.namespace("svc").unwrap();
    let items = ns.table::<Item>("items").unwrap();
    assert_eq!(ns.legacy_rows("absent").unwrap(), None);
    let old = ns.legacy_rows("things").unwrap().unwrap();
    let mut tx = Tx::new();
    for (k, v) in &old {
        // Version 1 upgrades on read.
        let row: Item = riffle_meta::decode("things", k, v).unwrap();
        tx.put(&items, k.clone(), &row).unwrap();
    }
    tx.drop_legacy_table("things");
    ns.apply(tx).unwrap();
    assert_eq!(probe.tables().unwrap(), vec!["svc/items".to_owned()]);
    assert_eq!(ns.load(&items).unwrap()[0].1.size, 9);
}

#[derive(Serialize, Deserialize)]
struct Bare(String);

impl Row for Bare {
    const VERSION: u32 = 1;
}

#[test]
fn errors_are_typed() {
    let store = Store::memory();
    let err = store.namespace("Kinesis").err().unwrap();
    assert!(
        matches!(&err, MetaError::BadName(n) if n == "Kinesis"),
        "{err:?}"
    );
    let ns = store.namespace("svc").unwrap();
    let err = ns.table::<Item>("a/b").unwrap_err();
    assert!(
        matches!(&err, MetaError::BadName(n) if n == "a/b"),
        "{err:?}"
    );

    let err = riffle_meta::decode::<Item>("t", "k", br#"{"v":3,"name":"x"}"#).unwrap_err();
    assert!(
        matches!(&err, MetaError::Version { table, key, found: 3, supported: 2 } if table == "t" && key == "k"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "row \"k\" of table t has format version 3; this build reads up to 2"
    );
    let err = riffle_meta::decode::<Item>("t", "k", br#"{"v":0}"#).unwrap_err();
    assert!(
        matches!(err, MetaError::Version { found: 0, .. }),
        "{err:?}"
    );
    let err = riffle_meta::decode::<Item>("t", "k", br#"{"v":2,"name":5}"#).unwrap_err();
    assert!(matches!(err, MetaError::Decode { .. }), "{err:?}");
    let err = riffle_meta::decode::<Item>("t", "k", b"not json").unwrap_err();
    assert!(matches!(err, MetaError::Decode { .. }), "{err:?}");

    let bare = ns.table::<Bare>("bare").unwrap();
    let err = Tx::new().put(&bare, "k", &Bare("x".into())).err().unwrap();
    assert!(
        matches!(&err, MetaError::NotAnObject { table } if table == "svc/bare"),
        "{err:?}"
    );

    // A stored row this build cannot read fails the load, naming the row.
    let items = ns.table::<Item>("items").unwrap();
    let mut tx = Tx::new();
    tx.put(&items, "k", &item("k", 1)).unwrap();
    ns.apply(tx).unwrap();
    let as_bare = ns.table::<Bare>("items").unwrap();
    let err = ns.load(&as_bare).err().unwrap();
    assert!(
        matches!(&err, MetaError::Version { table, key, found: 2, supported: 1 } if table == "svc/items" && key == "k"),
        "{err:?}"
    );
}

/// redb's in-memory storage behind a layer whose writes fail on demand:
/// the shape of the power-loss tests to come.
#[derive(Debug, Clone)]
struct Flaky {
    inner: Arc<redb::backends::InMemoryBackend>,
    fail: Arc<AtomicBool>,
}

impl redb::StorageBackend for Flaky {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> Result<(), std::io::Error> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("injected fsync failure"));
        }
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("injected write failure"));
        }
        self.inner.write(offset, data)
    }
}

#[test]
fn a_failed_redb_commit_writes_nothing() {
    let flaky = Flaky {
        inner: Arc::new(redb::backends::InMemoryBackend::new()),
        fail: Arc::new(AtomicBool::new(false)),
    };
    {
        let store = Store::open_on(flaky.clone()).unwrap();
        let ns = store.namespace("svc").unwrap();
        let items = ns.table::<Item>("items").unwrap();
        let mut tx = Tx::new();
        tx.put(&items, "a", &item("a", 1)).unwrap();
        tx.put(&items, "b", &item("b", 2)).unwrap();
        ns.apply(tx).unwrap();

        flaky.fail.store(true, Ordering::SeqCst);
        let mut tx = Tx::new();
        tx.delete(&items, "a");
        tx.put(&items, "b", &item("b", 20)).unwrap();
        tx.put(&items, "c", &item("c", 3)).unwrap();
        let err = ns.apply(tx).unwrap_err();
        assert!(matches!(err, MetaError::Storage(_)), "{err:?}");
    }
    // Reopened on what reached storage: the first commit, none of the second.
    flaky.fail.store(false, Ordering::SeqCst);
    let store = Store::open_on(flaky).unwrap();
    let ns = store.namespace("svc").unwrap();
    let items = ns.table::<Item>("items").unwrap();
    assert_eq!(
        ns.load(&items).unwrap(),
        vec![
            ("a".to_owned(), item("a", 1)),
            ("b".to_owned(), item("b", 2))
        ]
    );
}

/// A memory backend whose first commit lands, then waits until released
/// before it returns.
#[derive(Clone, Default)]
struct HoldFirst {
    rows: Arc<MemoryBackend>,
    state: Arc<(Mutex<(usize, bool)>, std::sync::Condvar)>,
}

impl Backend for HoldFirst {
    fn scan(&self, table: &str) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        self.rows.scan(table)
    }
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, MetaError> {
        self.rows.get(table, key)
    }
    fn tables(&self) -> Result<Vec<String>, MetaError> {
        self.rows.tables()
    }
    fn commit(&self, batch: &Batch) -> Result<(), MetaError> {
        self.rows.commit(batch)?;
        let (m, cv) = &*self.state;
        let mut g = m.lock().unwrap();
        g.0 += 1;
        cv.notify_all();
        if g.0 == 1 {
            drop(cv.wait_while(g, |s| !s.1).unwrap());
        }
        Ok(())
    }
}

#[test]
fn overlapping_commits_of_a_row_leave_it_unknown() {
    let backend = HoldFirst::default();
    let store = Store::new(backend.clone());
    let ns = store.namespace("svc").unwrap();
    let items = ns.table::<Item>("items").unwrap();
    let put = |row: Item| {
        let ns = ns.clone();
        let items = items.clone();
        move || {
            let mut tx = Tx::new();
            tx.put(&items, "a", &row).unwrap();
            ns.apply(tx).unwrap();
        }
    };
    // The first commit (size 1) lands and is held before it returns; the
    // second (size 2) lands over it and returns first: size 2 is stored,
    // and the first commit's return must not make the store believe size 1
    // is.
    let first = std::thread::spawn(put(item("a", 1)));
    let (m, cv) = &*backend.state;
    drop(cv.wait_while(m.lock().unwrap(), |s| s.0 < 1).unwrap());
    put(item("a", 2))();
    m.lock().unwrap().1 = true;
    cv.notify_all();
    first.join().unwrap();
    assert_eq!(ns.get(&items, "a").unwrap(), Some(item("a", 2)));

    // Writing size 1 again commits.
    let commits = m.lock().unwrap().0;
    put(item("a", 1))();
    assert_eq!(m.lock().unwrap().0, commits + 1);
    assert_eq!(ns.get(&items, "a").unwrap(), Some(item("a", 1)));
    // Now it is known, and an unchanged write is skipped again.
    put(item("a", 1))();
    assert_eq!(m.lock().unwrap().0, commits + 1);
}

/// redb refuses every write after a failed one until it is reopened: a
/// store that can reopen its database takes writes again once the fault
/// clears, with the failed commit absent.
#[test]
fn a_store_opened_with_an_opener_recovers_from_a_failed_commit() {
    let flaky = Flaky {
        inner: Arc::new(redb::backends::InMemoryBackend::new()),
        fail: Arc::new(AtomicBool::new(false)),
    };
    let on = flaky.clone();
    let store =
        Store::open_with(move || redb::Builder::new().create_with_backend(on.clone())).unwrap();
    let ns = store.namespace("svc").unwrap();
    let items = ns.table::<Item>("items").unwrap();
    let mut tx = Tx::new();
    tx.put(&items, "a", &item("a", 1)).unwrap();
    ns.apply(tx).unwrap();
    flaky.fail.store(true, Ordering::SeqCst);
    let mut tx = Tx::new();
    tx.put(&items, "b", &item("b", 2)).unwrap();
    assert!(ns.apply(tx).is_err());
    flaky.fail.store(false, Ordering::SeqCst);
    let mut tx = Tx::new();
    tx.put(&items, "c", &item("c", 3)).unwrap();
    ns.apply(tx).unwrap();
    assert_eq!(
        ns.load(&items).unwrap(),
        vec![
            ("a".to_owned(), item("a", 1)),
            ("c".to_owned(), item("c", 3))
        ]
    );
}
