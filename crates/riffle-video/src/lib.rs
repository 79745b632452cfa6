//! Amazon Kinesis Video Streams (`kinesisvideo` 2017-09-30): the control
//! plane of streams and signaling channels.
//!
//! - [`Service`] holds every stream and every signaling channel of the
//!   account, keyed by region and name, in two
//!   [`riffle_meta::cells::Registry`] tables (`streams`, `channels`) on the
//!   `video` namespace of the shared metadata store.
//! - [`Service::call`] runs one operation: it validates the decoded body
//!   against the generated [`model`] (AWS's validation errors, reported as
//!   `InvalidArgumentException`), converts it into the operation's typed
//!   input and runs the handler in [`ops`].
//! - [`channels`]: signaling channels and their media storage
//!   configuration; [`configs`]: a stream's image generation,
//!   notification, edge and storage configurations.
//! - [`state`]: a stream and a channel (also their stored rows) and their
//!   status machines.
//! - [`error::VideoError`] maps every failure to AWS's error type and
//!   HTTP status.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use riffle_core::Clock;
use riffle_log::LogEngine;
use riffle_meta::cells::Registry;
use riffle_wire::shape::{self, FromValue};
use riffle_wire::Value;

pub mod archive;
pub mod channels;
pub mod configs;
pub mod error;
pub mod ingest;
pub mod media;
#[rustfmt::skip]
pub mod model;
#[rustfmt::skip]
pub mod media_model;
#[rustfmt::skip]
pub mod archive_model;
pub mod mkv;
pub mod mp4;
pub mod ops;
pub mod playback;
pub mod state;
pub mod store;

use error::Result;
pub use error::VideoError;

/// The namespace Kinesis Video claims in the shared metadata store.
pub const NAMESPACE: &str = "video";

/// How long a stream that retains no data (DataRetentionInHours 0) keeps
/// fragments, for live GetMedia readers.
pub const RETAIN_FOR_LIVE_MS: i64 = 60_000;

/// Every request path the service answers (the three models' operations
/// and PutMedia, which no SDK model lists), for the router.
pub static PATHS: &[&str] = &[
    // kinesisvideo
    "createSignalingChannel",
    "createStream",
    "deleteEdgeConfiguration",
    "deleteSignalingChannel",
    "deleteStream",
    "describeEdgeConfiguration",
    "describeImageGenerationConfiguration",
    "describeMappedResourceConfiguration",
    "describeMediaStorageConfiguration",
    "describeNotificationConfiguration",
    "describeSignalingChannel",
    "describeStream",
    "describeStreamStorageConfiguration",
    "getDataEndpoint",
    "getSignalingChannelEndpoint",
    "listEdgeAgentConfigurations",
    "listSignalingChannels",
    "listStreams",
    "ListTagsForResource",
    "listTagsForStream",
    "startEdgeConfigurationUpdate",
    "TagResource",
    "tagStream",
    "UntagResource",
    "untagStream",
    "updateDataRetention",
    "updateImageGenerationConfiguration",
    "updateMediaStorageConfiguration",
    "updateNotificationConfiguration",
    "updateSignalingChannel",
    "updateStream",
    "updateStreamStorageConfiguration",
    // kinesis-video-media
    "getMedia",
    "putMedia",
    // kinesis-video-archived-media
    "getClip",
    "getDASHStreamingSessionURL",
    "getHLSStreamingSessionURL",
    "getImages",
    "getMediaForFragmentList",
    "listFragments",
    // Resources under HLS and DASH session URLs (GET, unsigned).
    "hls/v1/getHLSMasterPlaylist.m3u8",
    "hls/v1/getHLSMediaPlaylist.m3u8",
    "hls/v1/getMP4InitFragment.mp4",
    "hls/v1/getMP4MediaFragment.mp4",
    "hls/v1/getTSFragment.ts",
    "dash/v1/getDASHManifest.mpd",
    "dash/v1/getMP4InitFragment.mp4",
    "dash/v1/getMP4MediaFragment.mp4",
];

/// Whether a path is a resource under a streaming session's URL.
pub fn is_session_resource(path: &str) -> bool {
    path.starts_with("hls/v1/") || path.starts_with("dash/v1/")
}

/// The operation a request path names.
pub fn operation_of_path(path: &str) -> Option<&'static str> {
    if path == "putMedia" {
        return Some("PutMedia");
    }
    if is_session_resource(path) {
        return PATHS
            .iter()
            .find(|p| **p == path)
            .and_then(|p| p.rsplit('/').next());
    }
    [
        model::PATH_OPERATIONS,
        media_model::PATH_OPERATIONS,
        archive_model::PATH_OPERATIONS,
    ]
    .into_iter()
    .flatten()
    .find(|(p, _)| *p == path)
    .map(|(_, op)| *op)
}

/// Why the service could not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Meta(#[from] riffle_meta::MetaError),
    #[error(transparent)]
    Log(#[from] riffle_log::LogError),
    #[error("{0}")]
    Media(#[from] VideoError),
}

/// Server-wide settings of the service.
#[derive(Debug, Clone)]
pub struct Config {
    /// The account id in ARNs.
    pub account: String,
    /// How long CREATING, UPDATING and DELETING last.
    pub status_delay_ms: i64,
    /// Streams allowed per region.
    pub stream_limit: usize,
    /// Signaling channels allowed per region.
    pub channel_limit: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            account: "000000000000".into(),
            status_delay_ms: 500,
            stream_limit: 10_000,
            channel_limit: 10_000,
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
    /// Where fragments are stored: one log per stream incarnation.
    engine: Arc<dyn LogEngine>,
    /// The data plane's state of each stream incarnation, by log id.
    media: Mutex<HashMap<u64, Arc<media::Media>>>,
    pub(crate) channels: Registry<state::Channel, ()>,
    /// Serialises media storage changes, which check every channel's
    /// stream.
    pub(crate) mapping: tokio::sync::Mutex<()>,
    /// HLS and DASH streaming sessions.
    pub(crate) sessions: archive::Sessions,
}

/// A stream's registry key.
pub(crate) fn key(region: &str, name: &str) -> String {
    format!("{region}\0{name}")
}

impl Service {
    /// A service whose streams and channels live in the namespace `ns`
    /// of the shared store (loaded now) and whose fragments live in
    /// `engine`'s logs (logs no stream names are removed).
    pub fn open(
        cfg: Config,
        clock: Arc<dyn Clock>,
        ns: riffle_meta::Namespace,
        engine: Arc<dyn LogEngine>,
    ) -> std::result::Result<Arc<Service>, OpenError> {
        let now = clock.clone();
        let streams = Registry::open(
            ns.clone(),
            "streams",
            move || now.now_ms(),
            |_, _| Ok::<_, riffle_meta::MetaError>(()),
        )?;
        let now = clock.clone();
        let channels = Registry::open(
            ns,
            "channels",
            move || now.now_ms(),
            |_, _| Ok::<_, riffle_meta::MetaError>(()),
        )?;
        let svc = Service {
            cfg,
            clock,
            streams,
            channels,
            mapping: tokio::sync::Mutex::new(()),
            engine,
            media: Mutex::new(HashMap::new()),
            sessions: archive::Sessions::default(),
        };
        let named: std::collections::HashSet<u64> = svc
            .streams
            .all()
            .iter()
            .map(|(_, _, s)| store::log_id_of(s))
            .collect();
        for id in svc.engine.stored_ids()? {
            if !named.contains(&id) {
                tracing::info!(log = id, "removing a fragment log no video stream names");
                svc.engine.remove(id)?;
            }
        }
        for (_, _, s) in svc.streams.all() {
            svc.media(&s)?;
        }
        Ok(Arc::new(svc))
    }

    /// A service that keeps nothing (`--storage memory`).
    pub fn new(cfg: Config, clock: Arc<dyn Clock>) -> Arc<Service> {
        let ns = riffle_meta::Store::none()
            .namespace(NAMESPACE)
            .expect("a fresh store has every namespace free");
        Service::open(cfg, clock, ns, riffle_log::memory::MemoryEngine::new())
            .expect("an empty store opens")
    }

    /// Drops a gone stream incarnation's fragments and data-plane state.
    pub(crate) fn forget_media(&self, s: &state::Stream) {
        let id = store::log_id_of(s);
        self.media
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        if let Err(e) = self.engine.remove(id) {
            tracing::error!(error = %e, stream = %s.name, "removing a stream's fragments failed");
        }
    }

    /// The data plane's state of a stream incarnation, opened on first use.
    pub(crate) fn media(&self, row: &state::Stream) -> Result<Arc<media::Media>> {
        let id = store::log_id_of(row);
        let mut map = self.media.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = map.get(&id) {
            return Ok(m.clone());
        }
        let log = self
            .engine
            .open(id)
            .map_err(|e| VideoError::Internal(e.to_string()))?;
        let store = store::Store::open(id, log).map_err(|e| VideoError::Internal(e.to_string()))?;
        let m = Arc::new(media::Media::new(store));
        map.insert(id, m.clone());
        Ok(m)
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

    /// Persists due transitions, sweeps deleted streams (and their
    /// fragments) and channels, and drops fragments past retention; the
    /// server's maintenance task runs this every second.
    pub async fn maintain(&self) {
        match self.streams.settle_all().await {
            Ok(swept) => {
                for s in swept {
                    self.forget_media(&s);
                }
            }
            Err(e) => tracing::error!(error = %e, "video maintenance failed"),
        }
        let now = self.now_ms();
        for (_, _, s) in self.streams.all() {
            let Ok(m) = self.media(&s) else { continue };
            let keep_ms = if s.retention_hours > 0 {
                s.retention_hours * 3_600_000
            } else {
                RETAIN_FOR_LIVE_MS
            };
            m.store.trim(now - keep_ms);
        }
        if let Err(e) = self.channels.settle_all().await {
            tracing::error!(error = %e, "video maintenance failed");
        }
    }

    /// Runs one operation on a decoded request body.
    pub async fn call(&self, ctx: &Ctx, operation: &str, body: Value) -> Result<Value> {
        if let Some(models) = [archive_model::OPERATIONS]
            .into_iter()
            .find(|m| m.iter().any(|(n, _)| *n == operation))
        {
            let body = Value::Map(shape::operation_input(models, operation, body)?);
            return match operation {
                "ListFragments" => media::list_fragments(self, ctx, input(body))
                    .await
                    .map(shape::IntoValue::into_value),
                "GetHLSStreamingSessionURL" => archive::hls_session(self, ctx, input(body))
                    .await
                    .map(shape::IntoValue::into_value),
                "GetDASHStreamingSessionURL" => archive::dash_session(self, ctx, input(body))
                    .await
                    .map(shape::IntoValue::into_value),
                "GetImages" => archive::images(self, ctx, input(body))
                    .await
                    .map(shape::IntoValue::into_value),
                other => Err(VideoError::UnsupportedOperation(other.to_owned())),
            };
        }
        let input = shape::operation_input(model::OPERATIONS, operation, body)?;
        ops::dispatch(self, ctx, operation, Value::Map(input)).await
    }
}

/// Converts a validated body into an operation's input type.
pub(crate) fn input<T: FromValue>(v: Value) -> T {
    T::from_value(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_router_knows_every_path_of_the_three_models() {
        let mut want: Vec<&str> = [
            model::PATHS,
            media_model::PATHS,
            archive_model::PATHS,
            &["putMedia"],
        ]
        .concat();
        want.extend(PATHS.iter().copied().filter(|p| is_session_resource(p)));
        want.sort_unstable();
        let mut have = PATHS.to_vec();
        have.sort_unstable();
        assert_eq!(have, want);
        assert!(PATHS.iter().all(|p| operation_of_path(p).is_some()));
    }
}
