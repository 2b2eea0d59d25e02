//! `reg.exe` on offline hive files: `add`, `delete`, `query`, `import` and `export`.
//!
//! # Getting started
//!
//! 1. Say which hive files the registry paths refer to with [`Mounts`]: `--hive FILE` (paths
//!    relative to the hive's root) or `reg load`-style `HKLM\NAME=FILE` mounts.
//! 2. Pass the `reg.exe` arguments, as typed, to [`run`]. Its syntax is reg.exe's:
//!    `add KEY [/v NAME | /ve] [/t TYPE] [/s SEP] [/d DATA] [/f]`,
//!    `delete KEY [/v NAME | /ve | /va] [/f]`, `query KEY [/v NAME | /ve] [/s]`,
//!    `import FILE`, `export KEY FILE [/y]`. Switches may start with `/` or `-`.
//! 3. Every change is saved with [`guestwall_regf::save::edit_file`]: backup first, atomic
//!    write, verification, logs of a recovered hive moved aside.
//!
//! So the `REG DELETE` lines of Microsoft's offline mitigation run as they are:
//!
//! ```text
//! guestwall reg --load HKLM\BROKENSYSTEM=SYSTEM delete "HKLM\BROKENSYSTEM\ControlSet001\services\SharedAccess\Parameters\FirewallPolicy\DomainProfile" /v DoNotAllowExceptions /f
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod args;
mod mounts;
mod query;

use std::io::Write;
use std::path::{Path, PathBuf};

use guestwall_regf::data::{self as types};
use guestwall_regf::regfile::{parse_reg, RegEdit};
use guestwall_regf::save::{edit_file, edit_file_in, SaveOptions};
use guestwall_regf::write::{Edit, HiveMut};
use guestwall_regf::{export_reg, ExportOptions, Hive, RegEncoding};

pub use args::{parse_data, Operation};
pub use mounts::{Mount, Mounts};

/// Errors of `guestwall reg`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegError {
    /// The arguments are not valid reg.exe syntax.
    #[error("invalid syntax: {0}")]
    Usage(String),
    /// A path that no mounted hive holds.
    #[error("{0} is not under a loaded hive (use --hive FILE or --load HKLM\\NAME=FILE)")]
    NotMounted(String),
    /// The key or value does not exist (reg.exe: "unable to find the specified registry key
    /// or value").
    #[error("the system was unable to find the specified registry key or value: {0}")]
    NotFound(String),
    /// A change that needs `/f` (or a "yes" at the prompt).
    #[error("{0} No answer was given: add /f to answer yes")]
    NotConfirmed(String),
    /// The user answered no.
    #[error("the operation was cancelled")]
    Cancelled,
    /// A `.reg` file could not be parsed.
    #[error("{file}: {source}")]
    RegFile {
        /// The file.
        file: PathBuf,
        /// The error, with its line.
        source: guestwall_regf::regfile::RegFileError,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Writing the output (to the terminal or a pipe) failed.
    #[error("(output): {0}")]
    Output(#[source] std::io::Error),
    /// The hive engine refused or failed.
    #[error(transparent)]
    Hive(#[from] guestwall_regf::Error),
}

/// Result alias.
pub type Result<T, E = RegError> = std::result::Result<T, E>;

/// Asks the user to confirm a change: `Some(true)` yes, `Some(false)` no, `None` no answer.
pub type Confirm<'a> = &'a mut dyn FnMut(&str) -> Option<bool>;

/// How to run.
#[derive(Default)]
pub struct RunOptions<'a> {
    /// How changes are saved: `allow_dirty`, `dry_run`, the lock wait, and the command line
    /// recorded in the operation history.
    pub save: SaveOptions,
    /// Asks the user to confirm a change made without `/f`: `Some(true)` yes, `Some(false)`
    /// no, `None` no answer (such changes are then refused). Without it they are refused.
    pub confirm: Option<Confirm<'a>>,
    /// Told what guestwall itself has to say beside reg.exe's output (how an offline path was
    /// mapped, the hive's warnings).
    pub note: Option<&'a mut dyn FnMut(&str)>,
    /// Where the hives are read and saved when they are not plain files (a hive inside a
    /// disk image, written in place). `None`: files, saved with
    /// [`guestwall_regf::save::edit_file`].
    pub hives: Option<&'a dyn HiveStore>,
}

/// Reads and saves the hives `reg` works on, for hives that are not plain files.
pub trait HiveStore {
    /// True when `file` is one of this store's (else it is read and saved as a file).
    fn owns(&self, file: &Path) -> bool;
    /// Reads the hive (replaying its logs when it is dirty).
    fn open(&self, file: &Path) -> guestwall_regf::Result<Hive>;
    /// Applies `edits` and saves the hive; with `opts.dry_run`, only prepares and verifies.
    fn save(
        &self,
        file: &Path,
        edits: &[Edit],
        opts: &SaveOptions,
    ) -> guestwall_regf::Result<guestwall_regf::save::SaveReport>;
}

fn note(opts: &mut RunOptions<'_>, text: &str) {
    if let Some(n) = opts.note.as_mut() {
        n(text);
    }
}

/// `mounts.resolve`, with `CurrentControlSet` mapped to the control set that
/// `Select\Current` names: on a running Windows it is a link, which an offline hive does not
/// have.
fn resolve<'m>(
    mounts: &'m Mounts,
    path: &str,
    opts: &mut RunOptions<'_>,
) -> Result<(&'m Mount, String)> {
    let (m, rel) = mounts.resolve(path)?;
    let mut parts = rel.splitn(2, '\\');
    let first = parts.next().unwrap_or("");
    if !first.eq_ignore_ascii_case("CurrentControlSet") {
        return Ok((m, rel));
    }
    let rest = parts.next();
    let hive = open(opts, &m.file)?;
    let current = hive
        .find_key("Select")?
        .and_then(|k| k.value("Current").ok().flatten())
        .and_then(|v| v.data().ok())
        .and_then(|d| guestwall_regf::dword(&d));
    let Some(n) = current else {
        return Err(RegError::NotFound(format!(
            "{path} (CurrentControlSet exists only on a running Windows, and this hive has no Select\\Current to map it)"
        )));
    };
    let cs = format!("ControlSet{n:03}");
    note(
        opts,
        &format!("CurrentControlSet is a link that exists only on a running Windows; in {} it is {cs} (Select\\Current = {n})", m.file.display()),
    );
    Ok((
        m,
        match rest {
            Some(r) => format!("{cs}\\{r}"),
            None => cs,
        },
    ))
}

fn io(e: std::io::Error) -> RegError {
    RegError::Output(e)
}

fn confirm(opts: &mut RunOptions<'_>, forced: bool, question: &str) -> Result<()> {
    if forced {
        return Ok(());
    }
    match opts.confirm.as_mut().and_then(|ask| ask(question)) {
        Some(true) => Ok(()),
        Some(false) => Err(RegError::Cancelled),
        None => Err(RegError::NotConfirmed(question.to_string())),
    }
}

/// Runs one reg.exe command line (`args` without the leading `reg`). Writes reg.exe's output
/// and the save reports to `out`.
pub fn run(
    args: &[String],
    mounts: &Mounts,
    mut opts: RunOptions<'_>,
    out: &mut dyn Write,
) -> Result<()> {
    let op = Operation::parse(args)?;
    match op {
        Operation::Query {
            key,
            value,
            recurse,
        } => {
            let (m, rel) = resolve(mounts, &key, &mut opts)?;
            let hive = open(&opts, &m.file)?;
            for w in hive.warnings() {
                note(&mut opts, &format!("{}: {w}", m.file.display()));
            }
            query::query(
                &hive,
                &rel,
                &m.display,
                value.as_ref().map(|v| v.as_deref().unwrap_or("")),
                recurse,
                out,
            )
        }
        Operation::Export {
            key,
            file,
            overwrite,
        } => {
            let (m, rel) = resolve(mounts, &key, &mut opts)?;
            let hive = open(&opts, &m.file)?;
            for w in hive.warnings() {
                note(&mut opts, &format!("{}: {w}", m.file.display()));
            }
            if file.exists() {
                confirm(
                    &mut opts,
                    overwrite,
                    &format!("File {} already exists. Overwrite?", file.display()),
                )?;
            }
            let f = std::fs::File::create(&file).map_err(|source| RegError::Io {
                path: file.clone(),
                source,
            })?;
            let opts = ExportOptions {
                root_prefix: m.display.clone(),
                encoding: RegEncoding::Utf16,
            };
            export_reg(&hive, &rel, &opts, f).map_err(|e| match e {
                guestwall_regf::Error::KeyNotFound { .. } => RegError::NotFound(key.clone()),
                e => e.into(),
            })?;
            writeln!(out, "The operation completed successfully.").map_err(io)
        }
        Operation::Add {
            key,
            value,
            data_type,
            separator,
            data,
            force,
        } => {
            let (m, rel) = resolve(mounts, &key, &mut opts)?;
            let mut edits = vec![Edit::CreateKey { key: rel.clone() }];
            if let Some(name) = value {
                let bytes = parse_data(
                    data_type,
                    data.as_deref().unwrap_or(""),
                    separator.as_deref(),
                )?;
                let hive = open(&opts, &m.file)?;
                let exists = hive
                    .find_key(&rel)?
                    .map(|k| k.value(&name))
                    .transpose()?
                    .flatten()
                    .is_some();
                if exists {
                    let shown = if name.is_empty() { "(Default)" } else { &name };
                    confirm(
                        &mut opts,
                        force,
                        &format!("Value {shown} exists, overwrite?"),
                    )?;
                }
                edits.push(Edit::SetValue {
                    key: rel,
                    name,
                    data_type,
                    data: bytes,
                });
            }
            save(&m.file, &edits, &opts, out)
        }
        Operation::Delete { key, target, force } => {
            let (m, rel) = resolve(mounts, &key, &mut opts)?;
            let hive = open(&opts, &m.file)?;
            let Some(k) = hive.find_key(&rel)? else {
                return Err(RegError::NotFound(key));
            };
            let edits = match &target {
                args::DeleteTarget::Key => {
                    if args::is_root(&rel) {
                        return Err(RegError::Usage(
                            "the root key of a hive cannot be deleted".into(),
                        ));
                    }
                    confirm(
                        &mut opts,
                        force,
                        &format!("Permanently delete the registry key {key}?"),
                    )?;
                    vec![Edit::DeleteKey { key: rel }]
                }
                args::DeleteTarget::Value(name) => {
                    if k.value(name)?.is_none() {
                        return Err(RegError::NotFound(format!("{key} /v {name}")));
                    }
                    let shown = if name.is_empty() { "(Default)" } else { name };
                    confirm(
                        &mut opts,
                        force,
                        &format!("Delete the registry value {shown}?"),
                    )?;
                    vec![Edit::DeleteValue {
                        key: rel,
                        name: name.clone(),
                    }]
                }
                args::DeleteTarget::AllValues => {
                    confirm(
                        &mut opts,
                        force,
                        &format!("Delete all values under the registry key {key}?"),
                    )?;
                    k.values()?
                        .iter()
                        .map(|v| Edit::DeleteValue {
                            key: rel.clone(),
                            name: v.name().to_string_lossy(),
                        })
                        .collect()
                }
            };
            drop(hive);
            save(&m.file, &edits, &opts, out)
        }
        Operation::Import { file } => {
            let bytes = std::fs::read(&file).map_err(|source| RegError::Io {
                path: file.clone(),
                source,
            })?;
            let ops = parse_reg(&bytes).map_err(|source| RegError::RegFile {
                file: file.clone(),
                source,
            })?;
            import(&ops, mounts, &mut opts, out)
        }
    }
}

fn open(opts: &RunOptions<'_>, file: &Path) -> Result<Hive> {
    let hive = match opts.hives.filter(|h| h.owns(file)) {
        Some(h) => h.open(file)?,
        None => Hive::open(file)?,
    };
    Ok(hive)
}

fn save(file: &Path, edits: &[Edit], opts: &RunOptions<'_>, out: &mut dyn Write) -> Result<()> {
    let report = match opts.hives.filter(|h| h.owns(file)) {
        Some(h) => h.save(file, edits, &opts.save)?,
        None => edit_file(file, edits, &opts.save)?,
    };
    writeln!(out, "The operation completed successfully.").map_err(io)?;
    report
        .write_text("", file, edits.len(), opts.save.dry_run, out)
        .map_err(io)
}

/// Applies a parsed `.reg` file: each key and value to the hive mounted under its path. As in
/// regedit, deleting a key or value that does not exist is not an error. Every edit is first
/// applied to an in-memory copy of its hive, in order, so that deletes are decided against
/// the content as it evolves and an edit that fails stops the import before anything is
/// written.
pub fn import(
    edits: &[RegEdit],
    mounts: &Mounts,
    opts: &mut RunOptions<'_>,
    out: &mut dyn Write,
) -> Result<()> {
    // The edits per hive file, in order, with the hive as they leave it.
    let mut per_file: Vec<(PathBuf, HiveMut, Vec<Edit>)> = Vec::new();
    for RegEdit { edit, .. } in edits {
        let (m, rel) = resolve(mounts, edit.key(), opts)?;
        let idx = match per_file.iter().position(|(f, _, _)| *f == m.file) {
            Some(i) => i,
            None => {
                let hive = open(opts, &m.file)?;
                // Every value must read, so that no hive is written when a later one fails.
                hive.walk(hive.root()?, "", |_, key| {
                    for v in key.values()? {
                        v.data()?;
                    }
                    Ok(())
                })?;
                per_file.push((m.file.clone(), HiveMut::new(&hive)?, Vec::new()));
                per_file.len() - 1
            }
        };
        let (_, now, kept) = &mut per_file[idx];
        let keep = match edit {
            Edit::DeleteKey { .. } => !args::is_root(&rel) && now.hive().find_key(&rel)?.is_some(),
            Edit::DeleteValue { name, .. } => now
                .hive()
                .find_key(&rel)?
                .map(|k| k.value(name))
                .transpose()?
                .flatten()
                .is_some(),
            Edit::CreateKey { .. } | Edit::SetValue { .. } => true,
        };
        if keep {
            let e = edit.clone().with_key(rel);
            now.apply(&e)?;
            kept.push(e);
        }
    }
    // One operation in the history, so that `guestwall undo` reverts the whole import.
    let mut op = guestwall_regf::save::Operation::new(
        opts.save
            .command
            .clone()
            .unwrap_or_else(|| "guestwall reg import".into()),
    );
    for (file, _, edits) in &per_file {
        let report = match opts.hives.filter(|h| h.owns(file)) {
            Some(h) => h.save(file, edits, &opts.save)?,
            None => edit_file_in(&mut op, file, edits, &opts.save)?,
        };
        report
            .write_text("", file, edits.len(), opts.save.dry_run, out)
            .map_err(io)?;
    }
    writeln!(out, "The operation completed successfully.").map_err(io)
}

/// The REG_* name reg.exe prints for a type.
pub fn reg_type_name(t: u32) -> String {
    types::type_name(t).map_or_else(|| format!("REG_UNKNOWN_{t:#x}"), str::to_string)
}
