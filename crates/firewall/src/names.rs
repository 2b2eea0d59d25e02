//! English display names of the indirect strings (`@FirewallAPI.dll,-28775`) that built-in
//! rules carry. The strings live in FirewallAPI.dll's resources, which an offline Linux host
//! does not have; this table holds the ones guestwall reports on. Anything else is shown as it
//! is.

/// (indirect string, English text).
const TABLE: &[(&str, &str)] = &[
    // The Remote Desktop group (Windows 7 to Windows Server 2025).
    ("@FirewallAPI.dll,-28752", "Remote Desktop"),
    ("@FirewallAPI.dll,-28753", "Remote Desktop (TCP-In)"),
    ("@FirewallAPI.dll,-28756", "Inbound rule for the Remote Desktop service to allow RDP traffic. [TCP 3389]"),
    ("@FirewallAPI.dll,-28775", "Remote Desktop - User Mode (TCP-In)"),
    ("@FirewallAPI.dll,-28776", "Remote Desktop - User Mode (UDP-In)"),
    ("@FirewallAPI.dll,-28777", "Inbound rule for the Remote Desktop service to allow RDP traffic. [UDP 3389]"),
    ("@FirewallAPI.dll,-28778", "Remote Desktop - Shadow (TCP-In)"),
    ("@FirewallAPI.dll,-28779", "Inbound rule for the Remote Desktop service to allow shadowing of an existing Remote Desktop session. (TCP-In)"),
    // Windows 7's RemoteFX group, which held a user-mode RDP rule there.
    ("@FirewallAPI.dll,-28852", "Remote Desktop - RemoteFX"),
    ("@FirewallAPI.dll,-28853", "Remote Desktop - RemoteFX (TCP-In)"),
    ("@FirewallAPI.dll,-28856", "Inbound rule for the Remote Desktop service to allow RDP traffic. [TCP 3389]"),
];

/// The group ID of the built-in Remote Desktop rules.
pub const REMOTE_DESKTOP_GROUP: &str = "@FirewallAPI.dll,-28752";

/// The English text of an indirect string, if known (case-insensitive).
pub fn english(indirect: &str) -> Option<&'static str> {
    TABLE
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(indirect.trim()))
        .map(|(_, v)| *v)
}

/// A name for display: the English text of an indirect string, or the string as it is.
pub fn display(s: &str) -> String {
    english(s).map_or_else(|| s.to_string(), str::to_string)
}

/// True when `name` (an indirect string or display name) names the Remote Desktop group.
pub fn is_remote_desktop_group(name: &str) -> bool {
    name.eq_ignore_ascii_case(REMOTE_DESKTOP_GROUP) || name.eq_ignore_ascii_case("Remote Desktop")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown_names() {
        assert_eq!(
            display("@FirewallAPI.dll,-28775"),
            "Remote Desktop - User Mode (TCP-In)"
        );
        assert_eq!(display("@firewallapi.dll,-28752"), "Remote Desktop");
        assert_eq!(
            display("@FirewallAPI.dll,-99999"),
            "@FirewallAPI.dll,-99999"
        );
        assert_eq!(display("My rule"), "My rule");
        assert!(is_remote_desktop_group("remote desktop"));
    }
}
