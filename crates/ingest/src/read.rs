//! *Read*: registry hives to the firewall model. Every setting and rule gets the typed
//! [`Origin`] of the key and value it was read from (and, for a capture, its line).
//!
//! Written once against [`RegView`]/[`KeyView`]: a regf hive and the registry part of a
//! capture are read by the same code.

use guestwall_firewall::{
    ConSecRule, HiveKind, Logging, MachineConfig, NetworkHint, Origin, Os, Policy, Profile, Rule,
    ServiceStart, Setting, Store, StoreProfile, StoreSettings, StoredConSec, StoredRule,
    FIREWALL_POLICY,
};
use guestwall_regf::data::{REG_EXPAND_SZ, REG_MULTI_SZ, REG_SZ};
use guestwall_regf::{Hive, RegData};

use crate::view::{KeyView, RegView};

/// The Group Policy firewall store in SOFTWARE.
pub const GP_FIREWALL: &str = "Policies\\Microsoft\\WindowsFirewall";
/// The Group Policy Terminal Services key in SOFTWARE.
pub const GP_TERMINAL_SERVICES: &str = "Policies\\Microsoft\\Windows NT\\Terminal Services";

/// What a hive is, from its root keys and the file name Windows recorded in its base block.
pub(crate) enum HiveIdentity {
    System,
    Software,
    /// Another hive: what it looks like, and why.
    Other(String),
}

pub(crate) fn hive_identity(hive: &Hive) -> HiveIdentity {
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
        return HiveIdentity::System;
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
        return HiveIdentity::Software;
    } else if has("Root") && names.len() <= 2 {
        "Amcache.hve (program inventory)"
    } else {
        "another hive"
    };
    let recorded = hive.base_block().file_name.trim().to_string();
    let roots = names.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    HiveIdentity::Other(format!(
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

/// A value decoded the way regf decodes it.
fn decoded(key: &impl KeyView, name: &str) -> Option<RegData> {
    let (t, data) = key.raw_value(name)?;
    Some(RegData::decode(t, &data))
}

/// The number held by a REG_DWORD (or REG_DWORD_BIG_ENDIAN) value of four bytes.
pub(crate) fn dword(key: &impl KeyView, name: &str) -> Option<u32> {
    match decoded(key, name)? {
        RegData::Dword(d) => Some(d),
        _ => None,
    }
}

/// A string value; a REG_MULTI_SZ reads as its strings joined with commas (as
/// `DisabledInterfaces` may be stored).
fn string(key: &impl KeyView, name: &str) -> Option<String> {
    match decoded(key, name)? {
        RegData::MultiString(l) => Some(l.join(",")),
        RegData::String(s) => Some(s),
        _ => None,
    }
}

fn bool_setting(key: &impl KeyView, name: &str, origin: &Origin) -> Option<Setting<bool>> {
    dword(key, name).map(|v| Setting::new(v != 0, key.value_origin(origin, name)))
}

fn store_profile<K: KeyView>(key: &K, origin: &Origin) -> StoreProfile {
    let logging = key.subkey("Logging");
    let log_origin = origin.subkey("Logging");
    let log_dword = |name: &str| {
        logging.as_ref().and_then(|k| {
            dword(k, name).map(|v| Setting::new(v, k.value_origin(&log_origin, name)))
        })
    };
    StoreProfile {
        origin: origin.clone(),
        disable_notifications: bool_setting(key, "DisableNotifications", origin),
        disable_unicast_responses: bool_setting(
            key,
            "DisableUnicastResponsesToMulticastBroadcast",
            origin,
        ),
        logging: Logging {
            log_allowed: log_dword("LogSuccessfulConnections")
                .map(|s| Setting::new(s.value != 0, s.origin)),
            log_dropped: log_dword("LogDroppedPackets")
                .map(|s| Setting::new(s.value != 0, s.origin)),
            file: logging.as_ref().and_then(|k| {
                string(k, "LogFilePath")
                    .map(|v| Setting::new(v, k.value_origin(&log_origin, "LogFilePath")))
            }),
            max_kb: log_dword("LogFileSize"),
        },
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
                key.value_origin(origin, "DisabledInterfaces"),
            )
        }),
    }
}

/// Reads a store's profile keys. `group_policy` selects the Group Policy names
/// (`PrivateProfile`, legacy `StandardProfile`); the local store's Private is `StandardProfile`.
fn store_settings(root: &impl KeyView, origin: &Origin, group_policy: bool) -> StoreSettings {
    let sub = |name: &str| {
        root.subkey(name).map(|k| {
            let mut o = origin.subkey(name);
            o.capture = k.line(None);
            store_profile(&k, &o)
        })
    };
    if group_policy {
        StoreSettings {
            domain: sub(Profile::Domain.policy_key_name()),
            private: sub(Profile::Private.policy_key_name()),
            public: sub(Profile::Public.policy_key_name()),
            // Legacy: stands for Private and Public when neither is there.
            standard: sub("StandardProfile"),
        }
    } else {
        StoreSettings {
            domain: sub(Profile::Domain.local_key_name()),
            private: sub(Profile::Private.local_key_name()),
            public: sub(Profile::Public.local_key_name()),
            standard: None,
        }
    }
}

/// Every string value of a key, as (name, text).
fn string_values(key: &impl KeyView) -> Vec<(String, String)> {
    key.raw_values()
        .into_iter()
        .filter(|(_, t, _)| matches!(*t, REG_SZ | REG_EXPAND_SZ | REG_MULTI_SZ))
        .filter_map(|(name, t, data)| match RegData::decode(t, &data) {
            RegData::String(s) => Some((name, s)),
            _ => None,
        })
        .collect()
}

/// The rules of the key `origin` names (its key path is read from `hive`).
pub(crate) fn rules_from(
    hive: &impl RegView,
    origin: &Origin,
    store: Store,
    out: &mut Vec<StoredRule>,
) {
    if let Some(key) = hive.find_key(&origin.key) {
        for (id, s) in string_values(&key) {
            out.push(StoredRule::new(
                store,
                key.value_origin(origin, &id),
                Rule::parse(&id, &s),
            ));
        }
    }
}

/// The connection security rules of the key `origin` names.
fn consec_from(hive: &impl RegView, origin: &Origin, store: Store, out: &mut Vec<StoredConSec>) {
    if let Some(key) = hive.find_key(&origin.key) {
        for (id, s) in string_values(&key) {
            out.push(StoredConSec {
                store,
                origin: key.value_origin(origin, &id),
                rule: ConSecRule::parse(&id, &s),
            });
        }
    }
}

/// What SOFTWARE contributes (shared by every control set).
#[derive(Debug, Clone, Default)]
pub(crate) struct SoftwareFacts {
    pub(crate) gp: Option<StoreSettings>,
    pub(crate) gp_rules: Vec<StoredRule>,
    pub(crate) gp_consec: Vec<StoredConSec>,
    pub(crate) deny_ts_policy: Option<Setting<bool>>,
    pub(crate) os: Os,
    pub(crate) os_name: Option<String>,
    pub(crate) hint: Option<NetworkHint>,
}

/// What SOFTWARE says: the Group Policy store, the policy copy of fDenyTSConnections, the OS,
/// the last network.
pub(crate) fn read_software(hive: &impl RegView) -> SoftwareFacts {
    let mut f = SoftwareFacts::default();
    if let Some(k) = hive.find_key(GP_FIREWALL) {
        let mut origin = Origin::software(GP_FIREWALL);
        origin.capture = k.line(None);
        f.gp = Some(store_settings(&k, &origin, true));
        rules_from(
            hive,
            &origin.subkey("FirewallRules"),
            Store::GroupPolicy,
            &mut f.gp_rules,
        );
        consec_from(
            hive,
            &origin.subkey("ConSecRules"),
            Store::GroupPolicy,
            &mut f.gp_consec,
        );
    }
    if let Some(k) = hive.find_key(GP_TERMINAL_SERVICES) {
        f.deny_ts_policy = bool_setting(
            &k,
            "fDenyTSConnections",
            &Origin::software(GP_TERMINAL_SERVICES),
        );
    }
    if let Some(k) = hive.find_key("Microsoft\\Windows NT\\CurrentVersion") {
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
    if let Some(k) = hive.find_key("Microsoft\\Windows NT\\CurrentVersion\\NetworkList\\Profiles") {
        let mut best: Option<(Vec<u16>, NetworkHint)> = None;
        for p in k.subkeys() {
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
                .raw_value("DateLastConnected")
                .map(|(_, d)| d.into_owned())
                .unwrap_or_default();
            let name = string(&p, "ProfileName").unwrap_or_else(|| p.name());
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
pub(crate) fn infer_os(policy: &Policy) -> Os {
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

/// Reads one control set of SYSTEM (`ControlSet001`) into a [`MachineConfig`], with what
/// SOFTWARE contributes. `why` says why this control set (`Select\\Current`, …).
pub(crate) fn read_control_set(
    system: &impl RegView,
    cs: &str,
    why: &str,
    label: String,
    software: Option<&SoftwareFacts>,
) -> MachineConfig {
    let mut policy = Policy::default();
    let fw = Origin::system(format!("{cs}\\{FIREWALL_POLICY}"));
    if let Some(k) = system.find_key(&fw.key) {
        let mut o = fw.clone();
        o.capture = k.line(None);
        policy.local = store_settings(&k, &o, false);
    }
    let rule_keys = [
        ("FirewallRules", Store::Local),
        ("Mdm\\FirewallRules", Store::Mdm),
        ("RestrictedServices\\AppIso\\FirewallRules", Store::Local),
        (
            "RestrictedServices\\Static\\System",
            Store::ServiceHardening,
        ),
        (
            "RestrictedServices\\Configurable\\System",
            Store::ServiceHardening,
        ),
    ];
    for (sub, store) in rule_keys {
        rules_from(system, &fw.subkey(sub), store, &mut policy.rules);
    }
    consec_from(
        system,
        &fw.subkey("ConSecRules"),
        Store::Local,
        &mut policy.consec_rules,
    );

    let mut cfg = MachineConfig {
        label,
        control_set: cs.to_string(),
        control_set_source: why.to_string(),
        ..MachineConfig::default()
    };
    if let Some(sw) = software {
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
    let ts = Origin::system(format!("{cs}\\Control\\Terminal Server"));
    if let Some(k) = system.find_key(&ts.key) {
        cfg.deny_ts = bool_setting(&k, "fDenyTSConnections", &ts);
    }
    let rdp = ts.subkey("WinStations\\RDP-Tcp");
    if let Some(k) = system.find_key(&rdp.key) {
        cfg.port =
            dword(&k, "PortNumber").map(|p| Setting::new(p, k.value_origin(&rdp, "PortNumber")));
    }
    for name in ["MpsSvc", "BFE", "TermService"] {
        let path = format!("{cs}\\Services\\{name}");
        let key = system.find_key(&path);
        let mut origin = Origin::key(
            HiveKind::System,
            key.as_ref()
                .map_or(path, |k| format!("{cs}\\Services\\{}", k.name())),
        );
        origin.capture = key
            .as_ref()
            .and_then(|k| k.line(Some("Start")).or_else(|| k.line(None)));
        cfg.services.push(ServiceStart {
            name: name.to_string(),
            start: key.as_ref().and_then(|k| dword(k, "Start")),
            origin,
        });
    }
    cfg.policy = policy;
    cfg
}

/// Reads the whole subtree at `path` (every key, value and data), so that damage where the
/// diagnosis looks is an error naming the key, not a part of the model silently left out.
/// A missing key is fine (the model says "not configured"). Bounded: depth 512, each key
/// visited once.
pub(crate) fn check_subtree(
    hive: &Hive,
    path: &str,
) -> Result<(), (String, guestwall_regf::Error)> {
    let root = match hive.find_key(path) {
        Ok(Some(k)) => k,
        Ok(None) => return Ok(()),
        Err(e) => return Err((path.to_string(), e)),
    };
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![(root, path.to_string(), 0usize)];
    while let Some((k, at, depth)) = stack.pop() {
        if !seen.insert(k.cell()) || depth > 512 {
            continue;
        }
        let values = k.values().map_err(|e| (at.clone(), e))?;
        for v in values {
            v.data().map_err(|e| (format!("{at}\\{}", v.name()), e))?;
        }
        for s in k.subkeys().map_err(|e| (at.clone(), e))? {
            let p = format!("{at}\\{}", s.name());
            stack.push((s, p, depth + 1));
        }
    }
    Ok(())
}

/// The subtrees of SYSTEM the model is read from, for control set `cs`.
pub(crate) fn system_subtrees(cs: &str) -> Vec<String> {
    vec![
        format!("{cs}\\{FIREWALL_POLICY}"),
        format!("{cs}\\Control\\Terminal Server"),
        format!("{cs}\\Services\\MpsSvc"),
        format!("{cs}\\Services\\BFE"),
        format!("{cs}\\Services\\TermService"),
    ]
}

/// The subtrees of SOFTWARE the model is read from.
pub(crate) const SOFTWARE_SUBTREES: &[&str] = &[
    GP_FIREWALL,
    GP_TERMINAL_SERVICES,
    "Microsoft\\Windows NT\\CurrentVersion\\NetworkList\\Profiles",
];
