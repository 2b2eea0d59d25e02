//! Deciding whether an inbound flow passes, per profile ([MS-FASP] 2.2.34, 2.2.38).
//!
//! For a profile: a firewall that is off passes everything; a shielded profile
//! (`DoNotAllowExceptions`) blocks everything; otherwise the candidate rules are the Group
//! Policy rules, the local rules unless Group Policy turns local merge off, and the MDM rules,
//! each only if active, inbound, for this profile, well formed and for this OS. Among the rules
//! that match the flow: **bypass > block > allow > the default action**. Service hardening
//! block rules apply to their service on every profile.
//!
//! A rule can match definitely, not at all, or only under conditions that cannot be known
//! offline (the client's address or port, the NIC's address, an SDDL). A decision that
//! depends on such a rule is [`Verdict::Conditional`].

use crate::consec::ConSecRule;
use crate::origin::Origin;
use crate::rule::Rule;
use crate::settings::{effective_profile, EffectiveProfile, Store, StoreSettings};
use crate::values::{Action, Direction, IfType, Profile};

/// A rule and where it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRule {
    /// The store.
    pub store: Store,
    /// Where it was read: the store's rules key, and the rule's ID as the value.
    pub origin: Origin,
    /// The rule.
    pub rule: Rule,
    /// The rule's name in the VM's language, when it is not English and the name is known
    /// (what its console shows, and what netsh's `name=` matches there).
    pub local_name: Option<String>,
    /// The rule's group in the VM's language, likewise.
    pub local_group: Option<String>,
}

impl StoredRule {
    /// A rule read from `origin` in `store`, with no localized names.
    pub fn new(store: Store, origin: Origin, rule: Rule) -> StoredRule {
        StoredRule {
            store,
            origin,
            rule,
            local_name: None,
            local_group: None,
        }
    }

    /// The name reports show: the localized name, else the English text of an indirect
    /// string, else the string, else the ID.
    pub fn display_name(&self) -> String {
        self.local_name
            .clone()
            .unwrap_or_else(|| self.rule.display_name())
    }
}

/// A connection security rule and where it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConSec {
    /// The store.
    pub store: Store,
    /// Where it was read: the store's rules key, and the rule's ID as the value.
    pub origin: Origin,
    /// The rule.
    pub rule: ConSecRule,
}

/// The firewall configuration of a machine: both stores' profile settings and all rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// The local store's profiles.
    pub local: StoreSettings,
    /// The Group Policy store's profiles, when the machine has one.
    pub group_policy: Option<StoreSettings>,
    /// Firewall rules of every store.
    pub rules: Vec<StoredRule>,
    /// Connection security (IPsec) rules of every store.
    pub consec_rules: Vec<StoredConSec>,
}

/// What is known of the operating system.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Os {
    /// NT version (6.1 = Windows 7 / 2008 R2, 6.2 = Windows 8 / 2012, 10.0 = Windows 10+).
    pub nt: Option<(u32, u32)>,
    /// Build number.
    pub build: Option<u32>,
}

impl Os {
    /// The firewall schema version this OS implements ([MS-GPFAS] 6, note 1), when known.
    pub fn schema(&self) -> Option<(u8, u8)> {
        let (maj, min) = self.nt?;
        Some(match (maj, min, self.build.unwrap_or(0)) {
            (6, 0, _) => (2, 1),
            (6, 1, _) => (2, 10),
            (6, 2, _) => (2, 20),
            (6, 3, _) => (2, 22),
            (10, _, b) if b >= 18362 => (2, 30),
            (10, _, b) if b >= 17763 => (2, 29),
            (10, _, b) if b >= 17134 => (2, 28),
            (10, _, b) if b >= 15063 => (2, 27),
            (10, _, b) if b >= 14393 => (2, 26),
            (10, _, _) => (2, 25),
            (m, _, _) if m > 10 => (2, 30),
            _ => return None,
        })
    }
}

/// The process that accepts the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerProcess {
    /// The kernel (`App=System`), as for RDP up to Windows 7 / 2008 R2.
    System,
    /// A program (full path, e.g. `C:\Windows\system32\svchost.exe`) and its service, if any.
    Program {
        /// Full path.
        path: String,
        /// The service's short name.
        service: Option<String>,
    },
}

/// An inbound flow to a local listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// IP protocol (6 = TCP).
    pub protocol: u8,
    /// Local port.
    pub port: u16,
    /// The accepting process.
    pub process: ListenerProcess,
    /// The account it runs as (a SID).
    pub account: String,
}

impl Listener {
    /// Inbound Remote Desktop on TCP `port`: the kernel listener up to NT 6.1, svchost hosting
    /// TermService (as NetworkService) from NT 6.2 on. Without an OS version, NT 6.2+.
    pub fn rdp(os: &Os, port: u16) -> Listener {
        let process = match os.nt {
            Some((maj, min)) if (maj, min) <= (6, 1) => ListenerProcess::System,
            _ => ListenerProcess::Program {
                path: "C:\\Windows\\system32\\svchost.exe".into(),
                service: Some("TermService".into()),
            },
        };
        Listener {
            protocol: 6,
            port,
            process,
            account: "S-1-5-20".into(),
        }
    }
}

/// Whether a rule's conditions cover a flow (ignoring Active, Dir, profiles and action).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowMatch {
    /// It covers the flow.
    Yes,
    /// It does not; why.
    No(Mismatch),
    /// It covers the flow only under conditions unknown offline.
    Conditional(Vec<String>),
}

/// Why a rule does not cover a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// Another protocol.
    Protocol,
    /// Its local ports do not include the listener's port.
    Port,
    /// Another program.
    Program,
    /// Another service.
    Service,
    /// Scoped to an AppContainer package, which the listener is not in.
    AppContainer,
    /// Scoped to sockets owned by another user.
    Owner,
    /// Scoped to interface types the listener's NIC is not.
    InterfaceType,
    /// Not for this OS (Platform, SkipVer).
    Platform,
}

/// Expands the environment variables rules use and normalizes a path for comparison.
pub fn normalize_path(p: &str) -> String {
    let mut s = p.trim().trim_matches('"').to_string();
    for (var, val) in [
        ("%systemroot%", "c:\\windows"),
        ("%windir%", "c:\\windows"),
        ("%systemdrive%", "c:"),
        ("%programfiles%", "c:\\program files"),
        ("%programfiles(x86)%", "c:\\program files (x86)"),
        ("%programdata%", "c:\\programdata"),
    ] {
        let lower = s.to_ascii_lowercase();
        if let Some(i) = lower.find(var) {
            s.replace_range(i..i + var.len(), val);
        }
    }
    s.to_ascii_lowercase().replace('/', "\\")
}

fn platform_matches(rule: &Rule, os: &Os) -> bool {
    let Some((maj, min)) = os.nt else { return true };
    if rule.platform.is_empty() {
        return true;
    }
    let last = rule.platform.len() - 1;
    rule.platform.iter().enumerate().any(|(i, &(p, a, b))| {
        p == 2 && {
            let v = (maj, min);
            if i == last && rule.platform_gteq {
                v >= (a, b)
            } else {
                v == (a, b)
            }
        }
    })
}

/// Matches a rule's conditions against a flow. `ignore_port` asks "would it match on another
/// port" (to spot rules pinned to the default port).
pub fn match_flow(rule: &Rule, l: &Listener, os: &Os, ignore_port: bool) -> FlowMatch {
    if let Some(p) = rule.protocol {
        if p != l.protocol {
            return FlowMatch::No(Mismatch::Protocol);
        }
    }
    if !ignore_port && !rule.local_ports.covers(l.port) {
        return FlowMatch::No(Mismatch::Port);
    }
    if !rule.icmp.is_empty() {
        return FlowMatch::No(Mismatch::Protocol);
    }
    if let Some(app) = &rule.app {
        let ok = match &l.process {
            ListenerProcess::System => app.eq_ignore_ascii_case("System"),
            ListenerProcess::Program { path, .. } => normalize_path(app) == normalize_path(path),
        };
        if !ok {
            return FlowMatch::No(Mismatch::Program);
        }
    }
    if let Some(svc) = &rule.service {
        let ok = match &l.process {
            ListenerProcess::Program {
                service: Some(s), ..
            } => svc == "*" || svc.eq_ignore_ascii_case(s),
            _ => false,
        };
        if !ok {
            return FlowMatch::No(Mismatch::Service);
        }
    }
    if rule.app_pkg_id.is_some() {
        return FlowMatch::No(Mismatch::AppContainer);
    }
    if let Some(owner) = &rule.lu_own {
        if !owner.eq_ignore_ascii_case(&l.account) {
            return FlowMatch::No(Mismatch::Owner);
        }
    }
    if !rule.interface_types.is_empty() && !rule.interface_types.contains(&IfType::Lan) {
        return FlowMatch::No(Mismatch::InterfaceType);
    }
    if !platform_matches(rule, os) {
        return FlowMatch::No(Mismatch::Platform);
    }
    if let (Some(skip), Some(schema)) = (rule.skip_ver, os.schema()) {
        if schema <= skip {
            return FlowMatch::No(Mismatch::Platform);
        }
    }
    let mut conditions = Vec::new();
    if !rule.remote_ports.is_any() {
        conditions.push(format!("the client's port is in {}", rule.remote_ports));
    }
    if !rule.remote_addresses.is_any() {
        conditions.push(format!(
            "the client's address is in {}",
            rule.remote_addresses
        ));
    }
    if !rule.local_addresses.is_any() {
        conditions.push(format!("the VM's address is in {}", rule.local_addresses));
    }
    if !rule.interfaces.is_empty() {
        conditions.push(format!("the NIC is one of {}", rule.interfaces.join(",")));
    }
    if rule.lu_auth.is_some() {
        conditions.push("the local user authorization (LUAuth) admits the service".into());
    }
    for (name, value) in &rule.unknown {
        conditions.push(format!(
            "the token {name}={value} (not evaluated) does not exclude it"
        ));
    }
    if conditions.is_empty() {
        FlowMatch::Yes
    } else {
        FlowMatch::Conditional(conditions)
    }
}

/// Why a rule takes no part in a profile's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exclusion {
    /// `Active=FALSE` (or no Active token).
    Inactive,
    /// Not an inbound rule.
    NotInbound,
    /// Its profiles do not include this one.
    OtherProfile,
    /// A local rule, but Group Policy turned local rules off for this profile.
    LocalRulesOff,
    /// It does not parse; mpssvc would not load it.
    Malformed,
}

/// A rule's part in one profile's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleOutcome {
    /// Index into [`Policy::rules`].
    pub index: usize,
    /// Whether its conditions cover the flow.
    pub flow: FlowMatch,
    /// Whether it would cover the flow on another port.
    pub flow_any_port: FlowMatch,
    /// Why it is not a candidate, if it is not.
    pub excluded: Option<Exclusion>,
}

/// The firewall's decision for a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It passes.
    Allowed,
    /// It is dropped.
    Blocked,
    /// It depends on something unknown offline.
    Conditional,
}

impl Verdict {
    /// `allowed` / `blocked` / `conditional`.
    pub fn key(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Blocked => "blocked",
            Verdict::Conditional => "conditional",
        }
    }
}

/// What decided a profile's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decider {
    /// The profile's firewall is off.
    FirewallOff,
    /// The profile blocks all inbound (`DoNotAllowExceptions`).
    Shielded,
    /// These block rules match (definitely).
    BlockRules(Vec<usize>),
    /// These allow rules match and nothing blocks.
    AllowRules(Vec<usize>),
    /// No rule matches; the default action decides.
    DefaultAction,
    /// Rules that match only under conditions decide.
    ConditionalRules(Vec<usize>),
}

/// One profile's decision, with everything that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileDecision {
    /// The profile.
    pub profile: Profile,
    /// The settings in force.
    pub settings: EffectiveProfile,
    /// The verdict.
    pub verdict: Verdict,
    /// What decided it.
    pub decider: Decider,
    /// Every rule whose conditions (on any port) cover the flow, with why it is or is not a
    /// candidate.
    pub relevant: Vec<RuleOutcome>,
    /// Allow rules that match but admit only IPsec-authenticated traffic.
    pub auth_only: Vec<usize>,
    /// Bypass rules that match (they need IPsec; not counted for plain traffic).
    pub bypass: Vec<usize>,
}

impl Policy {
    /// Decides the flow for each profile.
    pub fn evaluate(&self, l: &Listener, os: &Os) -> Vec<ProfileDecision> {
        Profile::ALL
            .iter()
            .map(|&p| self.evaluate_profile(p, l, os))
            .collect()
    }

    /// Decides the flow for one profile.
    pub fn evaluate_profile(&self, p: Profile, l: &Listener, os: &Os) -> ProfileDecision {
        let settings = effective_profile(&self.local, self.group_policy.as_ref(), p);
        let mut relevant = Vec::new();
        for (i, sr) in self.rules.iter().enumerate() {
            let r = &sr.rule;
            // Outbound rules have no part in an inbound decision.
            if r.direction == Some(Direction::Out) {
                continue;
            }
            let flow_any_port = match_flow(r, l, os, true);
            if matches!(flow_any_port, FlowMatch::No(_)) {
                continue;
            }
            let flow = match_flow(r, l, os, false);
            let hardening = sr.store == Store::ServiceHardening;
            // Local rules do not count at all where Group Policy turns local merge off.
            let excluded = if !r.is_well_formed() {
                Some(Exclusion::Malformed)
            } else if r.direction != Some(Direction::In) {
                Some(Exclusion::NotInbound)
            } else if sr.store == Store::Local && !settings.allow_local_policy_merge.value {
                Some(Exclusion::LocalRulesOff)
            } else if !(r.active || hardening && r.raw.get("Active").is_none()) {
                Some(Exclusion::Inactive)
            } else if !r.profiles.contains(p) && !hardening {
                Some(Exclusion::OtherProfile)
            } else {
                None
            };
            relevant.push(RuleOutcome {
                index: i,
                flow,
                flow_any_port,
                excluded,
            });
        }

        let mut blocks = Vec::new();
        let mut cond_blocks = Vec::new();
        let mut allows = Vec::new();
        let mut cond_allows = Vec::new();
        let mut auth_only = Vec::new();
        let mut bypass = Vec::new();
        for o in relevant.iter().filter(|o| o.excluded.is_none()) {
            let sr = &self.rules[o.index];
            let definite = match &o.flow {
                FlowMatch::Yes => true,
                FlowMatch::Conditional(_) => false,
                FlowMatch::No(_) => continue,
            };
            match sr.rule.action {
                Some(Action::Block) => {
                    if definite {
                        blocks.push(o.index)
                    } else {
                        cond_blocks.push(o.index)
                    }
                }
                // Service hardening allow rules only narrow what a service may do.
                Some(Action::Allow) if sr.store == Store::ServiceHardening => {}
                Some(Action::Allow) => {
                    let needs_ipsec = !sr.rule.security.is_empty()
                        || sr.rule.rm_auth.is_some()
                        || sr.rule.ru_auth.is_some();
                    if needs_ipsec {
                        auth_only.push(o.index);
                    } else if definite {
                        allows.push(o.index);
                    } else {
                        cond_allows.push(o.index);
                    }
                }
                Some(Action::Bypass) => bypass.push(o.index),
                None => {}
            }
        }

        let (verdict, decider) = if !settings.enable_firewall.value {
            (Verdict::Allowed, Decider::FirewallOff)
        } else if settings.shielded.value {
            (Verdict::Blocked, Decider::Shielded)
        } else if !blocks.is_empty() {
            (Verdict::Blocked, Decider::BlockRules(blocks))
        } else if !allows.is_empty() {
            if cond_blocks.is_empty() {
                (Verdict::Allowed, Decider::AllowRules(allows))
            } else {
                (Verdict::Conditional, Decider::ConditionalRules(cond_blocks))
            }
        } else if !cond_allows.is_empty() {
            let mut all = cond_allows;
            all.extend(cond_blocks);
            (Verdict::Conditional, Decider::ConditionalRules(all))
        } else if !settings.default_inbound_block.value {
            if cond_blocks.is_empty() {
                (Verdict::Allowed, Decider::DefaultAction)
            } else {
                (Verdict::Conditional, Decider::ConditionalRules(cond_blocks))
            }
        } else {
            (Verdict::Blocked, Decider::DefaultAction)
        };
        ProfileDecision {
            profile: p,
            settings,
            verdict,
            decider,
            relevant,
            auth_only,
            bypass,
        }
    }

    /// Active connection security rules that demand IPsec for the flow, with the profiles
    /// they apply on (local ones only where Group Policy keeps local IPsec rules).
    pub fn ipsec_requirements(&self, l: &Listener) -> Vec<(usize, Vec<Profile>)> {
        let mut out = Vec::new();
        for (i, c) in self.consec_rules.iter().enumerate() {
            if !c.rule.requires_ipsec_for(l.protocol, l.port) {
                continue;
            }
            let profiles: Vec<Profile> = Profile::ALL
                .iter()
                .copied()
                .filter(|&p| c.rule.profiles.contains(p))
                .filter(|&p| {
                    c.store != Store::Local
                        || effective_profile(&self.local, self.group_policy.as_ref(), p)
                            .allow_local_ipsec_policy_merge
                            .value
                })
                .collect();
            if !profiles.is_empty() {
                out.push((i, profiles));
            }
        }
        out
    }
}
