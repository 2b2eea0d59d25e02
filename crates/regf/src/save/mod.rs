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

mod fsx;
pub mod history;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions as FsOpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::hive::{Hive, OpenOptions};
use crate::log::{find_logs, max_sequence};
use crate::name::upcase;
use crate::write::{Edit, HiveMut};

pub use history::{read_history, OpFile, OpRecord, Operation, HISTORY_FILE};

use fsx::{explain, parent_dir};

/// Options for [`edit_file`].
#[derive(Debug, Clone, Default)]
pub struct SaveOptions {
    /// Edit a dirty hive even when its logs could not be applied, or were applied only in part
    /// (its last changes are lost).
    pub allow_dirty: bool,
    /// Compute and verify the result, but write nothing (no backup either).
    pub dry_run: bool,
    /// How long to wait for another process that holds the hive's lock (default 30 s, or
    /// `GUESTWALL_LOCK_WAIT` seconds).
    pub lock_wait: Option<Duration>,
    /// Called once when the lock is busy, so that the caller can say it waits.
    pub on_lock_wait: Option<fn(&Path, Duration)>,
    /// The command line recorded in the operation history by [`edit_file`] (an
    /// [`Operation`] passed to [`edit_file_in`] carries its own).
    pub command: Option<String>,
}

/// What [`edit_file`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaveReport {
    /// True when the edits changed nothing, so nothing was written.
    pub unchanged: bool,
    /// The file written, when the path named was a symbolic link to it.
    pub real_path: Option<PathBuf>,
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
    /// What reading the hive warned about (a partial log recovery written with
    /// `allow_dirty`, for example).
    pub warnings: Vec<String>,
}

/// Applies `edits` to the hive at `path` and saves it safely (see the module documentation),
/// as an operation of its own in the history.
pub fn edit_file(path: &Path, edits: &[Edit], opts: &SaveOptions) -> Result<SaveReport> {
    let mut op = Operation::new(
        opts.command
            .clone()
            .unwrap_or_else(|| "guestwall (library call)".into()),
    );
    edit_file_in(&mut op, path, edits, opts)
}

/// Files an interrupted or failed attempt created; removed unless the attempt succeeds.
#[derive(Default)]
struct Litter(Vec<PathBuf>);

impl Litter {
    fn add(&mut self, p: &Path) {
        self.0.push(p.to_path_buf());
    }
    fn keep(mut self) {
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

/// [`edit_file`] as part of a larger operation (several hives changed by one command, undone
/// together).
pub fn edit_file_in(
    op: &mut Operation,
    path: &Path,
    edits: &[Edit],
    opts: &SaveOptions,
) -> Result<SaveReport> {
    let _busy = Busy::start();
    interrupted(path)?;
    // Work on the real file: backup, temporary file and rename beside it, so that a symbolic
    // link keeps pointing at the saved hive.
    let target = fsx::resolve(path)?;
    let real = target.real.as_path();
    // The lock is held from the read to the rename: the operation's own (taken before it read
    // and planned), or one taken here.
    let _lock = if opts.dry_run || op.holds(real) {
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
    let hive = Hive::open_with(real, &OpenOptions { replay_logs: true })?;
    let recovered = hive.recovery().applied();
    // Why writing this hive would lose changes (a dry run only says so).
    let mut refusal = None;
    if let Some(why) = &hive.recovery().partial {
        refusal = Some(format!(
            "its logs were applied only in part ({why}); writing would make that loss permanent. Pass --allow-dirty to write it anyway"
        ));
    } else if hive.primary_base_block().is_dirty() && !recovered {
        refusal = Some(format!(
            "the hive is dirty and its logs could not be applied ({}); writing would lose its last changes. Pass --allow-dirty to write it anyway",
            hive.warnings().join("; ")
        ));
    }
    let mut dry_run_note = None;
    if let Some(reason) = refusal.filter(|_| !opts.allow_dirty) {
        if !opts.dry_run {
            return Err(Error::Refused {
                path: path.to_path_buf(),
                reason,
            });
        }
        dry_run_note = Some(format!("a real write would be refused: {reason}"));
    }
    let refuse = |e: Error| Error::Refused {
        path: path.to_path_buf(),
        reason: format!(
            "it cannot be read completely, so it is not safe to write: {}",
            crate::error::error_chain(&e)
        ),
    };

    std::thread::scope(|scope| {
        // The baseline (a digest of every key, which also proves the hive reads completely)
        // is computed on a second core while the edits are made on the first.
        let baseline_job = scope.spawn(|| Baseline::of(&hive));
        let edited = HiveMut::new(&hive).map_err(&refuse).and_then(|mut m| {
            for e in edits {
                m.apply(e)?;
            }
            Ok(m)
        });
        let baseline = join(baseline_job)?.map_err(&refuse)?;
        let m = edited?;
        let expected = baseline.expect(&hive, edits)?;
        if expected.unchanged {
            return Ok(SaveReport {
                unchanged: true,
                real_path: target.via_link().then(|| target.real.clone()),
                sequence: hive.base_block().secondary_seq,
                warnings: hive.warnings().to_vec(),
                ..SaveReport::default()
            });
        }

        // Above the primary's numbers and above every number in the logs beside it.
        let logs = find_logs(real);
        let p = hive.primary_base_block();
        let mut seq = p
            .primary_seq
            .max(p.secondary_seq)
            .max(hive.base_block().primary_seq);
        for log in &logs {
            if let Ok(bytes) = guestwall_mmap::read(log) {
                seq = seq.max(max_sequence(&bytes).unwrap_or(0));
            }
        }
        let seq = seq.checked_add(1).ok_or_else(|| Error::Refused {
            path: path.to_path_buf(),
            reason: "its sequence number cannot be raised any further".into(),
        })?;
        let image = m.finish(seq)?;
        let mut report = SaveReport {
            real_path: target.via_link().then(|| target.real.clone()),
            sequence: seq,
            bytes: image.len() as u64,
            recovered_from_logs: recovered,
            warnings: hive
                .warnings()
                .iter()
                .cloned()
                .chain(dry_run_note)
                .collect(),
            ..SaveReport::default()
        };
        if opts.dry_run {
            let (keys, values) = expected.verify(&Hive::from_file_bytes(image)?)?;
            report.verified_keys = keys;
            report.verified_values = values;
            return Ok(report);
        }
        let orig_meta = orig_meta.ok_or_else(|| Error::Refused {
            path: path.to_path_buf(),
            reason: "internal: no metadata of the original".into(),
        })?;
        // The digest of the file as it is on disk (not as replayed), for the history.
        let before_digest = guestwall_mmap::read(real)
            .map(|b| file_digest(&b))
            .map_err(|source| explain(real, source))?;

        let dir = parent_dir(real);
        let name = file_name(real)?;
        remove_stale_temps(&dir, &name);
        let mut litter = Litter::default();
        let stamp = utc_stamp();
        // The logs moved aside after the save carry the backup's suffix, so that an undo
        // finds them: pick a suffix free for the backup and for every log.
        let log_names: Vec<String> = if recovered {
            logs.iter()
                .filter_map(|l| l.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect()
        } else {
            Vec::new()
        };
        let backup = write_backup(real, &dir, &name, &stamp, &log_names)?;
        litter.add(&backup);
        let suffix = file_name(&backup)?
            .strip_prefix(&format!("{name}.guestwall-backup-"))
            .unwrap_or(&stamp)
            .to_string();
        report.backup = Some(backup.clone());
        fault_point("after-backup");
        interrupted(real)?;

        let tmp = dir.join(format!(".{name}.guestwall-new-{}", std::process::id()));
        let file = create_new(&tmp)?;
        litter.add(&tmp);
        fsx::keep_metadata(&file, &tmp, real, &orig_meta)?;
        let file = write_all(file, &tmp, &image)?;
        // fsync on the second core while the written file is read back and verified.
        let sync_job = scope.spawn(move || file.sync_all().map(|()| file));
        fault_point("after-temp-write");
        interrupted(real)?;
        let check = Hive::open_with(&tmp, &OpenOptions { replay_logs: false }).and_then(|h| {
            if h.bytes() != &image[..] {
                return Err(Error::Verify {
                    path: String::new(),
                    detail: "the file read back differs from what was written".into(),
                });
            }
            expected.verify(&h)
        });
        let synced = join(sync_job)?.map_err(|source| explain(&tmp, source));
        let (keys, values) = check?;
        let written = synced?;
        report.verified_keys = keys;
        report.verified_values = values;
        // Lock the new file before it takes the hive's name, so that a writer waiting for
        // the old one finds it locked too.
        let new_lock = written
            .try_clone()
            .and_then(fsx::HiveLock::on)
            .map_err(|source| explain(&tmp, source))?;
        op.record_file(&OpFile {
            path: target.real.clone(),
            backup: backup.clone(),
            before: before_digest,
            after: file_digest(&image),
        })?;
        fault_point("before-rename");
        let renamed = interrupted(real)
            .and_then(|()| fs::rename(&tmp, real).map_err(|source| explain(real, source)));
        if let Err(e) = renamed {
            // The hive was not replaced: its history entry goes too.
            op.forget_last();
            return Err(e);
        }
        litter.keep();
        let _new_lock = if op.holds(real) {
            op.relock(real, new_lock);
            None
        } else {
            Some(new_lock)
        };
        sync_dir(&dir)?;
        fault_point("after-rename");
        // The path the user named must now be the file just written.
        check_named_path(&target.named, &written)?;

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
    })
}

/// Checks that `named` (the path the user gave) now leads to `written`.
fn check_named_path(named: &Path, written: &File) -> Result<()> {
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

/// A 128-bit digest of a whole file's bytes (for the operation history).
pub fn file_digest(bytes: &[u8]) -> u128 {
    let mut d = Digest::new();
    d.bytes(bytes);
    d.finish()
}

fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> Result<T> {
    h.join().map_err(|_| Error::Verify {
        path: String::new(),
        detail: "internal: a worker thread panicked".into(),
    })
}

/// Test-only fault injection: when `GUESTWALL_FAULT_AT` names this point, the process aborts
/// here, as a crash would. Compiled into debug builds only.
fn fault_point(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("GUESTWALL_FAULT_AT").is_ok_and(|p| p == point) {
        std::process::abort();
    }
    // Test-only: Ctrl-C arriving at this point (`GUESTWALL_SIGNAL_AT=point`).
    #[cfg(debug_assertions)]
    if std::env::var("GUESTWALL_SIGNAL_AT").is_ok_and(|p| p == point) {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::INT);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

/// The flags a signal handler works with: `interrupted` is set when Ctrl-C (SIGINT) or
/// SIGTERM arrives; `idle` is true while no save is under way. A command line registers its
/// handler so that a signal while idle ends the process as usual, and a signal during a save
/// only sets `interrupted`: the save then stops at its next safe point before the rename,
/// removes what it wrote and says so, or, past the rename, completes.
#[derive(Debug, Clone)]
pub struct InterruptFlags {
    /// Set by the handler.
    pub interrupted: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// True while no save is under way.
    pub idle: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

static FLAGS: std::sync::OnceLock<InterruptFlags> = std::sync::OnceLock::new();
static BUSY: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The process's interrupt flags (see [`InterruptFlags`]).
pub fn interrupt_flags() -> &'static InterruptFlags {
    FLAGS.get_or_init(|| InterruptFlags {
        interrupted: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
        idle: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
    })
}

/// Marks a save under way for as long as it lives.
struct Busy;

impl Busy {
    fn start() -> Busy {
        use std::sync::atomic::Ordering;
        BUSY.fetch_add(1, Ordering::SeqCst);
        interrupt_flags().idle.store(false, Ordering::SeqCst);
        Busy
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        if BUSY.fetch_sub(1, Ordering::SeqCst) == 1 {
            interrupt_flags().idle.store(true, Ordering::SeqCst);
        }
    }
}

fn interrupted(path: &Path) -> Result<()> {
    if interrupt_flags()
        .interrupted
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        return Err(Error::Refused {
            path: path.to_path_buf(),
            reason: "interrupted (Ctrl-C): the save was stopped before the hive was replaced, and what it had written was removed; the hive is unchanged".into(),
        });
    }
    Ok(())
}

/// Test-only: an I/O error of the given kind injected at a point (`GUESTWALL_FAIL_AT=point`),
/// as a full disk would give. Debug builds only.
fn injected_failure(point: &str) -> std::io::Result<()> {
    #[cfg(debug_assertions)]
    if std::env::var("GUESTWALL_FAIL_AT").is_ok_and(|p| p == point) {
        return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
    }
    let _ = point;
    Ok(())
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
fn keep_under(
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
        let file = create_new(&tmp)?;
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

/// Creates `path`, which must not exist.
fn create_new(path: &Path) -> Result<File> {
    FsOpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| explain(path, source))
}

/// Writes `bytes` to a new file; the caller fsyncs (and removes the file on failure).
fn write_all(mut f: File, path: &Path, bytes: &[u8]) -> Result<File> {
    injected_failure("temp-write").map_err(|source| explain(path, source))?;
    f.write_all(bytes).map_err(|source| explain(path, source))?;
    Ok(f)
}

fn sync_dir(dir: &Path) -> Result<()> {
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
fn remove_stale_temps(dir: &Path, name: &str) {
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
            if let Some(pid) = pid {
                if !fsx::other_process_alive(pid) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }
}

/// A 128-bit digest of a key's content: its name as stored and, in order, each value's name,
/// type and data. Two independent 64-bit lanes; not cryptographic, but a change that keeps
/// both lanes equal by accident has odds of about 2^-128.
#[derive(Clone, Copy)]
struct Digest {
    a: u64,
    b: u64,
}

impl Digest {
    fn new() -> Digest {
        Digest {
            a: 0x243F_6A88_85A3_08D3,
            b: 0x1319_8A2E_0370_7344,
        }
    }

    fn word(&mut self, w: u64) {
        self.a = (self.a ^ w)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(31);
        self.b = (self.b ^ w.rotate_left(23))
            .wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
            .rotate_left(29);
    }

    fn bytes(&mut self, data: &[u8]) {
        self.word(data.len() as u64);
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let mut last = [0u8; 8];
        last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.word(u64::from_le_bytes(last));
    }

    /// UTF-16 units, four to a word, then their count.
    fn units(&mut self, units: impl Iterator<Item = u16>) {
        let mut n = 0u64;
        let mut w = 0u64;
        for u in units {
            w = (w << 16) | u64::from(u);
            n += 1;
            if n.is_multiple_of(4) {
                self.word(w);
                w = 0;
            }
        }
        if !n.is_multiple_of(4) {
            self.word(w);
        }
        self.word(n);
    }

    fn finish(self) -> u128 {
        let mut a = self.a ^ (self.b >> 17);
        a = a.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        let mut b = self.b ^ (self.a >> 13);
        b = b.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
        (u128::from(a) << 64) | u128::from(b)
    }
}

fn key_digest(key: &crate::key::Key<'_>) -> Result<(u128, u64)> {
    let mut d = Digest::new();
    d.units(key.name().units());
    let mut n = 0;
    for v in key.values()? {
        d.units(v.name().units());
        d.word(u64::from(v.data_type()));
        d.bytes(&v.data()?);
        n += 1;
    }
    Ok((d.finish(), n))
}

fn full_digest(path: &str, values: &[SnapValue]) -> u128 {
    let mut d = Digest::new();
    let name = path.rsplit('\\').next().unwrap_or("");
    d.units(name.encode_utf16());
    for v in values {
        d.units(v.name.encode_utf16());
        d.word(u64::from(v.data_type));
        d.bytes(&v.data);
    }
    d.finish()
}

/// The 128-bit hash of an upper-cased key path, built one component at a time as a walk goes
/// down, so that no path string is made for the keys a save does not touch.
#[derive(Clone, Copy)]
struct PathHash {
    d: Digest,
    empty: bool,
}

impl PathHash {
    fn root() -> PathHash {
        PathHash {
            d: Digest::new(),
            empty: true,
        }
    }

    fn child(&self, name: impl Iterator<Item = u16>) -> PathHash {
        let mut d = self.d;
        if !self.empty {
            d.word(u64::from(b'\\'));
        }
        d.units(name.map(upcase));
        PathHash { d, empty: false }
    }

    fn value(&self) -> u128 {
        self.d.finish()
    }
}

/// The path hash of a `\`-separated path (empty parts ignored).
fn path_hash(path: &str) -> u128 {
    crate::hive::split_path(path)
        .fold(PathHash::root(), |h, part| h.child(part.encode_utf16()))
        .value()
}

/// Walks every key of the hive with its path hash, on two threads: the root and its children
/// here, then the subtrees below them shared out as they come. One atomic visited set covers
/// all of it, so a key reached twice is still an error. `visit` gets a per-thread state.
fn hashed_walk<T: Send + Default>(
    hive: &Hive,
    visit: impl Fn(&mut T, u128, &crate::key::Key<'_>) -> Result<()> + Sync,
) -> Result<Vec<T>> {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    let seen: Vec<AtomicU64> = (0..(hive.base_block().hbins_size as usize / 8).div_ceil(64))
        .map(|_| AtomicU64::new(0))
        .collect();
    let mark = |cell: u32| -> bool {
        let i = (cell / 8) as usize;
        seen.get(i / 64)
            .is_some_and(|w| w.fetch_or(1 << (i % 64), Ordering::Relaxed) & (1 << (i % 64)) == 0)
    };
    let descend = |parent: &PathHash, key: &crate::key::Key<'_>| parent.child(key.name().units());
    let mut here = T::default();
    let root = hive.root()?;
    let mut tasks = Vec::new();
    let top = PathHash::root();
    mark(root.cell());
    visit(&mut here, top.value(), &root)?;
    for c in root.subkey_cells()? {
        let key = crate::key::Key::new(hive, c)?;
        if !mark(c) {
            return Err(Error::Cycle {
                cell: crate::error::CellPos(c),
            });
        }
        let h = top.child(key.name().units());
        visit(&mut here, h.value(), &key).map_err(|e| e.at_key(&hive.path_of(c)))?;
        for g in key.subkey_cells().map_err(|e| e.at_key(&hive.path_of(c)))? {
            tasks.push((g, h));
        }
    }
    let next = AtomicUsize::new(0);
    let work = || -> Result<T> {
        let mut state = T::default();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(&(cell, parent)) = tasks.get(i) else {
                return Ok(state);
            };
            let key = crate::key::Key::new(hive, cell)?;
            let init = parent.child(key.name().units());
            hive.walk_marked(key, init, &mut |c| mark(c), descend, |h, k| {
                visit(&mut state, h.value(), k)
            })?;
        }
    };
    let mut out = vec![here];
    std::thread::scope(|s| -> Result<()> {
        let other = s.spawn(work);
        let mine = work();
        let theirs = other.join().map_err(|_| Error::Verify {
            path: String::new(),
            detail: "internal: a worker thread panicked".into(),
        })?;
        out.push(mine?);
        out.push(theirs?);
        Ok(())
    })?;
    Ok(out)
}

/// A hasher for keys that are already good hashes.
#[derive(Default)]
struct PreHashed(u64);

impl std::hash::Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

type HashMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<PreHashed>>;

/// Every key of the original hive: path hash -> digest of its content.
struct Baseline {
    keys: HashMap<u128, u128>,
}

/// What the saved hive must hold: the original digests of untouched keys, and the full
/// expected content of the keys the edits touch (`None`: deleted).
struct Expected {
    same: HashMap<u128, u128>,
    touched: HashMap<u128, Option<SnapKey>>,
    count: usize,
    unchanged: bool,
}

impl Baseline {
    /// Walks the whole hive, reading every value's data: it also proves the hive reads
    /// completely before anything is written.
    fn of(hive: &Hive) -> Result<Baseline> {
        let mut keys = HashMap::default();
        hive.cell_stats()?;
        hive.walk(hive.root()?, "", |path, key| {
            keys.insert(path_hash(path), key_digest(key)?.0);
            Ok(())
        })?;
        Ok(Baseline { keys })
    }

    /// Applies the edits: the keys they touch get their full expected content.
    fn expect(self, hive: &Hive, edits: &[Edit]) -> Result<Expected> {
        let mut same = self.keys;
        let mut touched: HashMap<u128, Option<SnapKey>> = HashMap::default();
        // Deleted subtrees of the original, to take out of `same` at the end.
        let mut deleted_original: Vec<u128> = Vec::new();
        let exists =
            |touched: &HashMap<u128, Option<SnapKey>>, same: &HashMap<u128, u128>, h: u128| {
                match touched.get(&h) {
                    Some(t) => t.is_some(),
                    None => same.contains_key(&h),
                }
            };
        for e in edits {
            match e {
                Edit::CreateKey { key } => {
                    let mut path = String::new();
                    for part in crate::hive::split_path(key) {
                        let child = if path.is_empty() {
                            part.to_string()
                        } else {
                            format!("{path}\\{part}")
                        };
                        let h = path_hash(&child);
                        path = match touched.get(&h) {
                            Some(Some(t)) => t.path.clone(),
                            _ if !touched.contains_key(&h) && same.contains_key(&h) => {
                                hive.resolve(&child)?.1
                            }
                            _ => {
                                touched.insert(
                                    h,
                                    Some(SnapKey {
                                        path: child.clone(),
                                        values: Vec::new(),
                                    }),
                                );
                                child
                            }
                        };
                    }
                }
                Edit::DeleteKey { key } => {
                    let h = path_hash(key);
                    if !exists(&touched, &same, h) {
                        return Err(Error::KeyNotFound { path: key.clone() });
                    }
                    // Every key now under it: touched ones by path, original ones by walking
                    // the original subtree (minus what was already deleted).
                    let prefix: Vec<u16> = upper_path(key)
                        .into_iter()
                        .chain([u16::from(b'\\')])
                        .collect();
                    let k = upper_path(key);
                    let gone: Vec<u128> = touched
                        .iter()
                        .filter(|(_, t)| {
                            t.as_ref().is_some_and(|t| {
                                let u = upper(&t.path);
                                u == k || u.starts_with(&prefix)
                            })
                        })
                        .map(|(h, _)| *h)
                        .collect();
                    for g in gone {
                        touched.insert(g, None);
                    }
                    if let Some(start) = hive.find_key(key)? {
                        let init = crate::hive::split_path(key)
                            .fold(PathHash::root(), |h, part| h.child(part.encode_utf16()));
                        hive.walk_with(
                            start,
                            init,
                            |p, k| p.child(k.name().units()),
                            |ph, _| {
                                deleted_original.push(ph.value());
                                touched.insert(ph.value(), None);
                                Ok(())
                            },
                        )?;
                    }
                }
                Edit::SetValue {
                    key,
                    name,
                    data_type,
                    data,
                } => {
                    let f = Self::full(&mut touched, &same, hive, key)?;
                    set_snap_value(&mut f.values, name, *data_type, data);
                }
                Edit::DeleteValue { key, name } => {
                    let f = Self::full(&mut touched, &same, hive, key)?;
                    delete_snap_value(&mut f.values, key, name)?;
                }
            }
        }
        let mut unchanged = true;
        for (h, t) in &touched {
            let orig = same.get(h);
            match (t, orig) {
                (Some(t), Some(d)) if full_digest(&t.path, &t.values) == *d => {}
                (None, None) => {}
                _ => unchanged = false,
            }
        }
        for h in deleted_original {
            same.remove(&h);
        }
        for h in touched.keys() {
            same.remove(h);
        }
        let count = same.len() + touched.values().filter(|t| t.is_some()).count();
        Ok(Expected {
            same,
            touched,
            count,
            unchanged,
        })
    }

    /// The touched entry for `path`, made from the original key when first touched.
    fn full<'a>(
        touched: &'a mut HashMap<u128, Option<SnapKey>>,
        same: &HashMap<u128, u128>,
        hive: &Hive,
        path: &str,
    ) -> Result<&'a mut SnapKey> {
        let h = path_hash(path);
        let entry = match touched.entry(h) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                if !same.contains_key(&h) {
                    return Err(Error::KeyNotFound {
                        path: path.to_string(),
                    });
                }
                let (key, canonical) = hive.resolve(path)?;
                let mut values = Vec::new();
                for val in key.values()? {
                    values.push(SnapValue {
                        name: val.name().to_string_lossy(),
                        data_type: val.data_type(),
                        data: val.data()?.into_owned(),
                    });
                }
                v.insert(Some(SnapKey {
                    path: canonical,
                    values,
                }))
            }
        };
        entry.as_mut().ok_or_else(|| Error::KeyNotFound {
            path: path.to_string(),
        })
    }
}

impl Expected {
    /// Checks the written hive: every untouched key reads exactly as before (same digest),
    /// every touched key holds exactly its expected content, and no key is missing or extra.
    fn verify(&self, hive: &Hive) -> Result<(u64, u64)> {
        let mismatch = |path: &str, detail: String| Error::Verify {
            path: path.to_string(),
            detail,
        };
        let parts = hashed_walk(hive, |(keys, values): &mut (u64, u64), h, key| {
            *keys += 1;
            let here = || hive.path_of(key.cell());
            match (self.touched.get(&h), self.same.get(&h)) {
                (Some(Some(f)), _) => {
                    let expected_name = f.path.rsplit('\\').next().unwrap_or("");
                    let name = key.name().to_string_lossy();
                    if name != expected_name && key.cell() != hive.base_block().root_cell {
                        return Err(mismatch(
                            &here(),
                            format!("key is named {name:?}, expected {expected_name:?}"),
                        ));
                    }
                    let got = key.values()?;
                    if got.len() != f.values.len() {
                        return Err(mismatch(
                            &here(),
                            format!("{} values, expected {}", got.len(), f.values.len()),
                        ));
                    }
                    for (v, e) in got.iter().zip(&f.values) {
                        *values += 1;
                        let name = v.name().to_string_lossy();
                        if name != e.name || v.data_type() != e.data_type || *v.data()? != *e.data {
                            return Err(mismatch(
                                &here(),
                                format!("value {:?} is not as intended", e.name),
                            ));
                        }
                    }
                    Ok(())
                }
                (Some(None), _) | (None, None) => {
                    Err(mismatch(&here(), "a key that should not be there".into()))
                }
                (None, Some(d)) => {
                    let (got, n) = key_digest(key)?;
                    *values += n;
                    if got != *d {
                        return Err(mismatch(
                            &here(),
                            "an untouched key reads differently after the save".into(),
                        ));
                    }
                    Ok(())
                }
            }
        })?;
        let keys: u64 = parts.iter().map(|p| p.0).sum();
        let values: u64 = parts.iter().map(|p| p.1).sum();
        if keys != self.count as u64 {
            return Err(mismatch(
                "",
                format!("{keys} keys found, expected {}", self.count),
            ));
        }
        Ok((keys, values))
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

/// Sets a value in a key's value list (names compared as Windows does), appending it when new.
fn set_snap_value(values: &mut Vec<SnapValue>, name: &str, data_type: u32, data: &[u8]) {
    let n = upper(name);
    match values.iter_mut().find(|v| upper(&v.name) == n) {
        Some(v) => {
            v.data_type = data_type;
            v.data = data.to_vec();
        }
        None => values.push(SnapValue {
            name: name.to_string(),
            data_type,
            data: data.to_vec(),
        }),
    }
}

/// Removes a value from a key's value list; an absent value is an error, as in the writer.
fn delete_snap_value(values: &mut Vec<SnapValue>, key: &str, name: &str) -> Result<()> {
    let n = upper(name);
    let before = values.len();
    values.retain(|v| upper(&v.name) != n);
    if values.len() == before {
        return Err(Error::ValueNotFound {
            key: key.to_string(),
            name: name.to_string(),
        });
    }
    Ok(())
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
                set_snap_value(&mut k.values, name, *data_type, data);
            }
            Edit::DeleteValue { key, name } => {
                let k = self
                    .keys
                    .get_mut(&upper_path(key))
                    .ok_or_else(|| Error::KeyNotFound { path: key.clone() })?;
                delete_snap_value(&mut k.values, key, name)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{build_hive, reg_sz, BuildOptions, KeySpec};

    fn hive(spec: &KeySpec) -> Hive {
        Hive::from_bytes(build_hive(spec, &BuildOptions::default()).unwrap()).unwrap()
    }

    fn spec() -> KeySpec {
        KeySpec::new("")
            .subkey(
                KeySpec::new("A")
                    .value("x", 1, reg_sz("one"))
                    .subkey(KeySpec::new("B")),
            )
            .subkey(KeySpec::new("C").value("y", 4, 7u32.to_le_bytes()))
    }

    fn expected(edits: &[Edit]) -> Expected {
        let h = hive(&spec());
        Baseline::of(&h).unwrap().expect(&h, edits).unwrap()
    }

    #[test]
    fn verification_accepts_exactly_the_intended_result() {
        let edits = [
            Edit::SetValue {
                key: "A".into(),
                name: "x".into(),
                data_type: 1,
                data: reg_sz("two"),
            },
            Edit::CreateKey {
                key: "C\\New".into(),
            },
            Edit::DeleteKey { key: "A\\B".into() },
        ];
        let e = expected(&edits);
        assert!(!e.unchanged);
        let mut ok = spec();
        ok.subkeys[0].values[0].data = reg_sz("two");
        ok.subkeys[0].subkeys.clear();
        ok.subkeys[1].subkeys.push(KeySpec::new("New"));
        assert_eq!(e.verify(&hive(&ok)).unwrap(), (4, 2));

        // Anything else is caught: an untouched value changed, a key missing, a key too many,
        // the edited value wrong, a new key with another name case.
        let mut bad = ok.clone();
        bad.subkeys[1].values[0].data = 8u32.to_le_bytes().to_vec();
        assert!(e
            .verify(&hive(&bad))
            .unwrap_err()
            .to_string()
            .contains("untouched key"));
        let mut bad = ok.clone();
        bad.subkeys[1].subkeys.clear();
        assert!(e.verify(&hive(&bad)).is_err());
        let mut bad = ok.clone();
        bad.subkeys[0].subkeys.push(KeySpec::new("B"));
        assert!(e
            .verify(&hive(&bad))
            .unwrap_err()
            .to_string()
            .contains("should not be there"));
        let mut bad = ok.clone();
        bad.subkeys[0].values[0].data = reg_sz("three");
        assert!(e
            .verify(&hive(&bad))
            .unwrap_err()
            .to_string()
            .contains("not as intended"));
        let mut bad = ok;
        bad.subkeys[1].subkeys[0].name = "NEW".into();
        assert!(e
            .verify(&hive(&bad))
            .unwrap_err()
            .to_string()
            .contains("named"));
    }

    #[test]
    fn edits_that_change_nothing_are_recognised() {
        assert!(expected(&[Edit::CreateKey { key: "a\\b".into() }]).unchanged);
        assert!(
            expected(&[Edit::SetValue {
                key: "C".into(),
                name: "Y".into(),
                data_type: 4,
                data: 7u32.to_le_bytes().to_vec()
            }])
            .unchanged
        );
        assert!(
            !expected(&[Edit::SetValue {
                key: "C".into(),
                name: "y".into(),
                data_type: 3,
                data: 7u32.to_le_bytes().to_vec()
            }])
            .unchanged
        );
    }
}
