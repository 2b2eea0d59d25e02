//! Applying a [`Plan`] to the hive files of a machine, and undoing it.
//!
//! Every write goes through [`guestwall_regf::save::edit_file`]: backup first, write to a
//! temporary file, fsync, verify, rename. Afterwards the hives are read again from disk and
//! diagnosed, and that diagnosis (not the prediction) is what is reported.

use std::path::PathBuf;

use guestwall_diagnose::{diagnose, Diagnosis};
use guestwall_ingest::{load, IngestError, Target};
use guestwall_regf::build::reg_sz;
use guestwall_regf::data::{REG_DWORD, REG_SZ};
use guestwall_regf::save::{
    edit_file_in, history_of, undo_latest, OpRecord, Operation, SaveOptions, SaveReport,
    UndoOptions, UndoReport,
};
use guestwall_regf::write::Edit;

use crate::{plan, FixOptions, HiveKind, Op, Plan};

/// Errors while applying or undoing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepairError {
    /// The hives could not be found or read.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// A hive could not be written (nothing was written to it).
    #[error("{}", path.display())]
    Write {
        /// The hive file.
        path: PathBuf,
        /// The error.
        #[source]
        source: guestwall_regf::Error,
    },
    /// A command line that cannot be run (bad netsh syntax or values).
    #[error("{0}")]
    Usage(String),
    /// Output could not be written.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A later hive of the operation could not be written after earlier ones were.
    #[error("{source}; {} already written before it (`guestwall undo` reverts it)", written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" and "))]
    PartlyWritten {
        /// The hives written.
        written: Vec<PathBuf>,
        /// Why the next one was not.
        #[source]
        source: Box<RepairError>,
    },
    /// The plan changes a hive that was not found.
    #[error("the plan changes {hive}, but no {hive} hive was found; pass it with --software")]
    MissingHive {
        /// Which.
        hive: HiveKind,
    },
}

/// Result alias.
pub type Result<T, E = RepairError> = std::result::Result<T, E>;

/// One hive written.
#[derive(Debug, Clone)]
pub struct HiveWrite {
    /// Which hive.
    pub hive: HiveKind,
    /// Its file.
    pub path: PathBuf,
    /// How many changes of the plan.
    pub changes: usize,
    /// What the save did (backup, logs moved, verification).
    pub report: SaveReport,
}

/// What a fix did.
#[derive(Debug, Clone)]
pub struct Fixed {
    /// The plan.
    pub plan: Plan,
    /// The hives written (or, in a dry run, checked).
    pub writes: Vec<HiveWrite>,
    /// The diagnosis read back from the written hives (the predicted one in a dry run).
    pub after: Vec<Diagnosis>,
    /// Nothing was written.
    pub dry_run: bool,
}

impl Fixed {
    /// RDP is reachable in every control set afterwards.
    pub fn reachable(&self) -> bool {
        !self.after.is_empty() && self.after.iter().all(|d| d.reachable)
    }
}

/// The registry edits for one hive's changes, in plan order. A key that a value is set in is
/// created first when missing (creating an existing key changes nothing).
pub fn edits_for(plan: &Plan, hive: HiveKind) -> Vec<Edit> {
    let mut edits = Vec::new();
    for c in plan.changes.iter().filter(|c| c.hive == hive) {
        match &c.op {
            Op::SetDword(d) => {
                edits.push(Edit::CreateKey { key: c.key.clone() });
                edits.push(Edit::SetValue {
                    key: c.key.clone(),
                    name: c.value.clone(),
                    data_type: REG_DWORD,
                    data: d.to_le_bytes().to_vec(),
                });
            }
            Op::SetString(s) => {
                edits.push(Edit::CreateKey { key: c.key.clone() });
                edits.push(Edit::SetValue {
                    key: c.key.clone(),
                    name: c.value.clone(),
                    data_type: REG_SZ,
                    data: reg_sz(s),
                });
            }
            Op::DeleteValue => edits.push(Edit::DeleteValue {
                key: c.key.clone(),
                name: c.value.clone(),
            }),
        }
    }
    edits
}

/// Writes `plan` to the target's hives (SYSTEM, then SOFTWARE), then reads them back and
/// diagnoses them. With `save.dry_run`, every edit is still made and verified in memory, but
/// nothing is written.
pub fn apply(target: &Target, plan: Plan, save: &SaveOptions, port: Option<u16>) -> Result<Fixed> {
    let mut op = Operation::new(
        save.command
            .clone()
            .unwrap_or_else(|| "guestwall fix".into()),
    );
    apply_in(&mut op, target, plan, save, port)
}

/// Takes the locks of the target's hives for `op` (unless a dry run), before anything is read,
/// so that the plan is made from what no other writer can change until it is written.
pub fn lock_target(op: &mut Operation, target: &Target, save: &SaveOptions) -> Result<()> {
    // A disk image is locked as a whole by the in-place writer.
    if save.dry_run || target.image.is_some() {
        return Ok(());
    }
    for p in std::iter::once(&target.system).chain(target.software.as_ref()) {
        op.lock(p, save).map_err(|source| RepairError::Write {
            path: p.clone(),
            source,
        })?;
    }
    Ok(())
}

/// [`apply`] as part of an operation that may already hold the hives' locks.
pub fn apply_in(
    op: &mut Operation,
    target: &Target,
    plan: Plan,
    save: &SaveOptions,
    port: Option<u16>,
) -> Result<Fixed> {
    if let Some(img) = &target.image {
        return crate::image::apply_image(
            target,
            img,
            plan,
            save,
            img.journal_dir.as_deref(),
            port,
        );
    }
    let mut writes = Vec::new();
    let mut plan = plan;
    let mut plan_warnings = Vec::new();
    for hive in [HiveKind::System, HiveKind::Software] {
        let edits = edits_for(&plan, hive);
        if edits.is_empty() {
            continue;
        }
        let path = match hive {
            HiveKind::System => target.system.clone(),
            HiveKind::Software => target
                .software
                .clone()
                .ok_or(RepairError::MissingHive { hive })?,
        };
        let report = edit_file_in(op, &path, &edits, save).map_err(|source| {
            let e = RepairError::Write {
                path: path.clone(),
                source,
            };
            let written: Vec<PathBuf> = writes
                .iter()
                .filter(|w: &&HiveWrite| !w.report.unchanged && !save.dry_run)
                .map(|w| w.path.clone())
                .collect();
            if written.is_empty() {
                e
            } else {
                RepairError::PartlyWritten {
                    written,
                    source: Box::new(e),
                }
            }
        })?;
        for w in &report.warnings {
            let w = format!("{}: {w}", path.display());
            if !plan_warnings.contains(&w) {
                plan_warnings.push(w);
            }
        }
        writes.push(HiveWrite {
            hive,
            path,
            changes: plan.changes.iter().filter(|c| c.hive == hive).count(),
            report,
        });
    }
    plan.warnings.extend(plan_warnings);
    let after = if save.dry_run {
        plan.after.clone()
    } else {
        load(target)?.iter().map(|c| diagnose(c, port)).collect()
    };
    Ok(Fixed {
        plan,
        writes,
        after,
        dry_run: save.dry_run,
    })
}

/// Reads the target, plans the fix and applies it.
pub fn fix(target: &Target, opts: &FixOptions, save: &SaveOptions) -> Result<Fixed> {
    // One operation in the history (`guestwall undo` reverts SYSTEM and SOFTWARE together),
    // holding both hives' locks from the read to the last rename.
    let mut op = Operation::new(
        save.command
            .clone()
            .unwrap_or_else(|| "guestwall fix".into()),
    );
    lock_target(&mut op, target, save)?;
    let configs = load(target)?;
    apply_in(&mut op, target, plan(&configs, opts), save, opts.port)
}

/// The hive files of the target, SYSTEM first.
fn hive_paths(target: &Target) -> Vec<&std::path::Path> {
    std::iter::once(target.system.as_path())
        .chain(target.software.as_deref())
        .collect()
}

/// Reverts the latest operation (fix, netsh or reg change) on the target's hives, as a whole.
pub fn undo(target: &Target, opts: &UndoOptions) -> Result<UndoReport> {
    if let Some(img) = &target.image {
        let r =
            crate::image::undo_image(img, img.journal_dir.as_deref(), opts.force, opts.dry_run)?;
        return Ok(UndoReport {
            op: None,
            files: r.into_iter().collect(),
            legacy: false,
        });
    }
    undo_latest(&hive_paths(target), opts).map_err(|source| RepairError::Write {
        path: target.system.clone(),
        source,
    })
}

/// The operations recorded for the target's hives, oldest first.
pub fn history(target: &Target) -> Result<Vec<OpRecord>> {
    if let Some(img) = &target.image {
        // An image's record is its journal: the in-place change in effect, if any.
        let journal = crate::image::image_journal(img, img.journal_dir.as_deref());
        let Ok(meta) = std::fs::metadata(&journal) else {
            return Ok(Vec::new());
        };
        let secs = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        // FILETIME: 100 ns units since 1601.
        let time = guestwall_regf::filetime_compact((secs + 11_644_473_600) * 10_000_000);
        return Ok(vec![OpRecord {
            id: format!("journal-{secs}"),
            time,
            command: "an in-place change of the image (fix, netsh or reg)".into(),
            files: vec![guestwall_regf::save::OpFile {
                path: img.path.clone(),
                backup: journal,
                before: 0,
                after: 0,
            }],
            undone: None,
            elsewhere: Vec::new(),
        }]);
    }
    history_of(&hive_paths(target)).map_err(|source| RepairError::Write {
        path: target.system.clone(),
        source,
    })
}

/// Writes what a fix did, for people: the plan, the hives written (backup, logs moved,
/// verification), and the diagnosis read back afterwards. `target` holds the target's
/// arguments as the user gave them, quoted ([`guestwall_diagnose::target_args`]), for the undo
/// command.
pub fn write_fixed(f: &Fixed, target: &str, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    for d in &f.plan.before {
        writeln!(out, "Before: {}: {}", d.label, summary(d))?;
    }
    crate::write_plan(&f.plan, out)?;
    if f.dry_run {
        if !f.plan.changes.is_empty() {
            writeln!(
                out,
                "Dry run: nothing was written (every edit was made and verified in memory)."
            )?;
        }
    } else {
        for w in &f.writes {
            w.report
                .write_text(&w.hive.to_string(), &w.path, w.changes, false, out)?;
        }
    }
    // What the result rests on: no SOFTWARE hive (Group Policy unknown), logs, …
    let mut said: Vec<&str> = Vec::new();
    for n in f.after.iter().flat_map(|d| &d.findings).filter(|c| {
        c.code == guestwall_diagnose::codes::INPUT_NOTE
            || c.code == guestwall_diagnose::codes::LOGS_PARTLY_APPLIED
    }) {
        if !said.contains(&n.detail.as_str()) {
            said.push(&n.detail);
            writeln!(out, "Note: {}", n.detail)?;
        }
    }
    let label = if f.dry_run { "Predicted" } else { "After" };
    for d in &f.after {
        writeln!(out, "{label}: {}: {}", d.label, summary(d))?;
    }
    if !f.dry_run && f.writes.iter().any(|w| !w.report.unchanged) {
        writeln!(out, "Undo with: guestwall undo {}", target)?;
    }
    Ok(())
}

/// A plan for a running machine known from a capture, which guestwall cannot write to: the
/// diagnosis before, the changes, the commands that make them on the VM (`kind`: netsh or
/// PowerShell) and the diagnosis predicted afterwards.
pub fn write_console_plan(
    plan: &Plan,
    kind: &crate::ScriptKind,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    for d in &plan.before {
        writeln!(out, "Before: {}: {}", d.label, summary(d))?;
    }
    crate::write_plan(plan, out)?;
    if !plan.changes.is_empty() {
        writeln!(
            out,
            "Dry run on a capture: nothing is written. Run these on the VM ({}):",
            match kind {
                crate::ScriptKind::PowerShell =>
                    "a PowerShell prompt, or Run Command's RunPowerShellScript",
                _ => "the serial console's cmd channel; for Run Command, --powershell",
            }
        )?;
        for line in crate::script(plan, kind).lines() {
            writeln!(out, "  {line}")?;
        }
    }
    for d in &plan.after {
        // A capture leaves things unknown: "reachable" is as far as it shows.
        let unknown = d
            .findings
            .iter()
            .filter(|f| f.code == guestwall_firewall::codes::UNKNOWN)
            .count();
        let caveat = if d.reachable && unknown > 0 {
            format!(" (as far as the capture shows: {unknown} thing(s) it does not show, the [unknown] findings, can still keep RDP out)")
        } else {
            String::new()
        };
        writeln!(out, "Predicted: {}: {}{caveat}", d.label, summary(d))?;
    }
    Ok(())
}

/// `Domain allowed, Private allowed, Public blocked; RDP NOT reachable: <code> (<what>), …`:
/// the verdicts, and what still keeps RDP from working, by name.
pub fn summary(d: &Diagnosis) -> String {
    let v: Vec<String> = d
        .profiles
        .iter()
        .map(|p| format!("{} {}", p.profile, p.verdict.key()))
        .collect();
    if d.reachable {
        return format!("{}; RDP reachable", v.join(", "));
    }
    let mut why: Vec<String> = Vec::new();
    for g in guestwall_diagnose::grouped_causes(d) {
        if g.cause.blocks {
            let what = match &g.cause.rule_ref {
                Some(r) => r.label(),
                None => g.cause.detail.clone(),
            };
            why.push(format!(
                "{} on {} ({what})",
                g.cause.code,
                g.profiles.join("/")
            ));
        }
    }
    for c in d.findings.iter().filter(|c| c.blocks) {
        why.push(format!("{} ({})", c.code, c.detail));
    }
    if why.is_empty() {
        why.push("only some clients get through (a rule is scoped)".into());
    }
    format!("{}; RDP NOT reachable: {}", v.join(", "), why.join("; "))
}

/// Writes what an undo did.
pub fn write_undone(
    u: &UndoReport,
    dry_run: bool,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    if let Some(op) = &u.op {
        writeln!(
            out,
            "{} operation {} of {} ({}):",
            if dry_run { "Would undo" } else { "Undid" },
            op.id,
            op.time,
            op.command
        )?;
    } else if u.legacy && !u.files.is_empty() {
        writeln!(
            out,
            "No operation history beside the hives (backups of an earlier guestwall): {} the latest backup of each hive.",
            if dry_run { "would restore" } else { "restored" }
        )?;
    }
    for r in &u.files {
        match &r.backup {
            None => writeln!(out, "  no guestwall backup of {}", r.path.display())?,
            Some(b) if r.unchanged => writeln!(
                out,
                "  {} already equals its backup {}; nothing to restore",
                r.path.display(),
                b.display()
            )?,
            Some(b) if dry_run => {
                writeln!(
                    out,
                    "  would restore {} from {}",
                    r.path.display(),
                    b.display()
                )?;
                for (from, to) in &r.logs_restored {
                    writeln!(
                        out,
                        "    would move log back: {} -> {}",
                        from.display(),
                        to.display()
                    )?;
                }
            }
            Some(b) => {
                writeln!(out, "  restored {} from {}", r.path.display(), b.display())?;
                if let Some(k) = &r.replaced_kept_as {
                    writeln!(out, "    the replaced file is kept as {}", k.display())?;
                }
                if let Some(k) = &r.backup_kept_as {
                    writeln!(out, "    the backup is kept as {}", k.display())?;
                }
                for (from, to) in &r.logs_restored {
                    writeln!(
                        out,
                        "    log moved back: {} -> {}",
                        from.display(),
                        to.display()
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// Writes the operation history, newest first, marking the one `undo` would revert.
pub fn write_history(ops: &[OpRecord], out: &mut dyn std::io::Write) -> std::io::Result<()> {
    if ops.is_empty() {
        return writeln!(out, "No guestwall operations recorded for these hives.");
    }
    let next = ops.iter().rposition(|o| o.undone.is_none());
    for (i, op) in ops.iter().enumerate().rev() {
        let state = match (&op.undone, Some(i) == next) {
            (Some(t), _) => format!("undone at {t}"),
            (None, true) => "next to undo".to_string(),
            (None, false) => "in effect".to_string(),
        };
        writeln!(
            out,
            "{}  {}  [{state}]
  {}",
            op.time, op.id, op.command
        )?;
        for f in &op.files {
            let gone = if f.backup.exists() {
                ""
            } else {
                ", no longer there (used by an undo, or removed)"
            };
            writeln!(
                out,
                "  - {}  (backup {}{gone})",
                f.path.display(),
                f.backup.display()
            )?;
        }
    }
    Ok(())
}
