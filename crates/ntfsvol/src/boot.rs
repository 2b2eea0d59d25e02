//! The boot sector: what the volume is, and the NTFS geometry, checked before the `ntfs` crate
//! sees it.

use guestwall_source::ReadAt;

use crate::record::{le16, le64};
use crate::Error;

/// The NTFS geometry from the boot sector, every field checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes per sector (512..=4096, a power of two).
    pub sector_size: u32,
    /// Bytes per cluster (sector size × sectors per cluster, ≤ 2 MiB).
    pub cluster_size: u32,
    /// Size of the volume the boot sector declares, in bytes.
    pub volume_size: u64,
    /// Clusters in the volume.
    pub total_clusters: u64,
    /// Cluster of the MFT.
    pub mft_lcn: u64,
    /// Cluster of the MFT mirror.
    pub mft_mirror_lcn: u64,
    /// Bytes per MFT record (1024..=4096).
    pub file_record_size: u32,
    /// Bytes per index record (declared; each directory's index root carries its own).
    pub index_record_size: u32,
    /// Volume serial number.
    pub serial: u64,
}

/// What a non-NTFS first sector looks like, for the "not NTFS" message.
pub(crate) fn looks_like(src: &dyn ReadAt, s: &[u8]) -> String {
    let at = |off: usize, magic: &[u8]| s.get(off..off + magic.len()) == Some(magic);
    if s.iter().all(|&b| b == 0) {
        return "zeros (an empty, wiped or never formatted volume)".into();
    }
    if at(3, b"EXFAT   ") {
        return "exFAT".into();
    }
    if at(0x52, b"FAT32   ") {
        return "FAT32 (an EFI system partition?)".into();
    }
    if at(0x36, b"FAT16   ") || at(0x36, b"FAT12   ") || at(0x36, b"FAT     ") {
        return "FAT12/FAT16".into();
    }
    if at(3, b"ReFS") {
        return "ReFS (not supported)".into();
    }
    if at(0, b"conectix") {
        return "a VHD image: open it as a disk image".into();
    }
    if at(0, b"vhdxfile") {
        return "a VHDX image: open it as a disk image".into();
    }
    if at(0, b"XFSB") {
        return "XFS".into();
    }
    let mut next = [0u8; 8];
    if src.read_exact_at(512, &mut next).is_ok() && &next == b"EFI PART" {
        return "a whole disk with a GPT partition table: pass one partition, not the disk".into();
    }
    if at(510, &[0x55, 0xAA]) && s.get(446..510).is_some_and(|p| p.iter().any(|&b| b != 0)) {
        return "a whole disk with an MBR partition table: pass one partition, not the disk".into();
    }
    let mut ext = [0u8; 2];
    if src.read_exact_at(1024 + 56, &mut ext).is_ok() && ext == [0x53, 0xEF] {
        return "ext2/3/4".into();
    }
    let head: Vec<String> = s.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("unknown contents (first bytes {})", head.join(" "))
}

/// Reads and checks the boot sector of `src`.
pub(crate) fn read_geometry(src: &dyn ReadAt) -> Result<Geometry, Error> {
    let size = src.size();
    if size < 512 {
        return Err(Error::NotNtfs {
            looks_like: format!("a source of {size} bytes, too small for a boot sector"),
        });
    }
    let mut s = [0u8; 512];
    src.read_exact_at(0, &mut s).map_err(|e| Error::Io {
        offset: 0,
        len: 512,
        source: e,
    })?;
    if &s[3..11] == b"-FVE-FS-" {
        return Err(Error::BitLocker);
    }
    if &s[3..11] != b"NTFS    " {
        return Err(Error::NotNtfs {
            looks_like: looks_like(src, &s),
        });
    }
    let bad = |field: &str, detail: String| Error::BootSector {
        field: field.to_string(),
        detail,
    };
    if s[510..512] != [0x55, 0xAA] {
        return Err(bad(
            "signature",
            format!("bytes {:02x} {:02x} at 0x1fe are not 55 aa", s[510], s[511]),
        ));
    }
    let sector_size = u32::from(le16(&s, 0x0B).unwrap_or(0));
    if !(512..=4096).contains(&sector_size) || !sector_size.is_power_of_two() {
        return Err(bad(
            "bytes per sector (0x0b)",
            format!("{sector_size} is not a power of two in 512..=4096"),
        ));
    }
    let spc = s[0x0D];
    let sectors_per_cluster: u32 = match spc {
        1..=128 if spc.is_power_of_two() => u32::from(spc),
        // Above 128 the byte is a negated binary exponent (clusters of 128 KiB and more).
        0xF4..=0xFF => 1u32 << (256 - u32::from(spc)),
        _ => {
            return Err(bad(
                "sectors per cluster (0x0d)",
                format!("{spc:#04x} is neither a power of two ≤ 128 nor a negated exponent"),
            ))
        }
    };
    let cluster_size = sector_size
        .checked_mul(sectors_per_cluster)
        .filter(|&c| c <= 2 * 1024 * 1024)
        .ok_or_else(|| {
            bad(
                "sectors per cluster (0x0d)",
                format!("clusters of {sectors_per_cluster} × {sector_size} bytes exceed 2 MiB"),
            )
        })?;
    let total_sectors = le64(&s, 0x28).unwrap_or(0);
    let volume_size = total_sectors
        .checked_mul(u64::from(sector_size))
        .filter(|&v| v > 0)
        .ok_or_else(|| {
            bad(
                "total sectors (0x28)",
                format!("{total_sectors} is 0 or too large"),
            )
        })?;
    if volume_size > size {
        return Err(bad(
            "total sectors (0x28)",
            format!(
                "the volume declares {volume_size} bytes but the source has only {size} (truncated image or wrong partition?)"
            ),
        ));
    }
    let total_clusters = volume_size / u64::from(cluster_size);
    let mft_lcn = le64(&s, 0x30).unwrap_or(0);
    let mft_mirror_lcn = le64(&s, 0x38).unwrap_or(0);
    if mft_lcn == 0 || mft_lcn >= total_clusters {
        return Err(bad(
            "MFT cluster (0x30)",
            format!("{mft_lcn} lies outside clusters 1..{total_clusters}"),
        ));
    }
    if mft_mirror_lcn >= total_clusters {
        return Err(bad(
            "MFT mirror cluster (0x38)",
            format!("{mft_mirror_lcn} lies outside the volume ({total_clusters} clusters)"),
        ));
    }
    let record_size = |raw: u8, field: &str| -> Result<u32, Error> {
        let v = raw as i8;
        let bytes = if v > 0 {
            u64::from(cluster_size) * v as u64
        } else {
            let e = u32::from(v.unsigned_abs());
            if e > 31 {
                0
            } else {
                1u64 << e
            }
        };
        if !(1024..=65536).contains(&bytes) || !bytes.is_power_of_two() {
            return Err(bad(
                field,
                format!(
                    "{raw:#04x} gives {bytes}-byte records (expected a power of two, 1024..=65536)"
                ),
            ));
        }
        Ok(bytes as u32)
    };
    let file_record_size = record_size(s[0x40], "clusters per MFT record (0x40)")?;
    if file_record_size > 4096 {
        return Err(bad(
            "clusters per MFT record (0x40)",
            format!("{file_record_size}-byte MFT records (only 1024..=4096 exist)"),
        ));
    }
    let index_record_size = record_size(s[0x44], "clusters per index record (0x44)")?;
    let serial = le64(&s, 0x48).unwrap_or(0);
    Ok(Geometry {
        sector_size,
        cluster_size,
        volume_size,
        total_clusters,
        mft_lcn,
        mft_mirror_lcn,
        file_record_size,
        index_record_size,
        serial,
    })
}
