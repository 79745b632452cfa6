//! The console's live tail of a Data Streams stream, where AWS has no API
//! for it: `GET /_riffle/console/api/streams/<name>/tail` answers a
//! `text/event-stream` (Server-Sent Events) of the stream's records, read
//! in process with [`riffle_streams::access::StreamReader`].
//!
//! - `from`: `latest` (the default), `trim-horizon`, or `at-timestamp`
//!   with `timestamp` (epoch seconds, fractions allowed). Every shard is
//!   read; a child shard only once its parents are drained, so a partition
//!   key's records come out in order across splits and merges.
//! - Events: `record`, one per record, its data a JSON object
//!   `{shardId, sequenceNumber, partitionKey, arrivalTimestamp (epoch
//!   seconds), data (base64)}`; `failure` (`{__type, message}`, an AWS
//!   error such as the stream's deletion) and `end` (every shard closed and
//!   read) close the stream. A comment goes out every [`HEARTBEAT`] while
//!   nothing arrives, so a client that left is noticed.
//! - Backpressure: events pass through a channel of [`BUFFERED`] entries
//!   and the reader reads [`BATCH`] records at a time, only when the
//!   previous batch has gone into the channel: a client that reads slowly
//!   holds at most that much in memory, and the reader waits for it.
//! - Access: `EventSource` cannot send headers, so with credentials the
//!   URL is presigned (SigV4 query parameters `X-Amz-*`, checked like any
//!   signed request); a request whose `Origin` is not the server's own is
//!   refused, as the console guard refuses it; it reads, so read-only
//!   consoles may tail.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Response, StatusCode};
use riffle_streams::access::{Start, StreamReader, StreamRecord};
use riffle_wire::{Encoding, Map, Value};
use tokio::sync::mpsc;

use crate::body::Body;
use crate::platform::Shared;

/// Records read at a time.
pub const BATCH: usize = 32;
/// Events held for a client that reads slowly.
pub const BUFFERED: usize = 16;
/// How often an idle tail sends a comment.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// Data Streams, as the tail reads it.
#[derive(Clone)]
pub struct Streams(pub Arc<riffle_streams::Service>);

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Streams")
    }
}

/// The stream a console path (after [`crate::console::PREFIX`]) tails.
pub fn stream_of(rest: &str) -> Option<&str> {
    rest.strip_prefix("/api/streams/")?
        .strip_suffix("/tail")
        .filter(|n| !n.is_empty() && !n.contains('/'))
}

/// Where the tail starts, from the query.
fn start_of(query: &str) -> Result<Start, String> {
    let pairs = riffle_wire::sigv4::query_pairs(query);
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    match get("from").unwrap_or("latest") {
        "latest" => Ok(Start::Latest),
        "trim-horizon" => Ok(Start::TrimHorizon),
        "at-timestamp" => {
            let t = get("timestamp").ok_or("A timestamp is required when from is at-timestamp.")?;
            let secs = t
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| {
                    format!("The timestamp {t} is not a number of seconds since the epoch.")
                })?;
            Ok(Start::AtTimestamp((secs * 1000.0).round() as i64))
        }
        other => Err(format!(
            "from {other} is not one of trim-horizon, latest and at-timestamp."
        )),
    }
}

/// Answers `GET .../api/streams/<name>/tail`.
pub async fn serve(
    streams: Option<&Streams>,
    parts: &http::request::Parts,
    shared: &Shared,
    name: &str,
) -> Response<Body> {
    if let Some(refused) = crate::console::foreign_origin(parts) {
        return refused;
    }
    let region = match shared.authenticate(parts, &[]) {
        Ok(r) => r,
        Err(e) => return crate::console::auth_refusal(&e),
    };
    let start = match start_of(parts.uri.query().unwrap_or("")) {
        Ok(s) => s,
        Err(m) => return crate::error(Encoding::Json, 400, "InvalidArgumentException", Some(&m)),
    };
    let Some(streams) = streams else {
        return crate::error(
            Encoding::Json,
            400,
            "ResourceNotFoundException",
            Some("This server serves no Data Streams to tail."),
        );
    };
    let reader = match streams.0.stream_reader(&region, name, start) {
        Ok(r) => r,
        Err(e) => {
            return crate::error(
                Encoding::Json,
                e.status(),
                e.error_type(),
                e.message().as_deref(),
            )
        }
    };
    let body = if parts.method == Method::HEAD {
        Body::empty()
    } else {
        let (tx, rx) = mpsc::channel(BUFFERED);
        tokio::spawn(pump(reader, tx));
        Body::Channel(rx)
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-store")
        .body(body)
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// One SSE event.
fn event(name: &str, data: &Value) -> Bytes {
    let json = riffle_wire::json::encode(data);
    let mut out = Vec::with_capacity(json.len() + name.len() + 16);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(&json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

fn record_event(r: &StreamRecord) -> Bytes {
    let mut m = Map::with_capacity(5);
    m.put("shardId", Value::Str(r.shard_id.clone()));
    m.put("sequenceNumber", Value::Str(r.sequence_number.clone()));
    m.put("partitionKey", Value::Str(r.partition_key.clone()));
    m.put("arrivalTimestamp", Value::Timestamp(r.arrival_ms));
    m.put("data", Value::Bytes(r.data.clone()));
    event("record", &Value::Map(m))
}

/// Reads the stream into `tx` until the client leaves, the stream ends or
/// fails.
pub async fn pump(mut reader: StreamReader, tx: mpsc::Sender<Bytes>) {
    if tx.send(Bytes::from_static(b": tail\n\n")).await.is_err() {
        return;
    }
    loop {
        let batch = tokio::select! {
            r = reader.next(BATCH, HEARTBEAT) => r,
            _ = tx.closed() => return,
        };
        match batch {
            Ok(records) if records.is_empty() => {
                let next = if reader.is_finished() {
                    event("end", &Value::Map(Map::new()))
                } else {
                    Bytes::from_static(b": idle\n\n")
                };
                let end = reader.is_finished();
                if tx.send(next).await.is_err() || end {
                    return;
                }
            }
            Ok(records) => {
                for r in &records {
                    if tx.send(record_event(r)).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                let mut m = Map::new();
                m.put("__type", Value::Str(e.error_type().to_owned()));
                m.put("message", e.message().map(Value::Str));
                let _ = tx.send(event("failure", &Value::Map(m))).await;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_names_one_stream() {
        assert_eq!(stream_of("/api/streams/orders/tail"), Some("orders"));
        assert_eq!(stream_of("/api/streams//tail"), None);
        assert_eq!(stream_of("/api/streams/a/b/tail"), None);
        assert_eq!(stream_of("/api/streams/orders"), None);
        assert_eq!(stream_of("/api/server"), None);
    }

    #[test]
    fn the_query_names_the_start() {
        assert_eq!(start_of(""), Ok(Start::Latest));
        assert_eq!(start_of("from=latest"), Ok(Start::Latest));
        assert_eq!(start_of("from=trim-horizon"), Ok(Start::TrimHorizon));
        assert_eq!(
            start_of("from=at-timestamp&timestamp=1700000000.25"),
            Ok(Start::AtTimestamp(1_700_000_000_250))
        );
        assert_eq!(
            start_of("from=at-timestamp"),
            Err("A timestamp is required when from is at-timestamp.".into())
        );
        assert_eq!(
            start_of("from=at-timestamp&timestamp=soon"),
            Err("The timestamp soon is not a number of seconds since the epoch.".into())
        );
        assert_eq!(
            start_of("from=TRIM_HORIZON"),
            Err("from TRIM_HORIZON is not one of trim-horizon, latest and at-timestamp.".into())
        );
    }

    /// The `data` of each `record` event in `chunk`.
    fn data_of(chunk: &Bytes) -> Option<String> {
        use base64::Engine as _;
        let text = std::str::from_utf8(chunk).ok()?;
        let json = text
            .strip_prefix("event: record\ndata: ")?
            .strip_suffix("\n\n")?;
        let Ok(Value::Map(doc)) = riffle_wire::json::decode(json.as_bytes()) else {
            return None;
        };
        let Some(Value::Str(b64)) = doc.get("data") else {
            return None;
        };
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        String::from_utf8(bytes).ok()
    }

    #[tokio::test]
    async fn a_slow_client_holds_the_reader_back_and_a_gone_one_stops_it() {
        use riffle_streams::access::PutEntry;
        let svc = riffle_streams::Service::new(
            riffle_streams::Config {
                status_delay_ms: 0,
                ..riffle_streams::Config::default()
            },
            riffle_core::clock::SystemClock::new() as Arc<dyn riffle_core::Clock>,
            riffle_log::memory::MemoryEngine::new(),
            [3; 32],
        );
        let ctx = riffle_streams::Ctx {
            region: "us-east-1".into(),
        };
        let create = riffle_wire::json::decode(br#"{"StreamName":"s","ShardCount":1}"#).unwrap();
        svc.call(&ctx, "CreateStream", create).await.unwrap();
        let writer = svc.stream_writer("us-east-1", "s").unwrap();
        let sent: Vec<String> = (0..200).map(|i| format!("record {i}")).collect();
        for chunk in sent.chunks(50) {
            let entries = chunk
                .iter()
                .map(|d| PutEntry {
                    partition_key: "k".into(),
                    explicit_hash_key: None,
                    data: Bytes::from(d.clone()),
                })
                .collect();
            writer.put(entries).await.unwrap();
        }
        let reader = svc
            .stream_reader("us-east-1", "s", Start::TrimHorizon)
            .unwrap();
        let (tx, mut rx) = mpsc::channel(BUFFERED);
        let task = tokio::spawn(pump(reader, tx));
        // Nothing read yet: the channel holds BUFFERED events and no more.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(rx.len(), BUFFERED);
        assert_eq!(rx.recv().await.unwrap(), Bytes::from_static(b": tail\n\n"));
        let mut got = Vec::new();
        while got.len() < sent.len() {
            let chunk = rx.recv().await.unwrap();
            got.push(data_of(&chunk).unwrap());
        }
        assert_eq!(got, sent);
        // The client leaves while the reader waits for records: it stops.
        drop(rx);
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .unwrap()
            .unwrap();
    }

    #[test]
    fn a_record_is_one_event_of_json() {
        let r = StreamRecord {
            shard_id: "shardId-000000000001".into(),
            sequence_number: "4959".into(),
            partition_key: "k \"1\"\n".into(),
            data: Bytes::from_static(&[0, 1, 2, 255]),
            arrival_ms: 1_700_000_000_123,
        };
        assert_eq!(
            record_event(&r),
            Bytes::from_static(
                b"event: record\ndata: {\"shardId\":\"shardId-000000000001\",\"sequenceNumber\":\"4959\",\"partitionKey\":\"k \\\"1\\\"\\n\",\"arrivalTimestamp\":1700000000.123,\"data\":\"AAEC/w==\"}\n\n"
            )
        );
    }
}
