//! The operations, grouped by the resource they act on. Each handler takes
//! its generated input type and returns its generated output type (`()` for
//! operations AWS answers with an empty body); [`dispatch`] is the one
//! registration list.

use riffle_wire::shape::IntoValue;
use riffle_wire::Value;

use crate::error::Result;
use crate::{input, Ctx, KinesisError, Service};

pub mod consumers;
pub mod records;
pub mod settings;
pub mod shards;
pub mod streams;
pub mod tags;
pub mod throttle;

macro_rules! operations {
    ($svc:ident, $ctx:ident, $op:ident, $body:ident; $($name:literal => $handler:path,)*) => {
        match $op {
            $($name => $handler($svc, $ctx, input($body)).await.map(IntoValue::into_value),)*
            _ => Err(KinesisError::UnknownOperation),
        }
    };
}

/// Runs operation `op` on a validated body.
pub async fn dispatch(svc: &Service, ctx: &Ctx, op: &str, body: Value) -> Result<Value> {
    operations!(svc, ctx, op, body;
        "AddTagsToStream" => tags::add_tags_to_stream,
        "CreateStream" => streams::create_stream,
        "DecreaseStreamRetentionPeriod" => settings::decrease_retention,
        "DeleteResourcePolicy" => settings::delete_resource_policy,
        "DeleteStream" => streams::delete_stream,
        "DeregisterStreamConsumer" => consumers::deregister,
        "DescribeAccountSettings" => settings::describe_account_settings,
        "DescribeLimits" => settings::describe_limits,
        "DescribeStream" => streams::describe_stream,
        "DescribeStreamConsumer" => consumers::describe,
        "DescribeStreamSummary" => streams::describe_stream_summary,
        "DisableEnhancedMonitoring" => settings::disable_enhanced_monitoring,
        "EnableEnhancedMonitoring" => settings::enable_enhanced_monitoring,
        "GetRecords" => records::get_records,
        "GetResourcePolicy" => settings::get_resource_policy,
        "GetShardIterator" => records::get_shard_iterator,
        "IncreaseStreamRetentionPeriod" => settings::increase_retention,
        "ListShards" => shards::list_shards,
        "ListStreamConsumers" => consumers::list,
        "ListStreams" => streams::list_streams,
        "ListTagsForResource" => tags::list_tags_for_resource,
        "ListTagsForStream" => tags::list_tags_for_stream,
        "MergeShards" => shards::merge_shards,
        "PutRecord" => records::put_record,
        "PutRecords" => records::put_records,
        "PutResourcePolicy" => settings::put_resource_policy,
        "RegisterStreamConsumer" => consumers::register,
        "RemoveTagsFromStream" => tags::remove_tags_from_stream,
        "SplitShard" => shards::split_shard,
        "StartStreamEncryption" => settings::start_encryption,
        "StopStreamEncryption" => settings::stop_encryption,
        "TagResource" => tags::tag_resource,
        "UntagResource" => tags::untag_resource,
        "UpdateAccountSettings" => settings::update_account_settings,
        "UpdateMaxRecordSize" => settings::update_max_record_size,
        "UpdateShardCount" => shards::update_shard_count,
        "UpdateStreamMode" => settings::update_stream_mode,
        "UpdateStreamRecordDistributionStrategy" => settings::update_record_distribution,
        "UpdateStreamWarmThroughput" => settings::update_warm_throughput,
    )
}

/// Pages through `items` after `start` (exclusive), `limit` at a time.
pub(crate) fn page<T: Clone>(items: &[T], skip: usize, limit: usize) -> (Vec<T>, bool) {
    let rest = items.get(skip..).unwrap_or(&[]);
    let out: Vec<T> = rest.iter().take(limit).cloned().collect();
    let more = rest.len() > out.len();
    (out, more)
}
