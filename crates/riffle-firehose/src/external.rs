//! Buckets on an external S3-compatible endpoint: [`ExternalS3`], an
//! [`ObjectSink`] speaking S3's REST API (HeadBucket, PutObject) over the
//! delivery HTTP client ([`crate::client::Client`]: `http://` or
//! `https://`, one request per connection) with requests signed by SigV4
//! ([`riffle_wire::sigv4::sign`]), and [`RouterSink`], which picks the
//! sink of each bucket: a per-bucket endpoint, else the global endpoint,
//! else the server's own sink (the embedded S3 or a local directory).
//!
//! - Addressing is path-style (`http://host:port[/base]/<bucket>/<key>`)
//!   unless virtual-hosted style is asked for
//!   (`http://<bucket>.host:port[/base]/<key>`).
//! - Every request is signed for service `s3` with the configured region
//!   and a hash of the body (`x-amz-content-sha256`); a session token goes
//!   in `x-amz-security-token`. Signatures use the wall clock, not the
//!   service clock, as the endpoint checks them against its own.
//! - Answers map to [`SinkError`]: `NoSuchBucket` (or a 404 HeadBucket)
//!   to `S3.NoSuchBucket`, `AccessDenied` (or a 403 HeadBucket) to
//!   `S3.AccessDenied`; anything else, connection failures included, is
//!   an I/O error the delivery task retries with the endpoint's code and
//!   message in FailureDescription.
//! - `https://` endpoints are verified against the system's trust store
//!   (`SSL_CERT_FILE`/`SSL_CERT_DIR` add a private CA), as for HTTP
//!   endpoint destinations.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;

use crate::client::{Client, SendError, Url};
use crate::deliver::BoxFuture;
use crate::sink::{ObjectSink, SinkError};

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// The most of an error answer kept.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Credentials and region requests are signed with.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub region: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// A parsed `http[s]://host[:port][/base]` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// The path every request starts with, without a trailing `/` (`""`
    /// for none).
    pub base: String,
}

impl Endpoint {
    /// Parses an endpoint URL; `Err` says why it cannot be used.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        if url.contains(['?', '#']) {
            return Err(format!("{url}: an S3 endpoint has no query or fragment"));
        }
        let u = Url::parse(url)
            .map_err(|_| format!("{url}: an S3 endpoint is an http:// or https:// URL"))?;
        Ok(Endpoint {
            url: url.to_owned(),
            tls: u.tls,
            host: u.host,
            port: u.port,
            base: u.path.trim_end_matches('/').to_owned(),
        })
    }

    /// The URL of a request: to the endpoint's host, or to
    /// `<bucket>.<host>` (virtual-hosted style).
    fn url(&self, bucket: Option<&str>, path: String) -> Url {
        let host = match bucket {
            Some(b) => format!("{b}.{}", self.host),
            None => self.host.clone(),
        };
        let bracketed = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let default_port = if self.tls { 443 } else { 80 };
        let authority = if self.port == default_port {
            bracketed
        } else {
            format!("{bracketed}:{}", self.port)
        };
        Url {
            tls: self.tls,
            host,
            port: self.port,
            authority,
            path,
        }
    }
}

/// S3's URI encoding of a path: everything but unreserved characters and
/// `/` percent-encoded.
fn encode_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// The `<Code>` and `<Message>` of an S3 error document.
fn error_parts(body: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(body);
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        text.find(&open)
            .and_then(|i| {
                let rest = &text[i + open.len()..];
                rest.find(&close).map(|j| rest[..j].to_owned())
            })
            .unwrap_or_default()
    };
    (tag("Code"), tag("Message"))
}

/// One S3-compatible endpoint as an object store.
pub struct ExternalS3 {
    pub endpoint: Endpoint,
    pub credentials: Credentials,
    /// Path-style addressing (the bucket in the path, not the host name).
    pub path_style: bool,
    pub client: Client,
}

/// An answer: status and (bounded) body.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl ExternalS3 {
    /// A sink over the process's shared HTTP client.
    pub fn new(endpoint: Endpoint, credentials: Credentials, path_style: bool) -> Arc<ExternalS3> {
        Arc::new(ExternalS3 {
            endpoint,
            credentials,
            path_style,
            client: Client::shared(),
        })
    }

    /// The URL of a request for `bucket` (and `key`).
    fn address(&self, bucket: &str, key: Option<&str>) -> Url {
        let base = &self.endpoint.base;
        let key = key.map(encode_path);
        if self.path_style {
            let path = match key {
                Some(k) => format!("{base}/{}/{k}", encode_path(bucket)),
                None => format!("{base}/{}", encode_path(bucket)),
            };
            self.endpoint.url(None, path)
        } else {
            let path = format!("{base}/{}", key.unwrap_or_default());
            self.endpoint.url(Some(bucket), path)
        }
    }

    async fn request(
        &self,
        method: &str,
        url: &Url,
        body: Bytes,
        extra: &[(&str, &str)],
    ) -> Result<Answer, SinkError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let payload = riffle_wire::sigv4::sha256_hex(&body);
        let amz_date = riffle_wire::sigv4::format_amz_date(now);
        let c = &self.credentials;
        let mut headers: Vec<(&str, &str)> = vec![
            ("host", &url.authority),
            ("x-amz-content-sha256", &payload),
            ("x-amz-date", &amz_date),
        ];
        if let Some(t) = &c.session_token {
            headers.push(("x-amz-security-token", t));
        }
        headers.extend_from_slice(extra);
        let auth = riffle_wire::sigv4::sign(
            &riffle_wire::sigv4::Request {
                method,
                path: &url.path,
                query: "",
                headers: &headers,
                body: &[],
            },
            &c.access_key_id,
            &c.secret_access_key,
            &c.region,
            "s3",
            now,
            &payload,
        );
        let unreachable = |e: String| {
            SinkError::Io(format!(
                "The S3 endpoint {} could not be reached: {e}",
                self.endpoint.url
            ))
        };
        let mut req = hyper::Request::builder()
            .method(method)
            .header(hyper::header::AUTHORIZATION, auth.as_str())
            .header(hyper::header::USER_AGENT, crate::http::USER_AGENT);
        for (k, v) in &headers {
            req = req.header(*k, *v);
        }
        if !matches!(
            req.method_ref(),
            Some(&hyper::Method::GET | &hyper::Method::HEAD)
        ) {
            // Always sent: S3 refuses a PUT without it (an empty body
            // would otherwise go without one).
            req = req.header(hyper::header::CONTENT_LENGTH, body.len());
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| unreachable(e.to_string()))?;
        match tokio::time::timeout(REQUEST_TIMEOUT, self.client.send(url, req, MAX_ERROR_BODY))
            .await
        {
            Ok(Ok(r)) => Ok(Answer {
                status: r.status,
                body: r.body,
            }),
            Ok(Err(SendError::Connect(e) | SendError::Io(e))) => Err(unreachable(e)),
            Err(_) => Err(SinkError::Io(format!(
                "The S3 endpoint {} did not answer within {} seconds.",
                self.endpoint.url,
                REQUEST_TIMEOUT.as_secs()
            ))),
        }
    }

    /// The error an unsuccessful answer stands for.
    fn failure(&self, bucket: &str, a: &Answer) -> SinkError {
        let (code, message) = error_parts(&a.body);
        match (a.status, code.as_str()) {
            (_, "NoSuchBucket") => SinkError::NoSuchBucket(bucket.to_owned()),
            (_, "AccessDenied") | (403, "") => SinkError::AccessDenied(format!(
                "Access Denied: the S3 endpoint {} refused access to bucket {bucket}{}",
                self.endpoint.url,
                match message.as_str() {
                    "" | "Access Denied" => String::new(),
                    m => format!(" ({m})"),
                }
            )),
            (404, "") => SinkError::NoSuchBucket(bucket.to_owned()),
            (status, "") => SinkError::Io(format!(
                "The S3 endpoint {} answered {status}.",
                self.endpoint.url
            )),
            (status, code) => SinkError::Io(format!(
                "The S3 endpoint {} answered {status} {code}: {message}",
                self.endpoint.url
            )),
        }
    }
}

impl ObjectSink for ExternalS3 {
    fn put_object<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        body: Bytes,
        content_type: Option<&'a str>,
        content_encoding: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let url = self.address(bucket, Some(key));
            let mut extra = Vec::new();
            if let Some(t) = content_type {
                extra.push(("content-type", t));
            }
            if let Some(e) = content_encoding {
                extra.push(("content-encoding", e));
            }
            let a = self.request("PUT", &url, body, &extra).await?;
            match a.status {
                200..=299 => Ok(()),
                _ => Err(self.failure(bucket, &a)),
            }
        })
    }

    fn bucket_exists<'a>(&'a self, bucket: &'a str) -> BoxFuture<'a, Result<bool, SinkError>> {
        Box::pin(async move {
            let url = self.address(bucket, None);
            let a = self.request("HEAD", &url, Bytes::new(), &[]).await?;
            match a.status {
                200..=299 => Ok(true),
                404 => Ok(false),
                _ => match self.failure(bucket, &a) {
                    SinkError::NoSuchBucket(_) => Ok(false),
                    e => Err(e),
                },
            }
        })
    }
}

/// Picks each bucket's sink: a per-bucket one, else the global external
/// one, else the server's own.
pub struct RouterSink {
    pub local: Arc<dyn ObjectSink>,
    pub external: Option<Arc<dyn ObjectSink>>,
    pub buckets: HashMap<String, Arc<dyn ObjectSink>>,
}

impl RouterSink {
    fn route(&self, bucket: &str) -> &Arc<dyn ObjectSink> {
        self.buckets
            .get(bucket)
            .or(self.external.as_ref())
            .unwrap_or(&self.local)
    }
}

impl ObjectSink for RouterSink {
    fn put_object<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        body: Bytes,
        content_type: Option<&'a str>,
        content_encoding: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        self.route(bucket)
            .put_object(bucket, key, body, content_type, content_encoding)
    }

    fn bucket_exists<'a>(&'a self, bucket: &'a str) -> BoxFuture<'a, Result<bool, SinkError>> {
        self.route(bucket).bucket_exists(bucket)
    }
}

/// Parses one `BUCKET=URL` mapping.
pub fn parse_bucket_endpoint(s: &str) -> Result<(String, Endpoint), String> {
    let (bucket, url) = s
        .split_once('=')
        .ok_or_else(|| format!("{s}: a bucket endpoint is BUCKET=URL"))?;
    let bucket = bucket.trim();
    if bucket.is_empty() {
        return Err(format!("{s}: a bucket endpoint is BUCKET=URL"));
    }
    Ok((bucket.to_owned(), Endpoint::parse(url.trim())?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    use http_body_util::BodyExt;
    use hyper::body::Incoming;

    #[test]
    fn endpoints_and_addresses() {
        let e = Endpoint::parse("http://127.0.0.1:9000/s3/").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.base.as_str()),
            ("127.0.0.1", 9000, "/s3")
        );
        let creds = Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: "secret".into(),
            session_token: None,
            region: "us-east-1".into(),
        };
        let s = ExternalS3::new(e.clone(), creds.clone(), true);
        let at = |u: Url| (u.tls, u.host, u.port, u.authority, u.path);
        assert_eq!(
            at(s.address("b", Some("a b/c+d"))),
            (
                false,
                "127.0.0.1".to_owned(),
                9000,
                "127.0.0.1:9000".to_owned(),
                "/s3/b/a%20b/c%2Bd".to_owned()
            )
        );
        let v = ExternalS3::new(Endpoint::parse("https://s3.local").unwrap(), creds, false);
        assert_eq!(
            at(v.address("b", Some("k"))),
            (
                true,
                "b.s3.local".to_owned(),
                443,
                "b.s3.local".to_owned(),
                "/k".to_owned()
            )
        );
        assert_eq!(v.address("b", None).path, "/");
        assert_eq!(
            Endpoint::parse("http://h:1/?x").unwrap_err(),
            "http://h:1/?x: an S3 endpoint has no query or fragment"
        );
        assert_eq!(
            Endpoint::parse("ftp://x").unwrap_err(),
            "ftp://x: an S3 endpoint is an http:// or https:// URL"
        );
        assert_eq!(
            parse_bucket_endpoint("logs=http://h:1").unwrap().0,
            "logs".to_owned()
        );
        assert!(parse_bucket_endpoint("http://h:1").is_err());
    }

    /// A minimal S3: checks each request's SigV4 signature with
    /// riffle-wire's verifier, keeps objects, knows bucket `b` only and
    /// refuses bucket `denied`.
    type Objects = Arc<Mutex<Vec<(String, Vec<u8>, Option<String>)>>>;

    async fn s3_server() -> (u16, Objects) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let objects: Objects = Arc::default();
        let seen = objects.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                        let seen = seen.clone();
                        async move {
                            let method = req.method().as_str().to_owned();
                            let path = req.uri().path().to_owned();
                            let headers: Vec<(String, String)> = req
                                .headers()
                                .iter()
                                .map(|(k, v)| {
                                    (k.as_str().to_owned(), v.to_str().unwrap().to_owned())
                                })
                                .collect();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let hs: Vec<(&str, &str)> = headers
                                .iter()
                                .map(|(k, v)| (k.as_str(), v.as_str()))
                                .collect();
                            let r = riffle_wire::sigv4::Request {
                                method: &method,
                                path: &path,
                                query: "",
                                headers: &hs,
                                body: &body,
                            };
                            let sig = riffle_wire::sigv4::parse(&r).unwrap();
                            let now = std::time::SystemTime::now()
                                .duration_since(std::time::UNIX_EPOCH)
                                .unwrap()
                                .as_secs() as i64;
                            let ok = riffle_wire::sigv4::verify(&r, &sig, "secret", now).is_ok()
                                && sig.region == "eu-west-1"
                                && sig.service == "s3";
                            let answer = |status: u16, body: &str| {
                                Ok::<_, std::convert::Infallible>(
                                    hyper::Response::builder()
                                        .status(status)
                                        .body(Full::new(Bytes::from(body.to_owned())))
                                        .unwrap(),
                                )
                            };
                            if !ok {
                                return answer(403, "<Error><Code>SignatureDoesNotMatch</Code><Message>bad</Message></Error>");
                            }
                            let mut parts = path.trim_start_matches('/').splitn(2, '/');
                            let bucket = parts.next().unwrap_or("");
                            let key = parts.next();
                            match (bucket, key) {
                                ("denied", _) => answer(403, if method == "HEAD" { "" } else { "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>" }),
                                ("b", None) => answer(200, ""),
                                ("b", Some(k)) => {
                                    let ct = hs.iter().find(|(n, _)| *n == "content-type").map(|(_, v)| v.to_string());
                                    seen.lock().unwrap().push((k.to_owned(), body.to_vec(), ct));
                                    answer(200, "")
                                }
                                (_, None) => answer(404, ""),
                                (b, Some(_)) => answer(404, &format!("<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><BucketName>{b}</BucketName></Error>")),
                            }
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        (port, objects)
    }

    #[tokio::test]
    async fn puts_signed_objects_and_maps_errors() {
        let (port, objects) = s3_server().await;
        let endpoint = Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let creds = Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: "secret".into(),
            session_token: Some("token".into()),
            region: "eu-west-1".into(),
        };
        let s = ExternalS3::new(endpoint.clone(), creds.clone(), true);
        assert!(s.bucket_exists("b").await.unwrap());
        assert!(!s.bucket_exists("missing").await.unwrap());
        s.put_object(
            "b",
            "2024/01/02/x y",
            Bytes::from_static(b"\x00hello"),
            Some("application/octet-stream"),
            None,
        )
        .await
        .unwrap();
        assert_eq!(
            objects.lock().unwrap().clone(),
            vec![(
                "2024/01/02/x%20y".to_owned(),
                b"\x00hello".to_vec(),
                Some("application/octet-stream".to_owned())
            )]
        );
        let e = s
            .put_object("missing", "k", Bytes::new(), None, None)
            .await
            .unwrap_err();
        assert_eq!(e, SinkError::NoSuchBucket("missing".into()));
        assert_eq!(e.code(), "S3.NoSuchBucket");
        let e = s
            .put_object("denied", "k", Bytes::new(), None, None)
            .await
            .unwrap_err();
        assert_eq!(
            e,
            SinkError::AccessDenied(format!(
                "Access Denied: the S3 endpoint http://127.0.0.1:{port} refused access to bucket denied"
            ))
        );
        assert_eq!(e.code(), "S3.AccessDenied");
        assert_eq!(
            s.bucket_exists("denied").await.unwrap_err().code(),
            "S3.AccessDenied"
        );
        // A wrong secret: the endpoint's code and message, retried.
        let bad = ExternalS3::new(
            endpoint,
            Credentials {
                secret_access_key: "wrong".into(),
                ..creds
            },
            true,
        );
        let e = bad
            .put_object("b", "k", Bytes::new(), None, None)
            .await
            .unwrap_err();
        assert_eq!(
            e,
            SinkError::Io(format!(
                "The S3 endpoint http://127.0.0.1:{port} answered 403 SignatureDoesNotMatch: bad"
            ))
        );
        // Nothing listening.
        let gone = ExternalS3::new(
            Endpoint::parse("http://127.0.0.1:1").unwrap(),
            Credentials {
                access_key_id: "a".into(),
                secret_access_key: "b".into(),
                session_token: None,
                region: "us-east-1".into(),
            },
            true,
        );
        assert_eq!(
            gone.bucket_exists("b").await.unwrap_err().code(),
            "S3.InternalError"
        );
    }

    #[tokio::test]
    async fn routes_by_bucket() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("local")).unwrap();
        let (port, objects) = s3_server().await;
        let ext = ExternalS3::new(
            Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
            Credentials {
                access_key_id: "AKID".into(),
                secret_access_key: "secret".into(),
                session_token: None,
                region: "eu-west-1".into(),
            },
            true,
        );
        let router = RouterSink {
            local: crate::sink::DirSink::new(dir.path()),
            external: None,
            buckets: HashMap::from([("b".to_owned(), ext as Arc<dyn ObjectSink>)]),
        };
        router
            .put_object("local", "k", Bytes::from_static(b"1"), None, None)
            .await
            .unwrap();
        router
            .put_object("b", "k", Bytes::from_static(b"2"), None, None)
            .await
            .unwrap();
        assert_eq!(std::fs::read(dir.path().join("local/k")).unwrap(), b"1");
        assert_eq!(objects.lock().unwrap()[0].1, b"2");
        assert!(!router.bucket_exists("b2").await.unwrap());
    }
}
