//! The fragment store under power loss and process death, on the
//! simulated file system: each seed runs a few rounds of appending
//! fragments (single-record and multi-record ones) while a power loss or a
//! kill strikes at a random file-system operation, in a random crash mode.
//! After every recovery:
//! - every fragment whose append was acknowledged durable (what PERSISTED
//!   reports) is in the index, with its metadata and its bytes exact;
//! - every fragment the index lists reads back as what was appended at its
//!   offset (no index record without its data, no stale data);
//! - the index is in offset order and new appends continue after it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use riffle_fs::sim::{CrashMode, Rng, SimFs, Trigger};
use riffle_log::disk::{DiskConfig, DiskEngine};
use riffle_log::{Durability, LogEngine};
use riffle_video::store::{Fragment, NewFragment, Store, CHUNK};

const LOG: u64 = 5;
const ROUNDS: u64 = 4;

fn open(fs: &SimFs) -> Result<Arc<Store>, String> {
    let engine = DiskEngine::open_with(
        Arc::new(fs.clone()),
        "/data/video",
        DiskConfig {
            durability: Durability::Fsync,
            segment_bytes: 256 << 10,
            sync_interval: Duration::from_secs(3600),
        },
    )
    .map_err(|e| format!("opening the engine failed: {e}"))?;
    let log = engine
        .open(LOG)
        .map_err(|e| format!("recovery failed: {e}"))?;
    Store::open(LOG, log)
        .map(Arc::new)
        .map_err(|e| format!("reading the index failed: {e}"))
}

/// What was appended at each offset, and which of those must survive.
#[derive(Default)]
struct Model {
    appended: BTreeMap<u64, (Fragment, Bytes)>,
    durable: BTreeMap<u64, Fragment>,
}

fn check(model: &Model, store: &Store) -> Result<(), String> {
    let listed = store.fragments();
    if listed.windows(2).any(|w| w[0].offset >= w[1].offset) {
        return Err("the index is out of order".into());
    }
    for f in &listed {
        let Some((want, data)) = model.appended.get(&f.offset) else {
            return Err(format!("fragment at {} was never appended", f.offset));
        };
        if f != want {
            return Err(format!(
                "fragment at {}: {f:?}, appended {want:?}",
                f.offset
            ));
        }
        let got = store
            .read(f)
            .map_err(|e| format!("fragment at {} does not read: {e}", f.offset))?;
        if got != data {
            return Err(format!("fragment at {} reads other bytes", f.offset));
        }
    }
    for (offset, f) in &model.durable {
        if !listed.contains(f) {
            return Err(format!("durable fragment at {offset} was lost"));
        }
    }
    Ok(())
}

fn payload(rng: &mut Rng, round: u64, i: u64) -> Bytes {
    // Now and then a fragment of two records.
    let len = if rng.below(16) == 0 {
        CHUNK + 1 + rng.below(300) as usize
    } else {
        200 + rng.below(6000) as usize
    };
    let mut b = vec![0u8; len];
    let tag = (round << 32 | i).to_le_bytes();
    for (k, x) in b.iter_mut().enumerate() {
        *x = tag[k % 8] ^ (k as u8);
    }
    Bytes::from(b)
}

fn run(seed: u64) -> Result<(), String> {
    let fs = SimFs::new(seed);
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut model = Model::default();
    for round in 0..ROUNDS {
        let store = open(&fs)?;
        check(&model, &store).map_err(|e| format!("round {round}: {e}"))?;
        // Offsets past the recovered end are given out again.
        let end = store.next_offset();
        model
            .appended
            .retain(|&o, _| o < end || store.at(o).is_some());
        let kill = rng.coin();
        let trigger = Trigger::Op(1 + rng.below(40));
        if kill {
            fs.arm_kill(trigger);
        } else {
            fs.arm_crash(trigger, CrashMode::ALL[rng.below(4) as usize]);
        }
        rt.block_on(async {
            for i in 0..12 {
                let data = payload(&mut rng, round, i);
                let meta = NewFragment {
                    producer_ms: 1_000 * (round as i64 * 100 + i as i64),
                    server_ms: 2_000 + i as i64,
                    duration_ms: 1000,
                };
                let Ok((frag, durable)) = store.append(meta, 16, data.clone(), 1).await else {
                    break;
                };
                model.appended.insert(frag.offset, (frag, data));
                if durable.await.is_ok() {
                    model.durable.insert(frag.offset, frag);
                } else {
                    break;
                }
            }
        });
        drop(store);
        fs.reboot();
        if kill {
            fs.kill();
        }
    }
    let store = open(&fs)?;
    check(&model, &store).map_err(|e| format!("final: {e}"))
}

#[test]
fn acknowledged_fragments_survive_power_loss_and_kills() {
    let seeds: u64 = std::env::var("RIFFLE_POWER_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let mut failures = Vec::new();
    for seed in 0..seeds {
        if let Err(e) = run(seed) {
            failures.push(format!("seed {seed}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
