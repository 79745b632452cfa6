//! Who owns what: the stream registry and per-stream state.
//!
//! The registry maps a stream's key (and its incarnation id) to a [`Cell`].
//! Its lock is held only to find, insert or remove a cell, never across I/O.
//! A cell holds the stream's live picture as an immutable snapshot
//! (`Arc<Stream>`):
//!
//! - readers (GetRecords, GetShardIterator, Describe*, List*, subscriptions)
//!   clone the snapshot and let go of every lock before they touch the log;
//! - writers (PutRecord, PutRecords) route and reserve log offsets while
//!   holding the cell's read guard, which is in-memory work only; the
//!   durability wait happens after it is released;
//! - control operations (tags, settings, resharding, consumers) are
//!   serialised per stream by the cell's `control` mutex: they edit a copy,
//!   persist it, and only then install it, so a change is visible only once
//!   it is durable and a failed persist changes nothing. Installing takes the
//!   write guard for a pointer swap, which also fixes the close offsets of
//!   shards the change closed (no writer can be mid-route then).
//!
//! A creation checks name uniqueness and account limits and reserves its
//! name and shards under one account-wide mutex ([`Creating`]), which is
//! held for that in-memory work only: the log directory, the metadata
//! commit and any directory removal happen outside it, so creations of
//! different streams do not wait on each other's I/O. The stream is
//! published (registered, reservation released) under the mutex again, so
//! every check sees a creation exactly once: reserved or registered. A
//! failed creation releases its reservation. Deletions take no account-wide
//! lock (they only free capacity); neither reads nor writes of records ever
//! take it.
//! Status transitions that are due (CREATING → ACTIVE, consumers, deletion)
//! are applied when a snapshot is taken, so they are exact to the clock;
//! the maintenance task persists them and removes deleted streams' files.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use crate::error::Result;
use crate::state::{ConsumerStatus, Msg, Status, Stream};
use crate::{meta, Ctx, KinesisError, Service, StreamKey};

/// One stream incarnation's state.
pub struct Cell {
    live: RwLock<Arc<Stream>>,
    /// Serialises control operations and metadata writes of this stream.
    control: Arc<tokio::sync::Mutex<()>>,
    /// A due transition was applied that the metadata store has not seen.
    dirty: AtomicBool,
}

#[derive(Default)]
pub(crate) struct Registry {
    by_key: BTreeMap<StreamKey, Arc<Cell>>,
    by_id: HashMap<u64, Arc<Cell>>,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// Applies every transition due at `now`; returns whether anything changed.
/// A stream whose deletion is due is left DELETING: callers treat it as gone.
pub(crate) fn settle(s: &mut Stream, now: i64) -> bool {
    let mut changed = false;
    match s.status {
        Status::Creating { until_ms } | Status::Updating { until_ms } if now >= until_ms => {
            s.status = Status::Active;
            changed = true;
        }
        _ => {}
    }
    let before = s.consumers.len();
    s.consumers.retain_mut(|c| match c.status {
        ConsumerStatus::Creating { until_ms } if now >= until_ms => {
            c.status = ConsumerStatus::Active;
            changed = true;
            true
        }
        ConsumerStatus::Deleting { until_ms } => now < until_ms,
        _ => true,
    });
    changed || s.consumers.len() != before
}

fn is_settled(s: &Stream, now: i64) -> bool {
    let due = |until: i64| now >= until;
    let status_due = match s.status {
        Status::Creating { until_ms } | Status::Updating { until_ms } => due(until_ms),
        _ => false,
    };
    !status_due
        && !s.consumers.iter().any(|c| match c.status {
            ConsumerStatus::Creating { until_ms } | ConsumerStatus::Deleting { until_ms } => {
                due(until_ms)
            }
            ConsumerStatus::Active => false,
        })
}

/// Whether a stream's deletion has completed by `now`.
pub(crate) fn is_gone(s: &Stream, now: i64) -> bool {
    matches!(s.status, Status::Deleting { until_ms } if now >= until_ms)
}

impl Cell {
    pub(crate) fn new(s: Stream) -> Arc<Cell> {
        Arc::new(Cell {
            live: RwLock::new(Arc::new(s)),
            control: Arc::new(tokio::sync::Mutex::new(())),
            dirty: AtomicBool::new(false),
        })
    }

    /// The live picture with due transitions applied.
    fn snapshot(&self, now: i64) -> Arc<Stream> {
        let cur = read(&self.live).clone();
        if is_settled(&cur, now) {
            return cur;
        }
        let mut g = write(&self.live);
        if !is_settled(&g, now) {
            let mut next = (**g).clone();
            settle(&mut next, now);
            *g = Arc::new(next);
            self.dirty.store(true, Ordering::Release);
        }
        g.clone()
    }

    /// Installs a persisted change. Shards the change closed get their
    /// close offset now, when no writer is routing to them.
    fn install(&self, mut next: Stream) -> Arc<Stream> {
        let mut g = write(&self.live);
        for (new, old) in next.shards.iter_mut().zip(g.shards.iter()) {
            if let (Some(c), None) = (new.closed.as_mut(), old.closed) {
                c.offset = next.log.next_offset(new.index);
            }
        }
        let next = Arc::new(next);
        *g = next.clone();
        next
    }
}

/// Runs blocking work (metadata commits, directory removal) off the async
/// workers when there is a runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Ok(f());
    }
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| KinesisError::Internal(format!("background task failed: {e}")))
}

impl Service {
    fn cell(&self, key: &StreamKey) -> Option<Arc<Cell>> {
        read(&self.streams).by_key.get(key).cloned()
    }

    /// Whether `cell` is still the one registered under `key`.
    fn is_registered(&self, key: &StreamKey, cell: &Arc<Cell>) -> bool {
        self.cell(key).is_some_and(|c| Arc::ptr_eq(&c, cell))
    }

    /// The control lock of the cell registered under `key`, if any: held
    /// while a stream's row is deleted or replaced by a new incarnation,
    /// so no control operation or maintenance write of the old cell
    /// interleaves.
    pub(crate) async fn lock_cell(
        &self,
        key: &StreamKey,
    ) -> Option<(Arc<Cell>, tokio::sync::OwnedMutexGuard<()>)> {
        let cell = self.cell(key)?;
        let guard = cell.control.clone().lock_owned().await;
        Some((cell, guard))
    }

    /// The live picture of a stream, unless it does not exist (or its
    /// deletion has completed).
    pub(crate) fn snapshot(&self, key: &StreamKey) -> Option<Arc<Stream>> {
        let s = self.cell(key)?.snapshot(self.now_ms());
        (!is_gone(&s, self.now_ms())).then_some(s)
    }

    /// A stream incarnation by id (iterators name streams by id).
    pub(crate) fn snapshot_by_id(&self, id: u64) -> Option<Arc<Stream>> {
        let cell = read(&self.streams).by_id.get(&id).cloned()?;
        let s = cell.snapshot(self.now_ms());
        (!is_gone(&s, self.now_ms())).then_some(s)
    }

    /// Every live stream, in key order.
    pub(crate) fn all_streams(&self) -> Vec<Arc<Stream>> {
        let cells: Vec<Arc<Cell>> = read(&self.streams).by_key.values().cloned().collect();
        let now = self.now_ms();
        cells
            .iter()
            .map(|c| c.snapshot(now))
            .filter(|s| !is_gone(s, now))
            .collect()
    }

    /// Open shards across a region's streams, for the account shard limit.
    pub(crate) fn open_shards_in(&self, region: &str) -> usize {
        self.all_streams()
            .iter()
            .filter(|s| s.region == region)
            .map(|s| s.open_shard_count())
            .sum()
    }

    fn require(&self, key: &StreamKey) -> Result<Arc<Stream>> {
        self.snapshot(key)
            .ok_or_else(|| Msg::stream_not_found(&key.1, &self.cfg.account))
    }

    /// Runs `f` on a snapshot of the named stream; no lock is held.
    pub(crate) fn view<T>(
        &self,
        ctx: &Ctx,
        name: Option<&str>,
        arn: Option<&str>,
        f: impl FnOnce(&Stream) -> Result<T>,
    ) -> Result<T> {
        let key = self.key(ctx, name, arn)?;
        f(&*self.require(&key)?)
    }

    /// Runs `f` with the stream's read guard held: routes taken inside stay
    /// valid until `f` returns, so offsets reserved there never land in a
    /// shard a concurrent reshard has closed. `f` must not block.
    pub(crate) fn write_to<T>(
        &self,
        ctx: &Ctx,
        name: Option<&str>,
        arn: Option<&str>,
        f: impl FnOnce(&Stream) -> Result<T>,
    ) -> Result<T> {
        let key = self.key(ctx, name, arn)?;
        let cell = self
            .cell(&key)
            .ok_or_else(|| Msg::stream_not_found(&key.1, &self.cfg.account))?;
        let now = self.now_ms();
        let settled = is_settled(&read(&cell.live), now);
        if !settled {
            cell.snapshot(now);
        }
        let g = read(&cell.live);
        if is_gone(&g, now) {
            return Err(Msg::stream_not_found(&key.1, &self.cfg.account));
        }
        f(&g)
    }

    /// A control operation on the named stream.
    pub(crate) async fn update<T>(
        &self,
        ctx: &Ctx,
        name: Option<&str>,
        arn: Option<&str>,
        f: impl FnOnce(&mut Stream) -> Result<T>,
    ) -> Result<T> {
        let key = self.key(ctx, name, arn)?;
        self.update_key(&key, f).await
    }

    /// A control operation: `f` edits a copy of the stream; the copy is
    /// persisted and then installed. An error from `f` or from the store
    /// leaves the stream as it was.
    pub(crate) async fn update_key<T>(
        &self,
        key: &StreamKey,
        f: impl FnOnce(&mut Stream) -> Result<T>,
    ) -> Result<T> {
        let missing = || Msg::stream_not_found(&key.1, &self.cfg.account);
        let cell = self.cell(key).ok_or_else(missing)?;
        let _control = cell.control.lock().await;
        let now = self.now_ms();
        let cur = cell.snapshot(now);
        if is_gone(&cur, now) || !self.is_registered(key, &cell) {
            return Err(missing());
        }
        let mut next = (*cur).clone();
        let out = f(&mut next)?;
        self.write_row(key, Some(meta::encode_stream(&next)))
            .await?;
        let closed_any = next
            .shards
            .iter()
            .zip(cur.shards.iter())
            .any(|(n, o)| n.closed.is_some() && o.closed.is_none());
        let installed = cell.install(next);
        cell.dirty.store(false, Ordering::Release);
        self.apply_durability(&installed);
        if closed_any {
            // The exact close offsets were fixed at install; recovery
            // derives them from the log if this second write is lost.
            if let Err(e) = self
                .write_row(key, Some(meta::encode_stream(&installed)))
                .await
            {
                tracing::warn!(error = %e, "recording close offsets failed");
            }
        }
        Ok(out)
    }

    /// Writes (or, with `None`, deletes) one stream's row.
    pub(crate) async fn write_row(
        &self,
        key: &StreamKey,
        row: Option<meta::StreamRow>,
    ) -> Result<()> {
        let meta = self.meta.clone();
        let key = key.clone();
        blocking(move || meta.write_stream(&key, row)).await??;
        Ok(())
    }

    /// Registers a new, already persisted stream.
    pub(crate) fn insert(&self, s: Stream) {
        let key = (s.region.clone(), s.name.clone());
        let id = s.id;
        self.apply_durability(&s);
        let cell = Cell::new(s);
        let mut g = write(&self.streams);
        if let Some(old) = g.by_key.insert(key, cell.clone()) {
            let old_id = read(&old.live).id;
            g.by_id.remove(&old_id);
        }
        g.by_id.insert(id, cell);
    }

    /// The id of an incarnation under `key` that a new stream replaces (one
    /// whose deletion completed but was not swept yet).
    pub(crate) fn replaced_incarnation(&self, key: &StreamKey) -> Option<u64> {
        self.cell(key).map(|c| read(&c.live).id)
    }

    /// Takes a stream out of the registry (its row must already be gone),
    /// lets go of its control lock, then removes its log.
    pub(crate) async fn forget<G>(&self, key: &StreamKey, id: u64, control: G) -> Result<()> {
        {
            let mut g = write(&self.streams);
            let same = g.by_key.get(key).is_some_and(|c| read(&c.live).id == id);
            if same {
                g.by_key.remove(key);
            }
            g.by_id.remove(&id);
        }
        drop(control);
        let engine = self.engine.clone();
        blocking(move || engine.remove(id)).await??;
        Ok(())
    }

    /// Completes due deletions and persists due transitions; the
    /// maintenance task calls this.
    pub(crate) async fn settle_all(&self) -> Result<()> {
        let cells: Vec<(StreamKey, Arc<Cell>)> = read(&self.streams)
            .by_key
            .iter()
            .map(|(k, c)| (k.clone(), c.clone()))
            .collect();
        let now = self.now_ms();
        for (key, cell) in cells {
            let s = cell.snapshot(now);
            if is_gone(&s, now) {
                let control = cell.control.lock().await;
                if self.is_registered(&key, &cell) {
                    self.write_row(&key, None).await?;
                    self.forget(&key, s.id, control).await?;
                }
                continue;
            }
            if cell.dirty.load(Ordering::Acquire) {
                let _control = cell.control.lock().await;
                // Replacing or removing a cell takes its control lock, so
                // a cell still registered now stays so until this write
                // commits; one that was swept (and perhaps replaced by a
                // new incarnation) while this task waited must not write
                // its row over the new one.
                let now = self.now_ms();
                let s = cell.snapshot(now);
                if !self.is_registered(&key, &cell) || is_gone(&s, now) {
                    continue;
                }
                cell.dirty.store(false, Ordering::Release);
                if let Err(e) = self.write_row(&key, Some(meta::encode_stream(&s))).await {
                    cell.dirty.store(true, Ordering::Release);
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}

/// Creations in flight (see the module's documentation).
#[derive(Default)]
pub(crate) struct Creating {
    /// Names being created.
    names: HashSet<StreamKey>,
    /// Shards reserved per region.
    shards: HashMap<String, usize>,
    /// On-demand streams reserved.
    on_demand: usize,
}

/// What a creation asks for.
pub(crate) struct Want<'a> {
    pub key: &'a StreamKey,
    pub shards: usize,
    pub on_demand: bool,
}

/// A creation's reservation; released when dropped (a failed creation).
pub(crate) struct Reservation<'a> {
    svc: &'a Service,
    key: StreamKey,
    shards: usize,
    on_demand: bool,
    published: bool,
}

impl Creating {
    fn release(&mut self, r: &Reservation<'_>) {
        self.names.remove(&r.key);
        if let Some(n) = self.shards.get_mut(&r.key.0) {
            *n -= r.shards;
            if *n == 0 {
                self.shards.remove(&r.key.0);
            }
        }
        if r.on_demand {
            self.on_demand -= 1;
        }
    }
}

impl Reservation<'_> {
    /// Registers the created (already persisted) stream and releases the
    /// reservation, in one step for every check.
    pub(crate) fn publish(mut self, s: Stream) {
        let mut c = lock(&self.svc.creating);
        self.svc.insert(s);
        c.release(&self);
        self.published = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.published {
            lock(&self.svc.creating).release(self);
        }
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Service {
    /// Checks that `want` may be created and reserves its name and shards;
    /// `check` runs the account limits with the shards and on-demand
    /// streams other creations have reserved: (shards, on-demand streams).
    pub(crate) fn reserve_creation(
        &self,
        want: Want<'_>,
        check: impl FnOnce(usize, usize) -> Result<()>,
    ) -> Result<Reservation<'_>> {
        let mut c = lock(&self.creating);
        if c.names.contains(want.key) || self.snapshot(want.key).is_some() {
            return Err(KinesisError::ResourceInUse(format!(
                "Stream {} under account {} already exists.",
                want.key.1,
                self.account()
            )));
        }
        check(c.shards.get(&want.key.0).copied().unwrap_or(0), c.on_demand)?;
        c.names.insert(want.key.clone());
        *c.shards.entry(want.key.0.clone()).or_default() += want.shards;
        if want.on_demand {
            c.on_demand += 1;
        }
        Ok(Reservation {
            svc: self,
            key: want.key.clone(),
            shards: want.shards,
            on_demand: want.on_demand,
            published: false,
        })
    }
}
