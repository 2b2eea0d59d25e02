//! Output the way netsh writes it: `show rule` blocks and `show allprofiles` blocks, with the
//! 70-dash separators and values at column 38 (see `docs/netsh-output.md`).

use std::io::{self, Write};

use guestwall_capture::lang::{self, Language, RuleLabel};
use guestwall_firewall::names::display;
use guestwall_firewall::{Action, Direction, Profile, Rule};

/// The separator line under each block's title.
pub const DASHES: &str = "----------------------------------------------------------------------";
/// What netsh prints when a filter selects no rule.
pub const NO_MATCH: &str = "No rules match the specified criteria.";
/// The value column.
const COLUMN: usize = 38;

/// A rule to show, and where it comes from.
#[derive(Debug, Clone, Copy)]
pub struct ShownRule<'a> {
    /// The rule.
    pub rule: &'a Rule,
    /// `Local Setting` or `Group Policy`.
    pub source: &'a str,
    /// The rule's name in the VM's language, shown instead of the English one when known.
    pub local_name: Option<&'a str>,
    /// The rule's group in the VM's language, likewise.
    pub local_group: Option<&'a str>,
}

fn row(out: &mut dyn Write, label: &str, value: &str) -> io::Result<()> {
    row_at(out, COLUMN, label, value)
}

/// A `label value` line with the value at column `column` (in characters).
fn row_at(out: &mut dyn Write, column: usize, label: &str, value: &str) -> io::Result<()> {
    if value.is_empty() {
        writeln!(out, "{label}")
    } else {
        writeln!(out, "{label:<column$}{value}")
    }
}

fn protocol_name(p: Option<u8>) -> String {
    match p {
        None => "Any".into(),
        Some(6) => "TCP".into(),
        Some(17) => "UDP".into(),
        Some(1) => "ICMPv4".into(),
        Some(58) => "ICMPv6".into(),
        Some(n) => n.to_string(),
    }
}

fn port_keyword(v: &str) -> String {
    match v.to_ascii_lowercase().as_str() {
        "iptlsin" | "iptlsout" | "iphttpsin" | "iphttpsout" | "iphttps" => "IPHTTPS".into(),
        "rpc" => "RPC".into(),
        "rpc-epmap" => "RPC-EPMap".into(),
        "teredo" => "Teredo".into(),
        "ply2disc" => "Ply2Disc".into(),
        "mdns" => "mDNS".into(),
        _ => v.to_string(),
    }
}

fn ports(rule: &Rule, tokens: &[&str]) -> String {
    let mut v: Vec<String> = Vec::new();
    for t in tokens {
        for p in rule.raw.values(t).map(port_keyword) {
            if !v.contains(&p) {
                v.push(p);
            }
        }
    }
    if v.is_empty() {
        "Any".into()
    } else {
        v.join(",")
    }
}

fn addresses(rule: &Rule, tokens: &[&str]) -> String {
    let mut v: Vec<String> = Vec::new();
    for t in tokens {
        for a in rule.raw.values(t) {
            let shown = if a.contains('/') || a.contains('-') {
                a.to_string()
            } else if a.parse::<std::net::Ipv4Addr>().is_ok() {
                format!("{a}/32")
            } else if a.parse::<std::net::Ipv6Addr>().is_ok() {
                format!("{a}/128")
            } else {
                a.to_string()
            };
            if !v.iter().any(|x| x.eq_ignore_ascii_case(&shown)) {
                v.push(shown);
            }
        }
    }
    if v.is_empty() {
        "Any".into()
    } else {
        v.join(",")
    }
}

fn security(rule: &Rule) -> String {
    let s = ["Security2", "Security2_9", "Security"]
        .iter()
        .find_map(|t| rule.raw.get(t));
    match s.map(str::to_ascii_lowercase).as_deref() {
        None => "NotRequired".into(),
        Some("authenticate") => "Authenticate".into(),
        Some("authenticateencrypt") => "AuthEnc".into(),
        Some("an-noencap") => "AuthNoEncap".into(),
        Some("ane-nego") => "AuthDynEnc".into(),
        Some(_) => s.unwrap_or_default().to_string(),
    }
}

/// The words of netsh's `show rule` output in a language: the labels and values that
/// public captures and fixtures document (`guestwall_capture::lang`, each entry with the kind
/// of its source), English for anything not documented in that language. Nothing is
/// translated here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Words {
    lang: Option<Language>,
}

impl Words {
    /// netsh's English output.
    pub fn english() -> Words {
        Words { lang: None }
    }

    /// The output of a Windows whose UI language is `tag` (`de-DE`): German, Spanish and
    /// Russian have documented words; any other language (and French, whose sources
    /// disagree) gives English.
    pub fn for_language(tag: Option<&str>) -> Words {
        let primary = tag
            .and_then(|t| t.split(['-', '_']).next())
            .map(str::to_ascii_lowercase);
        let lang = match primary.as_deref() {
            Some("de") => Some(Language::German),
            Some("es") => Some(Language::Spanish),
            Some("ru") => Some(Language::Russian),
            _ => None,
        };
        Words { lang }
    }

    /// True when this is English.
    pub fn is_english(&self) -> bool {
        self.lang.is_none()
    }

    /// The column values start at: 41 in German (the real capture in the shared corpus,
    /// `netsh/de`), 38 in English and Russian (real captures), 38 for Spanish (no capture).
    fn column(&self) -> usize {
        match self.lang {
            Some(Language::German) => 41,
            _ => COLUMN,
        }
    }

    fn label(&self, l: RuleLabel, english: &'static str) -> String {
        let word = self
            .lang
            .and_then(|lang| {
                lang::RULE_LABELS
                    .iter()
                    .find(|(k, g, _)| *k == l && *g == lang)
                    .map(|(_, _, w)| *w)
            })
            .unwrap_or(english);
        format!("{word}:")
    }

    fn word<T: PartialEq + Copy>(
        &self,
        table: &[(&'static str, T, Language)],
        v: T,
        english: &'static str,
    ) -> &'static str {
        self.lang
            .and_then(|lang| {
                table
                    .iter()
                    .find(|(_, x, g)| *x == v && *g == lang)
                    .map(|(w, _, _)| *w)
            })
            .unwrap_or(english)
    }

    fn any(&self, value: String) -> String {
        if value != "Any" {
            return value;
        }
        self.lang
            .and_then(|lang| lang::ANY.iter().find(|(_, g)| *g == lang).map(|(w, _)| *w))
            .unwrap_or("Any")
            .to_string()
    }

    fn profiles(&self, list: String) -> String {
        if self.lang.is_none() {
            return list;
        }
        list.split(',')
            .map(|p| match p {
                "Domain" => self.word(lang::PROFILES, Profile::Domain, "Domain"),
                "Private" => self.word(lang::PROFILES, Profile::Private, "Private"),
                "Public" => self.word(lang::PROFILES, Profile::Public, "Public"),
                _ => p,
            })
            .map(|p| self.any(p.to_string()))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn ok(&self) -> &'static str {
        self.lang
            .and_then(|lang| {
                lang::OK_LINES
                    .iter()
                    .find(|(_, g)| *g == lang)
                    .map(|(w, _)| *w)
            })
            .unwrap_or("Ok.")
    }

    fn no_match(&self) -> &'static str {
        self.lang
            .and_then(|lang| {
                lang::NO_RULES
                    .iter()
                    .find(|(_, g)| *g == lang)
                    .map(|(w, _)| *w)
            })
            .unwrap_or(NO_MATCH)
    }
}

/// Writes one rule block.
pub fn write_rule(out: &mut dyn Write, r: ShownRule<'_>, verbose: bool) -> io::Result<()> {
    write_rule_in(out, r, verbose, Words::english())
}

/// Writes one rule block in the words `w`.
pub fn write_rule_in(
    out: &mut dyn Write,
    r: ShownRule<'_>,
    verbose: bool,
    w: Words,
) -> io::Result<()> {
    let rule = r.rule;
    let name = r.local_name.map(str::to_string).unwrap_or_else(|| {
        rule.name
            .as_deref()
            .map_or_else(|| rule.id.clone(), display)
    });
    row_at(
        out,
        w.column(),
        &w.label(RuleLabel::RuleName, "Rule Name"),
        &name,
    )?;
    writeln!(out, "{DASHES}")?;
    if verbose {
        if let Some(d) = rule.description.as_deref().filter(|d| !d.is_empty()) {
            row_at(
                out,
                w.column(),
                &w.label(RuleLabel::Description, "Description"),
                &display(d),
            )?;
        }
    }
    row_at(
        out,
        w.column(),
        &w.label(RuleLabel::Enabled, "Enabled"),
        w.word(
            lang::YES_NO,
            rule.active,
            if rule.active { "Yes" } else { "No" },
        ),
    )?;
    let dir = match rule.direction {
        Some(d @ Direction::In) => w.word(lang::DIRECTIONS, d, "In"),
        Some(d @ Direction::Out) => w.word(lang::DIRECTIONS, d, "Out"),
        None => "",
    };
    row_at(
        out,
        w.column(),
        &w.label(RuleLabel::Direction, "Direction"),
        dir,
    )?;
    row_at(
        out,
        w.column(),
        &w.label(RuleLabel::Profiles, "Profiles"),
        &w.profiles(rule.profiles.to_string()),
    )?;
    row_at(
        out,
        w.column(),
        &w.label(RuleLabel::Grouping, "Grouping"),
        &r.local_group
            .map(str::to_string)
            .or_else(|| rule.group.as_deref().map(display))
            .unwrap_or_default(),
    )?;
    row_at(
        out,
        w.column(),
        &w.label(RuleLabel::LocalIp, "LocalIP"),
        &w.any(addresses(rule, &["LA4", "LA6"])),
    )?;
    row_at(
        out,
        w.column(),
        &w.label(RuleLabel::RemoteIp, "RemoteIP"),
        &w.any(addresses(rule, &["RA4", "RA42", "RA6", "RA62"])),
    )?;
    row_at(
        out,
        w.column(),
        &w.label(RuleLabel::Protocol, "Protocol"),
        &w.any(protocol_name(rule.protocol)),
    )?;
    match rule.protocol {
        Some(6 | 17) => {
            row_at(
                out,
                w.column(),
                &w.label(RuleLabel::LocalPort, "LocalPort"),
                &w.any(ports(rule, &["LPort", "LPort2_10", "LPort2_20"])),
            )?;
            row_at(
                out,
                w.column(),
                &w.label(RuleLabel::RemotePort, "RemotePort"),
                &w.any(ports(rule, &["RPort", "RPort2_10"])),
            )?;
        }
        Some(1 | 58) => {
            row_at(out, w.column(), "", "Type    Code")?;
            let entries: Vec<&str> = rule.icmp.iter().map(String::as_str).collect();
            let entries = if entries.is_empty() {
                vec!["*:*"]
            } else {
                entries
            };
            for e in entries {
                let (t, c) = e.split_once(':').unwrap_or((e, "*"));
                let any = |x: &str| {
                    if x == "*" || x.is_empty() {
                        "Any".to_string()
                    } else {
                        x.to_string()
                    }
                };
                row_at(out, w.column(), "", &format!("{:<8}{}", any(t), any(c)))?;
            }
        }
        _ => {}
    }
    let edge = match (rule.edge, rule.defer) {
        (_, Some(guestwall_firewall::rule::Defer::App)) => "Defer to application",
        (_, Some(guestwall_firewall::rule::Defer::User)) => "Defer to user",
        (true, None) => w.word(lang::YES_NO, true, "Yes"),
        (false, None) => w.word(lang::YES_NO, false, "No"),
    };
    row_at(
        out,
        w.column(),
        &w.label(RuleLabel::Edge, "Edge traversal"),
        edge,
    )?;
    if verbose {
        if let Some(a) = &rule.app {
            row_at(out, w.column(), &w.label(RuleLabel::Program, "Program"), a)?;
        }
        if let Some(s) = &rule.service {
            row_at(out, w.column(), &w.label(RuleLabel::Service, "Service"), s)?;
        }
        let types: Vec<&str> = rule.raw.values("IFType").collect();
        row_at(
            out,
            w.column(),
            &w.label(RuleLabel::InterfaceTypes, "InterfaceTypes"),
            &w.any(if types.is_empty() {
                "Any".to_string()
            } else {
                types.join(",")
            }),
        )?;
        row_at(
            out,
            w.column(),
            &w.label(RuleLabel::Security, "Security"),
            &security(rule),
        )?;
        row_at(
            out,
            w.column(),
            &w.label(RuleLabel::RuleSource, "Rule source"),
            r.source,
        )?;
    }
    let action = match rule.action {
        Some(a @ Action::Allow) => w.word(lang::ACTIONS, a, "Allow"),
        Some(a @ Action::Block) => w.word(lang::ACTIONS, a, "Block"),
        Some(a @ Action::Bypass) => w.word(lang::ACTIONS, a, "Bypass"),
        None => "",
    };
    row_at(
        out,
        w.column(),
        &w.label(RuleLabel::Action, "Action"),
        action,
    )
}

/// Writes `show rule` output: a blank line, the blocks separated by blank lines, then `Ok.`;
/// or the no-match message.
pub fn write_rules(out: &mut dyn Write, rules: &[ShownRule<'_>], verbose: bool) -> io::Result<()> {
    write_rules_in(out, rules, verbose, Words::english())
}

/// [`write_rules`] in the words `w`.
pub fn write_rules_in(
    out: &mut dyn Write,
    rules: &[ShownRule<'_>],
    verbose: bool,
    w: Words,
) -> io::Result<()> {
    writeln!(out)?;
    if rules.is_empty() {
        writeln!(out, "{}", w.no_match())?;
        return writeln!(out);
    }
    for (i, r) in rules.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        write_rule_in(out, *r, verbose, w)?;
    }
    writeln!(out, "{}", w.ok())?;
    writeln!(out)
}

/// `Ok.` and a blank line.
pub fn write_ok(out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "Ok.")?;
    writeln!(out)
}

/// One profile's settings, as `show allprofiles` prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownProfile {
    /// Which.
    pub profile: Profile,
    /// `State`: ON / OFF.
    pub on: bool,
    /// Inbound part of `Firewall Policy`: BlockInbound, BlockInboundAlways, AllowInbound.
    pub inbound: &'static str,
    /// Outbound part: AllowOutbound, BlockOutbound.
    pub outbound: &'static str,
    /// `LocalFirewallRules` (`N/A (GPO-store only)` for the local store).
    pub local_firewall_rules: String,
    /// `LocalConSecRules`.
    pub local_consec_rules: String,
    /// `InboundUserNotification` enabled.
    pub inbound_user_notification: bool,
    /// `RemoteManagement` enabled.
    pub remote_management: bool,
    /// `UnicastResponseToMulticast` enabled.
    pub unicast_response: bool,
    /// `LogAllowedConnections`.
    pub log_allowed: bool,
    /// `LogDroppedConnections`.
    pub log_dropped: bool,
    /// `FileName`.
    pub log_file: String,
    /// `MaxFileSize` in KB.
    pub log_max_kb: u32,
}

fn enable(b: bool) -> &'static str {
    if b {
        "Enable"
    } else {
        "Disable"
    }
}

/// Writes `show allprofiles` / `show <x>profile` output.
pub fn write_profiles(out: &mut dyn Write, profiles: &[ShownProfile]) -> io::Result<()> {
    writeln!(out)?;
    for p in profiles {
        writeln!(out, "{} Profile Settings:", p.profile)?;
        writeln!(out, "{DASHES}")?;
        row(out, "State", if p.on { "ON" } else { "OFF" })?;
        row(
            out,
            "Firewall Policy",
            &format!("{},{}", p.inbound, p.outbound),
        )?;
        row(out, "LocalFirewallRules", &p.local_firewall_rules)?;
        row(out, "LocalConSecRules", &p.local_consec_rules)?;
        row(
            out,
            "InboundUserNotification",
            enable(p.inbound_user_notification),
        )?;
        row(out, "RemoteManagement", enable(p.remote_management))?;
        row(
            out,
            "UnicastResponseToMulticast",
            enable(p.unicast_response),
        )?;
        writeln!(out)?;
        writeln!(out, "Logging:")?;
        row(out, "LogAllowedConnections", enable(p.log_allowed))?;
        row(out, "LogDroppedConnections", enable(p.log_dropped))?;
        row(out, "FileName", &p.log_file)?;
        row(out, "MaxFileSize", &p.log_max_kb.to_string())?;
        writeln!(out)?;
    }
    write_ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_block_matches_the_real_capture() {
        // en/rule-verbose-iphttps-tcp-out.txt, with the program as the rule string stores it.
        let r = Rule::parse(
            "CoreNet-IPHTTPS-Out",
            "v2.10|Action=Allow|Active=TRUE|Dir=Out|Protocol=6|RPort2_10=IPTLSOut|RPort2_10=IPHTTPSOut|App=C:\\WINDOWS\\system32\\svchost.exe|Svc=iphlpsvc|Name=Core Networking - IPHTTPS (TCP-Out)|Desc=Outbound TCP rule to allow IPHTTPS tunneling technology to provide connectivity across HTTP proxies and firewalls.|EmbedCtxt=Core Networking|",
        );
        let mut out = Vec::new();
        write_rules(
            &mut out,
            &[ShownRule {
                local_name: None,
                local_group: None,
                rule: &r,
                source: "Local Setting",
            }],
            true,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let want = "
Rule Name:                            Core Networking - IPHTTPS (TCP-Out)
----------------------------------------------------------------------
Description:                          Outbound TCP rule to allow IPHTTPS tunneling technology to provide connectivity across HTTP proxies and firewalls.
Enabled:                              Yes
Direction:                            Out
Profiles:                             Domain,Private,Public
Grouping:                             Core Networking
LocalIP:                              Any
RemoteIP:                             Any
Protocol:                             TCP
LocalPort:                            Any
RemotePort:                           IPHTTPS
Edge traversal:                       No
Program:                              C:\\WINDOWS\\system32\\svchost.exe
Service:                              iphlpsvc
InterfaceTypes:                       Any
Security:                             NotRequired
Rule source:                          Local Setting
Action:                               Allow
Ok.

";
        assert_eq!(text, want);
    }
}
