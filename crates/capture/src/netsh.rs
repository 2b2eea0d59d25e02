//! `netsh advfirewall show allprofiles|currentprofile|<x>profile` and
//! `netsh advfirewall firewall show rule ...` output, in every language of [`crate::lang`].
//!
//! Both are display-level: netsh shows names in the machine's language, no rule IDs, no
//! package IDs, and folds several rule-string tokens into one line. Each value keeps its text
//! next to its parsed form ([`Field`]).

use std::sync::Arc;

use guestwall_firewall::{Action, Direction, Profile, ProfileSet};

use crate::lang::{self, Language, ProfileKey, RuleLabel};
use crate::transcript::{clip, full_width, Line};
use crate::{Capture, Field, Note, NoteKind, Origin};

/// The 70-dash separator (any run of 20 or more dashes is accepted).
fn is_dashes(s: &str) -> bool {
    let t = s.trim();
    t.len() >= 20 && t.bytes().all(|b| b == b'-')
}

/// `Edge traversal` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// `No`.
    No,
    /// `Yes`.
    Yes,
    /// `Defer to application`.
    DeferToApp,
    /// `Defer to user`.
    DeferToUser,
}

/// An address or port list: `Any`, or the items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum List {
    /// `Any` (in any language).
    Any,
    /// The comma-separated items, as shown.
    Items(Vec<String>),
}

fn list(text: &str) -> List {
    if lang::is_any(text).is_some() {
        List::Any
    } else {
        List::Items(
            text.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        )
    }
}

/// `Protocol:` values: `Any`, or the IP protocol number (TCP 6, UDP 17, ICMPv4 1, ICMPv6 58).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Any protocol.
    Any,
    /// A protocol number.
    Number(u8),
}

fn protocol(text: &str) -> Option<Protocol> {
    let t = text.trim();
    if lang::is_any(t).is_some() {
        return Some(Protocol::Any);
    }
    Some(Protocol::Number(match t.to_ascii_uppercase().as_str() {
        "TCP" => 6,
        "UDP" => 17,
        "ICMPV4" => 1,
        "ICMPV6" => 58,
        _ => t.parse().ok()?,
    }))
}

/// One `show rule` block. Display-level: no rule ID, no package ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetshRule {
    /// The `Rule Name:` line.
    pub origin: Origin,
    /// The label language of the block (the most specific one seen).
    pub language: Language,
    /// `Rule Name` (the display name, localized).
    pub name: Field<String>,
    /// `Description` (verbose only).
    pub description: Option<Field<String>>,
    /// `Enabled`.
    pub enabled: Option<Field<bool>>,
    /// `Direction`.
    pub direction: Option<Field<Direction>>,
    /// `Profiles`.
    pub profiles: Option<Field<ProfileSet>>,
    /// `Grouping` (`Some` with empty text when the rule has no group).
    pub grouping: Option<Field<String>>,
    /// `LocalIP`.
    pub local_ip: Option<Field<List>>,
    /// `RemoteIP`.
    pub remote_ip: Option<Field<List>>,
    /// `Protocol`.
    pub protocol: Option<Field<Protocol>>,
    /// `LocalPort` (TCP/UDP only).
    pub local_port: Option<Field<List>>,
    /// `RemotePort` (TCP/UDP only).
    pub remote_port: Option<Field<List>>,
    /// ICMP `Type    Code` rows.
    pub icmp: Vec<(String, String)>,
    /// `Edge traversal`.
    pub edge: Option<Field<Edge>>,
    /// `Program` (verbose).
    pub program: Option<Field<String>>,
    /// `Service` (verbose).
    pub service: Option<Field<String>>,
    /// `InterfaceTypes` (verbose).
    pub interface_types: Option<Field<String>>,
    /// `Security` (verbose).
    pub security: Option<Field<String>>,
    /// `Rule source` (verbose).
    pub rule_source: Option<Field<String>>,
    /// `Action`.
    pub action: Option<Field<Action>>,
    /// Lines inside the block that were not understood: (line, text).
    pub unknown: Vec<(usize, String)>,
}

impl NetshRule {
    fn new(origin: Origin, language: Language, name: Field<String>) -> NetshRule {
        NetshRule {
            origin,
            language,
            name,
            description: None,
            enabled: None,
            direction: None,
            profiles: None,
            grouping: None,
            local_ip: None,
            remote_ip: None,
            protocol: None,
            local_port: None,
            remote_port: None,
            icmp: Vec::new(),
            edge: None,
            program: None,
            service: None,
            interface_types: None,
            security: None,
            rule_source: None,
            action: None,
            unknown: Vec::new(),
        }
    }
}

/// Splits `Label:   value` at the first colon (ASCII or full-width).
fn split_label(s: &str) -> Option<(&str, &str)> {
    let pos = s.find([':', '：'])?;
    let label = s.get(..pos)?;
    let colon_len = s.get(pos..)?.chars().next()?.len_utf8();
    let value = s.get(pos + colon_len..)?;
    if label.trim().is_empty() || label.starts_with(' ') {
        return None;
    }
    // The end is trimmed after a wrapped value is joined (a break may fall on a space).
    Some((label.trim_end(), value.trim_start()))
}

/// The rule label a line starts with, preferring the one that comes after `after` in field
/// order (labels read through a wrong code page can be ambiguous).
fn rule_label(s: &str, after: Option<RuleLabel>) -> Option<(RuleLabel, Language, String)> {
    let (label, value) = split_label(s)?;
    let cands = lang::rule_labels(label);
    let pick = cands
        .iter()
        .find(|(k, _)| after.is_none_or(|a| *k > a))
        .or_else(|| cands.first())?;
    Some((pick.0, pick.1, value.to_string()))
}

/// True when the line starts a rule block (`Rule Name:` in any language).
pub(crate) fn is_rule_start(s: &str) -> bool {
    matches!(rule_label(s, None), Some((RuleLabel::RuleName, _, _)))
}

/// True when the line is a rule field other than the name (a block cut at its start).
pub(crate) fn is_rule_field(s: &str) -> bool {
    matches!(rule_label(s, None), Some((k, _, _)) if k != RuleLabel::RuleName)
}

/// `Ok.` in any language.
pub(crate) fn is_ok_line(s: &str) -> Option<Language> {
    let t = s.trim();
    lang::OK_LINES
        .iter()
        .find(|(w, _)| *w == t)
        .map(|(_, l)| *l)
}

/// `No rules match the specified criteria.` in a known language.
pub(crate) fn is_no_rules(s: &str) -> Option<Language> {
    let t = s.trim();
    lang::NO_RULES
        .iter()
        .find(|(w, _)| lang::same(t, w))
        .map(|(_, l)| *l)
}

fn profiles_value(text: &str) -> (Option<ProfileSet>, Vec<Language>) {
    let mut set = ProfileSet::EMPTY;
    let mut langs = Vec::new();
    if lang::is_any(text).is_some() {
        return (Some(ProfileSet::ALL), langs);
    }
    for part in text.split(',') {
        match lang::lookup(lang::PROFILES, part) {
            Some((p, l)) => {
                set.insert(p);
                langs.push(l);
            }
            None => return (None, langs),
        }
    }
    (Some(set), langs)
}

/// Parses rule blocks from `lines[start]` (a `Rule Name:` line, or a field line when the
/// capture was cut). Returns the lines used (at least one) and whether it started mid-block.
pub(crate) fn parse_rules(lines: &[Line], start: usize, cap: &mut Capture) -> (usize, bool) {
    let file: Arc<str> = Arc::clone(&cap.origin_name);
    let mut i = start;
    let mut rule: Option<NetshRule> = None;
    let mut last: Option<RuleLabel> = None;
    let mut started_mid = false;
    let mut in_icmp = false;
    let finish = |rule: &mut Option<NetshRule>, cap: &mut Capture| {
        if let Some(r) = rule.take() {
            cap.saw(r.language);
            cap.rules.push(r);
        }
    };
    while let Some(line) = lines.get(i) {
        let text = line.text.as_str();
        if text.trim().is_empty() {
            in_icmp = false;
            i += 1;
            // A blank line ends a block; the listing goes on when the next line is a rule.
            let next = lines.get(i).map(|l| l.text.as_str()).unwrap_or("");
            if !(is_rule_start(next) || next.trim().is_empty() || is_ok_line(next).is_some()) {
                break;
            }
            continue;
        }
        if is_dashes(text) {
            i += 1;
            continue;
        }
        if let Some(l) = is_ok_line(text) {
            cap.saw(l);
            i += 1;
            break;
        }
        if let Some(l) = is_no_rules(text) {
            cap.saw(l);
            cap.notes.push(Note::new(
                Some(line.number),
                NoteKind::Info,
                "netsh: no rule matched the command's filter",
            ));
            i += 1;
            break;
        }
        // ICMP sub-table rows, indented to the value column.
        if text.starts_with(' ') {
            let t = text.trim();
            let cols: Vec<&str> = t.split_whitespace().collect();
            if let Some(r) = rule.as_mut() {
                if cols.len() == 2 && cols[0] == "Type" && cols[1] == "Code" {
                    in_icmp = true;
                } else if in_icmp && cols.len() == 2 {
                    r.icmp.push((cols[0].to_string(), cols[1].to_string()));
                } else {
                    r.unknown.push((line.number, t.to_string()));
                }
            }
            i += 1;
            continue;
        }
        in_icmp = false;
        let Some((label, lang, mut value)) = rule_label(text, last) else {
            // A wrapped value: the previous line filled the console width.
            let prev = i.checked_sub(1).and_then(|p| lines.get(p));
            if let (Some(r), Some(p), Some(k)) = (rule.as_mut(), prev, last) {
                if full_width(&p.text) && append_to(r, k, text) {
                    i += 1;
                    continue;
                }
            }
            break;
        };
        // Join the following lines when this one fills the console width.
        let mut j = i + 1;
        let mut tail = text.to_string();
        while full_width(&tail) {
            match lines.get(j) {
                Some(n)
                    if !n.text.trim().is_empty()
                        && rule_label(&n.text, Some(label)).is_none()
                        && !is_dashes(&n.text)
                        && is_ok_line(&n.text).is_none() =>
                {
                    value.push_str(&n.text);
                    tail = n.text.clone();
                    j += 1;
                }
                _ => break,
            }
        }
        let value = value.trim_end().to_string();
        let number = line.number;
        if label == RuleLabel::RuleName {
            finish(&mut rule, cap);
            rule = Some(NetshRule::new(
                Origin::new(&file, number),
                lang,
                Field::new(value.clone(), Some(value), number),
            ));
            last = Some(RuleLabel::RuleName);
            i = j;
            continue;
        }
        let r = match rule.as_mut() {
            Some(r) => r,
            None => {
                started_mid = true;
                cap.notes.push(Note::new(
                    Some(number),
                    NoteKind::Truncated,
                    "netsh rule fields without their `Rule Name:` line (the start of the output is missing): kept as a rule with an unknown name",
                ));
                rule.insert(NetshRule::new(
                    Origin::new(&file, number),
                    lang,
                    Field::new("", None, number),
                ))
            }
        };
        if lang != Language::English {
            r.language = lang;
        }
        set_field(r, label, &value, number, cap_langs(&mut cap.languages));
        last = Some(label);
        i = j;
    }
    finish(&mut rule, cap);
    (i.saturating_sub(start).max(1), started_mid)
}

fn cap_langs(v: &mut Vec<Language>) -> &mut Vec<Language> {
    v
}

fn seen(langs: &mut Vec<Language>, l: Language) {
    if !langs.contains(&l) {
        langs.push(l);
    }
}

fn set_field(
    r: &mut NetshRule,
    label: RuleLabel,
    value: &str,
    n: usize,
    langs: &mut Vec<Language>,
) {
    let text = value.to_string();
    let s = |v: &str| Some(Field::new(v, Some(v.to_string()), n));
    match label {
        RuleLabel::RuleName => {}
        RuleLabel::Description => r.description = s(value),
        RuleLabel::Enabled => {
            let v = lang::lookup(lang::YES_NO, value);
            if let Some((_, l)) = v {
                seen(langs, l);
            }
            r.enabled = Some(Field::new(text, v.map(|x| x.0), n));
        }
        RuleLabel::Direction => {
            let v = lang::lookup(lang::DIRECTIONS, value);
            if let Some((_, l)) = v {
                seen(langs, l);
            }
            r.direction = Some(Field::new(text, v.map(|x| x.0), n));
        }
        RuleLabel::Profiles => {
            let (v, ls) = profiles_value(value);
            for l in ls {
                seen(langs, l);
            }
            r.profiles = Some(Field::new(text, v, n));
        }
        RuleLabel::Grouping => r.grouping = s(value),
        RuleLabel::LocalIp => r.local_ip = Some(Field::new(text, Some(list(value)), n)),
        RuleLabel::RemoteIp => r.remote_ip = Some(Field::new(text, Some(list(value)), n)),
        RuleLabel::Protocol => r.protocol = Some(Field::new(text, protocol(value), n)),
        RuleLabel::LocalPort => r.local_port = Some(Field::new(text, Some(list(value)), n)),
        RuleLabel::RemotePort => r.remote_port = Some(Field::new(text, Some(list(value)), n)),
        RuleLabel::Edge => {
            let v = lang::lookup(lang::YES_NO, value)
                .map(|(b, l)| (if b { Edge::Yes } else { Edge::No }, l))
                .or_else(|| lang::lookup(lang::EDGE, value));
            r.edge = Some(Field::new(text, v.map(|x| x.0), n));
        }
        RuleLabel::Program => r.program = s(value),
        RuleLabel::Service => r.service = s(value),
        RuleLabel::InterfaceTypes => r.interface_types = s(value),
        RuleLabel::Security => r.security = s(value),
        RuleLabel::RuleSource => r.rule_source = s(value),
        RuleLabel::Action => {
            let v = lang::lookup(lang::ACTIONS, value);
            if let Some((_, l)) = v {
                seen(langs, l);
            }
            r.action = Some(Field::new(text, v.map(|x| x.0), n));
        }
    }
}

/// Appends a wrapped continuation to the text fields that can be long.
fn append_to(r: &mut NetshRule, k: RuleLabel, more: &str) -> bool {
    let f = match k {
        RuleLabel::Description => r.description.as_mut(),
        RuleLabel::Program => r.program.as_mut(),
        RuleLabel::Grouping => r.grouping.as_mut(),
        RuleLabel::RuleName => Some(&mut r.name),
        _ => None,
    };
    match f {
        Some(f) => {
            f.text.push_str(more);
            if let Some(v) = f.value.as_mut() {
                v.push_str(more);
            }
            true
        }
        None => false,
    }
}

/// Inbound part of `Firewall Policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundPolicy {
    /// `BlockInbound`: inbound blocked unless a rule allows it.
    BlockInbound,
    /// `BlockInboundAlways`: blocked even when a rule allows it.
    BlockInboundAlways,
    /// `AllowInbound`.
    AllowInbound,
    /// `NotConfigured`.
    NotConfigured,
}

/// Outbound part of `Firewall Policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundPolicy {
    /// `AllowOutbound`.
    AllowOutbound,
    /// `BlockOutbound`.
    BlockOutbound,
    /// `NotConfigured`.
    NotConfigured,
}

/// `LocalFirewallRules` / `LocalConSecRules` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalRules {
    /// `Enable`.
    Enable,
    /// `Disable`.
    Disable,
    /// `N/A (GPO-store only)` (or its translation): a Group Policy setting.
    NotApplicable,
}

/// One `<Name> Profile Settings:` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetshProfile {
    /// The header line (or the first line, when the header is missing).
    pub origin: Origin,
    /// Which profile (`None` when the header is missing or not understood).
    pub profile: Option<Profile>,
    /// The header's text.
    pub header: Option<String>,
    /// True when printed by `show currentprofile` (an active profile).
    pub current: bool,
    /// The command that printed it, when known.
    pub command: Option<String>,
    /// `State`.
    pub state: Option<Field<bool>>,
    /// `Firewall Policy`, inbound part.
    pub inbound: Option<Field<InboundPolicy>>,
    /// `Firewall Policy`, outbound part.
    pub outbound: Option<Field<OutboundPolicy>>,
    /// `LocalFirewallRules`.
    pub local_firewall_rules: Option<Field<LocalRules>>,
    /// `LocalConSecRules`.
    pub local_consec_rules: Option<Field<LocalRules>>,
    /// `InboundUserNotification`.
    pub inbound_user_notification: Option<Field<bool>>,
    /// `RemoteManagement`.
    pub remote_management: Option<Field<bool>>,
    /// `UnicastResponseToMulticast`.
    pub unicast_response: Option<Field<bool>>,
    /// `LogAllowedConnections`.
    pub log_allowed: Option<Field<bool>>,
    /// `LogDroppedConnections`.
    pub log_dropped: Option<Field<bool>>,
    /// `FileName`.
    pub log_file: Option<Field<String>>,
    /// `MaxFileSize` (KB).
    pub log_max_kb: Option<Field<u32>>,
    /// Other key/value lines (newer builds add some): (key, value, line).
    pub other: Vec<(String, String, usize)>,
}

fn enable_disable(t: &str) -> Option<bool> {
    match t.trim().to_ascii_lowercase().as_str() {
        "enable" => Some(true),
        "disable" => Some(false),
        _ => None,
    }
}

fn local_rules(t: &str) -> Option<LocalRules> {
    let x = t.trim();
    if let Some(b) = enable_disable(x) {
        return Some(if b {
            LocalRules::Enable
        } else {
            LocalRules::Disable
        });
    }
    // "N/A (GPO-store only)" is translated on some machines (Get-NetView#58): its
    // "N/A"/"GPO" parts are what survives.
    (x.starts_with("N/A") || x.contains("GPO")).then_some(LocalRules::NotApplicable)
}

fn policy(t: &str) -> (Option<InboundPolicy>, Option<OutboundPolicy>) {
    let (a, b) = t.split_once(',').unwrap_or((t, ""));
    let i = match a.trim().to_ascii_lowercase().as_str() {
        "blockinbound" => Some(InboundPolicy::BlockInbound),
        "blockinboundalways" => Some(InboundPolicy::BlockInboundAlways),
        "allowinbound" => Some(InboundPolicy::AllowInbound),
        "notconfigured" => Some(InboundPolicy::NotConfigured),
        _ => None,
    };
    let o = match b.trim().to_ascii_lowercase().as_str() {
        "allowoutbound" => Some(OutboundPolicy::AllowOutbound),
        "blockoutbound" => Some(OutboundPolicy::BlockOutbound),
        "notconfigured" => Some(OutboundPolicy::NotConfigured),
        _ => None,
    };
    (i, o)
}

/// A profile header: (profile, language).
pub(crate) fn profile_header(s: &str) -> Option<(Option<Profile>, Language)> {
    let t = s.trim();
    let body = t.strip_suffix(':').or_else(|| t.strip_suffix('：'))?;
    if let Some(name) = body.strip_suffix(" Profile Settings") {
        return Some((Profile::parse(name), Language::English));
    }
    if body.contains("Einstellungen") {
        let p = lang::PROFILE_HEADER_WORDS_DE
            .iter()
            .find(|(w, _)| lang::contains(body, w))
            .map(|(_, p)| *p);
        return Some((p, Language::German));
    }
    None
}

/// Splits a profile key line (`Key<spaces>Value`, no colon) at its first run of two spaces.
fn split_key(s: &str) -> Option<(&str, &str)> {
    let pos = s.find("  ")?;
    let key = s.get(..pos)?;
    if key.is_empty() || key.starts_with(' ') {
        return None;
    }
    Some((key, s.get(pos..)?.trim()))
}

fn profile_key(s: &str) -> Option<(ProfileKey, Language, String)> {
    let (k, v) = split_key(s)?;
    let (key, lang) = lang::PROFILE_KEYS
        .iter()
        .find(|(_, _, w)| lang::same(k, w))
        .map(|(key, l, _)| (*key, *l))?;
    Some((key, lang, v.to_string()))
}

/// True when the line is a known profile key line.
pub(crate) fn is_profile_key(s: &str) -> bool {
    profile_key(s).is_some()
}

fn blank_profile(origin: Origin) -> NetshProfile {
    NetshProfile {
        origin,
        profile: None,
        header: None,
        current: false,
        command: None,
        state: None,
        inbound: None,
        outbound: None,
        local_firewall_rules: None,
        local_consec_rules: None,
        inbound_user_notification: None,
        remote_management: None,
        unicast_response: None,
        log_allowed: None,
        log_dropped: None,
        log_file: None,
        log_max_kb: None,
        other: Vec::new(),
    }
}

/// Parses profile blocks from `lines[start]`. `command` is the netsh command line when known.
pub(crate) fn parse_profiles(
    lines: &[Line],
    start: usize,
    command: Option<&str>,
    cap: &mut Capture,
) -> (usize, bool) {
    let file: Arc<str> = Arc::clone(&cap.origin_name);
    let current = command.is_some_and(|c| c.to_ascii_lowercase().contains("currentprofile"));
    let mut i = start;
    let mut prof: Option<NetshProfile> = None;
    let mut started_mid = false;
    let finish = |p: &mut Option<NetshProfile>, cap: &mut Capture| {
        if let Some(p) = p.take() {
            if p.current {
                cap.add_active(crate::ActiveProfile {
                    profile: p.profile,
                    network: None,
                    interface: None,
                    origin: p.origin.clone(),
                });
            }
            cap.profiles.push(p);
        }
    };
    while let Some(line) = lines.get(i) {
        let text = line.text.as_str();
        let t = text.trim();
        if t.is_empty() || is_dashes(text) || t == "Logging:" || t == "Protokollierung:" {
            i += 1;
            continue;
        }
        if let Some(l) = is_ok_line(text) {
            cap.saw(l);
            i += 1;
            break;
        }
        if let Some((p, l)) = profile_header(text) {
            // A header must be followed (after dashes) by key lines: otherwise it is not ours.
            finish(&mut prof, cap);
            cap.saw(l);
            let mut np = blank_profile(Origin::new(&file, line.number));
            np.profile = p;
            np.header = Some(t.to_string());
            np.current = current;
            np.command = command.map(str::to_string);
            if p.is_none() {
                cap.notes.push(Note::new(
                    Some(line.number),
                    NoteKind::Unparsed,
                    format!("netsh profile header not understood: {}", clip(t, 80)),
                ));
            }
            prof = Some(np);
            i += 1;
            continue;
        }
        let Some((key, l, value)) = profile_key(text) else {
            match (prof.as_mut(), split_key(text)) {
                // An unknown key/value line inside a block (newer builds add some).
                (Some(p), Some((k, v))) if !k.contains(':') => {
                    p.other.push((k.to_string(), v.to_string(), line.number));
                    i += 1;
                    continue;
                }
                _ => break,
            }
        };
        cap.saw(l);
        let p = match prof.as_mut() {
            Some(p) => p,
            None => {
                started_mid = true;
                cap.notes.push(Note::new(
                    Some(line.number),
                    NoteKind::Truncated,
                    "netsh profile settings without their `... Profile Settings:` header: the profile is unknown",
                ));
                let mut np = blank_profile(Origin::new(&file, line.number));
                np.current = current;
                np.command = command.map(str::to_string);
                prof.insert(np)
            }
        };
        let n = line.number;
        let text_v = value.clone();
        match key {
            ProfileKey::State => {
                let v = lang::lookup(lang::ON_OFF, &value);
                if let Some((_, l)) = v {
                    cap.saw(l);
                }
                p.state = Some(Field::new(text_v, v.map(|x| x.0), n));
            }
            ProfileKey::FirewallPolicy => {
                let (a, b) = policy(&value);
                p.inbound = Some(Field::new(text_v.clone(), a, n));
                p.outbound = Some(Field::new(text_v, b, n));
            }
            ProfileKey::LocalFirewallRules => {
                p.local_firewall_rules = Some(Field::new(text_v, local_rules(&value), n))
            }
            ProfileKey::LocalConSecRules => {
                p.local_consec_rules = Some(Field::new(text_v, local_rules(&value), n))
            }
            ProfileKey::InboundUserNotification => {
                p.inbound_user_notification = Some(Field::new(text_v, enable_disable(&value), n))
            }
            ProfileKey::RemoteManagement => {
                p.remote_management = Some(Field::new(text_v, enable_disable(&value), n))
            }
            ProfileKey::UnicastResponseToMulticast => {
                p.unicast_response = Some(Field::new(text_v, enable_disable(&value), n))
            }
            ProfileKey::LogAllowed => {
                p.log_allowed = Some(Field::new(text_v, enable_disable(&value), n))
            }
            ProfileKey::LogDropped => {
                p.log_dropped = Some(Field::new(text_v, enable_disable(&value), n))
            }
            ProfileKey::FileName => p.log_file = Some(Field::new(text_v, Some(value), n)),
            ProfileKey::MaxFileSize => {
                p.log_max_kb = Some(Field::new(text_v, value.trim().parse().ok(), n))
            }
        }
        i += 1;
    }
    finish(&mut prof, cap);
    (i.saturating_sub(start).max(1), started_mid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        assert_eq!(
            profile_header("Domain Profile Settings:"),
            Some((Some(Profile::Domain), Language::English))
        );
        assert_eq!(
            profile_header("Einstellungen für Privates Profil:"),
            Some((Some(Profile::Private), Language::German))
        );
        assert_eq!(
            profile_header("Domänenprofil-Einstellungen:"),
            Some((Some(Profile::Domain), Language::German))
        );
        assert_eq!(profile_header("Rule Name:"), None);
    }

    #[test]
    fn labels_split_at_the_first_colon() {
        assert_eq!(
            rule_label("Rule Name:                            VCL: allow RDP", None),
            Some((
                RuleLabel::RuleName,
                Language::English,
                "VCL: allow RDP".into()
            ))
        );
        assert_eq!(
            rule_label("Grouping:", None),
            Some((RuleLabel::Grouping, Language::English, String::new()))
        );
        assert_eq!(rule_label("C:\\x", None), None);
    }
}
