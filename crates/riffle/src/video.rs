//! `riffle video put`: uploads a Matroska or WebM file to a Kinesis Video
//! stream through PutMedia the way the producer SDK does: one HTTP/1.1
//! chunked `POST /putMedia`, signed (SigV4, service `kinesisvideo`) over an
//! empty payload, RELATIVE timecodes from a producer start timestamp of
//! now, and the file's Segment and Clusters re-written with unknown sizes
//! so the upload streams. Acknowledgements are read while the upload runs;
//! the command ends when every fragment (cluster) is PERSISTED.
//!
//! The PutMedia client and the signed REST-JSON calls here also serve
//! `riffle bench --phase video`.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use riffle_video::mkv;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Semaphore};

use crate::cli::{VideoArgs, VideoCommand, VideoPutArgs};
use crate::demo::api::ApiError;

/// Clusters sent ahead of their PERSISTED acknowledgement.
const WINDOW: usize = 16;
/// File bytes read at a time.
const READ_CHUNK: usize = 1 << 20;

pub fn run(args: VideoArgs) -> anyhow::Result<()> {
    match args.command {
        VideoCommand::Put(a) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(put(a)),
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Credentials and region requests are signed with: `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, else a test key.
#[derive(Clone, Debug)]
pub(crate) struct Signer {
    access_key: String,
    secret: String,
    token: Option<String>,
    region: String,
}

impl Signer {
    pub(crate) fn from_env(region: &str) -> Signer {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Signer {
            access_key: var("AWS_ACCESS_KEY_ID").unwrap_or_else(|| "test".into()),
            secret: var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|| "test".into()),
            token: var("AWS_SESSION_TOKEN"),
            region: region.to_owned(),
        }
    }

    /// Adds `x-amz-date` (and the session token) to `headers` and returns
    /// the `Authorization` value signing all of them.
    fn sign(&self, path: &str, headers: &mut Vec<(String, String)>, payload_hash: &str) -> String {
        self.sign_post("kinesisvideo", path, headers, payload_hash)
    }

    /// [`Signer::sign`] for a `POST` to any service.
    pub(crate) fn sign_post(
        &self,
        service: &str,
        path: &str,
        headers: &mut Vec<(String, String)>,
        payload_hash: &str,
    ) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        headers.push((
            "x-amz-date".into(),
            riffle_wire::sigv4::format_amz_date(now),
        ));
        if let Some(t) = &self.token {
            headers.push(("x-amz-security-token".into(), t.clone()));
        }
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        riffle_wire::sigv4::sign(
            &riffle_wire::sigv4::Request {
                method: "POST",
                path,
                query: "",
                headers: &pairs,
                body: &[],
            },
            &self.access_key,
            &self.secret,
            &self.region,
            service,
            now,
            payload_hash,
        )
    }
}

/// `host:port` of an `http://` endpoint URL.
pub(crate) fn authority(endpoint: &str) -> anyhow::Result<String> {
    let rest = endpoint.strip_prefix("http://").ok_or_else(|| {
        anyhow!("the endpoint {endpoint} is not an http:// URL (https is not supported here)")
    })?;
    let auth = rest.split(['/', '?']).next().unwrap_or("");
    if auth.is_empty() {
        bail!("the endpoint {endpoint} names no host");
    }
    if auth
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        Ok(auth.to_owned())
    } else {
        Ok(format!("{auth}:80"))
    }
}

async fn connect<B>(authority: &str) -> anyhow::Result<http1::SendRequest<B>>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tcp = tokio::net::TcpStream::connect(authority)
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    tcp.set_nodelay(true)?;
    let (send, conn) = http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}

/// The AWS error of a failed response: `x-amzn-ErrorType` or `__type`, and
/// `message`.
fn api_error(operation: &str, status: u16, error_type: Option<&str>, body: &[u8]) -> ApiError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let kind = error_type
        .or_else(|| v["__type"].as_str())
        .unwrap_or("UnknownError");
    let kind = kind.split(':').next().unwrap_or(kind);
    let kind = kind.rsplit('#').next().unwrap_or(kind).to_owned();
    let message = v["message"]
        .as_str()
        .or_else(|| v["Message"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    ApiError {
        operation: operation.to_owned(),
        kind,
        message,
        status,
    }
}

/// Calls a Kinesis Video REST-JSON operation (`POST /<path>`), signed;
/// returns the answer or an [`ApiError`].
pub(crate) async fn call(
    authority: &str,
    signer: &Signer,
    operation: &str,
    path: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let body = Bytes::from(serde_json::to_vec(body)?);
    let mut headers = vec![
        ("host".to_owned(), authority.to_owned()),
        ("content-type".to_owned(), "application/json".to_owned()),
    ];
    let auth = signer.sign(path, &mut headers, &riffle_wire::sigv4::sha256_hex(&body));
    let mut req = http::Request::post(path);
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    let req = req.header("authorization", auth).body(Full::new(body))?;
    let mut send = connect(authority).await?;
    let resp = send
        .send_request(req)
        .await
        .with_context(|| format!("calling {operation}"))?;
    let status = resp.status().as_u16();
    let error_type = resp
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = resp.into_body().collect().await?.to_bytes();
    if !(200..300).contains(&status) {
        return Err(api_error(operation, status, error_type.as_deref(), &bytes).into());
    }
    if bytes.is_empty() {
        return Ok(json!({}));
    }
    Ok(serde_json::from_slice(&bytes)?)
}

/// Whether `e` is the AWS error `kind`.
pub(crate) fn is_error(e: &anyhow::Error, kind: &str) -> bool {
    e.downcast_ref::<ApiError>().is_some_and(|a| a.kind == kind)
}

/// Polls DescribeStream until the stream is ACTIVE; returns its StreamInfo.
pub(crate) async fn wait_active(
    authority: &str,
    signer: &Signer,
    stream: &str,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v = call(
            authority,
            signer,
            "DescribeStream",
            "/describeStream",
            &json!({ "StreamName": stream }),
        )
        .await?;
        if v["StreamInfo"]["Status"] == "ACTIVE" {
            return Ok(v["StreamInfo"].clone());
        }
        if Instant::now() > deadline {
            bail!("stream {stream} did not become ACTIVE");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A request body fed from a channel: sent chunked, as it is produced. An
/// `Err` aborts the request (the connection closes without the final
/// chunk, so the server does not take a partial upload as complete).
pub(crate) struct ChannelBody(mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.0.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }
}

/// One acknowledgement line.
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct Ack {
    #[serde(rename = "EventType")]
    pub event: String,
    #[serde(rename = "FragmentTimecode", default)]
    pub timecode: Option<u64>,
    #[serde(rename = "FragmentNumber", default)]
    pub number: Option<String>,
    #[serde(rename = "ErrorId", default)]
    pub error_id: Option<u64>,
    #[serde(rename = "ErrorCode", default)]
    pub error_code: Option<String>,
}

/// The acknowledgements of an upload, read as they arrive.
pub(crate) struct Acks {
    body: hyper::body::Incoming,
    buf: Vec<u8>,
}

impl Acks {
    /// The next acknowledgement; `None` when the response ended.
    pub(crate) async fn next(&mut self) -> anyhow::Result<Option<Ack>> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let ack = serde_json::from_slice(&line).with_context(|| {
                    format!(
                        "an acknowledgement that is not JSON: {}",
                        String::from_utf8_lossy(&line).trim()
                    )
                })?;
                return Ok(Some(ack));
            }
            match self.body.frame().await {
                None => {
                    if !self.buf.iter().all(u8::is_ascii_whitespace) {
                        self.buf.push(b'\n');
                        continue;
                    }
                    return Ok(None);
                }
                Some(Err(e)) => return Err(anyhow!("reading acknowledgements: {e}")),
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        self.buf.extend_from_slice(&d);
                    }
                }
            }
        }
    }
}

/// An open PutMedia upload: its body (send chunks; drop to end it) and its
/// acknowledgements.
pub(crate) struct Upload {
    pub body: mpsc::Sender<Result<Bytes, std::io::Error>>,
    pub acks: Acks,
}

/// Opens `POST /putMedia` for `stream` with RELATIVE timecodes counted from
/// `start` (seconds since the epoch); returns once the server answered 200,
/// or the AWS error it answered.
pub(crate) async fn open_put_media(
    authority: &str,
    signer: &Signer,
    stream: &str,
    start: f64,
) -> anyhow::Result<Upload> {
    let mut headers = vec![
        ("host".to_owned(), authority.to_owned()),
        ("accept".to_owned(), "*/*".to_owned()),
        ("connection".to_owned(), "keep-alive".to_owned()),
        ("transfer-encoding".to_owned(), "chunked".to_owned()),
        (
            "user-agent".to_owned(),
            format!("riffle/{}", env!("CARGO_PKG_VERSION")),
        ),
        (
            "x-amzn-fragment-acknowledgment-required".to_owned(),
            "1".to_owned(),
        ),
        (
            "x-amzn-fragment-timecode-type".to_owned(),
            "RELATIVE".to_owned(),
        ),
        (
            "x-amzn-producer-start-timestamp".to_owned(),
            format!("{start:.3}"),
        ),
        ("x-amzn-stream-name".to_owned(), stream.to_owned()),
    ];
    // The producer SDK signs the streamed body as an empty payload.
    let auth = signer.sign(
        "/putMedia",
        &mut headers,
        &riffle_wire::sigv4::sha256_hex(b""),
    );
    let (tx, rx) = mpsc::channel(8);
    let mut req = http::Request::post("/putMedia");
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    let req = req.header("authorization", auth).body(ChannelBody(rx))?;
    let mut send = connect::<ChannelBody>(authority).await?;
    let resp = send.send_request(req).await.context("sending PutMedia")?;
    let status = resp.status().as_u16();
    if status != 200 {
        let error_type = resp
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = resp.into_body().collect().await?.to_bytes();
        return Err(api_error("PutMedia", status, error_type.as_deref(), &bytes).into());
    }
    Ok(Upload {
        body: tx,
        acks: Acks {
            body: resp.into_body(),
            buf: Vec::new(),
        },
    })
}

/// The header an upload begins with: an EBML header, a Segment of unknown
/// size and the stream's Info and Tracks.
pub(crate) fn upload_header(info_and_tracks: &[u8]) -> Vec<u8> {
    let mut out = mkv::ebml_header();
    mkv::put_unknown_size(&mut out, mkv::id::SEGMENT);
    out.extend_from_slice(info_and_tracks);
    out
}

/// The length of the variable-size integer at the start of `b`.
fn vint_len(b: &[u8]) -> Option<usize> {
    let len = b.first()?.leading_zeros() as usize + 1;
    (len <= 8 && b.len() >= len).then_some(len)
}

/// The relative timecode of a SimpleBlock or Block body.
fn block_relative(b: &[u8]) -> Option<i16> {
    let n = vint_len(b)?;
    Some(i16::from_be_bytes([*b.get(n)?, *b.get(n + 1)?]))
}

/// A cluster's children (its body) cut where each block after the first
/// begins; each piece with the time of its first block (TimecodeScale
/// units), so a live upload can send every frame at its time.
fn pieces(timecode: u64, body: &Bytes) -> anyhow::Result<Vec<(i64, Bytes)>> {
    let mut cuts: Vec<(usize, i64)> = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let h =
            mkv::read_header(&body[pos..])?.ok_or_else(|| anyhow!("a truncated cluster child"))?;
        let end = pos + h.len + h.size as usize;
        let child = &body[pos + h.len..end.min(body.len())];
        let relative = match h.id {
            mkv::id::SIMPLE_BLOCK => block_relative(child),
            mkv::id::BLOCK_GROUP => mkv::children(child)
                .filter_map(Result::ok)
                .find(|(id, _)| *id == mkv::id::BLOCK)
                .and_then(|(_, b)| block_relative(b)),
            _ => None,
        };
        if let Some(rel) = relative {
            let at = timecode as i64 + rel as i64;
            if cuts.is_empty() {
                cuts.push((0, at));
            } else {
                cuts.push((pos, at));
            }
        }
        pos = end;
    }
    if cuts.is_empty() {
        cuts.push((0, timecode as i64));
    }
    let mut out = Vec::with_capacity(cuts.len());
    for (i, &(start, at)) in cuts.iter().enumerate() {
        let end = cuts.get(i + 1).map_or(body.len(), |c| c.0);
        out.push((at, body.slice(start..end)));
    }
    Ok(out)
}

/// The header of a Cluster of unknown size.
pub(crate) fn cluster_start() -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    mkv::put_unknown_size(&mut out, mkv::id::CLUSTER);
    out
}

/// Whether a file is MP4 (it begins with an `ftyp` box).
fn is_mp4(path: &Path) -> anyhow::Result<bool> {
    let mut head = [0u8; 8];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(n == 8 && &head[4..8] == b"ftyp")
}

/// Refuses what is neither Matroska nor MP4.
fn check_matroska(head: &[u8], path: &Path) -> anyhow::Result<()> {
    if head.len() >= 8 && &head[4..8] == b"ftyp" {
        return Ok(());
    }
    if !head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        bail!(
            "{} is neither Matroska, WebM nor MP4 (it begins with neither an EBML header nor an ftyp box)",
            path.display()
        );
    }
    Ok(())
}

/// What the writer shares with the acknowledgement reader.
struct Shared {
    /// When each cluster (by timecode) was completed on the wire: its
    /// last byte, i.e. when the next cluster began or the upload ended.
    completed: Mutex<HashMap<u64, Instant>>,
    window: Semaphore,
}

impl Shared {
    fn complete(&self, timecode: Option<u64>) {
        if let Some(tc) = timecode {
            self.completed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(tc, Instant::now());
        }
    }
}

async fn send(
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
    b: impl Into<Bytes>,
) -> anyhow::Result<()> {
    tx.send(Ok(b.into()))
        .await
        .map_err(|_| anyhow!("the server closed the upload"))
}

/// Demuxes the file and writes the upload; returns the clusters sent.
async fn write_file(
    path: &Path,
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
    realtime: bool,
    shared: &Shared,
) -> anyhow::Result<u64> {
    let mut file: Box<dyn Read + Send> = if is_mp4(path)? {
        // MP4 is remuxed (in memory, no re-encoding) to the Matroska
        // PutMedia takes.
        let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let mkv = tokio::task::spawn_blocking(move || riffle_video::mp4::to_matroska(&data))
            .await
            .map_err(|e| anyhow!("{e}"))?
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        Box::new(std::io::Cursor::new(mkv))
    } else {
        Box::new(std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?)
    };
    let mut demux = mkv::Demuxer::new(riffle_video::ingest::MAX_FRAGMENT_BYTES + (1 << 20));
    let mut buf = vec![0u8; READ_CHUNK];
    let mut clusters = 0u64;
    let mut scale = mkv::DEFAULT_TIMECODE_SCALE;
    let mut has_header = false;
    let mut previous: Option<u64> = None;
    // The wall-clock time of the first cluster's timecode.
    let mut clock: Option<(Instant, i64)> = None;
    let bad = |e: mkv::MkvError| anyhow!("{}: {e}", path.display());
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        let events = if n == 0 {
            demux.finish().map_err(bad)?
        } else {
            demux.push(&buf[..n]).map_err(bad)?
        };
        for ev in events {
            match ev {
                mkv::Event::Header(h) => {
                    scale = h.timecode_scale;
                    has_header = true;
                    send(tx, upload_header(&h.raw)).await?;
                }
                // The file's own tags are not fragment metadata.
                mkv::Event::Tags(_) | mkv::Event::ClusterStart { .. } => {}
                mkv::Event::Cluster { timecode, body } => {
                    if !has_header {
                        bail!("{}: a Cluster before the Tracks", path.display());
                    }
                    shared
                        .window
                        .acquire()
                        .await
                        .map_err(|_| anyhow!("the upload ended"))?
                        .forget();
                    let start = cluster_start();
                    if !realtime {
                        let mut whole = start;
                        whole.extend_from_slice(&body);
                        shared.complete(previous);
                        send(tx, whole).await?;
                    } else {
                        for (i, (at, piece)) in pieces(timecode, &body)?.into_iter().enumerate() {
                            let (t0, base) = *clock.get_or_insert((Instant::now(), at));
                            let offset_ns = (at - base).max(0) as u128 * scale as u128;
                            let due =
                                t0 + Duration::from_nanos(offset_ns.min(u64::MAX as u128) as u64);
                            tokio::time::sleep_until(due.into()).await;
                            if i == 0 {
                                let mut first = start.clone();
                                first.extend_from_slice(&piece);
                                shared.complete(previous);
                                send(tx, first).await?;
                            } else {
                                send(tx, piece).await?;
                            }
                        }
                    }
                    previous = Some(timecode);
                    clusters += 1;
                }
            }
        }
        if n == 0 {
            break;
        }
    }
    if clusters == 0 {
        bail!("{}: no clusters to upload", path.display());
    }
    shared.complete(previous);
    Ok(clusters)
}

async fn put(args: VideoPutArgs) -> anyhow::Result<()> {
    let path = args.file.as_path();
    let mut head = [0u8; 12];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .with_context(|| format!("reading {}", path.display()))?;
    check_matroska(&head[..n], path)?;
    let authority = authority(&args.endpoint)?;
    let signer = Signer::from_env(&args.region);
    let stream = args.stream.as_str();
    let info = match call(
        &authority,
        &signer,
        "DescribeStream",
        "/describeStream",
        &json!({ "StreamName": stream }),
    )
    .await
    {
        Ok(v) if v["StreamInfo"]["Status"] == "ACTIVE" => v["StreamInfo"].clone(),
        Ok(_) => wait_active(&authority, &signer, stream).await?,
        Err(e) if args.create && is_error(&e, "ResourceNotFoundException") => {
            call(
                &authority,
                &signer,
                "CreateStream",
                "/createStream",
                &json!({ "StreamName": stream, "DataRetentionInHours": 24 }),
            )
            .await?;
            println!("created stream {stream} (DataRetentionInHours 24)");
            wait_active(&authority, &signer, stream).await?
        }
        Err(e) => return Err(e),
    };
    let retains = info["DataRetentionInHours"].as_u64().unwrap_or(0) > 0;
    // Where PutMedia goes, as the SDK asks first.
    let data = call(
        &authority,
        &signer,
        "GetDataEndpoint",
        "/getDataEndpoint",
        &json!({ "StreamName": stream, "APIName": "PUT_MEDIA" }),
    )
    .await?;
    let media_authority = match data["DataEndpoint"].as_str() {
        Some(url) => crate::video::authority(url).unwrap_or_else(|_| authority.clone()),
        None => authority.clone(),
    };
    if !retains {
        println!(
            "stream {stream} keeps no data (DataRetentionInHours 0): fragments are RECEIVED, never PERSISTED"
        );
    }
    let started = Instant::now();
    let upload = open_put_media(&media_authority, &signer, stream, now_secs()).await?;
    let Upload { body, mut acks } = upload;
    let shared = Arc::new(Shared {
        completed: Mutex::new(HashMap::new()),
        window: Semaphore::new(WINDOW),
    });
    let writer = {
        let (shared, path, realtime) = (shared.clone(), args.file.clone(), args.realtime);
        tokio::spawn(async move {
            let r = write_file(&path, &body, realtime, &shared).await;
            if r.is_err() {
                let _ = body
                    .send(Err(std::io::Error::other("the upload was abandoned")))
                    .await;
            }
            r
        })
    };
    let mut writer = Some(writer);
    let mut sent: Option<u64> = None;
    let mut done = 0u64;
    let wanted = if retains { "PERSISTED" } else { "RECEIVED" };
    loop {
        let ack = tokio::select! {
            biased;
            r = async { writer.as_mut().expect("running").await }, if writer.is_some() => {
                writer = None;
                sent = Some(r.map_err(|e| anyhow!("{e}"))??);
                continue;
            }
            ack = acks.next() => ack,
        };
        let ack = match ack {
            Ok(a) => a,
            Err(e) => {
                // An upload the writer abandoned ends the response too:
                // the writer's error says why.
                if let Some(w) = writer.take() {
                    if let Ok(Ok(Err(we))) = tokio::time::timeout(Duration::from_secs(1), w).await {
                        return Err(we);
                    }
                }
                return Err(e);
            }
        };
        let Some(ack) = ack else { break };
        match ack.event.as_str() {
            "ERROR" => bail!(
                "PutMedia refused the fragment at timecode {}: ErrorId {} {}",
                ack.timecode
                    .map_or_else(|| "(none)".to_owned(), |t| t.to_string()),
                ack.error_id.unwrap_or(0),
                ack.error_code.as_deref().unwrap_or("")
            ),
            e if e == wanted => {
                let tc = ack.timecode.unwrap_or(0);
                let at = shared
                    .completed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&tc);
                let ms = at.map_or(0.0, |t| t.elapsed().as_secs_f64() * 1000.0);
                println!(
                    "fragment {} timecode {tc} {} {ms:.1} ms after its last byte",
                    ack.number.as_deref().unwrap_or("?"),
                    wanted.to_ascii_lowercase()
                );
                done += 1;
                shared.window.add_permits(1);
            }
            _ => {}
        }
    }
    // A writer waiting for acknowledgements that will not come stops.
    shared.window.close();
    let sent = match (sent, writer) {
        (Some(n), _) => n,
        (None, Some(w)) => w.await.map_err(|e| anyhow!("{e}"))??,
        (None, None) => 0,
    };
    if done < sent {
        bail!(
            "the upload ended with {done} of {sent} fragments {}",
            wanted.to_ascii_lowercase()
        );
    }
    println!(
        "{done} fragments of {} {} in stream {stream} in {:.2} s",
        path.display(),
        wanted.to_ascii_lowercase(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simple_block(rel: i16, key: bool, data: &[u8]) -> Vec<u8> {
        let mut b = vec![0x81];
        b.extend_from_slice(&rel.to_be_bytes());
        b.push(if key { 0x80 } else { 0 });
        b.extend_from_slice(data);
        let mut out = Vec::new();
        mkv::put_element(&mut out, mkv::id::SIMPLE_BLOCK, &b);
        out
    }

    #[test]
    fn a_cluster_is_cut_at_each_block_with_its_time() {
        let mut body = Vec::new();
        mkv::put_uint(&mut body, mkv::id::TIMECODE, 1000);
        let b0 = simple_block(0, true, b"key");
        let b1 = simple_block(40, false, b"p1");
        let mut group = Vec::new();
        let mut block = vec![0x81];
        block.extend_from_slice(&80i16.to_be_bytes());
        block.push(0);
        block.extend_from_slice(b"p2");
        mkv::put_element(&mut group, mkv::id::BLOCK, &block);
        mkv::put_uint(&mut group, mkv::id::BLOCK_DURATION, 40);
        let mut b2 = Vec::new();
        mkv::put_element(&mut b2, mkv::id::BLOCK_GROUP, &group);
        let head_len = body.len();
        body.extend_from_slice(&b0);
        body.extend_from_slice(&b1);
        body.extend_from_slice(&b2);
        let body = Bytes::from(body);
        let got = pieces(1000, &body).unwrap();
        assert_eq!(
            got,
            vec![
                (1000, body.slice(0..head_len + b0.len())),
                (1040, Bytes::from(b1.clone())),
                (1080, Bytes::from(b2.clone())),
            ]
        );
    }

    #[test]
    fn files_that_are_neither_matroska_nor_mp4_are_refused() {
        let p = Path::new("clip.mp4");
        check_matroska(b"\0\0\0\x20ftypisom", p).unwrap();
        let e = check_matroska(b"hello", Path::new("a.txt")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "a.txt is neither Matroska, WebM nor MP4 (it begins with neither an EBML header nor an ftyp box)"
        );
        check_matroska(&[0x1A, 0x45, 0xDF, 0xA3, 0x9F], p).unwrap();
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            authority("http://127.0.0.1:4566").unwrap(),
            "127.0.0.1:4566"
        );
        assert_eq!(authority("http://localhost/x").unwrap(), "localhost:80");
        assert!(authority("https://example.com").is_err());
    }
}
