//! Who owns what: the delivery stream registry and per-stream state, as in
//! Data Streams (`riffle_streams::registry`).
//!
//! The registry maps a delivery stream's key to a [`Cell`]; its lock is held
//! only to find, insert or remove a cell, never across I/O. A cell holds an
//! immutable snapshot (`Arc<DeliveryStream>`) and the stream's [`Buffer`]:
//!
//! - readers (Describe, List, ListTags) clone the snapshot;
//! - PutRecord/PutRecordBatch check a snapshot and append to the buffer,
//!   then wait for durability with no lock held;
//! - control operations are serialised per stream by the cell's `control`
//!   mutex: they edit a copy, persist it in the metadata store, and only
//!   then install it, so a change is visible only once it is durable and a
//!   failed persist changes nothing.
//!
//! A creation checks name uniqueness and the account limit and reserves its
//! key under one account-wide mutex held for that in-memory work only: the
//! buffer log, the row commit and the removal of a replaced buffer run
//! outside it, so creations of different streams never wait on each
//! other's I/O. The stream is registered and its reservation released in
//! one step under the mutex, so every check counts a creation exactly once;
//! a failed creation releases its reservation. Deletions and the sweep take
//! no account-wide lock. Removing a cell, or replacing a gone one by a new
//! incarnation, holds the old cell's `control` mutex until the cell is out
//! of the registry, and every row write for a cell first checks under that
//! mutex that the cell is still the registered one, so a late write of an
//! old incarnation never lands over its successor's row.
//!
//! Due transitions (CREATING → ACTIVE, ENABLING → ENABLED, DISABLING →
//! DISABLED, deletion) are applied when a snapshot is taken, so they are
//! exact to the clock; the maintenance task persists them and removes
//! deleted streams' rows and buffers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use riffle_streams::access::Checkpoint;

use crate::buffer::Buffer;
use crate::error::{FirehoseError, Result};
use crate::state::{DeliveryStream, Msg, SseStatus, Status};
use crate::{Service, StreamKey};

/// One delivery stream incarnation's state.
pub struct Cell {
    live: RwLock<Arc<DeliveryStream>>,
    /// Serialises control operations and metadata writes of this stream.
    control: Arc<tokio::sync::Mutex<()>>,
    /// A due transition (or a delivery checkpoint) the store has not seen.
    dirty: AtomicBool,
    pub(crate) buffer: Arc<dyn Buffer>,
    /// The delivery task's checkpoint, persisted by maintenance.
    delivered: AtomicU64,
    /// The Kinesis source's checkpoint, persisted with the row.
    kinesis_checkpoint: Mutex<Option<Checkpoint>>,
    /// Why delivery is failing, for DescribeDeliveryStream (not persisted).
    failure: Mutex<Option<String>>,
    /// Tells the delivery task to stop.
    stop: tokio::sync::watch::Sender<bool>,
    /// Counters for `/metrics`.
    pub(crate) stats: Arc<crate::stats::Stats>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) type Registry = BTreeMap<StreamKey, Arc<Cell>>;

/// Creations in flight: the keys they reserved.
pub(crate) type Creating = BTreeSet<StreamKey>;

/// A creation's reservation of its key; released when dropped (a failed
/// creation).
pub(crate) struct Reservation<'a> {
    svc: &'a Service,
    key: StreamKey,
    published: bool,
}

impl Reservation<'_> {
    /// Registers the created (already persisted) stream and releases the
    /// reservation, in one step for every check.
    pub(crate) fn publish(mut self, s: DeliveryStream, buffer: Arc<dyn Buffer>) {
        let mut creating = lock(&self.svc.creating);
        self.svc.insert(s, buffer);
        creating.remove(&self.key);
        self.published = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.published {
            lock(&self.svc.creating).remove(&self.key);
        }
    }
}

/// Every cell, with the lock released before the caller uses them.
pub(crate) fn read_all(r: &RwLock<Registry>) -> Vec<(StreamKey, Arc<Cell>)> {
    read(r)
        .iter()
        .map(|(k, c)| (k.clone(), c.clone()))
        .collect()
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// Applies every transition due at `now`; returns whether anything changed.
/// A stream whose deletion is due is left DELETING: callers treat it as gone.
pub(crate) fn settle(s: &mut DeliveryStream, now: i64) -> bool {
    let mut changed = false;
    if let Status::Creating { until_ms } = s.status {
        if now >= until_ms {
            s.status = Status::Active;
            changed = true;
        }
    }
    if let Some(sse) = s.sse.as_mut() {
        match sse.status {
            SseStatus::Enabling { until_ms } if now >= until_ms => {
                sse.status = SseStatus::Enabled;
                changed = true;
            }
            SseStatus::Disabling { until_ms } if now >= until_ms => {
                sse.status = SseStatus::Disabled;
                changed = true;
            }
            _ => {}
        }
    }
    changed
}

fn is_settled(s: &DeliveryStream, now: i64) -> bool {
    let status_due = matches!(s.status, Status::Creating { until_ms } if now >= until_ms);
    let sse_due = matches!(
        s.sse.as_ref().map(|x| x.status),
        Some(SseStatus::Enabling { until_ms } | SseStatus::Disabling { until_ms }) if now >= until_ms
    );
    !status_due && !sse_due
}

/// Whether a stream's deletion has completed by `now`.
pub(crate) fn is_gone(s: &DeliveryStream, now: i64) -> bool {
    matches!(s.status, Status::Deleting { until_ms } if now >= until_ms)
}

impl Cell {
    fn new(s: DeliveryStream, buffer: Arc<dyn Buffer>) -> Arc<Cell> {
        let delivered = s.delivered_offset;
        let kinesis_checkpoint = Mutex::new(s.kinesis_checkpoint.clone());
        Arc::new(Cell {
            live: RwLock::new(Arc::new(s)),
            control: Arc::new(tokio::sync::Mutex::new(())),
            dirty: AtomicBool::new(false),
            buffer,
            delivered: AtomicU64::new(delivered),
            kinesis_checkpoint,
            failure: Mutex::new(None),
            stop: tokio::sync::watch::channel(false).0,
            stats: Default::default(),
        })
    }

    /// The live picture with due transitions applied.
    pub(crate) fn snapshot(&self, now: i64) -> Arc<DeliveryStream> {
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

    fn install(&self, next: DeliveryStream) -> Arc<DeliveryStream> {
        let next = Arc::new(next);
        *write(&self.live) = next.clone();
        next
    }

    /// The id of the incarnation's buffer log.
    pub(crate) fn log_id(&self) -> u64 {
        read(&self.live).log_id
    }

    /// The delivery task moved its checkpoint to `offset`.
    pub(crate) fn delivered(&self, offset: u64) {
        self.delivered.fetch_max(offset, Ordering::AcqRel);
        self.dirty.store(true, Ordering::Release);
    }

    pub(crate) fn delivered_offset(&self) -> u64 {
        self.delivered.load(Ordering::Acquire)
    }

    pub(crate) fn kinesis_source(&self) -> bool {
        read(&self.live).is_kinesis_source()
    }

    pub(crate) fn kinesis_checkpoint(&self) -> Option<Checkpoint> {
        lock(&self.kinesis_checkpoint).clone()
    }

    /// The delivery task delivered everything a Kinesis reader returned
    /// up to `cp`.
    pub(crate) fn set_kinesis_checkpoint(&self, cp: Checkpoint) {
        *lock(&self.kinesis_checkpoint) = Some(cp);
        self.dirty.store(true, Ordering::Release);
    }

    pub(crate) fn set_failure(&self, f: Option<String>) {
        *lock(&self.failure) = f;
    }

    /// Why delivery is failing right now, if it is.
    pub(crate) fn failure(&self) -> Option<String> {
        lock(&self.failure).clone()
    }

    /// Copies the delivery progress into a row about to be written.
    fn progress_into(&self, s: &mut DeliveryStream) {
        s.delivered_offset = self.delivered.load(Ordering::Acquire);
        s.kinesis_checkpoint = self.kinesis_checkpoint();
    }
}

/// Runs blocking work (metadata commits, log removal) off the async
/// workers when there is a runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Ok(f());
    }
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| FirehoseError::Internal(format!("background task failed: {e}")))
}

impl Service {
    pub(crate) fn cell(&self, key: &StreamKey) -> Option<Arc<Cell>> {
        read(&self.streams).get(key).cloned()
    }

    /// Checks that `key` is free and reserves it for a creation; `check`
    /// runs the account limit with the number of creations in flight in
    /// the key's region. Both run under the creation mutex, which is held
    /// for nothing else.
    pub(crate) fn reserve_creation(
        &self,
        key: &StreamKey,
        check: impl FnOnce(usize) -> Result<()>,
    ) -> Result<Reservation<'_>> {
        let mut creating = lock(&self.creating);
        if creating.contains(key) || self.snapshot(key).is_some() {
            return Err(Msg::already_exists(&key.1, &self.cfg.account));
        }
        check(creating.iter().filter(|k| k.0 == key.0).count())?;
        creating.insert(key.clone());
        Ok(Reservation {
            svc: self,
            key: key.clone(),
            published: false,
        })
    }

    /// Whether `cell` is still the one registered under `key`.
    pub(crate) fn is_registered(&self, key: &StreamKey, cell: &Arc<Cell>) -> bool {
        self.cell(key).is_some_and(|c| Arc::ptr_eq(&c, cell))
    }

    /// The control lock of the cell registered under `key`, if any: held
    /// while a stream's row is deleted or replaced by a new incarnation,
    /// so no control operation or checkpoint write of the old cell
    /// interleaves, and a creation and the sweep of one key take turns.
    pub(crate) async fn lock_cell(
        &self,
        key: &StreamKey,
    ) -> Option<(Arc<Cell>, tokio::sync::OwnedMutexGuard<()>)> {
        let cell = self.cell(key)?;
        let guard = cell.control.clone().lock_owned().await;
        Some((cell, guard))
    }

    /// The live picture of a delivery stream, unless it does not exist (or
    /// its deletion has completed).
    pub(crate) fn snapshot(&self, key: &StreamKey) -> Option<Arc<DeliveryStream>> {
        let now = self.now_ms();
        let s = self.cell(key)?.snapshot(now);
        (!is_gone(&s, now)).then_some(s)
    }

    /// The snapshot, or AWS's not-found error.
    pub(crate) fn require(&self, key: &StreamKey) -> Result<Arc<DeliveryStream>> {
        self.snapshot(key)
            .ok_or_else(|| Msg::not_found(&key.1, &self.cfg.account))
    }

    /// A live stream's snapshot and its buffer, for writers.
    pub(crate) fn writable(&self, key: &StreamKey) -> Result<(Arc<DeliveryStream>, Arc<Cell>)> {
        let missing = || Msg::not_found(&key.1, &self.cfg.account);
        let cell = self.cell(key).ok_or_else(missing)?;
        let now = self.now_ms();
        let s = cell.snapshot(now);
        if is_gone(&s, now) {
            return Err(missing());
        }
        Ok((s, cell))
    }

    /// Every live delivery stream, in key order.
    pub(crate) fn all_streams(&self) -> Vec<Arc<DeliveryStream>> {
        let cells: Vec<Arc<Cell>> = read(&self.streams).values().cloned().collect();
        let now = self.now_ms();
        cells
            .iter()
            .map(|c| c.snapshot(now))
            .filter(|s| !is_gone(s, now))
            .collect()
    }

    /// A control operation: `f` edits a copy of the stream; the copy is
    /// persisted and then installed. An error from `f` or from the store
    /// leaves the stream as it was.
    pub(crate) async fn update_key<T>(
        &self,
        key: &StreamKey,
        f: impl FnOnce(&mut DeliveryStream) -> Result<T>,
    ) -> Result<T> {
        let missing = || Msg::not_found(&key.1, &self.cfg.account);
        let cell = self.cell(key).ok_or_else(missing)?;
        let _control = cell.control.lock().await;
        let now = self.now_ms();
        let cur = cell.snapshot(now);
        if is_gone(&cur, now) || !self.is_registered(key, &cell) {
            return Err(missing());
        }
        let mut next = (*cur).clone();
        cell.progress_into(&mut next);
        let out = f(&mut next)?;
        self.write_row(key, Some(next.clone())).await?;
        cell.install(next);
        cell.dirty.store(false, Ordering::Release);
        Ok(out)
    }

    /// Writes (or, with `None`, deletes) one stream's row.
    pub(crate) async fn write_row(
        &self,
        key: &StreamKey,
        row: Option<DeliveryStream>,
    ) -> Result<()> {
        let meta = self.meta.clone();
        let key = key.clone();
        blocking(move || meta.write(&key, row.as_ref())).await??;
        Ok(())
    }

    /// Registers a new, already persisted stream and starts its delivery
    /// task (when there is a runtime).
    pub(crate) fn insert(&self, s: DeliveryStream, buffer: Arc<dyn Buffer>) {
        let key = (s.region.clone(), s.name.clone());
        let cell = Cell::new(s, buffer);
        if self.started.load(Ordering::SeqCst) {
            self.spawn_delivery(key.clone(), cell.clone());
        }
        if let Some(old) = write(&self.streams).insert(key, cell) {
            old.stop.send_replace(true);
        }
    }

    /// Starts a stream's delivery task (when there is a runtime).
    pub(crate) fn spawn_delivery(&self, key: StreamKey, cell: Arc<Cell>) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let task = crate::deliver::Task {
            svc: self.me.clone(),
            key,
            stop: cell.stop.subscribe(),
            cell,
        };
        tokio::spawn(task.run());
    }

    /// Persists a cell's delivery progress in its row now (the delivery
    /// task calls this right after an object is stored).
    pub(crate) async fn persist_progress(&self, key: &StreamKey, cell: &Arc<Cell>) -> Result<()> {
        let _control = cell.control.lock().await;
        if !self.is_registered(key, cell) {
            return Ok(());
        }
        let mut s = (*cell.snapshot(self.now_ms())).clone();
        cell.progress_into(&mut s);
        cell.dirty.store(false, Ordering::Release);
        if let Err(e) = self.write_row(key, Some(s.clone())).await {
            cell.dirty.store(true, Ordering::Release);
            return Err(e);
        }
        cell.install(s);
        Ok(())
    }

    /// Why delivery of a stream is failing, if it is.
    pub(crate) fn failure(&self, key: &StreamKey) -> Option<String> {
        self.cell(key)?.failure()
    }

    /// Takes a stream out of the registry (its row must already be gone)
    /// and removes its buffer log.
    pub(crate) async fn forget(&self, key: &StreamKey, log_id: u64) -> Result<()> {
        {
            let mut g = write(&self.streams);
            let same = g.get(key).is_some_and(|c| read(&c.live).log_id == log_id);
            if same {
                if let Some(c) = g.remove(key) {
                    c.stop.send_replace(true);
                }
            }
        }
        let engine = self.engine.clone();
        blocking(move || engine.remove(log_id)).await??;
        Ok(())
    }

    /// Completes due deletions and persists due transitions and delivery
    /// checkpoints; the maintenance task calls this.
    pub(crate) async fn settle_all(&self) -> Result<()> {
        let cells: Vec<(StreamKey, Arc<Cell>)> = read(&self.streams)
            .iter()
            .map(|(k, c)| (k.clone(), c.clone()))
            .collect();
        let now = self.now_ms();
        for (key, cell) in cells {
            let s = cell.snapshot(now);
            if is_gone(&s, now) {
                let _control = cell.control.lock().await;
                if self.is_registered(&key, &cell) {
                    self.write_row(&key, None).await?;
                    self.forget(&key, s.log_id).await?;
                }
                continue;
            }
            if cell.dirty.load(Ordering::Acquire) {
                let _control = cell.control.lock().await;
                // Replacing or removing a cell takes its control lock: a
                // cell swept (and perhaps replaced) while this task waited
                // must not write its row over the new incarnation's.
                let now = self.now_ms();
                if !self.is_registered(&key, &cell) || is_gone(&cell.snapshot(now), now) {
                    continue;
                }
                let mut s = (*cell.snapshot(now)).clone();
                cell.progress_into(&mut s);
                cell.dirty.store(false, Ordering::Release);
                if let Err(e) = self.write_row(&key, Some(s.clone())).await {
                    cell.dirty.store(true, Ordering::Release);
                    return Err(e);
                }
                cell.install(s);
            }
        }
        Ok(())
    }
}
