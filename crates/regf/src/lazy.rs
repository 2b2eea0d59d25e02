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
                    MAX_PROBE_PAGES * PAGE >> 20
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
