//! Signaling channels (WebRTC): their control plane and media storage
//! configuration. The signaling and WebRTC data planes are not served;
//! GetSignalingChannelEndpoint answers Riffle's own address.

use std::collections::BTreeMap;

use riffle_wire::shape::Timestamp;

use crate::error::{Result, VideoError};
use crate::ops::{after_token, channel_arn, merged_tags, new_version, next_token, parse_arn};
use crate::state::{Channel, Status};
use crate::{key, model, Ctx, Service};

/// MessageTtlSeconds when CreateSignalingChannel gives none.
pub const DEFAULT_MESSAGE_TTL_SECONDS: i64 = 60;
/// ListSignalingChannels' page when MaxResults is not given.
pub const DEFAULT_LIST_LIMIT: usize = 500;

pub(crate) fn not_found() -> VideoError {
    VideoError::ResourceNotFound("The requested channel is not found or not active.".into())
}

/// The registry key of the channel a request names by ChannelName or
/// ChannelARN (both: they must name the same channel).
pub(crate) fn locate(
    svc: &Service,
    ctx: &Ctx,
    name: Option<&str>,
    arn: Option<&str>,
) -> Result<String> {
    match (name, arn) {
        (None, None) => Err(VideoError::InvalidArgument(
            "Either ChannelName or ChannelARN must be specified.".into(),
        )),
        (name, Some(a)) => {
            let (region, kind, by_arn) = parse_arn(a).ok_or_else(not_found)?;
            if kind != "channel" {
                return Err(not_found());
            }
            if name.is_some_and(|n| n != by_arn) {
                return Err(VideoError::InvalidArgument(format!(
                    "ChannelName {} and ChannelARN {a} name different channels.",
                    name.unwrap_or_default()
                )));
            }
            let k = key(region, by_arn);
            match svc.channels.get(&k) {
                Some(c) if c.arn == a => Ok(k),
                _ => Err(not_found()),
            }
        }
        (Some(n), None) => {
            let k = key(&ctx.region, n);
            svc.channels.get(&k).map(|_| k).ok_or_else(not_found)
        }
    }
}

fn channel_info(c: &Channel) -> model::ChannelInfo {
    model::ChannelInfo {
        channel_name: Some(c.name.clone()),
        channel_arn: Some(c.arn.clone()),
        channel_type: Some(c.channel_type.clone()),
        channel_status: Some(c.status.as_str().into()),
        creation_time: Some(Timestamp(c.created_ms)),
        single_master_configuration: Some(model::SingleMasterConfiguration {
            message_ttl_seconds: Some(c.message_ttl_seconds),
        }),
        version: Some(c.version.clone()),
    }
}

fn not_active(c: &Channel) -> VideoError {
    VideoError::ResourceInUse(format!(
        "The signaling channel {} is {}; it can be changed when it is ACTIVE.",
        c.name,
        c.status.as_str()
    ))
}

/// CreateSignalingChannel: CREATING, then ACTIVE after the status delay.
pub async fn create(
    svc: &Service,
    ctx: &Ctx,
    i: model::CreateSignalingChannelInput,
) -> Result<model::CreateSignalingChannelOutput> {
    let channel_type = i.channel_type.unwrap_or_else(|| "SINGLE_MASTER".into());
    if channel_type != "SINGLE_MASTER" {
        return Err(VideoError::InvalidArgument(format!(
            "ChannelType {channel_type} is not supported; SINGLE_MASTER is the only supported channel type."
        )));
    }
    let tags = merged_tags(
        &BTreeMap::new(),
        i.tags
            .unwrap_or_default()
            .into_iter()
            .map(|t| (t.key, t.value)),
    )?;
    let now = svc.now_ms();
    let name = i.channel_name;
    let region = ctx.region.clone();
    let channel = Channel {
        region: region.clone(),
        name: name.clone(),
        arn: channel_arn(&region, svc.account(), &name, now),
        channel_type,
        message_ttl_seconds: i
            .single_master_configuration
            .and_then(|c| c.message_ttl_seconds)
            .unwrap_or(DEFAULT_MESSAGE_TTL_SECONDS),
        version: new_version(),
        status: Status::Creating {
            until_ms: now + svc.cfg.status_delay_ms,
        },
        created_ms: now,
        tags,
        media_storage: None,
    };
    let limit = svc.cfg.channel_limit;
    let created = svc
        .channels
        .create(&key(&region, &name), |live| {
            if live
                .iter()
                .any(|(_, _, c)| c.region == region && c.name == name)
            {
                return Err(VideoError::ResourceInUse(format!(
                    "The signaling channel {name} already exists."
                )));
            }
            if live.iter().filter(|(_, _, c)| c.region == region).count() >= limit {
                return Err(VideoError::AccountChannelLimitExceeded(format!(
                    "The account has reached its limit of {limit} signaling channels in {region}."
                )));
            }
            Ok((channel, ()))
        })
        .await?;
    let c = created.cell.snapshot(svc.now_ms());
    Ok(model::CreateSignalingChannelOutput {
        channel_arn: Some(c.arn.clone()),
    })
}

/// DescribeSignalingChannel, by ChannelName or ChannelARN.
pub async fn describe(
    svc: &Service,
    ctx: &Ctx,
    i: model::DescribeSignalingChannelInput,
) -> Result<model::DescribeSignalingChannelOutput> {
    let k = locate(
        svc,
        ctx,
        i.channel_name.as_deref(),
        i.channel_arn.as_deref(),
    )?;
    let c = svc.channels.get(&k).ok_or_else(not_found)?;
    Ok(model::DescribeSignalingChannelOutput {
        channel_info: Some(channel_info(&c)),
    })
}

/// ListSignalingChannels: by name, a page of MaxResults (500 by default).
pub async fn list(
    svc: &Service,
    ctx: &Ctx,
    i: model::ListSignalingChannelsInput,
) -> Result<model::ListSignalingChannelsOutput> {
    let limit = i
        .max_results
        .map_or(DEFAULT_LIST_LIMIT, |n| n.max(1) as usize);
    let after = after_token(i.next_token.as_deref())?;
    let prefix = i
        .channel_name_condition
        .and_then(|c| c.comparison_value)
        .unwrap_or_default();
    let channels: Vec<_> = svc
        .channels
        .all()
        .into_iter()
        .map(|(_, _, c)| c)
        .filter(|c| c.region == ctx.region && c.name.starts_with(&prefix))
        .filter(|c| after.as_deref().is_none_or(|a| c.name.as_str() > a))
        .collect();
    let page: Vec<_> = channels.iter().take(limit).collect();
    Ok(model::ListSignalingChannelsOutput {
        next_token: next_token(channels.len() > limit, page.last().map(|c| c.name.as_str())),
        channel_info_list: Some(page.iter().map(|c| channel_info(c)).collect()),
    })
}

/// UpdateSignalingChannel: MessageTtlSeconds of an ACTIVE channel of the
/// given version; a new version, UPDATING for the status delay.
pub async fn update(
    svc: &Service,
    ctx: &Ctx,
    i: model::UpdateSignalingChannelInput,
) -> Result<model::UpdateSignalingChannelOutput> {
    let k = locate(svc, ctx, None, Some(&i.channel_arn))?;
    let until_ms = svc.now_ms() + svc.cfg.status_delay_ms;
    let version = i.current_version;
    let ttl = i
        .single_master_configuration
        .and_then(|c| c.message_ttl_seconds);
    svc.channels
        .update(&k, |c| {
            if c.version != version {
                return Err(version_mismatch(&version, c));
            }
            if c.status != Status::Active {
                return Err(not_active(c));
            }
            if let Some(ttl) = ttl {
                c.message_ttl_seconds = ttl;
            }
            c.version = new_version();
            c.status = Status::Updating { until_ms };
            Ok(())
        })
        .await?
        .ok_or_else(not_found)?;
    Ok(model::UpdateSignalingChannelOutput {})
}

fn version_mismatch(version: &str, c: &Channel) -> VideoError {
    VideoError::VersionMismatch(format!(
        "The channel version {version} does not match the current version of signaling channel {}.",
        c.name
    ))
}

/// DeleteSignalingChannel: CurrentVersion checked when given; DELETING for
/// the status delay, then gone.
pub async fn delete(
    svc: &Service,
    ctx: &Ctx,
    i: model::DeleteSignalingChannelInput,
) -> Result<model::DeleteSignalingChannelOutput> {
    let k = locate(svc, ctx, None, Some(&i.channel_arn))?;
    let until_ms = svc.now_ms() + svc.cfg.status_delay_ms;
    svc.channels
        .update(&k, |c| {
            if let Some(v) = i.current_version.as_deref().filter(|v| *v != c.version) {
                return Err(version_mismatch(v, c));
            }
            if matches!(c.status, Status::Deleting { .. }) {
                return Err(not_found());
            }
            c.status = Status::Deleting { until_ms };
            Ok(())
        })
        .await?
        .ok_or_else(not_found)?;
    Ok(model::DeleteSignalingChannelOutput {})
}

/// Riffle's address for a protocol: WSS as a WebSocket URL (`wss://` over
/// TLS, `ws://` otherwise), HTTPS and WEBRTC as the request's base URL.
fn protocol_endpoint(base: &str, protocol: &str) -> String {
    if protocol != "WSS" {
        return base.to_owned();
    }
    if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    }
}

/// GetSignalingChannelEndpoint: one endpoint per requested protocol (WSS
/// and HTTPS when none is named); WEBRTC only for a channel whose media
/// storage is ENABLED.
pub async fn endpoint(
    svc: &Service,
    ctx: &Ctx,
    i: model::GetSignalingChannelEndpointInput,
) -> Result<model::GetSignalingChannelEndpointOutput> {
    let k = locate(svc, ctx, None, Some(&i.channel_arn))?;
    let c = svc.channels.get(&k).ok_or_else(not_found)?;
    if matches!(c.status, Status::Creating { .. } | Status::Deleting { .. }) {
        return Err(VideoError::ResourceInUse(format!(
            "The signaling channel {} is {}; its endpoints are available when it is ACTIVE.",
            c.name,
            c.status.as_str()
        )));
    }
    let requested = i
        .single_master_channel_endpoint_configuration
        .and_then(|e| e.protocols)
        .unwrap_or_else(|| vec!["WSS".into(), "HTTPS".into()]);
    let mut protocols: Vec<String> = Vec::new();
    for p in requested {
        if !protocols.contains(&p) {
            protocols.push(p);
        }
    }
    if protocols.iter().any(|p| p == "WEBRTC") && c.storage_stream().is_none() {
        return Err(VideoError::InvalidArgument(format!(
            "The signaling channel {} is not configured for ingestion: the WEBRTC protocol needs its media storage configuration ENABLED.",
            c.name
        )));
    }
    Ok(model::GetSignalingChannelEndpointOutput {
        resource_endpoint_list: Some(
            protocols
                .into_iter()
                .map(|p| model::ResourceEndpointListItem {
                    resource_endpoint: Some(protocol_endpoint(&ctx.endpoint, &p)),
                    protocol: Some(p),
                })
                .collect(),
        ),
    })
}

// ---------------------------------------------------------------------
// Media storage

/// DescribeMediaStorageConfiguration: DISABLED until one is set.
pub async fn describe_media_storage(
    svc: &Service,
    ctx: &Ctx,
    i: model::DescribeMediaStorageConfigurationInput,
) -> Result<model::DescribeMediaStorageConfigurationOutput> {
    let k = locate(
        svc,
        ctx,
        i.channel_name.as_deref(),
        i.channel_arn.as_deref(),
    )?;
    let c = svc.channels.get(&k).ok_or_else(not_found)?;
    Ok(model::DescribeMediaStorageConfigurationOutput {
        media_storage_configuration: Some(c.media_storage.clone().unwrap_or(
            model::MediaStorageConfiguration {
                stream_arn: None,
                status: "DISABLED".into(),
            },
        )),
    })
}

/// UpdateMediaStorageConfiguration: ENABLED names an ACTIVE stream with
/// data retention that no other channel stores its media in.
pub async fn update_media_storage(
    svc: &Service,
    ctx: &Ctx,
    i: model::UpdateMediaStorageConfigurationInput,
) -> Result<model::UpdateMediaStorageConfigurationOutput> {
    let k = locate(svc, ctx, None, Some(&i.channel_arn))?;
    let conf = i.media_storage_configuration;
    let _mapping = svc.mapping.lock().await;
    if let Some(stream_arn) = conf.stream_arn.as_deref() {
        let sk = crate::ops::locate(svc, ctx, None, Some(stream_arn))?;
        let s = svc.streams.get(&sk).ok_or_else(crate::ops::not_found)?;
        if conf.status == "ENABLED" {
            if s.status != Status::Active {
                return Err(VideoError::ResourceInUse(format!(
                    "The stream {} is {}; it can be mapped when it is ACTIVE.",
                    s.name,
                    s.status.as_str()
                )));
            }
            if s.retention_hours == 0 {
                return Err(VideoError::NoDataRetention(format!(
                    "The stream {} has no data retention; media storage needs a stream that keeps its data.",
                    s.name
                )));
            }
            let taken = svc
                .channels
                .all()
                .into_iter()
                .find(|(ck, _, c)| *ck != k && c.storage_stream() == Some(stream_arn));
            if let Some((_, _, other)) = taken {
                return Err(VideoError::ResourceInUse(format!(
                    "The stream {} is already mapped to the signaling channel {}.",
                    s.name, other.arn
                )));
            }
        }
    } else if conf.status == "ENABLED" {
        return Err(VideoError::InvalidArgument(
            "StreamARN must be specified when the media storage Status is ENABLED.".into(),
        ));
    }
    svc.channels
        .update(&k, |c| {
            if c.status != Status::Active {
                return Err(not_active(c));
            }
            c.media_storage = Some(conf);
            Ok(())
        })
        .await?
        .ok_or_else(not_found)?;
    Ok(model::UpdateMediaStorageConfigurationOutput {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wss_endpoints_follow_the_scheme() {
        assert_eq!(
            protocol_endpoint("http://127.0.0.1:4566", "WSS"),
            "ws://127.0.0.1:4566"
        );
        assert_eq!(
            protocol_endpoint("https://localhost:4567", "WSS"),
            "wss://localhost:4567"
        );
        assert_eq!(
            protocol_endpoint("https://localhost:4567", "HTTPS"),
            "https://localhost:4567"
        );
        assert_eq!(protocol_endpoint("http://h:1", "WEBRTC"), "http://h:1");
    }

    #[tokio::test]
    async fn the_channel_limit_is_per_region() {
        let cfg = crate::Config {
            channel_limit: 2,
            status_delay_ms: 0,
            ..crate::Config::default()
        };
        let svc = Service::new(cfg, riffle_core::clock::ManualClock::new(1_000));
        let ctx = |region: &str| Ctx {
            region: region.into(),
            endpoint: "http://127.0.0.1:1".into(),
        };
        let make = |name: &str| model::CreateSignalingChannelInput {
            channel_name: name.into(),
            ..Default::default()
        };
        for n in ["a", "b"] {
            create(&svc, &ctx("us-east-1"), make(n)).await.unwrap();
        }
        let e = create(&svc, &ctx("us-east-1"), make("c"))
            .await
            .unwrap_err();
        assert_eq!(
            (e.error_type(), e.status(), e.to_string()),
            (
                "AccountChannelLimitExceededException",
                400,
                "The account has reached its limit of 2 signaling channels in us-east-1.".into()
            )
        );
        create(&svc, &ctx("eu-west-1"), make("c")).await.unwrap();
    }
}
