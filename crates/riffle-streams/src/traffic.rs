//! Records and bytes in and out of each stream, for `/metrics`: counters
//! since the server started, and the rate over the last minute (what
//! `riffle streams` and the console show).
//!
//! A write or read adds to its stream's atomic counters (one map lookup
//! under a read lock per call, not per record). The maintenance task
//! samples every counter once a second into a ring of 61 samples; a rate
//! is the difference across the ring over the time it spans.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Samples kept: a minute of seconds, and the one before.
const RING: usize = 61;

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

    fn counters(&self, id: u64) -> Arc<Counters> {
        if let Some(c) = self
            .counters
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
        {
            return c.clone();
        }
        let now = self.now_ms();
        self.counters
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id)
            .or_insert_with(|| Self::fresh(now))
            .clone()
    }

    pub fn wrote(&self, id: u64, records: u64, bytes: u64) {
        let c = self.counters(id);
        c.records_in.fetch_add(records, Ordering::Relaxed);
        c.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn read(&self, id: u64, records: u64, bytes: u64) {
        if records == 0 {
            return;
        }
        let c = self.counters(id);
        c.records_out.fetch_add(records, Ordering::Relaxed);
        c.bytes_out.fetch_add(bytes, Ordering::Relaxed);
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
        let Some(c) = self
            .counters
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
        else {
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
        t.wrote(7, 10, 100);
        t.sample_at(1_000, &[7]);
        let f = t.figures(7);
        assert_eq!((f.records_in, f.bytes_in, f.in_per_second), (10, 100, 10.0));
        // A minute of 2 records/s: the ring holds 61 samples (60 s).
        for s in 2..=120 {
            t.wrote(7, 2, 20);
            t.read(7, 1, 10);
            t.sample_at(s * 1_000, &[7]);
        }
        let f = t.figures(7);
        assert_eq!((f.in_per_second, f.out_per_second), (2.0, 1.0));
        assert_eq!((f.records_in, f.records_out), (10 + 2 * 119, 119));
        // A deleted stream is forgotten.
        t.sample_at(121_000, &[]);
        assert_eq!(t.figures(7), Figures::default());
    }
}
