//! Key nodes (`nk`), subkey lists (`li`, `lf`, `lh`, `ri`), value lists and security cells (`sk`).
//!
//! Key node layout (offsets into the cell data):
//!
//! | off | len | field |
//! |----:|----:|-------|
//! | 0 | 2 | `nk` |
//! | 2 | 2 | flags (0x20 = compressed name, 0x04 = root, 0x10 = symlink, 0x40 = predefined handle) |
//! | 4 | 8 | last written FILETIME |
//! | 16 | 4 | parent key node |
//! | 20 | 4 | number of subkeys |
//! | 28 | 4 | subkey list |
//! | 36 | 4 | number of values |
//! | 40 | 4 | value list |
//! | 44 | 4 | security cell |
//! | 48 | 4 | class name cell |
//! | 72 | 2 | name length in bytes |
//! | 74 | 2 | class name length in bytes |
//! | 76 | n | name |
//!
//! A subkey list is `li` (offsets), `lf` (offset + 4-byte name hint), `lh` (offset + name hash)
//! or `ri` (offsets of `li`/`lf`/`lh` lists). Each starts with a 2-byte signature and a 2-byte
//! count. Elements are sorted by upper-cased name.

use std::collections::HashSet;

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{escape_bytes, Error, Result};
use crate::hive::Hive;
use crate::name::Name;
use crate::value::Value;

/// Key node flag: the name is stored one byte a character.
pub const KEY_COMP_NAME: u16 = 0x0020;
/// Key node flag: the root key of the hive.
pub const KEY_HIVE_ENTRY: u16 = 0x0004;
/// Key node flag: the key cannot be deleted (set on the root).
pub const KEY_NO_DELETE: u16 = 0x0008;
/// Key node flag: a symbolic link (its target is in the `SymbolicLinkValue` value).
pub const KEY_SYM_LINK: u16 = 0x0010;
/// Key node flag: the value count holds a predefined handle, not a count.
pub const KEY_PREDEF_HANDLE: u16 = 0x0040;

/// Size of the fixed part of a key node.
pub(crate) const NK_FIXED: usize = 76;

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct RawKeyNode {
    pub signature: [u8; 2],
    pub flags: U16,
    pub timestamp: U64,
    pub access_bits: U32,
    pub parent: U32,
    pub subkey_count: U32,
    pub volatile_subkey_count: U32,
    pub subkeys: U32,
    pub volatile_subkeys: U32,
    pub value_count: U32,
    pub values: U32,
    pub security: U32,
    pub class: U32,
    pub max_name_len: U32,
    pub max_class_len: U32,
    pub max_value_name_len: U32,
    pub max_value_data_len: U32,
    pub work_var: U32,
    pub name_len: U16,
    pub class_len: U16,
}

const _: () = assert!(std::mem::size_of::<RawKeyNode>() == NK_FIXED);

/// A key node in a hive.
#[derive(Clone, Copy)]
pub struct Key<'h> {
    hive: &'h Hive,
    cell: u32,
    hdr: &'h RawKeyNode,
    name: Name<'h>,
}

impl std::fmt::Debug for Key<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("cell", &format_args!("{:#x}", self.cell))
            .field("name", &self.name)
            .finish()
    }
}

/// A security cell (`sk`) referenced by a key.
#[derive(Debug, Clone, Copy)]
pub struct Security<'h> {
    /// Cell offset of the `sk` record.
    pub cell: u32,
    /// How many keys reference it.
    pub ref_count: u32,
    /// The self-relative security descriptor.
    pub descriptor: &'h [u8],
}

/// The subkey list record kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// `li`: offsets only.
    Li,
    /// `lf`: offsets with a four-character name hint.
    Lf,
    /// `lh`: offsets with a name hash.
    Lh,
    /// `ri`: offsets of other lists.
    Ri,
}

impl<'h> Key<'h> {
    /// Reads the key node at `cell`.
    pub fn new(hive: &'h Hive, cell: u32) -> Result<Key<'h>> {
        let data = hive.cell(cell)?;
        let (hdr, _) = RawKeyNode::ref_from_prefix(data).map_err(|_| {
            Error::record(
                "key node",
                cell,
                "cell size",
                format!("at least {NK_FIXED} bytes"),
                data.len(),
            )
        })?;
        if &hdr.signature != b"nk" {
            return Err(Error::record(
                "key node",
                cell,
                "signature",
                "\"nk\"",
                escape_bytes(&hdr.signature),
            ));
        }
        let len = usize::from(hdr.name_len.get());
        let raw = data.get(NK_FIXED..NK_FIXED + len).ok_or_else(|| {
            Error::record(
                "key node",
                cell,
                "name length",
                format!(
                    "at most {} bytes (the rest of the cell)",
                    data.len() - NK_FIXED
                ),
                len,
            )
        })?;
        let flags = hdr.flags.get();
        Ok(Key {
            hive,
            cell,
            hdr,
            name: Name::new(raw, flags & KEY_COMP_NAME != 0),
        })
    }

    /// The hive this key belongs to.
    pub fn hive(&self) -> &'h Hive {
        self.hive
    }

    /// Cell offset of the key node.
    pub fn cell(&self) -> u32 {
        self.cell
    }

    /// The key's name.
    pub fn name(&self) -> Name<'h> {
        self.name
    }

    /// Flags field.
    pub fn flags(&self) -> u16 {
        self.hdr.flags.get()
    }

    /// Last written time (FILETIME).
    pub fn timestamp(&self) -> u64 {
        self.hdr.timestamp.get()
    }

    /// Parent key node offset as stored.
    pub fn parent_cell(&self) -> u32 {
        self.hdr.parent.get()
    }

    /// Number of (stable) subkeys as stored in the key node.
    pub fn subkey_count(&self) -> u32 {
        self.hdr.subkey_count.get()
    }

    /// Number of values as stored in the key node (zero for predefined-handle keys).
    pub fn value_count(&self) -> u32 {
        if self.flags() & KEY_PREDEF_HANDLE != 0 {
            0
        } else {
            self.hdr.value_count.get()
        }
    }

    /// Offset of the security cell as stored.
    pub fn security_cell(&self) -> u32 {
        self.hdr.security.get()
    }

    /// Offset of the subkey list as stored.
    pub fn subkey_list_cell(&self) -> u32 {
        self.hdr.subkeys.get()
    }

    /// Offset of the value list as stored.
    pub fn value_list_cell(&self) -> u32 {
        self.hdr.values.get()
    }

    /// The class name, if the key has one.
    pub fn class_name(&self) -> Result<Option<String>> {
        let len = usize::from(self.hdr.class_len.get());
        let off = self.hdr.class.get();
        if len == 0 || off == u32::MAX {
            return Ok(None);
        }
        let data = self.hive.cell(off)?;
        let raw = data.get(..len).ok_or_else(|| {
            Error::record(
                "class name",
                off,
                "length",
                format!("at most {}", data.len()),
                len,
            )
        })?;
        Ok(Some(Name::new(raw, false).to_string_lossy()))
    }

    /// The security cell this key references.
    pub fn security(&self) -> Result<Security<'h>> {
        let off = self.hdr.security.get();
        let data = self.hive.cell(off)?;
        let field = |o: usize| {
            crate::data::u32_at(data, o).ok_or_else(|| {
                Error::record(
                    "security cell",
                    off,
                    "cell size",
                    "at least 20 bytes",
                    data.len(),
                )
            })
        };
        if data.get(..2) != Some(b"sk") {
            return Err(Error::record(
                "security cell",
                off,
                "signature",
                "\"sk\"",
                escape_bytes(&data[..data.len().min(2)]),
            ));
        }
        let ref_count = field(12)?;
        let size = field(16)? as usize;
        let descriptor = data.get(20..20 + size).ok_or_else(|| {
            Error::record(
                "security cell",
                off,
                "descriptor size",
                format!("at most {}", data.len().saturating_sub(20)),
                size,
            )
        })?;
        Ok(Security {
            cell: off,
            ref_count,
            descriptor,
        })
    }

    /// The cell offsets of all subkeys, in stored (sorted) order.
    ///
    /// The list nesting is checked (`ri` holds only leaves), no leaf may appear twice, and the
    /// number of entries must equal the key node's subkey count.
    pub fn subkey_cells(&self) -> Result<Vec<u32>> {
        let count = self.subkey_count();
        if count == 0 {
            return Ok(Vec::new());
        }
        let list = self.hdr.subkeys.get();
        let mut out = Vec::new();
        let (kind, elems) = read_list(self.hive, list)?;
        match kind {
            ListKind::Ri => {
                let mut seen = HashSet::new();
                for leaf in elems.iter() {
                    if !seen.insert(leaf) {
                        return Err(Error::record(
                            "index root",
                            list,
                            "element",
                            "each leaf list once",
                            format!("{leaf:#x} twice"),
                        ));
                    }
                    let (k, leaf_elems) = read_list(self.hive, leaf)?;
                    if k == ListKind::Ri {
                        return Err(Error::record(
                            "index root",
                            list,
                            "element",
                            "a li, lf or lh list",
                            format!("another index root at {leaf:#x}"),
                        ));
                    }
                    if out.len() + leaf_elems.len() > count as usize {
                        return Err(count_mismatch(
                            self.cell,
                            count,
                            out.len() + leaf_elems.len(),
                        ));
                    }
                    out.extend(leaf_elems.iter());
                }
            }
            _ => {
                if elems.len() > count as usize {
                    return Err(count_mismatch(self.cell, count, elems.len()));
                }
                out.extend(elems.iter());
            }
        }
        if out.len() != count as usize {
            return Err(count_mismatch(self.cell, count, out.len()));
        }
        Ok(out)
    }

    /// All subkeys, in stored order.
    pub fn subkeys(&self) -> Result<Vec<Key<'h>>> {
        self.subkey_cells()?
            .into_iter()
            .map(|c| Key::new(self.hive, c))
            .collect()
    }

    /// The subkey with this name (compared case-insensitively), if any.
    pub fn subkey(&self, name: &str) -> Result<Option<Key<'h>>> {
        for c in self.subkey_cells()? {
            let k = Key::new(self.hive, c)?;
            if k.name.eq_ignore_case(name) {
                return Ok(Some(k));
            }
        }
        Ok(None)
    }

    /// The cell offsets of the key's values, in stored order.
    pub fn value_cells(&self) -> Result<Vec<u32>> {
        let count = self.value_count() as usize;
        if count == 0 {
            return Ok(Vec::new());
        }
        let off = self.hdr.values.get();
        let data = self.hive.cell(off)?;
        let bytes = count
            .checked_mul(4)
            .and_then(|n| data.get(..n))
            .ok_or_else(|| {
                Error::record(
                    "value list",
                    off,
                    "cell size",
                    format!("{} bytes for {count} values", count * 4),
                    data.len(),
                )
            })?;
        Ok(bytes
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// All values, in stored order.
    pub fn values(&self) -> Result<Vec<Value<'h>>> {
        self.value_cells()?
            .into_iter()
            .map(|c| Value::new(self.hive, c))
            .collect()
    }

    /// The value with this name (case-insensitive; `""` is the default value), if any.
    pub fn value(&self, name: &str) -> Result<Option<Value<'h>>> {
        for c in self.value_cells()? {
            let v = Value::new(self.hive, c)?;
            if v.name().eq_ignore_case(name) {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// The value with this name, decoded ([`crate::RegData::decode`]); `None` when it is
    /// absent or cannot be read.
    pub fn decoded_value(&self, name: &str) -> Option<crate::RegData> {
        let v = self.value(name).ok()??;
        Some(crate::RegData::decode(v.data_type(), &v.data().ok()?))
    }

    /// The number held by a REG_DWORD (or REG_DWORD_BIG_ENDIAN) value of four bytes; `None`
    /// when the value is absent, unreadable or of another type.
    pub fn dword_value(&self, name: &str) -> Option<u32> {
        match self.decoded_value(name)? {
            crate::RegData::Dword(d) => Some(d),
            _ => None,
        }
    }

    /// The text of a REG_SZ, REG_EXPAND_SZ or REG_LINK value (up to its first NUL); `None`
    /// when the value is absent, unreadable or of another type.
    pub fn string_value(&self, name: &str) -> Option<String> {
        match self.decoded_value(name)? {
            crate::RegData::String(s) => Some(s),
            _ => None,
        }
    }
}

fn count_mismatch(cell: u32, count: u32, found: usize) -> Error {
    Error::record(
        "key node",
        cell,
        "number of subkeys",
        format!("{found} (entries in its subkey lists)"),
        count,
    )
}

/// The elements of one subkey list: its kind and the offsets it holds.
pub(crate) struct ListElems<'h> {
    data: &'h [u8],
    stride: usize,
    count: usize,
}

impl ListElems<'_> {
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.count).map(|i| {
            let o = 4 + i * self.stride;
            let b = &self.data[o..o + 4];
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        })
    }
}

/// Reads a subkey list header and checks that its elements fit in the cell.
pub(crate) fn read_list(hive: &Hive, off: u32) -> Result<(ListKind, ListElems<'_>)> {
    let data = hive.cell(off)?;
    let Some(head) = data.get(..4) else {
        return Err(Error::record(
            "subkey list",
            off,
            "cell size",
            "at least 4 bytes",
            data.len(),
        ));
    };
    let (kind, stride) = match &head[..2] {
        b"li" => (ListKind::Li, 4),
        b"lf" => (ListKind::Lf, 8),
        b"lh" => (ListKind::Lh, 8),
        b"ri" => (ListKind::Ri, 4),
        other => {
            return Err(Error::record(
                "subkey list",
                off,
                "signature",
                "\"li\", \"lf\", \"lh\" or \"ri\"",
                escape_bytes(other),
            ))
        }
    };
    let count = usize::from(u16::from_le_bytes([head[2], head[3]]));
    if data.len() < 4 + count * stride {
        return Err(Error::record(
            "subkey list",
            off,
            "number of elements",
            format!(
                "at most {} for a cell of {} bytes",
                (data.len() - 4) / stride,
                data.len()
            ),
            count,
        ));
    }
    Ok((
        kind,
        ListElems {
            data,
            stride,
            count,
        },
    ))
}
