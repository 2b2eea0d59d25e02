//! VHD (Virtual PC / Hyper-V generation 1 format): fixed, dynamic and differencing disks.
//!
//! Layout (all integers big-endian; "Virtual Hard Disk Image Format Specification"):
//! - a 512-byte footer (`conectix`) at the end of every VHD; dynamic and differencing disks
//!   also keep a copy at offset 0;
//! - fixed: the virtual disk's bytes, then the footer;
//! - dynamic/differencing: a 1024-byte `cxsparse` header at the footer's data offset, a BAT
//!   of u32 sector numbers (0xFFFFFFFF = unallocated), and blocks, each a sector bitmap
//!   (one bit per 512-byte sector, most significant bit first, padded to 512 bytes) followed
//!   by the block's data.

#![allow(clippy::big_endian_bytes)]

use std::path::{Path, PathBuf};

use crate::bytes::{be16, be32, be64, utf16be, utf16le};
use crate::container::{
    bit_run, BlockState, Container, ParentCheck, ParentId, ParentRequest, Piece, Reason,
};
use crate::error::{escape, Error, Result};
use crate::file::Src;
use crate::guid::Guid;

/// The footer's cookie.
pub const FOOTER_COOKIE: &[u8; 8] = b"conectix";
/// The dynamic header's cookie.
pub const HEADER_COOKIE: &[u8; 8] = b"cxsparse";
/// Footer size.
pub const FOOTER_LEN: u64 = 512;
const SECTOR: u64 = 512;
const UNALLOCATED: u32 = 0xFFFF_FFFF;
/// Largest parent locator data read (bytes).
const MAX_LOCATOR: u32 = 64 * 1024;

/// VHD disk types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VhdType {
    /// Type 2.
    Fixed,
    /// Type 3.
    Dynamic,
    /// Type 4.
    Differencing,
}

/// The fields of a VHD footer that matter here.
#[derive(Debug, Clone)]
pub struct Footer {
    /// Offset of the dynamic header (0xFFFFFFFFFFFFFFFF for fixed disks).
    pub data_offset: u64,
    /// Creator application (`win `, `qemu`, `qem2`, `vpc `, `d2v `...).
    pub creator_app: [u8; 4],
    /// Current size of the virtual disk in bytes.
    pub current_size: u64,
    /// Geometry: cylinders, heads, sectors per track.
    pub geometry: (u16, u8, u8),
    /// The disk type.
    pub disk_type: VhdType,
    /// Unique id (a differencing child records its parent's).
    pub unique_id: Guid,
}

/// The checksum of footers and dynamic headers: the one's complement of the byte sum, with the
/// checksum field (at `field`) taken as zero.
pub fn checksum(bytes: &[u8], field: usize) -> u32 {
    let mut sum: u32 = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !(field..field + 4).contains(&i) {
            sum = sum.wrapping_add(u32::from(b));
        }
    }
    !sum
}

/// Parses and checks a 512-byte footer that was read at `offset`.
pub(crate) fn parse_footer(src: &Src, b: &[u8], offset: u64) -> Result<Footer> {
    if b.get(..8) != Some(&FOOTER_COOKIE[..]) {
        return Err(Error::BadSignature {
            path: src.path.clone(),
            what: "VHD footer",
            offset,
            expected: "conectix",
            found: escape(b.get(..8).unwrap_or(b)),
        });
    }
    let stored = be32(b, 64);
    let computed = checksum(b, 64);
    if stored != computed {
        return Err(Error::BadChecksum {
            path: src.path.clone(),
            what: "VHD footer",
            offset,
            stored,
            computed,
        });
    }
    let disk_type = match be32(b, 60) {
        2 => VhdType::Fixed,
        3 => VhdType::Dynamic,
        4 => VhdType::Differencing,
        t => {
            return Err(src.invalid(
                "VHD footer disk type",
                offset + 60,
                format!("{t} (expected 2 fixed, 3 dynamic or 4 differencing)"),
            ))
        }
    };
    let mut creator_app = [0u8; 4];
    if let Some(s) = b.get(28..32) {
        creator_app.copy_from_slice(s);
    }
    Ok(Footer {
        data_offset: be64(b, 16),
        creator_app,
        current_size: be64(b, 48),
        geometry: (
            be16(b, 56),
            b.get(58).copied().unwrap_or(0),
            b.get(59).copied().unwrap_or(0),
        ),
        disk_type,
        unique_id: Guid::read(b, 68),
    })
}

/// True when the source ends with a `conectix` footer (or starts with one: a dynamic disk
/// whose trailing footer is damaged).
pub(crate) fn looks_like_vhd(r: &dyn guestwall_source::ReadAt) -> bool {
    let size = r.size();
    let mut c = [0u8; 8];
    if size >= FOOTER_LEN
        && r.read_exact_at(size - FOOTER_LEN, &mut c).is_ok()
        && &c == FOOTER_COOKIE
    {
        return true;
    }
    size >= FOOTER_LEN + 1024 && r.read_exact_at(0, &mut c).is_ok() && &c == FOOTER_COOKIE
}

/// An open VHD.
pub(crate) struct Vhd {
    src: Src,
    pub footer: Footer,
    size: u64,
    dynamic: Option<Dynamic>,
}

struct Dynamic {
    block_size: u64,
    bitmap_len: u64,
    bat: Vec<u32>,
    differencing: bool,
}

impl Vhd {
    /// Opens a VHD; returns it, the parent to find (differencing), and warnings.
    pub fn open(src: Src) -> Result<(Vhd, Option<ParentRequest>, Vec<String>)> {
        let mut warnings = Vec::new();
        let size = src.size();
        if size < FOOTER_LEN {
            return Err(src.truncated("VHD footer", 0, FOOTER_LEN));
        }
        let mut fb = [0u8; 512];
        let foot_at = size - FOOTER_LEN;
        src.read(foot_at, &mut fb, "VHD footer")?;
        let footer = match parse_footer(&src, &fb, foot_at) {
            Ok(f) => f,
            Err(e) => {
                // A dynamic disk keeps a copy at offset 0.
                let mut cb = [0u8; 512];
                let copy = if size >= 2 * FOOTER_LEN {
                    src.read(0, &mut cb, "VHD footer copy")
                        .and_then(|()| parse_footer(&src, &cb, 0))
                        .ok()
                        .filter(|f| f.disk_type != VhdType::Fixed)
                } else {
                    None
                };
                match copy {
                    Some(f) => {
                        warnings.push(format!(
                            "{}: the footer at the end is damaged ({e}); using its copy at offset 0",
                            src.path.display()
                        ));
                        f
                    }
                    None => return Err(e),
                }
            }
        };
        let vsize = footer.current_size;
        match footer.disk_type {
            VhdType::Fixed => {
                if vsize > size - FOOTER_LEN {
                    return Err(Error::Truncated {
                        path: src.path.clone(),
                        what: "fixed VHD data (footer current size)",
                        offset: 0,
                        needed: vsize.saturating_add(FOOTER_LEN),
                        size,
                    });
                }
                if vsize % SECTOR != 0 {
                    warnings.push(format!(
                        "{}: VHD current size {vsize:#x} is not a multiple of 512",
                        src.path.display()
                    ));
                }
                Ok((
                    Vhd {
                        src,
                        footer,
                        size: vsize,
                        dynamic: None,
                    },
                    None,
                    warnings,
                ))
            }
            VhdType::Dynamic | VhdType::Differencing => {
                let (dynamic, parent) = open_dynamic(&src, &footer)?;
                Ok((
                    Vhd {
                        src,
                        size: vsize,
                        footer,
                        dynamic: Some(dynamic),
                    },
                    parent,
                    warnings,
                ))
            }
        }
    }

    pub fn vhd_type(&self) -> VhdType {
        self.footer.disk_type
    }
}

fn open_dynamic(src: &Src, footer: &Footer) -> Result<(Dynamic, Option<ParentRequest>)> {
    let size = src.size();
    let at = footer.data_offset;
    let h = src.read_vec(at, 1024, "VHD dynamic header")?;
    if h.get(..8) != Some(&HEADER_COOKIE[..]) {
        return Err(Error::BadSignature {
            path: src.path.clone(),
            what: "VHD dynamic header",
            offset: at,
            expected: "cxsparse",
            found: escape(h.get(..8).unwrap_or(&h)),
        });
    }
    let stored = be32(&h, 36);
    let computed = checksum(&h, 36);
    if stored != computed {
        return Err(Error::BadChecksum {
            path: src.path.clone(),
            what: "VHD dynamic header",
            offset: at,
            stored,
            computed,
        });
    }
    let table = be64(&h, 16);
    let max_entries = be32(&h, 28);
    let block_size = u64::from(be32(&h, 32));
    if !block_size.is_power_of_two() || !(SECTOR * 8..=256 << 20).contains(&block_size) {
        return Err(src.invalid(
            "VHD block size",
            at + 32,
            format!("{block_size:#x} (expected a power of two from 4 KiB to 256 MiB)"),
        ));
    }
    let needed = footer.current_size.div_ceil(block_size);
    if needed > u64::from(max_entries) {
        return Err(src.invalid(
            "VHD max table entries",
            at + 28,
            format!(
                "{max_entries} entries cannot describe {:#x} bytes in blocks of {block_size:#x} ({needed} needed)",
                footer.current_size
            ),
        ));
    }
    let raw = src.read_vec(table, needed * 4, "VHD block allocation table")?;
    let bat: Vec<u32> = raw.chunks_exact(4).map(|c| be32(c, 0)).collect();
    let bitmap_len = (block_size / SECTOR).div_ceil(8).next_multiple_of(SECTOR);
    let block_span = bitmap_len + block_size;
    let data_end = size.saturating_sub(FOOTER_LEN);
    let table_end = table + needed * 4;
    for (i, &e) in bat.iter().enumerate() {
        if e == UNALLOCATED {
            continue;
        }
        let start = u64::from(e) * SECTOR;
        let end = start + block_span;
        let entry_at = table + 4 * i as u64;
        if end > data_end {
            return Err(src.invalid(
                "VHD BAT entry",
                entry_at,
                format!(
                    "block {i} at {start:#x}..{end:#x} lies past the end of the data ({data_end:#x})"
                ),
            ));
        }
        let overlaps = |a: u64, b: u64| start < b && a < end;
        if start < FOOTER_LEN || overlaps(at, at + 1024) || overlaps(table, table_end) {
            return Err(src.invalid(
                "VHD BAT entry",
                entry_at,
                format!(
                    "block {i} at {start:#x}..{end:#x} overlaps the footer copy, header or BAT"
                ),
            ));
        }
    }
    let differencing = footer.disk_type == VhdType::Differencing;
    let parent = if differencing {
        Some(parent_request(src, &h, at)?)
    } else {
        None
    };
    Ok((
        Dynamic {
            block_size,
            bitmap_len,
            bat,
            differencing,
        },
        parent,
    ))
}

/// Platform codes of parent locators.
const W2RU: u32 = u32::from_be_bytes(*b"W2ru");
const W2KU: u32 = u32::from_be_bytes(*b"W2ku");
const MACX: u32 = u32::from_be_bytes(*b"MacX");
const MAC: u32 = u32::from_be_bytes(*b"Mac ");

fn parent_request(src: &Src, h: &[u8], at: u64) -> Result<ParentRequest> {
    let dir = src.path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut cands: Vec<PathBuf> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for i in 0..8usize {
        let e = 576 + 24 * i;
        let code = be32(h, e);
        let len = be32(h, e + 8);
        let off = be64(h, e + 16);
        if code == 0 || len == 0 {
            continue;
        }
        if len > MAX_LOCATOR {
            return Err(src.invalid(
                "VHD parent locator",
                at + e as u64,
                format!("data length {len:#x} exceeds {MAX_LOCATOR:#x}"),
            ));
        }
        let data = src.read_vec(off, u64::from(len), "VHD parent locator data")?;
        match code {
            W2RU => add_windows_path(&mut cands, &dir, &utf16le(&data), true),
            W2KU => add_windows_path(&mut cands, &dir, &utf16le(&data), false),
            MACX => {
                let s = String::from_utf8_lossy(&data);
                let s = s.trim_end_matches('\0');
                let p = s
                    .strip_prefix("file://localhost")
                    .or_else(|| s.strip_prefix("file://"))
                    .unwrap_or(s);
                let p = percent_decode(p);
                if p.starts_with('/') {
                    push(&mut cands, PathBuf::from(&p));
                }
                if let Some(n) = p.rsplit('/').next().filter(|n| !n.is_empty()) {
                    names.push(n.to_string());
                }
            }
            MAC => {} // a Mac OS alias record: nothing usable here; the name below covers it
            _ => {}
        }
    }
    let name = utf16be(h.get(64..576).unwrap_or(&[]));
    if !name.is_empty() {
        names.push(name);
    }
    for n in names {
        let n = n.rsplit(['\\', '/']).next().unwrap_or(&n).to_string();
        if !n.is_empty() {
            push(&mut cands, dir.join(n));
        }
    }
    Ok(ParentRequest {
        candidates: cands,
        check: ParentCheck::VhdUniqueId(Guid::read(h, 40)),
    })
}

fn push(v: &mut Vec<PathBuf>, p: PathBuf) {
    if !v.contains(&p) {
        v.push(p);
    }
}

/// Adds the candidates for a Windows path: a relative one resolved against the child's folder,
/// an absolute one as is when it is a Unix path, and in every case its file name beside the child.
pub(crate) fn add_windows_path(v: &mut Vec<PathBuf>, dir: &Path, s: &str, relative: bool) {
    let s = s.trim_end_matches('\0').trim();
    if s.is_empty() {
        return;
    }
    let unix = s.replace('\\', "/");
    if relative && !unix.starts_with('/') && !unix.contains(':') {
        let rel = unix.trim_start_matches("./");
        push(v, dir.join(rel));
    } else if unix.starts_with('/') && !unix.starts_with("//") {
        push(v, PathBuf::from(&unix));
    }
    if let Some(n) = unix.rsplit('/').next().filter(|n| !n.is_empty()) {
        push(v, dir.join(n));
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            if let Some(v) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Container for Vhd {
    fn virtual_size(&self) -> u64 {
        self.size
    }

    fn resolve(&self, offset: u64, len: u64) -> Result<(u64, Piece)> {
        let len = len.min(self.size.saturating_sub(offset));
        let Some(d) = &self.dynamic else {
            return Ok((
                len,
                Piece::Data {
                    file_offset: offset,
                    state: BlockState::VhdFixed,
                },
            ));
        };
        let b = offset / d.block_size;
        let in_b = offset % d.block_size;
        let n = len.min(d.block_size - in_b);
        let absent = |r| {
            if d.differencing {
                Piece::Parent(r)
            } else {
                Piece::Zero(r)
            }
        };
        let e = d.bat.get(b as usize).copied().unwrap_or(UNALLOCATED);
        if e == UNALLOCATED {
            return Ok((n, absent(Reason::NotAllocated)));
        }
        let start = u64::from(e) * SECTOR;
        // The bitmap bits of the sectors this range touches.
        let s0 = in_b / SECTOR;
        let s1 = (in_b + n - 1) / SECTOR;
        let first_byte = s0 / 8;
        let nbytes = s1 / 8 - first_byte + 1;
        let bits = self
            .src
            .read_vec(start + first_byte, nbytes, "VHD sector bitmap")?;
        let (set, run) = bit_run(&bits, s0 % 8, s1 - s0 + 1, true);
        let run_end = ((s0 + run) * SECTOR).min(in_b + n);
        let n = run_end - in_b;
        if set {
            Ok((
                n,
                Piece::Data {
                    file_offset: start + d.bitmap_len + in_b,
                    state: BlockState::VhdBitmapSet,
                },
            ))
        } else {
            Ok((n, absent(Reason::BitmapClear)))
        }
    }

    fn read_data(&self, file_offset: u64, buf: &mut [u8]) -> Result<()> {
        self.src.read(file_offset, buf, "VHD data")
    }

    fn parent_id(&self) -> ParentId {
        ParentId::Vhd(self.footer.unique_id)
    }
}
