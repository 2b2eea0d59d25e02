//! Value types and decoding value data for display.

use std::fmt;

/// REG_NONE.
pub const REG_NONE: u32 = 0;
/// REG_SZ.
pub const REG_SZ: u32 = 1;
/// REG_EXPAND_SZ.
pub const REG_EXPAND_SZ: u32 = 2;
/// REG_BINARY.
pub const REG_BINARY: u32 = 3;
/// REG_DWORD (little endian).
pub const REG_DWORD: u32 = 4;
/// REG_DWORD_BIG_ENDIAN.
pub const REG_DWORD_BIG_ENDIAN: u32 = 5;
/// REG_LINK.
pub const REG_LINK: u32 = 6;
/// REG_MULTI_SZ.
pub const REG_MULTI_SZ: u32 = 7;
/// REG_RESOURCE_LIST.
pub const REG_RESOURCE_LIST: u32 = 8;
/// REG_FULL_RESOURCE_DESCRIPTOR.
pub const REG_FULL_RESOURCE_DESCRIPTOR: u32 = 9;
/// REG_RESOURCE_REQUIREMENTS_LIST.
pub const REG_RESOURCE_REQUIREMENTS_LIST: u32 = 10;
/// REG_QWORD (little endian).
pub const REG_QWORD: u32 = 11;

/// The `REG_*` name of a type, or `None` for a type Windows does not define.
pub fn type_name(t: u32) -> Option<&'static str> {
    Some(match t {
        REG_NONE => "REG_NONE",
        REG_SZ => "REG_SZ",
        REG_EXPAND_SZ => "REG_EXPAND_SZ",
        REG_BINARY => "REG_BINARY",
        REG_DWORD => "REG_DWORD",
        REG_DWORD_BIG_ENDIAN => "REG_DWORD_BIG_ENDIAN",
        REG_LINK => "REG_LINK",
        REG_MULTI_SZ => "REG_MULTI_SZ",
        REG_RESOURCE_LIST => "REG_RESOURCE_LIST",
        REG_FULL_RESOURCE_DESCRIPTOR => "REG_FULL_RESOURCE_DESCRIPTOR",
        REG_RESOURCE_REQUIREMENTS_LIST => "REG_RESOURCE_REQUIREMENTS_LIST",
        REG_QWORD => "REG_QWORD",
        _ => return None,
    })
}

/// The type's name for display: `REG_SZ`, or `0x1234` for an unknown type.
pub fn type_label(t: u32) -> String {
    type_name(t).map_or_else(|| format!("{t:#x}"), str::to_string)
}

/// Parses `REG_SZ`-style names (case-insensitive, `REG_` optional) or a number.
pub fn parse_type(s: &str) -> Option<u32> {
    let u = s.trim().to_ascii_uppercase();
    let u = u.strip_prefix("REG_").unwrap_or(&u);
    if let Some(h) = u.strip_prefix("0X") {
        return u32::from_str_radix(h, 16).ok();
    }
    if let Ok(n) = u.parse() {
        return Some(n);
    }
    (0..=REG_QWORD).find(|&t| {
        type_name(t).is_some_and(|n| &n[4..] == u)
            || (t == REG_DWORD && u == "DWORD_LITTLE_ENDIAN")
            || (t == REG_QWORD && u == "QWORD_LITTLE_ENDIAN")
    })
}

/// Value data decoded by type, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegData {
    /// REG_SZ, REG_EXPAND_SZ, REG_LINK: the string up to the first NUL.
    String(String),
    /// REG_MULTI_SZ: the strings, without the empty terminator.
    MultiString(Vec<String>),
    /// REG_DWORD and REG_DWORD_BIG_ENDIAN of exactly four bytes.
    Dword(u32),
    /// REG_QWORD of exactly eight bytes.
    Qword(u64),
    /// Everything else, and any of the above whose length is wrong.
    Bytes(Vec<u8>),
}

impl RegData {
    /// Decodes `data` of type `t`.
    pub fn decode(t: u32, data: &[u8]) -> RegData {
        match t {
            REG_SZ | REG_EXPAND_SZ | REG_LINK => RegData::String(utf16_until_nul(data)),
            REG_MULTI_SZ => RegData::MultiString(multi_sz(data)),
            REG_DWORD if data.len() == 4 => {
                RegData::Dword(u32::from_le_bytes([data[0], data[1], data[2], data[3]]))
            }
            // The one place where big-endian is the format: REG_DWORD_BIG_ENDIAN.
            #[allow(clippy::big_endian_bytes)]
            REG_DWORD_BIG_ENDIAN if data.len() == 4 => {
                RegData::Dword(u32::from_be_bytes([data[0], data[1], data[2], data[3]]))
            }
            REG_QWORD if data.len() == 8 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(data);
                RegData::Qword(u64::from_le_bytes(b))
            }
            _ => RegData::Bytes(data.to_vec()),
        }
    }
}

impl fmt::Display for RegData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegData::String(s) => f.write_str(s),
            RegData::MultiString(v) => f.write_str(&v.join("\\0")),
            RegData::Dword(d) => write!(f, "{d:#010x} ({d})"),
            RegData::Qword(q) => write!(f, "{q:#018x} ({q})"),
            RegData::Bytes(b) => f.write_str(&hex(b, " ")),
        }
    }
}

/// The little-endian `u32` at byte `at` of `bytes`, if it is all there.
pub fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The little-endian `u64` at byte `at` of `bytes`, if it is all there.
pub fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(8)?)?;
    let mut w = [0u8; 8];
    w.copy_from_slice(b);
    Some(u64::from_le_bytes(w))
}

/// REG_DWORD data as a number: its first four bytes, little-endian (`None` when shorter).
pub fn dword(data: &[u8]) -> Option<u32> {
    u32_at(data, 0)
}

/// UTF-16LE bytes of a string, without a terminating NUL.
pub fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// UTF-16LE bytes of a string, with a terminating NUL (REG_SZ and REG_EXPAND_SZ data).
pub fn reg_sz(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain(std::iter::once(0))
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// REG_MULTI_SZ data: each string NUL-terminated, then an empty string.
pub fn reg_multi_sz(items: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in items {
        out.extend(reg_sz(s));
    }
    out.extend([0, 0]);
    out
}

/// UTF-16LE units of `data` (a trailing odd byte is ignored).
pub fn utf16_units(data: &[u8]) -> impl Iterator<Item = u16> + '_ {
    data.chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
}

/// Decodes UTF-16LE up to the first NUL, replacing unpaired surrogates.
pub fn utf16_until_nul(data: &[u8]) -> String {
    char::decode_utf16(utf16_units(data).take_while(|&u| u != 0))
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// Splits REG_MULTI_SZ data into its strings; stops at the empty string that ends the list.
pub fn multi_sz(data: &[u8]) -> Vec<String> {
    let units: Vec<u16> = utf16_units(data).collect();
    let mut out = Vec::new();
    for part in units.split(|&u| u == 0) {
        if part.is_empty() {
            break;
        }
        out.push(
            char::decode_utf16(part.iter().copied())
                .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect(),
        );
    }
    out
}

/// Lowercase hex of `data`, bytes joined by `sep`.
pub fn hex(data: &[u8], sep: &str) -> String {
    let mut s = String::with_capacity(data.len() * (2 + sep.len()));
    for (i, b) in data.iter().enumerate() {
        if i > 0 {
            s.push_str(sep);
        }
        push_hex(&mut s, *b);
    }
    s
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends two lowercase hex digits.
pub fn push_hex(s: &mut String, b: u8) {
    s.push(HEX[(b >> 4) as usize] as char);
    s.push(HEX[(b & 15) as usize] as char);
}

/// Two lowercase hex digits for every byte value.
static HEX_PAIRS: [[u8; 2]; 256] = {
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 15]];
        i += 1;
    }
    t
};

/// Appends lowercase hex of `data` to a byte buffer (fast path for dumps).
pub fn extend_hex(out: &mut Vec<u8>, data: &[u8]) {
    let start = out.len();
    out.resize(start + data.len() * 2, 0);
    for (pair, &b) in out[start..].chunks_exact_mut(2).zip(data) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(b)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
    }

    #[test]
    fn decodes_each_type() {
        assert_eq!(
            RegData::decode(REG_SZ, &w("abc\0junk")),
            RegData::String("abc".into())
        );
        assert_eq!(
            RegData::decode(REG_MULTI_SZ, &w("a\0bc\0\0")),
            RegData::MultiString(vec!["a".into(), "bc".into()])
        );
        assert_eq!(RegData::decode(REG_DWORD, &[1, 0, 0, 0]), RegData::Dword(1));
        assert_eq!(
            RegData::decode(REG_DWORD_BIG_ENDIAN, &[0, 0, 0, 1]),
            RegData::Dword(1)
        );
        assert_eq!(
            RegData::decode(REG_QWORD, &[2, 0, 0, 0, 0, 0, 0, 0]),
            RegData::Qword(2)
        );
        assert_eq!(
            RegData::decode(REG_DWORD, &[1, 0]),
            RegData::Bytes(vec![1, 0])
        );
        assert_eq!(RegData::decode(0x1234, &[9]), RegData::Bytes(vec![9]));
        assert_eq!(RegData::Dword(3389).to_string(), "0x00000d3d (3389)");
        assert_eq!(RegData::Bytes(vec![0xab, 1]).to_string(), "ab 01");
    }

    #[test]
    fn parses_type_names() {
        assert_eq!(parse_type("REG_SZ"), Some(REG_SZ));
        assert_eq!(parse_type("reg_dword"), Some(REG_DWORD));
        assert_eq!(parse_type("REG_DWORD_LITTLE_ENDIAN"), Some(REG_DWORD));
        assert_eq!(parse_type("qword"), Some(REG_QWORD));
        assert_eq!(parse_type("0x20"), Some(0x20));
        assert_eq!(parse_type("REG_BOGUS"), None);
    }
}

#[cfg(test)]
mod helper_tests {
    use super::*;

    #[test]
    fn shared_helpers_read_and_encode_as_documented() {
        assert_eq!(u32_at(&[1, 0, 0, 0, 2], 0), Some(1));
        assert_eq!(u32_at(&[1, 0, 0, 0, 2], 1), Some(0x0200_0000));
        assert_eq!(u32_at(&[1, 0, 0], 0), None);
        assert_eq!(u32_at(&[0; 8], usize::MAX), None);
        assert_eq!(u64_at(&7u64.to_le_bytes(), 0), Some(7));
        assert_eq!(dword(&[0x3d, 0x0d, 0, 0, 9]), Some(0xd3d));
        assert_eq!(utf16le("Aé"), vec![0x41, 0, 0xe9, 0]);
        assert_eq!(reg_sz("A"), vec![0x41, 0, 0, 0]);
        assert_eq!(
            reg_multi_sz(&["a", "b"]),
            vec![b'a', 0, 0, 0, b'b', 0, 0, 0, 0, 0]
        );
        assert_eq!(utf16_until_nul(&reg_sz("hello")), "hello");
        assert!(crate::name::eq_ignore_case(
            "EnableFirewall",
            "ENABLEfirewall"
        ));
        assert!(crate::name::eq_ignore_case("é", "É"));
        assert!(!crate::name::eq_ignore_case("a", "ab"));
        assert_eq!(crate::name::upcase_str("ab"), vec![0x41, 0x42]);
    }

    #[test]
    fn typed_value_readers() {
        use crate::build::{build_hive, BuildOptions, KeySpec};
        let spec = KeySpec::new("").subkey(
            KeySpec::new("K")
                .value("d", REG_DWORD, 7u32.to_le_bytes())
                .value("s", REG_SZ, reg_sz("text"))
                .value("short", REG_DWORD, vec![1, 2]),
        );
        let h =
            crate::Hive::from_bytes(build_hive(&spec, &BuildOptions::default()).unwrap()).unwrap();
        let k = h.key("K").unwrap();
        assert_eq!(k.dword_value("D"), Some(7));
        assert_eq!(k.dword_value("s"), None);
        assert_eq!(k.dword_value("short"), None);
        assert_eq!(k.dword_value("missing"), None);
        assert_eq!(k.string_value("S").as_deref(), Some("text"));
        assert_eq!(k.string_value("d"), None);
        assert_eq!(k.decoded_value("d"), Some(RegData::Dword(7)));
    }
}
