//! Where a fact of the model was read: a registry hive, key and value, and (for facts taken
//! from captured console text) the capture's file and line.
//!
//! Every setting, rule and service fact carries an [`Origin`], and so does every cause of a
//! diagnosis. A repair writes to the origin of the fact it changes; nothing is parsed back
//! from text.

use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};

/// The registry hive a fact lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HiveKind {
    /// SYSTEM (`HKLM\SYSTEM`): the local firewall store, services, Terminal Server.
    System,
    /// SOFTWARE (`HKLM\SOFTWARE`): the Group Policy store, the OS version.
    Software,
}

impl HiveKind {
    /// The hive's file name and `HKLM` subkey (`SYSTEM`, `SOFTWARE`).
    pub fn name(self) -> &'static str {
        match self {
            HiveKind::System => "SYSTEM",
            HiveKind::Software => "SOFTWARE",
        }
    }
}

/// Serialized as its name (`SYSTEM`).
impl Serialize for HiveKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl fmt::Display for HiveKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A line of captured text (a console transcript, Run Command output).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CaptureLine {
    /// The capture's name, as the user gave it.
    pub file: Arc<str>,
    /// The 1-based line.
    pub line: usize,
    /// For a fact decoded from a collector block (whose `line` is the block's BEGIN line):
    /// the 1-based line inside the decoded payload.
    pub payload_line: Option<usize>,
    /// What the capture showed in place of a registry value, when it shows none: a rule from
    /// netsh's display is `netsh rule "NAME"` (netsh shows no rule ID, so the origin's value
    /// name is only its display name, not a value that exists on the VM).
    pub shown_as: Option<Arc<str>>,
}

impl CaptureLine {
    /// What the capture showed in place of a registry value, and where:
    /// `netsh rule "NAME" (cap.txt:61)`; `None` for a fact with a registry place.
    pub fn shown_text(&self) -> Option<String> {
        self.shown_as
            .as_ref()
            .map(|shown| format!("{shown} ({self})"))
    }
}

impl fmt::Display for CaptureLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if let Some(p) = self.payload_line {
            write!(f, ", payload line {p}")?;
        }
        Ok(())
    }
}

/// Where a setting, rule or value was read: a key (and value) of a hive, and the capture line
/// it was read from when it came from captured text.
///
/// Displays as the registry path, `SYSTEM\ControlSet001\...\PublicProfile\EnableFirewall`,
/// followed by ` (capture:line)` for captured facts; a fact the capture showed in place of a
/// registry value displays as what it showed (`netsh rule "NAME" (capture:line)`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The hive.
    pub hive: HiveKind,
    /// The key, relative to the hive's root (`ControlSet001\Services\...`).
    pub key: String,
    /// The value's name; `None` for the key itself. For a rule, its ID.
    pub value: Option<String>,
    /// The capture line, for facts read from captured text.
    pub capture: Option<CaptureLine>,
}

/// The root key of SYSTEM: a placeholder for models built by hand.
impl Default for Origin {
    fn default() -> Origin {
        Origin::system("")
    }
}

impl Origin {
    /// A key of `hive`.
    pub fn key(hive: HiveKind, key: impl Into<String>) -> Origin {
        Origin {
            hive,
            key: key.into(),
            value: None,
            capture: None,
        }
    }

    /// A key of SYSTEM.
    pub fn system(key: impl Into<String>) -> Origin {
        Origin::key(HiveKind::System, key)
    }

    /// A key of SOFTWARE.
    pub fn software(key: impl Into<String>) -> Origin {
        Origin::key(HiveKind::Software, key)
    }

    /// The value `name` of this origin's key.
    pub fn value(&self, name: impl Into<String>) -> Origin {
        Origin {
            value: Some(name.into()),
            ..self.key_only()
        }
    }

    /// The subkey `name` of this origin's key.
    pub fn subkey(&self, name: &str) -> Origin {
        Origin {
            key: format!("{}\\{name}", self.key),
            ..self.key_only()
        }
    }

    /// This origin's key, without the value.
    pub fn key_only(&self) -> Origin {
        Origin {
            hive: self.hive,
            key: self.key.clone(),
            value: None,
            capture: self.capture.clone(),
        }
    }

    /// The value's name, or the empty string (the default value) for a key.
    pub fn value_name(&self) -> &str {
        self.value.as_deref().unwrap_or("")
    }

    /// True when both name the same key and value (registry names are case-insensitive).
    /// Facts a capture showed in place of a value (`shown_as`: rules from netsh's display,
    /// where several rules may share a name) are the same only at the same capture line.
    pub fn same_place(&self, other: &Origin) -> bool {
        fn shown(o: &Origin) -> Option<(&Arc<str>, usize)> {
            o.capture
                .as_ref()
                .filter(|c| c.shown_as.is_some())
                .map(|c| (&c.file, c.line))
        }
        if shown(self).is_some() || shown(other).is_some() {
            return shown(self) == shown(other);
        }
        self.hive == other.hive
            && self.key.eq_ignore_ascii_case(&other.key)
            && match (&self.value, &other.value) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                (None, None) => true,
                _ => false,
            }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(shown) = self.capture.as_ref().and_then(CaptureLine::shown_text) {
            return f.write_str(&shown);
        }
        write!(f, "{}\\{}", self.hive, self.key)?;
        if let Some(v) = &self.value {
            write!(f, "\\{v}")?;
        }
        if let Some(c) = &self.capture {
            write!(f, " ({c})")?;
        }
        Ok(())
    }
}

/// Serialized as its display form.
impl Serialize for Origin {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_the_registry_path() {
        let k = Origin::system("ControlSet001\\Services\\MpsSvc");
        assert_eq!(k.to_string(), "SYSTEM\\ControlSet001\\Services\\MpsSvc");
        let v = k.value("Start");
        assert_eq!(
            v.to_string(),
            "SYSTEM\\ControlSet001\\Services\\MpsSvc\\Start"
        );
        assert_eq!(v.key_only(), k);
        assert_eq!(
            k.subkey("Logging").key,
            "ControlSet001\\Services\\MpsSvc\\Logging"
        );
        let mut c = Origin::software("Policies").value("x");
        c.capture = Some(CaptureLine {
            file: "cap.txt".into(),
            line: 7,
            payload_line: None,
            shown_as: None,
        });
        assert_eq!(c.to_string(), "SOFTWARE\\Policies\\x (cap.txt:7)");
        c.capture.as_mut().unwrap().payload_line = Some(40);
        assert_eq!(
            c.to_string(),
            "SOFTWARE\\Policies\\x (cap.txt:7, payload line 40)"
        );
        c.capture.as_mut().unwrap().shown_as = Some("netsh rule \"x\"".into());
        assert_eq!(
            c.to_string(),
            "netsh rule \"x\" (cap.txt:7, payload line 40)"
        );
        assert!(v.same_place(&Origin::system("controlset001\\services\\mpssvc").value("START")));
        assert!(!v.same_place(&k));
    }
}
