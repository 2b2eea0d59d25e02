//! Firewall rule strings ([MS-GPFAS] 2.2.2.19): `v2.10|Action=Allow|Active=TRUE|Dir=In|...|`.
//!
//! Two layers:
//!
//! - [`RuleString`] is lossless: the version text and every segment in order, whatever it
//!   holds (known tokens, unknown tokens, segments without `=`), and whether the string ends
//!   with `|`. `RuleString::parse(s).to_string() == s` for every string. Edits change only the
//!   segment they touch ([`RuleString::set`]).
//! - [`Rule`] is the typed view: action, direction, profiles, protocol, ports, addresses,
//!   application, service, security and the rest. Token names match case-insensitively;
//!   booleans are `TRUE`/`FALSE` in any case. What does not parse is recorded in
//!   [`Rule::problems`] and unknown tokens in [`Rule::unknown`], never dropped silently.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::values::{
    Action, Address, AddressSet, Direction, IfType, PortItem, PortSet, Profile, ProfileSet,
};

/// One `|`-separated segment of a rule string after the version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// `Name=Value` (split at the first `=`).
    Token {
        /// Token name as written.
        name: String,
        /// Value as written.
        value: String,
    },
    /// A segment with no `=` (malformed, kept verbatim).
    Bare(String),
}

/// A rule string, kept exactly as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleString {
    /// The first segment, e.g. `v2.10`.
    pub version: String,
    /// The segments after the version, in order.
    pub segments: Vec<Segment>,
    /// The string ends with `|` (every well-formed rule string does).
    pub terminated: bool,
}

impl RuleString {
    /// Splits a rule string. Never fails: anything is representable.
    pub fn parse(s: &str) -> RuleString {
        let mut parts: Vec<&str> = s.split('|').collect();
        let terminated = parts.len() > 1 && parts.last() == Some(&"");
        if terminated {
            parts.pop();
        }
        let version = parts.first().copied().unwrap_or("").to_string();
        let segments = parts
            .iter()
            .skip(1)
            .map(|p| match p.split_once('=') {
                Some((n, v)) => Segment::Token {
                    name: n.to_string(),
                    value: v.to_string(),
                },
                None => Segment::Bare(p.to_string()),
            })
            .collect();
        RuleString {
            version,
            segments,
            terminated,
        }
    }

    /// The values of every token called `name` (case-insensitive), in order.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.segments.iter().filter_map(move |s| match s {
            Segment::Token { name: n, value } if n.eq_ignore_ascii_case(name) => {
                Some(value.as_str())
            }
            _ => None,
        })
    }

    /// The first value of the token `name`.
    pub fn get<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.values(name).next()
    }

    /// Sets the value of the first token `name`, changing nothing else; appends the token
    /// (before the final `|`) when it is absent. Returns true when the string changed.
    pub fn set(&mut self, name: &str, value: &str) -> bool {
        for s in &mut self.segments {
            if let Segment::Token { name: n, value: v } = s {
                if n.eq_ignore_ascii_case(name) {
                    if v == value {
                        return false;
                    }
                    *v = value.to_string();
                    return true;
                }
            }
        }
        self.segments.push(Segment::Token {
            name: name.to_string(),
            value: value.to_string(),
        });
        true
    }

    /// Inserts a token right after the last token called `after` (or at the end).
    pub fn insert_after(&mut self, after: &str, name: &str, value: &str) {
        let pos = self
            .segments
            .iter()
            .rposition(
                |s| matches!(s, Segment::Token { name: n, .. } if n.eq_ignore_ascii_case(after)),
            )
            .map_or(self.segments.len(), |p| p + 1);
        self.segments.insert(
            pos,
            Segment::Token {
                name: name.to_string(),
                value: value.to_string(),
            },
        );
    }

    /// Removes every token called `name`; returns how many were removed.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.segments.len();
        self.segments.retain(
            |s| !matches!(s, Segment::Token { name: n, .. } if n.eq_ignore_ascii_case(name)),
        );
        before - self.segments.len()
    }
}

impl fmt::Display for RuleString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.version)?;
        for s in &self.segments {
            f.write_str("|")?;
            match s {
                Segment::Token { name, value } => write!(f, "{name}={value}")?,
                Segment::Bare(b) => f.write_str(b)?,
            }
        }
        if self.terminated {
            f.write_str("|")?;
        }
        Ok(())
    }
}

/// The `Security` flags of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `Authenticate`: only IPsec-authenticated traffic.
    Authenticate,
    /// `AuthenticateEncrypt`.
    AuthenticateEncrypt,
    /// `An-NoEncap` (Security2_9).
    AuthNoEncap,
    /// `AnE-Nego` (Security2).
    AuthEncNegotiate,
}

/// Edge traversal deferral.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defer {
    /// `Defer=App`.
    App,
    /// `Defer=User`.
    User,
}

/// A firewall rule, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The rule ID (the registry value name).
    pub id: String,
    /// The string as written, for lossless edits.
    pub raw: RuleString,
    /// Schema version (`v2.10` → (2, 10)), when it parses.
    pub version: Option<(u8, u8)>,
    /// `Action`.
    pub action: Option<Action>,
    /// `Active` (absent = FALSE).
    pub active: bool,
    /// `Dir`.
    pub direction: Option<Direction>,
    /// `Profile` tokens (none = all profiles).
    pub profiles: ProfileSet,
    /// `Protocol` (absent = any).
    pub protocol: Option<u8>,
    /// Local ports (`LPort`, `LPort2_10`, `LPort2_20`).
    pub local_ports: PortSet,
    /// Remote ports (`RPort`, `RPort2_10`).
    pub remote_ports: PortSet,
    /// Local addresses (`LA4`, `LA6`).
    pub local_addresses: AddressSet,
    /// Remote addresses (`RA4`, `RA6`, `RA42`, `RA62`).
    pub remote_addresses: AddressSet,
    /// `App`.
    pub app: Option<String>,
    /// `Svc`.
    pub service: Option<String>,
    /// `Name` (often an indirect string such as `@FirewallAPI.dll,-28775`).
    pub name: Option<String>,
    /// `Desc`.
    pub description: Option<String>,
    /// `EmbedCtxt`: the rule's group.
    pub group: Option<String>,
    /// `Security`, `Security2_9`, `Security2`.
    pub security: Vec<Security>,
    /// `Edge`.
    pub edge: bool,
    /// `Defer`.
    pub defer: Option<Defer>,
    /// `IF` interface GUIDs.
    pub interfaces: Vec<String>,
    /// `IFType`.
    pub interface_types: Vec<IfType>,
    /// `ICMP4`/`ICMP6` entries as written.
    pub icmp: Vec<String>,
    /// `Platform` entries (`platform:major:minor`) and whether the last is `GTEQ`.
    pub platform: Vec<(u32, u32, u32)>,
    /// `Platform2=GTEQ`.
    pub platform_gteq: bool,
    /// `RMAuth` (remote machine authorization SDDL).
    pub rm_auth: Option<String>,
    /// `RUAuth`.
    pub ru_auth: Option<String>,
    /// `LUAuth` / `LUAuth2_24`.
    pub lu_auth: Option<String>,
    /// `LUOwn`: the owner user SID.
    pub lu_own: Option<String>,
    /// `AppPkgId`: the AppContainer package SID.
    pub app_pkg_id: Option<String>,
    /// `SkipVer`.
    pub skip_ver: Option<(u8, u8)>,
    /// Tokens this model does not interpret (name, value), kept for reporting.
    pub unknown: Vec<(String, String)>,
    /// What could not be parsed.
    pub problems: Vec<String>,
}

/// Tokens that carry no matching semantics for an inbound flow, or that this model does not
/// need to interpret (they are still kept in [`Rule::raw`]).
const INERT: &[&str] = &[
    "LSM",
    "LOM",
    "PCross",
    "AuthByPassOut",
    "TTK",
    "TTK2_22",
    "TTK2_27",
    "TTK2_28",
    "NNm",
    "SecurityRealmId",
    "Platform2",
];

fn parse_bool(v: &str) -> Option<bool> {
    if v.eq_ignore_ascii_case("TRUE") {
        Some(true)
    } else if v.eq_ignore_ascii_case("FALSE") {
        Some(false)
    } else {
        None
    }
}

/// `v2.10` → (2, 10).
pub fn parse_version(v: &str) -> Option<(u8, u8)> {
    let body = v.strip_prefix('v').or_else(|| v.strip_prefix('V'))?;
    let (a, b) = body.split_once('.')?;
    if a.is_empty() || b.is_empty() || a.len() > 3 || b.len() > 3 {
        return None;
    }
    Some((a.parse().ok()?, b.parse().ok()?))
}

impl Rule {
    /// Parses a rule string. Never fails; problems are recorded on the rule.
    pub fn parse(id: &str, s: &str) -> Rule {
        let raw = RuleString::parse(s);
        let mut r = Rule {
            id: id.to_string(),
            version: parse_version(&raw.version),
            raw: raw.clone(),
            action: None,
            active: false,
            direction: None,
            profiles: ProfileSet::ALL,
            protocol: None,
            local_ports: PortSet::default(),
            remote_ports: PortSet::default(),
            local_addresses: AddressSet::default(),
            remote_addresses: AddressSet::default(),
            app: None,
            service: None,
            name: None,
            description: None,
            group: None,
            security: Vec::new(),
            edge: false,
            defer: None,
            interfaces: Vec::new(),
            interface_types: Vec::new(),
            icmp: Vec::new(),
            platform: Vec::new(),
            platform_gteq: false,
            rm_auth: None,
            ru_auth: None,
            lu_auth: None,
            lu_own: None,
            app_pkg_id: None,
            skip_ver: None,
            unknown: Vec::new(),
            problems: Vec::new(),
        };
        if r.version.is_none() {
            r.problems.push(format!("bad version {:?}", raw.version));
        }
        if !raw.terminated {
            r.problems.push("the string does not end with '|'".into());
        }
        let mut profiles = ProfileSet::EMPTY;
        let mut saw_profile = false;
        let mut once: Vec<String> = Vec::new();
        for seg in &raw.segments {
            let (name, value) = match seg {
                Segment::Token { name, value } => (name.as_str(), value.as_str()),
                Segment::Bare(b) => {
                    r.problems.push(format!("segment without '=': {b:?}"));
                    continue;
                }
            };
            let key = name.to_ascii_lowercase();
            let repeatable = matches!(
                key.as_str(),
                "profile"
                    | "lport"
                    | "rport"
                    | "lport2_10"
                    | "rport2_10"
                    | "lport2_20"
                    | "la4"
                    | "la6"
                    | "ra4"
                    | "ra6"
                    | "ra42"
                    | "ra62"
                    | "if"
                    | "iftype"
                    | "icmp4"
                    | "icmp6"
                    | "platform"
                    | "ttk"
                    | "ttk2_22"
                    | "ttk2_27"
                    | "ttk2_28"
            );
            if !repeatable {
                if once.contains(&key) {
                    r.problems.push(format!("{name} appears more than once"));
                }
                once.push(key.clone());
            }
            let mut bad = |what: &str| r.problems.push(format!("{name}={value:?}: {what}"));
            match key.as_str() {
                "action" => match Action::parse(value) {
                    Some(a) => r.action = Some(a),
                    None => bad("not Allow, Block or ByPass"),
                },
                "active" => match parse_bool(value) {
                    Some(b) => r.active = b,
                    None => bad("not TRUE or FALSE"),
                },
                "dir" => match Direction::parse(value) {
                    Some(d) => r.direction = Some(d),
                    None => bad("not In or Out"),
                },
                "profile" => {
                    saw_profile = true;
                    match Profile::parse(value) {
                        Some(p) => profiles.insert(p),
                        None => bad("not Domain, Private or Public"),
                    }
                }
                "protocol" => match value.parse::<u16>() {
                    Ok(p) if p <= 255 => r.protocol = Some(p as u8),
                    Ok(256) => {}
                    _ => bad("not a protocol number 0-255"),
                },
                "lport" | "lport2_10" | "lport2_20" => match PortItem::parse(value) {
                    Some(p) => r.local_ports.items.push(p),
                    None => bad("not a port, range or keyword"),
                },
                "rport" | "rport2_10" => match PortItem::parse(value) {
                    Some(p) => r.remote_ports.items.push(p),
                    None => bad("not a port, range or keyword"),
                },
                "la4" | "la6" => match Address::parse(value) {
                    Some(a) => r.local_addresses.items.push(a),
                    None => bad("not an address"),
                },
                "ra4" | "ra6" | "ra42" | "ra62" => match Address::parse(value) {
                    Some(a) => r.remote_addresses.items.push(a),
                    None => bad("not an address or keyword"),
                },
                "app" => r.app = Some(value.to_string()),
                "svc" => r.service = Some(value.to_string()),
                "name" => r.name = Some(value.to_string()),
                "desc" => r.description = Some(value.to_string()),
                "embedctxt" => r.group = Some(value.to_string()),
                "security" | "security2_9" | "security2" => {
                    match value.to_ascii_lowercase().as_str() {
                        "authenticate" => r.security.push(Security::Authenticate),
                        "authenticateencrypt" => r.security.push(Security::AuthenticateEncrypt),
                        "an-noencap" => r.security.push(Security::AuthNoEncap),
                        "ane-nego" => r.security.push(Security::AuthEncNegotiate),
                        _ => bad("unknown security flag"),
                    }
                }
                "edge" => match parse_bool(value) {
                    Some(b) => r.edge = b,
                    None => bad("not TRUE or FALSE"),
                },
                "defer" => match value.to_ascii_lowercase().as_str() {
                    "app" => r.defer = Some(Defer::App),
                    "user" => r.defer = Some(Defer::User),
                    _ => bad("not App or User"),
                },
                "if" => r.interfaces.push(value.to_string()),
                "iftype" => match IfType::parse(value) {
                    Some(t) => r.interface_types.push(t),
                    None => bad("not Lan, Wireless or RemoteAccess"),
                },
                "icmp4" | "icmp6" => r.icmp.push(value.to_string()),
                "platform" => {
                    let parts: Vec<Option<u32>> =
                        value.split(':').map(|p| p.parse().ok()).collect();
                    match parts[..] {
                        [Some(p), Some(a), Some(b)] => r.platform.push((p, a, b)),
                        _ => bad("not platform:major:minor"),
                    }
                }
                "platform2" => r.platform_gteq = value.eq_ignore_ascii_case("GTEQ"),
                "rmauth" => r.rm_auth = Some(value.to_string()),
                "ruauth" => r.ru_auth = Some(value.to_string()),
                "luauth" | "luauth2_24" => r.lu_auth = Some(value.to_string()),
                "luown" => r.lu_own = Some(value.to_string()),
                "apppkgid" => r.app_pkg_id = Some(value.to_string()),
                "skipver" => match parse_version(value) {
                    Some(v) => r.skip_ver = Some(v),
                    None => bad("not a version"),
                },
                _ if INERT.iter().any(|t| t.eq_ignore_ascii_case(name)) => {}
                _ => r.unknown.push((name.to_string(), value.to_string())),
            }
        }
        if saw_profile {
            r.profiles = profiles;
        }
        // Structural constraints that decide whether mpssvc would accept the rule.
        let ported = !r.local_ports.items.is_empty() || !r.remote_ports.items.is_empty();
        if ported && !matches!(r.protocol, Some(6) | Some(17)) {
            r.problems
                .push("ports are only allowed with Protocol=6 (TCP) or 17 (UDP)".into());
        }
        if r.action == Some(Action::Bypass)
            && (r.direction != Some(Direction::In) || r.security.is_empty())
        {
            r.problems
                .push("ByPass needs Dir=In and an authentication flag".into());
        }
        if r.action.is_none() {
            r.problems.push("no Action".into());
        }
        if r.direction.is_none() {
            r.problems.push("no Dir".into());
        }
        r
    }

    /// The name reports show: the display name (English text of an indirect string when
    /// known), else the ID.
    pub fn display_name(&self) -> String {
        self.name
            .as_deref()
            .map_or_else(|| self.id.clone(), crate::names::display)
    }

    /// True when the rule parsed without problems (mpssvc would load it).
    pub fn is_well_formed(&self) -> bool {
        self.problems.is_empty()
    }

    /// The rule string now (after edits made through [`Rule::raw`]).
    pub fn to_rule_string(&self) -> String {
        self.raw.to_string()
    }
}

/// Reads an IPv4 address, for ranges and subnets.
pub(crate) fn v4(s: &str) -> Option<Ipv4Addr> {
    s.parse().ok()
}

/// Reads an IPv6 address.
pub(crate) fn v6(s: &str) -> Option<Ipv6Addr> {
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_strings_round_trip_exactly() {
        for s in [
            "v2.10|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=3389|",
            "v2.10|Action=Allow",
            "v2.10||Action=Allow|weird|Name=a=b|",
            "",
            "|",
            "v2.33|Desc=|EmbedCtxt=|",
            "garbage",
        ] {
            assert_eq!(RuleString::parse(s).to_string(), s, "{s:?}");
        }
    }

    #[test]
    fn set_changes_only_one_segment() {
        let s = "v2.22|Action=Allow|Active=FALSE|Dir=In|Protocol=6|LPort=3389|Name=x|";
        let mut r = RuleString::parse(s);
        assert!(r.set("active", "TRUE"));
        assert_eq!(r.to_string(), s.replace("Active=FALSE", "Active=TRUE"));
        assert!(!r.set("Active", "TRUE"));
        r.insert_after("Protocol", "Profile", "Public");
        assert_eq!(
            r.to_string(),
            "v2.22|Action=Allow|Active=TRUE|Dir=In|Protocol=6|Profile=Public|LPort=3389|Name=x|"
        );
    }

    #[test]
    fn parses_the_spec_example() {
        let s = "v2.10|Action=Allow|Active=TRUE|Dir=In|Protocol=6|Profile=Public|LPort=RPC|RPort=49000|LA4=192.168.1.0/255.255.255.0|LA4=192.168.0.0/255.255.255.0|RA4=LocalSubnet|RA6=LocalSubnet|App=c:\\path\\foo.exe|Name=Firewall Rule Test|Security=Authenticate|Security2_9=An-NoEncap|";
        let r = Rule::parse("test", s);
        assert!(r.is_well_formed(), "{:?}", r.problems);
        assert_eq!(r.version, Some((2, 10)));
        assert_eq!(r.action, Some(Action::Allow));
        assert!(r.active);
        assert_eq!(r.profiles, ProfileSet::of(&[Profile::Public]));
        assert_eq!(r.local_addresses.items.len(), 2);
        assert_eq!(r.remote_addresses.items.len(), 2);
        assert_eq!(
            r.security,
            vec![Security::Authenticate, Security::AuthNoEncap]
        );
        assert_eq!(r.raw.to_string(), s);
    }

    #[test]
    fn defaults_and_problems() {
        let r = Rule::parse("x", "v2.10|Action=Block|Dir=In|");
        assert!(!r.active, "Active defaults to FALSE");
        assert_eq!(r.profiles, ProfileSet::ALL);
        assert_eq!(r.protocol, None);
        let r = Rule::parse("x", "v2.10|Action=Allow|Active=yes|Dir=In|LPort=80|Junk|");
        assert_eq!(r.problems.len(), 3, "{:?}", r.problems);
        let r = Rule::parse("x", "v2.30|Action=Allow|Active=true|Dir=in|NewToken=1|");
        assert!(r.active);
        assert_eq!(r.unknown, vec![("NewToken".to_string(), "1".to_string())]);
    }
}
