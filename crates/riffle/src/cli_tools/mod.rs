//! The command-line helpers for Kinesis Data Streams: `riffle put` (stdin
//! lines as records), `riffle tail` (every shard followed, decoded) and
//! `riffle streams` (a table of streams). They speak JSON 1.1
//! (`X-Amz-Target: Kinesis_20131202.*`, SigV4-signed) to any Kinesis
//! endpoint, Riffle or not.
//!
//! Output is plain and stable when piped; on a terminal, progress goes to
//! stderr and the output is coloured (plain ANSI codes; `NO_COLOR`
//! turns colour off).

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{anyhow, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use crate::demo::api::ApiError;
use crate::video::Signer;

pub mod put;
pub mod streams;
pub mod tail;

/// The `X-Amz-Target` prefix of Kinesis Data Streams.
const TARGET: &str = "Kinesis_20131202";

/// A multi-threaded runtime for one command.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// One keep-alive HTTP/1.1 connection to a Kinesis endpoint, opened again
/// when it drops; every request is signed.
pub(crate) struct Kinesis {
    authority: String,
    signer: Signer,
    send: Option<http1::SendRequest<Full<Bytes>>>,
}

impl Kinesis {
    pub(crate) fn new(endpoint: &str, region: &str) -> anyhow::Result<Kinesis> {
        Ok(Kinesis {
            authority: crate::video::authority(endpoint)?,
            signer: Signer::from_env(region),
            send: None,
        })
    }

    async fn sender(&mut self) -> anyhow::Result<&mut http1::SendRequest<Full<Bytes>>> {
        let usable = match self.send.as_mut() {
            Some(s) => !s.is_closed() && s.ready().await.is_ok(),
            None => false,
        };
        if !usable {
            let tcp = tokio::net::TcpStream::connect(&self.authority)
                .await
                .with_context(|| format!("connecting to {}", self.authority))?;
            tcp.set_nodelay(true)?;
            let (send, conn) = http1::handshake(TokioIo::new(tcp)).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.send = Some(send);
        }
        self.send.as_mut().ok_or_else(|| anyhow!("no connection"))
    }

    /// Calls `operation` with a JSON body; returns the answer, or an
    /// [`ApiError`] with AWS's error type and message.
    pub(crate) async fn call(&mut self, operation: &str, body: &Value) -> anyhow::Result<Value> {
        self.call_bytes(operation, Bytes::from(serde_json::to_vec(body)?))
            .await
    }

    /// [`Kinesis::call`] with a body already encoded.
    pub(crate) async fn call_bytes(
        &mut self,
        operation: &str,
        body: Bytes,
    ) -> anyhow::Result<Value> {
        let mut headers = vec![
            ("host".to_owned(), self.authority.clone()),
            (
                "content-type".to_owned(),
                "application/x-amz-json-1.1".to_owned(),
            ),
            ("x-amz-target".to_owned(), format!("{TARGET}.{operation}")),
        ];
        let auth = self.signer.sign_post(
            "kinesis",
            "/",
            &mut headers,
            &riffle_wire::sigv4::sha256_hex(&body),
        );
        let mut req = http::Request::post("/");
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        let req = req.header("authorization", auth).body(Full::new(body))?;
        let send = self.sender().await?;
        let resp = match send.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                self.send = None;
                return Err(anyhow::Error::new(e).context(format!("calling {operation}")));
            }
        };
        let status = resp.status().as_u16();
        let error_type = resp
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = resp
            .into_body()
            .collect()
            .await
            .with_context(|| format!("reading the answer to {operation}"))?
            .to_bytes();
        if !(200..300).contains(&status) {
            return Err(api_error(operation, status, error_type.as_deref(), &bytes).into());
        }
        if bytes.is_empty() {
            return Ok(json!({}));
        }
        serde_json::from_slice(&bytes)
            .with_context(|| format!("the answer to {operation} is not JSON"))
    }

    /// A plain `GET` of `path` (Riffle's `/metrics`): the status and body.
    pub(crate) async fn get(&mut self, path: &str) -> anyhow::Result<(u16, String)> {
        let req = http::Request::get(path)
            .header("host", &self.authority)
            .body(Full::new(Bytes::new()))?;
        let send = self.sender().await?;
        let resp = send.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// The AWS error of a failed answer: `x-amzn-ErrorType` or `__type`, and
/// `message`.
fn api_error(operation: &str, status: u16, error_type: Option<&str>, body: &[u8]) -> ApiError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let kind = error_type
        .or_else(|| v["__type"].as_str())
        .unwrap_or(if status >= 500 {
            "InternalFailure"
        } else {
            "UnknownError"
        });
    let kind = kind.split(':').next().unwrap_or(kind);
    let kind = kind.rsplit('#').next().unwrap_or(kind).to_owned();
    let message = v["message"]
        .as_str()
        .or_else(|| v["Message"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    ApiError {
        operation: operation.to_owned(),
        kind,
        message,
        status,
    }
}

/// Whether a failed call is worth repeating, as the SDKs judge it:
/// throttling, server errors and dropped connections are; the caller's
/// mistakes (a missing stream, a bad argument, a refused signature) are not.
pub(crate) fn retryable(e: &anyhow::Error) -> bool {
    match e.downcast_ref::<ApiError>() {
        Some(a) => {
            a.status >= 500
                || matches!(
                    a.kind.as_str(),
                    "ProvisionedThroughputExceededException"
                        | "LimitExceededException"
                        | "ThrottlingException"
                        | "KMSThrottlingException"
                        | "InternalFailure"
                        | "ServiceUnavailable"
                )
        }
        // Connection refused or reset, a truncated answer.
        None => true,
    }
}

/// Whether `e` is the AWS error `kind`.
pub(crate) fn is_error(e: &anyhow::Error, kind: &str) -> bool {
    e.downcast_ref::<ApiError>().is_some_and(|a| a.kind == kind)
}

/// The SDKs' backoff: exponential from 100 ms, capped at 5 s, with full
/// jitter.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let cap_ms = (100u64 << attempt.min(6)).min(5_000);
    Duration::from_millis(rand::random::<u64>() % cap_ms + 1)
}

/// Colour and progress on a terminal, nothing of either on a pipe.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Style {
    /// Colour stdout.
    pub colour: bool,
    /// Draw progress on stderr.
    pub progress: bool,
}

impl Style {
    pub(crate) fn detect() -> Style {
        let no_colour = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            colour: std::io::stdout().is_terminal() && !no_colour,
            progress: std::io::stderr().is_terminal(),
        }
    }

    /// `text` in the ANSI style `code` (`"1"` bold, `"2"` dim, `"32"`
    /// green, ...) when colouring.
    pub(crate) fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// Whether an output error means the reader went away (`riffle tail |
/// head`): the command then ends quietly.
pub(crate) fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_worth_retrying() {
        let e = |kind: &str, status| -> anyhow::Error {
            ApiError {
                operation: "PutRecords".into(),
                kind: kind.into(),
                message: String::new(),
                status,
            }
            .into()
        };
        assert!(retryable(&e("ProvisionedThroughputExceededException", 400)));
        assert!(retryable(&e("LimitExceededException", 400)));
        assert!(retryable(&e("InternalFailure", 500)));
        assert!(retryable(&e("Whatever", 503)));
        assert!(!retryable(&e("ResourceNotFoundException", 400)));
        assert!(!retryable(&e("ValidationException", 400)));
        assert!(!retryable(&e("UnrecognizedClientException", 400)));
        assert!(retryable(&anyhow!("connection reset")));
    }

    #[test]
    fn error_type_from_header_or_body() {
        let a = api_error(
            "ListShards",
            400,
            None,
            br#"{"__type":"com.amazonaws#ResourceNotFoundException","message":"Stream x not found."}"#,
        );
        assert_eq!(
            (a.kind.as_str(), a.message.as_str()),
            ("ResourceNotFoundException", "Stream x not found.")
        );
        let a = api_error("ListShards", 503, None, b"busy");
        assert_eq!(
            (a.kind.as_str(), a.message.as_str()),
            ("InternalFailure", "busy")
        );
        let a = api_error(
            "ListShards",
            400,
            Some("AccessDeniedException:http://internal"),
            b"{}",
        );
        assert_eq!(a.kind, "AccessDeniedException");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 0..20 {
            let d = backoff(attempt);
            assert!(d >= Duration::from_millis(1));
            assert!(d <= Duration::from_millis((100u64 << attempt.min(6)).min(5_000)));
        }
    }
}
