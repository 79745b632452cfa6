//! Error records: what Firehose writes to the S3 error output for records
//! it could not deliver or convert, one JSON document a line
//! (`http-endpoint-failed`, `format-conversion-failed`).

use base64::Engine;
use serde_json::{Map, Value as Json};

/// The names of the error members, which differ between error output
/// types in AWS's documented layouts.
pub struct Keys {
    pub code: &'static str,
    pub message: &'static str,
}

/// HTTP endpoint and most destinations: `errorCode`, `errorMessage`.
pub const LOWER: Keys = Keys {
    code: "errorCode",
    message: "errorMessage",
};

/// Record format conversion: `ErrorCode`, `ErrorMessage`.
pub const UPPER: Keys = Keys {
    code: "ErrorCode",
    message: "ErrorMessage",
};

/// One record that failed and why.
pub struct Failed<'a> {
    pub data: &'a [u8],
    pub code: &'a str,
    pub message: &'a str,
}

/// When and how often delivery was tried.
pub struct Attempt {
    pub attempts: u32,
    pub arrival_ms: i64,
    pub ended_ms: i64,
}

/// The error records of `failed`, one JSON document a line, each with
/// `extra` members appended.
pub fn lines<'a>(
    failed: impl IntoIterator<Item = Failed<'a>>,
    at: &Attempt,
    keys: &Keys,
    extra: &[(&str, Json)],
) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = Vec::new();
    for f in failed {
        let mut doc = Map::new();
        doc.insert("attemptsMade".into(), at.attempts.into());
        doc.insert("arrivalTimestamp".into(), at.arrival_ms.into());
        doc.insert(keys.code.into(), f.code.into());
        doc.insert(keys.message.into(), f.message.into());
        doc.insert("attemptEndingTimestamp".into(), at.ended_ms.into());
        doc.insert("rawData".into(), b64.encode(f.data).into());
        for (k, v) in extra {
            doc.insert((*k).into(), v.clone());
        }
        out.extend_from_slice(Json::Object(doc).to_string().as_bytes());
        out.push(b'\n');
    }
    out
}
