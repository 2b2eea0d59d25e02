//! `add rule` and `set rule ... new` as rule-string edits ([MS-GPFAS] 2.2.2.19).
//!
//! Edits are lossless: a field that is set replaces its tokens where they stood (or, when the
//! rule has none, goes where Windows writes it, in the grammar's token order), and every other
//! token, including unknown ones, stays as it was.

use guestwall_firewall::{Direction, Rule, RuleString, Segment};

use crate::command::{Filter, RuleSpec, UsageError};
use guestwall_firewall::names::display;

/// The order in which Windows writes a rule string's tokens.
const ORDER: &[&str] = &[
    "Action",
    "Active",
    "Dir",
    "Protocol",
    "Profile",
    "ICMP4",
    "ICMP6",
    "LPort",
    "LPort2_10",
    "LPort2_20",
    "RPort",
    "RPort2_10",
    "LA4",
    "LA6",
    "RA4",
    "RA42",
    "RA6",
    "RA62",
    "App",
    "Svc",
    "Name",
    "Desc",
    "EmbedCtxt",
    "Edge",
    "Defer",
    "IFType",
    "Security",
];

fn rank(name: &str) -> usize {
    ORDER
        .iter()
        .position(|o| o.eq_ignore_ascii_case(name))
        .unwrap_or(ORDER.len())
}

fn is_token(s: &Segment, name: &str) -> bool {
    matches!(s, Segment::Token { name: n, .. } if n.eq_ignore_ascii_case(name))
}

/// Replaces every token `name` with one token per value (none: the tokens are removed). The
/// new tokens go where the first old one was, else after the last token that Windows writes
/// before `name`.
pub fn put(raw: &mut RuleString, name: &str, values: &[String]) {
    let first = raw.segments.iter().position(|s| is_token(s, name));
    raw.segments.retain(|s| !is_token(s, name));
    let at = first.unwrap_or_else(|| {
        let r = rank(name);
        raw.segments
            .iter()
            .rposition(|s| matches!(s, Segment::Token { name: n, .. } if rank(n) < r))
            .map_or(0, |p| p + 1)
    });
    for (i, v) in values.iter().enumerate() {
        raw.segments.insert(
            at + i,
            Segment::Token {
                name: name.to_string(),
                value: v.clone(),
            },
        );
    }
}

/// `tcp` → 6, `udp` → 17, `icmpv4` → 1, `icmpv6` → 58, a number, or `any` (`None`).
pub fn protocol_number(v: &str) -> Result<Option<u8>, UsageError> {
    Ok(Some(match v.to_ascii_lowercase().as_str() {
        "any" => return Ok(None),
        "tcp" => 6,
        "udp" => 17,
        "icmpv4" => 1,
        "icmpv6" => 58,
        n => n.parse::<u8>().map_err(|_| {
            UsageError(format!(
                "protocol={v}: expected tcp, udp, icmpv4, icmpv6, any or 0-255"
            ))
        })?,
    }))
}

/// Port list as rule-string values: `3389`, `5000-5010`, `rpc`, `rpc-epmap`; `any` → none.
pub fn port_values(key: &str, v: &str) -> Result<Vec<String>, UsageError> {
    if v.eq_ignore_ascii_case("any") {
        return Ok(Vec::new());
    }
    v.split(',')
        .map(str::trim)
        .map(|p| {
            let lower = p.to_ascii_lowercase();
            match lower.as_str() {
                "rpc" => return Ok("RPC".to_string()),
                "rpc-epmap" => return Ok("RPC-EPMap".to_string()),
                "iphttps" => return Ok("IPHTTPS".to_string()),
                "teredo" => return Ok("Teredo".to_string()),
                _ => {}
            }
            let ok = match p.split_once('-') {
                Some((a, b)) => {
                    matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if a <= b)
                }
                None => p.parse::<u16>().is_ok(),
            };
            if ok {
                Ok(p.to_string())
            } else {
                Err(UsageError(format!(
                    "{key}={v}: {p:?} is not a port, a range or a port keyword"
                )))
            }
        })
        .collect()
}

/// Address list → (IPv4 values, IPv6 values). Keywords go to both, as Windows writes them.
pub fn address_values(key: &str, v: &str) -> Result<(Vec<String>, Vec<String>), UsageError> {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    if v.eq_ignore_ascii_case("any") {
        return Ok((v4, v6));
    }
    for item in v.split(',').map(str::trim) {
        let keyword = match item.to_ascii_lowercase().as_str() {
            "localsubnet" => Some("LocalSubnet"),
            "dns" => Some("DNS"),
            "dhcp" => Some("DHCP"),
            "wins" => Some("WINS"),
            "defaultgateway" => Some("DefaultGateway"),
            _ => None,
        };
        if let Some(k) = keyword {
            v4.push(k.to_string());
            v6.push(k.to_string());
            continue;
        }
        let host = |s: &str| s.split('/').next().unwrap_or("").to_string();
        let parts: Vec<String> = item.split('-').map(host).collect();
        let all4 = parts
            .iter()
            .all(|p| p.parse::<std::net::Ipv4Addr>().is_ok());
        let all6 = parts
            .iter()
            .all(|p| p.parse::<std::net::Ipv6Addr>().is_ok());
        if all4 {
            v4.push(item.to_string());
        } else if all6 {
            v6.push(item.to_string());
        } else {
            return Err(UsageError(format!(
                "{key}={v}: {item:?} is not an address, subnet, range or keyword"
            )));
        }
    }
    Ok((v4, v6))
}

/// Applies the fields of `spec` to a rule string. Returns true when it changed.
pub fn apply_spec(raw: &mut RuleString, spec: &RuleSpec) -> Result<bool, UsageError> {
    if let Some(text) = [&spec.name, &spec.description]
        .into_iter()
        .flatten()
        .find(|t| t.contains('|'))
    {
        return Err(UsageError(format!(
            "{text:?}: '|' cannot appear in a rule's name or description"
        )));
    }
    let before = raw.to_string();
    let one = |s: &str| vec![s.to_string()];
    if let Some(a) = spec.action {
        put(raw, "Action", &one(a));
    }
    if let Some(e) = spec.enable {
        put(raw, "Active", &one(if e { "TRUE" } else { "FALSE" }));
    }
    if let Some(d) = spec.dir {
        put(
            raw,
            "Dir",
            &one(if d == Direction::In { "In" } else { "Out" }),
        );
    }
    if let Some(p) = &spec.protocol {
        match protocol_number(p)? {
            Some(n) => put(raw, "Protocol", &one(&n.to_string())),
            None => put(raw, "Protocol", &[]),
        }
    }
    if let Some(p) = spec.profile {
        let values: Vec<String> = match p {
            Some(set) if !set.is_all() => set.iter().map(|p| p.to_string()).collect(),
            _ => Vec::new(),
        };
        put(raw, "Profile", &values);
    }
    if let Some(v) = &spec.local_port {
        put(raw, "LPort", &port_values("localport", v)?);
    }
    if let Some(v) = &spec.remote_port {
        put(raw, "RPort", &port_values("remoteport", v)?);
    }
    if let Some(v) = &spec.local_ip {
        let (a4, a6) = address_values("localip", v)?;
        put(raw, "LA4", &a4);
        put(raw, "LA6", &a6);
    }
    if let Some(v) = &spec.remote_ip {
        let (a4, a6) = address_values("remoteip", v)?;
        put(raw, "RA4", &a4);
        put(raw, "RA6", &a6);
    }
    if let Some(v) = &spec.program {
        put(
            raw,
            "App",
            &if v.eq_ignore_ascii_case("any") {
                vec![]
            } else {
                one(v)
            },
        );
    }
    if let Some(v) = &spec.service {
        put(
            raw,
            "Svc",
            &if v.eq_ignore_ascii_case("any") {
                vec![]
            } else {
                one(v)
            },
        );
    }
    if let Some(v) = &spec.name {
        put(raw, "Name", &one(v));
    }
    if let Some(v) = &spec.description {
        put(raw, "Desc", &one(v));
    }
    if let Some(v) = &spec.edge {
        let (edge, defer) = match v.to_ascii_lowercase().as_str() {
            "yes" => (Some("TRUE"), None),
            "no" => (None, None),
            "deferapp" => (None, Some("App")),
            "deferuser" => (None, Some("User")),
            _ => {
                return Err(UsageError(format!(
                    "edge={v}: expected yes, no, deferapp or deferuser"
                )))
            }
        };
        put(raw, "Edge", &edge.map(one).unwrap_or_default());
        put(raw, "Defer", &defer.map(one).unwrap_or_default());
    }
    if let Some(v) = &spec.interface_type {
        let t = match v.to_ascii_lowercase().as_str() {
            "any" => None,
            "lan" => Some("Lan"),
            "wireless" => Some("Wireless"),
            "ras" => Some("RemoteAccess"),
            _ => {
                return Err(UsageError(format!(
                    "interfacetype={v}: expected any, wireless, lan or ras"
                )))
            }
        };
        put(raw, "IFType", &t.map(one).unwrap_or_default());
    }
    Ok(raw.to_string() != before)
}

/// A new rule string for `add rule` in schema `version` (netsh's defaults: enabled, every
/// profile, any protocol).
pub fn new_rule(spec: &RuleSpec, version: (u8, u8)) -> Result<String, UsageError> {
    let mut raw = RuleString::parse(&format!("v{}.{}|", version.0, version.1));
    let mut s = spec.clone();
    s.enable.get_or_insert(true);
    apply_spec(&mut raw, &s)?;
    Ok(raw.to_string())
}

fn eq_name(wanted: &str, value: Option<&str>, local: Option<&str>) -> bool {
    value.is_some_and(|v| v.eq_ignore_ascii_case(wanted) || display(v).eq_ignore_ascii_case(wanted))
        || local.is_some_and(|l| {
            l.chars()
                .flat_map(char::to_lowercase)
                .eq(wanted.chars().flat_map(char::to_lowercase))
        })
}

/// Whether a rule is selected by a filter: names and groups match the English display name
/// or the indirect string, case-insensitively.
pub fn matches(rule: &Rule, f: &Filter) -> Result<bool, UsageError> {
    matches_local(rule, f, None, None)
}

/// [`matches`], where names and groups also match the rule's name and group in the VM's
/// language (`local_name`, `local_group`), case-insensitively in any script, as netsh on that
/// machine matches them.
pub fn matches_local(
    rule: &Rule,
    f: &Filter,
    local_name: Option<&str>,
    local_group: Option<&str>,
) -> Result<bool, UsageError> {
    if let Some(n) = &f.name {
        if !eq_name(n, rule.name.as_deref(), local_name) {
            return Ok(false);
        }
    }
    if let Some(g) = &f.group {
        if !eq_name(g, rule.group.as_deref(), local_group) {
            return Ok(false);
        }
    }
    if let Some(d) = f.dir {
        if rule.direction != Some(d) {
            return Ok(false);
        }
    }
    if let Some(p) = f.profile {
        if !p.iter().any(|p| rule.profiles.contains(p)) {
            return Ok(false);
        }
    }
    if let Some(p) = &f.protocol {
        if protocol_number(p)? != rule.protocol {
            return Ok(false);
        }
    }
    let same_list = |wanted: &str, token: &str, key: &str| -> Result<bool, UsageError> {
        let want = port_values(key, wanted)?;
        let have: Vec<&str> = rule.raw.values(token).collect();
        Ok(want.len() == have.len()
            && want
                .iter()
                .zip(have)
                .all(|(a, b)| a.eq_ignore_ascii_case(b)))
    };
    if let Some(p) = &f.local_port {
        if !same_list(p, "LPort", "localport")? {
            return Ok(false);
        }
    }
    if let Some(p) = &f.remote_port {
        if !same_list(p, "RPort", "remoteport")? {
            return Ok(false);
        }
    }
    if let Some(p) = &f.program {
        if !rule
            .app
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case(p))
        {
            return Ok(false);
        }
    }
    if let Some(s) = &f.service {
        if !rule
            .service
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case(s))
        {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use guestwall_firewall::{Profile, ProfileSet};

    const RDP: &str = "v2.29|Action=Allow|Active=FALSE|Dir=In|Protocol=6|LPort=3389|App=%SystemRoot%\\system32\\svchost.exe|Svc=termservice|Name=@FirewallAPI.dll,-28775|Desc=@FirewallAPI.dll,-28756|EmbedCtxt=@FirewallAPI.dll,-28752|";

    #[test]
    fn enable_changes_only_active() {
        let mut raw = RuleString::parse(RDP);
        let spec = RuleSpec {
            enable: Some(true),
            ..RuleSpec::default()
        };
        assert!(apply_spec(&mut raw, &spec).unwrap());
        assert_eq!(raw.to_string(), RDP.replace("Active=FALSE", "Active=TRUE"));
        assert!(!apply_spec(&mut raw, &spec).unwrap());
    }

    #[test]
    fn absent_tokens_go_where_windows_writes_them() {
        let mut raw = RuleString::parse(RDP);
        let spec = RuleSpec {
            profile: Some(Some(ProfileSet::of(&[Profile::Private, Profile::Public]))),
            remote_ip: Some("10.0.0.0/8,LocalSubnet,fe80::1".into()),
            ..RuleSpec::default()
        };
        apply_spec(&mut raw, &spec).unwrap();
        assert_eq!(
            raw.to_string(),
            RDP.replace("Protocol=6|", "Protocol=6|Profile=Private|Profile=Public|")
                .replace(
                    "LPort=3389|",
                    "LPort=3389|RA4=10.0.0.0/8|RA4=LocalSubnet|RA6=LocalSubnet|RA6=fe80::1|"
                )
        );
        // profile=any removes the tokens again.
        let spec = RuleSpec {
            profile: Some(None),
            remote_ip: Some("any".into()),
            ..RuleSpec::default()
        };
        apply_spec(&mut raw, &spec).unwrap();
        assert_eq!(raw.to_string(), RDP);
    }

    #[test]
    fn a_new_rule_is_well_formed() {
        let spec = RuleSpec {
            name: Some("RDP 3390".into()),
            dir: Some(Direction::In),
            action: Some("Allow"),
            protocol: Some("TCP".into()),
            local_port: Some("3390".into()),
            ..RuleSpec::default()
        };
        let s = new_rule(&spec, (2, 30)).unwrap();
        assert_eq!(
            s,
            "v2.30|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=3390|Name=RDP 3390|"
        );
        assert!(Rule::parse("x", &s).is_well_formed());
    }

    #[test]
    fn names_match_display_names_and_indirect_strings() {
        let r = Rule::parse("RemoteDesktop-UserMode-In-TCP", RDP);
        for (name, group, want) in [
            (Some("Remote Desktop - User Mode (TCP-In)"), None, true),
            (Some("remote desktop - user mode (tcp-in)"), None, true),
            (Some("@FirewallAPI.dll,-28775"), None, true),
            (None, Some("Remote Desktop"), true),
            (None, Some("@FirewallAPI.dll,-28752"), true),
            (Some("Remote Desktop"), None, false),
        ] {
            let f = Filter {
                name: name.map(String::from),
                group: group.map(String::from),
                ..Filter::default()
            };
            assert_eq!(matches(&r, &f).unwrap(), want, "{name:?} {group:?}");
        }
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(port_values("localport", "70000").is_err());
        assert!(port_values("localport", "20-10").is_err());
        assert!(address_values("remoteip", "10.0.0.300").is_err());
        assert!(protocol_number("sctp").is_err());
        let mut raw = RuleString::parse(RDP);
        let spec = RuleSpec {
            name: Some("a|b".into()),
            ..RuleSpec::default()
        };
        assert!(apply_spec(&mut raw, &spec).is_err());
    }
}
