//! Where bytes come from and where they go: positional reads and writes.
//!
//! Every layer that turns a container into the next one (a VHDX into a virtual disk, a disk
//! into a partition, a partition into an NTFS file, a file into a hive) reads through
//! [`ReadAt`], a positional, shared-reference read (`pread`). Nothing holds a `&mut` to a
//! reader, so one source can serve several views and threads at once, and a counting wrapper
//! ([`Counting`]) can tell how many bytes a whole diagnosis touched.
//!
//! # Getting started
//!
//! 1. Open a file or block device with [`FileSource::open`], or wrap bytes in memory
//!    (`Vec<u8>` and `[u8]` implement [`ReadAt`]).
//! 2. Cut a range out of it with [`Slice`] (a partition of a disk, say).
//! 3. Read with [`ReadAt::read_exact_at`]; a read past the end is an
//!    [`std::io::ErrorKind::UnexpectedEof`] error, never a short read.
//! 4. Put a [`PageCache`] in front of a source read in many small pieces.
//!
//! ```
//! use guestwall_source::{ReadAt, Slice};
//! let disk = vec![7u8; 4096];
//! let part = Slice::new(&disk, 512, 1024).unwrap();
//! let mut b = [0u8; 4];
//! part.read_exact_at(0, &mut b).unwrap();
//! assert_eq!(b, [7; 4]);
//! assert!(part.read_exact_at(1022, &mut b).is_err());
//! ```

#![deny(missing_docs)]

use std::fmt;
use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Positional, shared-reference reads of a byte range of fixed size.
pub trait ReadAt: Send + Sync {
    /// Size in bytes.
    fn size(&self) -> u64;

    /// Fills `buf` with the bytes at `offset`. A range that does not lie wholly inside
    /// `0..size()` is an [`io::ErrorKind::UnexpectedEof`] error.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
}

/// Positional writes, for in-place repairs. Writes never change the size.
pub trait WriteAt: ReadAt {
    /// Writes `buf` at `offset`. A range outside `0..size()` is an error and writes nothing.
    fn write_all_at(&self, offset: u64, buf: &[u8]) -> io::Result<()>;

    /// Makes every completed write durable (fsync for a file or device).
    fn sync(&self) -> io::Result<()>;
}

/// The error of a read or write that does not fit in `0..size`.
pub fn out_of_range(offset: u64, len: usize, size: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("range {offset:#x}+{len:#x} lies past the end ({size:#x} bytes)"),
    )
}

/// `offset..offset+len` as `usize` bounds inside `0..size`, or the out-of-range error.
pub fn check_range(offset: u64, len: usize, size: u64) -> io::Result<(usize, usize)> {
    let end = offset
        .checked_add(len as u64)
        .filter(|&e| e <= size)
        .ok_or_else(|| out_of_range(offset, len, size))?;
    let start = usize::try_from(offset).map_err(|_| out_of_range(offset, len, size))?;
    let end = usize::try_from(end).map_err(|_| out_of_range(offset, len, size))?;
    Ok((start, end))
}

impl ReadAt for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let (s, e) = check_range(offset, buf.len(), self.len() as u64)?;
        buf.copy_from_slice(&self[s..e]);
        Ok(())
    }
}

impl ReadAt for Vec<u8> {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.as_slice().read_exact_at(offset, buf)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_exact_at(offset, buf)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for Box<T> {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_exact_at(offset, buf)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for Arc<T> {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_exact_at(offset, buf)
    }
}

impl<T: WriteAt + ?Sized> WriteAt for Arc<T> {
    fn write_all_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        (**self).write_all_at(offset, buf)
    }
    fn sync(&self) -> io::Result<()> {
        (**self).sync()
    }
}

impl<T: WriteAt + ?Sized> WriteAt for &T {
    fn write_all_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        (**self).write_all_at(offset, buf)
    }
    fn sync(&self) -> io::Result<()> {
        (**self).sync()
    }
}

/// A regular file or a block device, read (and optionally written) with `pread`/`pwrite`.
#[derive(Debug)]
pub struct FileSource {
    file: File,
    size: u64,
    path: PathBuf,
}

impl FileSource {
    /// Opens `path` read-only. The size of a block device is found by seeking to its end
    /// (its metadata says 0).
    pub fn open(path: impl AsRef<Path>) -> io::Result<FileSource> {
        let path = path.as_ref();
        FileSource::from_file(File::open(path)?, path)
    }

    /// Opens `path` for reading and writing (no create, no truncate).
    pub fn open_rw(path: impl AsRef<Path>) -> io::Result<FileSource> {
        let path = path.as_ref();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)?;
        FileSource::from_file(file, path)
    }

    /// Wraps an open file; `path` is kept for messages.
    pub fn from_file(mut file: File, path: &Path) -> io::Result<FileSource> {
        let meta = file.metadata()?;
        let size = if meta.is_file() {
            meta.len()
        } else {
            file.seek(SeekFrom::End(0))?
        };
        Ok(FileSource {
            file,
            size,
            path: path.to_path_buf(),
        })
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl ReadAt for FileSource {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.size)
        {
            return Err(out_of_range(offset, buf.len(), self.size));
        }
        FileExt::read_exact_at(&self.file, buf, offset)
    }
}

impl WriteAt for FileSource {
    fn write_all_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.size)
        {
            return Err(out_of_range(offset, buf.len(), self.size));
        }
        FileExt::write_all_at(&self.file, buf, offset)
    }
    fn sync(&self) -> io::Result<()> {
        self.file.sync_all()
    }
}

/// A window `offset..offset+len` of another source (a partition of a disk, for example).
#[derive(Debug, Clone)]
pub struct Slice<R> {
    inner: R,
    offset: u64,
    len: u64,
}

impl<R: ReadAt> Slice<R> {
    /// The window, or an error when it does not lie inside `inner`.
    pub fn new(inner: R, offset: u64, len: u64) -> io::Result<Slice<R>> {
        let size = inner.size();
        if offset.checked_add(len).is_none_or(|e| e > size) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("window {offset:#x}+{len:#x} lies past the end ({size:#x} bytes)"),
            ));
        }
        Ok(Slice { inner, offset, len })
    }

    /// Where the window starts in the inner source.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The inner source.
    pub fn inner(&self) -> &R {
        &self.inner
    }
}

impl<R: ReadAt> ReadAt for Slice<R> {
    fn size(&self) -> u64 {
        self.len
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.len)
        {
            return Err(out_of_range(offset, buf.len(), self.len));
        }
        self.inner.read_exact_at(self.offset + offset, buf)
    }
}

impl<R: WriteAt> WriteAt for Slice<R> {
    fn write_all_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.len)
        {
            return Err(out_of_range(offset, buf.len(), self.len));
        }
        self.inner.write_all_at(self.offset + offset, buf)
    }
    fn sync(&self) -> io::Result<()> {
        self.inner.sync()
    }
}

/// Counts the bytes read through it (for "bytes read from the image" figures).
#[derive(Debug)]
pub struct Counting<R> {
    inner: R,
    bytes: AtomicU64,
    reads: AtomicU64,
}

impl<R> Counting<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Counting<R> {
        Counting {
            inner,
            bytes: AtomicU64::new(0),
            reads: AtomicU64::new(0),
        }
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Read calls so far.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// The inner source.
    pub fn inner(&self) -> &R {
        &self.inner
    }
}

impl<R: ReadAt> ReadAt for Counting<R> {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.read_exact_at(offset, buf)
    }
}

/// A small read cache of fixed-size pages over any [`ReadAt`], with least-recently-used
/// eviction. Meant for readers that ask for many small, overlapping pieces (a hive reader
/// walking cells): each miss reads one whole page (the last page of the source may be
/// shorter), and at most `capacity` pages are kept.
#[derive(Debug)]
pub struct PageCache<R> {
    inner: R,
    page_size: usize,
    capacity: usize,
    state: std::sync::Mutex<CacheState>,
}

#[derive(Debug, Default)]
struct CacheState {
    /// page number -> (last use, bytes)
    pages: std::collections::HashMap<u64, (u64, Arc<[u8]>)>,
    /// last use -> page number, oldest first
    order: std::collections::BTreeMap<u64, u64>,
    tick: u64,
    hits: u64,
    misses: u64,
}

impl<R: ReadAt> PageCache<R> {
    /// A cache of `capacity` pages of `page_size` bytes (a power of two, 512..=1 MiB; other
    /// values are rounded up to one). `capacity` is at least 1.
    pub fn new(inner: R, page_size: usize, capacity: usize) -> PageCache<R> {
        let page_size = page_size.clamp(512, 1 << 20).next_power_of_two();
        PageCache {
            inner,
            page_size,
            capacity: capacity.max(1),
            state: std::sync::Mutex::new(CacheState::default()),
        }
    }

    /// 4 KiB pages, 256 of them (1 MiB).
    pub fn with_defaults(inner: R) -> PageCache<R> {
        PageCache::new(inner, 4096, 256)
    }

    /// (hits, misses) so far.
    pub fn stats(&self) -> (u64, u64) {
        let st = self.lock();
        (st.hits, st.misses)
    }

    /// The inner source.
    pub fn inner(&self) -> &R {
        &self.inner
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        // A panic while holding the lock leaves a consistent map (every update is a single
        // insert/remove pair), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn page(&self, n: u64) -> io::Result<Arc<[u8]>> {
        {
            let mut st = self.lock();
            st.tick += 1;
            let tick = st.tick;
            if let Some((used, data)) = st.pages.get_mut(&n) {
                let old = std::mem::replace(used, tick);
                let data = Arc::clone(data);
                st.order.remove(&old);
                st.order.insert(tick, n);
                st.hits += 1;
                return Ok(data);
            }
        }
        let size = self.inner.size();
        let start = n * self.page_size as u64;
        let len = (size.saturating_sub(start)).min(self.page_size as u64) as usize;
        let mut buf = vec![0u8; len];
        self.inner.read_exact_at(start, &mut buf)?;
        let data: Arc<[u8]> = buf.into();
        let mut st = self.lock();
        st.misses += 1;
        st.tick += 1;
        let tick = st.tick;
        if let Some((old, _)) = st.pages.insert(n, (tick, Arc::clone(&data))) {
            st.order.remove(&old);
        }
        st.order.insert(tick, n);
        while st.pages.len() > self.capacity {
            let Some((&oldest, &victim)) = st.order.iter().next() else {
                break;
            };
            st.order.remove(&oldest);
            st.pages.remove(&victim);
        }
        Ok(data)
    }
}

impl<R: ReadAt> ReadAt for PageCache<R> {
    fn size(&self) -> u64 {
        self.inner.size()
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let size = self.inner.size();
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > size)
        {
            return Err(out_of_range(offset, buf.len(), size));
        }
        let ps = self.page_size as u64;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let page = self.page(pos / ps)?;
            let in_page = (pos % ps) as usize;
            let n = (page.len().saturating_sub(in_page)).min(buf.len() - done);
            if n == 0 {
                return Err(out_of_range(offset, buf.len(), size));
            }
            buf[done..done + n].copy_from_slice(&page[in_page..in_page + n]);
            done += n;
        }
        Ok(())
    }
}

/// Where a byte source is, for messages and reports: a file, or a path inside a disk image.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// A file (or block device) on this machine.
    File(PathBuf),
    /// A file inside a disk image.
    InImage {
        /// The image file or block device.
        image: PathBuf,
        /// The partition number (1-based, as listed by `guestwall`), if the image has a
        /// partition table.
        partition: Option<u32>,
        /// The path inside the file system, `/`-separated.
        path: String,
    },
    /// Bytes in memory, with a description ("sample hive", "log replay copy").
    Memory(String),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(p) => write!(f, "{}", p.display()),
            Location::InImage {
                image,
                partition: Some(n),
                path,
            } => write!(f, "{}::partition {n}::{path}", image.display()),
            Location::InImage {
                image,
                partition: None,
                path,
            } => write!(f, "{}::{path}", image.display()),
            Location::Memory(what) => write!(f, "({what})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_and_bounds() {
        let disk: Vec<u8> = (0..=255u8).cycle().take(8192).collect();
        let s = Slice::new(&disk, 4096, 100).unwrap();
        let mut b = [0u8; 3];
        s.read_exact_at(1, &mut b).unwrap();
        assert_eq!(b, [1, 2, 3]);
        assert_eq!(
            s.read_exact_at(98, &mut b).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        assert!(s.read_exact_at(u64::MAX, &mut b).is_err());
        assert!(Slice::new(&disk, 8000, 200).is_err());
        assert!(Slice::new(&disk, u64::MAX, 2).is_err());
    }

    #[test]
    fn counting_counts() {
        let data = vec![1u8; 100];
        let c = Counting::new(&data);
        let mut b = [0u8; 10];
        c.read_exact_at(0, &mut b).unwrap();
        c.read_exact_at(50, &mut b).unwrap();
        assert_eq!(c.bytes_read(), 20);
        assert_eq!(c.reads(), 2);
    }

    #[test]
    fn file_source_reads_and_writes_in_bounds() {
        let dir = std::env::temp_dir().join(format!("gw-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f");
        std::fs::write(&p, [0u8; 16]).unwrap();
        let f = FileSource::open_rw(&p).unwrap();
        assert_eq!(f.size(), 16);
        f.write_all_at(4, &[9, 9]).unwrap();
        assert!(f.write_all_at(15, &[1, 1]).is_err());
        f.sync().unwrap();
        let mut b = [0u8; 3];
        f.read_exact_at(3, &mut b).unwrap();
        assert_eq!(b, [0, 9, 9]);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 16);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn page_cache_reads_whole_pages_and_evicts_oldest() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let counted = Counting::new(&data);
        let cache = PageCache::new(&counted, 4096, 2);
        let mut b = [0u8; 10];
        cache.read_exact_at(4090, &mut b).unwrap(); // spans pages 0 and 1
        assert_eq!(&b[..], &data[4090..4100]);
        assert_eq!(counted.bytes_read(), 8192);
        cache.read_exact_at(100, &mut b).unwrap(); // hit
        assert_eq!(counted.bytes_read(), 8192);
        cache.read_exact_at(9_990, &mut b).unwrap(); // page 2 (short), evicts page 1
        assert_eq!(&b[..], &data[9_990..10_000]);
        assert_eq!(counted.bytes_read(), 8192 + (10_000 - 8192));
        cache.read_exact_at(4096, &mut b).unwrap(); // page 1 again: a miss
        assert_eq!(counted.reads(), 4);
        cache.read_exact_at(0, &mut b).unwrap(); // page 0 was evicted by page 1: a miss
        assert_eq!(cache.stats(), (1, 5));
        assert!(cache.read_exact_at(9_995, &mut b).is_err());
        assert!(cache.read_exact_at(u64::MAX, &mut b).is_err());
    }

    #[test]
    fn locations_display() {
        let l = Location::InImage {
            image: "disk.vhdx".into(),
            partition: Some(2),
            path: "Windows/System32/config/SYSTEM".into(),
        };
        assert_eq!(
            l.to_string(),
            "disk.vhdx::partition 2::Windows/System32/config/SYSTEM"
        );
    }
}
