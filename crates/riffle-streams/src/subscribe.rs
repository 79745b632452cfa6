//! SubscribeToShard: a consumer's push stream of one shard.
//!
//! [`Service::subscribe`] checks the request like any operation and returns a
//! channel of [`Event`]s. A task reads the shard from the starting position,
//! sends records as they become durable, an event at least every second
//! while idle, the shard's children when a closed shard is drained, and ends
//! the subscription after five minutes of the injected clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use riffle_core::{limits, names};
use riffle_wire::shape::{self, FromValue, IntoValue};
use riffle_wire::Value;
use tokio::sync::mpsc;

use crate::error::Result;
use crate::model::{self, SubscribeToShardEvent, SubscribeToShardInput};
use crate::ops::records::{read_shard, start_position, StartAt};
use crate::state::{ConsumerStatus, Msg};
use crate::{Ctx, KinesisError, Service, StreamKey};

/// One message of a subscription: a `SubscribeToShardEvent` document, or a
/// modeled error.
pub enum Event {
    Records(Value),
    Error(KinesisError),
}

/// Subscriptions by consumer and shard, with AWS's rules: one call per
/// second (LimitExceededException), a second call within five seconds of a
/// successful one is ResourceInUseException, and a later call takes over:
/// the earlier subscription ends with ResourceInUseException.
#[derive(Default)]
pub struct Subscriptions(Mutex<HashMap<(String, u32), Slot>>);

#[derive(Default)]
struct Slot {
    last_call_ms: Option<i64>,
    last_success_ms: i64,
    /// The generation of the live subscription, if one is live.
    live: Option<u64>,
    generation: u64,
}

/// How long a successful call keeps its subscription from being taken over.
const TAKEOVER_AFTER_MS: i64 = 5_000;

/// Releases its subscription's claim when the subscription ends.
struct Active<'a>(&'a Subscriptions, (String, u32), u64);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        let mut g = self.0 .0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = g.get_mut(&self.1) {
            if slot.live == Some(self.2) {
                slot.live = None;
            }
        }
    }
}

impl Subscriptions {
    /// Admits a call at `now`, returning the new subscription's generation.
    fn claim(&self, consumer_arn: &str, shard: u32, now: i64) -> Result<u64> {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let slot = g.entry((consumer_arn.to_owned(), shard)).or_default();
        if slot.last_call_ms.is_some_and(|t| now - t < 1000) {
            return Err(KinesisError::LimitExceeded(format!(
                "Rate exceeded for consumer {consumer_arn} and shard {}.",
                names::shard_id(shard)
            )));
        }
        slot.last_call_ms = Some(now);
        if slot.live.is_some() && now - slot.last_success_ms < TAKEOVER_AFTER_MS {
            return Err(KinesisError::ResourceInUse(format!(
                "Another active subscription exists for consumer {consumer_arn} on shard {}.",
                names::shard_id(shard)
            )));
        }
        slot.generation += 1;
        slot.live = Some(slot.generation);
        slot.last_success_ms = now;
        Ok(slot.generation)
    }

    /// Whether subscription `generation` still holds its claim.
    fn holds(&self, consumer_arn: &str, shard: u32, generation: u64) -> bool {
        let g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.get(&(consumer_arn.to_owned(), shard))
            .is_some_and(|s| s.live == Some(generation))
    }

    /// Forgets a deregistered consumer's slots.
    pub(crate) fn forget_consumer(&self, consumer_arn: &str) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.retain(|(arn, _), _| arn != consumer_arn);
    }
}

/// How often an idle subscription gets an event.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Records per event: AWS pushes at most about 1 MiB or 10,000 records.
const EVENT_MAX_RECORDS: usize = 10_000;

impl Service {
    /// Validates a SubscribeToShard request and starts its event stream.
    pub async fn subscribe(
        self: &Arc<Self>,
        ctx: &Ctx,
        body: Value,
    ) -> Result<mpsc::Receiver<Event>> {
        let _ = ctx;
        let input = SubscribeToShardInput::from_value(Value::Map(shape::input(
            &model::SUBSCRIBE_TO_SHARD_INPUT,
            body,
        )?));
        let account = self.account().to_owned();
        let now = self.now_ms();
        let carn = names::parse_consumer_arn(&input.consumer_arn).ok_or_else(|| {
            KinesisError::InvalidArgument(format!("Invalid ConsumerARN: {}", input.consumer_arn))
        })?;
        let key: StreamKey = (carn.stream.region.clone(), carn.stream.name.clone());
        let (stream_id, shard_index, mut position) = {
            let s = self
                .snapshot(&key)
                .ok_or_else(|| Msg::stream_not_found(&key.1, &account))?;
            let s = &*s;
            let c = s
                .consumers
                .iter()
                .find(|c| c.arn == input.consumer_arn)
                .ok_or_else(|| {
                    KinesisError::ResourceNotFound(format!(
                        "Consumer {} under stream {} under account {account} not found.",
                        carn.name, s.name
                    ))
                })?;
            if c.status != ConsumerStatus::Active {
                return Err(KinesisError::ResourceInUse(format!(
                    "Consumer {} with creation timestamp {} under stream {} and account {account} is not in ACTIVE status.",
                    c.name,
                    c.created_ms / 1000,
                    s.name
                )));
            }
            let index = names::parse_shard_id(&input.shard_id)
                .ok_or_else(|| Msg::shard_not_found(&input.shard_id, &s.name, &account))?;
            let shard = s.shard(index).ok_or_else(|| {
                Msg::shard_does_not_exist(&names::shard_id(index), &s.name, &account)
            })?;
            let at = StartAt {
                kind: &input.starting_position.r#type,
                seq: input.starting_position.sequence_number.as_deref(),
                timestamp: input.starting_position.timestamp,
            };
            let pos = start_position(s, shard, at, now, &account, "SubscribeToShard")?;
            (s.id, index, pos)
        };
        if input.dry_run == Some(true) {
            return Err(KinesisError::DryRunOperation(
                "Request would have succeeded, but DryRun flag is set.".into(),
            ));
        }
        let generation = self
            .subscriptions
            .claim(&input.consumer_arn, shard_index, now)?;
        let (tx, rx) = mpsc::channel(4);
        let svc = Arc::clone(self);
        let deadline = now + limits::SUBSCRIPTION_TTL_MS;
        let consumer_arn = input.consumer_arn.clone();
        let consumer_name = carn.name.clone();
        let claim = (input.consumer_arn.clone(), shard_index);
        tokio::spawn(async move {
            let _active = Active(&svc.subscriptions, claim, generation);
            let mut last_sent = None;
            loop {
                // Read from a snapshot; no lock is held.
                let step = {
                    match svc.snapshot(&key).filter(|s| s.id == stream_id) {
                        None => Err(Msg::stream_not_found(&key.1, &account)),
                        // A deregistered consumer's subscriptions end.
                        Some(s)
                            if !s.consumers.iter().any(|c| {
                                c.arn == consumer_arn && c.status == ConsumerStatus::Active
                            }) =>
                        {
                            Err(KinesisError::ResourceNotFound(format!(
                                "Consumer {consumer_name} under stream {} under account {account} not found.",
                                s.name
                            )))
                        }
                        Some(s) => match s.shard(shard_index) {
                            None => Err(Msg::shard_does_not_exist(
                                &names::shard_id(shard_index),
                                &s.name,
                                &account,
                            )),
                            Some(shard) => {
                                // Watch before reading, so a record published
                                // between the two is not waited for.
                                let watch = s.log.watch();
                                read_shard(&svc, &s, shard, position, EVENT_MAX_RECORDS).map(
                                    |read| {
                                        let tip = (svc.now_ms() / 1000) as u64;
                                        let continuation = read.records.last().map_or_else(
                                            || {
                                                shard.seq(
                                                    read.next_position.max(shard.start_offset) - 1,
                                                    tip,
                                                )
                                            },
                                            |r| r.sequence_number.clone(),
                                        );
                                        (read, continuation, watch)
                                    },
                                )
                            }
                        },
                    }
                };
                let (read, continuation, watch) = match step {
                    Ok(x) => x,
                    Err(e) => {
                        let _ = tx.send(Event::Error(e)).await;
                        return;
                    }
                };
                if !svc
                    .subscriptions
                    .holds(&consumer_arn, shard_index, generation)
                {
                    let e = KinesisError::ResourceInUse(format!(
                        "Another subscription for consumer {consumer_arn} on shard {} took over this one.",
                        names::shard_id(shard_index)
                    ));
                    let _ = tx.send(Event::Error(e)).await;
                    return;
                }
                // Progress includes records skipped as past retention: only
                // an idle shard waits for new data.
                let progressed = read.next_position > position || !read.records.is_empty();
                position = read.next_position;
                let ended = read.children.is_some();
                svc.traffic.read(
                    stream_id,
                    shard_index,
                    read.records.len() as u64,
                    read.records.iter().map(|r| r.data.len() as u64).sum(),
                    read.millis_behind,
                );

                let mut event = SubscribeToShardEvent {
                    records: read.records,
                    continuation_sequence_number: continuation,
                    millis_behind_latest: read.millis_behind,
                    child_shards: read.children,
                }
                .into_value();
                if ended {
                    // At the end of a shard AWS sends ChildShards and no
                    // continuation; consumers detect shard end by its absence.
                    if let Value::Map(m) = &mut event {
                        m.take("ContinuationSequenceNumber");
                    }
                }
                // An idle shard gets an event about once a second (a
                // heartbeat carrying the continuation), not one after every
                // event with records.
                let heartbeat_due =
                    last_sent.is_none_or(|t: tokio::time::Instant| t.elapsed() >= HEARTBEAT);
                if progressed || ended || heartbeat_due {
                    if tx.send(Event::Records(event)).await.is_err() || ended {
                        return;
                    }
                    last_sent = Some(tokio::time::Instant::now());
                }
                if svc.now_ms() >= deadline || svc.is_shutting_down() {
                    return;
                }
                if !progressed {
                    let mut watch = watch;
                    let mut stop = svc.shutdown.subscribe();
                    // A client that goes away releases the claim at once.
                    tokio::select! {
                        _ = tokio::time::timeout(HEARTBEAT, watch.changed()) => {}
                        _ = stop.wait_for(|s| *s) => {}
                        () = tx.closed() => return,
                    }
                }
            }
        });
        Ok(rx)
    }
}
