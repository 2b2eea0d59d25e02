//! String tables: `RT_STRING` blocks decoded into a map from string ID to text, per language.
//!
//! A block holds 16 strings: block ID `n` (a resource name, 1 to 4096) holds string IDs
//! `(n - 1) * 16` to `(n - 1) * 16 + 15`. Each string is a `u16` count of UTF-16LE code units
//! followed by that many units, with no terminator; a count of 0 means "no string with this
//! ID" (LoadString fails for it).

use crate::{pe::Image, resource, Error, Result};
use std::collections::BTreeMap;
use std::fmt;

/// Notes kept at most; more are counted (see [`StringTable::notes_dropped`]).
const MAX_NOTES: usize = 64;

/// A problem found while reading a table that did not stop it: the strings before and beside
/// it were kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// File offset of the structure at fault.
    pub offset: u64,
    /// What is wrong, and what was skipped.
    pub detail: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "file offset {:#x}: {}", self.offset, self.detail)
    }
}

/// The strings of one PE file's `RT_STRING` resources, in every language present.
#[derive(Debug, Clone, Default)]
pub struct StringTable {
    /// String ID → (LANGID, text), languages in the order the directory lists them.
    strings: BTreeMap<u16, Vec<(u16, String)>>,
    /// LANGIDs present, in directory order.
    languages: Vec<u16>,
    preferred: Option<u16>,
    notes: Vec<Note>,
    notes_dropped: usize,
    is_64: Option<bool>,
    has_mui: bool,
}

impl StringTable {
    /// An empty table, to fill with [`StringTable::insert`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads every string of a PE32 or PE32+ file's `RT_STRING` resources.
    ///
    /// Damage that leaves part of the table readable (a block whose data lies past the end of
    /// the file, a string longer than its block, a directory entry that loops) is recorded in
    /// [`StringTable::notes`] and the rest is kept. A file that is not PE, has no resources or
    /// no string table, or whose every string block is damaged, is an error.
    pub fn parse(bytes: &[u8]) -> Result<StringTable> {
        let image = Image::parse(bytes)?;
        let mut table = StringTable {
            is_64: Some(image.is_64),
            ..StringTable::default()
        };
        let mut pe_notes = Vec::new();
        let rsrc = image.resource_directory(&mut pe_notes);
        for (offset, detail) in pe_notes {
            table.note(offset, detail);
        }
        let rsrc = rsrc?;
        let found = resource::walk(&image, &rsrc, bytes.len(), &mut table)?;
        if table.strings.is_empty() {
            if !found.string_type {
                return Err(Error::NoStrings {
                    types: found.types_present(),
                });
            }
            if let Some(first) = table.notes.first() {
                let n = table.notes.len() + table.notes_dropped;
                return Err(Error::Resource {
                    offset: first.offset,
                    detail: if n > 1 {
                        format!("{} (and {} more problems)", first.detail, n - 1)
                    } else {
                        first.detail.clone()
                    },
                });
            }
        }
        Ok(table)
    }

    /// Prefers `langid` (then another LANGID of the same primary language) when a string
    /// exists in several languages. Without a preference, or when neither exists, the first
    /// language the file lists wins.
    pub fn prefer_language(&mut self, langid: u16) -> &mut Self {
        self.preferred = Some(langid);
        self
    }

    /// The preferred LANGID, if one was set.
    pub fn preferred_language(&self) -> Option<u16> {
        self.preferred
    }

    /// The text of string `id`, in the preferred language when present (see
    /// [`StringTable::prefer_language`]), else in the first language that has it.
    pub fn get(&self, id: u32) -> Option<&str> {
        let versions = self.strings.get(&u16::try_from(id).ok()?)?;
        let pick = self.preferred.and_then(|want| {
            versions
                .iter()
                .find(|(l, _)| *l == want)
                .or_else(|| versions.iter().find(|(l, _)| l & 0x3ff == want & 0x3ff))
        });
        pick.or_else(|| versions.first()).map(|(_, s)| s.as_str())
    }

    /// The text of string `id` in exactly the language `langid`.
    pub fn get_in(&self, id: u32, langid: u16) -> Option<&str> {
        self.strings
            .get(&u16::try_from(id).ok()?)?
            .iter()
            .find(|(l, _)| *l == langid)
            .map(|(_, s)| s.as_str())
    }

    /// The number of distinct string IDs that have text (in any language).
    pub fn len(&self) -> usize {
        self.strings.len()
    }

    /// True when no string was found.
    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }

    /// Every (string ID, LANGID, text), by ID, then in the file's language order.
    pub fn iter(&self) -> impl Iterator<Item = (u16, u16, &str)> + '_ {
        self.strings
            .iter()
            .flat_map(|(id, v)| v.iter().map(move |(l, s)| (*id, *l, s.as_str())))
    }

    /// The LANGIDs of the string blocks, in the order the directory lists them.
    pub fn languages(&self) -> &[u16] {
        &self.languages
    }

    /// Problems that did not stop the reading, in the order found (at most 64 kept).
    pub fn notes(&self) -> &[Note] {
        &self.notes
    }

    /// Problems found beyond the 64 kept in [`StringTable::notes`].
    pub fn notes_dropped(&self) -> usize {
        self.notes_dropped
    }

    /// `Some(true)` for a PE32+ file, `Some(false)` for PE32, `None` for a table not parsed
    /// from a file.
    pub fn is_pe32_plus(&self) -> Option<bool> {
        self.is_64
    }

    /// True when the file has a `MUI` resource (the configuration every `.mui` file carries).
    pub fn has_mui_resource(&self) -> bool {
        self.has_mui
    }

    /// Adds a string (for tables built by hand). Returns false, changing nothing, when `id`
    /// already has text in `langid` or `text` is empty (a string table cannot hold an empty
    /// string).
    pub fn insert(&mut self, id: u16, langid: u16, text: &str) -> bool {
        if text.is_empty() {
            return false;
        }
        let v = self.strings.entry(id).or_default();
        if v.iter().any(|(l, _)| *l == langid) {
            return false;
        }
        v.push((langid, text.to_string()));
        if !self.languages.contains(&langid) {
            self.languages.push(langid);
        }
        true
    }

    pub(crate) fn set_has_mui(&mut self) {
        self.has_mui = true;
    }

    pub(crate) fn note(&mut self, offset: u64, detail: impl Into<String>) {
        if self.notes.len() < MAX_NOTES {
            self.notes.push(Note {
                offset,
                detail: detail.into(),
            });
        } else {
            self.notes_dropped = self.notes_dropped.saturating_add(1);
        }
    }

    /// Decodes one block (`block_id` 1..=4096, in language `langid`) from `data`, which sits at
    /// `file_off` in the file. Strings already present for that ID and language are kept and
    /// the duplicate noted. Returns the number of strings added.
    pub(crate) fn decode_block(
        &mut self,
        block_id: u16,
        langid: u16,
        data: &[u8],
        file_off: u64,
    ) -> usize {
        if !self.languages.contains(&langid) {
            self.languages.push(langid);
        }
        let base = u32::from(block_id.saturating_sub(1)) * 16;
        let mut pos = 0usize;
        let mut added = 0;
        for index in 0..16u32 {
            let id = base + index;
            let at = file_off.saturating_add(pos as u64);
            let Some(len_bytes) = data
                .get(pos..pos.saturating_add(2))
                .and_then(|b| <[u8; 2]>::try_from(b).ok())
            else {
                // Trailing zero counts are often left out by hand-made tables; only a block
                // that ends inside the count is damaged.
                if pos < data.len() {
                    self.note(
                        at,
                        format!("string block {block_id} (language {langid:#06x}): ends inside the length of string {id}"),
                    );
                }
                break;
            };
            let units = usize::from(u16::from_le_bytes(len_bytes));
            pos += 2;
            if units == 0 {
                continue;
            }
            let end = pos.saturating_add(units * 2);
            let Some(raw) = data.get(pos..end) else {
                self.note(
                    at,
                    format!(
                        "string block {block_id} (language {langid:#06x}): string {id} has {units} UTF-16 units but the block has {} bytes left; the rest of the block is skipped",
                        data.len().saturating_sub(pos)
                    ),
                );
                break;
            };
            pos = end;
            let mut text = decode_utf16le(raw);
            // `rc /n` stores a terminating NUL inside the count; LoadString's callers never
            // see it as text.
            while text.ends_with('\0') {
                text.pop();
            }
            if text.is_empty() {
                continue;
            }
            let Ok(id16) = u16::try_from(id) else { break };
            let v = self.strings.entry(id16).or_default();
            if v.iter().any(|(l, _)| *l == langid) {
                self.note(
                    at,
                    format!(
                        "string {id} (language {langid:#06x}) appears twice; the first is kept"
                    ),
                );
                continue;
            }
            v.push((langid, text));
            added += 1;
        }
        added
    }
}

/// UTF-16LE to a `String`; unpaired surrogates become U+FFFD.
fn decode_utf16le(raw: &[u8]) -> String {
    char::decode_utf16(raw.chunks_exact(2).map(|c| {
        u16::from_le_bytes([
            c.first().copied().unwrap_or(0),
            c.get(1).copied().unwrap_or(0),
        ])
    }))
    .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(strings: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..16 {
            let s = strings.get(i).copied().unwrap_or("");
            let units: Vec<u16> = s.encode_utf16().collect();
            out.extend_from_slice(&(units.len() as u16).to_le_bytes());
            for u in units {
                out.extend_from_slice(&u.to_le_bytes());
            }
        }
        out
    }

    #[test]
    fn block_ids_and_empty_slots() {
        let mut t = StringTable::new();
        // Block 1797 holds IDs 28736..=28751; 1798 holds 28752..=28767.
        let data = block(&["Extern bureaublad", "", "Extern bureaublad (TCP-In)"]);
        assert_eq!(t.decode_block(1798, 0x0413, &data, 0x100), 2);
        assert_eq!(t.get(28752), Some("Extern bureaublad"));
        assert_eq!(t.get(28753), None);
        assert_eq!(t.get(28754), Some("Extern bureaublad (TCP-In)"));
        assert_eq!(t.len(), 2);
        assert!(t.notes().is_empty());
        assert_eq!(t.get(28752 + 0x1_0000), None);
    }

    #[test]
    fn string_longer_than_its_block_keeps_the_ones_before() {
        let mut t = StringTable::new();
        let mut data = block(&["één", "twee"]);
        // Claim 500 units for the second string.
        let second = 2 + 2 * 3;
        data[second..second + 2].copy_from_slice(&500u16.to_le_bytes());
        assert_eq!(t.decode_block(1, 0x0413, &data, 0x400), 1);
        assert_eq!(t.get(0), Some("één"));
        assert_eq!(t.get(1), None);
        assert_eq!(t.notes().len(), 1);
        assert_eq!(t.notes()[0].offset, 0x400 + second as u64);
        assert!(
            t.notes()[0].detail.contains("500 UTF-16 units"),
            "{}",
            t.notes()[0]
        );
    }

    #[test]
    fn preference_exact_then_primary_then_first() {
        let mut t = StringTable::new();
        t.insert(7, 0x0409, "Remote Desktop");
        t.insert(7, 0x040A, "Escritorio remoto (tradicional)");
        t.insert(7, 0x0413, "Extern bureaublad");
        assert_eq!(t.get(7), Some("Remote Desktop"));
        t.prefer_language(0x0413);
        assert_eq!(t.get(7), Some("Extern bureaublad"));
        // es-ES (0x0C0A) is not there: the other Spanish LANGID is.
        t.prefer_language(0x0C0A);
        assert_eq!(t.get(7), Some("Escritorio remoto (tradicional)"));
        t.prefer_language(0x0411);
        assert_eq!(t.get(7), Some("Remote Desktop"));
        assert_eq!(t.get_in(7, 0x0413), Some("Extern bureaublad"));
        assert_eq!(t.get_in(7, 0x0411), None);
        assert_eq!(t.languages(), &[0x0409, 0x040A, 0x0413]);
        assert!(!t.insert(7, 0x0413, "again"));
        assert!(!t.insert(8, 0x0413, ""));
    }

    #[test]
    fn trailing_nul_and_bad_surrogates() {
        let mut t = StringTable::new();
        let mut data = Vec::new();
        data.extend_from_slice(&3u16.to_le_bytes());
        data.extend_from_slice(&[b'O', 0, b'K', 0, 0, 0]);
        data.extend_from_slice(&2u16.to_le_bytes());
        data.extend_from_slice(&[0x00, 0xD8, b'x', 0]);
        t.decode_block(1, 9, &data, 0);
        assert_eq!(t.get(0), Some("OK"));
        assert_eq!(t.get(1), Some("\u{FFFD}x"));
        // A block cut inside a length is noted; one cut between strings is not.
        let mut t = StringTable::new();
        t.decode_block(1, 9, &data[..data.len() - 5], 0);
        assert_eq!(t.notes().len(), 1, "{:?}", t.notes());
        let mut t = StringTable::new();
        t.decode_block(1, 9, &data[..8], 0);
        assert!(t.notes().is_empty());
    }

    #[test]
    fn notes_are_capped() {
        let mut t = StringTable::new();
        for i in 0..100 {
            t.note(i, "x");
        }
        assert_eq!(t.notes().len(), MAX_NOTES);
        assert_eq!(t.notes_dropped(), 100 - MAX_NOTES);
    }
}
