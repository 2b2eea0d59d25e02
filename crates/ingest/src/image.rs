//! Hives inside a disk image: the container (raw, VHD, VHDX, a block device), its partition
//! table (MBR, GPT, or one NTFS volume without a table), the NTFS volumes on it, the Windows
//! installations in them, and the hive files as [`HiveSource`]s named by
//! [`Location::InImage`]. Nothing is mounted and nothing is written.

use std::path::PathBuf;
use std::sync::Arc;

use guestwall_ntfsvol::{FileView, HiveFile as NtfsHive, Volume, WindowsInstall};
use guestwall_regf::{Location, ReaderSource};
use guestwall_source::Slice;
use guestwall_vdisk::{Disk, PartitionTable};

use crate::{IngestError, Result};

/// A partition of the image, as read.
type Part = Slice<Arc<Disk>>;

/// A hive file inside the image, read through the NTFS data runs and the container.
pub type ImageHive = ReaderSource<FileView<Part>>;

/// A Windows installation found in an image.
#[derive(Debug, Clone)]
pub struct FoundWindows {
    /// The partition number (1-based; `None` for a volume image without a table).
    pub partition: Option<u32>,
    /// The Windows folder as stored (`Windows`).
    pub dir: String,
}

/// A Windows installation inside an image, with its hives ready to read.
pub struct ImageWindows {
    /// The SYSTEM hive.
    pub system: ImageHive,
    /// The SOFTWARE hive, when the installation has one.
    pub software: Option<ImageHive>,
    /// What the reader should know: the container's repairs in memory, the volume's state
    /// (dirty, hibernated), and what was skipped.
    pub notes: Vec<String>,
    /// Which partition and folder.
    pub found: FoundWindows,
}

fn image_err(img: &ImageRef, reason: impl std::fmt::Display) -> IngestError {
    IngestError::Image {
        path: img.path.clone(),
        what: img.what,
        reason: reason.to_string(),
    }
}

/// Opens the image at `path` and finds its Windows installation: the only one, or the one on
/// `partition`. BitLocker volumes, no Windows at all, and several installations without
/// `--partition` are errors that say so.
pub fn open_windows(img: &ImageRef) -> Result<ImageWindows> {
    let path = img.path.as_path();
    let partition = img.partition;
    let disk = Arc::new(Disk::open(path).map_err(|e| image_err(img, e))?);
    let mut notes: Vec<String> = disk
        .warnings()
        .iter()
        .map(|w| format!("{}: {w}", path.display()))
        .collect();
    let table =
        PartitionTable::read(&*disk, disk.logical_sector_size()).map_err(|e| image_err(img, e))?;
    notes.extend(
        table
            .warnings
            .iter()
            .map(|w| format!("{}: partition table: {w}", path.display())),
    );
    let whole = table.scheme == guestwall_vdisk::Scheme::WholeDisk;
    let mut volumes: Vec<Volume<Part>> = Vec::new();
    let mut found: Vec<(u32, usize, WindowsInstall)> = Vec::new();
    let mut encrypted: Vec<u32> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    for p in table.partitions.iter().filter(|p| !p.kind.is_extended()) {
        if partition.is_some_and(|n| n != p.index) {
            continue;
        }
        let view = p
            .view(Arc::clone(&disk))
            .map_err(|e| image_err(img, format!("partition {}: {e}", p.index)))?;
        let vol = match Volume::open(view) {
            Ok(v) => v,
            Err(guestwall_ntfsvol::Error::BitLocker) => {
                encrypted.push(p.index);
                continue;
            }
            Err(guestwall_ntfsvol::Error::NotNtfs { .. }) => continue,
            Err(e) => {
                // A damaged volume on a partition that was asked for is an error; otherwise
                // it is skipped with a note (another partition may hold Windows).
                if partition.is_some() {
                    return Err(image_err(img, format!("partition {}: {e}", p.index)));
                }
                skipped.push(format!("partition {}: {e}", p.index));
                continue;
            }
        };
        let installs = vol
            .find_windows()
            .map_err(|e| image_err(img, format!("partition {}: {e}", p.index)))?;
        for w in installs {
            found.push((p.index, volumes.len(), w));
        }
        volumes.push(vol);
    }
    let name = |n: u32| {
        if whole {
            "the volume".to_string()
        } else {
            format!("partition {n}")
        }
    };
    if found.is_empty() {
        let mut reason = match partition {
            Some(n) => format!("no Windows installation on partition {n}"),
            None => "no Windows installation on any partition".to_string(),
        };
        if !encrypted.is_empty() {
            let list: Vec<String> = encrypted.iter().map(|&n| name(n)).collect();
            reason = format!(
                "{reason}; {} is encrypted with BitLocker: unlock it first (for example with dislocker) and pass the unlocked volume",
                list.join(", ")
            );
        }
        if !skipped.is_empty() {
            reason = format!("{reason}; could not read {}", skipped.join("; "));
        }
        if table.partitions.is_empty() {
            reason = format!("{reason} (no partition table and no NTFS volume found)");
        }
        return Err(image_err(img, reason));
    }
    if found.len() > 1 {
        let list: Vec<String> = found
            .iter()
            .map(|(n, _, w)| format!("{} ({})", name(*n), w.dir))
            .collect();
        return Err(image_err(
            img,
            format!(
                "several Windows installations: {}; choose one with --partition N",
                list.join(", ")
            ),
        ));
    }
    notes.extend(skipped.iter().map(|s| format!("{}: {s}", path.display())));
    let (index, vi, win) = found.pop().expect("one installation");
    let vol = volumes.swap_remove(vi);
    let part = (!whole).then_some(index);
    for reason in vol.state().reasons() {
        notes.push(format!("{}: {}: {reason}", path.display(), name(index)));
    }
    let at = |file: &str| Location::InImage {
        image: path.to_path_buf(),
        partition: part,
        path: file.to_string(),
    };
    let open = |kind: NtfsHive| -> Result<Option<(Location, FileView<Part>)>> {
        let Some(p) = win.path_of(kind) else {
            return Ok(None);
        };
        let view = vol
            .file(&p)
            .map_err(|e| image_err(img, format!("{}: {e}", at(&p))))?;
        Ok(Some((at(&p), view)))
    };
    let hive = |primary: NtfsHive, logs: [NtfsHive; 2]| -> Result<Option<ImageHive>> {
        let Some((location, view)) = open(primary)? else {
            return Ok(None);
        };
        let mut log_views = Vec::new();
        for l in logs {
            if let Some(v) = open(l)? {
                log_views.push(v);
            }
        }
        Ok(Some(ReaderSource::new(location, view, log_views)))
    };
    let system = hive(
        NtfsHive::System,
        [NtfsHive::SystemLog1, NtfsHive::SystemLog2],
    )?
    .ok_or_else(|| image_err(img, "the Windows installation has no SYSTEM hive"))?;
    let software = hive(
        NtfsHive::Software,
        [NtfsHive::SoftwareLog1, NtfsHive::SoftwareLog2],
    )?;
    Ok(ImageWindows {
        system,
        software,
        notes,
        found: FoundWindows {
            partition: part,
            dir: win.dir,
        },
    })
}

/// The image a target names, when it is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The image file or block device.
    pub path: PathBuf,
    /// `--partition N`.
    pub partition: Option<u32>,
    /// What the container is, for messages (`a VHDX disk image`).
    pub what: &'static str,
}
