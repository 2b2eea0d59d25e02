//! Writing keys as a `.reg` file, the way regedit exports them, and as JSON Lines.
//!
//! `.reg` files start with `Windows Registry Editor Version 5.00`, use CRLF line ends and are
//! UTF-16LE with a byte order mark (UTF-8 on request). Each key is a `[path]` line, its values,
//! and a blank line. Values are `"name"=` (or `@=` for the default value) followed by
//! `"string"`, `dword:xxxxxxxx`, or `hex(t):xx,xx,...` wrapped regedit's way: after a byte, when
//! the line has passed column 76 and more bytes follow, the line ends in `,\` and the next one
//! starts with two spaces.
//!
//! Where regedit would lose information (a REG_SZ without its terminating NUL, with an embedded
//! NUL or line break, or a REG_DWORD that is not four bytes), the value is written as hex of its
//! type instead, so that an import gives back the same bytes.

use std::io::Write;

use crate::data::{utf16_units, REG_BINARY, REG_DWORD, REG_SZ};
use crate::error::{Error, Result};
use crate::hive::Hive;
use crate::key::Key;
use crate::name::Name;
use crate::value::Value;

/// Text encoding of a `.reg` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegEncoding {
    /// UTF-16LE with a byte order mark, as regedit writes.
    Utf16,
    /// UTF-8 without a byte order mark.
    Utf8,
}

/// Options for [`export_reg`].
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The path the hive's root key is shown under, e.g. `HKEY_LOCAL_MACHINE\SYSTEM`.
    pub root_prefix: String,
    /// Output encoding.
    pub encoding: RegEncoding,
}

/// The usual mount point of a hive file, from its file name: `SYSTEM` becomes
/// `HKEY_LOCAL_MACHINE\SYSTEM`, `NTUSER.DAT` becomes `HKEY_CURRENT_USER`, and so on.
pub fn default_root_prefix(file_name: &str) -> String {
    let upper = file_name.to_ascii_uppercase();
    match upper.as_str() {
        "NTUSER.DAT" => "HKEY_CURRENT_USER".into(),
        "USRCLASS.DAT" => "HKEY_CURRENT_USER\\Software\\Classes".into(),
        "DEFAULT" => "HKEY_USERS\\.DEFAULT".into(),
        _ => {
            let stem = upper.split('.').next().unwrap_or(&upper);
            let stem = if stem.is_empty() { "HIVE" } else { stem };
            format!("HKEY_LOCAL_MACHINE\\{stem}")
        }
    }
}

/// Writes the key at `key_path` (relative to the root; `""` for the whole hive) and everything
/// under it as a `.reg` file.
pub fn export_reg<W: Write>(
    hive: &Hive,
    key_path: &str,
    opts: &ExportOptions,
    out: W,
) -> Result<()> {
    let (start, canonical) = hive.resolve(key_path)?;
    let mut w = RegWriter::new(out, opts.encoding);
    w.text("Windows Registry Editor Version 5.00\r\n")?;
    let mut line = String::new();
    hive.walk(start, &canonical, |path, key| {
        line.clear();
        line.push_str("\r\n[");
        line.push_str(&opts.root_prefix);
        if !path.is_empty() {
            if !opts.root_prefix.is_empty() {
                line.push('\\');
            }
            line.push_str(path);
        }
        line.push_str("]\r\n");
        for v in key.values()? {
            format_value(&mut line, &v)?;
        }
        w.text(&line)
    })?;
    w.text("\r\n")?;
    w.finish()
}

/// Appends one value line (with CRLF) in `.reg` syntax.
pub fn format_value(line: &mut String, v: &Value<'_>) -> Result<()> {
    let name = v.name();
    if name.is_empty() {
        line.push('@');
    } else {
        line.push('"');
        push_escaped(line, &name.to_string_lossy());
        line.push('"');
    }
    line.push('=');
    let data = v.data()?;
    format_data(line, v.data_type(), &data);
    line.push_str("\r\n");
    Ok(())
}

/// Appends the right-hand side of a value line (without line end).
pub fn format_data(line: &mut String, t: u32, data: &[u8]) {
    if t == REG_SZ {
        if let Some(s) = clean_string(data) {
            line.push('"');
            push_escaped(line, &s);
            line.push('"');
            return;
        }
    }
    if t == REG_DWORD && data.len() == 4 {
        let d = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
        line.push_str(&format!("dword:{d:08x}"));
        return;
    }
    let head = if t == REG_BINARY {
        "hex:".to_string()
    } else {
        format!("hex({t:x}):")
    };
    // Column of the current line: count from the last line break.
    let line_start = line.rfind('\n').map_or(0, |i| i + 1);
    line.push_str(&head);
    let mut col = line.len() - line_start;
    for (i, b) in data.iter().enumerate() {
        crate::data::push_hex(line, *b);
        col += 2;
        if i + 1 < data.len() {
            line.push(',');
            col += 1;
            if col > 76 {
                line.push_str("\\\r\n  ");
                col = 2;
            }
        }
    }
}

/// The string of REG_SZ data when it can be written as `"..."` and read back to the same
/// bytes: UTF-16 with exactly one NUL, at the end, no unpaired surrogates and no line breaks.
fn clean_string(data: &[u8]) -> Option<String> {
    if data.len() < 2 || !data.len().is_multiple_of(2) {
        return None;
    }
    let units: Vec<u16> = utf16_units(data).collect();
    let (last, body) = units.split_last()?;
    if *last != 0 || body.contains(&0) {
        return None;
    }
    let s = String::from_utf16(body).ok()?;
    if s.contains(['\r', '\n']) {
        return None;
    }
    Some(s)
}

/// Escapes `\` and `"` the way regedit does.
fn push_escaped(line: &mut String, s: &str) {
    for c in s.chars() {
        if c == '\\' || c == '"' {
            line.push('\\');
        }
        line.push(c);
    }
}

struct RegWriter<W: Write> {
    out: std::io::BufWriter<W>,
    encoding: RegEncoding,
    started: bool,
}

impl<W: Write> RegWriter<W> {
    fn new(out: W, encoding: RegEncoding) -> Self {
        RegWriter {
            out: std::io::BufWriter::with_capacity(1 << 16, out),
            encoding,
            started: false,
        }
    }

    fn text(&mut self, s: &str) -> Result<()> {
        match self.encoding {
            RegEncoding::Utf8 => self.out.write_all(s.as_bytes()).map_err(Error::Output),
            RegEncoding::Utf16 => {
                let mut buf = Vec::with_capacity(s.len() * 2 + 2);
                if !self.started {
                    buf.extend_from_slice(&[0xFF, 0xFE]);
                }
                for u in s.encode_utf16() {
                    buf.extend_from_slice(&u.to_le_bytes());
                }
                self.started = true;
                self.out.write_all(&buf).map_err(Error::Output)
            }
        }
    }

    fn finish(mut self) -> Result<()> {
        self.out.flush().map_err(Error::Output)
    }
}

/// Writes the key at `key_path` and everything under it as JSON Lines: one
/// `{"key":"path"}` record per key and one
/// `{"key":"path","value":"name","type":N,"data":"hex"}` record per value, in walk order.
/// Key paths are relative to the root key (`""` is the root). Returns (keys, values) written.
pub fn dump_jsonl<W: Write>(hive: &Hive, key_path: &str, mut out: W) -> Result<(u64, u64)> {
    let (start, canonical) = hive.resolve(key_path)?;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 17);
    let mut keys = 0u64;
    let mut values = 0u64;
    let mut key_json: Vec<u8> = Vec::new();
    hive.walk(start, &canonical, |path, key: &Key<'_>| {
        keys += 1;
        key_json.clear();
        json_string(&mut key_json, path);
        buf.extend_from_slice(b"{\"key\":");
        buf.extend_from_slice(&key_json);
        buf.extend_from_slice(b"}\n");
        for cell in key.value_cells()? {
            let v = Value::new(hive, cell)?;
            values += 1;
            let data = v.data()?;
            buf.extend_from_slice(b"{\"key\":");
            buf.extend_from_slice(&key_json);
            buf.extend_from_slice(b",\"value\":");
            json_name(&mut buf, v.name());
            buf.extend_from_slice(b",\"type\":");
            push_decimal(&mut buf, v.data_type());
            buf.extend_from_slice(b",\"data\":\"");
            crate::data::extend_hex(&mut buf, &data);
            buf.extend_from_slice(b"\"}\n");
            if buf.len() >= 1 << 16 {
                out.write_all(&buf).map_err(Error::Output)?;
                buf.clear();
            }
        }
        Ok(())
    })?;
    out.write_all(&buf).map_err(Error::Output)?;
    out.flush().map_err(Error::Output)?;
    Ok((keys, values))
}

/// Appends a stored name as a JSON string, without an intermediate `String` when the name is
/// plain ASCII.
fn json_name(out: &mut Vec<u8>, name: Name<'_>) {
    let raw = name.raw();
    if name.is_compressed()
        && raw
            .iter()
            .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.push(b'"');
        out.extend_from_slice(raw);
        out.push(b'"');
    } else {
        json_string(out, &name.to_string_lossy());
    }
}

fn push_decimal(out: &mut Vec<u8>, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends `s` as a JSON string literal.
pub fn json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0x08 => Some(b"\\b"),
            0x0c => Some(b"\\f"),
            0..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match esc {
            Some(e) => out.extend_from_slice(e),
            None => {
                out.extend_from_slice(b"\\u00");
                crate::data::extend_hex(out, &[b]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
    }

    #[test]
    fn hex_wraps_like_regedit() {
        // regedit wraps "DevicePath"=hex(2):%SystemRoot%\inf after 19 bytes, then 25 a line.
        let mut line = String::from("\"DevicePath\"=");
        format_data(&mut line, 2, &w("%SystemRoot%\\inf\0"));
        assert_eq!(
            line,
            "\"DevicePath\"=hex(2):25,00,53,00,79,00,73,00,74,00,65,00,6d,00,52,00,6f,00,6f,\\\r\n  \
             00,74,00,25,00,5c,00,69,00,6e,00,66,00,00,00"
        );
        let mut line = String::from("@=");
        format_data(&mut line, 7, &[0x61; 60]);
        let lines: Vec<&str> = line.split("\r\n").collect();
        assert_eq!(lines[0].len(), 2 + 7 + 23 * 3 + 1); // @=hex(7): + 23 bytes + "\"
        assert_eq!(lines[1].len(), 2 + 25 * 3 + 1);
        assert_eq!(lines[2], "  61,61,61,61,61,61,61,61,61,61,61,61");
    }

    #[test]
    fn strings_and_dwords() {
        let mut line = String::new();
        format_data(&mut line, REG_SZ, &w("C:\\x \"y\"\0"));
        assert_eq!(line, "\"C:\\\\x \\\"y\\\"\"");
        line.clear();
        format_data(&mut line, REG_SZ, &w("no terminator"));
        assert!(line.starts_with("hex(1):6e,00"));
        line.clear();
        format_data(&mut line, REG_SZ, &w("a\0b\0"));
        assert!(line.starts_with("hex(1):"));
        line.clear();
        format_data(&mut line, REG_DWORD, &3389u32.to_le_bytes());
        assert_eq!(line, "dword:00000d3d");
        line.clear();
        format_data(&mut line, REG_DWORD, &[1, 2]);
        assert_eq!(line, "hex(4):01,02");
        line.clear();
        format_data(&mut line, REG_BINARY, &[]);
        assert_eq!(line, "hex:");
        line.clear();
        format_data(&mut line, 0, &[]);
        assert_eq!(line, "hex(0):");
        line.clear();
        format_data(&mut line, 0xb, &[1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(line, "hex(b):01,00,00,00,00,00,00,00");
    }

    #[test]
    fn json_escaping() {
        let mut o = Vec::new();
        json_string(&mut o, "a\"b\\c\n\u{1}é");
        assert_eq!(String::from_utf8(o).unwrap(), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }

    #[test]
    fn root_prefixes() {
        assert_eq!(default_root_prefix("SYSTEM"), "HKEY_LOCAL_MACHINE\\SYSTEM");
        assert_eq!(
            default_root_prefix("software"),
            "HKEY_LOCAL_MACHINE\\SOFTWARE"
        );
        assert_eq!(default_root_prefix("NTUSER.DAT"), "HKEY_CURRENT_USER");
    }
}
