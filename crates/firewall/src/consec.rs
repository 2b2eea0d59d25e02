//! Connection security (IPsec) rules ([MS-GPFAS] 2.2.6.2). Only what decides whether a rule
//! demands IPsec for an inbound flow is typed; the string is kept whole.

use crate::rule::{RuleString, Segment};
use crate::values::{PortItem, PortSet, Profile, ProfileSet};

/// What a connection security rule does with matching traffic ([MS-FASP] 2.2.52).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConSecAction {
    /// Require inbound IPsec (`SecureServer`).
    SecureServer,
    /// Request IPsec, fall back to clear (`Boundary`).
    Boundary,
    /// Require IPsec (`Secure`).
    Secure,
    /// Exempt (`DoNotSecure`).
    DoNotSecure,
}

/// A connection security rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConSecRule {
    /// Rule ID.
    pub id: String,
    /// The string as written.
    pub raw: RuleString,
    /// `Action`.
    pub action: Option<ConSecAction>,
    /// `Active`.
    pub active: bool,
    /// `Profile` tokens (none = all).
    pub profiles: ProfileSet,
    /// `Protocol` (absent = any).
    pub protocol: Option<u8>,
    /// `EP1Port` / `EP2Port` ports, merged: a rule covers a port on either end.
    pub ports: PortSet,
    /// `Name`.
    pub name: Option<String>,
}

impl ConSecRule {
    /// Parses a connection security rule string.
    pub fn parse(id: &str, s: &str) -> ConSecRule {
        let raw = RuleString::parse(s);
        let mut profiles = ProfileSet::EMPTY;
        let mut saw_profile = false;
        let mut r = ConSecRule {
            id: id.to_string(),
            raw: raw.clone(),
            action: None,
            active: false,
            profiles: ProfileSet::ALL,
            protocol: None,
            ports: PortSet::default(),
            name: None,
        };
        for seg in &raw.segments {
            let Segment::Token { name, value } = seg else {
                continue;
            };
            match name.to_ascii_lowercase().as_str() {
                "action" => {
                    r.action = match value.to_ascii_lowercase().as_str() {
                        "secureserver" => Some(ConSecAction::SecureServer),
                        "boundary" => Some(ConSecAction::Boundary),
                        "secure" => Some(ConSecAction::Secure),
                        "donotsecure" => Some(ConSecAction::DoNotSecure),
                        _ => None,
                    }
                }
                "active" => r.active = value.eq_ignore_ascii_case("TRUE"),
                "profile" => {
                    saw_profile = true;
                    if let Some(p) = Profile::parse(value) {
                        profiles.insert(p);
                    }
                }
                "protocol" => r.protocol = value.parse().ok(),
                "ep1port" | "ep2port" => {
                    if let Some(p) = PortItem::parse(value) {
                        r.ports.items.push(p);
                    }
                }
                "name" => r.name = Some(value.clone()),
                _ => {}
            }
        }
        if saw_profile {
            r.profiles = profiles;
        }
        r
    }

    /// True when the rule is active, requires IPsec, and covers `protocol`/`port`.
    pub fn requires_ipsec_for(&self, protocol: u8, port: u16) -> bool {
        self.active
            && matches!(
                self.action,
                Some(ConSecAction::Secure | ConSecAction::SecureServer)
            )
            && self.protocol.is_none_or(|p| p == protocol)
            && self.ports.covers(port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_rules_on_the_rdp_port() {
        let r = ConSecRule::parse(
            "x",
            "v2.10|Action=SecureServer|Active=TRUE|Protocol=6|EP1Port=3389|Name=Require IPsec|",
        );
        assert!(r.requires_ipsec_for(6, 3389));
        assert!(!r.requires_ipsec_for(6, 443));
        let r = ConSecRule::parse("x", "v2.10|Action=Boundary|Active=TRUE|");
        assert!(!r.requires_ipsec_for(6, 3389));
        let r = ConSecRule::parse("x", "v2.10|Action=Secure|Active=FALSE|");
        assert!(!r.requires_ipsec_for(6, 3389));
        let r = ConSecRule::parse("x", "v2.10|Action=Secure|Active=TRUE|Profile=Public|");
        assert!(r.requires_ipsec_for(6, 3389) && !r.profiles.contains(Profile::Domain));
    }
}
