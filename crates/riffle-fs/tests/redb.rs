//! A redb database on the simulated file system survives power loss: what
//! was committed with `Durability::Immediate` is there after every crash
//! mode; a commit that was never synced may be lost, but the database
//! still opens.

use std::path::Path;

use redb::{Durability, ReadableDatabase, TableDefinition};
use riffle_fs::sim::{CrashMode, SimFs, Trigger};
use riffle_fs::{open_redb, Fs};

const T: TableDefinition<&str, &[u8]> = TableDefinition::new("streams");

fn put(db: &redb::Database, key: &str, value: &[u8], durability: Durability) {
    let mut tx = db.begin_write().unwrap();
    tx.set_durability(durability).unwrap();
    {
        let mut t = tx.open_table(T).unwrap();
        t.insert(key, value).unwrap();
    }
    tx.commit().unwrap();
}

fn get(db: &redb::Database, key: &str) -> Option<Vec<u8>> {
    let tx = db.begin_read().unwrap();
    let t = match tx.open_table(T) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return None,
        Err(e) => panic!("{e}"),
    };
    t.get(key).unwrap().map(|v| v.value().to_vec())
}

fn setup(fs: &SimFs) -> &'static Path {
    fs.create_dir(Path::new("/data")).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    Path::new("/data/meta.redb")
}

#[test]
fn committed_transactions_survive_every_crash_mode() {
    for seed in 0..24u64 {
        for mode in CrashMode::ALL {
            let fs = SimFs::with_block(seed, 4096);
            let path = setup(&fs);
            {
                let db = open_redb(&fs, path).unwrap();
                for i in 0..5u32 {
                    put(
                        &db,
                        &format!("k{i}"),
                        &vec![i as u8; 100 + 500 * i as usize],
                        Durability::Immediate,
                    );
                }
                // Overwrites, then a commit that is never synced.
                put(&db, "k0", b"second", Durability::Immediate);
                put(&db, "lazy", b"maybe", Durability::None);
                fs.crash(mode);
            }
            let db = open_redb(&fs, path)
                .unwrap_or_else(|e| panic!("seed {seed} {mode:?}: reopen failed: {e}"));
            assert_eq!(get(&db, "k0").as_deref(), Some(&b"second"[..]), "{mode:?}");
            for i in 1..5u32 {
                assert_eq!(
                    get(&db, &format!("k{i}")),
                    Some(vec![i as u8; 100 + 500 * i as usize]),
                    "seed {seed} {mode:?}"
                );
            }
            let lazy = get(&db, "lazy");
            assert!(lazy.is_none() || lazy.as_deref() == Some(&b"maybe"[..]));
            // The reopened database takes writes.
            put(&db, "after", b"yes", Durability::Immediate);
            drop(db);
            let db = open_redb(&fs, path).unwrap();
            assert_eq!(get(&db, "after").as_deref(), Some(&b"yes"[..]));
        }
    }
}

/// A commit cut short by the power (at each of its syncs in turn) leaves
/// either the old or the new value, never a database that will not open.
#[test]
fn a_commit_cut_short_leaves_the_old_or_the_new_state() {
    let mut lost_unsynced = false;
    for seed in 0..8u64 {
        for mode in CrashMode::ALL {
            for at in 1..4u64 {
                let fs = SimFs::with_block(seed, 4096);
                let path = setup(&fs);
                {
                    let db = open_redb(&fs, path).unwrap();
                    put(&db, "k", b"old", Durability::Immediate);
                    put(&db, "n", b"none", Durability::None);
                    fs.arm_crash(Trigger::Sync(at), mode);
                    let mut tx = db.begin_write().unwrap();
                    {
                        let mut t = tx.open_table(T).unwrap();
                        t.insert("k", &b"new"[..]).unwrap();
                    }
                    tx.set_durability(Durability::Immediate).unwrap();
                    let committed = tx.commit().is_ok();
                    if !fs.is_down() {
                        // The commit took fewer syncs than `at`.
                        assert!(committed);
                        fs.crash(mode);
                    }
                }
                fs.reboot();
                let db = open_redb(&fs, path)
                    .unwrap_or_else(|e| panic!("seed {seed} {mode:?} sync {at}: {e}"));
                let k = get(&db, "k");
                assert!(
                    k.as_deref() == Some(b"old") || k.as_deref() == Some(b"new"),
                    "seed {seed} {mode:?} sync {at}: {k:?}"
                );
                lost_unsynced |= get(&db, "n").is_none();
            }
        }
    }
    assert!(lost_unsynced, "a Durability::None commit can be lost");
}

#[test]
fn a_database_on_the_real_file_system_is_locked_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.redb");
    let db = open_redb(&riffle_fs::RealFs, &path).unwrap();
    put(&db, "k", b"v", Durability::Immediate);
    // As with redb's own file backend: one process (or handle) at a time.
    assert!(matches!(
        open_redb(&riffle_fs::RealFs, &path),
        Err(redb::DatabaseError::DatabaseAlreadyOpen)
    ));
    assert!(matches!(
        redb::Database::create(&path),
        Err(redb::DatabaseError::DatabaseAlreadyOpen)
    ));
    drop(db);
    // The file is an ordinary redb file: redb's own backend reads it.
    let db = redb::Database::create(&path).unwrap();
    assert_eq!(get(&db, "k").as_deref(), Some(&b"v"[..]));
    assert!(open_redb(&riffle_fs::RealFs, &path).is_err());
    drop(db);
    let db = open_redb(&riffle_fs::RealFs, &path).unwrap();
    assert_eq!(get(&db, "k").as_deref(), Some(&b"v"[..]));
}
