//! CreateDeliveryStream, DeleteDeliveryStream, DescribeDeliveryStream,
//! ListDeliveryStreams.

use std::collections::BTreeMap;

use riffle_core::names;
use riffle_wire::shape::Timestamp;

use crate::buffer::LogBuffer;
use crate::error::{FirehoseError, Result};
use crate::ops::{destinations, encryption, tags};
use crate::registry::blocking;
use crate::state::{DeliveryStream, Destination, Msg, Source, Sse, SseStatus, Status};
use crate::{model, Ctx, Service, StreamKey};

/// ListDeliveryStreams' page size when no Limit is given.
const DEFAULT_LIST_LIMIT: usize = 10;

/// The source a create request names, checked.
fn source(
    svc: &Service,
    i: &model::CreateDeliveryStreamInput,
    stream_type: &str,
) -> Result<Source> {
    match stream_type {
        "DirectPut" => {
            if i.kinesis_stream_source_configuration.is_some() {
                return Err(FirehoseError::InvalidArgument(
                    "KinesisSourceStreamConfig is only allowed for KinesisStreamAsSource type delivery stream.".into(),
                ));
            }
            Ok(Source::DirectPut {
                throughput_hint_mbs: i
                    .direct_put_source_configuration
                    .as_ref()
                    .map(|c| c.throughput_hint_in_m_bs),
            })
        }
        "KinesisStreamAsSource" => {
            let c = i.kinesis_stream_source_configuration.as_ref().ok_or_else(|| {
                FirehoseError::InvalidArgument(
                    "KinesisSourceStreamConfig is required for KinesisStreamAsSource type delivery stream.".into(),
                )
            })?;
            let arn = names::parse_stream_arn(&c.kinesis_stream_arn).ok_or_else(|| {
                FirehoseError::InvalidArgument(format!(
                    "Invalid KinesisStreamArn {}.",
                    c.kinesis_stream_arn
                ))
            })?;
            let exists = arn.account == svc.cfg.account
                && svc
                    .kinesis
                    .as_ref()
                    .is_some_and(|k| k.stream_writer(&arn.region, &arn.name).is_ok());
            if !exists {
                return Err(FirehoseError::InvalidArgument(format!(
                    "Stream {} under account {} not found.",
                    arn.name, arn.account
                )));
            }
            Ok(Source::Kinesis {
                stream_arn: c.kinesis_stream_arn.clone(),
                role_arn: c.role_arn.clone(),
                start_ms: svc.now_ms(),
            })
        }
        other => Err(FirehoseError::InvalidArgument(format!(
            "{other} delivery stream type is not supported by Riffle yet."
        ))),
    }
}

/// CreateDeliveryStream.
pub async fn create(
    svc: &Service,
    ctx: &Ctx,
    mut i: model::CreateDeliveryStreamInput,
) -> Result<model::CreateDeliveryStreamOutput> {
    let name = i.delivery_stream_name.clone();
    let key: StreamKey = (ctx.region.clone(), name.clone());
    let account = svc.account().to_owned();
    let stream_type = i
        .delivery_stream_type
        .clone()
        .unwrap_or_else(|| "DirectPut".into());
    let source = source(svc, &i, &stream_type)?;
    let mut given = destinations::configured(&mut i);
    if given.len() != 1 {
        return Err(FirehoseError::InvalidArgument(
            "Exactly one destination configuration is supported for a Firehose.".into(),
        ));
    }
    let (kind, config) = given.remove(0);
    let destination = Destination {
        id: destinations::destination_id(1),
        kind,
        access_key: destinations::access_key(&config),
        password: destinations::password(&config),
        description: destinations::describe(kind, config),
    };
    destinations::check(&destination)?;
    let sse = match i.delivery_stream_encryption_configuration_input.take() {
        Some(c) => {
            if matches!(source, Source::Kinesis { .. }) {
                return Err(Msg::not_permitted_on_kinesis_source());
            }
            encryption::check_key(&c)?;
            Some(Sse {
                key_type: c.key_type,
                key_arn: c.key_arn,
                status: SseStatus::Enabled,
            })
        }
        None => None,
    };
    let tag_map: BTreeMap<String, String> = match i.tags.take() {
        Some(t) => tags::merged(&BTreeMap::new(), t, &name, &account)?,
        None => BTreeMap::new(),
    };
    // Checked and reserved at once; the I/O below runs without the lock.
    let limit = svc.cfg.delivery_stream_limit;
    let reservation = svc.reserve_creation(&key, |reserved| {
        let in_region = svc
            .all_streams()
            .iter()
            .filter(|s| s.region == ctx.region)
            .count()
            + reserved;
        if in_region >= limit {
            return Err(FirehoseError::LimitExceeded(format!(
                "You have already consumed your firehose quota of {limit} hoses."
            )));
        }
        Ok(())
    })?;
    let now = svc.now_ms();
    let s = DeliveryStream {
        region: ctx.region.clone(),
        name: name.clone(),
        stream_type,
        status: Status::Creating {
            until_ms: now + svc.cfg.status_delay_ms,
        },
        created_ms: now,
        updated_ms: None,
        version: 1,
        log_id: svc.next_log_id(),
        source,
        sse,
        destinations: vec![destination],
        tags: tag_map,
        delivered_offset: 0,
        kinesis_checkpoint: None,
    };
    let engine = svc.engine.clone();
    let id = s.log_id;
    let log = blocking(move || engine.open(id)).await??;
    log.set_durability(svc.cfg.durability);
    // A stream whose deletion completed but was not yet swept is replaced:
    // the new row takes its key, then its buffer goes. A sweep that held
    // its control lock first has removed it already.
    let old = svc.lock_cell(&key).await;
    let replaced = old
        .as_ref()
        .filter(|(cell, _)| svc.is_registered(&key, cell))
        .map(|(cell, _)| cell.log_id());
    if let Err(e) = svc.write_row(&key, Some(s.clone())).await {
        drop(old);
        let engine = svc.engine.clone();
        if let Err(e) = blocking(move || engine.remove(id)).await? {
            tracing::warn!(log = id, error = %e, "removing the buffer log of a failed creation failed");
        }
        return Err(e);
    }
    let arn = s.arn(&account);
    reservation.publish(s, LogBuffer::new(log));
    drop(old);
    if let Some(old) = replaced {
        let engine = svc.engine.clone();
        blocking(move || engine.remove(old)).await??;
    }
    Ok(model::CreateDeliveryStreamOutput {
        delivery_stream_arn: Some(arn),
    })
}

/// DeleteDeliveryStream: DELETING for the status delay, then gone; the
/// maintenance task removes the row and the buffer.
pub async fn delete(
    svc: &Service,
    ctx: &Ctx,
    i: model::DeleteDeliveryStreamInput,
) -> Result<model::DeleteDeliveryStreamOutput> {
    let key: StreamKey = (ctx.region.clone(), i.delivery_stream_name);
    let account = svc.account().to_owned();
    let until_ms = svc.now_ms() + svc.cfg.status_delay_ms;
    svc.update_key(&key, |s| match s.status {
        Status::Creating { .. } => Err(FirehoseError::ResourceInUse(format!(
            "Firehose {} under account {} is in CREATING state and cannot be deleted.",
            s.name, account
        ))),
        Status::Deleting { .. } => Ok(()),
        Status::Active => {
            s.status = Status::Deleting { until_ms };
            Ok(())
        }
    })
    .await?;
    Ok(model::DeleteDeliveryStreamOutput {})
}

/// The description of a delivery stream.
pub(crate) fn description(
    svc: &Service,
    s: &DeliveryStream,
    limit: usize,
    after: Option<&str>,
) -> model::DeliveryStreamDescription {
    let all: Vec<&Destination> = s
        .destinations
        .iter()
        .filter(|d| after.is_none_or(|a| d.id.as_str() > a))
        .collect();
    let has_more = all.len() > limit;
    let sse = match &s.sse {
        Some(sse) => model::DeliveryStreamEncryptionConfiguration {
            key_arn: sse.key_arn.clone(),
            key_type: Some(sse.key_type.clone()),
            status: Some(sse.status.as_str().into()),
            failure_description: None,
        },
        None => model::DeliveryStreamEncryptionConfiguration {
            status: Some("DISABLED".into()),
            ..Default::default()
        },
    };
    let source = match &s.source {
        Source::DirectPut {
            throughput_hint_mbs,
        } => model::SourceDescription {
            direct_put_source_description: Some(model::DirectPutSourceDescription {
                throughput_hint_in_m_bs: *throughput_hint_mbs,
            }),
            ..Default::default()
        },
        Source::Kinesis {
            stream_arn,
            role_arn,
            start_ms,
        } => model::SourceDescription {
            kinesis_stream_source_description: Some(model::KinesisStreamSourceDescription {
                kinesis_stream_arn: Some(stream_arn.clone()),
                role_arn: Some(role_arn.clone()),
                delivery_start_timestamp: Some(Timestamp(*start_ms)),
            }),
            ..Default::default()
        },
    };
    model::DeliveryStreamDescription {
        delivery_stream_name: s.name.clone(),
        delivery_stream_arn: s.arn(svc.account()),
        delivery_stream_status: s.status.as_str().into(),
        failure_description: svc
            .failure(&(s.region.clone(), s.name.clone()))
            .map(|details| model::FailureDescription {
                r#type: "UNKNOWN_ERROR".into(),
                details,
            }),
        delivery_stream_encryption_configuration: Some(sse),
        delivery_stream_type: s.stream_type.clone(),
        version_id: s.version.to_string(),
        create_timestamp: Some(Timestamp(s.created_ms)),
        last_update_timestamp: s.updated_ms.map(Timestamp),
        source: Some(source),
        destinations: all
            .into_iter()
            .take(limit)
            .map(destinations::description)
            .collect(),
        has_more_destinations: has_more,
    }
}

/// DescribeDeliveryStream.
pub async fn describe(
    svc: &Service,
    ctx: &Ctx,
    i: model::DescribeDeliveryStreamInput,
) -> Result<model::DescribeDeliveryStreamOutput> {
    let key: StreamKey = (ctx.region.clone(), i.delivery_stream_name);
    let s = svc.require(&key)?;
    let limit = i.limit.map_or(usize::MAX, |l| l.max(1) as usize);
    Ok(model::DescribeDeliveryStreamOutput {
        delivery_stream_description: description(
            svc,
            &s,
            limit,
            i.exclusive_start_destination_id.as_deref(),
        ),
    })
}

/// ListDeliveryStreams: names in order, after ExclusiveStartDeliveryStreamName,
/// of one type when DeliveryStreamType is given.
pub async fn list(
    svc: &Service,
    ctx: &Ctx,
    i: model::ListDeliveryStreamsInput,
) -> Result<model::ListDeliveryStreamsOutput> {
    let limit = i.limit.map_or(DEFAULT_LIST_LIMIT, |l| l.max(1) as usize);
    let names: Vec<String> = svc
        .all_streams()
        .iter()
        .filter(|s| s.region == ctx.region)
        .filter(|s| {
            i.delivery_stream_type
                .as_deref()
                .is_none_or(|t| s.stream_type == t)
        })
        .filter(|s| {
            i.exclusive_start_delivery_stream_name
                .as_deref()
                .is_none_or(|a| s.name.as_str() > a)
        })
        .map(|s| s.name.clone())
        .collect();
    let has_more = names.len() > limit;
    Ok(model::ListDeliveryStreamsOutput {
        delivery_stream_names: names.into_iter().take(limit).collect(),
        has_more_delivery_streams: has_more,
    })
}
