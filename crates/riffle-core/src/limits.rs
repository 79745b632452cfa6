//! Every Kinesis Data Streams limit Riffle enforces, in one place.

/// Largest hash key: 2^128 - 1.
pub const MAX_HASH_KEY: u128 = u128::MAX;
/// Records in one PutRecords call.
pub const PUT_RECORDS_MAX_RECORDS: usize = 500;
/// Bytes (data + partition keys) in one PutRecords call.
pub const PUT_RECORDS_MAX_BYTES: usize = 5 * 1024 * 1024;
/// Default and smallest per-stream maximum record size, KiB.
pub const DEFAULT_MAX_RECORD_SIZE_KIB: i64 = 1024;
/// GetRecords: records per call.
pub const GET_RECORDS_MAX_RECORDS: usize = 10_000;
/// GetRecords: bytes per call.
pub const GET_RECORDS_MAX_BYTES: usize = 10 * 1024 * 1024;
/// Shard iterators expire after this long.
pub const ITERATOR_TTL_MS: i64 = 300_000;
/// Pagination tokens of ListShards / ListStreamConsumers expire after this long.
pub const NEXT_TOKEN_TTL_MS: i64 = 300_000;
/// Retention bounds, hours.
pub const MIN_RETENTION_HOURS: i64 = 24;
pub const MAX_RETENTION_HOURS: i64 = 8760;
pub const DEFAULT_RETENTION_HOURS: i64 = 24;
/// Shards an on-demand stream starts with.
pub const ON_DEMAND_INITIAL_SHARDS: u32 = 4;
/// Default account shard limit (AWS's default in most regions).
pub const DEFAULT_SHARD_LIMIT: u32 = 20_000;
/// Default number of on-demand streams per account.
pub const DEFAULT_ON_DEMAND_STREAM_LIMIT: u32 = 50;
/// Shards in one stream.
pub const MAX_SHARDS_PER_STREAM: u32 = 10_000;
/// Tags on one stream or consumer.
pub const MAX_TAGS: usize = 50;
/// Enhanced fan-out consumers per stream.
pub const MAX_CONSUMERS: usize = 20;
/// UpdateShardCount calls per stream per rolling 24 hours.
pub const MAX_SCALINGS_PER_DAY: usize = 10;
/// SubscribeToShard subscriptions last this long.
pub const SUBSCRIPTION_TTL_MS: i64 = 300_000;
/// Default page sizes; larger requested pages are capped to them.
pub const LIST_STREAMS_DEFAULT: usize = 100;
pub const LIST_SHARDS_DEFAULT: usize = 1000;
pub const LIST_CONSUMERS_DEFAULT: usize = 100;
pub const DESCRIBE_STREAM_DEFAULT: usize = 100;
/// Provisioned per-shard throughput, when throttling is on.
pub const SHARD_WRITE_BYTES_PER_SEC: u64 = 1024 * 1024;
pub const SHARD_WRITE_RECORDS_PER_SEC: u64 = 1000;
pub const SHARD_READ_BYTES_PER_SEC: u64 = 2 * 1024 * 1024;
pub const SHARD_READ_CALLS_PER_SEC: u64 = 5;
