//! Reading stored fragments: GetMedia (live tailing included),
//! GetMediaForFragmentList and ListFragments, and the per-stream state
//! the data plane keeps ([`Media`]).
//!
//! GetMedia's output is one Matroska document per fragment, as AWS sends
//! it and the Kinesis Video parser library reads it: an EBML header, a
//! Segment of unknown size, the Info and Tracks the fragment was uploaded
//! under, a Tags element with `AWS_KINESISVIDEO_FRAGMENT_NUMBER`,
//! `_SERVER_TIMESTAMP` and `_PRODUCER_TIMESTAMP` (decimal seconds with
//! three decimals), the Cluster, the producer's fragment Tags, and a Tags
//! element with `AWS_KINESISVIDEO_MILLIS_BEHIND_NOW` and
//! `AWS_KINESISVIDEO_CONTINUATION_TOKEN`.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use riffle_wire::shape::Timestamp;
use tokio::sync::mpsc;

use crate::error::{Result, VideoError};
use crate::store::{offset_of, Fragment, Store};
use crate::{archive_model, media_model, mkv, Ctx, Service};

/// GetMedia connections a stream serves at once.
pub const MAX_GET_MEDIA: usize = 3;
/// A GetMedia response with nothing new for this long ends.
pub const GET_MEDIA_IDLE: Duration = Duration::from_secs(3);
/// The most fragments one GetMediaForFragmentList or ListFragments names.
pub const MAX_FRAGMENTS: usize = 1000;

/// The data plane's state of one stream incarnation.
pub struct Media {
    pub store: Arc<Store>,
    /// Whether a PutMedia upload is running.
    pub producing: Arc<AtomicBool>,
    /// GetMedia responses being streamed.
    pub readers: Arc<AtomicUsize>,
    pub stats: Arc<Stats>,
}

/// A stream's counters, after CloudWatch's Kinesis Video metrics.
#[derive(Debug, Default)]
pub struct Stats {
    /// PutMedia.IncomingFragments: fragments persisted.
    pub incoming_fragments: AtomicU64,
    /// PutMedia.IncomingBytes: their bytes.
    pub incoming_bytes: AtomicU64,
    /// ERROR acknowledgements sent.
    pub ack_errors: AtomicU64,
    /// GetMedia.OutgoingFragments and .OutgoingBytes.
    pub outgoing_fragments: AtomicU64,
    pub outgoing_bytes: AtomicU64,
}

impl Media {
    pub fn new(store: Store) -> Media {
        Media {
            store: Arc::new(store),
            producing: Arc::new(AtomicBool::new(false)),
            readers: Arc::new(AtomicUsize::new(0)),
            stats: Arc::default(),
        }
    }
}

/// A streamed response: its chunks, in order.
pub struct MediaStream {
    pub content_type: &'static str,
    pub chunks: mpsc::Receiver<Bytes>,
}

/// Seconds with three decimals, as the AWS tags write timestamps.
fn seconds(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// One fragment as GetMedia sends it.
pub fn chunk(
    f: &Fragment,
    stored: &Bytes,
    number: &str,
    after: Option<(i64, &str)>,
) -> Result<Vec<u8>> {
    let parts = crate::store::Parts::split(f, stored)
        .ok_or_else(|| VideoError::Internal("a stored fragment cannot be read".into()))?;
    let mut out = mkv::ebml_header();
    mkv::put_unknown_size(&mut out, mkv::id::SEGMENT);
    out.extend_from_slice(&parts.header);
    out.extend_from_slice(&mkv::tags(&[
        ("AWS_KINESISVIDEO_FRAGMENT_NUMBER", number.to_owned()),
        ("AWS_KINESISVIDEO_SERVER_TIMESTAMP", seconds(f.server_ms)),
        (
            "AWS_KINESISVIDEO_PRODUCER_TIMESTAMP",
            seconds(f.producer_ms),
        ),
    ]));
    out.extend_from_slice(&parts.cluster);
    out.extend_from_slice(&parts.tags);
    if let Some((behind, token)) = after {
        out.extend_from_slice(&mkv::tags(&[
            (
                "AWS_KINESISVIDEO_MILLIS_BEHIND_NOW",
                behind.max(0).to_string(),
            ),
            ("AWS_KINESISVIDEO_CONTINUATION_TOKEN", token.to_owned()),
        ]));
    }
    Ok(out)
}

/// Releases a GetMedia reader slot.
struct Reader(Arc<AtomicUsize>);

impl Drop for Reader {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn invalid(m: impl Into<String>) -> VideoError {
    VideoError::InvalidArgument(m.into())
}

impl Service {
    /// The stream a data-plane request names, with its media.
    fn media_of(
        &self,
        ctx: &Ctx,
        name: Option<&str>,
        stream_arn: Option<&str>,
    ) -> Result<(Arc<crate::state::Stream>, Arc<Media>)> {
        let key = crate::ops::locate_stream(self, ctx, name, stream_arn)?;
        let row = self
            .streams
            .get(&key)
            .ok_or_else(crate::ops::stream_not_found)?;
        let media = self.media(&row)?;
        Ok((row, media))
    }

    /// GetMedia: fragments from the StartSelector on, following new ones
    /// as they are persisted until none arrives for [`GET_MEDIA_IDLE`].
    pub fn get_media(self: &Arc<Self>, ctx: &Ctx, body: riffle_wire::Value) -> Result<MediaStream> {
        let input: media_model::GetMediaInput = crate::input(riffle_wire::Value::Map(
            riffle_wire::shape::operation_input(media_model::OPERATIONS, "GetMedia", body)?,
        ));
        let (_row, media) = self.media_of(
            ctx,
            input.stream_name.as_deref(),
            input.stream_arn.as_deref(),
        )?;
        let store = media.store.clone();
        let sel = input.start_selector;
        let after = |n: Option<&str>, what: &str| -> Result<u64> {
            let n = n.ok_or_else(|| {
                invalid(format!("{what} is required for this StartSelectorType."))
            })?;
            offset_of(n, store.log_id)
                .map(|o| o + 1)
                .ok_or_else(|| invalid(format!("{what} {n} is not a fragment of this stream.")))
        };
        let start = match sel.start_selector_type.as_str() {
            "EARLIEST" => store.fragments().first().map_or(0, |f| f.offset),
            // After the newest durable fragment: one being persisted now
            // is included.
            "NOW" => store.last().map_or(0, |f| f.offset + 1),
            "FRAGMENT_NUMBER" => {
                after(sel.after_fragment_number.as_deref(), "AfterFragmentNumber")?
            }
            "CONTINUATION_TOKEN" => after(sel.continuation_token.as_deref(), "ContinuationToken")?,
            t @ ("SERVER_TIMESTAMP" | "PRODUCER_TIMESTAMP") => {
                let ts = sel
                    .start_timestamp
                    .ok_or_else(|| {
                        invalid("StartTimestamp is required for this StartSelectorType.")
                    })?
                    .0;
                let producer = t == "PRODUCER_TIMESTAMP";
                store
                    .fragments()
                    .into_iter()
                    .find(|f| {
                        let s = if producer { f.producer_ms } else { f.server_ms };
                        s + f.duration_ms as i64 > ts || s >= ts
                    })
                    .map_or_else(|| store.next_offset(), |f| f.offset)
            }
            other => return Err(invalid(format!("StartSelectorType {other} is not valid."))),
        };
        if media.readers.fetch_add(1, Ordering::AcqRel) >= MAX_GET_MEDIA {
            media.readers.fetch_sub(1, Ordering::AcqRel);
            return Err(VideoError::ConnectionLimitExceeded(format!(
                "The stream has {MAX_GET_MEDIA} GetMedia connections already."
            )));
        }
        let slot = Reader(media.readers.clone());
        let stats = media.stats.clone();
        let (tx, rx) = mpsc::channel(4);
        let svc = self.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let mut watch = store.watch();
            let mut next = start;
            loop {
                watch.borrow_and_update();
                match store.from_offset(next) {
                    Some(f) => {
                        let number = f.number(store.log_id);
                        let out = store
                            .read(&f)
                            .map_err(|e| VideoError::Internal(e.to_string()))
                            .and_then(|stored| {
                                chunk(
                                    &f,
                                    &stored,
                                    &number,
                                    Some((svc.now_ms() - f.server_ms, &number)),
                                )
                            });
                        match out {
                            Ok(b) => {
                                let len = b.len() as u64;
                                if tx.send(Bytes::from(b)).await.is_err() {
                                    return;
                                }
                                stats.outgoing_fragments.fetch_add(1, Ordering::Relaxed);
                                stats.outgoing_bytes.fetch_add(len, Ordering::Relaxed);
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "GetMedia could not read a fragment");
                            }
                        }
                        next = f.offset + 1;
                    }
                    None => match tokio::time::timeout(GET_MEDIA_IDLE, watch.changed()).await {
                        Ok(Ok(())) => {}
                        _ => return,
                    },
                }
            }
        });
        Ok(MediaStream {
            content_type: "video/webm",
            chunks: rx,
        })
    }

    /// GetMediaForFragmentList: the named fragments, in the order named.
    pub fn get_media_for_fragment_list(
        self: &Arc<Self>,
        ctx: &Ctx,
        body: riffle_wire::Value,
    ) -> Result<MediaStream> {
        let input: archive_model::GetMediaForFragmentListInput = crate::input(
            riffle_wire::Value::Map(riffle_wire::shape::operation_input(
                archive_model::OPERATIONS,
                "GetMediaForFragmentList",
                body,
            )?),
        );
        let (row, media) = self.media_of(
            ctx,
            input.stream_name.as_deref(),
            input.stream_arn.as_deref(),
        )?;
        if row.retention_hours == 0 {
            return Err(VideoError::NoDataRetention(
                "The stream does not retain data (DataRetentionInHours is 0).".into(),
            ));
        }
        let store = media.store.clone();
        let mut frags = Vec::with_capacity(input.fragments.len());
        for n in &input.fragments {
            let f = offset_of(n, store.log_id)
                .and_then(|o| store.at(o))
                .ok_or_else(|| {
                    VideoError::ResourceNotFound(format!("Fragment {n} was not found."))
                })?;
            frags.push((f, n.clone()));
        }
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            for (f, n) in frags {
                let out = store
                    .read(&f)
                    .map_err(|e| VideoError::Internal(e.to_string()))
                    .and_then(|stored| chunk(&f, &stored, &n, None));
                match out {
                    Ok(b) => {
                        if tx.send(Bytes::from(b)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "GetMediaForFragmentList could not read a fragment");
                        return;
                    }
                }
            }
        });
        Ok(MediaStream {
            content_type: "video/webm",
            chunks: rx,
        })
    }
}

/// One stream's figures for `/metrics`.
pub struct StreamStats {
    pub region: String,
    pub name: String,
    pub incoming_fragments: u64,
    pub incoming_bytes: u64,
    pub ack_errors: u64,
    pub outgoing_fragments: u64,
    pub outgoing_bytes: u64,
    pub producers: u64,
    pub readers: u64,
    pub stored_fragments: u64,
    pub stored_bytes: u64,
}

impl Service {
    /// Every live stream's figures, in key order.
    pub fn stream_stats(&self) -> Vec<StreamStats> {
        self.streams
            .all()
            .into_iter()
            .filter_map(|(_, _, s)| {
                let m = self.media(&s).ok()?;
                let (n, bytes) = m.store.usage();
                let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
                Some(StreamStats {
                    region: s.region.clone(),
                    name: s.name.clone(),
                    incoming_fragments: get(&m.stats.incoming_fragments),
                    incoming_bytes: get(&m.stats.incoming_bytes),
                    ack_errors: get(&m.stats.ack_errors),
                    outgoing_fragments: get(&m.stats.outgoing_fragments),
                    outgoing_bytes: get(&m.stats.outgoing_bytes),
                    producers: m.producing.load(Ordering::Relaxed) as u64,
                    readers: m.readers.load(Ordering::Relaxed) as u64,
                    stored_fragments: n as u64,
                    stored_bytes: bytes,
                })
            })
            .collect()
    }
}

/// ListFragments: fragments whose start is within the selector's range
/// (both ends inclusive), in fragment order, MaxResults (1,000 by default)
/// a page; the NextToken carries the next offset.
pub async fn list_fragments(
    svc: &Service,
    ctx: &Ctx,
    i: archive_model::ListFragmentsInput,
) -> Result<archive_model::ListFragmentsOutput> {
    let (_row, media) = svc.media_of(ctx, i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    let limit = i
        .max_results
        .map_or(MAX_FRAGMENTS, |n| n.clamp(1, 1000) as usize);
    let from = match i.next_token.as_deref() {
        Some(t) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(t)
                .ok()
                .filter(|b| b.len() == 16)
                .ok_or_else(|| invalid(format!("NextToken {t} is not valid.")))?;
            let log = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
            if log != media.store.log_id {
                return Err(invalid(format!("NextToken {t} is not valid.")));
            }
            u64::from_be_bytes(bytes[8..].try_into().expect("8 bytes"))
        }
        None => 0,
    };
    let range = i.fragment_selector.as_ref().map(|s| {
        (
            s.fragment_selector_type == "PRODUCER_TIMESTAMP",
            s.timestamp_range.start_timestamp.0,
            s.timestamp_range.end_timestamp.0,
        )
    });
    if let Some((_, start, end)) = range {
        if end < start {
            return Err(invalid(
                "The EndTimestamp must be later than the StartTimestamp.",
            ));
        }
    }
    let mut matching = media
        .store
        .fragments()
        .into_iter()
        .filter(|f| f.offset >= from)
        .filter(|f| match range {
            Some((producer, start, end)) => {
                let t = if producer { f.producer_ms } else { f.server_ms };
                t >= start && t <= end
            }
            None => true,
        });
    let page: Vec<Fragment> = matching.by_ref().take(limit).collect();
    let next_token = match (page.last(), matching.next()) {
        (Some(_), Some(n)) => {
            let mut b = media.store.log_id.to_be_bytes().to_vec();
            b.extend_from_slice(&n.offset.to_be_bytes());
            Some(base64::engine::general_purpose::STANDARD.encode(b))
        }
        _ => None,
    };
    Ok(archive_model::ListFragmentsOutput {
        fragments: Some(
            page.iter()
                .map(|f| archive_model::Fragment {
                    fragment_number: Some(f.number(media.store.log_id)),
                    fragment_size_in_bytes: Some(f.size as i64),
                    producer_timestamp: Some(Timestamp(f.producer_ms)),
                    server_timestamp: Some(Timestamp(f.server_ms)),
                    fragment_length_in_milliseconds: Some(f.duration_ms as i64),
                })
                .collect(),
        ),
        next_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_timestamps_are_seconds_with_three_decimals() {
        assert_eq!(seconds(1_511_852_109_126), "1511852109.126");
        assert_eq!(seconds(5_000), "5.000");
        assert_eq!(seconds(7), "0.007");
    }
}
