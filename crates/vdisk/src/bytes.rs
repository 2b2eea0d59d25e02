//! Field readers over in-memory buffers. Out-of-range reads give 0 (callers size their
//! buffers to the structure, so this only matters for corrupt lengths, which are checked
//! separately).
#![allow(clippy::big_endian_bytes)]

pub(crate) fn le16(b: &[u8], at: usize) -> u16 {
    arr::<2>(b, at).map_or(0, u16::from_le_bytes)
}
pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    arr::<4>(b, at).map_or(0, u32::from_le_bytes)
}
pub(crate) fn le64(b: &[u8], at: usize) -> u64 {
    arr::<8>(b, at).map_or(0, u64::from_le_bytes)
}
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    arr::<2>(b, at).map_or(0, u16::from_be_bytes)
}
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    arr::<4>(b, at).map_or(0, u32::from_be_bytes)
}
pub(crate) fn be64(b: &[u8], at: usize) -> u64 {
    arr::<8>(b, at).map_or(0, u64::from_be_bytes)
}
pub(crate) fn arr<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}
pub(crate) fn put32(b: &mut [u8], at: usize, v: u32) {
    if let Some(s) = b.get_mut(at..at + 4) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}
pub(crate) fn put64(b: &mut [u8], at: usize, v: u64) {
    if let Some(s) = b.get_mut(at..at + 8) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}
pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) {
    if let Some(s) = b.get_mut(at..at + 2) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// UTF-16LE bytes to a string (lossy), stopping at the first NUL.
pub(crate) fn utf16le(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

/// UTF-16BE bytes to a string (lossy), stopping at the first NUL.
pub(crate) fn utf16be(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}
