//! Profile settings per store and their merge into the effective settings ([MS-FASP] 3.1.3,
//! 2.2.38): Group Policy wins where it sets a value, `DoNotAllowExceptions` is on if either store
//! says so, and `AllowLocalPolicyMerge` counts only from Group Policy.

use std::fmt;

use crate::origin::Origin;
use crate::values::Profile;

/// Where a rule or setting lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Store {
    /// The local store (`SYSTEM\...\SharedAccess\Parameters\FirewallPolicy`).
    Local,
    /// The Group Policy store (`SOFTWARE\Policies\Microsoft\WindowsFirewall`).
    GroupPolicy,
    /// MDM rules (`...\FirewallPolicy\Mdm\FirewallRules`).
    Mdm,
    /// Windows Service Hardening rules (`...\FirewallPolicy\RestrictedServices`).
    ServiceHardening,
}

impl Store {
    /// Short name, as used in JSON and reports.
    pub fn key(self) -> &'static str {
        match self {
            Store::Local => "local",
            Store::GroupPolicy => "group-policy",
            Store::Mdm => "mdm",
            Store::ServiceHardening => "service-hardening",
        }
    }
}

impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Store::Local => "local store",
            Store::GroupPolicy => "Group Policy store",
            Store::Mdm => "MDM store",
            Store::ServiceHardening => "service hardening",
        })
    }
}

/// A configured value and where it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    /// The value.
    pub value: T,
    /// Where it came from (the value).
    pub origin: Origin,
}

impl<T> Setting<T> {
    /// A value and its origin.
    pub fn new(value: T, origin: Origin) -> Setting<T> {
        Setting { value, origin }
    }
}

/// The settings of one profile in one store. `None` = not configured there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreProfile {
    /// Where the profile's key is.
    pub origin: Origin,
    /// `EnableFirewall`.
    pub enable_firewall: Option<Setting<bool>>,
    /// `DoNotAllowExceptions` (netsh: BlockInboundAlways).
    pub shielded: Option<Setting<bool>>,
    /// `DefaultInboundAction` (true = block).
    pub default_inbound_block: Option<Setting<bool>>,
    /// `DefaultOutboundAction` (true = block).
    pub default_outbound_block: Option<Setting<bool>>,
    /// `AllowLocalPolicyMerge` (Group Policy only).
    pub allow_local_policy_merge: Option<Setting<bool>>,
    /// `AllowLocalIPsecPolicyMerge` (Group Policy only).
    pub allow_local_ipsec_policy_merge: Option<Setting<bool>>,
    /// `DisabledInterfaces`.
    pub disabled_interfaces: Option<Setting<Vec<String>>>,
    /// `DisableNotifications` (netsh: InboundUserNotification disable).
    pub disable_notifications: Option<Setting<bool>>,
    /// `DisableUnicastResponsesToMulticastBroadcast`.
    pub disable_unicast_responses: Option<Setting<bool>>,
    /// The profile's `Logging` subkey.
    pub logging: Logging,
}

/// A profile's `Logging` subkey. `None` = not configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Logging {
    /// `LogSuccessfulConnections`.
    pub log_allowed: Option<Setting<bool>>,
    /// `LogDroppedPackets`.
    pub log_dropped: Option<Setting<bool>>,
    /// `LogFilePath`.
    pub file: Option<Setting<String>>,
    /// `LogFileSize`, in KiB.
    pub max_kb: Option<Setting<u32>>,
}

impl StoreProfile {
    /// An empty profile at `origin`.
    pub fn at(origin: Origin) -> StoreProfile {
        StoreProfile {
            origin,
            ..StoreProfile::default()
        }
    }
}

/// One store's profiles. The local store's Private profile is its `StandardProfile`; a Group
/// Policy store may have a legacy `StandardProfile` that stands for Private and Public when
/// it has neither of those ([MS-GPFAS] 2.2.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreSettings {
    /// `DomainProfile`.
    pub domain: Option<StoreProfile>,
    /// `PrivateProfile` (Group Policy) or `StandardProfile` (local).
    pub private: Option<StoreProfile>,
    /// `PublicProfile`.
    pub public: Option<StoreProfile>,
    /// Legacy Group Policy `StandardProfile`.
    pub standard: Option<StoreProfile>,
}

impl StoreSettings {
    /// The profile key that applies to `p` in this store, with the legacy fallback.
    pub fn profile(&self, p: Profile, group_policy: bool) -> Option<&StoreProfile> {
        match p {
            Profile::Domain => self.domain.as_ref(),
            Profile::Private | Profile::Public if group_policy => {
                if self.private.is_none() && self.public.is_none() {
                    self.standard.as_ref()
                } else if p == Profile::Private {
                    self.private.as_ref()
                } else {
                    self.public.as_ref()
                }
            }
            Profile::Private => self.private.as_ref(),
            Profile::Public => self.public.as_ref(),
        }
    }
}

/// An effective value and what decided it: a store's setting, or the built-in default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective<T> {
    /// The value in force.
    pub value: T,
    /// The store that set it, `None` for the built-in default.
    pub store: Option<Store>,
    /// Where that store's value was read.
    pub origin: Option<Origin>,
}

impl<T> Effective<T> {
    fn default_value(value: T) -> Effective<T> {
        Effective {
            value,
            store: None,
            origin: None,
        }
    }

    fn from(s: &Setting<T>, store: Store) -> Effective<T>
    where
        T: Clone,
    {
        Effective {
            value: s.value.clone(),
            store: Some(store),
            origin: Some(s.origin.clone()),
        }
    }
}

/// The settings in force for one profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveProfile {
    /// The profile.
    pub profile: Profile,
    /// Firewall on.
    pub enable_firewall: Effective<bool>,
    /// Block all inbound, whatever the rules.
    pub shielded: Effective<bool>,
    /// Default inbound action is block.
    pub default_inbound_block: Effective<bool>,
    /// Local-store rules are enforced.
    pub allow_local_policy_merge: Effective<bool>,
    /// Local connection security rules are enforced.
    pub allow_local_ipsec_policy_merge: Effective<bool>,
    /// Interfaces the firewall is off on.
    pub disabled_interfaces: Effective<Vec<String>>,
}

/// "Group Policy wins where it is set, else local, else the default."
fn gp_wins<T: Clone>(
    gp: Option<&Setting<T>>,
    local: Option<&Setting<T>>,
    default: T,
) -> Effective<T> {
    match (gp, local) {
        (Some(g), _) => Effective::from(g, Store::GroupPolicy),
        (None, Some(l)) => Effective::from(l, Store::Local),
        (None, None) => Effective::default_value(default),
    }
}

/// Merges the stores for profile `p` ([MS-FASP] 2.2.38 merge laws).
pub fn effective_profile(
    local: &StoreSettings,
    gp: Option<&StoreSettings>,
    p: Profile,
) -> EffectiveProfile {
    let l = local.profile(p, false);
    let g = gp.and_then(|g| g.profile(p, true));
    let pick = |f: fn(&StoreProfile) -> Option<&Setting<bool>>| (g.and_then(f), l.and_then(f));
    let (ge, le) = pick(|s| s.enable_firewall.as_ref());
    let (gs, ls) = pick(|s| s.shielded.as_ref());
    let (gd, ld) = pick(|s| s.default_inbound_block.as_ref());
    // Shield: "on" wins, whichever store says so.
    let shielded = match (gs, ls) {
        (Some(s), _) if s.value => Effective::from(s, Store::GroupPolicy),
        (_, Some(s)) if s.value => Effective::from(s, Store::Local),
        (Some(s), _) => Effective::from(s, Store::GroupPolicy),
        (None, Some(s)) => Effective::from(s, Store::Local),
        (None, None) => Effective::default_value(false),
    };
    // Merge flags: only Group Policy's value counts; default allowed.
    let merge = |f: fn(&StoreProfile) -> Option<&Setting<bool>>| match g.and_then(f) {
        Some(s) => Effective::from(s, Store::GroupPolicy),
        None => Effective::default_value(true),
    };
    EffectiveProfile {
        profile: p,
        enable_firewall: gp_wins(ge, le, true),
        shielded,
        default_inbound_block: gp_wins(gd, ld, true),
        allow_local_policy_merge: merge(|s| s.allow_local_policy_merge.as_ref()),
        allow_local_ipsec_policy_merge: merge(|s| s.allow_local_ipsec_policy_merge.as_ref()),
        disabled_interfaces: gp_wins(
            g.and_then(|s| s.disabled_interfaces.as_ref()),
            l.and_then(|s| s.disabled_interfaces.as_ref()),
            Vec::new(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prof(
        enable: Option<bool>,
        shield: Option<bool>,
        block: Option<bool>,
        merge: Option<bool>,
    ) -> StoreProfile {
        StoreProfile {
            origin: Origin::system("k"),
            enable_firewall: enable.map(|v| Setting::new(v, Origin::system("k").value("e"))),
            shielded: shield.map(|v| Setting::new(v, Origin::system("k").value("s"))),
            default_inbound_block: block.map(|v| Setting::new(v, Origin::system("k").value("d"))),
            allow_local_policy_merge: merge
                .map(|v| Setting::new(v, Origin::system("k").value("m"))),
            ..StoreProfile::default()
        }
    }

    #[test]
    fn merge_laws() {
        let local = StoreSettings {
            public: Some(prof(Some(true), Some(true), Some(false), Some(false))),
            ..Default::default()
        };
        // No GP: local values, merge flag ignored in the local store.
        let e = effective_profile(&local, None, Profile::Public);
        assert!(e.enable_firewall.value && e.shielded.value && !e.default_inbound_block.value);
        assert!(e.allow_local_policy_merge.value);
        assert_eq!(e.shielded.store, Some(Store::Local));
        // GP sets EnableFirewall=0 and DoNotAllowExceptions=0: GP wins the first, "on" wins
        // the second.
        let gp = StoreSettings {
            public: Some(prof(Some(false), Some(false), None, Some(false))),
            ..Default::default()
        };
        let e = effective_profile(&local, Some(&gp), Profile::Public);
        assert!(!e.enable_firewall.value);
        assert_eq!(e.enable_firewall.store, Some(Store::GroupPolicy));
        assert!(e.shielded.value);
        assert_eq!(e.shielded.store, Some(Store::Local));
        assert!(!e.allow_local_policy_merge.value);
        // Defaults.
        let e = effective_profile(&StoreSettings::default(), None, Profile::Domain);
        assert!(e.enable_firewall.value && !e.shielded.value && e.default_inbound_block.value);
        assert_eq!(e.enable_firewall.store, None);
    }

    #[test]
    fn legacy_standard_profile_fallback() {
        let gp = StoreSettings {
            standard: Some(prof(None, Some(true), None, None)),
            ..Default::default()
        };
        let local = StoreSettings::default();
        assert!(
            effective_profile(&local, Some(&gp), Profile::Private)
                .shielded
                .value
        );
        assert!(
            effective_profile(&local, Some(&gp), Profile::Public)
                .shielded
                .value
        );
        assert!(
            !effective_profile(&local, Some(&gp), Profile::Domain)
                .shielded
                .value
        );
        // Once a Private or Public key exists, StandardProfile is ignored.
        let gp = StoreSettings {
            standard: Some(prof(None, Some(true), None, None)),
            public: Some(prof(None, None, None, None)),
            ..Default::default()
        };
        assert!(
            !effective_profile(&local, Some(&gp), Profile::Private)
                .shielded
                .value
        );
        assert!(
            !effective_profile(&local, Some(&gp), Profile::Public)
                .shielded
                .value
        );
    }
}
