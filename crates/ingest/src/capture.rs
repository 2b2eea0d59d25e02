//! *Capture*: text captured on a running machine (a console transcript, Run Command output,
//! guestwall's collector block), turned into the same [`MachineConfig`] the hives give.
//!
//! Registry values in the capture (`reg query` output, the collector's records) are read by
//! the same code as hives (`read`, through [`crate::view`]), so a capture of a machine and its
//! hives give the same model. Where the capture holds no registry data for a part, netsh's
//! display (`show allprofiles`, `firewall show rule`) and `Get-NetFirewallProfile` stand in,
//! marked as less exact. What only a running machine knows (the connected networks' profiles,
//! the services' states, who listens on the RDP port) is taken as known, not inferred. What
//! the capture does not show is said to be unknown, in a finding; a profile whose verdict
//! would rest on rules nobody captured is `conditional`, never `blocked` for want of them.
//!
//! Every fact's [`Origin`] carries the capture's name and line (for a collector block: its
//! BEGIN line and the line inside the payload).

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use guestwall_capture::netsh::{Edge, InboundPolicy, List, OutboundPolicy, Protocol};
use guestwall_capture::{Capture, NetshProfile, NetshRule, NoteKind};
use guestwall_firewall::codes;
use guestwall_firewall::{
    ActiveNetwork, Address, CaptureLine, HiveKind, MachineConfig, Note, Origin, Os, Profile, Rule,
    Setting, Store, StoreProfile, StoredRule, FIREWALL_POLICY,
};

use crate::read::{self, GP_FIREWALL};
use crate::view::{capture_line, CaptureHive, RegView};
use crate::{IngestError, Result};

/// The largest capture read (a console log of a whole session is far smaller).
pub const MAX_CAPTURE_BYTES: u64 = 64 << 20;

/// The control set a capture's `CurrentControlSet` keys stand for.
const CURRENT: &str = "CurrentControlSet";

/// True when `head` (the first bytes of a file) looks like text, the only thing a capture can
/// be: a UTF-8/UTF-16 byte-order mark, BOM-less UTF-16, or bytes with no NUL and almost no
/// control characters (an OEM code page's letters are fine). A hive starts with `regf`.
pub fn looks_like_text(head: &[u8]) -> bool {
    if head.is_empty() || head.starts_with(b"regf") {
        return false;
    }
    if head.starts_with(&[0xEF, 0xBB, 0xBF])
        || head.starts_with(&[0xFF, 0xFE])
        || head.starts_with(&[0xFE, 0xFF])
    {
        return true;
    }
    let even_nul = head.iter().step_by(2).filter(|b| **b == 0).count();
    let odd_nul = head.iter().skip(1).step_by(2).filter(|b| **b == 0).count();
    let half = head.len() / 2;
    // BOM-less UTF-16: one byte of each pair mostly NUL, the other almost never (a run of
    // zeros, as in a disk image's boot sector, has both).
    if half >= 4
        && ((odd_nul * 10 >= half * 6 && even_nul * 10 <= half)
            || (even_nul * 10 >= half * 6 && odd_nul * 10 <= half))
    {
        return true;
    }
    let control = head
        .iter()
        .filter(|b| **b < 0x20 && !matches!(**b, b'\t' | b'\n' | b'\r' | 0x0C | 0x1B))
        .count();
    even_nul + odd_nul == 0 && control * 100 <= head.len()
}

/// The name standard input gets in origins and messages.
pub const STDIN_NAME: &str = "<stdin>";

/// Reads and parses a capture from `r` (at most [`MAX_CAPTURE_BYTES`]), named `name`.
pub fn read_capture(name: &str, r: impl Read) -> Result<Capture> {
    let mut bytes = Vec::new();
    r.take(MAX_CAPTURE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| IngestError::Capture {
            name: name.to_string(),
            reason: format!("cannot read it: {e}"),
        })?;
    if bytes.len() as u64 > MAX_CAPTURE_BYTES {
        return Err(IngestError::Capture {
            name: name.to_string(),
            reason: format!(
                "longer than {} MiB: no console capture is this long",
                MAX_CAPTURE_BYTES >> 20
            ),
        });
    }
    Ok(guestwall_capture::parse_capture(&bytes, name))
}

/// The capture `target` names, detected by content: `-` is standard input (always a
/// capture); a regular file whose first bytes are text and in which the parser recognises a
/// capture is one; text in which it recognises none is an error saying what a capture is.
/// `None` for anything else (a hive, a folder, a disk image), which the hive and image
/// readers then take, and say why when they cannot.
pub fn capture_target(target: &Path) -> Result<Option<Capture>> {
    if target.as_os_str() == "-" {
        let cap = read_capture(STDIN_NAME, std::io::stdin().lock())?;
        if !recognised(&cap) {
            return Err(IngestError::Capture {
                name: STDIN_NAME.into(),
                reason: "no part of standard input is a capture guestwall reads (reg query, netsh advfirewall, sc, Get-NetFirewall*, netstat, the collector's block, or Run Command's JSON): print the collector with `guestwall collect`".into(),
            });
        }
        return Ok(Some(cap));
    }
    let Ok(meta) = std::fs::metadata(target) else {
        return Ok(None);
    };
    if !meta.is_file() {
        return Ok(None);
    }
    let Ok(mut f) = std::fs::File::open(target) else {
        return Ok(None);
    };
    let mut head = vec![0u8; 4096];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return Ok(None),
        }
    }
    head.truncate(n);
    if !looks_like_text(&head) {
        return Ok(None);
    }
    let name = target.display().to_string();
    if meta.len() > MAX_CAPTURE_BYTES {
        return Err(IngestError::Capture {
            name,
            reason: format!(
                "a text file longer than {} MiB: no console capture is this long",
                MAX_CAPTURE_BYTES >> 20
            ),
        });
    }
    let mut bytes = head;
    f.take(MAX_CAPTURE_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| IngestError::Capture {
            name: name.clone(),
            reason: format!("cannot read it: {e}"),
        })?;
    let cap = guestwall_capture::parse_capture(&bytes, &name);
    if !recognised(&cap) {
        if let Some(rc) = &cap.run_command {
            // Run Command's JSON around no capture: say what the VM said instead.
            return Err(IngestError::Capture {
                name,
                reason: match &rc.stderr {
                    Some(e) => format!(
                        "Run Command's output holds no capture ({} bytes on StdOut); the script's StdErr says: {}",
                        rc.stdout_bytes,
                        e.trim()
                    ),
                    None => format!(
                        "Run Command's output holds no capture ({} bytes on StdOut, nothing on StdErr): was the script guestwall's collector (`guestwall collect`)?",
                        rc.stdout_bytes
                    ),
                },
            });
        }
    }
    if !recognised(&cap) {
        // Text, so no hive and no image either: say what a capture is.
        return Err(IngestError::Capture {
            name,
            reason: "it is text: not a registry hive (a hive starts with \"regf\") nor a disk image, and no part of it is a capture guestwall reads (reg query, netsh advfirewall, sc, Get-NetFirewall*, netstat, the collector's block, or Run Command's JSON): print the collector with `guestwall collect`".into(),
        });
    }
    Ok(Some(cap))
}

/// True when the parser recognised something in the capture (a block of a known format, or a
/// collector block, even a damaged one).
pub fn recognised(cap: &Capture) -> bool {
    !cap.blocks.is_empty() || !cap.collectors.is_empty() || !cap.registry.is_empty()
}

fn line_of(o: &guestwall_capture::Origin) -> Option<CaptureLine> {
    Some(capture_line(o))
}

fn at_line(file: &Arc<str>, line: usize) -> Option<CaptureLine> {
    Some(CaptureLine {
        file: file.clone(),
        line,
        payload_line: None,
        shown_as: None,
    })
}

/// `origin` with a capture line.
fn with_line(mut origin: Origin, line: Option<CaptureLine>) -> Origin {
    origin.capture = line;
    origin
}

/// Reads a capture into one [`MachineConfig`] per control set it shows (one, normally: the
/// running control set). An error only when nothing in it is about the machine at all.
pub fn load_capture(cap: &Capture) -> Result<Vec<MachineConfig>> {
    if !recognised(cap) {
        return Err(IngestError::Capture {
            name: cap.origin_name.to_string(),
            reason: "no part of it is a capture guestwall reads (reg query, netsh advfirewall, sc, Get-NetFirewall*, netstat, or the collector's block): print the collector with `guestwall collect`".into(),
        });
    }
    let system = CaptureHive::new(&cap.registry, "HKEY_LOCAL_MACHINE\\SYSTEM");
    let software = CaptureHive::new(&cap.registry, "HKEY_LOCAL_MACHINE\\SOFTWARE");
    let sw_facts = software.as_ref().map(read::read_software);
    let mut notes: Vec<Note> = Vec::new();

    // Which control set(s): the running one (`CurrentControlSet`) as captured, or the
    // `ControlSetNNN` keys `Select` names.
    let select = |name: &str| {
        cap.registry
            .value("HKLM\\SYSTEM\\Select", name)
            .and_then(|v| v.dword())
    };
    let (current, default) = (select("Current"), select("Default"));
    let tops = system.as_ref().map(|s| s.top_keys()).unwrap_or_default();
    let numbered = |n: u32| format!("ControlSet{n:03}");
    let has_top = |name: &str| tops.iter().any(|t| t.eq_ignore_ascii_case(name));
    let mut sets: Vec<(String, String)> = Vec::new();
    if has_top(CURRENT)
        || !tops
            .iter()
            .any(|t| t.to_ascii_lowercase().starts_with("controlset"))
    {
        sets.push((CURRENT.to_string(), "the running control set".into()));
    } else {
        match current.filter(|c| has_top(&numbered(*c))) {
            Some(c) => sets.push((
                numbered(c),
                if default == Some(c) {
                    "Select\\Current and Select\\Default".into()
                } else {
                    "Select\\Current".into()
                },
            )),
            None => {
                let first = tops
                    .iter()
                    .find(|t| t.to_ascii_lowercase().starts_with("controlset"))
                    .cloned()
                    .unwrap_or_else(|| numbered(1));
                notes.push(Note::input(format!(
                    "the capture does not show which control set is running (Select\\Current): {first}, the one it shows, is read"
                )));
                sets.push((first, "the control set the capture shows".into()));
            }
        }
    }
    if let (Some(c), Some(d)) = (current, default) {
        if c != d {
            let next = numbered(d);
            if has_top(&next) {
                sets.push((next, "Select\\Default, the next boot".into()));
            }
            notes.push(Note {
                code: codes::CONTROL_SET_MISMATCH,
                text: format!(
                    "Select\\Current is {c} but Select\\Default is {d}: the next boot loads ControlSet{d:03}{}",
                    if has_top(&numbered(d)) {
                        ", so both are diagnosed"
                    } else {
                        ", which the capture does not show (unknown)"
                    }
                ),
            });
        }
    }
    capture_notes(cap, &mut notes);

    let mut out = Vec::new();
    for (cs, why) in sets {
        let label = format!("{}: {cs} ({why})", cap.origin_name);
        let mut cfg = match &system {
            Some(sys) => read::read_control_set(sys, &cs, &why, label, sw_facts.as_ref()),
            None => {
                // No SYSTEM registry data: the same reading over nothing (every fact unknown
                // until a fallback below fills it).
                let empty = guestwall_capture::RegTree::default();
                let sys = EmptyView(&empty);
                read::read_control_set(&sys, &cs, &why, label, sw_facts.as_ref())
            }
        };
        cfg.notes = notes.clone();
        fill_from_display(cap, system.as_ref(), &cs, &mut cfg);
        online_facts(cap, &cs, &mut cfg);
        unknowns(cap, software.as_ref(), &cs, &mut cfg);
        // The VM's language, when the capture holds the values (the names of a netsh capture
        // are already the VM's own).
        if let Some(sys) = system.as_ref() {
            crate::language::localize(&mut cfg, sys, None);
        }
        out.push(cfg);
    }
    Ok(out)
}

/// A view with no keys (a capture without SYSTEM registry data).
struct EmptyView<'t>(&'t guestwall_capture::RegTree);

impl RegView for EmptyView<'_> {
    type Key<'a>
        = crate::view::CaptureKey<'a, 'a>
    where
        Self: 'a;
    fn find_key(&self, _path: &str) -> Option<Self::Key<'_>> {
        let _ = self.0;
        None
    }
}

/// The capture's own remarks (truncation, damage, unparsed lines, encoding), as input notes
/// naming their lines; at most 20, then a count.
fn capture_notes(cap: &Capture, notes: &mut Vec<Note>) {
    let name = &cap.origin_name;
    if cap.truncated {
        notes.push(Note::input(format!(
            "{name}: the capture was cut (Run Command keeps only the last 4,096 bytes of output; a block misses its end): what is missing is unknown"
        )));
    }
    let shown: Vec<_> = cap
        .notes
        .iter()
        .filter(|n| {
            matches!(
                n.kind,
                NoteKind::Damaged
                    | NoteKind::Truncated
                    | NoteKind::Unparsed
                    | NoteKind::Encoding
                    | NoteKind::Info
            )
        })
        .collect();
    for n in shown.iter().take(20) {
        let at = n.line.map_or(String::new(), |l| format!(":{l}"));
        notes.push(Note::input(format!("{name}{at}: {}", n.text)));
    }
    if shown.len() > 20 {
        notes.push(Note::input(format!(
            "{name}: {} more remarks about the capture are not shown",
            shown.len() - 20
        )));
    }
}

/// A rule as netsh displays it, in the model: display-level (the display name stands for the
/// ID; no package, owner or authorization conditions are shown). The display is written as
/// the rule string it stands for and read by the firewall crate's own parser, so that the
/// plan edits it as it edits any rule.
fn display_rule(r: &NetshRule, cs: &str, file: &Arc<str>) -> StoredRule {
    let name = r.name.value.clone().unwrap_or_else(|| r.name.text.clone());
    // A `|` would end a token: netsh's display cannot hold one that matters.
    let clean = |t: &str| t.replace('|', " ").trim().to_string();
    let any = |t: &str| guestwall_capture::lang::is_any(t).is_some();
    let mut tokens: Vec<String> = Vec::new();
    if let Some(a) = r.action.as_ref().and_then(|f| f.value) {
        tokens.push(format!(
            "Action={}",
            match a {
                guestwall_firewall::Action::Allow => "Allow",
                guestwall_firewall::Action::Block => "Block",
                guestwall_firewall::Action::Bypass => "ByPass",
            }
        ));
    }
    let enabled = r.enabled.as_ref().and_then(|f| f.value).unwrap_or(false);
    tokens.push(format!("Active={}", if enabled { "TRUE" } else { "FALSE" }));
    if let Some(d) = r.direction.as_ref().and_then(|f| f.value) {
        tokens.push(format!(
            "Dir={}",
            match d {
                guestwall_firewall::Direction::In => "In",
                guestwall_firewall::Direction::Out => "Out",
            }
        ));
    }
    if let Some(Protocol::Number(n)) = r.protocol.as_ref().and_then(|f| f.value) {
        tokens.push(format!("Protocol={n}"));
    }
    if let Some(ps) = r.profiles.as_ref().and_then(|f| f.value) {
        if !ps.is_all() {
            tokens.extend(ps.iter().map(|p| format!("Profile={p}")));
        }
    }
    let items = |f: &Option<guestwall_capture::Field<List>>| -> Vec<String> {
        match f.as_ref().and_then(|f| f.value.as_ref()) {
            Some(List::Items(v)) => v.iter().map(|x| clean(x)).collect(),
            _ => Vec::new(),
        }
    };
    tokens.extend(
        items(&r.local_port)
            .into_iter()
            .map(|p| format!("LPort={p}")),
    );
    tokens.extend(
        items(&r.remote_port)
            .into_iter()
            .map(|p| format!("RPort={p}")),
    );
    for (field, v4, v6) in [(&r.local_ip, "LA4", "LA6"), (&r.remote_ip, "RA4", "RA6")] {
        for a in items(field) {
            if Address::parse(&a).is_none() || a.chars().all(|c| c.is_ascii_alphabetic()) {
                // A keyword (LocalSubnet, DefaultGateway, ...) covers both families.
                tokens.push(format!("{v4}={a}"));
                tokens.push(format!("{v6}={a}"));
            } else if a.contains(':') {
                tokens.push(format!("{v6}={a}"));
            } else {
                tokens.push(format!("{v4}={a}"));
            }
        }
    }
    if let Some(p) = r.program.as_ref().map(|f| clean(&f.text)) {
        if !p.is_empty() && !any(&p) {
            tokens.push(format!("App={p}"));
        }
    }
    if let Some(p) = r.service.as_ref().map(|f| clean(&f.text)) {
        if !p.is_empty() && !any(&p) {
            tokens.push(format!("Svc={p}"));
        }
    }
    if let Some(t) = r.interface_types.as_ref().map(|f| clean(&f.text)) {
        if !t.is_empty() && !any(&t) {
            tokens.extend(t.split(',').map(|x| format!("IFType={}", x.trim())));
        }
    }
    match r.edge.as_ref().and_then(|f| f.value) {
        Some(Edge::Yes) => tokens.push("Edge=TRUE".into()),
        Some(Edge::DeferToApp) => tokens.push("Edge=TRUE|Defer=App".into()),
        Some(Edge::DeferToUser) => tokens.push("Edge=TRUE|Defer=User".into()),
        Some(Edge::No) | None => {}
    }
    if let Some(sec) = r.security.as_ref().map(|f| f.text.to_ascii_lowercase()) {
        if sec.contains("authenc") || sec.contains("authenticateencrypt") {
            tokens.push("Security=AuthenticateEncrypt".into());
        } else if sec.contains("authnoencap") {
            tokens.push("Security2_9=An-NoEncap".into());
        } else if sec.contains("authenticate") {
            tokens.push("Security=Authenticate".into());
        }
    }
    // netsh shows no package (AppPkgId), owner (LUOwn) or authorization: a rule that names
    // no program, no service and no port may well be an app's that cannot take RDP. Its
    // match is then conditional on what netsh does not show, never taken as certain.
    if unlimited_in_netsh(&tokens) {
        tokens.push("PackageOrOwner=not shown by netsh".into());
    }
    tokens.push(format!("Name={}", clean(&name)));
    if let Some(g) = r.grouping.as_ref().map(|g| clean(&g.text)) {
        if !g.is_empty() {
            tokens.push(format!("EmbedCtxt={g}"));
        }
    }
    let text = format!("v2.10|{}|", tokens.join("|"));
    let gp = r.rule_source.as_ref().is_some_and(|s| {
        let t = s.text.to_ascii_lowercase();
        t.contains("group policy") || t.contains("gpo") || t.contains("gruppenrichtlinie")
    });
    let (store, origin) = rules_key(gp, cs);
    // netsh shows no rule ID: the value name is the display name, which is no value on the VM.
    let shown = at_line(file, r.origin.line).map(|mut l| {
        l.shown_as = Some(format!("netsh rule \"{}\"", clean(&name)).into());
        l
    });
    StoredRule::new(
        store,
        with_line(origin.value(name.as_str()), shown),
        Rule::parse(&name, &text),
    )
}

/// The rules of `Get-NetFirewallRule` objects, each with the `Get-NetFirewallPortFilter` of
/// the same ID when the capture holds it, into `cfg` as rule strings the firewall crate
/// parses. Returns how many had a port filter. What PowerShell shows in other objects (the
/// program, package, addresses) is not joined here: a rule stands for it with a condition.
fn ps_rules(cap: &Capture, cs: &str, cfg: &mut MachineConfig) -> usize {
    let file = &cap.origin_name;
    let clean = |t: &str| t.replace('|', " ").trim().to_string();
    let mut with_ports = 0;
    for r in &cap.ps_rules {
        let Some(id) = r.id.as_deref().map(clean).filter(|i| !i.is_empty()) else {
            continue;
        };
        let mut tokens: Vec<String> = Vec::new();
        match r.action {
            Some(guestwall_firewall::Action::Allow) => tokens.push("Action=Allow".into()),
            Some(guestwall_firewall::Action::Block) => tokens.push("Action=Block".into()),
            Some(guestwall_firewall::Action::Bypass) => tokens.push("Action=ByPass".into()),
            None => {}
        }
        tokens.push(format!(
            "Active={}",
            if r.enabled == Some(true) {
                "TRUE"
            } else {
                "FALSE"
            }
        ));
        match r.direction {
            Some(guestwall_firewall::Direction::In) => tokens.push("Dir=In".into()),
            Some(guestwall_firewall::Direction::Out) => tokens.push("Dir=Out".into()),
            None => {}
        }
        if let Some(ps) = r.profiles {
            if !ps.is_all() {
                tokens.extend(ps.iter().map(|p| format!("Profile={p}")));
            }
        }
        let filter = cap.ps_port_filters.iter().find(|f| {
            f.instance_id
                .as_deref()
                .is_some_and(|i| i.eq_ignore_ascii_case(&id))
        });
        match filter {
            Some(f) => {
                with_ports += 1;
                let proto = f.protocol.as_deref().map(str::trim).unwrap_or("Any");
                let number = match proto.to_ascii_lowercase().as_str() {
                    "tcp" => Some(6),
                    "udp" => Some(17),
                    "icmpv4" => Some(1),
                    "icmpv6" => Some(58),
                    "any" | "" => None,
                    n => n.parse::<u8>().ok(),
                };
                if let Some(n) = number {
                    tokens.push(format!("Protocol={n}"));
                }
                let ports = |items: &[String], token: &str, out: &mut Vec<String>| {
                    for p in items.iter().filter(|p| !p.eq_ignore_ascii_case("any")) {
                        out.push(format!("{token}={}", clean(p)));
                    }
                };
                ports(&f.local_port, "LPort", &mut tokens);
                ports(&f.remote_port, "RPort", &mut tokens);
            }
            None => tokens.push(
                "PortsProgramOrPackage=not shown by Get-NetFirewallRule (pipe it to Get-NetFirewallPortFilter)"
                    .into(),
            ),
        }
        if let Some(n) = r.display_name.as_deref() {
            tokens.push(format!("Name={}", clean(n)));
        }
        if let Some(g) = r.display_group.as_deref().or(r.group.as_deref()) {
            tokens.push(format!("EmbedCtxt={}", clean(g)));
        }
        let text = format!("v2.10|{}|", tokens.join("|"));
        let gp = r
            .store
            .as_deref()
            .is_some_and(|s| s.to_ascii_lowercase().contains("grouppolicy"));
        let (store, origin) = rules_key(gp, cs);
        cfg.policy.rules.push(StoredRule::new(
            store,
            with_line(origin.value(id.as_str()), at_line(file, r.origin.line)),
            Rule::parse(&id, &text),
        ));
    }
    with_ports
}

/// The store and the rules key of a rule a display shows: the Group Policy store's
/// (`gp`) or the local one's in control set `cs`.
fn rules_key(gp: bool, cs: &str) -> (Store, Origin) {
    if gp {
        (
            Store::GroupPolicy,
            Origin::software(format!("{GP_FIREWALL}\\FirewallRules")),
        )
    } else {
        (
            Store::Local,
            Origin::system(format!("{cs}\\{FIREWALL_POLICY}\\FirewallRules")),
        )
    }
}

/// True when a rule as netsh displays it names no program, no service and no local port.
/// Windows' app-package rules (hundreds, one or more per installed app) look like this in
/// netsh, which does not show the package they are limited to.
fn unlimited_in_netsh(tokens: &[String]) -> bool {
    !tokens
        .iter()
        .any(|t| t.starts_with("App=") || t.starts_with("Svc=") || t.starts_with("LPort="))
}

/// A local profile from netsh's `show allprofiles`/`currentprofile` (what the local store
/// holds, as netsh displays it).
fn display_profile(p: &NetshProfile, origin: &Origin) -> StoreProfile {
    let file = &p.origin.file;
    let at = |line: usize, value: &str| with_line(origin.value(value), at_line(file, line));
    let mut sp = StoreProfile {
        origin: with_line(origin.clone(), line_of(&p.origin)),
        ..StoreProfile::default()
    };
    if let Some(f) = &p.state {
        if let Some(v) = f.value {
            sp.enable_firewall = Some(Setting::new(v, at(f.line, "EnableFirewall")));
        }
    }
    if let Some(f) = &p.inbound {
        match f.value {
            Some(InboundPolicy::BlockInbound) => {
                sp.default_inbound_block =
                    Some(Setting::new(true, at(f.line, "DefaultInboundAction")));
            }
            Some(InboundPolicy::BlockInboundAlways) => {
                sp.default_inbound_block =
                    Some(Setting::new(true, at(f.line, "DefaultInboundAction")));
                sp.shielded = Some(Setting::new(true, at(f.line, "DoNotAllowExceptions")));
            }
            Some(InboundPolicy::AllowInbound) => {
                sp.default_inbound_block =
                    Some(Setting::new(false, at(f.line, "DefaultInboundAction")));
            }
            Some(InboundPolicy::NotConfigured) | None => {}
        }
    }
    if let Some(f) = &p.outbound {
        match f.value {
            Some(OutboundPolicy::BlockOutbound) => {
                sp.default_outbound_block =
                    Some(Setting::new(true, at(f.line, "DefaultOutboundAction")));
            }
            Some(OutboundPolicy::AllowOutbound) => {
                sp.default_outbound_block =
                    Some(Setting::new(false, at(f.line, "DefaultOutboundAction")));
            }
            Some(OutboundPolicy::NotConfigured) | None => {}
        }
    }
    sp
}

/// A local profile from `Get-NetFirewallProfile` (or the collector's ActiveStore records).
fn ps_profile(p: &guestwall_capture::PsFirewallProfile, origin: &Origin) -> StoreProfile {
    let line = line_of(&p.origin);
    let at = |value: &str| with_line(origin.value(value), line.clone());
    let mut sp = StoreProfile {
        origin: with_line(origin.clone(), line.clone()),
        ..StoreProfile::default()
    };
    let b = |t: &Option<String>| match t.as_deref().map(str::trim) {
        Some(t) if t.eq_ignore_ascii_case("true") || t == "1" => Some(true),
        Some(t) if t.eq_ignore_ascii_case("false") || t == "0" => Some(false),
        _ => None,
    };
    if let Some(v) = b(&p.enabled) {
        sp.enable_firewall = Some(Setting::new(v, at("EnableFirewall")));
    }
    match p.default_inbound.as_deref().map(str::trim) {
        Some(t) if t.eq_ignore_ascii_case("block") => {
            sp.default_inbound_block = Some(Setting::new(true, at("DefaultInboundAction")));
        }
        Some(t) if t.eq_ignore_ascii_case("allow") => {
            sp.default_inbound_block = Some(Setting::new(false, at("DefaultInboundAction")));
        }
        _ => {}
    }
    sp
}

/// Where the registry says nothing, netsh's display and `Get-NetFirewallProfile` stand in:
/// the local profiles, and the rules (only when no rule key was captured at all).
fn fill_from_display(
    cap: &Capture,
    system: Option<&CaptureHive<'_>>,
    cs: &str,
    cfg: &mut MachineConfig,
) {
    let fw = format!("{cs}\\{FIREWALL_POLICY}");
    let file = &cap.origin_name;
    let mut from_netsh: Vec<&'static str> = Vec::new();
    for p in Profile::ALL {
        let key = format!("{fw}\\{}", p.local_key_name());
        if system.is_some_and(|s| s.has(&key)) {
            continue;
        }
        let origin = Origin::system(key);
        let slot = match p {
            Profile::Domain => &mut cfg.policy.local.domain,
            Profile::Private => &mut cfg.policy.local.private,
            Profile::Public => &mut cfg.policy.local.public,
        };
        if let Some(np) = cap.profiles.iter().rev().find(|x| x.profile == Some(p)) {
            *slot = Some(display_profile(np, &origin));
            from_netsh.push(p.local_key_name());
        } else if let Some(pp) = cap.ps_profiles.iter().rev().find(|x| x.profile == Some(p)) {
            *slot = Some(ps_profile(pp, &origin));
            cfg.notes.push(Note::input(format!(
                "the {p} profile's settings come from Get-NetFirewallProfile{} ({}): only its state and default inbound action are shown",
                if pp.active_store { " -PolicyStore ActiveStore (the effective values)" } else { "" },
                capture_line(&pp.origin)
            )));
        }
    }
    if !from_netsh.is_empty() {
        cfg.notes.push(Note::input(format!(
            "the settings of {} come from netsh's display (`netsh advfirewall show ...`), not from the registry: less exact (no origin of each value in a store)",
            from_netsh.join(", ")
        )));
    }
    let rule_keys = [
        "FirewallRules",
        "Mdm\\FirewallRules",
        "RestrictedServices\\AppIso\\FirewallRules",
        "RestrictedServices\\Static\\System",
        "RestrictedServices\\Configurable\\System",
    ];
    let registry_rules = system.is_some_and(|s| {
        rule_keys
            .iter()
            .any(|k| s.find_key(&format!("{fw}\\{k}")).is_some())
    }) || cap
        .registry
        .key(&format!("HKLM\\SOFTWARE\\{GP_FIREWALL}\\FirewallRules"))
        .is_some();
    // A rule key the capture shows to be absent (reg's "unable to find", the collector's
    // `absent`) holds no rule: that is known, not unknown.
    let absent_rules = cap
        .registry
        .is_absent(&format!("HKLM\\SYSTEM\\{fw}\\FirewallRules"), None);
    if registry_rules || absent_rules {
        return;
    }
    let shown: Vec<&NetshRule> = cap.rules.iter().collect();
    if shown.is_empty() && !cap.ps_rules.is_empty() {
        let with_ports = ps_rules(cap, cs, cfg);
        let first = cap.ps_rules.first().map_or(0, |r| r.origin.line);
        let last = cap.ps_rules.last().map_or(0, |r| r.origin.line);
        cfg.notes.push(Note::input(format!(
            "the {} firewall rules come from Get-NetFirewallRule ({file}:{first}-{last}), {with_ports} of them with their Get-NetFirewallPortFilter: less exact than registry data: a rule without its port filter, and the program, package and address conditions PowerShell showed separately, make a verdict conditional",
            cap.ps_rules.len()
        )));
        return;
    }
    if shown.is_empty() {
        // `show rule name=all` that matched nothing says there is no rule: known, not unknown.
        let none_at_all = cap.blocks.iter().any(|b| {
            b.kind == guestwall_capture::BlockKind::NetshRules
                && b.command
                    .as_deref()
                    .is_some_and(|c| c.to_ascii_lowercase().contains("name=all"))
        });
        if none_at_all {
            cfg.notes.push(Note::input(
                "netsh shows no firewall rule at all (`show rule name=all` matched nothing)",
            ));
        } else {
            cfg.rules_unknown = true;
        }
        return;
    }
    // Rules netsh shows with no program, service or local port are, on a Windows of today,
    // app-package rules, which never apply to the Remote Desktop service; taking each as
    // "perhaps matching" buries the real cause under dozens of them. They are left out, and a
    // note says so (a broad rule of an admin's own would look the same).
    let mut skipped: Vec<String> = Vec::new();
    for r in &shown {
        let sr = display_rule(r, cs, file);
        if sr.rule.unknown.iter().any(|(k, _)| k == "PackageOrOwner") {
            skipped.push(sr.rule.id.clone());
            continue;
        }
        cfg.policy.rules.push(sr);
    }
    if !skipped.is_empty() {
        let mut names: Vec<&str> = skipped.iter().map(String::as_str).take(5).collect();
        if skipped.len() > 5 {
            names.push("…");
        }
        cfg.notes.push(Note::input(format!(
            "{} rules that netsh shows with no program, service or local port were left out ({}): that is how netsh shows Windows' app-package rules, which never apply to Remote Desktop; a broad rule of your own looks the same, so check any you do not recognise with `Get-NetFirewallRule -DisplayName NAME | Get-NetFirewallApplicationFilter`",
            skipped.len(),
            names.join(", ")
        )));
    }
    // Rules shown by a command that selects some of them (`show rule name=X`, or output
    // pasted without its command) do not say that no other rule allows RDP.
    let all_shown = cap.blocks.iter().any(|b| {
        b.kind == guestwall_capture::BlockKind::NetshRules
            && b.command
                .as_deref()
                .is_some_and(|c| c.to_ascii_lowercase().contains("name=all"))
    });
    if !all_shown {
        cfg.rules_unknown = true;
    }
    let first = shown.first().map_or(0, |r| r.origin.line);
    let last = shown.last().map_or(0, |r| r.origin.line);
    cfg.notes.push(Note::input(format!(
        "the {} firewall rules come from netsh's display ({file}:{first}-{last}): less exact than registry data: display names stand for rule IDs, and package, owner and authorization conditions are not shown",
        shown.len() - skipped.len()
    )));
    // The OS: netsh's rules carry no schema version. A Remote Desktop rule for the kernel's
    // listener (`Program: System`) is Windows 7's and older; otherwise the listener is taken
    // to be svchost's (Windows 8 and later), unless the capture says which Windows it is.
    if cfg.os.nt.is_none() {
        let kernel = cfg.policy.rules.iter().any(|sr| {
            sr.rule
                .app
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case("System"))
                && !sr.rule.local_ports.is_any()
                && sr.rule.local_ports.covers(3389)
                && sr.rule.action == Some(guestwall_firewall::Action::Allow)
        });
        if kernel {
            cfg.os = Os {
                nt: Some((6, 1)),
                build: None,
            };
            cfg.os_inferred = true;
            cfg.os_name = Some(
                "Windows NT 6.1 (inferred: the RDP rule names the kernel's listener, System)"
                    .into(),
            );
        }
    }
}

/// What only a running machine knows: the active profiles, the services' states, who listens
/// on the RDP port; and the OS and service start types from sc where the registry is silent.
fn online_facts(cap: &Capture, cs: &str, cfg: &mut MachineConfig) {
    if let Some(active) = &cap.active_profiles {
        let mut list = Vec::new();
        for a in active {
            match a.profile {
                Some(p) => list.push(ActiveNetwork {
                    profile: p,
                    name: a.network.clone(),
                    interface: a.interface.clone(),
                    origin: with_line(Origin::system(""), line_of(&a.origin)),
                }),
                None => cfg.notes.push(Note::input(format!(
                    "{}: a connected network whose profile is not understood",
                    capture_line(&a.origin)
                ))),
            }
        }
        cfg.active = Some(list);
    }
    // The OS, from the capture's own lines (ver, the collector) when the registry is silent.
    if let Some(os) = &cap.os {
        if (cfg.os.nt.is_none() || cfg.os_inferred) && os.nt.is_some() {
            cfg.os = Os {
                nt: os.nt,
                build: os.build,
            };
            cfg.os_inferred = false;
            cfg.os_name = Some(match (&os.product, os.nt, os.build) {
                (Some(p), _, Some(b)) => format!("{p}, build {b}"),
                (Some(p), _, None) => p.clone(),
                (None, Some((a, b)), Some(n)) => format!("Windows NT {a}.{b}, build {n}"),
                (None, Some((a, b)), None) => format!("Windows NT {a}.{b}"),
                (None, None, _) => "Windows".into(),
            });
        }
    }
    // Service start types from `sc qc` where the registry's Start was not captured.
    for s in &mut cfg.services {
        if s.start.is_some() {
            continue;
        }
        if let Some(svc) = cap.service(&s.name) {
            if let Some(f) = &svc.start {
                if let Some(v) = f.value {
                    s.start = Some(v);
                    s.origin = with_line(
                        Origin::key(HiveKind::System, format!("{cs}\\Services\\{}", s.name)),
                        at_line(&cap.origin_name, f.line),
                    );
                }
            }
        }
    }
    // The services' states.
    let mut running = Vec::new();
    for name in ["MpsSvc", "BFE", "TermService"] {
        let Some(svc) = cap.service(name) else {
            continue;
        };
        let at = capture_line(&svc.origin);
        match (svc.exists, svc.running()) {
            (Some(false), _) => cfg.notes.push(Note {
                code: codes::ONLINE_STATE,
                text: format!("the service {name} does not exist on the running machine ({at})"),
            }),
            (_, Some(true)) => running.push(name),
            (_, Some(false)) => {
                let state = svc
                    .state
                    .as_ref()
                    .map_or("not running".to_string(), |f| f.text.clone());
                let what = match name {
                    "TermService" => "nothing accepts Remote Desktop connections until it runs",
                    _ => "without it Windows drops inbound traffic the firewall would otherwise let through",
                };
                cfg.notes.push(Note {
                    code: codes::ONLINE_STATE,
                    text: format!(
                        "the service {name} is {state} on the running machine ({at}): {what}"
                    ),
                });
            }
            (_, None) => {}
        }
    }
    if !running.is_empty() {
        cfg.notes.push(Note {
            code: codes::ONLINE_STATE,
            text: format!("running now: {}", running.join(", ")),
        });
    }
    // Who listens on the RDP port.
    if cap.listeners_checked || !cap.listeners.is_empty() {
        let port = cfg
            .port
            .as_ref()
            .and_then(|p| u16::try_from(p.value).ok())
            .or_else(|| cap.collectors.iter().find_map(|c| c.port))
            .unwrap_or(3389);
        let on: Vec<String> = cap
            .listeners
            .iter()
            .filter(|l| l.listening && l.port == port && l.protocol.eq_ignore_ascii_case("TCP"))
            .map(|l| {
                let who = match (&l.process, l.pid) {
                    (Some(p), Some(id)) => format!("{p} (PID {id})"),
                    (None, Some(id)) => format!("PID {id}"),
                    (Some(p), None) => p.clone(),
                    (None, None) => "a process".into(),
                };
                let svc = if l.services.is_empty() {
                    String::new()
                } else {
                    format!(", {}", l.services.join(","))
                };
                format!("{who}{svc} on {} ({})", l.address, capture_line(&l.origin))
            })
            .collect();
        let looked = &cap.listener_ports;
        if on.is_empty() && !looked.is_empty() && !looked.contains(&port) {
            // The listing was limited to another port (a `findstr :3389`, a collector run for
            // 3389): it says nothing of RDP's port.
            let ports: Vec<String> = looked.iter().map(u16::to_string).collect();
            cfg.notes.push(Note {
                code: codes::UNKNOWN,
                text: format!(
                    "the capture lists listening sockets of TCP {} only, but RDP listens on TCP {port}: whether anything listens there is unknown (`netstat -ano -p TCP`, or a new `guestwall collect`, which checks the port RDP listens on)",
                    ports.join(", ")
                ),
            });
        } else {
            cfg.notes.push(Note {
                code: codes::ONLINE_STATE,
                text: if on.is_empty() {
                    format!("nothing listens on TCP {port} on the running machine: Remote Desktop cannot answer, whatever the firewall allows")
                } else {
                    format!("TCP {port} is listened on by {}", on.join("; "))
                },
            });
        }
    }
}

/// Says what the capture does not show that the verdict rests on.
fn unknowns(cap: &Capture, software: Option<&CaptureHive<'_>>, cs: &str, cfg: &mut MachineConfig) {
    let tree = &cap.registry;
    let sys = |p: &str| format!("HKLM\\SYSTEM\\{cs}\\{p}");
    let unknown = |cfg: &mut MachineConfig, text: String| {
        cfg.notes.push(Note {
            code: codes::UNKNOWN,
            text,
        });
    };
    let fw = FIREWALL_POLICY;
    let missing: Vec<&str> = Profile::ALL
        .iter()
        .filter(|p| {
            let have = match p {
                Profile::Domain => cfg.policy.local.domain.is_some(),
                Profile::Private => cfg.policy.local.private.is_some(),
                Profile::Public => cfg.policy.local.public.is_some(),
            };
            !have && !tree.is_absent(&sys(&format!("{fw}\\{}", p.local_key_name())), None)
        })
        .map(|p| p.local_key_name())
        .collect();
    if !missing.is_empty() {
        unknown(
            cfg,
            format!(
                "the capture does not show the local settings of {} (state, block-all-inbound): the verdict uses Windows' defaults there (on, inbound blocked unless a rule allows it), which the capture neither confirms nor denies",
                missing.join(", ")
            ),
        );
    }
    let mut explained = false;
    // A collector run for another port left out the rules that cannot match *that* port: some
    // of them may match the port RDP listens on.
    if let Some(port) = cfg.port.as_ref().and_then(|p| u16::try_from(p.value).ok()) {
        for c in &cap.collectors {
            let Some(cp) = c.port.filter(|&cp| cp != port && c.filtered_rules > 0) else {
                continue;
            };
            cfg.rules_unknown = true;
            explained = true;
            unknown(
                cfg,
                format!(
                    "the collector ({}) was run for TCP {cp} and left out {} rule(s) that cannot match it, but RDP listens on TCP {port}: whether one of those lets RDP in is unknown (run the collector again: a new `guestwall collect` checks the port RDP listens on)",
                    capture_line(&c.origin),
                    c.filtered_rules
                ),
            );
        }
    }
    if cfg.rules_unknown && !explained {
        unknown(
            cfg,
            if cfg.policy.rules.is_empty() {
                "the capture shows no firewall rule (neither the FirewallRules key nor netsh's `show rule`): whether a rule lets RDP in is unknown".into()
            } else {
                "the capture shows only some firewall rules (netsh's `show rule` without `name=all`, or its output without the command): whether another rule lets RDP in is unknown".into()
            },
        );
    }
    let gp = format!("HKLM\\SOFTWARE\\{GP_FIREWALL}");
    if tree.key(&gp).is_none()
        && !software.is_some_and(|s| s.has(GP_FIREWALL))
        && !tree.is_absent(&gp, None)
    {
        unknown(
            cfg,
            "the capture does not show the Group Policy firewall store (HKLM\\SOFTWARE\\Policies\\Microsoft\\WindowsFirewall): a policy that overrides what is shown is unknown".into(),
        );
    }
    if cfg.deny_ts.is_none()
        && !tree.is_absent(&sys("Control\\Terminal Server"), Some("fDenyTSConnections"))
    {
        unknown(
            cfg,
            "the capture does not show whether Remote Desktop is turned on (Terminal Server\\fDenyTSConnections)".into(),
        );
    }
    if cfg.port.is_none() {
        let absent = tree.is_absent(
            &sys("Control\\Terminal Server\\WinStations\\RDP-Tcp"),
            Some("PortNumber"),
        );
        if !absent {
            cfg.port_unknown = true;
            unknown(
                cfg,
                "the capture does not show RDP's port (RDP-Tcp\\PortNumber): TCP 3389, or --port, is examined".into(),
            );
        }
    }
    let starts: Vec<&str> = cfg
        .services
        .iter()
        .filter(|s| s.start.is_none())
        .filter(|s| !tree.is_absent(&sys(&format!("Services\\{}", s.name)), None))
        .map(|s| s.name.as_str())
        .collect();
    if !starts.is_empty() {
        let list = starts.join(", ");
        unknown(
            cfg,
            format!("the capture does not show the start type of {list} (Services\\...\\Start, or `sc qc`)"),
        );
    }
}

#[cfg(test)]
mod text_tests {
    use super::looks_like_text;

    #[test]
    fn binary_sectors_are_not_text() {
        // A zeroed page, and an NTFS boot sector followed by zeros (a disk image's start):
        // both have NULs at even and odd offsets, which BOM-less UTF-16 never has.
        assert!(!looks_like_text(&[0u8; 4096]));
        let mut boot = vec![0u8; 4096];
        boot[..11].copy_from_slice(b"\xEB\x52\x90NTFS    ");
        assert!(!looks_like_text(&boot));
        // UTF-16 without a BOM, and plain text, are text.
        let utf16: Vec<u8> = "HKEY_LOCAL_MACHINE\\SYSTEM\r\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert!(looks_like_text(&utf16));
        assert!(looks_like_text(
            b"C:\\>netsh advfirewall show allprofiles\r\n"
        ));
        assert!(!looks_like_text(b"regf\x01\x02"));
    }
}
