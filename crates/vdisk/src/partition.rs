//! Partition tables: MBR (with extended/logical partitions) and GPT, over any [`ReadAt`].
//!
//! - MBR: sector 0 ends with 0x55AA and holds four 16-byte entries at 446 (status, CHS,
//!   type, CHS, first LBA u32, sector count u32). Types 0x05/0x0F/0x85 are extended
//!   partitions: a chain of EBRs, each holding one logical partition (relative to the EBR)
//!   and a link to the next EBR (relative to the extended partition's start). Type 0xEE is
//!   the protective MBR of a GPT disk.
//! - GPT (UEFI §5.3): the header at LBA 1 (`EFI PART`, CRC-32 over HeaderSize bytes) and its
//!   entry array (CRC-32), with a backup header at the last LBA.
//! - No table, but an NTFS (`NTFS    `) or BitLocker (`-FVE-FS-`) boot sector at offset 0: one
//!   partition covering the whole disk.
//!
//! Partitions that do not fit on the disk are dropped with a warning, as are EBR chains that
//! loop or run too long (the partitions before the fault are kept): a damaged table should
//! not hide the partitions that are intact. A GPT whose two headers are both damaged is an
//! error.

use std::collections::HashSet;
use std::io;

use crc::{Crc, CRC_32_ISO_HDLC};
use guestwall_source::{ReadAt, Slice};

use crate::bytes::{le32, le64, utf16le};
use crate::error::{Error, Result};
use crate::guid::Guid;

/// CRC-32 (ISO-HDLC, as zlib), the checksum of GPT headers and entry arrays.
pub const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);
/// The most EBRs followed in one extended partition.
pub const MAX_EBR_HOPS: usize = 256;
/// The largest GPT entry array read (bytes).
pub const MAX_GPT_ARRAY: u64 = 4 << 20;

/// Which kind of table the partitions come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// MBR (DOS) partition table.
    Mbr,
    /// GUID partition table.
    Gpt,
    /// No table: the whole disk is one NTFS or BitLocker volume.
    WholeDisk,
    /// No table found.
    None,
}

/// A partition's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionKind {
    /// An MBR type byte.
    Mbr(u8),
    /// A GPT type GUID.
    Gpt(Guid),
    /// A whole-disk volume, by its boot sector: "NTFS" or "BitLocker".
    Volume(&'static str),
}

/// GPT type GUIDs with friendly names.
pub mod gpt_types {
    use crate::guid::Guid;
    /// EFI system partition.
    pub const EFI_SYSTEM: Guid = Guid::from_fields(
        0xc12a7328,
        0xf81f,
        0x11d2,
        [0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b],
    );
    /// Microsoft reserved (MSR).
    pub const MICROSOFT_RESERVED: Guid = Guid::from_fields(
        0xe3c9e316,
        0x0b5c,
        0x4db8,
        [0x81, 0x7d, 0xf9, 0x2d, 0xf0, 0x02, 0x15, 0xae],
    );
    /// Microsoft basic data (NTFS, FAT, exFAT, BitLocker volumes).
    pub const MICROSOFT_BASIC_DATA: Guid = Guid::from_fields(
        0xebd0a0a2,
        0xb9e5,
        0x4433,
        [0x87, 0xc0, 0x68, 0xb6, 0xb7, 0x26, 0x99, 0xc7],
    );
    /// Windows recovery environment.
    pub const WINDOWS_RECOVERY: Guid = Guid::from_fields(
        0xde94bba4,
        0x06d1,
        0x4d40,
        [0xa1, 0x6a, 0xbf, 0xd5, 0x01, 0x79, 0xd6, 0xac],
    );
    /// Windows LDM metadata.
    pub const LDM_METADATA: Guid = Guid::from_fields(
        0x5808c8aa,
        0x7e8f,
        0x42e0,
        [0x85, 0xd2, 0xe1, 0xe9, 0x04, 0x34, 0xcf, 0xb3],
    );
    /// Windows LDM data.
    pub const LDM_DATA: Guid = Guid::from_fields(
        0xaf9b60a0,
        0x1431,
        0x4f62,
        [0xbc, 0x68, 0x33, 0x11, 0x71, 0x4a, 0x69, 0xad],
    );
    /// Linux filesystem.
    pub const LINUX_FILESYSTEM: Guid = Guid::from_fields(
        0x0fc63daf,
        0x8483,
        0x4772,
        [0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4],
    );
    /// Linux swap.
    pub const LINUX_SWAP: Guid = Guid::from_fields(
        0x0657fd6d,
        0xa4ab,
        0x43c4,
        [0x84, 0xe5, 0x09, 0x33, 0xc8, 0x4b, 0x4f, 0x4f],
    );
    /// Linux LVM.
    pub const LINUX_LVM: Guid = Guid::from_fields(
        0xe6d6d379,
        0xf507,
        0x44c2,
        [0xa2, 0x3c, 0x23, 0x8f, 0x2a, 0x3d, 0xf9, 0x28],
    );
    /// Linux root (x86-64).
    pub const LINUX_ROOT_X86_64: Guid = Guid::from_fields(
        0x4f68bce3,
        0xe8cd,
        0x4db1,
        [0x96, 0xe7, 0xfb, 0xca, 0xf9, 0x84, 0xb7, 0x09],
    );
    /// BIOS boot partition.
    pub const BIOS_BOOT: Guid = Guid::from_fields(
        0x21686148,
        0x6449,
        0x6e6f,
        [0x74, 0x4e, 0x65, 0x65, 0x64, 0x45, 0x46, 0x49],
    );
}

impl PartitionKind {
    /// A friendly name ("EFI system", "Microsoft basic data", "Windows recovery", ...), or
    /// "unknown".
    pub fn name(&self) -> &'static str {
        use gpt_types::*;
        match *self {
            PartitionKind::Volume(v) => v,
            PartitionKind::Mbr(t) => match t {
                0x01 => "FAT12",
                0x04 | 0x06 | 0x0e => "FAT16",
                0x05 | 0x0f | 0x85 => "Extended",
                0x07 => "NTFS/exFAT (Windows basic data)",
                0x0b | 0x0c => "FAT32",
                0x17 => "Hidden NTFS",
                0x27 => "Windows recovery (hidden NTFS)",
                0x42 => "Windows dynamic disk (LDM)",
                0x82 => "Linux swap",
                0x83 => "Linux",
                0x8e => "Linux LVM",
                0xee => "GPT protective",
                0xef => "EFI system",
                _ => "unknown",
            },
            PartitionKind::Gpt(g) => match g {
                g if g == EFI_SYSTEM => "EFI system",
                g if g == MICROSOFT_RESERVED => "Microsoft reserved",
                g if g == MICROSOFT_BASIC_DATA => "Microsoft basic data",
                g if g == WINDOWS_RECOVERY => "Windows recovery",
                g if g == LDM_METADATA => "Windows LDM metadata",
                g if g == LDM_DATA => "Windows LDM data",
                g if g == LINUX_FILESYSTEM => "Linux filesystem",
                g if g == LINUX_SWAP => "Linux swap",
                g if g == LINUX_LVM => "Linux LVM",
                g if g == LINUX_ROOT_X86_64 => "Linux root (x86-64)",
                g if g == BIOS_BOOT => "BIOS boot",
                _ => "unknown",
            },
        }
    }

    /// True for MBR extended partition containers.
    pub fn is_extended(&self) -> bool {
        matches!(self, PartitionKind::Mbr(0x05 | 0x0f | 0x85))
    }
}

/// One partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// 1-based number as `guestwall` (and Linux) shows it: MBR primaries 1–4 by slot,
    /// logicals from 5 in chain order; GPT by entry slot.
    pub index: u32,
    /// Start on the disk, in bytes.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// The table it comes from.
    pub scheme: Scheme,
    /// Its type.
    pub kind: PartitionKind,
    /// GPT name (empty for MBR).
    pub name: String,
    /// GPT unique partition GUID.
    pub unique_guid: Option<Guid>,
    /// GPT attribute bits (MBR: 0x80 when the boot flag is set).
    pub attributes: u64,
}

impl Partition {
    /// The partition's bytes as a [`Slice`] of `disk`.
    pub fn view<R: ReadAt>(&self, disk: R) -> io::Result<Slice<R>> {
        Slice::new(disk, self.start, self.len)
    }
}

/// The partition table of a disk.
#[derive(Debug, Clone)]
pub struct PartitionTable {
    /// Which table.
    pub scheme: Scheme,
    /// The sector size used to interpret it.
    pub sector_size: u32,
    /// GPT disk GUID.
    pub disk_guid: Option<Guid>,
    /// MBR disk signature (offset 440).
    pub mbr_signature: Option<u32>,
    /// The partitions, in index order.
    pub partitions: Vec<Partition>,
    /// What was odd or damaged and worked around.
    pub warnings: Vec<String>,
}

fn read(disk: &dyn ReadAt, offset: u64, len: u64) -> Result<Vec<u8>> {
    let size = disk.size();
    if offset.checked_add(len).is_none_or(|e| e > size) {
        return Err(Error::Partition {
            what: "read",
            offset,
            detail: format!("{len:#x} bytes needed but the disk has {size:#x}"),
        });
    }
    let mut v = vec![0u8; len as usize];
    disk.read_exact_at(offset, &mut v)
        .map_err(|source| Error::DiskRead {
            offset,
            len,
            source,
        })?;
    Ok(v)
}

struct Gpt {
    disk_guid: Guid,
    partitions: Vec<Partition>,
    /// Entries that do not fit on the disk: (index, first LBA, last LBA).
    dropped: Vec<(usize, u64, u64)>,
}

impl PartitionTable {
    /// Reads the table of `disk`. `sector_size` is the logical sector size the container
    /// reports (512, or 4096 for a 4K VHDX); with 512, a GPT found only at 4096 is read as a
    /// 4K-sector GPT.
    pub fn read(disk: &dyn ReadAt, sector_size: u32) -> Result<PartitionTable> {
        let size = disk.size();
        let mut t = PartitionTable {
            scheme: Scheme::None,
            sector_size,
            disk_guid: None,
            mbr_signature: None,
            partitions: Vec::new(),
            warnings: Vec::new(),
        };
        if sector_size != 512 && sector_size != 4096 {
            return Err(Error::Partition {
                what: "sector size",
                offset: 0,
                detail: format!("{sector_size} (expected 512 or 4096)"),
            });
        }
        if size < 512 {
            t.warnings.push(format!(
                "the disk is {size} bytes: too small for a partition table"
            ));
            return Ok(t);
        }
        let s0 = read(disk, 0, 512)?;
        let oem = s0.get(3..11).unwrap_or(&[]);
        if oem == b"NTFS    " || oem == b"-FVE-FS-" {
            t.scheme = Scheme::WholeDisk;
            t.partitions.push(Partition {
                index: 1,
                start: 0,
                len: size,
                scheme: Scheme::WholeDisk,
                kind: PartitionKind::Volume(if oem == b"NTFS    " {
                    "NTFS"
                } else {
                    "BitLocker"
                }),
                name: String::new(),
                unique_guid: None,
                attributes: 0,
            });
            return Ok(t);
        }
        let has_sig = s0.get(510..512) == Some(&[0x55, 0xaa][..]);
        let entries: Vec<[u8; 16]> = (0..4)
            .map(|i| {
                let mut e = [0u8; 16];
                if let Some(s) = s0.get(446 + 16 * i..462 + 16 * i) {
                    e.copy_from_slice(s);
                }
                e
            })
            .collect();
        let statuses_ok = entries.iter().all(|e| e[0] == 0 || e[0] == 0x80);
        let protective = has_sig && entries.iter().any(|e| e[4] == 0xee);
        // GPT: with a protective MBR, or (with a warning) without one.
        let mut ss = u64::from(sector_size);
        let gpt_at = |ss: u64| -> bool { read(disk, ss, 8).is_ok_and(|b| b == b"EFI PART") };
        let mut gpt_here = size >= 2 * ss && gpt_at(ss);
        if !gpt_here && ss == 512 && size >= 8192 && gpt_at(4096) {
            ss = 4096;
            gpt_here = true;
            t.sector_size = 4096;
        }
        if protective || gpt_here {
            if !protective {
                t.warnings
                    .push("a GPT header without a protective MBR".into());
            }
            let g = read_gpt(disk, ss, &mut t.warnings)?;
            t.scheme = Scheme::Gpt;
            t.disk_guid = Some(g.disk_guid);
            t.partitions = g.partitions;
            return Ok(t);
        }
        if !has_sig || !statuses_ok {
            if has_sig {
                t.warnings.push("sector 0 ends with 0x55AA but its partition entries are not valid (a boot sector of another file system?)".into());
            }
            return Ok(t);
        }
        t.scheme = Scheme::Mbr;
        t.mbr_signature = Some(le32(&s0, 440));
        let lba_count = size / ss;
        for (i, e) in entries.iter().enumerate() {
            let ty = e[4];
            let first = u64::from(le32(e, 8));
            let count = u64::from(le32(e, 12));
            if ty == 0 || count == 0 {
                continue;
            }
            let p = Partition {
                index: i as u32 + 1,
                start: first * ss,
                len: count * ss,
                scheme: Scheme::Mbr,
                kind: PartitionKind::Mbr(ty),
                name: String::new(),
                unique_guid: None,
                attributes: u64::from(e[0] & 0x80),
            };
            if first + count > lba_count {
                t.warnings.push(format!(
                    "MBR partition {} (sectors {first}..{}) lies past the end of the disk ({lba_count} sectors): dropped",
                    p.index,
                    first + count
                ));
                continue;
            }
            let ext = p.kind.is_extended();
            t.partitions.push(p);
            if ext {
                read_ebrs(disk, ss, first, count, &mut t)?;
            }
        }
        t.partitions.sort_by_key(|p| p.index);
        Ok(t)
    }
}

fn read_ebrs(
    disk: &dyn ReadAt,
    ss: u64,
    ext_first: u64,
    ext_count: u64,
    t: &mut PartitionTable,
) -> Result<()> {
    let mut seen = HashSet::new();
    let mut ebr = ext_first;
    let mut next_index = 5 + t.partitions.iter().filter(|p| p.index >= 5).count() as u32;
    let ext_end = ext_first + ext_count;
    for hop in 0.. {
        if hop >= MAX_EBR_HOPS {
            t.warnings.push(format!(
                "EBR chain longer than {MAX_EBR_HOPS} links: stopped at sector {ebr}"
            ));
            return Ok(());
        }
        if !seen.insert(ebr) {
            t.warnings
                .push(format!("EBR chain loops back to sector {ebr}: stopped"));
            return Ok(());
        }
        if ebr >= ext_end {
            t.warnings.push(format!("EBR at sector {ebr} lies outside its extended partition (sectors {ext_first}..{ext_end}): stopped"));
            return Ok(());
        }
        let b = read(disk, ebr * ss, 512)?;
        if b.get(510..512) != Some(&[0x55, 0xaa][..]) {
            t.warnings.push(format!(
                "EBR at sector {ebr} lacks the 0x55AA signature: stopped"
            ));
            return Ok(());
        }
        let ty = b.get(446 + 4).copied().unwrap_or(0);
        let rel = u64::from(le32(&b, 446 + 8));
        let count = u64::from(le32(&b, 446 + 12));
        if ty != 0 && count != 0 {
            let first = ebr + rel;
            if first + count > ext_end {
                t.warnings.push(format!(
                    "logical partition {next_index} (sectors {first}..{}) lies past the end of its extended partition (sector {ext_end}): dropped",
                    first + count
                ));
            } else {
                t.partitions.push(Partition {
                    index: next_index,
                    start: first * ss,
                    len: count * ss,
                    scheme: Scheme::Mbr,
                    kind: PartitionKind::Mbr(ty),
                    name: String::new(),
                    unique_guid: None,
                    attributes: u64::from(b.get(446).copied().unwrap_or(0) & 0x80),
                });
            }
            next_index += 1;
        }
        let nty = b.get(462 + 4).copied().unwrap_or(0);
        let nrel = u64::from(le32(&b, 462 + 8));
        if nty == 0 || nrel == 0 {
            return Ok(());
        }
        ebr = ext_first + nrel;
    }
    Ok(())
}

fn read_gpt(disk: &dyn ReadAt, ss: u64, warnings: &mut Vec<String>) -> Result<Gpt> {
    let Some(last_lba) = (disk.size() / ss).checked_sub(1).filter(|&l| l >= 2) else {
        return Err(Error::Partition {
            what: "GPT",
            offset: ss,
            detail: format!(
                "a disk of {:#x} bytes is too small for a GPT with {ss}-byte sectors",
                disk.size()
            ),
        });
    };
    let primary = parse_gpt(disk, ss, 1, last_lba);
    let g = match primary {
        Ok(g) => Ok(g),
        Err(pe) => {
            let backup = parse_gpt(disk, ss, last_lba, last_lba);
            match backup {
                Ok(g) => {
                    warnings.push(format!(
                        "the primary GPT is damaged ({pe}); using the backup at LBA {last_lba}"
                    ));
                    Ok(g)
                }
                Err(be) => Err(Error::Partition {
                    what: "GPT",
                    offset: ss,
                    detail: format!(
                        "both headers are damaged: primary: {pe}; backup at LBA {last_lba}: {be}"
                    ),
                }),
            }
        }
    }?;
    for (i, first, last) in &g.dropped {
        warnings.push(format!(
            "GPT partition {i} (LBA {first}..={last}) does not fit on the disk (last LBA {last_lba}): dropped"
        ));
    }
    Ok(g)
}

fn parse_gpt(
    disk: &dyn ReadAt,
    ss: u64,
    lba: u64,
    last_lba: u64,
) -> std::result::Result<Gpt, String> {
    let at = lba * ss;
    let h = read(disk, at, ss).map_err(|e| e.to_string())?;
    if h.get(..8) != Some(b"EFI PART") {
        return Err(format!("no \"EFI PART\" signature at offset {at:#x}"));
    }
    let hs = le32(&h, 12) as usize;
    if hs < 92 || hs as u64 > ss {
        return Err(format!("header size {hs}"));
    }
    let body = h.get(..hs).ok_or("short header")?;
    let stored = le32(&h, 16);
    let mut d = CRC32.digest();
    d.update(body.get(..16).unwrap_or(&[]));
    d.update(&[0; 4]);
    d.update(body.get(20..).unwrap_or(&[]));
    let computed = d.finalize();
    if stored != computed {
        return Err(format!(
            "header checksum {stored:#010x} stored, {computed:#010x} computed"
        ));
    }
    let my_lba = le64(&h, 24);
    if my_lba != lba {
        return Err(format!("header says it is at LBA {my_lba}, read at {lba}"));
    }
    let first_usable = le64(&h, 40);
    let last_usable = le64(&h, 48);
    let disk_guid = Guid::read(&h, 56);
    let entries_lba = le64(&h, 72);
    let n = u64::from(le32(&h, 80));
    let esize = u64::from(le32(&h, 84));
    if esize < 128 || !esize.is_power_of_two() || esize > ss {
        return Err(format!("entry size {esize}"));
    }
    let bytes = n * esize;
    if bytes > MAX_GPT_ARRAY {
        return Err(format!(
            "{n} entries of {esize} bytes exceed {MAX_GPT_ARRAY:#x} bytes"
        ));
    }
    let arr_at = entries_lba
        .checked_mul(ss)
        .ok_or("entry array LBA overflows")?;
    let arr = read(disk, arr_at, bytes).map_err(|e| format!("entry array: {e}"))?;
    let stored = le32(&h, 88);
    let computed = CRC32.checksum(&arr);
    if stored != computed {
        return Err(format!(
            "entry array checksum {stored:#010x} stored, {computed:#010x} computed"
        ));
    }
    if first_usable > last_usable || last_usable > last_lba {
        return Err(format!(
            "usable LBAs {first_usable}..={last_usable} on a disk of {} sectors",
            last_lba + 1
        ));
    }
    let mut partitions = Vec::new();
    let mut dropped = Vec::new();
    for i in 0..n as usize {
        let e = arr
            .get(i * esize as usize..(i + 1) * esize as usize)
            .unwrap_or(&[]);
        let ty = Guid::read(e, 0);
        if ty.is_zero() {
            continue;
        }
        let first = le64(e, 32);
        let last = le64(e, 40);
        if last < first || last > last_lba {
            dropped.push((i + 1, first, last));
            continue;
        }
        partitions.push(Partition {
            index: i as u32 + 1,
            start: first * ss,
            len: (last - first + 1) * ss,
            scheme: Scheme::Gpt,
            kind: PartitionKind::Gpt(ty),
            name: utf16le(e.get(56..128).unwrap_or(&[])),
            unique_guid: Some(Guid::read(e, 16)),
            attributes: le64(e, 48),
        });
    }
    Ok(Gpt {
        disk_guid,
        partitions,
        dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_disks_and_4k_sectors_do_not_underflow() {
        for len in [0usize, 511, 512, 1024, 4095, 4096, 8191] {
            let mut d = vec![0u8; len];
            if len >= 520 {
                d[510] = 0x55;
                d[511] = 0xaa;
                d[446 + 4] = 0xee;
                d[512..520].copy_from_slice(b"EFI PART");
            }
            for ss in [512, 4096] {
                let _ = PartitionTable::read(&d, ss);
            }
        }
        assert!(PartitionTable::read(&vec![0u8; 4096], 1000).is_err());
    }

    #[test]
    fn type_names() {
        assert_eq!(
            PartitionKind::Gpt(gpt_types::WINDOWS_RECOVERY).name(),
            "Windows recovery"
        );
        assert_eq!(
            gpt_types::WINDOWS_RECOVERY.to_string(),
            "de94bba4-06d1-4d40-a16a-bfd50179d6ac"
        );
        assert_eq!(
            PartitionKind::Mbr(0x07).name(),
            "NTFS/exFAT (Windows basic data)"
        );
        assert!(PartitionKind::Mbr(0x0f).is_extended());
    }
}
