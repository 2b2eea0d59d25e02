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

/// True when `name` is the English text of one of the indirect strings above (a rule shown
/// by its English name, not by the name a Windows in another language gives it).
pub fn is_english_display_name(name: &str) -> bool {
    TABLE
        .iter()
        .any(|(_, v)| v.eq_ignore_ascii_case(name.trim()))
}

/// A name for display: the English text of an indirect string, or the string as it is.
pub fn display(s: &str) -> String {
    english(s).map_or_else(|| s.to_string(), str::to_string)
}

/// True when `name` (an indirect string or display name) names the Remote Desktop group.
pub fn is_remote_desktop_group(name: &str) -> bool {
    name.eq_ignore_ascii_case(REMOTE_DESKTOP_GROUP) || name.eq_ignore_ascii_case("Remote Desktop")
}

/// The VM's language and the display names of indirect strings in it, as the VM's own
/// console shows them (netsh's `name=` and `group=` match these). Empty for an English Windows,
/// whose names are the English table above, and when the language is not known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalNames {
    /// The language tag (`nl-NL`), when known.
    pub language: Option<String>,
    /// Where the language was read (`SYSTEM\ControlSet001\Control\Nls\Language\InstallLanguage`).
    pub language_origin: Option<String>,
    /// Where the names come from: the VM's `FirewallAPI.dll.mui`, or the built-in table.
    pub source: Option<String>,
    /// Indirect string (lower case) → text.
    names: std::collections::BTreeMap<String, String>,
}

impl LocalNames {
    /// Adds the text of an indirect string.
    pub fn insert(&mut self, indirect: &str, text: &str) {
        self.names
            .insert(indirect.trim().to_ascii_lowercase(), text.to_string());
    }

    /// The localized text of an indirect string, when known.
    pub fn get(&self, indirect: &str) -> Option<&str> {
        self.names
            .get(&indirect.trim().to_ascii_lowercase())
            .map(String::as_str)
    }

    /// How many names are known.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when no name is known.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// True when the VM's language is known and not English (its console shows other names).
    pub fn is_foreign(&self) -> bool {
        self.language
            .as_deref()
            .is_some_and(|l| !l.to_ascii_lowercase().starts_with("en"))
    }

    /// A name for display: the localized text, else the English text, else the string.
    pub fn display(&self, s: &str) -> String {
        self.get(s)
            .map(str::to_string)
            .unwrap_or_else(|| display(s))
    }

    /// True when `wanted` (what a user typed after `name=` or `group=`) names `stored` (a
    /// rule's name or group as the registry holds it): the string itself, its English text or
    /// its localized text, compared case-insensitively as netsh compares.
    pub fn names(&self, stored: &str, wanted: &str) -> bool {
        let wanted = wanted.trim();
        stored.eq_ignore_ascii_case(wanted)
            || eq_ci(&display(stored), wanted)
            || self.get(stored).is_some_and(|t| eq_ci(t, wanted))
    }
}

/// Case-insensitive comparison beyond ASCII (netsh compares names without regard to case in
/// every language: "EXTERN BUREAUBLAD", "extern bureaublad").
fn eq_ci(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
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

    #[test]
    fn local_names_display_and_match_in_every_form() {
        let mut n = LocalNames {
            language: Some("de-DE".into()),
            ..LocalNames::default()
        };
        n.insert("@FirewallAPI.dll,-28752", "Remotedesktop");
        assert!(n.is_foreign());
        assert_eq!(n.display("@firewallapi.dll,-28752"), "Remotedesktop");
        // Not localized: English; unknown: as is.
        assert_eq!(
            n.display("@FirewallAPI.dll,-28775"),
            "Remote Desktop - User Mode (TCP-In)"
        );
        assert_eq!(n.display("Mine"), "Mine");
        for wanted in [
            "Remotedesktop",
            "REMOTEDESKTOP",
            "Remote Desktop",
            "@FirewallAPI.dll,-28752",
        ] {
            assert!(n.names("@FirewallAPI.dll,-28752", wanted), "{wanted}");
        }
        assert!(!n.names("@FirewallAPI.dll,-28752", "Remote"));
        let mut nl = LocalNames::default();
        nl.insert("@FirewallAPI.dll,-28752", "Extern bureaublad");
        assert!(nl.names("@FirewallAPI.dll,-28752", "EXTERN BUREAUBLAD"));
        let mut ru = LocalNames::default();
        ru.insert("@FirewallAPI.dll,-28752", "Удаленный рабочий стол");
        assert!(ru.names("@FirewallAPI.dll,-28752", "удаленный рабочий стол"));
        assert!(!LocalNames::default().is_foreign());
    }
}
