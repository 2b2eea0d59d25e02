//! The error type of the regf crate. Every variant says where the problem is.

use std::fmt;
use std::path::PathBuf;

/// Size of the base block: hive-bins-relative cell offsets start this far into the file.
pub(crate) const BASE_BLOCK_SIZE: u64 = 4096;

/// A position in the hive bins data, shown as both the cell offset (what the file's own
/// pointers hold) and the absolute file offset (what a hex editor shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellPos(pub u32);

impl fmt::Display for CellPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cell {:#010x} (file offset {:#010x})",
            self.0,
            u64::from(self.0) + BASE_BLOCK_SIZE
        )
    }
}

/// Errors of the regf reader. Each names the offset, cell or key path at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading bytes failed (a file, a file inside a disk image, or memory for a copy).
    #[error("{path}")]
    Io {
        /// Where.
        path: guestwall_source::Location,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Reading or writing a file failed, with what that means for the user.
    #[error("{}: {explanation}", path.display())]
    IoExplained {
        /// The file.
        path: PathBuf,
        /// What the error means here and what to do.
        explanation: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file does not start with the `regf` signature.
    #[error("not a registry hive: expected signature \"regf\" at offset 0x00000000, found {actual}{hint}")]
    NotAHive {
        /// What the file starts with, escaped.
        actual: String,
        /// A guess at what the file is instead.
        hint: &'static str,
    },
    /// The file is a transaction log or another non-primary regf file.
    #[error(
        "unsupported file type {file_type} at offset 0x0000001c: {what}, not a primary hive file"
    )]
    UnsupportedFileType {
        /// The base block's file type field.
        file_type: u32,
        /// What that type means.
        what: &'static str,
    },
    /// A version outside 1.3 to 1.6.
    #[error("unsupported hive format version {major}.{minor} at offset 0x00000014 (supported: 1.3 to 1.6)")]
    UnsupportedVersion {
        /// Major version.
        major: u32,
        /// Minor version.
        minor: u32,
    },
    /// The file ends before a structure it must hold.
    #[error("truncated file: {what} needs {expected} bytes but the file has {actual}")]
    Truncated {
        /// What was cut off.
        what: &'static str,
        /// Bytes needed.
        expected: u64,
        /// Bytes present.
        actual: u64,
    },
    /// A field of the base block is invalid.
    #[error(
        "invalid base block {field} at offset {offset:#010x}: expected {expected}, found {actual}"
    )]
    InvalidBaseBlock {
        /// Field name.
        field: &'static str,
        /// File offset of the field.
        offset: u64,
        /// What was expected.
        expected: String,
        /// What was found.
        actual: String,
    },
    /// A hive bin header is invalid.
    #[error("invalid hive bin at file offset {offset:#010x}: {field}: expected {expected}, found {actual}")]
    InvalidHiveBin {
        /// File offset of the bin header.
        offset: u64,
        /// Field name.
        field: &'static str,
        /// What was expected.
        expected: String,
        /// What was found.
        actual: String,
    },
    /// A cell reference or cell header is invalid.
    #[error("invalid reference to {cell}: {reason}")]
    InvalidCell {
        /// The referenced cell.
        cell: CellPos,
        /// Why it is invalid.
        reason: String,
    },
    /// A record inside a cell is invalid.
    #[error("invalid {record} at {cell}: {field}: expected {expected}, found {actual}")]
    InvalidRecord {
        /// Record kind (`key node`, `value`, `subkey list`, ...).
        record: &'static str,
        /// The cell holding it.
        cell: CellPos,
        /// The field at fault.
        field: &'static str,
        /// What was expected.
        expected: String,
        /// What was found.
        actual: String,
    },
    /// A key was reached twice while walking the tree: the file points back into itself.
    #[error("key node at {cell} is reached twice (a cycle or a shared subtree)")]
    Cycle {
        /// The key node reached again.
        cell: CellPos,
    },
    /// The key tree or a list nesting is deeper than the allowed maximum.
    #[error("nesting deeper than {max} levels at {cell}")]
    TooDeep {
        /// The limit.
        max: usize,
        /// Where the limit was hit.
        cell: CellPos,
    },
    /// A transaction log is invalid in a way that stops replay.
    #[error("transaction log {path}: {reason} at offset {offset:#010x}")]
    InvalidLog {
        /// Where the log is.
        path: guestwall_source::Location,
        /// File offset in the log.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Writing output failed.
    #[error("writing output")]
    Output(#[source] std::io::Error),
    /// A write was refused before anything was written.
    #[error("refusing to write {}: {reason}", path.display())]
    Refused {
        /// The hive file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The written hive does not read back as intended; the target was left alone.
    #[error("verification failed at key {path:?}: {detail}")]
    Verify {
        /// Key path.
        path: String,
        /// What differs.
        detail: String,
    },
    /// No key has this path.
    #[error("key not found: {path}")]
    KeyNotFound {
        /// The path as given.
        path: String,
    },
    /// The key has no value of this name.
    #[error("value {name:?} not found in key {key}")]
    ValueNotFound {
        /// Key path.
        key: String,
        /// Value name (`""` is the default value).
        name: String,
    },
    /// An error while reading a particular key; the path says which.
    #[error("at key {path:?}")]
    AtKey {
        /// Path relative to the root key.
        path: String,
        /// The error.
        #[source]
        inner: Box<Error>,
    },
}

impl Error {
    /// Attaches a key path to an error, unless it already has one.
    pub fn at_key(self, path: &str) -> Error {
        match self {
            e @ Error::AtKey { .. } => e,
            e @ (Error::KeyNotFound { .. }
            | Error::ValueNotFound { .. }
            | Error::Output(_)
            | Error::Verify { .. }) => e,
            e => Error::AtKey {
                path: if path.is_empty() {
                    "(root)".to_string()
                } else {
                    path.to_string()
                },
                inner: Box::new(e),
            },
        }
    }

    pub(crate) fn cell(cell: u32, reason: impl Into<String>) -> Error {
        Error::InvalidCell {
            cell: CellPos(cell),
            reason: reason.into(),
        }
    }

    pub(crate) fn record(
        record: &'static str,
        cell: u32,
        field: &'static str,
        expected: impl fmt::Display,
        actual: impl fmt::Display,
    ) -> Error {
        Error::InvalidRecord {
            record,
            cell: CellPos(cell),
            field,
            expected: expected.to_string(),
            actual: actual.to_string(),
        }
    }
}

/// The error and all its sources, joined by `: ` (what a command line shows).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shows a short byte string the way a person can read it: printable ASCII as is, the rest as `\xNN`.
pub(crate) fn escape_bytes(b: &[u8]) -> String {
    let mut s = String::from("\"");
    for &c in b {
        if (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\' {
            s.push(c as char);
        } else {
            s.push_str(&format!("\\x{c:02x}"));
        }
    }
    s.push('"');
    s
}
