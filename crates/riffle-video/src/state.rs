//! A video stream and a signaling channel: their stored rows (also their
//! live pictures) and status machines: CREATING → ACTIVE, ACTIVE →
//! UPDATING → ACTIVE, DELETING → gone. A stream's edge configuration has
//! its own: SYNCING → IN_SYNC, DELETING → gone.
//!
//! Configurations a request hands over whole (image generation,
//! notification, edge, media storage) are kept as the model's types and
//! stored in AWS's JSON form ([`wire`]), so they are reported back exactly.

use std::collections::BTreeMap;

use riffle_meta::cells::Resource;
use riffle_meta::Row;
use serde::{Deserialize, Serialize};

use crate::model;

/// A resource's Status with the time a transition completes.
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

    fn due(&self, now_ms: i64) -> bool {
        matches!(
            *self,
            Status::Creating { until_ms } | Status::Updating { until_ms } if now_ms >= until_ms
        )
    }

    /// Completes a due CREATING or UPDATING; whether it did.
    fn settle(&mut self, now_ms: i64) -> bool {
        let due = self.due(now_ms);
        if due {
            *self = Status::Active;
        }
        due
    }

    fn is_gone(&self, now_ms: i64) -> bool {
        matches!(*self, Status::Deleting { until_ms } if now_ms >= until_ms)
    }
}

/// Where a stream's edge configuration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum EdgeSync {
    Syncing { until_ms: i64 },
    InSync,
    Deleting { until_ms: i64 },
}

impl EdgeSync {
    pub fn as_str(&self) -> &'static str {
        match self {
            EdgeSync::Syncing { .. } => "SYNCING",
            EdgeSync::InSync => "IN_SYNC",
            EdgeSync::Deleting { .. } => "DELETING",
        }
    }
}

/// A stream's edge configuration (StartEdgeConfigurationUpdate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    #[serde(with = "wire")]
    pub config: model::EdgeConfig,
    pub sync: EdgeSync,
    pub created_ms: i64,
    pub updated_ms: i64,
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
    /// Changes with every UpdateStream, UpdateDataRetention and
    /// UpdateStreamStorageConfiguration.
    pub version: String,
    pub status: Status,
    pub created_ms: i64,
    pub retention_hours: i64,
    pub tags: BTreeMap<String, String>,
    /// DefaultStorageTier (HOT when never set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wire_opt")]
    pub image_generation: Option<model::ImageGenerationConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wire_opt")]
    pub notification: Option<model::NotificationConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<Edge>,
}

impl Row for Stream {
    const VERSION: u32 = 1;
}

impl Stream {
    fn edge_due(&self, now_ms: i64) -> bool {
        matches!(
            self.edge.as_ref().map(|e| e.sync),
            Some(EdgeSync::Syncing { until_ms } | EdgeSync::Deleting { until_ms }) if now_ms >= until_ms
        )
    }
}

impl Resource for Stream {
    fn settle(&mut self, now_ms: i64) -> bool {
        let mut changed = self.status.settle(now_ms);
        if self.edge_due(now_ms) {
            changed = true;
            match self.edge.as_ref().map(|e| e.sync) {
                Some(EdgeSync::Deleting { .. }) => self.edge = None,
                _ => {
                    if let Some(e) = self.edge.as_mut() {
                        e.sync = EdgeSync::InSync;
                    }
                }
            }
        }
        changed
    }

    fn is_settled(&self, now_ms: i64) -> bool {
        !self.status.due(now_ms) && !self.edge_due(now_ms)
    }

    fn is_gone(&self, now_ms: i64) -> bool {
        self.status.is_gone(now_ms)
    }
}

/// A signaling channel, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    pub region: String,
    pub name: String,
    pub arn: String,
    /// SINGLE_MASTER.
    pub channel_type: String,
    pub message_ttl_seconds: i64,
    /// Changes with every UpdateSignalingChannel.
    pub version: String,
    pub status: Status,
    pub created_ms: i64,
    pub tags: BTreeMap<String, String>,
    /// UpdateMediaStorageConfiguration's last configuration (DISABLED when
    /// never set).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wire_opt")]
    pub media_storage: Option<model::MediaStorageConfiguration>,
}

impl Row for Channel {
    const VERSION: u32 = 1;
}

impl Channel {
    /// The stream this channel stores its media in (media storage ENABLED).
    pub fn storage_stream(&self) -> Option<&str> {
        self.media_storage
            .as_ref()
            .filter(|m| m.status == "ENABLED")
            .and_then(|m| m.stream_arn.as_deref())
    }
}

impl Resource for Channel {
    fn settle(&mut self, now_ms: i64) -> bool {
        self.status.settle(now_ms)
    }

    fn is_settled(&self, now_ms: i64) -> bool {
        !self.status.due(now_ms)
    }

    fn is_gone(&self, now_ms: i64) -> bool {
        self.status.is_gone(now_ms)
    }
}

/// Serde for a model type: stored as its AWS JSON document.
pub mod wire {
    use riffle_wire::shape::{FromValue, IntoValue};
    use riffle_wire::value::Map;
    use riffle_wire::Value;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn to_json(v: Value) -> serde_json::Value {
        use serde_json::Value as J;
        match v {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(b),
            Value::Int(n) | Value::Timestamp(n) => J::from(n),
            Value::Float(f) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s),
            // No configuration kept this way has a blob member.
            Value::Bytes(_) => J::Null,
            Value::List(l) => J::Array(l.into_iter().map(to_json).collect()),
            Value::Map(m) => J::Object(m.0.into_iter().map(|(k, v)| (k, to_json(v))).collect()),
        }
    }

    pub(crate) fn from_json(j: serde_json::Value) -> Value {
        use serde_json::Value as J;
        match j {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or_default()),
            },
            J::String(s) => Value::Str(s),
            J::Array(a) => Value::List(a.into_iter().map(from_json).collect()),
            J::Object(o) => {
                Value::Map(Map(o.into_iter().map(|(k, v)| (k, from_json(v))).collect()))
            }
        }
    }

    pub fn serialize<T: IntoValue + Clone, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        to_json(v.clone().into_value()).serialize(s)
    }

    pub fn deserialize<'de, T: FromValue, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        Ok(T::from_value(from_json(serde_json::Value::deserialize(d)?)))
    }
}

/// [`wire`] for an optional member.
pub mod wire_opt {
    use riffle_wire::shape::{FromValue, IntoValue};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: IntoValue + Clone, S: Serializer>(
        v: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        v.as_ref()
            .map(|v| super::wire::to_json(v.clone().into_value()))
            .serialize(s)
    }

    pub fn deserialize<'de, T: FromValue, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        Ok(Option::<serde_json::Value>::deserialize(d)?
            .map(|j| T::from_value(super::wire::from_json(j))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Stream {
        Stream {
            region: "us-east-1".into(),
            name: "cam".into(),
            arn: "arn:aws:kinesisvideo:us-east-1:000000000000:stream/cam/1".into(),
            device_name: None,
            media_type: None,
            kms_key_id: "k".into(),
            version: "v".into(),
            status: Status::Active,
            created_ms: 1,
            retention_hours: 1,
            tags: BTreeMap::new(),
            storage_tier: None,
            image_generation: None,
            notification: None,
            edge: None,
        }
    }

    #[test]
    fn rows_of_the_first_layout_still_read() {
        let old = r#"{"region":"us-east-1","name":"cam","arn":"arn:aws:kinesisvideo:us-east-1:000000000000:stream/cam/1","kms_key_id":"k","version":"v","status":{"state":"active"},"created_ms":1,"retention_hours":1,"tags":{}}"#;
        let s: Stream = serde_json::from_str(old).unwrap();
        assert_eq!(s, stream());
        assert_eq!(serde_json::to_string(&s).unwrap(), old);
    }

    #[test]
    fn configurations_round_trip_in_wire_form() {
        let mut s = stream();
        s.notification = Some(model::NotificationConfiguration {
            status: "ENABLED".into(),
            destination_config: model::NotificationDestinationConfig {
                uri: "arn:aws:sns:us-east-1:000000000000:topic".into(),
            },
        });
        s.image_generation = Some(model::ImageGenerationConfiguration {
            status: "ENABLED".into(),
            image_selector_type: "SERVER_TIMESTAMP".into(),
            destination_config: model::ImageGenerationDestinationConfig {
                uri: "s3://bucket/p".into(),
                destination_region: "us-east-1".into(),
            },
            sampling_interval: 3000,
            format: "JPEG".into(),
            format_config: Some([("JPEGQuality".to_owned(), "80".to_owned())].into()),
            width_pixels: Some(640),
            height_pixels: None,
        });
        let text = serde_json::to_string(&s).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            doc["notification"],
            serde_json::json!({"Status": "ENABLED",
                "DestinationConfig": {"Uri": "arn:aws:sns:us-east-1:000000000000:topic"}})
        );
        assert_eq!(
            doc["image_generation"]["FormatConfig"],
            serde_json::json!({"JPEGQuality": "80"})
        );
        let back: Stream = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn edge_sync_then_deletion() {
        let mut s = stream();
        s.edge = Some(Edge {
            config: model::EdgeConfig::default(),
            sync: EdgeSync::Syncing { until_ms: 10 },
            created_ms: 0,
            updated_ms: 0,
        });
        assert!(s.is_settled(9));
        assert!(!s.is_settled(10));
        assert!(s.settle(10));
        assert_eq!(s.edge.as_ref().unwrap().sync, EdgeSync::InSync);
        s.edge.as_mut().unwrap().sync = EdgeSync::Deleting { until_ms: 20 };
        assert!(s.settle(20));
        assert!(s.edge.is_none());
        assert!(s.is_settled(30));
    }
}
