//! `riffle bench --phase firehose`: a DirectPut delivery stream with an
//! ExtendedS3 destination in the endpoint's own S3 (Riffle's embedded S3,
//! or moto's). PutRecordBatch writers run for `--duration-secs`; a watcher
//! lists the bucket (ListObjectsV2, path-style), reads each new object
//! and takes the records out of it (each carries its id and its send time).
//! It reports acknowledged records/s with PutRecordBatch latency, then,
//! once every acknowledged record is in some object, delivered MB/s and
//! data freshness (object time − send time), and checks at-least-once:
//! every acknowledged record delivered. With `--firehose-format parquet`
//! the records are JSON documents (`id`, `sent_us`, padding) converted to
//! Parquet with the columns of a Glue table the bench creates first, and
//! the watcher reads the objects back with the Parquet reader.

use std::collections::HashSet;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use base64::Engine;
use bytes::Bytes;
use riffle_wire::{Encoding, Value};

use super::{get, get_str, map, Conn, Hist};
use crate::cli::{BenchArgs, FirehoseCompression, FirehoseFormat};

const TARGET: &str = "Firehose_20150804";

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Record payload: 8-byte id, 8-byte send time (µs since the Unix epoch),
/// filler; or, as JSON, `{"id":..,"sent_us":..,"pad":"xx.."}` of the same
/// size where the size leaves room.
fn payload(id: u64, sent_us: u64, size: usize, json: bool, out: &mut Vec<u8>) {
    let start = out.len();
    if json {
        let head = format!("{{\"id\":{id},\"sent_us\":{sent_us},\"pad\":\"");
        out.extend_from_slice(head.as_bytes());
        let pad = size.saturating_sub(head.len() + 2);
        out.resize(out.len() + pad, b'x');
        out.extend_from_slice(b"\"}");
        return;
    }
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&sent_us.to_be_bytes());
    out.resize(start + size.max(16), b'x');
}

/// The (id, send time) of every row of a Parquet object.
fn parquet_rows(body: Bytes) -> anyhow::Result<Vec<(u64, u64)>> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(body)?.build()?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch?;
        let col = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_primitive_opt::<Int64Type>())
                .ok_or_else(|| anyhow!("no bigint column {name} in the Parquet object"))
        };
        let (ids, sent) = (col("id")?, col("sent_us")?);
        for i in 0..batch.num_rows() {
            rows.push((ids.value(i) as u64, sent.value(i) as u64));
        }
    }
    Ok(rows)
}

/// A PutRecordBatch body, written directly.
fn batch_body(
    stream: &str,
    first: u64,
    count: usize,
    size: usize,
    sent_us: u64,
    json: bool,
) -> Bytes {
    let mut out = Vec::with_capacity(64 + count * (size * 4 / 3 + 16));
    out.extend_from_slice(b"{\"DeliveryStreamName\":\"");
    out.extend_from_slice(stream.as_bytes());
    out.extend_from_slice(b"\",\"Records\":[");
    let mut d = Vec::with_capacity(size.max(16));
    for i in 0..count {
        if i > 0 {
            out.push(b',');
        }
        d.clear();
        payload(first + i as u64, sent_us, size, json, &mut d);
        out.extend_from_slice(b"{\"Data\":\"");
        let start = out.len();
        out.resize(start + base64::encoded_len(d.len(), true).unwrap_or(0), 0);
        let n = base64::engine::general_purpose::STANDARD
            .encode_slice(&d, &mut out[start..])
            .unwrap_or(0);
        out.truncate(start + n);
        out.extend_from_slice(b"\"}");
    }
    out.extend_from_slice(b"]}");
    Bytes::from(out)
}

#[derive(serde::Deserialize)]
struct BatchResp {
    #[serde(rename = "FailedPutCount", default)]
    failed: u64,
    #[serde(rename = "RequestResponses", default)]
    entries: Vec<BatchEntry>,
}

#[derive(serde::Deserialize)]
struct BatchEntry {
    #[serde(rename = "RecordId", default)]
    id: Option<String>,
}

/// One object of a ListObjectsV2 page.
struct Listed {
    key: String,
    size: u64,
    /// LastModified in ms, and whether it had a sub-second part.
    modified_ms: Option<i64>,
    sub_second: bool,
}

fn tag<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(&xml[start..end])
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn encode_query(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn encode_path(s: &str) -> String {
    s.split('/').map(encode_query).collect::<Vec<_>>().join("/")
}

/// `2026-01-02T03:04:05.123Z` in ms, and whether it had a fraction.
fn parse_modified(s: &str) -> Option<(i64, bool)> {
    let secs = riffle_s3::time::parse_date(s)?;
    let frac = s
        .get(19..)
        .and_then(|r| r.strip_prefix('.'))
        .map(|r| {
            r.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .unwrap_or_default();
    let ms = match frac.len() {
        0 => 0,
        n => {
            let digits: String = frac.chars().take(3).collect();
            let v: i64 = digits.parse().unwrap_or(0);
            v * 10i64.pow(3 - n.min(3) as u32)
        }
    };
    Some((secs * 1000 + ms, ms != 0))
}

async fn list_all(c: &mut Conn, bucket: &str, prefix: &str) -> anyhow::Result<Vec<Listed>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut q = format!("/{bucket}?list-type=2&prefix={}", encode_query(prefix));
        if let Some(t) = &token {
            q.push_str(&format!("&continuation-token={}", encode_query(t)));
        }
        let (status, body) = c.rest(http::Method::GET, &q, Bytes::new()).await?;
        let xml = String::from_utf8_lossy(&body);
        if status != 200 {
            bail!("ListObjectsV2 on {bucket}: HTTP {status}: {xml}");
        }
        let mut rest: &str = &xml;
        while let Some(i) = rest.find("<Contents>") {
            let after = &rest[i + 10..];
            let end = after.find("</Contents>").unwrap_or(after.len());
            let item = &after[..end];
            let modified = tag(item, "LastModified").and_then(parse_modified);
            out.push(Listed {
                key: unescape(tag(item, "Key").unwrap_or("")),
                size: tag(item, "Size").and_then(|s| s.parse().ok()).unwrap_or(0),
                modified_ms: modified.map(|m| m.0),
                sub_second: modified.is_some_and(|m| m.1),
            });
            rest = &after[end..];
        }
        token = (tag(&xml, "IsTruncated") == Some("true"))
            .then(|| tag(&xml, "NextContinuationToken").map(unescape))
            .flatten();
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// What the watcher found in the delivered objects.
#[derive(Default)]
struct Seen {
    keys: HashSet<String>,
    objects: u64,
    stored_bytes: u64,
    records: u64,
    record_bytes: u64,
    /// Ids delivered (a bitmap).
    ids: Vec<u64>,
    duplicates: u64,
    /// Per object: (LastModified ms, first seen ms, had sub-second time,
    /// send times of its records in µs).
    samples: Vec<(Option<i64>, i64, bool, Vec<u64>)>,
    /// When the last object was first seen.
    last_seen_us: u64,
}

impl Seen {
    fn mark(&mut self, id: u64) {
        let (w, b) = ((id / 64) as usize, id % 64);
        if self.ids.len() <= w {
            self.ids.resize(w + 1, 0);
        }
        if self.ids[w] & (1 << b) != 0 {
            self.duplicates += 1;
        }
        self.ids[w] |= 1 << b;
    }

    fn has(&self, id: u64) -> bool {
        self.ids
            .get((id / 64) as usize)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }
}

/// Lists the bucket and reads every object not read before.
async fn scan(
    c: &mut Conn,
    bucket: &str,
    prefix: &str,
    size: usize,
    seen: &Mutex<Seen>,
) -> anyhow::Result<()> {
    let listed = list_all(c, bucket, prefix).await?;
    let seen_at = now_us();
    for o in listed {
        if seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys
            .contains(&o.key)
        {
            continue;
        }
        let (status, body) = c
            .rest(
                http::Method::GET,
                &format!("/{bucket}/{}", encode_path(&o.key)),
                Bytes::new(),
            )
            .await?;
        if status != 200 {
            bail!("GetObject {}: HTTP {status}", o.key);
        }
        if body.starts_with(b"PAR1") {
            let rows = parquet_rows(body).with_context(|| format!("reading {}", o.key))?;
            let mut g = seen.lock().unwrap_or_else(|p| p.into_inner());
            let mut sends = Vec::with_capacity(rows.len());
            for (id, sent) in rows {
                g.mark(id);
                g.records += 1;
                g.record_bytes += size as u64;
                sends.push(sent);
            }
            g.keys.insert(o.key);
            g.objects += 1;
            g.stored_bytes += o.size;
            g.last_seen_us = seen_at;
            g.samples
                .push((o.modified_ms, (seen_at / 1000) as i64, o.sub_second, sends));
            continue;
        }
        let data = if body.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(&body[..])
                .read_to_end(&mut out)
                .with_context(|| format!("gunzipping {}", o.key))?;
            out
        } else {
            body.to_vec()
        };
        let mut g = seen.lock().unwrap_or_else(|p| p.into_inner());
        let mut sends = Vec::with_capacity(data.len() / size.max(16));
        for rec in data.chunks(size.max(16)) {
            let (Some(id), Some(sent)) = (rec.get(0..8), rec.get(8..16)) else {
                continue;
            };
            let id = u64::from_be_bytes(id.try_into()?);
            let sent = u64::from_be_bytes(sent.try_into()?);
            g.mark(id);
            g.records += 1;
            g.record_bytes += rec.len() as u64;
            sends.push(sent);
        }
        g.keys.insert(o.key);
        g.objects += 1;
        g.stored_bytes += o.size;
        g.last_seen_us = seen_at;
        g.samples
            .push((o.modified_ms, (seen_at / 1000) as i64, o.sub_second, sends));
    }
    Ok(())
}

/// Creates the Glue database `riffle_bench` (if missing) and a table
/// `bench_<tag>` (`id bigint, sent_us bigint, pad string`) in the
/// endpoint's Glue Data Catalog; returns the conversion configuration
/// that names it.
async fn glue_table(endpoint: &str, encoding: Encoding, tag: &str) -> anyhow::Result<Value> {
    let mut glue = Conn::open_api(endpoint, encoding, "AWSGlue", "glue").await?;
    let database = "riffle_bench";
    let table = format!("bench_{tag}");
    if let Err(e) = glue
        .call(
            "CreateDatabase",
            &map(vec![(
                "DatabaseInput",
                map(vec![("Name", Value::Str(database.into()))]),
            )]),
        )
        .await
    {
        if !e.to_string().contains("AlreadyExistsException") {
            return Err(e).context("Glue CreateDatabase");
        }
    }
    let column = |name: &str, ty: &str| {
        map(vec![
            ("Name", Value::Str(name.into())),
            ("Type", Value::Str(ty.into())),
        ])
    };
    glue.call(
        "CreateTable",
        &map(vec![
            ("DatabaseName", Value::Str(database.into())),
            (
                "TableInput",
                map(vec![
                    ("Name", Value::Str(table.clone())),
                    (
                        "StorageDescriptor",
                        map(vec![(
                            "Columns",
                            Value::List(vec![
                                column("id", "bigint"),
                                column("sent_us", "bigint"),
                                column("pad", "string"),
                            ]),
                        )]),
                    ),
                ]),
            ),
        ]),
    )
    .await
    .context("Glue CreateTable")?;
    let serde = |name: &str, inner: Value| map(vec![(name, inner)]);
    Ok(map(vec![
        ("Enabled", Value::Bool(true)),
        (
            "InputFormatConfiguration",
            serde("Deserializer", serde("OpenXJsonSerDe", map(vec![]))),
        ),
        (
            "OutputFormatConfiguration",
            serde(
                "Serializer",
                serde(
                    "ParquetSerDe",
                    map(vec![("Compression", Value::Str("SNAPPY".into()))]),
                ),
            ),
        ),
        (
            "SchemaConfiguration",
            map(vec![
                ("DatabaseName", Value::Str(database.into())),
                ("TableName", Value::Str(table)),
                (
                    "RoleARN",
                    Value::Str("arn:aws:iam::000000000000:role/firehose".into()),
                ),
            ]),
        ),
    ]))
}

pub(super) async fn firehose_phase(args: &BenchArgs) -> anyhow::Result<()> {
    let encoding = Encoding::Json;
    let endpoint = args.endpoint.clone();
    let batch = args.batch.clamp(1, 500);
    let size = args.record_size.max(16);
    let tag8 = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let stream = args
        .stream
        .clone()
        .unwrap_or_else(|| format!("bench-{tag8}"));
    let prefix = format!("{stream}/");
    let mut s3 = Conn::open_api(&endpoint, encoding, "", "s3").await?;
    let bucket = match &args.firehose_bucket {
        Some(b) => b.clone(),
        None => {
            let b = format!("riffle-bench-{tag8}");
            let (status, body) = s3
                .rest(http::Method::PUT, &format!("/{b}"), Bytes::new())
                .await?;
            if status != 200 {
                bail!(
                    "CreateBucket {b}: HTTP {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
            b
        }
    };
    let parquet = args.firehose_format == FirehoseFormat::Parquet;
    let compression = match args.firehose_compression {
        FirehoseCompression::Uncompressed => "UNCOMPRESSED",
        FirehoseCompression::Gzip if parquet => {
            bail!("--firehose-format parquet needs --firehose-compression UNCOMPRESSED (Parquet compresses itself)")
        }
        FirehoseCompression::Gzip => "GZIP",
    };
    let conversion = if parquet {
        Some(glue_table(&endpoint, encoding, tag8).await?)
    } else {
        None
    };
    println!(
        "riffle bench --phase firehose → {endpoint}: delivery stream {stream} → s3://{bucket}/{prefix}, interval {} s, {} MB, {compression}{}; {} connections, {batch} records × {size} bytes per PutRecordBatch",
        args.firehose_interval_secs,
        args.firehose_size_mbs,
        if parquet { ", JSON converted to Parquet (SNAPPY)" } else { "" },
        args.connections
    );
    let mut admin = Conn::open_api(&endpoint, encoding, TARGET, "firehose").await?;
    admin
        .call(
            "CreateDeliveryStream",
            &map(vec![
                ("DeliveryStreamName", Value::Str(stream.clone())),
                ("DeliveryStreamType", Value::Str("DirectPut".into())),
                (
                    "ExtendedS3DestinationConfiguration",
                    map([
                        (
                            "RoleARN",
                            Value::Str("arn:aws:iam::000000000000:role/firehose".into()),
                        ),
                        ("BucketARN", Value::Str(format!("arn:aws:s3:::{bucket}"))),
                        ("Prefix", Value::Str(prefix.clone())),
                        ("CompressionFormat", Value::Str(compression.into())),
                        (
                            "BufferingHints",
                            map(vec![
                                ("SizeInMBs", Value::Int(i64::from(args.firehose_size_mbs))),
                                (
                                    "IntervalInSeconds",
                                    Value::Int(i64::from(args.firehose_interval_secs)),
                                ),
                            ]),
                        ),
                    ]
                    .into_iter()
                    .chain(
                        conversion
                            .clone()
                            .map(|c| ("DataFormatConversionConfiguration", c)),
                    )
                    .collect()),
                ),
            ]),
        )
        .await
        .context("CreateDeliveryStream")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = admin
            .call(
                "DescribeDeliveryStream",
                &map(vec![("DeliveryStreamName", Value::Str(stream.clone()))]),
            )
            .await?;
        let status = get(&v, "DeliveryStreamDescription")
            .and_then(|d| get_str(d, "DeliveryStreamStatus"))
            .unwrap_or("");
        if status == "ACTIVE" {
            break;
        }
        if Instant::now() > deadline {
            bail!("delivery stream {stream} did not become ACTIVE");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The watcher reads objects as they appear, so object times are known
    // to within its polling period even where LastModified has only
    // seconds.
    let seen = Arc::new(Mutex::new(Seen::default()));
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (seen, watching, bucket, prefix, endpoint) = (
            seen.clone(),
            watching.clone(),
            bucket.clone(),
            prefix.clone(),
            endpoint.clone(),
        );
        tokio::spawn(async move {
            let mut c = Conn::open_api(&endpoint, encoding, "", "s3").await?;
            while watching.load(Ordering::Relaxed) {
                scan(&mut c, &bucket, &prefix, size, &seen).await?;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            anyhow::Ok(())
        })
    };

    let stop = Arc::new(AtomicBool::new(false));
    let next_id = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(Mutex::new(Vec::<u64>::new()));
    let hist = Arc::new(Mutex::new(Hist::default()));
    let started = Instant::now();
    let start_us = now_us();
    let mut tasks = Vec::new();
    for _ in 0..args.connections.max(1) {
        let (stop, next_id, errors, failed, acked, hist) = (
            stop.clone(),
            next_id.clone(),
            errors.clone(),
            failed.clone(),
            acked.clone(),
            hist.clone(),
        );
        let (endpoint, stream) = (endpoint.clone(), stream.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open_api(&endpoint, encoding, TARGET, "firehose").await?;
            let mut local = Vec::new();
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let first = next_id.fetch_add(batch as u64, Ordering::Relaxed);
                let body = batch_body(&stream, first, batch, size, now_us(), parquet);
                let t = Instant::now();
                let bytes = match c.send_bytes("PutRecordBatch", body).await {
                    Ok(b) => b,
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        c = Conn::open_api(&endpoint, encoding, TARGET, "firehose").await?;
                        continue;
                    }
                };
                lat.push(t.elapsed().as_micros() as u64);
                let r: BatchResp = serde_json::from_slice(&bytes)?;
                failed.fetch_add(r.failed, Ordering::Relaxed);
                for (i, e) in r.entries.iter().enumerate() {
                    if e.id.is_some() {
                        local.push(first + i as u64);
                    }
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
    tokio::time::sleep(Duration::from_secs_f64(args.duration_secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await??;
    }
    let write_secs = started.elapsed().as_secs_f64();
    let acked = std::mem::take(&mut *acked.lock().unwrap_or_else(|p| p.into_inner()));
    println!(
        "firehose write: {} records acked in {write_secs:.2} s = {:.0} records/s, {:.1} MB/s payload; {} failed entries, {} failed calls; PutRecordBatch latency {}",
        acked.len(),
        acked.len() as f64 / write_secs,
        acked.len() as f64 * size as f64 / write_secs / 1e6,
        failed.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
        hist.lock().unwrap_or_else(|p| p.into_inner()).summary()
    );

    // Wait until every acknowledged record is in some object.
    let deadline = Instant::now() + Duration::from_secs_f64(args.firehose_wait_secs);
    let missing = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let missing = {
            let g = seen.lock().unwrap_or_else(|p| p.into_inner());
            acked.iter().filter(|id| !g.has(**id)).count()
        };
        if missing == 0 || Instant::now() > deadline || watcher.is_finished() {
            break missing;
        }
    };
    watching.store(false, Ordering::Relaxed);
    watcher
        .await
        .map_err(|e| anyhow!("{e}"))?
        .context("watching the bucket")?;
    let g = std::mem::take(&mut *seen.lock().unwrap_or_else(|p| p.into_inner()));
    // Object time: LastModified where the server gives it to the
    // millisecond; else an upper bound: the earlier of the end of
    // LastModified's second and when the watcher first saw the object.
    let precise = g.samples.iter().any(|s| s.2);
    let mut fresh = Hist::default();
    for (modified, first_seen, _, sends) in &g.samples {
        let at_ms = match (precise, modified) {
            (true, Some(m)) => *m,
            (false, Some(m)) => (*first_seen).min(m + 999),
            (_, None) => *first_seen,
        };
        let at_us = at_ms.max(0) as u64 * 1000;
        fresh
            .0
            .extend(sends.iter().map(|s| at_us.saturating_sub(*s)));
    }
    let deliver_secs = (g.last_seen_us.saturating_sub(start_us)) as f64 / 1e6;
    println!(
        "firehose delivery: {} objects, {} records ({:.1} MB of records, {:.1} MB stored) in {deliver_secs:.2} s from the first put = {:.1} MB/s delivered; {} delivered twice",
        g.objects,
        g.records,
        g.record_bytes as f64 / 1e6,
        g.stored_bytes as f64 / 1e6,
        g.record_bytes as f64 / 1e6 / deliver_secs.max(1e-9),
        g.duplicates
    );
    println!(
        "firehose data freshness (object time − send time, object time from {}): {}",
        if precise {
            "LastModified"
        } else {
            "an upper bound: the end of LastModified's second or first sight in a listing, whichever is earlier"
        },
        fresh.summary()
    );
    println!(
        "firehose verify: {} acknowledged, {} delivered, {missing} acknowledged records not delivered",
        acked.len(),
        g.records
    );
    drop(g);
    if !args.keep {
        let _ = admin
            .call(
                "DeleteDeliveryStream",
                &map(vec![("DeliveryStreamName", Value::Str(stream.clone()))]),
            )
            .await;
    }
    if missing > 0 {
        bail!("at-least-once check failed: {missing} acknowledged records were not delivered");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_modified_with_and_without_millis() {
        assert_eq!(
            parse_modified("2026-01-02T03:04:05.123Z"),
            Some((1_767_323_045_123, true))
        );
        assert_eq!(
            parse_modified("2026-01-02T03:04:05.000Z"),
            Some((1_767_323_045_000, false))
        );
        assert_eq!(
            parse_modified("2026-01-02T03:04:05Z").map(|m| m.0),
            Some(1_767_323_045_000)
        );
    }

    #[test]
    fn payload_round_trip() {
        let mut d = Vec::new();
        payload(7, 99, 100, false, &mut d);
        assert_eq!(d.len(), 100);
        assert_eq!(u64::from_be_bytes(d[0..8].try_into().unwrap()), 7);
        assert_eq!(u64::from_be_bytes(d[8..16].try_into().unwrap()), 99);
        let mut j = Vec::new();
        payload(7, 99, 100, true, &mut j);
        assert_eq!(j.len(), 100);
        let v: serde_json::Value = serde_json::from_slice(&j).unwrap();
        assert_eq!(
            (v["id"].as_u64(), v["sent_us"].as_u64()),
            (Some(7), Some(99))
        );
    }
}
