//! Saving edits to a hive file without ever losing data.
//!
//! [`edit_file`] is the only way guestwall changes a hive on disk. In order:
//!
//! 1. Open the hive, replaying its logs if it is dirty. A dirty hive whose logs cannot be
//!    applied is refused unless the caller allows it explicitly; so is any hive that cannot be
//!    read completely (every key, value, data cell and free cell).
//! 2. Take a logical snapshot (every key, value, type and data), apply the edits to an
//!    in-memory copy of the file and to the snapshot. If the edits change nothing, stop: no
//!    backup, no write.
//! 3. Back up the file exactly as it is on disk to `<hive>.guestwall-backup-<UTC time>`: written
//!    to a temporary name, fsynced, then linked to its final name, which never replaces an
//!    existing file.
//! 4. Write the new hive to a temporary file beside the target and fsync it.
//! 5. Re-open that file from disk and check it against the snapshot: exactly the intended
//!    changes, everything else identical. On any difference the temporary file is removed and
//!    the target is left alone.
//! 6. Rename the temporary file over the target and fsync the directory. A crash at any point
//!    leaves either the old file or the new one under the target's name, and the backup, when
//!    it exists under its final name, complete.
//! 7. If the hive was dirty (recovered from its logs), move the logs aside beside the backup,
//!    so that Windows cannot replay stale entries over the new file.
//!
//! **Logs of a clean hive.** Windows replays logs only when the primary file is dirty (wrong
//! checksum, or primary and secondary sequence numbers differ); the log entries of a clean
//! hive are ignored, and the next flush starts the logs over. Our saved file is clean (both
//! sequence numbers equal, checksum right). As a second safeguard its sequence number is set
//! above every sequence number found in the logs beside it, so that no log entry could ever
//! count as newer than the file. The logs of a clean hive are therefore left in place.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions as FsOpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::hive::{Hive, OpenOptions};
use crate::log::{find_logs, max_sequence};
use crate::name::upcase;
use crate::write::{Edit, HiveMut};

/// Options for [`edit_file`].
#[derive(Debug, Clone, Default)]
pub struct SaveOptions {
    /// Edit a dirty hive even when its logs could not be applied (its last changes are lost).
    pub allow_dirty: bool,
    /// Compute and verify the result, but write nothing (no backup either).
    pub dry_run: bool,
}

/// What [`edit_file`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaveReport {
    /// True when the edits changed nothing, so nothing was written.
    pub unchanged: bool,
    /// The backup of the original file.
    pub backup: Option<PathBuf>,
    /// Logs moved aside: (from, to).
    pub logs_moved: Vec<(PathBuf, PathBuf)>,
    /// Sequence number written (both copies).
    pub sequence: u32,
    /// Size of the new file.
    pub bytes: u64,
    /// Keys and values compared when verifying the written file.
    pub verified_keys: u64,
    /// Values compared when verifying.
    pub verified_values: u64,
    /// Whether the hive was recovered from its logs before editing.
    pub recovered_from_logs: bool,
}

/// Applies `edits` to the hive at `path` and saves it safely (see the module documentation).
pub fn edit_file(path: &Path, edits: &[Edit], opts: &SaveOptions) -> Result<SaveReport> {
    let hive = Hive::open_with(path, &OpenOptions { replay_logs: true })?;
    let recovered = hive.recovery().applied();
    if hive.primary_base_block().is_dirty() && !recovered && !opts.allow_dirty {
        return Err(Error::Refused {
            path: path.to_path_buf(),
            reason: format!(
                "the hive is dirty and its logs could not be applied ({}); writing would lose its last changes. Pass the allow-dirty option to edit it anyway",
                hive.warnings().join("; ")
            ),
        });
    }
    let refuse = |e: Error| Error::Refused {
        path: path.to_path_buf(),
        reason: format!(
            "it cannot be read completely, so it is not safe to write: {}",
            crate::error::error_chain(&e)
        ),
    };
    hive.check_all().map_err(refuse)?;
    hive.cell_stats().map_err(refuse)?;

    let before = Snapshot::of(&hive)?;
    let mut expected = before.clone();
    let mut m = HiveMut::new(&hive)?;
    for e in edits {
        m.apply(e)?;
        expected.apply(e)?;
    }
    if expected == before {
        return Ok(SaveReport {
            unchanged: true,
            sequence: hive.base_block().secondary_seq,
            ..SaveReport::default()
        });
    }

    // Above the primary's numbers and above every number in the logs beside it.
    let logs = find_logs(path);
    let mut seq = hive
        .primary_base_block()
        .primary_seq
        .max(hive.primary_base_block().secondary_seq);
    seq = seq.max(hive.base_block().primary_seq);
    for log in &logs {
        if let Ok(bytes) = fs::read(log) {
            seq = seq.max(max_sequence(&bytes).unwrap_or(0));
        }
    }
    let seq = seq.checked_add(1).ok_or_else(|| Error::Refused {
        path: path.to_path_buf(),
        reason: "its sequence number cannot be raised any further".into(),
    })?;
    let image = m.finish(seq)?;
    drop(hive);

    // Verify in memory first, so that a bad result never reaches the disk.
    let (keys, values) = expected.verify(&Hive::from_bytes(image.clone())?)?;
    let mut report = SaveReport {
        sequence: seq,
        bytes: image.len() as u64,
        verified_keys: keys,
        verified_values: values,
        recovered_from_logs: recovered,
        ..SaveReport::default()
    };
    if opts.dry_run {
        return Ok(report);
    }

    let dir = parent_dir(path);
    let name = file_name(path)?;
    remove_stale_temps(&dir, &name);
    let stamp = utc_stamp();
    let original = fs::read(path).map_err(|source| io_err(path, source))?;
    report.backup = Some(write_backup(&dir, &name, &stamp, &original)?);
    fault_point("after-backup");

    let tmp = dir.join(format!(".{name}.guestwall-new-{}", std::process::id()));
    write_synced(&tmp, &image)?;
    fault_point("after-temp-write");

    // Re-open what is on disk and check it again against the snapshot.
    let check = Hive::open_with(&tmp, &OpenOptions { replay_logs: false }).and_then(|h| {
        if h.bytes() != image.as_slice() {
            return Err(Error::Verify {
                path: String::new(),
                detail: "the file read back differs from what was written".into(),
            });
        }
        expected.verify(&h)
    });
    if let Err(e) = check {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fault_point("before-rename");

    fs::rename(&tmp, path).map_err(|source| io_err(path, source))?;
    sync_dir(&dir)?;
    fault_point("after-rename");

    if recovered {
        for log in logs {
            let Some(log_name) = log.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                continue;
            };
            let to = dir.join(format!("{log_name}.guestwall-backup-{stamp}"));
            fs::rename(&log, &to).map_err(|source| io_err(&log, source))?;
            report.logs_moved.push((log, to));
        }
        sync_dir(&dir)?;
    }
    Ok(report)
}

/// Test-only fault injection: when `GUESTWALL_FAULT_AT` names this point, the process aborts
/// here, as a crash would. Compiled into debug builds only.
fn fault_point(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("GUESTWALL_FAULT_AT").is_ok_and(|p| p == point) {
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn file_name(path: &Path) -> Result<String> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::Refused {
            path: path.to_path_buf(),
            reason: "not a file name".into(),
        })
}

/// `YYYYMMDDTHHMMSSZ` in UTC.
fn utc_stamp() -> String {
    crate::base_block::filetime_compact(crate::write::now_filetime())
}

/// Writes the backup under a temporary name, fsyncs it, then gives it its final name without
/// ever replacing an existing file (a hard link fails if the name exists).
fn write_backup(dir: &Path, name: &str, stamp: &str, bytes: &[u8]) -> Result<PathBuf> {
    let tmp = dir.join(format!(
        ".{name}.guestwall-backup-tmp-{}",
        std::process::id()
    ));
    write_synced(&tmp, bytes)?;
    let mut n = 1;
    loop {
        let candidate = if n == 1 {
            dir.join(format!("{name}.guestwall-backup-{stamp}"))
        } else {
            dir.join(format!("{name}.guestwall-backup-{stamp}-{n}"))
        };
        match fs::hard_link(&tmp, &candidate) {
            Ok(()) => {
                fs::remove_file(&tmp).map_err(|source| io_err(&tmp, source))?;
                sync_dir(dir)?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(io_err(&candidate, e));
            }
            Err(_) if !candidate.exists() => {
                // No hard links on this file system: rename, having checked the name is free.
                fs::rename(&tmp, &candidate).map_err(|source| io_err(&candidate, source))?;
                sync_dir(dir)?;
                return Ok(candidate);
            }
            Err(_) => n += 1,
        }
    }
}

/// Creates `path` (which must not exist), writes `bytes` and fsyncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = FsOpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| io_err(path, source))?;
    f.write_all(bytes).map_err(|source| io_err(path, source))?;
    f.sync_all().map_err(|source| io_err(path, source))
}

fn sync_dir(dir: &Path) -> Result<()> {
    // Directories can be opened read-only and fsynced on Unix; elsewhere this is best effort.
    match File::open(dir) {
        Ok(d) => match d.sync_all() {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Ok(()),
            Err(e) if e.raw_os_error() == Some(22) => Ok(()),
            Err(source) => Err(io_err(dir, source)),
        },
        Err(_) => Ok(()),
    }
}

/// Removes temporary files an interrupted save of this hive left behind.
fn remove_stale_temps(dir: &Path, name: &str) {
    let prefixes = [
        format!(".{name}.guestwall-new-"),
        format!(".{name}.guestwall-backup-tmp-"),
    ];
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if prefixes.iter().any(|p| n.starts_with(p.as_str())) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// The logical content of a hive: every key, and every value's name, type and data, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    keys: BTreeMap<Vec<u16>, SnapKey>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SnapKey {
    path: String,
    values: Vec<SnapValue>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SnapValue {
    name: String,
    data_type: u32,
    data: Vec<u8>,
}

fn upper(s: &str) -> Vec<u16> {
    s.encode_utf16().map(upcase).collect()
}

/// Upper-cased path with `\` separators and no empty parts.
fn upper_path(path: &str) -> Vec<u16> {
    upper(&crate::hive::split_path(path).collect::<Vec<_>>().join("\\"))
}

impl Snapshot {
    /// Reads every key and value of `hive`.
    pub fn of(hive: &Hive) -> Result<Snapshot> {
        let mut keys = BTreeMap::new();
        hive.walk(hive.root()?, "", |path, key| {
            let mut values = Vec::with_capacity(key.value_count() as usize);
            for v in key.values()? {
                values.push(SnapValue {
                    name: v.name().to_string_lossy(),
                    data_type: v.data_type(),
                    data: v.data()?.into_owned(),
                });
            }
            keys.insert(
                upper(path),
                SnapKey {
                    path: path.to_string(),
                    values,
                },
            );
            Ok(())
        })?;
        Ok(Snapshot { keys })
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when there are no keys (never for a real hive: the root is always there).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// True when the key exists.
    pub fn has_key(&self, path: &str) -> bool {
        self.keys.contains_key(&upper_path(path))
    }

    /// True when the key exists and has this value.
    pub fn has_value(&self, path: &str, name: &str) -> bool {
        let n = upper(name);
        self.keys
            .get(&upper_path(path))
            .is_some_and(|k| k.values.iter().any(|v| upper(&v.name) == n))
    }

    /// Applies an edit the way [`HiveMut::apply`] does, at the logical level.
    pub fn apply(&mut self, edit: &Edit) -> Result<()> {
        match edit {
            Edit::CreateKey { key } => {
                let mut path = String::new();
                for part in crate::hive::split_path(key) {
                    let child = if path.is_empty() {
                        part.to_string()
                    } else {
                        format!("{path}\\{part}")
                    };
                    let entry = self.keys.entry(upper(&child)).or_insert_with(|| SnapKey {
                        path: child.clone(),
                        values: Vec::new(),
                    });
                    path = entry.path.clone();
                }
            }
            Edit::DeleteKey { key } => {
                let k = upper_path(key);
                if !self.keys.contains_key(&k) {
                    return Err(Error::KeyNotFound { path: key.clone() });
                }
                let mut prefix = k.clone();
                prefix.push(u16::from(b'\\'));
                self.keys.retain(|p, _| *p != k && !p.starts_with(&prefix));
            }
            Edit::SetValue {
                key,
                name,
                data_type,
                data,
            } => {
                let k = self
                    .keys
                    .get_mut(&upper_path(key))
                    .ok_or_else(|| Error::KeyNotFound { path: key.clone() })?;
                let n = upper(name);
                match k.values.iter_mut().find(|v| upper(&v.name) == n) {
                    Some(v) => {
                        v.data_type = *data_type;
                        v.data = data.clone();
                    }
                    None => k.values.push(SnapValue {
                        name: name.clone(),
                        data_type: *data_type,
                        data: data.clone(),
                    }),
                }
            }
            Edit::DeleteValue { key, name } => {
                let k = self
                    .keys
                    .get_mut(&upper_path(key))
                    .ok_or_else(|| Error::KeyNotFound { path: key.clone() })?;
                let n = upper(name);
                let before = k.values.len();
                k.values.retain(|v| upper(&v.name) != n);
                if k.values.len() == before {
                    return Err(Error::ValueNotFound {
                        key: key.clone(),
                        name: name.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Checks that `hive` holds exactly this content. Returns the keys and values compared.
    pub fn verify(&self, hive: &Hive) -> Result<(u64, u64)> {
        let mut keys = 0u64;
        let mut values = 0u64;
        let mismatch = |path: &str, detail: String| Error::Verify {
            path: path.to_string(),
            detail,
        };
        hive.walk(hive.root()?, "", |path, key| {
            keys += 1;
            let Some(exp) = self.keys.get(&upper(path)) else {
                return Err(mismatch(path, "a key that should not be there".into()));
            };
            if exp.path != path {
                return Err(mismatch(
                    path,
                    format!("key is named {path:?}, expected {:?}", exp.path),
                ));
            }
            let got = key.values()?;
            if got.len() != exp.values.len() {
                return Err(mismatch(
                    path,
                    format!("{} values, expected {}", got.len(), exp.values.len()),
                ));
            }
            for (v, e) in got.iter().zip(&exp.values) {
                values += 1;
                let name = v.name().to_string_lossy();
                if name != e.name || v.data_type() != e.data_type || *v.data()? != *e.data {
                    return Err(mismatch(
                        path,
                        format!(
                            "value {name:?} (type {}) differs from the expected {:?} (type {})",
                            v.data_type(),
                            e.name,
                            e.data_type
                        ),
                    ));
                }
            }
            Ok(())
        })?;
        if keys != self.keys.len() as u64 {
            return Err(mismatch(
                "",
                format!("{keys} keys found, expected {}", self.keys.len()),
            ));
        }
        Ok((keys, values))
    }
}
