//! `reg query` output, and the registry tree it (and the collector) fills.
//!
//! Layout (reg.exe; `docs/capture-formats.md` §2): a blank line, the key's full path
//! (`HKEY_LOCAL_MACHINE\...`, whatever abbreviation was typed), its values as
//! `    <name>    <REG_TYPE>    <data>` (four spaces before the name and between the columns),
//! a blank line; with `/s` every subkey follows as its own block; without it, the subkeys'
//! paths follow, one per line. Data: REG_SZ/REG_EXPAND_SZ as text, REG_MULTI_SZ joined with the
//! two characters `\0`, REG_DWORD/REG_QWORD as `0x` lower-case hex, everything else as
//! upper-case hex bytes. The default value is `(Default)`; `(value not set)` means it is absent.
//!
//! Values are stored as the bytes Windows stores: strings re-encoded as UTF-16LE with one
//! terminating NUL (what reg.exe shows cannot tell more), numbers little-endian, hex as is.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::lang::{self, Language};
use crate::transcript::{clip, full_width, Line};
use crate::{Capture, Note, NoteKind, Origin};

/// REG_NONE.
pub const REG_NONE: u32 = 0;
/// REG_SZ.
pub const REG_SZ: u32 = 1;
/// REG_EXPAND_SZ.
pub const REG_EXPAND_SZ: u32 = 2;
/// REG_BINARY.
pub const REG_BINARY: u32 = 3;
/// REG_DWORD.
pub const REG_DWORD: u32 = 4;
/// REG_DWORD_BIG_ENDIAN.
pub const REG_DWORD_BIG_ENDIAN: u32 = 5;
/// REG_LINK.
pub const REG_LINK: u32 = 6;
/// REG_MULTI_SZ.
pub const REG_MULTI_SZ: u32 = 7;
/// REG_QWORD.
pub const REG_QWORD: u32 = 11;

const TYPES: &[(&str, u32)] = &[
    ("REG_NONE", 0),
    ("REG_SZ", 1),
    ("REG_EXPAND_SZ", 2),
    ("REG_BINARY", 3),
    ("REG_DWORD", 4),
    ("REG_DWORD_BIG_ENDIAN", 5),
    ("REG_LINK", 6),
    ("REG_MULTI_SZ", 7),
    ("REG_RESOURCE_LIST", 8),
    ("REG_FULL_RESOURCE_DESCRIPTOR", 9),
    ("REG_RESOURCE_REQUIREMENTS_LIST", 10),
    ("REG_QWORD", 11),
];

/// The type number of a type name (`REG_DWORD`, or guestwall's `REG_UNKNOWN_0x1234`).
pub fn type_number(name: &str) -> Option<u32> {
    if let Some((_, n)) = TYPES.iter().find(|(t, _)| *t == name) {
        return Some(*n);
    }
    let hex = name.strip_prefix("REG_UNKNOWN_0x")?;
    u32::from_str_radix(hex, 16).ok()
}

/// How faithfully a value's bytes are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fidelity {
    /// The bytes are fully determined by the capture (numbers, hex).
    Exact,
    /// A string re-encoded from its text: UTF-16LE plus one terminating NUL (a value stored
    /// without its terminator, or with bytes after it, cannot be told apart).
    Reencoded,
    /// The bytes are known but the type is not: .NET reports `Unknown` for REG_NONE and for
    /// every type it has no name for; the type is recorded as REG_NONE.
    TypeUnknown,
}

/// One registry value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegValue {
    /// The name (`""` for the default value).
    pub name: String,
    /// The REG type number.
    pub reg_type: u32,
    /// The bytes Windows stores (see [`Fidelity`]).
    pub data: Vec<u8>,
    /// The data as the capture showed it.
    pub shown: String,
    /// How exact `data` is.
    pub fidelity: Fidelity,
    /// Where it was read.
    pub origin: Origin,
}

impl RegValue {
    /// The value as a DWORD (REG_DWORD of four bytes).
    pub fn dword(&self) -> Option<u32> {
        match (self.reg_type, self.data.as_slice()) {
            (REG_DWORD, [a, b, c, d]) => Some(u32::from_le_bytes([*a, *b, *c, *d])),
            _ => None,
        }
    }

    /// The value as a string (REG_SZ, REG_EXPAND_SZ, up to the first NUL).
    pub fn string(&self) -> Option<String> {
        if !matches!(self.reg_type, REG_SZ | REG_EXPAND_SZ | REG_LINK) {
            return None;
        }
        let units = self
            .data
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|u| *u != 0);
        Some(
            char::decode_utf16(units)
                .map(|r| r.unwrap_or('\u{FFFD}'))
                .collect(),
        )
    }
}

/// One registry key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegKey {
    /// Its full path as first seen (`HKEY_LOCAL_MACHINE\...`).
    pub path: String,
    /// Its values, in the order seen.
    pub values: Vec<RegValue>,
    /// True when every value of the key was listed (`reg query KEY` or `/s`, a collector
    /// walk): a value not here is absent. False when only some were (`/v`, a filter).
    pub values_complete: bool,
    /// True when every subkey was listed: a subkey not in the tree is absent.
    pub subkeys_complete: bool,
    /// Rule values the collector left out as unable to match inbound TCP to the RDP port.
    pub filtered: usize,
    /// Where it was first seen.
    pub origin: Origin,
}

impl RegKey {
    /// The value named `name` (case-insensitive; `""` for the default value).
    pub fn value(&self, name: &str) -> Option<&RegValue> {
        self.values.iter().find(|v| eq_ci(&v.name, name))
    }
}

/// Something a capture shows to be absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Absent {
    /// The key.
    pub key: String,
    /// The value, or `None` when the key itself is absent.
    pub value: Option<String>,
    /// Where it was read.
    pub origin: Origin,
}

/// An in-memory registry tree: key path → values, case-insensitive like Windows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegTree {
    keys: BTreeMap<String, RegKey>,
    /// Keys and values the capture shows to be absent (`ERROR:` after a `reg query` whose
    /// command is known, the collector's `absent` records).
    pub absent: Vec<Absent>,
}

fn eq_ci(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.to_uppercase() == b.to_uppercase() || a.eq_ignore_ascii_case(b)
}

/// `HKLM\x` → `HKEY_LOCAL_MACHINE\x`; no trailing backslash.
pub fn normalize_path(path: &str) -> String {
    let p = path.trim().trim_end_matches('\\');
    let (root, rest) = match p.split_once('\\') {
        Some((r, x)) => (r, Some(x)),
        None => (p, None),
    };
    let root = match root.to_ascii_uppercase().as_str() {
        "HKLM" | "HKEY_LOCAL_MACHINE" => "HKEY_LOCAL_MACHINE".to_string(),
        "HKCU" | "HKEY_CURRENT_USER" => "HKEY_CURRENT_USER".to_string(),
        "HKCR" | "HKEY_CLASSES_ROOT" => "HKEY_CLASSES_ROOT".to_string(),
        "HKU" | "HKEY_USERS" => "HKEY_USERS".to_string(),
        "HKCC" | "HKEY_CURRENT_CONFIG" => "HKEY_CURRENT_CONFIG".to_string(),
        _ => root.to_string(),
    };
    match rest {
        Some(r) => format!("{root}\\{r}"),
        None => root,
    }
}

fn fold(path: &str) -> String {
    normalize_path(path).to_uppercase()
}

impl RegTree {
    /// The key at `path` (`HKLM\...` or `HKEY_LOCAL_MACHINE\...`, any case).
    pub fn key(&self, path: &str) -> Option<&RegKey> {
        self.keys.get(&fold(path))
    }

    /// The value `name` of the key at `path`.
    pub fn value(&self, path: &str, name: &str) -> Option<&RegValue> {
        self.key(path)?.value(name)
    }

    /// The known direct subkeys of `path`.
    pub fn subkeys(&self, path: &str) -> Vec<&RegKey> {
        let prefix = format!("{}\\", fold(path));
        self.keys
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| k.get(prefix.len()..).is_some_and(|r| !r.contains('\\')))
            .map(|(_, v)| v)
            .collect()
    }

    /// Every key, in path order.
    pub fn keys(&self) -> impl Iterator<Item = &RegKey> {
        self.keys.values()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is known.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// True when the capture shows `path` (or `path`'s value `name`) to be absent: recorded
    /// as absent, or missing under a key whose values / subkeys were all listed.
    pub fn is_absent(&self, path: &str, name: Option<&str>) -> bool {
        let f = fold(path);
        let recorded = self.absent.iter().any(|a| {
            let k = fold(&a.key);
            (a.value.is_none() && (f == k || f.starts_with(&format!("{k}\\"))))
                || (k == f && matches!((&a.value, name), (Some(x), Some(y)) if eq_ci(x, y)))
        });
        if recorded {
            return true;
        }
        match (self.keys.get(&f), name) {
            (Some(k), Some(n)) => k.values_complete && k.value(n).is_none(),
            (Some(_), None) => false,
            (None, _) => {
                // Absent when an ancestor exists and listed all its subkeys.
                let mut p = f.as_str();
                while let Some((parent, _)) = p.rsplit_once('\\') {
                    if let Some(k) = self.keys.get(parent) {
                        return k.subkeys_complete;
                    }
                    p = parent;
                }
                false
            }
        }
    }

    /// The key at `path`, created when missing (its parents are not created).
    pub fn insert_key(&mut self, path: &str, origin: Origin) -> &mut RegKey {
        let path = normalize_path(path);
        self.keys.entry(path.to_uppercase()).or_insert(RegKey {
            path,
            values: Vec::new(),
            values_complete: false,
            subkeys_complete: false,
            filtered: 0,
            origin,
        })
    }

    /// Adds a value to the key at `path` (created when missing); a value of the same name is
    /// replaced (the later capture wins).
    pub fn insert_value(&mut self, path: &str, value: RegValue) {
        let origin = value.origin.clone();
        let key = self.insert_key(path, origin);
        match key.values.iter_mut().find(|v| eq_ci(&v.name, &value.name)) {
            Some(old) => *old = value,
            None => key.values.push(value),
        }
    }
}

/// UTF-16LE bytes of `s`, plus a terminating NUL.
pub fn utf16z(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain(std::iter::once(0))
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// REG_MULTI_SZ bytes: every string with its NUL, then the terminating NUL.
pub fn multi_sz<S: AsRef<str>>(items: &[S]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in items {
        out.extend(utf16z(s.as_ref()));
    }
    out.extend([0, 0]);
    out
}

/// Hex digits (any case, no separators) to bytes.
pub fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len() / 2)
        .map(|i| {
            s.get(2 * i..2 * i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

fn hex_number(s: &str) -> Option<u64> {
    let h = s
        .trim()
        .strip_prefix("0x")
        .or_else(|| s.trim().strip_prefix("0X"))?;
    if h.is_empty() || h.len() > 16 {
        return None;
    }
    u64::from_str_radix(h, 16).ok()
}

/// The bytes for reg.exe's rendering of data of type `t`.
pub fn data_from_text(t: u32, text: &str) -> Option<(Vec<u8>, Fidelity)> {
    Some(match t {
        REG_SZ | REG_EXPAND_SZ | REG_LINK => (utf16z(text), Fidelity::Reencoded),
        REG_MULTI_SZ => {
            if text.is_empty() {
                (vec![0, 0], Fidelity::Reencoded)
            } else {
                let items: Vec<&str> = text.split("\\0").collect();
                (multi_sz(&items), Fidelity::Reencoded)
            }
        }
        REG_DWORD | REG_DWORD_BIG_ENDIAN | REG_QWORD if !text.trim().starts_with("0x") => {
            // A number of the wrong length is shown as hex bytes.
            (hex_bytes(text)?, Fidelity::Exact)
        }
        REG_DWORD => {
            let n = u32::try_from(hex_number(text)?).ok()?;
            (n.to_le_bytes().to_vec(), Fidelity::Exact)
        }
        // The one place where the format itself is big-endian.
        #[allow(clippy::big_endian_bytes)]
        REG_DWORD_BIG_ENDIAN => {
            let n = u32::try_from(hex_number(text)?).ok()?;
            (n.to_be_bytes().to_vec(), Fidelity::Exact)
        }
        REG_QWORD => (hex_number(text)?.to_le_bytes().to_vec(), Fidelity::Exact),
        _ => (hex_bytes(text)?, Fidelity::Exact),
    })
}

/// A key line: `HKEY_...\...` at column 0.
pub(crate) fn is_key_line(s: &str) -> bool {
    let up = s.get(..5).map(str::to_ascii_uppercase);
    matches!(up.as_deref(), Some("HKEY_"))
        || ["HKLM\\", "HKCU\\", "HKCR\\"]
            .iter()
            .any(|p| s.get(..5).is_some_and(|x| x.eq_ignore_ascii_case(p)))
}

/// Splits a value line into (name, type name, type, data).
pub(crate) fn split_value_line(s: &str) -> Option<(String, String, u32, String)> {
    let body = s.strip_prefix("    ")?;
    if body.starts_with(' ') && !body.trim_start().starts_with('(') && body.trim().is_empty() {
        return None;
    }
    // The leftmost "    REG_xxx" that is followed by four spaces or the end of the line.
    let mut from = 0;
    while let Some(pos) = body.get(from..).and_then(|r| r.find("    REG_")) {
        let at = from + pos;
        let rest = body.get(at + 4..)?;
        let tname_end = rest.find(' ').unwrap_or(rest.len());
        let tname = rest.get(..tname_end)?;
        let after = rest.get(tname_end..)?;
        if let Some(t) = type_number(tname) {
            let data = if after.is_empty() {
                Some("")
            } else {
                after.strip_prefix("    ")
            };
            if let Some(data) = data {
                let name = body.get(..at)?.to_string();
                return Some((name, tname.to_string(), t, data.to_string()));
            }
        }
        from = at + 4;
    }
    None
}

/// What the `reg query` command line said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RegHint {
    pub key: Option<String>,
    /// `Some("")` for `/ve`.
    pub value: Option<String>,
    pub recursive: bool,
    pub filtered: bool,
}

/// Parses `reg query ...` (the words after `reg`).
pub(crate) fn hint(command: &str) -> Option<RegHint> {
    let words = crate::detect::words(command);
    let mut it = words.iter().map(String::as_str);
    let first = it.next()?;
    let first = first.rsplit(['\\', '/']).next().unwrap_or(first);
    if !first.eq_ignore_ascii_case("reg") && !first.eq_ignore_ascii_case("reg.exe") {
        return None;
    }
    if !it.next()?.eq_ignore_ascii_case("query") {
        return None;
    }
    let mut h = RegHint::default();
    let mut rest: Vec<&str> = it.collect();
    if let Some(p) = rest.iter().position(|w| *w == "|") {
        h.filtered = true;
        rest.truncate(p);
    }
    let mut i = 0;
    while let Some(w) = rest.get(i) {
        let lw = w.to_ascii_lowercase();
        match lw.as_str() {
            "/s" | "-s" => h.recursive = true,
            "/ve" | "-ve" => h.value = Some(String::new()),
            "/v" | "-v" => {
                i += 1;
                h.value = rest.get(i).map(|s| s.to_string());
            }
            "/f" | "/t" | "/d" | "/c" | "/e" | "/k" | "/se" | "/z" | "/reg:32" | "/reg:64" => {
                if lw == "/f" {
                    h.filtered = true;
                    i += 1;
                }
                if lw == "/t" || lw == "/se" {
                    i += 1;
                }
            }
            _ if h.key.is_none() && !w.starts_with('/') => h.key = Some(normalize_path(w)),
            _ => {}
        }
        i += 1;
    }
    Some(h)
}

/// `text` (line `i` of `lines`) with the lines the console wrapped it onto joined again: while
/// the last piece fills the console's width, the next line is appended when it is not blank,
/// a key, a value, the `End of search` line or a prompt. Returns the joined text and the index
/// of the first line after it.
fn join_wrapped(lines: &[Line], i: usize, text: &str) -> (String, usize) {
    let mut joined = text.to_string();
    let mut last = text;
    let mut j = i + 1;
    while full_width(last) {
        match lines.get(j) {
            Some(n)
                if !n.text.trim().is_empty()
                    && !is_key_line(&n.text)
                    && !is_value_line(&n.text)
                    && !n.text.starts_with("End of search")
                    && crate::transcript::prompt(&n.text).is_none() =>
            {
                joined.push_str(&n.text);
                last = &n.text;
                j += 1;
            }
            _ => break,
        }
    }
    (joined, j)
}

fn is_value_line(s: &str) -> bool {
    split_value_line(s).is_some()
}

/// Parses `reg query` output starting at `lines[start]`; returns the number of lines used
/// (at least one) and whether the block started in the middle (a value before any key).
pub(crate) fn parse(
    lines: &[Line],
    start: usize,
    hint: Option<&RegHint>,
    cap: &mut Capture,
) -> (usize, bool) {
    let file: Arc<str> = Arc::clone(&cap.origin_name);
    let mut i = start;
    let mut current: Option<String> = None;
    let mut first_key = true;
    let mut started_mid = false;
    let mut prev_key_line = false;
    let mut noted_ccs = false;
    while let Some(line) = lines.get(i) {
        let text = line.text.as_str();
        if text.trim().is_empty() {
            prev_key_line = false;
            i += 1;
            continue;
        }
        if is_key_line(text) {
            // Re-join a key line the console wrapped (a path longer than the console is wide).
            let (joined, j) = join_wrapped(lines, i, text);
            let text = joined.as_str();
            let wrapped_lines = j - i - 1;
            let path = normalize_path(text.trim_end());
            if !noted_ccs
                && path.to_uppercase().contains("\\CURRENTCONTROLSET")
                && !cap
                    .notes
                    .iter()
                    .any(|n| n.text.contains("is kept as shown"))
            {
                noted_ccs = true;
                cap.notes.push(Note::new(
                    Some(line.number),
                    NoteKind::Info,
                    "HKLM\\SYSTEM\\CurrentControlSet is kept as shown: it is the control set Select\\Current names (the running one)",
                ));
            }
            let origin = Origin::new(&file, line.number);
            let (values_complete, subkeys_complete) = match hint {
                Some(h) if h.filtered => (false, false),
                Some(h) if h.value.is_some() => (false, false),
                Some(h) if h.recursive => (true, true),
                // Without /s: the queried key is complete, the listed subkeys only exist.
                Some(_) => (first_key && !prev_key_line, first_key && !prev_key_line),
                None => (false, false),
            };
            let key = cap.registry.insert_key(&path, origin);
            key.values_complete |= values_complete;
            key.subkeys_complete |= subkeys_complete;
            first_key = false;
            current = Some(path);
            prev_key_line = true;
            i += 1 + wrapped_lines;
            continue;
        }
        prev_key_line = false;
        if is_value_line(text) {
            // Re-join a value line the console wrapped.
            let (joined, j) = join_wrapped(lines, i, text);
            let Some((name, _tname, t, data)) = split_value_line(&joined) else {
                i = j;
                continue;
            };
            let Some(key) = current.clone() else {
                started_mid = true;
                cap.notes.push(Note::new(
                    Some(line.number),
                    NoteKind::Truncated,
                    format!("registry value {:?} without its key line (the start of the output is missing)", name.trim()),
                ));
                i = j;
                continue;
            };
            let name = if name == "(Default)" {
                String::new()
            } else {
                name
            };
            if name.is_empty() && data == "(value not set)" {
                i = j;
                continue;
            }
            match data_from_text(t, &data) {
                Some((bytes, fidelity)) => cap.registry.insert_value(
                    &key,
                    RegValue {
                        name,
                        reg_type: t,
                        data: bytes,
                        shown: data,
                        fidelity,
                        origin: Origin::new(&file, line.number),
                    },
                ),
                None => cap.notes.push(Note::new(
                    Some(line.number),
                    NoteKind::Damaged,
                    format!(
                        "{key}: value {name:?}: data {:?} is not valid for its type",
                        clip(&data, 60)
                    ),
                )),
            }
            i = j;
            continue;
        }
        if let Some(rest) = text.strip_prefix("End of search: ") {
            cap.notes.push(Note::new(
                Some(line.number),
                NoteKind::Info,
                format!("reg query search result: {}", rest.trim()),
            ));
            i += 1;
            continue;
        }
        if let Some((prefix, lang)) = lang::REG_ERRORS
            .iter()
            .find(|(p, _)| text.starts_with(p))
            .map(|(p, l)| (*p, *l))
        {
            cap.saw(lang);
            let msg = text.get(prefix.len()..).unwrap_or("").trim();
            let origin = Origin::new(&file, line.number);
            match hint.and_then(|h| h.key.clone().map(|k| (k, h.value.clone()))) {
                Some((key, value)) if !hint.is_some_and(|h| h.filtered) => {
                    cap.notes.push(Note::new(
                        Some(line.number),
                        NoteKind::Info,
                        format!(
                            "reg: {} {} is absent ({msg})",
                            key,
                            value
                                .as_deref()
                                .map_or(String::new(), |v| format!("value {v:?}"))
                        ),
                    ));
                    cap.registry
                        .absent
                        .push(crate::regquery::Absent { key, value, origin });
                }
                _ => cap.notes.push(Note::new(
                    Some(line.number),
                    NoteKind::Info,
                    format!("reg error without its command line: {msg}"),
                )),
            }
            i += 1;
            continue;
        }
        break;
    }
    (i.saturating_sub(start).max(1), started_mid)
}

/// Languages seen in reg output (only its messages are localized).
pub fn languages_of_errors(text: &str) -> Option<Language> {
    lang::REG_ERRORS
        .iter()
        .find(|(p, _)| text.starts_with(p))
        .map(|(_, l)| *l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_lines() {
        assert_eq!(
            split_value_line("    fDenyTSConnections    REG_DWORD    0x0"),
            Some((
                "fDenyTSConnections".into(),
                "REG_DWORD".into(),
                4,
                "0x0".into()
            ))
        );
        // A name with a run of four spaces, and data with one.
        assert_eq!(
            split_value_line("    a    b    REG_SZ    x    y"),
            Some(("a    b".into(), "REG_SZ".into(), 1, "x    y".into()))
        );
        // Empty data whose trailing spaces were stripped.
        assert_eq!(
            split_value_line("    Name    REG_SZ"),
            Some(("Name".into(), "REG_SZ".into(), 1, String::new()))
        );
        assert_eq!(split_value_line("    Name    REG_SZX    y"), None);
        assert_eq!(split_value_line("HKEY_LOCAL_MACHINE\\X"), None);
    }

    #[test]
    fn data_rendering() {
        assert_eq!(
            data_from_text(REG_DWORD, "0xd3d").unwrap().0,
            3389u32.to_le_bytes()
        );
        assert_eq!(
            data_from_text(REG_QWORD, "0x1").unwrap().0,
            1u64.to_le_bytes()
        );
        assert_eq!(data_from_text(REG_BINARY, "00FF").unwrap().0, [0, 255]);
        assert_eq!(data_from_text(REG_DWORD, "0102").unwrap().0, [1, 2]);
        assert_eq!(
            data_from_text(REG_MULTI_SZ, "a\\0b").unwrap().0,
            [97, 0, 0, 0, 98, 0, 0, 0, 0, 0]
        );
        assert!(data_from_text(REG_DWORD, "0x100000000").is_none());
        assert!(data_from_text(REG_BINARY, "0F0").is_none());
    }

    #[test]
    fn hints() {
        let h = hint(r#"reg query "HKLM\SYSTEM\X" /v PortNumber"#).unwrap();
        assert_eq!(h.key.as_deref(), Some("HKEY_LOCAL_MACHINE\\SYSTEM\\X"));
        assert_eq!(h.value.as_deref(), Some("PortNumber"));
        let h = hint(r#"reg query HKLM\X /s | findstr /i "Dir=In""#).unwrap();
        assert!(h.recursive && h.filtered);
        assert!(hint("netsh advfirewall").is_none());
    }

    #[test]
    fn tree_lookups_are_case_insensitive() {
        let f: Arc<str> = Arc::from("t");
        let mut t = RegTree::default();
        let k = t.insert_key("HKLM\\SYSTEM\\A", Origin::new(&f, 1));
        k.values_complete = true;
        k.subkeys_complete = true;
        t.insert_value(
            "hkey_local_machine\\system\\a\\B",
            RegValue {
                name: "X".into(),
                reg_type: REG_DWORD,
                data: vec![1, 0, 0, 0],
                shown: "0x1".into(),
                fidelity: Fidelity::Exact,
                origin: Origin::new(&f, 2),
            },
        );
        assert_eq!(t.value("HKLM\\system\\A\\b", "x").unwrap().dword(), Some(1));
        assert_eq!(t.subkeys("HKLM\\SYSTEM\\A").len(), 1);
        assert!(t.is_absent("HKLM\\SYSTEM\\A", Some("Y")));
        assert!(t.is_absent("HKLM\\SYSTEM\\A\\C", None));
        assert!(!t.is_absent("HKLM\\SYSTEM\\A\\B", Some("Y")));
    }
}
