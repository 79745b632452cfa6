//! Records and bytes in and out of each stream, for `/metrics`: counters
//! since the server started, and the rate over the last minute (what
//! `riffle streams` and the console show); and each shard's records and
//! bytes in and out and its iterator age, the `MillisBehindLatest` its
//! last GetRecords or SubscribeToShard event reported (CloudWatch's
//! shard-level `IncomingRecords`, `IncomingBytes`, `OutgoingRecords`,
//! `OutgoingBytes` and `IteratorAgeMilliseconds`).
//!
//! A write or read adds to its stream's atomic counters (one map lookup
//! under a read lock per call, not per record), and to the counters of
//! each shard it touched (a lookup in the stream's shard map and an atomic
//! add per shard per call); a read also stores its shard's age and the
//! time it was reported. The maintenance task
//! samples every counter once a second into a ring of 61 samples; a rate
//! is the difference across the ring over the time it spans.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Samples kept: a minute of seconds, and the one before.
const RING: usize = 61;

/// A shard's age counts for this long after it was reported: CloudWatch's
/// one-minute period.
pub const AGE_WINDOW_MS: i64 = 60_000;

/// A shard's counters, its latest iterator age and when that was reported.
#[derive(Debug, Default)]
struct ShardCounters {
    records_in: AtomicU64,
    bytes_in: AtomicU64,
    records_out: AtomicU64,
    bytes_out: AtomicU64,
    age_ms: AtomicU64,
    /// On the traffic's clock, plus one: 0 when never reported.
    age_at_ms: AtomicI64,
}

/// One stream incarnation's counters.
#[derive(Debug, Default)]
pub struct Counters {
    /// When counting began (ms on the traffic's clock): a stream's ring
    /// starts there at zero, so writes before its first sample count.
    since_ms: i64,
    pub records_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub records_out: AtomicU64,
    pub bytes_out: AtomicU64,
    /// By shard index.
    shards: RwLock<HashMap<u32, Arc<ShardCounters>>>,
}

/// (ms, records in, records out) at each second.
type Ring = VecDeque<(i64, u64, u64)>;

/// Every stream's counters, by stream id.
pub struct Traffic {
    counters: RwLock<HashMap<u64, Arc<Counters>>>,
    rings: Mutex<HashMap<u64, Ring>>,
    /// Rates are over real time (not the service's clock, which tests
    /// may hold still).
    started: std::time::Instant,
}

impl Default for Traffic {
    fn default() -> Traffic {
        Traffic {
            counters: RwLock::default(),
            rings: Mutex::default(),
            started: std::time::Instant::now(),
        }
    }
}

/// A stream's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Figures {
    pub records_in: u64,
    pub bytes_in: u64,
    pub records_out: u64,
    pub bytes_out: u64,
    /// Records per second over the last minute (or since the stream's
    /// first sample, when younger).
    pub in_per_second: f64,
    pub out_per_second: f64,
}

/// A shard's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ShardFigures {
    pub records_in: u64,
    pub bytes_in: u64,
    pub records_out: u64,
    pub bytes_out: u64,
    /// The latest `MillisBehindLatest` reported within the last minute.
    pub iterator_age_ms: Option<u64>,
}

/// A shard of a stream and its figures, as `/metrics` and the console
/// report them.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardTraffic {
    pub shard_id: String,
    pub open: bool,
    pub figures: ShardFigures,
}

impl Traffic {
    fn now_ms(&self) -> i64 {
        self.started.elapsed().as_millis() as i64
    }

    fn fresh(since_ms: i64) -> Arc<Counters> {
        Arc::new(Counters {
            since_ms,
            ..Counters::default()
        })
    }

    /// A stream's counters, if it has any yet.
    fn existing(&self, id: u64) -> Option<Arc<Counters>> {
        self.counters
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }

    fn counters(&self, id: u64) -> Arc<Counters> {
        if let Some(c) = self.existing(id) {
            return c;
        }
        let now = self.now_ms();
        self.counters
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id)
            .or_insert_with(|| Self::fresh(now))
            .clone()
    }

    /// A shard's counters, made on its first use.
    fn shard(c: &Counters, shard: u32) -> Arc<ShardCounters> {
        let known = c
            .shards
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&shard)
            .cloned();
        known.unwrap_or_else(|| {
            c.shards
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .entry(shard)
                .or_default()
                .clone()
        })
    }

    /// A write: (shard index, records, bytes) for each shard it wrote to.
    pub fn wrote(&self, id: u64, shards: &[(u32, u64, u64)]) {
        let c = self.counters(id);
        let (mut records, mut bytes) = (0, 0);
        for &(index, r, b) in shards {
            let sc = Self::shard(&c, index);
            sc.records_in.fetch_add(r, Ordering::Relaxed);
            sc.bytes_in.fetch_add(b, Ordering::Relaxed);
            records += r;
            bytes += b;
        }
        c.records_in.fetch_add(records, Ordering::Relaxed);
        c.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A read of `records` (`bytes` of data) from a shard, which reported
    /// `millis_behind` (its `MillisBehindLatest`).
    pub fn read(&self, id: u64, shard: u32, records: u64, bytes: u64, millis_behind: i64) {
        self.read_at(self.now_ms(), id, shard, records, bytes, millis_behind);
    }

    /// [`Traffic::read`] at a given time (ms on the traffic's clock).
    pub fn read_at(
        &self,
        now_ms: i64,
        id: u64,
        shard: u32,
        records: u64,
        bytes: u64,
        millis_behind: i64,
    ) {
        let c = self.counters(id);
        let sc = Self::shard(&c, shard);
        if records > 0 {
            c.records_out.fetch_add(records, Ordering::Relaxed);
            c.bytes_out.fetch_add(bytes, Ordering::Relaxed);
            sc.records_out.fetch_add(records, Ordering::Relaxed);
            sc.bytes_out.fetch_add(bytes, Ordering::Relaxed);
        }
        sc.age_ms
            .store(millis_behind.max(0) as u64, Ordering::Relaxed);
        sc.age_at_ms.store(now_ms + 1, Ordering::Relaxed);
    }

    /// The figures of each shard written to or read from, by shard index.
    pub fn shards(&self, id: u64) -> Vec<(u32, ShardFigures)> {
        self.shards_at(self.now_ms(), id)
    }

    /// [`Traffic::shards`] at a given time (ms on the traffic's clock).
    pub fn shards_at(&self, now_ms: i64, id: u64) -> Vec<(u32, ShardFigures)> {
        let Some(c) = self.existing(id) else {
            return Vec::new();
        };
        let shards = c.shards.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<(u32, ShardFigures)> = shards
            .iter()
            .map(|(index, sc)| {
                let at = sc.age_at_ms.load(Ordering::Relaxed);
                let fresh = at > 0 && now_ms - (at - 1) <= AGE_WINDOW_MS;
                let f = ShardFigures {
                    records_in: sc.records_in.load(Ordering::Relaxed),
                    bytes_in: sc.bytes_in.load(Ordering::Relaxed),
                    records_out: sc.records_out.load(Ordering::Relaxed),
                    bytes_out: sc.bytes_out.load(Ordering::Relaxed),
                    iterator_age_ms: fresh.then(|| sc.age_ms.load(Ordering::Relaxed)),
                };
                (*index, f)
            })
            .collect();
        out.sort_unstable_by_key(|(index, _)| *index);
        out
    }

    /// Samples every counter (once a second), forgetting streams not in
    /// `live`.
    pub fn sample(&self, live: &[u64]) {
        self.sample_at(self.now_ms(), live);
    }

    /// [`Traffic::sample`] at a given time (ms on a monotonic clock).
    pub fn sample_at(&self, now_ms: i64, live: &[u64]) {
        let counters: Vec<(u64, Arc<Counters>)> = {
            let mut map = self.counters.write().unwrap_or_else(|p| p.into_inner());
            map.retain(|id, _| live.contains(id));
            // A stream's ring starts with the stream, not its first write.
            for id in live {
                map.entry(*id).or_insert_with(|| Self::fresh(now_ms));
            }
            map.iter().map(|(k, v)| (*k, v.clone())).collect()
        };
        let mut rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        rings.retain(|id, _| live.contains(id));
        for (id, c) in counters {
            let ring = rings
                .entry(id)
                .or_insert_with(|| VecDeque::from([(c.since_ms.min(now_ms), 0, 0)]));
            ring.push_back((
                now_ms,
                c.records_in.load(Ordering::Relaxed),
                c.records_out.load(Ordering::Relaxed),
            ));
            while ring.len() > RING {
                ring.pop_front();
            }
        }
    }

    /// A stream's figures now.
    pub fn figures(&self, id: u64) -> Figures {
        let Some(c) = self.existing(id) else {
            return Figures::default();
        };
        let mut f = Figures {
            records_in: c.records_in.load(Ordering::Relaxed),
            bytes_in: c.bytes_in.load(Ordering::Relaxed),
            records_out: c.records_out.load(Ordering::Relaxed),
            bytes_out: c.bytes_out.load(Ordering::Relaxed),
            ..Figures::default()
        };
        let rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ring) = rings.get(&id) {
            if let (Some(first), Some(last)) = (ring.front(), ring.back()) {
                let secs = (last.0 - first.0) as f64 / 1000.0;
                if secs > 0.0 {
                    f.in_per_second = last.1.saturating_sub(first.1) as f64 / secs;
                    f.out_per_second = last.2.saturating_sub(first.2) as f64 / secs;
                }
            }
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_over_the_last_minute_of_samples() {
        let t = Traffic::default();
        t.sample_at(0, &[7]);
        t.wrote(7, &[(0, 10, 100)]);
        t.sample_at(1_000, &[7]);
        let f = t.figures(7);
        assert_eq!((f.records_in, f.bytes_in, f.in_per_second), (10, 100, 10.0));
        // A minute of 2 records/s: the ring holds 61 samples (60 s).
        for s in 2..=120 {
            t.wrote(7, &[(0, 2, 20)]);
            t.read(7, 0, 1, 10, 0);
            t.sample_at(s * 1_000, &[7]);
        }
        let f = t.figures(7);
        assert_eq!((f.in_per_second, f.out_per_second), (2.0, 1.0));
        assert_eq!((f.records_in, f.records_out), (10 + 2 * 119, 119));
        // A deleted stream is forgotten.
        t.sample_at(121_000, &[]);
        assert_eq!(t.figures(7), Figures::default());
    }

    #[test]
    fn shards_count_their_own_traffic_and_latest_age_within_a_minute() {
        let t = Traffic::default();
        assert_eq!(t.shards_at(0, 7), vec![]);
        let fig = |records_in, bytes_in, records_out, bytes_out, age| ShardFigures {
            records_in,
            bytes_in,
            records_out,
            bytes_out,
            iterator_age_ms: age,
        };
        // A write to two shards counts for each and for the stream.
        t.wrote(7, &[(0, 3, 30), (2, 1, 7)]);
        assert_eq!((t.figures(7).records_in, t.figures(7).bytes_in), (4, 37));
        t.read_at(1_000, 7, 2, 1, 5, 4_000);
        t.read_at(2_000, 7, 0, 2, 20, 9_000);
        assert_eq!(
            t.shards_at(2_000, 7),
            vec![
                (0, fig(3, 30, 2, 20, Some(9_000))),
                (2, fig(1, 7, 1, 5, Some(4_000)))
            ]
        );
        // The latest report wins, even when it is smaller; an empty read
        // (caught up) reports 0 and counts no records.
        t.read_at(3_000, 7, 0, 0, 0, 0);
        assert_eq!(t.shards_at(3_000, 7)[0], (0, fig(3, 30, 2, 20, Some(0))));
        assert_eq!((t.figures(7).records_out, t.figures(7).bytes_out), (3, 25));
        // A report counts for a minute; the counters stay.
        assert_eq!(t.shards_at(61_000, 7)[1], (2, fig(1, 7, 1, 5, Some(4_000))));
        assert_eq!(t.shards_at(61_001, 7)[1], (2, fig(1, 7, 1, 5, None)));
        assert_eq!(t.shards_at(63_001, 7)[0], (0, fig(3, 30, 2, 20, None)));
        // A shard only read from, never written to.
        t.read_at(64_000, 7, 5, 0, 0, 0);
        assert_eq!(t.shards_at(64_000, 7)[2], (5, fig(0, 0, 0, 0, Some(0))));
        // Other streams keep their own.
        assert_eq!(t.shards_at(2_000, 8), vec![]);
        // A deleted stream's shards are forgotten with its counters.
        t.sample_at(65_000, &[]);
        assert_eq!(t.shards_at(65_000, 7), vec![]);
    }
}
