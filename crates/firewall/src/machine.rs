//! One control set of a machine, as the diagnosis sees it: the firewall [`Policy`] and the
//! facts around it (Remote Desktop on or off, its port, the services, the OS, the last network).
//! The ingest layer builds it from hives and from captures of a running machine; tests build
//! it by hand.

use crate::codes::{self, Code};
use crate::eval::{Os, Policy};
use crate::origin::Origin;
use crate::settings::Setting;
use crate::values::Profile;

/// A service's start type as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceStart {
    /// Short name (`MpsSvc`, `BFE`, `TermService`).
    pub name: String,
    /// `Start` (2 automatic, 3 manual, 4 disabled); `None` when the service key is missing.
    pub start: Option<u32>,
    /// The service's key.
    pub origin: Origin,
}

impl ServiceStart {
    /// Where its `Start` value is.
    pub fn start_origin(&self) -> Origin {
        self.origin.value("Start")
    }
}

/// The network the machine last knew, as a hint of which profile will be active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkHint {
    /// The profile (from the network's category).
    pub profile: Profile,
    /// The network's name.
    pub name: String,
    /// When it was last connected, as text.
    pub last_connected: Option<String>,
}

/// A network a running machine is connected to, and its firewall profile (known online, from
/// a capture; never inferred).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveNetwork {
    /// The profile Windows gave it.
    pub profile: Profile,
    /// The network's name, when the capture shows it.
    pub name: Option<String>,
    /// The interface, when the capture shows it.
    pub interface: Option<String>,
    /// Where it was read (the capture line).
    pub origin: Origin,
}

/// A note about the input, with its code ([`codes::INPUT_NOTE`] or a more specific one such
/// as [`codes::LOGS_PARTLY_APPLIED`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The code.
    pub code: Code,
    /// The text.
    pub text: String,
}

impl Note {
    /// A plain input note.
    pub fn input(text: impl Into<String>) -> Note {
        Note {
            code: codes::INPUT_NOTE,
            text: text.into(),
        }
    }
}

/// Everything the diagnosis needs to know about one control set of a machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineConfig {
    /// What this is, for people: `SYSTEM: ControlSet001 (Select\Current)`.
    pub label: String,
    /// The control set's key name (`ControlSet001`).
    pub control_set: String,
    /// Why this control set: `Select\Current`, `Select\Default`, both, or `assumed`.
    pub control_set_source: String,
    /// The firewall.
    pub policy: Policy,
    /// The OS, when known.
    pub os: Os,
    /// The OS's name and build, for display.
    pub os_name: Option<String>,
    /// The OS version was inferred from the firewall rules (no SOFTWARE hive).
    pub os_inferred: bool,
    /// `Terminal Server\fDenyTSConnections`.
    pub deny_ts: Option<Setting<bool>>,
    /// The Group Policy copy of fDenyTSConnections (it wins when set).
    pub deny_ts_policy: Option<Setting<bool>>,
    /// `RDP-Tcp\PortNumber`.
    pub port: Option<Setting<u32>>,
    /// The input does not show whether `PortNumber` is set (a partial capture): `--port`
    /// then says where RDP listens. False for hives, where a missing value means 3389.
    pub port_unknown: bool,
    /// MpsSvc, BFE and TermService.
    pub services: Vec<ServiceStart>,
    /// The last known network.
    pub network_hint: Option<NetworkHint>,
    /// Online (a capture that shows it): the connected networks and their profiles. `None`
    /// offline, or when the capture does not say.
    pub active: Option<Vec<ActiveNetwork>>,
    /// The input shows no firewall rule at all (a partial capture): a profile whose verdict
    /// would rest on the rules is `conditional`, with an `unknown` cause, rather than blocked
    /// for want of a rule nobody saw.
    pub rules_unknown: bool,
    /// Notes about the input, shown as findings.
    pub notes: Vec<Note>,
    /// The VM's language and the rule names its console shows.
    pub names: crate::names::LocalNames,
}

impl MachineConfig {
    /// The local store's key of the firewall policy
    /// (`ControlSet001\Services\SharedAccess\Parameters\FirewallPolicy`).
    pub fn firewall_policy_key(&self) -> String {
        format!("{}\\{}", self.control_set, FIREWALL_POLICY)
    }

    /// The local store's key for profile `p`.
    pub fn local_profile_origin(&self, p: Profile) -> Origin {
        Origin::system(format!(
            "{}\\{}",
            self.firewall_policy_key(),
            p.local_key_name()
        ))
    }
}

/// The local firewall store below a control set.
pub const FIREWALL_POLICY: &str = "Services\\SharedAccess\\Parameters\\FirewallPolicy";
