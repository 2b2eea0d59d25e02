//! The one error type of the crate.

use std::path::PathBuf;

/// Everything that can go wrong opening or reading a disk image or a partition table.
///
/// Every variant names the file (or "disk" for partition tables) and, where there is one, the
/// byte offset at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading the file failed.
    #[error("{}: read of {len:#x} bytes at offset {offset:#x} failed: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Where the read started.
        offset: u64,
        /// How many bytes were asked for.
        len: u64,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Opening a file failed.
    #[error("{}: cannot open: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file ends before a structure it must hold.
    #[error("{}: truncated: {what} at offset {offset:#x} needs {needed:#x} bytes but the file has {size:#x}", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The structure cut off.
        what: &'static str,
        /// Where it starts.
        offset: u64,
        /// Bytes it needs (from `offset`).
        needed: u64,
        /// The file's size.
        size: u64,
    },
    /// A signature is not what the format requires.
    #[error("{}: {what} at offset {offset:#x}: expected signature {expected:?}, found {found}", path.display())]
    BadSignature {
        /// The file.
        path: PathBuf,
        /// The structure.
        what: &'static str,
        /// Where it is.
        offset: u64,
        /// The signature required.
        expected: &'static str,
        /// What is there instead (escaped).
        found: String,
    },
    /// A checksum does not match.
    #[error("{}: {what} at offset {offset:#x}: checksum {stored:#010x} stored, {computed:#010x} computed", path.display())]
    BadChecksum {
        /// The file.
        path: PathBuf,
        /// The structure.
        what: &'static str,
        /// Where it is.
        offset: u64,
        /// The checksum in the file.
        stored: u32,
        /// The checksum of the bytes.
        computed: u32,
    },
    /// A field holds a value the format does not allow, or structures contradict each other.
    #[error("{}: invalid {what} at offset {offset:#x}: {detail}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The structure or field.
        what: &'static str,
        /// Where it is.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// A feature the format allows but this crate does not implement.
    #[error("{}: unsupported: {detail}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is not supported.
        detail: String,
    },
    /// A differencing disk's parent could not be found.
    #[error("{}: parent disk not found; tried: {}", child.display(), list(tried))]
    ParentNotFound {
        /// The differencing disk.
        child: PathBuf,
        /// Every path tried, in order.
        tried: Vec<PathBuf>,
    },
    /// The parent found is not the one the child was made from.
    #[error("{}: parent {} does not match: the child expects {expected}, the parent has {found}", child.display(), parent.display())]
    ParentMismatch {
        /// The differencing disk.
        child: PathBuf,
        /// The parent opened.
        parent: PathBuf,
        /// The identifier the child records.
        expected: String,
        /// The identifier the parent has.
        found: String,
    },
    /// A parent chain leads back to a disk already in the chain.
    #[error("{}: parent chain loops back to {}", child.display(), parent.display())]
    ParentLoop {
        /// The disk whose parent closes the loop.
        child: PathBuf,
        /// The disk already in the chain.
        parent: PathBuf,
    },
    /// A parent chain is longer than the cap.
    #[error("{}: parent chain deeper than {max} disks", child.display())]
    ChainTooDeep {
        /// The disk whose parent would exceed the cap.
        child: PathBuf,
        /// The cap.
        max: usize,
    },
    /// Differencing disks were not to be opened (fuzzing, or the caller said so).
    #[error("{}: differencing disk, and opening parents is disabled", child.display())]
    ParentsDisabled {
        /// The differencing disk.
        child: PathBuf,
    },
    /// The VHDX log cannot be replayed.
    #[error("{}: VHDX log at offset {offset:#x} cannot be replayed: {detail}", path.display())]
    LogReplay {
        /// The file.
        path: PathBuf,
        /// The log entry (or the log) at fault.
        offset: u64,
        /// Why.
        detail: String,
    },
    /// A range asked of the virtual disk lies past its end.
    #[error("range {offset:#x}+{len:#x} lies past the end of the virtual disk ({size:#x} bytes)")]
    OutOfRange {
        /// Start of the range.
        offset: u64,
        /// Its length.
        len: u64,
        /// The virtual disk's size.
        size: u64,
    },
    /// A partition table is damaged beyond use.
    #[error("partition table: {what} at disk offset {offset:#x}: {detail}")]
    Partition {
        /// The structure (MBR, EBR, GPT header...).
        what: &'static str,
        /// Where it is on the virtual disk.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// Reading the virtual disk failed while reading a partition table.
    #[error("partition table: read of {len:#x} bytes at disk offset {offset:#x} failed: {source}")]
    DiskRead {
        /// Where the read started.
        offset: u64,
        /// How many bytes.
        len: u64,
        /// The underlying error.
        source: std::io::Error,
    },
}

fn list(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "(no locator gave a path)".into();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Escapes bytes for messages: printable ASCII as is, the rest as `\xNN`.
pub(crate) fn escape(bytes: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            s.push(b as char);
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s.push('"');
    s
}
