//! Riffle's HTTP front, the only crate that knows HTTP.
//!
//! - [`serve`] accepts connections and speaks HTTP/1.1 and cleartext HTTP/2
//!   (prior knowledge) on the same port, and shuts down gracefully.
//! - [`App`] routes a request: AWS's pre-checks (size, method, content type,
//!   target), SigV4, then the service; errors leave in AWS's envelopes.
//! - [`body::Body`] carries whole responses and event streams.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use riffle_core::clock::SystemClock;
use riffle_core::Clock;
use riffle_streams::subscribe::Event;
use riffle_streams::{Ctx, KinesisError, Service};
use riffle_wire::{error as wire_error, eventstream, sigv4, Encoding, Value};
use tokio::net::TcpListener;

pub mod body;
pub mod metrics;

use body::Body;

/// Bodies larger than this are refused with 413 and an empty body, as AWS
/// answers an oversized request. The largest valid request must fit: a
/// PutRecord of a 10 MiB record (MaxRecordSizeInKiB 10240) is 13,981,016
/// bytes of base64 plus < 8 KiB of JSON; a PutRecords of 5 MiB of data and
/// keys is at most 6,990,508 bytes of base64 plus 500 × ~1.7 KiB (256-char
/// keys escaped as `\uXXXX`, 39-digit hash keys, member names) ≈ 7.8 MB. In
/// CBOR both are raw bytes (≤ 10.1 MiB). 16 MiB covers all with room for
/// whitespace.
const MAX_BODY: usize = 16 * 1024 * 1024;
const KINESIS_PREFIX: &str = "Kinesis_20131202";
/// AWS's `Access-Control-Expose-Headers` on every non-preflight response.
const EXPOSE_HEADERS: &str =
    "x-amzn-RequestId,x-amzn-ErrorType,x-amz-request-id,x-amz-id-2,x-amzn-ErrorMessage,Date";

/// Everything a request needs.
pub struct App {
    pub streams: Arc<Service>,
    /// Access key id → secret; empty means any well-formed request is accepted.
    pub credentials: HashMap<String, String>,
    /// When set, `POST /_riffle/clock` moves this clock (tests only).
    pub test_clock: Option<Arc<SystemClock>>,
    pub default_region: String,
    pub metrics: metrics::Metrics,
}

/// AWS's `x-amz-id-2`: 72 random bytes in base64.
fn amz_id_2() -> String {
    let mut b = [0u8; 72];
    for chunk in b.chunks_mut(16) {
        let r = *uuid::Uuid::new_v4().as_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn base(status: StatusCode) -> http::response::Builder {
    Response::builder()
        .status(status)
        .header("x-amzn-RequestId", request_id())
        .header("x-amz-id-2", amz_id_2())
}

fn xml(status: StatusCode, name: &str, message: Option<&str>) -> Response<Body> {
    let text = match message {
        Some(m) => format!("<{name}>\n  <Message>{m}</Message>\n</{name}>\n"),
        None => format!("<{name}/>\n"),
    };
    base(status)
        .body(Body::full(text))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// An AWS error in the request's encoding.
fn error(
    encoding: Encoding,
    status: u16,
    error_type: &str,
    message: Option<&str>,
) -> Response<Body> {
    base(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST))
        .header("content-type", encoding.content_type())
        .header("x-amzn-ErrorType", format!("{error_type}:"))
        .body(Body::full(wire_error::encode(
            encoding, error_type, message,
        )))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn kinesis_error(encoding: Encoding, e: &KinesisError) -> Response<Body> {
    tracing::debug!(error_type = e.error_type(), "request failed");
    if let KinesisError::Internal(detail) = e {
        tracing::error!(%detail, "internal failure");
    }
    error(encoding, e.status(), e.error_type(), e.message().as_deref())
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

impl App {
    /// Handles one request.
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let (parts, incoming) = req.into_parts();
        let preflight = parts.method == Method::OPTIONS;
        // Only operations of the model become metric labels: the header is
        // client input.
        let operation = header(&parts.headers, "x-amz-target")
            .and_then(|t| t.split_once('.'))
            .map(|(_, op)| {
                let known = riffle_streams::model::OPERATIONS
                    .iter()
                    .any(|(n, _)| *n == op);
                if known {
                    op.to_owned()
                } else {
                    "unknown".to_owned()
                }
            });
        let mut resp = self.route(parts, incoming).await;
        if let Some(op) = operation {
            let outcome = header(resp.headers(), "x-amzn-errortype")
                .map_or("ok", |t| t.trim_end_matches(':'));
            self.metrics.request(&op, outcome);
        }
        resp.headers_mut()
            .insert("access-control-allow-origin", HeaderValue::from_static("*"));
        if !preflight {
            // What AWS lets browser SDKs read (docs/aws-behaviour.md §2.2).
            resp.headers_mut().insert(
                "access-control-expose-headers",
                HeaderValue::from_static(EXPOSE_HEADERS),
            );
        }
        resp
    }

    async fn route(&self, parts: http::request::Parts, incoming: Incoming) -> Response<Body> {
        if parts.method == Method::OPTIONS {
            let echo = |n: &str| {
                parts
                    .headers
                    .get(n)
                    .cloned()
                    .unwrap_or(HeaderValue::from_static("*"))
            };
            return base(StatusCode::OK)
                .header(
                    "access-control-allow-headers",
                    echo("access-control-request-headers"),
                )
                .header(
                    "access-control-allow-methods",
                    echo("access-control-request-method"),
                )
                .header("access-control-max-age", "172800")
                .body(Body::empty())
                .unwrap_or_else(|_| Response::new(Body::empty()));
        }
        if parts.method == Method::GET && parts.uri.path() == "/metrics" {
            let (streams, shards) = self.streams.counts();
            return base(StatusCode::OK)
                .header("content-type", "text/plain; version=0.0.4")
                .body(Body::full(self.metrics.render(streams, shards)))
                .unwrap_or_else(|_| Response::new(Body::empty()));
        }
        if parts.method == Method::GET && parts.uri.path() == "/_riffle/health" {
            return base(StatusCode::OK)
                .body(Body::full("ok\n"))
                .unwrap_or_else(|_| Response::new(Body::empty()));
        }
        let body = match read_body(incoming).await {
            Some(b) => b,
            None => {
                return base(StatusCode::PAYLOAD_TOO_LARGE)
                    .body(Body::empty())
                    .unwrap_or_else(|_| Response::new(Body::empty()))
            }
        };
        if parts.method == Method::POST && parts.uri.path() == "/_riffle/clock" {
            return self.move_clock(&body);
        }
        if parts.method != Method::POST {
            return xml(
                StatusCode::FORBIDDEN,
                "AccessDeniedException",
                Some("Unable to determine service/operation name to be authorized"),
            );
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
                    return xml(
                        StatusCode::FORBIDDEN,
                        "AccessDeniedException",
                        Some("Unable to determine service/operation name to be authorized"),
                    );
                }
                return xml(StatusCode::NOT_FOUND, "UnknownOperationException", None);
            }
        };
        let known = service == KINESIS_PREFIX
            && (riffle_streams::model::OPERATIONS
                .iter()
                .any(|(n, _)| *n == operation)
                || operation == "SubscribeToShard");
        if !known {
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
        let region = match self.authenticate(&parts, &body) {
            Ok(r) => r,
            Err(e) => return error(encoding, 400, e.error_type(), Some(&e.message())),
        };
        let ctx = Ctx { region };
        let span = tracing::debug_span!("op", operation);
        let _enter = span.enter();
        if operation == "SubscribeToShard" {
            return self.subscribe(&ctx, encoding, doc).await;
        }
        if operation == "GetRecords" && encoding == Encoding::Json {
            return match self.streams.get_records_json(&ctx, doc).await {
                Ok(body) => base(StatusCode::OK)
                    .header("content-type", encoding.content_type())
                    .body(Body::full(body))
                    .unwrap_or_else(|_| Response::new(Body::empty())),
                Err(e) => kinesis_error(encoding, &e),
            };
        }
        if let Some(input) = fast {
            return match self.streams.put_records(&ctx, input).await {
                Ok(out) => base(StatusCode::OK)
                    .header("content-type", encoding.content_type())
                    .body(Body::full(riffle_streams::fast::put_records_output_json(
                        &out,
                    )))
                    .unwrap_or_else(|_| Response::new(Body::empty())),
                Err(e) => kinesis_error(encoding, &e),
            };
        }
        match self.streams.call(&ctx, operation, doc).await {
            Ok(Value::Null) => base(StatusCode::OK)
                .header("content-type", encoding.content_type())
                .body(Body::empty())
                .unwrap_or_else(|_| Response::new(Body::empty())),
            Ok(v) => base(StatusCode::OK)
                .header("content-type", encoding.content_type())
                .body(Body::full(encoding.encode(&v)))
                .unwrap_or_else(|_| Response::new(Body::empty())),
            Err(e) => kinesis_error(encoding, &e),
        }
    }

    /// Checks SigV4 and returns the request's region.
    fn authenticate(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
    ) -> Result<String, sigv4::AuthError> {
        let headers: Vec<(&str, &str)> = parts
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
            .collect();
        let host = parts.uri.authority().map(|a| a.as_str().to_owned());
        let mut with_host = headers.clone();
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            if let Some(h) = host.as_deref() {
                with_host.push(("host", h));
            }
        }
        let req = sigv4::Request {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            headers: &with_host,
            body,
        };
        let sig = match sigv4::parse(&req) {
            Ok(s) => s,
            Err(sigv4::AuthError::MissingAuthenticationToken) if self.credentials.is_empty() => {
                return Ok(self.default_region.clone())
            }
            Err(e) => return Err(e),
        };
        if !self.credentials.is_empty() {
            let secret = self
                .credentials
                .get(&sig.access_key)
                .ok_or(sigv4::AuthError::UnrecognizedClient)?;
            sigv4::verify(&req, &sig, secret, self.streams.now_ms() / 1000)?;
        }
        Ok(if sig.region.is_empty() {
            self.default_region.clone()
        } else {
            sig.region
        })
    }

    async fn subscribe(&self, ctx: &Ctx, encoding: Encoding, doc: Value) -> Response<Body> {
        let mut events = match self.streams.subscribe(ctx, doc).await {
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

    fn move_clock(&self, body: &[u8]) -> Response<Body> {
        let Some(clock) = &self.test_clock else {
            return xml(
                StatusCode::FORBIDDEN,
                "AccessDeniedException",
                Some("The test clock is not enabled"),
            );
        };
        let ms = match riffle_wire::json::decode(body) {
            Ok(Value::Map(m)) => match m.get("advance_ms") {
                Some(Value::Int(n)) => *n,
                _ => 0,
            },
            _ => 0,
        };
        clock.advance(ms);
        let mut m = riffle_wire::Map::new();
        m.put("offset_ms", Value::Int(clock.offset_ms()));
        m.put("now_ms", Value::Int(clock.now_ms()));
        base(StatusCode::OK)
            .header("content-type", "application/json")
            .body(Body::full(riffle_wire::json::encode(&Value::Map(m))))
            .unwrap_or_else(|_| Response::new(Body::empty()))
    }
}

/// AWS answers plain `application/json` requests in its internal envelope:
/// 404 unknown operation for a JSON object, 400 serialization error otherwise.
fn coral_json(body: &[u8]) -> Response<Body> {
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

/// Collects a request body, or `None` past [`MAX_BODY`].
async fn read_body(mut incoming: Incoming) -> Option<Bytes> {
    let mut buf = Vec::new();
    while let Some(frame) = incoming.frame().await {
        let Ok(frame) = frame else {
            return Some(Bytes::new());
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > MAX_BODY {
                return None;
            }
            buf.extend_from_slice(&data);
        }
    }
    Some(Bytes::from(buf))
}

/// A listening socket, plain or TLS.
pub struct Listener {
    pub tcp: TcpListener,
    /// With ALPN `h2` and `http/1.1`.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Serves `app` on every listener until `shutdown` resolves, then lets
/// in-flight requests finish (up to `grace`).
pub async fn serve(
    listeners: Vec<Listener>,
    app: Arc<App>,
    shutdown: impl std::future::Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    let (accepted_tx, mut accepted) = tokio::sync::mpsc::channel(64);
    let mut acceptors = tokio::task::JoinSet::new();
    for l in listeners {
        let tx = accepted_tx.clone();
        acceptors.spawn(async move {
            loop {
                match l.tcp.accept().await {
                    Ok((stream, peer)) => {
                        if tx.send((stream, peer, l.tls.clone())).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
    }
    drop(accepted_tx);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer, tls): (
            tokio::net::TcpStream,
            SocketAddr,
            Option<tokio_rustls::TlsAcceptor>,
        ) = tokio::select! {
            Some(x) = accepted.recv() => x,
            () = &mut shutdown => break,
            Some(_) = conns.join_next() => continue,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let stop = stop_rx.clone();
        conns.spawn(async move {
            match tls {
                None => serve_connection(TokioIo::new(stream), app, stop, peer).await,
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(s) => serve_connection(TokioIo::new(s), app, stop, peer).await,
                    Err(e) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                },
            }
        });
    }
    acceptors.abort_all();
    tracing::info!(
        connections = conns.len(),
        "shutting down: waiting for in-flight requests"
    );
    let _ = stop_tx.send(true);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drain).await.is_err() {
        tracing::warn!("in-flight requests did not finish in time");
    }
    Ok(())
}

/// Serves one connection; on shutdown, finishes in-flight requests and closes.
async fn serve_connection<I>(
    io: I,
    app: Arc<App>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    peer: SocketAddr,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.handle(req).await) }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(io, svc);
    tokio::pin!(conn);
    let stopped = async move {
        loop {
            let stop_now = *stop.borrow_and_update();
            if stop_now || stop.changed().await.is_err() {
                return;
            }
        }
    };
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = stopped => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// A TLS acceptor offering ALPN `h2` and `http/1.1`, from PEM files or, with
/// none, a self-signed certificate for `localhost` and `127.0.0.1` whose PEM is
/// returned so clients can trust it.
pub fn tls_acceptor(
    cert_key: Option<(&[u8], &[u8])>,
) -> Result<(tokio_rustls::TlsAcceptor, String), String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let (cert_pem, key_pem) = match cert_key {
        Some((c, k)) => (
            String::from_utf8_lossy(c).into_owned(),
            String::from_utf8_lossy(k).into_owned(),
        ),
        None => {
            let ck = rcgen::generate_simple_self_signed(vec![
                "localhost".into(),
                "127.0.0.1".into(),
                "::1".into(),
            ])
            .map_err(|e| format!("generating a certificate: {e}"))?;
            (ck.cert.pem(), ck.signing_key.serialize_pem())
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("reading certificates: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| format!("reading the private key: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key: {e}"))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((tokio_rustls::TlsAcceptor::from(Arc::new(cfg)), cert_pem))
}
