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
//! - A creation checks its key and the limits across resources and reserves
//!   its key under one registry-wide mutex held for that in-memory work
//!   only: the row commit runs outside it, so creations of different keys
//!   never wait on each other's commit. The check sees every live resource
//!   and every creation in flight; the new cell is registered and its
//!   reservation released in one step under the mutex, so every check
//!   counts a creation exactly once, and a failed commit releases the
//!   reservation, leaving nothing changed. Removals and the sweep take no
//!   registry-wide lock.
//! - Removing a cell, or replacing a gone one by a new incarnation, holds
//!   the old cell's control mutex until the cell is out of the registry,
//!   and every row write for a cell first checks under that mutex that the
//!   cell is still the registered one: a late write of an old incarnation
//!   never lands over its successor's row, and a removal and a creation of
//!   one key take turns on that mutex.
//! - What a cell carries besides its row (a buffer, a running task's
//!   progress) is its `extra` ([`Extra`]); progress the extra keeps is
//!   folded into the row by [`Extra::fold_into`] whenever the row is
//!   written.
//!
//! Commits block; with a Tokio runtime they run in `spawn_blocking`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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
    /// Creations in flight: their cells, not yet registered (see the
    /// module's documentation).
    creating: Mutex<BTreeMap<String, Arc<Cell<R, X>>>>,
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
            creating: Mutex::new(BTreeMap::new()),
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

    /// Creates the resource `key`. `make` sees every live resource and
    /// every creation in flight, in key order (to check that `key` is free
    /// and the limits), and returns the new row and its extra; it runs under
    /// the creation mutex, which reserves `key` for the new cell. The row is
    /// committed outside it, then the cell is registered and the
    /// reservation released in one step. A failed commit releases the
    /// reservation and changes nothing.
    pub async fn create<E: From<MetaError>>(
        &self,
        key: &str,
        make: impl FnOnce(&[Entry<R, X>]) -> Result<(R, X), E>,
    ) -> Result<Created<R, X>, E> {
        let (reservation, stored) = self.reserve(key, make)?;
        let cell = reservation.cell.clone();
        // A gone incarnation not yet swept is replaced under its control
        // mutex. A sweep or removal that held that mutex first has taken
        // it out already (and handed it to its own caller): nothing is
        // replaced then. No other cell can be registered under `key`
        // meanwhile, since the key is reserved.
        let old = self.registered(key);
        let _old_control = match &old {
            Some(c) => Some(c.control.clone().lock_owned().await),
            None => None,
        };
        let replaced = old
            .filter(|c| self.is_registered(key, c))
            .map(|c| c.snapshot(self.now_ms()));
        self.write_row(key, Some(stored)).await?;
        reservation.publish();
        Ok(Created { cell, replaced })
    }

    /// Runs `make` and reserves `key` for the cell it makes, under the
    /// creation mutex (in-memory work only); returns the reservation and
    /// the row to commit.
    fn reserve<E: From<MetaError>>(
        &self,
        key: &str,
        make: impl FnOnce(&[Entry<R, X>]) -> Result<(R, X), E>,
    ) -> Result<(Reservation<'_, R, X>, R), E> {
        let mut creating = lock(&self.creating);
        let now = self.now_ms();
        let mut seen = self.all();
        seen.extend(creating.iter().filter_map(|(k, c)| {
            let s = c.snapshot(now);
            (!s.is_gone(now)).then(|| (k.clone(), c.clone(), s))
        }));
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        let (row, extra) = make(&seen)?;
        if seen.iter().any(|(k, _, _)| k == key) || creating.contains_key(key) {
            return Err(MetaError::KeyInUse(key.to_owned()).into());
        }
        let mut stored = row.clone();
        extra.fold_into(&mut stored);
        let cell = Cell::new(row, extra);
        creating.insert(key.to_owned(), cell.clone());
        let reservation = Reservation {
            registry: self,
            key: key.to_owned(),
            cell,
            published: false,
        };
        Ok((reservation, stored))
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
        loop {
            let Some(cell) = self.registered(key) else {
                return Ok(None);
            };
            let _control = cell.control.lock().await;
            // A creation that replaced the cell (or a sweep that took it
            // out) while this waited went first: look again.
            if !self.is_registered(key, &cell) {
                continue;
            }
            self.write_row(key, None).await?;
            self.unregister(key, &cell);
            return Ok(Some(cell.snapshot(self.now_ms())));
        }
    }

    /// Takes `cell` out of the registry if it is still the one registered
    /// under `key`.
    fn unregister(&self, key: &str, cell: &Arc<Cell<R, X>>) {
        let mut cells = write(&self.cells);
        if cells.get(key).is_some_and(|c| Arc::ptr_eq(c, cell)) {
            cells.remove(key);
        }
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
                let _control = cell.control.lock().await;
                if self.is_registered(&key, &cell) {
                    self.write_row(&key, None).await?;
                    self.unregister(&key, &cell);
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

/// A creation's reservation of its key; released when dropped (a failed
/// creation).
struct Reservation<'a, R: Resource, X: Extra<R>> {
    registry: &'a Registry<R, X>,
    key: String,
    cell: Arc<Cell<R, X>>,
    published: bool,
}

impl<R: Resource, X: Extra<R>> Reservation<'_, R, X> {
    /// Registers the cell (its row is committed) and releases the
    /// reservation, in one step for every check.
    fn publish(mut self) {
        let mut creating = lock(&self.registry.creating);
        write(&self.registry.cells).insert(self.key.clone(), self.cell.clone());
        creating.remove(&self.key);
        self.published = true;
    }
}

impl<R: Resource, X: Extra<R>> Drop for Reservation<'_, R, X> {
    fn drop(&mut self) {
        if !self.published {
            lock(&self.registry.creating).remove(&self.key);
        }
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

/// Who waits for whom when a creation's commit is slow: the metadata store
/// is the real one (redb in a file), with commits of rows whose key starts
/// with `slow` held or failed before they reach it.
#[cfg(test)]
mod concurrency {
    use super::*;
    use crate::{Backend, Batch, RedbBackend, Store};
    use serde::{Deserialize, Serialize};
    use std::sync::atomic::AtomicI64;
    use std::sync::Condvar;
    use std::time::Duration;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Thing {
        name: String,
        incarnation: u32,
        deleted_ms: Option<i64>,
    }

    impl Row for Thing {
        const VERSION: u32 = 1;
    }

    impl Resource for Thing {
        fn settle(&mut self, _: i64) -> bool {
            false
        }
        fn is_settled(&self, _: i64) -> bool {
            true
        }
        fn is_gone(&self, now: i64) -> bool {
            self.deleted_ms.is_some_and(|d| now >= d)
        }
    }

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

    #[derive(Clone)]
    struct Gated {
        gate: Arc<(Mutex<GateState>, Condvar)>,
        redb: Arc<RedbBackend>,
        _dir: Arc<tempfile::TempDir>,
    }

    impl Gated {
        fn new() -> Gated {
            let dir = tempfile::tempdir().unwrap();
            let redb = RedbBackend::open(&dir.path().join("meta.redb")).unwrap();
            Gated {
                gate: Arc::default(),
                redb: Arc::new(redb),
                _dir: Arc::new(dir),
            }
        }

        fn set(&self, g: Gate) {
            let (m, cv) = &*self.gate;
            lock(m).mode = Some(g);
            cv.notify_all();
        }

        /// Waits until a commit is held at the gate.
        async fn held(&self) {
            let me = self.clone();
            tokio::task::spawn_blocking(move || {
                let (m, cv) = &*me.gate;
                let (_g, t) = cv
                    .wait_timeout_while(lock(m), Duration::from_secs(10), |s| s.waiting == 0)
                    .unwrap();
                assert!(!t.timed_out(), "the commit never reached the store");
            })
            .await
            .unwrap();
        }
    }

    /// Opens the gate when dropped, so a failing test ends instead of
    /// waiting for a held commit forever.
    struct OpenOnDrop(Gated);

    impl Drop for OpenOnDrop {
        fn drop(&mut self) {
            self.0.set(Gate::Open);
        }
    }

    impl Backend for Gated {
        fn scan(&self, t: &str) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
            self.redb.scan(t)
        }
        fn get(&self, t: &str, k: &str) -> Result<Option<Vec<u8>>, MetaError> {
            self.redb.get(t, k)
        }
        fn tables(&self) -> Result<Vec<String>, MetaError> {
            self.redb.tables()
        }
        fn commit(&self, b: &Batch) -> Result<(), MetaError> {
            if b.writes.iter().any(|w| w.key().starts_with("slow")) {
                let (m, cv) = &*self.gate;
                let mut g = lock(m);
                g.waiting += 1;
                cv.notify_all();
                let mut g = cv.wait_while(g, |s| s.mode == Some(Gate::Hold)).unwrap();
                g.waiting -= 1;
                if g.mode == Some(Gate::Fail) {
                    return Err(MetaError::Io(std::io::Error::other("injected")));
                }
            }
            self.redb.commit(b)
        }
    }

    /// The errors a service's `make` gives.
    #[derive(Debug)]
    enum Refused {
        InUse,
        Limit,
        Meta(MetaError),
    }

    impl From<MetaError> for Refused {
        fn from(e: MetaError) -> Refused {
            Refused::Meta(e)
        }
    }

    const LIMIT: usize = 3;

    struct Env {
        backend: Gated,
        clock: Arc<AtomicI64>,
        registry: Arc<Registry<Thing, ()>>,
    }

    impl Env {
        fn new() -> Env {
            let backend = Gated::new();
            let clock = Arc::new(AtomicI64::new(1000));
            let registry = Arc::new(Env::open(&backend, &clock));
            Env {
                backend,
                clock,
                registry,
            }
        }

        fn open(backend: &Gated, clock: &Arc<AtomicI64>) -> Registry<Thing, ()> {
            let ns = Store::new(backend.clone()).namespace("test").unwrap();
            let clock = clock.clone();
            Registry::open(
                ns,
                "things",
                move || clock.load(Ordering::SeqCst),
                |_, _: &Thing| Ok::<_, MetaError>(()),
            )
            .unwrap()
        }

        /// The keys a fresh registry on the same store loads.
        fn stored(&self) -> Vec<String> {
            let r = Env::open(&self.backend, &self.clock);
            r.all().into_iter().map(|(k, _, _)| k).collect()
        }

        /// Creates `key` as a service does: the key must be free and at
        /// most [`LIMIT`] resources exist.
        fn create(
            &self,
            key: &str,
            incarnation: u32,
        ) -> impl std::future::Future<Output = Result<Created<Thing, ()>, Refused>> + Send + 'static
        {
            let r = self.registry.clone();
            let key = key.to_owned();
            async move {
                r.create(&key, |seen| {
                    if seen.iter().any(|(k, _, _)| *k == key) {
                        return Err(Refused::InUse);
                    }
                    if seen.len() >= LIMIT {
                        return Err(Refused::Limit);
                    }
                    let row = Thing {
                        name: key.clone(),
                        incarnation,
                        deleted_ms: None,
                    };
                    Ok((row, ()))
                })
                .await
            }
        }

        async fn delete_at(&self, key: &str, at: i64) {
            self.registry
                .update(key, |t| {
                    t.deleted_ms = Some(at);
                    Ok::<_, MetaError>(())
                })
                .await
                .unwrap()
                .unwrap();
        }
    }

    fn within<F: std::future::Future>(f: F) -> tokio::time::Timeout<F> {
        tokio::time::timeout(Duration::from_secs(5), f)
    }

    #[tokio::test]
    async fn a_creation_stuck_in_its_commit_holds_up_no_other_creation() {
        let env = Env::new();
        let _open = OpenOnDrop(env.backend.clone());
        env.backend.set(Gate::Hold);
        let slow = tokio::spawn(env.create("slow", 1));
        env.backend.held().await;

        within(env.create("fast", 1))
            .await
            .expect("a creation waited for another key's commit")
            .unwrap();
        // The key in flight is taken: the caller's own in-use error.
        let e = within(env.create("slow", 2)).await.unwrap().err().unwrap();
        assert!(matches!(e, Refused::InUse), "{e:?}");
        // The creation in flight counts against the limit: with it, "fast"
        // and "other" the registry is full.
        within(env.create("other", 1)).await.unwrap().unwrap();
        let e = within(env.create("more", 1)).await.unwrap().err().unwrap();
        assert!(matches!(e, Refused::Limit), "{e:?}");
        // Not visible before it is durable.
        assert!(env.registry.get("slow").is_none());
        assert!(!slow.is_finished());

        env.backend.set(Gate::Open);
        let created = within(slow).await.unwrap().unwrap().unwrap();
        assert!(created.replaced.is_none());
        assert_eq!(env.registry.get("slow").unwrap().incarnation, 1);
        assert_eq!(env.stored(), ["fast", "other", "slow"]);
    }

    #[tokio::test]
    async fn a_failed_creation_leaves_nothing_and_frees_its_reservation() {
        let env = Env::new();
        let _open = OpenOnDrop(env.backend.clone());
        env.create("a", 1).await.unwrap();
        env.create("b", 1).await.unwrap();
        env.backend.set(Gate::Fail);
        let e = env.create("slow", 1).await.err().unwrap();
        assert!(matches!(e, Refused::Meta(MetaError::Io(_))), "{e:?}");
        assert!(env.registry.get("slow").is_none());
        assert!(env.registry.cell("slow").is_none());
        assert_eq!(env.stored(), ["a", "b"]);
        // Neither the key nor a place under the limit is still held.
        env.backend.set(Gate::Open);
        env.create("slow", 2).await.unwrap();
        assert_eq!(env.registry.get("slow").unwrap().incarnation, 2);
        assert_eq!(env.stored(), ["a", "b", "slow"]);
    }

    #[tokio::test]
    async fn removal_and_sweep_do_not_wait_for_another_keys_creation() {
        let env = Env::new();
        let _open = OpenOnDrop(env.backend.clone());
        env.create("a", 1).await.unwrap();
        env.create("b", 1).await.unwrap();
        let now = env.registry.now_ms();
        env.delete_at("b", now).await;
        env.backend.set(Gate::Hold);
        let slow = tokio::spawn(env.create("slow", 1));
        env.backend.held().await;

        let removed = within(env.registry.remove("a"))
            .await
            .expect("a removal waited for another key's commit")
            .unwrap();
        assert_eq!(removed.unwrap().name, "a");
        let swept = within(env.registry.settle_all())
            .await
            .expect("the sweep waited for another key's commit")
            .unwrap();
        assert_eq!(swept.len(), 1);
        assert_eq!(swept[0].name, "b");
        assert!(env.stored().is_empty());
        assert!(!slow.is_finished());

        env.backend.set(Gate::Open);
        within(slow).await.unwrap().unwrap().unwrap();
        assert_eq!(env.stored(), ["slow"]);
    }

    /// A `make` that lets a taken key through is refused by the registry
    /// itself, and the creation in flight keeps its key.
    #[tokio::test]
    async fn a_key_in_flight_is_never_created_twice() {
        let env = Env::new();
        let _open = OpenOnDrop(env.backend.clone());
        env.backend.set(Gate::Hold);
        let slow = tokio::spawn(env.create("slow", 1));
        env.backend.held().await;
        let careless = |_: &[Entry<Thing, ()>]| {
            let row = Thing {
                name: "slow".into(),
                incarnation: 2,
                deleted_ms: None,
            };
            Ok::<_, MetaError>((row, ()))
        };
        let e = within(env.registry.create("slow", careless))
            .await
            .unwrap()
            .err()
            .unwrap();
        assert!(matches!(&e, MetaError::KeyInUse(k) if k == "slow"), "{e:?}");
        env.backend.set(Gate::Open);
        within(slow).await.unwrap().unwrap().unwrap();
        assert_eq!(env.registry.get("slow").unwrap().incarnation, 1);
        let e = env.registry.create("slow", careless).await.err().unwrap();
        assert!(matches!(&e, MetaError::KeyInUse(k) if k == "slow"), "{e:?}");
        assert_eq!(env.registry.get("slow").unwrap().incarnation, 1);
    }

    /// A creation replacing a gone incarnation and the sweep of that
    /// incarnation take turns on its control mutex, in either order; the
    /// old incarnation is handed back exactly once and the new row stays.
    #[tokio::test]
    async fn a_replacement_and_the_sweep_of_one_key_take_turns() {
        for sweep_first in [true, false] {
            let env = Env::new();
            let first = env.create("a", 1).await.unwrap();
            let now = env.registry.now_ms();
            env.delete_at("a", now).await;
            let held = first.cell.control.clone().lock_owned().await;
            let r = env.registry.clone();
            let sweep = async move { r.settle_all().await.unwrap() };
            let (sweep, create) = if sweep_first {
                let sweep = tokio::spawn(sweep);
                tokio::task::yield_now().await;
                (sweep, tokio::spawn(env.create("a", 2)))
            } else {
                let create = tokio::spawn(env.create("a", 2));
                tokio::task::yield_now().await;
                (tokio::spawn(sweep), create)
            };
            tokio::task::yield_now().await;
            assert!(!sweep.is_finished() && !create.is_finished());
            drop(held);
            let swept = within(sweep).await.unwrap().unwrap();
            let created = within(create).await.unwrap().unwrap().unwrap();
            let replaced = created.replaced.map(|r| r.incarnation);
            let swept: Vec<u32> = swept.iter().map(|s| s.incarnation).collect();
            if sweep_first {
                assert_eq!((swept, replaced), (vec![1], None));
            } else {
                assert_eq!((swept, replaced), (vec![], Some(1)));
            }
            assert_eq!(env.registry.get("a").unwrap().incarnation, 2);
            let reopened = Env::open(&env.backend, &env.clock);
            assert_eq!(reopened.get("a").unwrap().incarnation, 2);
        }
    }
}
