//! The VM's language, and the rule names its console shows: from the VM's own
//! `System32\<lang>\FirewallAPI.dll.mui` when the target holds it (a Windows folder or a disk
//! image), else from the built-in table of sourced names (`guestwall-mui`), else none.

use guestwall_firewall::names::LocalNames;
use guestwall_firewall::{MachineConfig, Note};
use guestwall_mui::{builtin, lang, parse_indirect, resolve_indirect, StringTable, StringTables};
use guestwall_regf::RegData;

use crate::view::{KeyView, RegView};

/// Reads a file of the installation by its path below the Windows folder
/// (`System32/nl-NL/FirewallAPI.dll.mui`): its location for messages and its bytes, or `None`
/// when the target has no such file (a bare hive file).
pub type FileReader<'a> = &'a dyn Fn(&str) -> Option<(String, Vec<u8>)>;

/// Files above this size are not language files (FirewallAPI.dll.mui is about 100–300 KB).
const MAX_MUI: usize = 16 << 20;

/// The UI language of the machine: `Control\MUI\Settings\PreferredUILanguages` when set
/// (the language chosen after installation), else `Control\Nls\Language\InstallLanguage`.
/// Returns the tag and where it was read.
fn ui_language(system: &impl RegView, cs: &str) -> Option<(String, String)> {
    let settings = format!("{cs}\\Control\\MUI\\Settings");
    if let Some(k) = system.find_key(&settings) {
        if let Some((t, b)) = k.raw_value("PreferredUILanguages") {
            if let RegData::MultiString(l) = RegData::decode(t, &b) {
                if let Some(first) = l.into_iter().find(|s| lang::by_tag(s).is_some()) {
                    let tag = lang::by_tag(&first).map_or(first, |l| l.tag.to_string());
                    return Some((tag, format!("SYSTEM\\{settings}\\PreferredUILanguages")));
                }
            }
        }
    }
    let nls = format!("{cs}\\Control\\Nls\\Language");
    let k = system.find_key(&nls)?;
    let mut passed_over = Vec::new();
    for value in ["InstallLanguage", "Default"] {
        let Some((t, b)) = k.raw_value(value) else {
            continue;
        };
        let data = RegData::decode(t, &b);
        let id = match &data {
            RegData::String(s) => lang::parse_install_language(s),
            _ => None,
        };
        match id {
            Some(id) => {
                let tag =
                    lang::by_langid(id).map_or_else(|| format!("{id:04x}"), |l| l.tag.to_string());
                let mut origin = format!("SYSTEM\\{nls}\\{value}");
                if !passed_over.is_empty() {
                    origin.push_str(&format!(" ({})", passed_over.join("; ")));
                }
                return Some((tag, origin));
            }
            None => passed_over.push(format!(
                "{value} = {data} is not a language ID (four hex digits as a REG_SZ, such as 0413)"
            )),
        }
    }
    None
}

/// Fills `cfg.names`: the language, and the localized text of every indirect string the
/// rules use. Notes say when the language file could not be read.
pub(crate) fn localize(
    cfg: &mut MachineConfig,
    system: &impl RegView,
    files: Option<FileReader<'_>>,
) {
    let Some((tag, origin)) = ui_language(system, &cfg.control_set) else {
        return;
    };
    let mut names = LocalNames::default();
    names.language = Some(tag.clone());
    names.language_origin = Some(origin);
    if !names.is_foreign() {
        cfg.names = names;
        return;
    }
    let mut strings: Vec<&str> = Vec::new();
    for r in &cfg.policy.rules {
        for s in [&r.rule.name, &r.rule.group, &r.rule.description]
            .into_iter()
            .flatten()
        {
            if parse_indirect(s).is_some() && !strings.contains(&s.as_str()) {
                strings.push(s);
            }
        }
    }
    let file = format!("System32/{tag}/FirewallAPI.dll.mui");
    let table = files.and_then(|read| read(&file)).and_then(|(at, bytes)| {
        if bytes.len() > MAX_MUI {
            cfg.notes.push(Note::input(format!(
                "{at}: {} bytes is too large for a language file; the built-in names are used",
                bytes.len()
            )));
            return None;
        }
        match StringTable::parse(&bytes) {
            Ok(mut t) => {
                if let Some(l) = lang::by_tag(&tag) {
                    t.prefer_language(l.langid);
                }
                if let Some(n) = t.notes().first() {
                    cfg.notes.push(Note::input(format!(
                        "{at}: partly damaged ({}); the names it still holds are used",
                        n
                    )));
                }
                Some((at, t))
            }
            Err(e) => {
                cfg.notes.push(Note::input(format!(
                    "{at}: not read ({e}); the built-in names are used"
                )));
                None
            }
        }
    });
    match table {
        Some((at, t)) => {
            let mut tables = StringTables::new();
            tables.insert("FirewallAPI.dll", t);
            for s in strings {
                if let Some(text) = resolve_indirect(s, &tables) {
                    names.insert(s, &text);
                }
            }
            names.source = Some(at);
        }
        None => {
            for s in strings {
                if let Some(text) = builtin(&tag, s) {
                    names.insert(s, text);
                }
            }
            names.source = Some(if names.is_empty() {
                format!(
                    "none: no language file was read and the built-in table has no names for {tag}"
                )
            } else {
                "guestwall's built-in table of sourced names".to_string()
            });
        }
    }
    for r in &mut cfg.policy.rules {
        r.local_name = r
            .rule
            .name
            .as_deref()
            .and_then(|n| names.get(n))
            .map(str::to_string);
        r.local_group = r
            .rule
            .group
            .as_deref()
            .and_then(|g| names.get(g))
            .map(str::to_string);
    }
    cfg.names = names;
}
