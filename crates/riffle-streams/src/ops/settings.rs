//! Retention, enhanced monitoring, encryption, stream mode, resource
//! policies, limits and account settings, maximum record size, warm
//! throughput and record distribution.

use std::collections::BTreeSet;

use riffle_core::{limits, names};
use riffle_wire::shape::Timestamp;

use crate::error::Result;
use crate::model::*;
use crate::state::{require_active, Mode, Msg, Status, Stream};
use crate::{Ctx, KinesisError, Service};

fn check_retention_bounds(hours: i64) -> Result<()> {
    if hours < limits::MIN_RETENTION_HOURS {
        return Err(KinesisError::InvalidArgument(format!(
            "Minimum allowed retention period is {} hours. Requested retention period ({hours} hours) is too short.",
            limits::MIN_RETENTION_HOURS
        )));
    }
    if hours > limits::MAX_RETENTION_HOURS {
        return Err(KinesisError::InvalidArgument(format!(
            "Maximum allowed retention period is {} hours. Requested retention period ({hours} hours) is too long.",
            limits::MAX_RETENTION_HOURS
        )));
    }
    Ok(())
}

pub async fn increase_retention(
    svc: &Service,
    ctx: &Ctx,
    input: IncreaseStreamRetentionPeriodInput,
) -> Result<()> {
    let hours = input.retention_period_hours;
    svc.update(ctx, input.stream_name.as_deref(), input.stream_arn.as_deref(), |s| {
        check_retention_bounds(hours)?;
        if hours < s.retention_hours {
            return Err(KinesisError::InvalidArgument(format!(
                "Requested retention period ({hours} hours) for stream {} can not be shorter than existing retention period ({} hours). Use DecreaseRetentionPeriod API.",
                s.name, s.retention_hours
            )));
        }
        s.retention_hours = hours;
        Ok(())
    })
.await
}

pub async fn decrease_retention(
    svc: &Service,
    ctx: &Ctx,
    input: DecreaseStreamRetentionPeriodInput,
) -> Result<()> {
    let hours = input.retention_period_hours;
    svc.update(ctx, input.stream_name.as_deref(), input.stream_arn.as_deref(), |s| {
        check_retention_bounds(hours)?;
        if hours > s.retention_hours {
            return Err(KinesisError::InvalidArgument(format!(
                "Requested retention period ({hours} hours) for stream {} can not be longer than existing retention period ({} hours). Use IncreaseRetentionPeriod API.",
                s.name, s.retention_hours
            )));
        }
        s.retention_hours = hours;
        Ok(())
    })
.await
}

const ALL_METRICS: [&str; 7] = [
    "IncomingBytes",
    "IncomingRecords",
    "OutgoingBytes",
    "OutgoingRecords",
    "WriteProvisionedThroughputExceeded",
    "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds",
];

fn expand(metrics: &[String]) -> BTreeSet<String> {
    if metrics.iter().any(|m| m == "ALL") {
        ALL_METRICS.iter().map(|m| m.to_string()).collect()
    } else {
        metrics.iter().cloned().collect()
    }
}

fn monitoring(
    s: &mut Stream,
    account: &str,
    metrics: &[String],
    enable: bool,
) -> Result<EnhancedMonitoringOutput> {
    require_active(s, account)?;
    let before: Vec<String> = s.metrics.iter().cloned().collect();
    let change = expand(metrics);
    if enable {
        s.metrics.extend(change);
    } else {
        s.metrics.retain(|m| !change.contains(m));
    }
    Ok(EnhancedMonitoringOutput {
        stream_name: Some(s.name.clone()),
        current_shard_level_metrics: Some(before),
        desired_shard_level_metrics: Some(s.metrics.iter().cloned().collect()),
        stream_arn: Some(s.arn.clone()),
    })
}

pub async fn enable_enhanced_monitoring(
    svc: &Service,
    ctx: &Ctx,
    input: EnableEnhancedMonitoringInput,
) -> Result<EnhancedMonitoringOutput> {
    let account = svc.account().to_owned();
    svc.update(
        ctx,
        input.stream_name.as_deref(),
        input.stream_arn.as_deref(),
        |s| monitoring(s, &account, &input.shard_level_metrics, true),
    )
    .await
}

pub async fn disable_enhanced_monitoring(
    svc: &Service,
    ctx: &Ctx,
    input: DisableEnhancedMonitoringInput,
) -> Result<EnhancedMonitoringOutput> {
    let account = svc.account().to_owned();
    svc.update(
        ctx,
        input.stream_name.as_deref(),
        input.stream_arn.as_deref(),
        |s| monitoring(s, &account, &input.shard_level_metrics, false),
    )
    .await
}

fn updating(svc: &Service, s: &mut Stream) {
    if svc.cfg.status_delay_ms > 0 {
        s.status = Status::Updating {
            until_ms: svc.now_ms() + svc.cfg.status_delay_ms,
        };
    }
}

fn require_kms(kind: &str) -> Result<()> {
    if kind != "KMS" {
        return Err(KinesisError::InvalidArgument(format!(
            "Invalid EncryptionType {kind}. KMS is the only valid EncryptionType for this request."
        )));
    }
    Ok(())
}

pub async fn start_encryption(
    svc: &Service,
    ctx: &Ctx,
    input: StartStreamEncryptionInput,
) -> Result<()> {
    require_kms(&input.encryption_type)?;
    let (name, arn) = (input.stream_name.as_deref(), input.stream_arn.as_deref());
    set_encryption(svc, ctx, name, arn, Some(input.key_id.clone())).await
}

pub async fn stop_encryption(
    svc: &Service,
    ctx: &Ctx,
    input: StopStreamEncryptionInput,
) -> Result<()> {
    require_kms(&input.encryption_type)?;
    set_encryption(
        svc,
        ctx,
        input.stream_name.as_deref(),
        input.stream_arn.as_deref(),
        None,
    )
    .await
}

/// Switches server-side encryption on (with a key) or off.
async fn set_encryption(
    svc: &Service,
    ctx: &Ctx,
    name: Option<&str>,
    arn: Option<&str>,
    key: Option<String>,
) -> Result<()> {
    let account = svc.account().to_owned();
    svc.update(ctx, name, arn, |s| {
        require_active(s, &account)?;
        s.encryption_changes.push((svc.now_ms(), key.is_some()));
        s.encryption = key;
        updating(svc, s);
        Ok(())
    })
    .await
}

pub async fn update_stream_mode(
    svc: &Service,
    ctx: &Ctx,
    input: UpdateStreamModeInput,
) -> Result<()> {
    let account = svc.account().to_owned();
    let mode = if input.stream_mode_details.stream_mode == "ON_DEMAND" {
        Mode::OnDemand
    } else {
        Mode::Provisioned
    };
    if input.warm_throughput_mi_bps.is_some() && mode != Mode::OnDemand {
        return Err(KinesisError::InvalidArgument(
            "WarmThroughputMiBps can only be specified for ON_DEMAND streams.".into(),
        ));
    }
    let on_demand = svc
        .all_streams()
        .iter()
        .filter(|s| s.mode == Mode::OnDemand)
        .count();
    svc.update(ctx, None, Some(&input.stream_arn), |s| {
        require_active(s, &account)?;
        if s.mode == mode {
            return Err(KinesisError::ResourceInUse(format!(
                "Stream {} under account {account} is already in {} mode.",
                s.name,
                mode.as_str()
            )));
        }
        if mode == Mode::OnDemand && on_demand >= svc.cfg.on_demand_stream_limit as usize {
            return Err(KinesisError::LimitExceeded(format!(
                "This request would exceed the on-demand stream count limit for the account {account}. Limit: {}.",
                svc.cfg.on_demand_stream_limit
            )));
        }
        s.mode = mode;
        if mode == Mode::Provisioned {
            s.warm_throughput_mibps = None;
            s.distribution = None;
        } else if input.warm_throughput_mi_bps.is_some() {
            s.warm_throughput_mibps = input.warm_throughput_mi_bps;
        }
        updating(svc, s);
        Ok(())
    })
.await
}

/// The stored policy of the stream or consumer an ARN names.
async fn with_policy<T>(
    svc: &Service,
    arn: &str,
    f: impl FnOnce(&mut Option<String>) -> Result<T>,
) -> Result<T> {
    let account = svc.account().to_owned();
    let (stream, consumer) = match names::parse_consumer_arn(arn) {
        Some(c) => (c.stream, Some(arn)),
        None => (
            names::parse_stream_arn(arn).ok_or_else(|| {
                KinesisError::InvalidArgument(format!("Invalid ResourceARN: {arn}"))
            })?,
            None,
        ),
    };
    if stream.account != account {
        return Err(Msg::stream_not_found(&stream.name, &account));
    }
    svc.update_key(
        &(stream.region.clone(), stream.name.clone()),
        |s| match consumer {
            Some(carn) => {
                let c = s
                    .consumers
                    .iter_mut()
                    .find(|c| c.arn == carn)
                    .ok_or_else(|| {
                        KinesisError::ResourceNotFound(format!("Consumer {carn} not found."))
                    })?;
                f(&mut c.policy)
            }
            None => f(&mut s.policy),
        },
    )
    .await
}

pub async fn put_resource_policy(
    svc: &Service,
    _ctx: &Ctx,
    input: PutResourcePolicyInput,
) -> Result<()> {
    let parsed: Result<riffle_wire::Value> = riffle_wire::json::decode(input.policy.as_bytes())
        .map_err(|_| KinesisError::InvalidArgument("Policy is not a valid JSON document.".into()));
    if !matches!(parsed?, riffle_wire::Value::Map(_)) {
        return Err(KinesisError::InvalidArgument(
            "Policy is not a valid JSON document.".into(),
        ));
    }
    with_policy(svc, &input.resource_arn, |p| {
        *p = Some(input.policy);
        Ok(())
    })
    .await
}

pub async fn get_resource_policy(
    svc: &Service,
    _ctx: &Ctx,
    input: GetResourcePolicyInput,
) -> Result<GetResourcePolicyOutput> {
    with_policy(svc, &input.resource_arn, |p| {
        Ok(GetResourcePolicyOutput {
            policy: p.clone().unwrap_or_else(|| "{}".into()),
        })
    })
    .await
}

pub async fn delete_resource_policy(
    svc: &Service,
    _ctx: &Ctx,
    input: DeleteResourcePolicyInput,
) -> Result<()> {
    let arn = input.resource_arn.clone();
    with_policy(svc, &input.resource_arn, |p| {
        if p.take().is_none() {
            return Err(KinesisError::ResourceNotFound(format!(
                "No resource policy found for resource ARN {arn}."
            )));
        }
        Ok(())
    })
    .await
}

pub async fn describe_limits(
    svc: &Service,
    ctx: &Ctx,
    _input: DescribeLimitsInput,
) -> Result<DescribeLimitsOutput> {
    let streams = svc.all_streams();
    let in_region = || streams.iter().filter(|s| s.region == ctx.region);
    Ok(DescribeLimitsOutput {
        shard_limit: i64::from(svc.cfg.shard_limit),
        open_shard_count: in_region().map(|s| s.open_shard_count()).sum::<usize>() as i64,
        on_demand_stream_count: in_region().filter(|s| s.mode == Mode::OnDemand).count() as i64,
        on_demand_stream_count_limit: i64::from(svc.cfg.on_demand_stream_limit),
        channel_count: None,
        channel_count_limit: None,
    })
}

pub async fn describe_account_settings(
    svc: &Service,
    _ctx: &Ctx,
    _input: DescribeAccountSettingsInput,
) -> Result<DescribeAccountSettingsOutput> {
    Ok(DescribeAccountSettingsOutput {
        minimum_throughput_billing_commitment: svc.billing_commitment(),
    })
}

pub async fn update_account_settings(
    svc: &Service,
    _ctx: &Ctx,
    input: UpdateAccountSettingsInput,
) -> Result<UpdateAccountSettingsOutput> {
    let now = Timestamp(svc.now_ms() / 1000 * 1000);
    let prev = svc.billing_commitment();
    let next = match input.minimum_throughput_billing_commitment.status.as_str() {
        "ENABLED" => MinimumThroughputBillingCommitmentOutput {
            status: "ENABLED".into(),
            started_at: prev
                .as_ref()
                .filter(|p| p.status == "ENABLED")
                .and_then(|p| p.started_at)
                .or(Some(now)),
            ended_at: None,
            earliest_allowed_end_at: Some(Timestamp(now.0 + 365 * 86_400_000)),
        },
        _ => MinimumThroughputBillingCommitmentOutput {
            status: "DISABLED".into(),
            started_at: prev.as_ref().and_then(|p| p.started_at),
            ended_at: Some(now),
            earliest_allowed_end_at: None,
        },
    };
    svc.set_billing_commitment(next.clone()).await?;
    Ok(UpdateAccountSettingsOutput {
        minimum_throughput_billing_commitment: Some(next),
    })
}

pub async fn update_max_record_size(
    svc: &Service,
    ctx: &Ctx,
    input: UpdateMaxRecordSizeInput,
) -> Result<()> {
    let account = svc.account().to_owned();
    svc.update(ctx, None, input.stream_arn.as_deref(), |s| {
        require_active(s, &account)?;
        s.max_record_kib = input.max_record_size_in_ki_b;
        Ok(())
    })
    .await
}

pub async fn update_warm_throughput(
    svc: &Service,
    ctx: &Ctx,
    input: UpdateStreamWarmThroughputInput,
) -> Result<UpdateStreamWarmThroughputOutput> {
    let account = svc.account().to_owned();
    svc.update(ctx, input.stream_name.as_deref(), input.stream_arn.as_deref(), |s| {
        require_active(s, &account)?;
        if s.mode != Mode::OnDemand {
            return Err(KinesisError::InvalidArgument(format!(
                "Stream {} under account {account} is not in ON_DEMAND mode. Warm throughput can only be configured for ON_DEMAND streams.",
                s.name
            )));
        }
        let current = s.warm_throughput_mibps;
        s.warm_throughput_mibps = Some(input.warm_throughput_mi_bps);
        Ok(UpdateStreamWarmThroughputOutput {
            stream_arn: Some(s.arn.clone()),
            stream_name: Some(s.name.clone()),
            warm_throughput: Some(WarmThroughputObject {
                target_mi_bps: Some(input.warm_throughput_mi_bps),
                current_mi_bps: current.or(Some(0)),
            }),
        })
    })
.await
}

pub async fn update_record_distribution(
    svc: &Service,
    ctx: &Ctx,
    input: UpdateStreamRecordDistributionStrategyInput,
) -> Result<()> {
    let account = svc.account().to_owned();
    svc.update(ctx, None, Some(&input.stream_arn), |s| {
        require_active(s, &account)?;
        if s.mode != Mode::OnDemand {
            return Err(KinesisError::InvalidArgument(format!(
                "Stream {} under account {account} is not in ON_DEMAND mode. RecordDistributionStrategy can only be configured for ON_DEMAND streams.",
                s.name
            )));
        }
        s.distribution = Some(input.record_distribution_strategy);
        Ok(())
    })
.await
}
