//! Kinesis Data Streams on the platform: AWS's pre-checks in AWS's order
//! (method, content type, target, empty or non-object body), SigV4, then
//! the service; the PutRecords/GetRecords JSON fast paths and
//! SubscribeToShard's event stream.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode};
use riffle_streams::model::{PutRecordsInput, PutRecordsOutput, PutRecordsResultEntry};
use riffle_streams::subscribe::Event;
use riffle_streams::{Ctx, KinesisError, Service};
use riffle_wire::shape::IntoValue;
use riffle_wire::{error as wire_error, eventstream, Encoding, Value};

use crate::body::Body;
use crate::faults::{Faults, THROTTLED_MESSAGE};
use crate::platform::{
    AwsService, BoxFuture, Family, Gauge, MetricKind, Request, RequestBody, Response, Route,
    Sample, Shared,
};
use crate::{base, error, header, ok, xml};

/// Bodies larger than this are refused with 413 and an empty body, as AWS
/// answers an oversized request. The largest valid request must fit: a
/// PutRecord of a 10 MiB record (MaxRecordSizeInKiB 10240) is 13,981,016
/// bytes of base64 plus < 8 KiB of JSON; a PutRecords of 5 MiB of data and
/// keys is at most 6,990,508 bytes of base64 plus 500 × ~1.7 KiB (256-char
/// keys escaped as `\uXXXX`, 39-digit hash keys, member names) ≈ 7.8 MB. In
/// CBOR both are raw bytes (≤ 10.1 MiB). 16 MiB covers all with room for
/// whitespace.
pub const MAX_BODY: usize = 16 * 1024 * 1024;
pub const TARGET_PREFIX: &str = "Kinesis_20131202";

/// Data Streams, served over JSON 1.1 and CBOR 1.1, with the faults users
/// asked for (none by default).
pub struct DataStreams(pub Arc<Service>, pub Faults);

pub(crate) fn kinesis_error(encoding: Encoding, e: &KinesisError) -> Response {
    tracing::debug!(error_type = e.error_type(), "request failed");
    if let KinesisError::Internal(detail) = e {
        tracing::error!(%detail, "internal failure");
    }
    error(encoding, e.status(), e.error_type(), e.message().as_deref())
}

fn access_denied() -> Response {
    xml(
        StatusCode::FORBIDDEN,
        "AccessDeniedException",
        Some("Unable to determine service/operation name to be authorized"),
    )
}

impl AwsService for DataStreams {
    fn name(&self) -> &'static str {
        "kinesis"
    }

    fn route(&self) -> Route {
        Route::Target(TARGET_PREFIX)
    }

    fn knows(&self, op: &str) -> bool {
        riffle_streams::model::OPERATIONS
            .iter()
            .any(|(n, _)| *n == op)
            || op == "SubscribeToShard"
    }

    fn max_body(&self) -> usize {
        MAX_BODY
    }

    fn overloaded(&self, parts: &http::request::Parts, op: &str) -> Response {
        let account = self.0.account();
        let encoding = match header(&parts.headers, "content-type") {
            Some(c) if c.contains("cbor") => Encoding::Cbor,
            _ => Encoding::Json,
        };
        let e = match op {
            "PutRecord" | "PutRecords" | "GetRecords" | "GetShardIterator" | "SubscribeToShard" => {
                KinesisError::ProvisionedThroughputExceeded(format!(
                    "Rate exceeded for account {account}."
                ))
            }
            _ => KinesisError::LimitExceeded(format!("Rate exceeded for account {account}.")),
        };
        kinesis_error(encoding, &e)
    }

    fn families(&self) -> Vec<Family> {
        use riffle_streams::traffic::{Figures, ShardTraffic};
        let traffic = self.0.traffic();
        let family = |name, help, kind, f: fn(&Figures) -> f64| Family {
            name,
            help,
            kind,
            samples: traffic
                .iter()
                .map(|(region, stream, fig)| Sample {
                    labels: vec![("region", region.clone()), ("stream", stream.clone())],
                    value: f(fig),
                })
                .collect(),
        };
        use MetricKind::{Counter, Gauge as G};
        let mut families = vec![
            family(
                "riffle_stream_incoming_records_total",
                "Records written (CloudWatch IncomingRecords).",
                Counter,
                |f| f.records_in as f64,
            ),
            family(
                "riffle_stream_incoming_bytes_total",
                "Bytes written, data and partition keys (CloudWatch IncomingBytes).",
                Counter,
                |f| f.bytes_in as f64,
            ),
            family(
                "riffle_stream_outgoing_records_total",
                "Records read by GetRecords and SubscribeToShard.",
                Counter,
                |f| f.records_out as f64,
            ),
            family(
                "riffle_stream_outgoing_bytes_total",
                "Data bytes read by GetRecords and SubscribeToShard.",
                Counter,
                |f| f.bytes_out as f64,
            ),
            family(
                "riffle_stream_incoming_records_per_second",
                "Records written per second over the last minute.",
                G,
                |f| f.in_per_second,
            ),
            family(
                "riffle_stream_outgoing_records_per_second",
                "Records read per second over the last minute.",
                G,
                |f| f.out_per_second,
            ),
        ];
        let shards = self.0.shard_traffic();
        let age = |a: &ShardTraffic| a.figures.iterator_age_ms.unwrap_or(0);
        families.push(Family {
            name: "riffle_streams_get_records_iterator_age_milliseconds",
            help: "Largest iterator age (MillisBehindLatest) of the stream's shards reported within the last minute; 0 when none (CloudWatch GetRecords.IteratorAgeMilliseconds).",
            kind: G,
            samples: shards
                .iter()
                .map(|(region, stream, shards)| Sample {
                    labels: vec![("region", region.clone()), ("stream", stream.clone())],
                    value: shards.iter().map(age).max().unwrap_or(0) as f64,
                })
                .collect(),
        });
        families.push(Family {
            name: "riffle_streams_shard_iterator_age_milliseconds",
            help: "A shard's latest iterator age (MillisBehindLatest) reported within the last minute; 0 when none (CloudWatch shard-level IteratorAgeMilliseconds).",
            kind: G,
            samples: shards
                .iter()
                .flat_map(|(region, stream, shards)| {
                    shards.iter().map(move |a| Sample {
                        labels: vec![
                            ("region", region.clone()),
                            ("shard", a.shard_id.clone()),
                            ("stream", stream.clone()),
                        ],
                        value: age(a) as f64,
                    })
                })
                .collect(),
        });
        families
    }

    /// `GET /_riffle/console/api/kinesis/<name>`: see
    /// [`crate::console_kinesis`].
    fn console_get<'a>(
        &'a self,
        rest: &'a str,
        region: &'a str,
    ) -> Option<BoxFuture<'a, Response>> {
        // Answered at once: nothing to await.
        let answer = crate::console_kinesis::stream(&self.0, rest, region);
        Some(Box::pin(std::future::ready(answer)))
    }

    fn gauges(&self) -> Vec<Gauge> {
        let (streams, shards) = self.0.counts();
        vec![
            Gauge {
                name: "riffle_streams",
                help: "Streams.",
                value: streams as u64,
            },
            Gauge {
                name: "riffle_open_shards",
                help: "Open shards.",
                value: shards as u64,
            },
            Gauge {
                name: "riffle_pending_write_bytes",
                help: "Record bytes accepted and not yet durable.",
                value: self.0.pending_write_bytes(),
            },
        ]
    }

    fn handle<'a>(&'a self, req: Request, shared: &'a Shared) -> BoxFuture<'a, Response> {
        Box::pin(self.serve(req, shared))
    }
}

impl DataStreams {
    async fn serve(&self, req: Request, shared: &Shared) -> Response {
        let Request { parts, body, .. } = req;
        let delay = self.1.response_delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let body = match body {
            RequestBody::Full(b) => b,
            RequestBody::TooLarge => {
                return base(StatusCode::PAYLOAD_TOO_LARGE)
                    .body(Body::empty())
                    .unwrap_or_else(|_| Response::new(Body::empty()))
            }
            RequestBody::Stream(_) => return access_denied(),
        };
        if parts.method != Method::POST {
            return access_denied();
        }
        let content_type = header(&parts.headers, "content-type").map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        let target = header(&parts.headers, "x-amz-target").unwrap_or("");
        let (service, operation) = target.split_once('.').unwrap_or((target, ""));
        if content_type.as_deref() == Some("application/json") {
            return coral_json(&body);
        }
        let encoding = match content_type.as_deref() {
            Some("application/x-amz-json-1.1") => Encoding::Json,
            Some("application/x-amz-cbor-1.1") => Encoding::Cbor,
            _ => {
                if service.is_empty() || operation.is_empty() {
                    return access_denied();
                }
                return xml(StatusCode::NOT_FOUND, "UnknownOperationException", None);
            }
        };
        if service != TARGET_PREFIX || !self.knows(operation) {
            return error(encoding, 400, "UnknownOperationException", None);
        }
        if body.is_empty() {
            return error(encoding, 400, "SerializationException", None);
        }
        // PutRecords in JSON has a single-pass parser; anything it does not
        // expect takes the generic path below.
        let fast = if operation == "PutRecords" && encoding == Encoding::Json {
            riffle_streams::fast::put_records_json(&body)
        } else {
            None
        };
        let doc = match (&fast, encoding.decode_if(fast.is_none(), &body)) {
            (Some(_), _) => Value::Null,
            (None, Some(Ok(v @ Value::Map(_)))) => v,
            _ => return error(encoding, 400, "SerializationException", None),
        };
        let region = match shared.authenticate(&parts, &body) {
            Ok(r) => r,
            Err(e) => return error(encoding, 400, e.error_type(), Some(&e.message())),
        };
        if let Some(resp) = self.injected_error(operation, encoding, fast.as_ref(), &doc) {
            return resp;
        }
        let ctx = Ctx { region };
        let span = tracing::debug_span!("op", operation);
        let _enter = span.enter();
        let streams = &self.0;
        if operation == "SubscribeToShard" {
            return self.subscribe(&ctx, encoding, doc).await;
        }
        if operation == "GetRecords" && encoding == Encoding::Json {
            return match streams.get_records_json(&ctx, doc).await {
                Ok(body) => ok(encoding.content_type(), body),
                Err(e) => kinesis_error(encoding, &e),
            };
        }
        if let Some(input) = fast {
            return match streams.put_records(&ctx, input).await {
                Ok(out) => ok(
                    encoding.content_type(),
                    riffle_streams::fast::put_records_output_json(&out),
                ),
                Err(e) => kinesis_error(encoding, &e),
            };
        }
        match streams.call(&ctx, operation, doc).await {
            Ok(Value::Null) => ok(encoding.content_type(), Vec::new()),
            Ok(v) => ok(encoding.content_type(), encoding.encode(&v)),
            Err(e) => kinesis_error(encoding, &e),
        }
    }

    /// LocalStack's `KINESIS_ERROR_PROBABILITY`: a PutRecord fails with
    /// `ProvisionedThroughputExceededException`; a PutRecords answers 200
    /// with every entry failed. Either way nothing is written.
    fn injected_error(
        &self,
        operation: &str,
        encoding: Encoding,
        fast: Option<&PutRecordsInput>,
        doc: &Value,
    ) -> Option<Response> {
        match operation {
            "PutRecord" if self.1.inject_error() => {
                tracing::debug!("injected a throttling error");
                let e = KinesisError::ProvisionedThroughputExceeded(THROTTLED_MESSAGE.into());
                Some(kinesis_error(encoding, &e))
            }
            "PutRecords" => {
                let entries = match (fast, doc) {
                    (Some(input), _) => input.records.len(),
                    (None, Value::Map(m)) => match m.get("Records") {
                        Some(Value::List(l)) => l.len(),
                        _ => 0,
                    },
                    _ => 0,
                };
                // An empty or missing list is the service's validation error.
                if entries == 0 || !self.1.inject_error() {
                    return None;
                }
                tracing::debug!(entries, "injected throttling errors");
                let failed = PutRecordsResultEntry {
                    error_code: Some("ProvisionedThroughputExceededException".into()),
                    error_message: Some(THROTTLED_MESSAGE.into()),
                    ..Default::default()
                };
                let out = PutRecordsOutput {
                    failed_record_count: Some(entries as i64),
                    records: vec![failed; entries],
                    encryption_type: None,
                };
                let body = match encoding {
                    Encoding::Json => riffle_streams::fast::put_records_output_json(&out),
                    Encoding::Cbor => encoding.encode(&out.into_value()),
                };
                Some(ok(encoding.content_type(), body))
            }
            _ => None,
        }
    }

    async fn subscribe(&self, ctx: &Ctx, encoding: Encoding, doc: Value) -> Response {
        let mut events = match self.0.subscribe(ctx, doc).await {
            Ok(rx) => rx,
            Err(e) => return kinesis_error(encoding, &e),
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let ct = encoding.content_type();
        let initial = eventstream::event(
            "initial-response",
            ct,
            &encoding.encode(&Value::Map(Default::default())),
        );
        tokio::spawn(async move {
            if tx.send(Bytes::from(initial)).await.is_err() {
                return;
            }
            while let Some(ev) = events.recv().await {
                let frame = match ev {
                    Event::Records(e) => {
                        eventstream::event("SubscribeToShardEvent", ct, &encoding.encode(&e))
                    }
                    Event::Error(e) => {
                        let payload =
                            wire_error::encode(encoding, e.error_type(), e.message().as_deref());
                        eventstream::exception(e.error_type(), ct, &payload)
                    }
                };
                if tx.send(Bytes::from(frame)).await.is_err() {
                    return;
                }
            }
        });
        base(StatusCode::OK)
            .header("content-type", "application/vnd.amazon.eventstream")
            .body(Body::Channel(rx))
            .unwrap_or_else(|_| Response::new(Body::empty()))
    }
}

/// AWS answers plain `application/json` requests in its internal envelope:
/// 404 unknown operation for a JSON object, 400 serialization error otherwise.
fn coral_json(body: &[u8]) -> Response {
    let (status, kind) = match riffle_wire::json::decode(body) {
        Ok(Value::Map(_)) => (StatusCode::NOT_FOUND, "UnknownOperationException"),
        _ => (StatusCode::BAD_REQUEST, "SerializationException"),
    };
    let text =
        format!(r#"{{"Output":{{"__type":"com.amazon.coral.service#{kind}"}},"Version":"1.0"}}"#);
    base(status)
        .header("content-type", "application/json")
        .body(Body::full(text))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}
