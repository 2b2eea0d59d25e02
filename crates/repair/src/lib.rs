//! The smallest set of registry changes that makes inbound RDP reachable on every profile, and
//! the scripts that make the same changes on a running VM or from a Windows rescue VM.
//!
//! # Getting started
//!
//! 1. [`plan`] takes the machine (one [`MachineConfig`] per control set that boots) and the
//!    [`FixOptions`], and returns a [`Plan`]: the [`Change`]s, what it cannot fix (causes owned
//!    by Group Policy, conditional scopes), warnings, and the diagnosis predicted afterwards.
//! 2. Apply the changes with the ingest layer (backup, atomic write, verification), or print
//!    them as commands with [`script`].
//!
//! The plan works on the model: it diagnoses, fixes the causes it finds, and diagnoses again,
//! until RDP is reachable or nothing more can be fixed. Fixes, smallest first: enable a
//! disabled RDP rule (only its `Active=` changes), else add the missing profile to it; add an
//! allow rule for a custom RDP port; disable (never delete) a local block rule that matches;
//! delete `DoNotAllowExceptions`; `fDenyTSConnections=0`; `Start=2` for MpsSvc/BFE and 3 for
//! TermService when disabled; disable a connection security rule that demands IPsec. It never
//! switches a profile off or sets the default inbound action to allow unless asked
//! ([`FixOptions::firewall_off`], [`FixOptions::allow_inbound`]), and says what that exposes.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod apply;
mod image;
pub use image::ImageHives;
pub mod netsh;
mod report;
mod script;

use serde::Serialize;

use guestwall_diagnose::{codes, diagnose, Cause, Code, Diagnosis, MachineConfig};
use guestwall_firewall::names::REMOTE_DESKTOP_GROUP;
use guestwall_firewall::{
    match_flow, Action, CaptureLine, ConSecRule, FlowMatch, Listener, Origin, Profile, Rule,
    Setting, Store, StoreProfile, StoredRule,
};

pub use apply::{
    apply, apply_in, edits_for, fix, history, lock_target, undo, write_console_plan, write_fixed,
    write_history, write_undone, Fixed, HiveWrite, RepairError,
};
pub use report::{fixed_json, history_json, undone_json};
pub use script::{script, ScriptKind};

pub use guestwall_firewall::HiveKind;

/// What a change does to a registry value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Set a REG_DWORD.
    SetDword(u32),
    /// Set a REG_SZ.
    SetString(String),
    /// Delete the value.
    DeleteValue,
}

/// What a change means, for scripts and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FixKind {
    /// Enable a firewall rule.
    EnableRule {
        /// Rule ID.
        id: String,
        /// Display name.
        name: String,
        /// Other rules of the store have the same display name (netsh's `name=` would change
        /// them too).
        shared_name: bool,
    },
    /// Disable a firewall rule.
    DisableRule {
        /// Rule ID.
        id: String,
        /// Display name.
        name: String,
        /// Other rules of the store have the same display name (netsh's `name=` would change
        /// them too).
        shared_name: bool,
    },
    /// Add profiles to a firewall rule.
    AddProfile {
        /// Rule ID.
        id: String,
        /// Display name.
        name: String,
        /// Other rules of the store have the same display name.
        shared_name: bool,
        /// The profile added.
        profile: Profile,
    },
    /// Add an inbound allow rule for the RDP port.
    AddPortRule {
        /// Rule ID.
        id: String,
        /// Display name.
        name: String,
        /// The port.
        port: u16,
        /// Which process the rule names.
        listener: RdpListener,
    },
    /// Remove "block all incoming connections" from a profile.
    RemoveShield {
        /// The profile.
        profile: Profile,
        /// The profile's local default outbound action is block (netsh's firewallpolicy
        /// names both directions, so the script keeps it).
        outbound_block: bool,
    },
    /// Turn a profile back on.
    EnableProfile {
        /// The profile.
        profile: Profile,
    },
    /// Default inbound action allow (explicitly asked for).
    AllowInbound {
        /// The profile.
        profile: Profile,
    },
    /// Profile off (explicitly asked for).
    FirewallOff {
        /// The profile.
        profile: Profile,
    },
    /// Let Group Policy merge local rules again (policy cache).
    AllowLocalRules {
        /// The profile.
        profile: Profile,
    },
    /// fDenyTSConnections = 0.
    EnableRdp,
    /// `RDP-Tcp\PortNumber` set back to a valid port.
    SetRdpPort {
        /// The port.
        port: u32,
    },
    /// A service's start type.
    ServiceStart {
        /// Short name.
        service: String,
        /// Start value.
        start: u32,
    },
    /// A netsh `set rule` edit.
    EditRule {
        /// Rule ID.
        id: String,
        /// Display name.
        name: String,
    },
    /// A netsh `add rule`.
    NewRule {
        /// Rule ID.
        id: String,
        /// Display name.
        name: String,
    },
    /// A netsh `delete rule`.
    DeleteRule {
        /// Rule ID.
        id: String,
        /// Display name.
        name: String,
    },
    /// A netsh profile setting.
    ProfileSetting {
        /// The profile.
        profile: Profile,
    },
    /// Disable a connection security rule.
    DisableConSec {
        /// Rule ID.
        id: String,
        /// Display name.
        name: String,
    },
}

/// The process that listens for RDP, as an added rule names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RdpListener {
    /// The kernel (`App=System`): Windows 7 / Server 2008 R2 and older.
    Kernel,
    /// svchost hosting TermService: Windows 8 / Server 2012 and newer.
    TermService,
    /// The OS is unknown: the rule names no program.
    Any,
}

/// One registry change. Serialized (for `fix --json`) as hive, key, value, before, after,
/// code and policy_cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The hive.
    pub hive: HiveKind,
    /// Key path relative to the hive's root.
    pub key: String,
    /// Value name.
    pub value: String,
    /// The value before, for display (`None`: absent).
    pub before: Option<String>,
    /// What is done.
    #[serde(rename = "after", serialize_with = "op_after")]
    pub op: Op,
    /// The cause code it fixes.
    pub code: Code,
    /// What it means.
    #[serde(skip)]
    pub kind: FixKind,
    /// Group Policy will put it back at its next refresh (a policy-cache edit).
    pub policy_cache: bool,
    /// The capture line of what it changes, for a plan made from a capture. In the JSON only
    /// for a rule taken from netsh's display, as `shown_as` ([`Change::shown_as`]).
    #[serde(
        rename = "shown_as",
        skip_serializing_if = "not_shown",
        serialize_with = "shown_as"
    )]
    pub capture: Option<CaptureLine>,
}

fn not_shown(c: &Option<CaptureLine>) -> bool {
    c.as_ref().is_none_or(|c| c.shown_as.is_none())
}

fn shown_as<S: serde::Serializer>(c: &Option<CaptureLine>, s: S) -> Result<S::Ok, S::Error> {
    match c.as_ref().and_then(CaptureLine::shown_text) {
        Some(t) => s.serialize_str(&t),
        None => s.serialize_none(),
    }
}

fn op_after<S: serde::Serializer>(op: &Op, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_some(&op.after())
}

impl Op {
    /// The value after, for display (`None`: deleted).
    pub fn after(&self) -> Option<String> {
        match self {
            Op::SetDword(d) => Some(d.to_string()),
            Op::SetString(s) => Some(s.clone()),
            Op::DeleteValue => None,
        }
    }
}

impl Change {
    /// A change of the value `at` names. Edits of SOFTWARE are edits of the Group Policy
    /// cache.
    pub fn at(at: &Origin, before: Option<String>, op: Op, code: Code, kind: FixKind) -> Change {
        Change {
            hive: at.hive,
            key: at.key.clone(),
            value: at.value_name().to_string(),
            before,
            op,
            code,
            kind,
            policy_cache: at.hive == HiveKind::Software,
            capture: at.capture.clone(),
        }
    }

    /// Where the change goes.
    pub fn origin(&self) -> Origin {
        let mut o = Origin::key(self.hive, self.key.clone()).value(self.value.clone());
        o.capture = self.capture.clone();
        o
    }

    /// The value after, for display (`None`: deleted).
    pub fn after(&self) -> Option<String> {
        self.op.after()
    }

    /// For a rule taken from netsh's display (a capture): what the capture showed and where
    /// (`netsh rule "NAME" (cap.txt:61)`), since `key`/`value` then name no value that exists
    /// on the VM (netsh shows no rule ID).
    pub fn shown_as(&self) -> Option<String> {
        self.capture.as_ref().and_then(CaptureLine::shown_text)
    }
}

/// A cause the plan leaves alone, and what someone must do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unresolved {
    /// The control set it concerns.
    pub control_set: String,
    /// The cause code.
    pub code: Code,
    /// The cause.
    pub detail: String,
    /// What to do.
    pub action: String,
}

/// How to fix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FixOptions {
    /// Examine this port instead of the configured RDP port.
    pub port: Option<u16>,
    /// Set the default inbound action to allow on every profile (the article's temporary
    /// troubleshooting step). Exposes every listening port.
    pub allow_inbound: bool,
    /// Switch every profile off (the article's temporary troubleshooting step). Exposes every
    /// listening port and disables the firewall's protection.
    pub firewall_off: bool,
    /// Also edit the Group Policy cache in SOFTWARE (undone by the next policy refresh).
    pub include_policy_cache: bool,
    /// Do what Azure's VMAccess "Reset configuration only" does, and nothing else: RDP
    /// enabled, every profile on, the RDP rule enabled (or a 3389 rule added).
    pub reset_rdp_config: bool,
}

/// The changes to make, what stays unresolved, and the predicted diagnosis.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The control sets planned for, the current one first.
    pub control_sets: Vec<String>,
    /// The changes, in order.
    pub changes: Vec<Change>,
    /// Causes left alone.
    pub unresolved: Vec<Unresolved>,
    /// Warnings (exposure, policy refresh).
    pub warnings: Vec<String>,
    /// The diagnosis before.
    pub before: Vec<Diagnosis>,
    /// The diagnosis predicted after the changes.
    pub after: Vec<Diagnosis>,
}

/// The state being fixed: a control set's model, changed as fixes are chosen.
struct Work<'a> {
    cfg: MachineConfig,
    opts: &'a FixOptions,
    changes: Vec<Change>,
    warnings: Vec<String>,
}

impl Work<'_> {
    fn listener(&self, port: u16) -> Listener {
        Listener::rdp(&self.cfg.os, port)
    }

    fn rule_index(&self, id: &str, store: Option<Store>) -> Option<usize> {
        self.cfg
            .policy
            .rules
            .iter()
            .position(|r| r.rule.id == id && store.is_none_or(|s| s == r.store))
    }

    /// The rule a cause names, by its origin.
    fn cause_rule(&self, c: &Cause) -> Option<usize> {
        c.rule.as_ref()?;
        let o = c.origin.as_ref()?;
        self.cfg
            .policy
            .rules
            .iter()
            .position(|r| r.origin.same_place(o))
    }

    /// Changes a rule's string through `edit`, records the change, and re-parses the rule.
    fn edit_rule(
        &mut self,
        i: usize,
        code: Code,
        kind: FixKind,
        edit: impl FnOnce(&mut Rule) -> bool,
    ) -> bool {
        let sr = &mut self.cfg.policy.rules[i];
        let before = sr.rule.to_rule_string();
        if !edit(&mut sr.rule) {
            return false;
        }
        let after = sr.rule.to_rule_string();
        sr.rule = Rule::parse(&sr.rule.id, &after);
        let origin = sr.origin.clone();
        let policy_cache = sr.store == Store::GroupPolicy;
        // A second edit of the same kind to the same rule (another profile added) folds into
        // the first change; an edit of another kind follows it, before = the first's after.
        let same = |c: &Change| c.origin().same_place(&origin);
        if let Some(prev) = self.changes.iter_mut().rev().find(|c| same(c)) {
            if std::mem::discriminant(&prev.kind) == std::mem::discriminant(&kind) {
                prev.op = Op::SetString(after);
                return true;
            }
        }
        self.changes.push(Change {
            policy_cache,
            ..Change::at(&origin, Some(before), Op::SetString(after), code, kind)
        });
        true
    }

    /// True when another rule of the same store has the same display name.
    fn shared_name(&self, i: usize) -> bool {
        let r = &self.cfg.policy.rules[i];
        let name = rule_name(r);
        self.cfg
            .policy
            .rules
            .iter()
            .enumerate()
            .any(|(j, o)| j != i && o.store == r.store && rule_name(o).eq_ignore_ascii_case(&name))
    }

    /// The local store's default outbound action for `p` is block.
    fn local_outbound_block(&self, p: Profile) -> bool {
        let l = &self.cfg.policy.local;
        let sp = match p {
            Profile::Domain => l.domain.as_ref(),
            Profile::Private => l.private.as_ref(),
            Profile::Public => l.public.as_ref(),
        };
        sp.and_then(|s| s.default_outbound_block.as_ref())
            .is_some_and(|s| s.value)
    }

    /// A rule netsh showed (no ID) under a name other rules share: no command on the VM can
    /// change it alone (netsh's name= and PowerShell's -DisplayName take them all), so it is
    /// left as it is, with a warning that says how to get a capture that names it.
    fn unnamable(&mut self, i: usize) -> bool {
        let sr = &self.cfg.policy.rules[i];
        let shown = sr
            .origin
            .capture
            .as_ref()
            .is_some_and(|c| c.shown_as.is_some());
        if !shown || !self.shared_name(i) {
            return false;
        }
        let w = format!(
            "{} is not changed: other rules are also named \"{}\" and netsh shows no rule IDs, so no command can change it alone (netsh's name= and PowerShell's -DisplayName take them all); capture the VM with `guestwall collect`, which reads the rules with their IDs, and run guestwall on that capture",
            sr.origin,
            rule_name(sr)
        );
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
        true
    }

    fn set_active(&mut self, i: usize, active: bool, code: Code) -> bool {
        if self.unnamable(i) {
            return false;
        }
        let id = self.cfg.policy.rules[i].rule.id.clone();
        let name = rule_name(&self.cfg.policy.rules[i]);
        let shared_name = self.shared_name(i);
        let kind = if active {
            FixKind::EnableRule {
                id,
                name,
                shared_name,
            }
        } else {
            FixKind::DisableRule {
                id,
                name,
                shared_name,
            }
        };
        let v = if active { "TRUE" } else { "FALSE" };
        self.edit_rule(i, code, kind, |r| r.raw.set("Active", v))
    }

    fn add_profile(&mut self, i: usize, p: Profile) -> bool {
        if self.unnamable(i) {
            return false;
        }
        let id = self.cfg.policy.rules[i].rule.id.clone();
        let name = rule_name(&self.cfg.policy.rules[i]);
        let shared_name = self.shared_name(i);
        let kind = FixKind::AddProfile {
            id,
            name,
            shared_name,
            profile: p,
        };
        self.edit_rule(i, codes::RDP_RULE_WRONG_PROFILE, kind, |r| {
            if r.profiles.contains(p) {
                return false;
            }
            r.raw.insert_after("Profile", "Profile", &p.to_string());
            true
        })
    }

    /// Adds an inbound allow rule for TCP `port` to the RDP listener, in the OS's native rule
    /// version and in the Remote Desktop group.
    fn add_port_rule(&mut self, port: u16, code: Code) -> bool {
        let id = format!("guestwall-RemoteDesktop-In-TCP-{port}");
        if self.rule_index(&id, Some(Store::Local)).is_some() {
            return false;
        }
        let version = native_rule_version(&self.cfg);
        let kernel = matches!(
            self.listener(port).process,
            guestwall_firewall::ListenerProcess::System
        );
        // With the OS unknown, the listener is unknown too: the rule then names no program
        // (any process listening on the port), so that it holds whichever Windows it is.
        let listener = if self.cfg.os.nt.is_none() {
            RdpListener::Any
        } else if kernel {
            RdpListener::Kernel
        } else {
            RdpListener::TermService
        };
        let program = match listener {
            RdpListener::Any => "",
            RdpListener::Kernel => "App=System|",
            RdpListener::TermService => "App=%SystemRoot%\\system32\\svchost.exe|Svc=termservice|",
        };
        let name = format!("Remote Desktop (TCP-In, port {port})");
        let s = format!(
            "v{}.{}|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort={port}|{program}Name={name}|Desc=Inbound RDP on TCP {port}, added by guestwall|EmbedCtxt={REMOTE_DESKTOP_GROUP}|",
            version.0, version.1
        );
        let origin = Origin::system(format!("{}\\FirewallRules", self.cfg.firewall_policy_key()))
            .value(id.as_str());
        self.cfg.policy.rules.push(StoredRule::new(
            Store::Local,
            origin.clone(),
            Rule::parse(&id, &s),
        ));
        self.changes.push(Change::at(
            &origin,
            None,
            Op::SetString(s),
            code,
            FixKind::AddPortRule {
                id,
                name,
                port,
                listener,
            },
        ));
        true
    }

    /// Sets the DWORD `origin` names and records it.
    fn set_dword(
        &mut self,
        origin: &Origin,
        before: Option<u32>,
        value: u32,
        code: Code,
        kind: FixKind,
    ) -> bool {
        if before == Some(value) {
            return false;
        }
        self.changes.push(Change::at(
            origin,
            before.map(|b| b.to_string()),
            Op::SetDword(value),
            code,
            kind,
        ));
        true
    }

    fn delete_value(&mut self, origin: &Origin, before: String, code: Code, kind: FixKind) -> bool {
        self.changes.push(Change::at(
            origin,
            Some(before),
            Op::DeleteValue,
            code,
            kind,
        ));
        true
    }

    /// The local (or GP) store profile whose setting has this origin.
    fn store_profile_mut(&mut self, origin: &Origin) -> Option<&mut StoreProfile> {
        let p = &mut self.cfg.policy;
        let stores = [Some(&mut p.local), p.group_policy.as_mut()];
        for s in stores.into_iter().flatten() {
            for sp in [
                &mut s.domain,
                &mut s.private,
                &mut s.public,
                &mut s.standard,
            ]
            .into_iter()
            .flatten()
            {
                let hit = [
                    &sp.shielded,
                    &sp.enable_firewall,
                    &sp.default_inbound_block,
                    &sp.allow_local_policy_merge,
                ]
                .iter()
                .any(|x| x.as_ref().is_some_and(|x| x.origin.same_place(origin)));
                if hit {
                    return Some(sp);
                }
            }
        }
        None
    }

    /// The local store's key for a profile (created in the model if missing).
    fn local_profile(&mut self, p: Profile) -> (Origin, &mut StoreProfile) {
        let origin = self.cfg.local_profile_origin(p);
        let slot = match p {
            Profile::Domain => &mut self.cfg.policy.local.domain,
            Profile::Private => &mut self.cfg.policy.local.private,
            Profile::Public => &mut self.cfg.policy.local.public,
        };
        let sp = slot.get_or_insert_with(|| StoreProfile::at(origin.clone()));
        (origin, sp)
    }
}

/// The rule-string version this Windows writes: that of its newest local rule, else the
/// schema of its OS version, else 2.10 (Windows 7, which every later version reads).
pub fn native_rule_version(cfg: &MachineConfig) -> (u8, u8) {
    cfg.policy
        .rules
        .iter()
        .filter(|r| r.store == Store::Local)
        .filter_map(|r| r.rule.version)
        .max()
        .or_else(|| cfg.os.schema())
        .unwrap_or((2, 10))
}

fn rule_name(sr: &StoredRule) -> String {
    sr.display_name()
}

/// Plans the fix for every control set given (see the crate documentation).
pub fn plan(configs: &[MachineConfig], opts: &FixOptions) -> Plan {
    let mut out = Plan::default();
    for cfg in configs {
        let before = diagnose(cfg, opts.port);
        for f in before
            .findings
            .iter()
            .filter(|f| f.code == codes::PORT_MISMATCH)
        {
            let w = format!(
                "{}: {}; the fix is for that port",
                cfg.control_set, f.detail
            );
            if !out.warnings.contains(&w) {
                out.warnings.push(w);
            }
        }
        out.before.push(before);
        out.control_sets.push(cfg.control_set.clone());
        let mut w = Work {
            cfg: cfg.clone(),
            opts,
            changes: Vec::new(),
            warnings: Vec::new(),
        };
        if opts.reset_rdp_config {
            reset_rdp_config(&mut w);
        } else {
            // The minimal fix first, on the firewall as it is: the temporary steps asked for
            // (--firewall-off, --allow-inbound) come on top of it, so that RDP keeps working
            // once they are undone.
            for _ in 0..16 {
                let d = diagnose(&w.cfg, opts.port);
                if d.reachable || !fix_round(&mut w, &d) {
                    break;
                }
            }
            explicit_steps(&mut w);
        }
        let after = diagnose(&w.cfg, opts.port);
        collect_unresolved(&w, &after, &mut out.unresolved);
        if !opts.firewall_off {
            let off: Vec<String> = after
                .profiles
                .iter()
                .filter(|p| p.causes.iter().any(|c| c.code == codes::FIREWALL_OFF))
                .map(|p| p.profile.to_string())
                .collect();
            if !off.is_empty() {
                w.warnings.push(format!(
                    "{}: the firewall is off on the {} profile(s): RDP passes, but nothing filters inbound traffic there; `guestwall fix --reset-rdp-config` turns it back on (with the RDP rule enabled)",
                    cfg.control_set,
                    off.join(", ")
                ));
            }
        }
        for c in w.changes {
            // The same SOFTWARE (policy cache) change can come from both control sets.
            if !out.changes.iter().any(|x| {
                x.hive == c.hive
                    && x.key.eq_ignore_ascii_case(&c.key)
                    && x.value.eq_ignore_ascii_case(&c.value)
                    && x.op == c.op
            }) {
                out.changes.push(c);
            }
        }
        for warning in w.warnings {
            if !out.warnings.contains(&warning) {
                out.warnings.push(warning);
            }
        }
        out.after.push(after);
    }
    if out.changes.iter().any(|c| c.policy_cache) {
        out.warnings.push(
            "some changes edit the Group Policy cache in SOFTWARE: the next policy refresh (at boot, then every ~90 minutes) puts the policy back unless the GPO itself is changed".into(),
        );
    }
    out
}

/// `--allow-inbound` and `--firewall-off`: the article's temporary troubleshooting steps.
fn explicit_steps(w: &mut Work<'_>) {
    if w.opts.allow_inbound {
        for p in Profile::ALL {
            let (origin, sp) = w.local_profile(p);
            let before = sp
                .default_inbound_block
                .as_ref()
                .map(|s| u32::from(s.value));
            let vo = origin.value("DefaultInboundAction");
            sp.default_inbound_block = Some(Setting::new(false, vo.clone()));
            w.set_dword(
                &vo,
                before,
                0,
                codes::DEFAULT_INBOUND_ALLOW,
                FixKind::AllowInbound { profile: p },
            );
        }
        w.warnings.push("--allow-inbound: every profile now lets in ALL inbound traffic to every listening port (SMB, WinRM, databases…); only the cloud's network rules (NSG) still filter. The minimal fix was made as well, so RDP keeps working when you set DefaultInboundAction back to 1 (netsh: firewallpolicy blockinbound,allowoutbound); do that as soon as you are in".into());
    }
    if w.opts.firewall_off {
        for p in Profile::ALL {
            let (origin, sp) = w.local_profile(p);
            let before = sp.enable_firewall.as_ref().map(|s| u32::from(s.value));
            let vo = origin.value("EnableFirewall");
            sp.enable_firewall = Some(Setting::new(false, vo.clone()));
            w.set_dword(
                &vo,
                before,
                0,
                codes::FIREWALL_OFF,
                FixKind::FirewallOff { profile: p },
            );
        }
        w.warnings.push("--firewall-off: the Windows Firewall is OFF on every profile: nothing on the VM filters inbound traffic any more; only the cloud's network rules (NSG) do. The minimal fix was made as well (the changes above), so RDP keeps working when you turn the firewall back on (EnableFirewall = 1, or `netsh advfirewall set allprofiles state on`) once you are in".into());
    }
}

/// What VMAccess "Reset configuration only" does: RDP on, every profile on, the RDP rule on.
fn reset_rdp_config(w: &mut Work<'_>) {
    if let Some(s) = w.cfg.deny_ts.clone() {
        if s.value {
            w.set_dword(
                &s.origin,
                Some(1),
                0,
                codes::RDP_DISABLED,
                FixKind::EnableRdp,
            );
            w.cfg.deny_ts = Some(Setting::new(false, s.origin.clone()));
        }
    }
    for p in Profile::ALL {
        let (origin, sp) = w.local_profile(p);
        if sp.enable_firewall.as_ref().is_some_and(|s| !s.value) {
            let vo = origin.value("EnableFirewall");
            sp.enable_firewall = Some(Setting::new(true, vo.clone()));
            w.set_dword(
                &vo,
                Some(0),
                1,
                codes::FIREWALL_OFF,
                FixKind::EnableProfile { profile: p },
            );
        }
    }
    let l = w.listener(3389);
    let os = w.cfg.os;
    let rdp: Vec<usize> = w
        .cfg
        .policy
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.store == Store::Local && r.rule.action == Some(Action::Allow))
        .filter(|(_, r)| match_flow(&r.rule, &l, &os, false) == FlowMatch::Yes)
        .map(|(i, _)| i)
        .collect();
    let mut enabled = false;
    for &i in &rdp {
        if !w.cfg.policy.rules[i].rule.active {
            enabled |= w.set_active(i, true, codes::RDP_RULE_DISABLED);
        } else {
            enabled = true;
        }
    }
    if !enabled {
        w.add_port_rule(3389, codes::RDP_RULE_MISSING);
    }
}

/// One round: fixes for the causes of the current diagnosis. Returns true when something
/// changed.
fn fix_round(w: &mut Work<'_>, d: &Diagnosis) -> bool {
    let mut changed = false;
    let port = d.port;
    // Outside the firewall.
    for f in &d.findings {
        match f.code {
            codes::RDP_DISABLED => {
                let policy = f.store == Some(Store::GroupPolicy);
                let s = if policy {
                    w.cfg.deny_ts_policy.clone()
                } else {
                    w.cfg.deny_ts.clone()
                };
                if let Some(s) = s.filter(|s| s.value) {
                    if !policy || w.opts.include_policy_cache {
                        changed |= w.set_dword(
                            &s.origin,
                            Some(1),
                            0,
                            codes::RDP_DISABLED,
                            FixKind::EnableRdp,
                        );
                        let off = Some(Setting::new(false, s.origin.clone()));
                        if policy {
                            w.cfg.deny_ts_policy = off
                        } else {
                            w.cfg.deny_ts = off
                        }
                    }
                }
            }
            codes::RDP_PORT_INVALID => {
                if let Some(p) = w.cfg.port.clone() {
                    changed |= w.set_dword(
                        &p.origin,
                        Some(p.value),
                        3389,
                        codes::RDP_PORT_INVALID,
                        FixKind::SetRdpPort { port: 3389 },
                    );
                    w.cfg.port = Some(Setting::new(3389, p.origin));
                }
            }
            codes::FIREWALL_SERVICE_DISABLED | codes::TERMSERVICE_DISABLED => {
                let want = if f.code == codes::TERMSERVICE_DISABLED {
                    3
                } else {
                    2
                };
                let names: &[&str] = if want == 3 {
                    &["TermService"]
                } else {
                    &["MpsSvc", "BFE"]
                };
                for svc in w
                    .cfg
                    .services
                    .iter_mut()
                    .filter(|s| names.iter().any(|n| n.eq_ignore_ascii_case(&s.name)))
                {
                    if svc.start == Some(4) {
                        svc.start = Some(want);
                        let kind = FixKind::ServiceStart {
                            service: svc.name.clone(),
                            start: want,
                        };
                        w.changes.push(Change::at(
                            &svc.start_origin(),
                            Some("4".into()),
                            Op::SetDword(want),
                            f.code,
                            kind,
                        ));
                        changed = true;
                    }
                }
            }
            _ => {}
        }
    }
    for p in &d.profiles {
        let has_disabled_fix = p
            .causes
            .iter()
            .any(|c| c.code == codes::RDP_RULE_DISABLED && c.store != Some(Store::GroupPolicy));
        for c in &p.causes {
            match c.code {
                codes::BLOCK_ALL_INBOUND => {
                    let outbound = w.local_outbound_block(p.profile);
                    if let Some(o) = c.origin.clone() {
                        if let Some(sp) = w.store_profile_mut(&o) {
                            sp.shielded = None;
                            changed |= w.delete_value(
                                &o,
                                "1".into(),
                                c.code,
                                FixKind::RemoveShield {
                                    profile: p.profile,
                                    outbound_block: outbound,
                                },
                            );
                        }
                    }
                }
                codes::BLOCK_RULE => {
                    if let Some(i) = w.cause_rule(c) {
                        if w.cfg.policy.rules[i].rule.active {
                            changed |= w.set_active(i, false, c.code);
                        }
                    }
                }
                codes::RDP_RULE_DISABLED if c.store != Some(Store::GroupPolicy) => {
                    if let Some(i) = w.cause_rule(c) {
                        let r = &w.cfg.policy.rules[i].rule;
                        if !r.active && r.is_well_formed() {
                            changed |= w.set_active(i, true, c.code);
                        }
                    }
                }
                codes::RDP_RULE_WRONG_PROFILE
                    if !has_disabled_fix && c.store != Some(Store::GroupPolicy) =>
                {
                    if let Some(i) = w.cause_rule(c) {
                        changed |= w.add_profile(i, p.profile);
                    }
                }
                codes::RDP_PORT_NOT_ALLOWED | codes::RDP_RULE_MISSING => {
                    changed |= w.add_port_rule(port, c.code);
                }
                codes::IPSEC_REQUIRED => {
                    let idx = c.origin.as_ref().and_then(|o| {
                        w.cfg
                            .policy
                            .consec_rules
                            .iter()
                            .position(|r| r.origin.same_place(o))
                    });
                    if let Some(i) = idx {
                        let cs = &mut w.cfg.policy.consec_rules[i];
                        if cs.store == Store::Local || w.opts.include_policy_cache {
                            let before = cs.rule.raw.to_string();
                            let mut raw = cs.rule.raw.clone();
                            if raw.set("Active", "FALSE") {
                                let after = raw.to_string();
                                cs.rule = ConSecRule::parse(&cs.rule.id, &after);
                                let kind = FixKind::DisableConSec {
                                    id: cs.rule.id.clone(),
                                    name: cs
                                        .rule
                                        .name
                                        .clone()
                                        .unwrap_or_else(|| cs.rule.id.clone()),
                                };
                                w.changes.push(Change::at(
                                    &cs.origin,
                                    Some(before),
                                    Op::SetString(after),
                                    c.code,
                                    kind,
                                ));
                                changed = true;
                            }
                        }
                    }
                }
                codes::POLICY_OVERRIDE if w.opts.include_policy_cache => {
                    changed |= fix_policy(w, p.profile, c, &p.causes);
                }
                _ => {}
            }
        }
    }
    changed
}

/// The Group Policy cache edits `--include-policy-cache` allows, for the Group Policy cause
/// `c` of profile `p` (`causes`: all of the profile's causes). A policy block rule is disabled;
/// otherwise the policy's "block all" is removed first, then local rules are merged again,
/// each found by the origin its cause names.
fn fix_policy(w: &mut Work<'_>, p: Profile, c: &Cause, causes: &[Cause]) -> bool {
    if let Some(i) = w.cause_rule(c) {
        let sr = &w.cfg.policy.rules[i];
        if sr.store == Store::GroupPolicy && sr.rule.action == Some(Action::Block) && sr.rule.active
        {
            return w.set_active(i, false, c.code);
        }
    }
    let policy_origin = |name: &str| {
        causes
            .iter()
            .filter(|x| x.code == codes::POLICY_OVERRIDE)
            .filter_map(|x| x.origin.clone())
            .find(|o| o.hive == HiveKind::Software && o.value_name().eq_ignore_ascii_case(name))
    };
    if let Some(o) = policy_origin("DoNotAllowExceptions") {
        let outbound = w.local_outbound_block(p);
        if let Some(sp) = w.store_profile_mut(&o) {
            if sp.shielded.as_ref().is_some_and(|s| s.value) {
                sp.shielded = None;
                return w.delete_value(
                    &o,
                    "1".into(),
                    c.code,
                    FixKind::RemoveShield {
                        profile: p,
                        outbound_block: outbound,
                    },
                );
            }
        }
    }
    if let Some(o) = policy_origin("AllowLocalPolicyMerge") {
        if let Some(sp) = w.store_profile_mut(&o) {
            if sp
                .allow_local_policy_merge
                .as_ref()
                .is_some_and(|s| !s.value)
            {
                sp.allow_local_policy_merge = Some(Setting::new(true, o.clone()));
                return w.set_dword(
                    &o,
                    Some(0),
                    1,
                    c.code,
                    FixKind::AllowLocalRules { profile: p },
                );
            }
        }
    }
    false
}

fn collect_unresolved(w: &Work<'_>, after: &Diagnosis, out: &mut Vec<Unresolved>) {
    let cs = w.cfg.control_set.clone();
    let mut add = |code: Code, detail: &str, action: &str| {
        if !out
            .iter()
            .any(|u| u.control_set == cs && u.detail == detail)
        {
            out.push(Unresolved {
                control_set: cs.clone(),
                code,
                detail: detail.to_string(),
                action: action.to_string(),
            });
        }
    };
    for p in &after.profiles {
        if p.verdict == guestwall_firewall::Verdict::Allowed {
            continue;
        }
        for c in p.causes.iter().filter(|c| c.blocks) {
            let action = match c.code {
                codes::POLICY_OVERRIDE => {
                    c.fix.clone().unwrap_or_default()
                        + " (or run again with --include-policy-cache for a temporary fix)"
                }
                _ => c.fix.clone().unwrap_or_else(|| "see the cause".into()),
            };
            let when = if c.conditions.is_empty() {
                String::new()
            } else {
                format!(" (only when {})", c.conditions.join("; "))
            };
            add(
                c.code,
                &format!("{}: {}{when}", p.profile, c.detail),
                &action,
            );
        }
        let named = p
            .causes
            .iter()
            .any(|c| c.blocks && (!c.conditions.is_empty() || c.code == Code::Unknown));
        if p.verdict == guestwall_firewall::Verdict::Conditional && !named {
            add(
                Code::Conditional,
                &format!("{}: RDP passes only for some clients (a rule is scoped by address or port)", p.profile),
                "check the scope of the rules named above; guestwall does not widen a deliberate scope",
            );
        }
    }
    for f in &after.findings {
        if matches!(
            f.code,
            codes::RDP_DISABLED
                | codes::FIREWALL_SERVICE_DISABLED
                | codes::TERMSERVICE_DISABLED
                | codes::IPSEC_REQUIRED
        ) {
            add(f.code, &f.detail, f.fix.as_deref().unwrap_or(""));
        }
    }
}

/// Writes the plan for people: each change (hive, key, value, before → after), then what
/// stays unresolved and the warnings.
pub fn write_plan(plan: &Plan, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    if plan.changes.is_empty() && !plan.unresolved.is_empty() {
        writeln!(
            out,
            "No change guestwall can make here (see what is not fixed, below)."
        )?;
    } else if plan.changes.is_empty() {
        writeln!(out, "No change needed.")?;
    } else {
        writeln!(out, "Changes ({}):", plan.changes.len())?;
        for c in &plan.changes {
            let before = c.before.as_deref().unwrap_or("(absent)");
            let after = c.after().unwrap_or_else(|| "(deleted)".into());
            match &c.shown_as() {
                Some(shown) => writeln!(
                    out,
                    "  [{}] {shown}\n      (netsh shows no rule ID: before and after are its display in rule-string form)",
                    c.code
                )?,
                None => writeln!(out, "  [{}] {}\\{}\\{}", c.code, c.hive, c.key, c.value)?,
            }
            if before.len() + after.len() > 60 {
                writeln!(out, "      before: {before}\n      after:  {after}")?;
            } else {
                writeln!(out, "      {before} -> {after}")?;
            }
            if c.policy_cache {
                writeln!(
                    out,
                    "      (Group Policy cache: the next policy refresh restores it)"
                )?;
            }
        }
    }
    for u in &plan.unresolved {
        writeln!(
            out,
            "Not fixed ({}, {}): {}\n  to do: {}",
            u.control_set, u.code, u.detail, u.action
        )?;
    }
    for wng in &plan.warnings {
        writeln!(out, "WARNING: {wng}")?;
    }
    Ok(())
}
