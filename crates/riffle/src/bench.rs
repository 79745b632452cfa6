//! `riffle bench`: a load generator for any Kinesis endpoint (Riffle,
//! kinesalite, moto, ...). Phases: `write` (PutRecords as fast as the
//! connections allow), `read` (GetRecords draining every shard), `e2e`
//! (records at a fixed rate, put→get latency), and `all` (write, read, verify
//! that every acknowledged record was read back exactly once, then e2e).

use std::collections::HashMap;
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

/// One keep-alive HTTP/1.1 connection speaking the Kinesis API.
struct Conn {
    send: http1::SendRequest<Full<Bytes>>,
    host: String,
    encoding: Encoding,
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
        let host = endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let send = connect(&host).await?;
        Ok(Conn {
            send,
            host,
            encoding,
        })
    }

    /// Calls `op` with a pre-encoded body; returns the decoded response.
    async fn call_raw(&mut self, op: &str, body: Bytes) -> anyhow::Result<Value> {
        let req = http::Request::post("/")
            .header("host", &self.host)
            .header("content-type", self.encoding.content_type())
            .header("x-amz-target", format!("Kinesis_20131202.{op}"))
            .header("x-amz-date", "20260101T000000Z")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDBENCH/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000",
            )
            .body(Full::new(body))?;
        // Servers that close connections after each response (moto) get a new one.
        if self.send.is_closed() || self.send.ready().await.is_err() {
            self.send = connect(&self.host).await?;
        }
        let resp = self.send.send_request(req).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        let v = if bytes.is_empty() {
            Value::Map(Map::new())
        } else {
            self.encoding.decode(&bytes).map_err(|e| anyhow!("{e}"))?
        };
        if !status.is_success() {
            let kind = get_str(&v, "__type").unwrap_or("?").to_owned();
            return Err(anyhow!(ApiError {
                kind,
                status: status.as_u16()
            }));
        }
        Ok(v)
    }

    async fn call(&mut self, op: &str, body: &Value) -> anyhow::Result<Value> {
        let encoded = Bytes::from(self.encoding.encode(body));
        self.call_raw(op, encoded).await
    }
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
fn put_records_body(encoding: Encoding, stream: &str, records: &[(String, Vec<u8>)]) -> Bytes {
    match encoding {
        Encoding::Json => {
            let mut out = Vec::with_capacity(
                64 + records
                    .iter()
                    .map(|(k, d)| k.len() + d.len() * 4 / 3 + 48)
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
                out.extend_from_slice(k.as_bytes());
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
                        ("PartitionKey", Value::Str(k.clone())),
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

struct Acked {
    /// id → (shard, sequence number)
    records: HashMap<u64, (String, String)>,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
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
        let seen = read_phase(&args, encoding, &stream, &shard_ids).await?;
        if let Some(acked) = &acked {
            verify(acked, &seen)?;
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
    let acked = Arc::new(Mutex::new(HashMap::new()));
    let hist = Arc::new(Mutex::new(Hist::default()));
    let failed = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let total = args.records;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..args.connections {
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
                let records: Vec<(String, Vec<u8>)> = (0..count as u64)
                    .map(|i| {
                        (
                            format!("pk-{}-{}", w, (first + i) % 10_007),
                            payload(first + i, sent, size),
                        )
                    })
                    .collect();
                let body = put_records_body(encoding, &stream, &records);
                let t = Instant::now();
                let v = match c.call_raw("PutRecords", body).await {
                    Ok(v) => v,
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        c = Conn::open(&endpoint, encoding).await?;
                        continue;
                    }
                };
                lat.push(t.elapsed().as_micros() as u64);
                for (i, r) in list(&v, "Records").iter().enumerate() {
                    match (get_str(r, "ShardId"), get_str(r, "SequenceNumber")) {
                        (Some(shard), Some(seq)) => {
                            local.push((first + i as u64, shard.to_owned(), seq.to_owned()))
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                n += 1;
                if n.is_multiple_of(64) {
                    let mut a = acked.lock().unwrap_or_else(|p| p.into_inner());
                    for (id, shard, seq) in local.drain(..) {
                        a.insert(id, (shard, seq));
                    }
                }
            }
            let mut a = acked.lock().unwrap_or_else(|p| p.into_inner());
            for (id, shard, seq) in local.drain(..) {
                a.insert(id, (shard, seq));
            }
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

/// Reads every shard from TRIM_HORIZON to the tip; returns id → read count
/// and the (shard, sequence) of each read.
async fn read_phase(
    args: &BenchArgs,
    encoding: Encoding,
    stream: &str,
    shard_ids: &[String],
) -> anyhow::Result<HashMap<u64, Vec<(String, String)>>> {
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
            let mut it = get_str(&v, "ShardIterator").map(str::to_owned);
            let mut seen = Vec::new();
            let mut bytes = 0usize;
            while let Some(iter) = it.take() {
                let v = c
                    .call(
                        "GetRecords",
                        &map(vec![
                            ("ShardIterator", Value::Str(iter)),
                            ("Limit", Value::Int(limit as i64)),
                        ]),
                    )
                    .await?;
                let recs = list(&v, "Records");
                for r in recs {
                    let d = data_of(r).unwrap_or_default();
                    bytes += d.len();
                    if let Some((id, _)) = id_of(&d) {
                        seen.push((
                            id,
                            shard.clone(),
                            get_str(r, "SequenceNumber").unwrap_or("").to_owned(),
                        ));
                    }
                }
                if recs.is_empty() && get_int(&v, "MillisBehindLatest").unwrap_or(0) == 0 {
                    break;
                }
                it = get_str(&v, "NextShardIterator").map(str::to_owned);
            }
            anyhow::Ok((seen, bytes))
        }));
    }
    let mut out: HashMap<u64, Vec<(String, String)>> = HashMap::new();
    let mut bytes = 0;
    let mut count = 0usize;
    for t in tasks {
        let (seen, b) = t.await??;
        bytes += b;
        count += seen.len();
        for (id, shard, seq) in seen {
            out.entry(id).or_default().push((shard, seq));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "read: {count} records from {} shards in {elapsed:.2} s = {:.0} records/s, {:.1} MiB/s",
        shard_ids.len(),
        count as f64 / elapsed,
        bytes as f64 / elapsed / (1024.0 * 1024.0)
    );
    Ok(out)
}

fn verify(acked: &Acked, seen: &HashMap<u64, Vec<(String, String)>>) -> anyhow::Result<()> {
    let mut lost = 0;
    let mut mismatched = 0;
    for (id, (shard, seq)) in &acked.records {
        match seen.get(id) {
            None => lost += 1,
            Some(reads) => {
                if !reads.iter().any(|(s, q)| s == shard && q == seq) {
                    mismatched += 1;
                }
            }
        }
    }
    let duplicates: usize = seen.values().map(|r| r.len().saturating_sub(1)).sum();
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
