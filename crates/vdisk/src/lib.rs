//! Disk images without mounting: raw images and block devices, VHD (fixed, dynamic,
//! differencing) and VHDX (fixed, dynamic, differencing, with a dirty log replayed in memory),
//! and the MBR/GPT partition tables on them.
//!
//! # Getting started
//!
//! 1. Open an image with [`Disk::open`]: the container is detected by content, never by
//!    extension, and the parents of a differencing disk are found from its locators.
//!    [`Disk::warnings`] says what was repaired in memory (a replayed VHDX log, a damaged copy
//!    set aside).
//! 2. Read the virtual disk through [`ReadAt`] (positional reads), or list its partitions
//!    with [`PartitionTable::read`] and read one through [`Partition::view`].
//! 3. Before writing in place, ask [`Disk::map`] where a range lives: only
//!    [`Extent::writable_in_place`] extents may be overwritten, and never when
//!    [`Disk::log_dirty`].
//!
//! ```no_run
//! use guestwall_vdisk::{Disk, PartitionTable};
//! let disk = Disk::open("os-disk.vhdx")?;
//! let table = PartitionTable::read(&disk, disk.logical_sector_size())?;
//! for p in &table.partitions {
//!     println!("{} {} {:#x}+{:#x} {}", p.index, p.kind.name(), p.start, p.len, p.name);
//! }
//! # Ok::<(), guestwall_vdisk::Error>(())
//! ```
//!
//! Everything read from an image is treated as hostile: offsets and lengths are checked before
//! use, allocations are bounded by the file's size, parent chains have a depth cap and loop
//! detection, and nothing panics. The formats are described in `docs/design-disk.md`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bytes;
mod container;
mod disk;
mod error;
mod file;
mod guid;
mod overlay;
pub mod partition;
pub mod vhd;
pub mod vhdx;
mod vhdx_log;

pub use container::{BlockState, Reason};
pub use disk::{
    detect, Detected, Disk, Extent, ExtentKind, Format, FsOpener, Layer, NoParents, OpenOptions,
    ParentOpener, MAX_CHAIN_DEPTH,
};
pub use error::{Error, Result};
pub use guestwall_source::ReadAt;
pub use guid::Guid;
pub use partition::{Partition, PartitionKind, PartitionTable, Scheme};
pub use vhdx::{VhdxHeader, VhdxHeaderInfo, VhdxParams};
pub use vhdx_log::MAX_LOG;
