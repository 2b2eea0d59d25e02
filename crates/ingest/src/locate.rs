//! *Locate*: what the target is (a SYSTEM hive file, a Windows folder or volume, a config
//! folder, a disk image or block device), and where its hives are. Nothing is parsed here
//! beyond a sniff of the first bytes that tells a hive from a disk image, by content.

use std::path::{Path, PathBuf};

use crate::image::ImageRef;
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
    /// The target is a disk image (or block device): the hives are read from inside it, and
    /// `system` is the image.
    pub image: Option<ImageRef>,
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
/// folder), `System32`, a `Windows` folder, a Windows volume, or a disk image (raw, VHD, VHDX,
/// an NTFS volume image, a block device), recognised by its content. `software` overrides
/// where SOFTWARE is; it must exist.
pub fn locate(target: &Path, software: Option<&Path>) -> Result<Target> {
    locate_with(target, software, None)
}

/// [`locate`], with the partition of a disk image to read (`--partition N`).
pub fn locate_with(
    target: &Path,
    software: Option<&Path>,
    partition: Option<u32>,
) -> Result<Target> {
    let t = locate_inner(target, software)?;
    match (&t.image, partition) {
        (Some(img), _) => Ok(Target {
            image: Some(ImageRef {
                partition,
                ..img.clone()
            }),
            ..t
        }),
        (None, Some(_)) => Err(IngestError::NotFound {
            path: target.to_path_buf(),
            reason: "--partition applies to a disk image, and this is not one".into(),
        }),
        (None, None) => Ok(t),
    }
}

fn locate_inner(target: &Path, software: Option<&Path>) -> Result<Target> {
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
        if plain_file(target)? {
            if let Some(what) = sniff(target)? {
                if let Some(s) = software {
                    return Err(IngestError::NotFound {
                        path: s.to_path_buf(),
                        reason: format!(
                            "--software does not apply to a disk image: {} is {what}, and its SOFTWARE hive is read from inside it",
                            target.display()
                        ),
                    });
                }
                return Ok(Target {
                    system: target.to_path_buf(),
                    software: None,
                    software_given: false,
                    image: Some(ImageRef {
                        path: target.to_path_buf(),
                        partition: None,
                        what,
                        journal_dir: None,
                    }),
                });
            }
        } else {
            // A block device: a disk or a partition.
            return Ok(Target {
                system: target.to_path_buf(),
                software: None,
                software_given: false,
                image: Some(ImageRef {
                    path: target.to_path_buf(),
                    partition: None,
                    what: "a block device",
                    journal_dir: None,
                }),
            });
        }
        target.to_path_buf()
    } else {
        // `exists()` is false for any error: say which (a loop of links, a permission).
        return Err(match std::fs::metadata(target) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                not_found(&format!("cannot reach it: {e}"))
            }
            _ if std::fs::symlink_metadata(target).is_ok() => {
                not_found("a symbolic link to nothing (dangling)")
            }
            _ => not_found("no such file or folder"),
        });
    };
    let given = software.is_some();
    let software = match software {
        Some(s) if s.is_file() => {
            plain_file(s)?;
            if let Some(what) = sniff(s)? {
                return Err(IngestError::DiskImage {
                    path: s.to_path_buf(),
                    what,
                    hint: "--software must name the SOFTWARE hive file; to read a disk image, give the image as the target",
                });
            }
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
        image: None,
    })
}

/// Refuses what is neither a regular file nor a block device (a FIFO would block on open, a
/// character device would never end), before opening it. True for a regular file (or one
/// that cannot be looked at: the reader says why), false for a block device.
fn plain_file(path: &Path) -> Result<bool> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(true),
        Ok(m) if m.file_type().is_block_device() => Ok(false),
        Ok(m) => Err(IngestError::NotFound {
            path: path.to_path_buf(),
            reason: format!(
                "it is {}, not a hive file or a Windows folder",
                guestwall_mmap::kind_of(&m)
            ),
        }),
        Err(_) => Ok(true),
    }
}

/// What a file is by its first bytes (and a VHD's footer): `None` for a hive (or anything
/// that is no image: the hive reader says why), the kind of disk image guestwall reads, or an
/// error for an image it does not read (QCOW2, VMDK).
fn sniff(path: &Path) -> Result<Option<&'static str>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        // Unreadable: the hive reader says why.
        Err(_) => return Ok(None),
    };
    let mut head = [0u8; 1024];
    let n = f.read(&mut head).unwrap_or(0);
    let head = &head[..n];
    let len = f.seek(SeekFrom::End(0)).unwrap_or(0);
    let mut tail = [0u8; 512];
    let tail_ok =
        len >= 512 && f.seek(SeekFrom::Start(len - 512)).is_ok() && f.read_exact(&mut tail).is_ok();
    let at = |off: usize, sig: &[u8]| head.get(off..off + sig.len()) == Some(sig);
    let unsupported = if at(0, b"QFI\xfb") {
        Some("a QCOW2 disk image")
    } else if at(0, b"KDMV") || at(0, b"# Disk DescriptorFile") {
        Some("a VMDK disk image")
    } else {
        None
    };
    if let Some(what) = unsupported {
        return Err(IngestError::DiskImage {
            path: path.to_path_buf(),
            what,
            hint: "guestwall reads raw, VHD and VHDX images: convert it first (`qemu-img convert -O vhdx IMAGE disk.vhdx`), or give the Windows folder of its mounted OS volume, or the SYSTEM hive itself",
        });
    }
    let what = if at(0, b"regf") {
        return Ok(None);
    } else if at(0, b"vhdxfile") {
        "a VHDX disk image"
    } else if at(0, b"conectix") || (tail_ok && tail.starts_with(b"conectix")) {
        "a VHD disk image"
    } else if at(3, b"-FVE-FS-") {
        "a BitLocker-encrypted volume"
    } else if at(3, b"NTFS    ") {
        "an NTFS volume image"
    } else if at(512, b"EFI PART") {
        "a raw disk image with a GPT partition table"
    } else if at(510, &[0x55, 0xAA]) && head.len() >= 512 {
        "a raw disk image with an MBR partition table"
    } else {
        return Ok(None);
    };
    Ok(Some(what))
}
