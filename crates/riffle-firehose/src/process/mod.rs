//! Data processing for S3, HTTP endpoint and Redshift destinations: the
//! processors of a ProcessingConfiguration and dynamic partitioning,
//! applied by the delivery task to records before they are buffered by
//! partition (see [`crate::deliver`]).
//!
//! AWS runs the processors in a fixed order, whatever the order they are
//! listed in, and so does [`Pipeline::run`]:
//!
//! 1. RecordDeAggregation (SubRecordType `KINESIS_PRODUCER_LIBRARY`,
//!    `JSON`: concatenated or newline-delimited JSON documents, or
//!    `DELIMITED` with a base64 Delimiter) splits records into user
//!    records. For a Kinesis source, KPL aggregated records are split
//!    without the processor, as AWS does.
//! 2. Decompression (CompressionFormat `GZIP`) gunzips each record.
//! 3. CloudWatchLogProcessing drops CONTROL_MESSAGE records of CloudWatch
//!    Logs subscriptions; with DataMessageExtraction `true` each
//!    `logEvents[].message` of a DATA_MESSAGE becomes a record.
//! 4. Lambda ([`lambda`]) transforms, drops or fails records and may
//!    return `partitionKeyFromLambda` keys.
//! 5. MetadataExtraction ([`jq`]) runs MetadataExtractionQuery on each
//!    JSON record; the keys of the object it returns are the
//!    `partitionKeyFromQuery` keys.
//! 6. AppendDelimiterToRecord: the S3 destination appends the delimiter
//!    when it writes the object body.
//!
//! Records a processor fails on go to the error output as
//! `processing-failed`; with dynamic partitioning, records the query
//! fails on or that lack a key the Prefix uses go there as
//! `partitioning-failed`. Error objects hold [`crate::failed`] lines.
//!
//! Dynamic partitioning groups the records by the values of the keys the
//! Prefix uses; the delivery task keeps a buffer per partition, written as
//! one object whose key times are taken from the partition's oldest
//! record.

pub mod jq;
pub mod kpl;
pub mod lambda;

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use serde_json::Value as Json;

use crate::deliver::Batch;
use crate::error::FirehoseError;
use crate::prefix::{Layout, PartitionKeys};

/// The error output type of records a processor failed on.
pub const PROCESSING_FAILED: &str = "processing-failed";
/// The error output type of records dynamic partitioning failed on.
pub const PARTITIONING_FAILED: &str = "partitioning-failed";
/// The error code of records the MetadataExtraction query failed on or
/// that lack a partition key.
pub const METADATA_EXTRACTION_FAILED: &str = "DynamicPartitioning.MetadataExtractionFailed";

/// Active partitions per delivery stream (AWS's default quota): records
/// of further partitions go to the error output while this many partition
/// buffers are open.
pub const ACTIVE_PARTITIONS: usize = 500;
/// The error output type of records over the active partition limit (the
/// error prefix the Firehose developer guide names for them).
pub const ACTIVE_PARTITION_EXCEEDED: &str = "activePartitionExceeded";
/// The error code of such records.
pub const ACTIVE_PARTITIONS_LIMIT_EXCEEDED: &str =
    "DynamicPartitioning.ActivePartitionsLimitExceeded";

/// What the delivery task runs before buffering records for a
/// destination: its processors, and the layout its partition and error
/// prefixes are evaluated with.
#[derive(Clone)]
pub struct Front {
    pub pipeline: Pipeline,
    pub runtime: Runtime,
    pub layout: Layout,
}

impl Front {
    /// No processors: records are buffered as they are.
    pub fn identity(layout: Layout, clock: Arc<dyn riffle_core::Clock>) -> Front {
        Front {
            pipeline: Pipeline::default(),
            runtime: Runtime {
                invoker: None,
                clock,
                kinesis_source: false,
            },
            layout,
        }
    }

    /// The Lambda processor's own buffering: records are batched into
    /// invocations by its BufferSizeInMBs and BufferIntervalInSeconds.
    pub fn lambda_hints(&self) -> Option<crate::deliver::Hints> {
        self.pipeline
            .lambda
            .as_ref()
            .filter(|_| self.runtime.invoker.is_some())
            .map(|l| crate::deliver::Hints {
                size_bytes: l.buffer_bytes,
                interval_ms: i64::from(l.interval_s) * 1000,
            })
    }
}

/// RecordDeAggregation's SubRecordType.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubRecord {
    Kpl,
    Json,
    Delimited(Vec<u8>),
}

/// The processors of one S3 destination, read from its description.
#[derive(Debug, Clone, Default)]
pub struct Pipeline {
    pub deaggregation: Option<SubRecord>,
    pub decompression: bool,
    /// CloudWatchLogProcessing, with its DataMessageExtraction.
    pub cloudwatch_logs: Option<bool>,
    pub lambda: Option<lambda::Settings>,
    pub query: Option<Arc<jq::Query>>,
    /// AppendDelimiterToRecord's delimiter.
    pub delimiter: Option<Vec<u8>>,
    /// DynamicPartitioningConfiguration.Enabled.
    pub dynamic: bool,
}

/// A delimiter parameter as AWS takes it: `\n`, `\t`, `\r` and `\\`
/// escapes stand for their characters.
pub fn unescape(s: &str) -> Vec<u8> {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out.into_bytes()
}

fn invalid(msg: String) -> FirehoseError {
    FirehoseError::InvalidArgument(msg)
}

impl Pipeline {
    /// Reads ProcessingConfiguration and DynamicPartitioningConfiguration
    /// from a destination's description document. `Err` for parameters
    /// AWS refuses.
    pub fn from_description(doc: &Json) -> Result<Pipeline, FirehoseError> {
        let mut p = Pipeline {
            dynamic: doc
                .pointer("/DynamicPartitioningConfiguration/Enabled")
                .and_then(Json::as_bool)
                .unwrap_or(false),
            ..Pipeline::default()
        };
        let processing = doc.get("ProcessingConfiguration");
        if !processing
            .and_then(|p| p.get("Enabled"))
            .and_then(Json::as_bool)
            .unwrap_or(false)
        {
            return Ok(p);
        }
        let list = processing
            .and_then(|p| p.get("Processors"))
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default();
        for proc_ in &list {
            let ty = proc_.get("Type").and_then(Json::as_str).unwrap_or("");
            let params: HashMap<&str, &str> = proc_
                .get("Parameters")
                .and_then(Json::as_array)
                .map(|ps| {
                    ps.iter()
                        .filter_map(|x| {
                            Some((
                                x.get("ParameterName")?.as_str()?,
                                x.get("ParameterValue")?.as_str()?,
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let param = |n: &str| params.get(n).copied();
            match ty {
                "RecordDeAggregation" => {
                    p.deaggregation = Some(match param("SubRecordType").unwrap_or("JSON") {
                        "KINESIS_PRODUCER_LIBRARY" => SubRecord::Kpl,
                        "JSON" => SubRecord::Json,
                        "DELIMITED" => {
                            let d = param("Delimiter").ok_or_else(|| {
                                invalid("RecordDeAggregation with SubRecordType DELIMITED needs a Delimiter parameter.".into())
                            })?;
                            SubRecord::Delimited(
                                base64::engine::general_purpose::STANDARD
                                    .decode(d)
                                    .ok()
                                    .filter(|d| !d.is_empty())
                                    .unwrap_or_else(|| unescape(d)),
                            )
                        }
                        other => {
                            return Err(invalid(format!(
                                "Unsupported SubRecordType {other} for RecordDeAggregation; use JSON, KINESIS_PRODUCER_LIBRARY or DELIMITED."
                            )))
                        }
                    })
                }
                "Decompression" => match param("CompressionFormat").unwrap_or("GZIP") {
                    "GZIP" => p.decompression = true,
                    other => {
                        return Err(invalid(format!(
                            "Unsupported CompressionFormat {other} for Decompression; use GZIP."
                        )))
                    }
                },
                "CloudWatchLogProcessing" => {
                    p.cloudwatch_logs = Some(
                        param("DataMessageExtraction")
                            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
                    )
                }
                "Lambda" => {
                    let arn = param("LambdaArn").ok_or_else(|| {
                        invalid("The Lambda processor needs a LambdaArn parameter.".into())
                    })?;
                    let num = |n: &str| -> Result<Option<f64>, FirehoseError> {
                        param(n)
                            .map(|v| {
                                v.trim().parse::<f64>().map_err(|_| {
                                    invalid(format!("Processor parameter {n} must be a number, not {v}."))
                                })
                            })
                            .transpose()
                    };
                    let retries = num("NumberOfRetries")?.unwrap_or(3.0);
                    if !(0.0..=300.0).contains(&retries) {
                        return Err(invalid(format!(
                            "NumberOfRetries must be between 0 and 300, not {retries}."
                        )));
                    }
                    let mb = num("BufferSizeInMBs")?.unwrap_or(1.0);
                    if !(0.2..=3.0).contains(&mb) {
                        return Err(invalid(format!(
                            "BufferSizeInMBs of the Lambda processor must be between 0.2 and 3, not {mb}."
                        )));
                    }
                    let interval = num("BufferIntervalInSeconds")?.unwrap_or(60.0);
                    if !(0.0..=900.0).contains(&interval) {
                        return Err(invalid(format!(
                            "BufferIntervalInSeconds of the Lambda processor must be between 0 and 900, not {interval}."
                        )));
                    }
                    p.lambda = Some(lambda::Settings {
                        arn: arn.to_owned(),
                        retries: retries as u32,
                        buffer_bytes: (mb * 1024.0 * 1024.0) as usize,
                        interval_s: interval as u32,
                    });
                }
                "MetadataExtraction" => {
                    let q = param("MetadataExtractionQuery").ok_or_else(|| {
                        invalid("The MetadataExtraction processor needs a MetadataExtractionQuery parameter.".into())
                    })?;
                    match param("JsonParsingEngine").unwrap_or("JQ-1.6") {
                        "JQ-1.6" => {}
                        other => {
                            return Err(invalid(format!(
                                "Unsupported JsonParsingEngine {other}; use JQ-1.6."
                            )))
                        }
                    }
                    let query = jq::Query::compile(q).map_err(|e| {
                        invalid(format!("Invalid MetadataExtractionQuery {q}: {e}"))
                    })?;
                    p.query = Some(Arc::new(query));
                }
                "AppendDelimiterToRecord" => {
                    p.delimiter = Some(param("Delimiter").map_or_else(|| b"\n".to_vec(), unescape));
                }
                other => {
                    return Err(invalid(format!("Unsupported processor type {other}.")));
                }
            }
        }
        Ok(p)
    }

    /// Whether the batch goes through as it is.
    pub fn is_identity(&self, kinesis_source: bool) -> bool {
        self.deaggregation.is_none()
            && !self.decompression
            && self.cloudwatch_logs.is_none()
            && self.lambda.is_none()
            && self.query.is_none()
            && !self.dynamic
            && !kinesis_source
    }
}

/// What running the pipeline needs besides its settings.
#[derive(Clone)]
pub struct Runtime {
    /// Lambda invocations go here (`--lambda-endpoint`).
    pub invoker: Option<lambda::Invoker>,
    pub clock: Arc<dyn riffle_core::Clock>,
    /// The delivery stream reads a Kinesis stream (KPL records are
    /// deaggregated).
    pub kinesis_source: bool,
}

/// The text shown when a Lambda processor has nowhere to go.
pub const NO_LAMBDA_ENDPOINT: &str = "The Lambda processor needs a Lambda endpoint, which this server does not have (start it with --lambda-endpoint URL); records stay buffered.";

/// The runtime of a stream's pipeline; `Err` is why it cannot run
/// (shown as FailureDescription, records stay buffered).
pub fn runtime(
    p: &Pipeline,
    s: &crate::state::DeliveryStream,
    ctx: &crate::deliver::PlanCtx<'_>,
) -> Result<Runtime, String> {
    let invoker = match (&p.lambda, ctx.lambda_endpoint) {
        (None, _) => None,
        (Some(_), None) => return Err(NO_LAMBDA_ENDPOINT.into()),
        (Some(_), Some(url)) => Some(lambda::Invoker {
            client: crate::client::Client::shared(),
            endpoint: crate::client::Url::parse(url)
                .map_err(|e| format!("The Lambda endpoint cannot be used: {e}"))?,
            stream_arn: s.arn(ctx.account),
            region: s.region.clone(),
            source_kinesis_arn: match &s.source {
                crate::state::Source::Kinesis { stream_arn, .. } => Some(stream_arn.clone()),
                _ => None,
            },
        }),
    };
    Ok(Runtime {
        invoker,
        clock: ctx.clock.clone(),
        kinesis_source: s.is_kinesis_source(),
    })
}

/// A record on its way through the pipeline.
#[derive(Debug, Clone)]
struct Rec {
    data: Bytes,
    arrival_ms: i64,
    keys: PartitionKeys,
    /// For a Kinesis source: the record's origin, and its user record's
    /// partition key and subsequence number once deaggregated.
    kinesis: Option<(Arc<crate::deliver::KinesisRecord>, Option<String>, u64)>,
    /// The source record's position (see [`Batch::seqs`]).
    seq: u64,
}

/// A record given up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub error_type: &'static str,
    pub code: String,
    pub message: String,
    pub attempts: u32,
    pub arrival_ms: i64,
    pub ended_ms: i64,
    pub data: Bytes,
    pub lambda_arn: Option<String>,
    /// The source record's position (see [`Batch::seqs`]).
    pub seq: u64,
}

/// One object to write: a partition's records (the whole batch without
/// dynamic partitioning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The evaluated prefix.
    pub prefix: String,
    pub keys: PartitionKeys,
    pub first_arrival_ms: i64,
    pub records: Vec<Bytes>,
    /// Each record's approximate arrival.
    pub arrivals: Vec<i64>,
    /// Each record's source position (see [`Batch::seqs`]).
    pub seqs: Vec<u64>,
}

/// One error object to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorObject {
    /// The evaluated ErrorOutputPrefix.
    pub prefix: String,
    pub error_type: &'static str,
    pub first_arrival_ms: i64,
    /// [`crate::failed`] lines.
    pub body: Vec<u8>,
    /// The source positions of the records in it.
    pub seqs: Vec<u64>,
}

/// What a batch became.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Processed {
    pub objects: Vec<Object>,
    pub errors: Vec<ErrorObject>,
}

/// Applies `f` to each record; a record yields records, or fails with
/// (code, message).
fn each(
    recs: Vec<Rec>,
    failed: &mut Vec<Failure>,
    now: i64,
    mut f: impl FnMut(&Rec) -> Result<Vec<Bytes>, (String, String)>,
) -> Vec<Rec> {
    let mut out = Vec::with_capacity(recs.len());
    for r in recs {
        match f(&r) {
            Ok(parts) => out.extend(parts.into_iter().map(|data| Rec { data, ..r.clone() })),
            Err((code, message)) => failed.push(Failure {
                error_type: PROCESSING_FAILED,
                code,
                message,
                attempts: 1,
                arrival_ms: r.arrival_ms,
                ended_ms: now,
                data: r.data.clone(),
                lambda_arn: None,
                seq: r.seq,
            }),
        }
    }
    out
}

/// Splits KPL aggregated records into their user records (others pass).
/// `strict`: an aggregated record that does not check out fails, else it
/// passes whole.
fn deaggregate_kpl(recs: Vec<Rec>, failed: &mut Vec<Failure>, now: i64, strict: bool) -> Vec<Rec> {
    let mut out = Vec::with_capacity(recs.len());
    for r in recs {
        if !kpl::is_aggregated(&r.data) {
            out.push(r);
            continue;
        }
        match kpl::deaggregate(&r.data) {
            Ok(users) => out.extend(users.into_iter().enumerate().map(|(i, u)| {
                Rec {
                    data: u.data,
                    kinesis: r
                        .kinesis
                        .as_ref()
                        .map(|(k, _, _)| (k.clone(), Some(u.partition_key), i as u64)),
                    ..r.clone()
                }
            })),
            Err(e) if strict => failed.push(Failure {
                error_type: PROCESSING_FAILED,
                code: "RecordDeAggregation.Failed".into(),
                message: e,
                attempts: 1,
                arrival_ms: r.arrival_ms,
                ended_ms: now,
                seq: r.seq,
                data: r.data,
                lambda_arn: None,
            }),
            Err(_) => out.push(r),
        }
    }
    out
}

/// Splits concatenated or newline-delimited JSON documents.
fn split_json(data: &Bytes) -> Result<Vec<Bytes>, String> {
    let mut out = Vec::new();
    let mut it = serde_json::Deserializer::from_slice(data).into_iter::<serde::de::IgnoredAny>();
    let mut start = 0;
    while let Some(r) = it.next() {
        r.map_err(|e| format!("the record is not a sequence of JSON documents: {e}"))?;
        let end = it.byte_offset();
        let doc = &data[start..end];
        let lead = doc.iter().take_while(|b| b.is_ascii_whitespace()).count();
        out.push(data.slice(start + lead..end));
        start = end;
    }
    if out.is_empty() {
        // Nothing to split: a failure, not a record that vanishes.
        return Err("the record holds no JSON document".into());
    }
    Ok(out)
}

fn split_delimited(data: &Bytes, delim: &[u8]) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while !delim.is_empty() && i + delim.len() <= data.len() {
        if &data[i..i + delim.len()] == delim {
            out.push(data.slice(start..i));
            i += delim.len();
            start = i;
        } else {
            i += 1;
        }
    }
    if start < data.len() || out.is_empty() {
        // The rest after the last delimiter; an empty record stays one.
        out.push(data.slice(start..));
    }
    out
}

/// The most a record may decompress to.
const MAX_DECOMPRESSED: u64 = 64 << 20;

fn gunzip(data: &[u8]) -> Result<Bytes, String> {
    let mut out = Vec::with_capacity(data.len() * 4);
    flate2::read::MultiGzDecoder::new(data)
        .take(MAX_DECOMPRESSED + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("the record is not GZIP data: {e}"))?;
    if out.len() as u64 > MAX_DECOMPRESSED {
        return Err(format!(
            "the record decompresses to more than {} MiB",
            MAX_DECOMPRESSED >> 20
        ));
    }
    Ok(Bytes::from(out))
}

/// CloudWatch Logs subscription data: `None` for a control message.
pub fn cloudwatch_logs(data: &[u8], extract: bool) -> Result<Option<Vec<Bytes>>, String> {
    let doc: Json = serde_json::from_slice(data)
        .map_err(|e| format!("the record is not CloudWatch Logs subscription data: {e}"))?;
    match doc.get("messageType").and_then(Json::as_str) {
        Some("CONTROL_MESSAGE") => Ok(None),
        Some("DATA_MESSAGE") if extract => {
            let events = doc
                .get("logEvents")
                .and_then(Json::as_array)
                .ok_or("the DATA_MESSAGE record has no logEvents")?;
            events
                .iter()
                .map(|e| {
                    e.get("message")
                        .and_then(Json::as_str)
                        .map(|m| Bytes::copy_from_slice(m.as_bytes()))
                        .ok_or_else(|| "a log event has no message".to_string())
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        }
        Some("DATA_MESSAGE") => Ok(Some(vec![Bytes::copy_from_slice(data)])),
        _ => Err("the record is not CloudWatch Logs subscription data (no messageType)".into()),
    }
}

impl Pipeline {
    /// Runs the processors on `batch` and groups what is left into
    /// objects by partition.
    pub async fn run(&self, rt: &Runtime, layout: &Layout, batch: &Batch) -> Processed {
        let now = rt.clock.now_ms();
        let mut failed = Vec::new();
        let mut recs: Vec<Rec> = batch
            .records
            .iter()
            .enumerate()
            .map(|(i, d)| Rec {
                data: d.clone(),
                arrival_ms: batch.arrival_ms(i),
                keys: PartitionKeys::default(),
                kinesis: batch.kinesis(i).map(|k| (k.clone(), None, 0)),
                seq: batch.seq(i),
            })
            .collect();
        // A Kinesis source's KPL aggregated records are always split first,
        // as AWS does; JSON or delimited deaggregation then splits the user
        // records.
        if rt.kinesis_source && !matches!(self.deaggregation, Some(SubRecord::Kpl)) {
            recs = deaggregate_kpl(recs, &mut failed, now, false);
        }
        match &self.deaggregation {
            Some(SubRecord::Kpl) => recs = deaggregate_kpl(recs, &mut failed, now, true),
            Some(SubRecord::Json) => {
                recs = each(recs, &mut failed, now, |r| {
                    split_json(&r.data).map_err(|e| ("RecordDeAggregation.Failed".into(), e))
                })
            }
            Some(SubRecord::Delimited(d)) => {
                recs = each(recs, &mut failed, now, |r| Ok(split_delimited(&r.data, d)))
            }
            None => {}
        }
        if self.decompression {
            recs = each(recs, &mut failed, now, |r| {
                gunzip(&r.data)
                    .map(|d| vec![d])
                    .map_err(|e| ("Decompression.Failed".into(), e))
            });
        }
        if let Some(extract) = self.cloudwatch_logs {
            recs = each(recs, &mut failed, now, |r| {
                cloudwatch_logs(&r.data, extract)
                    .map(Option::unwrap_or_default)
                    .map_err(|e| ("CloudWatchLogProcessing.Failed".into(), e))
            });
        }
        if let Some(ls) = &self.lambda {
            recs = self.transform(rt, ls, recs, &mut failed).await;
        }
        if let Some(q) = &self.query {
            let started = std::time::Instant::now();
            let queried = recs.len() as u64;
            let mut kept = Vec::with_capacity(recs.len());
            for mut r in recs {
                match q.keys(&r.data) {
                    Ok(k) => {
                        r.keys.query = k;
                        kept.push(r);
                    }
                    Err(e) if self.dynamic => failed.push(Failure {
                        error_type: PARTITIONING_FAILED,
                        code: METADATA_EXTRACTION_FAILED.into(),
                        message: e,
                        attempts: 1,
                        arrival_ms: r.arrival_ms,
                        ended_ms: now,
                        seq: r.seq,
                        data: r.data,
                        lambda_arn: None,
                    }),
                    // Without dynamic partitioning the keys are unused.
                    Err(_) => kept.push(r),
                }
            }
            crate::deliver::report_jq(started.elapsed(), queried);
            recs = kept;
        }
        group(self.dynamic, layout, recs, failed, now)
    }

    /// The Lambda processor over all records, invocation by invocation.
    async fn transform(
        &self,
        rt: &Runtime,
        ls: &lambda::Settings,
        recs: Vec<Rec>,
        failed: &mut Vec<Failure>,
    ) -> Vec<Rec> {
        let Some(invoker) = &rt.invoker else {
            // plan() refuses a Lambda processor without an endpoint.
            return recs;
        };
        let lens: Vec<usize> = recs.iter().map(|r| r.data.len()).collect();
        let mut out = Vec::with_capacity(recs.len());
        for range in lambda::split(&lens, ls.buffer_bytes) {
            let part = &recs[range.clone()];
            let ins: Vec<lambda::InRecord<'_>> = part
                .iter()
                .enumerate()
                .map(|(i, r)| lambda::InRecord {
                    id: format!("{:020}{:08}", r.arrival_ms.max(0), range.start + i),
                    arrival_ms: r.arrival_ms,
                    data: &r.data,
                    kinesis: r
                        .kinesis
                        .as_ref()
                        .map(|(k, pk, sub)| lambda::KinesisMetadata {
                            shard_id: &k.shard_id,
                            partition_key: pk.as_deref().unwrap_or(&k.partition_key),
                            sequence_number: &k.sequence_number,
                            subsequence_number: *sub,
                        }),
                })
                .collect();
            let (attempts, result) = invoker.transform(ls, &ins).await;
            let ended = rt.clock.now_ms();
            let fail = |r: &Rec, code: &str, message: &str| Failure {
                error_type: PROCESSING_FAILED,
                code: code.into(),
                message: message.into(),
                attempts,
                arrival_ms: r.arrival_ms,
                ended_ms: ended,
                data: r.data.clone(),
                lambda_arn: Some(ls.arn.clone()),
                seq: r.seq,
            };
            match result {
                Ok(outcomes) => {
                    for (r, o) in part.iter().zip(outcomes) {
                        match o {
                            lambda::Outcome::Ok { data, keys } => out.push(Rec {
                                data,
                                keys: PartitionKeys {
                                    query: r.keys.query.clone(),
                                    lambda: keys,
                                },
                                ..r.clone()
                            }),
                            lambda::Outcome::Dropped => {}
                            lambda::Outcome::Failed => failed.push(fail(
                                r,
                                lambda::PROCESSING_FAILED.0,
                                lambda::PROCESSING_FAILED.1,
                            )),
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(function = %ls.arn, code = %e.code, attempts, records = part.len(), "Lambda transformation failed; writing the records to the error output");
                    failed.extend(part.iter().map(|r| fail(r, &e.code, &e.message)));
                }
            }
        }
        out
    }
}

/// The objects a batch becomes: the batch itself when nothing is to be
/// done, else what [`Pipeline::run`] makes of it.
pub async fn objects(p: &Pipeline, rt: &Runtime, layout: &Layout, batch: &Batch) -> Processed {
    if p.is_identity(rt.kinesis_source) {
        return Processed {
            objects: vec![Object {
                prefix: layout.prefix(batch.first_arrival_ms),
                keys: PartitionKeys::default(),
                first_arrival_ms: batch.first_arrival_ms,
                records: batch.records.clone(),
                arrivals: (0..batch.records.len())
                    .map(|i| batch.arrival_ms(i))
                    .collect(),
                seqs: (0..batch.records.len()).map(|i| batch.seq(i)).collect(),
            }],
            errors: Vec::new(),
        };
    }
    p.run(rt, layout, batch).await
}

/// The error object of `failed` (all of type `ty`), `None` when there
/// are none.
pub fn error_object(layout: &Layout, ty: &'static str, failed: &[&Failure]) -> Option<ErrorObject> {
    let first = failed.iter().map(|f| f.arrival_ms).min()?;
    Some(ErrorObject {
        prefix: layout.error_prefix(first, ty),
        error_type: ty,
        first_arrival_ms: first,
        body: crate::failed::lines(failed.iter().map(|f| {
            crate::failed::FailedRecord {
                attempts: f.attempts,
                arrival_ms: f.arrival_ms,
                code: &f.code,
                message: &f.message,
                ended_ms: f.ended_ms,
                raw: &f.data,
                extra: f
                    .lambda_arn
                    .iter()
                    .map(|a| ("lambdaArn", a.as_str().into()))
                    .collect(),
                keys: &crate::failed::LOWER,
            }
        })),
        seqs: failed.iter().map(|f| f.seq).collect(),
    })
}

/// Groups records into objects (by partition under dynamic
/// partitioning) and failures into error objects by type.
fn group(
    dynamic: bool,
    layout: &Layout,
    recs: Vec<Rec>,
    mut failed: Vec<Failure>,
    now: i64,
) -> Processed {
    let mut objects: Vec<Object> = Vec::new();
    let mut index: HashMap<PartitionKeys, usize> = HashMap::new();
    let used: Vec<(String, String)> = layout
        .partition_keys()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
    for r in recs {
        let keys = if dynamic {
            if let Some(missing) = layout.missing_key(&r.keys) {
                failed.push(Failure {
                    error_type: PARTITIONING_FAILED,
                    code: METADATA_EXTRACTION_FAILED.into(),
                    message: format!("The record has no value for the partition key {missing} used in the Prefix."),
                    attempts: 1,
                    arrival_ms: r.arrival_ms,
                    ended_ms: now,
                    seq: r.seq,
                    data: r.data,
                    lambda_arn: None,
                });
                continue;
            }
            // Only the keys the Prefix uses split objects.
            let mut k = PartitionKeys::default();
            for (ns, key) in &used {
                let v = r.keys.get(ns, key).unwrap_or_default().to_owned();
                match ns.as_str() {
                    "partitionKeyFromQuery" => k.query.insert(key.clone(), v),
                    _ => k.lambda.insert(key.clone(), v),
                };
            }
            k
        } else {
            PartitionKeys::default()
        };
        let i = *index.entry(keys.clone()).or_insert_with(|| {
            objects.push(Object {
                prefix: String::new(),
                keys,
                first_arrival_ms: r.arrival_ms,
                records: Vec::new(),
                arrivals: Vec::new(),
                seqs: Vec::new(),
            });
            objects.len() - 1
        });
        let o = &mut objects[i];
        o.first_arrival_ms = o.first_arrival_ms.min(r.arrival_ms);
        o.records.push(r.data);
        o.arrivals.push(r.arrival_ms);
        o.seqs.push(r.seq);
    }
    for o in &mut objects {
        o.prefix = match dynamic {
            true => layout.partition_prefix(o.first_arrival_ms, &o.keys),
            false => layout.prefix(o.first_arrival_ms),
        };
    }
    if dynamic {
        // A partition whose values make the prefix too long cannot be
        // written: its records are partitioning failures, not a failure of
        // the whole batch (which would hold every other partition back).
        let max = crate::prefix::MAX_EVALUATED_PREFIX;
        let (ok, too_long): (Vec<Object>, Vec<Object>) = objects
            .into_iter()
            .partition(|o| o.prefix.chars().count() <= max);
        objects = ok;
        for o in too_long {
            for ((data, arrival_ms), seq) in o.records.into_iter().zip(o.arrivals).zip(o.seqs) {
                failed.push(Failure {
                    error_type: PARTITIONING_FAILED,
                    code: METADATA_EXTRACTION_FAILED.into(),
                    message: format!("The evaluated prefix is longer than {max} characters."),
                    attempts: 1,
                    arrival_ms,
                    ended_ms: now,
                    data,
                    lambda_arn: None,
                    seq,
                });
            }
        }
    }
    let mut errors: Vec<ErrorObject> = Vec::new();
    for ty in [PROCESSING_FAILED, PARTITIONING_FAILED] {
        let mine: Vec<&Failure> = failed.iter().filter(|f| f.error_type == ty).collect();
        if let Some(e) = error_object(layout, ty, &mine) {
            errors.push(e);
        }
    }
    Processed { objects, errors }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn pipeline(processors: Json, dynamic: bool) -> Pipeline {
        Pipeline::from_description(&serde_json::json!({
            "ProcessingConfiguration": {"Enabled": true, "Processors": processors},
            "DynamicPartitioningConfiguration": {"Enabled": dynamic},
        }))
        .unwrap()
    }

    fn rt() -> Runtime {
        Runtime {
            invoker: None,
            clock: riffle_core::clock::ManualClock::new(1_700_000_000_000),
            kinesis_source: false,
        }
    }

    fn layout(prefix: &str, dynamic: bool) -> Layout {
        crate::prefix::validate(
            Some(prefix),
            Some("err/!{firehose:error-output-type}/"),
            dynamic,
            None,
        )
        .unwrap()
    }

    fn batch(records: &[&[u8]]) -> Batch {
        let mut b = Batch::default();
        for (i, r) in records.iter().enumerate() {
            b.push(Bytes::copy_from_slice(r), 1_699_999_990_000 + i as i64);
        }
        b
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn lines(body: &[u8]) -> Vec<Json> {
        body.split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }

    fn param(name: &str, value: &str) -> Json {
        serde_json::json!({"ParameterName": name, "ParameterValue": value})
    }

    fn cwl(message_type: &str, messages: &[&str]) -> Vec<u8> {
        let events: Vec<Json> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| serde_json::json!({"id": i.to_string(), "timestamp": 1, "message": m}))
            .collect();
        gzip(
            serde_json::json!({
                "messageType": message_type, "owner": "000000000000", "logGroup": "g",
                "logStream": "s", "subscriptionFilters": ["f"], "logEvents": events,
            })
            .to_string()
            .as_bytes(),
        )
    }

    #[tokio::test]
    async fn cloudwatch_logs_gzip_payloads() {
        let data = cwl("DATA_MESSAGE", &["first line", "second \"quoted\""]);
        let control = cwl("CONTROL_MESSAGE", &["CWL CONTROL MESSAGE: Checking health"]);
        let p = pipeline(
            serde_json::json!([
                {"Type": "CloudWatchLogProcessing", "Parameters": [param("DataMessageExtraction", "true")]},
                {"Type": "Decompression", "Parameters": [param("CompressionFormat", "GZIP")]},
            ]),
            false,
        );
        let l = layout("logs/", false);
        let out = p.run(&rt(), &l, &batch(&[&data, &control, b"junk"])).await;
        assert_eq!(out.objects.len(), 1);
        assert_eq!(
            out.objects[0].records,
            vec![
                Bytes::from_static(b"first line"),
                Bytes::from_static(b"second \"quoted\"")
            ]
        );
        assert!(out.objects[0].prefix.starts_with("logs/2023/11/14/"));
        assert_eq!(out.errors.len(), 1);
        assert!(out.errors[0]
            .prefix
            .starts_with("err/processing-failed/2023/11/14/"));
        let e = lines(&out.errors[0].body);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0]["errorCode"], "Decompression.Failed");
        assert_eq!(e[0]["rawData"], "anVuaw==");
        assert_eq!(e[0]["arrivalTimestamp"], 1_699_999_990_002i64);
        assert_eq!(e[0]["attemptEndingTimestamp"], 1_700_000_000_000i64);

        // Without message extraction a data message stays whole (decompressed).
        let p = pipeline(
            serde_json::json!([
                {"Type": "Decompression"},
                {"Type": "CloudWatchLogProcessing", "Parameters": [param("DataMessageExtraction", "false")]},
            ]),
            false,
        );
        let out = p.run(&rt(), &l, &batch(&[&data, &control])).await;
        let whole: Json = serde_json::from_slice(&out.objects[0].records[0]).unwrap();
        assert_eq!(out.objects[0].records.len(), 1);
        assert_eq!(whole["logEvents"][1]["message"], "second \"quoted\"");
    }

    #[tokio::test]
    async fn json_and_delimited_deaggregation() {
        let p = pipeline(
            serde_json::json!([{"Type": "RecordDeAggregation", "Parameters": [param("SubRecordType", "JSON")]}]),
            false,
        );
        let l = layout("j/", false);
        let out = p
            .run(
                &rt(),
                &l,
                &batch(&[b"{\"a\":1}{\"a\":2}\n{\"a\":[3]}\n", b"{\"b\":1", b"7"]),
            )
            .await;
        assert_eq!(
            out.objects[0].records,
            vec![
                Bytes::from_static(b"{\"a\":1}"),
                Bytes::from_static(b"{\"a\":2}"),
                Bytes::from_static(b"{\"a\":[3]}"),
                Bytes::from_static(b"7"),
            ]
        );
        let e = lines(&out.errors[0].body);
        assert_eq!(e[0]["errorCode"], "RecordDeAggregation.Failed");

        // From a Kinesis source, KPL aggregated records are split first,
        // then their user records by JSON document.
        let kpl = kpl::aggregate(&["k"], &[(0, b"{\"a\":1}\n{\"a\":2}"), (0, b"{\"a\":3}")]);
        let mut from_kinesis = rt();
        from_kinesis.kinesis_source = true;
        let out = p.run(&from_kinesis, &l, &batch(&[&kpl])).await;
        assert_eq!(
            out.objects[0].records,
            vec![
                Bytes::from_static(b"{\"a\":1}"),
                Bytes::from_static(b"{\"a\":2}"),
                Bytes::from_static(b"{\"a\":3}"),
            ]
        );
        assert!(out.errors.is_empty());

        // DELIMITED takes a base64 delimiter ("##").
        let p = pipeline(
            serde_json::json!([{"Type": "RecordDeAggregation", "Parameters": [
                param("SubRecordType", "DELIMITED"), param("Delimiter", "IyM=")]}]),
            false,
        );
        let out = p.run(&rt(), &l, &batch(&[b"x##yy##", b"z"])).await;
        assert_eq!(
            out.objects[0].records,
            vec![
                Bytes::from_static(b"x"),
                Bytes::from_static(b"yy"),
                Bytes::from_static(b"z")
            ]
        );
    }

    #[tokio::test]
    async fn partitions_and_partitioning_failures() {
        let p = pipeline(
            serde_json::json!([{"Type": "MetadataExtraction", "Parameters": [
                param("MetadataExtractionQuery", "{c: .c, d: .x.y}"),
                param("JsonParsingEngine", "JQ-1.6")]}]),
            true,
        );
        // Only the keys the Prefix uses split objects (d does not).
        let l = layout("c=!{partitionKeyFromQuery:c}/", true);
        let out = p
            .run(
                &rt(),
                &l,
                &batch(&[
                    br#"{"c":"a","x":{"y":1}}"#,
                    br#"{"c":"b","x":{"y":1}}"#,
                    br#"{"c":"a","x":{"y":2}}"#,
                    br#"{"x":{"y":2}}"#,
                    b"[1,2]",
                ]),
            )
            .await;
        let got: Vec<(&str, usize, i64)> = out
            .objects
            .iter()
            .map(|o| (o.prefix.as_str(), o.records.len(), o.first_arrival_ms))
            .collect();
        assert_eq!(
            got,
            vec![
                ("c=a/", 2, 1_699_999_990_000),
                ("c=b/", 1, 1_699_999_990_001)
            ]
        );
        assert_eq!(out.errors.len(), 1);
        assert!(out.errors[0]
            .prefix
            .starts_with("err/partitioning-failed/2023/11/14/"));
        let e = lines(&out.errors[0].body);
        assert_eq!(e.len(), 2);
        assert!(e
            .iter()
            .all(|d| d["errorCode"] == METADATA_EXTRACTION_FAILED));

        // A value that makes the prefix too long fails its partition only.
        let long = format!(r#"{{"c":"{}","x":{{"y":1}}}}"#, "x".repeat(600));
        let out = p
            .run(
                &rt(),
                &layout("c=!{partitionKeyFromQuery:c}/", true),
                &batch(&[long.as_bytes(), br#"{"c":"a","x":{"y":1}}"#]),
            )
            .await;
        let got: Vec<(&str, usize)> = out
            .objects
            .iter()
            .map(|o| (o.prefix.as_str(), o.records.len()))
            .collect();
        assert_eq!(got, vec![("c=a/", 1)]);
        let e = lines(&out.errors[0].body);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0]["errorCode"], METADATA_EXTRACTION_FAILED);
        assert_eq!(
            e[0]["errorMessage"],
            "The evaluated prefix is longer than 512 characters."
        );

        // A key the query does not return is missing too.
        let l = layout(
            "!{partitionKeyFromQuery:c}/!{partitionKeyFromLambda:k}/",
            true,
        );
        let out = p
            .run(&rt(), &l, &batch(&[br#"{"c":"a","x":{"y":0}}"#]))
            .await;
        assert!(out.objects.is_empty());
        let e = lines(&out.errors[0].body);
        assert_eq!(
            e[0]["errorMessage"],
            "The record has no value for the partition key partitionKeyFromLambda:k used in the Prefix."
        );
    }

    #[tokio::test]
    async fn kinesis_sources_split_kpl_records() {
        let agg = kpl::aggregate(&["k"], &[(0, b"u1"), (0, b"u2")]);
        let mut r = rt();
        r.kinesis_source = true;
        let p = Pipeline::default();
        assert!(!p.is_identity(true));
        let l = layout("k/", false);
        let out = objects(&p, &r, &l, &batch(&[&agg, b"plain"])).await;
        assert_eq!(
            out.objects[0].records,
            vec![
                Bytes::from_static(b"u1"),
                Bytes::from_static(b"u2"),
                Bytes::from_static(b"plain")
            ]
        );
    }

    #[test]
    fn parameters() {
        let p = pipeline(
            serde_json::json!([
                {"Type": "Lambda", "Parameters": [param("LambdaArn", "arn:aws:lambda:us-east-1:0:function:f"),
                    param("NumberOfRetries", "5"), param("BufferSizeInMBs", "0.5"),
                    param("BufferIntervalInSeconds", "120")]},
                {"Type": "AppendDelimiterToRecord", "Parameters": [param("Delimiter", "\\t")]},
            ]),
            false,
        );
        assert_eq!(
            p.lambda,
            Some(lambda::Settings {
                arn: "arn:aws:lambda:us-east-1:0:function:f".into(),
                retries: 5,
                buffer_bytes: 512 * 1024,
                interval_s: 120,
            })
        );
        assert_eq!(p.delimiter, Some(b"\t".to_vec()));
        let bad = |procs: Json| {
            Pipeline::from_description(&serde_json::json!({
                "ProcessingConfiguration": {"Enabled": true, "Processors": procs}
            }))
            .unwrap_err()
            .to_string()
        };
        assert!(bad(serde_json::json!([{"Type": "Lambda", "Parameters": [
            param("LambdaArn", "a"), param("BufferSizeInMBs", "5")]}]))
        .contains("BufferSizeInMBs"));
        assert!(bad(serde_json::json!([{"Type": "Lambda"}])).contains("LambdaArn"));
        assert!(bad(
            serde_json::json!([{"Type": "MetadataExtraction", "Parameters": [
            param("MetadataExtractionQuery", "{a: .a")]}])
        )
        .contains("Invalid MetadataExtractionQuery"));
        assert!(
            bad(serde_json::json!([{"Type": "Decompression", "Parameters": [
            param("CompressionFormat", "ZSTD")]}]))
            .contains("ZSTD")
        );
        // Disabled processing is no processing.
        let off = Pipeline::from_description(&serde_json::json!({
            "ProcessingConfiguration": {"Enabled": false, "Processors": [{"Type": "Lambda"}]}
        }))
        .unwrap();
        assert!(off.is_identity(false));
    }

    #[test]
    fn delimiter_escapes() {
        assert_eq!(unescape("\\n"), b"\n");
        assert_eq!(unescape("|"), b"|");
        assert_eq!(unescape("a\\tb\\\\"), b"a\tb\\");
    }
}
