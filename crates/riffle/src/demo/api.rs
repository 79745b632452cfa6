//! The AWS APIs the demo calls on its Riffle server: JSON 1.1 requests
//! (`X-Amz-Target`) to Firehose and Kinesis Analytics, S3's REST API for
//! buckets, and the server's own health and metrics endpoints.
//!
//! The server runs without `--credentials`, so any well-formed request is
//! accepted: requests carry a SigV4-shaped `Authorization` header naming
//! the service, with a signature nobody checks.

use std::net::SocketAddr;

use anyhow::{anyhow, bail, Context};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

pub const FIREHOSE: &str = "Firehose_20150804";
pub const ANALYTICS: &str = "KinesisAnalytics_20150814";

/// An error answer of a JSON API.
#[derive(Debug)]
pub struct ApiError {
    pub operation: String,
    pub kind: String,
    pub message: String,
    pub status: u16,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} failed: {} (HTTP {}): {}",
            self.operation, self.kind, self.status, self.message
        )
    }
}

impl std::error::Error for ApiError {}

/// One keep-alive HTTP/1.1 connection to the server, opened again when
/// it drops.
pub struct Client {
    addr: SocketAddr,
    send: Option<http1::SendRequest<Full<Bytes>>>,
}

fn auth_header(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIDDEMO/20260101/us-east-1/{service}/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature={}",
        "0".repeat(64)
    )
}

impl Client {
    pub fn new(addr: SocketAddr) -> Client {
        Client { addr, send: None }
    }

    async fn sender(&mut self) -> anyhow::Result<&mut http1::SendRequest<Full<Bytes>>> {
        let usable = match self.send.as_mut() {
            Some(s) => !s.is_closed() && s.ready().await.is_ok(),
            None => false,
        };
        if !usable {
            let tcp = tokio::net::TcpStream::connect(self.addr)
                .await
                .with_context(|| format!("connecting to riffle at {}", self.addr))?;
            tcp.set_nodelay(true)?;
            let (send, conn) = http1::handshake(TokioIo::new(tcp)).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.send = Some(send);
        }
        self.send.as_mut().ok_or_else(|| anyhow!("no connection"))
    }

    async fn request(&mut self, req: http::Request<Full<Bytes>>) -> anyhow::Result<(u16, Bytes)> {
        let send = self.sender().await?;
        let resp = send.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// Calls `operation` of the JSON API `target`; returns the answer, or
    /// an [`ApiError`] with AWS's error type and message.
    pub async fn call(
        &mut self,
        target: &str,
        operation: &str,
        body: &Value,
    ) -> anyhow::Result<Value> {
        let service = if target == FIREHOSE {
            "firehose"
        } else {
            "kinesisanalytics"
        };
        let req = http::Request::post("/")
            .header("host", self.addr.to_string())
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", format!("{target}.{operation}"))
            .header("x-amz-date", "20260101T000000Z")
            .header("authorization", auth_header(service))
            .body(Full::new(Bytes::from(serde_json::to_vec(body)?)))?;
        let (status, bytes) = self
            .request(req)
            .await
            .with_context(|| format!("calling {operation}"))?;
        let value: Value = if bytes.is_empty() {
            json!({})
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| json!({"message": String::from_utf8_lossy(&bytes)}))
        };
        if !(200..300).contains(&status) {
            let kind = value["__type"].as_str().unwrap_or("UnknownError");
            let kind = kind.rsplit('#').next().unwrap_or(kind).to_owned();
            let message = value["message"]
                .as_str()
                .or_else(|| value["Message"].as_str())
                .unwrap_or("")
                .to_owned();
            return Err(ApiError {
                operation: operation.to_owned(),
                kind,
                message,
                status,
            }
            .into());
        }
        Ok(value)
    }

    /// S3 `PUT /<bucket>`.
    pub async fn create_bucket(&mut self, bucket: &str) -> anyhow::Result<()> {
        let req = http::Request::put(format!("/{bucket}"))
            .header("host", self.addr.to_string())
            .header("x-amz-date", "20260101T000000Z")
            .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
            .header("authorization", auth_header("s3"))
            .body(Full::new(Bytes::new()))?;
        let (status, body) = self.request(req).await.context("creating a bucket")?;
        if !(200..300).contains(&status) {
            bail!(
                "creating bucket {bucket} failed (HTTP {status}): {}",
                String::from_utf8_lossy(&body).trim()
            );
        }
        Ok(())
    }

    /// A plain GET of one of the server's own endpoints.
    pub async fn get(&mut self, path: &str) -> anyhow::Result<(u16, String)> {
        let req = http::Request::get(path)
            .header("host", self.addr.to_string())
            .body(Full::new(Bytes::new()))?;
        let (status, body) = self.request(req).await?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// PutRecordBatch: sends `records` to the delivery stream `name`;
    /// returns the indexes of the records it refused.
    pub async fn put_record_batch(
        &mut self,
        name: &str,
        records: &[Vec<u8>],
    ) -> anyhow::Result<Vec<usize>> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let body = json!({
            "DeliveryStreamName": name,
            "Records": records.iter().map(|r| json!({"Data": b64.encode(r)})).collect::<Vec<_>>(),
        });
        let out = self.call(FIREHOSE, "PutRecordBatch", &body).await?;
        if out["FailedPutCount"].as_u64().unwrap_or(0) == 0 {
            return Ok(Vec::new());
        }
        let failed = out["RequestResponses"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .enumerate()
                    .filter(|(_, r)| r.get("ErrorCode").is_some_and(|c| !c.is_null()))
                    .map(|(i, _)| i)
                    .collect()
            })
            .unwrap_or_default();
        Ok(failed)
    }
}

/// The value of the Prometheus series `metric{delivery_stream="name",...}`
/// in a `/metrics` text.
pub fn delivery_metric(text: &str, metric: &str, stream: &str) -> Option<f64> {
    let label = format!("delivery_stream=\"{stream}\"");
    text.lines()
        .filter(|l| l.starts_with(metric) && l[metric.len()..].starts_with('{'))
        .find(|l| l.contains(&label))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_delivery_stream_series() {
        let text = "# TYPE x counter\n\
            riffle_firehose_incoming_records_total{delivery_stream=\"pairs\",region=\"us-east-1\"} 12\n\
            riffle_firehose_incoming_records_total{delivery_stream=\"popular\",region=\"us-east-1\"} 7\n\
            riffle_firehose_incoming_records_totals{delivery_stream=\"popular\",region=\"us-east-1\"} 9\n";
        assert_eq!(
            delivery_metric(text, "riffle_firehose_incoming_records_total", "popular"),
            Some(7.0)
        );
        assert_eq!(
            delivery_metric(text, "riffle_firehose_incoming_records_total", "pairs"),
            Some(12.0)
        );
        assert_eq!(
            delivery_metric(text, "riffle_firehose_incoming_records_total", "anomalies"),
            None
        );
    }
}
