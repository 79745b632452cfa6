//! Running applications: one task per RUNNING application reads its
//! input, runs its SQL and writes its outputs.
//!
//! - The supervisor ([`Service::supervise`], every maintenance tick)
//!   starts a task for each RUNNING application and stops it when the
//!   application leaves RUNNING, changes version or goes away. A new task
//!   of an application waits for the old one to finish first, so the two
//!   never read at once.
//! - A task builds the [`Pipeline`] from the code, the input's schema
//!   (in-application streams `<NamePrefix>_001`...`_00n`, mapped columns,
//!   then `APPROXIMATE_ARRIVAL_TIME` and, for a Data Streams source,
//!   `SHARD_ID`) and the reference tables (each S3 object read once, at
//!   start). It then loops: read up to 1,000 records (waiting at most
//!   200 ms), map them to rows, step the pipeline at the service clock's
//!   time (so windows close on time with no input), and deliver the rows
//!   each output's stream produced, retrying until they are accepted.
//! - Input records of one shard go to one in-application stream, shards
//!   spread over the `InputParallelism` streams. An input with an
//!   `InputLambdaProcessor` sends each batch to its function first
//!   ([`crate::lambda`]); Lambda outputs deliver through it too.
//! - The reader's checkpoint is saved in the application's row at most
//!   once a second, after the outputs of what it covers were delivered,
//!   and when the task stops: delivery is at least once. A server restart
//!   resumes a RUNNING application from its checkpoint;
//!   LAST_STOPPED_POINT resumes a stopped one from it; NOW starts at the
//!   input's newest records and TRIM_HORIZON at its oldest.
//! - What cannot run (code that does not plan, a missing input stream) is
//!   logged and retried every few seconds; bad records and rows go to
//!   `error_stream`, never stopping the application.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use riffle_streams::access::{PutEntry, PutOutcome, Start, StreamReader, StreamWriter};
use serde_json::Value as Json;
use tokio::sync::watch;

use crate::engine::mapping::{self, InputMapping, OutputFormat, SourceKind};
use crate::engine::pipeline::{Pipeline, Table};
use crate::engine::query::ErrorRow;
use crate::engine::value::{SqlType, Value};
use crate::lambda::{Delivery, PreRecord, Preprocessor, StreamMeta};
use crate::state::{Application, Progress, Status};
use crate::{sql, DeliverySink, Service, TapReader};

/// A running application's task.
pub(crate) struct Running {
    version: i64,
    run: u64,
    stop: watch::Sender<bool>,
    done: watch::Receiver<bool>,
}

/// Tasks by application key.
#[derive(Default)]
pub(crate) struct Runners {
    tasks: std::sync::Mutex<HashMap<String, Running>>,
}

/// `region` and `name` of a resource ARN `arn:aws:<service>:<region>:
/// <account>:<kind>/<name>`.
pub fn arn_parts(arn: &str) -> Option<(String, String)> {
    let mut parts = arn.splitn(6, ':');
    let (_, _, _, region, _, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let (_, name) = resource.split_once('/')?;
    Some((region.to_owned(), name.to_owned()))
}

impl Service {
    /// Starts and stops application tasks to match their status.
    pub fn supervise(self: &Arc<Self>) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let apps = self.apps.all();
        let mut tasks = match self.runners.tasks.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        let live: std::collections::HashSet<&String> = apps.iter().map(|(k, _, _)| k).collect();
        let gone: Vec<String> = tasks
            .keys()
            .filter(|k| !live.contains(k))
            .cloned()
            .collect();
        for k in gone {
            if let Some(t) = tasks.remove(&k) {
                t.stop.send_replace(true);
            }
        }
        for (k, _, app) in &apps {
            let want = app.status == Status::Running;
            let current = tasks
                .get(k)
                .is_some_and(|t| t.version == app.version && t.run == app.run);
            if want && current {
                continue;
            }
            let previous = tasks.remove(k).map(|t| {
                t.stop.send_replace(true);
                t.done
            });
            if !want {
                continue;
            }
            let (stop, stop_rx) = watch::channel(false);
            let (done_tx, done) = watch::channel(false);
            tasks.insert(
                k.clone(),
                Running {
                    version: app.version,
                    run: app.run,
                    stop,
                    done,
                },
            );
            let svc = self.clone();
            let key = k.clone();
            tokio::spawn(async move {
                if let Some(mut prev) = previous {
                    let _ = prev.wait_for(|d| *d).await;
                }
                // Read again: the previous task saved its checkpoint.
                let app = match svc.apps.get(&key) {
                    Some(a) if a.status == Status::Running => a,
                    _ => {
                        done_tx.send_replace(true);
                        return;
                    }
                };
                Task {
                    svc,
                    key,
                    app,
                    stop: stop_rx,
                }
                .run()
                .await;
                done_tx.send_replace(true);
            });
        }
    }

    /// Stops every task (server shutdown), saving checkpoints.
    pub async fn stop_all(&self) {
        let dones: Vec<watch::Receiver<bool>> = {
            let mut tasks = match self.runners.tasks.lock() {
                Ok(t) => t,
                Err(p) => p.into_inner(),
            };
            tasks
                .drain()
                .map(|(_, t)| {
                    t.stop.send_replace(true);
                    t.done
                })
                .collect()
        };
        for mut d in dones {
            let _ = d.wait_for(|x| *x).await;
        }
    }
}

/// Where an output's rows go.
enum Sink {
    Stream(StreamWriter),
    Firehose {
        sink: Arc<dyn DeliverySink>,
        region: String,
        name: String,
    },
    Lambda(Delivery),
}

struct Output {
    stream: String,
    columns: Vec<String>,
    format: OutputFormat,
    sink: Sink,
}

/// What an application reads: a Data Streams stream or a Firehose
/// delivery stream.
enum Reader {
    Stream(StreamReader),
    Firehose(Box<dyn TapReader>),
}

/// A record of either input, with the shard it came from (none for
/// Firehose), its partition key and sequence number (empty for Firehose).
struct InputRecord {
    shard: Option<String>,
    arrival_ms: i64,
    data: Bytes,
    partition_key: String,
    sequence_number: String,
}

impl Reader {
    async fn next(&mut self, max: usize, wait: Duration) -> Result<Vec<InputRecord>, String> {
        match self {
            Reader::Stream(r) => Ok(r
                .next(max, wait)
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|r| InputRecord {
                    shard: Some(r.shard_id),
                    arrival_ms: r.arrival_ms,
                    data: r.data,
                    partition_key: r.partition_key,
                    sequence_number: r.sequence_number,
                })
                .collect()),
            Reader::Firehose(r) => Ok(r
                .next(max, wait)
                .await?
                .into_iter()
                .map(|r| InputRecord {
                    shard: None,
                    arrival_ms: r.arrival_ms,
                    data: r.data,
                    partition_key: String::new(),
                    sequence_number: String::new(),
                })
                .collect()),
        }
    }
}

/// An application, ready to run.
struct Prepared {
    pipeline: Pipeline,
    input_id: String,
    mapping: InputMapping,
    streams: Vec<usize>,
    reader: Reader,
    outputs: Vec<Output>,
    preprocessor: Option<Preprocessor>,
}

impl Prepared {
    fn progress(&self, run: u64) -> Progress {
        let (stream, offset) = match &self.reader {
            Reader::Stream(r) => (r.checkpoint(), None),
            Reader::Firehose(r) => (Default::default(), Some(r.position())),
        };
        Progress {
            run,
            input: self.input_id.clone(),
            stream,
            offset,
        }
    }
}

struct Task {
    svc: Arc<Service>,
    key: String,
    app: Arc<Application>,
    stop: watch::Receiver<bool>,
}

fn doc_str<'a>(doc: &'a Json, path: &str) -> Option<&'a str> {
    doc.pointer(path).and_then(Json::as_str)
}

impl Task {
    /// Told to stop, or the application is no longer this run and
    /// version RUNNING (checked on every batch, so a stop is not missed
    /// between two supervisor passes).
    fn stopped(&self) -> bool {
        if *self.stop.borrow() {
            return true;
        }
        !self.svc.apps.get(&self.key).is_some_and(|a| {
            a.status == Status::Running && a.run == self.app.run && a.version == self.app.version
        })
    }

    async fn run(self) {
        let name = self.app.name.clone();
        let mut p = loop {
            match self.prepare().await {
                Ok(p) => break p,
                Err(e) => {
                    tracing::warn!(application = %name, error = %e, "application cannot run yet");
                    let mut stop = self.stop.clone();
                    let wait = tokio::time::sleep(Duration::from_secs(3));
                    tokio::select! {
                        _ = wait => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            }
        };
        tracing::info!(application = %name, "application running");
        let mut saved = Instant::now();
        // The position last saved (the one the task started from).
        let mut last_saved = p.progress(self.app.run);
        let mut backoff = Duration::from_millis(100);
        // (time of a batch, the position before it), for the batches
        // whose rows open windows may still hold.
        let mut history: VecDeque<(i64, Progress)> = VecDeque::new();
        // Where the input is done with when the task ends: the position
        // after the last batch whose outputs were all delivered.
        let mut end: Option<Progress> = None;
        // The streams whose rows are copied for watchers.
        let mut watched: Vec<String> = Vec::new();
        while !self.stopped() {
            let before = p.progress(self.app.run);
            let batch = {
                let mut stop = self.stop.clone();
                tokio::select! {
                    r = p.reader.next(1000, Duration::from_millis(200)) => r,
                    _ = stop.wait_for(|s| *s) => break,
                }
            };
            let records = match batch {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(application = %name, error = %e, "reading the input failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let now = self.svc.now_ms();
            let mut input = Vec::new();
            let mut errors = Vec::new();
            let processed = match &p.preprocessor {
                Some(pre) if !records.is_empty() => {
                    let mut stop = self.stop.clone();
                    match preprocess(pre, &records, now, &mut errors, &mut stop).await {
                        Some(out) => Some(out),
                        // Stopped mid-batch: the batch is read again.
                        None => {
                            end = Some(before);
                            break;
                        }
                    }
                }
                _ => None,
            };
            for (i, r) in records.iter().enumerate() {
                let shard = r.shard.as_deref().map_or(0, shard_number);
                let stream = p.streams[shard % p.streams.len()];
                let data = match &processed {
                    Some(out) => match out.get(i) {
                        Some(Some(d)) => d,
                        _ => continue,
                    },
                    None => &r.data,
                };
                for row in p.mapping.rows(data) {
                    match row {
                        Ok(mut values) => {
                            values.push(Value::Timestamp(r.arrival_ms));
                            if let Some(shard) = &r.shard {
                                values.push(Value::str(shard.as_str()));
                            }
                            input.push((stream, values));
                        }
                        Err(e) => errors.push(ErrorRow {
                            rowtime: now,
                            message: e.message,
                            data: e.data,
                        }),
                    }
                }
            }
            let wanted = self.svc.watches.streams(&self.key);
            if wanted != watched {
                p.pipeline.watch(&wanted);
                watched = wanted;
            }
            p.pipeline.step(now, input, errors);
            if !watched.is_empty() {
                self.svc.watches.publish(&self.key, &mut p.pipeline);
            }
            if !records.is_empty() {
                history.push_back((now, before.clone()));
            }
            if !self.deliver(&mut p, &mut backoff).await {
                // Stopped before this batch's outputs were all accepted.
                end = Some(before);
                break;
            }
            if saved.elapsed() >= Duration::from_secs(1) {
                let at = resume_point(
                    &mut history,
                    p.pipeline.oldest_needed(),
                    p.progress(self.app.run),
                );
                if at != last_saved && self.save(at.clone()).await {
                    last_saved = at;
                }
                saved = Instant::now();
            }
        }
        let end = end.unwrap_or_else(|| p.progress(self.app.run));
        let at = resume_point(&mut history, p.pipeline.oldest_needed(), end);
        if at != last_saved {
            self.save(at).await;
        }
        tracing::info!(application = %name, "application stopped");
    }

    /// Saves the reader's checkpoint in the application's row.
    async fn save(&self, progress: Progress) -> bool {
        let r = self
            .svc
            .apps
            .update(&self.key, |a| {
                // Tasks of one application never overlap, so the last
                // saved checkpoint is always the newest.
                a.checkpoint = Some(progress);
                Ok::<_, riffle_meta::MetaError>(())
            })
            .await;
        match r {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(application = %self.app.name, error = %e, "saving the checkpoint failed");
                false
            }
        }
    }

    /// Sends what each output's stream produced; false when stopped
    /// before it was all accepted.
    async fn deliver(&self, p: &mut Prepared, backoff: &mut Duration) -> bool {
        let mut taken: HashMap<String, Vec<crate::engine::query::Row>> = HashMap::new();
        for o in &p.outputs {
            if !taken.contains_key(&o.stream) {
                let rows = p.pipeline.take(&o.stream);
                taken.insert(o.stream.clone(), rows);
            }
        }
        for o in &p.outputs {
            let Some(rows) = taken.get(&o.stream) else {
                continue;
            };
            if rows.is_empty() {
                continue;
            }
            let mut records: Vec<Bytes> = rows
                .iter()
                .map(|r| Bytes::from(o.format.record(&o.columns, &r.values)))
                .collect();
            while !records.is_empty() {
                match send(o, &records).await {
                    Ok(left) => {
                        records = left;
                        if records.is_empty() {
                            *backoff = Duration::from_millis(100);
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(application = %self.app.name, output = %o.stream, error = %e, "delivering output failed");
                    }
                }
                if self.stopped() {
                    return false;
                }
                tokio::time::sleep(*backoff).await;
                *backoff = (*backoff * 2).min(Duration::from_secs(5));
            }
        }
        true
    }

    async fn prepare(&self) -> Result<Prepared, String> {
        let svc = &self.svc;
        let app = &self.app;
        let sources = svc.sources();
        let program = match &app.code {
            Some(code) => sql::parse(code).map_err(|e| e.to_string())?,
            None => sql::Program::default(),
        };
        let input = app.inputs.first().ok_or("the application has no input")?;
        let doc = &input.doc;
        let InputStreams {
            kind,
            arn,
            mapping,
            streams: inputs,
        } = input_streams(doc)?;
        let names: Vec<String> = inputs.iter().map(|(n, _)| n.clone()).collect();
        let tables = self.tables(&sources).await?;
        let mut pipeline = Pipeline::new(&program, &inputs, &tables).map_err(|e| e.0)?;
        let streams = names
            .iter()
            .filter_map(|n| pipeline.stream_index(n))
            .collect::<Vec<_>>();
        let mut outputs = Vec::new();
        for o in &app.outputs {
            let d = &o.doc;
            let stream = doc_str(d, "/Name").unwrap_or_default().to_owned();
            pipeline
                .tap(&stream)
                .map_err(|e| format!("output {}: {}", o.id, e.0))?;
            let columns = pipeline
                .columns(&stream)
                .unwrap_or_default()
                .iter()
                .map(|(n, _)| n.clone())
                .collect();
            let format = OutputFormat::from_schema(&d["DestinationSchema"])?;
            let sink = if let Some(arn) = doc_str(d, "/KinesisStreamsOutputDescription/ResourceARN")
            {
                let (region, name) =
                    arn_parts(arn).ok_or_else(|| format!("bad stream ARN {arn}"))?;
                let kinesis = sources
                    .kinesis
                    .clone()
                    .ok_or("Data Streams is not available")?;
                Sink::Stream(
                    kinesis
                        .stream_writer(&region, &name)
                        .map_err(|e| e.to_string())?,
                )
            } else if let Some(arn) = doc_str(d, "/KinesisFirehoseOutputDescription/ResourceARN") {
                let (region, name) =
                    arn_parts(arn).ok_or_else(|| format!("bad delivery stream ARN {arn}"))?;
                let sink = sources
                    .firehose
                    .clone()
                    .ok_or("Firehose is not available")?;
                Sink::Firehose { sink, region, name }
            } else if let Some(function) = doc_str(d, "/LambdaOutputDescription/ResourceARN") {
                let invoker = sources.lambda.clone().ok_or(NO_LAMBDA_ENDPOINT)?;
                Sink::Lambda(Delivery::new(invoker, function.to_owned(), app.arn.clone()))
            } else {
                tracing::warn!(application = %app.name, output = %o.id, "the output has no destination");
                continue;
            };
            outputs.push(Output {
                stream,
                columns,
                format,
                sink,
            });
        }
        let (region, name) = arn_parts(arn).ok_or_else(|| format!("bad input ARN {arn}"))?;
        let position = doc_str(
            doc,
            "/InputStartingPositionConfiguration/InputStartingPosition",
        );
        let resume = app.checkpoint.as_ref().filter(|c| {
            c.input == input.id && (c.run == app.run || position == Some("LAST_STOPPED_POINT"))
        });
        let reader = match kind {
            SourceKind::KinesisStream => {
                let kinesis = sources
                    .kinesis
                    .clone()
                    .ok_or("Data Streams is not available")?;
                let start = match (resume, position) {
                    (Some(c), _) => Start::Checkpoint(c.stream.clone()),
                    (None, Some("TRIM_HORIZON")) => Start::TrimHorizon,
                    _ => Start::Latest,
                };
                Reader::Stream(
                    kinesis
                        .stream_reader(&region, &name, start)
                        .map_err(|e| e.to_string())?,
                )
            }
            SourceKind::Firehose => {
                let tap = sources
                    .firehose_input
                    .clone()
                    .ok_or("Firehose is not available")?;
                Reader::Firehose(tap.open(&region, &name, resume.and_then(|c| c.offset))?)
            }
        };
        let preprocessor = match doc_str(
            doc,
            "/InputProcessingConfigurationDescription/InputLambdaProcessorDescription/ResourceARN",
        ) {
            Some(function) => Some(Preprocessor {
                invoker: sources.lambda.clone().ok_or(NO_LAMBDA_ENDPOINT)?,
                function_arn: function.to_owned(),
                application_arn: app.arn.clone(),
                stream_arn: arn.to_owned(),
            }),
            None => None,
        };
        Ok(Prepared {
            pipeline,
            input_id: input.id.clone(),
            mapping,
            streams,
            reader,
            outputs,
            preprocessor,
        })
    }

    /// The reference tables, each read from its S3 object.
    async fn tables(&self, sources: &crate::Sources) -> Result<HashMap<String, Table>, String> {
        let mut tables = HashMap::new();
        for r in &self.app.references {
            let d = &r.doc;
            let (name, mapping) = reference_schema(d)?;
            let bucket = doc_str(d, "/S3ReferenceDataSourceDescription/BucketARN")
                .and_then(|a| a.strip_prefix("arn:aws:s3:::"))
                .ok_or("a reference data source has no bucket")?;
            let key = doc_str(d, "/S3ReferenceDataSourceDescription/FileKey").unwrap_or_default();
            let objects = sources.objects.clone().ok_or("S3 is not available")?;
            let data = objects
                .get(bucket, key, REFERENCE_LIMIT)
                .await?
                .ok_or_else(|| format!("reference data s3://{bucket}/{key} does not exist"))?;
            let rows = mapping
                .rows(&data)
                .into_iter()
                .filter_map(Result::ok)
                .collect();
            tables.insert(
                name,
                Table {
                    columns: mapping.columns().to_vec(),
                    rows: Arc::new(rows),
                },
            );
        }
        Ok(tables)
    }
}

/// A reference data source's table name and mapping.
pub(crate) fn reference_schema(d: &Json) -> Result<(String, InputMapping), String> {
    let name = doc_str(d, "/TableName").unwrap_or_default().to_owned();
    Ok((name, InputMapping::from_schema(&d["ReferenceSchema"])?))
}

/// An input's source and the in-application streams it feeds.
pub(crate) struct InputStreams<'a> {
    pub kind: SourceKind,
    pub arn: &'a str,
    pub mapping: InputMapping,
    /// Each in-application stream with its columns: the mapped ones,
    /// then the source's (`APPROXIMATE_ARRIVAL_TIME`, ...).
    pub streams: Vec<(String, Vec<(String, SqlType)>)>,
}

/// What an input's description document says it reads and feeds.
pub(crate) fn input_streams(doc: &Json) -> Result<InputStreams<'_>, String> {
    let mapping = InputMapping::from_schema(&doc["InputSchema"])?;
    let (kind, arn) = if let Some(arn) = doc_str(doc, "/KinesisStreamsInputDescription/ResourceARN")
    {
        (SourceKind::KinesisStream, arn)
    } else if let Some(arn) = doc_str(doc, "/KinesisFirehoseInputDescription/ResourceARN") {
        (SourceKind::Firehose, arn)
    } else {
        return Err("the input has no source".into());
    };
    let mut columns: Vec<(String, SqlType)> = mapping.columns().to_vec();
    columns.extend(
        mapping::source_columns(kind)
            .iter()
            .map(|(n, t)| (n.to_string(), *t)),
    );
    let names: Vec<String> = match doc["InAppStreamNames"].as_array() {
        Some(a) => a
            .iter()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect(),
        None => vec![format!("{}_001", doc_str(doc, "/NamePrefix").unwrap_or(""))],
    };
    if names.is_empty() {
        return Err("the input has no in-application stream".into());
    }
    Ok(InputStreams {
        kind,
        arn,
        mapping,
        streams: names.into_iter().map(|n| (n, columns.clone())).collect(),
    })
}

/// Why an application with Lambda preprocessing or a Lambda output
/// cannot run.
const NO_LAMBDA_ENDPOINT: &str =
    "the application uses AWS Lambda, which needs a Lambda endpoint (start the server with --lambda-endpoint URL)";

/// Runs a batch through the input's preprocessing function: each
/// record's data to map, or `None` (dropped, or failed into `errors`);
/// `None` overall when stopped.
async fn preprocess(
    pre: &Preprocessor,
    records: &[InputRecord],
    now: i64,
    errors: &mut Vec<ErrorRow>,
    stop: &mut watch::Receiver<bool>,
) -> Option<Vec<Option<Bytes>>> {
    let ids = crate::lambda::unique_ids(
        records
            .iter()
            .map(|r| match r.shard {
                Some(_) => r.sequence_number.clone(),
                None => crate::lambda::guid(),
            })
            .collect(),
    );
    let batch: Vec<PreRecord<'_>> = records
        .iter()
        .zip(ids)
        .map(|(r, id)| PreRecord {
            id,
            arrival_ms: r.arrival_ms,
            data: &r.data,
            stream: r.shard.as_deref().map(|shard_id| StreamMeta {
                shard_id,
                partition_key: &r.partition_key,
                sequence_number: &r.sequence_number,
            }),
        })
        .collect();
    pre.run(&batch, now, errors, stop).await
}

/// The position to save: before the first batch whose rows an open
/// window still holds (so a restart rebuilds the window from the input),
/// else `current`. Batches older than every held row are forgotten.
fn resume_point(
    history: &mut VecDeque<(i64, Progress)>,
    oldest: Option<i64>,
    current: Progress,
) -> Progress {
    let Some(oldest) = oldest else {
        history.clear();
        return current;
    };
    while history.front().is_some_and(|(t, _)| *t < oldest) {
        history.pop_front();
    }
    match history.front() {
        Some((_, before)) => before.clone(),
        None => current,
    }
}

/// Reference data objects are read up to this size.
const REFERENCE_LIMIT: usize = 1 << 30;

/// The number in `shardId-000000000003`.
fn shard_number(id: &str) -> usize {
    id.rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Sends records to an output; returns those to send again (throttled).
async fn send(o: &Output, records: &[Bytes]) -> Result<Vec<Bytes>, String> {
    match &o.sink {
        Sink::Stream(w) => {
            let mut left = Vec::new();
            for chunk in records.chunks(500) {
                let entries = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, data)| PutEntry {
                        partition_key: format!("{}", partition_seed(data, i)),
                        explicit_hash_key: None,
                        data: data.clone(),
                    })
                    .collect();
                let outcomes = w.put(entries).await.map_err(|e| e.to_string())?;
                for (data, outcome) in chunk.iter().zip(outcomes) {
                    if matches!(outcome, PutOutcome::Failed { .. }) {
                        left.push(data.clone());
                    }
                }
            }
            Ok(left)
        }
        Sink::Firehose { sink, region, name } => {
            let mut left = Vec::new();
            for chunk in records.chunks(500) {
                let failed = sink.put(region, name, chunk.to_vec()).await?;
                left.extend(failed);
            }
            Ok(left)
        }
        Sink::Lambda(delivery) => Ok(delivery.send(records).await),
    }
}

/// A partition key spreading output records over shards.
fn partition_seed(data: &[u8], i: usize) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ i as u64;
    for b in data {
        h = (h ^ *b as u64).wrapping_mul(0x100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_name_their_region_and_resource() {
        assert_eq!(
            arn_parts("arn:aws:kinesis:eu-west-1:000000000000:stream/in"),
            Some(("eu-west-1".into(), "in".into()))
        );
        assert_eq!(
            arn_parts("arn:aws:firehose:us-east-1:1:deliverystream/d/x"),
            Some(("us-east-1".into(), "d/x".into()))
        );
        assert_eq!(arn_parts("arn:aws:kinesis:us-east-1"), None);
        assert_eq!(shard_number("shardId-000000000012"), 12);
    }
}
