//! Data Streams' console endpoint, `GET /_riffle/console/api/kinesis/<name>`:
//! what the stream page charts that no AWS API reports. AWS shows these as
//! CloudWatch metrics; Riffle's `/metrics` has the same figures for every
//! stream, and this answers for one:
//!
//! - `incomingRecords`, `incomingBytes`, `outgoingRecords`,
//!   `outgoingBytes`: counters since the server started (CloudWatch's
//!   `IncomingRecords`, `IncomingBytes`, `GetRecords.Records`,
//!   `GetRecords.Bytes`, with SubscribeToShard's reads included);
//! - `incomingRecordsPerSecond`, `outgoingRecordsPerSecond`: the rates over
//!   the last minute;
//! - `iteratorAgeMilliseconds`: the largest of the shards' ages
//!   (`GetRecords.IteratorAgeMilliseconds`);
//! - `shards`: each open shard, and each closed one read within the last
//!   minute, with the enhanced shard-level metrics: its own counters
//!   (`incomingRecords`, `incomingBytes`, `outgoingRecords`,
//!   `outgoingBytes`) and `iteratorAgeMilliseconds`, the
//!   `MillisBehindLatest` its latest GetRecords response or
//!   SubscribeToShard event carried within the last minute, 0 when none.
//!
//! A stream that does not exist gets Data Streams' `ResourceNotFoundException`.

use riffle_streams::state::Msg;
use riffle_streams::traffic::{Figures, ShardTraffic};
use riffle_streams::Service;
use riffle_wire::{Map, Value};

use crate::platform::Response;

/// The answer for `rest` (the stream's name) in `region`.
pub fn stream(svc: &Service, rest: &str, region: &str) -> Response {
    let name = crate::s3::request::decode_path(rest);
    let figures = (!name.contains('/'))
        .then(|| svc.stream_figures(region, &name))
        .flatten();
    match figures {
        Some((f, shards)) => crate::console::json(document(&name, &f, &shards)),
        None => crate::kinesis::kinesis_error(
            riffle_wire::Encoding::Json,
            &Msg::stream_not_found(&name, svc.account()),
        ),
    }
}

/// A shard's latest iterator age within the last minute, 0 when none.
fn age(s: &ShardTraffic) -> u64 {
    s.figures.iterator_age_ms.unwrap_or(0)
}

fn int(n: u64) -> Value {
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// The endpoint's document for one stream.
pub fn document(name: &str, f: &Figures, shards: &[ShardTraffic]) -> Value {
    let mut m = Map::new();
    m.put("streamName", Value::Str(name.to_owned()));
    m.put("incomingRecords", int(f.records_in));
    m.put("incomingBytes", int(f.bytes_in));
    m.put("outgoingRecords", int(f.records_out));
    m.put("outgoingBytes", int(f.bytes_out));
    m.put("incomingRecordsPerSecond", Value::Float(f.in_per_second));
    m.put("outgoingRecordsPerSecond", Value::Float(f.out_per_second));
    m.put(
        "iteratorAgeMilliseconds",
        int(shards.iter().map(age).max().unwrap_or(0)),
    );
    let shards = shards
        .iter()
        .map(|a| {
            let mut s = Map::new();
            s.put("shardId", Value::Str(a.shard_id.clone()));
            s.put("open", Value::Bool(a.open));
            s.put("incomingRecords", int(a.figures.records_in));
            s.put("incomingBytes", int(a.figures.bytes_in));
            s.put("outgoingRecords", int(a.figures.records_out));
            s.put("outgoingBytes", int(a.figures.bytes_out));
            s.put("iteratorAgeMilliseconds", int(age(a)));
            Value::Map(s)
        })
        .collect();
    m.put("shards", Value::List(shards));
    Value::Map(m)
}
