//! The value types of rule fields: actions, directions, profiles, ports and addresses.

use std::fmt;
use std::net::IpAddr;

use crate::rule::{v4, v6};

/// A rule's action ([MS-FASP] FW_RULE_ACTION). Precedence: ByPass > Block > Allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Allow matching traffic.
    Allow,
    /// Block matching traffic.
    Block,
    /// Allow authenticated traffic even over block rules.
    Bypass,
}

impl Action {
    /// `Allow` / `Block` / `ByPass`, any case.
    pub fn parse(s: &str) -> Option<Action> {
        match s.to_ascii_lowercase().as_str() {
            "allow" => Some(Action::Allow),
            "block" => Some(Action::Block),
            "bypass" => Some(Action::Bypass),
            _ => None,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Allow => "Allow",
            Action::Block => "Block",
            Action::Bypass => "Bypass",
        })
    }
}

/// Traffic direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Inbound.
    In,
    /// Outbound.
    Out,
}

impl Direction {
    /// `In` / `Out`, any case.
    pub fn parse(s: &str) -> Option<Direction> {
        match s.to_ascii_lowercase().as_str() {
            "in" => Some(Direction::In),
            "out" => Some(Direction::Out),
            _ => None,
        }
    }
}

/// A firewall profile. The local store calls Private "StandardProfile".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Profile {
    /// Domain (bit 1).
    Domain,
    /// Private (bit 2), "Standard" in the local store.
    Private,
    /// Public (bit 4).
    Public,
}

impl Profile {
    /// All three, in netsh's order.
    pub const ALL: [Profile; 3] = [Profile::Domain, Profile::Private, Profile::Public];

    /// `Domain` / `Private` / `Public` (any case).
    pub fn parse(s: &str) -> Option<Profile> {
        match s.to_ascii_lowercase().as_str() {
            "domain" => Some(Profile::Domain),
            "private" | "standard" => Some(Profile::Private),
            "public" => Some(Profile::Public),
            _ => None,
        }
    }

    /// The profile's bit in a profile mask.
    pub fn bit(self) -> u8 {
        match self {
            Profile::Domain => 1,
            Profile::Private => 2,
            Profile::Public => 4,
        }
    }

    /// The profile's key in the local store (`DomainProfile`, `StandardProfile`,
    /// `PublicProfile`): the local store calls Private "StandardProfile".
    pub fn local_key_name(self) -> &'static str {
        match self {
            Profile::Domain => "DomainProfile",
            Profile::Private => "StandardProfile",
            Profile::Public => "PublicProfile",
        }
    }

    /// The profile's key in the Group Policy store (`DomainProfile`, `PrivateProfile`,
    /// `PublicProfile`).
    pub fn policy_key_name(self) -> &'static str {
        match self {
            Profile::Domain => "DomainProfile",
            Profile::Private => "PrivateProfile",
            Profile::Public => "PublicProfile",
        }
    }

    /// Lower-case name (`domain`, `private`, `public`), as used in JSON.
    pub fn key(self) -> &'static str {
        match self {
            Profile::Domain => "domain",
            Profile::Private => "private",
            Profile::Public => "public",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Domain => "Domain",
            Profile::Private => "Private",
            Profile::Public => "Public",
        })
    }
}

/// A set of profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProfileSet(u8);

impl ProfileSet {
    /// No profile.
    pub const EMPTY: ProfileSet = ProfileSet(0);
    /// All three profiles (a rule without `Profile` tokens).
    pub const ALL: ProfileSet = ProfileSet(7);

    /// The set of the given profiles.
    pub fn of(ps: &[Profile]) -> ProfileSet {
        ProfileSet(ps.iter().fold(0, |m, p| m | p.bit()))
    }

    /// Adds a profile.
    pub fn insert(&mut self, p: Profile) {
        self.0 |= p.bit();
    }

    /// True when `p` is in the set.
    pub fn contains(self, p: Profile) -> bool {
        self.0 & p.bit() != 0
    }

    /// True for all three.
    pub fn is_all(self) -> bool {
        self.0 & 7 == 7
    }

    /// The profiles in the set, in order.
    pub fn iter(self) -> impl Iterator<Item = Profile> {
        Profile::ALL.into_iter().filter(move |p| self.contains(*p))
    }
}

impl fmt::Display for ProfileSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_all() {
            return f.write_str("Domain,Private,Public");
        }
        let names: Vec<String> = self.iter().map(|p| p.to_string()).collect();
        f.write_str(&names.join(","))
    }
}

/// An interface type (`IFType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfType {
    /// Wired LAN (every Azure, Hyper-V and VMware NIC).
    Lan,
    /// Wireless.
    Wireless,
    /// Remote access (VPN, dial-up).
    RemoteAccess,
}

impl IfType {
    /// Parses `Lan` / `Wireless` / `RemoteAccess` (any case).
    pub fn parse(s: &str) -> Option<IfType> {
        match s.to_ascii_lowercase().as_str() {
            "lan" => Some(IfType::Lan),
            "wireless" => Some(IfType::Wireless),
            "remoteaccess" | "ras" => Some(IfType::RemoteAccess),
            _ => None,
        }
    }
}

/// One entry of a port list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortItem {
    /// One port.
    Single(u16),
    /// An inclusive range.
    Range(u16, u16),
    /// A keyword such as `RPC`, `RPC-EPMap`, `IPHTTPSIn`, `Teredo`, `Ply2Disc`, `mDNS`.
    Keyword(String),
}

impl PortItem {
    /// Parses `3389`, `5000-5020` or a keyword.
    pub fn parse(s: &str) -> Option<PortItem> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return match s.parse::<u32>() {
                Ok(p) if (1..=65535).contains(&p) && s.len() <= 5 => {
                    Some(PortItem::Single(p as u16))
                }
                _ => None,
            };
        }
        if let Some((a, b)) = s.split_once('-') {
            if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                return (a >= 1 && a <= b).then_some(PortItem::Range(a, b));
            }
        }
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
            .then(|| PortItem::Keyword(s.to_string()))
    }
}

impl fmt::Display for PortItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortItem::Single(p) => write!(f, "{p}"),
            PortItem::Range(a, b) => write!(f, "{a}-{b}"),
            PortItem::Keyword(k) => f.write_str(k),
        }
    }
}

/// A port list; empty means any port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortSet {
    /// The entries.
    pub items: Vec<PortItem>,
}

impl PortSet {
    /// True when the list is empty (any port).
    pub fn is_any(&self) -> bool {
        self.items.is_empty()
    }

    /// True when a numeric entry covers `port`. Keywords never cover a fixed service port.
    pub fn covers(&self, port: u16) -> bool {
        self.is_any()
            || self.items.iter().any(|i| match i {
                PortItem::Single(p) => *p == port,
                PortItem::Range(a, b) => (*a..=*b).contains(&port),
                PortItem::Keyword(_) => false,
            })
    }
}

impl fmt::Display for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_any() {
            return f.write_str("Any");
        }
        let s: Vec<String> = self.items.iter().map(|i| i.to_string()).collect();
        f.write_str(&s.join(","))
    }
}

/// One entry of an address list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// One address.
    Single(IpAddr),
    /// An inclusive range.
    Range(IpAddr, IpAddr),
    /// A subnet: network and prefix length (a `/255.255.255.0` mask is converted).
    Subnet(IpAddr, u8),
    /// A keyword: `LocalSubnet`, `DNS`, `DHCP`, `WINS`, `DefaultGateway`, `IntrAnet`,
    /// `IntErnet`, `Ply2Renders`, `RmtIntrAnet`, `CaptivePortal`, `*`.
    Keyword(String),
}

impl Address {
    /// Parses an address, range (`a-b`), subnet (`a/len`, `a/mask`) or keyword.
    pub fn parse(s: &str) -> Option<Address> {
        let s = s.trim();
        if let Some((a, len)) = s.split_once('/') {
            if let Some(ip) = v4(a) {
                if let Ok(n) = len.parse::<u8>() {
                    return (n <= 32).then_some(Address::Subnet(IpAddr::V4(ip), n));
                }
                let mask = v4(len)?;
                let m = u32::from(mask);
                if m.leading_ones() + m.trailing_zeros() != 32 {
                    return None;
                }
                return Some(Address::Subnet(IpAddr::V4(ip), m.leading_ones() as u8));
            }
            let ip = v6(a)?;
            let n = len.parse::<u8>().ok().filter(|n| *n <= 128)?;
            return Some(Address::Subnet(IpAddr::V6(ip), n));
        }
        if let Some((a, b)) = s.split_once('-') {
            if let (Some(a), Some(b)) = (v4(a), v4(b)) {
                return Some(Address::Range(IpAddr::V4(a), IpAddr::V4(b)));
            }
            if let (Some(a), Some(b)) = (v6(a), v6(b)) {
                return Some(Address::Range(IpAddr::V6(a), IpAddr::V6(b)));
            }
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Some(Address::Single(ip));
        }
        (!s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '*'))
            .then(|| Address::Keyword(s.to_string()))
    }

    /// True when the entry covers `ip`; `None` for keywords, which depend on the network.
    pub fn contains(&self, ip: IpAddr) -> Option<bool> {
        match (self, ip) {
            (Address::Keyword(k), _) if k == "*" => Some(true),
            (Address::Keyword(_), _) => None,
            (Address::Single(a), ip) => Some(*a == ip),
            (Address::Range(IpAddr::V4(a), IpAddr::V4(b)), IpAddr::V4(x)) => {
                Some(*a <= x && x <= *b)
            }
            (Address::Range(IpAddr::V6(a), IpAddr::V6(b)), IpAddr::V6(x)) => {
                Some(*a <= x && x <= *b)
            }
            (Address::Subnet(IpAddr::V4(n), len), IpAddr::V4(x)) => {
                let mask = if *len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(*len))
                };
                Some(u32::from(*n) & mask == u32::from(x) & mask)
            }
            (Address::Subnet(IpAddr::V6(n), len), IpAddr::V6(x)) => {
                let mask = if *len == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(*len))
                };
                Some(u128::from(*n) & mask == u128::from(x) & mask)
            }
            _ => Some(false),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Single(a) => write!(f, "{a}"),
            Address::Range(a, b) => write!(f, "{a}-{b}"),
            Address::Subnet(a, n) => write!(f, "{a}/{n}"),
            Address::Keyword(k) => f.write_str(k),
        }
    }
}

/// An address list; empty means any address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressSet {
    /// The entries.
    pub items: Vec<Address>,
}

impl AddressSet {
    /// True when the list is empty (any address).
    pub fn is_any(&self) -> bool {
        self.items.is_empty()
    }
}

impl fmt::Display for AddressSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_any() {
            return f.write_str("Any");
        }
        // RA4 and RA6 often say the same keyword (LocalSubnet): show it once.
        let mut s: Vec<String> = Vec::new();
        for i in &self.items {
            let t = i.to_string();
            if !s.iter().any(|x| x.eq_ignore_ascii_case(&t)) {
                s.push(t);
            }
        }
        f.write_str(&s.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(PortItem::parse("3389"), Some(PortItem::Single(3389)));
        assert_eq!(
            PortItem::parse("5000-5020"),
            Some(PortItem::Range(5000, 5020))
        );
        assert_eq!(
            PortItem::parse("RPC-EPMap"),
            Some(PortItem::Keyword("RPC-EPMap".into()))
        );
        assert_eq!(PortItem::parse("0"), None);
        assert_eq!(PortItem::parse("65536"), None);
        assert_eq!(PortItem::parse("20-10"), None);
        let set = PortSet {
            items: vec![PortItem::Keyword("RPC".into()), PortItem::Range(3000, 4000)],
        };
        assert!(set.covers(3389) && !set.covers(4001));
        assert!(PortSet::default().covers(1));
    }

    #[test]
    fn addresses() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let a = Address::parse("192.168.1.0/255.255.255.0").unwrap();
        assert_eq!(a, Address::Subnet(ip("192.168.1.0"), 24));
        assert_eq!(a.contains(ip("192.168.1.77")), Some(true));
        assert_eq!(a.contains(ip("192.168.2.1")), Some(false));
        assert_eq!(
            Address::parse("10.0.0.1-10.0.0.9")
                .unwrap()
                .contains(ip("10.0.0.5")),
            Some(true)
        );
        assert_eq!(
            Address::parse("fe80::/64").unwrap().contains(ip("fe80::1")),
            Some(true)
        );
        assert_eq!(
            Address::parse("LocalSubnet")
                .unwrap()
                .contains(ip("10.0.0.1")),
            None
        );
        assert_eq!(Address::parse("10.0.0.0/33"), None);
        assert_eq!(Address::parse("1.2.3.4/255.0.255.0"), None);
        assert_eq!(
            Address::parse("10.0.0.0/32").unwrap(),
            Address::Subnet(ip("10.0.0.0"), 32)
        );
    }

    #[test]
    fn profiles() {
        let s = ProfileSet::of(&[Profile::Domain, Profile::Private]);
        assert_eq!(s.to_string(), "Domain,Private");
        assert!(!s.contains(Profile::Public));
        assert_eq!(Profile::parse("Standard"), Some(Profile::Private));
    }
}
