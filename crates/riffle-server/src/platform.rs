//! The service platform: how a request finds its service.
//!
//! Every AWS service Riffle serves implements [`AwsService`] and is listed
//! once in [`crate::services`]. A service declares how requests reach it
//! ([`Route`]), the operations it knows (metric labels), how large a
//! buffered request body may be and which operations take their body as a
//! stream, and its gauges. The server does the rest: reading (or not
//! reading) the body, SigV4 through [`Shared::authenticate`], request ids,
//! CORS and metrics.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use riffle_core::Clock;
use riffle_wire::sigv4;

use crate::body::Body;

/// How requests reach a service.
#[derive(Debug, Clone, Copy)]
pub enum Route {
    /// AWS JSON 1.1 / CBOR 1.1: `X-Amz-Target: <prefix>.<Operation>`.
    Target(&'static str),
    /// AWS Query: `Action=<Operation>` in a form body or the query string.
    Query(&'static [&'static str]),
    /// REST: the request path names the operation (`POST /<op>` and the like).
    Path(&'static [&'static str]),
    /// REST services such as S3: requests without `X-Amz-Target` signed for
    /// this SigV4 signing name (the credential scope
    /// `…/<region>/<name>/aws4_request`, in the `Authorization` header or
    /// `X-Amz-Credential`; Signature Version 2 counts as `s3`), and unsigned ones whose Host the service claims
    /// ([`AwsService::claims_host`]); the service names the operation
    /// ([`AwsService::operation_of`]).
    Signing(&'static str),
}

/// A request body: whole (within the service's limit), over the limit, or
/// left as a stream for operations that take one (an endless upload).
pub enum RequestBody {
    Full(Bytes),
    TooLarge,
    Stream(Incoming),
}

/// A request extension: the request came over TLS.
#[derive(Debug, Clone, Copy)]
pub struct Tls;

/// One request, routed.
pub struct Request {
    pub parts: http::request::Parts,
    pub body: RequestBody,
    /// The operation named by the route (may be one the service lacks).
    pub operation: String,
}

pub type Response = http::Response<Body>;

/// The error a response reports, for the metrics, when its protocol does not
/// name it in `x-amzn-ErrorType` (S3's REST-XML): a response extension.
#[derive(Debug, Clone, Copy)]
pub struct Outcome(pub &'static str);
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A gauge a service reports on `/metrics`.
pub struct Gauge {
    pub name: &'static str,
    pub help: &'static str,
    pub value: u64,
}

/// Whether a [`Family`] is a counter or a gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
}

/// One labelled value of a [`Family`].
pub struct Sample {
    /// Label names and values; values are escaped when rendered. A
    /// service reports only bounded label sets (names of things that exist,
    /// never raw request input).
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

/// A labelled metric a service reports on `/metrics`: a name, its help and
/// type, and one sample per label set.
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: MetricKind,
    pub samples: Vec<Sample>,
}

/// One AWS service on the shared port.
pub trait AwsService: Send + Sync + 'static {
    /// Short name, for logs (`kinesis`, `sts`, ...).
    fn name(&self) -> &'static str;
    fn route(&self) -> Route;
    /// Whether `op` is one of the service's operations (metric labels come
    /// only from these: the operation name is client input).
    fn knows(&self, op: &str) -> bool;
    /// The largest body the service reads into memory.
    fn max_body(&self) -> usize;
    /// Operations whose body is handed over as a stream.
    fn streams_body(&self, _op: &str) -> bool {
        false
    }
    fn handle<'a>(&'a self, req: Request, shared: &'a Shared) -> BoxFuture<'a, Response>;
    /// For [`Route::Signing`]: the operation a request names (REST: the
    /// method, path, query and headers say it), before its body is read.
    fn operation_of(&self, _parts: &http::request::Parts) -> String {
        String::new()
    }
    /// For [`Route::Signing`]: whether an unsigned request is the
    /// service's by its Host (S3's virtual-host addressing).
    fn claims_host(&self, _parts: &http::request::Parts) -> bool {
        false
    }
    fn gauges(&self) -> Vec<Gauge> {
        Vec::new()
    }
    /// Labelled counters and gauges (per resource), rendered after the
    /// plain gauges.
    fn families(&self) -> Vec<Family> {
        Vec::new()
    }
    /// The service's read-only console endpoint, for what no AWS API
    /// reports: `GET /_riffle/console/api/<name>/<rest>` (the request is
    /// authenticated first; `region` is its credential scope's). `None`:
    /// the service has none.
    fn console_get<'a>(
        &'a self,
        _rest: &'a str,
        _region: &'a str,
    ) -> Option<BoxFuture<'a, Response>> {
        None
    }
    /// The answer when the server is at its request cap: the service's own
    /// throttling error, which SDKs back off from and retry.
    fn overloaded(&self, _parts: &http::request::Parts, _op: &str) -> Response {
        crate::xml(
            http::StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            Some("Please reduce your request rate."),
        )
    }
}

/// Caps that bound the server's memory under overload.
pub struct Limits {
    /// Requests being handled at once; beyond it requests get the
    /// service's throttling error straight away.
    pub requests: Arc<tokio::sync::Semaphore>,
    pub max_requests: usize,
    /// Open connections; beyond it the server stops accepting until one
    /// closes (new ones wait in the listen backlog).
    pub connections: Arc<tokio::sync::Semaphore>,
    pub max_connections: usize,
}

impl Limits {
    pub fn new(max_connections: usize, max_requests: usize) -> Limits {
        Limits {
            requests: Arc::new(tokio::sync::Semaphore::new(max_requests)),
            max_requests,
            connections: Arc::new(tokio::sync::Semaphore::new(max_connections)),
            max_connections,
        }
    }

    pub fn requests_in_flight(&self) -> usize {
        self.max_requests - self.requests.available_permits()
    }

    pub fn open_connections(&self) -> usize {
        self.max_connections - self.connections.available_permits()
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::new(DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_REQUESTS)
    }
}

/// Connections served at once, by default: the 10,000-client case fits.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;
/// Requests handled at once, by default.
pub const DEFAULT_MAX_REQUESTS: usize = 16_384;

/// What every service shares: credentials, the default region, the clock.
pub struct Shared {
    /// Access key id → secret; empty means any well-formed request is accepted.
    pub credentials: HashMap<String, String>,
    pub default_region: String,
    pub account: String,
    pub clock: Arc<dyn Clock>,
}

impl Shared {
    /// Checks SigV4 (when credentials are configured) and returns the
    /// request's region.
    pub fn authenticate(
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
        if let Some(h) = host.as_deref() {
            if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
                with_host.push(("host", h));
            }
            // The JS SDK's HTTP/2 handler signs the `:authority` pseudo-header.
            with_host.push((":authority", h));
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
            sigv4::verify(&req, &sig, secret, self.clock.now_ms() / 1000)?;
        }
        Ok(if sig.region.is_empty() {
            self.default_region.clone()
        } else {
            sig.region
        })
    }
}

/// The registered services, and the lookups the router makes.
pub struct Services {
    list: Vec<Arc<dyn AwsService>>,
}

impl Services {
    /// The first service with a [`Route::Target`] route answers requests
    /// that match no service (as the Kinesis endpoint would).
    pub fn new(list: Vec<Arc<dyn AwsService>>) -> Services {
        Services { list }
    }

    pub fn all(&self) -> &[Arc<dyn AwsService>] {
        &self.list
    }

    pub fn by_target(&self, prefix: &str) -> Option<&Arc<dyn AwsService>> {
        self.list
            .iter()
            .find(|s| matches!(s.route(), Route::Target(p) if p == prefix))
    }

    pub fn by_action(&self, action: &str) -> Option<&Arc<dyn AwsService>> {
        self.list
            .iter()
            .find(|s| matches!(s.route(), Route::Query(ops) if ops.contains(&action)))
    }

    pub fn by_path(&self, path: &str) -> Option<&Arc<dyn AwsService>> {
        let op = path.trim_start_matches('/');
        self.list
            .iter()
            .find(|s| matches!(s.route(), Route::Path(ops) if ops.contains(&op)))
    }

    /// The [`Route::Signing`] service a request without `X-Amz-Target` is
    /// signed for, or, unsigned, whose Host it claims.
    pub fn by_signing(&self, parts: &http::request::Parts) -> Option<&Arc<dyn AwsService>> {
        let auth = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let query = parts.uri.query().unwrap_or("");
        // Signature Version 2 is S3's alone.
        let name = sigv4::signing_service(auth, query)
            .or_else(|| riffle_wire::sigv2::parse(auth, query).map(|_| "s3".to_owned()));
        match name {
            Some(name) => self
                .list
                .iter()
                .find(|s| matches!(s.route(), Route::Signing(n) if n == name)),
            None if auth.is_none() => self
                .list
                .iter()
                .find(|s| matches!(s.route(), Route::Signing(_)) && s.claims_host(parts)),
            None => None,
        }
    }

    pub fn fallback(&self) -> Option<&Arc<dyn AwsService>> {
        self.list
            .iter()
            .find(|s| matches!(s.route(), Route::Target(_)))
    }
}
