//! Hash keys: MD5 of the partition key read as a big-endian 128-bit integer,
//! and the even split of the key space among a stream's initial shards.

use md5::{Digest, Md5};

/// The hash key AWS derives from a partition key.
pub fn partition_hash(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// Parses a decimal hash key in `[0, 2^128 - 1]`.
pub fn parse(s: &str) -> Option<u128> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u128>().ok()
}

/// An inclusive range of hash keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashRange {
    pub start: u128,
    pub end: u128,
}

impl HashRange {
    pub fn contains(&self, k: u128) -> bool {
        self.start <= k && k <= self.end
    }

    /// Range `i` of `n` even parts: `[floor(i·2^128/n), floor((i+1)·2^128/n) − 1]`.
    pub fn split_even(i: u32, n: u32) -> HashRange {
        let bound = |j: u32| -> u128 {
            if j >= n {
                return 0; // unused: the last range ends at MAX
            }
            // floor(j * 2^128 / n), computed without overflow.
            let (q, r) = (u128::MAX / u128::from(n), u128::MAX % u128::from(n));
            // 2^128 = MAX + 1 = q*n + r + 1
            let rr = r + 1;
            let base = q * u128::from(j);
            let extra = if rr == u128::from(n) {
                u128::from(j)
            } else {
                (rr * u128::from(j)) / u128::from(n)
            };
            base + extra
        };
        let start = bound(i);
        let end = if i + 1 >= n {
            u128::MAX
        } else {
            bound(i + 1) - 1
        };
        HashRange { start, end }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_aws() {
        let r: Vec<_> = (0..3).map(|i| HashRange::split_even(i, 3)).collect();
        assert_eq!(
            r[0].end,
            113_427_455_640_312_821_154_458_202_477_256_070_484
        );
        assert_eq!(
            r[1].start,
            113_427_455_640_312_821_154_458_202_477_256_070_485
        );
        assert_eq!(
            r[1].end,
            226_854_911_280_625_642_308_916_404_954_512_140_969
        );
        assert_eq!(r[2].end, u128::MAX);
        assert_eq!(
            HashRange::split_even(0, 1),
            HashRange {
                start: 0,
                end: u128::MAX
            }
        );
        let two = HashRange::split_even(1, 2);
        assert_eq!(two.start, 1u128 << 127);
        for n in [1u32, 2, 3, 7, 10, 100, 9999] {
            let mut prev_end: Option<u128> = None;
            for i in 0..n {
                let r = HashRange::split_even(i, n);
                assert_eq!(r.start, prev_end.map_or(0, |e| e + 1));
                prev_end = Some(r.end);
            }
            assert_eq!(prev_end, Some(u128::MAX));
        }
    }

    #[test]
    fn md5_routing() {
        // MD5("a") = 0cc175b9c0f1b6a831c399e269772661
        assert_eq!(partition_hash("a"), 0x0cc175b9c0f1b6a831c399e269772661);
        assert_eq!(
            parse("340282366920938463463374607431768211455"),
            Some(u128::MAX)
        );
        assert_eq!(parse("340282366920938463463374607431768211456"), None);
        assert_eq!(parse("-1"), None);
    }
}
