//! A service's registry of resources (delivery streams, applications,
//! video streams): one [`Cell`] per resource, each persisted as one row of a
//! [`Table`], with the ownership rules every service follows.
//!
//! - The registry's lock only finds, inserts or removes a cell; it is never
//!   held across I/O, a commit or an `.await`.
//! - A cell holds an immutable snapshot (`Arc<R>`). Readers clone it and
//!   hold no lock while they use it. Due transitions ([`Resource::settle`])
//!   are applied when a snapshot is taken, so they are exact to the clock;
//!   the cell is then *dirty* until [`Registry::settle_all`] persists it.
//! - Control operations of one resource are serialised by the cell's
//!   control mutex: [`Registry::update`] edits a copy, commits it, and only
//!   then installs it, so a change is visible once durable and a failed
//!   commit changes nothing.
//! - Creations and removals are serialised by one registry-wide mutex (they
//!   check limits across resources). Removing a cell, or replacing a gone
//!   one by a new incarnation, also holds the old cell's control mutex, and
//!   every row write for a cell first checks under that mutex that the
//!   cell is still the registered one: a late write of an old incarnation
//!   never lands over its successor's row. Lock order: the creation mutex,
//!   then a cell's control mutex.
//! - What a cell carries besides its row (a buffer, a running task's
//!   progress) is its `extra` ([`Extra`]); progress the extra keeps is
//!   folded into the row by [`Extra::fold_into`] whenever the row is
//!   written.
//!
//! Commits block; with a Tokio runtime they run in `spawn_blocking`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::{MetaError, Namespace, Row, Table, Tx};

/// A resource kept in a [`Registry`].
pub trait Resource: Row + Clone + Send + Sync + 'static {
    /// Applies every transition due at `now_ms`; whether anything changed.
    fn settle(&mut self, now_ms: i64) -> bool;
    /// Whether `settle(now_ms)` would change nothing.
    fn is_settled(&self, now_ms: i64) -> bool;
    /// Whether the resource's deletion has completed by `now_ms`: it is
    /// then invisible, and [`Registry::settle_all`] sweeps it.
    fn is_gone(&self, _now_ms: i64) -> bool {
        false
    }
}

/// What a cell carries besides its row.
pub trait Extra<R>: Send + Sync + 'static {
    /// Copies progress kept here (checkpoints) into the row about to be
    /// written.
    fn fold_into(&self, _row: &mut R) {}
}

impl<R> Extra<R> for () {}

/// One resource incarnation.
pub struct Cell<R, X> {
    live: RwLock<Arc<R>>,
    control: Arc<tokio::sync::Mutex<()>>,
    dirty: AtomicBool,
    extra: X,
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

impl<R: Resource, X: Extra<R>> Cell<R, X> {
    fn new(row: R, extra: X) -> Arc<Self> {
        Arc::new(Cell {
            live: RwLock::new(Arc::new(row)),
            control: Arc::new(tokio::sync::Mutex::new(())),
            dirty: AtomicBool::new(false),
            extra,
        })
    }

    pub fn extra(&self) -> &X {
        &self.extra
    }

    /// The live picture with due transitions applied (gone or not).
    pub fn snapshot(&self, now_ms: i64) -> Arc<R> {
        let cur = read(&self.live).clone();
        if cur.is_settled(now_ms) {
            return cur;
        }
        let mut g = write(&self.live);
        if !g.is_settled(now_ms) {
            let mut next = (**g).clone();
            next.settle(now_ms);
            *g = Arc::new(next);
            self.dirty.store(true, Ordering::Release);
        }
        g.clone()
    }

    /// Asks the next [`Registry::settle_all`] to write the row (the extra's
    /// progress moved).
    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    fn row_to_write(&self, now_ms: i64) -> R {
        let mut row = (*self.snapshot(now_ms)).clone();
        self.extra.fold_into(&mut row);
        row
    }
}

/// What [`Registry::create`] made.
pub struct Created<R, X> {
    pub cell: Arc<Cell<R, X>>,
    /// A gone incarnation the new one replaced, not yet swept: the caller
    /// removes what it owned (files, logs).
    pub replaced: Option<Arc<R>>,
}

type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// A live resource: its key, its cell and a snapshot.
pub type Entry<R, X> = (String, Arc<Cell<R, X>>, Arc<R>);

/// A service's resources, keyed by strings (`region \0 name`).
pub struct Registry<R, X> {
    cells: RwLock<BTreeMap<String, Arc<Cell<R, X>>>>,
    creating: tokio::sync::Mutex<()>,
    ns: Namespace,
    table: Table<R>,
    now: Clock,
}

/// Runs blocking work off the async workers when there is a runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, MetaError> + Send + 'static,
) -> Result<T, MetaError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        MetaError::Io(std::io::Error::other(format!(
            "a metadata task failed: {e}"
        )))
    })?
}

impl<R: Resource, X: Extra<R>> Registry<R, X> {
    /// Loads every row of `table` in `ns`; `extra` makes each cell's extra
    /// (an error stops the open). `now` is the service's clock in ms.
    pub fn open<E: From<MetaError>>(
        ns: Namespace,
        table: &str,
        now: impl Fn() -> i64 + Send + Sync + 'static,
        mut extra: impl FnMut(&str, &R) -> Result<X, E>,
    ) -> Result<Self, E> {
        let table = ns.table::<R>(table)?;
        let mut cells = BTreeMap::new();
        for (key, row) in ns.load(&table)? {
            let x = extra(&key, &row)?;
            cells.insert(key, Cell::new(row, x));
        }
        Ok(Registry {
            cells: RwLock::new(cells),
            creating: tokio::sync::Mutex::new(()),
            ns,
            table,
            now: Arc::new(now),
        })
    }

    pub fn now_ms(&self) -> i64 {
        (self.now)()
    }

    fn registered(&self, key: &str) -> Option<Arc<Cell<R, X>>> {
        read(&self.cells).get(key).cloned()
    }

    fn is_registered(&self, key: &str, cell: &Arc<Cell<R, X>>) -> bool {
        self.registered(key).is_some_and(|c| Arc::ptr_eq(&c, cell))
    }

    /// The cell of a live (not gone) resource.
    pub fn cell(&self, key: &str) -> Option<Arc<Cell<R, X>>> {
        let cell = self.registered(key)?;
        let now = self.now_ms();
        (!cell.snapshot(now).is_gone(now)).then_some(cell)
    }

    /// A live resource's snapshot.
    pub fn get(&self, key: &str) -> Option<Arc<R>> {
        let now = self.now_ms();
        let s = self.registered(key)?.snapshot(now);
        (!s.is_gone(now)).then_some(s)
    }

    /// Every live resource with its key, in key order.
    pub fn all(&self) -> Vec<Entry<R, X>> {
        let cells: Vec<_> = read(&self.cells)
            .iter()
            .map(|(k, c)| (k.clone(), c.clone()))
            .collect();
        let now = self.now_ms();
        cells
            .into_iter()
            .filter_map(|(k, c)| {
                let s = c.snapshot(now);
                (!s.is_gone(now)).then_some((k, c, s))
            })
            .collect()
    }

    async fn write_row(&self, key: &str, row: Option<R>) -> Result<(), MetaError> {
        let ns = self.ns.clone();
        let table = self.table.clone();
        let key = key.to_owned();
        blocking(move || {
            let mut tx = Tx::new();
            match &row {
                Some(r) => {
                    tx.put(&table, key, r)?;
                }
                None => {
                    tx.delete(&table, key);
                }
            }
            ns.apply(tx)
        })
        .await
    }

    /// Creates the resource `key`. Under the creation mutex, `make` sees
    /// every live resource (to check that `key` is free and the limits) and
    /// returns the new row and its extra; the row is committed, then the
    /// cell is registered.
    pub async fn create<E: From<MetaError>>(
        &self,
        key: &str,
        make: impl FnOnce(&[Entry<R, X>]) -> Result<(R, X), E>,
    ) -> Result<Created<R, X>, E> {
        let _creating = self.creating.lock().await;
        let (row, extra) = make(&self.all())?;
        let old = self.registered(key);
        let _old_control = match &old {
            Some(c) => Some(c.control.clone().lock_owned().await),
            None => None,
        };
        let replaced = old.map(|c| c.snapshot(self.now_ms()));
        let mut stored = row.clone();
        extra.fold_into(&mut stored);
        self.write_row(key, Some(stored)).await?;
        let cell = Cell::new(row, extra);
        write(&self.cells).insert(key.to_owned(), cell.clone());
        Ok(Created { cell, replaced })
    }

    /// A control operation: `f` edits a copy of the live resource; the copy
    /// is committed, then installed. `Ok(None)` when there is no such
    /// resource; an error from `f` or the store leaves it as it was.
    pub async fn update<T, E: From<MetaError>>(
        &self,
        key: &str,
        f: impl FnOnce(&mut R) -> Result<T, E>,
    ) -> Result<Option<T>, E> {
        let Some(cell) = self.registered(key) else {
            return Ok(None);
        };
        let _control = cell.control.lock().await;
        let now = self.now_ms();
        let cur = cell.snapshot(now);
        if cur.is_gone(now) || !self.is_registered(key, &cell) {
            return Ok(None);
        }
        let mut next = (*cur).clone();
        let out = f(&mut next)?;
        let mut stored = next.clone();
        cell.extra.fold_into(&mut stored);
        // Cleared before the write, so a transition settled meanwhile marks
        // the cell again rather than being forgotten.
        let was_dirty = cell.dirty.swap(false, Ordering::AcqRel);
        if let Err(e) = self.write_row(key, Some(stored)).await {
            if was_dirty {
                cell.dirty.store(true, Ordering::Release);
            }
            return Err(e.into());
        }
        *write(&cell.live) = Arc::new(next);
        Ok(Some(out))
    }

    /// Removes the resource now (row, then cell); returns what it was so the
    /// caller removes what it owned.
    pub async fn remove(&self, key: &str) -> Result<Option<Arc<R>>, MetaError> {
        let _creating = self.creating.lock().await;
        let Some(cell) = self.registered(key) else {
            return Ok(None);
        };
        let _control = cell.control.lock().await;
        self.write_row(key, None).await?;
        write(&self.cells).remove(key);
        Ok(Some(cell.snapshot(self.now_ms())))
    }

    /// Writes the cell's row now (its extra's progress moved), if the cell
    /// is still registered and not gone.
    pub async fn persist(&self, key: &str, cell: &Arc<Cell<R, X>>) -> Result<(), MetaError> {
        let _control = cell.control.lock().await;
        let now = self.now_ms();
        if !self.is_registered(key, cell) || cell.snapshot(now).is_gone(now) {
            return Ok(());
        }
        cell.dirty.store(false, Ordering::Release);
        let row = cell.row_to_write(now);
        if let Err(e) = self.write_row(key, Some(row)).await {
            cell.dirty.store(true, Ordering::Release);
            return Err(e);
        }
        Ok(())
    }

    /// The maintenance pass: sweeps resources whose deletion completed (row
    /// removed, cell dropped; returned so the caller removes what they
    /// owned) and writes dirty rows.
    pub async fn settle_all(&self) -> Result<Vec<Arc<R>>, MetaError> {
        let cells: Vec<_> = read(&self.cells)
            .iter()
            .map(|(k, c)| (k.clone(), c.clone()))
            .collect();
        let mut swept = Vec::new();
        for (key, cell) in cells {
            let now = self.now_ms();
            let s = cell.snapshot(now);
            if s.is_gone(now) {
                let _creating = self.creating.lock().await;
                let _control = cell.control.lock().await;
                if self.is_registered(&key, &cell) {
                    self.write_row(&key, None).await?;
                    write(&self.cells).remove(&key);
                    swept.push(s);
                }
                continue;
            }
            if cell.dirty.load(Ordering::Acquire) {
                self.persist(&key, &cell).await?;
            }
        }
        Ok(swept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Backend, Batch, MemoryBackend, Store};
    use serde::{Deserialize, Serialize};
    use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64};

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct App {
        name: String,
        incarnation: u32,
        /// Ready at this time (CREATING before).
        ready_ms: i64,
        ready: bool,
        deleted_ms: Option<i64>,
        version: u32,
        checkpoint: u64,
    }

    impl Row for App {
        const VERSION: u32 = 1;
    }

    impl Resource for App {
        fn settle(&mut self, now: i64) -> bool {
            let due = !self.ready && now >= self.ready_ms;
            if due {
                self.ready = true;
            }
            due
        }
        fn is_settled(&self, now: i64) -> bool {
            self.ready || now < self.ready_ms
        }
        fn is_gone(&self, now: i64) -> bool {
            self.deleted_ms.is_some_and(|d| now >= d)
        }
    }

    /// A running task's progress, folded into the row when it is written.
    #[derive(Default)]
    struct Progress(AtomicU64);

    impl Extra<App> for Progress {
        fn fold_into(&self, row: &mut App) {
            row.checkpoint = self.0.load(Ordering::SeqCst);
        }
    }

    /// A memory backend whose commits can be made to fail.
    #[derive(Default, Clone)]
    struct Flaky {
        inner: Arc<MemoryBackend>,
        fail: Arc<AtomicBool>,
    }

    impl Backend for Flaky {
        fn scan(&self, t: &str) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
            self.inner.scan(t)
        }
        fn get(&self, t: &str, k: &str) -> Result<Option<Vec<u8>>, MetaError> {
            self.inner.get(t, k)
        }
        fn tables(&self) -> Result<Vec<String>, MetaError> {
            self.inner.tables()
        }
        fn commit(&self, b: &Batch) -> Result<(), MetaError> {
            if self.fail.load(Ordering::SeqCst) {
                return Err(MetaError::Io(std::io::Error::other("injected")));
            }
            self.inner.commit(b)
        }
    }

    struct Env {
        backend: Flaky,
        clock: Arc<AtomicI64>,
    }

    impl Env {
        fn new() -> Env {
            Env {
                backend: Flaky::default(),
                clock: Arc::new(AtomicI64::new(1000)),
            }
        }

        fn open(&self) -> Registry<App, Progress> {
            let store = Store::new(self.backend.clone());
            let ns = store.namespace("test").unwrap();
            let clock = self.clock.clone();
            Registry::open(
                ns,
                "apps",
                move || clock.load(Ordering::SeqCst),
                |_, row: &App| Ok::<_, MetaError>(Progress(AtomicU64::new(row.checkpoint))),
            )
            .unwrap()
        }

        /// The row as stored.
        fn stored(&self, key: &str) -> Option<App> {
            let ns = Store::new(self.backend.clone()).namespace("test").unwrap();
            let t = ns.table::<App>("apps").unwrap();
            ns.get(&t, key).unwrap()
        }

        fn advance(&self, ms: i64) {
            self.clock.fetch_add(ms, Ordering::SeqCst);
        }
    }

    fn app(name: &str, incarnation: u32, now: i64) -> App {
        App {
            name: name.into(),
            incarnation,
            ready_ms: now + 10,
            ready: false,
            deleted_ms: None,
            version: 1,
            checkpoint: 0,
        }
    }

    async fn create(r: &Registry<App, Progress>, name: &str, inc: u32) -> Created<App, Progress> {
        let now = r.now_ms();
        r.create(name, |live| {
            assert!(live.iter().all(|(k, _, _)| k != name));
            Ok::<_, MetaError>((app(name, inc, now), Progress::default()))
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn transitions_updates_and_progress_persist() {
        let env = Env::new();
        let r = env.open();
        let c = create(&r, "a", 1).await;
        assert!(c.replaced.is_none());
        assert!(!r.get("a").unwrap().ready);
        env.advance(10);
        // Applied when read, exact to the clock; persisted by maintenance.
        assert!(r.get("a").unwrap().ready);
        assert!(!env.stored("a").unwrap().ready);
        c.cell.extra().0.store(42, Ordering::SeqCst);
        assert!(r.settle_all().await.unwrap().is_empty());
        let stored = env.stored("a").unwrap();
        assert!(stored.ready);
        assert_eq!(stored.checkpoint, 42);
        assert_eq!(env.open().get("a").unwrap().checkpoint, 42);

        let v = r
            .update("a", |a| {
                a.version += 1;
                Ok::<_, MetaError>(a.version)
            })
            .await
            .unwrap();
        assert_eq!(v, Some(2));
        assert_eq!(env.open().get("a").unwrap().version, 2);
        let none = r.update("b", |_| Ok::<_, MetaError>(())).await.unwrap();
        assert!(none.is_none());
    }

    #[tokio::test]
    async fn a_failed_commit_changes_nothing() {
        let env = Env::new();
        let r = env.open();
        create(&r, "a", 1).await;
        env.backend.fail.store(true, Ordering::SeqCst);
        let e = r
            .update("a", |a| {
                a.version = 9;
                Ok::<_, MetaError>(())
            })
            .await;
        assert!(e.is_err());
        assert_eq!(r.get("a").unwrap().version, 1);
        let e = r
            .create("b", |_| {
                Ok::<_, MetaError>((app("b", 1, 0), Progress::default()))
            })
            .await;
        assert!(e.is_err());
        assert!(r.get("b").is_none());
        assert!(r.remove("a").await.is_err());
        assert!(r.get("a").is_some());
        env.backend.fail.store(false, Ordering::SeqCst);
        assert_eq!(env.open().get("a").unwrap().version, 1);
        assert!(env.open().get("b").is_none());
    }

    #[tokio::test]
    async fn deletion_sweep_and_a_new_incarnation() {
        let env = Env::new();
        let r = env.open();
        let first = create(&r, "a", 1).await;
        let at = r.now_ms() + 5;
        r.update("a", |a| {
            a.deleted_ms = Some(at);
            Ok::<_, MetaError>(())
        })
        .await
        .unwrap();
        assert!(r.get("a").is_some());
        env.advance(5);
        assert!(r.get("a").is_none());
        assert!(r.all().is_empty());
        // A control operation on a gone resource finds nothing.
        let none = r.update("a", |_| Ok::<_, MetaError>(())).await.unwrap();
        assert!(none.is_none());
        // Recreated before the sweep: the gone incarnation is replaced.
        let second = create(&r, "a", 2).await;
        assert_eq!(second.replaced.unwrap().incarnation, 1);
        // The old cell's late writes land nowhere.
        first.cell.mark_dirty();
        r.persist("a", &first.cell).await.unwrap();
        assert!(r.settle_all().await.unwrap().is_empty());
        assert_eq!(env.open().get("a").unwrap().incarnation, 2);

        let at = r.now_ms();
        r.update("a", |a| {
            a.deleted_ms = Some(at);
            Ok::<_, MetaError>(())
        })
        .await
        .unwrap();
        let swept = r.settle_all().await.unwrap();
        assert_eq!(swept.len(), 1);
        assert_eq!(swept[0].incarnation, 2);
        assert!(env.open().all().is_empty());
        assert!(r.remove("a").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn remove_is_immediate_and_waits_for_control_operations() {
        let env = Env::new();
        let r = Arc::new(env.open());
        let c = create(&r, "a", 1).await;
        let held = c.cell.control.clone().lock_owned().await;
        let r2 = r.clone();
        let remover = tokio::spawn(async move { r2.remove("a").await.unwrap() });
        tokio::task::yield_now().await;
        assert!(r.get("a").is_some(), "removal waits for the control mutex");
        drop(held);
        let removed = remover.await.unwrap().unwrap();
        assert_eq!(removed.incarnation, 1);
        assert!(r.get("a").is_none());
        assert!(env.open().get("a").is_none());
    }
}
