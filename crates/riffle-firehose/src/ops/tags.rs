//! TagDeliveryStream, UntagDeliveryStream, ListTagsForDeliveryStream.

use std::collections::BTreeMap;

use crate::error::{FirehoseError, Result};
use crate::{model, Ctx, Service, StreamKey};

/// Tags a delivery stream may carry.
pub const MAX_TAGS: usize = 50;

/// `cur` with `add` applied (a key given again takes the new value), or
/// LimitExceededException past 50 tags.
pub(crate) fn merged(
    cur: &BTreeMap<String, String>,
    add: Vec<model::Tag>,
    name: &str,
    account: &str,
) -> Result<BTreeMap<String, String>> {
    let mut next = cur.clone();
    for t in add {
        next.insert(t.key, t.value.unwrap_or_default());
    }
    if next.len() > MAX_TAGS {
        return Err(FirehoseError::LimitExceeded(format!(
            "Firehose {name} under account {account} cannot have more than {MAX_TAGS} tags."
        )));
    }
    Ok(next)
}

/// TagDeliveryStream.
pub async fn tag(
    svc: &Service,
    ctx: &Ctx,
    i: model::TagDeliveryStreamInput,
) -> Result<model::TagDeliveryStreamOutput> {
    let key: StreamKey = (ctx.region.clone(), i.delivery_stream_name);
    let account = svc.account().to_owned();
    svc.update_key(&key, |s| {
        s.tags = merged(&s.tags, i.tags, &s.name, &account)?;
        Ok(())
    })
    .await?;
    Ok(model::TagDeliveryStreamOutput {})
}

/// UntagDeliveryStream: keys the stream lacks are ignored.
pub async fn untag(
    svc: &Service,
    ctx: &Ctx,
    i: model::UntagDeliveryStreamInput,
) -> Result<model::UntagDeliveryStreamOutput> {
    let key: StreamKey = (ctx.region.clone(), i.delivery_stream_name);
    svc.update_key(&key, |s| {
        for k in &i.tag_keys {
            s.tags.remove(k);
        }
        Ok(())
    })
    .await?;
    Ok(model::UntagDeliveryStreamOutput {})
}

/// ListTagsForDeliveryStream: keys in order, after ExclusiveStartTagKey.
pub async fn list(
    svc: &Service,
    ctx: &Ctx,
    i: model::ListTagsForDeliveryStreamInput,
) -> Result<model::ListTagsForDeliveryStreamOutput> {
    let key: StreamKey = (ctx.region.clone(), i.delivery_stream_name);
    let s = svc.require(&key)?;
    let limit = i.limit.map_or(MAX_TAGS, |l| l.max(1) as usize);
    let after: Vec<(&String, &String)> = s
        .tags
        .iter()
        .filter(|(k, _)| {
            i.exclusive_start_tag_key
                .as_deref()
                .is_none_or(|a| k.as_str() > a)
        })
        .collect();
    Ok(model::ListTagsForDeliveryStreamOutput {
        has_more_tags: after.len() > limit,
        tags: after
            .into_iter()
            .take(limit)
            .map(|(k, v)| model::Tag {
                key: k.clone(),
                value: Some(v.clone()),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str) -> model::Tag {
        model::Tag {
            key: k.into(),
            value: Some("v".into()),
        }
    }

    #[test]
    fn fifty_tags_and_no_more() {
        let fifty: Vec<_> = (0..50).map(|n| tag(&format!("k{n}"))).collect();
        let m = merged(&BTreeMap::new(), fifty, "s", "1").unwrap();
        assert_eq!(m.len(), 50);
        // Replacing a value is not a new tag.
        assert!(merged(&m, vec![tag("k1")], "s", "1").is_ok());
        let e = merged(&m, vec![tag("new")], "s", "1").unwrap_err();
        assert_eq!(e.error_type(), "LimitExceededException");
    }
}
