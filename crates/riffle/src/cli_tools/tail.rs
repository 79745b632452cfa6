//! `riffle tail STREAM`: follows every shard of a stream and prints its
//! records. Shards are read as the KCL reads them: a child shard (of a
//! split or merge) only once each of its parents still listed has been
//! read to its end, so a partition key's records come out in order across
//! resharding. A reader per shard polls GetRecords; when a shard ends the
//! shards are listed again and children whose parents are done begin at
//! their trim horizon.

use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;

use anyhow::{anyhow, bail};
use base64::Engine;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{backoff, is_broken_pipe, is_error, retryable, runtime, Kinesis, Style};
use crate::cli::{TailArgs, TailFormat, TailFrom};

/// The pause between GetRecords calls of a shard with nothing new (AWS
/// allows five calls a second per shard).
const IDLE: Duration = Duration::from_millis(250);
/// Failed calls other than throttling are tried this many times.
const MAX_ATTEMPTS: u32 = 10;

pub fn run(args: TailArgs) -> anyhow::Result<()> {
    let result = runtime()?.block_on(tail(args));
    match result {
        Err(e) if is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

/// Where a shard's reading begins.
#[derive(Clone, Debug, PartialEq)]
enum Position {
    TrimHorizon,
    Latest,
    /// Seconds since the Unix epoch.
    At(f64),
    AfterSequence(String),
}

impl Position {
    fn request(&self, stream: &str, shard: &str) -> Value {
        let mut v = json!({"StreamName": stream, "ShardId": shard});
        match self {
            Position::TrimHorizon => v["ShardIteratorType"] = json!("TRIM_HORIZON"),
            Position::Latest => v["ShardIteratorType"] = json!("LATEST"),
            Position::At(t) => {
                v["ShardIteratorType"] = json!("AT_TIMESTAMP");
                v["Timestamp"] = json!(t);
            }
            Position::AfterSequence(s) => {
                v["ShardIteratorType"] = json!("AFTER_SEQUENCE_NUMBER");
                v["StartingSequenceNumber"] = json!(s);
            }
        }
        v
    }
}

/// `--timestamp`: RFC 3339 or seconds since the Unix epoch.
fn parse_timestamp(s: &str) -> anyhow::Result<f64> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(secs);
        }
    }
    let t: jiff::Timestamp = s.parse().map_err(|_| {
        anyhow!("--timestamp {s} is neither RFC 3339 (2026-01-02T15:04:05Z) nor seconds since the Unix epoch")
    })?;
    Ok(t.as_millisecond() as f64 / 1000.0)
}

/// A shard as ListShards gives it.
#[derive(Clone, Debug)]
struct Shard {
    id: String,
    parents: Vec<String>,
    closed: bool,
}

async fn list_shards(client: &mut Kinesis, stream: &str) -> anyhow::Result<Vec<Shard>> {
    let mut shards = Vec::new();
    let mut request = json!({"StreamName": stream});
    loop {
        let v = call_retrying(client, "ListShards", &request).await?;
        for s in v["Shards"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let Some(id) = s["ShardId"].as_str() else {
                continue;
            };
            shards.push(Shard {
                id: id.to_owned(),
                parents: ["ParentShardId", "AdjacentParentShardId"]
                    .iter()
                    .filter_map(|k| s[*k].as_str().map(str::to_owned))
                    .collect(),
                closed: s["SequenceNumberRange"]["EndingSequenceNumber"].is_string(),
            });
        }
        match v["NextToken"].as_str() {
            Some(t) => request = json!({"NextToken": t}),
            None => return Ok(shards),
        }
    }
}

/// One record read.
struct Record {
    shard: String,
    sequence: String,
    key: String,
    /// ApproximateArrivalTimestamp, seconds since the Unix epoch.
    arrival: f64,
    data: Vec<u8>,
}

enum Event {
    Records(Vec<Record>),
    /// The shard was read to its end.
    Ended(String),
    Failed(anyhow::Error),
}

/// Calls `op` until it answers: throttling for as long as it takes, other
/// retryable failures [`MAX_ATTEMPTS`] times.
async fn call_retrying(client: &mut Kinesis, op: &str, body: &Value) -> anyhow::Result<Value> {
    let mut attempt = 0;
    let mut failures = 0;
    loop {
        match client.call(op, body).await {
            Ok(v) => return Ok(v),
            Err(e) if retryable(&e) => {
                let throttled = is_error(&e, "ProvisionedThroughputExceededException")
                    || is_error(&e, "LimitExceededException");
                failures += u32::from(!throttled);
                if failures >= MAX_ATTEMPTS {
                    return Err(e);
                }
                attempt += 1;
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Reads `shard` from `start` to its end (or forever, while it is open).
async fn read_shard(
    mut client: Kinesis,
    stream: String,
    shard: String,
    start: Position,
    events: mpsc::Sender<Event>,
) {
    let result = read_shard_inner(&mut client, &stream, &shard, start, &events).await;
    let event = match result {
        Ok(()) => Event::Ended(shard),
        Err(e) => Event::Failed(e.context(format!("reading {shard}"))),
    };
    let _ = events.send(event).await;
}

async fn read_shard_inner(
    client: &mut Kinesis,
    stream: &str,
    shard: &str,
    start: Position,
    events: &mpsc::Sender<Event>,
) -> anyhow::Result<()> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut position = start;
    let mut iterator = iterator(client, stream, shard, &position).await?;
    loop {
        let answer = call_retrying(
            client,
            "GetRecords",
            &json!({"ShardIterator": iterator, "Limit": 10_000}),
        )
        .await;
        let v = match answer {
            Ok(v) => v,
            Err(e) if is_error(&e, "ExpiredIteratorException") => {
                iterator = self::iterator(client, stream, shard, &position).await?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut records = Vec::new();
        for r in v["Records"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let data = r["Data"]
                .as_str()
                .and_then(|d| b64.decode(d).ok())
                .ok_or_else(|| anyhow!("GetRecords answered a record without base64 Data"))?;
            let sequence = r["SequenceNumber"].as_str().unwrap_or("").to_owned();
            records.push(Record {
                shard: shard.to_owned(),
                key: r["PartitionKey"].as_str().unwrap_or("").to_owned(),
                arrival: r["ApproximateArrivalTimestamp"].as_f64().unwrap_or(0.0),
                data,
                sequence: sequence.clone(),
            });
            position = Position::AfterSequence(sequence);
        }
        let empty = records.is_empty();
        if !empty && events.send(Event::Records(records)).await.is_err() {
            return Ok(());
        }
        match v["NextShardIterator"].as_str() {
            Some(next) => iterator = next.to_owned(),
            None => return Ok(()),
        }
        if empty || v["MillisBehindLatest"].as_i64() == Some(0) {
            tokio::time::sleep(IDLE).await;
        }
    }
}

async fn iterator(
    client: &mut Kinesis,
    stream: &str,
    shard: &str,
    position: &Position,
) -> anyhow::Result<String> {
    let v = call_retrying(client, "GetShardIterator", &position.request(stream, shard)).await?;
    v["ShardIterator"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("GetShardIterator answered no ShardIterator"))
}

/// Which shards are being read, which are done, and which may begin.
struct Lineage {
    started: HashSet<String>,
    ended: HashSet<String>,
}

impl Lineage {
    /// Shards of `shards` that may begin now: not begun, and every parent
    /// still listed read to its end.
    fn ready<'a>(&self, shards: &'a [Shard]) -> Vec<&'a Shard> {
        let listed: HashSet<&str> = shards.iter().map(|s| s.id.as_str()).collect();
        shards
            .iter()
            .filter(|s| !self.started.contains(&s.id) && !self.ended.contains(&s.id))
            .filter(|s| {
                s.parents
                    .iter()
                    .all(|p| !listed.contains(p.as_str()) || self.ended.contains(p))
            })
            .collect()
    }
}

async fn tail(args: TailArgs) -> anyhow::Result<()> {
    let endpoint = args.endpoint.clone();
    let new_client = || Kinesis::new(&endpoint.endpoint, &endpoint.region);
    let first = match args.from {
        TailFrom::TrimHorizon => Position::TrimHorizon,
        TailFrom::Latest => Position::Latest,
        TailFrom::Timestamp => {
            let t = args
                .timestamp
                .as_deref()
                .ok_or_else(|| anyhow!("--from timestamp needs --timestamp"))?;
            Position::At(parse_timestamp(t)?)
        }
    };
    if args.timestamp.is_some() && args.from != TailFrom::Timestamp {
        bail!("--timestamp goes with --from timestamp");
    }
    if args.limit == Some(0) {
        return Ok(());
    }
    let style = Style::detect();
    let mut client = new_client()?;
    let shards = list_shards(&mut client, &args.stream).await?;
    let mut lineage = Lineage {
        started: HashSet::new(),
        ended: HashSet::new(),
    };
    if first == Position::Latest {
        // Closed shards hold only records put before now.
        for s in shards.iter().filter(|s| s.closed) {
            lineage.ended.insert(s.id.clone());
        }
    }
    if style.progress {
        eprintln!(
            "following {} ({} open shards) from {}; Ctrl-C to stop",
            args.stream,
            shards.iter().filter(|s| !s.closed).count(),
            match args.from {
                TailFrom::TrimHorizon => "the trim horizon".to_owned(),
                TailFrom::Latest => "now".to_owned(),
                TailFrom::Timestamp => args.timestamp.clone().unwrap_or_default(),
            }
        );
    }
    let (tx, mut rx) = mpsc::channel::<Event>(64);
    let start = |shards: &[Shard], lineage: &mut Lineage, position: &Position| {
        let ready: Vec<Shard> = lineage.ready(shards).into_iter().cloned().collect();
        for s in ready {
            lineage.started.insert(s.id.clone());
            let client = new_client()?;
            tokio::spawn(read_shard(
                client,
                args.stream.clone(),
                s.id.clone(),
                position.clone(),
                tx.clone(),
            ));
        }
        anyhow::Ok(())
    };
    start(&shards, &mut lineage, &first)?;
    // Children begin at their trim horizon, except with `--from timestamp`,
    // where records before the timestamp are skipped in them too.
    let later = match &first {
        Position::At(t) => Position::At(*t),
        _ => Position::TrimHorizon,
    };
    let mut printer = Printer {
        format: args.format,
        style,
        out: std::io::BufWriter::new(std::io::stdout().lock()),
    };
    let mut printed = 0u64;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let event = tokio::select! {
            e = rx.recv() => e,
            _ = &mut ctrl_c => break,
        };
        match event {
            Some(Event::Records(records)) => {
                for r in &records {
                    printer.print(r)?;
                    printed += 1;
                    if args.limit.is_some_and(|l| printed >= l) {
                        printer.out.flush()?;
                        return Ok(());
                    }
                }
                printer.out.flush()?;
            }
            Some(Event::Ended(shard)) => {
                lineage.started.remove(&shard);
                lineage.ended.insert(shard);
                let shards = list_shards(&mut client, &args.stream).await?;
                start(&shards, &mut lineage, &later)?;
            }
            Some(Event::Failed(e)) => return Err(e),
            None => break,
        }
    }
    printer.out.flush()?;
    Ok(())
}

/// Writes records in the chosen format.
struct Printer<W: Write> {
    format: TailFormat,
    style: Style,
    out: W,
}

impl<W: Write> Printer<W> {
    fn print(&mut self, r: &Record) -> anyhow::Result<()> {
        let prefix = |style: &Style| {
            if style.colour {
                format!(
                    "{} {} ",
                    style.paint("2", &r.shard),
                    style.paint("36", &r.key)
                )
            } else {
                String::new()
            }
        };
        match self.format {
            TailFormat::Json => writeln!(self.out, "{}", json_line(r))?,
            TailFormat::Text => {
                let text = String::from_utf8_lossy(&r.data);
                let text = text.strip_suffix('\n').unwrap_or(&text);
                writeln!(self.out, "{}{text}", prefix(&self.style))?;
            }
            TailFormat::Hex => {
                writeln!(self.out, "{}{}", prefix(&self.style), hex::encode(&r.data))?
            }
            TailFormat::Raw => self.out.write_all(&r.data)?,
        }
        Ok(())
    }
}

/// A record as one JSON object, keys in a fixed order: `shard`,
/// `sequence_number`, `partition_key`, `arrival_time` (RFC 3339, UTC,
/// milliseconds), `data` and `encoding` (`utf-8` when the data is UTF-8,
/// else `base64`).
fn json_line(r: &Record) -> String {
    let (data, encoding) = match std::str::from_utf8(&r.data) {
        Ok(s) => (s.to_owned(), "utf-8"),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(&r.data),
            "base64",
        ),
    };
    let s = |v: &str| Value::String(v.to_owned()).to_string();
    format!(
        "{{\"shard\":{},\"sequence_number\":{},\"partition_key\":{},\"arrival_time\":{},\"data\":{},\"encoding\":{}}}",
        s(&r.shard),
        s(&r.sequence),
        s(&r.key),
        s(&rfc3339_millis(r.arrival)),
        s(&data),
        s(encoding)
    )
}

/// `2026-01-02T15:04:05.123Z` of seconds since the Unix epoch.
fn rfc3339_millis(secs: f64) -> String {
    let ms = (secs * 1000.0).round() as i64;
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = riffle_core::clock::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, parents: &[&str], closed: bool) -> Shard {
        Shard {
            id: id.into(),
            parents: parents.iter().map(|p| (*p).to_owned()).collect(),
            closed,
        }
    }

    fn ids(v: Vec<&Shard>) -> Vec<&str> {
        v.into_iter().map(|s| s.id.as_str()).collect()
    }

    #[test]
    fn children_wait_for_every_listed_parent() {
        let shards = [
            shard("p0", &[], true),
            shard("p1", &[], true),
            shard("split-a", &["p0"], false),
            shard("merged", &["p1", "gone"], false),
        ];
        let mut l = Lineage {
            started: HashSet::new(),
            ended: HashSet::new(),
        };
        assert_eq!(ids(l.ready(&shards)), ["p0", "p1"]);
        l.started.extend(["p0".to_owned(), "p1".to_owned()]);
        assert!(l.ready(&shards).is_empty());
        l.started.remove("p0");
        l.ended.insert("p0".into());
        assert_eq!(ids(l.ready(&shards)), ["split-a"]);
        l.started.insert("split-a".into());
        l.started.remove("p1");
        l.ended.insert("p1".into());
        // A parent no longer listed (past retention) does not hold a child back.
        assert_eq!(ids(l.ready(&shards)), ["merged"]);
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1767225600").unwrap(), 1_767_225_600.0);
        assert_eq!(parse_timestamp("1767225600.5").unwrap(), 1_767_225_600.5);
        assert_eq!(
            parse_timestamp("2026-01-01T00:00:00Z").unwrap(),
            1_767_225_600.0
        );
        assert_eq!(
            parse_timestamp("2026-01-01T01:00:00.250+01:00").unwrap(),
            1_767_225_600.25
        );
        assert_eq!(
            parse_timestamp("yesterday").unwrap_err().to_string(),
            "--timestamp yesterday is neither RFC 3339 (2026-01-02T15:04:05Z) nor seconds since the Unix epoch"
        );
        assert_eq!(rfc3339_millis(1_767_225_600.25), "2026-01-01T00:00:00.250Z");
        assert_eq!(rfc3339_millis(0.0), "1970-01-01T00:00:00.000Z");
    }

    fn record(data: &[u8]) -> Record {
        Record {
            shard: "shardId-000000000000".into(),
            sequence: "4960".into(),
            key: "k\"1".into(),
            arrival: 1_767_225_600.123,
            data: data.to_vec(),
        }
    }

    #[test]
    fn formats() {
        assert_eq!(
            json_line(&record(b"caf\xc3\xa9\n")),
            r#"{"shard":"shardId-000000000000","sequence_number":"4960","partition_key":"k\"1","arrival_time":"2026-01-01T00:00:00.123Z","data":"café\n","encoding":"utf-8"}"#
        );
        assert_eq!(
            json_line(&record(b"\xff\x00")),
            r#"{"shard":"shardId-000000000000","sequence_number":"4960","partition_key":"k\"1","arrival_time":"2026-01-01T00:00:00.123Z","data":"/wA=","encoding":"base64"}"#
        );
        let plain = Style {
            colour: false,
            progress: false,
        };
        let mut out = Vec::new();
        for format in [TailFormat::Text, TailFormat::Hex, TailFormat::Raw] {
            let mut p = Printer {
                format,
                style: plain,
                out: &mut out,
            };
            p.print(&record(b"hi\n")).unwrap();
            p.print(&record(b"\xff")).unwrap();
        }
        assert_eq!(out, b"hi\n\xef\xbf\xbd\n68690a\nff\nhi\n\xff");
        let mut out = Vec::new();
        let mut p = Printer {
            format: TailFormat::Text,
            style: Style {
                colour: true,
                progress: false,
            },
            out: &mut out,
        };
        p.print(&record(b"hi")).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\x1b[2mshardId-000000000000\x1b[0m \x1b[36mk\"1\x1b[0m hi\n"
        );
    }

    #[test]
    fn iterator_requests() {
        assert_eq!(
            Position::At(1.5).request("s", "shardId-1"),
            json!({"StreamName": "s", "ShardId": "shardId-1", "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": 1.5})
        );
        assert_eq!(
            Position::AfterSequence("9".into()).request("s", "x"),
            json!({"StreamName": "s", "ShardId": "x", "ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": "9"})
        );
    }
}
