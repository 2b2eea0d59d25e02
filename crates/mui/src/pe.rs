//! The PE layer: headers, the section table, and mapping relative virtual addresses (RVAs) to
//! bytes of the file. Only what the resource reader needs.

use crate::{Error, Result};
use object::pe::{ImageDosHeader, ImageNtHeaders32, ImageNtHeaders64};
use object::pe::{IMAGE_DIRECTORY_ENTRY_RESOURCE, IMAGE_NT_OPTIONAL_HDR32_MAGIC};
use object::pe::{IMAGE_NT_OPTIONAL_HDR64_MAGIC, IMAGE_NT_SIGNATURE};
use object::read::pe::{ImageNtHeaders, SectionTable};
use object::LittleEndian as LE;

/// One section as the loader maps it: `[va, va + virtual_len)` in memory, of which the first
/// `file_len` bytes come from the file at `file_off` (clipped to the end of the file).
#[derive(Debug, Clone, Copy)]
struct Section {
    name: [u8; 8],
    va: u32,
    virtual_len: u32,
    file_off: u64,
    /// Bytes present in the file (after clipping).
    file_len: u32,
    /// Bytes the header claims are in the file.
    raw_len: u32,
}

/// A PE image over the file's bytes.
#[derive(Debug)]
pub(crate) struct Image<'a> {
    data: &'a [u8],
    sections: Vec<Section>,
    /// PE32+ (64-bit) or PE32.
    pub(crate) is_64: bool,
    /// The resource data directory: RVA and size.
    resource: Option<(u32, u32)>,
}

/// Bytes at an RVA: the slice, its file offset, and whether it was cut short (by the end of
/// the section's file data or of the file).
#[derive(Debug)]
pub(crate) struct Mapped<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) file_off: u64,
    pub(crate) short: bool,
}

impl<'a> Image<'a> {
    /// Parses the DOS header, the NT headers (PE32 or PE32+) and the section table.
    pub(crate) fn parse(data: &'a [u8]) -> Result<Self> {
        if data.get(..2) != Some(b"MZ".as_slice()) {
            return Err(Error::NotPe {
                detail: format!("no MZ signature at offset 0 ({})", looks_like(data)),
            });
        }
        if data.len() < 64 {
            return Err(Error::NotPe {
                detail: format!(
                    "an MZ signature but only {} bytes: no room for the 64-byte DOS header, so no PE signature",
                    data.len()
                ),
            });
        }
        let dos = ImageDosHeader::parse(data).map_err(|e| Error::Headers {
            offset: 0,
            detail: format!("DOS header: {e}"),
        })?;
        let nt_off = u64::from(dos.nt_headers_offset());
        let sig = read_u32(data, nt_off);
        if sig != Some(IMAGE_NT_SIGNATURE) {
            return Err(Error::NotPe {
                detail: format!(
                    "no PE signature at e_lfanew = {nt_off:#x} (an MZ executable for DOS, or a truncated file of {} bytes)",
                    data.len()
                ),
            });
        }
        // The optional header's magic follows the 4-byte signature and the 20-byte file header.
        let magic_off = nt_off.saturating_add(24);
        let magic = read_u16(data, magic_off).ok_or_else(|| Error::Headers {
            offset: magic_off,
            detail: "optional header past the end of the file".into(),
        })?;
        match magic {
            IMAGE_NT_OPTIONAL_HDR32_MAGIC => {
                Self::parse_as::<ImageNtHeaders32>(data, nt_off, false)
            }
            IMAGE_NT_OPTIONAL_HDR64_MAGIC => Self::parse_as::<ImageNtHeaders64>(data, nt_off, true),
            other => Err(Error::Headers {
                offset: magic_off,
                detail: format!(
                    "optional header magic {other:#06x} is neither PE32 (0x10b) nor PE32+ (0x20b)"
                ),
            }),
        }
    }

    fn parse_as<H: ImageNtHeaders>(data: &'a [u8], nt_off: u64, is_64: bool) -> Result<Self> {
        let mut offset = nt_off;
        let (nt, dirs) = H::parse(data, &mut offset).map_err(|e| Error::Headers {
            offset: nt_off,
            detail: format!("NT headers: {e}"),
        })?;
        let table: SectionTable<'a> = nt.sections(data, offset).map_err(|e| Error::Headers {
            offset,
            detail: format!(
                "section table ({} sections): {e}",
                nt.file_header().number_of_sections.get(LE)
            ),
        })?;
        let file_len = data.len() as u64;
        let sections = table
            .iter()
            .map(|s| {
                let va = s.virtual_address.get(LE);
                let vsize = s.virtual_size.get(LE);
                let raw_len = s.size_of_raw_data.get(LE);
                let file_off = u64::from(s.pointer_to_raw_data.get(LE));
                // The loader maps min(VirtualSize, SizeOfRawData) bytes from the file; a zero
                // VirtualSize (old linkers) means SizeOfRawData.
                let virtual_len = if vsize == 0 { raw_len } else { vsize };
                let claimed = u64::from(raw_len.min(virtual_len));
                let present = file_len.saturating_sub(file_off).min(claimed);
                Section {
                    name: s.name,
                    va,
                    virtual_len,
                    file_off,
                    file_len: u32::try_from(present).unwrap_or(u32::MAX),
                    raw_len: raw_len.min(virtual_len),
                }
            })
            .collect();
        let resource = dirs
            .get(IMAGE_DIRECTORY_ENTRY_RESOURCE)
            .map(|d| (d.virtual_address.get(LE), d.size.get(LE)))
            .filter(|&(rva, _)| rva != 0);
        Ok(Image {
            data,
            sections,
            is_64,
            resource,
        })
    }

    /// The resource directory: the bytes from its RVA to the end of the section holding it
    /// (offsets inside the tree are relative to its start), and its file offset. Notes are
    /// pushed for a size that does not fit and for a section cut short by the end of the file.
    pub(crate) fn resource_directory(&self, notes: &mut Vec<(u64, String)>) -> Result<Mapped<'a>> {
        let (rva, size) = self.resource.ok_or_else(|| Error::NoResources {
            detail: "the resource data directory (entry 2) is empty".into(),
        })?;
        let sec = self.section_of(rva).ok_or_else(|| Error::NoResources {
            detail: format!(
                "the resource directory's RVA {rva:#x} is in no section ({})",
                self.section_list()
            ),
        })?;
        let m = self
            .map(rva, sec.file_len)
            .ok_or_else(|| Error::NoResources {
                detail: format!(
                    "the resource directory's RVA {rva:#x} is past the file data of section {}",
                    name_of(&sec.name)
                ),
            })?;
        let truncated = sec.file_len < sec.raw_len;
        if truncated {
            notes.push((
                sec.file_off,
                format!(
                    "section {} claims {:#x} bytes at file offset {:#x} but the file ends at {:#x} (truncated?)",
                    name_of(&sec.name),
                    sec.raw_len,
                    sec.file_off,
                    self.data.len()
                ),
            ));
        }
        if !truncated && (m.bytes.len() as u64) < u64::from(size) {
            notes.push((
                m.file_off,
                format!(
                    "the resource data directory says {size:#x} bytes but its section holds only {:#x} from there",
                    m.bytes.len()
                ),
            ));
        }
        Ok(m)
    }

    /// The bytes of `[rva, rva + len)`, cut short where the section's file data or the file
    /// ends (then `short` is set). `None` when the RVA is in no section or past its file data.
    pub(crate) fn map(&self, rva: u32, len: u32) -> Option<Mapped<'a>> {
        let sec = self.section_of(rva)?;
        let delta = rva.checked_sub(sec.va)?;
        let avail = sec.file_len.checked_sub(delta).filter(|&a| a > 0)?;
        let take = avail.min(len);
        let start = sec.file_off.checked_add(u64::from(delta))?;
        let end = start.checked_add(u64::from(take))?;
        let bytes = self
            .data
            .get(usize::try_from(start).ok()?..usize::try_from(end).ok()?)?;
        Some(Mapped {
            bytes,
            file_off: start,
            short: take < len,
        })
    }

    /// The first section whose virtual range holds `rva` (the loader does not allow overlaps;
    /// a hostile file's overlaps resolve to the first, as in `object`).
    fn section_of(&self, rva: u32) -> Option<&Section> {
        self.sections.iter().find(|s| {
            rva.checked_sub(s.va)
                .is_some_and(|d| d < s.virtual_len.max(s.raw_len))
        })
    }

    fn section_list(&self) -> String {
        if self.sections.is_empty() {
            return "the file has no sections".into();
        }
        let mut out = String::from("sections:");
        for s in self.sections.iter().take(16) {
            out.push_str(&format!(
                " {} [{:#x}, +{:#x})",
                name_of(&s.name),
                s.va,
                s.virtual_len
            ));
        }
        if self.sections.len() > 16 {
            out.push_str(&format!(" and {} more", self.sections.len() - 16));
        }
        out
    }
}

/// A section name for messages (NUL-padded ASCII; anything else escaped).
fn name_of(name: &[u8; 8]) -> String {
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    let s: String = name
        .iter()
        .take(end)
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    if s.is_empty() {
        "(unnamed)".into()
    } else {
        s
    }
}

fn read_u16(data: &[u8], off: u64) -> Option<u16> {
    let o = usize::try_from(off).ok()?;
    let b: [u8; 2] = data.get(o..o.checked_add(2)?)?.try_into().ok()?;
    Some(u16::from_le_bytes(b))
}

fn read_u32(data: &[u8], off: u64) -> Option<u32> {
    let o = usize::try_from(off).ok()?;
    let b: [u8; 4] = data.get(o..o.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

/// What a non-PE file looks like, for the message.
fn looks_like(data: &[u8]) -> String {
    match data {
        [] => "an empty file".into(),
        [b'r', b'e', b'g', b'f', ..] => "a registry hive (regf)".into(),
        [0x7f, b'E', b'L', b'F', ..] => "an ELF file".into(),
        [0xFF, 0xFE, ..] => "UTF-16LE text".into(),
        [b'c', b'o', b'n', b'e', b'c', b't', b'i', b'x', ..] => "a VHD footer".into(),
        [b'v', b'h', b'd', b'x', b'f', b'i', b'l', b'e', ..] => "a VHDX image".into(),
        _ => format!(
            "starts with {}",
            data.iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}
