//! Display names of Windows firewall rules in the VM's own language: string tables read out of
//! PE resource files (`FirewallAPI.dll.mui`), Windows language identifiers, and a built-in
//! table of the Remote Desktop group and rule names for when only the hive is at hand.
//!
//! Firewall rules store indirect strings (`Name=@FirewallAPI.dll,-28775`); netsh's `name=` and
//! `group=` match the *display* text, which Windows loads from the language file of its UI
//! language, `System32\<lang>\FirewallAPI.dll.mui` (for example `nl-NL`). This crate turns
//! such a file into a [`StringTable`], resolves indirect strings against it, and maps the
//! registry's `InstallLanguage` (`0413`) to a language tag and back.
//!
//! # Getting started
//!
//! 1. Read the language file's bytes and parse them: [`StringTable::parse`] takes any PE32 or
//!    PE32+ file (a resource-only `.mui` or a full DLL) and decodes every `RT_STRING` block in
//!    every language present. Damage that spares part of the table is reported in
//!    [`StringTable::notes`]; a file that yields nothing is an [`Error`].
//! 2. Optionally say which language to prefer when a file holds several:
//!    [`StringTable::prefer_language`] with a LANGID (from [`lang::parse_install_language`] or
//!    [`lang::by_tag`]).
//! 3. Look strings up by ID ([`StringTable::get`]), or put the table in a [`StringTables`]
//!    under its file name and resolve indirect strings with [`resolve_indirect`].
//! 4. Without the language file, [`builtin`] gives the Remote Desktop names that public
//!    sources document for the VM's language, and `None` for anything not sourced.
//!
//! ```no_run
//! use guestwall_mui::{lang, resolve_indirect, StringTable, StringTables};
//! let bytes = std::fs::read("Windows/System32/nl-NL/FirewallAPI.dll.mui")?;
//! let mut table = StringTable::parse(&bytes)?;
//! for note in table.notes() {
//!     eprintln!("warning: {note}");
//! }
//! if let Some(langid) = lang::parse_install_language("0413") {
//!     table.prefer_language(langid);
//! }
//! let mut tables = StringTables::new();
//! tables.insert("FirewallAPI.dll.mui", table);
//! let name = resolve_indirect("@FirewallAPI.dll,-28775", &tables);
//! assert_eq!(name.as_deref(), Some("Extern bureaublad - Gebruikersmodus (TCP-In)"));
//! // Only the hive at hand: the built-in table.
//! assert_eq!(
//!     guestwall_mui::builtin("nl-NL", "@FirewallAPI.dll,-28752"),
//!     Some("Extern bureaublad")
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Choice of PE crate
//!
//! PE headers, the section table and the resource directory structures come from the
//! [`object`] crate (gimli-rs; the crate the Rust standard library's backtraces use, fuzzed
//! upstream, maintained with frequent releases), built with only its PE reader. `pelite` reads
//! resources too, but `object` is the more widely used and more actively maintained of the
//! two. `object` gives typed, bounds-checked views of the tables and no policy:
//! the walk of the resource tree (depth cap, loop detection, work and size budgets) and the
//! decoding of string blocks are done here, because `object` is written for trusted input and
//! says so.
//!
//! # Security
//!
//! Language files come from broken or compromised machines and are treated as hostile.
//! Nothing derived from the file panics; the resource tree is walked to its fixed depth of
//! three levels with a visited set, so loops end; the number of directory entries visited and
//! the bytes of string data decoded are both bounded by the file's size, so memory and time
//! are linear in the input. See `docs/design-mui.md`.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod builtin;
mod indirect;
pub mod lang;
mod pe;
mod resource;
mod strings;

pub use builtin::{
    builtin, builtin_entry, builtin_for_langid, builtin_names, BuiltinName, Sourcing,
};
pub use indirect::{parse_indirect, resolve_indirect, IndirectString, StringTables};
pub use strings::{Note, StringTable};

/// Everything that can go wrong reading a PE resource file. Messages name the file offset at
/// fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file is not a PE image (no `MZ`/`PE` signatures).
    #[error("not a PE file: {detail}")]
    NotPe {
        /// What was found instead.
        detail: String,
    },
    /// The PE headers or section table are damaged.
    #[error("PE headers (file offset {offset:#x}): {detail}")]
    Headers {
        /// File offset of the structure at fault.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// The file has no resource directory, or it cannot be located in the file.
    #[error("no resources: {detail}")]
    NoResources {
        /// Why.
        detail: String,
    },
    /// The resource directory is damaged beyond use: nothing could be decoded.
    #[error("resource directory (file offset {offset:#x}): {detail}")]
    Resource {
        /// File offset of the first structure at fault.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// The resources hold no string table (`RT_STRING`).
    #[error("no string table (RT_STRING) in the resources; resource types present: {types}")]
    NoStrings {
        /// The resource types that are present, for the message.
        types: String,
    },
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
