//! Our own reading of MFT file records: the update-sequence fixups, the record header and a
//! bounds-checked walk of its attributes.
//!
//! The `ntfs` crate parses the same records, but it indexes record bytes with unchecked slices
//! in places (a non-resident header shorter than 64 bytes, a tiny or huge index record size),
//! so every record is read and checked here first, before the crate is asked about it. It also
//! gives what the crate does not expose: InitializedSize, the VCN range of an extent, the raw
//! mapping pairs and the attribute list entries.

use crate::Error;

/// The stride of the update sequence array: every 512 bytes, whatever the sector size.
const FIXUP_STRIDE: usize = 512;

/// Attribute type codes used here.
pub(crate) const AT_ATTRIBUTE_LIST: u32 = 0x20;
pub(crate) const AT_DATA: u32 = 0x80;
pub(crate) const AT_INDEX_ROOT: u32 = 0x90;
pub(crate) const AT_INDEX_ALLOCATION: u32 = 0xA0;
pub(crate) const AT_REPARSE_POINT: u32 = 0xC0;
const AT_END: u32 = 0xFFFF_FFFF;

/// Record header flag: in use.
pub(crate) const FILE_IN_USE: u16 = 0x0001;
/// Record header flag: a directory.
pub(crate) const FILE_IS_DIRECTORY: u16 = 0x0002;

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    b.get(off..off.checked_add(2)?)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
}
fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

pub(crate) fn le16(b: &[u8], off: usize) -> Option<u16> {
    u16_at(b, off)
}
pub(crate) fn le32(b: &[u8], off: usize) -> Option<u32> {
    u32_at(b, off)
}
pub(crate) fn le64(b: &[u8], off: usize) -> Option<u64> {
    u64_at(b, off)
}

/// Applies the update sequence fixups of a multi-sector record (FILE, INDX, RSTR) in place.
/// `what` names the record in messages.
pub(crate) fn apply_fixups(data: &mut [u8], what: &dyn Fn(String) -> Error) -> Result<(), Error> {
    let usa_ofs =
        usize::from(u16_at(data, 4).ok_or_else(|| what("shorter than its header".into()))?);
    let usa_count =
        usize::from(u16_at(data, 6).ok_or_else(|| what("shorter than its header".into()))?);
    let sectors = data.len() / FIXUP_STRIDE;
    if !data.len().is_multiple_of(FIXUP_STRIDE) || sectors == 0 {
        return Err(what(format!(
            "size {} is not a multiple of {FIXUP_STRIDE}",
            data.len()
        )));
    }
    if usa_count != sectors + 1 {
        return Err(what(format!(
            "update sequence count {usa_count} does not match its {sectors} sectors (expected {})",
            sectors + 1
        )));
    }
    let usa_end = usa_ofs
        .checked_add(usa_count * 2)
        .filter(|&e| usa_ofs >= 8 && usa_ofs % 2 == 0 && e <= FIXUP_STRIDE - 2)
        .ok_or_else(|| {
            what(format!(
                "update sequence array at {usa_ofs:#x} (+{} bytes) does not fit its first sector",
                usa_count * 2
            ))
        })?;
    let usn = [data[usa_ofs], data[usa_ofs + 1]];
    for i in 0..sectors {
        let tail = (i + 1) * FIXUP_STRIDE - 2;
        let fix = usa_ofs + 2 + 2 * i;
        if fix + 2 > usa_end {
            return Err(what("update sequence array too short".into()));
        }
        if data[tail..tail + 2] != usn {
            return Err(what(format!(
                "fixup mismatch in sector {i}: bytes {:02x}{:02x} at {tail:#x}, update sequence number {:02x}{:02x} (a torn or damaged write)",
                data[tail], data[tail + 1], usn[0], usn[1]
            )));
        }
        let (a, b) = (data[fix], data[fix + 1]);
        data[tail] = a;
        data[tail + 1] = b;
    }
    Ok(())
}

/// One attribute of a record, with every offset checked against the record.
#[derive(Debug, Clone)]
pub(crate) struct RawAttr {
    /// Attribute type code.
    pub ty: u32,
    /// Its length.
    pub length: usize,
    /// Name (UTF-16 decoded lossily).
    pub name: String,
    /// Attribute flags (compressed 0x0001, encrypted 0x4000, sparse 0x8000).
    pub flags: u16,
    /// Instance number, unique in its record.
    pub instance: u16,
    /// The resident value, or the non-resident header fields.
    pub body: AttrBody,
}

/// Resident value or non-resident header.
#[derive(Debug, Clone)]
pub(crate) enum AttrBody {
    /// The value is in the record: `offset..offset+len` of the record bytes.
    Resident { start: usize, len: usize },
    /// The value is in clusters named by the mapping pairs.
    NonResident(NonResident),
}

/// The fields of a non-resident attribute header.
#[derive(Debug, Clone)]
pub(crate) struct NonResident {
    pub lowest_vcn: i64,
    pub highest_vcn: i64,
    /// Byte range of the mapping pairs in the record.
    pub runs: std::ops::Range<usize>,
    pub allocated_size: u64,
    pub data_size: u64,
    pub initialized_size: u64,
}

/// A checked MFT record.
#[derive(Debug, Clone)]
pub(crate) struct RawRecord {
    /// Its number.
    pub number: u64,
    /// Volume offset of the record.
    pub offset: u64,
    /// The bytes after fixups.
    pub data: Vec<u8>,
    /// Sequence number.
    pub sequence: u16,
    /// Header flags.
    pub flags: u16,
    /// Base record reference (0 for a base record).
    pub base: u64,
    /// The attributes, in record order.
    pub attrs: Vec<RawAttr>,
}

impl RawRecord {
    /// Checks and parses the record bytes read at `offset`.
    pub(crate) fn parse(number: u64, offset: u64, mut data: Vec<u8>) -> Result<RawRecord, Error> {
        let bad = |detail: String| Error::Record {
            record: number,
            offset,
            detail,
        };
        if data.get(0..4) != Some(b"FILE".as_slice()) {
            let sig = data.get(0..4).unwrap_or(&[]);
            return Err(bad(format!(
                "signature {:?} is not \"FILE\"",
                String::from_utf8_lossy(sig)
            )));
        }
        apply_fixups(&mut data, &bad)?;
        let size = data.len();
        let sequence = u16_at(&data, 16).unwrap_or(0);
        let attrs_ofs = usize::from(u16_at(&data, 20).unwrap_or(0));
        let flags = u16_at(&data, 22).unwrap_or(0);
        let in_use = u32_at(&data, 24).unwrap_or(0) as usize;
        let allocated = u32_at(&data, 28).unwrap_or(0) as usize;
        let base = u64_at(&data, 32).unwrap_or(0) & 0x0000_FFFF_FFFF_FFFF;
        if allocated != size {
            return Err(bad(format!(
                "allocated size {allocated} is not the record size {size}"
            )));
        }
        if in_use > size || in_use < 48 {
            return Err(bad(format!(
                "bytes in use {in_use} lie outside 48..={size}"
            )));
        }
        if attrs_ofs < 42 || attrs_ofs % 8 != 0 || attrs_ofs >= in_use {
            return Err(bad(format!(
                "first attribute offset {attrs_ofs:#x} is outside the used part (..{in_use:#x}) or unaligned"
            )));
        }
        let mut attrs = Vec::new();
        let mut off = attrs_ofs;
        loop {
            let ty = u32_at(&data, off)
                .filter(|_| off + 4 <= in_use)
                .ok_or_else(|| {
                    bad(format!(
                        "attribute list runs past bytes in use at {off:#x} without an end marker"
                    ))
                })?;
            if ty == AT_END {
                break;
            }
            let a = parse_attr(&data, off, in_use)
                .map_err(|d| bad(format!("attribute at {off:#x} (type {ty:#x}): {d}")))?;
            off += a.length;
            attrs.push(a);
        }
        Ok(RawRecord {
            number,
            offset,
            data,
            sequence,
            flags,
            base,
            attrs,
        })
    }

    /// Whether the record is in use.
    pub(crate) fn in_use(&self) -> bool {
        self.flags & FILE_IN_USE != 0
    }

    /// Whether the record is a directory.
    pub(crate) fn is_directory(&self) -> bool {
        self.flags & FILE_IS_DIRECTORY != 0
    }

    /// The resident value bytes of an attribute.
    pub(crate) fn resident_value(&self, a: &RawAttr) -> Option<&[u8]> {
        match a.body {
            AttrBody::Resident { start, len } => self.data.get(start..start + len),
            AttrBody::NonResident(_) => None,
        }
    }

    /// The mapping pairs bytes of a non-resident attribute.
    pub(crate) fn runs_bytes(&self, a: &RawAttr) -> Option<&[u8]> {
        match &a.body {
            AttrBody::NonResident(nr) => self.data.get(nr.runs.clone()),
            AttrBody::Resident { .. } => None,
        }
    }
}

fn parse_attr(data: &[u8], off: usize, in_use: usize) -> Result<RawAttr, String> {
    let ty = u32_at(data, off).ok_or("truncated")?;
    let length = u32_at(data, off + 4).ok_or("truncated header")? as usize;
    if length < 24 || !length.is_multiple_of(8) {
        return Err(format!(
            "length {length} is below 24 or not a multiple of 8"
        ));
    }
    let end = off
        .checked_add(length)
        .filter(|&e| e <= in_use)
        .ok_or_else(|| format!("length {length} runs past bytes in use ({in_use:#x})"))?;
    let attr = &data[off..end];
    let non_resident = attr[8];
    let name_len = usize::from(attr[9]) * 2;
    let name_ofs = usize::from(u16_at(attr, 10).unwrap_or(0));
    let flags = u16_at(attr, 12).unwrap_or(0);
    let instance = u16_at(attr, 14).unwrap_or(0);
    let name = if name_len == 0 {
        String::new()
    } else {
        let raw = attr
            .get(name_ofs..name_ofs + name_len)
            .filter(|_| name_ofs >= 16)
            .ok_or_else(|| {
                format!("name at {name_ofs:#x}+{name_len} lies outside the attribute")
            })?;
        let units: Vec<u16> = raw
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    };
    let body = match non_resident {
        0 => {
            let len = u32_at(attr, 16).unwrap_or(0) as usize;
            let vofs = usize::from(u16_at(attr, 20).unwrap_or(0));
            if vofs < 24 || vofs.checked_add(len).is_none_or(|e| e > length) {
                return Err(format!(
                    "resident value at {vofs:#x}+{len} lies outside the attribute ({length} bytes)"
                ));
            }
            AttrBody::Resident {
                start: off + vofs,
                len,
            }
        }
        1 => {
            // Compressed and sparse attributes carry an 8-byte compressed size at 64.
            let header = if flags & 0x8001 != 0 { 72 } else { 64 };
            if length < header {
                return Err(format!(
                    "non-resident attribute of {length} bytes is shorter than its {header}-byte header"
                ));
            }
            let lowest_vcn = u64_at(attr, 16).unwrap_or(0) as i64;
            let highest_vcn = u64_at(attr, 24).unwrap_or(0) as i64;
            let runs_ofs = usize::from(u16_at(attr, 32).unwrap_or(0));
            let allocated_size = u64_at(attr, 40).unwrap_or(0);
            let data_size = u64_at(attr, 48).unwrap_or(0);
            let initialized_size = u64_at(attr, 56).unwrap_or(0);
            if runs_ofs < 64 || runs_ofs >= length {
                return Err(format!(
                    "mapping pairs offset {runs_ofs:#x} lies outside the attribute ({length} bytes)"
                ));
            }
            if lowest_vcn < 0 || highest_vcn < -1 || highest_vcn < lowest_vcn - 1 {
                return Err(format!("VCN range {lowest_vcn}..={highest_vcn} is invalid"));
            }
            if name_len > 0 && (name_ofs < 64 || name_ofs + name_len > runs_ofs) {
                return Err(format!(
                    "name at {name_ofs:#x} overlaps the header or the mapping pairs"
                ));
            }
            AttrBody::NonResident(NonResident {
                lowest_vcn,
                highest_vcn,
                runs: off + runs_ofs..end,
                allocated_size,
                data_size,
                initialized_size,
            })
        }
        x => return Err(format!("non-resident flag is {x}, not 0 or 1")),
    };
    Ok(RawAttr {
        ty,
        length,
        name,
        flags,
        instance,
        body,
    })
}

/// One entry of an $ATTRIBUTE_LIST value.
#[derive(Debug, Clone)]
pub(crate) struct ListEntry {
    pub ty: u32,
    pub name: String,
    pub lowest_vcn: u64,
    pub record: u64,
    pub sequence: u16,
    pub instance: u16,
}

/// Parses an $ATTRIBUTE_LIST value; every entry must lie wholly inside it.
pub(crate) fn parse_attribute_list(value: &[u8]) -> Result<Vec<ListEntry>, String> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while off < value.len() {
        let e = &value[off..];
        let ty = u32_at(e, 0).ok_or_else(|| format!("entry at {off:#x} is truncated"))?;
        let len =
            usize::from(u16_at(e, 4).ok_or_else(|| format!("entry at {off:#x} is truncated"))?);
        if len < 26 || len > e.len() {
            return Err(format!(
                "entry at {off:#x} has length {len} (must be 26..={})",
                e.len()
            ));
        }
        let name_len = usize::from(e[6]) * 2;
        let name_ofs = usize::from(e[7]);
        let name = if name_len == 0 {
            String::new()
        } else {
            let raw = e
                .get(name_ofs..name_ofs + name_len)
                .filter(|_| name_ofs >= 26 && name_ofs + name_len <= len)
                .ok_or_else(|| format!("entry at {off:#x}: name lies outside the entry"))?;
            let units: Vec<u16> = raw
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        };
        let reference = u64_at(e, 16).unwrap_or(0);
        out.push(ListEntry {
            ty,
            name,
            lowest_vcn: u64_at(e, 8).unwrap_or(0),
            record: reference & 0x0000_FFFF_FFFF_FFFF,
            sequence: (reference >> 48) as u16,
            instance: u16_at(e, 24).unwrap_or(0),
        });
        off += len;
    }
    Ok(out)
}

/// Decoded mapping pairs of one extent: `(vcn, lcn or None for sparse, clusters)`.
pub(crate) type Extent = Vec<(u64, Option<u64>, u64)>;

/// Decodes the mapping pairs of one extent starting at `lowest_vcn`; checks that it ends at
/// `highest_vcn + 1`. LCNs are checked to be non-negative here; the caller checks them
/// against the volume.
pub(crate) fn decode_runs(
    bytes: &[u8],
    lowest_vcn: i64,
    highest_vcn: i64,
) -> Result<Extent, String> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    let mut vcn = u64::try_from(lowest_vcn).map_err(|_| "negative lowest VCN".to_string())?;
    let mut lcn: i64 = 0;
    loop {
        let Some(&h) = bytes.get(pos) else {
            return Err(format!(
                "mapping pairs end at byte {pos} without a terminator"
            ));
        };
        if h == 0 {
            break;
        }
        let ls = usize::from(h & 0x0f);
        let os = usize::from(h >> 4);
        if ls == 0 || ls > 8 || os > 8 {
            return Err(format!(
                "run header {h:#04x} at byte {pos} has invalid field sizes"
            ));
        }
        let field = |start: usize, n: usize| -> Option<i64> {
            let s = bytes.get(start..start + n)?;
            let mut v: i64 = if s.last().is_some_and(|&b| b & 0x80 != 0) {
                -1
            } else {
                0
            };
            for &b in s.iter().rev() {
                v = (v << 8) | i64::from(b);
            }
            Some(v)
        };
        let len = field(pos + 1, ls).ok_or_else(|| format!("run at byte {pos} is truncated"))?;
        if len <= 0 {
            return Err(format!("run at byte {pos} has length {len}"));
        }
        let len = len as u64;
        let target = if os == 0 {
            None
        } else {
            let delta =
                field(pos + 1 + ls, os).ok_or_else(|| format!("run at byte {pos} is truncated"))?;
            lcn = lcn
                .checked_add(delta)
                .filter(|&l| l >= 0)
                .ok_or_else(|| format!("run at byte {pos} moves the LCN below 0 or past 2^63"))?;
            Some(lcn as u64)
        };
        out.push((vcn, target, len));
        vcn = vcn
            .checked_add(len)
            .ok_or_else(|| format!("run at byte {pos} overflows the VCN"))?;
        pos += 1 + ls + os;
    }
    let expected_end = highest_vcn
        .checked_add(1)
        .and_then(|v| u64::try_from(v).ok());
    if expected_end != Some(vcn) {
        return Err(format!(
            "runs cover VCNs {lowest_vcn}..{vcn}, but the header says ..={highest_vcn}"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_runs_signed_and_sparse() {
        // 0x21: 1 length byte, 2 offset bytes. Run 1: 0x10 clusters at 0x1000. Run 2: sparse
        // 8 clusters. Run 3: 4 clusters at 0x1000 - 0x100 = 0xF00.
        let b = [
            0x21, 0x10, 0x00, 0x10, 0x01, 0x08, 0x21, 0x04, 0x00, 0xFF, 0x00,
        ];
        let r = decode_runs(&b, 0, 0x10 + 8 + 4 - 1).unwrap();
        assert_eq!(
            r,
            vec![
                (0, Some(0x1000), 0x10),
                (0x10, None, 8),
                (0x18, Some(0xF00), 4)
            ]
        );
        assert!(decode_runs(&b, 0, 5).unwrap_err().contains("header says"));
        assert!(decode_runs(&b[..3], 0, 0xF)
            .unwrap_err()
            .contains("truncated"));
        assert!(decode_runs(&[0x11, 0x01, 0x80, 0], 0, 0)
            .unwrap_err()
            .contains("below 0"));
        assert!(decode_runs(&[0x01, 0x00, 0], 0, 0)
            .unwrap_err()
            .contains("length 0"));
        assert!(
            decode_runs(&[0x11, 0x01], 0, 0)
                .unwrap_err()
                .contains("truncated")
                || decode_runs(&[0x11, 0x01], 0, 0)
                    .unwrap_err()
                    .contains("terminator")
        );
    }

    #[test]
    fn fixups_detect_torn_sectors() {
        let mut rec = vec![0u8; 1024];
        rec[0..4].copy_from_slice(b"FILE");
        rec[4] = 0x30; // usa offset
        rec[6] = 3; // count
        rec[0x30] = 0xAB;
        rec[0x31] = 0xCD;
        rec[0x32] = 1;
        rec[0x34] = 2;
        rec[510] = 0xAB;
        rec[511] = 0xCD;
        rec[1022] = 0xAB;
        rec[1023] = 0xCD;
        let e = |d: String| Error::Corrupt { detail: d };
        let mut ok = rec.clone();
        apply_fixups(&mut ok, &e).unwrap();
        assert_eq!((ok[510], ok[1022]), (1, 2));
        rec[1023] = 0;
        let err = apply_fixups(&mut rec, &e).unwrap_err().to_string();
        assert!(err.contains("sector 1"), "{err}");
    }
}
