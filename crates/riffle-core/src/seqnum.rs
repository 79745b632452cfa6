//! Sequence numbers in AWS's 186-bit "version 2" layout, which the KCL parses.
//!
//! As 47 hex digits (a decimal string on the wire, 56 digits):
//!
//! ```text
//! 2 | shard creation, epoch s (9) | shard index & 0xf (1) | counter (16)
//!   | 00 (2) | record arrival, epoch s (9) | shard index (8) | 2
//! ```
//!
//! Riffle's counter is the record's offset within its shard's part of the
//! stream log, so numbers increase within a shard and map straight to a log
//! position. A shard's StartingSequenceNumber carries the offset just before
//! its first record; a closed shard's EndingSequenceNumber carries
//! [`END_COUNTER`].

/// The counter of a closed shard's EndingSequenceNumber.
pub const END_COUNTER: u64 = 0x7fff_ffff_ffff_ffff;

/// 2^80 in decimal: the step between sequence numbers whose counters differ
/// by one and whose other fields are equal.
const COUNTER_STEP: &[u8] = b"1208925819614629174706176";

/// Encodes runs of sequence numbers cheaply: consecutive counters with the
/// same shard and arrival second differ by exactly 2^80, so the next decimal
/// string is the previous one plus that constant.
#[derive(Default)]
pub struct SeqEncoder {
    last: Option<(SeqNum, String)>,
}

impl SeqEncoder {
    pub fn encode(&mut self, s: SeqNum) -> String {
        let out = match &self.last {
            Some((prev, text))
                if prev.counter.checked_add(1) == Some(s.counter)
                    && prev.record_secs == s.record_secs
                    && prev.shard_created_secs == s.shard_created_secs
                    && prev.shard_index == s.shard_index =>
            {
                add_decimal(text, COUNTER_STEP)
            }
            _ => s.encode(),
        };
        self.last = Some((s, out.clone()));
        out
    }
}

/// `a + b` for decimal digit strings (`a` at least as long as `b`).
fn add_decimal(a: &str, b: &[u8]) -> String {
    let mut out = a.as_bytes().to_vec();
    let mut carry = 0u8;
    let mut i = out.len();
    for &db in b.iter().rev() {
        i -= 1;
        let sum = out[i] - b'0' + db - b'0' + carry;
        out[i] = b'0' + sum % 10;
        carry = sum / 10;
    }
    while carry > 0 && i > 0 {
        i -= 1;
        let sum = out[i] - b'0' + carry;
        out[i] = b'0' + sum % 10;
        carry = sum / 10;
    }
    if carry > 0 {
        out.insert(0, b'0' + carry);
    }
    String::from_utf8(out).unwrap_or_default()
}

/// The fields of a version-2 sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqNum {
    pub shard_created_secs: u64,
    pub counter: u64,
    pub record_secs: u64,
    pub shard_index: u32,
}

/// Why a client's sequence number was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SeqError {
    #[error("not a decimal number")]
    NotANumber,
    #[error("not a version 2 sequence number")]
    BadVersion,
}

/// A 192-bit unsigned integer as three 64-bit limbs, most significant first.
type U192 = [u64; 3];

fn mul_add(n: &mut U192, mul: u64, add: u64) -> bool {
    let mut carry = u128::from(add);
    for limb in n.iter_mut().rev() {
        let v = u128::from(*limb) * u128::from(mul) + carry;
        *limb = v as u64;
        carry = v >> 64;
    }
    carry == 0
}

/// Decimal digits of a 192-bit number. Divides 32-bit limbs by 10^9 with
/// 64-bit arithmetic, which compiles to multiplications.
fn to_decimal(n: U192) -> String {
    const BASE: u64 = 1_000_000_000;
    let mut limbs = [
        (n[0] >> 32) as u32,
        n[0] as u32,
        (n[1] >> 32) as u32,
        n[1] as u32,
        (n[2] >> 32) as u32,
        n[2] as u32,
    ];
    // 2^192 < 10^58.
    let mut buf = [0u8; 63];
    let mut pos = buf.len();
    while limbs.iter().any(|&l| l != 0) {
        let mut rem = 0u64;
        for l in limbs.iter_mut() {
            let cur = (rem << 32) | u64::from(*l);
            *l = (cur / BASE) as u32;
            rem = cur % BASE;
        }
        let last = limbs.iter().all(|&l| l == 0);
        for _ in 0..9 {
            if last && rem == 0 {
                break;
            }
            pos -= 1;
            buf[pos] = b'0' + (rem % 10) as u8;
            rem /= 10;
        }
    }
    if pos == buf.len() {
        return "0".into();
    }
    buf[pos..].iter().map(|&b| b as char).collect()
}

fn from_decimal(s: &str) -> Option<U192> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut n = [0u64; 3];
    for b in s.bytes() {
        if !mul_add(&mut n, 10, u64::from(b - b'0')) {
            return None;
        }
    }
    Some(n)
}

/// Bits `[lo, lo+len)` of `n`, counting from the least significant bit.
fn bits(n: &U192, lo: u32, len: u32) -> u64 {
    let mut out: u128 = 0;
    for i in 0..len {
        let bit = lo + i;
        let limb = n[2 - (bit / 64) as usize];
        out |= u128::from((limb >> (bit % 64)) & 1) << i;
    }
    out as u64
}

impl SeqNum {
    /// The 47 hex digits of this sequence number.
    pub fn to_hex(&self) -> String {
        format!(
            "2{:09x}{:01x}{:016x}00{:09x}{:08x}2",
            self.shard_created_secs & 0xf_ffff_ffff,
            self.shard_index & 0xf,
            self.counter,
            self.record_secs & 0xf_ffff_ffff,
            self.shard_index
        )
    }

    /// The decimal string clients see.
    pub fn encode(&self) -> String {
        // Bits 0..128 and 128..188 of the number, per the layout above.
        let low: u128 = 2
            | u128::from(self.shard_index) << 4
            | u128::from(self.record_secs & 0xf_ffff_ffff) << 36
            | u128::from(self.counter) << 80;
        let high: u64 = (self.counter >> 48)
            | u64::from(self.shard_index & 0xf) << 16
            | (self.shard_created_secs & 0xf_ffff_ffff) << 20
            | 2 << 56;
        to_decimal([high, (low >> 64) as u64, low as u64])
    }

    /// Parses a decimal sequence number issued in the version-2 layout.
    pub fn decode(s: &str) -> Result<SeqNum, SeqError> {
        let n = from_decimal(s).ok_or(SeqError::NotANumber)?;
        // 47 hex digits = 188 bits; from the top: 2, created (36 bits at 148), index
        // nibble (144), counter (80), 00 (72), record secs (36), index (4), 2 (0).
        if bits(&n, 184, 8) != 2 || bits(&n, 0, 4) != 2 || bits(&n, 72, 8) != 0 {
            return Err(SeqError::BadVersion);
        }
        let counter = bits(&n, 80, 64);
        if counter >> 63 != 0 {
            return Err(SeqError::BadVersion);
        }
        let shard_index = bits(&n, 4, 32) as u32;
        if bits(&n, 144, 4) != u64::from(shard_index & 0xf) {
            return Err(SeqError::BadVersion);
        }
        Ok(SeqNum {
            shard_created_secs: bits(&n, 148, 36),
            counter,
            record_secs: bits(&n, 36, 36),
            shard_index,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_real_aws_numbers() {
        let s = SeqNum::decode("49546986683135544286507457936321625675700192471156785154").unwrap();
        assert_eq!(
            s,
            SeqNum {
                shard_created_secs: 1_421_279_230,
                counter: 469,
                record_secs: 1_421_279_386,
                shard_index: 0
            }
        );
        assert_eq!(
            s.encode(),
            "49546986683135544286507457936321625675700192471156785154"
        );
        let s = SeqNum::decode("49590338271490256608559692538361571095921575989136588898").unwrap();
        assert_eq!(s.shard_index, 6);
        assert_eq!(s.counter, 1_734_642_199);
        assert_eq!(
            s.encode(),
            "49590338271490256608559692538361571095921575989136588898"
        );
    }

    #[test]
    fn adjacent_shards_differ_by_aws_gap() {
        // AWS: consecutive shards created together start 2^144 + 16 apart.
        let a = SeqNum {
            shard_created_secs: 1_421_279_230,
            counter: 0,
            record_secs: 1_421_279_230,
            shard_index: 0,
        };
        let b = SeqNum {
            shard_index: 1,
            ..a
        };
        let (x, y) = (
            from_decimal(&a.encode()).unwrap(),
            from_decimal(&b.encode()).unwrap(),
        );
        let gap = from_decimal("22300745198530623141535718272648361505980432").unwrap();
        let mut sum = x;
        let mut carry = 0u128;
        for i in (0..3).rev() {
            let v = u128::from(sum[i]) + u128::from(gap[i]) + carry;
            sum[i] = v as u64;
            carry = v >> 64;
        }
        assert_eq!(sum, y);
    }

    #[test]
    fn refuses_foreign_layouts() {
        assert_eq!(SeqNum::decode("0"), Err(SeqError::BadVersion));
        assert_eq!(SeqNum::decode("12x"), Err(SeqError::NotANumber));
        assert_eq!(SeqNum::decode(&"9".repeat(130)), Err(SeqError::NotANumber));
    }

    #[test]
    fn the_step_is_two_to_the_eighty() {
        assert_eq!(
            std::str::from_utf8(COUNTER_STEP).unwrap(),
            (1u128 << 80).to_string()
        );
    }

    proptest! {
        #[test]
        fn encoder_runs_match_full_encoding(start in 0u64..END_COUNTER - 100, n in 1usize..50, secs in 0u64..0xf_ffff_ffff, idx in any::<u32>()) {
            let mut enc = SeqEncoder::default();
            for i in 0..n as u64 {
                let s = SeqNum { shard_created_secs: 1_700_000_000, counter: start + i, record_secs: secs + i / 7, shard_index: idx };
                prop_assert_eq!(enc.encode(s), s.encode());
            }
        }

        #[test]
        fn round_trips(created in 0u64..0xf_ffff_ffff, counter in 0u64..=END_COUNTER, rec in 0u64..0xf_ffff_ffff, idx in any::<u32>()) {
            let s = SeqNum { shard_created_secs: created, counter, record_secs: rec, shard_index: idx };
            let enc = s.encode();
            prop_assert_eq!(enc.len(), 56);
            prop_assert_eq!(SeqNum::decode(&enc).unwrap(), s);
        }

        #[test]
        fn order_follows_counter(counter in 0u64..END_COUNTER, rec in 0u64..0xf_ffff_ffff, rec2 in 0u64..0xf_ffff_ffff) {
            let a = SeqNum { shard_created_secs: 7, counter, record_secs: rec, shard_index: 3 };
            let b = SeqNum { counter: counter + 1, record_secs: rec2, ..a };
            let (x, y) = (a.encode(), b.encode());
            prop_assert!(x.len() < y.len() || (x.len() == y.len() && x < y));
        }
    }
}
