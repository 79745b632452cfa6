//! CreateStream, DeleteStream, DescribeStream, DescribeStreamSummary, ListStreams.

use std::collections::BTreeSet;

use riffle_core::hashkey::HashRange;
use riffle_core::{limits, names};
use riffle_wire::shape::Timestamp;

use crate::error::Result;
use crate::model::*;
use crate::state::{Mode, Msg, Status, Stream};
use crate::{token_kind, Ctx, KinesisError, Service};

pub async fn create_stream(svc: &Service, ctx: &Ctx, input: CreateStreamInput) -> Result<()> {
    let account = svc.account().to_owned();
    let now = svc.now_ms();
    let mode = match (
        input
            .stream_mode_details
            .as_ref()
            .map(|d| d.stream_mode.as_str()),
        input.shard_count,
    ) {
        (Some("ON_DEMAND"), _) | (None, None) => Mode::OnDemand,
        _ => Mode::Provisioned,
    };
    if mode == Mode::Provisioned && input.shard_count.is_none() {
        return Err(KinesisError::InvalidArgument(
            "ShardCount is required for PROVISIONED streams.".into(),
        ));
    }
    if mode == Mode::OnDemand && input.shard_count.is_some() && input.stream_mode_details.is_some()
    {
        return Err(KinesisError::InvalidArgument(
            "ShardCount cannot be specified for ON_DEMAND streams.".into(),
        ));
    }
    if input.warm_throughput_mi_bps.is_some() && mode != Mode::OnDemand {
        return Err(KinesisError::InvalidArgument(
            "WarmThroughputMiBps can only be specified for ON_DEMAND streams.".into(),
        ));
    }
    if input.record_distribution_strategy.is_some() && mode != Mode::OnDemand {
        return Err(KinesisError::InvalidArgument(
            "RecordDistributionStrategy can only be specified for ON_DEMAND streams.".into(),
        ));
    }
    let count = match mode {
        Mode::OnDemand => limits::ON_DEMAND_INITIAL_SHARDS,
        Mode::Provisioned => input.shard_count.unwrap_or(1) as u32,
    };
    if let Some(tags) = &input.tags {
        super::tags::check_tag_keys(tags.keys())?;
    }
    let key = (ctx.region.clone(), input.stream_name.clone());
    // Checked and reserved at once; the I/O below runs without the lock.
    let want = crate::registry::Want {
        key: &key,
        shards: count as usize,
        on_demand: mode == Mode::OnDemand,
    };
    let reservation = svc.reserve_creation(want, |reserved_shards, reserved_on_demand| {
        let open: usize = svc.open_shards_in(&ctx.region) + reserved_shards;
        if open + count as usize > svc.cfg.shard_limit as usize
            || count > limits::MAX_SHARDS_PER_STREAM
        {
            return Err(Msg::shard_limit(
                &account,
                &ctx.region,
                open,
                svc.cfg.shard_limit,
                count as usize,
            ));
        }
        if mode == Mode::OnDemand {
            let on_demand = svc
                .all_streams()
                .iter()
                .filter(|s| s.mode == Mode::OnDemand)
                .count()
                + reserved_on_demand;
            if on_demand >= svc.cfg.on_demand_stream_limit as usize {
                return Err(KinesisError::LimitExceeded(format!(
                    "This request would exceed the on-demand stream count limit for the account {account} in {}. Current on-demand stream count for the account: {on_demand}. Limit: {}.",
                    ctx.region, svc.cfg.on_demand_stream_limit
                )));
            }
        }
        Ok(())
    })?;
    let id = svc.next_stream_id();
    let engine = svc.engine.clone();
    let log = crate::registry::blocking(move || engine.open(id)).await??;
    let mut stream = Stream {
        id,
        name: input.stream_name.clone(),
        region: ctx.region.clone(),
        arn: names::stream_arn(&ctx.region, &account, &input.stream_name),
        created_ms: now,
        status: if svc.cfg.status_delay_ms > 0 {
            Status::Creating {
                until_ms: now + svc.cfg.status_delay_ms,
            }
        } else {
            Status::Active
        },
        mode,
        retention_hours: limits::DEFAULT_RETENTION_HOURS,
        shards: Vec::new(),
        tags: input.tags.unwrap_or_default(),
        encryption: None,
        encryption_changes: Vec::new(),
        metrics: BTreeSet::new(),
        consumers: Vec::new(),
        policy: None,
        max_record_kib: input
            .max_record_size_in_ki_b
            .unwrap_or(limits::DEFAULT_MAX_RECORD_SIZE_KIB),
        warm_throughput_mibps: input.warm_throughput_mi_bps,
        distribution: input.record_distribution_strategy,
        scalings: Vec::new(),
        log,
    };
    for i in 0..count {
        stream.add_shard(HashRange::split_even(i, count), None, None, now);
    }
    // A stream whose deletion completed but was not yet swept is replaced:
    // the new row takes its key, then its log goes.
    let replaced = svc.replaced_incarnation(&key);
    let old = svc.lock_cell(&key).await;
    if let Err(e) = svc
        .write_row(&key, Some(crate::meta::encode_stream(&stream)))
        .await
    {
        drop(old);
        let engine = svc.engine.clone();
        let _ = crate::registry::blocking(move || engine.remove(id)).await;
        return Err(e);
    }
    reservation.publish(stream);
    drop(old);
    if let Some(old) = replaced {
        let engine = svc.engine.clone();
        crate::registry::blocking(move || engine.remove(old)).await??;
    }
    Ok(())
}

pub async fn delete_stream(svc: &Service, ctx: &Ctx, input: DeleteStreamInput) -> Result<()> {
    let account = svc.account().to_owned();
    let now = svc.now_ms();
    let delay = svc.cfg.status_delay_ms;
    let key = svc.key(
        ctx,
        input.stream_name.as_deref(),
        input.stream_arn.as_deref(),
    )?;
    let enforce = input.enforce_consumer_deletion == Some(true);
    let check = |s: &Stream| -> Result<()> {
        if !s.consumers.is_empty() && !enforce {
            return Err(KinesisError::ResourceInUse(format!(
                "Stream {} under account {account} has registered consumers. Deregister them or set EnforceConsumerDeletion to true.",
                s.name
            )));
        }
        Ok(())
    };
    if delay > 0 {
        return svc
            .update_key(&key, |s| {
                check(s)?;
                if !matches!(s.status, Status::Deleting { .. }) {
                    s.status = Status::Deleting {
                        until_ms: now + delay,
                    };
                }
                Ok(())
            })
            .await;
    }
    let control = svc.lock_cell(&key).await;
    let s = svc
        .snapshot(&key)
        .ok_or_else(|| Msg::stream_not_found(&key.1, &account))?;
    check(&s)?;
    svc.write_row(&key, None).await?;
    svc.forget(&key, s.id, control).await
}

pub async fn describe_stream(
    svc: &Service,
    ctx: &Ctx,
    input: DescribeStreamInput,
) -> Result<DescribeStreamOutput> {
    let account = svc.account().to_owned();
    svc.view(
        ctx,
        input.stream_name.as_deref(),
        input.stream_arn.as_deref(),
        |s| {
            let limit = input.limit.map_or(limits::DESCRIBE_STREAM_DEFAULT, |l| {
                (l as usize).min(limits::DESCRIBE_STREAM_DEFAULT)
            });
            let after = match &input.exclusive_start_shard_id {
                Some(id) => match names::parse_shard_id(id) {
                    Some(i) => Some(i),
                    None => return Err(Msg::shard_not_found(id, &s.name, &account)),
                },
                None => None,
            };
            // The shards ListShards lists: closed ones go once their records
            // have all expired.
            let now = svc.now_ms();
            let listed: Vec<_> = if matches!(s.status, Status::Creating { .. }) {
                Vec::new()
            } else {
                s.shards
                    .iter()
                    .filter(|sh| super::shards::listed(s, sh, now))
                    .collect()
            };
            let skip = after.map_or(0, |a| listed.iter().filter(|sh| sh.index <= a).count());
            let shards: Vec<_> = listed.iter().map(|sh| sh.to_model()).collect();
            let (page, more) = super::page(&shards, skip, limit);
            Ok(DescribeStreamOutput {
                stream_description: StreamDescription {
                    stream_name: s.name.clone(),
                    stream_arn: s.arn.clone(),
                    stream_status: s.status.as_str().into(),
                    stream_mode_details: Some(s.mode.details()),
                    shards: page,
                    has_more_shards: more,
                    retention_period_hours: s.retention_hours,
                    stream_creation_timestamp: Timestamp(s.created_ms / 1000 * 1000),
                    enhanced_monitoring: s.enhanced_monitoring(),
                    encryption_type: Some(s.encryption_type().into()),
                    key_id: s.encryption.clone(),
                },
            })
        },
    )
}

pub async fn describe_stream_summary(
    svc: &Service,
    ctx: &Ctx,
    input: DescribeStreamSummaryInput,
) -> Result<DescribeStreamSummaryOutput> {
    svc.view(
        ctx,
        input.stream_name.as_deref(),
        input.stream_arn.as_deref(),
        |s| {
            Ok(DescribeStreamSummaryOutput {
                stream_description_summary: StreamDescriptionSummary {
                    stream_name: s.name.clone(),
                    stream_arn: s.arn.clone(),
                    stream_id: None,
                    stream_status: s.status.as_str().into(),
                    stream_mode_details: Some(s.mode.details()),
                    retention_period_hours: s.retention_hours,
                    stream_creation_timestamp: Timestamp(s.created_ms / 1000 * 1000),
                    enhanced_monitoring: s.enhanced_monitoring(),
                    encryption_type: Some(s.encryption_type().into()),
                    key_id: s.encryption.clone(),
                    open_shard_count: if matches!(s.status, Status::Creating { .. }) {
                        0
                    } else {
                        s.open_shard_count() as i64
                    },
                    consumer_count: Some(s.consumers.len() as i64),
                    warm_throughput: s.warm_throughput_mibps.map(|t| WarmThroughputObject {
                        target_mi_bps: Some(t),
                        current_mi_bps: Some(t),
                    }),
                    max_record_size_in_ki_b: Some(s.max_record_kib),
                    channel_count: None,
                    record_distribution_strategy: s.distribution.clone(),
                    queue_count: None,
                },
            })
        },
    )
}

pub async fn list_streams(
    svc: &Service,
    ctx: &Ctx,
    input: ListStreamsInput,
) -> Result<ListStreamsOutput> {
    if input.next_token.is_some() && input.exclusive_start_stream_name.is_some() {
        return Err(KinesisError::InvalidArgument(
            "NextToken and ExclusiveStartStreamName cannot be provided together.".into(),
        ));
    }
    let after = match &input.next_token {
        Some(t) => {
            let raw = svc
                .tokens
                .open(token_kind::LIST_STREAMS, t)
                .ok_or_else(|| KinesisError::InvalidArgument(format!("Invalid NextToken: {t}")))?;
            Some(String::from_utf8_lossy(&raw).into_owned())
        }
        None => input.exclusive_start_stream_name.clone(),
    };
    let limit = input.limit.map_or(limits::LIST_STREAMS_DEFAULT, |l| {
        (l as usize).min(limits::LIST_STREAMS_DEFAULT)
    });
    let streams = svc.all_streams();
    let all: Vec<_> = streams
        .iter()
        .filter(|s| s.region == ctx.region)
        .filter(|s| after.as_ref().is_none_or(|a| s.name.as_str() > a.as_str()))
        .collect();
    let page: Vec<_> = all.iter().take(limit).collect();
    let more = all.len() > page.len();
    let next_token = match (more, page.last()) {
        (true, Some(last)) => Some(
            svc.tokens
                .seal(token_kind::LIST_STREAMS, last.name.as_bytes()),
        ),
        _ => None,
    };
    Ok(ListStreamsOutput {
        stream_names: page.iter().map(|s| s.name.clone()).collect(),
        has_more_streams: more,
        next_token,
        stream_summaries: Some(
            page.iter()
                .map(|s| StreamSummary {
                    stream_name: s.name.clone(),
                    stream_arn: s.arn.clone(),
                    stream_status: s.status.as_str().into(),
                    stream_mode_details: Some(s.mode.details()),
                    stream_creation_timestamp: Some(Timestamp(s.created_ms / 1000 * 1000)),
                })
                .collect(),
        ),
    })
}
