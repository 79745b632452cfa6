//! The operations, grouped by the resource they act on. Each handler takes
//! its generated input type and returns its generated output type;
//! [`dispatch`] is the one registration list.

use riffle_wire::shape::IntoValue;
use riffle_wire::Value;

use crate::error::Result;
use crate::{input, Ctx, FirehoseError, Service};

pub mod delivery_streams;
pub mod destinations;
pub mod encryption;
pub mod records;
pub mod tags;

macro_rules! operations {
    ($svc:ident, $ctx:ident, $op:ident, $body:ident; $($name:literal => $handler:path,)*) => {
        match $op {
            $($name => $handler($svc, $ctx, input($body)).await.map(IntoValue::into_value),)*
            _ => Err(FirehoseError::UnknownOperation),
        }
    };
}

/// Runs operation `op` on a validated body.
pub async fn dispatch(svc: &Service, ctx: &Ctx, op: &str, body: Value) -> Result<Value> {
    operations!(svc, ctx, op, body;
        "CreateDeliveryStream" => delivery_streams::create,
        "DeleteDeliveryStream" => delivery_streams::delete,
        "DescribeDeliveryStream" => delivery_streams::describe,
        "ListDeliveryStreams" => delivery_streams::list,
        "ListTagsForDeliveryStream" => tags::list,
        "PutRecord" => records::put_record,
        "PutRecordBatch" => records::put_record_batch,
        "StartDeliveryStreamEncryption" => encryption::start,
        "StopDeliveryStreamEncryption" => encryption::stop,
        "TagDeliveryStream" => tags::tag,
        "UntagDeliveryStream" => tags::untag,
        "UpdateDestination" => destinations::update_destination,
    )
}
