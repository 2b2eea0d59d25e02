//! What the file store needs of the file system beyond reading and writing: following
//! symbolic links to the real file, an exclusive lock per hive, permission checks made before
//! anything is written, keeping the owner, group, mode and extended attributes of the file it
//! replaces, and error messages that say what an I/O error means for the user.

use std::fs::{self, File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The file a path stands for: the path itself, or the file at the end of its symbolic links.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    /// The real file (every link followed). Backups, temporary files and the rename happen
    /// beside it, so that the link keeps pointing at the saved hive.
    pub real: PathBuf,
    /// The path as the user named it.
    pub named: PathBuf,
}

impl Resolved {
    /// True when the named path is (or goes through) a symbolic link.
    pub fn via_link(&self) -> bool {
        fs::symlink_metadata(&self.named).is_ok_and(|m| m.file_type().is_symlink())
            || fs::canonicalize(parent_dir(&self.named)).ok() != Some(parent_dir(&self.real))
    }
}

/// The real file behind `path`, as an absolute path: symbolic links in its last component
/// and in its folders followed. A link that leads nowhere is an error.
pub(crate) fn resolve(path: &Path) -> Result<Resolved> {
    let meta = fs::symlink_metadata(path).map_err(|source| explain(path, source))?;
    let real = if meta.file_type().is_symlink() {
        fs::canonicalize(path).map_err(|source| Error::Refused {
            path: path.to_path_buf(),
            reason: format!(
                "it is a symbolic link that leads to no file ({source}); nothing was written"
            ),
        })?
    } else {
        // The folder made absolute (the history records where the hive is, whatever the
        // working directory of a later `undo`), the file's own name kept.
        let dir = parent_dir(path);
        let dir = fs::canonicalize(&dir).map_err(|source| explain(&dir, source))?;
        match path.file_name() {
            Some(n) => dir.join(n),
            None => path.to_path_buf(),
        }
    };
    // Only regular files: a FIFO would block the lock's open, a device is not a hive file.
    match fs::metadata(&real) {
        Ok(m) if !m.is_file() => {
            return Err(Error::Refused {
                path: path.to_path_buf(),
                reason: format!("it is {}, not a hive file", guestwall_mmap::kind_of(&m)),
            })
        }
        _ => {}
    }
    Ok(Resolved {
        real,
        named: path.to_path_buf(),
    })
}

/// How long a writer waits for another one by default.
pub(crate) const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(30);

/// The wait set by `GUESTWALL_LOCK_WAIT` (seconds), or the default.
pub(crate) fn lock_wait(opt: Option<Duration>) -> Duration {
    opt.or_else(|| {
        std::env::var("GUESTWALL_LOCK_WAIT")
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
    })
    .unwrap_or(DEFAULT_LOCK_WAIT)
}

/// An exclusive advisory lock (`flock`) on a hive file, held from the read to the rename.
///
/// The save replaces the file by renaming a new one over it, so a waiter may end up holding
/// the lock of the old inode; after locking, the path is checked to still be the locked file,
/// and the lock is taken again otherwise.
#[derive(Debug)]
pub(crate) struct HiveLock {
    _file: File,
}

impl HiveLock {
    /// Locks an open file that no one else can have yet (the new hive, before its rename).
    pub(crate) fn on(file: File) -> std::io::Result<HiveLock> {
        file.lock()?;
        Ok(HiveLock { _file: file })
    }
}

/// Takes the lock on `path`, waiting up to `wait`; `on_wait` is called once when the lock is
/// busy, so that the caller can say it is waiting.
pub(crate) fn lock(
    path: &Path,
    wait: Duration,
    on_wait: Option<fn(&Path, Duration)>,
) -> Result<HiveLock> {
    let start = Instant::now();
    let mut told = false;
    loop {
        let file = File::open(path).map_err(|source| explain(path, source))?;
        match file.try_lock() {
            Ok(()) => {
                let locked = file.metadata().map_err(|source| explain(path, source))?;
                match fs::metadata(path) {
                    Ok(now) if now.dev() == locked.dev() && now.ino() == locked.ino() => {
                        return Ok(HiveLock { _file: file });
                    }
                    // Replaced (renamed over) while we waited: lock the new file.
                    Ok(_) => continue,
                    Err(source) => return Err(explain(path, source)),
                }
            }
            Err(fs::TryLockError::WouldBlock) => {
                if start.elapsed() >= wait {
                    return Err(Error::Refused {
                        path: path.to_path_buf(),
                        reason: format!(
                            "another process is writing it (it has held guestwall's lock on the file for over {} s); nothing was written. Try again when it has finished, or set GUESTWALL_LOCK_WAIT to wait longer",
                            wait.as_secs_f64().round()
                        ),
                    });
                }
                if !told {
                    told = true;
                    if let Some(f) = on_wait {
                        f(path, wait);
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(fs::TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => {
                // A file system without locks (some network file systems): go on unlocked.
                return Ok(HiveLock { _file: file });
            }
            Err(fs::TryLockError::Error(source)) => return Err(explain(path, source)),
        }
    }
}

/// Refuses, before anything is written, a hive the user may not replace: not a regular file,
/// no write permission on it or on its folder, a read-only file system, or an owner and group
/// that the new file could not be given. Returns the file's metadata, to be kept on the new
/// file.
pub(crate) fn check_writable(path: &Path) -> Result<Metadata> {
    let meta = fs::metadata(path).map_err(|source| explain(path, source))?;
    let refuse = |reason: String| Error::Refused {
        path: path.to_path_buf(),
        reason,
    };
    if !meta.is_file() {
        return Err(refuse("it is not a regular file".into()));
    }
    let dir = parent_dir(path);
    use rustix::fs::{accessat, Access, AtFlags, CWD};
    for (p, what) in [(path, "the file"), (dir.as_path(), "its folder")] {
        if let Err(e) = accessat(
            CWD,
            p,
            Access::WRITE_OK
                | if p == path {
                    Access::READ_OK
                } else {
                    Access::EXEC_OK
                },
            AtFlags::EACCESS,
        ) {
            let e = io::Error::from(e);
            if e.raw_os_error() == Some(rustix::io::Errno::ROFS.raw_os_error()) {
                return Err(refuse(read_only_explanation()));
            }
            let who = if p == path {
                owner_mode(&meta)
            } else {
                owner_mode(&dir_meta(&dir)?)
            };
            return Err(refuse(format!(
                "{what} may not be written by this user ({e}; {who}); nothing was written"
            )));
        }
    }
    // The new file is created by this process: it can only be given the original's owner and
    // group when running as root, or as that owner and a member of that group.
    let euid = rustix::process::geteuid().as_raw();
    if euid != 0 && meta.uid() != euid {
        return Err(refuse(format!(
            "it is owned by uid {} but guestwall runs as uid {euid}: the saved file could not keep its owner. Run it as root or as that user; nothing was written",
            meta.uid()
        )));
    }
    Ok(meta)
}

fn dir_meta(dir: &Path) -> Result<Metadata> {
    fs::metadata(dir).map_err(|source| explain(dir, source))
}

fn owner_mode(m: &Metadata) -> String {
    format!(
        "mode {:04o}, owner uid {} gid {}",
        m.mode() & 0o7777,
        m.uid(),
        m.gid()
    )
}

/// Gives the new file the original's owner, group, mode and extended attributes (ACLs and
/// ntfs-3g's `system.ntfs_*` attributes among them, where the file system has them).
pub(crate) fn keep_metadata(
    file: &File,
    new_path: &Path,
    orig_path: &Path,
    orig: &Metadata,
) -> Result<()> {
    use rustix::fs::{fchmod, fchown, Gid, Mode, Uid};
    let ids = (Uid::from_raw(orig.uid()), Gid::from_raw(orig.gid()));
    if let Err(e) = fchown(file, Some(ids.0), Some(ids.1)) {
        return Err(Error::Refused {
            path: orig_path.to_path_buf(),
            reason: format!(
                "the saved file could not be given the original's owner and group (uid {}, gid {}): {}; nothing was written",
                orig.uid(),
                orig.gid(),
                io::Error::from(e)
            ),
        });
    }
    fchmod(file, Mode::from_raw_mode(orig.mode() & 0o7777))
        .map_err(|e| explain(new_path, io::Error::from(e)))?;
    copy_xattrs(orig_path, file);
    Ok(())
}

/// Copies the extended attributes the original lists, and ntfs-3g's security descriptor and
/// attribute flags (which it does not list). Best effort: a file system without them, or an
/// attribute that cannot be set, is left as it is.
fn copy_xattrs(from: &Path, to: &File) {
    use rustix::fs::{fsetxattr, getxattr, listxattr, XattrFlags};
    let mut names: Vec<Vec<u8>> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    if let Ok(n) = listxattr(from, &mut buf) {
        names.extend(
            buf.get(..n)
                .unwrap_or_default()
                .split(|b| *b == 0)
                .filter(|s| !s.is_empty())
                .map(<[u8]>::to_vec),
        );
    }
    for extra in [&b"system.ntfs_acl"[..], b"system.ntfs_attrib"] {
        if !names.iter().any(|n| n == extra) {
            names.push(extra.to_vec());
        }
    }
    let mut value = vec![0u8; 64 * 1024];
    for name in names {
        let Ok(cname) = std::ffi::CString::new(name) else {
            continue;
        };
        if let Ok(n) = getxattr(from, cname.as_c_str(), &mut value) {
            if let Some(v) = value.get(..n) {
                let _ = fsetxattr(to, cname.as_c_str(), v, XattrFlags::empty());
            }
        }
    }
}

/// The folder a path is in (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// What a read-only file system means for a Windows volume, and what to do.
pub(crate) fn read_only_explanation() -> String {
    "the file system is read-only. If it is a Windows volume mounted with ntfs-3g, ntfs-3g mounts it read-only when Windows is hibernated or was not shut down cleanly (Fast Startup leaves it so): start the VM once and shut it down fully (`shutdown /s /t 0`), or use `guestwall script` on the serial console instead; guestwall does not force a read-write mount (`ntfsfix`/`remove_hiberfile` would throw away what Windows kept in memory). Nothing was written".into()
}

/// An I/O error on `path`, with what it means where that helps: a read-only file system, a
/// full disk or quota, a permission refused.
pub(crate) fn explain(path: &Path, source: io::Error) -> Error {
    use rustix::io::Errno;
    let code = source.raw_os_error();
    let why = match code {
        Some(c) if c == Errno::ROFS.raw_os_error() => Some(read_only_explanation()),
        Some(c) if c == Errno::NOSPC.raw_os_error() || c == Errno::DQUOT.raw_os_error() => {
            Some(format!(
                "no space left on the device that holds {} (or the quota is used up); what this attempt had written was removed, and the hive is unchanged",
                parent_dir(path).display()
            ))
        }
        Some(c) if c == Errno::ACCESS.raw_os_error() || c == Errno::PERM.raw_os_error() => {
            Some("permission denied".into())
        }
        _ => None,
    };
    match why {
        Some(explanation) => Error::IoExplained {
            path: path.to_path_buf(),
            explanation,
            source,
        },
        None => Error::Io {
            path: guestwall_source::Location::File(path.to_path_buf()),
            source,
        },
    }
}

/// True when another live process has this ID (it may own a temporary file we find).
pub(crate) fn other_process_alive(pid: u32) -> bool {
    pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists()
}

/// True when `a` and `b` are the same file (device and inode).
pub(crate) fn same_file(a: &Metadata, b: &Metadata) -> bool {
    a.dev() == b.dev() && a.ino() == b.ino()
}
