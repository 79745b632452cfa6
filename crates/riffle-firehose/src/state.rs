//! The picture of one delivery stream, which is also its row in the
//! metadata store (see [`crate::meta`]), and the AWS message texts the
//! operations share.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::FirehoseError;

/// A delivery stream's lifecycle. `until_ms` is when the pending transition
/// completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Status {
    Creating { until_ms: i64 },
    Active,
    Deleting { until_ms: i64 },
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Creating { .. } => "CREATING",
            Status::Active => "ACTIVE",
            Status::Deleting { .. } => "DELETING",
        }
    }
}

/// Server-side encryption's state, with AWS's transitions:
/// ENABLING → ENABLED, DISABLING → DISABLED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SseStatus {
    Enabling { until_ms: i64 },
    Enabled,
    Disabling { until_ms: i64 },
    Disabled,
}

impl SseStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            SseStatus::Enabling { .. } => "ENABLING",
            SseStatus::Enabled => "ENABLED",
            SseStatus::Disabling { .. } => "DISABLING",
            SseStatus::Disabled => "DISABLED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sse {
    /// `AWS_OWNED_CMK` or `CUSTOMER_MANAGED_CMK`.
    pub key_type: String,
    pub key_arn: Option<String>,
    pub status: SseStatus,
}

/// Where records come from besides PutRecord/PutRecordBatch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    DirectPut {
        throughput_hint_mbs: Option<i64>,
    },
    /// A Riffle Data Streams stream, read from `start_ms`.
    Kinesis {
        stream_arn: String,
        role_arn: String,
        start_ms: i64,
    },
}

/// The destination types of the model. S3 destinations are kept as
/// extended S3 destinations, as AWS keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    ExtendedS3,
    Redshift,
    Elasticsearch,
    Amazonopensearchservice,
    Splunk,
    HttpEndpoint,
    AmazonOpenSearchServerless,
    Snowflake,
    Iceberg,
}

impl Kind {
    /// The prefix of the model's `<Prefix>DestinationDescription` member.
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::ExtendedS3 => "ExtendedS3",
            Kind::Redshift => "Redshift",
            Kind::Elasticsearch => "Elasticsearch",
            Kind::Amazonopensearchservice => "Amazonopensearchservice",
            Kind::Splunk => "Splunk",
            Kind::HttpEndpoint => "HttpEndpoint",
            Kind::AmazonOpenSearchServerless => "AmazonOpenSearchServerless",
            Kind::Snowflake => "Snowflake",
            Kind::Iceberg => "Iceberg",
        }
    }

    /// Whether Riffle delivers records to this type of destination; the
    /// others are stored and described, and their records stay buffered.
    pub fn delivers(self) -> bool {
        matches!(self, Kind::ExtendedS3 | Kind::Redshift | Kind::HttpEndpoint)
    }

    /// OpenSearch-family destinations only change into their own type.
    pub fn is_search(self) -> bool {
        matches!(
            self,
            Kind::Elasticsearch | Kind::Amazonopensearchservice | Kind::AmazonOpenSearchServerless
        )
    }
}

/// One destination: its id and its description document as
/// DescribeDeliveryStream reports it (secrets left out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Destination {
    pub id: String,
    pub kind: Kind,
    pub description: serde_json::Value,
    /// An HTTP endpoint's AccessKey: never described, but sent with every
    /// request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    /// A Redshift destination's Password: never described, but used to
    /// connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// One delivery stream. It is also the stored row (`firehose/delivery-streams`):
/// field names are part of the format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryStream {
    pub region: String,
    pub name: String,
    /// `DirectPut`, `KinesisStreamAsSource`, ...
    pub stream_type: String,
    pub status: Status,
    pub created_ms: i64,
    pub updated_ms: Option<i64>,
    /// VersionId: starts at 1, grows with every destination update.
    pub version: u64,
    /// The id of the buffer log of this incarnation.
    pub log_id: u64,
    pub source: Source,
    pub sse: Option<Sse>,
    pub destinations: Vec<Destination>,
    pub tags: BTreeMap<String, String>,
    /// Buffer offsets below this have been delivered (DirectPut).
    pub delivered_offset: u64,
    /// Where delivery of a Kinesis source has got: every record up to it
    /// is in a stored object. Absent: start at `Source::Kinesis.start_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinesis_checkpoint: Option<riffle_streams::access::Checkpoint>,
}

impl DeliveryStream {
    pub fn arn(&self, account: &str) -> String {
        format!(
            "arn:aws:firehose:{}:{}:deliverystream/{}",
            self.region, account, self.name
        )
    }

    pub fn is_kinesis_source(&self) -> bool {
        matches!(self.source, Source::Kinesis { .. })
    }

    pub fn encrypted(&self) -> bool {
        matches!(
            self.sse.as_ref().map(|s| s.status),
            Some(SseStatus::Enabled | SseStatus::Disabling { .. })
        )
    }
}

/// AWS's message texts.
pub struct Msg;

impl Msg {
    pub fn not_found(name: &str, account: &str) -> FirehoseError {
        FirehoseError::ResourceNotFound(format!(
            "Firehose {name} not found under account {account}."
        ))
    }

    pub fn already_exists(name: &str, account: &str) -> FirehoseError {
        FirehoseError::ResourceInUse(format!(
            "Firehose {name} under accountId {account} already exists"
        ))
    }

    pub fn not_permitted_on_kinesis_source() -> FirehoseError {
        FirehoseError::InvalidArgument(
            "This operation is not permitted on KinesisStreamAsSource delivery stream type.".into(),
        )
    }
}
