//! Power loss and process death under Firehose: the delivery streams'
//! buffers (the disk engine), the metadata (redb over
//! `riffle_fs::FsBackend`) and the embedded S3 that S3 destinations
//! deliver to, all on one simulated file system, crashed together.
//!
//! Every run (one seed) is a few rounds on one [`SimFs`]: open the
//! Firehose [`Service`] and the embedded S3 as `riffle serve` does
//! (sometimes with a power loss or process death striking during the
//! opening itself), check them against what the test was told, then run
//! control tasks, writers and delivery concurrently while a power loss
//! (every [`CrashMode`]) or a process death strikes at a random file
//! operation or sync.
//!
//! Each control task owns a few delivery stream names (DirectPut, extended
//! S3 destination with AppendDelimiterToRecord into one bucket, buffering
//! intervals of 0 to 900 s) and runs CreateDeliveryStream,
//! DeleteDeliveryStream, UpdateDestination (new buffering hints and
//! prefix) and TagDeliveryStream on them; writers run PutRecordBatch on
//! any owned stream at the same time, and delivery runs throughout. The
//! [`ManualClock`] moves as the writers go, so buffering intervals pass
//! without sleeping. Creations and deletions of a name exclude its
//! writers (so the test knows which incarnation a record went to).
//!
//! The check after every recovery:
//! - the service opens without error;
//! - every delivery stream is one the test knows of; a control operation
//!   that returned Ok is reflected exactly (the stream exists or is gone,
//!   its version, buffering interval, prefix and tags); one that failed
//!   with `ServiceUnavailableException` or an internal failure (the power
//!   went out under it) is either not visible at all or visible
//!   completely, exactly as it would be had it returned Ok;
//! - once the clock has moved past every buffering interval, every record
//!   acknowledged to a delivery stream that still exists is delivered,
//!   byte-exact: every object in the bucket is read back and split at the
//!   delimiter; every record found is one some writer sent (no garbage,
//!   no torn record);
//! - a record is delivered more than once only across a crash: no two
//!   copies come from the same process, and for each delivery stream the
//!   records a process delivers again all come from one object of an
//!   earlier process (the last object it stored, whose checkpoint the
//!   crash kept from being persisted);
//! - no buffer log is left without a delivery stream that names it.
//!
//! `RIFFLE_POWER_SEEDS` sets the number of seeds (a longer soak),
//! `RIFFLE_POWER_FIRST_SEED` the first one;
//! `RIFFLE_POWER_TRACE` prints what each run does.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use riffle_core::clock::ManualClock;
use riffle_core::Clock;
use riffle_firehose::deliver::BoxFuture;
use riffle_firehose::sink::{ObjectSink, Sink, SinkError};
use riffle_firehose::{Config, Ctx, FirehoseError, Service};
use riffle_fs::sim::{Rng, SimFs, Trigger};
use riffle_fs::{open_redb, Fs, FsFile, OpenMode};
use riffle_log::disk::{DiskConfig, DiskEngine, Durability};
use riffle_log::LogEngine;
use riffle_meta::Store;
use riffle_s3::{ListQuery, S3Error, S3};
use riffle_wire::Value;

const REGION: &str = "us-east-1";
const DATA: &str = "/data";
const FIREHOSE_DIR: &str = "/data/firehose";
const S3_DIR: &str = "/data/s3";
const META: &str = "/data/meta.redb";
const BUCKET: &str = "bkt";
const ROUNDS: u64 = 3;
const CONTROL_TASKS: u64 = 2;
const NAMES_PER_TASK: u64 = 2;
const CONTROL_OPS: u64 = 4;
const WRITERS: u64 = 2;
const PUTS: u64 = 8;
/// Buffering intervals streams are created or updated with, in seconds.
const INTERVALS: [i64; 5] = [0, 0, 1, 5, 60];

/// What the runs covered, printed at the end.
#[derive(Default)]
struct Stats {
    control_ok: AtomicU64,
    uncertain_applied: AtomicU64,
    uncertain_not_applied: AtomicU64,
    records_acked: AtomicU64,
    records_verified: AtomicU64,
    objects_read: AtomicU64,
    redelivered: AtomicU64,
    power_losses: AtomicU64,
    deaths: AtomicU64,
    recoveries: AtomicU64,
}

static MAIN: Stats = Stats {
    control_ok: AtomicU64::new(0),
    uncertain_applied: AtomicU64::new(0),
    uncertain_not_applied: AtomicU64::new(0),
    records_acked: AtomicU64::new(0),
    records_verified: AtomicU64::new(0),
    objects_read: AtomicU64::new(0),
    redelivered: AtomicU64::new(0),
    power_losses: AtomicU64::new(0),
    deaths: AtomicU64::new(0),
    recoveries: AtomicU64::new(0),
};

/// What the runs without buffer syncs covered (not printed).
static UNSYNCED: Stats = Stats {
    control_ok: AtomicU64::new(0),
    uncertain_applied: AtomicU64::new(0),
    uncertain_not_applied: AtomicU64::new(0),
    records_acked: AtomicU64::new(0),
    records_verified: AtomicU64::new(0),
    objects_read: AtomicU64::new(0),
    redelivered: AtomicU64::new(0),
    power_losses: AtomicU64::new(0),
    deaths: AtomicU64::new(0),
    recoveries: AtomicU64::new(0),
};

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

fn trace(line: impl FnOnce() -> String) {
    if std::env::var_os("RIFFLE_POWER_TRACE").is_some() {
        eprintln!("{}", line());
    }
}

// ---------------------------------------------------------------------
// Documents

fn ctx() -> Ctx {
    Ctx {
        region: REGION.into(),
    }
}

async fn call(svc: &Service, op: &str, json: &str) -> Result<Value, FirehoseError> {
    let doc = riffle_wire::json::decode(json.as_bytes()).unwrap();
    svc.call(&ctx(), op, doc).await
}

fn get<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    match v {
        Value::Map(m) => m.get(k),
        _ => None,
    }
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    match get(v, k) {
        Some(Value::Str(s)) => Some(s),
        _ => None,
    }
}

fn list<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    match get(v, k) {
        Some(Value::List(l)) => l,
        _ => &[],
    }
}

fn int(v: &Value, k: &str) -> Option<i64> {
    match get(v, k) {
        Some(Value::Int(i)) => Some(*i),
        _ => None,
    }
}

// ---------------------------------------------------------------------
// The object store: the embedded S3 on the same file system

/// The embedded S3 as the delivery streams' object store, as `riffle
/// serve` hands it to Firehose. Every key is noted (with the process that
/// stores it) before the put starts, so the check knows which process
/// wrote each object it finds.
struct EmbeddedSink {
    s3: Arc<S3>,
    process: u64,
    writers: Arc<Mutex<HashMap<String, u64>>>,
}

fn sink_error(e: S3Error) -> SinkError {
    match e {
        S3Error::NoSuchBucket(b) => SinkError::NoSuchBucket(b),
        e => SinkError::Io(format!("{}: {}", e.code(), e.message())),
    }
}

impl ObjectSink for EmbeddedSink {
    fn put_object<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        body: Bytes,
        _content_type: Option<&'a str>,
        _content_encoding: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let old = self
                .writers
                .lock()
                .unwrap()
                .insert(format!("{bucket}/{key}"), self.process);
            assert!(old.is_none(), "the object key {key} was used twice");
            self.s3
                .put_object_with(bucket, key, body, riffle_s3::PutOptions::default())
                .await
                .map(|_| ())
                .map_err(sink_error)
        })
    }

    fn bucket_exists<'a>(&'a self, bucket: &'a str) -> BoxFuture<'a, Result<bool, SinkError>> {
        Box::pin(async move { Ok(self.s3.head_bucket(bucket).is_ok()) })
    }
}

/// Every object in the bucket, key to body; `cache` keeps bodies already
/// read (keys are never reused, objects never rewritten).
async fn objects(
    s3: &S3,
    cache: &mut HashMap<String, Bytes>,
) -> Result<BTreeMap<String, Bytes>, String> {
    let mut out = BTreeMap::new();
    let mut after = None;
    loop {
        let page = s3
            .list_objects(
                BUCKET,
                &ListQuery {
                    after: after.clone(),
                    max_keys: 1000,
                    ..ListQuery::default()
                },
            )
            .map_err(|e| format!("listing the bucket: {e:?}"))?;
        for o in &page.objects {
            let body = match cache.get(&o.key) {
                Some(b) => b.clone(),
                None => {
                    let (_, b) = s3
                        .get_object(BUCKET, &o.key)
                        .await
                        .map_err(|e| format!("reading {}: {e:?}", o.key))?;
                    cache.insert(o.key.clone(), b.clone());
                    b
                }
            };
            out.insert(o.key.clone(), body);
        }
        if !page.truncated {
            return Ok(out);
        }
        after = page.last;
    }
}

// ---------------------------------------------------------------------
// What the test knows

/// A delivery stream as the test sees it.
#[derive(Clone, Debug, PartialEq)]
struct View {
    version: i64,
    interval: i64,
    prefix: String,
    tags: BTreeMap<String, String>,
}

/// A control operation, as the test issues it.
#[derive(Clone, Debug)]
enum Op {
    Create {
        interval: i64,
        prefix: String,
        tags: BTreeMap<String, String>,
    },
    Delete,
    Update {
        version: i64,
        interval: i64,
        prefix: String,
    },
    Tag(BTreeMap<String, String>),
}

fn tag_list(t: &BTreeMap<String, String>) -> String {
    let v: Vec<String> = t
        .iter()
        .map(|(k, v)| format!(r#"{{"Key":"{k}","Value":"{v}"}}"#))
        .collect();
    format!("[{}]", v.join(","))
}

fn hints(interval: i64) -> String {
    format!(r#""BufferingHints":{{"IntervalInSeconds":{interval},"SizeInMBs":1}}"#)
}

/// Every stream appends "\n" after each record: objects split exactly.
const DELIMITER: &str = r#""ProcessingConfiguration":{"Enabled":true,"Processors":[{"Type":"AppendDelimiterToRecord","Parameters":[{"ParameterName":"Delimiter","ParameterValue":"\\n"}]}]}"#;

impl Op {
    fn call(&self, name: &str) -> (&'static str, String) {
        match self {
            Op::Create {
                interval,
                prefix,
                tags,
            } => {
                let tags = if tags.is_empty() {
                    String::new()
                } else {
                    format!(r#","Tags":{}"#, tag_list(tags))
                };
                (
                    "CreateDeliveryStream",
                    format!(
                        r#"{{"DeliveryStreamName":"{name}","DeliveryStreamType":"DirectPut","ExtendedS3DestinationConfiguration":{{"RoleARN":"arn:aws:iam::000000000000:role/r","BucketARN":"arn:aws:s3:::{BUCKET}","Prefix":"{prefix}",{},{DELIMITER}}}{tags}}}"#,
                        hints(*interval)
                    ),
                )
            }
            Op::Delete => (
                "DeleteDeliveryStream",
                format!(r#"{{"DeliveryStreamName":"{name}"}}"#),
            ),
            Op::Update {
                version,
                interval,
                prefix,
            } => (
                "UpdateDestination",
                format!(
                    r#"{{"DeliveryStreamName":"{name}","CurrentDeliveryStreamVersionId":"{version}","DestinationId":"destinationId-000000000001","ExtendedS3DestinationUpdate":{{"Prefix":"{prefix}",{},{DELIMITER}}}}}"#,
                    hints(*interval)
                ),
            ),
            Op::Tag(t) => (
                "TagDeliveryStream",
                format!(
                    r#"{{"DeliveryStreamName":"{name}","Tags":{}}}"#,
                    tag_list(t)
                ),
            ),
        }
    }

    /// Whether `after` is exactly what this operation makes of `before`.
    fn made(&self, before: &Option<View>, after: &Option<View>) -> bool {
        match (self, before, after) {
            (
                Op::Create {
                    interval,
                    prefix,
                    tags,
                },
                None,
                Some(a),
            ) => {
                *a == View {
                    version: 1,
                    interval: *interval,
                    prefix: prefix.clone(),
                    tags: tags.clone(),
                }
            }
            (Op::Delete, Some(_), None) => true,
            (
                Op::Update {
                    version,
                    interval,
                    prefix,
                },
                Some(b),
                Some(a),
            ) => {
                b.version == *version
                    && *a
                        == View {
                            version: version + 1,
                            interval: *interval,
                            prefix: prefix.clone(),
                            tags: b.tags.clone(),
                        }
            }
            (Op::Tag(t), Some(b), Some(a)) => {
                let mut tags = b.tags.clone();
                tags.extend(t.clone());
                *a == View { tags, ..b.clone() }
            }
            _ => false,
        }
    }
}

/// One delivery stream name, as the test knows it.
#[derive(Default)]
struct Name {
    /// The state every acknowledged operation made (`None`: no stream).
    acked: Option<View>,
    /// An operation whose outcome is unknown and the state before it; no
    /// control operation of this name follows it until a recovery
    /// settles it.
    uncertain: Option<(Option<View>, Op)>,
    /// The incarnation: counts creations that may have happened.
    generation: u64,
    /// Records acknowledged to the current incarnation.
    records: Vec<Vec<u8>>,
}

struct Model {
    /// Where this run counts what it covered.
    stats: &'static Stats,
    names: BTreeMap<String, Name>,
    /// Every record any writer sent (acknowledged or not).
    sent: HashSet<Vec<u8>>,
}

/// Writers of a name share it; its creation and deletion own it.
type Locks = HashMap<String, Arc<tokio::sync::RwLock<()>>>;

/// The stream (`name/generation`) a record was sent to.
fn incarnation(record: &[u8]) -> String {
    let text = String::from_utf8_lossy(record);
    let mut parts = text.splitn(3, '/');
    format!(
        "{}/{}",
        parts.next().unwrap_or(""),
        parts.next().unwrap_or("")
    )
}

// ---------------------------------------------------------------------
// Reading the service

async fn view(svc: &Service, name: &str) -> Result<Option<View>, String> {
    let d = match call(
        svc,
        "DescribeDeliveryStream",
        &format!(r#"{{"DeliveryStreamName":"{name}"}}"#),
    )
    .await
    {
        Ok(v) => v,
        Err(e) if e.error_type() == "ResourceNotFoundException" => return Ok(None),
        Err(e) => return Err(format!("DescribeDeliveryStream {name}: {e}")),
    };
    let d = get(&d, "DeliveryStreamDescription").ok_or("no description")?;
    if s(d, "DeliveryStreamStatus") != Some("ACTIVE") {
        return Err(format!(
            "{name} is {:?}, not ACTIVE",
            s(d, "DeliveryStreamStatus")
        ));
    }
    let version = s(d, "VersionId")
        .and_then(|v| v.parse().ok())
        .ok_or("no VersionId")?;
    let dest = list(d, "Destinations").first().ok_or("no destination")?;
    let s3 = get(dest, "ExtendedS3DestinationDescription").ok_or("not extended S3")?;
    let interval = get(s3, "BufferingHints")
        .and_then(|h| int(h, "IntervalInSeconds"))
        .ok_or("no IntervalInSeconds")?;
    let prefix = s(s3, "Prefix").unwrap_or("").to_owned();
    let t = call(
        svc,
        "ListTagsForDeliveryStream",
        &format!(r#"{{"DeliveryStreamName":"{name}","Limit":50}}"#),
    )
    .await
    .map_err(|e| format!("ListTagsForDeliveryStream {name}: {e}"))?;
    let tags = list(&t, "Tags")
        .iter()
        .map(|t| {
            (
                s(t, "Key").unwrap().to_owned(),
                s(t, "Value").unwrap_or("").to_owned(),
            )
        })
        .collect();
    Ok(Some(View {
        version,
        interval,
        prefix,
        tags,
    }))
}

async fn listed(svc: &Service) -> Result<BTreeSet<String>, String> {
    let v = call(svc, "ListDeliveryStreams", r#"{"Limit":100}"#)
        .await
        .map_err(|e| format!("ListDeliveryStreams: {e}"))?;
    if get(&v, "HasMoreDeliveryStreams") == Some(&Value::Bool(true)) {
        return Err("more delivery streams than one page".into());
    }
    Ok(list(&v, "DeliveryStreamNames")
        .iter()
        .map(|n| match n {
            Value::Str(n) => n.clone(),
            other => panic!("{other:?}"),
        })
        .collect())
}

// ---------------------------------------------------------------------
// The check

/// What a run knows across processes.
struct Run {
    model: Arc<Mutex<Model>>,
    /// Object (bucket/key) to the process that stored it.
    writers: Arc<Mutex<HashMap<String, u64>>>,
    /// Bodies of objects read so far.
    cache: HashMap<String, Bytes>,
}

/// Checks a recovered service against the model (settling every uncertain
/// operation to what recovery shows), waits for delivery and checks every
/// object.
async fn check(
    svc: &Service,
    s3: &S3,
    fs: &SimFs,
    clock: &ManualClock,
    run: &mut Run,
) -> Result<(), String> {
    let shown = listed(svc).await?;
    let names: Vec<String> = run.model.lock().unwrap().names.keys().cloned().collect();
    for n in &shown {
        if !names.contains(n) {
            return Err(format!("delivery stream {n} was never created"));
        }
    }
    for name in &names {
        let seen = view(svc, name).await?;
        if seen.is_some() != shown.contains(name) {
            return Err(format!(
                "{name}: ListDeliveryStreams and DescribeDeliveryStream disagree"
            ));
        }
        let mut m = run.model.lock().unwrap();
        let stats = m.stats;
        let n = m.names.get_mut(name).unwrap();
        match n.uncertain.take() {
            None => {
                if seen != n.acked {
                    return Err(format!(
                        "{name}: acknowledged state {:?}, recovered {seen:?}",
                        n.acked
                    ));
                }
            }
            Some((before, op)) => {
                if seen != before && !op.made(&before, &seen) {
                    return Err(format!(
                        "{name}: {op:?} failed; recovered {seen:?}, which is neither the state before, {before:?}, nor what the operation makes"
                    ));
                }
                let applied = seen != before;
                trace(|| format!("  {name}: failed {op:?} applied: {applied}"));
                bump(
                    if applied {
                        &stats.uncertain_applied
                    } else {
                        &stats.uncertain_not_applied
                    },
                    1,
                );
                if seen.is_none() {
                    n.records.clear();
                }
                n.acked = seen.clone();
            }
        }
    }
    // Every acknowledged record of a stream that exists is delivered once
    // the clock is past every buffering interval.
    let wanted: HashMap<Vec<u8>, String> = {
        let m = run.model.lock().unwrap();
        m.names
            .iter()
            .filter(|(_, n)| n.acked.is_some())
            .flat_map(|(name, n)| n.records.iter().map(move |r| (r.clone(), name.clone())))
            .collect()
    };
    clock.advance(901_000);
    let mut missing = wanted.len();
    for _ in 0..1000 {
        let found: HashSet<Vec<u8>> = objects(s3, &mut run.cache)
            .await?
            .values()
            .flat_map(|b| b.split(|c| *c == b'\n').map(<[u8]>::to_vec))
            .collect();
        missing = wanted.keys().filter(|r| !found.contains(*r)).count();
        if missing == 0 {
            break;
        }
        clock.advance(1000);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if missing > 0 {
        let found: HashSet<Vec<u8>> = objects(s3, &mut run.cache)
            .await?
            .values()
            .flat_map(|b| b.split(|c| *c == b'\n').map(<[u8]>::to_vec))
            .collect();
        let lost: Vec<String> = wanted
            .iter()
            .filter(|(r, _)| !found.contains(*r))
            .take(5)
            .map(|(r, _)| String::from_utf8_lossy(&r[..r.len().min(40)]).into_owned())
            .collect();
        return Err(format!(
            "{missing} acknowledged record(s) were never delivered, such as {lost:?}"
        ));
    }
    let stats = run.model.lock().unwrap().stats;
    bump(&stats.records_verified, wanted.len() as u64);
    check_objects(s3, run).await?;
    // No buffer log outlives the stream that named it (once maintenance
    // has completed deletions).
    svc.maintain().await;
    if fs.is_down() {
        return Err("maintenance failed".into());
    }
    let logs = svc
        .engine
        .stored_ids()
        .map_err(|e| format!("listing {FIREHOSE_DIR}: {e}"))?;
    if logs.len() != shown.len() {
        return Err(format!(
            "{} buffer logs for {} delivery streams",
            logs.len(),
            shown.len()
        ));
    }
    Ok(())
}

/// Reads every object back (from the store, not the cache): every record
/// is one that was sent, whole; copies of a record come from different
/// processes, and what a process delivers again comes from one earlier
/// object per delivery stream.
async fn check_objects(s3: &S3, run: &mut Run) -> Result<(), String> {
    let all = objects(s3, &mut HashMap::new()).await?;
    let writers = run.writers.lock().unwrap().clone();
    let m = run.model.lock().unwrap();
    bump(&m.stats.objects_read, all.len() as u64);
    // Record to its copies: (process, object).
    let mut copies: HashMap<&[u8], Vec<(u64, &str)>> = HashMap::new();
    for (key, body) in &all {
        if cached_differs(&run.cache, key, body) {
            return Err(format!("object {key} changed"));
        }
        let process = *writers
            .get(&format!("{BUCKET}/{key}"))
            .ok_or_else(|| format!("object {key} was never stored"))?;
        let Some(body) = body.strip_suffix(b"\n") else {
            return Err(format!("object {key} does not end with the delimiter"));
        };
        for r in body.split(|c| *c == b'\n') {
            if !m.sent.contains(r) {
                return Err(format!(
                    "object {key} holds a record never sent: {:?}",
                    String::from_utf8_lossy(&r[..r.len().min(60)])
                ));
            }
            copies.entry(r).or_default().push((process, key.as_str()));
        }
    }
    // (stream incarnation, process) to the earlier objects whose records
    // that process delivered again.
    let mut again: BTreeMap<(String, u64), BTreeSet<&str>> = BTreeMap::new();
    let mut redelivered = 0;
    for (r, c) in &mut copies {
        c.sort();
        for w in c.windows(2) {
            if w[0].0 == w[1].0 {
                return Err(format!(
                    "{:?} delivered twice by one process, in {} and {}",
                    String::from_utf8_lossy(&r[..r.len().min(60)]),
                    w[0].1,
                    w[1].1
                ));
            }
            again
                .entry((incarnation(r), w[1].0))
                .or_default()
                .insert(w[0].1);
            redelivered += 1;
        }
    }
    for ((stream, process), earlier) in &again {
        if earlier.len() > 1 {
            return Err(format!(
                "process {process} delivered records of {stream} again from {} earlier objects: {earlier:?}",
                earlier.len()
            ));
        }
    }
    m.stats
        .redelivered
        .fetch_max(redelivered, Ordering::Relaxed);
    Ok(())
}

fn cached_differs(cache: &HashMap<String, Bytes>, key: &str, body: &Bytes) -> bool {
    cache.get(key).is_some_and(|b| b != body)
}

// ---------------------------------------------------------------------
// The workload

/// Whether an error leaves the outcome unknown (storage failed under it).
fn uncertain(e: &FirehoseError) -> bool {
    e.status() >= 500
}

fn pick_op(rng: &mut Rng, name: &str, round: u64, cur: &Option<View>) -> Op {
    let interval = INTERVALS[rng.below(INTERVALS.len() as u64) as usize];
    let prefix = format!("{name}/r{round}p{}/", rng.below(100));
    let Some(v) = cur else {
        let mut tags = BTreeMap::new();
        if rng.coin() {
            tags.insert(format!("t{}", rng.below(5)), format!("v{}", rng.below(9)));
        }
        return Op::Create {
            interval,
            prefix,
            tags,
        };
    };
    match rng.below(8) {
        0 => Op::Delete,
        1..=4 => Op::Update {
            version: v.version,
            interval,
            prefix,
        },
        _ => {
            let mut t = BTreeMap::new();
            for _ in 0..1 + rng.below(2) {
                t.insert(format!("t{}", rng.below(5)), format!("v{}", rng.below(9)));
            }
            Op::Tag(t)
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn control(
    svc: Arc<Service>,
    fs: SimFs,
    clock: Arc<ManualClock>,
    model: Arc<Mutex<Model>>,
    locks: Arc<Locks>,
    names: Vec<String>,
    round: u64,
    seed: u64,
) {
    let mut rng = Rng(seed);
    for _ in 0..CONTROL_OPS {
        if fs.is_down() {
            return;
        }
        let name = &names[rng.below(names.len() as u64) as usize];
        let lock = locks[name].clone();
        let exclusive = lock.write().await;
        let before = {
            let m = model.lock().unwrap();
            let n = &m.names[name];
            if n.uncertain.is_some() {
                continue;
            }
            n.acked.clone()
        };
        let op = pick_op(&mut rng, name, round, &before);
        // Only creations and deletions exclude writers.
        let _exclusive = match op {
            Op::Create { .. } | Op::Delete => Some(exclusive),
            _ => None,
        };
        if let Op::Create { .. } = op {
            let mut m = model.lock().unwrap();
            let n = m.names.get_mut(name).unwrap();
            n.generation += 1;
            n.records.clear();
        }
        let (operation, body) = op.call(name);
        clock.advance(rng.below(300) as i64);
        let result = call(&svc, operation, &body).await;
        trace(|| {
            format!(
                "  {operation} {name}: {:?}",
                result.as_ref().map(|_| ()).map_err(|e| e.to_string())
            )
        });
        match result {
            Ok(_) => {
                let after = view(&svc, name).await.expect("reading the state back");
                assert!(
                    op.made(&before, &after),
                    "{name}: {op:?} returned Ok and made {after:?} of {before:?}"
                );
                let mut m = model.lock().unwrap();
                bump(&m.stats.control_ok, 1);
                let n = m.names.get_mut(name).unwrap();
                if after.is_none() {
                    n.records.clear();
                }
                n.acked = after;
            }
            Err(e) if uncertain(&e) => {
                let mut m = model.lock().unwrap();
                m.names.get_mut(name).unwrap().uncertain = Some((before, op));
            }
            Err(e) => panic!("{name}: {op:?} failed with a client error: {e}"),
        }
        tokio::task::yield_now().await;
    }
}

#[allow(clippy::too_many_arguments)]
async fn writer(
    svc: Arc<Service>,
    fs: SimFs,
    clock: Arc<ManualClock>,
    model: Arc<Mutex<Model>>,
    locks: Arc<Locks>,
    names: Vec<String>,
    seed: u64,
    tag: String,
) {
    let mut rng = Rng(seed);
    for i in 0..PUTS {
        if fs.is_down() {
            return;
        }
        if rng.below(4) == 0 {
            // The server's maintenance task: completes deletions and
            // persists checkpoints.
            svc.maintain().await;
        }
        let name = &names[rng.below(names.len() as u64) as usize];
        let lock = locks[name].clone();
        let _shared = lock.read().await;
        let generation = {
            let m = model.lock().unwrap();
            let n = &m.names[name];
            if n.acked.is_none() || n.uncertain.is_some() {
                continue;
            }
            n.generation
        };
        let count = 1 + rng.below(30);
        let mut entries = Vec::new();
        let mut datas = Vec::new();
        for j in 0..count {
            let mut data = format!("{name}/{generation}/{tag}/{i}/{j}/").into_bytes();
            let len = rng.below(120) as usize;
            data.extend((0..len).map(|k| b'a' + ((k as u64 + rng.0) % 26) as u8));
            entries.push(format!(
                r#"{{"Data":"{}"}}"#,
                base64::engine::general_purpose::STANDARD.encode(&data)
            ));
            datas.push(data);
        }
        model.lock().unwrap().sent.extend(datas.iter().cloned());
        clock.advance(rng.below(1500) as i64);
        let body = format!(
            r#"{{"DeliveryStreamName":"{name}","Records":[{}]}}"#,
            entries.join(",")
        );
        let out = match call(&svc, "PutRecordBatch", &body).await {
            Ok(out) => out,
            Err(e) if uncertain(&e) => continue,
            Err(e) => panic!("PutRecordBatch {name}: a client error: {e}"),
        };
        assert_eq!(int(&out, "FailedPutCount"), Some(0), "{out:?}");
        assert_eq!(list(&out, "RequestResponses").len(), datas.len());
        let mut m = model.lock().unwrap();
        bump(&m.stats.records_acked, datas.len() as u64);
        let n = m.names.get_mut(name).unwrap();
        assert_eq!(n.generation, generation);
        n.records.extend(datas);
    }
}

// ---------------------------------------------------------------------
// A run

/// How a run differs from the plain one.
#[derive(Clone, Copy, Debug, Default)]
struct Variant {
    /// The buffers' `fdatasync`s are dropped: acknowledged records are not
    /// durable (to show the check notices).
    skip_buffer_sync: bool,
}

/// One process: the services on the file system and the runtime their
/// tasks run on.
struct Process {
    rt: tokio::runtime::Runtime,
    svc: Arc<Service>,
    s3: Arc<S3>,
}

impl Process {
    /// The process ends: its runtime stops (every task with it), then its
    /// open files go.
    fn end(self) {
        drop(self.svc);
        drop(self.s3);
        self.rt.shutdown_timeout(Duration::from_secs(10));
    }
}

fn open(
    fs: &SimFs,
    clock: &Arc<ManualClock>,
    durability: Durability,
    variant: Variant,
    process: u64,
    writers: &Arc<Mutex<HashMap<String, u64>>>,
) -> Result<Process, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let opened = rt.block_on(async {
        let on: Arc<dyn Fs> = if variant.skip_buffer_sync {
            Arc::new(NoDataSync {
                fs: fs.clone(),
                under: PathBuf::from(FIREHOSE_DIR),
            })
        } else {
            Arc::new(fs.clone())
        };
        let engine = DiskEngine::open_with(
            on,
            FIREHOSE_DIR,
            DiskConfig {
                durability,
                segment_bytes: 2048,
                sync_interval: Duration::from_secs(3600),
            },
        )
        .map_err(|e| format!("opening the disk engine: {e}"))?;
        // As `riffle serve` opens it, on the simulated file system.
        let meta_fs = fs.clone();
        let store = Store::open_with(move || open_redb(&meta_fs, Path::new(META)))
            .map_err(|e| format!("opening {META}: {e}"))?;
        let s3 = S3::open(
            Arc::new(fs.clone()),
            S3_DIR.into(),
            store
                .namespace(riffle_s3::NAMESPACE)
                .map_err(|e| e.to_string())?,
            clock.clone() as Arc<dyn Clock>,
        )
        .map_err(|e| format!("opening S3: {e:?}"))?;
        let cfg = Config {
            status_delay_ms: 0,
            durability,
            sink: Some(Sink(Arc::new(EmbeddedSink {
                s3: s3.clone(),
                process,
                writers: writers.clone(),
            }))),
            delivery_tick_ms: 2,
            ..Config::default()
        };
        let ns = store
            .namespace(riffle_firehose::meta::NAMESPACE)
            .map_err(|e| e.to_string())?;
        let svc = Service::open(
            cfg,
            clock.clone() as Arc<dyn Clock>,
            engine as Arc<dyn LogEngine>,
            None,
            ns,
        )
        .map_err(|e| format!("opening the service: {e}"))?;
        Ok::<_, String>((svc, s3))
    });
    match opened {
        Ok((svc, s3)) => Ok(Process { rt, svc, s3 }),
        Err(e) => {
            rt.shutdown_timeout(Duration::from_secs(10));
            Err(e)
        }
    }
}

fn run(seed: u64, variant: Variant) -> Result<(), String> {
    let mut rng = Rng(seed ^ 0xF12E);
    let fs = SimFs::with_block(seed, 512 << rng.below(4));
    fs.create_dir(Path::new(DATA)).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    // Every fourth seed runs the buffers in interval mode, where a process
    // death must keep what was acknowledged and a power loss may lose
    // what was acknowledged since the last sync (here: anything before
    // it), but never what is acknowledged after it.
    let durability = if seed % 4 == 3 {
        Durability::Interval
    } else {
        Durability::Fsync
    };
    let interval = durability == Durability::Interval;
    let stats = if variant.skip_buffer_sync {
        &UNSYNCED
    } else {
        &MAIN
    };
    let mut all_names = Vec::new();
    for t in 0..CONTROL_TASKS {
        for j in 0..NAMES_PER_TASK {
            all_names.push(format!("t{t}s{j}"));
        }
    }
    let mut state = Run {
        model: Arc::new(Mutex::new(Model {
            stats,
            names: all_names
                .iter()
                .map(|n| (n.clone(), Name::default()))
                .collect(),
            sent: HashSet::new(),
        })),
        writers: Arc::default(),
        cache: HashMap::new(),
    };
    let locks: Arc<Locks> = Arc::new(
        all_names
            .iter()
            .map(|n| (n.clone(), Arc::default()))
            .collect(),
    );
    let mut process = 0;
    let fail = |round: u64, e: String| format!("seed {seed} round {round}: {e}");
    for round in 0..=ROUNDS {
        fs.reboot();
        // Now and then the power fails (or the process dies) while the
        // services open; recovery then starts over.
        if round > 0 && rng.below(4) == 0 {
            let at = Trigger::Op(1 + rng.below(20));
            if rng.coin() {
                let mode = rng.mode();
                trace(|| {
                    format!(
                        "seed {seed} round {round}: power loss ({mode:?}) at {at:?} while opening"
                    )
                });
                fs.arm_crash(at, mode);
            } else {
                trace(|| {
                    format!("seed {seed} round {round}: process death at {at:?} while opening")
                });
                fs.arm_kill(at);
            }
            process += 1;
            let crashes = fs.stats().crashes;
            match open(&fs, &clock, durability, variant, process, &state.writers) {
                Ok(p) => {
                    // Delivery may have started already.
                    std::thread::sleep(Duration::from_millis(rng.below(5)));
                    p.end();
                    if !fs.is_down() {
                        fs.kill();
                    }
                }
                Err(_) if fs.is_down() => {}
                Err(e) => return Err(fail(round, e)),
            }
            if interval && fs.stats().crashes > crashes {
                forget_unsynced(&state.model);
            }
            fs.reboot();
        }
        process += 1;
        let p = open(&fs, &clock, durability, variant, process, &state.writers)
            .map_err(|e| fail(round, e))?;
        bump(&stats.recoveries, 1);
        if round == 0 {
            p.rt.block_on(p.s3.create_bucket(BUCKET, REGION))
                .map_err(|e| fail(round, format!("creating the bucket: {e:?}")))?;
        }
        let checked = p.rt.block_on(check(&p.svc, &p.s3, &fs, &clock, &mut state));
        if let Err(e) = checked {
            p.end();
            return Err(fail(round, e));
        }
        if round == ROUNDS {
            p.end();
            break;
        }
        let crashes = fs.stats().crashes;
        let plan = match rng.below(10) {
            0..=3 => {
                let at = Trigger::Op(1 + rng.below(600));
                let mode = rng.mode();
                fs.arm_crash(at, mode);
                format!("power loss ({mode:?}) at {at:?}")
            }
            4..=6 => {
                let at = Trigger::Sync(1 + rng.below(80));
                let mode = rng.mode();
                fs.arm_crash(at, mode);
                format!("power loss ({mode:?}) at {at:?}")
            }
            7..=8 => {
                let at = Trigger::Op(1 + rng.below(600));
                fs.arm_kill(at);
                format!("process death at {at:?}")
            }
            _ => "no fault".to_string(),
        };
        trace(|| format!("seed {seed} round {round}: {plan}"));
        p.rt.block_on(async {
            let mut tasks = Vec::new();
            for t in 0..CONTROL_TASKS {
                let mine = all_names
                    .iter()
                    .filter(|n| n.starts_with(&format!("t{t}s")))
                    .cloned()
                    .collect();
                tasks.push(tokio::spawn(control(
                    p.svc.clone(),
                    fs.clone(),
                    clock.clone(),
                    state.model.clone(),
                    locks.clone(),
                    mine,
                    round,
                    rng.next_u64(),
                )));
            }
            for w in 0..WRITERS {
                tasks.push(tokio::spawn(writer(
                    p.svc.clone(),
                    fs.clone(),
                    clock.clone(),
                    state.model.clone(),
                    locks.clone(),
                    all_names.clone(),
                    rng.next_u64(),
                    format!("r{round}w{w}"),
                )));
            }
            for t in tasks {
                t.await.unwrap();
            }
            // Delivery goes on a little longer.
            clock.advance(rng.below(2000) as i64);
            tokio::time::sleep(Duration::from_millis(rng.below(10))).await;
        });
        // The process stops here (if the armed fault has not stopped it
        // already); then the power goes or it is gone.
        p.end();
        if !fs.is_down() {
            if rng.coin() {
                let mode = rng.mode();
                trace(|| format!("  ended by a power loss ({mode:?})"));
                fs.crash(mode);
            } else {
                trace(|| "  ended by a process death".into());
                fs.kill();
            }
        }
        if fs.stats().crashes > crashes {
            bump(&stats.power_losses, 1);
            if interval {
                forget_unsynced(&state.model);
            }
        } else {
            bump(&stats.deaths, 1);
        }
    }
    Ok(())
}

/// A power loss in interval mode: records acknowledged so far need not
/// survive (they may or may not be delivered); later ones must.
fn forget_unsynced(model: &Mutex<Model>) {
    for n in model.lock().unwrap().names.values_mut() {
        n.records.clear();
    }
}

/// [`run`], with a panic (of the services or of the check) reported as
/// the seed's failure.
fn run_caught(seed: u64, variant: Variant) -> Result<(), String> {
    std::panic::catch_unwind(|| run(seed, variant)).unwrap_or_else(|p| {
        let text = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(format!("seed {seed}: panicked: {text}"))
    })
}

/// Seeds per run: 64, or `RIFFLE_POWER_SEEDS` (for a longer soak).
fn seeds() -> u64 {
    std::env::var("RIFFLE_POWER_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64)
}

#[test]
fn power_loss_never_loses_an_acknowledged_record() {
    let started = std::time::Instant::now();
    let mut failures = Vec::new();
    let first = std::env::var("RIFFLE_POWER_FIRST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    for seed in first..first + seeds() {
        if let Err(e) = run_caught(seed, Variant::default()) {
            failures.push(e);
        }
    }
    let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
    eprintln!(
        "{} seeds in {:?}, {} failed: {} recoveries after {} power losses and {} process deaths; \
         {} control operations acknowledged, {} failed ones found applied and {} not; \
         {} records acknowledged, {} found delivered over all checks ({} objects read back; at most {} record copies delivered again after crashes in one run)",
        seeds(),
        started.elapsed(),
        failures.len(),
        n(&MAIN.recoveries),
        n(&MAIN.power_losses),
        n(&MAIN.deaths),
        n(&MAIN.control_ok),
        n(&MAIN.uncertain_applied),
        n(&MAIN.uncertain_not_applied),
        n(&MAIN.records_acked),
        n(&MAIN.records_verified),
        n(&MAIN.objects_read),
        n(&MAIN.redelivered),
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Without the `fdatasync` that PutRecordBatch's acknowledgement waits
/// for, the check above catches a lost record: the sync is needed, and the
/// test would notice its absence.
#[test]
fn the_buffer_sync_before_the_acknowledgement_is_needed() {
    const MAX_SEEDS: u64 = 64;
    let found = (0..MAX_SEEDS)
        .filter(|seed| seed % 4 != 3)
        .find_map(|seed| {
            run_caught(
                seed,
                Variant {
                    skip_buffer_sync: true,
                },
            )
            .err()
        });
    match found {
        Some(e) => {
            eprintln!("without the buffer's data sync: {e}");
            assert!(e.contains("never delivered"), "{e}");
        }
        None => panic!("dropping the buffer's data sync went unnoticed over {MAX_SEEDS} seeds"),
    }
}

// ---------------------------------------------------------------------
// A file system that drops data syncs

/// The simulated file system, except that `fdatasync` of files under
/// `under` does nothing (the disk engine's segment syncs, among them the
/// one before an append is acknowledged in `fsync` mode).
#[derive(Debug)]
struct NoDataSync {
    fs: SimFs,
    under: PathBuf,
}

#[derive(Debug)]
struct NoDataSyncFile(Arc<dyn FsFile>);

impl FsFile for NoDataSyncFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> std::io::Result<usize> {
        self.0.read_at(buf, pos)
    }
    fn write_all_at(&self, buf: &[u8], pos: u64) -> std::io::Result<()> {
        self.0.write_all_at(buf, pos)
    }
    fn len(&self) -> std::io::Result<u64> {
        self.0.len()
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn sync_all(&self) -> std::io::Result<()> {
        self.0.sync_all()
    }
}

impl Fs for NoDataSync {
    fn open(&self, path: &Path, mode: OpenMode) -> std::io::Result<Arc<dyn FsFile>> {
        let f = self.fs.open(path, mode)?;
        Ok(if path.starts_with(&self.under) {
            Arc::new(NoDataSyncFile(f))
        } else {
            f
        })
    }
    fn create_dir(&self, path: &Path) -> std::io::Result<()> {
        self.fs.create_dir(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.fs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        self.fs.remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> std::io::Result<()> {
        self.fs.remove_dir_all(path)
    }
    fn read_dir(&self, path: &Path) -> std::io::Result<Vec<std::ffi::OsString>> {
        self.fs.read_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> std::io::Result<()> {
        self.fs.sync_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        self.fs.exists(path)
    }
}

/// Interval mode: records acknowledged and delivered, then lost from the
/// buffer in a power loss (they were never synced) while the checkpoint
/// past them was persisted. The buffer gives their offsets to the next
/// records; those must be delivered, not skipped as if delivered.
#[test]
fn records_taking_the_offsets_a_power_loss_freed_are_delivered() {
    let fs = SimFs::new(5);
    fs.create_dir(Path::new(DATA)).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let writers = Arc::default();
    let put_and_wait = |p: &Process, tag: &str| {
        p.rt.block_on(async {
            let records: Vec<Vec<u8>> = (0..10)
                .map(|i| format!("a/{tag}/{i}").into_bytes())
                .collect();
            let entries: Vec<String> = records
                .iter()
                .map(|d| {
                    format!(
                        r#"{{"Data":"{}"}}"#,
                        base64::engine::general_purpose::STANDARD.encode(d)
                    )
                })
                .collect();
            let body = format!(
                r#"{{"DeliveryStreamName":"a","Records":[{}]}}"#,
                entries.join(",")
            );
            call(&p.svc, "PutRecordBatch", &body).await.unwrap();
            for _ in 0..500 {
                let found: HashSet<Vec<u8>> = objects(&p.s3, &mut HashMap::new())
                    .await
                    .unwrap()
                    .values()
                    .flat_map(|b| b.split(|c| *c == b'\n').map(<[u8]>::to_vec))
                    .collect();
                if records.iter().all(|r| found.contains(r)) {
                    return;
                }
                clock.advance(1000);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            panic!("the records put as {tag} were never delivered");
        })
    };
    let p = open(
        &fs,
        &clock,
        Durability::Interval,
        Variant::default(),
        1,
        &writers,
    )
    .unwrap();
    p.rt.block_on(async {
        p.s3.create_bucket(BUCKET, REGION).await.unwrap();
        let (op, body) = Op::Create {
            interval: 0,
            prefix: "a/".into(),
            tags: BTreeMap::new(),
        }
        .call("a");
        call(&p.svc, op, &body).await.unwrap();
    });
    put_and_wait(&p, "before");
    p.end();
    fs.crash(riffle_fs::sim::CrashMode::DropAll);
    let p = open(
        &fs,
        &clock,
        Durability::Interval,
        Variant::default(),
        2,
        &writers,
    )
    .unwrap();
    assert_eq!(
        p.svc
            .engine
            .open(p.svc.engine.stored_ids().unwrap()[0])
            .unwrap()
            .next_offset(0),
        1,
        "the power loss should have taken the unsynced records"
    );
    put_and_wait(&p, "after");
    p.end();
}
