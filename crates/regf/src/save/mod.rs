//! Saving edits to a hive file without ever losing data.
//!
//! [`edit_file`] is the only way guestwall changes a hive on disk. It is [`prepare`] (pure:
//! the edits applied to a copy, the new bytes, the pages that changed, what the new hive must
//! hold) followed by [`Store::commit`] of a [`FileStore`]. In order:
//!
//! 1. Lock the hive and open it, replaying its logs if it is dirty. A dirty hive whose logs
//!    cannot be applied is refused unless the caller allows it explicitly; so is any hive that
//!    cannot be read completely (every key, value, data cell and free cell).
//! 2. Survey the original (every key, and the pages it reads) while the edits are applied to
//!    an in-memory copy of the file. If the edits change nothing, stop: no backup, no write.
//!    Meanwhile, on a thread of its own, back up the file exactly as it is on disk to
//!    `<hive>.guestwall-backup-<UTC time>`: fsynced, then linked to its final name, which never
//!    replaces an existing file (removed again when nothing is written).
//! 3. Write the new hive to a temporary file beside the target and fsync it.
//! 4. Re-open that file from disk and check it: the same bytes as prepared, and exactly the
//!    intended changes, everything else identical (by page identity: see
//!    `docs/design-regf.md`). Meanwhile the operation history records the save. On any
//!    difference the temporary file is removed, the history entry taken back, and the target
//!    is left alone.
//! 5. Rename the temporary file over the target and fsync the directory. A crash at any point
//!    leaves either the old file or the new one under the target's name, and the backup, when
//!    it exists under its final name, complete.
//! 6. If the hive was dirty (recovered from its logs), move the logs aside beside the backup,
//!    so that Windows cannot replay stale entries over the new file.
//!
//! **Logs of a clean hive.** Windows replays logs only when the primary file is dirty (wrong
//! checksum, or primary and secondary sequence numbers differ); the log entries of a clean
//! hive are ignored, and the next flush starts the logs over. Our saved file is clean (both
//! sequence numbers equal, checksum right). As a second safeguard its sequence number is set
//! above every sequence number found in the logs beside it, so that no log entry could ever
//! count as newer than the file. The logs of a clean hive are therefore left in place.

mod file_store;
mod fsx;
pub mod history;
mod prepare;
mod restore;
mod text;
mod verify;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::write::Edit;

use verify::Digest;

pub use file_store::FileStore;
pub use history::{read_history, OpFile, OpRecord, Operation, HISTORY_FILE};
pub use prepare::{prepare, prepare_staged, PrepareOptions, Prepared};
pub use restore::{
    history_of, list_backups, restore_backup, restore_from, undo_latest, RestoreReport,
    UndoOptions, UndoReport,
};

pub(crate) use file_store::utc_stamp;

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

/// Where a prepared save is committed: a file on this machine ([`FileStore`]) today, a hive
/// file inside a disk image next. A store only needs the new length and the changed pages
/// ([`Prepared::len`], [`Prepared::changed_pages`]); [`Prepared::bytes`] gives the whole new
/// file to a store that writes a new file. A store must re-read what it wrote and check it
/// with [`Prepared::verify`] before the new hive takes the place of the old one.
pub trait Store {
    /// Writes `prepared` (nothing when it is unchanged) and reports what was done.
    fn commit(&mut self, prepared: &Prepared<'_>) -> Result<SaveReport>;
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
    let mut store = FileStore::open(op, path, opts)?;
    let hive = store.read()?;
    let prepare_opts = PrepareOptions {
        target: path.to_path_buf(),
        allow_dirty: opts.allow_dirty,
        dry_run: opts.dry_run,
        log_sequence: store.log_sequence(),
    };
    // The store starts writing the new file while the original is still being surveyed.
    let prepared = prepare_staged(&hive, edits, &prepare_opts, &mut |bytes| store.stage(bytes))?;
    store.commit(&prepared)
}

/// A 128-bit digest of a whole file's bytes (for the operation history).
pub fn file_digest(bytes: &[u8]) -> u128 {
    let mut d = Digest::new();
    d.bytes(bytes);
    d.finish()
}

/// [`file_digest`] of two files at once (the file before a save and the new one), in about
/// the time of one.
pub(crate) fn file_digests(before: &[u8], after: &[u8]) -> (u128, u128) {
    let (mut x, mut y) = (Digest::new(), Digest::new());
    Digest::bytes2(&mut x, before, &mut y, after);
    (x.finish(), y.finish())
}

pub(super) fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> Result<T> {
    h.join().map_err(|_| Error::Verify {
        path: String::new(),
        detail: "internal: a worker thread panicked".into(),
    })
}

/// Test-only fault injection: when `GUESTWALL_FAULT_AT` names this point, the process aborts
/// here, as a crash would. Compiled into debug builds only.
pub(super) fn fault_point(point: &str) {
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

/// Marks a save under way for as long as it lives: Ctrl-C then only sets
/// [`InterruptFlags::interrupted`] (when the command line registered its handler that way).
#[derive(Debug)]
pub struct Busy;

impl Busy {
    /// A save starts.
    pub fn start() -> Busy {
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

pub(super) fn interrupted(path: &Path) -> Result<()> {
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
pub(super) fn injected_failure(point: &str) -> std::io::Result<()> {
    #[cfg(debug_assertions)]
    if std::env::var("GUESTWALL_FAIL_AT").is_ok_and(|p| p == point) {
        return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
    }
    let _ = point;
    Ok(())
}
