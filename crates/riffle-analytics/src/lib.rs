//! Amazon Kinesis Data Analytics for SQL applications (`kinesisanalytics`
//! 2015-08-14): the API control plane.
//!
//! - [`Service`] holds every application of the account, keyed by region
//!   and name, in a [`riffle_meta::cells::Registry`] on the `analytics`
//!   namespace of the shared metadata store.
//! - [`Service::call`] runs one operation: it validates the decoded body
//!   against the generated [`model`] (AWS's serialization and validation
//!   errors), converts it into the operation's typed input and runs the
//!   handler in [`ops`].
//! - [`state`]: an application (also its stored row) and its status
//!   machine: READY → STARTING → RUNNING → STOPPING → READY, DELETING.
//! - [`error::AnalyticsError`] maps every failure to AWS's `__type`.
//! - [`engine`]: the streaming SQL engine; [`run`]: the task that runs a
//!   RUNNING application on it; [`lambda`]: Lambda input preprocessing
//!   and Lambda outputs.
//! - [`inspect`]: what the console reads besides the API: code checked
//!   by the parser and planner, live rows of in-application streams.

use std::sync::Arc;

use riffle_core::Clock;
use riffle_meta::cells::Registry;
use riffle_wire::shape::{self, FromValue};
use riffle_wire::Value;

pub mod discover;
pub mod engine;
pub mod error;
pub mod inspect;
pub mod lambda;
#[rustfmt::skip]
pub mod model;
pub mod ops;
pub mod run;
pub mod sql;
pub mod state;

pub use error::AnalyticsError;
use error::Result;

/// The namespace Analytics claims in the shared metadata store.
pub const NAMESPACE: &str = "analytics";

/// Server-wide settings of the service.
#[derive(Debug, Clone)]
pub struct Config {
    /// The account id in ARNs and messages.
    pub account: String,
    /// How long STARTING, STOPPING and DELETING last.
    pub status_delay_ms: i64,
    /// Applications allowed per region (AWS's default quota is 50).
    pub application_limit: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            account: "000000000000".into(),
            status_delay_ms: 500,
            application_limit: 50,
        }
    }
}

/// Who is calling: the region comes from the request's credential scope.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub region: String,
}

/// Reads whole objects of the server's S3 (the embedded S3), in process.
pub trait ObjectSource: Send + Sync {
    /// The first `max_bytes` bytes of the object (all of a smaller one);
    /// `Ok(None)` when the bucket or the key does not exist.
    fn get<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        max_bytes: usize,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Option<bytes::Bytes>, String>> + Send + 'a>,
    >;
}

/// Puts records to Firehose delivery streams, in process.
pub trait DeliverySink: Send + Sync {
    /// PutRecordBatch of up to 500 records to the delivery stream `name`
    /// in `region`: the records to send again (those that failed), or why
    /// the whole call failed.
    fn put<'a>(
        &'a self,
        region: &'a str,
        name: &'a str,
        records: Vec<bytes::Bytes>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Vec<bytes::Bytes>, String>> + Send + 'a>,
    >;
}

/// A record read from a Firehose delivery stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapRecord {
    pub arrival_ms: i64,
    pub data: bytes::Bytes,
}

/// A boxed future of the in-process interfaces.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Reads one Firehose delivery stream's accepted records.
pub trait TapReader: Send {
    /// Up to `max` records, waiting up to `wait` for some.
    fn next(
        &mut self,
        max: usize,
        wait: std::time::Duration,
    ) -> BoxFuture<'_, Result<Vec<TapRecord>, String>>;
    /// The position to resume from (saved in checkpoints).
    fn position(&self) -> u64;
}

/// Opens readers of Firehose delivery streams, in process.
pub trait DeliveryTap: Send + Sync {
    /// A reader of the delivery stream `name` in `region` from `from` (a
    /// saved position) or from the next record put.
    fn open(
        &self,
        region: &str,
        name: &str,
        from: Option<u64>,
    ) -> Result<Box<dyn TapReader>, String>;
}

/// Invokes Lambda functions (the Invoke API, RequestResponse) for input
/// preprocessing and Lambda outputs.
pub trait LambdaInvoker: Send + Sync {
    /// Invokes `function_arn` with the event `payload`: the function's
    /// answer, or why the invocation failed (no answer, a function
    /// error, a status other than 200).
    fn invoke<'a>(
        &'a self,
        function_arn: &'a str,
        payload: Vec<u8>,
    ) -> BoxFuture<'a, Result<Vec<u8>, String>>;
}

/// What applications read and write besides their own state: Data
/// Streams in process, S3 objects (DiscoverInputSchema samples them,
/// reference data is loaded from them), Firehose (inputs and outputs)
/// and Lambda functions (preprocessing and outputs; `None` when the
/// server has no Lambda endpoint).
#[derive(Clone, Default)]
pub struct Sources {
    pub kinesis: Option<Arc<riffle_streams::Service>>,
    pub objects: Option<Arc<dyn ObjectSource>>,
    pub firehose: Option<Arc<dyn DeliverySink>>,
    pub firehose_input: Option<Arc<dyn DeliveryTap>>,
    pub lambda: Option<Arc<dyn LambdaInvoker>>,
}

/// The Kinesis Analytics service.
pub struct Service {
    pub cfg: Config,
    pub clock: Arc<dyn Clock>,
    pub(crate) apps: Registry<state::Application, ()>,
    pub(crate) sources: std::sync::OnceLock<Sources>,
    pub(crate) runners: run::Runners,
    pub(crate) watches: inspect::Watches,
    me: std::sync::Weak<Service>,
}

/// An application's registry key.
pub(crate) fn key(region: &str, name: &str) -> String {
    format!("{region}\0{name}")
}

impl Service {
    /// A service whose applications live in the namespace `ns` of the
    /// shared store (loaded now).
    pub fn open(
        cfg: Config,
        clock: Arc<dyn Clock>,
        ns: riffle_meta::Namespace,
    ) -> std::result::Result<Arc<Service>, riffle_meta::MetaError> {
        let now = clock.clone();
        let apps = Registry::open(
            ns,
            "applications",
            move || now.now_ms(),
            |_, _| Ok::<_, riffle_meta::MetaError>(()),
        )?;
        Ok(Arc::new_cyclic(|me| Service {
            cfg,
            clock,
            apps,
            sources: std::sync::OnceLock::new(),
            runners: run::Runners::default(),
            watches: inspect::Watches::default(),
            me: me.clone(),
        }))
    }

    /// A service that keeps nothing (`--storage memory`).
    pub fn new(cfg: Config, clock: Arc<dyn Clock>) -> Arc<Service> {
        let ns = riffle_meta::Store::none()
            .namespace(NAMESPACE)
            .expect("a fresh store has every namespace free");
        Service::open(cfg, clock, ns).expect("an empty store opens")
    }

    /// Connects the service to what applications read; once.
    pub fn connect(&self, sources: Sources) {
        let _ = self.sources.set(sources);
    }

    pub(crate) fn sources(&self) -> Sources {
        self.sources.get().cloned().unwrap_or_default()
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn account(&self) -> &str {
        &self.cfg.account
    }

    /// Applications, for metrics.
    pub fn count(&self) -> usize {
        self.apps.all().len()
    }

    /// Persists due transitions, sweeps deleted applications, and starts
    /// and stops application tasks; the server's maintenance task runs
    /// this every second.
    pub async fn maintain(self: &Arc<Self>) {
        if let Err(e) = self.apps.settle_all().await {
            tracing::error!(error = %e, "analytics maintenance failed");
        }
        self.supervise();
    }

    /// Runs one operation on a decoded request body.
    pub async fn call(&self, ctx: &Ctx, operation: &str, body: Value) -> Result<Value> {
        let input = shape::operation_input(model::OPERATIONS, operation, body)?;
        let out = ops::dispatch(self, ctx, operation, Value::Map(input)).await?;
        // A start, stop or change takes effect on the application's task
        // now rather than at the next maintenance pass.
        if !matches!(
            operation,
            "DescribeApplication"
                | "ListApplications"
                | "ListTagsForResource"
                | "DiscoverInputSchema"
        ) {
            if let Some(me) = self.me.upgrade() {
                me.supervise();
            }
        }
        Ok(out)
    }
}

/// Converts a validated body into an operation's input type.
pub(crate) fn input<T: FromValue>(v: Value) -> T {
    T::from_value(v)
}
