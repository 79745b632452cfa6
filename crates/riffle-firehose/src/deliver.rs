//! Delivery: a task per delivery stream reads its source from a persisted
//! checkpoint, buffers records in memory by the destination's hints, and
//! hands one object's worth at a time to a [`Destination`].
//!
//! - The source is the stream's durable [`Buffer`] (DirectPut) or, for
//!   `KinesisStreamAsSource`, the Riffle stream read in process with a
//!   [`riffle_streams::access::StreamReader`] from `DeliveryStartTimestamp`
//!   or its checkpoint.
//! - Buffering: an object is written when the records held reach the
//!   size hint or when the oldest of them has waited the interval hint
//!   (0 = as soon as records are there). All held records go into one
//!   object.
//! - At-least-once: the checkpoint (buffer offset, or per-shard sequence
//!   numbers) moves past records only after the object holding them was
//!   stored, and is persisted in the stream's row right then. A crash
//!   between storing an object and persisting the checkpoint delivers
//!   those records again in a new object after the restart: that is the
//!   only way a record is delivered twice.
//! - Failures are retried with exponential backoff (1 s doubling to 60 s)
//!   and shown in DescribeDeliveryStream's FailureDescription; a batch
//!   whose oldest record is older than 24 hours when an attempt fails is
//!   dropped, as AWS drops data it could not deliver within 24 hours.
//! - Time comes from the service's [`riffle_core::Clock`]: the hints and
//!   the backoff are measured on it, and the task re-checks it at least
//!   every `Config::delivery_tick_ms`, so tests move a manual clock
//!   instead of sleeping.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use riffle_log::ReadLimits;
use riffle_streams::access::{Checkpoint, Start, StreamReader};

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
    /// Stores one batch; `Ok` only once it is durable at the destination.
    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<(), DeliveryError>>;
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
                settings,
                stream: s.name.clone(),
                stream_arn: s.arn(ctx.account),
                version: s.version,
                sink: sink.cloned(),
                clock: ctx.clock,
                client: crate::client::Client::shared(),
                sent: Default::default(),
            })),
            Err(reason) => Plan::NotConfigured(reason),
        };
    }
    if !matches!(d.kind, Kind::ExtendedS3 | Kind::Redshift) {
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
            Ok(settings) => Plan::Deliver(Arc::new(crate::redshift::RedshiftDestination::new(
                settings,
                s.name.clone(),
                s.version,
                sink.clone(),
                ctx.clock,
                ctx.stats,
            ))),
            Err(reason) => Plan::NotConfigured(reason),
        };
    }
    match crate::s3::Settings::from_description(&d.description) {
        Ok(Ok(settings)) => {
            let processing = match crate::process::runtime(&settings.pipeline, s, &ctx) {
                Ok(p) => p,
                Err(reason) => return Plan::NotConfigured(reason),
            };
            match crate::backup::wrap(
                Arc::new(crate::s3::S3Destination {
                    settings,
                    stream: s.name.clone(),
                    version: s.version,
                    sink: sink.clone(),
                    processing,
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
    },
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
            true => Input::Kinesis { reader: None },
            false => Input::Buffer {
                pos: self.cell.delivered_offset().max(1),
            },
        };
        let mut held = Batch::default();
        let mut failing: Option<Failing> = None;
        let mut cached: Option<(u64, Arc<dyn Destination>)> = None;
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
            let due = !held.records.is_empty()
                && (held.bytes >= hints.size_bytes
                    || now >= held.first_arrival_ms.saturating_add(hints.interval_ms));
            if !due {
                // Read more, without waiting.
                let want = hints.size_bytes.saturating_sub(held.bytes).max(1);
                let got = match &mut input {
                    Input::Buffer { pos } => {
                        match self.cell.buffer.read(
                            *pos,
                            ReadLimits {
                                max_records: 10_000,
                                max_bytes: want,
                            },
                        ) {
                            Ok(b) => {
                                let n = b.records.len();
                                for r in b.records {
                                    held.push(r.data, r.arrival_ms);
                                }
                                *pos = b.next_position.max(*pos);
                                Ok(n)
                            }
                            Err(e) => Err(format!("reading the delivery buffer failed: {e}")),
                        }
                    }
                    Input::Kinesis { reader } => {
                        read_kinesis(&svc, &s, &self.cell, reader, &mut held, want).await
                    }
                };
                self.cell
                    .stats
                    .holding((!held.records.is_empty()).then_some(held.first_arrival_ms));
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
                // Nothing more to read: wait for records, the interval, or
                // a configuration change.
                let wait = if held.records.is_empty() {
                    tick.max(Duration::from_millis(100))
                        .min(Duration::from_secs(1))
                } else {
                    let left = held.first_arrival_ms + hints.interval_ms - now;
                    Duration::from_millis(left.max(1) as u64).min(tick)
                };
                drop(svc);
                let wake = matches!(input, Input::Buffer { .. }).then_some(&mut watch);
                if !self.pause(wait, wake).await {
                    return;
                }
                continue;
            }
            if let Some(f) = &failing {
                if now < f.next_try_ms {
                    let left = Duration::from_millis((f.next_try_ms - now) as u64);
                    drop(svc);
                    if !self.pause(left.min(tick), None).await {
                        return;
                    }
                    continue;
                }
            }
            match DELIVERING
                .scope(self.cell.clone(), dest.deliver(&held))
                .await
            {
                Ok(()) => {
                    failing = None;
                    self.cell.set_failure(None);
                    if dest.name() == "s3" {
                        self.cell
                            .stats
                            .delivered_to_s3(held.records.len() as u64, held.bytes as u64);
                    }
                    self.cell.stats.holding(None);
                    self.delivered(&svc, &input, &held).await;
                    held = Batch::default();
                }
                Err(e) => {
                    let now = svc.now_ms();
                    let attempts = failing.as_ref().map_or(0, |f| f.attempts) + 1;
                    let expired = now - held.first_arrival_ms > RETENTION_MS;
                    let mut text = failure_text(&e, attempts);
                    if expired {
                        tracing::error!(
                            stream = %self.key.1,
                            records = held.records.len(),
                            code = %e.code,
                            "dropping records older than 24 hours that could not be delivered"
                        );
                        text.push_str(&format!(
                            "; {} records older than 24 hours were dropped",
                            held.records.len()
                        ));
                        self.cell.set_failure(Some(text));
                        self.delivered(&svc, &input, &held).await;
                        self.cell.stats.holding(None);
                        held = Batch::default();
                        failing = None;
                        continue;
                    }
                    tracing::warn!(stream = %self.key.1, code = %e.code, message = %e.message, attempts, "delivery failed; retrying");
                    self.cell.set_failure(Some(text));
                    let backoff = (BACKOFF_FIRST_MS << (attempts - 1).min(6)).min(BACKOFF_MAX_MS);
                    failing = Some(Failing {
                        attempts,
                        next_try_ms: now + backoff,
                    });
                }
            }
        }
    }

    /// Moves the checkpoint past `batch` and persists it; trims delivered
    /// records from the buffer.
    async fn delivered(&self, svc: &Service, input: &Input, batch: &Batch) {
        match input {
            Input::Buffer { pos } => {
                self.cell.delivered(*pos);
                // Arrival times never decrease along the log: everything
                // that arrived before the last delivered record is
                // delivered too.
                self.cell.buffer.trim(batch.last_arrival_ms);
            }
            Input::Kinesis { reader } => {
                if let Some(r) = reader {
                    self.cell.set_kinesis_checkpoint(r.checkpoint());
                }
            }
        }
        if let Err(e) = svc.persist_progress(&self.key, &self.cell).await {
            // The cell stays dirty: maintenance persists it later.
            tracing::warn!(stream = %self.key.1, error = %e, "persisting the delivery checkpoint failed");
        }
    }
}

/// Reads up to `want` bytes from the stream's Kinesis source without
/// waiting, opening the reader first if needed.
async fn read_kinesis(
    svc: &Service,
    s: &DeliveryStream,
    cell: &Cell,
    reader: &mut Option<StreamReader>,
    held: &mut Batch,
    want: usize,
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
                held.push(rec.data, rec.arrival_ms);
                held.kinesis.push(Arc::new(KinesisRecord {
                    shard_id: rec.shard_id,
                    partition_key: rec.partition_key,
                    sequence_number: rec.sequence_number,
                }));
            }
            Ok(n)
        }
        Err(e) => {
            // Reopen from the last persisted checkpoint next time; what
            // is held is delivered first only if the reader comes back.
            if held.records.is_empty() {
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
