//! The Lambda processor: Firehose's data transformation contract.
//!
//! Records go to the function through the Lambda Invoke API
//! (`POST {endpoint}/2015-03-31/functions/{LambdaArn}/invocations`,
//! RequestResponse) at the server's `--lambda-endpoint` (`http://` or
//! `https://`, through [`crate::client`]), in invocations
//! of at most BufferSizeInMBs of record data and 6 MB of request body:
//!
//! `{"invocationId", "deliveryStreamArn", "region",
//!   ["sourceKinesisStreamArn",] "records": [{"recordId",
//!   "approximateArrivalTimestamp", "data": <base64>}]}`
//!
//! The function answers `{"records": [{"recordId", "result", "data",
//! "metadata": {"partitionKeys": {..}}}]}` with every recordId exactly
//! once; `result` is `Ok`, `Dropped` or `ProcessingFailed`. An invocation
//! that fails (no connection, a status other than 200, a function error,
//! an answer that breaks the contract) is retried NumberOfRetries times,
//! shown as FailureDescription meanwhile, then its records go to the
//! error output as processing-failed.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use serde_json::Value as Json;

use crate::client::{Client, SendError, Url};

/// The most a Lambda synchronous invocation's request may carry.
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024;
/// How long one invocation may take (Firehose's longest function
/// timeout is 5 minutes).
const INVOKE_TIMEOUT: Duration = Duration::from_secs(300);
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(8);
/// The most of a response body read.
const MAX_RESPONSE: usize = 8 * 1024 * 1024;

/// The Lambda processor's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub arn: String,
    pub retries: u32,
    /// BufferSizeInMBs as bytes.
    pub buffer_bytes: usize,
    pub interval_s: u32,
}

/// What the function made of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok {
        data: Bytes,
        keys: BTreeMap<String, String>,
    },
    Dropped,
    Failed,
}

/// Why an invocation failed: AWS's error code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeError {
    pub code: String,
    pub message: String,
}

fn ierr(code: &str, message: impl Into<String>) -> InvokeError {
    InvokeError {
        code: code.into(),
        message: message.into(),
    }
}

/// The error code and message of a record the function set
/// ProcessingFailed on.
pub const PROCESSING_FAILED: (&str, &str) = (
    "Lambda.ProcessingFailedStatus",
    "ProcessingFailed status set for record",
);

/// Reads the function's answer for the record ids sent, in their order.
pub fn parse_response(body: &[u8], ids: &[String]) -> Result<Vec<Outcome>, InvokeError> {
    let invalid = |why: &str| {
        ierr(
            "Lambda.JsonProcessingException",
            format!("There was an error parsing returned records from the Lambda function: {why}. Ensure that the returned records follow the status model required by Firehose."),
        )
    };
    let doc: Json = serde_json::from_slice(body).map_err(|e| invalid(&e.to_string()))?;
    let records = doc
        .get("records")
        .and_then(Json::as_array)
        .ok_or_else(|| invalid("the response has no records array"))?;
    let index: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut out: Vec<Option<Outcome>> = vec![None; ids.len()];
    let b64 = base64::engine::general_purpose::STANDARD;
    for r in records {
        let id = r
            .get("recordId")
            .and_then(Json::as_str)
            .ok_or_else(|| invalid("a returned record has no recordId"))?;
        let Some(&i) = index.get(id) else {
            return Err(ierr(
                "Lambda.MissingRecordId",
                format!("One or more record Ids were not returned; the response has the unknown record Id {id}. Ensure that the Lambda function returns all received record Ids."),
            ));
        };
        if out[i].is_some() {
            return Err(ierr(
                "Lambda.DuplicatedRecordId",
                format!("Multiple records were returned with the same record Id {id}. Ensure that the Lambda function returns unique record Ids for each record."),
            ));
        }
        let result = r.get("result").and_then(Json::as_str).unwrap_or("");
        out[i] = Some(match result {
            "Ok" => {
                let data = r
                    .get("data")
                    .and_then(Json::as_str)
                    .ok_or_else(|| invalid(&format!("record {id} is Ok but has no data")))?;
                let data = b64
                    .decode(data)
                    .map_err(|_| invalid(&format!("the data of record {id} is not base64")))?;
                let mut keys = BTreeMap::new();
                if let Some(pk) = r.pointer("/metadata/partitionKeys") {
                    let pk = pk.as_object().ok_or_else(|| {
                        invalid(&format!(
                            "metadata.partitionKeys of record {id} is not an object"
                        ))
                    })?;
                    for (k, v) in pk {
                        let v = match v {
                            Json::String(s) => s.clone(),
                            Json::Number(_) | Json::Bool(_) => v.to_string(),
                            _ => {
                                return Err(invalid(&format!(
                                    "partition key {k} of record {id} is not a string"
                                )))
                            }
                        };
                        keys.insert(k.clone(), v);
                    }
                }
                Outcome::Ok {
                    data: Bytes::from(data),
                    keys,
                }
            }
            "Dropped" => Outcome::Dropped,
            "ProcessingFailed" => Outcome::Failed,
            other => {
                return Err(invalid(&format!(
                    "record {id} has the result {other:?}, not Ok, Dropped or ProcessingFailed"
                )))
            }
        });
    }
    if let Some(i) = out.iter().position(Option::is_none) {
        return Err(ierr(
            "Lambda.MissingRecordId",
            format!("One or more record Ids were not returned (the first missing is {}). Ensure that the Lambda function returns all received record Ids.", ids[i]),
        ));
    }
    Ok(out.into_iter().map(|o| o.expect("checked above")).collect())
}

/// Where and for whom invocations go.
#[derive(Debug, Clone)]
pub struct Invoker {
    pub client: Client,
    pub endpoint: Url,
    pub stream_arn: String,
    pub region: String,
    pub source_kinesis_arn: Option<String>,
}

/// One record of an invocation.
pub struct InRecord<'a> {
    pub id: String,
    pub arrival_ms: i64,
    pub data: &'a [u8],
    /// For a Kinesis source: `kinesisRecordMetadata`.
    pub kinesis: Option<KinesisMetadata<'a>>,
}

/// Where a record of a Kinesis source came from.
pub struct KinesisMetadata<'a> {
    pub shard_id: &'a str,
    pub partition_key: &'a str,
    pub sequence_number: &'a str,
    pub subsequence_number: u64,
}

/// Percent-encodes a path segment (everything but RFC 3986 unreserved
/// characters).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The event document of one invocation.
pub fn event(invoker: &Invoker, invocation_id: &str, records: &[InRecord<'_>]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let text = |s: &str| Json::from(s).to_string();
    let mut out = Vec::with_capacity(
        records
            .iter()
            .map(|r| r.data.len() * 4 / 3 + 96)
            .sum::<usize>()
            + 256,
    );
    out.extend_from_slice(
        format!(
            "{{\"invocationId\":{},\"deliveryStreamArn\":{},\"region\":{},",
            text(invocation_id),
            text(&invoker.stream_arn),
            text(&invoker.region)
        )
        .as_bytes(),
    );
    if let Some(arn) = &invoker.source_kinesis_arn {
        out.extend_from_slice(format!("\"sourceKinesisStreamArn\":{},", text(arn)).as_bytes());
    }
    out.extend_from_slice(b"\"records\":[");
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(
            format!(
                "{{\"recordId\":{},\"approximateArrivalTimestamp\":{},\"data\":\"",
                text(&r.id),
                r.arrival_ms
            )
            .as_bytes(),
        );
        out.extend_from_slice(b64.encode(r.data).as_bytes());
        out.push(b'"');
        if let Some(k) = &r.kinesis {
            out.extend_from_slice(
                format!(
                    ",\"kinesisRecordMetadata\":{{\"shardId\":{},\"partitionKey\":{},\"approximateArrivalTimestamp\":{},\"sequenceNumber\":{},\"subsequenceNumber\":{}}}",
                    text(k.shard_id),
                    text(k.partition_key),
                    r.arrival_ms,
                    text(k.sequence_number),
                    k.subsequence_number
                )
                .as_bytes(),
            );
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    out
}

/// The size one record adds to an event: base64 data plus its fields.
pub fn record_cost(len: usize) -> usize {
    len.div_ceil(3) * 4 + 512
}

/// Splits records (by their data lengths) into invocations of at most
/// `buffer_bytes` of data and [`MAX_PAYLOAD`] of event; each holds at
/// least one record.
pub fn split(lens: &[usize], buffer_bytes: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let (mut data, mut payload) = (0usize, 512usize);
    for (i, &len) in lens.iter().enumerate() {
        let cost = record_cost(len);
        if i > start && (data + len > buffer_bytes || payload + cost > MAX_PAYLOAD) {
            out.push(start..i);
            start = i;
            data = 0;
            payload = 512;
        }
        data += len;
        payload += cost;
    }
    if start < lens.len() {
        out.push(start..lens.len());
    }
    out
}

/// One Invoke call (RequestResponse) of `function_arn` at `endpoint`
/// for callers outside delivery streams: the function's answer body, or
/// the invocation error (a 5-minute timeout included).
pub async fn invoke_raw(
    client: &Client,
    endpoint: &Url,
    function_arn: &str,
    body: Bytes,
) -> Result<Vec<u8>, InvokeError> {
    let invoker = Invoker {
        client: client.clone(),
        endpoint: endpoint.clone(),
        stream_arn: String::new(),
        region: String::new(),
        source_kinesis_arn: None,
    };
    invoker.invoke_once(function_arn, body).await
}

impl Invoker {
    /// One Invoke call; `Ok` is the function's answer body.
    async fn invoke_once(&self, arn: &str, body: Bytes) -> Result<Vec<u8>, InvokeError> {
        let t = &self.endpoint;
        let unreachable = |e: String| {
            ierr(
                "Lambda.ServiceUnavailable",
                format!(
                    "Could not reach the Lambda endpoint {}:{}: {e}",
                    t.host, t.port
                ),
            )
        };
        let url = Url {
            path: format!(
                "{}/2015-03-31/functions/{}/invocations",
                t.path.split('?').next().unwrap_or("").trim_end_matches('/'),
                encode_segment(arn)
            ),
            ..t.clone()
        };
        let attempt = async {
            let req = hyper::Request::post(url.path.as_str())
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .header(hyper::header::USER_AGENT, crate::http::USER_AGENT)
                .header("X-Amz-Invocation-Type", "RequestResponse")
                .body(Full::new(body))
                .map_err(|e| unreachable(e.to_string()))?;
            let resp = self
                .client
                .send(&url, req, MAX_RESPONSE)
                .await
                .map_err(|e| match e {
                    SendError::Connect(m) | SendError::Io(m) => unreachable(m),
                })?;
            let function_error = resp
                .headers
                .get("X-Amz-Function-Error")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let bytes = resp.body;
            let status = resp.status;
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).into_owned();
            match (status, function_error) {
                (200, None) => Ok(bytes),
                (200, Some(kind)) => Err(ierr(
                    "Lambda.FunctionError",
                    format!("The Lambda function {arn} returned an error ({kind}): {text}"),
                )),
                (404, _) => Err(ierr(
                    "Lambda.InvokeAccessDenied",
                    format!("The Lambda function {arn} was not found or cannot be invoked: {text}"),
                )),
                (429, _) => Err(ierr(
                    "Lambda.InvokeLimitExceeded",
                    format!("The Lambda invocation limit was exceeded: {text}"),
                )),
                (s, _) => Err(ierr(
                    "Lambda.ServiceException",
                    format!("The Lambda Invoke call failed with status {s}: {text}"),
                )),
            }
        };
        match tokio::time::timeout(INVOKE_TIMEOUT, attempt).await {
            Ok(r) => r,
            Err(_) => Err(ierr(
                "Lambda.FunctionTimedOut",
                format!(
                    "The Lambda function {arn} did not answer within {} seconds.",
                    INVOKE_TIMEOUT.as_secs()
                ),
            )),
        }
    }

    /// Invokes the function for `records`, retrying up to
    /// `settings.retries` times. Returns the attempts made and the
    /// outcomes, or the last invocation error.
    pub async fn transform(
        &self,
        settings: &Settings,
        records: &[InRecord<'_>],
    ) -> (u32, Result<Vec<Outcome>, InvokeError>) {
        let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
        let invocation_id = uuid::Uuid::new_v4().to_string();
        let body = Bytes::from(event(self, &invocation_id, records));
        let mut backoff = BACKOFF_FIRST;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let r = match self.invoke_once(&settings.arn, body.clone()).await {
                Ok(answer) => parse_response(&answer, &ids),
                Err(e) => Err(e),
            };
            if attempts > 1 && (r.is_ok() || attempts > settings.retries) {
                crate::deliver::report_failure(None);
            }
            match r {
                Ok(outcomes) => return (attempts, Ok(outcomes)),
                Err(e) if attempts > settings.retries => return (attempts, Err(e)),
                Err(e) => {
                    tracing::warn!(function = %settings.arn, code = %e.code, message = %e.message, attempts, "Lambda invocation failed; retrying");
                    crate::deliver::report_failure(Some(crate::deliver::failure_text(
                        &crate::deliver::DeliveryError {
                            code: e.code.clone(),
                            message: e.message.clone(),
                        },
                        attempts,
                    )));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use http_body_util::BodyExt;

    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("r{i}")).collect()
    }

    #[test]
    fn valid_response() {
        let body = br#"{"records":[
            {"recordId":"r1","result":"Dropped"},
            {"recordId":"r0","result":"Ok","data":"SEk=","metadata":{"partitionKeys":{"a":"x","n":3}}},
            {"recordId":"r2","result":"ProcessingFailed","data":""}]}"#;
        let out = parse_response(body, &ids(3)).unwrap();
        assert_eq!(
            out,
            vec![
                Outcome::Ok {
                    data: Bytes::from_static(b"HI"),
                    keys: [("a".to_string(), "x".to_string()), ("n".into(), "3".into())]
                        .into_iter()
                        .collect()
                },
                Outcome::Dropped,
                Outcome::Failed,
            ]
        );
    }

    #[test]
    fn contract_violations() {
        let code =
            |body: &str, n: usize| parse_response(body.as_bytes(), &ids(n)).unwrap_err().code;
        assert_eq!(
            code(r#"{"records":[{"recordId":"r0","result":"Dropped"}]}"#, 2),
            "Lambda.MissingRecordId"
        );
        assert_eq!(
            code(
                r#"{"records":[{"recordId":"r0","result":"Dropped"},{"recordId":"r0","result":"Dropped"}]}"#,
                2
            ),
            "Lambda.DuplicatedRecordId"
        );
        assert_eq!(
            code(r#"{"records":[{"recordId":"zz","result":"Dropped"}]}"#, 1),
            "Lambda.MissingRecordId"
        );
        assert_eq!(code("not json", 1), "Lambda.JsonProcessingException");
        assert_eq!(code(r#"{"nope":1}"#, 1), "Lambda.JsonProcessingException");
        assert_eq!(
            code(r#"{"records":[{"recordId":"r0","result":"Maybe"}]}"#, 1),
            "Lambda.JsonProcessingException"
        );
        assert_eq!(
            code(r#"{"records":[{"recordId":"r0","result":"Ok"}]}"#, 1),
            "Lambda.JsonProcessingException"
        );
        assert_eq!(
            code(
                r#"{"records":[{"recordId":"r0","result":"Ok","data":"!!"}]}"#,
                1
            ),
            "Lambda.JsonProcessingException"
        );
    }

    #[test]
    fn event_document() {
        let inv = Invoker {
            client: Client::shared(),
            endpoint: Url::parse("http://127.0.0.1:1").unwrap(),
            stream_arn: "arn:aws:firehose:us-east-1:000000000000:deliverystream/s".into(),
            region: "us-east-1".into(),
            source_kinesis_arn: None,
        };
        let recs = [InRecord {
            id: "r0".into(),
            arrival_ms: 1700000000000,
            data: b"hi",
            kinesis: None,
        }];
        let doc: Json = serde_json::from_slice(&event(&inv, "inv-1", &recs)).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({
                "invocationId": "inv-1",
                "deliveryStreamArn": "arn:aws:firehose:us-east-1:000000000000:deliverystream/s",
                "region": "us-east-1",
                "records": [{"recordId": "r0", "approximateArrivalTimestamp": 1700000000000i64, "data": "aGk="}]
            })
        );
        let recs = [InRecord {
            id: "r1".into(),
            arrival_ms: 5,
            data: b"",
            kinesis: Some(KinesisMetadata {
                shard_id: "shardId-000000000000",
                partition_key: "pk",
                sequence_number: "4960",
                subsequence_number: 2,
            }),
        }];
        let inv = Invoker {
            source_kinesis_arn: Some("arn:aws:kinesis:us-east-1:000000000000:stream/src".into()),
            ..inv
        };
        let doc: Json = serde_json::from_slice(&event(&inv, "inv-2", &recs)).unwrap();
        assert_eq!(
            doc["sourceKinesisStreamArn"],
            "arn:aws:kinesis:us-east-1:000000000000:stream/src"
        );
        assert_eq!(
            doc["records"][0],
            serde_json::json!({"recordId": "r1", "approximateArrivalTimestamp": 5, "data": "",
                "kinesisRecordMetadata": {"shardId": "shardId-000000000000", "partitionKey": "pk",
                    "approximateArrivalTimestamp": 5, "sequenceNumber": "4960", "subsequenceNumber": 2}})
        );
        assert_eq!(
            encode_segment("arn:aws:lambda:us-east-1:0:function:f"),
            "arn%3Aaws%3Alambda%3Aus-east-1%3A0%3Afunction%3Af"
        );
    }

    #[test]
    fn splits_by_size() {
        assert_eq!(split(&[10, 10, 10], 25), vec![0..2, 2..3]);
        assert_eq!(split(&[100, 1, 1], 25), vec![0..1, 1..3]);
        assert_eq!(split(&[], 25), Vec::<std::ops::Range<usize>>::new());
        let big = 3 * 1024 * 1024;
        assert_eq!(split(&[big, big], 4 * big).len(), 2);
    }

    /// A Lambda Invoke API answering the n-th call with `answers[n]` (the
    /// last one from then on): (status, X-Amz-Function-Error, upper-case
    /// the records?). Returns its port and the paths called.
    async fn lambda_server(
        answers: Vec<(u16, Option<&'static str>)>,
    ) -> (u16, Arc<Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen2.clone();
                let answers = answers.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let seen = seen.clone();
                            let answers = answers.clone();
                            async move {
                                let path = req.uri().path().to_owned();
                                let raw = req.into_body().collect().await.unwrap().to_bytes();
                                let n = {
                                    let mut s = seen.lock().unwrap();
                                    s.push(path);
                                    s.len()
                                };
                                let (status, fe) = answers[(n - 1).min(answers.len() - 1)];
                                let event: Json = serde_json::from_slice(&raw).unwrap();
                                let b64 = base64::engine::general_purpose::STANDARD;
                                let records: Vec<Json> = event["records"]
                                    .as_array()
                                    .unwrap()
                                    .iter()
                                    .map(|r| {
                                        let d = b64.decode(r["data"].as_str().unwrap()).unwrap();
                                        serde_json::json!({"recordId": r["recordId"], "result": "Ok",
                                            "data": b64.encode(d.to_ascii_uppercase())})
                                    })
                                    .collect();
                                let mut resp = hyper::Response::builder().status(status);
                                if let Some(fe) = fe {
                                    resp = resp.header("X-Amz-Function-Error", fe);
                                }
                                let body = serde_json::json!({"records": records}).to_string();
                                Ok::<_, std::convert::Infallible>(
                                    resp.body(Full::new(Bytes::from(body))).unwrap(),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        (port, seen)
    }

    fn invoker(port: u16) -> Invoker {
        Invoker {
            client: Client::shared(),
            endpoint: Url::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
            stream_arn: "arn:aws:firehose:us-east-1:000000000000:deliverystream/s".into(),
            region: "us-east-1".into(),
            source_kinesis_arn: None,
        }
    }

    fn settings(retries: u32) -> Settings {
        Settings {
            arn: "arn:aws:lambda:us-east-1:000000000000:function:f".into(),
            retries,
            buffer_bytes: 1 << 20,
            interval_s: 60,
        }
    }

    #[tokio::test]
    async fn invokes_and_retries() {
        let recs = [
            InRecord {
                id: "a".into(),
                arrival_ms: 1,
                data: b"x",
                kinesis: None,
            },
            InRecord {
                id: "b".into(),
                arrival_ms: 2,
                data: b"yz",
                kinesis: None,
            },
        ];
        let (port, seen) =
            lambda_server(vec![(500, None), (200, Some("Unhandled")), (200, None)]).await;
        let (attempts, out) = invoker(port).transform(&settings(2), &recs).await;
        assert_eq!(attempts, 3);
        let data: Vec<Bytes> = out
            .unwrap()
            .into_iter()
            .map(|o| match o {
                Outcome::Ok { data, .. } => data,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            data,
            vec![Bytes::from_static(b"X"), Bytes::from_static(b"YZ")]
        );
        assert_eq!(
            seen.lock().unwrap()[0],
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af/invocations"
        );

        // Out of retries: the last failure counts.
        let (port, _) = lambda_server(vec![(500, None), (200, Some("Handled"))]).await;
        let (attempts, out) = invoker(port).transform(&settings(1), &recs).await;
        assert_eq!(attempts, 2);
        assert_eq!(out.unwrap_err().code, "Lambda.FunctionError");
        let (port, _) = lambda_server(vec![(429, None)]).await;
        let (attempts, out) = invoker(port).transform(&settings(0), &recs).await;
        assert_eq!(
            (attempts, out.unwrap_err().code.as_str()),
            (1, "Lambda.InvokeLimitExceeded")
        );
    }
}
