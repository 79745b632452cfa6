//! Amazon Data Firehose: the API control plane and the durable buffer.
//!
//! - [`Service`] holds every delivery stream of the account, keyed by
//!   region and name, and the [`riffle_log::LogEngine`] their buffers live
//!   in.
//! - [`Service::call`] runs one operation: it validates the decoded body
//!   against the generated [`model`] (AWS's serialization and validation
//!   errors), converts it into the operation's typed input and runs the
//!   handler in [`ops`]; the typed output becomes a document again.
//! - [`state`]: a delivery stream (also its stored row) and AWS's texts.
//! - [`registry`]: who owns what: a cell per delivery stream, snapshots for
//!   readers, control operations that persist before they install.
//! - [`meta`]: the `firehose` namespace of the shared metadata store.
//! - [`buffer`]: the [`buffer::Buffer`] seam and [`buffer::LogBuffer`]:
//!   accepted records kept in a record log, acknowledged once durable.
//! - [`deliver`]: a task per delivery stream reading its buffer (or its
//!   Kinesis source) from a persisted checkpoint, running the processors,
//!   buffering per partition by the destination's hints and handing objects
//!   to a [`deliver::Destination`], with retries and FailureDescription;
//!   at-least-once.
//! - [`convert`]: record format conversion (JSON to Parquet or ORC with
//!   a Glue table's columns, read through [`Config::catalog`]), and
//!   [`error_output`]: the error records both it and HTTP endpoints write.
//! - [`s3`]: the S3 destination (compression, AppendDelimiterToRecord,
//!   object keys from [`prefix`]) writing through an [`sink::ObjectSink`]
//!   given in [`Config::sink`] ([`sink::DirSink`] keeps objects as files).
//! - [`process`]: the processors of S3, HTTP endpoint and Redshift
//!   destinations (KPL and JSON
//!   deaggregation, decompression, CloudWatch Logs, Lambda through
//!   [`Config::lambda_endpoint`], jq metadata extraction) and dynamic
//!   partitioning; [`failed`]: the error records written for data given
//!   up on.
//! - [`redshift`]: the Redshift destination: batches staged in the
//!   intermediate S3 destination with a manifest, then COPY into a
//!   PostgreSQL server standing in for the cluster
//!   ([`redshift::copy`] reads the data as Redshift's CopyOptions say).
//! - [`stats`]: per delivery stream counters for `/metrics`, after
//!   CloudWatch's Firehose metrics, and what each delivery task holds
//!   ([`stats::Fill`]), which [`Service::console_view`] shows the console.
//! - [`error::FirehoseError`] maps every failure to AWS's `__type`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};

use riffle_core::Clock;
use riffle_log::LogEngine;
use riffle_wire::shape::{self, FromValue};
use riffle_wire::Value;

pub mod backup;
pub mod buffer;
pub mod client;
pub mod convert;
pub mod deliver;
pub mod error;
pub mod external;
pub mod failed;
pub mod http;
pub mod meta;
#[rustfmt::skip]
pub mod model;
pub mod ops;
pub mod orc;
pub mod prefix;
pub mod process;
pub mod redshift;
pub mod registry;
pub mod s3;
pub mod secrets;
pub mod sink;
pub mod state;
pub mod stats;
pub mod tap;

pub use error::FirehoseError;
use error::Result;

/// Server-wide settings of the service.
#[derive(Debug, Clone)]
pub struct Config {
    /// The account id in ARNs and messages.
    pub account: String,
    /// How long CREATING, DELETING, ENABLING and DISABLING last.
    pub status_delay_ms: i64,
    /// Delivery streams allowed per region.
    pub delivery_stream_limit: usize,
    /// Durability of the buffer logs.
    pub durability: riffle_log::Durability,
    /// Where S3 destinations put objects; without one they report
    /// "delivery not configured" and keep records buffered.
    pub sink: Option<sink::Sink>,
    /// The longest a delivery task sleeps before looking at the clock
    /// again (buffering intervals and retry backoff are measured on the
    /// service's clock).
    pub delivery_tick_ms: u64,
    /// The Lambda Invoke API that Lambda processors call
    /// (`http[s]://host:port`); without one such streams report it and keep
    /// records buffered.
    pub lambda_endpoint: Option<String>,
    /// Where record format conversion reads Glue tables.
    pub catalog: Option<convert::CatalogRef>,
    /// Where Redshift destinations connect, whatever host and port their
    /// ClusterJDBCURL names (`--redshift-endpoint`).
    pub redshift_endpoint: Option<redshift::HostPort>,
    /// Where SecretsManagerConfiguration secrets are read.
    pub secrets: Option<secrets::SecretsRef>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            account: "000000000000".into(),
            status_delay_ms: 500,
            delivery_stream_limit: DELIVERY_STREAM_LIMIT,
            durability: riffle_log::Durability::Fsync,
            sink: None,
            delivery_tick_ms: 1000,
            lambda_endpoint: None,
            catalog: None,
            redshift_endpoint: None,
            secrets: None,
        }
    }
}

/// Firehose streams per region (AWS's default quota).
pub const DELIVERY_STREAM_LIMIT: usize = 5000;

/// Who is calling: the region comes from the request's credential scope.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub region: String,
}

/// Delivery streams are keyed by region and name.
pub type StreamKey = (String, String);

/// Why the service's state could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Meta(#[from] riffle_meta::MetaError),
    #[error("listing the stored buffer logs: {0}")]
    ListLogs(#[source] riffle_log::LogError),
    #[error("removing the orphan buffer log {id}: {source}")]
    RemoveOrphan {
        id: u64,
        #[source]
        source: riffle_log::LogError,
    },
    #[error("opening the buffer log of delivery stream {id}: {source}")]
    Log {
        id: u64,
        #[source]
        source: riffle_log::LogError,
    },
}

/// The Firehose service.
pub struct Service {
    pub cfg: Config,
    pub clock: Arc<dyn Clock>,
    pub engine: Arc<dyn LogEngine>,
    /// Data Streams, for `KinesisStreamAsSource`.
    pub kinesis: Option<Arc<riffle_streams::Service>>,
    streams: RwLock<registry::Registry>,
    /// Creations in flight: the keys they reserved (see `registry`).
    creating: std::sync::Mutex<registry::Creating>,
    next_id: AtomicU64,
    meta: meta::Meta,
    /// This service, for the delivery tasks it starts.
    me: Weak<Service>,
    /// Delivery tasks start once the service is built.
    started: AtomicBool,
}

impl Service {
    /// A service with nothing persisted.
    pub fn new(
        cfg: Config,
        clock: Arc<dyn Clock>,
        engine: Arc<dyn LogEngine>,
        kinesis: Option<Arc<riffle_streams::Service>>,
    ) -> Arc<Self> {
        let svc = Arc::new_cyclic(|me| {
            Self::build(cfg, clock, engine, kinesis, meta::Meta::none(), me.clone())
        });
        svc.start_delivery();
        svc
    }

    fn build(
        cfg: Config,
        clock: Arc<dyn Clock>,
        engine: Arc<dyn LogEngine>,
        kinesis: Option<Arc<riffle_streams::Service>>,
        meta: meta::Meta,
        me: Weak<Service>,
    ) -> Service {
        Service {
            cfg,
            clock,
            engine,
            kinesis,
            streams: RwLock::new(registry::Registry::new()),
            creating: Default::default(),
            next_id: AtomicU64::new(1),
            meta,
            me,
            started: AtomicBool::new(false),
        }
    }

    /// Starts the delivery task of every stream registered so far; later
    /// streams start theirs as they are registered.
    fn start_delivery(&self) {
        self.started.store(true, Ordering::SeqCst);
        let cells: Vec<_> = registry::read_all(&self.streams);
        for (key, cell) in cells {
            self.spawn_delivery(key, cell);
        }
    }

    /// A service whose metadata lives in the namespace `ns` of the shared
    /// store: stored delivery streams are loaded and their buffers opened;
    /// buffer logs no row names (a crash between the two) are removed.
    pub fn open(
        cfg: Config,
        clock: Arc<dyn Clock>,
        engine: Arc<dyn LogEngine>,
        kinesis: Option<Arc<riffle_streams::Service>>,
        ns: riffle_meta::Namespace,
    ) -> std::result::Result<Arc<Self>, OpenError> {
        let meta = meta::Meta::new(ns)?;
        let rows = meta.load()?;
        let mut svc = None;
        let arc = Arc::new_cyclic(|me| {
            let built = Self::build(cfg, clock, engine.clone(), kinesis, meta, me.clone());
            let done = built.load(rows, &engine);
            svc = Some(done);
            built
        });
        svc.expect("the closure ran")?;
        arc.start_delivery();
        Ok(arc)
    }

    /// Registers stored streams and opens their buffers; removes orphan
    /// buffer logs.
    fn load(
        &self,
        rows: Vec<state::DeliveryStream>,
        engine: &Arc<dyn LogEngine>,
    ) -> std::result::Result<(), OpenError> {
        let svc = self;
        let named: std::collections::HashSet<u64> = rows.iter().map(|r| r.log_id).collect();
        let stored = engine.stored_ids().map_err(OpenError::ListLogs)?;
        for id in stored.into_iter().filter(|id| !named.contains(id)) {
            tracing::info!(
                log = id,
                "removing an orphan buffer log no delivery stream names"
            );
            engine
                .remove(id)
                .map_err(|source| OpenError::RemoveOrphan { id, source })?;
        }
        let mut last = 0;
        for mut row in rows {
            let id = row.log_id;
            let log = engine
                .open(id)
                .map_err(|source| OpenError::Log { id, source })?;
            log.set_durability(svc.cfg.durability);
            // In interval and none modes a power loss can take the
            // buffer's unsynced tail after delivery moved the checkpoint
            // past it (those records are delivered). The log gives those
            // offsets out again, so the checkpoint comes back to the log's
            // end, persisted before any new record can take one of them;
            // otherwise delivery would skip the new records.
            let end = log.next_offset(buffer::SHARD);
            if row.delivered_offset > end {
                tracing::warn!(
                    stream = %row.name,
                    checkpoint = row.delivered_offset,
                    end,
                    "the buffer lost records past its delivery checkpoint in a power loss; moving the checkpoint back to its end"
                );
                row.delivered_offset = end;
                svc.meta
                    .write(&(row.region.clone(), row.name.clone()), Some(&row))?;
            }
            last = last.max(id);
            svc.insert(row, buffer::LogBuffer::new(log));
        }
        svc.next_id.store(last + 1, Ordering::SeqCst);
        Ok(())
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn account(&self) -> &str {
        &self.cfg.account
    }

    /// Delivery streams, for metrics.
    pub fn count(&self) -> usize {
        self.all_streams().len()
    }

    /// Every delivery stream's counters, for `/metrics`: ((region, name),
    /// counters), in key order.
    pub fn stream_stats(&self) -> Vec<(StreamKey, stats::Snapshot)> {
        let now = self.now_ms();
        registry::read_all(&self.streams)
            .into_iter()
            .filter(|(_, c)| !registry::is_gone(&c.snapshot(now), now))
            .map(|(k, c)| (k, c.stats.snapshot(now)))
            .collect()
    }

    /// What the console shows of a delivery stream that no AWS API
    /// reports: its counters and what its delivery task holds. `None`
    /// when it does not exist.
    pub fn console_view(&self, key: &StreamKey) -> Option<ConsoleView> {
        let cell = self.cell(key)?;
        let now_ms = self.now_ms();
        let stream = cell.snapshot(now_ms);
        if registry::is_gone(&stream, now_ms) {
            return None;
        }
        let fill = cell.stats.fill();
        // A task that has not read yet starts at the checkpoint.
        let unread_records = match (&stream.source, fill.read_offset) {
            (state::Source::Kinesis { .. }, _) => 0,
            (_, at) => cell
                .buffer
                .next_offset()
                .saturating_sub(at.unwrap_or(cell.delivered_offset().max(1))),
        };
        Some(ConsoleView {
            stats: cell.stats.snapshot(now_ms),
            failure: cell.failure(),
            stream,
            fill,
            unread_records,
            now_ms,
        })
    }

    /// Ids grow with time, so a delivery stream created after a restart
    /// never takes the buffer log of one deleted before it.
    pub(crate) fn next_log_id(&self) -> u64 {
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

    /// Completes due deletions and persists due transitions; the server's
    /// maintenance task runs this periodically.
    pub async fn maintain(&self) {
        if let Err(e) = self.settle_all().await {
            tracing::error!(error = %e, "firehose maintenance failed");
        }
    }

    /// Runs one operation on a decoded request body.
    pub async fn call(&self, ctx: &Ctx, operation: &str, body: Value) -> Result<Value> {
        let input = shape::operation_input(model::OPERATIONS, operation, body)?;
        ops::dispatch(self, ctx, operation, Value::Map(input)).await
    }
}

/// See [`Service::console_view`].
pub struct ConsoleView {
    pub stream: Arc<state::DeliveryStream>,
    pub stats: stats::Snapshot,
    pub fill: stats::Fill,
    /// Records accepted and not yet read by the delivery task (DirectPut).
    pub unread_records: u64,
    /// FailureDescription's text, when delivery is failing.
    pub failure: Option<String>,
    /// The service's clock.
    pub now_ms: i64,
}

/// Converts a validated body into an operation's input type.
pub(crate) fn input<T: FromValue>(v: Value) -> T {
    T::from_value(v)
}
