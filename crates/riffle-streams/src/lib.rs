//! Kinesis Data Streams.
//!
//! - [`Service`] holds every stream of the account, keyed by region and name,
//!   and the [`riffle_log::LogEngine`] their records live in.
//! - [`Service::call`] runs one operation: it validates the decoded body
//!   against the generated [`model`] (AWS's serialization and validation
//!   errors), converts it into the operation's typed input and runs the
//!   handler in [`ops`]; the handler's typed output becomes a document again.
//! - [`Service::subscribe`] starts a SubscribeToShard event stream.
//! - [`access`] lets other services read and write streams in process:
//!   [`access::StreamReader`] (follows resharding lineage, checkpoints) and
//!   [`access::StreamWriter`] (PutRecords' routing and durability).
//! - [`state`] is the in-memory picture of streams, shards and consumers.
//! - [`error::KinesisError`] maps every failure to AWS's `__type`.
//!
//! - [`registry`] says who owns what: each stream has its own state; no lock
//!   is held across file I/O, a metadata commit or an `.await`, and a
//!   change is visible only once it is durable.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use riffle_core::iterator::IteratorCodec;
use riffle_core::{limits, names, Clock};
use riffle_log::LogEngine;
use riffle_wire::shape::{self, FromValue};
use riffle_wire::Value;

pub mod access;
pub mod error;
pub mod fast;
pub mod meta;
#[rustfmt::skip]
pub mod model;
pub mod ops;
pub mod registry;
pub mod state;
pub mod subscribe;
pub mod traffic;

pub use error::KinesisError;
use error::Result;
use state::{Msg, Status, Stream};

/// Server-wide settings of the service.
#[derive(Debug, Clone)]
pub struct Config {
    /// The account id in ARNs and messages.
    pub account: String,
    /// How long CREATING, UPDATING and DELETING last.
    pub status_delay_ms: i64,
    /// Open shards allowed across the account (per region).
    pub shard_limit: u32,
    pub on_demand_stream_limit: u32,
    /// Enforce per-shard provisioned throughput.
    pub throttle: bool,
    /// Durability of streams without a `riffle:durability` tag.
    pub durability: riffle_log::Durability,
    /// Record bytes accepted but not yet durable, across all streams,
    /// beyond which writes are refused with
    /// ProvisionedThroughputExceededException (SDKs back off and retry).
    pub max_pending_write_bytes: u64,
}

/// The stream tag that chooses a stream's durability: `fsync`, `interval`
/// or `none`.
pub const DURABILITY_TAG: &str = "riffle:durability";

impl Default for Config {
    fn default() -> Self {
        Config {
            account: "000000000000".into(),
            status_delay_ms: 500,
            shard_limit: limits::DEFAULT_SHARD_LIMIT,
            on_demand_stream_limit: limits::DEFAULT_ON_DEMAND_STREAM_LIMIT,
            throttle: false,
            durability: riffle_log::Durability::Fsync,
            max_pending_write_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Who is calling: the region comes from the request's credential scope.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub region: String,
}

/// Streams are keyed by region and name.
pub type StreamKey = (String, String);

/// The Data Streams service.
pub struct Service {
    pub cfg: Config,
    pub clock: Arc<dyn Clock>,
    pub engine: Arc<dyn LogEngine>,
    pub tokens: IteratorCodec,
    /// Every stream incarnation; see [`registry`] for who locks what.
    streams: RwLock<registry::Registry>,
    /// Creations in flight: their names and shards are reserved here, so
    /// account limits and name uniqueness are checked exactly while their
    /// I/O runs without a lock (see [`registry`]).
    creating: Mutex<registry::Creating>,
    billing_commitment: Mutex<Option<model::MinimumThroughputBillingCommitmentOutput>>,
    next_id: AtomicU64,
    /// Record bytes appended and not yet durable (see `reserve_write`).
    pending_write_bytes: AtomicU64,
    meta: meta::Meta,
    pub(crate) throttle: ops::throttle::Throttle,
    pub(crate) subscriptions: subscribe::Subscriptions,
    /// Records and bytes in and out per stream.
    pub(crate) traffic: traffic::Traffic,
    /// Set when the server stops: subscriptions end instead of holding it up.
    pub(crate) shutdown: tokio::sync::watch::Sender<bool>,
}

/// Bytes of a write in flight; released on drop.
pub(crate) struct PendingWrite<'a>(&'a AtomicU64, u64);

impl Drop for PendingWrite<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(self.1, Ordering::AcqRel);
    }
}

/// Kinds of sealed pagination tokens.
pub(crate) mod token_kind {
    pub const LIST_SHARDS: u8 = 1;
    pub const LIST_STREAMS: u8 = 2;
    pub const LIST_CONSUMERS: u8 = 3;
}

impl Service {
    /// A service with nothing persisted: streams live as long as the process.
    pub fn new(
        cfg: Config,
        clock: Arc<dyn Clock>,
        engine: Arc<dyn LogEngine>,
        secret: [u8; 32],
    ) -> Arc<Self> {
        Arc::new(Self::build(cfg, clock, engine, secret, meta::Meta::none()))
    }

    fn build(
        cfg: Config,
        clock: Arc<dyn Clock>,
        engine: Arc<dyn LogEngine>,
        secret: [u8; 32],
        meta: meta::Meta,
    ) -> Service {
        Service {
            cfg,
            clock,
            engine,
            tokens: IteratorCodec::new(secret),
            streams: RwLock::new(registry::Registry::default()),
            creating: Mutex::new(registry::Creating::default()),
            billing_commitment: Mutex::new(None),
            next_id: AtomicU64::new(1),
            pending_write_bytes: AtomicU64::new(0),
            meta,
            throttle: ops::throttle::Throttle::default(),
            subscriptions: subscribe::Subscriptions::default(),
            traffic: traffic::Traffic::default(),
            shutdown: tokio::sync::watch::channel(false).0,
        }
    }

    /// A service whose metadata lives in the namespace `ns` of the shared
    /// metadata store: stored streams are loaded and their logs opened; the
    /// iterator secret is kept there too, so iterators survive restarts.
    pub fn open(
        cfg: Config,
        clock: Arc<dyn Clock>,
        engine: Arc<dyn LogEngine>,
        ns: riffle_meta::Namespace,
    ) -> std::result::Result<Arc<Self>, meta::OpenError> {
        let meta = meta::Meta::new(ns)?;
        let secret = meta.iterator_secret()?;
        let billing = meta.account_settings()?;
        let svc = Self::build(cfg, clock, engine.clone(), secret, meta.clone());
        *svc.billing_commitment
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = billing;
        let rows = meta.load_streams()?;
        // Logs no row names are orphans a crash left behind: a creation
        // whose row never became durable, a deletion (or a replaced
        // incarnation) whose directory removal did not. No acknowledged
        // data is in them, and a later stream could be given one's id, so
        // they go before anything is served.
        let named: std::collections::HashSet<u64> = rows.iter().map(|r| r.id).collect();
        let stored = engine.stored_ids().map_err(meta::OpenError::ListLogs)?;
        for id in stored.into_iter().filter(|id| !named.contains(id)) {
            tracing::info!(log = id, "removing an orphan log no stream names");
            engine
                .remove(id)
                .map_err(|source| meta::OpenError::RemoveOrphan { id, source })?;
        }
        let mut last_id = 0;
        for stored in rows {
            let id = stored.id;
            let log = engine
                .open(id)
                .map_err(|source| meta::OpenError::Log { id, source })?;
            let mut s = stored.with_log(log);
            // Nothing is routed to a shard once it is closed, so its end is
            // where its log ends (a close offset written before the change
            // was installed may lag behind).
            for sh in s.shards.iter_mut() {
                if let Some(c) = sh.closed.as_mut() {
                    c.offset = c.offset.max(s.log.next_offset(sh.index));
                }
            }
            last_id = last_id.max(s.id);
            svc.insert(s);
        }
        svc.next_id.store(last_id + 1, Ordering::SeqCst);
        Ok(Arc::new(svc))
    }

    /// Ends every subscription (after its current event) so a stopping
    /// server is not held up by five-minute streams.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Streams and open shards, for metrics.
    pub fn counts(&self) -> (usize, usize) {
        let all = self.all_streams();
        (all.len(), all.iter().map(|s| s.open_shard_count()).sum())
    }

    /// Applies a stream's `riffle:durability` tag (or the server default) to its log.
    pub(crate) fn apply_durability(&self, s: &Stream) {
        let mode = s
            .tags
            .get(DURABILITY_TAG)
            .and_then(|v| riffle_log::Durability::parse(v))
            .unwrap_or(self.cfg.durability);
        s.log.set_durability(mode);
    }

    pub(crate) fn billing_commitment(
        &self,
    ) -> Option<model::MinimumThroughputBillingCommitmentOutput> {
        self.billing_commitment
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Persists, then installs, the account settings.
    pub(crate) async fn set_billing_commitment(
        &self,
        b: model::MinimumThroughputBillingCommitmentOutput,
    ) -> Result<()> {
        let meta = self.meta.clone();
        let row = b.clone();
        registry::blocking(move || meta.put_account_settings(&row)).await??;
        *self
            .billing_commitment
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(b);
        Ok(())
    }

    /// Applies retention to every stream's log, completes due deletions and
    /// persists due status changes; the server's maintenance task runs this
    /// periodically.
    pub async fn maintain(&self) {
        let now = self.now_ms();
        let logs: Vec<_> = self
            .all_streams()
            .iter()
            .map(|s| (s.log.clone(), now - s.retention_ms()))
            .collect();
        let trimmed = registry::blocking(move || {
            for (log, cutoff) in logs {
                log.trim(cutoff);
            }
        })
        .await;
        if let Err(e) = trimmed.and(self.settle_all().await) {
            tracing::error!(error = %e, "maintenance failed");
        }
        let live: Vec<u64> = self.all_streams().iter().map(|s| s.id).collect();
        self.traffic.sample(&live);
    }

    /// Every stream's (region, name) and traffic figures, for `/metrics`.
    pub fn traffic(&self) -> Vec<(String, String, traffic::Figures)> {
        let mut out: Vec<_> = self
            .all_streams()
            .iter()
            .map(|s| (s.region.clone(), s.name.clone(), self.traffic.figures(s.id)))
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        out
    }

    /// Every stream's (region, name) and its shards' figures, for
    /// `/metrics`.
    pub fn shard_traffic(&self) -> Vec<(String, String, Vec<traffic::ShardTraffic>)> {
        let mut out: Vec<_> = self
            .all_streams()
            .iter()
            .map(|s| (s.region.clone(), s.name.clone(), self.shards_of(s)))
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        out
    }

    /// One stream's figures and its shards' (what the console's stream
    /// page charts), unless it does not exist.
    pub fn stream_figures(
        &self,
        region: &str,
        name: &str,
    ) -> Option<(traffic::Figures, Vec<traffic::ShardTraffic>)> {
        let s = self.snapshot(&(region.to_owned(), name.to_owned()))?;
        Some((self.traffic.figures(s.id), self.shards_of(&s)))
    }

    /// A stream's open shards, and its closed ones read within the last
    /// minute, with their figures, in shard order.
    fn shards_of(&self, s: &Stream) -> Vec<traffic::ShardTraffic> {
        let figures = self.traffic.shards(s.id);
        s.shards
            .iter()
            .filter_map(|shard| {
                let f = figures
                    .iter()
                    .find(|(i, _)| *i == shard.index)
                    .map(|f| f.1)
                    .unwrap_or_default();
                (shard.is_open() || f.iterator_age_ms.is_some()).then(|| traffic::ShardTraffic {
                    shard_id: shard.id(),
                    open: shard.is_open(),
                    figures: f,
                })
            })
            .collect()
    }

    /// Counts `bytes` as pending until the returned guard drops (after the
    /// write is durable, or abandoned), or refuses the write when the
    /// server's pending bytes are at their cap. A write is always admitted
    /// when nothing is pending, so no single request is refused forever.
    pub(crate) fn reserve_write(&self, s: &Stream, bytes: u64) -> Result<PendingWrite<'_>> {
        let before = self.pending_write_bytes.fetch_add(bytes, Ordering::AcqRel);
        if before > 0 && before + bytes > self.cfg.max_pending_write_bytes {
            self.pending_write_bytes.fetch_sub(bytes, Ordering::AcqRel);
            return Err(KinesisError::ProvisionedThroughputExceeded(format!(
                "Rate exceeded for stream {} under account {}.",
                s.name, self.cfg.account
            )));
        }
        Ok(PendingWrite(&self.pending_write_bytes, bytes))
    }

    /// Record bytes accepted and not yet durable, for metrics.
    pub fn pending_write_bytes(&self) -> u64 {
        self.pending_write_bytes.load(Ordering::Acquire)
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn account(&self) -> &str {
        &self.cfg.account
    }

    /// Ids grow with time, so a stream created after a restart never takes
    /// the id (and so the log, or the iterators) of one deleted before it.
    pub(crate) fn next_stream_id(&self) -> u64 {
        let floor = (self.now_ms().max(0) as u64) << 10;
        let mut cur = self.next_id.load(Ordering::SeqCst);
        loop {
            let id = cur.max(floor);
            match self
                .next_id
                .compare_exchange(cur, id + 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return id,
                Err(actual) => cur = actual,
            }
        }
    }

    /// The key of the stream a request names by StreamName and/or StreamARN.
    pub(crate) fn key(
        &self,
        ctx: &Ctx,
        name: Option<&str>,
        arn: Option<&str>,
    ) -> Result<StreamKey> {
        match (name, arn) {
            (_, Some(arn)) => {
                let parsed = names::parse_stream_arn(arn).ok_or_else(|| {
                    KinesisError::InvalidArgument(format!("StreamARN {arn} is invalid."))
                })?;
                if let Some(n) = name.filter(|n| *n != parsed.name) {
                    return Err(KinesisError::InvalidArgument(format!(
                        "StreamName {n} does not match the stream in StreamARN {arn}."
                    )));
                }
                if parsed.account != self.cfg.account {
                    return Err(Msg::stream_not_found(&parsed.name, &parsed.account));
                }
                Ok((parsed.region, parsed.name))
            }
            (Some(name), None) => Ok((ctx.region.clone(), name.to_owned())),
            (None, None) => Err(KinesisError::InvalidArgument(
                "Either StreamName or StreamARN must be provided.".into(),
            )),
        }
    }

    /// PutRecords from an input the fast path parsed.
    pub async fn put_records(
        &self,
        ctx: &Ctx,
        input: model::PutRecordsInput,
    ) -> Result<model::PutRecordsOutput> {
        ops::records::put_records(self, ctx, input).await
    }

    /// GetRecords answered in JSON without a document tree.
    pub async fn get_records_json(&self, ctx: &Ctx, body: Value) -> Result<Vec<u8>> {
        let input = model::GetRecordsInput::from_value(Value::Map(shape::input(
            &model::GET_RECORDS_INPUT,
            body,
        )?));
        Ok(fast::get_records_output_json(
            ops::records::get_records(self, ctx, input).await?,
        ))
    }

    /// Runs one operation on a decoded request body.
    pub async fn call(&self, ctx: &Ctx, operation: &str, body: Value) -> Result<Value> {
        let input = shape::operation_input(model::OPERATIONS, operation, body)?;
        ops::dispatch(self, ctx, operation, Value::Map(input)).await
    }
}

/// Converts a validated body into an operation's input type.
pub(crate) fn input<T: FromValue>(v: Value) -> T {
    T::from_value(v)
}

impl Service {
    /// Creates a stream that starts ACTIVE unless it already exists (the
    /// idempotent start-up init); returns whether it was created.
    pub async fn ensure_stream(
        &self,
        region: &str,
        name: &str,
        shards: Option<u32>,
    ) -> Result<bool> {
        let ctx = Ctx {
            region: region.to_owned(),
        };
        if self
            .snapshot(&(region.to_owned(), name.to_owned()))
            .is_some()
        {
            return Ok(false);
        }
        let input = model::CreateStreamInput {
            stream_name: name.to_owned(),
            shard_count: shards.map(i64::from),
            stream_mode_details: Some(model::StreamModeDetails {
                stream_mode: if shards.is_some() {
                    "PROVISIONED"
                } else {
                    "ON_DEMAND"
                }
                .into(),
            }),
            ..Default::default()
        };
        ops::streams::create_stream(self, &ctx, input).await?;
        self.update_key(&(region.to_owned(), name.to_owned()), |s| {
            s.status = Status::Active;
            Ok(())
        })
        .await?;
        Ok(true)
    }
}
