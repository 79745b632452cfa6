//! Riffle's HTTP front, the only crate that knows HTTP.
//!
//! - [`serve`] accepts connections and speaks HTTP/1.1 and cleartext HTTP/2
//!   (prior knowledge) on the same port, and shuts down gracefully.
//! - [`App`] routes a request to one of the [`services`] (the registration
//!   list) by `X-Amz-Target`, path or query `Action`; [`platform`] is the
//!   contract a service implements; [`kinesis`] is Data Streams on it and
//!   [`sts`] answers `GetCallerIdentity`.
//! - [`body::Body`] carries whole responses and event streams.
//! - [`console`] serves the web console and guards the calls it makes;
//!   [`console_kinesis`] is Data Streams' console endpoint (per-shard
//!   iterator ages and the stream's traffic), [`console_firehose`]
//!   Firehose's,
//!   [`console_analytics`] Analytics' (code checks, live rows of
//!   in-application streams), [`console_tail`] the live tail of a stream
//!   (Server-Sent Events).

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
use riffle_wire::{error as wire_error, Encoding, Value};
use tokio::net::TcpListener;

pub mod analytics;
pub mod body;
pub mod console;
pub mod console_analytics;
pub mod console_firehose;
pub mod console_kinesis;
pub mod console_tail;
pub mod faults;
pub mod firehose;
pub mod glue;
pub mod json11;
pub mod kinesis;
pub mod metrics;
pub mod platform;
pub mod s3;
pub mod secrets;
pub mod sts;
pub mod video;

use body::Body;

/// AWS's `Access-Control-Expose-Headers` on every non-preflight response.
const EXPOSE_HEADERS: &str =
    "x-amzn-RequestId,x-amzn-ErrorType,x-amz-request-id,x-amz-id-2,x-amzn-ErrorMessage,Date";

/// Everything a request needs.
pub struct App {
    /// The registration list: see [`services`].
    pub services: platform::Services,
    pub shared: platform::Shared,
    /// When set, `POST /_riffle/clock` moves this clock (tests only).
    pub test_clock: Option<Arc<SystemClock>>,
    pub metrics: metrics::Metrics,
    pub limits: platform::Limits,
    /// The web console: its mode, and what its server page shows.
    pub console: console::Console,
}

/// The services' state, one field per service, for [`services`].
pub struct Backends {
    pub streams: Arc<riffle_streams::Service>,
    /// Injected into Data Streams answers (`Faults::default()` injects none).
    pub faults: faults::Faults,
    pub firehose: Arc<riffle_firehose::Service>,
    pub analytics: Arc<riffle_analytics::Service>,
    pub glue: Arc<riffle_glue::Service>,
    pub secrets: Arc<riffle_secrets::Service>,
    pub video: Arc<riffle_video::Service>,
    pub s3: s3::S3Service,
}

/// Every service Riffle serves, in routing order: the one registration
/// list. Data Streams comes first, so it answers requests no service
/// claims, as the Kinesis endpoint does.
pub fn services(b: Backends) -> platform::Services {
    platform::Services::new(vec![
        Arc::new(kinesis::DataStreams(b.streams, b.faults)),
        Arc::new(sts::Sts),
        Arc::new(firehose::Firehose(b.firehose)),
        Arc::new(analytics::Analytics(b.analytics)),
        Arc::new(glue::Glue(b.glue)),
        Arc::new(secrets::Secrets(b.secrets)),
        Arc::new(video::Video(b.video)),
        Arc::new(b.s3),
    ])
}

/// AWS's `x-amz-id-2`: 72 random bytes in base64.
///
/// Ids come from the thread's user-space generator: one per response would
/// otherwise cost several `getrandom` calls.
fn amz_id_2() -> String {
    let mut b = [0u8; 72];
    rand::Rng::fill(&mut rand::thread_rng(), &mut b[..]);
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A version-4 UUID, as AWS's request ids are.
pub(crate) fn request_id() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}

pub(crate) fn base(status: StatusCode) -> http::response::Builder {
    Response::builder()
        .status(status)
        .header("x-amzn-RequestId", request_id())
        .header("x-amz-id-2", amz_id_2())
}

/// A whole 200 response.
pub(crate) fn ok(content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    base(StatusCode::OK)
        .header("content-type", content_type)
        .body(Body::full(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

pub(crate) fn xml(status: StatusCode, name: &str, message: Option<&str>) -> Response<Body> {
    let text = match message {
        Some(m) => format!("<{name}>\n  <Message>{m}</Message>\n</{name}>\n"),
        None => format!("<{name}/>\n"),
    };
    base(status)
        .body(Body::full(text))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// An AWS error in the request's encoding.
pub(crate) fn error(
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

pub(crate) fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn is_form(parts: &http::request::Parts) -> bool {
    header(&parts.headers, "content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
}

impl App {
    /// Handles one request.
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let (parts, incoming) = req.into_parts();
        let preflight = parts.method == Method::OPTIONS;
        let (mut resp, label) = self.route(parts, incoming).await;
        if let Some(op) = label {
            let outcome = match resp.extensions().get::<platform::Outcome>() {
                Some(o) => o.0,
                None => header(resp.headers(), "x-amzn-errortype")
                    .map_or("ok", |t| t.trim_end_matches(':')),
            };
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

    /// Routes a request; returns the response and the metric label of the
    /// operation (`None` for the server's own endpoints).
    async fn route(
        &self,
        parts: http::request::Parts,
        incoming: Incoming,
    ) -> (Response<Body>, Option<String>) {
        if parts.method == Method::OPTIONS {
            let echo = |n: &str| {
                parts
                    .headers
                    .get(n)
                    .cloned()
                    .unwrap_or(HeaderValue::from_static("*"))
            };
            let resp = base(StatusCode::OK)
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
            return (resp, None);
        }
        if parts.headers.contains_key(console::HEADER) {
            if let Some(refused) = self.console.guard(&parts) {
                return (refused, None);
            }
        }
        if parts.method == Method::GET || parts.method == Method::HEAD {
            if console::is_console_path(&parts) {
                return (
                    self.console
                        .serve(&parts, &self.shared, &self.services)
                        .await,
                    None,
                );
            }
            if self.console.mode != console::Mode::Off
                && console::is_browser_root(&parts)
                && self.services.by_signing(&parts).is_none()
            {
                return (console::redirect(&format!("{}/", console::PREFIX)), None);
            }
        }
        if parts.method == Method::GET && parts.uri.path() == "/metrics" {
            let gauges: Vec<_> = self
                .services
                .all()
                .iter()
                .flat_map(|s| s.gauges())
                .collect();
            let families: Vec<_> = self
                .services
                .all()
                .iter()
                .flat_map(|s| s.families())
                .collect();
            let mut text = self.metrics.render(&gauges, &self.limits);
            metrics::render_families(&mut text, &families);
            let resp = base(StatusCode::OK)
                .header("content-type", "text/plain; version=0.0.4")
                .body(Body::full(text))
                .unwrap_or_else(|_| Response::new(Body::empty()));
            return (resp, None);
        }
        if parts.method == Method::GET && parts.uri.path() == "/_riffle/health" {
            return (ok("text/plain", "ok\n"), None);
        }
        // The service: by target, else by path; query services and the
        // fallback are known once the body is read.
        let target = header(&parts.headers, "x-amz-target").unwrap_or("");
        let operation = target.split_once('.').map_or("", |(_, op)| op).to_owned();
        let (service, operation) = match self
            .services
            .by_target(target.split('.').next().unwrap_or(""))
        {
            Some(s) => (Some(s.clone()), operation),
            None if target.is_empty() => match self.services.by_signing(&parts) {
                Some(s) => (Some(s.clone()), s.operation_of(&parts)),
                None => match self.services.by_path(parts.uri.path()) {
                    Some(s) => (
                        Some(s.clone()),
                        parts.uri.path().trim_start_matches('/').to_owned(),
                    ),
                    None => (None, operation),
                },
            },
            None => (None, operation),
        };
        // At the request cap, the service's throttling error, before any of
        // the body is read.
        let Ok(_permit) = self.limits.requests.clone().try_acquire_owned() else {
            return match service.as_ref().or(self.services.fallback()) {
                Some(s) => (
                    s.overloaded(&parts, &operation),
                    Some(self.label(s, &operation)),
                ),
                None => (
                    xml(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", None),
                    None,
                ),
            };
        };
        if let Some(s) = service.as_ref().filter(|s| s.streams_body(&operation)) {
            let req = platform::Request {
                parts,
                body: platform::RequestBody::Stream(incoming),
                operation: operation.clone(),
            };
            let label = self.label(s, &operation);
            return (s.handle(req, &self.shared).await, Some(label));
        }
        let limit = service
            .as_ref()
            .or(self.services.fallback())
            .map_or(kinesis::MAX_BODY, |s| s.max_body());
        let body = match read_body(incoming, limit).await {
            Some(b) => platform::RequestBody::Full(b),
            None => platform::RequestBody::TooLarge,
        };
        if parts.method == Method::POST && parts.uri.path() == "/_riffle/clock" {
            if let platform::RequestBody::Full(b) = &body {
                return (self.move_clock(b), None);
            }
        }
        let (service, operation) = match service {
            Some(s) => (s, operation),
            None => {
                let action = match &body {
                    platform::RequestBody::Full(b) if target.is_empty() && is_form(&parts) => {
                        sts::action_of(&parts, b)
                    }
                    _ if target.is_empty() && parts.method == Method::GET => {
                        sts::action_of(&parts, &[])
                    }
                    _ => None,
                };
                match action.as_deref().and_then(|a| self.services.by_action(a)) {
                    Some(s) => (s.clone(), action.unwrap_or_default()),
                    None => match self.services.fallback() {
                        Some(s) => (s.clone(), operation),
                        None => {
                            return (
                                xml(StatusCode::NOT_FOUND, "UnknownOperationException", None),
                                None,
                            )
                        }
                    },
                }
            }
        };
        let label =
            (!target.is_empty() || !operation.is_empty()).then(|| self.label(&service, &operation));
        let req = platform::Request {
            parts,
            body,
            operation,
        };
        (service.handle(req, &self.shared).await, label)
    }

    /// Only operations a service knows become metric labels: the name is
    /// client input.
    fn label(&self, s: &Arc<dyn platform::AwsService>, op: &str) -> String {
        if s.knows(op) {
            op.to_owned()
        } else {
            "unknown".to_owned()
        }
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
        ok(
            "application/json",
            riffle_wire::json::encode(&Value::Map(m)),
        )
    }
}

/// Collects a request body, or `None` past `limit`.
async fn read_body(mut incoming: Incoming, limit: usize) -> Option<Bytes> {
    let mut buf = Vec::new();
    while let Some(frame) = incoming.frame().await {
        let Ok(frame) = frame else {
            return Some(Bytes::new());
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
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
        // At the connection cap, stop accepting until a connection closes.
        let slot = tokio::select! {
            p = app.limits.connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
            Some(_) = conns.join_next() => continue,
        };
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
            let _slot = slot;
            match tls {
                None => serve_connection(TokioIo::new(stream), app, stop, peer, false).await,
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(s) => serve_connection(TokioIo::new(s), app, stop, peer, true).await,
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
    tls: bool,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        if tls {
            req.extensions_mut().insert(platform::Tls);
        }
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
