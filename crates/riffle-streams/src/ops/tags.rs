//! AddTagsToStream, RemoveTagsFromStream, ListTagsForStream, and the
//! ARN-addressed TagResource, UntagResource, ListTagsForResource (streams and
//! consumers).

use std::collections::BTreeMap;

use riffle_core::{limits, names};

use crate::error::Result;
use crate::model::*;
use crate::state::{Msg, Stream};
use crate::{Ctx, KinesisError, Service};

/// Unicode letters and digits, spaces (not tabs or line breaks) and `_ . / = + - % @ :`.
fn valid_tag_char(c: char) -> bool {
    c.is_alphanumeric() || (c.is_whitespace() && !c.is_control()) || "_./=+-%@:".contains(c)
}

/// AWS's character rules for tag keys and values.
pub(crate) fn check_tag_keys<'a>(keys: impl Iterator<Item = &'a String>) -> Result<()> {
    for k in keys {
        if !k.chars().all(valid_tag_char) {
            return Err(KinesisError::InvalidArgument(
                "Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @.".into(),
            ));
        }
    }
    Ok(())
}

fn check_tags(
    tags: &BTreeMap<String, String>,
    verb: &str,
    stream: &str,
    account: &str,
) -> Result<()> {
    check_tag_keys(tags.keys().chain(tags.values()))?;
    if tags.keys().chain(tags.values()).any(|t| t.contains('%')) {
        return Err(KinesisError::InvalidArgument(format!(
            "Failed to {verb} tags {} stream {stream} under account {account} because some tags contained illegal characters. The allowed characters are Unicode letters, white-spaces, '_',',','/','=','+','-','@'.",
            if verb == "add" { "to" } else { "from" }
        )));
    }
    Ok(())
}

fn add(
    target: &mut BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
    name: &str,
    account: &str,
) -> Result<()> {
    let mut merged = target.clone();
    merged.extend(tags);
    if merged.len() > limits::MAX_TAGS {
        return Err(KinesisError::InvalidArgument(format!(
            "Failed to add tags to stream {name} under account {account} because a given stream cannot have more than {} tags associated with it.",
            limits::MAX_TAGS
        )));
    }
    *target = merged;
    Ok(())
}

pub async fn add_tags_to_stream(
    svc: &Service,
    ctx: &Ctx,
    input: AddTagsToStreamInput,
) -> Result<()> {
    let account = svc.account().to_owned();
    svc.update(
        ctx,
        input.stream_name.as_deref(),
        input.stream_arn.as_deref(),
        |s| {
            check_tags(&input.tags, "add", &s.name, &account)?;
            let name = s.name.clone();
            add(&mut s.tags, input.tags, &name, &account)
        },
    )
    .await
}

pub async fn remove_tags_from_stream(
    svc: &Service,
    ctx: &Ctx,
    input: RemoveTagsFromStreamInput,
) -> Result<()> {
    let account = svc.account().to_owned();
    svc.update(
        ctx,
        input.stream_name.as_deref(),
        input.stream_arn.as_deref(),
        |s| {
            let keys: BTreeMap<String, String> = input
                .tag_keys
                .iter()
                .map(|k| (k.clone(), String::new()))
                .collect();
            check_tags(&keys, "remove", &s.name, &account)?;
            for k in &input.tag_keys {
                s.tags.remove(k);
            }
            Ok(())
        },
    )
    .await
}

fn tag_list<'a>(tags: impl Iterator<Item = (&'a String, &'a String)>) -> Vec<Tag> {
    tags.map(|(k, v)| Tag {
        key: k.clone(),
        value: Some(v.clone()),
    })
    .collect()
}

pub async fn list_tags_for_stream(
    svc: &Service,
    ctx: &Ctx,
    input: ListTagsForStreamInput,
) -> Result<ListTagsForStreamOutput> {
    svc.view(
        ctx,
        input.stream_name.as_deref(),
        input.stream_arn.as_deref(),
        |s| {
            let limit = input.limit.map_or(usize::MAX, |l| l as usize);
            let after: Vec<_> = s
                .tags
                .iter()
                .filter(|(k, _)| {
                    input
                        .exclusive_start_tag_key
                        .as_ref()
                        .is_none_or(|x| k.as_str() > x.as_str())
                })
                .collect();
            let more = after.len() > limit;
            Ok(ListTagsForStreamOutput {
                tags: tag_list(after.into_iter().take(limit)),
                has_more_tags: more,
            })
        },
    )
}

/// The tags and name of the stream or consumer an ARN names.
async fn with_resource<T>(
    svc: &Service,
    arn: &str,
    f: impl FnOnce(&mut BTreeMap<String, String>, &str) -> Result<T>,
) -> Result<T> {
    let account = svc.account().to_owned();
    if let Some(c) = names::parse_consumer_arn(arn) {
        let key = (c.stream.region.clone(), c.stream.name.clone());
        return svc
            .update_key(&key, |s: &mut Stream| {
                let consumer = s
                    .consumers
                    .iter_mut()
                    .find(|x| x.arn == arn)
                    .ok_or_else(|| {
                        KinesisError::ResourceNotFound(format!("Consumer {arn} not found."))
                    })?;
                f(&mut consumer.tags, &c.name)
            })
            .await;
    }
    let parsed = names::parse_stream_arn(arn)
        .ok_or_else(|| KinesisError::InvalidArgument(format!("Invalid ResourceARN: {arn}")))?;
    if parsed.account != account {
        return Err(Msg::stream_not_found(&parsed.name, &account));
    }
    svc.update_key(&(parsed.region.clone(), parsed.name.clone()), |s| {
        let name = s.name.clone();
        f(&mut s.tags, &name)
    })
    .await
}

pub async fn tag_resource(svc: &Service, _ctx: &Ctx, input: TagResourceInput) -> Result<()> {
    let account = svc.account().to_owned();
    with_resource(svc, &input.resource_arn, |tags, name| {
        check_tags(&input.tags, "add", name, &account)?;
        add(tags, input.tags, name, &account)
    })
    .await
}

pub async fn untag_resource(svc: &Service, _ctx: &Ctx, input: UntagResourceInput) -> Result<()> {
    with_resource(svc, &input.resource_arn, |tags, _| {
        for k in &input.tag_keys {
            tags.remove(k);
        }
        Ok(())
    })
    .await
}

pub async fn list_tags_for_resource(
    svc: &Service,
    _ctx: &Ctx,
    input: ListTagsForResourceInput,
) -> Result<ListTagsForResourceOutput> {
    with_resource(svc, &input.resource_arn, |tags, _| {
        Ok(ListTagsForResourceOutput {
            tags: Some(tag_list(tags.iter())),
        })
    })
    .await
}
