//! From a Windows machine's registry to the firewall model and the RDP facts.
//!
//! # Getting started
//!
//! 1. [`locate`] finds the hives: a SYSTEM hive file (with SOFTWARE beside it, found
//!    case-insensitively), or a Windows folder (a mounted OS volume or its
//!    `Windows\System32\config`).
//! 2. [`load`] reads them into one [`MachineConfig`] per control set that matters
//!    (`Select\Current`, and `Select\Default` when it differs). [`load_sources`] does the
//!    same for hives from any [`HiveSource`] (a file inside a disk image, bytes in memory).
//!
//! The two steps are the modules `locate` (what the target is) and `read` (hives → model:
//! every setting and rule with its typed [`guestwall_firewall::Origin`]).
//!
//! A capture of a running machine (console text, Run Command output, the collector's block)
//! is the third kind of target: [`capture::load_capture`] turns a parsed
//! [`guestwall_capture::Capture`] into the same model, reading its registry values with the
//! same code as hives.
//!
//! What is read, from SYSTEM (per control set): the local firewall store
//! (`Services\SharedAccess\Parameters\FirewallPolicy`: profiles, `FirewallRules`,
//! `Mdm\FirewallRules`, `RestrictedServices`, `ConSecRules`), `Control\Terminal Server`
//! (`fDenyTSConnections`, `WinStations\RDP-Tcp\PortNumber`) and the `Start` of MpsSvc, BFE and
//! TermService. From SOFTWARE, when present: `Policies\Microsoft\WindowsFirewall` (the Group
//! Policy store), the policy copy of `fDenyTSConnections`, `NetworkList\Profiles` (a hint of
//! the active profile) and `CurrentVersion` (the OS build).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod capture;
pub mod image;
mod language;
mod locate;
mod read;
mod view;

use std::path::{Path, PathBuf};

use guestwall_firewall::codes;
use guestwall_firewall::{MachineConfig, Note};
use guestwall_regf::{Hive, HiveFile, HiveSource, Location};

pub use guestwall_firewall::FIREWALL_POLICY;
pub use locate::{find_ci, locate, locate_with, Target};
pub use read::{GP_FIREWALL, GP_TERMINAL_SERVICES};

use read::{
    check_subtree, dword, hive_identity, read_control_set, read_software, system_subtrees,
    HiveIdentity, SOFTWARE_SUBTREES,
};

/// Errors while finding or reading the hives.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The target is neither a hive file nor a Windows folder.
    #[error("{}: {reason}", path.display())]
    NotFound {
        /// What was given.
        path: PathBuf,
        /// Why it does not do.
        reason: String,
    },
    /// A disk image could not be read, or holds no (single) Windows installation.
    #[error("{} is {what}: {reason}", path.display())]
    Image {
        /// The image.
        path: PathBuf,
        /// What the container is (`a VHDX disk image`).
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A key the diagnosis reads is damaged: reading on would leave part of the firewall out
    /// of the model and give a verdict that looks sure but is not.
    #[error("{location}: the hive is damaged at {key}, which the diagnosis needs, so guestwall gives no verdict rather than a wrong one (`guestwall hive info` says more; `guestwall undo` if guestwall changed it)")]
    Damaged {
        /// The hive.
        location: Location,
        /// The key that cannot be read.
        key: String,
        /// Why.
        #[source]
        source: Box<guestwall_regf::Error>,
    },
    /// A hive lacks what it must have (the control set `Select` names).
    #[error("{location}: {reason}")]
    Incomplete {
        /// The hive.
        location: Location,
        /// What is missing.
        reason: String,
    },
    /// The file is a registry hive, but not the one needed.
    #[error("{location} is not a {wanted} hive: it looks like {looks_like}. {hint}")]
    WrongHive {
        /// The hive.
        location: Location,
        /// SYSTEM or SOFTWARE.
        wanted: &'static str,
        /// What it seems to be, and why.
        looks_like: String,
        /// What to give instead.
        hint: &'static str,
    },
    /// The file is a disk image, not a hive.
    #[error("{} is {what}, not a registry hive. {hint}", path.display())]
    DiskImage {
        /// The file.
        path: PathBuf,
        /// Which kind of image.
        what: &'static str,
        /// What to do.
        hint: &'static str,
    },
    /// A capture (text from a running machine) holds nothing guestwall can read.
    #[error("{name}: {reason}")]
    Capture {
        /// The capture's name (`-` for standard input).
        name: String,
        /// Why it does not do.
        reason: String,
    },
    /// A hive could not be read.
    #[error("{location}")]
    Hive {
        /// The hive.
        location: Location,
        /// The error.
        #[source]
        source: Box<guestwall_regf::Error>,
    },
}

/// Result alias.
pub type Result<T, E = IngestError> = std::result::Result<T, E>;
/// A key the diagnosis reads cannot be read: the hive is damaged there.
fn damaged(location: &Location, hive: &str, at: &str, e: guestwall_regf::Error) -> IngestError {
    IngestError::Damaged {
        location: location.clone(),
        key: format!("{hive}\\{at}"),
        source: Box::new(e),
    }
}

fn hive_err(location: &Location) -> impl Fn(guestwall_regf::Error) -> IngestError + '_ {
    move |source| IngestError::Hive {
        location: location.clone(),
        source: Box::new(source),
    }
}

/// The notes a hive's opening gives: its warnings, with a code of their own for a partial log
/// recovery.
fn hive_notes(location: &Location, hive: &Hive, notes: &mut Vec<Note>) {
    for w in hive.warnings() {
        let code = if hive.recovery().partial.is_some() && w.contains("only in part") {
            codes::LOGS_PARTLY_APPLIED
        } else {
            codes::INPUT_NOTE
        };
        notes.push(Note {
            code,
            text: format!("{location}: {w}"),
        });
    }
    if hive.recovery().applied() && hive.recovery().partial.is_none() {
        notes.push(Note::input(format!(
            "{location}: the hive was dirty; its transaction logs were replayed in memory"
        )));
    }
}

/// Reads the machine: one [`MachineConfig`] for `Select\Current`, and one for
/// `Select\Default` when it names another control set. A SYSTEM path that holds another hive
/// (NTUSER.DAT, SOFTWARE, …) is an error that says what it is; so is a `--software` file that
/// cannot be read or is not SOFTWARE. A SOFTWARE found beside SYSTEM that cannot be read is a
/// note.
pub fn load(target: &Target) -> Result<Vec<MachineConfig>> {
    if let Some(img) = &target.image {
        let win = image::open_windows(img)?;
        let read = |rel: &str| image::read_windows_file(img, &win, rel);
        let mut configs = load_sources(&Sources {
            system: &win.system,
            software: win.software.as_ref().map(|s| s as &dyn HiveSource),
            software_given: false,
            in_image: true,
            files: Some(&read),
        })?;
        for c in &mut configs {
            c.notes
                .extend(win.notes.iter().map(|n| Note::input(n.clone())));
        }
        return Ok(configs);
    }
    let system = HiveFile::new(&target.system);
    let software = target.software.as_ref().map(HiveFile::new);
    let read = |rel: &str| windows_file(&target.system, rel);
    load_sources(&Sources {
        system: &system,
        software: software.as_ref().map(|s| s as &dyn HiveSource),
        software_given: target.software_given,
        in_image: false,
        files: Some(&read),
    })
}

/// A file of the installation that holds the SYSTEM hive at `system`
/// (`…/Windows/System32/config/SYSTEM`), by its path below the Windows folder, found
/// case-insensitively; `None` when SYSTEM is not inside a Windows folder or the file is absent.
fn windows_file(system: &Path, rel: &str) -> Option<(String, Vec<u8>)> {
    let config = system.parent()?;
    let system32 = config.parent()?;
    let windows = system32.parent()?;
    if !config.file_name()?.eq_ignore_ascii_case("config")
        || !system32.file_name()?.eq_ignore_ascii_case("system32")
    {
        return None;
    }
    let mut p = windows.to_path_buf();
    for part in rel.split('/') {
        p = locate::find_ci(&p, part)?;
    }
    let mut bytes = Vec::new();
    // At most 16 MiB and a byte: a larger file is not a language file, and says so.
    std::io::Read::read_to_end(
        &mut std::io::Read::take(std::fs::File::open(&p).ok()?, (16 << 20) + 1),
        &mut bytes,
    )
    .ok()?;
    Some((p.display().to_string(), bytes))
}

/// The hives of a machine, wherever their bytes are (files, memory, files inside a disk
/// image): what [`load_sources`] reads.
pub struct Sources<'a> {
    /// SYSTEM.
    pub system: &'a dyn HiveSource,
    /// SOFTWARE, when there is one.
    pub software: Option<&'a dyn HiveSource>,
    /// SOFTWARE was named by the user: reading it must succeed.
    pub software_given: bool,
    /// The hives are inside a disk image (notes say so instead of pointing to `--software`).
    pub in_image: bool,
    /// Reads the installation's other files (its language file), when the target has them.
    pub files: Option<language::FileReader<'a>>,
}

/// [`load`] for hives from any [`HiveSource`]: messages and labels name each source's
/// [`Location`].
pub fn load_sources(src: &Sources<'_>) -> Result<Vec<MachineConfig>> {
    let sys_at = src.system.location();
    let system = Hive::open_lazy(src.system).map_err(hive_err(&sys_at))?;
    let wrong = |looks_like: String| IngestError::WrongHive {
        location: sys_at.clone(),
        wanted: "SYSTEM",
        looks_like,
        hint: "Give the SYSTEM hive (Windows/System32/config/SYSTEM) or the Windows folder",
    };
    match hive_identity(&system) {
        HiveIdentity::System => {}
        HiveIdentity::Software => {
            return Err(wrong(
                "SOFTWARE (the machine's software hive: it has Microsoft or Policies at its root)"
                    .into(),
            ))
        }
        HiveIdentity::Other(s) => return Err(wrong(s)),
    }
    let mut notes: Vec<Note> = Vec::new();
    // What was read of hives read lazily, for a note once they have been read.
    let mut lazy: Vec<String> = Vec::new();
    hive_notes(&sys_at, &system, &mut notes);
    let software = match src.software {
        Some(sw) => match Hive::open_lazy(sw) {
            Ok(h) => {
                let looks_like = match hive_identity(&h) {
                    HiveIdentity::Software => None,
                    HiveIdentity::System => Some("SYSTEM (it has ControlSet keys)".to_string()),
                    HiveIdentity::Other(s) => Some(s),
                };
                if let Some(looks_like) = looks_like {
                    let p = sw.location();
                    let wrong = IngestError::WrongHive {
                        location: p.clone(),
                        wanted: "SOFTWARE",
                        looks_like,
                        hint: "Give the SOFTWARE hive (Windows/System32/config/SOFTWARE) with --software, or leave it out",
                    };
                    if src.software_given {
                        return Err(wrong);
                    }
                    notes.push(Note::input(format!("{wrong}; it was not read, so the Group Policy store and the OS version are unknown")));
                    None
                } else {
                    hive_notes(&sw.location(), &h, &mut notes);
                    for t in SOFTWARE_SUBTREES {
                        check_subtree(&h, t)
                            .map_err(|(at, e)| damaged(&sw.location(), "SOFTWARE", &at, e))?;
                    }
                    let facts = read_software(&h);
                    lazy.extend(lazy_part("SOFTWARE", &h));
                    Some(facts)
                }
            }
            Err(e) if src.software_given => return Err(hive_err(&sw.location())(e)),
            Err(e) => {
                notes.push(Note::input(format!(
                    "{}: not read ({}); the Group Policy store and the OS version are unknown",
                    sw.location(),
                    guestwall_regf::error_chain(&e)
                )));
                None
            }
        },
        None if src.in_image => {
            notes.push(Note::input("no SOFTWARE hive in the image's System32\\config: the Group Policy store and the OS version are unknown"));
            None
        }
        None => {
            notes.push(Note::input("no SOFTWARE hive beside SYSTEM: the Group Policy store and the OS version are unknown (pass --software FILE)"));
            None
        }
    };

    let select = system.find_key("Select").map_err(hive_err(&sys_at))?;
    let current = select.as_ref().and_then(|k| dword(k, "Current"));
    let default = select.as_ref().and_then(|k| dword(k, "Default"));
    let mut sets: Vec<(u32, String)> = Vec::new();
    match current {
        Some(c) => {
            let both = default == Some(c);
            sets.push((
                c,
                if both {
                    "Select\\Current and Select\\Default".into()
                } else {
                    "Select\\Current".into()
                },
            ));
            if let Some(d) = default.filter(|d| *d != c) {
                sets.push((d, "Select\\Default, the next boot".into()));
                notes.push(Note {
                    code: codes::CONTROL_SET_MISMATCH,
                    text: format!(
                        "Select\\Current is {c} but Select\\Default is {d}: the next boot loads ControlSet{d:03}, so both are diagnosed"
                    ),
                });
            }
        }
        None => {
            notes.push(Note::input(
                "no Select\\Current in SYSTEM; ControlSet001 is assumed",
            ));
            sets.push((1, "assumed".into()));
        }
    }

    let mut out = Vec::new();
    for (n, why) in sets {
        let cs = format!("ControlSet{n:03}");
        if system.find_key(&cs).map_err(hive_err(&sys_at))?.is_none() {
            return Err(IngestError::Incomplete {
                location: sys_at.clone(),
                reason: format!("{why} names {cs}, which does not exist"),
            });
        }
        for t in system_subtrees(&cs) {
            check_subtree(&system, &t).map_err(|(at, e)| damaged(&sys_at, "SYSTEM", &at, e))?;
        }
        let mut cfg = read_control_set(
            &system,
            &cs,
            &why,
            format!("{sys_at}: {cs} ({why})"),
            software.as_ref(),
        );
        cfg.notes = notes.clone();
        language::localize(&mut cfg, &system, src.files);
        out.push(cfg);
    }
    lazy.splice(0..0, lazy_part("SYSTEM", &system));
    if !lazy.is_empty() {
        let note = Note::input(format!(
            "read lazily, only what the diagnosis needs: {}; every bin read was checked, damage elsewhere is not seen (`guestwall hive info IMAGE::PATH` reads and checks a hive whole)",
            lazy.join(", ")
        ));
        for cfg in &mut out {
            cfg.notes.push(note.clone());
        }
    }
    Ok(out)
}

/// For a hive read lazily (inside a disk image): how much of it was read.
fn lazy_part(name: &str, hive: &Hive) -> Option<String> {
    let (bins, bytes) = hive.lazy_read()?;
    let total = u64::from(hive.base_block().hbins_size);
    Some(format!(
        "{name} {bins} bins ({} KiB of {:.1} MiB)",
        bytes.div_ceil(1024),
        total as f64 / f64::from(1u32 << 20)
    ))
}
