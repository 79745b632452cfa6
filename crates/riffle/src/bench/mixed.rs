//! `riffle bench --phase mixed`: many streams at once. Writers put to their
//! own stream, a reader per stream polls every shard as KCL does, and a
//! control loop tags, describes and lists shards across the streams. It
//! reports each kind's throughput and latency, so contention between
//! streams (or between control and data) shows up as latency.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use riffle_wire::{Encoding, Value};

use super::{get_str, list, map, payload, put_records_body, wait_active, Conn, Hist};
use crate::cli::BenchArgs;

#[derive(Default)]
struct Tally {
    calls: AtomicU64,
    records: AtomicU64,
    errors: AtomicU64,
    lat: Mutex<Hist>,
}

impl Tally {
    fn add(&self, lat: Vec<u64>) {
        self.lat
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .extend(lat);
    }

    fn line(&self, what: &str, secs: f64) -> String {
        format!(
            "{what}: {:.0} records/s, {:.0} calls/s, {} errors, latency {}",
            self.records.load(Ordering::Relaxed) as f64 / secs,
            self.calls.load(Ordering::Relaxed) as f64 / secs,
            self.errors.load(Ordering::Relaxed),
            self.lat.lock().unwrap_or_else(|p| p.into_inner()).summary()
        )
    }
}

pub(super) async fn mixed_phase(args: &BenchArgs, encoding: Encoding) -> anyhow::Result<()> {
    let prefix = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let names: Vec<String> = (0..args.streams.max(1))
        .map(|i| format!("{prefix}-{i}"))
        .collect();
    let mut admin = Conn::open(&args.endpoint, encoding).await?;
    println!(
        "riffle bench --phase mixed → {}: {} streams × {} shards, {} writer connections, {} records × {} bytes per PutRecords",
        args.endpoint,
        names.len(),
        args.shards,
        args.connections,
        args.batch,
        args.record_size
    );
    for n in &names {
        admin
            .call(
                "CreateStream",
                &map(vec![
                    ("StreamName", Value::Str(n.clone())),
                    ("ShardCount", Value::Int(i64::from(args.shards))),
                ]),
            )
            .await?;
    }
    for n in &names {
        wait_active(&mut admin, n).await?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (writes, reads, control) = (
        Arc::new(Tally::default()),
        Arc::new(Tally::default()),
        Arc::new(Tally::default()),
    );
    let next_id = Arc::new(AtomicU64::new(0));
    let epoch = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..args.connections {
        let (stop, tally, next_id) = (stop.clone(), writes.clone(), next_id.clone());
        let (endpoint, stream) = (args.endpoint.clone(), names[w % names.len()].clone());
        let (batch, size) = (args.batch, args.record_size);
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(&endpoint, encoding).await?;
            let keys: Vec<String> = (0..batch).map(|k| format!("pk-{w}-{k}")).collect();
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let first = next_id.fetch_add(batch as u64, Ordering::Relaxed);
                let sent = epoch.elapsed().as_micros() as u64;
                let records: Vec<(&str, Vec<u8>)> = (0..batch)
                    .map(|i| (keys[i].as_str(), payload(first + i as u64, sent, size)))
                    .collect();
                let body = put_records_body(encoding, &stream, &records);
                let t = Instant::now();
                match c.send_bytes("PutRecords", body).await {
                    Ok(_) => {
                        lat.push(t.elapsed().as_micros() as u64);
                        tally.calls.fetch_add(1, Ordering::Relaxed);
                        tally.records.fetch_add(batch as u64, Ordering::Relaxed);
                    }
                    Err(_) => {
                        tally.errors.fetch_add(1, Ordering::Relaxed);
                        c = Conn::open(&endpoint, encoding).await?;
                    }
                }
            }
            tally.add(lat);
            anyhow::Ok(())
        }));
    }
    for stream in &names {
        let (stop, tally) = (stop.clone(), reads.clone());
        let (endpoint, stream, limit) = (args.endpoint.clone(), stream.clone(), args.read_limit);
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(&endpoint, encoding).await?;
            let shards = c
                .call(
                    "ListShards",
                    &map(vec![("StreamName", Value::Str(stream.clone()))]),
                )
                .await?;
            let mut iters = Vec::new();
            for s in list(&shards, "Shards") {
                let v = c
                    .call(
                        "GetShardIterator",
                        &map(vec![
                            ("StreamName", Value::Str(stream.clone())),
                            (
                                "ShardId",
                                Value::Str(get_str(s, "ShardId").unwrap_or("").into()),
                            ),
                            ("ShardIteratorType", Value::Str("TRIM_HORIZON".into())),
                        ]),
                    )
                    .await?;
                iters.extend(get_str(&v, "ShardIterator").map(str::to_owned));
            }
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let mut got = 0;
                for it in iters.iter_mut() {
                    let body = Bytes::from(encoding.encode(&map(vec![
                        ("ShardIterator", Value::Str(it.clone())),
                        ("Limit", Value::Int(limit as i64)),
                    ])));
                    let t = Instant::now();
                    match c.call_raw("GetRecords", body).await {
                        Ok(v) => {
                            lat.push(t.elapsed().as_micros() as u64);
                            let n = list(&v, "Records").len();
                            got += n;
                            tally.calls.fetch_add(1, Ordering::Relaxed);
                            tally.records.fetch_add(n as u64, Ordering::Relaxed);
                            if let Some(next) = get_str(&v, "NextShardIterator") {
                                *it = next.to_owned();
                            }
                        }
                        Err(_) => {
                            tally.errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                if got == 0 {
                    // Caught up: poll again shortly, as KCL does when idle.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            tally.add(lat);
            anyhow::Ok(())
        }));
    }
    {
        let (stop, tally, names) = (stop.clone(), control.clone(), names.clone());
        let endpoint = args.endpoint.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(&endpoint, encoding).await?;
            let mut lat = Vec::new();
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let stream = Value::Str(names[i % names.len()].clone());
                let calls = [
                    (
                        "AddTagsToStream",
                        map(vec![
                            ("StreamName", stream.clone()),
                            (
                                "Tags",
                                map(vec![("round", Value::Str((i % 100).to_string()))]),
                            ),
                        ]),
                    ),
                    (
                        "DescribeStreamSummary",
                        map(vec![("StreamName", stream.clone())]),
                    ),
                    ("ListShards", map(vec![("StreamName", stream)])),
                ];
                for (op, body) in &calls {
                    let t = Instant::now();
                    match c.call(op, body).await {
                        Ok(_) => {
                            lat.push(t.elapsed().as_micros() as u64);
                            tally.calls.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            tally.errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                i += 1;
            }
            tally.add(lat);
            anyhow::Ok(())
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(args.duration_secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    println!("{}", writes.line("mixed write (PutRecords)", secs));
    println!("{}", reads.line("mixed read (GetRecords)", secs));
    println!(
        "{}",
        control.line("mixed control (tag, describe, list)", secs)
    );
    if !args.keep {
        for n in &names {
            let _ = admin
                .call(
                    "DeleteStream",
                    &map(vec![("StreamName", Value::Str(n.clone()))]),
                )
                .await;
        }
    }
    Ok(())
}
