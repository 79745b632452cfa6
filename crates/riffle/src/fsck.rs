//! `riffle fsck` and `riffle repair`: offline checking and mending of a
//! stopped server's stream logs. The work is `riffle_log::disk::fsck`; this
//! takes the data directory's lock (so a running server, which holds it, is
//! never touched), names logs after their streams, prints and picks the
//! exit code.

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use riffle_fs::RealFs;
use riffle_log::disk::fsck::{self, Attribution, IndexState, LogReport, RepairOptions};

use crate::cli::{FsckArgs, RepairArgs};

/// The data directory's lock file: `riffle serve` holds an exclusive lock
/// on it while it runs (and writes its pid in it).
pub const LOCK_FILE: &str = "riffle.lock";

/// Takes the data directory's lock for `riffle serve`: fails when another
/// process holds it.
pub fn lock_for_serving(data_dir: &Path) -> anyhow::Result<File> {
    let path = data_dir.join(LOCK_FILE);
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match f.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => bail!(
            "another riffle process is using {}{}",
            data_dir.display(),
            holder(&path)
        ),
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
    f.set_len(0)?;
    f.rewind()?;
    writeln!(f, "{}", std::process::id())?;
    Ok(f)
}

fn holder(path: &Path) -> String {
    let mut s = String::new();
    let _ = File::open(path).and_then(|mut f| f.read_to_string(&mut s));
    match s.trim() {
        "" => String::new(),
        pid => format!(" (pid {pid})"),
    }
}

/// Takes the lock for offline work; refuses when a server holds it.
fn lock_offline(data_dir: &Path) -> anyhow::Result<Option<File>> {
    if !data_dir.join("streams").is_dir() {
        bail!(
            "{} holds no stream logs (no streams/ directory)",
            data_dir.display()
        );
    }
    let path = data_dir.join(LOCK_FILE);
    let f = match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
    {
        Ok(f) => f,
        // A read-only copy: a server cannot be running on it either.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => match File::open(&path) {
            Ok(f) => f,
            Err(_) => return Ok(None),
        },
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    match f.try_lock() {
        Ok(()) => Ok(Some(f)),
        Err(TryLockError::WouldBlock) => bail!(
            "a riffle server is running on {}{}: stop it first (this command works on a stopped server's data only)",
            data_dir.display(),
            holder(&path)
        ),
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// Stream names by log id, from the metadata store (empty when it cannot
/// be read: logs are then named by id only).
fn stream_names(data_dir: &Path) -> HashMap<u64, String> {
    let path = data_dir.join(riffle_meta::FILE_NAME);
    if !path.exists() {
        return HashMap::new();
    }
    let rows = riffle_meta::Store::open(&path)
        .map_err(anyhow::Error::from)
        .and_then(|store| Ok(store.namespace(riffle_streams::meta::NAMESPACE)?))
        .and_then(|ns| riffle_streams::meta::Meta::new(ns).map_err(|e| anyhow::anyhow!("{e}")))
        .and_then(|meta| Ok(meta.load_streams()?));
    match rows {
        Ok(rows) => rows
            .into_iter()
            .map(|r| (r.id, format!("{} ({})", r.name, r.region)))
            .collect(),
        Err(e) => {
            eprintln!("note: stream names unavailable ({e:#}); logs are named by id");
            HashMap::new()
        }
    }
}

fn logs(data_dir: &Path) -> anyhow::Result<Vec<(u64, PathBuf)>> {
    let root = data_dir.join("streams");
    fsck::list_logs(&RealFs, &root).with_context(|| format!("listing {}", root.display()))
}

fn title(names: &HashMap<u64, String>, id: u64) -> String {
    match names.get(&id) {
        Some(n) => format!("stream {n}, log {id:016x}"),
        None => format!("log {id:016x} (no stream row: deleted or unknown)"),
    }
}

/// Prints one log's report; returns whether it is clean.
fn print_report(names: &HashMap<u64, String>, id: u64, r: &LogReport) -> bool {
    let frames: u64 = r.segments.iter().map(|s| s.frames).sum();
    let records: u64 = r.segments.iter().map(|s| s.records).sum();
    let holes: u64 = r.segments.iter().map(|s| s.holes).sum();
    let clean = r.is_clean();
    println!(
        "{}: {} segment(s), {frames} frame(s) and {records} record(s) checked{}: {}",
        title(names, id),
        r.segments.len(),
        if holes > 0 {
            format!(", {holes} quarantined hole(s)")
        } else {
            String::new()
        },
        if clean { "clean" } else { "DAMAGED" }
    );
    for s in &r.segments {
        let seg = s.path.display();
        if s.incomplete {
            println!(
                "  {seg}: incomplete trailing segment (no complete header; recovery removes it)"
            );
            continue;
        }
        if s.header_damaged {
            println!("  {seg}: DAMAGED segment header: none of its {} bytes can be trusted (not repairable)", s.bytes);
            continue;
        }
        for d in &s.damaged {
            let what = match (d.lost, d.attribution) {
                (Some(l), a) => format!(
                    "shardId-{:012} offsets {}..={} ({} record(s), from the {})",
                    l.shard,
                    l.first_offset,
                    l.last_offset(),
                    l.count,
                    if a == Attribution::Index {
                        "index file"
                    } else {
                        "frame header"
                    }
                ),
                (None, _) => {
                    "shard and offsets unknown (the frame header is destroyed)".to_string()
                }
            };
            println!(
                "  {seg}: DAMAGED bytes {}..{} ({} bytes): {what}",
                d.start,
                d.end,
                d.end - d.start
            );
        }
        if let Some((a, b)) = s.torn_tail {
            println!(
                "  {seg}: torn tail, bytes {a}..{b}: unsynced writes recovery cuts (not damage)"
            );
        }
        let idx = s.path.with_extension("idx");
        match s.index {
            IndexState::Missing => println!("  {}: missing (repair rebuilds it)", idx.display()),
            IndexState::Damaged => {
                println!("  {}: damaged (repair rebuilds it)", idx.display())
            }
            IndexState::Mismatched => println!(
                "  {}: does not match its segment (repair rebuilds it)",
                idx.display()
            ),
            IndexState::Ok | IndexState::Active => {}
        }
    }
    if r.checkpoint_damaged {
        println!(
            "  {}: damaged (repair rewrites it)",
            r.dir.join("offsets").display()
        );
    }
    clean
}

/// `riffle fsck`: exits 0 clean, 1 damage found, 2 could not check.
pub fn run_fsck(args: FsckArgs) -> anyhow::Result<()> {
    let code = match fsck_all(&args.data_dir) {
        Ok(true) => 0,
        Ok(false) => {
            println!(
                "damage found: `riffle repair --data-dir {} --quarantine` moves damaged ranges to {} and rebuilds index files",
                args.data_dir.display(),
                args.data_dir.join("quarantine").display()
            );
            1
        }
        Err(e) => {
            eprintln!("riffle fsck: {e:#}");
            2
        }
    };
    std::process::exit(code)
}

fn fsck_all(data_dir: &Path) -> anyhow::Result<bool> {
    let _lock = lock_offline(data_dir)?;
    let names = stream_names(data_dir);
    let mut clean = true;
    let logs = logs(data_dir)?;
    for (id, dir) in &logs {
        let report =
            fsck::check_log(&RealFs, dir).with_context(|| format!("checking {}", dir.display()))?;
        clean &= print_report(&names, *id, &report);
    }
    println!(
        "{} log(s) checked: {}",
        logs.len(),
        if clean { "clean" } else { "DAMAGED" }
    );
    Ok(clean)
}

/// `riffle repair`: exits 0 when every log checks clean afterwards, 1 when
/// damage is left, 2 when it could not repair.
pub fn run_repair(args: RepairArgs) -> anyhow::Result<()> {
    let code = match repair_all(&args) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("riffle repair: {e:#}");
            2
        }
    };
    std::process::exit(code)
}

fn repair_all(args: &RepairArgs) -> anyhow::Result<bool> {
    let _lock = lock_offline(&args.data_dir)?;
    let names = stream_names(&args.data_dir);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let quarantine_root = args.data_dir.join("quarantine");
    let mut clean = true;
    for (id, dir) in logs(&args.data_dir)? {
        let opts = RepairOptions {
            quarantine: args
                .quarantine
                .then(|| quarantine_root.join(format!("{id:016x}"))),
            stream: names.get(&id).cloned(),
            now_ms,
        };
        let out = fsck::repair_log(&RealFs, &dir, &opts)
            .with_context(|| format!("repairing {}", dir.display()))?;
        if !out.actions.is_empty() || !out.left.is_empty() {
            println!("{}:", title(&names, id));
        }
        for a in &out.actions {
            println!("  repaired: {a}");
        }
        for l in &out.left {
            println!("  left: {l}");
        }
        let report = fsck::check_log(&RealFs, &dir)
            .with_context(|| format!("checking {}", dir.display()))?;
        clean &= report.is_clean();
    }
    println!(
        "{}",
        if clean {
            "every log checks clean"
        } else if args.quarantine {
            "damage is left (see above)"
        } else {
            "damage is left: `--quarantine` moves damaged ranges out of the logs"
        }
    );
    Ok(clean)
}
