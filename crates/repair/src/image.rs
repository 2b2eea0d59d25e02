//! Repairs written in place inside a disk image: the same plan and edits as for a hive file,
//! prepared in memory, then written only into the changed pages of the hive's own clusters,
//! behind an undo journal (crate `guestwall-inplace`), read back through the whole stack and
//! verified as a file save is.

use std::path::{Path, PathBuf};

use guestwall_diagnose::diagnose;
use guestwall_ingest::image::{open_windows, ImageRef, ImageWindows};
use guestwall_ingest::{load, Target};
use guestwall_inplace::{
    check_not_in_use, check_not_mounted, commit, journal_path, journal_state, plan_writes,
    undo as undo_journal, ImageLock, JournalState, Placement, Run,
};
use guestwall_regf::save::{prepare, PrepareOptions, RestoreReport, SaveOptions, SaveReport};
use guestwall_regf::{max_sequence, Hive, HiveSource, OpenOptions, PAGE};

use crate::apply::{edits_for, Fixed, HiveWrite, RepairError, Result};
use crate::{HiveKind, Plan};

fn refused(img: &ImageRef, why: impl std::fmt::Display) -> RepairError {
    RepairError::Usage(format!(
        "{} is {}: not written: {why}",
        img.path.display(),
        img.what
    ))
}

fn inplace_err(img: &ImageRef) -> impl Fn(guestwall_inplace::Error) -> RepairError + '_ {
    move |e| refused(img, e)
}

/// Where the journal of the image goes (`--journal-dir`, else beside the image; for a block
/// device, the current folder); see [`journal_path`].
pub fn image_journal(img: &ImageRef, dir: Option<&Path>) -> PathBuf {
    journal_path(&img.path, dir)
}

/// Refuses to start a repair over one that is recorded (or was interrupted) in the journal.
fn no_pending_journal(img: &ImageRef, journal: &Path) -> Result<()> {
    match journal_state(&img.path, journal).map_err(inplace_err(img))? {
        None => Ok(()),
        Some(JournalState::Torn) => Err(refused(
            img,
            format!(
                "an earlier in-place repair of this image was interrupted ({} holds its original bytes, and the image holds some of the new ones): the hive may be inconsistent. Run `guestwall undo {}` to put the original bytes back, then repeat the repair",
                journal.display(),
                img.path.display()
            ),
        )),
        Some(_) => Err(refused(
            img,
            format!(
                "{} exists: an earlier in-place repair of this image is recorded there; run `guestwall undo {}` first (or, for that repair to stay, move the journal away)",
                journal.display(),
                img.path.display()
            ),
        )),
    }
}

/// A hive file inside the image: its data runs, sizes and flags.
type ImageFile =
    guestwall_ntfsvol::FileView<guestwall_source::Slice<std::sync::Arc<guestwall_vdisk::Disk>>>;

/// The file of `hive` in the installation, with its source.
fn hive_of(win: &ImageWindows, hive: HiveKind) -> Option<(&dyn HiveSource, &ImageFile)> {
    match hive {
        HiveKind::System => Some((&win.system as &dyn HiveSource, &win.system_file)),
        HiveKind::Software => Some((
            win.software.as_ref()? as &dyn HiveSource,
            win.software_file.as_ref()?,
        )),
    }
}

/// The virtual-disk writes that turn the file as it is on the disk (`on_disk`) into `new`:
/// every 4 KiB page that differs, through the file's data runs.
fn changed_writes(
    new: &[u8],
    on_disk: &[u8],
    file: &ImageFile,
    volume_start: u64,
) -> guestwall_inplace::Result<Vec<(u64, Vec<u8>)>> {
    let placement = Placement {
        runs: file
            .runs()
            .iter()
            .map(|r| Run {
                file_offset: r.file_offset,
                volume_offset: r.volume_offset,
                len: r.len,
            })
            .collect(),
        volume_start,
        size: file.data_size(),
    };
    let page = PAGE as usize;
    let mut out = Vec::new();
    for start in (0..new.len()).step_by(page) {
        let end = (start + page).min(new.len());
        if on_disk.get(start..end) == Some(&new[start..end]) {
            continue;
        }
        let mut at = start;
        for (disk_off, len) in placement.disk_ranges(start as u64, (end - start) as u64)? {
            let len = len as usize;
            out.push((disk_off, new[at..at + len].to_vec()));
            at += len;
        }
    }
    Ok(out)
}

/// The highest sequence number in the logs the source supplies for its hive (0 without logs):
/// the repaired hive is written above it, so that Windows ignores the stale logs.
fn log_sequence(src: &dyn HiveSource) -> u32 {
    src.logs()
        .unwrap_or_default()
        .iter()
        .filter_map(|l| max_sequence(&l.bytes))
        .max()
        .unwrap_or(0)
}

/// Why the hive `file` cannot be overwritten in place (its data resident, compressed, sparse
/// …), if it cannot.
fn blocked(src: &dyn HiveSource, file: &ImageFile) -> Option<String> {
    let blockers = file.write_blockers();
    (!blockers.is_empty()).then(|| {
        format!(
            "{}: its data cannot be overwritten in place: {}",
            src.location(),
            blockers.join("; ")
        )
    })
}

/// The virtual-disk writes of a changed hive: refused when it would outgrow its file;
/// otherwise every page that differs from the file as it is on the disk (not as replayed from
/// its logs: a replayed hive writes its replayed pages too). The hive file's bytes are read
/// again only when the hive was replayed; else `hive` holds them.
fn hive_writes(
    hive: &Hive,
    new: &[u8],
    src: &dyn HiveSource,
    file: &ImageFile,
    volume_start: u64,
) -> std::result::Result<Vec<(u64, Vec<u8>)>, InPlaceError> {
    // A file longer than its hive (Windows leaves slack after the last bin) keeps its tail:
    // only the hive's own bytes are compared and written.
    if new.len() as u64 > file.data_size() {
        return Err(InPlaceError::Refused(format!(
            "{}: the changed hive is {} bytes but the file holds {}: the file would have to grow, which needs new clusters and NTFS metadata that guestwall does not write. Mount the volume read-write (ntfs-3g) and make the change on its Windows folder instead",
            src.location(),
            new.len(),
            file.data_size()
        )));
    }
    let replayed;
    let on_disk: &[u8] = if hive.recovery().applied() {
        replayed = src.primary().map_err(InPlaceError::Hive)?;
        &replayed
    } else {
        hive.bytes()
    };
    changed_writes(new, on_disk, file, volume_start)
        .map_err(|e| InPlaceError::Refused(e.to_string()))
}

/// Why an in-place step stopped: a refusal (nothing written), or the hive itself.
enum InPlaceError {
    Refused(String),
    Hive(guestwall_regf::Error),
}

/// Why a volume that is not clean is not written.
fn unclean(reasons: &[String]) -> String {
    format!(
        "the Windows volume is not clean ({}). A hibernated or fast-started Windows resumes with the registry it holds in memory and would overwrite the repair; an unclean NTFS journal is replayed by Windows at mount over what guestwall writes. `ntfsfix` would only reset the journal and mark the volume for a check, throwing away what the journal holds, so guestwall does not do that either. Boot the VM and shut it down fully (or `shutdown /s /t 0` on the serial console, with fast startup off), then run guestwall again",
        reasons.join("; ")
    )
}

/// Applies `plan` to the hives inside the image `target` names: refusals first, nothing
/// written unless every hive's write is safe; then one journal for the whole repair, the
/// writes, a flush, the read-back verification and the diagnosis afterwards.
pub fn apply_image(
    target: &Target,
    img: &ImageRef,
    plan: Plan,
    save: &SaveOptions,
    journal_dir: Option<&Path>,
    port: Option<u16>,
) -> Result<Fixed> {
    check_not_mounted(&img.path).map_err(inplace_err(img))?;
    if !save.dry_run {
        check_not_in_use(&img.path).map_err(inplace_err(img))?;
    }
    // Held from the read to the last flush: no other guestwall (or locking tool) writes it.
    let lock = if save.dry_run {
        None
    } else {
        Some(ImageLock::take(&img.path).map_err(inplace_err(img))?)
    };
    let win = open_windows(img)?;
    let mut plan = plan;
    let mut writes: Vec<HiveWrite> = Vec::new();
    let mut disk_writes: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut hives: Vec<(HiveKind, Hive, Vec<guestwall_regf::write::Edit>)> = Vec::new();
    for kind in [HiveKind::System, HiveKind::Software] {
        let edits = edits_for(&plan, kind);
        if edits.is_empty() {
            continue;
        }
        let (src, _) = hive_of(&win, kind).ok_or(RepairError::MissingHive { hive: kind })?;
        let hive = Hive::open_source(src, &OpenOptions::default()).map_err(|source| {
            RepairError::Write {
                path: img.path.clone(),
                source,
            }
        })?;
        hives.push((kind, hive, edits));
    }
    if !hives.is_empty() && !win.volume_unclean.is_empty() && !save.dry_run {
        return Err(refused(img, unclean(&win.volume_unclean)));
    }
    let mut prepared_all = Vec::new();
    for (kind, hive, edits) in &hives {
        let (src, file) = hive_of(&win, *kind).ok_or(RepairError::MissingHive { hive: *kind })?;
        if let Some(why) = blocked(src, file).filter(|_| !save.dry_run) {
            return Err(refused(img, why));
        }
        let prepared = prepare(
            hive,
            edits,
            &PrepareOptions {
                target: PathBuf::from(src.location().to_string()),
                allow_dirty: save.allow_dirty,
                dry_run: save.dry_run,
                log_sequence: log_sequence(src),
            },
        )
        .map_err(|source| RepairError::Write {
            path: img.path.clone(),
            source,
        })?;
        let mut report = prepared.report();
        if !prepared.is_unchanged() {
            disk_writes.extend(
                hive_writes(hive, prepared.bytes(), src, file, win.volume_start).map_err(|e| {
                    match e {
                        InPlaceError::Refused(why) => refused(img, why),
                        InPlaceError::Hive(source) => RepairError::Write {
                            path: img.path.clone(),
                            source,
                        },
                    }
                })?,
            );
            let (keys, values) =
                prepared
                    .verify_in_memory()
                    .map_err(|source| RepairError::Write {
                        path: img.path.clone(),
                        source,
                    })?;
            report.verified_keys = keys;
            report.verified_values = values;
        }
        prepared_all.push((*kind, prepared, report));
    }
    let wplan = plan_writes(&win.disk, &disk_writes).map_err(inplace_err(img))?;
    let journal = image_journal(img, journal_dir);
    if !wplan.payload.is_empty() {
        // Also in a dry run: it says what the real run would meet.
        no_pending_journal(img, &journal)?;
    }
    if let (Some(lock), false) = (&lock, wplan.payload.is_empty()) {
        let done = commit(lock, &wplan, &journal).map_err(inplace_err(img))?;
        // Read back through the whole stack (container, partition, NTFS, hive) and verify.
        let again = open_windows(img)?;
        for (kind, prepared, report) in &mut prepared_all {
            if prepared.is_unchanged() {
                continue;
            }
            let (src, _) =
                hive_of(&again, *kind).ok_or(RepairError::MissingHive { hive: *kind })?;
            let written =
                Hive::open_source(src, &OpenOptions { replay_logs: false }).map_err(|source| {
                    RepairError::Write {
                        path: img.path.clone(),
                        source,
                    }
                })?;
            let (keys, values) = prepared.verify(&written).map_err(|source| {
                RepairError::Usage(format!(
                    "{}: the hive read back from the image differs from what was written ({source}); `guestwall undo {}` puts the original bytes back",
                    img.path.display(),
                    img.path.display()
                ))
            })?;
            report.verified_keys = keys;
            report.verified_values = values;
            report.backup = Some(done.journal.clone());
        }
    }
    for (kind, prepared, report) in prepared_all {
        for w in prepared.warnings() {
            let w = format!("{}: {w}", img.path.display());
            if !plan.warnings.contains(&w) {
                plan.warnings.push(w);
            }
        }
        let report = SaveReport {
            real_path: None,
            ..report
        };
        writes.push(HiveWrite {
            hive: kind,
            path: img.path.clone(),
            changes: plan.changes.iter().filter(|c| c.hive == kind).count(),
            report,
        });
    }
    let after = if save.dry_run {
        plan.after.clone()
    } else {
        load(target)?.iter().map(|c| diagnose(c, port)).collect()
    };
    drop(lock);
    Ok(Fixed {
        plan,
        writes,
        after,
        dry_run: save.dry_run,
    })
}

/// Undoes the in-place repair recorded in the image's journal; `None` when there is none
/// (nothing to undo). With `dry_run`, the journal is read and checked, and nothing is written.
pub fn undo_image(
    img: &ImageRef,
    journal_dir: Option<&Path>,
    force: bool,
    dry_run: bool,
) -> Result<Option<RestoreReport>> {
    let journal = image_journal(img, journal_dir);
    if !journal.exists() {
        return Ok(None);
    }
    if dry_run {
        // Only checked: a damaged journal is said now, not at the real undo.
        guestwall_inplace::Journal::read(&journal).map_err(inplace_err(img))?;
        return Ok(Some(RestoreReport {
            path: img.path.clone(),
            backup: Some(journal),
            backup_kept_as: None,
            replaced_kept_as: None,
            logs_restored: Vec::new(),
            unchanged: false,
        }));
    }
    check_not_mounted(&img.path).map_err(inplace_err(img))?;
    check_not_in_use(&img.path).map_err(inplace_err(img))?;
    let lock = ImageLock::take(&img.path).map_err(inplace_err(img))?;
    let u = undo_journal(&lock, &journal, force).map_err(inplace_err(img))?;
    Ok(Some(RestoreReport {
        path: img.path.clone(),
        backup: Some(journal),
        backup_kept_as: Some(u.journal_kept_as),
        replaced_kept_as: None,
        logs_restored: Vec::new(),
        unchanged: u.unchanged,
    }))
}

/// `reg` on hives inside disk images, named `IMAGE::PATH` (or `IMAGE::partition N::PATH`):
/// read through the image, written in place behind a journal, read back and verified. One
/// in-place change at a time per image: a journal left by an earlier one is refused until
/// `guestwall undo IMAGE`.
#[derive(Debug, Default)]
pub struct ImageHives {
    /// Where journals go (`--journal-dir`).
    pub journal_dir: Option<PathBuf>,
}

impl ImageHives {
    fn image_of(&self, file: &Path) -> Option<(ImageRef, String)> {
        if file.exists() {
            return None;
        }
        let (image, partition, inner) =
            guestwall_ingest::image::split_image_path(&file.to_string_lossy())?;
        let t = guestwall_ingest::locate_with(&image, None, partition).ok()?;
        let mut img = t.image?;
        img.journal_dir = self.journal_dir.clone();
        Some((img, inner))
    }
}

fn regf_err(file: &Path) -> impl Fn(&dyn std::fmt::Display) -> guestwall_regf::Error + '_ {
    move |e| guestwall_regf::Error::Refused {
        path: file.to_path_buf(),
        reason: e.to_string(),
    }
}

impl guestwall_reg::HiveStore for ImageHives {
    fn owns(&self, file: &Path) -> bool {
        self.image_of(file).is_some()
    }

    fn open(&self, file: &Path) -> guestwall_regf::Result<Hive> {
        let (img, inner) = self
            .image_of(file)
            .ok_or_else(|| regf_err(file)(&"not in an image"))?;
        let placed = guestwall_ingest::image::open_file_placed(&img, &inner)
            .map_err(|e| regf_err(file)(&e))?;
        Hive::open_source(&placed.source, &OpenOptions::default())
    }

    fn save(
        &self,
        file: &Path,
        edits: &[guestwall_regf::write::Edit],
        save: &SaveOptions,
    ) -> guestwall_regf::Result<SaveReport> {
        let (img, inner) = self
            .image_of(file)
            .ok_or_else(|| regf_err(file)(&"not in an image"))?;
        let fail = |e: &dyn std::fmt::Display| {
            regf_err(file)(&format!("{} is {}: {e}", img.path.display(), img.what))
        };
        check_not_mounted(&img.path).map_err(|e| fail(&e))?;
        if !save.dry_run {
            check_not_in_use(&img.path).map_err(|e| fail(&e))?;
        }
        let lock = if save.dry_run {
            None
        } else {
            Some(ImageLock::take(&img.path).map_err(|e| fail(&e))?)
        };
        let placed = guestwall_ingest::image::open_file_placed(&img, &inner)
            .map_err(|e| regf_err(file)(&e))?;
        let hive = Hive::open_source(&placed.source, &OpenOptions::default())?;
        let prepared = prepare(
            &hive,
            edits,
            &PrepareOptions {
                target: file.to_path_buf(),
                allow_dirty: save.allow_dirty,
                dry_run: save.dry_run,
                log_sequence: log_sequence(&placed.source),
            },
        )?;
        let mut report = prepared.report();
        if prepared.is_unchanged() {
            return Ok(report);
        }
        let (keys, values) = prepared.verify_in_memory()?;
        report.verified_keys = keys;
        report.verified_values = values;
        let Some(lock) = lock else {
            return Ok(report);
        };
        if !placed.volume_unclean.is_empty() {
            return Err(fail(&unclean(&placed.volume_unclean)));
        }
        if let Some(why) = blocked(&placed.source, &placed.file) {
            return Err(fail(&why));
        }
        let writes = hive_writes(
            &hive,
            prepared.bytes(),
            &placed.source,
            &placed.file,
            placed.volume_start,
        )
        .map_err(|e| match e {
            InPlaceError::Refused(why) => fail(&why),
            InPlaceError::Hive(e) => e,
        })?;
        let wplan = plan_writes(&placed.disk, &writes).map_err(|e| fail(&e))?;
        let journal = image_journal(&img, self.journal_dir.as_deref());
        no_pending_journal(&img, &journal).map_err(|e| regf_err(file)(&e))?;
        let done = commit(&lock, &wplan, &journal).map_err(|e| fail(&e))?;
        let again = guestwall_ingest::image::open_file_placed(&img, &inner)
            .map_err(|e| regf_err(file)(&e))?;
        let written = Hive::open_source(&again.source, &OpenOptions { replay_logs: false })?;
        let (keys, values) = prepared.verify(&written)?;
        report.verified_keys = keys;
        report.verified_values = values;
        report.backup = Some(done.journal);
        Ok(report)
    }
}
