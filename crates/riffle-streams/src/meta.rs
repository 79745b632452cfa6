//! Durable metadata of Data Streams in the shared metadata store
//! (`riffle-meta`), namespace `kinesis`:
//!
//! - `kinesis/streams`: one [`StreamRow`] per stream, keyed `region \0 name`:
//!   its shards, lineage, consumers, tags, policies and settings;
//! - `kinesis/server`: the secret that seals iterators ([`SecretRow`]);
//! - `kinesis/account`: the account settings ([`AccountRow`]).
//!
//! Rows are serde structs stored as versioned JSON documents (`"v": 1`);
//! the field names are part of the format and never change meaning
//! (`crates/riffle-meta/design.md` lists them). Stores written before
//! namespaces kept the same stream documents in the tables `streams` and
//! `server`; [`Meta::new`] moves them into the namespace in one
//! transaction and drops the old tables.
//!
//! Every call blocks on storage: callers run them in `spawn_blocking`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use base64::Engine as _;
use riffle_core::hashkey::HashRange;
use riffle_meta::{MetaError, Namespace, Row, Store, Table, Tx};
use riffle_wire::shape::{self, FromValue, Timestamp};
use riffle_wire::Value;
use serde::{Deserialize, Serialize};

use crate::model::{self, MinimumThroughputBillingCommitmentOutput};
use crate::state::{Closed, Consumer, ConsumerStatus, Mode, Shard, Status, Stream};
use crate::StreamKey;

/// The namespace Data Streams claims in the shared store.
pub const NAMESPACE: &str = "kinesis";

const SECRET_KEY: &str = "iterator-secret";
const BILLING_KEY: &str = "billing-commitment";

/// Tables of stores written before namespaces existed.
mod legacy {
    pub const STREAMS: &str = "streams";
    pub const SERVER: &str = "server";
    pub const SECRET_KEY: &str = "iterator-secret";
    pub const ACCOUNT_SETTINGS: &str = "account-settings";
}

/// Why the service's metadata could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error("stored iterator secret is {0} bytes, not 32")]
    Secret(usize),
    #[error("legacy account settings could not be read")]
    LegacyAccountSettings,
    #[error("listing the stored logs: {0}")]
    ListLogs(#[source] riffle_log::LogError),
    #[error("removing the orphan log {id}: {source}")]
    RemoveOrphan {
        id: u64,
        #[source]
        source: riffle_log::LogError,
    },
    #[error("opening the log of stream {id}: {source}")]
    Log {
        id: u64,
        #[source]
        source: riffle_log::LogError,
    },
}

/// Data Streams' tables in the shared store.
#[derive(Clone)]
pub struct Meta {
    ns: Namespace,
    streams: Table<StreamRow>,
    server: Table<SecretRow>,
    account: Table<AccountRow>,
}

impl Meta {
    /// Data Streams' tables in `ns`, after moving rows of a store written
    /// before namespaces into them.
    pub fn new(ns: Namespace) -> Result<Meta, OpenError> {
        let meta = Meta {
            streams: ns.table("streams")?,
            server: ns.table("server")?,
            account: ns.table("account")?,
            ns,
        };
        meta.migrate_legacy()?;
        Ok(meta)
    }

    /// Tables that keep nothing: the in-memory server.
    pub fn none() -> Meta {
        let ns = Store::none()
            .namespace(NAMESPACE)
            .expect("a fresh store has every namespace free");
        Meta::new(ns).expect("an empty store has nothing to migrate")
    }

    /// Rows of the tables `streams` and `server` (format 1, no namespace)
    /// move into the namespace, and the old tables go, in one commit.
    fn migrate_legacy(&self) -> Result<(), OpenError> {
        let streams = self.ns.legacy_rows(legacy::STREAMS)?;
        let server = self.ns.legacy_rows(legacy::SERVER)?;
        if streams.is_none() && server.is_none() {
            return Ok(());
        }
        let mut tx = Tx::new();
        for (key, bytes) in streams.iter().flatten() {
            let row: StreamRow = riffle_meta::decode(legacy::STREAMS, key, bytes)?;
            tx.put(&self.streams, key.clone(), &row)?;
        }
        for (key, bytes) in server.iter().flatten() {
            match key.as_str() {
                legacy::SECRET_KEY => {
                    let secret: [u8; 32] = bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| OpenError::Secret(bytes.len()))?;
                    tx.put(&self.server, SECRET_KEY, &SecretRow::new(&secret))?;
                }
                legacy::ACCOUNT_SETTINGS => {
                    // The API's own document: the model reads it.
                    let b = riffle_wire::json::decode(bytes)
                        .ok()
                        .and_then(|v| {
                            shape::validate(&model::MINIMUM_THROUGHPUT_BILLING_COMMITMENT_OUTPUT, v)
                                .ok()
                        })
                        .map(|m| {
                            MinimumThroughputBillingCommitmentOutput::from_value(Value::Map(m))
                        })
                        .ok_or(OpenError::LegacyAccountSettings)?;
                    tx.put(&self.account, BILLING_KEY, &AccountRow::from(&b))?;
                }
                other => tracing::warn!(key = other, "dropping an unknown legacy server row"),
            }
        }
        if streams.is_some() {
            tx.drop_legacy_table(legacy::STREAMS);
        }
        if server.is_some() {
            tx.drop_legacy_table(legacy::SERVER);
        }
        self.ns.apply(tx)?;
        tracing::info!("moved metadata into the kinesis namespace");
        Ok(())
    }

    /// The secret that seals iterators, made and stored on first use.
    pub fn iterator_secret(&self) -> Result<[u8; 32], OpenError> {
        if let Some(row) = self.ns.get(&self.server, SECRET_KEY)? {
            return row.secret();
        }
        let k: [u8; 32] = rand::random();
        let mut tx = Tx::new();
        tx.put(&self.server, SECRET_KEY, &SecretRow::new(&k))?;
        self.ns.apply(tx)?;
        Ok(k)
    }

    pub fn account_settings(
        &self,
    ) -> Result<Option<MinimumThroughputBillingCommitmentOutput>, MetaError> {
        Ok(self
            .ns
            .get(&self.account, BILLING_KEY)?
            .map(|r| r.into_model()))
    }

    pub fn put_account_settings(
        &self,
        b: &MinimumThroughputBillingCommitmentOutput,
    ) -> Result<(), MetaError> {
        let mut tx = Tx::new();
        tx.put(&self.account, BILLING_KEY, &AccountRow::from(b))?;
        self.ns.apply(tx)
    }

    /// Every stored stream.
    pub fn load_streams(&self) -> Result<Vec<StreamRow>, MetaError> {
        Ok(self
            .ns
            .load(&self.streams)?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    /// Writes (or, with `None`, deletes) the row of the stream at `key`;
    /// an unchanged row is not written again.
    pub fn write_stream(&self, key: &StreamKey, row: Option<StreamRow>) -> Result<(), MetaError> {
        let k = row_key(&key.0, &key.1);
        let mut tx = Tx::new();
        match row {
            Some(row) => {
                tx.put(&self.streams, k, &row)?;
            }
            None => {
                tx.delete(&self.streams, k);
            }
        }
        self.ns.apply(tx)
    }

    /// Keys of the stream rows stored now.
    pub fn stored_keys(&self) -> Result<Vec<String>, MetaError> {
        self.ns.keys(&self.streams)
    }
}

/// The row key of a stream.
pub fn row_key(region: &str, name: &str) -> String {
    format!("{region}\0{name}")
}

/// Serialises a stream's metadata (everything but its log handle).
pub fn encode_stream(st: &Stream) -> StreamRow {
    StreamRow::from(st)
}

/// `kinesis/server` row `iterator-secret`: the 32-byte key that seals
/// iterators and pagination tokens, so they survive restarts.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct SecretRow {
    /// Standard base64 of the 32 bytes.
    pub key: String,
}

impl Row for SecretRow {
    const VERSION: u32 = 1;
}

impl SecretRow {
    fn new(k: &[u8; 32]) -> SecretRow {
        SecretRow {
            key: base64::engine::general_purpose::STANDARD.encode(k),
        }
    }

    fn secret(&self) -> Result<[u8; 32], OpenError> {
        let b = base64::engine::general_purpose::STANDARD
            .decode(&self.key)
            .map_err(|_| OpenError::Secret(0))?;
        let n = b.len();
        b.try_into().map_err(|_| OpenError::Secret(n))
    }
}

/// `kinesis/account` row `billing-commitment`: the account's minimum
/// throughput billing commitment (UpdateAccountSettings).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct AccountRow {
    /// `ENABLED` or `DISABLED`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earliest_allowed_end_at_ms: Option<i64>,
}

impl Row for AccountRow {
    const VERSION: u32 = 1;
}

impl From<&MinimumThroughputBillingCommitmentOutput> for AccountRow {
    fn from(b: &MinimumThroughputBillingCommitmentOutput) -> AccountRow {
        AccountRow {
            status: b.status.clone(),
            started_at_ms: b.started_at.map(|t| t.0),
            ended_at_ms: b.ended_at.map(|t| t.0),
            earliest_allowed_end_at_ms: b.earliest_allowed_end_at.map(|t| t.0),
        }
    }
}

impl AccountRow {
    fn into_model(self) -> MinimumThroughputBillingCommitmentOutput {
        MinimumThroughputBillingCommitmentOutput {
            status: self.status,
            started_at: self.started_at_ms.map(Timestamp),
            ended_at: self.ended_at_ms.map(Timestamp),
            earliest_allowed_end_at: self.earliest_allowed_end_at_ms.map(Timestamp),
        }
    }
}

/// `kinesis/streams`: one stream incarnation, format 1. Field order is
/// the stored order.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct StreamRow {
    /// The incarnation (and log) id, as a decimal string.
    #[serde(with = "decimal")]
    pub id: u64,
    pub name: String,
    pub region: String,
    pub arn: String,
    pub created_ms: i64,
    pub status: StatusRow,
    pub mode: ModeRow,
    pub retention_hours: i64,
    #[serde(default)]
    pub shards: Vec<ShardRow>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The KMS key id while encryption is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<String>,
    /// `[epoch_ms, on]` pairs, oldest first.
    #[serde(default)]
    pub encryption_changes: Vec<(i64, bool)>,
    /// Enabled shard-level metrics.
    #[serde(default)]
    pub metrics: BTreeSet<String>,
    #[serde(default)]
    pub consumers: Vec<ConsumerRow>,
    /// The stream's resource policy, the JSON text as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    pub max_record_kib: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_throughput_mibps: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<String>,
    /// Epoch ms of UpdateShardCount calls.
    #[serde(default)]
    pub scalings: Vec<i64>,
}

impl Row for StreamRow {
    const VERSION: u32 = 1;
}

/// A stream's or consumer's status; `until_ms` ends a transition.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
pub struct StatusRow {
    pub kind: StatusKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<i64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StatusKind {
    Creating,
    Active,
    Updating,
    Deleting,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ModeRow {
    Provisioned,
    OnDemand,
}

/// One shard; its index is its position in the stream's shard list.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ShardRow {
    pub index: u32,
    /// First hash key, decimal.
    #[serde(with = "decimal")]
    pub start: u128,
    /// Last hash key (inclusive), decimal.
    #[serde(with = "decimal")]
    pub end: u128,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjacent_parent: Option<u32>,
    pub created_secs: u64,
    /// The shard's first log offset.
    pub start_offset: u64,
    /// The shard's next log offset when it closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_ms: Option<i64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ConsumerRow {
    pub name: String,
    pub arn: String,
    pub created_ms: i64,
    pub status: StatusRow,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// Integers stored as decimal strings (ids and 128-bit hash keys).
mod decimal {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, T: std::fmt::Display>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: std::str::FromStr>(
        d: D,
    ) -> Result<T, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        s.parse()
            .map_err(|_| D::Error::custom(format!("{s:?} is not a decimal integer")))
    }
}

fn status_row(kind: StatusKind, until_ms: Option<i64>) -> StatusRow {
    StatusRow { kind, until_ms }
}

impl From<&Stream> for StreamRow {
    fn from(st: &Stream) -> StreamRow {
        StreamRow {
            id: st.id,
            name: st.name.clone(),
            region: st.region.clone(),
            arn: st.arn.clone(),
            created_ms: st.created_ms,
            status: match st.status {
                Status::Creating { until_ms } => status_row(StatusKind::Creating, Some(until_ms)),
                Status::Active => status_row(StatusKind::Active, None),
                Status::Updating { until_ms } => status_row(StatusKind::Updating, Some(until_ms)),
                Status::Deleting { until_ms } => status_row(StatusKind::Deleting, Some(until_ms)),
            },
            mode: match st.mode {
                Mode::Provisioned => ModeRow::Provisioned,
                Mode::OnDemand => ModeRow::OnDemand,
            },
            retention_hours: st.retention_hours,
            shards: st
                .shards
                .iter()
                .map(|sh| ShardRow {
                    index: sh.index,
                    start: sh.range.start,
                    end: sh.range.end,
                    parent: sh.parent,
                    adjacent_parent: sh.adjacent_parent,
                    created_secs: sh.created_secs,
                    start_offset: sh.start_offset,
                    closed_offset: sh.closed.map(|c| c.offset),
                    closed_ms: sh.closed.map(|c| c.at_ms),
                })
                .collect(),
            tags: st.tags.clone(),
            encryption_key: st.encryption.clone(),
            encryption_changes: st.encryption_changes.clone(),
            metrics: st.metrics.clone(),
            consumers: st
                .consumers
                .iter()
                .map(|c| ConsumerRow {
                    name: c.name.clone(),
                    arn: c.arn.clone(),
                    created_ms: c.created_ms,
                    status: match c.status {
                        ConsumerStatus::Creating { until_ms } => {
                            status_row(StatusKind::Creating, Some(until_ms))
                        }
                        ConsumerStatus::Active => status_row(StatusKind::Active, None),
                        ConsumerStatus::Deleting { until_ms } => {
                            status_row(StatusKind::Deleting, Some(until_ms))
                        }
                    },
                    tags: c.tags.clone(),
                    policy: c.policy.clone(),
                })
                .collect(),
            policy: st.policy.clone(),
            max_record_kib: st.max_record_kib,
            warm_throughput_mibps: st.warm_throughput_mibps,
            distribution: st.distribution.clone(),
            scalings: st.scalings.clone(),
        }
    }
}

impl StreamRow {
    /// The stream, with its log opened.
    pub fn with_log(self, log: Arc<dyn riffle_log::StreamLog>) -> Stream {
        let until = self.status.until_ms.unwrap_or(0);
        Stream {
            id: self.id,
            name: self.name,
            region: self.region,
            arn: self.arn,
            created_ms: self.created_ms,
            status: match self.status.kind {
                StatusKind::Creating => Status::Creating { until_ms: until },
                StatusKind::Active => Status::Active,
                StatusKind::Updating => Status::Updating { until_ms: until },
                StatusKind::Deleting => Status::Deleting { until_ms: until },
            },
            mode: match self.mode {
                ModeRow::Provisioned => Mode::Provisioned,
                ModeRow::OnDemand => Mode::OnDemand,
            },
            retention_hours: self.retention_hours,
            shards: self
                .shards
                .into_iter()
                .map(|x| Shard {
                    index: x.index,
                    range: HashRange {
                        start: x.start,
                        end: x.end,
                    },
                    parent: x.parent,
                    adjacent_parent: x.adjacent_parent,
                    created_secs: x.created_secs,
                    start_offset: x.start_offset,
                    closed: match (x.closed_offset, x.closed_ms) {
                        (Some(offset), Some(at_ms)) => Some(Closed { offset, at_ms }),
                        _ => None,
                    },
                })
                .collect(),
            tags: self.tags,
            encryption: self.encryption_key,
            encryption_changes: self.encryption_changes,
            metrics: self.metrics,
            consumers: self
                .consumers
                .into_iter()
                .map(|c| {
                    let until = c.status.until_ms.unwrap_or(0);
                    Consumer {
                        name: c.name,
                        arn: c.arn,
                        created_ms: c.created_ms,
                        status: match c.status.kind {
                            StatusKind::Creating => ConsumerStatus::Creating { until_ms: until },
                            StatusKind::Deleting => ConsumerStatus::Deleting { until_ms: until },
                            // Consumers are never UPDATING.
                            StatusKind::Active | StatusKind::Updating => ConsumerStatus::Active,
                        },
                        tags: c.tags,
                        policy: c.policy,
                    }
                })
                .collect(),
            policy: self.policy,
            max_record_kib: self.max_record_kib,
            warm_throughput_mibps: self.warm_throughput_mibps,
            distribution: self.distribution,
            scalings: self.scalings,
            log,
        }
    }
}
