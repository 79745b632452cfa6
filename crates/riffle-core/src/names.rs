//! Stream and consumer ARNs, and the lenient shard-id forms AWS accepts.

/// `arn:aws:kinesis:{region}:{account}:stream/{name}`.
pub fn stream_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:kinesis:{region}:{account}:stream/{name}")
}

/// `{stream ARN}/consumer/{name}:{creation epoch seconds}`.
pub fn consumer_arn(stream_arn: &str, consumer: &str, created_secs: i64) -> String {
    format!("{stream_arn}/consumer/{consumer}:{created_secs}")
}

/// The parts of a stream ARN: region, account, stream name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamArn {
    pub region: String,
    pub account: String,
    pub name: String,
}

/// Parses `arn:<partition>:kinesis:<region>:<account>:stream/<name>`.
pub fn parse_stream_arn(arn: &str) -> Option<StreamArn> {
    let mut p = arn.splitn(6, ':');
    let (arn_, _partition, service, region, account, resource) = (
        p.next()?,
        p.next()?,
        p.next()?,
        p.next()?,
        p.next()?,
        p.next()?,
    );
    if arn_ != "arn" || service != "kinesis" {
        return None;
    }
    let name = resource.strip_prefix("stream/")?;
    if name.is_empty() || name.contains('/') {
        return None;
    }
    Some(StreamArn {
        region: region.into(),
        account: account.into(),
        name: name.into(),
    })
}

/// The parts of a consumer ARN: its stream ARN, name and creation seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerArn {
    pub stream: StreamArn,
    pub stream_arn: String,
    pub name: String,
    pub created_secs: i64,
}

pub fn parse_consumer_arn(arn: &str) -> Option<ConsumerArn> {
    let (stream_arn, rest) = arn.split_once("/consumer/")?;
    let (name, secs) = rest.rsplit_once(':')?;
    Some(ConsumerArn {
        stream: parse_stream_arn(stream_arn)?,
        stream_arn: stream_arn.to_owned(),
        name: name.to_owned(),
        created_secs: secs.parse().ok()?,
    })
}

/// `shardId-000000000007`.
pub fn shard_id(index: u32) -> String {
    let mut b = *b"shardId-000000000000";
    let mut n = index;
    for d in b[8..].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    b.iter().map(|&c| c as char).collect()
}

/// Resolves the shard-id forms AWS accepts (`shardId-000000000005`,
/// `shardId-5`, `5`, `anything-5`) to an index; `None` when the part after
/// the first `-` is not a number in `0..=2^31-1`.
pub fn parse_shard_id(s: &str) -> Option<u32> {
    let digits = s.split_once('-').map_or(s, |(_, d)| d);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    (n <= i32::MAX as u64).then_some(n as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns() {
        let arn = stream_arn("us-east-1", "000000000000", "s");
        assert_eq!(arn, "arn:aws:kinesis:us-east-1:000000000000:stream/s");
        assert_eq!(
            parse_stream_arn(&arn),
            Some(StreamArn {
                region: "us-east-1".into(),
                account: "000000000000".into(),
                name: "s".into()
            })
        );
        let c = consumer_arn(&arn, "c", 1_731_291_806);
        let parsed = parse_consumer_arn(&c).unwrap();
        assert_eq!(
            (parsed.name.as_str(), parsed.created_secs),
            ("c", 1_731_291_806)
        );
        assert_eq!(parsed.stream_arn, arn);
        assert_eq!(parse_stream_arn("arn:aws:kinesis:r:1:queue/x"), None);
    }

    #[test]
    fn shard_ids() {
        assert_eq!(shard_id(7), "shardId-000000000007");
        for ok in ["shardId-000000000005", "shardId-5", "5", "anything-5"] {
            assert_eq!(parse_shard_id(ok), Some(5), "{ok}");
        }
        assert_eq!(parse_shard_id("a-00002147483647"), Some(2_147_483_647));
        for bad in [
            "ABKLFD8",
            "2.14E4",
            "2147483648",
            "shardId-002147483648",
            "shardId-",
        ] {
            assert_eq!(parse_shard_id(bad), None, "{bad}");
        }
    }
}
