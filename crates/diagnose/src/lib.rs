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
//! 3. [`write_text`] and [`write_json`] print it (the JSON schema is in `docs/json.md`).
//!
//! Cause codes are stable: see [`codes`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod report;

use serde::{Serialize, Serializer};

pub use report::{
    blocking_codes, error_json, grouped_causes, shell_quote, target_args, to_json, write_json,
    write_text, write_text_for, write_text_styled, write_text_with, write_wrapped, GroupedCause,
    Palette, JSON_SCHEMA,
};

use guestwall_firewall::names::display;
use guestwall_firewall::{
    match_flow, Action, Decider, Exclusion, FlowMatch, Listener, Mismatch, Profile,
    ProfileDecision, Store, StoredRule,
};

pub use guestwall_firewall::codes;
pub use guestwall_firewall::{
    Code, MachineConfig, NetworkHint, Note, Origin, ServiceStart, Verdict,
};

/// A rule as reports name it: ID, display name and store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    /// The rule ID (the registry value name).
    pub id: String,
    /// The display name (English text of an indirect string when known), if it has one.
    pub name: Option<String>,
    /// The store it lives in.
    #[serde(serialize_with = "store_key")]
    pub store: Store,
}

impl RuleRef {
    /// The reference to a stored rule.
    pub fn of(sr: &StoredRule) -> RuleRef {
        RuleRef {
            id: sr.rule.id.clone(),
            name: sr
                .local_name
                .clone()
                .or_else(|| sr.rule.name.as_deref().map(display)),
            store: sr.store,
        }
    }

    /// `rule "Name" (ID, store)`, for text.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) if *n != self.id => format!("rule \"{n}\" ({}, {})", self.id, self.store),
            _ => format!("rule {} ({})", self.id, self.store),
        }
    }
}

fn store_key<S: Serializer>(s: &Store, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.key())
}

fn opt_store_key<S: Serializer>(s: &Option<Store>, ser: S) -> Result<S::Ok, S::Error> {
    match s {
        Some(s) => ser.serialize_str(s.key()),
        None => ser.serialize_none(),
    }
}

/// One reason, with its stable code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cause {
    /// The code (see [`codes`]).
    pub code: Code,
    /// True when it keeps RDP from working (false: informational).
    #[serde(rename = "blocking")]
    pub blocks: bool,
    /// What is wrong, naming the exact key, value or rule.
    pub detail: String,
    /// What fixes it.
    pub fix: Option<String>,
    /// The rule, when a rule is the cause.
    #[serde(skip)]
    pub rule: Option<String>,
    /// The rule, as reports name it.
    #[serde(rename = "rule")]
    pub rule_ref: Option<RuleRef>,
    /// The store it lives in.
    #[serde(serialize_with = "opt_store_key")]
    pub store: Option<Store>,
    /// For a scoped rule: the conditions under which it applies.
    pub conditions: Vec<String>,
    /// For a scoped rule: what a client from the internet gets.
    pub internet_client: Option<String>,
    /// Where the deciding setting, rule or value was read.
    #[serde(skip)]
    pub origin: Option<Origin>,
}

/// One profile's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileResult {
    /// The profile.
    #[serde(skip)]
    pub profile: Profile,
    /// The firewall's decision for TCP to the RDP port.
    #[serde(serialize_with = "verdict_key")]
    pub verdict: Verdict,
    /// Why, in the article's order.
    pub causes: Vec<Cause>,
    /// The rules that allow RDP (when allowed).
    pub allowed_by: Vec<RuleRef>,
}

fn verdict_key<S: Serializer>(v: &Verdict, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(v.key())
}

/// Where the examined port comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PortSource {
    /// `RDP-Tcp\PortNumber` in the hive.
    Hive {
        /// The value's path.
        origin: Origin,
    },
    /// `--port`, because the hive has no (valid) PortNumber.
    CommandLine,
    /// Windows' default, 3389: the hive has no PortNumber.
    Default,
    /// 3389, because the input (a capture) does not show `PortNumber`: where RDP listens is
    /// unknown.
    Unknown,
}

/// The control set a diagnosis is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControlSetRef {
    /// Its key name (`ControlSet001`).
    pub name: String,
    /// Why it was diagnosed (`Select\Current`, …).
    pub source: String,
}

/// The OS, as far as it is known.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OsInfo {
    /// Product name and build, for display.
    pub name: Option<String>,
    /// NT version (`10.0`, `6.1`).
    pub version: Option<String>,
    /// Build number.
    pub build: Option<u32>,
    /// Inferred from the firewall rules (no SOFTWARE hive).
    pub inferred: bool,
}

/// The VM's language, as far as it is known, and where the rule names shown come from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LanguageInfo {
    /// The UI language's tag (`nl-NL`).
    pub tag: Option<String>,
    /// Where it was read (`SYSTEM\ControlSet001\Control\Nls\Language\InstallLanguage`).
    pub origin: Option<String>,
    /// Where the localized rule names come from (the VM's `FirewallAPI.dll.mui`, the built-in
    /// table, or none); absent for English.
    pub names_from: Option<String>,
    /// How many rule names and groups are known in that language.
    pub names_known: usize,
}

/// The diagnosis of one control set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// Which control set, for people.
    pub label: String,
    /// Which control set.
    pub control_set: ControlSetRef,
    /// The RDP port examined.
    pub port: u16,
    /// Where the port comes from.
    pub port_source: PortSource,
    /// True only when every profile is allowed and nothing else stops RDP.
    pub reachable: bool,
    /// Domain, Private, Public.
    pub profiles: Vec<ProfileResult>,
    /// Causes outside the firewall, and what is worth knowing.
    pub findings: Vec<Cause>,
    /// The OS.
    pub os: OsInfo,
    /// The VM's language.
    pub language: LanguageInfo,
}

impl Diagnosis {
    /// The OS's name, for display.
    pub fn os_name(&self) -> Option<&str> {
        self.os.name.as_deref()
    }
}

fn rule_label(sr: &StoredRule) -> String {
    RuleRef::of(sr).label()
}

fn cause(code: Code, blocks: bool, detail: String, fix: Option<String>) -> Cause {
    Cause {
        code,
        blocks,
        detail,
        fix,
        rule: None,
        rule_ref: None,
        store: None,
        conditions: Vec::new(),
        internet_client: None,
        origin: None,
    }
}

fn rule_cause(code: Code, sr: &StoredRule, detail: String, fix: String) -> Cause {
    Cause {
        code,
        blocks: true,
        detail,
        fix: Some(fix),
        rule: Some(sr.rule.id.clone()),
        rule_ref: Some(RuleRef::of(sr)),
        store: Some(sr.store),
        conditions: Vec::new(),
        internet_client: None,
        origin: Some(sr.origin.clone()),
    }
}

/// The port to examine and where it comes from: the hive's `PortNumber` when it has a valid
/// one; Windows' default 3389 when it has none (`--port` cannot move the listener: a differing
/// one is reported as a mismatch); when the hive's value is no valid port, `--port` or 3389 is
/// examined and the invalid value is reported. `--port` alone decides only where the port is
/// unknown (`port_unknown`: a capture that does not show it).
fn rdp_port(cfg: &MachineConfig, requested: Option<u16>) -> (u16, PortSource) {
    match &cfg.port {
        Some(p) => match u16::try_from(p.value).ok().filter(|v| *v != 0) {
            Some(v) => (
                v,
                PortSource::Hive {
                    origin: p.origin.clone(),
                },
            ),
            None => (
                requested.unwrap_or(3389),
                match requested {
                    Some(_) => PortSource::CommandLine,
                    None => PortSource::Default,
                },
            ),
        },
        None if cfg.port_unknown => match requested {
            Some(r) => (r, PortSource::CommandLine),
            None => (3389, PortSource::Unknown),
        },
        None => (3389, PortSource::Default),
    }
}

/// Diagnoses inbound RDP for one control set. `requested` is `--port`: it is used only when
/// the hive does not say where RDP listens; when it names another port than the hive's, a
/// [`codes::PORT_MISMATCH`] finding says so and the diagnosis is for the port RDP listens on.
pub fn diagnose(cfg: &MachineConfig, requested: Option<u16>) -> Diagnosis {
    let (port, port_source) = rdp_port(cfg, requested);
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
                    rule: Some(c.rule.id.clone()),
                    rule_ref: Some(RuleRef {
                        id: c.rule.id.clone(),
                        name: c.rule.name.as_deref().map(display),
                        store: c.store,
                    }),
                    store: Some(c.store),
                    origin: Some(c.origin.clone()),
                    ..cause(
                        codes::IPSEC_REQUIRED,
                        true,
                        format!(
                            "connection security rule {} ({}, {}) requires IPsec for TCP {port}; a client without IPsec times out",
                            c.rule.id, c.store, c.origin.key_only()
                        ),
                        Some(format!("disable it: set Active=FALSE in {}", c.origin.key_only())),
                    )
                });
            }
        }
        if !fw_service_down.is_empty() {
            // Without mpssvc the boot-time filters stay: everything inbound is dropped.
            r.verdict = Verdict::Blocked;
            for s in &fw_service_down {
                r.causes.insert(
                    0,
                    Cause {
                        origin: Some(s.start_origin()),
                        ..cause(
                            codes::FIREWALL_SERVICE_DISABLED,
                            true,
                            format!("{} is disabled ({} = 4): the boot-time filters block all inbound traffic", s.name, s.start_origin()),
                            Some(format!("set {} to 2 (automatic)", s.start_origin())),
                        )
                    },
                );
            }
        }
        if cfg.rules_unknown {
            unknown_rules(&mut r, port);
        }
        profiles.push(r);
    }

    let mut findings = Vec::new();
    if let Some(p) = cfg
        .port
        .as_ref()
        .filter(|p| u16::try_from(p.value).ok().is_none_or(|v| v == 0))
    {
        findings.push(Cause {
            origin: Some(p.origin.clone()),
            ..cause(
                codes::RDP_PORT_INVALID,
                true,
                format!(
                    "{} = {} is not a TCP port (1-65535): the Remote Desktop service cannot listen on it",
                    p.origin, p.value
                ),
                Some(format!("set {} to 3389 (or another free port)", p.origin)),
            )
        });
    }
    let mismatch_origin = match &port_source {
        PortSource::Hive { origin } => Some(origin.to_string()),
        PortSource::Default if cfg.port.is_none() && !cfg.port_unknown => {
            Some("Windows' default: the hive has no PortNumber".to_string())
        }
        _ => None,
    };
    if let (Some(r), Some(origin)) = (requested, &mismatch_origin) {
        if r != port {
            findings.push(cause(
                codes::PORT_MISMATCH,
                false,
                format!(
                    "--port {r} was given, but RDP listens on TCP {port} ({origin}): a client that connects to TCP {r} reaches no Remote Desktop listener. Everything here is for TCP {port}, the port RDP listens on"
                ),
                Some(format!(
                    "connect to TCP {port}; to move RDP to TCP {r}, set RDP-Tcp\\PortNumber to {r} and allow TCP {r} in the firewall and the cloud's network rules"
                )),
            ));
        }
    }
    let deny = match (&cfg.deny_ts_policy, &cfg.deny_ts) {
        (Some(p), _) => Some((p, true)),
        (None, Some(l)) => Some((l, false)),
        (None, None) => None,
    };
    if let Some((s, policy)) = deny {
        if s.value {
            findings.push(Cause {
                store: Some(if policy {
                    Store::GroupPolicy
                } else {
                    Store::Local
                }),
                origin: Some(s.origin.clone()),
                ..cause(
                    codes::RDP_DISABLED,
                    true,
                    format!(
                        "Remote Desktop is turned off: {} = 1{}",
                        s.origin,
                        if policy {
                            " (Group Policy: it overrides the local setting)"
                        } else {
                            ""
                        }
                    ),
                    Some(if policy {
                        format!("set {} to 0 in the policy (a GPO re-applies it)", s.origin)
                    } else {
                        format!("set {} to 0", s.origin)
                    }),
                )
            });
        }
    }
    for s in &fw_service_down {
        findings.push(Cause {
            origin: Some(s.start_origin()),
            ..cause(
                codes::FIREWALL_SERVICE_DISABLED,
                true,
                format!("{} is disabled ({} = 4): everything inbound is blocked, whatever the firewall rules say", s.name, s.start_origin()),
                Some(format!("set {} to 2 (automatic)", s.start_origin())),
            )
        });
    }
    if let Some(s) = service("TermService").filter(|_| disabled("TermService")) {
        findings.push(Cause {
            origin: Some(s.start_origin()),
            ..cause(
                codes::TERMSERVICE_DISABLED,
                true,
                format!("the Remote Desktop service is disabled ({} = 4): nothing listens on port {port}", s.start_origin()),
                Some(format!("set {} to 3 (manual, the default)", s.start_origin())),
            )
        });
    }
    for (i, _) in &ipsec {
        let c = &cfg.policy.consec_rules[*i];
        findings.push(Cause {
            origin: Some(c.origin.clone()),
            ..cause(
                codes::IPSEC_REQUIRED,
                true,
                format!(
                    "connection security rule {} ({}) requires IPsec for TCP {port}",
                    c.rule.id, c.store
                ),
                Some(format!(
                    "disable it: set Active=FALSE in {}",
                    c.origin.key_only()
                )),
            )
        });
    }
    if port != 3389 {
        findings.push(cause(
            codes::CUSTOM_PORT,
            false,
            format!(
                "RDP listens on TCP {port}, not the usual 3389; clients and the cloud's network rules (NSG) must use it"
            ),
            None,
        ));
    }
    for d in &decisions {
        if !d.settings.default_inbound_block.value && d.settings.enable_firewall.value {
            findings.push(cause(
                codes::DEFAULT_INBOUND_ALLOW,
                false,
                format!(
                    "the {} profile allows all inbound traffic by default (DefaultInboundAction = 0{}): not a blocker, but insecure",
                    d.profile,
                    d.settings.default_inbound_block.origin.as_ref().map(|o| format!(", {o}")).unwrap_or_default()
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
                false,
                format!(
                    "the {} profile's firewall is off on the interfaces {} ({}); if the VM's NIC is one of them, the profile's rules do not apply there",
                    d.profile,
                    di.value.join(","),
                    di.origin.as_ref().map(|o| o.to_string()).unwrap_or_default()
                ),
                None,
            ));
        }
    }
    if let Some(h) = &cfg.network_hint {
        findings.push(cause(
            codes::ACTIVE_PROFILE_HINT,
            false,
            format!(
                "the last network this machine knew, \"{}\"{}, was {}: that profile is likely active (Azure VMs are usually Public unless domain-joined)",
                h.name,
                h.last_connected.as_deref().map(|t| format!(" (last connected {t})")).unwrap_or_default(),
                h.profile
            ),
            None,
        ));
    }
    if let Some(active) = &cfg.active {
        if active.is_empty() {
            findings.push(cause(
                codes::ACTIVE_PROFILE,
                false,
                "the capture shows no connected network: no profile is active now".into(),
                None,
            ));
        }
        for a in active {
            let verdict = profiles
                .iter()
                .find(|p| p.profile == a.profile)
                .map_or("unknown", |p| p.verdict.key());
            let net = match (&a.name, &a.interface) {
                (Some(n), Some(i)) => format!("network \"{n}\" ({i})"),
                (Some(n), None) => format!("network \"{n}\""),
                (None, Some(i)) => format!("a network on {i}"),
                (None, None) => "a network".into(),
            };
            findings.push(Cause {
                origin: Some(a.origin.clone()),
                ..cause(
                    codes::ACTIVE_PROFILE,
                    false,
                    format!(
                        "the running machine is connected to {net} with the {} profile ({}): inbound TCP {port} is {} there now",
                        a.profile,
                        a.origin.capture.as_ref().map_or_else(|| a.origin.to_string(), |c| c.to_string()),
                        verdict.to_uppercase()
                    ),
                    None,
                )
            });
        }
    }
    for n in &cfg.notes {
        findings.push(cause(n.code, false, n.text.clone(), None));
    }

    let reachable = profiles.iter().all(|p| p.verdict == Verdict::Allowed)
        && !findings.iter().any(|f| f.blocks);
    Diagnosis {
        label: cfg.label.clone(),
        control_set: ControlSetRef {
            name: cfg.control_set.clone(),
            source: cfg.control_set_source.clone(),
        },
        port,
        port_source,
        reachable,
        profiles,
        findings,
        os: OsInfo {
            name: cfg.os_name.clone(),
            version: cfg.os.nt.map(|(a, b)| format!("{a}.{b}")),
            build: cfg.os.build,
            inferred: cfg.os_inferred,
        },
        language: LanguageInfo {
            tag: cfg.names.language.clone(),
            origin: cfg.names.language_origin.clone(),
            names_from: cfg.names.source.clone(),
            names_known: cfg.names.len(),
        },
    }
}

/// The input shows no firewall rule (a partial capture): "no rule allows RDP" would be a guess.
/// Such a cause becomes `unknown`, and a verdict that rests on it alone `conditional`.
fn unknown_rules(r: &mut ProfileResult, port: u16) {
    let mut replaced = false;
    for c in &mut r.causes {
        if c.code == codes::RDP_RULE_MISSING || c.code == codes::RDP_PORT_NOT_ALLOWED {
            *c = cause(
                codes::UNKNOWN,
                true,
                format!("the capture does not show every firewall rule, so whether one allows inbound TCP {port} is unknown"),
                Some("capture the rules too: run the collector (`guestwall collect`) on the VM, or `netsh advfirewall firewall show rule name=all dir=in verbose`".into()),
            );
            replaced = true;
        }
    }
    if replaced
        && r.verdict == Verdict::Blocked
        && r.causes
            .iter()
            .filter(|c| c.blocks)
            .all(|c| c.code == codes::UNKNOWN)
    {
        r.verdict = Verdict::Conditional;
    }
    r.causes.dedup();
}

/// What a client from the internet gets from a rule scoped by `conditions` (the rule's
/// remote addresses tell): for an allow rule, whether it falls through to the default
/// inbound action; for a block rule, whether it is blocked.
fn internet_client(sr: &StoredRule, allow: bool, default_block: bool) -> String {
    use guestwall_firewall::Address;
    let r = &sr.rule;
    let others = !r.local_addresses.is_any()
        || !r.interfaces.is_empty()
        || r.lu_auth.is_some()
        || !r.unknown.is_empty()
        || !r.remote_ports.is_any();
    // Does the remote-address scope take in arbitrary internet addresses?
    let internet = r.remote_addresses.is_any()
        || r.remote_addresses.items.iter().any(|a| match a {
            Address::Keyword(k) => k.eq_ignore_ascii_case("Internet") || k == "*",
            Address::Subnet(_, 0) => true,
            _ => false,
        });
    let listed = r
        .remote_addresses
        .items
        .iter()
        .any(|a| !matches!(a, Address::Keyword(_)));
    let fallback = if default_block { "blocked" } else { "allowed" };
    match (allow, internet, others) {
        (true, false, _) if listed => format!(
            "{fallback}, unless its address is one of {} (the rule covers only those; others fall through to the default inbound action)",
            r.remote_addresses
        ),
        (true, false, _) => format!(
            "{fallback}: the rule covers only {}, so a client from the internet falls through to the default inbound action",
            r.remote_addresses
        ),
        (true, true, _) => "admitted by this rule if the conditions above hold on the VM (they cannot be checked offline)".to_string(),
        (false, false, _) => format!(
            "not blocked by this rule (it blocks only {})",
            r.remote_addresses
        ),
        (false, true, _) => "blocked by this rule if the conditions above hold on the VM".to_string(),
    }
}

fn scoped_cause(
    sr: &StoredRule,
    conditions: &[String],
    port: u16,
    default_block: bool,
    disabled: bool,
) -> Cause {
    let allow = sr.rule.action == Some(Action::Allow);
    let mut c = rule_cause(
        codes::RDP_RULE_SCOPED,
        sr,
        if disabled {
            format!(
                "{} would allow TCP {port} only to some clients (see the conditions), and is disabled; guestwall does not enable it, because it would not let a client from outside that scope in",
                rule_label(sr)
            )
        } else {
            format!(
                "{} allows TCP {port} only to some clients (see the conditions); guestwall does not widen a scope set on purpose",
                rule_label(sr)
            )
        },
        if disabled {
            "leave it; the RDP rule for every client is what is missing (see the other causes)"
                .to_string()
        } else {
            format!(
                "if clients from elsewhere must connect, widen its scope (RemoteIP) in {}, or connect from inside the scope",
                sr.origin
            )
        },
    );
    c.blocks = !disabled;
    c.conditions = conditions.to_vec();
    c.internet_client = Some(internet_client(sr, allow, default_block));
    c
}

fn profile_result(cfg: &MachineConfig, d: &ProfileDecision, port: u16) -> ProfileResult {
    let policy = &cfg.policy;
    let rule = |i: usize| &policy.rules[i];
    let mut causes = Vec::new();
    let mut allowed_by = Vec::new();
    let p = d.profile;
    let default_block = d.settings.default_inbound_block.value;

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
            .map(|&i| RuleRef::of(rule(i)))
            .collect();
    }
    let conditions_of = |i: usize| -> Vec<String> {
        d.relevant
            .iter()
            .find(|o| o.index == i)
            .and_then(|o| match &o.flow {
                FlowMatch::Conditional(c) => Some(c.clone()),
                _ => None,
            })
            .unwrap_or_default()
    };

    // Cause 1: no rule allows RDP on this profile.
    if effective_allow.is_empty() && d.settings.enable_firewall.value {
        let allows = |o: &&guestwall_firewall::RuleOutcome| {
            rule(o.index).rule.action == Some(Action::Allow)
                && rule(o.index).store != Store::ServiceHardening
        };
        // A rule that covers every client, in any state; and enabled rules in force that
        // cover only some clients (a deliberate scope: not "missing").
        let mut found_any = false;
        let mut scoped_in_force = false;
        for o in d.relevant.iter().filter(allows) {
            let sr = rule(o.index);
            match &o.flow {
                FlowMatch::Yes => {
                    found_any = true;
                    match &o.excluded {
                        Some(Exclusion::Inactive) if sr.rule.profiles.contains(p) => {
                            causes.push(rule_cause(
                                codes::RDP_RULE_DISABLED,
                                sr,
                                format!(
                                    "{} would allow TCP {port} but is disabled (Active=FALSE)",
                                    rule_label(sr)
                                ),
                                format!("enable it: Active=TRUE in {}", sr.origin),
                            ));
                        }
                        Some(Exclusion::OtherProfile) => {
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
                                    "add the missing profile(s) to it (a Profile= token in {})",
                                    sr.origin
                                ),
                            ));
                        }
                        Some(Exclusion::LocalRulesOff) => {
                            let merge = d.settings.allow_local_policy_merge.origin.clone();
                            let origin = merge.as_ref().map(|o| o.to_string()).unwrap_or_default();
                            causes.push(Cause {
                                origin: merge,
                                ..rule_cause(
                                    codes::POLICY_OVERRIDE,
                                    sr,
                                    format!(
                                        "{} would allow TCP {port}, but Group Policy turns local rules off (AllowLocalPolicyMerge = 0, {origin})",
                                        rule_label(sr)
                                    ),
                                    "allow local rules in the GPO, or add the RDP rule to the GPO; a local change cannot override it".into(),
                                )
                            });
                        }
                        Some(Exclusion::Malformed) => {
                            causes.push(rule_cause(
                                codes::RDP_RULE_DISABLED,
                                sr,
                                format!("{} would allow TCP {port} but does not parse ({}), so Windows ignores it", rule_label(sr), sr.rule.problems.join("; ")),
                                format!("repair the rule string in {}", sr.origin),
                            ));
                        }
                        _ => {}
                    }
                }
                FlowMatch::Conditional(conds) => {
                    let in_force = o.excluded.is_none();
                    let disabled_here = matches!(o.excluded, Some(Exclusion::Inactive))
                        && sr.rule.profiles.contains(p);
                    if in_force {
                        scoped_in_force = true;
                    }
                    if in_force || disabled_here {
                        causes.push(scoped_cause(sr, conds, port, default_block, !in_force));
                    }
                }
                FlowMatch::No(_) => {}
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
        if port != 3389 && !pinned.is_empty() && !found_any && !scoped_in_force {
            let names: Vec<String> = pinned
                .iter()
                .map(|sr| format!("{} (LPort={})", rule_label(sr), sr.rule.local_ports))
                .collect();
            causes.push(Cause {
                rule: pinned.first().map(|sr| sr.rule.id.clone()),
                rule_ref: pinned.first().map(|sr| RuleRef::of(sr)),
                store: pinned.first().map(|sr| sr.store),
                origin: pinned.first().map(|sr| sr.origin.clone()),
                ..cause(
                    codes::RDP_PORT_NOT_ALLOWED,
                    true,
                    format!("RDP listens on TCP {port}, but the RDP rules cover other ports: {}", names.join(", ")),
                    Some(format!("add an inbound allow rule for TCP {port} (the Remote Desktop listener), or set the RDP port back to 3389")),
                )
            });
        } else if !found_any && !scoped_in_force {
            causes.push(cause(
                codes::RDP_RULE_MISSING,
                true,
                format!("no firewall rule allows inbound TCP {port} to the Remote Desktop service for every client, in any state or profile"),
                Some(format!("restore the Remote Desktop rules (group \"Remote Desktop\"), or add an allow rule for TCP {port}")),
            ));
        }
    }

    // Cause 2: the profile blocks all inbound.
    if d.settings.enable_firewall.value && d.settings.shielded.value {
        let shield = d.settings.shielded.origin.clone();
        let origin = shield.as_ref().map(|o| o.to_string()).unwrap_or_default();
        let gp = d.settings.shielded.store == Some(Store::GroupPolicy);
        causes.push(Cause {
            store: d.settings.shielded.store,
            origin: shield,
            ..cause(
                if gp { codes::POLICY_OVERRIDE } else { codes::BLOCK_ALL_INBOUND },
                true,
                format!(
                    "the profile blocks all inbound connections: {origin} = 1 (netsh: BlockInboundAlways){}",
                    if gp { "; set by Group Policy, where \"on\" wins over the local store" } else { "" }
                ),
                Some(if gp {
                    "change \"Block all incoming connections\" in the GPO; a local change cannot override it".into()
                } else {
                    // This profile only, keeping its outbound action (as the script does).
                    let outbound = policy
                        .local
                        .profile(p, false)
                        .and_then(|s| s.default_outbound_block.as_ref())
                        .is_some_and(|s| s.value);
                    format!(
                        "delete {origin} (or set it to 0); netsh: set {}profile firewallpolicy blockinbound,{}",
                        match p {
                            Profile::Domain => "domain",
                            Profile::Private => "private",
                            Profile::Public => "public",
                        },
                        if outbound { "blockoutbound" } else { "allowoutbound" }
                    )
                }),
            )
        });
    }

    // Block rules (definite, or scoped: then the verdict is conditional).
    if let Decider::BlockRules(ix) | Decider::ConditionalRules(ix) = &d.decider {
        for &i in ix {
            let sr = rule(i);
            if sr.rule.action != Some(Action::Block) {
                continue;
            }
            let conds = conditions_of(i);
            let (code, fix) = match sr.store {
                Store::GroupPolicy => (
                    codes::POLICY_OVERRIDE,
                    "change or remove the rule in the GPO; a local change cannot override it"
                        .to_string(),
                ),
                _ => (
                    codes::BLOCK_RULE,
                    format!(
                        "disable it: Active=FALSE in {} (do not delete it)",
                        sr.origin
                    ),
                ),
            };
            let mut c = rule_cause(
                code,
                sr,
                format!("{} blocks inbound TCP {port}", rule_label(sr)),
                fix,
            );
            if !conds.is_empty() {
                c.internet_client = Some(internet_client(sr, false, default_block));
                c.conditions = conds;
            }
            causes.push(c);
        }
    }

    if !d.settings.enable_firewall.value {
        let off = d.settings.enable_firewall.origin.clone();
        let origin = off.as_ref().map(|o| o.to_string()).unwrap_or_default();
        causes.push(Cause {
            store: d.settings.enable_firewall.store,
            origin: off,
            ..cause(
                codes::FIREWALL_OFF,
                false,
                format!("the profile's firewall is off ({origin} = 0): RDP passes, but the machine is unprotected there"),
                Some(format!("turn it back on ({origin} = 1) once RDP is allowed by rule")),
            )
        });
    }
    for &i in &d.auth_only {
        let sr = rule(i);
        causes.push(rule_cause(
            codes::IPSEC_REQUIRED,
            sr,
            format!(
                "{} allows TCP {port} only to IPsec-authenticated clients",
                rule_label(sr)
            ),
            format!(
                "remove the Security/authorization tokens from {}, or use an IPsec-capable client",
                sr.origin
            ),
        ));
    }
    // A blocked or conditional verdict always names what decides it.
    if d.verdict != Verdict::Allowed && !causes.iter().any(|c| c.blocks) {
        causes.push(cause(
            codes::RDP_RULE_MISSING,
            true,
            format!("no firewall rule in force allows inbound TCP {port} on this profile, and the default inbound action blocks it"),
            Some(format!("enable or add an allow rule for TCP {port} (the Remote Desktop listener)")),
        ));
    }
    ProfileResult {
        profile: p,
        verdict: d.verdict,
        causes,
        allowed_by,
    }
}
