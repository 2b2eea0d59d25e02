//! The walk of the resource tree down to the string blocks: type (`RT_STRING` = 6) → name
//! (block ID) → language (LANGID) → data entry, with every offset checked, a visited set of
//! tables (a loop is a note, not a hang), and budgets that bound the work by the file's size.

use crate::pe::{Image, Mapped};
use crate::strings::StringTable;
use crate::{Error, Result};
use object::pe::ImageResourceDirectoryEntry;
use object::read::pe::{
    ResourceDirectory, ResourceDirectoryEntryData, ResourceDirectoryTable, ResourceNameOrId,
};
use object::LittleEndian as LE;
use std::collections::HashSet;

/// Resource type ID of string tables.
const RT_STRING: u16 = 6;
/// The highest block ID: string IDs are 16-bit, 16 to a block.
const MAX_BLOCK_ID: u16 = 4096;
/// Size of a directory table header and of one entry.
const TABLE_HEADER: u64 = 16;
const ENTRY: u64 = 8;
/// Resource types listed at most in [`Found::types_present`].
const MAX_TYPES_LISTED: usize = 16;

/// What the root of the tree holds, for the caller's messages.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// An `RT_STRING` type entry exists.
    pub(crate) string_type: bool,
    types: Vec<String>,
    types_more: usize,
}

impl Found {
    /// The resource types present, for a message.
    pub(crate) fn types_present(&self) -> String {
        if self.types.is_empty() {
            return "none".into();
        }
        let mut s = self.types.join(", ");
        if self.types_more > 0 {
            s.push_str(&format!(" and {} more", self.types_more));
        }
        s
    }

    fn push_type(&mut self, name: String) {
        if self.types.len() < MAX_TYPES_LISTED {
            self.types.push(name);
        } else {
            self.types_more += 1;
        }
    }
}

/// The state of one walk.
struct Walk<'a, 'i> {
    image: &'i Image<'a>,
    dir: ResourceDirectory<'a>,
    /// File offset of the tree's root.
    base: u64,
    visited: HashSet<u32>,
    /// Directory entries that may still be looked at. A well-formed tree's tables do not
    /// overlap, so it has at most one entry per 8 bytes of the section.
    entries_left: usize,
    /// Bytes of string data that may still be decoded. A well-formed file's blocks do not
    /// overlap, so their sizes add up to less than the file.
    bytes_left: usize,
    stopped: bool,
}

/// Walks the tree at `rsrc` and decodes every string block into `table`.
pub(crate) fn walk(
    image: &Image<'_>,
    rsrc: &Mapped<'_>,
    file_len: usize,
    table: &mut StringTable,
) -> Result<Found> {
    let dir = ResourceDirectory::new(rsrc.bytes);
    let root = dir.root().map_err(|e| Error::Resource {
        offset: rsrc.file_off,
        detail: format!("root table: {e}"),
    })?;
    let mut w = Walk {
        image,
        dir,
        base: rsrc.file_off,
        visited: HashSet::from([0]),
        entries_left: rsrc.bytes.len() / ENTRY as usize + 16,
        bytes_left: file_len,
        stopped: false,
    };
    let mut found = Found::default();
    for (i, entry) in root.entries.iter().enumerate() {
        if !w.spend_entry(0, table) {
            break;
        }
        let at = w.entry_offset(0, i);
        match entry.name_or_id() {
            ResourceNameOrId::Id(RT_STRING) => {
                found.string_type = true;
                found.push_type("RT_STRING".into());
                w.type_entry(entry, at, table);
            }
            ResourceNameOrId::Id(id) => found.push_type(type_name(id)),
            ResourceNameOrId::Name(name) => {
                let raw = name.raw_data(w.dir).unwrap_or_default();
                if is_mui(raw) {
                    table.set_has_mui();
                }
                found.push_type(format!("\"{}\"", lossy_name(raw)));
            }
        }
        if w.stopped {
            break;
        }
    }
    Ok(found)
}

impl<'a> Walk<'a, '_> {
    /// File offset of entry `i` of the table at tree offset `table`.
    fn entry_offset(&self, table: u32, i: usize) -> u64 {
        self.base
            .saturating_add(u64::from(table))
            .saturating_add(TABLE_HEADER)
            .saturating_add((i as u64).saturating_mul(ENTRY))
    }

    fn spend_entry(&mut self, table_off: u32, table: &mut StringTable) -> bool {
        if self.entries_left == 0 {
            if !self.stopped {
                table.note(
                    self.base.saturating_add(u64::from(table_off)),
                    "more directory entries than the resource section can hold (tables overlap); the walk stops here",
                );
            }
            self.stopped = true;
            return false;
        }
        self.entries_left -= 1;
        true
    }

    /// Enters the subtable an entry points to, once: a second visit (a loop, or two entries
    /// sharing a table) is a note.
    fn enter(
        &mut self,
        entry: &ImageResourceDirectoryEntry,
        at: u64,
        what: &str,
        table: &mut StringTable,
    ) -> Option<(u32, ResourceDirectoryTable<'a>)> {
        let off = entry.data_offset();
        if !self.visited.insert(off) {
            table.note(
                at,
                format!(
                    "{what} points to the table at file offset {:#x}, which was already visited (a loop); skipped",
                    self.base.saturating_add(u64::from(off))
                ),
            );
            return None;
        }
        match entry.data(self.dir) {
            Ok(ResourceDirectoryEntryData::Table(t)) => Some((off, t)),
            Ok(ResourceDirectoryEntryData::Data(_)) => None,
            Err(e) => {
                table.note(
                    at,
                    format!(
                        "{what} points to a table at tree offset {off:#x} that cannot be read ({e}); skipped"
                    ),
                );
                None
            }
        }
    }

    /// Level 1: the `RT_STRING` type entry → its table of blocks.
    fn type_entry(
        &mut self,
        entry: &ImageResourceDirectoryEntry,
        at: u64,
        table: &mut StringTable,
    ) {
        if !entry.is_table() {
            table.note(
                at,
                "the RT_STRING entry points to data, not to a table of string blocks; skipped",
            );
            return;
        }
        let Some((off, blocks)) = self.enter(entry, at, "the RT_STRING entry", table) else {
            return;
        };
        for (j, block) in blocks.entries.iter().enumerate() {
            if !self.spend_entry(off, table) {
                return;
            }
            let at = self.entry_offset(off, j);
            let block_id = match block.name_or_id() {
                ResourceNameOrId::Id(id) if (1..=MAX_BLOCK_ID).contains(&id) => id,
                ResourceNameOrId::Id(id) => {
                    table.note(
                        at,
                        format!("string block ID {id} is outside 1..=4096; skipped"),
                    );
                    continue;
                }
                ResourceNameOrId::Name(_) => {
                    table.note(at, "a string block with a name instead of an ID; skipped");
                    continue;
                }
            };
            if !block.is_table() {
                table.note(
                    at,
                    format!("string block {block_id} points to data, not to a table of languages; skipped"),
                );
                continue;
            }
            let what = format!("string block {block_id}");
            if let Some((loff, langs)) = self.enter(block, at, &what, table) {
                self.languages(block_id, loff, &langs, table);
            }
            if self.stopped {
                return;
            }
        }
    }

    /// Level 3: the languages of one block → the data entries.
    fn languages(
        &mut self,
        block_id: u16,
        off: u32,
        langs: &ResourceDirectoryTable<'a>,
        table: &mut StringTable,
    ) {
        for (k, lang) in langs.entries.iter().enumerate() {
            if !self.spend_entry(off, table) {
                return;
            }
            let at = self.entry_offset(off, k);
            let langid = match lang.name_or_id() {
                ResourceNameOrId::Id(id) => id,
                ResourceNameOrId::Name(_) => {
                    table.note(
                        at,
                        format!("string block {block_id}: a language with a name instead of a LANGID; skipped"),
                    );
                    continue;
                }
            };
            if lang.is_table() {
                let target = lang.data_offset();
                let why = if self.visited.contains(&target) {
                    "points back to a table already visited (a loop)"
                } else {
                    "points to a fourth level of tables (the tree has three: type, name, language)"
                };
                table.note(
                    at,
                    format!("string block {block_id} (language {langid:#06x}) {why}; skipped"),
                );
                continue;
            }
            let data = match lang.data(self.dir) {
                Ok(ResourceDirectoryEntryData::Data(d)) => d,
                Ok(ResourceDirectoryEntryData::Table(_)) => continue,
                Err(e) => {
                    table.note(
                        at,
                        format!(
                            "string block {block_id} (language {langid:#06x}): data entry at tree offset {:#x} cannot be read ({e}); skipped",
                            lang.data_offset()
                        ),
                    );
                    continue;
                }
            };
            let rva = data.offset_to_data.get(LE);
            let size = data.size.get(LE);
            let entry_at = self.base.saturating_add(u64::from(lang.data_offset()));
            if size == 0 {
                table.note(
                    entry_at,
                    format!("string block {block_id} (language {langid:#06x}) has size 0; skipped"),
                );
                continue;
            }
            let Some(m) = self.image.map(rva, size) else {
                table.note(
                    entry_at,
                    format!(
                        "string block {block_id} (language {langid:#06x}): its data at RVA {rva:#x} ({size:#x} bytes) is not in the file; skipped"
                    ),
                );
                continue;
            };
            if m.short {
                table.note(
                    entry_at,
                    format!(
                        "string block {block_id} (language {langid:#06x}): {size:#x} bytes at RVA {rva:#x} but only {:#x} are in the file (truncated?); the strings that fit are kept",
                        m.bytes.len()
                    ),
                );
            }
            if m.bytes.len() > self.bytes_left {
                table.note(
                    entry_at,
                    "the string blocks add up to more bytes than the file holds (they overlap); the walk stops here",
                );
                self.stopped = true;
                return;
            }
            self.bytes_left -= m.bytes.len();
            table.decode_block(block_id, langid, m.bytes, m.file_off);
        }
    }
}

/// True for the name `MUI` (UTF-16LE, any case).
fn is_mui(raw: &[u8]) -> bool {
    raw.len() == 6
        && raw.chunks_exact(2).zip(b"MUI").all(|(c, &want)| {
            c.get(1) == Some(&0) && c.first().map(u8::to_ascii_uppercase) == Some(want)
        })
}

/// A resource name for messages: at most 32 characters, lossy.
fn lossy_name(raw: &[u8]) -> String {
    let units = raw.chunks_exact(2).take(32).map(|c| {
        u16::from_le_bytes([
            c.first().copied().unwrap_or(0),
            c.get(1).copied().unwrap_or(0),
        ])
    });
    let mut s: String = char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    if raw.len() > 64 {
        s.push('…');
    }
    s
}

/// The winuser.h name of a resource type ID.
fn type_name(id: u16) -> String {
    let name = match id {
        1 => "RT_CURSOR",
        2 => "RT_BITMAP",
        3 => "RT_ICON",
        4 => "RT_MENU",
        5 => "RT_DIALOG",
        6 => "RT_STRING",
        7 => "RT_FONTDIR",
        8 => "RT_FONT",
        9 => "RT_ACCELERATOR",
        10 => "RT_RCDATA",
        11 => "RT_MESSAGETABLE",
        12 => "RT_GROUP_CURSOR",
        14 => "RT_GROUP_ICON",
        16 => "RT_VERSION",
        17 => "RT_DLGINCLUDE",
        19 => "RT_PLUGPLAY",
        20 => "RT_VXD",
        21 => "RT_ANICURSOR",
        22 => "RT_ANIICON",
        23 => "RT_HTML",
        24 => "RT_MANIFEST",
        _ => return format!("#{id}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let mui: Vec<u8> = "mUi".encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert!(is_mui(&mui));
        let muj: Vec<u8> = "MUJ".encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert!(!is_mui(&muj));
        assert!(!is_mui(b"M\0U\0"));
        assert_eq!(type_name(16), "RT_VERSION");
        assert_eq!(type_name(240), "#240");
        let long: Vec<u8> = "x"
            .repeat(40)
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(lossy_name(&long).chars().count(), 33);
    }
}
