//! Power loss, process death, full disks and I/O errors, on the simulated
//! file system.
//!
//! Every run is a few rounds on one [`SimFs`]: open the engine (recovering
//! what the last round left), check it, then let concurrent writers append
//! to several shards while a power loss or a process death strikes at a
//! random file-system operation, in a random [`CrashMode`]. The check after
//! every recovery ([`check`]):
//! - recovery reported no corrupt frame and repaired nothing (a power loss
//!   alone never damages synced data);
//! - every read succeeds, and each shard's offsets strictly increase;
//! - every visible record is byte for byte the one last appended at its
//!   shard and offset (no stale or reordered data comes back);
//! - every record that had to survive is there: acknowledged in `fsync`
//!   mode, or acknowledged before a completed flush in `interval` mode;
//! - nothing unacknowledged becomes visible out of order: each shard's
//!   visible offsets are a gap-free prefix of what was appended to it, the
//!   only holes being offsets of appends that failed (which the log's
//!   contract leaves as gaps).
//!
//! [`every_sync_point_is_needed`] skips each [`SyncPoint`] in turn and
//! shows the check then fails for several of the default run's seeds,
//! while it passes for all seeds with every sync in place.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex as StdMutex;

use riffle_fs::sim::{CrashMode, Errno, Faults, Rng, SimFs, Trigger};
use riffle_fs::Fs;

use super::*;
use crate::conformance::ALL;

const LOG: LogId = 7;
const SHARDS: u32 = 3;
const ROOT: &str = "/data/streams";
const WRITERS: u64 = 3;
const APPENDS: u64 = 12;
const ROUNDS: u64 = 4;

/// What the test knows of the log.
#[derive(Default)]
struct Model {
    /// The data last appended at each (shard, offset). Offsets that a
    /// recovery dropped (never acknowledged) are given out again.
    assigned: HashMap<(u32, u64), Bytes>,
    /// Records that must survive anything.
    durable: BTreeMap<(u32, u64), Bytes>,
    /// Acknowledged in interval mode, not yet covered by a flush.
    unflushed: Vec<((u32, u64), Bytes)>,
    /// Offsets that may stay gaps below visible records: those of appends
    /// that failed, and those a recovery abandoned (below the shard's next
    /// offset but not visible). The log never gives them out again.
    gaps: HashSet<(u32, u64)>,
}

impl Model {
    /// Notes that `data` was appended at (`shard`, `offset`).
    fn appended(&mut self, shard: u32, offset: u64, data: Bytes) {
        self.gaps.remove(&(shard, offset));
        self.assigned.insert((shard, offset), data);
    }
}

fn open(
    fs: &SimFs,
    skip: Option<SyncPoint>,
    segment_bytes: u64,
    durability: Durability,
) -> Result<(Arc<DiskEngine>, Arc<DiskLog>), String> {
    let cfg = DiskConfig {
        durability,
        segment_bytes,
        sync_interval: Duration::from_secs(3600),
        skip_sync: skip,
    };
    let engine = DiskEngine::open_with(Arc::new(fs.clone()), ROOT, cfg)
        .map_err(|e| format!("opening the engine failed: {e}"))?;
    engine
        .open(LOG)
        .map_err(|e| format!("recovery failed: {e}"))?;
    let log = lock(&engine.logs)
        .get(&LOG)
        .cloned()
        .ok_or("no log after open")?;
    Ok((engine, log))
}

/// The check after a recovery (see the module's documentation).
fn check(model: &mut Model, log: &DiskLog, stats: &DiskStats) -> Result<(), String> {
    let corrupt = stats.corrupt_frames.load(Ordering::Relaxed);
    if corrupt > 0 {
        return Err(format!("recovery reported {corrupt} corrupt frame(s)"));
    }
    let repairs = stats.repairs.load(Ordering::Relaxed);
    if repairs > 0 {
        return Err(format!(
            "recovery had to repair {repairs} index or checkpoint file(s)"
        ));
    }
    let mut visible: HashMap<(u32, u64), Bytes> = HashMap::new();
    for shard in 0..SHARDS {
        let mut from = 0;
        let mut last = 0;
        loop {
            let batch = log
                .read(shard, from, ALL)
                .map_err(|e| format!("reading shard {shard} from {from}: {e}"))?;
            if batch.records.is_empty() {
                break;
            }
            for r in batch.records {
                if r.offset <= last {
                    return Err(format!("shard {shard}: offset {} after {last}", r.offset));
                }
                last = r.offset;
                if model.assigned.get(&(shard, r.offset)) != Some(&r.data) {
                    return Err(format!(
                        "shard {shard} offset {}: a record that is not the one last appended there",
                        r.offset
                    ));
                }
                visible.insert((shard, r.offset), r.data);
            }
            from = batch.next_position;
        }
        // A gap-free prefix: below the last visible record, every offset is
        // visible or belongs to a failed append.
        if let Some(hole) = (1..last)
            .find(|o| !visible.contains_key(&(shard, *o)) && !model.gaps.contains(&(shard, *o)))
        {
            return Err(format!(
                "shard {shard}: offset {last} is visible but offset {hole} is not ({})",
                if model.assigned.contains_key(&(shard, hole)) {
                    "an unacknowledged record became visible out of order"
                } else {
                    "never appended"
                }
            ));
        }
        let next = log.next_offset(shard);
        if next <= last {
            return Err(format!("shard {shard}: next offset below a visible record"));
        }
        // What recovery abandoned stays a gap from now on.
        for o in last + 1..next {
            model.gaps.insert((shard, o));
        }
    }
    for (key, data) in &model.durable {
        if visible.get(key) != Some(data) {
            return Err(format!(
                "shard {} offset {}: an acknowledged record was lost",
                key.0, key.1
            ));
        }
    }
    Ok(())
}

fn record(rng: &mut Rng, tag: &str) -> NewRecord {
    let len = rng.below(160) as usize;
    let mut data = tag.as_bytes().to_vec();
    data.extend((0..len).map(|i| b'a' + ((i as u64 + rng.0) % 26) as u8));
    NewRecord {
        shard: rng.below(u64::from(SHARDS)) as u32,
        partition_key: format!("pk{}", rng.below(100)),
        data: Bytes::from(data),
    }
}

/// One writer of a round: appends, notes what was assigned and what must
/// survive; writer 0 also flushes now and then in interval mode.
async fn writer(
    fs: SimFs,
    log: Arc<DiskLog>,
    model: Arc<StdMutex<Model>>,
    seed: u64,
    tag: String,
    interval: bool,
) {
    let mut rng = Rng(seed);
    for i in 0..APPENDS {
        let n = 1 + rng.below(3);
        let recs: Vec<NewRecord> = (0..n)
            .map(|j| record(&mut rng, &format!("{tag}/{i}/{j}/")))
            .collect();
        let keys: Vec<(u32, Bytes)> = recs.iter().map(|r| (r.shard, r.data.clone())).collect();
        let Ok(a) = log.append(recs, 1_000 + i as i64) else {
            return;
        };
        {
            let mut m = model.lock().unwrap();
            for ((shard, data), off) in keys.iter().zip(&a.offsets) {
                m.appended(*shard, *off, data.clone());
            }
        }
        match a.durable.await {
            Ok(()) => {
                let mut m = model.lock().unwrap();
                for ((shard, data), off) in keys.into_iter().zip(a.offsets) {
                    if interval {
                        m.unflushed.push(((shard, off), data));
                    } else {
                        m.durable.insert((shard, off), data);
                    }
                }
            }
            Err(_) if fs.is_down() => return,
            Err(_) => {
                let mut m = model.lock().unwrap();
                for ((shard, _), off) in keys.iter().zip(&a.offsets) {
                    m.gaps.insert((*shard, *off));
                }
            }
        }
        if interval && tag.ends_with("w0") && rng.below(3) == 0 {
            let covered = std::mem::take(&mut model.lock().unwrap().unflushed);
            let l = log.clone();
            let _ = tokio::task::spawn_blocking(move || l.flush()).await;
            if !fs.is_down() {
                model.lock().unwrap().durable.extend(covered);
            }
        }
        tokio::task::yield_now().await;
    }
}

/// Prints what a run does when `RIFFLE_POWER_TRACE` is set.
fn trace(line: impl FnOnce() -> String) {
    if std::env::var_os("RIFFLE_POWER_TRACE").is_some() {
        eprintln!("{}", line());
    }
}

/// One randomized run: a few rounds of writes ended by power losses and
/// process deaths, checked after every recovery.
fn run(seed: u64, skip: Option<SyncPoint>) -> Result<(), String> {
    let mut rng = Rng(seed ^ 0x5EED);
    let fs = SimFs::with_block(seed, 64 << rng.below(4));
    let segment_bytes = 400 + rng.below(1200);
    let model = Arc::new(StdMutex::new(Model::default()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for round in 0..=ROUNDS {
        let interval = rng.below(3) == 0;
        let durability = if interval {
            Durability::Interval
        } else {
            Durability::Fsync
        };
        fs.reboot();
        // Now and then the power fails (or the process dies) during
        // recovery itself.
        let early = round < ROUNDS && rng.below(5) == 0;
        if early {
            let at = Trigger::Op(1 + rng.below(8));
            if rng.below(2) == 0 {
                let mode = rng.mode();
                trace(|| {
                    format!(
                        "seed {seed} round {round}: power loss ({mode:?}) at {at:?} while opening"
                    )
                });
                fs.arm_crash(at, mode);
            } else {
                trace(|| {
                    format!("seed {seed} round {round}: process death at {at:?} while opening")
                });
                fs.arm_kill(at);
            }
        }
        let (engine, log) = match open(&fs, skip, segment_bytes, durability) {
            Ok(x) => x,
            Err(_) if fs.is_down() => continue,
            Err(e) => return Err(format!("seed {seed} round {round}: {e}")),
        };
        if early {
            fs.reboot();
        }
        check(&mut model.lock().unwrap(), &log, &engine.stats)
            .map_err(|e| format!("seed {seed} round {round}: {e}"))?;
        if round == ROUNDS {
            break;
        }
        model.lock().unwrap().unflushed.clear();
        let at = Trigger::Op(1 + rng.below(160));
        let plan = match rng.below(10) {
            0..=4 => {
                let mode = rng.mode();
                fs.arm_crash(at, mode);
                format!("power loss ({mode:?}) at {at:?}")
            }
            5..=7 => {
                fs.arm_kill(at);
                format!("process death at {at:?}")
            }
            _ => "no fault".to_string(),
        };
        trace(|| format!("seed {seed} round {round}: interval {interval}, {plan}"));
        rt.block_on(async {
            let tasks: Vec<_> = (0..WRITERS)
                .map(|w| {
                    tokio::spawn(writer(
                        fs.clone(),
                        log.clone(),
                        model.clone(),
                        rng.next_u64(),
                        format!("s{seed}r{round}w{w}"),
                        interval,
                    ))
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
        if !fs.is_down() {
            let mode = rng.mode();
            let crash = rng.below(2) == 0;
            if std::env::var("RIFFLE_POWER_TRACE").is_ok() {
                eprintln!(
                    "  ended by {}",
                    if crash {
                        format!("power loss {mode:?}")
                    } else {
                        "process death".into()
                    }
                );
            }
            if crash {
                fs.crash(mode);
            } else {
                fs.kill();
            }
        }
        drop(log);
        drop(engine);
    }
    Ok(())
}

/// Seeds per run: [`BASELINE_SEEDS`], or `RIFFLE_POWER_SEEDS` (for a
/// longer soak).
fn seeds() -> u64 {
    std::env::var("RIFFLE_POWER_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(BASELINE_SEEDS)
}

#[test]
fn power_loss_keeps_every_acknowledged_record() {
    let started = std::time::Instant::now();
    let n = seeds();
    let first: u64 = std::env::var("RIFFLE_POWER_FIRST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    for seed in first..first + n {
        if let Err(e) = run(seed, None) {
            panic!("{e}");
        }
    }
    eprintln!("{n} seeds in {:?}", started.elapsed());
}

/// The seeds [`power_loss_keeps_every_acknowledged_record`] runs by default.
const BASELINE_SEEDS: u64 = 200;

/// For every sync point: skipping it makes [`run`]'s checks fail for a
/// seed among those the default run of
/// [`power_loss_keeps_every_acknowledged_record`] uses (which shows they
/// pass with every sync in place). Skipping a sync is what deleting its
/// call does, so a deleted sync fails that default run too. Scheduling
/// makes runs differ a little from one time to the next; the sync the
/// randomized runs catch least often (`OpenActive`, about 1.5 % of seeds)
/// also has a scenario of its own that catches it every time
/// ([`a_process_death_then_a_power_loss_keeps_what_recovery_showed`]).
#[test]
fn every_sync_point_is_needed() {
    const CATCHES: usize = 1;
    let mut report = Vec::new();
    for point in SyncPoint::ALL {
        let started = std::time::Instant::now();
        let mut caught = Vec::new();
        for seed in 0..BASELINE_SEEDS {
            if let Err(e) = run(seed, Some(point)) {
                caught.push((seed, e));
                if caught.len() == CATCHES {
                    break;
                }
            }
        }
        assert!(
            caught.len() == CATCHES,
            "skipping {point:?} went unnoticed over the {BASELINE_SEEDS} baseline seeds"
        );
        report.push(format!(
            "{point:?}: caught at seeds {:?} after {:?}: {}",
            caught.iter().map(|c| c.0).collect::<Vec<_>>(),
            started.elapsed(),
            caught[0].1
        ));
    }
    eprintln!("{}", report.join("\n"));
}

/// A process dies with records written but not synced (interval mode);
/// the next process shows them, and its first append rolls the segment
/// (in fsync mode, where sealing does not sync the sealed segment again);
/// then the power fails. What recovery showed must have been made durable
/// when it was shown (`OpenActive`), or the record after it survives
/// without it.
fn process_death_then_power_loss(skip: Option<SyncPoint>) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fs = SimFs::with_block(1, 128);
    let mut model = Model::default();
    let big = Bytes::from(vec![b'x'; 600]);
    let (engine, log) = open(&fs, skip, 400, Durability::Interval)?;
    rt.block_on(async {
        let a = log.append(
            vec![NewRecord {
                shard: 0,
                partition_key: "k".into(),
                data: big.clone(),
            }],
            1,
        )?;
        a.durable.await?;
        model.appended(0, a.offsets[0], big.clone());
        Ok::<_, LogError>(())
    })
    .map_err(|e| e.to_string())?;
    drop(log);
    drop(engine);
    fs.kill();
    let (engine, log) = open(&fs, skip, 400, Durability::Fsync)?;
    check(&mut model, &log, &engine.stats)?;
    rt.block_on(async {
        let data = Bytes::from_static(b"after");
        let a = log.append(
            vec![NewRecord {
                shard: 0,
                partition_key: "k".into(),
                data: data.clone(),
            }],
            2,
        )?;
        a.durable.await?;
        model.appended(0, a.offsets[0], data.clone());
        model.durable.insert((0, a.offsets[0]), data);
        Ok::<_, LogError>(())
    })
    .map_err(|e| e.to_string())?;
    drop(log);
    drop(engine);
    fs.crash(CrashMode::DropAll);
    let (engine, log) = open(&fs, skip, 400, Durability::Fsync)?;
    check(&mut model, &log, &engine.stats)
}

#[test]
fn a_process_death_then_a_power_loss_keeps_what_recovery_showed() {
    process_death_then_power_loss(None).unwrap();
    let e = process_death_then_power_loss(Some(SyncPoint::OpenActive))
        .expect_err("skipping OpenActive went unnoticed");
    eprintln!("without OpenActive: {e}");
}

/// Full disks and I/O errors: a failed write or sync is never acknowledged
/// nor shown to readers, appends resume once the fault clears, and after a
/// power loss nothing acknowledged is missing.
#[test]
fn full_disk_and_io_errors_are_never_acknowledged() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (mut failures, mut resumed) = (0, 0);
    for seed in 0..32u64 {
        let mut rng = Rng(seed);
        let fs = SimFs::new(seed);
        let (engine, log) = open(&fs, None, 500 + rng.below(800), Durability::Fsync).unwrap();
        let mut model = Model::default();
        let mut faulty = false;
        rt.block_on(async {
            for i in 0..60u64 {
                if !faulty && rng.below(6) == 0 {
                    faulty = true;
                    fs.set_faults(match rng.below(4) {
                        0 => Faults {
                            space_left: Some(rng.below(400)),
                            ..Faults::default()
                        },
                        1 => Faults {
                            fail_sync: Some((1 + rng.below(3), Errno::Io)),
                            ..Faults::default()
                        },
                        2 => Faults {
                            fail_write: Some((1 + rng.below(3), Errno::NoSpace)),
                            ..Faults::default()
                        },
                        _ => Faults {
                            fail_write: Some((1 + rng.below(3), Errno::Io)),
                            ..Faults::default()
                        },
                    });
                } else if faulty && rng.below(4) == 0 {
                    faulty = false;
                    fs.clear_faults();
                }
                let recs: Vec<NewRecord> = (0..1 + rng.below(3))
                    .map(|j| record(&mut rng, &format!("f{seed}/{i}/{j}/")))
                    .collect();
                let keys: Vec<(u32, Bytes)> =
                    recs.iter().map(|r| (r.shard, r.data.clone())).collect();
                let a = log.append(recs, 1_000).unwrap();
                for ((shard, data), off) in keys.iter().zip(&a.offsets) {
                    model.appended(*shard, *off, data.clone());
                }
                match a.durable.await {
                    Ok(()) => {
                        if !faulty {
                            resumed += 1;
                        }
                        for ((shard, data), off) in keys.into_iter().zip(a.offsets) {
                            model.durable.insert((shard, off), data);
                        }
                    }
                    Err(e) => {
                        assert!(
                            matches!(e, LogError::NoSpace(_) | LogError::Io(_)),
                            "seed {seed}: {e}"
                        );
                        failures += 1;
                        for ((shard, _), off) in keys.iter().zip(&a.offsets) {
                            model.gaps.insert((*shard, *off));
                        }
                        // Readers never see a failed append.
                        for ((shard, _), off) in keys.iter().zip(&a.offsets) {
                            let got = log.read(*shard, *off, ALL).unwrap();
                            assert!(
                                got.records.first().is_none_or(|r| r.offset != *off),
                                "seed {seed}: a failed record is readable"
                            );
                        }
                    }
                }
            }
        });
        fs.clear_faults();
        check(&mut model, &log, &engine.stats).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        drop(log);
        drop(engine);
        fs.crash(rng.mode());
        let (engine, log) = open(&fs, None, 700, Durability::Fsync).unwrap();
        check(&mut model, &log, &engine.stats)
            .unwrap_or_else(|e| panic!("seed {seed} after a power loss: {e}"));
    }
    assert!(failures > 20, "only {failures} appends failed");
    assert!(
        resumed > 100,
        "only {resumed} appends succeeded without faults"
    );
}

/// The synced-before mark at work: a power loss keeps the second frame of
/// an unsynced cycle but not the first. Format 1's rule (any valid frame
/// after damage means corruption) would report corruption; recovery cuts
/// the cycle instead (the later frame is not readable), and loses nothing
/// that was synced. At least 8 of the seeds must hit that case.
#[test]
fn a_later_frame_of_an_unsynced_cycle_is_cut_not_reported() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let seg = Path::new(ROOT)
        .join(format!("{LOG:016x}"))
        .join("0000000000000001.seg");
    const SEEDS: u64 = 64;
    let mut reordered = 0;
    for seed in 0..SEEDS {
        let fs = SimFs::with_block(seed, 128);
        let (engine, log) = open(&fs, None, 1 << 20, Durability::Fsync).unwrap();
        let mut model = Model::default();
        let rec = |shard: u32, data: Vec<u8>| NewRecord {
            shard,
            partition_key: "k".into(),
            data: Bytes::from(data),
        };
        rt.block_on(async {
            let a = log.append(vec![rec(0, b"synced".to_vec())], 1).unwrap();
            a.durable.await.unwrap();
            model.assigned.insert((0, 1), Bytes::from_static(b"synced"));
            model.durable.insert((0, 1), Bytes::from_static(b"synced"));
            // One cycle, two frames, written but never synced.
            log.set_durability(Durability::None);
            let c = log
                .append(vec![rec(1, vec![1; 100]), rec(2, vec![2; 100])], 2)
                .unwrap();
            c.durable.await.unwrap();
            model.assigned.insert((1, 1), Bytes::from(vec![1; 100]));
            model.assigned.insert((2, 1), Bytes::from(vec![2; 100]));
        });
        drop(log);
        drop(engine);
        fs.crash(CrashMode::Subset);
        let file = fs.open(&seg, riffle_fs::OpenMode::Existing).unwrap();
        let len = file.len().unwrap();
        let old_rule = segment::scan(&*file, len, false).unwrap();
        let later_without_earlier = old_rule.entries.iter().any(|e| e.corrupt);
        drop(file);
        let (engine, log) = open(&fs, None, 1 << 20, Durability::Fsync).unwrap();
        check(&mut model, &log, &engine.stats).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        if later_without_earlier {
            reordered += 1;
            // The surviving later frame is cut with its cycle: no record
            // of the cycle is readable.
            for shard in [1, 2] {
                let got = log.read(shard, 0, ALL).unwrap();
                assert_eq!(
                    got.records,
                    Vec::<StoredRecord>::new(),
                    "seed {seed}: shard {shard} shows a record of the cut cycle"
                );
            }
        }
    }
    eprintln!("{reordered} of {SEEDS} power losses kept a later frame without an earlier one");
    assert!(
        reordered >= 8,
        "only {reordered} of {SEEDS} seeds kept a later frame without an earlier one"
    );
}
