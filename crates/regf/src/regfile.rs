//! Reading `.reg` files, as regedit writes them (the writer is in `export`).
//!
//! Accepted: `Windows Registry Editor Version 5.00` files in UTF-16LE (with a byte order mark)
//! or UTF-8 (with or without one), and `REGEDIT4` files (8-bit; their strings and `hex(2)` /
//! `hex(7)` data are converted from Latin-1 to UTF-16LE as regedit does). Syntax:
//!
//! - `[key]` creates a key, `[-key]` deletes a key tree;
//! - `"name"=...` or `@=...` sets a value: `"text"` (REG_SZ, with `\\` and `\"` as its
//!   only escapes, as in regedit),
//!   `dword:xxxxxxxx`, `hex:bytes` (REG_BINARY), `hex(t):bytes` (type `t` in hex);
//! - `"name"=-` deletes a value;
//! - hex data may continue over lines ending in `\`; lines starting with `;` are comments.
//!
//! Errors name the line.

use crate::data::{reg_sz, REG_BINARY, REG_DWORD, REG_EXPAND_SZ, REG_MULTI_SZ, REG_SZ};
use crate::write::Edit;

/// One change of a `.reg` file: an [`Edit`] whose key path is as written (with its root,
/// e.g. `HKEY_LOCAL_MACHINE\SYSTEM\...`), and the line it comes from. A caller maps the path
/// to a hive with [`Edit::with_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegEdit {
    /// 1-based line number of the key or value line.
    pub line: usize,
    /// The change.
    pub edit: Edit,
}

/// A syntax error in a `.reg` file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct RegFileError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

fn err(line: usize, message: impl Into<String>) -> RegFileError {
    RegFileError {
        line,
        message: message.into(),
    }
}

/// Decodes the file's text: UTF-16LE with BOM, UTF-8 with or without BOM, else Latin-1.
pub fn decode_text(bytes: &[u8]) -> String {
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| b as char).collect(),
    }
}

/// Parses a `.reg` file into edits, in file order.
pub fn parse_reg(bytes: &[u8]) -> Result<Vec<RegEdit>, RegFileError> {
    let text = decode_text(bytes);
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let regedit4 = loop {
        let Some((n, l)) = lines.next() else {
            return Err(err(
                1,
                "empty file: no \"Windows Registry Editor Version 5.00\" header",
            ));
        };
        match l.trim() {
            "" => continue,
            "Windows Registry Editor Version 5.00" => break false,
            "REGEDIT4" => break true,
            other => {
                return Err(err(
                    n,
                    format!("expected \"Windows Registry Editor Version 5.00\" or \"REGEDIT4\", found {other:?}"),
                ))
            }
        }
    };
    let mut ops = Vec::new();
    let mut current: Option<String> = None;
    while let Some((n, raw)) = lines.next() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        if let Some(inner) = line.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or_else(|| err(n, "a key line must end with ']'"))?;
            if let Some(del) = inner.strip_prefix('-') {
                ops.push(RegEdit {
                    line: n,
                    edit: Edit::DeleteKey {
                        key: del.to_string(),
                    },
                });
                current = None;
            } else {
                if inner.is_empty() {
                    return Err(err(n, "empty key path"));
                }
                ops.push(RegEdit {
                    line: n,
                    edit: Edit::CreateKey {
                        key: inner.to_string(),
                    },
                });
                current = Some(inner.to_string());
            }
            continue;
        }
        // A value line, possibly continued.
        let mut full = line.to_string();
        while full.ends_with('\\') && is_hex_value(&full) {
            full.pop();
            match lines.next() {
                Some((_, next)) => full.push_str(next.trim()),
                None => return Err(err(n, "the file ends inside a continued value")),
            }
        }
        let key = current
            .clone()
            .ok_or_else(|| err(n, "a value outside any key (or under a deleted key)"))?;
        let (name, rest) = parse_name(&full).map_err(|m| err(n, m))?;
        let rest = rest.trim_start();
        let rest = rest
            .strip_prefix('=')
            .ok_or_else(|| err(n, "expected '=' after the value name"))?
            .trim();
        if rest == "-" {
            ops.push(RegEdit {
                line: n,
                edit: Edit::DeleteValue { key, name },
            });
            continue;
        }
        let (data_type, data) = parse_data(rest, regedit4).map_err(|m| err(n, m))?;
        ops.push(RegEdit {
            line: n,
            edit: Edit::SetValue {
                key,
                name,
                data_type,
                data,
            },
        });
    }
    Ok(ops)
}

/// True when the right-hand side of a value line is hex data (so a final `\` continues it).
fn is_hex_value(line: &str) -> bool {
    match line.find("=hex") {
        Some(i) => {
            let before = &line[..i];
            before.ends_with('"') || before.trim_end() == "@"
        }
        None => false,
    }
}

/// `@` or a quoted name with `\\` and `\"` escapes; returns (name, rest of the line).
fn parse_name(line: &str) -> Result<(String, &str), String> {
    if let Some(rest) = line.strip_prefix('@') {
        return Ok((String::new(), rest));
    }
    let Some(body) = line.strip_prefix('"') else {
        return Err("a value name must be \"quoted\" or @".into());
    };
    let (s, used) = parse_quoted(body)?;
    Ok((s, &body[used..]))
}

/// Parses up to the closing quote; returns the text and the bytes consumed (quote included).
fn parse_quoted(body: &str) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\\' => match chars.next() {
                Some((_, e @ ('\\' | '"'))) => out.push(e),
                // regedit knows no other escapes: the backslash stays.
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => return Err("unterminated string".into()),
            },
            c => out.push(c),
        }
    }
    Err("unterminated string".into())
}

fn parse_data(rest: &str, regedit4: bool) -> Result<(u32, Vec<u8>), String> {
    if let Some(body) = rest.strip_prefix('"') {
        let (s, used) = parse_quoted(body)?;
        if !body[used..].trim().is_empty() {
            return Err(format!(
                "unexpected text after the string: {:?}",
                &body[used..]
            ));
        }
        return Ok((REG_SZ, reg_sz(&s)));
    }
    let lower = rest.to_ascii_lowercase();
    if let Some(h) = lower.strip_prefix("dword:") {
        let h = h.trim();
        if h.is_empty() || h.len() > 8 {
            return Err(format!("dword needs 1 to 8 hex digits, found {h:?}"));
        }
        let v = u32::from_str_radix(h, 16).map_err(|_| format!("bad dword {h:?}"))?;
        return Ok((REG_DWORD, v.to_le_bytes().to_vec()));
    }
    let (t, bytes) = if let Some(b) = lower.strip_prefix("hex:") {
        (REG_BINARY, b)
    } else if let Some(b) = lower.strip_prefix("hex(") {
        let close = b.find("):").ok_or("expected hex(<type>):")?;
        let t = u32::from_str_radix(&b[..close], 16)
            .map_err(|_| format!("bad type {:?}", &b[..close]))?;
        (t, &b[close + 2..])
    } else {
        return Err(format!("unrecognised value data {rest:?}"));
    };
    let mut data = Vec::new();
    for part in bytes.split(',') {
        let p = part.trim();
        if p.is_empty() {
            continue;
        }
        if p.len() > 2 {
            return Err(format!("bad hex byte {p:?}"));
        }
        data.push(u8::from_str_radix(p, 16).map_err(|_| format!("bad hex byte {p:?}"))?);
    }
    if regedit4 && (t == REG_EXPAND_SZ || t == REG_MULTI_SZ) {
        // REGEDIT4 stores these as 8-bit text; the registry holds UTF-16LE.
        data = data.iter().flat_map(|&b| [b, 0]).collect();
    }
    Ok((t, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_regedit_writes() {
        let text =
            "Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SYSTEM\\X]\r\n\
             \"s\"=\"a \\\"q\\\" \\\\ b\"\r\n@=\"def\"\r\n\"d\"=dword:00000d3d\r\n\
             \"b\"=hex:01,02,\\\r\n  03\r\n\"e\"=hex(2):25,00,00,00\r\n\"gone\"=-\r\n\r\n\
             [-HKEY_LOCAL_MACHINE\\SYSTEM\\Old]\r\n; comment\r\n";
        let ops = parse_reg(text.as_bytes()).unwrap();
        let lines: Vec<usize> = ops.iter().map(|o| o.line).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7, 9, 10, 12]);
        let ops: Vec<Edit> = ops.into_iter().map(|o| o.edit).collect();
        let key = "HKEY_LOCAL_MACHINE\\SYSTEM\\X".to_string();
        assert_eq!(
            ops,
            vec![
                Edit::CreateKey { key: key.clone() },
                Edit::SetValue {
                    key: key.clone(),
                    name: "s".into(),
                    data_type: REG_SZ,
                    data: reg_sz("a \"q\" \\ b")
                },
                Edit::SetValue {
                    key: key.clone(),
                    name: "".into(),
                    data_type: REG_SZ,
                    data: reg_sz("def")
                },
                Edit::SetValue {
                    key: key.clone(),
                    name: "d".into(),
                    data_type: REG_DWORD,
                    data: vec![0x3d, 0x0d, 0, 0]
                },
                Edit::SetValue {
                    key: key.clone(),
                    name: "b".into(),
                    data_type: REG_BINARY,
                    data: vec![1, 2, 3]
                },
                Edit::SetValue {
                    key: key.clone(),
                    name: "e".into(),
                    data_type: REG_EXPAND_SZ,
                    data: vec![0x25, 0, 0, 0]
                },
                Edit::DeleteValue {
                    key,
                    name: "gone".into()
                },
                Edit::DeleteKey {
                    key: "HKEY_LOCAL_MACHINE\\SYSTEM\\Old".into()
                },
            ]
        );
        // The same in UTF-16LE with a BOM.
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let again: Vec<Edit> = parse_reg(&utf16)
            .unwrap()
            .into_iter()
            .map(|o| o.edit)
            .collect();
        assert_eq!(again, ops);
    }

    #[test]
    fn errors_name_the_line() {
        let e =
            parse_reg(b"Windows Registry Editor Version 5.00\n[K]\n\"x\"=dword:zz\n").unwrap_err();
        assert_eq!(e.line, 3);
        let e = parse_reg(b"hello\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse_reg(b"REGEDIT4\n\"x\"=\"y\"\n").unwrap_err();
        assert!(e.message.contains("outside any key"));
        let e = parse_reg(b"REGEDIT4\n[K]\n\"x\"=hex:01,\\\n").unwrap_err();
        assert!(e.message.contains("ends inside"));
    }

    #[test]
    fn regedit4_text_becomes_utf16() {
        let ops = parse_reg(b"REGEDIT4\n\n[K]\n\"e\"=hex(2):41,00\n\"s\"=\"\xe9\"\n").unwrap();
        assert_eq!(
            ops[1].edit,
            Edit::SetValue {
                key: "K".into(),
                name: "e".into(),
                data_type: REG_EXPAND_SZ,
                data: vec![0x41, 0, 0, 0]
            }
        );
        assert_eq!(
            ops[2].edit,
            Edit::SetValue {
                key: "K".into(),
                name: "s".into(),
                data_type: REG_SZ,
                data: reg_sz("é")
            }
        );
    }
}
