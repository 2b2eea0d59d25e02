//! GUIDs as Microsoft stores them (the first three fields little-endian).

use std::fmt;

/// A GUID in its on-disk byte order (Data1, Data2, Data3 little-endian, Data4 as bytes),
/// displayed in the usual `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` form (lowercase).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The all-zero GUID.
    pub const ZERO: Guid = Guid([0; 16]);

    /// Builds a GUID from its textual fields, e.g. `from_fields(0x2dc27766, 0xf623, 0x4200,
    /// [0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08])` for `2dc27766-f623-4200-9d64-115e9bfd4a08`.
    pub const fn from_fields(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Guid {
        let a = d1.to_le_bytes();
        let b = d2.to_le_bytes();
        let c = d3.to_le_bytes();
        Guid([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4],
            d4[5], d4[6], d4[7],
        ])
    }

    /// The GUID stored in `bytes` at `at` (zero when out of range).
    pub fn read(bytes: &[u8], at: usize) -> Guid {
        let mut g = [0u8; 16];
        if let Some(s) = at.checked_add(16).and_then(|end| bytes.get(at..end)) {
            g.copy_from_slice(s);
        }
        Guid(g)
    }

    /// True for the all-zero GUID.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }

    /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, with or without braces.
    pub fn parse(s: &str) -> Option<Guid> {
        let s = s.trim();
        let s = s
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(s);
        let parts: Vec<&str> = s.split('-').collect();
        let lens = [8, 4, 4, 4, 12];
        if parts.len() != 5 || parts.iter().zip(lens).any(|(p, l)| p.len() != l) {
            return None;
        }
        let d1 = u32::from_str_radix(parts.first()?, 16).ok()?;
        let d2 = u16::from_str_radix(parts.get(1)?, 16).ok()?;
        let d3 = u16::from_str_radix(parts.get(2)?, 16).ok()?;
        let tail = format!("{}{}", parts.get(3)?, parts.get(4)?);
        let mut d4 = [0u8; 8];
        for (i, b) in d4.iter_mut().enumerate() {
            *b = u8::from_str_radix(tail.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Guid::from_fields(d1, d2, d3, d4))
    }

    /// A random (version 4) GUID from the operating system's random source.
    pub fn random() -> std::io::Result<Guid> {
        use std::io::Read;
        let mut g = [0u8; 16];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut g)?;
        // Version 4 in Data3's high nibble (byte 7 on disk), variant 10xx in Data4[0].
        g[7] = (g[7] & 0x0f) | 0x40;
        g[8] = (g[8] & 0x3f) | 0x80;
        Ok(Guid(g))
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = &self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            u32::from_le_bytes([g[0], g[1], g[2], g[3]]),
            u16::from_le_bytes([g[4], g[5]]),
            u16::from_le_bytes([g[6], g[7]]),
            g[8],
            g[9],
            g[10],
            g[11],
            g[12],
            g[13],
            g[14],
            g[15]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let g = Guid::from_fields(
            0x2dc27766,
            0xf623,
            0x4200,
            [0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08],
        );
        assert_eq!(g.to_string(), "2dc27766-f623-4200-9d64-115e9bfd4a08");
        assert_eq!(g.0[..4], [0x66, 0x77, 0xc2, 0x2d]);
        assert_eq!(
            Guid::parse("{2DC27766-F623-4200-9D64-115E9BFD4A08}"),
            Some(g)
        );
        assert_eq!(Guid::parse("2dc27766-f623-4200-9d64-115e9bfd4a0"), None);
        assert_eq!(Guid::parse("2dc27766-f623-4200-9d64-115e9bfd4a0g"), None);
        let r = Guid::random().unwrap();
        assert_ne!(r, Guid::random().unwrap());
        assert_eq!(r.to_string().as_bytes()[14], b'4');
    }
}
