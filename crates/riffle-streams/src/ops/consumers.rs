//! RegisterStreamConsumer, DescribeStreamConsumer, ListStreamConsumers,
//! DeregisterStreamConsumer.

use riffle_core::{limits, names};
use riffle_wire::shape::Timestamp;

use crate::error::Result;
use crate::model::*;
use crate::state::{Consumer, ConsumerStatus, Msg, Stream};
use crate::{token_kind, Ctx, KinesisError, Service, StreamKey};

fn stream_key(svc: &Service, ctx: &Ctx, arn: &str) -> Result<StreamKey> {
    svc.key(ctx, None, Some(arn))
}

/// Finds a consumer by ARN, or by stream ARN and name.
fn locate(
    svc: &Service,
    ctx: &Ctx,
    stream_arn: Option<&str>,
    name: Option<&str>,
    arn: Option<&str>,
) -> Result<(StreamKey, String)> {
    let account = svc.account();
    match (arn, stream_arn, name) {
        (Some(arn), _, _) => {
            let c = names::parse_consumer_arn(arn).ok_or_else(|| {
                KinesisError::InvalidArgument(format!("Invalid ConsumerARN: {arn}"))
            })?;
            if c.stream.account != account {
                return Err(KinesisError::ResourceNotFound(format!(
                    "Consumer {arn} not found."
                )));
            }
            Ok(((c.stream.region, c.stream.name), c.name))
        }
        (None, Some(sarn), Some(name)) => Ok((stream_key(svc, ctx, sarn)?, name.to_owned())),
        _ => Err(KinesisError::InvalidArgument(
            "ConsumerARN or both ConsumerName and StreamARN are required for this request.".into(),
        )),
    }
}

/// Runs `f` on the stream of the consumer a request names and the
/// consumer's position in it, as a control operation of that stream.
async fn with_consumer<T>(
    svc: &Service,
    ctx: &Ctx,
    stream_arn: Option<&str>,
    name: Option<&str>,
    arn: Option<&str>,
    f: impl FnOnce(&mut Stream, usize) -> Result<T>,
) -> Result<T> {
    let account = svc.account().to_owned();
    let (key, name) = locate(svc, ctx, stream_arn, name, arn)?;
    svc.update_key(&key, |s| {
        let i = s
            .consumers
            .iter()
            .position(|c| c.name == name && arn.is_none_or(|a| a == c.arn))
            .ok_or_else(|| {
                KinesisError::ResourceNotFound(format!(
                    "Consumer {name} under stream {} under account {account} not found.",
                    s.name
                ))
            })?;
        f(s, i)
    })
    .await
}

pub async fn register(
    svc: &Service,
    ctx: &Ctx,
    input: RegisterStreamConsumerInput,
) -> Result<RegisterStreamConsumerOutput> {
    let account = svc.account().to_owned();
    let now = svc.now_ms();
    if let Some(tags) = &input.tags {
        super::tags::check_tag_keys(tags.keys())?;
    }
    svc.update(ctx, None, Some(&input.stream_arn), |s| {
        if s.consumers.iter().any(|c| c.name == input.consumer_name) {
            return Err(KinesisError::ResourceInUse(format!(
                "Consumer {} under stream {} already exists for account {account}.",
                input.consumer_name, s.name
            )));
        }
        if s.consumers.len() >= limits::MAX_CONSUMERS {
            return Err(KinesisError::LimitExceeded(format!(
                "Consumer limit of {} for stream {} under account {account} has been reached.",
                limits::MAX_CONSUMERS,
                s.name
            )));
        }
        let c = Consumer {
            name: input.consumer_name.clone(),
            arn: names::consumer_arn(&s.arn, &input.consumer_name, now / 1000),
            created_ms: now,
            status: if svc.cfg.status_delay_ms > 0 {
                ConsumerStatus::Creating {
                    until_ms: now + svc.cfg.status_delay_ms,
                }
            } else {
                ConsumerStatus::Active
            },
            tags: input.tags.unwrap_or_default(),
            policy: None,
        };
        let out = c.to_model();
        s.consumers.push(c);
        Ok(RegisterStreamConsumerOutput { consumer: out })
    })
    .await
}

pub async fn describe(
    svc: &Service,
    ctx: &Ctx,
    input: DescribeStreamConsumerInput,
) -> Result<DescribeStreamConsumerOutput> {
    let (sarn, name, arn) = (
        input.stream_arn.as_deref(),
        input.consumer_name.as_deref(),
        input.consumer_arn.as_deref(),
    );
    with_consumer(svc, ctx, sarn, name, arn, |s, i| {
        let m = s.consumers[i].to_model();
        Ok(DescribeStreamConsumerOutput {
            consumer_description: ConsumerDescription {
                consumer_name: m.consumer_name,
                consumer_arn: m.consumer_arn,
                consumer_status: m.consumer_status,
                consumer_creation_timestamp: m.consumer_creation_timestamp,
                stream_arn: s.arn.clone(),
            },
        })
    })
    .await
}

pub async fn deregister(
    svc: &Service,
    ctx: &Ctx,
    input: DeregisterStreamConsumerInput,
) -> Result<()> {
    let (now, delay) = (svc.now_ms(), svc.cfg.status_delay_ms);
    let (sarn, name, arn) = (
        input.stream_arn.as_deref(),
        input.consumer_name.as_deref(),
        input.consumer_arn.as_deref(),
    );
    let gone = with_consumer(svc, ctx, sarn, name, arn, |s, i| {
        let gone = s.consumers[i].arn.clone();
        if delay == 0 {
            s.consumers.remove(i);
        } else if !matches!(s.consumers[i].status, ConsumerStatus::Deleting { .. }) {
            s.consumers[i].status = ConsumerStatus::Deleting {
                until_ms: now + delay,
            };
        }
        Ok(gone)
    })
    .await?;
    // Its subscriptions see it gone and end; their slots go now.
    svc.subscriptions.forget_consumer(&gone);
    Ok(())
}

pub async fn list(
    svc: &Service,
    ctx: &Ctx,
    input: ListStreamConsumersInput,
) -> Result<ListStreamConsumersOutput> {
    let now = svc.now_ms();
    let skip = match &input.next_token {
        Some(t) => {
            let raw = svc
                .tokens
                .open(token_kind::LIST_CONSUMERS, t)
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| KinesisError::InvalidArgument(format!("Invalid NextToken: {t}")))?;
            let (skip, issued) = raw.split_once('\n').unwrap_or(("0", "0"));
            if now - issued.parse::<i64>().unwrap_or(0) > limits::NEXT_TOKEN_TTL_MS {
                return Err(KinesisError::ExpiredNextToken(format!(
                    "NextToken {t} has expired."
                )));
            }
            skip.parse::<usize>().unwrap_or(0)
        }
        None => 0,
    };
    let limit = input
        .max_results
        .map_or(limits::LIST_CONSUMERS_DEFAULT, |m| {
            (m as usize).min(limits::LIST_CONSUMERS_DEFAULT)
        });
    let created_filter = input.stream_creation_timestamp;
    svc.view(ctx, None, Some(&input.stream_arn), |s| {
        if let Some(Timestamp(ts)) = created_filter {
            if ts / 1000 != s.created_ms / 1000 {
                return Err(Msg::stream_not_found(&s.name, svc.account()));
            }
        }
        let all: Vec<_> = s.consumers.iter().map(Consumer::to_model).collect();
        let (page, more) = super::page(&all, skip, limit);
        let next_token = more.then(|| {
            svc.tokens.seal(
                token_kind::LIST_CONSUMERS,
                format!("{}\n{now}", skip + page.len()).as_bytes(),
            )
        });
        Ok(ListStreamConsumersOutput {
            consumers: Some(page),
            next_token,
        })
    })
}
