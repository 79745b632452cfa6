//! Per-shard provisioned throughput, enforced when the server runs with
//! throttling on: 1 MiB/s and 1,000 records/s in, 5 GetRecords calls/s and
//! 2 MiB/s out, counted in one-second windows of the injected clock.

use std::collections::HashMap;
use std::sync::Mutex;

use riffle_core::limits;

use crate::state::Stream;
use crate::{KinesisError, Service};

#[derive(Default, Clone, Copy)]
struct Window {
    second: i64,
    write_bytes: u64,
    write_records: u64,
    read_calls: u64,
    read_bytes: u64,
}

#[derive(Default)]
pub struct Throttle {
    windows: Mutex<HashMap<(u64, u32), Window>>,
}

fn exceeded(s: &Stream, shard: u32, account: &str) -> KinesisError {
    KinesisError::ProvisionedThroughputExceeded(format!(
        "Rate exceeded for shard {} in stream {} under account {account}.",
        riffle_core::names::shard_id(shard),
        s.name
    ))
}

impl Throttle {
    fn window<T>(&self, s: &Stream, shard: u32, now: i64, f: impl FnOnce(&mut Window) -> T) -> T {
        let mut g = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let w = g.entry((s.id, shard)).or_default();
        if w.second != now.div_euclid(1000) {
            *w = Window {
                second: now.div_euclid(1000),
                ..Window::default()
            };
        }
        f(w)
    }

    /// Admits a write of `records` records and `bytes` bytes, or refuses it.
    pub fn admit_write(
        &self,
        svc: &Service,
        s: &Stream,
        shard: u32,
        records: u64,
        bytes: u64,
        now: i64,
    ) -> Result<(), KinesisError> {
        if !svc.cfg.throttle {
            return Ok(());
        }
        self.window(s, shard, now, |w| {
            if w.write_records + records > limits::SHARD_WRITE_RECORDS_PER_SEC
                || w.write_bytes + bytes > limits::SHARD_WRITE_BYTES_PER_SEC
            {
                return Err(exceeded(s, shard, svc.account()));
            }
            w.write_records += records;
            w.write_bytes += bytes;
            Ok(())
        })
    }

    /// Admits one GetRecords call, or refuses it.
    pub fn admit_read(
        &self,
        svc: &Service,
        s: &Stream,
        shard: u32,
        now: i64,
    ) -> Result<(), KinesisError> {
        if !svc.cfg.throttle {
            return Ok(());
        }
        self.window(s, shard, now, |w| {
            if w.read_calls >= limits::SHARD_READ_CALLS_PER_SEC
                || w.read_bytes >= limits::SHARD_READ_BYTES_PER_SEC
            {
                return Err(exceeded(s, shard, svc.account()));
            }
            w.read_calls += 1;
            Ok(())
        })
    }

    /// Counts bytes a read returned against the shard's read budget.
    pub fn charge_read(&self, s: &Stream, shard: u32, bytes: u64, now: i64) {
        self.window(s, shard, now, |w| w.read_bytes += bytes);
    }
}
