//! ListShards, SplitShard, MergeShards, UpdateShardCount.

use riffle_core::hashkey::{self, HashRange};
use riffle_core::{limits, names};
use riffle_wire::shape::Timestamp;

use crate::error::Result;
use crate::model::*;
use crate::state::{require_active, Mode, Msg, Shard, Status, Stream};
use crate::{token_kind, Ctx, KinesisError, Service};

/// A ListShards continuation: stream, last shard index returned, page size,
/// and the first page's ShardFilter, which keeps applying to later pages.
struct ShardsToken {
    region: String,
    name: String,
    after: u32,
    max: usize,
    issued_ms: i64,
    filter: Option<ShardFilter>,
}

impl ShardsToken {
    fn seal(&self, svc: &Service) -> String {
        // Filter fields are validated values (an enum, a shard id of
        // `[a-zA-Z0-9_.-]+`, a number): none holds a newline.
        let (kind, shard, ts) = match &self.filter {
            Some(f) => (
                f.r#type.as_str(),
                f.shard_id.as_deref().unwrap_or(""),
                f.timestamp.map(|t| t.0.to_string()).unwrap_or_default(),
            ),
            None => ("", "", String::new()),
        };
        let payload = format!(
            "{}\n{}\n{}\n{}\n{}\n{kind}\n{shard}\n{ts}",
            self.region, self.name, self.after, self.max, self.issued_ms
        );
        svc.tokens.seal(token_kind::LIST_SHARDS, payload.as_bytes())
    }

    fn open(svc: &Service, token: &str) -> Option<ShardsToken> {
        let raw = String::from_utf8(svc.tokens.open(token_kind::LIST_SHARDS, token)?).ok()?;
        let mut p = raw.split('\n');
        let mut tok = ShardsToken {
            region: p.next()?.into(),
            name: p.next()?.into(),
            after: p.next()?.parse().ok()?,
            max: p.next()?.parse().ok()?,
            issued_ms: p.next()?.parse().ok()?,
            filter: None,
        };
        // Tokens sealed before filters were carried end here.
        if let (Some(kind), Some(shard), Some(ts)) = (p.next(), p.next(), p.next()) {
            if !kind.is_empty() {
                tok.filter = Some(ShardFilter {
                    r#type: kind.into(),
                    shard_id: (!shard.is_empty()).then(|| shard.into()),
                    timestamp: if ts.is_empty() {
                        None
                    } else {
                        Some(Timestamp(ts.parse().ok()?))
                    },
                });
            }
        }
        Some(tok)
    }
}

/// Shards that ListShards and DescribeStream still list: open ones, and
/// closed ones until their records have all passed the retention period.
pub(crate) fn listed(s: &Stream, sh: &Shard, now: i64) -> bool {
    let horizon = now - s.retention_ms();
    sh.closed.is_none_or(|c| c.at_ms >= horizon)
}

fn filter_shards<'a>(
    s: &'a Stream,
    f: Option<&ShardFilter>,
    now: i64,
    account: &str,
) -> Result<Vec<&'a Shard>> {
    let live = |sh: &&Shard| listed(s, sh, now);
    let all = s.shards.iter().filter(live);
    let Some(f) = f else { return Ok(all.collect()) };
    let need_ts = || {
        f.timestamp.ok_or_else(|| {
            KinesisError::InvalidArgument(format!(
                "Timestamp must be specified for ShardFilter of type {}.",
                f.r#type
            ))
        })
    };
    Ok(match f.r#type.as_str() {
        "AFTER_SHARD_ID" => {
            let id = f.shard_id.as_deref().ok_or_else(|| {
                KinesisError::InvalidArgument(
                    "ShardId must be specified for ShardFilter of type AFTER_SHARD_ID.".into(),
                )
            })?;
            let after = shard_index(id, &s.name, account)?;
            all.filter(|sh| sh.index > after).collect()
        }
        "AT_LATEST" => all.filter(|sh| sh.is_open()).collect(),
        "AT_TRIM_HORIZON" => all
            .filter(|sh| {
                sh.parent
                    .is_none_or(|p| !s.shards.iter().any(|x| x.index == p && live(&x)))
            })
            .collect(),
        "FROM_TRIM_HORIZON" => all.collect(),
        "AT_TIMESTAMP" => {
            let ts = need_ts()?.0;
            all.filter(|sh| {
                (sh.created_secs as i64) * 1000 <= ts.max(s.created_ms)
                    && sh.closed.is_none_or(|c| c.at_ms > ts)
            })
            .collect()
        }
        "FROM_TIMESTAMP" => {
            let ts = need_ts()?.0;
            all.filter(|sh| sh.closed.is_none_or(|c| c.at_ms > ts))
                .collect()
        }
        other => {
            return Err(KinesisError::InvalidArgument(format!(
                "Invalid ShardFilter type {other}."
            )))
        }
    })
}

pub async fn list_shards(
    svc: &Service,
    ctx: &Ctx,
    input: ListShardsInput,
) -> Result<ListShardsOutput> {
    let account = svc.account().to_owned();
    let now = svc.now_ms();
    let named = input.stream_name.is_some() || input.stream_arn.is_some();
    let (key, after, max, filter) = match &input.next_token {
        Some(t) => {
            if named {
                return Err(KinesisError::InvalidArgument(
                    "NextToken and StreamName cannot be provided together.".into(),
                ));
            }
            // ShardFilter may come again with NextToken (the API reference
            // forbids only these two); the token carries the first page's.
            if input.exclusive_start_shard_id.is_some() || input.stream_creation_timestamp.is_some()
            {
                return Err(KinesisError::InvalidArgument(
                    "NextToken cannot be combined with ExclusiveStartShardId or StreamCreationTimestamp.".into(),
                ));
            }
            let tok = ShardsToken::open(svc, t)
                .ok_or_else(|| KinesisError::InvalidArgument(format!("Invalid NextToken: {t}")))?;
            if now - tok.issued_ms > limits::NEXT_TOKEN_TTL_MS {
                return Err(KinesisError::ExpiredNextToken(format!(
                    "The timestampInMillis parameter of NextToken {t} is expired.",
                )));
            }
            let max = input.max_results.map_or(tok.max, |m| m as usize);
            let filter = input.shard_filter.clone().or(tok.filter);
            ((tok.region, tok.name), Some(tok.after), max, filter)
        }
        None => {
            if !named {
                return Err(KinesisError::InvalidArgument(
                    "Either NextToken or StreamName should be provided.".into(),
                ));
            }
            let key = svc.key(
                ctx,
                input.stream_name.as_deref(),
                input.stream_arn.as_deref(),
            )?;
            let after = match input.exclusive_start_shard_id.as_deref() {
                Some(id) => Some(shard_index(id, &key.1, &account)?),
                None => None,
            };
            (
                key,
                after,
                input
                    .max_results
                    .map_or(limits::LIST_SHARDS_DEFAULT, |m| m as usize),
                input.shard_filter.clone(),
            )
        }
    };
    let max = max.clamp(1, limits::LIST_SHARDS_DEFAULT);
    let s = svc
        .snapshot(&key)
        .ok_or_else(|| Msg::stream_not_found(&key.1, &account))?;
    let s = &*s;
    if let Some(ts) = input.stream_creation_timestamp {
        if ts.0 / 1000 != s.created_ms / 1000 {
            return Err(Msg::stream_not_found(&key.1, &account));
        }
    }
    if matches!(s.status, Status::Creating { .. }) {
        return Err(Msg::not_active(s, &account));
    }
    let shards: Vec<_> = filter_shards(s, filter.as_ref(), now, &account)?
        .into_iter()
        .filter(|sh| after.is_none_or(|a| sh.index > a))
        .collect();
    let page: Vec<_> = shards.iter().take(max).collect();
    let next_token = if shards.len() > page.len() {
        page.last().map(|last| {
            ShardsToken {
                region: key.0.clone(),
                name: key.1.clone(),
                after: last.index,
                max,
                issued_ms: now,
                filter: filter.clone(),
            }
            .seal(svc)
        })
    } else {
        None
    };
    Ok(ListShardsOutput {
        shards: Some(page.iter().map(|sh| sh.to_model()).collect()),
        next_token,
    })
}

/// Resolves a client's shard id or fails with AWS's "Could not find shard".
fn shard_index(id: &str, stream: &str, account: &str) -> Result<u32> {
    names::parse_shard_id(id).ok_or_else(|| Msg::shard_not_found(id, stream, account))
}

fn reshardable(s: &Stream, account: &str) -> Result<()> {
    require_active(s, account)?;
    if s.mode == Mode::OnDemand {
        return Err(Msg::on_demand(s, account));
    }
    Ok(())
}

fn mark_updating(svc: &Service, s: &mut Stream, now: i64) {
    if svc.cfg.status_delay_ms > 0 {
        s.status = Status::Updating {
            until_ms: now + svc.cfg.status_delay_ms,
        };
    }
}

fn open_shard<'a>(s: &'a Stream, index: u32, account: &str) -> Result<&'a Shard> {
    let sh = s
        .shard(index)
        .ok_or_else(|| Msg::shard_not_found(&names::shard_id(index), &s.name, account))?;
    if !sh.is_open() {
        return Err(Msg::already_closed(&sh.id(), &s.name, account));
    }
    Ok(sh)
}

pub async fn split_shard(svc: &Service, ctx: &Ctx, input: SplitShardInput) -> Result<()> {
    let account = svc.account().to_owned();
    let now = svc.now_ms();
    let key = svc.key(
        ctx,
        input.stream_name.as_deref(),
        input.stream_arn.as_deref(),
    )?;
    let index = shard_index(&input.shard_to_split, &key.1, &account)?;
    let open: usize = svc.open_shards_in(&key.0);
    svc.update_key(&key, |s| {
    reshardable(s, &account)?;
    let sh = open_shard(s, index, &account)?.clone();
    if open + 1 > svc.cfg.shard_limit as usize {
        return Err(Msg::shard_limit(
            &account,
            &key.0,
            open,
            svc.cfg.shard_limit,
            1,
        ));
    }
    let k = hashkey::parse(&input.new_starting_hash_key)
        .filter(|k| sh.range.start.checked_add(1).is_some_and(|s1| s1 < *k) && *k < sh.range.end);
    let Some(k) = k else {
        return Err(KinesisError::InvalidArgument(format!(
            "NewStartingHashKey {} used in SplitShard() on shard {} in stream {} under account {account} is not both greater than one plus the shard's StartingHashKey {} and less than the shard's EndingHashKey {}.",
            input.new_starting_hash_key, sh.id(), s.name, sh.range.start, sh.range.end
        )));
    };
    s.close_shard(index, now);
    s.add_shard(
        HashRange {
            start: sh.range.start,
            end: k - 1,
        },
        Some(index),
        None,
        now,
    );
    s.add_shard(
        HashRange {
            start: k,
            end: sh.range.end,
        },
        Some(index),
        None,
        now,
    );
    mark_updating(svc, s, now);
    Ok(())
    })
    .await
}

pub async fn merge_shards(svc: &Service, ctx: &Ctx, input: MergeShardsInput) -> Result<()> {
    let account = svc.account().to_owned();
    let now = svc.now_ms();
    let key = svc.key(
        ctx,
        input.stream_name.as_deref(),
        input.stream_arn.as_deref(),
    )?;
    let a = shard_index(&input.shard_to_merge, &key.1, &account)?;
    let b = shard_index(&input.adjacent_shard_to_merge, &key.1, &account)?;
    svc.update_key(&key, |s| {
    reshardable(s, &account)?;
    let sa = open_shard(s, a, &account)?.clone();
    let sb = open_shard(s, b, &account)?.clone();
    if sa.range.end.checked_add(1) != Some(sb.range.start) {
        return Err(KinesisError::InvalidArgument(format!(
            "Shards {} and {} in stream {} under account {account} are not an adjacent pair of shards eligible for merging",
            sa.id(), sb.id(), s.name
        )));
    }
    s.close_shard(a, now);
    s.close_shard(b, now);
    s.add_shard(
        HashRange {
            start: sa.range.start,
            end: sb.range.end,
        },
        Some(a),
        Some(b),
        now,
    );
    mark_updating(svc, s, now);
    Ok(())
    })
    .await
}

/// UNIFORM_SCALING as AWS performs it, with splits and merges only, so every
/// new shard has one parent (a split) or a parent and an adjacent parent (a
/// merge), and readers finish each parent before its children. Scaling up,
/// every open shard is split in half; then, from the low end of the hash
/// space, adjacent pairs are merged until `target` shards are open. Shards
/// split and then merged are short-lived: created and closed at once. This
/// reproduces the shard totals AWS reports (2→4: 6, 4→5: 15, 10→13: 37,
/// 4→2: 6, 5→3: 7).
fn uniform_scaling(s: &mut Stream, target: usize, now: i64) {
    let mut open: Vec<Shard> = s.open_shards().cloned().collect();
    open.sort_by_key(|sh| sh.range.start);
    if target > open.len() {
        let mut halves = Vec::with_capacity(open.len() * 2);
        for sh in &open {
            let r = sh.range;
            // The even split point: for the whole key space, 2^127.
            let len_minus_1 = r.end - r.start;
            let k = r.start + len_minus_1 / 2 + (len_minus_1 & 1);
            s.close_shard(sh.index, now);
            for range in [
                HashRange {
                    start: r.start,
                    end: k - 1,
                },
                HashRange {
                    start: k,
                    end: r.end,
                },
            ] {
                let i = s.add_shard(range, Some(sh.index), None, now);
                halves.extend(s.shard(i).cloned());
            }
        }
        open = halves;
    }
    let merges = open.len().saturating_sub(target);
    for pair in open.chunks_exact(2).take(merges) {
        let (a, b) = (&pair[0], &pair[1]);
        s.close_shard(a.index, now);
        s.close_shard(b.index, now);
        s.add_shard(
            HashRange {
                start: a.range.start,
                end: b.range.end,
            },
            Some(a.index),
            Some(b.index),
            now,
        );
    }
}

pub async fn update_shard_count(
    svc: &Service,
    ctx: &Ctx,
    input: UpdateShardCountInput,
) -> Result<UpdateShardCountOutput> {
    let account = svc.account().to_owned();
    let now = svc.now_ms();
    let key = svc.key(
        ctx,
        input.stream_name.as_deref(),
        input.stream_arn.as_deref(),
    )?;
    let open_all: usize = svc.open_shards_in(&key.0);
    svc.update_key(&key, |s| {
    reshardable(s, &account)?;
    let current = s.open_shard_count();
    let target = input.target_shard_count as usize;
    let counts = format!("Current open shard count: {current} Target shard count: {target}");
    if target > current * 2 {
        return Err(KinesisError::LimitExceeded(format!(
            "UpdateShardCount cannot scale up over double your current open shard count. {counts}"
        )));
    }
    if target * 2 < current {
        return Err(KinesisError::LimitExceeded(format!(
            "UpdateShardCount cannot scale down below half your current open shard count. {counts}"
        )));
    }
    if target > limits::MAX_SHARDS_PER_STREAM as usize {
        return Err(KinesisError::LimitExceeded(format!(
            "Target shard count or number of open shards cannot be greater than {}. {counts}",
            limits::MAX_SHARDS_PER_STREAM
        )));
    }
    if open_all - current + target > svc.cfg.shard_limit as usize {
        return Err(Msg::shard_limit(
            &account,
            &key.0,
            open_all,
            svc.cfg.shard_limit,
            target.saturating_sub(current),
        ));
    }
    s.scalings.retain(|t| now - t < 86_400_000);
    if s.scalings.len() >= limits::MAX_SCALINGS_PER_DAY {
        return Err(KinesisError::LimitExceeded(format!(
            "Exceeded the maximum number of UpdateShardCount operations ({}) for stream {} under account {account} in a rolling 24-hour period.",
            limits::MAX_SCALINGS_PER_DAY, s.name
        )));
    }
    s.scalings.push(now);
    if target != current {
        uniform_scaling(s, target, now);
        mark_updating(svc, s, now);
    }
    let out = UpdateShardCountOutput {
        stream_name: Some(s.name.clone()),
        current_shard_count: Some(current as i64),
        target_shard_count: Some(target as i64),
        stream_arn: Some(s.arn.clone()),
    };
    Ok(out)
    })
    .await
}
