//! Amazon Kinesis Video Streams on the platform: REST-JSON, `POST /<path>`
//! per operation (the model's `requestUri`), JSON bodies, errors as the
//! status the model gives the exception, an `x-amzn-ErrorType: <Name>`
//! header and a body `{"__type": "<Name>", "message": "..."}`.

use std::sync::Arc;

use http::{Method, StatusCode};
use riffle_video::{Ctx, Service, VideoError};
use riffle_wire::{Encoding, Value};

use crate::body::Body;
use crate::platform::{
    AwsService, BoxFuture, Family, Gauge, MetricKind, Request, RequestBody, Response, Route,
    Sample, Shared,
};
use crate::{base, header, ok};

/// The largest body read: control-plane requests are small.
pub const MAX_BODY: usize = 1024 * 1024;

/// Kinesis Video Streams, served over REST-JSON.
pub struct Video(pub Arc<Service>);

/// A REST-JSON error response.
pub fn rest_error(status: u16, error_type: &str, message: Option<&str>) -> Response {
    let mut m = riffle_wire::Map::new();
    m.put("__type", Value::Str(error_type.to_owned()));
    if let Some(msg) = message {
        m.put("message", Value::Str(msg.to_owned()));
    }
    base(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST))
        .header("content-type", "application/json")
        .header("x-amzn-ErrorType", error_type)
        .body(Body::full(Encoding::Json.encode(&Value::Map(m))))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn video_error(e: &VideoError) -> Response {
    tracing::debug!(error_type = e.error_type(), "request failed");
    if let VideoError::Internal(detail) = e {
        tracing::error!(%detail, "internal failure");
    }
    rest_error(e.status(), e.error_type(), e.message().as_deref())
}

use riffle_video::operation_of_path;

/// A PutMedia request body, read a chunk at a time.
struct Incoming(hyper::body::Incoming);

impl riffle_video::ingest::Upload for Incoming {
    async fn next(&mut self) -> Option<Result<bytes::Bytes, String>> {
        use http_body_util::BodyExt;
        loop {
            match self.0.frame().await? {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        return Some(Ok(data));
                    }
                }
                Err(e) => return Some(Err(e.to_string())),
            }
        }
    }
}

/// A streamed 200 response.
fn streamed(content_type: &str, chunks: tokio::sync::mpsc::Receiver<bytes::Bytes>) -> Response {
    base(StatusCode::OK)
        .header("content-type", content_type)
        .body(Body::Channel(chunks))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

impl Video {
    /// PutMedia: the 200 goes out at once, acknowledgements follow while
    /// the upload is read.
    fn put_media(
        &self,
        parts: &http::request::Parts,
        body: hyper::body::Incoming,
        shared: &Shared,
    ) -> Response {
        // The producer SDK signs a streamed body as an empty payload.
        let region = match shared.authenticate(parts, b"") {
            Ok(r) => r,
            Err(e) => return rest_error(403, e.error_type(), Some(&e.message())),
        };
        let ctx = Ctx {
            region,
            endpoint: endpoint(parts),
        };
        let h = |name: &str| header(&parts.headers, name).map(str::to_owned);
        let headers = riffle_video::ingest::PutMediaHeaders {
            stream_name: h("x-amzn-stream-name"),
            stream_arn: h("x-amzn-stream-arn"),
            timecode_type: h("x-amzn-fragment-timecode-type"),
            producer_start_timestamp: h("x-amzn-producer-start-timestamp"),
        };
        let ingest = match self.0.open_put_media(&ctx, headers) {
            Ok(i) => i,
            Err(e) => return video_error(&e),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(ingest.run(Incoming(body), tx));
        streamed("application/json", rx)
    }
}

/// The base URL the request came to: what GetDataEndpoint answers.
fn endpoint(parts: &http::request::Parts) -> String {
    let scheme = if parts.extensions.get::<crate::platform::Tls>().is_some() {
        "https"
    } else {
        "http"
    };
    let host = header(&parts.headers, "host")
        .map(str::to_owned)
        .or_else(|| parts.uri.authority().map(|a| a.as_str().to_owned()))
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{scheme}://{host}")
}

impl AwsService for Video {
    fn name(&self) -> &'static str {
        "kinesisvideo"
    }

    fn route(&self) -> Route {
        Route::Path(riffle_video::PATHS)
    }

    fn knows(&self, op: &str) -> bool {
        operation_of_path(op).is_some()
    }

    fn max_body(&self) -> usize {
        MAX_BODY
    }

    fn streams_body(&self, op: &str) -> bool {
        op == "putMedia"
    }

    fn overloaded(&self, _parts: &http::request::Parts, _op: &str) -> Response {
        video_error(&VideoError::ClientLimitExceeded(
            "The request rate is too high; slow down.".into(),
        ))
    }

    fn families(&self) -> Vec<Family> {
        use riffle_video::media::StreamStats;
        let stats = self.0.stream_stats();
        let family = |name, help, kind, f: fn(&StreamStats) -> u64| Family {
            name,
            help,
            kind,
            samples: stats
                .iter()
                .map(|s| Sample {
                    labels: vec![("region", s.region.clone()), ("stream", s.name.clone())],
                    value: f(s) as f64,
                })
                .collect(),
        };
        use MetricKind::{Counter, Gauge as G};
        vec![
            family(
                "riffle_video_putmedia_incoming_fragments_total",
                "Fragments persisted (CloudWatch PutMedia.IncomingFragments).",
                Counter,
                |s| s.incoming_fragments,
            ),
            family(
                "riffle_video_putmedia_incoming_bytes_total",
                "Bytes of fragments persisted (CloudWatch PutMedia.IncomingBytes).",
                Counter,
                |s| s.incoming_bytes,
            ),
            family(
                "riffle_video_putmedia_errors_total",
                "ERROR acknowledgements sent.",
                Counter,
                |s| s.ack_errors,
            ),
            family(
                "riffle_video_getmedia_outgoing_fragments_total",
                "Fragments sent by GetMedia (CloudWatch GetMedia.OutgoingFragments).",
                Counter,
                |s| s.outgoing_fragments,
            ),
            family(
                "riffle_video_getmedia_outgoing_bytes_total",
                "Bytes sent by GetMedia (CloudWatch GetMedia.OutgoingBytes).",
                Counter,
                |s| s.outgoing_bytes,
            ),
            family(
                "riffle_video_putmedia_connections",
                "PutMedia uploads running.",
                G,
                |s| s.producers,
            ),
            family(
                "riffle_video_getmedia_connections",
                "GetMedia responses being streamed.",
                G,
                |s| s.readers,
            ),
            family(
                "riffle_video_stored_fragments",
                "Fragments stored (within retention).",
                G,
                |s| s.stored_fragments,
            ),
            family(
                "riffle_video_stored_bytes",
                "Bytes of fragments stored.",
                G,
                |s| s.stored_bytes,
            ),
        ]
    }

    fn gauges(&self) -> Vec<Gauge> {
        vec![Gauge {
            name: "riffle_video_streams",
            help: "Kinesis Video streams.",
            value: self.0.count() as u64,
        }]
    }

    fn handle<'a>(&'a self, req: Request, shared: &'a Shared) -> BoxFuture<'a, Response> {
        Box::pin(async move {
            let Request {
                parts,
                body,
                operation,
            } = req;
            let body = match body {
                RequestBody::Full(b) => b,
                RequestBody::TooLarge => {
                    return base(StatusCode::PAYLOAD_TOO_LARGE)
                        .body(Body::empty())
                        .unwrap_or_else(|_| Response::new(Body::empty()))
                }
                RequestBody::Stream(incoming) if operation == "putMedia" => {
                    if parts.method != Method::POST {
                        return video_error(&VideoError::UnknownOperation);
                    }
                    return self.put_media(&parts, incoming, shared);
                }
                RequestBody::Stream(_) => {
                    return video_error(&VideoError::UnknownOperation);
                }
            };
            if riffle_video::is_session_resource(&operation)
                && (parts.method == Method::GET || parts.method == Method::HEAD)
            {
                let query = parts.uri.query().unwrap_or("");
                return match self.0.session_resource(&operation, query) {
                    Ok(r) => ok(r.content_type, r.body),
                    Err(e) => video_error(&e),
                };
            }
            let Some(op) = operation_of_path(&operation).filter(|_| parts.method == Method::POST)
            else {
                return video_error(&VideoError::UnknownOperation);
            };
            // REST-JSON: an empty body is an operation without arguments.
            let doc = if body.iter().all(u8::is_ascii_whitespace) {
                Value::Map(Default::default())
            } else {
                match Encoding::Json.decode(&body) {
                    Ok(v @ Value::Map(_)) => v,
                    _ => {
                        return video_error(&VideoError::Serialization(
                            "The request body is not a JSON object.".into(),
                        ))
                    }
                }
            };
            let region = match shared.authenticate(&parts, &body) {
                Ok(r) => r,
                Err(e) => return rest_error(403, e.error_type(), Some(&e.message())),
            };
            let ctx = Ctx {
                region,
                endpoint: endpoint(&parts),
            };
            let span = tracing::debug_span!("video", operation = %op);
            let _enter = span.enter();
            let streamed_media = match op {
                "GetMedia" => Some(self.0.get_media(&ctx, doc.clone())),
                "GetMediaForFragmentList" => {
                    Some(self.0.get_media_for_fragment_list(&ctx, doc.clone()))
                }
                _ => None,
            };
            if op == "GetClip" {
                return match self.0.get_clip(&ctx, doc) {
                    Ok(r) => ok(r.content_type, r.body),
                    Err(e) => video_error(&e),
                };
            }
            if let Some(r) = streamed_media {
                return match r {
                    Ok(m) => streamed(m.content_type, m.chunks),
                    Err(e) => video_error(&e),
                };
            }
            match self.0.call(&ctx, op, doc).await {
                Ok(v) => ok("application/json", Encoding::Json.encode(&v)),
                Err(e) => video_error(&e),
            }
        })
    }
}
