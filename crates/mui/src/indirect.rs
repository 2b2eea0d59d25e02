//! Indirect strings (`@FirewallAPI.dll,-28775`) and the tables they are resolved against.
//!
//! The form is the one `SHLoadIndirectString` documents for resource strings:
//! `@<path to a PE file>,-<string ID>`, optionally followed by `;<comment>`. Windows writes
//! the path bare (`@FirewallAPI.dll`) or with an environment variable
//! (`@%SystemRoot%\system32\FirewallAPI.dll`); both name the same module, so the module is
//! matched by its file name, case-insensitively. Package references (`@{...}`) are not
//! resource strings and are not parsed.

use crate::strings::StringTable;

/// A parsed indirect string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndirectString {
    /// The module as written (`%SystemRoot%\system32\FirewallAPI.dll`).
    pub module: String,
    /// Its file name, lowercased (`firewallapi.dll`): the key for lookups.
    pub file_name: String,
    /// The string ID (the number after `,-`).
    pub id: u16,
}

/// Parses `@<module>,-<id>` (surrounding spaces and a `;comment` suffix allowed). `None` for
/// anything else, including a display name and a package reference `@{...}`.
pub fn parse_indirect(s: &str) -> Option<IndirectString> {
    let rest = s.trim().strip_prefix('@')?;
    if rest.starts_with('{') {
        return None;
    }
    let (module, id) = rest.rsplit_once(',')?;
    let id = id.split(';').next().unwrap_or("").trim();
    let digits = id.strip_prefix('-')?;
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let id: u16 = digits.parse().ok()?;
    let module = module.trim().trim_matches('"').trim();
    let file_name = file_name_of(module);
    if file_name.is_empty() {
        return None;
    }
    Some(IndirectString {
        module: module.to_string(),
        file_name,
        id,
    })
}

/// The lowercased file name of a module path (after the last `\` or `/`), with a `.mui`
/// suffix removed so that a language file is filed under the module it translates.
fn file_name_of(path: &str) -> String {
    let name = path.rsplit(['\\', '/']).next().unwrap_or(path).trim();
    let lower = name.to_lowercase();
    match lower.strip_suffix(".mui") {
        Some(base) if !base.is_empty() => base.to_string(),
        _ => lower,
    }
}

/// String tables by module file name (`firewallapi.dll`), to resolve indirect strings.
#[derive(Debug, Clone, Default)]
pub struct StringTables {
    tables: Vec<(String, StringTable)>,
}

impl StringTables {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Files `table` under `file` (a path or name: `FirewallAPI.dll.mui`,
    /// `System32\nl-NL\FirewallAPI.dll.mui` and `FirewallAPI.dll` all file it as
    /// `firewallapi.dll`). Replaces a table already filed under that name.
    pub fn insert(&mut self, file: &str, table: StringTable) {
        let key = file_name_of(file);
        match self.tables.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = table,
            None => self.tables.push((key, table)),
        }
    }

    /// The table filed under a module's name or path (case-insensitive).
    pub fn get(&self, module: &str) -> Option<&StringTable> {
        let key = file_name_of(module);
        self.tables.iter().find(|(k, _)| *k == key).map(|(_, t)| t)
    }

    /// How many tables are filed.
    pub fn len(&self) -> usize {
        self.tables.len()
    }

    /// True when no table is filed.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }
}

/// The text of an indirect string (`@FirewallAPI.dll,-28775`,
/// `@%SystemRoot%\system32\firewallapi.dll,-28752`) from the table of its module, in that
/// table's preferred language. `None` when the string is not indirect, its module has no table,
/// or the table lacks the ID.
pub fn resolve_indirect(indirect: &str, tables: &StringTables) -> Option<String> {
    let parsed = parse_indirect(indirect)?;
    tables
        .get(&parsed.file_name)?
        .get(u32::from(parsed.id))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_windows_writes() {
        let p = parse_indirect("@FirewallAPI.dll,-28775").unwrap();
        assert_eq!((p.file_name.as_str(), p.id), ("firewallapi.dll", 28775));
        let p = parse_indirect("  @%SystemRoot%\\system32\\FirewallAPI.dll,-28752 ").unwrap();
        assert_eq!(p.module, "%SystemRoot%\\system32\\FirewallAPI.dll");
        assert_eq!((p.file_name.as_str(), p.id), ("firewallapi.dll", 28752));
        let p =
            parse_indirect("@%windir%\\System32\\FIREWALLAPI.DLL,-28753;Remote Desktop").unwrap();
        assert_eq!((p.file_name.as_str(), p.id), ("firewallapi.dll", 28753));
        let p = parse_indirect("@\"C:\\Windows\\system32\\firewallapi.dll\", -28776").unwrap();
        assert_eq!((p.file_name.as_str(), p.id), ("firewallapi.dll", 28776));
    }

    #[test]
    fn not_indirect() {
        for s in [
            "Remote Desktop",
            "@FirewallAPI.dll,28775",
            "@FirewallAPI.dll,-",
            "@FirewallAPI.dll,-70000",
            "@FirewallAPI.dll,-123456",
            "@FirewallAPI.dll,-12a",
            "@,-5",
            "@{Microsoft.Windows.Photos_8wekyb3d8bbwe?ms-resource://x/y}",
            "FirewallAPI.dll,-28775",
            "@FirewallAPI.dll",
            "",
        ] {
            assert_eq!(parse_indirect(s), None, "{s:?}");
        }
    }

    #[test]
    fn tables_by_file_name() {
        let mut t = StringTable::new();
        t.insert(28752, 0x0413, "Extern bureaublad");
        let mut tables = StringTables::new();
        assert!(tables.is_empty());
        tables.insert("System32/nl-NL/FirewallAPI.dll.mui", t);
        assert_eq!(tables.len(), 1);
        assert!(tables.get("firewallapi.dll").is_some());
        assert_eq!(
            resolve_indirect("@%SystemRoot%\\system32\\firewallapi.dll,-28752", &tables).as_deref(),
            Some("Extern bureaublad")
        );
        assert_eq!(resolve_indirect("@FirewallAPI.dll,-28753", &tables), None);
        assert_eq!(resolve_indirect("@netlogon.dll,-28752", &tables), None);
        assert_eq!(resolve_indirect("Extern bureaublad", &tables), None);
        let mut t2 = StringTable::new();
        t2.insert(28752, 0x0407, "Remotedesktop");
        tables.insert("FIREWALLAPI.DLL", t2);
        assert_eq!(tables.len(), 1);
        assert_eq!(
            resolve_indirect("@FirewallAPI.dll,-28752", &tables).as_deref(),
            Some("Remotedesktop")
        );
    }
}
