//! The operations. [`dispatch`] is the one registration list and serves
//! every operation of the model; an operation a newer model adds answers
//! `UnsupportedOperationException` until it is listed here.
//! Streams and tags are here; signaling channels in [`crate::channels`],
//! a stream's other configurations in [`crate::configs`].

use std::collections::BTreeMap;

use rand::Rng;
use riffle_wire::shape::{IntoValue, Timestamp};
use riffle_wire::Value;

use crate::error::{Result, VideoError};
use crate::state::{Status, Stream};
use crate::{channels, configs, input, key, model, Ctx, Service};

/// Tags a stream may carry.
pub const MAX_TAGS: usize = 50;
/// The longest data retention, in hours (ten years).
pub const MAX_RETENTION_HOURS: i64 = 87_600;

macro_rules! operations {
    ($svc:ident, $ctx:ident, $op:ident, $body:ident; $($name:literal => $handler:path,)*) => {
        match $op {
            $($name => $handler($svc, $ctx, input($body)).await.map(IntoValue::into_value),)*
            other if model::OPERATIONS.iter().any(|(n, _)| *n == other) => {
                Err(VideoError::UnsupportedOperation(other.to_owned()))
            }
            _ => Err(VideoError::UnknownOperation),
        }
    };
}

/// Runs operation `op` on a validated body.
pub async fn dispatch(svc: &Service, ctx: &Ctx, op: &str, body: Value) -> Result<Value> {
    operations!(svc, ctx, op, body;
        "CreateSignalingChannel" => channels::create,
        "CreateStream" => create,
        "DeleteEdgeConfiguration" => configs::delete_edge,
        "DeleteSignalingChannel" => channels::delete,
        "DeleteStream" => delete,
        "DescribeEdgeConfiguration" => configs::describe_edge,
        "DescribeImageGenerationConfiguration" => configs::describe_image_generation,
        "DescribeMappedResourceConfiguration" => configs::describe_mapped_resource,
        "DescribeMediaStorageConfiguration" => channels::describe_media_storage,
        "DescribeNotificationConfiguration" => configs::describe_notification,
        "DescribeSignalingChannel" => channels::describe,
        "DescribeStream" => describe,
        "DescribeStreamStorageConfiguration" => configs::describe_storage,
        "GetDataEndpoint" => data_endpoint,
        "GetSignalingChannelEndpoint" => channels::endpoint,
        "ListEdgeAgentConfigurations" => configs::list_edge_agent,
        "ListSignalingChannels" => channels::list,
        "ListStreams" => list,
        "ListTagsForResource" => list_tags_for_resource,
        "ListTagsForStream" => list_tags,
        "StartEdgeConfigurationUpdate" => configs::start_edge,
        "TagResource" => tag_resource,
        "TagStream" => tag,
        "UntagResource" => untag_resource,
        "UntagStream" => untag,
        "UpdateDataRetention" => update_retention,
        "UpdateImageGenerationConfiguration" => configs::update_image_generation,
        "UpdateMediaStorageConfiguration" => channels::update_media_storage,
        "UpdateNotificationConfiguration" => configs::update_notification,
        "UpdateSignalingChannel" => channels::update,
        "UpdateStream" => update,
        "UpdateStreamStorageConfiguration" => configs::update_storage,
    )
}

// ---------------------------------------------------------------------
// Texts and names

pub(crate) fn not_found() -> VideoError {
    VideoError::ResourceNotFound("The requested stream is not found or not active.".into())
}

pub(crate) fn arn(region: &str, account: &str, name: &str, created_ms: i64) -> String {
    format!("arn:aws:kinesisvideo:{region}:{account}:stream/{name}/{created_ms}")
}

/// A signaling channel's ARN.
pub(crate) fn channel_arn(region: &str, account: &str, name: &str, created_ms: i64) -> String {
    format!("arn:aws:kinesisvideo:{region}:{account}:channel/{name}/{created_ms}")
}

/// The region, resource kind and name a Kinesis Video ARN names.
pub(crate) fn parse_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let rest = arn.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let _partition = parts.next()?;
    if parts.next()? != "kinesisvideo" {
        return None;
    }
    let region = parts.next()?;
    let _account = parts.next()?;
    let (kind, rest) = parts.next()?.split_once('/')?;
    let (name, _created) = rest.rsplit_once('/')?;
    Some((region, kind, name))
}

/// A new stream version: 20 letters and digits.
pub(crate) fn new_version() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..20)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// The registry key of the stream a request names by StreamName or
/// StreamARN (both: they must name the same stream).
pub(crate) fn locate(
    svc: &Service,
    ctx: &Ctx,
    name: Option<&str>,
    stream_arn: Option<&str>,
) -> Result<String> {
    match (name, stream_arn) {
        (None, None) => Err(VideoError::InvalidArgument(
            "Either StreamName or StreamARN must be specified.".into(),
        )),
        (name, Some(a)) => {
            let (region, kind, by_arn) = parse_arn(a).ok_or_else(not_found)?;
            if kind != "stream" {
                return Err(not_found());
            }
            if name.is_some_and(|n| n != by_arn) {
                return Err(VideoError::InvalidArgument(format!(
                    "StreamName {} and StreamARN {a} name different streams.",
                    name.unwrap_or_default()
                )));
            }
            let k = key(region, by_arn);
            match svc.streams.get(&k) {
                Some(s) if s.arn == a => Ok(k),
                _ => Err(not_found()),
            }
        }
        (Some(n), None) => {
            let k = key(&ctx.region, n);
            svc.streams.get(&k).map(|_| k).ok_or_else(not_found)
        }
    }
}

/// The name a NextToken continues after (tokens are hex of that name).
pub(crate) fn after_token(token: Option<&str>) -> Result<Option<String>> {
    match token.filter(|t| !t.is_empty()) {
        Some(t) => Ok(Some(
            hex::decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    VideoError::InvalidArgument(format!("NextToken {t} is not valid."))
                })?,
        )),
        None => Ok(None),
    }
}

/// The NextToken of a page that ends with `last` when more follow.
pub(crate) fn next_token(more: bool, last: Option<&str>) -> Option<String> {
    more.then(|| last.map(hex::encode)).flatten()
}

fn stream_info(s: &Stream) -> model::StreamInfo {
    model::StreamInfo {
        device_name: s.device_name.clone(),
        stream_name: Some(s.name.clone()),
        stream_arn: Some(s.arn.clone()),
        media_type: s.media_type.clone(),
        kms_key_id: Some(s.kms_key_id.clone()),
        version: Some(s.version.clone()),
        status: Some(s.status.as_str().into()),
        creation_time: Some(Timestamp(s.created_ms)),
        data_retention_in_hours: Some(s.retention_hours),
    }
}

pub(crate) fn merged_tags(
    cur: &BTreeMap<String, String>,
    add: impl IntoIterator<Item = (String, String)>,
) -> Result<BTreeMap<String, String>> {
    let mut next = cur.clone();
    next.extend(add);
    if next.len() > MAX_TAGS {
        return Err(VideoError::TagsPerResourceExceededLimit(format!(
            "A resource can have at most {MAX_TAGS} tags."
        )));
    }
    Ok(next)
}

// ---------------------------------------------------------------------
// Streams

/// CreateStream: CREATING, then ACTIVE after the status delay.
pub async fn create(
    svc: &Service,
    ctx: &Ctx,
    i: model::CreateStreamInput,
) -> Result<model::CreateStreamOutput> {
    let retention = i.data_retention_in_hours.unwrap_or(0);
    if retention > MAX_RETENTION_HOURS {
        return Err(VideoError::InvalidArgument(format!(
            "DataRetentionInHours must be at most {MAX_RETENTION_HOURS}."
        )));
    }
    let tags = merged_tags(&BTreeMap::new(), i.tags.unwrap_or_default())?;
    let account = svc.account().to_owned();
    let now = svc.now_ms();
    let name = i.stream_name;
    let region = ctx.region.clone();
    let stream = Stream {
        region: region.clone(),
        name: name.clone(),
        arn: arn(&region, &account, &name, now),
        device_name: i.device_name,
        media_type: i.media_type,
        kms_key_id: i
            .kms_key_id
            .unwrap_or_else(|| format!("arn:aws:kms:{region}:{account}:alias/aws/kinesisvideo")),
        version: new_version(),
        status: Status::Creating {
            until_ms: now + svc.cfg.status_delay_ms,
        },
        created_ms: now,
        retention_hours: retention,
        tags,
        storage_tier: i
            .stream_storage_configuration
            .map(|c| c.default_storage_tier),
        image_generation: None,
        notification: None,
        edge: None,
    };
    let limit = svc.cfg.stream_limit;
    let created = svc
        .streams
        .create(&key(&region, &name), |live| {
            if live
                .iter()
                .any(|(_, _, s)| s.region == region && s.name == name)
            {
                return Err(VideoError::ResourceInUse(format!(
                    "The stream {name} already exists."
                )));
            }
            if live.iter().filter(|(_, _, s)| s.region == region).count() >= limit {
                return Err(VideoError::AccountStreamLimitExceeded(format!(
                    "The account has reached its limit of {limit} streams in {region}."
                )));
            }
            // A stream's log is named by its creation time and ten bits of
            // its name: streams created in the same millisecond whose names
            // share those bits would share a log. A later creation time
            // sets the new one apart.
            let mut stream = stream;
            while live
                .iter()
                .any(|(_, _, s)| crate::store::log_id_of(s) == crate::store::log_id_of(&stream))
            {
                stream.created_ms += 1;
                stream.arn = arn(&region, &account, &name, stream.created_ms);
            }
            Ok((stream, ()))
        })
        .await?;
    if let Some(old) = &created.replaced {
        // A deleted incarnation not swept yet: its fragments go now.
        svc.forget_media(old);
    }
    let s = created.cell.snapshot(svc.now_ms());
    Ok(model::CreateStreamOutput {
        stream_arn: Some(s.arn.clone()),
    })
}

/// DescribeStream, by StreamName or StreamARN.
pub async fn describe(
    svc: &Service,
    ctx: &Ctx,
    i: model::DescribeStreamInput,
) -> Result<model::DescribeStreamOutput> {
    let k = locate(svc, ctx, i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    let s = svc.streams.get(&k).ok_or_else(not_found)?;
    Ok(model::DescribeStreamOutput {
        stream_info: Some(stream_info(&s)),
    })
}

/// ListStreams: by name, a page of MaxResults (10,000 by default), the
/// NextToken naming the last stream of the page.
pub async fn list(
    svc: &Service,
    ctx: &Ctx,
    i: model::ListStreamsInput,
) -> Result<model::ListStreamsOutput> {
    let limit = i.max_results.map_or(10_000, |n| n.max(1) as usize);
    let after = after_token(i.next_token.as_deref())?;
    let prefix = i
        .stream_name_condition
        .and_then(|c| c.comparison_value)
        .unwrap_or_default();
    let streams: Vec<_> = svc
        .streams
        .all()
        .into_iter()
        .map(|(_, _, s)| s)
        .filter(|s| s.region == ctx.region && s.name.starts_with(&prefix))
        .filter(|s| after.as_deref().is_none_or(|a| s.name.as_str() > a))
        .collect();
    let page: Vec<_> = streams.iter().take(limit).collect();
    let next_token = next_token(streams.len() > limit, page.last().map(|s| s.name.as_str()));
    Ok(model::ListStreamsOutput {
        stream_info_list: Some(page.iter().map(|s| stream_info(s)).collect()),
        next_token,
    })
}

/// A change to an ACTIVE stream of the given version: a new version, and
/// UPDATING for the status delay.
pub(crate) async fn change(
    svc: &Service,
    k: &str,
    version: &str,
    f: impl FnOnce(&mut Stream) -> Result<()>,
) -> Result<()> {
    let until_ms = svc.now_ms() + svc.cfg.status_delay_ms;
    svc.streams
        .update(k, |s| {
            if s.version != version {
                return Err(VideoError::VersionMismatch(format!(
                    "The stream version {version} does not match the current version of stream {}.",
                    s.name
                )));
            }
            if s.status != Status::Active {
                return Err(VideoError::ResourceInUse(format!(
                    "The stream {} is {}; it can be changed when it is ACTIVE.",
                    s.name,
                    s.status.as_str()
                )));
            }
            f(s)?;
            s.version = new_version();
            s.status = Status::Updating { until_ms };
            Ok(())
        })
        .await?
        .ok_or_else(not_found)
}

/// UpdateStream: DeviceName and MediaType.
pub async fn update(
    svc: &Service,
    ctx: &Ctx,
    i: model::UpdateStreamInput,
) -> Result<model::UpdateStreamOutput> {
    let k = locate(svc, ctx, i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    change(svc, &k, &i.current_version, |s| {
        if let Some(d) = i.device_name {
            s.device_name = Some(d);
        }
        if let Some(m) = i.media_type {
            s.media_type = Some(m);
        }
        Ok(())
    })
    .await?;
    Ok(model::UpdateStreamOutput {})
}

/// UpdateDataRetention: INCREASE or DECREASE by DataRetentionChangeInHours,
/// within 0 and 87,600 hours.
pub async fn update_retention(
    svc: &Service,
    ctx: &Ctx,
    i: model::UpdateDataRetentionInput,
) -> Result<model::UpdateDataRetentionOutput> {
    let k = locate(svc, ctx, i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    let by = i.data_retention_change_in_hours;
    let increase = i.operation == "INCREASE_DATA_RETENTION";
    change(svc, &k, &i.current_version, |s| {
        let next = if increase {
            s.retention_hours.saturating_add(by)
        } else {
            s.retention_hours - by
        };
        if next < 0 {
            return Err(VideoError::InvalidArgument(format!(
                "The data retention of stream {} is {} hours; it cannot be decreased by {by}.",
                s.name, s.retention_hours
            )));
        }
        if next > MAX_RETENTION_HOURS {
            return Err(VideoError::InvalidArgument(format!(
                "The data retention of a stream can be at most {MAX_RETENTION_HOURS} hours."
            )));
        }
        s.retention_hours = next;
        Ok(())
    })
    .await?;
    Ok(model::UpdateDataRetentionOutput {})
}

/// DeleteStream: DELETING for the status delay, then gone.
pub async fn delete(
    svc: &Service,
    ctx: &Ctx,
    i: model::DeleteStreamInput,
) -> Result<model::DeleteStreamOutput> {
    let k = locate(svc, ctx, None, Some(&i.stream_arn))?;
    let until_ms = svc.now_ms() + svc.cfg.status_delay_ms;
    svc.streams
        .update(&k, |s| {
            if let Some(v) = i.current_version.as_deref().filter(|v| *v != s.version) {
                return Err(VideoError::VersionMismatch(format!(
                    "The stream version {v} does not match the current version of stream {}.",
                    s.name
                )));
            }
            if matches!(s.status, Status::Deleting { .. }) {
                return Err(not_found());
            }
            s.status = Status::Deleting { until_ms };
            Ok(())
        })
        .await?
        .ok_or_else(not_found)?;
    Ok(model::DeleteStreamOutput {})
}

/// GetDataEndpoint: every API is served on the endpoint the request came
/// to.
pub async fn data_endpoint(
    svc: &Service,
    ctx: &Ctx,
    i: model::GetDataEndpointInput,
) -> Result<model::GetDataEndpointOutput> {
    locate(svc, ctx, i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    Ok(model::GetDataEndpointOutput {
        data_endpoint: Some(ctx.endpoint.clone()),
    })
}

// ---------------------------------------------------------------------
// Tags

/// A tagged resource: a stream or a signaling channel, by registry key.
enum Tagged {
    Stream(String),
    Channel(String),
}

async fn add_tags(svc: &Service, r: &Tagged, tags: BTreeMap<String, String>) -> Result<()> {
    match r {
        Tagged::Stream(k) => svc
            .streams
            .update(k, |s| {
                s.tags = merged_tags(&s.tags, tags)?;
                Ok::<_, VideoError>(())
            })
            .await?
            .ok_or_else(not_found),
        Tagged::Channel(k) => svc
            .channels
            .update(k, |c| {
                c.tags = merged_tags(&c.tags, tags)?;
                Ok::<_, VideoError>(())
            })
            .await?
            .ok_or_else(channels::not_found),
    }
}

async fn remove_tags(svc: &Service, r: &Tagged, keys: &[String]) -> Result<()> {
    match r {
        Tagged::Stream(k) => svc
            .streams
            .update(k, |s| {
                for t in keys {
                    s.tags.remove(t);
                }
                Ok::<_, VideoError>(())
            })
            .await?
            .ok_or_else(not_found),
        Tagged::Channel(k) => svc
            .channels
            .update(k, |c| {
                for t in keys {
                    c.tags.remove(t);
                }
                Ok::<_, VideoError>(())
            })
            .await?
            .ok_or_else(channels::not_found),
    }
}

fn tags_of(svc: &Service, r: &Tagged) -> Result<BTreeMap<String, String>> {
    match r {
        Tagged::Stream(k) => Ok(svc.streams.get(k).ok_or_else(not_found)?.tags.clone()),
        Tagged::Channel(k) => Ok(svc
            .channels
            .get(k)
            .ok_or_else(channels::not_found)?
            .tags
            .clone()),
    }
}

/// The stream or signaling channel a ResourceARN names.
fn resource(svc: &Service, ctx: &Ctx, arn: &str) -> Result<Tagged> {
    match parse_arn(arn) {
        Some((_, "channel", _)) => channels::locate(svc, ctx, None, Some(arn)).map(Tagged::Channel),
        _ => locate(svc, ctx, None, Some(arn)).map(Tagged::Stream),
    }
}

pub async fn tag(
    svc: &Service,
    ctx: &Ctx,
    i: model::TagStreamInput,
) -> Result<model::TagStreamOutput> {
    let k = locate(svc, ctx, i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    add_tags(svc, &Tagged::Stream(k), i.tags).await?;
    Ok(model::TagStreamOutput {})
}

pub async fn untag(
    svc: &Service,
    ctx: &Ctx,
    i: model::UntagStreamInput,
) -> Result<model::UntagStreamOutput> {
    let k = locate(svc, ctx, i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    remove_tags(svc, &Tagged::Stream(k), &i.tag_key_list).await?;
    Ok(model::UntagStreamOutput {})
}

pub async fn list_tags(
    svc: &Service,
    ctx: &Ctx,
    i: model::ListTagsForStreamInput,
) -> Result<model::ListTagsForStreamOutput> {
    let k = locate(svc, ctx, i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    Ok(model::ListTagsForStreamOutput {
        next_token: None,
        tags: Some(tags_of(svc, &Tagged::Stream(k))?),
    })
}

pub async fn tag_resource(
    svc: &Service,
    ctx: &Ctx,
    i: model::TagResourceInput,
) -> Result<model::TagResourceOutput> {
    let r = resource(svc, ctx, &i.resource_arn)?;
    add_tags(
        svc,
        &r,
        i.tags.into_iter().map(|t| (t.key, t.value)).collect(),
    )
    .await?;
    Ok(model::TagResourceOutput {})
}

pub async fn untag_resource(
    svc: &Service,
    ctx: &Ctx,
    i: model::UntagResourceInput,
) -> Result<model::UntagResourceOutput> {
    let r = resource(svc, ctx, &i.resource_arn)?;
    remove_tags(svc, &r, &i.tag_key_list).await?;
    Ok(model::UntagResourceOutput {})
}

pub async fn list_tags_for_resource(
    svc: &Service,
    ctx: &Ctx,
    i: model::ListTagsForResourceInput,
) -> Result<model::ListTagsForResourceOutput> {
    let r = resource(svc, ctx, &i.resource_arn)?;
    Ok(model::ListTagsForResourceOutput {
        next_token: None,
        tags: Some(tags_of(svc, &r)?),
    })
}

/// The registry key of the stream a data-plane request names.
pub(crate) fn locate_stream(
    svc: &Service,
    ctx: &Ctx,
    name: Option<&str>,
    stream_arn: Option<&str>,
) -> Result<String> {
    locate(svc, ctx, name, stream_arn)
}

/// The error for a stream that does not exist.
pub(crate) fn stream_not_found() -> VideoError {
    not_found()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns() {
        assert_eq!(
            parse_arn("arn:aws:kinesisvideo:us-east-1:000000000000:stream/cam/1700000000000"),
            Some(("us-east-1", "stream", "cam"))
        );
        assert_eq!(parse_arn("arn:aws:kinesis:us-east-1:0:stream/s"), None);
        assert_eq!(
            arn("eu-west-1", "123456789012", "cam", 5),
            "arn:aws:kinesisvideo:eu-west-1:123456789012:stream/cam/5"
        );
    }

    #[test]
    fn versions_are_twenty_letters_and_digits() {
        let v = new_version();
        assert_eq!(v.len(), 20);
        assert!(v.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(v, new_version());
    }

    #[tokio::test]
    async fn every_model_operation_is_served() {
        let svc = Service::new(
            crate::Config::default(),
            riffle_core::clock::ManualClock::new(1_000),
        );
        let ctx = Ctx {
            region: "us-east-1".into(),
            endpoint: "http://127.0.0.1:1".into(),
        };
        for (op, _) in model::OPERATIONS {
            let out = svc
                .call(&ctx, op, Value::Map(riffle_wire::Map::new()))
                .await;
            assert!(
                !matches!(out, Err(VideoError::UnsupportedOperation(_))),
                "{op} is not dispatched"
            );
        }
    }

    #[tokio::test]
    async fn streams_created_in_one_millisecond_never_share_a_log() {
        let svc = Service::new(
            crate::Config::default(),
            riffle_core::clock::ManualClock::new(1_000),
        );
        let ctx = Ctx {
            region: "us-east-1".into(),
            endpoint: "http://127.0.0.1:1".into(),
        };
        // 200 names in 1,024 buckets of ten bits: some share them.
        for i in 0..200 {
            let mut m = riffle_wire::Map::new();
            m.put("StreamName", Value::Str(format!("cam-{i}")));
            svc.call(&ctx, "CreateStream", Value::Map(m)).await.unwrap();
        }
        let rows: Vec<std::sync::Arc<Stream>> =
            svc.streams.all().into_iter().map(|(_, _, s)| s).collect();
        assert_eq!(rows.len(), 200);
        let ids: std::collections::HashSet<u64> =
            rows.iter().map(|s| crate::store::log_id_of(s)).collect();
        assert_eq!(ids.len(), 200);
        for s in &rows {
            assert_eq!(
                s.arn,
                arn("us-east-1", "000000000000", &s.name, s.created_ms)
            );
            assert!((1_000..1_200).contains(&s.created_ms));
        }
    }

    #[test]
    fn every_pattern_compiles() {
        for p in model::PATTERNS {
            assert!(p.compiled().is_some(), "{}", p.src);
        }
    }
}
