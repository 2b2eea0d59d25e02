//! Which hive file a registry path refers to: `--hive FILE` or `reg load`-style mounts.

use std::path::PathBuf;

use crate::{RegError, Result};

/// One hive file and where its root appears in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where the hive's root appears, spelled out (`HKEY_LOCAL_MACHINE\BROKENSYSTEM`).
    pub display: String,
    /// Upper-cased components of `display`.
    components: Vec<String>,
    /// Paths without this prefix also refer to this hive (`--hive FILE`).
    relative: bool,
    /// The hive file.
    pub file: PathBuf,
}

/// The mounted hives.
#[derive(Debug, Clone, Default)]
pub struct Mounts {
    mounts: Vec<Mount>,
}

/// `HKLM` → `HKEY_LOCAL_MACHINE` and the other abbreviations reg.exe accepts.
fn expand_root(first: &str) -> String {
    match first.to_ascii_uppercase().as_str() {
        "HKLM" => "HKEY_LOCAL_MACHINE".into(),
        "HKCU" => "HKEY_CURRENT_USER".into(),
        "HKCR" => "HKEY_CLASSES_ROOT".into(),
        "HKU" => "HKEY_USERS".into(),
        "HKCC" => "HKEY_CURRENT_CONFIG".into(),
        _ => first.to_string(),
    }
}

/// A path's components with the root abbreviation expanded.
fn components(path: &str) -> Vec<String> {
    let mut parts: Vec<String> = guestwall_regf::split_path(path)
        .map(str::to_string)
        .collect();
    if let Some(first) = parts.first_mut() {
        *first = expand_root(first);
    }
    parts
}

impl Mounts {
    /// No hives.
    pub fn new() -> Mounts {
        Mounts::default()
    }

    /// `--hive FILE`: paths relative to the hive's root, or under `display` (by default the
    /// file's usual place, e.g. `HKEY_LOCAL_MACHINE\SYSTEM`).
    pub fn add_hive(&mut self, file: PathBuf, display: Option<&str>) {
        let display = display.map_or_else(
            || {
                guestwall_regf::default_root_prefix(
                    &file
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                )
            },
            |d| components(d).join("\\"),
        );
        self.mounts.push(Mount {
            components: components(&display)
                .iter()
                .map(|c| c.to_uppercase())
                .collect(),
            display,
            relative: true,
            file,
        });
    }

    /// `--load ROOT\NAME=FILE`, as `reg load ROOT\NAME FILE` does.
    pub fn add_load(&mut self, spec: &str) -> Result<()> {
        let (at, file) = spec.split_once('=').ok_or_else(|| {
            RegError::Usage(format!("--load expects ROOT\\NAME=FILE, found {spec:?}"))
        })?;
        let parts = components(at);
        if parts.len() < 2
            || !matches!(
                parts[0].to_ascii_uppercase().as_str(),
                "HKEY_LOCAL_MACHINE" | "HKEY_USERS"
            )
        {
            return Err(RegError::Usage(format!(
                "--load mounts under HKLM\\NAME or HKU\\NAME (as reg load does), not {at:?}"
            )));
        }
        self.mounts.push(Mount {
            display: parts.join("\\"),
            components: parts.iter().map(|c| c.to_uppercase()).collect(),
            relative: false,
            file: file.into(),
        });
        Ok(())
    }

    /// True when nothing is mounted.
    pub fn is_empty(&self) -> bool {
        self.mounts.is_empty()
    }

    /// The hive holding `path` and the path relative to its root. The longest matching mount
    /// wins; a `--hive` mount also takes paths without any prefix.
    pub fn resolve(&self, path: &str) -> Result<(&Mount, String)> {
        let parts = components(path);
        let upper: Vec<String> = parts.iter().map(|c| c.to_uppercase()).collect();
        let best = self
            .mounts
            .iter()
            .filter(|m| {
                upper.len() >= m.components.len() && upper[..m.components.len()] == m.components[..]
            })
            .max_by_key(|m| m.components.len());
        if let Some(m) = best {
            return Ok((m, parts[m.components.len()..].join("\\")));
        }
        let is_abs = parts
            .first()
            .is_some_and(|p| p.to_ascii_uppercase().starts_with("HKEY_"));
        match self.mounts.iter().find(|m| m.relative) {
            Some(m) if !is_abs => Ok((m, parts.join("\\"))),
            _ => Err(RegError::NotMounted(path.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_loaded_and_relative_paths() {
        let mut m = Mounts::new();
        m.add_load("HKLM\\BROKENSYSTEM=/x/SYSTEM").unwrap();
        m.add_load("HKEY_LOCAL_MACHINE\\BROKENSOFTWARE=/x/SOFTWARE")
            .unwrap();
        let (mount, rel) = m
            .resolve("hklm\\brokensystem\\ControlSet001\\Services")
            .unwrap();
        assert_eq!(
            (mount.file.to_str().unwrap(), rel.as_str()),
            ("/x/SYSTEM", "ControlSet001\\Services")
        );
        assert_eq!(mount.display, "HKEY_LOCAL_MACHINE\\BROKENSYSTEM");
        let (mount, rel) = m.resolve("HKEY_LOCAL_MACHINE\\BrokenSoftware").unwrap();
        assert_eq!(
            (mount.file.to_str().unwrap(), rel.as_str()),
            ("/x/SOFTWARE", "")
        );
        assert!(matches!(
            m.resolve("HKLM\\SYSTEM\\X"),
            Err(RegError::NotMounted(_))
        ));
        assert!(m.add_load("HKCU=/x").is_err());
        assert!(m.add_load("nonsense").is_err());

        let mut h = Mounts::new();
        h.add_hive("/y/SYSTEM".into(), None);
        assert_eq!(h.resolve("Select").unwrap().1, "Select");
        assert_eq!(h.resolve("HKLM\\SYSTEM\\Select").unwrap().1, "Select");
        assert!(h.resolve("HKLM\\SOFTWARE\\X").is_err());
    }
}
