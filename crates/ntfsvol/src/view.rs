//! A file's unnamed `$DATA`, mapped to absolute volume offsets and read lazily.

use std::io;
use std::sync::Arc;

use guestwall_source::{check_range, out_of_range, ReadAt};

use crate::Error;

/// Attribute flag: compressed (LZNT1).
pub const ATTR_COMPRESSED: u16 = 0x0001;
/// Attribute flag: encrypted (EFS).
pub const ATTR_ENCRYPTED: u16 = 0x4000;
/// Attribute flag: sparse.
pub const ATTR_SPARSE: u16 = 0x8000;

/// One data run: `len` bytes of the file at `file_offset` are at `volume_offset` (or are a
/// hole when `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Offset in the file (VCN × cluster size).
    pub file_offset: u64,
    /// Absolute byte offset in the volume (LCN × cluster size), `None` for a sparse run.
    pub volume_offset: Option<u64>,
    /// Length in bytes (clusters × cluster size).
    pub len: u64,
}

/// The unnamed `$DATA` attribute of one file, and positional reads of its content.
///
/// Reads go straight to the volume source through the run map: no byte outside the range
/// asked for is read, holes and the part past InitializedSize read as zeros, resident data
/// comes from the copy of the MFT record taken when the view was made.
#[derive(Clone)]
pub struct FileView<R> {
    pub(crate) src: Arc<R>,
    pub(crate) path: String,
    pub(crate) record: u64,
    pub(crate) data_size: u64,
    pub(crate) initialized_size: u64,
    pub(crate) allocated_size: u64,
    pub(crate) resident: Option<Vec<u8>>,
    pub(crate) flags: u16,
    pub(crate) reparse_point: bool,
    pub(crate) attribute_list: bool,
    pub(crate) runs: Vec<Run>,
}

impl<R> std::fmt::Debug for FileView<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileView")
            .field("path", &self.path)
            .field("record", &self.record)
            .field("data_size", &self.data_size)
            .field("initialized_size", &self.initialized_size)
            .field("allocated_size", &self.allocated_size)
            .field("resident", &self.resident.as_ref().map(Vec::len))
            .field("flags", &self.flags)
            .field("reparse_point", &self.reparse_point)
            .field("attribute_list", &self.attribute_list)
            .field("runs", &self.runs.len())
            .finish()
    }
}

impl<R: ReadAt> FileView<R> {
    /// The path it was opened with.
    pub fn path(&self) -> &str {
        &self.path
    }
    /// Its MFT record number.
    pub fn record(&self) -> u64 {
        self.record
    }
    /// DataSize: the file's length.
    pub fn data_size(&self) -> u64 {
        self.data_size
    }
    /// InitializedSize: bytes past it read as zeros (read from the attribute header; the
    /// `ntfs` crate parses but does not expose it).
    pub fn initialized_size(&self) -> u64 {
        self.initialized_size
    }
    /// AllocatedSize from the attribute header (the value length for resident data).
    pub fn allocated_size(&self) -> u64 {
        self.allocated_size
    }
    /// Whether the data lives in the MFT record itself.
    pub fn is_resident(&self) -> bool {
        self.resident.is_some()
    }
    /// The attribute flags ([`ATTR_COMPRESSED`], [`ATTR_ENCRYPTED`], [`ATTR_SPARSE`]).
    pub fn flags(&self) -> u16 {
        self.flags
    }
    /// Whether the file has a `$REPARSE_POINT` (WOF compression, dedup, a link).
    pub fn has_reparse_point(&self) -> bool {
        self.reparse_point
    }
    /// Whether the file's attributes spill into extension records (`$ATTRIBUTE_LIST`).
    pub fn uses_attribute_list(&self) -> bool {
        self.attribute_list
    }
    /// The data runs, in file order, covering AllocatedSize (empty for resident data).
    pub fn runs(&self) -> &[Run] {
        &self.runs
    }

    /// Why an in-place, same-size overwrite of this file's clusters would be unsafe (empty when
    /// it is safe as far as the file is concerned; the volume state is checked separately).
    pub fn write_blockers(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.is_resident() {
            out.push("the data is resident in the MFT record".to_string());
        }
        for (bit, what) in [
            (ATTR_COMPRESSED, "compressed"),
            (ATTR_ENCRYPTED, "encrypted"),
            (ATTR_SPARSE, "sparse"),
        ] {
            if self.flags & bit != 0 {
                out.push(format!("the data is {what} (flag {bit:#06x})"));
            }
        }
        if self.runs.iter().any(|r| r.volume_offset.is_none()) {
            out.push("a data run is a hole (sparse)".to_string());
        }
        if self.initialized_size < self.data_size {
            out.push(format!(
                "InitializedSize {} < DataSize {}",
                self.initialized_size, self.data_size
            ));
        }
        if self.reparse_point {
            out.push("the file has a reparse point (WOF/dedup?)".to_string());
        }
        out
    }

    fn unsupported(&self) -> Option<String> {
        if self.flags & ATTR_ENCRYPTED != 0 {
            return Some("the data is encrypted (EFS); it cannot be read".into());
        }
        if self.flags & ATTR_COMPRESSED != 0 && self.resident.is_none() {
            return Some(
                "the data is NTFS-compressed (LZNT1), which this reader does not decompress".into(),
            );
        }
        None
    }

    /// Reads `buf.len()` bytes of the file at `offset` through the run map.
    fn read_mapped(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut pos = offset;
        let mut done = 0usize;
        // The first run that ends after `pos`.
        let mut i = self.runs.partition_point(|r| r.file_offset + r.len <= pos);
        while done < buf.len() {
            let want = buf.len() - done;
            let dst_all = &mut buf[done..];
            if pos >= self.initialized_size {
                dst_all.fill(0);
                return Ok(());
            }
            let run = self.runs.get(i).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: no data run covers file offset {pos:#x}", self.path),
                )
            })?;
            let in_run = pos - run.file_offset;
            let n = (run.len - in_run)
                .min(self.initialized_size - pos)
                .min(want as u64) as usize;
            let dst = &mut dst_all[..n];
            match run.volume_offset {
                None => dst.fill(0),
                Some(v) => {
                    let at = v + in_run;
                    self.src.read_exact_at(at, dst).map_err(|e| {
                        io::Error::new(
                            e.kind(),
                            format!("{}: reading volume offset {at:#x}+{n:#x}: {e}", self.path),
                        )
                    })?;
                }
            }
            done += n;
            pos += n as u64;
            if pos >= run.file_offset + run.len {
                i += 1;
            }
        }
        Ok(())
    }
}

impl<R: ReadAt> ReadAt for FileView<R> {
    fn size(&self) -> u64 {
        self.data_size
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let (s, e) = check_range(offset, buf.len(), self.data_size)
            .map_err(|_| out_of_range(offset, buf.len(), self.data_size))?;
        if let Some(why) = self.unsupported() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                Error::Unsupported {
                    path: self.path.clone(),
                    detail: why,
                },
            ));
        }
        if let Some(data) = &self.resident {
            let src = data
                .get(s..e)
                .ok_or_else(|| out_of_range(offset, buf.len(), self.data_size))?;
            buf.copy_from_slice(src);
            return Ok(());
        }
        self.read_mapped(offset, buf)
    }
}
