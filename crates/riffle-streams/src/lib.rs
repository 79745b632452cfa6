//! Kinesis Data Streams.
//!
//! - [`Service`] holds every stream of the account, keyed by region and name,
//!   and the [`riffle_log::LogEngine`] their records live in.
//! - [`Service::call`] runs one operation: it validates the decoded body
//!   against the generated [`model`] (AWS's serialization and validation
//!   errors), converts it into the operation's typed input and runs the
//!   handler in [`ops`]; the handler's typed output becomes a document again.
//! - [`Service::subscribe`] starts a SubscribeToShard event stream.
//! - [`state`] is the in-memory picture of streams, shards and consumers.
//! - [`error::KinesisError`] maps every failure to AWS's `__type`.
//!
//! Writes take the state lock only to route records and reserve log offsets;
//! durability is awaited outside it, so concurrent writers group-commit.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use riffle_core::iterator::IteratorCodec;
use riffle_core::{limits, names, Clock};
use riffle_log::LogEngine;
use riffle_wire::shape::{self, FromValue};
use riffle_wire::Value;

pub mod error;
pub mod fast;
pub mod meta;
#[rustfmt::skip]
pub mod model;
pub mod ops;
pub mod state;
pub mod subscribe;

pub use error::KinesisError;
use error::Result;
use state::{ConsumerStatus, Msg, Status, Stream};

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

pub struct State {
    pub streams: BTreeMap<StreamKey, Stream>,
    pub billing_commitment: Option<model::MinimumThroughputBillingCommitmentOutput>,
}

impl State {
    /// Open shards across a region's streams, for the account shard limit.
    pub fn open_shards_in(&self, region: &str) -> usize {
        self.streams
            .values()
            .filter(|s| s.region == region)
            .map(Stream::open_shard_count)
            .sum()
    }
}

/// The Data Streams service.
pub struct Service {
    pub cfg: Config,
    pub clock: Arc<dyn Clock>,
    pub engine: Arc<dyn LogEngine>,
    pub tokens: IteratorCodec,
    state: Mutex<State>,
    next_id: AtomicU64,
    meta: Box<dyn meta::MetaStore>,
    pub(crate) throttle: ops::throttle::Throttle,
    pub(crate) subscriptions: subscribe::Subscriptions,
    /// Set when the server stops: subscriptions end instead of holding it up.
    pub(crate) shutdown: tokio::sync::watch::Sender<bool>,
}

/// Operations that never change metadata.
const READ_ONLY: &[&str] = &[
    "PutRecord",
    "PutRecords",
    "GetRecords",
    "GetShardIterator",
    "DescribeStream",
    "DescribeStreamSummary",
    "DescribeStreamConsumer",
    "DescribeLimits",
    "DescribeAccountSettings",
    "ListStreams",
    "ListShards",
    "ListStreamConsumers",
    "ListTagsForStream",
    "ListTagsForResource",
    "GetResourcePolicy",
];

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
        Arc::new(Self::build(
            cfg,
            clock,
            engine,
            secret,
            Box::new(meta::NoMeta),
            BTreeMap::new(),
        ))
    }

    fn build(
        cfg: Config,
        clock: Arc<dyn Clock>,
        engine: Arc<dyn LogEngine>,
        secret: [u8; 32],
        meta: Box<dyn meta::MetaStore>,
        streams: BTreeMap<StreamKey, Stream>,
    ) -> Service {
        let last_id = streams.values().map(|s| s.id).max().unwrap_or(0);
        Service {
            cfg,
            clock,
            engine,
            tokens: IteratorCodec::new(secret),
            state: Mutex::new(State {
                streams,
                billing_commitment: None,
            }),
            next_id: AtomicU64::new(last_id + 1),
            meta,
            throttle: ops::throttle::Throttle::default(),
            subscriptions: subscribe::Subscriptions::default(),
            shutdown: tokio::sync::watch::channel(false).0,
        }
    }

    /// A service whose metadata lives in `meta`: stored streams are loaded
    /// and their logs opened; the iterator secret is kept there too, so
    /// iterators survive restarts.
    pub fn open(
        cfg: Config,
        clock: Arc<dyn Clock>,
        engine: Arc<dyn LogEngine>,
        meta: Box<dyn meta::MetaStore>,
    ) -> std::result::Result<Arc<Self>, String> {
        let secret = match meta.get_server("iterator-secret")? {
            Some(b) if b.len() == 32 => {
                let mut k = [0u8; 32];
                k.copy_from_slice(&b);
                k
            }
            _ => {
                let k: [u8; 32] = rand::random();
                meta.put_server("iterator-secret", &k)?;
                k
            }
        };
        let mut streams = BTreeMap::new();
        for row in meta.load()? {
            let stored = meta::decode_stream(&row).ok_or("a stored stream could not be read")?;
            let log = engine.open(stored.id).map_err(|e| e.to_string())?;
            let s = stored.with_log(log);
            streams.insert((s.region.clone(), s.name.clone()), s);
        }
        let billing = meta
            .get_server("account-settings")?
            .and_then(|b| riffle_wire::json::decode(&b).ok())
            .and_then(|v| {
                shape::validate(&model::MINIMUM_THROUGHPUT_BILLING_COMMITMENT_OUTPUT, v).ok()
            })
            .map(|m| model::MinimumThroughputBillingCommitmentOutput::from_value(Value::Map(m)));
        let keys: Vec<StreamKey> = streams.keys().cloned().collect();
        let svc = Arc::new(Self::build(cfg, clock, engine, secret, meta, streams));
        svc.lock().billing_commitment = billing;
        for key in &keys {
            svc.apply_durability(key);
        }
        Ok(svc)
    }

    /// Writes the metadata of streams that changed, forgets removed ones, and
    /// keeps the account settings.
    pub fn persist(&self) -> Result<()> {
        let g = self.lock();
        if let Some(b) = &g.billing_commitment {
            let bytes =
                riffle_wire::json::encode(&riffle_wire::shape::IntoValue::into_value(b.clone()));
            if self
                .meta
                .get_server("account-settings")
                .map_err(KinesisError::Internal)?
                .as_deref()
                != Some(&bytes[..])
            {
                self.meta
                    .put_server("account-settings", &bytes)
                    .map_err(KinesisError::Internal)?;
            }
        }
        let put: Vec<(String, Vec<u8>)> = g
            .streams
            .values()
            .map(|s| (meta::row_key(&s.region, &s.name), meta::encode_stream(s)))
            .collect();
        let live: std::collections::HashSet<&String> = put.iter().map(|(k, _)| k).collect();
        let delete: Vec<String> = self
            .meta
            .stored_keys()
            .into_iter()
            .filter(|k| !live.contains(k))
            .collect();
        self.meta
            .apply(&put, &delete)
            .map_err(KinesisError::Internal)
    }

    /// The stream a request names, by StreamName/StreamARN or a resource or
    /// consumer ARN.
    fn named_stream(&self, ctx: &Ctx, input: &riffle_wire::Map) -> Option<StreamKey> {
        let text = |k: &str| match input.get(k) {
            Some(Value::Str(s)) => Some(s.as_str()),
            _ => None,
        };
        if let Some(arn) = text("ConsumerARN").or(text("ResourceARN")) {
            if let Some(c) = names::parse_consumer_arn(arn) {
                return Some((c.stream.region, c.stream.name));
            }
            return names::parse_stream_arn(arn).map(|a| (a.region, a.name));
        }
        self.key(ctx, text("StreamName"), text("StreamARN")).ok()
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
        let g = self.lock();
        (
            g.streams.len(),
            g.streams.values().map(Stream::open_shard_count).sum(),
        )
    }

    /// Applies a stream's `riffle:durability` tag (or the server default) to its log.
    pub fn apply_durability(&self, key: &StreamKey) {
        if let Some(s) = self.lock().streams.get(key) {
            let mode = s
                .tags
                .get(DURABILITY_TAG)
                .and_then(|v| riffle_log::Durability::parse(v))
                .unwrap_or(self.cfg.durability);
            s.log.set_durability(mode);
        }
    }

    /// Writes (or deletes) the metadata of one stream.
    pub fn persist_stream(&self, key: &StreamKey) -> Result<()> {
        let g = self.lock();
        self.persist_locked(&g, key)
    }

    /// Writes (or deletes) one stream's metadata while the caller holds the
    /// state lock, so metadata writes happen in the order of the changes.
    pub(crate) fn persist_locked(&self, g: &State, key: &StreamKey) -> Result<()> {
        let row = meta::row_key(&key.0, &key.1);
        let r = match g.streams.get(key).map(meta::encode_stream) {
            Some(bytes) => self.meta.apply(&[(row, bytes)], &[]),
            None => self.meta.apply(&[], &[row]),
        };
        r.map_err(KinesisError::Internal)
    }

    /// Applies retention to every stream's log and persists status changes;
    /// the server runs this periodically.
    pub fn maintain(&self) {
        let now = self.now_ms();
        let logs: Vec<_> = self
            .lock()
            .streams
            .values()
            .map(|s| (s.log.clone(), now - s.retention_ms()))
            .collect();
        for (log, cutoff) in logs {
            log.trim(cutoff);
        }
        if let Err(e) = self.persist() {
            tracing::error!(error = %e, "persisting metadata failed");
        }
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

    /// Locks the state and completes every status transition that is due.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.now_ms();
        let mut gone = Vec::new();
        for (key, s) in g.streams.iter_mut() {
            match s.status {
                Status::Creating { until_ms } | Status::Updating { until_ms }
                    if now >= until_ms =>
                {
                    s.status = Status::Active
                }
                Status::Deleting { until_ms } if now >= until_ms => gone.push(key.clone()),
                _ => {}
            }
            s.consumers.retain_mut(|c| match c.status {
                ConsumerStatus::Creating { until_ms } if now >= until_ms => {
                    c.status = ConsumerStatus::Active;
                    true
                }
                ConsumerStatus::Deleting { until_ms } => now < until_ms,
                _ => true,
            });
        }
        for key in gone {
            if let Some(s) = g.streams.remove(&key) {
                let _ = self.engine.remove(s.id);
            }
        }
        g
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

    /// Runs `f` on the named stream under the state lock.
    pub(crate) fn with_stream<T>(
        &self,
        ctx: &Ctx,
        name: Option<&str>,
        arn: Option<&str>,
        f: impl FnOnce(&mut Stream) -> Result<T>,
    ) -> Result<T> {
        let key = self.key(ctx, name, arn)?;
        let mut g = self.lock();
        let s = g
            .streams
            .get_mut(&key)
            .ok_or_else(|| Msg::stream_not_found(&key.1, &self.cfg.account))?;
        f(s)
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
        if !matches!(body, Value::Map(_)) {
            return Err(KinesisError::Serialization(None));
        }
        let input = model::GetRecordsInput::from_value(Value::Map(shape::validate(
            &model::GET_RECORDS_INPUT,
            body,
        )?));
        Ok(fast::get_records_output_json(
            ops::records::get_records(self, ctx, input).await?,
        ))
    }

    /// Runs one operation on a decoded request body.
    pub async fn call(&self, ctx: &Ctx, operation: &str, body: Value) -> Result<Value> {
        let shape = model::OPERATIONS
            .iter()
            .find(|(name, _)| *name == operation)
            .map(|(_, s)| *s)
            .ok_or(KinesisError::UnknownOperation)?;
        if !matches!(body, Value::Map(_)) {
            return Err(KinesisError::Serialization(None));
        }
        let input = shape::validate(shape, body)?;
        let touched = (!READ_ONLY.contains(&operation)).then(|| self.named_stream(ctx, &input));
        let out = ops::dispatch(self, ctx, operation, Value::Map(input)).await;
        match touched {
            Some(Some(key)) => {
                self.apply_durability(&key);
                self.persist_stream(&key)?
            }
            Some(None) => self.persist()?,
            None => {}
        }
        out
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
            .lock()
            .streams
            .contains_key(&(region.to_owned(), name.to_owned()))
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
        if let Some(s) = self
            .lock()
            .streams
            .get_mut(&(region.to_owned(), name.to_owned()))
        {
            s.status = Status::Active;
        }
        self.persist()?;
        Ok(true)
    }
}
