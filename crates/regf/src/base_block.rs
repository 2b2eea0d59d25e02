//! The base block: the first 4096 bytes of a hive file.
//!
//! Layout (all little endian; offsets in bytes):
//!
//! | off | len | field |
//! |----:|----:|-------|
//! | 0 | 4 | signature `regf` |
//! | 4 | 4 | primary sequence number (bumped when a write starts) |
//! | 8 | 4 | secondary sequence number (bumped when a write ends) |
//! | 12 | 8 | last written timestamp (FILETIME) |
//! | 20 | 4 | major version (1) |
//! | 24 | 4 | minor version (3..=6) |
//! | 28 | 4 | file type (0 primary, 1 and 2 old-format log, 6 new-format log) |
//! | 32 | 4 | file format (1 = direct memory load) |
//! | 36 | 4 | root cell offset (relative to the hive bins data) |
//! | 40 | 4 | hive bins data size |
//! | 44 | 4 | clustering factor |
//! | 48 | 64 | file name (UTF-16LE, partial path, for debugging) |
//! | 144 | 4 | flags (KTM state) |
//! | 168 | 8 | last reorganized timestamp |
//! | 508 | 4 | XOR-32 checksum of bytes 0..508 |

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{escape_bytes, Error, Result};

/// Length of the base block in a primary file.
pub const BASE_BLOCK_LEN: usize = 4096;
/// The part of the base block covered by the checksum, plus the checksum itself.
pub(crate) const HEADER_SECTOR: usize = 512;

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct RawBaseBlock {
    pub signature: [u8; 4],
    pub primary_seq: U32,
    pub secondary_seq: U32,
    pub timestamp: U64,
    pub major: U32,
    pub minor: U32,
    pub file_type: U32,
    pub file_format: U32,
    pub root_cell: U32,
    pub hbins_size: U32,
    pub clustering: U32,
    pub file_name: [u8; 64],
    pub rm_id: [u8; 16],
    pub log_id: [u8; 16],
    pub flags: U32,
    pub tm_id: [u8; 16],
    pub guid_signature: [u8; 4],
    pub last_reorganized: U64,
    pub reserved: [u8; 332],
    pub checksum: U32,
}

const _: () = assert!(std::mem::size_of::<RawBaseBlock>() == HEADER_SECTOR);

/// The file type field, as far as it is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    /// A primary hive file (0).
    Primary,
    /// An old-format transaction log (1 or 2).
    OldLog(u32),
    /// A new-format (Windows 8.1+) transaction log (6).
    NewLog,
    /// Anything else.
    Unknown(u32),
}

impl FileType {
    fn from_raw(v: u32) -> FileType {
        match v {
            0 => FileType::Primary,
            1 | 2 => FileType::OldLog(v),
            6 => FileType::NewLog,
            v => FileType::Unknown(v),
        }
    }
}

/// The parsed base block of a hive file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseBlock {
    /// Primary sequence number.
    pub primary_seq: u32,
    /// Secondary sequence number.
    pub secondary_seq: u32,
    /// Last written timestamp, as a FILETIME.
    pub timestamp: u64,
    /// Major format version.
    pub major: u32,
    /// Minor format version.
    pub minor: u32,
    /// File type.
    pub file_type: FileType,
    /// File format (1 = direct memory load).
    pub file_format: u32,
    /// Offset of the root key node, relative to the hive bins data.
    pub root_cell: u32,
    /// Size of the hive bins data in bytes.
    pub hbins_size: u32,
    /// Clustering factor (sector size / 512).
    pub clustering: u32,
    /// The debugging file name stored in the header.
    pub file_name: String,
    /// KTM flags.
    pub flags: u32,
    /// Last reorganized timestamp (FILETIME), zero when never.
    pub last_reorganized: u64,
    /// Checksum stored in the file.
    pub stored_checksum: u32,
    /// Checksum computed over the first 508 bytes.
    pub computed_checksum: u32,
}

impl BaseBlock {
    /// True when the stored checksum matches the computed one.
    pub fn checksum_ok(&self) -> bool {
        self.stored_checksum == self.computed_checksum
    }

    /// True when the sequence numbers differ: a write did not finish, so logs may need replay.
    pub fn sequence_mismatch(&self) -> bool {
        self.primary_seq != self.secondary_seq
    }

    /// True when Windows would consider the hive dirty (bad checksum or unequal sequence numbers).
    pub fn is_dirty(&self) -> bool {
        !self.checksum_ok() || self.sequence_mismatch()
    }

    /// Parses the first 512 bytes of `bytes`, checking only the signature. Use
    /// [`BaseBlock::validate_primary`] for the checks a primary file must pass.
    pub fn parse(bytes: &[u8]) -> Result<BaseBlock> {
        let Some(head) = bytes.get(..HEADER_SECTOR) else {
            let start = &bytes[..bytes.len().min(4)];
            if start.is_empty() || !b"regf".starts_with(start) {
                return Err(not_a_hive(bytes));
            }
            return Err(Error::Truncated {
                what: "base block",
                expected: HEADER_SECTOR as u64,
                actual: bytes.len() as u64,
            });
        };
        let raw = RawBaseBlock::ref_from_bytes(head).map_err(|_| Error::Truncated {
            what: "base block",
            expected: HEADER_SECTOR as u64,
            actual: bytes.len() as u64,
        })?;
        if &raw.signature != b"regf" {
            return Err(not_a_hive(bytes));
        }
        Ok(BaseBlock {
            primary_seq: raw.primary_seq.get(),
            secondary_seq: raw.secondary_seq.get(),
            timestamp: raw.timestamp.get(),
            major: raw.major.get(),
            minor: raw.minor.get(),
            file_type: FileType::from_raw(raw.file_type.get()),
            file_format: raw.file_format.get(),
            root_cell: raw.root_cell.get(),
            hbins_size: raw.hbins_size.get(),
            clustering: raw.clustering.get(),
            file_name: crate::data::utf16_until_nul(&raw.file_name),
            flags: raw.flags.get(),
            last_reorganized: raw.last_reorganized.get(),
            stored_checksum: raw.checksum.get(),
            computed_checksum: checksum(head),
        })
    }

    /// Checks what a primary file's base block must satisfy before its cells can be read:
    /// file type, version, format, and that sizes and offsets are in range.
    pub fn validate_primary(&self) -> Result<()> {
        match self.file_type {
            FileType::Primary => {}
            FileType::OldLog(v) => {
                return Err(Error::UnsupportedFileType {
                    file_type: v,
                    what: "an old-format transaction log",
                })
            }
            FileType::NewLog => {
                return Err(Error::UnsupportedFileType {
                    file_type: 6,
                    what: "a new-format transaction log",
                })
            }
            FileType::Unknown(v) => {
                return Err(Error::UnsupportedFileType {
                    file_type: v,
                    what: "an unknown kind of file",
                })
            }
        }
        if self.major != 1 || !(3..=6).contains(&self.minor) {
            return Err(Error::UnsupportedVersion {
                major: self.major,
                minor: self.minor,
            });
        }
        if self.file_format != 1 {
            return Err(invalid_field("file format", 0x20, "1", self.file_format));
        }
        if self.hbins_size == 0 || !self.hbins_size.is_multiple_of(4096) {
            return Err(invalid_field(
                "hive bins data size",
                0x28,
                "a non-zero multiple of 4096",
                format!("{:#x}", self.hbins_size),
            ));
        }
        if self.root_cell >= self.hbins_size || !self.root_cell.is_multiple_of(8) {
            return Err(invalid_field(
                "root cell offset",
                0x24,
                format!(
                    "an 8-aligned offset below the hive bins data size {:#x}",
                    self.hbins_size
                ),
                format!("{:#x}", self.root_cell),
            ));
        }
        Ok(())
    }
}

fn invalid_field(
    field: &'static str,
    offset: u64,
    expected: impl Into<String>,
    actual: impl std::fmt::Display,
) -> Error {
    Error::InvalidBaseBlock {
        field,
        offset,
        expected: expected.into(),
        actual: actual.to_string(),
    }
}

fn not_a_hive(bytes: &[u8]) -> Error {
    let head = &bytes[..bytes.len().min(8)];
    let hint = if head.starts_with(b"CREG") {
        " (a Windows 9x/Me registry file, which is not supported)"
    } else if head.starts_with(b"MZ") {
        " (a Windows executable)"
    } else if head.starts_with(b"HvLE") {
        " (a bare transaction log entry)"
    } else if head.is_empty() {
        " (the file is empty)"
    } else {
        ""
    };
    Error::NotAHive {
        actual: escape_bytes(head),
        hint,
    }
}

/// XOR-32 checksum of the first 508 bytes, with Windows' fix-ups: a result of 0 becomes 1
/// and 0xFFFFFFFF becomes 0xFFFFFFFE.
pub fn checksum(header: &[u8]) -> u32 {
    let mut c = 0u32;
    for w in header.chunks_exact(4).take(127) {
        c ^= u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
    }
    match c {
        0 => 1,
        0xFFFF_FFFF => 0xFFFF_FFFE,
        c => c,
    }
}

/// Converts a FILETIME (100 ns ticks since 1601-01-01 UTC) to an ISO 8601 UTC string.
pub fn filetime_to_string(ft: u64) -> String {
    if ft == 0 {
        return "never".to_string();
    }
    let secs = ft / 10_000_000;
    let frac = ft % 10_000_000;
    // Days from 1601-01-01 to 1970-01-01.
    const EPOCH_DIFF: i64 = 11_644_473_600;
    let unix = secs as i64 - EPOCH_DIFF;
    let days = unix.div_euclid(86_400);
    let sod = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:07}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// A FILETIME as `YYYYMMDDTHHMMSSZ` (UTC), for file names.
pub fn filetime_compact(ft: u64) -> String {
    let unix = (ft / 10_000_000) as i64 - 11_644_473_600;
    let (y, m, d) = civil_from_days(unix.div_euclid(86_400));
    let sod = unix.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_fixups() {
        let zero = [0u8; 512];
        assert_eq!(checksum(&zero), 1);
        let mut ones = [0u8; 512];
        ones[..4].copy_from_slice(&[0xff; 4]);
        assert_eq!(checksum(&ones), 0xFFFF_FFFE);
        let mut one = [0u8; 512];
        one[4] = 0x12;
        one[8] = 0x10;
        assert_eq!(checksum(&one), 0x02);
        // bytes 508..512 are not part of the sum
        one[508] = 0xAA;
        assert_eq!(checksum(&one), 0x02);
    }

    #[test]
    fn filetime_formatting() {
        assert_eq!(filetime_to_string(0), "never");
        // 1970-01-01T00:00:00Z
        assert_eq!(
            filetime_to_string(116_444_736_000_000_000),
            "1970-01-01T00:00:00.0000000Z"
        );
        // 2016-02-29T12:34:56.1234567Z
        let t = (1_456_749_296u64 + 11_644_473_600) * 10_000_000 + 1_234_567;
        assert_eq!(filetime_to_string(t), "2016-02-29T12:34:56.1234567Z");
        assert_eq!(filetime_compact(t), "20160229T123456Z");
    }

    #[test]
    fn refuses_non_hives() {
        assert!(matches!(
            BaseBlock::parse(b"MZ\x90\x00rest"),
            Err(Error::NotAHive { hint, .. }) if hint.contains("executable")
        ));
        assert!(matches!(
            BaseBlock::parse(b"CREG\x00\x00\x01\x00"),
            Err(Error::NotAHive { hint, .. }) if hint.contains("9x")
        ));
        assert!(matches!(
            BaseBlock::parse(b"regf"),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            BaseBlock::parse(b""),
            Err(Error::NotAHive { hint, .. }) if hint.contains("empty")
        ));
        assert!(matches!(
            BaseBlock::parse(b"ab"),
            Err(Error::NotAHive { .. })
        ));
    }
}
