//! The operation history: which hives each guestwall command changed, with which backups, so
//! that `undo` reverts the latest operation as a whole (a `fix` that wrote SYSTEM and
//! SOFTWARE is undone in both, a later `netsh` change to SYSTEM alone is undone first).
//!
//! Each folder that holds a changed hive has a `.guestwall-history` file: UTF-8 text, one
//! event per line, fields separated by tabs (`%`, tab, CR and LF in a field are written as
//! `%25`, `%09`, `%0D`, `%0A`):
//!
//! ```text
//! op      <id>  <UTC time>  <command line>
//! file    <id>  <hive file name>  <backup file name>  <digest before>  <digest after>
//! elsewhere <id> <absolute path of a hive this operation changed in another folder>
//! undone  <id>  <UTC time>
//! ```
//!
//! **The history is untrusted input.** It lies on the disk of the machine being repaired, so
//! it may have been written by anyone. A `file` line names a hive and its backup by *file name
//! only*, in the history's own folder; a name with a path separator, `.` or `..` is ignored.
//! The history is never read or written through a symbolic link, and is read up to 16 MiB.
//! `undo` restores only hives the user named, and each from a backup that reads as a hive.
//! Moving the folder elsewhere (another mount point) keeps the history valid.
//!
//! A `file` line is appended and fsynced after the new hive is written and verified, and
//! *before* it is renamed into place; `undo` then tells from the file's current digest
//! whether the rename happened (digest after), did not (digest before), or whether something
//! else has written the file since (neither: refused unless forced). Each append is one
//! `write`, made under the hive's lock, after a newline if an earlier append was cut short; a
//! failed append is truncated away. Lines that do not parse are skipped.
//!
//! Operation IDs start with the time in nanoseconds, so that sorting them sorts the
//! operations, also across the folders of SYSTEM and SOFTWARE.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

use super::fsx::{self, parent_dir, HiveLock};

/// Name of the history file in each folder with changed hives.
pub const HISTORY_FILE: &str = ".guestwall-history";

/// The most of a history file that is read.
const MAX_HISTORY: u64 = 16 << 20;

/// One file an operation changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpFile {
    /// The hive (the history's folder joined with the recorded file name).
    pub path: PathBuf,
    /// The backup of the hive as it was before (same folder).
    pub backup: PathBuf,
    /// Digest of the file before the operation.
    pub before: u128,
    /// Digest of the file the operation wrote.
    pub after: u128,
}

/// One operation, as read from the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpRecord {
    /// Unique ID (`<nanoseconds>-<pid>-<n>`; sorts by time).
    pub id: String,
    /// When it started (UTC, `YYYYMMDDTHHMMSSZ`).
    pub time: String,
    /// The command line that made it.
    pub command: String,
    /// The files it changed, in order.
    pub files: Vec<OpFile>,
    /// When it was undone, if it was.
    pub undone: Option<String>,
    /// Hives it changed in other folders (a SOFTWARE hive kept elsewhere): `undo` needs them
    /// named too. Only used to refuse and say so, never to restore.
    pub elsewhere: Vec<PathBuf>,
}

/// An operation in progress: the hive locks it holds, and the files it has changed so far,
/// recorded as they are saved.
#[derive(Debug)]
pub struct Operation {
    id: String,
    time: String,
    command: String,
    started_in: Vec<PathBuf>,
    locks: Vec<(PathBuf, HiveLock)>,
    /// Hives recorded so far.
    recorded: Vec<PathBuf>,
    /// What the last record appended: (history file, its length before, whether it existed).
    last: Vec<(PathBuf, u64, bool)>,
}

impl Operation {
    /// A new operation for `command` (the command line, as shown by `undo --list`).
    pub fn new(command: impl Into<String>) -> Operation {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = N.fetch_add(1, Ordering::Relaxed);
        Operation {
            id: format!("{nanos:020}-{}-{n}", std::process::id()),
            time: super::utc_stamp(),
            command: command.into(),
            started_in: Vec::new(),
            locks: Vec::new(),
            recorded: Vec::new(),
            last: Vec::new(),
        }
    }

    /// The operation's ID.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Takes the lock of the hive at `path` (links followed) for the rest of the operation,
    /// waiting for another writer as [`super::SaveOptions`] says. A command that reads a hive,
    /// plans from what it read and then writes takes the lock before reading, so that no
    /// other writer's change falls in between.
    pub fn lock(&mut self, path: &Path, opts: &super::SaveOptions) -> Result<()> {
        let real = fsx::resolve(path)?.real;
        if self.holds(&real) {
            return Ok(());
        }
        let l = fsx::lock(&real, fsx::lock_wait(opts.lock_wait), opts.on_lock_wait)?;
        self.locks.push((real, l));
        Ok(())
    }

    /// True when the operation holds the lock of this (real) path.
    pub(crate) fn holds(&self, real: &Path) -> bool {
        self.locks.iter().any(|(p, _)| p == real)
    }

    /// After a rename, the lock of the new file (taken on it before the rename) replaces the
    /// lock of the old one.
    pub(crate) fn relock(&mut self, real: &Path, lock: HiveLock) {
        self.locks.retain(|(p, _)| p != real);
        self.locks.push((real.to_path_buf(), lock));
    }

    /// Records a file about to be renamed into place (see the module documentation); hives
    /// of the same operation in other folders are cross-referenced (`elsewhere` lines).
    pub(crate) fn record_file(&mut self, f: &OpFile) -> Result<()> {
        let dir = parent_dir(&f.path);
        let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
        let (Some(hive), Some(backup)) = (name(&f.path), name(&f.backup)) else {
            return Err(Error::Refused {
                path: f.path.clone(),
                reason: "internal: a hive or backup without a file name".into(),
            });
        };
        self.last.clear();
        let first_here = !self.started_in.contains(&dir);
        let mut lines = String::new();
        if first_here {
            lines.push_str(&line(&["op", &self.id, &self.time, &self.command]));
            for other in self.recorded.iter().filter(|p| parent_dir(p) != dir) {
                lines.push_str(&line(&["elsewhere", &self.id, &other.to_string_lossy()]));
            }
        }
        lines.push_str(&line(&[
            "file",
            &self.id,
            &hive,
            &backup,
            &format!("{:032x}", f.before),
            &format!("{:032x}", f.after),
        ]));
        let appended = append(&dir, &lines)?;
        self.last.push(appended);
        if first_here {
            self.started_in.push(dir.clone());
        }
        for other in self.started_in.clone().iter().filter(|d| **d != dir) {
            let l = line(&["elsewhere", &self.id, &f.path.to_string_lossy()]);
            match append(other, &l) {
                Ok(a) => self.last.push(a),
                Err(e) => {
                    self.forget_last();
                    return Err(e);
                }
            }
        }
        self.recorded.push(f.path.clone());
        Ok(())
    }

    /// Takes back what the last [`Operation::record_file`] appended (its save did not reach
    /// the rename).
    pub(crate) fn forget_last(&mut self) {
        for (path, len, existed) in self.last.drain(..) {
            if existed {
                if let Ok(f) = OpenOptions::new()
                    .write(true)
                    .custom_flags(nofollow())
                    .open(&path)
                {
                    let _ = f.set_len(len);
                    let _ = f.sync_all();
                }
            } else {
                let _ = fs::remove_file(&path);
            }
        }
    }
}

/// Appends `undone <id>` to the history of every folder of `files`.
pub(crate) fn mark_undone(files: &[OpFile], id: &str) -> Result<()> {
    let mut dirs: Vec<PathBuf> = files.iter().map(|f| parent_dir(&f.path)).collect();
    dirs.sort();
    dirs.dedup();
    let now = super::utc_stamp();
    for d in dirs {
        append(&d, &line(&["undone", id, &now]))?;
    }
    Ok(())
}

/// Refuses a history that is not a plain file (a link, say): it is never followed.
fn check_plain(path: &Path) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => Ok(true),
        Ok(_) => Err(Error::Refused {
            path: path.to_path_buf(),
            reason: "the operation history is not a regular file (a symbolic link, say); guestwall neither reads nor writes through it. Remove it, or move it aside".into(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(fsx::explain(path, source)),
    }
}

fn nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

/// Appends `text` to the history of `dir`; returns (the file, its length before, whether it
/// existed), for [`Operation::forget_last`].
fn append(dir: &Path, text: &str) -> Result<(PathBuf, u64, bool)> {
    let path = dir.join(HISTORY_FILE);
    let existed = check_plain(&path)?;
    let io = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::PermissionDenied {
            let owner = fs::metadata(&path)
                .map(|m| {
                    use std::os::unix::fs::MetadataExt;
                    format!(" (it belongs to uid {})", m.uid())
                })
                .unwrap_or_default();
            Error::Refused {
                path: path.clone(),
                reason: format!(
                    "the operation history cannot be written{owner}: permission denied. Run guestwall as the user that ran it before, or as root; nothing was changed"
                ),
            }
        } else {
            fsx::explain(&path, source)
        }
    };
    let mut f: File = OpenOptions::new()
        .read(true)
        .create(true)
        .append(true)
        .custom_flags(nofollow())
        .open(&path)
        .map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let mut buf = String::new();
    if len > 0 {
        // An earlier append cut short (a full disk, a crash) leaves a line without its end:
        // start on a line of our own, so that only that broken line is lost.
        let mut last = [0u8; 1];
        if f.read_exact_at(&mut last, len - 1).is_ok() && last[0] != b'\n' {
            buf.push('\n');
        }
    }
    buf.push_str(text);
    let written = f.write_all(buf.as_bytes()).and_then(|()| f.sync_all());
    if let Err(e) = written {
        // Take back what this append wrote, or the file it created.
        if existed {
            let _ = f.set_len(len);
            let _ = f.sync_all();
        } else {
            let _ = fs::remove_file(&path);
        }
        return Err(io(e));
    }
    Ok((path, len, existed))
}

fn line(fields: &[&str]) -> String {
    let mut s = fields
        .iter()
        .map(|f| escape(f))
        .collect::<Vec<_>>()
        .join("\t");
    s.push('\n');
    s
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\t' => out.push_str("%09"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3);
        let c = match code {
            Some("25") => Some('%'),
            Some("09") => Some('\t'),
            Some("0A") => Some('\n'),
            Some("0D") => Some('\r'),
            _ => None,
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[i + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A plain file name (no folder part, not `.` or `..`, no NUL), as history lines must hold.
fn plain_name(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\', '\0'])
}

/// The operations recorded in the history files of `dirs`, sorted by ID (oldest first).
/// Lines that do not parse, and files named with a folder part, are skipped; a missing file is
/// an empty history.
pub fn read_history(dirs: &[PathBuf]) -> Result<Vec<OpRecord>> {
    let mut ops: Vec<OpRecord> = Vec::new();
    let mut seen_dirs: Vec<&PathBuf> = Vec::new();
    for dir in dirs {
        if seen_dirs.contains(&dir) {
            continue;
        }
        seen_dirs.push(dir);
        let path = dir.join(HISTORY_FILE);
        if !check_plain(&path)? {
            continue;
        }
        let mut bytes = Vec::new();
        OpenOptions::new()
            .read(true)
            .custom_flags(nofollow())
            .open(&path)
            .and_then(|f| f.take(MAX_HISTORY).read_to_end(&mut bytes))
            .map_err(|source| fsx::explain(&path, source))?;
        let text = String::from_utf8_lossy(&bytes);
        for l in text.lines() {
            let f: Vec<String> = l.split('\t').map(unescape).collect();
            let get = |i: usize| f.get(i).cloned();
            match f.first().map(String::as_str) {
                Some("op") if f.len() == 4 => {
                    if let (Some(id), Some(time), Some(command)) = (get(1), get(2), get(3)) {
                        if !ops.iter().any(|o| o.id == id) {
                            ops.push(OpRecord {
                                id,
                                time,
                                command,
                                files: Vec::new(),
                                undone: None,
                                elsewhere: Vec::new(),
                            });
                        }
                    }
                }
                Some("file") if f.len() == 6 => {
                    let digest = |s: &str| u128::from_str_radix(s, 16).ok();
                    let (Some(id), Some(hive), Some(backup)) = (get(1), get(2), get(3)) else {
                        continue;
                    };
                    if !plain_name(&hive) || !plain_name(&backup) {
                        continue;
                    }
                    let (Some(before), Some(after)) = (digest(&f[4]), digest(&f[5])) else {
                        continue;
                    };
                    if let Some(op) = ops.iter_mut().find(|o| o.id == id) {
                        let file = OpFile {
                            path: dir.join(&hive),
                            backup: dir.join(&backup),
                            before,
                            after,
                        };
                        if !op.files.contains(&file) {
                            op.files.push(file);
                        }
                    }
                }
                Some("elsewhere") if f.len() == 3 => {
                    let p = PathBuf::from(&f[2]);
                    if let Some(op) = ops.iter_mut().find(|o| Some(&o.id) == f.get(1)) {
                        if p.is_absolute() && !op.elsewhere.contains(&p) {
                            op.elsewhere.push(p);
                        }
                    }
                }
                Some("undone") if f.len() == 3 => {
                    if let Some(op) = ops.iter_mut().find(|o| Some(&o.id) == f.get(1)) {
                        op.undone = get(2);
                    }
                }
                _ => {}
            }
        }
    }
    ops.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_through_the_escapes() {
        for s in [
            "plain",
            "a\tb",
            "100%",
            "x\ny\r\n",
            "%09 literal",
            "%",
            "%2",
        ] {
            assert_eq!(unescape(&escape(s)), s, "{s:?}");
        }
        assert_eq!(line(&["a\tb", "c"]), "a%09b\tc\n");
    }

    #[test]
    fn only_plain_names_are_taken() {
        for bad in ["", ".", "..", "/etc/passwd", "../x", "a\\b", "a/b"] {
            assert!(!plain_name(bad), "{bad:?}");
        }
        assert!(plain_name("SYSTEM.guestwall-backup-20260101T000000Z"));
    }
}
