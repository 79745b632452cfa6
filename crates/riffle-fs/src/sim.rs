//! [`SimFs`]: an in-memory file system that can lose power.
//!
//! It keeps, for every file, the bytes a reader sees now and the bytes that
//! are durable, with the operations in between (writes, length changes)
//! still pending; for the namespace, the entries as they are now and as they
//! are durable, with the directory operations in between (creations,
//! renames, removals) still pending, in order.
//!
//! - A file's pending operations become durable with its `sync_data` or
//!   `sync_all` (both persist the data and the length).
//! - A directory's pending operations become durable with
//!   [`Fs::sync_dir`] of that directory; an entry is reachable after a crash
//!   only if every directory above it is. Syncing a file does not make its
//!   directory entry durable.
//!
//! A power loss ([`SimFs::crash`], or armed with [`SimFs::arm_crash`] to
//! strike inside the code under test) rebuilds the file system from what is
//! durable plus, depending on the [`CrashMode`], some of what was pending:
//! nothing; everything up to a tear inside each file's last pending write;
//! a random subset of each file's pending writes, block by block (a later
//! write may persist without an earlier one); or every data write but no
//! length change. Directory operations persist as a prefix of their order
//! (they are journaled metadata). After an armed power loss (or process
//! death, [`SimFs::arm_kill`]) every operation fails with `EIO` until
//! [`SimFs::reboot`]; files opened before any crash (or [`SimFs::kill`])
//! stay unusable.
//!
//! [`Faults`] make writes or syncs fail with `ENOSPC` or `EIO`: the nth
//! write or sync, or every write once a byte budget is spent. Every random
//! choice comes from the seed.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::{io_error, no_space, Fs, FsFile, OpenMode};

/// What a power loss keeps of the operations that were not yet synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Nothing: only synced state survives.
    DropAll,
    /// Each file keeps its pending operations in order up to a random point
    /// inside its last pending write (a torn write); directories keep a
    /// random prefix of their pending operations.
    Torn,
    /// Each file keeps a random subset of its pending writes, block by block,
    /// and of its length changes (the kernel may persist a later write but
    /// not an earlier one); directories keep a random prefix.
    Subset,
    /// Every pending data write survives, no pending length change does,
    /// and no directory operation (data written back, metadata not).
    DataWithoutMetadata,
}

impl CrashMode {
    pub const ALL: [CrashMode; 4] = [
        CrashMode::DropAll,
        CrashMode::Torn,
        CrashMode::Subset,
        CrashMode::DataWithoutMetadata,
    ];
}

/// An error a fault injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Errno {
    /// `ENOSPC`
    NoSpace,
    /// `EIO`
    Io,
}

impl Errno {
    fn err(self) -> io::Error {
        match self {
            Errno::NoSpace => no_space(),
            Errno::Io => io_error(),
        }
    }
}

/// Injected failures, counted from when they are set.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Writes fail with `ENOSPC` once this many more bytes have been
    /// written; the write that crosses the budget is written in part.
    pub space_left: Option<u64>,
    /// The nth write from now (1-based) fails, writing nothing.
    pub fail_write: Option<(u64, Errno)>,
    /// The nth sync (of a file or a directory) from now fails, syncing
    /// nothing.
    pub fail_sync: Option<(u64, Errno)>,
}

/// When an armed power loss strikes: instead of the nth operation that
/// changes state (or the nth sync) from now. Reads are not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Op(u64),
    Sync(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Dir,
    File(u64),
}

#[derive(Debug, Clone)]
enum DirOp {
    Link {
        parent: PathBuf,
        path: PathBuf,
        node: Node,
    },
    Unlink {
        parent: PathBuf,
        path: PathBuf,
    },
    Rename {
        parents: [PathBuf; 2],
        from: PathBuf,
        to: PathBuf,
        node: Node,
    },
}

impl DirOp {
    fn touches(&self, dir: &Path) -> bool {
        match self {
            DirOp::Link { parent, .. } | DirOp::Unlink { parent, .. } => parent == dir,
            DirOp::Rename { parents, .. } => parents.iter().any(|p| p == dir),
        }
    }

    fn apply(&self, ns: &mut BTreeMap<PathBuf, Node>) {
        match self {
            DirOp::Link { path, node, .. } => {
                ns.insert(path.clone(), *node);
            }
            DirOp::Unlink { path, .. } => remove_tree(ns, path),
            DirOp::Rename { from, to, node, .. } => {
                ns.remove(from);
                remove_tree(ns, to);
                ns.insert(to.clone(), *node);
            }
        }
    }
}

fn remove_tree(ns: &mut BTreeMap<PathBuf, Node>, path: &Path) {
    let doomed: Vec<PathBuf> = ns
        .range(path.to_path_buf()..)
        .take_while(|(p, _)| p.starts_with(path))
        .map(|(p, _)| p.clone())
        .collect();
    for p in doomed {
        ns.remove(&p);
    }
}

#[derive(Debug, Clone)]
enum FileOp {
    Write { pos: u64, bytes: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Default, Clone)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<FileOp>,
}

fn write_into(buf: &mut Vec<u8>, pos: u64, bytes: &[u8]) {
    let pos = pos as usize;
    let end = pos + bytes.len();
    if buf.len() < end {
        buf.resize(end, 0);
    }
    buf[pos..end].copy_from_slice(bytes);
}

/// splitmix64: small, fast, and deterministic; the simulator's choices and
/// the fault tests' schedules come from it, so a seed replays a run.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    /// One of the power-loss modes.
    pub fn mode(&mut self) -> CrashMode {
        CrashMode::ALL[self.below(CrashMode::ALL.len() as u64) as usize]
    }
}

/// Counters of what the file system has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    pub writes: u64,
    pub bytes_written: u64,
    pub syncs: u64,
    pub crashes: u64,
}

#[derive(Debug)]
struct State {
    rng: Rng,
    block: u64,
    generation: u64,
    down: bool,
    ns: BTreeMap<PathBuf, Node>,
    durable_ns: BTreeMap<PathBuf, Node>,
    dir_ops: Vec<DirOp>,
    inodes: HashMap<u64, Inode>,
    next_ino: u64,
    faults: Faults,
    fault_writes: u64,
    fault_syncs: u64,
    /// An armed power loss (`Some` mode) or process death (`None`).
    armed: Option<(Trigger, Option<CrashMode>)>,
    armed_ops: u64,
    armed_syncs: u64,
    stats: SimStats,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Write,
    Sync,
    Meta,
}

impl State {
    /// Admits one state-changing operation: fails when the power is off,
    /// strikes an armed power loss, counts.
    fn begin(&mut self, kind: Kind) -> io::Result<()> {
        if self.down {
            return Err(io_error());
        }
        self.armed_ops += 1;
        if kind == Kind::Sync {
            self.armed_syncs += 1;
        }
        if let Some((trigger, mode)) = self.armed {
            let hit = match trigger {
                Trigger::Op(n) => self.armed_ops >= n,
                Trigger::Sync(n) => kind == Kind::Sync && self.armed_syncs >= n,
            };
            if hit {
                self.armed = None;
                match mode {
                    Some(mode) => self.power_cut(mode),
                    None => {
                        self.generation += 1;
                        self.down = true;
                    }
                }
                return Err(io_error());
            }
        }
        match kind {
            Kind::Write => {
                self.fault_writes += 1;
                if let Some((n, e)) = self.faults.fail_write {
                    if self.fault_writes == n {
                        return Err(e.err());
                    }
                }
            }
            Kind::Sync => {
                self.fault_syncs += 1;
                self.stats.syncs += 1;
                if let Some((n, e)) = self.faults.fail_sync {
                    if self.fault_syncs == n {
                        return Err(e.err());
                    }
                }
            }
            Kind::Meta => {}
        }
        Ok(())
    }

    fn check(&self, generation: u64) -> io::Result<()> {
        if self.down || generation != self.generation {
            return Err(io_error());
        }
        Ok(())
    }

    fn inode(&mut self, ino: u64) -> io::Result<&mut Inode> {
        self.inodes.get_mut(&ino).ok_or_else(io_error)
    }

    fn parent_dir(&self, path: &Path) -> io::Result<PathBuf> {
        let parent = path.parent().map(Path::to_path_buf).unwrap_or_default();
        match self.ns.get(&parent) {
            Some(Node::Dir) => Ok(parent),
            Some(Node::File(_)) => Err(io::Error::other("not a directory")),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }

    /// The file system as the power loss leaves it.
    fn power_cut(&mut self, mode: CrashMode) {
        let mut ns = self.durable_ns.clone();
        let keep = match mode {
            CrashMode::DropAll | CrashMode::DataWithoutMetadata => 0,
            CrashMode::Torn | CrashMode::Subset => {
                self.rng.below(self.dir_ops.len() as u64 + 1) as usize
            }
        };
        for op in &self.dir_ops[..keep] {
            op.apply(&mut ns);
        }
        // Entries under a directory that did not survive are gone too.
        let orphans: Vec<PathBuf> = ns
            .keys()
            .filter(|p| p.ancestors().skip(1).any(|a| ns.get(a) != Some(&Node::Dir)))
            .cloned()
            .collect();
        for p in orphans {
            ns.remove(&p);
        }
        let mut inodes = HashMap::new();
        let mut files: Vec<u64> = ns
            .values()
            .filter_map(|n| match n {
                Node::File(ino) => Some(*ino),
                Node::Dir => None,
            })
            .collect();
        files.sort_unstable();
        for ino in files {
            let Some(old) = self.inodes.get(&ino) else {
                continue;
            };
            let img = image(&mut self.rng, self.block, old, mode);
            inodes.insert(
                ino,
                Inode {
                    data: img.clone(),
                    durable: img,
                    pending: Vec::new(),
                },
            );
        }
        self.ns = ns.clone();
        self.durable_ns = ns;
        self.dir_ops.clear();
        self.inodes = inodes;
        self.generation += 1;
        self.down = true;
        self.stats.crashes += 1;
    }
}

/// What survives of one file.
fn image(rng: &mut Rng, block: u64, f: &Inode, mode: CrashMode) -> Vec<u8> {
    let mut img = f.durable.clone();
    match mode {
        CrashMode::DropAll => {}
        CrashMode::Torn => {
            let last = f
                .pending
                .iter()
                .rposition(|op| matches!(op, FileOp::Write { .. }));
            if let Some(k) = last {
                for op in &f.pending[..k] {
                    apply(&mut img, op);
                }
                if let FileOp::Write { pos, bytes } = &f.pending[k] {
                    let n = rng.below(bytes.len() as u64) as usize;
                    write_into(&mut img, *pos, &bytes[..n]);
                }
            }
        }
        CrashMode::Subset => {
            for op in &f.pending {
                match op {
                    FileOp::Write { pos, bytes } => {
                        let mut at = *pos;
                        let end = pos + bytes.len() as u64;
                        while at < end {
                            let next = ((at / block) + 1) * block;
                            let next = next.min(end);
                            if rng.coin() {
                                let s = (at - pos) as usize;
                                let e = (next - pos) as usize;
                                write_into(&mut img, at, &bytes[s..e]);
                            }
                            at = next;
                        }
                    }
                    FileOp::SetLen(_) => {
                        if rng.coin() {
                            apply(&mut img, op);
                        }
                    }
                }
            }
        }
        CrashMode::DataWithoutMetadata => {
            for op in &f.pending {
                if let FileOp::Write { .. } = op {
                    apply(&mut img, op);
                }
            }
        }
    }
    img
}

fn apply(img: &mut Vec<u8>, op: &FileOp) {
    match op {
        FileOp::Write { pos, bytes } => write_into(img, *pos, bytes),
        FileOp::SetLen(n) => img.resize(*n as usize, 0),
    }
}

/// Makes paths absolute and drops `.` components, so one file has one key.
fn norm(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(s) => out.push(s),
        }
    }
    out
}

/// The simulated file system. Cheap to share: clones see the same files.
#[derive(Clone)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for SimFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFs").finish_non_exhaustive()
    }
}

impl SimFs {
    /// An empty file system (only `/`), its random choices drawn from
    /// `seed`, torn and reordered in 512-byte blocks.
    pub fn new(seed: u64) -> SimFs {
        SimFs::with_block(seed, 512)
    }

    /// Like [`SimFs::new`] with another block size for [`CrashMode::Subset`].
    pub fn with_block(seed: u64, block: u64) -> SimFs {
        let mut ns = BTreeMap::new();
        ns.insert(PathBuf::from("/"), Node::Dir);
        SimFs {
            state: Arc::new(Mutex::new(State {
                rng: Rng(seed),
                block: block.max(1),
                generation: 0,
                down: false,
                durable_ns: ns.clone(),
                ns,
                dir_ops: Vec::new(),
                inodes: HashMap::new(),
                next_ino: 1,
                faults: Faults::default(),
                fault_writes: 0,
                fault_syncs: 0,
                armed: None,
                armed_ops: 0,
                armed_syncs: 0,
                stats: SimStats::default(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Loses power now and comes back up: only what `mode` keeps survives,
    /// and files opened before are unusable.
    pub fn crash(&self, mode: CrashMode) {
        let mut s = self.lock();
        s.armed = None;
        s.power_cut(mode);
        s.down = false;
    }

    /// Loses power when `trigger` is reached; from then on every operation
    /// fails with `EIO` until [`SimFs::reboot`].
    pub fn arm_crash(&self, trigger: Trigger, mode: CrashMode) {
        let mut s = self.lock();
        s.armed_ops = 0;
        s.armed_syncs = 0;
        s.armed = Some((trigger, Some(mode)));
    }

    /// Kills the process (see [`SimFs::kill`]) when `trigger` is reached:
    /// nothing is lost, but every operation fails with `EIO` until
    /// [`SimFs::reboot`] (the dead process can do nothing more).
    pub fn arm_kill(&self, trigger: Trigger) {
        let mut s = self.lock();
        s.armed_ops = 0;
        s.armed_syncs = 0;
        s.armed = Some((trigger, None));
    }

    /// Whether an armed power loss or kill has struck (and no reboot
    /// followed).
    pub fn is_down(&self) -> bool {
        self.lock().down
    }

    /// Powers back up after an armed power loss (disarming one that has not
    /// struck yet).
    pub fn reboot(&self) {
        let mut s = self.lock();
        s.armed = None;
        s.down = false;
    }

    /// A process death: nothing is lost, but files opened before are
    /// unusable (as their process is gone).
    pub fn kill(&self) {
        self.lock().generation += 1;
    }

    /// Replaces the injected faults (counting restarts from now).
    pub fn set_faults(&self, faults: Faults) {
        let mut s = self.lock();
        s.faults = faults;
        s.fault_writes = 0;
        s.fault_syncs = 0;
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.set_faults(Faults::default());
    }

    pub fn stats(&self) -> SimStats {
        self.lock().stats
    }

    /// Whether `path` has unsynced data or an unsynced directory entry.
    pub fn is_dirty(&self, path: &Path) -> bool {
        let path = norm(path);
        let s = self.lock();
        let entry = s.dir_ops.iter().any(|op| match op {
            DirOp::Link { path: p, .. } | DirOp::Unlink { path: p, .. } => *p == path,
            DirOp::Rename { from, to, .. } => *from == path || *to == path,
        });
        let data = match s.ns.get(&path) {
            Some(Node::File(ino)) => s.inodes.get(ino).is_some_and(|f| !f.pending.is_empty()),
            _ => false,
        };
        entry || data
    }
}

/// An open file of a [`SimFs`].
pub struct SimFile {
    state: Arc<Mutex<State>>,
    ino: u64,
    generation: u64,
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFile").field("ino", &self.ino).finish()
    }
}

impl SimFile {
    fn lock(&self) -> io::Result<MutexGuard<'_, State>> {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.check(self.generation)?;
        Ok(s)
    }
}

impl FsFile for SimFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        let mut s = self.lock()?;
        let f = s.inode(self.ino)?;
        let pos = pos as usize;
        if pos >= f.data.len() {
            return Ok(0);
        }
        let n = buf.len().min(f.data.len() - pos);
        buf[..n].copy_from_slice(&f.data[pos..pos + n]);
        Ok(n)
    }

    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        let mut s = self.lock()?;
        s.begin(Kind::Write)?;
        let (take, err) = match s.faults.space_left {
            Some(left) if (buf.len() as u64) > left => (left as usize, Some(no_space())),
            _ => (buf.len(), None),
        };
        if let Some(left) = s.faults.space_left.as_mut() {
            *left -= take as u64;
        }
        s.stats.writes += 1;
        s.stats.bytes_written += take as u64;
        let f = s.inode(self.ino)?;
        if take > 0 {
            write_into(&mut f.data, pos, &buf[..take]);
            f.pending.push(FileOp::Write {
                pos,
                bytes: buf[..take].to_vec(),
            });
        }
        err.map_or(Ok(()), Err)
    }

    fn len(&self) -> io::Result<u64> {
        let mut s = self.lock()?;
        Ok(s.inode(self.ino)?.data.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut s = self.lock()?;
        s.begin(Kind::Meta)?;
        let f = s.inode(self.ino)?;
        f.data.resize(len as usize, 0);
        f.pending.push(FileOp::SetLen(len));
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut s = self.lock()?;
        s.begin(Kind::Sync)?;
        let f = s.inode(self.ino)?;
        f.durable = f.data.clone();
        f.pending.clear();
        Ok(())
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync_data()
    }
}

impl Fs for SimFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FsFile>> {
        let path = norm(path);
        let mut s = self.lock();
        if s.down {
            return Err(io_error());
        }
        let ino = match (s.ns.get(&path).copied(), mode) {
            (Some(Node::Dir), _) => return Err(io::Error::other("is a directory")),
            (Some(Node::File(_)), OpenMode::CreateNew) => {
                return Err(io::ErrorKind::AlreadyExists.into())
            }
            (Some(Node::File(ino)), OpenMode::Truncate) => {
                s.begin(Kind::Meta)?;
                let f = s.inode(ino)?;
                if !f.data.is_empty() {
                    f.data.clear();
                    f.pending.push(FileOp::SetLen(0));
                }
                ino
            }
            (Some(Node::File(ino)), _) => ino,
            (None, OpenMode::Existing) => return Err(io::ErrorKind::NotFound.into()),
            (None, _) => {
                let parent = s.parent_dir(&path)?;
                s.begin(Kind::Meta)?;
                let ino = s.next_ino;
                s.next_ino += 1;
                s.inodes.insert(ino, Inode::default());
                s.ns.insert(path.clone(), Node::File(ino));
                s.dir_ops.push(DirOp::Link {
                    parent,
                    path,
                    node: Node::File(ino),
                });
                ino
            }
        };
        Ok(Arc::new(SimFile {
            state: self.state.clone(),
            ino,
            generation: s.generation,
        }))
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let path = norm(path);
        let mut s = self.lock();
        if s.down {
            return Err(io_error());
        }
        if s.ns.contains_key(&path) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        let parent = s.parent_dir(&path)?;
        s.begin(Kind::Meta)?;
        s.ns.insert(path.clone(), Node::Dir);
        s.dir_ops.push(DirOp::Link {
            parent,
            path,
            node: Node::Dir,
        });
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (from, to) = (norm(from), norm(to));
        let mut s = self.lock();
        if s.down {
            return Err(io_error());
        }
        let node = *s.ns.get(&from).ok_or(io::ErrorKind::NotFound)?;
        if node == Node::Dir {
            return Err(io::Error::other("renaming directories is not simulated"));
        }
        if s.ns.get(&to) == Some(&Node::Dir) {
            return Err(io::Error::other("is a directory"));
        }
        let parents = [s.parent_dir(&from)?, s.parent_dir(&to)?];
        s.begin(Kind::Meta)?;
        s.ns.remove(&from);
        s.ns.insert(to.clone(), node);
        s.dir_ops.push(DirOp::Rename {
            parents,
            from,
            to,
            node,
        });
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let path = norm(path);
        let mut s = self.lock();
        if s.down {
            return Err(io_error());
        }
        match s.ns.get(&path) {
            Some(Node::File(_)) => {}
            Some(Node::Dir) => return Err(io::Error::other("is a directory")),
            None => return Err(io::ErrorKind::NotFound.into()),
        }
        let parent = s.parent_dir(&path)?;
        s.begin(Kind::Meta)?;
        s.ns.remove(&path);
        s.dir_ops.push(DirOp::Unlink { parent, path });
        Ok(())
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let path = norm(path);
        let mut s = self.lock();
        if s.down {
            return Err(io_error());
        }
        match s.ns.get(&path) {
            Some(Node::Dir) => {}
            Some(Node::File(_)) => return Err(io::Error::other("not a directory")),
            None => return Err(io::ErrorKind::NotFound.into()),
        }
        let parent = s.parent_dir(&path)?;
        s.begin(Kind::Meta)?;
        remove_tree(&mut s.ns, &path);
        s.dir_ops.push(DirOp::Unlink { parent, path });
        Ok(())
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        let path = norm(path);
        let s = self.lock();
        if s.down {
            return Err(io_error());
        }
        match s.ns.get(&path) {
            Some(Node::Dir) => {}
            Some(Node::File(_)) => return Err(io::Error::other("not a directory")),
            None => return Err(io::ErrorKind::NotFound.into()),
        }
        Ok(s.ns
            .range(path.clone()..)
            .skip(1)
            .take_while(|(p, _)| p.starts_with(&path))
            .filter(|(p, _)| p.parent() == Some(path.as_path()))
            .filter_map(|(p, _)| p.file_name().map(|n| n.to_os_string()))
            .collect())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let path = norm(path);
        let mut s = self.lock();
        if s.down {
            return Err(io_error());
        }
        if s.ns.get(&path) != Some(&Node::Dir) {
            return Err(io::ErrorKind::NotFound.into());
        }
        s.begin(Kind::Sync)?;
        let ops = std::mem::take(&mut s.dir_ops);
        let (mine, rest): (Vec<DirOp>, Vec<DirOp>) =
            ops.into_iter().partition(|op| op.touches(&path));
        for op in &mine {
            op.apply(&mut s.durable_ns);
        }
        s.dir_ops = rest;
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        let s = self.lock();
        !s.down && s.ns.contains_key(&norm(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(fs: &SimFs, path: &str, bytes: &[u8]) -> Arc<dyn FsFile> {
        let f = fs.open(Path::new(path), OpenMode::Create).unwrap();
        let len = f.len().unwrap();
        f.write_all_at(bytes, len).unwrap();
        f
    }

    #[test]
    fn only_synced_data_and_entries_survive_dropall() {
        let fs = SimFs::new(1);
        fs.create_dir(Path::new("/d")).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        let f = write(&fs, "/d/a", b"hello");
        f.sync_data().unwrap();
        // The file's data is durable, its entry is not.
        fs.crash(CrashMode::DropAll);
        assert!(!fs.exists(Path::new("/d/a")));
        assert!(fs.exists(Path::new("/d")));
        let f = write(&fs, "/d/a", b"hello");
        f.sync_data().unwrap();
        fs.sync_dir(Path::new("/d")).unwrap();
        f.write_all_at(b" world", 5).unwrap();
        assert!(f.sync_data().is_ok());
        f.write_all_at(b"!", 11).unwrap();
        fs.crash(CrashMode::DropAll);
        assert!(f.len().is_err(), "old handles die with the power");
        assert_eq!(fs.read(Path::new("/d/a")).unwrap(), b"hello world");
    }

    #[test]
    fn a_directory_entry_needs_every_parent() {
        let fs = SimFs::new(1);
        fs.create_dir(Path::new("/d")).unwrap();
        let f = write(&fs, "/d/a", b"x");
        f.sync_all().unwrap();
        fs.sync_dir(Path::new("/d")).unwrap();
        fs.crash(CrashMode::DropAll);
        assert!(
            !fs.exists(Path::new("/d/a")),
            "/d itself was never synced in /"
        );
    }

    #[test]
    fn renames_and_removals_are_directory_operations() {
        let fs = SimFs::new(1);
        let f = write(&fs, "/t", b"new");
        f.sync_all().unwrap();
        let g = write(&fs, "/x", b"old");
        g.sync_all().unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        fs.rename(Path::new("/t"), Path::new("/x")).unwrap();
        fs.remove_file(Path::new("/x")).unwrap();
        fs.crash(CrashMode::DropAll);
        assert_eq!(fs.read(Path::new("/x")).unwrap(), b"old");
        assert_eq!(fs.read(Path::new("/t")).unwrap(), b"new");
        fs.rename(Path::new("/t"), Path::new("/x")).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        fs.crash(CrashMode::DropAll);
        assert_eq!(fs.read(Path::new("/x")).unwrap(), b"new");
        assert!(!fs.exists(Path::new("/t")));
    }

    #[test]
    fn torn_keeps_a_prefix_of_the_last_write() {
        for seed in 0..20 {
            let fs = SimFs::new(seed);
            let f = write(&fs, "/a", b"base");
            f.sync_all().unwrap();
            fs.sync_dir(Path::new("/")).unwrap();
            f.write_all_at(b"one", 4).unwrap();
            f.write_all_at(b"twotwo", 7).unwrap();
            fs.crash(CrashMode::Torn);
            let got = fs.read(Path::new("/a")).unwrap();
            assert!(got.starts_with(b"baseone"), "{got:?}");
            assert!(b"baseonetwotwo".starts_with(&got) && got.len() < 13);
        }
    }

    #[test]
    fn subset_can_keep_a_later_write_without_an_earlier_one() {
        let mut seen = (false, false);
        for seed in 0..64 {
            let fs = SimFs::with_block(seed, 4);
            let f = write(&fs, "/a", b"");
            f.sync_all().unwrap();
            fs.sync_dir(Path::new("/")).unwrap();
            f.write_all_at(b"AAAA", 0).unwrap();
            f.write_all_at(b"BBBB", 4).unwrap();
            fs.crash(CrashMode::Subset);
            let got = fs.read(Path::new("/a")).unwrap();
            match got.as_slice() {
                b"\0\0\0\0BBBB" => seen.0 = true,
                b"AAAABBBB" => seen.1 = true,
                b"" | b"AAAA" => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(seen, (true, true));
    }

    #[test]
    fn data_without_metadata_undoes_truncation() {
        let fs = SimFs::new(3);
        let f = write(&fs, "/a", b"0123456789");
        f.sync_all().unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        f.set_len(2).unwrap();
        f.write_all_at(b"ab", 2).unwrap();
        fs.crash(CrashMode::DataWithoutMetadata);
        assert_eq!(fs.read(Path::new("/a")).unwrap(), b"01ab456789");
    }

    #[test]
    fn armed_crash_strikes_and_stays_down() {
        let fs = SimFs::new(1);
        let f = write(&fs, "/a", b"x");
        f.sync_all().unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        fs.arm_crash(Trigger::Sync(1), CrashMode::DropAll);
        f.write_all_at(b"y", 1).unwrap();
        assert!(f.sync_data().is_err());
        assert!(fs.is_down());
        assert!(fs.open(Path::new("/a"), OpenMode::Existing).is_err());
        fs.reboot();
        assert_eq!(fs.read(Path::new("/a")).unwrap(), b"x");
    }

    #[test]
    fn faults_fail_writes_and_syncs() {
        let fs = SimFs::new(1);
        let f = write(&fs, "/a", b"");
        fs.set_faults(Faults {
            space_left: Some(5),
            ..Faults::default()
        });
        f.write_all_at(b"abc", 0).unwrap();
        let e = f.write_all_at(b"defg", 3).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(28));
        assert_eq!(fs.read(Path::new("/a")).unwrap(), b"abcde");
        fs.set_faults(Faults {
            fail_sync: Some((2, Errno::Io)),
            fail_write: Some((1, Errno::Io)),
            ..Faults::default()
        });
        assert_eq!(f.write_all_at(b"z", 0).unwrap_err().raw_os_error(), Some(5));
        f.sync_data().unwrap();
        assert_eq!(f.sync_data().unwrap_err().raw_os_error(), Some(5));
        f.sync_data().unwrap();
        fs.clear_faults();
        f.write_all_at(b"more", 5).unwrap();
    }

    #[test]
    fn read_dir_lists_children_only() {
        let fs = SimFs::new(1);
        fs.create_dir(Path::new("/d")).unwrap();
        fs.create_dir(Path::new("/d/e")).unwrap();
        write(&fs, "/d/a", b"");
        write(&fs, "/d/e/b", b"");
        write(&fs, "/d2", b"");
        let mut names = fs.read_dir(Path::new("/d")).unwrap();
        names.sort();
        assert_eq!(names, vec![OsString::from("a"), OsString::from("e")]);
        fs.remove_dir_all(Path::new("/d")).unwrap();
        assert!(!fs.exists(Path::new("/d/e/b")));
        assert!(fs.exists(Path::new("/d2")));
    }
}
