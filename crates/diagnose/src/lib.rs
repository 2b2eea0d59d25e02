//! Why a Windows machine refuses inbound Remote Desktop: the firewall's verdict per profile,
//! the neighbouring causes (RDP disabled, services disabled, IPsec), and the report.
//!
//! # Getting started
//!
//! 1. Describe the machine as a [`MachineConfig`]: its firewall [`Policy`], the OS, and the RDP
//!    facts (fDenyTSConnections, the port, the services). The ingest layer builds it from
//!    hives; tests build it by hand.
//! 2. [`diagnose`] returns a [`Diagnosis`]: per profile a [`Verdict`] and its causes, plus
//!    findings outside the firewall, in the order Microsoft's article reasons: the RDP rule,
//!    then block-all-inbound, then the rest.
//! 3. [`write_text`] and [`write_json`] print it.
//!
//! Cause codes are stable: see [`codes`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::io::{self, Write};

use guestwall_firewall::names::display;
use guestwall_firewall::{
    match_flow, Action, Decider, Exclusion, FlowMatch, Listener, Mismatch, Os, Policy, Profile,
    ProfileDecision, Setting, Store, StoredRule, Verdict,
};

/// The cause codes used in causes and findings.
pub mod codes {
    /// DoNotAllowExceptions (netsh: BlockInboundAlways) in the local store.
    pub const BLOCK_ALL_INBOUND: &str = "block-all-inbound";
    /// An RDP allow rule exists but is disabled.
    pub const RDP_RULE_DISABLED: &str = "rdp-rule-disabled";
    /// No rule allows RDP at all.
    pub const RDP_RULE_MISSING: &str = "rdp-rule-missing";
    /// An enabled RDP rule leaves this profile out.
    pub const RDP_RULE_WRONG_PROFILE: &str = "rdp-rule-wrong-profile";
    /// A custom RDP port with no rule that covers it.
    pub const RDP_PORT_NOT_ALLOWED: &str = "rdp-port-not-allowed";
    /// An enabled local block rule matches.
    pub const BLOCK_RULE: &str = "block-rule";
    /// Group Policy decides: merge off, policy block-all, or a policy block rule.
    pub const POLICY_OVERRIDE: &str = "policy-override";
    /// fDenyTSConnections=1, local or policy.
    pub const RDP_DISABLED: &str = "rdp-disabled";
    /// MpsSvc or BFE disabled: everything inbound is blocked.
    pub const FIREWALL_SERVICE_DISABLED: &str = "firewall-service-disabled";
    /// TermService disabled.
    pub const TERMSERVICE_DISABLED: &str = "termservice-disabled";
    /// An IPsec rule demands authentication for the RDP port.
    pub const IPSEC_REQUIRED: &str = "ipsec-required";
    /// The profile is off: RDP passes, but the machine is unprotected.
    pub const FIREWALL_OFF: &str = "firewall-off";
    /// Informational: the RDP listener port is not 3389.
    pub const CUSTOM_PORT: &str = "custom-port";
    /// Informational: the last network the machine knew, as a hint of the active profile.
    pub const ACTIVE_PROFILE_HINT: &str = "active-profile-hint";
    /// Informational: Select\Default (next boot) is not Select\Current.
    pub const CONTROL_SET_MISMATCH: &str = "control-set-mismatch";
    /// Informational: default inbound action is allow (insecure, not a blocker).
    pub const DEFAULT_INBOUND_ALLOW: &str = "default-inbound-allow";
    /// Informational: the profile's firewall is off on some interfaces (DisabledInterfaces).
    pub const DISABLED_INTERFACES: &str = "disabled-interfaces";
    /// Informational: something about the input (dirty hive, missing SOFTWARE, …).
    pub const INPUT_NOTE: &str = "input-note";
}

/// A service's start type as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceStart {
    /// Short name (`MpsSvc`, `BFE`, `TermService`).
    pub name: String,
    /// `Start` (2 automatic, 3 manual, 4 disabled); `None` when the service key is missing.
    pub start: Option<u32>,
    /// Where it was read.
    pub origin: String,
}

/// The network the machine last knew, as a hint of which profile will be active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkHint {
    /// The profile (from the network's category).
    pub profile: Profile,
    /// The network's name.
    pub name: String,
    /// When it was last connected, as text.
    pub last_connected: Option<String>,
}

/// Everything the diagnosis needs to know about one control set of a machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineConfig {
    /// What this is, e.g. `ControlSet001 (Select\Current)`.
    pub label: String,
    /// The control set's key name (`ControlSet001`).
    pub control_set: String,
    /// The firewall.
    pub policy: Policy,
    /// The OS, when known.
    pub os: Os,
    /// The OS's name and build, for display.
    pub os_name: Option<String>,
    /// `Terminal Server\fDenyTSConnections`.
    pub deny_ts: Option<Setting<bool>>,
    /// The Group Policy copy of fDenyTSConnections (it wins when set).
    pub deny_ts_policy: Option<Setting<bool>>,
    /// `RDP-Tcp\PortNumber`.
    pub port: Option<Setting<u32>>,
    /// MpsSvc, BFE and TermService.
    pub services: Vec<ServiceStart>,
    /// The last known network.
    pub network_hint: Option<NetworkHint>,
    /// Notes about the input, shown as informational findings.
    pub notes: Vec<String>,
}

/// One reason, with its stable code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// The code (see [`codes`]).
    pub code: &'static str,
    /// What is wrong, naming the exact key, value or rule.
    pub detail: String,
    /// What fixes it.
    pub fix: Option<String>,
    /// The rule ID, when a rule is the cause.
    pub rule: Option<String>,
    /// The store it lives in.
    pub store: Option<Store>,
}

/// One profile's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileResult {
    /// The profile.
    pub profile: Profile,
    /// The firewall's decision for TCP to the RDP port.
    pub verdict: Verdict,
    /// Why, in the article's order.
    pub causes: Vec<Cause>,
    /// The rules that allow RDP (when allowed).
    pub allowed_by: Vec<String>,
}

/// The diagnosis of one control set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// Which control set.
    pub label: String,
    /// The RDP port examined.
    pub port: u16,
    /// True only when every profile is allowed and nothing else stops RDP.
    pub reachable: bool,
    /// Domain, Private, Public.
    pub profiles: Vec<ProfileResult>,
    /// Causes outside the firewall, and what is worth knowing.
    pub findings: Vec<Cause>,
    /// The OS, for display.
    pub os_name: Option<String>,
}

fn rule_label(sr: &StoredRule) -> String {
    let name = sr.rule.name.as_deref().map(display);
    match name {
        Some(n) if n != sr.rule.id => format!("rule \"{n}\" ({}, {})", sr.rule.id, sr.store),
        _ => format!("rule {} ({})", sr.rule.id, sr.store),
    }
}

fn cause(code: &'static str, detail: String, fix: Option<String>) -> Cause {
    Cause {
        code,
        detail,
        fix,
        rule: None,
        store: None,
    }
}

fn rule_cause(code: &'static str, sr: &StoredRule, detail: String, fix: String) -> Cause {
    Cause {
        code,
        detail,
        fix: Some(fix),
        rule: Some(sr.rule.id.clone()),
        store: Some(sr.store),
    }
}

/// Diagnoses inbound RDP for one control set. `port` overrides the configured RDP port.
pub fn diagnose(cfg: &MachineConfig, port: Option<u16>) -> Diagnosis {
    let configured = cfg.port.as_ref().map(|p| p.value);
    let port = port
        .or(configured
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0))
        .unwrap_or(3389);
    let listener = Listener::rdp(&cfg.os, port);
    let decisions = cfg.policy.evaluate(&listener, &cfg.os);
    let ipsec = cfg.policy.ipsec_requirements(&listener);
    let service = |n: &str| cfg.services.iter().find(|s| s.name.eq_ignore_ascii_case(n));
    let disabled = |n: &str| service(n).is_some_and(|s| s.start == Some(4));
    let fw_service_down: Vec<&ServiceStart> = ["MpsSvc", "BFE"]
        .iter()
        .filter_map(|n| service(n).filter(|s| s.start == Some(4)))
        .collect();

    let mut profiles = Vec::new();
    for d in &decisions {
        let mut r = profile_result(cfg, d, port);
        for (i, ps) in &ipsec {
            if ps.contains(&d.profile) {
                let c = &cfg.policy.consec_rules[*i];
                r.causes.push(Cause {
                    code: codes::IPSEC_REQUIRED,
                    detail: format!(
                        "connection security rule {} ({}, {}) requires IPsec for TCP {port}; a client without IPsec times out",
                        c.rule.id, c.store, c.origin
                    ),
                    fix: Some(format!("disable it: set Active=FALSE in {}", c.origin)),
                    rule: Some(c.rule.id.clone()),
                    store: Some(c.store),
                });
            }
        }
        if !fw_service_down.is_empty() {
            // Without mpssvc the boot-time filters stay: everything inbound is dropped.
            r.verdict = Verdict::Blocked;
            for s in &fw_service_down {
                r.causes.insert(
                    0,
                    cause(
                        codes::FIREWALL_SERVICE_DISABLED,
                        format!("{} is disabled ({}\\Start = 4): the boot-time filters block all inbound traffic", s.name, s.origin),
                        Some(format!("set {}\\Start to 2 (automatic)", s.origin)),
                    ),
                );
            }
        }
        profiles.push(r);
    }

    let mut findings = Vec::new();
    let deny = match (&cfg.deny_ts_policy, &cfg.deny_ts) {
        (Some(p), _) => Some((p, true)),
        (None, Some(l)) => Some((l, false)),
        (None, None) => None,
    };
    if let Some((s, policy)) = deny {
        if s.value {
            findings.push(Cause {
                code: codes::RDP_DISABLED,
                detail: format!(
                    "Remote Desktop is turned off: {} = 1{}",
                    s.origin,
                    if policy {
                        " (Group Policy: it overrides the local setting)"
                    } else {
                        ""
                    }
                ),
                fix: Some(if policy {
                    format!("set {} to 0 in the policy (a GPO re-applies it)", s.origin)
                } else {
                    format!("set {} to 0", s.origin)
                }),
                rule: None,
                store: Some(if policy {
                    Store::GroupPolicy
                } else {
                    Store::Local
                }),
            });
        }
    }
    for s in &fw_service_down {
        findings.push(cause(
            codes::FIREWALL_SERVICE_DISABLED,
            format!("{} is disabled ({}\\Start = 4): everything inbound is blocked, whatever the firewall rules say", s.name, s.origin),
            Some(format!("set {}\\Start to 2 (automatic)", s.origin)),
        ));
    }
    if let Some(s) = service("TermService").filter(|_| disabled("TermService")) {
        findings.push(cause(
            codes::TERMSERVICE_DISABLED,
            format!("the Remote Desktop service is disabled ({}\\Start = 4): nothing listens on port {port}", s.origin),
            Some(format!("set {}\\Start to 3 (manual, the default)", s.origin)),
        ));
    }
    if !ipsec.is_empty() {
        for (i, _) in &ipsec {
            let c = &cfg.policy.consec_rules[*i];
            findings.push(cause(
                codes::IPSEC_REQUIRED,
                format!(
                    "connection security rule {} ({}) requires IPsec for TCP {port}",
                    c.rule.id, c.store
                ),
                Some(format!("disable it: set Active=FALSE in {}", c.origin)),
            ));
        }
    }
    if port != 3389 {
        findings.push(cause(
            codes::CUSTOM_PORT,
            format!(
                "RDP listens on TCP {port}{}; clients and the cloud's network rules (NSG) must use it",
                cfg.port.as_ref().map(|p| format!(" ({})", p.origin)).unwrap_or_default()
            ),
            None,
        ));
    }
    for d in &decisions {
        if !d.settings.default_inbound_block.value && d.settings.enable_firewall.value {
            findings.push(cause(
                codes::DEFAULT_INBOUND_ALLOW,
                format!(
                    "the {} profile allows all inbound traffic by default (DefaultInboundAction = 0{}): not a blocker, but insecure",
                    d.profile,
                    d.settings.default_inbound_block.origin.as_deref().map(|o| format!(", {o}")).unwrap_or_default()
                ),
                None,
            ));
        }
    }
    for d in &decisions {
        let di = &d.settings.disabled_interfaces;
        if !di.value.is_empty() {
            findings.push(cause(
                codes::DISABLED_INTERFACES,
                format!(
                    "the {} profile's firewall is off on the interfaces {} ({}); if the VM's NIC is one of them, the profile's rules do not apply there",
                    d.profile,
                    di.value.join(","),
                    di.origin.as_deref().unwrap_or("")
                ),
                None,
            ));
        }
    }
    if let Some(h) = &cfg.network_hint {
        findings.push(cause(
            codes::ACTIVE_PROFILE_HINT,
            format!(
                "the last network this machine knew, \"{}\"{}, was {}: that profile is likely active (Azure VMs are usually Public unless domain-joined)",
                h.name,
                h.last_connected.as_deref().map(|t| format!(" (last connected {t})")).unwrap_or_default(),
                h.profile
            ),
            None,
        ));
    }
    for n in &cfg.notes {
        findings.push(cause(codes::INPUT_NOTE, n.clone(), None));
    }

    let blocking = [
        codes::RDP_DISABLED,
        codes::FIREWALL_SERVICE_DISABLED,
        codes::TERMSERVICE_DISABLED,
        codes::IPSEC_REQUIRED,
    ];
    let reachable = profiles.iter().all(|p| p.verdict == Verdict::Allowed)
        && !findings.iter().any(|f| blocking.contains(&f.code));
    Diagnosis {
        label: cfg.label.clone(),
        port,
        reachable,
        profiles,
        findings,
        os_name: cfg.os_name.clone(),
    }
}

fn profile_result(cfg: &MachineConfig, d: &ProfileDecision, port: u16) -> ProfileResult {
    let policy = &cfg.policy;
    let rule = |i: usize| &policy.rules[i];
    let mut causes = Vec::new();
    let mut allowed_by = Vec::new();
    let p = d.profile;

    // Allow rules in force for this profile.
    let effective_allow: Vec<usize> = d
        .relevant
        .iter()
        .filter(|o| o.excluded.is_none() && o.flow == FlowMatch::Yes)
        .filter(|o| {
            rule(o.index).rule.action == Some(Action::Allow) && !d.auth_only.contains(&o.index)
        })
        .filter(|o| rule(o.index).store != Store::ServiceHardening)
        .map(|o| o.index)
        .collect();
    if d.verdict == Verdict::Allowed {
        allowed_by = effective_allow
            .iter()
            .map(|&i| rule_label(rule(i)))
            .collect();
    }

    // Cause 1: no rule allows RDP on this profile.
    if effective_allow.is_empty() && d.settings.enable_firewall.value {
        let allows = |o: &&guestwall_firewall::RuleOutcome| {
            rule(o.index).rule.action == Some(Action::Allow)
                && rule(o.index).store != Store::ServiceHardening
        };
        let mut found_any = false;
        for o in d.relevant.iter().filter(allows) {
            let sr = rule(o.index);
            let covers = matches!(o.flow, FlowMatch::Yes | FlowMatch::Conditional(_));
            if covers {
                found_any = true;
            }
            match (&o.excluded, covers) {
                (Some(Exclusion::Inactive), true) if sr.rule.profiles.contains(p) => {
                    causes.push(rule_cause(
                        codes::RDP_RULE_DISABLED,
                        sr,
                        format!(
                            "{} would allow TCP {port} but is disabled (Active=FALSE)",
                            rule_label(sr)
                        ),
                        format!("enable it: Active=TRUE in {}\\{}", sr.origin, sr.rule.id),
                    ));
                }
                (Some(Exclusion::OtherProfile), true) => {
                    let code = if sr.rule.active {
                        codes::RDP_RULE_WRONG_PROFILE
                    } else {
                        codes::RDP_RULE_DISABLED
                    };
                    causes.push(rule_cause(
                        code,
                        sr,
                        format!(
                            "{} allows TCP {port} only on the {} profile(s){}",
                            rule_label(sr),
                            sr.rule.profiles,
                            if sr.rule.active {
                                ""
                            } else {
                                " and is disabled"
                            }
                        ),
                        format!(
                            "add the {p} profile to it (Profile={p} in {}\\{})",
                            sr.origin, sr.rule.id
                        ),
                    ));
                }
                (Some(Exclusion::LocalRulesOff), true) => {
                    let origin = d
                        .settings
                        .allow_local_policy_merge
                        .origin
                        .clone()
                        .unwrap_or_default();
                    causes.push(rule_cause(
                        codes::POLICY_OVERRIDE,
                        sr,
                        format!(
                            "{} would allow TCP {port}, but Group Policy turns local rules off on this profile (AllowLocalPolicyMerge = 0, {origin})",
                            rule_label(sr)
                        ),
                        "allow local rules in the GPO, or add the RDP rule to the GPO; a local change cannot override it".into(),
                    ));
                }
                (Some(Exclusion::Malformed), true) => {
                    causes.push(rule_cause(
                        codes::RDP_RULE_DISABLED,
                        sr,
                        format!("{} would allow TCP {port} but does not parse ({}), so Windows ignores it", rule_label(sr), sr.rule.problems.join("; ")),
                        format!("repair the rule string in {}\\{}", sr.origin, sr.rule.id),
                    ));
                }
                _ => {}
            }
        }
        // Rules pinned to the default port 3389 when RDP listens elsewhere.
        let default_listener = Listener::rdp(&cfg.os, 3389);
        let pinned: Vec<&StoredRule> = d
            .relevant
            .iter()
            .filter(allows)
            .filter(|o| o.flow == FlowMatch::No(Mismatch::Port))
            .map(|o| rule(o.index))
            .filter(|sr| match_flow(&sr.rule, &default_listener, &cfg.os, false) == FlowMatch::Yes)
            .collect();
        if port != 3389 && !pinned.is_empty() {
            let names: Vec<String> = pinned
                .iter()
                .map(|sr| format!("{} (LPort={})", rule_label(sr), sr.rule.local_ports))
                .collect();
            causes.push(Cause {
                code: codes::RDP_PORT_NOT_ALLOWED,
                detail: format!("RDP listens on TCP {port}, but the RDP rules cover other ports: {}", names.join(", ")),
                fix: Some(format!("add an inbound allow rule for TCP {port} (svchost.exe, service TermService), or set the RDP port back to 3389")),
                rule: pinned.first().map(|sr| sr.rule.id.clone()),
                store: pinned.first().map(|sr| sr.store),
            });
        } else if !found_any {
            causes.push(cause(
                codes::RDP_RULE_MISSING,
                format!("no firewall rule allows inbound TCP {port} to the Remote Desktop service, in any state or profile"),
                Some(format!("restore the Remote Desktop rules (group \"Remote Desktop\"), or add an allow rule for TCP {port}")),
            ));
        }
    }

    // Cause 2: the profile blocks all inbound.
    if d.settings.enable_firewall.value && d.settings.shielded.value {
        let origin = d.settings.shielded.origin.clone().unwrap_or_default();
        let gp = d.settings.shielded.store == Some(Store::GroupPolicy);
        causes.push(Cause {
            code: if gp { codes::POLICY_OVERRIDE } else { codes::BLOCK_ALL_INBOUND },
            detail: format!(
                "the {p} profile blocks all inbound connections: {origin} = 1 (netsh: BlockInboundAlways){}",
                if gp { "; set by Group Policy, where \"on\" wins over the local store" } else { "" }
            ),
            fix: Some(if gp {
                "change \"Block all incoming connections\" in the GPO; a local change cannot override it".into()
            } else {
                format!("delete {origin} (or set it to 0); netsh: set allprofiles firewallpolicy blockinbound,allowoutbound")
            }),
            rule: None,
            store: d.settings.shielded.store,
        });
    }

    // Block rules.
    if let Decider::BlockRules(ix) | Decider::ConditionalRules(ix) = &d.decider {
        for &i in ix {
            let sr = rule(i);
            if sr.rule.action != Some(Action::Block) {
                continue;
            }
            let conditional =
                d.relevant
                    .iter()
                    .find(|o| o.index == i)
                    .and_then(|o| match &o.flow {
                        FlowMatch::Conditional(c) => Some(c.join("; ")),
                        _ => None,
                    });
            let when = conditional
                .map(|c| format!(" when {c}"))
                .unwrap_or_default();
            let (code, fix) = match sr.store {
                Store::GroupPolicy => (
                    codes::POLICY_OVERRIDE,
                    "change or remove the rule in the GPO; a local change cannot override it"
                        .to_string(),
                ),
                _ => (
                    codes::BLOCK_RULE,
                    format!(
                        "disable it: Active=FALSE in {}\\{} (do not delete it)",
                        sr.origin, sr.rule.id
                    ),
                ),
            };
            causes.push(rule_cause(
                code,
                sr,
                format!("{} blocks inbound TCP {port}{when}", rule_label(sr)),
                fix,
            ));
        }
    }

    if !d.settings.enable_firewall.value {
        let origin = d
            .settings
            .enable_firewall
            .origin
            .clone()
            .unwrap_or_default();
        causes.push(Cause {
            code: codes::FIREWALL_OFF,
            detail: format!("the {p} profile's firewall is off ({origin} = 0): RDP passes, but the machine is unprotected on this profile"),
            fix: Some(format!("turn it back on ({origin} = 1) once RDP is allowed by rule")),
            rule: None,
            store: d.settings.enable_firewall.store,
        });
    }
    for &i in &d.auth_only {
        let sr = rule(i);
        causes.push(rule_cause(
            codes::IPSEC_REQUIRED,
            sr,
            format!("{} allows TCP {port} only to IPsec-authenticated clients", rule_label(sr)),
            format!("remove the Security/authorization tokens from {}\\{}, or use an IPsec-capable client", sr.origin, sr.rule.id),
        ));
    }
    ProfileResult {
        profile: p,
        verdict: d.verdict,
        causes,
        allowed_by,
    }
}

/// Writes the diagnoses for people: per control set, a verdict per profile with its causes and
/// fixes, then the findings.
pub fn write_text(diags: &[Diagnosis], out: &mut dyn Write) -> io::Result<()> {
    for (n, d) in diags.iter().enumerate() {
        if n > 0 {
            writeln!(out)?;
        }
        writeln!(out, "{}", d.label)?;
        if let Some(os) = &d.os_name {
            writeln!(out, "  OS: {os}")?;
        }
        writeln!(out, "  Inbound TCP {} (Remote Desktop):", d.port)?;
        for p in &d.profiles {
            writeln!(
                out,
                "  {:<8} {}",
                p.profile.to_string(),
                p.verdict.key().to_uppercase()
            )?;
            for r in &p.allowed_by {
                writeln!(out, "           allowed by {r}")?;
            }
            for c in &p.causes {
                writeln!(out, "           - [{}] {}", c.code, c.detail)?;
                if let Some(f) = &c.fix {
                    writeln!(out, "             fix: {f}")?;
                }
            }
        }
        if !d.findings.is_empty() {
            writeln!(out, "  Findings:")?;
            for c in &d.findings {
                writeln!(out, "  - [{}] {}", c.code, c.detail)?;
                if let Some(f) = &c.fix {
                    writeln!(out, "    fix: {f}")?;
                }
            }
        }
        writeln!(
            out,
            "  Result: RDP is {}",
            if d.reachable {
                "reachable on every profile"
            } else {
                "NOT reachable (see above)"
            }
        )?;
    }
    Ok(())
}

fn cause_json(c: &Cause) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("code".into(), c.code.into());
    m.insert("detail".into(), c.detail.clone().into());
    if let Some(f) = &c.fix {
        m.insert("fix".into(), f.clone().into());
    }
    if let Some(r) = &c.rule {
        m.insert("rule".into(), r.clone().into());
    }
    if let Some(s) = c.store {
        m.insert("store".into(), s.key().into());
    }
    serde_json::Value::Object(m)
}

/// The JSON form of one diagnosis.
pub fn to_json(d: &Diagnosis) -> serde_json::Value {
    let mut profiles = serde_json::Map::new();
    for p in &d.profiles {
        profiles.insert(
            p.profile.key().into(),
            serde_json::json!({
                "verdict": p.verdict.key(),
                "causes": p.causes.iter().map(cause_json).collect::<Vec<_>>(),
                "allowed_by": p.allowed_by,
            }),
        );
    }
    serde_json::json!({
        "control_set": d.label,
        "port": d.port,
        "reachable": d.reachable,
        "profiles": profiles,
        "findings": d.findings.iter().map(cause_json).collect::<Vec<_>>(),
    })
}

/// Writes the diagnosis as JSON: the first control set's fields at the top level
/// (`port`, `reachable`, `profiles`, `findings`); when several control sets were diagnosed,
/// `reachable` covers all of them and `control_sets` lists each one.
pub fn write_json(diags: &[Diagnosis], out: &mut dyn Write) -> io::Result<()> {
    let mut top = diags
        .first()
        .map(to_json)
        .unwrap_or_else(|| serde_json::json!({}));
    if diags.len() > 1 {
        if let Some(m) = top.as_object_mut() {
            m.insert("reachable".into(), diags.iter().all(|d| d.reachable).into());
            m.insert(
                "control_sets".into(),
                diags.iter().map(to_json).collect::<Vec<_>>().into(),
            );
        }
    }
    serde_json::to_writer_pretty(&mut *out, &top)?;
    writeln!(out)
}
