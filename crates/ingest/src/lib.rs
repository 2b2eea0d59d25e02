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

use std::path::{Path, PathBuf};

use guestwall_diagnose::{codes, MachineConfig, NetworkHint, Note, ServiceStart};
use guestwall_firewall::{
    ConSecRule, Os, Policy, Profile, Rule, Setting, Store, StoreProfile, StoreSettings,
    StoredConSec, StoredRule,
};
use guestwall_regf::data::{REG_EXPAND_SZ, REG_MULTI_SZ, REG_SZ};
use guestwall_regf::{Hive, Key, RegData};

/// The local firewall store under a control set.
pub const FIREWALL_POLICY: &str = "Services\\SharedAccess\\Parameters\\FirewallPolicy";
/// The Group Policy firewall store in SOFTWARE.
pub const GP_FIREWALL: &str = "Policies\\Microsoft\\WindowsFirewall";
/// The Group Policy Terminal Services key in SOFTWARE.
pub const GP_TERMINAL_SERVICES: &str = "Policies\\Microsoft\\Windows NT\\Terminal Services";

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

/// The hive files of a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The SYSTEM hive.
    pub system: PathBuf,
    /// The SOFTWARE hive, when there is one.
    pub software: Option<PathBuf>,
    /// SOFTWARE was named by the user (`--software`): reading it must succeed.
    pub software_given: bool,
}

/// The entry of `dir` named `name`, compared case-insensitively (Windows volumes mounted on
/// Linux keep Windows' case).
pub fn find_ci(dir: &Path, name: &str) -> Option<PathBuf> {
    let exact = dir.join(name);
    if exact.exists() {
        return Some(exact);
    }
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .find(|e| e.file_name().to_string_lossy().eq_ignore_ascii_case(name))
        .map(|e| e.path())
}

/// Finds the hives: `target` is a SYSTEM hive file, a folder holding SYSTEM (the config
/// folder), `System32`, a `Windows` folder, or a Windows volume. `software` overrides where
/// SOFTWARE is; it must exist. A disk image is recognised by its content and refused with
/// what to do.
pub fn locate(target: &Path, software: Option<&Path>) -> Result<Target> {
    let not_found = |reason: &str| IngestError::NotFound {
        path: target.to_path_buf(),
        reason: reason.to_string(),
    };
    let system = if target.is_dir() {
        let config = [
            &["SYSTEM"][..],
            &["config", "SYSTEM"][..],
            &["System32", "config", "SYSTEM"][..],
            &["Windows", "System32", "config", "SYSTEM"][..],
        ]
        .iter()
        .find_map(|parts| {
            let mut p = target.to_path_buf();
            for part in *parts {
                p = find_ci(&p, part)?;
            }
            p.is_file().then_some(p)
        });
        config.ok_or_else(|| {
            not_found("no SYSTEM hive in it, nor in config, System32\\config or Windows\\System32\\config below it")
        })?
    } else if target.exists() {
        plain_file(target)?;
        sniff(target)?;
        target.to_path_buf()
    } else {
        return Err(not_found("no such file or folder"));
    };
    let given = software.is_some();
    let software = match software {
        Some(s) if s.is_file() => {
            plain_file(s)?;
            sniff(s)?;
            Some(s.to_path_buf())
        }
        Some(s) if s.exists() => {
            return Err(IngestError::NotFound {
                path: s.to_path_buf(),
                reason: "--software must name the SOFTWARE hive file".into(),
            })
        }
        Some(s) => {
            return Err(IngestError::NotFound {
                path: s.to_path_buf(),
                reason: "no such file (given with --software)".into(),
            })
        }
        None => system
            .parent()
            .and_then(|d| find_ci(d, "SOFTWARE"))
            .filter(|p| p.is_file()),
    };
    Ok(Target {
        system,
        software,
        software_given: given,
    })
}

/// Refuses what is not a regular file (a FIFO would block on open, a character device would
/// never end), before opening it.
fn plain_file(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(m) => Err(IngestError::NotFound {
            path: path.to_path_buf(),
            reason: format!(
                "it is {}, not a hive file or a Windows folder",
                guestwall_mmap::kind_of(&m)
            ),
        }),
        Err(_) => Ok(()),
    }
}

/// Refuses a disk image given where a hive is expected, saying what it is.
fn sniff(path: &Path) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        // Unreadable: the hive reader says why.
        Err(_) => return Ok(()),
    };
    let mut head = [0u8; 1024];
    let n = f.read(&mut head).unwrap_or(0);
    let head = &head[..n];
    let len = f.seek(SeekFrom::End(0)).unwrap_or(0);
    let mut tail = [0u8; 512];
    let tail_ok =
        len >= 512 && f.seek(SeekFrom::Start(len - 512)).is_ok() && f.read_exact(&mut tail).is_ok();
    let at = |off: usize, sig: &[u8]| head.get(off..off + sig.len()) == Some(sig);
    let what = if at(0, b"regf") {
        return Ok(());
    } else if at(0, b"vhdxfile") {
        "a VHDX disk image"
    } else if at(0, b"conectix") || (tail_ok && tail.starts_with(b"conectix")) {
        "a VHD disk image"
    } else if at(0, b"QFI\xfb") {
        "a QCOW2 disk image"
    } else if at(0, b"KDMV") || at(0, b"# Disk DescriptorFile") {
        "a VMDK disk image"
    } else if at(3, b"-FVE-FS-") {
        "a BitLocker-encrypted volume"
    } else if at(3, b"NTFS    ") {
        "an NTFS volume image"
    } else if at(512, b"EFI PART") {
        "a raw disk image with a GPT partition table"
    } else if at(510, &[0x55, 0xAA]) && head.len() >= 512 {
        "a raw disk image with an MBR partition table"
    } else {
        return Ok(());
    };
    Err(IngestError::DiskImage {
        path: path.to_path_buf(),
        what,
        hint: "Give the Windows folder of its mounted OS volume (for example with `qemu-nbd` and `ntfs-3g`, or `guestmount`), or the SYSTEM hive itself (Windows/System32/config/SYSTEM)",
    })
}

/// What a hive is, from its root keys and the file name Windows recorded in its base block.
enum HiveKind {
    System,
    Software,
    /// Another hive: what it looks like, and why.
    Other(String),
}

fn hive_kind(hive: &Hive) -> HiveKind {
    let names: Vec<String> = hive
        .root()
        .ok()
        .and_then(|r| r.subkeys().ok())
        .unwrap_or_default()
        .iter()
        .map(|k| k.name().to_string_lossy())
        .collect();
    let has = |n: &str| names.iter().any(|x| x.eq_ignore_ascii_case(n));
    let kind = if names
        .iter()
        .any(|n| n.to_ascii_lowercase().starts_with("controlset"))
    {
        return HiveKind::System;
    } else if has("SAM") {
        "SAM (the accounts hive)"
    } else if has("Policy") && has("RXACT") {
        "SECURITY (the security policy hive)"
    } else if has("Control Panel") || has("Environment") {
        "NTUSER.DAT or DEFAULT (a user profile hive)"
    } else if has("Objects") && has("Description") {
        "BCD (the boot configuration)"
    } else if has("Local Settings") || has("CLSID") {
        "UsrClass.dat (a user's classes hive)"
    } else if has("DriverDatabase") {
        "DRIVERS"
    } else if has("DerivedData") || has("CanonicalData") {
        "COMPONENTS"
    } else if has("Microsoft") || has("Policies") {
        return HiveKind::Software;
    } else if has("Root") && names.len() <= 2 {
        "Amcache.hve (program inventory)"
    } else {
        "another hive"
    };
    let recorded = hive.base_block().file_name.trim().to_string();
    let roots = names.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    HiveKind::Other(format!(
        "{kind}: its root keys are {}{}",
        if roots.is_empty() {
            "none".into()
        } else {
            roots
        },
        if recorded.is_empty() {
            String::new()
        } else {
            format!(", and Windows recorded its file name as {recorded:?}")
        }
    ))
}

fn dword(key: &Key<'_>, name: &str) -> Option<u32> {
    let v = key.value(name).ok()??;
    match RegData::decode(v.data_type(), &v.data().ok()?) {
        RegData::Dword(d) => Some(d),
        _ => None,
    }
}

fn string(key: &Key<'_>, name: &str) -> Option<String> {
    let v = key.value(name).ok()??;
    match RegData::decode(v.data_type(), &v.data().ok()?) {
        RegData::String(s) => Some(s),
        RegData::MultiString(l) => Some(l.join(",")),
        _ => None,
    }
}

fn bool_setting(key: &Key<'_>, name: &str, origin: &str) -> Option<Setting<bool>> {
    dword(key, name).map(|v| Setting::new(v != 0, format!("{origin}\\{name}")))
}

fn store_profile(key: &Key<'_>, origin: &str) -> StoreProfile {
    StoreProfile {
        origin: origin.to_string(),
        enable_firewall: bool_setting(key, "EnableFirewall", origin),
        shielded: bool_setting(key, "DoNotAllowExceptions", origin),
        default_inbound_block: bool_setting(key, "DefaultInboundAction", origin),
        default_outbound_block: bool_setting(key, "DefaultOutboundAction", origin),
        allow_local_policy_merge: bool_setting(key, "AllowLocalPolicyMerge", origin),
        allow_local_ipsec_policy_merge: bool_setting(key, "AllowLocalIPsecPolicyMerge", origin),
        disabled_interfaces: string(key, "DisabledInterfaces").map(|s| {
            Setting::new(
                s.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect(),
                format!("{origin}\\DisabledInterfaces"),
            )
        }),
    }
}

/// Reads a store's profile keys. `group_policy` selects the Group Policy names
/// (`PrivateProfile`, legacy `StandardProfile`); the local store's Private is `StandardProfile`.
fn store_settings(root: &Key<'_>, origin: &str, group_policy: bool) -> StoreSettings {
    let sub = |name: &str| {
        root.subkey(name)
            .ok()
            .flatten()
            .map(|k| store_profile(&k, &format!("{origin}\\{name}")))
    };
    if group_policy {
        StoreSettings {
            domain: sub("DomainProfile"),
            private: sub("PrivateProfile"),
            public: sub("PublicProfile"),
            standard: sub("StandardProfile"),
        }
    } else {
        StoreSettings {
            domain: sub("DomainProfile"),
            private: sub("StandardProfile"),
            public: sub("PublicProfile"),
            standard: None,
        }
    }
}

/// Every string value of a key, as (name, text).
fn string_values(key: &Key<'_>) -> Vec<(String, String)> {
    let Ok(values) = key.values() else {
        return Vec::new();
    };
    values
        .iter()
        .filter(|v| matches!(v.data_type(), REG_SZ | REG_EXPAND_SZ | REG_MULTI_SZ))
        .filter_map(|v| {
            let data = v.data().ok()?;
            match RegData::decode(v.data_type(), &data) {
                RegData::String(s) => Some((v.name().to_string_lossy(), s)),
                _ => None,
            }
        })
        .collect()
}

fn rules_from(hive: &Hive, path: &str, origin: &str, store: Store, out: &mut Vec<StoredRule>) {
    if let Ok(Some(key)) = hive.find_key(path) {
        for (id, s) in string_values(&key) {
            out.push(StoredRule {
                store,
                origin: origin.to_string(),
                rule: Rule::parse(&id, &s),
            });
        }
    }
}

fn consec_from(hive: &Hive, path: &str, origin: &str, store: Store, out: &mut Vec<StoredConSec>) {
    if let Ok(Some(key)) = hive.find_key(path) {
        for (id, s) in string_values(&key) {
            out.push(StoredConSec {
                store,
                origin: origin.to_string(),
                rule: ConSecRule::parse(&id, &s),
            });
        }
    }
}

/// What SOFTWARE contributes (shared by every control set).
#[derive(Debug, Clone, Default)]
struct SoftwareFacts {
    gp: Option<StoreSettings>,
    gp_rules: Vec<StoredRule>,
    gp_consec: Vec<StoredConSec>,
    deny_ts_policy: Option<Setting<bool>>,
    os: Os,
    os_name: Option<String>,
    hint: Option<NetworkHint>,
}

fn read_software(hive: &Hive) -> SoftwareFacts {
    let mut f = SoftwareFacts::default();
    if let Ok(Some(k)) = hive.find_key(GP_FIREWALL) {
        let origin = format!("SOFTWARE\\{GP_FIREWALL}");
        f.gp = Some(store_settings(&k, &origin, true));
        rules_from(
            hive,
            &format!("{GP_FIREWALL}\\FirewallRules"),
            &format!("{origin}\\FirewallRules"),
            Store::GroupPolicy,
            &mut f.gp_rules,
        );
        consec_from(
            hive,
            &format!("{GP_FIREWALL}\\ConSecRules"),
            &format!("{origin}\\ConSecRules"),
            Store::GroupPolicy,
            &mut f.gp_consec,
        );
    }
    if let Ok(Some(k)) = hive.find_key(GP_TERMINAL_SERVICES) {
        f.deny_ts_policy = bool_setting(
            &k,
            "fDenyTSConnections",
            &format!("SOFTWARE\\{GP_TERMINAL_SERVICES}"),
        );
    }
    if let Ok(Some(k)) = hive.find_key("Microsoft\\Windows NT\\CurrentVersion") {
        let build = string(&k, "CurrentBuildNumber")
            .or_else(|| string(&k, "CurrentBuild"))
            .and_then(|b| b.trim().parse::<u32>().ok());
        let nt = match (
            dword(&k, "CurrentMajorVersionNumber"),
            dword(&k, "CurrentMinorVersionNumber"),
        ) {
            (Some(a), Some(b)) => Some((a, b)),
            // Windows 10 and later still say "6.3" in CurrentVersion.
            _ if build.is_some_and(|b| b >= 10240) => Some((10, 0)),
            _ => string(&k, "CurrentVersion")
                .and_then(|v| {
                    let (a, b) = v.trim().split_once('.')?;
                    Some((a.parse().ok()?, b.parse().ok()?))
                })
                // The build alone says the NT version (Windows 10's first build is 10240).
                .or(match build {
                    Some(b) if b >= 10240 => Some((10, 0)),
                    Some(b) if b >= 9600 => Some((6, 3)),
                    Some(b) if b >= 9200 => Some((6, 2)),
                    Some(b) if b >= 7600 => Some((6, 1)),
                    Some(b) if b >= 6000 => Some((6, 0)),
                    _ => None,
                }),
        };
        f.os = Os { nt, build };
        let product = string(&k, "ProductName");
        f.os_name = match (product, nt, build) {
            (Some(p), _, Some(b)) => Some(format!("{p}, build {b}")),
            (Some(p), _, None) => Some(p),
            (None, Some((a, b)), _) => Some(format!("Windows NT {a}.{b}")),
            _ => None,
        };
    }
    // The most recently connected network, as a hint of the active profile.
    if let Ok(Some(k)) =
        hive.find_key("Microsoft\\Windows NT\\CurrentVersion\\NetworkList\\Profiles")
    {
        let mut best: Option<(Vec<u16>, NetworkHint)> = None;
        for p in k.subkeys().unwrap_or_default() {
            let Some(cat) = dword(&p, "Category") else {
                continue;
            };
            let profile = match cat {
                0 => Profile::Public,
                1 => Profile::Private,
                2 => Profile::Domain,
                _ => continue,
            };
            let when = p
                .value("DateLastConnected")
                .ok()
                .flatten()
                .and_then(|v| v.data().ok().map(|d| d.into_owned()))
                .unwrap_or_default();
            let name = string(&p, "ProfileName").unwrap_or_else(|| p.name().to_string_lossy());
            let last = systemtime_text(&when);
            let key = systemtime_key(&when);
            if best.as_ref().is_none_or(|(k, _)| key > *k) {
                best = Some((
                    key,
                    NetworkHint {
                        profile,
                        name,
                        last_connected: last,
                    },
                ));
            }
        }
        f.hint = best.map(|(_, h)| h);
    }
    f
}

/// A 16-byte SYSTEMTIME as a sortable key (year, month, day, hour, minute, second).
fn systemtime_key(b: &[u8]) -> Vec<u16> {
    let w = |i: usize| {
        b.get(2 * i..2 * i + 2)
            .map_or(0, |x| u16::from_le_bytes([x[0], x[1]]))
    };
    [0, 1, 3, 4, 5, 6].iter().map(|&i| w(i)).collect()
}

fn systemtime_text(b: &[u8]) -> Option<String> {
    if b.len() < 16 {
        return None;
    }
    let w = |i: usize| u16::from_le_bytes([b[2 * i], b[2 * i + 1]]);
    Some(format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        w(0),
        w(1),
        w(3),
        w(4),
        w(5)
    ))
}

/// Guesses the OS from SYSTEM alone: the firewall rules' schema versions, and which default RDP
/// rule exists.
fn infer_os(policy: &Policy) -> Os {
    let max = policy
        .rules
        .iter()
        .filter(|r| r.store == Store::Local)
        .filter_map(|r| r.rule.version)
        .max();
    let kernel_rdp = policy.rules.iter().any(|r| {
        r.rule.id.eq_ignore_ascii_case("RemoteDesktop-In-TCP")
            && r.rule
                .app
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case("System"))
    });
    let nt = match max {
        _ if kernel_rdp => Some((6, 1)),
        Some(v) if v <= (2, 10) => Some((6, 1)),
        Some(v) if v < (2, 22) => Some((6, 2)),
        Some(v) if v < (2, 24) => Some((6, 3)),
        Some(_) => Some((10, 0)),
        None => None,
    };
    Os { nt, build: None }
}

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
    match hive_kind(&system) {
        HiveKind::System => {}
        HiveKind::Software => {
            return Err(wrong(
                "SOFTWARE (the machine's software hive: it has Microsoft or Policies at its root)"
                    .into(),
            ))
        }
        HiveKind::Other(s) => return Err(wrong(s)),
    }
    let mut notes: Vec<Note> = Vec::new();
    hive_notes(&target.system, &system, &mut notes);
    let software = match &target.software {
        Some(p) => match Hive::open(p) {
            Ok(h) => {
                let looks_like = match hive_kind(&h) {
                    HiveKind::Software => None,
                    HiveKind::System => Some("SYSTEM (it has ControlSet keys)".to_string()),
                    HiveKind::Other(s) => Some(s),
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
        let mut policy = Policy::default();
        let fw = format!("{cs}\\{FIREWALL_POLICY}");
        let fw_origin = format!("SYSTEM\\{fw}");
        if let Ok(Some(k)) = system.find_key(&fw) {
            policy.local = store_settings(&k, &fw_origin, false);
        }
        rules_from(
            &system,
            &format!("{fw}\\FirewallRules"),
            &format!("{fw_origin}\\FirewallRules"),
            Store::Local,
            &mut policy.rules,
        );
        rules_from(
            &system,
            &format!("{fw}\\Mdm\\FirewallRules"),
            &format!("{fw_origin}\\Mdm\\FirewallRules"),
            Store::Mdm,
            &mut policy.rules,
        );
        rules_from(
            &system,
            &format!("{fw}\\RestrictedServices\\AppIso\\FirewallRules"),
            &format!("{fw_origin}\\RestrictedServices\\AppIso\\FirewallRules"),
            Store::Local,
            &mut policy.rules,
        );
        for part in ["Static\\System", "Configurable\\System"] {
            rules_from(
                &system,
                &format!("{fw}\\RestrictedServices\\{part}"),
                &format!("{fw_origin}\\RestrictedServices\\{part}"),
                Store::ServiceHardening,
                &mut policy.rules,
            );
        }
        consec_from(
            &system,
            &format!("{fw}\\ConSecRules"),
            &format!("{fw_origin}\\ConSecRules"),
            Store::Local,
            &mut policy.consec_rules,
        );

        let mut cfg = MachineConfig {
            label: format!("{}: {cs} ({why})", target.system.display()),
            control_set: cs.clone(),
            control_set_source: why.clone(),
            ..MachineConfig::default()
        };
        if let Some(sw) = &software {
            policy.group_policy = sw.gp.clone();
            policy.rules.extend(sw.gp_rules.iter().cloned());
            policy.consec_rules.extend(sw.gp_consec.iter().cloned());
            cfg.deny_ts_policy = sw.deny_ts_policy.clone();
            cfg.os = sw.os;
            cfg.os_name = sw.os_name.clone();
            cfg.network_hint = sw.hint.clone();
        }
        if cfg.os.nt.is_none() {
            cfg.os = infer_os(&policy);
            cfg.os_inferred = cfg.os.nt.is_some();
            if let Some((a, b)) = cfg.os.nt {
                cfg.os_name = Some(format!(
                    "Windows NT {a}.{b} (inferred from the firewall rules)"
                ));
            }
        }
        let ts = format!("{cs}\\Control\\Terminal Server");
        if let Ok(Some(k)) = system.find_key(&ts) {
            cfg.deny_ts = bool_setting(&k, "fDenyTSConnections", &format!("SYSTEM\\{ts}"));
        }
        let rdp = format!("{ts}\\WinStations\\RDP-Tcp");
        if let Ok(Some(k)) = system.find_key(&rdp) {
            cfg.port = dword(&k, "PortNumber")
                .map(|p| Setting::new(p, format!("SYSTEM\\{rdp}\\PortNumber")));
        }
        for name in ["MpsSvc", "BFE", "TermService"] {
            let path = format!("{cs}\\Services\\{name}");
            let key = system.find_key(&path).ok().flatten();
            cfg.services.push(ServiceStart {
                name: name.to_string(),
                start: key.as_ref().and_then(|k| dword(k, "Start")),
                origin: format!(
                    "SYSTEM\\{}",
                    key.map_or(path, |k| format!("{cs}\\Services\\{}", k.name()))
                ),
            });
        }
        cfg.policy = policy;
        cfg.notes = notes.clone();
        out.push(cfg);
    }
    Ok(out)
}
