//! Editing a hive in place: the cell allocator and the record-level edits.
//!
//! [`HiveMut`] owns a copy of a hive file's bytes and changes them the way Windows does:
//!
//! - **Allocation**: best fit among the free cells (a free cell is split when the rest is at
//!   least 8 bytes); when nothing fits, a new bin is appended (a multiple of 4096 bytes; what
//!   the new cell leaves over becomes one free cell).
//! - **Freeing**: the cell's size turns positive and it merges with a free neighbour on either
//!   side within its bin.
//! - **Values**: data of 4 bytes or less is stored in the value record itself, up to 16,344
//!   bytes in one cell, and beyond that (in 1.4+ hives) in a `db` record of 16,344-byte
//!   segments. Setting a value frees its old data and writes the new.
//! - **Keys**: a new key takes its parent's security cell (whose reference count goes up), and
//!   is inserted in its parent's subkey list in Windows order (upper-cased UTF-16), as `lh`
//!   (or `lf` in hives older than 1.5) with the right hashes, split under an `ri` index past
//!   [`LEAF_MAX`] entries. Deleting a key tree frees every cell it owns and drops its security
//!   references, unlinking and freeing a security cell no key uses any more.
//! - **Bookkeeping**: key timestamps, subkey and value counts, the largest-name and
//!   largest-data fields, the base block's hive bins size; [`HiveMut::finish`] sets the
//!   sequence numbers, timestamp and checksum.
//!
//! Nothing here touches a file. [`crate::save`] writes the result safely.

use std::collections::BTreeMap;

use guestwall_mmap::{AnonBuf, FileBytes};
use guestwall_source::Location;

use crate::base_block::{checksum, BASE_BLOCK_LEN};
use crate::bins::{Bin, CellInfo, HBIN_HEADER_LEN, PAGE};
use crate::build::LEAF_MAX;
use crate::error::{Error, Result};
use crate::hive::{split_path, Hive};
use crate::key::{read_list, Key, ListKind, KEY_COMP_NAME};
use crate::name::{cmp_units_ignore_case, Name};
use crate::value::{DataStorage, Value, BIG_DATA_SEGMENT, DATA_INLINE, VALUE_COMP_NAME};

/// One change to a hive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// Creates a key and any missing parents (like `reg add KEY`). Creating one that exists
    /// changes nothing.
    CreateKey {
        /// Key path relative to the root.
        key: String,
    },
    /// Deletes a key and everything under it. The key must exist; the root cannot be deleted.
    DeleteKey {
        /// Key path relative to the root.
        key: String,
    },
    /// Sets a value, creating it (appended after the key's other values) or replacing its
    /// type and data in place. The key must exist.
    SetValue {
        /// Key path relative to the root.
        key: String,
        /// Value name; `""` is the default value.
        name: String,
        /// Raw data type.
        data_type: u32,
        /// The data.
        data: Vec<u8>,
    },
    /// Deletes a value. It must exist.
    DeleteValue {
        /// Key path relative to the root.
        key: String,
        /// Value name; `""` is the default value.
        name: String,
    },
}

impl Edit {
    /// The key the edit is about.
    pub fn key(&self) -> &str {
        match self {
            Edit::CreateKey { key }
            | Edit::DeleteKey { key }
            | Edit::SetValue { key, .. }
            | Edit::DeleteValue { key, .. } => key,
        }
    }

    /// The same edit about another key (a `.reg` file's full path made relative to a hive).
    pub fn with_key(mut self, path: String) -> Edit {
        match &mut self {
            Edit::CreateKey { key }
            | Edit::DeleteKey { key }
            | Edit::SetValue { key, .. }
            | Edit::DeleteValue { key, .. } => *key = path,
        }
        self
    }
}

/// An editable hive: a private copy of the file's bytes plus a free-cell index.
pub struct HiveMut {
    hive: Hive,
    /// Free cells: cell offset -> size (made when first needed: an edit that allocates or
    /// frees no cell, such as setting a small value in place, never scans the cells).
    free: Option<BTreeMap<u32, u32>>,
    /// FILETIME written into changed keys and the base block.
    now: u64,
}

/// Size of a cell holding `len` bytes of data: header included, 8-aligned, at least 8.
fn cell_size(len: usize) -> Result<u32> {
    let size = (len + 4).div_ceil(8) * 8;
    u32::try_from(size.max(8)).map_err(|_| Error::cell(0, format!("{len} bytes do not fit a cell")))
}

fn file_off(cell: u32) -> usize {
    BASE_BLOCK_LEN + cell as usize
}

/// Stored form of a name: Latin-1 bytes when every character fits, else UTF-16LE.
fn encode_name(s: &str) -> (Vec<u8>, bool) {
    if s.chars().all(|c| (c as u32) < 0x100) {
        (s.chars().map(|c| c as u8).collect(), true)
    } else {
        (s.encode_utf16().flat_map(u16::to_le_bytes).collect(), false)
    }
}

fn name_len_utf16(s: &str) -> u32 {
    2 * s.encode_utf16().count() as u32
}

impl HiveMut {
    /// Starts editing a copy of `hive` (after its log replay). The hive must be fully readable.
    pub fn new(hive: &Hive) -> Result<HiveMut> {
        if hive.is_lazy() {
            return Err(Error::cell(
                0,
                "internal: a lazily read hive cannot be edited; open it whole",
            ));
        }
        let bytes = hive.bytes();
        // A file opened as it is on disk: a private copy-on-write view of it, in which only
        // the pages the edits write are copied. Otherwise a pre-faulted private copy with
        // room to grow by a megabyte before it must move.
        let cow = match hive.path() {
            Some(p) if hive.is_mapped_file() => AnonBuf::copy_on_write(p, bytes.len()).ok(),
            _ => None,
        };
        let buf = match cow {
            // The same file still: a file replaced since (a save renames a new file into
            // place) has another base block (sequence numbers, timestamp).
            Some(b) if b.get(..BASE_BLOCK_LEN) == bytes.get(..BASE_BLOCK_LEN) => b,
            _ => AnonBuf::copy_of(bytes, bytes.len() + (1 << 20)).map_err(|source| Error::Io {
                path: Location::Memory("memory for the edited hive".into()),
                source,
            })?,
        };
        let copy = Hive::from_anon_like(buf, hive)?;
        Ok(HiveMut {
            hive: copy,
            free: None,
            now: now_filetime(),
        })
    }

    /// The free cells of the hive as it is now.
    fn scan_free(hive: &Hive) -> Result<BTreeMap<u32, u32>> {
        let mut free = BTreeMap::new();
        for c in hive.bins().cells(hive.bytes()) {
            let CellInfo {
                offset,
                size,
                allocated,
            } = c?;
            if !allocated {
                free.insert(offset, size);
            }
        }
        Ok(free)
    }

    /// The free-cell index, made on first use.
    fn free_map(&mut self) -> Result<&mut BTreeMap<u32, u32>> {
        if self.free.is_none() {
            self.free = Some(Self::scan_free(&self.hive)?);
        }
        self.free
            .as_mut()
            .ok_or_else(|| Error::cell(0, "internal: no free-cell index"))
    }

    /// Sets the timestamp written into changed keys and the base block (default: now).
    pub fn set_timestamp(&mut self, filetime: u64) {
        self.now = filetime;
    }

    /// A read view of the hive as it is now.
    pub fn hive(&self) -> &Hive {
        &self.hive
    }

    /// Number of free cells.
    pub fn free_cells(&self) -> usize {
        match &self.free {
            Some(f) => f.len(),
            None => Self::scan_free(&self.hive).map_or(0, |f| f.len()),
        }
    }

    /// Applies one edit.
    pub fn apply(&mut self, edit: &Edit) -> Result<()> {
        match edit {
            Edit::CreateKey { key } => self.create_key(key).map(|_| ()),
            Edit::DeleteKey { key } => self.delete_key(key),
            Edit::SetValue {
                key,
                name,
                data_type,
                data,
            } => self.set_value(key, name, *data_type, data),
            Edit::DeleteValue { key, name } => self.delete_value(key, name),
        }
    }

    /// Sets both sequence numbers to `sequence`, the timestamp, the hive bins size and the
    /// checksum, and returns the complete file.
    pub fn finish(mut self, sequence: u32) -> Result<FileBytes> {
        let now = self.now;
        let size = self.hive.bins().data_size();
        let buf = self.buf()?;
        put_u32(buf, 4, sequence);
        put_u32(buf, 8, sequence);
        put_u64(buf, 12, now);
        put_u32(buf, 28, 0);
        put_u32(buf, 40, size);
        let c = checksum(&buf[..508]);
        put_u32(buf, 508, c);
        // The first bin's timestamp backs up the base block's.
        put_u64(buf, BASE_BLOCK_LEN + 20, now);
        Ok(self.hive.into_file_bytes())
    }

    fn buf(&mut self) -> Result<&mut AnonBuf> {
        self.hive
            .anon_mut()
            .ok_or_else(|| Error::cell(0, "internal: the hive copy is not a private buffer"))
    }

    // ----- allocator -----

    /// Allocates a cell for `len` bytes of data (zeroed) and returns its offset.
    fn alloc(&mut self, len: usize) -> Result<u32> {
        let need = cell_size(len)?;
        let best = self
            .free_map()?
            .iter()
            .filter(|(_, &s)| s >= need)
            .min_by_key(|(&o, &s)| (s, o))
            .map(|(&o, &s)| (o, s));
        let (off, size) = match best {
            Some((o, s)) => {
                self.free_map()?.remove(&o);
                (o, s)
            }
            None => self.append_bin(need)?,
        };
        let (used, rest) = if size - need >= 8 {
            (need, size - need)
        } else {
            (size, 0)
        };
        let buf = self.buf()?;
        put_u32(buf, file_off(off), (used as i32).wrapping_neg() as u32);
        buf[file_off(off) + 4..file_off(off) + used as usize].fill(0);
        if rest > 0 {
            put_u32(buf, file_off(off + used), rest);
            self.free_map()?.insert(off + used, rest);
        }
        Ok(off)
    }

    /// Appends a bin big enough for a cell of `need` bytes; returns the free cell it adds.
    fn append_bin(&mut self, need: u32) -> Result<(u32, u32)> {
        let size = (need + HBIN_HEADER_LEN).div_ceil(PAGE) * PAGE;
        let start = self.hive.bins().data_size();
        let end = start
            .checked_add(size)
            .ok_or_else(|| Error::cell(start, "the hive would exceed 4 GB"))?;
        let buf = self.buf()?;
        buf.resize(BASE_BLOCK_LEN + end as usize)
            .map_err(|source| Error::Io {
                path: Location::Memory("memory for the edited hive".into()),
                source,
            })?;
        let h = file_off(start);
        buf[h..h + 4].copy_from_slice(b"hbin");
        put_u32(buf, h + 4, start);
        put_u32(buf, h + 8, size);
        let cell = start + HBIN_HEADER_LEN;
        put_u32(buf, file_off(cell), size - HBIN_HEADER_LEN);
        self.hive.push_bin(Bin {
            offset: start,
            size,
        });
        Ok((cell, size - HBIN_HEADER_LEN))
    }

    /// Frees an allocated cell and merges it with free neighbours in its bin.
    fn free_cell(&mut self, off: u32) -> Result<()> {
        let (start, size) = self.hive.bins().cell_range(self.hive.bytes(), off)?;
        let bin = self
            .hive
            .bins()
            .bin_of(off)
            .ok_or_else(|| Error::cell(off, "not in a bin"))?;
        let _ = start;
        let mut off = off;
        let mut size = size as u32;
        let free = self.free_map()?;
        if off + size < bin.end() {
            if let Some(next) = free.remove(&(off + size)) {
                size += next;
            }
        }
        if let Some((&p, &ps)) = free.range(..off).next_back() {
            if p + ps == off && p >= bin.offset {
                free.remove(&p);
                off = p;
                size += ps;
            }
        }
        free.insert(off, size);
        put_u32(self.buf()?, file_off(off), size);
        Ok(())
    }

    /// Writes `bytes` into a newly allocated cell.
    fn write_cell(&mut self, bytes: &[u8]) -> Result<u32> {
        let off = self.alloc(bytes.len())?;
        let at = file_off(off) + 4;
        self.buf()?[at..at + bytes.len()].copy_from_slice(bytes);
        Ok(off)
    }

    // ----- field access on key nodes and values -----

    fn get_u32(&self, cell: u32, field: usize) -> u32 {
        let at = file_off(cell) + 4 + field;
        crate::data::u32_at(self.hive.bytes(), at).unwrap_or(0)
    }

    fn set_u32(&mut self, cell: u32, field: usize, v: u32) -> Result<()> {
        put_u32(self.buf()?, file_off(cell) + 4 + field, v);
        Ok(())
    }

    fn touch(&mut self, nk: u32) -> Result<()> {
        let now = self.now;
        put_u64(self.buf()?, file_off(nk) + 4 + 4, now);
        Ok(())
    }

    /// Raises a "largest length" field of a key node to at least `v`. The largest subkey name
    /// field (52) keeps flags in its upper 16 bits, which are left alone.
    fn raise(&mut self, nk: u32, field: usize, v: u32) -> Result<()> {
        let old = self.get_u32(nk, field);
        let (keep, cur, v) = if field == 52 {
            (old & 0xFFFF_0000, old & 0xFFFF, v.min(0xFFFF))
        } else {
            (0, old, v)
        };
        if cur < v {
            self.set_u32(nk, field, keep | v)?;
        }
        Ok(())
    }

    /// The key node offset at `path`, or [`Error::KeyNotFound`].
    fn key_cell(&self, path: &str) -> Result<u32> {
        Ok(self.hive.key(path)?.cell())
    }

    // ----- values -----

    /// Writes data for a value; returns (data size field, data offset field).
    fn write_data(&mut self, data: &[u8]) -> Result<(u32, u32)> {
        let len = u32::try_from(data.len())
            .ok()
            .filter(|&l| l < DATA_INLINE)
            .ok_or_else(|| {
                Error::cell(0, format!("{} bytes of value data is too much", data.len()))
            })?;
        if data.len() <= 4 {
            let mut inline = [0u8; 4];
            inline[..data.len()].copy_from_slice(data);
            return Ok((len | DATA_INLINE, u32::from_le_bytes(inline)));
        }
        if data.len() > BIG_DATA_SEGMENT && self.hive.base_block().minor >= 4 {
            // Every segment cell is full size (16,352 bytes), the last one too, as Windows
            // writes them (hivex, for one, reads each segment's whole cell).
            let mut segments = Vec::new();
            for seg in data.chunks(BIG_DATA_SEGMENT) {
                let cell = self.alloc(BIG_DATA_SEGMENT)?;
                let at = file_off(cell) + 4;
                self.buf()?[at..at + seg.len()].copy_from_slice(seg);
                segments.push(cell);
            }
            let list: Vec<u8> = segments.iter().flat_map(|s| s.to_le_bytes()).collect();
            let list_cell = self.write_cell(&list)?;
            let mut db = Vec::with_capacity(8);
            db.extend_from_slice(b"db");
            db.extend_from_slice(&(segments.len() as u16).to_le_bytes());
            db.extend_from_slice(&list_cell.to_le_bytes());
            return Ok((len, self.write_cell(&db)?));
        }
        Ok((len, self.write_cell(data)?))
    }

    /// Frees the data cells of the value at `vk`.
    fn free_data(&mut self, vk: u32) -> Result<()> {
        let storage = Value::new(&self.hive, vk)?.storage()?;
        match storage {
            DataStorage::Inline | DataStorage::Empty => {}
            DataStorage::Cell(c) => self.free_cell(c)?,
            DataStorage::BigData(db, n) => {
                let list = self.get_u32(db, 4);
                let segs: Vec<u32> = (0..usize::from(n))
                    .map(|i| self.get_u32(list, 4 * i))
                    .collect();
                for s in segs {
                    self.free_cell(s)?;
                }
                self.free_cell(list)?;
                self.free_cell(db)?;
            }
        }
        Ok(())
    }

    fn set_value(&mut self, key: &str, name: &str, data_type: u32, data: &[u8]) -> Result<()> {
        let nk = self.key_cell(key)?;
        let existing = Key::new(&self.hive, nk)?.value(name)?.map(|v| v.cell());
        let (size, offset) = self.write_data(data)?;
        match existing {
            Some(vk) => {
                self.free_data(vk)?;
                self.set_u32(vk, 4, size)?;
                self.set_u32(vk, 8, offset)?;
                self.set_u32(vk, 12, data_type)?;
            }
            None => {
                let (raw, compressed) = encode_name(name);
                let name_len = u16::try_from(raw.len()).map_err(|_| {
                    Error::cell(nk, format!("value name of {} bytes is too long", raw.len()))
                })?;
                let mut rec = Vec::with_capacity(20 + raw.len());
                rec.extend_from_slice(b"vk");
                rec.extend_from_slice(&name_len.to_le_bytes());
                rec.extend_from_slice(&size.to_le_bytes());
                rec.extend_from_slice(&offset.to_le_bytes());
                rec.extend_from_slice(&data_type.to_le_bytes());
                let flags: u16 = if compressed { VALUE_COMP_NAME } else { 0 };
                rec.extend_from_slice(&flags.to_le_bytes());
                rec.extend_from_slice(&0u16.to_le_bytes());
                rec.extend_from_slice(&raw);
                let vk = self.write_cell(&rec)?;
                let mut cells = Key::new(&self.hive, nk)?.value_cells()?;
                cells.push(vk);
                self.write_value_list(nk, &cells)?;
                self.raise(nk, 60, name_len_utf16(name))?;
            }
        }
        self.raise(nk, 64, data.len() as u32)?;
        self.touch(nk)
    }

    /// Stores `cells` as the key's value list, in place when the old cell has room.
    fn write_value_list(&mut self, nk: u32, cells: &[u32]) -> Result<()> {
        let old = Key::new(&self.hive, nk)?;
        let old_list = old.value_list_cell();
        let had = old.value_count() > 0;
        let bytes: Vec<u8> = cells.iter().flat_map(|c| c.to_le_bytes()).collect();
        let list = if cells.is_empty() {
            if had {
                self.free_cell(old_list)?;
            }
            u32::MAX
        } else if had && self.hive.cell(old_list)?.len() >= bytes.len() {
            let at = file_off(old_list) + 4;
            self.buf()?[at..at + bytes.len()].copy_from_slice(&bytes);
            old_list
        } else {
            let new = self.write_cell(&bytes)?;
            if had {
                self.free_cell(old_list)?;
            }
            new
        };
        self.set_u32(nk, 36, cells.len() as u32)?;
        self.set_u32(nk, 40, list)
    }

    fn delete_value(&mut self, key: &str, name: &str) -> Result<()> {
        let nk = self.key_cell(key)?;
        let k = Key::new(&self.hive, nk)?;
        let vk = k
            .value(name)?
            .ok_or_else(|| Error::ValueNotFound {
                key: key.to_string(),
                name: name.to_string(),
            })?
            .cell();
        let cells: Vec<u32> = k.value_cells()?.into_iter().filter(|&c| c != vk).collect();
        self.write_value_list(nk, &cells)?;
        self.free_data(vk)?;
        self.free_cell(vk)?;
        self.touch(nk)
    }

    // ----- keys -----

    /// Creates `path` and any missing parents; returns the key node offset.
    fn create_key(&mut self, path: &str) -> Result<u32> {
        let mut nk = self.hive.root()?.cell();
        for part in split_path(path) {
            if part.encode_utf16().count() > 255 {
                return Err(Error::cell(
                    nk,
                    format!("key name {part:?} is longer than 255 characters"),
                ));
            }
            let found = Key::new(&self.hive, nk)?.subkey(part)?.map(|k| k.cell());
            nk = match found {
                Some(c) => c,
                None => self.add_subkey(nk, part)?,
            };
        }
        Ok(nk)
    }

    fn add_subkey(&mut self, parent: u32, name: &str) -> Result<u32> {
        let sk = Key::new(&self.hive, parent)?.security_cell();
        // The new key shares its parent's security descriptor.
        let refs = self.get_u32(sk, 12);
        self.set_u32(sk, 12, refs.saturating_add(1))?;
        let (raw, compressed) = encode_name(name);
        let mut rec = Vec::with_capacity(76 + raw.len());
        rec.extend_from_slice(b"nk");
        let flags: u16 = if compressed { KEY_COMP_NAME } else { 0 };
        rec.extend_from_slice(&flags.to_le_bytes());
        rec.extend_from_slice(&self.now.to_le_bytes());
        rec.extend_from_slice(&0u32.to_le_bytes()); // access bits
        rec.extend_from_slice(&parent.to_le_bytes());
        rec.extend_from_slice(&0u32.to_le_bytes()); // subkeys
        rec.extend_from_slice(&0u32.to_le_bytes()); // volatile subkeys
        rec.extend_from_slice(&u32::MAX.to_le_bytes());
        rec.extend_from_slice(&u32::MAX.to_le_bytes());
        rec.extend_from_slice(&0u32.to_le_bytes()); // values
        rec.extend_from_slice(&u32::MAX.to_le_bytes());
        rec.extend_from_slice(&sk.to_le_bytes());
        rec.extend_from_slice(&u32::MAX.to_le_bytes()); // class
        rec.extend_from_slice(&[0u8; 20]); // largest lengths, work var
        rec.extend_from_slice(&(raw.len() as u16).to_le_bytes());
        rec.extend_from_slice(&0u16.to_le_bytes());
        rec.extend_from_slice(&raw);
        let nk = self.write_cell(&rec)?;
        let mut children = Key::new(&self.hive, parent)?.subkey_cells()?;
        let units: Vec<u16> = name.encode_utf16().collect();
        let at = {
            let hive = &self.hive;
            let mut lo = 0;
            let mut hi = children.len();
            while lo < hi {
                let mid = (lo + hi) / 2;
                let n = Key::new(hive, children[mid])?.name();
                if cmp_units_ignore_case(n.units(), units.iter().copied()).is_lt() {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            lo
        };
        children.insert(at, nk);
        self.write_subkey_list(parent, &children)?;
        self.raise(parent, 52, name_len_utf16(name))?;
        self.touch(parent)?;
        Ok(nk)
    }

    /// Replaces the key's subkey list with `children` (already in order), freeing the old
    /// list cells.
    fn write_subkey_list(&mut self, nk: u32, children: &[u32]) -> Result<()> {
        let old_count = Key::new(&self.hive, nk)?.subkey_count();
        let old_list = self.get_u32(nk, 28);
        let mut old_cells = Vec::new();
        if old_count > 0 {
            let (kind, elems) = read_list(&self.hive, old_list)?;
            if kind == ListKind::Ri {
                old_cells.extend(elems.iter());
            }
            old_cells.push(old_list);
        }
        let use_lh = self.hive.base_block().minor >= 5;
        let mut entries = Vec::with_capacity(children.len());
        for &c in children {
            let name = Key::new(&self.hive, c)?.name();
            let extra = if use_lh {
                name.lh_hash()
            } else {
                lf_hint(name)
            };
            entries.push((c, extra));
        }
        let sig: &[u8; 2] = if use_lh { b"lh" } else { b"lf" };
        let list = if entries.is_empty() {
            u32::MAX
        } else if entries.len() <= LEAF_MAX {
            self.write_leaf(sig, &entries)?
        } else {
            let mut leaves = Vec::new();
            for part in entries.chunks(LEAF_MAX / 2) {
                leaves.push(self.write_leaf(sig, part)?);
            }
            let mut rec = Vec::with_capacity(4 + 4 * leaves.len());
            rec.extend_from_slice(b"ri");
            rec.extend_from_slice(&(leaves.len() as u16).to_le_bytes());
            for l in leaves {
                rec.extend_from_slice(&l.to_le_bytes());
            }
            self.write_cell(&rec)?
        };
        for c in old_cells {
            self.free_cell(c)?;
        }
        self.set_u32(nk, 20, children.len() as u32)?;
        self.set_u32(nk, 28, list)
    }

    fn write_leaf(&mut self, sig: &[u8; 2], entries: &[(u32, u32)]) -> Result<u32> {
        let mut rec = Vec::with_capacity(4 + 8 * entries.len());
        rec.extend_from_slice(sig);
        rec.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for (cell, extra) in entries {
            rec.extend_from_slice(&cell.to_le_bytes());
            rec.extend_from_slice(&extra.to_le_bytes());
        }
        self.write_cell(&rec)
    }

    fn delete_key(&mut self, path: &str) -> Result<()> {
        let (key, _) = self.hive.resolve(path)?;
        let target = key.cell();
        if target == self.hive.root()?.cell() {
            return Err(Error::cell(target, "the root key cannot be deleted"));
        }
        let parent = key.parent_cell();
        // Collect the subtree first (post-order), then free it.
        let mut order = Vec::new();
        self.hive.walk(key, "", |_, k| {
            order.push(k.cell());
            Ok(())
        })?;
        for &nk in order.iter().rev() {
            self.free_key_node(nk)?;
        }
        let children: Vec<u32> = Key::new(&self.hive, parent)?
            .subkey_cells()?
            .into_iter()
            .filter(|&c| c != target)
            .collect();
        self.write_subkey_list(parent, &children)?;
        self.touch(parent)
    }

    /// Frees one key node's own cells: values and their data, value list, subkey list,
    /// class name, security reference and the node itself.
    fn free_key_node(&mut self, nk: u32) -> Result<()> {
        let k = Key::new(&self.hive, nk)?;
        let values = k.value_cells()?;
        let value_list = (k.value_count() > 0).then(|| k.value_list_cell());
        let class = self.get_u32(nk, 48);
        let has_class = self.get_u32(nk, 72) >> 16 != 0 && class != u32::MAX;
        let sk = k.security_cell();
        let mut lists = Vec::new();
        if k.subkey_count() > 0 {
            let list = k.subkey_list_cell();
            let (kind, elems) = read_list(&self.hive, list)?;
            if kind == ListKind::Ri {
                lists.extend(elems.iter());
            }
            lists.push(list);
        }
        for vk in values {
            self.free_data(vk)?;
            self.free_cell(vk)?;
        }
        if let Some(l) = value_list {
            self.free_cell(l)?;
        }
        for l in lists {
            self.free_cell(l)?;
        }
        if has_class {
            self.free_cell(class)?;
        }
        self.release_security(sk)?;
        self.free_cell(nk)
    }

    /// Drops one reference to a security cell; at zero, unlinks it from the list and frees it.
    fn release_security(&mut self, sk: u32) -> Result<()> {
        let refs = self.get_u32(sk, 12);
        if refs > 1 {
            return self.set_u32(sk, 12, refs - 1);
        }
        let flink = self.get_u32(sk, 4);
        let blink = self.get_u32(sk, 8);
        if flink != sk {
            self.set_u32(blink, 4, flink)?;
            self.set_u32(flink, 8, blink)?;
        }
        self.free_cell(sk)
    }
}

/// The `lf` name hint: the first four characters when they are ASCII, else zeros.
fn lf_hint(name: Name<'_>) -> u32 {
    let mut hint = [0u8; 4];
    for (i, u) in name.units().take(4).enumerate() {
        if u >= 0x80 {
            return 0;
        }
        hint[i] = u as u8;
    }
    u32::from_le_bytes(hint)
}

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    if let Some(d) = buf.get_mut(at..at + 4) {
        d.copy_from_slice(&v.to_le_bytes());
    }
}

fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    if let Some(d) = buf.get_mut(at..at + 8) {
        d.copy_from_slice(&v.to_le_bytes());
    }
}

/// The current time as a FILETIME.
pub fn now_filetime() -> u64 {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() / 100);
    (unix as u64).saturating_add(116_444_736_000_000_000)
}
