//! Rows as versioned JSON documents: `{"v": <version>, <the row's fields>}`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::MetaError;

/// A row type: serde for its fields, plus the format version written with
/// it. Field names are part of the format; a change that old readers would
/// misread takes a new `VERSION` and an [`Row::upgrade`] from the old one.
/// A row type must serialise to a JSON object and must not have a field
/// named `v`.
pub trait Row: Serialize + DeserializeOwned {
    /// The format version this build writes (and reads without upgrading).
    const VERSION: u32;

    /// Rewrites a document of an older `version` (without its `"v"`) into
    /// the current layout; `None` if that version cannot be read.
    fn upgrade(
        version: u64,
        doc: serde_json::Map<String, serde_json::Value>,
    ) -> Option<serde_json::Map<String, serde_json::Value>> {
        let _ = (version, doc);
        None
    }
}

/// The stored bytes of `row`: `{"v":N,` then the row's fields in
/// declaration order.
pub fn encode<V: Row>(table: &str, key: &str, row: &V) -> Result<Vec<u8>, MetaError> {
    let body = serde_json::to_vec(row).map_err(|source| MetaError::Encode {
        table: table.to_owned(),
        key: key.to_owned(),
        source,
    })?;
    if body.first() != Some(&b'{') {
        return Err(MetaError::NotAnObject {
            table: table.to_owned(),
        });
    }
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(b"{\"v\":");
    out.extend_from_slice(V::VERSION.to_string().as_bytes());
    if body.len() > 2 {
        out.push(b',');
    }
    out.extend_from_slice(&body[1..]);
    Ok(out)
}

#[derive(Deserialize)]
struct Version {
    v: u64,
}

/// Reads stored bytes as a `V`, upgrading older versions.
pub fn decode<V: Row>(table: &str, key: &str, bytes: &[u8]) -> Result<V, MetaError> {
    let bad = |source| MetaError::Decode {
        table: table.to_owned(),
        key: key.to_owned(),
        source,
    };
    let Version { v } = serde_json::from_slice(bytes).map_err(bad)?;
    if v == u64::from(V::VERSION) {
        // The row type ignores the `"v"` member like any unknown one.
        return serde_json::from_slice(bytes).map_err(bad);
    }
    let unreadable = || MetaError::Version {
        table: table.to_owned(),
        key: key.to_owned(),
        found: v,
        supported: V::VERSION,
    };
    if v > u64::from(V::VERSION) {
        return Err(unreadable());
    }
    let mut doc: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(bytes).map_err(bad)?;
    doc.remove("v");
    let doc = V::upgrade(v, doc).ok_or_else(unreadable)?;
    serde_json::from_value(serde_json::Value::Object(doc)).map_err(bad)
}
