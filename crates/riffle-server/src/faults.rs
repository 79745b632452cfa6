//! Faults injected into Data Streams answers, for users testing how their
//! applications cope with throttling and slow responses.
//!
//! The error probability is LocalStack's `KINESIS_ERROR_PROBABILITY`: that
//! fraction of PutRecord and PutRecords requests fails with
//! `ProvisionedThroughputExceededException` (PutRecord: the error, HTTP 400;
//! PutRecords: HTTP 200 with every entry failed), before the request reaches
//! the service, so nothing of it is written. The response delay is added
//! before answering every Data Streams request.
//!
//! The random choices come from a seeded generator, so a run can be
//! replayed: the same seed and the same sequence of requests fail the same
//! requests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The message LocalStack gives injected throttling errors, word for word.
pub const THROTTLED_MESSAGE: &str = "Rate exceeded for shard X in stream Y under account Z.";

/// The injected faults; [`Faults::default`] injects none.
#[derive(Debug, Default)]
pub struct Faults {
    error_probability: f64,
    response_delay: Duration,
    rng: SplitMix64,
}

impl Faults {
    /// `error_probability` is clamped to 0.0–1.0 (NaN counts as 0.0).
    pub fn new(error_probability: f64, response_delay: Duration, seed: u64) -> Faults {
        let p = if error_probability.is_nan() {
            0.0
        } else {
            error_probability.clamp(0.0, 1.0)
        };
        Faults {
            error_probability: p,
            response_delay,
            rng: SplitMix64(AtomicU64::new(seed)),
        }
    }

    pub fn error_probability(&self) -> f64 {
        self.error_probability
    }

    pub fn response_delay(&self) -> Duration {
        self.response_delay
    }

    /// Whether this request fails: one draw per request. 0.0 never draws
    /// and never fails; 1.0 always fails.
    pub fn inject_error(&self) -> bool {
        match self.error_probability {
            p if p <= 0.0 => false,
            p if p >= 1.0 => true,
            p => self.rng.next_unit() < p,
        }
    }
}

/// SplitMix64 over an atomic counter: lock-free, and deterministic for a
/// seed when draws are made one after another.
#[derive(Debug, Default)]
struct SplitMix64(AtomicU64);

impl SplitMix64 {
    const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

    fn next_u64(&self) -> u64 {
        let mut z = self
            .0
            .fetch_add(Self::GAMMA, Ordering::Relaxed)
            .wrapping_add(Self::GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1): the top 53 bits as a fraction.
    fn next_unit(&self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(f: &Faults, n: usize) -> Vec<bool> {
        (0..n).map(|_| f.inject_error()).collect()
    }

    #[test]
    fn no_faults_by_default() {
        let f = Faults::default();
        assert!(draws(&f, 1000).iter().all(|x| !x));
        assert_eq!(f.response_delay(), Duration::ZERO);
    }

    #[test]
    fn probability_one_always_fails_and_zero_never() {
        let always = Faults::new(1.0, Duration::ZERO, 7);
        assert!(draws(&always, 1000).iter().all(|x| *x));
        let never = Faults::new(0.0, Duration::ZERO, 7);
        assert!(draws(&never, 1000).iter().all(|x| !x));
    }

    #[test]
    fn out_of_range_probabilities_are_clamped() {
        assert_eq!(Faults::new(1.5, Duration::ZERO, 1).error_probability(), 1.0);
        assert_eq!(
            Faults::new(-0.5, Duration::ZERO, 1).error_probability(),
            0.0
        );
        assert_eq!(
            Faults::new(f64::NAN, Duration::ZERO, 1).error_probability(),
            0.0
        );
    }

    #[test]
    fn the_same_seed_fails_the_same_requests() {
        let a = draws(&Faults::new(0.5, Duration::ZERO, 42), 200);
        let b = draws(&Faults::new(0.5, Duration::ZERO, 42), 200);
        let c = draws(&Faults::new(0.5, Duration::ZERO, 43), 200);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn the_fraction_of_failures_follows_the_probability() {
        for (p, seed) in [(0.1, 1), (0.5, 2), (0.9, 3)] {
            let f = Faults::new(p, Duration::ZERO, seed);
            let n = 20_000;
            let failed = draws(&f, n).iter().filter(|x| **x).count() as f64;
            // Five standard deviations of a binomial: never flaky for a
            // fixed seed, and far tighter than a broken generator.
            let sd = (n as f64 * p * (1.0 - p)).sqrt();
            assert!(
                (failed - n as f64 * p).abs() < 5.0 * sd,
                "p={p}: {failed} of {n}"
            );
        }
    }
}
