//! PutMedia: one producer's upload, read as it arrives, with its
//! acknowledgements streamed back on the same connection.
//!
//! - [`Service::open_put_media`] checks the request's headers and claims
//!   the stream (one producer at a time: a second connection gets
//!   `ConnectionLimitExceededException`), before the HTTP 200 is sent.
//! - [`Ingest::run`] reads the MKV upload with [`mkv::Demuxer`]; each
//!   Cluster is one fragment. Per fragment it sends `BUFFERING` when the
//!   cluster begins, `RECEIVED` once the whole cluster arrived and is
//!   valid, and `PERSISTED` once it is durable (streams that retain data);
//!   a refused fragment gets `ERROR` with AWS's ErrorId. `IDLE` goes out
//!   while no data arrives, and the upload ends after 30 s without data.
//! - Acks are JSON objects, one per line, each written on its own: keys
//!   `EventType`, `FragmentTimecode` (the cluster's Timecode as sent, a
//!   number), `FragmentNumber` (a string), `ErrorId` (a number) and
//!   `ErrorCode`, as the producer SDK parses them.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use riffle_log::Durable;
use tokio::sync::mpsc;

use crate::error::{Result, VideoError};
use crate::mkv::{self, Event, StreamHeader};
use crate::store::{NewFragment, Store};
use crate::{Ctx, Service};

/// The largest fragment (AWS: 50 MB).
pub const MAX_FRAGMENT_BYTES: u64 = 50 * 1024 * 1024;
/// The longest fragment (AWS: 20 s).
pub const MAX_FRAGMENT_MS: i64 = 20_000;
/// Tracks a stream may carry.
pub const MAX_TRACKS: usize = 3;
/// An upload without data for this long ends.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often `IDLE` is sent while no data arrives.
pub const IDLE_ACK_EVERY: Duration = Duration::from_secs(3);

/// Why a fragment or an upload was refused: AWS's ErrorId and ErrorCode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckError {
    StreamReadError = 4000,
    MaxFragmentSizeReached = 4001,
    MaxFragmentDurationReached = 4002,
    MaxConnectionDurationReached = 4003,
    FragmentTimecodeLesserThanPrevious = 4004,
    InvalidMkvData = 4006,
    InvalidProducerTimestamp = 4007,
    StreamNotActive = 4008,
    TrackNumberMismatch = 4010,
    FramesMissingForTrack = 4011,
    MoreThanAllowedTracksFound = 4012,
    InternalError = 5000,
    ArchivalError = 5001,
}

impl AckError {
    pub fn code(self) -> &'static str {
        match self {
            AckError::StreamReadError => "STREAM_READ_ERROR",
            AckError::MaxFragmentSizeReached => "MAX_FRAGMENT_SIZE_REACHED",
            AckError::MaxFragmentDurationReached => "MAX_FRAGMENT_DURATION_REACHED",
            AckError::MaxConnectionDurationReached => "MAX_CONNECTION_DURATION_REACHED",
            AckError::FragmentTimecodeLesserThanPrevious => {
                "FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS"
            }
            AckError::InvalidMkvData => "INVALID_MKV_DATA",
            AckError::InvalidProducerTimestamp => "INVALID_PRODUCER_TIMESTAMP",
            AckError::StreamNotActive => "STREAM_NOT_ACTIVE",
            AckError::TrackNumberMismatch => "TRACK_NUMBER_MISMATCH",
            AckError::FramesMissingForTrack => "FRAMES_MISSING_FOR_TRACK",
            AckError::MoreThanAllowedTracksFound => "MORE_THAN_ALLOWED_TRACKS_FOUND",
            AckError::InternalError => "INTERNAL_ERROR",
            AckError::ArchivalError => "ARCHIVAL_ERROR",
        }
    }
}

/// One acknowledgement line.
fn ack(event: &str, timecode: Option<u64>, number: Option<&str>, error: Option<AckError>) -> Bytes {
    let mut s = format!("{{\"EventType\":\"{event}\"");
    if let Some(tc) = timecode {
        s.push_str(&format!(",\"FragmentTimecode\":{tc}"));
    }
    if let Some(n) = number {
        s.push_str(&format!(",\"FragmentNumber\":\"{n}\""));
    }
    if let Some(e) = error {
        s.push_str(&format!(
            ",\"ErrorId\":{},\"ErrorCode\":\"{}\"",
            e as u16,
            e.code()
        ));
    }
    s.push_str("}\n");
    Bytes::from(s)
}

/// How the upload's cluster timecodes count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimecodeType {
    /// Since the epoch.
    Absolute,
    /// Since the producer start timestamp.
    Relative,
}

/// A PutMedia request's headers.
#[derive(Debug, Clone, Default)]
pub struct PutMediaHeaders {
    pub stream_name: Option<String>,
    pub stream_arn: Option<String>,
    pub timecode_type: Option<String>,
    pub producer_start_timestamp: Option<String>,
}

/// Reads `<seconds>[.<fraction>]`, decimal seconds, as epoch ms.
pub fn parse_start_timestamp(s: &str) -> Option<i64> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) || secs.len() > 12 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 9 {
        return None;
    }
    let ms = format!("{:0<3}", &frac[..frac.len().min(3)])
        .parse::<i64>()
        .ok()?;
    Some(secs.parse::<i64>().ok()? * 1000 + ms)
}

/// The body of an upload, read a chunk at a time.
pub trait Upload: Send {
    /// The next chunk; `None` at the end, `Err` when reading failed.
    fn next(&mut self) -> impl Future<Output = Option<std::result::Result<Bytes, String>>> + Send;
}

/// Releases a stream's producer claim when the upload ends.
struct Claim(Arc<AtomicBool>);

impl Drop for Claim {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// An accepted PutMedia upload, ready to run.
pub struct Ingest {
    svc: Arc<Service>,
    stats: Arc<crate::media::Stats>,
    key: String,
    store: Arc<Store>,
    retains: bool,
    timecode_type: TimecodeType,
    start_ms: i64,
    _claim: Claim,
}

impl Service {
    /// Checks a PutMedia request before its 200: the stream, the headers,
    /// and that no other producer is uploading to it.
    pub fn open_put_media(self: &Arc<Self>, ctx: &Ctx, h: PutMediaHeaders) -> Result<Ingest> {
        if h.stream_name.is_some() && h.stream_arn.is_some() {
            return Err(VideoError::InvalidArgument(
                "Specify either x-amzn-stream-name or x-amzn-stream-arn, not both.".into(),
            ));
        }
        let timecode_type = match h.timecode_type.as_deref() {
            Some("ABSOLUTE") => TimecodeType::Absolute,
            Some("RELATIVE") => TimecodeType::Relative,
            Some(other) => {
                return Err(VideoError::InvalidArgument(format!(
                    "x-amzn-fragment-timecode-type must be ABSOLUTE or RELATIVE, not {other}."
                )))
            }
            None => {
                return Err(VideoError::InvalidArgument(
                    "The x-amzn-fragment-timecode-type header is required.".into(),
                ))
            }
        };
        let start_ms = match h.producer_start_timestamp.as_deref() {
            Some(s) => parse_start_timestamp(s).ok_or_else(|| {
                VideoError::InvalidArgument(format!(
                    "x-amzn-producer-start-timestamp {s} is not a timestamp in seconds."
                ))
            })?,
            None if timecode_type == TimecodeType::Relative => {
                return Err(VideoError::InvalidArgument(
                    "The x-amzn-producer-start-timestamp header is required for RELATIVE timecodes."
                        .into(),
                ))
            }
            None => 0,
        };
        let key = crate::ops::locate_stream(
            self,
            ctx,
            h.stream_name.as_deref(),
            h.stream_arn.as_deref(),
        )?;
        let row = self
            .streams
            .get(&key)
            .ok_or_else(crate::ops::stream_not_found)?;
        if row.status != crate::state::Status::Active {
            return Err(VideoError::ResourceNotFound(
                "The stream with the given name does not exist or is not active.".into(),
            ));
        }
        let media = self.media(&row)?;
        if media
            .producing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(VideoError::ConnectionLimitExceeded(format!(
                "Stream {} already has a PutMedia connection.",
                row.name
            )));
        }
        Ok(Ingest {
            svc: self.clone(),
            stats: media.stats.clone(),
            key,
            store: media.store.clone(),
            retains: row.retention_hours > 0,
            timecode_type,
            start_ms,
            _claim: Claim(media.producing.clone()),
        })
    }
}

/// A fragment waiting to be durable.
struct Pending {
    timecode: u64,
    number: String,
    bytes: u64,
    durable: Durable,
}

/// Converts a timecode in `scale` ns units to ms.
fn to_ms(units: i128, scale: u64) -> i64 {
    (units * scale as i128 / 1_000_000) as i64
}

impl Ingest {
    /// Reads the upload to its end (or the first fatal error), sending
    /// acknowledgements on `acks`; returns once every fragment it accepted
    /// has its PERSISTED (or ERROR) acknowledgement sent.
    pub async fn run(self, mut body: impl Upload, acks: mpsc::Sender<Bytes>) {
        let (persist_tx, mut persist_rx) = mpsc::unbounded_channel::<Pending>();
        let retains = self.retains;
        let acks2 = acks.clone();
        let stats = self.stats.clone();
        // PERSISTED acks, in fragment order.
        let persister = tokio::spawn(async move {
            while let Some(p) = persist_rx.recv().await {
                let persisted = p.durable.await;
                if persisted.is_ok() {
                    stats.incoming_fragments.fetch_add(1, Ordering::Relaxed);
                    stats.incoming_bytes.fetch_add(p.bytes, Ordering::Relaxed);
                } else {
                    stats.ack_errors.fetch_add(1, Ordering::Relaxed);
                }
                match persisted {
                    Ok(()) if retains => {
                        let _ = acks2
                            .send(ack("PERSISTED", Some(p.timecode), Some(&p.number), None))
                            .await;
                    }
                    Ok(()) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "a fragment could not be persisted");
                        let _ = acks2
                            .send(ack(
                                "ERROR",
                                Some(p.timecode),
                                Some(&p.number),
                                Some(AckError::ArchivalError),
                            ))
                            .await;
                    }
                }
            }
        });
        let mut state = State {
            demux: mkv::Demuxer::new(MAX_FRAGMENT_BYTES + (1 << 20)),
            header: None,
            header_bytes: Bytes::new(),
            tags: Vec::new(),
            last_timecode: None,
            started_ms: None,
        };
        let mut last_data = tokio::time::Instant::now();
        let mut idle = tokio::time::interval(IDLE_ACK_EVERY);
        idle.tick().await;
        loop {
            tokio::select! {
                chunk = body.next() => match chunk {
                    Some(Ok(b)) => {
                        last_data = tokio::time::Instant::now();
                        let events = state.demux.push(&b);
                        if !self.handle(&mut state, events, &acks, &persist_tx).await {
                            break;
                        }
                    }
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "a PutMedia upload failed to read");
                        break;
                    }
                    None => {
                        let events = state.demux.finish();
                        self.handle(&mut state, events, &acks, &persist_tx).await;
                        break;
                    }
                },
                _ = idle.tick() => {
                    if last_data.elapsed() >= IDLE_TIMEOUT {
                        break;
                    }
                    if last_data.elapsed() >= IDLE_ACK_EVERY
                        && acks.send(ack("IDLE", None, None, None)).await.is_err()
                    {
                        break;
                    }
                }
            }
            if acks.is_closed() {
                break;
            }
        }
        drop(persist_tx);
        let _ = persister.await;
        // The stream is free for the next producer before the response
        // ends.
        drop(self);
        drop(acks);
    }

    /// Handles demuxed events; `false` ends the upload.
    async fn handle(
        &self,
        st: &mut State,
        events: std::result::Result<Vec<Event>, mkv::MkvError>,
        acks: &mpsc::Sender<Bytes>,
        persist: &mpsc::UnboundedSender<Pending>,
    ) -> bool {
        let events = match events {
            Ok(e) => e,
            Err(e) => {
                let kind = match e {
                    mkv::MkvError::TooLarge { .. } => AckError::MaxFragmentSizeReached,
                    mkv::MkvError::Invalid(_) => AckError::InvalidMkvData,
                };
                tracing::debug!(error = %e, "refusing a PutMedia upload");
                self.stats.ack_errors.fetch_add(1, Ordering::Relaxed);
                let _ = acks
                    .send(ack("ERROR", st.last_timecode, None, Some(kind)))
                    .await;
                return false;
            }
        };
        for ev in events {
            match ev {
                Event::Header(h) => {
                    if h.tracks.len() > MAX_TRACKS {
                        let _ = acks
                            .send(ack(
                                "ERROR",
                                None,
                                None,
                                Some(AckError::MoreThanAllowedTracksFound),
                            ))
                            .await;
                        return false;
                    }
                    st.header_bytes = h.raw.clone();
                    st.header = Some(h);
                }
                Event::Tags(raw) => {
                    let end_of_fragment = mkv::simple_tags(&raw).is_ok_and(|t| {
                        t.iter()
                            .any(|(n, _)| n == "AWS_KINESISVIDEO_END_OF_FRAGMENT")
                    });
                    if !end_of_fragment {
                        st.tags.push(raw);
                    }
                }
                Event::ClusterStart { timecode } => {
                    st.started_ms = Some(self.svc.now_ms());
                    let number = self.store.next_number();
                    if acks
                        .send(ack("BUFFERING", Some(timecode), Some(&number), None))
                        .await
                        .is_err()
                    {
                        return false;
                    }
                }
                Event::Cluster { timecode, body } => {
                    match self.fragment(st, timecode, body).await {
                        Ok((number, bytes, durable)) => {
                            st.last_timecode = Some(timecode);
                            if acks
                                .send(ack("RECEIVED", Some(timecode), Some(&number), None))
                                .await
                                .is_err()
                            {
                                return false;
                            }
                            let _ = persist.send(Pending {
                                timecode,
                                number,
                                bytes,
                                durable,
                            });
                        }
                        Err((e, fatal)) => {
                            self.stats.ack_errors.fetch_add(1, Ordering::Relaxed);
                            let _ = acks.send(ack("ERROR", Some(timecode), None, Some(e))).await;
                            if fatal {
                                return false;
                            }
                        }
                    }
                }
            }
        }
        true
    }

    /// Checks and stores one cluster; the error says whether the upload
    /// must end.
    async fn fragment(
        &self,
        st: &mut State,
        timecode: u64,
        body: Bytes,
    ) -> std::result::Result<(String, u64, Durable), (AckError, bool)> {
        let tags = std::mem::take(&mut st.tags);
        let server_ms = st.started_ms.take().unwrap_or_else(|| self.svc.now_ms());
        let Some(header) = st.header.clone() else {
            return Err((AckError::InvalidMkvData, true));
        };
        // Deleted (or deleted and created again) since the upload began.
        if self
            .svc
            .streams
            .get(&self.key)
            .map(|s| crate::store::log_id_of(&s))
            != Some(self.store.log_id)
        {
            return Err((AckError::StreamNotActive, true));
        }
        let frames = mkv::parse_cluster(&body).map_err(|_| (AckError::InvalidMkvData, true))?;
        if let Some(prev) = st.last_timecode {
            if timecode <= prev {
                return Err((AckError::FragmentTimecodeLesserThanPrevious, false));
            }
        }
        if frames
            .frames
            .iter()
            .any(|f| !header.tracks.iter().any(|t| t.number == f.track))
        {
            return Err((AckError::TrackNumberMismatch, false));
        }
        if header
            .tracks
            .iter()
            .any(|t| !frames.frames.iter().any(|f| f.track == t.number))
        {
            return Err((AckError::FramesMissingForTrack, false));
        }
        let duration_ms = fragment_duration_ms(&header, &frames);
        if duration_ms > MAX_FRAGMENT_MS {
            return Err((AckError::MaxFragmentDurationReached, false));
        }
        let offset_ms = to_ms(timecode as i128, header.timecode_scale);
        let producer_ms = match self.timecode_type {
            TimecodeType::Absolute => offset_ms,
            TimecodeType::Relative => self.start_ms.saturating_add(offset_ms),
        };
        if producer_ms < 0 {
            return Err((AckError::InvalidProducerTimestamp, false));
        }
        let mut stored = BytesMut::with_capacity(st.header_bytes.len() + body.len() + 16);
        stored.extend_from_slice(&st.header_bytes);
        let mut cluster = Vec::with_capacity(body.len() + 12);
        mkv::put_element(&mut cluster, mkv::id::CLUSTER, &body);
        stored.extend_from_slice(&cluster);
        for t in &tags {
            stored.extend_from_slice(t);
        }
        let meta = NewFragment {
            producer_ms,
            server_ms,
            duration_ms: duration_ms as u32,
        };
        let (frag, durable) = self
            .store
            .append(
                meta,
                st.header_bytes.len() as u32,
                stored.freeze(),
                self.svc.now_ms(),
            )
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "storing a fragment failed");
                (AckError::ArchivalError, true)
            })?;
        Ok((frag.number(self.store.log_id), frag.size, durable))
    }
}

/// What an upload has read so far.
struct State {
    demux: mkv::Demuxer,
    header: Option<Arc<StreamHeader>>,
    header_bytes: Bytes,
    /// Fragment metadata for the next cluster.
    tags: Vec<Bytes>,
    last_timecode: Option<u64>,
    /// When the current cluster began to arrive.
    started_ms: Option<i64>,
}

/// A fragment's length in ms: from its first frame to the end of its last,
/// on its first video track (or its first track). The last frame lasts its
/// BlockDuration, else the track's DefaultDuration, else the mean gap
/// between the fragment's frames.
pub fn fragment_duration_ms(header: &StreamHeader, frames: &mkv::ClusterFrames) -> i64 {
    let track = header
        .tracks
        .iter()
        .find(|t| t.is_video())
        .or(header.tracks.first());
    let Some(track) = track else { return 0 };
    let times: Vec<&mkv::Frame> = frames
        .frames
        .iter()
        .filter(|f| f.track == track.number)
        .collect();
    let (Some(first), Some(last)) = (
        times.iter().map(|f| f.timecode).min(),
        times.iter().map(|f| f.timecode).max(),
    ) else {
        return 0;
    };
    let scale = header.timecode_scale;
    let last_len = times
        .iter()
        .rev()
        .find_map(|f| f.duration)
        .map(|d| d as i128)
        .or_else(|| {
            (track.default_duration_ns > 0)
                .then(|| track.default_duration_ns as i128 / scale.max(1) as i128)
        })
        .unwrap_or_else(|| {
            if times.len() > 1 {
                (last - first) as i128 / (times.len() as i128 - 1)
            } else {
                0
            }
        });
    to_ms((last - first) as i128 + last_len, scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_timestamps_as_the_producer_sdk_writes_them() {
        assert_eq!(parse_start_timestamp("1700000000"), Some(1_700_000_000_000));
        assert_eq!(
            parse_start_timestamp("1700000000.5"),
            Some(1_700_000_000_500)
        );
        assert_eq!(
            parse_start_timestamp("1700000000.05"),
            Some(1_700_000_000_050)
        );
        assert_eq!(
            parse_start_timestamp("1700000000.123"),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            parse_start_timestamp("1700000000.123456"),
            Some(1_700_000_000_123)
        );
        assert_eq!(parse_start_timestamp("x"), None);
        assert_eq!(parse_start_timestamp("-1"), None);
        assert_eq!(parse_start_timestamp(""), None);
    }

    #[test]
    fn acks_are_the_json_the_sdk_parses() {
        assert_eq!(
            ack("BUFFERING", Some(1600994737365), Some("913"), None),
            Bytes::from_static(
                b"{\"EventType\":\"BUFFERING\",\"FragmentTimecode\":1600994737365,\"FragmentNumber\":\"913\"}\n"
            )
        );
        assert_eq!(
            ack("ERROR", Some(5), None, Some(AckError::InvalidMkvData)),
            Bytes::from_static(
                b"{\"EventType\":\"ERROR\",\"FragmentTimecode\":5,\"ErrorId\":4006,\"ErrorCode\":\"INVALID_MKV_DATA\"}\n"
            )
        );
        assert_eq!(
            ack("IDLE", None, None, None),
            Bytes::from_static(b"{\"EventType\":\"IDLE\"}\n")
        );
    }
}
