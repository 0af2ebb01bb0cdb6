//! The real file system.
//!
//! The only file with `unsafe` in this module: mapping a file read-only, and on Linux
//! the `sync_file_range` call that starts writeback early.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::Path;

use super::{DirLock, ReadView, Vfs, VfsFile};

/// The operating system's file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsVfs;

#[derive(Debug)]
struct OsFile(File);

#[derive(Debug)]
struct OsDirLock(#[allow(dead_code)] File);

impl DirLock for OsDirLock {}

impl Vfs for OsVfs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        Ok(Box::new(OsFile(file)))
    }

    fn open_rw(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Box::new(OsFile(file)))
    }

    fn open_ro(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let file = OpenOptions::new().read(true).open(path)?;
        Ok(Box::new(OsFile(file)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn lock_dir(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        // The lock is taken on a file inside the directory: flock on the directory
        // itself works on Linux but not everywhere, and a file can carry the mode 0600.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path.join(crate::segment::LOCK_FILE_NAME))?;
        // A lock that is busy is tried again for a moment before the store is reported
        // as locked: a flock belongs to the open file description, so a child that the
        // last owner's process forked but has not yet exec'ed holds it for that instant
        // after the owner closed (see docs/ARCHITECTURE.md, Locking).
        let deadline = std::time::Instant::now() + LOCK_BUSY_RETRY;
        loop {
            match fs4::FileExt::try_lock(&file) {
                Ok(()) => return Ok(Box::new(OsDirLock(file))),
                Err(fs4::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                Err(fs4::TryLockError::WouldBlock) => {
                    return Err(io::Error::from(io::ErrorKind::WouldBlock));
                }
                Err(fs4::TryLockError::Error(e)) => return Err(e),
            }
        }
    }
}

/// How long a busy store lock is retried before open reports the store as locked.
const LOCK_BUSY_RETRY: std::time::Duration = std::time::Duration::from_millis(250);

impl VfsFile for OsFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        fs4::FileExt::allocate(&self.0, len)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }

    #[cfg(target_os = "linux")]
    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        };
        let fd = self.0.as_raw_fd();
        debug_assert!(fd >= 0);
        // SAFETY: `fd` is the open descriptor this `File` owns for the whole call, and
        // `sync_file_range` reads no memory of ours: it only queues writeback of the
        // file's dirty pages in the range.
        let rc = unsafe { libc::sync_file_range(fd, offset, len, libc::SYNC_FILE_RANGE_WRITE) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn map_readonly(&self) -> io::Result<ReadView> {
        let len = self.len()?;
        if len == 0 {
            // Mapping an empty file fails on Linux; there is nothing to read anyway.
            return Ok(ReadView::Owned(Vec::new()));
        }
        debug_assert!(len <= usize::MAX as u64);
        // SAFETY: the map is read-only and the engine never writes or truncates a file
        // below bytes that a live view may read: sealed segments are immutable until
        // removed, readers of the active segment read only below its durable end, which
        // truncation at seal never crosses, and a published index checkpoint (whose
        // view a loaded index keeps) is only ever replaced by rename. Another process
        // could still truncate the file; the store directory is locked and 0700 against
        // that.
        let map = unsafe { memmap2::MmapOptions::new().len(len as usize).map(&self.0)? };
        Ok(ReadView::Mapped(map))
    }

    fn map_live(&self) -> io::Result<Option<ReadView>> {
        // The map is shared and the page cache is one: bytes written to the file after
        // the map was made show through it, up to the length it was made with.
        self.map_readonly().map(Some)
    }
}
