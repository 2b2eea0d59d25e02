//! The stable codes of causes and findings (`docs/json.md` lists them with their meaning).
//!
//! [`Code`] is an enum with a stable string form ([`Code::as_str`], used in JSON and text);
//! the constants of this module name each code for matching (`codes::RDP_DISABLED`).

use std::fmt;

use serde::{Serialize, Serializer};

/// A cause or finding code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// DoNotAllowExceptions (netsh: BlockInboundAlways) in the local store.
    BlockAllInbound,
    /// An RDP allow rule exists but is disabled.
    RdpRuleDisabled,
    /// No rule allows RDP at all.
    RdpRuleMissing,
    /// An enabled RDP rule leaves this profile out.
    RdpRuleWrongProfile,
    /// A custom RDP port with no rule that covers it.
    RdpPortNotAllowed,
    /// An enabled local block rule matches.
    BlockRule,
    /// Group Policy decides: merge off, policy block-all, or a policy block rule.
    PolicyOverride,
    /// fDenyTSConnections=1, local or policy.
    RdpDisabled,
    /// MpsSvc or BFE disabled: everything inbound is blocked.
    FirewallServiceDisabled,
    /// TermService disabled.
    TermserviceDisabled,
    /// An IPsec rule demands authentication for the RDP port.
    IpsecRequired,
    /// The profile is off: RDP passes, but the machine is unprotected.
    FirewallOff,
    /// Informational: the RDP listener port is not 3389.
    CustomPort,
    /// Informational: the last network the machine knew, as a hint of the active profile.
    ActiveProfileHint,
    /// Informational: Select\Default (next boot) is not Select\Current.
    ControlSetMismatch,
    /// Informational: default inbound action is allow (insecure, not a blocker).
    DefaultInboundAllow,
    /// Informational: the profile's firewall is off on some interfaces (DisabledInterfaces).
    DisabledInterfaces,
    /// Informational: something about the input (dirty hive, missing SOFTWARE, …).
    InputNote,
    /// A hive's transaction logs could be applied only in part (a damaged entry): what is read
    /// is what Windows would load, but the changes logged after the damage are lost.
    LogsPartlyApplied,
    /// `--port` names a port RDP does not listen on; the diagnosis is for the port it does.
    PortMismatch,
    /// `RDP-Tcp\\PortNumber` holds no valid TCP port (0, or above 65535): RDP cannot listen.
    RdpPortInvalid,
    /// An RDP allow rule admits only some clients (remote address, interface, authorization
    /// …): the verdict is conditional, or the rule is disabled and would be.
    RdpRuleScoped,
    /// Online (a capture): the profile of a network the machine is connected to, and the
    /// verdict there now.
    ActiveProfile,
    /// Online (a capture): what only a running machine shows (a service's state, what
    /// listens on the RDP port).
    OnlineState,
    /// A capture does not show something the verdict rests on: it is reported as unknown,
    /// never guessed.
    Unknown,
    /// Not a cause: a change asked for by a `netsh` command.
    NetshCommand,
    /// Only in a plan's `unresolved`: the verdict is conditional and no single rule names the
    /// scope.
    Conditional,
}

impl Code {
    /// The stable string form (`rdp-rule-disabled`).
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BlockAllInbound => "block-all-inbound",
            Code::RdpRuleDisabled => "rdp-rule-disabled",
            Code::RdpRuleMissing => "rdp-rule-missing",
            Code::RdpRuleWrongProfile => "rdp-rule-wrong-profile",
            Code::RdpPortNotAllowed => "rdp-port-not-allowed",
            Code::BlockRule => "block-rule",
            Code::PolicyOverride => "policy-override",
            Code::RdpDisabled => "rdp-disabled",
            Code::FirewallServiceDisabled => "firewall-service-disabled",
            Code::TermserviceDisabled => "termservice-disabled",
            Code::IpsecRequired => "ipsec-required",
            Code::FirewallOff => "firewall-off",
            Code::CustomPort => "custom-port",
            Code::ActiveProfileHint => "active-profile-hint",
            Code::ControlSetMismatch => "control-set-mismatch",
            Code::DefaultInboundAllow => "default-inbound-allow",
            Code::DisabledInterfaces => "disabled-interfaces",
            Code::InputNote => "input-note",
            Code::LogsPartlyApplied => "logs-partly-applied",
            Code::PortMismatch => "port-mismatch",
            Code::RdpPortInvalid => "rdp-port-invalid",
            Code::RdpRuleScoped => "rdp-rule-scoped",
            Code::ActiveProfile => "active-profile",
            Code::OnlineState => "online-state",
            Code::Unknown => "unknown",
            Code::NetshCommand => "netsh-command",
            Code::Conditional => "conditional",
        }
    }

    /// The code of a string form.
    pub fn parse(s: &str) -> Option<Code> {
        ALL.iter()
            .copied()
            .chain([Code::NetshCommand, Code::Conditional])
            .find(|c| c.as_str() == s)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<Code> for &str {
    fn eq(&self, other: &Code) -> bool {
        *self == other.as_str()
    }
}

/// Serialized as its string form.
impl Serialize for Code {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// DoNotAllowExceptions (netsh: BlockInboundAlways) in the local store.
pub const BLOCK_ALL_INBOUND: Code = Code::BlockAllInbound;
/// An RDP allow rule exists but is disabled.
pub const RDP_RULE_DISABLED: Code = Code::RdpRuleDisabled;
/// No rule allows RDP at all.
pub const RDP_RULE_MISSING: Code = Code::RdpRuleMissing;
/// An enabled RDP rule leaves this profile out.
pub const RDP_RULE_WRONG_PROFILE: Code = Code::RdpRuleWrongProfile;
/// A custom RDP port with no rule that covers it.
pub const RDP_PORT_NOT_ALLOWED: Code = Code::RdpPortNotAllowed;
/// An enabled local block rule matches.
pub const BLOCK_RULE: Code = Code::BlockRule;
/// Group Policy decides: merge off, policy block-all, or a policy block rule.
pub const POLICY_OVERRIDE: Code = Code::PolicyOverride;
/// fDenyTSConnections=1, local or policy.
pub const RDP_DISABLED: Code = Code::RdpDisabled;
/// MpsSvc or BFE disabled: everything inbound is blocked.
pub const FIREWALL_SERVICE_DISABLED: Code = Code::FirewallServiceDisabled;
/// TermService disabled.
pub const TERMSERVICE_DISABLED: Code = Code::TermserviceDisabled;
/// An IPsec rule demands authentication for the RDP port.
pub const IPSEC_REQUIRED: Code = Code::IpsecRequired;
/// The profile is off: RDP passes, but the machine is unprotected.
pub const FIREWALL_OFF: Code = Code::FirewallOff;
/// Informational: the RDP listener port is not 3389.
pub const CUSTOM_PORT: Code = Code::CustomPort;
/// Informational: the last network the machine knew, as a hint of the active profile.
pub const ACTIVE_PROFILE_HINT: Code = Code::ActiveProfileHint;
/// Informational: Select\Default (next boot) is not Select\Current.
pub const CONTROL_SET_MISMATCH: Code = Code::ControlSetMismatch;
/// Informational: default inbound action is allow (insecure, not a blocker).
pub const DEFAULT_INBOUND_ALLOW: Code = Code::DefaultInboundAllow;
/// Informational: the profile's firewall is off on some interfaces (DisabledInterfaces).
pub const DISABLED_INTERFACES: Code = Code::DisabledInterfaces;
/// Informational: something about the input (dirty hive, missing SOFTWARE, …).
pub const INPUT_NOTE: Code = Code::InputNote;
/// A hive's transaction logs could be applied only in part (a damaged entry): what is read
/// is what Windows would load, but the changes logged after the damage are lost.
pub const LOGS_PARTLY_APPLIED: Code = Code::LogsPartlyApplied;
/// `--port` names a port RDP does not listen on; the diagnosis is for the port it does.
pub const PORT_MISMATCH: Code = Code::PortMismatch;
/// `RDP-Tcp\\PortNumber` holds no valid TCP port (0, or above 65535): RDP cannot listen.
pub const RDP_PORT_INVALID: Code = Code::RdpPortInvalid;
/// An RDP allow rule admits only some clients (remote address, interface, authorization
/// …): the verdict is conditional, or the rule is disabled and would be.
pub const RDP_RULE_SCOPED: Code = Code::RdpRuleScoped;
/// Online (a capture): the profile of a connected network and the verdict there now.
pub const ACTIVE_PROFILE: Code = Code::ActiveProfile;
/// Online (a capture): a service's state, or what listens on the RDP port.
pub const ONLINE_STATE: Code = Code::OnlineState;
/// A capture does not show something the verdict rests on.
pub const UNKNOWN: Code = Code::Unknown;

/// Every cause and finding code, in the order documented in `docs/json.md`.
pub const ALL: &[Code] = &[
    RDP_RULE_DISABLED,
    RDP_RULE_WRONG_PROFILE,
    RDP_PORT_NOT_ALLOWED,
    RDP_RULE_MISSING,
    RDP_RULE_SCOPED,
    BLOCK_ALL_INBOUND,
    BLOCK_RULE,
    POLICY_OVERRIDE,
    FIREWALL_OFF,
    IPSEC_REQUIRED,
    RDP_DISABLED,
    RDP_PORT_INVALID,
    FIREWALL_SERVICE_DISABLED,
    TERMSERVICE_DISABLED,
    PORT_MISMATCH,
    CUSTOM_PORT,
    DEFAULT_INBOUND_ALLOW,
    DISABLED_INTERFACES,
    ACTIVE_PROFILE_HINT,
    ACTIVE_PROFILE,
    ONLINE_STATE,
    UNKNOWN,
    CONTROL_SET_MISMATCH,
    LOGS_PARTLY_APPLIED,
    INPUT_NOTE,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_forms_are_unique_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for c in ALL
            .iter()
            .copied()
            .chain([Code::NetshCommand, Code::Conditional])
        {
            assert!(seen.insert(c.as_str()), "{c} twice");
            assert_eq!(Code::parse(c.as_str()), Some(c));
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{c}\""));
        }
        assert_eq!(Code::parse("no-such-code"), None);
        assert!(RDP_DISABLED == "rdp-disabled");
    }
}
