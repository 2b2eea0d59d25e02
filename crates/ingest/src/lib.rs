//! From a Windows machine's registry to the firewall model and the RDP facts.
//!
//! # Getting started
//!
//! 1. [`locate`] finds the hives: a SYSTEM hive file (with SOFTWARE beside it, found
//!    case-insensitively), or a Windows folder (a mounted OS volume or its
//!    `Windows\System32\config`).
//! 2. [`load`] reads them into one [`MachineConfig`] per control set that matters
//!    (`Select\Current`, and `Select\Default` when it differs).
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

mod locate;
mod read;

use std::path::{Path, PathBuf};

use guestwall_firewall::codes;
use guestwall_firewall::{MachineConfig, Note};
use guestwall_regf::Hive;

pub use guestwall_firewall::FIREWALL_POLICY;
pub use locate::{find_ci, locate, Target};
pub use read::{GP_FIREWALL, GP_TERMINAL_SERVICES};

use read::{dword, hive_identity, read_control_set, read_software, HiveIdentity};

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
    /// The file is a registry hive, but not the one needed.
    #[error("{} is not a {wanted} hive: it looks like {looks_like}. {hint}", path.display())]
    WrongHive {
        /// The file.
        path: PathBuf,
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
    /// A hive could not be read.
    #[error("{}", path.display())]
    Hive {
        /// The hive file.
        path: PathBuf,
        /// The error.
        #[source]
        source: guestwall_regf::Error,
    },
}

/// Result alias.
pub type Result<T, E = IngestError> = std::result::Result<T, E>;
fn hive_err(path: &Path) -> impl Fn(guestwall_regf::Error) -> IngestError + '_ {
    move |source| IngestError::Hive {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads the machine: one [`MachineConfig`] for `Select\Current`, and one for
/// `Select\Default` when it names another control set.
/// The notes a hive's opening gives: its warnings, with a code of their own for a partial log
/// recovery.
fn hive_notes(path: &Path, hive: &Hive, notes: &mut Vec<Note>) {
    for w in hive.warnings() {
        let code = if hive.recovery().partial.is_some() && w.contains("only in part") {
            codes::LOGS_PARTLY_APPLIED
        } else {
            codes::INPUT_NOTE
        };
        notes.push(Note {
            code,
            text: format!("{}: {w}", path.display()),
        });
    }
    if hive.recovery().applied() && hive.recovery().partial.is_none() {
        notes.push(Note::input(format!(
            "{}: the hive was dirty; its transaction logs were replayed in memory",
            path.display()
        )));
    }
}

/// Reads the machine: one [`MachineConfig`] for `Select\Current`, and one for
/// `Select\Default` when it names another control set. A SYSTEM path that holds another hive
/// (NTUSER.DAT, SOFTWARE, …) is an error that says what it is; so is a `--software` file that
/// cannot be read or is not SOFTWARE. A SOFTWARE found beside SYSTEM that cannot be read is a
/// note.
pub fn load(target: &Target) -> Result<Vec<MachineConfig>> {
    let system = Hive::open(&target.system).map_err(hive_err(&target.system))?;
    let wrong = |looks_like: String| IngestError::WrongHive {
        path: target.system.clone(),
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
    hive_notes(&target.system, &system, &mut notes);
    let software = match &target.software {
        Some(p) => match Hive::open(p) {
            Ok(h) => {
                let looks_like = match hive_identity(&h) {
                    HiveIdentity::Software => None,
                    HiveIdentity::System => Some("SYSTEM (it has ControlSet keys)".to_string()),
                    HiveIdentity::Other(s) => Some(s),
                };
                if let Some(looks_like) = looks_like {
                    let wrong = IngestError::WrongHive {
                        path: p.clone(),
                        wanted: "SOFTWARE",
                        looks_like,
                        hint: "Give the SOFTWARE hive (Windows/System32/config/SOFTWARE) with --software, or leave it out",
                    };
                    if target.software_given {
                        return Err(wrong);
                    }
                    notes.push(Note::input(format!("{wrong}; it was not read, so the Group Policy store and the OS version are unknown")));
                    None
                } else {
                    hive_notes(p, &h, &mut notes);
                    Some(read_software(&h))
                }
            }
            Err(e) if target.software_given => return Err(hive_err(p)(e)),
            Err(e) => {
                notes.push(Note::input(format!(
                    "{}: not read ({}); the Group Policy store and the OS version are unknown",
                    p.display(),
                    guestwall_regf::error_chain(&e)
                )));
                None
            }
        },
        None => {
            notes.push(Note::input("no SOFTWARE hive beside SYSTEM: the Group Policy store and the OS version are unknown (pass --software FILE)"));
            None
        }
    };

    let select = system
        .find_key("Select")
        .map_err(hive_err(&target.system))?;
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
        if system
            .find_key(&cs)
            .map_err(hive_err(&target.system))?
            .is_none()
        {
            return Err(IngestError::NotFound {
                path: target.system.clone(),
                reason: format!("{why} names {cs}, which does not exist"),
            });
        }
        let mut cfg = read_control_set(
            &system,
            &cs,
            &why,
            format!("{}: {cs} ({why})", target.system.display()),
            software.as_ref(),
        );
        cfg.notes = notes.clone();
        out.push(cfg);
    }
    Ok(out)
}
