//! Hives inside a disk image: the container (raw, VHD, VHDX, a block device), its partition
//! table (MBR, GPT, or one NTFS volume without a table), the NTFS volumes on it, the Windows
//! installations in them, and the hive files as [`HiveSource`]s named by
//! [`Location::InImage`]. Nothing is mounted and nothing is written.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use guestwall_ntfsvol::{FileView, HiveFile as NtfsHive, Volume, WindowsInstall};
use guestwall_regf::{Location, ReaderSource};
use guestwall_source::{FileSource, ReadAt, Slice};
use guestwall_vdisk::{Disk, FsOpener, PartitionTable, MAX_CHAIN_DEPTH};

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
    /// The virtual disk (for writing in place: its map).
    pub disk: Arc<Disk>,
    /// Where the volume starts on the virtual disk.
    pub volume_start: u64,
    /// Why the volume must not be written (dirty, unclean `$LogFile`, hibernated, fast
    /// startup); empty when it is clean.
    pub volume_unclean: Vec<String>,
    /// The SYSTEM file (its data runs, sizes and flags).
    pub system_file: FileView<Part>,
    /// The SOFTWARE file.
    pub software_file: Option<FileView<Part>>,
}

fn image_err(img: &ImageRef, reason: impl std::fmt::Display) -> IngestError {
    IngestError::Image {
        path: img.path.clone(),
        what: img.what,
        reason: reason.to_string(),
    }
}

/// Bytes this process has read from image files (the top of each differencing chain), for
/// benchmarks and `GUESTWALL_COUNT_READS`.
static IMAGE_BYTES_READ: AtomicU64 = AtomicU64::new(0);

/// How many bytes this process has read from disk images so far.
pub fn image_bytes_read() -> u64 {
    IMAGE_BYTES_READ.load(Ordering::Relaxed)
}

/// A source that adds what is read from it to [`IMAGE_BYTES_READ`].
struct Tally<R>(R);

impl<R: ReadAt> ReadAt for Tally<R> {
    fn size(&self) -> u64 {
        self.0.size()
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        IMAGE_BYTES_READ.fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.0.read_exact_at(offset, buf)
    }
}

/// The NTFS volumes of an image (or of the one partition asked for).
struct Volumes {
    /// (partition number, volume).
    list: Vec<(u32, u64, Volume<Part>)>,
    /// Partitions encrypted with BitLocker.
    encrypted: Vec<u32>,
    /// Partitions that could not be read, and why.
    skipped: Vec<String>,
    /// The image is one volume without a partition table.
    whole: bool,
    /// Warnings of the container and the partition table.
    notes: Vec<String>,
    /// The virtual disk.
    disk: Arc<Disk>,
}

impl Volumes {
    fn name(&self, n: u32) -> String {
        if self.whole {
            "the volume".to_string()
        } else {
            format!("partition {n}")
        }
    }
}

fn volumes(img: &ImageRef) -> Result<Volumes> {
    let path = img.path.as_path();
    let partition = img.partition;
    let file = FileSource::open(path).map_err(|e| image_err(img, e))?;
    let disk = Arc::new(
        Disk::from_source(Arc::new(Tally(file)), path, &FsOpener, MAX_CHAIN_DEPTH)
            .map_err(|e| image_err(img, e))?,
    );
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
    let mut v = Volumes {
        list: Vec::new(),
        encrypted: Vec::new(),
        skipped: Vec::new(),
        whole: table.scheme == guestwall_vdisk::Scheme::WholeDisk,
        notes,
        disk: Arc::clone(&disk),
    };
    if let Some(n) = partition {
        if !table.partitions.iter().any(|p| p.index == n) {
            let have: Vec<String> = table
                .partitions
                .iter()
                .map(|p| p.index.to_string())
                .collect();
            return Err(image_err(
                img,
                format!(
                    "no Windows installation on partition {n}: the image has no partition {n} (its partitions: {}){}",
                    if have.is_empty() { "none".to_string() } else { have.join(", ") },
                    if table.warnings.is_empty() {
                        String::new()
                    } else {
                        format!("; the partition table: {}", table.warnings.join("; "))
                    }
                ),
            ));
        }
    }
    for p in table.partitions.iter().filter(|p| !p.kind.is_extended()) {
        if partition.is_some_and(|n| n != p.index) {
            continue;
        }
        let view = p
            .view(Arc::clone(&disk))
            .map_err(|e| image_err(img, format!("partition {}: {e}", p.index)))?;
        match Volume::open(view) {
            Ok(vol) => v.list.push((p.index, p.start, vol)),
            Err(guestwall_ntfsvol::Error::BitLocker) => v.encrypted.push(p.index),
            Err(guestwall_ntfsvol::Error::NotNtfs { .. }) => {}
            Err(e) => {
                // A damaged volume on a partition that was asked for is an error; otherwise
                // it is skipped with a note (another partition may hold Windows).
                if partition.is_some() {
                    return Err(image_err(img, format!("partition {}: {e}", p.index)));
                }
                v.skipped.push(format!("partition {}: {e}", p.index));
            }
        }
    }
    if v.list.is_empty() && table.partitions.is_empty() {
        v.skipped
            .push("no partition table and no NTFS volume found".to_string());
    }
    Ok(v)
}

/// Opens the image at `img` and finds its Windows installation: the only one, or the one on
/// `img.partition`. BitLocker volumes, no Windows at all, and several installations without
/// `--partition` are errors that say so.
pub fn open_windows(img: &ImageRef) -> Result<ImageWindows> {
    let path = img.path.as_path();
    let journal = guestwall_inplace::journal_path(path, img.journal_dir.as_deref());
    let journal_note = match guestwall_inplace::journal_state(path, &journal) {
        Ok(None) => None,
        Ok(Some(guestwall_inplace::JournalState::Torn)) => {
            return Err(image_err(
                img,
                format!(
                    "an in-place repair of this image was interrupted ({} holds the original bytes, and the image some of the new ones), so its hive may be inconsistent: run `guestwall undo {}` first",
                    journal.display(),
                    path.display()
                ),
            ))
        }
        Ok(Some(_)) => Some(format!(
            "{}: this image holds an in-place change by guestwall, recorded in {} (`guestwall undo {}` reverts it)",
            path.display(),
            journal.display(),
            path.display()
        )),
        Err(e) => Some(format!("{}: {e}", path.display())),
    };
    let partition = img.partition;
    let Volumes {
        list,
        encrypted,
        skipped,
        whole,
        mut notes,
        disk,
    } = volumes(img)?;
    let mut volumes: Vec<(u64, Volume<Part>)> = Vec::new();
    let mut found: Vec<(u32, usize, WindowsInstall)> = Vec::new();
    for (index, start, vol) in list {
        let installs = vol
            .find_windows()
            .map_err(|e| image_err(img, format!("partition {index}: {e}")))?;
        for w in installs {
            found.push((index, volumes.len(), w));
        }
        volumes.push((start, vol));
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
            reason = format!("{reason}; {}", skipped.join("; "));
        }
        // What the container and the partition table said (a partition past the end of a
        // truncated image, say) explains an empty result.
        if !notes.is_empty() {
            reason = format!("{reason}; {}", notes.join("; "));
        }
        return Err(image_err(img, reason));
    }
    // Several on one partition (Windows and Windows.old after an upgrade): the folder named
    // `Windows` is the one that boots; the others are said in a note.
    if found.len() > 1 {
        let partitions: std::collections::BTreeSet<u32> =
            found.iter().map(|(n, _, _)| *n).collect();
        let main: Vec<usize> = (0..found.len())
            .filter(|&i| found[i].2.dir.eq_ignore_ascii_case("Windows"))
            .collect();
        if partitions.len() == 1 && main.len() == 1 {
            let keep = main[0];
            for (i, (n, _, w)) in found.iter().enumerate() {
                if i != keep {
                    notes.push(format!(
                        "{}: {}: {} also holds a Windows installation (System32\\config\\SYSTEM); the one in {} is read, because that is the folder Windows boots from",
                        path.display(),
                        name(*n),
                        w.dir,
                        found[keep].2.dir
                    ));
                }
            }
            let chosen = found.swap_remove(keep);
            found = vec![chosen];
        }
    }
    if found.len() > 1 {
        let list: Vec<String> = found
            .iter()
            .map(|(n, _, w)| format!("{} ({})", name(*n), w.dir))
            .collect();
        let partitions: std::collections::BTreeSet<u32> =
            found.iter().map(|(n, _, _)| *n).collect();
        let how = if partitions.len() == 1 {
            "they are on the same partition, and none is in a folder named Windows (the one guestwall takes); read each hive with `guestwall hive ... IMAGE::FOLDER/System32/config/SYSTEM`, or mount the volume and run guestwall on the folder to diagnose"
        } else {
            "choose one with --partition N"
        };
        return Err(image_err(
            img,
            format!("several Windows installations: {}; {how}", list.join(", ")),
        ));
    }
    notes.extend(skipped.iter().map(|s| format!("{}: {s}", path.display())));
    let (index, vi, win) = found.pop().expect("one installation");
    let (volume_start, vol) = volumes.swap_remove(vi);
    notes.extend(journal_note);
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
    type Opened = (ImageHive, FileView<Part>);
    let hive = |primary: NtfsHive, logs: [NtfsHive; 2]| -> Result<Option<Opened>> {
        let Some((location, view)) = open(primary)? else {
            return Ok(None);
        };
        let mut log_views = Vec::new();
        for l in logs {
            if let Some(v) = open(l)? {
                log_views.push(v);
            }
        }
        Ok(Some((
            ReaderSource::new(location, view.clone(), log_views),
            view,
        )))
    };
    let (system, system_file) = hive(
        NtfsHive::System,
        [NtfsHive::SystemLog1, NtfsHive::SystemLog2],
    )?
    .ok_or_else(|| image_err(img, "the Windows installation has no SYSTEM hive"))?;
    let software = hive(
        NtfsHive::Software,
        [NtfsHive::SoftwareLog1, NtfsHive::SoftwareLog2],
    )?;
    let (software, software_file) = match software {
        Some((s, f)) => (Some(s), Some(f)),
        None => (None, None),
    };
    Ok(ImageWindows {
        system,
        software,
        notes,
        found: FoundWindows {
            partition: part,
            dir: win.dir,
        },
        disk,
        volume_start,
        volume_unclean: vol.state().reasons(),
        system_file,
        software_file,
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
    /// Where the undo journal of an in-place repair goes (`--journal-dir`; default beside
    /// the image).
    pub journal_dir: Option<PathBuf>,
}

/// A file inside an image, named as `IMAGE::PATH` or `IMAGE::partition N::PATH` (the form
/// guestwall prints): the image, the partition, and the `/`-separated path in the volume.
pub fn split_image_path(arg: &str) -> Option<(PathBuf, Option<u32>, String)> {
    let (image, rest) = arg.split_once("::")?;
    let (partition, inner) = match rest.split_once("::") {
        Some((p, inner)) => {
            let n = p.strip_prefix("partition ")?.trim().parse::<u32>().ok()?;
            (Some(n), inner)
        }
        None => (None, rest),
    };
    Some((PathBuf::from(image), partition, inner.replace('\\', "/")))
}

/// A hive file inside an image, with its `.LOG1`/`.LOG2` beside it: on `img.partition`, or
/// on the one NTFS volume that has the path.
pub fn open_file(img: &ImageRef, inner: &str) -> Result<ImageHive> {
    open_file_placed(img, inner).map(|f| f.source)
}

/// A file inside an image, with what writing it in place needs.
pub struct PlacedFile {
    /// The hive (with its logs).
    pub source: ImageHive,
    /// The file: data runs, sizes, flags.
    pub file: FileView<Part>,
    /// The virtual disk.
    pub disk: Arc<Disk>,
    /// Where the volume starts on the virtual disk.
    pub volume_start: u64,
    /// Why the volume must not be written; empty when clean.
    pub volume_unclean: Vec<String>,
}

/// [`open_file`], with the file's placement on the disk and the volume's state.
pub fn open_file_placed(img: &ImageRef, inner: &str) -> Result<PlacedFile> {
    let v = volumes(img)?;
    let mut hits: Vec<(u32, FileView<Part>, &Volume<Part>, u64)> = Vec::new();
    for (n, start, vol) in &v.list {
        match vol.file(inner) {
            Ok(f) => hits.push((*n, f, vol, *start)),
            Err(guestwall_ntfsvol::Error::NotFound { .. }) => {}
            Err(e) => return Err(image_err(img, format!("{}: {inner}: {e}", v.name(*n)))),
        }
    }
    match hits.len() {
        0 => {
            let mut reason = format!("no file {inner} on any NTFS volume");
            if !v.encrypted.is_empty() {
                reason.push_str("; some volumes are encrypted with BitLocker");
            }
            Err(image_err(img, reason))
        }
        1 => {
            let (n, view, vol, volume_start) = hits.pop().expect("one hit");
            let at = |p: &str| Location::InImage {
                image: img.path.clone(),
                partition: (!v.whole).then_some(n),
                path: p.to_string(),
            };
            let mut logs = Vec::new();
            for ext in ["LOG1", "LOG2"] {
                let p = format!("{inner}.{ext}");
                if let Ok(l) = vol.file(&p) {
                    logs.push((at(&p), l));
                }
            }
            Ok(PlacedFile {
                source: ReaderSource::new(at(inner), view.clone(), logs),
                file: view,
                disk: Arc::clone(&v.disk),
                volume_start,
                volume_unclean: vol.state().reasons(),
            })
        }
        _ => {
            let list: Vec<String> = hits.iter().map(|(n, _, _, _)| v.name(*n)).collect();
            Err(image_err(
                img,
                format!(
                    "{inner} exists on {}; name one as IMAGE::partition N::{inner}",
                    list.join(" and ")
                ),
            ))
        }
    }
}

/// A file of the Windows installation `win` found in `img`, by its path below the Windows
/// folder (`System32/nl-NL/FirewallAPI.dll.mui`): its location and bytes (at most 16 MiB and
/// one byte are read: a larger file is not what was looked for), or `None` when it is absent
/// or unreadable.
pub fn read_windows_file(
    img: &ImageRef,
    win: &ImageWindows,
    rel: &str,
) -> Option<(String, Vec<u8>)> {
    let on = ImageRef {
        partition: win.found.partition,
        ..img.clone()
    };
    let inner = format!("{}/{rel}", win.found.dir);
    let placed = open_file_placed(&on, &inner).ok()?;
    let size = placed.file.size().min((16 << 20) + 1);
    let mut bytes = vec![0u8; usize::try_from(size).ok()?];
    placed.file.read_exact_at(0, &mut bytes).ok()?;
    Some((
        guestwall_regf::HiveSource::location(&placed.source).to_string(),
        bytes,
    ))
}
