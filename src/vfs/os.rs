//! The real file system.
//!
//! The only file with `unsafe` in this module: mapping a file read-only, and on Linux
//! the `sync_file_range` call that starts writeback early, the `cachestat` call that
//! asks how much of a file's range is in the page cache, and the `preadv2` call that
//! reads only what is in it.

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

    #[cfg(target_os = "linux")]
    fn read_exact_cached_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<bool> {
        use std::os::fd::AsRawFd;
        let fd = self.0.as_raw_fd();
        debug_assert!(fd >= 0);
        while !buf.is_empty() {
            let Ok(at) = i64::try_from(offset) else {
                return Err(io::Error::from(io::ErrorKind::InvalidInput));
            };
            let iov = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            // SAFETY: `fd` is the open descriptor this `File` owns for the whole call;
            // `iov` names `buf`, which this call borrows mutably, and its length, so
            // the kernel writes only into `buf`.
            let n = unsafe { libc::preadv2(fd, &iov, 1, at, libc::RWF_NOWAIT) };
            match n {
                0 => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                n if n > 0 => {
                    let n = n as usize;
                    debug_assert!(n <= buf.len());
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                _ => {
                    let error = io::Error::last_os_error();
                    match error.raw_os_error() {
                        // Not all in the page cache, or a kernel without the flag.
                        Some(libc::EAGAIN | libc::EOPNOTSUPP | libc::ENOSYS) => {
                            return Ok(false);
                        }
                        Some(libc::EINTR) => {}
                        _ => return Err(error),
                    }
                }
            }
        }
        Ok(true)
    }

    #[cfg(target_os = "linux")]
    fn is_cached(&self, offset: u64, len: u64) -> io::Result<bool> {
        use std::os::fd::AsRawFd;
        /// `struct cachestat_range` of `<linux/mman.h>`.
        #[repr(C)]
        struct Range {
            off: u64,
            len: u64,
        }
        /// `struct cachestat` of `<linux/mman.h>`.
        #[repr(C)]
        #[derive(Default)]
        struct Stat {
            nr_cache: u64,
            nr_dirty: u64,
            nr_writeback: u64,
            nr_evicted: u64,
            nr_recently_evicted: u64,
        }
        /// The number of `cachestat` (Linux 6.5), the same on every architecture.
        const SYS_CACHESTAT: libc::c_long = 451;
        if len == 0 {
            return Ok(true);
        }
        let fd = self.0.as_raw_fd();
        debug_assert!(fd >= 0);
        let range = Range { off: offset, len };
        let mut stat = Stat::default();
        // SAFETY: `fd` is the open descriptor this `File` owns for the whole call;
        // `range` and `stat` are live values laid out as the kernel's structs, which
        // it reads and fills respectively, and nothing else.
        let rc = unsafe {
            libc::syscall(
                SYS_CACHESTAT,
                fd,
                &range as *const Range,
                &mut stat as *mut Stat,
                0u32,
            )
        };
        if rc == 0 {
            // Every page the range touches, a partial one at either end included.
            let n_pages = (offset + len).div_ceil(4096) - offset / 4096;
            return Ok(stat.nr_cache >= n_pages);
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            // A kernel before 6.5 cannot tell: take the range as cached.
            Some(libc::ENOSYS) => Ok(true),
            _ => Err(error),
        }
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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn pages_just_written_are_cached() {
        let dir = tempfile::tempdir().unwrap();
        let file = OsVfs.create_new(&dir.path().join("f")).unwrap();
        file.write_all_at(&vec![7u8; 64 << 10], 0).unwrap();
        assert!(file.is_cached(0, 64 << 10).unwrap());
        assert!(file.is_cached(4096, 100).unwrap());
    }

    #[test]
    fn a_cached_read_reads_what_the_page_cache_holds_and_stops_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let file = OsVfs.create_new(&dir.path().join("f")).unwrap();
        let bytes: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        file.write_all_at(&bytes, 0).unwrap();
        let mut buf = vec![0u8; 3000];
        assert!(file.read_exact_cached_at(&mut buf, 5000).unwrap());
        assert_eq!(buf, bytes[5000..8000]);
        let past_the_end = file.read_exact_cached_at(&mut buf, 9000);
        assert_eq!(
            past_the_end.unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}
