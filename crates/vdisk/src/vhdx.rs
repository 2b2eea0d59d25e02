//! VHDX (MS-VHDX): fixed, dynamic and differencing disks, with the log replayed in memory.
//!
//! Layout (little-endian; MS-VHDX §2.2–2.6): file identifier `vhdxfile` at 0; headers at
//! 64 KiB and 128 KiB (`head`, CRC-32C over 4 KiB); region tables at 192 KiB and 256 KiB
//! (`regi`, CRC-32C over 64 KiB) locating the BAT and metadata regions; the metadata region
//! (`metadata` table of items); the log; payload and sector-bitmap blocks. See
//! `docs/design-disk.md`.

use std::path::Path;
use std::sync::Arc;

use crc::{Crc, CRC_32_ISCSI};
use guestwall_source::ReadAt;

use crate::bytes::{le16, le32, le64, put16, put32, put64, utf16le};
use crate::container::{
    bit_run, BlockState, Container, ParentCheck, ParentId, ParentRequest, Piece, Reason,
};
use crate::error::{escape, Error, Result};
use crate::file::Src;
use crate::guid::Guid;
use crate::overlay::Overlay;
use crate::vhd::add_windows_path;
use crate::vhdx_log;

/// CRC-32C (Castagnoli), the checksum of every VHDX structure.
pub const CRC32C: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;
/// Offsets of the two headers.
pub const HEADER_OFFSETS: [u64; 2] = [64 * KIB, 128 * KIB];
/// Size of a header's checksummed area.
pub const HEADER_LEN: usize = 4096;
const REGION_TABLE_OFFSETS: [u64; 2] = [192 * KIB, 256 * KIB];
const REGION_TABLE_LEN: u64 = 64 * KIB;
const METADATA_TABLE_LEN: u64 = 64 * KIB;
const MAX_ENTRIES: u32 = 2047;
/// The largest virtual disk MS-VHDX allows (64 TiB).
pub const MAX_VIRTUAL_SIZE: u64 = 64 << 40;

/// The BAT region.
pub const BAT_REGION: Guid = Guid::from_fields(
    0x2dc27766,
    0xf623,
    0x4200,
    [0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08],
);
/// The metadata region.
pub const METADATA_REGION: Guid = Guid::from_fields(
    0x8b7ca206,
    0x4790,
    0x4b9a,
    [0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e],
);
const FILE_PARAMETERS: Guid = Guid::from_fields(
    0xcaa16737,
    0xfa36,
    0x4d43,
    [0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b],
);
const VIRTUAL_DISK_SIZE: Guid = Guid::from_fields(
    0x2fa54224,
    0xcd1b,
    0x4876,
    [0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8],
);
const PAGE_83: Guid = Guid::from_fields(
    0xbeca12ab,
    0xb2e6,
    0x4523,
    [0x93, 0xef, 0xc3, 0x09, 0xe0, 0x00, 0xc7, 0x46],
);
const LOGICAL_SECTOR_SIZE: Guid = Guid::from_fields(
    0x8141bf1d,
    0xa96f,
    0x4709,
    [0xba, 0x47, 0xf2, 0x33, 0xa8, 0xfa, 0xab, 0x5f],
);
const PHYSICAL_SECTOR_SIZE: Guid = Guid::from_fields(
    0xcda348c7,
    0x445d,
    0x4471,
    [0x9c, 0xc9, 0xe9, 0x88, 0x52, 0x51, 0xc5, 0x56],
);
const PARENT_LOCATOR: Guid = Guid::from_fields(
    0xa8d35f2d,
    0xb30b,
    0x454d,
    [0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c],
);
const VHDX_PARENT_LOCATOR_TYPE: Guid = Guid::from_fields(
    0xb04aefb7,
    0xd19e,
    0x4a81,
    [0xb7, 0x89, 0x25, 0xb8, 0xe9, 0x44, 0x59, 0x13],
);

/// BAT entry states.
const NOT_PRESENT: u64 = 0;
const UNDEFINED: u64 = 1;
const ZERO: u64 = 2;
const UNMAPPED: u64 = 3;
const FULLY_PRESENT: u64 = 6;
const PARTIALLY_PRESENT: u64 = 7;

/// A VHDX header (MS-VHDX §2.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VhdxHeader {
    /// SequenceNumber: the valid header with the higher one is current.
    pub sequence: u64,
    /// FileWriteGuid: changed before the first write to the file after it is opened.
    pub file_write_guid: Guid,
    /// DataWriteGuid: changed before the first write to the virtual disk's data.
    pub data_write_guid: Guid,
    /// LogGuid: non-zero when the log may hold entries to replay.
    pub log_guid: Guid,
    /// LogVersion (0).
    pub log_version: u16,
    /// Version (1).
    pub version: u16,
    /// LogLength in bytes (a multiple of 1 MiB).
    pub log_length: u32,
    /// LogOffset in bytes (a multiple of 1 MiB).
    pub log_offset: u64,
}

impl VhdxHeader {
    /// Parses a 4 KiB header, checking the signature, CRC-32C and the fields' constraints.
    /// The error is a short reason.
    pub fn parse(b: &[u8]) -> std::result::Result<VhdxHeader, String> {
        let b = b
            .get(..HEADER_LEN)
            .ok_or_else(|| format!("only {} bytes", b.len()))?;
        if b.get(..4) != Some(b"head") {
            return Err(format!(
                "signature {} instead of \"head\"",
                escape(b.get(..4).unwrap_or(b))
            ));
        }
        let stored = le32(b, 4);
        let computed = crc_with_zeroed(b, 4);
        if stored != computed {
            return Err(format!(
                "checksum {stored:#010x} stored, {computed:#010x} computed"
            ));
        }
        let h = VhdxHeader {
            sequence: le64(b, 8),
            file_write_guid: Guid::read(b, 16),
            data_write_guid: Guid::read(b, 32),
            log_guid: Guid::read(b, 48),
            log_version: le16(b, 64),
            version: le16(b, 66),
            log_length: le32(b, 68),
            log_offset: le64(b, 72),
        };
        if h.version != 1 {
            return Err(format!("version {} (expected 1)", h.version));
        }
        if h.log_version != 0 {
            return Err(format!("log version {} (expected 0)", h.log_version));
        }
        if u64::from(h.log_length) % MIB != 0
            || !h.log_offset.is_multiple_of(MIB)
            || h.log_offset < MIB
        {
            return Err(format!(
                "log at {:#x}+{:#x} is not aligned to 1 MiB past the first MiB",
                h.log_offset, h.log_length
            ));
        }
        Ok(h)
    }

    /// The 4 KiB on-disk form, with its CRC-32C.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        b[..4].copy_from_slice(b"head");
        put64(&mut b, 8, self.sequence);
        b[16..32].copy_from_slice(&self.file_write_guid.0);
        b[32..48].copy_from_slice(&self.data_write_guid.0);
        b[48..64].copy_from_slice(&self.log_guid.0);
        put16(&mut b, 64, self.log_version);
        put16(&mut b, 66, self.version);
        put32(&mut b, 68, self.log_length);
        put64(&mut b, 72, self.log_offset);
        let crc = CRC32C.checksum(&b);
        put32(&mut b, 4, crc);
        b
    }
}

/// CRC-32C of `b` with the 4 bytes at `field` taken as zero.
pub(crate) fn crc_with_zeroed(b: &[u8], field: usize) -> u32 {
    let mut d = CRC32C.digest();
    d.update(b.get(..field).unwrap_or(b));
    d.update(&[0u8; 4]);
    d.update(b.get(field + 4..).unwrap_or(&[]));
    d.finalize()
}

/// The current header of an open VHDX and where it is.
#[derive(Debug, Clone)]
pub struct VhdxHeaderInfo {
    /// 0 for the header at 64 KiB, 1 for the one at 128 KiB.
    pub index: usize,
    /// Its file offset.
    pub offset: u64,
    /// Its fields.
    pub header: VhdxHeader,
    /// Whether the other header is valid too.
    pub other_valid: bool,
}

impl VhdxHeaderInfo {
    /// The header a writer must write before its first write (MS-VHDX §2.2.2): the same
    /// fields with SequenceNumber + 1 and the given FileWriteGuid and DataWriteGuid, to be
    /// written at the *other* header's offset (returned), then flushed.
    pub fn next_header(&self, file_write_guid: Guid, data_write_guid: Guid) -> (u64, Vec<u8>) {
        let h = VhdxHeader {
            sequence: self.header.sequence.wrapping_add(1),
            file_write_guid,
            data_write_guid,
            ..self.header.clone()
        };
        (HEADER_OFFSETS[1 - (self.index & 1)], h.to_bytes())
    }
}

/// What the metadata says about the virtual disk.
#[derive(Debug, Clone)]
pub struct VhdxParams {
    /// Payload block size.
    pub block_size: u32,
    /// LeaveBlockAllocated flag.
    pub leave_blocks_allocated: bool,
    /// HasParent flag (a differencing disk).
    pub has_parent: bool,
    /// Virtual disk size in bytes.
    pub virtual_size: u64,
    /// Logical sector size (512 or 4096).
    pub logical_sector_size: u32,
    /// Physical sector size (512 or 4096).
    pub physical_sector_size: u32,
    /// Page 83 data (the virtual disk id).
    pub page83: Guid,
    /// Parent locator entries (key, value), for differencing disks.
    pub parent_locator: Vec<(String, String)>,
}

/// An open VHDX.
pub(crate) struct Vhdx {
    src: Src,
    /// The file as the log replay left it (the file itself when clean).
    view: Src,
    pub header: VhdxHeaderInfo,
    pub params: VhdxParams,
    pub log_dirty: bool,
    bat: Vec<u64>,
    chunk_ratio: u64,
}

#[derive(Debug, Clone, Copy)]
struct Region {
    guid: Guid,
    offset: u64,
    len: u64,
}

impl Vhdx {
    pub fn open(src: Src) -> Result<(Vhdx, Option<ParentRequest>, Vec<String>)> {
        let mut warnings = Vec::new();
        let mut sig = [0u8; 8];
        src.read(0, &mut sig, "VHDX file identifier")?;
        if &sig != b"vhdxfile" {
            return Err(Error::BadSignature {
                path: src.path.clone(),
                what: "VHDX file identifier",
                offset: 0,
                expected: "vhdxfile",
                found: escape(&sig),
            });
        }
        let header = read_headers(&src)?;
        let h = &header.header;
        // The log: replay into an overlay when it holds entries with the header's LogGuid.
        let mut log_dirty = false;
        let view = if h.log_guid.is_zero() {
            src.clone()
        } else {
            match vhdx_log::replay(&src, h.log_offset, u64::from(h.log_length), h.log_guid)? {
                None => src.clone(),
                Some(r) => {
                    log_dirty = true;
                    warnings.push(format!(
                        "{}: the VHDX log is dirty (LogGuid {}): {} entries (sequence {}..={}) replayed in memory; the file was not changed",
                        src.path.display(),
                        h.log_guid,
                        r.entries,
                        r.first_sequence,
                        r.head_sequence
                    ));
                    let size = src.size().max(r.last_file_offset);
                    let o: Arc<dyn ReadAt> = Arc::new(Overlay::new(src.r.clone(), size, r.patches));
                    Src::new(&src.path, o)
                }
            }
        };
        let regions = read_regions(&view, &mut warnings)?;
        let log = (h.log_offset, u64::from(h.log_length));
        check_regions(&view, &regions, log)?;
        let bat_region = regions
            .iter()
            .find(|r| r.guid == BAT_REGION)
            .copied()
            .ok_or_else(|| {
                view.invalid(
                    "VHDX region table",
                    REGION_TABLE_OFFSETS[0],
                    "no BAT region",
                )
            })?;
        let meta_region = regions
            .iter()
            .find(|r| r.guid == METADATA_REGION)
            .copied()
            .ok_or_else(|| {
                view.invalid(
                    "VHDX region table",
                    REGION_TABLE_OFFSETS[0],
                    "no metadata region",
                )
            })?;
        let params = read_metadata(&view, meta_region)?;
        let bs = u64::from(params.block_size);
        let lss = u64::from(params.logical_sector_size);
        let chunk_ratio = (1u64 << 23) * lss / bs;
        let data_blocks = params.virtual_size.div_ceil(bs);
        let bitmap_blocks = data_blocks.div_ceil(chunk_ratio);
        let entries = if params.has_parent {
            bitmap_blocks * (chunk_ratio + 1)
        } else if data_blocks == 0 {
            0
        } else {
            data_blocks + (data_blocks - 1) / chunk_ratio
        };
        if entries * 8 > bat_region.len {
            return Err(view.invalid(
                "VHDX BAT region",
                bat_region.offset,
                format!(
                    "{:#x} bytes hold {} entries; a virtual size of {:#x} in blocks of {bs:#x} needs {entries}",
                    bat_region.len,
                    bat_region.len / 8,
                    params.virtual_size
                ),
            ));
        }
        let raw = view.read_vec(bat_region.offset, entries * 8, "VHDX BAT")?;
        let bat: Vec<u64> = raw.chunks_exact(8).map(|c| le64(c, 0)).collect();
        let v = Vhdx {
            src,
            view,
            header,
            params,
            log_dirty,
            bat,
            chunk_ratio,
        };
        v.check_bat(&regions, log, bat_region.offset, data_blocks)?;
        let parent = if v.params.has_parent {
            Some(v.parent_request()?)
        } else {
            None
        };
        Ok((v, parent, warnings))
    }

    /// Checks every BAT entry.
    fn check_bat(
        &self,
        regions: &[Region],
        log: (u64, u64),
        bat_at: u64,
        data_blocks: u64,
    ) -> Result<()> {
        let file_size = self.view.size();
        let bs = u64::from(self.params.block_size);
        let cr = self.chunk_ratio;
        for (i, &e) in self.bat.iter().enumerate() {
            let i = i as u64;
            let at = bat_at + 8 * i;
            let is_bitmap = (i + 1).is_multiple_of(cr + 1);
            let state = e & 7;
            let off = (e >> 20) * MIB;
            let span = if is_bitmap { MIB } else { bs };
            let present = if is_bitmap {
                match state {
                    0 => false,
                    6 => true,
                    s => {
                        return Err(self.view.invalid(
                            "VHDX sector bitmap BAT entry",
                            at,
                            format!("state {s} (expected 0 or 6)"),
                        ))
                    }
                }
            } else {
                let block = i - i / (cr + 1);
                if block >= data_blocks {
                    continue;
                }
                match state {
                    NOT_PRESENT | UNDEFINED | ZERO | UNMAPPED => false,
                    FULLY_PRESENT => true,
                    PARTIALLY_PRESENT if self.params.has_parent => {
                        let bm = self
                            .bat
                            .get(((block / cr + 1) * (cr + 1) - 1) as usize)
                            .copied()
                            .unwrap_or(0);
                        if bm & 7 != 6 {
                            return Err(self.view.invalid(
                                "VHDX BAT entry",
                                at,
                                format!("block {block} is PARTIALLY_PRESENT but its chunk has no sector bitmap block"),
                            ));
                        }
                        true
                    }
                    s => {
                        return Err(self.view.invalid(
                            "VHDX BAT entry",
                            at,
                            format!("block {block} has state {s}, not allowed here"),
                        ))
                    }
                }
            };
            if !present {
                continue;
            }
            let end = off.saturating_add(span);
            if off < MIB {
                return Err(self.view.invalid(
                    "VHDX BAT entry",
                    at,
                    format!("block at {off:#x} overlaps the header section (first 1 MiB)"),
                ));
            }
            if end > file_size {
                return Err(self.view.invalid(
                    "VHDX BAT entry",
                    at,
                    format!("block at {off:#x}..{end:#x} lies past the end of the file ({file_size:#x})"),
                ));
            }
            let overlaps = |a: u64, l: u64| off < a.saturating_add(l) && a < end;
            if overlaps(log.0, log.1) {
                return Err(self.view.invalid(
                    "VHDX BAT entry",
                    at,
                    format!("block at {off:#x}..{end:#x} overlaps the log"),
                ));
            }
            if let Some(r) = regions.iter().find(|r| overlaps(r.offset, r.len)) {
                return Err(self.view.invalid(
                    "VHDX BAT entry",
                    at,
                    format!(
                        "block at {off:#x}..{end:#x} overlaps the region {} at {:#x}",
                        r.guid, r.offset
                    ),
                ));
            }
        }
        Ok(())
    }

    fn parent_request(&self) -> Result<ParentRequest> {
        let dir = self
            .src
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let get = |k: &str| {
            self.params
                .parent_locator
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        let mut linkage = Vec::new();
        for k in ["parent_linkage", "parent_linkage2"] {
            if let Some(v) = get(k) {
                match Guid::parse(v) {
                    Some(g) => linkage.push(g),
                    None => {
                        return Err(self.view.invalid(
                            "VHDX parent locator",
                            0,
                            format!("{k} is not a GUID: {v:?}"),
                        ))
                    }
                }
            }
        }
        if linkage.is_empty() {
            return Err(self
                .view
                .invalid("VHDX parent locator", 0, "no parent_linkage entry"));
        }
        let mut cands = Vec::new();
        if let Some(p) = get("relative_path") {
            add_windows_path(&mut cands, &dir, p, true);
        }
        if let Some(p) = get("absolute_win32_path") {
            add_windows_path(&mut cands, &dir, p, false);
        }
        if let Some(p) = get("volume_path") {
            add_windows_path(&mut cands, &dir, p, false);
        }
        Ok(ParentRequest {
            candidates: cands,
            check: ParentCheck::VhdxDataWriteGuid(linkage),
        })
    }
}

fn read_headers(src: &Src) -> Result<VhdxHeaderInfo> {
    let mut parsed = Vec::new();
    for &at in &HEADER_OFFSETS {
        let r = src
            .read_vec(at, HEADER_LEN as u64, "VHDX header")
            .map_err(|e| e.to_string())
            .and_then(|b| VhdxHeader::parse(&b));
        parsed.push(r);
    }
    let (h1, h2) = (&parsed[0], &parsed[1]);
    let pick = match (h1, h2) {
        (Ok(a), Ok(b)) => {
            if b.sequence > a.sequence {
                1
            } else {
                0
            }
        }
        (Ok(_), Err(_)) => 0,
        (Err(_), Ok(_)) => 1,
        (Err(a), Err(b)) => {
            return Err(src.invalid(
                "VHDX headers",
                HEADER_OFFSETS[0],
                format!("no valid header: at 0x10000: {a}; at 0x20000: {b}"),
            ))
        }
    };
    let header = match &parsed[pick] {
        Ok(h) => h.clone(),
        Err(_) => unreachable_header(src)?,
    };
    Ok(VhdxHeaderInfo {
        index: pick,
        offset: HEADER_OFFSETS[pick],
        header,
        other_valid: parsed[1 - pick].is_ok(),
    })
}

fn unreachable_header(src: &Src) -> Result<VhdxHeader> {
    Err(src.invalid("VHDX headers", HEADER_OFFSETS[0], "no valid header"))
}

fn read_regions(src: &Src, warnings: &mut Vec<String>) -> Result<Vec<Region>> {
    let mut errs = Vec::new();
    for (n, &at) in REGION_TABLE_OFFSETS.iter().enumerate() {
        match parse_region_table(src, at) {
            Ok(r) => {
                if n == 1 {
                    warnings.push(format!(
                        "{}: VHDX region table at 0x30000 is damaged ({}); using the copy at 0x40000",
                        src.path.display(),
                        errs.join("")
                    ));
                }
                return Ok(r);
            }
            // A table that is intact but says something unacceptable is not "damaged":
            // the copy says the same.
            Err(e @ (Error::Unsupported { .. } | Error::Invalid { .. })) => return Err(e),
            Err(e) => errs.push(e.to_string()),
        }
    }
    Err(src.invalid(
        "VHDX region tables",
        REGION_TABLE_OFFSETS[0],
        format!("both are damaged: {}", errs.join("; ")),
    ))
}

fn parse_region_table(src: &Src, at: u64) -> Result<Vec<Region>> {
    let b = src.read_vec(at, REGION_TABLE_LEN, "VHDX region table")?;
    if b.get(..4) != Some(b"regi") {
        return Err(Error::BadSignature {
            path: src.path.clone(),
            what: "VHDX region table",
            offset: at,
            expected: "regi",
            found: escape(b.get(..4).unwrap_or(&b)),
        });
    }
    let stored = le32(&b, 4);
    let computed = crc_with_zeroed(&b, 4);
    if stored != computed {
        return Err(Error::BadChecksum {
            path: src.path.clone(),
            what: "VHDX region table",
            offset: at,
            stored,
            computed,
        });
    }
    let count = le32(&b, 8);
    if count > MAX_ENTRIES {
        return Err(src.invalid(
            "VHDX region table entry count",
            at + 8,
            format!("{count} (at most {MAX_ENTRIES})"),
        ));
    }
    let mut out: Vec<Region> = Vec::new();
    for i in 0..count as usize {
        let e = 16 + 32 * i;
        let r = Region {
            guid: Guid::read(&b, e),
            offset: le64(&b, e + 16),
            len: u64::from(le32(&b, e + 24)),
        };
        let required = le32(&b, e + 28) & 1 == 1;
        let eat = at + e as u64;
        if r.guid != BAT_REGION && r.guid != METADATA_REGION {
            if required {
                return Err(Error::Unsupported {
                    path: src.path.clone(),
                    detail: format!(
                        "region {} (entry at {eat:#x}) is marked required and is not known",
                        r.guid
                    ),
                });
            }
            continue;
        }
        if out.iter().any(|o| o.guid == r.guid) {
            return Err(src.invalid(
                "VHDX region table entry",
                eat,
                format!("region {} listed twice", r.guid),
            ));
        }
        out.push(r);
    }
    Ok(out)
}

fn check_regions(src: &Src, regions: &[Region], log: (u64, u64)) -> Result<()> {
    let size = src.size();
    let mut spans: Vec<(String, u64, u64)> = vec![("the log".into(), log.0, log.1)];
    for r in regions {
        let name = if r.guid == BAT_REGION {
            "BAT region"
        } else {
            "metadata region"
        };
        if r.offset % MIB != 0 || r.offset < MIB || r.len % MIB != 0 || r.len == 0 {
            return Err(src.invalid(
                "VHDX region",
                r.offset,
                format!(
                    "{name} at {:#x}+{:#x} is not 1 MiB-aligned past the first MiB",
                    r.offset, r.len
                ),
            ));
        }
        if r.offset.saturating_add(r.len) > size {
            return Err(src.truncated(
                if r.guid == BAT_REGION {
                    "VHDX BAT region"
                } else {
                    "VHDX metadata region"
                },
                r.offset,
                r.len,
            ));
        }
        for (other, o, l) in &spans {
            if r.offset < o.saturating_add(*l) && *o < r.offset + r.len {
                return Err(src.invalid(
                    "VHDX region",
                    r.offset,
                    format!(
                        "{name} at {:#x}+{:#x} overlaps {other} at {o:#x}+{l:#x}",
                        r.offset, r.len
                    ),
                ));
            }
        }
        spans.push((name.into(), r.offset, r.len));
    }
    Ok(())
}

fn read_metadata(src: &Src, region: Region) -> Result<VhdxParams> {
    let at = region.offset;
    let t = src.read_vec(at, METADATA_TABLE_LEN, "VHDX metadata table")?;
    if t.get(..8) != Some(b"metadata") {
        return Err(Error::BadSignature {
            path: src.path.clone(),
            what: "VHDX metadata table",
            offset: at,
            expected: "metadata",
            found: escape(t.get(..8).unwrap_or(&t)),
        });
    }
    let count = le16(&t, 10);
    if u32::from(count) > MAX_ENTRIES {
        return Err(src.invalid(
            "VHDX metadata entry count",
            at + 10,
            format!("{count} (at most {MAX_ENTRIES})"),
        ));
    }
    let mut items: Vec<(Guid, u64, u32, u64)> = Vec::new(); // id, offset in region, length, entry offset
    for i in 0..usize::from(count) {
        let e = 32 + 32 * i;
        let id = Guid::read(&t, e);
        let off = u64::from(le32(&t, e + 16));
        let len = le32(&t, e + 20);
        let flags = le32(&t, e + 24);
        let is_user = flags & 1 == 1;
        let required = flags & 4 == 4;
        let eat = at + e as u64;
        if len > 0 && (off < METADATA_TABLE_LEN || off + u64::from(len) > region.len) {
            return Err(src.invalid(
                "VHDX metadata entry",
                eat,
                format!(
                    "item {id} at {off:#x}+{len:#x} lies outside the metadata region's data area (64 KiB..{:#x})",
                    region.len
                ),
            ));
        }
        let known = !is_user
            && [
                FILE_PARAMETERS,
                VIRTUAL_DISK_SIZE,
                PAGE_83,
                LOGICAL_SECTOR_SIZE,
                PHYSICAL_SECTOR_SIZE,
                PARENT_LOCATOR,
            ]
            .contains(&id);
        if !known {
            if required {
                return Err(Error::Unsupported {
                    path: src.path.clone(),
                    detail: format!(
                        "metadata item {id} (entry at {eat:#x}) is required and not known"
                    ),
                });
            }
            continue;
        }
        if items.iter().any(|(g, ..)| *g == id) {
            return Err(src.invalid(
                "VHDX metadata entry",
                eat,
                format!("item {id} listed twice"),
            ));
        }
        items.push((id, off, len, eat));
    }
    let item = |id: Guid, what: &'static str, min: u32| -> Result<Option<Vec<u8>>> {
        let Some(&(_, off, len, eat)) = items.iter().find(|(g, ..)| *g == id) else {
            return Ok(None);
        };
        if len < min {
            return Err(src.invalid(what, eat, format!("item is {len} bytes, needs {min}")));
        }
        src.read_vec(at + off, u64::from(len), what).map(Some)
    };
    let missing = |what: &'static str| src.invalid(what, at, "required metadata item missing");
    let fp = item(FILE_PARAMETERS, "VHDX file parameters", 8)?
        .ok_or_else(|| missing("VHDX file parameters"))?;
    let block_size = le32(&fp, 0);
    let flags = le32(&fp, 4);
    let vs = item(VIRTUAL_DISK_SIZE, "VHDX virtual disk size", 8)?
        .ok_or_else(|| missing("VHDX virtual disk size"))?;
    let virtual_size = le64(&vs, 0);
    let ls = item(LOGICAL_SECTOR_SIZE, "VHDX logical sector size", 4)?
        .ok_or_else(|| missing("VHDX logical sector size"))?;
    let logical_sector_size = le32(&ls, 0);
    let ps = item(PHYSICAL_SECTOR_SIZE, "VHDX physical sector size", 4)?
        .ok_or_else(|| missing("VHDX physical sector size"))?;
    let physical_sector_size = le32(&ps, 0);
    let page83 = item(PAGE_83, "VHDX page 83 data", 16)?
        .map(|b| Guid::read(&b, 0))
        .unwrap_or_default();
    if !block_size.is_power_of_two() || !(MIB..=256 * MIB).contains(&u64::from(block_size)) {
        return Err(src.invalid(
            "VHDX block size",
            at,
            format!("{block_size:#x} (expected a power of two from 1 MiB to 256 MiB)"),
        ));
    }
    for (what, v) in [
        ("VHDX logical sector size", logical_sector_size),
        ("VHDX physical sector size", physical_sector_size),
    ] {
        if v != 512 && v != 4096 {
            return Err(src.invalid(what, at, format!("{v} (expected 512 or 4096)")));
        }
    }
    if virtual_size == 0
        || virtual_size > MAX_VIRTUAL_SIZE
        || !virtual_size.is_multiple_of(u64::from(logical_sector_size))
    {
        return Err(src.invalid(
            "VHDX virtual disk size",
            at,
            format!(
                "{virtual_size:#x} (expected a non-zero multiple of {logical_sector_size} up to 64 TiB)"
            ),
        ));
    }
    let has_parent = flags & 2 == 2;
    let mut parent_locator = Vec::new();
    if has_parent {
        let pl = item(PARENT_LOCATOR, "VHDX parent locator", 20)?
            .ok_or_else(|| missing("VHDX parent locator"))?;
        let ty = Guid::read(&pl, 0);
        if ty != VHDX_PARENT_LOCATOR_TYPE {
            return Err(Error::Unsupported {
                path: src.path.clone(),
                detail: format!("parent locator type {ty}"),
            });
        }
        let n = usize::from(le16(&pl, 18));
        for i in 0..n {
            let e = 20 + 12 * i;
            let ko = le32(&pl, e) as usize;
            let vo = le32(&pl, e + 4) as usize;
            let kl = usize::from(le16(&pl, e + 8));
            let vl = usize::from(le16(&pl, e + 10));
            let key = pl.get(ko..ko.saturating_add(kl));
            let val = pl.get(vo..vo.saturating_add(vl));
            match (key, val, e + 12 <= pl.len()) {
                (Some(k), Some(v), true) => parent_locator.push((utf16le(k), utf16le(v))),
                _ => {
                    return Err(src.invalid(
                        "VHDX parent locator entry",
                        at,
                        format!("entry {i} points outside the locator ({} bytes)", pl.len()),
                    ))
                }
            }
        }
    }
    Ok(VhdxParams {
        block_size,
        leave_blocks_allocated: flags & 1 == 1,
        has_parent,
        virtual_size,
        logical_sector_size,
        physical_sector_size,
        page83,
        parent_locator,
    })
}

impl Container for Vhdx {
    fn virtual_size(&self) -> u64 {
        self.params.virtual_size
    }

    fn resolve(&self, offset: u64, len: u64) -> Result<(u64, Piece)> {
        let bs = u64::from(self.params.block_size);
        let cr = self.chunk_ratio;
        let len = len.min(self.params.virtual_size.saturating_sub(offset));
        let block = offset / bs;
        let in_b = offset % bs;
        let n = len.min(bs - in_b);
        let e = self
            .bat
            .get((block + block / cr) as usize)
            .copied()
            .unwrap_or(0);
        let absent = |r| {
            if self.params.has_parent {
                Piece::Parent(r)
            } else {
                Piece::Zero(r)
            }
        };
        let file_offset = (e >> 20) * MIB + in_b;
        Ok(match e & 7 {
            FULLY_PRESENT => (
                n,
                Piece::Data {
                    file_offset,
                    state: BlockState::VhdxFullyPresent,
                },
            ),
            PARTIALLY_PRESENT if self.params.has_parent => {
                let lss = u64::from(self.params.logical_sector_size);
                let chunk = block / cr;
                let bm = self
                    .bat
                    .get(((chunk + 1) * (cr + 1) - 1) as usize)
                    .copied()
                    .unwrap_or(0);
                let bm_off = (bm >> 20) * MIB;
                // Sector index within the chunk's bitmap block.
                let s0 = (block % cr) * (bs / lss) + in_b / lss;
                let s1 = (block % cr) * (bs / lss) + (in_b + n - 1) / lss;
                let bits = self.view.read_vec(
                    bm_off + s0 / 8,
                    s1 / 8 - s0 / 8 + 1,
                    "VHDX sector bitmap",
                )?;
                let (set, run) = bit_run(&bits, s0 % 8, s1 - s0 + 1, false);
                let first = in_b / lss;
                let n = ((first + run) * lss).min(in_b + n) - in_b;
                if set {
                    (
                        n,
                        Piece::Data {
                            file_offset,
                            state: BlockState::VhdxPartiallyPresent,
                        },
                    )
                } else {
                    (n, Piece::Parent(Reason::PartiallyPresent))
                }
            }
            NOT_PRESENT => (n, absent(Reason::NotPresent)),
            UNDEFINED => (n, Piece::Zero(Reason::Undefined)),
            ZERO => (n, Piece::Zero(Reason::Zero)),
            UNMAPPED => (n, Piece::Zero(Reason::Unmapped)),
            // Checked at open; kept total.
            _ => (n, Piece::Zero(Reason::Undefined)),
        })
    }

    fn read_data(&self, file_offset: u64, buf: &mut [u8]) -> Result<()> {
        self.view.read(file_offset, buf, "VHDX payload")
    }

    fn parent_id(&self) -> ParentId {
        ParentId::Vhdx(self.header.header.data_write_guid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_next() {
        let h = VhdxHeader {
            sequence: 7,
            file_write_guid: Guid([1; 16]),
            data_write_guid: Guid([2; 16]),
            log_guid: Guid::ZERO,
            log_version: 0,
            version: 1,
            log_length: 1 << 20,
            log_offset: 1 << 20,
        };
        let b = h.to_bytes();
        assert_eq!(VhdxHeader::parse(&b).unwrap(), h);
        let mut bad = b.clone();
        bad[100] ^= 1;
        assert!(VhdxHeader::parse(&bad).unwrap_err().contains("checksum"));
        let info = VhdxHeaderInfo {
            index: 0,
            offset: HEADER_OFFSETS[0],
            header: h.clone(),
            other_valid: true,
        };
        let (f, g) = (Guid::random().unwrap(), Guid::random().unwrap());
        let (at, nb) = info.next_header(f, g);
        assert_eq!(at, 128 * 1024);
        let n = VhdxHeader::parse(&nb).unwrap();
        assert_eq!(n.sequence, 8);
        assert_eq!((n.file_write_guid, n.data_write_guid), (f, g));
        assert_eq!(
            (n.log_offset, n.log_length, n.log_guid),
            (h.log_offset, h.log_length, h.log_guid)
        );
        let info1 = VhdxHeaderInfo {
            index: 1,
            offset: HEADER_OFFSETS[1],
            ..info
        };
        assert_eq!(info1.next_header(f, g).0, 64 * 1024);
    }
}
