//! The operation history: which files each guestwall command changed, with which backups, so
//! that `undo` reverts the latest operation as a whole (a `fix` that wrote SYSTEM and
//! SOFTWARE is undone in both, a later `netsh` change to SYSTEM alone is undone first).
//!
//! Each folder that holds a changed hive has a `.guestwall-history` file: UTF-8 text, one
//! event per line, fields separated by tabs (`%`, tab, CR and LF in a field are written as
//! `%25`, `%09`, `%0D`, `%0A`):
//!
//! ```text
//! op      <id>  <UTC time>  <command line>
//! file    <id>  <hive path>  <backup path>  <digest before>  <digest after>
//! undone  <id>  <UTC time>
//! ```
//!
//! A `file` line is appended and fsynced after the new hive is written and verified, and
//! *before* it is renamed into place; `undo` then tells from the file's current digest
//! whether the rename happened (digest after), did not (digest before), or whether something
//! else has written the file since (neither: refused unless forced). Lines are appended with
//! one `write` each (under the hive's lock), and a line that does not parse is skipped, so a
//! crash can cost at most the line being written.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

use super::fsx::parent_dir;

/// Name of the history file in each folder with changed hives.
pub const HISTORY_FILE: &str = ".guestwall-history";

/// One file an operation changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpFile {
    /// The hive (its real path, links followed).
    pub path: PathBuf,
    /// The backup of the hive as it was before.
    pub backup: PathBuf,
    /// Digest of the file before the operation.
    pub before: u128,
    /// Digest of the file the operation wrote.
    pub after: u128,
}

/// One operation, as read from the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpRecord {
    /// Unique ID (`<UTC time>-<pid>-<n>`).
    pub id: String,
    /// When it started (UTC, `YYYYMMDDTHHMMSSZ`).
    pub time: String,
    /// The command line that made it.
    pub command: String,
    /// The files it changed, in order.
    pub files: Vec<OpFile>,
    /// When it was undone, if it was.
    pub undone: Option<String>,
}

/// An operation in progress: the files it has changed so far are recorded as they are saved.
#[derive(Debug)]
pub struct Operation {
    id: String,
    time: String,
    command: String,
    started_in: Vec<PathBuf>,
}

impl Operation {
    /// A new operation for `command` (the command line, as shown by `undo --list`).
    pub fn new(command: impl Into<String>) -> Operation {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let time = super::utc_stamp();
        let n = N.fetch_add(1, Ordering::Relaxed);
        Operation {
            id: format!("{time}-{}-{n}", std::process::id()),
            time,
            command: command.into(),
            started_in: Vec::new(),
        }
    }

    /// The operation's ID.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Records a file about to be renamed into place (see the module documentation).
    pub(crate) fn record_file(&mut self, f: &OpFile) -> Result<()> {
        let dir = parent_dir(&f.path);
        let mut lines = String::new();
        if !self.started_in.contains(&dir) {
            lines.push_str(&line(&["op", &self.id, &self.time, &self.command]));
        }
        lines.push_str(&line(&[
            "file",
            &self.id,
            &f.path.to_string_lossy(),
            &f.backup.to_string_lossy(),
            &format!("{:032x}", f.before),
            &format!("{:032x}", f.after),
        ]));
        append(&dir, &lines)?;
        if !self.started_in.contains(&dir) {
            self.started_in.push(dir);
        }
        Ok(())
    }
}

/// Appends `undone <id>` to the history of every folder of `files`.
pub(crate) fn mark_undone(files: &[OpFile], id: &str) -> Result<()> {
    let mut dirs: Vec<PathBuf> = files.iter().map(|f| parent_dir(&f.path)).collect();
    dirs.dedup();
    let now = super::utc_stamp();
    for d in dirs {
        append(&d, &line(&["undone", id, &now]))?;
    }
    Ok(())
}

fn append(dir: &Path, text: &str) -> Result<()> {
    let path = dir.join(HISTORY_FILE);
    let io = |source| super::fsx::explain(&path, source);
    let mut f: File = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(())
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

/// The operations recorded in the history files of `dirs`, oldest first (by the order of
/// their first line). Lines that do not parse are skipped; a missing file is an empty history.
pub fn read_history(dirs: &[PathBuf]) -> Result<Vec<OpRecord>> {
    let mut ops: Vec<OpRecord> = Vec::new();
    let mut seen_dirs: Vec<&PathBuf> = Vec::new();
    for dir in dirs {
        if seen_dirs.contains(&dir) {
            continue;
        }
        seen_dirs.push(dir);
        let path = dir.join(HISTORY_FILE);
        let text = match std::fs::read(&path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(Error::Io { path, source }),
        };
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
                            });
                        }
                    }
                }
                Some("file") if f.len() == 6 => {
                    let digest = |s: &str| u128::from_str_radix(s, 16).ok();
                    let (Some(id), Some(p), Some(b)) = (get(1), get(2), get(3)) else {
                        continue;
                    };
                    let (Some(before), Some(after)) = (digest(&f[4]), digest(&f[5])) else {
                        continue;
                    };
                    if let Some(op) = ops.iter_mut().find(|o| o.id == id) {
                        let file = OpFile {
                            path: PathBuf::from(p),
                            backup: PathBuf::from(b),
                            before,
                            after,
                        };
                        if !op.files.contains(&file) {
                            op.files.push(file);
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
}
