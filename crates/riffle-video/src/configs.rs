//! A stream's configurations besides its own fields: image generation,
//! notification, the edge configuration (synced with an Edge Agent), the
//! storage tier, and the signaling channel mapped to it.
//!
//! No Edge Agent runs against Riffle: an edge configuration is IN_SYNC
//! once the status delay has passed, and a deleted one is gone after the
//! same delay.

use riffle_wire::shape::Timestamp;

use crate::error::{Result, VideoError};
use crate::ops::{after_token, change, locate, next_token, not_found};
use crate::state::{Edge, EdgeSync, Status, Stream};
use crate::{model, Ctx, Service};

/// The shortest and longest image SamplingInterval, in milliseconds.
pub const SAMPLING_INTERVAL_MS: (i64, i64) = (200, 20_000);
/// ListEdgeAgentConfigurations' page when MaxResults is not given.
pub const DEFAULT_EDGE_LIST_LIMIT: usize = 5;
/// The type DescribeMappedResourceConfiguration gives a mapped channel.
pub const MAPPED_CHANNEL_TYPE: &str = "SIGNALING_CHANNEL";

fn stream_of(
    svc: &Service,
    ctx: &Ctx,
    name: Option<&str>,
    arn: Option<&str>,
) -> Result<(String, std::sync::Arc<Stream>)> {
    let k = locate(svc, ctx, name, arn)?;
    let s = svc.streams.get(&k).ok_or_else(not_found)?;
    Ok((k, s))
}

fn not_active(s: &Stream) -> VideoError {
    VideoError::ResourceInUse(format!(
        "The stream {} is {}; it can be changed when it is ACTIVE.",
        s.name,
        s.status.as_str()
    ))
}

fn no_retention(s: &Stream) -> VideoError {
    VideoError::NoDataRetention(format!(
        "The stream {} has no data retention (DataRetentionInHours is 0).",
        s.name
    ))
}

/// Sets a configuration of an ACTIVE stream (`None` removes it).
async fn configure(
    svc: &Service,
    k: &str,
    f: impl FnOnce(&mut Stream) -> Result<()>,
) -> Result<()> {
    svc.streams
        .update(k, |s| {
            if s.status != Status::Active {
                return Err(not_active(s));
            }
            f(s)
        })
        .await?
        .ok_or_else(not_found)
}

// ---------------------------------------------------------------------
// Image generation and notification

fn check_image_generation(s: &Stream, c: &model::ImageGenerationConfiguration) -> Result<()> {
    let (min, max) = SAMPLING_INTERVAL_MS;
    if !(min..=max).contains(&c.sampling_interval) {
        return Err(VideoError::InvalidArgument(format!(
            "SamplingInterval must be between {min} and {max} milliseconds."
        )));
    }
    if c.destination_config.destination_region != s.region {
        return Err(VideoError::InvalidArgument(format!(
            "DestinationRegion {} must be the stream's Region {}.",
            c.destination_config.destination_region, s.region
        )));
    }
    if let Some(fc) = &c.format_config {
        if c.format != "JPEG" {
            return Err(VideoError::InvalidArgument(
                "FormatConfig applies to the JPEG Format only.".into(),
            ));
        }
        for v in fc.values() {
            if !v.parse::<u8>().is_ok_and(|q| (1..=100).contains(&q)) {
                return Err(VideoError::InvalidArgument(format!(
                    "JPEGQuality {v} must be an integer between 1 and 100."
                )));
            }
        }
    }
    if c.status == "ENABLED" && s.retention_hours == 0 {
        return Err(no_retention(s));
    }
    Ok(())
}

/// UpdateImageGenerationConfiguration: the configuration kept as given;
/// none removes it.
pub async fn update_image_generation(
    svc: &Service,
    ctx: &Ctx,
    i: model::UpdateImageGenerationConfigurationInput,
) -> Result<model::UpdateImageGenerationConfigurationOutput> {
    let k = locate(svc, ctx, i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    let conf = i.image_generation_configuration;
    configure(svc, &k, |s| {
        if let Some(c) = &conf {
            check_image_generation(s, c)?;
        }
        s.image_generation = conf;
        Ok(())
    })
    .await?;
    Ok(model::UpdateImageGenerationConfigurationOutput {})
}

pub async fn describe_image_generation(
    svc: &Service,
    ctx: &Ctx,
    i: model::DescribeImageGenerationConfigurationInput,
) -> Result<model::DescribeImageGenerationConfigurationOutput> {
    let (_, s) = stream_of(svc, ctx, i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    Ok(model::DescribeImageGenerationConfigurationOutput {
        image_generation_configuration: s.image_generation.clone(),
    })
}

/// UpdateNotificationConfiguration: the configuration kept as given; none
/// removes it.
pub async fn update_notification(
    svc: &Service,
    ctx: &Ctx,
    i: model::UpdateNotificationConfigurationInput,
) -> Result<model::UpdateNotificationConfigurationOutput> {
    let k = locate(svc, ctx, i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    let conf = i.notification_configuration;
    configure(svc, &k, |s| {
        if conf.as_ref().is_some_and(|c| c.status == "ENABLED") && s.retention_hours == 0 {
            return Err(no_retention(s));
        }
        s.notification = conf;
        Ok(())
    })
    .await?;
    Ok(model::UpdateNotificationConfigurationOutput {})
}

pub async fn describe_notification(
    svc: &Service,
    ctx: &Ctx,
    i: model::DescribeNotificationConfigurationInput,
) -> Result<model::DescribeNotificationConfigurationOutput> {
    let (_, s) = stream_of(svc, ctx, i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    Ok(model::DescribeNotificationConfigurationOutput {
        notification_configuration: s.notification.clone(),
    })
}

// ---------------------------------------------------------------------
// Edge configuration

fn no_edge(s: &Stream) -> VideoError {
    VideoError::StreamEdgeConfigurationNotFound(format!(
        "The stream {} has no edge configuration.",
        s.name
    ))
}

/// StartEdgeConfigurationUpdate: SYNCING, then IN_SYNC after the status
/// delay; refused while a sync or a deletion is under way.
pub async fn start_edge(
    svc: &Service,
    ctx: &Ctx,
    i: model::StartEdgeConfigurationUpdateInput,
) -> Result<model::StartEdgeConfigurationUpdateOutput> {
    let k = locate(svc, ctx, i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    let now = svc.now_ms();
    let until_ms = now + svc.cfg.status_delay_ms;
    let config = i.edge_config;
    let (s, edge) = svc
        .streams
        .update(&k, |s| {
            if s.status != Status::Active {
                return Err(not_active(s));
            }
            if s.retention_hours == 0 {
                return Err(no_retention(s));
            }
            if let Some(e) = &s.edge {
                if e.sync != EdgeSync::InSync {
                    return Err(VideoError::ResourceInUse(format!(
                        "The edge configuration of stream {} is {}; it can be updated when the sync has finished.",
                        s.name,
                        e.sync.as_str()
                    )));
                }
            }
            let edge = Edge {
                config,
                sync: EdgeSync::Syncing { until_ms },
                created_ms: s.edge.as_ref().map_or(now, |e| e.created_ms),
                updated_ms: now,
            };
            s.edge = Some(edge.clone());
            Ok((s.clone(), edge))
        })
        .await?
        .ok_or_else(not_found)?;
    Ok(model::StartEdgeConfigurationUpdateOutput {
        stream_name: Some(s.name),
        stream_arn: Some(s.arn),
        creation_time: Some(Timestamp(edge.created_ms)),
        last_updated_time: Some(Timestamp(edge.updated_ms)),
        sync_status: Some(edge.sync.as_str().into()),
        failed_status_details: None,
        edge_config: Some(edge.config),
    })
}

pub async fn describe_edge(
    svc: &Service,
    ctx: &Ctx,
    i: model::DescribeEdgeConfigurationInput,
) -> Result<model::DescribeEdgeConfigurationOutput> {
    let (_, s) = stream_of(svc, ctx, i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    let e = s.edge.as_ref().ok_or_else(|| no_edge(&s))?;
    Ok(model::DescribeEdgeConfigurationOutput {
        stream_name: Some(s.name.clone()),
        stream_arn: Some(s.arn.clone()),
        creation_time: Some(Timestamp(e.created_ms)),
        last_updated_time: Some(Timestamp(e.updated_ms)),
        sync_status: Some(e.sync.as_str().into()),
        failed_status_details: None,
        edge_config: Some(e.config.clone()),
        edge_agent_status: None,
    })
}

/// DeleteEdgeConfiguration: DELETING for the status delay, then gone.
pub async fn delete_edge(
    svc: &Service,
    ctx: &Ctx,
    i: model::DeleteEdgeConfigurationInput,
) -> Result<model::DeleteEdgeConfigurationOutput> {
    let k = locate(svc, ctx, i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    let until_ms = svc.now_ms() + svc.cfg.status_delay_ms;
    svc.streams
        .update(&k, |s| {
            let name = s.name.clone();
            let e = s.edge.as_mut().ok_or_else(|| {
                VideoError::StreamEdgeConfigurationNotFound(format!(
                    "The stream {name} has no edge configuration."
                ))
            })?;
            if !matches!(e.sync, EdgeSync::Deleting { .. }) {
                e.sync = EdgeSync::Deleting { until_ms };
            }
            Ok::<_, VideoError>(())
        })
        .await?
        .ok_or_else(not_found)?;
    Ok(model::DeleteEdgeConfigurationOutput {})
}

/// ListEdgeAgentConfigurations: the edge configurations of the region's
/// streams whose HubDeviceArn is the one asked, by stream name.
pub async fn list_edge_agent(
    svc: &Service,
    ctx: &Ctx,
    i: model::ListEdgeAgentConfigurationsInput,
) -> Result<model::ListEdgeAgentConfigurationsOutput> {
    let limit = i
        .max_results
        .map_or(DEFAULT_EDGE_LIST_LIMIT, |n| n.max(1) as usize);
    let after = after_token(i.next_token.as_deref())?;
    let found: Vec<_> = svc
        .streams
        .all()
        .into_iter()
        .map(|(_, _, s)| s)
        .filter(|s| s.region == ctx.region)
        .filter(|s| {
            s.edge
                .as_ref()
                .is_some_and(|e| e.config.hub_device_arn == i.hub_device_arn)
        })
        .filter(|s| after.as_deref().is_none_or(|a| s.name.as_str() > a))
        .collect();
    let page: Vec<_> = found.iter().take(limit).collect();
    let configs = page
        .iter()
        .filter_map(|s| {
            let e = s.edge.as_ref()?;
            Some(model::ListEdgeAgentConfigurationsEdgeConfig {
                stream_name: Some(s.name.clone()),
                stream_arn: Some(s.arn.clone()),
                creation_time: Some(Timestamp(e.created_ms)),
                last_updated_time: Some(Timestamp(e.updated_ms)),
                sync_status: Some(e.sync.as_str().into()),
                failed_status_details: None,
                edge_config: Some(e.config.clone()),
            })
        })
        .collect();
    Ok(model::ListEdgeAgentConfigurationsOutput {
        edge_configs: Some(configs),
        next_token: next_token(found.len() > limit, page.last().map(|s| s.name.as_str())),
    })
}

// ---------------------------------------------------------------------
// Storage tier and mapped resources

/// UpdateStreamStorageConfiguration: DefaultStorageTier; version and
/// status as UpdateStream.
pub async fn update_storage(
    svc: &Service,
    ctx: &Ctx,
    i: model::UpdateStreamStorageConfigurationInput,
) -> Result<model::UpdateStreamStorageConfigurationOutput> {
    let k = locate(svc, ctx, i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    let tier = i.stream_storage_configuration.default_storage_tier;
    change(svc, &k, &i.current_version, |s| {
        s.storage_tier = Some(tier);
        Ok(())
    })
    .await?;
    Ok(model::UpdateStreamStorageConfigurationOutput {})
}

/// DescribeStreamStorageConfiguration: HOT until set otherwise.
pub async fn describe_storage(
    svc: &Service,
    ctx: &Ctx,
    i: model::DescribeStreamStorageConfigurationInput,
) -> Result<model::DescribeStreamStorageConfigurationOutput> {
    let (_, s) = stream_of(svc, ctx, i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    Ok(model::DescribeStreamStorageConfigurationOutput {
        stream_name: Some(s.name.clone()),
        stream_arn: Some(s.arn.clone()),
        stream_storage_configuration: Some(model::StreamStorageConfiguration {
            default_storage_tier: s.storage_tier.clone().unwrap_or_else(|| "HOT".into()),
        }),
    })
}

/// DescribeMappedResourceConfiguration: the signaling channel that stores
/// its media in this stream, if any.
pub async fn describe_mapped_resource(
    svc: &Service,
    ctx: &Ctx,
    i: model::DescribeMappedResourceConfigurationInput,
) -> Result<model::DescribeMappedResourceConfigurationOutput> {
    let (_, s) = stream_of(svc, ctx, i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    after_token(i.next_token.as_deref())?;
    let mapped = svc
        .channels
        .all()
        .into_iter()
        .map(|(_, _, c)| c)
        .filter(|c| c.storage_stream() == Some(s.arn.as_str()))
        .map(|c| model::MappedResourceConfigurationListItem {
            r#type: Some(MAPPED_CHANNEL_TYPE.into()),
            arn: Some(c.arn.clone()),
        })
        .take(1)
        .collect();
    Ok(model::DescribeMappedResourceConfigurationOutput {
        mapped_resource_configuration_list: Some(mapped),
        next_token: None,
    })
}
