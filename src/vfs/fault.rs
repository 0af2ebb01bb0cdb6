//! A storage layer that injects failures into another one.
//!
//! Tests use it to show that a full disk, a failing write or a failing sync is reported
//! as an error, poisons the log for writing, and leaves what was written intact.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::{DirLock, ReadView, Vfs, VfsFile};

/// What to break. Every field can be changed while the layer is in use.
#[derive(Debug, Default)]
pub struct FaultPlan {
    /// Bytes that `allocate` and writes past a file's end may still claim; further
    /// claims fail with `StorageFull`. `u64::MAX` means unlimited.
    pub space_left_bytes: AtomicU64,
    /// When set, every `write_all_at` fails with an I/O error.
    pub fail_writes: AtomicBool,
    /// When set, every `read_exact_at` fails with an I/O error (reads through a map
    /// are not the layer's to fail).
    pub fail_reads: AtomicBool,
    /// When set, `read_exact_cached_at` and `is_cached` find nothing in the page cache.
    pub uncached: AtomicBool,
    /// When set, every `sync_data`, `sync_all` and `sync_dir` fails with an I/O error.
    pub fail_syncs: AtomicBool,
    /// Called before every `write_all_at`, on the writing thread: tests use it to hold
    /// a writer at a chosen write.
    pub before_write: Mutex<Option<WriteHook>>,
}

/// A function of a file's path and a write's offset.
pub type WriteHookFn = dyn Fn(&Path, u64) + Send + Sync;

/// What [`FaultPlan::before_write`] calls: the file's path and the write's offset.
#[derive(Clone)]
pub struct WriteHook(pub Arc<WriteHookFn>);

impl std::fmt::Debug for WriteHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteHook")
    }
}

impl FaultPlan {
    /// A plan that breaks nothing yet.
    pub fn new() -> Arc<FaultPlan> {
        Arc::new(FaultPlan {
            space_left_bytes: AtomicU64::new(u64::MAX),
            ..FaultPlan::default()
        })
    }

    fn claim(&self, bytes: u64) -> io::Result<()> {
        let claimed =
            self.space_left_bytes
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                    if left == u64::MAX {
                        Some(left)
                    } else {
                        left.checked_sub(bytes)
                    }
                });
        claimed.map(drop).map_err(|_| {
            io::Error::new(
                io::ErrorKind::StorageFull,
                "no space left on device (injected)",
            )
        })
    }
}

/// A [`Vfs`] that fails as its [`FaultPlan`] says, and otherwise passes every call on.
#[derive(Debug)]
pub struct FaultyVfs<V> {
    inner: V,
    plan: Arc<FaultPlan>,
}

impl<V: Vfs> FaultyVfs<V> {
    /// Wraps `inner`, failing as `plan` says.
    pub fn new(inner: V, plan: Arc<FaultPlan>) -> FaultyVfs<V> {
        FaultyVfs { inner, plan }
    }
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("{what} failed (injected)"))
}

#[derive(Debug)]
struct FaultyFile {
    inner: Box<dyn VfsFile>,
    plan: Arc<FaultPlan>,
    path: PathBuf,
}

impl<V: Vfs> Vfs for FaultyVfs<V> {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.inner.list_dir(path)
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let inner = self.inner.create_new(path)?;
        Ok(Box::new(FaultyFile {
            inner,
            plan: self.plan.clone(),
            path: path.to_path_buf(),
        }))
    }

    fn open_rw(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let inner = self.inner.open_rw(path)?;
        Ok(Box::new(FaultyFile {
            inner,
            plan: self.plan.clone(),
            path: path.to_path_buf(),
        }))
    }

    fn open_ro(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let inner = self.inner.open_ro(path)?;
        Ok(Box::new(FaultyFile {
            inner,
            plan: self.plan.clone(),
            path: path.to_path_buf(),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        if self.plan.fail_syncs.load(Ordering::SeqCst) {
            return Err(injected("directory sync"));
        }
        self.inner.sync_dir(path)
    }

    fn lock_dir(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        self.inner.lock_dir(path)
    }
}

impl VfsFile for FaultyFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        if self.plan.fail_reads.load(Ordering::SeqCst) {
            return Err(io::Error::other("read failed (injected)"));
        }
        self.inner.read_exact_at(buf, offset)
    }

    fn read_exact_cached_at(&self, buf: &mut [u8], offset: u64) -> io::Result<bool> {
        if self.plan.fail_reads.load(Ordering::SeqCst) {
            return Err(io::Error::other("read failed (injected)"));
        }
        if self.plan.uncached.load(Ordering::SeqCst) {
            return Ok(false);
        }
        self.inner.read_exact_cached_at(buf, offset)
    }

    fn is_cached(&self, offset: u64, len: u64) -> io::Result<bool> {
        if self.plan.uncached.load(Ordering::SeqCst) {
            return Ok(false);
        }
        self.inner.is_cached(offset, len)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let hook = (self.plan.before_write.lock())
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(WriteHook(hook)) = hook {
            hook(&self.path, offset);
        }
        if self.plan.fail_writes.load(Ordering::SeqCst) {
            return Err(injected("write"));
        }
        let end = offset + buf.len() as u64;
        let len = self.inner.len()?;
        if end > len {
            self.plan.claim(end - len)?;
        }
        self.inner.write_all_at(buf, offset)
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        let current = self.inner.len()?;
        if len > current {
            self.plan.claim(len - current)?;
        }
        self.inner.allocate(len)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn sync_data(&self) -> io::Result<()> {
        if self.plan.fail_syncs.load(Ordering::SeqCst) {
            return Err(injected("sync"));
        }
        self.inner.sync_data()
    }

    fn sync_all(&self) -> io::Result<()> {
        if self.plan.fail_syncs.load(Ordering::SeqCst) {
            return Err(injected("sync"));
        }
        self.inner.sync_all()
    }

    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        self.inner.start_writeback(offset, len)
    }

    fn map_readonly(&self) -> io::Result<ReadView> {
        self.inner.map_readonly()
    }
}
