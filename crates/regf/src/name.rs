//! Key and value names: stored either "compressed" (one byte a character, Latin-1) or as
//! UTF-16LE, and compared the way Windows compares them: code unit by code unit after
//! upper-casing each UTF-16 unit.

use std::cmp::Ordering;
use std::fmt;

/// A key or value name as stored in the file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Name<'a> {
    raw: &'a [u8],
    compressed: bool,
}

impl<'a> Name<'a> {
    /// Wraps stored name bytes. `compressed` is the key's KEY_COMP_NAME flag or the value's
    /// VALUE_COMP_NAME flag.
    pub fn new(raw: &'a [u8], compressed: bool) -> Name<'a> {
        Name { raw, compressed }
    }

    /// The bytes as stored.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// True when stored one byte a character.
    pub fn is_compressed(&self) -> bool {
        self.compressed
    }

    /// The UTF-16 code units of the name. A trailing odd byte of a UTF-16 name is dropped.
    pub fn units(&self) -> impl Iterator<Item = u16> + 'a {
        let raw = self.raw;
        let compressed = self.compressed;
        let n = if compressed { raw.len() } else { raw.len() / 2 };
        (0..n).map(move |i| {
            if compressed {
                u16::from(raw[i])
            } else {
                u16::from_le_bytes([raw[2 * i], raw[2 * i + 1]])
            }
        })
    }

    /// Number of UTF-16 code units.
    pub fn len_units(&self) -> usize {
        if self.compressed {
            self.raw.len()
        } else {
            self.raw.len() / 2
        }
    }

    /// True for the empty name (the default value).
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Decodes the name; unpaired surrogates become U+FFFD.
    pub fn to_string_lossy(&self) -> String {
        if self.compressed {
            self.raw.iter().map(|&b| b as char).collect()
        } else {
            char::decode_utf16(self.units())
                .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect()
        }
    }

    /// Case-insensitive equality with a Rust string, the way Windows matches names.
    pub fn eq_ignore_case(&self, other: &str) -> bool {
        cmp_units_ignore_case(self.units(), other.encode_utf16()) == Ordering::Equal
    }

    /// The `lh` hash of this name.
    pub fn lh_hash(&self) -> u32 {
        lh_hash(self.units())
    }
}

impl fmt::Debug for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string_lossy())
    }
}

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

/// Upper-cases one UTF-16 code unit.
///
/// Windows upper-cases registry names with `RtlUpcaseUnicodeChar`, a one-to-one table over
/// UTF-16 code units. We use Unicode's simple uppercase mapping where it maps a BMP character
/// to exactly one BMP character, and leave the unit alone otherwise (surrogates, and
/// characters such as U+00DF whose uppercase is two characters, which Windows also keeps).
pub fn upcase(u: u16) -> u16 {
    if u < 0x80 {
        return (u as u8).to_ascii_uppercase() as u16;
    }
    let Some(c) = char::from_u32(u32::from(u)) else {
        return u;
    };
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(x), None) if (x as u32) <= 0xFFFF => x as u16,
        _ => u,
    }
}

/// A name upper-cased the way Windows compares registry names (UTF-16 units).
pub fn upcase_str(s: &str) -> Vec<u16> {
    s.encode_utf16().map(upcase).collect()
}

/// True when two registry names are equal the way Windows compares them (case-insensitive
/// over UTF-16 units, with Windows' upper-case table).
pub fn eq_ignore_case(a: &str, b: &str) -> bool {
    cmp_units_ignore_case(a.encode_utf16(), b.encode_utf16()) == Ordering::Equal
}

/// Compares two names case-insensitively, the order Windows keeps subkey lists in.
pub fn cmp_units_ignore_case(
    a: impl IntoIterator<Item = u16>,
    b: impl IntoIterator<Item = u16>,
) -> Ordering {
    let mut a = a.into_iter();
    let mut b = b.into_iter();
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => match upcase(x).cmp(&upcase(y)) {
                Ordering::Equal => {}
                o => return o,
            },
        }
    }
}

/// The `lh` hash: for each upper-cased UTF-16 unit c, h = 37 * h + c (wrapping).
pub fn lh_hash(units: impl IntoIterator<Item = u16>) -> u32 {
    units.into_iter().fold(0u32, |h, u| {
        h.wrapping_mul(37).wrapping_add(u32::from(upcase(u)))
    })
}

/// The `lh` hash of a Rust string.
pub fn lh_hash_str(s: &str) -> u32 {
    lh_hash(s.encode_utf16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upcase_table() {
        assert_eq!(upcase(b'a' as u16), b'A' as u16);
        assert_eq!(upcase(b'{' as u16), b'{' as u16);
        assert_eq!(upcase(0x00e9), 0x00c9); // é -> É
        assert_eq!(upcase(0x00df), 0x00df); // ß stays
        assert_eq!(upcase(0x0431), 0x0411); // б -> Б
        assert_eq!(upcase(0xd800), 0xd800); // lone surrogate stays
    }

    #[test]
    fn names_compare_case_insensitively() {
        let n = Name::new(b"ControlSet001", true);
        assert!(n.eq_ignore_case("CONTROLSET001"));
        assert!(n.eq_ignore_case("controlset001"));
        assert!(!n.eq_ignore_case("controlset00"));
        let utf16: Vec<u8> = "Größe"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        let n = Name::new(&utf16, false);
        assert!(n.eq_ignore_case("GRÖßE"));
        assert_eq!(n.to_string_lossy(), "Größe");
        assert_eq!(Name::new(b"\xe9t\xe9", true).to_string_lossy(), "été");
    }

    #[test]
    fn lh_hash_matches_definition() {
        // "ab" -> 37 * 'A' + 'B'
        assert_eq!(lh_hash_str("ab"), 37 * 65 + 66);
        assert_eq!(lh_hash_str("AB"), lh_hash_str("ab"));
        assert_eq!(lh_hash_str(""), 0);
    }
}
