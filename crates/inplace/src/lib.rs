//! Writing a repaired file back into a disk image in place: only into the bytes the file
//! already owns, through the container's mapping, behind an undo journal.
//!
//! # Getting started
//!
//! 1. Say where the file lives: its NTFS data runs and the partition's start
//!    ([`Placement`]). [`Placement::disk_ranges`] turns file offsets into virtual-disk offsets.
//! 2. [`plan_writes`] takes the virtual disk and the byte ranges to write, and refuses
//!    anything not safe to overwrite in place (a range not stored in the top file, a VHDX
//!    block that is not FULLY_PRESENT, a dynamic-VHD block that is unallocated, a dirty VHDX
//!    log). It returns the writes as offsets in the image file, with the VHDX header update
//!    MS-VHDX 2.2 asks for before the first payload write.
//! 3. [`commit`] writes the journal (every range's original bytes, fsynced) first, then the
//!    header, then the payload, and flushes. [`undo`] puts the journal's bytes back.
//!
//! The image is locked (`flock`, exclusive) by [`ImageLock`] for the whole operation.
//! The journal format and the invariants are in `docs/design-disk.md` ("Writing in place").

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use guestwall_vdisk::{Disk, ExtentKind, Format, Guid};

/// Errors of an in-place write: each says why nothing (or what) was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Writing in place is not safe; nothing was written.
    #[error("{0}")]
    Refused(String),
    /// An I/O error on the image or the journal.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The journal cannot be used.
    #[error("journal {}: {detail}", path.display())]
    Journal {
        /// The journal.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// One data run of a file: `len` bytes at `file_offset` in the file are at `volume_offset` in
/// the volume (`None`: a hole).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Offset in the file.
    pub file_offset: u64,
    /// Offset in the volume, `None` for a hole.
    pub volume_offset: Option<u64>,
    /// Length.
    pub len: u64,
}

/// Where a file's bytes are on the virtual disk.
#[derive(Debug, Clone)]
pub struct Placement {
    /// The file's data runs.
    pub runs: Vec<Run>,
    /// The volume's start on the virtual disk.
    pub volume_start: u64,
    /// The file's size.
    pub size: u64,
}

impl Placement {
    /// The virtual-disk ranges of the file's bytes `offset..offset+len`, in order: (disk
    /// offset, length). A range outside the file or over a hole is refused.
    pub fn disk_ranges(&self, offset: u64, len: u64) -> Result<Vec<(u64, u64)>> {
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= self.size)
            .ok_or_else(|| {
                Error::Refused(format!(
                    "bytes {offset:#x}+{len:#x} lie outside the file ({} bytes): the repaired hive would need to grow",
                    self.size
                ))
            })?;
        let mut out: Vec<(u64, u64)> = Vec::new();
        let mut at = offset;
        while at < end {
            let run = self
                .runs
                .iter()
                .find(|r| r.file_offset <= at && at < r.file_offset + r.len)
                .ok_or_else(|| {
                    Error::Refused(format!("file offset {at:#x} lies in no data run"))
                })?;
            let vol = run.volume_offset.ok_or_else(|| {
                Error::Refused(format!(
                    "file offset {at:#x} lies in a sparse run (a hole): there are no clusters to write into"
                ))
            })?;
            let n = (run.file_offset + run.len).min(end) - at;
            let disk = self.volume_start + vol + (at - run.file_offset);
            match out.last_mut() {
                Some((o, l)) if *o + *l == disk => *l += n,
                _ => out.push((disk, n)),
            }
            at += n;
        }
        Ok(out)
    }
}

/// A write in the image file: `bytes` at `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileWrite {
    /// Offset in the image file (the top file of a differencing chain).
    pub offset: u64,
    /// The new bytes.
    pub bytes: Vec<u8>,
}

/// The writes of one in-place repair, in the order they must reach the image.
#[derive(Debug, Clone, Default)]
pub struct WritePlan {
    /// Metadata to write and flush before any payload (the VHDX header update).
    pub header: Vec<FileWrite>,
    /// The payload: the changed bytes of the file.
    pub payload: Vec<FileWrite>,
}

impl WritePlan {
    /// Bytes written in all.
    pub fn bytes(&self) -> u64 {
        self.header
            .iter()
            .chain(&self.payload)
            .map(|w| w.bytes.len() as u64)
            .sum()
    }
}

/// Turns virtual-disk writes into image-file writes, refusing what cannot be overwritten in
/// place. `writes` are (virtual-disk offset, bytes).
pub fn plan_writes(disk: &Disk, writes: &[(u64, Vec<u8>)]) -> Result<WritePlan> {
    if disk.any_log_dirty() {
        return Err(Error::Refused(
            "the VHDX log is dirty: its entries were replayed in memory for reading, but writing needs the log applied to the file first (open the disk once in Hyper-V, or `qemu-img check -r all` on a copy)".into(),
        ));
    }
    let mut plan = WritePlan::default();
    for (offset, bytes) in writes {
        let extents = disk
            .map(*offset, bytes.len() as u64)
            .map_err(|e| Error::Refused(format!("virtual disk offset {offset:#x}: {e}")))?;
        for e in extents {
            if !e.writable_in_place() {
                let why = match (e.kind, e.deferred) {
                    (_, Some(r)) => format!(
                        "the bytes are not in this file but in its parent ({r:?}); merge the differencing disk into its parent first (`qemu-img commit`, or Hyper-V's merge), then repair the merged disk. Do not repair the parent alone: that changes its DataWriteGuid and every child of it stops opening"
                    ),
                    (ExtentKind::Zeros { reason, .. }, None) => format!(
                        "the block is not allocated in the image ({reason:?}); writing would need new blocks and metadata"
                    ),
                    (ExtentKind::File { layer, .. }, None) => format!(
                        "the bytes are stored in layer {layer} of the chain, not in the file opened"
                    ),
                    (k, None) => format!("{k:?}"),
                };
                return Err(Error::Refused(format!(
                    "virtual disk bytes {:#x}+{:#x} cannot be written in place: {why}",
                    e.offset, e.len
                )));
            }
            let ExtentKind::File { file_offset, .. } = e.kind else {
                continue;
            };
            let from = (e.offset - offset) as usize;
            let to = from + e.len as usize;
            plan.payload.push(FileWrite {
                offset: file_offset,
                bytes: bytes[from..to].to_vec(),
            });
        }
    }
    let vhdx = matches!(
        disk.format(),
        Format::VhdxFixed | Format::VhdxDynamic | Format::VhdxDifferencing
    );
    if vhdx && !plan.payload.is_empty() {
        // MS-VHDX 2.2.2: before the first write to the file, a new FileWriteGuid (and, for
        // payload writes, DataWriteGuid) in the non-current header, with the next sequence
        // number, flushed before anything else.
        let info = disk
            .vhdx_header()
            .ok_or_else(|| Error::Refused("the VHDX header could not be read".into()))?;
        let g = |what: &str| Guid::random().map_err(io_err(format!("a new {what}")));
        let (at, header) = info.next_header(g("FileWriteGuid")?, g("DataWriteGuid")?);
        plan.header.push(FileWrite {
            offset: at,
            bytes: header,
        });
    }
    Ok(plan)
}

/// An exclusive lock on the image file, held for a whole repair or undo.
#[derive(Debug)]
pub struct ImageLock {
    file: File,
    path: PathBuf,
}

impl ImageLock {
    /// Opens `path` read-write and locks it (`flock`, exclusive, not waiting): another
    /// guestwall, or any tool that locks the image, makes this fail with a message.
    pub fn take(path: &Path) -> Result<ImageLock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io_err(format!("opening {} for writing", path.display())))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(ImageLock {
                file,
                path: path.to_path_buf(),
            }),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => Err(Error::Refused(format!(
                "{} is in use by another process (it holds a lock on it): close it there first",
                path.display()
            ))),
            Err(e) => Err(Error::Io {
                what: format!("locking {}", path.display()),
                source: e.into(),
            }),
        }
    }

    /// The open image.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The image's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Refuses a block device that is mounted or held by another device (a partition of it
/// mounted, LVM, dm-crypt): writing under a file system driver corrupts both.
pub fn check_not_mounted(path: &Path) -> Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = std::fs::metadata(path).map_err(io_err(format!("{}", path.display())))?;
    if !meta.file_type().is_block_device() {
        return Ok(());
    }
    let rdev = meta.rdev();
    let (major, minor) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
    let name = std::fs::read_link(format!("/sys/dev/block/{major}:{minor}"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    // The device and its partitions, by device number, against /proc/self/mountinfo.
    let mut devices = vec![format!("{major}:{minor}")];
    if !name.is_empty() {
        if let Ok(rd) = std::fs::read_dir(format!("/sys/class/block/{name}")) {
            for e in rd.flatten() {
                if let Ok(dev) = std::fs::read_to_string(e.path().join("dev")) {
                    devices.push(dev.trim().to_string());
                }
            }
        }
        let holders = std::fs::read_dir(format!("/sys/class/block/{name}/holders"))
            .map(|rd| rd.flatten().count())
            .unwrap_or(0);
        if holders > 0 {
            return Err(Error::Refused(format!(
                "{} is held by another device (LVM, dm-crypt, RAID): guestwall does not write under it",
                path.display()
            )));
        }
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mountinfo.lines() {
        let mut f = line.split(' ');
        let dev = f.nth(2).unwrap_or("");
        let point = f.nth(1).unwrap_or("");
        if devices.iter().any(|d| d == dev) {
            return Err(Error::Refused(format!(
                "{} (or a partition of it) is mounted at {point}: unmount it first; writing under a mounted file system corrupts it",
                path.display()
            )));
        }
    }
    Ok(())
}

/// A journal: what an in-place repair overwrote, so that [`undo`] can put it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journal {
    /// The image's size when the journal was made.
    pub image_size: u64,
    /// The image, as named when the journal was made.
    pub image: String,
    /// (offset in the image file, original bytes, digest of the new bytes).
    pub ranges: Vec<(u64, Vec<u8>, u128)>,
}

const MAGIC: &[u8; 8] = b"GWJOURN1";
/// The largest journal read back (a repair writes a few pages).
const MAX_JOURNAL: u64 = 256 << 20;

/// The digest used in journals (the regf save's 128-bit content digest).
fn digest(b: &[u8]) -> u128 {
    guestwall_regf::save::file_digest(b)
}

impl Journal {
    fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(MAGIC);
        v.extend_from_slice(&self.image_size.to_le_bytes());
        let name = self.image.as_bytes();
        v.extend_from_slice(&(name.len() as u32).to_le_bytes());
        v.extend_from_slice(name);
        v.extend_from_slice(&(self.ranges.len() as u32).to_le_bytes());
        for (off, orig, new) in &self.ranges {
            v.extend_from_slice(&off.to_le_bytes());
            v.extend_from_slice(&(orig.len() as u32).to_le_bytes());
            v.extend_from_slice(orig);
            v.extend_from_slice(&new.to_le_bytes());
        }
        let d = digest(&v);
        v.extend_from_slice(&d.to_le_bytes());
        v
    }

    fn parse(path: &Path, b: &[u8]) -> Result<Journal> {
        let bad = |detail: &str| Error::Journal {
            path: path.to_path_buf(),
            detail: detail.to_string(),
        };
        if b.len() < MAGIC.len() + 16 || &b[..8] != MAGIC {
            return Err(bad("not a guestwall journal"));
        }
        let (body, sum) = b.split_at(b.len() - 16);
        if digest(body).to_le_bytes() != sum {
            return Err(bad(
                "its checksum is wrong: it was damaged after it was written (guestwall writes a journal whole, and flushes it, before any byte of the image), so the image may hold the repair and the journal can no longer undo it; keep the journal and compare the image with a copy before deleting anything",
            ));
        }
        let mut r = body;
        let mut take = |n: usize| -> Result<&[u8]> {
            if r.len() < n {
                return Err(bad("cut short"));
            }
            let (a, rest) = r.split_at(n);
            r = rest;
            Ok(a)
        };
        take(8)?;
        let u64_ = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
        let u32_ = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap_or([0; 4]));
        let image_size = u64_(take(8)?);
        let n = u32_(take(4)?) as usize;
        let image = String::from_utf8_lossy(take(n)?).into_owned();
        let count = u32_(take(4)?) as usize;
        let mut ranges = Vec::new();
        for _ in 0..count {
            let off = u64_(take(8)?);
            let len = u32_(take(4)?) as usize;
            let orig = take(len)?.to_vec();
            let new = u128::from_le_bytes(take(16)?.try_into().unwrap_or([0; 16]));
            ranges.push((off, orig, new));
        }
        if !r.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(Journal {
            image_size,
            image,
            ranges,
        })
    }

    /// Reads a journal (bounded in size; its checksum checked).
    pub fn read(path: &Path) -> Result<Journal> {
        let mut f = File::open(path).map_err(io_err(format!("reading {}", path.display())))?;
        let mut b = Vec::new();
        (&mut f)
            .take(MAX_JOURNAL + 1)
            .read_to_end(&mut b)
            .map_err(io_err(format!("reading {}", path.display())))?;
        if b.len() as u64 > MAX_JOURNAL {
            return Err(Error::Journal {
                path: path.to_path_buf(),
                detail: "larger than any journal guestwall writes".into(),
            });
        }
        Journal::parse(path, &b)
    }
}

/// Where the journal of `image` goes. The image is named by its real path (links resolved),
/// so that every way of naming it finds the same journal: `<image>.guestwall-journal` beside
/// the real file; in `dir` (`--journal-dir`, and the current folder for a block device, whose
/// folder is /dev), `<name>-<hash of the real path>.guestwall-journal`, so that two images of
/// the same name in different folders never share a journal.
pub fn journal_path(image: &Path, dir: Option<&Path>) -> PathBuf {
    use std::os::unix::fs::FileTypeExt;
    let real = std::fs::canonicalize(image).unwrap_or_else(|_| image.to_path_buf());
    let name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    let block = std::fs::metadata(&real).is_ok_and(|m| m.file_type().is_block_device());
    let dir = match (dir, block) {
        (Some(d), _) => Some(d),
        (None, true) => Some(Path::new(".")),
        (None, false) => None,
    };
    match dir {
        Some(d) => {
            let h = digest(real.as_os_str().as_encoded_bytes());
            d.join(format!("{name}-{:016x}.guestwall-journal", h as u64))
        }
        None => real.with_file_name(format!("{name}.guestwall-journal")),
    }
}

/// What a journal says of its image now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalState {
    /// Every range holds the bytes the repair wrote: a finished repair, which `undo` reverts.
    Done,
    /// Every range holds the original bytes: the repair stopped before writing (or was
    /// undone by hand); `undo` just retires the journal.
    NotStarted,
    /// Some ranges hold new bytes and others old ones, or bytes of neither: the repair was
    /// interrupted (or the image changed since); the hive may be inconsistent until `undo`.
    Torn,
}

/// Reads the journal of `image` at `journal` (if there is one) and compares its ranges with
/// the image's bytes.
pub fn journal_state(image: &Path, journal: &Path) -> Result<Option<JournalState>> {
    if !journal.exists() {
        return Ok(None);
    }
    let j = Journal::read(journal)?;
    let f = File::open(image).map_err(io_err(format!("reading {}", image.display())))?;
    let (mut new, mut old) = (0usize, 0usize);
    for (off, orig, d) in &j.ranges {
        let mut cur = vec![0u8; orig.len()];
        if f.read_exact_at(&mut cur, *off).is_err() {
            return Ok(Some(JournalState::Torn));
        }
        if cur == *orig {
            old += 1;
        } else if digest(&cur) == *d {
            new += 1;
        }
    }
    let n = j.ranges.len();
    Ok(Some(if new == n {
        JournalState::Done
    } else if old == n {
        JournalState::NotStarted
    } else {
        JournalState::Torn
    }))
}

/// Refuses when another process holds a lock on the image (`/proc/locks`: flock, POSIX and
/// open-file-description locks, as a running QEMU/KVM guest or qemu-nbd take them), or when a
/// loop device is attached to it (it may be mounted through that device).
pub fn check_not_in_use(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let Ok(meta) = std::fs::metadata(&real) else {
        return Ok(());
    };
    let (maj, min, ino) = (
        rustix::fs::major(meta.dev()),
        rustix::fs::minor(meta.dev()),
        meta.ino(),
    );
    let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    for line in locks.lines() {
        // "1: OFDLCK ADVISORY  READ -1 fd:01:1234 100 100": major:minor in hex, inode decimal.
        let f: Vec<&str> = line.split_whitespace().collect();
        let Some(id) = f
            .iter()
            .find(|x| x.matches(':').count() == 2 && !x.ends_with(':'))
        else {
            continue;
        };
        let p: Vec<&str> = id.split(':').collect();
        let same = u32::from_str_radix(p[0], 16).ok() == Some(maj)
            && u32::from_str_radix(p[1], 16).ok() == Some(min)
            && p[2].parse::<u64>().ok() == Some(ino);
        if same {
            let kind = f.get(1).copied().unwrap_or("a");
            let pid = f.get(4).copied().unwrap_or("?");
            return Err(Error::Refused(format!(
                "{} is in use: another process holds a lock on it ({kind} lock, process {pid}; a running VM, qemu-nbd or another guestwall). Stop it first",
                path.display()
            )));
        }
    }
    if let Ok(rd) = std::fs::read_dir("/sys/block") {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with("loop") {
                continue;
            }
            let Ok(b) = std::fs::read_to_string(e.path().join("loop/backing_file")) else {
                continue;
            };
            let b = b.trim().trim_end_matches(" (deleted)");
            if Path::new(b) == real {
                return Err(Error::Refused(format!(
                    "{} is attached to /dev/{name} (losetup): it may be mounted through it; detach it first (`losetup -d /dev/{name}`, after unmounting)",
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

fn fsync_dir(path: &Path) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(format!("flushing {}", dir.display())))
}

/// The temporary name of a journal being written by process `pid`.
fn temp_name(journal: &Path, pid: u32) -> PathBuf {
    let mut name = journal.as_os_str().to_owned();
    name.push(format!(".tmp-{pid}"));
    PathBuf::from(name)
}

/// Removes temporary journals (`<journal>.tmp-<pid>`) left by processes that are gone (a
/// guestwall killed while writing its journal, before any byte of the image was written).
fn remove_stale_temps(journal: &Path) {
    let (Some(dir), Some(name)) = (journal.parent(), journal.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{}.tmp-", name.to_string_lossy());
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = n.strip_prefix(&prefix).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Test hook (debug builds only): `GUESTWALL_INPLACE_FAULT=fail:N` makes the write of range
/// N fail (as a full disk or an I/O error would), `abort:N` ends the process there (as a crash
/// or a kill would).
fn fault(n: usize) -> io::Result<()> {
    #[cfg(debug_assertions)]
    if let Ok(v) = std::env::var("GUESTWALL_INPLACE_FAULT") {
        if let Some((what, at)) = v.split_once(':') {
            if at.parse::<usize>().ok() == Some(n) {
                match what {
                    "abort" => std::process::abort(),
                    "fail" => return Err(io::Error::other("injected write failure")),
                    _ => {}
                }
            }
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = n;
    Ok(())
}

/// What [`commit`] did.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The journal written.
    pub journal: PathBuf,
    /// Bytes written to the image.
    pub bytes: u64,
    /// Ranges written.
    pub ranges: usize,
}

/// Writes `plan` into the image `lock` holds: first the journal (the original bytes of every
/// range, written to a temporary name, fsynced, renamed, the folder fsynced), then the header
/// writes and a flush, then the payload and a flush. An existing journal (an earlier repair
/// not undone) is refused: undo it first.
pub fn commit(lock: &ImageLock, plan: &WritePlan, journal: &Path) -> Result<Committed> {
    if journal.exists() {
        return Err(Error::Refused(format!(
            "{} exists: an earlier in-place repair of this image is recorded there; run `guestwall undo` on the image first (or move the journal away if that repair is to stay)",
            journal.display()
        )));
    }
    let f = lock.file();
    let size = f
        .metadata()
        .map_err(io_err(format!("{}", lock.path().display())))?
        .len();
    let mut j = Journal {
        image_size: size,
        image: std::fs::canonicalize(lock.path())
            .unwrap_or_else(|_| lock.path().to_path_buf())
            .display()
            .to_string(),
        ranges: Vec::new(),
    };
    for w in plan.header.iter().chain(&plan.payload) {
        let mut orig = vec![0u8; w.bytes.len()];
        f.read_exact_at(&mut orig, w.offset)
            .map_err(io_err(format!("reading the image at {:#x}", w.offset)))?;
        j.ranges.push((w.offset, orig, digest(&w.bytes)));
    }
    remove_stale_temps(journal);
    let tmp = temp_name(journal, std::process::id());
    let write_journal = || -> io::Result<()> {
        let mut t = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        t.write_all(&j.to_bytes())?;
        t.sync_all()?;
        std::fs::hard_link(&tmp, journal)?;
        std::fs::remove_file(&tmp)
    };
    if let Err(e) = write_journal() {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::Io {
            what: format!("writing the journal {}", journal.display()),
            source: e,
        });
    }
    fsync_dir(journal)?;
    // Ctrl-C during the writes only sets a flag (when the command line registered its handler
    // so): the writes finish, or are put back.
    let _busy = guestwall_regf::save::Busy::start();
    let mut n = 0usize;
    let mut write = || -> io::Result<()> {
        for phase in [&plan.header, &plan.payload] {
            for w in phase {
                fault(n)?;
                f.write_all_at(&w.bytes, w.offset)?;
                n += 1;
            }
            f.sync_all()?;
        }
        Ok(())
    };
    if let Err(e) = write() {
        // Put back what the journal holds, so that a failed write leaves the original.
        let back = || -> io::Result<()> {
            for (off, orig, _) in j.ranges.iter().rev() {
                f.write_all_at(orig, *off)?;
            }
            f.sync_all()
        };
        return Err(match back() {
            Ok(()) => {
                let _ = std::fs::remove_file(journal);
                let _ = fsync_dir(journal);
                Error::Io {
                    what: format!(
                        "writing {} failed, and the bytes already written were put back (the image is as it was)",
                        lock.path().display()
                    ),
                    source: e,
                }
            }
            Err(e2) => Error::Io {
                what: format!(
                    "writing {} failed part-way, and putting the original bytes back failed too ({e2}): the image is damaged until `guestwall undo {}` restores it from {}",
                    lock.path().display(),
                    lock.path().display(),
                    journal.display()
                ),
                source: e,
            },
        });
    }
    Ok(Committed {
        journal: journal.to_path_buf(),
        bytes: plan.bytes(),
        ranges: plan.header.len() + plan.payload.len(),
    })
}

/// What [`undo`] did.
#[derive(Debug, Clone)]
pub struct Undone {
    /// Where the journal was moved (`<journal>.undone-<pid>`).
    pub journal_kept_as: PathBuf,
    /// The image already held the original bytes.
    pub unchanged: bool,
}

/// Puts the journal's original bytes back into the image `lock` holds. Each range must hold
/// either the bytes the repair wrote or the original ones (an interrupted repair or undo);
/// anything else means the image changed since, and is refused unless `force`. The journal is
/// kept, renamed, once the image is flushed.
pub fn undo(lock: &ImageLock, journal: &Path, force: bool) -> Result<Undone> {
    let j = Journal::read(journal)?;
    let real = std::fs::canonicalize(lock.path()).unwrap_or_else(|_| lock.path().to_path_buf());
    if Path::new(&j.image) != real && !force {
        return Err(Error::Refused(format!(
            "{} was written for {}, not for {} (--force to use it anyway)",
            journal.display(),
            j.image,
            real.display()
        )));
    }
    let f = lock.file();
    let size = f
        .metadata()
        .map_err(io_err(format!("{}", lock.path().display())))?
        .len();
    if size != j.image_size && !force {
        return Err(Error::Refused(format!(
            "{} is {size} bytes but was {} when {} was written: it is not the same image (--force to undo anyway)",
            lock.path().display(),
            j.image_size,
            journal.display()
        )));
    }
    let mut unchanged = true;
    for (off, orig, new) in &j.ranges {
        let mut cur = vec![0u8; orig.len()];
        f.read_exact_at(&mut cur, *off)
            .map_err(io_err(format!("reading the image at {off:#x}")))?;
        if cur == *orig {
            continue;
        }
        unchanged = false;
        if digest(&cur) != *new && !force {
            return Err(Error::Refused(format!(
                "the image's bytes at {off:#x} are neither those guestwall wrote nor the original ones: the image changed since {} was written (--force to put the original bytes back anyway)",
                journal.display()
            )));
        }
    }
    // Payload first, the header last: the reverse of the repair.
    for (off, orig, _) in j.ranges.iter().rev() {
        f.write_all_at(orig, *off)
            .map_err(io_err(format!("writing the image at {off:#x}")))?;
    }
    f.sync_all()
        .map_err(io_err(format!("flushing {}", lock.path().display())))?;
    let kept = journal.with_extension(format!(
        "guestwall-journal.undone-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    ));
    std::fs::rename(journal, &kept).map_err(io_err(format!("renaming {}", journal.display())))?;
    fsync_dir(&kept)?;
    Ok(Undone {
        journal_kept_as: kept,
        unchanged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_maps_file_bytes_through_runs_and_refuses_holes_and_growth() {
        let p = Placement {
            runs: vec![
                Run {
                    file_offset: 0,
                    volume_offset: Some(0x10000),
                    len: 0x2000,
                },
                Run {
                    file_offset: 0x2000,
                    volume_offset: Some(0x40000),
                    len: 0x1000,
                },
                Run {
                    file_offset: 0x3000,
                    volume_offset: None,
                    len: 0x1000,
                },
            ],
            volume_start: 0x100000,
            size: 0x4000,
        };
        assert_eq!(
            p.disk_ranges(0x1000, 0x1800).unwrap(),
            vec![(0x111000, 0x1000), (0x140000, 0x800)]
        );
        assert!(p.disk_ranges(0x3000, 0x10).is_err());
        assert!(p.disk_ranges(0x3ff0, 0x20).is_err());
    }

    #[test]
    fn journals_round_trip_and_damage_is_named() {
        let j = Journal {
            image_size: 1 << 30,
            image: "disk.vhdx".into(),
            ranges: vec![(0x10000, vec![1, 2, 3], 7), (0x5000, vec![9; 4096], 8)],
        };
        let b = j.to_bytes();
        let p = Path::new("j");
        assert_eq!(Journal::parse(p, &b).unwrap(), j);
        for cut in [0, 8, 20, b.len() - 1] {
            assert!(Journal::parse(p, &b[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = b.clone();
        flipped[30] ^= 1;
        let e = Journal::parse(p, &flipped).unwrap_err().to_string();
        assert!(e.contains("checksum"), "{e}");
    }

    #[test]
    fn commit_then_undo_gives_back_the_original_bytes() {
        let dir = std::env::temp_dir().join(format!("gw-inplace-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let img = dir.join("disk.raw");
        let orig: Vec<u8> = (0..65536u32).map(|i| (i * 7) as u8).collect();
        std::fs::write(&img, &orig).unwrap();
        let lock = ImageLock::take(&img).unwrap();
        // A second writer is refused while the lock is held.
        assert!(ImageLock::take(&img).is_err());
        let plan = WritePlan {
            header: vec![],
            payload: vec![
                FileWrite {
                    offset: 4096,
                    bytes: vec![0xAA; 4096],
                },
                FileWrite {
                    offset: 40000,
                    bytes: vec![0x55; 100],
                },
            ],
        };
        let jp = journal_path(&img, None);
        let c = commit(&lock, &plan, &jp).unwrap();
        assert_eq!(c.bytes, 4196);
        let now = std::fs::read(&img).unwrap();
        assert_eq!(&now[4096..8192], &[0xAA; 4096][..]);
        assert_eq!(&now[..4096], &orig[..4096]);
        // A second repair is refused while the journal is there.
        assert!(commit(&lock, &plan, &jp).is_err());
        let u = undo(&lock, &jp, false).unwrap();
        assert!(!u.unchanged);
        assert_eq!(std::fs::read(&img).unwrap(), orig);
        assert!(!jp.exists() && u.journal_kept_as.exists());
        // Changed since: refused.
        let c = commit(&lock, &plan, &jp).unwrap();
        assert_eq!(c.ranges, 2);
        lock.file().write_all_at(&[1, 2, 3], 4096).unwrap();
        assert!(undo(&lock, &jp, false).is_err());
        undo(&lock, &jp, true).unwrap();
        assert_eq!(std::fs::read(&img).unwrap(), orig);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
