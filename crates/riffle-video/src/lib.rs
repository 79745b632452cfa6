//! Amazon Kinesis Video Streams (`kinesisvideo` 2017-09-30): the control
//! plane of streams.
//!
//! - [`Service`] holds every stream of the account, keyed by region and
//!   name, in a [`riffle_meta::cells::Registry`] on the `video` namespace
//!   of the shared metadata store.
//! - [`Service::call`] runs one operation: it validates the decoded body
//!   against the generated [`model`] (AWS's validation errors, reported as
//!   `InvalidArgumentException`), converts it into the operation's typed
//!   input and runs the handler in [`ops`].
//! - [`state`]: a stream (also its stored row) and its status machine.
//! - [`error::VideoError`] maps every failure to AWS's error type and
//!   HTTP status.

use std::sync::Arc;

use riffle_core::Clock;
use riffle_meta::cells::Registry;
use riffle_wire::shape::{self, FromValue};
use riffle_wire::Value;

pub mod error;
#[rustfmt::skip]
pub mod model;
#[rustfmt::skip]
pub mod media_model;
#[rustfmt::skip]
pub mod archive_model;
pub mod mkv;
pub mod ops;
pub mod playback;
pub mod state;

use error::Result;
pub use error::VideoError;

/// The namespace Kinesis Video claims in the shared metadata store.
pub const NAMESPACE: &str = "video";

/// Server-wide settings of the service.
#[derive(Debug, Clone)]
pub struct Config {
    /// The account id in ARNs.
    pub account: String,
    /// How long CREATING, UPDATING and DELETING last.
    pub status_delay_ms: i64,
    /// Streams allowed per region.
    pub stream_limit: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            account: "000000000000".into(),
            status_delay_ms: 500,
            stream_limit: 10_000,
        }
    }
}

/// Who is calling and where: the region comes from the request's
/// credential scope, the endpoint is the base URL the request came to
/// (what GetDataEndpoint answers).
#[derive(Debug, Clone)]
pub struct Ctx {
    pub region: String,
    pub endpoint: String,
}

/// The Kinesis Video Streams service.
pub struct Service {
    pub cfg: Config,
    pub clock: Arc<dyn Clock>,
    pub(crate) streams: Registry<state::Stream, ()>,
}

/// A stream's registry key.
pub(crate) fn key(region: &str, name: &str) -> String {
    format!("{region}\0{name}")
}

impl Service {
    /// A service whose streams live in the namespace `ns` of the shared
    /// store (loaded now).
    pub fn open(
        cfg: Config,
        clock: Arc<dyn Clock>,
        ns: riffle_meta::Namespace,
    ) -> std::result::Result<Arc<Service>, riffle_meta::MetaError> {
        let now = clock.clone();
        let streams = Registry::open(
            ns,
            "streams",
            move || now.now_ms(),
            |_, _| Ok::<_, riffle_meta::MetaError>(()),
        )?;
        Ok(Arc::new(Service {
            cfg,
            clock,
            streams,
        }))
    }

    /// A service that keeps nothing (`--storage memory`).
    pub fn new(cfg: Config, clock: Arc<dyn Clock>) -> Arc<Service> {
        let ns = riffle_meta::Store::none()
            .namespace(NAMESPACE)
            .expect("a fresh store has every namespace free");
        Service::open(cfg, clock, ns).expect("an empty store opens")
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn account(&self) -> &str {
        &self.cfg.account
    }

    /// Streams, for metrics.
    pub fn count(&self) -> usize {
        self.streams.all().len()
    }

    /// Persists due transitions and sweeps deleted streams; the server's
    /// maintenance task runs this every second.
    pub async fn maintain(&self) {
        if let Err(e) = self.streams.settle_all().await {
            tracing::error!(error = %e, "video maintenance failed");
        }
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
