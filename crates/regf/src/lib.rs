//! A reader for Windows registry hive files (regf), with transaction-log replay.
//!
//! # Getting started
//!
//! 1. Open a hive with [`Hive::open`]. A dirty hive (an unfinished write) is recovered in memory
//!    from the `.LOG1`/`.LOG2`/`.LOG` files beside it; [`Hive::recovery`] says what was applied
//!    and [`Hive::warnings`] what could not be.
//! 2. Find a key with [`Hive::key`] (a `\`-separated path relative to the root key, matched
//!    case-insensitively the way Windows matches names), then read [`Key::values`],
//!    [`Key::value`] and [`Key::subkeys`].
//! 3. Decode data for display with [`RegData::decode`], or write whole subtrees with
//!    [`export_reg`] (a `.reg` file) and [`dump_jsonl`] (JSON Lines).
//!
//! ```no_run
//! use guestwall_regf::{Hive, RegData};
//! let hive = Hive::open("SYSTEM")?;
//! let select = hive.key("Select")?;
//! if let Some(v) = select.value("Current")? {
//!     println!("{}", RegData::decode(v.data_type(), &v.data()?));
//! }
//! # Ok::<(), guestwall_regf::Error>(())
//! ```
//!
//! # Robustness
//!
//! Every offset and length read from the file is checked before use, through one function
//! ([`BinMap::cell`]) for all cell references. Tree walks use an explicit stack with a depth
//! cap ([`MAX_KEY_DEPTH`]) and a visited set, so a file that points back into itself gives
//! [`Error::Cycle`] instead of a hang or a stack overflow. Allocations are bounded by the file
//! size. Nothing derived from file contents panics.
//!
//! The format is described in `docs/design-regf.md` at the root of the repository.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod base_block;
mod bins;
pub mod build;
pub mod data;
mod error;
mod export;
mod hive;
mod key;
mod lazy;
mod log;
mod name;
pub mod regfile;
pub mod report;
pub mod save;
mod source;
mod value;
pub mod write;

pub use base_block::{
    checksum, filetime_compact, filetime_to_string, BaseBlock, FileType, BASE_BLOCK_LEN,
};
pub use bins::{Bin, BinMap, CellInfo, CellIter, HBIN_HEADER_LEN, PAGE};
pub use data::{
    dword, reg_multi_sz, reg_sz, type_label, type_name, u32_at, u64_at, utf16_until_nul, utf16le,
    RegData,
};
pub use error::{error_chain, CellPos, Error, Result};
pub use export::{
    default_root_prefix, dump_jsonl, export_reg, format_data, format_value, json_string,
    ExportOptions, RegEncoding,
};
pub use guestwall_mmap::{AnonBuf, FileBytes};
pub use guestwall_source::Location;
pub use hive::{split_path, CellStats, Hive, OpenOptions, MAX_KEY_DEPTH};
pub use key::{
    Key, ListKind, Security, KEY_COMP_NAME, KEY_HIVE_ENTRY, KEY_NO_DELETE, KEY_PREDEF_HANDLE,
    KEY_SYM_LINK,
};
pub use lazy::MAX_PROBE_PAGES;
pub use log::{
    find_logs, marvin32, max_sequence, recover, GrowBuf, LogFormat, LogInput, LogReport, Recovery,
    MARVIN_SEED,
};
pub use name::{
    cmp_units_ignore_case, eq_ignore_case, lh_hash, lh_hash_str, upcase, upcase_str, Name,
};
pub use source::{HiveFile, HiveSource, InMemory, ReaderSource};
pub use value::{DataStorage, Value, BIG_DATA_SEGMENT, DATA_INLINE, VALUE_COMP_NAME};
