//! Writing a fresh hive file from a tree of keys and values.
//!
//! This lays out a complete, clean hive the way Windows would: one shared security cell, key
//! nodes with `lh` subkey lists sorted by upper-cased name (split under an `ri` index when a
//! key has more than [`LEAF_MAX`] subkeys), value lists, data cells, `db` big-data records for
//! data over 16,344 bytes in version 1.4+ hives, and a base block with matching sequence
//! numbers and checksum. It is used for samples and test fixtures; editing an existing hive
//! in place is a different job.

use crate::base_block::{checksum, BASE_BLOCK_LEN};
use crate::bins::{HBIN_HEADER_LEN, PAGE};
use crate::key::{KEY_COMP_NAME, KEY_HIVE_ENTRY, KEY_NO_DELETE};
use crate::name::{cmp_units_ignore_case, lh_hash, upcase};
use crate::value::{BIG_DATA_SEGMENT, DATA_INLINE, VALUE_COMP_NAME};

/// The most subkeys one leaf list holds before the list is split under an `ri` index.
pub const LEAF_MAX: usize = 1000;

/// A key to write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySpec {
    /// The key's name (ignored for the root, which takes [`BuildOptions::root_name`]).
    pub name: String,
    /// Optional class name.
    pub class: Option<String>,
    /// Values, in the order to store them.
    pub values: Vec<ValueSpec>,
    /// Subkeys, in any order (they are stored sorted).
    pub subkeys: Vec<KeySpec>,
}

/// A value to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueSpec {
    /// The value's name; empty for the default value.
    pub name: String,
    /// Raw data type.
    pub data_type: u32,
    /// The data.
    pub data: Vec<u8>,
}

impl KeySpec {
    /// A key with this name and nothing in it.
    pub fn new(name: &str) -> KeySpec {
        KeySpec {
            name: name.to_string(),
            ..KeySpec::default()
        }
    }

    /// Adds a value (builder style).
    pub fn value(mut self, name: &str, data_type: u32, data: impl Into<Vec<u8>>) -> KeySpec {
        self.values.push(ValueSpec {
            name: name.to_string(),
            data_type,
            data: data.into(),
        });
        self
    }

    /// Adds a value to a key in place.
    pub fn push_value(
        &mut self,
        name: &str,
        data_type: u32,
        data: impl Into<Vec<u8>>,
    ) -> &mut KeySpec {
        self.values.push(ValueSpec {
            name: name.to_string(),
            data_type,
            data: data.into(),
        });
        self
    }

    /// Adds a subkey (builder style).
    pub fn subkey(mut self, key: KeySpec) -> KeySpec {
        self.subkeys.push(key);
        self
    }

    /// The subkey at a `\`-separated path, created (empty) where missing.
    pub fn path_mut(&mut self, path: &str) -> &mut KeySpec {
        let mut k = self;
        for part in crate::hive::split_path(path) {
            let i = match k
                .subkeys
                .iter()
                .position(|s| crate::name::eq_ignore_case(&s.name, part))
            {
                Some(i) => i,
                None => {
                    k.subkeys.push(KeySpec::new(part));
                    k.subkeys.len() - 1
                }
            };
            k = &mut k.subkeys[i];
        }
        k
    }
}

pub use crate::data::{reg_multi_sz, reg_sz};

/// Options for [`build_hive`].
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Minor format version (3 to 6). Big data (`db`) is used from 4 on.
    pub minor: u32,
    /// Name of the root key.
    pub root_name: String,
    /// The base block's debugging file name.
    pub file_name: String,
    /// Timestamp for the base block and every key (FILETIME).
    pub timestamp: u64,
    /// Sequence number to store (both copies).
    pub sequence: u32,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            minor: 5,
            root_name: "ROOT".into(),
            file_name: String::new(),
            // 2020-01-01T00:00:00Z
            timestamp: 132_223_104_000_000_000,
            sequence: 1,
        }
    }
}

/// Why a tree could not be written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// Two subkeys of one key have names equal when compared case-insensitively.
    #[error("duplicate subkey name {0:?}")]
    DuplicateKey(String),
    /// Two values of one key have the same name.
    #[error("duplicate value name {0:?}")]
    DuplicateValue(String),
    /// A name longer than the format allows (255 characters for keys, 16,383 for values).
    #[error("name too long: {0:?}")]
    NameTooLong(String),
    /// A key name that is empty or contains a backslash.
    #[error("invalid key name {0:?}")]
    InvalidKeyName(String),
    /// Minor version outside 3 to 6.
    #[error("unsupported minor version {0}")]
    Version(u32),
    /// The hive would exceed the 4 GB the format can address.
    #[error("hive too large")]
    TooLarge,
}

/// Builds a complete hive file (base block and hive bins) from `root`.
pub fn build_hive(root: &KeySpec, opts: &BuildOptions) -> Result<Vec<u8>, BuildError> {
    if !(3..=6).contains(&opts.minor) {
        return Err(BuildError::Version(opts.minor));
    }
    let mut b = Builder {
        data: Vec::new(),
        bin_start: 0,
        pos: 0,
        opts,
        keys: 0,
        sk: u32::MAX,
    };
    b.new_bin(0);
    // The root key node is the first cell, as in every hive Windows creates (some readers,
    // regipy among them, take the first cell for the root whatever the base block says).
    let root_cell = b.write_key(root, &opts.root_name, u32::MAX, None)?;
    // Reference count of the shared security cell = number of keys.
    let keys = b.keys;
    let sk = b.sk;
    b.put_u32(sk + 4 + 12, keys);
    b.close_bin();
    let hbins_size = u32::try_from(b.data.len()).map_err(|_| BuildError::TooLarge)?;

    let mut file = vec![0u8; BASE_BLOCK_LEN];
    file[..4].copy_from_slice(b"regf");
    put(&mut file, 4, opts.sequence);
    put(&mut file, 8, opts.sequence);
    file[12..20].copy_from_slice(&opts.timestamp.to_le_bytes());
    put(&mut file, 20, 1);
    put(&mut file, 24, opts.minor);
    put(&mut file, 28, 0);
    put(&mut file, 32, 1);
    put(&mut file, 36, root_cell);
    put(&mut file, 40, hbins_size);
    put(&mut file, 44, 1);
    // Windows keeps the last 31 characters of the path.
    let name: Vec<u16> = opts.file_name.encode_utf16().collect();
    let tail = &name[name.len().saturating_sub(31)..];
    for (i, u) in tail.iter().enumerate() {
        file[48 + 2 * i..50 + 2 * i].copy_from_slice(&u.to_le_bytes());
    }
    let c = checksum(&file[..508]);
    put(&mut file, 508, c);
    file.extend_from_slice(&b.data);
    // The first bin's timestamp backs up the base block's.
    file[BASE_BLOCK_LEN + 20..BASE_BLOCK_LEN + 28].copy_from_slice(&opts.timestamp.to_le_bytes());
    Ok(file)
}

fn put(buf: &mut [u8], off: usize, v: u32) {
    buf[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// A stored name: bytes and whether they are compressed (Latin-1).
fn encode_name(s: &str) -> (Vec<u8>, bool) {
    if s.chars().all(|c| (c as u32) < 0x100) {
        (s.chars().map(|c| c as u8).collect(), true)
    } else {
        (s.encode_utf16().flat_map(u16::to_le_bytes).collect(), false)
    }
}

struct Builder<'o> {
    /// Hive bins data.
    data: Vec<u8>,
    /// Offset of the bin being filled.
    bin_start: u32,
    /// Next free byte in that bin.
    pos: u32,
    opts: &'o BuildOptions,
    keys: u32,
    /// The shared security cell (written right after the root key node).
    sk: u32,
}

impl Builder<'_> {
    fn new_bin(&mut self, min_cell: u32) {
        let size = (min_cell + HBIN_HEADER_LEN).div_ceil(PAGE).max(1) * PAGE;
        let start = self.data.len() as u32;
        self.data.resize((start + size) as usize, 0);
        let h = start as usize;
        self.data[h..h + 4].copy_from_slice(b"hbin");
        put(&mut self.data, h + 4, start);
        put(&mut self.data, h + 8, size);
        self.bin_start = start;
        self.pos = start + HBIN_HEADER_LEN;
    }

    fn bin_end(&self) -> u32 {
        let size = u32::from_le_bytes(
            self.data[self.bin_start as usize + 8..self.bin_start as usize + 12]
                .try_into()
                .unwrap_or([0; 4]),
        );
        self.bin_start + size
    }

    /// Marks the rest of the current bin as one free cell.
    fn close_bin(&mut self) {
        let end = self.bin_end();
        if self.pos < end {
            let free = end - self.pos;
            put(&mut self.data, self.pos as usize, free);
            self.pos = end;
        }
    }

    /// Allocates a cell for `len` bytes of data; returns its offset.
    fn alloc(&mut self, len: usize) -> u32 {
        let size = ((len + 4).div_ceil(8) * 8) as u32;
        if self.pos + size > self.bin_end() {
            self.close_bin();
            self.new_bin(size);
        }
        let off = self.pos;
        put(
            &mut self.data,
            off as usize,
            (size as i32).wrapping_neg() as u32,
        );
        self.pos += size;
        off
    }

    fn cell_mut(&mut self, off: u32, len: usize) -> &mut [u8] {
        let s = off as usize + 4;
        &mut self.data[s..s + len]
    }

    fn put_u32(&mut self, at: u32, v: u32) {
        put(&mut self.data, at as usize, v);
    }

    fn write_cell(&mut self, bytes: &[u8]) -> u32 {
        let off = self.alloc(bytes.len());
        self.cell_mut(off, bytes.len()).copy_from_slice(bytes);
        off
    }

    fn write_security(&mut self) -> u32 {
        let sd = default_security_descriptor();
        let mut rec = Vec::with_capacity(20 + sd.len());
        rec.extend_from_slice(b"sk\0\0");
        let off = self.alloc(20 + sd.len());
        rec.extend_from_slice(&off.to_le_bytes()); // flink: itself (a one-entry list)
        rec.extend_from_slice(&off.to_le_bytes()); // blink
        rec.extend_from_slice(&0u32.to_le_bytes()); // reference count, set at the end
        rec.extend_from_slice(&(sd.len() as u32).to_le_bytes());
        rec.extend_from_slice(&sd);
        self.cell_mut(off, rec.len()).copy_from_slice(&rec);
        off
    }

    fn write_key(
        &mut self,
        spec: &KeySpec,
        name: &str,
        parent: u32,
        sk: Option<u32>,
    ) -> Result<u32, BuildError> {
        let root = sk.is_none();
        if name.is_empty() || name.contains('\\') {
            return Err(BuildError::InvalidKeyName(name.to_string()));
        }
        if name.encode_utf16().count() > 255 {
            return Err(BuildError::NameTooLong(name.to_string()));
        }
        self.keys += 1;
        let (name_bytes, compressed) = encode_name(name);
        let nk = self.alloc(76 + name_bytes.len());
        let sk = match sk {
            Some(sk) => sk,
            None => {
                self.sk = self.write_security();
                self.sk
            }
        };

        // Values.
        let mut value_cells = Vec::with_capacity(spec.values.len());
        let mut max_vname = 0u32;
        let mut max_vdata = 0u32;
        let mut seen = std::collections::HashSet::new();
        for v in &spec.values {
            if !seen.insert(v.name.encode_utf16().map(upcase).collect::<Vec<u16>>()) {
                return Err(BuildError::DuplicateValue(v.name.clone()));
            }
            if v.name.encode_utf16().count() > 16_383 {
                return Err(BuildError::NameTooLong(v.name.clone()));
            }
            max_vname = max_vname.max(2 * v.name.encode_utf16().count() as u32);
            max_vdata = max_vdata.max(v.data.len() as u32);
            value_cells.push(self.write_value(v));
        }
        let values_list = if value_cells.is_empty() {
            u32::MAX
        } else {
            let bytes: Vec<u8> = value_cells.iter().flat_map(|c| c.to_le_bytes()).collect();
            self.write_cell(&bytes)
        };

        // Class name.
        let (class_cell, class_len) = match &spec.class {
            Some(c) if !c.is_empty() => {
                let bytes: Vec<u8> = c.encode_utf16().flat_map(u16::to_le_bytes).collect();
                (self.write_cell(&bytes), bytes.len() as u16)
            }
            _ => (u32::MAX, 0),
        };

        // Subkeys, sorted the way Windows keeps them.
        let mut order: Vec<&KeySpec> = spec.subkeys.iter().collect();
        order.sort_by(|a, b| cmp_units_ignore_case(a.name.encode_utf16(), b.name.encode_utf16()));
        for w in order.windows(2) {
            if cmp_units_ignore_case(w[0].name.encode_utf16(), w[1].name.encode_utf16()).is_eq() {
                return Err(BuildError::DuplicateKey(w[1].name.clone()));
            }
        }
        let mut children = Vec::with_capacity(order.len());
        let mut max_sub = 0u32;
        let mut max_class = 0u32;
        for sub in &order {
            let cell = self.write_key(sub, &sub.name, nk, Some(sk))?;
            max_sub = max_sub.max(2 * sub.name.encode_utf16().count() as u32);
            max_class = max_class.max(
                2 * sub
                    .class
                    .as_deref()
                    .map_or(0, |c| c.encode_utf16().count() as u32),
            );
            children.push((cell, lh_hash(sub.name.encode_utf16())));
        }
        let subkey_list = self.write_subkey_list(&children);

        let mut rec = Vec::with_capacity(76 + name_bytes.len());
        let mut flags = if compressed { KEY_COMP_NAME } else { 0 };
        if root {
            flags |= KEY_HIVE_ENTRY | KEY_NO_DELETE;
        }
        rec.extend_from_slice(b"nk");
        rec.extend_from_slice(&flags.to_le_bytes());
        rec.extend_from_slice(&self.opts.timestamp.to_le_bytes());
        rec.extend_from_slice(&0u32.to_le_bytes()); // access bits
        rec.extend_from_slice(&parent.to_le_bytes());
        rec.extend_from_slice(&(children.len() as u32).to_le_bytes());
        rec.extend_from_slice(&0u32.to_le_bytes()); // volatile subkeys
        rec.extend_from_slice(&subkey_list.to_le_bytes());
        rec.extend_from_slice(&u32::MAX.to_le_bytes()); // volatile subkey list
        rec.extend_from_slice(&(value_cells.len() as u32).to_le_bytes());
        rec.extend_from_slice(&values_list.to_le_bytes());
        rec.extend_from_slice(&sk.to_le_bytes());
        rec.extend_from_slice(&class_cell.to_le_bytes());
        rec.extend_from_slice(&max_sub.to_le_bytes());
        rec.extend_from_slice(&max_class.to_le_bytes());
        rec.extend_from_slice(&max_vname.to_le_bytes());
        rec.extend_from_slice(&max_vdata.to_le_bytes());
        rec.extend_from_slice(&0u32.to_le_bytes()); // work var
        rec.extend_from_slice(&(name_bytes.len() as u16).to_le_bytes());
        rec.extend_from_slice(&class_len.to_le_bytes());
        rec.extend_from_slice(&name_bytes);
        self.cell_mut(nk, rec.len()).copy_from_slice(&rec);
        Ok(nk)
    }

    fn write_subkey_list(&mut self, children: &[(u32, u32)]) -> u32 {
        if children.is_empty() {
            return u32::MAX;
        }
        let leaf = |b: &mut Self, part: &[(u32, u32)]| {
            let mut rec = Vec::with_capacity(4 + 8 * part.len());
            rec.extend_from_slice(b"lh");
            rec.extend_from_slice(&(part.len() as u16).to_le_bytes());
            for (cell, hash) in part {
                rec.extend_from_slice(&cell.to_le_bytes());
                rec.extend_from_slice(&hash.to_le_bytes());
            }
            b.write_cell(&rec)
        };
        if children.len() <= LEAF_MAX {
            return leaf(self, children);
        }
        let leaves: Vec<u32> = children
            .chunks(LEAF_MAX / 2)
            .map(|part| leaf(self, part))
            .collect();
        let mut rec = Vec::with_capacity(4 + 4 * leaves.len());
        rec.extend_from_slice(b"ri");
        rec.extend_from_slice(&(leaves.len() as u16).to_le_bytes());
        for l in leaves {
            rec.extend_from_slice(&l.to_le_bytes());
        }
        self.write_cell(&rec)
    }

    fn write_value(&mut self, v: &ValueSpec) -> u32 {
        let (name_bytes, compressed) = encode_name(&v.name);
        let len = v.data.len() as u32;
        let (size_field, offset_field) = if v.data.len() <= 4 {
            let mut inline = [0u8; 4];
            inline[..v.data.len()].copy_from_slice(&v.data);
            (len | DATA_INLINE, u32::from_le_bytes(inline))
        } else if v.data.len() > BIG_DATA_SEGMENT && self.opts.minor >= 4 {
            (len, self.write_big_data(&v.data))
        } else {
            (len, self.write_cell(&v.data))
        };
        let mut rec = Vec::with_capacity(20 + name_bytes.len());
        rec.extend_from_slice(b"vk");
        rec.extend_from_slice(&(name_bytes.len() as u16).to_le_bytes());
        rec.extend_from_slice(&size_field.to_le_bytes());
        rec.extend_from_slice(&offset_field.to_le_bytes());
        rec.extend_from_slice(&v.data_type.to_le_bytes());
        let flags: u16 = if compressed { VALUE_COMP_NAME } else { 0 };
        rec.extend_from_slice(&flags.to_le_bytes());
        rec.extend_from_slice(&0u16.to_le_bytes());
        rec.extend_from_slice(&name_bytes);
        self.write_cell(&rec)
    }

    fn write_big_data(&mut self, data: &[u8]) -> u32 {
        // Every segment cell is full size, the last one too, as Windows writes them.
        let segments: Vec<u32> = data
            .chunks(BIG_DATA_SEGMENT)
            .map(|seg| {
                let off = self.alloc(BIG_DATA_SEGMENT);
                self.cell_mut(off, seg.len()).copy_from_slice(seg);
                off
            })
            .collect();
        let list: Vec<u8> = segments.iter().flat_map(|s| s.to_le_bytes()).collect();
        let list_cell = self.write_cell(&list);
        let mut rec = Vec::with_capacity(8);
        rec.extend_from_slice(b"db");
        rec.extend_from_slice(&(segments.len() as u16).to_le_bytes());
        rec.extend_from_slice(&list_cell.to_le_bytes());
        self.write_cell(&rec)
    }
}

/// A self-relative security descriptor: owner and group Administrators; the DACL gives full
/// control to SYSTEM and Administrators and read access to Users, inherited by subkeys.
pub fn default_security_descriptor() -> Vec<u8> {
    fn sid(sub: &[u32]) -> Vec<u8> {
        let mut s = vec![1u8, sub.len() as u8, 0, 0, 0, 0, 0, 5];
        for a in sub {
            s.extend_from_slice(&a.to_le_bytes());
        }
        s
    }
    fn ace(mask: u32, sid: &[u8]) -> Vec<u8> {
        let size = (8 + sid.len()) as u16;
        let mut a = vec![0u8, 0x02]; // ACCESS_ALLOWED_ACE_TYPE, CONTAINER_INHERIT_ACE
        a.extend_from_slice(&size.to_le_bytes());
        a.extend_from_slice(&mask.to_le_bytes());
        a.extend_from_slice(sid);
        a
    }
    let system = sid(&[18]);
    let admins = sid(&[32, 544]);
    let users = sid(&[32, 545]);
    let aces = [
        ace(0x000F_003F, &system), // KEY_ALL_ACCESS
        ace(0x000F_003F, &admins),
        ace(0x0002_0019, &users), // KEY_READ
    ];
    let acl_len: usize = 8 + aces.iter().map(Vec::len).sum::<usize>();
    let mut acl = vec![2u8, 0];
    acl.extend_from_slice(&(acl_len as u16).to_le_bytes());
    acl.extend_from_slice(&(aces.len() as u16).to_le_bytes());
    acl.extend_from_slice(&0u16.to_le_bytes());
    for a in &aces {
        acl.extend_from_slice(a);
    }
    let owner_off = 20u32;
    let group_off = owner_off + admins.len() as u32;
    let dacl_off = group_off + admins.len() as u32;
    let mut sd = vec![1u8, 0];
    sd.extend_from_slice(&0x8004u16.to_le_bytes()); // SE_SELF_RELATIVE | SE_DACL_PRESENT
    sd.extend_from_slice(&owner_off.to_le_bytes());
    sd.extend_from_slice(&group_off.to_le_bytes());
    sd.extend_from_slice(&0u32.to_le_bytes()); // no SACL
    sd.extend_from_slice(&dacl_off.to_le_bytes());
    sd.extend_from_slice(&admins);
    sd.extend_from_slice(&admins);
    sd.extend_from_slice(&acl);
    sd
}
