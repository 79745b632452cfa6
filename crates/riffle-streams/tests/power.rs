//! Power loss under the whole Data Streams service: records (the disk
//! engine) and metadata (redb over `riffle_fs::FsBackend`) on one simulated
//! file system, crashed together.
//!
//! Every run (one seed) is a few rounds on one [`SimFs`]: open a
//! [`Service`] (recovering what the last round left, sometimes with a power
//! loss or process death striking during the recovery itself), check it
//! against what the test was told, then run control tasks and writers
//! concurrently through [`Service::call`] while a power loss (every
//! [`CrashMode`]) or a process death strikes at a random file-system
//! operation or sync.
//!
//! Each control task owns a few stream names and runs CreateStream,
//! DeleteStream, SplitShard, MergeShards, UpdateShardCount,
//! AddTagsToStream, RegisterStreamConsumer and
//! IncreaseStreamRetentionPeriod on them; writers run PutRecords (batches
//! of many records, any owned stream) at the same time, also while those
//! streams are resharded. Creations and deletions of a name exclude its
//! writers (so the test knows which incarnation a record went to); nothing
//! else does. Even seeds have no status delay; odd ones a 20 ms one (the
//! [`ManualClock`] moves past it after every control operation) with the
//! maintenance task (`Service::maintain`) run now and then, so deletions
//! complete there (row, then directory). A power loss strikes at the nth
//! state-changing file operation or the nth sync.
//!
//! The check after every recovery:
//! - the service opens without error;
//! - every stream is one the test knows of; a control operation that
//!   returned Ok is reflected exactly (the stream exists or is gone; its
//!   shard list with ids, lineage, hash ranges and open/closed state; its
//!   tags, consumers and retention);
//! - an operation that failed with a client error changed nothing; one that
//!   failed with `InternalFailure` (the power went out under it) is either
//!   not visible at all or visible completely, exactly as it would be had it
//!   returned Ok: a stream whose creation failed is absent, or present with
//!   all its shards open, its tags and no records; a failed deletion leaves
//!   the stream whole (every acknowledged record readable) or gone; a failed
//!   split, merge or scaling leaves the shard list as it was or as the
//!   operation makes it, never in between;
//! - every acknowledged record is readable in its shard at its sequence
//!   number with its exact data (a full read of every shard with
//!   GetShardIterator TRIM_HORIZON and GetRecords, and AT_SEQUENCE_NUMBER
//!   spot checks); every record that is readable is one that was sent to
//!   that incarnation of that stream (no record of a deleted or failed
//!   incarnation, no garbage); within a shard sequence numbers strictly
//!   increase;
//! - no log directory is left without a stream that names it.
//!
//! `RIFFLE_POWER_SEEDS` sets the number of seeds (a longer soak);
//! `RIFFLE_POWER_TRACE` prints what each run does.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use riffle_core::clock::ManualClock;
use riffle_core::Clock;
use riffle_fs::sim::{CrashMode, Rng, SimFs, Trigger};
use riffle_fs::{open_redb, Fs};
use riffle_log::disk::{DiskConfig, DiskEngine, Durability};
use riffle_meta::Store;
use riffle_streams::{Config, Ctx, KinesisError, Service};
use riffle_wire::Value;

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "000000000000";
const DATA: &str = "/data";
const STREAMS_DIR: &str = "/data/streams";
const META: &str = "/data/meta.redb";
const ROUNDS: u64 = 3;
const CONTROL_TASKS: u64 = 2;
const NAMES_PER_TASK: u64 = 2;
const CONTROL_OPS: u64 = 6;
const WRITERS: u64 = 2;
const PUTS: u64 = 6;
/// The status delay of odd seeds (even seeds: none, every change is
/// immediate); the clock moves past it after every control operation.
const STATUS_DELAY_MS: i64 = 20;

/// What the runs covered, printed at the end.
#[derive(Default)]
struct Stats {
    control_ok: AtomicU64,
    uncertain_applied: AtomicU64,
    uncertain_not_applied: AtomicU64,
    records_verified: AtomicU64,
    power_losses: AtomicU64,
    deaths: AtomicU64,
    recoveries: AtomicU64,
}

static STATS: Stats = Stats {
    control_ok: AtomicU64::new(0),
    uncertain_applied: AtomicU64::new(0),
    uncertain_not_applied: AtomicU64::new(0),
    records_verified: AtomicU64::new(0),
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

async fn call(svc: &Service, op: &str, json: &str) -> Result<Value, KinesisError> {
    let doc = riffle_wire::json::decode(json.as_bytes()).unwrap();
    svc.call(&ctx(), op, doc).await
}

/// A read the check depends on: it must not fail.
async fn must(svc: &Service, op: &str, json: &str) -> Result<Value, String> {
    call(svc, op, json)
        .await
        .map_err(|e| format!("{op} {json} failed: {e}"))
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

fn stream_arn(name: &str) -> String {
    format!("arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}")
}

/// Sequence numbers are decimal strings of up to 186 bits.
fn seq_less(a: &str, b: &str) -> bool {
    (a.len(), a) < (b.len(), b)
}

// ---------------------------------------------------------------------
// What the test knows

#[derive(Clone, Debug, PartialEq)]
struct ShardView {
    id: String,
    parent: Option<String>,
    adjacent: Option<String>,
    start: u128,
    end: u128,
    open: bool,
}

#[derive(Clone, Debug, PartialEq)]
struct StreamView {
    shards: Vec<ShardView>,
    tags: BTreeMap<String, String>,
    consumers: BTreeSet<String>,
    retention: i64,
}

impl StreamView {
    fn open(&self) -> Vec<&ShardView> {
        let mut v: Vec<&ShardView> = self.shards.iter().filter(|s| s.open).collect();
        v.sort_by_key(|s| s.start);
        v
    }
}

/// A control operation, as the test issues it.
#[derive(Clone, Debug)]
enum Op {
    Create {
        shards: u32,
        tags: BTreeMap<String, String>,
    },
    Delete,
    AddTags(BTreeMap<String, String>),
    Register(String),
    Retention(i64),
    Split {
        shard: String,
        key: u128,
    },
    Merge {
        a: String,
        b: String,
    },
    Scale(usize),
}

impl Op {
    fn call(&self, name: &str) -> (&'static str, String) {
        let tags = |t: &BTreeMap<String, String>| serde_json::to_string(t).unwrap();
        match self {
            Op::Create { shards, tags: t } if t.is_empty() => (
                "CreateStream",
                format!(r#"{{"StreamName":"{name}","ShardCount":{shards}}}"#),
            ),
            Op::Create { shards, tags: t } => (
                "CreateStream",
                format!(
                    r#"{{"StreamName":"{name}","ShardCount":{shards},"Tags":{}}}"#,
                    tags(t)
                ),
            ),
            Op::Delete => (
                "DeleteStream",
                format!(r#"{{"StreamName":"{name}","EnforceConsumerDeletion":true}}"#),
            ),
            Op::AddTags(t) => (
                "AddTagsToStream",
                format!(r#"{{"StreamName":"{name}","Tags":{}}}"#, tags(t)),
            ),
            Op::Register(c) => (
                "RegisterStreamConsumer",
                format!(
                    r#"{{"StreamARN":"{}","ConsumerName":"{c}"}}"#,
                    stream_arn(name)
                ),
            ),
            Op::Retention(h) => (
                "IncreaseStreamRetentionPeriod",
                format!(r#"{{"StreamName":"{name}","RetentionPeriodHours":{h}}}"#),
            ),
            Op::Split { shard, key } => (
                "SplitShard",
                format!(
                    r#"{{"StreamName":"{name}","ShardToSplit":"{shard}","NewStartingHashKey":"{key}"}}"#
                ),
            ),
            Op::Merge { a, b } => (
                "MergeShards",
                format!(
                    r#"{{"StreamName":"{name}","ShardToMerge":"{a}","AdjacentShardToMerge":"{b}"}}"#
                ),
            ),
            Op::Scale(n) => (
                "UpdateShardCount",
                format!(
                    r#"{{"StreamName":"{name}","TargetShardCount":{n},"ScalingType":"UNIFORM_SCALING"}}"#
                ),
            ),
        }
    }

    /// Whether `after` is what this operation makes of `before`, exactly
    /// (as far as the operation's input determines it).
    fn made(&self, before: &Option<StreamView>, after: &Option<StreamView>) -> bool {
        match (self, before, after) {
            (Op::Create { shards, tags }, None, Some(a)) => {
                a.shards.len() == *shards as usize
                    && a.shards.iter().all(|s| s.open && s.parent.is_none())
                    && a.tags == *tags
                    && a.consumers.is_empty()
            }
            (Op::Delete, Some(_), None) => true,
            (Op::AddTags(t), Some(b), Some(a)) => {
                let mut tags = b.tags.clone();
                tags.extend(t.clone());
                *a == StreamView { tags, ..b.clone() }
            }
            (Op::Register(c), Some(b), Some(a)) => {
                let mut consumers = b.consumers.clone();
                consumers.insert(c.clone());
                *a == StreamView {
                    consumers,
                    ..b.clone()
                }
            }
            (Op::Retention(h), Some(b), Some(a)) => {
                *a == StreamView {
                    retention: *h,
                    ..b.clone()
                }
            }
            (Op::Split { .. } | Op::Merge { .. } | Op::Scale(_), Some(b), Some(a)) => {
                let same_rest =
                    a.tags == b.tags && a.consumers == b.consumers && a.retention == b.retention;
                // The old shards stay (some now closed), new ones follow,
                // each a child of shards of the list.
                let kept = a.shards.len() > b.shards.len()
                    && b.shards.iter().zip(&a.shards).all(|(o, n)| {
                        ShardView {
                            open: n.open,
                            ..o.clone()
                        } == *n
                            && (o.open || !n.open)
                    });
                let lineage = a.shards[b.shards.len().min(a.shards.len())..]
                    .iter()
                    .all(|n| {
                        n.parent
                            .as_ref()
                            .is_some_and(|p| a.shards.iter().any(|x| x.id == *p && !x.open))
                    });
                let covered = covers(a);
                let specific = match self {
                    Op::Split { shard, key } => {
                        a.shards.len() == b.shards.len() + 2
                            && a.shards.iter().any(|x| x.id == *shard && !x.open)
                            && a.shards[b.shards.len()..]
                                .iter()
                                .any(|x| x.start == *key && x.open)
                    }
                    Op::Merge { a: x, b: y } => {
                        a.shards.len() == b.shards.len() + 1
                            && a.shards[b.shards.len()].parent.as_ref() == Some(x)
                            && a.shards[b.shards.len()].adjacent.as_ref() == Some(y)
                    }
                    Op::Scale(n) => a.open().len() == *n,
                    _ => false,
                };
                same_rest && kept && lineage && covered && specific
            }
            _ => false,
        }
    }
}

/// The open shards of a stream cover the hash key space exactly.
fn covers(v: &StreamView) -> bool {
    let mut next = 0u128;
    for s in v.open() {
        if s.start != next {
            return false;
        }
        if s.end == u128::MAX {
            return true;
        }
        next = s.end + 1;
    }
    false
}

/// An acknowledged record.
#[derive(Clone, Debug)]
struct Acked {
    shard: String,
    seq: String,
    data: Vec<u8>,
}

/// One stream name, as the test knows it.
#[derive(Default)]
struct Name {
    /// The state every acknowledged operation made (`None`: no stream).
    acked: Option<StreamView>,
    /// An operation whose outcome is unknown (it failed with
    /// `InternalFailure`) and the state before it; no control operation
    /// of this name follows it until a recovery settles it.
    uncertain: Option<(Option<StreamView>, Op)>,
    /// The incarnation: counts creations that may have happened.
    generation: u64,
    /// Acknowledged records of the current incarnation.
    records: Vec<Acked>,
    /// Data of every record ever sent to the current incarnation.
    sent: HashSet<Vec<u8>>,
}

#[derive(Default)]
struct Model {
    names: BTreeMap<String, Name>,
}

/// Writers of a name share it; its creation and deletion own it.
type Locks = HashMap<String, Arc<tokio::sync::RwLock<()>>>;

// ---------------------------------------------------------------------
// Reading the service

async fn view(svc: &Service, name: &str) -> Result<Option<StreamView>, String> {
    let summary = match call(
        svc,
        "DescribeStreamSummary",
        &format!(r#"{{"StreamName":"{name}"}}"#),
    )
    .await
    {
        Ok(v) => v,
        Err(e) if e.error_type() == "ResourceNotFoundException" => return Ok(None),
        Err(e) => return Err(format!("DescribeStreamSummary {name}: {e}")),
    };
    let summary = get(&summary, "StreamDescriptionSummary").ok_or("no summary")?;
    if s(summary, "StreamStatus") != Some("ACTIVE") {
        return Err(format!(
            "{name} is {:?}, not ACTIVE",
            s(summary, "StreamStatus")
        ));
    }
    let retention = int(summary, "RetentionPeriodHours").ok_or("no retention")?;
    let shards = must(svc, "ListShards", &format!(r#"{{"StreamName":"{name}"}}"#)).await?;
    if get(&shards, "NextToken").is_some() {
        return Err("more shards than one page".into());
    }
    let shards = list(&shards, "Shards")
        .iter()
        .map(|sh| {
            let range = get(sh, "HashKeyRange").unwrap();
            ShardView {
                id: s(sh, "ShardId").unwrap().to_owned(),
                parent: s(sh, "ParentShardId").map(str::to_owned),
                adjacent: s(sh, "AdjacentParentShardId").map(str::to_owned),
                start: s(range, "StartingHashKey").unwrap().parse().unwrap(),
                end: s(range, "EndingHashKey").unwrap().parse().unwrap(),
                open: get(
                    get(sh, "SequenceNumberRange").unwrap(),
                    "EndingSequenceNumber",
                )
                .is_none(),
            }
        })
        .collect();
    let t = must(
        svc,
        "ListTagsForStream",
        &format!(r#"{{"StreamName":"{name}","Limit":50}}"#),
    )
    .await?;
    let tags = list(&t, "Tags")
        .iter()
        .map(|t| {
            (
                s(t, "Key").unwrap().to_owned(),
                s(t, "Value").unwrap_or("").to_owned(),
            )
        })
        .collect();
    let c = must(
        svc,
        "ListStreamConsumers",
        &format!(r#"{{"StreamARN":"{}"}}"#, stream_arn(name)),
    )
    .await?;
    let consumers = list(&c, "Consumers")
        .iter()
        .map(|c| s(c, "ConsumerName").unwrap().to_owned())
        .collect();
    Ok(Some(StreamView {
        shards,
        tags,
        consumers,
        retention,
    }))
}

async fn listed_streams(svc: &Service) -> Result<BTreeSet<String>, String> {
    let v = must(svc, "ListStreams", r#"{"Limit":100}"#).await?;
    if get(&v, "HasMoreStreams") == Some(&Value::Bool(true)) {
        return Err("more streams than one page".into());
    }
    Ok(list(&v, "StreamNames")
        .iter()
        .map(|n| match n {
            Value::Str(n) => n.clone(),
            other => panic!("{other:?}"),
        })
        .collect())
}

fn bytes(v: &Value, k: &str) -> Vec<u8> {
    match get(v, k) {
        Some(Value::Bytes(b)) => b.to_vec(),
        other => panic!("{k}: {other:?}"),
    }
}

/// Every record of one shard, in order: (sequence number, data).
async fn read_shard(
    svc: &Service,
    name: &str,
    shard: &str,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let it = must(
        svc,
        "GetShardIterator",
        &format!(
            r#"{{"StreamName":"{name}","ShardId":"{shard}","ShardIteratorType":"TRIM_HORIZON"}}"#
        ),
    )
    .await?;
    let mut it = s(&it, "ShardIterator").map(str::to_owned);
    let mut out = Vec::new();
    while let Some(i) = it {
        let got = must(svc, "GetRecords", &format!(r#"{{"ShardIterator":"{i}"}}"#)).await?;
        let records = list(&got, "Records");
        if records.is_empty() {
            break;
        }
        for r in records {
            out.push((s(r, "SequenceNumber").unwrap().to_owned(), bytes(r, "Data")));
        }
        it = s(&got, "NextShardIterator").map(str::to_owned);
    }
    Ok(out)
}

/// The record at exactly `seq`, read with AT_SEQUENCE_NUMBER.
async fn read_at(
    svc: &Service,
    name: &str,
    shard: &str,
    seq: &str,
) -> Result<Option<(String, Vec<u8>)>, String> {
    let it = must(
        svc,
        "GetShardIterator",
        &format!(
            r#"{{"StreamName":"{name}","ShardId":"{shard}","ShardIteratorType":"AT_SEQUENCE_NUMBER","StartingSequenceNumber":"{seq}"}}"#
        ),
    )
    .await?;
    let it = s(&it, "ShardIterator").ok_or("no iterator")?;
    let got = must(
        svc,
        "GetRecords",
        &format!(r#"{{"ShardIterator":"{it}","Limit":1}}"#),
    )
    .await?;
    Ok(list(&got, "Records")
        .first()
        .map(|r| (s(r, "SequenceNumber").unwrap().to_owned(), bytes(r, "Data"))))
}

// ---------------------------------------------------------------------
// The check

/// Checks a recovered service against the model and settles every
/// uncertain operation to what recovery shows.
async fn check(
    svc: &Service,
    fs: &SimFs,
    clock: &ManualClock,
    model: &Mutex<Model>,
) -> Result<(), String> {
    clock.advance(STATUS_DELAY_MS);
    let listed = listed_streams(svc).await?;
    let names: Vec<String> = model.lock().unwrap().names.keys().cloned().collect();
    for n in &listed {
        if !names.contains(n) {
            return Err(format!("stream {n} was never created"));
        }
    }
    for name in &names {
        let seen = view(svc, name).await?;
        if seen.is_some() != listed.contains(name) {
            return Err(format!(
                "{name}: ListStreams and DescribeStreamSummary disagree"
            ));
        }
        {
            let mut m = model.lock().unwrap();
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
                    trace(|| {
                        format!(
                            "  {name}: failed {op:?} {}",
                            if seen == before {
                                "not applied"
                            } else {
                                "applied"
                            }
                        )
                    });
                    if seen == before {
                        bump(&STATS.uncertain_not_applied, 1);
                    } else {
                        bump(&STATS.uncertain_applied, 1);
                    }
                    if seen.is_none() {
                        n.records.clear();
                        n.sent.clear();
                    }
                    n.acked = seen.clone();
                }
            }
        }
        let Some(v) = seen else { continue };
        let (records, sent, generation) = {
            let m = model.lock().unwrap();
            let n = &m.names[name];
            (n.records.clone(), n.sent.clone(), n.generation)
        };
        let prefix = format!("{name}/{generation}/");
        let mut found: HashMap<(String, String), Vec<u8>> = HashMap::new();
        for sh in &v.shards {
            let got = read_shard(svc, name, &sh.id).await?;
            for w in got.windows(2) {
                if !seq_less(&w[0].0, &w[1].0) {
                    return Err(format!(
                        "{name} {}: sequence number {} after {}",
                        sh.id, w[1].0, w[0].0
                    ));
                }
            }
            for (seq, data) in got {
                if !data.starts_with(prefix.as_bytes()) || !sent.contains(&data) {
                    return Err(format!(
                        "{name} {} {seq}: a record never sent to this incarnation: {:?}",
                        sh.id,
                        String::from_utf8_lossy(&data[..data.len().min(40)])
                    ));
                }
                found.insert((sh.id.clone(), seq), data);
            }
        }
        for r in &records {
            match found.get(&(r.shard.clone(), r.seq.clone())) {
                Some(d) if *d == r.data => {}
                Some(_) => {
                    return Err(format!(
                        "{name} {} {}: other data than acknowledged",
                        r.shard, r.seq
                    ))
                }
                None => {
                    return Err(format!(
                        "{name} {} {}: an acknowledged record was lost",
                        r.shard, r.seq
                    ))
                }
            }
        }
        bump(&STATS.records_verified, records.len() as u64);
        for r in records.iter().step_by(7).take(4) {
            let got = read_at(svc, name, &r.shard, &r.seq).await?;
            if got.as_ref() != Some(&(r.seq.clone(), r.data.clone())) {
                return Err(format!(
                    "{name} {} {}: AT_SEQUENCE_NUMBER read {:?}",
                    r.shard,
                    r.seq,
                    got.map(|g| g.0)
                ));
            }
        }
    }
    // No log directory outlives the stream that named it (once the
    // maintenance task has completed deletions that were due).
    svc.maintain().await;
    if fs.is_down() {
        return Err("maintenance failed".into());
    }
    let dirs = fs
        .read_dir(Path::new(STREAMS_DIR))
        .map_err(|e| format!("listing {STREAMS_DIR}: {e}"))?;
    if dirs.len() != listed.len() {
        return Err(format!(
            "{} log directories for {} streams",
            dirs.len(),
            listed.len()
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------
// The workload

fn classify(e: &KinesisError) -> bool {
    // Whether an error leaves the outcome unknown.
    e.error_type() == "InternalFailure"
}

fn pick_op(rng: &mut Rng, name: &str, cur: &Option<StreamView>) -> Op {
    let Some(v) = cur else {
        let mut tags = BTreeMap::new();
        if rng.below(2) == 0 {
            tags.insert(format!("t{}", rng.below(5)), format!("v{}", rng.below(9)));
        }
        return Op::Create {
            shards: 1 + rng.below(3) as u32,
            tags,
        };
    };
    let open = v.open();
    loop {
        match rng.below(16) {
            0 => return Op::Delete,
            1..=2 => {
                let mut t = BTreeMap::new();
                for _ in 0..1 + rng.below(2) {
                    t.insert(format!("t{}", rng.below(5)), format!("v{}", rng.below(9)));
                }
                return Op::AddTags(t);
            }
            3..=4 => return Op::Register(format!("{name}-c{}", rng.below(4))),
            5 => return Op::Retention(v.retention + 1 + rng.below(24) as i64),
            6..=9 if open.len() < 8 => {
                let sh = open[rng.below(open.len() as u64) as usize];
                let key = sh.start + (sh.end - sh.start) / 2 + 1;
                return Op::Split {
                    shard: sh.id.clone(),
                    key,
                };
            }
            10..=12 if open.len() > 1 => {
                let i = rng.below(open.len() as u64 - 1) as usize;
                return Op::Merge {
                    a: open[i].id.clone(),
                    b: open[i + 1].id.clone(),
                };
            }
            13..=15 => {
                let cur = open.len();
                let lo = cur.div_ceil(2);
                let hi = (cur * 2).min(6).max(lo);
                return Op::Scale(lo + rng.below((hi - lo + 1) as u64) as usize);
            }
            _ => {}
        }
    }
}

async fn control(
    svc: Arc<Service>,
    fs: SimFs,
    clock: Arc<ManualClock>,
    model: Arc<Mutex<Model>>,
    locks: Arc<Locks>,
    names: Vec<String>,
    seed: u64,
) {
    let mut rng = Rng(seed);
    for _ in 0..CONTROL_OPS {
        if fs.is_down() {
            return;
        }
        let name = &names[rng.below(names.len() as u64) as usize];
        let before = {
            let m = model.lock().unwrap();
            let n = &m.names[name];
            if n.uncertain.is_some() {
                continue;
            }
            n.acked.clone()
        };
        let op = pick_op(&mut rng, name, &before);
        let (operation, body) = op.call(name);
        let exclusive = matches!(op, Op::Create { .. } | Op::Delete);
        let lock = locks[name].clone();
        let _guard = if exclusive {
            Some(lock.write().await)
        } else {
            None
        };
        if let Op::Create { .. } = op {
            let mut m = model.lock().unwrap();
            let n = m.names.get_mut(name).unwrap();
            n.generation += 1;
            n.records.clear();
            n.sent.clear();
        }
        clock.advance(rng.below(3) as i64);
        let result = call(&svc, operation, &body).await;
        // Transitions (CREATING, UPDATING, DELETING) complete.
        clock.advance(STATUS_DELAY_MS);
        trace(|| {
            format!(
                "  {operation} {body}: {:?}",
                result.as_ref().map(|_| ()).map_err(|e| e.error_type())
            )
        });
        match result {
            Ok(_) => {
                // Reads see exactly what the operation installed (nothing
                // else changes this stream's metadata meanwhile).
                let after = view(&svc, name).await.expect("reading the state back");
                assert!(
                    after == before || op.made(&before, &after),
                    "{name}: {op:?} returned Ok and made {after:?} of {before:?}"
                );
                bump(&STATS.control_ok, 1);
                let mut m = model.lock().unwrap();
                let n = m.names.get_mut(name).unwrap();
                if after.is_none() {
                    n.records.clear();
                    n.sent.clear();
                }
                n.acked = after;
            }
            Err(e) if classify(&e) => {
                let mut m = model.lock().unwrap();
                m.names.get_mut(name).unwrap().uncertain = Some((before, op));
            }
            Err(e) => {
                // A client error: nothing was done.
                if let Op::Create { .. } = op {
                    let mut m = model.lock().unwrap();
                    let n = m.names.get_mut(name).unwrap();
                    assert!(n.acked.is_none(), "{name}: creation failed with {e}");
                }
            }
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
            // The server's maintenance task: completes deletions (row,
            // then directory) and persists due transitions.
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
        let count = 1 + rng.below(40);
        let mut entries = Vec::new();
        let mut datas = Vec::new();
        for j in 0..count {
            let mut data = format!("{name}/{generation}/{tag}/{i}/{j}/").into_bytes();
            let len = rng.below(200) as usize;
            data.extend((0..len).map(|k| b'a' + ((k as u64 + rng.0) % 26) as u8));
            entries.push(format!(
                r#"{{"Data":"{}","PartitionKey":"pk{}"}}"#,
                base64::engine::general_purpose::STANDARD.encode(&data),
                rng.below(1000)
            ));
            datas.push(data);
        }
        {
            let mut m = model.lock().unwrap();
            m.names
                .get_mut(name)
                .unwrap()
                .sent
                .extend(datas.iter().cloned());
        }
        clock.advance(rng.below(2) as i64);
        let body = format!(
            r#"{{"StreamName":"{name}","Records":[{}]}}"#,
            entries.join(",")
        );
        let Ok(out) = call(&svc, "PutRecords", &body).await else {
            continue;
        };
        let results = list(&out, "Records");
        assert_eq!(results.len(), datas.len());
        let mut m = model.lock().unwrap();
        let n = m.names.get_mut(name).unwrap();
        assert_eq!(n.generation, generation);
        for (r, data) in results.iter().zip(datas) {
            if let (Some(shard), Some(seq)) = (s(r, "ShardId"), s(r, "SequenceNumber")) {
                n.records.push(Acked {
                    shard: shard.to_owned(),
                    seq: seq.to_owned(),
                    data,
                });
            }
        }
    }
}

// ---------------------------------------------------------------------
// A run

fn open(fs: &SimFs, clock: &Arc<ManualClock>, delay: i64) -> Result<Arc<Service>, String> {
    let engine = DiskEngine::open_with(
        Arc::new(fs.clone()),
        STREAMS_DIR,
        DiskConfig {
            durability: Durability::Fsync,
            segment_bytes: 2048,
            sync_interval: Duration::from_secs(3600),
        },
    )
    .map_err(|e| format!("opening the disk engine: {e}"))?;
    // As `riffle serve` opens it, on the simulated file system.
    let on = fs.clone();
    let store = Store::open_with(move || open_redb(&on, Path::new(META)))
        .map_err(|e| format!("opening {META}: {e}"))?;
    let ns = store
        .namespace(riffle_streams::meta::NAMESPACE)
        .map_err(|e| e.to_string())?;
    let cfg = Config {
        status_delay_ms: delay,
        ..Config::default()
    };
    Service::open(cfg, clock.clone() as Arc<dyn Clock>, engine, ns)
        .map_err(|e| format!("opening the service: {e}"))
}

fn run(seed: u64) -> Result<(), String> {
    let mut rng = Rng(seed ^ 0xD157);
    let fs = SimFs::with_block(seed, 512 << rng.below(4));
    fs.create_dir(Path::new(DATA)).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let delay = if seed % 2 == 1 { STATUS_DELAY_MS } else { 0 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut all_names = Vec::new();
    for t in 0..CONTROL_TASKS {
        for j in 0..NAMES_PER_TASK {
            all_names.push(format!("t{t}s{j}"));
        }
    }
    let model = Arc::new(Mutex::new(Model {
        names: all_names
            .iter()
            .map(|n| (n.clone(), Name::default()))
            .collect(),
    }));
    let locks: Arc<Locks> = Arc::new(
        all_names
            .iter()
            .map(|n| (n.clone(), Arc::default()))
            .collect(),
    );
    for round in 0..=ROUNDS {
        fs.reboot();
        // Now and then the power fails (or the process dies) during
        // recovery itself; recovery then starts over.
        if round > 0 && rng.below(4) == 0 {
            let at = Trigger::Op(1 + rng.below(12));
            if rng.below(2) == 0 {
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
            match rt.block_on(async { open(&fs, &clock, delay) }) {
                Ok(svc) if !fs.is_down() => {
                    fs.reboot();
                    drop(svc);
                    fs.kill();
                }
                Ok(svc) => drop(svc),
                Err(_) if fs.is_down() => {}
                Err(e) => return Err(format!("seed {seed} round {round}: {e}")),
            }
            fs.reboot();
        }
        let svc = rt
            .block_on(async { open(&fs, &clock, delay) })
            .map_err(|e| format!("seed {seed} round {round}: {e}"))?;
        bump(&STATS.recoveries, 1);
        rt.block_on(check(&svc, &fs, &clock, &model))
            .map_err(|e| format!("seed {seed} round {round}: {e}"))?;
        if round == ROUNDS {
            break;
        }
        let crashes = fs.stats().crashes;
        let plan = match rng.below(10) {
            0..=3 => {
                let at = Trigger::Op(1 + rng.below(400));
                let mode = rng.mode();
                fs.arm_crash(at, mode);
                format!("power loss ({mode:?}) at {at:?}")
            }
            4..=6 => {
                let at = Trigger::Sync(1 + rng.below(60));
                let mode = rng.mode();
                fs.arm_crash(at, mode);
                format!("power loss ({mode:?}) at {at:?}")
            }
            7..=8 => {
                let at = Trigger::Op(1 + rng.below(400));
                fs.arm_kill(at);
                format!("process death at {at:?}")
            }
            _ => "no fault".to_string(),
        };
        trace(|| format!("seed {seed} round {round}: {plan}"));
        rt.block_on(async {
            let mut tasks = Vec::new();
            for t in 0..CONTROL_TASKS {
                let mine = all_names
                    .iter()
                    .filter(|n| n.starts_with(&format!("t{t}s")))
                    .cloned()
                    .collect();
                tasks.push(tokio::spawn(control(
                    svc.clone(),
                    fs.clone(),
                    clock.clone(),
                    model.clone(),
                    locks.clone(),
                    mine,
                    rng.next_u64(),
                )));
            }
            for w in 0..WRITERS {
                tasks.push(tokio::spawn(writer(
                    svc.clone(),
                    fs.clone(),
                    clock.clone(),
                    model.clone(),
                    locks.clone(),
                    all_names.clone(),
                    rng.next_u64(),
                    format!("r{round}w{w}"),
                )));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
        if !fs.is_down() {
            if rng.below(2) == 0 {
                let mode = rng.mode();
                trace(|| format!("  ended by a power loss ({mode:?})"));
                fs.crash(mode);
            } else {
                trace(|| "  ended by a process death".into());
                fs.kill();
            }
        }
        if fs.stats().crashes > crashes {
            bump(&STATS.power_losses, 1);
        } else {
            bump(&STATS.deaths, 1);
        }
        drop(svc);
    }
    Ok(())
}

/// Seeds per run: 48, or `RIFFLE_POWER_SEEDS` (for a longer soak).
fn seeds() -> u64 {
    std::env::var("RIFFLE_POWER_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(48)
}

#[test]
fn power_loss_keeps_the_service_whole() {
    let started = std::time::Instant::now();
    let mut failures = Vec::new();
    for seed in 0..seeds() {
        if let Err(e) = run(seed) {
            failures.push(e);
        }
    }
    let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
    eprintln!(
        "{} seeds in {:?}, {} failed: {} recoveries after {} power losses and {} process deaths; \
         {} control operations acknowledged, {} failed ones found applied and {} not; \
         {} acknowledged records checked",
        seeds(),
        started.elapsed(),
        failures.len(),
        n(&STATS.recoveries),
        n(&STATS.power_losses),
        n(&STATS.deaths),
        n(&STATS.control_ok),
        n(&STATS.uncertain_applied),
        n(&STATS.uncertain_not_applied),
        n(&STATS.records_verified),
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A full disk under the metadata store: the control operation that hits it
/// fails whole (`InternalFailure`, nothing visible), and once space is back
/// the same service takes control operations again; after a restart only
/// what was acknowledged is there.
#[test]
fn a_full_disk_fails_control_operations_whole_and_the_service_goes_on() {
    use riffle_fs::sim::{Errno, Faults};
    let fs = SimFs::new(7);
    fs.create_dir(Path::new(DATA)).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let svc = open(&fs, &clock, 0).unwrap();
        call(&svc, "CreateStream", r#"{"StreamName":"a","ShardCount":1}"#)
            .await
            .unwrap();
        for faults in [
            Faults {
                fail_write: Some((1, Errno::NoSpace)),
                ..Faults::default()
            },
            Faults {
                space_left: Some(100),
                ..Faults::default()
            },
            Faults {
                fail_sync: Some((1, Errno::NoSpace)),
                ..Faults::default()
            },
        ] {
            fs.set_faults(faults.clone());
            let e = call(
                &svc,
                "AddTagsToStream",
                r#"{"StreamName":"a","Tags":{"k":"full"}}"#,
            )
            .await
            .unwrap_err();
            assert_eq!(e.error_type(), "InternalFailure", "{faults:?}");
            let tags = must(&svc, "ListTagsForStream", r#"{"StreamName":"a"}"#)
                .await
                .unwrap();
            assert!(list(&tags, "Tags").is_empty(), "{faults:?}");
            fs.clear_faults();
            call(
                &svc,
                "AddTagsToStream",
                r#"{"StreamName":"a","Tags":{"k":"ok"}}"#,
            )
            .await
            .unwrap_or_else(|e| panic!("after {faults:?}: {e}"));
            call(
                &svc,
                "RemoveTagsFromStream",
                r#"{"StreamName":"a","TagKeys":["k"]}"#,
            )
            .await
            .unwrap();
        }
        call(
            &svc,
            "AddTagsToStream",
            r#"{"StreamName":"a","Tags":{"k":"last"}}"#,
        )
        .await
        .unwrap();
        drop(svc);
    });
    fs.crash(CrashMode::DropAll);
    let svc = open(&fs, &clock, 0).unwrap();
    let got = rt.block_on(view(&svc, "a")).unwrap().unwrap();
    assert_eq!(got.tags.get("k").map(String::as_str), Some("last"));
}

/// Every record of every shard of `name` (listed by ListShards), as data.
async fn all_records(svc: &Service, name: &str) -> Vec<Vec<u8>> {
    let shards = must(svc, "ListShards", &format!(r#"{{"StreamName":"{name}"}}"#))
        .await
        .unwrap();
    let mut out = Vec::new();
    for sh in list(&shards, "Shards") {
        let id = s(sh, "ShardId").unwrap();
        out.extend(
            read_shard(svc, name, id)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.1),
        );
    }
    out.sort();
    out
}

/// PutRecords of `data` (each under its own partition key) to `name`.
async fn put_all(svc: &Service, name: &str, data: &[&str]) -> Result<Value, KinesisError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let records: Vec<String> = data
        .iter()
        .map(|d| {
            format!(
                r#"{{"PartitionKey":"{d}","Data":"{}"}}"#,
                b64.encode(d.as_bytes())
            )
        })
        .collect();
    call(
        svc,
        "PutRecords",
        &format!(
            r#"{{"StreamName":"{name}","Records":[{}]}}"#,
            records.join(",")
        ),
    )
    .await
}

/// A full disk (or a failing sync) under PutRecords: the call fails whole
/// with `InternalFailure`, none of its records is readable then or after a
/// power loss, and writes go on once space is freed, without a restart and
/// after one.
#[test]
fn a_full_disk_fails_put_records_whole_and_writes_resume() {
    use riffle_fs::sim::{Errno, Faults};
    let fs = SimFs::new(11);
    fs.create_dir(Path::new(DATA)).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut acked: Vec<Vec<u8>> = Vec::new();
    rt.block_on(async {
        let svc = open(&fs, &clock, 0).unwrap();
        call(&svc, "CreateStream", r#"{"StreamName":"d","ShardCount":2}"#)
            .await
            .unwrap();
        put_all(&svc, "d", &["before-1", "before-2"]).await.unwrap();
        acked.extend([b"before-1".to_vec(), b"before-2".to_vec()]);
        for (i, faults) in [
            Faults {
                space_left: Some(0),
                ..Faults::default()
            },
            Faults {
                space_left: Some(40),
                ..Faults::default()
            },
            Faults {
                fail_write: Some((1, Errno::NoSpace)),
                ..Faults::default()
            },
            Faults {
                fail_sync: Some((1, Errno::NoSpace)),
                ..Faults::default()
            },
        ]
        .into_iter()
        .enumerate()
        {
            fs.set_faults(faults.clone());
            let lost: Vec<String> = (0..5).map(|j| format!("full-{i}-{j}")).collect();
            let refs: Vec<&str> = lost.iter().map(String::as_str).collect();
            let e = put_all(&svc, "d", &refs).await.unwrap_err();
            assert_eq!(e.error_type(), "InternalFailure", "{faults:?}: {e}");
            let mut want = acked.clone();
            want.sort();
            assert_eq!(all_records(&svc, "d").await, want, "{faults:?}");
            fs.clear_faults();
            let ok = format!("freed-{i}");
            let out = put_all(&svc, "d", &[&ok])
                .await
                .unwrap_or_else(|e| panic!("after {faults:?}: {e}"));
            assert_eq!(int(&out, "FailedRecordCount"), Some(0), "{faults:?}");
            acked.push(ok.into_bytes());
            let mut want = acked.clone();
            want.sort();
            assert_eq!(all_records(&svc, "d").await, want, "{faults:?}");
        }
        drop(svc);
    });
    acked.sort();
    fs.crash(CrashMode::DropAll);
    rt.block_on(async {
        let svc = open(&fs, &clock, 0).unwrap();
        assert_eq!(all_records(&svc, "d").await, acked, "after a power loss");
        put_all(&svc, "d", &["after-reopen"]).await.unwrap();
        acked.push(b"after-reopen".to_vec());
        acked.sort();
        assert_eq!(all_records(&svc, "d").await, acked, "after a reopen");
        // And a full disk after the reopen fails the same way.
        fs.set_faults(Faults {
            space_left: Some(0),
            ..Faults::default()
        });
        let e = put_all(&svc, "d", &["full-again"]).await.unwrap_err();
        assert_eq!(e.error_type(), "InternalFailure");
        fs.clear_faults();
        assert_eq!(all_records(&svc, "d").await, acked);
    });
}

/// A log directory no stream row names (a creation whose row never became
/// durable, a deletion whose directory removal was lost) is removed when
/// the service opens; the logs of streams, and entries that are not logs,
/// stay.
#[test]
fn orphan_logs_are_removed_at_open() {
    use riffle_fs::OpenMode;
    let fs = SimFs::new(3);
    fs.create_dir(Path::new(DATA)).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let svc = open(&fs, &clock, 0).unwrap();
        call(
            &svc,
            "CreateStream",
            r#"{"StreamName":"keep","ShardCount":1}"#,
        )
        .await
        .unwrap();
        call(
            &svc,
            "PutRecord",
            r#"{"StreamName":"keep","PartitionKey":"k","Data":"aGk="}"#,
        )
        .await
        .unwrap();
    });
    let before = fs.read_dir(Path::new(STREAMS_DIR)).unwrap();
    assert_eq!(before.len(), 1);
    // An orphan log with a segment in it, and something that is no log.
    let orphan = Path::new(STREAMS_DIR).join("00000000000000ff");
    fs.create_dir(&orphan).unwrap();
    let f = fs.open(&orphan.join("seg"), OpenMode::CreateNew).unwrap();
    f.write_all_at(b"old records", 0).unwrap();
    let other = Path::new(STREAMS_DIR).join("README");
    fs.open(&other, OpenMode::CreateNew).unwrap();
    fs.kill();
    let svc = rt.block_on(async { open(&fs, &clock, 0) }).unwrap();
    assert!(!fs.exists(&orphan), "the orphan log is still there");
    assert!(fs.exists(&other), "an entry that is no log was removed");
    assert!(fs.exists(&Path::new(STREAMS_DIR).join(&before[0])));
    let v = rt.block_on(view(&svc, "keep")).unwrap().unwrap();
    let got = rt
        .block_on(read_shard(&svc, "keep", &v.shards[0].id))
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, b"hi");
}
