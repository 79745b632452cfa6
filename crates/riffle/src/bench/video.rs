//! `riffle bench --phase video`: `--video-streams` Kinesis Video streams,
//! each fed by its own PutMedia upload of a synthetic 2 Mbit/s
//! H.264-shaped Matroska stream (1280×720, 25 fps, a 2 s cluster per
//! fragment: one key frame and 49 P frames of random payload, sized for
//! the bitrate) sent live: every frame at its time, for `--duration-secs`.
//! Uploads start spread over one fragment's length, as independent
//! cameras would.
//!
//! It reports PERSISTED latency, measured from when the fragment's last
//! byte was sent (the next cluster's start, or the end of the upload,
//! which is when a receiver can know a cluster of unknown size is whole),
//! fragments/s and MB/s ingested, errors, then checks with ListFragments
//! that every persisted fragment is listed. If the endpoint serves HLS
//! (GetHLSStreamingSessionURL), it also reports how fast one stream's
//! fragments are served as fMP4 segments.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use riffle_video::mkv;
use serde_json::json;

use crate::cli::BenchArgs;
use crate::video::{self as kvs, Signer};

const FPS: u64 = 25;
const FRAME_MS: u64 = 1000 / FPS;
/// Frames per fragment: 2 s.
const FRAGMENT_FRAMES: u64 = 50;
const BITS_PER_SECOND: u64 = 2_000_000;
/// A key frame is this many times the size of a P frame.
const KEY_TO_P: u64 = 10;
/// The avcC (SPS and PPS) of an x264 1280×720 Main profile stream.
const AVCC: [u8; 41] = [
    0x01, 0x4d, 0x40, 0x1f, 0xff, 0xe1, 0x00, 0x19, 0x67, 0x4d, 0x40, 0x1f, 0xd9, 0x00, 0x50, 0x05,
    0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x83, 0x24,
    0x80, 0x01, 0x00, 0x05, 0x68, 0xeb, 0xc3, 0xcb, 0x20,
];
/// Random bytes frames take their payload from.
const POOL_BYTES: usize = 4 << 20;
/// How long an upload may take to be acknowledged after it ended.
const DRAIN: Duration = Duration::from_secs(30);

/// (key frame, P frame) sizes in bytes for the bitrate.
fn frame_sizes() -> (usize, usize) {
    let fragment = BITS_PER_SECOND / 8 * FRAGMENT_FRAMES * FRAME_MS / 1000;
    let p = fragment / (KEY_TO_P + FRAGMENT_FRAMES - 1);
    ((p * KEY_TO_P) as usize, p as usize)
}

/// The upload's header: one H.264 track, timecodes in ms.
fn stream_header() -> Vec<u8> {
    use mkv::id;
    let mut info = Vec::new();
    mkv::put_uint(&mut info, id::TIMECODE_SCALE, mkv::DEFAULT_TIMECODE_SCALE);
    mkv::put_element(&mut info, id::MUXING_APP, b"riffle-bench");
    mkv::put_element(&mut info, id::WRITING_APP, b"riffle-bench");
    let mut video = Vec::new();
    mkv::put_uint(&mut video, id::PIXEL_WIDTH, 1280);
    mkv::put_uint(&mut video, id::PIXEL_HEIGHT, 720);
    let mut entry = Vec::new();
    mkv::put_uint(&mut entry, id::TRACK_NUMBER, 1);
    mkv::put_uint(&mut entry, id::TRACK_UID, 1);
    mkv::put_uint(&mut entry, id::TRACK_TYPE, 1);
    mkv::put_element(&mut entry, id::CODEC_ID, b"V_MPEG4/ISO/AVC");
    mkv::put_uint(&mut entry, id::DEFAULT_DURATION, FRAME_MS * 1_000_000);
    mkv::put_element(&mut entry, id::CODEC_PRIVATE, &AVCC);
    mkv::put_element(&mut entry, id::VIDEO, &video);
    let mut tracks = Vec::new();
    mkv::put_element(&mut tracks, id::TRACK_ENTRY, &entry);
    let mut raw = Vec::new();
    mkv::put_element(&mut raw, id::INFO, &info);
    mkv::put_element(&mut raw, id::TRACKS, &tracks);
    kvs::upload_header(&raw)
}

/// xorshift64*: payload offsets and the random pool.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn random_pool(seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    let mut out = Vec::with_capacity(POOL_BYTES);
    while out.len() < POOL_BYTES {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out
}

/// Appends a SimpleBlock of `size` bytes of frame: one length-prefixed
/// NAL unit (IDR slice or non-IDR slice) of random payload.
fn put_frame(out: &mut Vec<u8>, relative_ms: i16, key: bool, size: usize, payload: &[u8]) {
    mkv::put_id(out, mkv::id::SIMPLE_BLOCK);
    mkv::put_size(out, 4 + size as u64);
    out.push(0x81);
    out.extend_from_slice(&relative_ms.to_be_bytes());
    out.push(if key { 0x80 } else { 0 });
    out.extend_from_slice(&(size as u32 - 4).to_be_bytes());
    out.push(if key { 0x65 } else { 0x41 });
    out.extend_from_slice(&payload[..size - 5]);
}

/// What one upload saw.
#[derive(Default)]
struct Outcome {
    stream: String,
    sent_fragments: u64,
    persisted: Vec<String>,
    latency_us: Vec<u64>,
    bytes: u64,
    errors: u64,
    first_error: Option<String>,
    /// When the upload opened and when its last byte went out.
    started: Option<Instant>,
    ended: Option<Instant>,
}

impl Outcome {
    fn error(&mut self, e: impl std::fmt::Display) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(format!("{}: {e}", self.stream));
        }
    }
}

/// One live upload of `frames` frames, starting after `delay`.
async fn upload(
    authority: String,
    signer: Signer,
    stream: String,
    pool: Arc<Vec<u8>>,
    frames: u64,
    delay: Duration,
    seed: u64,
) -> Outcome {
    let mut out = Outcome {
        stream: stream.clone(),
        ..Outcome::default()
    };
    tokio::time::sleep(delay).await;
    let up = match kvs::open_put_media(&authority, &signer, &stream, kvs::now_secs()).await {
        Ok(u) => u,
        Err(e) => {
            out.error(e);
            return out;
        }
    };
    let kvs::Upload { body, mut acks } = up;
    out.started = Some(Instant::now());
    let header = stream_header();
    out.bytes += header.len() as u64;
    if body.send(Ok(Bytes::from(header))).await.is_err() {
        out.error("the server closed the upload");
        return out;
    }
    let (key_size, p_size) = frame_sizes();
    let mut rng = Rng(seed | 1);
    let mut body = Some(body);
    // When each fragment (by timecode) was completed on the wire.
    let mut completed = std::collections::HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(FRAME_MS));
    let mut i = 0u64;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(frames * FRAME_MS) + DRAIN;
    loop {
        tokio::select! {
            _ = tick.tick(), if body.is_some() => {
                let in_fragment = i % FRAGMENT_FRAMES;
                let fragment_tc = (i - in_fragment) * FRAME_MS;
                let key = in_fragment == 0;
                let size = if key { key_size } else { p_size };
                let mut chunk = Vec::with_capacity(size + 32);
                if key {
                    chunk.extend_from_slice(&kvs::cluster_start());
                    mkv::put_uint(&mut chunk, mkv::id::TIMECODE, fragment_tc);
                    if i > 0 {
                        completed.insert(fragment_tc - FRAGMENT_FRAMES * FRAME_MS, Instant::now());
                    }
                }
                let offset = (rng.next() % (pool.len() - key_size) as u64) as usize;
                put_frame(&mut chunk, (in_fragment * FRAME_MS) as i16, key, size, &pool[offset..]);
                out.bytes += chunk.len() as u64;
                let sender = body.as_ref().expect("open");
                if sender.send(Ok(Bytes::from(chunk))).await.is_err() {
                    out.error("the server closed the upload");
                    break;
                }
                i += 1;
                if i == frames {
                    // Ending the upload ends its last fragment.
                    body = None;
                    let now = Instant::now();
                    completed.insert(fragment_tc, now);
                    out.ended = Some(now);
                    out.sent_fragments = frames.div_ceil(FRAGMENT_FRAMES);
                }
            }
            ack = acks.next() => match ack {
                Ok(Some(a)) => match a.event.as_str() {
                    "PERSISTED" => {
                        if let Some(at) = a.timecode.and_then(|tc| completed.remove(&tc)) {
                            out.latency_us.push(at.elapsed().as_micros() as u64);
                        }
                        out.persisted.push(a.number.unwrap_or_default());
                    }
                    "ERROR" => out.error(format!(
                        "ERROR acknowledgement {} {} at timecode {:?}",
                        a.error_id.unwrap_or(0),
                        a.error_code.unwrap_or_default(),
                        a.timecode
                    )),
                    _ => {}
                },
                Ok(None) => break,
                Err(e) => {
                    out.error(e);
                    break;
                }
            },
            _ = tokio::time::sleep_until(deadline) => {
                out.error("acknowledgements did not end in time");
                break;
            }
        }
    }
    if out.ended.is_none() {
        out.ended = Some(Instant::now());
        out.sent_fragments = i.div_ceil(FRAGMENT_FRAMES);
    }
    out
}

/// The `p`th quantile of sorted µs samples, in ms.
fn quantile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)] as f64 / 1000.0
}

/// Every fragment number ListFragments gives for `stream`.
async fn listed(authority: &str, signer: &Signer, stream: &str) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = json!({ "StreamName": stream, "MaxResults": 1000 });
        if let Some(t) = &token {
            req["NextToken"] = json!(t);
        }
        let v = kvs::call(authority, signer, "ListFragments", "/listFragments", &req).await?;
        for f in v["Fragments"].as_array().into_iter().flatten() {
            if let Some(n) = f["FragmentNumber"].as_str() {
                out.push(n.to_owned());
            }
        }
        match v["NextToken"].as_str() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => return Ok(out),
        }
    }
}

pub(super) async fn video_phase(args: &BenchArgs) -> anyhow::Result<()> {
    let authority = kvs::authority(&args.endpoint)?;
    let signer = Signer::from_env("us-east-1");
    let n = args.video_streams.max(1);
    let prefix = format!(
        "bench-video-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    println!(
        "riffle bench → {}: {n} Kinesis Video streams {prefix}-*, one live PutMedia upload each for {} s",
        args.endpoint, args.duration_secs
    );
    // Create the streams, a few at a time.
    let mut arns = Vec::with_capacity(n);
    for batch in names.chunks(32) {
        let mut tasks = Vec::new();
        for name in batch {
            let (authority, signer, name) = (authority.clone(), signer.clone(), name.clone());
            tasks.push(tokio::spawn(async move {
                let v = kvs::call(
                    &authority,
                    &signer,
                    "CreateStream",
                    "/createStream",
                    &json!({
                        "StreamName": name,
                        "DataRetentionInHours": 24,
                        "MediaType": "video/h264",
                    }),
                )
                .await?;
                kvs::wait_active(&authority, &signer, &name).await?;
                anyhow::Ok(v["StreamARN"].as_str().unwrap_or_default().to_owned())
            }));
        }
        for t in tasks {
            arns.push(t.await.map_err(|e| anyhow!("{e}"))??);
        }
    }
    let pool = Arc::new(random_pool(0x5EED_F00D));
    let frames = ((args.duration_secs * FPS as f64).round() as u64).max(1);
    let first_put = kvs::now_secs();
    let mut tasks = Vec::with_capacity(n);
    for (i, name) in names.iter().enumerate() {
        // Spread over one fragment's length.
        let delay = Duration::from_millis(FRAGMENT_FRAMES * FRAME_MS * i as u64 / n as u64);
        tasks.push(tokio::spawn(upload(
            authority.clone(),
            signer.clone(),
            name.clone(),
            pool.clone(),
            frames,
            delay,
            i as u64 + 1,
        )));
    }
    let mut outcomes = Vec::with_capacity(n);
    for t in tasks {
        outcomes.push(t.await.map_err(|e| anyhow!("{e}"))?);
    }
    // Each upload's rate over its own time, summed: the uploads start
    // spread over a fragment's length.
    let rate = |f: &dyn Fn(&Outcome) -> f64| -> f64 {
        outcomes
            .iter()
            .filter_map(|o| {
                let secs = o.ended?.duration_since(o.started?).as_secs_f64();
                (secs > 0.0).then(|| f(o) / secs)
            })
            .sum()
    };
    let fragments_per_sec = rate(&|o| o.persisted.len() as f64);
    let bytes_per_sec = rate(&|o| o.bytes as f64);
    let sent: u64 = outcomes.iter().map(|o| o.sent_fragments).sum();
    let persisted: usize = outcomes.iter().map(|o| o.persisted.len()).sum();
    let errors: u64 = outcomes.iter().map(|o| o.errors).sum();
    let mut lat: Vec<u64> = outcomes
        .iter()
        .flat_map(|o| o.latency_us.iter().copied())
        .collect();
    lat.sort_unstable();
    println!(
        "video: {n} PutMedia streams × {} Mbit/s H.264-shaped ({} s fragments at {FPS} fps) for {} s: {persisted} fragments persisted of {sent} sent = {:.1} fragments/s, {:.2} MB/s ingested; {errors} errors",
        BITS_PER_SECOND / 1_000_000,
        FRAGMENT_FRAMES * FRAME_MS / 1000,
        args.duration_secs,
        fragments_per_sec,
        bytes_per_sec / 1e6,
    );
    println!(
        "video PERSISTED latency (from the fragment's last byte sent), {} samples: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lat.len(),
        quantile(&lat, 0.5),
        quantile(&lat, 0.95),
        quantile(&lat, 0.99),
        lat.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    if let Some(e) = outcomes.iter().find_map(|o| o.first_error.as_deref()) {
        println!("video first error: {e}");
    }

    // Every persisted fragment must be listed.
    let (mut listed_total, mut lost) = (0usize, 0usize);
    for o in &outcomes {
        let have: HashSet<String> = listed(&authority, &signer, &o.stream)
            .await?
            .into_iter()
            .collect();
        listed_total += have.len();
        lost += o.persisted.iter().filter(|n| !have.contains(*n)).count();
    }
    println!(
        "video verify: {persisted} persisted, {listed_total} listed by ListFragments, {lost} lost"
    );

    let last_put = kvs::now_secs();
    match hls_rate(
        &authority,
        &signer,
        &names[0],
        first_put - 1.0,
        // Every upload has ended: the range's end is in the past, as
        // SERVER_TIMESTAMP selectors need (a second back, so rounding to
        // milliseconds never puts it ahead of the server's clock).
        last_put - 1.0,
    )
    .await
    {
        Ok(Some(report)) => println!("{report}"),
        Ok(None) => println!("HLS: not available"),
        Err(e) => println!("HLS: failed: {e:#}"),
    }

    if !args.keep {
        for arn in arns.iter().filter(|a| !a.is_empty()) {
            let _ = kvs::call(
                &authority,
                &signer,
                "DeleteStream",
                "/deleteStream",
                &json!({ "StreamARN": arn }),
            )
            .await;
        }
    }
    if lost > 0 {
        bail!("{lost} persisted fragments are not listed");
    }
    Ok(())
}

/// `url` split into `host:port` and path with query.
fn split_url(url: &str) -> anyhow::Result<(String, String)> {
    let authority = kvs::authority(url)?;
    let rest = url.trim_start_matches("http://");
    let path = rest.find('/').map_or("/", |i| &rest[i..]).to_owned();
    Ok((authority, path))
}

/// `reference` (a playlist line) resolved against the URL it came from.
fn resolve(base: &str, reference: &str) -> String {
    if reference.starts_with("http://") || reference.starts_with("https://") {
        return reference.to_owned();
    }
    let base = base.split('?').next().unwrap_or(base);
    if reference.starts_with('/') {
        let rest = base.trim_start_matches("http://");
        let host = rest.split('/').next().unwrap_or(rest);
        return format!("http://{host}{reference}");
    }
    match base.rfind('/') {
        Some(i) => format!("{}{reference}", &base[..=i]),
        None => reference.to_owned(),
    }
}

async fn get(url: &str) -> anyhow::Result<(u16, Bytes)> {
    let (authority, path) = split_url(url)?;
    let tcp = tokio::net::TcpStream::connect(&authority).await?;
    tcp.set_nodelay(true)?;
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::get(path)
        .header("host", &authority)
        .body(Empty::<Bytes>::new())?;
    let resp = send.send_request(req).await?;
    let status = resp.status().as_u16();
    Ok((status, resp.into_body().collect().await?.to_bytes()))
}

/// The URIs of a playlist (its non-tag lines).
fn uris(playlist: &str) -> Vec<&str> {
    playlist
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// HLS serving rate: GetHLSStreamingSessionURL (ON_DEMAND over the
/// ingested range) for `stream`, its media playlist, then its
/// getMP4MediaFragment.mp4 URLs fetched by 8 concurrent readers for 3 s.
/// `None` when the endpoint does not serve HLS.
async fn hls_rate(
    authority: &str,
    signer: &Signer,
    stream: &str,
    from: f64,
    to: f64,
) -> anyhow::Result<Option<String>> {
    const READERS: usize = 8;
    const FOR: Duration = Duration::from_secs(3);
    let session = kvs::call(
        authority,
        signer,
        "GetHLSStreamingSessionURL",
        "/getHLSStreamingSessionURL",
        &json!({
            "StreamName": stream,
            "PlaybackMode": "ON_DEMAND",
            "ContainerFormat": "FRAGMENTED_MP4",
            "HLSFragmentSelector": {
                "FragmentSelectorType": "SERVER_TIMESTAMP",
                "TimestampRange": { "StartTimestamp": from, "EndTimestamp": to },
            },
        }),
    )
    .await;
    let session = match session {
        Ok(v) => v,
        Err(e)
            if kvs::is_error(&e, "UnsupportedOperationException")
                || e.downcast_ref::<crate::demo::api::ApiError>()
                    .is_some_and(|a| a.status == 404) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let url = session["HLSStreamingSessionURL"]
        .as_str()
        .ok_or_else(|| anyhow!("no HLSStreamingSessionURL in {session}"))?
        .to_owned();
    let (status, master) = get(&url).await?;
    if status == 404 {
        return Ok(None);
    }
    let master = String::from_utf8_lossy(&master).into_owned();
    let media_url = if master.contains("#EXTINF") {
        url.clone()
    } else {
        let first = uris(&master)
            .first()
            .map(|u| resolve(&url, u))
            .ok_or_else(|| anyhow!("a master playlist without a media playlist"))?;
        first
    };
    let (status, media) = get(&media_url).await?;
    if status != 200 {
        bail!("the media playlist answered HTTP {status}");
    }
    let media = String::from_utf8_lossy(&media).into_owned();
    let segments: Arc<Vec<String>> = Arc::new(
        uris(&media)
            .into_iter()
            .map(|u| resolve(&media_url, u))
            .collect(),
    );
    if segments.is_empty() {
        bail!("the media playlist lists no segments");
    }
    let (count, bytes, errors) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let started = Instant::now();
    let mut readers = Vec::new();
    for r in 0..READERS {
        let (segments, count, bytes, errors) = (
            segments.clone(),
            count.clone(),
            bytes.clone(),
            errors.clone(),
        );
        readers.push(tokio::spawn(async move {
            let mut k = r;
            while started.elapsed() < FOR {
                match get(&segments[k % segments.len()]).await {
                    Ok((200, b)) => {
                        count.fetch_add(1, Ordering::Relaxed);
                        bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                k += READERS;
            }
        }));
    }
    for r in readers {
        let _ = r.await;
    }
    let secs = started.elapsed().as_secs_f64();
    let (count, bytes) = (count.load(Ordering::Relaxed), bytes.load(Ordering::Relaxed));
    Ok(Some(format!(
        "HLS: {count} getMP4MediaFragment.mp4 segments in {secs:.1} s = {:.0} segments/s, {:.1} MB/s ({READERS} concurrent readers, {} segments in the ON_DEMAND playlist); {} errors",
        count as f64 / secs,
        bytes as f64 / secs / 1e6,
        segments.len(),
        errors.load(Ordering::Relaxed)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_add_up_to_the_bitrate() {
        let (key, p) = frame_sizes();
        let fragment = key + p * (FRAGMENT_FRAMES as usize - 1);
        // 2 s at 2 Mbit/s, within a P frame's rounding.
        assert!((500_000 - p..=500_000).contains(&fragment), "{fragment}");
        assert_eq!(key, p * KEY_TO_P as usize);
    }

    #[test]
    fn the_synthetic_stream_demuxes_as_one_h264_track_and_its_clusters() {
        let pool = random_pool(7);
        let (key, p) = frame_sizes();
        let mut up = stream_header();
        for i in 0..(FRAGMENT_FRAMES + 2) {
            let in_fragment = i % FRAGMENT_FRAMES;
            if in_fragment == 0 {
                up.extend_from_slice(&kvs::cluster_start());
                mkv::put_uint(&mut up, mkv::id::TIMECODE, i * FRAME_MS);
            }
            let size = if in_fragment == 0 { key } else { p };
            put_frame(
                &mut up,
                (in_fragment * FRAME_MS) as i16,
                in_fragment == 0,
                size,
                &pool,
            );
        }
        let mut d = mkv::Demuxer::new(1 << 26);
        let mut events = d.push(&up).unwrap();
        events.extend(d.finish().unwrap());
        let mkv::Event::Header(h) = &events[0] else {
            panic!("{:?}", events[0])
        };
        assert_eq!(h.tracks.len(), 1);
        assert_eq!(h.tracks[0].codec_id, "V_MPEG4/ISO/AVC");
        assert_eq!(h.tracks[0].codec_private.as_ref(), &AVCC);
        assert_eq!((h.tracks[0].width, h.tracks[0].height), (1280, 720));
        let clusters: Vec<mkv::ClusterFrames> = events
            .iter()
            .filter_map(|e| match e {
                mkv::Event::Cluster { body, .. } => Some(mkv::parse_cluster(body).unwrap()),
                _ => None,
            })
            .collect();
        assert_eq!(clusters.len(), 2);
        assert_eq!(clusters[0].frames.len(), FRAGMENT_FRAMES as usize);
        assert_eq!(clusters[1].timecode, 2000);
        let f = &clusters[0].frames;
        assert!(f[0].keyframe && f[1..].iter().all(|x| !x.keyframe));
        assert_eq!(f[0].data.len(), key);
        // One length-prefixed IDR slice NAL unit.
        let mut head = (key as u32 - 4).to_be_bytes().to_vec();
        head.push(0x65);
        assert_eq!(&f[0].data[..5], &head[..]);
        assert_eq!(f[1].data[4], 0x41);
        assert_eq!(f[1].data.len(), p);
        assert_eq!(f[49].timecode, 49 * FRAME_MS as i64);
    }

    #[test]
    fn playlist_references_resolve_against_their_playlist() {
        let base = "http://127.0.0.1:4566/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken=t";
        assert_eq!(
            resolve(
                base,
                "getHLSMediaPlaylist.m3u8?SessionToken=t&TrackNumber=1"
            ),
            "http://127.0.0.1:4566/hls/v1/getHLSMediaPlaylist.m3u8?SessionToken=t&TrackNumber=1"
        );
        assert_eq!(resolve(base, "/x.mp4"), "http://127.0.0.1:4566/x.mp4");
        assert_eq!(resolve(base, "http://h:1/y"), "http://h:1/y");
    }
}
