//! Putting backups back: [`undo_latest`] by the operation history, [`restore_backup`] and
//! [`restore_from`] by file, each as safely as a save.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::hive::Hive;

use super::file_store::{
    check_named_path, create_temp, file_name, keep_under, remove_stale_temps, sync_dir, utc_stamp,
    write_all, Litter,
};
use super::fsx::{self, explain, parent_dir};
use super::history::{self, read_history, OpRecord, Operation};
use super::{fault_point, file_digest, interrupted, Busy, SaveOptions};

/// What [`restore_backup`] and [`undo_latest`] did to one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// The hive file.
    pub path: PathBuf,
    /// The backup restored (renamed to `<hive>.guestwall-restored-<stamp>` afterwards, so that
    /// it is not taken again). `None`: no backup was found.
    pub backup: Option<PathBuf>,
    /// Where the backup is kept now.
    pub backup_kept_as: Option<PathBuf>,
    /// Where the file that was replaced is kept (`<hive>.guestwall-undone-<now>`).
    pub replaced_kept_as: Option<PathBuf>,
    /// Logs moved back from beside the backup: (from, to).
    pub logs_restored: Vec<(PathBuf, PathBuf)>,
    /// The file already held the backup's bytes, so nothing was written.
    pub unchanged: bool,
}

/// The backups of `path`, oldest first: `<name>.guestwall-backup-<stamp>[-n]`.
pub fn list_backups(path: &Path) -> Result<Vec<PathBuf>> {
    let path = fsx::resolve(path)
        .map(|r| r.real)
        .unwrap_or_else(|_| path.to_path_buf());
    let dir = parent_dir(&path);
    let name = file_name(&path)?;
    let prefix = format!("{name}.guestwall-backup-");
    let mut found: Vec<(String, u32, PathBuf)> = Vec::new();
    let entries = fs::read_dir(&dir).map_err(|source| explain(&dir, source))?;
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = n.strip_prefix(&prefix) else {
            continue;
        };
        // `<stamp>` is `YYYYMMDDTHHMMSSZ`; a second backup in the same second gets `-n`.
        let (stamp, k) = match rest.split_once('-') {
            Some((s, k)) => match k.parse::<u32>() {
                Ok(k) => (s, k),
                Err(_) => continue,
            },
            None => (rest, 1),
        };
        let well_formed = stamp.len() == 16
            && stamp.as_bytes()[8] == b'T'
            && stamp.ends_with('Z')
            && stamp[..8]
                .bytes()
                .chain(stamp[9..15].bytes())
                .all(|b| b.is_ascii_digit());
        if well_formed && e.file_type().is_ok_and(|t| t.is_file()) {
            found.push((stamp.to_string(), k, e.path()));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, _, p)| p).collect())
}

/// Puts the latest backup of `path` back, file by file, without looking at the operation
/// history (the undo of hives saved by guestwall versions without a history).
pub fn restore_backup(path: &Path, dry_run: bool) -> Result<RestoreReport> {
    let Some(backup) = list_backups(path)?.pop() else {
        return Ok(RestoreReport {
            path: path.to_path_buf(),
            ..RestoreReport::default()
        });
    };
    restore_from(
        path,
        &backup,
        &UndoOptions {
            dry_run,
            ..UndoOptions::default()
        },
    )
}

/// Options for [`undo_latest`] and [`restore_backup`].
#[derive(Debug, Clone, Default)]
pub struct UndoOptions {
    /// Say what would be restored, and write nothing.
    pub dry_run: bool,
    /// Restore even a hive that something else has written since guestwall saved it (that
    /// later change is then lost, though the file is kept as `.guestwall-undone-<time>`).
    pub force: bool,
    /// How long to wait for another writer (see [`SaveOptions::lock_wait`]).
    pub lock_wait: Option<Duration>,
    /// Called once when the lock is busy.
    pub on_lock_wait: Option<fn(&Path, Duration)>,
}

/// What [`undo_latest`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UndoReport {
    /// The operation undone (`None` with `legacy`, or when there was nothing to undo).
    pub op: Option<OpRecord>,
    /// What was done to each file.
    pub files: Vec<RestoreReport>,
    /// No history was found; the latest backup of each hive was restored instead.
    pub legacy: bool,
}

impl UndoReport {
    /// True when nothing was (or, in a dry run, would be) restored.
    pub fn nothing(&self) -> bool {
        self.op.is_none() && self.files.iter().all(|f| f.backup.is_none() || f.unchanged)
    }
}

/// The real paths (links followed, folders absolute) of `paths`.
fn reals(paths: &[&Path]) -> Result<Vec<PathBuf>> {
    paths
        .iter()
        .map(|p| fsx::resolve(p).map(|r| r.real))
        .collect()
}

/// The history's operations that changed any of `paths`, oldest first.
pub fn history_of(paths: &[&Path]) -> Result<Vec<OpRecord>> {
    let reals = reals(paths)?;
    let dirs: Vec<PathBuf> = reals.iter().map(|p| parent_dir(p)).collect();
    let mut ops = read_history(&dirs)?;
    ops.retain(|o| o.files.iter().any(|f| reals.contains(&f.path)));
    Ok(ops)
}

/// Undoes the latest operation (not yet undone) that changed any of `paths`, as a whole: each
/// hive it wrote is restored from the backup that operation made.
///
/// Every hive of `paths` is locked first, and the history is read under the locks, so that
/// undos and writers take turns. The operation must not have changed a hive outside `paths`
/// (say a SOFTWARE hive kept elsewhere): then it is refused with the hive to add. A hive that
/// something else has written since is refused (unless `force`), because restoring it would
/// lose that change. A hive that already holds its content from before (the save never
/// replaced it, or an undo was cut short) gets its logs back if they are still aside. When no
/// history names these hives, the latest backup of each is restored, as earlier guestwall
/// versions did.
pub fn undo_latest(paths: &[&Path], opts: &UndoOptions) -> Result<UndoReport> {
    let reals = reals(paths)?;
    let mut held = Operation::new("undo");
    if !opts.dry_run {
        let lock_opts = SaveOptions {
            lock_wait: opts.lock_wait,
            on_lock_wait: opts.on_lock_wait,
            ..SaveOptions::default()
        };
        let mut sorted = reals.clone();
        sorted.sort();
        for r in &sorted {
            held.lock(r, &lock_opts)?;
        }
    }
    let dirs: Vec<PathBuf> = reals.iter().map(|p| parent_dir(p)).collect();
    let mut ops = read_history(&dirs)?;
    ops.retain(|o| o.files.iter().any(|f| reals.contains(&f.path)));
    let Some(op) = ops.iter().rev().find(|o| o.undone.is_none()).cloned() else {
        if !ops.is_empty() {
            return Ok(UndoReport::default());
        }
        // No history: backups of an earlier guestwall, one file at a time.
        let mut report = UndoReport {
            legacy: true,
            ..UndoReport::default()
        };
        for p in paths {
            let Some(backup) = list_backups(p)?.pop() else {
                continue;
            };
            report
                .files
                .push(restore_locked(&mut held, p, &backup, opts)?);
        }
        return Ok(report);
    };
    let others = op
        .elsewhere
        .iter()
        .filter(|e| !op.files.iter().any(|f| &f.path == *e));
    for f in op.files.iter().map(|f| &f.path).chain(others) {
        if !reals.contains(f) {
            return Err(Error::Refused {
                path: f.clone(),
                reason: format!(
                    "operation {} ({}) changed it too, and it is not among the hives given; undo it with every hive it changed (for a SOFTWARE hive elsewhere: --software {}). Nothing was restored",
                    op.id,
                    op.command,
                    f.display()
                ),
            });
        }
    }
    let mut report = UndoReport {
        op: Some(op.clone()),
        ..UndoReport::default()
    };
    // Check every file before restoring any, so that a refusal leaves everything as it is.
    for f in op.files.iter().rev() {
        let now = match guestwall_mmap::read(&f.path) {
            Ok(b) => file_digest(&b),
            Err(source) => return Err(explain(&f.path, source)),
        };
        if now != f.after && now != f.before && !opts.force {
            return Err(Error::Refused {
                path: f.path.clone(),
                reason: format!(
                    "it has been changed since guestwall wrote it in operation {} ({}), by another program or by Windows itself; restoring {} would lose that change. Pass --force to restore it anyway (the current file is kept as .guestwall-undone-<time>)",
                    op.id,
                    op.command,
                    f.backup.display()
                ),
            });
        }
        let backup_ok = fs::symlink_metadata(&f.backup).is_ok_and(|m| m.file_type().is_file());
        if !backup_ok {
            return Err(Error::Refused {
                path: f.path.clone(),
                reason: format!(
                    "its backup {} from operation {} is gone (or is not a regular file); nothing was restored",
                    f.backup.display(),
                    op.id
                ),
            });
        }
    }
    for f in op.files.iter().rev() {
        report
            .files
            .push(restore_locked(&mut held, &f.path, &f.backup, opts)?);
    }
    if !opts.dry_run {
        history::mark_undone(&op.files, &op.id)?;
    }
    Ok(report)
}

/// Puts `backup` back over `path`, as safely as a save (taking the hive's lock):
///
/// 1. The backup must be a regular file that reads as a hive (base block and bins);
///    otherwise nothing is done.
/// 2. The current file is kept under `<hive>.guestwall-undone-<now>` (a hard link, or a
///    copy), so the undo can itself be undone.
/// 3. The backup's bytes are copied to a temporary file (with the hive's owner, group and
///    mode), fsynced, compared with the backup, and renamed over the target.
/// 4. Logs that the save moved aside (`<log>.guestwall-backup-<same stamp>`) are moved back,
///    so that a hive which was dirty is dirty again with its own logs, as before the save.
///    This happens too when the hive already holds the backup's bytes (an undo cut short
///    between its rename and the logs).
/// 5. The backup is renamed to `<hive>.guestwall-restored-<stamp>`: it is kept, and it is not
///    taken again.
///
/// With `dry_run`, only step 1 runs. When the target already holds the backup's bytes and no
/// log is aside, no file is written.
pub fn restore_from(path: &Path, backup: &Path, opts: &UndoOptions) -> Result<RestoreReport> {
    let mut held = Operation::new("restore");
    if !opts.dry_run {
        held.lock(
            path,
            &SaveOptions {
                lock_wait: opts.lock_wait,
                on_lock_wait: opts.on_lock_wait,
                ..SaveOptions::default()
            },
        )?;
    }
    restore_locked(&mut held, path, backup, opts)
}

/// [`restore_from`] for a caller that holds the hive's lock.
fn restore_locked(
    held: &mut Operation,
    path: &Path,
    backup: &Path,
    opts: &UndoOptions,
) -> Result<RestoreReport> {
    let _busy = Busy::start();
    let target = fsx::resolve(path)?;
    let real = target.real.as_path();
    let mut report = RestoreReport {
        path: path.to_path_buf(),
        backup: Some(backup.to_path_buf()),
        ..RestoreReport::default()
    };
    if !fs::symlink_metadata(backup).is_ok_and(|m| m.file_type().is_file()) {
        return Err(Error::Refused {
            path: backup.to_path_buf(),
            reason: "the backup is not a regular file, so it is not restored".into(),
        });
    }
    let bytes = guestwall_mmap::read(backup).map_err(|source| explain(backup, source))?;
    // The backup is the original byte for byte, which may be a dirty hive whose logs now
    // sit beside it under other names; so check its structure (base block, bins), not its
    // content.
    let check = Hive::from_file_bytes(guestwall_mmap::FileBytes::Owned(bytes.to_vec()));
    if let Err(e) = check {
        return Err(Error::Refused {
            path: backup.to_path_buf(),
            reason: format!(
                "the backup does not read as a hive, so it is not restored: {}",
                crate::error::error_chain(&e)
            ),
        });
    }
    let current = fs::read(real).ok();
    let dir = parent_dir(real);
    let name = file_name(real)?;
    let backup_name = file_name(backup)?;
    let stamp = backup_name
        .strip_prefix(&format!("{name}.guestwall-backup-"))
        .unwrap_or_default()
        .to_string();
    // Logs the save moved aside: `<log name>.guestwall-backup-<stamp>` → `<log name>`.
    let suffix = format!(".guestwall-backup-{stamp}");
    let lower = name.to_lowercase();
    let mut logs: Vec<(PathBuf, PathBuf)> = Vec::new();
    for e in fs::read_dir(&dir)
        .map_err(|source| explain(&dir, source))?
        .flatten()
    {
        let n = e.file_name().to_string_lossy().into_owned();
        let Some(base) = n.strip_suffix(&suffix) else {
            continue;
        };
        let is_log = base
            .to_lowercase()
            .strip_prefix(&lower)
            .is_some_and(|ext| matches!(ext, ".log" | ".log1" | ".log2"));
        if is_log && e.file_type().is_ok_and(|t| t.is_file()) {
            let live = find_case_insensitive(&dir, base).unwrap_or_else(|| dir.join(base));
            logs.push((e.path(), live));
        }
    }
    logs.sort();
    let same = current.as_deref() == Some(&bytes[..]);
    if same && logs.is_empty() {
        report.unchanged = true;
        return Ok(report);
    }
    if opts.dry_run {
        report.logs_restored = logs;
        return Ok(report);
    }
    let now = utc_stamp();
    if !same {
        let orig_meta = fsx::check_writable(real)?;
        remove_stale_temps(&dir, &name);
        let mut litter = Litter::default();
        if current.is_some() {
            let kept = keep_under(
                real,
                &dir,
                &format!("{name}.guestwall-undone-{now}"),
                &|_| false,
            )?;
            litter.add(&kept);
            report.replaced_kept_as = Some(kept);
        }
        let tmp = dir.join(format!(".{name}.guestwall-new-{}", std::process::id()));
        let file = create_temp(&tmp)?;
        litter.add(&tmp);
        fsx::keep_metadata(&file, &tmp, real, &orig_meta)?;
        let file = write_all(file, &tmp, &bytes)?;
        file.sync_all().map_err(|source| explain(&tmp, source))?;
        if fs::read(&tmp).map_err(|source| explain(&tmp, source))? != bytes[..] {
            return Err(Error::Verify {
                path: path.display().to_string(),
                detail: "the restored copy read back differs from the backup".into(),
            });
        }
        // The restored file is locked before it takes the hive's name, and stays locked for
        // the rest of the operation (another undo waiting must not slip in).
        let new_lock = file
            .try_clone()
            .and_then(fsx::HiveLock::on)
            .map_err(|source| explain(&tmp, source))?;
        interrupted(real)?;
        fs::rename(&tmp, real).map_err(|source| explain(real, source))?;
        litter.keep();
        held.relock(real, new_lock);
        sync_dir(&dir)?;
        check_named_path(&target.named, &file)?;
        fault_point("restore-after-rename");
    }
    for (moved, live) in logs {
        if live.exists() {
            let live_name = file_name(&live)?;
            keep_under(
                &live,
                &dir,
                &format!("{live_name}.guestwall-undone-{now}"),
                &|_| false,
            )?;
            fs::remove_file(&live).map_err(|source| explain(&live, source))?;
        }
        fs::rename(&moved, &live).map_err(|source| explain(&moved, source))?;
        report.logs_restored.push((moved, live));
    }
    // The backup is renamed out of the way (never over an existing file), so that it is not
    // taken again and its name is free for the next save.
    let kept = keep_under(
        backup,
        &dir,
        &format!("{name}.guestwall-restored-{stamp}"),
        &|_| false,
    )?;
    fs::remove_file(backup).map_err(|source| explain(backup, source))?;
    report.backup_kept_as = Some(kept);
    sync_dir(&dir)?;
    Ok(report)
}

/// The entry of `dir` named `name`, compared case-insensitively.
fn find_case_insensitive(dir: &Path, name: &str) -> Option<PathBuf> {
    fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        e.file_name()
            .to_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
            .then(|| e.path())
    })
}
