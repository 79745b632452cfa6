//! Delivery: a task per delivery stream reads its source from a persisted
//! checkpoint, runs the destination's processors, buffers what they return
//! per partition by the destination's hints, and hands one partition's
//! buffer at a time to a [`Destination`].
//!
//! - The source is the stream's durable [`Buffer`] (DirectPut) or, for
//!   `KinesisStreamAsSource`, the Riffle stream read in process with a
//!   [`riffle_streams::access::StreamReader`] from `DeliveryStartTimestamp`
//!   or its checkpoint.
//! - Processing ([`Destination::front`]): read records wait in the stage,
//!   the Lambda processor's own buffer (an invocation's worth by its
//!   BufferSizeInMBs, or all once the oldest waited its
//!   BufferIntervalInSeconds); without a Lambda processor they are
//!   processed as soon as they are read.
//! - Buffering: processed records go into a buffer per partition (the
//!   values of the partition keys the Prefix uses; one buffer without
//!   dynamic partitioning), written as one object when it reaches the size
//!   hint or has waited the interval hint (0 = as soon as records are
//!   there). At most [`crate::process::ACTIVE_PARTITIONS`] partitions are
//!   open or undelivered at once; records of another go to the error
//!   output.
//! - At-least-once: each record carries its source position; the
//!   checkpoint (buffer offset, or per-shard sequence numbers) moves past a
//!   read only once every record made of it, in whatever partition, error
//!   object or source backup, was stored, and is persisted in the stream's
//!   row right then. A crash before that delivers those records again
//!   after the restart: that is the only way a record is delivered twice.
//! - Failures are retried with exponential backoff (1 s doubling to 60 s)
//!   per lane: a partition's objects (one lane without dynamic
//!   partitioning) and error objects are each written in order, and a
//!   lane whose write failed waits without holding up the others (its
//!   partition still counts as active); a source backup that waits holds
//!   up every write after it; reading stops while
//!   the writes owed hold [`HOLD_WHILE_RETRYING`] buffers. Failures are
//!   shown in DescribeDeliveryStream's FailureDescription; a write
//!   whose oldest record is older than 24 hours when an attempt fails is
//!   dropped, as AWS drops data it could not deliver within 24 hours.
//! - Time comes from the service's [`riffle_core::Clock`]: the hints and
//!   the backoff are measured on it, and the task re-checks it at least
//!   every `Config::delivery_tick_ms`, so tests move a manual clock
//!   instead of sleeping.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use riffle_log::ReadLimits;
use riffle_streams::access::{Checkpoint, Start, StreamReader};

use crate::prefix::PartitionKeys;
use crate::registry::Cell;
use crate::sink::ObjectSink;
use crate::state::{DeliveryStream, Kind, Source, Status};
use crate::{Service, StreamKey};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// When to write an object: whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hints {
    pub size_bytes: usize,
    /// 0 is zero buffering.
    pub interval_ms: i64,
}

/// One object's worth of records.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub records: Vec<Bytes>,
    /// Approximate arrival of the oldest record (the key's time).
    pub first_arrival_ms: i64,
    pub last_arrival_ms: i64,
    pub bytes: usize,
    /// Each record's approximate arrival, when known (else the batch's
    /// first).
    pub arrivals: Vec<i64>,
    /// For a Kinesis source, each record's origin (else empty).
    pub kinesis: Vec<Arc<KinesisRecord>>,
    /// Each record's position in the source, when known: its buffer
    /// offset, or for a Kinesis source the order it was read in. The
    /// checkpoint moves past a position once every record made of it was
    /// delivered.
    pub seqs: Vec<u64>,
    /// The partition the records belong to (dynamic partitioning; empty
    /// keys otherwise).
    pub keys: crate::prefix::PartitionKeys,
}

/// Where a record read from a Kinesis source came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KinesisRecord {
    pub shard_id: String,
    pub partition_key: String,
    pub sequence_number: String,
}

impl Batch {
    pub(crate) fn push(&mut self, data: Bytes, arrival_ms: i64) {
        if self.records.is_empty() {
            self.first_arrival_ms = arrival_ms;
        }
        self.last_arrival_ms = arrival_ms;
        self.bytes += data.len();
        self.records.push(data);
        self.arrivals.push(arrival_ms);
    }

    pub(crate) fn push_from(&mut self, data: Bytes, arrival_ms: i64, seq: u64) {
        self.push(data, arrival_ms);
        self.seqs.push(seq);
    }

    /// Takes the first `n` records out.
    pub(crate) fn split_front(&mut self, n: usize) -> Batch {
        let old = std::mem::take(self);
        let mut head = Batch {
            keys: old.keys.clone(),
            ..Batch::default()
        };
        self.keys = old.keys.clone();
        let arrivals: Vec<i64> = (0..old.records.len()).map(|i| old.arrival_ms(i)).collect();
        for (i, data) in old.records.into_iter().enumerate() {
            let to = if i < n { &mut head } else { &mut *self };
            to.push(data, arrivals[i]);
            if let Some(k) = old.kinesis.get(i) {
                to.kinesis.push(k.clone());
            }
            if let Some(q) = old.seqs.get(i) {
                to.seqs.push(*q);
            }
        }
        head
    }

    /// The source position of record `i` (0 when unknown).
    pub fn seq(&self, i: usize) -> u64 {
        self.seqs.get(i).copied().unwrap_or(0)
    }

    /// The Kinesis origin of record `i`, for a Kinesis source.
    pub fn kinesis(&self, i: usize) -> Option<&Arc<KinesisRecord>> {
        self.kinesis.get(i)
    }

    /// The approximate arrival of record `i`.
    pub fn arrival_ms(&self, i: usize) -> i64 {
        self.arrivals
            .get(i)
            .copied()
            .unwrap_or(self.first_arrival_ms)
    }
}

/// Why a delivery attempt failed: AWS's error code (`S3.NoSuchBucket`)
/// and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    pub code: String,
    pub message: String,
}

/// Where a delivery stream's records go.
pub trait Destination: Send + Sync {
    fn name(&self) -> &'static str;
    fn hints(&self) -> Hints;
    /// Stores one batch: processed records of one partition (the task runs
    /// [`Destination::front`] first); `Ok` only once it is durable at the
    /// destination.
    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<(), DeliveryError>>;
    /// The processors run on records before they are buffered by
    /// partition, and the layout of partition and error prefixes; `None`:
    /// records are buffered as they are.
    fn front(&self) -> Option<&crate::process::Front> {
        None
    }
    /// Stores an error object of records processing gave up on.
    fn store_errors<'a>(
        &'a self,
        _errors: &'a crate::process::ErrorObject,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async { Ok(()) })
    }
    /// Whether source records are backed up ([`Destination::backup_source`]).
    fn backs_up_source(&self) -> bool {
        false
    }
    /// Backs up source records as they arrived, before processing.
    fn backup_source<'a>(&'a self, _batch: &'a Batch) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async { Ok(()) })
    }
}

tokio::task_local! {
    /// The stream whose batch the running `Destination::deliver` delivers.
    static DELIVERING: Arc<Cell>;
}

/// Shows why delivery is failing (`None`: that it no longer is) as the
/// stream's FailureDescription while a destination retries inside
/// `Destination::deliver`; does nothing outside a delivery task.
pub fn report_failure(text: Option<String>) {
    let _ = DELIVERING.try_with(|cell| cell.set_failure(text));
}

/// Counts time the MetadataExtraction query took on `records` records for
/// the stream being processed; does nothing outside a delivery task.
pub fn report_jq(took: Duration, records: u64) {
    let _ = DELIVERING.try_with(|cell| cell.stats.jq(took, records));
}

/// The FailureDescription text of a failed attempt.
pub fn failure_text(e: &DeliveryError, attempts: u32) -> String {
    format!(
        "{}: {} ({} attempt{} so far)",
        e.code,
        e.message,
        attempts,
        if attempts == 1 { "" } else { "s" }
    )
}

/// What the task does for a stream's current configuration.
pub enum Plan {
    /// The destination type does not deliver in Riffle yet (records stay
    /// buffered; the README says so).
    Idle,
    /// Delivery cannot start: the reason is shown as FailureDescription
    /// and records stay buffered.
    NotConfigured(String),
    Deliver(Arc<dyn Destination>),
}

/// The text shown when S3 destinations have no object sink.
pub const NOT_CONFIGURED: &str = "Delivery to S3 is not configured on this server (start it with --firehose-local-output DIR); records stay buffered.";

/// What a destination needs of the service besides the stream.
pub struct PlanCtx<'a> {
    pub sink: Option<&'a Arc<dyn ObjectSink>>,
    pub clock: Arc<dyn riffle_core::Clock>,
    pub account: &'a str,
    /// `--lambda-endpoint`, for Lambda processors.
    pub lambda_endpoint: Option<&'a str>,
    /// Where record format conversion reads Glue tables.
    pub catalog: Option<&'a crate::convert::CatalogRef>,
    /// `--redshift-endpoint`.
    pub redshift_endpoint: Option<&'a crate::redshift::HostPort>,
    /// Where SecretsManagerConfiguration secrets are read.
    pub secrets: Option<&'a crate::secrets::SecretsRef>,
    /// The stream's counters, for destinations that count deliveries of
    /// their own (Redshift: staged objects and COPY commands).
    pub stats: Arc<crate::stats::Stats>,
}

/// The plan for a stream's first destination.
pub fn plan(s: &DeliveryStream, ctx: PlanCtx<'_>) -> Plan {
    let sink = ctx.sink;
    let Some(d) = s.destinations.first() else {
        return Plan::Idle;
    };
    if d.kind == Kind::HttpEndpoint {
        return match crate::http::Settings::from_description(&d.description, d.access_key.clone()) {
            Ok(settings) => Plan::Deliver(Arc::new(crate::http::HttpDestination {
                front: match crate::process::runtime(&settings.pipeline, s, &ctx) {
                    Ok(runtime) => crate::process::Front {
                        pipeline: settings.pipeline.clone(),
                        runtime,
                        layout: settings.backup.layout.clone(),
                    },
                    Err(reason) => return Plan::NotConfigured(reason),
                },
                settings,
                stream: s.name.clone(),
                stream_arn: s.arn(ctx.account),
                version: s.version,
                sink: sink.cloned(),
                clock: ctx.clock,
                client: crate::client::Client::shared(),
                secrets: ctx.secrets.cloned(),
                sent: Default::default(),
            })),
            Err(reason) => Plan::NotConfigured(reason),
        };
    }
    if !d.kind.delivers() {
        return Plan::Idle;
    }
    let Some(sink) = sink else {
        return Plan::NotConfigured(NOT_CONFIGURED.into());
    };
    if d.kind == Kind::Redshift {
        return match crate::redshift::Settings::from_description(
            &d.description,
            d.password.clone(),
            ctx.redshift_endpoint,
        ) {
            Ok(mut settings) => {
                settings.secrets = ctx.secrets.cloned();
                let front = match crate::process::runtime(&settings.staging.pipeline, s, &ctx) {
                    Ok(runtime) => crate::process::Front {
                        pipeline: settings.staging.pipeline.clone(),
                        runtime,
                        layout: settings.staging.layout.clone(),
                    },
                    Err(reason) => return Plan::NotConfigured(reason),
                };
                Plan::Deliver(Arc::new(crate::redshift::RedshiftDestination::new(
                    settings,
                    s.name.clone(),
                    s.version,
                    sink.clone(),
                    ctx.clock.clone(),
                    ctx.stats.clone(),
                    front,
                )))
            }
            Err(reason) => Plan::NotConfigured(reason),
        };
    }
    match crate::s3::Settings::from_description(&d.description) {
        Ok(Ok(settings)) => {
            let front = match crate::process::runtime(&settings.pipeline, s, &ctx) {
                Ok(runtime) => crate::process::Front {
                    pipeline: settings.pipeline.clone(),
                    runtime,
                    layout: settings.layout.clone(),
                },
                Err(reason) => return Plan::NotConfigured(reason),
            };
            match crate::backup::wrap(
                Arc::new(crate::s3::S3Destination {
                    settings,
                    stream: s.name.clone(),
                    version: s.version,
                    sink: sink.clone(),
                    front,
                    convert: crate::convert::Context {
                        catalog: ctx.catalog.cloned(),
                        region: s.region.clone(),
                        clock: ctx.clock.clone(),
                    },
                }),
                &d.description,
                &s.name,
                s.version,
                sink,
            ) {
                Ok(d) => Plan::Deliver(d),
                Err(reason) => Plan::NotConfigured(reason),
            }
        }
        Ok(Err(reason)) => Plan::NotConfigured(reason),
        Err(e) => Plan::NotConfigured(e.to_string()),
    }
}

/// How long undeliverable data is kept.
pub const RETENTION_MS: i64 = 24 * 3600 * 1000;
const BACKOFF_FIRST_MS: i64 = 1000;
const BACKOFF_MAX_MS: i64 = 60_000;
/// While a lane waits to retry, reading stops once the writes owed hold
/// this many buffers (size hints) of records.
const HOLD_WHILE_RETRYING: usize = 4;
/// How often, at most, a busy task publishes what it holds (an idle one
/// publishes before it waits).
const FILL_EVERY: Duration = Duration::from_millis(100);
/// Records read from the delivery buffer at a time, at most (a read also
/// stops at the bytes the size hint still wants): enough that one read
/// fills a size hint of small records, so a task that fell behind its
/// interval writes objects of the size hint rather than one per read.
const BUFFER_READ: usize = 1 << 20;
/// Records read from a Kinesis source at a time.
const KINESIS_READ: usize = 1000;

/// Where the task reads.
enum Input {
    Buffer {
        /// The next offset to read (records below it are held or
        /// delivered).
        pos: u64,
    },
    Kinesis {
        reader: Option<StreamReader>,
        /// The position the next record read gets.
        next_seq: u64,
    },
}

/// A checkpoint that may be persisted once every record read before it
/// was delivered.
enum Cp {
    Offset(u64),
    Kinesis(Checkpoint),
}

/// The end of one read: the records at positions below `end` were read
/// before `cp`.
struct Mark {
    end: u64,
    cp: Cp,
    last_arrival_ms: i64,
}

/// A write owed before the checkpoint may move past its records.
enum Job {
    /// Source records to back up, as they arrived.
    Backup(Batch),
    /// Records processing gave up on.
    Errors(crate::process::ErrorObject),
    /// One partition's buffer, full or due.
    Deliver(Batch),
}

/// Writes of one lane are made in order; a lane whose write failed waits
/// its backoff without holding up the others.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Lane {
    Backup,
    Errors,
    /// One partition's objects (the only one without dynamic
    /// partitioning).
    Part(PartitionKeys),
}

impl Job {
    fn lane(&self) -> Lane {
        match self {
            Job::Backup(_) => Lane::Backup,
            Job::Errors(_) => Lane::Errors,
            Job::Deliver(b) => Lane::Part(b.keys.clone()),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Job::Backup(b) | Job::Deliver(b) => b.bytes,
            Job::Errors(e) => e.body.len(),
        }
    }

    fn seqs(&self) -> &[u64] {
        match self {
            Job::Backup(b) | Job::Deliver(b) => &b.seqs,
            Job::Errors(e) => &e.seqs,
        }
    }

    fn first_arrival_ms(&self) -> i64 {
        match self {
            Job::Backup(b) | Job::Deliver(b) => b.first_arrival_ms,
            Job::Errors(e) => e.first_arrival_ms,
        }
    }

    fn run<'a>(&'a self, dest: &'a dyn Destination) -> BoxFuture<'a, Result<(), DeliveryError>> {
        match self {
            Job::Backup(b) => dest.backup_source(b),
            Job::Errors(e) => dest.store_errors(e),
            Job::Deliver(b) => dest.deliver(b),
        }
    }
}

/// One partition's buffer.
struct Part {
    batch: Batch,
    /// When its buffering interval started.
    opened_ms: i64,
}

/// The records between the source and the destination, and what the
/// checkpoint waits for.
#[derive(Default)]
struct Flow {
    /// Read and not yet processed: the Lambda processor's buffer (without
    /// one, records are processed as soon as they are read).
    stage: Batch,
    /// Processed records, a buffer per partition.
    parts: HashMap<PartitionKeys, Part>,
    /// Writes due, in order within each lane.
    jobs: VecDeque<Job>,
    /// Lanes whose first write failed, and when to try it again.
    retry: HashMap<Lane, Failing>,
    /// Records not yet delivered, by source position: a source record
    /// counts once for each record or copy made of it still owed.
    refs: BTreeMap<u64, u32>,
    /// Reads not yet settled, oldest first.
    marks: VecDeque<Mark>,
}

impl Flow {
    fn hold(&mut self, seqs: &[u64]) {
        for s in seqs {
            *self.refs.entry(*s).or_default() += 1;
        }
    }

    fn release(&mut self, seqs: &[u64]) {
        for s in seqs {
            if let std::collections::btree_map::Entry::Occupied(mut e) = self.refs.entry(*s) {
                *e.get_mut() -= 1;
                if *e.get() == 0 {
                    e.remove();
                }
            }
        }
    }

    /// The newest read whose records, and all before them, were
    /// delivered.
    fn settled(&mut self) -> Option<Mark> {
        let low = self.refs.keys().next().copied().unwrap_or(u64::MAX);
        let mut last = None;
        while self.marks.front().is_some_and(|m| m.end <= low) {
            last = self.marks.pop_front();
        }
        last
    }

    /// Partitions open or waiting to be delivered.
    fn active(&self) -> usize {
        self.parts.len()
            + self
                .jobs
                .iter()
                .filter(|j| matches!(j, Job::Deliver(_)))
                .count()
    }

    fn oldest_ms(&self) -> Option<i64> {
        let stage = (!self.stage.records.is_empty()).then_some(self.stage.first_arrival_ms);
        let parts = self.parts.values().map(|p| p.batch.first_arrival_ms);
        let jobs = self.jobs.iter().map(Job::first_arrival_ms);
        stage.into_iter().chain(parts).chain(jobs).min()
    }

    /// What the flow holds, for the console; `read_offset` is where the
    /// task reads its buffer next (DirectPut).
    fn fill(&self, read_offset: Option<u64>) -> crate::stats::Fill {
        use crate::stats::{Held, PartitionFill};
        let held = |b: &Batch| Held {
            records: b.records.len() as u64,
            bytes: b.bytes as u64,
            oldest_ms: if b.records.is_empty() {
                0
            } else {
                b.first_arrival_ms
            },
        };
        let mut partitions: Vec<PartitionFill> = self
            .parts
            .iter()
            .map(|(k, p)| PartitionFill {
                keys: [
                    ("partitionKeyFromQuery", &k.query),
                    ("partitionKeyFromLambda", &k.lambda),
                ]
                .into_iter()
                .flat_map(|(ns, m)| m.iter().map(move |(k, v)| (format!("{ns}:{k}"), v.clone())))
                .collect(),
                held: held(&p.batch),
                opened_ms: p.opened_ms,
            })
            .collect();
        partitions.sort_by(|a, b| (a.opened_ms, &a.keys).cmp(&(b.opened_ms, &b.keys)));
        let mut pending = Held::default();
        for j in &self.jobs {
            pending.records += j.seqs().len() as u64;
            if let Job::Deliver(b) | Job::Backup(b) = j {
                pending.bytes += b.bytes as u64;
            }
            let first = j.first_arrival_ms();
            if pending.oldest_ms == 0 || first < pending.oldest_ms {
                pending.oldest_ms = first;
            }
        }
        crate::stats::Fill {
            read_offset,
            staged: held(&self.stage),
            partitions,
            pending,
        }
    }

    fn largest_part(&self) -> usize {
        self.parts
            .values()
            .map(|p| p.batch.bytes)
            .max()
            .unwrap_or(0)
    }

    /// How many staged records are due for processing: all of them
    /// without a Lambda processor; with one, the invocations its buffer
    /// size fills, or all once the oldest waited its buffer interval.
    fn stage_due(&self, lambda: Option<Hints>, now: i64) -> usize {
        let n = self.stage.records.len();
        let Some(l) = lambda else {
            return n;
        };
        if n == 0 || now >= self.stage.first_arrival_ms.saturating_add(l.interval_ms) {
            return n;
        }
        let lens: Vec<usize> = self.stage.records.iter().map(Bytes::len).collect();
        let ranges = crate::process::lambda::split(&lens, l.size_bytes);
        let last = ranges.last().cloned().unwrap_or(0..0);
        if lens[last.clone()].iter().sum::<usize>() >= l.size_bytes {
            n
        } else {
            last.start
        }
    }
}

/// A delivery stream's delivery task.
pub(crate) struct Task {
    pub svc: Weak<Service>,
    pub key: StreamKey,
    pub cell: Arc<Cell>,
    pub stop: tokio::sync::watch::Receiver<bool>,
}

struct Failing {
    attempts: u32,
    next_try_ms: i64,
}

impl Task {
    fn tick(&self, svc: &Service) -> Duration {
        Duration::from_millis(svc.cfg.delivery_tick_ms.max(1))
    }

    /// Sleeps `d` or until stopped (false) or `wake` changes.
    async fn pause(
        &mut self,
        d: Duration,
        wake: Option<&mut tokio::sync::watch::Receiver<u64>>,
    ) -> bool {
        if *self.stop.borrow() {
            return false;
        }
        match wake {
            Some(w) => tokio::select! {
                _ = tokio::time::sleep(d) => {}
                r = w.changed() => if r.is_err() { tokio::time::sleep(d).await },
                _ = self.stop.changed() => return false,
            },
            None => tokio::select! {
                _ = tokio::time::sleep(d) => {}
                _ = self.stop.changed() => return false,
            },
        }
        !*self.stop.borrow()
    }

    pub(crate) async fn run(mut self) {
        let mut watch = self.cell.buffer.watch();
        let mut input = match self.cell.kinesis_source() {
            true => Input::Kinesis {
                reader: None,
                next_seq: 1,
            },
            false => Input::Buffer {
                pos: self.cell.delivered_offset().max(1),
            },
        };
        let mut flow = Flow::default();
        let mut cached: Option<(u64, Arc<dyn Destination>)> = None;
        let mut published: Option<std::time::Instant> = None;
        loop {
            let Some(svc) = self.svc.upgrade() else {
                return;
            };
            let tick = self.tick(&svc);
            let now = svc.now_ms();
            let s = self.cell.snapshot(now);
            if !matches!(s.status, Status::Active | Status::Deleting { .. }) {
                drop(svc);
                if !self.pause(tick, None).await {
                    return;
                }
                continue;
            }
            let dest = match &cached {
                Some((v, d)) if *v == s.version => d.clone(),
                _ => match plan(
                    &s,
                    PlanCtx {
                        sink: svc.cfg.sink.as_ref().map(|x| &x.0),
                        clock: svc.clock.clone(),
                        account: svc.account(),
                        lambda_endpoint: svc.cfg.lambda_endpoint.as_deref(),
                        catalog: svc.cfg.catalog.as_ref(),
                        redshift_endpoint: svc.cfg.redshift_endpoint.as_ref(),
                        secrets: svc.cfg.secrets.as_ref(),
                        stats: self.cell.stats.clone(),
                    },
                ) {
                    Plan::Deliver(d) => {
                        cached = Some((s.version, d.clone()));
                        self.cell.set_failure(None);
                        d
                    }
                    other => {
                        cached = None;
                        self.cell.set_failure(match other {
                            Plan::NotConfigured(m) => Some(m),
                            _ => None,
                        });
                        drop(svc);
                        if !self.pause(tick.max(Duration::from_millis(200)), None).await {
                            return;
                        }
                        continue;
                    }
                },
            };
            let hints = dest.hints();
            let lambda = dest.front().and_then(crate::process::Front::lambda_hints);
            self.cell.stats.holding(flow.oldest_ms(), flow.active());
            if published.is_none_or(|t| t.elapsed() >= FILL_EVERY) {
                self.publish_fill(&flow, &input);
                published = Some(std::time::Instant::now());
            }
            // Process what the Lambda processor's buffer (or, without
            // one, the last read) holds.
            let n = flow.stage_due(lambda, now);
            if n > 0 {
                let batch = flow.stage.split_front(n);
                DELIVERING
                    .scope(
                        self.cell.clone(),
                        process(&*dest, &mut flow, batch, lambda.is_some(), now),
                    )
                    .await;
                self.settle(&svc, &mut flow).await;
                continue;
            }
            // Partitions whose size or interval is reached are delivered,
            // each as one object.
            let mut due: Vec<(i64, PartitionKeys)> = flow
                .parts
                .iter()
                .filter(|(_, p)| {
                    p.batch.bytes >= hints.size_bytes
                        || now >= p.opened_ms.saturating_add(hints.interval_ms)
                })
                .map(|(k, p)| (p.opened_ms, k.clone()))
                .collect();
            due.sort();
            for (_, k) in due {
                if let Some(p) = flow.parts.remove(&k) {
                    flow.jobs.push_back(Job::Deliver(p.batch));
                }
            }
            if self.run_jobs(&svc, &*dest, &mut flow).await {
                self.settle(&svc, &mut flow).await;
                continue;
            }
            // Read more, without waiting, unless lanes waiting to retry
            // already hold a few buffers' worth.
            let held: usize = flow.jobs.iter().map(Job::bytes).sum();
            if !flow.retry.is_empty() && held >= HOLD_WHILE_RETRYING * hints.size_bytes {
                let next = flow
                    .retry
                    .values()
                    .map(|f| f.next_try_ms)
                    .min()
                    .unwrap_or(now);
                drop(svc);
                let left = Duration::from_millis((next - now).max(1) as u64);
                if !self.pause(left.min(tick), None).await {
                    return;
                }
                continue;
            }
            let want = match lambda {
                Some(l) => l.size_bytes.saturating_sub(flow.stage.bytes),
                None => hints.size_bytes.saturating_sub(flow.largest_part()),
            }
            .max(1);
            let got = match &mut input {
                Input::Buffer { pos } => {
                    match self.cell.buffer.read(
                        *pos,
                        ReadLimits {
                            max_records: BUFFER_READ,
                            max_bytes: want,
                        },
                    ) {
                        Ok(b) => {
                            let n = b.records.len();
                            let mut last = 0;
                            for r in b.records {
                                last = r.arrival_ms;
                                flow.hold(&[r.offset]);
                                flow.stage.push_from(r.data, r.arrival_ms, r.offset);
                            }
                            *pos = b.next_position.max(*pos);
                            if n > 0 {
                                flow.marks.push_back(Mark {
                                    end: *pos,
                                    cp: Cp::Offset(*pos),
                                    last_arrival_ms: last,
                                });
                            }
                            Ok(n)
                        }
                        Err(e) => Err(format!("reading the delivery buffer failed: {e}")),
                    }
                }
                Input::Kinesis { reader, next_seq } => {
                    let from = *next_seq;
                    let idle = flow.refs.is_empty();
                    let r = read_kinesis(
                        &svc,
                        &s,
                        &self.cell,
                        reader,
                        &mut flow.stage,
                        next_seq,
                        want,
                        idle,
                    )
                    .await;
                    let seqs: Vec<u64> = (from..*next_seq).collect();
                    flow.hold(&seqs);
                    if let (Ok(n), Some(r)) = (&r, reader.as_ref()) {
                        if *n > 0 {
                            flow.marks.push_back(Mark {
                                end: *next_seq,
                                cp: Cp::Kinesis(r.checkpoint()),
                                last_arrival_ms: flow.stage.last_arrival_ms,
                            });
                        }
                    }
                    r
                }
            };
            match got {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(m) => {
                    self.cell.set_failure(Some(m));
                    drop(svc);
                    if !self
                        .pause(Duration::from_secs(1).min(tick * 10), None)
                        .await
                    {
                        return;
                    }
                    continue;
                }
            }
            // Nothing more to read: wait for records, the next interval
            // to end, or a configuration change.
            let stage_due = lambda
                .filter(|_| !flow.stage.records.is_empty())
                .map(|l| flow.stage.first_arrival_ms.saturating_add(l.interval_ms));
            let next_due = flow
                .parts
                .values()
                .map(|p| p.opened_ms.saturating_add(hints.interval_ms))
                .chain(stage_due)
                .chain(flow.retry.values().map(|f| f.next_try_ms))
                .min();
            let wait = match next_due {
                None => tick
                    .max(Duration::from_millis(100))
                    .min(Duration::from_secs(1)),
                Some(t) => Duration::from_millis((t - now).max(1) as u64).min(tick),
            };
            drop(svc);
            self.publish_fill(&flow, &input);
            published = Some(std::time::Instant::now());
            let wake = matches!(input, Input::Buffer { .. }).then_some(&mut watch);
            if !self.pause(wait, wake).await {
                return;
            }
        }
    }

    /// Runs every write that is due, in order within each lane; a failed
    /// write makes its lane wait its backoff (or is dropped once its
    /// records are older than the retention). Whether any write ran.
    async fn run_jobs(&self, svc: &Service, dest: &dyn Destination, flow: &mut Flow) -> bool {
        let mut ran = false;
        let mut waiting: HashSet<Lane> = HashSet::new();
        let mut i = 0;
        // Source backups come before what was made of the records: while
        // one waits, nothing after it is written.
        while i < flow.jobs.len() && !waiting.contains(&Lane::Backup) {
            let lane = flow.jobs[i].lane();
            let due = flow
                .retry
                .get(&lane)
                .is_none_or(|f| svc.now_ms() >= f.next_try_ms);
            if waiting.contains(&lane) || !due {
                waiting.insert(lane);
                i += 1;
                continue;
            }
            ran = true;
            let result = DELIVERING
                .scope(self.cell.clone(), flow.jobs[i].run(dest))
                .await;
            let e = match result {
                Ok(()) => {
                    flow.retry.remove(&lane);
                    if flow.retry.is_empty() {
                        self.cell.set_failure(None);
                    }
                    let job = flow.jobs.remove(i).expect("the job run");
                    if let (Job::Deliver(b), "s3") = (&job, dest.name()) {
                        self.cell
                            .stats
                            .delivered_to_s3(b.records.len() as u64, b.bytes as u64);
                    }
                    flow.release(job.seqs());
                    continue;
                }
                Err(e) => e,
            };
            let now = svc.now_ms();
            let attempts = flow.retry.get(&lane).map_or(0, |f| f.attempts) + 1;
            let mut text = failure_text(&e, attempts);
            self.cell.stats.failed_attempt();
            if now - flow.jobs[i].first_arrival_ms() <= RETENTION_MS {
                tracing::warn!(stream = %self.key.1, code = %e.code, message = %e.message, attempts, "delivery failed; retrying");
                self.cell.set_failure(Some(text));
                let backoff = (BACKOFF_FIRST_MS << (attempts - 1).min(6)).min(BACKOFF_MAX_MS);
                flow.retry.insert(
                    lane.clone(),
                    Failing {
                        attempts,
                        next_try_ms: now + backoff,
                    },
                );
                waiting.insert(lane);
                i += 1;
                continue;
            }
            let job = flow.jobs.remove(i).expect("the job run");
            let records = job.seqs().len();
            tracing::error!(
                stream = %self.key.1,
                records,
                code = %e.code,
                "dropping records older than 24 hours that could not be delivered"
            );
            text.push_str(&format!(
                "; {records} records older than 24 hours were dropped"
            ));
            self.cell.set_failure(Some(text));
            flow.retry.remove(&lane);
            flow.release(job.seqs());
        }
        ran
    }

    /// Publishes what the task holds, for the console's buffer fill.
    fn publish_fill(&self, flow: &Flow, input: &Input) {
        let read_offset = match input {
            Input::Buffer { pos } => Some(*pos),
            Input::Kinesis { .. } => None,
        };
        self.cell.stats.set_fill(flow.fill(read_offset));
    }

    /// Moves the checkpoint past every read whose records were all
    /// delivered, persists it, and trims delivered records from the
    /// buffer.
    async fn settle(&self, svc: &Service, flow: &mut Flow) {
        let Some(mark) = flow.settled() else {
            return;
        };
        match mark.cp {
            Cp::Offset(pos) => {
                self.cell.delivered(pos);
                // Arrival times never decrease along the log: everything
                // that arrived before the last settled record is settled
                // too.
                self.cell.buffer.trim(mark.last_arrival_ms);
            }
            Cp::Kinesis(cp) => self.cell.set_kinesis_checkpoint(cp),
        }
        if let Err(e) = svc.persist_progress(&self.key, &self.cell).await {
            // The cell stays dirty: maintenance persists it later.
            tracing::warn!(stream = %self.key.1, error = %e, "persisting the delivery checkpoint failed");
        }
    }
}

/// Runs the destination's processors on `batch` (read records), buffers
/// what they return by partition, and queues the writes owed for the rest:
/// the source backup, error objects, and records over the active
/// partition limit.
async fn process(dest: &dyn Destination, flow: &mut Flow, batch: Batch, lambda: bool, now: i64) {
    use crate::process::{self, Failure, Object, Processed};
    if dest.backs_up_source() {
        flow.hold(&batch.seqs);
        flow.jobs.push_back(Job::Backup(batch.clone()));
    }
    let front = dest.front();
    let out = match front {
        Some(f) => process::objects(&f.pipeline, &f.runtime, &f.layout, &batch).await,
        None => Processed {
            objects: vec![Object {
                prefix: String::new(),
                keys: PartitionKeys::default(),
                first_arrival_ms: batch.first_arrival_ms,
                records: batch.records.clone(),
                arrivals: (0..batch.records.len())
                    .map(|i| batch.arrival_ms(i))
                    .collect(),
                seqs: batch.seqs.clone(),
            }],
            errors: Vec::new(),
        },
    };
    for e in out.errors {
        flow.hold(&e.seqs);
        flow.jobs.push_back(Job::Errors(e));
    }
    let dynamic = front.is_some_and(|f| f.pipeline.dynamic);
    let mut over: Vec<Failure> = Vec::new();
    for o in out.objects {
        if dynamic
            && !flow.parts.contains_key(&o.keys)
            && flow.active() >= process::ACTIVE_PARTITIONS
        {
            for ((data, arrival_ms), seq) in o.records.into_iter().zip(o.arrivals).zip(o.seqs) {
                over.push(Failure {
                    error_type: process::ACTIVE_PARTITION_EXCEEDED,
                    code: process::ACTIVE_PARTITIONS_LIMIT_EXCEEDED.into(),
                    message: format!(
                        "The number of active partitions reached this delivery stream's limit of {}.",
                        process::ACTIVE_PARTITIONS
                    ),
                    attempts: 1,
                    arrival_ms,
                    ended_ms: now,
                    data,
                    lambda_arn: None,
                    seq,
                });
            }
            continue;
        }
        flow.hold(&o.seqs);
        // Behind a Lambda processor a partition's interval starts when
        // its first transformed record arrives; else at the record's
        // arrival in the delivery stream.
        let opened_ms = if lambda { now } else { o.first_arrival_ms };
        let part = flow.parts.entry(o.keys.clone()).or_insert_with(|| Part {
            batch: Batch {
                keys: o.keys.clone(),
                ..Batch::default()
            },
            opened_ms,
        });
        for ((data, arrival_ms), seq) in o.records.into_iter().zip(o.arrivals).zip(o.seqs) {
            part.batch.push_from(data, arrival_ms, seq);
        }
    }
    let _ = DELIVERING.try_with(|cell| cell.stats.partition_limit(!over.is_empty()));
    if let Some(f) = front {
        let refs: Vec<&Failure> = over.iter().collect();
        if let Some(e) = process::error_object(&f.layout, process::ACTIVE_PARTITION_EXCEEDED, &refs)
        {
            tracing::warn!(
                records = refs.len(),
                limit = process::ACTIVE_PARTITIONS,
                "records over the active partition limit go to the error output"
            );
            flow.hold(&e.seqs);
            flow.jobs.push_back(Job::Errors(e));
        }
    }
    flow.release(&batch.seqs);
}

/// Reads up to `want` bytes from the stream's Kinesis source into
/// `stage` without waiting, opening the reader first if needed; records
/// get positions from `next_seq` on. `idle`: nothing read is still owed.
#[allow(clippy::too_many_arguments)]
async fn read_kinesis(
    svc: &Service,
    s: &DeliveryStream,
    cell: &Cell,
    reader: &mut Option<StreamReader>,
    stage: &mut Batch,
    next_seq: &mut u64,
    want: usize,
    idle: bool,
) -> Result<usize, String> {
    let Source::Kinesis {
        stream_arn,
        start_ms,
        ..
    } = &s.source
    else {
        return Ok(0);
    };
    let kinesis = svc
        .kinesis
        .as_ref()
        .ok_or_else(|| "Kinesis Data Streams is not available to Firehose.".to_string())?;
    if reader.is_none() {
        let arn = riffle_core::names::parse_stream_arn(stream_arn)
            .ok_or_else(|| format!("Invalid KinesisStreamArn {stream_arn}."))?;
        let start = match cell.kinesis_checkpoint() {
            Some(cp) => Start::Checkpoint(cp),
            None => Start::AtTimestamp(*start_ms),
        };
        let r = kinesis
            .stream_reader(&arn.region, &arn.name, start)
            .map_err(|e| {
                format!(
                    "Kinesis.SourceUnavailable: reading source stream {}: {}",
                    arn.name,
                    e.message().unwrap_or_default()
                )
            })?;
        *reader = Some(r);
    }
    let r = reader.as_mut().expect("opened above");
    let max = KINESIS_READ.min(want.div_ceil(1024).max(1));
    match r.next(max, Duration::ZERO).await {
        Ok(records) => {
            let n = records.len();
            let bytes: usize = records.iter().map(|r| r.data.len()).sum();
            cell.stats.incoming(n as u64, bytes as u64);
            for rec in records {
                stage.push_from(rec.data, rec.arrival_ms, *next_seq);
                *next_seq += 1;
                stage.kinesis.push(Arc::new(KinesisRecord {
                    shard_id: rec.shard_id,
                    partition_key: rec.partition_key,
                    sequence_number: rec.sequence_number,
                }));
            }
            Ok(n)
        }
        Err(e) => {
            // Reopen from the last persisted checkpoint next time when
            // nothing read is still owed; else what is held is delivered
            // first only if the reader comes back.
            if idle {
                *reader = None;
            }
            Err(format!(
                "Kinesis.SourceUnavailable: {}",
                e.message().unwrap_or_default()
            ))
        }
    }
}

/// A checkpoint carried in the stream's row for Kinesis sources.
pub type KinesisCheckpoint = Checkpoint;
