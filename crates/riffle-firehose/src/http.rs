//! The HTTP endpoint destination, following AWS's "HTTP endpoint delivery
//! request and response specifications".
//!
//! - One POST per batch to the configured Url, body
//!   `{"requestId", "timestamp", "records": [{"data": <base64>}]}`, with
//!   `X-Amz-Firehose-Protocol-Version: 1.0`, `X-Amz-Firehose-Request-Id`,
//!   `X-Amz-Firehose-Source-Arn`, `X-Amz-Firehose-Access-Key` (the
//!   AccessKey, or with SecretsManagerConfiguration enabled the secret's
//!   `api_key`, see [`crate::secrets`]), `X-Amz-Firehose-Common-Attributes` (when
//!   CommonAttributes are), `Content-Type: application/json`,
//!   `Content-Encoding: gzip` (ContentEncoding GZIP) and a `User-Agent`.
//! - Success is a 200 whose JSON body carries the same `requestId`; any
//!   other status, a body that is not such JSON, a different requestId, a
//!   connection failure or no answer within 3 minutes is a failure.
//! - A failed request is retried with the same request id, with backoff
//!   (1 s doubling, at most 10 s), until RetryOptions.DurationInSeconds
//!   have passed since the first attempt (0: no retry). Then the records
//!   are written to the S3 backup bucket (S3DestinationDescription) as
//!   error records, one JSON document a line, under the ErrorOutputPrefix
//!   with `http-endpoint-failed` as the error output type (by default
//!   `<Prefix>http-endpoint-failed/YYYY/MM/DD/HH/`), compressed as that
//!   S3 configuration says. S3BackupMode AllData also writes every
//!   delivered batch, as is, under the backup Prefix.
//! - `https://` URLs are delivered over TLS with the system's trust store
//!   ([`crate::client`]); plain `http://` is accepted too (Riffle's
//!   addition, for local receivers). Retry waits use real time, not the
//!   service clock.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use serde_json::Value as Json;

use crate::client::{Client, SendError, Url};
use crate::deliver::{Batch, BoxFuture, DeliveryError, Destination, Hints};
use crate::sink::ObjectSink;

/// The User-Agent of delivery requests.
pub const USER_AGENT: &str = "Amazon Kinesis Data Firehose Agent/1.0 (Riffle)";
/// How long an endpoint has to answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(180);
/// The error output type of records given up on.
pub const ERROR_OUTPUT_TYPE: &str = "http-endpoint-failed";
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// The most of a response body kept for messages and parsing.
const MAX_RESPONSE: usize = 1 << 20;

/// What one HTTP endpoint destination does, read from its description
/// document (and its AccessKey, kept apart).
#[derive(Debug, Clone)]
pub struct Settings {
    pub url: String,
    pub target: Url,
    pub access_key: Option<String>,
    /// SecretsManagerConfiguration's SecretARN when enabled: the access
    /// key is the secret's `api_key`, read at every attempt.
    pub secret_arn: Option<String>,
    /// CommonAttributes, in their configured order.
    pub attributes: Vec<(String, String)>,
    pub gzip: bool,
    pub hints: Hints,
    pub retry: Duration,
    /// S3BackupMode AllData.
    pub backup_all: bool,
    /// The S3 backup configuration.
    pub backup: crate::s3::Settings,
    /// The processors (ProcessingConfiguration).
    pub pipeline: crate::process::Pipeline,
}

impl Settings {
    /// `Err(reason)` when this configuration cannot deliver in Riffle.
    pub fn from_description(doc: &Json, access_key: Option<String>) -> Result<Settings, String> {
        let url = doc
            .pointer("/EndpointConfiguration/Url")
            .and_then(Json::as_str)
            .unwrap_or("");
        let target = Url::parse(url)?;
        // What a request cannot carry fails here, once, not at every
        // delivery attempt.
        if target.path.parse::<hyper::Uri>().is_err() {
            return Err(format!(
                "The endpoint URL {url} cannot be requested: its path is not a valid URI."
            ));
        }
        if access_key
            .as_deref()
            .is_some_and(|k| hyper::header::HeaderValue::from_str(k).is_err())
        {
            return Err(
                "The AccessKey holds characters an HTTP header cannot carry; records stay buffered."
                    .into(),
            );
        }
        let pipeline =
            crate::process::Pipeline::from_description(doc).map_err(|e| e.to_string())?;
        let attributes = doc
            .pointer("/RequestConfiguration/CommonAttributes")
            .and_then(Json::as_array)
            .map(|l| {
                l.iter()
                    .map(|a| {
                        let s = |k: &str| a.get(k).and_then(Json::as_str).unwrap_or("").to_owned();
                        (s("AttributeName"), s("AttributeValue"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let gzip = doc
            .pointer("/RequestConfiguration/ContentEncoding")
            .and_then(Json::as_str)
            == Some("GZIP");
        let int = |p: &str, d: i64| doc.pointer(p).and_then(Json::as_i64).unwrap_or(d);
        let hints = Hints {
            size_bytes: int("/BufferingHints/SizeInMBs", 5).clamp(1, 64) as usize * 1024 * 1024,
            interval_ms: int("/BufferingHints/IntervalInSeconds", 300).clamp(0, 900) * 1000,
        };
        let retry = Duration::from_secs(int("/RetryOptions/DurationInSeconds", 300).max(0) as u64);
        let backup_all = doc.get("S3BackupMode").and_then(Json::as_str) == Some("AllData");
        let s3doc = doc
            .get("S3DestinationDescription")
            .cloned()
            .unwrap_or(Json::Null);
        let backup = match crate::s3::Settings::from_description(&s3doc) {
            Ok(Ok(s)) => s,
            Ok(Err(reason)) => return Err(reason),
            Err(e) => return Err(e.to_string()),
        };
        Ok(Settings {
            url: url.to_owned(),
            target,
            access_key,
            secret_arn: crate::secrets::configured(doc),
            attributes,
            gzip,
            hints,
            retry,
            backup_all,
            backup,
            pipeline,
        })
    }

    /// The `X-Amz-Firehose-Common-Attributes` value.
    pub fn attributes_header(&self) -> String {
        let mut m = serde_json::Map::new();
        for (k, v) in &self.attributes {
            m.insert(k.clone(), Json::String(v.clone()));
        }
        serde_json::json!({ "commonAttributes": m }).to_string()
    }
}

/// The JSON body of one delivery request.
pub fn request_body(request_id: &str, timestamp_ms: i64, records: &[Bytes]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out =
        Vec::with_capacity(64 + records.iter().map(|r| r.len() * 4 / 3 + 16).sum::<usize>());
    out.extend_from_slice(b"{\"requestId\":");
    out.extend_from_slice(Json::String(request_id.to_owned()).to_string().as_bytes());
    out.extend_from_slice(format!(",\"timestamp\":{timestamp_ms},\"records\":[").as_bytes());
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"data\":\"");
        out.extend_from_slice(b64.encode(r).as_bytes());
        out.extend_from_slice(b"\"}");
    }
    out.extend_from_slice(b"]}");
    out
}

fn err(code: &str, message: impl Into<String>) -> DeliveryError {
    DeliveryError {
        code: code.into(),
        message: message.into(),
    }
}

/// Checks an endpoint's answer: 200 and JSON with the same requestId.
pub fn check_response(status: u16, body: &[u8], request_id: &str) -> Result<(), DeliveryError> {
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]).into_owned();
    if status != 200 {
        return Err(err(
            "HttpEndpoint.DestinationException",
            format!("The following response was received from the endpoint destination. {status}: {text}"),
        ));
    }
    let parsed: Option<Json> = serde_json::from_slice(body).ok();
    match parsed.as_ref().and_then(|v| v.get("requestId")).and_then(Json::as_str) {
        Some(id) if id == request_id => Ok(()),
        Some(id) => Err(err(
            "HttpEndpoint.InvalidResponseFromDestination",
            format!("The response received from the endpoint has a requestId {id} that does not match the request's {request_id}. Response: {text}"),
        )),
        None => Err(err(
            "HttpEndpoint.InvalidResponseFromDestination",
            format!("The response received from the endpoint is invalid: it must be JSON with the request's requestId. Response: {text}"),
        )),
    }
}

/// Delivers to one HTTP endpoint; gives up on a batch into the S3 backup.
pub struct HttpDestination {
    pub settings: Settings,
    /// The processors, run by the delivery task before buffering; their
    /// error objects go to the S3 backup bucket.
    pub front: crate::process::Front,
    pub stream: String,
    pub stream_arn: String,
    pub version: u64,
    pub sink: Option<Arc<dyn ObjectSink>>,
    pub clock: Arc<dyn riffle_core::Clock>,
    pub client: Client,
    /// Where the SecretsManagerConfiguration secret is read.
    pub secrets: Option<crate::secrets::SecretsRef>,
    /// The batch whose requests are over, and how they ended (`None`:
    /// acknowledged; else the failure and the attempts made), so that a
    /// retry after a failed backup write stores the backup again without
    /// sending the batch again.
    pub sent: std::sync::Mutex<Option<(BatchId, Outcome)>>,
}

/// Tells the batch the delivery task retries apart from the next one.
pub type BatchId = (i64, i64, usize, usize);

/// How a batch's requests ended: `None` acknowledged, else the last
/// failure and the attempts made.
pub type Outcome = Option<(DeliveryError, u32)>;

fn batch_id(b: &Batch) -> BatchId {
    (
        b.first_arrival_ms,
        b.last_arrival_ms,
        b.records.len(),
        b.bytes,
    )
}

impl HttpDestination {
    /// The `X-Amz-Firehose-Access-Key` value: the secret's `api_key` when
    /// SecretsManagerConfiguration is enabled, else the AccessKey.
    fn access_key(&self) -> Result<Option<String>, DeliveryError> {
        let Some(arn) = &self.settings.secret_arn else {
            return Ok(self.settings.access_key.clone());
        };
        let [key] = <[String; 1]>::try_from(crate::secrets::read(
            self.secrets.as_ref(),
            arn,
            &["api_key"],
            &[],
        )?)
        .expect("one key asked, one value");
        if hyper::header::HeaderValue::from_str(&key).is_err() {
            return Err(err(
                crate::secrets::INVALID_FORMAT,
                format!(
                    "The api_key of the secret {arn} holds characters an HTTP header cannot carry."
                ),
            ));
        }
        Ok(Some(key))
    }

    /// One request; `Ok` when the endpoint acknowledged it.
    async fn post(&self, request_id: &str, body: Bytes) -> Result<(), DeliveryError> {
        let t = &self.settings.target;
        let unreachable = |e: String| {
            err(
                "HttpEndpoint.ConnectionFailed",
                format!(
                    "Could not connect to the endpoint {}: {e}",
                    self.settings.url
                ),
            )
        };
        let attempt = async {
            let mut req = hyper::Request::post(t.path.as_str())
                .header(hyper::header::HOST, t.authority.as_str())
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .header(hyper::header::USER_AGENT, USER_AGENT)
                .header("X-Amz-Firehose-Protocol-Version", "1.0")
                .header("X-Amz-Firehose-Request-Id", request_id)
                .header("X-Amz-Firehose-Source-Arn", self.stream_arn.as_str());
            if self.settings.gzip {
                req = req.header(hyper::header::CONTENT_ENCODING, "gzip");
            }
            if let Some(k) = self.access_key()? {
                req = req.header("X-Amz-Firehose-Access-Key", k.as_str());
            }
            if !self.settings.attributes.is_empty() {
                req = req.header(
                    "X-Amz-Firehose-Common-Attributes",
                    self.settings.attributes_header(),
                );
            }
            let req = req
                .body(Full::new(body))
                .map_err(|e| unreachable(e.to_string()))?;
            let resp = self
                .client
                .send(t, req, MAX_RESPONSE)
                .await
                .map_err(|e| match e {
                    SendError::Connect(m) => unreachable(m),
                    SendError::Io(m) => err(
                        "HttpEndpoint.ConnectionReset",
                        format!(
                            "The connection to the endpoint {} failed: {m}",
                            self.settings.url
                        ),
                    ),
                })?;
            check_response(resp.status, &resp.body, request_id)
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, attempt).await {
            Ok(r) => r,
            Err(_) => Err(err(
                "HttpEndpoint.RequestTimeout",
                format!(
                    "The endpoint {} did not answer within {} seconds.",
                    self.settings.url,
                    REQUEST_TIMEOUT.as_secs()
                ),
            )),
        }
    }

    /// Stores one backup object under `prefix`.
    async fn store(&self, prefix: String, raw: Vec<u8>, ms: i64) -> Result<(), DeliveryError> {
        crate::backup::put(
            self.sink.as_ref(),
            &self.settings.backup,
            &self.stream,
            self.version,
            prefix,
            &raw,
            ms,
        )
        .await
    }

    /// The error records of a batch given up on, one JSON document a line.
    fn error_records(&self, batch: &Batch, attempts: u32, e: &DeliveryError) -> Vec<u8> {
        let ended = self.clock.now_ms();
        crate::failed::lines(batch.records.iter().enumerate().map(|(i, r)| {
            crate::failed::FailedRecord {
                attempts,
                arrival_ms: batch.arrival_ms(i),
                code: &e.code,
                message: &e.message,
                ended_ms: ended,
                raw: r,
                extra: Vec::new(),
                keys: &crate::failed::LOWER,
            }
        }))
    }
}

impl Destination for HttpDestination {
    fn name(&self) -> &'static str {
        "http_endpoint"
    }

    fn hints(&self) -> Hints {
        self.settings.hints
    }

    fn front(&self) -> Option<&crate::process::Front> {
        Some(&self.front)
    }

    fn store_errors<'a>(
        &'a self,
        e: &'a crate::process::ErrorObject,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(self.store(e.prefix.clone(), e.body.clone(), e.first_arrival_ms))
    }

    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let id = batch_id(batch);
            let done = self
                .sent
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .filter(|(b, _)| *b == id)
                .map(|(_, outcome)| outcome.clone());
            let failure = match done {
                Some(outcome) => outcome,
                None => {
                    let outcome = self.send(batch).await?;
                    *self.sent.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some((id, outcome.clone()));
                    outcome
                }
            };
            let s = &self.settings.backup;
            match failure {
                None => {
                    if self.settings.backup_all {
                        let raw = crate::backup::concat(&batch.records);
                        let prefix = s.layout.prefix(batch.first_arrival_ms);
                        self.store(prefix, raw, batch.first_arrival_ms).await?;
                    }
                    Ok(())
                }
                Some((e, attempts)) => {
                    tracing::error!(stream = %self.stream, code = %e.code, attempts, records = batch.records.len(), "HTTP endpoint delivery given up after the retry duration; writing the records to the S3 backup");
                    let raw = self.error_records(batch, attempts, &e);
                    let prefix = s
                        .layout
                        .error_prefix(batch.first_arrival_ms, ERROR_OUTPUT_TYPE);
                    self.store(prefix, raw, batch.first_arrival_ms)
                        .await
                        .map_err(|b| {
                            err(
                                &e.code,
                                format!(
                                    "{} Writing the records to the S3 backup failed too ({}: {}).",
                                    e.message, b.code, b.message
                                ),
                            )
                        })
                }
            }
        })
    }
}

impl HttpDestination {
    /// Sends the batch, retrying with the same request id for the retry
    /// duration: `None` once acknowledged, else the last failure and the
    /// attempts made.
    async fn send(&self, batch: &Batch) -> Result<Outcome, DeliveryError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let json = request_body(&request_id, self.clock.now_ms(), &batch.records);
        let body = if self.settings.gzip {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&json)
                .and_then(|_| e.finish())
                .map_err(|e| err("HttpEndpoint.InternalError", e.to_string()))?
        } else {
            json
        };
        let body = Bytes::from(body);
        let started = Instant::now();
        let mut backoff = BACKOFF_FIRST;
        let mut attempts = 0u32;
        let failure = loop {
            attempts += 1;
            match self.post(&request_id, body.clone()).await {
                Ok(()) => break None,
                Err(e) => {
                    let left = self.settings.retry.saturating_sub(started.elapsed());
                    if left.is_zero() {
                        break Some(e);
                    }
                    tracing::warn!(stream = %self.stream, code = %e.code, message = %e.message, attempts, request_id = %request_id, "HTTP endpoint delivery failed; retrying");
                    crate::deliver::report_failure(Some(crate::deliver::failure_text(
                        &e, attempts,
                    )));
                    tokio::time::sleep(backoff.min(left)).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        };
        Ok(failure.map(|e| (e, attempts)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::sync::Mutex;

    use http_body_util::BodyExt;
    use hyper::body::Incoming;

    #[test]
    fn responses() {
        assert!(check_response(200, br#"{"requestId":"r","timestamp":1}"#, "r").is_ok());
        let e = check_response(500, b"down", "r").unwrap_err();
        assert_eq!(e.code, "HttpEndpoint.DestinationException");
        assert!(e.message.contains("500: down"));
        let e = check_response(200, br#"{"requestId":"x","timestamp":1}"#, "r").unwrap_err();
        assert_eq!(e.code, "HttpEndpoint.InvalidResponseFromDestination");
        let e = check_response(200, b"ok", "r").unwrap_err();
        assert_eq!(e.code, "HttpEndpoint.InvalidResponseFromDestination");
        // Another 2xx is a failure too.
        assert!(check_response(201, br#"{"requestId":"r"}"#, "r").is_err());
    }

    /// What the receiver saw: headers and the (decoded) body per request.
    type Seen = Arc<Mutex<Vec<(hyper::HeaderMap, Vec<u8>)>>>;

    /// A receiver answering the i-th request with `statuses[i]` (the last
    /// one from then on), echoing the request id as AWS requires.
    async fn receiver(statuses: Vec<u16>) -> (u16, Seen) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Seen = Arc::default();
        let seen2 = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen2.clone();
                let statuses = statuses.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                        let seen = seen.clone();
                        let statuses = statuses.clone();
                        async move {
                            let headers = req.headers().clone();
                            let raw = req.into_body().collect().await.unwrap().to_bytes();
                            let body = if headers.get("content-encoding").is_some() {
                                let mut out = Vec::new();
                                flate2::read::GzDecoder::new(&raw[..])
                                    .read_to_end(&mut out)
                                    .unwrap();
                                out
                            } else {
                                raw.to_vec()
                            };
                            let id = headers["x-amz-firehose-request-id"]
                                .to_str()
                                .unwrap()
                                .to_owned();
                            let n = {
                                let mut s = seen.lock().unwrap();
                                s.push((headers, body));
                                s.len()
                            };
                            let status = statuses[(n - 1).min(statuses.len() - 1)];
                            let answer = serde_json::json!({"requestId": id, "timestamp": 1});
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from(answer.to_string())))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        (port, seen)
    }

    fn destination(port: u16, extra: Json, sink: Option<Arc<dyn ObjectSink>>) -> HttpDestination {
        let mut doc = serde_json::json!({
            "EndpointConfiguration": {"Url": format!("http://127.0.0.1:{port}/in?x=1"), "Name": "t"},
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
            "RetryOptions": {"DurationInSeconds": 0},
            "S3BackupMode": "FailedDataOnly",
            "S3DestinationDescription": {"BucketARN": "arn:aws:s3:::backup", "Prefix": "p/"},
        });
        for (k, v) in extra.as_object().unwrap() {
            doc[k] = v.clone();
        }
        let settings = Settings::from_description(&doc, Some("secret-key".into())).unwrap();
        HttpDestination {
            front: crate::process::Front::identity(
                settings.backup.layout.clone(),
                riffle_core::clock::SystemClock::new(),
            ),
            settings,
            stream: "s".into(),
            stream_arn: "arn:aws:firehose:us-east-1:000000000000:deliverystream/s".into(),
            version: 1,
            sink,
            clock: riffle_core::clock::SystemClock::new(),
            client: Client::shared(),
            secrets: None,
            sent: Default::default(),
        }
    }

    fn batch(records: &[&[u8]]) -> Batch {
        let mut b = Batch::default();
        for r in records {
            b.push(Bytes::copy_from_slice(r), 1_700_000_000_000);
        }
        b
    }

    #[tokio::test]
    async fn delivers_as_aws_specifies() {
        for gzip in [false, true] {
            let (port, seen) = receiver(vec![200]).await;
            let d = destination(
                port,
                serde_json::json!({"RequestConfiguration": {
                    "ContentEncoding": if gzip { "GZIP" } else { "NONE" },
                    "CommonAttributes": [{"AttributeName": "env", "AttributeValue": "test"}],
                }}),
                None,
            );
            let records: Vec<&[u8]> = vec![b"one", b"\x00\xff binary", b""];
            d.deliver(&batch(&records)).await.unwrap();
            let seen = seen.lock().unwrap();
            assert_eq!(seen.len(), 1);
            let (h, body) = &seen[0];
            let hv = |k: &str| h.get(k).map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(hv("content-type").as_deref(), Some("application/json"));
            assert_eq!(
                hv("x-amz-firehose-protocol-version").as_deref(),
                Some("1.0")
            );
            assert_eq!(
                hv("x-amz-firehose-access-key").as_deref(),
                Some("secret-key")
            );
            assert_eq!(
                hv("x-amz-firehose-common-attributes").as_deref(),
                Some(r#"{"commonAttributes":{"env":"test"}}"#)
            );
            assert_eq!(
                hv("x-amz-firehose-source-arn").as_deref(),
                Some("arn:aws:firehose:us-east-1:000000000000:deliverystream/s")
            );
            assert_eq!(hv("content-encoding").as_deref(), gzip.then_some("gzip"));
            assert!(hv("user-agent")
                .unwrap()
                .starts_with("Amazon Kinesis Data Firehose Agent/1.0"));
            let v: Json = serde_json::from_slice(body).unwrap();
            assert_eq!(
                v["requestId"].as_str(),
                hv("x-amz-firehose-request-id").as_deref()
            );
            assert!(v["timestamp"].as_i64().unwrap() > 1_600_000_000_000);
            let b64 = base64::engine::general_purpose::STANDARD;
            let got: Vec<Vec<u8>> = v["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| b64.decode(r["data"].as_str().unwrap()).unwrap())
                .collect();
            assert_eq!(got, records.iter().map(|r| r.to_vec()).collect::<Vec<_>>());
        }
    }

    #[tokio::test]
    async fn retries_with_the_same_request_id() {
        let (port, seen) = receiver(vec![500, 200]).await;
        let d = destination(
            port,
            serde_json::json!({"RetryOptions": {"DurationInSeconds": 30}}),
            None,
        );
        d.deliver(&batch(&[b"x"])).await.unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(
            seen[0].0["x-amz-firehose-request-id"],
            seen[1].0["x-amz-firehose-request-id"]
        );
        assert_eq!(seen[0].1, seen[1].1);
    }

    #[tokio::test]
    async fn gives_up_into_the_s3_backup() {
        let (port, seen) = receiver(vec![503]).await;
        let dir = tempfile::tempdir().unwrap();
        let sink = crate::sink::DirSink::new(dir.path());
        let d = destination(port, serde_json::json!({}), Some(sink.clone()));
        // No backup bucket yet: the failure stands, to be retried.
        let e = d.deliver(&batch(&[b"a", b"b"])).await.unwrap_err();
        assert_eq!(e.code, "HttpEndpoint.DestinationException");
        assert!(e.message.contains("S3 backup failed too"));
        std::fs::create_dir(dir.path().join("backup")).unwrap();
        // Given up on: the retry writes the backup without sending again.
        d.deliver(&batch(&[b"a", b"b"])).await.unwrap();
        assert_eq!(seen.lock().unwrap().len(), 1);
        let base = dir
            .path()
            .join("backup/p/http-endpoint-failed/2023/11/14/22");
        let files: Vec<_> = std::fs::read_dir(&base)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1);
        let text = std::fs::read_to_string(&files[0]).unwrap();
        let lines: Vec<Json> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["rawData"], "YQ==");
        assert_eq!(lines[1]["rawData"], "Yg==");
        assert_eq!(lines[0]["errorCode"], "HttpEndpoint.DestinationException");
        assert_eq!(lines[0]["attemptsMade"], 1);
        assert_eq!(lines[0]["arrivalTimestamp"], 1_700_000_000_000i64);
    }

    #[tokio::test]
    async fn all_data_backs_up_delivered_batches() {
        let (port, _) = receiver(vec![200]).await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("backup")).unwrap();
        let sink = crate::sink::DirSink::new(dir.path());
        let d = destination(
            port,
            serde_json::json!({"S3BackupMode": "AllData"}),
            Some(sink.clone()),
        );
        d.deliver(&batch(&[b"a\n", b"b\n"])).await.unwrap();
        let base = dir.path().join("backup/p/2023/11/14/22");
        let files: Vec<_> = std::fs::read_dir(&base)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(std::fs::read(&files[0]).unwrap(), b"a\nb\n");
    }

    /// A delivered batch whose backup write fails is not sent again when
    /// the delivery task retries it: only the backup is retried.
    #[tokio::test]
    async fn a_failed_backup_is_retried_without_sending_again() {
        let (port, seen) = receiver(vec![200]).await;
        let dir = tempfile::tempdir().unwrap();
        let sink = crate::sink::DirSink::new(dir.path());
        let d = destination(
            port,
            serde_json::json!({"S3BackupMode": "AllData"}),
            Some(sink.clone()),
        );
        let b = batch(&[b"a\n", b"b\n"]);
        let e = d.deliver(&b).await.unwrap_err();
        assert_eq!(e.code, "S3.NoSuchBucket");
        assert_eq!(seen.lock().unwrap().len(), 1);
        std::fs::create_dir(dir.path().join("backup")).unwrap();
        d.deliver(&b).await.unwrap();
        assert_eq!(seen.lock().unwrap().len(), 1);
        // The next batch is sent.
        d.deliver(&batch(&[b"c\n"])).await.unwrap();
        assert_eq!(seen.lock().unwrap().len(), 2);
    }
}
