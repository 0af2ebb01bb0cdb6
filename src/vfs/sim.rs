//! A simulated file system with power loss, for crash tests.
//!
//! Every file keeps two states: what a reader sees now (volatile) and what would survive
//! a power loss (durable). Writes, preallocations and truncations are volatile until the
//! file is synced; creations, renames and removals are volatile until their directory is
//! synced. [`SimVfs::crash`] returns the file system a reboot would find: each unsynced
//! operation is kept, dropped, torn (only a prefix of its bytes lands) or garbled (its
//! bytes land as garbage), as a seeded random choice decides, and unsynced directory
//! operations survive only as a prefix, in order (as an ordered-metadata file system
//! journals them).
//!
//! It can also fail the N-th mutating call with EIO or ENOSPC.
//!
//! # Invariants
//! - After `sync_data`/`sync_all` of a file, a crash keeps exactly its current bytes.
//! - After `sync_dir`, a crash keeps exactly the directory's current entries.
//! - Reads always see the volatile state, as a page cache would.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{DirLock, ReadView, Vfs, VfsFile};

/// What may happen to each unsynced write at a crash.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CrashMode {
    /// Every unsynced operation is lost.
    DropAll,
    /// Every unsynced operation lands intact.
    KeepAll,
    /// Each unsynced operation is kept, dropped, torn or garbled at random; of the
    /// unsynced directory operations a random prefix is kept.
    Mixed,
    /// As `Mixed`, but any subset of the unsynced directory operations is kept, in no
    /// particular order (a file system may write back directory changes out of order);
    /// a rename is kept or lost whole.
    MixedAnyOrder,
}

#[derive(Clone, Debug)]
enum FileOp {
    Write { offset: u64, bytes: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Default)]
struct Inode {
    volatile: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<FileOp>,
}

#[derive(Clone, Debug)]
enum DirOp {
    Link(PathBuf, usize),
    Unlink(PathBuf),
    /// Moves the name `from` to `to`, replacing what `to` named.
    Rename {
        from: PathBuf,
        to: PathBuf,
        inode: usize,
    },
}

#[derive(Debug, Default)]
struct State {
    inodes: Vec<Arc<Mutex<Inode>>>,
    /// What a reader sees now.
    names: BTreeMap<PathBuf, usize>,
    /// What survives a crash.
    durable_names: BTreeMap<PathBuf, usize>,
    pending_dir_ops: Vec<DirOp>,
    dirs: Vec<PathBuf>,
    locked: Vec<PathBuf>,
}

/// A simulated file system; clones share the same state.
#[derive(Clone, Debug, Default)]
pub struct SimVfs {
    state: Arc<Mutex<State>>,
    faults: Arc<SimFaults>,
}

/// Which mutating call fails, and how.
#[derive(Debug, Default)]
struct SimFaults {
    /// Mutating calls made so far.
    n_calls: AtomicU64,
    /// The call number (1-based) that fails; 0 for none.
    fail_at: AtomicU64,
    /// Fail with ENOSPC (1) or EIO (0).
    no_space: AtomicU64,
}

/// A deterministic random source for crash choices (splitmix64).
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn apply(content: &mut Vec<u8>, op: &FileOp) {
    match op {
        FileOp::Write { offset, bytes } => {
            let end = *offset as usize + bytes.len();
            if content.len() < end {
                content.resize(end, 0);
            }
            content[*offset as usize..end].copy_from_slice(bytes);
        }
        FileOp::SetLen(len) => content.resize(*len as usize, 0),
    }
}

impl SimVfs {
    /// An empty file system.
    pub fn new() -> SimVfs {
        SimVfs::default()
    }

    /// Makes the `n`-th mutating call from now (1-based) fail, with ENOSPC when
    /// `no_space`, else EIO. Only that one call fails.
    pub fn fail_call(&self, n: u64, no_space: bool) {
        let done = self.faults.n_calls.load(Ordering::SeqCst);
        self.faults
            .no_space
            .store(no_space as u64, Ordering::SeqCst);
        self.faults.fail_at.store(done + n, Ordering::SeqCst);
    }

    /// Mutating calls made so far.
    pub fn n_mutating_calls(&self) -> u64 {
        self.faults.n_calls.load(Ordering::SeqCst)
    }

    fn mutating_call(&self, what: &str) -> io::Result<()> {
        let n = self.faults.n_calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.faults.fail_at.load(Ordering::SeqCst) {
            return Err(if self.faults.no_space.load(Ordering::SeqCst) == 1 {
                io::Error::new(
                    io::ErrorKind::StorageFull,
                    format!("{what}: no space left on device (simulated)"),
                )
            } else {
                io::Error::other(format!("{what}: input/output error (simulated)"))
            });
        }
        Ok(())
    }

    /// The file system a reboot after a power loss now would find. Locks are released,
    /// everything in the result is durable, and no fault is armed in it.
    pub fn crash(&self, mode: CrashMode, seed: u64) -> SimVfs {
        let state = lock(&self.state);
        let mut rng = Rng(seed);
        let n_dir_ops = state.pending_dir_ops.len() as u64;
        let kept: Vec<bool> = match mode {
            CrashMode::DropAll => vec![false; n_dir_ops as usize],
            CrashMode::KeepAll => vec![true; n_dir_ops as usize],
            CrashMode::Mixed => {
                let n_kept = rng.below(n_dir_ops + 1);
                (0..n_dir_ops).map(|i| i < n_kept).collect()
            }
            CrashMode::MixedAnyOrder => (0..n_dir_ops).map(|_| rng.below(2) == 1).collect(),
        };
        let mut names = state.durable_names.clone();
        for (op, _) in state.pending_dir_ops.iter().zip(kept).filter(|(_, k)| *k) {
            match op {
                DirOp::Link(path, inode) => {
                    names.insert(path.clone(), *inode);
                }
                DirOp::Unlink(path) => {
                    names.remove(path);
                }
                DirOp::Rename { from, to, inode } => {
                    names.remove(from);
                    names.insert(to.clone(), *inode);
                }
            }
        }
        let mut inodes = Vec::with_capacity(state.inodes.len());
        for inode in &state.inodes {
            let inode = lock(inode);
            let mut content = inode.durable.clone();
            for op in &inode.pending {
                let choice = match mode {
                    CrashMode::DropAll => 1,
                    CrashMode::KeepAll => 0,
                    CrashMode::Mixed | CrashMode::MixedAnyOrder => rng.below(4),
                };
                match (choice, op) {
                    (0, op) => apply(&mut content, op),
                    (1, _) => {}
                    (2, FileOp::Write { offset, bytes }) => {
                        let kept = rng.below(bytes.len() as u64 + 1) as usize;
                        apply(
                            &mut content,
                            &FileOp::Write {
                                offset: *offset,
                                bytes: bytes[..kept].to_vec(),
                            },
                        );
                    }
                    (_, FileOp::Write { offset, bytes }) => {
                        let garbage = (0..bytes.len()).map(|_| rng.next() as u8).collect();
                        apply(
                            &mut content,
                            &FileOp::Write {
                                offset: *offset,
                                bytes: garbage,
                            },
                        );
                    }
                    (_, op @ FileOp::SetLen(_)) => apply(&mut content, op),
                }
            }
            inodes.push(Arc::new(Mutex::new(Inode {
                volatile: content.clone(),
                durable: content,
                pending: Vec::new(),
            })));
        }
        let after = State {
            inodes,
            durable_names: names.clone(),
            names,
            pending_dir_ops: Vec::new(),
            dirs: state.dirs.clone(),
            locked: Vec::new(),
        };
        SimVfs {
            state: Arc::new(Mutex::new(after)),
            faults: Arc::default(),
        }
    }

    /// The names of every file, as a reader sees them now.
    pub fn file_names(&self) -> Vec<PathBuf> {
        lock(&self.state).names.keys().cloned().collect()
    }

    /// The current bytes of a file, if it exists.
    pub fn read_file(&self, path: &Path) -> Option<Vec<u8>> {
        let state = lock(&self.state);
        let inode = *state.names.get(path)?;
        Some(lock(&state.inodes[inode]).volatile.clone())
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let state = lock(&self.state);
        let inode = *state
            .names
            .get(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok(Box::new(SimFile {
            inode: state.inodes[inode].clone(),
            vfs: self.clone(),
        }))
    }
}

#[derive(Debug)]
struct SimFile {
    inode: Arc<Mutex<Inode>>,
    vfs: SimVfs,
}

#[derive(Debug)]
struct SimLock {
    vfs: SimVfs,
    dir: PathBuf,
}

impl DirLock for SimLock {}

impl Drop for SimLock {
    fn drop(&mut self) {
        lock(&self.vfs.state).locked.retain(|d| d != &self.dir);
    }
}

impl Vfs for SimVfs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut state = lock(&self.state);
        if !state.dirs.iter().any(|d| d == path) {
            state.dirs.push(path.to_path_buf());
        }
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let state = lock(&self.state);
        if !state.dirs.iter().any(|d| d == path) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        Ok(state
            .names
            .keys()
            .filter(|p| p.parent() == Some(path))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect())
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        self.mutating_call("create")?;
        let mut state = lock(&self.state);
        if state.names.contains_key(path) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        let inode = Arc::new(Mutex::new(Inode::default()));
        state.inodes.push(inode.clone());
        let id = state.inodes.len() - 1;
        state.names.insert(path.to_path_buf(), id);
        state
            .pending_dir_ops
            .push(DirOp::Link(path.to_path_buf(), id));
        Ok(Box::new(SimFile {
            inode,
            vfs: self.clone(),
        }))
    }

    fn open_rw(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        self.open(path)
    }

    fn open_ro(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        self.open(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.mutating_call("rename")?;
        let mut state = lock(&self.state);
        let inode = state
            .names
            .remove(from)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        state.names.insert(to.to_path_buf(), inode);
        state.pending_dir_ops.push(DirOp::Rename {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            inode,
        });
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.mutating_call("remove")?;
        let mut state = lock(&self.state);
        state
            .names
            .remove(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        state
            .pending_dir_ops
            .push(DirOp::Unlink(path.to_path_buf()));
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.mutating_call("directory sync")?;
        let mut state = lock(&self.state);
        // One directory per store: syncing it makes every pending entry durable.
        debug_assert!(state.dirs.iter().any(|d| d == path));
        state.durable_names = state.names.clone();
        state.pending_dir_ops.clear();
        Ok(())
    }

    fn lock_dir(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        let mut state = lock(&self.state);
        if state.locked.iter().any(|d| d == path) {
            return Err(io::Error::from(io::ErrorKind::WouldBlock));
        }
        state.locked.push(path.to_path_buf());
        Ok(Box::new(SimLock {
            vfs: self.clone(),
            dir: path.to_path_buf(),
        }))
    }
}

impl VfsFile for SimFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let inode = lock(&self.inode);
        let bytes = inode
            .volatile
            .get(offset as usize..offset as usize + buf.len())
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(bytes);
        Ok(())
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.vfs.mutating_call("write")?;
        let mut inode = lock(&self.inode);
        let op = FileOp::Write {
            offset,
            bytes: buf.to_vec(),
        };
        apply(&mut inode.volatile, &op);
        inode.pending.push(op);
        Ok(())
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        self.vfs.mutating_call("allocate")?;
        let mut inode = lock(&self.inode);
        if (inode.volatile.len() as u64) < len {
            let op = FileOp::SetLen(len);
            apply(&mut inode.volatile, &op);
            inode.pending.push(op);
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.vfs.mutating_call("truncate")?;
        let mut inode = lock(&self.inode);
        let op = FileOp::SetLen(len);
        apply(&mut inode.volatile, &op);
        inode.pending.push(op);
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(lock(&self.inode).volatile.len() as u64)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.sync_all()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.vfs.mutating_call("sync")?;
        let mut inode = lock(&self.inode);
        inode.durable = inode.volatile.clone();
        inode.pending.clear();
        Ok(())
    }

    fn map_readonly(&self) -> io::Result<ReadView> {
        Ok(ReadView::Owned(lock(&self.inode).volatile.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synced_bytes_survive_and_unsynced_ones_follow_the_crash_mode() {
        let vfs = SimVfs::new();
        let dir = Path::new("/store");
        vfs.create_dir_all(dir).unwrap();
        let file = vfs.create_new(&dir.join("a")).unwrap();
        file.write_all_at(b"durable", 0).unwrap();
        file.sync_all().unwrap();
        vfs.sync_dir(dir).unwrap();
        file.write_all_at(b"VOLATILE", 7).unwrap();

        let dropped = vfs.crash(CrashMode::DropAll, 1);
        assert_eq!(dropped.read_file(&dir.join("a")).unwrap(), b"durable");
        let kept = vfs.crash(CrashMode::KeepAll, 1);
        assert_eq!(kept.read_file(&dir.join("a")).unwrap(), b"durableVOLATILE");
        for seed in 0..32 {
            let mixed = vfs
                .crash(CrashMode::Mixed, seed)
                .read_file(&dir.join("a"))
                .unwrap();
            assert_eq!(
                &mixed[..7],
                b"durable",
                "seed {seed}: synced bytes never change"
            );
        }
    }

    #[test]
    fn an_unsynced_creation_or_rename_may_vanish_a_synced_one_never() {
        let vfs = SimVfs::new();
        let dir = Path::new("/store");
        vfs.create_dir_all(dir).unwrap();
        vfs.create_new(&dir.join("tmp")).unwrap();
        vfs.rename(&dir.join("tmp"), &dir.join("final")).unwrap();
        assert!(vfs.crash(CrashMode::DropAll, 0).file_names().is_empty());
        vfs.sync_dir(dir).unwrap();
        assert_eq!(
            vfs.crash(CrashMode::DropAll, 0).file_names(),
            vec![dir.join("final")]
        );
    }

    #[test]
    fn an_out_of_order_crash_keeps_any_subset_of_directory_operations_renames_whole() {
        let vfs = SimVfs::new();
        let dir = Path::new("/store");
        vfs.create_dir_all(dir).unwrap();
        for name in ["a", "b"] {
            vfs.create_new(&dir.join(name)).unwrap();
        }
        vfs.sync_dir(dir).unwrap();
        vfs.rename(&dir.join("a"), &dir.join("a2")).unwrap();
        vfs.rename(&dir.join("b"), &dir.join("b2")).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let names = vfs.crash(CrashMode::MixedAnyOrder, seed).file_names();
            assert_eq!(names.len(), 2, "a rename is kept or lost whole: {names:?}");
            seen.insert(names);
        }
        // Including the second rename without the first, which a prefix never keeps.
        assert!(
            seen.contains(&vec![dir.join("a"), dir.join("b2")]),
            "{seen:?}"
        );
        assert_eq!(seen.len(), 4, "{seen:?}");
    }

    #[test]
    fn the_armed_call_fails_once() {
        let vfs = SimVfs::new();
        let dir = Path::new("/store");
        vfs.create_dir_all(dir).unwrap();
        let file = vfs.create_new(&dir.join("a")).unwrap();
        vfs.fail_call(2, true);
        file.write_all_at(b"1", 0).unwrap();
        let err = file.write_all_at(b"2", 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        file.write_all_at(b"3", 2).unwrap();
    }
}
