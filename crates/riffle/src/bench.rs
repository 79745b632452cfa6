//! `riffle bench`: a load generator for any Kinesis endpoint (Riffle,
//! kinesalite, moto, ...). Phases: `write` (PutRecords as fast as the
//! connections allow), `read` (GetRecords draining every shard), `e2e`
//! (records at a fixed rate, put→get latency), and `all` (write, read, verify
//! that every acknowledged record was read back exactly once, then e2e);
//! `mixed` loads many streams at once (see [`mixed`]); `firehose` loads a
//! Firehose delivery stream and measures delivery to S3 (see [`firehose`]);
//! `analytics` runs the streaming SQL engine in process (see [`analytics`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use riffle_wire::{Encoding, Map, Value};

use crate::cli::{BenchArgs, BenchEncoding, BenchPhase};

mod analytics;
mod firehose;
mod mixed;
mod video;

/// One keep-alive HTTP/1.1 connection speaking the Kinesis API.
struct Conn {
    send: http1::SendRequest<Full<Bytes>>,
    host: String,
    encoding: Encoding,
    /// `X-Amz-Target` prefix and SigV4 signing name of the API spoken.
    target: &'static str,
    signing: &'static str,
}

async fn connect(host: &str) -> anyhow::Result<http1::SendRequest<Full<Bytes>>> {
    let tcp = tokio::net::TcpStream::connect(host)
        .await
        .with_context(|| format!("connecting to {host}"))?;
    tcp.set_nodelay(true)?;
    let (send, conn) = http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}

impl Conn {
    async fn open(endpoint: &str, encoding: Encoding) -> anyhow::Result<Conn> {
        Conn::open_api(endpoint, encoding, "Kinesis_20131202", "kinesis").await
    }

    /// A connection speaking another JSON API (`Firehose_20150804`, signed
    /// for `firehose`).
    async fn open_api(
        endpoint: &str,
        encoding: Encoding,
        target: &'static str,
        signing: &'static str,
    ) -> anyhow::Result<Conn> {
        let host = endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let send = connect(&host).await?;
        Ok(Conn {
            send,
            host,
            encoding,
            target,
            signing,
        })
    }

    /// Sends one raw request (S3's REST API: path-style, signed for `s3`
    /// with an unsigned payload); returns the status and body.
    async fn rest(
        &mut self,
        method: http::Method,
        path_and_query: &str,
        body: Bytes,
    ) -> anyhow::Result<(u16, Bytes)> {
        let req = http::Request::builder()
            .method(method)
            .uri(path_and_query)
            .header("host", &self.host)
            .header("x-amz-date", "20260101T000000Z")
            .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
            .header("authorization", auth_header(self.signing))
            .body(Full::new(body))?;
        if self.send.is_closed() || self.send.ready().await.is_err() {
            self.send = connect(&self.host).await?;
        }
        let resp = self.send.send_request(req).await?;
        let status = resp.status().as_u16();
        Ok((status, resp.into_body().collect().await?.to_bytes()))
    }

    /// Calls `op` with a pre-encoded body; returns the raw response body of
    /// a success, or the error's `__type`.
    async fn send_bytes(&mut self, op: &str, body: Bytes) -> anyhow::Result<Bytes> {
        let req = http::Request::post("/")
            .header("host", &self.host)
            .header("content-type", self.encoding.content_type())
            .header("x-amz-target", format!("{}.{op}", self.target))
            .header("x-amz-date", "20260101T000000Z")
            .header("authorization", auth_header(self.signing))
            .body(Full::new(body))?;
        // Servers that close connections after each response (moto) get a new one.
        if self.send.is_closed() || self.send.ready().await.is_err() {
            self.send = connect(&self.host).await?;
        }
        let resp = self.send.send_request(req).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            let v = self.encoding.decode(&bytes).unwrap_or(Value::Null);
            let kind = get_str(&v, "__type").unwrap_or("?").to_owned();
            return Err(anyhow!(ApiError {
                kind,
                status: status.as_u16()
            }));
        }
        Ok(bytes)
    }

    /// Calls `op` with a pre-encoded body; returns the decoded response.
    async fn call_raw(&mut self, op: &str, body: Bytes) -> anyhow::Result<Value> {
        let bytes = self.send_bytes(op, body).await?;
        if bytes.is_empty() {
            return Ok(Value::Map(Map::new()));
        }
        self.encoding.decode(&bytes).map_err(|e| anyhow!("{e}"))
    }

    async fn call(&mut self, op: &str, body: &Value) -> anyhow::Result<Value> {
        let encoded = Bytes::from(self.encoding.encode(body));
        self.call_raw(op, encoded).await
    }
}

/// A well-formed SigV4 header for `signing` (servers without credentials
/// check the form, not the signature).
fn auth_header(signing: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIDBENCH/20260101/us-east-1/{signing}/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000"
    )
}

#[derive(Debug)]
struct ApiError {
    kind: String,
    status: u16,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (HTTP {})", self.kind, self.status)
    }
}

impl std::error::Error for ApiError {}

fn get<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    match v {
        Value::Map(m) => m.get(k),
        _ => None,
    }
}

fn get_str<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    match get(v, k) {
        Some(Value::Str(s)) => Some(s),
        _ => None,
    }
}

fn get_int(v: &Value, k: &str) -> Option<i64> {
    match get(v, k) {
        Some(Value::Int(n)) => Some(*n),
        Some(Value::Float(f)) => Some(*f as i64),
        _ => None,
    }
}

fn list<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    match get(v, k) {
        Some(Value::List(l)) => l,
        _ => &[],
    }
}

/// A record's data, whatever encoding the response used.
fn data_of(r: &Value) -> Option<Vec<u8>> {
    match get(r, "Data")? {
        Value::Bytes(b) => Some(b.to_vec()),
        Value::Str(s) => base64::engine::general_purpose::STANDARD.decode(s).ok(),
        _ => None,
    }
}

fn map(pairs: Vec<(&str, Value)>) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.put(k, v);
    }
    Value::Map(m)
}

/// Record payload: 8-byte id, 8-byte send time (µs since the bench epoch), filler.
fn payload(id: u64, sent_us: u64, size: usize) -> Vec<u8> {
    let mut d = Vec::with_capacity(size.max(16));
    d.extend_from_slice(&id.to_be_bytes());
    d.extend_from_slice(&sent_us.to_be_bytes());
    d.resize(size.max(16), b'x');
    d
}

fn id_of(d: &[u8]) -> Option<(u64, u64)> {
    Some((
        u64::from_be_bytes(d.get(0..8)?.try_into().ok()?),
        u64::from_be_bytes(d.get(8..16)?.try_into().ok()?),
    ))
}

/// Builds a PutRecords body; JSON is written directly (one pass per byte).
fn put_records_body<K: AsRef<str>>(
    encoding: Encoding,
    stream: &str,
    records: &[(K, Vec<u8>)],
) -> Bytes {
    match encoding {
        Encoding::Json => {
            let mut out = Vec::with_capacity(
                64 + records
                    .iter()
                    .map(|(k, d)| k.as_ref().len() + d.len() * 4 / 3 + 48)
                    .sum::<usize>(),
            );
            out.extend_from_slice(b"{\"StreamName\":\"");
            out.extend_from_slice(stream.as_bytes());
            out.extend_from_slice(b"\",\"Records\":[");
            for (i, (k, d)) in records.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"PartitionKey\":\"");
                out.extend_from_slice(k.as_ref().as_bytes());
                out.extend_from_slice(b"\",\"Data\":\"");
                let start = out.len();
                out.resize(start + base64::encoded_len(d.len(), true).unwrap_or(0), 0);
                let n = base64::engine::general_purpose::STANDARD
                    .encode_slice(d, &mut out[start..])
                    .unwrap_or(0);
                out.truncate(start + n);
                out.extend_from_slice(b"\"}");
            }
            out.extend_from_slice(b"]}");
            Bytes::from(out)
        }
        Encoding::Cbor => {
            let recs = records
                .iter()
                .map(|(k, d)| {
                    map(vec![
                        ("PartitionKey", Value::Str(k.as_ref().to_owned())),
                        ("Data", Value::Bytes(Bytes::from(d.clone()))),
                    ])
                })
                .collect();
            Bytes::from(encoding.encode(&map(vec![
                ("StreamName", Value::Str(stream.into())),
                ("Records", Value::List(recs)),
            ])))
        }
    }
}

/// Latencies in microseconds.
#[derive(Default)]
struct Hist(Vec<u64>);

impl Hist {
    fn summary(&mut self) -> String {
        if self.0.is_empty() {
            return "no samples".into();
        }
        self.0.sort_unstable();
        let q = |p: f64| {
            self.0[((self.0.len() as f64 * p) as usize).min(self.0.len() - 1)] as f64 / 1000.0
        };
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            q(0.5),
            q(0.99),
            *self.0.last().unwrap_or(&0) as f64 / 1000.0
        )
    }
}

/// Acknowledged records: (id, shard, hash of the sequence number), compact
/// enough for tens of millions of records.
struct Acked {
    records: Vec<(u64, u32, u64)>,
}

fn seq_hash(seq: &str) -> u64 {
    // FNV-1a: a stable fingerprint to compare sequence numbers without
    // keeping their 56 digits.
    seq.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn shard_index(id: &str) -> u32 {
    id.rsplit('-')
        .next()
        .and_then(|d| d.parse().ok())
        .unwrap_or(u32::MAX)
}

/// The parts of responses the bench needs, borrowed from the body.
#[derive(serde::Deserialize)]
struct PutRecordsResp<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<PutEntry<'a>>,
}

#[derive(serde::Deserialize)]
struct PutEntry<'a> {
    #[serde(rename = "SequenceNumber", borrow, default)]
    seq: Option<&'a str>,
    #[serde(rename = "ShardId", borrow, default)]
    shard: Option<&'a str>,
}

#[derive(serde::Deserialize)]
struct GetRecordsResp<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<GotRecord<'a>>,
    #[serde(rename = "NextShardIterator", default)]
    next: Option<String>,
    #[serde(rename = "MillisBehindLatest", default)]
    behind: Option<i64>,
}

#[derive(serde::Deserialize)]
struct GotRecord<'a> {
    #[serde(rename = "SequenceNumber", borrow)]
    seq: &'a str,
    #[serde(rename = "Data", borrow)]
    data: &'a str,
}

/// (id, send time) from the first 24 base64 characters of a record's data.
fn id_of_base64(data: &str) -> Option<(u64, u64)> {
    let head = base64::engine::general_purpose::STANDARD
        .decode(data.get(..24)?)
        .ok()?;
    id_of(&head)
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    // Thousands of client connections are file descriptors.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench(args))
}

async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let encoding = match args.encoding {
        BenchEncoding::Json => Encoding::Json,
        BenchEncoding::Cbor => Encoding::Cbor,
    };
    if args.phase == BenchPhase::Mixed {
        return mixed::mixed_phase(&args, encoding).await;
    }
    if args.phase == BenchPhase::Firehose {
        return firehose::firehose_phase(&args).await;
    }
    if args.phase == BenchPhase::Analytics {
        return analytics::analytics_phase(&args);
    }
    if args.phase == BenchPhase::Video {
        return video::video_phase(&args).await;
    }
    let endpoint = args.endpoint.clone();
    let stream = args
        .stream
        .clone()
        .unwrap_or_else(|| format!("bench-{}", uuid::Uuid::new_v4().simple()));
    let mut admin = Conn::open(&endpoint, encoding).await?;
    println!(
        "riffle bench → {endpoint}: stream {stream}, {} shards, {} connections, {} records × {} bytes per PutRecords, {:?}",
        args.shards, args.connections, args.batch, args.record_size, args.encoding
    );
    let created = admin
        .call(
            "CreateStream",
            &map(vec![
                ("StreamName", Value::Str(stream.clone())),
                ("ShardCount", Value::Int(args.shards as i64)),
            ]),
        )
        .await;
    if let Err(e) = created {
        if !e.to_string().contains("ResourceInUseException") {
            return Err(e.context("CreateStream"));
        }
    }
    wait_active(&mut admin, &stream).await?;
    let shard_ids: Vec<String> = {
        let v = admin
            .call(
                "ListShards",
                &map(vec![("StreamName", Value::Str(stream.clone()))]),
            )
            .await?;
        list(&v, "Shards")
            .iter()
            .filter_map(|s| get_str(s, "ShardId").map(str::to_owned))
            .collect()
    };
    let epoch = Instant::now();
    let mut acked = None;
    if matches!(args.phase, BenchPhase::Write | BenchPhase::All) {
        acked = Some(write_phase(&args, encoding, &stream, epoch).await?);
    }
    if matches!(args.phase, BenchPhase::Read | BenchPhase::All) {
        let mut seen = read_phase(&args, encoding, &stream, &shard_ids).await?;
        if let Some(acked) = &mut acked {
            verify(acked, &mut seen)?;
        }
    }
    if matches!(args.phase, BenchPhase::E2e | BenchPhase::All) {
        e2e_phase(&args, encoding, &stream, &shard_ids, epoch).await?;
    }
    if !args.keep {
        let _ = admin
            .call(
                "DeleteStream",
                &map(vec![("StreamName", Value::Str(stream.clone()))]),
            )
            .await;
    }
    Ok(())
}

async fn wait_active(c: &mut Conn, stream: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v = c
            .call(
                "DescribeStreamSummary",
                &map(vec![("StreamName", Value::Str(stream.into()))]),
            )
            .await?;
        let status = get(&v, "StreamDescriptionSummary")
            .and_then(|s| get_str(s, "StreamStatus"))
            .unwrap_or("");
        if status == "ACTIVE" {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("stream {stream} did not become ACTIVE");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn write_phase(
    args: &BenchArgs,
    encoding: Encoding,
    stream: &str,
    epoch: Instant,
) -> anyhow::Result<Acked> {
    let next_id = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let hist = Arc::new(Mutex::new(Hist::default()));
    let failed = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let total = args.records;
    let started = Instant::now();
    let mut tasks = Vec::new();
    let keys: Arc<Vec<String>> = Arc::new((0..10_007).map(|k| format!("pk-{k}")).collect());
    for _ in 0..args.connections {
        let keys = keys.clone();
        let (next_id, stop, acked, hist, failed, errors) = (
            next_id.clone(),
            stop.clone(),
            acked.clone(),
            hist.clone(),
            failed.clone(),
            errors.clone(),
        );
        let (endpoint, stream, batch, size) = (
            args.endpoint.clone(),
            stream.to_owned(),
            args.batch,
            args.record_size,
        );
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(&endpoint, encoding).await?;
            let mut local = Vec::new();
            let mut lat = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let first = next_id.fetch_add(batch as u64, Ordering::Relaxed);
                if total > 0 && first >= total {
                    break;
                }
                let count = if total > 0 {
                    batch.min((total - first) as usize)
                } else {
                    batch
                };
                let sent = epoch.elapsed().as_micros() as u64;
                let records: Vec<(&str, Vec<u8>)> = (0..count as u64)
                    .map(|i| {
                        (
                            keys[((first + i) % keys.len() as u64) as usize].as_str(),
                            payload(first + i, sent, size),
                        )
                    })
                    .collect();
                let body = put_records_body(encoding, &stream, &records);
                let t = Instant::now();
                let bytes = match c.send_bytes("PutRecords", body).await {
                    Ok(b) => b,
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        c = Conn::open(&endpoint, encoding).await?;
                        continue;
                    }
                };
                lat.push(t.elapsed().as_micros() as u64);
                let mut note = |i: usize, shard: Option<&str>, seq: Option<&str>| match (shard, seq)
                {
                    (Some(shard), Some(seq)) => {
                        local.push((first + i as u64, shard_index(shard), seq_hash(seq)))
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                };
                match encoding {
                    Encoding::Json => {
                        let r: PutRecordsResp = serde_json::from_slice(&bytes)?;
                        for (i, e) in r.records.iter().enumerate() {
                            note(i, e.shard, e.seq);
                        }
                    }
                    Encoding::Cbor => {
                        let v = encoding.decode(&bytes).map_err(|e| anyhow!("{e}"))?;
                        for (i, r) in list(&v, "Records").iter().enumerate() {
                            note(i, get_str(r, "ShardId"), get_str(r, "SequenceNumber"));
                        }
                    }
                }
                n += 1;
                if n.is_multiple_of(64) {
                    acked
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .append(&mut local);
                }
            }
            acked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .append(&mut local);
            hist.lock().unwrap_or_else(|p| p.into_inner()).0.extend(lat);
            anyhow::Ok(())
        }));
    }
    if total == 0 {
        tokio::time::sleep(Duration::from_secs_f64(args.duration_secs)).await;
        stop.store(true, Ordering::Relaxed);
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let records = acked.lock().unwrap_or_else(|p| p.into_inner()).len();
    let bytes = records as f64 * args.record_size as f64;
    println!(
        "write: {records} records acked in {elapsed:.2} s = {:.0} records/s, {:.1} MiB/s payload; {} throttled/failed entries, {} failed calls; PutRecords latency {}",
        records as f64 / elapsed,
        bytes / elapsed / (1024.0 * 1024.0),
        failed.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
        hist.lock().unwrap_or_else(|p| p.into_inner()).summary()
    );
    let records = std::mem::take(&mut *acked.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(Acked { records })
}

/// Reads every shard from TRIM_HORIZON to the tip; returns every record
/// read as (id, shard, hash of its sequence number).
async fn read_phase(
    args: &BenchArgs,
    encoding: Encoding,
    stream: &str,
    shard_ids: &[String],
) -> anyhow::Result<Vec<(u64, u32, u64)>> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for shard in shard_ids {
        let (endpoint, stream, shard, limit) = (
            args.endpoint.clone(),
            stream.to_owned(),
            shard.clone(),
            args.read_limit,
        );
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(&endpoint, encoding).await?;
            let v = c
                .call(
                    "GetShardIterator",
                    &map(vec![
                        ("StreamName", Value::Str(stream.clone())),
                        ("ShardId", Value::Str(shard.clone())),
                        ("ShardIteratorType", Value::Str("TRIM_HORIZON".into())),
                    ]),
                )
                .await?;
            let index = shard_index(&shard);
            let mut it = get_str(&v, "ShardIterator").map(str::to_owned);
            let mut seen = Vec::new();
            let mut bytes = 0usize;
            while let Some(iter) = it.take() {
                let body = Bytes::from(encoding.encode(&map(vec![
                    ("ShardIterator", Value::Str(iter)),
                    ("Limit", Value::Int(limit as i64)),
                ])));
                let raw = c.send_bytes("GetRecords", body).await?;
                let (n, behind, next) = match encoding {
                    Encoding::Json => {
                        let r: GetRecordsResp = serde_json::from_slice(&raw)?;
                        for rec in &r.records {
                            bytes += rec.data.len() * 3 / 4;
                            if let Some((id, _)) = id_of_base64(rec.data) {
                                seen.push((id, index, seq_hash(rec.seq)));
                            }
                        }
                        (r.records.len(), r.behind.unwrap_or(0), r.next)
                    }
                    Encoding::Cbor => {
                        let v = encoding.decode(&raw).map_err(|e| anyhow!("{e}"))?;
                        let recs = list(&v, "Records");
                        for r in recs {
                            let d = data_of(r).unwrap_or_default();
                            bytes += d.len();
                            if let Some((id, _)) = id_of(&d) {
                                seen.push((
                                    id,
                                    index,
                                    seq_hash(get_str(r, "SequenceNumber").unwrap_or("")),
                                ));
                            }
                        }
                        (
                            recs.len(),
                            get_int(&v, "MillisBehindLatest").unwrap_or(0),
                            get_str(&v, "NextShardIterator").map(str::to_owned),
                        )
                    }
                };
                if n == 0 && behind == 0 {
                    break;
                }
                it = next;
            }
            anyhow::Ok((seen, bytes))
        }));
    }
    let mut out = Vec::new();
    let mut bytes = 0;
    for t in tasks {
        let (mut seen, b) = t.await??;
        bytes += b;
        out.append(&mut seen);
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "read: {} records from {} shards in {elapsed:.2} s = {:.0} records/s, {:.1} MiB/s",
        out.len(),
        shard_ids.len(),
        out.len() as f64 / elapsed,
        bytes as f64 / elapsed / (1024.0 * 1024.0)
    );
    Ok(out)
}

fn verify(acked: &mut Acked, seen: &mut [(u64, u32, u64)]) -> anyhow::Result<()> {
    acked.records.sort_unstable();
    seen.sort_unstable();
    let (mut lost, mut mismatched, mut duplicates) = (0usize, 0usize, 0usize);
    let mut j = 0;
    for &(id, shard, seq) in &acked.records {
        while j < seen.len() && seen[j].0 < id {
            j += 1;
        }
        let start = j;
        while j < seen.len() && seen[j].0 == id {
            j += 1;
        }
        match &seen[start..j] {
            [] => lost += 1,
            reads => {
                duplicates += reads.len() - 1;
                if !reads.iter().any(|r| r.1 == shard && r.2 == seq) {
                    mismatched += 1;
                }
            }
        }
    }
    println!(
        "verify: {} acknowledged, {lost} lost, {duplicates} duplicates, {mismatched} with a different shard or sequence number",
        acked.records.len()
    );
    if lost > 0 || duplicates > 0 || mismatched > 0 {
        bail!("verification failed");
    }
    Ok(())
}

async fn e2e_phase(
    args: &BenchArgs,
    encoding: Encoding,
    stream: &str,
    shard_ids: &[String],
    epoch: Instant,
) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let hist = Arc::new(Mutex::new(Hist::default()));
    let mut readers = Vec::new();
    for shard in shard_ids {
        let (endpoint, stream, shard, stop, hist) = (
            args.endpoint.clone(),
            stream.to_owned(),
            shard.clone(),
            stop.clone(),
            hist.clone(),
        );
        readers.push(tokio::spawn(async move {
            let mut c = Conn::open(&endpoint, encoding).await?;
            let v = c
                .call(
                    "GetShardIterator",
                    &map(vec![
                        ("StreamName", Value::Str(stream.clone())),
                        ("ShardId", Value::Str(shard.clone())),
                        ("ShardIteratorType", Value::Str("LATEST".into())),
                    ]),
                )
                .await?;
            let mut it = get_str(&v, "ShardIterator").map(str::to_owned);
            let mut lat = Vec::new();
            while let Some(iter) = it.take() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let v = c
                    .call(
                        "GetRecords",
                        &map(vec![("ShardIterator", Value::Str(iter))]),
                    )
                    .await?;
                let now = epoch.elapsed().as_micros() as u64;
                let recs = list(&v, "Records");
                for r in recs {
                    if let Some((_, sent)) = data_of(r).as_deref().and_then(id_of) {
                        lat.push(now.saturating_sub(sent));
                    }
                }
                if recs.is_empty() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                it = get_str(&v, "NextShardIterator").map(str::to_owned);
            }
            hist.lock().unwrap_or_else(|p| p.into_inner()).0.extend(lat);
            anyhow::Ok(())
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rate = args.e2e_rate.max(1);
    let mut c = Conn::open(&args.endpoint, encoding).await?;
    let per_tick = (rate / 100).max(1);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let end = Instant::now() + Duration::from_secs_f64(args.e2e_secs);
    let mut id = 1u64 << 48;
    let mut sent = 0u64;
    while Instant::now() < end {
        tick.tick().await;
        let now = epoch.elapsed().as_micros() as u64;
        let records: Vec<(String, Vec<u8>)> = (0..per_tick)
            .map(|i| {
                (
                    format!("e2e-{}", id + i),
                    payload(id + i, now, args.record_size),
                )
            })
            .collect();
        id += per_tick;
        sent += per_tick;
        c.call_raw("PutRecords", put_records_body(encoding, stream, &records))
            .await?;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.await??;
    }
    let mut h = hist.lock().unwrap_or_else(|p| p.into_inner());
    println!(
        "e2e: {sent} records at {rate} records/s over {:.0} s, {} received; put→get latency {}",
        args.e2e_secs,
        h.0.len(),
        h.summary()
    );
    Ok(())
}
