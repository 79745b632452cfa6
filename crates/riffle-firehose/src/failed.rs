//! The error records Firehose writes to S3 for data it could not process
//! or deliver: one JSON document a line, as AWS documents them for
//! `processing-failed`, `http-endpoint-failed` and the other error output
//! types:
//!
//! `{"attemptsMade", "arrivalTimestamp", "errorCode", "errorMessage",
//! "attemptEndingTimestamp", "rawData"}` plus `lambdaArn` for records a
//! Lambda transformation failed on; `format-conversion-failed` records
//! spell the error members `ErrorCode` and `ErrorMessage`, as AWS's page on
//! conversion errors shows, and add `dataCatalogTable`.

/// The names of the error members.
#[derive(Debug, PartialEq, Eq)]
pub struct Keys {
    pub code: &'static str,
    pub message: &'static str,
}

/// `errorCode`, `errorMessage`: every error output type but conversion.
pub const LOWER: Keys = Keys {
    code: "errorCode",
    message: "errorMessage",
};

/// `ErrorCode`, `ErrorMessage`: `format-conversion-failed`.
pub const UPPER: Keys = Keys {
    code: "ErrorCode",
    message: "ErrorMessage",
};

use base64::Engine;

/// One record given up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRecord<'a> {
    pub attempts: u32,
    pub arrival_ms: i64,
    pub code: &'a str,
    pub message: &'a str,
    pub ended_ms: i64,
    pub raw: &'a [u8],
    /// Members after `rawData`: `lambdaArn`, `dataCatalogTable`.
    pub extra: Vec<(&'static str, serde_json::Value)>,
    pub keys: &'static Keys,
}

impl FailedRecord<'_> {
    /// Appends this record's line to `out`, fields in AWS's order.
    pub fn write_line(&self, out: &mut Vec<u8>) {
        let text = |s: &str| serde_json::Value::from(s).to_string();
        let mut line = format!(
            "{{\"attemptsMade\":{},\"arrivalTimestamp\":{},\"{}\":{},\"{}\":{},\"attemptEndingTimestamp\":{},\"rawData\":{}",
            self.attempts,
            self.arrival_ms,
            self.keys.code,
            text(self.code),
            self.keys.message,
            text(self.message),
            self.ended_ms,
            text(&base64::engine::general_purpose::STANDARD.encode(self.raw)),
        );
        for (k, v) in &self.extra {
            line.push_str(&format!(",{}:{v}", text(k)));
        }
        line.push_str("}\n");
        out.extend_from_slice(line.as_bytes());
    }
}

/// The body of an error object holding `records`.
pub fn lines<'a>(records: impl IntoIterator<Item = FailedRecord<'a>>) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        r.write_line(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_field_order() {
        let r = FailedRecord {
            attempts: 4,
            arrival_ms: 1510254469000,
            code: "Lambda.FunctionError",
            message: "The \"function\" failed",
            ended_ms: 1510254905201,
            raw: b"hi",
            extra: vec![(
                "lambdaArn",
                "arn:aws:lambda:us-east-1:000000000000:function:f".into(),
            )],
            keys: &LOWER,
        };
        assert_eq!(
            String::from_utf8(lines([r])).unwrap(),
            "{\"attemptsMade\":4,\"arrivalTimestamp\":1510254469000,\"errorCode\":\"Lambda.FunctionError\",\"errorMessage\":\"The \\\"function\\\" failed\",\"attemptEndingTimestamp\":1510254905201,\"rawData\":\"aGk=\",\"lambdaArn\":\"arn:aws:lambda:us-east-1:000000000000:function:f\"}\n"
        );
    }
}
