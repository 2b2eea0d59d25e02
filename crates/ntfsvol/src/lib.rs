//! Find Windows and its hive files inside an NTFS volume, and read them lazily, without
//! mounting.
//!
//! A volume is any [`ReadAt`] that covers exactly one NTFS file system (a partition handed
//! over by the disk-image layer, a raw volume image, a block device). The published `ntfs`
//! crate navigates it (boot sector, `$UpCase`, `$Volume`, directory indexes, attributes and
//! data runs); this crate checks every boot sector and MFT record before the crate sees them,
//! bounds every walk, maps files to absolute volume offsets, and reads file contents itself,
//! straight from the source, only where asked.
//!
//! # Getting started
//!
//! 1. Open the volume: [`Volume::open`] takes the source (a [`guestwall_source::FileSource`],
//!    a [`guestwall_source::Slice`] of a disk, bytes in memory). A BitLocker volume or
//!    something that is not NTFS is refused with a message that says what it is.
//! 2. Look at [`Volume::state`]: a dirty volume, an unclean `$LogFile`, fast startup or
//!    hibernation are reported with reasons (reading goes on; writing must not).
//! 3. [`Volume::find_windows`] lists each `<dir>\System32\config` with a `SYSTEM` hive and
//!    which of `SYSTEM`, `SOFTWARE` and their `.LOG1`/`.LOG2` exist.
//! 4. [`Volume::file`] gives a [`FileView`] of any file (`/` or `\` separators, names matched
//!    case-insensitively through `$UpCase`): sizes, flags, data runs as absolute volume
//!    offsets, and positional reads ([`ReadAt`]) that fetch only the clusters asked for.
//! 5. Wrap a view in [`guestwall_source::PageCache`] when a reader asks for many small,
//!    overlapping pieces.
//!
//! ```no_run
//! use guestwall_ntfsvol::Volume;
//! use guestwall_source::{FileSource, ReadAt};
//! let vol = Volume::open(FileSource::open("c.img")?)?;
//! for reason in vol.state().reasons() {
//!     eprintln!("warning: {reason}");
//! }
//! for win in vol.find_windows()? {
//!     let system = vol.file(&win.path_of(guestwall_ntfsvol::HiveFile::System).unwrap())?;
//!     let mut magic = [0u8; 4];
//!     system.read_exact_at(0, &mut magic)?;
//!     assert_eq!(&magic, b"regf");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod adapter;
mod boot;
mod logfile;
mod record;
mod view;
mod volume;

pub use boot::Geometry;
#[doc(hidden)]
pub use logfile::build_restart_page;
pub use logfile::LogState;
pub use view::{FileView, Run, ATTR_COMPRESSED, ATTR_ENCRYPTED, ATTR_SPARSE};
pub use volume::{Hibernation, HiveFile, Volume, VolumeState, WindowsInstall};

#[doc(no_inline)]
pub use guestwall_source::ReadAt;

use std::io;

/// Everything that can go wrong reading an NTFS volume. Messages name the offset, record or
/// path at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The volume is encrypted.
    #[error("the volume is encrypted with BitLocker; unlock it first (for example with dislocker) and pass the unlocked volume (its boot sector has \"-FVE-FS-\" at offset 3)")]
    BitLocker,
    /// The first sector is not an NTFS boot sector.
    #[error("not an NTFS volume: it looks like {looks_like}")]
    NotNtfs {
        /// What it looks like instead.
        looks_like: String,
    },
    /// A boot sector field is out of range.
    #[error("NTFS boot sector: {field}: {detail}")]
    BootSector {
        /// The field (with its offset).
        field: String,
        /// What is wrong.
        detail: String,
    },
    /// Reading the source failed.
    #[error("reading {len} bytes at volume offset {offset:#x}: {source}")]
    Io {
        /// Volume offset.
        offset: u64,
        /// Bytes asked for.
        len: usize,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// An MFT record is damaged.
    #[error("MFT record {record} (volume offset {offset:#x}): {detail}")]
    Record {
        /// Record number.
        record: u64,
        /// Its volume offset.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// Some other structure is damaged (a restart page, an attribute list).
    #[error("{detail}")]
    Corrupt {
        /// What is wrong, and where.
        detail: String,
    },
    /// The `ntfs` crate reported an error.
    #[error("{context}: {source}")]
    Ntfs {
        /// What was being done.
        context: String,
        /// The crate's error.
        #[source]
        source: ntfs::NtfsError,
    },
    /// The `ntfs` crate panicked on damaged input that our checks did not catch (caught, see
    /// the crate docs).
    #[error("{context}: the ntfs crate failed on damaged data ({message})")]
    CratePanic {
        /// What was being done.
        context: String,
        /// The panic message.
        message: String,
    },
    /// A walk went on longer than any real volume needs (a loop in an index or list).
    #[error("{context}: gave up after {limit} {what} (a loop in the on-disk structure?)")]
    Budget {
        /// What was being done.
        context: String,
        /// The limit.
        limit: u64,
        /// What was counted.
        what: &'static str,
    },
    /// A path component does not exist.
    #[error("{path}: {component:?} not found")]
    NotFound {
        /// The whole path.
        path: String,
        /// The missing component.
        component: String,
    },
    /// A path component is a file where a directory was needed, or the reverse.
    #[error("{path}: {detail}")]
    WrongKind {
        /// The path so far.
        path: String,
        /// What was expected.
        detail: String,
    },
    /// A path is empty or too deep.
    #[error("bad path {path:?}: {detail}")]
    BadPath {
        /// The path.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// A file's data runs are inconsistent.
    #[error("{path}: data runs: {detail}")]
    Runs {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The file's content cannot be read by this crate (compressed, encrypted).
    #[error("{path}: {detail}")]
    Unsupported {
        /// The file.
        path: String,
        /// Why.
        detail: String,
    },
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        // Reads through a `FileView` already name the file and volume offset.
        Error::Corrupt {
            detail: e.to_string(),
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match &e {
            Error::Io { source, .. } => source.kind(),
            Error::Unsupported { .. } => io::ErrorKind::Unsupported,
            Error::NotFound { .. } => io::ErrorKind::NotFound,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
