//! `riffle put STREAM`: stdin's lines as records. Lines are batched into
//! PutRecords calls of up to 500 records and 5 MiB; a batch is sent when
//! full, at the end of input, or when input pauses for a moment (so a
//! `tail -f` piped in is put as it comes). Records a call refuses
//! (`FailedRecordCount`) are sent again, in their order, after a backoff,
//! before anything newer; throttled or failed calls are repeated likewise.
//! Batches go one at a time, so a partition key's records keep their order.

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use base64::Engine;
use bytes::Bytes;
use riffle_core::limits::{PUT_RECORDS_MAX_BYTES, PUT_RECORDS_MAX_RECORDS};
use serde_json::Value;
use tokio::sync::mpsc;

use super::{backoff, retryable, runtime, Kinesis, Style};
use crate::cli::PutArgs;

/// How long input may pause before a partial batch is sent.
const LINGER: Duration = Duration::from_millis(100);
/// Failed calls other than throttling are tried this many times.
const MAX_ATTEMPTS: u32 = 10;
/// The longest partition key Kinesis takes, in characters.
const MAX_KEY_CHARS: usize = 256;

pub fn run(args: PutArgs) -> anyhow::Result<()> {
    runtime()?.block_on(put(args))
}

/// One line to put.
struct Rec {
    /// 1-based line number in the input.
    line: u64,
    key: String,
    data: Vec<u8>,
}

impl Rec {
    /// Bytes counted against PutRecords' 5 MiB: data and partition key.
    fn size(&self) -> usize {
        self.data.len() + self.key.len()
    }
}

#[derive(Default)]
struct Stats {
    records: u64,
    bytes: u64,
    calls: u64,
    /// Records refused by a call and sent again.
    retried_records: u64,
    /// Whole calls throttled or failed and repeated.
    retried_calls: u64,
    /// Lines whose JSON had no `--key-field`.
    without_key_field: u64,
    /// Records a partial failure left out of order with an earlier record
    /// of their key (a later record of the key was taken while an earlier
    /// one was refused).
    out_of_order: u64,
}

/// Which partition key a line gets.
enum Keys {
    Fixed(String),
    Field {
        field: String,
        fallback: Option<String>,
    },
    Random,
}

impl Keys {
    fn of(args: &PutArgs) -> Keys {
        match (&args.key_field, &args.partition_key) {
            (Some(f), fallback) => Keys::Field {
                field: f.clone(),
                fallback: fallback.clone(),
            },
            (None, Some(k)) => Keys::Fixed(k.clone()),
            (None, None) => Keys::Random,
        }
    }

    /// The key of `data`, and whether `--key-field` was missing from it.
    fn key(&self, data: &[u8]) -> (String, bool) {
        let random = || uuid::Uuid::new_v4().simple().to_string();
        match self {
            Keys::Fixed(k) => (k.clone(), false),
            Keys::Random => (random(), false),
            Keys::Field { field, fallback } => {
                let found = serde_json::from_slice::<Value>(data).ok().and_then(|v| {
                    match v.get(field.as_str())? {
                        Value::String(s) => Some(s.clone()),
                        Value::Null => None,
                        other => Some(other.to_string()),
                    }
                });
                match found {
                    Some(k) => (k, false),
                    None => (fallback.clone().unwrap_or_else(random), true),
                }
            }
        }
    }
}

/// Checks a partition key against Kinesis' limits.
fn check_key(key: &str) -> Result<(), String> {
    let chars = key.chars().count();
    if chars == 0 {
        return Err(format!(
            "the partition key is empty (Kinesis needs 1 to {MAX_KEY_CHARS} characters)"
        ));
    }
    if chars > MAX_KEY_CHARS {
        return Err(format!(
            "the partition key has {chars} characters (Kinesis takes at most {MAX_KEY_CHARS})"
        ));
    }
    Ok(())
}

/// Reads stdin's lines on a thread of its own (stdin blocks); a line is
/// sent without its `\n` (or `\r\n`).
fn read_lines() -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(4096);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        loop {
            let mut line = Vec::new();
            match input.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                    }
                    if tx.blocking_send(Ok(line)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    rx
}

/// What waiting for input gave.
enum Input {
    Line(Vec<u8>),
    End,
    /// Input paused with records waiting.
    Pause,
    Interrupted,
    /// Reading stdin failed.
    Failed(std::io::Error),
}

async fn put(args: PutArgs) -> anyhow::Result<()> {
    let mut client = Kinesis::new(&args.endpoint.endpoint, &args.endpoint.region)?;
    let style = Style::detect();
    let keys = Keys::of(&args);
    if let Some(k) = &args.partition_key {
        check_key(k).map_err(|e| anyhow!("--partition-key: {e}"))?;
    }
    // Records per call: with `--rate`, about five calls a second.
    let max_records = match args.rate {
        Some(r) => (r / 5).clamp(1, PUT_RECORDS_MAX_RECORDS as u64) as usize,
        None => PUT_RECORDS_MAX_RECORDS,
    };
    let mut lines = read_lines();
    let mut stats = Stats::default();
    let mut batch: Vec<Rec> = Vec::new();
    let mut batch_bytes = 0usize;
    let mut line_no = 0u64;
    let started = Instant::now();
    let mut progress = Progress::new(style.progress);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut interrupted = false;
    loop {
        let input = if batch.is_empty() {
            tokio::select! {
                l = lines.recv() => match l {
                    None => Input::End,
                    Some(Ok(l)) => Input::Line(l),
                    Some(Err(e)) => Input::Failed(e),
                },
                _ = &mut ctrl_c => Input::Interrupted,
            }
        } else {
            tokio::select! {
                l = tokio::time::timeout(LINGER, lines.recv()) => match l {
                    Err(_) => Input::Pause,
                    Ok(None) => Input::End,
                    Ok(Some(Ok(l))) => Input::Line(l),
                    Ok(Some(Err(e))) => Input::Failed(e),
                },
                _ = &mut ctrl_c => Input::Interrupted,
            }
        };
        let line = match input {
            Input::Line(l) => l,
            Input::Pause => {
                send_paced(&mut client, &args, &mut batch, &mut stats, started).await?;
                batch_bytes = 0;
                progress.show(&stats, started);
                continue;
            }
            Input::End => break,
            Input::Failed(e) => {
                send_paced(&mut client, &args, &mut batch, &mut stats, started).await?;
                progress.clear();
                bail!(
                    "reading stdin after line {line_no}: {e}; {} records were put to {}",
                    stats.records,
                    args.stream
                );
            }
            Input::Interrupted => {
                interrupted = true;
                break;
            }
        };
        line_no += 1;
        let (key, missing) = keys.key(&line);
        if let Err(e) = check_key(&key) {
            send_paced(&mut client, &args, &mut batch, &mut stats, started).await?;
            progress.clear();
            bail!(
                "line {line_no}: {e}; {} records before it were put to {}",
                stats.records,
                args.stream
            );
        }
        stats.without_key_field += u64::from(missing);
        let rec = Rec {
            line: line_no,
            key,
            data: line,
        };
        if !batch.is_empty() && batch_bytes + rec.size() > PUT_RECORDS_MAX_BYTES {
            send_paced(&mut client, &args, &mut batch, &mut stats, started).await?;
            batch_bytes = 0;
        }
        batch_bytes += rec.size();
        batch.push(rec);
        if batch.len() >= max_records {
            send_paced(&mut client, &args, &mut batch, &mut stats, started).await?;
            batch_bytes = 0;
            progress.show(&stats, started);
        }
    }
    send_paced(&mut client, &args, &mut batch, &mut stats, started).await?;
    progress.clear();
    let secs = started.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{} {} records ({} bytes) to {} in {} PutRecords calls, {:.2} s",
        if interrupted {
            "interrupted: put"
        } else {
            "put"
        },
        stats.records,
        stats.bytes,
        args.stream,
        stats.calls,
        secs
    )?;
    writeln!(
        out,
        "retried {} refused records and {} failed calls",
        stats.retried_records, stats.retried_calls
    )?;
    if let Some(f) = &args.key_field {
        if stats.without_key_field > 0 {
            writeln!(
                out,
                "{} lines had no field {f}: {}",
                stats.without_key_field,
                match &args.partition_key {
                    Some(k) => format!("partition key {k}"),
                    None => "random partition keys".to_owned(),
                }
            )?;
        }
    }
    if stats.out_of_order > 0 {
        writeln!(
            out,
            "warning: {} records were stored after a later record of their partition key (the endpoint took part of a batch out of order)",
            stats.out_of_order
        )?;
    }
    Ok(())
}

/// Sends `batch` (then empties it), first waiting as `--rate` requires.
async fn send_paced(
    client: &mut Kinesis,
    args: &PutArgs,
    batch: &mut Vec<Rec>,
    stats: &mut Stats,
    started: Instant,
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    if let Some(rate) = args.rate {
        let due = started + Duration::from_secs_f64(stats.records as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
    }
    send(client, &args.stream, batch, stats).await?;
    batch.clear();
    Ok(())
}

/// The PutRecords body of `recs`.
fn body(stream: &str, recs: &[&Rec]) -> Bytes {
    let b64 = base64::engine::general_purpose::STANDARD;
    let records: Vec<Value> = recs
        .iter()
        .map(|r| serde_json::json!({"Data": b64.encode(&r.data), "PartitionKey": r.key}))
        .collect();
    Bytes::from(
        serde_json::to_vec(&serde_json::json!({"StreamName": stream, "Records": records}))
            .unwrap_or_default(),
    )
}

/// Puts `batch` until every record is taken: refused records again, in
/// order, after a backoff; throttled calls for as long as it takes, other
/// failed calls [`MAX_ATTEMPTS`] times.
async fn send(
    client: &mut Kinesis,
    stream: &str,
    batch: &[Rec],
    stats: &mut Stats,
) -> anyhow::Result<()> {
    let mut pending: Vec<&Rec> = batch.iter().collect();
    let mut attempt = 0u32;
    let mut failures = 0u32;
    loop {
        stats.calls += 1;
        let answer = client
            .call_bytes("PutRecords", body(stream, &pending))
            .await;
        let v = match answer {
            Ok(v) => v,
            Err(e) => {
                let throttled = super::is_error(&e, "ProvisionedThroughputExceededException")
                    || super::is_error(&e, "LimitExceededException");
                if retryable(&e) {
                    failures += u32::from(!throttled);
                    if failures < MAX_ATTEMPTS {
                        stats.retried_calls += 1;
                        attempt += 1;
                        tokio::time::sleep(backoff(attempt)).await;
                        continue;
                    }
                }
                let (first, last) = (pending[0].line, pending[pending.len() - 1].line);
                return Err(e.context(format!(
                    "putting lines {first} to {last} to {stream}; {} records before them were put",
                    stats.records
                )));
            }
        };
        let results = v["Records"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        if results.len() != pending.len() {
            bail!(
                "PutRecords answered {} results for {} records",
                results.len(),
                pending.len()
            );
        }
        let refused: Vec<bool> = results
            .iter()
            .map(|r| r.get("ErrorCode").is_some_and(|c| !c.is_null()))
            .collect();
        for (r, _) in pending.iter().zip(&refused).filter(|(_, f)| !**f) {
            stats.records += 1;
            stats.bytes += r.data.len() as u64;
        }
        stats.out_of_order += out_of_order(&pending, &refused);
        let again: Vec<&Rec> = pending
            .iter()
            .zip(&refused)
            .filter(|(_, f)| **f)
            .map(|(r, _)| *r)
            .collect();
        if again.is_empty() {
            return Ok(());
        }
        // Codes other than throttling (InternalFailure, KMS errors) count
        // towards giving up.
        let throttled_only = results
            .iter()
            .filter_map(|r| r.get("ErrorCode").and_then(Value::as_str))
            .all(|c| c == "ProvisionedThroughputExceededException");
        if !throttled_only {
            failures += 1;
            if failures >= MAX_ATTEMPTS {
                let first = results
                    .iter()
                    .find(|r| r.get("ErrorCode").is_some_and(|c| !c.is_null()))
                    .ok_or_else(|| anyhow!("no refused record"))?;
                bail!(
                    "PutRecords kept refusing {} records of lines {} to {}: {}: {}",
                    again.len(),
                    again[0].line,
                    again[again.len() - 1].line,
                    first["ErrorCode"].as_str().unwrap_or("?"),
                    first["ErrorMessage"].as_str().unwrap_or("")
                );
            }
        }
        stats.retried_records += again.len() as u64;
        pending = again;
        attempt += 1;
        tokio::time::sleep(backoff(attempt)).await;
    }
}

/// Records taken although an earlier record of their key was refused:
/// these are now stored ahead of it.
fn out_of_order(pending: &[&Rec], refused: &[bool]) -> u64 {
    let mut refused_keys = std::collections::HashSet::new();
    let mut n = 0;
    for (r, f) in pending.iter().zip(refused) {
        if *f {
            refused_keys.insert(r.key.as_str());
        } else if refused_keys.contains(r.key.as_str()) {
            n += 1;
        }
    }
    n
}

/// A progress line on stderr, redrawn at most five times a second.
struct Progress {
    on: bool,
    last: Option<Instant>,
}

impl Progress {
    fn new(on: bool) -> Progress {
        Progress { on, last: None }
    }

    fn show(&mut self, stats: &Stats, started: Instant) {
        if !self.on
            || self
                .last
                .is_some_and(|l| l.elapsed() < Duration::from_millis(200))
        {
            return;
        }
        self.last = Some(Instant::now());
        let secs = started.elapsed().as_secs_f64().max(0.001);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[K{} records put, {} retried, {:.0} records/s",
            stats.records,
            stats.retried_records,
            stats.records as f64 / secs
        );
        let _ = err.flush();
    }

    fn clear(&mut self) {
        if self.on && self.last.is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(line: u64, key: &str) -> Rec {
        Rec {
            line,
            key: key.into(),
            data: Vec::new(),
        }
    }

    #[test]
    fn keys_from_a_field_a_flag_or_random() {
        let field = Keys::Field {
            field: "user".into(),
            fallback: None,
        };
        assert_eq!(field.key(br#"{"user":"ann","n":1}"#), ("ann".into(), false));
        assert_eq!(field.key(br#"{"user":42}"#), ("42".into(), false));
        let (k, missing) = field.key(b"not json");
        assert_eq!((k.len(), missing), (32, true));
        let (k, missing) = field.key(br#"{"user":null}"#);
        assert_eq!((k.len(), missing), (32, true));
        let with_fallback = Keys::Field {
            field: "user".into(),
            fallback: Some("other".into()),
        };
        assert_eq!(with_fallback.key(b"{}"), ("other".into(), true));
        assert_eq!(Keys::Fixed("k".into()).key(b"x"), ("k".into(), false));
        let (a, _) = Keys::Random.key(b"x");
        let (b, _) = Keys::Random.key(b"x");
        assert_ne!(a, b);
    }

    #[test]
    fn partition_key_limits() {
        assert!(check_key("a").is_ok());
        assert!(check_key(&"é".repeat(256)).is_ok());
        assert_eq!(
            check_key("").unwrap_err(),
            "the partition key is empty (Kinesis needs 1 to 256 characters)"
        );
        assert_eq!(
            check_key(&"x".repeat(257)).unwrap_err(),
            "the partition key has 257 characters (Kinesis takes at most 256)"
        );
    }

    #[test]
    fn records_taken_after_a_refused_one_of_their_key() {
        let recs = [
            rec(1, "a"),
            rec(2, "b"),
            rec(3, "a"),
            rec(4, "b"),
            rec(5, "c"),
        ];
        let refs: Vec<&Rec> = recs.iter().collect();
        assert_eq!(out_of_order(&refs, &[false, false, false, false, false]), 0);
        // A shard's tail refused: nothing of those keys taken after.
        assert_eq!(out_of_order(&refs, &[false, false, true, false, true]), 0);
        assert_eq!(out_of_order(&refs, &[true, true, false, true, false]), 1);
    }

    #[test]
    fn body_is_put_records_json() {
        let recs = [Rec {
            line: 1,
            key: "k".into(),
            data: b"hi".to_vec(),
        }];
        let refs: Vec<&Rec> = recs.iter().collect();
        let v: Value = serde_json::from_slice(&body("s", &refs)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"StreamName": "s", "Records": [{"Data": "aGk=", "PartitionKey": "k"}]})
        );
    }
}
