//! The typed store: namespaces, tables, transactions, and the cache that
//! skips unchanged rows.

use std::collections::{BTreeSet, HashMap};
use std::marker::PhantomData;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::row::{decode, encode};
use crate::{Backend, Batch, MemoryBackend, MetaError, NoBackend, RedbBackend, Row, Write};

/// A handle on one metadata store, shared by every service of the process.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Box<dyn Backend>,
    /// What is known to be stored, to skip unchanged rows. Off for
    /// [`Store::none`], where remembering rows would only cost memory.
    cache: Option<Mutex<Cache>>,
    claimed: Mutex<BTreeSet<String>>,
}

#[derive(Default)]
struct Cache {
    tables: HashMap<String, TableCache>,
}

#[derive(Default)]
struct TableCache {
    /// `rows` holds every stored row (the table was loaded and nothing
    /// has made that unsure since), so a delete of a key not in it is moot.
    complete: bool,
    /// Bumped by every commit touching the table, so a concurrent load
    /// does not install a stale picture.
    generation: u64,
    /// Bytes of rows as last read or committed.
    rows: HashMap<String, Vec<u8>>,
    /// Rows with a commit in progress; their stored bytes are unknown.
    flights: HashMap<String, Flight>,
}

struct Flight {
    commits: usize,
    /// Two commits of the row overlapped: which one landed last is
    /// unknown, so neither records its bytes.
    overlapped: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn check_name(name: &str) -> Result<(), MetaError> {
    let ok = !name.is_empty()
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(MetaError::BadName(name.to_owned()))
    }
}

impl Store {
    /// A store on `backend`.
    pub fn new(backend: impl Backend + 'static) -> Store {
        Store::build(Box::new(backend), true)
    }

    fn build(backend: Box<dyn Backend>, remember: bool) -> Store {
        Store {
            inner: Arc::new(Inner {
                backend,
                cache: remember.then(|| Mutex::new(Cache::default())),
                claimed: Mutex::new(BTreeSet::new()),
            }),
        }
    }

    /// Opens (or creates) the redb file at `path`.
    pub fn open(path: &Path) -> Result<Store, MetaError> {
        Ok(Store::new(RedbBackend::open(path)?))
    }

    /// Opens (or creates) a redb database on a custom storage backend.
    /// After a failed commit (a full disk, an I/O error) every write fails
    /// until the store is opened again: prefer [`Store::open_with`].
    pub fn open_on(storage: impl redb::StorageBackend) -> Result<Store, MetaError> {
        Ok(Store::new(RedbBackend::open_on(storage)?))
    }

    /// Opens (or creates) a redb database with `open`, which the store
    /// calls again to reopen the database after a failed commit, so it
    /// takes writes again once the fault clears (redb refuses every write
    /// after a failed one until it is reopened).
    pub fn open_with(
        open: impl Fn() -> Result<redb::Database, redb::DatabaseError> + Send + Sync + 'static,
    ) -> Result<Store, MetaError> {
        Ok(Store::new(RedbBackend::open_with(open)?))
    }

    /// A store in process memory.
    pub fn memory() -> Store {
        Store::new(MemoryBackend::default())
    }

    /// A store that keeps nothing.
    pub fn none() -> Store {
        Store::build(Box::new(NoBackend), false)
    }

    /// Claims the namespace `name` (lowercase letters, digits, `-`) for one
    /// service; it stays claimed while any clone of the returned handle
    /// lives.
    pub fn namespace(&self, name: &str) -> Result<Namespace, MetaError> {
        check_name(name)?;
        if !lock(&self.inner.claimed).insert(name.to_owned()) {
            return Err(MetaError::NamespaceTaken(name.to_owned()));
        }
        Ok(Namespace {
            claim: Arc::new(Claim {
                inner: self.inner.clone(),
                name: name.to_owned(),
            }),
        })
    }
}

struct Claim {
    inner: Arc<Inner>,
    name: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        lock(&self.inner.claimed).remove(&self.name);
    }
}

/// One service's part of the store: tables named `<namespace>/<table>`.
/// Every call blocks on storage; call from a blocking context.
#[derive(Clone)]
pub struct Namespace {
    claim: Arc<Claim>,
}

/// A table of `V` rows keyed by strings, in one namespace.
pub struct Table<V> {
    name: String,
    namespace: String,
    _rows: PhantomData<fn() -> V>,
}

impl<V> Clone for Table<V> {
    fn clone(&self) -> Self {
        Table {
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            _rows: PhantomData,
        }
    }
}

impl<V> std::fmt::Debug for Table<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Table").field(&self.name).finish()
    }
}

impl<V> Table<V> {
    /// The stored name: `<namespace>/<table>`.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Writes committed together by [`Namespace::apply`]: all or none.
#[derive(Debug, Default)]
pub struct Tx {
    batch: Batch,
    /// The namespace of each written table, checked at apply.
    namespaces: BTreeSet<String>,
}

impl Tx {
    pub fn new() -> Tx {
        Tx::default()
    }

    /// Writes `row` under `key`.
    pub fn put<V: Row>(
        &mut self,
        table: &Table<V>,
        key: impl Into<String>,
        row: &V,
    ) -> Result<&mut Tx, MetaError> {
        let key = key.into();
        let value = encode(&table.name, &key, row)?;
        self.namespaces.insert(table.namespace.clone());
        self.batch.writes.push(Write::Put {
            table: table.name.clone(),
            key,
            value,
        });
        Ok(self)
    }

    /// Deletes the row under `key`, if there is one.
    pub fn delete<V>(&mut self, table: &Table<V>, key: impl Into<String>) -> &mut Tx {
        self.namespaces.insert(table.namespace.clone());
        self.batch.writes.push(Write::Delete {
            table: table.name.clone(),
            key: key.into(),
        });
        self
    }

    /// Removes a table written before namespaces existed (a name without
    /// `/`), with its rows, once they are migrated.
    pub fn drop_legacy_table(&mut self, name: &str) -> &mut Tx {
        self.batch.drop_tables.push(name.to_owned());
        self
    }

    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }
}

impl Namespace {
    pub fn name(&self) -> &str {
        &self.claim.name
    }

    fn inner(&self) -> &Inner {
        &self.claim.inner
    }

    /// The table `name` of this namespace, holding `V` rows.
    pub fn table<V: Row>(&self, name: &str) -> Result<Table<V>, MetaError> {
        check_name(name)?;
        Ok(Table {
            name: format!("{}/{name}", self.name()),
            namespace: self.name().to_owned(),
            _rows: PhantomData,
        })
    }

    fn check<V>(&self, table: &Table<V>) -> Result<(), MetaError> {
        if table.namespace == self.name() {
            Ok(())
        } else {
            Err(MetaError::ForeignTable {
                namespace: self.name().to_owned(),
                table: table.name.clone(),
            })
        }
    }

    /// Every row of `table`, in key order.
    pub fn load<V: Row>(&self, table: &Table<V>) -> Result<Vec<(String, V)>, MetaError> {
        self.check(table)?;
        let inner = self.inner();
        let before = inner.cache.as_ref().map(|c| {
            let c = lock(c);
            c.tables
                .get(&table.name)
                .map(|t| (t.generation, t.flights.is_empty()))
                .unwrap_or((0, true))
        });
        let rows = inner.backend.scan(&table.name)?;
        if let (Some(cache), Some((generation, quiet))) = (&inner.cache, before) {
            let mut c = lock(cache);
            let t = c.tables.entry(table.name.clone()).or_default();
            if quiet && t.generation == generation && t.flights.is_empty() {
                t.rows = rows.iter().cloned().collect();
                t.complete = true;
            }
        }
        rows.into_iter()
            .map(|(k, v)| {
                let row = decode(&table.name, &k, &v)?;
                Ok((k, row))
            })
            .collect()
    }

    /// The row of `table` under `key`.
    pub fn get<V: Row>(&self, table: &Table<V>, key: &str) -> Result<Option<V>, MetaError> {
        self.check(table)?;
        self.inner()
            .backend
            .get(&table.name, key)?
            .map(|v| decode(&table.name, key, &v))
            .transpose()
    }

    /// The keys stored in `table` now.
    pub fn keys<V>(&self, table: &Table<V>) -> Result<Vec<String>, MetaError> {
        self.check(table)?;
        Ok(self
            .inner()
            .backend
            .scan(&table.name)?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }

    /// The rows of a table written before namespaces existed (`name` has
    /// no `/`), as stored; `None` if there is no such table.
    #[allow(clippy::type_complexity)]
    pub fn legacy_rows(&self, name: &str) -> Result<Option<Vec<(String, Vec<u8>)>>, MetaError> {
        if name.contains('/') {
            return Err(MetaError::BadName(name.to_owned()));
        }
        let backend = &self.inner().backend;
        if !backend.tables()?.iter().any(|t| t == name) {
            return Ok(None);
        }
        backend.scan(name).map(Some)
    }

    /// Commits `tx` atomically. Puts of rows whose bytes are already
    /// stored, and deletes of rows known to be absent, are left out; a
    /// transaction left with nothing to do touches no storage.
    pub fn apply(&self, tx: Tx) -> Result<(), MetaError> {
        if let Some(other) = tx.namespaces.iter().find(|n| *n != self.name()) {
            return Err(MetaError::ForeignTable {
                namespace: self.name().to_owned(),
                table: other.clone(),
            });
        }
        if let Some(t) = tx.batch.drop_tables.iter().find(|t| t.contains('/')) {
            return Err(MetaError::BadName(t.clone()));
        }
        let inner = self.inner();
        let Some(cache) = &inner.cache else {
            return inner.backend.commit(&tx.batch);
        };
        let mut batch = Batch {
            writes: Vec::with_capacity(tx.batch.writes.len()),
            drop_tables: tx.batch.drop_tables,
        };
        {
            let mut c = lock(cache);
            for w in tx.batch.writes {
                let t = c.tables.entry(w.table().to_owned()).or_default();
                let flying = t.flights.contains_key(w.key());
                let moot = !flying
                    && match &w {
                        Write::Put { key, value, .. } => t.rows.get(key) == Some(value),
                        Write::Delete { key, .. } => t.complete && !t.rows.contains_key(key),
                    };
                if !moot {
                    batch.writes.push(w);
                }
            }
            if batch.is_empty() {
                return Ok(());
            }
            let mut begun = BTreeSet::new();
            for w in &batch.writes {
                if !begun.insert((w.table(), w.key())) {
                    continue;
                }
                let t = c.tables.entry(w.table().to_owned()).or_default();
                t.rows.remove(w.key());
                let f = t.flights.entry(w.key().to_owned()).or_insert(Flight {
                    commits: 0,
                    overlapped: false,
                });
                f.commits += 1;
                f.overlapped |= f.commits > 1;
            }
        }
        let result = inner.backend.commit(&batch);
        let mut c = lock(cache);
        let mut known = BTreeSet::new();
        let mut ended = BTreeSet::new();
        for w in &batch.writes {
            if !ended.insert((w.table(), w.key())) {
                continue;
            }
            let t = c.tables.entry(w.table().to_owned()).or_default();
            t.generation += 1;
            let Some(f) = t.flights.get_mut(w.key()) else {
                continue;
            };
            f.commits -= 1;
            let clean = !f.overlapped;
            if f.commits == 0 {
                t.flights.remove(w.key());
            }
            if result.is_ok() && clean {
                known.insert((w.table(), w.key()));
            } else {
                // What is stored under this key is unknown now.
                t.complete = false;
            }
        }
        // In batch order: a later write of a row overrides an earlier one.
        for w in batch
            .writes
            .iter()
            .filter(|w| known.contains(&(w.table(), w.key())))
        {
            let t = c.tables.entry(w.table().to_owned()).or_default();
            match w {
                Write::Put { key, value, .. } => {
                    t.rows.insert(key.clone(), value.clone());
                }
                Write::Delete { key, .. } => {
                    t.rows.remove(key);
                }
            }
        }
        for name in &batch.drop_tables {
            c.tables.remove(name);
        }
        result
    }
}
