//! What every container tells the disk layer: where a virtual range lives.

use std::path::PathBuf;

use crate::error::Result;
use crate::guid::Guid;

/// Why a stored range is where it is (the block state that made it so).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockState {
    /// A raw image or block device: virtual offset = file offset.
    Raw,
    /// A fixed VHD: the data before the footer.
    VhdFixed,
    /// A dynamic or differencing VHD block that is allocated, with the sector's bitmap bit set.
    VhdBitmapSet,
    /// A VHDX payload block in state PAYLOAD_BLOCK_FULLY_PRESENT (6).
    VhdxFullyPresent,
    /// A VHDX payload block in state PAYLOAD_BLOCK_PARTIALLY_PRESENT (7), with the sector's
    /// bit set in the sector bitmap.
    VhdxPartiallyPresent,
}

/// Why a range is not stored in a file of the chain (it reads as zeros, or from a parent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// VHD: the BAT entry is 0xFFFFFFFF (block not allocated).
    NotAllocated,
    /// VHDX: PAYLOAD_BLOCK_NOT_PRESENT (0).
    NotPresent,
    /// VHDX: PAYLOAD_BLOCK_UNDEFINED (1).
    Undefined,
    /// VHDX: PAYLOAD_BLOCK_ZERO (2).
    Zero,
    /// VHDX: PAYLOAD_BLOCK_UNMAPPED (3).
    Unmapped,
    /// VHD: the block is allocated but the sector's bitmap bit is clear.
    BitmapClear,
    /// VHDX: PAYLOAD_BLOCK_PARTIALLY_PRESENT with the sector's bit clear.
    PartiallyPresent,
    /// The parent is smaller than its child and the range lies past the parent's end.
    PastParentEnd,
}

/// Where a virtual range of one container lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Piece {
    /// In this file, at `file_offset`.
    Data { file_offset: u64, state: BlockState },
    /// Zeros, for this reason.
    Zero(Reason),
    /// In the parent, for this reason.
    Parent(Reason),
}

/// How to find and check a differencing disk's parent.
#[derive(Debug, Clone)]
pub(crate) struct ParentRequest {
    /// Paths to try, in order.
    pub candidates: Vec<PathBuf>,
    /// What the parent must be.
    pub check: ParentCheck,
}

/// The identity the child records for its parent.
#[derive(Debug, Clone)]
pub(crate) enum ParentCheck {
    /// VHD: the parent's footer unique id.
    VhdUniqueId(Guid),
    /// VHDX: the parent's DataWriteGuid, one of these (`parent_linkage`, `parent_linkage2`).
    VhdxDataWriteGuid(Vec<Guid>),
}

/// A container's identity as a parent.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ParentId {
    Vhd(Guid),
    Vhdx(Guid),
    None,
}

/// A container: resolves virtual ranges and reads its own file.
pub(crate) trait Container: Send + Sync {
    /// The virtual disk's size.
    fn virtual_size(&self) -> u64;
    /// Where `offset..offset+len` starts to live: the piece and its length (1..=len).
    /// `offset < virtual_size()` and `len > 0`.
    fn resolve(&self, offset: u64, len: u64) -> Result<(u64, Piece)>;
    /// Reads stored bytes at a file offset given by [`Piece::Data`].
    fn read_data(&self, file_offset: u64, buf: &mut [u8]) -> Result<()>;
    /// This container's identity, for a child's check.
    fn parent_id(&self) -> ParentId;
}

/// Splits off the run of equal bits starting at bit `first` of `bits` (at most `max_bits`).
/// `msb_first` selects the VHD bit order (bit 7 of byte 0 is the first); otherwise bit 0 of
/// byte 0 is first (VHDX). Returns the bit value and the run length.
pub(crate) fn bit_run(bits: &[u8], first: u64, max_bits: u64, msb_first: bool) -> (bool, u64) {
    let get = |i: u64| -> bool {
        let byte = bits.get((i / 8) as usize).copied().unwrap_or(0);
        let shift = if msb_first { 7 - (i % 8) } else { i % 8 };
        (byte >> shift) & 1 == 1
    };
    let v = get(first);
    let mut n = 1;
    while n < max_bits && get(first + n) == v {
        n += 1;
    }
    (v, n)
}
