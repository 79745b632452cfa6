//! One application: its stored row (also its live picture) and its
//! status machine.
//!
//! Configuration pieces (inputs, outputs, reference data sources,
//! CloudWatch logging options) are kept as their *description* documents,
//! the JSON that DescribeApplication returns for them, with the id Riffle
//! gave each. Ids are `<n>.1`, `n` counting pieces of one kind from 1 and
//! never reused within an application.

use std::collections::BTreeMap;

use riffle_meta::cells::Resource;
use riffle_meta::Row;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// ApplicationStatus with the time a transition completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Status {
    Ready,
    Starting { until_ms: i64 },
    Running,
    Stopping { until_ms: i64 },
    Deleting { until_ms: i64 },
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Ready => "READY",
            Status::Starting { .. } => "STARTING",
            Status::Running => "RUNNING",
            Status::Stopping { .. } => "STOPPING",
            Status::Deleting { .. } => "DELETING",
        }
    }
}

/// A configuration piece: its id and its description document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Piece {
    pub id: String,
    pub doc: Json,
}

/// An application, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Application {
    pub region: String,
    pub name: String,
    pub arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub status: Status,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// ApplicationVersionId: 1 at creation, +1 per configuration change.
    pub version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub inputs: Vec<Piece>,
    pub outputs: Vec<Piece>,
    pub references: Vec<Piece>,
    pub logging: Vec<Piece>,
    /// The last id number given, per kind (inputs, outputs, references,
    /// logging options).
    pub counters: [u32; 4],
    pub tags: BTreeMap<String, String>,
    /// Counts StartApplication calls: a checkpoint of the current run is
    /// resumed after a restart of the server, whatever the starting
    /// position.
    #[serde(default)]
    pub run: u64,
    /// How far the application has read its input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Progress>,
}

/// An input's reading position, saved while the application runs and
/// when it stops (LAST_STOPPED_POINT starts from it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The run that saved it.
    pub run: u64,
    /// The input's id.
    pub input: String,
    /// A Data Streams input's checkpoint.
    #[serde(default)]
    pub stream: riffle_streams::access::Checkpoint,
    /// A Firehose input's position in the delivery stream's buffer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

impl Row for Application {
    const VERSION: u32 = 1;
}

impl Resource for Application {
    fn settle(&mut self, now_ms: i64) -> bool {
        let next = match self.status {
            Status::Starting { until_ms } if now_ms >= until_ms => Status::Running,
            Status::Stopping { until_ms } if now_ms >= until_ms => Status::Ready,
            _ => return false,
        };
        self.status = next;
        true
    }

    fn is_settled(&self, now_ms: i64) -> bool {
        !matches!(
            self.status,
            Status::Starting { until_ms } | Status::Stopping { until_ms } if now_ms >= until_ms
        )
    }

    fn is_gone(&self, now_ms: i64) -> bool {
        matches!(self.status, Status::Deleting { until_ms } if now_ms >= until_ms)
    }
}

/// Kinds of configuration pieces, indexing [`Application::counters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Input = 0,
    Output = 1,
    Reference = 2,
    Logging = 3,
}

impl Application {
    pub fn pieces(&self, kind: Kind) -> &Vec<Piece> {
        match kind {
            Kind::Input => &self.inputs,
            Kind::Output => &self.outputs,
            Kind::Reference => &self.references,
            Kind::Logging => &self.logging,
        }
    }

    pub fn pieces_mut(&mut self, kind: Kind) -> &mut Vec<Piece> {
        match kind {
            Kind::Input => &mut self.inputs,
            Kind::Output => &mut self.outputs,
            Kind::Reference => &mut self.references,
            Kind::Logging => &mut self.logging,
        }
    }

    /// The next id of a kind (`<n>.1`).
    pub fn next_id(&mut self, kind: Kind) -> String {
        let c = &mut self.counters[kind as usize];
        *c += 1;
        format!("{}.1", c)
    }

    /// A configuration change: a new version, now.
    pub fn changed(&mut self, now_ms: i64) {
        self.version += 1;
        self.updated_ms = now_ms;
    }
}
