//! Bucket names and object keys as AWS accepts them, and S3's limits.

use crate::S3Error;

/// Longest object key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest object a single PutObject may upload (5 GiB).
pub const MAX_PUT_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// Smallest part of a multipart upload, except the last (5 MiB).
pub const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;
/// Largest part (5 GiB).
pub const MAX_PART_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// Part numbers run from 1 to 10,000.
pub const MAX_PART_NUMBER: u32 = 10_000;
/// Most keys a listing returns at once, and most keys a DeleteObjects takes.
pub const MAX_KEYS: usize = 1000;

/// AWS's rules for new bucket names (general purpose buckets): 3 to 63
/// characters of lowercase letters, digits, dots and hyphens, starting and
/// ending with a letter or digit, no two adjacent dots, not an IP address,
/// none of the reserved prefixes and suffixes.
pub fn check_bucket(name: &str) -> Result<(), S3Error> {
    let bad = || S3Error::InvalidBucketName(name.to_owned());
    let b = name.as_bytes();
    if !(3..=63).contains(&b.len()) {
        return Err(bad());
    }
    let allowed = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-';
    let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !b.iter().all(|&c| allowed(c)) || !edge(b[0]) || !edge(b[b.len() - 1]) {
        return Err(bad());
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return Err(bad());
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err(bad());
    }
    let reserved_prefix = ["xn--", "sthree-", "amzn-s3-demo-"];
    let reserved_suffix = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];
    if reserved_prefix.iter().any(|p| name.starts_with(p))
        || reserved_suffix.iter().any(|s| name.ends_with(s))
    {
        return Err(bad());
    }
    Ok(())
}

/// Keys are 1 to 1,024 bytes of UTF-8.
pub fn check_key(key: &str) -> Result<(), S3Error> {
    if key.len() > MAX_KEY_BYTES {
        return Err(S3Error::KeyTooLong);
    }
    if key.is_empty() {
        return Err(S3Error::InvalidArgument {
            message: "Key must not be empty".into(),
            name: "key".into(),
            value: String::new(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for ok in ["abc", "my-bucket.logs", "0bucket9", &"a".repeat(63)] {
            assert_eq!(check_bucket(ok), Ok(()), "{ok}");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "Upper",
            "-start",
            "end-",
            "a..b",
            "a.-b",
            "192.168.5.4",
            "xn--abc",
            "under_score",
            "bucket-s3alias",
        ] {
            assert_eq!(
                check_bucket(bad),
                Err(S3Error::InvalidBucketName(bad.to_owned())),
                "{bad}"
            );
        }
    }
}
