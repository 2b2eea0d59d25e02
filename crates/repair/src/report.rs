//! The JSON reports of `fix`, `undo` and `undo --list`, derived with serde from view structs
//! over the results (`docs/json.md` describes them). Paths are shown as `Path::display` shows
//! them, so that a path that is not UTF-8 still prints.

use std::path::{Path, PathBuf};

use serde::{Serialize, Serializer};

use guestwall_regf::save::{OpFile, OpRecord, RestoreReport, UndoReport};

use crate::apply::{Fixed, HiveWrite};
use crate::{Change, Unresolved};

fn path_str<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&p.display())
}

fn opt_path_str<S: Serializer>(p: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => s.collect_str(&p.display()),
        None => s.serialize_none(),
    }
}

fn path_pairs<S: Serializer>(v: &[(PathBuf, PathBuf)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for (a, b) in v {
        seq.serialize_element(&[a.display().to_string(), b.display().to_string()])?;
    }
    seq.end()
}

/// A hive written by a fix.
#[derive(Serialize)]
struct WriteJson<'a> {
    hive: guestwall_firewall::HiveKind,
    #[serde(serialize_with = "path_str")]
    path: &'a Path,
    #[serde(serialize_with = "opt_path_str")]
    real_path: &'a Option<PathBuf>,
    #[serde(serialize_with = "opt_path_str")]
    backup: &'a Option<PathBuf>,
    #[serde(serialize_with = "path_pairs")]
    logs_moved: &'a [(PathBuf, PathBuf)],
    verified_keys: u64,
    verified_values: u64,
}

impl<'a> WriteJson<'a> {
    fn of(w: &'a HiveWrite) -> WriteJson<'a> {
        WriteJson {
            hive: w.hive,
            path: &w.path,
            real_path: &w.report.real_path,
            backup: &w.report.backup,
            logs_moved: &w.report.logs_moved,
            verified_keys: w.report.verified_keys,
            verified_values: w.report.verified_values,
        }
    }
}

/// What a fix did.
#[derive(Serialize)]
struct FixedJson<'a> {
    schema: u32,
    target: &'a str,
    reachable: bool,
    dry_run: bool,
    changes: &'a [Change],
    unresolved: &'a [Unresolved],
    warnings: &'a [String],
    writes: Vec<WriteJson<'a>>,
    before: serde_json::Value,
    after: serde_json::Value,
}

/// What a fix did, as JSON (`docs/json.md`): the plan's changes and unresolved causes, the
/// writes, and the diagnoses before and after.
pub fn fixed_json(f: &Fixed, target: &str) -> serde_json::Value {
    let view = FixedJson {
        schema: guestwall_diagnose::JSON_SCHEMA,
        target,
        reachable: f.reachable(),
        dry_run: f.dry_run,
        changes: &f.plan.changes,
        unresolved: &f.plan.unresolved,
        warnings: &f.plan.warnings,
        writes: f
            .writes
            .iter()
            .filter(|w| !f.dry_run && !w.report.unchanged)
            .map(WriteJson::of)
            .collect(),
        before: guestwall_diagnose::to_json(&f.plan.before, target),
        after: guestwall_diagnose::to_json(&f.after, target),
    };
    serde_json::to_value(view).unwrap_or_default()
}

/// A file of a recorded operation.
#[derive(Serialize)]
struct OpFileJson<'a> {
    #[serde(serialize_with = "path_str")]
    path: &'a Path,
    #[serde(serialize_with = "path_str")]
    backup: &'a Path,
    backup_exists: bool,
}

/// A recorded operation.
#[derive(Serialize)]
struct OpJson<'a> {
    id: &'a str,
    time: &'a str,
    command: &'a str,
    undone_at: &'a Option<String>,
    files: Vec<OpFileJson<'a>>,
}

impl<'a> OpJson<'a> {
    fn of(o: &'a OpRecord) -> OpJson<'a> {
        OpJson {
            id: &o.id,
            time: &o.time,
            command: &o.command,
            undone_at: &o.undone,
            files: o
                .files
                .iter()
                .map(|f: &'a OpFile| OpFileJson {
                    path: &f.path,
                    backup: &f.backup,
                    backup_exists: f.backup.exists(),
                })
                .collect(),
        }
    }
}

/// A hive restored by an undo.
#[derive(Serialize)]
struct RestoredJson<'a> {
    #[serde(serialize_with = "path_str")]
    path: &'a Path,
    #[serde(serialize_with = "opt_path_str")]
    backup: &'a Option<PathBuf>,
    #[serde(serialize_with = "opt_path_str")]
    backup_kept_as: &'a Option<PathBuf>,
    #[serde(serialize_with = "opt_path_str")]
    replaced_kept_as: &'a Option<PathBuf>,
    #[serde(serialize_with = "path_pairs")]
    logs_restored: &'a [(PathBuf, PathBuf)],
    unchanged: bool,
}

impl<'a> RestoredJson<'a> {
    fn of(r: &'a RestoreReport) -> RestoredJson<'a> {
        RestoredJson {
            path: &r.path,
            backup: &r.backup,
            backup_kept_as: &r.backup_kept_as,
            replaced_kept_as: &r.replaced_kept_as,
            logs_restored: &r.logs_restored,
            unchanged: r.unchanged,
        }
    }
}

/// What an undo did.
#[derive(Serialize)]
struct UndoneJson<'a> {
    schema: u32,
    dry_run: bool,
    nothing_to_undo: bool,
    undone: Option<OpJson<'a>>,
    legacy: bool,
    restored: Vec<RestoredJson<'a>>,
}

/// What an undo did, as JSON: `schema`, `dry_run`, `nothing_to_undo`, `undone` (the
/// operation: id, time, command, files), `legacy`, and `restored` (per hive: path, backup,
/// backup_kept_as, replaced_kept_as, logs_restored, unchanged).
pub fn undone_json(u: &UndoReport, dry_run: bool) -> serde_json::Value {
    let view = UndoneJson {
        schema: guestwall_diagnose::JSON_SCHEMA,
        dry_run,
        nothing_to_undo: u.nothing(),
        undone: u.op.as_ref().map(OpJson::of),
        legacy: u.legacy,
        restored: u.files.iter().map(RestoredJson::of).collect(),
    };
    serde_json::to_value(view).unwrap_or_default()
}

/// The history.
#[derive(Serialize)]
struct HistoryJson<'a> {
    schema: u32,
    operations: Vec<OpJson<'a>>,
}

/// The operation history as JSON: `schema`, `operations` (newest first).
pub fn history_json(ops: &[OpRecord]) -> serde_json::Value {
    let view = HistoryJson {
        schema: guestwall_diagnose::JSON_SCHEMA,
        operations: ops.iter().rev().map(OpJson::of).collect(),
    };
    serde_json::to_value(view).unwrap_or_default()
}
