//! PowerShell objects: `Format-List` blocks and `ConvertTo-Json` output of `Get-NetFirewallRule`,
//! `Get-NetFirewallProfile`, `Get-NetFirewallPortFilter`, `Get-NetFirewallAddressFilter`,
//! `Get-NetConnectionProfile`, `Get-NetTCPConnection` and `Get-Service`.
//!
//! Property names and enum values are English on every language (localization.md §4); only
//! `DisplayName`, `DisplayGroup`, `Description` and `Status` are translated. In JSON the enums
//! may be numbers; they are mapped with the NetSecurity / NetConnection enums:
//! - `MSFT_NetFirewallRule` (learn.microsoft.com, "MSFT_NetFirewallRule class", WFAS CIM
//!   provider): `Action` Allow (2), AllowBypass (3), Block (4); `Direction` Inbound (1),
//!   Outbound (2); `Enabled` True (1), False (2); `Profiles` a mask of Domain (1), Private (2),
//!   Public (4) (NET_FW_PROFILE_TYPE2, icftypes.h), 0 = Any.
//! - `NetworkCategory` (NLM_NETWORK_CATEGORY, netlistmgr.h): Public (0), Private (1),
//!   DomainAuthenticated (2).
//! - `Get-NetFirewallProfile`'s `Enabled` is a GpoBoolean and `DefaultInboundAction` an Action
//!   with NotConfigured; their numeric JSON forms were not confirmed by a page found, so numbers
//!   there are kept as text and left unparsed.

use std::sync::Arc;

use guestwall_firewall::{Action, Direction, Profile, ProfileSet};
use serde_json::Value as Json;

use crate::transcript::{clip, full_width, Line};
use crate::{Capture, Note, NoteKind, Origin};

/// How the object was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsFormat {
    /// `Format-List`.
    List,
    /// `ConvertTo-Json`.
    Json,
}

/// What the object is, judged by its properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PsKind {
    /// `Get-NetFirewallRule`.
    FirewallRule,
    /// `Get-NetFirewallProfile`.
    FirewallProfile,
    /// `Get-NetFirewallPortFilter`.
    PortFilter,
    /// `Get-NetFirewallAddressFilter`.
    AddressFilter,
    /// `Get-NetConnectionProfile`.
    ConnectionProfile,
    /// `Get-NetTCPConnection`.
    TcpConnection,
    /// `Get-Service`.
    Service,
    /// Something else.
    Other,
}

/// A property: its name, its value as text (lists joined by `, `), and its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsProperty {
    /// The name.
    pub name: String,
    /// The value as text (`{a, b}` lists unwrapped to `a, b`; JSON numbers as digits).
    pub text: String,
    /// The items of a list value (`{3389, 3390}` or a JSON array).
    pub items: Vec<String>,
    /// Its line.
    pub line: usize,
}

/// One object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsObject {
    /// What it is.
    pub kind: PsKind,
    /// How it was written.
    pub format: PsFormat,
    /// Its properties, in order.
    pub properties: Vec<PsProperty>,
    /// Its first line.
    pub origin: Origin,
}

impl PsObject {
    /// The property `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&PsProperty> {
        self.properties
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }

    fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|p| p.text.clone())
            .filter(|t| !t.is_empty())
    }

    fn has(&self, names: &[&str]) -> bool {
        names.iter().all(|n| self.get(n).is_some())
    }
}

fn classify(o: &PsObject) -> PsKind {
    if o.has(&["Name", "DisplayName", "Direction", "Action"]) {
        PsKind::FirewallRule
    } else if o.has(&["DefaultInboundAction"]) {
        PsKind::FirewallProfile
    } else if o.has(&["Protocol", "LocalPort", "RemotePort"]) {
        PsKind::PortFilter
    } else if o.has(&["RemoteAddress", "LocalAddress"]) && !o.has(&["LocalPort"]) {
        PsKind::AddressFilter
    } else if o.has(&["NetworkCategory"]) {
        PsKind::ConnectionProfile
    } else if o.has(&["LocalAddress", "LocalPort", "OwningProcess"]) {
        PsKind::TcpConnection
    } else if o.has(&["Status", "Name"]) && (o.has(&["ServiceName"]) || o.has(&["DisplayName"])) {
        PsKind::Service
    } else {
        PsKind::Other
    }
}

/// A `Get-NetFirewallRule` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsFirewallRule {
    /// `Name`: the rule ID (language-independent).
    pub id: Option<String>,
    /// `DisplayName` (localized).
    pub display_name: Option<String>,
    /// `Group` (raw, e.g. `@FirewallAPI.dll,-28752`).
    pub group: Option<String>,
    /// `DisplayGroup` (localized).
    pub display_group: Option<String>,
    /// `Enabled`.
    pub enabled: Option<bool>,
    /// `Direction`.
    pub direction: Option<Direction>,
    /// `Action`.
    pub action: Option<Action>,
    /// `Profile`.
    pub profiles: Option<ProfileSet>,
    /// `PolicyStoreSource` (`PersistentStore`, a GPO name, ...).
    pub store: Option<String>,
    /// Where it was read.
    pub origin: Origin,
}

/// A `Get-NetFirewallProfile` object (values as PowerShell shows them: `True`, `False`,
/// `NotConfigured`, `Block`, `Allow`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsFirewallProfile {
    /// `Name`.
    pub profile: Option<Profile>,
    /// `Enabled`.
    pub enabled: Option<String>,
    /// `DefaultInboundAction`.
    pub default_inbound: Option<String>,
    /// `AllowLocalFirewallRules`.
    pub allow_local_rules: Option<String>,
    /// True for the collector's `-PolicyStore ActiveStore` values (effective settings).
    pub active_store: bool,
    /// Where it was read.
    pub origin: Origin,
}

/// A `Get-NetConnectionProfile` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsConnectionProfile {
    /// `Name` (the network).
    pub name: Option<String>,
    /// `InterfaceAlias`.
    pub interface: Option<String>,
    /// `NetworkCategory` as a firewall profile.
    pub profile: Option<Profile>,
    /// Where it was read.
    pub origin: Origin,
}

fn enabled(t: &str) -> Option<bool> {
    match t.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "2" => Some(false),
        _ => None,
    }
}

fn direction(t: &str) -> Option<Direction> {
    match t.trim().to_ascii_lowercase().as_str() {
        "inbound" | "1" => Some(Direction::In),
        "outbound" | "2" => Some(Direction::Out),
        _ => None,
    }
}

fn action(t: &str) -> Option<Action> {
    match t.trim().to_ascii_lowercase().as_str() {
        "allow" | "2" => Some(Action::Allow),
        "allowbypass" | "3" => Some(Action::Bypass),
        "block" | "4" => Some(Action::Block),
        _ => None,
    }
}

/// `Profile`: `Any`, `Domain, Private`, or a number mask.
pub fn profiles(t: &str) -> Option<ProfileSet> {
    let t = t.trim();
    if let Ok(n) = t.parse::<u32>() {
        if n == 0 || n & 0x7fff_ffff == 0x7fff_ffff {
            return Some(ProfileSet::ALL);
        }
        let mut s = ProfileSet::EMPTY;
        for p in Profile::ALL {
            if n & u32::from(p.bit()) != 0 {
                s.insert(p);
            }
        }
        return Some(s);
    }
    if t.eq_ignore_ascii_case("any") {
        return Some(ProfileSet::ALL);
    }
    let mut s = ProfileSet::EMPTY;
    for part in t.split(',') {
        s.insert(Profile::parse(part.trim())?);
    }
    Some(s)
}

/// A `Get-NetFirewallPortFilter` object (`Get-NetFirewallRule ... | Get-NetFirewallPortFilter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsPortFilter {
    /// `InstanceID`: the ID of the rule it belongs to (shown by `Format-List *` and JSON).
    pub instance_id: Option<String>,
    /// `Protocol`: `TCP`, `UDP`, `Any` or a number.
    pub protocol: Option<String>,
    /// `LocalPort` items (`3389`, `Any`, `RPC`, a range), as shown.
    pub local_port: Vec<String>,
    /// `RemotePort` items.
    pub remote_port: Vec<String>,
    /// Where.
    pub origin: Origin,
}

/// The items of a list value as PowerShell shows it: `{3389, 3390}` (Format-List), a JSON
/// array's elements joined by the JSON reader, or one value.
pub fn list_items(t: &str) -> Vec<String> {
    let t = t.trim().trim_start_matches('{').trim_end_matches('}');
    t.split([',', ' '])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// `NetworkCategory` → profile.
pub fn category(t: &str) -> Option<Profile> {
    match t.trim().to_ascii_lowercase().as_str() {
        "public" | "0" => Some(Profile::Public),
        "private" | "1" => Some(Profile::Private),
        "domainauthenticated" | "2" => Some(Profile::Domain),
        _ => None,
    }
}

/// Adds an object to the capture, with its typed view.
pub(crate) fn add(mut o: PsObject, cap: &mut Capture) {
    o.kind = classify(&o);
    match o.kind {
        PsKind::FirewallRule => cap.ps_rules.push(PsFirewallRule {
            id: o.text("Name"),
            display_name: o.text("DisplayName"),
            group: o.text("Group"),
            display_group: o.text("DisplayGroup"),
            enabled: o.text("Enabled").and_then(|t| enabled(&t)),
            direction: o.text("Direction").and_then(|t| direction(&t)),
            action: o.text("Action").and_then(|t| action(&t)),
            profiles: o.text("Profile").and_then(|t| profiles(&t)),
            store: o.text("PolicyStoreSource"),
            origin: o.origin.clone(),
        }),
        PsKind::PortFilter => cap.ps_port_filters.push(PsPortFilter {
            instance_id: o.text("InstanceID").or_else(|| o.text("InstanceId")),
            protocol: o.text("Protocol"),
            local_port: o
                .text("LocalPort")
                .map(|t| list_items(&t))
                .unwrap_or_default(),
            remote_port: o
                .text("RemotePort")
                .map(|t| list_items(&t))
                .unwrap_or_default(),
            origin: o.origin.clone(),
        }),
        PsKind::FirewallProfile => cap.ps_profiles.push(PsFirewallProfile {
            profile: o.text("Name").and_then(|n| Profile::parse(&n)),
            enabled: o.text("Enabled"),
            default_inbound: o.text("DefaultInboundAction"),
            allow_local_rules: o.text("AllowLocalFirewallRules"),
            active_store: false,
            origin: o.origin.clone(),
        }),
        PsKind::ConnectionProfile => {
            let c = PsConnectionProfile {
                name: o.text("Name"),
                interface: o.text("InterfaceAlias"),
                profile: o.text("NetworkCategory").and_then(|t| category(&t)),
                origin: o.origin.clone(),
            };
            cap.add_active(crate::ActiveProfile {
                profile: c.profile,
                network: c.name.clone(),
                interface: c.interface.clone(),
                origin: c.origin.clone(),
            });
            cap.connection_profiles.push(c);
        }
        PsKind::TcpConnection => {
            let state = o.text("State").unwrap_or_default();
            if let Some(port) = o.text("LocalPort").and_then(|p| p.parse().ok()) {
                cap.listeners.push(crate::Listener {
                    protocol: "TCP".into(),
                    address: o.text("LocalAddress").unwrap_or_default(),
                    port,
                    listening: state.eq_ignore_ascii_case("Listen") || state == "2",
                    state,
                    pid: o.text("OwningProcess").and_then(|p| p.parse().ok()),
                    process: None,
                    services: Vec::new(),
                    origin: o.origin.clone(),
                });
            }
        }
        PsKind::Service => {
            let name = o.text("Name").or_else(|| o.text("ServiceName"));
            if let Some(name) = name {
                let mut s = crate::Service::new(&name, o.origin.clone());
                if let Some(st) = o.get("Status") {
                    let code = status_code(&st.text);
                    s.state = Some(crate::Field::new(st.text.clone(), code, st.line));
                }
                cap.merge_service(s);
            }
        }
        _ => {}
    }
    cap.ps_objects.push(o);
}

/// ServiceControllerStatus names (or numbers) → SERVICE_STATUS codes (the same numbers).
pub fn status_code(t: &str) -> Option<u32> {
    let t = t.trim();
    if let Ok(n) = t.parse::<u32>() {
        return (1..=7).contains(&n).then_some(n);
    }
    Some(match t.to_ascii_lowercase().as_str() {
        "stopped" => 1,
        "startpending" => 2,
        "stoppending" => 3,
        "running" => 4,
        "continuepending" => 5,
        "pausepending" => 6,
        "paused" => 7,
        _ => return None,
    })
}

/// A `Name : value` line: (name, value, value column).
pub(crate) fn list_line(s: &str) -> Option<(&str, &str, usize)> {
    if s.starts_with(' ') {
        return None;
    }
    let pos = s.find(" :")?;
    let name = s.get(..pos)?.trim_end();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        return None;
    }
    let rest = s.get(pos + 2..)?;
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    let col = pos + 2 + usize::from(rest.starts_with(' '));
    Some((name, rest.trim(), col))
}

fn items_of(text: &str) -> (String, Vec<String>) {
    match text.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        Some(inner) => {
            let items: Vec<String> = inner
                .split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty() && x != "...")
                .collect();
            (inner.to_string(), items)
        }
        None => (text.to_string(), Vec::new()),
    }
}

/// Parses Format-List objects from `lines[start]`.
pub(crate) fn parse_list(lines: &[Line], start: usize, cap: &mut Capture) -> usize {
    let file: Arc<str> = Arc::clone(&cap.origin_name);
    let mut i = start;
    let mut obj: Option<(PsObject, usize)> = None; // object and value column
    let flush = |obj: &mut Option<(PsObject, usize)>, cap: &mut Capture| {
        if let Some((mut o, _)) = obj.take() {
            for p in &mut o.properties {
                let (t, items) = items_of(&p.text);
                p.text = t;
                p.items = items;
            }
            add(o, cap);
        }
    };
    while let Some(line) = lines.get(i) {
        let text = line.text.as_str();
        if text.trim().is_empty() {
            flush(&mut obj, cap);
            i += 1;
            if lines.get(i).is_some_and(|l| list_line(&l.text).is_some()) {
                continue;
            }
            break;
        }
        if let Some((name, value, col)) = list_line(text) {
            let o = obj.get_or_insert_with(|| {
                (
                    PsObject {
                        kind: PsKind::Other,
                        format: PsFormat::List,
                        properties: Vec::new(),
                        origin: Origin::new(&file, line.number),
                    },
                    col,
                )
            });
            o.1 = col;
            o.0.properties.push(PsProperty {
                name: name.to_string(),
                text: value.to_string(),
                items: Vec::new(),
                line: line.number,
            });
            i += 1;
            continue;
        }
        // A continuation, indented to the value column.
        let indent = text.len() - text.trim_start().len();
        match obj.as_mut() {
            Some((o, col)) if indent >= *col && indent > 0 => {
                let prev_full = i
                    .checked_sub(1)
                    .and_then(|p| lines.get(p))
                    .is_some_and(|p| full_width(&p.text));
                if let Some(p) = o.properties.last_mut() {
                    if !prev_full && !p.text.ends_with(' ') {
                        p.text.push(' ');
                    }
                    p.text.push_str(text.trim());
                }
                i += 1;
            }
            _ => break,
        }
    }
    flush(&mut obj, cap);
    i.saturating_sub(start).max(1)
}

fn json_text(v: &Json) -> (String, Vec<String>) {
    match v {
        Json::Null => (String::new(), Vec::new()),
        Json::Bool(b) => (if *b { "True" } else { "False" }.to_string(), Vec::new()),
        Json::Number(n) => (n.to_string(), Vec::new()),
        Json::String(s) => (s.clone(), Vec::new()),
        Json::Array(a) => {
            let items: Vec<String> = a.iter().map(|x| json_text(x).0).collect();
            (items.join(", "), items)
        }
        Json::Object(_) => (String::new(), Vec::new()),
    }
}

/// Finds the end of a JSON value starting at `lines[start]`: the index after its last line.
fn json_end(lines: &[Line], start: usize) -> Option<usize> {
    let mut depth = 0i64;
    let mut in_str = false;
    let mut esc = false;
    for (k, line) in lines.iter().enumerate().skip(start) {
        for c in line.text.chars() {
            if in_str {
                match (esc, c) {
                    (true, _) => esc = false,
                    (false, '\\') => esc = true,
                    (false, '"') => in_str = false,
                    _ => {}
                }
                continue;
            }
            match c {
                '"' => in_str = true,
                '{' | '[' => depth += 1,
                '}' | ']' => depth -= 1,
                _ => {}
            }
        }
        if depth <= 0 {
            return Some(k + 1);
        }
    }
    None
}

/// Parses a JSON document (ConvertTo-Json) from `lines[start]`.
pub(crate) fn parse_json(lines: &[Line], start: usize, cap: &mut Capture) -> (usize, bool) {
    let file: Arc<str> = Arc::clone(&cap.origin_name);
    let first = lines.get(start).map_or(0, |l| l.number);
    let Some(end) = json_end(lines, start) else {
        cap.notes.push(Note::new(
            Some(first),
            NoteKind::Truncated,
            "a JSON document that never closes (the output was cut)",
        ));
        return (lines.len().saturating_sub(start).max(1), true);
    };
    let text: String = lines
        .get(start..end)
        .unwrap_or(&[])
        .iter()
        .map(|l| l.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let json: Json = match serde_json::from_str(&text) {
        Ok(j) => j,
        Err(e) => {
            cap.notes.push(Note::new(
                Some(first),
                NoteKind::Damaged,
                format!("JSON not understood: {}", clip(&e.to_string(), 120)),
            ));
            return ((end - start).max(1), false);
        }
    };
    let objects: Vec<&Json> = match &json {
        Json::Array(a) => a.iter().collect(),
        o @ Json::Object(_) => vec![o],
        _ => Vec::new(),
    };
    for o in objects {
        let Json::Object(map) = o else { continue };
        let props = map
            .iter()
            .filter(|(_, v)| !v.is_object())
            .map(|(k, v)| {
                let (text, items) = json_text(v);
                PsProperty {
                    name: k.clone(),
                    text,
                    items,
                    line: first,
                }
            })
            .collect();
        add(
            PsObject {
                kind: PsKind::Other,
                format: PsFormat::Json,
                properties: props,
                origin: Origin::new(&file, first),
            },
            cap,
        );
    }
    ((end - start).max(1), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_lines() {
        assert_eq!(
            list_line("DisplayName           : Remote Desktop - User Mode (TCP-In)"),
            Some(("DisplayName", "Remote Desktop - User Mode (TCP-In)", 24))
        );
        assert_eq!(
            list_line("Description           :"),
            Some(("Description", "", 23))
        );
        assert_eq!(list_line("Rule Name:     x"), None);
        assert_eq!(
            profiles("Domain, Private"),
            Some(ProfileSet::of(&[Profile::Domain, Profile::Private]))
        );
        assert_eq!(profiles("4"), Some(ProfileSet::of(&[Profile::Public])));
        assert_eq!(profiles("Any"), Some(ProfileSet::ALL));
    }
}
