//! One video stream: its stored row (also its live picture) and its
//! status machine: CREATING → ACTIVE, ACTIVE → UPDATING → ACTIVE,
//! DELETING → gone.

use std::collections::BTreeMap;

use riffle_meta::cells::Resource;
use riffle_meta::Row;
use serde::{Deserialize, Serialize};

/// A stream's Status with the time a transition completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Status {
    Creating { until_ms: i64 },
    Active,
    Updating { until_ms: i64 },
    Deleting { until_ms: i64 },
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Creating { .. } => "CREATING",
            Status::Active => "ACTIVE",
            Status::Updating { .. } => "UPDATING",
            Status::Deleting { .. } => "DELETING",
        }
    }
}

/// A stream, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stream {
    pub region: String,
    pub name: String,
    pub arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub kms_key_id: String,
    /// Changes with every UpdateStream and UpdateDataRetention.
    pub version: String,
    pub status: Status,
    pub created_ms: i64,
    pub retention_hours: i64,
    pub tags: BTreeMap<String, String>,
}

impl Row for Stream {
    const VERSION: u32 = 1;
}

impl Resource for Stream {
    fn settle(&mut self, now_ms: i64) -> bool {
        match self.status {
            Status::Creating { until_ms } | Status::Updating { until_ms } if now_ms >= until_ms => {
                self.status = Status::Active;
                true
            }
            _ => false,
        }
    }

    fn is_settled(&self, now_ms: i64) -> bool {
        !matches!(
            self.status,
            Status::Creating { until_ms } | Status::Updating { until_ms } if now_ms >= until_ms
        )
    }

    fn is_gone(&self, now_ms: i64) -> bool {
        matches!(self.status, Status::Deleting { until_ms } if now_ms >= until_ms)
    }
}
