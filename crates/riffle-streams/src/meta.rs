//! Durable metadata: streams with their shards, lineage, consumers, tags,
//! policies and settings, the account settings, and the server secret that
//! signs iterators, in an embedded transactional store (redb).
//!
//! Each stream is one row, keyed `region \0 name`, whose value is a JSON
//! document with a format version (`"v": 1`); the field names below are part
//! of the format and never change meaning. [`Service::persist`] writes the
//! rows that changed since the last write and deletes the rows of streams
//! that are gone, in one transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Mutex;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use riffle_core::hashkey::HashRange;
use riffle_wire::{Map, Value};

use crate::state::{Closed, Consumer, ConsumerStatus, Mode, Shard, Status, Stream};

const STREAMS: TableDefinition<&str, &[u8]> = TableDefinition::new("streams");
const SERVER: TableDefinition<&str, &[u8]> = TableDefinition::new("server");
const FORMAT: i64 = 1;

/// Where metadata lives.
pub trait MetaStore: Send + Sync {
    /// Every stored stream row.
    fn load(&self) -> Result<Vec<Vec<u8>>, String>;
    /// Writes `put` rows and deletes `delete` keys atomically.
    fn apply(&self, put: &[(String, Vec<u8>)], delete: &[String]) -> Result<(), String>;
    fn get_server(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
    fn put_server(&self, key: &str, value: &[u8]) -> Result<(), String>;
    /// Keys of the rows stored now.
    fn stored_keys(&self) -> Vec<String>;
}

/// Keeps nothing: the in-memory server.
pub struct NoMeta;

impl MetaStore for NoMeta {
    fn load(&self) -> Result<Vec<Vec<u8>>, String> {
        Ok(Vec::new())
    }
    fn apply(&self, _: &[(String, Vec<u8>)], _: &[String]) -> Result<(), String> {
        Ok(())
    }
    fn get_server(&self, _: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(None)
    }
    fn put_server(&self, _: &str, _: &[u8]) -> Result<(), String> {
        Ok(())
    }
    fn stored_keys(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Metadata in a redb file.
pub struct RedbMeta {
    db: Database,
    /// Serialised rows as last written, to write only what changed.
    pub(crate) written: Mutex<HashMap<String, Vec<u8>>>,
}

fn e(x: impl std::fmt::Display) -> String {
    x.to_string()
}

impl RedbMeta {
    pub fn open(path: &Path) -> Result<RedbMeta, String> {
        let db = Database::create(path).map_err(e)?;
        let tx = db.begin_write().map_err(e)?;
        tx.open_table(STREAMS).map_err(e)?;
        tx.open_table(SERVER).map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(RedbMeta {
            db,
            written: Mutex::new(HashMap::new()),
        })
    }
}

impl MetaStore for RedbMeta {
    fn load(&self) -> Result<Vec<Vec<u8>>, String> {
        let tx = self.db.begin_read().map_err(e)?;
        let t = tx.open_table(STREAMS).map_err(e)?;
        let mut out = Vec::new();
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        for row in t.iter().map_err(e)? {
            let (k, v) = row.map_err(e)?;
            written.insert(k.value().to_owned(), v.value().to_vec());
            out.push(v.value().to_vec());
        }
        Ok(out)
    }

    fn apply(&self, put: &[(String, Vec<u8>)], delete: &[String]) -> Result<(), String> {
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        let put: Vec<_> = put
            .iter()
            .filter(|(k, v)| written.get(k) != Some(v))
            .collect();
        let delete: Vec<_> = delete.iter().filter(|k| written.contains_key(*k)).collect();
        if put.is_empty() && delete.is_empty() {
            return Ok(());
        }
        let tx = self.db.begin_write().map_err(e)?;
        {
            let mut t = tx.open_table(STREAMS).map_err(e)?;
            for (k, v) in &put {
                t.insert(k.as_str(), v.as_slice()).map_err(e)?;
            }
            for k in &delete {
                t.remove(k.as_str()).map_err(e)?;
            }
        }
        tx.commit().map_err(e)?;
        for (k, v) in put {
            written.insert(k.clone(), v.clone());
        }
        for k in delete {
            written.remove(k);
        }
        Ok(())
    }

    fn get_server(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        let tx = self.db.begin_read().map_err(e)?;
        let t = tx.open_table(SERVER).map_err(e)?;
        Ok(t.get(key).map_err(e)?.map(|v| v.value().to_vec()))
    }

    fn put_server(&self, key: &str, value: &[u8]) -> Result<(), String> {
        let tx = self.db.begin_write().map_err(e)?;
        tx.open_table(SERVER)
            .map_err(e)?
            .insert(key, value)
            .map_err(e)?;
        tx.commit().map_err(e)
    }

    fn stored_keys(&self) -> Vec<String> {
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }
}

/// The row key of a stream.
pub fn row_key(region: &str, name: &str) -> String {
    format!("{region}\0{name}")
}

fn s(v: &str) -> Value {
    Value::Str(v.to_owned())
}

fn status_value(kind: &str, until: Option<i64>) -> Value {
    let mut m = Map::new();
    m.put("kind", s(kind));
    m.put("until_ms", until.map(Value::Int));
    Value::Map(m)
}

/// Serialises a stream's metadata (everything but its log handle).
pub fn encode_stream(st: &Stream) -> Vec<u8> {
    let mut m = Map::new();
    m.put("v", Value::Int(FORMAT));
    m.put("id", Value::Str(st.id.to_string()));
    m.put("name", s(&st.name));
    m.put("region", s(&st.region));
    m.put("arn", s(&st.arn));
    m.put("created_ms", Value::Int(st.created_ms));
    m.put(
        "status",
        match st.status {
            Status::Creating { until_ms } => status_value("CREATING", Some(until_ms)),
            Status::Active => status_value("ACTIVE", None),
            Status::Updating { until_ms } => status_value("UPDATING", Some(until_ms)),
            Status::Deleting { until_ms } => status_value("DELETING", Some(until_ms)),
        },
    );
    m.put("mode", s(st.mode.as_str()));
    m.put("retention_hours", Value::Int(st.retention_hours));
    m.put(
        "shards",
        Value::List(
            st.shards
                .iter()
                .map(|sh| {
                    let mut x = Map::new();
                    x.put("index", Value::Int(i64::from(sh.index)));
                    x.put("start", s(&sh.range.start.to_string()));
                    x.put("end", s(&sh.range.end.to_string()));
                    x.put("parent", sh.parent.map(|p| Value::Int(i64::from(p))));
                    x.put(
                        "adjacent_parent",
                        sh.adjacent_parent.map(|p| Value::Int(i64::from(p))),
                    );
                    x.put("created_secs", Value::Int(sh.created_secs as i64));
                    x.put("start_offset", Value::Int(sh.start_offset as i64));
                    x.put(
                        "closed_offset",
                        sh.closed.map(|c| Value::Int(c.offset as i64)),
                    );
                    x.put("closed_ms", sh.closed.map(|c| Value::Int(c.at_ms)));
                    Value::Map(x)
                })
                .collect(),
        ),
    );
    m.put("tags", tags_value(&st.tags));
    m.put("encryption_key", st.encryption.as_deref().map(s));
    m.put(
        "encryption_changes",
        Value::List(
            st.encryption_changes
                .iter()
                .map(|(t, on)| Value::List(vec![Value::Int(*t), Value::Bool(*on)]))
                .collect(),
        ),
    );
    m.put(
        "metrics",
        Value::List(st.metrics.iter().map(|x| s(x)).collect()),
    );
    m.put(
        "consumers",
        Value::List(
            st.consumers
                .iter()
                .map(|c| {
                    let mut x = Map::new();
                    x.put("name", s(&c.name));
                    x.put("arn", s(&c.arn));
                    x.put("created_ms", Value::Int(c.created_ms));
                    x.put(
                        "status",
                        match c.status {
                            ConsumerStatus::Creating { until_ms } => {
                                status_value("CREATING", Some(until_ms))
                            }
                            ConsumerStatus::Active => status_value("ACTIVE", None),
                            ConsumerStatus::Deleting { until_ms } => {
                                status_value("DELETING", Some(until_ms))
                            }
                        },
                    );
                    x.put("tags", tags_value(&c.tags));
                    x.put("policy", c.policy.as_deref().map(s));
                    Value::Map(x)
                })
                .collect(),
        ),
    );
    m.put("policy", st.policy.as_deref().map(s));
    m.put("max_record_kib", Value::Int(st.max_record_kib));
    m.put(
        "warm_throughput_mibps",
        st.warm_throughput_mibps.map(Value::Int),
    );
    m.put("distribution", st.distribution.as_deref().map(s));
    m.put(
        "scalings",
        Value::List(st.scalings.iter().map(|t| Value::Int(*t)).collect()),
    );
    riffle_wire::json::encode(&Value::Map(m))
}

fn tags_value(tags: &BTreeMap<String, String>) -> Value {
    Value::Map(Map(tags.iter().map(|(k, v)| (k.clone(), s(v))).collect()))
}

/// The metadata of a stored stream, before its log is opened.
pub struct StoredStream {
    pub id: u64,
    build: Box<dyn FnOnce(std::sync::Arc<dyn riffle_log::StreamLog>) -> Stream + Send>,
}

impl StoredStream {
    pub fn with_log(self, log: std::sync::Arc<dyn riffle_log::StreamLog>) -> Stream {
        (self.build)(log)
    }
}

struct Reader(Map);

impl Reader {
    fn str(&self, k: &str) -> Option<String> {
        match self.0.get(k) {
            Some(Value::Str(x)) => Some(x.clone()),
            _ => None,
        }
    }
    fn int(&self, k: &str) -> Option<i64> {
        match self.0.get(k) {
            Some(Value::Int(x)) => Some(*x),
            _ => None,
        }
    }
    fn list(&self, k: &str) -> Vec<Value> {
        match self.0.get(k) {
            Some(Value::List(x)) => x.clone(),
            _ => Vec::new(),
        }
    }
    fn map(&self, k: &str) -> Option<Reader> {
        match self.0.get(k) {
            Some(Value::Map(x)) => Some(Reader(x.clone())),
            _ => None,
        }
    }
    fn tags(&self, k: &str) -> BTreeMap<String, String> {
        match self.0.get(k) {
            Some(Value::Map(x)) => {
                x.0.iter()
                    .filter_map(|(k, v)| match v {
                        Value::Str(v) => Some((k.clone(), v.clone())),
                        _ => None,
                    })
                    .collect()
            }
            _ => BTreeMap::new(),
        }
    }
}

fn reader(v: Value) -> Option<Reader> {
    match v {
        Value::Map(m) => Some(Reader(m)),
        _ => None,
    }
}

/// Parses a stored stream row.
pub fn decode_stream(bytes: &[u8]) -> Option<StoredStream> {
    let r = reader(riffle_wire::json::decode(bytes).ok()?)?;
    if r.int("v")? != FORMAT {
        return None;
    }
    let id: u64 = r.str("id")?.parse().ok()?;
    let status = {
        let st = r.map("status")?;
        let until = st.int("until_ms").unwrap_or(0);
        match st.str("kind")?.as_str() {
            "CREATING" => Status::Creating { until_ms: until },
            "UPDATING" => Status::Updating { until_ms: until },
            "DELETING" => Status::Deleting { until_ms: until },
            _ => Status::Active,
        }
    };
    let mut shards = Vec::new();
    for v in r.list("shards") {
        let x = reader(v)?;
        shards.push(Shard {
            index: x.int("index")? as u32,
            range: HashRange {
                start: x.str("start")?.parse().ok()?,
                end: x.str("end")?.parse().ok()?,
            },
            parent: x.int("parent").map(|p| p as u32),
            adjacent_parent: x.int("adjacent_parent").map(|p| p as u32),
            created_secs: x.int("created_secs")? as u64,
            start_offset: x.int("start_offset")? as u64,
            closed: match (x.int("closed_offset"), x.int("closed_ms")) {
                (Some(o), Some(t)) => Some(Closed {
                    offset: o as u64,
                    at_ms: t,
                }),
                _ => None,
            },
        });
    }
    let mut consumers = Vec::new();
    for v in r.list("consumers") {
        let x = reader(v)?;
        let st = x.map("status")?;
        let until = st.int("until_ms").unwrap_or(0);
        consumers.push(Consumer {
            name: x.str("name")?,
            arn: x.str("arn")?,
            created_ms: x.int("created_ms")?,
            status: match st.str("kind")?.as_str() {
                "CREATING" => ConsumerStatus::Creating { until_ms: until },
                "DELETING" => ConsumerStatus::Deleting { until_ms: until },
                _ => ConsumerStatus::Active,
            },
            tags: x.tags("tags"),
            policy: x.str("policy"),
        });
    }
    let name = r.str("name")?;
    let region = r.str("region")?;
    let arn = r.str("arn")?;
    let created_ms = r.int("created_ms")?;
    let mode = if r.str("mode")? == "ON_DEMAND" {
        Mode::OnDemand
    } else {
        Mode::Provisioned
    };
    let retention_hours = r.int("retention_hours")?;
    let tags = r.tags("tags");
    let encryption = r.str("encryption_key");
    let encryption_changes: Vec<(i64, bool)> = r
        .list("encryption_changes")
        .into_iter()
        .filter_map(|v| match v {
            Value::List(p) => match p.as_slice() {
                [Value::Int(t), Value::Bool(on)] => Some((*t, *on)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let metrics: BTreeSet<String> = r
        .list("metrics")
        .into_iter()
        .filter_map(|v| match v {
            Value::Str(x) => Some(x),
            _ => None,
        })
        .collect();
    let policy = r.str("policy");
    let max_record_kib = r.int("max_record_kib")?;
    let warm = r.int("warm_throughput_mibps");
    let distribution = r.str("distribution");
    let scalings: Vec<i64> = r
        .list("scalings")
        .into_iter()
        .filter_map(|v| match v {
            Value::Int(x) => Some(x),
            _ => None,
        })
        .collect();
    Some(StoredStream {
        id,
        build: Box::new(move |log| Stream {
            id,
            name,
            region,
            arn,
            created_ms,
            status,
            mode,
            retention_hours,
            shards,
            tags,
            encryption,
            encryption_changes,
            metrics,
            consumers,
            policy,
            max_record_kib,
            warm_throughput_mibps: warm,
            distribution,
            scalings,
            log,
        }),
    })
}
