//! `netsh advfirewall ...` command lines, parsed.
//!
//! The grammar is netsh's: a context path (`firewall show rule`, `set allprofiles`), then
//! `key=value` arguments in any order (keys case-insensitive) and bare flags (`verbose`,
//! `new`). The shell has already removed the quotes, so `group="Remote Desktop"` arrives as
//! `group=Remote Desktop`.

use guestwall_firewall::{Direction, Profile, ProfileSet};

/// A parse error, worded for the person who typed the command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

/// Which rules a command is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// `name=` (`None` with `all`).
    pub name: Option<String>,
    /// `name=all` was given.
    pub all: bool,
    /// `group=`.
    pub group: Option<String>,
    /// `dir=`.
    pub dir: Option<Direction>,
    /// `profile=` (rules that apply to any of these).
    pub profile: Option<ProfileSet>,
    /// `protocol=` as typed.
    pub protocol: Option<String>,
    /// `localport=` as typed.
    pub local_port: Option<String>,
    /// `remoteport=` as typed.
    pub remote_port: Option<String>,
    /// `program=`.
    pub program: Option<String>,
    /// `service=`.
    pub service: Option<String>,
}

/// The rule fields of `add rule` and of `set rule ... new`: each is `None` when not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSpec {
    /// `name=`.
    pub name: Option<String>,
    /// `description=`.
    pub description: Option<String>,
    /// `enable=yes|no`.
    pub enable: Option<bool>,
    /// `dir=in|out`.
    pub dir: Option<Direction>,
    /// `action=allow|block|bypass`, as the rule-string value.
    pub action: Option<&'static str>,
    /// `profile=`: `None` inside means `any`.
    pub profile: Option<Option<ProfileSet>>,
    /// `protocol=` as typed.
    pub protocol: Option<String>,
    /// `localport=` as typed.
    pub local_port: Option<String>,
    /// `remoteport=` as typed.
    pub remote_port: Option<String>,
    /// `localip=` as typed.
    pub local_ip: Option<String>,
    /// `remoteip=` as typed.
    pub remote_ip: Option<String>,
    /// `program=`.
    pub program: Option<String>,
    /// `service=`.
    pub service: Option<String>,
    /// `edge=yes|no|deferapp|deferuser`.
    pub edge: Option<String>,
    /// `interfacetype=any|wireless|lan|ras`.
    pub interface_type: Option<String>,
}

impl RuleSpec {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        *self == RuleSpec::default()
    }
}

/// The profiles a profile command addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileSel {
    /// `allprofiles`.
    All,
    /// `currentprofile`.
    Current,
    /// `domainprofile`, `privateprofile`, `publicprofile`.
    One(Profile),
}

/// The inbound part of `firewallpolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// `blockinbound`: block what no rule allows.
    Block,
    /// `blockinboundalways`: block everything, even what a rule allows.
    BlockAlways,
    /// `allowinbound`: allow everything no rule blocks.
    Allow,
    /// `notconfigured`.
    NotConfigured,
}

/// The outbound part of `firewallpolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbound {
    /// `allowoutbound`.
    Allow,
    /// `blockoutbound`.
    Block,
    /// `notconfigured`.
    NotConfigured,
}

/// A profile setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileSetting {
    /// `state on|off|notconfigured` (`None`: notconfigured).
    State(Option<bool>),
    /// `firewallpolicy <inbound>,<outbound>`.
    FirewallPolicy(Inbound, Outbound),
}

/// A parsed `netsh advfirewall` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `firewall show rule name=... [dir=] [profile=] [verbose]`.
    ShowRule {
        /// Which rules.
        filter: Filter,
        /// `verbose`.
        verbose: bool,
    },
    /// `firewall set rule <filter> new <fields>`.
    SetRule {
        /// Which rules.
        filter: Filter,
        /// What to change.
        new: RuleSpec,
    },
    /// `firewall add rule name= dir= action= ...`.
    AddRule(RuleSpec),
    /// `firewall delete rule name=... [filters]`.
    DeleteRule(Filter),
    /// `show allprofiles|currentprofile|<x>profile`.
    ShowProfiles(ProfileSel),
    /// `set allprofiles|currentprofile|<x>profile <setting>`.
    SetProfiles(ProfileSel, ProfileSetting),
}

fn yes_no(key: &str, v: &str) -> Result<bool, UsageError> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" => Ok(true),
        "no" | "n" | "false" => Ok(false),
        _ => Err(usage(format!("{key}={v}: expected yes or no"))),
    }
}

fn direction(v: &str) -> Result<Direction, UsageError> {
    match v.to_ascii_lowercase().as_str() {
        "in" => Ok(Direction::In),
        "out" => Ok(Direction::Out),
        _ => Err(usage(format!("dir={v}: expected in or out"))),
    }
}

/// `domain,private` / `any` → `Some(set)` / `None`.
pub fn profiles(v: &str) -> Result<Option<ProfileSet>, UsageError> {
    let mut set = ProfileSet::EMPTY;
    for p in v.split(',').map(str::trim) {
        match p.to_ascii_lowercase().as_str() {
            "any" | "all" => return Ok(None),
            "domain" => set.insert(Profile::Domain),
            "private" => set.insert(Profile::Private),
            "public" => set.insert(Profile::Public),
            _ => {
                return Err(usage(format!(
                    "profile={v}: expected public, private, domain or any"
                )))
            }
        }
    }
    Ok(Some(set))
}

fn action(v: &str) -> Result<&'static str, UsageError> {
    match v.to_ascii_lowercase().as_str() {
        "allow" => Ok("Allow"),
        "block" => Ok("Block"),
        "bypass" => Ok("ByPass"),
        _ => Err(usage(format!(
            "action={v}: expected allow, block or bypass"
        ))),
    }
}

/// `key=value` arguments; a key given twice is an error.
fn pairs(args: &[String]) -> Result<Vec<(String, String)>, UsageError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for a in args {
        let Some((k, v)) = a.split_once('=') else {
            return Err(usage(format!(
                "unexpected argument {a:?}: expected key=value"
            )));
        };
        let k = k.trim().to_ascii_lowercase();
        if out.iter().any(|(x, _)| *x == k) {
            return Err(usage(format!("{k}= is given twice")));
        }
        out.push((k, v.trim().to_string()));
    }
    Ok(out)
}

fn filter(args: &[String], allowed_extra: &[&str]) -> Result<Filter, UsageError> {
    let mut f = Filter::default();
    for (k, v) in pairs(args)? {
        match k.as_str() {
            "name" if v.eq_ignore_ascii_case("all") => f.all = true,
            "name" => f.name = Some(v),
            "group" => f.group = Some(v),
            "dir" => f.dir = Some(direction(&v)?),
            "profile" => f.profile = profiles(&v)?,
            "protocol" => f.protocol = Some(v),
            "localport" => f.local_port = Some(v),
            "remoteport" => f.remote_port = Some(v),
            "program" => f.program = Some(v),
            "service" => f.service = Some(v),
            _ if allowed_extra.contains(&k.as_str()) => {}
            _ => return Err(usage(format!("{k}= is not a filter this command takes"))),
        }
    }
    Ok(f)
}

fn spec(args: &[String]) -> Result<RuleSpec, UsageError> {
    let mut s = RuleSpec::default();
    for (k, v) in pairs(args)? {
        match k.as_str() {
            "name" => s.name = Some(v),
            "description" => s.description = Some(v),
            "enable" => s.enable = Some(yes_no(&k, &v)?),
            "dir" => s.dir = Some(direction(&v)?),
            "action" => s.action = Some(action(&v)?),
            "profile" => s.profile = Some(profiles(&v)?),
            "protocol" => s.protocol = Some(v),
            "localport" => s.local_port = Some(v),
            "remoteport" => s.remote_port = Some(v),
            "localip" => s.local_ip = Some(v),
            "remoteip" => s.remote_ip = Some(v),
            "program" => s.program = Some(v),
            "service" => s.service = Some(v),
            "edge" => s.edge = Some(v),
            "interfacetype" => s.interface_type = Some(v),
            _ => {
                return Err(usage(format!(
                    "{k}= is not supported offline (supported: name, description, enable, dir, action, profile, protocol, localport, remoteport, localip, remoteip, program, service, edge, interfacetype)"
                )))
            }
        }
    }
    Ok(s)
}

fn profile_sel(word: &str) -> Option<ProfileSel> {
    Some(match word.to_ascii_lowercase().as_str() {
        "allprofiles" => ProfileSel::All,
        "currentprofile" => ProfileSel::Current,
        "domainprofile" => ProfileSel::One(Profile::Domain),
        "privateprofile" => ProfileSel::One(Profile::Private),
        "publicprofile" => ProfileSel::One(Profile::Public),
        _ => return None,
    })
}

/// Parses the words after `netsh advfirewall` (a leading `netsh` and `advfirewall` are
/// skipped when present).
pub fn parse(words: &[String]) -> Result<Command, UsageError> {
    let mut w: &[String] = words;
    if w.first().is_some_and(|x| x.eq_ignore_ascii_case("netsh")) {
        w = &w[1..];
    }
    if w.first()
        .is_some_and(|x| x.eq_ignore_ascii_case("advfirewall"))
    {
        w = &w[1..];
    }
    let lower: Vec<String> = w.iter().take(3).map(|x| x.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    match lower.as_slice() {
        ["firewall", "show", "rule", ..] => {
            let rest = &w[3..];
            let verbose = rest.iter().any(|x| x.eq_ignore_ascii_case("verbose"));
            let args: Vec<String> = rest
                .iter()
                .filter(|x| !x.eq_ignore_ascii_case("verbose"))
                .cloned()
                .collect();
            let f = filter(&args, &["type"])?;
            if f.name.is_none() && !f.all {
                return Err(usage("show rule needs name=<rule name> or name=all"));
            }
            Ok(Command::ShowRule { filter: f, verbose })
        }
        ["firewall", "set", "rule", ..] => {
            let rest = &w[3..];
            let Some(at) = rest.iter().position(|x| x.eq_ignore_ascii_case("new")) else {
                return Err(usage("set rule needs `new` followed by the values to set"));
            };
            let f = filter(&rest[..at], &[])?;
            if f.name.is_none() && f.group.is_none() && !f.all {
                return Err(usage("set rule needs group=<group> or name=<rule name>"));
            }
            let new = spec(&rest[at + 1..])?;
            if new.is_empty() {
                return Err(usage("set rule ... new: nothing to set"));
            }
            Ok(Command::SetRule { filter: f, new })
        }
        ["firewall", "add", "rule", ..] => {
            let s = spec(&w[3..])?;
            if s.name.is_none() || s.dir.is_none() || s.action.is_none() {
                return Err(usage("add rule needs name=, dir= and action="));
            }
            if s.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case("all")) {
                return Err(usage("a rule cannot be called \"all\""));
            }
            Ok(Command::AddRule(s))
        }
        ["firewall", "delete", "rule", ..] => {
            let f = filter(&w[3..], &[])?;
            if f.name.is_none() && !f.all {
                return Err(usage("delete rule needs name=<rule name> or name=all"));
            }
            Ok(Command::DeleteRule(f))
        }
        ["show", p, ..] if w.len() == 2 => match profile_sel(p) {
            Some(sel) => Ok(Command::ShowProfiles(sel)),
            None => Err(usage(format!("show {p}: expected allprofiles, currentprofile, domainprofile, privateprofile or publicprofile"))),
        },
        ["set", p, setting] => {
            let Some(sel) = profile_sel(p) else {
                return Err(usage(format!("set {p}: expected allprofiles, currentprofile, domainprofile, privateprofile or publicprofile")));
            };
            let value = w.get(3).map(|s| s.to_ascii_lowercase());
            if w.len() != 4 {
                return Err(usage(format!("set {p} {setting} takes one value")));
            }
            let value = value.unwrap_or_default();
            let setting = match *setting {
                "state" => ProfileSetting::State(match value.as_str() {
                    "on" => Some(true),
                    "off" => Some(false),
                    "notconfigured" => None,
                    _ => return Err(usage(format!("state {value}: expected on, off or notconfigured"))),
                }),
                "firewallpolicy" => {
                    let (i, o) = value.split_once(',').ok_or_else(|| {
                        usage("firewallpolicy takes <inbound>,<outbound>, e.g. blockinbound,allowoutbound")
                    })?;
                    let inbound = match i.trim() {
                        "blockinbound" => Inbound::Block,
                        "blockinboundalways" => Inbound::BlockAlways,
                        "allowinbound" => Inbound::Allow,
                        "notconfigured" => Inbound::NotConfigured,
                        x => return Err(usage(format!("{x}: expected blockinbound, blockinboundalways, allowinbound or notconfigured"))),
                    };
                    let outbound = match o.trim() {
                        "allowoutbound" => Outbound::Allow,
                        "blockoutbound" => Outbound::Block,
                        "notconfigured" => Outbound::NotConfigured,
                        x => return Err(usage(format!("{x}: expected allowoutbound, blockoutbound or notconfigured"))),
                    };
                    ProfileSetting::FirewallPolicy(inbound, outbound)
                }
                other => {
                    return Err(usage(format!(
                        "set {p} {other}: only `state` and `firewallpolicy` are supported offline"
                    )))
                }
            };
            Ok(Command::SetProfiles(sel, setting))
        }
        _ => Err(usage(format!(
            "unsupported command `{}`; supported: firewall show|set|add|delete rule, show <profiles>, set <profiles> state|firewallpolicy",
            w.join(" ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[&str]) -> Result<Command, UsageError> {
        parse(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn the_articles_commands_parse() {
        assert_eq!(
            p(&[
                "advfirewall",
                "firewall",
                "set",
                "rule",
                "group=Remote Desktop",
                "new",
                "enable=yes"
            ])
            .unwrap(),
            Command::SetRule {
                filter: Filter {
                    group: Some("Remote Desktop".into()),
                    ..Filter::default()
                },
                new: RuleSpec {
                    enable: Some(true),
                    ..RuleSpec::default()
                }
            }
        );
        assert_eq!(
            p(&["firewall", "show", "rule", "name=all", "dir=in", "verbose"]).unwrap(),
            Command::ShowRule {
                filter: Filter {
                    all: true,
                    dir: Some(Direction::In),
                    ..Filter::default()
                },
                verbose: true
            }
        );
        assert_eq!(
            p(&[
                "set",
                "allprofiles",
                "firewallpolicy",
                "blockinbound,allowoutbound"
            ])
            .unwrap(),
            Command::SetProfiles(
                ProfileSel::All,
                ProfileSetting::FirewallPolicy(Inbound::Block, Outbound::Allow)
            )
        );
        assert_eq!(
            p(&["SET", "PublicProfile", "State", "OFF"]).unwrap(),
            Command::SetProfiles(
                ProfileSel::One(Profile::Public),
                ProfileSetting::State(Some(false))
            )
        );
    }

    #[test]
    fn mistakes_are_reported() {
        for bad in [
            &["firewall", "set", "rule", "group=x", "enable=yes"][..],
            &["firewall", "set", "rule", "new", "enable=yes"],
            &["firewall", "add", "rule", "name=x", "dir=in"],
            &["firewall", "show", "rule", "dir=in"],
            &["firewall", "show", "rule", "name=a", "name=b"],
            &["set", "allprofiles", "firewallpolicy", "blockinbound"],
            &["set", "allprofiles", "logging", "x"],
            &["show", "everything"],
            &["firewall", "set", "rule", "name=x", "new", "enable=maybe"],
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
    }
}
