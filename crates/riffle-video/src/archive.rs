//! Archived media: HLS and DASH streaming sessions and the playlists,
//! manifests and segments under their URLs, GetClip and GetImages.
//!
//! - A session (GetHLSStreamingSessionURL / GetDASHStreamingSessionURL)
//!   is a random token naming what was asked: the stream incarnation, the
//!   playback mode, the fragment selector and its range, the container
//!   and the display options. Sessions live in memory until they expire
//!   (Expires, 300 s by default); a restart ends them.
//! - Its URL is the data endpoint the request came to, followed by
//!   `/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken=...` or
//!   `/dash/v1/getDASHManifest.mpd?SessionToken=...`. Resources under it
//!   are fetched without signatures, as players fetch them; an unknown or
//!   expired token is refused with HTTP 403.
//! - Which fragments a playlist lists: ON_DEMAND, those whose start is in
//!   the range (both ends inclusive), ordered on the selector's clock;
//!   LIVE, the newest; LIVE_REPLAY, those from the range's start up to as
//!   far as the session has been running (replayed at real time), the
//!   newest `MaxMediaPlaylistFragmentResults` of them. Media sequence
//!   numbers stay with a fragment for the session's life.
//! - Segments are one fragment each: HLS serves fragmented MP4 (all played
//!   tracks in one) or MPEG-TS, DASH serves each track apart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use rand::RngCore;
use riffle_wire::shape::Timestamp;

use crate::error::{Result, VideoError};
use crate::mkv;
use crate::playback::{self, dash, fmp4, hls, Media, MediaError};
use crate::store::{offset_of, Fragment, Store};
use crate::{archive_model as m, Ctx, Service};

/// Fragments a session's playlist lists by default: LIVE and LIVE_REPLAY.
pub const LIVE_FRAGMENTS: usize = 5;
/// ... and ON_DEMAND.
pub const ON_DEMAND_FRAGMENTS: usize = 1000;
/// A LIVE session needs a fragment this recent.
pub const LIVE_WINDOW_MS: i64 = 30_000;
/// The longest range a session, clip or image request may span.
pub const MAX_RANGE_MS: i64 = 24 * 3_600_000;
/// GetClip's limits.
pub const CLIP_MAX_FRAGMENTS: usize = 200;
pub const CLIP_MAX_BYTES: u64 = 100 * 1024 * 1024;
/// GetImages' limits.
pub const IMAGES_MAX_RANGE_MS: i64 = 300_000;
pub const IMAGES_MIN_INTERVAL_MS: i64 = 200;
pub const IMAGES_PAGE: usize = 25;
/// Gaps or overlaps larger than this are discontinuities.
pub const DISCONTINUITY_MS: i64 = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Live,
    LiveReplay,
    OnDemand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hls { ts: bool, discontinuity: Disc },
    Dash,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disc {
    Always,
    Never,
    OnDiscontinuity,
}

/// One streaming session.
pub struct Session {
    kind: Kind,
    store: Arc<Store>,
    mode: Mode,
    producer_clock: bool,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    display_timestamp: bool,
    max: usize,
    created_ms: i64,
    expires_ms: i64,
    /// Offsets of the fragments listed so far: a fragment's media sequence
    /// number is its position here.
    listed: Mutex<Vec<u64>>,
}

/// Every live session, by token.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Arc<Session>>>,
}

impl Sessions {
    fn insert(&self, s: Session, now_ms: i64) -> String {
        let mut raw = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut raw);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| s.expires_ms > now_ms);
        map.insert(token.clone(), Arc::new(s));
        token
    }

    fn get(&self, token: &str, now_ms: i64) -> Result<Arc<Session>> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(token)
            .filter(|s| s.expires_ms > now_ms)
            .cloned()
            .ok_or_else(|| VideoError::SessionExpired("Streaming session token is expired".into()))
    }
}

fn invalid(m: impl Into<String>) -> VideoError {
    VideoError::InvalidArgument(m.into())
}

fn media_error(e: MediaError) -> VideoError {
    match e {
        MediaError::UnsupportedStreamMediaType(m) => VideoError::UnsupportedStreamMediaType(m),
        MediaError::MissingCodecPrivateData(m) => VideoError::MissingCodecPrivateData(m),
        MediaError::InvalidCodecPrivateData(m) => VideoError::InvalidCodecPrivateData(m),
        MediaError::InvalidMediaFrame(m) => VideoError::InvalidMediaFrame(m),
    }
}

fn no_fragments() -> VideoError {
    VideoError::ResourceNotFound(
        "No fragments found in the stream for the streaming request.".into(),
    )
}

/// A stored fragment as playback reads it.
pub fn playback_fragment(store: &Store, f: &Fragment) -> Result<playback::Fragment> {
    let stored = store
        .read(f)
        .map_err(|e| VideoError::Internal(e.to_string()))?;
    let bad = || VideoError::Internal("a stored fragment cannot be read".into());
    let parts = crate::store::Parts::split(f, &stored).ok_or_else(bad)?;
    let (mut scale, mut tracks) = (mkv::DEFAULT_TIMECODE_SCALE, Vec::new());
    for c in mkv::children(&parts.header) {
        let (id, body) = c.map_err(|_| bad())?;
        match id {
            mkv::id::INFO => scale = mkv::parse_timecode_scale(body).map_err(|_| bad())?,
            mkv::id::TRACKS => tracks = mkv::parse_tracks(body).map_err(|_| bad())?,
            _ => {}
        }
    }
    let cluster = mkv::parse_cluster(&parts.cluster_body)
        .map_err(|e| VideoError::InvalidMediaFrame(e.to_string()))?;
    Ok(playback::Fragment {
        number: f.number(store.log_id),
        producer_ms: f.producer_ms,
        server_ms: f.server_ms,
        header: Arc::new(mkv::StreamHeader {
            timecode_scale: scale,
            tracks,
            raw: parts.header,
        }),
        cluster,
    })
}

fn clock(f: &Fragment, producer: bool) -> i64 {
    if producer {
        f.producer_ms
    } else {
        f.server_ms
    }
}

/// Fragments whose start on the clock is within [start, end], ordered on
/// that clock; on the producer clock a repeated timestamp keeps the newest
/// fragment.
fn in_range(store: &Store, producer: bool, start: i64, end: i64) -> Vec<Fragment> {
    let mut v: Vec<Fragment> = store
        .fragments()
        .into_iter()
        .filter(|f| (start..=end).contains(&clock(f, producer)))
        .collect();
    v.sort_by_key(|f| (clock(f, producer), f.offset));
    if producer {
        let mut out: Vec<Fragment> = Vec::with_capacity(v.len());
        for f in v {
            match out.last_mut() {
                Some(last) if last.producer_ms == f.producer_ms => *last = f,
                _ => out.push(f),
            }
        }
        return out;
    }
    v
}

/// Milliseconds from a model timestamp.
fn ms(t: Option<Timestamp>) -> Option<i64> {
    t.map(|t| t.0)
}

/// What a session request asked, checked.
struct Ask {
    mode: Mode,
    producer_clock: bool,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
}

fn check_ask(
    mode: Option<&str>,
    selector_type: Option<&str>,
    start: Option<i64>,
    end: Option<i64>,
    has_range: bool,
    now_ms: i64,
) -> Result<Ask> {
    let mode = match mode.unwrap_or("LIVE") {
        "LIVE" => Mode::Live,
        "LIVE_REPLAY" => Mode::LiveReplay,
        "ON_DEMAND" => Mode::OnDemand,
        other => return Err(invalid(format!("PlaybackMode {other} is not valid."))),
    };
    let producer_clock = selector_type == Some("PRODUCER_TIMESTAMP");
    match mode {
        Mode::Live if has_range => {
            return Err(invalid(
                "TimestampRange must not be present when PlaybackMode is LIVE.",
            ))
        }
        Mode::Live => {}
        Mode::LiveReplay | Mode::OnDemand => {
            if selector_type.is_none() || start.is_none() {
                return Err(invalid(format!(
                    "A fragment selector with a FragmentSelectorType and a TimestampRange with a \
                     StartTimestamp is required when PlaybackMode is {}.",
                    if mode == Mode::OnDemand {
                        "ON_DEMAND"
                    } else {
                        "LIVE_REPLAY"
                    }
                )));
            }
            if mode == Mode::OnDemand && end.is_none() {
                return Err(invalid(
                    "EndTimestamp is required when PlaybackMode is ON_DEMAND.",
                ));
            }
        }
    }
    if let (Some(s), Some(e)) = (start, end) {
        if e <= s {
            return Err(invalid(
                "The EndTimestamp must be later than the StartTimestamp.",
            ));
        }
        if e - s > MAX_RANGE_MS {
            return Err(invalid(
                "The EndTimestamp must be within 24 hours of the StartTimestamp.",
            ));
        }
        if !producer_clock && e > now_ms {
            return Err(invalid(
                "The EndTimestamp must be in the past for SERVER_TIMESTAMP selectors.",
            ));
        }
    }
    Ok(Ask {
        mode,
        producer_clock,
        start_ms: start,
        end_ms: end,
    })
}

impl Session {
    /// The fragments a playlist lists now, with the media sequence number
    /// of the first, and whether the list is complete.
    fn select(&self, now_ms: i64) -> (Vec<Fragment>, u64, bool) {
        let p = self.producer_clock;
        let (frags, ended) = match self.mode {
            Mode::OnDemand => {
                let mut v = in_range(
                    &self.store,
                    p,
                    self.start_ms.unwrap_or(i64::MIN),
                    self.end_ms.unwrap_or(i64::MAX),
                );
                v.truncate(self.max);
                return (v, 0, true);
            }
            Mode::Live => {
                let mut all = self.store.fragments();
                let keep = all.len().saturating_sub(self.max);
                all.drain(..keep);
                (all, false)
            }
            Mode::LiveReplay => {
                let start = self.start_ms.unwrap_or(i64::MIN);
                let reached = start.saturating_add(now_ms - self.created_ms);
                let until = self.end_ms.map_or(reached, |e| e.min(reached));
                let mut v = in_range(&self.store, p, start, until);
                let keep = v.len().saturating_sub(self.max);
                v.drain(..keep);
                (v, self.end_ms.is_some_and(|e| reached >= e))
            }
        };
        let mut listed = self.listed.lock().unwrap_or_else(|p| p.into_inner());
        for f in &frags {
            if listed.last().is_none_or(|&l| f.offset > l) {
                listed.push(f.offset);
            }
        }
        let first = frags
            .first()
            .and_then(|f| listed.iter().position(|&o| o == f.offset))
            .unwrap_or(listed.len()) as u64;
        (frags, first, ended)
    }

    /// The fragment a segment URL names, if the session lists it.
    fn fragment(&self, number: Option<&str>) -> Result<Fragment> {
        let n = number.ok_or_else(|| invalid("FragmentNumber is required."))?;
        offset_of(n, self.store.log_id)
            .and_then(|o| self.store.at(o))
            .ok_or_else(|| VideoError::ResourceNotFound(format!("Fragment {n} was not found.")))
    }

    /// The media sequence number of a listed fragment.
    fn sequence(&self, f: &Fragment) -> u32 {
        let listed = self.listed.lock().unwrap_or_else(|p| p.into_inner());
        listed
            .iter()
            .position(|&o| o == f.offset)
            .map_or(f.offset as u32, |i| i as u32 + 1)
    }

    /// The media the session plays: the tracks of its first fragment.
    fn media(&self, now_ms: i64) -> Result<(Media, Vec<Fragment>, u64, bool)> {
        let (frags, first, ended) = self.select(now_ms);
        let head = match frags.first() {
            Some(f) => *f,
            None => self.store.last().ok_or_else(no_fragments)?,
        };
        let pf = playback_fragment(&self.store, &head)?;
        let media = Media::from_header(&pf.header).map_err(media_error)?;
        Ok((media, frags, first, ended))
    }
}

/// A resource under a session URL: its content type and body.
pub struct Resource {
    pub content_type: &'static str,
    pub body: Bytes,
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl Service {
    fn stream_for_archive(
        &self,
        ctx: &Ctx,
        name: Option<&str>,
        arn: Option<&str>,
    ) -> Result<Arc<crate::media::Media>> {
        let key = crate::ops::locate_stream(self, ctx, name, arn)?;
        let row = self
            .streams
            .get(&key)
            .ok_or_else(crate::ops::stream_not_found)?;
        if row.retention_hours == 0 {
            return Err(VideoError::NoDataRetention(format!(
                "The stream {} does not retain data (DataRetentionInHours is 0).",
                row.name
            )));
        }
        self.media(&row)
    }

    fn open_session(
        &self,
        store: Arc<Store>,
        kind: Kind,
        ask: Ask,
        display_timestamp: bool,
        max: Option<i64>,
        expires: Option<i64>,
    ) -> Result<String> {
        let now = self.now_ms();
        let default_max = if ask.mode == Mode::OnDemand {
            ON_DEMAND_FRAGMENTS
        } else {
            LIVE_FRAGMENTS
        };
        let session = Session {
            kind,
            store,
            mode: ask.mode,
            producer_clock: ask.producer_clock,
            start_ms: ask.start_ms,
            end_ms: ask.end_ms,
            display_timestamp,
            max: max.map_or(default_max, |n| n.max(1) as usize),
            created_ms: now,
            expires_ms: now + expires.unwrap_or(300).clamp(300, 43_200) * 1000,
            listed: Mutex::new(Vec::new()),
        };
        // What the session would play must exist and be playable now.
        match session.mode {
            Mode::Live => {
                let last = session.store.last().ok_or_else(no_fragments)?;
                if last.server_ms < now - LIVE_WINDOW_MS {
                    return Err(no_fragments());
                }
            }
            Mode::OnDemand | Mode::LiveReplay => {
                let any = in_range(
                    &session.store,
                    session.producer_clock,
                    session.start_ms.unwrap_or(i64::MIN),
                    session.end_ms.unwrap_or(i64::MAX),
                );
                if any.is_empty() {
                    return Err(no_fragments());
                }
            }
        }
        session.media(now)?;
        Ok(self.sessions.insert(session, now))
    }

    /// Serves a resource under a session URL (`hls/v1/...`, `dash/v1/...`).
    pub fn session_resource(&self, path: &str, query: &str) -> Result<Resource> {
        let now = self.now_ms();
        let token = query_param(query, "SessionToken").unwrap_or_default();
        let session = self.sessions.get(token, now)?;
        let hls_kind = match session.kind {
            Kind::Hls { ts, discontinuity } => Some((ts, discontinuity)),
            Kind::Dash => None,
        };
        let track = query_param(query, "TrackNumber").and_then(|t| t.parse::<u64>().ok());
        let number = query_param(query, "FragmentNumber");
        let text = |content_type, s: String| Resource {
            content_type,
            body: Bytes::from(s),
        };
        match (path, hls_kind) {
            ("hls/v1/getHLSMasterPlaylist.m3u8", Some(_)) => {
                let (media, frags, _, _) = session.media(now)?;
                let bandwidth = frags
                    .iter()
                    .map(|f| f.size * 8 * 1000 / (f.duration_ms.max(1) as u64))
                    .max()
                    .unwrap_or(1);
                let video = media.video();
                let frame_rate = video
                    .filter(|t| t.track.default_duration_ns > 0)
                    .map(|t| 1e9 / t.track.default_duration_ns as f64);
                Ok(text(
                    "application/vnd.apple.mpegurl",
                    hls::master_playlist(&hls::Variant {
                        uri: format!("getHLSMediaPlaylist.m3u8?SessionToken={token}"),
                        bandwidth,
                        codecs: media.codecs(),
                        resolution: video.map(|t| (t.track.width, t.track.height)),
                        frame_rate,
                    }),
                ))
            }
            ("hls/v1/getHLSMediaPlaylist.m3u8", Some((ts, disc))) => {
                let (frags, first, ended) = session.select(now);
                let p = session.producer_clock;
                let mut segments = Vec::with_capacity(frags.len());
                let mut prev: Option<&Fragment> = None;
                for f in &frags {
                    let n = f.number(session.store.log_id);
                    let discontinuity = match disc {
                        Disc::Always => true,
                        Disc::Never => false,
                        Disc::OnDiscontinuity => prev.is_some_and(|pf| {
                            (clock(pf, p) + pf.duration_ms as i64 - clock(f, p)).abs()
                                > DISCONTINUITY_MS
                        }),
                    };
                    segments.push(hls::Segment {
                        uri: if ts {
                            format!("getTSFragment.ts?FragmentNumber={n}&SessionToken={token}")
                        } else {
                            format!(
                                "getMP4MediaFragment.mp4?FragmentNumber={n}&SessionToken={token}&TrackNumber=1"
                            )
                        },
                        duration_s: f.duration_ms as f64 / 1000.0,
                        program_date_time_ms: session.display_timestamp.then(|| clock(f, p)),
                        discontinuity,
                    });
                    prev = Some(f);
                }
                Ok(text(
                    "application/vnd.apple.mpegurl",
                    hls::media_playlist(&hls::MediaPlaylist {
                        media_sequence: first,
                        playlist_type: match session.mode {
                            Mode::OnDemand => hls::PlaylistType::Vod,
                            _ => hls::PlaylistType::Live,
                        },
                        init_uri: (!ts).then(|| {
                            format!("getMP4InitFragment.mp4?SessionToken={token}&TrackNumber=1")
                        }),
                        segments,
                        ended,
                    }),
                ))
            }
            ("hls/v1/getMP4InitFragment.mp4", Some((false, _)))
            | ("dash/v1/getMP4InitFragment.mp4", None) => {
                let (media, ..) = session.media(now)?;
                let media = match (hls_kind, track) {
                    (None, Some(t)) => media.only(t).ok_or_else(|| {
                        invalid(format!("TrackNumber {t} is not a played track."))
                    })?,
                    _ => media,
                };
                Ok(Resource {
                    content_type: "video/mp4",
                    body: Bytes::from(fmp4::init_segment(&media)),
                })
            }
            ("hls/v1/getMP4MediaFragment.mp4", Some((false, _)))
            | ("dash/v1/getMP4MediaFragment.mp4", None) => {
                let f = session.fragment(number)?;
                let pf = playback_fragment(&session.store, &f)?;
                let media = Media::from_header(&pf.header).map_err(media_error)?;
                let media = match (hls_kind, track) {
                    (None, Some(t)) => media.only(t).ok_or_else(|| {
                        invalid(format!("TrackNumber {t} is not a played track."))
                    })?,
                    _ => media,
                };
                let body = fmp4::media_segments(&media, &[pf], session.sequence(&f), 0)
                    .map_err(media_error)?;
                Ok(Resource {
                    content_type: "video/mp4",
                    body: Bytes::from(body),
                })
            }
            ("hls/v1/getTSFragment.ts", Some((true, _))) => {
                let f = session.fragment(number)?;
                let pf = playback_fragment(&session.store, &f)?;
                let media = Media::from_header(&pf.header).map_err(media_error)?;
                let body = playback::ts::segment(&media, &[pf]).map_err(media_error)?;
                Ok(Resource {
                    content_type: "video/mp2t",
                    body: Bytes::from(body),
                })
            }
            ("dash/v1/getDASHManifest.mpd", None) => {
                let (media, frags, _, ended) = session.media(now)?;
                let pfs = frags
                    .iter()
                    .map(|f| playback_fragment(&session.store, f))
                    .collect::<Result<Vec<_>>>()?;
                let tracks = media
                    .tracks
                    .iter()
                    .map(|t| {
                        let segments = dash::timeline(t, &pfs)
                            .into_iter()
                            .zip(&frags)
                            .filter_map(|(span, f)| {
                                let (start, duration) = span?;
                                let n = f.number(session.store.log_id);
                                Some(dash::MpdSegment {
                                    url: format!(
                                        "getMP4MediaFragment.mp4?FragmentNumber={n}&SessionToken={token}&TrackNumber={}",
                                        t.number
                                    ),
                                    start,
                                    duration,
                                })
                            })
                            .collect();
                        let bandwidth = frags
                            .iter()
                            .map(|f| f.size * 8 * 1000 / (f.duration_ms.max(1) as u64))
                            .max()
                            .unwrap_or(1);
                        dash::MpdTrack {
                            track: t.clone(),
                            bandwidth,
                            init_url: format!(
                                "getMP4InitFragment.mp4?SessionToken={token}&TrackNumber={}",
                                t.number
                            ),
                            segments,
                        }
                    })
                    .collect::<Vec<_>>();
                let kind = if session.mode == Mode::OnDemand || ended {
                    dash::MpdType::Static
                } else {
                    dash::MpdType::Dynamic {
                        publish_ms: now,
                        update_period_ms: 2000,
                    }
                };
                Ok(text("application/dash+xml", dash::manifest(kind, &tracks)))
            }
            _ => Err(VideoError::ResourceNotFound(format!(
                "{path} is not a resource of this session."
            ))),
        }
    }

    /// GetClip: a fragmented MP4 of the fragments in the range (the first
    /// 200, or 100 MB).
    pub fn get_clip(&self, ctx: &Ctx, body: riffle_wire::Value) -> Result<Resource> {
        let i: m::GetClipInput = crate::input(riffle_wire::Value::Map(
            riffle_wire::shape::operation_input(m::OPERATIONS, "GetClip", body)?,
        ));
        let media =
            self.stream_for_archive(ctx, i.stream_name.as_deref(), i.stream_arn.as_deref())?;
        let sel = &i.clip_fragment_selector;
        let producer = sel.fragment_selector_type == "PRODUCER_TIMESTAMP";
        let (start, end) = (
            sel.timestamp_range.start_timestamp.0,
            sel.timestamp_range.end_timestamp.0,
        );
        check_ask(
            Some("ON_DEMAND"),
            Some(&sel.fragment_selector_type),
            Some(start),
            Some(end),
            true,
            self.now_ms(),
        )?;
        let mut frags = in_range(&media.store, producer, start, end);
        frags.truncate(CLIP_MAX_FRAGMENTS);
        let mut total = 0u64;
        frags.retain(|f| {
            total += f.size;
            total <= CLIP_MAX_BYTES
        });
        if frags.is_empty() {
            return Err(no_fragments());
        }
        let pfs = frags
            .iter()
            .map(|f| playback_fragment(&media.store, f))
            .collect::<Result<Vec<_>>>()?;
        let m = Media::from_header(&pfs[0].header).map_err(media_error)?;
        let clip = fmp4::clip(&m, &pfs).map_err(media_error)?;
        Ok(Resource {
            content_type: "video/mp4",
            body: Bytes::from(clip),
        })
    }
}

/// The stream and the checked request of a session (HLS and DASH ask
/// alike): `range` is the TimestampRange's (StartTimestamp, EndTimestamp).
fn session_ask(
    svc: &Service,
    ctx: &Ctx,
    (name, arn): (Option<&str>, Option<&str>),
    mode: Option<&str>,
    selector_type: Option<&str>,
    range: Option<(Option<Timestamp>, Option<Timestamp>)>,
) -> Result<(Arc<crate::media::Media>, Ask)> {
    let media = svc.stream_for_archive(ctx, name, arn)?;
    let ask = check_ask(
        mode,
        selector_type.or(range.map(|_| "SERVER_TIMESTAMP")),
        range.and_then(|r| ms(r.0)),
        range.and_then(|r| ms(r.1)),
        range.is_some(),
        svc.now_ms(),
    )?;
    Ok((media, ask))
}

/// GetHLSStreamingSessionURL.
pub async fn hls_session(
    svc: &Service,
    ctx: &Ctx,
    i: m::GetHLSStreamingSessionURLInput,
) -> Result<m::GetHLSStreamingSessionURLOutput> {
    let sel = i.hls_fragment_selector.as_ref();
    let (media, ask) = session_ask(
        svc,
        ctx,
        (i.stream_name.as_deref(), i.stream_arn.as_deref()),
        i.playback_mode.as_deref(),
        sel.and_then(|s| s.fragment_selector_type.as_deref()),
        sel.and_then(|s| s.timestamp_range.as_ref())
            .map(|r| (r.start_timestamp, r.end_timestamp)),
    )?;
    let discontinuity = match i.discontinuity_mode.as_deref() {
        Some("ALWAYS") => Disc::Always,
        Some("NEVER") => Disc::Never,
        Some("ON_DISCONTINUITY") => Disc::OnDiscontinuity,
        Some(other) => return Err(invalid(format!("DiscontinuityMode {other} is not valid."))),
        None if ask.producer_clock => Disc::Never,
        None => Disc::Always,
    };
    let ts = match i.container_format.as_deref() {
        None | Some("FRAGMENTED_MP4") => false,
        Some("MPEG_TS") => true,
        Some(other) => return Err(invalid(format!("ContainerFormat {other} is not valid."))),
    };
    let token = svc.open_session(
        media.store.clone(),
        Kind::Hls { ts, discontinuity },
        ask,
        i.display_fragment_timestamp.as_deref() == Some("ALWAYS"),
        i.max_media_playlist_fragment_results,
        i.expires,
    )?;
    Ok(m::GetHLSStreamingSessionURLOutput {
        hls_streaming_session_url: Some(format!(
            "{}/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken={token}",
            ctx.endpoint
        )),
    })
}

/// GetDASHStreamingSessionURL.
pub async fn dash_session(
    svc: &Service,
    ctx: &Ctx,
    i: m::GetDASHStreamingSessionURLInput,
) -> Result<m::GetDASHStreamingSessionURLOutput> {
    let sel = i.dash_fragment_selector.as_ref();
    let (media, ask) = session_ask(
        svc,
        ctx,
        (i.stream_name.as_deref(), i.stream_arn.as_deref()),
        i.playback_mode.as_deref(),
        sel.and_then(|s| s.fragment_selector_type.as_deref()),
        sel.and_then(|s| s.timestamp_range.as_ref())
            .map(|r| (r.start_timestamp, r.end_timestamp)),
    )?;
    let token = svc.open_session(
        media.store.clone(),
        Kind::Dash,
        ask,
        i.display_fragment_timestamp.as_deref() == Some("ALWAYS"),
        i.max_manifest_fragment_results,
        i.expires,
    )?;
    Ok(m::GetDASHStreamingSessionURLOutput {
        dash_streaming_session_url: Some(format!(
            "{}/dash/v1/getDASHManifest.mpd?SessionToken={token}",
            ctx.endpoint
        )),
    })
}

/// GetImages: one image per SamplingInterval from StartTimestamp to
/// EndTimestamp, a page of at most 25.
pub async fn images(svc: &Service, ctx: &Ctx, i: m::GetImagesInput) -> Result<m::GetImagesOutput> {
    let media = svc.stream_for_archive(ctx, i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    let (start, end) = (i.start_timestamp.0, i.end_timestamp.0);
    if end < start {
        return Err(invalid(
            "The EndTimestamp must not be earlier than the StartTimestamp.",
        ));
    }
    if end - start > IMAGES_MAX_RANGE_MS {
        return Err(invalid(
            "The difference between EndTimestamp and StartTimestamp must not exceed 300 seconds.",
        ));
    }
    let interval = i.sampling_interval.unwrap_or(3000);
    if interval < IMAGES_MIN_INTERVAL_MS {
        return Err(invalid(format!(
            "SamplingInterval must be at least {IMAGES_MIN_INTERVAL_MS} milliseconds."
        )));
    }
    let format = match i.format.as_str() {
        "JPEG" => {
            let q = match i.format_config.as_ref().and_then(|c| c.get("JPEGQuality")) {
                Some(v) => v
                    .parse::<u8>()
                    .ok()
                    .filter(|q| (1..=100).contains(q))
                    .ok_or_else(|| invalid(format!("JPEGQuality {v} must be from 1 to 100.")))?,
                None => 80,
            };
            playback::image::ImageFormat::Jpeg { quality: q }
        }
        "PNG" => playback::image::ImageFormat::Png,
        other => return Err(invalid(format!("Format {other} is not valid."))),
    };
    let producer = i.image_selector_type == "PRODUCER_TIMESTAMP";
    let page = i
        .max_results
        .map_or(IMAGES_PAGE, |n| (n.max(1) as usize).min(IMAGES_PAGE));
    let from = match i.next_token.as_deref() {
        Some(t) => base64::engine::general_purpose::STANDARD
            .decode(t)
            .ok()
            .and_then(|b| b.try_into().ok().map(i64::from_be_bytes))
            .filter(|&n| n >= start && n <= end)
            .ok_or_else(|| invalid(format!("NextToken {t} is not valid.")))?,
        None => start,
    };
    let times: Vec<i64> = (0..)
        .map(|k| from + k * interval)
        .take_while(|&t| t <= end)
        .take(page + 1)
        .collect();
    let next_token = (times.len() > page)
        .then(|| base64::engine::general_purpose::STANDARD.encode(times[page].to_be_bytes()));
    let store = media.store.clone();
    let width = i.width_pixels.map(|w| w as u32);
    let height = i.height_pixels.map(|h| h as u32);
    let stamps: Vec<i64> = times.into_iter().take(page).collect();
    // Decoding is CPU work: off the async workers.
    let images = tokio::task::spawn_blocking(move || -> Result<Vec<m::Image>> {
        let all = store.fragments();
        let mut cache: HashMap<u64, playback::Fragment> = HashMap::new();
        let mut out = Vec::with_capacity(stamps.len());
        for t in stamps {
            // The fragments around t (a fragment's first frame may come
            // a little before its timestamp).
            let covering: Vec<Fragment> = all
                .iter()
                .filter(|f| {
                    let s = clock(f, producer);
                    s - 1000 <= t && t <= s + f.duration_ms as i64 + 1000
                })
                .copied()
                .collect();
            let mut pfs = Vec::with_capacity(covering.len());
            for f in &covering {
                let pf = match cache.entry(f.offset) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(playback_fragment(&store, f)?)
                    }
                };
                pfs.push(pf.clone());
            }
            let req = playback::image::ImageRequest {
                at_ms: t,
                clock: if producer {
                    playback::image::Clock::Producer
                } else {
                    playback::image::Clock::Server
                },
                format,
                width,
                height,
            };
            out.push(match playback::image::render(&pfs, &req) {
                Ok(bytes) => m::Image {
                    time_stamp: Some(Timestamp(t)),
                    error: None,
                    image_content: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
                },
                Err(e) => m::Image {
                    time_stamp: Some(Timestamp(t)),
                    error: Some(e.aws_value().to_owned()),
                    image_content: None,
                },
            });
        }
        Ok(out)
    })
    .await
    .map_err(|e| VideoError::Internal(e.to_string()))??;
    Ok(m::GetImagesOutput {
        images: Some(images),
        next_token,
    })
}
