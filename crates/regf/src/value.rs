//! Values (`vk`) and their data, including big data (`db`).
//!
//! Value layout (offsets into the cell data):
//!
//! | off | len | field |
//! |----:|----:|-------|
//! | 0 | 2 | `vk` |
//! | 2 | 2 | name length in bytes (0 = the default value) |
//! | 4 | 4 | data size; bit 31 set = data (at most 4 bytes) stored in the data offset field |
//! | 8 | 4 | data offset (a cell) or the data itself |
//! | 12 | 4 | data type |
//! | 16 | 2 | flags (0x1 = compressed name) |
//! | 20 | n | name |
//!
//! In hives of version 1.4 and later, data longer than 16,344 bytes lives in a `db` record:
//! `db`, a 2-byte segment count, and a cell holding the list of segment cells. Every segment but
//! the last carries 16,344 bytes.

use std::borrow::Cow;

use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{escape_bytes, Error, Result};
use crate::hive::Hive;
use crate::name::Name;

/// Value flag: the name is stored one byte a character.
pub const VALUE_COMP_NAME: u16 = 0x0001;
/// Bit 31 of the data size: the data is stored inline in the data offset field.
pub const DATA_INLINE: u32 = 0x8000_0000;
/// The largest data a single cell carries in hives of version 1.4+; longer data uses `db`.
pub const BIG_DATA_SEGMENT: usize = 16_344;

pub(crate) const VK_FIXED: usize = 20;

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct RawValue {
    pub signature: [u8; 2],
    pub name_len: U16,
    pub data_size: U32,
    pub data_offset: U32,
    pub data_type: U32,
    pub flags: U16,
    pub spare: U16,
}

const _: () = assert!(std::mem::size_of::<RawValue>() == VK_FIXED);

/// Where a value's data is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataStorage {
    /// Inside the value record (4 bytes or less).
    Inline,
    /// In one cell.
    Cell(u32),
    /// In a `db` record at this cell, with this many segments.
    BigData(u32, u16),
    /// No data (size zero).
    Empty,
}

/// A value in a hive.
#[derive(Clone, Copy)]
pub struct Value<'h> {
    hive: &'h Hive,
    cell: u32,
    hdr: &'h RawValue,
    name: Name<'h>,
}

impl std::fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Value")
            .field("cell", &format_args!("{:#x}", self.cell))
            .field("name", &self.name)
            .field("type", &self.data_type())
            .finish()
    }
}

impl<'h> Value<'h> {
    /// Reads the value record at `cell`.
    pub fn new(hive: &'h Hive, cell: u32) -> Result<Value<'h>> {
        let data = hive.cell(cell)?;
        let (hdr, _) = RawValue::ref_from_prefix(data).map_err(|_| {
            Error::record(
                "value",
                cell,
                "cell size",
                format!("at least {VK_FIXED} bytes"),
                data.len(),
            )
        })?;
        if &hdr.signature != b"vk" {
            return Err(Error::record(
                "value",
                cell,
                "signature",
                "\"vk\"",
                escape_bytes(&hdr.signature),
            ));
        }
        let len = usize::from(hdr.name_len.get());
        let raw = data.get(VK_FIXED..VK_FIXED + len).ok_or_else(|| {
            Error::record(
                "value",
                cell,
                "name length",
                format!(
                    "at most {} bytes (the rest of the cell)",
                    data.len() - VK_FIXED
                ),
                len,
            )
        })?;
        Ok(Value {
            hive,
            cell,
            hdr,
            name: Name::new(raw, hdr.flags.get() & VALUE_COMP_NAME != 0),
        })
    }

    /// Cell offset of the value record.
    pub fn cell(&self) -> u32 {
        self.cell
    }

    /// The value's name; empty for the default value.
    pub fn name(&self) -> Name<'h> {
        self.name
    }

    /// The raw data type (REG_SZ = 1, ...).
    pub fn data_type(&self) -> u32 {
        self.hdr.data_type.get()
    }

    /// The data length in bytes.
    pub fn data_len(&self) -> u32 {
        self.hdr.data_size.get() & !DATA_INLINE
    }

    /// The raw data size field, inline bit included.
    pub fn raw_data_size(&self) -> u32 {
        self.hdr.data_size.get()
    }

    /// The raw data offset field.
    pub fn raw_data_offset(&self) -> u32 {
        self.hdr.data_offset.get()
    }

    /// Where the data is stored.
    pub fn storage(&self) -> Result<DataStorage> {
        let size = self.hdr.data_size.get();
        let len = size & !DATA_INLINE;
        if size & DATA_INLINE != 0 {
            if len > 4 {
                return Err(Error::record(
                    "value",
                    self.cell,
                    "inline data size",
                    "at most 4",
                    len,
                ));
            }
            return Ok(DataStorage::Inline);
        }
        if len == 0 {
            return Ok(DataStorage::Empty);
        }
        let off = self.hdr.data_offset.get();
        if len as usize > BIG_DATA_SEGMENT && self.hive.base_block().minor >= 4 {
            let data = self.hive.cell(off)?;
            if data.get(..2) == Some(b"db") {
                let n = data
                    .get(2..4)
                    .map(|b| u16::from_le_bytes([b[0], b[1]]))
                    .ok_or_else(|| {
                        Error::record("big data", off, "cell size", "at least 8 bytes", data.len())
                    })?;
                return Ok(DataStorage::BigData(off, n));
            }
            // Not a `db` record: some writers store big data in one cell even in 1.4+ hives.
            // Accept it when the cell is big enough, as the single-cell case below does.
        }
        Ok(DataStorage::Cell(off))
    }

    /// The value's data, exactly as stored (length `data_len()`).
    pub fn data(&self) -> Result<Cow<'h, [u8]>> {
        let len = self.data_len() as usize;
        match self.storage()? {
            DataStorage::Empty => Ok(Cow::Borrowed(&[])),
            DataStorage::Inline => {
                let bytes: &'h [u8] = zerocopy::IntoBytes::as_bytes(&self.hdr.data_offset);
                bytes.get(..len).map(Cow::Borrowed).ok_or_else(|| {
                    Error::record("value", self.cell, "inline data size", "at most 4", len)
                })
            }
            DataStorage::Cell(off) => {
                let data = self.hive.cell(off)?;
                data.get(..len).map(Cow::Borrowed).ok_or_else(|| {
                    Error::record(
                        "value data",
                        off,
                        "cell size",
                        format!("at least {len} bytes for the value at {:#x}", self.cell),
                        data.len(),
                    )
                })
            }
            DataStorage::BigData(off, n) => self.big_data(off, n, len).map(Cow::Owned),
        }
    }

    fn big_data(&self, off: u32, n: u16, len: usize) -> Result<Vec<u8>> {
        let data = self.hive.cell(off)?;
        let list_off = crate::data::u32_at(data, 4).ok_or_else(|| {
            Error::record("big data", off, "cell size", "at least 8 bytes", data.len())
        })?;
        let n = usize::from(n);
        let needed = len.div_ceil(BIG_DATA_SEGMENT);
        if n < needed {
            return Err(Error::record(
                "big data",
                off,
                "number of segments",
                format!("at least {needed} for {len} bytes"),
                n,
            ));
        }
        let list = self.hive.cell(list_off)?;
        let list = list.get(..n * 4).ok_or_else(|| {
            Error::record(
                "big data segment list",
                list_off,
                "cell size",
                format!("{} bytes for {n} segments", n * 4),
                list.len(),
            )
        })?;
        // `len` is bounded by the segments that exist, each a cell inside the file.
        let mut out = Vec::with_capacity(len.min(n * BIG_DATA_SEGMENT));
        for seg in list.chunks_exact(4).take(needed) {
            let seg_off = u32::from_le_bytes([seg[0], seg[1], seg[2], seg[3]]);
            let want = (len - out.len()).min(BIG_DATA_SEGMENT);
            let seg_data = self.hive.cell(seg_off)?;
            let part = seg_data.get(..want).ok_or_else(|| {
                Error::record(
                    "big data segment",
                    seg_off,
                    "cell size",
                    format!("at least {want} bytes"),
                    seg_data.len(),
                )
            })?;
            out.extend_from_slice(part);
        }
        Ok(out)
    }
}
