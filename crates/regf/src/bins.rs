//! Hive bins and cells.
//!
//! The hive bins data follows the base block. It is a sequence of bins; each starts with a
//! 32-byte header (`hbin`, its own offset, its size, a timestamp) and is a multiple of 4096
//! bytes long. The rest of a bin is cut into cells: a signed 32-bit size (negative when the
//! cell is allocated, positive when free) followed by the cell's data. Cells never cross a
//! bin's end. Every pointer in the file is a cell offset relative to the start of the hive
//! bins data, and the only way this crate follows one is [`BinMap::cell`], which checks that
//! the offset lands on an allocated cell wholly inside one bin.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::base_block::BASE_BLOCK_LEN;
use crate::error::{escape_bytes, Error, Result};

/// Size of a hive bin header.
pub const HBIN_HEADER_LEN: u32 = 32;
/// Bins are made of pages of this size.
pub const PAGE: u32 = 4096;

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct RawBinHeader {
    pub signature: [u8; 4],
    pub offset: U32,
    pub size: U32,
    pub reserved: [u8; 8],
    pub timestamp: U64,
    pub spare: U32,
}

/// One hive bin: its offset in the hive bins data and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bin {
    /// Offset relative to the start of the hive bins data.
    pub offset: u32,
    /// Size in bytes, header included.
    pub size: u32,
}

impl Bin {
    /// Offset just past this bin.
    pub fn end(&self) -> u32 {
        self.offset + self.size
    }
}

/// The bins of a hive, and a page table that finds the bin holding any offset in O(1).
#[derive(Debug, Clone, Default)]
pub struct BinMap {
    bins: Vec<Bin>,
    /// For each 4096-byte page of the hive bins data, the index into `bins`.
    page_bin: Vec<u32>,
}

impl BinMap {
    /// Scans the bin headers of `file` (a whole hive file, base block included) up to
    /// `hbins_size` bytes of hive bins data.
    pub fn scan(file: &[u8], hbins_size: u32) -> Result<BinMap> {
        let data = hbins(file, hbins_size)?;
        let pages = (hbins_size / PAGE) as usize;
        let mut bins = Vec::new();
        let mut page_bin = Vec::with_capacity(pages);
        let mut pos: u32 = 0;
        while pos < hbins_size {
            let bin = bin_header(data.get(pos as usize..).unwrap_or(&[]), pos, hbins_size)
                .map_err(|e| match e {
                    Error::Truncated { what, expected, .. } => Error::Truncated {
                        what,
                        expected,
                        actual: file.len() as u64,
                    },
                    e => e,
                })?;
            let size = bin.size;
            let idx = bins.len() as u32;
            bins.push(Bin { offset: pos, size });
            page_bin.extend(std::iter::repeat_n(idx, (size / PAGE) as usize));
            pos += size;
        }
        Ok(BinMap { bins, page_bin })
    }

    /// Adds a bin at the end (used when a write appends one).
    pub(crate) fn push_bin(&mut self, bin: Bin) {
        let idx = self.bins.len() as u32;
        self.bins.push(bin);
        self.page_bin
            .extend(std::iter::repeat_n(idx, (bin.size / PAGE) as usize));
    }

    /// All bins, in file order.
    pub fn bins(&self) -> &[Bin] {
        &self.bins
    }

    /// Total size of the hive bins data covered by the map.
    pub fn data_size(&self) -> u32 {
        self.bins.last().map_or(0, |b| b.end())
    }

    /// The bin that holds `offset`, if any.
    pub fn bin_of(&self, offset: u32) -> Option<Bin> {
        let idx = *self.page_bin.get((offset / PAGE) as usize)?;
        self.bins.get(idx as usize).copied()
    }

    /// The data of the allocated cell at `offset` (after its 4-byte size field).
    ///
    /// Checks that the offset is 8-aligned, lies past a bin header, that the cell is allocated,
    /// and that the cell ends inside its bin.
    pub fn cell<'f>(&self, file: &'f [u8], offset: u32) -> Result<&'f [u8]> {
        let (start, len) = self.cell_range(file, offset)?;
        file.get(start + 4..start + len)
            .ok_or_else(|| Error::cell(offset, "cell extends past the end of the file"))
    }

    /// File range of the allocated cell at `offset`: (file offset of the size field, cell size).
    pub(crate) fn cell_range(&self, file: &[u8], offset: u32) -> Result<(usize, usize)> {
        check_reference(offset)?;
        let bin = self
            .bin_of(offset)
            .ok_or_else(|| Error::cell(offset, "offset lies outside the hive bins data"))?;
        let at = BASE_BLOCK_LEN + bin.offset as usize;
        let (rel, size) = cell_in_bin(bin, file.get(at..).unwrap_or(&[]), offset)?;
        Ok((at + rel, size))
    }

    /// Walks every cell of every bin, allocated or free.
    pub fn cells<'a>(&'a self, file: &'a [u8]) -> CellIter<'a> {
        CellIter {
            map: self,
            file,
            bin: 0,
            pos: None,
        }
    }
}

/// The bin whose header starts `data` (at least its 32 bytes), expected at hive-bins offset
/// `pos` of a hive with `hbins_size` bytes of bins: checks the signature, that the header
/// names its own offset, and that the size is a multiple of 4096 that fits.
pub(crate) fn bin_header(data: &[u8], pos: u32, hbins_size: u32) -> Result<Bin> {
    let file_off = pos as u64 + BASE_BLOCK_LEN as u64;
    let hdr = data
        .get(..HBIN_HEADER_LEN as usize)
        .and_then(|b| RawBinHeader::ref_from_bytes(b).ok())
        .ok_or(Error::Truncated {
            what: "hive bin header",
            expected: file_off + HBIN_HEADER_LEN as u64,
            actual: file_off + data.len() as u64,
        })?;
    if &hdr.signature != b"hbin" {
        return Err(Error::InvalidHiveBin {
            offset: file_off,
            field: "signature",
            expected: "\"hbin\"".into(),
            actual: escape_bytes(&hdr.signature),
        });
    }
    if hdr.offset.get() != pos {
        return Err(Error::InvalidHiveBin {
            offset: file_off,
            field: "offset",
            expected: format!("{pos:#x}"),
            actual: format!("{:#x}", hdr.offset.get()),
        });
    }
    let size = hdr.size.get();
    if size < PAGE || size % PAGE != 0 || size > hbins_size - pos {
        return Err(Error::InvalidHiveBin {
            offset: file_off,
            field: "size",
            expected: format!(
                "a multiple of 4096 no larger than the {:#x} bytes left",
                hbins_size - pos
            ),
            actual: format!("{size:#x}"),
        });
    }
    Ok(Bin { offset: pos, size })
}

/// The checks on a cell reference that need no bytes: not the null reference, 8-aligned.
pub(crate) fn check_reference(offset: u32) -> Result<()> {
    if offset == u32::MAX {
        return Err(Error::cell(offset, "null reference (0xffffffff)"));
    }
    if !offset.is_multiple_of(8) {
        return Err(Error::cell(offset, "offset is not 8-byte aligned"));
    }
    Ok(())
}

/// The allocated cell at `offset` inside `bin`, whose bytes start at `data[0]` (the bin
/// header; `data` may run on past the bin, or stop short of it in a truncated file):
/// (position of the cell's size field in `data`, cell size).
///
/// Checks that the offset lies past the bin header, that the cell is allocated, at least 8
/// bytes long, and ends inside its bin.
pub(crate) fn cell_in_bin(bin: Bin, data: &[u8], offset: u32) -> Result<(usize, usize)> {
    if offset < bin.offset + HBIN_HEADER_LEN {
        return Err(Error::cell(offset, "offset points into a hive bin header"));
    }
    let rel = (offset - bin.offset) as usize;
    let raw = data
        .get(rel..rel + 4)
        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| Error::cell(offset, "cell header past the end of the file"))?;
    if raw >= 0 {
        return Err(Error::cell(
            offset,
            format!("the cell is unallocated (size field {raw:#x})"),
        ));
    }
    let size = raw.unsigned_abs();
    if size < 8 {
        return Err(Error::cell(offset, format!("cell size {size} is below 8")));
    }
    if u64::from(offset) + u64::from(size) > u64::from(bin.end()) {
        return Err(Error::cell(
            offset,
            format!(
                "cell of {size:#x} bytes runs past the end of its hive bin at {:#x}",
                bin.end()
            ),
        ));
    }
    Ok((rel, size as usize))
}

/// The hive bins data of a file: `hbins_size` bytes after the base block.
pub(crate) fn hbins(file: &[u8], hbins_size: u32) -> Result<&[u8]> {
    let need = BASE_BLOCK_LEN as u64 + u64::from(hbins_size);
    file.get(BASE_BLOCK_LEN..need as usize)
        .ok_or(Error::Truncated {
            what: "hive bins data (per the base block's size field)",
            expected: need,
            actual: file.len() as u64,
        })
}

/// One cell found by a linear scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellInfo {
    /// Cell offset.
    pub offset: u32,
    /// Size, header included.
    pub size: u32,
    /// True when allocated.
    pub allocated: bool,
}

/// Iterator over all cells; see [`BinMap::cells`].
pub struct CellIter<'a> {
    map: &'a BinMap,
    file: &'a [u8],
    bin: usize,
    pos: Option<u32>,
}

impl Iterator for CellIter<'_> {
    type Item = Result<CellInfo>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let bin = *self.map.bins.get(self.bin)?;
            let pos = *self.pos.get_or_insert(bin.offset + HBIN_HEADER_LEN);
            if pos >= bin.end() {
                self.bin += 1;
                self.pos = None;
                continue;
            }
            let start = BASE_BLOCK_LEN + pos as usize;
            let Some(b) = self.file.get(start..start + 4) else {
                self.bin = usize::MAX;
                return Some(Err(Error::cell(
                    pos,
                    "cell header past the end of the file",
                )));
            };
            let raw = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let size = raw.unsigned_abs();
            if size < 8 || size % 8 != 0 || size > bin.end() - pos {
                // Stop this scan: the rest of the file cannot be cut into cells reliably.
                self.bin = usize::MAX;
                return Some(Err(Error::cell(
                    pos,
                    format!(
                        "cell size {raw:#x} is not a positive multiple of 8 that fits in its bin (ends at {:#x})",
                        bin.end()
                    ),
                )));
            }
            self.pos = Some(pos + size);
            return Some(Ok(CellInfo {
                offset: pos,
                size,
                allocated: raw < 0,
            }));
        }
    }
}
