//! The error records Firehose writes to S3 for data it could not process
//! or deliver: one JSON document a line, as AWS documents them for
//! `processing-failed`, `http-endpoint-failed` and the other error output
//! types:
//!
//! `{"attemptsMade", "arrivalTimestamp", "errorCode", "errorMessage",
//! "attemptEndingTimestamp", "rawData"}` plus `lambdaArn` for records a
//! Lambda transformation failed on.

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
    pub lambda_arn: Option<&'a str>,
}

impl FailedRecord<'_> {
    /// Appends this record's line to `out`, fields in AWS's order.
    pub fn write_line(&self, out: &mut Vec<u8>) {
        let text = |s: &str| serde_json::Value::from(s).to_string();
        let mut line = format!(
            "{{\"attemptsMade\":{},\"arrivalTimestamp\":{},\"errorCode\":{},\"errorMessage\":{},\"attemptEndingTimestamp\":{},\"rawData\":{}",
            self.attempts,
            self.arrival_ms,
            text(self.code),
            text(self.message),
            self.ended_ms,
            text(&base64::engine::general_purpose::STANDARD.encode(self.raw)),
        );
        if let Some(arn) = self.lambda_arn {
            line.push_str(&format!(",\"lambdaArn\":{}", text(arn)));
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
            lambda_arn: Some("arn:aws:lambda:us-east-1:000000000000:function:f"),
        };
        assert_eq!(
            String::from_utf8(lines([r])).unwrap(),
            "{\"attemptsMade\":4,\"arrivalTimestamp\":1510254469000,\"errorCode\":\"Lambda.FunctionError\",\"errorMessage\":\"The \\\"function\\\" failed\",\"attemptEndingTimestamp\":1510254905201,\"rawData\":\"aGk=\",\"lambdaArn\":\"arn:aws:lambda:us-east-1:000000000000:function:f\"}\n"
        );
    }
}
