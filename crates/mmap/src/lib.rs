//! Read-only file mapping: the one place in guestwall that uses `unsafe`.
//!
//! Reading a 12 MB hive with `read` costs a fresh process 10 to 17 ms, almost all of it page
//! faults on newly allocated memory; mapping the file costs under 1 ms. Every other crate of the
//! workspace forbids `unsafe` and gets its bytes from here or from `std::fs::read`.
//!
//! # Safety argument
//!
//! [`memmap2::Mmap::map`] is `unsafe` because the mapped bytes may change, or vanish, if another
//! process writes to or truncates the file while it is mapped. guestwall maps hive files of an
//! offline Windows disk: nothing else is expected to write them, the mapping is read-only, and
//! every read through it is bounds-checked against the length taken at mapping time. Writes
//! never go through a mapping: edits are made on an owned copy, written to a new file and
//! renamed into place, so our own writes cannot change a mapping under a reader. The editor's
//! copy-on-write view ([`AnonBuf::copy_on_write`]) is a private mapping: its writes go to
//! private copies of the pages it changes. The remaining
//! risk, a third party truncating the file during a read, ends the process with SIGBUS rather
//! than reading garbage; ripgrep accepts the same trade-off for the same speed.

#![deny(unsafe_code)]

use std::fs::File;
use std::io;
use std::ops::Deref;
use std::path::Path;

/// A file's bytes: mapped read-only, or read into memory when mapping is not possible, or a
/// private working copy.
pub enum FileBytes {
    /// A read-only mapping.
    Mapped(memmap2::Mmap),
    /// An owned copy (empty files, or files that cannot be mapped).
    Owned(Vec<u8>),
    /// A private, modified copy (for example a hive after log replay).
    Anon(AnonBuf),
}

impl Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(m) => m,
            FileBytes::Owned(v) => v,
            FileBytes::Anon(a) => a,
        }
    }
}

/// A growable, zero-initialised byte buffer in a pre-faulted anonymous mapping. Copying a
/// 12 MB hive into it costs one `mmap` call that populates every page, instead of the ~3,000
/// page faults a fresh `Vec` of the same size takes. (No `unsafe`: anonymous mappings are
/// private to the process.)
pub struct AnonBuf {
    map: memmap2::MmapMut,
    len: usize,
}

impl AnonBuf {
    /// A buffer holding a copy of `src`, with room to grow to `capacity` bytes without moving.
    pub fn copy_of(src: &[u8], capacity: usize) -> io::Result<AnonBuf> {
        let cap = capacity.max(src.len()).max(1);
        // Transparent huge pages were tried and dropped: with `defrag=madvise` the kernel
        // compacts memory on the first fault, which cost up to 40 ms now and then.
        let mut map = memmap2::MmapOptions::new().len(cap).populate().map_anon()?;
        map[..src.len()].copy_from_slice(src);
        Ok(AnonBuf {
            map,
            len: src.len(),
        })
    }

    /// A zeroed buffer of `len` bytes whose pages are not touched: memory is taken only for the
    /// pages that are later written (a replay that keeps only what the logs write).
    pub fn zeroed(len: usize) -> io::Result<AnonBuf> {
        let map = memmap2::MmapOptions::new().len(len.max(1)).map_anon()?;
        Ok(AnonBuf { map, len })
    }

    /// A private, copy-on-write view of the first `len` bytes of the file at `path`: pages are
    /// read from the page cache when first touched, and copied only when first written, so an
    /// edit that changes a few pages of a 12 MB hive copies a few pages. Writes never reach the
    /// file. Growing past the file's size copies the whole buffer into an anonymous mapping
    /// (see [`AnonBuf::resize`]).
    pub fn copy_on_write(path: &Path, len: usize) -> io::Result<AnonBuf> {
        let file = File::open(path)?;
        if !file.metadata()?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        // SAFETY: as for `read` (see the module documentation): a file that nothing else is
        // expected to modify (the caller holds the hive's lock when it saves), every access
        // bounds-checked against the length. The mapping is private (MAP_PRIVATE): our writes
        // go to copies of the pages and never to the file.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::MmapOptions::new().map_copy(&file) }?;
        if map.len() < len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file is shorter than expected",
            ));
        }
        Ok(AnonBuf { map, len })
    }

    /// Sets the length; new bytes are zero. Grows the mapping (copying) past its capacity.
    pub fn resize(&mut self, len: usize) -> io::Result<()> {
        if len > self.map.len() {
            // A quarter more, and a megabyte at least: enough for the bins an edit appends.
            let cap = (len + (1 << 20)).max(self.map.len() + self.map.len() / 4);
            let mut bigger = AnonBuf::copy_of(&self.map[..self.len], cap)?;
            bigger.len = self.len;
            *self = bigger;
        }
        if len > self.len {
            self.map[self.len..len].fill(0);
        }
        self.len = len;
        Ok(())
    }
}

impl Deref for AnonBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map[..self.len]
    }
}

impl std::ops::DerefMut for AnonBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.map[..self.len]
    }
}

impl std::fmt::Debug for FileBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            FileBytes::Mapped(_) => "Mapped",
            FileBytes::Owned(_) => "Owned",
            FileBytes::Anon(_) => "Anon",
        };
        write!(f, "FileBytes::{kind}({} bytes)", self.len())
    }
}

/// Maps `path` read-only; falls back to reading it when it cannot be mapped (empty files,
/// pipes, some network file systems).
pub fn read(path: &Path) -> io::Result<FileBytes> {
    // Only regular files: opening a FIFO would wait for a writer, and reading a character
    // device (/dev/zero) would never end.
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file (it is {})", kind_of(&meta)),
        ));
    }
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    if len == 0 || !file.metadata()?.is_file() {
        return std::fs::read(path).map(FileBytes::Owned);
    }
    // SAFETY: see the module documentation: read-only mapping of a file that nothing else is
    // expected to modify; all accesses are bounds-checked slices of the mapping.
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::Mmap::map(&file) };
    match map {
        Ok(m) => Ok(FileBytes::Mapped(m)),
        Err(_) => std::fs::read(path).map(FileBytes::Owned),
    }
}

/// What kind of file `meta` describes, for messages.
pub fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}
