//! The PutRecords hot path in JSON, touching each body byte about once.
//!
//! [`put_records_json`] parses the common shape of a PutRecords body
//! straight into [`PutRecordsInput`]: every record's data is base64-decoded
//! into one shared buffer and handed out as slices of it. Anything it does
//! not expect — an escaped string, an unknown member, a value that breaks a
//! constraint — makes it return `None`, and the request takes the generic
//! path, which gives AWS's exact errors. So the two paths accept the same
//! bodies and produce the same inputs (a property test checks it).
//! [`put_records_output_json`] writes the response without a document tree.

use base64::Engine;
use bytes::Bytes;

use riffle_wire::shape::IntoValue;

use crate::model::{
    self, GetRecordsOutput, PutRecordsInput, PutRecordsOutput, PutRecordsRequestEntry,
};

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    /// A string without escapes, as raw bytes.
    fn string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.i;
        while let Some(&c) = self.b.get(self.i) {
            match c {
                b'"' => {
                    self.i += 1;
                    return Some(&self.b[start..self.i - 1]);
                }
                b'\\' | 0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
        None
    }

    fn text(&mut self) -> Option<String> {
        std::str::from_utf8(self.string()?).ok().map(str::to_owned)
    }
}

/// A parsed record before its data is sliced out: key, hash key, data range.
type RawEntry = (Option<String>, Option<String>, std::ops::Range<usize>);

fn hash_key_ok(s: &str) -> bool {
    s == "0"
        || (!s.is_empty()
            && s.len() <= 39
            && !s.starts_with('0')
            && s.bytes().all(|b| b.is_ascii_digit()))
}

fn stream_name_ok(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Parses a PutRecords JSON body, or `None` to fall back to the generic path.
pub fn put_records_json(body: &[u8]) -> Option<PutRecordsInput> {
    let mut p = Parser { b: body, i: 0 };
    let mut input = PutRecordsInput::default();
    let mut records: Option<Vec<RawEntry>> = None;
    // Decoded data of every record, back to back.
    let mut data = Vec::with_capacity(body.len() * 3 / 4);
    p.eat(b'{')?;
    if p.peek()? != b'}' {
        let mut seen: Vec<&[u8]> = Vec::with_capacity(2);
        loop {
            let key = p.string()?;
            p.eat(b':')?;
            // A repeated member: the generic path decides which one counts.
            if seen.contains(&key) {
                return None;
            }
            seen.push(key);
            match key {
                b"StreamName" => {
                    let s = p.text()?;
                    stream_name_ok(&s).then_some(())?;
                    input.stream_name = Some(s);
                }
                b"StreamARN" => {
                    let s = p.text()?;
                    ((1..=2048).contains(&s.len()) && model::P_STREAM_ARN.is_match(&s))
                        .then_some(())?;
                    input.stream_arn = Some(s);
                }
                b"Records" => {
                    p.eat(b'[')?;
                    let mut list = Vec::with_capacity(500);
                    if p.peek()? != b']' {
                        loop {
                            p.eat(b'{')?;
                            let (mut pk, mut ehk, mut range) = (None, None, None);
                            let mut fields: Vec<&[u8]> = Vec::with_capacity(3);
                            loop {
                                let k = p.string()?;
                                p.eat(b':')?;
                                if fields.contains(&k) {
                                    return None;
                                }
                                fields.push(k);
                                match k {
                                    b"Data" => {
                                        let raw = p.string()?;
                                        if raw.len() % 4 != 0 || range.is_some() {
                                            return None;
                                        }
                                        let start = data.len();
                                        base64::engine::general_purpose::STANDARD
                                            .decode_vec(raw, &mut data)
                                            .ok()?;
                                        if data.len() - start > 10_485_760 {
                                            return None;
                                        }
                                        range = Some(start..data.len());
                                    }
                                    b"PartitionKey" => {
                                        let s = p.text()?;
                                        (1..=256).contains(&s.chars().count()).then_some(())?;
                                        pk = Some(s);
                                    }
                                    b"ExplicitHashKey" => {
                                        let s = p.text()?;
                                        hash_key_ok(&s).then_some(())?;
                                        ehk = Some(s);
                                    }
                                    _ => return None,
                                }
                                if p.eat(b',').is_none() {
                                    break;
                                }
                            }
                            p.eat(b'}')?;
                            list.push((pk, ehk, range?));
                            if p.eat(b',').is_none() {
                                break;
                            }
                        }
                    }
                    p.eat(b']')?;
                    records = Some(list);
                }
                _ => return None,
            }
            if p.eat(b',').is_none() {
                break;
            }
        }
    }
    p.eat(b'}')?;
    p.ws();
    if p.i != body.len() {
        return None;
    }
    let records = records?;
    if records.is_empty() || records.len() > 500 {
        return None;
    }
    let shared = Bytes::from(data);
    input.records = records
        .into_iter()
        .map(|(pk, ehk, range)| PutRecordsRequestEntry {
            partition_key: pk,
            explicit_hash_key: ehk,
            data: shared.slice(range),
        })
        .collect();
    Some(input)
}

/// Writes a PutRecords response as AWS JSON 1.1.
pub fn put_records_output_json(out: &PutRecordsOutput) -> Vec<u8> {
    let mut b = Vec::with_capacity(32 + out.records.len() * 110);
    b.extend_from_slice(b"{\"FailedRecordCount\":");
    b.extend_from_slice(out.failed_record_count.unwrap_or(0).to_string().as_bytes());
    b.extend_from_slice(b",\"Records\":[");
    for (i, r) in out.records.iter().enumerate() {
        if i > 0 {
            b.push(b',');
        }
        let mut first = true;
        b.push(b'{');
        for (k, v) in [
            ("SequenceNumber", &r.sequence_number),
            ("ShardId", &r.shard_id),
            ("ErrorCode", &r.error_code),
            ("ErrorMessage", &r.error_message),
        ] {
            if let Some(v) = v {
                if !first {
                    b.push(b',');
                }
                first = false;
                b.push(b'"');
                b.extend_from_slice(k.as_bytes());
                b.extend_from_slice(b"\":");
                riffle_wire::json::write_string(&mut b, v);
            }
        }
        b.push(b'}');
    }
    b.push(b']');
    if let Some(e) = &out.encryption_type {
        b.extend_from_slice(b",\"EncryptionType\":");
        riffle_wire::json::write_string(&mut b, e);
    }
    b.push(b'}');
    b
}

/// Writes a GetRecords response as AWS JSON 1.1 (the generic encoder is
/// used for the rare response that carries ChildShards).
pub fn get_records_output_json(out: GetRecordsOutput) -> Vec<u8> {
    if out.child_shards.is_some() {
        return riffle_wire::json::encode(&out.into_value());
    }
    let size: usize = out
        .records
        .iter()
        .map(|r| r.data.len() * 4 / 3 + r.partition_key.as_ref().map_or(0, String::len) + 160)
        .sum();
    let mut b = Vec::with_capacity(size + 700);
    b.extend_from_slice(b"{\"Records\":[");
    for (i, r) in out.records.iter().enumerate() {
        if i > 0 {
            b.push(b',');
        }
        // Sequence numbers are digits: nothing to escape.
        b.extend_from_slice(b"{\"SequenceNumber\":\"");
        b.extend_from_slice(r.sequence_number.as_bytes());
        b.push(b'"');
        if let Some(t) = r.approximate_arrival_timestamp {
            b.extend_from_slice(b",\"ApproximateArrivalTimestamp\":");
            b.extend_from_slice(riffle_wire::json::epoch_seconds(t.0).as_bytes());
        }
        b.extend_from_slice(b",\"Data\":\"");
        let start = b.len();
        b.resize(
            start + base64::encoded_len(r.data.len(), true).unwrap_or(0),
            0,
        );
        let n = base64::engine::general_purpose::STANDARD
            .encode_slice(&r.data, &mut b[start..])
            .unwrap_or(0);
        b.truncate(start + n);
        b.push(b'"');
        if let Some(k) = &r.partition_key {
            b.extend_from_slice(b",\"PartitionKey\":");
            riffle_wire::json::write_string(&mut b, k);
        }
        if let Some(e) = &r.encryption_type {
            b.extend_from_slice(b",\"EncryptionType\":");
            riffle_wire::json::write_string(&mut b, e);
        }
        b.push(b'}');
    }
    b.push(b']');
    if let Some(it) = &out.next_shard_iterator {
        b.extend_from_slice(b",\"NextShardIterator\":");
        riffle_wire::json::write_string(&mut b, it);
    }
    if let Some(m) = out.millis_behind_latest {
        b.extend_from_slice(b",\"MillisBehindLatest\":");
        b.extend_from_slice(m.to_string().as_bytes());
    }
    b.push(b'}');
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use riffle_wire::shape::{self, FromValue, Timestamp};
    use riffle_wire::{Encoding, Value};

    fn generic(body: &[u8]) -> Option<PutRecordsInput> {
        let v = Encoding::Json.decode(body).ok()?;
        let m = shape::validate(&model::PUT_RECORDS_INPUT, v).ok()?;
        Some(PutRecordsInput::from_value(Value::Map(m)))
    }

    #[test]
    fn parses_what_sdks_send() {
        let body = br#"{"StreamName": "clicks", "Records": [{"Data": "aGk=", "PartitionKey": "a"}, {"Data": "", "PartitionKey": "b", "ExplicitHashKey": "42"}]}"#;
        let got = put_records_json(body).unwrap();
        assert_eq!(Some(got), generic(body));
    }

    #[test]
    fn falls_back_on_anything_unusual() {
        for body in [
            &br#"{"StreamName":"a b","Records":[{"Data":"aGk=","PartitionKey":"a"}]}"#[..],
            br#"{"StreamName":"s","Records":[]}"#,
            br#"{"StreamName":"s","Records":[{"Data":"aGk","PartitionKey":"a"}]}"#,
            br#"{"StreamName":"s","Records":[{"Data":"aGk=","PartitionKey":"a\n"}]}"#,
            br#"{"StreamName":"s","Records":[{"Data":"aGk=","PartitionKey":""}]}"#,
            br#"{"StreamName":"s","Records":[{"Data":"aGk=","PartitionKey":"a","ExplicitHashKey":"01"}]}"#,
            br#"{"StreamName":"s","Records":[{"Data":"aGk=","PartitionKey":"a","Extra":1}]}"#,
            br#"{"StreamName":"s","Records":[{"PartitionKey":"a"}]}"#,
            br#"{"StreamName":"s","Records":[{"Data":"aGk=","PartitionKey":"a"}]} x"#,
            br#"{"StreamName":"a","StreamName":"b","Records":[{"Data":"aGk=","PartitionKey":"a"}]}"#,
            br#"{"StreamName":"s","Records":[{"Data":"aGk=","PartitionKey":"a","PartitionKey":"b"}]}"#,
        ] {
            assert_eq!(put_records_json(body), None, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn response_matches_the_generic_encoder() {
        let out = PutRecordsOutput {
            failed_record_count: Some(1),
            records: vec![
                model::PutRecordsResultEntry {
                    sequence_number: Some(
                        "49546986683135544286507457936321625675700192471156785154".into(),
                    ),
                    shard_id: Some("shardId-000000000000".into()),
                    error_code: None,
                    error_message: None,
                },
                model::PutRecordsResultEntry {
                    sequence_number: None,
                    shard_id: None,
                    error_code: Some("ProvisionedThroughputExceededException".into()),
                    error_message: Some("Rate \"exceeded\"".into()),
                },
            ],
            encryption_type: Some("KMS".into()),
        };
        let none = PutRecordsOutput {
            encryption_type: Some("NONE".into()),
            ..out.clone()
        };
        assert_eq!(
            String::from_utf8(put_records_output_json(&none)).unwrap(),
            r#"{"FailedRecordCount":1,"Records":[{"SequenceNumber":"49546986683135544286507457936321625675700192471156785154","ShardId":"shardId-000000000000"},{"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate \"exceeded\""}],"EncryptionType":"NONE"}"#
        );
        for out in [out, none] {
            assert_eq!(
                put_records_output_json(&out),
                Encoding::Json.encode(&out.into_value())
            );
        }
    }

    #[test]
    fn get_records_matches_the_generic_encoder() {
        let rec = |d: &'static [u8], k: &str, kms: bool| model::Record {
            sequence_number: "49546986683135544286507457936321625675700192471156785154".into(),
            approximate_arrival_timestamp: Some(Timestamp(1_459_799_926_480)),
            data: Bytes::from_static(d),
            partition_key: Some(k.into()),
            encryption_type: kms.then(|| "KMS".into()),
        };
        for out in [
            GetRecordsOutput {
                records: vec![rec(b"\x00hi", "k\"", false), rec(b"", "x", true)],
                next_shard_iterator: Some("AAAAAAAAAAE=".into()),
                millis_behind_latest: Some(0),
                child_shards: None,
            },
            GetRecordsOutput {
                records: vec![],
                next_shard_iterator: None,
                millis_behind_latest: Some(12),
                child_shards: Some(vec![]),
            },
        ] {
            assert_eq!(
                get_records_output_json(out.clone()),
                Encoding::Json.encode(&out.into_value())
            );
        }
    }

    proptest! {
        #[test]
        fn agrees_with_the_generic_path(
            name in "[a-zA-Z0-9_.-]{0,3}|[ a-z]{1,3}",
            recs in prop::collection::vec((prop::collection::vec(any::<u8>(), 0..20), "[a-z\\\\\"é]{0,4}", proptest::option::of("0|[1-9][0-9]{0,3}|0[0-9]")), 0..4),
        ) {
            let mut body = format!("{{\"StreamName\":\"{name}\",\"Records\":[");
            for (i, (d, k, h)) in recs.iter().enumerate() {
                if i > 0 { body.push(','); }
                body.push_str(&format!("{{\"Data\":\"{}\",\"PartitionKey\":\"{k}\"", base64::engine::general_purpose::STANDARD.encode(d)));
                if let Some(h) = h { body.push_str(&format!(",\"ExplicitHashKey\":\"{h}\"")); }
                body.push('}');
            }
            body.push_str("]}");
            if let Some(fast) = put_records_json(body.as_bytes()) {
                prop_assert_eq!(Some(fast), generic(body.as_bytes()));
            }
        }
    }
}
