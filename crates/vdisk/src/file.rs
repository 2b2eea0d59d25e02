//! One file of a chain: a byte source with its path, read with errors that name both.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use guestwall_source::ReadAt;

use crate::error::{Error, Result};

/// A file (or device, or bytes in memory) and the path used in messages.
#[derive(Clone)]
pub(crate) struct Src {
    pub path: PathBuf,
    pub r: Arc<dyn ReadAt>,
}

impl Src {
    pub fn new(path: &Path, r: Arc<dyn ReadAt>) -> Src {
        Src {
            path: path.to_path_buf(),
            r,
        }
    }

    pub fn size(&self) -> u64 {
        self.r.size()
    }

    /// Fills `buf` from `offset`; a range past the end is [`Error::Truncated`].
    pub fn read(&self, offset: u64, buf: &mut [u8], what: &'static str) -> Result<()> {
        let size = self.size();
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > size)
        {
            return Err(self.truncated(what, offset, buf.len() as u64));
        }
        self.r
            .read_exact_at(offset, buf)
            .map_err(|source| Error::Io {
                path: self.path.clone(),
                offset,
                len: buf.len() as u64,
                source,
            })
    }

    /// Reads `len` bytes at `offset` into a new buffer, after checking that they lie inside
    /// the file (so the allocation is bounded by the file's size).
    pub fn read_vec(&self, offset: u64, len: u64, what: &'static str) -> Result<Vec<u8>> {
        let size = self.size();
        if offset.checked_add(len).is_none_or(|e| e > size) {
            return Err(self.truncated(what, offset, len));
        }
        let n = usize::try_from(len).map_err(|_| self.truncated(what, offset, len))?;
        let mut v = vec![0u8; n];
        self.read(offset, &mut v, what)?;
        Ok(v)
    }

    pub fn truncated(&self, what: &'static str, offset: u64, needed: u64) -> Error {
        Error::Truncated {
            path: self.path.clone(),
            what,
            offset,
            needed,
            size: self.size(),
        }
    }

    pub fn invalid(&self, what: &'static str, offset: u64, detail: impl Into<String>) -> Error {
        Error::Invalid {
            path: self.path.clone(),
            what,
            offset,
            detail: detail.into(),
        }
    }
}
