//! *Locate*: what the target is (a SYSTEM hive file, a Windows folder or volume, a config
//! folder; later a disk image), and where its hives are. Nothing is parsed here beyond a
//! sniff of the first bytes that names a disk image given where a hive is expected.

use std::path::{Path, PathBuf};

use crate::{IngestError, Result};

/// The hive files of a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The SYSTEM hive.
    pub system: PathBuf,
    /// The SOFTWARE hive, when there is one.
    pub software: Option<PathBuf>,
    /// SOFTWARE was named by the user (`--software`): reading it must succeed.
    pub software_given: bool,
}

/// The entry of `dir` named `name`, compared case-insensitively (Windows volumes mounted on
/// Linux keep Windows' case).
pub fn find_ci(dir: &Path, name: &str) -> Option<PathBuf> {
    let exact = dir.join(name);
    if exact.exists() {
        return Some(exact);
    }
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .find(|e| e.file_name().to_string_lossy().eq_ignore_ascii_case(name))
        .map(|e| e.path())
}

/// Finds the hives: `target` is a SYSTEM hive file, a folder holding SYSTEM (the config
/// folder), `System32`, a `Windows` folder, or a Windows volume. `software` overrides where
/// SOFTWARE is; it must exist. A disk image is recognised by its content and refused with
/// what to do.
pub fn locate(target: &Path, software: Option<&Path>) -> Result<Target> {
    let not_found = |reason: &str| IngestError::NotFound {
        path: target.to_path_buf(),
        reason: reason.to_string(),
    };
    let system = if target.is_dir() {
        let config = [
            &["SYSTEM"][..],
            &["config", "SYSTEM"][..],
            &["System32", "config", "SYSTEM"][..],
            &["Windows", "System32", "config", "SYSTEM"][..],
        ]
        .iter()
        .find_map(|parts| {
            let mut p = target.to_path_buf();
            for part in *parts {
                p = find_ci(&p, part)?;
            }
            p.is_file().then_some(p)
        });
        config.ok_or_else(|| {
            not_found("no SYSTEM hive in it, nor in config, System32\\config or Windows\\System32\\config below it")
        })?
    } else if target.exists() {
        plain_file(target)?;
        sniff(target)?;
        target.to_path_buf()
    } else {
        return Err(not_found("no such file or folder"));
    };
    let given = software.is_some();
    let software = match software {
        Some(s) if s.is_file() => {
            plain_file(s)?;
            sniff(s)?;
            Some(s.to_path_buf())
        }
        Some(s) if s.exists() => {
            return Err(IngestError::NotFound {
                path: s.to_path_buf(),
                reason: "--software must name the SOFTWARE hive file".into(),
            })
        }
        Some(s) => {
            return Err(IngestError::NotFound {
                path: s.to_path_buf(),
                reason: "no such file (given with --software)".into(),
            })
        }
        None => system
            .parent()
            .and_then(|d| find_ci(d, "SOFTWARE"))
            .filter(|p| p.is_file()),
    };
    Ok(Target {
        system,
        software,
        software_given: given,
    })
}

/// Refuses what is not a regular file (a FIFO would block on open, a character device would
/// never end), before opening it.
fn plain_file(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(m) => Err(IngestError::NotFound {
            path: path.to_path_buf(),
            reason: format!(
                "it is {}, not a hive file or a Windows folder",
                guestwall_mmap::kind_of(&m)
            ),
        }),
        Err(_) => Ok(()),
    }
}

/// Refuses a disk image given where a hive is expected, saying what it is.
fn sniff(path: &Path) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        // Unreadable: the hive reader says why.
        Err(_) => return Ok(()),
    };
    let mut head = [0u8; 1024];
    let n = f.read(&mut head).unwrap_or(0);
    let head = &head[..n];
    let len = f.seek(SeekFrom::End(0)).unwrap_or(0);
    let mut tail = [0u8; 512];
    let tail_ok =
        len >= 512 && f.seek(SeekFrom::Start(len - 512)).is_ok() && f.read_exact(&mut tail).is_ok();
    let at = |off: usize, sig: &[u8]| head.get(off..off + sig.len()) == Some(sig);
    let what = if at(0, b"regf") {
        return Ok(());
    } else if at(0, b"vhdxfile") {
        "a VHDX disk image"
    } else if at(0, b"conectix") || (tail_ok && tail.starts_with(b"conectix")) {
        "a VHD disk image"
    } else if at(0, b"QFI\xfb") {
        "a QCOW2 disk image"
    } else if at(0, b"KDMV") || at(0, b"# Disk DescriptorFile") {
        "a VMDK disk image"
    } else if at(3, b"-FVE-FS-") {
        "a BitLocker-encrypted volume"
    } else if at(3, b"NTFS    ") {
        "an NTFS volume image"
    } else if at(512, b"EFI PART") {
        "a raw disk image with a GPT partition table"
    } else if at(510, &[0x55, 0xAA]) && head.len() >= 512 {
        "a raw disk image with an MBR partition table"
    } else {
        return Ok(());
    };
    Err(IngestError::DiskImage {
        path: path.to_path_buf(),
        what,
        hint: "Give the Windows folder of its mounted OS volume (for example with `qemu-nbd` and `ntfs-3g`, or `guestmount`), or the SYSTEM hive itself (Windows/System32/config/SYSTEM)",
    })
}
