//! The storage layer: every file operation of the engine goes through [`Vfs`].
//!
//! Where it sits: below `segment` (and later the index checkpoint). [`OsVfs`] is the real
//! file system; [`FaultyVfs`] wraps another layer and injects failures (a full disk,
//! failing writes or syncs) so tests can show that errors are reported and nothing
//! written is damaged; [`SimVfs`] is an in-memory file system that simulates power loss
//! (unsynced writes kept, dropped, torn or garbled) for crash tests.
//!
//! # Invariants
//! - Files are created with mode 0600 and directories with 0700.
//! - A read-only view of a file (`map_readonly`) is never written through.

mod fault;
mod os;
mod sim;

pub use fault::{FaultPlan, FaultyVfs, WriteHook};
pub use os::OsVfs;
pub use sim::{CrashMode, SimVfs};

use std::fmt::Debug;
use std::io;
use std::ops::Deref;
use std::path::Path;

/// A file system, as the engine needs it.
pub trait Vfs: Send + Sync + Debug + 'static {
    /// Creates a directory and its parents (mode 0700).
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// The names of the entries of a directory.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Creates a new file for reading and writing (mode 0600); fails if it exists.
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn VfsFile>>;
    /// Opens an existing file for reading and writing.
    fn open_rw(&self, path: &Path) -> io::Result<Box<dyn VfsFile>>;
    /// Opens an existing file for reading only; writes through it fail.
    fn open_ro(&self, path: &Path) -> io::Result<Box<dyn VfsFile>>;
    /// Renames a file, replacing any file at `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Takes an exclusive lock on a directory, held until the guard is dropped. Fails
    /// with `WouldBlock` if any other handle holds it, in this process or another.
    fn lock_dir(&self, path: &Path) -> io::Result<Box<dyn DirLock>>;
}

/// An open file.
#[allow(
    clippy::len_without_is_empty,
    reason = "a file's length is not a collection's"
)]
pub trait VfsFile: Send + Sync + Debug {
    /// Fills `buf` from `offset`; an error if the file ends first.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Fills `buf` from `offset` if every byte of it is in the page cache, without
    /// waiting for the disk: `Ok(false)` when some of it is not (`buf` then holds
    /// nothing to rely on), so the caller can read it another way. A layer with no page
    /// cache of its own reads as `read_exact_at` does.
    fn read_exact_cached_at(&self, buf: &mut [u8], offset: u64) -> io::Result<bool> {
        self.read_exact_at(buf, offset).map(|()| true)
    }
    /// Whether every page of `len` bytes from `offset` is in the page cache, so that
    /// reading or faulting them in waits for no disk. A layer with no page cache of its
    /// own, or a kernel that cannot tell, says yes.
    fn is_cached(&self, _offset: u64, _len: u64) -> io::Result<bool> {
        Ok(true)
    }
    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Reserves `len` bytes of disk for the file so later writes below `len` cannot
    /// fail for lack of space; the file grows to `len` if shorter.
    fn allocate(&self, len: u64) -> io::Result<()>;
    /// Truncates or extends the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// The file's length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Makes written data durable (not necessarily metadata other than what is needed
    /// to read it back).
    fn sync_data(&self) -> io::Result<()>;
    /// Makes written data and all metadata durable.
    fn sync_all(&self) -> io::Result<()>;
    /// Asks the OS to start writing `len` bytes from `offset` to disk without waiting,
    /// so a later `sync_data` has less left to do. Only a hint: it makes nothing durable
    /// and a layer without it does nothing.
    fn start_writeback(&self, _offset: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }
    /// A read-only view of the whole file as it is now. The caller promises that the
    /// bytes it reads through the view are not truncated away while the view lives.
    fn map_readonly(&self) -> io::Result<ReadView>;
    /// A read-only view of the whole file as long as it is now that also shows what is
    /// written to the file later, below that length (a shared map of the page cache).
    /// `None` where the layer cannot give one; the caller then uses positioned reads.
    /// The caller promises what `map_readonly` asks, and reads only bytes it wrote.
    fn map_live(&self) -> io::Result<Option<ReadView>> {
        Ok(None)
    }
}

/// A held directory lock; dropping it releases the lock.
pub trait DirLock: Send + Sync + Debug {}

/// Creates the temporary file `tmp` for writing, replacing a leftover of an earlier,
/// interrupted attempt.
pub(crate) fn create_temporary(vfs: &dyn Vfs, tmp: &Path) -> crate::Result<Box<dyn VfsFile>> {
    use crate::Error;
    match vfs.create_new(tmp) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            vfs.remove_file(tmp)
                .map_err(|e| Error::io("remove stale temporary", tmp, e))?;
            vfs.create_new(tmp)
        }
        other => other,
    }
    .map_err(|e| Error::io("create", tmp, e))
}

/// Creates the file `path` so that it becomes visible only complete and durable:
/// `fill` writes it under the temporary name `tmp` (a stale leftover of that name is
/// replaced), the file is synced, renamed to `path`, and the directory synced. On any
/// failure the temporary is removed (best effort; open removes leftovers too).
/// Returns the open file.
pub(crate) fn publish_file(
    vfs: &dyn Vfs,
    dir: &Path,
    tmp: &Path,
    path: &Path,
    fill: impl FnOnce(&dyn VfsFile) -> crate::Result<()>,
) -> crate::Result<Box<dyn VfsFile>> {
    use crate::Error;
    let file = create_temporary(vfs, tmp)?;
    let published = fill(&*file)
        .and_then(|()| file.sync_all().map_err(|e| Error::io("sync", tmp, e)))
        .and_then(|()| {
            vfs.rename(tmp, path)
                .map_err(|e| Error::io("publish", path, e))
        })
        .and_then(|()| {
            vfs.sync_dir(dir)
                .map_err(|e| Error::io("sync store directory", dir, e))
        });
    match published {
        Ok(()) => Ok(file),
        Err(error) => {
            let _ = vfs.remove_file(tmp);
            Err(error)
        }
    }
}

/// Read-only bytes of a file: a memory map, or a copy where mapping is not possible.
#[derive(Debug)]
pub enum ReadView {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl ReadView {
    /// Maps every page of the view into the process now (`MADV_POPULATE_READ`), so a
    /// later first read of a page costs no page fault. Only a hint: a kernel without it
    /// (before Linux 5.14) or another platform does nothing, and the error says why.
    pub fn prefault(&self) -> std::io::Result<()> {
        self.prefault_range(0..self.len())
    }

    /// Maps the pages of `bytes` into the process now, as `prefault` does for all.
    pub fn prefault_range(&self, bytes: std::ops::Range<usize>) -> std::io::Result<()> {
        debug_assert!(bytes.start <= bytes.end && bytes.end <= self.len());
        match self {
            #[cfg(target_os = "linux")]
            ReadView::Mapped(map) => {
                map.advise_range(memmap2::Advice::PopulateRead, bytes.start, bytes.len())
            }
            #[cfg(not(target_os = "linux"))]
            ReadView::Mapped(_) => Err(std::io::Error::from(std::io::ErrorKind::Unsupported)),
            ReadView::Owned(_) => Ok(()),
        }
    }
}

impl Deref for ReadView {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            ReadView::Mapped(map) => map,
            ReadView::Owned(bytes) => bytes,
        }
    }
}
