//! The file store: today's way of committing a prepared hive to a file on this machine. The
//! hive's lock is held from the read to the rename; the original is kept as a hard-linked (or
//! copied) backup; the new hive is written to a temporary file beside it, fsynced, re-read and
//! verified, given the original's owner, group and mode, and renamed over it; the directory is
//! fsynced; the logs of a recovered hive are moved aside; the operation history records it.

use std::fs::{self, File, OpenOptions as FsOpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::hive::{Hive, OpenOptions};
use crate::log::{find_logs, max_sequence};

use super::fsx::{self, explain, parent_dir};
use super::history::{OpFile, Operation};
use super::prepare::Prepared;
use super::{
    fault_point, file_digests, injected_failure, interrupted, join, SaveOptions, SaveReport, Store,
};

/// Files an interrupted or failed attempt created; removed unless the attempt succeeds.
#[derive(Default)]
pub(super) struct Litter(Vec<PathBuf>);

impl Litter {
    pub(super) fn add(&mut self, p: &Path) {
        self.0.push(p.to_path_buf());
    }
    pub(super) fn keep(mut self) {
        self.0.clear();
    }
}

impl Drop for Litter {
    fn drop(&mut self) {
        for p in self.0.drain(..).rev() {
            let _ = fs::remove_file(&p);
        }
    }
}

/// Checks that `named` (the path the user gave) now leads to `written`.
pub(super) fn check_named_path(named: &Path, written: &File) -> Result<()> {
    let w = written
        .metadata()
        .map_err(|source| explain(named, source))?;
    let n = fs::metadata(named).map_err(|source| explain(named, source))?;
    if !fsx::same_file(&w, &n) {
        return Err(Error::Verify {
            path: String::new(),
            detail: format!(
                "{} does not lead to the file just written (device {}, inode {} instead of device {}, inode {}); the hive may not have been changed where you expect",
                named.display(),
                n.dev(),
                n.ino(),
                w.dev(),
                w.ino()
            ),
        });
    }
    Ok(())
}

pub(super) fn file_name(path: &Path) -> Result<String> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::Refused {
            path: path.to_path_buf(),
            reason: "not a file name".into(),
        })
}

/// `YYYYMMDDTHHMMSSZ` in UTC.
pub(crate) fn utc_stamp() -> String {
    crate::base_block::filetime_compact(crate::write::now_filetime())
}

/// Keeps the original file under `<name>.guestwall-backup-<stamp>` (never replacing an
/// existing name). Since the original is never changed in place (the new hive is a new file
/// renamed over it), a hard link to it is a byte-exact, zero-copy backup. Where the file
/// system has no hard links, the file is copied to a temporary name, fsynced, and renamed.
/// A suffix is only taken when the logs moved aside with it (`<log>.guestwall-backup-<same>`)
/// would be free too.
fn write_backup(
    path: &Path,
    dir: &Path,
    name: &str,
    stamp: &str,
    log_names: &[String],
) -> Result<PathBuf> {
    // Make sure what the backup holds is on disk, whoever wrote it last.
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|source| explain(path, source))?;
    keep_under(
        path,
        dir,
        &format!("{name}.guestwall-backup-{stamp}"),
        &|n| {
            log_names.iter().any(|l| {
                dir.join(format!("{l}.guestwall-backup-{stamp}{n}"))
                    .exists()
            })
        },
    )
}

/// Keeps `path` in `dir` under `base`, or `base-2`, `base-3`… when taken (by a file, or by
/// `taken`, which gets the `-n` part): a hard link, else a copy to a temporary name (with the
/// original's owner, group and mode), fsynced and renamed. Never replaces an existing file.
pub(super) fn keep_under(
    path: &Path,
    dir: &Path,
    base: &str,
    taken: &dyn Fn(&str) -> bool,
) -> Result<PathBuf> {
    for n in 1..1000 {
        let tail = if n == 1 {
            String::new()
        } else {
            format!("-{n}")
        };
        let candidate = dir.join(format!("{base}{tail}"));
        if taken(&tail) {
            continue;
        }
        match fs::hard_link(path, &candidate) {
            Ok(()) => {
                sync_dir(dir)?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(_) if candidate.exists() => continue,
            Err(e) if is_fatal(&e) => return Err(explain(&candidate, e)),
            Err(_) => {
                let tmp = dir.join(format!(".{base}.tmp-{}", std::process::id()));
                let _ = fs::remove_file(&tmp);
                let mut litter = Litter::default();
                let copy = (|| {
                    let meta = fs::metadata(path)?;
                    let bytes = guestwall_mmap::read(path)?;
                    let mut f = FsOpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&tmp)?;
                    litter.add(&tmp);
                    let _ = fsx::keep_metadata(&f, &tmp, path, &meta);
                    f.write_all(&bytes)?;
                    f.sync_all()
                })();
                copy.map_err(|source| explain(&tmp, source))?;
                if candidate.exists() {
                    continue;
                }
                fs::rename(&tmp, &candidate).map_err(|source| explain(&candidate, source))?;
                litter.keep();
                sync_dir(dir)?;
                return Ok(candidate);
            }
        }
    }
    Err(Error::Refused {
        path: path.to_path_buf(),
        reason: format!("no free name like {base} to keep it under"),
    })
}

/// Errors a copy would meet too (read-only file system, no space, no permission).
fn is_fatal(e: &std::io::Error) -> bool {
    use rustix::io::Errno;
    e.raw_os_error().is_some_and(|c| {
        [Errno::ROFS, Errno::NOSPC, Errno::DQUOT, Errno::ACCESS]
            .iter()
            .any(|x| x.raw_os_error() == c)
    })
}

/// Creates this process's temporary file `path` (its name carries our process ID): a file
/// of that name can only be left over from a process that had the same ID and is gone, so it
/// is removed first.
pub(super) fn create_temp(path: &Path) -> Result<File> {
    let _ = fs::remove_file(path);
    create_new(path)
}

/// Creates `path`, which must not exist.
pub(super) fn create_new(path: &Path) -> Result<File> {
    FsOpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| explain(path, source))
}

/// Writes `bytes` to a new file; the caller fsyncs (and removes the file on failure).
pub(super) fn write_all(mut f: File, path: &Path, bytes: &[u8]) -> Result<File> {
    injected_failure("temp-write").map_err(|source| explain(path, source))?;
    f.write_all(bytes).map_err(|source| explain(path, source))?;
    Ok(f)
}

pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    // Directories can be opened read-only and fsynced on Unix; elsewhere this is best effort.
    match File::open(dir) {
        Ok(d) => match d.sync_all() {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Ok(()),
            Err(e) if e.raw_os_error() == Some(22) => Ok(()),
            Err(source) => Err(explain(dir, source)),
        },
        Err(_) => Ok(()),
    }
}

/// Removes temporary files that an interrupted save of this hive left behind: only those no
/// live process owns (their names end in the owner's process ID). Called under the hive's
/// lock, so no other guestwall is writing this hive's temporary files.
pub(super) fn remove_stale_temps(dir: &Path, name: &str) {
    // `.<name>.guestwall-new-<pid>` (the new hive) and `.<name>.guestwall-….tmp-<pid>` (a
    // backup or kept copy on a file system without hard links; see `keep_under`).
    let new = format!(".{name}.guestwall-new-");
    let kept = format!(".{name}.guestwall-");
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let pid = if let Some(p) = n.strip_prefix(&new) {
                p.parse::<u32>().ok()
            } else if n.starts_with(&kept) {
                n.rsplit_once(".tmp-")
                    .and_then(|(_, p)| p.parse::<u32>().ok())
            } else {
                None
            };
            if let Some(pid) = pid.filter(|&p| p != std::process::id()) {
                if !fsx::other_process_alive(pid) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }
}

/// Commits prepared hives to a file on this machine (see the module documentation). Made by
/// [`FileStore::open`], which takes the hive's lock (unless the operation holds it already, or
/// for a dry run); the lock is held until the store is dropped.
///
/// [`FileStore::read`] also starts the backup (fsync of the original, hard link, folder
/// fsync) and the digest of the file as it is on disk on a thread of their own, so that
/// they are done while the edits are prepared. A store dropped without a successful commit
/// removes the backup it made.
pub struct FileStore<'o> {
    op: &'o mut Operation,
    target: fsx::Resolved,
    dry_run: bool,
    allow_dirty: bool,
    _lock: Option<fsx::HiveLock>,
    orig_meta: Option<fs::Metadata>,
    /// The backup being made.
    backup_job: Option<std::thread::JoinHandle<Result<PathBuf>>>,
    /// The digests of the file on disk and of the staged new file, for the history.
    digest_job: Option<std::thread::JoinHandle<Result<(u128, u128)>>>,
    /// The new file written ahead of the commit, and its fsync under way.
    staged: Option<(PathBuf, std::thread::JoinHandle<std::io::Result<File>>)>,
    /// Files to remove unless the commit succeeds.
    litter: Litter,
}

impl std::fmt::Debug for FileStore<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.target.real)
            .field("dry_run", &self.dry_run)
            .finish_non_exhaustive()
    }
}

impl Drop for FileStore<'_> {
    fn drop(&mut self) {
        if let Some(digests) = self.digest_job.take() {
            let _ = digests.join();
        }
        if let Some((_, sync)) = self.staged.take() {
            let _ = sync.join();
        }
        if let Some(job) = self.backup_job.take() {
            if let Ok(Ok(backup)) = job.join() {
                self.litter.add(&backup);
            }
        }
    }
}

impl<'o> FileStore<'o> {
    /// The store for the hive file at `path` (symbolic links followed: the backup, the
    /// temporary file and the rename happen beside the real file), as part of `op`. Takes the
    /// hive's lock unless `op` holds it or `opts.dry_run`; checks that the file can be
    /// replaced.
    pub fn open(op: &'o mut Operation, path: &Path, opts: &SaveOptions) -> Result<FileStore<'o>> {
        let target = fsx::resolve(path)?;
        let real = target.real.as_path();
        // The lock is held from the read to the rename: the operation's own (taken before it
        // read and planned), or one taken here.
        let lock = if opts.dry_run || op.holds(real) {
            None
        } else {
            Some(fsx::lock(
                real,
                fsx::lock_wait(opts.lock_wait),
                opts.on_lock_wait,
            )?)
        };
        let orig_meta = if opts.dry_run {
            None
        } else {
            Some(fsx::check_writable(real)?)
        };
        Ok(FileStore {
            op,
            target,
            dry_run: opts.dry_run,
            allow_dirty: opts.allow_dirty,
            _lock: lock,
            orig_meta,
            backup_job: None,
            digest_job: None,
            staged: None,
            litter: Litter::default(),
        })
    }

    /// The real file (every symbolic link followed).
    pub fn real_path(&self) -> &Path {
        &self.target.real
    }

    /// Reads the hive, replaying its logs if it is dirty, and (unless a dry run) starts the
    /// backup of the file as it is on disk.
    pub fn read(&mut self) -> Result<Hive> {
        let hive = Hive::open_with(&self.target.real, &OpenOptions { replay_logs: true })?;
        // A dirty hive that `prepare` will refuse gets no backup.
        let refused = !self.allow_dirty
            && (hive.recovery().partial.is_some()
                || (hive.primary_base_block().is_dirty() && !hive.recovery().applied()));
        if !self.dry_run && !refused && self.backup_job.is_none() {
            let real = self.target.real.clone();
            let dir = parent_dir(&real);
            let name = file_name(&real)?;
            // The logs moved aside after the save carry the backup's suffix, so that an undo
            // finds them: pick a suffix free for the backup and for every log.
            let log_names: Vec<String> = if hive.recovery().applied() {
                find_logs(&real)
                    .iter()
                    .filter_map(|l| l.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .collect()
            } else {
                Vec::new()
            };
            let stamp = utc_stamp();
            self.backup_job = Some(std::thread::spawn(move || {
                remove_stale_temps(&dir, &name);
                write_backup(&real, &dir, &name, &stamp, &log_names)
            }));
        }
        Ok(hive)
    }

    /// Writes the new file's bytes to a temporary file beside the hive (with the original's
    /// owner, group and mode) and starts its fsync; [`Store::commit`] verifies it and renames
    /// it into place, and anything else removes it. Nothing is written in a dry run.
    pub fn stage(&mut self, bytes: &[u8]) -> Result<()> {
        if self.dry_run || self.staged.is_some() {
            return Ok(());
        }
        let real = self.target.real.clone();
        let orig_meta = self.orig_meta.clone().ok_or_else(|| Error::Refused {
            path: self.target.named.clone(),
            reason: "internal: no metadata of the original".into(),
        })?;
        let dir = parent_dir(&real);
        let name = file_name(&real)?;
        let tmp = dir.join(format!(".{name}.guestwall-new-{}", std::process::id()));
        let file = create_temp(&tmp)?;
        self.litter.add(&tmp);
        fsx::keep_metadata(&file, &tmp, &real, &orig_meta)?;
        let file = write_all(file, &tmp, bytes)?;
        // fsync on a thread of its own while the rest goes on.
        let sync = std::thread::spawn(move || file.sync_all().map(|()| file));
        // The history's digests of the file as it is on disk (not as replayed) and of the new
        // one (as written), on another.
        let new = tmp.clone();
        self.digest_job = Some(std::thread::spawn(move || {
            let before = guestwall_mmap::read(&real).map_err(|source| explain(&real, source))?;
            let after = guestwall_mmap::read(&new).map_err(|source| explain(&new, source))?;
            Ok(file_digests(&before, &after))
        }));
        self.staged = Some((tmp, sync));
        Ok(())
    }

    /// The highest sequence number in the logs beside the hive (0 without logs).
    pub fn log_sequence(&self) -> u32 {
        find_logs(&self.target.real)
            .iter()
            .filter_map(|log| guestwall_mmap::read(log).ok())
            .filter_map(|bytes| max_sequence(&bytes))
            .max()
            .unwrap_or(0)
    }

    /// The report of a save that writes nothing (unchanged, or a dry run).
    pub fn report_only(&self, prepared: &Prepared<'_>) -> Result<SaveReport> {
        let mut report = prepared.report();
        report.real_path = self.via_link();
        if !prepared.is_unchanged() {
            let (keys, values) = prepared.verify_in_memory()?;
            report.verified_keys = keys;
            report.verified_values = values;
        }
        Ok(report)
    }

    fn via_link(&self) -> Option<PathBuf> {
        self.target.via_link().then(|| self.target.real.clone())
    }
}

impl Store for FileStore<'_> {
    fn commit(&mut self, prepared: &Prepared<'_>) -> Result<SaveReport> {
        if prepared.is_unchanged() || self.dry_run {
            return self.report_only(prepared);
        }
        let path = self.target.named.clone();
        let real = self.target.real.clone();
        let real = real.as_path();
        let recovered = prepared.original().recovery().applied();
        let logs = find_logs(real);
        let mut report = prepared.report();
        report.real_path = self.via_link();
        let orig_meta = self.orig_meta.clone().ok_or_else(|| Error::Refused {
            path: path.clone(),
            reason: "internal: no metadata of the original".into(),
        })?;
        let dir = parent_dir(real);
        let name = file_name(real)?;
        let job = self.backup_job.take().ok_or_else(|| Error::Refused {
            path: path.clone(),
            reason: "internal: the hive was not read through its store".into(),
        })?;
        let backup = job.join().map_err(|_| Error::Verify {
            path: String::new(),
            detail: "internal: a worker thread panicked".into(),
        })??;
        self.litter.add(&backup);
        let suffix = file_name(&backup)?
            .strip_prefix(&format!("{name}.guestwall-backup-"))
            .unwrap_or_default()
            .to_string();
        report.backup = Some(backup.clone());
        fault_point("after-backup");
        interrupted(real)?;

        let _ = orig_meta;
        self.stage(prepared.bytes())?;
        let (tmp, sync_job) = self.staged.take().ok_or_else(|| Error::Refused {
            path: path.clone(),
            reason: "internal: the new file was not staged".into(),
        })?;
        let digest_job = self.digest_job.take().ok_or_else(|| Error::Refused {
            path: path.clone(),
            reason: "internal: the new file was not staged".into(),
        })?;
        let op = &mut *self.op;
        let (written, keys, values) = std::thread::scope(|scope| -> Result<_> {
            // On the second core: the digest of the new file, and its line in the history,
            // appended and fsynced (taken back below if the file does not take the hive's
            // place).
            let history_job = scope.spawn(|| -> Result<&mut Operation> {
                let (before, after) = digest_job.join().map_err(|_| Error::Verify {
                    path: String::new(),
                    detail: "internal: a worker thread panicked".into(),
                })??;
                op.record_file(&OpFile {
                    path: real.to_path_buf(),
                    backup: backup.clone(),
                    before,
                    after,
                })?;
                Ok(op)
            });
            let checked = (|| -> Result<_> {
                fault_point("after-temp-write");
                interrupted(real)?;
                // Read back and verified while the fsync goes on.
                let check = Hive::open_with(&tmp, &OpenOptions { replay_logs: false })
                    .and_then(|h| prepared.verify(&h));
                let synced = sync_job
                    .join()
                    .map_err(|_| Error::Verify {
                        path: String::new(),
                        detail: "internal: a worker thread panicked".into(),
                    })?
                    .map_err(|source| explain(&tmp, source));
                let (keys, values) = check?;
                Ok((synced?, keys, values))
            })();
            let recorded = join(history_job)?;
            match (checked, recorded) {
                (Ok(done), Ok(_)) => Ok(done),
                (Err(e), Ok(op)) => {
                    op.forget_last();
                    Err(e)
                }
                (Err(e), Err(_)) | (Ok(_), Err(e)) => Err(e),
            }
        })?;
        report.verified_keys = keys;
        report.verified_values = values;
        // Lock the new file before it takes the hive's name, so that a writer waiting for
        // the old one finds it locked too.
        let new_lock = written
            .try_clone()
            .and_then(fsx::HiveLock::on)
            .map_err(|source| explain(&tmp, source))
            .inspect_err(|_| self.op.forget_last())?;
        fault_point("before-rename");
        let renamed = interrupted(real)
            .and_then(|()| fs::rename(&tmp, real).map_err(|source| explain(real, source)));
        if let Err(e) = renamed {
            // The hive was not replaced: its history entry goes too.
            self.op.forget_last();
            return Err(e);
        }
        std::mem::take(&mut self.litter).keep();
        let _new_lock = if self.op.holds(real) {
            self.op.relock(real, new_lock);
            None
        } else {
            Some(new_lock)
        };
        sync_dir(&dir)?;
        fault_point("after-rename");
        // The path the user named must now be the file just written.
        check_named_path(&self.target.named, &written)?;

        if recovered {
            for log in logs {
                let Some(log_name) = log.file_name().map(|n| n.to_string_lossy().into_owned())
                else {
                    continue;
                };
                let to = dir.join(format!("{log_name}.guestwall-backup-{suffix}"));
                fs::rename(&log, &to).map_err(|source| explain(&log, source))?;
                report.logs_moved.push((log, to));
            }
            sync_dir(&dir)?;
        }
        Ok(report)
    }
}
