//! The web console: static files embedded at build time (`console/`, see
//! `build.rs`), served under `/_riffle/console/`, read-only internal
//! endpoints (`/_riffle/console/api/server`, a service's own under
//! `/_riffle/console/api/<service>/`, see
//! [`crate::platform::AwsService::console_get`], Analytics' in
//! [`crate::console_analytics`], and the live tail in
//! [`crate::console_tail`]), and the guard that every
//! request marked as the console's (`x-riffle-console`) passes before it is
//! routed.
//!
//! The console calls the same AWS APIs the SDKs call. What the guard
//! enforces, for requests that carry `x-riffle-console` only:
//! - `--console off`: every such request is refused.
//! - An `Origin` header that is not the server's own (`http[s]://` + the
//!   request's Host) is refused, reads included: another site cannot drive
//!   the console's calls.
//! - `--console read-only`: operations other than `Describe*`, `List*`,
//!   `Get*` and `SubscribeToShard` are refused. JSON 1.1 operations are
//!   named by `X-Amz-Target`, Kinesis Video's REST ones by their path
//!   (`POST /listFragments` is ListFragments); any other `GET` or `HEAD`
//!   is a read, any other request a change.
//!
//! Refusals are `AccessDeniedException` (400, JSON 1.1), before the
//! request reaches a service.

use std::path::{Path, PathBuf};
use std::time::Instant;

use http::{header, HeaderValue, Method, Response, StatusCode};
use riffle_wire::{Encoding, Map, Value};

use crate::body::Body;
use crate::platform::{Services, Shared};

/// The header the console sets on every call it makes.
pub const HEADER: &str = "x-riffle-console";
/// Where the console is served.
pub const PREFIX: &str = "/_riffle/console";

/// What the console may do: `riffle serve --console`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Not served; requests marked as the console's are refused.
    #[default]
    Off,
    /// Served; its calls may only read.
    ReadOnly,
    /// Served; its calls may change state.
    ReadWrite,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::ReadOnly => "read-only",
            Mode::ReadWrite => "read-write",
        }
    }
}

/// What the server page shows about the server.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// `disk` or `memory`.
    pub storage: String,
    /// `fsync`, `interval` or `none`.
    pub durability: String,
    pub data_dir: Option<PathBuf>,
    /// The `--listen` address.
    pub listen: String,
    pub started: Instant,
    /// Start time, epoch milliseconds.
    pub started_ms: i64,
}

impl Default for ServerInfo {
    fn default() -> ServerInfo {
        ServerInfo {
            storage: "memory".into(),
            durability: "none".into(),
            data_dir: None,
            listen: String::new(),
            started: Instant::now(),
            started_ms: 0,
        }
    }
}

/// The console's mode and what it shows about the server.
#[derive(Debug, Clone, Default)]
pub struct Console {
    pub mode: Mode,
    pub info: ServerInfo,
    /// What the live tail reads ([`crate::console_tail`]).
    pub streams: Option<crate::console_tail::Streams>,
    /// What the Analytics endpoints read.
    pub analytics: crate::console_analytics::Handle,
}

/// One embedded file.
pub(crate) struct Asset {
    /// Relative to `console/`.
    pub path: &'static str,
    pub content_type: &'static str,
    /// Quoted, as sent.
    pub etag: &'static str,
    pub body: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));

/// Whether a read-only console may call `operation`.
pub fn is_read(operation: &str) -> bool {
    ["Describe", "List", "Get"]
        .iter()
        .any(|p| operation.starts_with(p))
        || operation == "SubscribeToShard"
}

/// The operation a console request names, and whether it only reads.
fn operation_of(parts: &http::request::Parts) -> (&str, bool) {
    let target = crate::header(&parts.headers, "x-amz-target").unwrap_or("");
    if let Some((_, op)) = target.split_once('.') {
        return (op, is_read(op));
    }
    if !target.is_empty() {
        return (target, false);
    }
    if matches!(parts.method, Method::GET | Method::HEAD) {
        return ("", true);
    }
    match riffle_video::operation_of_path(parts.uri.path().trim_start_matches('/')) {
        Some(op) => (op, is_read(op)),
        None => (parts.uri.path(), false),
    }
}

fn denied(message: &str) -> Response<Body> {
    crate::error(Encoding::Json, 400, "AccessDeniedException", Some(message))
}

/// The refusal of a request whose `Origin` is not the server's own.
pub(crate) fn foreign_origin(parts: &http::request::Parts) -> Option<Response<Body>> {
    let origin = crate::header(&parts.headers, "origin")?;
    let own = own_origin(parts).unwrap_or_default();
    (!origin.eq_ignore_ascii_case(&own)).then(|| {
        denied(&format!(
            "Console requests are accepted only from the server's own origin ({own}), not from {origin}"
        ))
    })
}

/// The answer to a console endpoint's request that failed authentication.
pub(crate) fn auth_refusal(e: &riffle_wire::sigv4::AuthError) -> Response<Body> {
    let status = match e {
        riffle_wire::sigv4::AuthError::MissingAuthenticationToken => 403,
        _ => 400,
    };
    crate::error(Encoding::Json, status, e.error_type(), Some(&e.message()))
}

/// `http[s]://<host>` of the request, as a browser names its origin.
fn own_origin(parts: &http::request::Parts) -> Option<String> {
    let host = crate::header(&parts.headers, "host")
        .map(str::to_owned)
        .or_else(|| parts.uri.authority().map(|a| a.as_str().to_owned()))?;
    let scheme = if parts.extensions.get::<crate::platform::Tls>().is_some() {
        "https"
    } else {
        "http"
    };
    Some(format!("{scheme}://{host}"))
}

impl Console {
    /// For a request carrying [`HEADER`]: the refusal, or `None` to let it
    /// through.
    pub fn guard(&self, parts: &http::request::Parts) -> Option<Response<Body>> {
        if self.mode == Mode::Off {
            return Some(denied(
                "The console is off on this server (riffle serve --console off)",
            ));
        }
        if let Some(refused) = foreign_origin(parts) {
            return Some(refused);
        }
        if self.mode == Mode::ReadOnly {
            let (op, read) = operation_of(parts);
            if !read {
                return Some(denied(&format!(
                    "The console is read-only on this server: {op} changes state (riffle serve --console read-write allows it)"
                )));
            }
        }
        None
    }

    /// Answers a GET or HEAD under [`PREFIX`].
    pub async fn serve(
        &self,
        parts: &http::request::Parts,
        shared: &Shared,
        services: &Services,
    ) -> Response<Body> {
        if self.mode == Mode::Off {
            return plain(
                StatusCode::NOT_FOUND,
                "The console is off on this server.\n",
            );
        }
        let path = parts.uri.path();
        let rest = &path[PREFIX.len()..];
        if rest.is_empty() {
            return redirect(&format!("{PREFIX}/"));
        }
        if rest == "/api/server" {
            return match authenticate(parts, shared) {
                Ok(_) => self.server_info(shared).await,
                Err(refused) => *refused,
            };
        }
        if let Some((name, rest)) = rest.strip_prefix("/api/").and_then(|r| r.split_once('/')) {
            if let Some(s) = services.all().iter().find(|s| s.name() == name) {
                let region = match authenticate(parts, shared) {
                    Ok(region) => region,
                    Err(refused) => return *refused,
                };
                let answer = s.console_get(rest, &region);
                if let Some(answer) = answer {
                    return answer.await;
                }
            }
        }
        if let Some(name) = crate::console_tail::stream_of(rest) {
            return crate::console_tail::serve(self.streams.as_ref(), parts, shared, name).await;
        }
        if let Some(r) = rest.strip_prefix("/api/analytics/") {
            return crate::console_analytics::serve(&self.analytics, r, parts, shared).await;
        }
        let file = match rest.trim_start_matches('/') {
            "" => "index.html",
            f => f,
        };
        let Some(asset) = ASSETS.iter().find(|a| a.path == file) else {
            return not_found();
        };
        let fresh = crate::header(&parts.headers, "if-none-match").is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == asset.etag || t.trim() == "*")
        });
        let builder = Response::builder()
            .header(header::ETAG, asset.etag)
            // Revalidated on every load: a new binary serves new files.
            .header(header::CACHE_CONTROL, "no-cache")
            .header("x-content-type-options", "nosniff");
        let resp = if fresh {
            builder.status(StatusCode::NOT_MODIFIED).body(Body::empty())
        } else {
            let builder = builder
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, asset.content_type)
                .header(header::CONTENT_LENGTH, asset.body.len());
            if parts.method == Method::HEAD {
                builder.body(Body::empty())
            } else {
                builder.body(Body::full(asset.body))
            }
        };
        resp.unwrap_or_else(|_| Response::new(Body::empty()))
    }

    /// `GET /_riffle/console/api/server`: what the server page shows.
    async fn server_info(&self, shared: &Shared) -> Response<Body> {
        let info = &self.info;
        let disk = match &info.data_dir {
            Some(dir) => {
                let dir = dir.clone();
                tokio::task::spawn_blocking(move || disk_use(&dir))
                    .await
                    .unwrap_or(0)
            }
            None => 0,
        };
        let mut m = Map::new();
        m.put("version", Value::Str(env!("CARGO_PKG_VERSION").into()));
        m.put("storage", Value::Str(info.storage.clone()));
        m.put("durability", Value::Str(info.durability.clone()));
        m.put(
            "dataDirectory",
            info.data_dir
                .as_ref()
                .map(|d| Value::Str(d.display().to_string())),
        );
        m.put("listen", Value::Str(info.listen.clone()));
        m.put("startedAt", Value::Int(info.started_ms));
        m.put(
            "uptimeSeconds",
            Value::Int(info.started.elapsed().as_secs() as i64),
        );
        m.put("diskBytes", Value::Int(disk as i64));
        m.put("console", Value::Str(self.mode.as_str().into()));
        m.put(
            "credentialsRequired",
            Value::Bool(!shared.credentials.is_empty()),
        );
        m.put("region", Value::Str(shared.default_region.clone()));
        m.put("account", Value::Str(shared.account.clone()));
        json(Value::Map(m))
    }
}

/// The region of a console endpoint's request, or the refusal: when
/// credentials are configured it must be signed like any API call.
pub(crate) fn authenticate(
    parts: &http::request::Parts,
    shared: &Shared,
) -> Result<String, Box<Response<Body>>> {
    shared
        .authenticate(parts, &[])
        .map_err(|e| Box::new(auth_refusal(&e)))
}

/// A JSON answer of a console endpoint (never cached).
pub(crate) fn json(doc: Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::full(riffle_wire::json::encode(&doc)))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// Whether a `GET /` is a browser's first visit: it asks for HTML and is
/// not an AWS call (no signature, no query). The router also checks that
/// no service claims it (S3's virtual-host `GET /`).
pub fn is_browser_root(parts: &http::request::Parts) -> bool {
    matches!(parts.method, Method::GET | Method::HEAD)
        && parts.uri.path() == "/"
        && parts.uri.query().is_none()
        && !parts.headers.contains_key(header::AUTHORIZATION)
        && crate::header(&parts.headers, "accept").is_some_and(|a| a.contains("text/html"))
}

/// Whether a GET or HEAD is for the console's files or endpoint. `_` is
/// not allowed in S3 bucket names, so no path-style S3 request is shadowed.
pub fn is_console_path(parts: &http::request::Parts) -> bool {
    matches!(parts.method, Method::GET | Method::HEAD)
        && parts
            .uri
            .path()
            .strip_prefix(PREFIX)
            .is_some_and(|r| r.is_empty() || r.starts_with('/'))
}

pub fn redirect(to: &str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::FOUND)
        .header(
            header::LOCATION,
            HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/")),
        )
        .body(Body::empty())
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

pub(crate) fn not_found() -> Response<Body> {
    plain(StatusCode::NOT_FOUND, "No such console page.\n")
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::full(text))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// Bytes of the files under `dir` (symbolic links are not followed).
fn disk_use(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: Method, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut b = http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn error_of(resp: Option<Response<Body>>) -> Option<(u16, String)> {
        resp.map(|r| {
            let t = r
                .headers()
                .get("x-amzn-errortype")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            (r.status().as_u16(), t)
        })
    }

    fn console(mode: Mode) -> Console {
        Console {
            mode,
            ..Console::default()
        }
    }

    #[test]
    fn read_only_refuses_changes_and_lets_reads_through() {
        let c = console(Mode::ReadOnly);
        let req = |target: &str| {
            parts(
                Method::POST,
                "/",
                &[
                    ("host", "127.0.0.1:4566"),
                    ("origin", "http://127.0.0.1:4566"),
                    ("x-amz-target", target),
                    (HEADER, "1"),
                ],
            )
        };
        let denied = Some((400, "AccessDeniedException:".to_owned()));
        assert_eq!(
            error_of(c.guard(&req("Kinesis_20131202.CreateStream"))),
            denied
        );
        assert_eq!(
            error_of(c.guard(&req("Kinesis_20131202.PutRecord"))),
            denied
        );
        assert_eq!(
            error_of(c.guard(&req("Kinesis_20131202.ListStreams"))),
            None
        );
        assert_eq!(error_of(c.guard(&req("Kinesis_20131202.GetRecords"))), None);
        assert_eq!(
            error_of(c.guard(&req("Kinesis_20131202.DescribeStreamSummary"))),
            None
        );
        assert_eq!(
            error_of(console(Mode::ReadWrite).guard(&req("Kinesis_20131202.CreateStream"))),
            None
        );
        assert_eq!(
            error_of(console(Mode::Off).guard(&req("Kinesis_20131202.ListStreams"))),
            denied
        );
    }

    #[test]
    fn read_only_names_kinesis_video_operations_by_their_path() {
        let c = console(Mode::ReadOnly);
        let req = |method: Method, path: &str| {
            parts(
                method,
                path,
                &[
                    ("host", "127.0.0.1:4566"),
                    ("origin", "http://127.0.0.1:4566"),
                    (HEADER, "1"),
                ],
            )
        };
        let refused = |op: &str| {
            Some((
                400,
                format!(
                    r#"{{"__type":"AccessDeniedException","message":"The console is read-only on this server: {op} changes state (riffle serve --console read-write allows it)"}}"#
                ),
            ))
        };
        let answer = |p: http::request::Parts| {
            c.guard(&p).map(|r| {
                let status = r.status().as_u16();
                let text = match r.into_body() {
                    Body::Full(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
                    _ => String::new(),
                };
                (status, text)
            })
        };
        for path in [
            "/listStreams",
            "/describeStream",
            "/getDataEndpoint",
            "/listFragments",
            "/getHLSStreamingSessionURL",
            "/getDASHStreamingSessionURL",
            "/getMediaForFragmentList",
            "/getClip",
            "/getImages",
            "/getMedia",
            "/ListTagsForResource",
            "/listTagsForStream",
        ] {
            assert_eq!(answer(req(Method::POST, path)), None, "{path}");
        }
        for (path, op) in [
            ("/createStream", "CreateStream"),
            ("/deleteStream", "DeleteStream"),
            ("/updateDataRetention", "UpdateDataRetention"),
            ("/updateStream", "UpdateStream"),
            ("/TagResource", "TagResource"),
            ("/tagStream", "TagStream"),
            ("/putMedia", "PutMedia"),
        ] {
            assert_eq!(answer(req(Method::POST, path)), refused(op), "{path}");
        }
        // Not an operation: a change of something unknown.
        assert_eq!(
            answer(req(Method::POST, "/somewhere")),
            refused("/somewhere")
        );
        // A session's playlist is fetched with GET: a read.
        assert_eq!(
            answer(req(Method::GET, "/hls/v1/getHLSMasterPlaylist.m3u8")),
            None
        );
        assert_eq!(
            error_of(console(Mode::ReadWrite).guard(&req(Method::POST, "/deleteStream"))),
            None
        );
    }

    #[test]
    fn another_origin_is_refused_even_for_reads() {
        let c = console(Mode::ReadWrite);
        let req = |origin: &str, tls: bool| {
            let mut p = parts(
                Method::POST,
                "/",
                &[
                    ("host", "localhost:4566"),
                    ("origin", origin),
                    ("x-amz-target", "Kinesis_20131202.ListStreams"),
                    (HEADER, "1"),
                ],
            );
            if tls {
                p.extensions.insert(crate::platform::Tls);
            }
            p
        };
        let denied = Some((400, "AccessDeniedException:".to_owned()));
        assert_eq!(
            error_of(c.guard(&req("http://localhost:4566", false))),
            None
        );
        assert_eq!(
            error_of(c.guard(&req("https://localhost:4566", true))),
            None
        );
        assert_eq!(
            error_of(c.guard(&req("http://localhost:4566", true))),
            denied
        );
        assert_eq!(
            error_of(c.guard(&req("http://127.0.0.1:4566", false))),
            denied
        );
        assert_eq!(
            error_of(c.guard(&req("http://localhost:8080", false))),
            denied
        );
        assert_eq!(error_of(c.guard(&req("null", false))), denied);
    }

    #[test]
    fn console_paths_never_take_bucket_paths() {
        let get = |uri: &str| parts(Method::GET, uri, &[]);
        assert!(is_console_path(&get("/_riffle/console")));
        assert!(is_console_path(&get("/_riffle/console/app.js")));
        assert!(!is_console_path(&get("/_riffle/consoles")));
        assert!(!is_console_path(&get("/console/app.js")));
        assert!(!is_console_path(&get("/bucket/_riffle/console")));
        assert!(!is_console_path(&parts(
            Method::POST,
            "/_riffle/console/",
            &[]
        )));
        let html = [("accept", "text/html,application/xhtml+xml")];
        assert!(is_browser_root(&parts(Method::GET, "/", &html)));
        assert!(!is_browser_root(&parts(Method::GET, "/", &[])));
        assert!(!is_browser_root(&parts(
            Method::GET,
            "/?list-type=2",
            &html
        )));
        assert!(!is_browser_root(&parts(Method::GET, "/bucket", &html)));
        assert!(!is_browser_root(&parts(
            Method::GET,
            "/",
            &[html[0], ("authorization", "AWS4-HMAC-SHA256 Credential=x")]
        )));
    }

    #[test]
    fn every_asset_has_a_known_type_and_the_index_exists() {
        assert!(ASSETS.iter().any(|a| a.path == "index.html"));
        for a in ASSETS {
            assert_ne!(a.content_type, "application/octet-stream", "{}", a.path);
            assert_eq!(a.etag.len(), 18, "{}", a.path);
        }
    }
}
