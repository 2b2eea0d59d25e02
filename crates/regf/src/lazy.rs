//! Reading a hive lazily: only the bins a walk touches, through a positional reader.
//!
//! A hive inside a disk image is read through the container's block map and the file
//! system's data runs. A SOFTWARE hive is often 60–150 MB, and a diagnosis needs a few
//! hundred of its cells, so reading it whole would dominate the run. [`LazyBins`] keeps the
//! base block only and reads a bin the first time a cell in it is asked for.
//!
//! Finding the bin that holds a cell offset without the map that a full scan builds: bins
//! start on 4096-byte pages, and each header names its own offset and size. The reader looks
//! at the header of the offset's page, then of the pages before it, one by one, until a
//! header that names that page as its own turns up (at most [`MAX_PROBE_PAGES`] pages: a bin
//! larger than that is refused). The header is checked as the full scan checks it, the bin
//! must hold the offset and must not overlap a bin already read, and the whole bin is then
//! read once and kept. Cells are checked inside their bin exactly as in a hive read whole.
//!
//! What is given up: a damaged bin that no walk reaches is not seen (a whole-file read
//! refuses the hive when any bin header is bad). A data page that happens to look like the
//! header of its own page (`hbin` followed by its own offset), inside a bin larger than one
//! page, is taken for a bin; a hive read whole treats it as data. Neither happens in a hive
//! Windows wrote; both give wrong values at worst, never a panic or an unbounded read.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use guestwall_source::{Location, ReadAt};

use crate::base_block::BASE_BLOCK_LEN;
use crate::bins::{bin_header, cell_in_bin, check_reference, Bin, HBIN_HEADER_LEN, PAGE};
use crate::error::{Error, Result};

/// How many pages before a cell's page are searched for its bin's header (64 MiB).
pub const MAX_PROBE_PAGES: u32 = 16_384;

/// The bins of a hive, read on first use.
pub(crate) struct LazyBins {
    reader: Box<dyn ReadAt>,
    location: Location,
    hbins_size: u32,
    /// For each page of the hive bins data: the bytes of the bin that starts on it, once read.
    slots: Vec<OnceLock<Box<[u8]>>>,
    /// The bins read so far: start → size.
    known: Mutex<BTreeMap<u32, u32>>,
}

impl std::fmt::Debug for LazyBins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyBins")
            .field("location", &self.location)
            .field("hbins_size", &self.hbins_size)
            .finish_non_exhaustive()
    }
}

impl LazyBins {
    /// Bins of `hbins_size` bytes after the base block of the file `reader` reads. The caller
    /// has checked that the reader holds that many bytes.
    pub(crate) fn new(reader: Box<dyn ReadAt>, location: Location, hbins_size: u32) -> LazyBins {
        let pages = (hbins_size / PAGE) as usize;
        LazyBins {
            reader,
            location,
            hbins_size,
            slots: std::iter::repeat_with(OnceLock::new).take(pages).collect(),
            known: Mutex::new(BTreeMap::new()),
        }
    }

    /// How many bins and bytes of bins have been read.
    pub(crate) fn read_so_far(&self) -> (usize, u64) {
        self.known.lock().map_or((0, 0), |k| {
            (k.len(), k.values().map(|&s| u64::from(s)).sum())
        })
    }

    fn read(&self, at: u32, buf: &mut [u8]) -> Result<()> {
        self.reader
            .read_exact_at(BASE_BLOCK_LEN as u64 + u64::from(at), buf)
            .map_err(|source| Error::Io {
                path: self.location.clone(),
                source,
            })
    }

    /// The bytes of the bin that starts at `start`, when it has been read.
    fn slot(&self, start: u32) -> Option<&[u8]> {
        self.slots
            .get((start / PAGE) as usize)
            .and_then(OnceLock::get)
            .map(|b| &b[..])
    }

    /// The bin holding `offset` and its bytes (header included), read if need be.
    fn bin_of(&self, offset: u32) -> Result<(Bin, &[u8])> {
        let outside = || Error::cell(offset, "offset lies outside the hive bins data");
        if offset >= self.hbins_size {
            return Err(outside());
        }
        let mut known = self
            .known
            .lock()
            .map_err(|_| Error::cell(offset, "internal: the bin cache was poisoned"))?;
        let below = known.range(..=offset).next_back().map(|(&s, &z)| (s, z));
        if let Some((start, size)) = below {
            if offset - start < size {
                let data = self.slot(start).ok_or_else(|| {
                    Error::cell(offset, "internal: a bin in the cache has no bytes")
                })?;
                return Ok((
                    Bin {
                        offset: start,
                        size,
                    },
                    data,
                ));
            }
        }
        // The nearest page at or below the offset's page whose header names that page.
        let page = offset / PAGE;
        let floor = below.map_or(0, |(s, z)| (s + z) / PAGE);
        let lowest = page.saturating_sub(MAX_PROBE_PAGES - 1).max(floor);
        let mut found = None;
        let mut head = [0u8; HBIN_HEADER_LEN as usize];
        for p in (lowest..=page).rev() {
            self.read(p * PAGE, &mut head)?;
            let names_itself = &head[..4] == b"hbin"
                && u32::from_le_bytes([head[4], head[5], head[6], head[7]]) == p * PAGE;
            if names_itself {
                found = Some(p * PAGE);
                break;
            }
        }
        let Some(start) = found else {
            let why = if lowest == floor {
                match below {
                    Some((s, z)) => format!(
                        "no hive bin header between the end of the bin at {s:#x} ({:#x}) and the offset",
                        s + z
                    ),
                    None => "no hive bin header between the start of the hive bins and the offset".into(),
                }
            } else {
                format!(
                    "no hive bin header in the {} MiB before it",
                    (MAX_PROBE_PAGES * PAGE) >> 20
                )
            };
            return Err(Error::cell(offset, why));
        };
        let bin = bin_header(&head, start, self.hbins_size)?;
        if offset >= bin.end() {
            return Err(Error::cell(
                offset,
                format!(
                    "offset lies past the end of the hive bin at {start:#x} ({:#x}), and no bin header follows it",
                    bin.end()
                ),
            ));
        }
        if let Some((&next, _)) = known.range(start..).next() {
            if next < bin.end() {
                return Err(Error::InvalidHiveBin {
                    offset: BASE_BLOCK_LEN as u64 + u64::from(start),
                    field: "size",
                    expected: format!("a bin that ends by the next bin at {next:#x}"),
                    actual: format!("{:#x}", bin.size),
                });
            }
        }
        let mut data = vec![0u8; bin.size as usize];
        self.read(start, &mut data)?;
        let slot = self
            .slots
            .get((start / PAGE) as usize)
            .ok_or_else(outside)?;
        let _ = slot.set(data.into_boxed_slice());
        known.insert(start, bin.size);
        drop(known);
        let data = self
            .slot(start)
            .ok_or_else(|| Error::cell(offset, "internal: a bin just read has no bytes"))?;
        Ok((bin, data))
    }

    /// The data of the allocated cell at `offset` (after its size field), checked as
    /// [`crate::BinMap::cell`] checks it.
    pub(crate) fn cell(&self, offset: u32) -> Result<&[u8]> {
        check_reference(offset)?;
        let (bin, data) = self.bin_of(offset)?;
        let (rel, size) = cell_in_bin(bin, data, offset)?;
        data.get(rel + 4..rel + size)
            .ok_or_else(|| Error::cell(offset, "cell extends past the end of the file"))
    }
}

/// A dirty hive's file as its logs leave it, without reading the file whole: the replay runs
/// over a zeroed buffer (memory is taken only for the pages it writes) that starts with the
/// file's first two pages (its base block, and the first bin's header, which an old-format
/// replay reads); the pages the logs write are kept, and every other byte is read from the
/// file when asked for — or is zero where a replay that shrank or grew the hive zero-filled it,
/// as a replay over the whole file does.
pub(crate) struct Replayed {
    file: Box<dyn ReadAt>,
    /// Bytes of the file still in force: below the shortest length the replay set.
    file_len: u64,
    buf: ReplayBuf,
    /// What the replay wrote, merged: start → end.
    written: BTreeMap<usize, usize>,
}

/// The buffer a sparse replay writes into; see [`Replayed`].
pub(crate) struct ReplayBuf {
    buf: guestwall_mmap::AnonBuf,
    shortest: usize,
    written: Vec<(usize, usize)>,
}

impl std::ops::Deref for ReplayBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf
    }
}

impl std::ops::DerefMut for ReplayBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }
}

impl crate::log::GrowBuf for ReplayBuf {
    fn set_len(&mut self, len: usize) -> Result<()> {
        self.shortest = self.shortest.min(len);
        self.buf.resize(len).map_err(|source| Error::Io {
            path: Location::Memory("memory for log replay".into()),
            source,
        })
    }

    fn wrote(&mut self, start: usize, len: usize) {
        self.written.push((start, start + len));
    }
}

impl Replayed {
    /// The buffer to replay into, for a file of `len` bytes read by `file`.
    pub(crate) fn start(file: &dyn ReadAt, location: &Location) -> Result<ReplayBuf> {
        let io = |source| Error::Io {
            path: location.clone(),
            source,
        };
        let len = usize::try_from(file.size()).map_err(|_| {
            io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "too large for this machine's memory",
            ))
        })?;
        let mut buf = guestwall_mmap::AnonBuf::zeroed(len).map_err(|source| Error::Io {
            path: Location::Memory("memory for log replay".into()),
            source,
        })?;
        let head = len.min(2 * BASE_BLOCK_LEN);
        file.read_exact_at(0, &mut buf[..head]).map_err(io)?;
        Ok(ReplayBuf {
            buf,
            shortest: len,
            written: vec![(0, head)],
        })
    }

    /// The file as the replay into `buf` left it.
    pub(crate) fn finish(file: Box<dyn ReadAt>, buf: ReplayBuf) -> Replayed {
        let mut spans = buf.written.clone();
        spans.sort_unstable();
        let mut written: BTreeMap<usize, usize> = BTreeMap::new();
        let mut last: Option<(usize, usize)> = None;
        for (s, e) in spans {
            match &mut last {
                Some((_, le)) if s <= *le => *le = (*le).max(e),
                _ => {
                    if let Some((ls, le)) = last.take() {
                        written.insert(ls, le);
                    }
                    last = Some((s, e));
                }
            }
        }
        if let Some((ls, le)) = last {
            written.insert(ls, le);
        }
        let file_len = file.size().min(buf.shortest as u64);
        Replayed {
            file,
            file_len,
            buf,
            written,
        }
    }

    /// The base block after the replay.
    pub(crate) fn base_block(&self) -> &[u8] {
        &self.buf[..self.buf.len().min(BASE_BLOCK_LEN)]
    }
}

impl ReadAt for Replayed {
    fn size(&self) -> u64 {
        self.buf.len() as u64
    }

    fn read_exact_at(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        let len = self.buf.len();
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        if start > len || len - start < out.len() {
            return Err(guestwall_source::out_of_range(
                offset,
                out.len(),
                len as u64,
            ));
        }
        let end = start + out.len();
        let mut pos = start;
        while pos < end {
            // A written span holding `pos`, or the next one after it.
            let held = self
                .written
                .range(..=pos)
                .next_back()
                .filter(|(_, &e)| e > pos)
                .map(|(_, &e)| e);
            let next = match held {
                Some(e) => e.min(end),
                None => self
                    .written
                    .range(pos..)
                    .next()
                    .map_or(end, |(&s, _)| s.min(end)),
            };
            let dst = &mut out[pos - start..next - start];
            if held.is_some() {
                dst.copy_from_slice(&self.buf[pos..next]);
            } else {
                let from_file = (self.file_len as usize).clamp(pos, next);
                self.file
                    .read_exact_at(pos as u64, &mut dst[..from_file - pos])?;
                dst[from_file - pos..].fill(0);
            }
            pos = next;
        }
        Ok(())
    }
}
